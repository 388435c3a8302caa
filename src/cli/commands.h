// commands.h: each file in src/cli registers one group of `chronos` subcommands: the lean
// process (main.cpp) registers data, tokenizer, inspect, generate and bench; chronos-train
// (main_train.cpp) registers train, eval, trace, pack, init and its own bench group.
#pragma once

#include <CLI/CLI.hpp>

namespace chronos {

struct GlobalOptions {
    int threads = 0;  // 0: library default
    bool verbose = false;
    bool quiet = false;
};

// Set by main before parsing: the global options and the raw command line (the distributed
// launcher re-runs the command as its workers).
GlobalOptions& cli_globals();
struct CommandLine {
    int argc = 0;
    char** argv = nullptr;
};
CommandLine& cli_command_line();

void cmd_data_register(CLI::App& app);
void cmd_train_register(CLI::App& app);
void cmd_eval_register(CLI::App& app);
// The lean process's `eval` (ppl --engine runtime); eval_runs_in_runtime says whether argv asks for it.
void cmd_eval_runtime_register(CLI::App& app);
bool eval_runs_in_runtime(int argc, char** argv);
void cmd_bench_register(CLI::App& app);
// `chronos bench pretrain-report` and `chronos bench eager-decode` (chronos-train).
void cmd_bench_train_register(CLI::App& app);
void cmd_pack_register(CLI::App& app);
// `chronos train intent`, registered under the train subcommand.
void cmd_intent_register(CLI::App& train);
struct IntentMetrics;
void print_intent_metrics(const IntentMetrics& m);
void cmd_tokenizer_register(CLI::App& app);
void cmd_inspect_register(CLI::App& app);
void cmd_generate_register(CLI::App& app);
void cmd_tune_register(CLI::App& app);
void cmd_pipeline_register(CLI::App& app);
void cmd_estimate_register(CLI::App& app);
// `chronos import --hf DIR --out DIR` (lean process: no libtorch).
void cmd_import_register(CLI::App& app);
// `chronos serve`, registered by chronos-serve (main_serve.cpp).
void cmd_serve_register(CLI::App& app);
// `chronos bench offload` and `chronos bench policy`, registered under the bench subcommand.
void cmd_bench_offload_register(CLI::App& bench);
void cmd_bench_policy_register(CLI::App& bench);

}  // namespace chronos
