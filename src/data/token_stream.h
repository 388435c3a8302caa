// token_stream.h: the pretraining token stream and a stateless, deterministic sampler.
//
// Documents are tokenized and joined, each followed by <|endoftext|>; the stream is cut into
// non-overlapping windows of seq_len + 1 tokens. Sample j of the run is window perm_e[j % n] of
// epoch e = j / n, perm_e a Fisher-Yates shuffle seeded by (seed, e). Since the sample depends
// only on j, a resumed run and data-parallel ranks (which take disjoint j) need no sampler state.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace chronos {

// Tokenizes every record of a pretraining JSONL file (in parallel), in file order. The result
// is cached beside the file (PATH.tok-<hash>.bin, keyed by file content and tokenizer).
std::vector<int32_t> tokens_load_pretrain(const std::string& path, const Tokenizer& tok);

// Copies `rows` consecutive non-overlapping windows of seq_len + 1 tokens, starting at window
// `first`, into out (rows x (seq_len + 1)). Evaluation reads held-out data this way, in order.
void windows_copy(const std::vector<int32_t>& tokens, int64_t first, int64_t rows, int64_t seq_len, int32_t* out);

// The training stream and its held-out stream: `validation`, or else the file beside `data`
// (".train." -> ".validation.") if it exists; validation_path is "" when there is none.
struct TokenSplits {
    std::vector<int32_t> train, validation;
    std::string validation_path;
};
TokenSplits token_splits_load(const std::string& data, const std::string& validation, const Tokenizer& tok);
// The held-out file beside a training file (".train." -> ".validation."), "" when there is none.
std::string validation_beside(const std::string& data);

class SequenceSampler {
public:
    SequenceSampler(const std::vector<int32_t>& tokens, int64_t seq_len, uint64_t seed);
    int64_t windows() const { return n_windows_; }
    // Copies the seq_len + 1 tokens of global sample j into out.
    void fill(int64_t sample, int32_t* out);

private:
    const std::vector<int32_t>& tokens_;
    int64_t seq_len_;
    uint64_t seed_;
    int64_t n_windows_;
    int64_t epoch_ = -1;
    std::vector<int64_t> perm_;
};

}  // namespace chronos
