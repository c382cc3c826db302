#!/bin/bash
# 10_large_batch.sh - JSC day 4's large-batch study, sized for a small CPU: 10_resnet.c at a small
# and a large global batch (micro-batches of MICRO images, SMALL or LARGE of them per update as
# simulated ranks) for each setting below, then the table and its bar chart:
#   $OUT/large_batch.csv  setting,batch,final_val_acc,best_val_acc    $OUT/large_batch.png
# Every run: ResNet-DEPTH of width WIDTH, the first LIMIT training and test images, EPOCHS epochs,
# step decay at 80/150 and 120/150 of the run (clr: one-cycle), warm-up over WARMUP epochs; each
# run's log is $OUT/<setting>_<batch>.log. Niced, one thread. Defaults: the README's table.
#   bash examples/tutorials/10_large_batch.sh
#   EPOCHS=1 LIMIT=512 MICRO=16 LARGE=8 bash examples/tutorials/10_large_batch.sh   (a smoke run)
# ONLY="LARS LAMB" runs those settings only. BUILD (build/tutorials) holds 10_resnet and
# 10_large_batch_plot; they are built when missing.
set -euo pipefail
build=${BUILD:-build/tutorials} out=${OUT:-large_batch}
depth=${DEPTH:-8} width=${WIDTH:-8} limit=${LIMIT:-4096} epochs=${EPOCHS:-6} warmup=${WARMUP:-2}
micro=${MICRO:-64} small=${SMALL:-1} large=${LARGE:-16}
mkdir -p "$build" "$out"
for p in 10_resnet 10_large_batch_plot; do
    [ -x "$build/$p" ] || cc -O3 -march=native -I. "examples/tutorials/$p.c" -o "$build/$p" -lm -lpthread
done
# setting name, then its flags; --lr is the rate at batch 256, rescaled by global batch / 256
settings=(
    "none|--optimizer SGD --lr 0.1 --lr_scheduler step_wise_decay"
    "linear|--optimizer SGD --lr 0.1 --lr_scheduler step_wise_decay --enable_lr_rescaling"
    "warmup|--optimizer SGD --lr 0.1 --lr_scheduler step_wise_decay_with_warmup --enable_lr_rescaling"
    "LARS|--optimizer LARS --lr 1 --lr_scheduler step_wise_decay_with_warmup --enable_lr_rescaling"
    "LAMB|--optimizer LAMB --lr 0.02 --lr_scheduler step_wise_decay_with_warmup --enable_lr_rescaling"
    "clr|--optimizer SGD --lr 0.1 --lr_scheduler clr --enable_lr_rescaling"
)
csv="$out/large_batch.csv"
echo "setting,batch,final_val_acc,best_val_acc" > "$csv"
SECONDS=0
for s in "${settings[@]}"; do
    name=${s%%|*} flags=${s#*|}
    [[ -z "${ONLY:-}" || " $ONLY " == *" $name "* ]] || continue
    for accum in "$small" "$large"; do
        batch=$((micro * accum)) log="$out/${name}_$((micro * accum)).log"
        # shellcheck disable=SC2086 # $flags is a list of flags
        SDL_NUM_THREADS=1 nice -n 10 "$build/10_resnet" --depth "$depth" --width "$width" --limit "$limit" --epochs "$epochs" \
            --warmup-epochs "$warmup" --batch-size "$micro" --accum-steps "$accum" $flags > "$log"
        read -r final best < <(awk '/^final:/ { print $3, $5 }' "$log")
        echo "$name,$batch,$final,$best" | tee -a "$csv"
    done
done
echo "$(($(wc -l < "$csv") - 1)) runs in ${SECONDS}s"
"$build/10_large_batch_plot" "$csv" "$out/large_batch.png"
