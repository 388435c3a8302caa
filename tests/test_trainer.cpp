// test_trainer.cpp: the Stage 1 trainer through the `chronos` command on the real corpus —
// save/load bit-exactness, exact resume, data-parallel equivalence, and learning well past
// the unigram baseline.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <map>
#include <sstream>
#include <thread>

#include "data/records.h"
#include "format/checkpoint.h"
#include "train/checkpoint_io.h"
#include "train/train_api.h"
#include "train/train_step.h"
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

namespace {

// Relative bound for two float64 evaluations of the same step gradient that differ only in the
// order of their sums. Each gradient element is a sum over at most n = 8 x 32 x 2 = 512 (row,
// expert) terms of products formed through some D = 40 chained operations (2 blocks of
// attention and MoE, forward and backward); any two orders of an n-term float64 sum differ by at
// most 2 n u sum|terms| (u = 2^-53 = 1.1e-16), and each operation passes on its input's error
// times its condition number, which we allow to be 100. That gives 2 x 512 x 40 x 100 x u =
// 4.5e-10 relative to the gradient's norm; we take 1e-9. The routers' top-k is the one
// discontinuity: reordering can flip it only for two router probabilities within ~1e-13 of each
// other, which random data does not produce. A data-parallel fault (a rank on the wrong rows, a
// rank lost or counted twice, a sum instead of a mean, balance counts per rank instead of per
// batch) changes the gradient by a share of a batch, about 1/8 of its norm: 1e8 times the bound.
constexpr double kReorderBound64 = 1e-9;

// The tiny config with the test tokenizer's vocabulary.
ModelConfig tiny_config() {
    ModelConfig c = named_config_load("tiny").model;
    c.vocab_size = Tokenizer(test::test_tokenizer()).vocab_size();
    return c;
}

// A float64 model with weights large enough that routing differs from token to token (a fresh
// initialisation routes nearly uniformly, and its gradient barely depends on the data).
ChronosModel float64_model(const ModelConfig& c, const LossWeights& w) {
    torch::manual_seed(17);
    ChronosModel m(c, w);
    torch::NoGradGuard ng;
    for (auto& p : m->named_parameters()) {
        if (p.key().find("mlp.gate.") != std::string::npos) p.value().normal_(0.0, 0.5);
        else if (p.value().dim() == 2) p.value().normal_(0.0, 0.1);
    }
    m->to(torch::kFloat64);
    return m;
}

// Every parameter's gradient, flattened into one vector.
torch::Tensor flat_gradient(ChronosModel& m) {
    std::vector<torch::Tensor> parts;
    for (const auto& p : m->parameters()) parts.push_back(p.grad().reshape({-1}));
    return torch::cat(parts);
}

double relative_difference(const torch::Tensor& a, const torch::Tensor& b) {
    return (a - b).norm().item<double>() / b.norm().item<double>();
}

struct StepResult {
    torch::Tensor gradient, metrics;
};

// One step's gradient (step 3 of the run) of `world` ranks, each on its own thread with its own
// float64_model(c, w), all-reduced through Gloo as the trainer does; rank 0's result.
StepResult ranks_gradient(const ModelConfig& c, const LossWeights& w, const std::vector<int32_t>& tokens, const TrainHyper& h, int world,
                          const std::string& rendezvous) {
    std::vector<ChronosModel> copies;  // built here: initialisation draws from the global generator
    for (int r = 0; r < world; ++r) copies.push_back(float64_model(c, w));
    std::vector<StepResult> out(static_cast<size_t>(world));
    std::vector<std::exception_ptr> errors(static_cast<size_t>(world));
    std::vector<std::thread> threads;
    for (int r = 0; r < world; ++r) {
        threads.emplace_back([&, r] {
            try {
                SequenceSampler sampler(tokens, h.seq_len, h.seed);
                DistributedGroup group(r, world, rendezvous);
                torch::Tensor metrics = train_step_gradient(copies[static_cast<size_t>(r)], sampler, h, /*step=*/3, group);
                out[static_cast<size_t>(r)] = {flat_gradient(copies[static_cast<size_t>(r)]), metrics};
            } catch (...) {
                errors[static_cast<size_t>(r)] = std::current_exception();
            }
        });
    }
    for (auto& t : threads) t.join();
    for (auto& e : errors) {
        if (e) std::rethrow_exception(e);
    }
    for (int r = 1; r < world; ++r) EXPECT_TRUE(torch::equal(out[static_cast<size_t>(r)].gradient, out[0].gradient)) << "ranks disagree after the all-reduce";
    return out[0];
}

}  // namespace

// Two ranks (Gloo, as `--nproc 2` runs them) compute the gradient one process computes with the
// combined batch, every loss on (ranks sum their routing counts); gradient accumulation computes
// the one-micro-batch gradient with the batch-level terms off (it computes balance and temporal
// per micro-batch, docs/training.md). Checked in float64 on one step, where the only
// difference left is the order of sums (kReorderBound64).
TEST(Trainer, DataParallelRanksAndAccumulationComputeTheCombinedBatchsGradient) {
    const ModelConfig c = tiny_config();
    const LossWeights w = named_config_load("tiny").losses;
    Tokenizer tok(test::test_tokenizer());
    const std::vector<int32_t> tokens = tokens_load_pretrain(data_train(), tok);
    TrainHyper h = named_config_load("tiny").train;
    h.batch_size = 8;
    h.seq_len = 32;
    test::TempDir dir;
    const StepResult one = ranks_gradient(c, w, tokens, h, 1, "");
    const StepResult two = ranks_gradient(c, w, tokens, h, 2, "file:" + dir.file("rdzv"));
    const double d_two = relative_difference(two.gradient, one.gradient);
    const double d_loss = std::abs(two.metrics[1].item<double>() - one.metrics[1].item<double>()) / one.metrics[1].item<double>();

    LossWeights nb = w;
    nb.lambda_balance = 0;
    nb.lambda_temporal = 0;
    TrainHyper h_acc = h;
    h_acc.grad_accum = 2;
    const StepResult whole = ranks_gradient(c, nb, tokens, h, 1, "");
    const StepResult accum = ranks_gradient(c, nb, tokens, h_acc, 1, "");
    const double d_acc = relative_difference(accum.gradient, whole.gradient);

    // What the bound must catch: the gradient of another batch of the same run.
    TrainHyper other = h;
    other.seed = h.seed + 1;
    const double d_other = relative_difference(ranks_gradient(c, w, tokens, other, 1, "").gradient, one.gradient);
    std::printf("float64 step gradient, |a - b| / |b|: 2 ranks %.3g, 2 micro-batches %.3g (total loss %.3g), another batch %.3g; bound %.0e\n",
                d_two, d_acc, d_loss, d_other, kReorderBound64);
    EXPECT_LE(d_two, kReorderBound64) << "2 ranks differ from 1 process with the combined batch";
    EXPECT_LE(d_loss, kReorderBound64) << "the ranks' mean loss differs from the combined batch's";
    EXPECT_LE(d_acc, kReorderBound64) << "gradient accumulation differs from one big micro-batch";
    EXPECT_GT(d_other, 1e3 * kReorderBound64) << "another batch's gradient is within the bound: the check would catch nothing";
}

// The launcher: `--nproc 2` starts two workers that rendezvous, train and write one checkpoint
// (that they compute the combined batch's gradient is checked above, on the same step function).
TEST(Trainer, TwoProcessRunTrainsAndSavesOneCheckpoint) {
    test::TempDir dir;
    ASSERT_EQ(run_chronos(pretrain_args(dir.file("two"), 2, "--nproc 2")), 0);
    nlohmann::json state = nlohmann::json::parse(file_read_all(dir.file("two/trainer_state.json")));
    EXPECT_EQ(state.at("step").get<int64_t>(), 2);
    EXPECT_EQ(state.at("tokens_seen").get<int64_t>(), 2 * 8 * 32);
    std::vector<std::string> lines;
    std::istringstream log(file_read_all(dir.file("two.log.jsonl")));
    for (std::string line; std::getline(log, line);) lines.push_back(line);
    ASSERT_EQ(lines.size(), 2u) << "one log record per step, from rank 0 only";
    EXPECT_TRUE(std::isfinite(nlohmann::json::parse(lines[1]).at("loss").get<double>()));
    ChronosModel m = model_load(dir.file("two"));  // a complete, loadable checkpoint
    EXPECT_EQ(m->config.num_hidden_layers, 2);
    // A worker that cannot start its run stops the launch with a failure.
    EXPECT_NE(run_chronos(pretrain_args(dir.file("bad"), 2, "--nproc 3")), 0) << "batch 8 is not divisible by 3 ranks";
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
