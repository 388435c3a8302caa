// trace_record.cpp: `chronos trace` — teacher-forced routing of prompt + continuation.
//
// Prompt and continuation by record kind: sft -> the chat template up to the first assistant
// turn's generation prompt, then that reply; prompts -> chat-templated question, then the
// answer; pretrain text -> the first `pretrain_prompt` tokens, then what follows.
#include <spdlog/spdlog.h>

#include "format/trace.h"
#include "core/error.h"
#include "core/progress.h"
#include "data/jsonl.h"
#include "data/records.h"
#include "train/checkpoint_io.h"
#include "train/train_api.h"

namespace chronos {

int64_t trace_record(const TraceOptions& o) {
    Checkpoint ck = checkpoint_open(o.model);
    if (ck.tokenizer_path.empty()) fail("{}: no tokenizer in the checkpoint (tokenizer.model, or tokenizer.json for an imported model)", o.model);
    Tokenizer tok(ck.tokenizer_path);
    ChronosModel model(ck.config);
    model_copy_weights(model, ck);
    model->eval();
    const ModelConfig& c = ck.config;
    const int64_t max_len = c.max_position_embeddings;

    // Prompt / continuation token pairs.
    std::vector<std::pair<std::vector<int32_t>, std::vector<int32_t>>> items;
    if (o.stride < 1) fail("--stride must be at least 1");
    int64_t record = 0;
    jsonl_read(o.data, [&](const nlohmann::json& j, int64_t line) {
        if (static_cast<int64_t>(items.size()) >= o.max_sequences) return;
        if (record++ % o.stride != 0) return;
        const std::string where = fmt::format("{}:{}", o.data, line);
        std::vector<int32_t> prompt, cont;
        if (j.contains("conversations")) {
            SftRecord r = sft_from_json(j, where);
            std::vector<ChatMessage> before;
            for (const ChatMessage& m : r.conversations) {
                if (m.role == "assistant") {
                    prompt = chat_encode(tok, before, true).ids;
                    cont = tok.encode(m.content);
                    cont.push_back(tok.end_of_turn());
                    break;
                }
                before.push_back(m);
            }
        } else if (j.contains("answer")) {
            PromptRecord r = prompt_from_json(j, where);
            prompt = chat_encode(tok, {{"user", r.prompt}}, true).ids;
            cont = tok.encode(r.answer);
            cont.push_back(tok.end_of_turn());
        } else {
            std::vector<int32_t> all = tok.encode(pretrain_from_json(j, where).text);
            if (static_cast<int64_t>(all.size()) <= o.pretrain_prompt) return;
            prompt.assign(all.begin(), all.begin() + o.pretrain_prompt);
            cont.assign(all.begin() + o.pretrain_prompt, all.end());
        }
        if (static_cast<int64_t>(cont.size()) > o.max_continuation) cont.resize(static_cast<size_t>(o.max_continuation));
        if (prompt.empty() || cont.empty()) return;
        if (static_cast<int64_t>(prompt.size() + cont.size()) > max_len) return;  // does not fit the context
        items.emplace_back(std::move(prompt), std::move(cont));
    });
    if (items.empty()) fail("{}: no records fit the model's context", o.data);

    const TraceShape shape{static_cast<uint32_t>(c.n_moe_layers()), static_cast<uint32_t>(c.n_routed_experts),
                           static_cast<uint32_t>(c.num_experts_per_tok)};
    TraceWriter writer(o.out, shape);
    torch::NoGradGuard ng;
    ProgressBar bar("trace", items.size(), "sequences");
    for (const auto& [prompt, cont] : items) {
        TraceSequence seq;
        for (int32_t id : prompt) seq.tokens.push_back(static_cast<uint32_t>(id));
        for (int32_t id : cont) seq.tokens.push_back(static_cast<uint32_t>(id));
        seq.prompt_len = static_cast<uint32_t>(prompt.size());
        const int64_t T = static_cast<int64_t>(seq.tokens.size());
        torch::Tensor ids = torch::from_blob(seq.tokens.data(), {1, T}, torch::kInt32).to(torch::kInt64);
        ForwardOutput out = model->forward(ids);
        // [T, L, k] experts and their renormalised weights.
        std::vector<torch::Tensor> ex, wt;
        for (int64_t l = 0; l < c.n_moe_layers(); ++l) {
            torch::Tensor topk = out.router_topk[static_cast<size_t>(l)][0];  // [T, k]
            torch::Tensor w = out.router_probs[static_cast<size_t>(l)][0].gather(1, topk);
            if (c.norm_topk_prob) w = w / w.sum(-1, true);
            ex.push_back(topk);
            wt.push_back(w);
        }
        torch::Tensor experts = torch::stack(ex, 1).to(torch::kInt32).contiguous();
        torch::Tensor weights = torch::stack(wt, 1).to(torch::kFloat32).contiguous();
        const int32_t* e = experts.data_ptr<int32_t>();
        seq.experts.assign(e, e + experts.numel());
        seq.weights.assign(weights.data_ptr<float>(), weights.data_ptr<float>() + weights.numel());
        writer.add_sequence(seq);
        bar.advance(1);
    }
    bar.finish();
    writer.finish();
    return static_cast<int64_t>(items.size());
}

}  // namespace chronos
