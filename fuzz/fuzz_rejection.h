// fuzz_rejection.h: what every fuzz target asks of a rejected input. The CLI prints a
// chronos::Error as one `chronos: error:` line, so the message must name the input (the parsers
// are called with "fuzz" as its name) and hold no newline (a value quoted from the input must
// not split the line).
#pragma once

#include <cstdlib>
#include <string>

#include "core/error.h"

inline void fuzz_check_rejection(const chronos::Error& e) {
    const std::string message = e.what();
    if (message.rfind("fuzz", 0) != 0 || message.find('\n') != std::string::npos) std::abort();
}
