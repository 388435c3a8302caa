#!/usr/bin/env bash
# `chronos serve` through HTTP, on a packed tiny model: the official openai npm client
# (tests/openai_client.cjs); a greedy completion equal to `chronos generate` alone in exact mode;
# the API key (401 without it, /health open); streaming with and without the usage chunk; a
# request beyond the waiting bound turned away (503) while /health answers; every bad request answered with its 4xx and an
# OpenAI error object while the server keeps serving; /metrics counting what happened; SIGTERM
# ending the server with status 0.
# Usage: serve_cli.sh CHRONOS TEST_DATA_DIR SOURCE_DIR
set -euo pipefail
chronos=$1 data=$2 src=$3
work=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"' EXIT
export CHRONOS_PROGRESS=0
source "$(dirname "$0")/serve_start.sh"
serve_model "$work" "$chronos" "$data"
key=test-key-123
# Expert reads held 10 ms (a slow disk): the 300-token stream below holds the model for seconds
# rather than the milliseconds a fast machine needs, so the request sent beside it meets it.
CHRONOS_SIM_READ_MS=10 serve_start "$work" "$chronos" --model "$work/tiny" --ram-budget 50% --api-key "$key" --max-body-bytes 65536 \
  --max-tokens-limit 600 --max-connections 3
fail=0

node "$src/tests/openai_client.cjs" "$src/.deps/npm" "http://127.0.0.1:$port/v1" "$key" tiny || fail=1

# Greedy in exact mode: the server's completion is what `chronos generate` gives alone.
prompt="The committee reported that the railroad"
"$chronos" --threads 2 generate --model "$work/tiny" --prompt "$prompt" --greedy --repetition-penalty 1 --top-k 0 --top-p 1 \
  --max-tokens 12 --ram-budget 50% > "$work/gen.txt" 2> /dev/null
/usr/bin/python3 - "$port" "$key" "$prompt" "$work/gen.txt" <<'PY' || fail=1
import json, sys, urllib.request, urllib.error
port, key, prompt, gen_path = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
base = f"http://127.0.0.1:{port}"
failed = []
def call(path, body=None, auth=True, raw=None, method=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(base + path, data=data, method=method or ("POST" if data is not None else "GET"))
    if auth:
        req.add_header("Authorization", "Bearer " + key)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
def check(ok, what):
    print(("ok: " if ok else "FAIL: ") + what)
    if not ok:
        failed.append(what)

gen = open(gen_path).read().rstrip("\n")
status, body = call("/v1/completions", {"model": "tiny", "prompt": prompt, "max_tokens": 12, "temperature": 0})
text = json.loads(body)["choices"][0]["text"] if status == 200 else None
check(status == 200 and gen == prompt + text, f"greedy completion equals `chronos generate` alone ({text!r} vs {gen[len(prompt):]!r})")

check(call("/health", auth=False)[0] == 200, "/health needs no key")
check(call("/v1/models", auth=False)[0] == 401, "/v1/models without the key: 401")
status, body = call("/v1/completions", {"model": "tiny", "prompt": "x"}, auth=False)
check(status == 401 and json.loads(body)["error"]["code"] == "invalid_api_key", "a completion without the key: 401 with an error object")

good = {"model": "tiny", "prompt": "Hello", "max_tokens": 2}
long_prompt = " ".join(["word"] * 700)
bad = [
    ("invalid JSON", None, b"{not json", 400),
    ("wrong type of max_tokens", {"model": "tiny", "prompt": "x", "max_tokens": "ten"}, None, 400),
    ("max_tokens above the server's bound", {"model": "tiny", "prompt": "x", "max_tokens": 100000}, None, 400),
    ("n above the bound", {"model": "tiny", "prompt": "x", "n": 1000}, None, 400),
    ("negative temperature", {"model": "tiny", "prompt": "x", "temperature": -1}, None, 400),
    ("invalid UTF-8", None, b'{"model": "tiny", "prompt": "\xff\xfe"}', 400),
    ("a prompt over the context", {"model": "tiny", "prompt": long_prompt, "max_tokens": 4}, None, 400),
    ("an unknown model", {"model": "gpt-4", "prompt": "x"}, None, 404),
    ("a path as the model name", {"model": "../../etc/passwd", "prompt": "x"}, None, 404),
    ("an unknown field", {"model": "tiny", "prompt": "x", "bogus": 1}, None, 400),
    ("chat without messages", {"model": "tiny", "messages": []}, None, 400),
    ("a body above --max-body-bytes", None, b'{"model": "tiny", "prompt": "' + b"a" * 70000 + b'"}', 413),
]
for what, body, raw, want in bad:
    path = "/v1/chat/completions" if body is not None and "messages" in body else "/v1/completions"
    status, text = call(path, body, raw=raw)
    try:
        err = json.loads(text)["error"]
        shaped = isinstance(err["message"], str) and "type" in err
    except Exception:
        shaped = False
    check(status == want and shaped, f"{what}: {status} (want {want}) with an error object")
    check(call("/v1/completions", good)[0] == 200, f"a good request after {what} succeeds")
# What the headers alone refuse, at once and before any body is read (raw requests: the
# standard client would not send them). A gzip body would be inflated whole before any size
# check, a chunked one joined whole.
import gzip, socket, time
def raw_request(head, body=b"", until_close=False):
    # Reads one response (its headers, then the Content-Length they give), or with until_close
    # everything the server sends until it closes the connection.
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
    s.sendall(head + body)
    out = b""
    try:
        while True:
            end = out.find(b"\r\n\r\n")
            if end >= 0 and not until_close:
                lengths = [l for l in out[:end].split(b"\r\n") if l.lower().startswith(b"content-length:")]
                if lengths and len(out) >= end + 4 + int(lengths[0].split(b":")[1]):
                    break
            b = s.recv(65536)
            if not b:
                break
            out += b
    except socket.timeout:
        out += b"<timeout>"
    s.close()
    return out
def head(extra, path="/v1/completions", method="POST"):
    return (f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\n").encode() + extra + b"\r\n"
good_raw = json.dumps(good).encode()
bomb = gzip.compress(b'{"model": "tiny", "max_tokens": 2, "prompt": "' + b"a" * (8 << 20) + b'"}')
transport = [
    ("a gzip body", head(b"Content-Encoding: gzip\r\nContent-Length: %d\r\n" % len(bomb)), bomb, b" 415 "),
    ("a chunked body", head(b"Transfer-Encoding: chunked\r\n"), b"%x\r\n%s\r\n0\r\n\r\n" % (len(good_raw), good_raw), b" 411 "),
    ("two Content-Lengths", head(b"Content-Length: %d\r\nContent-Length: 3\r\n" % len(good_raw)), good_raw, b" 400 "),
    ("a negative Content-Length", head(b"Content-Length: -5\r\n"), good_raw, b" 400 "),
    ("a Content-Length over the limit", head(b"Content-Length: 2000000\r\n"), good_raw, b" 413 "),
]
for what, h, body, want in transport:
    t0 = time.time()
    out = raw_request(h, body)
    status_line = out.split(b"\r\n", 1)[0]
    check(status_line.find(want) > 0 and b'"error"' in out and time.time() - t0 < 5,
          f"{what}: {status_line!r} (want{want.decode()}) at once, with an error object")
    check(call("/v1/completions", good)[0] == 200, f"a good request after {what} succeeds")
# A refused request's unread body is never read as a request of its own (a proxy reusing the
# connection would have it smuggled): the server answers once and closes.
everything = raw_request(head(b"Transfer-Encoding: chunked\r\n"),
                         f"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\r\n".encode(), until_close=True)
check(everything.count(b"HTTP/1.1 ") == 1 and b"<timeout>" not in everything,
      f"a refused body is not read as a request: {everything.count(b'HTTP/1.1 ')} response(s), then the connection closes")
out = raw_request(head(b"Connection: close\r\n", path="/v1/chat/completions", method="GET"))
check(out.startswith(b"HTTP/1.1 405") and b"Allow: POST" in out, f"GET on a POST route: 405 with Allow ({out[:12]!r})")
out = raw_request(head(b"Content-Length: %d\r\nConnection: close\r\n" % len(good_raw)).replace(b"Bearer ", b"bearer "), good_raw)
check(out.startswith(b"HTTP/1.1 200"), "the Bearer scheme in lower case is accepted")
check(call("/v1/completions", dict(good, max_tokens=2.0))[0] == 200, "max_tokens 2.0 (a whole number written as a float) is accepted")
status, body = call("/v1/completions", {"model": "tiny", "prompt": long_prompt})
check(status == 400 and json.loads(body)["error"]["param"] == "prompt", "a prompt over the context without max_tokens blames the prompt")

# Streams: the usage chunk only when asked for (stream_options.include_usage), then [DONE].
def stream(body):
    req = urllib.request.Request(base + "/v1/chat/completions", data=json.dumps(body).encode(), method="POST")
    req.add_header("Authorization", "Bearer " + key)
    return urllib.request.urlopen(req, timeout=120)
def events(resp):
    out = []
    for line in resp:
        line = line.decode().strip()
        if line.startswith("data: "):
            out.append(line[6:])
    return out
chat = {"model": "tiny", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 6, "temperature": 0, "stream": True}
ev = events(stream(chat))
check(ev[-1] == "[DONE]" and all("usage" not in json.loads(e) for e in ev[:-1]), "a stream without include_usage has no usage chunk")
ev = events(stream(dict(chat, stream_options={"include_usage": True})))
check(ev[-1] == "[DONE]" and json.loads(ev[-2])["usage"]["completion_tokens"] > 0 and json.loads(ev[-2])["choices"] == [],
      "with include_usage the last chunk before [DONE] carries usage and no choice")

# --max-connections 3 lets one request wait for the model: a second one while a stream holds it
# is turned away with 503, and /health still answers.
held = stream(dict(chat, max_tokens=300, messages=[{"role": "user", "content": "Tell me a long story."}]))
first = held.readline()
status, body = call("/v1/completions", good)
check(status == 503 and json.loads(body)["error"]["code"] == "server_busy", f"a request beyond the waiting bound: {status} (want 503)")
check(call("/health", auth=False)[0] == 200, "/health answers while a stream holds the model")
rest = events(held)
check(first.startswith(b"data: ") and rest[-1] == "[DONE]", "the held stream completes")
check(call("/v1/completions", good)[0] == 200, "a good request after the stream ends succeeds")

status, _ = call("/v1/completions/../../etc/passwd")
check(status == 404, "a path outside the API: 404")
status, body = call("/metrics")
values = {l.split()[0]: float(l.split()[1]) for l in body.splitlines() if l and not l.startswith("#")}
check(status == 200 and values.get("chronos_requests_total", 0) >= 14 and values.get("chronos_requests_failed_total", 0) >= 10
      and values.get("chronos_completion_tokens_total", 0) > 0 and values.get("chronos_expert_bytes_read_total", 0) > 0,
      "/metrics counts requests, failures, tokens and bytes read")
sys.exit(1 if failed else 0)
PY

kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=""
[ "$rc" = 0 ] && echo "ok: SIGTERM ends the server with status 0" || { echo "FAIL: the server ended with status $rc"; fail=1; }
exit $fail
