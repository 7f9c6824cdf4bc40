#!/usr/bin/env python3
"""Quick decode timing of the CUDA engine through the public ABI (ctypes, standard library
only), for scripts/gpu_check.sh: loads MODEL_DIR on CUDA device 0, prefills --prompt random
tokens (timed once), then times --steps single-token steps, each feeding the argmax of the
previous logits (the logits copy to the host is inside the timed loop). Prints one JSON line.
Not a benchmark: one run, no warm-up beyond a first untimed step.

  gpu_decode_timing.py LIBGEMMA4_SO MODEL_DIR [--prompt 128] [--steps 64] [--ctx 1024]
"""
import argparse
import ctypes
import json
import random
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("lib")
    ap.add_argument("model_dir")
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--ctx", type=int, default=1024)
    ap.add_argument("--device", type=int, default=1, help="1: GEMMA4_DEVICE_CUDA, 0: CPU")
    a = ap.parse_args()
    g = ctypes.CDLL(a.lib)
    g.gemma4_last_error.restype = ctypes.c_char_p
    model, sess = ctypes.c_void_p(), ctypes.c_void_p()

    def check(st, what):
        if st != 0:
            print(json.dumps({"test": "decode", "error": what, "status": st,
                              "message": g.gemma4_last_error().decode()}))
            sys.exit(1)

    t0 = time.perf_counter()
    check(g.gemma4_load(a.model_dir.encode(), a.device, 0, ctypes.c_int64(a.ctx), 0,
                        ctypes.byref(model)), "load")
    t_load = time.perf_counter() - t0
    check(g.gemma4_session_new(model, ctypes.c_int64(a.ctx), ctypes.byref(sess)), "session")
    vocab = 262144
    logits = (ctypes.c_float * vocab)()
    n_logits = ctypes.c_size_t()
    one = (ctypes.c_int32 * 1)(2)
    check(g.gemma4_session_step(sess, one, ctypes.c_size_t(1), logits, ctypes.c_size_t(vocab),
                                ctypes.byref(n_logits)), "first step")
    g.gemma4_kv_reset(sess)
    rng = random.Random(1)
    ids = (ctypes.c_int32 * a.prompt)(*[rng.randrange(2, n_logits.value) for _ in range(a.prompt)])
    t0 = time.perf_counter()
    check(g.gemma4_session_step(sess, ids, ctypes.c_size_t(a.prompt), logits,
                                ctypes.c_size_t(vocab), ctypes.byref(n_logits)), "prefill")
    t_prompt = time.perf_counter() - t0
    n = n_logits.value
    t0 = time.perf_counter()
    for _ in range(a.steps):
        one[0] = int(max(zip(logits[:n], range(n)))[1])
        check(g.gemma4_session_step(sess, one, ctypes.c_size_t(1), logits,
                                    ctypes.c_size_t(vocab), ctypes.byref(n_logits)), "decode")
    t_decode = time.perf_counter() - t0
    # the argmax above runs in Python: time it alone and report the engine's share too
    t0 = time.perf_counter()
    for _ in range(a.steps):
        int(max(zip(logits[:n], range(n)))[1])
    t_argmax = time.perf_counter() - t0
    print(json.dumps({"test": "decode", "device": "cuda" if a.device == 1 else "cpu",
                      "load_s": round(t_load, 3), "prompt_tokens": a.prompt,
                      "prompt_tok_per_s": round(a.prompt / t_prompt, 1), "steps": a.steps,
                      "decode_ms_per_token": round(1e3 * t_decode / a.steps, 3),
                      "decode_ms_per_token_without_host_argmax":
                          round(1e3 * (t_decode - t_argmax) / a.steps, 3),
                      "finite": all(x == x and abs(x) != float("inf") for x in logits[:n])}))
    g.gemma4_session_free(sess)
    g.gemma4_model_free(model)


if __name__ == "__main__":
    main()
