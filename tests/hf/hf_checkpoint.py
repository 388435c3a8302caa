#!/usr/bin/python3
"""Tiny random Hugging Face MoE checkpoints in the published layouts, and their logits.

  hf_checkpoint.py make FAMILY OUT [--seed S] [--dtype bf16|f32] [--shards N] [--preset 1b]
                                   [--tokenizer DIR] [--vocab N]
      writes OUT/config.json (the fields the family's published config.json files carry, with
      small sizes), OUT/model-0000i-of-0000N.safetensors shards with the family's tensor names,
      shapes and dtype, OUT/model.safetensors.index.json and OUT/generation_config.json.
      --tokenizer: a published tokenizer folder (tokenizer.json, tokenizer_config.json) shipped
      with the weights; the config's bos/eos ids become the tokens its tokenizer_config names.
      --vocab: the vocabulary size (the published tokenizer's, padded as the real configs are).
  hf_checkpoint.py logits DIR IDS OUT
      the model's logits for the ids (one line of integers) in float64, computed here from the
      shards as the family's transformers code defines the forward pass, written as raw
      little-endian float64 [T, V]. Independent of Chronos: nothing here reads its code or files.

Families: mixtral, qwen2_moe, qwen3_moe, olmoe, deepseek_v2, deepseek_v3. NumPy only (python3-numpy
from Debian).
"""
import json
import os
import struct
import sys

import numpy as np

# Scaled-down configs: every field the published config.json of the family has, with the
# family's real values where they do not set sizes.
CONFIGS = {
    "mixtral": {
        "architectures": ["MixtralForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2,
        "hidden_act": "silu", "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 96,
        "max_position_embeddings": 256, "model_type": "mixtral", "num_attention_heads": 4, "num_experts_per_tok": 2,
        "num_hidden_layers": 3, "num_key_value_heads": 2, "num_local_experts": 8, "output_router_logits": False,
        "rms_norm_eps": 1e-05, "rope_theta": 1000000.0, "router_aux_loss_coef": 0.02, "router_jitter_noise": 0.0,
        "sliding_window": 24, "tie_word_embeddings": False, "torch_dtype": "bfloat16", "transformers_version": "4.46.0",
        "use_cache": True, "vocab_size": 384,
    },
    "qwen2_moe": {
        "architectures": ["Qwen2MoeForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643, "decoder_sparse_step": 1,
        "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 160,
        "max_position_embeddings": 512, "max_window_layers": 21, "model_type": "qwen2_moe", "moe_intermediate_size": 32,
        "norm_topk_prob": False, "num_attention_heads": 4, "num_experts": 12, "num_experts_per_tok": 4, "num_hidden_layers": 3,
        "num_key_value_heads": 4, "output_router_logits": False, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
        "router_aux_loss_coef": 0.001, "shared_expert_intermediate_size": 96, "sliding_window": 512,
        "tie_word_embeddings": True, "torch_dtype": "bfloat16", "transformers_version": "4.46.0", "use_cache": True,
        "use_sliding_window": False, "vocab_size": 384, "mlp_only_layers": [],
    },
    "qwen3_moe": {
        "architectures": ["Qwen3MoeForCausalLM"], "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": 151643,
        "decoder_sparse_step": 1, "eos_token_id": 151645, "head_dim": 32, "hidden_act": "silu", "hidden_size": 64,
        "initializer_range": 0.02, "intermediate_size": 192, "max_position_embeddings": 40960, "max_window_layers": 48,
        "mlp_only_layers": [], "model_type": "qwen3_moe", "moe_intermediate_size": 32, "norm_topk_prob": True,
        "num_attention_heads": 4, "num_experts": 16, "num_experts_per_tok": 4, "num_hidden_layers": 3,
        "num_key_value_heads": 2, "output_router_logits": False, "rms_norm_eps": 1e-06, "rope_scaling": None,
        "rope_theta": 1000000.0, "router_aux_loss_coef": 0.001, "sliding_window": None, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16", "transformers_version": "4.51.0", "use_cache": True, "use_sliding_window": False,
        "vocab_size": 384,
    },
    "olmoe": {
        "architectures": ["OlmoeForCausalLM"], "attention_bias": False, "attention_dropout": 0.0, "clip_qkv": 1.5,
        "eos_token_id": 50279, "hidden_act": "silu", "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 32,
        "max_position_embeddings": 4096, "model_type": "olmoe", "norm_topk_prob": False, "num_attention_heads": 4,
        "num_experts": 16, "num_experts_per_tok": 4, "num_hidden_layers": 3, "num_key_value_heads": 4,
        "output_router_logits": False, "pad_token_id": 1, "rms_norm_eps": 1e-05, "rope_scaling": None, "rope_theta": 10000.0,
        "router_aux_loss_coef": 0.01, "tie_word_embeddings": False, "torch_dtype": "float32", "transformers_version": "4.46.0",
        "use_cache": True, "vocab_size": 384,
    },
    "deepseek_v2": {
        "architectures": ["DeepseekV2ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0, "aux_loss_alpha": 0.001,
        "bos_token_id": 100000, "eos_token_id": 100001, "ep_size": 1, "first_k_dense_replace": 1, "hidden_act": "silu",
        "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 160, "kv_lora_rank": 32,
        "max_position_embeddings": 2048, "model_type": "deepseek_v2", "moe_intermediate_size": 32, "moe_layer_freq": 1,
        "n_group": 4, "n_routed_experts": 16, "n_shared_experts": 2, "norm_topk_prob": False, "num_attention_heads": 4,
        "num_experts_per_tok": 4, "num_hidden_layers": 3, "num_key_value_heads": 4, "pretraining_tp": 1, "q_lora_rank": None,
        "qk_nope_head_dim": 16, "qk_rope_head_dim": 8, "rms_norm_eps": 1e-06,
        "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 0.707, "mscale_all_dim": 0.707,
                         "original_max_position_embeddings": 64, "type": "yarn"},
        "rope_theta": 10000, "routed_scaling_factor": 2.0, "scoring_func": "softmax", "seq_aux": True,
        "tie_word_embeddings": False, "topk_group": 2, "topk_method": "group_limited_greedy", "torch_dtype": "bfloat16",
        "transformers_version": "4.39.3", "use_cache": True, "v_head_dim": 16, "vocab_size": 384,
    },
    "deepseek_v3": {
        "architectures": ["DeepseekV3ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0, "aux_loss_alpha": 0.001,
        "bos_token_id": 0, "eos_token_id": 1, "ep_size": 1, "first_k_dense_replace": 1, "hidden_act": "silu", "hidden_size": 64,
        "initializer_range": 0.02, "intermediate_size": 160, "kv_lora_rank": 32, "max_position_embeddings": 163840,
        "model_type": "deepseek_v3", "moe_intermediate_size": 32, "moe_layer_freq": 1, "n_group": 4, "n_routed_experts": 16,
        "n_shared_experts": 1, "norm_topk_prob": True, "num_attention_heads": 4, "num_experts_per_tok": 4,
        "num_hidden_layers": 3, "num_key_value_heads": 4, "num_nextn_predict_layers": 1, "q_lora_rank": 24,
        "qk_nope_head_dim": 16, "qk_rope_head_dim": 8, "rms_norm_eps": 1e-06,
        "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 1.0, "mscale_all_dim": 1.0,
                         "original_max_position_embeddings": 64, "type": "yarn"},
        "rope_theta": 10000, "routed_scaling_factor": 2.5, "scoring_func": "sigmoid", "seq_aux": True,
        "tie_word_embeddings": False, "topk_group": 2, "topk_method": "noaux_tc", "torch_dtype": "bfloat16",
        "transformers_version": "4.46.3", "use_cache": True, "v_head_dim": 16, "vocab_size": 384,
    },
}


def head_dim(c):
    return c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]


def tensor_shapes(family, c):
    """(name, shape) in the order the family's checkpoints list them."""
    if family.startswith("deepseek"):
        return deepseek_shapes(c)
    H, nh, nkv, hd, V = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"], head_dim(c), c["vocab_size"]
    out = [("model.embed_tokens.weight", (V, H))]
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}."
        out += [(p + "input_layernorm.weight", (H,)), (p + "post_attention_layernorm.weight", (H,)),
                (p + "self_attn.q_proj.weight", (nh * hd, H)), (p + "self_attn.k_proj.weight", (nkv * hd, H)),
                (p + "self_attn.v_proj.weight", (nkv * hd, H)), (p + "self_attn.o_proj.weight", (H, nh * hd))]
        if family == "qwen2_moe":
            out += [(p + "self_attn.q_proj.bias", (nh * hd,)), (p + "self_attn.k_proj.bias", (nkv * hd,)),
                    (p + "self_attn.v_proj.bias", (nkv * hd,))]
        if family == "qwen3_moe":
            out += [(p + "self_attn.q_norm.weight", (hd,)), (p + "self_attn.k_norm.weight", (hd,))]
        if family == "olmoe":
            out += [(p + "self_attn.q_norm.weight", (nh * hd,)), (p + "self_attn.k_norm.weight", (nkv * hd,))]
        if family == "mixtral":
            E, F = c["num_local_experts"], c["intermediate_size"]
            out.append((p + "block_sparse_moe.gate.weight", (E, H)))
            for e in range(E):
                q = f"{p}block_sparse_moe.experts.{e}."
                out += [(q + "w1.weight", (F, H)), (q + "w2.weight", (H, F)), (q + "w3.weight", (F, H))]
        else:
            E = c["num_experts"]
            F = c["intermediate_size"] if family == "olmoe" else c["moe_intermediate_size"]
            out.append((p + "mlp.gate.weight", (E, H)))
            for e in range(E):
                q = f"{p}mlp.experts.{e}."
                out += [(q + "gate_proj.weight", (F, H)), (q + "up_proj.weight", (F, H)), (q + "down_proj.weight", (H, F))]
            if family == "qwen2_moe":
                Fs = c["shared_expert_intermediate_size"]
                out += [(p + "mlp.shared_expert.gate_proj.weight", (Fs, H)), (p + "mlp.shared_expert.up_proj.weight", (Fs, H)),
                        (p + "mlp.shared_expert.down_proj.weight", (H, Fs)), (p + "mlp.shared_expert_gate.weight", (1, H))]
    out.append(("model.norm.weight", (H,)))
    if not c.get("tie_word_embeddings", False):
        out.append(("lm_head.weight", (V, H)))
    return out


def deepseek_shapes(c):
    H, nh, V, r = c["hidden_size"], c["num_attention_heads"], c["vocab_size"], c["kv_lora_rank"]
    dn, dr, dv, qr = c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"], c.get("q_lora_rank")
    E, F, I = c["n_routed_experts"], c["moe_intermediate_size"], c["intermediate_size"]
    out = [("model.embed_tokens.weight", (V, H))]
    for l in range(c["num_hidden_layers"] + c.get("num_nextn_predict_layers", 0)):
        p = f"model.layers.{l}."
        if l >= c["num_hidden_layers"]:  # a multi-token-prediction layer (V3): import must skip it
            out += [(p + "enorm.weight", (H,)), (p + "hnorm.weight", (H,)), (p + "eh_proj.weight", (H, 2 * H))]
            continue
        out += [(p + "input_layernorm.weight", (H,)), (p + "post_attention_layernorm.weight", (H,))]
        if qr:
            out += [(p + "self_attn.q_a_proj.weight", (qr, H)), (p + "self_attn.q_a_layernorm.weight", (qr,)),
                    (p + "self_attn.q_b_proj.weight", (nh * (dn + dr), qr))]
        else:
            out.append((p + "self_attn.q_proj.weight", (nh * (dn + dr), H)))
        out += [(p + "self_attn.kv_a_proj_with_mqa.weight", (r + dr, H)), (p + "self_attn.kv_a_layernorm.weight", (r,)),
                (p + "self_attn.kv_b_proj.weight", (nh * (dn + dv), r)), (p + "self_attn.o_proj.weight", (H, nh * dv))]
        if l < c["first_k_dense_replace"] or l % c["moe_layer_freq"] != 0:
            out += [(p + "mlp.gate_proj.weight", (I, H)), (p + "mlp.up_proj.weight", (I, H)), (p + "mlp.down_proj.weight", (H, I))]
            continue
        out.append((p + "mlp.gate.weight", (E, H)))
        if c["topk_method"] == "noaux_tc":
            out.append((p + "mlp.gate.e_score_correction_bias", (E,)))
        for e in range(E):
            q = f"{p}mlp.experts.{e}."
            out += [(q + "gate_proj.weight", (F, H)), (q + "up_proj.weight", (F, H)), (q + "down_proj.weight", (H, F))]
        Fs = c["n_shared_experts"] * F
        if Fs:
            out += [(p + "mlp.shared_experts.gate_proj.weight", (Fs, H)), (p + "mlp.shared_experts.up_proj.weight", (Fs, H)),
                    (p + "mlp.shared_experts.down_proj.weight", (H, Fs))]
    out.append(("model.norm.weight", (H,)))
    if not c.get("tie_word_embeddings", False):
        out.append(("lm_head.weight", (V, H)))
    return out


def to_bf16_bits(x):
    """float32 -> bfloat16 bits, round to nearest even."""
    b = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    b = (b + 0x7FFF + ((b >> 16) & 1)) >> 16
    return b.astype(np.uint16)


def write_safetensors(path, tensors, dtype):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, arr in tensors:
        bf16 = dtype == "bf16" and not name.endswith("e_score_correction_bias")  # V3 keeps this one in F32
        raw = to_bf16_bits(arr).tobytes() if bf16 else np.asarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "BF16" if bf16 else "F32", "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    return offset


# About a billion parameters in each family's proportions (the benchmarks' models): `--preset 1b`.
PRESETS_1B = {
    "qwen3_moe": {"hidden_size": 1024, "num_hidden_layers": 20, "num_attention_heads": 16, "num_key_value_heads": 4,
                  "head_dim": 64, "num_experts": 64, "num_experts_per_tok": 8, "moe_intermediate_size": 256,
                  "intermediate_size": 3072, "vocab_size": 151936, "max_position_embeddings": 40960},
    "deepseek_v2": {"hidden_size": 1024, "num_hidden_layers": 18, "num_attention_heads": 16, "num_key_value_heads": 16,
                    "kv_lora_rank": 256, "q_lora_rank": None, "qk_nope_head_dim": 64, "qk_rope_head_dim": 32,
                    "v_head_dim": 64, "n_routed_experts": 64, "n_shared_experts": 2, "num_experts_per_tok": 6,
                    "moe_intermediate_size": 256, "intermediate_size": 2816, "n_group": 1, "topk_group": 1,
                    "topk_method": "greedy", "vocab_size": 129280, "max_position_embeddings": 163840,
                    "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 0.707, "mscale_all_dim": 0.707,
                                     "original_max_position_embeddings": 4096, "type": "yarn"}},
}


def random_tensor(rng, name, shape):
    if len(shape) == 1 and name.endswith("norm.weight"):
        a = 1.0 + 0.2 * rng.standard_normal(shape, dtype=np.float32)
    elif name.endswith("e_score_correction_bias"):
        a = rng.uniform(0.0, 0.1, shape)  # positive: no unmasked expert scores below a masked group's 0
    elif name.endswith(".bias"):
        a = 0.3 * rng.standard_normal(shape, dtype=np.float32)
    elif name.endswith("gate.weight") and ("block_sparse_moe.gate" in name or "mlp.gate." in name):
        a = 0.5 * rng.standard_normal(shape, dtype=np.float32)  # a router sharp enough that routing varies
    else:
        a = 0.15 * rng.standard_normal(shape, dtype=np.float32)
    return np.asarray(a, dtype=np.float32)


def tokenizer_special_ids(folder):
    """{"bos_token_id": id, "eos_token_id": id} for the tokens a tokenizer_config.json names."""
    cfg = json.load(open(os.path.join(folder, "tokenizer_config.json"), encoding="utf-8"))
    tok = json.load(open(os.path.join(folder, "tokenizer.json"), encoding="utf-8"))
    ids = {a["content"]: a["id"] for a in tok.get("added_tokens", [])}
    out = {}
    for key in ("bos_token", "eos_token"):
        v = cfg.get(key)
        content = v.get("content") if isinstance(v, dict) else v
        if content is not None:
            if content not in ids:
                sys.exit(f"{folder}: {key} {content!r} is not an added token")
            out[key + "_id"] = ids[content]
    return out


def make(family, out, seed=1, dtype="bf16", shards=2, preset=None, tokenizer=None, vocab=None):
    c = dict(CONFIGS[family])
    if preset == "1b":
        c.update(PRESETS_1B[family])
    elif preset is not None:
        sys.exit(f"unknown preset {preset}")
    if vocab is not None:
        c["vocab_size"] = int(vocab)
    if tokenizer:
        c.update(tokenizer_special_ids(tokenizer))
    c["torch_dtype"] = "bfloat16" if dtype == "bf16" else "float32"
    rng = np.random.default_rng(seed)
    shapes = tensor_shapes(family, c)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": c.get("bos_token_id", 0), "eos_token_id": c.get("eos_token_id", 0), "do_sample": False}, f)
    # One shard at a time, so that a large model never sits in memory whole.
    per = (len(shapes) + shards - 1) // shards
    weight_map, total = {}, 0
    for s in range(shards):
        part = [(name, random_tensor(rng, name, shape)) for name, shape in shapes[s * per:(s + 1) * per]]
        fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        total += write_safetensors(os.path.join(out, fname), part, dtype)
        for name, _ in part:
            weight_map[name] = fname
        del part
    if tokenizer:  # a published tokenizer folder (tokenizer.json, tokenizer_config.json) to ship with the weights
        for name in ("tokenizer.json", "tokenizer_config.json"):
            with open(os.path.join(tokenizer, name), "rb") as src, open(os.path.join(out, name), "wb") as dst:
                dst.write(src.read())
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)


def read_checkpoint(d):
    """name -> float64 array, from the shards the index names."""
    index = json.load(open(os.path.join(d, "model.safetensors.index.json")))
    out = {}
    for fname in sorted(set(index["weight_map"].values())):
        raw = open(os.path.join(d, fname), "rb").read()
        n = struct.unpack("<Q", raw[:8])[0]
        header = json.loads(raw[8:8 + n])
        base = 8 + n
        for name, t in header.items():
            if name == "__metadata__":
                continue
            b, e = t["data_offsets"]
            buf = raw[base + b:base + e]
            if t["dtype"] == "BF16":
                a = (np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
            else:
                a = np.frombuffer(buf, dtype="<f4")
            out[name] = a.astype(np.float64).reshape(t["shape"])
    return out


def rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, pos, theta):
    """x [T, n, d], rotate_half convention (transformers' apply_rotary_pos_emb)."""
    d = x.shape[-1]
    inv = 1.0 / theta ** (np.arange(0, d, 2, dtype=np.float64) / d)
    ang = np.concatenate([pos[:, None] * inv[None, :]] * 2, axis=-1)[:, None, :]
    rot = np.concatenate([-x[..., d // 2:], x[..., :d // 2]], axis=-1)
    return x * np.cos(ang) + rot * np.sin(ang)


def silu(x):
    return x / (1.0 + np.exp(-x))


def yarn_mscale(scale, m):
    return 1.0 if scale <= 1 else 0.1 * m * np.log(scale) + 1.0


def deepseek_rope(c):
    """inv_freq [dr/2], cos/sin factor and softmax scale, as DeepseekV2YarnRotaryEmbedding and the attention."""
    dr, base = c["qk_rope_head_dim"], c["rope_theta"]
    inv = 1.0 / base ** (np.arange(0, dr, 2, dtype=np.float64) / dr)
    scale, softmax_scale = 1.0, (c["qk_nope_head_dim"] + dr) ** -0.5
    rs = c.get("rope_scaling")
    if rs:
        f, omax = rs["factor"], rs["original_max_position_embeddings"]
        corr = lambda rot: (dr * np.log(omax / (rot * 2 * np.pi))) / (2 * np.log(base))
        low, high = max(np.floor(corr(rs.get("beta_fast", 32))), 0), min(np.ceil(corr(rs.get("beta_slow", 1))), dr - 1)
        if low == high:
            high += 0.001
        ramp = np.clip((np.arange(dr // 2, dtype=np.float64) - low) / (high - low), 0, 1)
        mask = 1.0 - ramp
        inv = (inv / f) * (1 - mask) + inv * mask
        scale = yarn_mscale(f, rs.get("mscale", 1)) / yarn_mscale(f, rs.get("mscale_all_dim", 0))
        if rs.get("mscale_all_dim", 0):
            softmax_scale *= yarn_mscale(f, rs["mscale_all_dim"]) ** 2
    return inv, scale, softmax_scale


def rope_interleaved(x, pos, inv, scale):
    """x [T, n, d] stored interleaved: de-interleave as DeepSeek's apply_rotary_pos_emb, then rotate halves."""
    T, n, d = x.shape
    x = x.reshape(T, n, d // 2, 2).transpose(0, 1, 3, 2).reshape(T, n, d)
    ang = np.concatenate([pos[:, None] * inv[None, :]] * 2, axis=-1)[:, None, :]
    rot = np.concatenate([-x[..., d // 2:], x[..., :d // 2]], axis=-1)
    return x * (np.cos(ang) * scale) + rot * (np.sin(ang) * scale)


def swiglu(W, p, x):
    return (silu(x @ W[p + "gate_proj.weight"].T) * (x @ W[p + "up_proj.weight"].T)) @ W[p + "down_proj.weight"].T


def forward_deepseek(family, c, W, ids):
    H, nh, r = c["hidden_size"], c["num_attention_heads"], c["kv_lora_rank"]
    dn, dr, dv, eps, T = c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"], c["rms_norm_eps"], len(ids)
    pos = np.arange(T, dtype=np.float64)
    inv, scale, softmax_scale = deepseek_rope(c)
    allowed = pos[None, :] <= pos[:, None]
    E, k_top, G = c["n_routed_experts"], c["num_experts_per_tok"], c.get("n_group", 1)
    h = W["model.embed_tokens.weight"][ids]
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}."
        x = rms_norm(h, W[p + "input_layernorm.weight"], eps)
        if c.get("q_lora_rank"):
            q = rms_norm(x @ W[p + "self_attn.q_a_proj.weight"].T, W[p + "self_attn.q_a_layernorm.weight"], eps) @ W[p + "self_attn.q_b_proj.weight"].T
        else:
            q = x @ W[p + "self_attn.q_proj.weight"].T
        q = q.reshape(T, nh, dn + dr)
        kv_a = x @ W[p + "self_attn.kv_a_proj_with_mqa.weight"].T
        c_kv = rms_norm(kv_a[:, :r], W[p + "self_attn.kv_a_layernorm.weight"], eps)
        kv = (c_kv @ W[p + "self_attn.kv_b_proj.weight"].T).reshape(T, nh, dn + dv)
        q_pe = rope_interleaved(q[:, :, dn:], pos, inv, scale)
        k_pe = rope_interleaved(kv_a[:, None, r:], pos, inv, scale)[:, 0, :]
        heads = np.zeros((T, nh, dv))
        for i in range(nh):
            s = (q[:, i, :dn] @ kv[:, i, :dn].T + q_pe[:, i, :] @ k_pe.T) * softmax_scale
            s = np.where(allowed, s, -np.inf)
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            heads[:, i, :] = (s / s.sum(axis=-1, keepdims=True)) @ kv[:, i, dn:]
        h = h + heads.reshape(T, nh * dv) @ W[p + "self_attn.o_proj.weight"].T
        x = rms_norm(h, W[p + "post_attention_layernorm.weight"], eps)
        if l < c["first_k_dense_replace"] or l % c["moe_layer_freq"] != 0:
            h = h + swiglu(W, p + "mlp.", x)
            continue
        logits = x @ W[p + "mlp.gate.weight"].T
        if c["scoring_func"] == "softmax":
            scores = np.exp(logits - logits.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
        else:
            scores = 1.0 / (1.0 + np.exp(-logits))
        y = np.zeros_like(x)
        for t in range(T):
            sc = scores[t]
            choice = sc + W[p + "mlp.gate.e_score_correction_bias"] if c["topk_method"] == "noaux_tc" else sc.copy()
            if c["topk_method"] != "greedy":
                grouped = choice.reshape(G, -1)
                gs = grouped.max(axis=-1) if c["topk_method"] == "group_limited_greedy" else np.sort(grouped, axis=-1)[:, -2:].sum(axis=-1)
                keep = np.argsort(-gs, kind="stable")[:c["topk_group"]]
                mask = np.zeros(G, dtype=bool)
                mask[keep] = True
                choice = np.where(np.repeat(mask, E // G), choice, 0.0)
            top = np.argsort(-choice, kind="stable")[:k_top]
            w = sc[top]
            if k_top > 1 and c.get("norm_topk_prob", False):
                w = w / (w.sum() + 1e-20)
                if family == "deepseek_v3":
                    w = w * c["routed_scaling_factor"]
            else:
                w = w * c["routed_scaling_factor"]
            for e, we in zip(top, w):
                y[t] += we * swiglu(W, f"{p}mlp.experts.{e}.", x[t])
        if c.get("n_shared_experts"):
            y += swiglu(W, p + "mlp.shared_experts.", x)
        h = h + y
    hn = rms_norm(h, W["model.norm.weight"], eps)
    head = W["model.embed_tokens.weight"] if c.get("tie_word_embeddings", False) else W["lm_head.weight"]
    return hn @ head.T


def forward(family, c, W, ids):
    if family.startswith("deepseek"):
        return forward_deepseek(family, c, W, ids)
    H, nh, nkv, hd = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"], head_dim(c)
    eps, theta, T = c["rms_norm_eps"], c["rope_theta"], len(ids)
    pos = np.arange(T, dtype=np.float64)
    window = c.get("sliding_window") if family == "mixtral" else None
    allowed = pos[None, :] <= pos[:, None]
    if window is not None:
        allowed &= (pos[:, None] - pos[None, :]) < window
    h = W["model.embed_tokens.weight"][ids]
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}."
        x = rms_norm(h, W[p + "input_layernorm.weight"], eps)
        q, k, v = (x @ W[p + f"self_attn.{n}_proj.weight"].T for n in "qkv")
        if family == "qwen2_moe":
            q, k, v = (a + W[p + f"self_attn.{n}_proj.bias"] for a, n in zip((q, k, v), "qkv"))
        if family == "olmoe":  # norms over the whole projection, then clipping
            q, k = rms_norm(q, W[p + "self_attn.q_norm.weight"], eps), rms_norm(k, W[p + "self_attn.k_norm.weight"], eps)
            if c.get("clip_qkv") is not None:
                q, k, v = (np.clip(a, -c["clip_qkv"], c["clip_qkv"]) for a in (q, k, v))
        q, k, v = q.reshape(T, nh, hd), k.reshape(T, nkv, hd), v.reshape(T, nkv, hd)
        if family == "qwen3_moe":  # norms per head
            q, k = rms_norm(q, W[p + "self_attn.q_norm.weight"], eps), rms_norm(k, W[p + "self_attn.k_norm.weight"], eps)
        q, k = rope(q, pos, theta), rope(k, pos, theta)
        group = nh // nkv
        heads = np.zeros((T, nh, hd))
        for i in range(nh):
            s = (q[:, i, :] @ k[:, i // group, :].T) / np.sqrt(hd)
            s = np.where(allowed, s, -np.inf)
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            heads[:, i, :] = (s / s.sum(axis=-1, keepdims=True)) @ v[:, i // group, :]
        h = h + heads.reshape(T, nh * hd) @ W[p + "self_attn.o_proj.weight"].T
        x = rms_norm(h, W[p + "post_attention_layernorm.weight"], eps)
        if family == "mixtral":
            gate, E, k_top, norm = W[p + "block_sparse_moe.gate.weight"], c["num_local_experts"], c["num_experts_per_tok"], True
            names = lambda e: [p + f"block_sparse_moe.experts.{e}.{w}.weight" for w in ("w1", "w3", "w2")]
        else:
            gate, E, k_top, norm = W[p + "mlp.gate.weight"], c["num_experts"], c["num_experts_per_tok"], c.get("norm_topk_prob", False)
            names = lambda e: [p + f"mlp.experts.{e}.{w}_proj.weight" for w in ("gate", "up", "down")]
        logits = x @ gate.T
        probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
        probs /= probs.sum(axis=-1, keepdims=True)
        y = np.zeros_like(x)
        for t in range(T):
            top = np.argsort(-probs[t], kind="stable")[:k_top]
            w = probs[t, top] / (probs[t, top].sum() if norm else 1.0)
            for e, we in zip(top, w):
                g, u, d = (W[n] for n in names(e))
                y[t] += we * (d @ (silu(g @ x[t]) * (u @ x[t])))
        if family == "qwen2_moe":
            s = p + "mlp.shared_expert."
            sh = (silu(x @ W[s + "gate_proj.weight"].T) * (x @ W[s + "up_proj.weight"].T)) @ W[s + "down_proj.weight"].T
            y += 1.0 / (1.0 + np.exp(-(x @ W[p + "mlp.shared_expert_gate.weight"].T))) * sh
        h = h + y
    hn = rms_norm(h, W["model.norm.weight"], eps)
    head = W["model.embed_tokens.weight"] if c.get("tie_word_embeddings", False) else W["lm_head.weight"]
    return hn @ head.T


def main(argv):
    if len(argv) >= 3 and argv[0] == "make":
        opts = dict(zip(argv[3::2], argv[4::2]))
        make(argv[1], argv[2], seed=int(opts.get("--seed", 1)), dtype=opts.get("--dtype", "bf16"), shards=int(opts.get("--shards", 2)),
             preset=opts.get("--preset"), tokenizer=opts.get("--tokenizer"), vocab=opts.get("--vocab"))
    elif len(argv) == 4 and argv[0] == "logits":
        c = json.load(open(os.path.join(argv[1], "config.json")))
        ids = [int(x) for x in open(argv[2]).read().split()]
        out = forward(c["model_type"], c, read_checkpoint(argv[1]), np.array(ids))
        out.astype("<f8").tofile(argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
