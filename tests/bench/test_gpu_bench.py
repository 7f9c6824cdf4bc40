#!/usr/bin/env python3
"""Smoke test of the GPU benchmark (ctest test_gpu_bench_emu, label emu; Python standard library
only): runs GPU_BENCH (gpu_bench built on the CPU execution harness, tests/emu) with --quick on
each CONFIG (tiny golden configs) and checks that

- every table row it prints holds finite numbers, and no measurement was skipped or failed;
- every decode row's bytes per token equals the count computed here from config.json alone,
  after transformers' Gemma4TextConfig (layer types, head dims, KV sharing, K=V, double-wide
  MLP, PLE, MoE), not from the C code: every per-layer matrix in bf16 (q, k, v on layers that
  write K/V, no v when K=V; o; gate, up, down; PLE gate and projection),
  per_layer_model_projection, the LM head, one embedding row and one PLE row, the fp32 router
  and top-k experts for MoE, and the K/V rows each layer reads (min(pos + 1, window) keys,
  4 bytes in fp32 and 2 in bf16) averaged over the timed positions;
- every prompt row's FLOPs per token equals the count computed here the same way.

  test_gpu_bench.py GPU_BENCH CONFIG [CONFIG ...]
"""
import json
import math
import os
import re
import subprocess
import sys
import tempfile

CONTEXTS = "12,40"    # past the golden configs' sliding window (8)
PROMPTS = "8,20"
BATCH = 16            # the prompt of 20 tokens takes two chunks


def layers(tc):
    """[(is_full, head_dim, n_kv_heads, intermediate, writes_kv, k_eq_v, window)] per layer."""
    L = tc["num_hidden_layers"]
    types = tc.get("layer_types") or ["full_attention" if (i + 1) % 6 == 0 else "sliding_attention"
                                      for i in range(L)]
    full = [t == "full_attention" for t in types]
    full[-1] = True
    plc = tc.get("per_layer_config")
    hd, nkv = tc["head_dim"], tc["num_key_value_heads"]
    ghd, gkv = tc.get("global_head_dim") or 512, tc.get("num_global_key_value_heads") or 0
    if plc is not None:  # replaces the global values; only the overrides apply
        ghd, gkv = hd, 0
    keqv = bool(tc.get("attention_k_eq_v"))
    shared = tc.get("num_kv_shared_layers") or 0
    out = []
    for i in range(L):
        d = ghd if full[i] else hd
        k = gkv if (full[i] and keqv and gkv > 0) else nkv
        over = (plc or {}).get(str(i), {})
        d, k = over.get("head_dim", d), over.get("num_key_value_heads", k)
        inter = tc["intermediate_size"] * (2 if tc.get("use_double_wide_mlp") and i >= L - shared else 1)
        out.append((full[i], d, k, inter, i < L - shared, keqv and full[i],
                    0 if full[i] else tc["sliding_window"]))
    return out


def matrix_elems(tc):
    """Per token: every per-layer matrix and per_layer_model_projection (elements)."""
    H, nh, P = tc["hidden_size"], tc["num_attention_heads"], tc.get("hidden_size_per_layer_input") or 0
    n = 0
    for full, hd, nkv, inter, writes, keqv, _ in layers(tc):
        q, k, v = nh * hd, nkv * hd if writes else 0, nkv * hd if writes and not keqv else 0
        n += (q + k + v) * H + H * nh * hd + 3 * inter * H + 2 * P * H
    return n + tc["num_hidden_layers"] * P * H


def moe_elems(tc):
    """Router (fp32) and top-k experts' elements per token, summed over layers."""
    if not tc.get("enable_moe_block"):
        return 0, 0
    L, H = tc["num_hidden_layers"], tc["hidden_size"]
    return L * tc["num_experts"] * H, L * tc["top_k_experts"] * 3 * tc["moe_intermediate_size"] * H


def keys(window, pos):
    return min(pos + 1, window) if window else pos + 1


def decode_bytes(tc, pos0, steps, kv_elem):
    H, V, L = tc["hidden_size"], tc["vocab_size"], tc["num_hidden_layers"]
    P = tc.get("hidden_size_per_layer_input") or 0
    router, experts = moe_elems(tc)
    w = 2 * matrix_elems(tc) + 2 * V * H + 2 * (H + L * P) + 4 * router + 2 * experts
    kv = 0
    for i in range(steps):
        for full, hd, nkv, _, _, _, win in layers(tc):
            kv += 2 * keys(win, pos0 + i) * nkv * hd * kv_elem
    return w + kv / steps


def prompt_flops(tc, n):
    H, V = tc["hidden_size"], tc["vocab_size"]
    router, experts = moe_elems(tc)
    f = 2 * (matrix_elems(tc) + router + experts)
    attn = sum(4 * tc["num_attention_heads"] * hd * sum(keys(win, t) for t in range(n))
               for _, hd, _, _, _, _, win in layers(tc))
    return f + attn / n + 2 * V * H / n


def close(a, b, rel=1e-9):
    return abs(a - b) <= rel * max(abs(a), abs(b))


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    exe, configs = sys.argv[1], sys.argv[2:]
    failures = 0

    def fail(msg):
        nonlocal failures
        failures += 1
        print("FAIL:", msg)

    for cfg_path in configs:
        cfg = json.load(open(cfg_path))
        tc = cfg.get("text_config", cfg)
        with tempfile.TemporaryDirectory() as tmp:
            js = os.path.join(tmp, "rows.json")
            cmd = [exe, "--models", cfg_path, "--quick", "--steps", "4", "--warmup", "1", "--contexts", CONTEXTS, "--prompts", PROMPTS,
                   "--batch", str(BATCH), "--bw-mib", "4", "--gemm-tokens", "16", "--json", js]
            print("$", " ".join(cmd), flush=True)
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               timeout=300)
            print(p.stdout)
            if p.returncode != 0:
                fail(f"{cfg_path}: exit status {p.returncode}")
                continue
            rows = [json.loads(line) for line in open(js)]
        # the printed table: every row of a test holds finite numbers
        table = [l for l in p.stdout.splitlines() if re.match(r"^(bf16|fp32) +(prompt|decode) ", l)]
        if len(table) != 2 * 4:
            fail(f"{cfg_path}: {len(table)} table rows, want 8 (2 precisions x 2 prompts + 2 contexts)")
        for line in table:
            nums = re.findall(r"[-+]?(?:\d+\.\d*|\d+|nan|inf)", line.split(None, 3)[3])
            if not nums or any(not math.isfinite(float(x)) for x in nums) or " yes " not in line + " ":
                fail(f"table row not finite or logits not finite: {line!r}")
        if re.search(r"\b(nan|inf|skipped|error)\b", p.stdout, re.I):
            fail(f"{cfg_path}: the output names nan/inf/skipped/error")
        dev = [r for r in rows if r["type"] == "device"]
        if len(dev) != 1 or not (dev[0]["bw"] > 0 and math.isfinite(dev[0]["bw"])):
            fail(f"{cfg_path}: device row {dev}")
        n_dec = n_pr = 0
        for r in rows:
            if r["type"] != "row":
                continue
            if "error" in r or "skipped" in r:
                fail(f"{cfg_path}: {r}")
                continue
            for k in ("tok_s", "ms", "limit_tok_s", "pct"):
                if not (math.isfinite(r[k]) and r[k] > 0):
                    fail(f"{cfg_path}: {r['prec']} {r['test']} {r['n']}: {k} = {r[k]}")
            if not r["finite"]:
                fail(f"{cfg_path}: {r['prec']} {r['test']} {r['n']}: non-finite logits")
            if r["test"] == "decode":
                want = decode_bytes(tc, r["pos0"], r["steps"], 2 if r["prec"] == "bf16" else 4)
                ok = close(r["bytes"], want)
                print(f"{cfg_path}: {r['prec']} decode ctx {r['n']}: {r['bytes']:.0f} bytes/token, "
                      f"independent count {want:.0f}: {'equal' if ok else 'DIFFERENT'}")
                if not ok:
                    fail(f"{cfg_path}: bytes per token {r['bytes']} != {want}")
                n_dec += 1
            elif r["test"] == "prompt":
                want = prompt_flops(tc, r["n"])
                ok = close(r["flops_per_token"], want)
                print(f"{cfg_path}: {r['prec']} prompt {r['n']}: {r['flops_per_token']:.0f} FLOP/token, "
                      f"independent count {want:.0f}: {'equal' if ok else 'DIFFERENT'}")
                if not ok:
                    fail(f"{cfg_path}: FLOPs per token {r['flops_per_token']} != {want}")
                n_pr += 1
        mem = [r for r in rows if r["type"] == "memory"]
        if n_dec != 4 or n_pr != 4 or len(mem) != 2 or any(not m["used"] > 0 for m in mem):
            fail(f"{cfg_path}: {n_dec} decode rows, {n_pr} prompt rows, memory {mem}")
    print("test_gpu_bench:", "PASS" if not failures else f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
