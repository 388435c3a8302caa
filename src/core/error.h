// error.h: the one error type of Chronos. Every failure a user can cause (bad file, bad
// config, bad input) is thrown as chronos::Error with a message that names the thing at fault;
// the CLI prints it and exits non-zero. Programmer errors use CHRONOS_ASSERT instead.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace chronos {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Throws chronos::Error with a fmt-formatted message.
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
    throw Error(fmt::format(format, std::forward<Args>(args)...));
}

// A parser's message cut to its first 240 bytes: JSON parsers quote the token they stopped in,
// which may be a whole line of megabytes.
inline std::string error_text_clipped(const std::string& what) {
    constexpr size_t kShown = 240;
    return what.size() > kShown ? what.substr(0, kShown) + "..." : what;
}

// Internal invariant violated: print where and abort (never used for user input).
[[noreturn]] void assert_fail(const char* expr, const char* message, const char* file, int line);

}  // namespace chronos

#define CHRONOS_ASSERT(cond, msg)                                              \
    do {                                                                       \
        if (!(cond)) ::chronos::assert_fail(#cond, (msg), __FILE__, __LINE__); \
    } while (0)
