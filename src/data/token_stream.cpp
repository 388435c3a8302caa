// token_stream.cpp: see token_stream.h.
#include "data/token_stream.h"

#include <spdlog/spdlog.h>
#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "core/error.h"
#include "core/file_io.h"
#include "core/progress.h"
#include "data/records.h"

namespace chronos {

namespace {

// Token cache beside the data: PATH.tok-<hash>.bin, the hash covering the data file's bytes and
// the tokenizer's identity, so a changed file or tokenizer never reads a stale cache.
std::string cache_path(const std::string& path, const Tokenizer& tok) {
    XXH3_state_t* st = XXH3_createState();
    XXH3_64bits_reset(st);
    MappedFile data(path);
    XXH3_64bits_update(st, data.data(), data.size());
    for (int32_t id = 0; id < tok.vocab_size(); ++id) {
        std::string piece = tok.id_to_piece(id);
        XXH3_64bits_update(st, piece.data(), piece.size() + 1);
    }
    uint64_t h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return fmt::format("{}.tok-{:016x}.bin", path, h);
}

}  // namespace

std::vector<int32_t> tokens_load_pretrain(const std::string& path, const Tokenizer& tok) {
    const std::string cache = cache_path(path, tok);
    if (file_exists(cache)) {
        // A cache is only a copy: one that is damaged (a torn size, an id outside the
        // vocabulary) is rebuilt from the data, never handed to a model.
        MappedFile f(cache);
        if (f.size() > 0 && f.size() % 4 == 0) {
            std::vector<int32_t> out(f.size() / 4);
            std::memcpy(out.data(), f.data(), f.size());
            const int32_t V = tok.vocab_size();
            if (std::all_of(out.begin(), out.end(), [V](int32_t id) { return id >= 0 && id < V; })) return out;
        }
        spdlog::warn("{} is damaged; tokenizing {} again", cache, path);
    }
    std::vector<PretrainRecord> records = pretrain_load(path);
    const auto n = static_cast<int64_t>(records.size());
    std::vector<std::vector<int32_t>> parts(records.size());
    ProgressBar bar("tokenize", static_cast<uint64_t>(n), "docs");
#pragma omp parallel for schedule(dynamic, 32)
    for (int64_t i = 0; i < n; ++i) {
        parts[static_cast<size_t>(i)] = tok.encode(records[static_cast<size_t>(i)].text);
        parts[static_cast<size_t>(i)].push_back(tok.end_of_text());
#pragma omp critical
        bar.advance(1);
    }
    bar.finish();
    std::vector<int32_t> out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    try {
        file_write_atomic(cache, std::string_view(reinterpret_cast<const char*>(out.data()), out.size() * 4));
    } catch (const Error&) {
        // Read-only data directory: run without the cache.
    }
    return out;
}

void windows_copy(const std::vector<int32_t>& tokens, int64_t first, int64_t rows, int64_t seq_len, int32_t* out) {
    for (int64_t i = 0; i < rows; ++i) {
        const int32_t* src = tokens.data() + (first + i) * seq_len;
        std::copy(src, src + seq_len + 1, out + i * (seq_len + 1));
    }
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

std::string validation_beside(const std::string& data) {
    std::string beside = data;
    const size_t p = beside.rfind(".train.");
    if (p == std::string::npos) return "";
    beside.replace(p, 7, ".validation.");
    return file_exists(beside) ? beside : "";
}

TokenSplits token_splits_load(const std::string& data, const std::string& validation, const Tokenizer& tok) {
    TokenSplits s;
    s.validation_path = validation.empty() ? validation_beside(data) : validation;
    spdlog::info("tokenizing {}", data);
    s.train = tokens_load_pretrain(data, tok);
    if (!s.validation_path.empty()) s.validation = tokens_load_pretrain(s.validation_path, tok);
    return s;
}

}  // namespace chronos
