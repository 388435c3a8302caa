// test_pack.cpp: expert packs — bit-exact round trip (f32) or exact rounding (bf16, f16),
// 4096-aligned experts, valid safetensors, the clear error of every corrupt or missing case,
// and Louvain recovering planted clusters from a synthetic trace.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <fstream>
#include <random>

#include "cluster/coactivation.h"
#include "format/trace.h"
#include "core/error.h"
#include "format/pack.h"
#include "test_helpers.h"

using namespace chronos;
using chronos::test::expect_error_mentions;

namespace {

// A checkpoint of random fp32 weights for the tiny test config.
std::string make_checkpoint(const std::string& dir) {
    ModelConfig c = test::tiny_model_config();
    std::mt19937 rng(11);
    std::normal_distribution<float> normal(0.0f, 0.05f);
    std::vector<std::vector<float>> storage;
    SafetensorsWriter w;
    auto specs = checkpoint_tensor_specs(c);
    storage.reserve(specs.size());
    for (const TensorSpec& s : specs) {
        int64_t n = 1;
        for (int64_t d : s.shape) n *= d;
        storage.emplace_back(static_cast<size_t>(n));
        for (float& x : storage.back()) x = normal(rng);
        w.add(s.name, DType::F32, s.shape, storage.back().data(), static_cast<uint64_t>(n) * 4);
    }
    CheckpointStaging stage(dir);
    config_save(c, LossWeights{}, stage.file("config.json"));
    w.write(stage.file("model.safetensors"));
    stage.commit();
    return dir;
}

ClusterPlan shuffled_plan(int64_t layers, int64_t experts) {
    std::vector<int64_t> pairs(static_cast<size_t>(layers * experts));
    std::iota(pairs.begin(), pairs.end(), 0);
    std::shuffle(pairs.begin(), pairs.end(), std::mt19937(3));
    ClusterPlan plan;
    plan.clusters = {std::vector<int64_t>(pairs.begin(), pairs.begin() + 3), std::vector<int64_t>(pairs.begin() + 3, pairs.end())};
    return plan;
}

}  // namespace

// Every stored type: each expert's bytes are its rows as weight_quantize_row writes them (the
// layout of docs/format.md), 4096-aligned; the dense file likewise for pack_dense_names.
TEST(Pack, RoundTripIsExactForEveryDtypeAndExpertsAreAligned) {
    test::TempDir dir;
    Checkpoint ck = checkpoint_open(make_checkpoint(dir.file("ck")));
    const ModelConfig& c = ck.config;
    auto stored = [](WeightType t, const TensorView& src) {
        const int64_t rows = src.info->shape[0], cols = src.info->shape[1];
        std::vector<uint8_t> q(weight_matrix_bytes(t, rows, cols));
        for (int64_t r = 0; r < rows; ++r) weight_quantize_row(t, src.as<float>() + r * cols, cols, q.data() + r * weight_row_bytes(t, cols));
        return q;
    };
    for (WeightType dtype : {WeightType::f32, WeightType::bf16, WeightType::f16, WeightType::q8, WeightType::q4}) {
        SCOPED_TRACE(weight_type_name(dtype));
        const WeightType dense = dtype == WeightType::bf16 ? WeightType::q4 : dtype;  // one pack with types differing
        pack_write(ck, shuffled_plan(c.num_hidden_layers, c.n_routed_experts), dtype, dense);
        PackManifest m = pack_manifest_load(ck.dir, c);
        ASSERT_EQ(m.files.size(), 2u);
        EXPECT_EQ(m.dtype, dtype);
        for (const PackEntry& en : m.entries) {
            EXPECT_EQ(en.offset % 4096, 0u) << "layer " << en.layer << " expert " << en.expert;
            MappedFile f(ck.dir + "/" + m.files[static_cast<size_t>(en.file)]);
            const uint8_t* at = f.data() + en.offset;
            size_t off = 0;
            for (const char* proj : {"gate", "up", "down"}) {
                const std::vector<uint8_t> want = stored(dtype, ck.weights->tensor(expert_tensor_name(en.layer, en.expert, proj)));
                ASSERT_EQ(std::memcmp(at + off, want.data(), want.size()), 0) << proj << " of layer " << en.layer << " expert " << en.expert;
                off += want.size();
            }
            EXPECT_EQ(off, en.length);
            EXPECT_EQ(en.length, pack_expert_bytes(dtype, c.hidden_size, c.moe_intermediate_size));
        }
        // The dense file: there exactly when the dense type is narrow, each matrix as stored.
        EXPECT_EQ(m.dense.path.empty(), dense == WeightType::f32);
        if (!m.dense.path.empty()) {
            EXPECT_EQ(m.dense.dtype, dense);
            SafetensorsFile f(ck.dir + "/" + m.dense.path);
            EXPECT_EQ(f.metadata().at("dtype"), weight_type_name(dense));
            EXPECT_EQ(f.tensors().size(), pack_dense_names(c).size());
            for (const std::string& name : pack_dense_names(c)) {
                TensorView master = ck.weights->tensor(name);
                TensorView v = f.tensor(name);
                EXPECT_EQ(v.info->dtype, pack_stored_dtype(dense)) << name;
                EXPECT_EQ(v.info->shape, pack_stored_shape(dense, master.info->shape[0], master.info->shape[1])) << name;
                const std::vector<uint8_t> want = stored(dense, master);
                ASSERT_EQ(v.info->nbytes(), want.size()) << name;
                EXPECT_EQ(std::memcmp(v.data, want.data(), want.size()), 0) << name;
            }
        }
        EXPECT_NO_THROW(pack_verify(ck.dir, c));
        // Every pack is a valid safetensors file whose tensors keep their checkpoint names.
        for (const std::string& rel : m.files) {
            SafetensorsFile f(ck.dir + "/" + rel);
            EXPECT_EQ(f.header().data_start % 4096, 0u);
            EXPECT_EQ(f.metadata().at("dtype"), weight_type_name(dtype));
            EXPECT_EQ(f.metadata().at("layout"), weight_type_layout(dtype));
            for (const TensorInfo& t : f.tensors()) {
                const bool pad = t.name.rfind("__pad__.", 0) == 0;
                EXPECT_TRUE(pad || t.name.find(".mlp.experts.") != std::string::npos) << t.name;
                if (!pad) {
                    EXPECT_EQ(t.dtype, pack_stored_dtype(dtype)) << t.name;
                }
            }
        }
    }
    // A flipped byte in the dense file: loading checks the size, verifying the checksum.
    PackManifest m = pack_manifest_load(ck.dir, c);
    ASSERT_FALSE(m.dense.path.empty());
    std::string bytes = file_read_all(ck.dir + "/" + m.dense.path);
    bytes[bytes.size() - 5] ^= 0x10;
    file_write_atomic(ck.dir + "/" + m.dense.path, bytes);
    expect_error_mentions([&] { pack_verify(ck.dir, c); }, "checksum mismatch in the dense file");
    file_write_atomic(ck.dir + "/" + m.dense.path, bytes.substr(0, bytes.size() - 1));
    expect_error_mentions([&] { pack_manifest_load(ck.dir, c); }, "dense file");
    // Only the newest generation of pack files is kept.
    int generations = 0;
    for (const auto& e : std::filesystem::directory_iterator(ck.dir + "/packs")) generations += e.is_directory();
    EXPECT_EQ(generations, 1);
}

TEST(Pack, CorruptOrMissingPacksGiveClearErrors) {
    test::TempDir dir;
    Checkpoint ck = checkpoint_open(make_checkpoint(dir.file("ck")));
    const ModelConfig c = ck.config;
    expect_error_mentions([&] { pack_manifest_load(ck.dir, c); }, "no cluster_manifest.json");
    PackManifest m = pack_write(ck, cluster_plan_natural(c.num_hidden_layers, c.n_routed_experts), WeightType::f32);
    const std::string manifest = file_read_all(ck.dir + "/cluster_manifest.json");
    const std::string pack0 = ck.dir + "/" + m.files[0];
    const std::string pack0_bytes = file_read_all(pack0);

    // A flipped byte inside an expert: the checksum catches it.
    std::string flipped = pack0_bytes;
    flipped[m.entries[0].offset + 100] ^= 0x40;
    file_write_atomic(pack0, flipped);
    expect_error_mentions([&] { pack_verify(ck.dir, c); }, "checksum mismatch for layer 0 expert 0");
    // Truncated file.
    file_write_atomic(pack0, pack0_bytes.substr(0, pack0_bytes.size() - 4096));
    expect_error_mentions([&] { pack_manifest_load(ck.dir, c); }, "truncated or replaced");
    // Missing file.
    std::filesystem::remove(pack0);
    expect_error_mentions([&] { pack_manifest_load(ck.dir, c); }, "is missing");
    file_write_atomic(pack0, pack0_bytes);
    EXPECT_NO_THROW(pack_verify(ck.dir, c));
    // Manifest naming a file that is not listed, and malformed JSON.
    std::string bad = manifest;
    bad.replace(bad.find("\"file\": 0"), 9, "\"file\": 9");
    file_write_atomic(ck.dir + "/cluster_manifest.json", bad);
    expect_error_mentions([&] { pack_manifest_load(ck.dir, c); }, "which is not listed");
    file_write_atomic(ck.dir + "/cluster_manifest.json", manifest.substr(0, manifest.size() / 2));
    expect_error_mentions([&] { pack_manifest_load(ck.dir, c); }, "not valid JSON");
    // A manifest that disagrees with config.json.
    file_write_atomic(ck.dir + "/cluster_manifest.json", manifest);
    ModelConfig other = c;
    other.moe_intermediate_size += 8;
    expect_error_mentions([&] { pack_manifest_load(ck.dir, other); }, "but config.json has");
    // A plan that leaves a pair out is refused before anything is written.
    ClusterPlan partial = cluster_plan_natural(c.num_hidden_layers, c.n_routed_experts);
    partial.clusters.back().pop_back();
    expect_error_mentions([&] { pack_write(ck, partial, WeightType::f32); }, "leaves out layer 1 expert 3");
}

// pack_manifest_parse on text in memory: every malformed manifest gets its own clear error,
// never another exception or a silent conversion (fuzz/fuzz_pack_manifest.cpp fuzzes it).
TEST(Pack, MalformedManifestTextGetsClearErrors) {
    test::TempDir dir;
    Checkpoint ck = checkpoint_open(make_checkpoint(dir.file("ck")));
    const ModelConfig c = ck.config;
    pack_write(ck, shuffled_plan(c.num_hidden_layers, c.n_routed_experts), WeightType::f32);
    const std::string text = file_read_all(ck.dir + "/cluster_manifest.json");
    const nlohmann::json good = nlohmann::json::parse(text);
    PackManifest parsed = pack_manifest_parse(text, "m.json", c), loaded = pack_manifest_load(ck.dir, c);
    EXPECT_EQ(parsed.files, loaded.files);
    EXPECT_EQ(parsed.clusters, loaded.clusters);
    auto bad = [&](const std::function<void(nlohmann::json&)>& edit, const std::string& needle) {
        nlohmann::json j = good;
        edit(j);
        expect_error_mentions([&] { pack_manifest_parse(j.dump(1), "m.json", c); }, needle);
    };
    // Which pair is first in file 0, and its entry.
    const int64_t p0 = good["files"][0]["pairs"][0].get<int64_t>();
    const int64_t p1 = good["files"][1]["pairs"][0].get<int64_t>();
    expect_error_mentions([&] { pack_manifest_parse("[]", "m.json", c); }, "m.json: manifest is not a JSON object");
    bad([](auto& j) { j.erase("dtype"); }, "m.json: missing field \"dtype\"");
    bad([](auto& j) { j["alignment"] = 512; }, "m.json: alignment is 512, this reader needs 4096");
    bad([](auto& j) { j["num_hidden_layers"] = -2; }, "field \"num_hidden_layers\" must be a non-negative integer, got -2");
    bad([](auto& j) { j["experts"][0]["checksum"] = "-1"; }, "m.json: experts[0]: checksum \"-1\" is not 16 hex digits");
    bad([](auto& j) { j["experts"][0]["checksum"] = "0x00000000000001"; }, "is not 16 hex digits");
    bad([](auto& j) { j["experts"][0]["checksum"] = 5; }, "m.json: experts[0]: field \"checksum\" must be a string");
    bad([](auto& j) { j["experts"][0]["layer"] = 0.5; }, "m.json: experts[0]: field \"layer\" must be a non-negative integer, got 0.5");
    bad([](auto& j) { j["experts"][0]["file"] = -1; }, "field \"file\" must be a non-negative integer, got -1");
    bad([](auto& j) { j["experts"][0] = 7; }, "m.json: experts[0] is not an object");
    bad([](auto& j) { j["experts"].erase(0); }, "m.json: 7 expert entries for 2 layers x 4 experts");
    // An offset near 2^64: offset + length wraps around and would pass a naive end check.
    bad([&](auto& j) { j["experts"][static_cast<size_t>(p0)]["offset"] = 18446744073709547520ull; }, "lies past the end of its file");
    bad([](auto& j) { j["files"][0]["path"] = "../elsewhere.ctsr"; }, "m.json: files[0]: pack file path \"../elsewhere.ctsr\" is not a plain relative path inside the checkpoint directory");
    bad([](auto& j) { j["files"][0]["path"] = "/abs.ctsr"; }, "is not a plain relative path inside the checkpoint directory");
    bad([](auto& j) { j["files"][1]["path"] = j["files"][0]["path"]; }, "is listed twice");
    bad([](auto& j) { j["files"][0]["path"] = "packs/a\nb.ctsr"; }, "pack file path \"packs/a\\nb.ctsr\" is not a plain relative path");
    bad([](auto& j) { j["files"].push_back({{"path", "packs/empty.ctsr"}, {"bytes", 4096}, {"pairs", nlohmann::json::array()}}); },
        "m.json: files[2] holds no experts");
    bad([](auto& j) { j["files"][0]["pairs"][0] = 8; }, "m.json: files[0]: pair 8 is not a pair id (0 .. 7)");
    bad([](auto& j) { j["files"][0]["pairs"][0] = "3"; }, "pair \"3\" is not a pair id");
    bad([&](auto& j) { j["files"][1]["pairs"].push_back(p0); }, fmt::format("m.json: pair {} (layer {} expert {}) is listed in two clusters", p0, p0 / 4, p0 % 4));
    bad([&](auto& j) { j["files"][0]["pairs"].erase(0); }, fmt::format("layer {} expert {} names file #0 but no file lists it", p0 / 4, p0 % 4));
    bad([&](auto& j) { j["experts"][static_cast<size_t>(p1)]["file"] = 0; }, fmt::format("layer {} expert {} names file #0 but file #1 lists it", p1 / 4, p1 % 4));
    // Two experts of one file in the wrong order: a cluster must be one sequential read.
    bad([](auto& j) {
        auto& pairs = j["files"][1]["pairs"];
        std::swap(pairs[0], pairs[1]);
    }, "overlaps the expert before it in");
}

TEST(Trace, RoundTripAndCorruption) {
    test::TempDir dir;
    TraceShape shape{2, 4, 2};
    TraceWriter w(dir.file("t.ctrc"), shape);
    TraceSequence s;
    s.tokens = {5, 6, 7};
    s.prompt_len = 2;
    s.experts = {0, 1, 2, 3, 1, 2, 0, 3, 3, 0, 1, 2};
    s.weights.assign(12, 0.5f);
    w.add_sequence(s);
    w.finish();
    Trace t = trace_read(dir.file("t.ctrc"));
    ASSERT_EQ(t.sequences.size(), 1u);
    EXPECT_EQ(t.sequences[0].tokens, s.tokens);
    EXPECT_EQ(t.sequences[0].experts, s.experts);
    EXPECT_EQ(t.sequences[0].prompt_len, 2u);
    EXPECT_EQ(t.sequences[0].expert(2, 1, 0, shape), 1);
    std::string bytes = file_read_all(dir.file("t.ctrc"));
    file_write_atomic(dir.file("short.ctrc"), bytes.substr(0, bytes.size() - 3));
    expect_error_mentions([&] { trace_read(dir.file("short.ctrc")); }, "truncated");
    bytes[0] = 'X';
    file_write_atomic(dir.file("magic.ctrc"), bytes);
    expect_error_mentions([&] { trace_read(dir.file("magic.ctrc")); }, "bad magic");
}

TEST(Louvain, RecoversPlantedClustersFromASyntheticTrace) {
    // 4 layers x 8 experts; 4 planted groups, group g using experts {2g, 2g+1} in every layer.
    // Each sequence follows one group, with 5% of tokens routed at random.
    const uint32_t L = 4, E = 8, K = 2;
    Trace trace;
    trace.shape = {L, E, K};
    std::mt19937 rng(42);
    for (int s = 0; s < 200; ++s) {
        TraceSequence seq;
        const int g = s % 4;
        for (int t = 0; t < 40; ++t) {
            seq.tokens.push_back(static_cast<uint32_t>(t));
            const bool noise = rng() % 20 == 0;
            for (uint32_t l = 0; l < L; ++l) {
                uint16_t a = static_cast<uint16_t>(noise ? rng() % E : 2 * g), b = static_cast<uint16_t>(noise ? (a + 1 + rng() % (E - 1)) % E : 2 * g + 1);
                seq.experts.insert(seq.experts.end(), {a, b});
                seq.weights.insert(seq.weights.end(), {0.5f, 0.5f});
            }
        }
        seq.prompt_len = 10;
        trace.sequences.push_back(seq);
    }
    CoactivationGraph g = coactivation_build(trace, {4, 1.0});
    std::vector<int64_t> membership = louvain_communities(g, 1.0, 7);
    // Pairs of one planted group share a community; pairs of different groups do not.
    for (int64_t a = 0; a < g.nodes; ++a) {
        for (int64_t b = a + 1; b < g.nodes; ++b) {
            const bool same_plant = (a % E) / 2 == (b % E) / 2;
            const bool same_found = membership[static_cast<size_t>(a)] == membership[static_cast<size_t>(b)];
            EXPECT_EQ(same_plant, same_found) << "pairs " << a << " and " << b;
        }
    }
    // The byte cap splits a community, and the plan covers every pair once, layer order inside.
    ClusterPlan plan = cluster_plan_build(g, membership, E, 1000, 4000);
    std::vector<int> seen(static_cast<size_t>(g.nodes), 0);
    for (const auto& cl : plan.clusters) {
        EXPECT_LE(cl.size(), 4u);
        for (size_t i = 0; i < cl.size(); ++i) {
            seen[static_cast<size_t>(cl[i])]++;
            if (i > 0) {
                EXPECT_LE(cl[i - 1] / E, cl[i] / E) << "cluster not in layer order";
            }
        }
    }
    for (int x : seen) EXPECT_EQ(x, 1);
}
