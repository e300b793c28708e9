#!/usr/bin/env bash
# Install what the caption metrics need outside Python, on a fresh Debian/Ubuntu machine (CI):
#   default-jre-headless  -> Java for pycocoevalcap (PTB tokenizer, METEOR 1.5)
#   wordnet-base, wordnet-sense-index -> /usr/share/wordnet, turned into nltk WordNet by
#                                         musilingo.metrics.wordnet (for nltk METEOR)
# Idempotent: installs only what is missing; run as root.
set -euo pipefail

packages=(default-jre-headless wordnet-base wordnet-sense-index)
missing=()
for pkg in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
# a Java already on PATH (e.g. another JRE) is enough for pycocoevalcap
if command -v java >/dev/null 2>&1; then
    missing=("${missing[@]/default-jre-headless}")
fi
read -r -a missing <<<"${missing[*]:-}"

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install_java_wordnet: nothing to install"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install_java_wordnet: need root to apt-get install: ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
echo "install_java_wordnet: installed ${missing[*]}"
