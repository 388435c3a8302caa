// named_config.h: configs/NAME.json, the file `train pretrain --config` reads: {"model": {...},
// "train": {...}}. The model section is a config.json (vocab_size may be left out: the tokenizer
// gives it); the train section holds the optimisation hyper-parameters.
//
//     chronos::NamedConfig nc = chronos::named_config_load("tiny");  // configs/tiny.json
//     nc.train.steps, nc.model.hidden_size, nc.losses.lambda_balance ...
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "format/model_config.h"

namespace chronos {

// The "train" section of configs/NAME.json; every field can be overridden on the command line.
struct TrainHyper {
    int64_t seq_len = 256;
    int64_t batch_size = 16;        // sequences per optimizer step, over all processes
    int64_t grad_accum = 1;         // micro-batches per process and step
    int64_t steps = 1000;
    double lr = 3e-3;
    double min_lr_ratio = 0.1;      // cosine decays to lr * min_lr_ratio
    int64_t warmup_steps = 50;
    double weight_decay = 0.1;
    double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
    double grad_clip = 1.0;
    int64_t eval_interval = 100;
    int64_t eval_batches = 8;
    int64_t save_interval = 0;      // 0: save at the end only
    uint64_t seed = 1234;
};

struct NamedConfig {
    ModelConfig model;   // vocab_size is 0 until taken from the tokenizer
    LossWeights losses;  // the lambda_* and fallback_mask_prob fields of the model section
    TrainHyper train;
    std::string path;
};

// The file NAME names: NAME itself when it exists, else configs/NAME.json next to the working
// directory or the executable; fails with one clear line when there is none.
std::string named_config_resolve(const std::string& name_or_path);
// Reads and checks the file (unknown train fields, impossible values, seq_len over the context).
NamedConfig named_config_load(const std::string& name_or_path);
// The plain-MoE baseline of a config: full causal GQA everywhere, no lookahead, no locality.
ModelConfig config_make_baseline(const ModelConfig& c);
// Its loss mix: the balance term alone (no temporal, lookahead or router KL term, no masking).
LossWeights losses_make_baseline(const LossWeights& w);

// The train section's field names, in the order the file documents them.
const std::vector<std::string>& named_config_train_fields();

}  // namespace chronos
