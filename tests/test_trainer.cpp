// test_trainer.cpp: the Stage 1 trainer through the `chronos` command on the real corpus —
// save/load bit-exactness, exact resume, data-parallel equivalence, and learning well past
// the unigram baseline.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <map>

#include "data/records.h"
#include "format/checkpoint.h"
#include "train/checkpoint_io.h"
#include "train/train_api.h"
#include "test_helpers.h"
#include "tokenizer/tokenizer.h"

using namespace chronos;

namespace {

// Every 8th training record (made by the fixture), so that each run tokenizes little.
std::string data_train() { return test::test_data_dir() + "/pretrain.small.jsonl"; }

// Runs `chronos ARGS` quietly; returns the exit status.
int run_chronos(const std::string& args) {
    std::string cmd = std::string("CHRONOS_PROGRESS=0 ") + CHRONOS_BIN + " -q --threads 2 " + args + " > /dev/null 2>&1";
    int rc = std::system(cmd.c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 255;
}

std::string pretrain_args(const std::string& out, int steps, const std::string& extra = "", const std::string& config = "tiny") {
    return fmt::format("train pretrain --config {} --data {} --tokenizer {} --out {} --steps {} --batch-size 8 --seq-len 32 "
                       "--eval-interval 0 {}",
                       config, data_train(), test::test_tokenizer(), out, steps, extra);
}

// Largest absolute difference between same-named F32 tensors of two files.
double max_weight_diff(const std::string& a, const std::string& b) {
    SafetensorsFile fa(a), fb(b);
    double worst = 0;
    for (const TensorInfo& t : fa.tensors()) {
        TensorView va = fa.tensor(t.name), vb = fb.tensor(t.name);
        EXPECT_EQ(va.info->shape, vb.info->shape) << t.name;
        for (int64_t i = 0; i < t.numel(); ++i) worst = std::max(worst, static_cast<double>(std::fabs(va.as<float>()[i] - vb.as<float>()[i])));
    }
    return worst;
}

}  // namespace

TEST(Trainer, SaveLoadIsBitExact) {
    test::TempDir dir;
    InitOptions o;
    o.config = "tiny";
    o.out = dir.file("init");
    o.tokenizer = test::test_tokenizer();
    o.seed = 5;
    model_init(o);
    ChronosModel model = model_load(dir.file("init"));
    // Save the loaded model again: the weight file must be byte-identical.
    SafetensorsWriter w;
    std::vector<torch::Tensor> keep;
    model_add_tensors(model, w, keep);
    w.write(dir.file("again.safetensors"));
    EXPECT_EQ(file_read_all(dir.file("init/model.safetensors")), file_read_all(dir.file("again.safetensors")));
    // And every parameter equals the file bit for bit.
    SafetensorsFile f(dir.file("init/model.safetensors"));
    for (const auto& p : model->named_parameters()) {
        TensorView v = f.tensor(p.key());
        ASSERT_EQ(std::memcmp(p.value().data_ptr<float>(), v.data, v.info->nbytes()), 0) << p.key();
    }
}

TEST(Trainer, ResumeEqualsUninterruptedRun) {
    test::TempDir dir;
    ASSERT_EQ(run_chronos(pretrain_args(dir.file("straight"), 6)), 0);
    ASSERT_EQ(run_chronos(pretrain_args(dir.file("resumed"), 3)), 0);
    ASSERT_EQ(run_chronos(pretrain_args(dir.file("resumed"), 6, "--resume")), 0);
    EXPECT_EQ(file_read_all(dir.file("straight/model.safetensors")), file_read_all(dir.file("resumed/model.safetensors")))
        << "max weight difference " << max_weight_diff(dir.file("straight/model.safetensors"), dir.file("resumed/model.safetensors"));
    EXPECT_EQ(file_read_all(dir.file("straight/optimizer.safetensors")), file_read_all(dir.file("resumed/optimizer.safetensors")));
    // Resuming with another model shape is refused with a clear error.
    EXPECT_NE(run_chronos(pretrain_args(dir.file("resumed"), 8, "--resume --baseline")), 0);
    // A baseline written before the head fields existed (no lookahead_target: read as
    // router_probs) still resumes: without a head they mean nothing.
    ASSERT_EQ(run_chronos(pretrain_args(dir.file("base"), 2, "--baseline")), 0);
    nlohmann::json old = nlohmann::json::parse(file_read_all(dir.file("base/config.json")));
    old.erase("lookahead_target");
    old.erase("lookahead_input_layer");
    file_write_atomic(dir.file("base/config.json"), old.dump(2));
    EXPECT_EQ(run_chronos(pretrain_args(dir.file("base"), 3, "--baseline --resume")), 0);
}

TEST(Trainer, TwoProcessDataParallelEqualsOneProcessWithTheCombinedBatch) {
    test::TempDir dir;
    ASSERT_EQ(run_chronos(pretrain_args(dir.file("one"), 4)), 0);
    ASSERT_EQ(run_chronos(pretrain_args(dir.file("two"), 4, "--nproc 2")), 0);
    // Ranks sum their routing counts, so data parallelism is exact with every loss on. Gradient
    // accumulation computes the batch-level terms (balance, temporal) per micro-batch
    // (docs/training.md), so it is compared with those two terms off.
    nlohmann::json cfg = nlohmann::json::parse(file_read_all(named_config_load("tiny").path));
    cfg["model"]["lambda_balance"] = 0.0;
    cfg["model"]["lambda_temporal"] = 0.0;
    file_write_atomic(dir.file("nobalance.json"), cfg.dump());
    ASSERT_EQ(run_chronos(pretrain_args(dir.file("one-nb"), 4, "", dir.file("nobalance.json"))), 0);
    ASSERT_EQ(run_chronos(pretrain_args(dir.file("accum"), 4, "--grad-accum 2", dir.file("nobalance.json"))), 0);
    const double d_two = max_weight_diff(dir.file("one/model.safetensors"), dir.file("two/model.safetensors"));
    const double d_acc = max_weight_diff(dir.file("one-nb/model.safetensors"), dir.file("accum/model.safetensors"));
    std::printf("max weight difference: 2 processes %.3g, gradient accumulation %.3g\n", d_two, d_acc);
    EXPECT_LT(d_two, 2e-5) << "2 processes differ from 1 process with the combined batch";
    EXPECT_LT(d_acc, 2e-5) << "gradient accumulation differs from one big micro-batch";
    // Sanity: training moved the weights far more than the tolerance.
    InitOptions o;
    o.config = "tiny";
    o.out = dir.file("init");
    o.tokenizer = test::test_tokenizer();
    o.seed = 1234;
    model_init(o);
    EXPECT_GT(max_weight_diff(dir.file("init/model.safetensors"), dir.file("one/model.safetensors")), 1e-3);
}

TEST(Trainer, TinyPretrainingBeatsTheUnigramEntropy) {
    // Unigram cross-entropy of the validation split under the training split's token frequencies
    // (add-one smoothed): what a model that ignores context can reach.
    Tokenizer tok(test::test_tokenizer());
    std::vector<double> counts(static_cast<size_t>(tok.vocab_size()), 1.0);
    double total = static_cast<double>(tok.vocab_size());
    for (const auto& r : pretrain_load(data_train())) {
        for (int32_t id : tok.encode(r.text)) counts[static_cast<size_t>(id)] += 1, total += 1;
    }
    double ce = 0;
    int64_t n = 0;
    for (const auto& r : pretrain_load(test::prepared_dir() + "/pretrain.validation.jsonl")) {
        for (int32_t id : tok.encode(r.text)) ce -= std::log(counts[static_cast<size_t>(id)] / total), ++n;
    }
    const double unigram = ce / static_cast<double>(n);

    test::TempDir dir;
    ASSERT_EQ(run_chronos(fmt::format("train pretrain --config tiny --data {} --tokenizer {} --out {} --steps 300 --eval-interval 0",
                                      data_train(), test::test_tokenizer(), dir.file("m"))),
              0);
    EvalPplResult r = eval_ppl(dir.file("m"), test::prepared_dir() + "/pretrain.validation.jsonl", 64, 40000);
    std::printf("unigram cross-entropy %.3f nats, tiny model held-out loss %.3f nats (ppl %.1f)\n", unigram, r.loss, r.ppl);
    EXPECT_LT(r.loss, unigram - 0.5) << "held-out loss " << r.loss << " vs unigram " << unigram;
}

// `chronos train lookahead` trains the head and nothing else: every other tensor stays bit for
// bit, the held-out lookahead loss falls, the rest of the directory survives, and a new width
// replaces the head (config included) while the model still loads.
TEST(Trainer, LookaheadRefitChangesOnlyTheHead) {
    test::TempDir dir;
    ASSERT_EQ(run_chronos(pretrain_args(dir.file("m"), 150)), 0);  // routing peaked enough to predict
    file_write_atomic(dir.file("m/intent.json"), "{\"kept\": true}\n");  // stands for the later stages' files
    dir_create(dir.file("m/packs"));
    file_write_atomic(dir.file("m/packs/cluster-000.ctsr"), "pack bytes");
    const std::string before = file_read_all(dir.file("m/model.safetensors"));
    file_write_atomic(dir.file("before.safetensors"), before);
    const std::string fit = fmt::format("train lookahead --model {} --data {} --validation {} --steps 40 --batch-size 8 --seq-len 32 "
                                        "--warmup-steps 4 --eval-batches 4",
                                        dir.file("m"), data_train(), test::prepared_dir() + "/pretrain.validation.jsonl");
    ASSERT_EQ(run_chronos(fit), 0);

    SafetensorsFile a(dir.file("before.safetensors")), b(dir.file("m/model.safetensors"));
    int changed_head = 0;
    for (const TensorInfo& t : a.tensors()) {
        TensorView va = a.tensor(t.name), vb = b.tensor(t.name);
        ASSERT_EQ(va.info->shape, vb.info->shape) << t.name;
        const bool same = std::memcmp(va.data, vb.data, va.info->nbytes()) == 0;
        if (t.name.rfind("lookahead.", 0) == 0) changed_head += same ? 0 : 1;
        else EXPECT_TRUE(same) << t.name << " changed; only lookahead.* may";
    }
    EXPECT_GT(changed_head, 0) << "the head did not move";
    nlohmann::json state = nlohmann::json::parse(file_read_all(dir.file("m/trainer_state.json")));
    ASSERT_TRUE(state.contains("lookahead_fit"));
    EXPECT_EQ(state.at("step").get<int64_t>(), 150) << "the pretraining state must survive";
    const double l0 = state["lookahead_fit"]["val_lookahead_before"].get<double>();
    const double l1 = state["lookahead_fit"]["val_lookahead_after"].get<double>();
    std::printf("held-out lookahead loss %.4f -> %.4f after 40 head-only steps\n", l0, l1);
    EXPECT_LT(l1, l0);
    EXPECT_EQ(file_read_all(dir.file("m/intent.json")), "{\"kept\": true}\n");
    EXPECT_EQ(file_read_all(dir.file("m/packs/cluster-000.ctsr")), "pack bytes");

    // A new width reading the last block, written to another directory: the source stays as it was.
    const std::string refit = file_read_all(dir.file("m/model.safetensors"));
    EXPECT_NE(run_chronos(fit + " --input-layer 2 --out " + dir.file("bad")), 0) << "tiny has blocks 0 and 1";
    EXPECT_FALSE(file_exists(dir.file("bad")));
    ASSERT_EQ(run_chronos(fit + " --hidden 48 --input-layer 1 --target router_probs --out " + dir.file("wide")), 0);
    EXPECT_EQ(file_read_all(dir.file("m/model.safetensors")), refit);
    ChronosModel wide = model_load(dir.file("wide"));
    EXPECT_EQ(wide->config.lookahead_hidden_size, 48);
    EXPECT_EQ(wide->config.lookahead_input_layer, 1) << "--input-layer must reach config.json";
    EXPECT_EQ(model_load(dir.file("m"))->config.lookahead_input_layer, 0);
    EXPECT_EQ(wide->config.lookahead_target, LookaheadTarget::router_probs) << "--target must reach config.json";
    EXPECT_EQ(model_load(dir.file("m"))->config.lookahead_target, LookaheadTarget::router_topk);
    EXPECT_EQ(wide->lookahead->up_proj->weight.size(0), 48);
    EXPECT_EQ(file_read_all(dir.file("wide/packs/cluster-000.ctsr")), "pack bytes");
    SafetensorsFile c(dir.file("wide/model.safetensors"));
    for (const TensorInfo& t : a.tensors()) {
        if (t.name.rfind("lookahead.", 0) == 0) continue;
        EXPECT_EQ(std::memcmp(a.tensor(t.name).data, c.tensor(t.name).data, t.nbytes()), 0) << t.name;
    }

    // A model without a head is refused, and left alone.
    ASSERT_EQ(run_chronos(pretrain_args(dir.file("base"), 2, "--baseline")), 0);
    const std::string base = file_read_all(dir.file("base/model.safetensors"));
    EXPECT_NE(run_chronos(fmt::format("train lookahead --model {} --data {} --steps 2", dir.file("base"), data_train())), 0);
    EXPECT_EQ(file_read_all(dir.file("base/model.safetensors")), base);
}
