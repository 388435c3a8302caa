// cmd_pipeline.cpp: `chronos pipeline`, stages 1-6 from one file (src/pipeline/pipeline.h). It
// runs in the lean process: every stage and evaluation is a child process.
#include <memory>

#include "cli/commands.h"
#include "cli/options.h"
#include "pipeline/pipeline.h"

namespace chronos {

void cmd_pipeline_register(CLI::App& app) {
    auto o = std::make_shared<PipelineOptions>();
    CLI::App* p = app.add_subcommand("pipeline", "run stages 1-6 (pretrain, sft, dpo, orpo, grpo, distill) from one file, then one table (docs/training.md)");
    p->add_option("--config", o->config, "pipeline file (configs/pipeline-tiny.json, configs/pipeline-small.json)")->required();
    p->add_option("--out", o->out, "folder of the stages' checkpoints (default: the file's \"out\"); rerun to resume");
    p->add_option("--save-interval", o->save_interval, "steps between checkpoints of stages whose options set none")
        ->capture_default_str()->check(cli_range(1, 1e9));
    p->callback([o]() {
        o->threads = cli_globals().threads;
        pipeline_run(*o);
    });
}

}  // namespace chronos
