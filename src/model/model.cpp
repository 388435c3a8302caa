// model.cpp: decoder layers, the full model forward, and weight initialisation.
#include "core/error.h"
#include "model/model.h"

namespace chronos {

DecoderLayerImpl::DecoderLayerImpl(const ModelConfig& c, int64_t layer) : kind(c.attention_pattern[static_cast<size_t>(layer)]) {
    input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
    post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
    if (kind == AttentionKind::mla) {
        mla = register_module("self_attn", MlaAttention(c));
    } else {
        gqa = register_module("self_attn", GqaAttention(c, kind == AttentionKind::swa ? c.sliding_window : 0));
    }
    if (c.is_moe_layer(layer)) {
        mlp = register_module("mlp", MoeLayer(c));
    } else {
        dense = register_module("mlp", Expert(c.hidden_size, c.intermediate_size));
    }
}

DecoderImpl::DecoderImpl(const ModelConfig& c) {
    embed_tokens = register_module("embed_tokens", torch::nn::Embedding(c.vocab_size, c.hidden_size));
    layers = register_module("layers", torch::nn::ModuleList());
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) layers->push_back(DecoderLayer(c, l));
    norm = register_module("norm", RMSNorm(c.hidden_size, c.rms_norm_eps));
}

ChronosModelImpl::ChronosModelImpl(const ModelConfig& c, const LossWeights& w) : config(c), losses(w) {
    config_validate(c, "model config");
    loss_weights_validate(w, "model config");
    model = register_module("model", Decoder(c));
    if (!c.tie_word_embeddings) {
        lm_head = register_module("lm_head", torch::nn::Linear(torch::nn::LinearOptions(c.hidden_size, c.vocab_size).bias(false)));
    }
    if (c.lookahead_steps > 0) lookahead = register_module("lookahead", LookaheadHead(c));
    init_weights();
}

void ChronosModelImpl::init_weights() {
    torch::NoGradGuard no_grad;
    for (auto& p : named_parameters()) {
        if (p.value().dim() == 1 && p.key().size() >= 4 && p.key().compare(p.key().size() - 4, 4, "bias") == 0) {
            p.value().zero_();  // projection biases, the router's score correction
        } else if (p.value().dim() == 1) {
            p.value().fill_(1.0);  // norm weights
        } else {
            p.value().normal_(0.0, 0.02);
        }
    }
}

ForwardOutput ChronosModelImpl::forward(const torch::Tensor& ids, const ForwardOptions& options) {
    CHRONOS_ASSERT(ids.dim() == 2, "ids must be [B, T]");
    const int64_t B = ids.size(0), T = ids.size(1), H = config.hidden_size;
    const int64_t L = config.num_hidden_layers, Lm = config.n_moe_layers();
    if (options.cache != nullptr && static_cast<int64_t>(options.cache->size()) != L) options.cache->resize(static_cast<size_t>(L));
    ForwardOutput out;
    torch::Tensor h = model->embed_tokens(ids);  // [B, T, H]
    torch::Tensor h_la;                          // after block lookahead_input_layer, for the lookahead head
    for (int64_t l = 0; l < L; ++l) {
        auto layer = model->layers[static_cast<size_t>(l)]->as<DecoderLayer>();
        LayerCache* cache = options.cache ? &(*options.cache)[static_cast<size_t>(l)] : nullptr;
        torch::Tensor a_in = layer->input_layernorm(h);
        torch::Tensor attn = layer->kind == AttentionKind::mla ? layer->mla->forward(a_in, options.positions, cache)
                                                               : layer->gqa->forward(a_in, options.positions, cache);
        h = h + attn;
        if (layer->mlp.is_empty()) {
            h = h + layer->dense->forward(layer->post_attention_layernorm(h).reshape({B * T, H})).view({B, T, H});
        } else {
            const int64_t m = static_cast<int64_t>(out.router_probs.size());  // MoE index of layer l
            torch::Tensor avail = options.availability.defined() ? options.availability[m] : torch::Tensor();
            torch::Tensor keep = options.keep.defined() ? options.keep[m].reshape({B * T, -1}) : torch::Tensor();
            MoeOutput moe = layer->mlp->forward(layer->post_attention_layernorm(h).reshape({B * T, H}), avail, keep);
            h = h + moe.y.view({B, T, H});
            out.router_probs.push_back(moe.probs.view({B, T, config.n_routed_experts}));
            out.router_topk.push_back(moe.topk.view({B, T, config.num_experts_per_tok}));
        }
        if (l == config.lookahead_input_layer) h_la = h;
    }
    // The lookahead reads detached inputs: its loss trains the head only and never reaches the
    // routers (or anything else) it learns from.
    if (!lookahead.is_empty()) {
        const int64_t E = config.n_routed_experts;
        torch::Tensor route = torch::cat(out.router_probs, -1).detach();  // [B, T, Lm*E]
        torch::Tensor first = options.prev_route.defined() ? options.prev_route.view({B, 1, Lm * E}).to(route.scalar_type())
                                                           : torch::zeros({B, 1, Lm * E}, route.options());
        // Read after the last block, the head sees t's own routing; read earlier, t-1's (t has
        // not reached its later layers yet when the runtime calls it).
        torch::Tensor prev = lookahead_reads_own_routing(config) ? route : T > 1 ? torch::cat({first, route.narrow(1, 0, T - 1)}, 1) : first;
        out.lookahead_logits = lookahead->forward(h_la.detach(), prev);
    }
    torch::Tensor hn = model->norm(h);
    out.logits = config.tie_word_embeddings ? torch::matmul(hn, model->embed_tokens->weight.t()) : lm_head(hn);
    return out;
}

}  // namespace chronos
