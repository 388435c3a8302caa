// study_db.h: a tuning study's database, DIR/study.db (SQLite). Every trial's parameters,
// state, objective, metrics, intermediate values, timings and commands. Each change is one
// transaction in write-ahead-log mode with full sync, so a crash (kill -9, power loss) at any
// moment leaves the last committed state: no finished trial is ever lost.
//
//     chronos::tune::StudyDb db("runs/study");          // creates runs/study/study.db
//     int64_t n = db.trial_create(trial);               // numbers 0, 1, 2 ...
//     db.intermediate_add(n, 50, 5.91);
//     trial.state = TrialState::complete; db.trial_update(trial);
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tune/trial.h"

struct sqlite3;

namespace chronos::tune {

class StudyDb {
public:
    explicit StudyDb(const std::string& dir);  // fails with a clear message on a corrupt file
    ~StudyDb();
    StudyDb(const StudyDb&) = delete;
    StudyDb& operator=(const StudyDb&) = delete;

    std::optional<std::string> meta_get(const std::string& key);
    void meta_set(const std::string& key, const std::string& value);

    // Inserts a trial with the next number, which it returns (and sets in t).
    int64_t trial_create(Trial& t);
    // Writes state, value, metrics, command, message, dir and timings of trial t.number.
    void trial_update(const Trial& t);
    void intermediate_add(int64_t number, int64_t step, double value);
    // Every trial, in number order, with its intermediate values.
    std::vector<Trial> trials();
    // Trials a dead tuner left running become interrupted; returns how many.
    int64_t mark_interrupted(const std::string& message);
    // "ok", or what SQLite's integrity check found.
    std::string integrity_check();

    const std::string& path() const { return path_; }

private:
    void exec(const char* sql);
    std::string path_;
    sqlite3* db_ = nullptr;
};

}  // namespace chronos::tune
