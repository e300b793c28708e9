#!/usr/bin/env bash
# Rebuild the offline default model from nothing: render the corpus, cache features, train,
# evaluate, and copy the result into src/musilingo/presets/default/. Resumable: every step skips
# finished work, so rerun the same command after an interruption.
# Training has three phases: configs/default/stage2.yaml (step 1550 of its 2480-step schedule),
# configs/default/anneal.yaml (480 steps continuing from it, the learning rate annealed to min_lr),
# then configs/default/key-focus.yaml (480 steps more with every key question trained 6 times more,
# its Basic Pitch features and answer transposed together: key_transpose).
#   bash scripts/build_default.sh                 # the shipped model: 4,000 clips, 1550 + 480 + 480 steps
#   CLIPS=1000 STEPS=200 ANNEAL_STEPS=60 KEY_STEPS=40 bash scripts/build_default.sh   # quicker, weaker
#   ANNEAL_STEPS=0 / KEY_STEPS=0 ...              # leave that phase out
set -euo pipefail
cd "$(dirname "$0")/.."
CLIPS=${CLIPS:-4000}
STEPS=${STEPS:-}
ANNEAL_STEPS=${ANNEAL_STEPS:-480}
KEY_STEPS=${KEY_STEPS:-480}
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
if [ "$KEY_STEPS" != 0 ]; then
  $M train --recipe configs/default/key-focus.yaml --init $RUN/model --max-steps "$KEY_STEPS"
  RUN=runs/default-key
fi
# dev split (the default is chosen on it; no baselines), then the test split with its baselines
$M eval corpus/manifest.jsonl --model $RUN/model --task attributes --split valid --no-baselines \
        --feature-cache cache/features --out $RUN/eval-attributes-valid
$M eval corpus/manifest.jsonl --model $RUN/model --task attributes --split test --feature-cache cache/features \
        --out $RUN/eval-attributes
$M eval corpus/manifest.jsonl --model $RUN/model --task caption --split test --feature-cache cache/features \
        --out $RUN/eval-caption
.venv/bin/python scripts/ship_default.py $RUN corpus/manifest.jsonl
echo "build_default: done in $(( ($(date +%s) - start) / 60 )) min"
