# serve_start.sh, sourced by the server's tests. serve_model WORK CHRONOS DATA writes the model
# they serve: a packed tiny checkpoint in WORK/tiny. serve_start WORK CHRONOS ARGS... starts
# `CHRONOS serve ARGS... --port 0` in the background and sets $pid and $port from the address
# it prints (fails the test when it does not start within 10 s).
serve_start() {
  local work=$1 chronos=$2
  shift 2
  # The files exist before the server's shell opens them: the first poll may come first, and
  # sed failing on a missing file would end a test running under `set -e`.
  : > "$work/serve.out"
  : > "$work/serve.err"
  "$chronos" --threads 2 serve "$@" --port 0 > "$work/serve.out" 2> "$work/serve.err" &
  pid=$!
  port=""
  for _ in $(seq 1 200); do
    port=$(sed -n 's|.*http://127.0.0.1:\([0-9]*\).*|\1|p' "$work/serve.out")
    [ -n "$port" ] && return 0
    sleep 0.05
  done
  echo "FAIL: the server did not start"
  cat "$work/serve.err"
  exit 1
}

serve_model() {
  local work=$1 chronos=$2 data=$3
  "$chronos" -q init --config tiny --tokenizer "$data/tokenizer.model" --seed 5 --out "$work/tiny"
  "$chronos" -q pack --model "$work/tiny"
}
