// rollout.h: completions sampled from the libtorch model for GRPO and the exact-match
// evaluation, decoded step by step through the model's KV cache. One prompt's G completions
// form one batch [G, 1] per step (every row shares the prompt, so the positions agree); greedy
// evaluation batches prompts of equal token length the same way, so no row is ever padded.
//
//     std::mt19937_64 rng(seed);
//     auto group = chronos::rollout_sample(model, prompt_ids, 8, {24, 1.0, 1.0}, rng);
//     group.completions[i];  // ids after the prompt; ends with <|im_end|> when the model stopped
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "data/records.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace chronos {

struct SamplingOptions {
    int64_t max_new_tokens = 24;
    double temperature = 1.0;  // 0: greedy
    double top_p = 1.0;        // nucleus: the smallest set of tokens whose mass reaches top_p
    int32_t stop_token = kTokenImEnd;  // the end of a reply (Tokenizer::end_of_turn)
};

struct RolloutGroup {
    std::vector<std::vector<int32_t>> completions;
    int64_t tokens = 0;   // generated tokens (each row until it stopped)
    double seconds = 0;   // wall time of the prefill and the decode steps
};

// G completions of one prompt; each stops at <|im_end|> (kept) or after max_new_tokens. The
// draw depends only on the model, the prompt and rng.
RolloutGroup rollout_sample(ChronosModel& model, const std::vector<int32_t>& prompt, int64_t group, const SamplingOptions& o,
                            std::mt19937_64& rng);

// The token drawn from one row of logits [V] (float32 or float64) with temperature and top-p;
// argmax at temperature 0 (lowest id among ties).
int32_t sample_token(const torch::Tensor& logits, const SamplingOptions& o, std::mt19937_64& rng);

// The generation prompt of a verifiable record: {user: prompt} and the assistant's turn opened.
std::vector<int32_t> prompt_ids(const Tokenizer& tok, const PromptRecord& r);
// The completion's text: the ids before <|im_end|>, decoded, spaces and line breaks trimmed.
std::string completion_text(const Tokenizer& tok, const std::vector<int32_t>& completion);

// 1 when the completion's text equals the answer (both trimmed), else 0.
double reward_exact_match(const Tokenizer& tok, const std::vector<int32_t>& completion, const std::string& answer);
// 1 when the completion closed its turn with <|im_end|> and its text is one non-empty line.
double reward_format(const Tokenizer& tok, const std::vector<int32_t>& completion);

// Greedy completions of the records, batched by equal prompt length: the held-out exact-match
// reward (greedy) of the stages and of `chronos eval reward`.
struct ExactMatchResult {
    double exact_match = 0, format = 0;  // shares of the records
    int64_t records = 0, tokens = 0;
    double seconds = 0;
    std::vector<std::vector<int32_t>> prompts, completions;  // per record, in order
};
ExactMatchResult exact_match_eval(ChronosModel& model, const Tokenizer& tok, const std::vector<PromptRecord>& records, int64_t max_new_tokens);

}  // namespace chronos
