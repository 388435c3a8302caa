// test_config.cpp: config.json round trip and the errors for wrong configs.
#include <gtest/gtest.h>

#include "core/config.h"
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
    c.expert_dtype = DType::BF16;
    c.lambda_balance = 0.01;
    c.lookahead_target = LookaheadTarget::router_probs;
    config_save(c, dir.file("config.json"));
    ModelConfig r = config_load(dir.file("config.json"));
    EXPECT_EQ(config_to_json(r).dump(), config_to_json(c).dump());
}

TEST(Config, EveryFieldIsWrittenExplicitly) {
    nlohmann::ordered_json j = config_to_json(test::tiny_model_config());
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
    nlohmann::json good = nlohmann::json::parse(config_to_json(test::tiny_model_config()).dump());
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
    nlohmann::json j = nlohmann::json::parse(config_to_json(test::tiny_model_config()).dump());
    EXPECT_EQ(config_from_json(j, "new").lookahead_target, LookaheadTarget::router_topk);
    j.erase("lookahead_target");
    EXPECT_EQ(config_from_json(j, "old").lookahead_target, LookaheadTarget::router_probs);
}

TEST(Config, CheckpointsFromBeforeTheHeadsInputLayerReadBlockZero) {
    ModelConfig c = test::tiny_model_config();
    c.lookahead_input_layer = 1;
    nlohmann::json j = nlohmann::json::parse(config_to_json(c).dump());
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
