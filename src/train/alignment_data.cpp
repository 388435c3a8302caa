// alignment_data.cpp: stage examples and batches (alignment_data.h).
#include "train/alignment_data.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <numeric>
#include <random>

#include "core/error.h"
#include "tokenizer/chat_template.h"

namespace chronos {

namespace {

bool example_keep(StageExample& e, int64_t max_tokens) {
    if (static_cast<int64_t>(e.ids.size()) > max_tokens) {
        e.ids.resize(static_cast<size_t>(max_tokens));
        e.response.resize(static_cast<size_t>(max_tokens));
    }
    // A target exists for positions 1..n-1 only: a response must reach one of them.
    return std::find(e.response.begin() + 1, e.response.end(), 1) != e.response.end();
}

StageExample encode(const Tokenizer& tok, const std::vector<ChatMessage>& chat) {
    ChatTokens t = chat_encode(tok, chat, false);
    return {std::move(t.ids), std::move(t.assistant_mask)};
}

}  // namespace

std::vector<StageExample> sft_examples(const Tokenizer& tok, const std::vector<SftRecord>& records, int64_t max_tokens, int64_t* dropped) {
    std::vector<StageExample> out;
    *dropped = 0;
    for (const auto& r : records) {
        StageExample e = encode(tok, r.conversations);
        if (example_keep(e, max_tokens)) {
            out.push_back(std::move(e));
        } else {
            ++*dropped;
        }
    }
    return out;
}

std::vector<PairExample> preference_examples(const Tokenizer& tok, const std::vector<PreferenceRecord>& records, int64_t max_tokens,
                                             int64_t* dropped) {
    std::vector<PairExample> out;
    *dropped = 0;
    for (const auto& r : records) {
        PairExample p{encode(tok, {{"user", r.prompt}, {"assistant", r.chosen}}), encode(tok, {{"user", r.prompt}, {"assistant", r.rejected}})};
        if (example_keep(p.chosen, max_tokens) && example_keep(p.rejected, max_tokens)) {
            out.push_back(std::move(p));
        } else {
            ++*dropped;
        }
    }
    return out;
}

StageBatch stage_batch(const std::vector<const StageExample*>& rows) {
    CHRONOS_ASSERT(!rows.empty(), "a batch has rows");
    size_t width = 0;
    for (const StageExample* e : rows) width = std::max(width, e->ids.size());
    CHRONOS_ASSERT(width >= 2, "an example has a target");
    const int64_t B = static_cast<int64_t>(rows.size()), T = static_cast<int64_t>(width) - 1;
    StageBatch b;
    b.ids = torch::full({B, T + 1}, static_cast<int64_t>(kTokenPad), torch::kInt64);
    b.mask = torch::zeros({B, T}, torch::kFloat32);
    auto ids = b.ids.accessor<int64_t, 2>();
    auto mask = b.mask.accessor<float, 2>();
    for (int64_t r = 0; r < B; ++r) {
        const StageExample& e = *rows[static_cast<size_t>(r)];
        for (size_t i = 0; i < e.ids.size(); ++i) ids[r][static_cast<int64_t>(i)] = e.ids[i];
        for (size_t i = 1; i < e.ids.size(); ++i) mask[r][static_cast<int64_t>(i) - 1] = e.response[i] ? 1.0f : 0.0f;
    }
    return b;
}

int64_t stage_sample_index(uint64_t seed, int64_t n, int64_t i) {
    CHRONOS_ASSERT(n > 0, "no examples");
    const int64_t epoch = i / n;
    // One permutation per epoch, kept for the next call (the trainer asks in order).
    static std::mutex m;
    static std::map<std::pair<uint64_t, int64_t>, std::vector<int64_t>> cache;
    std::lock_guard<std::mutex> lock(m);
    auto key = std::make_pair(seed * 1000003ull + static_cast<uint64_t>(n), epoch);
    auto it = cache.find(key);
    if (it == cache.end()) {
        if (cache.size() > 8) cache.clear();
        std::vector<int64_t> perm(static_cast<size_t>(n));
        std::iota(perm.begin(), perm.end(), 0);
        std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(epoch));
        // Fisher-Yates with our own index draws: std::shuffle's use of the engine is unspecified.
        for (int64_t k = n - 1; k > 0; --k) std::swap(perm[static_cast<size_t>(k)], perm[rng() % static_cast<uint64_t>(k + 1)]);
        it = cache.emplace(key, std::move(perm)).first;
    }
    return it->second[static_cast<size_t>(i % n)];
}

}  // namespace chronos
