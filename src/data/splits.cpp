// splits.cpp: hash -> [0, 1) -> split.
#include "data/splits.h"

#include <cstdint>

#include "data/text_utils.h"

namespace chronos {

const char* split_name(Split split) {
    switch (split) {
        case Split::train: return "train";
        case Split::validation: return "validation";
        case Split::test: return "test";
    }
    return "?";
}

Split split_assign(std::string_view key, const SplitFractions& fractions) {
    // FNV-1a, then the splitmix64 finaliser so that keys differing in one character spread
    // evenly; the top 53 bits give a uniform double in [0, 1).
    uint64_t h = fnv1a64(key);
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
    h ^= h >> 31;
    double u = static_cast<double>(h >> 11) * (1.0 / 9007199254740992.0);
    if (u < fractions.test) return Split::test;
    if (u < fractions.test + fractions.validation) return Split::validation;
    return Split::train;
}

}  // namespace chronos
