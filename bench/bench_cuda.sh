#!/usr/bin/env bash
# bench/bench_cuda.sh - sdl against PyTorch on one GPU, side by side (make bench-cuda).
#   sdl:   build/gpu/bench_cuda --graph (MLP, CNN b64 f32; checks GPU against CPU first; each
#          model timed eagerly with an upload per step, eagerly on static device inputs, and
#          as CUDA graph replays: the _static and _graph rows),
#          examples/resnet18.c --steps (b256, TF32, then bf16) and examples/gpt2.c (124M, B16
#          T1024, TF32, then --precision bf16), all built with nvcc
#   torch: bench/bench_torch_cuda.py (same models; bf16 autocast for GPT-2, eager and compiled)
# Prints  BENCH name=<name> sdl=<rate> ref=<rate> unit=<unit> ratio=<sdl/ref> mfu_sdl=<%> mfu_ref=<%>
# where MFU = rate x training FLOPs per sample / 989 TFLOP/s, the H100 SXM dense BF16 peak (no
# sparsity; the f32 runs are far below their own 67 TFLOP/s peak too). Training FLOPs per
# sample: 6 x forward MACs (MLP 1.41 MFLOP, CNN 72.0 MFLOP, ResNet-18 CIFAR 3.33 GFLOP);
# GPT-2 per token 6 N + 6 L T C = 803.3 MFLOP (llm.c's estimate, N = 124,439,808).
# When torch cannot run, ref is the issue's published figure (marked ref_src=published).
# Environment: NVCC, PYTHON (default python3), ARCH (default native), SKIP_TORCH=1.
set -u
cd "$(dirname "$0")/.."
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
PY=${PYTHON:-python3}
B=build/gpu
mkdir -p "$B"
ARCH=${ARCH:-native}
FLAGS="-std=c++17 -O3 ${ARCH:+-arch=$ARCH} -I."   # tools/gpu_check.sh builds the same files with -Werror
PEAK=989e12

# ---- builds (in parallel; each compile takes ~20 s)
build() { # out src (skipped when out is newer than src and the headers: tools/gpu_check.sh built it)
    [ "$1" -nt "$2" ] && [ "$1" -nt sdl.h ] && [ "$1" -nt sdl_cuda.h ] && return 0
    "$NVCC" $FLAGS -x cu "$2" -o "$1" -lcublas >"$1.build.log" 2>&1 || { echo "bench-cuda: build of $2 failed:"; tail -20 "$1.build.log"; }
}
build "$B/bench_cuda" bench/bench_cuda.c &
build "$B/resnet18_cuda" examples/resnet18.c &
build "$B/gpt2_cuda" examples/gpt2.c &
wait

# ---- sdl
value() { sed -n "s/^$1//p" "$2" | tail -1 | awk '{print $1}'; }
declare -A SDL
if [ -x "$B/bench_cuda" ]; then
    timeout 180 "$B/bench_cuda" --seconds 2 --graph >"$B/bench_sdl_small.log" 2>&1
    grep -E 'check step|SDL name|failed|differs' "$B/bench_sdl_small.log"
    for n in mlp_b64 cnn_b64 mlp_b64_static cnn_b64_static mlp_b64_graph cnn_b64_graph; do
        line=$(grep "^SDL name=$n " "$B/bench_sdl_small.log")
        if echo "$line" | grep -q 'check=ok'; then SDL[$n]=$(echo "$line" | sed 's/.*value=\([0-9.]*\).*/\1/'); else SDL[$n]=FAIL; fi
    done
fi
if [ -x "$B/resnet18_cuda" ]; then
    timeout 300 "$B/resnet18_cuda" --device cuda --tf32 --steps 30 --warmup 5 --batch-size 256 >"$B/bench_resnet18.log" 2>&1
    tail -3 "$B/bench_resnet18.log"
    SDL[resnet18_b256]=$(value 'total images\/sec: ' "$B/bench_resnet18.log")
    timeout 300 "$B/resnet18_cuda" --device cuda --precision bf16 --steps 30 --warmup 5 --batch-size 256 >"$B/bench_resnet18_bf16.log" 2>&1
    tail -1 "$B/bench_resnet18_bf16.log"
    SDL[resnet18_b256_bf16]=$(value 'total images\/sec: ' "$B/bench_resnet18_bf16.log")
fi
if [ -x "$B/gpt2_cuda" ]; then
    gpt_b=16
    timeout 400 "$B/gpt2_cuda" --device cuda --tf32 --batch-size 16 --seq-len 1024 --steps 10 --warmup 2 >"$B/bench_gpt2.log" 2>&1
    if ! grep -q '^tokens/sec' "$B/bench_gpt2.log"; then # out of memory? (f32 activations, T x T attention probabilities kept)
        tail -3 "$B/bench_gpt2.log"
        echo "gpt2 B 16 failed; trying B 8"
        gpt_b=8
        timeout 300 "$B/gpt2_cuda" --device cuda --tf32 --batch-size 8 --seq-len 1024 --steps 10 --warmup 2 >"$B/bench_gpt2.log" 2>&1
    fi
    grep -E '^gpt2:|^final|^tokens|^model' "$B/bench_gpt2.log" || tail -3 "$B/bench_gpt2.log"
    SDL[gpt2]=$(value 'tokens\/sec: ' "$B/bench_gpt2.log")
    timeout 400 "$B/gpt2_cuda" --device cuda --precision bf16 --batch-size $gpt_b --seq-len 1024 --steps 10 --warmup 2 >"$B/bench_gpt2_bf16.log" 2>&1
    grep -E '^final|^tokens' "$B/bench_gpt2_bf16.log" || tail -3 "$B/bench_gpt2_bf16.log"
    SDL[gpt2_bf16]=$(value 'tokens\/sec: ' "$B/bench_gpt2_bf16.log")
fi

# ---- torch
declare -A REF SRC
if [ "${SKIP_TORCH:-0}" != 1 ] && "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    timeout 900 "$PY" bench/bench_torch_cuda.py >"$B/bench_torch.log" 2>&1
    grep -E '^torch|^TORCH' "$B/bench_torch.log"
    for n in mlp_b64 cnn_b64 resnet18_b256 gpt2_b16_eager gpt2_b16_compile; do
        v=$(grep "^TORCH name=$n " "$B/bench_torch.log" | sed 's/.*value=\([0-9.]*\).*/\1/')
        if [ -n "$v" ] && [ "$v" != 0 ]; then REF[$n]=$v; SRC[$n]=torch; fi
    done
else
    echo "torch with CUDA not found ($PY): ref = the issue's published figures"
fi
published() { case $1 in mlp_b64) echo 60000 ;; cnn_b64) echo 39000 ;; resnet18_b256) echo 31900 ;; gpt2_b16_eager) echo 341000 ;; gpt2_b16_compile) echo 394000 ;; esac; }

# ---- the lines
echo
echo "MFU: rate x training FLOPs per sample / 989 TFLOP/s (H100 SXM dense BF16 peak)"
bench_line() { # name sdl_value ref_name flops_per_sample unit
    local name=$1 s=${2:-} ref=${REF[$3]:-} src=${SRC[$3]:-published} f=$4 unit=$5
    [ -z "$ref" ] && ref=$(published "$3")
    [ -z "$s" ] && s=FAIL
    awk -v n="$name" -v s="$s" -v r="$ref" -v f="$f" -v u="$unit" -v p=$PEAK -v src="$src" 'BEGIN {
        if (s == "FAIL") { printf "BENCH name=%s sdl=FAIL ref=%.1f unit=%s ratio=0 mfu_sdl=0 mfu_ref=%.1f%% ref_src=%s\n", n, r, u, 100 * r * f / p, src; exit }
        fmt = "BENCH name=%s sdl=%.1f ref=%.1f unit=%s ratio=%.3f mfu_sdl=%.2f%% mfu_ref=%.2f%% ref_src=%s\n"
        printf fmt, n, s, r, u, (r > 0 ? s / r : 0), 100 * s * f / p, 100 * r * f / p, src }'
}
bench_line mlp_b64 "${SDL[mlp_b64]:-}" mlp_b64 1408512 samples/s
bench_line cnn_b64 "${SDL[cnn_b64]:-}" cnn_b64 71954688 samples/s
bench_line mlp_b64_static "${SDL[mlp_b64_static]:-}" mlp_b64 1408512 samples/s
bench_line cnn_b64_static "${SDL[cnn_b64_static]:-}" cnn_b64 71954688 samples/s
bench_line mlp_b64_graph "${SDL[mlp_b64_graph]:-}" mlp_b64 1408512 samples/s
bench_line cnn_b64_graph "${SDL[cnn_b64_graph]:-}" cnn_b64 71954688 samples/s
bench_line resnet18_b256_tf32 "${SDL[resnet18_b256]:-}" resnet18_b256 3332536320 images/s
bench_line "gpt2_124m_b${gpt_b:-16}_t1024_sdl_tf32_vs_bf16_eager" "${SDL[gpt2]:-}" gpt2_b16_eager 803261952 tokens/s
bench_line "gpt2_124m_b${gpt_b:-16}_t1024_sdl_tf32_vs_bf16_compile" "${SDL[gpt2]:-}" gpt2_b16_compile 803261952 tokens/s
bench_line resnet18_b256_sdl_bf16_vs_tf32 "${SDL[resnet18_b256_bf16]:-}" resnet18_b256 3332536320 images/s
bench_line "gpt2_124m_b${gpt_b:-16}_t1024_sdl_bf16_vs_bf16_eager" "${SDL[gpt2_bf16]:-}" gpt2_b16_eager 803261952 tokens/s
