// cmd_bench_policy.cpp: `chronos bench policy` — a recorded routing trace replayed offline
// through LRU, the runtime's replacement policy (the same Residency object the expert store
// asks) and Belady's MIN, at each budget: the hit rates a tier of that size reaches without
// reading ahead, and how close the runtime's policy comes to the best possible.
#include <fmt/format.h>

#include <cmath>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/options.h"
#include "format/trace.h"
#include "core/error.h"
#include "core/file_io.h"
#include "runtime/policy_replay.h"
#include "runtime/session.h"

namespace chronos {

namespace {

struct PolicyArgs {
    std::string trace, budgets = "10,15,20,25,35,50", json, markdown;
    float reuse_prior = rt::SessionOptions{}.reuse_prior;
};

void run_policy(const PolicyArgs& a) {
    const std::vector<double> budgets = cli_percent_list(a.budgets, "--budgets");
    const Trace trace = trace_read(a.trace);
    if (trace.tokens() == 0) fail("{}: the trace holds no tokens to replay", a.trace);
    const int64_t pairs = static_cast<int64_t>(trace.shape.layers) * trace.shape.experts;
    const int64_t per_token = static_cast<int64_t>(trace.shape.layers) * trace.shape.top_k;
    nlohmann::ordered_json j;
    j["trace"] = a.trace;
    j["layers"] = trace.shape.layers;
    j["experts"] = trace.shape.experts;
    j["top_k"] = trace.shape.top_k;
    j["sequences"] = trace.sequences.size();
    j["tokens"] = trace.tokens();
    j["reuse_prior"] = a.reuse_prior;
    std::string md = fmt::format(
        "Trace `{}`: {} sequences, {} tokens; {} layers x {} experts, top-{} ({} pairs per token). Every sequence starts with an "
        "empty tier; a lookup is a hit if its pair is resident when its layer asks, and a layer's own pairs stay while it computes.\n\n"
        "| budget | slots | LRU | runtime policy | MIN | runtime / MIN | runtime / LRU |\n|---:|---:|---:|---:|---:|---:|---:|\n",
        a.trace, trace.sequences.size(), trace.tokens(), trace.shape.layers, trace.shape.experts, trace.shape.top_k, per_token);
    for (double b : budgets) {
        const int64_t slots = static_cast<int64_t>(std::floor(static_cast<double>(pairs) * b / 100.0));
        if (slots < trace.shape.top_k)
            fail("--budgets: {}% of {} pairs is {} slot(s), fewer than one layer's {} experts", b, pairs, slots, trace.shape.top_k);
        const double lru = rt::policy_replay(trace, slots, rt::ReplayPolicy::lru, a.reuse_prior).hit_rate();
        const double ours = rt::policy_replay(trace, slots, rt::ReplayPolicy::chronos, a.reuse_prior).hit_rate();
        const double best = rt::policy_replay(trace, slots, rt::ReplayPolicy::min, a.reuse_prior).hit_rate();
        j["runs"].push_back({{"budget_percent", b}, {"slots", slots}, {"lru", lru}, {"runtime", ours}, {"min", best}});
        auto ratio = [](double x, double y) { return y > 0 ? fmt::format("{:.2f}", x / y) : std::string("-"); };
        md += fmt::format("| {:g}% | {} | {:.3f} | {:.3f} | {:.3f} | {} | {} |\n", b, slots, lru, ours, best, ratio(ours, best), ratio(ours, lru));
    }
    std::cout << md;
    if (!a.json.empty()) file_write_atomic(a.json, j.dump(2) + "\n");
    if (!a.markdown.empty()) file_write_atomic(a.markdown, md);
}

}  // namespace

void cmd_bench_policy_register(CLI::App& bench) {
    auto a = std::make_shared<PolicyArgs>();
    CLI::App* p = bench.add_subcommand("policy", "replay a routing trace through LRU, the runtime's replacement policy and Belady's MIN");
    p->add_option("--trace", a->trace, "routing trace (chronos trace)")->required();
    p->add_option("--budgets", a->budgets, "tier sizes in percent of all (layer, expert) pairs")->capture_default_str();
    p->add_option("--reuse-prior", a->reuse_prior, "the runtime policy's reuse prior (as SessionOptions)")->capture_default_str()
        ->check(cli_range(0, 1));
    p->add_option("--json", a->json, "write the hit rates as JSON");
    p->add_option("--markdown", a->markdown, "write the table as Markdown");
    p->callback([a]() { run_policy(*a); });
}

}  // namespace chronos
