#!/usr/bin/env bash
# The web UI of `chronos serve --ui` in Debian's chromium (tests/ui_browser.cjs), on a packed
# tiny model in a project folder made for the test (web/, configs/ and .deps/ from the source,
# data/ the test data, runs/ its own). Screenshots go to ARTIFACTS. Afterwards: the job the page
# cancelled left no process behind, and the server ends with status 0 on SIGTERM.
# Usage: ui_browser.sh CHRONOS TEST_DATA_DIR SOURCE_DIR ARTIFACTS
set -euo pipefail
chronos=$(readlink -f "$1") data=$(readlink -f "$2") src=$(readlink -f "$3") artifacts=$4
[ -x /usr/bin/chromium ] || { echo "FAIL: /usr/bin/chromium is missing (scripts/setup.sh installs it)"; exit 1; }
work=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"' EXIT
export CHRONOS_PROGRESS=0
mkdir -p "$artifacts" "$work/runs"
artifacts=$(readlink -f "$artifacts")
ln -s "$src/web" "$work/web"
ln -s "$src/configs" "$work/configs"
ln -s "$src/.deps" "$work/.deps"
ln -s "$data" "$work/data"
source "$(dirname "$0")/serve_start.sh"
serve_model "$work/runs" "$chronos" "$data"
cd "$work"
serve_start "$work" "$chronos" --model runs/tiny --ram-budget 25% --ui
fail=0
# Jobs only from config names in configs/ and files under data/ and runs/ (after resolving
# symlinks): each of these is refused with a 400 and an error object, and starts nothing.
ln -s /etc/hostname "$work/runs/outside.jsonl"
bad() {
  local body=$1 what=$2 code
  code=$(curl -s -o "$work/bad.json" -w '%{http_code}' -H 'Content-Type: application/json' -d "$body" "http://127.0.0.1:$port/ui/api/jobs")
  if [ "$code" = 400 ] && grep -q '"error"' "$work/bad.json"; then echo "ok: $what: 400"; else echo "FAIL: $what: $code $(cat "$work/bad.json")"; fail=1; fi
}
bad '{"kind":"train","config":"../configs/tiny","data":"data/prepared/pretrain.train.jsonl","steps":5}' "a config name with a path"
bad '{"kind":"train","config":"tiny","data":"/etc/passwd","steps":5}' "an absolute data path"
bad '{"kind":"train","config":"tiny","data":"data/../../../etc/passwd","steps":5}' "a data path climbing out"
bad '{"kind":"train","config":"tiny","data":"runs/outside.jsonl","steps":5}' "a symlink under runs/ leading out"
bad '{"kind":"train","config":"tiny","data":"data/prepared/pretrain.train.jsonl","steps":"5; rm -rf /"}' "steps that are not a number"
bad '{"kind":"shell","config":"tiny"}' "an unknown job kind"
bad '{"kind":"bench","model":"../runs","data":"data/prepared/pretrain.test.jsonl"}' "a model outside runs/"
jobs=$(curl -s "http://127.0.0.1:$port/ui/api/jobs")
[ "$jobs" = "[]" ] && echo "ok: no job was started" || { echo "FAIL: jobs started: $jobs"; fail=1; }
rm -f "$work/runs/outside.jsonl"
node "$src/tests/ui_browser.cjs" "$src/.deps/npm" "http://127.0.0.1:$port" "$src/web" "$artifacts" || fail=1
sleep 0.5
if pgrep -f "train pretrain --config $src/configs/tiny.json" > /dev/null; then
  echo "FAIL: the cancelled training job is still running"
  fail=1
else
  echo "ok: the cancelled job left no process behind"
fi
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=""
[ "$rc" = 0 ] && echo "ok: SIGTERM ends the server with status 0" || { echo "FAIL: the server ended with status $rc"; fail=1; }
exit $fail
