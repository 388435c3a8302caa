// jobs.h: the jobs the web UI starts — `chronos train pretrain`, `pipeline`, `bench offload` and
// `tune` — as child processes of the server. Each is an argv list handed to execvp (no shell ever
// parses a value), built only from config names found in the project's configs/ folder and
// files under its data/ and runs/ folders, checked after resolving symlinks. A job's output
// goes to runs/ui/ID/ (its stdout and stderr, its checkpoint, log, results); the list lives in
// the server and survives a page reload. Cancelling stops the job's whole process group.
//
//     chronos::server::JobRunner jobs(project_root, chronos_executable);
//     std::string id = jobs.start({{"kind", "train"}, {"config", "tiny"}, {"data", "data/prepared/pretrain.train.jsonl"}});
//     nlohmann::json j = jobs.describe(id);   // state, argv, log records, results
//     jobs.cancel(id);
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace chronos::server {

class JobRunner {
public:
    // root: the project folder (configs/, data/, runs/); chronos: the executable jobs run.
    JobRunner(const std::string& root, const std::string& chronos);
    ~JobRunner();  // stops every job still running

    // Starts a job from a request body; throws ApiError (400) for anything not allowed.
    std::string start(const nlohmann::json& request);
    void cancel(const std::string& id);         // throws ApiError (404) for an unknown id
    nlohmann::json list();                      // every job, newest first, without logs
    nlohmann::json describe(const std::string& id);  // one job with its log records, output tail and results
    // Writes the best trial of a finished tune job's study as configs/NAME.json (chronos tune
    // --apply-best); returns the path written.
    std::string apply_best(const std::string& id, const std::string& name);

    // What the UI may choose from: model configs, pipeline and tune files, data files, models.
    nlohmann::json choices();

    // A config name: letters, digits, '.', '_' and '-' only, naming configs/NAME.json.
    std::filesystem::path config_path(const std::string& name) const;
    // A file under data/ or runs/ (relative to the project), after resolving symlinks.
    std::filesystem::path data_path(const std::string& rel) const;
    std::filesystem::path model_path(const std::string& rel) const;

private:
    struct Job {
        std::string id, kind, out, log, result;  // out: its folder; log, result: files the UI reads
        std::vector<std::string> argv;
        pid_t pid = -1;
        std::string state = "running";  // running, finished, failed, cancelled
        int status = 0;
        double started = 0;
    };
    void reap();  // updates the states of jobs that ended (under mutex_)
    Job* find(const std::string& id);
    nlohmann::json summary(const Job& j) const;

    std::filesystem::path root_, chronos_;
    std::mutex mutex_;
    std::vector<Job> jobs_;
    int next_ = 1;
};

}  // namespace chronos::server
