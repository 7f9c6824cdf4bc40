#!/usr/bin/env python3
"""Writes tests/gguf/writer_all_types.gguf with the `gguf` Python package (llama.cpp's own writer),
so tests/test_gguf.c checks the parser on bytes it did not build itself. Deterministic: the values
below are the ones test_gguf.c expects. The file is committed; rerun after changing this script:
    /work/cache/venv-ref/bin/python tests/gguf/make_fixtures.py   (any venv with gguf, numpy)
"""
import os

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q, GGUFValueType as V

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "writer_all_types.gguf")

w = gguf.GGUFWriter(out, arch="test")  # writes general.architecture = "test"
# One scalar of every value type.
w.add_uint8("t.u8", 200)
w.add_int8("t.i8", -100)
w.add_uint16("t.u16", 60000)
w.add_int16("t.i16", -30000)
w.add_uint32("t.u32", 4000000000)
w.add_int32("t.i32", -2000000000)
w.add_float32("t.f32", 1.5)
w.add_bool("t.bool", True)
w.add_string("t.str", "h\u00e9llo")
w.add_uint64("t.u64", 2**40 + 1)
w.add_int64("t.i64", -(2**40))
w.add_float64("t.f64", 0.1)
# Arrays: numeric, bool, strings (with an empty one and a multi-byte one).
w.add_key_value("t.arr_i32", [1, -2, 3], V.ARRAY, sub_type=V.INT32)
w.add_key_value("t.arr_u8", [7, 255], V.ARRAY, sub_type=V.UINT8)
w.add_key_value("t.arr_f32", [0.5, -2.0], V.ARRAY, sub_type=V.FLOAT32)
w.add_key_value("t.arr_bool", [True, False, True], V.ARRAY, sub_type=V.BOOL)
w.add_key_value("t.arr_str", ["a", "", "\u00fcber"], V.ARRAY, sub_type=V.STRING)

rng = np.random.default_rng(15)
# Float tensors: numpy shape (rows, cols) -> GGUF ne = [cols, rows].
w.add_tensor("f32", np.arange(6, dtype=np.float32).reshape(3, 2))
w.add_tensor("f16", np.array([1, 2, 3, 4], dtype=np.float16))
bf16 = np.array([0x3F80, 0x4000, 0xC040, 0x4080], dtype=np.uint16)  # 1, 2, -3, 4
w.add_tensor("bf16", bf16.view(np.uint8).reshape(2, 4), raw_dtype=Q.BF16)
# Block types quantized by the package (byte-identical to ggml for these three).
x = rng.standard_normal((2, 64)).astype(np.float32)
# Each with <name>.expected: the package's dequantization (equal to ggml's) as F32.
for name, qt in (("q8_0", Q.Q8_0), ("q4_0", Q.Q4_0), ("q5_0", Q.Q5_0)):
    q = gguf.quants.quantize(x, qt)
    w.add_tensor(name, q, raw_dtype=qt)
    w.add_tensor(name + ".expected", gguf.quants.dequantize(q, qt).astype(np.float32))
# K-quants: the package cannot quantize them; random blocks of the right size, 2 rows of 256,
# with the fp16 scales (d, dmin) set to small finite values.
for name, qt in (("q4_k", Q.Q4_K), ("q5_k", Q.Q5_K), ("q6_k", Q.Q6_K)):
    bs, ts = gguf.GGML_QUANT_SIZES[qt]
    q = rng.integers(0, 256, (2, 256 // bs * ts), dtype=np.uint8)
    d = rng.uniform(-0.1, 0.1, (2, 2)).astype(np.float16).view(np.uint8).reshape(2, 4)
    if qt == Q.Q6_K:
        q[:, ts - 2:] = d[:, :2]  # d is the block's last field
    else:
        q[:, :4] = d  # d, dmin first
    w.add_tensor(name, q, raw_dtype=qt)
    w.add_tensor(name + ".expected", gguf.quants.dequantize(q, qt).astype(np.float32))
# A 3-D and a 4-D tensor.
w.add_tensor("f32_3d", np.zeros((2, 3, 4), dtype=np.float32))
w.add_tensor("f32_4d", np.ones((1, 2, 1, 3), dtype=np.float32))

w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
print(out, os.path.getsize(out), "bytes")

# golden_e2b_q.gguf: golden_e2b.gguf (llama.cpp's converter output, F32) with its matrices
# quantized by the package (byte-identical to ggml for these types): attention and PLE
# projections Q8_0, MLP Q4_0, embeddings Q5_0; rows not a whole number of 32-element blocks
# (blk.N.proj: 8 wide) and vectors stay F32. test_gguf.c runs it against its own dequantization.
src = gguf.GGUFReader(os.path.join(here, "golden_e2b.gguf"))
out_q = os.path.join(here, "golden_e2b_q.gguf")
w = gguf.GGUFWriter(out_q, arch="gemma4")
for name, field in src.fields.items():
    if name.startswith("GGUF.") or name == "general.architecture":
        continue
    vtype = field.types[0]
    sub = field.types[-1] if vtype == V.ARRAY else None
    w.add_key_value(name, field.contents(), vtype, sub_type=sub)


def qtype(name):
    if name.endswith(("ffn_gate.weight", "ffn_up.weight", "ffn_down.weight")):
        return Q.Q4_0
    if name in ("token_embd.weight", "per_layer_token_embd.weight"):
        return Q.Q5_0
    return Q.Q8_0


for t in src.tensors:
    data = np.array(t.data)
    if data.ndim == 2 and data.shape[1] % 32 == 0 and t.tensor_type == Q.F32:
        qt = qtype(t.name)
        w.add_tensor(t.name, gguf.quants.quantize(data, qt), raw_dtype=qt)
    else:
        w.add_tensor(t.name, data)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
print(out_q, os.path.getsize(out_q), "bytes")
