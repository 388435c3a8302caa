// test_model.cpp: properties of the libtorch model — causality for every attention kind
// (prompts longer than the sliding window included), RoPE relativity, cached decoding equal to
// the full forward, soft gating against a per-token reference, and the lookahead's stop-gradient.
#include <gtest/gtest.h>

#include "model/model.h"
#include "numerics.h"
#include "test_helpers.h"
#include "train/losses.h"
#include "train/objective.h"

using namespace chronos;

namespace {

ModelConfig config_with(std::vector<AttentionKind> pattern) {
    ModelConfig c = test::tiny_model_config();
    c.num_hidden_layers = static_cast<int64_t>(pattern.size());
    c.attention_pattern = std::move(pattern);
    c.sliding_window = 6;
    return c;
}

const std::vector<std::pair<const char*, std::vector<AttentionKind>>> kPatterns = {
    {"mla+swa", {AttentionKind::mla, AttentionKind::swa}},
    {"gqa", {AttentionKind::gqa, AttentionKind::gqa}},
    {"swa", {AttentionKind::swa, AttentionKind::swa, AttentionKind::swa}},
    {"mla", {AttentionKind::mla}},
};

torch::Tensor random_ids(int64_t B, int64_t T, int64_t V, uint64_t seed) {
    torch::manual_seed(seed);
    return torch::randint(5, V, {B, T}, torch::kInt64);
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

// The same model evaluated two ways in float64 (a cached decode vs the full pass, shifted
// positions, a per-token reference): only the order of sums differs, plus, for shifted
// positions, the rounding of larger angles (pos x theta^(-2i/d) at pos <= 1012 is exact to
// 1012 x 2u, which moves a rotated value by as much). numerics.h bounds each stage's error by
// gamma_n of what it combines; the logits of these models (initialised with std 0.02) are far
// below 10 in magnitude, so network_bound(u64, ..., 10) is below 1e-11; we allow 1e-9, a
// hundred times that. The faults these tests exist for (a position leak, a stale cache row, a
// wrong mask) move logits by 1e-3 and more.
constexpr double kTwoWays64 = 1e-9;

}  // namespace

TEST(Model, ChangingTokenJNeverChangesEarlierLogits) {
    for (const auto& [name, pattern] : kPatterns) {
        torch::manual_seed(1);
        ChronosModel model(config_with(pattern));
        model->eval();
        model->to(torch::kFloat64);
        torch::NoGradGuard ng;
        const int64_t T = 20, j = 13;  // T and j well past the window of 6
        // A masked key's weight is exactly 0, but not every sum keeps its order: the changed
        // token may route elsewhere, and an expert's product then has another row count, for
        // which BLAS may pick another kernel. So earlier rows agree up to kTwoWays64.
        torch::Tensor ids = random_ids(2, T, 300, 2);
        torch::Tensor changed = ids.clone();
        changed.index_put_({torch::indexing::Slice(), j}, (ids.index({torch::indexing::Slice(), j}) + 7) % 300);
        torch::Tensor a = model->forward(ids).logits, b = model->forward(changed).logits;
        double before = max_diff(a.narrow(1, 0, j), b.narrow(1, 0, j));
        double at = max_diff(a.narrow(1, j, T - j), b.narrow(1, j, T - j));
        EXPECT_LE(before, kTwoWays64) << name << ": logits before position " << j << " changed by " << before;
        EXPECT_GT(at, 1e-4) << name << ": the changed token had no effect (test would not catch a leak)";
    }
}

TEST(Model, RopeScoresDependOnlyOnRelativePosition) {
    torch::manual_seed(3);
    for (int64_t d : {4, 8, 16}) {
        torch::Tensor q = torch::randn({d}, torch::kFloat64), k = torch::randn({d}, torch::kFloat64);
        auto score = [&](int64_t i, int64_t j) {
            RopeTable ri = rope_table(d, 10000.0, torch::tensor({i}), torch::kFloat64);
            RopeTable rj = rope_table(d, 10000.0, torch::tensor({j}), torch::kFloat64);
            return (rope_apply(q.unsqueeze(0), ri) * rope_apply(k.unsqueeze(0), rj)).sum().item<double>();
        };
        // In float64: angles up to 1003 x theta^0 are exact to 1003 x 2u, so cos and sin move by
        // as much; each of the d products of the score then carries at most 1003 x 4u + 4u
        // relative error of |q_i||k_i|, and their sum another gamma_d: 5000 d u |q||k| bounds it.
        const double tol = 5000.0 * static_cast<double>(d) * test::kU64 * q.norm().item<double>() * k.norm().item<double>();
        for (auto [i, j, s] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{5, 2, 100}, {40, 40, 7}, {3, 0, 1000}}) {
            EXPECT_NEAR(score(i, j), score(i + s, j + s), tol) << "d=" << d << " i=" << i << " j=" << j << " shift=" << s;
        }
        EXPECT_GT(std::abs(score(5, 2) - score(5, 4)), 1e-4) << "scores do not depend on position at all";
    }
}

TEST(Model, ShiftingAllPositionsLeavesLogitsUnchanged) {
    // The MLA fault of the prototype: a RoPE table built for another width made q.k depend on
    // absolute position. Shifting every position must not change anything.
    for (const auto& [name, pattern] : kPatterns) {
        torch::manual_seed(4);
        ChronosModel model(config_with(pattern));
        model->eval();
        model->to(torch::kFloat64);
        torch::NoGradGuard ng;
        torch::Tensor ids = random_ids(1, 12, 300, 5);
        ForwardOptions shifted;
        shifted.positions = torch::arange(1000, 1012, torch::kInt64);
        double d = max_diff(model->forward(ids).logits, model->forward(ids, shifted).logits);
        EXPECT_LE(d, kTwoWays64) << name << ": logits changed by " << d << " under a position shift";
    }
}

TEST(Model, CachedStepByStepDecodingEqualsFullForward) {
    for (const auto& [name, pattern] : kPatterns) {
        torch::manual_seed(6);
        ChronosModel model(config_with(pattern));
        model->eval();
        model->to(torch::kFloat64);
        torch::NoGradGuard ng;
        const int64_t T = 18, prefill = 5;  // decoding runs far past the window of 6
        torch::Tensor ids = random_ids(2, T, 300, 7);
        torch::Tensor full = model->forward(ids).logits;
        std::vector<LayerCache> cache;
        ForwardOptions o;
        o.cache = &cache;
        ForwardOutput first = model->forward(ids.narrow(1, 0, prefill), o);
        std::vector<torch::Tensor> steps = {first.logits}, looks = {first.lookahead_logits};
        auto last_route = [](const ForwardOutput& f) {  // [B, L*E] routing of the last position
            return torch::cat(f.router_probs, -1).select(1, -1);
        };
        torch::Tensor prev = last_route(first);
        for (int64_t t = prefill; t < T; ++t) {
            o.prev_route = prev;
            ForwardOutput step = model->forward(ids.narrow(1, t, 1), o);
            steps.push_back(step.logits);
            looks.push_back(step.lookahead_logits);
            prev = last_route(step);
        }
        double d = max_diff(full, torch::cat(steps, 1));
        EXPECT_LE(d, kTwoWays64) << name << ": cached decoding differs from the full pass by " << d;
        double dl = max_diff(model->forward(ids).lookahead_logits, torch::cat(looks, 1));
        EXPECT_LE(dl, kTwoWays64) << name << ": cached lookahead differs from the full pass by " << dl;
        // Sliding-window caches hold at most `window` entries and positions keep counting.
        for (size_t l = 0; l < pattern.size(); ++l) {
            if (pattern[l] == AttentionKind::swa) {
                EXPECT_EQ(cache[l].positions.size(0), 6) << name;
                EXPECT_EQ(cache[l].positions[-1].item<int64_t>(), T - 1) << name;
            }
        }
    }
}

namespace {

// Reference MoE: one token at a time, straight from the definition.
torch::Tensor moe_reference(MoeLayer& moe, const torch::Tensor& x, const torch::Tensor& avail) {
    std::vector<torch::Tensor> rows;
    for (int64_t n = 0; n < x.size(0); ++n) {
        torch::Tensor xn = x[n].unsqueeze(0);
        torch::Tensor p = torch::softmax(moe->gate(xn)[0], -1);
        auto [tv, ti] = p.topk(moe->top_k);
        torch::Tensor w = tv / tv.sum();
        torch::Tensor y = moe->shared_experts->forward(xn)[0];
        for (int64_t i = 0; i < moe->top_k; ++i) {
            int64_t e = ti[i].item<int64_t>();
            double a = avail.defined() ? avail[e].item<double>() : 1.0;
            y = y + w[i] * a * moe->experts[static_cast<size_t>(e)]->as<Expert>()->forward(xn)[0];
        }
        rows.push_back(y);
    }
    return torch::stack(rows);
}

}  // namespace

TEST(Moe, SoftGatingMatchesPerTokenReference) {
    torch::manual_seed(8);
    ModelConfig c = test::tiny_model_config();
    MoeLayer moe(c);
    moe->eval();
    moe->to(torch::kFloat64);
    torch::NoGradGuard ng;
    torch::Tensor x = torch::randn({37, c.hidden_size}, torch::kFloat64);
    torch::Tensor all = torch::ones({c.n_routed_experts});
    MoeOutput plain = moe->forward(x, torch::Tensor());
    // Exact: an availability of 1 multiplies each weight by 1.
    EXPECT_EQ(max_diff(plain.y, moe->forward(x, all).y), 0.0) << "all-available mask differs from no mask";
    EXPECT_LE(max_diff(plain.y, moe_reference(moe, x, torch::Tensor())), kTwoWays64);
    for (int64_t e = 0; e < c.n_routed_experts; ++e) {
        torch::Tensor avail = torch::ones({c.n_routed_experts});
        avail[e] = 0;
        torch::Tensor masked = moe->forward(x, avail).y;
        EXPECT_LE(max_diff(masked, moe_reference(moe, x, avail)), kTwoWays64) << "expert " << e;
        // Exactly the tokens routed to e change, by exactly w_e * E_e(x).
        torch::Tensor routed = (plain.topk == e).any(1);
        ASSERT_GT(routed.sum().item<int64_t>(), 0) << "no token routed to expert " << e;
        torch::Tensor unrouted_diff = (masked - plain.y).index({routed.logical_not()});
        if (unrouted_diff.numel() > 0) {
            EXPECT_EQ(unrouted_diff.abs().max().item<float>(), 0.0f) << "expert " << e;
        }
    }
}

TEST(Moe, RouterWeightsAreRenormalisedTopK) {
    torch::manual_seed(9);
    ModelConfig c = test::tiny_model_config();
    MoeLayer moe(c);
    torch::NoGradGuard ng;
    MoeOutput o = moe->forward(torch::randn({16, c.hidden_size}), torch::Tensor());
    // A float32 softmax over E experts: each exp and the division carry a few u, the sum of E
    // terms gamma_E; (E + 4) u bounds |sum - 1|.
    EXPECT_LE(max_diff(o.probs.sum(-1), torch::ones({16})), static_cast<double>(c.n_routed_experts + 4) * test::kU32);
    torch::Tensor chosen = o.probs.gather(1, o.topk);
    torch::Tensor best = std::get<0>(o.probs.topk(c.num_experts_per_tok, -1));
    EXPECT_EQ(max_diff(chosen, best), 0.0) << "the chosen experts are not the k most probable";
}

// Whichever block the head reads, its prediction at t depends on tokens <= t only, and
// step-by-step decoding (carrying the previous routing) gives the full pass's predictions.
TEST(Lookahead, HeadOnEitherBlockIsCausalAndDecodesStepByStep) {
    for (int64_t input : {int64_t{0}, int64_t{2}}) {
        SCOPED_TRACE(input);
        ModelConfig c = config_with({AttentionKind::mla, AttentionKind::swa, AttentionKind::mla});
        c.lookahead_input_layer = input;
        torch::manual_seed(3);
        ChronosModel model(c);
        model->eval();
        model->to(torch::kFloat64);
        torch::NoGradGuard ng;
        const int64_t T = 16, j = 9, prefill = 4;
        torch::Tensor ids = random_ids(2, T, 300, 4);
        torch::Tensor changed = ids.clone();
        changed.index_put_({torch::indexing::Slice(), j}, (ids.index({torch::indexing::Slice(), j}) + 7) % 300);
        torch::Tensor a = model->forward(ids).lookahead_logits, b = model->forward(changed).lookahead_logits;  // [B, T, K, L, E]
        EXPECT_LE(max_diff(a.narrow(1, 0, j), b.narrow(1, 0, j)), kTwoWays64) << "a prediction before the changed token moved";
        EXPECT_GT(max_diff(a.narrow(1, j, T - j), b.narrow(1, j, T - j)), 1e-4) << "the changed token had no effect";

        std::vector<LayerCache> cache;
        ForwardOptions o;
        o.cache = &cache;
        ForwardOutput first = model->forward(ids.narrow(1, 0, prefill), o);
        std::vector<torch::Tensor> looks = {first.lookahead_logits};
        torch::Tensor prev = torch::cat(first.router_probs, -1).select(1, -1);
        for (int64_t t = prefill; t < T; ++t) {
            o.prev_route = prev;
            ForwardOutput step = model->forward(ids.narrow(1, t, 1), o);
            looks.push_back(step.lookahead_logits);
            prev = torch::cat(step.router_probs, -1).select(1, -1);
        }
        EXPECT_LE(max_diff(a, torch::cat(looks, 1)), kTwoWays64);
    }
}

TEST(Lookahead, LossSendsNoGradientIntoTheRouters) {
    for (LookaheadTarget target : {LookaheadTarget::router_topk, LookaheadTarget::router_probs}) {
        SCOPED_TRACE(lookahead_target_name(target));
        torch::manual_seed(10);
        ModelConfig c = test::tiny_model_config();
        c.lookahead_target = target;
        ChronosModel model(c);
        torch::Tensor ids = random_ids(2, 12, 300, 11);
        ForwardOutput out = model->forward(ids);
        torch::Tensor valid = torch::ones({2, 12}, torch::kBool);
        lookahead_total(lookahead_terms(out, valid, c)).backward();
        for (auto& p : model->named_parameters()) {
            const bool head = p.key().rfind("lookahead.", 0) == 0;
            const torch::Tensor& g = p.value().grad();
            const double norm = g.defined() ? g.abs().sum().item<double>() : 0.0;
            if (head) {
                EXPECT_GT(norm, 0.0) << p.key() << " got no gradient";
            } else {
                EXPECT_EQ(norm, 0.0) << p.key() << " received gradient from the lookahead loss";
            }
        }
    }
}
