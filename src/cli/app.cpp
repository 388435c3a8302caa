// app.cpp: see app.h.
#include "cli/app.h"

#include <omp.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <new>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/blas_info.h"
#include "core/error.h"
#include "core/log.h"

namespace chronos {

GlobalOptions& cli_globals() {
    static GlobalOptions g;
    return g;
}

CommandLine& cli_command_line() {
    static CommandLine c;
    return c;
}

CommandWords cli_command_words(int argc, char** argv) {
    CommandWords w;
    for (int i = 1; i < argc; ++i) {
        const char* a = argv[i];
        if (std::strcmp(a, "--threads") == 0) {  // the one global option with a separate value
            ++i;
            continue;
        }
        if (a[0] == '-') continue;
        if (w.command.empty()) {
            w.command = a;
        } else {
            w.subcommand = a;
            break;
        }
    }
    return w;
}

std::string cli_sibling_executable(const char* name) {
    std::error_code ec;
    const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
    return (ec ? std::filesystem::path(cli_command_line().argv[0]) : self).parent_path() / name;
}

std::string cli_train_executable() { return cli_sibling_executable("chronos-train"); }

int cli_run(int argc, char** argv, void (*register_commands)(CLI::App& app)) {
    cli_command_line() = {argc, argv};
    CLI::App app{"Chronos: a storage-aware Mixture-of-Experts stack"};
    app.name("chronos");
    app.require_subcommand(1);
    app.set_version_flag("--version", "chronos 0.1.0");
    GlobalOptions& global = cli_globals();
    app.add_option("--threads", global.threads, "threads for OpenMP and BLAS (default: all cores)")->check(cli_range(0, kMaxThreads));
    app.add_flag("-v,--verbose", global.verbose, "debug logging");
    app.add_flag("-q,--quiet", global.quiet, "warnings and errors only");

    // Runs before any subcommand callback.
    app.parse_complete_callback([&]() {
        log_init(global.quiet ? LogLevel::quiet : (global.verbose ? LogLevel::verbose : LogLevel::normal));
        if (global.threads > 0) {
            omp_set_num_threads(global.threads);
            blas_set_threads(global.threads);
        }
        BlasInfo blas = blas_probe();
        if (!blas.is_openblas) {
            spdlog::warn("BLAS is not OpenBLAS (sgemm_ from '{}'): matrix products will be many times slower; "
                         "install libopenblas0-openmp (scripts/setup.sh)",
                         blas.sgemm_library.empty() ? "nowhere" : blas.sgemm_library);
        } else {
            spdlog::debug("BLAS: OpenBLAS {} ({} threads) from {}", blas.openblas_config, blas.threads, blas.sgemm_library);
        }
    });
    register_commands(app);

    try {
        app.parse(argc, argv);
    } catch (const CLI::RuntimeError& e) {
        return e.get_exit_code();  // a command's own status (its workers said why)
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
        std::fflush(stdout);
        // Every error exits with 1, whatever CLI11's own code for its kind of parse error.
        const std::string word = cli_command_words(argc, argv).command;
        bool known = false;
        for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) known = known || sub->get_name() == word;
        if (!word.empty() && !known) {
            std::fprintf(stderr, "chronos: error: unknown command '%s' (see --help)\n", word.c_str());
        } else {
            std::fprintf(stderr, "chronos: error: %s (see --help)\n", e.what());
        }
        return 1;
    } catch (const std::bad_alloc&) {
        std::fflush(stdout);
        std::fprintf(stderr, "chronos: error: out of memory: an allocation failed (a smaller RAM budget, context or batch may fit)\n");
        return 1;
    } catch (const std::exception& e) {  // chronos::Error and anything else a command threw
        std::fflush(stdout);
        std::fprintf(stderr, "chronos: error: %s\n", e.what());
        return 1;
    }
    return 0;
}

}  // namespace chronos
