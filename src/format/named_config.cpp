// named_config.cpp: configs/NAME.json = {"model": {...}, "train": {...}}. The model section
// is a config.json without vocab_size (taken from the tokenizer) where that is left out.
#include <unistd.h>

#include <filesystem>
#include <vector>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_io.h"
#include "format/named_config.h"

namespace chronos {

namespace fs = std::filesystem;

std::string named_config_resolve(const std::string& name) {
    if (file_exists(name)) return name;
    std::vector<std::string> candidates = {"configs/" + name + ".json"};
    char exe[4096];
    ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        fs::path dir = fs::path(exe).parent_path();
        candidates.push_back((dir / "configs" / (name + ".json")).string());
        candidates.push_back((dir.parent_path() / "configs" / (name + ".json")).string());
    }
#ifdef CHRONOS_CONFIG_DIR
    candidates.push_back(std::string(CHRONOS_CONFIG_DIR) + "/" + name + ".json");
#endif
    for (const auto& c : candidates) {
        if (file_exists(c)) return c;
    }
    fail("no config named \"{}\" (looked for {} and next to the executable)", name, candidates[0]);
}

NamedConfig named_config_load(const std::string& name_or_path) {
    NamedConfig nc;
    nc.path = named_config_resolve(name_or_path);
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(file_read_all(nc.path));
    } catch (const nlohmann::json::exception& e) {
        fail("{}: not valid JSON: {}", nc.path, e.what());
    }
    if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) {
        fail("{}: expected {{\"model\": {{...}}, \"train\": {{...}}}}", nc.path);
    }
    nlohmann::json model = j["model"];
    // vocab_size comes from the tokenizer when the config leaves it out; validate with a
    // placeholder and reset it.
    const bool has_vocab = model.contains("vocab_size");
    if (!has_vocab) model["vocab_size"] = 1;
    nc.model = config_from_json(model, nc.path + " (model)");
    nc.losses = loss_weights_from_json(model, nc.path + " (model)");
    if (!has_vocab) nc.model.vocab_size = 0;

    const nlohmann::json train = j.value("train", nlohmann::json::object());
    if (!train.is_object()) fail("{}: \"train\" must be an object, not {}", nc.path, train.type_name());
    TrainHyper& t = nc.train;
    for (const auto& item : train.items()) {
        // Not a structured binding: clang before 16 cannot capture one in the lambda below.
        const std::string key = item.key();
        const nlohmann::json& value = item.value();
        auto num = [&]() {
            if (!value.is_number()) fail("{}: train.{} must be a number", nc.path, key);
            return value;
        };
        auto count = [&]() {  // a count is a whole number, never silently truncated
            if (!value.is_number_integer()) fail("{}: train.{} must be a whole number, not {}", nc.path, key, value.dump());
            return value;
        };
        if (key == "seq_len") t.seq_len = count().get<int64_t>();
        else if (key == "batch_size") t.batch_size = count().get<int64_t>();
        else if (key == "grad_accum") t.grad_accum = count().get<int64_t>();
        else if (key == "steps") t.steps = count().get<int64_t>();
        else if (key == "lr") t.lr = num().get<double>();
        else if (key == "min_lr_ratio") t.min_lr_ratio = num().get<double>();
        else if (key == "warmup_steps") t.warmup_steps = count().get<int64_t>();
        else if (key == "weight_decay") t.weight_decay = num().get<double>();
        else if (key == "beta1") t.beta1 = num().get<double>();
        else if (key == "beta2") t.beta2 = num().get<double>();
        else if (key == "eps") t.eps = num().get<double>();
        else if (key == "grad_clip") t.grad_clip = num().get<double>();
        else if (key == "eval_interval") t.eval_interval = count().get<int64_t>();
        else if (key == "eval_batches") t.eval_batches = count().get<int64_t>();
        else if (key == "save_interval") t.save_interval = count().get<int64_t>();
        else if (key == "seed") t.seed = count().get<uint64_t>();
        else if (key.rfind("_", 0) != 0) fail("{}: unknown train field \"{}\"", nc.path, key);
    }
    if (t.seq_len < 2 || t.batch_size < 1 || t.grad_accum < 1 || t.steps < 1 || !(t.lr > 0) || t.warmup_steps < 0 ||
        t.eval_interval < 0 || t.eval_batches < 1 || t.save_interval < 0) {
        fail("{}: train section has an impossible value (seq_len >= 2, batch_size >= 1, grad_accum >= 1, steps >= 1, lr > 0, "
             "warmup_steps >= 0, eval_interval >= 0, eval_batches >= 1, save_interval >= 0)",
             nc.path);
    }
    if (t.seq_len > nc.model.max_position_embeddings) {
        fail("{}: seq_len {} exceeds max_position_embeddings {}", nc.path, t.seq_len, nc.model.max_position_embeddings);
    }
    return nc;
}

const std::vector<std::string>& named_config_train_fields() {
    static const std::vector<std::string> fields = {"seq_len", "batch_size", "grad_accum", "steps", "lr", "min_lr_ratio",
                                                    "warmup_steps", "weight_decay", "beta1", "beta2", "eps", "grad_clip",
                                                    "eval_interval", "eval_batches", "save_interval", "seed"};
    return fields;
}

ModelConfig config_make_baseline(const ModelConfig& c) {
    ModelConfig b = c;
    b.attention_pattern.assign(static_cast<size_t>(c.num_hidden_layers), AttentionKind::gqa);
    b.lookahead_steps = 0;
    b.lookahead_hidden_size = 0;
    return b;
}

LossWeights losses_make_baseline(const LossWeights& w) {
    LossWeights b;
    b.lambda_balance = w.lambda_balance;
    return b;
}

}  // namespace chronos
