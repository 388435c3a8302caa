// ui_i18n.mjs: the web UI's strings. Every language defines exactly the keys English does, none
// empty; every key the page uses (index.html's data-i18n and data-i18n-placeholder, app.js's t()
// calls and the key lists its tables and charts draw from) is defined; and every element of
// index.html that shows text carries a key (the language names in the language menu excepted,
// which are shown in their own language). Prints what is missing; exits non-zero if anything is.
// Usage: node ui_i18n.mjs WEB_DIR
import fs from "node:fs";
import path from "node:path";
import url from "node:url";

const web = path.resolve(process.argv[2]);
const { languages, messages } = await import(url.pathToFileURL(path.join(web, "i18n.js")).href);
const html = fs.readFileSync(path.join(web, "index.html"), "utf8");
const app = fs.readFileSync(path.join(web, "app.js"), "utf8");
const problems = [];

const en = Object.keys(messages.en);
for (const lang of languages) {
  const m = messages[lang];
  if (!m) {
    problems.push(`language ${lang} has no messages`);
    continue;
  }
  for (const k of en) if (typeof m[k] !== "string" || m[k].trim() === "") problems.push(`${lang}: key '${k}' missing or empty`);
  for (const k of Object.keys(m)) if (!(k in messages.en)) problems.push(`${lang}: key '${k}' is not an English key`);
}

const used = new Set();
for (const m of html.matchAll(/data-i18n(?:-placeholder)?="([^"]+)"/g)) used.add(m[1]);
for (const m of app.matchAll(/\bt\("([a-z0-9_]+)"\)/g)) used.add(m[1]);
// Key lists: const NAMEKeys / pipelineColumns = [...], the monitor's [id, key] pairs, the config rows.
for (const m of app.matchAll(/const (?:\w*Keys|pipelineColumns) = (\[[^;]*\]);/g)) {
  for (const k of m[1].matchAll(/"([a-z0-9_]+)"/g)) if (!k[1].startsWith("mon-")) used.add(k[1]);
}
const rows = app.match(/const rows = (\[\[[\s\S]*?\]\]);/);
if (!rows) problems.push("app.js: the config rows (const rows = [[...]]) were not found");
else for (const m of rows[1].matchAll(/\["(\w+)", /g)) used.add(m[1]);
for (const s of ["running", "finished", "failed", "cancelled"]) used.add("state_" + s);  // stateText(j.state)
for (const k of used) if (!(k in messages.en)) problems.push(`key '${k}' is used but not defined`);

// Text between tags with no key on the element that holds it.
const body = html.slice(html.indexOf("<body>"));
for (const m of body.matchAll(/<(\w+)([^>]*)>([^<]+)</g)) {
  const [, tag, attrs, text] = m;
  if (!/[\p{L}\p{N}]/u.test(text) || tag === "option" || tag === "script" || tag === "style") continue;  // "-": a value not known yet
  if (!/data-i18n=/.test(attrs)) problems.push(`<${tag}${attrs}> shows '${text.trim()}' without a data-i18n key`);
}

console.log(`${languages.length} languages, ${en.length} keys, ${used.size} used`);
for (const p of problems) console.log("FAIL: " + p);
process.exit(problems.length ? 1 : 0);
