// splits.h: deterministic train / validation / test assignment.
//
// A record's split is a pure function of its key (source + document id), hashed with
// FNV-1a 64: the same key lands in the same split on every machine and every run, all
// records of one document share a split, and the splits are disjoint by construction.
#pragma once

#include <string>
#include <string_view>

namespace chronos {

enum class Split { train, validation, test };
constexpr Split kSplits[] = {Split::train, Split::validation, Split::test};
const char* split_name(Split split);

struct SplitFractions {
    double validation = 0.05;
    double test = 0.05;
};

Split split_assign(std::string_view key, const SplitFractions& fractions);

}  // namespace chronos
