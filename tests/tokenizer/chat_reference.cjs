// chat_reference.cjs: the reference side of tests/chat_template.sh. For each line
// {"messages": [...]} of a JSONL file, the ids of the chat prompt (with the generation prompt) as
// the @lenml tokenizer package builds it: by executing the chat_template of its
// tokenizer_config.json (transformers.js's Jinja interpreter), or, with --render chatml, by
// encoding the ChatML text the Qwen template writes (its Jinja uses syntax that interpreter
// cannot parse: reversed slices), special tokens parsed.
// Usage: node chat_reference.cjs PACKAGE|FOLDER INPUT_JSONL OUTPUT_JSONL [--render chatml]
"use strict";
const fs = require("fs");

const [pkg, input, output, flag, render] = process.argv.slice(2);
const path = require("path");
// A package name, or a folder with a tokenizer.json and a tokenizer_config.json.
const tokenizer = fs.existsSync(path.join(pkg, "tokenizer.json"))
  ? require("@lenml/tokenizers").TokenizerLoader.fromPreTrained({
      tokenizerJSON: JSON.parse(fs.readFileSync(path.join(pkg, "tokenizer.json"), "utf8")),
      tokenizerConfig: JSON.parse(fs.readFileSync(path.join(pkg, "tokenizer_config.json"), "utf8")),
    })
  : require(pkg).fromPreTrained();
const out = [];
for (const line of fs.readFileSync(input, "utf8").split("\n")) {
  if (line.trim() === "") continue;
  const { messages } = JSON.parse(line);
  let ids;
  if (flag === "--render" && render === "chatml") {
    const text = messages.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`).join("") + "<|im_start|>assistant\n";
    ids = tokenizer.encode(text, { add_special_tokens: false });
  } else {
    ids = tokenizer.apply_chat_template(messages, { add_generation_prompt: true, tokenize: true });
  }
  out.push(JSON.stringify({ ids: Array.from(ids, Number) }));
}
fs.writeFileSync(output, out.join("\n") + "\n");
