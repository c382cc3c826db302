#!/usr/bin/env bash
# bench/bench_nccl.sh - sdl_mpi.h's GPU allreduce per message size, each transport that can run
# here (make bench-nccl). See bench/bench_nccl.c for what is timed and bench/README.md for what
# the alpha-beta model predicts on 8 GPUs per node and several nodes.
#   one GPU:  NCCL with one rank (algbw: a local copy), host staging with 2 ranks sharing it,
#             CUDA-aware MPI with 2 ranks where MPI says it is CUDA-aware
#   n GPUs:   also NCCL with n ranks
# Without nvcc or a GPU it prints what it skipped and why. Environment: NVCC, ARCH (default
# native), MPIRUN (default: mpirun --allow-run-as-root --oversubscribe), MAX_MIB (default 256).
set -u
cd "$(dirname "$0")/.."
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
MPIRUN=${MPIRUN:-mpirun --allow-run-as-root --oversubscribe}
MAX_MIB=${MAX_MIB:-256}
B=build/gpu
mkdir -p "$B"
if [ ! -x "$NVCC" ] || ! command -v mpicc >/dev/null; then
    echo "bench-nccl: skipped: needs nvcc and mpicc (found: nvcc '$NVCC', mpicc '$(command -v mpicc)')"
    exit 0
fi
if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "bench-nccl: skipped every transport: no GPU (nvidia-smi). Host staging could run under"
    echo "  tools/cuda_emu, but there it would time the emulator's memcpy and mprotect, not PCIe or"
    echo "  NVLink: meaningless. tests/run.sh checks these paths' results under the emulator instead."
    exit 0
fi
nccl=""
for inc in "$(dirname "$NVCC")/../include" /usr/include ${NCCL_HOME:+$NCCL_HOME/include}; do [ -f "$inc/nccl.h" ] && nccl="-DSDL_MPI_NCCL"; done
ARCH=${ARCH:-native}
# shellcheck disable=SC2046
"$NVCC" -std=c++17 -O3 ${ARCH:+-arch=$ARCH} -x cu $nccl $(mpicc --showme:compile) -I. bench/bench_nccl.c -o "$B/bench_nccl" \
    -lcublas ${nccl:+-lnccl} $(mpicc --showme:link) >"$B/bench_nccl.build.log" 2>&1 || { echo "bench-nccl: build failed:"; tail -20 "$B/bench_nccl.build.log"; exit 1; }
gpus=$(nvidia-smi -L | wc -l)
echo "bench-nccl: $gpus GPU(s): $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)${nccl:+, NCCL}"
run() { echo; echo "== $*"; timeout 300 $MPIRUN -np "$1" "$B/bench_nccl" --transport "$2" --max-mib "$MAX_MIB"; }
if [ -n "$nccl" ]; then run 1 nccl; [ "$gpus" -ge 2 ] && run "$gpus" nccl; else echo "bench-nccl: NCCL skipped: no nccl.h"; fi
run 2 host
if [ "$gpus" -ge 2 ]; then run "$gpus" host; fi
if ompi_info --parsable --all 2>/dev/null | grep -q 'mpi_built_with_cuda_support:value:true'; then run 2 cuda-mpi
else echo; echo "bench-nccl: cuda-mpi skipped: this MPI is not CUDA-aware (ompi_info: mpi_built_with_cuda_support false)"; fi
