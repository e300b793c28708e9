#!/usr/bin/env bash
# Rebuild the offline default model from nothing: render the corpus, cache features, train,
# evaluate, and copy the result into src/musilingo/presets/default/. Resumable: every step skips
# finished work, so rerun the same command after an interruption.
# Training has two phases: configs/default/stage2.yaml (step 1550 of its 2480-step schedule), then
# configs/default/anneal.yaml (480 steps continuing from it, the learning rate annealed to min_lr).
#   bash scripts/build_default.sh                 # the shipped model: 4,000 clips, 1550 + 480 steps
#   CLIPS=1000 STEPS=200 ANNEAL_STEPS=60 bash scripts/build_default.sh   # a quicker, weaker one
#   ANNEAL_STEPS=0 ...                            # ship the first phase (no anneal phase)
set -euo pipefail
cd "$(dirname "$0")/.."
CLIPS=${CLIPS:-4000}
STEPS=${STEPS:-}
ANNEAL_STEPS=${ANNEAL_STEPS:-480}
M=.venv/bin/musilingo
start=$(date +%s)
$M data render corpus --clips "$CLIPS"
# (train fills the feature cache for its train and valid clips itself; eval does the test clips)
$M train --recipe configs/default/stage2.yaml ${STEPS:+--max-steps "$STEPS" --end-at-step "$STEPS"}
RUN=runs/default
if [ "$ANNEAL_STEPS" != 0 ]; then
  $M train --recipe configs/default/anneal.yaml --max-steps "$ANNEAL_STEPS"
  RUN=runs/default-anneal
fi
$M eval corpus/manifest.jsonl --model $RUN/model --task attributes --split test --feature-cache cache/features \
        --out $RUN/eval-attributes
$M eval corpus/manifest.jsonl --model $RUN/model --task caption --split test --feature-cache cache/features \
        --out $RUN/eval-caption
.venv/bin/python scripts/ship_default.py $RUN corpus/manifest.jsonl
echo "build_default: done in $(( ($(date +%s) - start) / 60 )) min"
