// commands.h: each file in src/cli registers one group of `chronos` subcommands.
#pragma once

#include <CLI/CLI.hpp>

namespace chronos {

struct GlobalOptions {
    int threads = 0;  // 0: library default
    bool verbose = false;
    bool quiet = false;
};

void cmd_data_register(CLI::App& app);
void cmd_tokenizer_register(CLI::App& app);
void cmd_inspect_register(CLI::App& app);

}  // namespace chronos
