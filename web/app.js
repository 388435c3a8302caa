// app.js: the web UI's behaviour — tabs, language, and one small controller per tab over the
// server's API (src/server/ui.h, the OpenAI routes for chat). Charts are uPlot (window.uPlot,
// from npm). Plain ES module, no build step. Test hooks: window.chronosUi counts what the
// browser tests wait for (chart points, streamed chat updates).
import { languages, messages } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const ui = (window.chronosUi = { trainPoints: 0, monitorPoints: 0, chatUpdates: 0, lang: "en" });

// ---------------------------------------------------------------- language
let lang = localStorage.getItem("chronos.lang");
if (!languages.includes(lang)) lang = "en";
export function t(key) {
  return (messages[lang] && messages[lang][key]) || messages.en[key] || key;
}
function applyLanguage() {
  document.documentElement.lang = lang;
  ui.lang = lang;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const fn of relabel) fn();
}
const relabel = [];  // controllers that draw translated text themselves
$("lang").value = lang;
$("lang").addEventListener("change", () => {
  lang = $("lang").value;
  localStorage.setItem("chronos.lang", lang);
  applyLanguage();
});

// ---------------------------------------------------------------- API
$("api-key").value = localStorage.getItem("chronos.key") || "";
$("api-key").addEventListener("change", () => localStorage.setItem("chronos.key", $("api-key").value));
function headers() {
  const h = { "Content-Type": "application/json" };
  if ($("api-key").value) h.Authorization = "Bearer " + $("api-key").value;
  return h;
}
function showError(e) {
  $("error").textContent = `${t("error")}: ${e.message || e}`;
}
async function api(path, body) {
  const r = await fetch(path, body === undefined ? { headers: headers() } : { method: "POST", headers: headers(), body: JSON.stringify(body) });
  const j = await r.json();
  if (!r.ok) throw new Error(j.error ? j.error.message : r.statusText);
  $("error").textContent = "";
  return j;
}
function fill(select, values) {
  const keep = select.value;
  select.replaceChildren(...values.map((v) => new Option(v, v)));
  if (values.includes(keep)) select.value = keep;
}
function fmtBytes(b) {
  if (b >= 1 << 30) return (b / (1 << 30)).toFixed(2) + " GiB";
  if (b >= 1 << 20) return (b / (1 << 20)).toFixed(1) + " MiB";
  if (b >= 1 << 10) return (b / (1 << 10)).toFixed(1) + " KiB";
  return b + " B";
}
const stateText = (s) => t("state_" + s);
// Reads a response of server-sent events, calling onData with each event's JSON until the
// stream ends ("[DONE]" is skipped).
async function readEvents(response, onData) {
  const reader = response.body.getReader(), dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += dec.decode(value, { stream: true });
    let at;
    while ((at = buf.indexOf("\n\n")) >= 0) {
      const ev = buf.slice(0, at);
      buf = buf.slice(at + 2);
      if (ev.startsWith("data: ") && ev !== "data: [DONE]") onData(JSON.parse(ev.slice(6)));
    }
  }
}

// ---------------------------------------------------------------- tabs
function showTab(name) {
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.tab === name);
  for (const s of document.querySelectorAll(".tab")) s.classList.toggle("active", s.id === "tab-" + name);
  localStorage.setItem("chronos.tab", name);
  window.dispatchEvent(new Event("resize"));
}
for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => showTab(b.dataset.tab));

// uPlot draws its legend once: a language change rewrites the labels (x first, then the series).
function relabelChart(el, keys, titleKey) {
  const labels = el.querySelectorAll(".u-legend .u-label");
  keys.forEach((k, i) => labels[i] && (labels[i].textContent = t(k)));
  const title = el.querySelector(".u-title");
  if (title && titleKey) title.textContent = t(titleKey);
}
function lineChart(el, keys, height = 220) {
  const opts = {
    width: Math.max(320, Math.min(900, el.clientWidth || 720)), height,
    scales: { x: { time: false } },
    series: [{ label: t("steps") }, ...keys.map((k, i) => ({ label: t(k), stroke: ["#2a5bd7", "#d7632a", "#2a9d5c", "#8a2ad7"][i % 4] }))],
  };
  const chart = new uPlot(opts, [[], ...keys.map(() => [])], el);
  relabel.push(() => relabelChart(el, ["steps", ...keys]));
  return chart;
}

// A job's panel: start, poll until it ends, cancel; the latest job of the kind is reattached
// after a page reload.
function jobPanel(kind, { start, render, cancelButton }) {
  let id = null, timer = null;
  async function poll() {
    try {
      const j = await api("/ui/api/jobs/" + id);
      $(kind + "-job").textContent = j.id;
      $(kind + "-state").textContent = stateText(j.state);
      $(kind + "-state").dataset.state = j.state;
      if ($(kind + "-output")) $(kind + "-output").textContent = j.output;
      render(j);
      if (j.state !== "running") {
        clearInterval(timer);
        timer = null;
      }
    } catch (e) {
      showError(e);
    }
  }
  function attach(jobId) {
    id = jobId;
    if (timer) clearInterval(timer);
    timer = setInterval(poll, 1000);
    poll();
  }
  $(kind + "-start").addEventListener("click", async () => {
    try {
      attach((await api("/ui/api/jobs", start())).id);
    } catch (e) {
      showError(e);
    }
  });
  if (cancelButton) {
    $(kind + "-cancel").addEventListener("click", async () => {
      if (!id) return;
      try {
        await api(`/ui/api/jobs/${id}/cancel`, {});
        poll();
      } catch (e) {
        showError(e);
      }
    });
  }
  return { attach, current: () => id };
}

// ---------------------------------------------------------------- 1. config
async function refreshEstimate() {
  const name = $("config-name").value;
  if (!name) return;
  try {
    const e = await api(`/ui/api/estimate?config=${encodeURIComponent(name)}&ram_budget=${encodeURIComponent($("config-budget").value)}`);
    const groups = $("config-groups").tBodies[0];
    groups.replaceChildren(...Object.entries(e.params.groups).map(([name, n]) => {
      const tr = document.createElement("tr");
      tr.append(Object.assign(document.createElement("td"), { textContent: name }), Object.assign(document.createElement("td"), { textContent: n.toLocaleString() }));
      return tr;
    }));
    const m = e.memory;
    const rows = [["params_total", e.params.total.toLocaleString()], ["params_experts", e.params.experts.toLocaleString()],
      ["params_dense", e.params.dense.toLocaleString()], ["expert_bytes", fmtBytes(e.expert_bytes)],
      ["experts_total_bytes", Object.entries(e.expert_bytes_by_type).map(([k, v]) => `${k} ${fmtBytes(v)}`).join(", ")],
      ["dense_bytes", Object.entries(e.dense_bytes_by_type).map(([k, v]) => `${k} ${fmtBytes(v)}`).join(", ")],
      ["kv_per_token", Object.entries(e.kv_bytes_per_token).map(([k, v]) => `${k} ${fmtBytes(v)}`).join(", ")],
      ["kv_bytes_context", fmtBytes(e.kv_bytes_context)], ["slots", String(e.expert_slots)], ["pool_bytes", fmtBytes(m.expert_pool_bytes)],
      ["session_bytes", fmtBytes(m.session_buffer_bytes)], ["code_bytes", fmtBytes(m.code_bytes)], ["predicted_peak_rss", fmtBytes(m.predicted_peak_rss_bytes)]];
    $("config-summary").tBodies[0].replaceChildren(...rows.map(([k, v]) => {
      const tr = document.createElement("tr");
      tr.append(Object.assign(document.createElement("td"), { textContent: t(k) }), Object.assign(document.createElement("td"), { textContent: v }));
      return tr;
    }));
  } catch (err) {
    showError(err);
  }
}
$("config-name").addEventListener("change", refreshEstimate);
$("config-budget").addEventListener("change", refreshEstimate);
relabel.push(refreshEstimate);

// ---------------------------------------------------------------- 2. train
const trainKeys = ["loss", "balance", "temporal", "lookahead"];
let trainChart = null;
const train = jobPanel("train", {
  cancelButton: true,
  start: () => ({ kind: "train", config: $("train-config").value, data: $("train-data").value, steps: Number($("train-steps").value) }),
  render: (j) => {
    const log = (j.log || []).filter((r) => typeof r.loss === "number");
    if (!trainChart) trainChart = lineChart($("train-chart"), trainKeys);
    trainChart.setData([log.map((r) => r.step), ...trainKeys.map((k) => log.map((r) => r[k] ?? null))]);
    ui.trainPoints = log.length;
  },
});

// ---------------------------------------------------------------- 3. pipeline
let pipelineStages = [];
async function loadPipelineStages() {
  const name = $("pipeline-config").value;
  if (!name) return;
  try {
    pipelineStages = (await api(`/ui/api/pipeline?config=${encodeURIComponent(name)}`)).stages || [];
  } catch (e) {
    pipelineStages = [];
  }
  $("pipeline-stages").tBodies[0].replaceChildren(...pipelineStages.map((s, i) => {
    const tr = document.createElement("tr");
    const data = Object.assign(document.createElement("input"), { value: s.data || "", size: 42 });
    data.dataset.stage = i;
    data.className = "stage-data";
    const steps = Object.assign(document.createElement("input"), { type: "number", value: s.steps || 1, min: 1 });
    steps.className = "stage-steps";
    const td = () => document.createElement("td");
    const a = td(), b = td(), c = td();
    a.textContent = s.name;
    b.append(data);
    c.append(steps);
    tr.append(a, b, c);
    return tr;
  }));
}
$("pipeline-config").addEventListener("change", loadPipelineStages);
const pipelineColumns = ["held_out_ce", "preference_accuracy", "exact_match", "router_drift", "switch_rate", "lookahead_recall_t1", "train_tok_s"];
const pipeline = jobPanel("pipeline", {
  cancelButton: true,
  start: () => ({
    kind: "pipeline", config: $("pipeline-config").value,
    stages: [...$("pipeline-stages").tBodies[0].rows].map((tr, i) => ({
      name: pipelineStages[i].name, data: tr.querySelector(".stage-data").value, steps: Number(tr.querySelector(".stage-steps").value),
    })),
  }),
  render: (j) => {
    const r = j.result;
    const head = $("pipeline-result").tHead, body = $("pipeline-result").tBodies[0];
    if (!r || !r.stages) {
      head.replaceChildren();
      body.replaceChildren();
      return;
    }
    const hr = document.createElement("tr");
    hr.append(Object.assign(document.createElement("th"), { textContent: t("stage") }), ...pipelineColumns.map((c) => Object.assign(document.createElement("th"), { textContent: t(c) })));
    head.replaceChildren(hr);
    body.replaceChildren(...[r.pretrained, ...r.stages].filter(Boolean).map((s) => {
      const tr = document.createElement("tr");
      tr.append(Object.assign(document.createElement("td"), { textContent: s.name || "pretrained" }),
        ...pipelineColumns.map((c) => Object.assign(document.createElement("td"), { textContent: typeof s[c] === "number" ? s[c].toFixed(3) : "-" })));
      return tr;
    }));
  },
});

// ---------------------------------------------------------------- 4. inference
async function loadInfo() {
  const info = await api("/ui/api/info");
  $("model-info").textContent = `${info.model} · ${info.mode} · ${fmtBytes(info.ram_budget_bytes)}`;
  $("inf-mode").textContent = info.mode;
  $("inf-mode").dataset.mode = info.mode;
  $("inf-mode-select").value = info.mode;
  $("inf-budget").textContent = `${fmtBytes(info.ram_budget_bytes)} (${((100 * info.ram_budget_bytes) / info.expert_bytes_total).toFixed(0)}%)`;
  return info;
}
$("inf-apply").addEventListener("click", async () => {
  try {
    $("inf-apply").disabled = true;
    await api("/ui/api/engine", { mode: $("inf-mode-select").value, ram_budget: $("inf-budget-input").value });
    await loadInfo();
  } catch (e) {
    showError(e);
  } finally {
    $("inf-apply").disabled = false;
  }
});
const chat = [];
function addMessage(role, text) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  div.dataset.role = role;
  const who = Object.assign(document.createElement("b"), { textContent: t(role === "user" ? "you" : "assistant") + ": " });
  const body = Object.assign(document.createElement("span"), { textContent: text });
  body.className = "text";
  div.append(who, body);
  $("chat-log").append(div);
  return body;
}
async function sendChat() {
  const text = $("chat-input").value.trim();
  if (!text) return;
  $("chat-input").value = "";
  chat.push({ role: "user", content: text });
  addMessage("user", text);
  const out = addMessage("assistant", "");
  const body = { model: (await api("/ui/api/info")).model, messages: chat, stream: true, max_tokens: Number($("inf-max-tokens").value),
    temperature: Number($("inf-temperature").value), top_p: Number($("inf-top-p").value) };
  if ($("inf-seed").value !== "") body.seed = Number($("inf-seed").value);
  try {
    const r = await fetch("/v1/chat/completions", { method: "POST", headers: headers(), body: JSON.stringify(body) });
    if (!r.ok) throw new Error((await r.json()).error.message);
    let reply = "";
    await readEvents(r, (j) => {
      if (j.error) throw new Error(j.error.message);
      for (const c of j.choices || []) {
        if (c.delta && c.delta.content) {
          reply += c.delta.content;
          out.textContent = reply;
          ui.chatUpdates += 1;
        }
      }
    });
    chat.push({ role: "assistant", content: reply });
  } catch (e) {
    showError(e);
  }
}
$("chat-send").addEventListener("click", sendChat);
$("chat-input").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) {
    e.preventDefault();
    sendChat();
  }
});

// ---------------------------------------------------------------- 5. benchmark
function drawBars(runs) {
  const c = $("bench-bars"), g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  if (!runs.length) return;
  const max = Math.max(...runs.map((r) => r.decode_tok_s || 0), 1);
  const w = (c.width - 40) / runs.length;
  const colors = { exact: "#2a5bd7", soft: "#2a9d5c", lru: "#d7632a" };
  g.font = "11px system-ui";
  runs.forEach((r, i) => {
    const h = ((c.height - 50) * (r.decode_tok_s || 0)) / max;
    g.fillStyle = colors[r.mode] || "#888";
    g.fillRect(30 + i * w, c.height - 30 - h, w * 0.8, h);
    g.fillStyle = "#1d2330";
    g.fillText(`${r.budget_percent}% ${r.mode}`, 30 + i * w, c.height - 14);
    g.fillText((r.decode_tok_s || 0).toFixed(0), 30 + i * w, c.height - 34 - h);
  });
  g.fillText(t("tok_s"), 2, 12);
}
const bench = jobPanel("bench", {
  start: () => ({ kind: "bench", model: $("bench-model").value, data: $("bench-data").value }),
  render: (j) => {
    const runs = (j.result && j.result.runs) || [];
    drawBars(runs);
    $("bench-table").tBodies[0].replaceChildren(...runs.map((r) => {
      const tr = document.createElement("tr");
      for (const v of [`${r.budget_percent}%`, r.mode, r.decode_tok_s.toFixed(1), r.hit_rate.toFixed(3), (r.bytes_read_per_token / 1000).toFixed(0)]) {
        tr.append(Object.assign(document.createElement("td"), { textContent: v }));
      }
      return tr;
    }));
  },
});

// ---------------------------------------------------------------- 6. auto-tune
const tune = jobPanel("tune", {
  cancelButton: true,
  start: () => ({ kind: "tune", space: $("tune-space").value, trials: Number($("tune-trials").value) }),
  render: (j) => {
    const trials = j.trials || [];
    const done = trials.filter((x) => x.state === "complete");
    const best = done.reduce((a, b) => (a && a.value <= b.value ? a : b), null);
    $("tune-best").textContent = best ? `#${best.number}: ${best.value.toFixed(4)}` : "-";
    $("tune-trials-table").tBodies[0].replaceChildren(...trials.map((x) => {
      const tr = document.createElement("tr");
      for (const v of [`#${x.number}`, x.state, x.state === "complete" ? x.value.toFixed(4) : "-", JSON.stringify(x.params)]) {
        tr.append(Object.assign(document.createElement("td"), { textContent: v }));
      }
      return tr;
    }));
  },
});
$("tune-apply").addEventListener("click", async () => {
  if (!tune.current()) return;
  try {
    const r = await api(`/ui/api/jobs/${tune.current()}/apply`, { name: $("tune-name").value });
    $("tune-applied").textContent = `${t("applied")} ${r.config}`;
  } catch (e) {
    showError(e);
  }
});

// ---------------------------------------------------------------- 7. IO monitor
const monKeys = [["mon-hit", "hit_rate"], ["mon-late", "late_misses"], ["mon-fallback", "fallbacks"], ["mon-stall", "stall_ms_token"], ["mon-bytes", "bytes_s"]];
const monData = { x: [], series: monKeys.map(() => []) };
const monCharts = monKeys.map(([id, key]) => {
  const el = $(id);
  const chart = new uPlot({ width: 300, height: 150, title: t(key), scales: { x: { time: true } },
    series: [{ label: t("time") }, { label: t(key), stroke: "#2a5bd7" }] }, [[], []], el);
  relabel.push(() => relabelChart(el, ["time", key], key));
  return chart;
});
let prev = null;
function onMonitor(m) {
  if (prev) {
    const dt = Math.max(m.t - prev.t, 1e-3), dtok = m.decode_tokens - prev.decode_tokens;
    const dh = m.hits - prev.hits, dm = m.misses - prev.misses;
    monData.x.push(m.t);
    const vals = [dh + dm > 0 ? dh / (dh + dm) : null, m.misses_late - prev.misses_late, m.fallbacks - prev.fallbacks,
      dtok > 0 ? (1000 * (m.stall_s - prev.stall_s)) / dtok : 0, (m.bytes_read - prev.bytes_read) / dt];
    vals.forEach((v, i) => monData.series[i].push(v));
    if (monData.x.length > 240) {
      monData.x.shift();
      monData.series.forEach((s) => s.shift());
    }
    monCharts.forEach((c, i) => c.setData([monData.x, monData.series[i]]));
    ui.monitorPoints += 1;
    ui.monitorBytes = m.bytes_read;
  }
  prev = m;
  const grid = $("mon-resident");
  grid.replaceChildren(...m.resident.map((row, l) => {
    const div = document.createElement("div");
    div.className = "layer";
    div.append(Object.assign(document.createElement("span"), { className: "label", textContent: `${t("layer")} ${l}` }),
      ...row.map((on) => Object.assign(document.createElement("span"), { className: on ? "cell on" : "cell" })));
    return div;
  }));
}
function startMonitor() {
  // EventSource cannot send a header: with an API key the stream is read through fetch.
  fetch("/ui/api/monitor", { headers: headers() }).then((r) => readEvents(r, onMonitor)).catch(showError);
}

// ---------------------------------------------------------------- start
(async () => {
  applyLanguage();
  showTab(localStorage.getItem("chronos.tab") || "config");
  try {
    await loadInfo();
    const c = await api("/ui/api/choices");
    fill($("config-name"), c.configs);
    fill($("train-config"), c.configs);
    fill($("train-data"), c.data);
    fill($("pipeline-config"), c.pipelines);
    fill($("bench-model"), c.models);
    fill($("bench-data"), c.data);
    fill($("tune-space"), c.tune);
    const pre = c.data.find((d) => d.includes("pretrain.train")) || c.data[0];
    if (pre) $("train-data").value = pre;
    const test = c.data.find((d) => d.includes("pretrain.test")) || c.data[0];
    if (test) $("bench-data").value = test;
    refreshEstimate();
    loadPipelineStages();
    // Running and finished jobs survive a reload: the latest of each kind is shown again.
    const jobs = await api("/ui/api/jobs");
    for (const [kind, panel] of [["train", train], ["pipeline", pipeline], ["bench", bench], ["tune", tune]]) {
      const j = jobs.find((x) => x.kind === kind);
      if (j) panel.attach(j.id);
    }
    startMonitor();
    ui.ready = true;
  } catch (e) {
    showError(e);
  }
})();
