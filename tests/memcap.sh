#!/usr/bin/env bash
# bench/memcap.sh runs a command inside a memory cgroup, and `generate --ram-budget auto` sizes
# its expert pool from that limit. Skipped (status 77) where the machine cannot create one
# (not root, or no cgroup memory controller).
# Usage: memcap.sh CHRONOS TEST_DATA_DIR SOURCE_DIR
set -euo pipefail
chronos=$1 data=$2 src=$3
if [ "$(id -u)" -ne 0 ] || ! { [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ] ||
                               grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null; }; then
  echo "skipped: needs root and the cgroup memory controller"; exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$chronos" -q init --config tiny --tokenizer "$data/tokenizer.model" --out "$work/m" --seed 3
"$chronos" -q pack --model "$work/m" >/dev/null
bash "$src/bench/memcap.sh" 300 "$chronos" generate --model "$work/m" --prompt "The state of the Union" --max-tokens 4 \
  --seed 1 --no-text --metrics-json "$work/g.json" 2>"$work/err"
cat "$work/err"
/usr/bin/python3 - "$work/g.json" <<'PY'
import json, sys
split = json.load(open(sys.argv[1]))["memory_split"]
assert split["limit_bytes"] == 300 << 20, split
assert "cgroup" in split["limit_source"], split
parts = sum(split[k] for k in ("code_bytes", "dense_bytes", "session_bytes", "margin_bytes", "expert_bytes"))
assert parts <= split["limit_bytes"], split
print("memcap: the generation saw its 300 MiB cgroup limit:", split["limit_source"])
PY
grep -q "memcap: limit 300 MiB" "$work/err" || { echo "FAIL: memcap.sh did not report the limit"; exit 1; }
