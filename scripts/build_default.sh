#!/usr/bin/env bash
# Rebuild the offline default model from nothing: render the corpus, cache features, train,
# evaluate, and copy the result into src/musilingo/presets/default/. Resumable: every step skips
# finished work, so rerun the same command after an interruption.
# Training has five phases: configs/default/stage2.yaml (step 1550 of its 2480-step schedule),
# configs/default/anneal.yaml (480 steps continuing from it, the learning rate annealed to min_lr),
# then configs/default/key-focus.yaml (480 steps more with every key question trained 6 times more,
# its Basic Pitch features and answer transposed together: key_transpose), then
# configs/grounded/facts.yaml (160 steps more reading the measured facts, with MusicCaps text-only
# samples and the pseudo-labelled Debian recordings of `musilingo data real-music`, on a seeded
# 900-clip subset of the train split: scripts/grounded_subsets.py), then configs/grounded/refit.yaml
# (60 steps more on the same data at a lower learning rate). The shipped default is phases 4-5 of
# this script rebuilt from the shipped phase-3 weights (PHASE3 below; model card). The default
# shipped before it had a sixth phase, configs/grounded/gloss.yaml, to unlearn a caption gloss its
# earlier phases had learnt; a rebuild reads the fixed text from phase 4 on and does not need it
# (GLOSS_STEPS=80 runs it). Each step prints its minutes.
#   bash scripts/build_default.sh   # the shipped model: 4,000 clips, 1550 + 480 + 480 + 160 + 60 steps
#   CLIPS=1000 STEPS=200 ANNEAL_STEPS=60 KEY_STEPS=40 bash scripts/build_default.sh   # quicker, weaker
#   ANNEAL_STEPS=0 / KEY_STEPS=0 / GROUNDED=0 ... # leave that phase out
#   PHASE3=DIR bash scripts/build_default.sh   # start the grounded phases from a phase-3 model
#   FACTS_SEED=46 REFIT_SEED=47 ...   # phases 4-5 with the recipes' own seeds (the first seed)
# PHASE3 skips phases 1-3 (hours on a GPU, days on a CPU). The shipped phase-3 weights are in git
# history, the default before commit 2855429:
#   mkdir -p /tmp/p3 && git archive 2855429^ src/musilingo/presets/default | tar -x -C /tmp/p3
#   PHASE3=/tmp/p3/src/musilingo/presets/default bash scripts/build_default.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CLIPS=${CLIPS:-4000}
STEPS=${STEPS:-}
ANNEAL_STEPS=${ANNEAL_STEPS:-480}
KEY_STEPS=${KEY_STEPS:-480}
FACTS_SEED=${FACTS_SEED:-146}
REFIT_SEED=${REFIT_SEED:-147}
GROUNDED=${GROUNDED:-1}
GLOSS_STEPS=${GLOSS_STEPS:-0}
PHASE3=${PHASE3:-}
if [ -n "$PHASE3" ] && [ ! -f "$PHASE3/config.json" ]; then
  echo "build_default: PHASE3=$PHASE3 is not a model folder (no config.json)" >&2; exit 2
fi
if [ -n "$PHASE3" ] && [ "$GROUNDED" = 0 ]; then  # there would be nothing to train or ship
  echo "build_default: PHASE3 starts the grounded phases; it cannot go with GROUNDED=0" >&2; exit 2
fi
M=.venv/bin/musilingo
start=$(date +%s)
step_start=$start
took() { echo "build_default: $1 took $(( ($(date +%s) - step_start) / 60 )) min"; step_start=$(date +%s); }
$M data render corpus --clips "$CLIPS"; took "render"
# (train fills the feature cache for its train and valid clips itself; eval does the test clips)
if [ -n "$PHASE3" ]; then
  # a model folder, not a run: the grounded phases below read "$RUN/model"
  RUN=runs/phase3; mkdir -p $RUN; rm -rf $RUN/model; cp -r "$PHASE3" $RUN/model
else
  $M train --recipe configs/default/stage2.yaml ${STEPS:+--max-steps "$STEPS" --end-at-step "$STEPS"}
  took "phase 1 (with feature caching)"
  RUN=runs/default
  if [ "$ANNEAL_STEPS" != 0 ]; then
    $M train --recipe configs/default/anneal.yaml --max-steps "$ANNEAL_STEPS"; took "anneal phase"
    RUN=runs/default-anneal
  fi
  if [ "$KEY_STEPS" != 0 ]; then
    $M train --recipe configs/default/key-focus.yaml --init $RUN/model --max-steps "$KEY_STEPS"
    took "key phase"
    RUN=runs/default-key
  fi
fi
if [ "$GROUNDED" != 0 ]; then
  $M data real-music realmusic; took "real recordings (download, clip, pseudo-label)"
  .venv/bin/python scripts/grounded_subsets.py corpus/manifest.jsonl
  # Seeds 146 / 147: the shipped default is the second seed of these two phases, chosen on dev
  # (the recipes' own seeds, 46 / 47, are the first; docs/grounded.md compares the two).
  $M train --recipe configs/grounded/facts.yaml --init $RUN/model --seed "$FACTS_SEED"
  took "grounded phase (with facts)"
  RUN=runs/grounded-facts
  $M train --recipe configs/grounded/refit.yaml --init $RUN/model --seed "$REFIT_SEED"
  took "refit phase"
  RUN=runs/grounded-refit
  if [ "$GLOSS_STEPS" != 0 ]; then
    $M train --recipe configs/grounded/gloss.yaml --init $RUN/model --max-steps "$GLOSS_STEPS"
    took "gloss phase"
    RUN=runs/grounded-gloss
  fi
fi
# dev split (the default is chosen on it; no baselines), then the test split with its baselines
# (the grounded phase's baselines learn from its 900 training clips: sub-test.jsonl)
EVAL=corpus/manifest.jsonl; [ "$GROUNDED" != 0 ] && EVAL=corpus/sub-test.jsonl
$M eval corpus/manifest.jsonl --model $RUN/model --task attributes --split valid --no-baselines \
        --feature-cache cache/features --out $RUN/eval-attributes-valid
$M eval $EVAL --model $RUN/model --task attributes --split test --feature-cache cache/features \
        --out $RUN/eval-attributes
$M eval $EVAL --model $RUN/model --task caption --split test --feature-cache cache/features \
        --out $RUN/eval-caption
took "evaluation"
.venv/bin/python scripts/ship_default.py $RUN corpus/manifest.jsonl
echo "build_default: done in $(( ($(date +%s) - start) / 60 )) min"
