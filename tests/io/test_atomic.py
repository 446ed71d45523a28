"""Write-then-rename: the target holds the old content or the complete new one, never a part; what reaches the
final name has been fsynced, and so has its folder after the rename; a full disk is one line and leaves nothing.

Disk full is the kernel's own refusal: the writer runs under RLIMIT_FSIZE (with SIGXFSZ ignored, writes past the
limit fail with EFBIG), which holds for root too, unlike an unwritable folder.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from megageo.errors import MegageoError
from megageo.io.atomic import atomic_dir, atomic_path, write_text

PACKAGE = Path(__file__).resolve().parents[2] / "megageo"


def test_file_appears_only_when_complete(tmp_path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")
    with atomic_path(target) as temporary:
        assert temporary.parent == tmp_path and temporary.name.startswith(".out.json.")
        temporary.write_text("new, half")
        assert target.read_text() == "old"
        temporary.write_text("new, complete")
    assert target.read_text() == "new, complete"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


@pytest.mark.parametrize("existing", [True, False])
def test_error_while_writing_keeps_the_old_file_and_leaves_no_temporary(tmp_path, existing: bool) -> None:
    target = tmp_path / "out.json"
    if existing:
        target.write_text("old")
    with pytest.raises(ZeroDivisionError), atomic_path(target) as temporary:
        temporary.write_text("partial")
        1 / 0
    assert [p.name for p in tmp_path.iterdir()] == (["out.json"] if existing else [])
    if existing:
        assert target.read_text() == "old"


def test_new_files_and_folders_get_the_umask_permissions(tmp_path) -> None:
    umask = os.umask(0o022)
    try:
        write_text(tmp_path / "f.txt", "x")
        with atomic_dir(tmp_path / "d") as folder:
            (folder / "inside").write_text("y")
    finally:
        os.umask(umask)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "d" / "inside").read_text() == "y"


@pytest.fixture
def disk_events(monkeypatch) -> list[tuple[str, str]]:
    """What reaches the disk, in order: ('fsync', path of the fd) and ('rename', destination)."""
    events: list[tuple[str, str]] = []
    real_fsync, real_replace, real_rename = os.fsync, os.replace, os.rename

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def rename_with(real):
        def rename(source, destination) -> None:
            events.append(("rename", str(destination)))
            real(source, destination)
        return rename

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", rename_with(real_replace))
    monkeypatch.setattr(os, "rename", rename_with(real_rename))
    return events


def test_file_is_fsynced_before_the_rename_and_its_folder_after(tmp_path, disk_events) -> None:
    with atomic_path(tmp_path / "out.bin") as temporary:
        temporary.write_bytes(b"data")
    assert disk_events == [("fsync", str(temporary)), ("rename", str(tmp_path / "out.bin")), ("fsync", str(tmp_path))]


def test_folder_contents_are_fsynced_before_the_folder_is_renamed(tmp_path, disk_events) -> None:
    with atomic_dir(tmp_path / "ckpt") as folder:
        (folder / "tag").mkdir()
        (folder / "tag" / "a.pt").write_bytes(b"a")
        (folder / "latest").write_text("tag")
    synced_before = {path for kind, path in disk_events[:-2] if kind == "fsync"}
    assert synced_before == {str(folder), str(folder / "tag"), str(folder / "tag" / "a.pt"), str(folder / "latest")}
    assert disk_events[-2:] == [("rename", str(tmp_path / "ckpt")), ("fsync", str(tmp_path))]
    assert (tmp_path / "ckpt" / "tag" / "a.pt").read_bytes() == b"a"


def test_a_folder_never_replaces_an_existing_one(tmp_path) -> None:
    with pytest.raises(MegageoError, match=r"ckpt already exists: it appeared while it was being written"):
        with atomic_dir(tmp_path / "ckpt") as folder:
            (folder / "a").write_text("new")
            (tmp_path / "ckpt").mkdir()  # someone else published meanwhile
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"] and not any((tmp_path / "ckpt").iterdir())


FULL_DISK = """
import resource, signal, sys
from megageo.errors import MegageoError
from megageo.io.atomic import write_text
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
try:
    write_text(sys.argv[1], "x" * 5000)
except MegageoError as error:
    print(error)
"""


@pytest.mark.parametrize("existing", [True, False])
def test_disk_full_is_one_line_and_keeps_the_old_file(tmp_path, existing: bool) -> None:
    target = tmp_path / "out.txt"
    if existing:
        target.write_text("old")
    result = subprocess.run([sys.executable, "-c", FULL_DISK, str(target)], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PYTHONPATH": str(PACKAGE.parent)})
    kept = "the existing out.txt is unchanged" if existing else "nothing was left behind"
    assert result.stdout == f"{target}: could not be written (File too large); {kept}\n", result.stderr
    assert [p.name for p in tmp_path.iterdir()] == (["out.txt"] if existing else [])
    if existing:
        assert target.read_text() == "old"


def test_output_folder_that_is_a_file_is_one_line(tmp_path) -> None:
    (tmp_path / "plain").write_text("not a folder")
    with pytest.raises(MegageoError, match=r"plain/out.txt: could not be written \(.+\); nothing was left behind$"):
        write_text(tmp_path / "plain" / "out.txt", "x")


def test_no_writer_renames_or_fsyncs_on_its_own() -> None:
    """Every writer goes through megageo.io.atomic: no other module renames into place, fsyncs or makes
    temporary folders (five private copies of this existed before)."""
    banned = {("os", "replace"), ("os", "rename"), ("os", "fsync"), ("shutil", "move"), ("tempfile", "mkdtemp"),
              ("tempfile", "mkstemp")}
    found = []
    for path in PACKAGE.rglob("*.py"):
        if path == PACKAGE / "io" / "atomic.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and (node.value.id, node.attr) in banned):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.value.id}.{node.attr}")
    assert found == []


LIBRARY_WRITER = """
import resource, signal, sys
import numpy as np
from megageo.errors import MegageoError
which, target, source = sys.argv[1:]
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))
try:
    if which == "store":
        from megageo.data.build import build_store
        build_store([source], target)
    else:
        from megageo.eval.netcdf import write_forecast_netcdf
        noise = np.random.default_rng(0).standard_normal((2, 4, 1, 73, 144))
        write_forecast_netcdf(target, {"hgt": 5500 + 100 * noise}, [1569072.0, 1569078.0], [6, 12, 18, 24], [500],
                              np.linspace(90, -90, 73), np.arange(0, 360, 2.5), model="m")
except MegageoError as error:
    print(error)
"""


@pytest.mark.parametrize(("which", "reason"), [("store", r"File too large"),
                                               ("forecast", r"NetCDF: HDF error; [\d.]+ GB free there")])
def test_a_full_disk_under_hdf5_writers_is_one_line(tmp_path, which: str, reason: str) -> None:
    """h5py and netCDF4 report a refused write as RuntimeError, not OSError; the store build and the forecast
    writer still end in one line and leave nothing (h5py quotes the errno, netCDF4 does not: the free space does)."""
    from tests.data.netcdf_files import HOURS_1979, heights, write

    source = tmp_path / "hgt.1979.nc"
    write(source, heights(100), HOURS_1979 + 6.0 * np.arange(100))
    target = tmp_path / ("store.h5" if which == "store" else "forecast.nc")
    result = subprocess.run([sys.executable, "-c", LIBRARY_WRITER, which, str(target), str(source)],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(PACKAGE.parent)})
    assert re.fullmatch(rf"{re.escape(str(target))}: could not be written \({reason}\); nothing was left behind\n",
                        result.stdout), result.stdout + result.stderr[-2000:]
    assert [p.name for p in tmp_path.iterdir()] == ["hgt.1979.nc"]
