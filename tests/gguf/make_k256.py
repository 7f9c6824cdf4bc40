#!/usr/bin/env python3
"""The K-quant fixture: a tiny random Gemma 4 whose matrix widths (GGUF ne[0], the input side of
each product) are multiples of 256, so llama.cpp's quantizer really writes K-quants (it falls back
to Q5_0 / Q8_0 for rows that are not a whole number of 256-element blocks). Run by
tests/gguf/make_k256.sh, which also converts and quantizes it with llama.cpp; three stages:

  make_k256.py fixture   (torch, transformers 5.23: /work/cache/venv-ref/bin/python)
      tests/gguf/k256/: config.json, model.safetensors (BF16), reference.bin (transformers'
      float32 logits of the 48-token prompt + 32 greedy tokens), tokenizer.json (that of
      tests/golden/tokenizer_small, which the converter needs), as tests/golden/make_fixtures.py
      makes its fixtures (same seed search and self-checks)
  make_k256.py dequant   (the same interpreter, after the GGUF files exist)
      tests/gguf/k256/reference_<q>.bin for q in q8_0, q4_k_m: the same prompt through
      transformers in float32 with every weight replaced by its dequantization from
      golden_k256_<q>.gguf (the gguf package's dequantizers, equal to ggml's): what the exact
      path must compute
  make_k256.py llama     (llama-cpp-python 0.3.36: the venv of scripts/llama_cpp_venv.sh)
      tests/gguf/k256/llama_<q>.bin: llama.cpp's logits on golden_k256_<q>.gguf for the same
      prompt (one batch, every position's logits: teacher-forced) and its greedy continuation
      (then one token per llama_decode); settings and llama.cpp's own spread in llama.json

Model: vocab 512 (tests/golden/tokenizer_small), hidden 256, 2 layers (sliding, full), 2 query
heads / 1 KV head, head_dim 128 (full layers 256), MLP 256, PLE 128 per layer (the per-layer
embedding table is 2 x 128 = 256 wide), tied LM head; no KV sharing (one more layer would double
the size). Widths per GGUF tensor: 256 everywhere except blk.N.proj (128: Q5_0 / Q8_0 fallback)
and blk.1.attn_output (512).
"""
import json
import os
import shutil
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "k256")
QUANTS = ("q8_0", "q4_k_m")
N_GEN = 32


def gguf_path(q=None):
    return os.path.join(HERE, "golden_k256%s.gguf" % ("_" + q if q else ""))


def read_reference(path):
    with open(path, "rb") as f:
        blob = f.read()
    assert blob[:8] == b"G4REF1\0\0"
    n, v = struct.unpack_from("<ii", blob, 8)
    tokens = np.frombuffer(blob, dtype="<i4", count=n, offset=16)
    return tokens.astype(np.int64), v


def stage_fixture():
    sys.path.insert(0, os.path.join(HERE, "..", "golden"))
    import make_fixtures as mf
    import torch
    from transformers import Gemma4ForCausalLM, Gemma4TextConfig

    def cfg_k256():
        return Gemma4TextConfig(
            vocab_size=512,
            vocab_size_per_layer_input=512,
            hidden_size=256,
            intermediate_size=256,
            num_hidden_layers=2,
            layer_types=[mf.S, mf.F],
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=128,
            global_head_dim=256,
            hidden_size_per_layer_input=128,
            num_kv_shared_layers=0,
            use_double_wide_mlp=False,
            sliding_window=8,
            final_logit_softcapping=30.0,
            rope_parameters=mf.ROPE,
            attention_k_eq_v=False,
            tie_word_embeddings=True,
        )

    print("torch %s, transformers %s" % (torch.__version__, mf.transformers.__version__))
    os.makedirs(OUT, exist_ok=True)
    # 0.2 (make_fixtures' default for hidden 64) lets the embedding (scaled by sqrt(256)) dominate
    # the residual stream at hidden 256: every seed's greedy continuation repeats one token
    mf.EMB_STD = 0.05
    mf.build_fixture("k256", cfg_k256, Gemma4ForCausalLM, torch.bfloat16, 8000, outdir=OUT)
    os.remove(os.path.join(OUT, "reference_bf16act.bin"))  # written for every bf16 fixture; unused here
    shutil.copy(os.path.join(HERE, "..", "golden", "tokenizer_small", "tokenizer.json"), OUT)


def stage_dequant():
    sys.path.insert(0, os.path.join(HERE, "..", "golden"))
    import make_fixtures as mf
    import torch
    import gguf
    from transformers import Gemma4ForCausalLM

    tokens, vocab = read_reference(os.path.join(OUT, "reference.bin"))
    model = Gemma4ForCausalLM.from_pretrained(OUT, dtype=torch.float32, attn_implementation="eager").eval()
    params = dict(model.state_dict())
    # GGUF name -> transformers name, by content: the converter copies every weight unchanged
    # (vectors widened to F32), and random weights are unique. Checked to be a bijection.
    by_bytes = {}
    for name, t in params.items():
        if name == "lm_head.weight":  # tied: the embedding itself
            continue
        by_bytes.setdefault(t.detach().numpy().astype(np.float32).tobytes(), []).append(name)
    ref = gguf.GGUFReader(gguf_path())
    names = {}
    for t in ref.tensors:
        if t.name == "rope_freqs.weight":
            continue
        data = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        hits = by_bytes.get(data.tobytes(), [])
        assert len(hits) == 1, (t.name, hits)
        names[t.name] = hits[0]
    assert sorted(names.values()) == sorted(set(names.values()))
    missing = set(params) - set(names.values()) - {"lm_head.weight"}
    assert not missing, missing
    print("golden_k256.gguf: %d tensors, each equal to its transformers weight" % len(names))

    @torch.no_grad()
    def greedy(m, ids):
        """float32 logits of the prompt and the greedy continuation (as make_fixtures.evaluate)."""
        logits = m(input_ids=ids).logits[0].float()
        m.generation_config.eos_token_id = None
        m.generation_config.pad_token_id = 0
        out = m.generate(ids, do_sample=False, max_new_tokens=N_GEN, min_new_tokens=N_GEN,
                         eos_token_id=None, pad_token_id=0)
        full = m(input_ids=out).logits[0].float()
        top2 = torch.topk(full[ids.shape[1] - 1:-1], 2, dim=-1).values
        assert full[ids.shape[1] - 1:-1].argmax(-1).tolist() == out[0, ids.shape[1]:].tolist()
        return {"logits": logits, "gen": out[0, ids.shape[1]:].tolist(),
                "gen_margin": (top2[:, 0] - top2[:, 1]).min().item(), "amax": logits.abs().max().item()}

    base = greedy(model, torch.tensor(tokens[None]))
    for q in QUANTS:
        g = gguf.GGUFReader(gguf_path(q))
        m = Gemma4ForCausalLM.from_pretrained(OUT, dtype=torch.float32, attn_implementation="eager").eval()
        sd = m.state_dict()
        moved = 0
        with torch.no_grad():
            for t in g.tensors:
                if t.name == "rope_freqs.weight":
                    continue
                w = torch.from_numpy(gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).copy())
                dst = sd[names[t.name]]
                assert tuple(dst.shape) == tuple(w.shape), (t.name, dst.shape, w.shape)
                moved += int(not torch.equal(dst, w))
                dst.copy_(w)
        r = greedy(m, torch.tensor(tokens[None]))
        r["d_base"] = (r["logits"] - base["logits"]).abs().max().item()
        path = os.path.join(OUT, "reference_%s.bin" % q)
        mf.write_reference(path, tokens.tolist(), r["logits"].numpy(), r["gen"])
        print("%s: %d of %d tensors changed by quantization; logits vs the BF16 model: max |d| %.3f "
              "(max |logit| %.2f); min greedy top-2 gap %.4f; gen %s" %
              (path, moved, len(g.tensors), r["d_base"], r["amax"], r["gen_margin"], r["gen"]))


def stage_llama():
    import hashlib
    import llama_cpp as L

    tokens, vocab = read_reference(os.path.join(OUT, "reference.bin"))
    n = len(tokens)
    quiet = L.llama_log_callback(lambda level, text, user: None)  # kept alive until the end
    L.llama_log_set(quiet, None)
    L.llama_backend_init()

    def run(path, flash, kv_type):
        mp = L.llama_model_default_params()
        mp.n_gpu_layers = 0
        model = L.llama_model_load_from_file(path.encode(), mp)
        assert model, "cannot load " + path
        cp = L.llama_context_default_params()
        cp.n_ctx = 128
        cp.n_batch = cp.n_ubatch = 128
        cp.n_threads = cp.n_threads_batch = 1  # each output is one thread's sum: reproducible
        cp.flash_attn_type = flash
        cp.type_k = cp.type_v = kv_type
        ctx = L.llama_init_from_model(model, cp)
        assert ctx, "llama_init_from_model failed"
        assert L.llama_vocab_n_tokens(L.llama_model_get_vocab(model)) == vocab
        batch = L.llama_batch_init(128, 0, 1)

        def decode(toks, pos0, all_logits):
            for i, t in enumerate(toks):
                batch.token[i] = int(t)
                batch.pos[i] = pos0 + i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = all_logits or i == len(toks) - 1
            batch.n_tokens = len(toks)
            assert L.llama_decode(ctx, batch) == 0, "llama_decode failed"
            rows = range(len(toks)) if all_logits else [len(toks) - 1]
            return np.stack([np.ctypeslib.as_array(L.llama_get_logits_ith(ctx, i), shape=(vocab,)).copy()
                             for i in rows]).astype(np.float32)

        rows = list(decode(tokens, 0, True))  # the prompt, every position's logits
        gen = []
        for step in range(N_GEN):
            gen.append(int(np.argmax(rows[-1])))
            if step + 1 < N_GEN:
                rows.append(decode([gen[-1]], n + step, False)[0])
        logits = np.stack(rows)  # (n + N_GEN - 1, vocab): row i follows token i of prompt + gen
        settings = {"n_threads": cp.n_threads, "n_ctx": cp.n_ctx, "n_batch": cp.n_batch,
                    "flash_attn_type": int(cp.flash_attn_type), "type_k": int(cp.type_k),
                    "type_v": int(cp.type_v)}
        L.llama_batch_free(batch)
        L.llama_free(ctx)
        L.llama_model_free(model)
        return logits, gen, settings

    meta = {"generator": "tests/gguf/make_k256.py llama", "llama_cpp_python": L.__version__,
            "prompt": "tests/gguf/k256/reference.bin's 48 tokens in one llama_decode, every position's logits",
            "greedy": "argmax of the last logits, fed back one token per llama_decode",
            "llama_<q>.bin": "G4REF1: tokens = prompt + greedy[:-1], logits row i = llama.cpp's logits "
                             "after token i (rows of the prompt from its one batch, then one per "
                             "decode step), gen = greedy",
            "spread": "the same file with flash attention off and an F32 K/V cache, prompt rows",
            "files": {}}
    F16, F32 = 1, 0  # GGML_TYPE_F16, GGML_TYPE_F32
    for q in QUANTS:
        path = gguf_path(q)
        # the reference: llama.cpp's defaults (flash attention auto, F16 K/V cache)
        logits, gen, settings = run(path, L.LLAMA_FLASH_ATTN_TYPE_AUTO, F16)
        assert settings["type_k"] == F16
        # llama.cpp's own spread: plain attention and an F32 cache on the same file
        alt, alt_gen, _ = run(path, L.LLAMA_FLASH_ATTN_TYPE_DISABLED, F32)
        top2 = np.sort(logits[:n], axis=1)[:, -2:]
        d = np.abs(alt[:n] - logits[:n])
        with open(path, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
        write_ref(os.path.join(OUT, "llama_%s.bin" % q), list(tokens) + gen[:-1], logits, gen)
        meta["files"][os.path.basename(path)] = {
            "sha256": sha, "settings": settings,
            "spread_vs_no_flash_f32_kv": {"max_abs": float(d.max()), "mean_abs": float(d.mean()),
                                          "prompt_argmax_equal": int((alt[:n].argmax(1) == logits[:n].argmax(1)).sum()),
                                          "greedy_equal_prefix": next((i for i in range(N_GEN)
                                                                       if alt_gen[i] != gen[i]), N_GEN)},
            "min_prompt_top2_gap": float((top2[:, 1] - top2[:, 0]).min()),
            "max_abs_logit": float(np.abs(logits).max()), "greedy": gen}
        print("%s: %s" % (os.path.basename(path), json.dumps(meta["files"][os.path.basename(path)])))
    with open(os.path.join(OUT, "llama.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")


def write_ref(path, tokens, logits, gen):
    with open(path, "wb") as f:
        f.write(b"G4REF1\0\0")
        f.write(struct.pack("<ii", logits.shape[0], logits.shape[1]))
        f.write(np.asarray(tokens, dtype="<i4").tobytes())
        f.write(np.ascontiguousarray(logits, dtype="<f4").tobytes())
        f.write(struct.pack("<i", len(gen)))
        f.write(np.asarray(gen, dtype="<i4").tobytes())


if __name__ == "__main__":
    stages = {"fixture": stage_fixture, "dequant": stage_dequant, "llama": stage_llama}
    if len(sys.argv) != 2 or sys.argv[1] not in stages:
        sys.exit(__doc__)
    stages[sys.argv[1]]()
