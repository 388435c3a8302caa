// app.h: what the two executables of the `chronos` command share. `chronos` is the lean
// inference process (no libtorch): data, tokenizer, inspect, generate and the machine and
// offload benchmarks. Training, evaluation, tracing, packing and the benchmarks that need the
// libtorch model live in `chronos-train`, beside it; `chronos` hands those commands over with
// their arguments unchanged, so a user types `chronos ...` for everything. `chronos serve` is
// handed to `chronos-serve` the same way: the HTTP library brings TLS and compression
// libraries the other commands have no use for.
//
//     int main(int argc, char** argv) { return chronos::cli_run(argc, argv, register_my_commands); }
#pragma once

#include <CLI/CLI.hpp>

namespace chronos {

// Parses the global options (--threads, -v, -q), checks the BLAS, runs the subcommand that
// `register_commands` added. User errors exit with status 1 and one `chronos: error:` line;
// usage errors (an unknown option, a value out of its range) print the same kind of line and
// exit with CLI11's status.
int cli_run(int argc, char** argv, void (*register_commands)(CLI::App& app));

// The first word of the command line that is not a global option ("train" in
// `chronos --threads 2 train pretrain ...`), and the one after it; "" where there is none.
struct CommandWords {
    std::string command, subcommand;
};
CommandWords cli_command_words(int argc, char** argv);

// An executable beside the running one (chronos-train, chronos-serve).
std::string cli_sibling_executable(const char* name);
// chronos-train, beside the running executable.
std::string cli_train_executable();

}  // namespace chronos
