// engine.h: what `chronos serve` generates with: one runtime Model and one Session (experts on
// SSD, the RAM tier shared by every request, so a warm tier serves the next request too), the
// tokenizer, and the counters /metrics reports. Requests take the session one at a time (a
// mutex; the HTTP threads queue on it): in exact mode every completion equals what `chronos
// generate` gives alone for the same prompt, settings and seed.
//
//     chronos::server::Engine engine(options);
//     engine.complete(request, [](int64_t choice, const std::string& piece) { return true; });
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/runtime.h"
#include "server/openai_protocol.h"
#include "tokenizer/tokenizer.h"

namespace chronos::server {

struct EngineOptions {
    std::string model_dir;
    std::string model_id;           // the name clients use; default: the folder's name
    std::string mode = "exact";
    std::string ram_budget = "auto";
    double request_timeout_s = 300;  // generation stops (finish_reason "length") past this
};

// Counters since the server started, for /metrics.
struct EngineCounters {
    uint64_t requests = 0, requests_failed = 0, prompt_tokens = 0, completion_tokens = 0;
    double decode_s = 0;
};

class Engine {
public:
    // max_waiting: requests that may wait for the session at once (more are turned away: 503).
    Engine(const EngineOptions& options, int max_waiting);
    ~Engine();

    const std::string& model_id() const { return id_; }
    int64_t created() const { return created_; }
    int64_t context() const;

    // Runs every choice of the request, calling on_piece(choice, text) as text becomes final
    // (stop sequences are held back until they cannot start in it; return false to cancel).
    // Throws ApiError for a prompt that does not fit the context.
    struct Result {
        std::vector<Choice> choices;
        Usage usage;
    };
    Result complete(const CompletionRequest& r, const std::function<bool(int64_t, const std::string&)>& on_piece);

    // The prompt's ids; throws ApiError when it is empty or it and max_tokens exceed the context.
    std::vector<int32_t> prompt_check(const CompletionRequest& r) const;

    // /metrics in the Prometheus text format.
    std::string metrics_text();
    void count_failure();

private:
    friend class EngineTicket;
    EngineOptions o_;
    int max_waiting_ = 1;
    std::atomic<int> waiting_{0};  // requests holding a ticket (generating or waiting to)
    std::string id_;
    int64_t created_ = 0;
    std::unique_ptr<rt::Model> model_;
    std::unique_ptr<Tokenizer> tok_;
    rt::SessionOptions so_;
    std::unique_ptr<rt::Session> session_;
    std::mutex session_mutex_;  // one generation at a time
    std::mutex counters_mutex_;  // guards the four below
    EngineCounters counters_;
    rt::Metrics session_metrics_;  // the session's, as of the last finished request
    uint64_t resident_bytes_ = 0, pool_bytes_ = 0;
};

// A place in the queue for the session, held for as long as a request may generate (a stream
// keeps it until its last event): admitted() is false when max_waiting requests hold one.
class EngineTicket {
public:
    explicit EngineTicket(Engine& engine);
    EngineTicket(EngineTicket&& other) noexcept;
    EngineTicket(const EngineTicket&) = delete;
    EngineTicket& operator=(const EngineTicket&) = delete;
    EngineTicket& operator=(EngineTicket&&) = delete;
    ~EngineTicket();
    bool admitted() const { return engine_ != nullptr; }

private:
    Engine* engine_ = nullptr;
};

// Where in `text` a stop sequence first begins (npos: none), and how much of text is safe to
// show: everything before any suffix that could still grow into a stop sequence.
struct StopScan {
    size_t stop_at = std::string::npos;
    size_t safe = 0;
};
StopScan stop_scan(const std::string& text, const std::vector<std::string>& stops);

}  // namespace chronos::server
