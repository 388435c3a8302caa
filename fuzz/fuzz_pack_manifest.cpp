// fuzz_pack_manifest.cpp: libFuzzer target for pack_manifest_parse (cluster_manifest.json),
// against the `tiny` config's shape (2 layers x 4 experts, hidden 64, inner 96), which the
// seeds in corpus/pack_manifest were packed from. Any input must either parse into a manifest
// whose every pair has one entry inside one file, in cluster order without overlap, or be
// rejected with chronos::Error; a crash, a sanitizer report or another exception is a bug.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.h"
#include "fuzz_rejection.h"
#include "format/pack.h"

namespace {

chronos::ModelConfig tiny_config() {
    chronos::ModelConfig c;
    c.vocab_size = 300;
    c.hidden_size = 64;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.head_dim = 16;
    c.kv_lora_rank = 32;
    c.qk_nope_head_dim = 16;
    c.qk_rope_head_dim = 8;
    c.v_head_dim = 16;
    c.n_routed_experts = 4;
    c.num_experts_per_tok = 2;
    c.n_shared_experts = 1;
    c.moe_intermediate_size = 96;
    c.max_position_embeddings = 512;
    c.sliding_window = 32;
    c.attention_pattern = {chronos::AttentionKind::mla, chronos::AttentionKind::swa};
    c.lookahead_steps = 2;
    c.lookahead_hidden_size = 64;
    chronos::config_validate(c, "fuzz config");
    return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const chronos::ModelConfig config = tiny_config();
    const std::string text(reinterpret_cast<const char*>(data), size);
    chronos::PackManifest m;
    try {
        m = chronos::pack_manifest_parse(text, "fuzz", config);
    } catch (const chronos::Error& e) {
        fuzz_check_rejection(e);  // rejected cleanly
        return 0;
    }
    // Accepted: the promises of the reader must hold.
    const int64_t L = config.num_hidden_layers, E = config.n_routed_experts;
    if (m.layers != L || m.experts != E || m.hidden != config.hidden_size || m.inner != config.moe_intermediate_size) std::abort();
    if (m.entries.size() != static_cast<size_t>(L * E)) std::abort();
    if (m.files.size() != m.file_bytes.size() || m.files.size() != m.clusters.size()) std::abort();
    const uint64_t length = chronos::pack_expert_bytes(m.dtype, m.hidden, m.inner);
    std::vector<int> listed(m.entries.size(), 0);
    for (size_t f = 0; f < m.files.size(); ++f) {
        const std::string& rel = m.files[f];
        if (rel.empty() || rel[0] == '/' || rel == ".." || rel.rfind("../", 0) == 0 || rel.find("/../") != std::string::npos) std::abort();
        uint64_t end = 0;
        for (int64_t p : m.clusters[f]) {
            if (p < 0 || p >= L * E) std::abort();
            listed[static_cast<size_t>(p)]++;
            const chronos::PackEntry& en = m.entries[static_cast<size_t>(p)];
            if (en.layer * E + en.expert != p || &m.entry(en.layer, en.expert) != &en) std::abort();
            if (en.file != static_cast<int32_t>(f)) std::abort();
            if (en.offset % chronos::kPackAlignment != 0 || en.length != length) std::abort();
            if (en.offset < end) std::abort();
            if (en.offset > m.file_bytes[f] || en.length > m.file_bytes[f] - en.offset) std::abort();
            end = en.offset + en.length;
        }
    }
    for (int n : listed) {
        if (n != 1) std::abort();
    }
    return 0;
}
