#!/usr/bin/env bash
# The start comparison of issue #18, one start after another, each resumed where a stop
# left it (safe to rerun at any time: finished starts are skipped).
#   configs/camvid_starts/run.sh FOLD_DIR [ITERATIONS] [START...]
# e.g. configs/camvid_starts/run.sh /work/data/camvid_fold_0006R0 300 cityscapes ade20k imagenet
set -euo pipefail
fold=${1:?usage: run.sh FOLD_DIR [ITERATIONS] [START...]}
iters=${2:-300}
shift $(( $# >= 2 ? 2 : 1 ))
starts=("$@")
[ ${#starts[@]} -gt 0 ] || starts=(cityscapes ade20k imagenet)
here=$(cd "$(dirname "$0")" && pwd)
for s in "${starts[@]}"; do
  out="runs/start_${s}_$(basename "$fold")_${iters}"
  if [ -f "$out/final.safetensors" ]; then echo "[$s] done: $out"; continue; fi
  if [ -f "$out/state.json" ]; then
    echo "[$s] resuming $out"
    seglite train --resume --out "$out" --no-progress
  else
    echo "[$s] starting $out"
    seglite train --config "$here/$s.toml" --dataset "$fold" --iterations "$iters" \
      --out "$out" --no-progress
  fi
done
