// study_report.cpp: best trial, Pareto front, importances and the trials table (study_report.h).
#include "tune/study_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

namespace chronos::tune {

namespace {

std::vector<const Trial*> complete_trials(const std::vector<Trial>& trials) {
    std::vector<const Trial*> out;
    for (const auto& t : trials) {
        if (t.state == TrialState::complete && std::isfinite(t.value)) out.push_back(&t);
    }
    return out;
}

std::string value_text(const nlohmann::json& v) {
    if (v.is_number_float()) return fmt::format("{:.4g}", v.get<double>());
    if (v.is_string()) return v.get<std::string>();
    return v.dump();
}

}  // namespace

const Trial* report_best(const std::vector<Trial>& trials) {
    const Trial* best = nullptr;
    for (const Trial* t : complete_trials(trials)) {
        if (!best || t->value < best->value) best = t;
    }
    return best;
}

std::vector<int64_t> report_pareto(const SearchSpace& s, const std::vector<Trial>& trials) {
    const auto done = complete_trials(trials);
    auto metric = [&](const Trial* t, const ObjectiveTerm& o) {
        const double m = t->metrics.value(o.metric, std::nan(""));
        return o.direction == Direction::minimize ? m : -m;  // lower is better
    };
    std::vector<int64_t> front;
    for (const Trial* a : done) {
        bool dominated = false;
        for (const Trial* b : done) {
            if (a == b) continue;
            bool no_worse = true, better = false;
            for (const auto& o : s.objective) {
                const double ma = metric(a, o), mb = metric(b, o);
                if (!(mb <= ma)) no_worse = false;
                if (mb < ma) better = true;
            }
            if (no_worse && better) {
                dominated = true;
                break;
            }
        }
        if (!dominated) front.push_back(a->number);
    }
    return front;
}

std::vector<std::pair<std::string, double>> report_importance(const SearchSpace& s, const std::vector<Trial>& trials) {
    const auto done = complete_trials(trials);
    std::vector<std::pair<std::string, double>> out;
    double total = 0;
    for (const auto& p : s.params) {
        std::vector<std::pair<double, double>> xy;  // (coordinate, value)
        for (const Trial* t : done) {
            if (!t->params.contains(p.name)) continue;
            const auto& v = t->params[p.name];
            double x = 0;
            if (p.type == ParamType::categorical) {
                x = static_cast<double>(std::find(p.choices.begin(), p.choices.end(), v) - p.choices.begin());
            } else {
                x = v.get<double>();
            }
            xy.emplace_back(x, t->value);
        }
        const size_t n = xy.size();
        double eps2 = 0;
        if (n >= 4) {
            std::sort(xy.begin(), xy.end());
            std::vector<int> group(n);
            if (p.type == ParamType::categorical) {
                for (size_t i = 0; i < n; ++i) group[i] = static_cast<int>(xy[i].first);
            } else {
                const size_t k = std::max<size_t>(2, static_cast<size_t>(std::floor(std::sqrt(static_cast<double>(n)))));
                for (size_t i = 0; i < n; ++i) group[i] = static_cast<int>(i * k / n);
                // Equal values share a bin (the first one's): a tie is not split between bins.
                for (size_t i = 1; i < n; ++i) {
                    if (xy[i].first == xy[i - 1].first) group[i] = group[i - 1];
                }
            }
            const double mean = std::accumulate(xy.begin(), xy.end(), 0.0, [](double a, const auto& q) { return a + q.second; }) / static_cast<double>(n);
            std::map<int, std::pair<double, size_t>> sums;
            for (size_t i = 0; i < n; ++i) {
                sums[group[i]].first += xy[i].second;
                sums[group[i]].second += 1;
            }
            double ss_total = 0, ss_between = 0;
            for (const auto& q : xy) ss_total += (q.second - mean) * (q.second - mean);
            for (const auto& [g, sn] : sums) {
                const double gm = sn.first / static_cast<double>(sn.second);
                ss_between += static_cast<double>(sn.second) * (gm - mean) * (gm - mean);
            }
            const double k = static_cast<double>(sums.size());
            if (ss_total > 0 && k > 1 && static_cast<double>(n) > k) {
                const double ms_within = (ss_total - ss_between) / (static_cast<double>(n) - k);
                eps2 = std::max(0.0, (ss_between - (k - 1) * ms_within) / ss_total);
            }
        }
        out.emplace_back(p.name, eps2);
        total += eps2;
    }
    for (auto& [name, v] : out) v = total > 0 ? v / total : 0.0;
    std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    return out;
}

void report_print(const SearchSpace& s, const std::vector<Trial>& trials, std::FILE* out) {
    std::map<TrialState, int> counts;
    for (const auto& t : trials) counts[t.state]++;
    fmt::print(out, "trials: {} (complete {}, pruned {}, fail {}, interrupted {}, running {})\n", trials.size(), counts[TrialState::complete],
               counts[TrialState::pruned], counts[TrialState::fail], counts[TrialState::interrupted], counts[TrialState::running]);
    std::string head = fmt::format("{:>5}  {:<11}  {:>10}", "#", "state", "value");
    for (const auto& o : s.objective) head += fmt::format("  {:>12}", o.metric);
    head += fmt::format("  {:>8}  params", "seconds");
    fmt::print(out, "{}\n", head);
    for (const auto& t : trials) {
        std::string line = fmt::format("{:>5}  {:<11}  {:>10}", t.number, trial_state_name(t.state),
                                       t.state == TrialState::complete ? fmt::format("{:.5g}", t.value) : "-");
        for (const auto& o : s.objective) {
            line += fmt::format("  {:>12}", t.metrics.contains(o.metric) ? value_text(t.metrics[o.metric]) : "-");
        }
        line += fmt::format("  {:>8}", t.finished > 0 ? fmt::format("{:.1f}", t.finished - t.started) : "-");
        std::string ps;
        for (const auto& [k, v] : t.params.items()) ps += fmt::format("{}{}={}", ps.empty() ? "" : " ", k, value_text(v));
        line += "  " + ps;
        if (!t.message.empty()) line += "  (" + t.message + ")";
        if (t.retry_of >= 0) line += fmt::format("  (retry of {})", t.retry_of);
        fmt::print(out, "{}\n", line);
    }
    const Trial* best = report_best(trials);
    if (!best) {
        fmt::print(out, "best: none (no trial completed)\n");
        return;
    }
    std::string ps;
    for (const auto& [k, v] : best->params.items()) ps += fmt::format("\n  {} = {}", k, value_text(v));
    fmt::print(out, "best: trial {}  value {:.6g}{}\n", best->number, best->value, ps);
    fmt::print(out, "parameter importance (epsilon-squared share, {} complete trials):\n", counts[TrialState::complete]);
    for (const auto& [name, v] : report_importance(s, trials)) fmt::print(out, "  {:<32} {:.3f}\n", name, v);
    if (s.objective.size() > 1) {
        std::string front;
        for (int64_t n : report_pareto(s, trials)) front += fmt::format(" {}", n);
        fmt::print(out, "pareto front over");
        for (const auto& o : s.objective) fmt::print(out, " {}({})", o.metric, o.direction == Direction::minimize ? "min" : "max");
        fmt::print(out, ":{}\n", front);
    }
}

}  // namespace chronos::tune
