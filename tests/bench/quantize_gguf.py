#!/usr/bin/env python3
"""quantize_gguf.py IN.gguf OUT.gguf q8_0|q4_k_m: quantizes a GGUF with llama.cpp's own quantizer
(llama_model_quantize through llama-cpp-python's C API, the llama-quantize tool's code path:
Q8_0 everywhere, or Q4_K_M's mix of Q4_K / Q6_K / Q5_0 / Q8_0 by tensor role and width), then
writes OUT.gguf.json: the tensor types and the bytes one decode step reads (every tensor but the
per-layer embedding table, of which one row per token is read; the tied LM head reads all of
token_embd), for tests/bench/report.py's bandwidth limit."""
import ctypes
import json
import os
import sys

import llama_cpp as L


def main():
    src, dst, kind = sys.argv[1], sys.argv[2], sys.argv[3]
    ftype = {"q8_0": L.LLAMA_FTYPE_MOSTLY_Q8_0, "q4_k_m": L.LLAMA_FTYPE_MOSTLY_Q4_K_M}[kind]
    p = L.llama_model_quantize_default_params()
    p.ftype = ftype
    p.nthread = os.cpu_count()
    rc = L.llama_model_quantize(src.encode(), (dst + ".part").encode(), ctypes.byref(p))
    if rc != 0:
        sys.exit(f"quantize_gguf: llama_model_quantize returned {rc}")
    from gguf import GGUFReader
    r = GGUFReader(dst + ".part")
    types, total, ple, ple_row = {}, 0, 0, 0
    for t in r.tensors:
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
        total += int(t.n_bytes)
        if t.name == "per_layer_token_embd.weight":
            ple = int(t.n_bytes)
            ple_row = ple // int(t.shape[-1])
    meta = {"type": kind, "tensor_types": types, "file_bytes": os.path.getsize(dst + ".part"),
            "tensor_bytes": total, "decode_bytes_per_token": total - ple + ple_row}
    os.replace(dst + ".part", dst)
    with open(dst + ".json", "w") as f:
        json.dump(meta, f, indent=1)
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
