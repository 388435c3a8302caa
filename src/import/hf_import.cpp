// hf_import.cpp: see hf_import.h. The per-family field tables follow the families' published
// config.json files and their transformers configuration classes (defaults used only for the
// fields real files omit).
#include "import/hf_import.h"

#include <chrono>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "core/file_io.h"
#include "core/log.h"
#include "format/checkpoint.h"
#include "format/hf_checkpoint.h"
#include "format/pack.h"
#include "tokenizer/tokenizer.h"

#include <fmt/ranges.h>

namespace chronos {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const char* kFamilies = "mixtral, qwen2_moe, qwen3_moe, olmoe, deepseek_v2, deepseek_v3";

bool is_deepseek(const std::string& family) { return family == "deepseek_v2" || family == "deepseek_v3"; }

// Typed reads of config.json fields with the family's defaults; null counts as absent.
struct Fields {
    const json& j;
    std::string what;
    bool has(const char* k) const { return j.contains(k) && !j.at(k).is_null(); }
    int64_t i(const char* k) const {
        if (!has(k)) fail("{}: missing field \"{}\"", what, k);
        const json& v = j.at(k);
        if (!v.is_number_integer()) fail("{}: field \"{}\" must be an integer", what, k);
        return v.get<int64_t>();
    }
    int64_t i(const char* k, int64_t def) const { return has(k) ? i(k) : def; }
    double d(const char* k, double def) const {
        if (!has(k)) return def;
        if (!j.at(k).is_number()) fail("{}: field \"{}\" must be a number", what, k);
        return j.at(k).get<double>();
    }
    bool b(const char* k, bool def) const {
        if (!has(k)) return def;
        if (!j.at(k).is_boolean()) fail("{}: field \"{}\" must be true or false", what, k);
        return j.at(k).get<bool>();
    }
    std::string s(const char* k, const std::string& def) const {
        if (!has(k)) return def;
        if (!j.at(k).is_string()) fail("{}: field \"{}\" must be a string", what, k);
        return j.at(k).get<std::string>();
    }
};

void refuse(const std::string& what, const std::string& family, const std::string& feature) {
    fail("{}: {} with {} is not supported by Chronos yet", what, family, feature);
}

// DeepSeek-V2 / V3 (the families' remote modeling code and their config.json files): MLA, dense
// first layers, the grouped router, YaRN.
ModelConfig hf_config_map_deepseek(const json& hf, const Fields& f, const std::string& family, int64_t context, const std::string& what) {
    ModelConfig c;
    c.source_model_type = family;
    const bool v3 = family == "deepseek_v3";
    c.vocab_size = f.i("vocab_size");
    c.hidden_size = f.i("hidden_size");
    c.num_hidden_layers = f.i("num_hidden_layers");
    c.num_attention_heads = f.i("num_attention_heads");
    c.kv_lora_rank = f.i("kv_lora_rank");
    c.q_lora_rank = f.i("q_lora_rank", 0);  // null in V2-Lite: one q_proj
    c.qk_nope_head_dim = f.i("qk_nope_head_dim");
    c.qk_rope_head_dim = f.i("qk_rope_head_dim");
    c.v_head_dim = f.i("v_head_dim");
    c.attention_pattern.assign(static_cast<size_t>(std::max<int64_t>(c.num_hidden_layers, 0)), AttentionKind::mla);
    if (f.b("attention_bias", false)) refuse(what, family, "attention_bias true");
    c.n_routed_experts = f.i("n_routed_experts");
    c.n_shared_experts = f.i("n_shared_experts", 0);
    c.num_experts_per_tok = f.i("num_experts_per_tok");
    c.moe_intermediate_size = f.i("moe_intermediate_size");
    c.intermediate_size = f.i("intermediate_size");
    c.first_k_dense_replace = f.i("first_k_dense_replace", 0);
    c.moe_layer_freq = f.i("moe_layer_freq", 1);
    c.rms_norm_eps = f.d("rms_norm_eps", 1e-6);
    c.rope_theta = f.d("rope_theta", 10000.0);
    c.tie_word_embeddings = f.b("tie_word_embeddings", false);
    const int64_t source_context = f.i("max_position_embeddings");
    if (context > source_context) fail("{}: --context {} exceeds the model's max_position_embeddings {}", what, context, source_context);
    c.max_position_embeddings = context > 0 ? context : std::min(source_context, kImportDefaultContext);

    const std::string scoring = f.s("scoring_func", "softmax");
    if (scoring == "softmax") c.scoring_func = ScoringFunc::softmax;
    else if (scoring == "sigmoid") c.scoring_func = ScoringFunc::sigmoid;
    else refuse(what, family, fmt::format("scoring_func \"{}\"", scoring));
    const std::string method = f.s("topk_method", v3 ? "noaux_tc" : "greedy");
    if (method == "greedy") c.topk_method = TopkMethod::greedy;
    else if (method == "group_limited_greedy") c.topk_method = TopkMethod::group_limited;
    else if (method == "noaux_tc") c.topk_method = TopkMethod::noaux_tc;
    else refuse(what, family, fmt::format("topk_method \"{}\"", method));
    c.n_group = f.i("n_group", 1);
    c.topk_group = f.i("topk_group", 1);
    // Both families renormalise only for top-k > 1; V2 scales the weights only when it does not
    // renormalise, V3 always (after renormalising).
    const double scaling = f.d("routed_scaling_factor", 1.0);
    c.norm_topk_prob = f.b("norm_topk_prob", false) && c.num_experts_per_tok > 1;
    c.routed_scaling_factor = v3 || !c.norm_topk_prob ? scaling : 1.0;

    if (f.has("rope_scaling")) {
        const json& r = hf.at("rope_scaling");
        if (!r.is_object()) fail("{}: field \"rope_scaling\" must be an object or null", what);
        const Fields rf{r, what + ": rope_scaling"};
        const std::string type = rf.s("type", rf.s("rope_type", ""));
        if (type != "yarn") refuse(what, family, fmt::format("rope_scaling type \"{}\" (yarn only)", type));
        c.rope_scaling.factor = rf.d("factor", 1.0);
        c.rope_scaling.original_max_position_embeddings = rf.i("original_max_position_embeddings");
        c.rope_scaling.beta_fast = rf.d("beta_fast", 32.0);
        c.rope_scaling.beta_slow = rf.d("beta_slow", 1.0);
        c.rope_scaling.mscale = rf.d("mscale", 1.0);
        c.rope_scaling.mscale_all_dim = rf.d("mscale_all_dim", 0.0);
    }
    if (f.has("quantization_config")) refuse(what, family, "quantization_config (FP8 weights: convert them to bf16 first)");
    c.lookahead_steps = 0;
    c.lookahead_hidden_size = 0;
    c.lookahead_input_layer = 0;
    config_validate(c, what);
    return c;
}

}  // namespace

ModelConfig hf_config_map(const json& hf, int64_t context, const std::string& what) {
    if (!hf.is_object()) fail("{}: config is not a JSON object", what);
    const Fields f{hf, what};
    const std::string family = f.s("model_type", "");
    if (family != "mixtral" && family != "qwen2_moe" && family != "qwen3_moe" && family != "olmoe" && !is_deepseek(family)) {
        fail("{}: model_type \"{}\" is not a supported family ({})", what, family, kFamilies);
    }
    const std::string act = f.s("hidden_act", "silu");
    if (act != "silu") refuse(what, family, fmt::format("hidden_act \"{}\" (experts are SwiGLU: silu)", act));
    if (f.has("rope_scaling") && !is_deepseek(family)) refuse(what, family, "rope_scaling (only plain RoPE for this family)");
    if (is_deepseek(family)) return hf_config_map_deepseek(hf, f, family, context, what);

    ModelConfig c;
    c.source_model_type = family;
    c.vocab_size = f.i("vocab_size");
    c.hidden_size = f.i("hidden_size");
    c.num_hidden_layers = f.i("num_hidden_layers");
    c.num_attention_heads = f.i("num_attention_heads");
    c.num_key_value_heads = f.i("num_key_value_heads", c.num_attention_heads);
    if (c.num_attention_heads <= 0 || c.hidden_size <= 0) fail("{}: hidden_size and num_attention_heads must be positive", what);
    if (!f.has("head_dim") && c.hidden_size % c.num_attention_heads != 0) {
        fail("{}: hidden_size {} is not a multiple of num_attention_heads {} (and no head_dim)", what, c.hidden_size, c.num_attention_heads);
    }
    c.head_dim = f.i("head_dim", c.hidden_size / c.num_attention_heads);
    c.rms_norm_eps = f.d("rms_norm_eps", family == "qwen2_moe" || family == "qwen3_moe" ? 1e-6 : 1e-5);
    c.rope_theta = f.d("rope_theta", family == "mixtral" ? 1e6 : 10000.0);
    c.tie_word_embeddings = f.b("tie_word_embeddings", false);
    const int64_t source_context = f.i("max_position_embeddings");
    if (source_context <= 0) fail("{}: max_position_embeddings must be positive", what);
    c.max_position_embeddings = context > 0 ? context : std::min(source_context, kImportDefaultContext);
    if (context > source_context) {
        fail("{}: --context {} exceeds the model's max_position_embeddings {}", what, context, source_context);
    }
    c.attention_pattern.assign(static_cast<size_t>(std::max<int64_t>(c.num_hidden_layers, 0)), AttentionKind::gqa);
    c.num_experts_per_tok = f.i("num_experts_per_tok");

    if (family == "mixtral") {
        c.n_routed_experts = f.i("num_local_experts");
        c.moe_intermediate_size = f.i("intermediate_size");
        c.norm_topk_prob = true;  // MixtralSparseMoeBlock renormalises the top-k softmax weights
        if (f.has("sliding_window")) {
            c.sliding_window = f.i("sliding_window");
            if (c.sliding_window < source_context) {
                std::fill(c.attention_pattern.begin(), c.attention_pattern.end(), AttentionKind::swa);
            } else {
                c.sliding_window = 0;  // a window as long as the context changes nothing
            }
        }
    } else {
        c.n_routed_experts = f.i("num_experts");
        c.norm_topk_prob = f.b("norm_topk_prob", false);
        c.moe_intermediate_size = family == "olmoe" ? f.i("intermediate_size") : f.i("moe_intermediate_size");
    }
    if (family == "qwen2_moe" || family == "qwen3_moe") {
        if (f.b("use_sliding_window", false)) refuse(what, family, "use_sliding_window true");
        if (f.i("decoder_sparse_step", 1) != 1) refuse(what, family, "decoder_sparse_step other than 1 (dense MLP layers)");
        if (f.has("mlp_only_layers")) {
            const json& m = hf.at("mlp_only_layers");
            if (!m.is_array()) fail("{}: field \"mlp_only_layers\" must be a list", what);
            if (!m.empty()) refuse(what, family, "mlp_only_layers (dense MLP layers)");
        }
    }
    if (family == "qwen2_moe") {
        c.attention_bias = true;  // Qwen2MoeAttention: q/k/v projections always carry a bias
        const int64_t shared = f.i("shared_expert_intermediate_size");
        if (shared > 0) {
            c.n_shared_experts = 1;
            c.shared_expert_intermediate_size = shared;
            c.shared_expert_gate = true;
        }
    }
    if (family == "qwen3_moe" || family == "olmoe") {
        if (f.b("attention_bias", false)) refuse(what, family, "attention_bias true (o_proj bias)");
    }
    if (family == "qwen3_moe") c.qk_norm = QkNorm::head;
    if (family == "olmoe") {
        c.qk_norm = QkNorm::proj;
        c.clip_qkv = f.d("clip_qkv", 0.0);
        if (f.has("clip_qkv") && c.clip_qkv <= 0) fail("{}: clip_qkv must be positive or null (got {})", what, c.clip_qkv);
    }
    // No lookahead head yet: `chronos train lookahead` adds one to the imported model.
    c.lookahead_steps = 0;
    c.lookahead_hidden_size = 0;
    c.lookahead_input_layer = 0;
    config_validate(c, what);
    return c;
}

std::string hf_source_name(const std::string& family, const std::string& name) {
    auto replace = [&](const std::string& from, const std::string& to) -> std::string {
        const size_t at = name.find(from);
        if (at == std::string::npos) return "";
        return name.substr(0, at) + to + name.substr(at + from.size());
    };
    if (family == "mixtral") {
        for (const auto& [proj, w] : {std::pair{"gate_proj", "w1"}, std::pair{"down_proj", "w2"}, std::pair{"up_proj", "w3"}}) {
            const std::string tail = std::string(".") + proj + ".weight";
            if (name.find(".mlp.experts.") != std::string::npos && name.size() > tail.size() &&
                name.compare(name.size() - tail.size(), tail.size(), tail) == 0) {
                std::string s = replace(".mlp.experts.", ".block_sparse_moe.experts.");
                return s.substr(0, s.size() - tail.size()) + "." + w + ".weight";
            }
        }
        if (name.find(".mlp.gate.") != std::string::npos) return replace(".mlp.gate.", ".block_sparse_moe.gate.");
    }
    if (family == "qwen2_moe" && name.find(".mlp.shared_experts.") != std::string::npos) {
        return replace(".mlp.shared_experts.", ".mlp.shared_expert.");
    }
    return name;
}

namespace {

// DeepSeek's checkpoints store each rope vector interleaved, (x0, x1) (x2, x3) ... rotated as
// pairs; their code de-interleaves it to [x0 x2 x4 .. | x1 x3 x5 ..] before rotating halves.
// Permuting the rope rows of the projections that make q_rope and k_rope the same way turns
// them into Chronos's rotate-half layout; scores are unchanged, as q and k move alike.
void deinterleave_rope_rows(const ModelConfig& c, const std::string& name, const std::vector<int64_t>& shape, std::vector<float>& w) {
    const int64_t dr = c.qk_rope_head_dim, dn = c.qk_nope_head_dim, cols = shape.size() == 2 ? shape[1] : 1;
    std::vector<int64_t> first_rows;  // the first row of every rope block of dr rows
    auto ends_with = [&](const char* tail) {
        const std::string t(tail);
        return name.size() >= t.size() && name.compare(name.size() - t.size(), t.size(), t) == 0;
    };
    if (ends_with("self_attn.q_proj.weight") || ends_with("self_attn.q_b_proj.weight")) {
        for (int64_t h = 0; h < c.num_attention_heads; ++h) first_rows.push_back(h * (dn + dr) + dn);
    } else if (ends_with("self_attn.kv_a_proj_with_mqa.weight")) {
        first_rows.push_back(c.kv_lora_rank);
    } else {
        return;
    }
    std::vector<float> block(static_cast<size_t>(dr * cols));
    for (int64_t r0 : first_rows) {
        float* rows = w.data() + r0 * cols;
        std::copy(rows, rows + dr * cols, block.begin());
        for (int64_t j = 0; j < dr; ++j) {
            const int64_t from = j < dr / 2 ? 2 * j : 2 * (j - dr / 2) + 1;
            std::copy(block.begin() + from * cols, block.begin() + (from + 1) * cols, rows + j * cols);
        }
    }
}

// The layer index of a tensor name ("model.layers.N."), or -1.
int64_t tensor_layer(const std::string& name) {
    const std::string p = "model.layers.";
    if (name.rfind(p, 0) != 0) return -1;
    const size_t end = name.find('.', p.size());
    if (end == std::string::npos) return -1;
    try {
        return std::stoll(name.substr(p.size(), end - p.size()));
    } catch (const std::exception&) {
        return -1;
    }
}

}  // namespace

ImportReport hf_import(const ImportOptions& o) {
    const auto t0 = std::chrono::steady_clock::now();
    HfCheckpoint hf = hf_open(o.hf_dir);
    const std::string what = o.hf_dir + "/config.json";
    ImportReport r;
    r.config = hf_config_map(hf.config, o.context, what);
    ModelConfig& c = r.config;
    r.family = c.source_model_type;
    const DType src = hf.source_dtype();
    const WeightType width = src == DType::BF16 ? WeightType::bf16 : src == DType::F16 ? WeightType::f16 : WeightType::f32;
    r.experts = o.experts.value_or(width);
    r.dense = o.dense.value_or(width);
    c.expert_dtype = r.experts;
    r.source_bytes = hf.total_bytes();

    // Every Chronos tensor from its source, checked before anything is written.
    const std::vector<TensorSpec> specs = checkpoint_tensor_specs(c);
    std::vector<std::string> sources;
    std::set<std::string> used;
    std::vector<std::string> problems;
    for (const TensorSpec& spec : specs) {
        const std::string s = hf_source_name(r.family, spec.name);
        sources.push_back(s);
        used.insert(s);
        if (!hf.has(s)) {
            problems.push_back(fmt::format("missing tensor {}", s));
            continue;
        }
        const TensorInfo& t = hf.info(s);
        if (t.shape != spec.shape) {
            problems.push_back(fmt::format("{} has shape [{}], config.json implies [{}]", s, fmt::join(t.shape, ", "), fmt::join(spec.shape, ", ")));
        }
        if (t.dtype != DType::F32 && t.dtype != DType::BF16 && t.dtype != DType::F16) {
            problems.push_back(fmt::format("{} is {}; import reads F32, BF16 and F16", s, dtype_name(t.dtype)));
        }
    }
    const json& nn = hf.config.contains("num_nextn_predict_layers") ? hf.config.at("num_nextn_predict_layers") : json();
    const int64_t next_n = nn.is_number_integer() ? nn.get<int64_t>() : 0;
    for (const std::string& name : hf.names()) {
        if (used.count(name)) continue;
        const bool rotary = name.find(".rotary_emb.inv_freq") != std::string::npos;  // a buffer older exports saved
        const bool tied_head = name == "lm_head.weight" && c.tie_word_embeddings;
        // DeepSeek-V3's multi-token-prediction layers sit after the last layer; decoding does not use them.
        const bool mtp = is_deepseek(r.family) && next_n > 0 && tensor_layer(name) >= c.num_hidden_layers &&
                         tensor_layer(name) < c.num_hidden_layers + next_n;
        if (name.find("weight_scale_inv") != std::string::npos) {
            problems.push_back(fmt::format("{}: FP8 block scales; convert the checkpoint to bf16 first", name));
        } else if (!rotary && !tied_head && !mtp) {
            problems.push_back(fmt::format("unexpected tensor {} (a feature Chronos does not read?)", name));
        }
    }
    if (!problems.empty()) {
        std::string list;
        for (size_t i = 0; i < problems.size() && i < 8; ++i) list += "\n  " + problems[i];
        if (problems.size() > 8) list += fmt::format("\n  ... and {} more", problems.size() - 8);
        fail("{}: the weights do not match its config.json as a {} checkpoint:{}", o.hf_dir, r.family, list);
    }
    r.tensors = static_cast<int64_t>(specs.size());

    CheckpointStaging stage(o.out_dir);
    config_save(c, LossWeights{}, stage.file("config.json"));
    SafetensorsWriter writer;
    writer.set_metadata("format", "pt");
    writer.set_metadata("source", r.family);
    for (const TensorSpec& spec : specs) {
        int64_t n = 1;
        for (int64_t d : spec.shape) n *= d;
        writer.add(spec.name, DType::F32, spec.shape, nullptr, static_cast<uint64_t>(n) * 4);
    }
    {
        // The tokenizer files are checked before the weights are converted, so that a broken one
        // fails the import rather than the first generation.
        const std::string tp = tokenizer_path_in(o.hf_dir, /*imported=*/true);
        if (!tp.empty()) Tokenizer(tp).check_fits(c.vocab_size, o.hf_dir);
    }
    std::vector<float> buf;  // one tensor at a time
    writer.write_streamed(stage.file("model.safetensors"), [&](size_t i, AtomicFile& out) {
        hf.read_f32(sources[i], buf);
        if (is_deepseek(r.family)) deinterleave_rope_rows(c, specs[i].name, specs[i].shape, buf);
        out.write(buf.data(), buf.size() * sizeof(float));
    });
    std::vector<float>().swap(buf);
    hf.free_buffer();
    // The tokenizer and generation files travel with the weights; tokenizer.model is the
    // SentencePiece file the runtime's tokenizer reads.
    for (const char* name : {"tokenizer.json", "tokenizer.model", "tokenizer_config.json", "generation_config.json", "special_tokens_map.json"}) {
        const std::string from = o.hf_dir + "/" + name;
        if (file_exists(from)) file_write_atomic(stage.file(name), file_read_all(from));
    }
    {
        Checkpoint ck = checkpoint_open(stage.file(""));
        pack_write(ck, cluster_plan_natural(c.n_moe_layers(), c.n_routed_experts), r.experts, r.dense);
    }
    for (const auto& entry : fs::recursive_directory_iterator(stage.file(""))) {
        if (entry.is_regular_file()) r.written_bytes += entry.file_size();
    }
    stage.commit();
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

}  // namespace chronos
