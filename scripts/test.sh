#!/usr/bin/env bash
# Install everything (scripts/setup.sh) and run the default test suite. Slow and GPU tests are
# deselected by the addopts of [tool.pytest.ini_options] in pyproject.toml (there is no pytest.ini);
# run them with: .venv/bin/python -m pytest -m slow (or -m gpu on a machine with CUDA).
set -euo pipefail
cd "$(dirname "$0")/.."
export MUSILINGO_REQUIRE_LLAMACPP=1  # the runtime's tests run, never skip (tests/test_llamacpp.py)
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
set +e
.venv/bin/python -m pytest -q -ra "$@"
rc=$?
set -e
[ $rc -eq 5 ] && { echo "no tests were collected" >&2; exit 1; }
exit $rc
