#!/usr/bin/env python3
"""The transformers peer of tests/bench/gpu_bench.c: Hugging Face transformers'
Gemma4ForCausalLM in bf16 on the same shapes (tests/configs/*.json, random weights initialised
on the device, nothing loaded), with a StaticCache, on the same prompt lengths and decode
contexts, printed in gpu_bench's table format (and JSON lines for tests/bench/gpu_bench.sh).

Method (as gpu_bench's): prompt tok/s = a prompt of P random tokens from position 0 in chunks of
--batch tokens (logits_to_keep=1), median of --reps runs after one untimed run; decode tok/s at a
context c = the cache filled to c with untimed prompt chunks, then --warmup untimed and --steps
timed one-token steps, each feeding the previous step's argmax (on the device, read with
.item(): the host waits for every step, as gpu_bench's steps return logits to the host); the
median step on the host clock. Eager attention is "sdpa". Decode runs eagerly and then, with
--compile (default: on CUDA), with forward compiled by torch.compile(mode="reduce-overhead")
(CUDA graphs over the static cache); a compile that fails falls back to eager and says why.
Weights: matrices N(0, 1/cols), q/k norms 0.25, other vectors as transformers initialises them
(the scale gpu_bench's random models use).

  gpu_bench_hf.py [--models e2b,e4b,26b-a4b,31b|CONFIG.json,...] [--contexts 128,4096,32768]
                  [--prompts 512,4096] [--steps N] [--warmup N] [--reps N] [--batch N]
                  [--device cuda|cpu] [--compile-models all|none|e2b,...] [--modes eager,compile]
                  [--time-budget S]
                  [--json FILE] [--quick]
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
T0 = time.perf_counter()


def log(*a):
    print(*a, flush=True)


def config_path(arg):
    if "/" in arg or arg.endswith(".json"):
        return arg if arg.endswith(".json") else os.path.join(arg, "config.json")
    return os.path.join(ROOT, "tests", "configs", arg + ".json")


def model_name(arg):
    if "/" not in arg and not arg.endswith(".json"):
        return arg
    p = arg.rstrip("/")
    if p.endswith("config.json"):
        return os.path.basename(os.path.dirname(p))
    return os.path.basename(p)[:-5] if p.endswith(".json") else os.path.basename(p)


def build(path, device):
    from transformers import Gemma4ForCausalLM, Gemma4TextConfig
    cfg = json.load(open(path))
    tc = dict(cfg.get("text_config", cfg))
    tc.pop("model_type", None)
    tc.pop("architectures", None)
    conf = Gemma4TextConfig(**tc)
    conf._attn_implementation = "sdpa"
    with torch.device(device):
        model = Gemma4ForCausalLM._from_config(conf, dtype=torch.bfloat16, attn_implementation="sdpa")
    model.eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim >= 2:
                p.normal_(0.0, 1.0 / math.sqrt(p.shape[-1]))
            elif name.endswith(("q_norm.weight", "k_norm.weight")):
                p.fill_(0.25)
    return model, conf


class Runner:
    def __init__(self, model, conf, a, device):
        from transformers import StaticCache
        self.model, self.conf, self.a, self.device = model, conf, a, device
        self.n_ctx = max(max(a.prompts or [0]), max(a.contexts) + a.warmup + a.steps) + 1
        self.cache = StaticCache(config=conf, max_cache_len=self.n_ctx)
        g = torch.Generator(device="cpu").manual_seed(1)
        self.toks = torch.randint(2, conf.vocab_size, (1, self.n_ctx), generator=g).to(device)
        self.filled = 0
        self.forward = model.forward
        self.prompt_rate = 0.0

    def sync(self):
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()

    def reset(self):
        self.cache.reset()
        self.filled = 0

    @torch.no_grad()
    def run(self, p0, n, fwd=None):
        """Tokens [p0, p0 + n) in chunks of --batch; the last chunk's last logits."""
        fwd = fwd or self.model.forward
        out = None
        done = 0
        while done < n:
            k = min(self.a.batch, n - done)
            pos = torch.arange(p0 + done, p0 + done + k, device=self.device).unsqueeze(0)
            out = fwd(input_ids=self.toks[:, p0 + done:p0 + done + k], position_ids=pos,
                      past_key_values=self.cache, use_cache=True, logits_to_keep=1).logits
            done += k
        return out

    def budget_left(self):
        return self.a.time_budget - (time.perf_counter() - T0) if self.a.time_budget > 0 else 1e30

    def prompt(self, n):
        times = []
        for i in range(-1, self.a.reps):
            self.reset()
            self.sync()
            t0 = time.perf_counter()
            lg = self.run(0, n)
            self.sync()
            if i >= 0:
                times.append(time.perf_counter() - t0)
        self.filled = n
        sec = statistics.median(times)
        self.prompt_rate = n / sec
        return n / sec, sec, bool(torch.isfinite(lg).all())

    @torch.no_grad()
    def decode(self, ctx, fwd):
        if ctx < self.filled:
            self.reset()
        self.run(self.filled, ctx - self.filled)
        pos = ctx
        nxt = self.toks[:, pos:pos + 1].clone()
        times, fin = [], True
        for i in range(-self.a.warmup, self.a.steps):
            t0 = time.perf_counter()
            lg = fwd(input_ids=nxt, position_ids=torch.tensor([[pos]], device=self.device),
                     past_key_values=self.cache, use_cache=True).logits
            tok = int(lg[0, -1].argmax())
            if i >= 0:
                times.append(time.perf_counter() - t0)
            nxt = torch.tensor([[tok]], device=self.device)
            pos += 1
        fin = bool(torch.isfinite(lg).all())
        self.filled = pos
        sec = statistics.median(times)
        return 1.0 / sec, sec, fin


def emit(js, row):
    if js:
        js.write(json.dumps(row) + "\n")
        js.flush()


def bench_model(arg, a, js):
    name = model_name(arg)
    path = config_path(arg)
    dev = a.device
    if a.time_budget > 0 and time.perf_counter() - T0 > a.time_budget:
        log(f"\n== {name}: skipped: time budget")
        return
    # "all" compiles on CUDA only; a model named explicitly compiles on any device (a CPU run
    # checks the compile path)
    compile_it = (a.compile_models == "all" and dev.startswith("cuda")) or name in a.compile_models.split(",")
    modes = [m for m in a.modes if m == "eager" or compile_it]
    if not modes:
        return
    free0 = torch.cuda.mem_get_info()[0] if dev.startswith("cuda") else 0
    t0 = time.perf_counter()
    try:
        model, conf = build(path, dev)
    except torch.OutOfMemoryError as e:
        log(f"\n== {name}: skipped, does not fit the device memory ({str(e).splitlines()[0]})")
        emit(js, {"type": "row", "engine": "hf", "model": name, "test": "model", "skipped": "out of memory"})
        return
    t_build = time.perf_counter() - t0
    gpu = torch.cuda.get_device_name(0) if dev.startswith("cuda") else "cpu"
    log(f"\n== {name} ({path}): transformers {__import__('transformers').__version__} "
        f"Gemma4ForCausalLM bf16, sdpa, StaticCache | torch {torch.__version__} | {gpu}")
    log(f"  random weights initialised on {dev}: {sum(p.numel() for p in model.parameters()) * 2 / 1e9:.2f} GB "
        f"in {t_build:.2f} s")
    log(f"prec  test    n       {'tok/s':>10} {'ms':>10}  mode")
    r = Runner(model, conf, a, dev)
    used = free0 - torch.cuda.mem_get_info()[0] if dev.startswith("cuda") else 0

    def row(test, n, mode, tok_s, sec, fin, extra=""):
        log(f"bf16  {test:<7} {n:<7} {tok_s:10.1f} {1e3 * sec:10.3f}  {mode}  finite {'yes' if fin else 'NO'}{extra}")
        emit(js, {"type": "row", "engine": "hf", "model": name, "prec": "bf16", "mode": mode,
                  "test": test, "n": n, "tok_s": tok_s, "ms": 1e3 * sec, "finite": fin})

    def skip(test, n, why):
        log(f"bf16  {test:<7} {n:<7} skipped: {why}")
        emit(js, {"type": "row", "engine": "hf", "model": name, "prec": "bf16", "test": test, "n": n,
                  "skipped": why})

    # decode contexts ascend; a prompt of P runs before the first context >= P (keeps fills short)
    prompts = sorted(a.prompts)
    for mode in modes:
        fwd = model.forward
        if mode == "compile":
            try:
                fwd = torch.compile(model.forward, mode="reduce-overhead", fullgraph=False)
            except Exception as e:  # noqa: BLE001 - any failure means eager
                log(f"  torch.compile failed ({type(e).__name__}: {e}); decode stays eager")
                break
        pi = 0
        r.reset()
        for ctx in sorted(a.contexts):
            while mode == "eager" and pi < len(prompts) and prompts[pi] <= ctx:
                n = prompts[pi]
                pi += 1
                est = n * (a.reps + 1) / r.prompt_rate if r.prompt_rate else 0
                if est > r.budget_left():
                    skip("prompt", n, "time budget")
                    continue
                try:
                    tok_s, sec, fin = r.prompt(n)
                    row("prompt", n, "eager", tok_s, sec, fin)
                except torch.OutOfMemoryError as e:
                    r.reset()
                    skip("prompt", n, f"out of memory ({str(e).splitlines()[0][:80]})")
            fill = 1.5 * max(0, ctx - (r.filled if ctx >= r.filled else 0)) / r.prompt_rate if r.prompt_rate else 0
            if fill + 0.2 * (a.steps + a.warmup) > r.budget_left():
                skip("decode", ctx, f"time budget ({mode})")
                continue
            try:
                t0 = time.perf_counter()
                tok_s, sec, fin = r.decode(ctx, fwd)
                extra = f"  ({time.perf_counter() - t0:.1f} s with fill, warm-up and compile)" if mode == "compile" else ""
                row("decode", ctx, mode, tok_s, sec, fin, extra)
            except torch.OutOfMemoryError as e:
                r.reset()
                skip("decode", ctx, f"out of memory ({str(e).splitlines()[0][:80]})")
            except Exception as e:  # noqa: BLE001 - a compile failure at the first call
                if mode != "compile":
                    raise
                log(f"  torch.compile failed at its first call ({type(e).__name__}: "
                    f"{str(e).splitlines()[0][:200]}); decode stays eager")
                emit(js, {"type": "row", "engine": "hf", "model": name, "prec": "bf16", "test": "decode",
                          "n": ctx, "mode": "compile", "skipped": "compile failed"})
                r.reset()
                break
        while mode == "eager" and pi < len(prompts):
            n = prompts[pi]
            pi += 1
            tok_s, sec, fin = r.prompt(n)
            row("prompt", n, "eager", tok_s, sec, fin)
    if dev.startswith("cuda"):
        used = max(used, free0 - torch.cuda.mem_get_info()[0])
        log(f"bf16  memory: {used / 2**30:.2f} GiB used on the device (weights, static cache of "
            f"{r.n_ctx} positions, activations)")
        emit(js, {"type": "memory", "engine": "hf", "model": name, "prec": "bf16", "used": used})
    del r, model
    if dev.startswith("cuda"):
        torch.cuda.empty_cache()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="e2b,e4b,26b-a4b,31b")
    ap.add_argument("--contexts", default="128,4096,32768")
    ap.add_argument("--prompts", default="512,4096")
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=4)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--compile-models", default="all", help="all, none, or a comma list of model names")
    ap.add_argument("--modes", default="eager,compile",
                    help="eager and/or compile (compile: the models of --compile-models only); "
                         "prompts run in eager mode")
    ap.add_argument("--time-budget", type=float, default=0)
    ap.add_argument("--json")
    ap.add_argument("--quick", action="store_true", help="8 steps, 2 warm-up, 1 repetition")
    a = ap.parse_args()
    a.contexts = [int(x) for x in a.contexts.split(",")]
    a.prompts = [int(x) for x in a.prompts.split(",") if x]
    a.modes = [m for m in a.modes.split(",") if m]
    if not a.contexts or any(m not in ("eager", "compile") for m in a.modes):
        ap.error("--contexts needs at least one context; --modes takes eager and/or compile")
    if a.quick:  # defaults only: options given explicitly win
        given = {x.split("=")[0] for x in sys.argv[1:]}
        a.steps = a.steps if "--steps" in given else 8
        a.warmup = a.warmup if "--warmup" in given else 2
        a.reps = a.reps if "--reps" in given else 1
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        log("gpu_bench_hf: no CUDA device")
        return 1
    torch.manual_seed(0)
    js = open(a.json, "a") if a.json else None
    log(f"gpu_bench_hf: transformers {__import__('transformers').__version__}, torch {torch.__version__}, "
        f"device {a.device}; decode = median of {a.steps} one-token steps after {a.warmup} warm-up steps; "
        f"prompt = median of {a.reps} runs, chunks of {a.batch} tokens")
    for m in a.models.split(","):
        try:
            bench_model(m, a, js)
        except Exception as e:  # noqa: BLE001 - one model's failure must not hide the others
            log(f"\n== {m}: error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
            emit(js, {"type": "row", "engine": "hf", "model": model_name(m), "test": "model",
                      "error": f"{type(e).__name__}"})
            if a.device.startswith("cuda"):
                torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
