#!/usr/bin/env bash
# The web UI's jobs through its API (`chronos serve --ui`), in a project folder made for the test
# (configs/ a copy, so that "apply best" writes there and not into the source tree): a benchmark
# of the served model shows its table, a pipeline with every stage cut to a few steps shows its
# per-stage table, a tuning study of one trial shows the trial and writes its best config once
# (a second apply to the same name is refused), and a stage's data path outside data/ is refused.
# Usage: ui_jobs.sh CHRONOS TEST_DATA_DIR SOURCE_DIR
set -euo pipefail
chronos=$(readlink -f "$1") data=$(readlink -f "$2") src=$(readlink -f "$3")
work=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"' EXIT
export CHRONOS_PROGRESS=0
mkdir -p "$work/runs"
ln -s "$src/web" "$work/web"
cp -r "$src/configs" "$work/configs"
ln -s "$src/.deps" "$work/.deps"
ln -s "$data" "$work/data"
source "$(dirname "$0")/serve_start.sh"
serve_model "$work/runs" "$chronos" "$data"
cd "$work"
serve_start "$work" "$chronos" --model runs/tiny --ram-budget 50% --ui
rc=0
/usr/bin/python3 - "http://127.0.0.1:$port" "$work" <<'PY' || rc=1
import json, os, sys, time, urllib.request, urllib.error
base, work = sys.argv[1], sys.argv[2]
failed = []
def check(ok, what):
    print(("ok: " if ok else "FAIL: ") + what)
    if not ok:
        failed.append(what)
def call(path, body=None):
    req = urllib.request.Request(base + path, data=None if body is None else json.dumps(body).encode(),
                                 method="GET" if body is None else "POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
stages = [{"name": n, "steps": s} for n, s in [("pretrain", 4), ("sft", 2), ("dpo", 2), ("orpo", 2), ("grpo", 1), ("distill", 2)]]
status, bad = call("/ui/api/jobs", {"kind": "pipeline", "config": "pipeline-tiny", "stages": [{"name": "sft", "data": "../etc/passwd"}]})
check(status == 400 and "error" in bad, "a stage's data path outside data/ is refused")
ids = {}
for body in [{"kind": "bench", "model": "runs/tiny", "data": "data/prepared/pretrain.test.jsonl"},
             {"kind": "pipeline", "config": "pipeline-tiny", "stages": stages},
             {"kind": "tune", "space": "tune-tiny", "trials": 1}]:
    status, j = call("/ui/api/jobs", body)
    check(status == 200, f"a {body['kind']} job starts ({j})")
    ids[body["kind"]] = j.get("id")
deadline = time.time() + 840  # three jobs share two cores with another test; ctest allows 900 s
jobs = {}
while time.time() < deadline:
    jobs = {k: call("/ui/api/jobs/" + i)[1] for k, i in ids.items() if i}
    if all(j["state"] != "running" for j in jobs.values()):
        break
    time.sleep(2)
for k, j in jobs.items():
    check(j["state"] == "finished", f"the {k} job finished ({j['state']}; {j['output'][-400:]!r})")
bench = jobs.get("bench", {}).get("result") or {}
check(len(bench.get("runs", [])) == 9 and all(r["decode_tok_s"] > 0 for r in bench["runs"]), "the benchmark has its 9 rows (3 budgets x 3 modes)")
pipe = jobs.get("pipeline", {}).get("result") or {}
check([s["name"] for s in pipe.get("stages", [])] == [s["name"] for s in stages] and all(s.get("held_out_ce") for s in pipe["stages"]),
      "the pipeline's table has every stage with its held-out CE")
trials = jobs.get("tune", {}).get("trials") or []
check(len(trials) == 1 and trials[0]["state"] == "complete", "the study shows its complete trial")
status, j = call(f"/ui/api/jobs/{ids['tune']}/apply", {"name": "tiny-ui"})
check(status == 200 and os.path.isfile(os.path.join(work, "configs", "tiny-ui.json")), f"apply best writes configs/tiny-ui.json ({j})")
status, j = call(f"/ui/api/jobs/{ids['tune']}/apply", {"name": "tiny-ui"})
check(status == 400, "a second apply to the same name is refused")
status, c = call("/ui/api/choices")
check("tiny-ui" in c.get("configs", []), "the new config is offered")
sys.exit(1 if failed else 0)
PY
kill -TERM "$pid"; wait "$pid" || rc=1; pid=""
exit $rc
