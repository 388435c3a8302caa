// study_db.cpp: the study database on SQLite (study_db.h).
#include "tune/study_db.h"

#include <sqlite3.h>

#include <cmath>
#include <map>

#include "core/error.h"
#include "core/file_io.h"

namespace chronos::tune {

using json = nlohmann::json;

namespace {

const char* kSchema = R"(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials(
  number INTEGER PRIMARY KEY,
  state TEXT NOT NULL CHECK (state IN ('running', 'complete', 'pruned', 'fail', 'interrupted')),
  params TEXT NOT NULL,
  value REAL,
  metrics TEXT NOT NULL DEFAULT '{}',
  command TEXT NOT NULL DEFAULT '',
  message TEXT NOT NULL DEFAULT '',
  dir TEXT NOT NULL DEFAULT '',
  started REAL NOT NULL,
  finished REAL,
  retry_of INTEGER,
  seed INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS intermediate(
  number INTEGER NOT NULL REFERENCES trials(number),
  step INTEGER NOT NULL,
  value REAL,
  PRIMARY KEY (number, step));
)";

// One prepared statement, finalized on every path out.
class Statement {
public:
    Statement(sqlite3* db, const char* sql, const std::string& path) : db_(db) {
        if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK) fail("{}: {}", path, sqlite3_errmsg(db));
    }
    ~Statement() { sqlite3_finalize(s_); }
    Statement& bind(int i, int64_t v) { return check(sqlite3_bind_int64(s_, i, v)); }
    Statement& bind(int i, double v) { return check(std::isfinite(v) ? sqlite3_bind_double(s_, i, v) : sqlite3_bind_null(s_, i)); }
    Statement& bind(int i, const std::string& v) { return check(sqlite3_bind_text(s_, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT)); }
    Statement& bind_null(int i) { return check(sqlite3_bind_null(s_, i)); }
    bool step() {
        const int rc = sqlite3_step(s_);
        if (rc == SQLITE_ROW) return true;
        if (rc == SQLITE_DONE) return false;
        fail("study database: {}", sqlite3_errmsg(db_));
    }
    int64_t i64(int c) { return sqlite3_column_int64(s_, c); }
    double f64(int c) { return sqlite3_column_type(s_, c) == SQLITE_NULL ? std::nan("") : sqlite3_column_double(s_, c); }
    bool null(int c) { return sqlite3_column_type(s_, c) == SQLITE_NULL; }
    std::string text(int c) {
        const unsigned char* t = sqlite3_column_text(s_, c);
        return t ? reinterpret_cast<const char*>(t) : "";
    }

private:
    Statement& check(int rc) {
        if (rc != SQLITE_OK) fail("study database: {}", sqlite3_errmsg(db_));
        return *this;
    }
    sqlite3* db_;
    sqlite3_stmt* s_ = nullptr;
};

// BEGIN IMMEDIATE ... COMMIT, rolled back when the body throws.
template <typename F>
void transaction(sqlite3* db, F&& body) {
    char* err = nullptr;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, &err) != SQLITE_OK) {
        std::string m = err ? err : "?";
        sqlite3_free(err);
        fail("study database: {}", m);
    }
    try {
        body();
    } catch (...) {
        sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
    if (sqlite3_exec(db, "COMMIT", nullptr, nullptr, &err) != SQLITE_OK) {
        std::string m = err ? err : "?";
        sqlite3_free(err);
        sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
        fail("study database: {}", m);
    }
}

json parse_or_empty(const std::string& s) {
    try {
        return json::parse(s);
    } catch (const json::exception&) {
        return json::object();
    }
}

}  // namespace

StudyDb::StudyDb(const std::string& dir) {
    dir_create(dir);
    path_ = dir + "/study.db";
    if (sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
        std::string m = db_ ? sqlite3_errmsg(db_) : "out of memory";
        sqlite3_close(db_);
        db_ = nullptr;
        fail("cannot open study database {}: {}", path_, m);
    }
    sqlite3_busy_timeout(db_, 10000);
    try {
        exec("PRAGMA journal_mode=WAL");
        exec("PRAGMA synchronous=FULL");
        exec("PRAGMA foreign_keys=ON");
        exec(kSchema);
    } catch (const Error& e) {
        sqlite3_close(db_);
        db_ = nullptr;
        fail("{} is not a usable study database ({})", path_, e.what());
    }
}

StudyDb::~StudyDb() { sqlite3_close(db_); }

void StudyDb::exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
        std::string m = err ? err : sqlite3_errmsg(db_);
        sqlite3_free(err);
        fail("{}: {}", path_, m);
    }
}

std::optional<std::string> StudyDb::meta_get(const std::string& key) {
    Statement s(db_, "SELECT value FROM meta WHERE key = ?", path_);
    s.bind(1, key);
    if (!s.step()) return std::nullopt;
    return s.text(0);
}

void StudyDb::meta_set(const std::string& key, const std::string& value) {
    transaction(db_, [&] {
        Statement s(db_, "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", path_);
        s.bind(1, key).bind(2, value).step();
    });
}

int64_t StudyDb::trial_create(Trial& t) {
    transaction(db_, [&] {
        Statement n(db_, "SELECT COALESCE(MAX(number) + 1, 0) FROM trials", path_);
        n.step();
        t.number = n.i64(0);
        Statement s(db_, "INSERT INTO trials(number, state, params, value, metrics, command, message, dir, started, finished, retry_of, seed) "
                         "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", path_);
        s.bind(1, t.number).bind(2, std::string(trial_state_name(t.state))).bind(3, t.params.dump()).bind(4, t.value);
        s.bind(5, t.metrics.dump()).bind(6, t.command).bind(7, t.message).bind(8, t.dir).bind(9, t.started);
        if (t.finished > 0) s.bind(10, t.finished); else s.bind_null(10);
        if (t.retry_of >= 0) s.bind(11, t.retry_of); else s.bind_null(11);
        s.bind(12, static_cast<int64_t>(t.seed));
        s.step();
    });
    return t.number;
}

void StudyDb::trial_update(const Trial& t) {
    transaction(db_, [&] {
        Statement s(db_, "UPDATE trials SET state = ?, value = ?, metrics = ?, command = ?, message = ?, dir = ?, finished = ? WHERE number = ?", path_);
        s.bind(1, std::string(trial_state_name(t.state))).bind(2, t.value).bind(3, t.metrics.dump()).bind(4, t.command);
        s.bind(5, t.message).bind(6, t.dir);
        if (t.finished > 0) s.bind(7, t.finished); else s.bind_null(7);
        s.bind(8, t.number);
        s.step();
        if (sqlite3_changes(db_) != 1) fail("study database: no trial {}", t.number);
    });
}

void StudyDb::intermediate_add(int64_t number, int64_t step, double value) {
    transaction(db_, [&] {
        Statement s(db_, "INSERT INTO intermediate(number, step, value) VALUES(?, ?, ?) "
                         "ON CONFLICT(number, step) DO UPDATE SET value = excluded.value", path_);
        s.bind(1, number).bind(2, step).bind(3, value).step();
    });
}

std::vector<Trial> StudyDb::trials() {
    std::vector<Trial> out;
    std::map<int64_t, size_t> index;
    {
        Statement s(db_, "SELECT number, state, params, value, metrics, command, message, dir, started, finished, retry_of, seed "
                         "FROM trials ORDER BY number", path_);
        while (s.step()) {
            Trial t;
            t.number = s.i64(0);
            t.state = trial_state_parse(s.text(1));
            t.params = parse_or_empty(s.text(2));
            t.value = s.f64(3);
            t.metrics = parse_or_empty(s.text(4));
            t.command = s.text(5);
            t.message = s.text(6);
            t.dir = s.text(7);
            t.started = s.f64(8);
            t.finished = s.null(9) ? 0 : s.f64(9);
            t.retry_of = s.null(10) ? -1 : s.i64(10);
            t.seed = static_cast<uint64_t>(s.i64(11));
            index[t.number] = out.size();
            out.push_back(std::move(t));
        }
    }
    Statement s(db_, "SELECT number, step, value FROM intermediate ORDER BY number, step", path_);
    while (s.step()) {
        const auto it = index.find(s.i64(0));
        if (it != index.end()) out[it->second].intermediate[s.i64(1)] = s.f64(2);
    }
    return out;
}

int64_t StudyDb::mark_interrupted(const std::string& message) {
    int64_t n = 0;
    transaction(db_, [&] {
        Statement s(db_, "UPDATE trials SET state = 'interrupted', message = ? WHERE state = 'running'", path_);
        s.bind(1, message).step();
        n = sqlite3_changes(db_);
    });
    return n;
}

std::string StudyDb::integrity_check() {
    Statement s(db_, "PRAGMA integrity_check", path_);
    std::string out;
    while (s.step()) out += (out.empty() ? "" : "; ") + s.text(0);
    return out;
}

const char* trial_state_name(TrialState s) {
    switch (s) {
        case TrialState::running: return "running";
        case TrialState::complete: return "complete";
        case TrialState::pruned: return "pruned";
        case TrialState::fail: return "fail";
        case TrialState::interrupted: return "interrupted";
    }
    return "?";
}

TrialState trial_state_parse(const std::string& name) {
    for (TrialState s : {TrialState::running, TrialState::complete, TrialState::pruned, TrialState::fail, TrialState::interrupted}) {
        if (name == trial_state_name(s)) return s;
    }
    fail("study database: unknown trial state \"{}\"", name);
}

}  // namespace chronos::tune
