#!/usr/bin/env bash
# `chronos tune` through the command line: bad space files, the median pruner on a crafted
# objective, a timeout, a failing trial, kill -9 of the tuner in the middle of a trial and the
# resume (no finished trial lost, the cut one retried with the same parameters, no trial process
# left behind), and a real pretraining study on tiny whose best config `train pretrain` accepts.
# The study database is read back with Python's own sqlite3 module.
# Usage: tune_cli.sh CHRONOS TEST_DATA_DIR SOURCE_DIR
set -euo pipefail
chronos=$1 data=$2 src=$3
work=$(mktemp -d)
trap 'pkill -9 -f "$work" 2>/dev/null || true; rm -rf "$work"' EXIT
export CHRONOS_PROGRESS=0
fail=0
objective="$src/tests/tune_objective.py"

# A command study: x in [0, 1]; the objective sleeps PAUSE before each of its 5 reports.
space() {  # space FILE PAUSE EXIT PRUNER_STARTUP SAMPLER
  cat > "$1" <<JSON
{"trial": {"kind": "command", "command": ["/usr/bin/python3", "$objective", "{x}", "{log}", "$2", "$3"]},
 "objective": [{"metric": "f"}, {"metric": "g", "direction": "maximize", "weight": 0.01}],
 "params": [{"name": "x", "type": "float", "low": 0, "high": 1}],
 "sampler": {"name": "$5", "seed": 3},
 "pruner": {"n_startup_trials": $4}}
JSON
}
db_query() {  # db_query STUDY PYTHON-EXPRESSION-ON-rows -> prints its value
  /usr/bin/python3 - "$1/study.db" "$2" <<'PY'
import sqlite3, sys, json
con = sqlite3.connect(sys.argv[1])
rows = [dict(zip(("number", "state", "params", "value", "message", "retry_of"), r))
        for r in con.execute("SELECT number, state, params, value, message, retry_of FROM trials ORDER BY number")]
inter = {}
for n, s, v in con.execute("SELECT number, step, value FROM intermediate"):
    inter.setdefault(n, {})[s] = v
print(eval(sys.argv[2]))
PY
}

# ---- bad space files: one clear line, exit 1, no study written
bad() {  # bad NAME EXPECTED JSON
  echo "$3" > "$work/$1.json"
  if out=$("$chronos" tune --study "$work/bad-$1" --space "$work/$1.json" --trials 1 2>&1); then echo "FAIL: $1 accepted"; fail=1; return; fi
  if [ "$(wc -l <<<"$out")" -ne 1 ] || ! grep -q "^chronos: error: .*$2" <<<"$out"; then echo "FAIL: $1: $out"; fail=1; fi
  if [ -e "$work/bad-$1/study.db" ] && [ -n "$(db_query "$work/bad-$1" 'len(rows) or ""')" ]; then echo "FAIL: $1 ran trials"; fail=1; fi
}
head='"base_config": "tiny", "data": {"train": "t", "validation": "v"}, "objective": {"metric": "loss"}'
bad unknown "unknown parameter" "{$head, \"params\": [{\"name\": \"model.lambda_nope\", \"type\": \"float\", \"low\": 0, \"high\": 1}]}"
bad empty "empty range" "{$head, \"params\": [{\"name\": \"model.lambda_balance\", \"type\": \"float\", \"low\": 1, \"high\": 0.5}]}"
bad log "log scale needs low > 0" "{$head, \"params\": [{\"name\": \"model.lambda_balance\", \"type\": \"float\", \"low\": 0, \"high\": 1, \"log\": true}]}"
bad cond "condition on a missing parameter" "{$head, \"params\": [{\"name\": \"model.lambda_balance\", \"type\": \"float\", \"low\": 0.1, \"high\": 1, \"condition\": {\"model.lookahead_steps\": [1]}}]}"
bad json "not valid JSON" "{$head, "
if "$chronos" tune --study "$work/none" --trials 1 >/dev/null 2>&1; then echo "FAIL: a new study without --space ran"; fail=1; fi

# ---- pruning: after 3 complete trials, a trial whose loss is above their median stops
space "$work/prune.json" 0 0 3 random
"$chronos" tune --study "$work/prune" --space "$work/prune.json" --trials 12 > "$work/prune.out"
/usr/bin/python3 - "$work/prune/study.db" <<'PY' || fail=1
import sqlite3, sys, json, statistics
con = sqlite3.connect(sys.argv[1])
trials = list(con.execute("SELECT number, state, message FROM trials ORDER BY number"))
inter = {}
for n, s, v in con.execute("SELECT number, step, value FROM intermediate"):
    inter.setdefault(n, {})[s] = v
assert len(trials) == 12, trials
pruned = [t for t in trials if t[1] == "pruned"]
assert pruned, f"the crafted objective pruned nothing: {trials}"
for n, state, message in trials:
    done = [m for m, s, _ in trials if s == "complete" and m < n]  # complete before it started (one job at a time)
    if state == "pruned":
        step = max(inter[n])
        assert step < 5 and "pruned at step" in message, (n, message)
        assert len(done) >= 3, f"trial {n} pruned with only {len(done)} complete trials"
        med = statistics.median(inter[m][step] for m in done)
        assert min(v for s, v in inter[n].items() if s <= step) > med, (n, inter[n], med)
    else:
        assert state == "complete" and len(inter[n]) == 5, (n, state, inter.get(n))
print(f"pruned {len(pruned)} of {len(trials)} trials, each above the median of the complete ones")
PY
"$chronos" tune --study "$work/prune" --show > "$work/prune.show"
grep -q "^best: trial" "$work/prune.show" || { echo "FAIL: --show has no best trial"; cat "$work/prune.show"; fail=1; }
grep -q "^pareto front over f(min) g(max):" "$work/prune.show" || { echo "FAIL: --show has no Pareto front"; fail=1; }
grep -q "pruned [1-9]" "$work/prune.show" || { echo "FAIL: --show counts no pruned trial"; fail=1; }
if "$chronos" tune --study "$work/prune" --apply-best --out "$work/x.json" 2>"$work/err"; then echo "FAIL: apply-best on a command study"; fail=1; fi

# ---- a trial over its time is stopped and failed; a failing command fails its trial only
space "$work/slow.json" 2 0 99 random
# A study whose every trial failed says so with status 1 (the database keeps them).
if "$chronos" tune --study "$work/slow" --space "$work/slow.json" --trials 1 --timeout-per-trial 1 >/dev/null 2>"$work/slow.err"; then
  echo "FAIL: exit status 0 with every trial failed"; fail=1
fi
grep -q "no trial completed" "$work/slow.err" || { echo "FAIL: no message for a study without a completed trial"; fail=1; }
[ "$(db_query "$work/slow" 'rows[0]["state"] + " " + rows[0]["message"][:9]')" = "fail timed out" ] || { echo "FAIL: timeout"; db_query "$work/slow" rows; fail=1; }
space "$work/failing.json" 0 3 99 random
"$chronos" tune --study "$work/failing" --space "$work/failing.json" --trials 2 >/dev/null 2>&1 || true
[ "$(db_query "$work/failing" '" ".join(r["state"] for r in rows)')" = "fail fail" ] || { echo "FAIL: failing command"; fail=1; }
db_query "$work/failing" 'rows[0]["message"]' | grep -q "exited with status 3: failing as asked" || { echo "FAIL: failure message"; db_query "$work/failing" rows; fail=1; }

# ---- kill -9 of the tuner in the middle of a trial, then resume
space "$work/kill.json" 0.8 0 99 tpe  # 0.8 s per report: trial 2 is still running seconds after its first
"$chronos" tune --study "$work/kill" --space "$work/kill.json" --trials 5 > "$work/kill1.out" &
tuner=$!
for _ in $(seq 400); do  # until trial 2 is running and has reported a step
  [ -e "$work/kill/study.db" ] && [ "$(db_query "$work/kill" 'sum(1 for r in rows if r["state"] == "complete") == 2 and 2 in inter' 2>/dev/null)" = True ] && break
  sleep 0.1
done
kill -9 $tuner
wait $tuner 2>/dev/null || true
before=$(db_query "$work/kill" '[(r["number"], r["value"]) for r in rows if r["state"] == "complete"]')
[ "$(db_query "$work/kill" '[r["state"] for r in rows]')" = "['complete', 'complete', 'running']" ] || { echo "FAIL: state at the kill"; db_query "$work/kill" rows; fail=1; }
for _ in $(seq 1 100); do pgrep -f "$work/kill/trials" >/dev/null || break; sleep 0.1; done  # they die with the tuner, asynchronously
if pgrep -f "$work/kill/trials" >/dev/null; then echo "FAIL: a trial process outlived the tuner"; pgrep -af "$work/kill/trials"; fail=1; fi
"$chronos" tune --study "$work/kill" --trials 5 > "$work/kill2.out"  # --space left out: the study's own
grep -q "1 trial(s) interrupted" "$work/kill2.out" || { echo "FAIL: resume did not report the interrupted trial"; cat "$work/kill2.out"; fail=1; }
/usr/bin/python3 - "$work/kill/study.db" "$before" <<'PY' || fail=1
import sqlite3, sys, ast
con = sqlite3.connect(sys.argv[1])
rows = list(con.execute("SELECT number, state, params, value, retry_of FROM trials ORDER BY number"))
before = ast.literal_eval(sys.argv[2])
states = [r[1] for r in rows]
assert states.count("interrupted") == 1 and states[2] == "interrupted", states
assert sum(s in ("complete", "pruned", "fail") for s in states) == 5, states
retry = [r for r in rows if r[4] == 2]
assert len(retry) == 1 and retry[0][2] == rows[2][2] and retry[0][1] == "complete", (retry, rows[2])
for number, value in before:
    assert rows[number][1] == "complete" and rows[number][3] == value, (number, rows[number], value)
print(f"resumed: {len(rows)} trials, trial 2 retried as {retry[0][0]} with its parameters, finished trials unchanged")
PY
if "$chronos" tune --study "$work/kill" --space "$work/prune.json" --trials 6 >/dev/null 2>&1; then echo "FAIL: resume with another space"; fail=1; fi

# ---- a real study: two pretraining trials of tiny, then its best config trains
cat > "$work/real.json" <<JSON
{"base_config": "tiny",
 "data": {"train": "$data/prepared/pretrain.train.jsonl", "validation": "$data/prepared/pretrain.validation.jsonl", "tokenizer": "$data/tokenizer.model"},
 "trial": {"steps": 10, "eval_interval": 5, "eval_tokens": 2000},
 "objective": [{"metric": "loss"}, {"metric": "switch_rate"}],
 "params": [{"name": "model.lambda_balance", "type": "float", "low": 0.01, "high": 1, "log": true},
            {"name": "model.lookahead_steps", "type": "int", "low": 1, "high": 2},
            {"name": "train.lr", "type": "float", "low": 0.001, "high": 0.01, "log": true}]}
JSON
"$chronos" tune --study "$work/real" --space "$work/real.json" --trials 2 --jobs 2 > "$work/real.out" || { cat "$work/real.out"; fail=1; }
[ "$(db_query "$work/real" '" ".join(r["state"] for r in rows)')" = "complete complete" ] || { echo "FAIL: real trials"; db_query "$work/real" rows; fail=1; }
[ "$(db_query "$work/real" 'sorted(len(v) for v in inter.values())')" = "[2, 2]" ] || { echo "FAIL: intermediate values of real trials"; fail=1; }
# trial 0 is the base config (tiny: lambda_balance 0.2, lookahead_steps 2, lr 0.003)
[ "$(db_query "$work/real" 'sorted(json.loads(rows[0]["params"]).items())')" = "[('model.lambda_balance', 0.2), ('model.lookahead_steps', 2), ('train.lr', 0.003)]" ] \
  || { echo "FAIL: trial 0 is not the base config"; db_query "$work/real" 'rows[0]'; fail=1; }
"$chronos" tune --study "$work/real" --apply-best --out "$work/best.json"
/usr/bin/python3 - "$work/best.json" "$work/real/study.db" <<'PY' || fail=1
import json, sqlite3, sys
best = json.load(open(sys.argv[1]))
con = sqlite3.connect(sys.argv[2])
number, params, value = min(((n, json.loads(p), v) for n, p, v in con.execute("SELECT number, params, value FROM trials WHERE state = 'complete'")), key=lambda r: r[2])
assert best["_tuned"]["trial"] == number, (best["_tuned"], number)
for k, v in params.items():
    section, field = k.split(".", 1)
    assert best[section][field] == v, (k, best[section].get(field), v)
assert best["train"]["steps"] == 10
PY
"$chronos" -q train pretrain --config "$work/best.json" --data "$data/prepared/pretrain.train.jsonl" --tokenizer "$data/tokenizer.model" --steps 2 --out "$work/best-model" \
  || { echo "FAIL: train pretrain refused the applied config"; fail=1; }
out=$("$chronos" tune --study "$work/real" --trials 2)  # already done: runs nothing
grep -q "0 trial(s) finished in this run" <<<"$out" || { echo "FAIL: a finished study ran again: $out"; fail=1; }

[ $fail -eq 0 ] && echo "tune_cli: ok"
exit $fail
