// test_checkpoint.cpp: the checkpoint directory — names and shapes from config.json, clear
// errors on mismatch, and the atomic directory swap.
#include <gtest/gtest.h>

#include <random>

#include "core/error.h"
#include "core/file_io.h"
#include "format/checkpoint.h"
#include "test_helpers.h"

using namespace chronos;

namespace {

// Writes a checkpoint of random fp32 weights for `c`, optionally dropping or reshaping one.
void write_checkpoint(const std::string& dir, const ModelConfig& c, float fill, const std::string& drop = "",
                      const std::string& reshape = "") {
    std::vector<TensorSpec> specs = checkpoint_tensor_specs(c);
    std::vector<std::vector<float>> storage;
    storage.reserve(specs.size());
    SafetensorsWriter w;
    for (TensorSpec spec : specs) {
        if (spec.name == drop) continue;
        if (spec.name == reshape) spec.shape.back() += 1;
        int64_t n = 1;
        for (int64_t d : spec.shape) n *= d;
        storage.emplace_back(static_cast<size_t>(n), fill);
        w.add(spec.name, DType::F32, spec.shape, storage.back().data(), static_cast<uint64_t>(n) * 4);
    }
    CheckpointStaging stage(dir);
    config_save(c, LossWeights{}, stage.file("config.json"));
    w.write(stage.file("model.safetensors"));
    stage.commit();
}

}  // namespace

TEST(Checkpoint, TensorNamesFollowTheDesign) {
    ModelConfig c = test::tiny_model_config();
    std::vector<TensorSpec> specs = checkpoint_tensor_specs(c);
    auto shape_of = [&](const std::string& name) -> std::vector<int64_t> {
        for (const auto& s : specs) {
            if (s.name == name) return s.shape;
        }
        ADD_FAILURE() << "no tensor " << name;
        return {};
    };
    // MLA layer 0: q_proj rows are heads x (nope + rope); kv_a is [r + rope, H].
    EXPECT_EQ(shape_of("model.layers.0.self_attn.q_proj.weight"), (std::vector<int64_t>{4 * 12, 32}));
    EXPECT_EQ(shape_of("model.layers.0.self_attn.kv_a_proj_with_mqa.weight"), (std::vector<int64_t>{16 + 4, 32}));
    EXPECT_EQ(shape_of("model.layers.0.self_attn.kv_b_proj.weight"), (std::vector<int64_t>{4 * (8 + 8), 16}));
    // Sliding-window layer 1: GQA with 2 KV heads.
    EXPECT_EQ(shape_of("model.layers.1.self_attn.k_proj.weight"), (std::vector<int64_t>{2 * 8, 32}));
    EXPECT_EQ(shape_of("model.layers.1.mlp.experts.3.down_proj.weight"), (std::vector<int64_t>{32, 24}));
    EXPECT_EQ(shape_of("model.layers.1.mlp.shared_experts.up_proj.weight"), (std::vector<int64_t>{24, 32}));
    EXPECT_EQ(shape_of("lookahead.out_proj.weight"), (std::vector<int64_t>{2 * 2 * 4, 16}));
    EXPECT_EQ(shape_of("lm_head.weight"), (std::vector<int64_t>{300, 32}));
    c.tie_word_embeddings = true;
    for (const auto& s : checkpoint_tensor_specs(c)) EXPECT_NE(s.name, "lm_head.weight");
}

TEST(Checkpoint, WriteOpenValidate) {
    test::TempDir dir;
    const std::string ck_dir = dir.file("ck");
    ModelConfig c = test::tiny_model_config();
    write_checkpoint(ck_dir, c, 0.5f);
    Checkpoint ck = checkpoint_open(ck_dir);
    EXPECT_EQ(ck.config.hidden_size, 32);
    EXPECT_EQ(ck.weights->tensor("model.norm.weight").as<float>()[0], 0.5f);
    EXPECT_TRUE(ck.tokenizer_path.empty());
}

TEST(Checkpoint, MismatchedWeightsAreRejectedWithNames) {
    test::TempDir dir;
    ModelConfig c = test::tiny_model_config();
    write_checkpoint(dir.file("a"), c, 1.0f, "model.layers.1.mlp.experts.2.up_proj.weight");
    try {
        checkpoint_open(dir.file("a"));
        ADD_FAILURE() << "accepted a checkpoint with a missing tensor";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("missing model.layers.1.mlp.experts.2.up_proj.weight"), std::string::npos) << e.what();
    }
    write_checkpoint(dir.file("b"), c, 1.0f, "", "model.layers.0.mlp.gate.weight");
    try {
        checkpoint_open(dir.file("b"));
        ADD_FAILURE() << "accepted a checkpoint with a wrong shape";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("model.layers.0.mlp.gate.weight has shape [4, 33]"), std::string::npos) << e.what();
    }
    EXPECT_THROW(checkpoint_open(dir.file("absent")), Error);
}

TEST(Checkpoint, SaveReplacesAtomicallyAndAbandonedSaveKeepsOld) {
    test::TempDir dir;
    const std::string ck_dir = dir.file("ck");
    ModelConfig c = test::tiny_model_config();
    write_checkpoint(ck_dir, c, 1.0f);
    write_checkpoint(ck_dir, c, 2.0f);  // replaces through RENAME_EXCHANGE
    EXPECT_EQ(checkpoint_open(ck_dir).weights->tensor("model.norm.weight").as<float>()[0], 2.0f);
    {
        // A save that dies before commit (exception mid-save) leaves the old checkpoint.
        CheckpointStaging stage(ck_dir);
        file_write_atomic(stage.file("config.json"), "{ half written");
    }
    EXPECT_EQ(checkpoint_open(ck_dir).weights->tensor("model.norm.weight").as<float>()[0], 2.0f);
    int entries = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
        ++entries;
        EXPECT_EQ(e.path().filename().string(), "ck");
    }
    EXPECT_EQ(entries, 1) << "staging directories left behind";
}

// A save swaps its directory into place and deletes what was there: only an absent or empty
// directory or a Chronos checkpoint may be replaced, and never one a command reads from.
TEST(Checkpoint, ASaveNeverReplacesAFolderThatIsNotACheckpointNorAnInput) {
    const ModelConfig c = test::tiny_model_config();
    test::TempDir dir;
    const std::string notes = dir.file("notes");
    dir_create(notes);
    file_write_atomic(notes + "/notes.txt", "keep");
    EXPECT_FALSE(checkpoint_replaceable(notes));
    EXPECT_THROW(write_checkpoint(notes, c, 0.5f), Error);
    EXPECT_EQ(file_read_all(notes + "/notes.txt"), "keep");
    const std::string hf = dir.file("hf");  // a Hugging Face folder has a config.json too
    dir_create(hf);
    file_write_atomic(hf + "/config.json", R"({"model_type": "mixtral"})");
    EXPECT_FALSE(checkpoint_replaceable(hf));
    dir_create(dir.file("empty"));
    EXPECT_TRUE(checkpoint_replaceable(dir.file("empty")));
    EXPECT_TRUE(checkpoint_replaceable(dir.file("absent")));
    const std::string ck = dir.file("ck");
    write_checkpoint(ck, c, 0.5f);
    EXPECT_TRUE(checkpoint_replaceable(ck));
    write_checkpoint(ck, c, 0.25f);  // a checkpoint is replaced by the next save

    EXPECT_THROW(checkpoint_out_check(notes, {}), Error);
    EXPECT_THROW(checkpoint_out_check(ck, {{"--data", ck + "/data.jsonl"}}), Error);  // inside
    EXPECT_THROW(checkpoint_out_check(ck + "/", {{"--from", ck}}), Error);            // the same, spelt otherwise
    EXPECT_THROW(checkpoint_out_check(dir.file("empty"), {{"--from", dir.file("empty") + "/../empty/x"}}), Error);
    EXPECT_NO_THROW(checkpoint_out_check(dir.file("ck2"), {{"--from", ck}}));
    EXPECT_NO_THROW(checkpoint_out_check(ck, {{"--data", dir.file("ck-data.jsonl")}}));  // a sibling sharing a prefix
    EXPECT_NO_THROW(checkpoint_out_check(ck, {{"--validation", ""}}));                    // an option not given
}
