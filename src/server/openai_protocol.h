// openai_protocol.h: the OpenAI-compatible request and response bodies `chronos serve` speaks,
// as plain structs, and their checks. Parsing never throws anything but ApiError, whose status
// and error object are what the client gets (400 for a malformed body, 404 for an unknown
// model ...); the server keeps serving.
//
//     chronos::server::CompletionRequest r = chronos::server::completion_parse(body, limits, false);
//     nlohmann::json e = chronos::server::error_json(err);  // {"error": {"message", "type", "param", "code"}}
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "tokenizer/chat_template.h"

namespace chronos::server {

struct ApiError : std::runtime_error {
    ApiError(int status, std::string type, std::string message, std::string param = "", std::string code = "")
        : std::runtime_error(message), status(status), type(std::move(type)), param(std::move(param)), code(std::move(code)) {}
    int status;
    std::string type, param, code;
};
nlohmann::json error_json(const ApiError& e);

// What a request may ask for at most.
struct RequestLimits {
    int64_t max_tokens = 512;  // per completion
    int64_t max_n = 8;         // completions per request
    int64_t max_stop = 4;      // stop sequences
};

// /v1/completions (chat = false: `prompt`) and /v1/chat/completions (chat = true: `messages`).
struct CompletionRequest {
    bool chat = false;
    std::string model;
    std::string prompt;                 // completions
    std::vector<ChatMessage> messages;  // chat
    int64_t max_tokens = 16;            // completions: 16 unless given; chat: the server's bound
    bool max_tokens_given = false;      // else the context may lower the default
    double temperature = 1.0, top_p = 1.0;
    bool has_seed = false;
    uint64_t seed = 0;
    std::vector<std::string> stop;
    int64_t n = 1;
    bool stream = false;
    bool include_usage = false;         // stream_options.include_usage: a last chunk with usage
};
CompletionRequest completion_parse(const std::string& body, const RequestLimits& limits, bool chat);

struct Choice {
    std::string text;
    std::string finish_reason;  // "stop" or "length"
};
struct Usage {
    int64_t prompt_tokens = 0, completion_tokens = 0;
};

// The final (non-streamed) response bodies.
nlohmann::json completion_response(const CompletionRequest& r, const std::string& id, int64_t created, const std::vector<Choice>& choices,
                                   const Usage& usage);
// One streamed chunk: a piece of text of choice `index`, or (finish_reason set) its end; the
// last chunk of a stream carries `usage` (usage != nullptr) and no choice.
nlohmann::json completion_chunk(const CompletionRequest& r, const std::string& id, int64_t created, int64_t index, const std::string& text,
                                const std::string& finish_reason, bool first, const Usage* usage);
nlohmann::json models_response(const std::string& model_id, int64_t created);

}  // namespace chronos::server
