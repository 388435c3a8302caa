// train_api.h: what the `chronos` command calls in the train wing. Plain structs only, so the
// CLI's translation units never include torch/torch.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "format/model_config.h"
#include "format/named_config.h"

namespace chronos {


struct DistributedOptions {
    int nproc = 1;                 // >1: this process launches nproc local workers
    int rank = -1;                 // >=0: this process is one worker
    int world_size = 1;
    std::string rendezvous;        // "file:PATH" or "tcp:HOST:PORT"
};

struct PretrainOptions {
    std::string config;            // name or path
    std::string data;              // pretrain.train.jsonl
    std::string validation;        // default: data with ".train." -> ".validation."
    std::string tokenizer = "data/tokenizer.model";
    std::string out;               // checkpoint directory
    std::string log;               // JSONL log; default OUT.log.jsonl
    bool baseline = false;
    bool resume = false;
    int threads = 0;
    TrainHyper overrides;          // fields set here (>= 0) override the config
    std::vector<std::string> overridden;  // names of the fields given on the command line
    DistributedOptions dist;
};

// Runs (or, with dist.nproc > 1, launches) pretraining. Returns the process exit status.
int train_pretrain(const PretrainOptions& options, int argc, char** argv);

// `chronos train sft|dpo|orpo|grpo|distill`: an alignment stage on a checkpoint. Each keeps the Chronos loss
// mix of the starting model's config (balance, temporal, lookahead; logged separately) and adds
// the router KL anchor to a frozen copy of the starting model. The output is a normal checkpoint
// that records its stage, parent and data (trainer_state.json "stages"); --resume continues it
// exactly. docs/training.md, "Alignment stages".
struct StageOptions {
    std::string stage;             // "sft", "dpo", "orpo", "grpo" or "distill"
    std::string from;              // the starting checkpoint (also the frozen reference)
    std::string data;              // sft, preference, prompts or pretraining JSONL
    std::string validation;        // default: the .validation. file beside data (if it exists)
    std::string out;
    std::string log;               // JSONL log; default OUT.log.jsonl
    bool resume = false;
    int threads = 0;
    int64_t steps = 200, batch_size = 8, seq_len = 256, warmup_steps = 10;
    int64_t eval_interval = 50, eval_batches = 8, save_interval = 0;
    double lr = 5e-4, min_lr_ratio = 0.1, weight_decay = 0.0, grad_clip = 1.0;
    double router_kl = -1;         // <0: the stage's default (SFT 0.01, DPO, ORPO, GRPO 0.1, distill 0.05)
    double beta = 0.1;             // DPO
    double orpo_lambda = 0.1;      // ORPO's weight on the odds-ratio term
    std::string teacher;           // distill: the teacher checkpoint (same tokenizer)
    double alpha = 0.5;            // distill: weight of the soft term
    double temperature = 2.0;      // distill: softening of both distributions
    // GRPO: batch_size prompts per step, `group` completions each, sampled at sample_temperature
    // with top_p, updated `updates` times per rollout against the sampling policy (clip_eps) with
    // kl_beta x k3 KL to the starting model.
    int64_t group = 8, max_new_tokens = 24, updates = 1, eval_prompts = 64;
    double sample_temperature = 1.0, top_p = 1.0, clip_eps = 0.2, kl_beta = 0.04;
    double format_reward = 0;      // weight of the format reward
    std::string reward_model;      // optional checkpoint scoring the completions (same tokenizer)
    double reward_model_weight = 1.0;
    uint64_t seed = 1234;
};
// The router KL anchor weight a stage uses when --router-kl is not given (distill: 0.05).
double stage_default_router_kl(const std::string& stage);
int train_stage(const StageOptions& options);
// `chronos eval responses`: the held-out figures of the stages on any checkpoint, on the first
// `batches` x `batch_size` records of an sft or preference file (the kind read from its first
// record): the replies' cross-entropy, for pairs the preference accuracy, and with a reference
// the router drift (KL(reference router || this router), mean over tokens and layers).
nlohmann::json eval_responses(const std::string& model_dir, const std::string& data, const std::string& reference_dir, int64_t seq_len,
                              int64_t batches, int64_t batch_size);
// `chronos eval reward`: greedy completions of the first `limit` records of a prompts file (0:
// all): the share whose answer matches exactly, the share well formed, the decode speed, and the
// first `samples` prompts with their answers and completions.
nlohmann::json eval_reward(const std::string& model_dir, const std::string& data, int64_t limit, int64_t max_new_tokens, int64_t samples = 0);

// `chronos train lookahead`: refits the lookahead head alone on a pretrained checkpoint. The
// head's inputs are detached during pretraining, so training it on the frozen model changes no
// router decision, no logit and no other weight; it only buys the head more steps at about a
// third of a pretraining step's cost (forward only, no backward through the model).
struct LookaheadFitOptions {
    std::string model;            // pretrained checkpoint directory
    std::string data;             // pretrain.train.jsonl
    std::string validation;       // default: the .validation. file beside data
    std::string out;              // default: model (updated in place, file by file, atomically)
    std::string log;              // JSONL log; default OUT.lookahead.log.jsonl
    int64_t hidden = 0;           // >0 and different from the config: a new head of this width (an imported model without a head: 256)
    std::string target;           // "router_probs" / "router_topk"; default: the checkpoint's
    int64_t input_layer = -1;     // >=0 and different from the config: a new head reading this block
    int64_t steps = 600;
    int64_t batch_size = 16;
    int64_t seq_len = 256;
    double lr = 3e-3;
    int64_t warmup_steps = 20;
    int64_t eval_batches = 8;
    uint64_t seed = 7;            // sample order (and a new head's initialisation)
    int threads = 0;
};
struct LookaheadFitResult {
    double val_loss_before = 0, val_loss_after = 0;  // held-out lookahead CE (mean over k, layers)
    int64_t steps = 0;
};
LookaheadFitResult lookahead_fit(const LookaheadFitOptions& options);

struct InitOptions {
    std::string config;
    std::string out;
    std::string tokenizer;   // optional: copied in, and gives vocab_size
    int64_t vocab_size = 0;  // used when no tokenizer and the config has none
    uint64_t seed = 0;
    bool baseline = false;
};
void model_init(const InitOptions& options);

struct EvalPplResult {
    double loss = 0, ppl = 0;
    int64_t tokens = 0;
};
EvalPplResult eval_ppl(const std::string& model_dir, const std::string& data, int64_t seq_len, int64_t max_tokens);

struct EvalRoutingResult {
    std::vector<double> switch_rate;                 // per layer
    double switch_rate_mean = 0;
    std::vector<double> lookahead_recall;            // per k = 1..K (mean over layers)
    std::vector<std::vector<double>> lookahead_recall_layer;  // [k][layer]
    // Recall of t+j's experts by t's (j = 1..max(K, 1)+1, mean over layers): the copy-the-last-routing
    // predictor. copy_recall[0] = 1 - switch rate; the head at t knows t-1's routing, so its
    // recall at t+j compares with copy_recall[j].
    std::vector<double> copy_recall;
    std::vector<std::vector<double>> load;           // [layer][expert] share of assignments
    int64_t tokens = 0;
};
EvalRoutingResult eval_routing(const std::string& model_dir, const std::string& data, int64_t seq_len, int64_t max_tokens);

// Writes {"ids": [...], "logits": [[...], ...]} for every position of `text`.
void eval_logits(const std::string& model_dir, const std::string& text, const std::string& out_path);


struct TraceOptions {
    std::string model;           // checkpoint directory
    std::string data;            // sft, prompts or pretrain JSONL
    std::string out;             // trace file
    int64_t max_sequences = 2000;
    int64_t max_continuation = 128;  // continuation tokens kept per sequence
    int64_t pretrain_prompt = 64;    // prompt length for plain text records
    int64_t stride = 1;              // record every stride-th line (spreads the sample over sources)
};
// Runs the model teacher-forced over prompt + continuation and records every token's routing.
// Returns the number of sequences written.
int64_t trace_record(const TraceOptions& options);

struct IntentOptions {
    std::string model;           // checkpoint directory; the classifier is saved into it
    std::string trace;
    int64_t horizon = 4;         // "used within the next N generated tokens" (docs/benchmarks.md: why 4)
    int64_t hidden = 256;
    int64_t steps = 400;
    double lr = 3e-3;
    double holdout = 0.2;        // share of prompts held out for evaluation
    uint64_t seed = 1;
};
struct IntentMetrics {
    int64_t budget = 0;          // pairs
    double recall = 0, precision = 0;                    // intent classifier
    double freq_recall = 0, freq_precision = 0;          // most-used pairs overall
    int64_t train_prompts = 0, eval_prompts = 0;
    // Sequential pack reads to load a held-out prompt's predicted set (-1: no packs).
    int64_t reads_median = -1;
    double reads_mean = -1;
};
// Trains the intent classifier, saves intent.safetensors + intent.json into the checkpoint,
// and returns its held-out metrics at a 25% budget.
IntentMetrics intent_train(const IntentOptions& options);
// Held-out metrics of a saved classifier on a trace (the same deterministic hold-out split).
IntentMetrics intent_eval(const std::string& model_dir, const std::string& trace, double budget_fraction, double holdout);


// libtorch eager decoding, the reference the runtime's speed is compared with: for each prompt,
// prefill then teacher-force `continuation` tokens one at a time through the KV cache. Returns
// the decode time over all prompts, with libtorch's intra-op pool set to `threads`.
struct EagerDecodeResult {
    int64_t tokens = 0;
    double seconds = 0;
};
EagerDecodeResult eager_decode(const std::string& model_dir, const std::vector<std::vector<int32_t>>& prompts,
                               const std::vector<std::vector<int32_t>>& continuations, int threads);

}  // namespace chronos
