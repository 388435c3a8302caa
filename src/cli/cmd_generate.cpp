// cmd_generate.cpp: `chronos generate` — offloaded generation on the native runtime. Streams
// the text as it is produced and ends with the metrics (DESIGN.md, Metrics).
#include <fcntl.h>
#include <omp.h>
#include <unistd.h>

#include <fmt/format.h>

#include <iostream>
#include <memory>
#include <optional>
#include <random>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/blas_info.h"
#include "core/error.h"
#include "core/file_io.h"
#include "runtime/runtime.h"
#include "tokenizer/tokenizer.h"

namespace chronos {

namespace {

// Sampling by default (greedy decoding of a small model loops on one phrase): a temperature
// below 1 with top-k and nucleus sampling, and a repetition penalty of 1.3 (at 1.1, `small`
// still repeats "been been be be"; 1.3 reads best of the settings tried on it,
// docs/experiments.md). --greedy or --temperature 0 picks the most likely token instead.
struct GenerateArgs {
    std::string model, prompt, mode = "exact", budget = "auto", metrics_json, io = "uring";
    double mem_limit_mb = 0;  // > 0: the limit auto sizes from, instead of the cgroup's
    int64_t max_tokens = 64, top_k = 40;
    float temperature = 0.7f, top_p = 0.9f, repetition_penalty = 1.3f, prefetch_threshold = rt::SessionOptions{}.prefetch_threshold;
    std::optional<uint64_t> seed;  // none: drawn at random and printed, so a run can be repeated
    double sim_read_ms = -1;       // < 0: CHRONOS_SIM_READ_MS, else 0
    int threads = 0;
    bool greedy = false, buffered = false, preload = false, no_intent = false, no_lookahead = false, cold = false, quiet_text = false;
};

void run_generate(const GenerateArgs& a) {
    if (a.threads > 0) {
        omp_set_num_threads(a.threads);
        blas_set_threads(a.threads);
    }
    if (a.io != "uring" && a.io != "pread") fail("--io must be uring or pread, got '{}'", a.io);
    const double sim_read_ms = a.sim_read_ms >= 0 ? a.sim_read_ms : rt::io_sim_read_ms_from_env();
    rt::Model model(a.model);
    if (model.tokenizer_path.empty()) fail("{} has no tokenizer (tokenizer.model, or tokenizer.json for an imported model)", a.model);
    Tokenizer tok(model.tokenizer_path);
    tok.check_fits(model.config.vocab_size, a.model);
    std::vector<int32_t> prompt = tok.encode(a.prompt);
    if (prompt.empty()) fail("the prompt is empty after tokenization");
    if (tok.bos() >= 0) prompt.insert(prompt.begin(), tok.bos());  // an imported model's tokenizer may start every text so
    const int64_t context = model.config.max_position_embeddings, n_prompt = static_cast<int64_t>(prompt.size());
    if (n_prompt > context) fail("the prompt has {} tokens, more than the model's context of {}", n_prompt, context);
    // The last generated token needs no position of its own: prompt + max_tokens - 1 positions.
    if (a.max_tokens > context - n_prompt + 1) {
        fail("--max-tokens {} does not fit: the prompt takes {} of the model's {} positions, which leaves room for {} tokens", a.max_tokens,
             n_prompt, context, context - n_prompt + 1);
    }
    if (a.cold) rt::model_drop_page_cache(model);

    rt::SessionOptions so;
    so.mode = rt::miss_mode_parse(a.mode);
    so.io.direct = !a.buffered;
    so.io.uring = a.io == "uring";
    so.use_intent = !a.no_intent;
    so.use_lookahead = !a.no_lookahead;
    so.preload = a.preload;
    so.prefetch_threshold = a.prefetch_threshold;
    so.io.sim_read_ms = sim_read_ms;
    std::optional<rt::MemorySplit> split;
    if (a.budget == "auto") {
        // The pool from the memory limit (resident mode holds every expert whatever the limit).
        const rt::MemoryLimit limit = a.mem_limit_mb > 0 ? rt::MemoryLimit{static_cast<uint64_t>(a.mem_limit_mb * (1 << 20)), "--mem-limit"}
                                                         : rt::memory_limit_detect();
        split = rt::memory_split_plan(model, so, limit);
        so.ram_budget = split->experts;
        std::cerr << rt::memory_split_describe(*split) << "\n";
    } else {
        if (a.mem_limit_mb > 0) fail("--mem-limit sizes the budget itself: use it with --ram-budget auto (the default)");
        so.ram_budget = rt::budget_parse(a.budget, model.expert_bytes_total());
        rt::budget_check_mode(so.mode, so.ram_budget, model);
    }
    rt::Session session(model, so);
    rt::SamplerOptions sopt;
    sopt.temperature = a.greedy ? 0.0f : a.temperature;
    sopt.top_k = a.top_k;
    sopt.top_p = a.top_p;
    sopt.repetition_penalty = a.repetition_penalty;
    sopt.seed = a.seed ? *a.seed : std::random_device{}();
    rt::Sampler sampler(sopt, model.config.vocab_size);

    // Streaming: decode prompt + continuation and print what is new. Pieces join with spaces
    // that only a decode of the whole text gets right.
    std::vector<int32_t> ids = prompt;
    std::string shown = tok.decode(ids);
    if (!a.quiet_text) std::cout << shown << std::flush;
    rt::GenerateOptions go;
    go.max_tokens = a.max_tokens;
    go.stop_token = tok.end_of_text();
    rt::GenerateResult result;
    try {
        result = rt::generate(session, sampler, prompt, go, [&](int32_t id) {
            if (a.quiet_text || id == tok.end_of_text()) return true;
            ids.push_back(id);
            std::string text = tok.decode(ids);
            if (text.size() > shown.size() && text.compare(0, shown.size(), shown) == 0) {
                std::cout << text.substr(shown.size()) << std::flush;
                shown = std::move(text);
            }
            return true;
        });
    } catch (...) {
        if (!a.quiet_text) std::cout << "\n" << std::flush;  // the error's line starts on a line of its own
        throw;
    }
    if (!a.quiet_text) std::cout << "\n";
    nlohmann::ordered_json m = rt::metrics_json(session, result);
    m["model"] = a.model;
    m["ram_budget_bytes"] = so.ram_budget;
    if (split) {
        m["memory_split"] = {{"limit_bytes", split->limit.bytes}, {"limit_source", split->limit.source}, {"code_bytes", split->code},
                             {"dense_bytes", split->dense}, {"session_bytes", split->session}, {"margin_bytes", split->margin},
                             {"expert_bytes", split->experts}, {"expert_slots", split->slots}};
    }
    m["expert_bytes_total"] = model.expert_bytes_total();
    m["threads"] = omp_get_max_threads();
    m["sampling"] = {{"temperature", sopt.temperature}, {"top_k", sopt.top_k}, {"top_p", sopt.top_p},
                     {"repetition_penalty", sopt.repetition_penalty}, {"seed", sopt.seed}};
    std::cerr << fmt::format(
        "[{}] {} prompt + {} generated tokens | prefill {:.1f} tok/s, decode {:.1f} tok/s, TTFT {:.1f} ms\n"
        "  experts: hits {} misses {} ({} late, {} unnamed, {} below the bar; hit rate {:.3f}) fallbacks {} | stall {:.2f} ms/token | read {:.0f} bytes/token\n"
        "  prefetches used {} (slack mean {:.2f} ms, p10 {:.2f} ms) | lookahead recall {:.3f}\n"
        "  {} slots, {} bytes allocated of {} | peak RSS {} MiB | {} | {}\n",
        m["mode"].get<std::string>(), m["prompt_tokens"].get<int64_t>(), m["generated_tokens"].get<uint64_t>(),
        m["prefill_tok_s"].get<double>(), m["decode_tok_s"].get<double>(), m["ttft_ms"].get<double>(), m["hits"].get<uint64_t>(),
        m["misses"].get<uint64_t>(), m["misses_late"].get<uint64_t>(), m["misses_unnamed"].get<uint64_t>(),
        m["misses_below_bar"].get<uint64_t>(), m["hit_rate"].get<double>(), m["fallbacks"].get<uint64_t>(),
        m["stall_ms_per_token"].get<double>(), m["bytes_read_per_token"].get<double>(), m["prefetches_used"].get<uint64_t>(),
        m["slack_ms_mean"].get<double>(), m["slack_ms_p10"].get<double>(), m["lookahead_recall"].get<double>(),
        m["expert_slots"].get<int64_t>(), m["resident_expert_bytes_allocated"].get<uint64_t>(), model.expert_bytes_total(),
        m["peak_rss_bytes"].get<uint64_t>() >> 20, m["io"].get<std::string>(),
        sopt.temperature > 0 ? fmt::format("sampling T {:g}, top-k {}, top-p {:g}, penalty {:g}, seed {}", sopt.temperature, sopt.top_k,
                                           sopt.top_p, sopt.repetition_penalty, sopt.seed)
                             : std::string("greedy"));
    if (!a.metrics_json.empty()) file_write_atomic(a.metrics_json, m.dump(2) + "\n");
}

}  // namespace

void cmd_generate_register(CLI::App& app) {
    auto a = std::make_shared<GenerateArgs>();
    CLI::App* g = app.add_subcommand("generate", "generate text on the native offload runtime (experts on SSD)");
    g->add_option("--model", a->model, "checkpoint directory with packed experts (chronos pack)")->required();
    g->add_option("--prompt", a->prompt, "prompt text")->required();
    g->add_option("--mode", a->mode, "miss policy: exact (wait), soft (shared expert stands in), lru (plain offload), resident")
        ->capture_default_str();
    g->add_option("--ram-budget", a->budget, "RAM for experts: auto (what the memory limit leaves), a share of all expert bytes (25%) "
                                             "or bytes (512M)")->capture_default_str();
    g->add_option("--mem-limit", a->mem_limit_mb, "memory limit in MiB for --ram-budget auto (default: the cgroup's, else MemAvailable)")
        ->check(cli_range(1, 1e9));
    g->add_option("--max-tokens", a->max_tokens, "tokens to generate (at most what the context leaves after the prompt)")
        ->capture_default_str()->check(cli_range(1, 1e15));
    g->add_option("--temperature", a->temperature, "sampling temperature (0 = greedy)")->capture_default_str()->check(cli_range(0, 100));
    g->add_option("--top-k", a->top_k, "sample from the k most likely tokens (0 = off)")->capture_default_str()->check(cli_range(0, 1 << 24));
    g->add_option("--top-p", a->top_p, "nucleus sampling mass (1 = off)")->capture_default_str()->check(cli_range(0, 1, /*low_open=*/true));
    g->add_option("--repetition-penalty", a->repetition_penalty, "lower the probability of repeated tokens (1 = off)")
        ->capture_default_str()->check(cli_range(0, 100, /*low_open=*/true));
    g->add_flag("--greedy", a->greedy, "always take the most likely token (no sampling)");
    g->add_option("--seed", a->seed, "sampling seed (default: random, printed with the metrics)")->check(cli_range(0, 1.8e19));
    g->add_option("--threads", a->threads, "threads for OpenMP and BLAS")->check(cli_range(0, kMaxThreads));
    g->add_option("--sim-read-ms", a->sim_read_ms, "simulate a slow disk: no expert read completes sooner than this after it was issued "
                                                   "(default: $CHRONOS_SIM_READ_MS, else 0)")
        ->check(cli_range(0, rt::kSimReadMsMax));
    g->add_option("--metrics-json", a->metrics_json, "write the metrics here");
    g->add_option("--io", a->io, "uring (async) or pread (synchronous)")->capture_default_str();
    g->add_flag("--buffered", a->buffered, "buffered reads instead of O_DIRECT");
    g->add_option("--prefetch-threshold", a->prefetch_threshold, "lookahead score a prediction needs to be read (0.9 x P(chosen) at t+1, 0.8 x at t+2)")
        ->capture_default_str()->check(cli_range(0, 1));
    g->add_flag("--preload", a->preload, "fill the RAM budget with experts before the prompt (warm start)");
    g->add_flag("--cold", a->cold, "drop the packs from the page cache first");
    g->add_flag("--no-intent", a->no_intent, "do not prefetch the intent classifier's set at prefill");
    g->add_flag("--no-lookahead", a->no_lookahead, "do not prefetch the lookahead's predictions");
    g->add_flag("--no-text", a->quiet_text, "print only the metrics");
    g->callback([a]() { run_generate(*a); });
}

}  // namespace chronos
