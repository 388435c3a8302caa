// ui_browser.cjs: the web UI in a real browser (Debian's chromium driven by playwright-core)
// against a running `chronos serve --ui`: every tab renders in each of the four languages with
// its strings (a screenshot of each kept in ARTIFACTS), the choice survives a reload, a chat
// answer streams in piece by piece, the IO monitor's charts move during a generation, and a
// training job shows its first loss point and is cancelled.
// Usage: node ui_browser.cjs NPM_DIR BASE_URL WEB_DIR ARTIFACTS
"use strict";
const path = require("path");
const [, , npmDir, base, webDir, artifacts] = process.argv;
const { chromium } = require(path.join(path.resolve(npmDir), "node_modules", "playwright-core"));

let failed = 0;
function check(ok, what) {
  console.log((ok ? "ok: " : "FAIL: ") + what);
  if (!ok) failed += 1;
}

(async () => {
  const { languages, messages } = await import("file://" + path.resolve(webDir, "i18n.js"));
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--disable-gpu"] });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(base + "/");
  await page.waitForFunction(() => window.chronosUi && window.chronosUi.ready, null, { timeout: 20000 });
  const tabs = ["config", "train", "pipeline", "inference", "bench", "tune", "monitor"];
  const titles = { config: "config_title", train: "train_title", pipeline: "pipeline_title", inference: "inference_title", bench: "bench_title",
                   tune: "tune_title", monitor: "monitor_title" };

  // Every tab in every language: the tab's button and heading carry that language's strings.
  for (const lang of languages) {
    await page.selectOption("#lang", lang);
    for (const tab of tabs) {
      await page.click(`button[data-tab="${tab}"]`);
      const button = await page.textContent(`button[data-tab="${tab}"]`);
      const heading = await page.textContent(`#tab-${tab} h2`);
      const visible = await page.isVisible(`#tab-${tab}`);
      const m = messages[lang];
      check(visible && button === m["tab_" + tab] && heading === m[titles[tab]], `${lang} ${tab}: '${button}' / '${heading}'`);
      await page.screenshot({ path: path.join(artifacts, `${lang}-${tab}.png`), fullPage: true });
    }
  }
  await page.reload();
  await page.waitForFunction(() => window.chronosUi && window.chronosUi.ready, null, { timeout: 20000 });
  const last = languages[languages.length - 1];
  check((await page.inputValue("#lang")) === last && (await page.textContent('button[data-tab="train"]')) === messages[last].tab_train,
        `the language (${last}) survives a reload`);
  await page.selectOption("#lang", "en");

  // Inference settings: the server switches to another mode and budget, and back.
  await page.click('button[data-tab="inference"]');
  for (const [mode, budget, share] of [["soft", "50%", 0.5], ["exact", "25%", 0.25]]) {
    await page.selectOption("#inf-mode-select", mode);
    await page.fill("#inf-budget-input", budget);
    await page.click("#inf-apply");
    await page.waitForFunction((m) => document.getElementById("inf-mode").dataset.mode === m, mode, { timeout: 20000 });
    const info = await page.evaluate(async () => (await fetch("/ui/api/info")).json());
    check(info.mode === mode && Math.abs(info.ram_budget_bytes - share * info.expert_bytes_total) < 1,
          `the server now serves in ${mode} mode with ${budget} of the experts (${info.ram_budget_bytes} bytes)`);
  }
  await page.fill("#inf-budget-input", "200%");
  await page.click("#inf-apply");
  await page.waitForFunction(() => document.getElementById("error").textContent !== "", null, { timeout: 20000 });
  check((await page.evaluate(async () => (await fetch("/ui/api/info")).json())).mode === "exact", "a bad budget is refused and nothing changes");

  // Chat: the reply's text grows piece by piece while it streams.
  await page.fill("#inf-max-tokens", "48");
  await page.fill("#inf-temperature", "0");
  await page.evaluate(() => {
    window.__lengths = [];
    new MutationObserver(() => {
      const m = document.querySelectorAll("#chat-log .msg.assistant .text");
      if (m.length) window.__lengths.push(m[m.length - 1].textContent.length);
    }).observe(document.getElementById("chat-log"), { subtree: true, childList: true, characterData: true });
  });
  await page.fill("#chat-input", "Tell me about the river.");
  await page.click("#chat-send");
  // Streamed pieces are counted as the page applies them (chatUpdates); the lengths the DOM
  // showed only ever grow. (How many distinct lengths the observer sees depends on how the
  // browser happens to batch network reads, so it is printed, not judged.)
  await page.waitForFunction(() => window.chronosUi.chatUpdates >= 3, null, { timeout: 30000 }).catch(() => {});
  const updates = await page.evaluate(() => window.chronosUi.chatUpdates);
  const lengths = await page.evaluate(() => window.__lengths);
  const distinct = [...new Set(lengths.filter((n) => n > 0))];
  check(updates >= 3 && distinct.length >= 1 && distinct.every((n, i) => i === 0 || n > distinct[i - 1]),
        `the chat reply streams in (${updates} pieces applied; lengths shown ${distinct.slice(0, 8).join(", ")} ...)`);
  await page.screenshot({ path: path.join(artifacts, "chat.png"), fullPage: true });

  // IO monitor: during a generation new points arrive and the bytes read move.
  await page.click('button[data-tab="monitor"]');
  await page.waitForFunction(() => window.chronosUi.monitorPoints > 1, null, { timeout: 10000 });
  const before = await page.evaluate(() => ({ points: window.chronosUi.monitorPoints, bytes: window.chronosUi.monitorBytes }));
  await page.evaluate(async () => {
    const info = await (await fetch("/ui/api/info")).json();
    await fetch("/v1/completions", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ model: info.model, prompt: "The history of the city", max_tokens: 64, temperature: 0 }) });
  });
  // A point arrives every 500 ms: wait for two after the generation rather than for a fixed time.
  await page.waitForFunction((b) => window.chronosUi.monitorPoints >= b.points + 2 && window.chronosUi.monitorBytes > b.bytes, before, { timeout: 20000 })
    .catch(() => {});
  const after = await page.evaluate(() => ({ points: window.chronosUi.monitorPoints, bytes: window.chronosUi.monitorBytes }));
  const cells = await page.evaluate(() => document.querySelectorAll("#mon-resident .cell.on").length);
  check(after.points >= before.points + 2 && after.bytes > before.bytes,
        `the IO monitor moves (points ${before.points} -> ${after.points}, bytes read ${before.bytes} -> ${after.bytes}, ${cells} experts resident)`);
  await page.screenshot({ path: path.join(artifacts, "monitor.png"), fullPage: true });

  // Training: the first loss point appears, then the job is cancelled.
  await page.click('button[data-tab="train"]');
  await page.selectOption("#train-config", "tiny");
  await page.selectOption("#train-data", "data/prepared/pretrain.train.jsonl");
  await page.fill("#train-steps", "2000");
  await page.click("#train-start");
  await page.waitForFunction(() => window.chronosUi.trainPoints > 0, null, { timeout: 240000 });
  check(true, `a training job shows its first loss point`);
  await page.click("#train-cancel");
  await page.waitForFunction(() => document.getElementById("train-state").dataset.state === "cancelled", null, { timeout: 20000 });
  check(true, "the training job is cancelled");
  await page.screenshot({ path: path.join(artifacts, "train.png"), fullPage: true });
  check(errors.length === 0, `no script errors on the page${errors.length ? ": " + errors.join("; ") : ""}`);
  await browser.close();
  process.exit(failed ? 1 : 0);
})().catch((e) => {
  console.error("FAIL: " + e.message);
  process.exit(1);
});
