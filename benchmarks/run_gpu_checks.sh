#!/usr/bin/env bash
# Every check that needs an NVIDIA GPU, as one script for a lent machine with no network:
#   1. the gpu-marked tests (bf16-autocast training, exact resume and CUDA inference, tiny models);
#   2. benchmarks/bench_gpu.py without compile (paper-scale MERT, generation, pipeline and the
#      7B-shaped projection-only training step, from features and with MERT in the loop).
# Usage: bash benchmarks/run_gpu_checks.sh OUTDIR     (PYTHON=... to pick the interpreter)
# Runs from a source checkout (PYTHONPATH=src), so a machine with torch/transformers/peft/accelerate
# needs only the few pure or manylinux wheels the package adds (soundfile, soxr, pyloudnorm).
set -uo pipefail
out=${1:-gpu-checks}
mkdir -p "$out"
PY=${PYTHON:-python3}
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi >"$out/nvidia-smi.txt" 2>&1
"$PY" -c "import torch, transformers, peft, accelerate; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__, 'accelerate', accelerate.__version__)" | tee "$out/versions.txt"
timeout 200 "$PY" -m pytest -q -m gpu -p no:cacheprovider -rs tests/test_train.py tests/test_model.py 2>&1 | tee "$out/pytest-gpu.log"
tests_rc=${PIPESTATUS[0]}
timeout 330 "$PY" benchmarks/bench_gpu.py --no-compile --json-out "$out/bench_gpu.json" 2>&1 | tee "$out/bench_gpu.log"
bench_rc=${PIPESTATUS[0]}
echo "gpu tests rc=$tests_rc bench rc=$bench_rc"
[ "$tests_rc" = 0 ] && [ "$bench_rc" = 0 ]
