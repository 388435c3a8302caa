#!/usr/bin/env bash
# Checks `chronos eval logits` against the independent NumPy implementation of the pinned
# details (tests/reference/chronos_reference.py), for the Chronos pattern (mla/swa, a prompt
# longer than the sliding window) and the all-GQA baseline.
# Usage: reference_logits.sh CHRONOS TEST_DATA_DIR SOURCE_DIR
set -euo pipefail
chronos=$1 data=$2 src=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
text="In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness was upon the face of the deep. Fellow-Citizens of the Senate and House of Representatives: the state of the Union is strong."
for variant in chronos baseline; do
  flag=""; [ "$variant" = baseline ] && flag="--baseline"
  "$chronos" -q init --config tiny $flag --tokenizer "$data/tokenizer.model" --seed 7 --out "$work/$variant"
  "$chronos" -q eval logits --model "$work/$variant" --text "$text" --out "$work/$variant.json" >/dev/null
  echo -n "$variant: "
  /usr/bin/python3 "$src/tests/reference/chronos_reference.py" "$work/$variant" "$work/$variant.json"  # bound: docs/testing.md
done
