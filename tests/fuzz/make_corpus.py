#!/usr/bin/env python3
"""Writes the seed corpora in tests/fuzz/corpus/<target>/ from the committed fixtures.

Run from anywhere: python3 tests/fuzz/make_corpus.py. Seeds are small (the whole corpus stays
well under 500 KB); files named regress-* are crash reproducers and are never overwritten.
"""
import hashlib
import json
import os
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus")


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def st_file(tensors, meta=None, pad=8):
    """tensors: list of (name, dtype, shape, nbytes). Builds a valid safetensors image."""
    hdr, off = {}, 0
    if meta is not None:
        hdr["__metadata__"] = meta
    for name, dt, shape, nb in tensors:
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + nb]}
        off += nb
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % pad)
    return struct.pack("<Q", len(h)) + h + bytes((i * 7) & 0xFF for i in range(off))


def safetensors():
    put("fuzz_safetensors", "empty_header", st_file([]))
    put("fuzz_safetensors", "three_dtypes", st_file([
        ("a.weight", "F32", [2, 3], 24), ("b.weight", "BF16", [4], 8), ("c", "F16", [1, 1, 2], 4)],
        meta={"format": "pt"}))
    put("fuzz_safetensors", "scalar_and_zero", st_file([
        ("s", "F32", [], 4), ("z", "BF16", [0, 5], 0), ("i", "I64", [2], 16), ("u", "U8", [3], 3),
        ("f8", "F8_E4M3", [2], 2), ("b", "BOOL", [1], 1)]))
    # The header of real golden checkpoints, cut to 4 KB (the JSON is then unterminated; the
    # fuzzer learns the key structure from it) and the full header of the smallest one.
    for fix, f in [("e2b", "model.safetensors"), ("moe", "model.safetensors"),
                   ("dense31b", "model.safetensors")]:
        b = open(os.path.join(ROOT, "tests", "golden", fix, f), "rb").read(8 + 20000)
        n = struct.unpack("<Q", b[:8])[0]
        put("fuzz_safetensors", f"golden_{fix}_head4k", b[:4096])
        if fix == "dense31b":
            put("fuzz_safetensors", f"golden_{fix}_header_only", b[:8 + n])


def gguf_file(kvs, tensors, align=32, fill=None):
    """kvs: list of (key, type id, payload bytes); tensors: list of (name, ne list, ggml type,
    nbytes). Builds a valid GGUF v3 image with the tensors packed in order."""
    def gstr(x):
        x = x.encode() if isinstance(x, str) else x
        return struct.pack("<Q", len(x)) + x
    b = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for k, t, payload in kvs:
        b += gstr(k) + struct.pack("<I", t) + payload
    off, offs = 0, []
    for name, ne, t, nb in tensors:
        b += gstr(name) + struct.pack("<I", len(ne)) + struct.pack(f"<{len(ne)}Q", *ne)
        b += struct.pack("<IQ", t, off)
        offs.append(off)
        off += (nb + align - 1) // align * align
    b += bytes(-len(b) % align)
    return b + (fill(off) if fill else bytes((i * 7) & 0xFF for i in range(off)))


def gguf():
    put("fuzz_gguf", "writer_all_types.gguf",
        open(os.path.join(ROOT, "tests", "gguf", "writer_all_types.gguf"), "rb").read())
    strs = b"".join(struct.pack("<Q", len(x)) + x for x in (b"<pad>", b"", b"\xe2\x96\x81a"))
    put("fuzz_gguf", "small_two_tensors", gguf_file(
        [("general.architecture", 8, struct.pack("<Q", 6) + b"gemma4"),
         ("general.alignment", 4, struct.pack("<I", 64)),
         ("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, 3) + strs),
         ("gemma4.attention.sliding_window_pattern", 9, struct.pack("<IQ", 7, 3) + b"\x01\x01\x00"),
         ("gemma4.rope.freq_base", 6, struct.pack("<f", 1e6))],
        [("token_embd.weight", [32, 2], 8, 68), ("output_norm.weight", [4], 0, 16)], align=64))
    # The head of a real converter output (metadata, vocabulary, tensor infos; data cut off).
    put("fuzz_gguf", "golden_moe_head64k",
        open(os.path.join(ROOT, "tests", "gguf", "golden_moe.gguf"), "rb").read(65536))
    # A whole one-layer gemma4 model (32 wide) that loads: mutations reach the config from
    # metadata, the tensor table and the binder.
    u32 = lambda v: struct.pack("<I", v)
    f32 = lambda v: struct.pack("<f", v)
    A = "gemma4."
    kvs = [("general.architecture", 8, struct.pack("<Q", 6) + b"gemma4"),
           (A + "block_count", 4, u32(1)), (A + "embedding_length", 4, u32(32)),
           (A + "context_length", 4, u32(64)), (A + "feed_forward_length", 4, u32(32)),
           (A + "attention.head_count", 4, u32(1)), (A + "attention.head_count_kv", 4, u32(1)),
           (A + "attention.key_length", 4, u32(32)), (A + "attention.key_length_swa", 4, u32(32)),
           (A + "attention.layer_norm_rms_epsilon", 6, f32(1e-6)),
           (A + "attention.sliding_window", 4, u32(8)),
           (A + "attention.sliding_window_pattern", 9, struct.pack("<IQ", 7, 1) + b"\x00"),
           (A + "rope.freq_base", 6, f32(1e6)), (A + "final_logit_softcapping", 6, f32(30.0))]
    mat = lambda n: (n, [32, 32], 0, 4096)
    vec = lambda n: (n, [32], 0, 128)
    tensors = [("rope_freqs.weight", [16], 0, 64), ("token_embd.weight", [32, 8], 0, 1024),
               vec("output_norm.weight"), vec("blk.0.attn_norm.weight"), mat("blk.0.attn_q.weight"),
               mat("blk.0.attn_k.weight"), mat("blk.0.attn_v.weight"), mat("blk.0.attn_output.weight"),
               vec("blk.0.attn_q_norm.weight"), vec("blk.0.attn_k_norm.weight"),
               vec("blk.0.post_attention_norm.weight"), vec("blk.0.ffn_norm.weight"),
               vec("blk.0.post_ffw_norm.weight"), mat("blk.0.ffn_gate.weight"),
               mat("blk.0.ffn_up.weight"), mat("blk.0.ffn_down.weight"),
               ("blk.0.layer_output_scale.weight", [1], 0, 4)]
    # rope_freqs (first, at offset 0): 4 rotating pairs then frozen ones; everything else 0.5
    fill = lambda n: (b"".join(f32(1.0 if i < 4 else 1e30) for i in range(16)) +
                      f32(0.5) * ((n - 64) // 4))
    put("fuzz_gguf", "tiny_gemma4_model", gguf_file(kvs, tensors, fill=fill))
    put("fuzz_gguf", "no_tensors", gguf_file([("a", 10, struct.pack("<Q", 1))], []))


def configs():
    for fix in ["e2b", "moe", "dense31b", "multimodal", "gemma3", "gemma3_sliding", "gemma3_multimodal"]:
        put("fuzz_config", f"golden_{fix}.json",
            open(os.path.join(ROOT, "tests", "golden", fix, "config.json"), "rb").read())
    for name in sorted(os.listdir(os.path.join(ROOT, "tests", "configs"))):
        if name.endswith(".json"):
            put("fuzz_config", f"release_{name}",
                open(os.path.join(ROOT, "tests", "configs", name), "rb").read())


def tokenizer_load():
    tj = os.path.join(ROOT, "tests", "golden", "tokenizer_small", "tokenizer.json")
    raw = open(tj, "rb").read()
    put("fuzz_tokenizer_load", "tokenizer_small.json", raw)
    d = json.loads(raw)
    # A cut-down variant (few merges, no post-processor) so mutations reach more branches fast.
    d2 = json.loads(raw)
    d2["model"]["merges"] = d2["model"]["merges"][:20]
    d2["post_processor"] = None
    put("fuzz_tokenizer_load", "small_few_merges.json", json.dumps(d2, ensure_ascii=False))
    d3 = json.loads(raw)
    d3["normalizer"] = None
    d3["pre_tokenizer"] = None
    d3["decoder"] = None
    put("fuzz_tokenizer_load", "small_bare.json", json.dumps(d3, ensure_ascii=False))
    del d


def tokenizer():
    # mode byte 0x00: text. Texts from the tokenizer fixtures (hex in column 2 of E lines).
    seen = 0
    for line in open(os.path.join(ROOT, "tests", "tokenizer", "expected_small.txt")):
        p = line.rstrip("\n").split("\t")
        if p[0] != "E" or seen >= 24:
            continue
        text = bytes.fromhex(p[1])
        put("fuzz_tokenizer", "text_" + hashlib.sha1(text).hexdigest()[:10], b"\x00" + text)
        seen += 1
        ids = [int(x) for x in p[3].split()] if len(p) > 3 and p[3] else []
        if ids and seen % 3 == 0:
            put("fuzz_tokenizer", "ids_" + hashlib.sha1(text).hexdigest()[:10],
                b"\x01" + b"".join(struct.pack("<i", i) for i in ids))
    put("fuzz_tokenizer", "text_invalid_utf8", b"\x00a\xff\xfe\xc3 b\xe2\x96 \xf0\x9f\x98")
    put("fuzz_tokenizer", "ids_invalid", b"\x01" + struct.pack("<5i", 2, -1, 7, 0x7FFFFFFF, 300))


def chat():
    n = 0
    for line in open(os.path.join(ROOT, "tests", "chat", "expected.txt")):
        if line.startswith("#") or n >= 40:
            continue
        p = line.split()
        gen, k = int(p[0]), int(p[1])
        roles = {"system": 0, "user": 1, "assistant": 2, "model": 3}
        parts = []
        for i in range(k):
            r, h = p[2 + 2 * i], p[3 + 2 * i]
            c = b"" if h == "-" else bytes.fromhex(h)
            parts.append(bytes([roles.get(r, 1)]) + c)
        data = bytes([gen]) + b"\xff".join(parts)
        put("fuzz_chat", "conv_" + hashlib.sha1(data).hexdigest()[:10], data)
        n += 1


if __name__ == "__main__":
    safetensors()
    gguf()
    configs()
    tokenizer_load()
    tokenizer()
    chat()
