// model.cpp: see model.h.
#include "runtime/model.h"

#include <fcntl.h>
#include <cmath>
#include <unistd.h>

#include "core/error.h"
#include "core/file_io.h"
#include "format/checkpoint.h"

#include <fmt/ranges.h>

namespace chronos::rt {

Model::Model(const std::string& dir_) : dir(dir_) {
    if (!dir_exists(dir)) fail("{}: no such checkpoint directory", dir);
    config = config_load(dir + "/config.json");
    weights_ = std::make_unique<SafetensorsFile>(dir + "/model.safetensors");
    checkpoint_validate_tensors(config, weights_->header(), weights_->path());
    if (!file_exists(dir + "/cluster_manifest.json")) {
        fail("{} has no cluster_manifest.json: pack its experts first (`chronos pack --model {}`)", dir, dir);
    }
    manifest = pack_manifest_load(dir, config);
    tokenizer_path = tokenizer_path_in(dir, !config.source_model_type.empty());

    auto w = [&](const std::string& name) {
        TensorView t = weights_->tensor(name);
        dense_.emplace_back(t.data, t.info->nbytes());
        dense_bytes += t.info->nbytes();
        return t.as<float>();
    };
    // The matrices pack_dense_names lists: from the dense file when the pack wrote one, each
    // checked for its stored dtype and shape, the file for its checksum.
    if (!manifest.dense.path.empty()) {
        dense_file_ = std::make_unique<SafetensorsFile>(dir + "/" + manifest.dense.path);
        if (pack_checksum(dense_file_->buffer(), dense_file_->buffer_bytes()) != manifest.dense.checksum) {
            fail("{}: checksum mismatch in the dense file {}", dir, manifest.dense.path);
        }
    }
    auto m = [&](const std::string& name) -> Matrix {
        if (!dense_file_) return Matrix(w(name));
        const WeightType t = manifest.dense.dtype;
        const TensorInfo& master = *weights_->tensor(name).info;
        TensorView v = dense_file_->tensor(name);
        const std::vector<int64_t> shape = pack_stored_shape(t, master.shape[0], master.shape[1]);
        if (v.info->dtype != pack_stored_dtype(t) || v.info->shape != shape) {
            fail("{}: {} in the dense file is {} {}, expected {} {} for {}", dir, name, dtype_name(v.info->dtype),
                 fmt::join(v.info->shape, "x"), dtype_name(pack_stored_dtype(t)), fmt::join(shape, "x"), weight_type_name(t));
        }
        dense_.emplace_back(v.data, v.info->nbytes());
        dense_bytes += v.info->nbytes();
        return Matrix(v.data, t);
    };
    const ModelConfig& c = config;
    embed = m("model.embed_tokens.weight");
    final_norm = w("model.norm.weight");
    lm_head = c.tie_word_embeddings ? embed : m("lm_head.weight");
    rope_inv_mla = rope_inv_freq(c, c.qk_rope_head_dim);
    rope_inv_gqa = rope_inv_freq(c, c.head_dim);
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
        const std::string p = fmt::format("model.layers.{}.", l);
        LayerWeights L;
        L.kind = c.attention_pattern[static_cast<size_t>(l)];
        L.moe = c.is_moe_layer(l);
        L.moe_index = c.moe_index(l);
        L.rope_scale = rope_cos_sin_scale(c);
        if (L.kind == AttentionKind::mla) {
            L.rope_inv = rope_inv_mla.data();
            L.softmax_scale = attention_scale_factor(c) / std::sqrt(static_cast<double>(c.qk_nope_head_dim + c.qk_rope_head_dim));
        } else {
            L.rope_inv = rope_inv_gqa.data();
            L.softmax_scale = 1.0 / std::sqrt(static_cast<double>(c.head_dim));
        }
        L.input_norm = w(p + "input_layernorm.weight");
        L.post_norm = w(p + "post_attention_layernorm.weight");
        if (L.kind == AttentionKind::mla) {
            if (c.q_lora_rank > 0) {
                L.q_a = m(p + "self_attn.q_a_proj.weight");
                L.q_a_norm = w(p + "self_attn.q_a_layernorm.weight");
                L.q_b = m(p + "self_attn.q_b_proj.weight");
            } else {
                L.q_proj = m(p + "self_attn.q_proj.weight");
            }
            L.kv_a = m(p + "self_attn.kv_a_proj_with_mqa.weight");
            L.kv_a_norm = w(p + "self_attn.kv_a_layernorm.weight");
            L.kv_b = w(p + "self_attn.kv_b_proj.weight");
        } else {
            L.wq = m(p + "self_attn.q_proj.weight");
            L.wk = m(p + "self_attn.k_proj.weight");
            L.wv = m(p + "self_attn.v_proj.weight");
            if (c.attention_bias) {
                L.bq = w(p + "self_attn.q_proj.bias");
                L.bk = w(p + "self_attn.k_proj.bias");
                L.bv = w(p + "self_attn.v_proj.bias");
            }
            if (c.qk_norm != QkNorm::none) {
                L.q_norm = w(p + "self_attn.q_norm.weight");
                L.k_norm = w(p + "self_attn.k_norm.weight");
            }
        }
        L.o_proj = m(p + "self_attn.o_proj.weight");
        if (!L.moe) {
            // The dense MLP goes through the shared expert's path (same SwiGLU, no gate).
            L.shared_gate = m(p + "mlp.gate_proj.weight");
            L.shared_up = m(p + "mlp.up_proj.weight");
            L.shared_down = m(p + "mlp.down_proj.weight");
            layers.push_back(L);
            continue;
        }
        L.gate = w(p + "mlp.gate.weight");
        if (c.topk_method == TopkMethod::noaux_tc) L.gate_bias = w(p + "mlp.gate.e_score_correction_bias");
        if (c.n_shared_experts > 0) {
            L.shared_gate = m(p + "mlp.shared_experts.gate_proj.weight");
            L.shared_up = m(p + "mlp.shared_experts.up_proj.weight");
            L.shared_down = m(p + "mlp.shared_experts.down_proj.weight");
            if (c.shared_expert_gate) L.shared_expert_gate = w(p + "mlp.shared_expert_gate.weight");
        }
        layers.push_back(L);
    }
    if (c.lookahead_steps > 0) {
        lookahead.norm = w("lookahead.norm.weight");
        lookahead.up = w("lookahead.up_proj.weight");
        lookahead.out = w("lookahead.out_proj.weight");
        lookahead.hidden = c.lookahead_hidden_size;
    }

    intent = intent_load(dir, c);
}

void model_drop_page_cache(const Model& model) {
    for (const std::string& f : model.manifest.files) {
        const std::string p = model.dir + "/" + f;
        int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        ::close(fd);
    }
}

void Model::dense_prefault() const {
    volatile uint8_t sink = 0;
    for (const auto& [data, bytes] : dense_) {
        for (uint64_t i = 0; i < bytes; i += 4096) sink = sink + data[i];
        if (bytes > 0) sink = sink + data[bytes - 1];
    }
}

uint64_t Model::expert_bytes_total() const {
    uint64_t n = 0;
    for (const PackEntry& e : manifest.entries) n += e.length;
    return n;
}

}  // namespace chronos::rt
