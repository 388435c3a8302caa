// tune.h: `chronos tune`, a persistent hyper-parameter study. The study lives in a folder: its
// SQLite database (study_db.h), the space it was created with, and one folder per trial. The
// sampler is TPE (tpe.h) or random search, the pruner the median rule (pruner.h), the trials
// child processes (trial_runner.h). Killing the tuner at any moment loses no finished trial;
// running the same command again resumes, retrying the trials that were cut short.
//
//     chronos::tune::TuneOptions o;
//     o.study = "runs/study-tiny"; o.space = "configs/tune-tiny.json"; o.trials = 20;
//     chronos::tune::tune_run(o);                       // runs until 20 trials finished
//     chronos::tune::tune_show("runs/study-tiny");      // the table, best, importances
//     chronos::tune::tune_apply_best("runs/study-tiny", "configs/tiny-tuned.json");
#pragma once

#include <cstdint>
#include <string>

namespace chronos::tune {

struct TuneOptions {
    std::string study;          // the study's folder
    std::string space;          // the space file; may be left out when the study exists
    int64_t trials = 0;         // run until this many trials are complete, pruned or failed
    int jobs = 1;               // trials at once
    double timeout_per_trial_s = 0;  // 0: none
    int threads = 0;            // per trial; 0: the machine's cores / jobs
};

// Returns the number of trials this call finished.
int64_t tune_run(const TuneOptions& o);
void tune_show(const std::string& study);
// Writes the best complete trial's config (the base config with its parameters, as the trial
// trained it) to out, atomically; runtime knobs go to its "_runtime" section.
void tune_apply_best(const std::string& study, const std::string& out);

}  // namespace chronos::tune
