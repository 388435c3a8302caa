// cmd_import.cpp: `chronos import --hf DIR --out DIR`, a Hugging Face MoE checkpoint into a
// packed Chronos checkpoint (src/import/hf_import.h, docs/import.md).
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/error.h"
#include "import/hf_import.h"
#include "runtime/generate.h"

namespace chronos {

void cmd_import_register(CLI::App& app) {
    struct Args {
        std::string hf, out, experts, dense;
        int64_t context = 0;
    };
    auto a = std::make_shared<Args>();
    CLI::App* c = app.add_subcommand("import", "convert a Hugging Face MoE checkpoint (mixtral, qwen2_moe, qwen3_moe, olmoe, deepseek_v2, deepseek_v3) and pack its experts");
    c->add_option("--hf", a->hf, "the Hugging Face folder (config.json, safetensors shards, tokenizer files)")->required();
    c->add_option("--out", a->out, "the Chronos checkpoint folder to write (replaced only when complete)")->required();
    c->add_option("--dtype", a->experts, "type of the packed experts: f32, bf16, f16, q8, q4 (default: the source's width)");
    c->add_option("--dense-dtype", a->dense, "type of the packed dense matrices (default: the source's width)");
    c->add_option("--context", a->context, "context length the KV caches are sized for (default: the model's, at most 8192)")
        ->check(cli_range(1, int64_t{1} << 24));
    c->callback([a]() {
        cli_checkpoint_out(a->out, {{"--hf", a->hf}});
        ImportOptions o;
        o.hf_dir = a->hf;
        o.out_dir = a->out;
        o.context = a->context;
        auto type = [](const std::string& s, const char* flag) -> std::optional<WeightType> {
            if (s.empty()) return std::nullopt;
            std::optional<WeightType> t = weight_type_parse(s);
            if (!t) fail("{} takes f32, bf16, f16, q8 or q4 (got \"{}\")", flag, s);
            return t;
        };
        o.experts = type(a->experts, "--dtype");
        o.dense = type(a->dense, "--dense-dtype");
        const ImportReport r = hf_import(o);
        std::printf("imported %s: %lld tensors, %lld layers x %lld experts (top-%lld), context %lld\n", r.family.c_str(),
                    static_cast<long long>(r.tensors), static_cast<long long>(r.config.num_hidden_layers),
                    static_cast<long long>(r.config.n_routed_experts), static_cast<long long>(r.config.num_experts_per_tok),
                    static_cast<long long>(r.config.max_position_embeddings));
        std::printf("packs: experts %s, dense %s\n", weight_type_name(r.experts), weight_type_name(r.dense));
        std::printf("read %.1f MB, wrote %.1f MB in %.2f s (%.1f MB/s of source); peak RSS %.1f MiB\n", r.source_bytes / 1e6,
                    r.written_bytes / 1e6, r.seconds, r.source_bytes / 1e6 / std::max(r.seconds, 1e-9),
                    static_cast<double>(rt::peak_rss_bytes()) / (1 << 20));
    });
}

}  // namespace chronos
