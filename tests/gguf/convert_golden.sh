#!/usr/bin/env bash
# Converts golden fixtures (tests/golden/) to GGUF with llama.cpp's own converter
# (convert_hf_to_gguf.py of llama-cpp-python 0.3.36's vendored llama.cpp) into
# tests/gguf/golden_<fixture>.gguf, which are committed: tests/test_gguf.c checks that each loads
# to the same config and the same weights as its safetensors directory.
#   e2b       -> F32  (gemma4: PLE, KV sharing, double-wide MLP, proportional RoPE)
#   moe       -> BF16 (gemma4: MoE, attention_k_eq_v, per-layer KV heads)
#   dense31b  -> F16  (gemma4: attention_k_eq_v, no PLE)
#   gemma3    -> F32  (gemma3: norms stored as w + 1, linear RoPE factor 8 on full layers)
# The converter needs a vocabulary: tests/golden/tokenizer_small's tokenizer.json for the gemma4
# fixtures (its 512 tokens = their vocab_size), and for gemma3 (whose converter wants
# SentencePiece) a 300-piece BPE tokenizer.model trained here (padded to 512 by the converter).
# Usage: tests/gguf/convert_golden.sh PYTHON [LLAMA_CPP_DIR]
#   PYTHON: an interpreter with torch, transformers, safetensors, numpy, sentencepiece
#           (e.g. /work/cache/venv-ref/bin/python)
#   LLAMA_CPP_DIR: .../llama_cpp_python-0.3.36/vendor/llama.cpp; default: the sdist is
#           downloaded and extracted under ${G4_BENCH_DIR:-~/.cache/gemma4-bench} (as
#           scripts/llama_cpp_venv.sh does; nothing is built)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
py=${1:?usage: convert_golden.sh PYTHON [LLAMA_CPP_DIR]}
lcp=${2:-}
if [ -z "$lcp" ]; then
    work=${G4_BENCH_DIR:-$HOME/.cache/gemma4-bench}
    mkdir -p "$work"
    sdist="$work/llama_cpp_python-0.3.36.tar.gz"
    if [ ! -f "$sdist" ]; then
        "$py" -m pip download --quiet --no-deps --no-binary :all: llama-cpp-python==0.3.36 -d "$work/dl"
        mv "$work/dl/llama_cpp_python-0.3.36.tar.gz" "$sdist"
    fi
    [ -f "$work/llama_cpp_python-0.3.36/vendor/llama.cpp/convert_hf_to_gguf.py" ] ||
        tar -xzf "$sdist" -C "$work"
    lcp="$work/llama_cpp_python-0.3.36/vendor/llama.cpp"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

convert() { # convert FIXTURE OUTTYPE
    mkdir -p "$tmp/$1"
    cp -r "$root/tests/golden/$1/." "$tmp/$1/"
    "$py" "$lcp/convert_hf_to_gguf.py" "$tmp/$1" --outfile "$root/tests/gguf/golden_$1.gguf" \
        --outtype "$2" >"$tmp/$1.log" 2>&1 || { cat "$tmp/$1.log" >&2; exit 1; }
    echo "tests/gguf/golden_$1.gguf: $(stat -c %s "$root/tests/gguf/golden_$1.gguf") bytes"
}
for f in e2b moe dense31b; do
    mkdir -p "$tmp/$f"
    cp "$root/tests/golden/tokenizer_small/tokenizer.json" "$tmp/$f/"
done
convert e2b f32
convert moe bf16
convert dense31b f16

mkdir -p "$tmp/gemma3"
"$py" - "$tmp" <<'PY'
import random, sys
import sentencepiece as spm
tmp = sys.argv[1]
random.seed(0)
words = "the cat sat on mat gemma model token quick brown fox jumps over lazy dog hello world".split()
with open(f"{tmp}/spm.txt", "w") as f:
    for _ in range(3000):
        f.write(" ".join(random.choice(words) + random.choice(["", "s", "ed", "ing"])
                         for _ in range(12)) + "\n")
spm.SentencePieceTrainer.train(input=f"{tmp}/spm.txt", model_prefix=f"{tmp}/gemma3/tokenizer",
                               vocab_size=300, model_type="bpe", byte_fallback=True, bos_id=2,
                               eos_id=1, pad_id=0, unk_id=3, num_threads=1, minloglevel=2,
                               hard_vocab_limit=False)
PY
convert gemma3 f32
