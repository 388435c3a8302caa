// error.cpp: the abort path of CHRONOS_ASSERT.
#include "core/error.h"

#include <cstdio>
#include <cstdlib>

namespace chronos {

void assert_fail(const char* expr, const char* message, const char* file, int line) {
    std::fprintf(stderr, "chronos: internal error at %s:%d: %s (%s)\n", file, line, message, expr);
    std::abort();
}

}  // namespace chronos
