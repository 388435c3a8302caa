// intent.cpp: the intent classifier — from a prompt's tokens to a score per (layer, expert) of
// "used within the next `horizon` generated tokens".
//
// Features (cheap enough to compute before prefill starts, and natively in the runtime): the
// mean of the model's input embeddings over the whole prompt and over its last 8 tokens,
// concatenated [2H]. Network: up_proj [D, 2H] -> SiLU -> out_proj [L*E, D], sigmoid.
// Trained with binary cross-entropy on a trace; prompts are split into train and held-out sets
// by a hash of their tokens, so evaluation never sees a training prompt.
#include <spdlog/spdlog.h>
#include <xxhash.h>

#include <algorithm>
#include <numeric>

#include "format/trace.h"
#include "format/intent.h"
#include "format/pack.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/progress.h"
#include "train/adamw.h"
#include "train/checkpoint_io.h"
#include "train/train_api.h"

namespace chronos {

namespace {

constexpr int64_t kTailTokens = 8;

struct IntentData {
    torch::Tensor features;  // [N, 2H]
    torch::Tensor targets;   // [N, L*E] 0/1
    std::vector<bool> held_out;
};

bool is_held_out(const TraceSequence& s, double holdout) {
    const uint64_t h = XXH3_64bits(s.tokens.data(), s.prompt_len * sizeof(uint32_t));
    return static_cast<double>(h >> 11) * (1.0 / 9007199254740992.0) < holdout;
}

// [2H] feature vector of one prompt.
torch::Tensor prompt_features(const torch::Tensor& embed, const std::vector<uint32_t>& tokens, uint32_t prompt_len) {
    std::vector<int64_t> ids(tokens.begin(), tokens.begin() + prompt_len);
    torch::Tensor rows = embed.index_select(0, torch::tensor(ids, torch::kInt64));
    const int64_t tail = std::min<int64_t>(kTailTokens, static_cast<int64_t>(prompt_len));
    return torch::cat({rows.mean(0), rows.narrow(0, rows.size(0) - tail, tail).mean(0)});
}

IntentData intent_data(const Trace& trace, const torch::Tensor& embed, int64_t horizon, double holdout) {
    const TraceShape& s = trace.shape;
    const int64_t pairs = static_cast<int64_t>(s.layers) * s.experts;
    std::vector<torch::Tensor> feats, targs;
    IntentData d;
    for (const TraceSequence& seq : trace.sequences) {
        if (seq.prompt_len == 0 || seq.prompt_len >= seq.tokens.size()) continue;
        torch::Tensor y = torch::zeros({pairs});
        auto acc = y.accessor<float, 1>();
        const size_t end = std::min(seq.tokens.size(), static_cast<size_t>(seq.prompt_len + horizon));
        for (size_t t = seq.prompt_len; t < end; ++t) {
            for (uint32_t l = 0; l < s.layers; ++l) {
                for (uint32_t k = 0; k < s.top_k; ++k) acc[static_cast<int64_t>(l) * s.experts + seq.expert(t, l, k, s)] = 1.0f;
            }
        }
        feats.push_back(prompt_features(embed, seq.tokens, seq.prompt_len));
        targs.push_back(y);
        d.held_out.push_back(is_held_out(seq, holdout));
    }
    if (feats.empty()) fail("trace has no sequences with both a prompt and a continuation");
    d.features = torch::stack(feats);
    d.targets = torch::stack(targs);
    return d;
}

struct IntentNet : torch::nn::Module {
    IntentNet(int64_t in, int64_t hidden, int64_t out) {
        up_proj = register_module("up_proj", torch::nn::Linear(torch::nn::LinearOptions(in, hidden).bias(false)));
        out_proj = register_module("out_proj", torch::nn::Linear(torch::nn::LinearOptions(hidden, out).bias(true)));
    }
    torch::Tensor forward(const torch::Tensor& x) { return out_proj(torch::silu(up_proj(x))); }
    torch::nn::Linear up_proj{nullptr}, out_proj{nullptr};
};

// Recall and precision of the top-`budget` scores against the targets, averaged over rows.
std::pair<double, double> at_budget(const torch::Tensor& scores, const torch::Tensor& targets, int64_t budget) {
    torch::Tensor top = std::get<1>(scores.topk(budget, -1));
    torch::Tensor hit = targets.gather(1, top).sum(1);            // [N]
    torch::Tensor used = targets.sum(1).clamp_min(1);
    return {(hit / used).mean().item<double>(), (hit / static_cast<double>(budget)).mean().item<double>()};
}

torch::Tensor rows_where(const torch::Tensor& x, const std::vector<bool>& mask, bool value) {
    std::vector<int64_t> idx;
    for (size_t i = 0; i < mask.size(); ++i) {
        if (mask[i] == value) idx.push_back(static_cast<int64_t>(i));
    }
    return x.index_select(0, torch::tensor(idx, torch::kInt64));
}

// Sequential reads needed to load each row's top-`budget` pairs from the packs: pairs adjacent
// in one file's cluster order form one read.
std::vector<int64_t> reads_per_prompt(const torch::Tensor& scores, int64_t budget, const PackManifest& m) {
    std::vector<int64_t> pos(m.entries.size());
    for (const auto& cluster : m.clusters) {
        for (size_t i = 0; i < cluster.size(); ++i) pos[static_cast<size_t>(cluster[i])] = static_cast<int64_t>(i);
    }
    torch::Tensor top = std::get<1>(scores.topk(budget, -1)).contiguous();
    std::vector<int64_t> out;
    for (int64_t r = 0; r < top.size(0); ++r) {
        std::vector<std::pair<int32_t, int64_t>> at;  // (file, position in file)
        for (int64_t i = 0; i < budget; ++i) {
            const int64_t p = top[r][i].item<int64_t>();
            at.emplace_back(m.entries[static_cast<size_t>(p)].file, pos[static_cast<size_t>(p)]);
        }
        std::sort(at.begin(), at.end());
        int64_t reads = 0;
        for (size_t i = 0; i < at.size(); ++i) {
            if (i == 0 || at[i].first != at[i - 1].first || at[i].second != at[i - 1].second + 1) ++reads;
        }
        out.push_back(reads);
    }
    return out;
}

IntentMetrics evaluate(const torch::Tensor& scores_eval, const IntentData& d, int64_t budget) {
    IntentMetrics m;
    m.budget = budget;
    torch::Tensor train_t = rows_where(d.targets, d.held_out, false), eval_t = rows_where(d.targets, d.held_out, true);
    m.train_prompts = train_t.size(0);
    m.eval_prompts = eval_t.size(0);
    std::tie(m.recall, m.precision) = at_budget(scores_eval, eval_t, budget);
    // Frequency baseline: the pairs most often used in the training prompts' horizons, the same
    // set for every prompt.
    torch::Tensor freq = train_t.sum(0).unsqueeze(0).expand({eval_t.size(0), -1});
    std::tie(m.freq_recall, m.freq_precision) = at_budget(freq, eval_t, budget);
    return m;
}

}  // namespace

IntentMetrics intent_train(const IntentOptions& o) {
    Checkpoint ck = checkpoint_open(o.model);
    const ModelConfig& c = ck.config;
    Trace trace = trace_read(o.trace);
    if (trace.shape.layers != c.n_moe_layers() || trace.shape.experts != c.n_routed_experts) {
        fail("{}: trace is for {} layers x {} experts, the model has {} x {}", o.trace, trace.shape.layers, trace.shape.experts,
             c.n_moe_layers(), c.n_routed_experts);
    }
    TensorView ev = ck.weights->tensor("model.embed_tokens.weight");
    torch::Tensor embed = torch::from_blob(const_cast<uint8_t*>(ev.data), {c.vocab_size, c.hidden_size}, torch::kFloat32);
    IntentData d = intent_data(trace, embed, o.horizon, o.holdout);
    torch::Tensor x_train = rows_where(d.features, d.held_out, false), y_train = rows_where(d.targets, d.held_out, false);
    torch::Tensor x_eval = rows_where(d.features, d.held_out, true);
    if (x_train.size(0) < 10 || x_eval.size(0) < 5) fail("{}: too few prompts to train and evaluate ({} / {})", o.trace, x_train.size(0), x_eval.size(0));

    torch::manual_seed(o.seed);
    const int64_t pairs = c.n_moe_layers() * c.n_routed_experts;
    IntentNet net(2 * c.hidden_size, o.hidden, pairs);
    std::vector<std::pair<std::string, torch::Tensor>> params;
    for (auto& p : net.named_parameters()) params.emplace_back(p.key(), p.value());
    AdamW opt(params, AdamWOptions{o.lr, 0.1, 20, o.steps, 0.9, 0.95, 1e-8, 0.01});
    // Feature scale: embeddings are small; standardise with training statistics.
    torch::Tensor mu = x_train.mean(0), sd = x_train.std(0).clamp_min(1e-6);
    ProgressBar bar("intent", static_cast<uint64_t>(o.steps), "steps");
    for (int64_t step = 0; step < o.steps; ++step) {
        for (auto& p : params) p.second.mutable_grad() = torch::Tensor();
        torch::Tensor loss = torch::binary_cross_entropy_with_logits(net.forward((x_train - mu) / sd), y_train);
        loss.backward();
        opt.step();
        bar.set_note(fmt::format("bce {:.4f}", loss.item<double>()));
        bar.advance(1);
    }
    bar.finish();

    // Fold the standardisation into up_proj so the saved network takes raw features:
    // W ((x - mu) / sd) = (W / sd) x - (W / sd) mu, i.e. a scaled weight and a bias.
    torch::NoGradGuard ng;
    torch::Tensor w_up = net.up_proj->weight / sd.unsqueeze(0);  // [D, 2H]
    torch::Tensor b_up = -(w_up * mu.unsqueeze(0)).sum(1);       // [D]
    auto values = [](const torch::Tensor& t) {
        const torch::Tensor x = t.contiguous();
        return std::vector<float>(x.data_ptr<float>(), x.data_ptr<float>() + x.numel());
    };
    IntentClassifier ic;
    ic.present = true;
    ic.hidden = o.hidden;
    ic.horizon = o.horizon;
    ic.tail_tokens = kTailTokens;
    ic.holdout = o.holdout;
    ic.up_w = values(w_up);
    ic.up_b = values(b_up);
    ic.out_w = values(net.out_proj->weight);
    ic.out_b = values(net.out_proj->bias);
    intent_save(o.model, ic, c);
    torch::Tensor scores = torch::silu(torch::addmm(b_up, x_eval, w_up.t()));
    scores = torch::addmm(net.out_proj->bias, scores, net.out_proj->weight.t());
    return evaluate(scores, d, std::max<int64_t>(1, pairs / 4));
}

IntentMetrics intent_eval(const std::string& model_dir, const std::string& trace_path, double budget_fraction, double holdout) {
    Checkpoint ck = checkpoint_open(model_dir);
    const ModelConfig& c = ck.config;
    IntentClassifier ic = intent_load(model_dir, c);
    if (!ic.present) fail("{} has no intent classifier (train one with `chronos train intent`)", model_dir);
    Trace trace = trace_read(trace_path);
    TensorView ev = ck.weights->tensor("model.embed_tokens.weight");
    torch::Tensor embed = torch::from_blob(const_cast<uint8_t*>(ev.data), {c.vocab_size, c.hidden_size}, torch::kFloat32);
    IntentData d = intent_data(trace, embed, ic.horizon, holdout);
    const int64_t pairs = c.n_moe_layers() * c.n_routed_experts, D = ic.hidden;
    auto t = [](std::vector<float>& v, std::vector<int64_t> shape) { return torch::from_blob(v.data(), shape, torch::kFloat32); };
    torch::NoGradGuard ng;
    torch::Tensor x_eval = rows_where(d.features, d.held_out, true);
    torch::Tensor h = torch::silu(torch::addmm(t(ic.up_b, {D}), x_eval, t(ic.up_w, {D, 2 * c.hidden_size}).t()));
    torch::Tensor scores = torch::addmm(t(ic.out_b, {pairs}), h, t(ic.out_w, {pairs, D}).t());
    const int64_t budget = std::max<int64_t>(1, static_cast<int64_t>(budget_fraction * static_cast<double>(pairs)));
    IntentMetrics m = evaluate(scores, d, budget);
    if (file_exists(model_dir + "/cluster_manifest.json")) {
        std::vector<int64_t> reads = reads_per_prompt(scores, budget, pack_manifest_load(model_dir, c));
        std::sort(reads.begin(), reads.end());
        m.reads_median = reads[reads.size() / 2];
        m.reads_mean = std::accumulate(reads.begin(), reads.end(), 0.0) / static_cast<double>(reads.size());
    }
    return m;
}

}  // namespace chronos
