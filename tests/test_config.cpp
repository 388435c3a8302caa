// test_config.cpp: config.json round trip and the errors for wrong configs.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "format/model_config.h"
#include "core/error.h"
#include "test_helpers.h"

using namespace chronos;

namespace {

void expect_config_error(nlohmann::json j, const std::string& needle) {
    try {
        config_from_json(j, "cfg");
        ADD_FAILURE() << "accepted a wrong config; expected an error mentioning " << needle;
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
}

}  // namespace

TEST(Config, SaveLoadRoundTrip) {
    test::TempDir dir;
    ModelConfig c = test::tiny_model_config();
    c.expert_dtype = WeightType::q4;
    LossWeights w;
    w.lambda_balance = 0.01;
    w.fallback_mask_prob = 0.25;
    c.lookahead_target = LookaheadTarget::router_probs;
    config_save(c, w, dir.file("config.json"));
    ModelConfig r = config_load(dir.file("config.json"));
    LossWeights rw = loss_weights_load(dir.file("config.json"));
    EXPECT_EQ(config_to_json(r, rw).dump(), config_to_json(c, w).dump());
    EXPECT_EQ(rw.lambda_balance, 0.01);
    EXPECT_EQ(rw.fallback_mask_prob, 0.25);
}

TEST(Config, EveryFieldIsWrittenExplicitly) {
    nlohmann::ordered_json j = config_to_json(test::tiny_model_config(), LossWeights{});
    for (const char* key : {"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                            "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim", "n_routed_experts",
                            "num_experts_per_tok", "n_shared_experts", "moe_intermediate_size", "norm_topk_prob",
                            "rms_norm_eps", "rope_theta", "max_position_embeddings", "sliding_window",
                            "tie_word_embeddings", "attention_pattern", "model_type", "expert_dtype", "lookahead_target",
                            "lookahead_input_layer"}) {
        EXPECT_TRUE(j.contains(key)) << key;
    }
}

TEST(Config, WrongConfigsGetClearErrors) {
    nlohmann::json good = nlohmann::json::parse(config_to_json(test::tiny_model_config(), LossWeights{}).dump());
    auto with = [&](const char* key, nlohmann::json value) {
        nlohmann::json j = good;
        j[key] = value;
        return j;
    };
    nlohmann::json missing = good;
    missing.erase("rope_theta");
    expect_config_error(missing, "missing field \"rope_theta\"");
    expect_config_error(with("hidden_size", "big"), "must be an integer");
    expect_config_error(with("num_experts_per_tok", 5), "exceeds n_routed_experts");
    expect_config_error(with("attention_pattern", {"mla"}), "1 entries for 2 layers");
    expect_config_error(with("attention_pattern", {"mla", "rnn"}), "is not \"mla\", \"swa\" or \"gqa\"");
    expect_config_error(with("num_key_value_heads", 3), "not a multiple");
    expect_config_error(with("expert_dtype", "int4"), "expert_dtype");
    expect_config_error(with("lookahead_target", "router_logits"), "is not router_probs or router_topk");
    expect_config_error(with("lookahead_target", 3), "must be a string");
    expect_config_error(with("lookahead_input_layer", 2), "lookahead_input_layer 2 is not a layer (0 .. 1)");
    expect_config_error(with("lookahead_input_layer", -1), "is not a layer");
    expect_config_error(with("model_type", "llama"), "expected \"chronos\"");
    expect_config_error(with("qk_rope_head_dim", 5), "must be even");
    expect_config_error(nlohmann::json::array(), "not a JSON object");
}

TEST(Config, CheckpointsFromBeforeTheLookaheadTargetReadAsTheSoftmaxTarget) {
    nlohmann::json j = nlohmann::json::parse(config_to_json(test::tiny_model_config(), LossWeights{}).dump());
    EXPECT_EQ(config_from_json(j, "new").lookahead_target, LookaheadTarget::router_topk);
    j.erase("lookahead_target");
    EXPECT_EQ(config_from_json(j, "old").lookahead_target, LookaheadTarget::router_probs);
}

TEST(Config, CheckpointsFromBeforeTheHeadsInputLayerReadBlockZero) {
    ModelConfig c = test::tiny_model_config();
    c.lookahead_input_layer = 1;
    nlohmann::json j = nlohmann::json::parse(config_to_json(c, LossWeights{}).dump());
    EXPECT_EQ(config_from_json(j, "new").lookahead_input_layer, 1);
    j.erase("lookahead_input_layer");
    EXPECT_EQ(config_from_json(j, "old").lookahead_input_layer, 0);
}

TEST(Config, MalformedFileIsAnError) {
    test::TempDir dir;
    file_write_atomic(dir.file("config.json"), "{\"vocab_size\": ");
    EXPECT_THROW(config_load(dir.file("config.json")), Error);
    EXPECT_THROW(config_load(dir.file("absent.json")), Error);
}

TEST(Config, SizesAboveTheirLimitsAreRefusedByName) {
    nlohmann::json good = nlohmann::json::parse(config_to_json(test::tiny_model_config(), LossWeights{}).dump());
    auto with = [&](std::initializer_list<std::pair<const char*, nlohmann::json>> fields) {
        nlohmann::json j = good;
        for (const auto& [key, value] : fields) j[key] = value;
        return j;
    };
    expect_config_error(with({{"vocab_size", (1 << 24) + 1}}), "vocab_size is 16777217, outside 0 .. 16777216");
    expect_config_error(with({{"hidden_size", 1 << 17}}), "hidden_size is 131072, outside 0 .. 65536");
    expect_config_error(with({{"num_attention_heads", 8192}}), "num_attention_heads is 8192, outside 0 .. 4096");
    expect_config_error(with({{"kv_lora_rank", int64_t{1} << 40}}), "kv_lora_rank is 1099511627776, outside 0 .. 65536");
    expect_config_error(with({{"head_dim", -2}}), "head_dim is -2, outside 0 .. 4096");
    expect_config_error(with({{"n_routed_experts", 65536}}), "n_routed_experts is 65536, above 65535 (expert ids are 16-bit in traces)");
    expect_config_error(with({{"n_shared_experts", 5000}}), "n_shared_experts is 5000, outside 0 .. 4096");
    expect_config_error(with({{"moe_intermediate_size", 1 << 19}}), "moe_intermediate_size is 524288, outside 0 .. 262144");
    expect_config_error(with({{"max_position_embeddings", (1 << 24) + 1}}), "max_position_embeddings is 16777217, outside 0 .. 16777216");
    expect_config_error(with({{"sliding_window", 1 << 25}}), "sliding_window is 33554432, outside 0 .. 16777216");
    expect_config_error(with({{"lookahead_hidden_size", 1 << 17}}), "lookahead_hidden_size is 131072, outside 0 .. 65536");
    expect_config_error(with({{"lookahead_steps", 1025}}), "lookahead_steps is 1025, above 1024");
    std::vector<std::string> pattern(4000, "gqa");
    expect_config_error(with({{"num_hidden_layers", 4000}, {"attention_pattern", pattern}, {"n_routed_experts", 1000}}),
                        "4000 layers x 1000 experts is 4000000 (layer, expert) pairs, above 1048576");
    expect_config_error(with({{"num_hidden_layers", 5000}}), "num_hidden_layers is 5000, outside 0 .. 4096");
    // JSON integers above INT64_MAX must not wrap to negatives.
    expect_config_error(with({{"vocab_size", nlohmann::json::parse("18446744073709551615")}}),
                        "field \"vocab_size\" is too large (18446744073709551615)");
}

TEST(Config, PublishedMoeShapesAreWithinTheLimits) {
    // DeepSeek-V3's shape (vocab 129280, hidden 7168, 61 MLA layers, 128 heads, 256 experts
    // top-8, context 163840), and Gemma's vocabulary: the limits must not refuse real models.
    ModelConfig c = test::tiny_model_config();
    c.vocab_size = 256000;
    c.hidden_size = 7168;
    c.num_hidden_layers = 61;
    c.attention_pattern.assign(61, AttentionKind::mla);
    c.num_attention_heads = 128;
    c.kv_lora_rank = 512;
    c.qk_nope_head_dim = 128;
    c.qk_rope_head_dim = 64;
    c.v_head_dim = 128;
    c.n_routed_experts = 256;
    c.num_experts_per_tok = 8;
    c.moe_intermediate_size = 2048;
    c.max_position_embeddings = 163840;
    EXPECT_NO_THROW(config_validate(c, "deepseek-v3 shape"));
    c.max_position_embeddings = 10485760;  // Llama 4 Scout's context
    c.n_routed_experts = 384;              // Kimi K2's experts
    EXPECT_NO_THROW(config_validate(c, "wider"));
}

TEST(Config, RealNumbersMustBeFiniteAndLambdasNonNegative) {
    const double inf = std::numeric_limits<double>::infinity(), nan = std::nan("");
    auto expect_invalid = [](auto set, const std::string& needle) {
        ModelConfig c = test::tiny_model_config();
        set(c);
        test::expect_error_mentions([&] { config_validate(c, "cfg"); }, needle);
    };
    expect_invalid([&](ModelConfig& c) { c.rms_norm_eps = inf; }, "rms_norm_eps must be positive and finite (got inf)");
    expect_invalid([&](ModelConfig& c) { c.rms_norm_eps = nan; }, "rms_norm_eps must be positive and finite");
    expect_invalid([&](ModelConfig& c) { c.rope_theta = inf; }, "rope_theta must be positive and finite (got inf)");
    auto expect_invalid_weights = [](auto set, const std::string& needle) {
        LossWeights w;
        set(w);
        test::expect_error_mentions([&] { loss_weights_validate(w, "cfg"); }, needle);
    };
    expect_invalid_weights([&](LossWeights& w) { w.lambda_balance = nan; }, "lambda_balance must be finite and >= 0 (got nan)");
    expect_invalid_weights([&](LossWeights& w) { w.lambda_temporal = -0.5; }, "lambda_temporal must be finite and >= 0 (got -0.5)");
    expect_invalid_weights([&](LossWeights& w) { w.lambda_lookahead = inf; }, "lambda_lookahead must be finite and >= 0 (got inf)");
    expect_invalid_weights([&](LossWeights& w) { w.fallback_mask_prob = nan; }, "fallback_mask_prob must be in [0, 1) (got nan)");
    // JSON cannot spell inf: a number too large for a double is a JSON error naming the file.
    test::expect_error_mentions([] { config_parse(R"({"rope_theta": 1e400})", "cfg.json"); }, "cfg.json: not valid JSON");
}

TEST(Config, LambdaRouterKlIsTheAnchorWeightAStageTrainedWith) {
    nlohmann::json j = nlohmann::json::parse(config_to_json(test::tiny_model_config(), LossWeights{}).dump());
    j["lambda_router_kl"] = 0.1;
    EXPECT_EQ(loss_weights_from_json(j, "cfg").lambda_router_kl, 0.1);
    EXPECT_NO_THROW(config_from_json(j, "cfg"));  // the runtime's reader never looks at it
    j["lambda_router_kl"] = -0.1;
    test::expect_error_mentions([&] { loss_weights_from_json(j, "cfg"); }, "lambda_router_kl must be finite and >= 0 (got -0.1)");
}

TEST(Config, TheRuntimesReaderNeedsNoLossWeights) {
    // What serving reads is the architecture: a config.json without the training-only fields
    // parses, and only the loss weights' reader asks for them.
    nlohmann::json j = nlohmann::json::parse(config_to_json(test::tiny_model_config(), LossWeights{}).dump());
    for (const char* key : {"lambda_balance", "lambda_temporal", "lambda_lookahead", "lambda_router_kl", "fallback_mask_prob"}) j.erase(key);
    EXPECT_NO_THROW(config_from_json(j, "cfg"));
    test::expect_error_mentions([&] { loss_weights_from_json(j, "cfg"); }, "missing field \"lambda_balance\"");
}

TEST(Config, ParseOfTextNamesItsSource) {
    const std::string good = config_to_json(test::tiny_model_config(), LossWeights{}).dump();
    EXPECT_EQ(config_to_json(config_parse(good, "mem"), loss_weights_from_json(nlohmann::json::parse(good), "mem")).dump(), good);
    test::expect_error_mentions([] { config_parse("{\"vocab_size\": ", "mem.json"); }, "mem.json: not valid JSON");
    test::expect_error_mentions([] { config_parse("[1, 2]", "mem.json"); }, "mem.json: config is not a JSON object");
}
