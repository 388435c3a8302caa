// options.cpp: see options.h.
#include "cli/options.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>

namespace chronos {

CLI::Validator cli_range(double lo, double hi, bool low_open) {
    const std::string range = fmt::format("{}{:g}, {:g}]", low_open ? "(" : "[", lo, hi);
    return CLI::Validator(
        [lo, hi, low_open, range](std::string& text) -> std::string {
            char* end = nullptr;
            const double x = std::strtod(text.c_str(), &end);
            if (text.empty() || end == text.c_str() || *end != '\0' || !std::isfinite(x)) {
                return fmt::format("'{}' is not a finite number (expected one in {})", text, range);
            }
            if ((low_open ? !(x > lo) : !(x >= lo)) || !(x <= hi)) return fmt::format("{} is outside {}", text, range);
            return std::string();
        },
        "in " + range);
}

}  // namespace chronos
