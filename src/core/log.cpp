// log.cpp: spdlog's stderr sink with a short pattern.
#include "core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace chronos {

void log_init(LogLevel level) {
    auto logger = spdlog::stderr_color_mt("chronos");
    logger->set_pattern("%^[%L]%$ %v");
    switch (level) {
        case LogLevel::quiet: logger->set_level(spdlog::level::warn); break;
        case LogLevel::normal: logger->set_level(spdlog::level::info); break;
        case LogLevel::verbose: logger->set_level(spdlog::level::debug); break;
    }
    spdlog::set_default_logger(logger);
}

}  // namespace chronos
