// tune.cpp: the study loop of `chronos tune` (tune.h): sample, run, record, resume.
#include "tune/tune.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <thread>

#include "core/error.h"
#include "core/file_io.h"
#include "format/named_config.h"
#include "tune/search_space.h"
#include "tune/child_process.h"
#include "tune/study_db.h"
#include "tune/study_report.h"
#include "tune/tpe.h"
#include "tune/trial_runner.h"

namespace chronos::tune {

using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(); }

// The space of a study: the stored one (the study was created with it) or the file, which must
// then be the same file.
SearchSpace study_space(StudyDb& db, const std::string& study, const std::string& file) {
    const auto stored = db.meta_get("space");
    if (file.empty()) {
        if (!stored) fail("study {} has no trials yet: give --space FILE", study);
        return space_from_json(json::parse(*stored), db.path() + " (the study's space)");
    }
    SearchSpace s = space_load(file);
    if (stored && json::parse(*stored) != s.source) {
        fail("study {} was created with another space; {} differs from it (use a new --study, or leave --space out to resume)", study, file);
    }
    if (!stored) db.meta_set("space", s.source.dump());
    return s;
}

uint64_t trial_seed(uint64_t study_seed, int64_t number) {
    uint64_t z = study_seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(number) + 1;  // splitmix64
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

bool counts(const Trial& t) { return t.state == TrialState::complete || t.state == TrialState::pruned || t.state == TrialState::fail; }

std::string metrics_text(const SearchSpace& s, const Trial& t) {
    std::string out;
    for (const auto& o : s.objective) {
        if (t.metrics.contains(o.metric) && t.metrics[o.metric].is_number()) out += fmt::format("  {} {:.4g}", o.metric, t.metrics[o.metric].get<double>());
    }
    return out;
}

}  // namespace

int64_t tune_run(const TuneOptions& o) {
    if (o.trials < 1) fail("--trials must be at least 1");
    if (o.jobs < 1) fail("--jobs must be at least 1");
    dir_create(o.study);
    // Two tuners on one study would number their trials over each other.
    FileLock lock(o.study + "/lock", fmt::format("another chronos tune is running study {} (it holds {}/lock)", o.study, o.study));
    StudyDb db(o.study);
    const SearchSpace space = study_space(db, o.study, o.space);
    const int64_t interrupted = db.mark_interrupted("the tuner stopped while this trial ran; retried");
    if (interrupted > 0) std::printf("study %s: %lld trial(s) interrupted by an earlier tuner: retrying them\n", o.study.c_str(), static_cast<long long>(interrupted));

    RunnerOptions ro;
    ro.study_dir = o.study;
    ro.chronos = tune::self_executable();
    ro.timeout_s = o.timeout_per_trial_s;
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    ro.threads = o.threads > 0 ? o.threads : std::max(1, cores / o.jobs);

    std::vector<Trial> history = db.trials();
    std::vector<std::unique_ptr<TrialRun>> running;
    int64_t finished_here = 0;
    const double t0 = now_s();
    auto finished_total = [&] { return std::count_if(history.begin(), history.end(), counts); };
    auto next_retry = [&]() -> const Trial* {
        for (const auto& t : history) {
            if (t.state != TrialState::interrupted) continue;
            bool retried = false;
            for (const auto& u : history) retried = retried || u.retry_of == t.number;
            if (!retried) return &t;
        }
        return nullptr;
    };
    std::printf("study %s: %lld of %lld trials finished; %d at a time, %d thread(s) each\n", o.study.c_str(),
                static_cast<long long>(finished_total()), static_cast<long long>(o.trials), o.jobs, ro.threads);
    std::fflush(stdout);

    while (true) {
        while (static_cast<int>(running.size()) < o.jobs && finished_total() + static_cast<int64_t>(running.size()) < o.trials) {
            Trial t;
            t.number = history.empty() ? 0 : history.back().number + 1;
            t.seed = trial_seed(space.seed, t.number);
            if (const Trial* r = next_retry()) {
                t.params = r->params;
                t.retry_of = r->number;
            } else if (t.number == 0 && space.trial.kind == "pretrain" && space.enqueue_base) {
                std::mt19937_64 rng(t.seed);
                t.params = base_sample(space, rng);
                t.message = "the base config";
            } else {
                std::mt19937_64 rng(t.seed);
                t.params = space.sampler == "random" ? random_sample(space, rng) : tpe_sample(space, history, rng);
            }
            t.started = now_s();
            t.state = TrialState::running;
            // Numbered first, so the folder and the database agree on the number.
            db.trial_create(t);
            auto run = std::make_unique<TrialRun>(space, ro, t);
            db.trial_update(run->trial());
            history = db.trials();
            running.push_back(std::move(run));
        }
        if (running.empty()) break;
        for (size_t i = 0; i < running.size();) {
            if (!running[i]->poll(db, history)) {
                ++i;
                continue;
            }
            const Trial& t = running[i]->trial();
            db.trial_update(t);
            ++finished_here;
            std::printf("trial %lld %s%s%s  (%.1f s)%s\n", static_cast<long long>(t.number), trial_state_name(t.state),
                        t.state == TrialState::complete ? fmt::format("  value {:.5g}", t.value).c_str() : "", metrics_text(space, t).c_str(),
                        t.finished - t.started, t.message.empty() ? "" : ("  " + t.message).c_str());
            std::fflush(stdout);
            running.erase(running.begin() + static_cast<std::ptrdiff_t>(i));
            history = db.trials();
        }
        if (!running.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    history = db.trials();
    const Trial* best = report_best(history);
    std::printf("study %s: %lld trial(s) finished in this run (%.0f s); ", o.study.c_str(), static_cast<long long>(finished_here), now_s() - t0);
    if (best) {
        std::printf("best: trial %lld, value %.6g\n", static_cast<long long>(best->number), best->value);
    } else {
        std::printf("no trial completed\n");
        // Every trial failed or was pruned: the space or its data is likely at fault. The
        // database keeps the trials and their messages (--show).
        if (finished_here > 0) {
            fail("no trial completed: the {} trial(s) of this run failed or were pruned (chronos tune --study {} --show)", finished_here,
                 o.study);
        }
    }
    return finished_here;
}

void tune_show(const std::string& study) {
    if (!file_exists(study + "/study.db")) fail("{} is not a study (no study.db)", study);
    StudyDb db(study);
    const SearchSpace space = study_space(db, study, "");
    report_print(space, db.trials(), stdout);
}

void tune_apply_best(const std::string& study, const std::string& out) {
    if (!file_exists(study + "/study.db")) fail("{} is not a study (no study.db)", study);
    StudyDb db(study);
    const SearchSpace space = study_space(db, study, "");
    if (space.trial.kind != "pretrain") fail("study {} runs commands, not pretraining: it has no config to write", study);
    const auto trials = db.trials();
    const Trial* best = report_best(trials);
    if (!best) fail("study {} has no complete trial yet", study);
    json config = space_apply(space, best->params);
    json runtime = json::object();
    for (const auto& [k, v] : best->params.items()) {
        if (k.rfind("runtime.", 0) == 0) runtime[k.substr(8)] = v;
    }
    if (!runtime.empty()) config["_runtime"] = runtime;
    config["_tuned"] = {{"study", study}, {"trial", best->number}, {"value", best->value}, {"metrics", best->metrics}};
    // Checked as `train pretrain --config` will read it before it replaces anything.
    const std::string tmp = out + ".check.json";
    file_write_atomic(tmp, config.dump(2) + "\n");
    try {
        named_config_load(tmp);
    } catch (const Error& e) {
        fs::remove(tmp);
        fail("the best trial's config does not load: {}", e.what());
    }
    fs::remove(tmp);
    file_write_atomic(out, config.dump(2) + "\n");
    std::printf("wrote %s: trial %lld (value %.6g)\n", out.c_str(), static_cast<long long>(best->number), best->value);
}

}  // namespace chronos::tune
