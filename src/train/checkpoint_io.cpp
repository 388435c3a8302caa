// checkpoint_io.cpp: saving and loading the libtorch model; `chronos init`.
#include "train/checkpoint_io.h"

#include <cstring>

#include "core/error.h"
#include "core/file_io.h"
#include "tokenizer/tokenizer.h"
#include "train/adamw.h"
#include "train/train_api.h"

namespace chronos {

void model_add_tensors(ChronosModel& model, SafetensorsWriter& writer, std::vector<torch::Tensor>& keep) {
    keep.reserve(keep.size() + model->named_parameters().size());
    for (const auto& p : model->named_parameters()) {
        keep.push_back(p.value().detach().to(torch::kFloat32).contiguous());
        const torch::Tensor& t = keep.back();
        std::vector<int64_t> shape(t.sizes().begin(), t.sizes().end());
        writer.add(p.key(), DType::F32, shape, t.data_ptr<float>(), static_cast<uint64_t>(t.numel()) * 4);
    }
}

void model_copy_weights(ChronosModel& model, const Checkpoint& ck, const std::function<bool(const std::string&)>& skip) {
    torch::NoGradGuard no_grad;
    for (auto& p : model->named_parameters()) {
        if (skip && skip(p.key())) continue;
        TensorView view = ck.weights->tensor(p.key());
        CHRONOS_ASSERT(view.info->numel() == p.value().numel(), "validated shapes differ");
        std::memcpy(p.value().data_ptr<float>(), view.data, view.info->nbytes());
    }
}

void checkpoint_save(const std::string& dir, ChronosModel& model, const AdamW& opt, const std::string& tokenizer_path,
                     const nlohmann::json& state) {
    CheckpointStaging stage(dir);
    config_save(model->config, model->losses, stage.file("config.json"));
    SafetensorsWriter w;
    std::vector<torch::Tensor> keep;
    model_add_tensors(model, w, keep);
    w.write(stage.file("model.safetensors"));
    opt.save(stage.file("optimizer.safetensors"));
    file_write_atomic(stage.file("tokenizer.model"), file_read_all(tokenizer_path));
    file_write_atomic(stage.file("trainer_state.json"), state.dump(2) + "\n");
    stage.commit();
}

ChronosModel model_load(const std::string& dir) {
    Checkpoint ck = checkpoint_open(dir);
    ChronosModel model(ck.config, ck.losses);
    model_copy_weights(model, ck);
    return model;
}

void model_init(const InitOptions& o) {
    NamedConfig nc = named_config_load(o.config);
    ModelConfig c = o.baseline ? config_make_baseline(nc.model) : nc.model;
    const LossWeights losses = o.baseline ? losses_make_baseline(nc.losses) : nc.losses;
    if (!o.tokenizer.empty()) {
        Tokenizer tok(o.tokenizer);
        c.vocab_size = tok.vocab_size();
    } else if (o.vocab_size > 0) {
        c.vocab_size = o.vocab_size;
    }
    if (c.vocab_size <= 0) fail("init: give --tokenizer or --vocab-size (config {} has no vocab_size)", nc.path);
    torch::manual_seed(o.seed);
    ChronosModel model(c, losses);
    CheckpointStaging stage(o.out);
    config_save(c, losses, stage.file("config.json"));
    SafetensorsWriter w;
    std::vector<torch::Tensor> keep;
    model_add_tensors(model, w, keep);
    w.write(stage.file("model.safetensors"));
    if (!o.tokenizer.empty()) file_write_atomic(stage.file("tokenizer.model"), file_read_all(o.tokenizer));
    stage.commit();
}

}  // namespace chronos
