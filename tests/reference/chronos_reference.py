#!/usr/bin/env python3
"""Independent NumPy implementation of the Chronos forward pass, written from the pinned
details of the design (docs/format.md) only: reads config.json and model.safetensors of a
checkpoint directory, runs the token ids of a `chronos eval logits` JSON file, and reports the
largest difference from the logits in that file.

Usage: chronos_reference.py CHECKPOINT_DIR LOGITS_JSON [TOLERANCE]
Exit status 0 if every logit agrees within TOLERANCE (default: float32_bound of the checkpoint,
the bound the C++ parity tests use, tests/numerics.h).
"""
import json
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        arr = np.frombuffer(data[base + begin:base + end], dtype=DTYPES[info["dtype"]])
        out[name] = arr.reshape(info["shape"]).astype(np.float64)
    return out


def rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, positions, theta):
    """Rotate-half RoPE on the last axis; x [..., T, d]."""
    d = x.shape[-1]
    inv = theta ** (-2.0 * np.arange(d // 2) / d)
    ang = positions[:, None] * inv[None, :]
    cos = np.cos(np.concatenate([ang, ang], -1))
    sin = np.sin(np.concatenate([ang, ang], -1))
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return x * cos + np.concatenate([-x2, x1], -1) * sin


def attend(q, k, v, window):
    """q [nh, T, d], k [nh, T, d], v [nh, T, dv]; causal, optional sliding window."""
    T = q.shape[1]
    scores = q @ k.transpose(0, 2, 1) / np.sqrt(q.shape[-1])
    i = np.arange(T)[:, None]
    j = np.arange(T)[None, :]
    allowed = j <= i
    if window > 0:
        allowed &= (i - j) < window
    scores = np.where(allowed[None], scores, -np.inf)
    scores -= scores.max(-1, keepdims=True)
    p = np.exp(scores)
    p /= p.sum(-1, keepdims=True)
    return p @ v


def mla(x, W, p, c, pos):
    T = x.shape[0]
    nh, dn, dr, dv, r = c["num_attention_heads"], c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"], c["kv_lora_rank"]
    q = (x @ W[p + "q_proj.weight"].T).reshape(T, nh, dn + dr).transpose(1, 0, 2)
    q = np.concatenate([q[..., :dn], rope(q[..., dn:], pos, c["rope_theta"])], -1)
    kv_a = x @ W[p + "kv_a_proj_with_mqa.weight"].T
    c_kv = rms_norm(kv_a[:, :r], W[p + "kv_a_layernorm.weight"], c["rms_norm_eps"])
    k_rope = rope(kv_a[:, r:], pos, c["rope_theta"])
    kv = (c_kv @ W[p + "kv_b_proj.weight"].T).reshape(T, nh, dn + dv).transpose(1, 0, 2)
    k = np.concatenate([kv[..., :dn], np.broadcast_to(k_rope[None], (nh, T, dr))], -1)
    out = attend(q, k, kv[..., dn:], 0)  # scale 1/sqrt(dn + dr)
    return out.transpose(1, 0, 2).reshape(T, nh * dv) @ W[p + "o_proj.weight"].T


def gqa(x, W, p, c, pos, window):
    T = x.shape[0]
    nh, nkv, hd = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
    q = rope((x @ W[p + "q_proj.weight"].T).reshape(T, nh, hd).transpose(1, 0, 2), pos, c["rope_theta"])
    k = rope((x @ W[p + "k_proj.weight"].T).reshape(T, nkv, hd).transpose(1, 0, 2), pos, c["rope_theta"])
    v = (x @ W[p + "v_proj.weight"].T).reshape(T, nkv, hd).transpose(1, 0, 2)
    group = nh // nkv
    k = np.repeat(k, group, axis=0)  # query head i uses kv head i // group
    v = np.repeat(v, group, axis=0)
    out = attend(q, k, v, window)
    return out.transpose(1, 0, 2).reshape(T, nh * hd) @ W[p + "o_proj.weight"].T


def swiglu(x, W, p):
    g = x @ W[p + "gate_proj.weight"].T
    u = x @ W[p + "up_proj.weight"].T
    return (g / (1 + np.exp(-g)) * u) @ W[p + "down_proj.weight"].T


def moe(x, W, p, c):
    logits = x @ W[p + "gate.weight"].T
    logits -= logits.max(-1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(-1, keepdims=True)
    k = c["num_experts_per_tok"]
    y = np.zeros_like(x)
    for t in range(x.shape[0]):
        top = np.argsort(-probs[t], kind="stable")[:k]
        w = probs[t, top]
        if c["norm_topk_prob"]:
            w = w / w.sum()
        for wi, e in zip(w, top):
            y[t] += wi * swiglu(x[t:t + 1], W, f"{p}experts.{e}.")[0]
    if c["n_shared_experts"] > 0:
        y += swiglu(x, W, p + "shared_experts.")
    return y


def forward(W, c, ids):
    T = len(ids)
    pos = np.arange(T, dtype=np.float64)
    h = W["model.embed_tokens.weight"][ids]
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}."
        kind = c["attention_pattern"][l]
        a = rms_norm(h, W[p + "input_layernorm.weight"], c["rms_norm_eps"])
        if kind == "mla":
            h = h + mla(a, W, p + "self_attn.", c, pos)
        else:
            h = h + gqa(a, W, p + "self_attn.", c, pos, c["sliding_window"] if kind == "swa" else 0)
        h = h + moe(rms_norm(h, W[p + "post_attention_layernorm.weight"], c["rms_norm_eps"]), W, p + "mlp.", c)
    h = rms_norm(h, W["model.norm.weight"], c["rms_norm_eps"])
    head = W["model.embed_tokens.weight"] if c["tie_word_embeddings"] else W["lm_head.weight"]
    return h @ head.T


def float32_bound(W, c, T):
    """Worst-case |float32 logits - exact| of a Chronos forward pass over T tokens (docs/testing.md):
    each of the L x 16 + 2 rounding stages is within gamma_n (u = 2^-24) of the magnitudes it
    combines, n the longest sum; the last product's magnitudes are bounded by sqrt(H) x the
    final norm's largest weight x the longest lm_head row (Cauchy-Schwarz)."""
    u = 2.0 ** -24
    n = max(c["hidden_size"], c["moe_intermediate_size"] * max(c["n_shared_experts"], 1), c["kv_lora_rank"],
            c["num_attention_heads"] * max(c["v_head_dim"], c["head_dim"]), T)
    gamma = n * u / (1 - n * u)
    stages = c["num_hidden_layers"] * 16 + 2
    head = W["model.embed_tokens.weight"] if c["tie_word_embeddings"] else W["lm_head.weight"]
    scale = np.sqrt(c["hidden_size"]) * np.abs(W["model.norm.weight"]).max() * np.sqrt((head * head).sum(1)).max()
    return stages * gamma * scale


def main():
    ckpt, logits_path = sys.argv[1], sys.argv[2]
    with open(ckpt + "/config.json") as f:
        config = json.load(f)
    with open(logits_path) as f:
        got = json.load(f)
    W = read_safetensors(ckpt + "/model.safetensors")
    tol = float(sys.argv[3]) if len(sys.argv) > 3 else float32_bound(W, config, len(got["ids"]))
    ref = forward(W, config, np.array(got["ids"]))
    diff = np.abs(ref - np.array(got["logits"], dtype=np.float64))
    worst = np.unravel_index(np.argmax(diff), diff.shape)
    print(f"{len(got['ids'])} tokens, {ref.shape[1]} logits each: max abs diff {diff.max():.3g} "
          f"at position {worst[0]}, token {worst[1]} (reference {ref[worst]:.6f}, chronos {got['logits'][worst[0]][worst[1]]:.6f}); "
          f"bound {tol:.3g}")
    sys.exit(0 if diff.max() <= tol else 1)


if __name__ == "__main__":
    main()
