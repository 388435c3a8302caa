// generate.h: the generation loop over a Session, RAM-budget parsing and the metrics report.
//
//     chronos::rt::Model model("runs/small");
//     chronos::rt::SessionOptions so;
//     so.ram_budget = chronos::rt::budget_parse("25%", model.expert_bytes_total());
//     chronos::rt::Session session(model, so);
//     chronos::rt::Sampler sampler({.temperature = 0.8f, .seed = 1}, model.config.vocab_size);
//     auto out = chronos::rt::generate(session, sampler, prompt_ids, {.max_tokens = 64},
//                                      [](int32_t id) { return true; });   // streamed ids
//     std::cout << chronos::rt::metrics_json(session, out).dump(2);
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/sampler.h"
#include "runtime/session.h"

namespace chronos::rt {

struct GenerateOptions {
    int64_t max_tokens = 64;
    int32_t stop_token = -1;  // stop after sampling this id (-1: never)
};

struct GenerateResult {
    std::vector<int32_t> tokens;  // generated ids
    double ttft_s = 0;            // prompt in -> first generated token out
    double total_s = 0;
};

// Prefills the prompt, then samples up to max_tokens, calling on_token for each (return false
// to stop). Stops early at the end of the context.
GenerateResult generate(Session& session, Sampler& sampler, const std::vector<int32_t>& prompt,
                        const GenerateOptions& options, const std::function<bool(int32_t)>& on_token);

// "25%" of total_expert_bytes, or a byte count with an optional K/M/G suffix ("512M").
uint64_t budget_parse(const std::string& text, uint64_t total_expert_bytes);
// A budget a user gave for `mode`: resident holds every expert (a Session in resident mode
// ignores its budget), so a budget that cannot hold them all is refused rather than exceeded.
void budget_check_mode(MissMode mode, uint64_t budget, const Model& model);

// Peak resident set size of this process (getrusage), bytes.
uint64_t peak_rss_bytes();

// The shared objects this process has mapped (/proc/self/maps), sorted, each once: what the
// inference process pays for in code before it holds a single expert.
std::vector<std::string> mapped_libraries();

// The DESIGN.md metrics of a finished generation, as counted.
nlohmann::ordered_json metrics_json(Session& session, const GenerateResult& result);

}  // namespace chronos::rt
