#!/usr/bin/env bash
# tools/cuda_emu/dry_run.sh - bench/bench_cuda.sh's GPU programs at their real sizes, as a dry
# run of the CUDA emulator (EMU_DRY=1: launches and GEMMs checked, counted, not run; device
# memory reserved, not touched; see tools/cuda_emu/README, "Dry run").
#
#   bash tools/cuda_emu/dry_run.sh [BUILD_DIR]        (default build/dry; tests/run.sh runs it)
#
# First builds and runs tools/cuda_emu/dry_check.cu (the dry run's own checks). Then
# builds examples/gpt2.c, examples/resnet18.c and bench/bench_cuda.c against tools/cuda_emu and
# runs each with bench_cuda.sh's shapes and flags for 1-2 steps (--steps 1 --warmup 1; for
# bench_cuda --seconds 0, one model at a time). Prints one row per run: kernel launches,
# cuBLAS calls and GEMM TFLOP per step (the last step: the work between the last two
# device-to-host copies; bench_cuda's per graph replay), the GEMM FLOPs over bench_cuda.sh's
# analytic training FLOPs, and the cudaMalloc high-water mark. A run passes when the program
# ran to its end, the emulator reported no error (no "emu: " line: a bad launch, a GEMM
# argument, a span past its allocation, a host pointer given to a kernel) and the peak fits an
# 80 GB H100 (LIMIT_GIB, default 78: 79.6 GiB less about 1.5 GiB for the CUDA context and
# cuBLAS). Ends with "N passed, N failed". Environment: CXX, PYTHON, LIMIT_GIB.
set -u
cd "$(dirname "$0")/../.."
E=${1:-build/dry}
CXX=${CXX:-c++}
PY=${PYTHON:-python3}
LIMIT_GIB=${LIMIT_GIB:-78}
mkdir -p "$E/src"
passed=0 failed=0

cp tools/cuda_emu/inc/*.h "$E/" && "$PY" tools/cuda_emu/convert.py sdl_cuda.h "$E/sdl_cuda.h" 2>"$E/convert.log" || {
    echo "FAIL dry run: convert.py sdl_cuda.h"; cat "$E/convert.log"; echo "0 passed, 1 failed"; exit 1; }
# the dry run itself (tools/cuda_emu/dry_check.cu: its counters, the checks it keeps)
if "$PY" tools/cuda_emu/convert.py tools/cuda_emu/dry_check.cu "$E/src/dry_check.cpp" >"$E/dry_check.build.log" 2>&1 &&
    $CXX -std=c++17 -O1 -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=0 -D__CUDACC__ -w -I"$E" "$E/src/dry_check.cpp" -o "$E/dry_check" >>"$E/dry_check.build.log" 2>&1; then
    "$E/dry_check" >"$E/dry_check.log" 2>&1
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$E/dry_check.log" | tail -1)
    p=$(echo "$line" | sed -nE 's/^([0-9]+) passed.*/\1/p'); f=$(echo "$line" | sed -nE 's/.* ([0-9]+) failed.*/\1/p')
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-1}))
    echo "dry_check (the emulator's dry run): ${line:-no closing line}"
    grep '^FAIL' "$E/dry_check.log"
else
    echo "FAIL dry run: build of tools/cuda_emu/dry_check.cu"; tail -20 "$E/dry_check.build.log"; failed=$((failed + 1))
fi
for prog in examples/gpt2.c examples/resnet18.c bench/bench_cuda.c; do
    name=$(basename "$prog" .c)
    # -O1: the dry run's host work is setup (GPT-2's 124M-weight init), not worth -O2's compile time
    if ! { "$PY" tools/cuda_emu/convert.py "$prog" "$E/src/$name.cpp" &&
        $CXX -std=c++17 -O1 -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=0 -D__CUDACC__ -w -I"$E" -I. "$E/src/$name.cpp" -o "$E/$name" -lm -lpthread; } \
        >"$E/$name.build.log" 2>&1; then
        echo "FAIL dry run: build of $prog"; tail -20 "$E/$name.build.log"; failed=$((failed + 1))
    fi
done

printf '%-24s %8s %6s %10s %6s %8s %4s  %s\n' run launches cublas "GEMM TFLOP" ratio "peak GiB" fits "program args"
# run label per_sample_flops samples_per_step expect_line program args...
run() {
    local label=$1 fps=$2 nsamp=$3 expect=$4 prog=$5; shift 5
    local log="$E/$label.log" why=""
    if [ ! -x "$E/$prog" ]; then echo "FAIL $label: not built"; failed=$((failed + 1)); return; fi
    EMU_DRY=1 timeout 300 "$E/$prog" "$@" >"$log" 2>&1
    local rc=$?
    local sum
    sum=$(grep '^emu dry: summary' "$log" | tail -1)
    val() { echo "$sum" | sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }
    local peak launches blas flop graphs
    peak=$(val peak_bytes); launches=$(val step_launches); blas=$(val step_blas_calls); flop=$(val step_gemm_flop); graphs=$(val step_graph_launches)
    [ -z "$sum" ] && why="no emulator summary (crashed? exit $rc)"
    grep -q "$expect" "$log" || why="${why:+$why; }no line '$expect' (exit $rc)"
    grep -q '^emu: ' "$log" && why="${why:+$why; }emulator errors: $(grep -m3 '^emu: ' "$log" | tr '\n' ' ')"
    [ -n "$peak" ] || peak=0
    local row
    row=$(awk -v l="$label" -v a="$prog $*" -v p="$peak" -v n="${launches:-0}" -v b="${blas:-0}" -v f="${flop:-0}" -v g="${graphs:-0}" \
        -v fps="$fps" -v ns="$nsamp" -v lim="$LIMIT_GIB" 'BEGIN {
        d = g > 0 ? g : 1   # a graph replay per step: the interval held g of them
        gib = p / 2^30
        printf "%-24s %8d %6d %10.3f %6.3f %8.2f %4s  %s", l, n / d, b / d, f / d / 1e12, f / d / (fps * ns), gib, gib <= lim ? "yes" : "NO", a
        exit gib <= lim ? 0 : 1 }')
    local fits=$?
    echo "$row"
    [ $fits -ne 0 ] && why="${why:+$why; }peak over ${LIMIT_GIB} GiB"
    if [ -n "$why" ]; then
        echo "FAIL $label: $why"; grep -E '^emu: |cuda:|failed' "$log" | head -5 | sed 's/^/     /'; failed=$((failed + 1))
    else
        passed=$((passed + 1))
    fi
}
# bench_cuda.sh's runs; analytic training FLOPs per sample from its header (6 x forward MACs;
# GPT-2 6 N + 6 L T C per token)
run gpt2_b16_tf32 803261952 16384 '^tokens/sec' gpt2 --device cuda --tf32 --batch-size 16 --seq-len 1024 --steps 1 --warmup 1
run gpt2_b16_bf16 803261952 16384 '^tokens/sec' gpt2 --device cuda --precision bf16 --batch-size 16 --seq-len 1024 --steps 1 --warmup 1
run resnet18_b256_tf32 3332536320 256 '^total images/sec' resnet18 --device cuda --tf32 --steps 1 --warmup 1 --batch-size 256
run resnet18_b256_bf16 3332536320 256 '^total images/sec' resnet18 --device cuda --precision bf16 --steps 1 --warmup 1 --batch-size 256
# bench_cuda: in a dry run the GPU's losses are not the CPU's, so its check fails (exit 1); the
# steps still run, the last interval being graph replays
run bench_cuda_mlp_b64_graph 1408512 64 '^SDL name=mlp_b64_graph' bench_cuda --seconds 0 --graph --only mlp
run bench_cuda_cnn_b64_graph 71954688 64 '^SDL name=cnn_b64_graph' bench_cuda --seconds 0 --graph --only cnn
echo "(per step; ratio: GEMM FLOPs / bench_cuda.sh's analytic training FLOPs; fits: peak <= $LIMIT_GIB GiB; logs: $E/*.log)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
