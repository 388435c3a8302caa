// cmd_tune.cpp: `chronos tune`, a persistent TPE study (src/tune/tune.h). It runs in the lean
// process: the trials are child processes (`chronos train pretrain`, `eval`, `bench offload`).
#include <memory>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/error.h"
#include "tune/tune.h"

namespace chronos {

void cmd_tune_register(CLI::App& app) {
    struct Args {
        tune::TuneOptions o;
        bool show = false, apply_best = false;
        std::string out;
    };
    auto a = std::make_shared<Args>();
    CLI::App* t = app.add_subcommand("tune", "search hyper-parameters with TPE: a persistent study in SQLite (docs/tune.md)");
    t->add_option("--study", a->o.study, "the study's folder (created; rerun the command to resume)")->required();
    t->add_option("--space", a->o.space, "space file (JSON): parameters, base config, data, objective (configs/tune-tiny.json)");
    t->add_option("--trials", a->o.trials, "run until this many trials are complete, pruned or failed")->check(cli_range(1, 1e6));
    t->add_option("--jobs", a->o.jobs, "trials at once")->capture_default_str()->check(CLI::Range(1, 64));
    t->add_option("--timeout-per-trial", a->o.timeout_per_trial_s, "seconds a trial may take before it is stopped and failed (0: none)")
        ->capture_default_str()->check(cli_range(0, 1e7));
    t->add_flag("--show", a->show, "print the trials, the best trial, parameter importances and the Pareto front");
    t->add_flag("--apply-best", a->apply_best, "write the best trial's config (with --out)");
    t->add_option("--out", a->out, "with --apply-best: the config file to write (e.g. configs/tiny-tuned.json)");
    t->callback([a]() {
        a->o.threads = cli_globals().threads;
        if (a->apply_best) {
            if (a->out.empty()) throw CLI::ValidationError("--apply-best", "needs --out FILE");
            tune::tune_apply_best(a->o.study, a->out);
            return;
        }
        if (a->show) {
            tune::tune_show(a->o.study);
            return;
        }
        if (a->o.trials < 1) throw CLI::ValidationError("--trials", "is required to run a study (or --show, --apply-best)");
        tune::tune_run(a->o);
    });
}

}  // namespace chronos
