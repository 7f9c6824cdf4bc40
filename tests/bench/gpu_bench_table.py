#!/usr/bin/env python3
"""The combined table of a GPU benchmark run (tests/bench/gpu_bench.sh): reads the JSON lines that
gpu_bench (engine "gemma4", the default) and gpu_bench_hf.py (engine "hf") appended to one file and
prints, per model, each prompt length and decode context with gemma4's tok/s in both precisions,
its share of the limit (decode: the measured read bandwidth over the bytes per token; prompt: the
measured cuBLAS bf16 GEMM rate over the FLOPs per token), transformers' tok/s (eager and
torch.compile) and the ratio of gemma4's best to transformers' best. Standard library only.

  gpu_bench_table.py RESULTS.json
"""
import json
import sys


def fmt(v, spec="{:.1f}"):
    return "-" if v is None else spec.format(v)


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    rows = []
    for line in open(sys.argv[1]):
        line = line.strip()
        if line:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass  # a line cut by a timeout
    dev = [r for r in rows if r.get("type") == "device"]
    if dev:
        d = dev[-1]
        print(f"GPU: {d['name']} | driver {d['driver']} (CUDA {d['cuda_driver'] // 1000}.{d['cuda_driver'] % 1000 // 10}) "
              f"| {d['sms']} SMs | read bandwidth {d['bw'] / 1e12:.3f} TB/s (measured)")
    models = []
    for r in rows:
        if "model" in r and r["model"] not in models:
            models.append(r["model"])
    for m in models:
        ours = [r for r in rows if r.get("model") == m and r.get("type") == "row" and r.get("engine", "gemma4") == "gemma4"]
        hf = [r for r in rows if r.get("model") == m and r.get("type") == "row" and r.get("engine") == "hf"]
        meta = [r for r in rows if r.get("model") == m and r.get("type") == "model"]
        print(f"\n== {m}" + (f": cuBLAS bf16 GEMM {meta[-1]['gemm_tflops']:.1f} TFLOP/s "
                             f"({meta[-1]['gemm_tokens']} x {meta[-1]['gemm_rows']} x {meta[-1]['gemm_cols']})" if meta else ""))
        print(f"{'test':<8}{'n':>7} {'bf16 tok/s':>11} {'% limit':>8} {'fp32 tok/s':>11} {'% limit':>8} "
              f"{'limit':>9} {'HF eager':>9} {'HF compile':>11} {'x HF':>6}")
        keys = []
        for r in ours + hf:
            k = (r.get("test"), r.get("n"))
            if k[0] in ("prompt", "decode") and k not in keys:
                keys.append(k)
        keys.sort(key=lambda k: (k[0] != "decode", k[1]))
        for test, n in keys:
            def pick(src, **want):
                for r in src:
                    if r.get("test") == test and r.get("n") == n and all(r.get(a) == b for a, b in want.items()) \
                            and "tok_s" in r:
                        return r
                return None
            b, f = pick(ours, prec="bf16"), pick(ours, prec="fp32")
            he, hc = pick(hf, mode="eager"), pick(hf, mode="compile")
            best = max([r["tok_s"] for r in (b, f) if r] or [0]) or None
            hbest = max([r["tok_s"] for r in (he, hc) if r] or [0]) or None
            limit = (b or f or {}).get("limit_tok_s")
            notes = [f"{r.get('prec', '')} {r.get('mode', '')} {r['skipped'] if 'skipped' in r else 'error'}".strip()
                     for r in ours + hf if r.get("test") == test and r.get("n") == n and "tok_s" not in r]
            print(f"{test:<8}{n:>7} {fmt(b and b['tok_s']):>11} {fmt(b and b['pct']):>8} "
                  f"{fmt(f and f['tok_s']):>11} {fmt(f and f['pct']):>8} {fmt(limit):>9} "
                  f"{fmt(he and he['tok_s']):>9} {fmt(hc and hc['tok_s']):>11} "
                  f"{fmt(best / hbest if best and hbest else None, '{:.2f}'):>6}"
                  + (f"  ({'; '.join(notes)})" if notes else ""))
        for r in rows:
            if r.get("model") == m and r.get("type") == "row" and r.get("test") in ("model", "session"):
                print(f"  {r.get('engine', 'gemma4')} {r.get('prec', '')}: {r['test']} "
                      f"{r.get('skipped') or r.get('error')}")
        mem = {}
        for r in rows:
            if r.get("model") == m and r.get("type") == "memory":
                k = f"{r.get('engine', 'gemma4')} {r['prec']}"
                mem[k] = max(mem.get(k, 0), r["used"])
        if mem:
            print("  GPU memory used (largest session): " +
                  ", ".join(f"{k} {v / 2**30:.1f} GiB" for k, v in mem.items()))
    print("\nlimit: decode = measured read bandwidth / bytes per token (gpu_bench); prompt = measured cuBLAS "
          "bf16 GEMM rate / FLOPs per token. x HF = best gemma4 tok/s / best transformers tok/s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
