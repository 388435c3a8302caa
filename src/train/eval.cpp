// eval.cpp: `chronos eval ppl|routing|logits` on a checkpoint with the libtorch model.
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_io.h"
#include "core/progress.h"
#include "data/token_stream.h"
#include "train/checkpoint_io.h"
#include "train/objective.h"
#include "train/train_api.h"

namespace chronos {

namespace {

struct EvalSetup {
    Checkpoint ck;
    ChronosModel model{nullptr};
    std::unique_ptr<Tokenizer> tok;
    std::vector<int32_t> tokens;
};

EvalSetup eval_setup(const std::string& model_dir, const std::string& data, int64_t seq_len, int64_t max_tokens) {
    EvalSetup s;
    s.ck = checkpoint_open(model_dir);
    if (s.ck.tokenizer_path.empty()) fail("{}: no tokenizer.model in the checkpoint", model_dir);
    if (seq_len > s.ck.config.max_position_embeddings) {
        fail("--seq-len {} exceeds the model's max_position_embeddings {}", seq_len, s.ck.config.max_position_embeddings);
    }
    s.model = ChronosModel(s.ck.config);
    model_copy_weights(s.model, s.ck);
    s.model->eval();
    s.tok = std::make_unique<Tokenizer>(s.ck.tokenizer_path);
    if (s.tok->vocab_size() != s.ck.config.vocab_size) fail("{}: tokenizer and config disagree on the vocabulary size", model_dir);
    s.tokens = tokens_load_pretrain(data, *s.tok);
    if (max_tokens > 0 && static_cast<int64_t>(s.tokens.size()) > max_tokens + 1) s.tokens.resize(static_cast<size_t>(max_tokens + 1));
    if (static_cast<int64_t>(s.tokens.size()) < seq_len + 1) fail("{}: fewer than {} tokens to evaluate", data, seq_len + 1);
    return s;
}

// Calls fn(ids [rows, T + 1]) for consecutive non-overlapping windows.
template <typename F>
void for_windows(const std::vector<int32_t>& tokens, int64_t seq_len, int64_t rows, F fn) {
    const int64_t windows = static_cast<int64_t>(tokens.size() - 1) / seq_len;
    ProgressBar bar("eval", static_cast<uint64_t>(windows), "windows");
    for (int64_t w = 0; w < windows; w += rows) {
        const int64_t r = std::min(rows, windows - w);
        fn(window_ids(tokens, w, r, seq_len));
        bar.advance(static_cast<uint64_t>(r));
    }
    bar.finish();
}

}  // namespace

EvalPplResult eval_ppl(const std::string& model_dir, const std::string& data, int64_t seq_len, int64_t max_tokens) {
    EvalSetup s = eval_setup(model_dir, data, seq_len, max_tokens);
    torch::NoGradGuard ng;
    double sum = 0;
    int64_t n = 0;
    for_windows(s.tokens, seq_len, 8, [&](const torch::Tensor& ids) {
        ObjectiveTerms t = objective_pretrain(s.model, ids);
        const int64_t count = ids.size(0) * seq_len;
        sum += t.ce.item<double>() * static_cast<double>(count);
        n += count;
    });
    EvalPplResult r;
    r.tokens = n;
    r.loss = sum / static_cast<double>(n);
    r.ppl = std::exp(r.loss);
    return r;
}

EvalRoutingResult eval_routing(const std::string& model_dir, const std::string& data, int64_t seq_len, int64_t max_tokens) {
    EvalSetup s = eval_setup(model_dir, data, seq_len, max_tokens);
    const ModelConfig& c = s.ck.config;
    const int64_t L = c.n_moe_layers(), E = c.n_routed_experts, k = c.num_experts_per_tok, K = c.lookahead_steps;
    torch::NoGradGuard ng;
    std::vector<double> changed(static_cast<size_t>(L), 0), pairs(static_cast<size_t>(L), 0);
    std::vector<std::vector<double>> hit(static_cast<size_t>(K), std::vector<double>(static_cast<size_t>(L), 0));
    std::vector<double> la_pairs(static_cast<size_t>(K), 0);
    // Copying: t's set as the prediction of t+j's, for j = 1..K+1. At token t the head knows
    // the full routing of t-1 only, so copy at j+1 is the predictor it has to beat at t+j.
    // (K + 1 distances, at least 2, so that a model without a head still reports the t-1 -> t+1 copy.)
    const int64_t C = std::max<int64_t>(K, 1) + 1;
    std::vector<double> copy_hit(static_cast<size_t>(C), 0), copy_pairs(static_cast<size_t>(C), 0);
    torch::Tensor load = torch::zeros({L, E}, torch::kFloat64);
    int64_t tokens = 0;
    for_windows(s.tokens, seq_len, 8, [&](const torch::Tensor& ids) {
        const int64_t B = ids.size(0), T = seq_len;
        ForwardOutput out = s.model->forward(ids.narrow(1, 0, T));
        tokens += B * T;
        for (int64_t l = 0; l < L; ++l) {
            const torch::Tensor& topk = out.router_topk[static_cast<size_t>(l)];  // [B, T, k]
            torch::Tensor sets = torch::zeros({B, T, E}, torch::kFloat32).scatter_(2, topk, 1.0f);
            // Switch rate: experts of t+1's set that were not in t's set.
            torch::Tensor same = (sets.narrow(1, 0, T - 1) * sets.narrow(1, 1, T - 1)).sum(-1);
            changed[static_cast<size_t>(l)] += (static_cast<double>(k) * static_cast<double>(B * (T - 1))) - same.sum().item<double>();
            pairs[static_cast<size_t>(l)] += static_cast<double>(B * (T - 1) * k);
            load[l] += sets.sum(std::vector<int64_t>{0, 1}).to(torch::kFloat64);
            for (int64_t j = 2; j <= C && j < T; ++j) {  // j = 1 is the switch rate's `same`
                copy_hit[static_cast<size_t>(j - 1)] += (sets.narrow(1, 0, T - j) * sets.narrow(1, j, T - j)).sum().item<double>();
                copy_pairs[static_cast<size_t>(j - 1)] += static_cast<double>(B * (T - j) * k);
            }
            // Lookahead recall@k: of the experts used at t+j, the share the head's top-k named at t.
            for (int64_t j = 1; j <= K && j < T; ++j) {
                torch::Tensor z = out.lookahead_logits.select(2, j - 1).select(2, l).narrow(1, 0, T - j);  // [B, T-j, E]
                torch::Tensor pred = std::get<1>(z.topk(k, -1));
                torch::Tensor pred_sets = torch::zeros({B, T - j, E}, torch::kFloat32).scatter_(2, pred, 1.0f);
                hit[static_cast<size_t>(j - 1)][static_cast<size_t>(l)] += (pred_sets * sets.narrow(1, j, T - j)).sum().item<double>();
                if (l == 0) la_pairs[static_cast<size_t>(j - 1)] += static_cast<double>(B * (T - j) * k);
            }
        }
    });
    EvalRoutingResult r;
    r.tokens = tokens;
    double total_changed = 0, total_pairs = 0;
    for (int64_t l = 0; l < L; ++l) {
        r.switch_rate.push_back(changed[static_cast<size_t>(l)] / pairs[static_cast<size_t>(l)]);
        total_changed += changed[static_cast<size_t>(l)];
        total_pairs += pairs[static_cast<size_t>(l)];
        torch::Tensor row = load[l] / load[l].sum();
        r.load.emplace_back(row.data_ptr<double>(), row.data_ptr<double>() + E);
    }
    r.switch_rate_mean = total_changed / total_pairs;
    r.copy_recall.push_back(1.0 - r.switch_rate_mean);
    for (int64_t j = 1; j < C; ++j) r.copy_recall.push_back(copy_pairs[static_cast<size_t>(j)] > 0 ? copy_hit[static_cast<size_t>(j)] / copy_pairs[static_cast<size_t>(j)] : 0.0);
    for (int64_t j = 0; j < K; ++j) {
        std::vector<double> per_layer;
        double sum = 0;
        for (int64_t l = 0; l < L; ++l) {
            per_layer.push_back(hit[static_cast<size_t>(j)][static_cast<size_t>(l)] / la_pairs[static_cast<size_t>(j)]);
            sum += per_layer.back();
        }
        r.lookahead_recall_layer.push_back(per_layer);
        r.lookahead_recall.push_back(sum / static_cast<double>(L));
    }
    return r;
}

void eval_logits(const std::string& model_dir, const std::string& text, const std::string& out_path) {
    Checkpoint ck = checkpoint_open(model_dir);
    if (ck.tokenizer_path.empty()) fail("{}: no tokenizer.model in the checkpoint", model_dir);
    ChronosModel model(ck.config);
    model_copy_weights(model, ck);
    model->eval();
    Tokenizer tok(ck.tokenizer_path);
    std::vector<int32_t> ids = tok.encode(text);
    if (ids.empty()) fail("--text encodes to no tokens");
    if (static_cast<int64_t>(ids.size()) > ck.config.max_position_embeddings) {
        fail("--text has {} tokens, more than the context of {}", ids.size(), ck.config.max_position_embeddings);
    }
    torch::NoGradGuard ng;
    torch::Tensor input = torch::from_blob(ids.data(), {1, static_cast<int64_t>(ids.size())}, torch::kInt32).to(torch::kInt64);
    torch::Tensor logits = model->forward(input).logits[0].contiguous();  // [T, V]
    nlohmann::json j;
    j["ids"] = ids;
    j["logits"] = nlohmann::json::array();
    for (int64_t t = 0; t < logits.size(0); ++t) {
        const float* row = logits[t].data_ptr<float>();
        j["logits"].push_back(std::vector<float>(row, row + logits.size(1)));
    }
    file_write_atomic(out_path, j.dump() + "\n");
}


EagerDecodeResult eager_decode(const std::string& model_dir, const std::vector<std::vector<int32_t>>& prompts,
                               const std::vector<std::vector<int32_t>>& continuations, int threads) {
    torch::NoGradGuard no_grad;
    torch::set_num_threads(threads);
    ChronosModel model = model_load(model_dir);
    model->eval();
    EagerDecodeResult r;
    for (size_t i = 0; i < prompts.size(); ++i) {
        std::vector<LayerCache> cache;
        ForwardOptions fo;
        fo.cache = &cache;
        std::vector<int64_t> p(prompts[i].begin(), prompts[i].end());
        model->forward(torch::tensor(p, torch::kInt64).view({1, -1}), fo);
        const auto t0 = std::chrono::steady_clock::now();
        for (int32_t id : continuations[i]) {
            ForwardOptions step;
            step.cache = &cache;
            model->forward(torch::full({1, 1}, static_cast<int64_t>(id), torch::kInt64), step);
        }
        r.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        r.tokens += static_cast<int64_t>(continuations[i].size());
    }
    return r;
}

}  // namespace chronos
