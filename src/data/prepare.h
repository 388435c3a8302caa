// prepare.h: `chronos data prepare` — builds the twelve JSONL files
// {pretrain,sft,preference,prompts}.{train,validation,test}.jsonl from the real corpora.
//
// Deterministic: the same sources and options give byte-identical files. Splits follow
// splits.h, keyed by source document, so no document contributes to two splits.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "data/records.h"
#include "data/sources.h"
#include "data/splits.h"

namespace chronos {

struct PrepareOptions {
    SourcePaths paths;
    std::string out_dir;
    size_t max_chunk_chars = 2000;   // pretraining record size (characters)
    int wordnet_stride = 8;          // every n-th WordNet synset becomes an SFT item
    int64_t arithmetic_items = 8000; // generated arithmetic problems (half SFT, half prompts)
    int64_t spelling_pairs = 6000;   // codespell preference pairs at most
    uint64_t seed = 20261127;        // arithmetic generator
    SplitFractions fractions;
};

struct SplitTable {
    // [kind][split]
    std::array<std::array<int64_t, 3>, 4> records{};
    std::array<std::array<int64_t, 3>, 4> words{};    // white-space separated words
    std::array<std::array<int64_t, 3>, 4> tokens{};   // filled by data_stats with a tokenizer
    bool has_tokens = false;
};

std::string data_file(const std::string& dir, RecordKind kind, Split split);

SplitTable data_prepare(const PrepareOptions& options);

}  // namespace chronos
