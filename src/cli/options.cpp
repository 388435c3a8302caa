// options.cpp: see options.h.
#include "cli/options.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdlib>

#include "core/error.h"
#include "core/file_io.h"
#include "format/checkpoint.h"

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

std::vector<std::string> cli_split_list(const std::string& list, const char* option) {
    if (list.empty()) fail("{}: empty list", option);
    std::vector<std::string> out;
    size_t start = 0;
    for (;;) {
        const size_t comma = list.find(',', start);
        std::string item = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (item.empty()) fail("{}: empty item in '{}'", option, list);
        if (item.find_first_of(" \t") != std::string::npos) fail("{}: '{}' has spaces (write the list as a,b,c)", option, item);
        out.push_back(std::move(item));
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return out;
}

std::vector<double> cli_percent_list(const std::string& list, const char* option) {
    std::vector<double> out;
    for (const std::string& item : cli_split_list(list, option)) {
        char* end = nullptr;
        const double v = std::strtod(item.c_str(), &end);
        if (end == item.c_str() || *end != '\0' || !(v > 0 && v <= 100)) fail("{}: '{}' is not a percentage in (0, 100]", option, item);
        out.push_back(v);
    }
    return out;
}

void cli_checkpoint_out(const std::string& out, const std::vector<std::pair<std::string, std::string>>& inputs, bool warn_replaced) {
    checkpoint_out_check(out, inputs);
    if (warn_replaced && file_exists(out + "/config.json")) {
        spdlog::warn("{} holds a checkpoint; it is replaced when this run saves", out);
    }
}

}  // namespace chronos
