#!/usr/bin/env bash
# megageo train under the deepspeed launcher.
#   one node:    launch/deepspeed.sh NPROC [megageo train arguments...]
#   many nodes:  HOSTFILE=hosts launch/deepspeed.sh NPROC [...]   ("host slots=N" lines; passwordless ssh to
#                each host, SSH_PORT if sshd is not on 22). The launcher reaches the other hosts over pdsh/ssh
#                and finds the rendezvous address with `ssh HOST hostname -I` unless MASTER_ADDR is set.
# NPROC is processes per host (DeepSpeed says GPUs). The launcher appends --local_rank=N to each rank's command
# line, as it does for a bare `deepspeed $(which megageo) train ...`; megageo accepts it and reads the environment.
set -euo pipefail
nproc=${1:?usage: launch/deepspeed.sh NPROC [megageo train arguments...]}
shift
multi_node=()
if [[ -n "${HOSTFILE:-}" ]]; then
    multi_node=(--hostfile "$HOSTFILE" --force_multi --launcher "${DS_LAUNCHER:-pdsh}")
    [[ -n "${SSH_PORT:-}" ]] && multi_node+=(--ssh_port "$SSH_PORT")
    [[ -n "${MASTER_ADDR:-}" ]] && multi_node+=(--master_addr "$MASTER_ADDR")
fi
exec deepspeed "${multi_node[@]}" --num_gpus "$nproc" --master_port "${MASTER_PORT:-29500}" \
    --module megageo train "$@"
