// pipeline_config.h: the JSON file `chronos pipeline --config` reads (docs/training.md,
// "Pipeline"): the stages to run in order, each naming its data, steps and options, and the
// held-out files every stage's model is measured on.
//
//     {"name": "pipeline-tiny", "out": "runs/pipeline-tiny",
//      "eval": {"sft": "...", "preference": "...", "prompts": "...", "pretrain": "..."},
//      "stages": [
//        {"name": "pretrain", "stage": "pretrain", "config": "tiny", "data": "...", "steps": 60},
//        {"name": "sft", "stage": "sft", "from": "pretrain", "data": "...", "steps": 40,
//         "options": {"batch-size": 8, "lr": 0.0005}},
//        {"name": "distill", "stage": "distill", "config": "tiny", "teacher": "sft", ...}]}
//
//     chronos::PipelineConfig pc = chronos::pipeline_config_load("configs/pipeline-tiny.json");
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace chronos {

struct PipelineStage {
    std::string name;          // unique, [A-Za-z0-9_-]+: the output folder OUT/NAME unless `out` is given
    std::string stage;         // pretrain, sft, dpo, orpo, grpo or distill
    std::string from;          // an earlier stage's name or a checkpoint folder (not for pretrain)
    std::string config;        // pretrain: the model config; distill: a student config to initialise instead of `from`
    std::string teacher;       // distill: an earlier stage's name or a checkpoint folder
    std::string reward_model;  // grpo, optional: the same
    std::string data;          // the training file
    std::string validation;    // optional; default: the .validation. file beside data
    std::string out;           // optional output folder
    int64_t steps = 0;         // pretrain: 0 takes the config's; the other stages need it
    uint64_t seed = 0;         // distill with `config`: the student's initialisation seed
    // Further command-line options of the stage, in file order ("batch-size": 8 -> --batch-size 8;
    // true -> the bare flag).
    std::vector<std::pair<std::string, std::string>> options;
    bool from_is_stage = false, teacher_is_stage = false, reward_model_is_stage = false;
};

// The held-out files of the final table; a missing entry leaves its columns empty.
struct PipelineEval {
    std::string sft, preference, prompts, pretrain;
    int64_t batches = 16;            // batches of 8 records for `eval responses`
    int64_t prompts_limit = 64;      // prompts for the greedy exact-match reward
    int64_t max_new_tokens = 24;
    int64_t routing_tokens = 20000;  // tokens for switch rate and lookahead recall
};

struct PipelineConfig {
    std::string name, out, path;
    std::string tokenizer = "data/tokenizer.model";
    std::vector<PipelineStage> stages;
    PipelineEval eval;
};

// Reads and checks the file: unknown keys, a stage type that does not exist, a name used twice,
// a `from` naming neither an earlier stage nor a folder, a data file that does not exist, an
// option the pipeline sets itself (--from, --out, --resume ...) each fail with one message.
PipelineConfig pipeline_config_load(const std::string& path);
PipelineConfig pipeline_config_parse(const std::string& text, const std::string& what);

}  // namespace chronos
