#!/usr/bin/env bash
# Rebuild the offline default model from nothing: render the corpus, cache features, train,
# evaluate, and copy the result into src/musilingo/presets/default/. Resumable: every step skips
# finished work, so rerun the same command after an interruption.
#   bash scripts/build_default.sh                 # the shipped model: 4,000 clips, step 1550 of the recipe's 2480
#   CLIPS=1000 STEPS=200 bash scripts/build_default.sh   # a quicker, weaker one
set -euo pipefail
cd "$(dirname "$0")/.."
CLIPS=${CLIPS:-4000}
STEPS=${STEPS:-}
M=.venv/bin/musilingo
start=$(date +%s)
$M data render corpus --clips "$CLIPS"
# (train fills the feature cache for its train and valid clips itself; eval does the test clips)
$M train --recipe configs/default/stage2.yaml ${STEPS:+--max-steps "$STEPS" --end-at-step "$STEPS"}
$M eval corpus/manifest.jsonl --model runs/default/model --task attributes --split test --feature-cache cache/features \
        --out runs/default/eval-attributes
$M eval corpus/manifest.jsonl --model runs/default/model --task caption --split test --feature-cache cache/features \
        --out runs/default/eval-caption
.venv/bin/python scripts/ship_default.py runs/default corpus/manifest.jsonl
echo "build_default: done in $(( ($(date +%s) - start) / 60 )) min"
