// evaluate.cpp: see evaluate.h.
#include "runtime/evaluate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>

#include "core/error.h"
#include "core/progress.h"
#include "runtime/session.h"

namespace chronos::rt {

namespace {

// log-softmax of logits [V] into out [V], in double.
void log_softmax(const float* logits, int64_t V, std::vector<double>& out) {
    double m = logits[0];
    for (int64_t i = 1; i < V; ++i) m = std::max(m, static_cast<double>(logits[i]));
    double sum = 0;
    for (int64_t i = 0; i < V; ++i) sum += std::exp(static_cast<double>(logits[i]) - m);
    const double lse = m + std::log(sum);
    for (int64_t i = 0; i < V; ++i) out[static_cast<size_t>(i)] = static_cast<double>(logits[i]) - lse;
}

int64_t argmax(const std::vector<double>& v) {
    int64_t best = 0;
    for (size_t i = 1; i < v.size(); ++i) best = v[i] > v[static_cast<size_t>(best)] ? static_cast<int64_t>(i) : best;
    return best;
}

// Runs one window through a session, calling at(t, logits [V]) for positions 0 .. T-1.
template <typename F>
void run_window(Session& s, const int32_t* ids, int64_t T, EvalPath path, std::vector<float>& all, int64_t V, F at) {
    if (path == EvalPath::prefill) {
        s.prefill(ids, T, all.data());
        for (int64_t t = 0; t < T; ++t) at(t, all.data() + t * V);
        return;
    }
    s.prefill(ids, 1);
    at(0, s.logits());
    for (int64_t t = 1; t < T; ++t) {
        s.decode(ids[t]);
        at(t, s.logits());
    }
}

}  // namespace

const char* eval_path_name(EvalPath p) { return p == EvalPath::prefill ? "prefill" : "decode"; }

EvalResult eval_perplexity(const Model& model, const std::vector<int32_t>& tokens, const EvalOptions& o, const Model* reference) {
    const ModelConfig& c = model.config;
    const int64_t V = c.vocab_size, T = o.seq_len;
    if (T < 1 || T > c.max_position_embeddings) fail("--seq-len {} is not within the model's context of 1 .. {}", T, c.max_position_embeddings);
    if (static_cast<int64_t>(tokens.size()) < T + 1) fail("fewer than {} tokens to evaluate ({})", T + 1, tokens.size());
    if (reference != nullptr && reference->config.vocab_size != V) {
        fail("the reference has a vocabulary of {}, the model {}", reference->config.vocab_size, V);
    }
    if (reference != nullptr && T > reference->config.max_position_embeddings) {
        fail("--seq-len {} is beyond the reference's context of {} positions", T, reference->config.max_position_embeddings);
    }
    // Whole windows only: at most max_tokens predictions.
    if (o.max_tokens > 0 && o.max_tokens < T) fail("--max-tokens {} is less than one window of --seq-len {}", o.max_tokens, T);
    int64_t windows = static_cast<int64_t>(tokens.size() - 1) / T;
    if (o.max_tokens > 0) windows = std::min(windows, o.max_tokens / T);

    // Resident sessions: every expert in RAM, so that only the weights' values matter.
    SessionOptions so;
    so.mode = MissMode::resident;
    Session s(model, so);
    std::unique_ptr<Session> rs;
    if (reference != nullptr) rs = std::make_unique<Session>(*reference, so);
    // The model's window of logits (prefill fills it at once; decode hands them out a row at a
    // time), and the reference's [T, V], which the model's rows are compared with.
    std::vector<float> all(o.path == EvalPath::prefill ? static_cast<size_t>(T * V) : 0);
    std::vector<float> ref_all(reference != nullptr ? static_cast<size_t>(T * V) : 0);
    std::vector<double> lp(static_cast<size_t>(V)), lq(static_cast<size_t>(V));

    EvalResult r;
    double nll = 0, kl = 0;
    int64_t agree = 0;
    const auto start = std::chrono::steady_clock::now();
    ProgressBar bar("eval", static_cast<uint64_t>(windows), "windows");
    for (int64_t w = 0; w < windows; ++w) {
        const int32_t* ids = tokens.data() + w * T;  // T inputs, T targets shifted by one
        if (reference != nullptr) {
            run_window(*rs, ids, T, o.path, ref_all, V, [&](int64_t t, const float* logits) {
                float* row = ref_all.data() + t * V;
                if (logits != row) std::copy(logits, logits + V, row);  // decode: the session's buffer
            });
        }
        run_window(s, ids, T, o.path, all, V, [&](int64_t t, const float* logits) {
            log_softmax(logits, V, lq);
            nll -= lq[static_cast<size_t>(ids[t + 1])];
            if (reference == nullptr) return;
            log_softmax(ref_all.data() + t * V, V, lp);
            double d = 0;
            for (int64_t i = 0; i < V; ++i) d += std::exp(lp[static_cast<size_t>(i)]) * (lp[static_cast<size_t>(i)] - lq[static_cast<size_t>(i)]);
            kl += d;
            agree += argmax(lp) == argmax(lq);
        });
        r.tokens += T;
        bar.advance(1);
    }
    bar.finish();
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    r.loss = nll / static_cast<double>(r.tokens);
    if (!std::isfinite(r.loss)) fail("the loss is {}: the model's weights give non-finite logits", r.loss);
    r.ppl = std::exp(r.loss);
    r.kl = reference != nullptr ? kl / static_cast<double>(r.tokens) : std::numeric_limits<double>::quiet_NaN();
    r.top1_agree = reference != nullptr ? static_cast<double>(agree) / static_cast<double>(r.tokens) : std::numeric_limits<double>::quiet_NaN();
    return r;
}

}  // namespace chronos::rt
