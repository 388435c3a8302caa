// openai_client.cjs: the official `openai` npm client (which nobody here wrote) against a running
// `chronos serve`: models.list, a non-streaming completion, a streaming chat completion whose
// pieces join to the non-streaming reply of the same greedy request, and a wrong key refused
// with the client's AuthenticationError. Prints one JSON line; exits non-zero on a failed check.
// Usage: node openai_client.cjs NPM_DIR BASE_URL API_KEY MODEL
const path = require("path");
const [, , npmDir, baseURL, apiKey, model] = process.argv;
const mod = require(path.join(path.resolve(npmDir), "node_modules", "openai"));
const OpenAI = mod.OpenAI || mod.default || mod;

function check(ok, what) {
  if (!ok) {
    console.error("FAIL: " + what);
    process.exit(1);
  }
}

(async () => {
  const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 120000 });
  const models = await client.models.list();
  check(models.data.length === 1 && models.data[0].id === model, "models.list names the served model: " + JSON.stringify(models.data));

  const c = await client.completions.create({ model, prompt: "The committee reported that", max_tokens: 8, temperature: 0 });
  check(typeof c.choices[0].text === "string" && c.choices[0].text.length > 0, "a completion has text");
  check(c.usage && c.usage.completion_tokens > 0 && c.usage.prompt_tokens > 0, "a completion reports usage");

  const messages = [{ role: "user", content: "What is the capital of France?" }];
  const whole = await client.chat.completions.create({ model, messages, max_tokens: 10, temperature: 0 });
  const stream = await client.chat.completions.create({ model, messages, max_tokens: 10, temperature: 0, stream: true });
  let text = "", pieces = 0, finish = null;
  for await (const chunk of stream) {
    const choice = chunk.choices[0];
    if (!choice) continue;
    if (choice.delta && choice.delta.content) {
      text += choice.delta.content;
      pieces += 1;
    }
    if (choice.finish_reason) finish = choice.finish_reason;
  }
  check(pieces >= 2, "the chat reply streamed in several pieces (" + pieces + ")");
  check(text === whole.choices[0].message.content, "streamed pieces join to the non-streamed reply: " + JSON.stringify([text, whole.choices[0].message.content]));
  check(finish === whole.choices[0].finish_reason, "the stream ends with the same finish_reason");

  let refused = false;
  try {
    await new OpenAI({ baseURL, apiKey: "wrong", maxRetries: 0 }).models.list();
  } catch (e) {
    refused = e instanceof mod.AuthenticationError || e.status === 401;
  }
  check(refused, "a wrong key is refused with 401");
  console.log(JSON.stringify({ models: models.data.length, completion: c.choices[0].text, chat: text, pieces }));
})().catch((e) => {
  console.error("FAIL: " + (e && e.stack ? e.stack : e));
  process.exit(1);
});
