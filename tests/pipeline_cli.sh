#!/usr/bin/env bash
# `chronos pipeline` through the command line, on the committed configs/pipeline-tiny.json with
# the test data and fewer steps: all six stages end to end with the final table; the same
# pipeline killed (kill -9) in the middle of stage 4 and rerun skips stages 1-3 untouched,
# resumes stage 4 from its last checkpoint and ends with models byte-equal to the uninterrupted
# run's; a third run skips everything; bad pipeline files are refused with one line.
# Usage: pipeline_cli.sh CHRONOS TEST_DATA_DIR SOURCE_DIR
set -euo pipefail
chronos=$1 data=$2 src=$3
work=$(mktemp -d)
trap 'pkill -9 -f "$work" 2>/dev/null || true; rm -rf "$work"' EXIT
export CHRONOS_PROGRESS=0
fail=0
check() {  # check CONDITION-EXIT-STATUS MESSAGE
  if [ "$1" -ne 0 ]; then echo "FAIL: $2"; fail=1; else echo "ok: $2"; fi
}

# The committed file with the test data and short stages (ORPO long enough to be cut in the middle).
/usr/bin/python3 - "$src/configs/pipeline-tiny.json" "$data" "$work/p.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
data = sys.argv[2]
def fix(v):
    return v.replace("data/prepared", data + "/prepared").replace("data/tokenizer.model", data + "/tokenizer.model") if isinstance(v, str) else v
p["tokenizer"] = fix(p["tokenizer"])
p["eval"] = {k: fix(v) for k, v in p["eval"].items()}
p["eval"].update({"batches": 1, "prompts_limit": 4, "max_new_tokens": 8, "routing_tokens": 600})
steps = {"pretrain": 20, "sft": 6, "dpo": 6, "orpo": 60, "grpo": 3, "distill": 6}
for s in p["stages"]:
    s["data"] = fix(s["data"])
    s["steps"] = steps[s["stage"]]
    s["options"]["eval-interval"] = 0
    s["options"]["seq-len"] = 64
    if s["stage"] == "orpo":
        s["options"]["save-interval"] = 4
    if s["stage"] == "pretrain":
        s["options"]["batch-size"] = 4
json.dump(p, open(sys.argv[3], "w"), indent=1)
PY
[ "$(/usr/bin/python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["stages"]))' "$work/p.json")" = 6 ]
check $? "the committed pipeline-tiny has six stages"

# 1. Straight through.
"$chronos" --threads 2 pipeline --config "$work/p.json" --out "$work/A" > "$work/A.out" 2>&1
check $? "the pipeline runs stages 1-6 end to end"
/usr/bin/python3 - "$work/A/pipeline.json" <<'PY'
import json, sys, math
t = json.load(open(sys.argv[1]))
assert [r["stage"] for r in t["stages"]] == ["pretrain", "sft", "dpo", "orpo", "grpo", "distill"], t
for r in t["stages"]:
    for k in ("objective", "held_out_ce", "preference_accuracy", "exact_match", "switch_rate", "lookahead_recall_t1", "train_tok_s"):
        assert k in r and math.isfinite(r[k]), (r["name"], k, r)
    assert 0 <= r["preference_accuracy"] <= 1 and 0 <= r["exact_match"] <= 1, r
assert t["stages"][0]["router_drift"] == 0 or abs(t["stages"][0]["router_drift"]) < 1e-6, t["stages"][0]
assert all(r["router_drift"] > 0 for r in t["stages"][1:5]), t
assert "rollout_tok_s" in t["stages"][4], t["stages"][4]
PY
check $? "the table has every figure for every stage (drift 0 for the pretrained model itself)"
grep -q "recall@1 t+1" "$work/A.out"
check $? "the table is printed"

# 2. Killed in the middle of stage 4, then rerun.
"$chronos" --threads 2 pipeline --config "$work/p.json" --out "$work/B" > "$work/B1.out" 2>&1 &
pid=$!
cut=""
# Polled for as long as the pipeline runs (how long stages 1-3 take depends on the machine and
# its load; ctest's timeout bounds the whole test).
while kill -0 "$pid" 2>/dev/null; do
  if [ -s "$work/B/orpo/trainer_state.json" ]; then
    step=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["step"])' "$work/B/orpo/trainer_state.json" 2>/dev/null || echo 0)
    if [ "$step" -ge 4 ] && [ "$step" -lt 60 ]; then kill -9 "$pid"; cut=$step; break; fi
  fi
  sleep 0.05
done
wait "$pid" 2>/dev/null || true
[ -n "$cut" ]
check $? "the pipeline was killed in the middle of stage 4 (checkpoint at step ${cut:-none} of 60; it ended on its own otherwise)"
# The stage processes die with their parent (PDEATHSIG), asynchronously: allow them 10 s.
for _ in $(seq 1 100); do pgrep -f "$work/B" > /dev/null || break; sleep 0.1; done
! pgrep -f "$work/B" > /dev/null
check $? "no stage process outlives the killed pipeline"
before=$(stat -c %Y:%s "$work/B/pretrain/model.safetensors" "$work/B/sft/model.safetensors" "$work/B/dpo/model.safetensors" | tr '\n' ' ')
"$chronos" --threads 2 pipeline --config "$work/p.json" --out "$work/B" > "$work/B2.out" 2>&1
check $? "the rerun completes"
[ "$(grep -c 'skipped' "$work/B2.out")" = 3 ]
check $? "the rerun skips the three finished stages"
grep -q "resuming at step" "$work/B2.out"
check $? "the rerun resumes stage 4"
after=$(stat -c %Y:%s "$work/B/pretrain/model.safetensors" "$work/B/sft/model.safetensors" "$work/B/dpo/model.safetensors" | tr '\n' ' ')
[ "$before" = "$after" ]
check $? "the finished stages' checkpoints are untouched"
for s in pretrain sft dpo orpo grpo distill; do
  cmp -s "$work/A/$s/model.safetensors" "$work/B/$s/model.safetensors"
  check $? "$s: the interrupted and resumed pipeline equals the uninterrupted one"
done
"$chronos" --threads 2 pipeline --config "$work/p.json" --out "$work/B" > "$work/B3.out" 2>&1
check $? "a third run completes"
[ "$(grep -c 'skipped' "$work/B3.out")" = 6 ] && ! grep -q "evaluating" "$work/B3.out"
check $? "a third run skips all six stages and reuses the evaluations"

# 3. Bad pipeline files: one line, non-zero exit, nothing created.
bad() {  # bad NAME PYTHON-EDIT EXPECTED-TEXT
  /usr/bin/python3 - "$work/p.json" "$work/$1.json" "$2" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
exec(sys.argv[3])
json.dump(p, open(sys.argv[2], "w"))
PY
  local out rc=0
  out=$("$chronos" pipeline --config "$work/$1.json" --out "$work/bad-$1" 2>&1) || rc=$?
  [ "$rc" -ne 0 ] && grep -q "chronos: error:.*$3" <<<"$out" && [ "$(wc -l <<<"$out")" = 1 ] && [ ! -e "$work/bad-$1" ]
  check $? "refused: $1 ($out)"
}
bad missing-data 'p["stages"][1]["data"] = "/nonexistent/sft.jsonl"' "does not exist"
bad overlong-name 'p["stages"][1]["data"] = "x" * 300 + ".jsonl"' "does not exist"  # a name the system refuses
bad unknown-from 'p["stages"][2]["from"] = "nope"' "neither an earlier stage"
bad later-from 'p["stages"][1]["from"] = "grpo"' "neither an earlier stage"
bad unknown-stage 'p["stages"][1]["stage"] = "rlhf"' "must be one of"
bad managed-option 'p["stages"][1]["options"]["out"] = "x"' "set by the pipeline"
bad unknown-key 'p["stages"][1]["stepz"] = 3' "unknown key"
bad same-out 'import os; d = os.path.dirname(sys.argv[1]) + "/same"; p["stages"][1]["out"] = d; p["stages"][2]["out"] = d' "as an earlier stage does"
exit $fail
