#!/usr/bin/env bash
# Every check that needs an NVIDIA GPU, as one script for a lent machine with no network:
#   1. the gpu-marked tests (bf16-autocast training, exact resume and CUDA inference, tiny models);
#   2. benchmarks/bench_gpu.py without compile (paper-scale MERT, generation, pipeline and the
#      7B-shaped projection-only training step, from features and with MERT in the loop).
#   fast (second argument, instead of 1 and 2; issue 18): bench_gpu.py --sections fast, the lean path
#      (greedy_decode, static cache, compiled decode step / CUDA graphs) from host audio through
#      bf16 MERT at batches 64/128/256, with its tokens checked against the eager loop. Sized for
#      one 10-minute device call (the model build ~1 min, each batch size's graphs ~1 min).
# Usage: bash benchmarks/run_gpu_checks.sh OUTDIR [fast]     (PYTHON=... to pick the interpreter)
# Runs from a source checkout (PYTHONPATH=src), so a machine with torch/transformers/peft/accelerate
# needs only the few pure or manylinux wheels the package adds (soundfile, soxr, pyloudnorm).
set -uo pipefail
out=${1:-gpu-checks}
mkdir -p "$out"
PY=${PYTHON:-python3}
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi >"$out/nvidia-smi.txt" 2>&1
"$PY" -c "import torch, transformers, peft, accelerate; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__, 'accelerate', accelerate.__version__)" | tee "$out/versions.txt"
if [ "${2:-}" = fast ]; then
  timeout 540 "$PY" benchmarks/bench_gpu.py --sections fast --repeats 3 --json-out "$out/bench_gpu_fast.json" 2>&1 | tee "$out/bench_gpu_fast.log"
  rc=${PIPESTATUS[0]}
  echo "bench fast rc=$rc"
  exit "$rc"
fi
timeout 200 "$PY" -m pytest -q -m gpu -p no:cacheprovider -rs tests/test_train.py tests/test_model.py 2>&1 | tee "$out/pytest-gpu.log"
tests_rc=${PIPESTATUS[0]}
timeout 330 "$PY" benchmarks/bench_gpu.py --no-compile --json-out "$out/bench_gpu.json" 2>&1 | tee "$out/bench_gpu.log"
bench_rc=${PIPESTATUS[0]}
echo "gpu tests rc=$tests_rc bench rc=$bench_rc"
[ "$tests_rc" = 0 ] && [ "$bench_rc" = 0 ]
