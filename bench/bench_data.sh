#!/bin/bash
# make bench-data: sdl_stream against PyTorch's DataLoader + PIL on the same JPEG shards,
# decode + augment + batch, W = 1 and 2 workers. BENCH lines: images/s and sdl / torch. Then
# the loader against the training step of the Fashion CNN and ResNet-18 (BENCH data_vs_step).
set -e
cd "$(dirname "$0")/.."
OUT=build/bench_data_shards
CC=${CC:-cc}
[ -f $OUT/jpeg32-000003.tar ] || /usr/bin/python3 bench/make_jpeg_shards.py $OUT
$CC -O3 -march=native -I. bench/bench_data.c -o build/bench_data -lm -lpthread
EPOCHS=${EPOCHS:-3}
for size in 64 224; do
  for w in 1 2; do
    s=$(./build/bench_data "$OUT/jpeg$size-{000000..000003}.tar" $size $w $EPOCHS | sed 's/.*: \([0-9.]*\) images\/s/\1/')
    t=$(/usr/bin/python3 bench/bench_data_torch.py "$OUT/jpeg$size-*.tar" $size $w $EPOCHS | sed 's/.*: \([0-9.]*\) images\/s/\1/')
    echo "BENCH data jpeg${size} workers=$w sdl=${s} torch=${t} images/s ratio=$(awk "BEGIN{printf \"%.2f\", $s/$t}")"
  done
done
# the loader against the CPU training step it feeds (the issue's target: loader >= 2x step):
# Fashion-MNIST PNG shards for examples/fashion_cnn.c's network, 32x32 JPEG shards for
# examples/resnet18.c's ResNet-18; W loader workers beside T step threads
if [ -f $OUT/fashion-000003.tar ] || ./build/bench_data --fashion-shards $OUT; then
  for wt in 1 2; do ./build/bench_data --step fashion_cnn "$OUT/fashion-{000000..000003}.tar" $wt $wt ${STEP_SECONDS:-5}; done
else
  echo "BENCH data_vs_step fashion_cnn skipped: no Fashion-MNIST (Debian's dataset-fashion-mnist)"
fi
for wt in 1 2; do ./build/bench_data --step resnet18 "$OUT/jpeg32-{000000..000003}.tar" $wt $wt ${STEP_SECONDS:-5}; done
