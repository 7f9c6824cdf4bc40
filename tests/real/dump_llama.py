#!/usr/bin/env python3
"""Diagnostic: dumps llama.cpp's intermediate tensors for one prompt on a GGUF through the
scheduler's eval callback (llama_context_params.cb_eval), to compare op by op with gemma4's
(tests/real/dump_gemma4.c). Same settings as make_references.py (one thread, n_ubatch 512,
flash attention auto = on for the CPU, f16 K/V).

  py=$(bash scripts/llama_cpp_venv.sh)
  $py tests/real/dump_llama.py MODEL.gguf "The capital of France is" out.npz [extra ids...]

out.npz: one array per tensor the graph computes, named as llama.cpp's graph names it
("attn_norm-3", "ffn_out-0", ...), float32, shape (n_tokens, ...) in numpy order (ggml's ne
reversed); the prompt batch first, then each extra id decoded alone (keys get ".1", ".2").
Also prints each tensor's op and sources.
"""
import ctypes
import os
import sys

import numpy as np
import llama_cpp

L = llama_cpp
GGML_MAX_DIMS, GGML_MAX_SRC, GGML_MAX_OP_PARAMS, GGML_MAX_NAME = 4, 10, 64, 64


class Tensor(ctypes.Structure):  # struct ggml_tensor of the vendored ggml.h
    pass


Tensor._fields_ = [
    ("type", ctypes.c_int), ("buffer", ctypes.c_void_p),
    ("ne", ctypes.c_int64 * GGML_MAX_DIMS), ("nb", ctypes.c_size_t * GGML_MAX_DIMS),
    ("op", ctypes.c_int), ("op_params", ctypes.c_int32 * (GGML_MAX_OP_PARAMS // 4)),
    ("flags", ctypes.c_int32), ("src", ctypes.POINTER(Tensor) * GGML_MAX_SRC),
    ("view_src", ctypes.POINTER(Tensor)), ("view_offs", ctypes.c_size_t),
    ("data", ctypes.c_void_p), ("name", ctypes.c_char * GGML_MAX_NAME),
    ("extra", ctypes.c_void_p), ("padding", ctypes.c_char * 8)]

libdir = os.path.join(os.path.dirname(L.__file__), "lib")
base = ctypes.CDLL(os.path.join(libdir, "libggml-base.so"))
base.ggml_op_name.restype = ctypes.c_char_p
base.ggml_op_name.argtypes = [ctypes.c_int]


def read(t):
    ne = [t.ne[i] for i in range(4)]
    nb = [t.nb[i] for i in range(4)]
    if t.type == 0:
        dt, es = np.float32, 4
    elif t.type == 1:
        dt, es = np.float16, 2
    else:
        return None
    span = sum((ne[i] - 1) * nb[i] for i in range(4)) + es
    buf = (ctypes.c_char * span).from_address(t.data)
    a = np.ndarray(shape=tuple(reversed(ne)), dtype=dt, buffer=buf,
                   strides=tuple(reversed(nb)))
    return np.ascontiguousarray(a).astype(np.float32)


def main():
    model_path, text, out = sys.argv[1], sys.argv[2], sys.argv[3]
    extra = [int(x) for x in sys.argv[4:]]
    tok = L.Llama(model_path=model_path, vocab_only=True, verbose=False)
    ids = tok.tokenize(text.encode(), add_bos=True, special=True)
    L.llama_backend_init()
    mp = L.llama_model_default_params()
    mp.n_gpu_layers = 0
    model = L.llama_model_load_from_file(model_path.encode(), mp)
    cp = L.llama_context_default_params()
    cp.n_ctx = cp.n_batch = cp.n_ubatch = 512
    cp.n_threads = cp.n_threads_batch = 1
    if os.environ.get("DUMP_FA") is not None:
        cp.flash_attn_type = int(os.environ["DUMP_FA"])
    dumped, suffix = {}, [""]

    @L.ggml_backend_sched_eval_callback
    def cb(tp, ask, user):
        t = ctypes.cast(tp, ctypes.POINTER(Tensor)).contents
        if ask:
            return True
        name = t.name.decode()
        a = read(t)
        srcs = [t.src[i].contents.name.decode() for i in range(GGML_MAX_SRC) if t.src[i]]
        print("%-28s %-14s type %d ne %s src %s" % (name + suffix[0], base.ggml_op_name(t.op).decode(),
                                                  t.type, list(t.ne), srcs))
        op = base.ggml_op_name(t.op).decode()
        if op == "MUL_MAT" and srcs[0].startswith("blk.") and srcs[0].endswith("attn_output.weight"):
            name = "attn_out-" + srcs[0].split(".")[1]  # unnamed in llama.cpp's graph
        if a is not None:
            dumped[name + "|" + op + suffix[0]] = a
        return True

    cp.cb_eval = cb
    ctx = L.llama_init_from_model(model, cp)
    vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(model))
    batch = L.llama_batch_init(512, 0, 1)

    def decode(tokens, pos0):
        for i, t in enumerate(tokens):
            batch.token[i], batch.pos[i], batch.n_seq_id[i] = t, pos0 + i, 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = i == len(tokens) - 1
        batch.n_tokens = len(tokens)
        assert L.llama_decode(ctx, batch) == 0
        p = L.llama_get_logits_ith(ctx, len(tokens) - 1)
        return np.ctypeslib.as_array(p, shape=(vocab,)).astype(np.float32).copy()

    dumped["logits"] = decode(ids, 0)
    dumped["ids"] = np.array(ids, dtype=np.float32)
    for j, t in enumerate(extra):
        suffix[0] = ".%d" % (j + 1)
        dumped["logits" + suffix[0]] = decode([t], len(ids) + j)
    np.savez(out, **dumped)
    print("ids", ids, "argmax", int(np.argmax(dumped["logits"])))


if __name__ == "__main__":
    main()
