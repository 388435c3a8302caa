// cmd_bench_offload.cpp: `chronos bench offload` — the offload benchmark of DESIGN.md
// (Benchmark protocol). One run, one machine, the same weights, prompts and threads for every
// side:
//   - resident decode on the native runtime vs libtorch eager decode (run by chronos-train on
//     the same tokens: this process links no libtorch);
//   - the IO engine's read bandwidth vs a plain sequential read of the same pack files;
//   - exact / soft / lru at each RAM budget, teacher-forced on the resident run's tokens, so
//     every mode does the same work, in --rounds interleaved passes (tok/s: the median pass,
//     so that the machine's slow moments fall on every side): tok/s, hit and fallback rates,
//     stall, bytes read per token and the disk bound (bandwidth / missed bytes per token),
//     soft's KL from resident, and whether exact reproduced resident's tokens;
//   - with --oracle, exact and soft again with the lookahead's predictions replaced by the
//     routing the resident run chose: the bound a perfect predictor would reach;
//   - with --sim-read-ms, every expert read (not the bandwidth probes) completes no sooner than
//     that after it was issued: prefetch overlap measured as on a slower disk, with each mode's
//     pipeline slack (how long before its layer asked a used prefetch had arrived);
//   - with --dtype, all of the above once per stored weight type, each on a copy of the model
//     packed in that type with the model's own clusters (DIR-TYPE beside it, made when missing),
//     at the same budgets in bytes: percentages of the f32 expert bytes.
#include <fcntl.h>
#include <omp.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>

#include "cli/app.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "core/blas_info.h"
#include "core/error.h"
#include "core/file_io.h"
#include "data/jsonl.h"
#include "format/checkpoint.h"
#include "format/pack.h"
#include "runtime/runtime.h"
#include "tokenizer/tokenizer.h"

extern char** environ;

namespace chronos {

namespace {

using Clock = std::chrono::steady_clock;

struct OffloadArgs {
    std::string model, data, json, markdown, budgets = "100,50,25,10", modes = "exact,soft,lru", dtypes, dense_dtype = "same";
    int64_t prompts = 8, prompt_tokens = 32, gen_tokens = 32, rounds = 3;
    bool buffered = false, eager = true, oracle = false;
    float prefetch_threshold = rt::SessionOptions{}.prefetch_threshold;
    double sim_read_ms = -1;  // < 0: CHRONOS_SIM_READ_MS, else 0
};

// Plain sequential read() of every pack file after dropping it from the page cache: bytes/s.
double plain_read_bandwidth(const rt::Model& m) {
    std::vector<char> buf(1 << 20);
    uint64_t bytes = 0;
    rt::model_drop_page_cache(m);
    const auto t0 = Clock::now();
    for (const std::string& f : m.manifest.files) {
        const std::string p = m.dir + "/" + f;
        int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) fail("cannot open {}", p);
        ssize_t n;
        while ((n = ::read(fd, buf.data(), buf.size())) > 0) bytes += static_cast<uint64_t>(n);
        ::close(fd);
    }
    return static_cast<double>(bytes) / std::chrono::duration<double>(Clock::now() - t0).count();
}

std::vector<std::vector<int32_t>> load_prompts(const OffloadArgs& a, const Tokenizer& tok) {
    std::vector<std::string> texts;
    jsonl_read(a.data, [&](const nlohmann::json& j, int64_t) {
        if (j.contains("text") && j["text"].is_string()) texts.push_back(j["text"].get<std::string>());
    });
    std::vector<std::vector<int32_t>> out;
    if (texts.empty()) fail("{}: no records with a \"text\" field", a.data);
    // Evenly spaced records, so the prompts come from different sources.
    const size_t stride = std::max<size_t>(1, texts.size() / static_cast<size_t>(a.prompts));
    for (size_t i = 0; i < texts.size() && static_cast<int64_t>(out.size()) < a.prompts; i += stride) {
        std::vector<int32_t> ids = tok.encode(texts[i]);
        if (static_cast<int64_t>(ids.size()) < a.prompt_tokens) continue;
        ids.resize(static_cast<size_t>(a.prompt_tokens));
        out.push_back(ids);
    }
    if (out.empty()) fail("{}: no record has {} tokens", a.data, a.prompt_tokens);
    return out;
}

// Rates of a mode's summed metrics, as the table states them.
double decode_tok_s(const rt::Metrics& m) { return m.decode_s > 0 ? static_cast<double>(m.decode_tokens) / m.decode_s : 0.0; }
double per_lookup(const rt::Metrics& m, uint64_t x) {
    return static_cast<double>(x) / static_cast<double>(std::max<uint64_t>(1, m.hits + m.misses));
}
double per_token(const rt::Metrics& m, double x) { return x / std::max<double>(1, static_cast<double>(m.decode_tokens)); }

// KL(p || q) of the softmaxes of two logit rows, in nats.
double kl_logits(const float* p_logits, const float* q_logits, int64_t V) {
    double mp = p_logits[0], mq = q_logits[0];
    for (int64_t i = 1; i < V; ++i) {
        mp = std::max<double>(mp, p_logits[i]);
        mq = std::max<double>(mq, q_logits[i]);
    }
    double zp = 0, zq = 0;
    for (int64_t i = 0; i < V; ++i) {
        zp += std::exp(p_logits[i] - mp);
        zq += std::exp(q_logits[i] - mq);
    }
    double kl = 0;
    for (int64_t i = 0; i < V; ++i) {
        const double lp = p_logits[i] - mp - std::log(zp), lq = q_logits[i] - mq - std::log(zq);
        kl += std::exp(lp) * (lp - lq);
    }
    return kl;
}

struct EagerDecode {
    int64_t tokens = 0;
    double seconds = 0;
};

// libtorch eager decode of the same prompts, teacher-forced on the same continuations, with the
// same threads: `chronos bench eager-decode` in chronos-train, through a temporary file.
EagerDecode eager_decode_in_train_process(const std::string& model, const std::vector<std::vector<int32_t>>& prompts,
                                          const std::vector<std::vector<int32_t>>& continuations, int threads) {
    namespace fs = std::filesystem;
    std::string tmpl = (fs::temp_directory_path() / "chronos-eager-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) fail("cannot create a temporary directory in {}", fs::temp_directory_path().string());
    const std::string tokens = tmpl + "/tokens.json", out = tmpl + "/eager.json";
    file_write_atomic(tokens, nlohmann::json{{"prompts", prompts}, {"continuations", continuations}}.dump());
    const std::string exe = cli_train_executable(), t = std::to_string(threads);
    std::vector<std::string> args = {exe, "-q", "--threads", t, "bench", "eager-decode", "--model", model,
                                     "--tokens", tokens, "--json", out, "--intra-op-threads", t};
    std::vector<char*> argv;
    for (std::string& x : args) argv.push_back(x.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    int status = 0;
    const bool started = ::posix_spawn(&pid, exe.c_str(), nullptr, nullptr, argv.data(), environ) == 0;
    const bool ok = started && ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    EagerDecode r;
    if (ok) {
        const nlohmann::json j = nlohmann::json::parse(file_read_all(out));
        r = {j.at("tokens").get<int64_t>(), j.at("seconds").get<double>()};
    }
    fs::remove_all(tmpl);
    if (!started) fail("cannot run {} for the libtorch comparison (use --no-eager to skip it)", exe);
    if (!ok) fail("the libtorch eager decode ({} bench eager-decode) failed (use --no-eager to skip it)", exe);
    return r;
}

struct ModeRun {
    std::string mode;
    double budget = 1.0;
    rt::Metrics m;                    // summed over the rounds
    std::vector<double> round_tok_s;  // decode tok/s of each round's pass over the prompts
    uint64_t slots = 0, allocated = 0;
    uint64_t prefetches_dropped = 0, evicted_unused = 0;  // the store's counters, summed over the sessions
    double kl = 0;
    int64_t kl_n = 0;
    bool identical = true;
    std::string io;
    // The median round: the VM's speed drifts between moments by more than the modes differ.
    double tok_s() const {
        if (round_tok_s.empty()) return 0.0;
        std::vector<double> v = round_tok_s;
        std::sort(v.begin(), v.end());
        const size_t n = v.size();
        return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    }
};

// One model: the tables above, printed, and their JSON. Budgets are shares of base_bytes.
nlohmann::ordered_json run_offload_model(const OffloadArgs& a, const std::string& model_dir, uint64_t base_bytes, std::string& md_out) {
    const int threads = omp_get_max_threads();
    // The lists first: a typo fails before any file is read.
    std::vector<double> budgets;
    for (double percent : cli_percent_list(a.budgets, "--budgets")) budgets.push_back(percent / 100.0);
    std::vector<rt::MissMode> modes;
    for (const std::string& item : cli_split_list(a.modes, "--modes")) modes.push_back(rt::miss_mode_parse(item));
    rt::Model model(model_dir);
    if (a.oracle && (model.lookahead.hidden == 0 || model.config.lookahead_steps == 0)) {
        fail("--oracle: {} has no lookahead head whose predictions an oracle could replace", a.model);
    }
    if (model.tokenizer_path.empty()) fail("{} has no tokenizer (tokenizer.model, or tokenizer.json for an imported model)", a.model);
    Tokenizer tok(model.tokenizer_path);
    tok.check_fits(model.config.vocab_size, model_dir);
    const int64_t V = model.config.vocab_size;
    const std::vector<std::vector<int32_t>> prompts = load_prompts(a, tok);
    const uint64_t total = base_bytes > 0 ? base_bytes : model.expert_bytes_total();
    rt::IoOptions io;
    io.direct = !a.buffered;
    rt::IoOptions io_sessions = io;  // the simulated latency applies to the sessions' reads only
    io_sessions.sim_read_ms = a.sim_read_ms >= 0 ? a.sim_read_ms : rt::io_sim_read_ms_from_env();
    auto fresh_session = [&](rt::MissMode mode, double budget) {
        rt::model_drop_page_cache(model);
        rt::SessionOptions so;
        so.mode = mode;
        so.ram_budget = static_cast<uint64_t>(std::floor(static_cast<double>(total) * budget));
        so.io = io_sessions;
        so.prefetch_threshold = a.prefetch_threshold;
        return std::make_unique<rt::Session>(model, so);
    };

    // Disk and IO engine bandwidth on the same files, alternated three times: this machine's disk
    // swings by more than the 80% the target allows between two moments, so each side gets the
    // median of three reads taken in turn rather than one read at a moment of its own.
    std::vector<double> plain_reads, engine_reads;
    for (int rep = 0; rep < 3; ++rep) {
        plain_reads.push_back(plain_read_bandwidth(model));
        rt::model_drop_page_cache(model);
        rt::ExpertStore store(model.manifest, model.dir, rt::kBudgetAll, 1, io);
        const auto t1 = Clock::now();
        store.load_all();
        engine_reads.push_back(static_cast<double>(store.counters().bytes_read) / std::chrono::duration<double>(Clock::now() - t1).count());
    }
    auto median3 = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[1];
    };
    const double plain_bw = median3(plain_reads), engine_bw = median3(engine_reads);

    // Warm-up, untimed: faults the mmap'd dense weights in, so no side pays for first touch.
    {
        auto s = fresh_session(rt::MissMode::resident, 1.0);
        s->prefill(prompts[0].data(), static_cast<int64_t>(prompts[0].size()));
        for (int j = 0; j < 4; ++j) s->decode(static_cast<int32_t>(std::max_element(s->logits(), s->logits() + V) - s->logits()));
    }
    // Resident reference: greedy tokens, their logits, and the routing of each decode step.
    std::vector<std::vector<int32_t>> tokens(prompts.size());
    std::vector<std::vector<float>> ref_logits(prompts.size());
    std::vector<std::vector<int32_t>> routes(prompts.size());  // per prompt [steps][L][k]
    for (size_t i = 0; i < prompts.size(); ++i) {
        auto s = fresh_session(rt::MissMode::resident, 1.0);
        s->prefill(prompts[i].data(), static_cast<int64_t>(prompts[i].size()));
        s->on_route = [&routes, i, k = model.config.num_experts_per_tok](int64_t, const int32_t* topk, int64_t T, const float*) {
            routes[i].insert(routes[i].end(), topk, topk + T * k);  // decode only: set after prefill, one row per step
        };
        for (int64_t j = 0; j < a.gen_tokens; ++j) {
            if (j > 0) s->decode(tokens[i].back());
            ref_logits[i].insert(ref_logits[i].end(), s->logits(), s->logits() + V);
            tokens[i].push_back(static_cast<int32_t>(std::max_element(s->logits(), s->logits() + V) - s->logits()));
        }
    }

    // Resident, then each mode at each budget (with --oracle, exact and soft once more with the
    // recorded routing as their predictions), every side teacher-forced on the reference tokens.
    // The rounds are interleaved, so that a slow moment of the machine falls on every side.
    std::vector<std::pair<rt::MissMode, bool>> plan;
    for (rt::MissMode mode : modes) plan.emplace_back(mode, false);
    for (rt::MissMode mode : modes) {
        if (a.oracle && (mode == rt::MissMode::exact || mode == rt::MissMode::soft)) plan.emplace_back(mode, true);
    }
    ModeRun resident;
    resident.mode = "resident";
    std::vector<ModeRun> runs;
    for (double b : budgets) {
        for (const auto& [mode, oracle] : plan) {
            ModeRun r;
            r.mode = fmt::format("{}{}", rt::miss_mode_name(mode), oracle ? "+oracle" : "");
            r.budget = b;
            runs.push_back(r);
        }
    }
    auto pass = [&](ModeRun& r, rt::MissMode mode, double budget, bool oracle) {
        rt::Metrics round;
        for (size_t i = 0; i < prompts.size(); ++i) {
            auto s = fresh_session(mode, budget);
            if (oracle) {
                s->on_predict = [&routes, i, &c = model.config](int64_t step, float* pred) { rt::prediction_from_routes(routes[i].data(), static_cast<int64_t>(routes[i].size()), c, step, pred); };
            }
            s->prefill(prompts[i].data(), static_cast<int64_t>(prompts[i].size()));
            for (int64_t j = 0; j < a.gen_tokens; ++j) {
                if (j > 0) s->decode(tokens[i][static_cast<size_t>(j - 1)]);
                const float* ref = &ref_logits[i][static_cast<size_t>(j * V)];
                r.kl += kl_logits(ref, s->logits(), V);
                r.kl_n += 1;
                if (std::max_element(s->logits(), s->logits() + V) - s->logits() != tokens[i][static_cast<size_t>(j)]) r.identical = false;
            }
            rt::metrics_add(round, s->metrics());
            r.slots = static_cast<uint64_t>(s->store().slot_count());
            r.allocated = s->store().allocated_bytes();
            r.io = s->store().io().describe();
            r.prefetches_dropped += s->store().counters().prefetches_dropped;
            r.evicted_unused += s->store().counters().evicted_unused;
        }
        rt::metrics_add(r.m, round);
        r.round_tok_s.push_back(decode_tok_s(round));
    };
    for (int64_t round = 0; round < a.rounds; ++round) {
        pass(resident, rt::MissMode::resident, 1.0, false);
        size_t n = 0;
        for (double b : budgets) {
            for (const auto& [mode, oracle] : plan) pass(runs[n++], mode, b, oracle);
        }
    }
    for (const ModeRun& r : runs) {
        std::cerr << fmt::format("  {:>3.0f}% {:<12} {:7.1f} tok/s  hit {:.3f}  fallback {:.3f}  stall {:.2f} ms/tok  slack {:.2f} ms (p10 {:.2f})\n",
                                 100 * r.budget, r.mode, r.tok_s(), per_lookup(r.m, r.m.hits), per_lookup(r.m, r.m.fallbacks),
                                 1000 * per_token(r.m, r.m.stall_s), r.m.slack.mean_ms(), r.m.slack.quantile_ms(0.10));
    }

    EagerDecode eager;
    if (a.eager) {
        std::vector<std::vector<int32_t>> cont;
        for (const auto& t : tokens) cont.emplace_back(t.begin(), t.end() - 1);
        eager = eager_decode_in_train_process(model_dir, prompts, cont, threads);
    }

    const double resident_tok_s = resident.tok_s();
    nlohmann::ordered_json j;
    j["model"] = model_dir;
    j["experts_dtype"] = weight_type_name(model.manifest.dtype);
    j["dense_dtype"] = weight_type_name(model.dense_type());
    j["machine"] = fmt::format("{} threads", threads);
    j["prompts"] = prompts.size();
    j["prompt_tokens"] = a.prompt_tokens;
    j["generated_tokens"] = a.gen_tokens;
    j["rounds"] = a.rounds;  // decode tok/s: the median round; rates: over all rounds
    j["expert_bytes_total"] = model.expert_bytes_total();
    j["budget_base_bytes"] = total;  // the budgets' 100%
    j["io"] = resident.io;
    j["sim_read_ms"] = io_sessions.sim_read_ms;
    j["prefetch_threshold"] = a.prefetch_threshold;
    j["page_cache"] = a.buffered ? "dropped with posix_fadvise(DONTNEED) before each session" : "bypassed (O_DIRECT)";
    j["plain_sequential_read_bytes_s"] = plain_bw;
    j["io_engine_read_bytes_s"] = engine_bw;
    j["io_engine_vs_plain"] = engine_bw / plain_bw;
    j["plain_sequential_reads_bytes_s"] = plain_reads;  // the three, in the order taken (alternating with the engine's)
    j["io_engine_reads_bytes_s"] = engine_reads;
    j["resident_decode_tok_s"] = resident_tok_s;
    j["resident_decode_tok_s_rounds"] = resident.round_tok_s;
    if (a.eager) {
        j["libtorch_eager_decode_tok_s"] = eager.seconds > 0 ? static_cast<double>(eager.tokens) / eager.seconds : 0.0;
        j["resident_vs_libtorch"] = resident_tok_s / j["libtorch_eager_decode_tok_s"].get<double>();
    }
    for (const ModeRun& r : runs) {
        const rt::Metrics& m = r.m;
        const double bytes_tok = per_token(m, static_cast<double>(m.bytes_read_decode));
        nlohmann::ordered_json x;
        x["mode"] = r.mode;
        x["budget_percent"] = 100 * r.budget;
        x["expert_slots"] = r.slots;
        x["resident_expert_bytes_allocated"] = r.allocated;
        x["decode_tok_s"] = r.tok_s();  // the median round
        x["decode_tok_s_rounds"] = r.round_tok_s;
        x["hit_rate"] = per_lookup(m, m.hits);
        x["fallback_rate"] = per_lookup(m, m.fallbacks);
        x["late_miss_rate"] = per_lookup(m, m.misses_late);  // misses whose read was under way: the prediction came, the bytes not yet
        // The other causes (rt::Metrics): not among the prediction's top-k for the token, or
        // there under the prefetch threshold; the rest of the misses were named above it.
        x["unnamed_miss_rate"] = per_lookup(m, m.misses_unnamed);
        x["below_bar_miss_rate"] = per_lookup(m, m.misses_below_bar);
        // Each MoE layer looks up the same k experts per token: its share of the lookups is 1/L.
        x["miss_rate_by_layer"] = nlohmann::ordered_json::array();
        for (uint64_t n : m.misses_by_layer) x["miss_rate_by_layer"].push_back(per_lookup(m, n) * static_cast<double>(m.misses_by_layer.size()));
        x["prefetches_dropped"] = r.prefetches_dropped;  // refused: no slot held a lower score
        x["experts_evicted_unused"] = r.evicted_unused;  // read, then evicted before any use
        x["stall_ms_per_token"] = 1000 * per_token(m, m.stall_s);
        // Pipeline slack of the prefetched pairs decode used (negative: late, waited for).
        x["prefetches_used"] = m.slack.n;
        x["slack_ms_mean"] = m.slack.mean_ms();
        x["slack_ms_p10"] = m.slack.quantile_ms(0.10);
        x["bytes_read_per_token"] = bytes_tok;
        if (bytes_tok > 0) {
            x["disk_bound_tok_s"] = plain_bw / bytes_tok;
        } else {
            x["disk_bound_tok_s"] = nullptr;
        }
        x["kl_from_resident"] = r.kl / std::max<double>(1, static_cast<double>(r.kl_n));
        x["tokens_identical_to_resident"] = r.identical;
        x["lookahead_recall"] = m.lookahead_total ? static_cast<double>(m.lookahead_named) / static_cast<double>(m.lookahead_total) : 0.0;
        x["prefill_tok_s"] = m.prefill_s > 0 ? static_cast<double>(m.prompt_tokens) / m.prefill_s : 0.0;
        j["runs"].push_back(x);
    }
    // The ratios the targets are stated in.
    for (double b : budgets) {
        std::map<std::string, double> tok_s;  // mode -> decode tok/s at this budget (0: not run)
        for (const ModeRun& r : runs) {
            if (r.budget == b) tok_s[r.mode] = r.tok_s();
        }
        const double exact = tok_s["exact"], lru = tok_s["lru"], soft = tok_s["soft"];
        const double exact_oracle = tok_s["exact+oracle"], soft_oracle = tok_s["soft+oracle"];
        nlohmann::ordered_json x;
        x["budget_percent"] = 100 * b;
        if (exact > 0 && lru > 0) x["exact_vs_lru"] = exact / lru;
        // exact computes what resident computes and may also wait, so this is its ceiling.
        if (lru > 0) x["resident_vs_lru"] = resident_tok_s / lru;
        if (soft > 0) x["soft_vs_resident"] = soft / resident_tok_s;
        if (exact_oracle > 0 && lru > 0) x["exact_oracle_vs_lru"] = exact_oracle / lru;
        if (soft_oracle > 0) x["soft_oracle_vs_resident"] = soft_oracle / resident_tok_s;
        j["ratios"].push_back(x);
    }
    std::string md = fmt::format(
        "Model `{}` (experts {}, dense {}), {} held-out prompts x {} tokens, {} generated tokens each (teacher-forced on the resident run), {}; {}. "
        "Decode tok/s: the median of {} interleaved passes per side; rates counted over all of them.\n\n"
        "| | figure |\n|---|---:|\n| resident decode (runtime) | {:.1f} tok/s |\n",
        model_dir, weight_type_name(model.manifest.dtype), weight_type_name(model.dense_type()), prompts.size(), a.prompt_tokens, a.gen_tokens, j["machine"].get<std::string>(), resident.io, a.rounds, resident_tok_s);
    if (a.eager) {
        md += fmt::format("| libtorch eager decode, same weights | {:.1f} tok/s |\n| runtime / libtorch | {:.2f}x |\n",
                          j["libtorch_eager_decode_tok_s"].get<double>(), j["resident_vs_libtorch"].get<double>());
    }
    md += fmt::format("| plain sequential read of the packs (cold, median of 3) | {:.0f} MB/s |\n| IO engine reading all experts (median of 3, alternating) | {:.0f} MB/s ({:.0f}%) |\n\n",
                      plain_bw / 1e6, engine_bw / 1e6, 100 * engine_bw / plain_bw);
    md += "| budget | mode | decode tok/s | hit rate | fallback rate | stall ms/tok | slack ms mean / p10 | read KB/tok | disk bound tok/s | KL vs resident | same tokens |\n"
          "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";
    for (const auto& x : j["runs"]) {
        const std::string slack = x["prefetches_used"].get<uint64_t>() == 0
                                      ? std::string("-")
                                      : fmt::format("{:.2f} / {:.2f}", x["slack_ms_mean"].get<double>(), x["slack_ms_p10"].get<double>());
        md += fmt::format("| {:.0f}% | {} | {:.1f} | {:.3f} | {:.3f} | {:.2f} | {} | {:.0f} | {} | {:.2e} | {} |\n", x["budget_percent"].get<double>(),
                          x["mode"].get<std::string>(), x["decode_tok_s"].get<double>(), x["hit_rate"].get<double>(),
                          x["fallback_rate"].get<double>(), x["stall_ms_per_token"].get<double>(), slack,
                          x["bytes_read_per_token"].get<double>() / 1e3,
                          x["disk_bound_tok_s"].is_null() ? std::string("-") : fmt::format("{:.0f}", x["disk_bound_tok_s"].get<double>()),
                          x["kl_from_resident"].get<double>(), x["tokens_identical_to_resident"].get<bool>() ? "yes" : "no");
    }
    // Why the misses missed (rt::Metrics), as rates per lookup, and each layer's miss rate.
    md += "\n| budget | mode | miss rate | read under way | not named | named under the bar | named, not resident | miss rate by layer |\n"
          "|---:|---|---:|---:|---:|---:|---:|---|\n";
    for (const auto& x : j["runs"]) {
        const double miss = 1.0 - x["hit_rate"].get<double>(), late = x["late_miss_rate"].get<double>();
        const double unnamed = x["unnamed_miss_rate"].get<double>(), below = x["below_bar_miss_rate"].get<double>();
        std::string layers;
        for (const auto& r : x["miss_rate_by_layer"]) layers += fmt::format("{}{:.3f}", layers.empty() ? "" : " / ", r.get<double>());
        md += fmt::format("| {:.0f}% | {} | {:.3f} | {:.3f} | {:.3f} | {:.3f} | {:.3f} | {} |\n", x["budget_percent"].get<double>(),
                          x["mode"].get<std::string>(), miss, late, unnamed, below, std::max(0.0, miss - late - unnamed - below), layers);
    }
    auto ratio = [](const nlohmann::ordered_json& x, const char* key) {
        return x.contains(key) ? fmt::format("{:.2f}x", x[key].get<double>()) : std::string("-");
    };
    md += a.oracle ? "\n| budget | exact / lru | resident / lru (exact's ceiling) | soft / resident | exact+oracle / lru | soft+oracle / resident |\n"
                     "|---:|---:|---:|---:|---:|---:|\n"
                   : "\n| budget | exact / lru | resident / lru (exact's ceiling) | soft / resident |\n|---:|---:|---:|---:|\n";
    for (const auto& x : j["ratios"]) {
        md += fmt::format("| {:.0f}% | {} | {} | {} |", x["budget_percent"].get<double>(), ratio(x, "exact_vs_lru"), ratio(x, "resident_vs_lru"),
                          ratio(x, "soft_vs_resident"));
        md += a.oracle ? fmt::format(" {} | {} |\n", ratio(x, "exact_oracle_vs_lru"), ratio(x, "soft_oracle_vs_resident")) : "\n";
    }
    std::cout << md;
    md_out = md;
    return j;
}

// The model itself when packed so; else DIR-TYPE beside it: its config, tokenizer, intent classifier and (hard-linked) master
// weights, packed as `experts` / `dense` with the model's clusters. Reused when its manifest
// already says these types; rebuilt otherwise.
std::string pack_variant(const std::string& model_dir, WeightType experts, WeightType dense) {
    namespace fs = std::filesystem;
    std::string base = model_dir;
    while (base.size() > 1 && base.back() == '/') base.pop_back();
    const std::string dir = base + "-" + weight_type_name(experts) + (dense != experts ? std::string("-dense-") + weight_type_name(dense) : "");
    const Checkpoint src = checkpoint_open(base);
    const PackManifest m = pack_manifest_load(base, src.config);
    if (m.dtype == experts && m.dense.dtype == dense) return base;  // the model itself
    if (file_exists(dir + "/cluster_manifest.json")) {
        try {
            const PackManifest v = pack_manifest_load(dir, src.config);
            if (v.dtype == experts && v.dense.dtype == dense && v.clusters == m.clusters &&
                fs::file_size(dir + "/model.safetensors") == fs::file_size(base + "/model.safetensors")) {
                return dir;
            }
        } catch (const Error&) {
        }  // rebuilt below
    }
    fs::remove_all(dir);
    dir_create(dir);
    for (const char* f : {"config.json", "tokenizer.model", "intent.json", "intent.safetensors"}) {
        if (file_exists(base + "/" + f)) fs::copy_file(base + "/" + f, dir + "/" + f);
    }
    std::error_code ec;
    fs::create_hard_link(base + "/model.safetensors", dir + "/model.safetensors", ec);
    if (ec) fs::copy_file(base + "/model.safetensors", dir + "/model.safetensors");
    ClusterPlan plan;
    plan.clusters = m.clusters;
    pack_write(checkpoint_open(dir), plan, experts, dense);
    std::cerr << fmt::format("packed {} (experts {}, dense {})\n", dir, weight_type_name(experts), weight_type_name(dense));
    return dir;
}

void run_offload(const OffloadArgs& a) {
    if (a.dtypes.empty() && a.dense_dtype != "same") fail("--dense-dtype applies with --dtype (the packs that comparison makes)");
    if (a.dtypes.empty()) {
        std::string md;
        const nlohmann::ordered_json j = run_offload_model(a, a.model, 0, md);
        if (!a.json.empty()) file_write_atomic(a.json, j.dump(2) + "\n");
        if (!a.markdown.empty()) file_write_atomic(a.markdown, md);
        return;
    }
    // One run per stored type, budgets in bytes of the f32 experts.
    std::vector<WeightType> types;
    for (const std::string& item : cli_split_list(a.dtypes, "--dtype")) {
        std::optional<WeightType> t = weight_type_parse(item);
        if (!t) fail("--dtype: '{}' is not f32, bf16, f16, q8 or q4", item);
        types.push_back(*t);
    }
    std::optional<WeightType> dense_fixed;
    if (a.dense_dtype != "same") {
        dense_fixed = weight_type_parse(a.dense_dtype);
        if (!dense_fixed) fail("--dense-dtype: '{}' is not same, f32, bf16, f16, q8 or q4", a.dense_dtype);
    }
    const Checkpoint src = checkpoint_open(a.model);
    const ModelConfig& c = src.config;
    const uint64_t f32_bytes = static_cast<uint64_t>(c.n_moe_layers() * c.n_routed_experts) *
                               pack_expert_bytes(WeightType::f32, c.hidden_size, c.moe_intermediate_size);
    nlohmann::ordered_json all;
    all["budget_base"] = "percent of the f32 expert bytes";
    all["budget_base_bytes"] = f32_bytes;
    std::string md_all;
    for (WeightType t : types) {
        const std::string dir = pack_variant(a.model, t, dense_fixed.value_or(t));
        std::string md;
        all["formats"].push_back(run_offload_model(a, dir, f32_bytes, md));
        md_all += md + "\n";
    }
    // The comparison: each format's tok/s and bytes read per token at each budget and mode.
    std::string cmp = "| budget (of f32 expert bytes) | mode |";
    std::string rule = "|---:|---|";
    for (const auto& f : all["formats"]) {
        cmp += fmt::format(" {} / {} tok/s | KB/tok |", f["experts_dtype"].get<std::string>(), f["dense_dtype"].get<std::string>());
        rule += "---:|---:|";
    }
    cmp += "\n" + rule + "\n| - | resident |";
    for (const auto& f : all["formats"]) cmp += fmt::format(" {:.1f} | 0 |", f["resident_decode_tok_s"].get<double>());
    cmp += "\n";
    const auto& runs0 = all["formats"][0]["runs"];
    for (size_t i = 0; i < runs0.size(); ++i) {
        cmp += fmt::format("| {:.0f}% | {} |", runs0[i]["budget_percent"].get<double>(), runs0[i]["mode"].get<std::string>());
        for (const auto& f : all["formats"]) {
            const auto& x = f["runs"][i];
            cmp += fmt::format(" {:.1f} | {:.0f} |", x["decode_tok_s"].get<double>(), x["bytes_read_per_token"].get<double>() / 1e3);
        }
        cmp += "\n";
    }
    std::cout << "\n" << cmp;
    md_all += cmp;
    if (!a.json.empty()) file_write_atomic(a.json, all.dump(2) + "\n");
    if (!a.markdown.empty()) file_write_atomic(a.markdown, md_all);
}

}  // namespace

void cmd_bench_offload_register(CLI::App& bench) {
    auto a = std::make_shared<OffloadArgs>();
    CLI::App* o = bench.add_subcommand("offload", "offloaded decode: resident vs libtorch, exact/soft/lru at RAM budgets, IO bandwidth");
    o->add_option("--model", a->model, "checkpoint directory with packed experts")->required();
    o->add_option("--data", a->data, "held-out JSONL with \"text\" (prompts are its first tokens)")->required();
    o->add_option("--prompts", a->prompts, "number of prompts")->capture_default_str()->check(cli_range(1, 100000));
    o->add_option("--prompt-tokens", a->prompt_tokens, "tokens per prompt")->capture_default_str()->check(cli_range(1, 1 << 20));
    o->add_option("--gen-tokens", a->gen_tokens, "tokens generated per prompt")->capture_default_str()->check(cli_range(1, 1 << 20));
    o->add_option("--rounds", a->rounds, "passes over the prompts per side, interleaved; tok/s is the median pass, counts are summed")
        ->capture_default_str()->check(cli_range(1, 1000));
    o->add_option("--budgets", a->budgets, "RAM budgets in percent of expert bytes")->capture_default_str();
    o->add_option("--modes", a->modes, "modes compared at each budget")->capture_default_str();
    o->add_flag("--buffered", a->buffered, "buffered reads (page cache dropped before each session) instead of O_DIRECT");
    o->add_flag("!--no-eager", a->eager, "skip the libtorch eager comparison");
    o->add_option("--prefetch-threshold", a->prefetch_threshold, "lookahead score a prediction needs to be read (as in generate)")
        ->capture_default_str()->check(cli_range(0, 1));
    o->add_option("--sim-read-ms", a->sim_read_ms, "simulate a slow disk: no expert read of the sessions completes sooner than this "
                                                   "after it was issued (default: $CHRONOS_SIM_READ_MS, else 0)")
        ->check(cli_range(0, rt::kSimReadMsMax));
    o->add_flag("--oracle", a->oracle, "also run exact and soft with the resident run's routing as the lookahead's predictions (a perfect predictor's bound)");
    o->add_option("--dtype", a->dtypes, "compare stored weight types (e.g. f32,bf16,q8,q4): one run each on DIR-TYPE, packed when missing; "
                                        "budgets in percent of the f32 expert bytes");
    o->add_option("--dense-dtype", a->dense_dtype, "with --dtype: the dense matrices' type, or same (as the experts)")->capture_default_str();
    o->add_option("--json", a->json, "write the results as JSON");
    o->add_option("--markdown", a->markdown, "write the tables as Markdown");
    o->callback([a]() { run_offload(*a); });
}

}  // namespace chronos
