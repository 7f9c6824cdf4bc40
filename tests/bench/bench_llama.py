#!/usr/bin/env python3
"""bench_llama.py: the llama.cpp side of tests/bench/cpu_bench.sh. Times llama.cpp (through
llama-cpp-python's low-level ctypes API: llama_decode on a llama_batch) exactly as
bench_gemma4.c times gemma4, with the same token ids, and prints the same JSON lines:
  pp:     one llama_decode of P prompt tokens on an empty cache (logits of the last one), best of --reps
  tg:     prefill C - n_decode/2 tokens (untimed), then n_decode one-token decodes feeding the
          argmax of the previous logits (argmax inside the timed loop)
  greedy: the argmax tokens of the first tg run
A 16-token decode runs first and is thrown away (page faults of the mmap). Before loading, every
2-D tensor of the GGUF is checked to be of the --weights type (BF16 by default, so llama.cpp runs the
same bf16 weights as gemma4's safetensors; q8_0 / q4_k_m: the quantized GGUF both engines read).

  bench_llama.py MODEL.gguf --ids FILE [--threads N] [--prompts 128,1024] [--ctx 128,2048]
                 [--n-decode 32] [--reps 2] [--n-batch 2048] [--n-ubatch 512] [--dump-logits FILE]
                 [--weights bf16|q8_0|q4_k_m]
"""
import argparse
import ctypes
import json
import sys
import time

import numpy as np


def emit(**kv):
    print(json.dumps({"engine": "llama.cpp", **kv}), flush=True)


# The matrix (2-D) types each --weights value allows: the bf16 conversion, or llama.cpp's
# quantizer's output (Q4_K_M mixes K-quants with Q5_0 / Q8_0 for widths that take no K-quant;
# both keep Gemma 4's per_layer_model_proj in BF16).
ALLOWED = {"bf16": {"BF16"}, "q8_0": {"Q8_0", "BF16"},
           "q4_k_m": {"Q4_K", "Q5_K", "Q6_K", "Q4_0", "Q5_0", "Q8_0", "BF16"}}


def check_types(path, weights):
    from gguf import GGUFReader
    r = GGUFReader(path)
    types = {}
    for t in r.tensors:
        if len([d for d in t.shape if d > 1]) >= 2:
            types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
    if not set(types) <= ALLOWED[weights]:
        sys.exit(f"bench_llama: {path}: matrices are {types}, expected {sorted(ALLOWED[weights])}")
    return types


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf")
    ap.add_argument("--ids", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompts", default="128,1024")
    ap.add_argument("--ctx", default="128,2048")
    ap.add_argument("--n-decode", type=int, default=32)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--n-batch", type=int, default=2048)
    ap.add_argument("--n-ubatch", type=int, default=512)
    ap.add_argument("--dump-logits")
    ap.add_argument("--weights", default="bf16", choices=sorted(ALLOWED))
    a = ap.parse_args()
    prompts = [int(x) for x in a.prompts.split(",") if x]
    ctxs = [int(x) for x in a.ctx.split(",") if x]
    max_tokens = max([16] + prompts + [c + a.n_decode for c in ctxs])
    ids = [int(x) for x in open(a.ids).read().split()][:max_tokens]
    if len(ids) < max_tokens:
        sys.exit(f"bench_llama: {a.ids}: need {max_tokens} token ids, read {len(ids)}")
    if a.n_batch < max(prompts + [c - a.n_decode // 2 for c in ctxs]):
        sys.exit("bench_llama: --n-batch must cover the longest prompt (one llama_decode per prompt)")
    matrix_types = check_types(a.gguf, a.weights)

    import llama_cpp as L
    L.llama_backend_init()
    mp = L.llama_model_default_params()
    mp.n_gpu_layers = 0
    mp.load_mode = L.LLAMA_LOAD_MODE_MMAP
    t0 = time.perf_counter()
    model = L.llama_model_load_from_file(a.gguf.encode(), mp)
    if not model:
        sys.exit(f"bench_llama: cannot load {a.gguf}")
    cp = L.llama_context_default_params()
    cp.n_ctx = max_tokens + 16
    cp.n_batch = a.n_batch
    cp.n_ubatch = a.n_ubatch
    cp.n_threads = a.threads
    cp.n_threads_batch = a.threads
    cp.no_perf = True
    ctx = L.llama_init_from_model(model, cp)
    if not ctx:
        sys.exit("bench_llama: llama_init_from_model failed")
    load_s = time.perf_counter() - t0
    vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(model))
    desc = ctypes.create_string_buffer(256)
    L.llama_model_desc(model, desc, len(desc))
    emit(test="info", version=L.__version__, desc=desc.value.decode(), n_params=L.llama_model_n_params(model),
         model_bytes=L.llama_model_size(model), matrix_types=matrix_types, vocab=vocab,
         n_threads=a.threads, n_ctx=cp.n_ctx, n_batch=a.n_batch, n_ubatch=a.n_ubatch,
         flash_attn_type=cp.flash_attn_type, type_k=cp.type_k, load_s=round(load_s, 3),
         system_info=L.llama_print_system_info().decode().strip())

    batch = L.llama_batch_init(a.n_batch, 0, 1)
    mem = L.llama_get_memory(ctx)

    def decode(tokens, pos0):
        """Runs tokens at positions pos0.. and returns the last one's logits (a copy)."""
        n = len(tokens)
        for i, t in enumerate(tokens):
            batch.token[i] = t
            batch.pos[i] = pos0 + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = i == n - 1
        batch.n_tokens = n
        if L.llama_decode(ctx, batch) != 0:
            sys.exit("bench_llama: llama_decode failed")
        p = L.llama_get_logits_ith(ctx, n - 1)
        return np.ctypeslib.as_array(p, shape=(vocab,)).copy()

    finite = True
    decode(ids[:16], 0)  # warm-up
    L.llama_memory_clear(mem, True)

    for ip, P in enumerate(prompts):
        best = 1e30
        for r in range(a.reps):
            L.llama_memory_clear(mem, True)
            t0 = time.perf_counter()
            logits = decode(ids[:P], 0)
            best = min(best, time.perf_counter() - t0)
            finite &= bool(np.isfinite(logits).all())
            if r == 0 and ip == 0 and a.dump_logits:
                logits.astype(np.float32).tofile(a.dump_logits)
        emit(test="pp", n_prompt=P, seconds=round(best, 4), tok_s=round(P / best, 3),
             argmax=int(np.argmax(logits)))

    for ic, C in enumerate(ctxs):
        n_pre = C - a.n_decode // 2
        L.llama_memory_clear(mem, True)
        t0 = time.perf_counter()
        logits = decode(ids[:n_pre], 0)
        pre_s = time.perf_counter() - t0
        gen, steps = [], []
        t_all = time.perf_counter()
        for i in range(a.n_decode):
            ts = time.perf_counter()
            tok = int(np.argmax(logits))
            gen.append(tok)
            logits = decode([tok], n_pre + i)
            steps.append(time.perf_counter() - ts)
        total = time.perf_counter() - t_all
        finite &= bool(np.isfinite(logits).all())
        emit(test="tg", ctx=C, n_prefill=n_pre, prefill_s=round(pre_s, 3), n_decode=a.n_decode,
             seconds=round(total, 4), tok_s=round(a.n_decode / total, 3),
             median_ms=round(1e3 * float(np.median(steps)), 3))
        if ic == 0:
            emit(test="greedy", n_prompt=n_pre, tokens=gen)
    emit(test="finite", ok=finite)

    L.llama_batch_free(batch)
    L.llama_free(ctx)
    L.llama_model_free(model)
    L.llama_backend_free()
    return 0 if finite else 1


if __name__ == "__main__":
    sys.exit(main())
