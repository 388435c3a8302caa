// main.cpp: `chronos`, the lean inference process. It links no libtorch, c10, gloo, protobuf or
// igraph: on a machine short of memory every megabyte of code mapped is a megabyte not holding
// experts. It runs info, data, tokenizer, inspect, generate and the machine and offload
// benchmarks itself, `eval ppl --engine runtime`, `tune` and `pipeline` (whose trials and
// stages are child processes) too. It hands every command that needs the libtorch model (train,
// eval, trace, pack, init, bench pretrain-report, bench eager-decode) to `chronos-train`, and
// `serve` to `chronos-serve`, both built beside it, with the same arguments (app.h).
#include <omp.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cli/app.h"
#include "cli/commands.h"
#include "core/blas_info.h"
#include "runtime/generate.h"
#include "runtime/kernels.h"

namespace chronos {
namespace {

// The commands chronos-train runs, with what --help says of them.
const std::pair<const char*, const char*> kTrainCommands[] = {
    {"train", "train a model: pretrain, sft, dpo, orpo, grpo, distill, lookahead, intent (runs in chronos-train)"},
    {"trace", "record every token's experts over a calibration set (runs in chronos-train)"},
    {"pack", "cluster experts and write .ctsr packs + cluster_manifest.json (runs in chronos-train)"},
    {"init", "write a randomly initialised checkpoint (runs in chronos-train)"},
};

bool runs_in_train_process(const CommandWords& w, int argc, char** argv) {
    for (const auto& [name, what] : kTrainCommands) {
        if (w.command == name) return true;
    }
    if (w.command == "eval") return !(w.subcommand == "ppl" && eval_runs_in_runtime(argc, argv));
    return w.command == "bench" && (w.subcommand == "pretrain-report" || w.subcommand == "eager-decode");
}

// Replaces this process with `name` (chronos-train, chronos-serve), beside this executable, and
// the same arguments.
int exec_sibling(int argc, char** argv, const char* name) {
    cli_command_line() = {argc, argv};
    std::string path = cli_sibling_executable(name);
    std::vector<char*> args(argv, argv + argc);
    args[0] = path.data();
    args.push_back(nullptr);
    ::execv(path.c_str(), args.data());
    std::fprintf(stderr, "chronos: error: cannot run %s (%s): it is built beside chronos (scripts/build.sh)\n", path.c_str(), std::strerror(errno));
    return 1;
}

void register_commands(CLI::App& app) {
    CLI::App* info = app.add_subcommand("info", "print the BLAS, thread and kernel set-up, and this process's footprint");
    info->callback([]() {
        BlasInfo blas = blas_probe();
        std::printf("blas: %s\n", blas.is_openblas ? "OpenBLAS" : "NOT OpenBLAS (slow)");
        std::printf("blas config: %s\n", blas.openblas_config.c_str());
        std::printf("sgemm from: %s\n", blas.sgemm_library.c_str());
        std::printf("libblas.so.3: %s\n", blas.libblas_so3.empty() ? "(not loaded)" : blas.libblas_so3.c_str());
        std::printf("blas threads: %d\n", blas.threads);
        std::printf("openmp threads: %d\n", omp_get_max_threads());
        std::printf("runtime kernels: %s\n", rt::kernel_isa_name(rt::kernel_isa()));
        std::printf("shared libraries mapped: %zu\n", rt::mapped_libraries().size());
        std::printf("peak RSS: %.1f MiB\n", static_cast<double>(rt::peak_rss_bytes()) / (1 << 20));
    });
    cmd_data_register(app);
    cmd_tokenizer_register(app);
    cmd_inspect_register(app);
    cmd_generate_register(app);
    cmd_eval_runtime_register(app);
    cmd_bench_register(app);
    cmd_tune_register(app);
    cmd_pipeline_register(app);
    cmd_estimate_register(app);
    cmd_import_register(app);
    // Listed by --help; main hands them to chronos-train before they could be parsed here.
    for (const auto& [name, what] : kTrainCommands) app.add_subcommand(name, what)->allow_extras();
    app.add_subcommand("serve", "OpenAI-compatible HTTP server on the offload runtime (runs in chronos-serve; docs/serve.md)")->allow_extras();
}

}  // namespace
}  // namespace chronos

int main(int argc, char** argv) {
    const chronos::CommandWords w = chronos::cli_command_words(argc, argv);
    if (w.command == "serve") return chronos::exec_sibling(argc, argv, "chronos-serve");
    if (chronos::runs_in_train_process(w, argc, argv)) return chronos::exec_sibling(argc, argv, "chronos-train");
    return chronos::cli_run(argc, argv, chronos::register_commands);
}
