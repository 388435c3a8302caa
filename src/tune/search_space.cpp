// search_space.cpp: reading and checking the space file of `chronos tune` (search_space.h).
#include "tune/search_space.h"

#include <cmath>
#include <regex>
#include <set>

#include "core/error.h"
#include "core/file_io.h"
#include "format/model_config.h"
#include "format/named_config.h"

namespace chronos::tune {

using json = nlohmann::json;

namespace {

// The runtime knobs a pretrain trial can search: they change the offload benchmark, not the model.
const std::set<std::string> kRuntimeKnobs = {"runtime.offload_mode", "runtime.offload_dtype", "runtime.prefetch_threshold",
                                             "runtime.offload_budget_percent"};
const std::set<std::string> kBuiltins = {"trial_dir", "log", "seed"};

// User text in a message, quoted as a JSON string: a newline in it cannot split the error line.
std::string quote_json(const std::string& s) { return json(s).dump(); }

double number_at(const json& j, const char* key, const std::string& where) {
    if (!j.contains(key)) fail("{}: missing \"{}\"", where, key);
    if (!j[key].is_number()) fail("{}: \"{}\" must be a number", where, key);
    const double v = j[key].get<double>();
    if (!std::isfinite(v)) fail("{}: \"{}\" must be finite", where, key);
    return v;
}

int64_t int_or(const json& j, const char* key, int64_t fallback, int64_t lo, const std::string& where) {
    if (!j.contains(key)) return fallback;
    if (!j[key].is_number_integer()) fail("{}: \"{}\" must be an integer", where, key);
    const int64_t v = j[key].get<int64_t>();
    if (v < lo) fail("{}: \"{}\" must be >= {} (got {})", where, key, lo, v);
    return v;
}

std::string string_at(const json& j, const char* key, const std::string& where, bool required) {
    if (!j.contains(key)) {
        if (required) fail("{}: missing \"{}\"", where, key);
        return "";
    }
    if (!j[key].is_string() || j[key].get<std::string>().empty()) fail("{}: \"{}\" must be a non-empty string", where, key);
    return j[key].get<std::string>();
}

void check_keys(const json& j, std::initializer_list<const char*> known, const std::string& where) {
    if (!j.is_object()) fail("{}: must be a JSON object", where);
    for (const auto& [key, value] : j.items()) {
        if (key.rfind("_", 0) == 0) continue;  // comments
        bool ok = false;
        for (const char* k : known) ok = ok || key == k;
        if (!ok) fail("{}: unknown field {}", where, quote_json(key));
    }
}

// Whether parent value v can be taken by parameter p.
bool param_can_take(const Param& p, const json& v) {
    if (p.type == ParamType::categorical) {
        for (const auto& c : p.choices) {
            if (c == v) return true;
        }
        return false;
    }
    if (!v.is_number()) return false;
    const double x = v.get<double>();
    if (p.type == ParamType::int_ && x != std::floor(x)) return false;
    return x >= p.low && x <= p.high;
}

Param param_parse(const json& j, size_t index, const std::vector<Param>& before, const std::string& file) {
    std::string where = fmt::format("{}: params[{}]", file, index);
    check_keys(j, {"name", "type", "low", "high", "log", "choices", "condition"}, where);
    Param p;
    p.name = string_at(j, "name", where, true);
    if (!std::regex_match(p.name, std::regex("[A-Za-z_][A-Za-z0-9_.]*"))) fail("{}: name {}: a name is letters, digits, '_' and '.'", where, quote_json(p.name));
    where = fmt::format("{}: parameter \"{}\"", file, p.name);
    for (const auto& b : before) {
        if (b.name == p.name) fail("{}: defined twice", where);
    }
    const std::string type = string_at(j, "type", where, true);
    if (type == "float" || type == "int") {
        p.type = type == "float" ? ParamType::float_ : ParamType::int_;
        p.low = number_at(j, "low", where);
        p.high = number_at(j, "high", where);
        if (!(p.low < p.high)) fail("{}: empty range (low {} must be below high {})", where, p.low, p.high);
        // The samplers work with high - low, and integers as doubles: both must stay exact.
        if (!std::isfinite(p.high - p.low)) fail("{}: range too wide (high - low overflows)", where);
        if (j.contains("log")) {
            if (!j["log"].is_boolean()) fail("{}: \"log\" must be true or false", where);
            p.log = j["log"].get<bool>();
        }
        if (p.log && p.low <= 0) fail("{}: log scale needs low > 0 (got {})", where, p.low);
        if (p.type == ParamType::int_) {
            if (p.low != std::floor(p.low) || p.high != std::floor(p.high)) fail("{}: an int parameter's low and high are integers", where);
            if (std::fabs(p.low) > 9007199254740992.0 || std::fabs(p.high) > 9007199254740992.0) fail("{}: an int parameter stays within +-2^53", where);
            p.step = 1;
        }
        if (j.contains("choices")) fail("{}: \"choices\" belongs to categorical parameters", where);
    } else if (type == "categorical") {
        p.type = ParamType::categorical;
        if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].empty()) fail("{}: \"choices\" must be a non-empty array", where);
        for (const auto& c : j["choices"]) {
            if (!(c.is_number() || c.is_string() || c.is_boolean())) fail("{}: a choice is a number, a string or a boolean", where);
            for (const auto& d : p.choices) {
                if (d == c) fail("{}: choice {} listed twice", where, c.dump());
            }
            p.choices.push_back(c);
        }
        if (j.contains("low") || j.contains("high") || j.contains("log")) fail("{}: low, high and log belong to float and int parameters", where);
    } else {
        fail("{}: type must be float, int or categorical (got {})", where, quote_json(type));
    }
    if (j.contains("condition")) {
        const json& c = j["condition"];
        if (!c.is_object() || c.size() != 1) fail("{}: \"condition\" is {{\"PARENT\": [values]}}", where);
        p.condition_parent = c.begin().key();
        const Param* parent = nullptr;
        for (const auto& b : before) {
            if (b.name == p.condition_parent) parent = &b;
        }
        if (!parent) fail("{}: condition on a missing parameter {} (it must be defined earlier in params)", where, quote_json(p.condition_parent));
        const json values = c.begin().value().is_array() ? c.begin().value() : json::array({c.begin().value()});
        if (values.empty()) fail("{}: the condition lists no value", where);
        for (const auto& v : values) {
            if (!param_can_take(*parent, v)) fail("{}: the condition's value {} is not one \"{}\" can take", where, v.dump(), parent->name);
            p.condition_values.push_back(v);
        }
    }
    return p;
}

Direction direction_parse(const json& t, Direction fallback, const std::string& where) {
    if (!t.contains("direction")) return fallback;
    const std::string d = string_at(t, "direction", where, true);
    if (d == "minimize") return Direction::minimize;
    if (d == "maximize") return Direction::maximize;
    fail("{}: direction must be minimize or maximize (got {})", where, quote_json(d));
}

}  // namespace

bool metric_known(const std::string& metric, Direction* direction) {
    static const std::pair<const char*, Direction> known[] = {
        {"loss", Direction::minimize},         {"ppl", Direction::minimize},           {"switch_rate", Direction::minimize},
        {"lookahead_recall", Direction::maximize}, {"offload_tok_s", Direction::maximize},
    };
    for (const auto& [name, d] : known) {
        if (metric == name) {
            if (direction) *direction = d;
            return true;
        }
    }
    return false;
}

SearchSpace space_from_json(const json& j, const std::string& file) {
    check_keys(j, {"base_config", "data", "trial", "objective", "params", "sampler", "pruner"}, file);
    SearchSpace s;
    s.path = file;
    s.source = j;
    TrialSpec& t = s.trial;
    if (j.contains("trial")) {
        const json& tj = j["trial"];
        const std::string where = file + ": trial";
        check_keys(tj, {"kind", "command", "steps", "eval_interval", "eval_tokens", "offload_budget_percent", "offload_mode",
                        "offload_dtype", "prefetch_threshold", "offload_prompts", "offload_prompt_tokens", "offload_gen_tokens"},
                   where);
        if (tj.contains("kind")) t.kind = string_at(tj, "kind", where, true);
        if (t.kind != "pretrain" && t.kind != "command") fail("{}: kind must be pretrain or command (got {})", where, quote_json(t.kind));
        t.steps = int_or(tj, "steps", 0, 1, where);
        t.eval_interval = int_or(tj, "eval_interval", 0, 1, where);
        t.eval_tokens = int_or(tj, "eval_tokens", t.eval_tokens, 0, where);
        t.offload_prompts = int_or(tj, "offload_prompts", t.offload_prompts, 1, where);
        t.offload_prompt_tokens = int_or(tj, "offload_prompt_tokens", t.offload_prompt_tokens, 1, where);
        t.offload_gen_tokens = int_or(tj, "offload_gen_tokens", t.offload_gen_tokens, 1, where);
        if (tj.contains("offload_budget_percent")) t.offload_budget_percent = number_at(tj, "offload_budget_percent", where);
        if (tj.contains("prefetch_threshold")) t.prefetch_threshold = number_at(tj, "prefetch_threshold", where);
        if (tj.contains("offload_mode")) t.offload_mode = string_at(tj, "offload_mode", where, true);
        if (tj.contains("offload_dtype")) t.offload_dtype = string_at(tj, "offload_dtype", where, true);
        if (tj.contains("command")) {
            if (!tj["command"].is_array() || tj["command"].empty()) fail("{}: \"command\" must be a non-empty array of strings", where);
            for (const auto& a : tj["command"]) {
                if (!a.is_string()) fail("{}: \"command\" must be a non-empty array of strings", where);
                t.command.push_back(a.get<std::string>());
            }
        }
        if (t.kind == "command" && t.command.empty()) fail("{}: a command trial needs \"command\"", where);
        if (t.kind == "pretrain" && !t.command.empty()) fail("{}: \"command\" belongs to command trials", where);
    }
    if (t.kind == "pretrain") {
        s.base_config = string_at(j, "base_config", file, true);
        for (unsigned char ch : s.base_config) {
            if (ch < 0x20 || ch == 0x7f) fail("{}: base_config {} holds a control character", file, quote_json(s.base_config));
        }
        try {
            const std::string path = named_config_resolve(s.base_config);
            named_config_load(path);
            s.base = json::parse(file_read_all(path));
        } catch (const Error& e) {
            fail("{}: base_config: {}", file, e.what());
        }
        if (!j.contains("data")) fail("{}: missing \"data\" (the pretraining JSONL files)", file);
        const json& d = j["data"];
        check_keys(d, {"train", "validation", "tokenizer"}, file + ": data");
        t.train_data = string_at(d, "train", file + ": data", true);
        t.validation_data = string_at(d, "validation", file + ": data", true);
        t.tokenizer = string_at(d, "tokenizer", file + ": data", false);
    } else if (j.contains("base_config") || j.contains("data")) {
        fail("{}: base_config and data belong to pretrain trials", file);
    }

    if (!j.contains("params") || !j["params"].is_array() || j["params"].empty()) fail("{}: \"params\" must be a non-empty array", file);
    for (size_t i = 0; i < j["params"].size(); ++i) s.params.push_back(param_parse(j["params"][i], i, s.params, file));

    if (t.kind == "pretrain") {
        const nlohmann::ordered_json known_model = config_to_json(ModelConfig{}, LossWeights{});
        const auto& train_fields = named_config_train_fields();
        for (const auto& p : s.params) {
            const std::string where = fmt::format("{}: parameter \"{}\"", file, p.name);
            const auto dot = p.name.find('.');
            const std::string section = p.name.substr(0, dot), field = dot == std::string::npos ? "" : p.name.substr(dot + 1);
            bool ok = false;
            if (section == "model") ok = known_model.contains(field) && field != "vocab_size" && field != "model_type";
            if (section == "train") ok = std::find(train_fields.begin(), train_fields.end(), field) != train_fields.end() && field != "steps";
            if (section == "runtime") ok = kRuntimeKnobs.count(p.name) > 0;
            if (!ok) {
                fail("{}: unknown parameter (a pretrain trial searches model.FIELD of the config, train.FIELD except steps, "
                     "or runtime.offload_mode|offload_dtype|prefetch_threshold|offload_budget_percent)", where);
            }
        }
    } else {
        // Every {NAME} in the command is a parameter or a built-in, and every parameter is used.
        std::set<std::string> used;
        const std::regex placeholder("\\{([A-Za-z_][A-Za-z0-9_.]*)\\}");
        for (const auto& a : t.command) {
            for (auto it = std::sregex_iterator(a.begin(), a.end(), placeholder); it != std::sregex_iterator(); ++it) {
                const std::string name = (*it)[1];
                if (!kBuiltins.count(name) && !space_find(s, name)) fail("{}: trial.command names an unknown parameter {{{}}}", file, name);
                used.insert(name);
            }
        }
        for (const auto& p : s.params) {
            if (!used.count(p.name)) fail("{}: parameter \"{}\" is not used by trial.command (write {{{}}} where it goes)", file, p.name, p.name);
        }
    }

    if (!j.contains("objective")) fail("{}: missing \"objective\"", file);
    const json terms = j["objective"].is_array() ? j["objective"] : json::array({j["objective"]});
    if (terms.empty()) fail("{}: \"objective\" names no metric", file);
    for (size_t i = 0; i < terms.size(); ++i) {
        const std::string where = fmt::format("{}: objective[{}]", file, i);
        check_keys(terms[i], {"metric", "weight", "direction"}, where);
        ObjectiveTerm term;
        term.metric = string_at(terms[i], "metric", where, true);
        Direction d = Direction::minimize;
        const bool known = metric_known(term.metric, &d);
        if (t.kind == "pretrain" && !known) {
            fail("{}: unknown metric {} (loss, ppl, switch_rate, lookahead_recall or offload_tok_s)", where, quote_json(term.metric));
        }
        term.direction = direction_parse(terms[i], d, where);
        if (terms[i].contains("weight")) term.weight = number_at(terms[i], "weight", where);
        if (!(term.weight > 0)) fail("{}: weight must be > 0 (the direction says which way is better)", where);
        for (const auto& o : s.objective) {
            if (o.metric == term.metric) fail("{}: metric {} named twice", where, quote_json(term.metric));
        }
        s.objective.push_back(term);
    }

    if (j.contains("sampler")) {
        const json& sj = j["sampler"];
        const std::string where = file + ": sampler";
        check_keys(sj, {"name", "n_startup_trials", "n_ei_candidates", "prior_weight", "seed", "enqueue_base"}, where);
        if (sj.contains("enqueue_base")) {
            if (!sj["enqueue_base"].is_boolean()) fail("{}: \"enqueue_base\" must be true or false", where);
            s.enqueue_base = sj["enqueue_base"].get<bool>();
        }
        if (sj.contains("name")) s.sampler = string_at(sj, "name", where, true);
        if (s.sampler != "tpe" && s.sampler != "random") fail("{}: name must be tpe or random (got {})", where, quote_json(s.sampler));
        s.tpe.n_startup_trials = int_or(sj, "n_startup_trials", s.tpe.n_startup_trials, 0, where);
        s.tpe.n_ei_candidates = int_or(sj, "n_ei_candidates", s.tpe.n_ei_candidates, 1, where);
        if (sj.contains("prior_weight")) s.tpe.prior_weight = number_at(sj, "prior_weight", where);
        if (!(s.tpe.prior_weight > 0)) fail("{}: prior_weight must be > 0", where);
        s.seed = static_cast<uint64_t>(int_or(sj, "seed", 0, 0, where));
    }
    if (j.contains("pruner")) {
        const json& pj = j["pruner"];
        const std::string where = file + ": pruner";
        check_keys(pj, {"enabled", "n_startup_trials", "n_warmup_steps"}, where);
        if (pj.contains("enabled")) {
            if (!pj["enabled"].is_boolean()) fail("{}: \"enabled\" must be true or false", where);
            s.pruner.enabled = pj["enabled"].get<bool>();
        }
        s.pruner.n_startup_trials = int_or(pj, "n_startup_trials", s.pruner.n_startup_trials, 0, where);
        s.pruner.n_warmup_steps = int_or(pj, "n_warmup_steps", s.pruner.n_warmup_steps, 0, where);
    }
    return s;
}

SearchSpace space_parse(const std::string& text, const std::string& where) {
    json j;
    try {
        j = json::parse(text);
    } catch (const json::exception& e) {
        fail("{}: not valid JSON: {}", where, e.what());
    }
    return space_from_json(j, where);
}

SearchSpace space_load(const std::string& path) {
    if (!file_exists(path)) fail("space file {} does not exist", path);
    return space_parse(file_read_all(path), path);
}

const Param* space_find(const SearchSpace& s, const std::string& name) {
    for (const auto& p : s.params) {
        if (p.name == name) return &p;
    }
    return nullptr;
}

bool param_active(const Param& p, const json& chosen) {
    if (p.condition_parent.empty()) return true;
    if (!chosen.contains(p.condition_parent)) return false;
    const json& v = chosen[p.condition_parent];
    for (const auto& c : p.condition_values) {
        if (c == v || (c.is_number() && v.is_number() && c.get<double>() == v.get<double>())) return true;
    }
    return false;
}

double objective_value(const SearchSpace& s, const json& metrics) {
    double total = 0;
    for (const auto& t : s.objective) {
        if (!metrics.contains(t.metric) || !metrics[t.metric].is_number()) fail("the trial measured no \"{}\"", t.metric);
        const double m = metrics[t.metric].get<double>();
        if (!std::isfinite(m)) fail("the trial's \"{}\" is not finite ({})", t.metric, m);
        total += t.weight * (t.direction == Direction::minimize ? m : -m);
    }
    return total;
}

double intermediate_value(const SearchSpace& s, const json& record) {
    auto field = [&](const char* name) {
        return record.contains(name) && record[name].is_number() ? record[name].get<double>() : std::nan("");
    };
    const double val_loss = field("val_loss");
    if (s.trial.kind == "command") return val_loss;
    double total = 0;
    bool any = false;
    for (const auto& t : s.objective) {
        double m = 0;
        if (t.metric == "loss") m = val_loss;
        else if (t.metric == "ppl") m = std::exp(val_loss);
        else if (t.metric == "switch_rate") m = field("val_switch_rate");
        else if (t.metric == "lookahead_recall") m = field("val_lookahead_recall");
        else continue;
        any = true;
        total += t.weight * (t.direction == Direction::minimize ? m : -m);
    }
    return any ? total : val_loss;
}

json space_apply(const SearchSpace& s, const json& params) {
    json config = s.base;
    if (!config.contains("train")) config["train"] = json::object();
    for (const auto& [name, value] : params.items()) {
        const auto dot = name.find('.');
        const std::string section = name.substr(0, dot), field = name.substr(dot + 1);
        if (section == "model" || section == "train") config[section][field] = value;
    }
    if (s.trial.steps > 0) config["train"]["steps"] = s.trial.steps;
    if (s.trial.eval_interval > 0) config["train"]["eval_interval"] = s.trial.eval_interval;
    return config;
}

}  // namespace chronos::tune
