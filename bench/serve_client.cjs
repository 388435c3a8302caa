// serve_client.cjs: the load generator of bench/serve_streams.sh (node's own http module: one
// event loop, so the client's cost per streamed chunk stays far below the server's). For each
// stream count, that many clients each send `rounds` streaming completions one after another;
// prints one JSON line per stream count with the client-side timings and the /metrics deltas.
// Usage: node serve_client.cjs BASE_URL PROMPTS_JSON ROUNDS MAX_TOKENS STREAMS...
"use strict";
const http = require("http");
const [base, promptsPath, roundsArg, maxTokensArg, ...streamsArgs] = process.argv.slice(2);
const prompts = JSON.parse(require("fs").readFileSync(promptsPath, "utf8"));
const rounds = Number(roundsArg), maxTokens = Number(maxTokensArg);
const url = new URL(base);
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

function request(method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, method, path, agent, headers: { "Content-Type": "application/json" } },
                             resolve);
    req.on("error", reject);
    if (body) req.write(JSON.stringify(body));
    req.end();
  });
}

async function metrics() {
  const res = await request("GET", "/metrics");
  let text = "";
  for await (const chunk of res) text += chunk;
  const values = {};
  for (const line of text.split("\n")) if (line && !line.startsWith("#")) values[line.split(" ")[0]] = Number(line.split(" ")[1]);
  return values;
}

async function stream(prompt, seed) {
  const t0 = process.hrtime.bigint();
  const res = await request("POST", "/v1/completions", { model: "small", prompt, max_tokens: maxTokens, temperature: 0.8, seed,
                                                          stream: true, stream_options: { include_usage: true } });
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
  const times = [];
  let tokens = 0, buf = "";
  for await (const chunk of res) {
    const now = process.hrtime.bigint();
    buf += chunk;
    let at;
    while ((at = buf.indexOf("\n\n")) >= 0) {
      const event = buf.slice(0, at);
      buf = buf.slice(at + 2);
      if (!event.startsWith("data: ") || event === "data: [DONE]") continue;
      const j = JSON.parse(event.slice(6));
      if (j.usage) tokens = j.usage.completion_tokens;
      if (j.choices.some((c) => c.text)) times.push(Number(now - t0) / 1e6);
    }
  }
  return { ttft: times.length ? times[0] : null, gaps: times.slice(1).map((t, i) => t - times[i]), tokens };
}

const pct = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN;
};

(async () => {
  await stream(prompts[0], 0);  // warm-up: code, dense weights and the first experts
  for (const streams of streamsArgs.map(Number)) {
    const m0 = await metrics();
    const out = [];
    const t0 = process.hrtime.bigint();
    await Promise.all(Array.from({ length: streams }, async (_, s) => {
      for (let k = 0; k < rounds; ++k) {
        const i = (s * rounds + k) % prompts.length;
        out.push(await stream(prompts[i], 1000 + i));
      }
    }));
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const m1 = await metrics();
    const d = (k) => (m1[k] || 0) - (m0[k] || 0);
    const tokens = out.reduce((a, o) => a + o.tokens, 0);
    const gaps = out.flatMap((o) => o.gaps), ttft = out.filter((o) => o.ttft !== null).map((o) => o.ttft);
    const hits = d("chronos_expert_hits_total"), misses = d("chronos_expert_misses_total");
    console.log(JSON.stringify({
      streams, requests: out.length, tokens, wall_s: wall, tok_s: tokens / wall,
      bytes_per_token: d("chronos_expert_bytes_read_total") / Math.max(tokens, 1),
      mean_batch: d("chronos_decode_rows_total") / Math.max(d("chronos_decode_steps_total"), 1),
      hit_rate: hits / Math.max(hits + misses, 1),
      ttft_p50_ms: pct(ttft, 0.5), ttft_p99_ms: pct(ttft, 0.99), itl_p50_ms: pct(gaps, 0.5), itl_p99_ms: pct(gaps, 0.99),
    }));
  }
  agent.destroy();
})().catch((e) => {
  console.error(`serve_client: ${e.message}`);
  process.exit(1);
});
