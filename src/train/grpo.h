// grpo.h: one GRPO rollout (Shao et al. 2024): G sampled completions for each of a step's
// prompts (rollout.h), their rewards, the group-normalised advantages, and the padded batch of
// prompt + completion rows the policy update runs on (response mask = the completion tokens).
//
// Rewards, summed: exact answer match (0/1); with format_weight > 0, that weight times the
// format reward (the turn closed, one non-empty line); with a reward model, that weight times
// its length-normalised likelihood of the completion, exp(mean log p(completion | prompt)), a
// score in (0, 1] from any checkpoint sharing the tokenizer.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "data/records.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "train/alignment_data.h"
#include "train/rollout.h"

namespace chronos {

struct GrpoRolloutOptions {
    int64_t group = 8;             // completions per prompt
    SamplingOptions sampling;
    int64_t seq_len = 256;         // rows are cut to seq_len + 1 tokens
    double format_weight = 0;
    double reward_model_weight = 1;
    uint64_t seed = 0;             // with the step, fixes every draw (resume repeats them)
};

struct GrpoRollout {
    StageBatch batch;              // P * G rows, prompt by prompt
    torch::Tensor advantages;      // [P * G]
    torch::Tensor rewards;         // [P, G]
    double exact_match = 0, format = 0, reward_model = NAN;  // means over the completions
    int64_t tokens = 0;            // generated
    double seconds = 0;            // sampling time
};

// The rollout of step `step` on prompts[picks[i]]; the policy samples without gradient.
// reward_model may be nullptr.
GrpoRollout grpo_rollout(ChronosModel& policy, ChronosModel* reward_model, const Tokenizer& tok, const std::vector<PromptRecord>& prompts,
                         const std::vector<int64_t>& picks, int64_t step, const GrpoRolloutOptions& o);

}  // namespace chronos
