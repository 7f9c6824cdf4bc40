#!/usr/bin/env python3
"""Writes a random-weight Gemma 4 checkpoint with the dimensions of a config (default
tests/configs/e2b.json: Gemma 4 E2B, Gemma4ForConditionalGeneration layout, text tower only) for
tests/bench/cpu_bench.sh. Not a test fixture: the values are noise, only shapes and names matter.

  python3 make_model.py CONFIG TOKENIZER_DIR OUT_DIR [--layers N] [--seed S]

OUT_DIR gets config.json, model.safetensors (bf16, tensor names as transformers 5.23 saves
Gemma4ForConditionalGeneration: "model.language_model.*", no k/v projections on KV-shared layers),
tokenizer.json + tokenizer_config.json (what llama.cpp's converter needs to load it with
transformers' AutoTokenizer) and bench_meta.json (parameter counts and the bytes one decoded token
streams). The safetensors file is written directly, tensor by tensor, so memory stays small.

Values: matrices N(0, 0.02), norm weights 1 + N(0, 0.02) (Gemma 4 RMSNorm multiplies by the
weight as stored; llama.cpp's converter shifts nothing for Gemma 4) except q/k norms, 0.25 times
that (see QK_NORM), layer_scalar 1. Generating
~4.6e9 normals takes minutes in numpy, so each matrix is cut from one 16M-value pool of normals
at random offsets: every row is a run of independent normals, rows repeat across tensors.

--layers N (< the config's count) keeps E2B's widths with N layers: every 5th layer and the last
are full attention, round(N * shared / L) KV-shared layers (fewer if a shared layer would have no
earlier non-shared layer of its type), double-wide MLP on the shared ones as in E2B.
"""
import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np

VERSION = 2  # of the values written; cpu_bench.sh regenerates checkpoints of other versions
POOL = 1 << 24
ALIGN = 64
# Gemma 4 attention has no 1/sqrt(head_dim) scaling: with q/k norm weights of 1 the scores have a
# standard deviation of sqrt(head_dim) = 16, every softmax is one-hot and the random network is
# chaotic (tiny rounding differences change every logit). 0.25 gives scores of std ~1.
QK_NORM = 0.25


def bf16_bits(x):
    """float32 array -> bf16 bit patterns (round to nearest even), as uint16."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def subset_text_config(tc, n):
    """E2B widths, n layers; see the module docstring."""
    L, shared = tc["num_hidden_layers"], tc.get("num_kv_shared_layers", 0)
    if n >= L:
        return tc
    tc = dict(tc)
    types = ["full_attention" if (i + 1) % 5 == 0 or i == n - 1 else "sliding_attention"
             for i in range(n)]
    s = int(round(n * shared / L))
    while s > 0 and not all(t in types[:n - s] for t in types[n - s:]):
        s -= 1
    tc.update(num_hidden_layers=n, layer_types=types, num_kv_shared_layers=s)
    return tc


def tensor_table(tc):
    """[(name, shape, kind)] in transformers' names (without the language-model prefix)."""
    H, V, L = tc["hidden_size"], tc["vocab_size"], tc["num_hidden_layers"]
    P, Vp = tc.get("hidden_size_per_layer_input") or 0, tc.get("vocab_size_per_layer_input", V)
    nh, nkv = tc["num_attention_heads"], tc["num_key_value_heads"]
    first_shared = L - tc.get("num_kv_shared_layers", 0)
    t = [("embed_tokens.weight", (V, H), "embed"), ("norm.weight", (H,), "norm")]
    if P:
        t += [("embed_tokens_per_layer.weight", (Vp, L * P), "ple_table"),
              ("per_layer_model_projection.weight", (L * P, H), "mat"),
              ("per_layer_projection_norm.weight", (P,), "norm")]
    for il, kind in enumerate(tc["layer_types"]):
        hd = tc["global_head_dim"] if kind == "full_attention" else tc["head_dim"]
        inter = tc["intermediate_size"] * (2 if tc.get("use_double_wide_mlp") and il >= first_shared else 1)
        p = f"layers.{il}."
        t += [(p + n, (H,), "norm") for n in ("input_layernorm.weight", "post_attention_layernorm.weight",
                                             "pre_feedforward_layernorm.weight",
                                             "post_feedforward_layernorm.weight")]
        t += [(p + "layer_scalar", (1,), "one"),
              (p + "self_attn.q_proj.weight", (nh * hd, H), "mat"),
              (p + "self_attn.o_proj.weight", (H, nh * hd), "mat"),
              (p + "self_attn.q_norm.weight", (hd,), "qk_norm")]
        if il < first_shared:
            t += [(p + "self_attn.k_proj.weight", (nkv * hd, H), "mat"),
                  (p + "self_attn.v_proj.weight", (nkv * hd, H), "mat"),
                  (p + "self_attn.k_norm.weight", (hd,), "qk_norm")]
        t += [(p + "mlp.gate_proj.weight", (inter, H), "mat"),
              (p + "mlp.up_proj.weight", (inter, H), "mat"),
              (p + "mlp.down_proj.weight", (H, inter), "mat")]
        if P:
            t += [(p + "per_layer_input_gate.weight", (P, H), "mat"),
                  (p + "per_layer_projection.weight", (H, P), "mat"),
                  (p + "post_per_layer_input_norm.weight", (H,), "norm")]
    return t


def decode_bytes(tc, table):
    """Bytes of weights one decode step reads (bf16): every matrix and vector, the tied LM head
    (vocab x hidden) once, one row of the token embedding and one row of the PLE table."""
    H, L, P = tc["hidden_size"], tc["num_hidden_layers"], tc.get("hidden_size_per_layer_input") or 0
    b = {"matrices": 0, "vectors": 0}
    for name, shape, kind in table:
        n = int(np.prod(shape)) * 2
        if kind == "mat":
            b["matrices"] += n
        elif kind in ("norm", "qk_norm", "one"):
            b["vectors"] += n
        elif kind == "embed":
            b["lm_head"] = n
    b["embedding_rows"] = 2 * (H + L * P)
    b["total"] = sum(b.values())
    return b


def write_safetensors(path, table, prefix, rng):
    pool = bf16_bits(rng.standard_normal(POOL, dtype=np.float32) * np.float32(0.02))
    order = sorted(table, key=lambda e: len(e[1]) == 1)  # matrices first, 64-byte aligned
    header, off = {}, 0
    for name, shape, _ in order:
        n = int(np.prod(shape)) * 2
        header[prefix + name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
    header["__metadata__"] = {"format": "pt"}
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((-(8 + len(hj))) % ALIGN)
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for name, shape, kind in order:
            n = int(np.prod(shape))
            if kind == "one":
                f.write(bf16_bits(np.ones(n, np.float32)).tobytes())
            elif kind in ("norm", "qk_norm"):
                scale = QK_NORM if kind == "qk_norm" else 1.0
                f.write(bf16_bits(scale * (1 + 0.02 * rng.standard_normal(n, dtype=np.float32))).tobytes())
            else:
                while n:
                    k = min(n, POOL // 2)
                    o = int(rng.integers(0, POOL - k + 1))
                    f.write(memoryview(pool[o:o + k]))
                    n -= k
    os.replace(tmp, path)
    return off


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("tokenizer_dir", help="directory with Gemma 4's tokenizer.json")
    ap.add_argument("out_dir")
    ap.add_argument("--layers", type=int, default=0, help="0: all layers of the config")
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()

    cfg = json.load(open(a.config))
    multimodal = "text_config" in cfg
    tc = cfg["text_config"] if multimodal else cfg
    tc = subset_text_config(tc, a.layers or tc["num_hidden_layers"])
    if multimodal:
        cfg = dict(cfg, text_config=tc)
    else:
        cfg = tc
    prefix = "model.language_model." if multimodal else "model."
    table = tensor_table(tc)

    os.makedirs(a.out_dir, exist_ok=True)
    shutil.copyfile(os.path.join(a.tokenizer_dir, "tokenizer.json"),
                    os.path.join(a.out_dir, "tokenizer.json"))
    # transformers needs the class and special tokens to load tokenizer.json the Gemma way
    # (llama.cpp's converter reads the vocabulary through AutoTokenizer).
    tok_cfg = {"tokenizer_class": "GemmaTokenizer", "bos_token": "<bos>", "eos_token": "<eos>",
               "pad_token": "<pad>", "unk_token": "<unk>", "mask_token": "<mask>",
               "add_bos_token": True, "add_eos_token": False, "model_max_length": 131072}
    json.dump(tok_cfg, open(os.path.join(a.out_dir, "tokenizer_config.json"), "w"), indent=1)
    json.dump(cfg, open(os.path.join(a.out_dir, "config.json"), "w"), indent=1)

    rng = np.random.default_rng(a.seed)
    n_bytes = write_safetensors(os.path.join(a.out_dir, "model.safetensors"), table, prefix, rng)
    meta = {"version": VERSION, "n_layers": tc["num_hidden_layers"], "num_kv_shared_layers": tc.get("num_kv_shared_layers", 0),
            "layer_types": tc["layer_types"], "n_params": n_bytes // 2, "file_weight_bytes": n_bytes,
            "decode_bytes_per_token": decode_bytes(tc, table), "seed": a.seed}
    json.dump(meta, open(os.path.join(a.out_dir, "bench_meta.json"), "w"), indent=1)
    print(f"{a.out_dir}: {meta['n_layers']} layers, {n_bytes / 1e9:.2f} GB of bf16 weights, "
          f"{meta['decode_bytes_per_token']['total'] / 1e9:.3f} GB read per decoded token")


if __name__ == "__main__":
    sys.exit(main())
