// cmd_pack.cpp: `chronos trace`, `chronos pack` and `chronos train intent`.
#include <fmt/format.h>

#include <algorithm>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/options.h"
#include "cluster/coactivation.h"
#include "format/trace.h"
#include "core/error.h"
#include "core/file_io.h"
#include "format/pack.h"
#include "train/train_api.h"

namespace chronos {

namespace {

struct PackArgs {
    std::string model, trace, dtype = "", dense_dtype = "f32";
    double max_cluster_mb = 64;
    int64_t window = 4;
    double resolution = 1.0;
    uint64_t seed = 1;
    bool verify = false;
};

void print_intent(const IntentMetrics& m) {
    std::cout << fmt::format("held-out prompts {} (trained on {}), budget {} pairs\n", m.eval_prompts, m.train_prompts, m.budget);
    std::cout << fmt::format("  intent classifier:  recall {:.4f}  precision {:.4f}\n", m.recall, m.precision);
    std::cout << fmt::format("  frequency baseline: recall {:.4f}  precision {:.4f}\n", m.freq_recall, m.freq_precision);
    if (m.reads_median >= 0) {
        std::cout << fmt::format("  sequential pack reads for a prompt's predicted set: median {}, mean {:.2f}\n", m.reads_median, m.reads_mean);
    }
}

}  // namespace

void cmd_pack_register(CLI::App& app) {
    auto t = std::make_shared<TraceOptions>();
    CLI::App* tr = app.add_subcommand("trace", "record every token's experts over a calibration set");
    tr->add_option("--model", t->model, "checkpoint directory")->required();
    tr->add_option("--data", t->data, "sft, prompts or pretrain JSONL")->required();
    tr->add_option("--out", t->out, "trace file (.ctrc)")->required();
    tr->add_option("--max-sequences", t->max_sequences, "sequences to record")->capture_default_str()->check(cli_range(1, 1e9));
    tr->add_option("--max-continuation", t->max_continuation, "continuation tokens per sequence")->capture_default_str()->check(cli_range(1, 1 << 20));
    tr->add_option("--stride", t->stride, "record every stride-th record of --data (a sample spread over its sources)")->capture_default_str()->check(cli_range(1, 1e9));
    tr->add_option("--prompt-tokens", t->pretrain_prompt, "prompt length for plain-text records")->capture_default_str()->check(cli_range(1, 1 << 20));
    tr->callback([t]() {
        file_out_check(t->out, "--out", t->data, "--data");
        int64_t n = trace_record(*t);
        Trace tr = trace_read(t->out);
        std::cout << fmt::format("wrote {}: {} sequences, {} tokens, {} layers x {} experts, top-{}\n", t->out, n, tr.tokens(),
                                 tr.shape.layers, tr.shape.experts, tr.shape.top_k);
    });

    auto a = std::make_shared<PackArgs>();
    CLI::App* pk = app.add_subcommand("pack", "cluster experts and write .ctsr packs + cluster_manifest.json");
    pk->add_option("--model", a->model, "checkpoint directory")->required();
    pk->add_option("--trace", a->trace, "trace for co-activation clustering (without: one cluster per layer)");
    pk->add_option("--dtype", a->dtype, "stored expert type: f32, bf16, f16, q8 or q4 (default: config's expert_dtype)")
        ->check(CLI::IsMember({"f32", "bf16", "f16", "q8", "q4"}));
    pk->add_option("--dense-dtype", a->dense_dtype, "stored type of the dense matrices the runtime multiplies with "
                   "(attention, shared experts, embeddings, head): f32, bf16, f16, q8 or q4")
        ->capture_default_str()->check(CLI::IsMember({"f32", "bf16", "f16", "q8", "q4"}));
    pk->add_option("--max-cluster-mb", a->max_cluster_mb, "cap on one cluster's bytes")->capture_default_str()->check(cli_range(0, 1e6, true));
    pk->add_option("--window", a->window, "reuse window in tokens for the co-activation graph")->capture_default_str()->check(cli_range(1, 1 << 20));
    pk->add_option("--resolution", a->resolution, "Louvain resolution")->capture_default_str()->check(cli_range(0, 1000, true));
    pk->add_option("--seed", a->seed, "Louvain seed")->capture_default_str();
    pk->add_flag("--verify", a->verify, "re-read every expert and check its checksum (alone: verify existing packs)");
    pk->callback([a, pk]() {
        Checkpoint ck = checkpoint_open(a->model);
        const ModelConfig& c = ck.config;
        // `--verify` alone checks the existing packs (and fails if there are none).
        const bool only_verify = a->verify && a->trace.empty() && pk->count("--dtype") == 0 && pk->count("--dense-dtype") == 0;
        if (!only_verify) {
            const WeightType dtype = a->dtype.empty() ? c.expert_dtype : *weight_type_parse(a->dtype);
            const WeightType dense = *weight_type_parse(a->dense_dtype);
            const uint64_t expert_bytes = pack_expert_bytes(dtype, c.hidden_size, c.moe_intermediate_size);
            ClusterPlan plan;
            if (a->trace.empty()) {
                plan = cluster_plan_natural(c.n_moe_layers(), c.n_routed_experts);
            } else {
                Trace trace = trace_read(a->trace);
                if (trace.shape.layers != c.n_moe_layers() || trace.shape.experts != c.n_routed_experts) {
                    fail("{}: trace is for {} layers x {} experts, the model has {} x {}", a->trace, trace.shape.layers, trace.shape.experts,
                         c.n_moe_layers(), c.n_routed_experts);
                }
                CoactivationGraph g = coactivation_build(trace, {a->window, 1.0});
                std::vector<int64_t> membership = louvain_communities(g, a->resolution, a->seed);
                plan = cluster_plan_build(g, membership, c.n_routed_experts, expert_bytes,
                                          static_cast<uint64_t>(a->max_cluster_mb * 1024 * 1024));
            }
            PackManifest m = pack_write(ck, plan, dtype, dense);
            std::vector<size_t> sizes;
            for (const auto& cl : m.clusters) sizes.push_back(cl.size());
            std::sort(sizes.begin(), sizes.end());
            std::cout << fmt::format("wrote {} clusters ({} experts of {} bytes as {}, {}): sizes min {} median {} max {}\n", m.files.size(),
                                     m.entries.size(), expert_bytes, weight_type_name(dtype), a->trace.empty() ? "natural order" : "Louvain",
                                     sizes.front(), sizes[sizes.size() / 2], sizes.back());
            if (!m.dense.path.empty()) {
                std::cout << fmt::format("wrote the dense matrices as {}: {} bytes ({})\n", weight_type_name(dense), m.dense.bytes, m.dense.path);
            }
        }
        if (a->verify) {
            pack_verify(a->model, c);
            std::cout << "verified every expert's checksum\n";
        }
    });
}

void cmd_intent_register(CLI::App& train) {
    auto o = std::make_shared<IntentOptions>();
    CLI::App* in = train.add_subcommand("intent", "train the intent classifier from a trace (saved into the checkpoint)");
    in->add_option("--model", o->model, "checkpoint directory")->required();
    in->add_option("--trace", o->trace, "trace from chronos trace")->required();
    in->add_option("--horizon", o->horizon, "generated tokens the prediction covers")->capture_default_str()->check(cli_range(1, 1 << 20));
    in->add_option("--hidden", o->hidden, "hidden width")->capture_default_str()->check(cli_range(1, 1 << 16));
    in->add_option("--steps", o->steps, "training steps")->capture_default_str()->check(cli_range(1, 1e9));
    in->add_option("--lr", o->lr, "learning rate")->capture_default_str()->check(cli_range(0, 10, true));
    in->add_option("--seed", o->seed, "seed")->capture_default_str();
    in->callback([o]() {
        IntentMetrics m = intent_train(*o);
        std::cout << fmt::format("saved {}/intent.safetensors\n", o->model);
        print_intent(m);
    });
}

void print_intent_metrics(const IntentMetrics& m) { print_intent(m); }

}  // namespace chronos
