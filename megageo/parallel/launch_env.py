"""Who am I in the job: rank, local rank, world size and rendezvous address from whatever launched us.

torchrun and the deepspeed launcher export `RANK`/`LOCAL_RANK`/`WORLD_SIZE`/`MASTER_ADDR`/`MASTER_PORT`;
Open MPI's mpirun exports `OMPI_COMM_WORLD_*`; MPICH/PALS `mpiexec` (Polaris) exports `PMI_RANK`,
`PMI_LOCAL_RANK` and `PMI_SIZE`. The MPI launchers say nothing about a rendezvous address, so it comes from
`MASTER_ADDR`, else the first host in `$PBS_NODEFILE`, else rank 0's hostname agreed through mpi4py (which
also agrees on a free port when `MASTER_PORT` is unset). `torch_env` writes the result
back as the torch.distributed `env://` variables for the run, so every later layer (torch, Megatron, DeepSpeed)
agrees.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from megageo.errors import MegageoError

DEFAULT_PORT = 29500

# (source name, rank, local rank, world size) variables, most specific first: a torchrun started inside an
# MPI allocation must win over the MPI variables it inherited.
LAUNCHERS: tuple[tuple[str, str, str, str], ...] = (
    ("torch", "RANK", "LOCAL_RANK", "WORLD_SIZE"),
    ("openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_SIZE"),
    ("pmi", "PMI_RANK", "PMI_LOCAL_RANK", "PMI_SIZE"),
)


@dataclass(frozen=True)
class LaunchEnv:
    rank: int
    local_rank: int
    world_size: int
    master_addr: str
    master_port: int
    source: str
    """Which launcher's variables were found: torch, openmpi, pmi or single."""


def discover(environ: Mapping[str, str] | None = None) -> LaunchEnv:
    """Read the launcher's variables; a process started by hand is a world of one."""
    env = os.environ if environ is None else environ
    for source, rank_key, local_key, size_key in LAUNCHERS:
        if rank_key in env and size_key in env:
            rank, world_size = _int(env, rank_key), _int(env, size_key)
            local_rank = _int(env, local_key) if local_key in env else rank
            break
    else:
        source, rank, local_rank, world_size = "single", 0, 0, 1
    if not 0 <= rank < world_size:
        raise MegageoError(f"launcher gave rank {rank} outside a world of {world_size} ({source} variables)")
    addr = _master_addr(env)
    port = _int(env, "MASTER_PORT") if "MASTER_PORT" in env else None
    if source == "single":
        return LaunchEnv(0, 0, 1, addr or "127.0.0.1", port or free_port(), source)
    if source != "torch" and (addr is None or port is None):
        addr, port = _agree_over_mpi(addr, port)
    return LaunchEnv(rank, local_rank, world_size, addr or "127.0.0.1", port or DEFAULT_PORT, source)


def _int(env: Mapping[str, str], key: str) -> int:
    try:
        return int(env[key])
    except ValueError:
        raise MegageoError(f"environment variable {key}={env[key]!r} is not an integer") from None


def _master_addr(env: Mapping[str, str]) -> str | None:
    if env.get("MASTER_ADDR"):
        return env["MASTER_ADDR"]
    nodefile = env.get("PBS_NODEFILE")
    if nodefile:
        path = Path(nodefile)
        hosts = path.read_text().split() if path.is_file() else []
        if not hosts:
            raise MegageoError(f"PBS_NODEFILE={nodefile} is missing or empty: cannot tell the rendezvous host")
        return hosts[0]
    return None


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now (the kernel picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _agree_over_mpi(addr: str | None, port: int | None) -> tuple[str, int]:
    """Rank 0 names its host and a free port; every rank of the MPI world takes them."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    mine = (addr or socket.gethostname(), port or free_port()) if comm.Get_rank() == 0 else None
    return comm.bcast(mine, root=0)


@contextlib.contextmanager
def torch_env(launch: LaunchEnv) -> Iterator[None]:
    """Publish the discovered layout as torch.distributed's env:// variables (DeepSpeed reads LOCAL_RANK too) for
    the run, and put the caller's values back after it: a launcher started later by the same process (a notebook,
    a test) must not inherit a world of one."""
    names = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    saved = {name: os.environ.get(name) for name in names}
    values = (launch.rank, launch.local_rank, launch.world_size, launch.master_addr, launch.master_port)
    os.environ.update({name: str(value) for name, value in zip(names, values)})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
