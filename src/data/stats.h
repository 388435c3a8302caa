// stats.h: counts of records, words and tokens per kind and split of a prepared data
// directory (`chronos data stats`), and their table form.
#pragma once

#include <string>

#include "data/prepare.h"
#include "tokenizer/tokenizer.h"

namespace chronos {

// Reads and validates all twelve files; counts tokens if `tok` is given.
SplitTable data_stats(const std::string& dir, const Tokenizer* tok);
std::string split_table_format(const SplitTable& table);
nlohmann::json split_table_json(const SplitTable& table);

}  // namespace chronos
