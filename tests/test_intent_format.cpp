// test_intent_format.cpp: the intent classifier's files (format/intent.h) — a save/load round
// trip, absence, and a clear error for each way the pair of files can be wrong.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "core/file_io.h"
#include "format/intent.h"
#include "test_helpers.h"

using namespace chronos;

namespace {

IntentClassifier small_classifier(const ModelConfig& c, int64_t D) {
    IntentClassifier ic;
    ic.present = true;
    ic.hidden = D;
    ic.horizon = 4;
    ic.tail_tokens = 8;
    ic.holdout = 0.1;
    const int64_t in = 2 * c.hidden_size, pairs = c.num_hidden_layers * c.n_routed_experts;
    auto ramp = [](int64_t n, float scale) {
        std::vector<float> v(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = scale * static_cast<float>(i % 7 - 3);
        return v;
    };
    ic.up_w = ramp(D * in, 0.01f);
    ic.up_b = ramp(D, 0.1f);
    ic.out_w = ramp(pairs * D, 0.02f);
    ic.out_b = ramp(pairs, 0.3f);
    return ic;
}

}  // namespace

TEST(IntentFormat, SaveLoadRoundTripAndAbsence) {
    test::TempDir dir;
    const ModelConfig c = test::tiny_model_config();
    EXPECT_FALSE(intent_load(dir.path(), c).present) << "a directory without the files has no classifier";
    const IntentClassifier ic = small_classifier(c, 5);
    intent_save(dir.path(), ic, c);
    const IntentClassifier r = intent_load(dir.path(), c);
    ASSERT_TRUE(r.present);
    EXPECT_EQ(r.hidden, 5);
    EXPECT_EQ(r.horizon, 4);
    EXPECT_EQ(r.tail_tokens, 8);
    EXPECT_EQ(r.up_w, ic.up_w);
    EXPECT_EQ(r.up_b, ic.up_b);
    EXPECT_EQ(r.out_w, ic.out_w);
    EXPECT_EQ(r.out_b, ic.out_b);
}

TEST(IntentFormat, BadFilesAreRefusedByName) {
    const ModelConfig c = test::tiny_model_config();
    {
        test::TempDir dir;
        intent_save(dir.path(), small_classifier(c, 5), c);
        file_write_atomic(dir.file("intent.json"), "{\"hidden\": 5, ");
        test::expect_error_mentions([&] { intent_load(dir.path(), c); }, "intent.json: not valid JSON");
    }
    {
        test::TempDir dir;
        intent_save(dir.path(), small_classifier(c, 5), c);
        std::filesystem::remove(dir.file("intent.json"));
        test::expect_error_mentions([&] { intent_load(dir.path(), c); }, "intent.safetensors without intent.json");
    }
    {
        test::TempDir dir;
        intent_save(dir.path(), small_classifier(c, 5), c);
        file_write_atomic(dir.file("intent.json"), "{\"horizon\": 4, \"hidden\": 6}");
        test::expect_error_mentions([&] { intent_load(dir.path(), c); }, "intent.up_proj.weight has the wrong shape or dtype");
    }
    {
        test::TempDir dir;
        intent_save(dir.path(), small_classifier(c, 5), c);
        file_write_atomic(dir.file("intent.json"), "{\"horizon\": 4}");
        test::expect_error_mentions([&] { intent_load(dir.path(), c); }, "field \"hidden\" is missing or not an integer");
    }
    {
        // A classifier trained for another model: one expert more per layer.
        test::TempDir dir;
        intent_save(dir.path(), small_classifier(c, 5), c);
        ModelConfig other = c;
        other.n_routed_experts += 1;
        test::expect_error_mentions([&] { intent_load(dir.path(), other); }, "intent.out_proj.weight has the wrong shape or dtype");
    }
}
