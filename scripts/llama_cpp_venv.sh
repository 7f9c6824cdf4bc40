#!/usr/bin/env bash
# Builds llama.cpp as llama-cpp-python 0.3.36 ships it, from the PyPI sdist, into a cached venv:
# the reference engine of the benchmark (tests/bench/cpu_bench.sh) and of the real-model
# references (tests/real/make_references.py). Every stage is skipped when its output exists:
#   WORK/llama_cpp_python-0.3.36.tar.gz   the sdist (G4_LCP_SDIST may name a local copy)
#   WORK/llama_cpp_python-0.3.36/         extracted: vendor/llama.cpp holds convert_hf_to_gguf.py
#                                         and gguf-py
#   WORK/venv                             llama_cpp (built with -DGGML_NATIVE=ON for this CPU, CPU
#                                         backend only: ~20-30 min on 2 cores), the same llama.cpp's
#                                         gguf-py (PyPI's gguf may not know Gemma 4) and, with
#                                         --torch, torch + transformers + safetensors for the converter
# Usage: llama_cpp_venv.sh [--torch] [WORK]   (WORK: $G4_BENCH_DIR or ~/.cache/gemma4-bench)
# Prints nothing on stdout but, last, the venv's python.
set -euo pipefail
torch=0
if [ "${1:-}" = --torch ]; then torch=1; shift; fi
work=${1:-${G4_BENCH_DIR:-$HOME/.cache/gemma4-bench}}
lcp_ver=0.3.36
mkdir -p "$work"
work=$(cd "$work" && pwd)
sdist="$work/llama_cpp_python-$lcp_ver.tar.gz"
src="$work/llama_cpp_python-$lcp_ver"
venv="$work/venv"

if [ ! -f "$sdist" ]; then
    echo "== llama.cpp: sdist" >&2
    if [ -f "${G4_LCP_SDIST:-}" ]; then # a copy already on this machine
        cp "$G4_LCP_SDIST" "$sdist.part"
    else
        python3 -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$lcp_ver" \
            -d "$work/dl" >&2
        mv "$work/dl/llama_cpp_python-$lcp_ver.tar.gz" "$sdist.part"
    fi
    mv "$sdist.part" "$sdist"
fi
if [ ! -f "$src/vendor/llama.cpp/convert_hf_to_gguf.py" ]; then
    echo "== llama.cpp: extract" >&2
    tar -xzf "$sdist" -C "$work"
fi

venv_has() { # venv_has MODULE CONDITION: the venv imports MODULE and CONDITION holds
    [ -x "$venv/bin/python" ] &&
        "$venv/bin/python" -c "import sys, $1; sys.exit(0 if $2 else 1)" 2>/dev/null
}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
# Native build for this CPU, CPU backend only, no tools or multimodal library. Without AMX:
# ggml's AMX int8 kernels (ggml_backend_amx_mul_mat) crash with SIGSEGV on this project's VMs
# (Sapphire Rapids guests) on the first quantized matrix product; -mno-amx-* wins over
# -march=native in GCC whatever the order, and the AVX-512 (VNNI, BF16) kernels and the weight
# repacking stay as on any CPU without AMX.
no_amx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
cmake_args="-DGGML_NATIVE=ON -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF -DGGML_BLAS=OFF \
-DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF \
-DLLAMA_BUILD_SERVER=OFF -DCMAKE_C_FLAGS='$no_amx' -DCMAKE_CXX_FLAGS='$no_amx'"
stamp="$venv/llama_cpp_build_args.txt"
if ! venv_has llama_cpp "llama_cpp.__version__ == '$lcp_ver'" ||
    [ "$(cat "$stamp" 2>/dev/null)" != "$cmake_args" ]; then
    echo "== llama.cpp: build llama-cpp-python $lcp_ver (native, CPU only; 10-30 min on 2 cores)" >&2
    # its Python dependencies first, then the build alone (--no-deps: nothing else rebuilt)
    "$venv/bin/pip" install --quiet numpy typing-extensions diskcache jinja2 >&2
    CMAKE_ARGS="$cmake_args" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
        "$venv/bin/pip" install --quiet --no-cache-dir --force-reinstall --no-deps "$sdist" >&2
    echo "$cmake_args" >"$stamp"
fi
if ! venv_has gguf "gguf.__file__.startswith('$venv')"; then
    echo "== llama.cpp: gguf-py" >&2
    "$venv/bin/pip" install --quiet --no-cache-dir "$src/vendor/llama.cpp/gguf-py" >&2
fi
if [ $torch = 1 ] && ! venv_has "torch, transformers, safetensors, numpy" True; then
    echo "== llama.cpp: torch, transformers, safetensors for convert_hf_to_gguf.py" >&2
    "$venv/bin/pip" install --quiet torch transformers safetensors numpy sentencepiece >&2
fi
echo "$venv/bin/python"
