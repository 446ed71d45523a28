#!/usr/bin/env bash
# megageo train under torchrun.
#   one node:    launch/torchrun.sh NPROC [megageo train arguments...]
#   many nodes:  run on every node with NNODES, NODE_RANK and MASTER_ADDR (node 0's address) set.
set -euo pipefail
nproc=${1:?usage: launch/torchrun.sh NPROC [megageo train arguments...]}
shift
exec torchrun --nnodes "${NNODES:-1}" --node_rank "${NODE_RANK:-0}" --nproc_per_node "$nproc" \
    --master_addr "${MASTER_ADDR:-127.0.0.1}" --master_port "${MASTER_PORT:-29500}" \
    -m megageo train "$@"
