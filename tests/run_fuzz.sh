#!/usr/bin/env bash
# Runs a libFuzzer target for a bounded time on a copy of its seed corpus.
# Usage: run_fuzz.sh TARGET SEED_DIR SECONDS
set -euo pipefail
target=$1 seeds=$2 seconds=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$seeds"/. "$work"/
"$target" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
  -artifact_prefix="$work/" "$work" 2>&1 | tail -n 5
