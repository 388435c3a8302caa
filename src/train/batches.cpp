// batches.cpp: tokenization of the stream and the epoch permutation.
#include "train/batches.h"

#include <random>

#include "core/error.h"
#include "core/progress.h"
#include "data/records.h"

namespace chronos {

std::vector<int32_t> tokens_load_pretrain(const std::string& path, const Tokenizer& tok) {
    std::vector<PretrainRecord> records = pretrain_load(path);
    const auto n = static_cast<int64_t>(records.size());
    std::vector<std::vector<int32_t>> parts(records.size());
    ProgressBar bar("tokenize", static_cast<uint64_t>(n), "docs");
#pragma omp parallel for schedule(dynamic, 32)
    for (int64_t i = 0; i < n; ++i) {
        parts[static_cast<size_t>(i)] = tok.encode(records[static_cast<size_t>(i)].text);
        parts[static_cast<size_t>(i)].push_back(kTokenEndOfText);
#pragma omp critical
        bar.advance(1);
    }
    bar.finish();
    std::vector<int32_t> out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

SequenceSampler::SequenceSampler(const std::vector<int32_t>& tokens, int64_t seq_len, uint64_t seed)
    : tokens_(tokens), seq_len_(seq_len), seed_(seed) {
    n_windows_ = tokens.size() > 1 ? static_cast<int64_t>(tokens.size() - 1) / seq_len : 0;
    if (n_windows_ < 1) fail("training data has {} tokens, fewer than one sequence of {}", tokens.size(), seq_len + 1);
}

void SequenceSampler::fill(int64_t sample, int32_t* out) {
    const int64_t epoch = sample / n_windows_;
    if (epoch != epoch_) {
        perm_.resize(static_cast<size_t>(n_windows_));
        for (int64_t i = 0; i < n_windows_; ++i) perm_[static_cast<size_t>(i)] = i;
        std::mt19937_64 rng(seed_ * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(epoch));
        for (int64_t i = n_windows_ - 1; i > 0; --i) {
            auto j = static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1));
            std::swap(perm_[static_cast<size_t>(i)], perm_[static_cast<size_t>(j)]);
        }
        epoch_ = epoch;
    }
    const int64_t window = perm_[static_cast<size_t>(sample % n_windows_)];
    const int32_t* src = tokens_.data() + window * seq_len_;
    std::copy(src, src + seq_len_ + 1, out);
}

}  // namespace chronos
