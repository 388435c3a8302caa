// engine.h: what `chronos serve` generates with: one runtime Model and one Session of
// max_batch sequences (experts on SSD, the RAM tier shared by every request, so a warm tier
// serves the next request too), the tokenizer, and the counters /metrics reports.
//
// Continuous batching: each choice of each request is a job. One scheduler thread owns the
// session: between decode steps it admits waiting jobs into free sequences (their prompts
// prefill one at a time) and drops finished ones; each step decodes one token of every running
// job together (Session::decode_batch), so one expert read serves every sequence routed to it.
// The HTTP threads turn their jobs' tokens into text, stop sequences and stream chunks. In exact
// mode a completion equals what `chronos generate` gives alone for the same prompt, settings
// and seed, whatever else shares its steps (soft mode's fallbacks depend on timing).
//
//     chronos::server::Engine engine(options, /*max_waiting=*/6);
//     engine.complete(request, [](int64_t choice, const std::string& piece) { return true; });
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

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
    int max_batch = 8;               // sequences decoded together; more jobs wait for a place
    int threads = 0;                 // OpenMP threads of the scheduler (0: the default)
};

// Counters since the server started, for /metrics.
struct EngineCounters {
    uint64_t requests = 0, requests_failed = 0, prompt_tokens = 0, completion_tokens = 0;
    uint64_t decode_steps = 0, decode_rows = 0;  // batched steps, and the sequences they decoded
    double busy_s = 0;                           // time the scheduler spent in prefill and decode
    int64_t running = 0, waiting = 0;            // jobs in the batch and queued, at the latest step
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
    // The web UI's view: the served model and its settings; and, for the IO monitor, the
    // counters as of the latest step with which experts are resident per layer.
    nlohmann::json info_json();
    nlohmann::json monitor_json();
    // Serves from now on with another miss mode and RAM budget ("25%", "512M", "auto"): the
    // scheduler admits nothing new, lets the running jobs finish, and builds a new session.
    // Blocks until then; throws ApiError (400) for a bad mode or budget.
    void reconfigure(const std::string& mode, const std::string& ram_budget);
    void count_failure();

private:
    friend class EngineTicket;
    struct Channel;
    struct Job;
    void scheduler_loop();
    void admit(const std::shared_ptr<Job>& job, std::vector<std::shared_ptr<Job>>& running);
    // Delivers a sampled token; ends the job (and frees its sequence) when it is finished.
    bool deliver(Job& job, int32_t id);
    void finish(Job& job, const std::string& error = "");
    void snapshot(int64_t running, int64_t waiting);
    void switch_session(const rt::SessionOptions& so);  // the scheduler's, with no job running

    EngineOptions o_;
    int max_waiting_ = 1;
    std::atomic<int> waiting_{0};  // requests holding a ticket (generating or waiting to)
    std::string id_;
    int64_t created_ = 0;
    std::unique_ptr<rt::Model> model_;
    std::unique_ptr<Tokenizer> tok_;
    rt::SessionOptions so_;                 // the session's options (written by the scheduler under counters_mutex_)
    std::unique_ptr<rt::Session> session_;  // the scheduler thread's alone
    std::vector<int32_t> free_seqs_;        // the scheduler thread's alone
    std::mutex queue_mutex_;                // guards pending_ and stopping_
    std::condition_variable queue_cv_;
    std::deque<std::shared_ptr<Job>> pending_;
    bool stopping_ = false;
    // A new session's options the scheduler is to switch to, and the outcome it reports.
    std::unique_ptr<rt::SessionOptions> reconfig_;
    uint64_t reconfig_done_ = 0;  // switches completed (or failed), for the waiting caller
    std::string reconfig_error_;
    std::condition_variable reconfig_cv_;
    std::mutex counters_mutex_;  // guards the four below
    EngineCounters counters_;
    rt::Metrics session_metrics_;  // the sessions', as of the latest step
    rt::Metrics retired_metrics_;  // what sessions replaced by reconfigure() counted (the scheduler's)
    uint64_t resident_bytes_ = 0, pool_bytes_ = 0;
    std::vector<uint8_t> resident_;  // [L*E] 1 where the pair is ready, as of the latest step
    std::thread scheduler_;  // last: started once everything above exists
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
    // Gives the place up now (a stream whose generation ended, before its last events go out:
    // the client may send its next request as soon as it reads them).
    void release();

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
