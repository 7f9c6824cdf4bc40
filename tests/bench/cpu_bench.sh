#!/usr/bin/env bash
# CPU benchmark: gemma4's CPU engine vs llama.cpp (llama-cpp-python 0.3.36, built from source for
# this CPU) on a random-weight model with Gemma 4 E2B's dimensions, bf16 weights in both.
# Prints one table (prompt tok/s at 128 and 1024 tokens, decode tok/s at context 128 and 2048,
# gemma4 in its default fp32 precision and with GEMMA4_PRECISION_BF16,
# the memory-bandwidth limit for decode and the share of it each engine reaches) and writes it
# to WORK/results/<date>/table.md. See docs/performance.md.
#
#   bash tests/bench/cpu_bench.sh [--threads N] [--layers N] [--work DIR] [--reps N]
#                                 [--n-decode N] [--llama-ubatch N] [--rounds N]
#
#   --threads N      threads for both engines and the bandwidth test (default: physical cores)
#   --layers N       N layers instead of E2B's 35 (same widths; see make_model.py), for quick runs
#   --work DIR       cache and results (default $G4_BENCH_DIR or ~/.cache/gemma4-bench): ~20 GB
#                    for the full model (safetensors + GGUF), plus the llama.cpp venv
#   --reps N         prompt runs per length, best kept (default 2)
#   --n-decode N     decode steps per context (default 32)
#   --llama-ubatch N llama.cpp's n_ubatch (default 512, llama.cpp's own default; n_batch is 2048)
#   --rounds N       N rounds of (gemma4 fp32, gemma4 bf16, llama.cpp, with a bandwidth check
#                    before and after each), one after the other; the table keeps each engine's
#                    best round and lists every round with its ratios (default 2: a shared VM's
#                    memory bandwidth drifts by 2x over minutes, and alternating rounds give
#                    each engine the same chance of a good one)
#
# Every stage is cached in WORK and skipped when its output exists: the sdist, a venv with
# llama-cpp-python (built with -DGGML_NATIVE=ON, ~10+ min on 2 cores) and the converter's gguf-py,
# Gemma 4's tokenizer.json (tests/tokenizer/real_vocab.sh), the checkpoint (make_model.py), its
# GGUF (llama.cpp's convert_hf_to_gguf.py --outtype bf16). gemma4 is rebuilt (incrementally) on
# every run, in WORK/build. The engines run one after the other, never loaded together.
# Needs python3 (with venv), cmake, a C compiler, PyPI and download.pytorch.org (torch, numpy,
# transformers, safetensors, sentencepiece go into the venv: the converter's imports), (the sdist unless G4_LCP_SDIST names a local copy, and llama-cpp-python's
# build dependencies) and ~20 GB of disk.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
lcp_ver=0.3.36
threads=""
layers=35
work=${G4_BENCH_DIR:-$HOME/.cache/gemma4-bench}
reps=2
n_decode=32
ubatch=512
rounds=2
cmd="bash tests/bench/cpu_bench.sh $*"
while [ $# -gt 0 ]; do
    case "$1" in
    --threads) threads=$2; shift 2 ;;
    --layers) layers=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --n-decode) n_decode=$2; shift 2 ;;
    --llama-ubatch) ubatch=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    *) echo "cpu_bench.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -n "$threads" ] || threads=$(lscpu -p=CORE,SOCKET | grep -v '^#' | sort -u | wc -l)
mkdir -p "$work"
work=$(cd "$work" && pwd)
run="$work/results/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$run"
timings="$run/stages.txt"

stage() { # stage NAME COMMAND...: runs and times one stage, logging to RUN/NAME.log
    local name=$1 t0=$SECONDS
    shift
    echo "== $name" >&2
    # not `if ! "$@"`: bash ignores set -e inside a function called from a condition
    set +e
    (set -e; "$@") >"$run/$name.log" 2>&1
    local rc=$?
    set -e
    if [ $rc -ne 0 ]; then
        echo "cpu_bench.sh: stage $name failed ($rc); last lines of $run/$name.log:" >&2
        tail -20 "$run/$name.log" >&2
        exit 1
    fi
    echo "$name $((SECONDS - t0)) s" | tee -a "$timings" >&2
}

# --- llama.cpp: sdist, venv with llama-cpp-python and the converter's gguf-py ------------------
sdist="$work/llama_cpp_python-$lcp_ver.tar.gz"
src="$work/llama_cpp_python-$lcp_ver"
venv="$work/venv"
get_sdist() {
    if [ -f "${G4_LCP_SDIST:-}" ]; then # a copy already on this machine
        cp "$G4_LCP_SDIST" "$sdist.part"
    else
        python3 -m pip download --no-deps --no-binary :all: "llama-cpp-python==$lcp_ver" -d "$work/dl"
        mv "$work/dl/llama_cpp_python-$lcp_ver.tar.gz" "$sdist.part"
    fi
    mv "$sdist.part" "$sdist"
}
[ -f "$sdist" ] || stage sdist get_sdist
[ -f "$src/vendor/llama.cpp/convert_hf_to_gguf.py" ] || stage extract tar -xzf "$sdist" -C "$work"

venv_has() { # venv_has MODULE CONDITION: the venv imports MODULE and CONDITION holds
    [ -x "$venv/bin/python" ] &&
        "$venv/bin/python" -c "import sys, $1; sys.exit(0 if $2 else 1)" 2>/dev/null
}
build_llama_cpp() {
    [ -x "$venv/bin/python" ] || python3 -m venv --system-site-packages "$venv"
    # native build for this CPU, CPU backend only, no tools or multimodal library
    CMAKE_ARGS="-DGGML_NATIVE=ON -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF -DGGML_BLAS=OFF \
-DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF \
-DLLAMA_BUILD_SERVER=OFF" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
        "$venv/bin/pip" install --no-cache-dir "$sdist"
}
# the converter needs the gguf-py of the same llama.cpp (PyPI's gguf may not know Gemma 4)
install_gguf_py() { "$venv/bin/pip" install --no-cache-dir "$src/vendor/llama.cpp/gguf-py"; }
venv_has llama_cpp "llama_cpp.__version__ == '$lcp_ver'" || stage llama_cpp_build build_llama_cpp
venv_has gguf "gguf.__file__.startswith('$venv')" || stage gguf_py install_gguf_py
# the converter's and make_model.py's own imports, into the same venv (CPU-only torch wheel)
install_py_deps() {
    venv_has torch True || "$venv/bin/pip" install --no-cache-dir \
        --index-url https://download.pytorch.org/whl/cpu torch
    "$venv/bin/pip" install --no-cache-dir numpy transformers safetensors sentencepiece
}
venv_has "torch, numpy, transformers, safetensors, sentencepiece" True || stage py_deps install_py_deps
py="$venv/bin/python"

# --- tokenizer, checkpoint, GGUF --------------------------------------------------------------
tok="$work/tokenizer"
make_tokenizer() {
    mkdir -p "$tok"
    ln -sf "$sdist" "$tok/llama_cpp_python-$lcp_ver.tar.gz" # real_vocab.sh reuses it
    bash "$root/tests/tokenizer/real_vocab.sh" "$tok" 20
}
[ -f "$tok/tokenizer.json" ] || stage tokenizer make_tokenizer

model="$work/e2b-L$layers"
gguf="$model/model-bf16.gguf"
if ! python3 -c "import json, sys; sys.exit(json.load(open(sys.argv[1])).get('version') != 2)" \
    "$model/bench_meta.json" 2>/dev/null; then
    rm -f "$gguf"
    stage make_model "$py" "$here/make_model.py" "$root/tests/configs/e2b.json" "$tok" "$model" \
        --layers "$layers"
fi
convert() {
    "$venv/bin/python" "$src/vendor/llama.cpp/convert_hf_to_gguf.py" "$model" --outtype bf16 \
        --outfile "$gguf.part"
    mv "$gguf.part" "$gguf"
}
[ -f "$gguf" ] || stage convert convert

# --- gemma4 and the bandwidth test, built out of the source tree -------------------------------
build_gemma4() {
    # a build directory configured from another checkout cannot be reused
    if [ -f "$work/build/CMakeCache.txt" ] &&
        ! grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$root" "$work/build/CMakeCache.txt"; then
        rm -rf "$work/build"
    fi
    cmake -S "$root" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DGEMMA4_BUILD_TESTS=OFF \
        -DGEMMA4_BUILD_SAMPLES=OFF -DGEMMA4_CUDA=OFF -DGEMMA4_BUILD_BENCH=ON
    cmake --build "$work/build" --target bench_gemma4 membw -j "$(nproc)"
}
stage build_gemma4 build_gemma4

# Same pseudo-random prompt ids for both engines (ordinary vocabulary ids, no special tokens).
ids="$work/ids.txt"
[ -f "$ids" ] || "$py" -c "
import numpy as np
print(' '.join(map(str, np.random.default_rng(42).integers(256, 262144, 4096))))" >"$ids"

# --- measurements -----------------------------------------------------------------------------
common=(--ids "$ids" --threads "$threads" --prompts 128,1024 --ctx 128,2048 --n-decode "$n_decode"
        --reps "$reps")
# Each round appends its JSON lines, tagged with the round; report.py keeps each engine's best
# round and also prints every round with the ratios within it. The engine-free bandwidth check
# runs before and after each engine (4 times a round), so a change of machine speed during the
# run shows next to the engine it hit.
tag() { sed "s/^{/{\"round\":$1,\"seq\":$2,/"; }
run_membw() { "$work/build/tests/bench/membw" --threads "$threads" --reps 3 | tag "$1" "$2" >>"$run/membw.json"; }
# run_gemma4 NAME PRECISION -> RUN/NAME.jsonl, RUN/NAME_logits.bin. Precision bf16:
# GEMMA4_PRECISION_BF16, bf16 activations in the matrix products (llama.cpp's numerics).
run_gemma4() { # run_gemma4 ROUND NAME PRECISION
    "$work/build/tests/bench/bench_gemma4" "$model" "${common[@]}" --precision "$3" \
        --dump-logits "$run/$2_logits.bin" | tag "$1" 0 >>"$run/$2.jsonl"
}
run_llama_cpp() { # run_llama_cpp ROUND
    "$py" "$here/bench_llama.py" "$gguf" "${common[@]}" --n-batch 2048 \
        --n-ubatch "$ubatch" --dump-logits "$run/llama_logits.bin" | tag "$1" 0 >>"$run/llama.jsonl"
}
for r in $(seq 1 "$rounds"); do
    stage "membw_r${r}_0" run_membw "$r" 0
    stage "gemma4_r$r" run_gemma4 "$r" gemma4 fp32
    stage "membw_r${r}_1" run_membw "$r" 1
    stage "gemma4_bf16_r$r" run_gemma4 "$r" gemma4_bf16 bf16
    stage "membw_r${r}_2" run_membw "$r" 2
    stage "llama_cpp_r$r" run_llama_cpp "$r"
    stage "membw_r${r}_3" run_membw "$r" 3
done

"$py" "$here/report.py" "$run" "$model" "$cmd"
{ echo; echo "stage wall times (this run):"; sed 's/^/- /' "$timings"; } | tee -a "$run/table.md"
cp "$run/table.md" "$work/results/latest.md"
echo "results in $run (table.md, *.jsonl, *.log)"
