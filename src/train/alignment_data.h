// alignment_data.h: the records of the alignment stages as token ids with a response mask, and
// padded batches of them. Every conversation goes through the one chat template
// (tokenizer/chat_template.h); the response is the assistant's reply (content and <|im_end|>).
//
//     auto ex = chronos::sft_examples(tok, chronos::sft_load(path), 256, &dropped);
//     chronos::StageBatch b = chronos::stage_batch({&ex[0], &ex[1]});  // ids [2, T + 1], mask [2, T]
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "data/records.h"
#include "tokenizer/tokenizer.h"

namespace chronos {

struct StageExample {
    std::vector<int32_t> ids;
    std::vector<uint8_t> response;  // per id: 1 where the token is part of an assistant reply
};

struct PairExample {
    StageExample chosen, rejected;  // the same prompt, two replies
};

// Conversations longer than max_tokens are cut to their first max_tokens tokens; one left with
// no response token is dropped and counted in *dropped.
std::vector<StageExample> sft_examples(const Tokenizer& tok, const std::vector<SftRecord>& records, int64_t max_tokens, int64_t* dropped);
// {user: prompt} followed by {assistant: chosen} and by {assistant: rejected}.
std::vector<PairExample> preference_examples(const Tokenizer& tok, const std::vector<PreferenceRecord>& records, int64_t max_tokens,
                                             int64_t* dropped);

// Rows padded on the right with kTokenPad to the longest: ids [B, T + 1] int64 (inputs
// ids[:, :T], targets ids[:, 1:]); mask [B, T] float: 1 where target t + 1 is a response
// token. Padding sits after every real token, so under causal attention it changes nothing
// before it; the Chronos terms count targets != kTokenPad only.
struct StageBatch {
    torch::Tensor ids, mask;
};
StageBatch stage_batch(const std::vector<const StageExample*>& rows);

// The example of global sample i (step x batch + row): epoch i / n visits a permutation of the
// n examples drawn from (seed, epoch), so every example is seen once per epoch and the order
// depends on nothing but the seed (resume continues it exactly).
int64_t stage_sample_index(uint64_t seed, int64_t n, int64_t i);

}  // namespace chronos
