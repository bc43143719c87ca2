#!/usr/bin/env bash
# The CamVid val table of configs/README.md for a trained checkpoint: single scale at
# output stride 16 and 8 (Segmenter + torch backend, the zoo's code path), left-right
# flip, DeepLab multi-scale (0.5..1.75) + flip on the whole image (--native --accurate),
# and the Segmenter's tiled --accurate mode. About 25 minutes on 2 CPU cores.
#   configs/camvid_eval.sh [CHECKPOINT] [CAMVID_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
R=${1:-runs/camvid_mnv2_v3plus_s2/final.safetensors}
D=${2:-../shared/data/camvid}
O=configs/results/camvid
mkdir -p $O
for os in 16 8; do
  seglite eval "$R" "$D" --split val --threads 2 --output-stride $os --no-progress --json $O/single_os$os.json
  seglite eval "$R" "$D" --split val --threads 2 --native --accurate --output-stride $os --no-progress --json $O/msflip_os$os.json
done
seglite eval "$R" "$D" --split val --threads 2 --native --flip --output-stride 8 --no-progress --json $O/flip_os8.json
seglite eval "$R" "$D" --split val --threads 2 --accurate --no-progress --json $O/segmenter_accurate.json
