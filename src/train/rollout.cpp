// rollout.cpp: KV-cached sampling from the libtorch model and the verifiable rewards (rollout.h).
#include "train/rollout.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <numeric>

#include "core/error.h"
#include "data/text_utils.h"
#include "tokenizer/chat_template.h"

namespace chronos {

namespace {

// Uniform in [0, 1) from 53 bits of the generator: the same on every standard library.
double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// Completions of prompts of one length, decoded together: rows [R, P] through the cache, then
// one [R, 1] step per token. A row that stopped keeps feeding <|im_end|>, and its output is
// ignored: rows never attend to one another, so what a finished row computes changes no other.
RolloutGroup decode_rows(ChronosModel& model, const std::vector<std::vector<int32_t>>& prompts, const SamplingOptions& o, std::mt19937_64& rng) {
    const auto t0 = std::chrono::steady_clock::now();
    const int64_t R = static_cast<int64_t>(prompts.size());
    const int64_t P = static_cast<int64_t>(prompts[0].size());
    for (const auto& p : prompts) CHRONOS_ASSERT(static_cast<int64_t>(p.size()) == P, "decode_rows takes prompts of one length");
    // The last sampled token needs no position of its own: P + max_new_tokens - 1 positions.
    if (P + o.max_new_tokens - 1 > model->config.max_position_embeddings) {
        fail("a prompt of {} tokens + {} new tokens exceeds the model's max_position_embeddings {}", P, o.max_new_tokens,
             model->config.max_position_embeddings);
    }
    torch::NoGradGuard ng;
    const bool was_training = model->is_training();
    model->eval();
    std::vector<int64_t> flat;
    for (const auto& p : prompts) flat.insert(flat.end(), p.begin(), p.end());
    std::vector<LayerCache> cache(static_cast<size_t>(model->config.num_hidden_layers));
    ForwardOptions fo;
    fo.cache = &cache;
    torch::Tensor logits = model->forward(torch::tensor(flat, torch::kInt64).view({R, P}), fo).logits.select(1, P - 1);  // [R, V]
    RolloutGroup g;
    g.completions.assign(static_cast<size_t>(R), {});
    std::vector<bool> done(static_cast<size_t>(R), false);
    for (int64_t step = 0; step < o.max_new_tokens; ++step) {
        torch::Tensor rows = logits.to(torch::kFloat64).contiguous();
        std::vector<int64_t> next(static_cast<size_t>(R), o.stop_token);
        int64_t running = 0;
        for (int64_t r = 0; r < R; ++r) {
            if (done[static_cast<size_t>(r)]) continue;
            const int32_t t = sample_token(rows[r], o, rng);
            g.completions[static_cast<size_t>(r)].push_back(t);
            ++g.tokens;
            next[static_cast<size_t>(r)] = t;
            if (t == o.stop_token) {
                done[static_cast<size_t>(r)] = true;
            } else {
                ++running;
            }
        }
        if (running == 0 || step + 1 == o.max_new_tokens) break;
        logits = model->forward(torch::tensor(next, torch::kInt64).view({R, 1}), fo).logits.select(1, 0);
    }
    if (was_training) model->train();
    g.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return g;
}

}  // namespace

int32_t sample_token(const torch::Tensor& logits, const SamplingOptions& o, std::mt19937_64& rng) {
    torch::Tensor row = logits.to(torch::kFloat64).contiguous();
    const double* x = row.data_ptr<double>();
    const int64_t V = row.numel();
    if (o.temperature <= 0) return static_cast<int32_t>(std::max_element(x, x + V) - x);
    const double top = *std::max_element(x, x + V);
    std::vector<double> p(static_cast<size_t>(V));
    double z = 0;
    for (int64_t v = 0; v < V; ++v) z += p[static_cast<size_t>(v)] = std::exp((x[v] - top) / o.temperature);
    std::vector<int32_t> order(static_cast<size_t>(V));
    std::iota(order.begin(), order.end(), 0);
    int64_t keep = V;
    double mass = z;
    if (o.top_p < 1) {
        // Highest first, ties by id: the nucleus is the shortest prefix whose mass reaches top_p.
        std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return p[a] != p[b] ? p[a] > p[b] : a < b; });
        mass = 0;
        for (keep = 0; keep < V;) {
            mass += p[static_cast<size_t>(order[static_cast<size_t>(keep)])];
            ++keep;
            if (mass >= o.top_p * z) break;
        }
    }
    double u = uniform01(rng) * mass;
    for (int64_t i = 0; i < keep; ++i) {
        u -= p[static_cast<size_t>(order[static_cast<size_t>(i)])];
        if (u < 0) return order[static_cast<size_t>(i)];
    }
    return order[static_cast<size_t>(keep - 1)];  // u landed on the rounding of the last sum
}

RolloutGroup rollout_sample(ChronosModel& model, const std::vector<int32_t>& prompt, int64_t group, const SamplingOptions& o,
                            std::mt19937_64& rng) {
    CHRONOS_ASSERT(group >= 1 && !prompt.empty(), "a rollout needs a prompt and at least one completion");
    return decode_rows(model, std::vector<std::vector<int32_t>>(static_cast<size_t>(group), prompt), o, rng);
}

std::vector<int32_t> prompt_ids(const Tokenizer& tok, const PromptRecord& r) {
    return chat_encode(tok, {{"user", r.prompt}}, /*add_generation_prompt=*/true).ids;
}

std::string completion_text(const Tokenizer& tok, const std::vector<int32_t>& completion) {
    std::vector<int32_t> body;
    for (int32_t t : completion) {
        if (t == tok.end_of_turn()) break;
        body.push_back(t);
    }
    return trim(tok.decode(body));
}

double reward_exact_match(const Tokenizer& tok, const std::vector<int32_t>& completion, const std::string& answer) {
    return completion_text(tok, completion) == trim(answer) ? 1.0 : 0.0;
}

double reward_format(const Tokenizer& tok, const std::vector<int32_t>& completion) {
    if (completion.empty() || completion.back() != tok.end_of_turn()) return 0.0;
    const std::string text = completion_text(tok, completion);
    return !text.empty() && text.find('\n') == std::string::npos ? 1.0 : 0.0;
}

ExactMatchResult exact_match_eval(ChronosModel& model, const Tokenizer& tok, const std::vector<PromptRecord>& records, int64_t max_new_tokens) {
    ExactMatchResult r;
    r.records = static_cast<int64_t>(records.size());
    r.prompts.resize(records.size());
    r.completions.resize(records.size());
    std::map<size_t, std::vector<size_t>> by_length;
    for (size_t i = 0; i < records.size(); ++i) {
        r.prompts[i] = prompt_ids(tok, records[i]);
        by_length[r.prompts[i].size()].push_back(i);
    }
    const SamplingOptions greedy{max_new_tokens, 0.0, 1.0, tok.end_of_turn()};
    std::mt19937_64 unused(0);
    constexpr size_t kRows = 16;  // rows per decode batch
    for (const auto& [length, members] : by_length) {
        for (size_t first = 0; first < members.size(); first += kRows) {
            std::vector<std::vector<int32_t>> rows;
            for (size_t i = first; i < std::min(members.size(), first + kRows); ++i) rows.push_back(r.prompts[members[i]]);
            RolloutGroup g = decode_rows(model, rows, greedy, unused);
            r.tokens += g.tokens;
            r.seconds += g.seconds;
            for (size_t i = 0; i < rows.size(); ++i) r.completions[members[first + i]] = std::move(g.completions[i]);
        }
    }
    double hits = 0, formatted = 0;
    for (size_t i = 0; i < records.size(); ++i) {
        hits += reward_exact_match(tok, r.completions[i], records[i].answer);
        formatted += reward_format(tok, r.completions[i]);
    }
    if (!records.empty()) {
        r.exact_match = hits / static_cast<double>(records.size());
        r.format = formatted / static_cast<double>(records.size());
    }
    return r;
}

}  // namespace chronos
