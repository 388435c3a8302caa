// cmd_train.cpp: `chronos train pretrain`, the alignment stages (`train sft|dpo|orpo|grpo|distill`),
// `chronos train lookahead` and `chronos init`.
#include <fmt/format.h>

#include <memory>

#include "cli/commands.h"
#include "cli/options.h"
#include "train/train_api.h"

namespace chronos {

void cmd_train_register(CLI::App& app) {
    CLI::App* train = app.add_subcommand("train", "train a model");
    train->require_subcommand(1);

    auto o = std::make_shared<PretrainOptions>();
    CLI::App* pre = train->add_subcommand("pretrain", "Stage 1: pretraining with balance, temporal-locality and lookahead losses");
    pre->add_option("--config", o->config, "config name (configs/NAME.json) or path")->required();
    pre->add_option("--data", o->data, "pretraining JSONL (e.g. data/prepared/pretrain.train.jsonl)")->required();
    pre->add_option("--validation", o->validation, "held-out JSONL (default: the .validation. file beside --data)");
    pre->add_option("--tokenizer", o->tokenizer, "tokenizer .model")->capture_default_str();
    pre->add_option("--out", o->out, "checkpoint directory")->required();
    pre->add_option("--log", o->log, "JSONL log (default: OUT.log.jsonl)");
    pre->add_flag("--baseline", o->baseline, "plain-MoE baseline: full causal GQA, no lookahead, no locality losses");
    pre->add_flag("--resume", o->resume, "continue the checkpoint in --out exactly where it stopped");
    auto over = [&](const char* flag, const char* field, auto& target, const char* help, CLI::Validator range) {
        pre->add_option(flag, target, help)->check(range)->each([o, field](const std::string&) { o->overridden.push_back(field); });
    };
    over("--steps", "steps", o->overrides.steps, "optimizer steps (overrides the config)", cli_range(1, 1e9));
    over("--batch-size", "batch_size", o->overrides.batch_size, "sequences per step over all processes", cli_range(1, 1 << 20));
    over("--seq-len", "seq_len", o->overrides.seq_len, "tokens per sequence", cli_range(2, 1 << 20));
    over("--grad-accum", "grad_accum", o->overrides.grad_accum, "micro-batches per process and step", cli_range(1, 1 << 16));
    over("--lr", "lr", o->overrides.lr, "peak learning rate", cli_range(0, 10, true));
    over("--warmup-steps", "warmup_steps", o->overrides.warmup_steps, "linear warmup steps", cli_range(0, 1e9));
    over("--eval-interval", "eval_interval", o->overrides.eval_interval, "steps between held-out evaluations (0: none)", cli_range(0, 1e9));
    over("--eval-batches", "eval_batches", o->overrides.eval_batches, "held-out micro-batches per evaluation", cli_range(1, 1e6));
    over("--save-interval", "save_interval", o->overrides.save_interval, "steps between checkpoints (0: end only)", cli_range(0, 1e9));
    over("--seed", "seed", o->overrides.seed, "seed for initialisation, sampling and masking", cli_range(0, 1.8e19));
    pre->add_option("--nproc", o->dist.nproc, "data-parallel worker processes on this machine")->check(CLI::Range(1, 256));
    pre->add_option("--rank", o->dist.rank, "this worker's rank (multi-machine runs)")->check(cli_range(0, 4095));
    pre->add_option("--world-size", o->dist.world_size, "number of workers (multi-machine runs)")->check(CLI::Range(1, 4096));
    pre->add_option("--rendezvous", o->dist.rendezvous, "file:PATH or tcp:HOST:PORT (multi-machine runs)");
    pre->callback([o]() {
        o->threads = cli_globals().threads;
        if (o->dist.rank >= 0 && o->dist.world_size > 1 && o->dist.rendezvous.empty()) {
            throw CLI::ValidationError("--rendezvous", "is required with --rank and --world-size > 1");
        }
        // The launcher of --nproc workers runs this too: rank 0 (or a single process) warns.
        const bool lead = o->dist.rank == 0 || (o->dist.rank < 0 && o->dist.nproc <= 1);
        cli_checkpoint_out(o->out, {{"--data", o->data}, {"--validation", o->validation}, {"--tokenizer", o->tokenizer}}, lead && !o->resume);
        int status = train_pretrain(*o, cli_command_line().argc, cli_command_line().argv);
        if (status != 0) throw CLI::RuntimeError(status);
    });

    auto la = std::make_shared<LookaheadFitOptions>();
    CLI::App* fit = train->add_subcommand("lookahead", "refit the lookahead head alone on a pretrained model (nothing else changes)");
    fit->add_option("--model", la->model, "pretrained checkpoint directory")->required();
    fit->add_option("--data", la->data, "pretraining JSONL (e.g. data/prepared/pretrain.train.jsonl)")->required();
    fit->add_option("--validation", la->validation, "held-out JSONL (default: the .validation. file beside --data)");
    fit->add_option("--out", la->out, "write here instead of updating --model in place");
    fit->add_option("--log", la->log, "JSONL log (default: OUT.lookahead.log.jsonl)");
    fit->add_option("--hidden", la->hidden, "start a new head of this width (default: refit the existing one)")->check(cli_range(0, 1 << 16));
    fit->add_option("--input-layer", la->input_layer, "start a new head reading this block's output (default: the checkpoint's; 0 = block 0)")
        ->check(cli_range(0, 1 << 16));
    fit->add_option("--target", la->target, "what the head learns: router_topk (the router's choice) or router_probs (its softmax); default: the checkpoint's")
        ->check(CLI::IsMember({"router_topk", "router_probs"}));
    fit->add_option("--steps", la->steps, "optimizer steps")->capture_default_str()->check(cli_range(1, 1e9));
    fit->add_option("--batch-size", la->batch_size, "sequences per step")->capture_default_str()->check(cli_range(1, 1 << 20));
    fit->add_option("--seq-len", la->seq_len, "tokens per sequence")->capture_default_str()->check(CLI::Range(2, 1 << 20));
    fit->add_option("--lr", la->lr, "peak learning rate (warmup, then cosine to 10%)")->capture_default_str()->check(cli_range(0, 10, true));
    fit->add_option("--warmup-steps", la->warmup_steps, "linear warmup steps")->capture_default_str()->check(cli_range(0, 1e9));
    fit->add_option("--eval-batches", la->eval_batches, "held-out batches for the before/after loss")->capture_default_str()->check(cli_range(0, 1e6));
    fit->add_option("--seed", la->seed, "sample order")->capture_default_str();
    fit->callback([la]() {
        la->threads = cli_globals().threads;
        if (!la->out.empty()) cli_checkpoint_out(la->out, {{"--model", la->model}, {"--data", la->data}, {"--validation", la->validation}});
        lookahead_fit(*la);
    });

    // The alignment stages: one option set, a few stage-specific ones.
    for (const char* name : {"sft", "dpo", "orpo", "grpo", "distill"}) {
        auto so = std::make_shared<StageOptions>();
        so->stage = name;
        const std::string stage = name;
        const char* what = stage == "sft"    ? "Stage 2: supervised fine-tuning on the assistant replies of chat records"
                           : stage == "dpo"  ? "Stage 3: direct preference optimisation against the starting model"
                           : stage == "orpo" ? "Stage 4: odds-ratio preference optimisation (no reference model)"
                           : stage == "grpo" ? "Stage 5: group relative policy optimisation on verifiable prompts (exact answer reward)"
                                             : "Stage 6: distillation from a teacher with the same tokenizer into --from (e.g. a tiny init)";
        CLI::App* st = train->add_subcommand(name, what);
        st->add_option("--from", so->from, "the starting checkpoint (also the frozen reference)")->required();
        st->add_option("--data", so->data, stage == "sft"       ? "sft JSONL (data/prepared/sft.train.jsonl)"
                                           : stage == "distill" ? "pretraining JSONL (data/prepared/pretrain.train.jsonl)"
                                           : stage == "grpo"    ? "prompts JSONL (data/prepared/prompts.train.jsonl)"
                                                                : "preference JSONL (data/prepared/preference.train.jsonl)")
            ->required();
        st->add_option("--validation", so->validation, "held-out JSONL (default: the .validation. file beside --data)");
        st->add_option("--out", so->out, "checkpoint directory")->required();
        st->add_option("--log", so->log, "JSONL log (default: OUT.log.jsonl)");
        st->add_flag("--resume", so->resume, "continue the checkpoint in --out exactly where it stopped");
        st->add_option("--steps", so->steps, "optimizer steps")->capture_default_str()->check(cli_range(1, 1e9));
        st->add_option("--batch-size", so->batch_size, stage == "sft" ? "conversations per step" : stage == "grpo" ? "prompts per step" : "pairs per step")->capture_default_str()->check(cli_range(1, 1 << 16));
        st->add_option("--seq-len", so->seq_len, "longest sequence; longer ones are cut")->capture_default_str()->check(cli_range(2, 1 << 20));
        st->add_option("--lr", so->lr, "peak learning rate (warmup, then cosine to 10%)")->capture_default_str()->check(cli_range(0, 10, true));
        st->add_option("--warmup-steps", so->warmup_steps, "linear warmup steps")->capture_default_str()->check(cli_range(0, 1e9));
        st->add_option("--eval-interval", so->eval_interval, "steps between held-out evaluations (0: none)")->capture_default_str()->check(cli_range(0, 1e9));
        st->add_option("--eval-batches", so->eval_batches, "held-out batches per evaluation")->capture_default_str()->check(cli_range(1, 1e6));
        st->add_option("--save-interval", so->save_interval, "steps between checkpoints (0: end only)")->capture_default_str()->check(cli_range(0, 1e9));
        st->add_option("--router-kl", so->router_kl, fmt::format("router KL anchor weight (default {})", stage_default_router_kl(stage)))
            ->check(cli_range(0, 1e6));
        st->add_option("--seed", so->seed, "sample order")->capture_default_str();
        if (stage == "dpo") st->add_option("--beta", so->beta, "DPO's beta")->capture_default_str()->check(cli_range(0, 1e6, true));
        if (stage == "orpo") st->add_option("--lambda", so->orpo_lambda, "weight of ORPO's odds-ratio term")->capture_default_str()->check(cli_range(0, 1e6));
        if (stage == "grpo") {
            st->add_option("--group", so->group, "completions sampled per prompt")->capture_default_str()->check(cli_range(2, 1 << 12));
            st->add_option("--max-new-tokens", so->max_new_tokens, "longest completion")->capture_default_str()->check(cli_range(1, 1 << 16));
            st->add_option("--temperature", so->sample_temperature, "sampling temperature")->capture_default_str()->check(cli_range(0, 100, true));
            st->add_option("--top-p", so->top_p, "nucleus sampling mass")->capture_default_str()->check(cli_range(0, 1, true));
            st->add_option("--updates", so->updates, "optimizer steps per rollout (the clipped ratio acts from the second)")
                ->capture_default_str()->check(cli_range(1, 1000));
            st->add_option("--clip", so->clip_eps, "ratio clip epsilon")->capture_default_str()->check(cli_range(0, 10));
            st->add_option("--beta", so->kl_beta, "weight of the k3 KL to the starting model")->capture_default_str()->check(cli_range(0, 1e6));
            st->add_option("--format-reward", so->format_reward, "weight of the format reward (turn closed, one line)")->capture_default_str()->check(cli_range(0, 1e6));
            st->add_option("--reward-model", so->reward_model, "a checkpoint (same tokenizer) whose likelihood of each completion adds to its reward");
            st->add_option("--reward-model-weight", so->reward_model_weight, "weight of the reward model's score")->capture_default_str()->check(cli_range(0, 1e6));
            st->add_option("--eval-prompts", so->eval_prompts, "held-out prompts per evaluation (greedy exact match)")->capture_default_str()->check(cli_range(1, 1e6));
        }
        if (stage == "distill") {
            st->add_option("--teacher", so->teacher, "teacher checkpoint (same tokenizer)")->required();
            st->add_option("--alpha", so->alpha, "weight of the soft (teacher) term; 1 - alpha on the cross-entropy")->capture_default_str()->check(cli_range(0, 1));
            st->add_option("--temperature", so->temperature, "softening of teacher and student")->capture_default_str()->check(cli_range(0, 1e3, true));
        }
        st->callback([so]() {
            so->threads = cli_globals().threads;
            cli_checkpoint_out(so->out, {{"--from", so->from}, {"--data", so->data}, {"--validation", so->validation},
                                         {"--teacher", so->teacher}, {"--reward-model", so->reward_model}},
                               !so->resume);
            int status = train_stage(*so);
            if (status != 0) throw CLI::RuntimeError(status);
        });
    }

    cmd_intent_register(*train);

    auto init = std::make_shared<InitOptions>();
    CLI::App* in = app.add_subcommand("init", "write a randomly initialised checkpoint");
    in->add_option("--config", init->config, "config name or path")->required();
    in->add_option("--out", init->out, "checkpoint directory")->required();
    in->add_option("--tokenizer", init->tokenizer, "tokenizer to copy in (gives vocab_size)");
    in->add_option("--vocab-size", init->vocab_size, "vocabulary size when no tokenizer is given")->check(cli_range(1, 1 << 24));
    in->add_option("--seed", init->seed, "initialisation seed")->capture_default_str();
    in->add_flag("--baseline", init->baseline, "the plain-MoE baseline variant of the config");
    in->callback([init]() {
        cli_checkpoint_out(init->out, {{"--tokenizer", init->tokenizer}});
        model_init(*init);
    });
}

}  // namespace chronos
