#!/usr/bin/env python3
"""Writes tests/quant/dequant.bin: random ggml blocks of every type the engine reads and their
values as the `gguf` package's dequantizers (gguf.quants, equal to ggml's dequantize_row_*) give
them, plus F16/BF16 bit patterns and fp32 -> fp16 roundings by numpy. tests/test_quant.c checks
g4_to_f32 and g4_f32_to_f16 against it bit for bit.

Run with a Python that has gguf and numpy (e.g. /work/cache/venv-ref/bin/python); the output is
committed, so CI needs neither. Deterministic (fixed seed).

Format (little-endian): b"G4QF", u32 version (1), u32 record count, then per record:
char name[8] (NUL-padded: "Q4_K", "F16", ..., or "TOF16" for fp32 -> fp16), u32 element count,
u32 input bytes, u32 output bytes, the input, the output (fp32 values; u16 bits for TOF16).
"""
import struct
import sys
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGML_QUANT_SIZES
from gguf.quants import dequantize

rng = np.random.default_rng(20261203)


def f16_scales(n):
    """Block scales: mostly small normal values as in real checkpoints, some zero, negative,
    subnormal and large ones."""
    d = (rng.standard_normal(n) * 1e-2).astype(np.float16)
    special = np.array([0.0, -0.0, 6e-8, -3e-6, 6.1e-5, 1.5, -2.0, 1000.0], dtype=np.float16)
    pick = rng.random(n) < 0.25
    d[pick] = special[rng.integers(0, len(special), pick.sum())]
    return d.view(np.uint8).reshape(n, 2)


def quant_record(qtype, n_blocks):
    block, nbytes = GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(n_blocks, nbytes), dtype=np.uint8)
    # the f16 fields: d (all), dmin (Q4_K, Q5_K); Q6_K keeps d last
    if qtype in (T.Q4_0, T.Q5_0, T.Q8_0, T.Q4_K, T.Q5_K):
        raw[:, 0:2] = f16_scales(n_blocks)
    if qtype in (T.Q4_K, T.Q5_K):
        raw[:, 2:4] = f16_scales(n_blocks)
    if qtype == T.Q6_K:
        raw[:, 208:210] = f16_scales(n_blocks)
    values = dequantize(raw.reshape(1, -1), qtype).astype(np.float32).reshape(-1)
    assert values.size == n_blocks * block
    return qtype.name, values.size, raw.tobytes(), values.tobytes()


def f16_record():
    bits = rng.integers(0, 1 << 16, size=1024, dtype=np.uint16)
    specials = [0x0000, 0x8000, 0x0001, 0x03FF, 0x0400, 0x7BFF, 0x7C00, 0xFC00, 0x7E00, 0x7C01,
                0xFE01, 0x3C00, 0xBC00, 0x8001, 0x83FF]
    bits = np.concatenate([np.array(specials, dtype=np.uint16), bits])
    values = bits.view(np.float16).astype(np.float32)
    return "F16", bits.size, bits.tobytes(), values.tobytes()


def bf16_record():
    bits = rng.integers(0, 1 << 16, size=1024, dtype=np.uint16)
    bits = np.concatenate([np.array([0, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0x0001], np.uint16), bits])
    values = (bits.astype(np.uint32) << 16).view(np.float32)
    return "BF16", bits.size, bits.tobytes(), values.tobytes()


def tof16_record():
    """fp32 -> fp16 round to nearest even (numpy's astype): normal, subnormal, ties, overflow."""
    x = np.concatenate([
        rng.standard_normal(512).astype(np.float32) * np.float32(10.0) ** rng.integers(-9, 5, 512),
        np.float32(2.0) ** rng.integers(-26, -13, 128).astype(np.float32) * rng.random(128, np.float32),
        np.array([0.0, -0.0, 65504.0, 65519.99, 65520.0, -65520.0, 1e9, np.inf, -np.inf,
                  2.0 ** -24, 2.0 ** -25, 2.0 ** -25 * 1.0000001, 2.0 ** -26, 2.0 ** -14,
                  2.0 ** -14 * (1 - 2.0 ** -12), 1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11],
                 dtype=np.float32),
    ]).astype(np.float32)
    # exact ties between two f16 values: k + 0.5 ulp
    h = rng.integers(0, 0x7BFF, 64, dtype=np.uint16).view(np.float16).astype(np.float64)
    nxt = np.nextafter(h.astype(np.float16), np.float16(np.inf)).astype(np.float64)
    x = np.concatenate([x, ((h + nxt) / 2).astype(np.float32)])
    bits = x.astype(np.float16).view(np.uint16)
    return "TOF16", x.size, x.tobytes(), bits.tobytes()


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("dequant.bin")
    records = [quant_record(T.Q4_0, 13), quant_record(T.Q5_0, 13), quant_record(T.Q8_0, 13),
               quant_record(T.Q4_K, 5), quant_record(T.Q5_K, 5), quant_record(T.Q6_K, 5),
               f16_record(), bf16_record(), tof16_record()]
    with open(out, "wb") as f:
        f.write(b"G4QF" + struct.pack("<II", 1, len(records)))
        for name, n, inp, outp in records:
            f.write(name.encode().ljust(8, b"\0") + struct.pack("<III", n, len(inp), len(outp)))
            f.write(inp + outp)
    print(f"wrote {out} ({out.stat().st_size} bytes, {len(records)} records)")


if __name__ == "__main__":
    main()
