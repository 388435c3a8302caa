// stage_trainer.cpp: `chronos train sft|dpo|orpo|grpo|distill` (train_api.h, StageOptions).
// One loop for the five: a padded batch of examples (pairs for DPO and ORPO, chosen rows then
// rejected rows in one forward; windows of plain text for distillation; for GRPO the step's
// sampled completions, grpo.h), the stage's loss (alignment_losses.h) plus the Chronos loss mix
// of the model's config (objective.h, routing_terms) plus lambda_router_kl x KL(reference
// router || router), AdamW, held-out evaluation, atomic checkpoints that --resume continues
// exactly.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>
#include <tuple>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_io.h"
#include "core/progress.h"
#include "data/token_stream.h"
#include "format/trainer_state.h"
#include "train/adamw.h"
#include "train/alignment_data.h"
#include "train/alignment_losses.h"
#include "train/checkpoint_io.h"
#include "train/grpo.h"
#include "train/objective.h"
#include "train/rollout.h"
#include "train/train_api.h"

namespace chronos {

using json = nlohmann::json;

namespace {

bool is_pair_stage(const std::string& stage) { return stage == "dpo" || stage == "orpo"; }

// The examples of one file, cut to seq_len + 1 tokens (GRPO: its prompts).
struct StageData {
    std::vector<StageExample> sft;
    std::vector<PairExample> pairs;
    std::vector<PromptRecord> prompts;
    int64_t size() const { return static_cast<int64_t>(!prompts.empty() ? prompts.size() : sft.empty() ? pairs.size() : sft.size()); }
};

StageData stage_data_load(const std::string& stage, const std::string& path, const Tokenizer& tok, int64_t seq_len, int64_t max_new_tokens = 0) {
    StageData d;
    int64_t dropped = 0;
    if (stage == "grpo") {
        // A prompt must leave room for the completion inside the sequence.
        for (PromptRecord& r : prompts_load(path)) {
            if (static_cast<int64_t>(prompt_ids(tok, r).size()) + max_new_tokens <= seq_len + 1) {
                d.prompts.push_back(std::move(r));
            } else {
                ++dropped;
            }
        }
        if (d.prompts.empty()) fail("{}: no prompt leaves {} new tokens within seq_len {} ({} dropped)", path, max_new_tokens, seq_len, dropped);
        if (dropped > 0) spdlog::info("{}: {} prompt(s) dropped (no room for {} new tokens within seq_len {})", path, dropped, max_new_tokens, seq_len);
        return d;
    }
    if (is_pair_stage(stage)) {
        d.pairs = preference_examples(tok, preference_load(path), seq_len + 1, &dropped);
    } else {
        d.sft = sft_examples(tok, sft_load(path), seq_len + 1, &dropped);
    }
    if (d.size() == 0) fail("{}: no usable record for {} ({} dropped: no reply token within seq_len {})", path, stage, dropped, seq_len);
    if (dropped > 0) spdlog::info("{}: {} record(s) dropped (no reply token within seq_len {})", path, dropped, seq_len);
    return d;
}

// Distillation reads plain text: the token stream cut into consecutive windows of seq_len + 1
// tokens, every token a target.
StageData windows_data(const std::vector<int32_t>& tokens, int64_t seq_len, const std::string& what) {
    StageData d;
    const size_t w = static_cast<size_t>(seq_len + 1);
    for (size_t first = 0; first + w <= tokens.size(); first += static_cast<size_t>(seq_len)) {
        StageExample e;
        e.ids.assign(tokens.begin() + static_cast<std::ptrdiff_t>(first), tokens.begin() + static_cast<std::ptrdiff_t>(first + w));
        e.response.assign(w, 1);
        d.sft.push_back(std::move(e));
    }
    if (d.sft.empty()) fail("{}: fewer than {} tokens: no window to distil on", what, w);
    return d;
}

// The batch of examples `first .. first + rows - 1` in the order `index` gives.
StageBatch batch_of(const StageData& d, const std::vector<int64_t>& picks) {
    std::vector<const StageExample*> rows;
    if (d.sft.empty()) {
        for (int64_t i : picks) rows.push_back(&d.pairs[static_cast<size_t>(i)].chosen);
        for (int64_t i : picks) rows.push_back(&d.pairs[static_cast<size_t>(i)].rejected);
    } else {
        for (int64_t i : picks) rows.push_back(&d.sft[static_cast<size_t>(i)]);
    }
    return stage_batch(rows);
}

// One batch through the stage's objective. `reference` is the frozen starting model (nullptr
// when neither the anchor nor DPO needs it).
struct StageStep {
    torch::Tensor total;                         // what backward() runs on
    double objective = 0, accuracy = NAN, margin = NAN, router_kl = 0;
    double balance = 0, temporal = 0, lookahead = 0;
    double nll_sum = 0, nll_tokens = 0;          // summed response NLL (SFT: all rows; pairs: chosen rows)
    double chosen_wins = 0, pairs = 0;           // summed log-prob of chosen above rejected (no reference)
    int64_t tokens = 0;                          // real (non-pad) tokens
};

StageStep stage_step(const StageOptions& o, ChronosModel& policy, ChronosModel* reference, ChronosModel* teacher, const StageBatch& b,
                     double anchor) {
    const int64_t T = b.ids.size(1) - 1;
    torch::Tensor inputs = b.ids.narrow(1, 0, T), targets = b.ids.narrow(1, 1, T);
    torch::Tensor valid = targets != kTokenPad;
    ForwardOutput out = policy->forward(inputs);
    ForwardOutput ref;
    if (reference) {
        torch::NoGradGuard ng;
        ref = (*reference)->forward(inputs);
    }
    StageStep r;
    r.tokens = valid.sum().item<int64_t>();
    torch::Tensor logp = sequence_logprob(out.logits, targets, b.mask);  // [rows]
    torch::Tensor count = mask_count(b.mask);
    torch::Tensor loss;
    if (o.stage == "distill") {
        torch::Tensor teacher_logits;
        {
            torch::NoGradGuard ng;
            teacher_logits = (*teacher)->forward(inputs).logits;
        }
        loss = loss_distill(out.logits, teacher_logits, targets, valid, o.alpha, o.temperature);
        r.nll_sum = -logp.sum().item<double>();
        r.nll_tokens = count.sum().item<double>();
    } else if (!is_pair_stage(o.stage)) {
        loss = loss_sft(out.logits, targets, b.mask);
        r.nll_sum = -logp.sum().item<double>();
        r.nll_tokens = count.sum().item<double>();
    } else {
        const int64_t B = b.ids.size(0) / 2;
        torch::Tensor lc = logp.narrow(0, 0, B), lr = logp.narrow(0, B, B);
        torch::Tensor nc = count.narrow(0, 0, B), nr = count.narrow(0, B, B);
        r.nll_sum = -lc.sum().item<double>();
        r.nll_tokens = nc.sum().item<double>();
        r.chosen_wins = (lc.detach() > lr.detach()).sum().item<double>();
        r.pairs = static_cast<double>(B);
        PreferenceLoss pl;
        if (o.stage == "dpo") {
            torch::Tensor ref_logp = sequence_logprob(ref.logits, targets, b.mask);
            pl = loss_dpo(lc, lr, ref_logp.narrow(0, 0, B), ref_logp.narrow(0, B, B), o.beta);
        } else {
            const torch::Tensor mean_c = lc / nc.to(lc.scalar_type()), mean_r = lr / nr.to(lr.scalar_type());
            pl = loss_orpo(mean_c, mean_r, -lc.sum() / nc.sum().to(lc.scalar_type()), o.orpo_lambda);
        }
        loss = pl.loss;
        r.accuracy = pl.accuracy.item<double>();
        r.margin = pl.margin.item<double>();
    }
    r.objective = loss.item<double>();
    RoutingTerms rt = routing_terms(policy, out, valid, loss);
    r.total = rt.total;
    r.balance = terms_mean(rt.balance);
    r.temporal = terms_mean(rt.temporal);
    r.lookahead = rt.lookahead.empty() ? 0.0 : lookahead_total(rt.lookahead).item<double>();
    if (reference) {
        torch::Tensor kl = loss_router_kl(ref.router_probs, out.router_probs, valid);
        r.router_kl = kl.item<double>();
        if (anchor > 0) r.total = r.total + anchor * kl;
    }
    return r;
}

// Held-out figures on the first eval_batches x batch_size validation examples, in file order:
// the response cross-entropy (SFT: the assistant tokens; pairs: the chosen replies), the share
// of pairs whose chosen reply has the larger summed log-prob (preference accuracy), the stage
// objective, and the router's drift (KL from the reference, mean over tokens and layers).
json stage_eval(const StageOptions& o, ChronosModel& policy, ChronosModel* reference, ChronosModel* teacher, const StageData& val) {
    torch::NoGradGuard ng;
    policy->eval();
    double nll = 0, tokens = 0, wins = 0, pairs = 0, objective = 0, drift = 0, weight = 0, drift_tokens = 0;
    const int64_t n = std::min(val.size(), o.eval_batches * o.batch_size);
    for (int64_t first = 0; first < n; first += o.batch_size) {
        std::vector<int64_t> picks;
        for (int64_t i = first; i < std::min(n, first + o.batch_size); ++i) picks.push_back(i);
        StageStep s = stage_step(o, policy, reference, teacher, batch_of(val, picks), 0.0);
        nll += s.nll_sum;
        tokens += s.nll_tokens;
        wins += s.chosen_wins;
        pairs += s.pairs;
        const double rows = static_cast<double>(picks.size());
        objective += s.objective * rows;
        weight += rows;
        // The batch's KL is a mean over its real tokens: weighting by them gives the mean over all.
        drift += s.router_kl * static_cast<double>(s.tokens);
        drift_tokens += static_cast<double>(s.tokens);
    }
    policy->train();
    json j{{"val_response_ce", tokens > 0 ? nll / tokens : NAN}, {"val_objective", objective / weight}};
    if (reference) j["val_router_drift"] = drift / drift_tokens;
    if (pairs > 0) j["val_preference_accuracy"] = wins / pairs;
    return j;
}

// GRPO's held-out figures: greedy completions of the first eval_prompts validation prompts
// scored by exact match (the reward the stage trains for) and format, and the router's drift
// from the reference on those prompt + completion rows.
json grpo_eval(const StageOptions& o, ChronosModel& policy, ChronosModel& reference, const Tokenizer& tok, const StageData& val) {
    torch::NoGradGuard ng;
    const std::vector<PromptRecord> first(val.prompts.begin(),
                                          val.prompts.begin() + std::min<int64_t>(o.eval_prompts, static_cast<int64_t>(val.prompts.size())));
    const ExactMatchResult em = exact_match_eval(policy, tok, first, o.max_new_tokens);
    double drift = 0, tokens = 0;
    policy->eval();
    for (size_t start = 0; start < first.size(); start += static_cast<size_t>(o.batch_size)) {
        std::vector<StageExample> rows;
        for (size_t i = start; i < std::min(first.size(), start + static_cast<size_t>(o.batch_size)); ++i) {
            StageExample e;
            e.ids = em.prompts[i];
            e.ids.insert(e.ids.end(), em.completions[i].begin(), em.completions[i].end());
            e.response.assign(e.ids.size(), 1);
            rows.push_back(std::move(e));
        }
        std::vector<const StageExample*> ptrs;
        for (const auto& e : rows) ptrs.push_back(&e);
        const StageBatch b = stage_batch(ptrs);
        const int64_t T = b.ids.size(1) - 1;
        torch::Tensor inputs = b.ids.narrow(1, 0, T), valid = b.ids.narrow(1, 1, T) != kTokenPad;
        const double n = valid.sum().item<double>();
        drift += loss_router_kl(reference->forward(inputs).router_probs, policy->forward(inputs).router_probs, valid).item<double>() * n;
        tokens += n;
    }
    policy->train();
    return json{{"val_exact_match", em.exact_match}, {"val_format", em.format}, {"val_router_drift", tokens > 0 ? drift / tokens : 0.0},
                {"val_prompts", em.records}};
}

// One GRPO update on a rollout: the clipped surrogate against old_logp (the sampling policy's
// token log-probs, temperature-scaled as sampled), k3 KL to the reference, the Chronos terms
// and the router anchor.
struct GrpoUpdate {
    torch::Tensor total;
    double objective = 0, kl = 0, clip_fraction = 0, router_kl = 0, balance = 0, temporal = 0, lookahead = 0;
};

GrpoUpdate grpo_update(const StageOptions& o, ChronosModel& policy, const GrpoRollout& ro, const torch::Tensor& old_logp,
                       const torch::Tensor& ref_logp, const std::vector<torch::Tensor>& ref_router, double anchor, torch::Tensor* logp_out) {
    const int64_t T = ro.batch.ids.size(1) - 1;
    torch::Tensor inputs = ro.batch.ids.narrow(1, 0, T), targets = ro.batch.ids.narrow(1, 1, T);
    torch::Tensor valid = targets != kTokenPad;
    ForwardOutput out = policy->forward(inputs);
    torch::Tensor logp = token_logprob(out.logits / o.sample_temperature, targets);
    if (logp_out) *logp_out = logp.detach();
    const GrpoLoss gl = loss_grpo(logp, old_logp.defined() ? old_logp : logp.detach(), ref_logp, ro.batch.mask, ro.advantages, o.clip_eps, o.kl_beta);
    GrpoUpdate u;
    u.objective = gl.loss.item<double>();
    u.kl = gl.kl.item<double>();
    u.clip_fraction = gl.clip_fraction.item<double>();
    RoutingTerms rt = routing_terms(policy, out, valid, gl.loss);
    u.total = rt.total;
    u.balance = terms_mean(rt.balance);
    u.temporal = terms_mean(rt.temporal);
    u.lookahead = rt.lookahead.empty() ? 0.0 : lookahead_total(rt.lookahead).item<double>();
    if (!ref_router.empty()) {
        torch::Tensor kl = loss_router_kl(ref_router, out.router_probs, valid);
        u.router_kl = kl.item<double>();
        if (anchor > 0) u.total = u.total + anchor * kl;
    }
    return u;
}

void stage_save(const std::string& dir, ChronosModel& model, const AdamW& opt, const std::string& tokenizer_path, int64_t step,
                int64_t tokens_seen, const json& hyper, const json& stages) {
    checkpoint_save(dir, model, opt, tokenizer_path,
                    json{{"step", step}, {"tokens_seen", tokens_seen}, {"baseline", false}, {"hyper", hyper}, {"stages", stages}});
}

}  // namespace

json eval_responses(const std::string& model_dir, const std::string& data, const std::string& reference_dir, int64_t seq_len,
                    int64_t batches, int64_t batch_size) {
    std::ifstream f(data);
    std::string first;
    if (!f || !std::getline(f, first)) fail("{}: cannot read a record", data);
    json j;
    try {
        j = json::parse(first);
    } catch (const json::exception&) {
        fail("{}:1: not a JSON object", data);
    }
    StageOptions o;
    o.stage = j.is_object() && j.contains("chosen") ? "dpo" : "sft";
    o.seq_len = seq_len;
    o.eval_batches = batches;
    o.batch_size = batch_size;
    Checkpoint ck = checkpoint_open(model_dir);
    if (ck.tokenizer_path.empty()) fail("{} has no tokenizer (tokenizer.model, or tokenizer.json for an imported model)", model_dir);
    ChronosModel model(ck.config, ck.losses);
    model_copy_weights(model, ck);
    Tokenizer tok(ck.tokenizer_path);
    const StageData d = stage_data_load(o.stage, data, tok, seq_len);
    std::unique_ptr<ChronosModel> reference;
    if (!reference_dir.empty()) {
        Checkpoint rk = checkpoint_open(reference_dir);
        reference = std::make_unique<ChronosModel>(rk.config, rk.losses);
        model_copy_weights(*reference, rk);
        (*reference)->eval();
    } else if (o.stage == "dpo") {
        o.stage = "orpo";  // pairs without a reference: ORPO's objective needs none
    }
    json r = stage_eval(o, model, reference.get(), nullptr, d);
    r.erase("val_objective");  // a training objective, not a property of the model alone
    r["examples"] = std::min(d.size(), batches * batch_size);
    return r;
}

json eval_reward(const std::string& model_dir, const std::string& data, int64_t limit, int64_t max_new_tokens, int64_t samples) {
    Checkpoint ck = checkpoint_open(model_dir);
    if (ck.tokenizer_path.empty()) fail("{} has no tokenizer (tokenizer.model, or tokenizer.json for an imported model)", model_dir);
    ChronosModel model(ck.config, ck.losses);
    model_copy_weights(model, ck);
    Tokenizer tok(ck.tokenizer_path);
    std::vector<PromptRecord> records = prompts_load(data);
    if (limit > 0 && static_cast<int64_t>(records.size()) > limit) records.resize(static_cast<size_t>(limit));
    if (records.empty()) fail("{}: no prompt record", data);
    const ExactMatchResult r = exact_match_eval(model, tok, records, max_new_tokens);
    json j{{"exact_match", r.exact_match}, {"format", r.format}, {"prompts", r.records}, {"tokens", r.tokens},
           {"tok_s", r.seconds > 0 ? static_cast<double>(r.tokens) / r.seconds : 0.0}};
    json shown = json::array();
    for (size_t i = 0; i < std::min(records.size(), static_cast<size_t>(std::max<int64_t>(samples, 0))); ++i) {
        shown.push_back({{"prompt", records[i].prompt}, {"answer", records[i].answer}, {"completion", completion_text(tok, r.completions[i])}});
    }
    if (!shown.empty()) j["samples"] = shown;
    return j;
}

double stage_default_router_kl(const std::string& stage) { return stage == "sft" ? 0.01 : stage == "distill" ? 0.05 : 0.1; }

int train_stage(const StageOptions& o) {
    if (o.stage != "sft" && o.stage != "dpo" && o.stage != "orpo" && o.stage != "grpo" && o.stage != "distill") fail("unknown stage {}", o.stage);
    const bool grpo = o.stage == "grpo";
    if (grpo && (o.group < 2 || o.updates < 1 || o.max_new_tokens < 1 || !(o.sample_temperature > 0) || !(o.top_p > 0 && o.top_p <= 1))) {
        fail("train grpo needs --group >= 2, --updates >= 1, --max-new-tokens >= 1, --temperature > 0 and --top-p in (0, 1]");
    }
    if (o.stage == "distill" && o.teacher.empty()) fail("train distill needs --teacher");
    if (o.out.empty() || o.from.empty()) fail("train {} needs --from and --out", o.stage);
    if (std::filesystem::weakly_canonical(o.out) == std::filesystem::weakly_canonical(o.from)) {
        fail("--out {} is --from: the starting model stays as it is (it is the frozen reference)", o.out);
    }
    torch::set_num_threads(o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
    const double anchor = o.router_kl >= 0 ? o.router_kl : stage_default_router_kl(o.stage);
    if (!std::isfinite(anchor)) fail("--router-kl must be finite");

    Checkpoint from = checkpoint_open(o.from);  // a half-written or corrupt starting model fails here
    if (from.tokenizer_path.empty()) fail("{} has no tokenizer.model: a stage encodes its data with the model's tokenizer", o.from);
    if (o.seq_len > from.config.max_position_embeddings) {
        fail("--seq-len {} exceeds the model's max_position_embeddings {}", o.seq_len, from.config.max_position_embeddings);
    }
    Tokenizer tok(from.tokenizer_path);
    StageData data, val;
    if (o.stage == "distill") {
        const TokenSplits splits = token_splits_load(o.data, o.validation, tok);
        data = windows_data(splits.train, o.seq_len, o.data);
        if (!splits.validation.empty()) val = windows_data(splits.validation, o.seq_len, splits.validation_path);
    } else {
        data = stage_data_load(o.stage, o.data, tok, o.seq_len, o.max_new_tokens);
        const std::string val_path = o.validation.empty() ? validation_beside(o.data) : o.validation;
        if (!val_path.empty()) val = stage_data_load(o.stage, val_path, tok, o.seq_len, o.max_new_tokens);
    }
    // A frozen helper model reading the student's tokens: distillation compares the two
    // distributions token by token, a reward model scores the policy's completions.
    auto frozen_sharing_tokenizer = [&](const std::string& dir, const char* role, const char* why) {
        Checkpoint ck = checkpoint_open(dir);
        if (ck.tokenizer_path.empty() || ck.config.vocab_size != from.config.vocab_size ||
            file_read_all(ck.tokenizer_path) != file_read_all(from.tokenizer_path)) {
            fail("{} {} does not share {}'s tokenizer (vocabulary {} against {}): {}", role, dir, o.from, ck.config.vocab_size,
                 from.config.vocab_size, why);
        }
        auto m = std::make_unique<ChronosModel>(ck.config, ck.losses);
        model_copy_weights(*m, ck);
        for (auto& p : (*m)->parameters()) p.set_requires_grad(false);
        (*m)->eval();
        return m;
    };
    std::unique_ptr<ChronosModel> teacher, reward_model;
    if (o.stage == "distill") teacher = frozen_sharing_tokenizer(o.teacher, "teacher", "distillation compares their distributions token by token");
    if (grpo && !o.reward_model.empty()) {
        reward_model = frozen_sharing_tokenizer(o.reward_model, "reward model", "it scores the policy's completions token by token");
    }

    LossWeights losses = from.losses;
    losses.lambda_router_kl = anchor;
    ChronosModel policy(from.config, losses);
    model_copy_weights(policy, from);
    // The frozen starting model: the anchor's reference router, and DPO's reference policy.
    ChronosModel reference(from.config, from.losses);
    model_copy_weights(reference, from);
    for (auto& p : reference->parameters()) p.set_requires_grad(false);
    reference->eval();
    const bool need_reference = anchor > 0 || o.stage == "dpo";
    // GRPO makes `updates` optimizer steps per rollout: the schedule counts optimizer steps.
    const int64_t updates = grpo ? o.updates : 1;

    std::vector<std::pair<std::string, torch::Tensor>> params;
    for (auto& p : policy->named_parameters()) params.emplace_back(p.key(), p.value());
    AdamW opt(params, AdamWOptions{o.lr, o.min_lr_ratio, o.warmup_steps * updates, o.steps * updates, 0.9, 0.95, 1e-8, o.weight_decay});
    json hyper{{"stage", o.stage}, {"steps", o.steps}, {"batch_size", o.batch_size}, {"seq_len", o.seq_len}, {"lr", o.lr},
                     {"min_lr_ratio", o.min_lr_ratio}, {"warmup_steps", o.warmup_steps}, {"weight_decay", o.weight_decay},
                     {"grad_clip", o.grad_clip}, {"router_kl", anchor}, {"beta", o.beta}, {"orpo_lambda", o.orpo_lambda}, {"seed", o.seed},
                     {"teacher", o.teacher}, {"alpha", o.alpha}, {"temperature", o.temperature}};
    if (grpo) {
        hyper.update(json{{"group", o.group}, {"max_new_tokens", o.max_new_tokens}, {"updates", o.updates}, {"sample_temperature", o.sample_temperature},
                          {"top_p", o.top_p}, {"clip_eps", o.clip_eps}, {"kl_beta", o.kl_beta}, {"format_reward", o.format_reward},
                          {"reward_model", o.reward_model}, {"reward_model_weight", o.reward_model_weight}});
    }
    // The chain of stages that made this model: the parent's, then this one.
    json stages = json::array();
    const std::string parent_state = o.from + "/trainer_state.json";
    if (file_exists(parent_state)) {
        const TrainerState ps = trainer_state_load(parent_state);
        if (ps.doc.contains("stages") && ps.doc["stages"].is_array()) {
            stages = ps.doc["stages"];
        } else {
            stages.push_back({{"stage", ps.step > 0 ? "pretrain" : "init"}, {"steps", ps.step}});
        }
    } else {
        stages.push_back({{"stage", "init"}, {"steps", 0}});  // `chronos init` writes no trainer state
    }
    stages.push_back({{"stage", o.stage}, {"parent", o.from}, {"data", o.data}, {"steps", o.steps}, {"router_kl", anchor}});
    if (o.stage == "distill") stages.back()["teacher"] = o.teacher;
    if (grpo && !o.reward_model.empty()) stages.back()["reward_model"] = o.reward_model;

    int64_t start_step = 0, tokens_seen = 0;
    if (o.resume) {
        Checkpoint ck = checkpoint_open(o.out);
        const TrainerState state = trainer_state_load(o.out + "/trainer_state.json");
        const json& s = state.doc.contains("stages") ? state.doc["stages"] : json();
        if (!s.is_array() || s.empty() || s.back().value("stage", "") != o.stage || s.back().value("parent", "") != o.from) {
            fail("--resume: {} is not a {} stage started from {}", o.out, o.stage, o.from);
        }
        if (config_to_json(ck.config, ck.losses).dump() != config_to_json(policy->config, policy->losses).dump()) {
            fail("--resume: {} holds another model config than {} with --router-kl {}", o.out, o.from, anchor);
        }
        model_copy_weights(policy, ck);
        opt.load(o.out + "/optimizer.safetensors");
        start_step = state.step;
        tokens_seen = state.tokens_seen;
        if (opt.steps_done() != start_step * updates) fail("--resume: optimizer state and trainer state disagree in {}", o.out);
        spdlog::info("resuming {} at step {}", o.out, start_step);
    }

    const std::string log_path = o.log.empty() ? o.out + ".log.jsonl" : o.log;
    dir_create_parent(log_path);
    std::ofstream log(log_path, o.resume ? std::ios::app : std::ios::trunc);
    if (!log) fail("cannot open log {}", log_path);
    spdlog::info("{}: {} examples from {}, {} held-out, anchor {} (router KL to {}), batch {}", o.stage, data.size(), o.data, val.size(),
                 anchor, o.from, o.batch_size);
    std::vector<torch::Tensor> weights;
    for (auto& p : params) weights.push_back(p.second);
    ProgressBar bar(o.stage, static_cast<uint64_t>(o.steps), "steps");
    bar.set(static_cast<uint64_t>(start_step));
    policy->train();
    // backward, clip, AdamW: parameters the step did not reach get zero gradients, so that AdamW
    // decays their moments as it does every step. Returns the gradient norm and the rate used.
    auto optimizer_step = [&](const torch::Tensor& total) {
        for (auto& p : params) p.second.mutable_grad() = torch::Tensor();
        total.backward();
        for (auto& p : params) {
            if (!p.second.grad().defined()) p.second.mutable_grad() = torch::zeros_like(p.second);
        }
        const double grad_norm = torch::nn::utils::clip_grad_norm_(weights, o.grad_clip);
        return std::make_pair(grad_norm, opt.step());
    };
    GrpoRolloutOptions ropt;
    ropt.group = o.group;
    ropt.sampling = SamplingOptions{o.max_new_tokens, o.sample_temperature, o.top_p, tok.end_of_turn()};
    ropt.seq_len = o.seq_len;
    ropt.format_weight = o.format_reward;
    ropt.reward_model_weight = o.reward_model_weight;
    ropt.seed = o.seed;
    for (int64_t step = start_step; step < o.steps; ++step) {
        const auto t0 = std::chrono::steady_clock::now();
        std::vector<int64_t> picks;
        for (int64_t r = 0; r < o.batch_size; ++r) picks.push_back(stage_sample_index(o.seed, data.size(), step * o.batch_size + r));
        json rec;
        double objective = 0, router_kl = 0;
        if (grpo) {
            const GrpoRollout ro = grpo_rollout(policy, reward_model.get(), tok, data.prompts, picks, step, ropt);
            const auto t1 = std::chrono::steady_clock::now();
            const int64_t T = ro.batch.ids.size(1) - 1;
            torch::Tensor inputs = ro.batch.ids.narrow(1, 0, T), targets = ro.batch.ids.narrow(1, 1, T);
            torch::Tensor ref_logp;
            std::vector<torch::Tensor> ref_router;
            if (o.kl_beta > 0 || anchor > 0) {
                torch::NoGradGuard ng;
                ForwardOutput r = reference->forward(inputs);
                if (o.kl_beta > 0) ref_logp = token_logprob(r.logits / o.sample_temperature, targets);
                ref_router = r.router_probs;
            }
            // The first update runs at the sampling policy's weights: its log-probs are pi_old.
            torch::Tensor old_logp;
            GrpoUpdate first;
            double grad_norm = 0, lr = 0, clip_fraction = 0;  // clip_fraction: the last update's (the first's ratio is 1)
            for (int64_t u = 0; u < updates; ++u) {
                torch::Tensor logp;
                GrpoUpdate g = grpo_update(o, policy, ro, old_logp, ref_logp, ref_router, anchor, u == 0 ? &logp : nullptr);
                if (u == 0) old_logp = logp;
                std::tie(grad_norm, lr) = optimizer_step(g.total);
                clip_fraction = g.clip_fraction;
                if (u == 0) first = std::move(g);
            }
            const int64_t tokens = (targets != kTokenPad).sum().item<int64_t>();
            tokens_seen += tokens * updates;
            const auto t2 = std::chrono::steady_clock::now();
            const double rollout_s = std::chrono::duration<double>(t1 - t0).count(), update_s = std::chrono::duration<double>(t2 - t1).count();
            objective = first.objective;
            router_kl = first.router_kl;
            rec = json{{"step", step + 1}, {"stage", o.stage}, {"lr", lr}, {"loss", first.total.item<double>()}, {"objective", first.objective},
                       {"reward", ro.rewards.mean().item<double>()}, {"exact_match", ro.exact_match}, {"format", ro.format},
                       {"kl", first.kl}, {"clip_fraction", clip_fraction}, {"router_kl", first.router_kl}, {"balance", first.balance},
                       {"temporal", first.temporal}, {"lookahead", first.lookahead}, {"grad_norm", grad_norm}, {"tokens", tokens_seen},
                       {"rollout_tokens", ro.tokens}, {"rollout_tok_s", static_cast<double>(ro.tokens) / ro.seconds},
                       {"tok_s", static_cast<double>(tokens * updates) / update_s}, {"rollout_seconds", rollout_s}, {"seconds", rollout_s + update_s}};
            if (reward_model) rec["reward_model"] = ro.reward_model;
        } else {
            StageStep s = stage_step(o, policy, need_reference ? &reference : nullptr, teacher.get(), batch_of(data, picks), anchor);
            const auto [grad_norm, lr] = optimizer_step(s.total);
            tokens_seen += s.tokens;
            const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            objective = s.objective;
            router_kl = s.router_kl;
            rec = json{{"step", step + 1}, {"stage", o.stage}, {"lr", lr}, {"loss", s.total.item<double>()}, {"objective", s.objective},
                       {"router_kl", s.router_kl}, {"balance", s.balance}, {"temporal", s.temporal}, {"lookahead", s.lookahead},
                       {"grad_norm", grad_norm}, {"tokens", tokens_seen}, {"tok_s", static_cast<double>(s.tokens) / seconds}, {"seconds", seconds}};
            if (std::isfinite(s.accuracy)) {
                rec["accuracy"] = s.accuracy;
                rec["margin"] = s.margin;
            }
        }
        const bool last = step + 1 == o.steps;
        if (val.size() > 0 && o.eval_interval > 0 && ((step + 1) % o.eval_interval == 0 || last)) {
            // The drift is measured whatever the anchor's weight.
            rec.update(grpo ? grpo_eval(o, policy, reference, tok, val) : stage_eval(o, policy, &reference, teacher.get(), val));
        }
        log << rec.dump() << "\n";
        log.flush();
        bar.set_note(fmt::format("{} {:.3f} kl {:.4f}", o.stage, objective, router_kl));
        bar.set(static_cast<uint64_t>(step + 1));
        const bool evaluated = rec.contains("val_objective") || rec.contains("val_exact_match");
        if (!bar.enabled() && ((step + 1) % 50 == 0 || last || evaluated)) {
            spdlog::info("step {}/{} {} {:.4f} router_kl {:.4f} bal {:.4f} tmp {:.4f} la {:.4f} lr {:.2e}{}", step + 1, o.steps, o.stage, objective,
                         router_kl, rec["balance"].get<double>(), rec["temporal"].get<double>(), rec["lookahead"].get<double>(),
                         rec["lr"].get<double>(),
                         rec.contains("val_objective")     ? fmt::format(" val {}", rec["val_objective"].get<double>())
                         : rec.contains("val_exact_match") ? fmt::format(" val exact match {}", rec["val_exact_match"].get<double>())
                                                           : "");
        }
        if (last || (o.save_interval > 0 && (step + 1) % o.save_interval == 0)) {
            stage_save(o.out, policy, opt, from.tokenizer_path, step + 1, tokens_seen, hyper, stages);
        }
    }
    bar.finish();
    if (start_step >= o.steps) spdlog::info("{} is already at step {}; nothing to do", o.out, start_step);
    return 0;
}

}  // namespace chronos
