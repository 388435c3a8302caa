// trainer_state.cpp: the one reader of trainer_state.json: strict types, non-negative counts,
// and a chronos::Error naming the file and field for anything else.
#include "format/trainer_state.h"

#include "core/error.h"
#include "core/file_io.h"

namespace chronos {

using nlohmann::json;

namespace {

// One line of JSON for a value read from an input, for error messages: escaped and ASCII (a
// newline inside a string cannot split the one error line) and cut at 60 characters.
std::string brief(const json& v) {
    std::string s = v.dump(-1, ' ', /*ensure_ascii=*/true, json::error_handler_t::replace);
    return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

// A JSON integer in [min, INT64_MAX]; nlohmann's get<int64_t> would truncate 1.5 and wrap
// integers above INT64_MAX to negatives.
int64_t int_in(const json& v, const std::string& where, const char* key, int64_t min, const char* rule) {
    const bool fits = v.is_number_unsigned() ? v.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX) : v.is_number_integer();
    if (!fits || v.get<int64_t>() < min) fail("{}: \"{}\" must be {}, got {}", where, key, rule, brief(v));
    return v.get<int64_t>();
}

const json& require(const json& obj, const char* key, const std::string& where) {
    auto it = obj.find(key);
    if (it == obj.end()) fail("{}: missing field \"{}\"", where, key);
    return *it;
}

// The record `chronos train lookahead` writes. Fields came in over time (input_layer and target
// after the first version, the held-out losses only with a validation set), so each is checked
// where present; unknown fields are left for newer writers.
void check_lookahead_fit(const json& fit, const std::string& what) {
    const std::string where = what + ": lookahead_fit";
    if (!fit.is_object()) fail("{} is not an object", where);
    for (const char* key : {"steps", "hidden", "batch_size"}) {
        if (fit.contains(key)) int_in(fit[key], where, key, 1, "a positive integer");
    }
    if (fit.contains("seq_len")) int_in(fit["seq_len"], where, "seq_len", 2, "an integer above 1");
    for (const char* key : {"input_layer", "warmup_steps"}) {
        if (fit.contains(key)) int_in(fit[key], where, key, 0, "a non-negative integer");
    }
    if (fit.contains("seed") && !fit["seed"].is_number_integer()) fail("{}: \"seed\" must be an integer", where);
    if (fit.contains("lr") && !(fit["lr"].is_number() && fit["lr"].get<double>() > 0)) fail("{}: \"lr\" must be a positive number", where);
    if (fit.contains("target")) {
        const json& t = fit["target"];
        if (!t.is_string() || (t != "router_probs" && t != "router_topk")) fail("{}: \"target\" must be \"router_probs\" or \"router_topk\"", where);
    }
    if (fit.contains("data") && !fit["data"].is_string()) fail("{}: \"data\" must be a string", where);
    // JSON has no NaN: a diverged loss is written as null.
    for (const char* key : {"val_lookahead_before", "val_lookahead_after"}) {
        if (fit.contains(key) && !fit[key].is_number() && !fit[key].is_null()) fail("{}: \"{}\" must be a number or null", where, key);
    }
}

}  // namespace

TrainerState trainer_state_parse(const std::string& text, const std::string& what) {
    TrainerState s;
    try {
        s.doc = json::parse(text);
    } catch (const json::exception& e) {
        fail("{}: not valid JSON: {}", what, e.what());
    }
    if (!s.doc.is_object()) fail("{}: trainer state is not a JSON object", what);
    s.step = int_in(require(s.doc, "step", what), what, "step", 0, "a non-negative integer");
    s.tokens_seen = int_in(require(s.doc, "tokens_seen", what), what, "tokens_seen", 0, "a non-negative integer");
    const json& baseline = require(s.doc, "baseline", what);
    if (!baseline.is_boolean()) fail("{}: \"baseline\" must be true or false", what);
    s.baseline = baseline.get<bool>();
    if (!require(s.doc, "hyper", what).is_object()) fail("{}: \"hyper\" must be an object", what);
    if (s.doc.contains("lookahead_fit")) check_lookahead_fit(s.doc["lookahead_fit"], what);
    return s;
}

TrainerState trainer_state_load(const std::string& path) { return trainer_state_parse(file_read_all(path), path); }

TrainerState trainer_state_fresh() {
    TrainerState s;
    s.doc = json{{"step", 0}, {"tokens_seen", 0}, {"baseline", false}, {"hyper", json::object()}};
    return s;
}

}  // namespace chronos
