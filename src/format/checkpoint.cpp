// checkpoint.cpp: tensor naming, validation and the atomic directory swap.
#include "format/checkpoint.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_io.h"

namespace chronos {

namespace fs = std::filesystem;

std::string expert_tensor_name(int64_t layer, int64_t expert, const char* proj) {
    return fmt::format("model.layers.{}.mlp.experts.{}.{}_proj.weight", layer, expert, proj);
}

std::vector<TensorSpec> checkpoint_tensor_specs(const ModelConfig& c) {
    const int64_t H = c.hidden_size;
    const int64_t nh = c.num_attention_heads;
    std::vector<TensorSpec> specs;
    specs.push_back({"model.embed_tokens.weight", {c.vocab_size, H}});
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
        const std::string p = fmt::format("model.layers.{}.", l);
        specs.push_back({p + "input_layernorm.weight", {H}});
        specs.push_back({p + "post_attention_layernorm.weight", {H}});
        if (c.attention_pattern[static_cast<size_t>(l)] == AttentionKind::mla) {
            const int64_t qk = c.qk_nope_head_dim + c.qk_rope_head_dim;
            if (c.q_lora_rank > 0) {
                specs.push_back({p + "self_attn.q_a_proj.weight", {c.q_lora_rank, H}});
                specs.push_back({p + "self_attn.q_a_layernorm.weight", {c.q_lora_rank}});
                specs.push_back({p + "self_attn.q_b_proj.weight", {nh * qk, c.q_lora_rank}});
            } else {
                specs.push_back({p + "self_attn.q_proj.weight", {nh * qk, H}});
            }
            specs.push_back({p + "self_attn.kv_a_proj_with_mqa.weight", {c.kv_lora_rank + c.qk_rope_head_dim, H}});
            specs.push_back({p + "self_attn.kv_a_layernorm.weight", {c.kv_lora_rank}});
            specs.push_back({p + "self_attn.kv_b_proj.weight", {nh * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank}});
            specs.push_back({p + "self_attn.o_proj.weight", {H, nh * c.v_head_dim}});
        } else {
            const int64_t hd = c.head_dim;
            specs.push_back({p + "self_attn.q_proj.weight", {nh * hd, H}});
            specs.push_back({p + "self_attn.k_proj.weight", {c.num_key_value_heads * hd, H}});
            specs.push_back({p + "self_attn.v_proj.weight", {c.num_key_value_heads * hd, H}});
            if (c.attention_bias) {
                specs.push_back({p + "self_attn.q_proj.bias", {nh * hd}});
                specs.push_back({p + "self_attn.k_proj.bias", {c.num_key_value_heads * hd}});
                specs.push_back({p + "self_attn.v_proj.bias", {c.num_key_value_heads * hd}});
            }
            if (c.qk_norm == QkNorm::head) {
                specs.push_back({p + "self_attn.q_norm.weight", {hd}});
                specs.push_back({p + "self_attn.k_norm.weight", {hd}});
            } else if (c.qk_norm == QkNorm::proj) {
                specs.push_back({p + "self_attn.q_norm.weight", {nh * hd}});
                specs.push_back({p + "self_attn.k_norm.weight", {c.num_key_value_heads * hd}});
            }
            specs.push_back({p + "self_attn.o_proj.weight", {H, nh * hd}});
        }
        const int64_t F = c.moe_intermediate_size;
        if (!c.is_moe_layer(l)) {
            const int64_t I = c.intermediate_size;
            specs.push_back({p + "mlp.gate_proj.weight", {I, H}});
            specs.push_back({p + "mlp.up_proj.weight", {I, H}});
            specs.push_back({p + "mlp.down_proj.weight", {H, I}});
            continue;
        }
        specs.push_back({p + "mlp.gate.weight", {c.n_routed_experts, H}});
        if (c.topk_method == TopkMethod::noaux_tc) specs.push_back({p + "mlp.gate.e_score_correction_bias", {c.n_routed_experts}});
        for (int64_t e = 0; e < c.n_routed_experts; ++e) {
            specs.push_back({expert_tensor_name(l, e, "gate"), {F, H}});
            specs.push_back({expert_tensor_name(l, e, "up"), {F, H}});
            specs.push_back({expert_tensor_name(l, e, "down"), {H, F}});
        }
        if (c.n_shared_experts > 0) {
            const int64_t Fs = c.shared_intermediate();
            specs.push_back({p + "mlp.shared_experts.gate_proj.weight", {Fs, H}});
            specs.push_back({p + "mlp.shared_experts.up_proj.weight", {Fs, H}});
            specs.push_back({p + "mlp.shared_experts.down_proj.weight", {H, Fs}});
            if (c.shared_expert_gate) specs.push_back({p + "mlp.shared_expert_gate.weight", {1, H}});
        }
    }
    specs.push_back({"model.norm.weight", {H}});
    if (!c.tie_word_embeddings) specs.push_back({"lm_head.weight", {c.vocab_size, H}});
    if (c.lookahead_steps > 0) {
        const int64_t D = c.lookahead_hidden_size;
        specs.push_back({"lookahead.norm.weight", {H}});
        specs.push_back({"lookahead.up_proj.weight", {D, H + c.n_moe_layers() * c.n_routed_experts}});
        specs.push_back({"lookahead.out_proj.weight", {c.lookahead_steps * c.n_moe_layers() * c.n_routed_experts, D}});
    }
    return specs;
}

void checkpoint_validate_tensors(const ModelConfig& c, const SafetensorsHeader& header, const std::string& what) {
    std::map<std::string, const TensorInfo*> present;
    for (const TensorInfo& t : header.tensors) present[t.name] = &t;
    std::vector<std::string> problems;
    for (const TensorSpec& spec : checkpoint_tensor_specs(c)) {
        auto it = present.find(spec.name);
        if (it == present.end()) {
            problems.push_back(fmt::format("missing {}", spec.name));
            continue;
        }
        const TensorInfo& t = *it->second;
        if (t.shape != spec.shape) {
            problems.push_back(fmt::format("{} has shape [{}], config.json implies [{}]", spec.name,
                                           fmt::join(t.shape, ", "), fmt::join(spec.shape, ", ")));
        }
        if (t.dtype != DType::F32) {
            problems.push_back(fmt::format("{} is {}, master weights are F32", spec.name, dtype_name(t.dtype)));
        }
        present.erase(it);
    }
    for (const auto& [name, unused] : present) problems.push_back(fmt::format("unexpected tensor {}", name));
    if (problems.empty()) return;
    std::string list;
    for (size_t i = 0; i < problems.size() && i < 8; ++i) list += "\n  " + problems[i];
    if (problems.size() > 8) list += fmt::format("\n  ... and {} more", problems.size() - 8);
    fail("{}: weights do not match config.json:{}", what, list);
}

std::string tokenizer_path_in(const std::string& dir, bool imported) {
    const std::string json = dir + "/tokenizer.json", model = dir + "/tokenizer.model";
    if (imported && file_exists(json)) return json;
    if (file_exists(model)) return model;  // Chronos's own, or a published SentencePiece model
    return "";
}

Checkpoint checkpoint_open(const std::string& dir) {
    if (!dir_exists(dir)) fail("checkpoint directory {} does not exist", dir);
    Checkpoint ck;
    ck.dir = dir;
    const std::string config_path = dir + "/config.json";
    const std::string weights_path = dir + "/model.safetensors";
    if (!file_exists(config_path)) fail("{}: no config.json (not a checkpoint directory?)", dir);
    if (!file_exists(weights_path)) fail("{}: no model.safetensors", dir);
    ck.config = config_load(config_path);
    ck.losses = loss_weights_load(config_path);
    ck.weights = std::make_unique<SafetensorsFile>(weights_path);
    checkpoint_validate_tensors(ck.config, ck.weights->header(), weights_path);
    ck.tokenizer_path = tokenizer_path_in(dir, !ck.config.source_model_type.empty());
    return ck;
}

bool checkpoint_replaceable(const std::string& dir) {
    std::error_code ec;
    if (!fs::exists(dir, ec)) return true;
    if (!fs::is_directory(dir, ec)) return false;
    if (fs::is_empty(dir, ec) && !ec) return true;
    const std::string config = dir + "/config.json";
    if (!file_exists(config)) return false;
    try {
        const nlohmann::json j = nlohmann::json::parse(file_read_all(config));
        return j.is_object() && j.value("model_type", std::string()) == "chronos";
    } catch (const std::exception&) {
        return false;  // unreadable: not knowingly ours
    }
}

void checkpoint_out_check(const std::string& out, const std::vector<std::pair<std::string, std::string>>& inputs) {
    if (!checkpoint_replaceable(out)) {
        fail("--out {} exists and is not a Chronos checkpoint: saving there would delete what it holds (choose a new or empty "
             "directory)",
             out);
    }
    auto resolved = [](const std::string& path) {
        std::error_code ec;
        fs::path r = fs::weakly_canonical(fs::absolute(path, ec), ec);
        return r.has_filename() ? r : r.parent_path();  // "dir/" names dir
    };
    const fs::path o = resolved(out);
    for (const auto& [option, path] : inputs) {
        if (path.empty()) continue;
        const fs::path p = resolved(path);
        const auto [end_o, end_p] = std::mismatch(o.begin(), o.end(), p.begin(), p.end());
        if (end_o == o.end()) fail("--out {} would replace {} {}, which this command reads", out, option, path);
    }
}

CheckpointStaging::CheckpointStaging(std::string dir) : dir_(std::move(dir)) {
    while (!dir_.empty() && dir_.back() == '/') dir_.pop_back();
    if (dir_.empty()) fail("checkpoint directory name is empty");
    if (!checkpoint_replaceable(dir_)) fail("{} exists and is not a Chronos checkpoint: a save there would delete what it holds", dir_);
    staging_ = dir_ + ".tmp-" + std::to_string(::getpid());
    std::error_code ec;
    fs::remove_all(staging_, ec);
    dir_create(staging_);
}

CheckpointStaging::~CheckpointStaging() {
    if (!committed_) {
        std::error_code ec;
        fs::remove_all(staging_, ec);
    }
}

std::string CheckpointStaging::file(const std::string& name) const { return staging_ + "/" + name; }

void CheckpointStaging::keep_from(const std::string& existing_dir, const std::vector<std::string>& names) {
    for (const std::string& name : names) {
        std::string src = existing_dir + "/" + name;
        if (!fs::exists(src) || fs::exists(file(name))) continue;
        std::error_code ec;
        fs::copy(src, file(name), fs::copy_options::recursive, ec);  // files and directories (packs/)
        if (ec) fail("cannot copy {} into the new checkpoint: {}", src, ec.message());
    }
}

void CheckpointStaging::commit() {
    CHRONOS_ASSERT(!committed_, "commit twice");
    int fd = ::open(staging_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
    }
    if (dir_exists(dir_)) {
        // Swap the two directories in one step, then delete the old one (now at staging_).
        if (::renameat2(AT_FDCWD, staging_.c_str(), AT_FDCWD, dir_.c_str(), RENAME_EXCHANGE) != 0) {
            fail("cannot swap {} into place: {}", dir_, std::strerror(errno));
        }
        committed_ = true;
        std::error_code ec;
        fs::remove_all(staging_, ec);
    } else {
        if (::rename(staging_.c_str(), dir_.c_str()) != 0) {
            fail("cannot move {} to {}: {}", staging_, dir_, std::strerror(errno));
        }
        committed_ = true;
    }
}

}  // namespace chronos
