// kernels_common.h: what the f32 products (kernels.cpp) and the narrow ones (kernels_narrow.cpp)
// share — eight floats as one value, and how a product's rows are split across the OpenMP team.
// Internal to those two files.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace chronos::rt::kernels_common {

// Eight floats as one value: GCC's vector extension, lowered to one AVX register or two SSE ones.
// The helpers below are inlined into each ISA's build of the kernels, so the ABI note GCC gives
// for passing such a value without AVX concerns no real call.
#pragma GCC diagnostic ignored "-Wpsabi"
typedef float v8f __attribute__((vector_size(32)));

inline v8f load8(const float* p) {
    v8f v;
    std::memcpy(&v, p, sizeof v);  // unaligned load
    return v;
}

// The eight lanes added in lane order: the fixed order every build shares.
inline float sum8(v8f v) {
    float s = 0;
    for (int q = 0; q < 8; ++q) s += v[q];
    return s;
}

// Below this many weights (of any stored type) a product runs on one thread: waking the team
// costs more than the rows it would take over.
constexpr int64_t kGemvParallelMin = 32 * 1024;

// Small products, a team of one, and calls from inside a parallel region run on the caller.
inline bool gemv_on_caller(int64_t weights) {
    return weights < kGemvParallelMin || omp_get_max_threads() == 1 || omp_in_parallel();
}

// Rows [0, out) split into one contiguous block per thread (in multiples of 4 rows, so blocks
// start on cache-line-friendly boundaries for the usual widths).
inline void gemv_block(int64_t out, int64_t part, int64_t parts, int64_t* r0, int64_t* r1) {
    const int64_t quads = (out + 3) / 4;
    *r0 = std::min(out, quads * part / parts * 4);
    *r1 = std::min(out, quads * (part + 1) / parts * 4);
}

}  // namespace chronos::rt::kernels_common
