// grpo.cpp: a GRPO step's rollout, rewards and advantages (grpo.h).
#include "train/grpo.h"

#include <random>

#include "train/alignment_losses.h"

namespace chronos {

GrpoRollout grpo_rollout(ChronosModel& policy, ChronosModel* reward_model, const Tokenizer& tok, const std::vector<PromptRecord>& prompts,
                         const std::vector<int64_t>& picks, int64_t step, const GrpoRolloutOptions& o) {
    const int64_t P = static_cast<int64_t>(picks.size()), G = o.group;
    GrpoRollout r;
    r.rewards = torch::zeros({P, G}, torch::kFloat64);
    std::vector<StageExample> rows;
    rows.reserve(static_cast<size_t>(P * G));
    double hits = 0, formatted = 0;
    for (int64_t p = 0; p < P; ++p) {
        const PromptRecord& rec = prompts[static_cast<size_t>(picks[static_cast<size_t>(p)])];
        const std::vector<int32_t> prompt = prompt_ids(tok, rec);
        // One stream per (seed, step, row of the step): a resumed run draws what the straight one drew.
        std::mt19937_64 rng(o.seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(step) * 1000003ull + static_cast<uint64_t>(p));
        RolloutGroup g = rollout_sample(policy, prompt, G, o.sampling, rng);
        r.tokens += g.tokens;
        r.seconds += g.seconds;
        for (int64_t i = 0; i < G; ++i) {
            const std::vector<int32_t>& c = g.completions[static_cast<size_t>(i)];
            const double exact = reward_exact_match(tok, c, rec.answer), format = reward_format(tok, c);
            hits += exact;
            formatted += format;
            r.rewards[p][i] = exact + o.format_weight * format;
            StageExample e;
            e.ids = prompt;
            e.ids.insert(e.ids.end(), c.begin(), c.end());
            e.response.assign(prompt.size(), 0);
            e.response.resize(e.ids.size(), 1);
            if (static_cast<int64_t>(e.ids.size()) > o.seq_len + 1) {
                e.ids.resize(static_cast<size_t>(o.seq_len + 1));
                e.response.resize(e.ids.size());
            }
            rows.push_back(std::move(e));
        }
    }
    std::vector<const StageExample*> ptrs;
    for (const auto& e : rows) ptrs.push_back(&e);
    r.batch = stage_batch(ptrs);
    const double n = static_cast<double>(P * G);
    r.exact_match = hits / n;
    r.format = formatted / n;
    if (reward_model) {
        torch::NoGradGuard ng;
        const int64_t T = r.batch.ids.size(1) - 1;
        torch::Tensor logits = (*reward_model)->forward(r.batch.ids.narrow(1, 0, T)).logits;
        torch::Tensor mean = sequence_logprob(logits, r.batch.ids.narrow(1, 1, T), r.batch.mask).to(torch::kFloat64) /
                             mask_count(r.batch.mask).clamp_min(1);
        torch::Tensor score = mean.exp().view({P, G});
        r.reward_model = score.mean().item<double>();
        r.rewards = r.rewards + o.reward_model_weight * score;
    }
    r.advantages = grpo_advantages(r.rewards).view({P * G});
    return r;
}

}  // namespace chronos
