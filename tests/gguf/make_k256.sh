#!/usr/bin/env bash
# Makes the K-quant fixture and its references (all committed; see tests/gguf/README.md):
#   tests/gguf/k256/                  tiny random Gemma 4 with 256-wide matrices (make_k256.py fixture)
#   tests/gguf/golden_k256.gguf       converted by llama.cpp's convert_hf_to_gguf.py (BF16)
#   tests/gguf/golden_k256_q8_0.gguf  quantized by llama.cpp's quantizer (tests/bench/quantize_gguf.py:
#   tests/gguf/golden_k256_q4_k_m.gguf  llama_model_quantize, as the llama-quantize tool)
#   tests/gguf/k256/reference_<q>.bin transformers on each file's dequantized weights (make_k256.py dequant)
#   tests/gguf/k256/llama_<q>.bin     llama.cpp's logits and greedy tokens on each file (make_k256.py llama)
# Usage: tests/gguf/make_k256.sh PYREF PYLLAMA
#   PYREF: torch, transformers 5.23, safetensors, numpy, gguf (e.g. /work/cache/venv-ref/bin/python)
#   PYLLAMA: llama-cpp-python 0.3.36 with its gguf-py (the python printed by scripts/llama_cpp_venv.sh)
# llama.cpp's sources (for the converter) are those scripts/llama_cpp_venv.sh extracted under
# ${G4_BENCH_DIR:-~/.cache/gemma4-bench}.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
pyref=${1:?usage: make_k256.sh PYREF PYLLAMA}
pyllama=${2:?usage: make_k256.sh PYREF PYLLAMA}
lcp=${G4_BENCH_DIR:-$HOME/.cache/gemma4-bench}/llama_cpp_python-0.3.36/vendor/llama.cpp
[ -f "$lcp/convert_hf_to_gguf.py" ] || { echo "no $lcp/convert_hf_to_gguf.py: run scripts/llama_cpp_venv.sh" >&2; exit 1; }
g=$root/tests/gguf
"$pyref" "$g/make_k256.py" fixture
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$pyref" "$lcp/convert_hf_to_gguf.py" "$g/k256" --outfile "$g/golden_k256.gguf" --outtype bf16 \
    >"$tmp/convert.log" 2>&1 || { cat "$tmp/convert.log" >&2; exit 1; }
for q in q8_0 q4_k_m; do
    "$pyllama" "$root/tests/bench/quantize_gguf.py" "$g/golden_k256.gguf" "$tmp/k256_$q.gguf" $q \
        >"$tmp/$q.log" 2>&1 || { cat "$tmp/$q.log" >&2; exit 1; }
    rm -f "$tmp/k256_$q.gguf.json"
    mv "$tmp/k256_$q.gguf" "$g/golden_k256_$q.gguf"
done
"$pyref" "$g/make_k256.py" dequant
"$pyllama" "$g/make_k256.py" llama
"$pyllama" - "$g" <<'PY'
import sys, gguf
for q in ("", "_q8_0", "_q4_k_m"):
    r = gguf.GGUFReader(f"{sys.argv[1]}/golden_k256{q}.gguf")
    print(f"golden_k256{q}.gguf:", ", ".join(f"{t.name} {t.tensor_type.name} {list(map(int, t.shape))}"
                                             for t in r.tensors))
PY
ls -l "$g"/golden_k256*.gguf "$g/k256"
