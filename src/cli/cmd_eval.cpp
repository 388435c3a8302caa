// cmd_eval.cpp: `chronos eval ppl|routing|responses|logits`.
#include <fmt/format.h>

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/options.h"
#include "train/train_api.h"

namespace chronos {

namespace {

struct EvalArgs {
    std::string model, data, text, out;
    int64_t seq_len = 256;
    int64_t max_tokens = 0;
    bool json = false;
};

void add_common(CLI::App* cmd, EvalArgs& a) {
    cmd->add_option("--model", a.model, "checkpoint directory")->required();
    cmd->add_option("--data", a.data, "pretraining-format JSONL")->required();
    cmd->add_option("--seq-len", a.seq_len, "window length")->capture_default_str()->check(CLI::Range(2, 1 << 20));
    cmd->add_option("--max-tokens", a.max_tokens, "evaluate at most this many tokens (0: all)")->capture_default_str()->check(cli_range(0, 1e12));
    cmd->add_flag("--json", a.json, "print JSON");
}

}  // namespace

void cmd_eval_register(CLI::App& app) {
    CLI::App* ev = app.add_subcommand("eval", "evaluate a checkpoint");
    ev->require_subcommand(1);

    auto ppl = std::make_shared<EvalArgs>();
    CLI::App* p = ev->add_subcommand("ppl", "held-out perplexity");
    add_common(p, *ppl);
    auto engine = std::make_shared<std::string>("torch");
    p->add_option("--engine", *engine, "torch: the libtorch model on model.safetensors (runtime: the packed weights, run by `chronos`)")
        ->check(CLI::IsMember({"torch"}))->capture_default_str();
    p->callback([ppl]() {
        EvalPplResult r = eval_ppl(ppl->model, ppl->data, ppl->seq_len, ppl->max_tokens);
        if (ppl->json) {
            std::cout << nlohmann::json{{"loss", r.loss}, {"ppl", r.ppl}, {"tokens", r.tokens}}.dump(2) << "\n";
        } else {
            std::cout << fmt::format("tokens {}  loss {:.4f}  perplexity {:.3f}\n", r.tokens, r.loss, r.ppl);
        }
    });

    auto rt = std::make_shared<EvalArgs>();
    CLI::App* r = ev->add_subcommand("routing", "switch rate, lookahead recall@k, expert load");
    add_common(r, *rt);
    auto trace = std::make_shared<std::string>();
    auto budget = std::make_shared<double>(0.25);
    r->add_option("--trace", *trace, "trace: also report the intent classifier against the frequency baseline");
    r->add_option("--budget", *budget, "intent budget as a share of all (layer, expert) pairs")->capture_default_str()->check(cli_range(0.01, 1.0));
    r->callback([rt, trace, budget]() {
        EvalRoutingResult res = eval_routing(rt->model, rt->data, rt->seq_len, rt->max_tokens);
        IntentMetrics im;
        if (!trace->empty()) im = intent_eval(rt->model, *trace, *budget, 0.2);
        if (rt->json) {
            nlohmann::json j{{"tokens", res.tokens}, {"switch_rate", res.switch_rate}, {"switch_rate_mean", res.switch_rate_mean},
                             {"lookahead_recall", res.lookahead_recall}, {"lookahead_recall_layer", res.lookahead_recall_layer},
                             {"copy_recall", res.copy_recall}, {"load", res.load}};
            if (!trace->empty()) {
                j["intent"] = {{"budget", im.budget}, {"recall", im.recall}, {"precision", im.precision}, {"frequency_recall", im.freq_recall},
                               {"frequency_precision", im.freq_precision}, {"eval_prompts", im.eval_prompts},
                               {"reads_median", im.reads_median}, {"reads_mean", im.reads_mean}};
            }
            std::cout << j.dump(2) << "\n";
            return;
        }
        std::cout << fmt::format("tokens {}\nswitch rate: mean {:.4f}  per layer", res.tokens, res.switch_rate_mean);
        for (double s : res.switch_rate) std::cout << fmt::format(" {:.4f}", s);
        std::cout << "\n";
        for (size_t k = 0; k < res.lookahead_recall.size(); ++k) {
            std::cout << fmt::format("lookahead recall@top-k at t+{}: {:.4f}  per layer", k + 1, res.lookahead_recall[k]);
            for (double v : res.lookahead_recall_layer[k]) std::cout << fmt::format(" {:.4f}", v);
            std::cout << "\n";
        }
        for (size_t j = 0; j < res.copy_recall.size(); ++j) {
            std::cout << fmt::format("copy recall (t's experts at t+{}): {:.4f}{}\n", j + 1, res.copy_recall[j],
                                     j > 0 && j <= res.lookahead_recall.size() ? fmt::format("  (the head's reference at t+{})", j) : "");
        }
        std::cout << "expert load (share of assignments):\n";
        for (size_t l = 0; l < res.load.size(); ++l) {
            std::cout << fmt::format("  layer {}:", l);
            for (double v : res.load[l]) std::cout << fmt::format(" {:.3f}", v);
            std::cout << "\n";
        }
        if (!trace->empty()) print_intent_metrics(im);
    });

    auto rs = std::make_shared<EvalArgs>();
    auto ref = std::make_shared<std::string>();
    auto batches = std::make_shared<int64_t>(16);
    CLI::App* re = ev->add_subcommand("responses", "held-out reply cross-entropy, preference accuracy and router drift (the stages' figures)");
    re->add_option("--model", rs->model, "checkpoint directory")->required();
    re->add_option("--data", rs->data, "sft or preference JSONL (e.g. data/prepared/sft.validation.jsonl)")->required();
    re->add_option("--reference", *ref, "a checkpoint to measure the router's drift from (e.g. the pretrained model)");
    re->add_option("--seq-len", rs->seq_len, "longest sequence; longer ones are cut")->capture_default_str()->check(CLI::Range(2, 1 << 20));
    re->add_option("--batches", *batches, "batches of 8 records, from the start of the file")->capture_default_str()->check(cli_range(1, 1e6));
    re->add_flag("--json", rs->json, "print JSON");
    re->callback([rs, ref, batches]() {
        const nlohmann::json r = eval_responses(rs->model, rs->data, *ref, rs->seq_len, *batches, 8);
        if (rs->json) {
            std::cout << r.dump(2) << "\n";
            return;
        }
        for (const auto& [k, v] : r.items()) std::cout << k << " " << v.dump() << "\n";
    });

    auto rw = std::make_shared<EvalArgs>();
    auto limit = std::make_shared<int64_t>(0);
    auto max_new = std::make_shared<int64_t>(24);
    auto samples = std::make_shared<int64_t>(0);
    CLI::App* rwd = ev->add_subcommand("reward", "greedy exact-match reward on verifiable prompts (GRPO's figure)");
    rwd->add_option("--model", rw->model, "checkpoint directory")->required();
    rwd->add_option("--data", rw->data, "prompts JSONL (e.g. data/prepared/prompts.validation.jsonl)")->required();
    rwd->add_option("--limit", *limit, "the first N records (0: all)")->capture_default_str()->check(cli_range(0, 1e9));
    rwd->add_option("--max-new-tokens", *max_new, "longest completion")->capture_default_str()->check(cli_range(1, 1 << 20));
    rwd->add_option("--samples", *samples, "also print the first N prompts, answers and completions")->capture_default_str()->check(cli_range(0, 1e6));
    rwd->add_flag("--json", rw->json, "print JSON");
    rwd->callback([rw, limit, max_new, samples]() {
        const nlohmann::json r = eval_reward(rw->model, rw->data, *limit, *max_new, *samples);
        if (rw->json) {
            std::cout << r.dump(2) << "\n";
            return;
        }
        for (const auto& [k, v] : r.items()) std::cout << k << " " << v.dump() << "\n";
    });

    auto lg = std::make_shared<EvalArgs>();
    CLI::App* l = ev->add_subcommand("logits", "write every position's logits as JSON");
    l->add_option("--model", lg->model, "checkpoint directory")->required();
    l->add_option("--text", lg->text, "text to run")->required();
    l->add_option("--out", lg->out, "output JSON file")->required();
    l->callback([lg]() {
        eval_logits(lg->model, lg->text, lg->out);
        std::cout << "wrote " << lg->out << "\n";
    });
}

}  // namespace chronos
