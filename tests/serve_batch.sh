#!/usr/bin/env bash
# Continuous batching in `chronos serve`: requests sent at once (different prompts and lengths, so
# that they join and leave the batch at different steps, one streamed, one with n = 3 seeded
# choices) decode together in exact mode at a budget below what the batch touches, and each
# completion is what `chronos generate` gives alone for the same prompt, settings and seed.
# /metrics shows steps that decoded more than one sequence.
# Usage: serve_batch.sh CHRONOS TEST_DATA_DIR SOURCE_DIR
set -euo pipefail
chronos=$1 data=$2 src=$3
work=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"' EXIT
export CHRONOS_PROGRESS=0
source "$(dirname "$0")/serve_start.sh"
serve_model "$work" "$chronos" "$data"
serve_start "$work" "$chronos" --model "$work/tiny" --ram-budget 25% --max-batch 4 --max-connections 16

# The requests: prompt, max_tokens, temperature, seed (-1: none), n, stream.
cat > "$work/requests.json" <<'JSON'
[["The committee reported that the railroad", 40, 0, -1, 1, false],
 ["In the winter of that year the river", 12, 0, -1, 1, false],
 ["She opened the letter and", 28, 0, -1, 1, true],
 ["Water boils at", 5, 0, -1, 1, false],
 ["The history of the city begins", 33, 0.8, 7, 3, false],
 ["A short note on prime numbers:", 20, 0, -1, 1, false]]
JSON
# What each choice gives alone: greedy, or sampled with the choice's seed (seed + choice).
/usr/bin/python3 - "$work/requests.json" > "$work/alone.tsv" <<'PY'
import json, sys
for i, (p, m, t, s, n, _) in enumerate(json.load(open(sys.argv[1]))):
    for c in range(n):
        print(i, c, m, t, s + c if s >= 0 else -1, p, sep="\t")
PY
while IFS=$'\t' read -r i c m t s p; do
  args=(--greedy)
  [ "$s" != -1 ] && args=(--temperature "$t" --seed "$s")
  "$chronos" --threads 2 generate --model "$work/tiny" --prompt "$p" "${args[@]}" --repetition-penalty 1 --top-k 0 --top-p 1 \
    --max-tokens "$m" --ram-budget 25% > "$work/alone.$i.$c" 2> /dev/null
done < "$work/alone.tsv"

rc=0
/usr/bin/python3 - "$port" "$work" <<'PY' || rc=1
import json, sys, threading, urllib.request
port, work = sys.argv[1], sys.argv[2]
base = f"http://127.0.0.1:{port}"
reqs = json.load(open(f"{work}/requests.json"))
failed = []
def check(ok, what):
    print(("ok: " if ok else "FAIL: ") + what)
    if not ok:
        failed.append(what)
def post(body):
    req = urllib.request.Request(base + "/v1/completions", data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    return urllib.request.urlopen(req, timeout=300)
results = [None] * len(reqs)
def run(i):
    p, m, t, s, n, stream = reqs[i]
    body = {"model": "tiny", "prompt": p, "max_tokens": m, "temperature": t, "n": n, "stream": stream}
    if s >= 0:
        body["seed"] = s
    with post(body) as r:
        if not stream:
            results[i] = [c["text"] for c in sorted(json.loads(r.read())["choices"], key=lambda c: c["index"])]
            return
        text, chunks = "", 0
        for line in r:
            line = line.decode().strip()
            if line.startswith("data: ") and line != "data: [DONE]":
                for c in json.loads(line[6:])["choices"]:
                    text += c.get("text", "")
                    chunks += 1
        results[i] = [text]
threads = [threading.Thread(target=run, args=(i,)) for i in range(len(reqs))]
for th in threads:
    th.start()
for th in threads:
    th.join()
for i, (p, m, t, s, n, stream) in enumerate(reqs):
    for c in range(n):
        alone = open(f"{work}/alone.{i}.{c}").read().rstrip("\n")
        got = results[i][c] if results[i] else None
        check(got is not None and alone == p + got, f"request {i} choice {c} ({m} tokens{', streamed' if stream else ''}"
              f"{', sampled' if s >= 0 else ''}) equals `chronos generate` alone ({got!r} vs {alone[len(p):]!r})")
with urllib.request.urlopen(base + "/metrics") as r:
    values = {l.split()[0]: float(l.split()[1]) for l in r.read().decode().splitlines() if l and not l.startswith("#")}
steps, rows = values.get("chronos_decode_steps_total", 0), values.get("chronos_decode_rows_total", 0)
check(steps > 0 and rows > 1.5 * steps, f"the requests decoded together: {rows:.0f} sequence tokens in {steps:.0f} steps")
check(values.get("chronos_expert_misses_total", 0) > 0, "the budget forced reads")
sys.exit(1 if failed else 0)
PY
kill -TERM "$pid"; wait "$pid" || true; pid=""
exit $rc
