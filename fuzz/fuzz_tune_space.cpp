// fuzz_tune_space.cpp: libFuzzer target for the space file of `chronos tune` (space_parse). Any
// input must be rejected with chronos::Error (one line naming the input) or give a space whose
// promises hold: every range non-empty and finite, log ranges positive, conditions on earlier
// parameters, and samples from random search and from TPE (after a history of twelve trials,
// some pruned, some failed) that respect ranges, choices and conditions.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>

#include "core/error.h"
#include "fuzz_rejection.h"
#include "tune/search_space.h"
#include "tune/tpe.h"

namespace {

using chronos::tune::Param;
using chronos::tune::ParamType;

void check_sample(const chronos::tune::SearchSpace& s, const nlohmann::json& params) {
    for (const Param& p : s.params) {
        const bool active = chronos::tune::param_active(p, params);
        if (active != params.contains(p.name)) std::abort();
        if (!active) continue;
        const nlohmann::json& v = params[p.name];
        if (p.type == ParamType::categorical) {
            bool found = false;
            for (const auto& c : p.choices) found = found || c == v;
            if (!found) std::abort();
            continue;
        }
        if (!v.is_number()) std::abort();
        const double x = v.get<double>();
        if (!(x >= p.low && x <= p.high)) std::abort();
        if (p.type == ParamType::int_ && (!v.is_number_integer() || x != std::floor(x))) std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    chronos::tune::SearchSpace s;
    try {
        s = chronos::tune::space_parse(text, "fuzz");
    } catch (const chronos::Error& e) {
        fuzz_check_rejection(e);
        return 0;
    }
    if (s.params.empty() || s.objective.empty()) std::abort();
    for (size_t i = 0; i < s.params.size(); ++i) {
        const Param& p = s.params[i];
        if (p.type != ParamType::categorical && (!(p.low < p.high) || !std::isfinite(p.high - p.low) || (p.log && p.low <= 0))) std::abort();
        if (p.type == ParamType::categorical && p.choices.empty()) std::abort();
        if (!p.condition_parent.empty()) {
            bool earlier = false;
            for (size_t k = 0; k < i; ++k) earlier = earlier || s.params[k].name == p.condition_parent;
            if (!earlier) std::abort();
        }
    }
    s.tpe.n_startup_trials = 4;
    s.tpe.n_ei_candidates = 4;
    std::mt19937_64 rng(size);
    std::vector<chronos::tune::Trial> history;
    for (int i = 0; i < 12; ++i) {
        chronos::tune::Trial t;
        t.number = i;
        t.params = chronos::tune::tpe_sample(s, history, rng);
        check_sample(s, t.params);
        t.state = i % 5 == 3 ? chronos::tune::TrialState::pruned : i % 7 == 5 ? chronos::tune::TrialState::fail : chronos::tune::TrialState::complete;
        t.value = static_cast<double>((i * 7919) % 13);
        if (t.state == chronos::tune::TrialState::pruned) t.intermediate[i % 3] = t.value;
        history.push_back(t);
    }
    check_sample(s, chronos::tune::random_sample(s, rng));
    return 0;
}
