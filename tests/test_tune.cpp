// test_tune.cpp: the tuner's pieces against what they promise. TPE against random search on
// synthetic objectives (a noisy Branin; a 6-dimensional function with log, integer,
// categorical and conditional parameters), its Parzen estimators (densities that integrate to
// 1, Optuna's gamma and weights), the median pruner on crafted histories, the space file's
// checks, the study database under kill -9 in the middle of writes, and the report.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <random>

#include "test_helpers.h"
#include "tune/pruner.h"
#include "tune/search_space.h"
#include "tune/study_db.h"
#include "tune/study_report.h"
#include "tune/tpe.h"

namespace chronos::tune {
namespace {

using json = nlohmann::json;

// ---------------------------------------------------------------- synthetic objectives

SearchSpace branin_space() {
    return space_from_json(json::parse(R"({
        "trial": {"kind": "command", "command": ["f", "{x1}", "{x2}"]},
        "objective": {"metric": "f"},
        "params": [{"name": "x1", "type": "float", "low": -5, "high": 10},
                   {"name": "x2", "type": "float", "low": 0, "high": 15}]})"), "branin");
}

double branin(const json& p) {
    const double x1 = p["x1"].get<double>(), x2 = p["x2"].get<double>();
    const double b = 5.1 / (4 * M_PI * M_PI), c = 5 / M_PI, t = 1 / (8 * M_PI);
    return std::pow(x2 - b * x1 * x1 + c * x1 - 6, 2) + 10 * (1 - t) * std::cos(x1) + 10;  // minimum 0.397887
}

// Six dimensions: three plain floats, one log-scale float, one integer, one categorical, and
// a float that exists only under one of the categories. Minimum 0 at x = 1, s = 0.01, k = 7,
// c = "b", y = 2.
SearchSpace six_space() {
    return space_from_json(json::parse(R"({
        "trial": {"kind": "command", "command": ["f", "{x1}", "{x2}", "{x3}", "{s}", "{k}", "{c}", "{y}"]},
        "objective": {"metric": "f"},
        "params": [{"name": "x1", "type": "float", "low": -5, "high": 5},
                   {"name": "x2", "type": "float", "low": -5, "high": 5},
                   {"name": "x3", "type": "float", "low": -5, "high": 5},
                   {"name": "s", "type": "float", "low": 0.0001, "high": 10, "log": true},
                   {"name": "k", "type": "int", "low": 1, "high": 20},
                   {"name": "c", "type": "categorical", "choices": ["a", "b", "c"]},
                   {"name": "y", "type": "float", "low": -5, "high": 5, "condition": {"c": ["b"]}}]})"), "six");
}

double six(const json& p) {
    double f = 0;
    for (const char* x : {"x1", "x2", "x3"}) f += std::pow(p[x].get<double>() - 1, 2);
    f += std::pow(std::log10(p["s"].get<double>()) + 2, 2);
    f += std::pow(p["k"].get<double>() - 7, 2) / 4;
    const std::string c = p["c"];
    f += c == "a" ? 3.0 : c == "c" ? 6.0 : std::pow(p["y"].get<double>() - 2, 2);
    return f;
}

// Runs one study in memory and returns its best value: the lowest observation, noise included,
// as a study reports it.
double study_best(const SearchSpace& s, double (*f)(const json&), double noise, bool tpe, int trials, uint64_t seed) {
    std::mt19937_64 rng(seed), noise_rng(seed ^ 0x5bd1e995);
    std::normal_distribution<double> eps(0, noise);
    std::vector<Trial> history;
    double best = INFINITY;
    for (int i = 0; i < trials; ++i) {
        Trial t;
        t.number = i;
        t.params = tpe ? tpe_sample(s, history, rng) : random_sample(s, rng);
        const double truth = f(t.params);
        t.value = truth + (noise > 0 ? eps(noise_rng) : 0.0);
        t.state = TrialState::complete;
        best = std::min(best, t.value);
        history.push_back(t);
    }
    return best;
}

// TPE beats random search when the mean over 20 fixed seeds of (random's best - TPE's best) is
// at least two standard errors of that mean above 0: the margin is the measured spread of the
// paired differences, not a number one run gave.
void expect_tpe_beats_random(const SearchSpace& s, double (*f)(const json&), double noise, int trials) {
    const int seeds = 20;
    std::vector<double> d;
    double mean_tpe = 0, mean_random = 0;
    for (int seed = 0; seed < seeds; ++seed) {
        const double bt = study_best(s, f, noise, true, trials, 1000 + static_cast<uint64_t>(seed));
        const double br = study_best(s, f, noise, false, trials, 1000 + static_cast<uint64_t>(seed));
        mean_tpe += bt / seeds;
        mean_random += br / seeds;
        d.push_back(br - bt);
    }
    double mean = 0, var = 0;
    for (double x : d) mean += x / seeds;
    for (double x : d) var += (x - mean) * (x - mean) / (seeds - 1);
    const double se = std::sqrt(var / seeds);
    std::printf("%s, %d trials x %d seeds: mean best TPE %.4f, random %.4f; paired difference %.4f, standard error %.4f (t = %.1f)\n",
                s.path.c_str(), trials, seeds, mean_tpe, mean_random, mean, se, se > 0 ? mean / se : INFINITY);
    EXPECT_GT(mean, 2 * se) << "TPE's best is not reliably better than random search's";
    EXPECT_LT(mean_tpe, mean_random);
}

TEST(Tpe, BeatsRandomSearchOnNoisyBranin) { expect_tpe_beats_random(branin_space(), branin, 1.0, 60); }

TEST(Tpe, BeatsRandomSearchOnSixDimensionsWithCategoricalAndConditional) { expect_tpe_beats_random(six_space(), six, 0.1, 80); }

TEST(Tpe, SamplesStayInRangeAndRespectConditions) {
    const SearchSpace s = six_space();
    std::mt19937_64 rng(7);
    std::vector<Trial> history;
    for (int i = 0; i < 60; ++i) {
        Trial t;
        t.number = i;
        t.params = tpe_sample(s, history, rng);
        for (const auto& p : s.params) {
            ASSERT_EQ(t.params.contains(p.name), param_active(p, t.params)) << p.name << " in " << t.params.dump();
            if (!t.params.contains(p.name) || p.type == ParamType::categorical) continue;
            const double x = t.params[p.name].get<double>();
            ASSERT_GE(x, p.low) << p.name;
            ASSERT_LE(x, p.high) << p.name;
            if (p.type == ParamType::int_) ASSERT_TRUE(t.params[p.name].is_number_integer()) << p.name;
        }
        t.value = six(t.params);
        t.state = i % 7 == 3 ? TrialState::pruned : TrialState::complete;
        history.push_back(t);
    }
}

TEST(Tpe, GammaAndWeightsAreOptunasDefaults) {
    EXPECT_EQ(tpe_gamma(1), 1);
    EXPECT_EQ(tpe_gamma(10), 1);
    EXPECT_EQ(tpe_gamma(11), 2);
    EXPECT_EQ(tpe_gamma(250), 25);
    EXPECT_EQ(tpe_gamma(1000), 25);
    EXPECT_EQ(tpe_weights(25), std::vector<double>(25, 1.0));
    const auto w = tpe_weights(30);  // ramp of 5 from 1/30 to 1, then 25 ones
    EXPECT_DOUBLE_EQ(w[0], 1.0 / 30);
    EXPECT_DOUBLE_EQ(w[4], 1.0);
    EXPECT_DOUBLE_EQ(w[29], 1.0);
    EXPECT_LT(w[1], w[2]);
}

// Each estimator is a probability distribution on the parameter's range: the density of a
// float integrates to 1 (midpoint rule on 20000 cells: error ~1e-6 for these bandwidths), the
// masses of an integer's values and a categorical's choices sum to 1.
TEST(Tpe, ParzenEstimatorsAreDistributions) {
    TpeOptions o;
    Param f{"f", ParamType::float_, -2, 3};
    Param lf{"lf", ParamType::float_, 0.01, 100, true};
    Param i{"i", ParamType::int_, 1, 9, false, 1};
    Param li{"li", ParamType::int_, 1, 64, true, 1};
    Param c{"c", ParamType::categorical};
    c.choices = {"a", "b", "c", "d"};
    const std::vector<double> w = {1, 1, 1, 0.5};
    for (const Param& p : {f, lf}) {
        const ParzenEstimator e = parzen_build(p, p.log ? std::vector<double>{0.02, 0.5, 3, 50} : std::vector<double>{-1.9, 0, 0.1, 2.5}, w, o);
        const int n = 20000;
        double total = 0;
        for (int k = 0; k < n; ++k) {
            const double z = e.low + (e.high - e.low) * (k + 0.5) / n;  // in the estimator's space (log for lf)
            const double x = p.log ? std::exp(z) : z;
            total += std::exp(parzen_log_pdf(e, x)) * (e.high - e.low) / n;
        }
        EXPECT_NEAR(total, 1.0, 1e-4) << p.name;
    }
    for (const Param& p : {i, li}) {
        const ParzenEstimator e = parzen_build(p, {1, 4, 4, p.high}, w, o);
        double total = 0;
        for (int x = static_cast<int>(p.low); x <= static_cast<int>(p.high); ++x) total += std::exp(parzen_log_pdf(e, x));
        EXPECT_NEAR(total, 1.0, 1e-9) << p.name;
        std::mt19937_64 rng(1);
        for (int k = 0; k < 200; ++k) {
            const double x = parzen_sample(e, rng);
            EXPECT_EQ(x, std::round(x));
            EXPECT_GE(x, p.low);
            EXPECT_LE(x, p.high);
        }
    }
    const ParzenEstimator e = parzen_build(c, {0, 0, 2, 3}, w, o);
    double total = 0;
    for (int k = 0; k < 4; ++k) total += std::exp(parzen_log_pdf(e, k));
    EXPECT_NEAR(total, 1.0, 1e-12);
    // Weighted histogram with a uniform prior of total weight 1: choice a has 2 + 1/4 of 4.5.
    EXPECT_NEAR(std::exp(parzen_log_pdf(e, 0)), 2.25 / 4.5, 1e-12);
    EXPECT_NEAR(std::exp(parzen_log_pdf(e, 1)), 0.25 / 4.5, 1e-12);
}

// ---------------------------------------------------------------- median pruner

Trial complete_with(int64_t number, std::map<int64_t, double> values) {
    Trial t;
    t.number = number;
    t.state = TrialState::complete;
    t.intermediate = std::move(values);
    t.value = t.intermediate.rbegin()->second;
    return t;
}

TEST(Pruner, StopsATrialWorseThanTheMedianAtTheSameStep) {
    PrunerOptions o;
    o.n_startup_trials = 3;
    std::vector<Trial> h = {complete_with(0, {{10, 5.0}, {20, 4.0}}), complete_with(1, {{10, 6.0}, {20, 5.0}}),
                            complete_with(2, {{10, 7.0}, {20, 6.0}})};
    EXPECT_TRUE(pruner_should_prune(o, h, {{10, 6.5}}, 10));    // median 6
    EXPECT_FALSE(pruner_should_prune(o, h, {{10, 6.0}}, 10));   // equal to the median: kept
    EXPECT_FALSE(pruner_should_prune(o, h, {{10, 5.5}}, 10));
    // The best value so far counts: a trial that was good at step 10 survives a bad step 20.
    EXPECT_FALSE(pruner_should_prune(o, h, {{10, 4.0}, {20, 5.5}}, 20));
    EXPECT_TRUE(pruner_should_prune(o, h, {{10, 6.5}, {20, 5.5}}, 20));
    EXPECT_FALSE(pruner_should_prune(o, h, {{30, 99.0}}, 30));  // no complete trial reported step 30
    EXPECT_TRUE(pruner_should_prune(o, h, {{10, NAN}}, 10));
    // Pruned and running trials are not the reference.
    std::vector<Trial> h2 = h;
    for (auto& t : h2) t.state = TrialState::pruned;
    EXPECT_FALSE(pruner_should_prune(o, h2, {{10, 100.0}}, 10));
    o.n_startup_trials = 4;  // too few complete trials yet
    EXPECT_FALSE(pruner_should_prune(o, h, {{10, 100.0}}, 10));
    o.n_startup_trials = 3;
    o.n_warmup_steps = 15;
    EXPECT_FALSE(pruner_should_prune(o, h, {{10, 100.0}}, 10));
    o.enabled = false;
    EXPECT_FALSE(pruner_should_prune(o, h, {{20, 100.0}}, 20));
}

// ---------------------------------------------------------------- space files

std::string space_error(const std::string& text) {
    try {
        space_from_json(json::parse(text), "space.json");
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

const char* kPretrainHead = R"("base_config": "tiny", "data": {"train": "t.jsonl", "validation": "v.jsonl"}, "objective": {"metric": "loss"}, )";

TEST(SearchSpace, BadFilesAreRejectedWithOneClearLine) {
    const std::pair<std::string, std::string> cases[] = {
        {std::string("{") + kPretrainHead + R"("params": [{"name": "model.no_such_field", "type": "float", "low": 0, "high": 1}]})",
         "unknown parameter"},
        {std::string("{") + kPretrainHead + R"("params": [{"name": "model.lambda_balance", "type": "float", "low": 1, "high": 1}]})",
         "empty range"},
        {std::string("{") + kPretrainHead + R"("params": [{"name": "model.lambda_balance", "type": "float", "low": 2, "high": 1}]})",
         "empty range"},
        {std::string("{") + kPretrainHead + R"("params": [{"name": "model.lambda_balance", "type": "float", "low": 0, "high": 1, "log": true}]})",
         "log scale needs low > 0"},
        {std::string("{") + kPretrainHead + R"("params": [{"name": "model.lambda_balance", "type": "float", "low": -1, "high": 1, "log": true}]})",
         "log scale needs low > 0"},
        {std::string("{") + kPretrainHead +
             R"("params": [{"name": "model.lambda_balance", "type": "float", "low": 0.1, "high": 1, "condition": {"model.lookahead_steps": [1]}}]})",
         "condition on a missing parameter \"model.lookahead_steps\""},
        {std::string("{") + kPretrainHead +
             R"("params": [{"name": "model.lookahead_steps", "type": "int", "low": 1, "high": 2}, {"name": "model.lambda_lookahead", "type": "float", "low": 0.1, "high": 1, "condition": {"model.lookahead_steps": [5]}}]})",
         "is not one \"model.lookahead_steps\" can take"},
        {std::string("{") + kPretrainHead + R"("params": [{"name": "model.lambda_balance", "type": "uniform", "low": 0, "high": 1}]})",
         "type must be float, int or categorical"},
        {std::string("{") + kPretrainHead + R"("params": [{"name": "train.steps", "type": "int", "low": 1, "high": 9}]})", "unknown parameter"},
        {std::string("{") + kPretrainHead + R"("params": [{"name": "model.lambda_balance", "type": "categorical", "choices": []}]})",
         "\"choices\" must be a non-empty array"},
        {std::string("{") + kPretrainHead + R"("params": []})", "\"params\" must be a non-empty array"},
        {std::string("{") + kPretrainHead + R"("params": [{"name": "model.lambda_balance", "type": "float", "low": 0, "high": 1, "lo": 3}]})",
         "unknown field \"lo\""},
        {R"({"base_config": "tiny", "data": {"train": "t", "validation": "v"}, "objective": {"metric": "accuracy"}, "params": [{"name": "model.lambda_balance", "type": "float", "low": 0, "high": 1}]})",
         "unknown metric \"accuracy\""},
        {R"({"base_config": "no-such-config", "data": {"train": "t", "validation": "v"}, "objective": {"metric": "loss"}, "params": [{"name": "model.lambda_balance", "type": "float", "low": 0, "high": 1}]})",
         "no config named \"no-such-config\""},
        {R"({"trial": {"kind": "command", "command": ["f", "{x}", "{z}"]}, "objective": {"metric": "f"}, "params": [{"name": "x", "type": "float", "low": 0, "high": 1}]})",
         "unknown parameter {z}"},
        {R"({"trial": {"kind": "command", "command": ["f"]}, "objective": {"metric": "f"}, "params": [{"name": "x", "type": "float", "low": 0, "high": 1}]})",
         "\"x\" is not used by trial.command"},
    };
    for (const auto& [text, expected] : cases) {
        const std::string m = space_error(text);
        EXPECT_NE(m.find(expected), std::string::npos) << "space " << text << "\n  gave: " << (m.empty() ? "(accepted)" : m) << "\n  want: " << expected;
        EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    }
}

TEST(SearchSpace, CommittedSpacesLoadAndApplyToTheirBaseConfig) {
    for (const char* name : {"tune-tiny", "tune-small"}) {
        const SearchSpace s = space_load(std::string(CHRONOS_SOURCE_DIR) + "/configs/" + name + ".json");
        std::mt19937_64 rng(3);
        const json params = random_sample(s, rng);
        const json cfg = space_apply(s, params);
        for (const auto& [k, v] : params.items()) {
            const auto dot = k.find('.');
            if (k.substr(0, dot) == "runtime") continue;
            EXPECT_EQ(cfg[k.substr(0, dot)][k.substr(dot + 1)], v) << name << " " << k;
        }
        if (s.trial.steps > 0) EXPECT_EQ(cfg["train"]["steps"], s.trial.steps);
    }
}

TEST(SearchSpace, TheBaseTrialTakesTheBaseConfigsValues) {
    const SearchSpace s = space_from_json(json::parse(R"({"base_config": "tiny", "data": {"train": "t", "validation": "v"},
        "objective": {"metric": "loss"},
        "params": [{"name": "model.lambda_balance", "type": "float", "low": 0.01, "high": 1, "log": true},
                   {"name": "model.lookahead_steps", "type": "categorical", "choices": [0, 1, 2]},
                   {"name": "model.lambda_lookahead", "type": "float", "low": 0.1, "high": 3, "condition": {"model.lookahead_steps": [1, 2]}},
                   {"name": "model.n_shared_experts", "type": "int", "low": 2, "high": 4},
                   {"name": "train.lr", "type": "float", "low": 0.001, "high": 0.01}]})"), "s");
    std::mt19937_64 rng(1);
    const json p = base_sample(s, rng);
    const json& m = s.base["model"];
    EXPECT_EQ(p["model.lambda_balance"], m["lambda_balance"]);
    EXPECT_EQ(p["model.lookahead_steps"], m["lookahead_steps"]);
    EXPECT_EQ(p["model.lambda_lookahead"], m["lambda_lookahead"]);
    EXPECT_EQ(p["train.lr"], s.base["train"]["lr"]);
    // tiny has 1 shared expert, outside [2, 4]: drawn instead.
    ASSERT_EQ(m["n_shared_experts"], 1);
    EXPECT_GE(p["model.n_shared_experts"].get<int64_t>(), 2);
}

TEST(SearchSpace, ObjectiveIsTheWeightedSumWithMaximisedMetricsNegated) {
    const SearchSpace s = space_from_json(json::parse(std::string(R"({"base_config": "tiny",
        "data": {"train": "t", "validation": "v"},
        "objective": [{"metric": "loss", "weight": 2}, {"metric": "lookahead_recall", "weight": 0.5}],
        "params": [{"name": "model.lambda_balance", "type": "float", "low": 0.1, "high": 1}]})")), "s");
    EXPECT_DOUBLE_EQ(objective_value(s, {{"loss", 3.0}, {"lookahead_recall", 0.8}}), 2 * 3.0 - 0.5 * 0.8);
    EXPECT_THROW(objective_value(s, {{"loss", 3.0}}), Error);
}

// The pruner judges a pretrain trial by the objective's terms the training log reports.
TEST(SearchSpace, IntermediateValueIsTheObjectiveOnTheTrainingLogsEvaluation) {
    const SearchSpace s = space_from_json(json::parse(R"({"base_config": "tiny", "data": {"train": "t", "validation": "v"},
        "objective": [{"metric": "loss", "weight": 2}, {"metric": "switch_rate", "weight": 3},
                      {"metric": "lookahead_recall", "weight": 0.5}, {"metric": "offload_tok_s", "weight": 0.001}],
        "params": [{"name": "model.lambda_balance", "type": "float", "low": 0.1, "high": 1}]})"), "s");
    const json rec = {{"step", 50}, {"val_loss", 5.0}, {"val_switch_rate", 0.2}, {"val_lookahead_recall", 0.8}};
    EXPECT_DOUBLE_EQ(intermediate_value(s, rec), 2 * 5.0 + 3 * 0.2 - 0.5 * 0.8);  // offload_tok_s: not in a training log
    EXPECT_TRUE(std::isnan(intermediate_value(s, {{"step", 50}, {"val_loss", 5.0}})));  // a term missing
    const SearchSpace only_offload = space_from_json(json::parse(R"({"base_config": "tiny", "data": {"train": "t", "validation": "v"},
        "objective": {"metric": "offload_tok_s"}, "params": [{"name": "model.lambda_balance", "type": "float", "low": 0.1, "high": 1}]})"), "s");
    EXPECT_DOUBLE_EQ(intermediate_value(only_offload, rec), 5.0);
    const SearchSpace ppl = space_from_json(json::parse(R"({"base_config": "tiny", "data": {"train": "t", "validation": "v"},
        "objective": {"metric": "ppl"}, "params": [{"name": "model.lambda_balance", "type": "float", "low": 0.1, "high": 1}]})"), "s");
    EXPECT_DOUBLE_EQ(intermediate_value(ppl, rec), std::exp(5.0));
}

// ---------------------------------------------------------------- study database

TEST(StudyDb, KeepsEveryCommittedTrialWhenKilledInTheMiddleOfWrites) {
    test::TempDir dir;
    { StudyDb db(dir.path()); }  // schema in place before the writer starts
    for (int round = 0; round < 5; ++round) {
        // The writer says when its first trial is committed (however slow the disk's fsync is),
        // and the kill lands a round-dependent time after that, in the middle of later writes.
        int ready[2];
        ASSERT_EQ(pipe(ready), 0);
        const pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            close(ready[0]);
            StudyDb db(dir.path());
            for (int i = 0;; ++i) {  // until killed
                Trial t;
                t.params = {{"x", i}, {"pad", std::string(2000, 'p')}};
                t.started = 1;
                t.seed = static_cast<uint64_t>(i);
                db.trial_create(t);
                for (int s = 0; s < 5; ++s) db.intermediate_add(t.number, s, static_cast<double>(t.number + s));
                t.state = TrialState::complete;
                t.value = static_cast<double>(t.number);
                t.finished = 2;
                db.trial_update(t);
                if (i == 0) {
                    const char byte = 1;
                    if (write(ready[1], &byte, 1) != 1) _exit(1);
                    close(ready[1]);
                }
            }
        }
        close(ready[1]);
        char byte = 0;
        ASSERT_EQ(read(ready[0], &byte, 1), 1) << "the writer ended before committing a trial";
        close(ready[0]);
        usleep(static_cast<useconds_t>(10000 + 20000 * round));
        kill(pid, SIGKILL);
        int st = 0;
        waitpid(pid, &st, 0);

        StudyDb db(dir.path());
        EXPECT_EQ(db.integrity_check(), "ok");
        const auto trials = db.trials();
        ASSERT_FALSE(trials.empty()) << "the writer committed nothing in round " << round;
        int interrupted = 0;
        for (size_t k = 0; k < trials.size(); ++k) {
            const Trial& t = trials[k];
            EXPECT_EQ(t.number, static_cast<int64_t>(k));
            EXPECT_TRUE(t.params.contains("x")) << "trial " << t.number;
            const bool last = k + 1 == trials.size();
            if (t.state == TrialState::complete) {
                EXPECT_EQ(t.value, static_cast<double>(t.number));
                EXPECT_EQ(t.intermediate.size(), 5u) << "trial " << t.number;
            } else {
                // The trial the writer was in when killed: running in this round, marked
                // interrupted (below) in the earlier ones.
                EXPECT_TRUE((last && t.state == TrialState::running) || t.state == TrialState::interrupted)
                    << "trial " << t.number << " of " << trials.size() << " is " << trial_state_name(t.state);
                if (t.state == TrialState::interrupted) ++interrupted;
                for (const auto& [s, v] : t.intermediate) EXPECT_EQ(v, static_cast<double>(t.number + s));
            }
        }
        EXPECT_LE(interrupted, round);
        db.mark_interrupted("killed");  // the next round appends after an interrupted trial
    }
}

TEST(StudyDb, ACorruptFileIsAClearError) {
    test::TempDir dir;
    std::ofstream(dir.file("study.db")) << std::string(8192, 'x');
    try {
        StudyDb db(dir.path());
        FAIL() << "a corrupt database opened";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("is not a usable study database"), std::string::npos) << e.what();
    }
}

// ---------------------------------------------------------------- report

TEST(StudyReport, ParetoFrontAndImportance) {
    const SearchSpace s = space_from_json(json::parse(R"({
        "trial": {"kind": "command", "command": ["f", "{x}", "{noise}"]},
        "objective": [{"metric": "a"}, {"metric": "b", "direction": "maximize"}],
        "params": [{"name": "x", "type": "float", "low": 0, "high": 1}, {"name": "noise", "type": "float", "low": 0, "high": 1}]})"), "s");
    std::vector<Trial> trials;
    auto add = [&](double a, double b) {
        Trial t;
        t.number = static_cast<int64_t>(trials.size());
        t.state = TrialState::complete;
        t.metrics = {{"a", a}, {"b", b}};
        t.value = objective_value(s, t.metrics);
        t.params = {{"x", 0.5}, {"noise", 0.5}};
        trials.push_back(t);
    };
    add(1, 1);  // front
    add(2, 3);  // front
    add(2, 2);  // dominated by 1
    add(3, 3);  // dominated by 1
    add(0.5, 0);  // front
    EXPECT_EQ(report_pareto(s, trials), (std::vector<int64_t>{0, 1, 4}));

    // The value follows x exactly; noise is independent of it. With n = 100 trials in k = 10
    // bins, x's epsilon-squared is ~1 - 1/k^2 = 0.99 and noise's is 0 +- sqrt(2 (k - 1)) / n
    // ~ 0.04, so x's share stays above 0.99 / (0.99 + 3 x 0.04) ~ 0.89 unless noise is 3 sd off.
    trials.clear();
    std::mt19937_64 rng(5);
    std::uniform_real_distribution<double> u(0, 1);
    for (int i = 0; i < 100; ++i) {
        Trial t;
        t.number = i;
        t.state = TrialState::complete;
        t.params = {{"x", u(rng)}, {"noise", u(rng)}};
        t.value = 10 * t.params["x"].get<double>();
        trials.push_back(t);
    }
    const auto imp = report_importance(s, trials);
    ASSERT_EQ(imp.size(), 2u);
    EXPECT_EQ(imp[0].first, "x");
    EXPECT_GT(imp[0].second, 0.85);
}

}  // namespace
}  // namespace chronos::tune
