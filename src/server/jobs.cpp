// jobs.cpp: the web UI's job runner (jobs.h).
#include "server/jobs.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <regex>
#include <thread>

#include "core/error.h"
#include "core/file_io.h"
#include "server/openai_protocol.h"
#include "tune/child_process.h"
#include "tune/study_db.h"

namespace chronos::server {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

ApiError bad(const std::string& message, const std::string& param) { return ApiError(400, "invalid_request_error", message, param); }

// Whether `p` (canonical) lies inside `dir` (canonical).
bool inside(const fs::path& p, const fs::path& dir) {
    const std::string ps = p.string(), ds = dir.string();
    return ps.size() > ds.size() && ps.compare(0, ds.size(), ds) == 0 && ps[ds.size()] == '/';
}

const json& field(const json& j, const char* name) {
    if (!j.is_object() || !j.contains(name)) throw bad(fmt::format("'{}' is required", name), name);
    return j[name];
}

std::string string_field(const json& j, const char* name) {
    const json& v = field(j, name);
    if (!v.is_string()) throw bad(fmt::format("'{}' must be a string", name), name);
    return v.get<std::string>();
}

int64_t int_field(const json& j, const char* name, int64_t lo, int64_t hi) {
    const json& v = field(j, name);
    if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi) {
        throw bad(fmt::format("'{}' must be an integer in [{}, {}]", name, lo, hi), name);
    }
    return v.get<int64_t>();
}

double now_s() { return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(); }

std::string file_tail(const fs::path& p, size_t bytes) {
    std::ifstream in(p, std::ios::binary);
    if (!in) return "";
    in.seekg(0, std::ios::end);
    const std::streamoff size = in.tellg();
    const std::streamoff from = size > static_cast<std::streamoff>(bytes) ? size - static_cast<std::streamoff>(bytes) : 0;
    in.seekg(from);
    std::string s(static_cast<size_t>(size - from), '\0');
    in.read(s.data(), static_cast<std::streamsize>(s.size()));
    return s;
}

// The records of a JSONL log (the last `limit`); a line still being written is skipped.
json jsonl_records(const fs::path& p, size_t limit) {
    json out = json::array();
    std::ifstream in(p);
    std::string line;
    std::vector<json> all;
    while (std::getline(in, line)) {
        const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
        if (j.is_object()) all.push_back(j);
    }
    const size_t from = all.size() > limit ? all.size() - limit : 0;
    for (size_t i = from; i < all.size(); ++i) out.push_back(all[i]);
    return out;
}

json json_file(const fs::path& p) {
    std::ifstream in(p);
    if (!in) return nullptr;
    return json::parse(in, nullptr, /*allow_exceptions=*/false);
}

}  // namespace

JobRunner::JobRunner(const std::string& root, const std::string& chronos) : root_(fs::canonical(root)), chronos_(chronos) {
    for (const char* sub : {"configs", "data", "runs"}) {
        if (!fs::is_directory(root_ / sub)) fail("the web UI needs the project folder ({}/ missing in {})", sub, root_.string());
    }
}

JobRunner::~JobRunner() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (Job& j : jobs_) {
        if (j.state == "running") tune::child_kill(j.pid);
    }
}

fs::path JobRunner::config_path(const std::string& name) const {
    static const std::regex ok("[A-Za-z0-9._-]{1,100}");
    if (!std::regex_match(name, ok) || name.find("..") != std::string::npos) throw bad(fmt::format("'{}' is not a config name", name), "config");
    const fs::path dir = fs::canonical(root_ / "configs");
    const fs::path p = dir / (name + ".json");
    std::error_code ec;
    const fs::path real = fs::canonical(p, ec);
    if (ec || !inside(real, dir) || !fs::is_regular_file(real)) throw bad(fmt::format("no config configs/{}.json", name), "config");
    return real;
}

namespace {

fs::path under(const fs::path& root, const char* sub, const std::string& rel, const char* param, bool directory) {
    if (rel.empty() || rel.size() > 300 || rel[0] == '/') throw bad(fmt::format("'{}' must be a path relative to the project", rel), param);
    const fs::path dir = fs::canonical(root / sub);
    std::error_code ec;
    const fs::path real = fs::canonical(root / rel, ec);
    if (ec || !inside(real, dir)) throw bad(fmt::format("'{}' is not a file under {}/", rel, sub), param);
    if (directory ? !fs::is_directory(real) : !fs::is_regular_file(real)) throw bad(fmt::format("'{}' does not exist", rel), param);
    return real;
}

}  // namespace

fs::path JobRunner::data_path(const std::string& rel) const { return under(root_, "data", rel, "data", false); }
fs::path JobRunner::model_path(const std::string& rel) const { return under(root_, "runs", rel, "model", true); }

std::string JobRunner::start(const json& r) {
    const std::string kind = string_field(r, "kind");
    std::lock_guard<std::mutex> lock(mutex_);
    Job j;
    j.kind = kind;
    j.id = fmt::format("{}-{}-{}", kind, static_cast<int64_t>(now_s()), next_++);
    const fs::path out = root_ / "runs" / "ui" / j.id;
    const std::string exe = chronos_.string();
    if (kind == "train") {
        const fs::path config = config_path(string_field(r, "config"));
        const fs::path data = data_path(string_field(r, "data"));
        const int64_t steps = int_field(r, "steps", 1, 1000000);
        j.log = (out / "train.log.jsonl").string();
        j.argv = {exe, "train", "pretrain", "--config", config.string(), "--data", data.string(), "--out", (out / "model").string(),
                  "--log", j.log, "--steps", std::to_string(steps), "--eval-interval", std::to_string(std::max<int64_t>(steps / 4, 1))};
    } else if (kind == "pipeline") {
        const fs::path base = config_path(string_field(r, "config"));
        json cfg = json_file(base);
        if (!cfg.is_object() || !cfg.contains("stages") || !cfg["stages"].is_array()) throw bad("not a pipeline file", "config");
        if (r.contains("stages")) {
            const json& over = r["stages"];
            if (!over.is_array()) throw bad("'stages' must be an array", "stages");
            for (const json& o : over) {
                const std::string name = string_field(o, "name");
                json* stage = nullptr;
                for (json& s : cfg["stages"]) {
                    if (s.value("name", "") == name) stage = &s;
                }
                if (stage == nullptr) throw bad(fmt::format("the pipeline has no stage '{}'", name), "stages");
                if (o.contains("data")) {
                    data_path(string_field(o, "data"));
                    (*stage)["data"] = o["data"];
                }
                if (o.contains("steps")) (*stage)["steps"] = int_field(o, "steps", 1, 1000000);
            }
        }
        cfg["out"] = (out / "out").string();
        fs::create_directories(out);
        file_write_atomic((out / "pipeline.json").string(), cfg.dump(2) + "\n");
        j.result = (out / "out" / "pipeline.json").string();
        j.argv = {exe, "pipeline", "--config", (out / "pipeline.json").string(), "--out", (out / "out").string()};
    } else if (kind == "bench") {
        const fs::path model = model_path(string_field(r, "model"));
        const fs::path data = data_path(string_field(r, "data"));
        j.result = (out / "bench.json").string();
        j.argv = {exe, "bench", "offload", "--model", model.string(), "--data", data.string(), "--prompts", "2", "--prompt-tokens", "32",
                  "--gen-tokens", "16", "--budgets", "100,50,25", "--modes", "exact,soft,lru", "--no-eager", "--json", j.result,
                  "--markdown", (out / "bench.md").string()};
    } else if (kind == "tune") {
        const fs::path space = config_path(string_field(r, "space"));
        const int64_t trials = int_field(r, "trials", 1, 1000);
        j.result = (out / "study").string();
        j.argv = {exe, "tune", "--study", j.result, "--space", space.string(), "--trials", std::to_string(trials)};
    } else {
        throw bad(fmt::format("unknown job kind '{}' (train, pipeline, bench, tune)", kind), "kind");
    }
    fs::create_directories(out);
    j.out = out.string();
    tune::ChildSpec spec;
    spec.argv = j.argv;
    spec.stdout_path = (out / "output.txt").string();
    spec.stderr_path = spec.stdout_path;
    spec.env = {{"CHRONOS_PROGRESS", "0"}};
    j.pid = tune::child_start(spec);
    j.started = now_s();
    jobs_.push_back(j);
    return j.id;
}

void JobRunner::reap() {
    for (Job& j : jobs_) {
        if (j.state != "running") continue;
        int status = 0;
        if (tune::child_poll(j.pid, &status)) {
            j.status = status;
            j.state = status == 0 ? "finished" : "failed";
        }
    }
}

JobRunner::Job* JobRunner::find(const std::string& id) {
    for (Job& j : jobs_) {
        if (j.id == id) return &j;
    }
    throw ApiError(404, "invalid_request_error", fmt::format("no job '{}'", id), "id");
}

void JobRunner::cancel(const std::string& id) {
    std::lock_guard<std::mutex> lock(mutex_);
    reap();
    Job* j = find(id);
    if (j->state != "running") return;
    tune::child_kill(j->pid);
    j->state = "cancelled";
}

json JobRunner::summary(const Job& j) const {
    return {{"id", j.id}, {"kind", j.kind}, {"state", j.state}, {"status", j.status}, {"started", j.started},
            {"command", tune::command_line(j.argv)}, {"out", fs::path(j.out).lexically_relative(root_).string()}};
}

json JobRunner::list() {
    std::lock_guard<std::mutex> lock(mutex_);
    reap();
    json out = json::array();
    for (auto it = jobs_.rbegin(); it != jobs_.rend(); ++it) out.push_back(summary(*it));
    return out;
}

json JobRunner::describe(const std::string& id) {
    std::lock_guard<std::mutex> lock(mutex_);
    reap();
    const Job& j = *find(id);
    json d = summary(j);
    d["output"] = file_tail(fs::path(j.out) / "output.txt", 4096);
    if (!j.log.empty()) d["log"] = jsonl_records(j.log, 5000);
    if (j.kind == "pipeline" || j.kind == "bench") d["result"] = json_file(j.result);
    if (j.kind == "tune" && fs::exists(fs::path(j.result) / "study.db")) {
        json trials = json::array();
        try {
            tune::StudyDb db(j.result);
            for (const tune::Trial& t : db.trials()) {
                trials.push_back({{"number", t.number}, {"state", tune::trial_state_name(t.state)}, {"value", t.value}, {"params", t.params}});
            }
        } catch (const std::exception&) {
            // The tuner holds the database for a moment: the page asks again.
        }
        d["trials"] = trials;
    }
    return d;
}

std::string JobRunner::apply_best(const std::string& id, const std::string& name) {
    std::string study;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        reap();
        const Job& j = *find(id);
        if (j.kind != "tune") throw bad("only a tune job has a best trial", "id");
        study = j.result;
    }
    static const std::regex ok("[A-Za-z0-9_-]{1,80}");
    if (!std::regex_match(name, ok)) throw bad(fmt::format("'{}' is not a config name", name), "name");
    const fs::path dest = root_ / "configs" / (name + ".json");
    if (fs::exists(dest)) throw bad(fmt::format("configs/{}.json exists already", name), "name");
    tune::ChildSpec spec;
    spec.argv = {chronos_.string(), "tune", "--study", study, "--apply-best", "--out", dest.string()};
    const pid_t pid = tune::child_start(spec);
    int status = 0;
    while (!tune::child_poll(pid, &status)) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (status != 0) throw ApiError(409, "invalid_request_error", "the study has no complete trial yet", "id");
    return dest.lexically_relative(root_).string();
}

json JobRunner::choices() {
    json c = {{"configs", json::array()}, {"pipelines", json::array()}, {"tune", json::array()}, {"data", json::array()}, {"models", json::array()}};
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(root_ / "configs")) {
        if (e.path().extension() == ".json") names.push_back(e.path().stem().string());
    }
    std::sort(names.begin(), names.end());
    for (const std::string& n : names) {
        const char* key = n.rfind("pipeline-", 0) == 0 ? "pipelines" : n.rfind("tune-", 0) == 0 ? "tune" : "configs";
        c[key].push_back(n);
    }
    std::vector<std::string> data;
    for (const auto& e : fs::recursive_directory_iterator(root_ / "data", fs::directory_options::follow_directory_symlink)) {
        if (e.path().extension() == ".jsonl") data.push_back(e.path().lexically_relative(root_).string());
        if (data.size() > 500) break;
    }
    std::sort(data.begin(), data.end());
    c["data"] = data;
    std::vector<std::string> models;
    for (const auto& e : fs::directory_iterator(root_ / "runs")) {
        if (fs::exists(e.path() / "cluster_manifest.json")) models.push_back(e.path().lexically_relative(root_).string());
    }
    std::sort(models.begin(), models.end());
    c["models"] = models;
    return c;
}

}  // namespace chronos::server
