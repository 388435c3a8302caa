#!/usr/bin/env bash
# Bad input through the `chronos` command: each case must exit with status 1 (the README's
# promise, parse errors included) with a clear message on stderr, and must not damage files
# that were already saved.
# Usage: cli_errors.sh CHRONOS TEST_DATA_DIR
set -uo pipefail
chronos=$1 data=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0 passed=0

# expect_error NAME EXPECTED_TEXT -- COMMAND...
expect_error() {
  local name=$1 needle=$2
  shift 3
  local err rc
  err=$("$@" 2>&1 >/dev/null)
  rc=$?
  if [ "$rc" -eq 0 ]; then
    echo "FAIL $name: exit status 0"; failures=$((failures + 1)); return
  fi
  if [ "$rc" -ge 128 ]; then
    echo "FAIL $name: crashed (status $rc): $err"; failures=$((failures + 1)); return
  fi
  if [ "$rc" -ne 1 ]; then
    echo "FAIL $name: exit status $rc, not 1: $err"; failures=$((failures + 1)); return
  fi
  if ! grep -qF -- "$needle" <<<"$err"; then
    echo "FAIL $name: message does not mention '$needle': $err"; failures=$((failures + 1)); return
  fi
  echo "ok   $name: $(head -n 1 <<<"$err")"
  passed=$((passed + 1))
}

printf 'abc' > "$work/short.safetensors"
expect_error truncated-safetensors "too short" -- "$chronos" inspect "$work/short.safetensors"
printf '\x10\x00\x00\x00\x00\x00\x00\x00{"a":1}         ' > "$work/bad.safetensors"
expect_error bad-header "not an object" -- "$chronos" inspect "$work/bad.safetensors"
expect_error missing-file "cannot open" -- "$chronos" inspect "$work/absent.safetensors"
mkdir -p "$work/notckpt"
expect_error not-a-checkpoint "no config.json" -- "$chronos" inspect "$work/notckpt"
# A FIFO in a file's place is refused, not waited on (timeout: a hang fails with 124).
mkfifo "$work/fifo"
expect_error fifo-file "is not a regular file" -- timeout 20 "$chronos" inspect "$work/fifo"
expect_error unknown-command "unknown command 'frobnicate'" -- "$chronos" frobnicate
expect_error unknown-option "--bogus" -- "$chronos" info --bogus

expect_error decode-bad-id "is not a token id" -- "$chronos" tokenizer decode --model "$data/tokenizer.model" --ids "1 two 3"
expect_error decode-out-of-range "outside the vocabulary" -- "$chronos" tokenizer decode --model "$data/tokenizer.model" --ids "999999"
expect_error missing-model "does not exist" -- "$chronos" tokenizer encode --model "$work/none.model" --text hi
printf 'not a model' > "$work/junk.model"
expect_error junk-model "cannot load tokenizer" -- "$chronos" tokenizer encode --model "$work/junk.model" --text hi

# Malformed JSONL in a prepared directory: the error names the file and the line.
cp -r "$data/prepared" "$work/prepared"
printf '{"text": "fine"}\n{"text": "broken\n' > "$work/prepared/pretrain.test.jsonl"
expect_error malformed-jsonl "pretrain.test.jsonl:2: malformed JSON" -- "$chronos" data stats --data "$work/prepared"
expect_error tokenizer-malformed-jsonl "pretrain.test.jsonl:2" -- "$chronos" tokenizer train --input "$work/prepared/pretrain.test.jsonl" --vocab-size 400 --out "$work/t.model"

# A failed tokenizer training must not clobber an existing model.
cp "$data/tokenizer.model" "$work/keep.model"
expect_error vocab-too-small "300" -- "$chronos" tokenizer train --input "$data/prepared/pretrain.test.jsonl" --vocab-size 50 --out "$work/keep.model"
if cmp -s "$data/tokenizer.model" "$work/keep.model"; then
  echo "ok   existing-model-kept"; passed=$((passed + 1))
else
  echo "FAIL existing-model-kept: the model was modified by a failed run"; failures=$((failures + 1))
fi
: > "$work/empty.jsonl"
expect_error tokenizer-empty-input "no text to train on" -- "$chronos" tokenizer train --input "$work/empty.jsonl" --vocab-size 400 --out "$work/e.model"
printf '{"text": ""}\n' > "$work/empty-text.jsonl"
expect_error tokenizer-empty-texts "no text to train on" -- "$chronos" tokenizer train --input "$work/empty-text.jsonl" --vocab-size 400 --out "$work/e.model"
expect_error missing-sources "data sources are missing" -- "$chronos" data prepare --raw "$work/noraw" --out "$work/out"

# Training and evaluation input errors.
small="$data/pretrain.small.jsonl"
expect_error unknown-config "no config named" -- "$chronos" train pretrain --config nosuch --data "$small" --tokenizer "$data/tokenizer.model" --out "$work/x"
expect_error indivisible-batch "not divisible" -- "$chronos" train pretrain --config tiny --data "$small" --tokenizer "$data/tokenizer.model" --out "$work/x" --batch-size 7 --grad-accum 2
expect_error seq-too-long "exceeds max_position_embeddings" -- "$chronos" train pretrain --config tiny --data "$small" --tokenizer "$data/tokenizer.model" --out "$work/x" --seq-len 100000
printf '{"model": {"hidden_size": 8}}\n' > "$work/bad-config.json"
expect_error incomplete-config "missing field" -- "$chronos" train pretrain --config "$work/bad-config.json" --data "$small" --tokenizer "$data/tokenizer.model" --out "$work/x"
expect_error resume-nothing "does not exist" -- "$chronos" train pretrain --config tiny --data "$small" --tokenizer "$data/tokenizer.model" --out "$work/none" --resume
expect_error lookahead-not-a-checkpoint "no config.json" -- "$chronos" train lookahead --model "$work/notckpt" --data "$small"
expect_error lookahead-zero-steps "steps" -- "$chronos" train lookahead --model "$work/notckpt" --data "$small" --steps 0
expect_error lookahead-bad-target "router_topk" -- "$chronos" train lookahead --model "$work/notckpt" --data "$small" --target softmax
expect_error eval-missing-model "does not exist" -- "$chronos" eval ppl --model "$work/none" --data "$small"
"$chronos" -q init --config tiny --tokenizer "$data/tokenizer.model" --out "$work/m"
long=$(printf 'word %.0s' $(seq 1 700))
expect_error oversized-prompt "more than the context" -- "$chronos" eval logits --model "$work/m" --text "$long" --out "$work/l.json"
expect_error trace-no-manifest "no cluster_manifest.json" -- "$chronos" pack --model "$work/m" --verify
printf 'not a trace' > "$work/bad.ctrc"
expect_error bad-trace "bad magic" -- "$chronos" pack --model "$work/m" --trace "$work/bad.ctrc"

# A save never deletes a folder that is not a checkpoint, nor what the command reads.
mkdir -p "$work/notes" && echo keep > "$work/notes/notes.txt"
expect_error out-not-a-checkpoint "is not a Chronos checkpoint" -- "$chronos" init --config tiny --tokenizer "$data/tokenizer.model" --out "$work/notes"
expect_error out-is-an-input "would replace --model" -- "$chronos" train lookahead --model "$work/m" --data "$small" --steps 1 --out "$work/m/"
cp "$small" "$work/copy.jsonl"
expect_error trace-over-its-data "is the --data file" -- "$chronos" trace --model "$work/m" --data "$work/copy.jsonl" --out "$work/copy.jsonl"
if [ -f "$work/notes/notes.txt" ] && cmp -s "$small" "$work/copy.jsonl"; then
  echo "ok   inputs-kept"; passed=$((passed + 1))
else
  echo "FAIL inputs-kept: a refused command changed a file"; failures=$((failures + 1))
fi
# Train values that are not whole numbers or could never train are refused, naming the field.
python3 -c "import json,sys; c=json.load(open(sys.argv[1])); c['train']['steps']=0; json.dump(c, open(sys.argv[2],'w'))" "$(dirname "$0")/../configs/tiny.json" "$work/steps0.json"
expect_error config-zero-steps "steps >= 1" -- "$chronos" train pretrain --config "$work/steps0.json" --data "$small" --tokenizer "$data/tokenizer.model" --out "$work/x"
python3 -c "import json,sys; c=json.load(open(sys.argv[1])); c['train']['batch_size']=8.5; json.dump(c, open(sys.argv[2],'w'))" "$(dirname "$0")/../configs/tiny.json" "$work/half.json"
expect_error config-fractional-batch "train.batch_size must be a whole number" -- "$chronos" train pretrain --config "$work/half.json" --data "$small" --tokenizer "$data/tokenizer.model" --out "$work/x"
# A malformed line of a megabyte gives a message of a line, not of a megabyte.
{ printf '{"text": "'; head -c 1000000 /dev/zero | tr '\0' a; printf '\n'; } > "$work/long-line.jsonl"
msg=$("$chronos" tokenizer train --input "$work/long-line.jsonl" --vocab-size 400 --out "$work/ll.model" 2>&1 >/dev/null)
if [ "${#msg}" -lt 2000 ] && grep -q "long-line.jsonl:1: malformed JSON" <<<"$msg"; then
  echo "ok   long-malformed-line"; passed=$((passed + 1))
else
  echo "FAIL long-malformed-line: ${#msg} characters"; failures=$((failures + 1))
fi

# Offloaded generation.
expect_error generate-no-packs "chronos pack" -- "$chronos" generate --model "$work/m" --prompt "hello"
"$chronos" -q pack --model "$work/m" >/dev/null
expect_error generate-missing-model "no such checkpoint" -- "$chronos" generate --model "$work/none" --prompt "hello"
expect_error generate-tiny-budget "at least 2 are needed" -- "$chronos" generate --model "$work/m" --prompt "hello" --ram-budget 1K
expect_error generate-bad-budget "not a positive number" -- "$chronos" generate --model "$work/m" --prompt "hello" --ram-budget lots
expect_error generate-bad-mode "unknown mode" -- "$chronos" generate --model "$work/m" --prompt "hello" --mode fast
expect_error bench-offload-bad-budget "not a percentage" -- "$chronos" bench offload --model "$work/m" --data "$work/none.jsonl" --budgets 25,lots
expect_error bench-offload-empty-mode "empty item" -- "$chronos" bench offload --model "$work/m" --data "$work/none.jsonl" --modes exact,,lru
expect_error bench-offload-trailing-comma "empty item" -- "$chronos" bench offload --model "$work/m" --data "$work/none.jsonl" --budgets 25,
expect_error bench-offload-dense-alone "--dense-dtype applies with --dtype" -- "$chronos" bench offload --model "$work/m" --data "$work/none.jsonl" --dense-dtype xyz
expect_error bench-policy-empty-budgets "empty list" -- "$chronos" bench policy --trace "$work/none.ctrc" --budgets ""
expect_error generate-resident-over-budget "resident mode holds every expert" -- "$chronos" generate --model "$work/m" --prompt "hello" --mode resident --ram-budget 10%
expect_error generate-negative-seed "--seed: -1 is outside" -- "$chronos" generate --model "$work/m" --prompt "hello" --seed -1
expect_error eval-runtime-short-max-tokens "less than one window" -- "$chronos" eval ppl --engine runtime --model "$work/m" --data "$small" --max-tokens 1
# A context far too long for the memory limit is refused from its size, before any buffer is
# allocated (the process stays small: it is run under a 2 GiB address-space cap).
cp -r "$work/m" "$work/longctx"
python3 -c "import json,sys; p=sys.argv[1]; c=json.load(open(p)); c['max_position_embeddings']=1<<21; json.dump(c, open(p,'w'))" "$work/longctx/config.json"
expect_error generate-context-over-limit "computed for the context of 2097152 positions" -- bash -c 'ulimit -v 2097152; exec "$@"' _ "$chronos" generate --model "$work/longctx" --prompt "hello" --mem-limit 500
# A tokenizer with more ids than the model's vocabulary is refused at load.
"$chronos" -q init --config tiny --vocab-size 100 --out "$work/bigvocab"
cp "$data/tokenizer.model" "$work/bigvocab/"
"$chronos" -q pack --model "$work/bigvocab" >/dev/null
expect_error generate-tokenizer-vocab "more than the model's vocabulary" -- "$chronos" generate --model "$work/bigvocab" --prompt "hello"
expect_error generate-long-prompt "more than the model's context" -- "$chronos" generate --model "$work/m" --prompt "$long"
expect_error generate-bad-temperature "temperature" -- "$chronos" generate --model "$work/m" --prompt "hello" --temperature -1
expect_error generate-nan-temperature "--temperature: 'nan' is not a finite number" -- "$chronos" generate --model "$work/m" --prompt "hello" --temperature nan
expect_error generate-threads "--threads: 100000 is outside" -- "$chronos" generate --model "$work/m" --prompt "hello" --threads 100000
expect_error global-threads "--threads: 100000 is outside" -- "$chronos" --threads 100000 info
expect_error generate-max-tokens "--max-tokens 99999999999 does not fit" -- "$chronos" generate --model "$work/m" --prompt "hello" --max-tokens 99999999999
expect_error generate-top-p "--top-p: 0 is outside (0, 1]" -- "$chronos" generate --model "$work/m" --prompt "hello" --top-p 0
expect_error generate-sim-read "--sim-read-ms: -1 is outside" -- "$chronos" generate --model "$work/m" --prompt "hello" --sim-read-ms -1
expect_error generate-sim-read-env "CHRONOS_SIM_READ_MS='soon'" -- env CHRONOS_SIM_READ_MS=soon "$chronos" generate --model "$work/m" --prompt "hello"
expect_error bench-offload-prompts "--prompts: 0 is outside" -- "$chronos" bench offload --model "$work/m" --data "$work/none.jsonl" --prompts 0
expect_error pretrain-lr "--lr: 'inf' is not a finite number" -- "$chronos" train pretrain --config tiny --data "$small" --tokenizer "$data/tokenizer.model" --out "$work/x" --lr inf
expect_error pretrain-steps "--steps: 0 is outside" -- "$chronos" train pretrain --config tiny --data "$small" --tokenizer "$data/tokenizer.model" --out "$work/x" --steps 0
pack=$(ls "$work"/m/packs/*/cluster-0000.ctsr)
cp "$pack" "$work/pack.bak"
truncate -s 5000 "$pack"
expect_error generate-truncated-pack "truncated" -- "$chronos" generate --model "$work/m" --prompt "hello"
expect_error inspect-truncated-pack "truncated" -- "$chronos" inspect "$work/m"
cp "$work/pack.bak" "$pack"
printf '\x55' | dd of="$pack" bs=1 seek=9000 conv=notrunc status=none
expect_error generate-corrupt-pack "checksum mismatch" -- "$chronos" generate --model "$work/m" --prompt "hello" --mode resident
cp "$work/pack.bak" "$pack"
"$chronos" generate --model "$work/m" --prompt "hello" --max-tokens 4 --ram-budget 50% --metrics-json "$work/g.json" >/dev/null 2>&1 \
  && grep -q '"decode_tok_s"' "$work/g.json" && echo "ok   generate-works" && passed=$((passed + 1)) \
  || { echo "FAIL generate-works: generation with restored packs failed"; failures=$((failures + 1)); }

echo "$passed passed, $failures failed"
[ "$failures" -eq 0 ]
