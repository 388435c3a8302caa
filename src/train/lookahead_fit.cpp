// lookahead_fit.cpp: `chronos train lookahead` — more steps for the lookahead head alone.
//
// The head reads detached inputs (the hidden state after block lookahead_input_layer and a
// token's full routing) and learns the router's decision at t+k (or its softmax, per lookahead_target).
// Nothing in the model depends on it, so with every other parameter frozen a step costs one
// forward pass plus the head's own backward, and the router decisions, logits and every other
// weight stay bit for bit what pretraining left. At the end of Stage 1 the head is still far
// from converged (its loss falls steeply to the last step, docs/benchmarks.md), which is what
// this buys back cheaply.
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_io.h"
#include "core/progress.h"
#include "format/trainer_state.h"
#include "train/adamw.h"
#include "data/token_stream.h"
#include "train/checkpoint_io.h"
#include "train/objective.h"
#include "train/train_api.h"

namespace chronos {

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

bool is_head_parameter(const std::string& name) { return name.rfind("lookahead.", 0) == 0; }

// Mean held-out lookahead loss over the first `batches` x `rows` windows, in order.
double validation_lookahead(ChronosModel& model, const std::vector<int32_t>& tokens, int64_t seq_len, int64_t rows, int64_t batches, int32_t pad) {
    return held_out_mean(tokens, seq_len, rows, batches, [&](const torch::Tensor& ids) {
        torch::Tensor valid = ids.narrow(1, 1, seq_len) != pad;
        ForwardOutput out = model->forward(ids.narrow(1, 0, seq_len));
        return lookahead_total(lookahead_terms(out, valid, model->config)).item<double>();
    });
}

}  // namespace

LookaheadFitResult lookahead_fit(const LookaheadFitOptions& o) {
    const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    torch::set_num_threads(o.threads > 0 ? o.threads : hw);
    if (o.steps <= 0 || o.batch_size <= 0 || o.seq_len <= 1) fail("train lookahead: --steps, --batch-size and --seq-len must be positive (seq-len > 1)");
    if (!(o.lr > 0)) fail("train lookahead: --lr must be positive, got {}", o.lr);

    Checkpoint ck = checkpoint_open(o.model);
    const ModelConfig& c = ck.config;
    // An imported model without a head gets one: K = 2 steps ahead, as the named configs have it,
    // of --hidden width (default 256), trained on the router's top-k. A Chronos model trained
    // without one (--baseline) is the comparison without predictors, and stays so.
    const bool headless = c.lookahead_steps <= 0 || c.lookahead_hidden_size <= 0;
    if (headless && c.source_model_type.empty()) {
        fail("{} has no lookahead head (lookahead_steps {}, lookahead_hidden_size {}); a --baseline model has none",
             o.model, c.lookahead_steps, c.lookahead_hidden_size);
    }
    if (o.seq_len > c.max_position_embeddings) fail("--seq-len {} exceeds max_position_embeddings {}", o.seq_len, c.max_position_embeddings);
    if (ck.tokenizer_path.empty()) fail("{} has no tokenizer (tokenizer.model, or tokenizer.json for an imported model)", o.model);
    std::string out_dir = o.out.empty() ? o.model : o.out;
    while (out_dir.size() > 1 && out_dir.back() == '/') out_dir.pop_back();  // the default log goes beside it, not inside
    // The pretraining state is carried over with the fit recorded in it; a checkpoint no step
    // has trained (chronos init) starts from the fresh state, so that what is written is a
    // trainer_state.json its reader accepts.
    json state = (file_exists(o.model + "/trainer_state.json") ? trainer_state_load(o.model + "/trainer_state.json")
                                                               : trainer_state_fresh()).doc;

    // A new width means a new head: everything else is copied, the head starts from the
    // model's usual initialisation (seeded), and config.json records the width.
    ModelConfig config = c;
    if (headless) {
        config.lookahead_steps = 2;
        config.lookahead_hidden_size = 256;
        config.lookahead_target = LookaheadTarget::router_topk;
        config.lookahead_input_layer = 0;
    }
    if (o.hidden > 0) config.lookahead_hidden_size = o.hidden;
    if (!o.target.empty()) config.lookahead_target = lookahead_target_from_name(o.target, "--target");
    if (o.input_layer >= 0) {
        if (o.input_layer >= c.num_hidden_layers) fail("--input-layer {}: the model has layers 0 .. {}", o.input_layer, c.num_hidden_layers - 1);
        config.lookahead_input_layer = o.input_layer;
    }
    torch::manual_seed(o.seed);
    ChronosModel model(config, ck.losses);
    const bool new_head = headless || config.lookahead_hidden_size != c.lookahead_hidden_size || config.lookahead_input_layer != c.lookahead_input_layer;
    model_copy_weights(model, ck, [&](const std::string& name) { return new_head && is_head_parameter(name); });
    if (new_head) {
        spdlog::info("new lookahead head: hidden {} (was {}), reading block {} (was {})", config.lookahead_hidden_size, c.lookahead_hidden_size,
                     config.lookahead_input_layer, c.lookahead_input_layer);
    }
    spdlog::info("lookahead target: {}", lookahead_target_name(config.lookahead_target));
    model->eval();
    std::vector<std::pair<std::string, torch::Tensor>> head;
    for (auto& p : model->named_parameters()) {
        if (is_head_parameter(p.key())) head.emplace_back(p.key(), p.value());
        else p.value().set_requires_grad(false);
    }
    AdamW opt(head, AdamWOptions{o.lr, 0.1, o.warmup_steps, o.steps, 0.9, 0.95, 1e-8, 0.1});

    Tokenizer tok(ck.tokenizer_path);
    const TokenSplits splits = token_splits_load(o.data, o.validation, tok);
    const std::vector<int32_t>& train_tokens = splits.train;
    const std::vector<int32_t>& val_tokens = splits.validation;
    const std::string& val_path = splits.validation_path;
    SequenceSampler sampler(train_tokens, o.seq_len, o.seed);
    if (sampler.windows() == 0) fail("{} holds fewer than {} tokens", o.data, o.seq_len + 1);

    LookaheadFitResult result;
    result.steps = o.steps;
    result.val_loss_before = val_tokens.empty() ? std::nan("") : validation_lookahead(model, val_tokens, o.seq_len, o.batch_size, o.eval_batches, tok.pad());
    if (!val_tokens.empty()) spdlog::info("held-out lookahead loss before: {:.4f} ({})", result.val_loss_before, val_path);

    const std::string log_path = o.log.empty() ? out_dir + ".lookahead.log.jsonl" : o.log;
    dir_create_parent(log_path);
    std::ofstream log(log_path, std::ios::trunc);
    if (!log) fail("cannot open log {}", log_path);
    ProgressBar bar("lookahead head", static_cast<uint64_t>(o.steps), "steps");
    std::vector<torch::Tensor> weights;
    for (auto& p : head) weights.push_back(p.second);
    for (int64_t step = 0; step < o.steps; ++step) {
        const auto t0 = std::chrono::steady_clock::now();
        torch::Tensor ids = sampler_batch(sampler, step * o.batch_size, o.batch_size, o.seq_len);
        torch::Tensor inputs = ids.narrow(1, 0, o.seq_len), valid = ids.narrow(1, 1, o.seq_len) != tok.pad();
        for (auto& w : weights) w.mutable_grad() = torch::Tensor();
        ForwardOutput out = model->forward(inputs);
        torch::Tensor loss = lookahead_total(lookahead_terms(out, valid, config));
        loss.backward();
        const double grad_norm = torch::nn::utils::clip_grad_norm_(weights, 1.0);
        const double lr = opt.step();
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const double tok_s = static_cast<double>(o.batch_size * o.seq_len) / seconds;
        const double l = loss.item<double>();
        log << json{{"step", step + 1}, {"lr", lr}, {"lookahead", l}, {"grad_norm", grad_norm}, {"tok_s", tok_s}}.dump() << "\n";
        bar.set_note(fmt::format("lookahead {:.4f} {:.0f} tok/s", l, tok_s));
        bar.set(static_cast<uint64_t>(step + 1));
        if (!bar.enabled() && ((step + 1) % 100 == 0 || step + 1 == o.steps)) {
            spdlog::info("step {}/{} lookahead {:.4f} lr {:.2e} {:.0f} tok/s", step + 1, o.steps, l, lr, tok_s);
        }
    }
    bar.finish();
    log.flush();
    result.val_loss_after = val_tokens.empty() ? std::nan("") : validation_lookahead(model, val_tokens, o.seq_len, o.batch_size, o.eval_batches, tok.pad());
    if (!val_tokens.empty()) spdlog::info("held-out lookahead loss after {} steps: {:.4f}", o.steps, result.val_loss_after);

    // Recorded beside the pretraining state; the pretraining optimizer state is left as it was
    // (a later --resume of pretraining continues the head from these weights with old moments).
    json fit{{"steps", o.steps}, {"hidden", config.lookahead_hidden_size}, {"input_layer", config.lookahead_input_layer}, {"target", lookahead_target_name(config.lookahead_target)}, {"batch_size", o.batch_size}, {"seq_len", o.seq_len}, {"lr", o.lr},
             {"warmup_steps", o.warmup_steps}, {"seed", o.seed}, {"data", o.data}};
    if (!val_tokens.empty()) {
        fit["val_lookahead_before"] = result.val_loss_before;
        fit["val_lookahead_after"] = result.val_loss_after;
    }
    state["lookahead_fit"] = fit;
    SafetensorsWriter w;
    std::vector<torch::Tensor> keep;
    model_add_tensors(model, w, keep);
    // One atomic swap of the whole directory, in place or not: the weights, config and state
    // change together, and everything else (packs, intent classifier, optimizer) is carried over.
    std::vector<std::string> others;
    for (const auto& entry : fs::directory_iterator(o.model)) {
        const std::string name = entry.path().filename().string();
        if (name != "config.json" && name != "model.safetensors" && name != "trainer_state.json") others.push_back(name);
    }
    CheckpointStaging stage(out_dir);
    config_save(config, ck.losses, stage.file("config.json"));
    w.write(stage.file("model.safetensors"));
    file_write_atomic(stage.file("trainer_state.json"), state.dump(2) + "\n");
    stage.keep_from(o.model, others);
    stage.commit();
    spdlog::info("saved {}", out_dir);
    return result;
}

}  // namespace chronos
