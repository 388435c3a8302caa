// intent.cpp: see intent.h.
#include "format/intent.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_io.h"
#include "format/safetensors.h"

namespace chronos {

namespace {

constexpr const char* kFormat = "chronos-intent-v1";

int64_t meta_int(const nlohmann::json& j, const char* key, const std::string& path, int64_t lo, int64_t hi) {
    if (!j.contains(key) || !j.at(key).is_number_integer()) fail("{}: field \"{}\" is missing or not an integer", path, key);
    const int64_t v = j.at(key).get<int64_t>();
    if (v < lo || v > hi) fail("{}: {} is {}, outside {} .. {}", path, key, v, lo, hi);
    return v;
}

}  // namespace

IntentClassifier intent_load(const std::string& dir, const ModelConfig& c) {
    IntentClassifier ic;
    const std::string wpath = dir + "/intent.safetensors", mpath = dir + "/intent.json";
    const bool has_w = file_exists(wpath), has_m = file_exists(mpath);
    if (!has_w && !has_m) return ic;
    if (!has_w || !has_m) fail("{}: {} without {} (retrain with `chronos train intent`)", dir, has_w ? "intent.safetensors" : "intent.json", has_w ? "intent.json" : "intent.safetensors");
    nlohmann::json meta;
    try {
        meta = nlohmann::json::parse(file_read_all(mpath));
    } catch (const nlohmann::json::exception& e) {
        fail("{}: not valid JSON: {}", mpath, e.what());
    }
    if (!meta.is_object()) fail("{}: not a JSON object", mpath);
    if (meta.contains("format") && meta.at("format") != kFormat) fail("{}: format is not {}", mpath, kFormat);
    ic.hidden = meta_int(meta, "hidden", mpath, 1, int64_t{1} << 16);
    ic.horizon = meta_int(meta, "horizon", mpath, 1, int64_t{1} << 20);
    // Written by every version but the first, whose classifiers all used 8.
    ic.tail_tokens = meta.contains("tail_tokens") ? meta_int(meta, "tail_tokens", mpath, 1, int64_t{1} << 20) : 8;
    ic.holdout = meta.contains("holdout") && meta.at("holdout").is_number() ? meta.at("holdout").get<double>() : 0.0;

    SafetensorsFile f(wpath);
    const int64_t in = 2 * c.hidden_size, pairs = c.n_moe_layers() * c.n_routed_experts, D = ic.hidden;
    auto copy = [&](const char* name, std::vector<float>& dst, std::vector<int64_t> shape) {
        TensorView t = f.tensor(name);
        if (t.info->dtype != DType::F32 || t.info->shape != shape) {
            fail("{}: {} has the wrong shape or dtype for this model (retrain with `chronos train intent`)", wpath, name);
        }
        dst.assign(t.as<float>(), t.as<float>() + t.info->numel());
    };
    copy("intent.up_proj.weight", ic.up_w, {D, in});
    copy("intent.up_proj.bias", ic.up_b, {D});
    copy("intent.out_proj.weight", ic.out_w, {pairs, D});
    copy("intent.out_proj.bias", ic.out_b, {pairs});
    ic.present = true;
    return ic;
}

void intent_save(const std::string& dir, const IntentClassifier& ic, const ModelConfig& c) {
    const int64_t in = 2 * c.hidden_size, pairs = c.n_moe_layers() * c.n_routed_experts, D = ic.hidden;
    CHRONOS_ASSERT(static_cast<int64_t>(ic.up_w.size()) == D * in && static_cast<int64_t>(ic.up_b.size()) == D &&
                       static_cast<int64_t>(ic.out_w.size()) == pairs * D && static_cast<int64_t>(ic.out_b.size()) == pairs,
                   "intent classifier tensors do not match its width and the model");
    SafetensorsWriter w;
    w.add("intent.up_proj.weight", DType::F32, {D, in}, ic.up_w.data(), ic.up_w.size() * sizeof(float));
    w.add("intent.up_proj.bias", DType::F32, {D}, ic.up_b.data(), ic.up_b.size() * sizeof(float));
    w.add("intent.out_proj.weight", DType::F32, {pairs, D}, ic.out_w.data(), ic.out_w.size() * sizeof(float));
    w.add("intent.out_proj.bias", DType::F32, {pairs}, ic.out_b.data(), ic.out_b.size() * sizeof(float));
    w.write(dir + "/intent.safetensors");
    nlohmann::ordered_json meta{{"format", kFormat}, {"horizon", ic.horizon}, {"hidden", ic.hidden}, {"tail_tokens", ic.tail_tokens},
                                {"features", "mean of model.embed_tokens over the prompt ++ mean over its last tail_tokens"},
                                {"output", "sigmoid scores per pair, layer-major (layer * n_routed_experts + expert)"},
                                {"holdout", ic.holdout}};
    file_write_atomic(dir + "/intent.json", meta.dump(2) + "\n");
}

}  // namespace chronos
