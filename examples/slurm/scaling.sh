#!/bin/bash
# scaling.sh - the scaling driver of the JSC course, for any program that prints
# "total images/sec: X".
#   examples/slurm/scaling.sh runs.csv [out.csv]
# runs.csv has rows NODES,GPUS_PER_NODE,LOCAL_BATCH_SIZE (a header line is skipped). Each
# row runs NODES x GPUS_PER_NODE ranks with --batch-size LOCAL_BATCH_SIZE; out.csv gets
#   NODES,LOCAL_BATCH_SIZE,GPUS_PER_NODE,TOTAL_IMAGES_PER_SEC,SPEEDUP,EFFICIENCY
# with K = NODES x GPUS_PER_NODE and the first row as reference:
#   speedup = T(K) / T(Kref),  efficiency = T(K) / ((K / Kref) T(Kref)).
# Inside a SLURM allocation the ranks start with srun, elsewhere with mpirun -np K on this
# machine. PROG (default: build/fashion_ddp, one short epoch) and LAUNCH override both.
set -euo pipefail
in=${1:?usage: scaling.sh runs.csv [out.csv]}
out=${2:-scaling_results.csv}
PROG=${PROG:-./build/fashion_ddp --epochs 1 --steps-per-epoch 20 --limit 12800 --threads 1}
if [ ! -x "${PROG%% *}" ] && [ "${PROG%% *}" = ./build/fashion_ddp ]; then
    mkdir -p build
    mpicc -O3 -march=native -I. examples/fashion_ddp.c -o build/fashion_ddp -lm -lpthread
fi
echo "NODES,LOCAL_BATCH_SIZE,GPUS_PER_NODE,TOTAL_IMAGES_PER_SEC,SPEEDUP,EFFICIENCY" >"$out"
kref="" tref=""
while IFS=, read -r nodes gpn lbs rest; do
    nodes=$(echo "$nodes" | tr -d ' \r'); gpn=$(echo "$gpn" | tr -d ' \r'); lbs=$(echo "$lbs" | tr -d ' \r')
    case "$nodes" in ''|*[!0-9]*) continue ;; esac # header, blank lines, comments
    k=$((nodes * gpn))
    if [ -n "${LAUNCH:-}" ]; then launch="$LAUNCH"
    elif [ -n "${SLURM_JOB_ID:-}" ]; then launch="srun -N $nodes --ntasks-per-node $gpn"
    else launch="mpirun --allow-run-as-root --oversubscribe -np $k"; fi
    echo "== $nodes node(s) x $gpn rank(s), batch $lbs: $launch $PROG --batch-size $lbs" >&2
    t=$($launch $PROG --batch-size "$lbs" </dev/null | tee /dev/stderr | sed -n 's/^total images\/sec: *//p' | tail -1)
    [ -n "$t" ] || { echo "no 'total images/sec:' line from the run" >&2; exit 1; }
    if [ -z "$kref" ]; then kref=$k tref=$t; fi
    awk -v n="$nodes" -v b="$lbs" -v g="$gpn" -v t="$t" -v k="$k" -v kr="$kref" -v tr="$tref" \
        'BEGIN { printf "%s,%s,%s,%.2f,%.3f,%.3f\n", n, b, g, t, t / tr, t / ((k / kr) * tr) }' >>"$out"
done <"$in"
cat "$out"
