// engine.cpp: generation for the server (engine.h).
#include "server/engine.h"

#include <fmt/format.h>
#include <malloc.h>
#include <omp.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <random>

#include "core/error.h"

namespace chronos::server {

namespace {

// How much of text[0, n) can be shown for good. A token can end in the middle of a character:
// the tokenizer then decodes the incomplete bytes to U+FFFD, which the next token may turn into
// the character they begin. So trailing U+FFFDs and an incomplete UTF-8 sequence wait.
size_t stable_prefix(const std::string& text, size_t n) {
    static const std::string kReplacement = "\xEF\xBF\xBD";
    while (n >= 3 && text.compare(n - 3, 3, kReplacement) == 0) n -= 3;
    size_t i = n, back = 0;
    while (i > 0 && back < 4 && (static_cast<unsigned char>(text[i - 1]) & 0xC0) == 0x80) --i, ++back;
    if (i == 0) return n;
    const unsigned char lead = static_cast<unsigned char>(text[i - 1]);
    const size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    return need == 1 || need == back + 1 ? n : i - 1;
}

}  // namespace

StopScan stop_scan(const std::string& text, const std::vector<std::string>& stops) {
    StopScan s;
    s.safe = text.size();
    for (const std::string& stop : stops) {
        const size_t at = text.find(stop);
        if (at != std::string::npos && (s.stop_at == std::string::npos || at < s.stop_at)) s.stop_at = at;
        // A suffix of text that is a proper prefix of the stop sequence may still become it.
        for (size_t len = std::min(stop.size() - 1, text.size()); len > 0; --len) {
            if (text.compare(text.size() - len, len, stop, 0, len) == 0) {
                s.safe = std::min(s.safe, text.size() - len);
                break;
            }
        }
    }
    if (s.stop_at != std::string::npos) s.safe = s.stop_at;
    return s;
}

Engine::Engine(const EngineOptions& options, int max_waiting) : o_(options), max_waiting_(std::max(1, max_waiting)) {
    model_ = std::make_unique<rt::Model>(o_.model_dir);
    if (model_->tokenizer_path.empty()) fail("{} has no tokenizer (tokenizer.model, or tokenizer.json for an imported model)", o_.model_dir);
    tok_ = std::make_unique<Tokenizer>(model_->tokenizer_path);
    tok_->check_fits(model_->config.vocab_size, model_->dir);
    if (tok_->vocab_size() != model_->config.vocab_size) {
        fail("{}: the tokenizer has {} pieces, the model a vocabulary of {}", o_.model_dir, tok_->vocab_size(), model_->config.vocab_size);
    }
    id_ = !o_.model_id.empty() ? o_.model_id : std::filesystem::path(o_.model_dir).lexically_normal().filename().string();
    if (id_.empty()) id_ = std::filesystem::path(o_.model_dir).lexically_normal().parent_path().filename().string();
    created_ = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    if (o_.max_batch < 1) fail("--max-batch must be at least 1, not {}", o_.max_batch);
    so_.mode = rt::miss_mode_parse(o_.mode);
    so_.max_sequences = o_.max_batch;
    so_.io.sim_read_ms = rt::io_sim_read_ms_from_env();  // a simulated slow disk, as `generate` reads it
    if (o_.ram_budget == "auto") {
        const rt::MemorySplit split = rt::memory_split_plan(*model_, so_, rt::memory_limit_detect());
        so_.ram_budget = split.experts;
        std::cerr << rt::memory_split_describe(split) << "\n";
    } else {
        so_.ram_budget = rt::budget_parse(o_.ram_budget, model_->expert_bytes_total());
        rt::budget_check_mode(so_.mode, so_.ram_budget, *model_);
    }
    session_ = std::make_unique<rt::Session>(*model_, so_);
    pool_bytes_ = session_->store().allocated_bytes();
    for (int32_t q = o_.max_batch - 1; q >= 0; --q) free_seqs_.push_back(q);
    scheduler_ = std::thread(&Engine::scheduler_loop, this);
}

Engine::~Engine() {
    {
        std::lock_guard<std::mutex> lock(queue_mutex_);
        stopping_ = true;
    }
    queue_cv_.notify_all();
    scheduler_.join();
}

// What a request's jobs tell the HTTP thread that waits for them: each sampled token, and the
// end of each job (with the error that ended it, if any).
struct Engine::Channel {
    struct Event {
        int32_t choice = 0, id = -1;
        bool end = false;
    };
    std::mutex m;
    std::condition_variable cv;
    std::deque<Event> events;
    std::string error;
};

// One choice of a request: its prompt, limits and sampler; the rest is the scheduler's.
struct Engine::Job {
    Job(const rt::SamplerOptions& so, int64_t vocab) : sampler(so, vocab) {}
    std::shared_ptr<Channel> channel;
    int32_t choice = 0;
    std::vector<int32_t> prompt;
    int64_t max_tokens = 0;
    int32_t stop_token = -1;
    rt::Sampler sampler;
    std::atomic<bool> cancel{false};  // set by the HTTP thread: the reply is complete or its client gone
    // The scheduler's: the sequence it decodes in (-1: none), tokens so far, the latest token.
    int32_t seq = -1;
    int64_t produced = 0;
    int32_t last = -1;
    bool done = false;
};

EngineTicket::EngineTicket(Engine& engine) {
    if (engine.waiting_.fetch_add(1) < engine.max_waiting_) {
        engine_ = &engine;
    } else {
        engine.waiting_.fetch_sub(1);
    }
}

EngineTicket::EngineTicket(EngineTicket&& other) noexcept : engine_(other.engine_) { other.engine_ = nullptr; }

EngineTicket::~EngineTicket() { release(); }

void EngineTicket::release() {
    if (engine_) engine_->waiting_.fetch_sub(1);
    engine_ = nullptr;
}

int64_t Engine::context() const { return model_->config.max_position_embeddings; }

void Engine::count_failure() {
    std::lock_guard<std::mutex> lock(counters_mutex_);
    ++counters_.requests_failed;
}

std::vector<int32_t> Engine::prompt_check(const CompletionRequest& r) const {
    std::vector<int32_t> prompt = r.chat ? chat_encode(*tok_, r.messages, /*add_generation_prompt=*/true).ids : tok_->encode(r.prompt);
    if (!r.chat && !prompt.empty() && tok_->bos() >= 0) prompt.insert(prompt.begin(), tok_->bos());
    if (prompt.empty()) throw ApiError(400, "invalid_request_error", "the prompt is empty after tokenization", r.chat ? "messages" : "prompt");
    const int64_t ctx = context(), np = static_cast<int64_t>(prompt.size());
    // The last generated token needs no position of its own: prompt + max_tokens - 1 positions.
    if (np > ctx) {
        throw ApiError(400, "invalid_request_error", fmt::format("the prompt has {} tokens, more than the model's context of {} tokens", np, ctx),
                       r.chat ? "messages" : "prompt", "context_length_exceeded");
    }
    if (r.max_tokens_given && r.max_tokens > ctx - np + 1) {
        throw ApiError(400, "invalid_request_error",
                       fmt::format("the prompt has {} tokens and max_tokens is {}: the model's context of {} tokens leaves room for {}", np,
                                   r.max_tokens, ctx, std::max<int64_t>(ctx - np + 1, 0)),
                       "max_tokens", "context_length_exceeded");
    }
    return prompt;
}

Engine::Result Engine::complete(const CompletionRequest& r, const std::function<bool(int64_t, const std::string&)>& on_piece) {
    const std::vector<int32_t> prompt = prompt_check(r);
    const int64_t np = static_cast<int64_t>(prompt.size());
    // Without max_tokens: the request's default, as far as the context allows.
    const int64_t max_tokens = r.max_tokens_given ? r.max_tokens : std::min(r.max_tokens, context() - np + 1);
    const int32_t stop_token = r.chat ? tok_->end_of_turn() : tok_->end_of_text();
    const std::string base = tok_->decode(prompt);
    const int64_t n = r.n;
    auto channel = std::make_shared<Channel>();
    std::vector<std::shared_ptr<Job>> jobs;
    for (int64_t c = 0; c < n; ++c) {
        rt::SamplerOptions so;
        so.temperature = static_cast<float>(r.temperature);
        so.top_p = static_cast<float>(r.top_p);
        so.seed = r.has_seed ? r.seed + static_cast<uint64_t>(c) : std::random_device{}();
        auto job = std::make_shared<Job>(so, model_->config.vocab_size);
        job->channel = channel;
        job->choice = static_cast<int32_t>(c);
        job->prompt = prompt;
        job->max_tokens = max_tokens;
        job->stop_token = stop_token;
        jobs.push_back(std::move(job));
    }
    {
        std::lock_guard<std::mutex> lock(queue_mutex_);
        if (stopping_) throw ApiError(503, "server_error", "the server is stopping", "", "server_busy");
        for (const auto& job : jobs) pending_.push_back(job);
    }
    queue_cv_.notify_one();

    // Each choice's reply: its ids (after the prompt's), the text so far and what of it went to
    // on_piece; `over` once the reply is complete (a stop, the deadline, a gone client), after
    // which tokens the scheduler already made are not counted.
    struct Reply {
        std::vector<int32_t> ids;
        std::string text, sent;
        bool stopped = false, over = false;
        int64_t tokens = 0;
    };
    std::vector<Reply> replies(static_cast<size_t>(n));
    for (Reply& rep : replies) rep.ids = prompt;
    bool gone = false;  // the client hung up: every choice ends
    // Sends text[sent.size(), upto) if text still begins with what was sent (a decode of more
    // tokens can rewrite a held-back tail, never what stable_prefix let through).
    auto emit = [&](int64_t c, size_t upto) {
        Reply& rep = replies[static_cast<size_t>(c)];
        if (upto <= rep.sent.size() || gone || rep.text.compare(0, rep.sent.size(), rep.sent) != 0) return;
        if (!on_piece(c, rep.text.substr(rep.sent.size(), upto - rep.sent.size()))) gone = true;
        rep.sent = rep.text.substr(0, upto);
    };
    auto end_reply = [&](int64_t c) {
        Reply& rep = replies[static_cast<size_t>(c)];
        if (rep.over) return;
        rep.over = true;
        jobs[static_cast<size_t>(c)]->cancel = true;
        emit(c, rep.text.size());
    };
    // A token of choice c; false when it completes the reply. The end of the turn (or text)
    // ends the reply; so does any other control token, which would otherwise reach the client
    // spelled out ("<|im_start|>").
    auto on_token = [&](int64_t c, int32_t id) {
        Reply& rep = replies[static_cast<size_t>(c)];
        rep.tokens += 1;
        if (id == stop_token || tok_->is_control(id)) {
            rep.stopped = true;
            return false;
        }
        rep.ids.push_back(id);
        // Pieces join with spaces only a decode of the whole text gets right.
        const std::string full = tok_->decode(rep.ids);
        if (full.size() >= base.size() && full.compare(0, base.size(), base) == 0) rep.text = full.substr(base.size());
        const StopScan sc = stop_scan(rep.text, r.stop);
        if (sc.stop_at != std::string::npos) {
            rep.text.resize(sc.stop_at);
            rep.stopped = true;
            return false;
        }
        emit(c, stable_prefix(rep.text, sc.safe));
        return !gone;
    };
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(o_.request_timeout_s);
    bool timed_out = false;
    int64_t ended = 0;
    std::string error;
    while (ended < n) {
        Channel::Event ev;
        {
            std::unique_lock<std::mutex> lock(channel->m);
            auto ready = [&] { return !channel->events.empty(); };
            if (timed_out) {
                channel->cv.wait(lock, ready);
            } else if (!channel->cv.wait_until(lock, deadline, ready)) {
                // Past the request's time: every reply ends as it stands ("length"); the jobs
                // end at the scheduler's next step.
                lock.unlock();
                for (int64_t c = 0; c < n; ++c) end_reply(c);
                timed_out = true;
                continue;
            }
            ev = channel->events.front();
            channel->events.pop_front();
            if (ev.end && !channel->error.empty()) error = channel->error;
        }
        if (ev.end) {
            ++ended;
            end_reply(ev.choice);
            continue;
        }
        if (replies[static_cast<size_t>(ev.choice)].over) continue;
        if (!on_token(ev.choice, ev.id)) end_reply(ev.choice);
        if (gone) {
            for (int64_t c = 0; c < n; ++c) end_reply(c);
        }
    }
    if (!error.empty()) throw std::runtime_error(error);
    Result res;
    res.usage.prompt_tokens = np;
    for (const Reply& rep : replies) {
        res.usage.completion_tokens += rep.tokens;
        res.choices.push_back({rep.text, rep.stopped ? "stop" : "length"});
    }
    std::lock_guard<std::mutex> lc(counters_mutex_);
    ++counters_.requests;
    counters_.prompt_tokens += static_cast<uint64_t>(np);
    counters_.completion_tokens += static_cast<uint64_t>(res.usage.completion_tokens);
    return res;
}

void Engine::finish(Job& job, const std::string& error) {
    if (job.seq >= 0) {
        session_->release(job.seq);
        free_seqs_.push_back(job.seq);
        job.seq = -1;
    }
    job.done = true;
    {
        std::lock_guard<std::mutex> lock(job.channel->m);
        if (!error.empty()) job.channel->error = error;
        job.channel->events.push_back({job.choice, -1, true});
    }
    job.channel->cv.notify_one();
}

bool Engine::deliver(Job& job, int32_t id) {
    job.sampler.observe(id);
    job.produced += 1;
    job.last = id;
    {
        std::lock_guard<std::mutex> lock(job.channel->m);
        job.channel->events.push_back({job.choice, id, false});
    }
    job.channel->cv.notify_one();
    if (id == job.stop_token || job.produced >= job.max_tokens) {
        finish(job);
        return false;
    }
    return true;
}

// A job enters the batch: its prompt prefills in a free sequence and its first token is
// sampled, as `chronos generate` begins.
void Engine::admit(const std::shared_ptr<Job>& job, std::vector<std::shared_ptr<Job>>& running) {
    if (job->cancel || job->max_tokens <= 0) {
        finish(*job);
        return;
    }
    CHRONOS_ASSERT(!free_seqs_.empty(), "a job admitted without a free sequence");
    job->seq = free_seqs_.back();
    free_seqs_.pop_back();
    try {
        for (int32_t id : job->prompt) job->sampler.observe(id);
        session_->prefill_sequence(job->seq, job->prompt.data(), static_cast<int64_t>(job->prompt.size()));
    } catch (const std::exception& e) {
        finish(*job, e.what());
        return;
    }
    if (deliver(*job, job->sampler.sample(session_->logits(job->seq)))) running.push_back(job);
}

void Engine::switch_session(const rt::SessionOptions& so) {
    std::string error;
    try {
        rt::metrics_add(retired_metrics_, session_->metrics());  // /metrics counts on across sessions
        session_.reset();  // its pool goes before the new one is allocated
        session_ = std::make_unique<rt::Session>(*model_, so);
        std::lock_guard<std::mutex> lock(counters_mutex_);
        so_ = so;
    } catch (const std::exception& e) {
        error = e.what();
        session_ = std::make_unique<rt::Session>(*model_, so_);  // the previous options, which worked
    }
    free_seqs_.clear();
    for (int32_t q = o_.max_batch - 1; q >= 0; --q) free_seqs_.push_back(q);
    snapshot(0, 0);
    {
        std::lock_guard<std::mutex> lock(queue_mutex_);
        reconfig_error_ = error;
        ++reconfig_done_;
    }
    reconfig_cv_.notify_all();
}

void Engine::reconfigure(const std::string& mode, const std::string& ram_budget) {
    rt::SessionOptions so;
    {
        std::lock_guard<std::mutex> lock(counters_mutex_);
        so = so_;
    }
    try {
        so.mode = rt::miss_mode_parse(mode);
        if (ram_budget == "auto") {
            so.ram_budget = rt::memory_split_plan(*model_, so, rt::memory_limit_detect()).experts;
        } else {
            so.ram_budget = rt::budget_parse(ram_budget, model_->expert_bytes_total());
            rt::budget_check_mode(so.mode, so.ram_budget, *model_);
        }
    } catch (const std::exception& e) {
        throw ApiError(400, "invalid_request_error", e.what(), "mode");
    }
    std::unique_lock<std::mutex> lock(queue_mutex_);
    if (stopping_) throw ApiError(503, "server_error", "the server is stopping", "", "server_busy");
    const uint64_t target = reconfig_done_ + 1;  // a switch still pending takes these options instead
    reconfig_ = std::make_unique<rt::SessionOptions>(so);
    queue_cv_.notify_all();
    reconfig_cv_.wait(lock, [&] { return reconfig_done_ >= target || stopping_; });
    if (!reconfig_error_.empty()) throw ApiError(400, "invalid_request_error", reconfig_error_, "ram_budget");
}

void Engine::snapshot(int64_t running, int64_t waiting) {
    std::lock_guard<std::mutex> lock(counters_mutex_);
    // /metrics reads this copy and never waits for a step.
    session_metrics_ = retired_metrics_;
    rt::metrics_add(session_metrics_, session_->metrics());
    resident_bytes_ = session_->store().resident_bytes();
    pool_bytes_ = session_->store().allocated_bytes();
    resident_.resize(static_cast<size_t>(session_->store().pairs()));  // sized once
    for (int32_t p = 0; p < static_cast<int32_t>(resident_.size()); ++p) resident_[static_cast<size_t>(p)] = session_->store().ready(p) ? 1 : 0;
    counters_.running = running;
    counters_.waiting = waiting;
}

void Engine::scheduler_loop() {
    using Clock = std::chrono::steady_clock;
    if (o_.threads > 0) omp_set_num_threads(o_.threads);  // OpenMP's setting is per thread
    std::vector<std::shared_ptr<Job>> running, admitted;
    std::vector<int32_t> seqs, ids;
    running.reserve(static_cast<size_t>(o_.max_batch));
    const int64_t ctx = context();
    auto drop_done = [&] {
        running.erase(std::remove_if(running.begin(), running.end(), [](const std::shared_ptr<Job>& j) { return j->done; }), running.end());
    };
    for (;;) {
        int64_t waiting = 0;
        admitted.clear();
        {
            std::unique_lock<std::mutex> lock(queue_mutex_);
            queue_cv_.wait(lock, [&] { return stopping_ || !pending_.empty() || !running.empty() || reconfig_; });
            if (stopping_) break;
            if (reconfig_ && running.empty()) {
                // Nothing runs: the new session replaces the old (the waiting jobs keep waiting).
                const rt::SessionOptions so = *reconfig_;
                reconfig_.reset();
                lock.unlock();
                switch_session(so);
                continue;
            }
            while (!reconfig_ && !pending_.empty() && running.size() + admitted.size() < static_cast<size_t>(o_.max_batch)) {
                admitted.push_back(std::move(pending_.front()));
                pending_.pop_front();
            }
            waiting = static_cast<int64_t>(pending_.size());
        }
        const auto t0 = Clock::now();
        for (const auto& job : admitted) admit(job, running);
        // A job ends before the step when its reply is complete or its context is full.
        for (const auto& job : running) {
            if (job->cancel || session_->position(job->seq) >= ctx) finish(*job);
        }
        drop_done();
        seqs.clear();
        ids.clear();
        for (const auto& job : running) {
            seqs.push_back(job->seq);
            ids.push_back(job->last);
        }
        bool stepped = false;
        if (!seqs.empty()) {
            try {
                session_->decode_batch(seqs.data(), ids.data(), static_cast<int64_t>(seqs.size()));
                stepped = true;
            } catch (const std::exception& e) {
                for (const auto& job : running) finish(*job, e.what());
            }
        }
        if (stepped) {
            for (const auto& job : running) deliver(*job, job->sampler.sample(session_->logits(job->seq)));
        }
        drop_done();
        const double busy = std::chrono::duration<double>(Clock::now() - t0).count();
        {
            std::lock_guard<std::mutex> lock(counters_mutex_);
            counters_.busy_s += busy;
            if (stepped) {
                counters_.decode_steps += 1;
                counters_.decode_rows += seqs.size();
            }
        }
        snapshot(static_cast<int64_t>(running.size()), waiting);
    }
    reconfig_cv_.notify_all();
    // Stopping: whatever still runs or waits ends with an error its request reports.
    for (const auto& job : running) finish(*job, "the server is stopping");
    std::lock_guard<std::mutex> lock(queue_mutex_);
    for (const auto& job : pending_) finish(*job, "the server is stopping");
    pending_.clear();
}

nlohmann::json Engine::info_json() {
    const auto& c = model_->config;
    std::lock_guard<std::mutex> lock(counters_mutex_);
    return {{"model", id_}, {"mode", rt::miss_mode_name(so_.mode)}, {"ram_budget_bytes", so_.ram_budget},
            {"expert_bytes_total", model_->expert_bytes_total()}, {"max_batch", o_.max_batch}, {"layers", c.n_moe_layers()},
            {"experts", c.n_routed_experts}, {"context", c.max_position_embeddings}};
}

nlohmann::json Engine::monitor_json() {
    std::lock_guard<std::mutex> lock(counters_mutex_);
    const rt::Metrics& m = session_metrics_;
    const int64_t E = model_->config.n_routed_experts, L = model_->config.n_moe_layers();
    nlohmann::json layers = nlohmann::json::array();
    for (int64_t l = 0; l < L; ++l) {
        nlohmann::json row = nlohmann::json::array();
        for (int64_t e = 0; e < E; ++e) {
            const size_t p = static_cast<size_t>(l * E + e);
            row.push_back(p < resident_.size() ? resident_[p] : 0);
        }
        layers.push_back(row);
    }
    const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    return {{"t", now}, {"decode_tokens", m.decode_tokens}, {"hits", m.hits}, {"misses", m.misses}, {"misses_late", m.misses_late},
            {"fallbacks", m.fallbacks}, {"stall_s", m.stall_s}, {"decode_s", m.decode_s},
            {"bytes_read", m.bytes_read_load + m.bytes_read_prefill + m.bytes_read_decode}, {"resident_bytes", resident_bytes_},
            {"running", counters_.running}, {"waiting", counters_.waiting}, {"completion_tokens", counters_.completion_tokens},
            {"resident", layers}};
}

std::string Engine::metrics_text() {
    EngineCounters c;
    rt::Metrics m;
    uint64_t resident = 0, pool = 0;
    {
        std::lock_guard<std::mutex> lock(counters_mutex_);
        c = counters_;
        m = session_metrics_;
        resident = resident_bytes_;
        pool = pool_bytes_;
    }
    std::string s;
    auto metric = [&](const char* name, const char* type, const char* help, double value) {
        s += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, value);
    };
    metric("chronos_requests_total", "counter", "completed completion requests", static_cast<double>(c.requests));
    metric("chronos_requests_failed_total", "counter", "requests answered with an error", static_cast<double>(c.requests_failed));
    metric("chronos_prompt_tokens_total", "counter", "prompt tokens processed", static_cast<double>(c.prompt_tokens));
    metric("chronos_completion_tokens_total", "counter", "tokens generated", static_cast<double>(c.completion_tokens));
    metric("chronos_generation_tokens_per_second", "gauge", "tokens generated per second the engine was busy (prefill included), since start",
           c.busy_s > 0 ? static_cast<double>(c.completion_tokens) / c.busy_s : 0.0);
    metric("chronos_decode_steps_total", "counter", "batched decode steps", static_cast<double>(c.decode_steps));
    metric("chronos_decode_rows_total", "counter", "sequence tokens those steps decoded (rows / steps = mean batch)",
           static_cast<double>(c.decode_rows));
    metric("chronos_sequences_running", "gauge", "sequences in the batch after the latest step", static_cast<double>(c.running));
    metric("chronos_sequences_waiting", "gauge", "choices waiting for a place in the batch", static_cast<double>(c.waiting));
    metric("chronos_expert_hits_total", "counter", "decode expert lookups whose read was complete", static_cast<double>(m.hits));
    metric("chronos_expert_misses_total", "counter", "decode expert lookups that were not resident", static_cast<double>(m.misses));
    metric("chronos_expert_misses_late_total", "counter", "misses whose read was already under way", static_cast<double>(m.misses_late));
    metric("chronos_expert_misses_unnamed_total", "counter", "misses the prediction for the token did not rank in its layer's top-k",
           static_cast<double>(m.misses_unnamed));
    metric("chronos_expert_misses_below_bar_total", "counter", "misses predicted under the prefetch threshold, so not read ahead",
           static_cast<double>(m.misses_below_bar));
    metric("chronos_expert_fallbacks_total", "counter", "misses the shared expert stood in for (soft mode)", static_cast<double>(m.fallbacks));
    metric("chronos_stall_seconds_total", "counter", "decode time spent waiting on expert reads", m.stall_s + m.prefill_stall_s);
    metric("chronos_expert_bytes_read_total", "counter", "expert bytes read from the packs",
           static_cast<double>(m.bytes_read_load + m.bytes_read_prefill + m.bytes_read_decode));
    metric("chronos_resident_expert_bytes", "gauge", "expert bytes resident in the RAM tier", static_cast<double>(resident));
    metric("chronos_expert_pool_bytes", "gauge", "bytes allocated for the RAM tier", static_cast<double>(pool));
    // What the allocator has handed out and not had back, over every arena (mallinfo2 sums them):
    // unlike RSS it does not move when an arena keeps freed pages, so a leak shows as bytes per request.
    const struct mallinfo2 heap = mallinfo2();
    metric("chronos_heap_in_use_bytes", "gauge", "bytes allocated with malloc and not yet freed", static_cast<double>(heap.uordblks + heap.hblkhd));
    return s;
}

}  // namespace chronos::server
