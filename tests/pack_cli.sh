#!/usr/bin/env bash
# The pack pipeline through the command: init -> trace -> pack (Louvain, bf16) -> verify, each
# pack checked by an independent reader of the safetensors specification; then the clear
# errors for a corrupt pack and a manifest that disagrees with config.json.
# Usage: pack_cli.sh CHRONOS TEST_DATA_DIR SOURCE_DIR
set -euo pipefail
chronos=$1 data=$2 src=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$chronos" -q init --config tiny --tokenizer "$data/tokenizer.model" --seed 3 --out "$work/m"
"$chronos" -q trace --model "$work/m" --data "$data/prepared/sft.validation.jsonl" --out "$work/t.ctrc" --max-sequences 200
"$chronos" -q pack --model "$work/m" --trace "$work/t.ctrc" --dtype bf16 --max-cluster-mb 0.1 --verify
/usr/bin/python3 "$src/tests/reference/check_safetensors.py" "$work"/m/packs/*/*.ctsr
# Without a trace: natural order, one cluster per layer.
"$chronos" -q pack --model "$work/m"
"$chronos" pack --model "$work/m" --verify | grep -q "verified"
[ "$(ls "$work"/m/packs/*/*.ctsr | wc -l)" -eq 2 ] || { echo "expected one pack per layer"; exit 1; }

fail=0
pack=$(ls "$work"/m/packs/*/cluster-0000.ctsr)
cp "$pack" "$work/keep.ctsr"
printf '\xff' | dd of="$pack" bs=1 seek=5000 conv=notrunc status=none
if out=$("$chronos" pack --model "$work/m" --verify 2>&1); then echo "FAIL: corrupt pack verified"; fail=1; fi
grep -q "checksum mismatch" <<<"$out" || { echo "FAIL: corrupt pack message: $out"; fail=1; }
cp "$work/keep.ctsr" "$pack"
sed -i 's/"hidden_size": 64/"hidden_size": 72/' "$work/m/cluster_manifest.json"
if out=$("$chronos" pack --model "$work/m" --verify 2>&1); then echo "FAIL: mismatched manifest accepted"; fail=1; fi
grep -q "but config.json has" <<<"$out" || { echo "FAIL: mismatch message: $out"; fail=1; }
[ $fail -eq 0 ] && echo "pack errors: ok"
exit $fail
