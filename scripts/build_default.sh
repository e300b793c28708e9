#!/usr/bin/env bash
# Rebuild the offline default model from nothing: render the corpus, cache features, train,
# evaluate, and copy the result into src/musilingo/presets/default/. Resumable: every step skips
# finished work, so rerun the same command after an interruption.
#   CLIPS=6000 STEPS=260 bash scripts/build_default.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CLIPS=${CLIPS:-6000}
STEPS=${STEPS:-260}
M=.venv/bin/musilingo
start=$(date +%s)
$M data render corpus --clips "$CLIPS"
$M features corpus/manifest.jsonl cache/features --model default --split train
$M features corpus/manifest.jsonl cache/features --model default --split valid
$M train --recipe configs/default/stage2.yaml --max-steps "$STEPS"
$M eval corpus/manifest.jsonl --model runs/default/model --task attributes --split test --feature-cache cache/features \
        --out runs/default/eval-attributes
$M eval corpus/manifest.jsonl --model runs/default/model --task caption --split test --feature-cache cache/features \
        --out runs/default/eval-caption
.venv/bin/python scripts/ship_default.py runs/default corpus/manifest.jsonl
echo "build_default: done in $(( ($(date +%s) - start) / 60 )) min"
