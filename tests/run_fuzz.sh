#!/usr/bin/env bash
# Runs a libFuzzer target for a bounded time on a copy of its seed corpus; any crash, sanitizer
# report, timeout (-timeout, seconds per input) or allocation above -rss_limit_mb fails it.
# Usage: run_fuzz.sh TARGET SEED_DIR SECONDS [MAX_LEN]
# MAX_LEN (bytes, default 4096) must cover the largest seed, or libFuzzer truncates it.
set -euo pipefail
target=$1 seeds=$2 seconds=$3 max_len=${4:-4096}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$seeds"/. "$work"/
"$target" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
  -artifact_prefix="$work/" "$work" 2>&1 | tail -n 5
