// checkpoint_io.h: ChronosModel <-> checkpoint directory (docs/format.md). Parameter names are
// the tensor names, so saving is a walk over named_parameters().
#pragma once

#include <torch/torch.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "format/checkpoint.h"
#include "model/model.h"

namespace chronos {

// Adds every parameter (fp32, contiguous copies kept in `keep`) to a writer.
void model_add_tensors(ChronosModel& model, SafetensorsWriter& writer, std::vector<torch::Tensor>& keep);
class AdamW;
// Writes a training checkpoint atomically (a directory swap): config.json, model.safetensors,
// optimizer.safetensors, a copy of the tokenizer and trainer_state.json (`state`, written as
// given). Every trainer saves through it.
void checkpoint_save(const std::string& dir, ChronosModel& model, const AdamW& opt, const std::string& tokenizer_path,
                     const nlohmann::json& state);
// Loads a checkpoint directory into a new model (fp32 master weights, bit-exact).
ChronosModel model_load(const std::string& dir);
// Copies weights from an open checkpoint into `model` (names and shapes already validated),
// leaving the parameters whose name `skip` accepts as they are.
void model_copy_weights(ChronosModel& model, const Checkpoint& ck, const std::function<bool(const std::string&)>& skip = {});

}  // namespace chronos
