// pipeline.h: `chronos pipeline --config FILE [--out DIR]`: stages 1-6 (pretrain, SFT, DPO,
// ORPO, GRPO, distillation) from one file (format/pipeline_config.h), then one table of every
// stage's model measured on the same held-out files.
//
// Each stage runs as a child process (`chronos train STAGE ...`, the command a user would type,
// printed before it starts), so a stage's checkpoints are the pipeline's state: a rerun skips a
// stage whose checkpoint reached its steps and resumes (--resume) one that stopped part-way;
// killed at any point, the pipeline loses at most the last save interval. Evaluations are child
// processes too (`chronos eval responses|reward|routing --json`), cached in OUT/.eval and
// redone when a model changes.
//
//     chronos::PipelineOptions o;
//     o.config = "configs/pipeline-tiny.json";
//     nlohmann::json table = chronos::pipeline_run(o);  // also OUT/pipeline.json and pipeline.txt
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace chronos {

struct PipelineOptions {
    std::string config;         // the pipeline file
    std::string out;            // default: the file's "out", else runs/NAME
    int threads = 0;            // passed to every child (0: the machine's cores)
    int64_t save_interval = 25; // for stages whose options do not set one
};

nlohmann::json pipeline_run(const PipelineOptions& options);

// The table as text, one row per stage (what the command prints).
std::string pipeline_table_text(const nlohmann::json& table);

}  // namespace chronos
