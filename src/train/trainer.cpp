// trainer.cpp: `chronos train pretrain` — the Stage 1 loop.
//
// Per step: every rank computes its share of the step's gradient and the ranks average it
// (train_step_gradient, train_step.h: N processes compute what one process does with the
// combined batch); the gradient is clipped by global norm and AdamW updates. Nothing depends on
// state outside the checkpoint, so --resume continues exactly.
#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_io.h"
#include "core/progress.h"
#include "format/trainer_state.h"
#include "train/adamw.h"
#include "data/token_stream.h"
#include "train/checkpoint_io.h"
#include "train/distributed.h"
#include "train/objective.h"
#include "train/train_step.h"
#include "train/train_api.h"

namespace chronos {

namespace {

using json = nlohmann::json;

void apply_overrides(TrainHyper& t, const PretrainOptions& o) {
    for (const std::string& name : o.overridden) {
        const TrainHyper& v = o.overrides;
        if (name == "steps") t.steps = v.steps;
        else if (name == "batch_size") t.batch_size = v.batch_size;
        else if (name == "seq_len") t.seq_len = v.seq_len;
        else if (name == "grad_accum") t.grad_accum = v.grad_accum;
        else if (name == "lr") t.lr = v.lr;
        else if (name == "warmup_steps") t.warmup_steps = v.warmup_steps;
        else if (name == "eval_interval") t.eval_interval = v.eval_interval;
        else if (name == "eval_batches") t.eval_batches = v.eval_batches;
        else if (name == "save_interval") t.save_interval = v.save_interval;
        else if (name == "seed") t.seed = v.seed;
        else fail("internal: unknown override {}", name);
    }
}

json hyper_json(const TrainHyper& t) {
    return json{{"seq_len", t.seq_len}, {"batch_size", t.batch_size}, {"grad_accum", t.grad_accum}, {"steps", t.steps},
                {"lr", t.lr}, {"min_lr_ratio", t.min_lr_ratio}, {"warmup_steps", t.warmup_steps},
                {"weight_decay", t.weight_decay}, {"beta1", t.beta1}, {"beta2", t.beta2}, {"eps", t.eps},
                {"grad_clip", t.grad_clip}, {"seed", t.seed}};
}

// What one held-out evaluation reports, on the first `batches` x `rows` validation windows (in
// order): the mean cross-entropy, the switch rate (the share of a token's k experts that were
// not its predecessor's, over all layers; as `eval routing`) and the lookahead head's recall@k
// at t+1 (the share of t+1's experts among the head's top k at t; 0 without a head). The
// routing figures let a tuner judge a trial by its objective while it trains.
struct Validation {
    double loss = std::nan(""), switch_rate = std::nan(""), lookahead_recall = 0;
};

Validation validation_run(ChronosModel& model, const std::vector<int32_t>& tokens, int64_t seq_len, int64_t rows, int64_t batches) {
    model->eval();
    const ModelConfig& c = model->config;
    const int64_t E = c.n_routed_experts, k = c.num_experts_per_tok, T = seq_len;
    double changed = 0, pairs = 0, hit = 0, la_pairs = 0;
    Validation v;
    v.loss = held_out_mean(tokens, seq_len, rows, batches, [&](const torch::Tensor& ids) {
        ObjectiveTerms t = objective_pretrain(model, ids);
        const int64_t B = ids.size(0);
        for (int64_t l = 0; l < c.n_moe_layers(); ++l) {
            const torch::Tensor& topk = t.out.router_topk[static_cast<size_t>(l)];  // [B, T, k]
            torch::Tensor sets = torch::zeros({B, T, E}, torch::kFloat32).scatter_(2, topk, 1.0f);
            changed += static_cast<double>(k * B * (T - 1)) - (sets.narrow(1, 0, T - 1) * sets.narrow(1, 1, T - 1)).sum().item<double>();
            pairs += static_cast<double>(k * B * (T - 1));
            if (c.lookahead_steps > 0 && t.out.lookahead_logits.defined()) {
                torch::Tensor z = t.out.lookahead_logits.select(2, 0).select(2, l).narrow(1, 0, T - 1);  // [B, T-1, E]
                torch::Tensor pred = torch::zeros({B, T - 1, E}, torch::kFloat32).scatter_(2, std::get<1>(z.topk(k, -1)), 1.0f);
                hit += (pred * sets.narrow(1, 1, T - 1)).sum().item<double>();
                la_pairs += static_cast<double>(k * B * (T - 1));
            }
        }
        return t.ce.item<double>();
    });
    if (pairs > 0) v.switch_rate = changed / pairs;
    if (la_pairs > 0) v.lookahead_recall = hit / la_pairs;
    model->train();
    return v;
}

void save_checkpoint(const std::string& dir, ChronosModel& model, const AdamW& opt, const std::string& tokenizer_path,
                     int64_t step, int64_t tokens_seen, const TrainHyper& hyper, bool baseline) {
    checkpoint_save(dir, model, opt, tokenizer_path,
                    json{{"step", step}, {"tokens_seen", tokens_seen}, {"baseline", baseline}, {"hyper", hyper_json(hyper)}});
}

}  // namespace

torch::Tensor train_step_gradient(ChronosModel& model, SequenceSampler& sampler, const TrainHyper& hyper, int64_t step,
                                  DistributedGroup& group) {
    const ModelConfig& config = model->config;
    const int rank = group.rank(), world = group.world();
    CHRONOS_ASSERT(hyper.batch_size % (world * hyper.grad_accum) == 0, "batch not divisible by ranks x micro-batches");
    const int64_t micro = hyper.batch_size / (world * hyper.grad_accum), rows_per_rank = hyper.batch_size / world;
    const int64_t L = config.n_moe_layers(), k = config.num_experts_per_tok, T = hyper.seq_len;
    // Fallback mask for the global batch, drawn from (seed, step) alone.
    torch::Tensor keep;
    const double mask_prob = model->losses.fallback_mask_prob;
    if (mask_prob > 0) {
        auto gen = at::detail::createCPUGenerator(hyper.seed * 1000003ull + static_cast<uint64_t>(step));
        keep = (torch::rand({L, hyper.batch_size, T, k}, gen) >= mask_prob).to(torch::kFloat32);
    }
    std::vector<torch::Tensor> params = model->parameters();
    for (auto& p : params) p.mutable_grad() = torch::Tensor();
    // [ce, total, balance, temporal, lookahead]
    torch::Tensor metrics = torch::zeros({5}, torch::kFloat64);
    for (int64_t a = 0; a < hyper.grad_accum; ++a) {
        const int64_t row0 = rank * rows_per_rank + a * micro;
        torch::Tensor ids = sampler_batch(sampler, step * hyper.batch_size + row0, micro, T);
        torch::Tensor kp = keep.defined() ? keep.narrow(1, row0, micro) : torch::Tensor();
        ObjectiveTerms terms = objective_pretrain(model, ids, kp, [&](torch::Tensor& counts) {
            if (world == 1) return;
            group.allreduce_mean({counts});
            counts.mul_(static_cast<double>(world));
        });
        (terms.total / static_cast<double>(hyper.grad_accum)).backward();
        const double la = lookahead_mean(terms);
        metrics += torch::tensor({terms.ce.item<double>(), terms.total.item<double>(), terms_mean(terms.balance),
                                  terms_mean(terms.temporal), la}, torch::kFloat64) /
                   static_cast<double>(hyper.grad_accum);
    }
    std::vector<torch::Tensor> grads;
    for (auto& p : params) {
        if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
        grads.push_back(p.grad());
    }
    group.allreduce_mean(grads);
    group.allreduce_mean({metrics});
    return metrics;
}

int train_pretrain(const PretrainOptions& o, int argc, char** argv) {
    const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    if (o.dist.nproc > 1 && o.dist.rank < 0) {
        const int per = std::max(1, (o.threads > 0 ? o.threads : hw) / o.dist.nproc);
        return distributed_launch(o.dist.nproc, argc, argv, per);
    }
    const int rank = std::max(0, o.dist.rank);
    const int world = o.dist.rank >= 0 ? o.dist.world_size : 1;
    const bool lead = rank == 0;
    if (!lead) spdlog::set_level(spdlog::level::warn);
    torch::set_num_threads(o.threads > 0 ? o.threads : hw);

    NamedConfig nc = named_config_load(o.config);
    if (nc.losses.lambda_router_kl != 0) {
        fail("{}: lambda_router_kl {} anchors the router to a stage's starting model, and pretraining starts from none: set it to 0 "
             "(the alignment stages take --router-kl)", nc.path, nc.losses.lambda_router_kl);
    }
    TrainHyper hyper = nc.train;
    apply_overrides(hyper, o);
    if (hyper.batch_size % (world * hyper.grad_accum) != 0) {
        fail("batch_size {} is not divisible by world size {} x grad_accum {}", hyper.batch_size, world, hyper.grad_accum);
    }
    if (hyper.seq_len > nc.model.max_position_embeddings) {
        fail("seq_len {} exceeds max_position_embeddings {}", hyper.seq_len, nc.model.max_position_embeddings);
    }
    const int64_t micro = hyper.batch_size / (world * hyper.grad_accum);

    Tokenizer tok(o.tokenizer);
    ModelConfig config = o.baseline ? config_make_baseline(nc.model) : nc.model;
    const LossWeights losses = o.baseline ? losses_make_baseline(nc.losses) : nc.losses;
    if (config.vocab_size != 0 && config.vocab_size != tok.vocab_size()) {
        fail("config {} has vocab_size {} but the tokenizer {} has {}", nc.path, config.vocab_size, o.tokenizer, tok.vocab_size());
    }
    config.vocab_size = tok.vocab_size();

    torch::manual_seed(hyper.seed);
    ChronosModel model(config, losses);
    int64_t start_step = 0, tokens_seen = 0;
    std::vector<std::pair<std::string, torch::Tensor>> params;
    for (auto& p : model->named_parameters()) params.emplace_back(p.key(), p.value());
    AdamW opt(params, AdamWOptions{hyper.lr, hyper.min_lr_ratio, hyper.warmup_steps, hyper.steps, hyper.beta1, hyper.beta2,
                                   hyper.eps, hyper.weight_decay});
    if (o.resume) {
        Checkpoint ck = checkpoint_open(o.out);
        // A model without a head has no head fields to disagree on: a baseline written before
        // lookahead_target existed reads it as router_probs, and that must not refuse it.
        auto comparable = [](ModelConfig c, const LossWeights& w) {
            if (c.lookahead_steps == 0) {
                c.lookahead_target = LookaheadTarget::router_topk;
                c.lookahead_input_layer = 0;
            }
            return config_to_json(c, w).dump();
        };
        if (comparable(ck.config, ck.losses) != comparable(config, losses)) {
            fail("--resume: {} holds a different model config than {}{}", o.out, nc.path, o.baseline ? " --baseline" : "");
        }
        model_copy_weights(model, ck);
        opt.load(o.out + "/optimizer.safetensors");
        const TrainerState state = trainer_state_load(o.out + "/trainer_state.json");
        start_step = state.step;
        tokens_seen = state.tokens_seen;
        if (opt.steps_done() != start_step) fail("--resume: optimizer state and trainer state disagree in {}", o.out);
        spdlog::info("resuming {} at step {}", o.out, start_step);
    }

    const TokenSplits splits = token_splits_load(o.data, o.validation, tok);
    const std::vector<int32_t>& train_tokens = splits.train;
    const std::vector<int32_t>& val_tokens = splits.validation;
    SequenceSampler sampler(train_tokens, hyper.seq_len, hyper.seed);
    DistributedGroup group(rank, world, o.dist.rendezvous);

    int64_t n_params = 0;
    for (const auto& p : params) n_params += p.second.numel();
    const double flops_per_token = model_flops_per_token(config, hyper.seq_len);
    if (lead) {
        spdlog::info("{}: {} parameters, {} train tokens ({} windows of {}), {} validation tokens, {} process(es), batch {} = {} x {} x {}",
                     o.baseline ? "baseline" : "chronos", n_params, train_tokens.size(), sampler.windows(), hyper.seq_len,
                     val_tokens.size(), world, hyper.batch_size, world, hyper.grad_accum, micro);
    }
    std::ofstream log;
    if (lead) {
        const std::string log_path = o.log.empty() ? o.out + ".log.jsonl" : o.log;
        dir_create_parent(log_path);
        log.open(log_path, o.resume ? std::ios::app : std::ios::trunc);
        if (!log) fail("cannot open log {}", log_path);
    }

    const int64_t T = hyper.seq_len;
    std::vector<torch::Tensor> weights;
    for (auto& p : params) weights.push_back(p.second);
    ProgressBar bar(o.baseline ? "pretrain baseline" : "pretrain", static_cast<uint64_t>(hyper.steps), "steps");
    bar.set(static_cast<uint64_t>(start_step));
    model->train();
    Validation last_val;
    for (int64_t step = start_step; step < hyper.steps; ++step) {
        const auto t0 = std::chrono::steady_clock::now();
        torch::Tensor metrics = train_step_gradient(model, sampler, hyper, step, group);
        const double grad_norm = torch::nn::utils::clip_grad_norm_(weights, hyper.grad_clip);
        const double lr = opt.step();
        tokens_seen += hyper.batch_size * T;
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const double tok_s = static_cast<double>(hyper.batch_size * T) / seconds;

        const bool last = step + 1 == hyper.steps;
        const bool do_eval = !val_tokens.empty() && hyper.eval_interval > 0 && ((step + 1) % hyper.eval_interval == 0 || last);
        if (lead) {
            if (do_eval) last_val = validation_run(model, val_tokens, T, micro, hyper.eval_batches);
            auto m = metrics.accessor<double, 1>();
            json rec{{"step", step + 1}, {"lr", lr}, {"loss", m[1]}, {"ce", m[0]}, {"balance", m[2]}, {"temporal", m[3]},
                     {"lookahead", m[4]}, {"grad_norm", grad_norm}, {"tokens", tokens_seen}, {"tok_s", tok_s},
                     {"flop_s", tok_s * flops_per_token}, {"seconds", seconds}};
            if (do_eval) {
                rec["val_loss"] = last_val.loss;
                rec["val_ppl"] = std::exp(last_val.loss);
                rec["val_switch_rate"] = last_val.switch_rate;
                rec["val_lookahead_recall"] = last_val.lookahead_recall;
            }
            log << rec.dump() << "\n";
            log.flush();
            bar.set_note(fmt::format("loss {:.3f} ce {:.3f}{} {:.0f} tok/s", m[1], m[0],
                                     std::isnan(last_val.loss) ? "" : fmt::format(" val_ppl {:.1f}", std::exp(last_val.loss)), tok_s));
            bar.set(static_cast<uint64_t>(step + 1));
            if (!bar.enabled() && ((step + 1) % 50 == 0 || last || do_eval)) {
                spdlog::info("step {}/{} loss {:.4f} ce {:.4f} bal {:.4f} tmp {:.4f} la {:.4f} lr {:.2e} {:.0f} tok/s{}", step + 1,
                             hyper.steps, m[1], m[0], m[2], m[3], m[4], lr, tok_s,
                             do_eval ? fmt::format(" val_ppl {:.2f} val_switch {:.3f}", std::exp(last_val.loss), last_val.switch_rate) : "");
            }
            const bool do_save = last || (hyper.save_interval > 0 && (step + 1) % hyper.save_interval == 0);
            if (do_save) save_checkpoint(o.out, model, opt, o.tokenizer, step + 1, tokens_seen, hyper, o.baseline);
        }
    }
    bar.finish();
    if (lead && start_step >= hyper.steps) spdlog::info("{} is already at step {}; nothing to do", o.out, start_step);
    group.barrier();
    return 0;
}

}  // namespace chronos
