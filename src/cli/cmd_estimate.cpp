// cmd_estimate.cpp: `chronos estimate`, what a model config costs before it exists: parameters
// per group, bytes per stored type, KV cache per token, expert slots at a RAM budget, predicted
// peak RSS (src/runtime/estimate.h).
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/error.h"
#include "core/file_io.h"
#include "format/named_config.h"
#include "runtime/estimate.h"
#include "runtime/generate.h"
#include "tokenizer/tokenizer.h"

namespace chronos {

void cmd_estimate_register(CLI::App& app) {
    struct Args {
        std::string config, tokenizer = "data/tokenizer.model", budget = "100%", experts = "f32", dense = "f32";
        int64_t vocab_size = 0;
        bool json = false;
    };
    auto a = std::make_shared<Args>();
    CLI::App* e = app.add_subcommand("estimate", "parameters, bytes per type, KV cache, expert slots and peak RSS of a config");
    e->add_option("--config", a->config, "config name (configs/NAME.json) or path")->required();
    e->add_option("--ram-budget", a->budget, "RAM for experts: a share of all expert bytes (25%) or bytes (512M)")->capture_default_str();
    e->add_option("--dtype", a->experts, "expert type of the packs: f32, bf16, f16, q8, q4")->capture_default_str();
    e->add_option("--dense-dtype", a->dense, "type of the dense weights")->capture_default_str();
    e->add_option("--vocab-size", a->vocab_size, "vocabulary size (default: the config's, else the tokenizer's)")->check(cli_range(1, 1 << 24));
    e->add_option("--tokenizer", a->tokenizer, "tokenizer giving the vocabulary when the config has none")->capture_default_str();
    e->add_flag("--json", a->json, "print JSON");
    e->callback([a]() {
        NamedConfig nc = named_config_load(a->config);
        ModelConfig c = nc.model;
        // Held while the process measures its own RSS: a model being served holds its tokenizer.
        std::unique_ptr<Tokenizer> tok;
        if (file_exists(a->tokenizer)) tok = std::make_unique<Tokenizer>(a->tokenizer);
        if (a->vocab_size > 0) {
            c.vocab_size = a->vocab_size;
        } else if (c.vocab_size == 0) {
            if (!tok) fail("{} names no vocab_size: give --vocab-size or a --tokenizer that exists", a->config);
            c.vocab_size = tok->vocab_size();
        }
        const auto experts = weight_type_parse(a->experts), dense = weight_type_parse(a->dense);
        if (!experts || !dense) fail("--dtype and --dense-dtype take f32, bf16, f16, q8 or q4");
        rt::EstimateOptions o{*experts, *dense, 0, 0};
        if (a->budget == "auto") {
            fail("--ram-budget auto sizes from a running process's memory; estimate takes a share (25%) or bytes (512M)");
        }
        o.ram_budget = rt::budget_parse(a->budget, rt::estimate_config(c, o).experts_total_bytes);
        const rt::Estimate est = rt::estimate_config(c, o);
        if (est.slots < c.num_experts_per_tok) {
            fail("a RAM budget of {} holds {} expert slots of {} bytes; a layer's top-{} needs {}", a->budget, est.slots, est.expert_bytes,
                 c.num_experts_per_tok, c.num_experts_per_tok);
        }
        if (a->json) {
            std::cout << rt::estimate_json(est).dump(2) << "\n";
        } else {
            std::cout << rt::estimate_text(est);
        }
    });
}

}  // namespace chronos
