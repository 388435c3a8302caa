// main.cpp: the `chronos` command. Parses global options, checks the BLAS, and dispatches to
// the subcommands registered by the cmd_*.cpp files. User errors exit with status 1 and one
// clear line on stderr; usage errors (an unknown option, a value out of its range) print the
// same kind of line and exit with CLI11's status.
#include <malloc.h>
#include <omp.h>
#include <spdlog/spdlog.h>

#include <cstdio>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/blas_info.h"
#include "core/error.h"
#include "core/log.h"
#include "runtime/kernels.h"

namespace chronos {
GlobalOptions& cli_globals() {
    static GlobalOptions g;
    return g;
}
CommandLine& cli_command_line() {
    static CommandLine c;
    return c;
}
}  // namespace chronos

// glibc maps blocks above its mmap threshold (128 KB-32 MB) and unmaps them on free, so every
// training step re-faulted and re-zeroed the same activation buffers (page faults and page
// clearing were ~6% of a `small` pretraining profile). Serving every block from the heap (no
// mmap) and never trimming it keeps them: +3-11% from blocks up to 32 MB, another +7-14% from
// the larger ones (the [tokens, vocab] logits and their gradients) in interleaved runs
// (docs/benchmarks.md).
static void malloc_keep_freed_blocks() {
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

int main(int argc, char** argv) {
    malloc_keep_freed_blocks();
    chronos::cli_command_line() = {argc, argv};
    CLI::App app{"Chronos: a storage-aware Mixture-of-Experts stack"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "chronos 0.1.0");
    chronos::GlobalOptions& global = chronos::cli_globals();
    app.add_option("--threads", global.threads, "threads for OpenMP and BLAS (default: all cores)")->check(chronos::cli_range(0, chronos::kMaxThreads));
    app.add_flag("-v,--verbose", global.verbose, "debug logging");
    app.add_flag("-q,--quiet", global.quiet, "warnings and errors only");

    // Runs before any subcommand callback.
    app.parse_complete_callback([&]() {
        chronos::log_init(global.quiet ? chronos::LogLevel::quiet
                                       : (global.verbose ? chronos::LogLevel::verbose : chronos::LogLevel::normal));
        if (global.threads > 0) {
            omp_set_num_threads(global.threads);
            chronos::blas_set_threads(global.threads);
        }
        chronos::BlasInfo blas = chronos::blas_probe();
        if (!blas.is_openblas) {
            spdlog::warn("BLAS is not OpenBLAS (sgemm_ from '{}'): matrix products will be many times slower; "
                         "install libopenblas0-openmp (scripts/setup.sh)",
                         blas.sgemm_library.empty() ? "nowhere" : blas.sgemm_library);
        } else {
            spdlog::debug("BLAS: OpenBLAS {} ({} threads) from {}", blas.openblas_config, blas.threads, blas.sgemm_library);
        }
    });

    CLI::App* info = app.add_subcommand("info", "print the BLAS and thread set-up");
    info->callback([]() {
        chronos::BlasInfo blas = chronos::blas_probe();
        std::printf("blas: %s\n", blas.is_openblas ? "OpenBLAS" : "NOT OpenBLAS (slow)");
        std::printf("blas config: %s\n", blas.openblas_config.c_str());
        std::printf("sgemm from: %s\n", blas.sgemm_library.c_str());
        std::printf("libblas.so.3: %s\n", blas.libblas_so3.empty() ? "(not loaded)" : blas.libblas_so3.c_str());
        std::printf("blas threads: %d\n", blas.threads);
        std::printf("openmp threads: %d\n", omp_get_max_threads());
        std::printf("runtime kernels: %s\n", chronos::rt::kernel_isa_name(chronos::rt::kernel_isa()));
    });

    chronos::cmd_data_register(app);
    chronos::cmd_tokenizer_register(app);
    chronos::cmd_train_register(app);
    chronos::cmd_eval_register(app);
    chronos::cmd_bench_register(app);
    chronos::cmd_pack_register(app);
    chronos::cmd_inspect_register(app);
    chronos::cmd_generate_register(app);

    try {
        app.parse(argc, argv);
    } catch (const CLI::RuntimeError& e) {
        return e.get_exit_code();  // a command's own status (its workers said why)
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
        std::fflush(stdout);
        std::fprintf(stderr, "chronos: error: %s (see --help)\n", e.what());
        return e.get_exit_code();
    } catch (const chronos::Error& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "chronos: error: %s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "chronos: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
