// test_alignment.cpp: the alignment stages. Finite-difference gradients (float64) of the SFT,
// DPO, ORPO, GRPO and distillation losses and of the router KL anchor; DPO's value where policy
// and reference agree (log 2); GRPO's advantages and clip; the KV-cached sampler against full
// recomputation; SFT's mask on a crafted batch of real chat encodings; through the command: the
// anchor's gradient reaches the router and holds it closer to the starting model than weight 0
// does, each stage resumed equals the uninterrupted run byte for byte, and bad input is refused
// with one line.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <fstream>

#include "core/file_io.h"
#include "gradient_check.h"
#include "test_helpers.h"
#include "tokenizer/chat_template.h"
#include "train/alignment_data.h"
#include "train/alignment_losses.h"
#include "train/checkpoint_io.h"
#include "train/rollout.h"

using namespace chronos;
using chronos::test::check_gradient;

namespace {

torch::Tensor randn64(std::vector<int64_t> shape) { return torch::randn(shape, torch::kFloat64); }

TEST(AlignmentLosses, SftGradientIsTheMaskedNll) {
    torch::manual_seed(1);
    torch::Tensor targets = torch::randint(0, 7, {2, 5}, torch::kInt64);
    torch::Tensor mask = torch::tensor({1, 1, 0, 1, 0, 0, 1, 1, 1, 0}, torch::kFloat64).view({2, 5});
    check_gradient([&](const torch::Tensor& z) { return loss_sft(z, targets, mask); }, randn64({2, 5, 7}), "sft");
    // No gradient reaches an unmasked position.
    torch::Tensor z = randn64({2, 5, 7}).set_requires_grad(true);
    loss_sft(z, targets, mask).backward();
    EXPECT_EQ(z.grad().select(1, 2).select(0, 0).abs().sum().item<double>(), 0.0);
    EXPECT_EQ(z.grad().select(1, 4).abs().sum().item<double>(), 0.0);
}

TEST(AlignmentLosses, DpoGradientAndItsValueWherePolicyAndReferenceAgree) {
    torch::manual_seed(2);
    torch::Tensor pr = randn64({4}), rc = randn64({4}), rr = randn64({4});
    check_gradient([&](const torch::Tensor& pc) { return loss_dpo(pc, pr, rc, rr, 0.7).loss; }, randn64({4}), "dpo, chosen");
    torch::Tensor pc = randn64({4});
    check_gradient([&](const torch::Tensor& r) { return loss_dpo(pc, r, rc, rr, 0.7).loss; }, randn64({4}), "dpo, rejected");
    // Identical policy and reference: z = 0, -log sigmoid(0) = log 2 exactly; beta -> 0 likewise.
    EXPECT_DOUBLE_EQ(loss_dpo(pc, pr, pc, pr, 0.7).loss.item<double>(), std::log(2.0));
    EXPECT_NEAR(loss_dpo(pc, pr, rc, rr, 1e-12).loss.item<double>(), std::log(2.0), 1e-11);
    // The reference gets no gradient.
    torch::Tensor ref = rc.clone().set_requires_grad(true);
    torch::Tensor p = pc.clone().set_requires_grad(true);
    loss_dpo(p, pr, ref, rr, 0.7).loss.backward();
    EXPECT_FALSE(ref.grad().defined() && ref.grad().abs().sum().item<double>() > 0);
}

TEST(AlignmentLosses, OrpoGradient) {
    torch::manual_seed(3);
    // Mean token log-probs are negative; keep them away from 0 where log odds diverge.
    torch::Tensor mr = -0.2 - torch::rand({4}, torch::kFloat64) * 3;
    torch::Tensor nll = torch::tensor(2.5, torch::kFloat64);
    check_gradient([&](const torch::Tensor& mc) { return loss_orpo(mc, mr, nll, 0.3).loss; }, -0.2 - torch::rand({4}, torch::kFloat64) * 3, "orpo");
    torch::Tensor mc = -0.2 - torch::rand({4}, torch::kFloat64) * 3;
    check_gradient([&](const torch::Tensor& r) { return loss_orpo(mc, r, nll, 0.3).loss; }, mr, "orpo, rejected");
    check_gradient([&](const torch::Tensor& n) { return loss_orpo(mc, mr, n.sum(), 0.3).loss; }, nll.view({1}), "orpo, nll");
}

TEST(AlignmentLosses, DistillGradientAndItsLimits) {
    torch::manual_seed(5);
    torch::Tensor teacher = randn64({2, 3, 6}), targets = torch::randint(0, 6, {2, 3}, torch::kInt64);
    torch::Tensor valid = torch::tensor({1, 1, 1, 1, 0, 1}, torch::kBool).view({2, 3});
    check_gradient([&](const torch::Tensor& z) { return loss_distill(z, teacher, targets, valid, 0.7, 2.0); }, randn64({2, 3, 6}), "distill");
    // alpha 0 is the cross-entropy on the valid tokens; a student equal to the teacher has no soft term.
    torch::Tensor z = randn64({2, 3, 6});
    torch::Tensor ce = -torch::log_softmax(z, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1);
    EXPECT_NEAR(loss_distill(z, teacher, targets, valid, 0.0, 2.0).item<double>(), (ce * valid).sum().item<double>() / 5, 1e-12);
    EXPECT_NEAR(loss_distill(teacher, teacher, targets, valid, 1.0, 3.0).item<double>(), 0.0, 1e-12);
}

TEST(AlignmentLosses, RouterKlAnchorGradientReachesTheRouter) {
    torch::manual_seed(4);
    const int64_t L = 2, B = 2, T = 3, E = 5;
    std::vector<torch::Tensor> ref;
    for (int64_t l = 0; l < L; ++l) ref.push_back(torch::softmax(randn64({B, T, E}), -1));
    torch::Tensor valid = torch::tensor({1, 1, 0, 1, 0, 1}, torch::kBool).view({B, T});
    auto f = [&](const torch::Tensor& z) {  // z [L, B, T, E]: the router logits
        std::vector<torch::Tensor> probs;
        for (int64_t l = 0; l < L; ++l) probs.push_back(torch::softmax(z[l], -1));
        return loss_router_kl(ref, probs, valid);
    };
    check_gradient(f, randn64({L, B, T, E}), "router kl");
    // Zero where the routers agree, positive elsewhere.
    torch::Tensor same = torch::stack(ref).log();
    EXPECT_NEAR(f(same).item<double>(), 0.0, 1e-15);
    EXPECT_GT(f(randn64({L, B, T, E})).item<double>(), 0.0);
}

TEST(AlignmentLosses, GrpoGradient) {
    torch::manual_seed(6);
    const int64_t N = 4, T = 5;
    torch::Tensor mask = torch::tensor({1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 1, 1, 0}, torch::kFloat64).view({N, T});
    torch::Tensor adv = torch::tensor({1.2, -0.7, 0.5, -1.1}, torch::kFloat64);
    torch::Tensor logp = -0.3 - torch::rand({N, T}, torch::kFloat64) * 2, ref = -0.3 - torch::rand({N, T}, torch::kFloat64) * 2;
    // Ratios spread over [0.6, 1.5] so that both sides of the clip at 0.8 / 1.2 are exercised;
    // none within 1e-3 of a kink, where central differences with h = 1e-6 would straddle it.
    torch::Tensor ratio = 0.6 + torch::rand({N, T}, torch::kFloat64) * 0.9;
    ratio = torch::where((ratio - 0.8).abs() < 1e-3, ratio + 3e-3, ratio);
    ratio = torch::where((ratio - 1.2).abs() < 1e-3, ratio + 3e-3, ratio);
    torch::Tensor old = logp - ratio.log();
    check_gradient([&](const torch::Tensor& lp) { return loss_grpo(lp, old, ref, mask, adv, 0.2, 0.04).loss; }, logp, "grpo");
    check_gradient([&](const torch::Tensor& lp) { return loss_grpo(lp, old, torch::Tensor(), mask, adv, 0.2, 0.0).loss; }, logp, "grpo, beta 0");
    // The k3 estimator is 0 where policy and reference agree, and > 0 elsewhere.
    EXPECT_NEAR(loss_grpo(logp, logp, logp, mask, adv, 0.2, 1.0).kl.item<double>(), 0.0, 1e-15);
    EXPECT_GT(loss_grpo(logp, logp, ref, mask, adv, 0.2, 1.0).kl.item<double>(), 0.0);
}

// Clipping: a token whose ratio is already above 1 + eps gets no push further up from a positive
// advantage, while a negative advantage still pulls it down (the min keeps the pessimistic side).
TEST(AlignmentLosses, GrpoClipStopsOnlyTheMoveAlreadyTaken) {
    torch::Tensor old = torch::zeros({2, 1}, torch::kFloat64), mask = torch::ones({2, 1}, torch::kFloat64);
    torch::Tensor logp = torch::full({2, 1}, std::log(1.5), torch::kFloat64).set_requires_grad(true);
    GrpoLoss l = loss_grpo(logp, old, torch::Tensor(), mask, torch::tensor({1.0, -1.0}, torch::kFloat64), 0.2, 0.0);
    l.loss.backward();
    EXPECT_EQ(logp.grad()[0][0].item<double>(), 0.0);
    EXPECT_NEAR(logp.grad()[1][0].item<double>(), 0.5 * 1.5, 1e-12);  // d/dlogp of -(-ratio)/2 = ratio / 2
    EXPECT_DOUBLE_EQ(l.clip_fraction.item<double>(), 1.0);
}

// A group with one reward-1 completion: it alone gets a positive advantage, the others share one
// negative value, and the loss's gradient raises its tokens' log-probs only. Equal rewards give
// advantages 0.
TEST(AlignmentLosses, GrpoOneRewardedCompletionGetsTheOnlyPositiveAdvantage) {
    torch::Tensor rewards = torch::tensor({0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0}, torch::kFloat64).view({2, 4});
    torch::Tensor a = grpo_advantages(rewards);
    for (int64_t i = 0; i < 4; ++i) {
        if (i == 2) {
            EXPECT_GT(a[0][i].item<double>(), 0.0);
        } else {
            EXPECT_LT(a[0][i].item<double>(), 0.0);
            EXPECT_DOUBLE_EQ(a[0][i].item<double>(), a[0][0].item<double>());
        }
        EXPECT_EQ(a[1][i].item<double>(), 0.0);
    }
    // mean 1/4, population std sqrt(3)/4: (1 - 1/4) / (sqrt(3)/4) = sqrt(3), less the eps's share.
    EXPECT_NEAR(a[0][2].item<double>(), std::sqrt(3.0), 1e-3);
    EXPECT_NEAR(a[0].sum().item<double>(), 0.0, 1e-12);
    torch::Tensor logp = torch::full({4, 3}, -1.0, torch::kFloat64).set_requires_grad(true);
    loss_grpo(logp, logp.detach(), torch::Tensor(), torch::ones({4, 3}, torch::kFloat64), a[0], 0.2, 0.0).loss.backward();
    for (int64_t i = 0; i < 4; ++i) {
        for (int64_t t = 0; t < 3; ++t) {
            if (i == 2) {
                EXPECT_LT(logp.grad()[i][t].item<double>(), 0.0);  // descending the loss raises log p
            } else {
                EXPECT_GT(logp.grad()[i][t].item<double>(), 0.0);
            }
        }
    }
}

// The sampler: greedy is the argmax; top-p below the largest probability keeps only the argmax;
// at temperature 1 the frequencies of 20000 draws match the softmax within 5 standard errors
// (sqrt(p (1 - p) / 20000) <= 0.0036, so 0.018: a wrong temperature or off-by-one in the
// cumulative search moves some share by far more).
TEST(Rollout, SamplerDrawsFromTheSoftmax) {
    torch::Tensor logits = torch::tensor({0.5, 2.0, -1.0, 1.0}, torch::kFloat32);
    std::mt19937_64 rng(11);
    EXPECT_EQ(sample_token(logits, {1, 0.0, 1.0}, rng), 1);
    for (int i = 0; i < 50; ++i) EXPECT_EQ(sample_token(logits, {1, 1.0, 0.3}, rng), 1);
    torch::Tensor p = torch::softmax(logits.to(torch::kFloat64), 0);
    std::vector<double> count(4, 0);
    const int n = 20000;
    for (int i = 0; i < n; ++i) count[static_cast<size_t>(sample_token(logits, {1, 1.0, 1.0}, rng))] += 1;
    for (int v = 0; v < 4; ++v) EXPECT_NEAR(count[static_cast<size_t>(v)] / n, p[v].item<double>(), 0.018) << "token " << v;
    // Top-p 0.9: the nucleus is {1, 3, 0} (mass 0.61 + 0.22 + 0.14 >= 0.9); token 2 never drawn.
    for (int i = 0; i < 2000; ++i) EXPECT_NE(sample_token(logits, {1, 1.0, 0.9}, rng), 2);
}

// The mask of a crafted two-turn conversation covers exactly the assistant replies (content
// and <|im_end|>), shifted onto the targets; padding rows add nothing.
TEST(AlignmentData, SftMaskCoversExactlyTheAssistantReplies) {
    Tokenizer tok(test::test_tokenizer());
    SftRecord r;
    r.conversations = {{"user", "What is two plus two?"}, {"assistant", "Four."}, {"user", "And three?"}, {"assistant", "Six."}};
    int64_t dropped = 0;
    auto ex = sft_examples(tok, {r}, 256, &dropped);
    ASSERT_EQ(ex.size(), 1u);
    ASSERT_EQ(dropped, 0);
    SftRecord shorter;
    shorter.conversations = {{"user", "Hi"}, {"assistant", "Hello"}};
    auto ex2 = sft_examples(tok, {shorter}, 256, &dropped);
    StageBatch b = stage_batch({&ex[0], &ex2[0]});
    const auto& ids = ex[0].ids;
    ASSERT_EQ(b.ids.size(1), static_cast<int64_t>(ids.size()));
    // Collect the targets the mask selects in row 0: they must spell the two replies, each
    // followed by <|im_end|>.
    std::vector<int32_t> picked;
    for (int64_t t = 0; t + 1 < static_cast<int64_t>(ids.size()); ++t) {
        if (b.mask[0][t].item<float>() == 1.0f) picked.push_back(ids[static_cast<size_t>(t + 1)]);
    }
    std::vector<int32_t> want = tok.encode("Four.");
    want.push_back(kTokenImEnd);
    std::vector<int32_t> six = tok.encode("Six.");
    want.insert(want.end(), six.begin(), six.end());
    want.push_back(kTokenImEnd);
    EXPECT_EQ(picked, want);
    // Row 1 is padded: no mask on its padding, pad ids after its end.
    const int64_t n2 = static_cast<int64_t>(ex2[0].ids.size());
    EXPECT_EQ(b.mask[1].narrow(0, n2 - 1, b.mask.size(1) - (n2 - 1)).sum().item<float>(), 0.0f);
    EXPECT_EQ(b.ids[1].narrow(0, n2, b.ids.size(1) - n2).ne(kTokenPad).sum().item<int64_t>(), 0);
    // A conversation cut before its reply is dropped and counted.
    ex = sft_examples(tok, {r}, 4, &dropped);
    EXPECT_TRUE(ex.empty());
    EXPECT_EQ(dropped, 1);
}

TEST(AlignmentData, SampleOrderVisitsEveryExampleOncePerEpoch) {
    for (int64_t epoch = 0; epoch < 3; ++epoch) {
        std::vector<int> seen(37, 0);
        for (int64_t i = 0; i < 37; ++i) seen[static_cast<size_t>(stage_sample_index(9, 37, epoch * 37 + i))]++;
        EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), 37);
    }
    EXPECT_NE(stage_sample_index(9, 37, 0) * 100 + stage_sample_index(9, 37, 1), stage_sample_index(10, 37, 0) * 100 + stage_sample_index(10, 37, 1));
}

// ---------------------------------------------------------------- through the command

int run(const std::string& args, std::string* output = nullptr) {
    const std::string out = std::tmpnam(nullptr);
    const std::string cmd = std::string("CHRONOS_PROGRESS=0 ") + CHRONOS_BIN + " --threads 2 " + args + " > " + out + " 2>&1";
    const int rc = std::system(cmd.c_str());
    if (output) *output = file_read_all(out);
    std::remove(out.c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 255;
}

// The last record of a stage's log (OUT.log.jsonl): its final step, with the held-out figures.
nlohmann::json last_log_record(const std::string& out) {
    std::ifstream log(out + ".log.jsonl");
    std::string line, last;
    while (std::getline(log, line)) last = line;
    return nlohmann::json::parse(last);
}

class Stages : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = new test::TempDir();
        // A briefly pretrained tiny model: its router has preferences for the anchor to keep.
        ASSERT_EQ(run(fmt::format("-q train pretrain --config tiny --data {}/pretrain.small.jsonl --tokenizer {} --out {} --steps 30 "
                                  "--batch-size 8 --seq-len 32 --eval-interval 0",
                                  test::test_data_dir(), test::test_tokenizer(), from())),
                  0);
        ASSERT_EQ(run(fmt::format("-q init --config tiny --tokenizer {} --seed 3 --out {}", test::test_tokenizer(), student())), 0);
    }
    static void TearDownTestSuite() { delete dir_; }
    static std::string from() { return dir_->file("from"); }
    static std::string file(const std::string& name) { return dir_->file(name); }
    static std::string stage_args(const std::string& stage, const std::string& out, int steps, const std::string& extra = "--eval-interval 0") {
        const std::string data = stage == "sft" ? "sft" : stage == "distill" ? "pretrain" : stage == "grpo" ? "prompts" : "preference";
        // distill: the briefly pretrained model teaches a fresh init of the same config
        const std::string from_dir = stage == "distill" ? student() : from();
        // grpo: two updates per rollout, so that the clipped ratio acts in the resumed run too
        const std::string teacher = stage == "distill" ? " --teacher " + from() : stage == "grpo" ? " --group 4 --max-new-tokens 8 --updates 2" : "";
        return fmt::format("-q train {} --from {} --data {}/{}.train.jsonl --out {} --steps {} --batch-size 4 --seq-len 64 "
                           "--warmup-steps 10{} {}",
                           stage, from_dir, test::prepared_dir(), data, out, steps, teacher, extra);
    }
    static std::string student() { return dir_->file("student"); }
    static test::TempDir* dir_;
};
test::TempDir* Stages::dir_ = nullptr;

TEST_F(Stages, ResumeOfEachStageEqualsTheUninterruptedRun) {
    for (const char* stage : {"sft", "dpo", "orpo", "grpo", "distill"}) {
        const std::string straight = file(std::string(stage) + "-straight"), resumed = file(std::string(stage) + "-resumed");
        ASSERT_EQ(run(stage_args(stage, straight, 6)), 0) << stage;
        ASSERT_EQ(run(stage_args(stage, resumed, 3)), 0) << stage;
        ASSERT_EQ(run(stage_args(stage, resumed, 6, "--eval-interval 0 --resume")), 0) << stage;
        EXPECT_EQ(file_read_all(straight + "/model.safetensors"), file_read_all(resumed + "/model.safetensors")) << stage;
        EXPECT_EQ(file_read_all(straight + "/optimizer.safetensors"), file_read_all(resumed + "/optimizer.safetensors")) << stage;
        // The checkpoint records its stage, parent and data, after the parent's chain.
        const nlohmann::json state = nlohmann::json::parse(file_read_all(straight + "/trainer_state.json"));
        const bool distill = stage == std::string("distill");
        ASSERT_EQ(state["stages"].size(), 2u) << state.dump();
        EXPECT_EQ(state["stages"][0]["stage"], distill ? "init" : "pretrain");
        EXPECT_EQ(state["stages"][1]["stage"], stage);
        EXPECT_EQ(state["stages"][1]["parent"], distill ? student() : from());
        const char* data = stage == std::string("sft")    ? "sft.train"
                           : stage == std::string("grpo") ? "prompts.train"
                           : distill                      ? "pretrain.train"
                                                          : "preference.train";
        EXPECT_NE(state["stages"][1]["data"].get<std::string>().find(data), std::string::npos);
        // A normal checkpoint: the inference side opens it.
        EXPECT_EQ(run("inspect " + straight), 0) << stage;
    }
    // Resuming as another stage or from another parent is refused.
    std::string out;
    EXPECT_NE(run(stage_args("orpo", file("sft-resumed"), 8, "--eval-interval 0 --resume"), &out), 0);
    EXPECT_NE(out.find("is not a orpo stage started from"), std::string::npos) << out;
}

// The anchor holds the router near the starting model's: with weight 5 the held-out router KL
// after 20 SFT steps is below the unanchored run's (same data, order and seed).
TEST_F(Stages, RouterAnchorHoldsTheRouterCloserToTheStartingModel) {
    double drift[2] = {0, 0};
    const double weights[2] = {0.0, 5.0};
    for (int i = 0; i < 2; ++i) {
        const std::string out = file(fmt::format("anchor-{}", i));
        ASSERT_EQ(run(stage_args("sft", out, 20, fmt::format("--router-kl {} --lr 0.003 --eval-interval 20 --eval-batches 4 --validation {}/sft.validation.jsonl",
                                                             weights[i], test::prepared_dir()))),
                  0);
        const nlohmann::json rec = last_log_record(out);
        ASSERT_TRUE(rec.contains("val_router_drift")) << rec.dump();
        drift[i] = rec["val_router_drift"].get<double>();
        if (i == 1) {
            EXPECT_GT(rec["router_kl"].get<double>(), 0.0) << "the anchor measured nothing";
        }
    }
    std::printf("held-out router KL from the starting model after 20 SFT steps: weight 0 %.5f, weight 5 %.5f\n", drift[0], drift[1]);
    EXPECT_GT(drift[0], 0.0);
    EXPECT_LT(drift[1], drift[0]);
}

// `eval responses` gives a stage's held-out figures for any checkpoint; they agree with the
// stage's own held-out evaluation of the same model on the same records.
TEST_F(Stages, EvalResponsesMatchesTheStagesOwnEvaluation) {
    const std::string out = file("eval-sft");
    const std::string val = test::prepared_dir() + "/sft.validation.jsonl";
    ASSERT_EQ(run(stage_args("sft", out, 4, fmt::format("--eval-interval 4 --eval-batches 2 --validation {}", val))), 0);
    const nlohmann::json rec = last_log_record(out);
    std::string text;
    // The stage evaluated 2 batches of its --batch-size 4; eval responses takes batches of 8.
    ASSERT_EQ(run(fmt::format("eval responses --model {} --reference {} --data {} --seq-len 64 --batches 1 --json", out, from(), val), &text), 0) << text;
    const nlohmann::json r = nlohmann::json::parse(text);
    EXPECT_EQ(r["examples"], 8);
    std::printf("response CE %.9g (eval responses) vs %.9g (the stage), router drift %.9g vs %.9g\n", r["val_response_ce"].get<double>(),
                rec["val_response_ce"].get<double>(), r["val_router_drift"].get<double>(), rec["val_router_drift"].get<double>());
    // Same model, records and sums: equal up to float32 summation order (batches of 4 vs 8).
    EXPECT_NEAR(r["val_response_ce"].get<double>(), rec["val_response_ce"].get<double>(), 1e-4 * rec["val_response_ce"].get<double>());
    EXPECT_NEAR(r["val_router_drift"].get<double>(), rec["val_router_drift"].get<double>(), 1e-3 * rec["val_router_drift"].get<double>() + 1e-6);
    ASSERT_EQ(run(fmt::format("eval responses --model {} --data {}/preference.validation.jsonl --batches 2 --json", out, test::prepared_dir()), &text), 0)
        << text;
    const double acc = nlohmann::json::parse(text)["val_preference_accuracy"].get<double>();
    EXPECT_GE(acc, 0.0);
    EXPECT_LE(acc, 1.0);
}

// The KV-cached greedy decoder follows what recomputing the whole sequence each step gives:
// along the cached completion, each token it took is the full recomputation's argmax, or within
// float32 summation-order noise of it (the two orders differ by at most ~n u |x| per dot
// product of length n <= 2048, u = 6e-8: 1e-4 relative covers it). A wrong cache position or
// a row attending to another shifts logits by O(1).
TEST_F(Stages, CachedDecodingEqualsFullRecomputation) {
    Checkpoint ck = checkpoint_open(from());
    ChronosModel model(ck.config, ck.losses);
    model_copy_weights(model, ck);
    model->eval();
    Tokenizer tok(test::test_tokenizer());
    std::vector<PromptRecord> records = prompts_load(test::prepared_dir() + "/prompts.validation.jsonl");
    records.resize(std::min<size_t>(records.size(), 6));
    const ExactMatchResult r = exact_match_eval(model, tok, records, 10);
    torch::NoGradGuard ng;
    int64_t checked = 0;
    for (size_t i = 0; i < records.size(); ++i) {
        std::vector<int64_t> ids(r.prompts[i].begin(), r.prompts[i].end());
        ASSERT_FALSE(r.completions[i].empty());
        for (int32_t t : r.completions[i]) {
            torch::Tensor logits = model->forward(torch::tensor(ids, torch::kInt64).view({1, -1})).logits[0][-1].to(torch::kFloat64);
            const double top = logits.max().item<double>();
            EXPECT_LE(top - logits[t].item<double>(), 1e-4 * (1 + std::abs(top))) << "record " << i << " token " << ids.size();
            ids.push_back(t);
            ++checked;
        }
    }
    EXPECT_GT(checked, 6);
}

// `eval reward` scores what the stage's own held-out evaluation scored, on the same prompts.
TEST_F(Stages, EvalRewardMatchesTheGrpoEvaluation) {
    const std::string out = file("eval-grpo");
    const std::string val = test::prepared_dir() + "/prompts.validation.jsonl";
    ASSERT_EQ(run(stage_args("grpo", out, 2, fmt::format("--eval-interval 2 --eval-prompts 8 --validation {}", val))), 0);
    const nlohmann::json rec = last_log_record(out);
    ASSERT_TRUE(rec.contains("val_exact_match")) << rec.dump();
    EXPECT_GT(rec["rollout_tok_s"].get<double>(), 0.0);
    std::string text;
    ASSERT_EQ(run(fmt::format("eval reward --model {} --data {} --limit 8 --max-new-tokens 8 --json", out, val), &text), 0) << text;
    const nlohmann::json r = nlohmann::json::parse(text);
    EXPECT_EQ(r["prompts"], 8);
    EXPECT_EQ(r["exact_match"].get<double>(), rec["val_exact_match"].get<double>());
    EXPECT_EQ(r["format"].get<double>(), rec["val_format"].get<double>());
}

TEST_F(Stages, BadInputIsRefusedWithOneLine) {
    std::string out;
    // A preference record without "chosen".
    const std::string bad = file("bad.jsonl");
    std::ofstream(bad) << R"({"prompt": "What is the capital of France?", "rejected": "Lyon"})" << "\n";
    EXPECT_EQ(run(fmt::format("train dpo --from {} --data {} --out {} --steps 1", from(), bad, file("bad-out")), &out), 1);
    EXPECT_NE(out.find("chronos: error:"), std::string::npos) << out;
    EXPECT_NE(out.find("chosen"), std::string::npos) << out;
    // --from a half-written checkpoint (weights missing).
    const std::string half = file("half");
    dir_create(half);
    std::filesystem::copy_file(from() + "/config.json", half + "/config.json");
    EXPECT_EQ(run(fmt::format("train sft --from {} --data {}/sft.train.jsonl --out {} --steps 1", half, test::prepared_dir(), file("half-out")), &out), 1);
    EXPECT_NE(out.find("chronos: error:"), std::string::npos) << out;
    EXPECT_FALSE(std::filesystem::exists(file("half-out")));
    // A teacher with another vocabulary.
    const std::string other = file("other-vocab");
    ASSERT_EQ(run(fmt::format("-q init --config tiny --vocab-size 300 --out {}", other)), 0);
    EXPECT_EQ(run(fmt::format("train distill --from {} --teacher {} --data {}/pretrain.train.jsonl --out {} --steps 1", from(), other,
                              test::prepared_dir(), file("other-out")), &out), 1);
    EXPECT_NE(out.find("does not share"), std::string::npos) << out;
    EXPECT_FALSE(std::filesystem::exists(file("other-out")));
    // A prompt without "answer".
    const std::string noanswer = file("noanswer.jsonl");
    std::ofstream(noanswer) << R"({"prompt": "What is 2 + 2?"})" << "\n";
    EXPECT_EQ(run(fmt::format("train grpo --from {} --data {} --out {} --steps 1", from(), noanswer, file("noanswer-out")), &out), 1);
    EXPECT_NE(out.find("answer"), std::string::npos) << out;
    EXPECT_FALSE(std::filesystem::exists(file("noanswer-out")));
    // A reward model with another vocabulary.
    EXPECT_EQ(run(fmt::format("train grpo --from {} --reward-model {} --data {}/prompts.train.jsonl --out {} --steps 1", from(), other,
                              test::prepared_dir(), file("rm-out")), &out), 1);
    EXPECT_NE(out.find("does not share"), std::string::npos) << out;
    EXPECT_FALSE(std::filesystem::exists(file("rm-out")));
    // --out equal to --from: the reference would be overwritten.
    EXPECT_EQ(run(fmt::format("train sft --from {} --data {}/sft.train.jsonl --out {} --steps 1", from(), test::prepared_dir(), from()), &out), 1);
    EXPECT_NE(out.find("would replace --from"), std::string::npos) << out;
}

}  // namespace
