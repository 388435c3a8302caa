// log.h: logging setup. Chronos logs through spdlog to stderr, so that stdout carries only a
// command's results (tables, JSON, generated text) and can be piped.
#pragma once

namespace chronos {

enum class LogLevel { quiet, normal, verbose };

// Installs the stderr logger at the given level; call once at start-up.
void log_init(LogLevel level);

}  // namespace chronos
