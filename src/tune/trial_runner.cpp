// trial_runner.cpp: the commands of one trial and their supervision (trial_runner.h).
#include "tune/trial_runner.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>

#include "core/error.h"
#include "core/file_io.h"
#include "format/named_config.h"
#include "tune/child_process.h"
#include "tune/pruner.h"

namespace chronos::tune {

using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(); }

std::string param_text(const json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_number_float()) return fmt::format("{:.17g}", v.get<double>());
    return v.dump();
}

// The last line of a file that is not empty ("" when none): what a failed command said last.
std::string last_line(const std::string& path) {
    std::ifstream f(path);
    std::string line, last;
    while (std::getline(f, line)) {
        if (line.find_first_not_of(" \t\r") != std::string::npos) last = line;
    }
    return last;
}

json read_json(const std::string& path, const std::string& what) {
    try {
        return json::parse(file_read_all(path));
    } catch (const std::exception& e) {
        fail("{} wrote no JSON result to {} ({})", what, path, e.what());
    }
}

}  // namespace

TrialRun::TrialRun(const SearchSpace& s, const RunnerOptions& o, Trial t) : space_(s), opt_(o), trial_(std::move(t)) {
    trial_.dir = fmt::format("trials/{:04d}", trial_.number);
    dir_ = fs::absolute(fs::path(opt_.study_dir) / trial_.dir).string();
    fs::remove_all(dir_);  // a half-written folder of an earlier tuner with this number
    dir_create(dir_);
    file_write_atomic(dir_ + "/params.json", trial_.params.dump(2) + "\n");
    const std::string threads = std::to_string(opt_.threads);
    const TrialSpec& ts = s.trial;

    if (ts.kind == "command") {
        log_path_ = dir_ + "/intermediate.jsonl";
        Step st{"command", {}, dir_ + "/stdout.txt", true};
        const std::regex placeholder("\\{([A-Za-z_][A-Za-z0-9_.]*)\\}");
        for (const auto& a : ts.command) {
            std::string out;
            auto begin = std::sregex_iterator(a.begin(), a.end(), placeholder);
            size_t last = 0;
            for (auto it = begin; it != std::sregex_iterator(); ++it) {
                out += a.substr(last, static_cast<size_t>(it->position()) - last);
                const std::string name = (*it)[1];
                if (name == "trial_dir") out += dir_;
                else if (name == "log") out += log_path_;
                else if (name == "seed") out += std::to_string(trial_.seed);
                else if (trial_.params.contains(name)) out += param_text(trial_.params[name]);
                // an inactive conditional parameter leaves its placeholder empty
                last = static_cast<size_t>(it->position() + it->length());
            }
            out += a.substr(last);
            st.argv.push_back(out);
        }
        steps_.push_back(st);
    } else {
        log_path_ = dir_ + "/train.log.jsonl";
        const std::string config = dir_ + "/config.json";
        const std::string model = dir_ + "/model";
        const json cfg = space_apply(s, trial_.params);
        file_write_atomic(config, cfg.dump(2) + "\n");
        int64_t seq_len = 256;
        try {
            seq_len = named_config_load(config).train.seq_len;
        } catch (const Error& e) {
            trial_.command = "";
            finish(TrialState::fail, fmt::format("the config these parameters give is refused: {}", e.what()));
            return;
        }
        Step train{"train pretrain", {opt_.chronos, "--threads", threads, "train", "pretrain", "--config", config, "--data", ts.train_data,
                                      "--validation", ts.validation_data, "--out", model, "--log", log_path_},
                   dir_ + "/stdout.txt", true};
        if (!ts.tokenizer.empty()) {
            train.argv.push_back("--tokenizer");
            train.argv.push_back(ts.tokenizer);
        }
        steps_.push_back(train);
        const std::vector<std::string> eval_args = {"--model", model, "--data", ts.validation_data, "--seq-len", std::to_string(seq_len),
                                                    "--max-tokens", std::to_string(ts.eval_tokens), "--json"};
        Step ppl{"eval ppl", {opt_.chronos, "--threads", threads, "eval", "ppl"}, dir_ + "/eval_ppl.json"};
        ppl.argv.insert(ppl.argv.end(), eval_args.begin(), eval_args.end());
        steps_.push_back(ppl);
        Step routing{"eval routing", {opt_.chronos, "--threads", threads, "eval", "routing"}, dir_ + "/eval_routing.json"};
        routing.argv.insert(routing.argv.end(), eval_args.begin(), eval_args.end());
        steps_.push_back(routing);
        bool offload = false;
        for (const auto& term : s.objective) offload = offload || term.metric == "offload_tok_s";
        if (offload) {
            auto knob = [&](const char* name, const std::string& fallback) {
                return trial_.params.contains(name) ? param_text(trial_.params[name]) : fallback;
            };
            const std::string dtype = knob("runtime.offload_dtype", ts.offload_dtype);
            steps_.push_back({"pack", {opt_.chronos, "--threads", threads, "pack", "--model", model, "--dtype", dtype}, dir_ + "/stdout.txt"});
            Step bench{"bench offload",
                       {opt_.chronos, "--threads", threads, "bench", "offload", "--model", model, "--data", ts.validation_data, "--no-eager",
                        "--budgets", knob("runtime.offload_budget_percent", param_text(ts.offload_budget_percent)),
                        "--modes", knob("runtime.offload_mode", ts.offload_mode), "--prompts", std::to_string(ts.offload_prompts),
                        "--prompt-tokens", std::to_string(ts.offload_prompt_tokens), "--gen-tokens", std::to_string(ts.offload_gen_tokens),
                        "--json", dir_ + "/offload.json"},
                       dir_ + "/stdout.txt"};
            const std::string threshold = knob("runtime.prefetch_threshold", ts.prefetch_threshold >= 0 ? param_text(ts.prefetch_threshold) : "");
            if (!threshold.empty()) {
                bench.argv.push_back("--prefetch-threshold");
                bench.argv.push_back(threshold);
            }
            steps_.push_back(bench);
        }
    }
    trial_.command.clear();
    for (const auto& st : steps_) trial_.command += (trial_.command.empty() ? "" : "\n") + command_line(st.argv);
}

TrialRun::~TrialRun() {
    if (pid_ > 0) child_kill(pid_);
}

void TrialRun::finish(TrialState state, const std::string& message) {
    if (pid_ > 0) child_kill(pid_);
    pid_ = -1;
    trial_.state = state;
    if (!message.empty() || state != TrialState::complete) trial_.message = message;  // a complete trial keeps its note
    trial_.finished = now_s();
    if (state != TrialState::complete) trial_.value = std::nan("");
    done_ = true;
}

void TrialRun::read_intermediate(StudyDb& db, const std::vector<Trial>& history) {
    std::ifstream f(log_path_, std::ios::binary);
    if (!f) return;
    f.seekg(static_cast<std::streamoff>(log_offset_));
    std::string chunk((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const size_t end = chunk.rfind('\n');
    if (end == std::string::npos) return;  // no complete line yet
    log_offset_ += end + 1;
    size_t pos = 0;
    while (pos <= end && !done_) {  // nothing after the step that pruned it
        const size_t nl = chunk.find('\n', pos);
        const std::string line = chunk.substr(pos, nl - pos);
        pos = nl + 1;
        json j;
        try {
            j = json::parse(line);
        } catch (const json::exception&) {
            continue;  // not a record of ours
        }
        // Records of held-out evaluations only (the training log also has one per step).
        if (!j.is_object() || !j.contains("step") || !j["step"].is_number_integer() || !j.contains("val_loss")) continue;
        const int64_t step = j["step"].get<int64_t>();
        const double v = intermediate_value(space_, j);
        trial_.intermediate[step] = v;
        db.intermediate_add(trial_.number, step, v);
        PruneDetail why;
        if (pruner_should_prune(space_.pruner, history, trial_.intermediate, step, &why)) {
            finish(TrialState::pruned,
                   why.trials == 0 ? fmt::format("pruned at step {}: intermediate value {} is not finite", step, why.best)
                                   : fmt::format("pruned at step {}: best intermediate value {:.4f} above the median {:.4f} of {} complete trials",
                                                 step, why.best, why.median, why.trials));
        }
    }
}

void TrialRun::collect_metrics() {
    json m = json::object();
    if (space_.trial.kind == "command") {
        const std::string line = last_line(steps_[0].stdout_path);
        try {
            m = json::parse(line);
        } catch (const json::exception&) {
            fail("the command's last line of output is not a JSON object of metrics: \"{}\"", line);
        }
        if (!m.is_object()) fail("the command's last line of output is not a JSON object of metrics: \"{}\"", line);
    } else {
        const json ppl = read_json(dir_ + "/eval_ppl.json", "eval ppl");
        m["loss"] = ppl.at("loss");
        m["ppl"] = ppl.at("ppl");
        const json routing = read_json(dir_ + "/eval_routing.json", "eval routing");
        m["switch_rate"] = routing.at("switch_rate_mean");
        // A model without a lookahead head names no expert ahead: recall 0.
        const json& recall = routing.at("lookahead_recall");
        m["lookahead_recall"] = recall.is_array() && !recall.empty() ? recall[0] : json(0.0);
        if (fs::exists(dir_ + "/offload.json")) m["offload_tok_s"] = read_json(dir_ + "/offload.json", "bench offload").at("runs").at(0).at("decode_tok_s");
    }
    if (!trial_.intermediate.empty()) m["last_intermediate"] = trial_.intermediate.rbegin()->second;
    trial_.metrics = m;
    trial_.value = objective_value(space_, m);
}

bool TrialRun::poll(StudyDb& db, const std::vector<Trial>& history) {
    while (!done_) {
        if (pid_ < 0) {
            if (current_ == steps_.size()) {
                try {
                    collect_metrics();
                    finish(TrialState::complete, "");
                } catch (const std::exception& e) {
                    finish(TrialState::fail, e.what());
                }
                break;
            }
            const Step& st = steps_[current_];
            pid_ = child_start({st.argv, st.stdout_path, dir_ + "/log.txt", {{"CHRONOS_PROGRESS", "0"}, {"OMP_NUM_THREADS", std::to_string(opt_.threads)}}});
        }
        if (steps_[current_].follows_log) read_intermediate(db, history);
        if (done_) break;
        if (opt_.timeout_s > 0 && now_s() - trial_.started > opt_.timeout_s) {
            finish(TrialState::fail, fmt::format("timed out after {:.0f} s (in {})", opt_.timeout_s, steps_[current_].name));
            break;
        }
        int status = 0;
        if (!child_poll(pid_, &status)) break;  // still running
        pid_ = -1;
        if (steps_[current_].follows_log) read_intermediate(db, history);
        if (done_) break;
        if (status != 0) {
            const std::string said = last_line(dir_ + "/log.txt");
            finish(TrialState::fail, fmt::format("{} exited with status {}{}", steps_[current_].name, status, said.empty() ? "" : ": " + said));
            break;
        }
        ++current_;
    }
    return done_;
}

}  // namespace chronos::tune
