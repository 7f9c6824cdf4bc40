#!/usr/bin/env python3
"""Diagnostic: compares gemma4's intermediates (tests/real/dump_gemma4.c) with llama.cpp's
(tests/real/dump_llama.py), op by op in graph order: per tensor the RMS of the difference over
the RMS of llama.cpp's values and the largest |difference|.

  python3 compare_dumps.py GEMMA4.bin LLAMA.npz [KEY_SUBSTRING]
"""
import sys

import numpy as np


def read_g4(path):
    out = []
    with open(path, "rb") as f:
        while True:
            line = f.readline()
            if not line:
                break
            key, rows, cols = line.decode().split()
            a = np.frombuffer(f.read(int(rows) * int(cols) * 4), dtype=np.float32)
            out.append((key, a.reshape(int(rows), int(cols))))
    return out


def main():
    g4 = read_g4(sys.argv[1])
    ll = np.load(sys.argv[2])
    want = sys.argv[3] if len(sys.argv) > 3 else ""
    for key, a in g4:
        if want not in key:
            continue
        lk = key
        if lk not in ll:
            print("%-28s (not in llama.cpp's dump)" % key)
            continue
        b = ll[lk].reshape(-1, a.shape[1]) if a.size != 1 else ll[lk]
        if b.shape[0] < a.shape[0]:  # llama.cpp's last layer keeps only the output rows
            a = a[-b.shape[0]:]
        d = a - b
        rms = float(np.sqrt(np.mean(b.astype(np.float64) ** 2))) or 1.0
        rel = float(np.sqrt(np.mean(d.astype(np.float64) ** 2))) / rms
        rows = " ".join("%.1e" % (np.sqrt(np.mean(d[r] ** 2)) / rms) for r in range(min(8, d.shape[0])))
        print("%-28s rel_rms %.2e  max %.3e  per row: %s" % (key, rel, float(np.max(np.abs(d))), rows))


if __name__ == "__main__":
    main()
