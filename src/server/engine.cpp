// engine.cpp: generation for the server (engine.h).
#include "server/engine.h"

#include <fmt/format.h>

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
    if (model_->tokenizer_path.empty()) fail("{} has no tokenizer.model", o_.model_dir);
    tok_ = std::make_unique<Tokenizer>(model_->tokenizer_path);
    if (tok_->vocab_size() != model_->config.vocab_size) {
        fail("{}: the tokenizer has {} pieces, the model a vocabulary of {}", o_.model_dir, tok_->vocab_size(), model_->config.vocab_size);
    }
    id_ = !o_.model_id.empty() ? o_.model_id : std::filesystem::path(o_.model_dir).lexically_normal().filename().string();
    if (id_.empty()) id_ = std::filesystem::path(o_.model_dir).lexically_normal().parent_path().filename().string();
    created_ = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    so_.mode = rt::miss_mode_parse(o_.mode);
    if (o_.ram_budget == "auto") {
        const rt::MemorySplit split = rt::memory_split_plan(*model_, so_, rt::memory_limit_detect());
        so_.ram_budget = split.experts;
        std::cerr << rt::memory_split_describe(split) << "\n";
    } else {
        so_.ram_budget = rt::budget_parse(o_.ram_budget, model_->expert_bytes_total());
    }
    session_ = std::make_unique<rt::Session>(*model_, so_);
    pool_bytes_ = session_->store().allocated_bytes();
}

Engine::~Engine() = default;

EngineTicket::EngineTicket(Engine& engine) {
    if (engine.waiting_.fetch_add(1) < engine.max_waiting_) {
        engine_ = &engine;
    } else {
        engine.waiting_.fetch_sub(1);
    }
}

EngineTicket::EngineTicket(EngineTicket&& other) noexcept : engine_(other.engine_) { other.engine_ = nullptr; }

EngineTicket::~EngineTicket() {
    if (engine_) engine_->waiting_.fetch_sub(1);
}

int64_t Engine::context() const { return model_->config.max_position_embeddings; }

void Engine::count_failure() {
    std::lock_guard<std::mutex> lock(counters_mutex_);
    ++counters_.requests_failed;
}

std::vector<int32_t> Engine::prompt_check(const CompletionRequest& r) const {
    std::vector<int32_t> prompt = r.chat ? chat_encode(*tok_, r.messages, /*add_generation_prompt=*/true).ids : tok_->encode(r.prompt);
    if (prompt.empty()) throw ApiError(400, "invalid_request_error", "the prompt is empty after tokenization", r.chat ? "messages" : "prompt");
    const int64_t ctx = context(), np = static_cast<int64_t>(prompt.size());
    // The last generated token needs no position of its own: prompt + max_tokens - 1 positions.
    if (np > ctx || (r.max_tokens_given && r.max_tokens > ctx - np + 1)) {
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
    const int32_t stop_token = r.chat ? kTokenImEnd : kTokenEndOfText;
    const std::string base = tok_->decode(prompt);
    Result res;
    res.usage.prompt_tokens = np;
    std::lock_guard<std::mutex> lock(session_mutex_);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(o_.request_timeout_s);
    double decode_s = 0;
    for (int64_t c = 0; c < r.n; ++c) {
        rt::SamplerOptions so;
        so.temperature = static_cast<float>(r.temperature);
        so.top_p = static_cast<float>(r.top_p);
        so.seed = r.has_seed ? r.seed + static_cast<uint64_t>(c) : std::random_device{}();
        rt::Sampler sampler(so, model_->config.vocab_size);
        std::vector<int32_t> ids = prompt;
        std::string text, sent;  // the reply so far, and what of it went to on_piece
        bool stopped = false, cancelled = false;
        // Sends text[sent.size(), upto) if text still begins with what was sent (a decode of
        // more tokens can rewrite a held-back tail, never what stable_prefix let through).
        auto emit = [&](size_t upto) {
            if (upto <= sent.size() || cancelled || text.compare(0, sent.size(), sent) != 0) return;
            if (!on_piece(c, text.substr(sent.size(), upto - sent.size()))) cancelled = true;
            sent = text.substr(0, upto);
        };
        rt::GenerateOptions go;
        go.max_tokens = max_tokens;
        go.stop_token = stop_token;
        const rt::GenerateResult g = rt::generate(*session_, sampler, prompt, go, [&](int32_t id) {
            // The end of the turn (or text) ends the reply; so does any other control token,
            // which would otherwise reach the client spelled out ("<|im_start|>").
            if (id == stop_token || tok_->is_control(id)) {
                stopped = true;
                return id == stop_token;
            }
            ids.push_back(id);
            // Pieces join with spaces only a decode of the whole text gets right.
            const std::string full = tok_->decode(ids);
            if (full.size() >= base.size() && full.compare(0, base.size(), base) == 0) text = full.substr(base.size());
            const StopScan sc = stop_scan(text, r.stop);
            if (sc.stop_at != std::string::npos) {
                text.resize(sc.stop_at);
                stopped = true;
                return false;
            }
            emit(stable_prefix(text, sc.safe));
            return !cancelled && std::chrono::steady_clock::now() < deadline;
        });
        emit(text.size());
        res.usage.completion_tokens += static_cast<int64_t>(g.tokens.size());
        decode_s += g.total_s;
        res.choices.push_back({text, stopped ? "stop" : "length"});
        if (cancelled) break;
    }
    std::lock_guard<std::mutex> lc(counters_mutex_);
    // The session's counters change only under the session lock, held here: /metrics reads
    // this copy and never waits for a generation.
    session_metrics_ = session_->metrics();
    resident_bytes_ = session_->store().resident_bytes();
    pool_bytes_ = session_->store().allocated_bytes();
    ++counters_.requests;
    counters_.prompt_tokens += static_cast<uint64_t>(np);
    counters_.completion_tokens += static_cast<uint64_t>(res.usage.completion_tokens);
    counters_.decode_s += decode_s;
    return res;
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
    metric("chronos_generation_tokens_per_second", "gauge", "tokens generated per second of generation (prefill included), since start",
           c.decode_s > 0 ? static_cast<double>(c.completion_tokens) / c.decode_s : 0.0);
    metric("chronos_expert_hits_total", "counter", "decode expert lookups whose read was complete", static_cast<double>(m.hits));
    metric("chronos_expert_misses_total", "counter", "decode expert lookups that were not resident", static_cast<double>(m.misses));
    metric("chronos_expert_misses_late_total", "counter", "misses whose read was already under way", static_cast<double>(m.misses_late));
    metric("chronos_expert_fallbacks_total", "counter", "misses the shared expert stood in for (soft mode)", static_cast<double>(m.fallbacks));
    metric("chronos_stall_seconds_total", "counter", "decode time spent waiting on expert reads", m.stall_s + m.prefill_stall_s);
    metric("chronos_expert_bytes_read_total", "counter", "expert bytes read from the packs",
           static_cast<double>(m.bytes_read_load + m.bytes_read_prefill + m.bytes_read_decode));
    metric("chronos_resident_expert_bytes", "gauge", "expert bytes resident in the RAM tier", static_cast<double>(resident));
    metric("chronos_expert_pool_bytes", "gauge", "bytes allocated for the RAM tier", static_cast<double>(pool));
    return s;
}

}  // namespace chronos::server
