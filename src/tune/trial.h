// trial.h: one trial of a tuning study as the sampler, the pruner, the database and the report
// all see it: its parameters, its state, its objective and its intermediate values.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace chronos::tune {

// running: a tuner is (or was, when it died) running it. interrupted: the tuner stopped while
// it ran; the trial is retried under a new number with the same parameters. Only complete,
// pruned and fail count towards --trials.
enum class TrialState { running, complete, pruned, fail, interrupted };

const char* trial_state_name(TrialState s);
TrialState trial_state_parse(const std::string& name);  // fails on an unknown name

struct Trial {
    int64_t number = -1;
    TrialState state = TrialState::running;
    nlohmann::json params = nlohmann::json::object();   // name -> value, active parameters only
    double value = 0;                                    // the scalar minimised (complete trials)
    nlohmann::json metrics = nlohmann::json::object();  // every metric measured, by name
    std::map<int64_t, double> intermediate;              // step -> held-out objective (intermediate_value)
    std::string command;                                 // the commands run, one per line
    std::string message;                                 // why it failed or was pruned
    std::string dir;                                     // its folder, relative to the study
    double started = 0, finished = 0;                    // Unix seconds
    int64_t retry_of = -1;                               // the interrupted trial it repeats
    uint64_t seed = 0;                                   // what the trial's sampling drew with
};

}  // namespace chronos::tune
