#!/usr/bin/env bash
# tools/gpu_check.sh - everything sdl_cuda.h needs checked on a GPU machine, in one go:
#   builds tests/cuda_test_ops.cu (plain and with SDL_CUDA_SYNC_CHECK), runs the GPU-vs-CPU
#   checks, runs them again under compute-sanitizer (memcheck, racecheck) when it is there,
#   runs the whole test suite, then the benchmark, and prints a short table.
# Usage:  bash tools/gpu_check.sh          (or: make cuda)
#         NVCC=/path/to/nvcc ARCH=sm_90 bash tools/gpu_check.sh
# Without a GPU it only builds (and says so). Exit status: 0 when every check passed.
set -u
cd "$(dirname "$0")/.."
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
B=build/gpu
mkdir -p "$B"
gpu=0
command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1 && gpu=1
ARCH=${ARCH:-$([ $gpu = 1 ] && echo native || echo "")}
ARCHFLAG=${ARCH:+-arch=$ARCH}
FLAGS="-std=c++17 -O2 $ARCHFLAG -Xcompiler -Wall,-Wextra,-Werror -Itests -I."
SAN=$(command -v compute-sanitizer || { [ -x /usr/local/cuda/bin/compute-sanitizer ] && echo /usr/local/cuda/bin/compute-sanitizer; })
rows=()
bad=0
row() { rows+=("$(printf '| %-40s | %-34s |' "$1" "$2")"); }
closing() { grep -E '^[0-9]+ passed, [0-9]+ failed' "$1" | tail -1; }
ok_line() { local l; l=$(closing "$1"); [ -n "$l" ] && echo "$l" | grep -q ', 0 failed'; }

[ $gpu = 1 ] && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/gpu: /'
"$NVCC" --version | tail -1

# 1. builds
printf '#define SDL_IMPLEMENTATION\n#include "sdl.h"\n#define SDL_CUDA_IMPLEMENTATION\n#include "sdl_cuda.h"\nint main(void){return 0;}\n' >"$B/hdr.cu"
if "$NVCC" $FLAGS -x cu -c "$B/hdr.cu" -o "$B/hdr.o" >"$B/hdr.log" 2>&1; then row "sdl.h + sdl_cuda.h, nvcc -Werror" ok; else row "sdl.h + sdl_cuda.h, nvcc -Werror" FAIL; bad=1; cat "$B/hdr.log"; fi
if "$NVCC" $FLAGS tests/cuda_test_ops.cu -o "$B/cuda_test_ops" -lcublas -lcublasLt >"$B/build.log" 2>&1; then row "build cuda_test_ops" ok; else row "build cuda_test_ops" FAIL; bad=1; cat "$B/build.log"; fi
if "$NVCC" $FLAGS -lineinfo -DSDL_CUDA_SYNC_CHECK tests/cuda_test_ops.cu -o "$B/cuda_test_ops_sync" -lcublas -lcublasLt >"$B/build_sync.log" 2>&1; then row "build with SDL_CUDA_SYNC_CHECK" ok; else row "build with SDL_CUDA_SYNC_CHECK" FAIL; bad=1; cat "$B/build_sync.log"; fi

if [ $gpu = 0 ]; then
    row "run" "skipped: no GPU (nvidia-smi)"
    printf '%s\n' "${rows[@]}"
    exit $bad
fi

# 2. the checks, plain, synchronised, under the sanitizers
run_check() { # name log cmd...
    local name=$1 log=$2; shift 2
    timeout 600 "$@" >"$log" 2>&1
    local rc=$?
    if ok_line "$log" && [ $rc = 0 ]; then row "$name" "$(closing "$log")"; else row "$name" "FAIL (exit $rc) $(closing "$log")"; bad=1; grep -E 'FAIL|error' "$log" | head -20; fi
}
[ -x "$B/cuda_test_ops" ] && run_check "cuda_test_ops" "$B/ops.log" "$B/cuda_test_ops"
[ -x "$B/cuda_test_ops_sync" ] && run_check "cuda_test_ops, SDL_CUDA_SYNC_CHECK" "$B/ops_sync.log" "$B/cuda_test_ops_sync"
if [ -n "$SAN" ] && [ -x "$B/cuda_test_ops_sync" ]; then
    for tool in memcheck racecheck; do
        timeout 600 "$SAN" --tool $tool --error-exitcode 3 "$B/cuda_test_ops_sync" >"$B/san_$tool.log" 2>&1
        rc=$?
        summary=$(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$B/san_$tool.log" | tail -1)
        if [ $rc = 0 ] && ok_line "$B/san_$tool.log"; then row "compute-sanitizer $tool" "ok ${summary#========= }"; else row "compute-sanitizer $tool" "FAIL (exit $rc) ${summary#========= }"; bad=1; grep -m 20 -E '=========  |Invalid|Race' "$B/san_$tool.log"; fi
    done
else
    row "compute-sanitizer" "not found: skipped"
fi

# 3. the whole suite (it runs cuda_test_*.cu too, now that a GPU is here)
bash tests/run.sh >"$B/suite.log" 2>&1
rc=$?
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped' "$B/suite.log" | tail -1)
if [ $rc = 0 ]; then row "tests/run.sh" "$line"; else row "tests/run.sh" "FAIL: $line"; bad=1; grep -E '^FAIL' "$B/suite.log" | head -20; fi

# 4. timings (only after the checks passed)
echo
printf '%s\n' "${rows[@]}"
echo
if [ $bad = 0 ] && [ -x "$B/cuda_test_ops" ]; then
    "$B/cuda_test_ops" --bench >"$B/bench.log" 2>&1
    grep -E '^(device|\|)' "$B/bench.log"
fi
exit $bad
