// generate.cpp: see generate.h.
#include "runtime/generate.h"

#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>

#include "core/error.h"

namespace chronos::rt {

GenerateResult generate(Session& session, Sampler& sampler, const std::vector<int32_t>& prompt,
                        const GenerateOptions& options, const std::function<bool(int32_t)>& on_token) {
    using Clock = std::chrono::steady_clock;
    GenerateResult r;
    r.tokens.reserve(static_cast<size_t>(std::max<int64_t>(options.max_tokens, 0)));
    const auto t0 = Clock::now();
    for (int32_t id : prompt) sampler.observe(id);
    session.prefill(prompt.data(), static_cast<int64_t>(prompt.size()));
    for (int64_t i = 0; i < options.max_tokens; ++i) {
        if (i > 0) {
            if (session.position() >= session.context()) break;
            session.decode(r.tokens.back());
        }
        const int32_t next = sampler.sample(session.logits());
        sampler.observe(next);
        r.tokens.push_back(next);
        if (i == 0) r.ttft_s = std::chrono::duration<double>(Clock::now() - t0).count();
        if (on_token && !on_token(next)) break;
        if (next == options.stop_token) break;
    }
    r.total_s = std::chrono::duration<double>(Clock::now() - t0).count();
    return r;
}

uint64_t budget_parse(const std::string& text, uint64_t total_expert_bytes) {
    if (text.empty()) fail("empty RAM budget");
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    const std::string unit(end);
    if (end == text.c_str() || !std::isfinite(v) || v <= 0) fail("RAM budget '{}' is not a positive number", text);
    if (unit == "%") {
        if (v > 100) fail("RAM budget '{}' is more than 100%", text);
        return static_cast<uint64_t>(std::floor(static_cast<double>(total_expert_bytes) * v / 100.0));
    }
    double scale = 1;
    if (unit == "K" || unit == "KiB") scale = 1024.0;
    else if (unit == "M" || unit == "MiB") scale = 1024.0 * 1024.0;
    else if (unit == "G" || unit == "GiB") scale = 1024.0 * 1024.0 * 1024.0;
    else if (!unit.empty()) fail("RAM budget '{}': use a percentage (25%) or bytes with an optional K, M or G", text);
    return static_cast<uint64_t>(v * scale);
}

void budget_check_mode(MissMode mode, uint64_t budget, const Model& model) {
    if (mode != MissMode::resident) return;
    const uint64_t all = pack_slot_bytes(model.manifest) * model.manifest.entries.size();
    if (budget < all) {
        fail("resident mode holds every expert ({:.1f} MiB in {} slots), more than the RAM budget of {:.1f} MiB: use exact or soft, "
             "or a larger budget",
             static_cast<double>(all) / (1 << 20), model.manifest.entries.size(), static_cast<double>(budget) / (1 << 20));
    }
}

uint64_t peak_rss_bytes() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<uint64_t>(u.ru_maxrss) * 1024u;  // Linux reports KiB
}

std::vector<std::string> mapped_libraries() {
    std::ifstream maps("/proc/self/maps");
    std::set<std::string> libs;
    std::string line;
    while (std::getline(maps, line)) {
        const size_t slash = line.find('/');
        if (slash == std::string::npos) continue;
        const std::string path = line.substr(slash);
        if (path.find(".so") != std::string::npos) libs.insert(path);
    }
    return {libs.begin(), libs.end()};
}

nlohmann::ordered_json metrics_json(Session& session, const GenerateResult& result) {
    const Metrics& m = session.metrics();
    const ExpertStore& st = session.store();
    const double decode_tokens = static_cast<double>(std::max<int64_t>(m.decode_tokens, 1));
    const uint64_t lookups = m.hits + m.misses;
    nlohmann::ordered_json j;
    j["mode"] = miss_mode_name(session.options().mode);
    j["io"] = st.io().describe();
    j["prompt_tokens"] = m.prompt_tokens;
    j["generated_tokens"] = result.tokens.size();
    j["decode_steps"] = m.decode_tokens;
    j["hits"] = m.hits;
    j["misses"] = m.misses;
    j["hit_rate"] = lookups ? static_cast<double>(m.hits) / static_cast<double>(lookups) : 0.0;
    j["misses_late"] = m.misses_late;
    j["misses_unnamed"] = m.misses_unnamed;
    j["misses_below_bar"] = m.misses_below_bar;
    j["misses_by_layer"] = m.misses_by_layer;
    j["fallbacks"] = m.fallbacks;
    j["fallback_rate"] = lookups ? static_cast<double>(m.fallbacks) / static_cast<double>(lookups) : 0.0;
    j["stall_ms_per_token"] = 1000.0 * m.stall_s / decode_tokens;
    // Pipeline slack of the prefetched pairs decode used (negative: late by that much).
    j["prefetches_used"] = m.slack.n;
    j["slack_ms_mean"] = m.slack.mean_ms();
    j["slack_ms_p10"] = m.slack.quantile_ms(0.10);
    j["bytes_read_per_token"] = static_cast<double>(m.bytes_read_decode) / decode_tokens;
    j["bytes_read_decode"] = m.bytes_read_decode;
    j["bytes_read_prefill"] = m.bytes_read_prefill;
    j["bytes_read_load"] = m.bytes_read_load;
    j["reads_decode"] = m.reads_decode;
    j["prefill_hits"] = m.prefill_hits;
    j["prefill_misses"] = m.prefill_misses;
    j["prefill_stall_ms"] = 1000.0 * m.prefill_stall_s;
    j["lookahead_recall"] = m.lookahead_total ? static_cast<double>(m.lookahead_named) / static_cast<double>(m.lookahead_total) : 0.0;
    j["intent_recall"] = m.intent_total ? static_cast<double>(m.intent_named) / static_cast<double>(m.intent_total) : 0.0;
    j["prefill_tok_s"] = m.prefill_s > 0 ? static_cast<double>(m.prompt_tokens) / m.prefill_s : 0.0;
    j["decode_tok_s"] = m.decode_s > 0 ? static_cast<double>(m.decode_tokens) / m.decode_s : 0.0;
    j["ttft_ms"] = 1000.0 * result.ttft_s;
    j["peak_rss_bytes"] = peak_rss_bytes();
    // File names only: where the libraries live says nothing about the process and would put
    // one machine's paths into committed results.
    nlohmann::ordered_json libs = nlohmann::ordered_json::array();
    for (const std::string& path : mapped_libraries()) libs.push_back(path.substr(path.rfind('/') + 1));
    j["mapped_libraries"] = libs;
    j["expert_slots"] = st.slot_count();
    j["resident_expert_bytes_allocated"] = st.allocated_bytes();
    j["experts_read"] = st.counters().experts_read;
    j["evictions"] = st.counters().evictions;
    j["evicted_unused"] = st.counters().evicted_unused;
    j["prefetches_dropped"] = st.counters().prefetches_dropped;
    return j;
}

}  // namespace chronos::rt
