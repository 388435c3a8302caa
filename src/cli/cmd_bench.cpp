// cmd_bench.cpp: `chronos bench sgemm` (the machine's measured BLAS peak), `chronos bench
// membw` (how fast this machine streams weights from RAM: the bound of decode) and
// `chronos bench pretrain-report` (Chronos vs baseline after pretraining, side by side).
#include <cblas.h>
#include <omp.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <tuple>
#include <vector>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/error.h"
#include "core/file_io.h"
#include "runtime/kernels.h"
#include "train/train_api.h"

namespace chronos {

namespace {

// Best GFLOP/s of `reps` single-precision n x n x n products.
double sgemm_peak_gflops(int n, int reps) {
    std::vector<float> a(static_cast<size_t>(n) * n, 0.5f), b(static_cast<size_t>(n) * n, 0.25f), c(static_cast<size_t>(n) * n);
    double best = 0;
    for (int r = 0; r < reps + 1; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (r > 0) best = std::max(best, 2.0 * n * n * static_cast<double>(n) / s / 1e9);  // first run warms up
    }
    return best;
}

// Best GB/s of `reps` passes summing `bytes` of floats with `threads` threads: the rate at
// which this machine streams data from RAM, which bounds a decode step that reads every active
// weight once. The buffer should be far larger than the last-level cache.
double read_bandwidth_gbs(size_t bytes, int reps, int threads) {
    const int64_t n = static_cast<int64_t>(bytes / sizeof(float));
    std::vector<float> buf(static_cast<size_t>(n));
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) buf[static_cast<size_t>(i)] = 1.0f;  // first touch by the reading threads
    double best = 0;
    volatile double sink = 0;  // keeps the sums observable
    for (int r = 0; r < reps + 1; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        // 16 running sums per thread, so that the adds pipeline: one running sum is bound by the
        // add latency (about 4 GB/s per core here), not by memory.
        float total = 0;
        const int64_t blocks = n / 16;
#pragma omp parallel num_threads(threads) reduction(+ : total)
        {
            float acc[16] = {};
#pragma omp for schedule(static)
            for (int64_t b = 0; b < blocks; ++b) {
                const float* p = buf.data() + b * 16;
                for (int j = 0; j < 16; ++j) acc[j] += p[j];
            }
            for (int j = 0; j < 16; ++j) total += acc[j];
        }
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        sink = sink + total;
        if (r > 0) best = std::max(best, static_cast<double>(n) * sizeof(float) / s / 1e9);
    }
    return best;
}

enum class Gemv { openblas, runtime };

// Best GB/s of matrix bytes streamed by a matrix-vector product (y = W x), OpenBLAS's sgemv or
// the runtime's own rt::gemv, cycling over enough distinct [rows, cols] matrices to fill
// `bytes`, as decode does over its layers.
double gemv_bandwidth_gbs(Gemv which, size_t bytes, int rows, int cols, int reps) {
    const size_t per = static_cast<size_t>(rows) * static_cast<size_t>(cols);
    const size_t count = std::max<size_t>(1, bytes / (per * sizeof(float)));
    std::vector<std::vector<float>> w(count, std::vector<float>(per, 0.01f));
    std::vector<float> x(static_cast<size_t>(cols), 1.0f), y(static_cast<size_t>(rows));
    double best = 0;
    for (int r = 0; r < reps + 1; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        for (const auto& m : w) {
            if (which == Gemv::openblas) {
                cblas_sgemv(CblasRowMajor, CblasNoTrans, rows, cols, 1.0f, m.data(), cols, x.data(), 1, 0.0f, y.data(), 1);
            } else {
                rt::gemv(m.data(), x.data(), y.data(), rows, cols);
            }
        }
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (r > 0) best = std::max(best, static_cast<double>(count * per * sizeof(float)) / s / 1e9);
    }
    return best;
}

// Median of a log field over steps after the first `skip` (warm-up and first evaluations).
double log_median(const std::string& path, const char* field, int64_t skip) {
    std::ifstream in(path);
    if (!in) fail("cannot open training log {}", path);
    std::vector<double> v;
    std::string line;
    while (std::getline(in, line)) {
        nlohmann::json j = nlohmann::json::parse(line);
        if (j.at("step").get<int64_t>() > skip && !j.contains("val_loss")) v.push_back(j.at(field).get<double>());
    }
    if (v.empty()) fail("{}: no steps after {}", path, skip);
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

struct ReportArgs {
    std::string chronos_dir, baseline_dir, data, out_json, out_md;
    std::string chronos_log, baseline_log;  // speed logs (default DIR.log.jsonl)
    int64_t seq_len = 256, max_tokens = 0;
    int sgemm_n = 1536;
};

}  // namespace

void cmd_bench_register(CLI::App& app) {
    CLI::App* bench = app.add_subcommand("bench", "benchmarks");
    bench->require_subcommand(1);

    auto n = std::make_shared<int>(1536);
    cmd_bench_offload_register(*bench);
    CLI::App* sg = bench->add_subcommand("sgemm", "measured single-precision GEMM peak of this machine");
    sg->add_option("--size", *n, "matrix size")->capture_default_str()->check(CLI::Range(64, 8192));
    sg->callback([n]() { std::cout << fmt::format("sgemm {}^3: {:.1f} GFLOP/s\n", *n, sgemm_peak_gflops(*n, 5)); });

    auto a = std::make_shared<ReportArgs>();
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

    CLI::App* rep = bench->add_subcommand("pretrain-report", "Chronos vs baseline: perplexity, switch rate, recall, speed");
    rep->add_option("--chronos", a->chronos_dir, "Chronos checkpoint (its log is DIR.log.jsonl)")->required();
    rep->add_option("--baseline", a->baseline_dir, "baseline checkpoint")->required();
    rep->add_option("--data", a->data, "held-out JSONL")->required();
    rep->add_option("--seq-len", a->seq_len, "evaluation window")->capture_default_str()->check(cli_range(2, 1 << 20));
    rep->add_option("--max-tokens", a->max_tokens, "evaluate at most this many tokens (0: all)")->capture_default_str()->check(cli_range(0, 1e12));
    rep->add_option("--chronos-log", a->chronos_log, "training log to take Chronos's speed from (default: DIR.log.jsonl)");
    rep->add_option("--baseline-log", a->baseline_log, "training log to take the baseline's speed from");
    rep->add_option("--json", a->out_json, "write the figures as JSON");
    rep->add_option("--markdown", a->out_md, "write the table as Markdown");
    rep->callback([a]() {
        // The peak is the best of three bursts of 10 products spread over the report's run (before,
        // between and after the evaluations): a shared host only ever lowers it, and a single
        // burst once came out 30% under the usual figure.
        double peak = sgemm_peak_gflops(a->sgemm_n, 10);
        nlohmann::ordered_json rows;  // per variant, before the peak is final
        for (const auto& [name, dir, speed_log] : {std::tuple{"chronos", a->chronos_dir, a->chronos_log},
                                                  std::tuple{"baseline", a->baseline_dir, a->baseline_log}}) {
            EvalPplResult p = eval_ppl(dir, a->data, a->seq_len, a->max_tokens);
            EvalRoutingResult r = eval_routing(dir, a->data, a->seq_len, a->max_tokens);
            const std::string log = speed_log.empty() ? dir + ".log.jsonl" : speed_log;
            const double tok_s = log_median(log, "tok_s", 5), flop_s = log_median(log, "flop_s", 5);
            rows[name] = {{"dir", dir}, {"ppl", p.ppl}, {"loss", p.loss}, {"tokens", p.tokens}, {"switch_rate", r.switch_rate_mean},
                          {"lookahead_recall", r.lookahead_recall}, {"copy_recall", r.copy_recall}, {"train_tok_s", tok_s}, {"train_gflop_s", flop_s / 1e9}};
            peak = std::max(peak, sgemm_peak_gflops(a->sgemm_n, 10));
        }
        nlohmann::ordered_json j;
        j["sgemm_peak_gflops"] = peak;
        j["data"] = a->data;
        for (const char* name : {"chronos", "baseline"}) {
            j[name] = rows[name];
            j[name]["fraction_of_sgemm_peak"] = rows[name]["train_gflop_s"].get<double>() / peak;
        }
        // Copies: adding "targets" below may reallocate the ordered map.
        const nlohmann::ordered_json c = j["chronos"];
        const nlohmann::ordered_json b = j["baseline"];
        const double ppl_ratio = c["ppl"].get<double>() / b["ppl"].get<double>();
        const double switch_ratio = c["switch_rate"].get<double>() / b["switch_rate"].get<double>();
        const double recall1 = c["lookahead_recall"].empty() ? 0.0 : c["lookahead_recall"][0].get<double>();
        j["targets"] = {{"ppl_within_3_percent", ppl_ratio <= 1.03}, {"switch_rate_at_most_60_percent", switch_ratio <= 0.6},
                        {"lookahead_recall_t1_at_least_0_85", recall1 >= 0.85},
                        {"flops_at_least_40_percent_of_peak", c["fraction_of_sgemm_peak"].get<double>() >= 0.4}};
        std::string md;
        md += "| | Chronos | baseline | ratio | target |\n|---|---:|---:|---:|---|\n";
        md += fmt::format("| held-out perplexity | {:.2f} | {:.2f} | {:.3f} | Chronos within 3% |\n", c["ppl"].get<double>(), b["ppl"].get<double>(), ppl_ratio);
        md += fmt::format("| switch rate | {:.4f} | {:.4f} | {:.3f} | at most 0.60 |\n", c["switch_rate"].get<double>(), b["switch_rate"].get<double>(), switch_ratio);
        md += fmt::format("| lookahead recall@top-k, t+1 | {:.4f} | — | | at least 0.85 |\n", recall1);
        if (c["lookahead_recall"].size() > 1) md += fmt::format("| lookahead recall@top-k, t+2 | {:.4f} | — | | |\n", c["lookahead_recall"][1].get<double>());
        // What copying the routing the head can see (token t-1's, all layers) would score at t+1.
        if (c["copy_recall"].size() > 1 && b["copy_recall"].size() > 1) {
            md += fmt::format("| reference: t-1's experts as the t+1 prediction | {:.4f} | {:.4f} | | |\n", c["copy_recall"][1].get<double>(),
                              b["copy_recall"][1].get<double>());
        }
        md += fmt::format("| training tokens/s | {:.0f} | {:.0f} | {:.3f} | |\n", c["train_tok_s"].get<double>(), b["train_tok_s"].get<double>(),
                          c["train_tok_s"].get<double>() / b["train_tok_s"].get<double>());
        md += fmt::format("| model GFLOP/s (share of sgemm peak {:.1f}) | {:.1f} ({:.0f}%) | {:.1f} ({:.0f}%) | | at least 40% |\n", peak,
                          c["train_gflop_s"].get<double>(), 100 * c["fraction_of_sgemm_peak"].get<double>(), b["train_gflop_s"].get<double>(),
                          100 * b["fraction_of_sgemm_peak"].get<double>());
        std::cout << md;
        if (!a->out_json.empty()) file_write_atomic(a->out_json, j.dump(2) + "\n");
        if (!a->out_md.empty()) file_write_atomic(a->out_md, md);
    });
}

}  // namespace chronos
