// test_losses.cpp: finite-difference gradient checks in double precision for the balance,
// temporal and lookahead losses (through the router softmax, as in training), their masking of
// padding, and the switch-rate count.
#include <gtest/gtest.h>

#include <functional>

#include "gradient_check.h"
#include "train/losses.h"

using namespace chronos;
using chronos::test::check_gradient;

namespace {

torch::Tensor dopts_randn(std::vector<int64_t> shape) { return torch::randn(shape, torch::kFloat64); }

}  // namespace

TEST(Losses, BalanceGradientMatchesFiniteDifferences) {
    torch::manual_seed(1);
    torch::Tensor logits = dopts_randn({2, 6, 5});
    // Top-k fixed from the starting point (f is a count, not differentiated, as in Switch).
    torch::Tensor topk = std::get<1>(torch::softmax(logits, -1).topk(2, -1));
    torch::Tensor valid = torch::ones({2, 6}, torch::kBool);
    valid[1][5] = false;
    valid[1][4] = false;
    check_gradient([&](const torch::Tensor& z) { return loss_balance(torch::softmax(z, -1), topk, valid); }, logits, "balance");
}

TEST(Losses, TemporalGradientMatchesFiniteDifferences) {
    torch::manual_seed(2);
    torch::Tensor logits = dopts_randn({2, 7, 4});
    torch::Tensor topk = std::get<1>(torch::softmax(logits, -1).topk(2, -1));
    torch::Tensor valid = torch::ones({2, 7}, torch::kBool);
    valid[0][6] = false;
    check_gradient([&](const torch::Tensor& z) { return loss_temporal(torch::softmax(z, -1), topk, valid); }, logits, "temporal");
}

TEST(Losses, LookaheadGradientMatchesFiniteDifferencesAndIgnoresTheTarget) {
    torch::manual_seed(3);
    torch::Tensor pred = dopts_randn({2, 6, 5});
    torch::Tensor target_logits = dopts_randn({2, 6, 5});
    torch::Tensor valid = torch::ones({2, 6}, torch::kBool);
    for (int64_t k : {1, 2}) {
        check_gradient([&](const torch::Tensor& z) { return loss_lookahead(z, torch::softmax(target_logits, -1), valid, k); },
                       pred, "lookahead");
        // The target side is stop-gradient: with only the router requiring grad, the loss
        // has no path back to it at all.
        torch::Tensor t = target_logits.clone().set_requires_grad(true);
        EXPECT_FALSE(loss_lookahead(pred, torch::softmax(t, -1), valid, k).requires_grad()) << "gradient path to the target router";
    }
}

TEST(Losses, TopkTargetIsTheRoutersChoiceAsADistribution) {
    torch::Tensor topk = torch::tensor({2, 0, 1, 3}, torch::kInt64).view({1, 2, 2});
    torch::Tensor y = lookahead_target_topk(topk, 4, torch::kFloat64);  // [1, 2, 4]
    torch::Tensor want = torch::tensor({0.5, 0.0, 0.5, 0.0, 0.0, 0.5, 0.0, 0.5}, torch::kFloat64).view({1, 2, 4});
    EXPECT_TRUE(torch::equal(y, want)) << y;
}

// Where the two targets disagree: one context (a single shared prediction z) followed 60% of
// the time by a flat router that picks expert 0 and 40% of the time by a peaked one that
// picks expert 1 (k = 1). The mean softmax favours expert 1, the choice is expert 0 more often:
// fitted to the top-k target the head names expert 0 (recall 0.6), fitted to the softmax it
// names expert 1 (recall 0.4).
TEST(Losses, TopkTargetFitsTheMostOftenChosenExpert) {
    const int64_t rows = 10;
    torch::Tensor probs = torch::empty({rows, 2, 3}, torch::kFloat64);
    for (int64_t r = 0; r < rows; ++r) {
        probs[r][1] = r < 6 ? torch::tensor({0.40, 0.35, 0.25}, torch::kFloat64) : torch::tensor({0.05, 0.90, 0.05}, torch::kFloat64);
        probs[r][0] = torch::full({3}, 1.0 / 3, torch::kFloat64);
    }
    torch::Tensor topk = std::get<1>(probs.topk(1, -1));  // [rows, 2, 1]
    torch::Tensor valid = torch::ones({rows, 2}, torch::kBool);
    auto fitted_choice = [&](const torch::Tensor& target) {
        torch::Tensor z = torch::zeros({3}, torch::kFloat64).set_requires_grad(true);
        for (int step = 0; step < 400; ++step) {
            torch::Tensor loss = loss_lookahead(z.view({1, 1, 3}).expand({rows, 2, 3}), target, valid, 1);
            torch::Tensor g = torch::autograd::grad({loss}, {z})[0];
            torch::NoGradGuard no_grad;
            z -= 2.0 * g;
        }
        return z.argmax().item<int64_t>();
    };
    EXPECT_EQ(fitted_choice(lookahead_target_topk(topk, 3, torch::kFloat64)), 0) << "top-k target";
    EXPECT_EQ(fitted_choice(probs), 1) << "softmax target";
}

TEST(Losses, PaddingIsExcluded) {
    torch::manual_seed(4);
    torch::Tensor p = torch::softmax(dopts_randn({1, 8, 4}), -1);
    torch::Tensor topk = std::get<1>(p.topk(2, -1));
    torch::Tensor valid = torch::ones({1, 8}, torch::kBool);
    valid[0][6] = false;
    valid[0][7] = false;
    // Changing padded positions must not change any loss.
    torch::Tensor q = p.clone();
    q[0][6] = torch::softmax(dopts_randn({4}), -1);
    q[0][7] = torch::softmax(dopts_randn({4}), -1);
    EXPECT_DOUBLE_EQ(loss_temporal(p, topk, valid).item<double>(), loss_temporal(q, topk, valid).item<double>());
    EXPECT_DOUBLE_EQ(loss_balance(p, topk, valid).item<double>(), loss_balance(q, topk, valid).item<double>());
    EXPECT_DOUBLE_EQ(loss_lookahead(torch::log(p), p, valid, 1).item<double>(), loss_lookahead(torch::log(q), q, valid, 1).item<double>());
}

// The closed-form values below are computed in float64 from a handful of terms: each result is
// within a few dozen u64 (~1e-15) of the exact value, far inside the 1e-12 the checks allow.
TEST(Losses, BalanceIsOneWhenPerfectlyUniform) {
    // Uniform probabilities and assignments give E * sum_e (1/E)(1/E) = 1.
    torch::Tensor p = torch::full({1, 4, 4}, 0.25, torch::kFloat64);
    torch::Tensor topk = torch::tensor({0, 1, 2, 3, 0, 1, 2, 3}, torch::kInt64).view({1, 4, 2});
    EXPECT_NEAR(loss_balance(p, topk, torch::ones({1, 4}, torch::kBool)).item<double>(), 1.0, 1e-12);
}

TEST(Losses, TemporalRewardsReuseBeyondChanceNotACollapsedRouter) {
    torch::Tensor valid = torch::ones({2, 3}, torch::kBool);
    auto both = [](std::vector<double> a, std::vector<double> b) {
        return torch::stack({torch::tensor(a, torch::kFloat64).repeat({3, 1}), torch::tensor(b, torch::kFloat64).repeat({3, 1})});
    };
    // A flat router reuses experts exactly by chance: 0.
    torch::Tensor flat = torch::full({2, 3, 4}, 0.25, torch::kFloat64);
    torch::Tensor flat_topk = torch::tensor({0, 1, 2, 3, 0, 1, 1, 2, 3, 0, 2, 3}, torch::kInt64).view({2, 3, 2});
    EXPECT_NEAR(loss_temporal(flat, flat_topk, valid).item<double>(), 0.0, 1e-12);
    // A collapsed router (every token of every text to experts {0, 1}) is perfectly sticky but
    // its reuse is chance too: 0, so it cannot lower this term (the old 1 - kept gave it 0.02).
    torch::Tensor collapsed = both({0.49, 0.49, 0.01, 0.01}, {0.49, 0.49, 0.01, 0.01});
    torch::Tensor collapsed_topk = torch::tensor({0, 1}, torch::kInt64).repeat({2, 3, 1});
    EXPECT_NEAR(loss_temporal(collapsed, collapsed_topk, valid).item<double>(), 0.0, 1e-12);
    // Balanced and sticky (text 0 on {0, 1}, text 1 on {2, 3}): chance 0.5, kept 0.98.
    torch::Tensor sticky = both({0.49, 0.49, 0.01, 0.01}, {0.01, 0.01, 0.49, 0.49});
    torch::Tensor sticky_topk = torch::stack({torch::tensor({0, 1}, torch::kInt64).repeat({3, 1}),
                                              torch::tensor({2, 3}, torch::kInt64).repeat({3, 1})});
    EXPECT_NEAR(loss_temporal(sticky, sticky_topk, valid).item<double>(), 0.5 - 0.98, 1e-12);
}

TEST(Losses, SummedCountsMakeRanksEqualOneBatchInValueAndGradient) {
    // Two "ranks" of unequal size (one has padding) sum their counts; the mean of their losses
    // and of their gradients must equal the one big batch's, for balance and temporal alike.
    torch::manual_seed(5);
    torch::Tensor logits = dopts_randn({2, 6, 4});
    torch::Tensor topk = std::get<1>(torch::softmax(logits, -1).topk(2, -1));
    torch::Tensor valid = torch::ones({2, 6}, torch::kBool);
    valid[1][4] = false;
    valid[1][5] = false;
    using Counted = std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&, const torch::Tensor&)>;
    const Counted balance = [](const torch::Tensor& p, const torch::Tensor&, const torch::Tensor& v, const torch::Tensor& c) {
        return loss_balance_counted(p, v, c);
    };
    const Counted temporal = loss_temporal_counted;
    for (const auto& [name, loss] : std::vector<std::pair<const char*, Counted>>{{"balance", balance}, {"temporal", temporal}}) {
        torch::Tensor whole_z = logits.clone().set_requires_grad(true);
        torch::Tensor whole = loss(torch::softmax(whole_z, -1), topk, valid, routing_counts(topk, valid, 4));
        whole.backward();
        torch::Tensor counts = routing_counts(topk.narrow(0, 0, 1), valid.narrow(0, 0, 1), 4) +
                               routing_counts(topk.narrow(0, 1, 1), valid.narrow(0, 1, 1), 4);
        torch::Tensor z = logits.clone().set_requires_grad(true);
        torch::Tensor p = torch::softmax(z, -1);
        torch::Tensor mean = (loss(p.narrow(0, 0, 1), topk.narrow(0, 0, 1), valid.narrow(0, 0, 1), counts) +
                              loss(p.narrow(0, 1, 1), topk.narrow(0, 1, 1), valid.narrow(0, 1, 1), counts)) / 2;
        mean.backward();
        // float64, the same terms summed in two groups: within gamma_12 u64 of O(1) values.
        EXPECT_NEAR(mean.item<double>(), whole.item<double>(), 1e-12) << name;
        const double diff = (z.grad() - whole_z.grad()).abs().max().item<double>();
        EXPECT_LT(diff, 1e-12) << name << ": gradients differ by " << diff;
    }
}

TEST(Losses, SwitchRateCountsChangedExperts) {
    // Sets {0,1} -> {0,1} -> {1,2} -> {3,2}: changes 0, 1, 1 of 2 -> 2 / 6.
    torch::Tensor topk = torch::tensor({0, 1, 1, 0, 1, 2, 3, 2}, torch::kInt64).view({1, 4, 2});
    EXPECT_NEAR(switch_rate(topk, torch::ones({1, 4}, torch::kBool), 4), 2.0 / 6.0, 1e-12);
}

TEST(Losses, BalanceIsOverTheBatchSoSequencesMayKeepToTheirOwnExperts) {
    // Sequence 0 uses experts {0, 1}, sequence 1 uses {2, 3}: the batch is perfectly balanced
    // (loss 1) although each sequence alone would score 2.
    torch::Tensor p = torch::zeros({2, 3, 4}, torch::kFloat64);
    p.select(0, 0).narrow(1, 0, 2).fill_(0.5);
    p.select(0, 1).narrow(1, 2, 2).fill_(0.5);
    torch::Tensor topk = torch::tensor({0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3}, torch::kInt64).view({2, 3, 2});
    torch::Tensor valid = torch::ones({2, 3}, torch::kBool);
    EXPECT_NEAR(loss_balance(p, topk, valid).item<double>(), 1.0, 1e-12);
    EXPECT_NEAR(loss_balance(p.narrow(0, 0, 1), topk.narrow(0, 0, 1), valid.narrow(0, 0, 1)).item<double>(), 2.0, 1e-12);
}
