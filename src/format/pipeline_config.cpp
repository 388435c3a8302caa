// pipeline_config.cpp: reading and checking a pipeline file (pipeline_config.h).
#include "format/pipeline_config.h"

#include <nlohmann/json.hpp>

#include <set>

#include "core/error.h"
#include "core/file_io.h"

namespace chronos {

using json = nlohmann::json;

namespace {

// A value from the file inside a message: JSON-quoted, so that it can never break the line.
std::string quote_value(const std::string& s) { return json(s).dump(-1, ' ', false, json::error_handler_t::replace); }

void keys_check(const json& j, const std::set<std::string>& allowed, const std::string& where) {
    if (!j.is_object()) fail("{}: expected a JSON object", where);
    for (const auto& [k, v] : j.items()) {
        if (!allowed.count(k)) fail("{}: unknown key {}", where, quote_value(k));
    }
}

std::string string_of(const json& j, const char* key, const std::string& where) {
    if (!j.contains(key)) return "";
    if (!j[key].is_string() || j[key].get<std::string>().empty()) fail("{}: \"{}\" must be a non-empty string", where, key);
    return j[key].get<std::string>();
}

int64_t int_of(const json& j, const char* key, const std::string& where, int64_t fallback, int64_t lo) {
    if (!j.contains(key)) return fallback;
    if (!j[key].is_number_integer() || j[key].get<int64_t>() < lo) fail("{}: \"{}\" must be an integer >= {}", where, key, lo);
    return j[key].get<int64_t>();
}

bool name_ok(const std::string& s) {
    return !s.empty() && s.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == std::string::npos;
}

// A reference to a model: an earlier stage's name, else a folder holding config.json.
bool model_ref(const std::string& ref, const std::set<std::string>& earlier, const std::string& where, const char* key) {
    if (ref.empty()) return false;
    if (earlier.count(ref)) return true;
    if (!file_exists(ref + "/config.json")) fail("{}: \"{}\": {} is neither an earlier stage nor a checkpoint folder", where, key, quote_value(ref));
    return false;
}

// file_exists asks stat and answers false on any error: std::filesystem's throwing checks
// would escape as a filesystem_error for a name the system refuses (a component over 255 bytes).
void file_check(const std::string& path, const std::string& where, const char* key) {
    if (!path.empty() && !file_exists(path)) fail("{}: \"{}\": {} does not exist", where, key, quote_value(path));
}

}  // namespace

PipelineConfig pipeline_config_parse(const std::string& text, const std::string& what) {
    json j;
    try {
        j = json::parse(text);
    } catch (const json::exception& e) {
        fail("{}: not JSON ({})", what, e.what());
    }
    keys_check(j, {"name", "out", "tokenizer", "stages", "eval", "_comment"}, what);
    PipelineConfig pc;
    pc.path = what;
    pc.name = string_of(j, "name", what);
    pc.out = string_of(j, "out", what);
    if (j.contains("tokenizer")) pc.tokenizer = string_of(j, "tokenizer", what);
    if (j.contains("eval")) {
        const std::string w = what + ": eval";
        const json& e = j["eval"];
        keys_check(e, {"sft", "preference", "prompts", "pretrain", "batches", "prompts_limit", "max_new_tokens", "routing_tokens"}, w);
        pc.eval.sft = string_of(e, "sft", w);
        pc.eval.preference = string_of(e, "preference", w);
        pc.eval.prompts = string_of(e, "prompts", w);
        pc.eval.pretrain = string_of(e, "pretrain", w);
        for (const auto& [key, path] : {std::pair<const char*, std::string>{"sft", pc.eval.sft}, {"preference", pc.eval.preference},
                                        {"prompts", pc.eval.prompts}, {"pretrain", pc.eval.pretrain}}) {
            file_check(path, w, key);
        }
        pc.eval.batches = int_of(e, "batches", w, pc.eval.batches, 1);
        pc.eval.prompts_limit = int_of(e, "prompts_limit", w, pc.eval.prompts_limit, 1);
        pc.eval.max_new_tokens = int_of(e, "max_new_tokens", w, pc.eval.max_new_tokens, 1);
        pc.eval.routing_tokens = int_of(e, "routing_tokens", w, pc.eval.routing_tokens, 2);
    }
    if (!j.contains("stages") || !j["stages"].is_array() || j["stages"].empty()) fail("{}: \"stages\" must be a non-empty array", what);
    std::set<std::string> names;
    // The options the pipeline passes itself: a stage's file may not set them.
    const std::set<std::string> managed = {"from", "out", "data", "validation", "resume", "steps", "teacher", "config", "reward-model", "log",
                                           "tokenizer", "threads"};
    for (size_t i = 0; i < j["stages"].size(); ++i) {
        const json& s = j["stages"][i];
        std::string w = fmt::format("{}: stages[{}]", what, i);
        keys_check(s, {"name", "stage", "from", "config", "teacher", "reward_model", "data", "validation", "out", "steps", "seed", "options", "_comment"}, w);
        PipelineStage st;
        st.stage = string_of(s, "stage", w);
        st.name = s.contains("name") ? string_of(s, "name", w) : st.stage;
        static const std::set<std::string> kinds = {"pretrain", "sft", "dpo", "orpo", "grpo", "distill"};
        if (!kinds.count(st.stage)) fail("{}: \"stage\" must be one of pretrain, sft, dpo, orpo, grpo, distill (got {})", w, quote_value(st.stage));
        if (!name_ok(st.name)) fail("{}: \"name\" may hold letters, digits, - and _ only", w);
        w += " (" + st.name + ")";
        if (names.count(st.name)) fail("{}: a stage named \"{}\" comes earlier", w, st.name);
        st.from = string_of(s, "from", w);
        st.config = string_of(s, "config", w);
        st.teacher = string_of(s, "teacher", w);
        st.reward_model = string_of(s, "reward_model", w);
        st.data = string_of(s, "data", w);
        st.validation = string_of(s, "validation", w);
        st.out = string_of(s, "out", w);
        st.steps = int_of(s, "steps", w, 0, 1);
        st.seed = static_cast<uint64_t>(int_of(s, "seed", w, 0, 0));
        if (st.data.empty()) fail("{}: \"data\" is required", w);
        file_check(st.data, w, "data");
        file_check(st.validation, w, "validation");
        if (st.stage == "pretrain") {
            if (st.config.empty()) fail("{}: a pretrain stage needs \"config\"", w);
            if (!st.from.empty() || !st.teacher.empty()) fail("{}: a pretrain stage starts from its config (no \"from\" or \"teacher\")", w);
        } else {
            if (st.steps == 0) fail("{}: \"steps\" is required", w);
            if (st.stage == "distill") {
                if (st.teacher.empty()) fail("{}: a distill stage needs \"teacher\"", w);
                if (st.from.empty() == st.config.empty()) fail("{}: a distill stage starts from \"from\" or from a fresh \"config\" (one of them)", w);
            } else {
                if (st.from.empty()) fail("{}: \"from\" is required", w);
                if (!st.config.empty() || !st.teacher.empty()) fail("{}: \"config\" and \"teacher\" belong to pretrain and distill stages", w);
            }
            if (!st.reward_model.empty() && st.stage != "grpo") fail("{}: \"reward_model\" belongs to grpo stages", w);
        }
        st.from_is_stage = model_ref(st.from, names, w, "from");
        st.teacher_is_stage = model_ref(st.teacher, names, w, "teacher");
        st.reward_model_is_stage = model_ref(st.reward_model, names, w, "reward_model");
        if (s.contains("options")) {
            if (!s["options"].is_object()) fail("{}: \"options\" must be an object", w);
            for (const auto& [k, v] : s["options"].items()) {
                if (!name_ok(k) || k[0] == '-') fail("{}: option {}: letters, digits, - and _, without leading dashes (\"batch-size\": 8)", w, quote_value(k));
                if (managed.count(k)) fail("{}: option \"{}\" is set by the pipeline itself", w, k);
                if (v.is_boolean()) {
                    if (v.get<bool>()) st.options.emplace_back("--" + k, "");
                } else if (v.is_number() || v.is_string()) {
                    st.options.emplace_back("--" + k, v.is_string() ? v.get<std::string>() : v.dump());
                } else {
                    fail("{}: option \"{}\" must be a number, a string or true", w, k);
                }
            }
        }
        names.insert(st.name);
        pc.stages.push_back(std::move(st));
    }
    return pc;
}

PipelineConfig pipeline_config_load(const std::string& path) {
    if (!file_exists(path)) fail("{}: no such pipeline file", path);
    return pipeline_config_parse(file_read_all(path), path);
}

}  // namespace chronos
