# Sourced by the Polaris job scripts: node count, rendezvous host, ALCF's NCCL/libfabric settings, and
# `megageo_mpiexec`, which spreads NRANKS_PER_NODE ranks over every node of the job.
# Outside PBS, point PBS_NODEFILE at a file listing localhost (and set NRANKS_PER_NODE, NDEPTH) to run here.
: "${PBS_NODEFILE:?PBS_NODEFILE is not set: not inside a PBS job (point it at a file listing localhost to test)}"
NNODES=$(sort -u "$PBS_NODEFILE" | wc -l)
NRANKS_PER_NODE=${NRANKS_PER_NODE:-4}  # one rank per A100
NDEPTH=${NDEPTH:-8}                    # 32 cores per node / 4 ranks
NRANKS=$((NNODES * NRANKS_PER_NODE))
MASTER_ADDR=$(head -n 1 "$PBS_NODEFILE")
export MASTER_ADDR MASTER_PORT=${MASTER_PORT:-29500}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$NDEPTH}

# NCCL over the Slingshot network through the AWS libfabric plugin (ALCF's Polaris documentation).
export NCCL_NET_GDR_LEVEL=PHB NCCL_CROSS_NIC=1 NCCL_COLLNET_ENABLE=1 NCCL_NET="AWS Libfabric"
export FI_CXI_DISABLE_HOST_REGISTER=1 FI_MR_CACHE_MONITOR=userfaultfd FI_CXI_DEFAULT_CQ_SIZE=131072
AWS_OFI_NCCL=${AWS_OFI_NCCL:-/soft/libraries/aws-ofi-nccl/v1.9.1-aws/lib}
[[ -d "$AWS_OFI_NCCL" ]] && export LD_LIBRARY_PATH="$AWS_OFI_NCCL:${LD_LIBRARY_PATH:-}"

megageo_mpiexec() {
    if mpiexec --version 2>&1 | grep -q "Open MPI"; then  # a workstation standing in for the job
        mpiexec -n "$NRANKS" --map-by "ppr:$NRANKS_PER_NODE:node" --bind-to none \
            -x PATH -x LD_LIBRARY_PATH -x OMP_NUM_THREADS -x MASTER_ADDR -x MASTER_PORT "$@"
    else                                                  # PALS/MPICH on Polaris
        mpiexec -n "$NRANKS" --ppn "$NRANKS_PER_NODE" --depth "$NDEPTH" --cpu-bind depth "$@"
    fi
}
