// cmd_bench.cpp: `chronos bench sgemm` (the machine's measured BLAS peak), `chronos bench
// membw` (how fast this machine streams weights from RAM: the bound of decode) and `chronos
// bench offload` (cmd_bench_offload.cpp), in the lean inference process. pretrain-report and
// eager-decode need libtorch and run in chronos-train (cmd_bench_train.cpp).
#include <omp.h>
#include <fmt/format.h>

#include <iostream>
#include <memory>
#include <utility>

#include "cli/commands.h"
#include "cli/machine_bench.h"
#include "runtime/kernels.h"

namespace chronos {

void cmd_bench_register(CLI::App& app) {
    CLI::App* bench = app.add_subcommand("bench", "benchmarks");
    bench->require_subcommand(1);

    auto n = std::make_shared<int>(1536);
    cmd_bench_offload_register(*bench);
    cmd_bench_policy_register(*bench);
    CLI::App* sg = bench->add_subcommand("sgemm", "measured single-precision GEMM peak of this machine");
    sg->add_option("--size", *n, "matrix size")->capture_default_str()->check(CLI::Range(64, 8192));
    sg->callback([n]() { std::cout << fmt::format("sgemm {}^3: {:.1f} GFLOP/s\n", *n, sgemm_peak_gflops(*n, 5)); });

    auto mb = std::make_shared<int>(1024);
    CLI::App* bw = bench->add_subcommand("membw", "RAM read bandwidth of this machine, plain, through OpenBLAS sgemv and through the runtime's gemv");
    bw->add_option("--mib", *mb, "buffer size in MiB (far above the cache)")->capture_default_str()->check(CLI::Range(64, 65536));
    bw->callback([mb]() {
        const int threads = omp_get_max_threads();  // --threads sets OpenMP and BLAS alike
        const size_t bytes = static_cast<size_t>(*mb) << 20;
        std::cout << fmt::format("read, {} MiB, {} thread(s): {:.1f} GB/s\n", *mb, threads, read_bandwidth_gbs(bytes, 5, threads));
        // The decode shapes of `base` (experts 768 x 512 and 512 x 768, lm_head 8000 x 512) and of
        // the anchor (experts 1664 x 512 and 512 x 1664, lm_head 6400 x 512), [out, in].
        for (auto [r, c] : {std::pair{768, 512}, std::pair{512, 768}, std::pair{1664, 512}, std::pair{512, 1664},
                            std::pair{8000, 512}, std::pair{6400, 512}}) {
            std::cout << fmt::format("{}x{} over {} MiB, {} thread(s): OpenBLAS sgemv {:.1f} GB/s, runtime gemv {:.1f} GB/s\n",
                                     r, c, *mb, threads, gemv_bandwidth_gbs(Gemv::openblas, bytes, r, c, 5),
                                     gemv_bandwidth_gbs(Gemv::runtime, bytes, r, c, 5));
        }
    });
    auto gm = std::make_shared<int>(256);
    CLI::App* gv = bench->add_subcommand("gemv", "the decode product per stored weight type: weights/s on the anchor's shapes, from RAM and from cache");
    gv->add_option("--mib", *gm, "bytes of matrices cycled through, per type (far above the cache)")->capture_default_str()->check(CLI::Range(1, 65536));
    gv->callback([gm]() {
        const int threads = omp_get_max_threads();
        std::cout << fmt::format("runtime kernels: {}, {} thread(s); G weights/s (GB/s of stored bytes)\n", rt::kernel_isa_name(rt::kernel_isa()), threads);
        std::cout << "| shape [out, in] | working set | f32 | bf16 | f16 | q8 | q4 |\n|---|---|---:|---:|---:|---:|---:|\n";
        for (auto [r, c] : {std::pair{1664, 512}, std::pair{512, 1664}, std::pair{512, 512}, std::pair{6400, 512}}) {
            for (size_t mib : {static_cast<size_t>(*gm), size_t{1}}) {
                std::cout << fmt::format("| {} x {} | {} MiB |", r, c, mib);
                for (WeightType t : {WeightType::f32, WeightType::bf16, WeightType::f16, WeightType::q8, WeightType::q4}) {
                    const double rate = gemv_weight_rate(t, mib << 20, r, c, 5);
                    std::cout << fmt::format(" {:.2f} ({:.1f}) |", rate / 1e9, rate * weight_bits_per_weight(t) / 8 / 1e9);
                }
                std::cout << "\n";
            }
        }
    });
    // Listed by --help; main hands them to chronos-train before they could be parsed here.
    bench->add_subcommand("pretrain-report", "Chronos vs baseline: perplexity, switch rate, recall, speed (runs in chronos-train)")
        ->allow_extras();
    bench->add_subcommand("eager-decode", "libtorch eager decode of given tokens, bench offload's reference (runs in chronos-train)")
        ->allow_extras();
}

}  // namespace chronos
