// test_runtime.cpp: the native runtime against the libtorch model (the reference), the miss
// policies against each other, metrics against a known trace, and the fault-injection cases.
// Each parity test prints the largest difference it saw.
#include <gtest/gtest.h>
#include <omp.h>
#include <torch/torch.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <set>

#include "cluster/coactivation.h"
#include "core/error.h"
#include "format/intent.h"
#include "format/pack.h"
#include "model/model.h"
#include "runtime/kernels.h"
#include "runtime/memory_budget.h"
#include "runtime/policy_replay.h"
#include "runtime/residency.h"
#include "runtime/runtime.h"
#include "numerics.h"
#include "runtime_helpers.h"
#include "test_helpers.h"
#include "train/checkpoint_io.h"
#include "train/train_api.h"

using namespace chronos;
using chronos::test::expect_error_mentions;
using chronos::test::random_ids;
using chronos::test::runtime_logits;

// The replacement operators below pair new with malloc and delete with free, which is correct;
// GCC's mismatch check cannot see that through inlining.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

// Counts C++ heap allocations while `g_count_allocations` is set (the decode-loop test).
static std::atomic<bool> g_count_allocations{false};
static std::atomic<int64_t> g_allocations{0};
void* operator new(size_t n) {
    if (g_count_allocations.load(std::memory_order_relaxed)) g_allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace {

// 4 layers (MLA, SWA, MLA, SWA) x 8 experts, window 8 so 20 + 32 tokens wrap the ring; an
// expert is 3 x 32 x 32 x 4 = 12288 bytes, a multiple of 4096.
ModelConfig runtime_config() {
    ModelConfig c = test::tiny_model_config();
    c.num_hidden_layers = 4;
    c.attention_pattern = {AttentionKind::mla, AttentionKind::swa, AttentionKind::mla, AttentionKind::swa};
    c.n_routed_experts = 8;
    c.moe_intermediate_size = 32;
    c.sliding_window = 8;
    return c;
}

// Writes a checkpoint of `model` into dir and packs its experts (natural order, one cluster
// per layer, so a layer's experts are one sequential read).
void save_and_pack(ChronosModel& model, const std::string& dir, WeightType dtype = WeightType::f32, WeightType dense = WeightType::f32) {
    SafetensorsWriter w;
    std::vector<torch::Tensor> keep;
    model_add_tensors(model, w, keep);
    CheckpointStaging stage(dir);
    config_save(model->config, model->losses, stage.file("config.json"));
    w.write(stage.file("model.safetensors"));
    stage.commit();
    Checkpoint ck = checkpoint_open(dir);
    pack_write(ck, cluster_plan_natural(model->config.num_hidden_layers, model->config.n_routed_experts), dtype, dense);
}

// A random model saved as a checkpoint and packed, in a temporary directory.
struct PackedModel {
    test::TempDir tmp;
    ChronosModel model;
    std::unique_ptr<rt::Model> rt_model;
    PackedModel(const ModelConfig& c, uint64_t seed, WeightType type = WeightType::f32);
    rt::Model& runtime() { return *rt_model; }
};

// Random weights with a router sharp enough that routing differs from token to token.
ChronosModel random_model(const ModelConfig& c, uint64_t seed) {
    torch::manual_seed(seed);
    ChronosModel m(c);
    torch::NoGradGuard ng;
    for (auto& p : m->named_parameters()) {
        if (p.key().find("mlp.gate.") != std::string::npos) p.value().normal_(0.0, 0.5);
        else if (p.value().dim() == 2) p.value().normal_(0.0, 0.15);
    }
    return m;
}

PackedModel::PackedModel(const ModelConfig& c, uint64_t seed, WeightType type) : model(random_model(c, seed)) {
    save_and_pack(model, tmp.path(), type, type);
    rt_model = std::make_unique<rt::Model>(tmp.path());
}


double max_abs_diff(const std::vector<float>& a, const torch::Tensor& b) {
    torch::Tensor ta = torch::from_blob(const_cast<float*>(a.data()), {static_cast<int64_t>(a.size())}, torch::kFloat32);
    return (ta.to(torch::kFloat64) - b.reshape({-1}).to(torch::kFloat64)).abs().max().item<double>();
}

// The libtorch model's logits for ids, computed in float64 [T, V]: the reference the runtime's
// float32 logits are held to (the model is converted in place).
torch::Tensor reference_logits64(ChronosModel& model, const std::vector<int32_t>& ids) {
    torch::NoGradGuard ng;
    model->eval();
    model->to(torch::kFloat64);
    std::vector<int64_t> ids64(ids.begin(), ids.end());
    return model->forward(torch::tensor(ids64, torch::kInt64).view({1, -1})).logits.squeeze(0);
}

// Cauchy-Schwarz bound on the magnitudes a logit's last product combines: the final norm's
// output (RMS 1 times the norm weight: at most sqrt(H) max|w|) times the longest lm_head row.
double logit_scale(ChronosModel& m) {
    torch::NoGradGuard ng;
    const torch::Tensor& head = m->config.tie_word_embeddings ? m->model->embed_tokens->weight : m->lm_head->weight;
    return std::sqrt(static_cast<double>(m->config.hidden_size)) * m->model->norm->weight.abs().max().item<double>() *
           head.norm(2, 1).max().item<double>();
}

// The runtime (float32) against the float64 reference over `positions` tokens: numerics.h.
double logits_bound(ChronosModel& m, int64_t positions) { return test::network_bound(test::kU32, m->config, positions, logit_scale(m)); }

rt::SessionOptions mode_opts(rt::MissMode mode, uint64_t budget = 0) {
    rt::SessionOptions so;
    so.mode = mode;
    so.ram_budget = budget;
    return so;
}

uint64_t budget_of(const rt::Model& m, double share) { return static_cast<uint64_t>(static_cast<double>(m.expert_bytes_total()) * share); }

void check_parity(const ModelConfig& c, const char* what) {
    PackedModel pm(c, 5);
    ChronosModel model = pm.model;
    const int64_t prompt = 20, steps = 32, V = c.vocab_size;
    std::vector<int32_t> ids = random_ids(prompt + steps, V, 9);
    const torch::Tensor ref = reference_logits64(model, ids);  // [T, V]
    const double tol = logits_bound(model, prompt + steps);
    rt::Model& rm = pm.runtime();
    for (rt::MissMode mode : {rt::MissMode::resident, rt::MissMode::exact}) {
        rt::SessionOptions so;
        so.mode = mode;
        so.ram_budget = budget_of(rm, 0.25);
        rt::Session s(rm, so);
        std::vector<float> got = runtime_logits(s, ids, prompt, V);
        const double diff = max_abs_diff(got, ref);
        std::printf("[parity] %s, %s: max |runtime - libtorch float64| over %lld positions = %.3g (bound %.3g)\n", what,
                    rt::miss_mode_name(mode), static_cast<long long>(prompt + steps), diff, tol);
        EXPECT_LE(diff, tol) << what << " " << rt::miss_mode_name(mode);
        if (mode == rt::MissMode::exact) {
            EXPECT_GT(s.metrics().misses, 0u) << "the budget should force reads";
        }
    }
}

}  // namespace

TEST(RuntimeParity, ChronosModelPrefillAnd32DecodeStepsMatchLibtorch) { check_parity(runtime_config(), "chronos"); }

TEST(RuntimeParity, BaselineModelPrefillAnd32DecodeStepsMatchLibtorch) {
    check_parity(config_make_baseline(runtime_config()), "baseline");
}

// Experts and dense matrices stored narrow: the runtime equals libtorch on the stored values
// (each matrix replaced by its rows quantized and widened back, exact in float64), held to the
// fp32 bound. q8 and q4 products of one row quantize the activations as well (bounded in
// test_weight_kernels.cpp, and a different top-k choice anywhere moves logits far), so for them
// the network runs with fp32 activations here (kernel_quantize_activations(false)).
TEST(RuntimeParity, NarrowPacksComputeWithTheStoredWeights) {
    ModelConfig c = runtime_config();
    for (WeightType t : {WeightType::bf16, WeightType::f16, WeightType::q8, WeightType::q4}) {
        test::TempDir tmp;
        ChronosModel model = random_model(c, 6);
        save_and_pack(model, tmp.path(), t, t);
        const std::vector<std::string> dense = pack_dense_names(c);
        {
            torch::NoGradGuard ng;
            for (auto& p : model->named_parameters()) {
                const bool narrow = p.key().find(".experts.") != std::string::npos || std::find(dense.begin(), dense.end(), p.key()) != dense.end();
                if (!narrow) continue;
                torch::Tensor w = p.value().contiguous();
                const int64_t rows = w.size(0), cols = w.size(1);
                std::vector<uint8_t> row(weight_row_bytes(t, cols));
                for (int64_t r = 0; r < rows; ++r) {
                    float* x = w.data_ptr<float>() + r * cols;
                    weight_quantize_row(t, x, cols, row.data());
                    weight_dequantize_row(t, row.data(), cols, x);
                }
                p.value().copy_(w);
            }
        }
        const int64_t n = 24, prompt = 16;
        std::vector<int32_t> ids = random_ids(n, c.vocab_size, 4);
        const torch::Tensor ref = reference_logits64(model, ids);
        const double tol = logits_bound(model, n);
        rt::Model rm(tmp.path());
        EXPECT_EQ(rm.dense_type(), t);
        rt::Session s(rm, {});
        rt::kernel_quantize_activations(false);
        const double diff = max_abs_diff(runtime_logits(s, ids, prompt, c.vocab_size), ref);
        rt::kernel_quantize_activations(true);
        std::printf("[parity] %s experts and dense matrices: max diff %.3g (bound %.3g)\n", weight_type_name(t), diff, tol);
        EXPECT_LE(diff, tol) << weight_type_name(t);
    }
}

// The head's predictions, caught through on_predict, against libtorch's lookahead at the same
// positions (the prompt's last row, then every decode step), for a head reading block 0 (with
// t-1's routing) and one reading the last block (with t's own). The head is trained against the
// top-k choice, so the runtime hands on k x its softmax, clamped to 1: P(the pair is chosen).
TEST(RuntimeParity, LookaheadHeadMatchesLibtorchWhicheverBlockItReads) {
    for (int64_t input : {int64_t{0}, int64_t{3}}) {
        ModelConfig c = runtime_config();
        c.lookahead_input_layer = input;
        PackedModel pm(c, 13);
        const int64_t prompt = 12, steps = 10, V = c.vocab_size;
        const int64_t n = c.lookahead_steps * c.num_hidden_layers * c.n_routed_experts;
        std::vector<int32_t> ids = random_ids(prompt + steps, V, 17);
        torch::Tensor ref;
        {
            torch::NoGradGuard ng;
            pm.model->eval();
            pm.model->to(torch::kFloat64);
            std::vector<int64_t> ids64(ids.begin(), ids.end());
            ref = torch::softmax(pm.model->forward(torch::tensor(ids64, torch::kInt64).view({1, -1})).lookahead_logits.squeeze(0), -1);
            ASSERT_EQ(c.lookahead_target, LookaheadTarget::router_topk);
            ref = torch::clamp_max(ref * static_cast<double>(c.num_experts_per_tok), 1.0);
        }
        // Probabilities: the last stage combines magnitudes of at most 1; the head's two
        // products and its softmax come on top of the blocks its input passed through. The
        // scaling by k multiplies the error by k (the clamp does not enlarge it).
        const double tol = static_cast<double>(c.num_experts_per_tok) *
                           (test::network_bound(test::kU32, c, prompt + steps, 1.0) +
                            3 * test::gamma_n(c.hidden_size + c.num_hidden_layers * c.n_routed_experts, test::kU32));
        rt::Session s(pm.runtime(), mode_opts(rt::MissMode::resident));
        std::vector<float> got;
        s.on_predict = [&](int64_t, float* pred) { got.insert(got.end(), pred, pred + n); };
        runtime_logits(s, ids, prompt, V);
        ASSERT_EQ(static_cast<int64_t>(got.size()), (steps + 1) * n) << "one prediction after the prompt and one per decode step";
        const double diff = max_abs_diff(got, ref.narrow(0, prompt - 1, steps + 1));
        std::printf("[parity] lookahead head reading block %lld: max diff %.3g (bound %.3g)\n", static_cast<long long>(input), diff, tol);
        EXPECT_LE(diff, tol) << "head reading block " << input;
    }
}

TEST(RuntimeModes, ExactGivesTheResidentTokensAtEveryBudget) {
    ModelConfig c = runtime_config();
    PackedModel pm(c, 7);
    rt::Model& rm = pm.runtime();
    std::vector<int32_t> prompt = random_ids(12, c.vocab_size, 3);
    auto run = [&](rt::MissMode mode, double share, uint64_t* misses) {
        rt::SessionOptions so;
        so.mode = mode;
        so.ram_budget = budget_of(rm, share);
        rt::Session s(rm, so);
        rt::Sampler sampler({}, c.vocab_size);
        rt::GenerateOptions go;
        go.max_tokens = 40;
        auto r = rt::generate(s, sampler, prompt, go, {});
        if (misses) *misses = s.metrics().misses;
        return r.tokens;
    };
    const std::vector<int32_t> resident = run(rt::MissMode::resident, 1.0, nullptr);
    for (double share : {1.0, 0.5, 0.25, 0.1}) {
        uint64_t misses = 0;
        EXPECT_EQ(run(rt::MissMode::exact, share, &misses), resident) << "budget " << share;
        if (share <= 0.25) {
            EXPECT_GT(misses, 0u) << "budget " << share << " should miss";
        }
    }
}

TEST(RuntimeModes, ExactLogitsAreBitIdenticalToResident) {
    // Experts arrive in any order; their outputs are summed in expert order, so waiting for
    // reads changes nothing, not even the last bit.
    ModelConfig c = runtime_config();
    PackedModel pm(c, 11);
    rt::Model& rm = pm.runtime();
    std::vector<int32_t> ids = random_ids(40, c.vocab_size, 21);
    rt::Session resident(rm, mode_opts(rt::MissMode::resident));
    const std::vector<float> want = runtime_logits(resident, ids, 12, c.vocab_size);
    for (double share : {0.5, 0.1}) {
        rt::Session exact(rm, mode_opts(rt::MissMode::exact, budget_of(rm, share)));
        EXPECT_EQ(runtime_logits(exact, ids, 12, c.vocab_size), want) << "budget " << share;
        EXPECT_GT(exact.metrics().misses, 0u);
    }
}

// The oracle of `chronos bench offload --oracle`: the routing a resident session chose, written
// over the head's predictions, is named in full (recall 1) and changes no output.
TEST(RuntimeModes, RecordedRoutingAsThePredictionIsNamedInFull) {
    ModelConfig c = runtime_config();
    PackedModel pm(c, 7);
    rt::Model& rm = pm.runtime();
    const int64_t prompt = 12, V = c.vocab_size, k = c.num_experts_per_tok;
    std::vector<int32_t> ids = random_ids(40, V, 5);
    std::vector<int32_t> routes;  // [decode steps][L][k]
    rt::Session resident(rm, mode_opts(rt::MissMode::resident));
    resident.on_route = [&](int64_t, const int32_t* topk, int64_t T, const float*) {
        if (T == 1) routes.insert(routes.end(), topk, topk + k);  // decode rows only (the prompt is 12 rows)
    };
    const std::vector<float> want = runtime_logits(resident, ids, prompt, V);
    ASSERT_EQ(routes.size(), static_cast<size_t>((40 - prompt) * c.num_hidden_layers * k));

    rt::Session head(rm, mode_opts(rt::MissMode::exact, budget_of(rm, 0.25)));
    EXPECT_EQ(runtime_logits(head, ids, prompt, V), want);
    EXPECT_LT(head.metrics().lookahead_named, head.metrics().lookahead_total) << "a random head should miss some (else this test proves nothing)";

    rt::Session oracle(rm, mode_opts(rt::MissMode::exact, budget_of(rm, 0.25)));
    oracle.on_predict = [&](int64_t step, float* pred) {
        rt::prediction_from_routes(routes.data(), static_cast<int64_t>(routes.size()), c, step, pred);
    };
    EXPECT_EQ(runtime_logits(oracle, ids, prompt, V), want);
    EXPECT_GT(oracle.metrics().lookahead_total, 0u);
    EXPECT_EQ(oracle.metrics().lookahead_named, oracle.metrics().lookahead_total);
    std::printf("recall: head %llu / %llu, oracle %llu / %llu; misses: head %llu, oracle %llu\n",
                static_cast<unsigned long long>(head.metrics().lookahead_named), static_cast<unsigned long long>(head.metrics().lookahead_total),
                static_cast<unsigned long long>(oracle.metrics().lookahead_named), static_cast<unsigned long long>(oracle.metrics().lookahead_total),
                static_cast<unsigned long long>(head.metrics().misses), static_cast<unsigned long long>(oracle.metrics().misses));
}

TEST(RuntimeModes, SoftEqualsResidentWhenAllFitAndItsFallbacksAreTheMaskedExperts) {
    ModelConfig c = runtime_config();
    PackedModel pm(c, 8);
    ChronosModel model = pm.model;
    rt::Model& rm = pm.runtime();
    const int64_t prompt = 10, steps = 30, V = c.vocab_size, L = c.num_hidden_layers, E = c.n_routed_experts;
    std::vector<int32_t> ids = random_ids(prompt + steps, V, 12);
    rt::Session resident(rm, mode_opts(rt::MissMode::resident));
    const std::vector<float> want = runtime_logits(resident, ids, prompt, V);
    rt::SessionOptions warm = mode_opts(rt::MissMode::soft);
    warm.preload = true;  // every expert resident before the prompt
    rt::Session soft_all(rm, warm);
    EXPECT_EQ(runtime_logits(soft_all, ids, prompt, V), want) << "soft with every expert resident must equal resident";
    EXPECT_EQ(soft_all.metrics().fallbacks, 0u);

    // With a budget: record the availability each decode layer computed with, count the routed
    // experts it left out, and check the logits against libtorch run with those same masks.
    rt::SessionOptions so;
    so.mode = rt::MissMode::soft;
    so.ram_budget = budget_of(rm, 0.25);
    rt::Session soft(rm, so);
    std::vector<torch::Tensor> masks;  // per decode step [L, E]
    bool decoding = false;
    uint64_t counted = 0;
    soft.on_route = [&](int64_t l, const int32_t* topk, int64_t T, const float* avail) {
        if (!decoding) return;
        if (l == 0) masks.push_back(torch::ones({L, E}));
        for (int64_t j = 0; j < T * c.num_experts_per_tok; ++j) counted += avail[topk[j]] == 0.0f;
        masks.back()[l] = torch::from_blob(const_cast<float*>(avail), {E}, torch::kFloat32).clone();
    };
    std::vector<float> got(ids.size() * static_cast<size_t>(V));
    soft.prefill(ids.data(), prompt, got.data());
    decoding = true;
    for (int64_t t = prompt; t < prompt + steps; ++t) {
        soft.decode(ids[static_cast<size_t>(t)]);
        std::copy(soft.logits(), soft.logits() + V, got.begin() + t * V);
    }
    EXPECT_GT(soft.metrics().fallbacks, 0u) << "a 25% budget should cause fallbacks";
    EXPECT_EQ(soft.metrics().fallbacks, counted);

    torch::NoGradGuard ng;
    const double tol = logits_bound(model, prompt + steps);
    model->to(torch::kFloat64);
    std::vector<LayerCache> cache;
    std::vector<int64_t> ids64(ids.begin(), ids.end());
    torch::Tensor all = torch::tensor(ids64, torch::kInt64).view({1, -1});
    ForwardOptions fo;
    fo.cache = &cache;
    torch::Tensor ref_prompt = model->forward(all.narrow(1, 0, prompt), fo).logits.squeeze(0);
    double diff = max_abs_diff(std::vector<float>(got.begin(), got.begin() + prompt * V), ref_prompt);
    for (int64_t s = 0; s < steps; ++s) {
        ForwardOptions step;
        step.cache = &cache;
        step.availability = masks[static_cast<size_t>(s)];
        torch::Tensor ref = model->forward(all.narrow(1, prompt + s, 1), step).logits.reshape({-1});
        std::vector<float> row(got.begin() + (prompt + s) * V, got.begin() + (prompt + s + 1) * V);
        diff = std::max(diff, max_abs_diff(row, ref));
    }
    std::printf("[parity] soft with %llu fallbacks vs libtorch float64 with the same masks: max diff %.3g (bound %.3g)\n",
                static_cast<unsigned long long>(counted), diff, tol);
    EXPECT_LE(diff, tol);
}

// A model whose routing is known in advance: attention and experts add nothing, so every
// layer routes token v to experts {v mod E, (v+1) mod E}. Saved and packed into dir, one
// cluster per layer in expert order (a layer's adjacent experts are one read).
void save_known_trace_model(const std::string& dir, bool with_head = false) {
    ModelConfig c = runtime_config();
    c.lookahead_steps = with_head ? 1 : 0;
    c.lookahead_hidden_size = with_head ? 4 : 0;
    const int64_t E = c.n_routed_experts;
    ChronosModel model(c);
    {
        torch::NoGradGuard ng;
        for (auto& p : model->named_parameters()) {
            const std::string& n = p.key();
            if (n.find("o_proj") != std::string::npos || n.find("down_proj") != std::string::npos) p.value().zero_();
            if (n.find("mlp.gate.") != std::string::npos) {
                p.value().zero_();
                for (int64_t e = 0; e < E; ++e) p.value()[e][e] = 10.0f;
            }
        }
        torch::Tensor emb = model->model->embed_tokens->weight;
        emb.zero_();
        for (int64_t v = 0; v < c.vocab_size; ++v) {
            emb[v][v % E] = 3.0f;
            emb[v][(v + 1) % E] = 2.0f;
        }
    }
    save_and_pack(model, dir);
}

TEST(RuntimeMetrics, HitsMissesAndBytesAreCountedOnAKnownTrace) {
    test::TempDir tmp;
    save_known_trace_model(tmp.path());
    rt::Model rm(tmp.path());
    const int64_t E = rm.config.n_routed_experts, L = rm.config.num_hidden_layers;
    const uint64_t expert_bytes = rm.manifest.entries[0].length;
    ASSERT_EQ(expert_bytes % 4096, 0u);
    const std::vector<int32_t> prompt = {0, 1};                // experts {0,1}, {1,2}
    const std::vector<int32_t> decode = {0, 2, 2, 5, 1, 0};    // {0,1} {2,3} {2,3} {5,6} {1,2} {0,1}

    // Budget for everything, LRU: a pair misses the first time it is needed, then hits.
    {
        rt::Session s(rm, mode_opts(rt::MissMode::lru));
        s.prefill(prompt.data(), static_cast<int64_t>(prompt.size()));
        for (int32_t id : decode) s.decode(id);
        std::set<int64_t> seen = {0, 1, 2};  // per layer, experts used by the prompt
        uint64_t hits = 0, misses = 0;
        for (int32_t id : decode) {
            for (int64_t e : {static_cast<int64_t>(id % E), static_cast<int64_t>((id + 1) % E)}) {
                (seen.count(e) ? hits : misses) += static_cast<uint64_t>(L);
                seen.insert(e);
            }
        }
        EXPECT_EQ(s.metrics().prefill_misses, static_cast<uint64_t>(4 * L)) << "prompt assignments (2 tokens x 2 experts) per layer";
        EXPECT_EQ(s.metrics().hits, hits);
        EXPECT_EQ(s.metrics().misses, misses);
        EXPECT_EQ(s.metrics().bytes_read_decode, misses * expert_bytes);  // one read per missed pair
        EXPECT_EQ(s.metrics().misses_late, 0u) << "lru reads nothing ahead, so no miss finds its read under way";
        EXPECT_EQ(s.metrics().decode_tokens, static_cast<int64_t>(decode.size()));
    }
    // Two slots (one layer's top-k): each layer evicts the previous layer's pair, so every
    // decode assignment misses and reads one expert.
    {
        rt::SessionOptions so;
        so.mode = rt::MissMode::lru;
        so.ram_budget = 2 * expert_bytes;
        rt::Session s(rm, so);
        s.prefill(prompt.data(), static_cast<int64_t>(prompt.size()));
        for (int32_t id : decode) s.decode(id);
        const uint64_t want = static_cast<uint64_t>(decode.size() * 2 * L);
        EXPECT_EQ(s.metrics().hits, 0u);
        EXPECT_EQ(s.metrics().misses, want);
        EXPECT_EQ(s.metrics().bytes_read_decode, want * expert_bytes);
        // The prompt needs 3 distinct experts per layer (expert 1 serves both tokens: 4 assignments).
        EXPECT_EQ(s.metrics().prefill_misses, static_cast<uint64_t>(4 * L));
        EXPECT_EQ(s.store().counters().experts_read, want + static_cast<uint64_t>(3 * L));
        // Each pair's bytes are hashed on their first arrival only: experts {0, 1, 2, 3, 5, 6}
        // of every layer, however often they were read again.
        EXPECT_EQ(s.store().counters().experts_verified, static_cast<uint64_t>(6 * L));
    }
}

// A pair is a hit only if its read was complete when its layer first asked for it. With reads
// made slow on purpose (200 ms, far longer than a token of this model computes), the two experts
// of token 4 are prefetched for every layer, layer 0's read last: layer 0 asks while both of its
// experts are under way (two late misses) and waits for expert 4; that one read also brings
// expert 5, which a count taken when the expert computes instead of when it was asked for would
// call a hit. Layers 1-3 were read earlier and are complete when they ask: six hits, each with a
// non-negative slack; layer 0's two carry the negative slack of the wait. Layer 0 asks as soon
// as decode reaches it: microseconds on an idle machine, 11 ms once under a loaded parallel test
// run; the thresholds leave 100 ms of the 200 for that.
TEST(RuntimeMetrics, AReadUnderWayWhenTheLayerAsksIsALateMissEvenIfAnotherWaitCompletesIt) {
    test::TempDir tmp;
    save_known_trace_model(tmp.path());
    rt::Model rm(tmp.path());
    const int32_t E = static_cast<int32_t>(rm.config.n_routed_experts), L = static_cast<int32_t>(rm.config.num_hidden_layers);
    rt::SessionOptions so = mode_opts(rt::MissMode::exact);
    so.io.sim_read_ms = 500;  // far beyond a scheduling delay of a loaded machine
    rt::Session s(rm, so);
    const int32_t prompt[1] = {0};  // experts {0, 1} in every layer
    s.prefill(prompt, 1);
    const float score[2] = {1.0f, 1.0f};
    for (int32_t l : {1, 2, 3, 0}) {
        const int32_t pairs[2] = {l * E + 4, l * E + 5};
        ASSERT_EQ(s.store().prefetch(pairs, score, 2), 2);
    }
    s.decode(4);  // experts {4, 5}
    const rt::Metrics& m = s.metrics();
    std::printf("hits %llu, misses %llu (late %llu), stall %.1f ms, slack of %llu used prefetches: mean %.2f ms, p10 %.2f ms\n",
                static_cast<unsigned long long>(m.hits), static_cast<unsigned long long>(m.misses),
                static_cast<unsigned long long>(m.misses_late), 1000 * m.stall_s, static_cast<unsigned long long>(m.slack.n),
                m.slack.mean_ms(), m.slack.quantile_ms(0.10));
    EXPECT_EQ(m.misses, 2u) << "both of layer 0's experts were under way when it asked";
    EXPECT_EQ(m.misses_late, 2u);
    EXPECT_EQ(m.hits, static_cast<uint64_t>(2 * (L - 1)));
    EXPECT_GE(m.stall_s, 0.250) << "layer 0 must have waited for its read (500 ms after it was issued)";
    EXPECT_EQ(m.slack.n, static_cast<uint64_t>(2 * L)) << "every used expert was a prefetch";
    EXPECT_LE(m.slack.quantile_ms(0.25), -250.0) << "layer 0's two arrived after the ask";
    EXPECT_GE(m.slack.quantile_ms(0.26), 0.0) << "layers 1-3 were complete when asked";
    // The premise: the prompt's layers each read their two adjacent experts as one read (exact
    // mode issues a layer's misses together and the store coalesces neighbours), token 4 one
    // read per layer for its two prefetched experts.
    EXPECT_EQ(s.store().counters().reads, static_cast<uint64_t>(L + L));

    // soft never waits: all eight reads are still under way when their layers ask and when the
    // experts' turns come (a token computes in far less than half a second), so all eight are late
    // misses served by the shared expert.
    rt::SessionOptions soft_opts = so;
    soft_opts.mode = rt::MissMode::soft;
    rt::Session soft(rm, soft_opts);
    soft.prefill(prompt, 1);
    for (int32_t l : {1, 2, 3, 0}) {
        const int32_t pairs[2] = {l * E + 4, l * E + 5};
        ASSERT_EQ(soft.store().prefetch(pairs, score, 2), 2);
    }
    soft.decode(4);
    EXPECT_EQ(soft.metrics().hits, 0u);
    EXPECT_EQ(soft.metrics().misses_late, static_cast<uint64_t>(2 * L));
    EXPECT_EQ(soft.metrics().fallbacks, static_cast<uint64_t>(2 * L));
    EXPECT_EQ(soft.metrics().stall_s, 0.0);
}

// Routing that never changes visits the layers' pairs in a cycle. With fewer slots than one
// token's pairs (a layer short of them) LRU evicts exactly the pair needed next and never hits;
// the runtime's policy (the same Residency the store asks) keeps all but one slot's pairs and
// cycles the last, as Belady's MIN does: the cliff becomes a slope.
TEST(RuntimePolicy, ACyclicTraceDefeatsLruButNotTheRuntimePolicy) {
    Trace t;
    t.shape = {8, 4, 2};  // 8 layers, 4 experts, top-2: 16 pairs per token
    TraceSequence seq;
    const uint32_t T = 40;
    seq.tokens.assign(T, 7);
    for (uint32_t i = 0; i < T * 8; ++i) seq.experts.insert(seq.experts.end(), {1, 2});
    seq.weights.assign(seq.experts.size(), 0.5f);
    t.sequences.push_back(seq);
    for (int64_t slots : {4, 8, 12, 14}) {  // up to one layer short of the 16 pairs
        const rt::ReplayCounts lru = rt::policy_replay(t, slots, rt::ReplayPolicy::lru, 0.5f);
        const rt::ReplayCounts ours = rt::policy_replay(t, slots, rt::ReplayPolicy::chronos, 0.5f);
        const rt::ReplayCounts best = rt::policy_replay(t, slots, rt::ReplayPolicy::min, 0.5f);
        std::printf("%lld slots: lru %.3f, runtime %.3f, min %.3f\n", static_cast<long long>(slots), lru.hit_rate(), ours.hit_rate(),
                    best.hit_rate());
        EXPECT_EQ(lru.hits, 0u) << slots << " slots";
        EXPECT_GT(best.hits, 0u);
        EXPECT_GE(ours.hit_rate(), 0.85 * best.hit_rate()) << slots << " slots";
        EXPECT_LE(ours.hits, best.hits) << "MIN is the optimum of these three";
    }
    // A tier that holds the cycle: everything after the first token hits, whatever the policy.
    for (rt::ReplayPolicy p : {rt::ReplayPolicy::lru, rt::ReplayPolicy::chronos, rt::ReplayPolicy::min}) {
        EXPECT_EQ(rt::policy_replay(t, 16, p, 0.5f).misses, 16u) << rt::replay_policy_name(p);
    }
}

// What the policy learned outlives a sequence: after one where expert 0 is chosen at every
// routing and experts 1-3 each at every third, two pairs chosen once at a new sequence's start
// are told apart by their shares (expert 0 kept, expert 1 likely to go), where a fresh policy
// has nothing but the prior for both.
TEST(RuntimePolicy, WhatIsLearnedCarriesToTheNextSequence) {
    rt::Residency learned(1, 4, rt::Residency::Kind::chronos, 0.5f), fresh(1, 4, rt::Residency::Kind::chronos, 0.5f);
    for (int64_t t = 0; t < 300; ++t) {
        learned.at(t, 0);
        learned.use(0, 0);
        learned.use(static_cast<int32_t>(1 + t % 3), 1);
    }
    for (rt::Residency* r : {&learned, &fresh}) {
        r->begin_sequence();
        r->at(0, 0);
        r->use(0, 0);
        r->use(1, 1);  // asked before the layer's next routing
    }
    std::printf("expectation of experts 0 / 1 after one token: learned %.3f / %.3f, fresh %.3f / %.3f\n", learned.expectation(0),
                learned.expectation(1), fresh.expectation(0), fresh.expectation(1));
    EXPECT_EQ(fresh.expectation(0), fresh.expectation(1));
    EXPECT_GT(learned.expectation(0), learned.expectation(1) + 0.2f);
    const int32_t resident[2] = {0, 1};
    EXPECT_EQ(learned.victim(resident, 2, std::numeric_limits<float>::infinity()), 1);
}

// The rank a pair was chosen at tells how likely it is chosen again (on `small`, the router's
// first choice is chosen again at the next token about twice as often as its fourth). Two
// policies see the same choices: pairs of fresh experts, the one of each pair that is chosen
// again given rank 0 in one policy and rank 1 in the other. Runs and shares are identical, so
// only the ranks can make the two evict different pairs.
TEST(RuntimePolicy, TheRankAPairWasChosenAtCounts) {
    constexpr int32_t E = 16;
    rt::Residency first(1, E, rt::Residency::Kind::chronos, 0.5f), second(1, E, rt::Residency::Kind::chronos, 0.5f);
    int64_t t = 0;
    for (int32_t m = 0; m < 200; ++m, t += 2) {
        const int32_t kept = (3 * m) % E, dropped = (3 * m + 1) % E, next = (3 * m + 2) % E;
        for (rt::Residency* r : {&first, &second}) {
            const bool kept_first = r == &first;
            r->at(t, 0);
            r->use(kept, kept_first ? 0 : 1);
            r->use(dropped, kept_first ? 1 : 0);
            r->at(t + 1, 0);
            r->use(kept, kept_first ? 0 : 1);
            r->use(next, kept_first ? 1 : 0);  // not chosen at the next routing either
        }
    }
    const int32_t resident[2] = {E - 2, E - 1};
    for (rt::Residency* r : {&first, &second}) {
        r->at(t, 0);
        r->use(resident[0], 0);
        r->use(resident[1], 1);
    }
    std::printf("expectation of the rank-0 / rank-1 pair: %.3f / %.3f when rank 0 was kept, %.3f / %.3f when rank 1 was\n",
                first.expectation(resident[0]), first.expectation(resident[1]), second.expectation(resident[0]),
                second.expectation(resident[1]));
    EXPECT_EQ(first.victim(resident, 2, std::numeric_limits<float>::infinity()), 1);
    EXPECT_EQ(second.victim(resident, 2, std::numeric_limits<float>::infinity()), 0);
}

// The same in the engine: a token repeated, so every layer routes to the same two experts, at a
// budget of 6 slots for 8 pairs per token. lru misses every lookup; exact keeps 5 pairs resident
// and gives resident's logits all the same.
TEST(RuntimePolicy, BelowOneTokensExpertsExactStillHits) {
    test::TempDir tmp;
    save_known_trace_model(tmp.path());
    rt::Model rm(tmp.path());
    const uint64_t slot = rm.manifest.entries[0].length;
    std::vector<int32_t> ids(30, 3);  // experts {3, 4} in every layer, every token
    rt::Session resident(rm, mode_opts(rt::MissMode::resident));
    const std::vector<float> want = runtime_logits(resident, ids, 2, rm.config.vocab_size);
    rt::Session lru(rm, mode_opts(rt::MissMode::lru, 6 * slot));
    runtime_logits(lru, ids, 2, rm.config.vocab_size);
    rt::Session exact(rm, mode_opts(rt::MissMode::exact, 6 * slot));
    EXPECT_EQ(runtime_logits(exact, ids, 2, rm.config.vocab_size), want);
    const auto rate = [](const rt::Metrics& m) { return static_cast<double>(m.hits) / static_cast<double>(m.hits + m.misses); };
    std::printf("6 slots, 8 pairs per token: lru hit rate %.3f, exact %.3f\n", rate(lru.metrics()), rate(exact.metrics()));
    EXPECT_EQ(lru.metrics().hits, 0u) << "LRU cycles through the tier";
    EXPECT_GE(rate(exact.metrics()), 0.5) << "5 of 8 pairs can stay resident";
}

// The prompt's routing enters the policy as decoding it token by token would have left it: a
// pair chosen by the prompt's last token (in its layer's latest routing) is worth more than one
// only an earlier token chose (a gap since). Token v routes to experts {v, v+1} mod 8 in every
// layer; the prompt's first four tokens touch all 8 experts of each layer, its last three {3, 4}.
// With 8 slots (one token's pairs) prefill must cycle 8 experts per layer through the tier:
// the pairs only earlier tokens chose go first, so layers 0..L-2 keep {3, 4} (layer L-1's last
// reads may evict its own, the cheapest to lose: needed last) and the next token 3 hits there. A
// policy that saw the whole prompt as one routing (all its pairs alike) kept whichever pairs
// the layers' distances favoured: 2 of the 8.
TEST(RuntimePolicy, ThePromptsLastTokenKeepsItsPairsThroughPrefill) {
    test::TempDir tmp;
    save_known_trace_model(tmp.path());
    rt::Model rm(tmp.path());
    const int64_t L = rm.config.num_hidden_layers, k = rm.config.num_experts_per_tok;
    ASSERT_EQ(rm.config.n_routed_experts, 8);
    ASSERT_EQ(k, 2);
    const uint64_t slot = rm.manifest.entries[0].length;
    const std::vector<int32_t> prompt = {0, 2, 4, 6, 3, 3, 3};
    uint64_t hits[2] = {0, 0};
    for (rt::MissMode mode : {rt::MissMode::lru, rt::MissMode::exact}) {
        rt::Session s(rm, mode_opts(mode, static_cast<uint64_t>(L * k) * slot));
        ASSERT_EQ(s.store().slot_count(), L * k);
        s.prefill(prompt.data(), static_cast<int64_t>(prompt.size()));
        s.decode(3);
        hits[mode == rt::MissMode::exact] = s.metrics().hits;
        std::printf("%s: first decode step hits %llu of %lld\n", rt::miss_mode_name(mode), static_cast<unsigned long long>(s.metrics().hits),
                    static_cast<long long>(L * k));
    }
    EXPECT_GE(hits[1], static_cast<uint64_t>((L - 1) * k)) << "the last token's pairs of every layer but the last";
    EXPECT_LT(hits[0], hits[1]);
}

// Every decode miss gets one cause. The prompt (token 0: experts {0, 1} everywhere) is followed
// by token 4 (experts {4, 5} everywhere); the prediction made at the prompt's end for it names
// {4, 5} of layer 0 with certainty (read ahead, and under way when the layer asks: reads take
// 500 ms), {4, 5} of layer 1 at probability 0.3 (ranked, but 0.9 x 0.3 is under the bar 0.45:
// not read), {6, 7} of layer 2 and {2, 3} of layer 3 (the token's pairs unnamed). soft never
// waits, so the eight misses are counted at the ask: 2 late, 2 below the bar, 4 unnamed, two
// per layer. lru reads nothing ahead: its eight are all unnamed, whatever the head says.
TEST(RuntimeMetrics, EveryMissIsCountedByItsLayerAndCause) {
    test::TempDir tmp;
    save_known_trace_model(tmp.path(), /*with_head=*/true);
    rt::Model rm(tmp.path());
    const ModelConfig& c = rm.config;
    const int64_t L = c.num_hidden_layers, E = c.n_routed_experts;
    ASSERT_EQ(E, 8);
    ASSERT_EQ(c.lookahead_steps, 1);
    const std::vector<std::pair<std::array<int64_t, 2>, float>> named = {{{4, 5}, 1.0f}, {{4, 5}, 0.3f}, {{6, 7}, 1.0f}, {{2, 3}, 1.0f}};
    ASSERT_EQ(static_cast<int64_t>(named.size()), L);
    for (rt::MissMode mode : {rt::MissMode::soft, rt::MissMode::lru}) {
        rt::SessionOptions so = mode_opts(mode, static_cast<uint64_t>(L * c.num_experts_per_tok) * rm.manifest.entries[0].length);
        // soft: far beyond a scheduling delay of a loaded machine; lru waits for every read
        if (mode == rt::MissMode::soft) so.io.sim_read_ms = 500;
        rt::Session s(rm, so);
        s.on_predict = [&](int64_t step, float* pred) {
            std::fill(pred, pred + L * E, 0.0f);
            if (step > 0) return;  // only the prediction for the first generated token matters
            for (int64_t l = 0; l < L; ++l) {
                for (int64_t e : named[static_cast<size_t>(l)].first) pred[l * E + e] = named[static_cast<size_t>(l)].second;
            }
        };
        const int32_t prompt[1] = {0};
        s.prefill(prompt, 1);
        s.decode(4);
        const rt::Metrics& m = s.metrics();
        std::printf("%s: misses %llu: late %llu, unnamed %llu, below the bar %llu; by layer", rt::miss_mode_name(mode),
                    static_cast<unsigned long long>(m.misses), static_cast<unsigned long long>(m.misses_late),
                    static_cast<unsigned long long>(m.misses_unnamed), static_cast<unsigned long long>(m.misses_below_bar));
        for (uint64_t n : m.misses_by_layer) std::printf(" %llu", static_cast<unsigned long long>(n));
        std::printf("\n");
        EXPECT_EQ(m.misses, 8u);
        EXPECT_EQ(m.misses_by_layer, std::vector<uint64_t>(static_cast<size_t>(L), 2u));
        if (mode == rt::MissMode::soft) {
            EXPECT_EQ(m.misses_late, 2u) << "layer 0's pairs, read ahead and under way";
            EXPECT_EQ(m.misses_below_bar, 2u) << "layer 1's pairs, named at 0.3";
            EXPECT_EQ(m.misses_unnamed, 4u) << "layers 2 and 3 named other experts";
            EXPECT_EQ(m.fallbacks, 8u);
        } else {
            EXPECT_EQ(m.misses_late, 0u);
            EXPECT_EQ(m.misses_below_bar, 0u);
            EXPECT_EQ(m.misses_unnamed, 8u) << "the plain engine names nothing";
        }
    }
}

// The head is trained against the router's top-k choice at 1/k each, so its softmax gives a
// pair p = P(chosen) / k at its optimum, at most 1/k; the prefetch threshold is on the scale of
// P(chosen). A head is set to name experts {6, 7} of every layer for t+1 at softmax p (hidden
// unit 0 reads the previous routing of layer 0, a distribution, so it is silu(1) whatever the
// tokens; the other units are 0): at p = 0.4 (P = 0.8) they are read ahead after the prompt, at
// p = 0.2 (P = 0.4, below the threshold 0.45 with the 0.9 weight of t+1) they are not. Read on
// the softmax's own scale, neither would be.
TEST(RuntimePolicy, TheHeadsTopkPredictionIsReadAsTheProbabilityOfBeingChosen) {
    test::TempDir tmp;
    save_known_trace_model(tmp.path(), /*with_head=*/true);
    rt::Model rm(tmp.path());
    const ModelConfig& c = rm.config;
    const int64_t H = c.hidden_size, L = c.num_hidden_layers, E = c.n_routed_experts, D = rm.lookahead.hidden;
    ASSERT_EQ(E, 8);
    ASSERT_EQ(c.num_experts_per_tok, 2);
    ASSERT_EQ(c.lookahead_steps, 1);
    ASSERT_EQ(c.lookahead_target, LookaheadTarget::router_topk);
    const float silu1 = 1.0f / (1.0f + std::exp(-1.0f));
    std::vector<float> up(static_cast<size_t>(D * (H + L * E)), 0.0f), out(static_cast<size_t>(L * E * D), 0.0f);
    for (int64_t e = 0; e < E; ++e) up[static_cast<size_t>(H + e)] = 1.0f;  // unit 0: the sum of layer 0's routing
    rm.lookahead.up = up.data();
    rm.lookahead.out = out.data();
    for (double p : {0.4, 0.2}) {
        // Two logits z over six zeros: p = e^z / (2 e^z + 6).
        const float z = static_cast<float>(std::log(6.0 * p / (1.0 - 2.0 * p)));
        for (int64_t l = 0; l < L; ++l) {
            for (int64_t e : {6, 7}) out[static_cast<size_t>((l * E + e) * D)] = z / silu1;
        }
        rt::Session s(rm, mode_opts(rt::MissMode::exact));
        const std::vector<int32_t> prompt = {0, 0};  // experts {0, 1}
        double got_p = 0;
        s.on_predict = [&](int64_t, float* pred) { got_p = pred[6] / static_cast<double>(c.num_experts_per_tok); };
        s.prefill(prompt.data(), static_cast<int64_t>(prompt.size()));
        int read_ahead = 0;
        for (int64_t l = 0; l < L; ++l) {
            for (int64_t e : {6, 7}) read_ahead += s.store().ready(static_cast<int32_t>(l * E + e)) || s.store().loading(static_cast<int32_t>(l * E + e));
        }
        std::printf("head's softmax %.3f (P(chosen) %.3f): %d of %lld pairs read ahead\n", got_p, 2 * got_p, read_ahead, static_cast<long long>(2 * L));
        EXPECT_NEAR(got_p, p, 1e-5);
        EXPECT_EQ(read_ahead, p > 0.3 ? 2 * L : 0) << "softmax " << p;
    }
}

// A pair's history from a prompt: the last token's choices are its latest routing (with their
// run and rank), earlier ones sit a gap back and are worth less.
TEST(RuntimePolicy, PromptPairsAreKeptByHowRecentlyTheyWereChosen) {
    rt::Residency r(1, 4, rt::Residency::Kind::chronos, 0.5f);
    r.at(0, 0);
    r.use_prompt(0, /*gap=*/5, /*run=*/1, /*rank=*/0);  // an early token's first choice
    r.use_prompt(1, 0, 6, 1);                        // the last six tokens' second choice
    r.use_prompt(2, 0, 1, 0);                        // the last token's first choice
    EXPECT_FALSE(r.in_latest_routing(0));
    EXPECT_TRUE(r.in_latest_routing(1));
    EXPECT_TRUE(r.in_latest_routing(2));
    std::printf("expectations: gap 5 %.3f, latest %.3f / %.3f\n", r.expectation(0), r.expectation(1), r.expectation(2));
    EXPECT_LT(r.expectation(0), r.expectation(1));
    const int32_t resident[3] = {1, 2, 0};
    EXPECT_EQ(r.victim(resident, 3, std::numeric_limits<float>::infinity()), 2) << "the pair only an early token chose";
    // Decode follows on: the prompt is now the previous routing.
    r.at(1, 0);
    r.use(1, 0);
    r.use(3, 0);
    EXPECT_TRUE(r.in_latest_routing(1));
    EXPECT_FALSE(r.in_latest_routing(2));
    EXPECT_TRUE(r.in_recent_routing(2));
    EXPECT_FALSE(r.in_recent_routing(0)) << "chosen five tokens before the prompt's last";
}

// The intent classifier predicts the experts of the first `horizon` generated tokens of a
// prompt: its scores protect pairs from eviction that long and no longer, counted from each
// prompt, not from the session's start.
TEST(RuntimePolicy, IntentScoresCountOnlyWithinTheirHorizon) {
    PackedModel pm(runtime_config(), 5);
    const ModelConfig& c = pm.runtime().config;
    const int64_t H = c.hidden_size, LE = c.num_hidden_layers * c.n_routed_experts, D = 2;
    // Zero weights; the out bias names pair 5 with certainty and no other.
    IntentClassifier ic;
    ic.present = true;
    ic.hidden = D;
    ic.horizon = 3;
    ic.up_w.assign(static_cast<size_t>(D * 2 * H), 0.0f);
    ic.up_b.assign(static_cast<size_t>(D), 0.0f);
    ic.out_w.assign(static_cast<size_t>(LE * D), 0.0f);
    ic.out_b.assign(static_cast<size_t>(LE), -20.0f);
    ic.out_b[5] = 20.0f;
    intent_save(pm.tmp.path(), ic, c);
    rt::Model rm(pm.tmp.path());
    ASSERT_TRUE(rm.intent.present);

    const rt::SessionOptions so = mode_opts(rt::MissMode::exact);
    rt::Prefetcher pf(rm, so);
    rt::ExpertStore store(rm.manifest, rm.dir, rt::kBudgetAll, c.num_experts_per_tok, so.io, &pf.residency());
    const std::vector<int32_t> ids = random_ids(6, c.vocab_size, 1);
    const std::vector<float> h(static_cast<size_t>(H), 0.1f), route(static_cast<size_t>(LE), 1.0f / static_cast<float>(c.n_routed_experts));
    const int64_t KLE = c.lookahead_steps * LE;
    auto silent = [KLE](int64_t, float* pred) { std::fill(pred, pred + KLE, 0.0f); };  // the head names nothing
    for (int64_t first : {int64_t{0}, int64_t{10}}) {  // a second prompt later in the same session
        pf.begin_prompt(0, ids.data(), static_cast<int64_t>(ids.size()), first, store);
        for (int64_t step = first; step < first + 6; ++step) {
            pf.lookahead(0, h.data(), route.data(), step, silent);
            pf.schedule(store);
            const float want = step - first < ic.horizon ? 0.3f : 0.0f;  // 0.3 x a sigmoid of +20, or nothing
            EXPECT_NEAR(pf.residency().score(5), want, 1e-6) << "prompt at step " << first << ", step " << step;
            EXPECT_NEAR(pf.residency().score(6), 0.0f, 1e-6) << "a pair the classifier does not name";
        }
    }
}

// The simulated latency comes from the option or the environment; a bad value is refused.
// Reads queued with submit() start together at flush(); a reap that waits flushes first, so
// it never waits on a read the kernel was not given. Either way every byte arrives.
TEST(RuntimeIo, QueuedReadsStartAtFlushOrAtTheNextReap) {
    test::TempDir tmp;
    const std::string path = tmp.path() + "/data.bin";
    std::vector<uint8_t> bytes(4 * 4096);
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 7 + i / 4096);
    {
        std::ofstream f(path, std::ios::binary);
        f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    }
    for (bool flush : {true, false}) {
        rt::IoEngine io({path}, {});
        void* raw = nullptr;
        ASSERT_EQ(::posix_memalign(&raw, 4096, bytes.size()), 0);
        std::unique_ptr<uint8_t, decltype(&std::free)> buf(static_cast<uint8_t*>(raw), &std::free);
        iovec v[4];
        for (int i = 0; i < 4; ++i) {
            v[i] = {buf.get() + static_cast<size_t>(i) * 4096, 4096};
            io.submit(static_cast<uint64_t>(i), 0, static_cast<uint64_t>(3 - i) * 4096, &v[i], 1);  // block 3-i into buffer i
        }
        EXPECT_EQ(io.in_flight(), 4u);
        if (flush) io.flush();
        int got = 0;
        while (got < 4) {
            rt::IoCompletion c[4];
            const int n = io.reap(c, 4, /*wait=*/true);
            ASSERT_GT(n, 0) << (flush ? "after flush" : "without flush");
            for (int j = 0; j < n; ++j) EXPECT_EQ(c[j].result, 4096);
            got += n;
        }
        EXPECT_EQ(io.in_flight(), 0u);
        for (size_t i = 0; i < 4; ++i) {
            EXPECT_EQ(std::memcmp(buf.get() + i * 4096, bytes.data() + (3 - i) * 4096, 4096), 0) << "buffer " << i;
        }
    }
}

TEST(RuntimeIo, SimulatedReadLatencyIsValidated) {
    ::setenv("CHRONOS_SIM_READ_MS", "12.5", 1);
    EXPECT_EQ(rt::io_sim_read_ms_from_env(), 12.5);
    ::setenv("CHRONOS_SIM_READ_MS", "slow", 1);
    expect_error_mentions([] { rt::io_sim_read_ms_from_env(); }, "CHRONOS_SIM_READ_MS");
    ::setenv("CHRONOS_SIM_READ_MS", "-1", 1);
    expect_error_mentions([] { rt::io_sim_read_ms_from_env(); }, "[0, 60000]");
    ::unsetenv("CHRONOS_SIM_READ_MS");
    EXPECT_EQ(rt::io_sim_read_ms_from_env(), 0.0);
}

// The memory limit comes from the cgroup files the kernel enforces (v1 or v2, the smallest on
// the path to the root), else from MemAvailable: a fake tree stands in for /proc and /sys.
TEST(RuntimeMemory, LimitIsTheSmallestCgroupLimitOnThePathElseMemAvailable) {
    test::TempDir root;
    auto write = [&](const std::string& rel, const std::string& text) {
        std::filesystem::create_directories(std::filesystem::path(root.file(rel)).parent_path());
        file_write_atomic(root.file(rel), text);
    };
    write("proc/meminfo", "MemTotal: 1000 kB\nMemAvailable: 2048 kB\n");
    write("proc/self/cgroup", "4:memory:/a/b\n0::/\n");
    write("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");  // v1 "no limit"
    write("sys/fs/cgroup/memory/a/memory.limit_in_bytes", "3000000\n");
    write("sys/fs/cgroup/memory/a/b/memory.limit_in_bytes", "5000000\n");
    rt::MemoryLimit l = rt::memory_limit_detect(root.path());
    EXPECT_EQ(l.bytes, 3000000u) << "the parent's smaller limit applies";
    EXPECT_NE(l.source.find("cgroup v1"), std::string::npos) << l.source;
    // cgroup v2: "max" is no limit; a limit below it applies.
    write("proc/self/cgroup", "0::/user/job\n");
    write("sys/fs/cgroup/user/job/memory.max", "max\n");
    write("sys/fs/cgroup/user/memory.max", "419430400\n");
    l = rt::memory_limit_detect(root.path());
    EXPECT_EQ(l.bytes, 419430400u);
    EXPECT_NE(l.source.find("cgroup v2"), std::string::npos) << l.source;
    // No limit anywhere: the memory available.
    write("sys/fs/cgroup/user/memory.max", "max\n");
    l = rt::memory_limit_detect(root.path());
    EXPECT_EQ(l.bytes, 2048u * 1024u);
    EXPECT_NE(l.source.find("MemAvailable"), std::string::npos);
}

// --ram-budget auto: the expert pool is what the limit leaves after what was measured, in
// whole slots; a limit that cannot hold one layer's top-k besides is refused.
TEST(RuntimeMemory, BudgetFromAGivenLimitLeavesTheRestToWholeExpertSlots) {
    ModelConfig c = runtime_config();
    PackedModel pm(c, 31);
    rt::Model& rm = pm.runtime();
    const uint64_t slot = rm.manifest.entries[0].length;  // a multiple of 4096 here
    rt::SessionOptions so = mode_opts(rt::MissMode::exact);
    const uint64_t base = rt::rss_bytes() + rm.dense_bytes + (64ull << 20);  // comfortably above what is taken
    const rt::MemoryLimit limit{base + 5 * slot, "test"};
    const rt::MemorySplit split = rt::memory_split_plan(rm, so, limit);
    std::printf("%s\n", rt::memory_split_describe(split).c_str());
    EXPECT_GT(split.code, 0u);
    EXPECT_EQ(split.margin, rt::memory_margin_bytes(limit.bytes));
    EXPECT_EQ(split.experts, static_cast<uint64_t>(split.slots) * slot);
    const uint64_t rest = limit.bytes - split.code - split.dense - split.session - split.margin;
    EXPECT_EQ(static_cast<uint64_t>(split.slots), std::min<uint64_t>(rest / slot, rm.manifest.entries.size()));
    // A limit that holds half the experts past what the first plan measured: the slot count
    // binds. Half, so that the second plan's own RSS readings may differ from the first's by
    // a quarter of the pool either way (pages touched in between, a freed buffer reused) and
    // the count still lies between one layer's top-k and every expert.
    const uint64_t taken = split.code + split.dense + split.session;
    const uint64_t half = rm.manifest.entries.size() / 2;
    ASSERT_GE(half, static_cast<uint64_t>(2 * rm.config.num_experts_per_tok)) << "the test needs a pool of some size";
    // Solve limit - taken - margin(limit) = half + 0.5 slots, margin(limit) = 16 MiB + limit / 50.
    const rt::MemoryLimit tight{(taken + (16ull << 20) + (2 * half + 1) * slot / 2) * 50 / 49, "test"};
    const rt::MemorySplit small = rt::memory_split_plan(rm, so, tight);
    const uint64_t small_rest = tight.bytes - small.code - small.dense - small.session - small.margin;
    EXPECT_EQ(static_cast<uint64_t>(small.slots), small_rest / slot);
    EXPECT_LT(small.slots, static_cast<int64_t>(rm.manifest.entries.size())) << "the limit should bind";
    so.ram_budget = small.experts;
    rt::Session s(rm, so);
    EXPECT_EQ(s.store().slot_count(), small.slots);
    expect_error_mentions([&] { rt::memory_split_plan(rm, so, {split.code, "a tight test limit"}); }, "one layer's top-k needs");
}

TEST(RuntimeFaults, BadPacksReadsAndInputsGiveClearErrors) {
    ModelConfig c = runtime_config();
    test::TempDir tmp;
    ChronosModel model = random_model(c, 10);
    save_and_pack(model, tmp.path());
    std::vector<int32_t> ids = random_ids(6, c.vocab_size, 1);
    {
        rt::Model rm(tmp.path());
        // A budget below one layer's top-k.
        rt::SessionOptions so;
        so.ram_budget = rm.manifest.entries[0].length;
        expect_error_mentions([&] { rt::Session s(rm, so); }, "at least 2");
        // A prompt longer than the context.
        rt::Session s(rm, {});
        std::vector<int32_t> long_prompt(static_cast<size_t>(c.max_position_embeddings + 1), 5);
        expect_error_mentions([&] { s.prefill(long_prompt.data(), static_cast<int64_t>(long_prompt.size())); }, "longer than");
        // A failing read: the IO error surfaces, no weights are used.
        rt::Session f(rm, mode_opts(rt::MissMode::lru, budget_of(rm, 0.25)));
        f.store().io().inject_error(0, EIO);
        expect_error_mentions([&] { f.prefill(ids.data(), 6); }, "Input/output error");
    }
    // Checksum mismatch: one flipped byte inside an expert, file size unchanged.
    const std::string manifest = file_read_all(tmp.file("cluster_manifest.json"));
    {
        rt::Model rm(tmp.path());
        const PackEntry& e = rm.manifest.entries[3];
        const std::string path = tmp.path() + "/" + rm.manifest.files[static_cast<size_t>(e.file)];
        std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
        f.seekg(static_cast<std::streamoff>(e.offset + 100));
        char b = 0;
        f.read(&b, 1);
        b = static_cast<char>(b ^ 0x40);
        f.seekp(static_cast<std::streamoff>(e.offset + 100));
        f.write(&b, 1);
        f.close();
        expect_error_mentions([&] { rt::Session s(rm, mode_opts(rt::MissMode::resident)); }, "checksum mismatch");
        // Truncated pack: the manifest's size check refuses it before any read.
        std::filesystem::resize_file(path, e.offset + 10);
        expect_error_mentions([&] { rt::Model again(tmp.path()); }, "truncated");
        std::filesystem::remove(path);
        expect_error_mentions([&] { rt::Model again(tmp.path()); }, "is missing");
    }
    std::filesystem::remove(tmp.file("cluster_manifest.json"));
    expect_error_mentions([&] { rt::Model again(tmp.path()); }, "chronos pack");
}

TEST(RuntimeSession, DecodeStepsAllocateNothing) {
    ModelConfig c = runtime_config();
    for (WeightType type : {WeightType::f32, WeightType::q4}) {
        SCOPED_TRACE(weight_type_name(type));
        PackedModel pm(c, 13, type);
        rt::Model& rm = pm.runtime();
        std::vector<int32_t> ids = random_ids(30, c.vocab_size, 8);
        for (rt::MissMode mode : {rt::MissMode::resident, rt::MissMode::exact, rt::MissMode::soft, rt::MissMode::lru}) {
            rt::SessionOptions so = mode_opts(mode, budget_of(rm, 0.25));
            so.io.sim_read_ms = mode == rt::MissMode::soft ? 1.0 : 0.0;  // the simulated disk's bookkeeping too
            rt::Session s(rm, so);
            s.prefill(ids.data(), 10);
            s.decode(ids[10]);  // first step outside the count
            g_allocations = 0;
            g_count_allocations = true;
            for (size_t t = 11; t < ids.size(); ++t) s.decode(ids[t]);
            g_count_allocations = false;
            EXPECT_EQ(g_allocations.load(), 0) << rt::miss_mode_name(mode) << ": heap allocations in 19 decode steps";
        }
    }
}

// Top-k is sized from the config everywhere, so more than 64 experts per token (a bound a fixed
// array once imposed) decodes exactly as resident does, with the lookahead prefetching.
TEST(RuntimeSession, SeventyExpertsPerTokenDecodeAsResident) {
    ModelConfig c = runtime_config();
    c.n_routed_experts = 80;
    c.num_experts_per_tok = 70;
    c.hidden_size = 16;
    c.moe_intermediate_size = 64;  // an expert is 3 x 16 x 64 x 4 = 12288 bytes
    c.num_hidden_layers = 2;
    c.attention_pattern = {AttentionKind::mla, AttentionKind::swa};
    PackedModel pm(c, 21);
    rt::Model& rm = pm.runtime();
    std::vector<int32_t> ids = random_ids(20, c.vocab_size, 2);
    rt::Session resident(rm, mode_opts(rt::MissMode::resident));
    const std::vector<float> want = runtime_logits(resident, ids, 8, c.vocab_size);
    rt::SessionOptions so = mode_opts(rt::MissMode::exact, 100 * rm.manifest.entries[0].length);
    so.prefetch_threshold = 0;  // every prediction is read
    rt::Session exact(rm, so);
    EXPECT_EQ(runtime_logits(exact, ids, 8, c.vocab_size), want);
    EXPECT_GT(exact.metrics().lookahead_total, 0u);
}

// Four generations through a session of three sequences, joining and leaving at different
// steps (the fourth takes the first's place when it ends): every decode step's logits of every
// sequence are bit-identical to the same sequence run alone, resident and in exact mode at
// budgets below one token's experts for the batch. Decode steps allocate nothing.
TEST(RuntimeBatch, SequencesDecodedTogetherEqualEachAlone) {
    ModelConfig c = runtime_config();
    PackedModel pm(c, 17);
    rt::Model& rm = pm.runtime();
    const int64_t V = c.vocab_size;
    struct Job {
        std::vector<int32_t> ids;
        int64_t prompt, join;  // prompt length, the batch step at which it starts
    };
    const std::vector<Job> jobs = {{random_ids(26, V, 31), 6, 0}, {random_ids(30, V, 32), 11, 2}, {random_ids(22, V, 33), 1, 3},
                                   {random_ids(28, V, 34), 9, 21}};
    for (auto [mode, share] : {std::pair<rt::MissMode, double>{rt::MissMode::resident, 1.0}, {rt::MissMode::exact, 0.25},
                               {rt::MissMode::exact, 0.1}, {rt::MissMode::lru, 0.25}}) {
        SCOPED_TRACE(std::string(rt::miss_mode_name(mode)) + " at " + std::to_string(share));
        std::vector<std::vector<float>> alone;
        for (const Job& j : jobs) {
            rt::Session s(rm, mode_opts(mode, budget_of(rm, share)));
            alone.push_back(runtime_logits(s, j.ids, j.prompt, V));
        }
        rt::SessionOptions so = mode_opts(mode, budget_of(rm, share));
        so.max_sequences = 3;
        rt::Session s(rm, so);
        std::vector<int32_t> slot(jobs.size(), -1);
        std::vector<size_t> next(jobs.size(), 0);  // the next position of each job
        std::vector<std::vector<float>> got(jobs.size());
        std::vector<int32_t> seqs, ids;
        std::vector<size_t> rows;
        int64_t decoded = 0, steps_shared = 0;
        for (int64_t step = 0;; ++step) {
            for (size_t j = 0; j < jobs.size(); ++j) {
                if (jobs[j].join != step) continue;
                std::vector<bool> used(3, false);
                for (size_t o = 0; o < jobs.size(); ++o) {
                    if (slot[o] >= 0 && next[o] < jobs[o].ids.size()) used[static_cast<size_t>(slot[o])] = true;
                }
                slot[j] = static_cast<int32_t>(std::find(used.begin(), used.end(), false) - used.begin());
                ASSERT_LT(slot[j], 3) << "the test's schedule needs a free sequence";
                got[j].assign(jobs[j].ids.size() * static_cast<size_t>(V), 0.0f);
                s.prefill_sequence(slot[j], jobs[j].ids.data(), jobs[j].prompt, got[j].data());
                next[j] = static_cast<size_t>(jobs[j].prompt);
            }
            seqs.clear(), ids.clear(), rows.clear();
            for (size_t j = 0; j < jobs.size(); ++j) {
                if (slot[j] < 0 || jobs[j].join > step || next[j] >= jobs[j].ids.size()) continue;
                seqs.push_back(slot[j]);
                ids.push_back(jobs[j].ids[next[j]]);
                rows.push_back(j);
            }
            if (seqs.empty() && step > 21) break;
            if (seqs.empty()) continue;
            s.decode_batch(seqs.data(), ids.data(), static_cast<int64_t>(seqs.size()));
            decoded += static_cast<int64_t>(seqs.size());
            steps_shared += seqs.size() > 1;
            for (size_t b = 0; b < rows.size(); ++b) {
                const size_t j = rows[b];
                std::copy(s.logits(slot[j]), s.logits(slot[j]) + V, got[j].begin() + static_cast<int64_t>(next[j]) * V);
                if (++next[j] == jobs[j].ids.size()) s.release(slot[j]);
            }
        }
        for (size_t j = 0; j < jobs.size(); ++j) {
            ASSERT_EQ(got[j].size(), alone[j].size());
            // Rows before the prompt's last are prefill's own: compared from the last prompt row on.
            const size_t from = static_cast<size_t>(jobs[j].prompt - 1) * static_cast<size_t>(V);
            size_t first_diff = got[j].size();
            for (size_t i = from; i < got[j].size(); ++i) {
                if (got[j][i] != alone[j][i]) {
                    first_diff = i;
                    break;
                }
            }
            EXPECT_EQ(first_diff, got[j].size()) << "job " << j << ": position " << first_diff / static_cast<size_t>(V) << ", logit "
                                                 << first_diff % static_cast<size_t>(V) << " differs from the job run alone";
        }
        EXPECT_GT(steps_shared, 10) << "the schedule should share steps";
        EXPECT_EQ(s.metrics().decode_tokens, decoded);
        if (mode == rt::MissMode::exact && share <= 0.1) {
            EXPECT_GT(s.metrics().misses, 0u);
        }
    }
}

// One read serves every sequence routed to an expert: two copies of one prompt decoded
// together read exactly the expert bytes one copy reads alone (LRU, no prediction: the store
// sees the same pairs in the same order), and count twice its expert assignments. A batched
// step allocates nothing.
TEST(RuntimeBatch, OneReadServesEverySequenceRoutedToIt) {
    ModelConfig c = runtime_config();
    PackedModel pm(c, 19);
    rt::Model& rm = pm.runtime();
    const std::vector<int32_t> ids = random_ids(40, c.vocab_size, 41);
    const int64_t prompt = 10;
    rt::Session one(rm, mode_opts(rt::MissMode::lru, budget_of(rm, 0.25)));
    one.prefill(ids.data(), prompt);  // twice, as the pair below prefills the prompt twice
    one.prefill(ids.data(), prompt);
    for (size_t t = static_cast<size_t>(prompt); t < ids.size(); ++t) one.decode(ids[t]);
    rt::SessionOptions so = mode_opts(rt::MissMode::lru, budget_of(rm, 0.25));
    so.max_sequences = 2;
    rt::Session two(rm, so);
    two.prefill_sequence(0, ids.data(), prompt);
    two.prefill_sequence(1, ids.data(), prompt);
    const int32_t seqs[2] = {0, 1};
    for (size_t t = static_cast<size_t>(prompt); t < ids.size(); ++t) {
        const int32_t step_ids[2] = {ids[t], ids[t]};
        if (t == static_cast<size_t>(prompt) + 1) {
            g_allocations = 0;
            g_count_allocations = true;
        }
        two.decode_batch(seqs, step_ids, 2);
    }
    g_count_allocations = false;
    EXPECT_EQ(g_allocations.load(), 0) << "heap allocations in batched decode steps";
    EXPECT_GT(one.metrics().bytes_read_decode, 0u) << "the budget should force reads";
    EXPECT_EQ(two.metrics().bytes_read_decode, one.metrics().bytes_read_decode);
    EXPECT_EQ(two.metrics().hits + two.metrics().misses, 2 * (one.metrics().hits + one.metrics().misses));
    EXPECT_EQ(two.metrics().misses, 2 * one.metrics().misses);
    EXPECT_EQ(0, std::memcmp(two.logits(0), one.logits(), static_cast<size_t>(c.vocab_size) * sizeof(float)));
    EXPECT_EQ(0, std::memcmp(two.logits(1), one.logits(), static_cast<size_t>(c.vocab_size) * sizeof(float)));
}

TEST(RuntimeBatch, BadStepsAreRefused) {
    ModelConfig c = runtime_config();
    PackedModel pm(c, 23);
    rt::Model& rm = pm.runtime();
    rt::SessionOptions so = mode_opts(rt::MissMode::resident);
    so.max_sequences = 2;
    rt::Session s(rm, so);
    const std::vector<int32_t> ids = random_ids(4, c.vocab_size, 1);
    s.prefill_sequence(0, ids.data(), 4);
    s.prefill_sequence(1, ids.data(), 4);
    const int32_t twice[2] = {1, 1}, outside[1] = {2}, three[3] = {0, 1, 0};
    expect_error_mentions([&] { s.decode_batch(twice, ids.data(), 2); }, "twice");
    expect_error_mentions([&] { s.decode_batch(outside, ids.data(), 1); }, "outside");
    expect_error_mentions([&] { s.decode_batch(three, ids.data(), 3); }, "3 sequences");
    expect_error_mentions([&] { s.prefill_sequence(-1, ids.data(), 4); }, "outside");
    rt::SessionOptions none = so;
    none.max_sequences = 0;
    expect_error_mentions([&] { rt::Session bad(rm, none); }, "at least one sequence");
}

// Decode's matrix-vector product against a double-precision reference, on shapes that cover the
// four-row blocks, the eight-wide column blocks and their tails, below and above the size where
// the rows are split across threads, for every build of the kernels this CPU runs (sse2, avx2);
// and the split must not change a bit (exact mode's identity to resident rests on every product
// being deterministic). Each row's bound is the sum bound of numerics.h for its own terms,
// gamma_(in+1) * sum_j |W_rj x_j| in float32 (the +1: the final rounding), plus the double
// reference's own gamma_in, which holds for any order of the sum.
TEST(RuntimeKernels, GemvAndDotMatchADoubleReferenceOnEveryIsaAndThreadCount) {
    std::mt19937 gen(5);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    const int threads_before = omp_get_max_threads();
    const rt::KernelIsa isa_before = rt::kernel_isa();
    for (rt::KernelIsa isa : {rt::KernelIsa::sse2, rt::KernelIsa::avx2, rt::KernelIsa::avx512}) {
        if (!rt::kernel_isa_supported(isa)) {
            std::printf("this CPU cannot run the %s build: skipped\n", rt::kernel_isa_name(isa));
            continue;
        }
        rt::kernel_isa_set(isa);
        SCOPED_TRACE(rt::kernel_isa_name(isa));
        for (auto [out, in] : {std::pair<int64_t, int64_t>{1, 1}, {3, 7}, {5, 9}, {33, 17}, {768, 512}, {513, 771}, {1030, 260}}) {
            std::vector<float> W(static_cast<size_t>(out * in)), W2(W.size()), x(static_cast<size_t>(in)), y0(static_cast<size_t>(out));
            for (float& v : W) v = u(gen);
            for (float& v : W2) v = u(gen);
            for (float& v : x) v = u(gen);
            for (float& v : y0) v = u(gen);
            // Exact products (a float times a float is exact in double), their sums, and the bounds.
            std::vector<double> ref(static_cast<size_t>(out)), ref2(ref.size()), tol(ref.size()), tol2(ref.size()), tol_acc(ref.size());
            for (int64_t r = 0; r < out; ++r) {
                double s = 0, s2 = 0, m = 0, m2 = 0;
                for (int64_t j = 0; j < in; ++j) {
                    const double p = static_cast<double>(W[static_cast<size_t>(r * in + j)]) * x[static_cast<size_t>(j)];
                    const double p2 = static_cast<double>(W2[static_cast<size_t>(r * in + j)]) * x[static_cast<size_t>(j)];
                    s += p, s2 += p2, m += std::abs(p), m2 += std::abs(p2);
                }
                const size_t i = static_cast<size_t>(r);
                ref[i] = s, ref2[i] = s2;
                const double g = test::gamma_n(in + 1, test::kU32) + test::gamma_n(in, test::kU64);
                tol[i] = g * m;
                tol2[i] = g * m2;
                tol_acc[i] = (g + test::gamma_n(1, test::kU32)) * (m + std::abs(static_cast<double>(y0[i])));  // one more term: y0
            }
            std::vector<float> first, first_acc;
            for (int t : {1, 2, 3}) {
                omp_set_num_threads(t);
                std::vector<float> y(static_cast<size_t>(out)), ya = y0, g(y.size()), up(y.size());
                rt::gemv(W.data(), x.data(), y.data(), out, in);
                rt::gemv(W.data(), x.data(), ya.data(), out, in, /*accumulate=*/true);
                rt::gemv2(W.data(), g.data(), W2.data(), up.data(), x.data(), out, in);
                double worst = 0;  // largest difference as a share of its bound
                for (int64_t r = 0; r < out; ++r) {
                    const size_t i = static_cast<size_t>(r);
                    const double e = std::abs(static_cast<double>(y[i]) - ref[i]);
                    const double ea = std::abs(static_cast<double>(ya[i]) - (static_cast<double>(y0[i]) + ref[i]));
                    worst = std::max(worst, e / std::max(tol[i], 1e-300));
                    EXPECT_LE(e, tol[i]) << out << "x" << in << ", " << t << " thread(s), row " << r;
                    EXPECT_LE(ea, tol_acc[i]) << out << "x" << in << " accumulate, " << t << " thread(s), row " << r;
                    EXPECT_EQ(g[i], y[i]) << "gemv2's first product differs from gemv, row " << r;
                    EXPECT_LE(std::abs(static_cast<double>(up[i]) - ref2[i]), tol2[i]) << "gemv2's second product, row " << r;
                }
                if (out * in > 100000 && t == 2) {
                    std::printf("[kernels] %s gemv %lldx%lld, 2 threads: largest error %.3g of its bound\n", rt::kernel_isa_name(isa),
                                static_cast<long long>(out), static_cast<long long>(in), worst);
                }
                if (t == 1) {
                    first = y;
                    first_acc = ya;
                } else {
                    EXPECT_EQ(y, first) << out << "x" << in << ": " << t << " threads changed the bits of the product";
                    EXPECT_EQ(ya, first_acc) << out << "x" << in << ": " << t << " threads changed the bits (accumulate)";
                }
            }
        }
        omp_set_num_threads(threads_before);
        for (int64_t n : {1, 7, 8, 9, 33, 512}) {
            std::vector<float> a(static_cast<size_t>(n)), b(a.size());
            for (float& v : a) v = u(gen);
            for (float& v : b) v = u(gen);
            double ref = 0, m = 0;
            for (size_t i = 0; i < a.size(); ++i) ref += static_cast<double>(a[i]) * b[i], m += std::abs(static_cast<double>(a[i]) * b[i]);
            const double bound = (test::gamma_n(n + 1, test::kU32) + test::gamma_n(n, test::kU64)) * m;
            EXPECT_LE(std::abs(static_cast<double>(rt::dot(a.data(), b.data(), n)) - ref), bound) << "dot, n = " << n;
        }
    }
    rt::kernel_isa_set(isa_before);
    EXPECT_THROW(rt::kernel_isa_parse("avx9"), Error);
}

// Broken weights show as NaN or +inf logits: an error naming the token, greedy or sampled, never
// a token drawn from a garbled order. A masked token's -inf is a logit like any other.
TEST(RuntimeSampler, NonFiniteLogitsAreAnErrorAndMinusInfinityIsNot) {
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    for (const rt::SamplerOptions& o : {rt::SamplerOptions{.temperature = 0.0f}, rt::SamplerOptions{.temperature = 1.0f, .top_p = 0.9f}}) {
        rt::Sampler s(o, 4);
        std::vector<float> with_nan = {0.5f, nan, 0.1f, 0.2f}, with_inf = {0.5f, 0.1f, inf, 0.2f};
        test::expect_error_mentions([&] { s.sample(with_nan.data()); }, "token 1 is nan");
        test::expect_error_mentions([&] { s.sample(with_inf.data()); }, "token 2 is inf");
        std::vector<float> masked = {-inf, 2.0f, -inf, 0.0f};
        EXPECT_NE(s.sample(masked.data()), 0);
    }
}

TEST(RuntimeSampler, PenaltyLowersRepeatsOfEitherSignAndSamplingIsSeeded) {
    const int64_t V = 4;
    rt::Sampler s({.temperature = 0.0f, .repetition_penalty = 2.0f}, V);
    s.observe(0);
    s.observe(1);
    std::vector<float> logits = {2.0f, -1.0f, 0.5f, -3.0f};
    s.sample(logits.data());
    EXPECT_FLOAT_EQ(logits[0], 1.0f);   // positive: divided
    EXPECT_FLOAT_EQ(logits[1], -2.0f);  // negative: multiplied, i.e. lowered too
    EXPECT_FLOAT_EQ(logits[2], 0.5f);
    // Greedy is the argmax; top-k 1 at any temperature is greedy; a seed repeats its draws.
    std::vector<float> z = {0.1f, 3.0f, 0.2f, 2.9f};
    rt::Sampler g({}, V);
    EXPECT_EQ(g.sample(std::vector<float>(z).data()), 1);
    rt::Sampler k1({.temperature = 5.0f, .top_k = 1, .seed = 3}, V);
    for (int i = 0; i < 20; ++i) EXPECT_EQ(k1.sample(std::vector<float>(z).data()), 1);
    rt::Sampler a({.temperature = 1.0f, .seed = 42}, V), b({.temperature = 1.0f, .seed = 42}, V);
    std::vector<int32_t> da, db;
    std::set<int32_t> distinct;
    for (int i = 0; i < 200; ++i) {
        da.push_back(a.sample(std::vector<float>(z).data()));
        db.push_back(b.sample(std::vector<float>(z).data()));
        distinct.insert(da.back());
    }
    EXPECT_EQ(da, db);
    EXPECT_GE(distinct.size(), 2u) << "temperature 1 should not be greedy";
    // top-p 0.5 keeps only the most likely token here (it has more than half the mass).
    rt::Sampler p({.temperature = 1.0f, .top_p = 0.5f, .seed = 1}, V);
    std::vector<float> peaked = {0.0f, 5.0f, 0.0f, 0.0f};
    for (int i = 0; i < 20; ++i) EXPECT_EQ(p.sample(std::vector<float>(peaked).data()), 1);
    EXPECT_EQ(rt::budget_parse("25%", 1000), 250u);
    EXPECT_EQ(rt::budget_parse("2K", 0), 2048u);
    expect_error_mentions([] { rt::budget_parse("-3", 10); }, "positive");
    expect_error_mentions([] { rt::budget_parse("150%", 10); }, "more than 100%");
}
