// cmd_eval_runtime.cpp: `chronos eval ppl --engine runtime` — held-out perplexity computed by
// the native runtime on the packed weights (any stored type), optionally with the KL divergence
// from a reference checkpoint. Runs in the lean process; `eval` otherwise runs in chronos-train.
#include <fmt/format.h>

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/error.h"
#include "data/token_stream.h"
#include "runtime/evaluate.h"
#include "runtime/model.h"
#include "tokenizer/tokenizer.h"

namespace chronos {

namespace {

struct EvalRuntimeArgs {
    std::string model, data, reference, engine = "runtime", path = "decode";
    int64_t seq_len = 256, max_tokens = 0;
    bool json = false;
};

}  // namespace

bool eval_runs_in_runtime(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--engine=runtime" || (a == "--engine" && i + 1 < argc && std::string(argv[i + 1]) == "runtime")) return true;
    }
    return false;
}

void cmd_eval_runtime_register(CLI::App& app) {
    CLI::App* ev = app.add_subcommand("eval", "evaluate a checkpoint: ppl, routing, logits (in chronos-train, except ppl --engine runtime)");
    ev->require_subcommand(1);
    auto a = std::make_shared<EvalRuntimeArgs>();
    CLI::App* p = ev->add_subcommand("ppl", "held-out perplexity");
    p->add_option("--model", a->model, "checkpoint directory (its packs hold the weights evaluated)")->required();
    p->add_option("--data", a->data, "pretraining-format JSONL")->required();
    p->add_option("--engine", a->engine, "runtime: the native runtime on the packed weights (torch: libtorch, in chronos-train)")
        ->check(CLI::IsMember({"runtime"}))->capture_default_str();
    p->add_option("--path", a->path, "decode: token by token, as generation runs; prefill: each window as one prompt")
        ->check(CLI::IsMember({"decode", "prefill"}))->capture_default_str();
    p->add_option("--reference", a->reference, "another checkpoint (e.g. the model packed f32): also report KL(reference || model)");
    p->add_option("--seq-len", a->seq_len, "window length")->capture_default_str()->check(CLI::Range(1, 1 << 20));
    p->add_option("--max-tokens", a->max_tokens, "evaluate at most this many tokens (0: all)")->capture_default_str()->check(cli_range(0, 1e12));
    p->add_flag("--json", a->json, "print JSON");
    p->callback([a]() {
        rt::Model model(a->model);
        if (model.tokenizer_path.empty()) fail("{}: no tokenizer.model in the checkpoint", a->model);
        std::unique_ptr<rt::Model> ref;
        if (!a->reference.empty()) ref = std::make_unique<rt::Model>(a->reference);
        Tokenizer tok(model.tokenizer_path);
        tok.check_fits(model.config.vocab_size, a->model);
        const std::vector<int32_t> tokens = tokens_load_pretrain(a->data, tok);
        rt::EvalOptions o;
        o.seq_len = a->seq_len;
        o.max_tokens = a->max_tokens;
        o.path = a->path == "prefill" ? rt::EvalPath::prefill : rt::EvalPath::decode;
        const rt::EvalResult r = rt::eval_perplexity(model, tokens, o, ref.get());
        const std::string experts = weight_type_name(model.manifest.dtype), dense = weight_type_name(model.dense_type());
        if (a->json) {
            nlohmann::json j{{"loss", r.loss}, {"ppl", r.ppl}, {"tokens", r.tokens}, {"engine", "runtime"}, {"path", rt::eval_path_name(o.path)},
                             {"experts", experts}, {"dense", dense}, {"seconds", r.seconds}};
            if (ref) {
                j["kl"] = r.kl;
                j["top1_agree"] = r.top1_agree;
                j["reference"] = {{"experts", weight_type_name(ref->manifest.dtype)}, {"dense", weight_type_name(ref->dense_type())}};
            }
            std::cout << j.dump(2) << "\n";
            return;
        }
        std::cout << fmt::format("tokens {}  loss {:.4f}  perplexity {:.3f}  (runtime, {} path, experts {}, dense {}, {:.1f} s)\n", r.tokens,
                                 r.loss, r.ppl, rt::eval_path_name(o.path), experts, dense, r.seconds);
        if (ref) std::cout << fmt::format("KL(reference || model) {:.5f} nats/token, same top-1 token {:.4f}\n", r.kl, r.top1_agree);
    });
}

}  // namespace chronos
