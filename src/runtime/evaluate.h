// evaluate.h: held-out perplexity computed by the runtime itself, on the weights as packed
// (any stored type), so that quantization error is measured where generation pays it; and the
// KL divergence of its next-token distributions from a reference checkpoint's (e.g. the same
// model packed f32). The windows are those `chronos eval ppl` reads with libtorch: consecutive,
// non-overlapping, seq_len predictions each.
//
//     chronos::rt::Model q4("runs/small-q4"), f32("runs/small");
//     chronos::rt::EvalOptions o{.seq_len = 256, .path = chronos::rt::EvalPath::decode};
//     chronos::rt::EvalResult r = chronos::rt::eval_perplexity(q4, tokens, o, &f32);   // r.ppl, r.kl
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/model.h"

namespace chronos::rt {

// prefill: each window as one prompt (batched products, fp32 activations). decode: the first
// token as the prompt, then one decode step per token, the path generation takes (q8/q4
// products quantize the activations there).
enum class EvalPath : uint8_t { prefill, decode };
const char* eval_path_name(EvalPath p);

struct EvalOptions {
    int64_t seq_len = 256;
    int64_t max_tokens = 0;   // at most this many predictions (0: every window)
    EvalPath path = EvalPath::decode;
};

struct EvalResult {
    int64_t tokens = 0;        // predictions scored
    double loss = 0, ppl = 0;  // mean cross-entropy (nats) and its exp
    // Against the reference (NaN without one): mean KL(reference || this model) in nats per
    // token, and the share of positions whose most likely token is the same.
    double kl = 0, top1_agree = 0;
    double seconds = 0;
};

// Throws if the token stream holds fewer than seq_len + 1 tokens, seq_len exceeds the context,
// or the reference's vocabulary differs.
EvalResult eval_perplexity(const Model& model, const std::vector<int32_t>& tokens, const EvalOptions& options,
                           const Model* reference = nullptr);

}  // namespace chronos::rt
