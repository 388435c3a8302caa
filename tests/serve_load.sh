#!/usr/bin/env bash
# A bounded load run against `chronos serve` on a packed tiny model: 32 connections sending
# completions (max_tokens 8, prompts drawn from the test split) for 60 s, after a warm-up of the
# same load for 5 s (every worker thread and its allocator arena in use). Passes with zero errors
# and the server's heap in use (`chronos_heap_in_use_bytes`, read while idle) grown by less than
# 16 bytes per request from the warm-up to the end: glibc's smallest chunk is 32 bytes, so one
# allocation kept by every second request fails it, while what grows once (a buffer reaching the
# batch's size) is a few kilobytes against thousands of requests. RSS is printed, not judged: an
# arena keeps freed pages, so RSS moves by whole pages with the threads' peaks, not with leaks.
# The server runs with glibc's per-thread cache off: mallinfo2 counts the chunks parked in those
# caches as in use, which moved the reading by kilobytes with whichever sizes each thread last freed.
# Prints requests, tokens/s and latency p50/p99.
# Usage: serve_load.sh CHRONOS TEST_DATA_DIR [SECONDS]
set -euo pipefail
chronos=$1 data=$2 seconds=${3:-60}
work=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"' EXIT
export CHRONOS_PROGRESS=0
source "$(dirname "$0")/serve_start.sh"
serve_model "$work" "$chronos" "$data"
# 32 connections may all wait for the model: --max-connections leaves two workers beyond them.
GLIBC_TUNABLES=glibc.malloc.tcache_count=0 serve_start "$work" "$chronos" --model "$work/tiny" --ram-budget 50% --max-connections 34
# The server runs as chronos-serve (chronos execs it): the same pid.
/usr/bin/python3 - "$port" "$pid" "$data/prepared/pretrain.test.jsonl" "$seconds" <<'PY'
import json, sys, threading, time, urllib.request, urllib.error
port, pid, data, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
prompts = []
for line in open(data):
    words = json.loads(line)["text"].split()
    for i in range(0, max(len(words) - 12, 1), 40):
        prompts.append(" ".join(words[i:i + 12]))
    if len(prompts) > 500:
        break
def heap_in_use():
    # Read while idle: a worker may still be releasing the request it just answered, so wait
    # for two equal readings in a row.
    last = None
    for _ in range(50):
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read().decode()
        value = next(int(float(l.split()[1])) for l in text.splitlines() if l.startswith("chronos_heap_in_use_bytes "))
        if value == last:
            return value
        last = value
        time.sleep(0.1)
    return last
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
def complete(prompt):
    body = json.dumps({"model": "tiny", "prompt": prompt, "max_tokens": 8, "temperature": 0.7, "seed": 1}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", data=body, method="POST")
    req.add_header("Content-Type", "application/json")
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            out = json.loads(r.read())
            return r.status, time.monotonic() - t0, out["usage"]["completion_tokens"]
    except urllib.error.HTTPError as e:
        return e.code, time.monotonic() - t0, 0
    except Exception as e:
        return repr(e), time.monotonic() - t0, 0
lat, errors, tokens, lock = [], [], [0], threading.Lock()
def run(duration):
    stop = time.monotonic() + duration
    def worker(k):
        i = k
        while time.monotonic() < stop:
            status, dt, n = complete(prompts[i % len(prompts)])
            i += 32
            with lock:
                if status == 200:
                    lat.append(dt)
                    tokens[0] += n
                else:
                    errors.append(status)
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(32)]
    t0 = time.monotonic()
    for t in threads: t.start()
    for t in threads: t.join()
    return time.monotonic() - t0
run(5.0)
rss_warm, heap_warm = rss(), heap_in_use()
lat.clear(); tokens[0] = 0
wall = run(seconds)
rss_after, heap_after = rss(), heap_in_use()
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000
print(f"load: 32 connections, {wall:.0f} s: {len(lat)} requests, {len(errors)} errors, {tokens[0] / wall:.1f} tokens/s, "
      f"latency p50 {q(0.50):.0f} ms, p99 {q(0.99):.0f} ms; RSS after warm-up {rss_warm / 2**20:.1f} MiB, after the run {rss_after / 2**20:.1f} MiB "
      f"({100 * (rss_after / rss_warm - 1):+.1f}%); heap in use {heap_warm} -> {heap_after} bytes "
      f"({(heap_after - heap_warm) / max(len(lat), 1):+.2f} per request)")
ok = True
if errors:
    print(f"FAIL: {len(errors)} errors, e.g. {errors[:5]}"); ok = False
if len(lat) < 32:
    print("FAIL: fewer requests than connections completed"); ok = False
if heap_after - heap_warm >= 16 * len(lat):
    print("FAIL: the heap grew by 16 bytes or more per request"); ok = False
sys.exit(0 if ok else 1)
PY
kill -TERM "$pid"
wait "$pid"
pid=""
