#!/usr/bin/env bash
# megageo train under Open MPI's mpirun.
#   launch/mpirun.sh NPROC [megageo train arguments...]     (HOSTFILE=hosts for several hosts)
# Ranks come from OMPI_COMM_WORLD_*; without MASTER_ADDR, rank 0's host and a free port are agreed over MPI.
set -euo pipefail
nproc=${1:?usage: launch/mpirun.sh NPROC [megageo train arguments...]}
shift
hosts=()
[[ -n "${HOSTFILE:-}" ]] && hosts=(--hostfile "$HOSTFILE")
exec mpirun -np "$nproc" "${hosts[@]}" --bind-to none -x PATH -x LD_LIBRARY_PATH -x OMP_NUM_THREADS \
    python -m megageo train "$@"
