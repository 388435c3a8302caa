// openai_protocol.cpp: request checks and response bodies (openai_protocol.h).
#include "server/openai_protocol.h"

#include <fmt/format.h>

#include <cmath>
#include <set>

#include "data/text_utils.h"

namespace chronos::server {

using json = nlohmann::json;

namespace {

[[noreturn]] void bad(const std::string& message, const std::string& param) { throw ApiError(400, "invalid_request_error", message, param); }

std::string string_field(const json& j, const char* key, const std::string& where) {
    const json& v = j.at(key);
    if (!v.is_string()) bad(fmt::format("{}'{}' must be a string", where, key), key);
    const std::string s = v.get<std::string>();
    if (!utf8_valid(s)) bad(fmt::format("{}'{}' is not valid UTF-8", where, key), key);
    return s;
}

double number_field(const json& j, const char* key, double lo, double hi) {
    const json& v = j.at(key);
    if (!v.is_number()) bad(fmt::format("'{}' must be a number", key), key);
    const double x = v.get<double>();
    if (!std::isfinite(x) || x < lo || x > hi) bad(fmt::format("'{}' must be within [{}, {}]", key, lo, hi), key);
    return x;
}

int64_t int_field(const json& j, const char* key, int64_t lo, int64_t hi) {
    const json& v = j.at(key);
    // JSON has one number type: 4.0 is the integer 4 (clients that build numbers as floats send it).
    const bool whole_float = v.is_number_float() && std::isfinite(v.get<double>()) && v.get<double>() == std::floor(v.get<double>()) &&
                             std::fabs(v.get<double>()) < 9.0e15;
    if (!v.is_number_integer() && !whole_float) bad(fmt::format("'{}' must be an integer", key), key);
    const int64_t x = whole_float ? static_cast<int64_t>(v.get<double>()) : v.get<int64_t>();
    if (x < lo || x > hi) bad(fmt::format("'{}' must be within [{}, {}]", key, lo, hi), key);
    return x;
}

}  // namespace

json error_json(const ApiError& e) {
    return json{{"error", {{"message", e.what()}, {"type", e.type}, {"param", e.param.empty() ? json() : json(e.param)},
                           {"code", e.code.empty() ? json() : json(e.code)}}}};
}

CompletionRequest completion_parse(const std::string& body, const RequestLimits& limits, bool chat) {
    if (!utf8_valid(body)) bad("the request body is not valid UTF-8", "");
    json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) bad("the request body is not valid JSON", "");
    if (!j.is_object()) bad("the request body must be a JSON object", "");
    CompletionRequest r;
    r.chat = chat;
    static const std::set<std::string> known = {"model", "prompt", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p",
                                                "seed", "stop", "n", "stream", "stream_options", "user", "frequency_penalty",
                                                "presence_penalty", "logit_bias", "echo", "logprobs", "suffix", "best_of", "top_logprobs",
                                                "response_format", "tools", "tool_choice", "parallel_tool_calls", "metadata", "store"};
    for (const auto& [k, v] : j.items()) {
        if (!known.count(k)) bad(fmt::format("unknown field '{}'", utf8_valid(k) ? k : std::string("?")), k);
    }
    // Fields we accept for compatibility only when they ask for nothing we do not do.
    for (const char* k : {"echo", "logprobs", "tools", "response_format", "suffix", "logit_bias", "top_logprobs"}) {
        if (j.contains(k) && !j[k].is_null() && !(j[k].is_boolean() && !j[k].get<bool>())) bad(fmt::format("'{}' is not supported", k), k);
    }
    for (const char* k : {"frequency_penalty", "presence_penalty"}) {
        if (j.contains(k) && !j[k].is_null() && number_field(j, k, -2, 2) != 0) bad(fmt::format("'{}' is not supported (0 only)", k), k);
    }
    if (j.contains("best_of") && !j["best_of"].is_null() && int_field(j, "best_of", 1, 1) != 1) bad("'best_of' must be 1", "best_of");
    if (!j.contains("model")) bad("'model' is required", "model");
    r.model = string_field(j, "model", "");
    if (chat) {
        if (!j.contains("messages") || !j["messages"].is_array() || j["messages"].empty()) bad("'messages' must be a non-empty array", "messages");
        for (size_t i = 0; i < j["messages"].size(); ++i) {
            const json& m = j["messages"][i];
            const std::string where = fmt::format("messages[{}]: ", i);
            if (!m.is_object() || !m.contains("role") || !m.contains("content")) bad(where + "each message needs 'role' and 'content'", "messages");
            ChatMessage cm;
            cm.role = string_field(m, "role", where);
            if (cm.role != "system" && cm.role != "user" && cm.role != "assistant") {
                bad(where + "'role' must be system, user or assistant", "messages");
            }
            if (m["content"].is_array()) {  // the content-parts form: text parts only
                for (const json& part : m["content"]) {
                    if (!part.is_object() || !part.contains("type") || part["type"] != "text" || !part.contains("text")) {
                        bad(where + "only text content parts are supported", "messages");
                    }
                    cm.content += string_field(part, "text", where);
                }
            } else {
                cm.content = string_field(m, "content", where);
            }
            r.messages.push_back(std::move(cm));
        }
        if (j.contains("prompt")) bad("'prompt' belongs to /v1/completions; chat takes 'messages'", "prompt");
    } else {
        if (!j.contains("prompt")) bad("'prompt' is required", "prompt");
        const json& p = j["prompt"];
        if (p.is_array()) {
            if (p.size() != 1 || !p[0].is_string()) bad("'prompt' must be a string (or an array of one string)", "prompt");
            json one{{"prompt", p[0]}};
            r.prompt = string_field(one, "prompt", "");
        } else {
            r.prompt = string_field(j, "prompt", "");
        }
        if (j.contains("messages")) bad("'messages' belongs to /v1/chat/completions", "messages");
    }
    if (chat) r.max_tokens = limits.max_tokens;  // OpenAI's chat has no default limit: the server's bound
    const char* max_key = j.contains("max_completion_tokens") && !j["max_completion_tokens"].is_null() ? "max_completion_tokens" : "max_tokens";
    if (j.contains(max_key) && !j[max_key].is_null()) {
        r.max_tokens = int_field(j, max_key, 1, limits.max_tokens);
        r.max_tokens_given = true;
    }
    if (j.contains("temperature") && !j["temperature"].is_null()) r.temperature = number_field(j, "temperature", 0, 2);
    if (j.contains("top_p") && !j["top_p"].is_null()) {
        if (!j["top_p"].is_number()) bad("'top_p' must be a number", "top_p");
        r.top_p = j["top_p"].get<double>();
        // The sampler works in float: a mass that rounds to 0 there keeps nothing.
        if (!(std::isfinite(r.top_p) && static_cast<float>(r.top_p) > 0.0f && r.top_p <= 1)) bad("'top_p' must be within (0, 1]", "top_p");
    }
    if (j.contains("seed") && !j["seed"].is_null()) {
        if (!j["seed"].is_number_integer()) bad("'seed' must be an integer", "seed");
        r.has_seed = true;
        r.seed = j["seed"].is_number_unsigned() ? j["seed"].get<uint64_t>() : static_cast<uint64_t>(j["seed"].get<int64_t>());
    }
    if (j.contains("stop") && !j["stop"].is_null()) {
        const json& s = j["stop"];
        if (s.is_string()) {
            r.stop.push_back(string_field(j, "stop", ""));
        } else if (s.is_array()) {
            if (static_cast<int64_t>(s.size()) > limits.max_stop) bad(fmt::format("'stop' holds at most {} sequences", limits.max_stop), "stop");
            for (const json& x : s) {
                json one{{"stop", x}};
                r.stop.push_back(string_field(one, "stop", ""));
            }
        } else {
            bad("'stop' must be a string or an array of strings", "stop");
        }
        for (const auto& x : r.stop) {
            if (x.empty()) bad("a stop sequence may not be empty", "stop");
        }
    }
    if (j.contains("n") && !j["n"].is_null()) r.n = int_field(j, "n", 1, limits.max_n);
    if (j.contains("stream") && !j["stream"].is_null()) {
        if (!j["stream"].is_boolean()) bad("'stream' must be true or false", "stream");
        r.stream = j["stream"].get<bool>();
    }
    if (j.contains("stream_options") && !j["stream_options"].is_null()) {
        const json& so = j["stream_options"];
        if (!so.is_object()) bad("'stream_options' must be an object", "stream_options");
        for (const auto& [k, v] : so.items()) {
            if (k != "include_usage" || !v.is_boolean()) bad("'stream_options' takes include_usage: true or false", "stream_options");
        }
        if (!r.stream) bad("'stream_options' needs \"stream\": true", "stream_options");
        r.include_usage = so.value("include_usage", false);
    }
    return r;
}

json completion_response(const CompletionRequest& r, const std::string& id, int64_t created, const std::vector<Choice>& choices, const Usage& usage) {
    json out{{"id", id}, {"object", r.chat ? "chat.completion" : "text_completion"}, {"created", created}, {"model", r.model}};
    json cs = json::array();
    for (size_t i = 0; i < choices.size(); ++i) {
        json c{{"index", i}, {"finish_reason", choices[i].finish_reason}};
        if (r.chat) {
            c["message"] = {{"role", "assistant"}, {"content", choices[i].text}};
        } else {
            c["text"] = choices[i].text;
            c["logprobs"] = nullptr;
        }
        cs.push_back(c);
    }
    out["choices"] = cs;
    out["usage"] = {{"prompt_tokens", usage.prompt_tokens}, {"completion_tokens", usage.completion_tokens},
                    {"total_tokens", usage.prompt_tokens + usage.completion_tokens}};
    return out;
}

json completion_chunk(const CompletionRequest& r, const std::string& id, int64_t created, int64_t index, const std::string& text,
                      const std::string& finish_reason, bool first, const Usage* usage) {
    json out{{"id", id}, {"object", r.chat ? "chat.completion.chunk" : "text_completion"}, {"created", created}, {"model", r.model}};
    json cs = json::array();
    if (!usage) {
        json c{{"index", index}, {"finish_reason", finish_reason.empty() ? json() : json(finish_reason)}};
        if (r.chat) {
            json delta = json::object();
            if (first) delta["role"] = "assistant";
            if (!text.empty() || finish_reason.empty()) delta["content"] = text;
            c["delta"] = delta;
        } else {
            c["text"] = text;
            c["logprobs"] = nullptr;
        }
        cs.push_back(c);
    } else {
        out["usage"] = {{"prompt_tokens", usage->prompt_tokens}, {"completion_tokens", usage->completion_tokens},
                        {"total_tokens", usage->prompt_tokens + usage->completion_tokens}};
    }
    out["choices"] = cs;
    return out;
}

json models_response(const std::string& model_id, int64_t created) {
    return json{{"object", "list"}, {"data", json::array({{{"id", model_id}, {"object", "model"}, {"created", created}, {"owned_by", "chronos"}}})}};
}

}  // namespace chronos::server
