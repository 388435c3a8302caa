// pipeline.cpp: running the stages of a pipeline file and measuring their models (pipeline.h).
#include "pipeline/pipeline.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "core/error.h"
#include "core/file_io.h"
#include "format/model_config.h"
#include "format/named_config.h"
#include "format/pipeline_config.h"
#include "format/trainer_state.h"
#include "tune/child_process.h"

namespace chronos {

using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

// Runs one command to its end; stdout to `stdout_path` (empty: ours). Returns its exit status.
int child_run(const std::vector<std::string>& argv, const std::string& stdout_path) {
    tune::ChildSpec c;
    c.argv = argv;
    c.stdout_path = stdout_path;
    const pid_t pid = tune::child_start(c);
    int status = 0;
    while (!tune::child_poll(pid, &status)) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return status;
}

struct StageDirs {
    std::string out, from, teacher, reward_model;
};

// Where a stage writes, and the folders its references name.
std::vector<StageDirs> stage_dirs(const PipelineConfig& pc, const std::string& out) {
    std::vector<StageDirs> d;
    std::map<std::string, std::string> by_name;
    for (const PipelineStage& s : pc.stages) {
        StageDirs x;
        x.out = s.out.empty() ? out + "/" + s.name : s.out;
        auto ref = [&](const std::string& r, bool is_stage) { return is_stage ? by_name.at(r) : r; };
        x.from = s.stage == "distill" && !s.config.empty() ? x.out + ".init" : ref(s.from, s.from_is_stage);
        x.teacher = ref(s.teacher, s.teacher_is_stage);
        x.reward_model = ref(s.reward_model, s.reward_model_is_stage);
        by_name[s.name] = x.out;
        for (const StageDirs& earlier : d) {
            if (fs::weakly_canonical(earlier.out) == fs::weakly_canonical(x.out)) fail("{}: stage {} writes to {}, as an earlier stage does", pc.path, s.name, x.out);
        }
        d.push_back(x);
    }
    return d;
}

// The steps a stage runs: its own, else (pretrain) its config's.
int64_t stage_steps(const PipelineStage& s) { return s.steps > 0 ? s.steps : named_config_load(s.config).train.steps; }

// Steps a stage's checkpoint has done: -1 without one. A checkpoint of another stage or parent
// in the folder is refused: resuming it would mix two runs.
int64_t stage_progress(const PipelineStage& s, const StageDirs& d) {
    const std::string state = d.out + "/trainer_state.json";
    if (!file_exists(state) || !file_exists(d.out + "/model.safetensors")) return -1;
    const TrainerState ts = trainer_state_load(state);
    if (s.stage != "pretrain") {
        const json& chain = ts.doc.contains("stages") ? ts.doc["stages"] : json();
        if (!chain.is_array() || chain.empty() || chain.back().value("stage", "") != s.stage || chain.back().value("parent", "") != d.from) {
            fail("{} holds another checkpoint than stage {} ({} from {}): remove it or give the stage another \"out\"", d.out, s.name, s.stage, d.from);
        }
    }
    return ts.step;
}

bool has_option(const PipelineStage& s, const std::string& flag) {
    for (const auto& [k, v] : s.options) {
        if (k == flag) return true;
    }
    return false;
}

std::vector<std::string> stage_command(const PipelineStage& s, const StageDirs& d, const PipelineConfig& pc, const std::string& self,
                                       const std::string& threads, int64_t save_interval, bool resume) {
    std::vector<std::string> a = {self, "--threads", threads, "train", s.stage};
    if (s.stage == "pretrain") {
        a.insert(a.end(), {"--config", s.config, "--tokenizer", pc.tokenizer});
    } else {
        a.insert(a.end(), {"--from", d.from});
    }
    a.insert(a.end(), {"--data", s.data, "--out", d.out, "--steps", std::to_string(stage_steps(s))});
    if (!s.validation.empty()) a.insert(a.end(), {"--validation", s.validation});
    if (!d.teacher.empty()) a.insert(a.end(), {"--teacher", d.teacher});
    if (!d.reward_model.empty()) a.insert(a.end(), {"--reward-model", d.reward_model});
    if (!has_option(s, "--save-interval")) a.insert(a.end(), {"--save-interval", std::to_string(save_interval)});
    for (const auto& [k, v] : s.options) {
        a.push_back(k);
        if (!v.empty()) a.push_back(v);
    }
    if (resume) a.push_back("--resume");
    return a;
}

// The last JSON record of a log, and the training speed over it (the first 5 steps, warm-up,
// left out; of a shorter log, the first).
struct LogSummary {
    json last;
    double objective = NAN, tok_s = NAN, rollout_tok_s = NAN;
};

double number_or_nan(const json& j, const char* key) { return j.contains(key) && j[key].is_number() ? j[key].get<double>() : NAN; }

LogSummary log_summary(const std::string& path) {
    LogSummary r;
    std::ifstream f(path);
    std::string line;
    // By step: a resumed stage appends the steps after its last checkpoint again; the later
    // record of a step is the one its checkpoint holds.
    std::map<int64_t, json> by_step;
    while (std::getline(f, line)) {
        json j = json::parse(line, nullptr, false);
        if (j.is_object() && j.contains("step") && j["step"].is_number_integer() && std::isfinite(number_or_nan(j, "tokens")) &&
            std::isfinite(number_or_nan(j, "seconds"))) {
            const int64_t step = j["step"].get<int64_t>();
            by_step[step] = std::move(j);
        }
    }
    std::vector<json> rows;
    for (auto& [step, j] : by_step) rows.push_back(std::move(j));
    if (rows.empty()) return r;
    r.last = rows.back();
    r.objective = r.last.contains("objective") ? number_or_nan(r.last, "objective") : number_or_nan(r.last, "ce");
    const size_t skip = rows.size() > 5 ? 5 : rows.size() > 1 ? 1 : 0;
    double tokens = 0, seconds = 0, rollout_tokens = 0, rollout_seconds = 0;
    for (size_t i = skip; i < rows.size(); ++i) {
        tokens += number_or_nan(rows[i], "tokens") - (i > 0 ? number_or_nan(rows[i - 1], "tokens") : 0.0);
        seconds += number_or_nan(rows[i], "seconds");
        const double rt = number_or_nan(rows[i], "rollout_tok_s"), rn = number_or_nan(rows[i], "rollout_tokens");
        if (std::isfinite(rt) && rt > 0 && std::isfinite(rn)) {
            rollout_tokens += rn;
            rollout_seconds += rn / rt;
        }
    }
    if (seconds > 0) r.tok_s = tokens / seconds;
    if (rollout_seconds > 0) r.rollout_tok_s = rollout_tokens / rollout_seconds;
    return r;
}

// Runs `chronos eval ...  --json` and returns its JSON (null when the file is not set).
json eval_json(const std::vector<std::string>& argv, const std::string& out_path) {
    std::remove(out_path.c_str());
    const int status = child_run(argv, out_path);
    if (status != 0) fail("evaluation failed with exit status {}: {}", status, tune::command_line(argv));
    return json::parse(file_read_all(out_path));
}

// Same layers and experts: the router drift from the pretrained model is defined.
bool same_router_shape(const std::string& a, const std::string& b) {
    const ModelConfig x = config_load(a + "/config.json"), y = config_load(b + "/config.json");
    return x.num_hidden_layers == y.num_hidden_layers && x.n_routed_experts == y.n_routed_experts;
}

std::string model_key(const std::string& dir) {
    const std::string w = dir + "/model.safetensors";
    return fmt::format("{}:{}", fs::file_size(w), fs::last_write_time(w).time_since_epoch().count());
}

// The held-out figures of one model, cached in OUT/.eval/NAME.json against the model's size and
// time and the eval settings.
json stage_figures(const PipelineConfig& pc, const std::string& name, const std::string& model, const std::string& reference,
                   const std::string& eval_dir, const std::string& self, const std::string& threads) {
    const PipelineEval& e = pc.eval;
    const json key{{"model", model_key(model)},
                   {"reference", reference.empty() ? "" : model_key(reference)},
                   {"eval", {e.sft, e.preference, e.prompts, e.pretrain, e.batches, e.prompts_limit, e.max_new_tokens, e.routing_tokens}}};
    const std::string cache = eval_dir + "/" + name + ".json";
    if (file_exists(cache)) {
        const json c = json::parse(file_read_all(cache), nullptr, false);
        if (c.is_object() && c.value("key", json()) == key) return c["figures"];
    }
    std::printf("evaluating %s (%s)\n", name.c_str(), model.c_str());
    std::fflush(stdout);
    json f = json::object();
    const std::vector<std::string> base = {self, "--threads", threads, "-q", "eval"};
    auto cmd = [&](std::vector<std::string> tail) {
        std::vector<std::string> a = base;
        a.insert(a.end(), tail.begin(), tail.end());
        a.push_back("--json");
        return a;
    };
    const std::string tmp = eval_dir + "/" + name + ".tmp.json";
    if (!e.sft.empty()) {
        std::vector<std::string> tail = {"responses", "--model", model, "--data", e.sft, "--batches", std::to_string(e.batches)};
        if (!reference.empty()) tail.insert(tail.end(), {"--reference", reference});
        const json r = eval_json(cmd(tail), tmp);
        f["held_out_ce"] = r["val_response_ce"];
        if (r.contains("val_router_drift")) f["router_drift"] = r["val_router_drift"];
    }
    if (!e.preference.empty()) {
        const json r = eval_json(cmd({"responses", "--model", model, "--data", e.preference, "--batches", std::to_string(e.batches)}), tmp);
        f["preference_accuracy"] = r["val_preference_accuracy"];
    }
    if (!e.prompts.empty()) {
        const json r = eval_json(cmd({"reward", "--model", model, "--data", e.prompts, "--limit", std::to_string(e.prompts_limit), "--max-new-tokens",
                                      std::to_string(e.max_new_tokens)}),
                                 tmp);
        f["exact_match"] = r["exact_match"];
        f["format"] = r["format"];
    }
    if (!e.pretrain.empty()) {
        const json r = eval_json(cmd({"routing", "--model", model, "--data", e.pretrain, "--max-tokens", std::to_string(e.routing_tokens)}), tmp);
        f["switch_rate"] = r["switch_rate_mean"];
        f["lookahead_recall_t1"] = r["lookahead_recall"].empty() ? json() : r["lookahead_recall"][0];
    }
    std::remove(tmp.c_str());
    file_write_atomic(cache, json{{"key", key}, {"figures", f}}.dump(2) + "\n");
    return f;
}

std::string cell(const json& row, const char* key, const char* format) {
    if (!row.contains(key) || !row[key].is_number()) return "-";
    const double v = row[key].get<double>();
    if (!std::isfinite(v)) return "-";
    return fmt::format(fmt::runtime(format), v);
}

}  // namespace

std::string pipeline_table_text(const json& table) {
    std::string s = fmt::format("{:<10} {:<8} {:>10} {:>12} {:>10} {:>11} {:>10} {:>10} {:>12} {:>9} {:>11}\n", "stage", "kind", "objective",
                                "held-out CE", "pref acc", "exact match", "drift KL", "switch", "recall@1 t+1", "tok/s", "rollout t/s");
    for (const json& r : table["stages"]) {
        s += fmt::format("{:<10} {:<8} {:>10} {:>12} {:>10} {:>11} {:>10} {:>10} {:>12} {:>9} {:>11}\n", r["name"].get<std::string>(),
                         r["stage"].get<std::string>(), cell(r, "objective", "{:.4f}"), cell(r, "held_out_ce", "{:.4f}"),
                         cell(r, "preference_accuracy", "{:.3f}"), cell(r, "exact_match", "{:.3f}"), cell(r, "router_drift", "{:.4f}"),
                         cell(r, "switch_rate", "{:.4f}"), cell(r, "lookahead_recall_t1", "{:.4f}"), cell(r, "train_tok_s", "{:.0f}"),
                         cell(r, "rollout_tok_s", "{:.0f}"));
    }
    return s;
}

json pipeline_run(const PipelineOptions& o) {
    const PipelineConfig pc = pipeline_config_load(o.config);
    const std::string out = !o.out.empty() ? o.out : !pc.out.empty() ? pc.out : "runs/" + (pc.name.empty() ? std::string("pipeline") : pc.name);
    if (!file_exists(pc.tokenizer)) fail("{}: tokenizer {} does not exist", o.config, pc.tokenizer);
    const std::vector<StageDirs> dirs = stage_dirs(pc, out);  // checked before anything is created
    dir_create(out);
    // Two pipelines on one folder would resume the same checkpoint twice.
    FileLock lock(out + "/pipeline.lock", fmt::format("another chronos pipeline is running in {} (it holds {}/pipeline.lock)", out, out));
    const std::string self = tune::self_executable();
    const std::string threads = std::to_string(o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
    const size_t n = pc.stages.size();

    for (size_t i = 0; i < n; ++i) {
        const PipelineStage& s = pc.stages[i];
        const StageDirs& d = dirs[i];
        const int64_t steps = stage_steps(s), done = stage_progress(s, d);
        std::printf("\n== stage %zu/%zu: %s (%s) -> %s ==\n", i + 1, n, s.name.c_str(), s.stage.c_str(), d.out.c_str());
        if (done >= steps) {
            std::printf("finished (step %lld of %lld): skipped\n", static_cast<long long>(done), static_cast<long long>(steps));
            continue;
        }
        if (s.stage == "distill" && !s.config.empty() && !file_exists(d.from + "/model.safetensors")) {
            const std::vector<std::string> init = {self, "init", "--config", s.config, "--tokenizer", pc.tokenizer, "--seed", std::to_string(s.seed),
                                                   "--out", d.from};
            std::printf("$ %s\n", tune::command_line(init).c_str());
            std::fflush(stdout);
            if (const int st = child_run(init, ""); st != 0) fail("stage {}: initialising the student failed with exit status {}", s.name, st);
        }
        const bool resume = done >= 0;
        if (resume) std::printf("resuming at step %lld of %lld\n", static_cast<long long>(done), static_cast<long long>(steps));
        const std::vector<std::string> argv = stage_command(s, d, pc, self, threads, o.save_interval, resume);
        std::printf("$ %s\n", tune::command_line(argv).c_str());
        std::fflush(stdout);
        const int status = child_run(argv, "");
        if (status != 0) fail("stage {} failed with exit status {} (its checkpoint in {} is kept; rerun the pipeline to resume)", s.name, status, d.out);
    }

    // The reference for the router drift: the pretrained model (the first pretrain stage, else
    // the first stage's starting point).
    std::string pretrained;
    for (size_t i = 0; i < n && pretrained.empty(); ++i) {
        if (pc.stages[i].stage == "pretrain") pretrained = dirs[i].out;
    }
    if (pretrained.empty()) pretrained = dirs[0].from;
    const std::string eval_dir = out + "/.eval";  // a stage may be called "eval"; no stage name starts with a dot
    dir_create(eval_dir);
    std::printf("\n== held-out figures ==\n");
    std::fflush(stdout);
    json table{{"pipeline", o.config}, {"out", out}, {"pretrained", pretrained}, {"eval", {{"sft", pc.eval.sft}, {"preference", pc.eval.preference},
                                                                                       {"prompts", pc.eval.prompts}, {"pretrain", pc.eval.pretrain},
                                                                                       {"batches", pc.eval.batches}, {"prompts_limit", pc.eval.prompts_limit},
                                                                                       {"routing_tokens", pc.eval.routing_tokens}}},
               {"stages", json::array()}};
    for (size_t i = 0; i < n; ++i) {
        const PipelineStage& s = pc.stages[i];
        const std::string& model = dirs[i].out;
        const std::string reference = same_router_shape(model, pretrained) ? pretrained : "";
        json row = stage_figures(pc, s.name, model, reference, eval_dir, self, threads);
        const LogSummary log = log_summary(model + ".log.jsonl");
        row["name"] = s.name;
        // A diverged stage logs NaN (null in JSON): the table says so instead of failing.
        row["stage"] = s.stage;
        row["model"] = model;
        row["steps"] = stage_steps(s);
        if (std::isfinite(log.objective)) row["objective"] = log.objective;
        if (std::isfinite(log.tok_s)) row["train_tok_s"] = log.tok_s;
        if (std::isfinite(log.rollout_tok_s)) row["rollout_tok_s"] = log.rollout_tok_s;
        table["stages"].push_back(row);
    }
    file_write_atomic(out + "/pipeline.json", table.dump(2) + "\n");
    const std::string text = pipeline_table_text(table);
    file_write_atomic(out + "/pipeline.txt", text);
    std::printf("\n%s\n(also %s/pipeline.json)\n", text.c_str(), out.c_str());
    return table;
}

}  // namespace chronos
