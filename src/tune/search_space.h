// search_space.h: the space file of `chronos tune` (JSON): the parameters searched, the base
// config they modify, what a trial runs and the objective it is scored by. docs/tune.md gives
// the full format; a short one:
//
//     {"base_config": "tiny",
//      "data": {"train": "data/prepared/pretrain.train.jsonl",
//               "validation": "data/prepared/pretrain.validation.jsonl"},
//      "trial": {"steps": 300, "eval_interval": 50},
//      "objective": [{"metric": "loss", "weight": 1}, {"metric": "switch_rate", "weight": 1}],
//      "params": [
//        {"name": "model.lambda_balance", "type": "float", "low": 0.01, "high": 1, "log": true},
//        {"name": "model.lookahead_steps", "type": "int", "low": 0, "high": 2},
//        {"name": "model.lambda_lookahead", "type": "float", "low": 0.1, "high": 3, "log": true,
//         "condition": {"model.lookahead_steps": [1, 2]}}]}
//
//     chronos::tune::SearchSpace s = chronos::tune::space_load("configs/tune-tiny.json");
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace chronos::tune {

enum class ParamType { float_, int_, categorical };

struct Param {
    std::string name;              // model.FIELD, train.FIELD or runtime.KNOB (pretrain trials)
    ParamType type = ParamType::float_;
    double low = 0, high = 0;      // float and int: the closed range
    bool log = false;              // sampled uniformly in log space (low > 0)
    double step = 0;               // int: 1; float: 0 (continuous)
    std::vector<nlohmann::json> choices;  // categorical
    // Active only when the parameter `condition_parent` (earlier in the list) took one of
    // `condition_values`; an inactive parameter is absent from the trial's parameters.
    std::string condition_parent;
    std::vector<nlohmann::json> condition_values;
};

enum class Direction { minimize, maximize };

struct ObjectiveTerm {
    std::string metric;
    double weight = 1;
    Direction direction = Direction::minimize;
};

struct PrunerOptions {
    bool enabled = true;
    int64_t n_startup_trials = 5;  // no pruning before this many trials completed
    int64_t n_warmup_steps = 0;    // nor at a step below this
};

struct TpeOptions {
    int64_t n_startup_trials = 10;  // random samples before TPE takes over
    int64_t n_ei_candidates = 24;   // candidates drawn from l(x) per parameter
    double prior_weight = 1.0;
    bool consider_magic_clip = true;
    bool consider_endpoints = false;
};

// What one trial runs. kind "pretrain": train pretrain on the base config with the parameters
// applied, then the evaluations the objective needs. kind "command": the argv in `command`,
// with {NAME} replaced by parameter NAME's value and {trial_dir}, {log}, {seed} by the trial's.
struct TrialSpec {
    std::string kind = "pretrain";
    std::vector<std::string> command;
    std::string train_data, validation_data, tokenizer;
    int64_t steps = 0, eval_interval = 0;  // 0: the base config's
    int64_t eval_tokens = 20000;           // held-out tokens for loss, ppl and routing metrics
    // offload_tok_s: one bench offload run at this budget and mode, on packs of this dtype
    double offload_budget_percent = 25;
    std::string offload_mode = "exact";
    std::string offload_dtype = "f32";
    double prefetch_threshold = -1;        // <0: bench offload's default
    int64_t offload_prompts = 2, offload_prompt_tokens = 32, offload_gen_tokens = 32;
};

struct SearchSpace {
    std::string path;
    nlohmann::json source;            // the file as read (stored in the study)
    std::string base_config;          // pretrain trials: a config name or path
    nlohmann::json base;              // its JSON ({"model": ..., "train": ...})
    std::vector<Param> params;
    TrialSpec trial;
    std::vector<ObjectiveTerm> objective;
    TpeOptions tpe;
    PrunerOptions pruner;
    std::string sampler = "tpe";      // or "random"
    bool enqueue_base = true;         // pretrain: trial 0 runs the base config's values
    uint64_t seed = 0;
};

// Reads and checks a space file: every error is one line naming the file and the field.
SearchSpace space_load(const std::string& path);
SearchSpace space_parse(const std::string& text, const std::string& where);
SearchSpace space_from_json(const nlohmann::json& j, const std::string& where);

const Param* space_find(const SearchSpace& s, const std::string& name);
// Whether p is active under the values already chosen for the parameters before it.
bool param_active(const Param& p, const nlohmann::json& chosen);
// Known metrics of pretrain trials and the direction in which each is better.
bool metric_known(const std::string& metric, Direction* direction);
// The scalar minimised: sum of weight x metric (maximised metrics enter negated). Fails when a
// term's metric is missing.
double objective_value(const SearchSpace& s, const nlohmann::json& metrics);
// The objective as one record of a training log measures it, for the pruner: a pretrain trial's
// held-out val_loss gives loss and ppl, val_switch_rate switch_rate, val_lookahead_recall
// lookahead_recall; terms the log cannot give (offload_tok_s) are left out, and when none of the
// objective's terms is there, val_loss alone stands in. A command trial reports val_loss. NaN
// when a needed field is missing or not a number.
double intermediate_value(const SearchSpace& s, const nlohmann::json& record);
// The config a pretrain trial trains: the base config with model.* and train.* set.
nlohmann::json space_apply(const SearchSpace& s, const nlohmann::json& params);

}  // namespace chronos::tune
