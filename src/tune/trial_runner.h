// trial_runner.h: one trial as the commands it runs. A pretrain trial writes its config (the
// base config with the parameters applied), runs `train pretrain` while it follows the training
// log's held-out evaluations (each one's objective value recorded and put to the pruner), then the evaluations
// the objective needs (`eval ppl`, `eval routing`, and `pack` + `bench offload` for
// offload_tok_s). A command trial runs the space's argv. Every command's output goes to the
// trial's folder; none is parsed by a shell.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "tune/search_space.h"
#include "tune/study_db.h"
#include "tune/trial.h"

namespace chronos::tune {

struct RunnerOptions {
    std::string study_dir;      // the study's folder (trial folders live in it)
    std::string chronos;        // the chronos executable the trials run
    int threads = 1;            // per trial
    double timeout_s = 0;       // per trial, 0: none
};

class TrialRun {
public:
    // Builds the trial's commands (t.command lists them) and its folder; a config the base
    // config's checks refuse makes the trial fail at once (finished() is true).
    TrialRun(const SearchSpace& s, const RunnerOptions& o, Trial t);
    ~TrialRun();
    TrialRun(const TrialRun&) = delete;
    TrialRun& operator=(const TrialRun&) = delete;

    // Starts the next command, follows the intermediate values (recorded in db, put to the
    // pruner against `history`), applies the timeout. Returns true once the trial finished:
    // trial() then holds its final state, value, metrics and message.
    bool poll(StudyDb& db, const std::vector<Trial>& history);
    bool finished() const { return done_; }
    const Trial& trial() const { return trial_; }
    Trial& trial() { return trial_; }

private:
    struct Step {
        std::string name;
        std::vector<std::string> argv;
        std::string stdout_path;
        bool follows_log = false;  // the step whose log carries the intermediate values
    };
    void finish(TrialState state, const std::string& message);
    void read_intermediate(StudyDb& db, const std::vector<Trial>& history);
    void collect_metrics();

    const SearchSpace& space_;
    RunnerOptions opt_;
    Trial trial_;
    std::string dir_;                  // absolute trial folder
    std::string log_path_;             // the JSONL with {"step", "val_loss", ...} records
    std::vector<Step> steps_;
    size_t current_ = 0;
    pid_t pid_ = -1;
    size_t log_offset_ = 0;
    bool done_ = false;
};

}  // namespace chronos::tune
