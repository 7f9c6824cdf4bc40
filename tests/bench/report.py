#!/usr/bin/env python3
"""Turns the JSON lines of bench_gemma4, bench_llama.py and membw into the table cpu_bench.sh
prints (Markdown) and writes next to them.

  report.py RUN_DIR MODEL_DIR COMMAND

RUN_DIR holds gemma4.jsonl, llama.jsonl, membw.json and, optionally, gemma4_logits.bin and
llama_logits.bin (float32 logits after the first prompt, for the agreement check);
MODEL_DIR/bench_meta.json has the bytes one decode step streams (see make_model.py).
Writes RUN_DIR/table.md and RUN_DIR/summary.json.
"""
import json
import os
import platform
import subprocess
import sys

import numpy as np


def load(path):
    rows = []
    if os.path.exists(path):
        for line in open(path):
            line = line.strip()
            if line.startswith("{"):
                rows.append(json.loads(line))
    return rows


def pick(rows, test, **kv):
    """The first row of that test, or for timings (pp, tg) the best one over the rounds."""
    found = [r for r in rows if r.get("test") == test and all(r.get(k) == v for k, v in kv.items())]
    if not found:
        return None
    if test == "pp":
        return max(found, key=lambda r: r["tok_s"])
    if test == "tg":
        return min(found, key=lambda r: r["median_ms"])
    return found[0]


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def cpu_id():
    """family / model / stepping and the flags that matter here, from /proc/cpuinfo."""
    info = {}
    for line in open("/proc/cpuinfo"):
        if ":" in line:
            k, v = (x.strip() for x in line.split(":", 1))
            info.setdefault(k, v)
        if not line.strip():
            break
    flags = set(info.get("flags", "").split())
    isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16") if f in flags]
    return (f"family {info.get('cpu family')} model {info.get('model')} stepping "
            f"{info.get('stepping')}, {' '.join(isa)}")


def caches():
    """Per-core cache sizes of cpu0 from sysfs: 'L1d 48K, L2 2048K, L3 ...'."""
    out = []
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for d in sorted(os.listdir(base)):
            if not d.startswith("index"):
                continue
            rd = lambda f: open(os.path.join(base, d, f)).read().strip()
            typ = rd("type")
            if typ == "Instruction":
                continue
            out.append(f"L{rd('level')}{'d' if typ == 'Data' else ''} {rd('size')}")
    except OSError:
        return "unknown"
    return ", ".join(out)


def physical_cores():
    try:
        out = subprocess.run(["lscpu", "-p=CORE,SOCKET"], capture_output=True, text=True).stdout
        return len({l for l in out.splitlines() if l and not l.startswith("#")})
    except OSError:
        return os.cpu_count()


def logits_check(run, a="gemma4_logits.bin", b="llama_logits.bin"):
    a, b = os.path.join(run, a), os.path.join(run, b)
    if not (os.path.exists(a) and os.path.exists(b)):
        return None
    g, l = np.fromfile(a, np.float32), np.fromfile(b, np.float32)
    if g.shape != l.shape:
        return {"error": f"vocab differs: {g.shape[0]} vs {l.shape[0]}"}
    top_g, top_l = np.argsort(-g)[:10], np.argsort(-l)[:10]
    return {"max_abs_diff": float(np.abs(g - l).max()), "max_abs_ref": float(np.abs(g).max()),
            "rel": float(np.abs(g - l).max() / max(np.abs(g).max(), 1e-30)),
            "argmax_gemma4": int(top_g[0]), "argmax_llama": int(top_l[0]),
            "top10_overlap": len(set(top_g.tolist()) & set(top_l.tolist())),
            "corr": float(np.corrcoef(g, l)[0, 1])}


def common_prefix(a, b):
    """How many leading greedy tokens two runs share."""
    n = 0
    for x, y in zip(a["tokens"], b["tokens"]):
        if x != y:
            break
        n += 1
    return n


def main():
    run, model_dir, command = sys.argv[1], sys.argv[2], sys.argv[3]
    # optional: the weight type (bf16, q8_0, q4_k_m) and, for a quantized one, its GGUF, whose
    # .json (quantize_gguf.py) gives the bytes a decode step reads
    wtype = sys.argv[4] if len(sys.argv) > 4 else "bf16"
    qmeta = json.load(open(sys.argv[5] + ".json")) if wtype != "bf16" else None
    g, l = load(os.path.join(run, "gemma4.jsonl")), load(os.path.join(run, "llama.jsonl"))
    gb = load(os.path.join(run, "gemma4_bf16.jsonl"))
    bws = load(os.path.join(run, "membw.json"))  # before and after each engine, every round
    bw = max(bws, key=lambda b: b["read_gbs"])
    meta = json.load(open(os.path.join(model_dir, "bench_meta.json")))
    gi, li = pick(g, "info") or {}, pick(l, "info") or {}
    dec_bytes = meta["decode_bytes_per_token"]["total"] if not qmeta else qmeta["decode_bytes_per_token"]
    limit = bw["read_gbs"] * 1e9 / dec_bytes

    def cell(rows, test, key, pct=False, **kv):
        r = pick(rows, test, **kv)
        if not r:
            return "-", None
        # decode: 1 / median step time (robust to other load on the machine); prompt: best run
        v = 1e3 / r["median_ms"] if test == "tg" else r["tok_s"]
        return (f"{v:.2f} ({100 * v / limit:.0f}%)" if pct else f"{v:.2f}"), v

    lines = []
    tests = [(f"prompt {r['n_prompt']} tok/s", "pp", False, {"n_prompt": r["n_prompt"]})
             for r in g + l if r.get("test") == "pp"]
    tests += [(f"decode @ctx {r['ctx']} tok/s (% of limit)", "tg", True, {"ctx": r["ctx"]})
              for r in g + l if r.get("test") == "tg"]
    seen, uniq = set(), []
    for t in tests:
        if t[0] not in seen:
            seen.add(t[0])
            uniq.append(t)
    summary = {"tests": {}}
    lines.append("| test | gemma4 fp32 | gemma4 bf16 | llama.cpp | fp32 / llama.cpp | bf16 / llama.cpp |")
    lines.append("|---|---:|---:|---:|---:|---:|")
    for name, test, pct, kv in uniq:
        cg, vg = cell(g, test, "tok_s", pct, **kv)
        cb, vb = cell(gb, test, "tok_s", pct, **kv)
        cl, vl = cell(l, test, "tok_s", pct, **kv)
        ratio = f"{vg / vl:.2f}x" if vg and vl else "-"
        ratio_b = f"{vb / vl:.2f}x" if vb and vl else "-"
        lines.append(f"| {name} | {cg} | {cb} | {cl} | {ratio} | {ratio_b} |")
        summary["tests"][name] = {"gemma4": vg, "gemma4_bf16": vb, "llama.cpp": vl}
    lines.append(f"| decode limit tok/s (bandwidth / bytes per token) | {limit:.2f} | {limit:.2f} | {limit:.2f} | | |")

    # Every round on its own: the engines' values, their ratios within the round, and the
    # engine-free read bandwidth before and after each engine (seq 0..3).
    rounds = sorted({r["round"] for r in g + gb + l + bws if "round" in r})
    if rounds:
        lines += ["", "Per round (ratios within the round; read bandwidth GB/s before gemma4 fp32 / "
                  "before bf16 / before llama.cpp / after):", "",
                  "| round | test | gemma4 fp32 | gemma4 bf16 | llama.cpp | fp32 / llama.cpp | "
                  "bf16 / llama.cpp | read GB/s |", "|---|---|---:|---:|---:|---:|---:|---|"]
        summary["rounds"] = {}
        for rd in rounds:
            bw_r = [b for b in bws if b.get("round") == rd]
            bw_s = " / ".join(f"{b['read_gbs']:.1f}" for b in sorted(bw_r, key=lambda b: b.get("seq", 0)))
            for name, test, pct, kv in uniq:
                sel = lambda rows: [r for r in rows if r.get("round") == rd]
                _, vg = cell(sel(g), test, "tok_s", pct, **kv)
                _, vb = cell(sel(gb), test, "tok_s", pct, **kv)
                _, vl = cell(sel(l), test, "tok_s", pct, **kv)
                f = lambda v: f"{v:.2f}" if v else "-"
                rt = lambda a, b: f"{a / b:.2f}x" if a and b else "-"
                lines.append(f"| {rd} | {name.replace(' (% of limit)', '')} | {f(vg)} | {f(vb)} | {f(vl)} | "
                             f"{rt(vg, vl)} | {rt(vb, vl)} | {bw_s} |")
                summary["rounds"].setdefault(str(rd), {})[name] = {"gemma4": vg, "gemma4_bf16": vb,
                                                                   "llama.cpp": vl, "read_gbs": bw_s}

    nproc = os.cpu_count()
    info = ([
        f"weights: {wtype.upper()} GGUF made by llama.cpp's quantizer from the bf16 conversion "
        f"(tensor types {qmeta['tensor_types']}, {qmeta['file_bytes'] / 1e9:.2f} GB), the same file for "
        "both engines; gemma4 fp32 = its exact path (blocks dequantized inside the fp32 tiles), gemma4 "
        "bf16 = its fast path (llama.cpp's numerics: activations quantized to 8 bits per block, "
        f"integer dot products); one decode step reads {dec_bytes / 1e9:.3f} GB of it (everything "
        "but the per-layer embedding table, of which one row)"] if qmeta else []) + [
        "gemma4 fp32: the default precision (fp32 activations, logits match transformers' float32 "
        "to ~1e-5); gemma4 bf16: gemma4_session_set_precision(GEMMA4_PRECISION_BF16), activations "
        "rounded to bf16 in the matrix products as llama.cpp does",
        "prompt tok/s: one step of the whole prompt on an empty cache, best of the runs; decode "
        "tok/s: 1 / median time of a one-token step (argmax of the previous logits fed back) "
        f"around that context; each engine's best round (read bandwidth checks: "
        + ", ".join(f"{b['read_gbs']:.1f}" for b in bws) + " GB/s; the limit uses the best)",
        f"CPU: {cpu_model()} ({cpu_id()}), caches per core {caches()}, "
        f"{physical_cores()} physical cores, {nproc} logical CPUs; "
        f"threads: gemma4 {gi.get('n_threads')}, llama.cpp {li.get('n_threads')}",
        f"memory bandwidth ({bw['threads']} threads, {bw['bytes'] >> 20} MiB buffers, best of runs): "
        f"read {bw['read_gbs']:.1f} GB/s (bytes read / s), memcpy {bw['memcpy_gbs']:.1f} GB/s "
        f"(bytes read + written / s); the limit uses the read figure",
        f"model: random bf16 weights{' (then quantized, above)' if qmeta else ''}, E2B dimensions, {meta['n_layers']} layers "
        f"({meta['num_kv_shared_layers']} KV-shared), {meta['file_weight_bytes'] / 1e9:.2f} GB; one decode "
        f"step reads {dec_bytes / 1e9:.3f} GB of weights (all matrices, tied LM head "
        f"{meta['decode_bytes_per_token']['lm_head'] / 1e9:.3f} GB, one embedding row and one PLE row; "
        f"KV cache not counted) -> limit {limit:.2f} tok/s",
        f"gemma4 {gi.get('version')}: micro-batch {gi.get('n_ubatch')}, KV cache "
        f"{gi.get('kv_bytes', 0) / 1e6:.0f} MB for n_ctx {gi.get('n_ctx')}",
        f"llama.cpp (llama-cpp-python {li.get('version')}): {li.get('desc')}, n_batch {li.get('n_batch')}, "
        f"n_ubatch {li.get('n_ubatch')}, flash_attn_type {li.get('flash_attn_type')} (-1 auto), "
        f"type_k {li.get('type_k')} (1 = f16), matrices {li.get('matrix_types')}",
    ]
    fg, fl = pick(g, "finite"), pick(l, "finite")
    check = [f"finite logits: gemma4 {fg and fg['ok']}, llama.cpp {fl and fl['ok']}"]
    lc = logits_check(run)
    if lc and "error" not in lc:
        check.append(f"logits after the first prompt: max |gemma4 - llama.cpp| = {lc['max_abs_diff']:.4f} "
                     f"(max |logit| {lc['max_abs_ref']:.3f}, rel {lc['rel']:.2e}), correlation "
                     f"{lc['corr']:.6f}, argmax {lc['argmax_gemma4']} vs {lc['argmax_llama']}, "
                     f"top-10 overlap {lc['top10_overlap']}/10")
    elif lc:
        check.append(f"logits: {lc['error']}")
    for other, label in (("gemma4_logits.bin", "gemma4 fp32"), ("llama_logits.bin", "llama.cpp")):
        lb = logits_check(run, "gemma4_bf16_logits.bin", other)
        if lb and "error" not in lb:
            check.append(f"gemma4 bf16 logits after the first prompt vs {label}: max diff "
                         f"{lb['max_abs_diff']:.4f} (rel {lb['rel']:.2e}), correlation {lb['corr']:.6f}, "
                         f"argmax {lb['argmax_gemma4']} vs {lb['argmax_llama']}, top-10 overlap "
                         f"{lb['top10_overlap']}/10")
    gg, gl, gbg = pick(g, "greedy"), pick(l, "greedy"), pick(gb, "greedy")
    if gbg and gl:
        check.append(f"greedy continuation, gemma4 bf16 vs llama.cpp: first {common_prefix(gbg, gl)} "
                     f"of {len(gbg['tokens'])} tokens agree")
    if gg and gl:
        check.append(f"greedy continuation after {gg['n_prompt']} prompt tokens: first "
                     f"{common_prefix(gg, gl)} of {len(gg['tokens'])} tokens agree (gemma4 "
                     f"{gg['tokens'][:4]}..., llama.cpp {gl['tokens'][:4]}...)")
    summary.update(limit_tok_s=limit, decode_bytes=dec_bytes, membw=bw, checks=check, logits=lc)

    text = "\n".join([f"## CPU benchmark: gemma4 vs llama.cpp, {wtype.upper()} weights", "", f"command: `{command}`", ""] + lines +
                     [""] + [f"- {s}" for s in info + check]) + "\n"
    open(os.path.join(run, "table.md"), "w").write(text)
    json.dump(summary, open(os.path.join(run, "summary.json"), "w"), indent=1)
    print(text)


if __name__ == "__main__":
    main()
