#!/usr/bin/env bash
# CPU benchmark: gemma4's CPU engine vs llama.cpp (llama-cpp-python 0.3.36, built from source for
# this CPU) on a random-weight model with Gemma 4 E2B's dimensions, bf16 weights in both, or
# (--type) the same model quantized by llama.cpp to Q8_0 or Q4_K_M, one GGUF file for both.
# Prints one table (prompt tok/s at 128 and 1024 tokens, decode tok/s at context 128 and 2048,
# gemma4 in its default fp32 precision and with GEMMA4_PRECISION_BF16,
# the memory-bandwidth limit for decode and the share of it each engine reaches) and writes it
# to WORK/results/<date>/table.md. See docs/performance.md.
#
#   bash tests/bench/cpu_bench.sh [--threads N] [--layers N] [--work DIR] [--reps N]
#                                 [--n-decode N] [--llama-ubatch N] [--rounds N]
#                                 [--type bf16|q8_0|q4_k_m]
#
#   --threads N      threads for both engines and the bandwidth test (default: physical cores)
#   --layers N       N layers instead of E2B's 35 (same widths; see make_model.py), for quick runs
#   --work DIR       cache and results (default $G4_BENCH_DIR or ~/.cache/gemma4-bench): ~20 GB
#                    for the full model (safetensors + GGUF), plus the llama.cpp venv
#   --reps N         prompt runs per length, best kept (default 2)
#   --n-decode N     decode steps per context (default 32)
#   --llama-ubatch N llama.cpp's n_ubatch (default 512, llama.cpp's own default; n_batch is 2048)
#   --type T         weights: bf16 (default: the bf16 GGUF for llama.cpp, the safetensors
#                    directory for gemma4), or q8_0 / q4_k_m: that GGUF quantized by llama.cpp's
#                    llama_model_quantize (quantize_gguf.py), the same file for both engines;
#                    gemma4's "fp32" column is then its exact path, "bf16" its fast path
#                    (llama.cpp's numerics: 8-bit activations, integer dot products)
#   --rounds N       N rounds of (gemma4 fp32, gemma4 bf16, llama.cpp, with a bandwidth check
#                    before and after each), one after the other; the table keeps each engine's
#                    best round and lists every round with its ratios (default 2: a shared VM's
#                    memory bandwidth drifts by 2x over minutes, and alternating rounds give
#                    each engine the same chance of a good one)
#
# Every stage is cached in WORK and skipped when its output exists: the sdist and a venv with
# llama-cpp-python (built with -DGGML_NATIVE=ON and without AMX, ~10-30 min on 2 cores), the
# converter's gguf-py and torch, transformers, safetensors, sentencepiece (all by
# scripts/llama_cpp_venv.sh), Gemma 4's tokenizer.json (tests/tokenizer/real_vocab.sh), the
# checkpoint (make_model.py), its GGUF (llama.cpp's convert_hf_to_gguf.py --outtype bf16) and
# its quantized GGUF (quantize_gguf.py). gemma4 is rebuilt (incrementally) on every run, in
# WORK/build. The engines run one after the other, never loaded together.
# Needs python3 (with venv), cmake, a C compiler, PyPI (the sdist unless G4_LCP_SDIST names a
# local copy, llama-cpp-python's build dependencies, torch) and ~20 GB of disk (+8 GB for the
# quantized files of the full model).
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
wtype=bf16
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
    --type) wtype=$2; shift 2 ;;
    -h|--help) sed -n '2,42p' "$0"; exit 0 ;;
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
# scripts/llama_cpp_venv.sh does it (shared with tests/real/make_references.py): the sdist, a
# native CPU build without AMX (its int8 tiles crash on this project's VMs on the first quantized
# product), the same llama.cpp's gguf-py, and torch + transformers + safetensors for the converter.
sdist="$work/llama_cpp_python-$lcp_ver.tar.gz"
src="$work/llama_cpp_python-$lcp_ver"
venv="$work/venv"
py="$venv/bin/python"
venv_ok() {
    [ -x "$py" ] && [ "$(cat "$venv/llama_cpp_build_args.txt" 2>/dev/null)" != "" ] &&
        "$py" -c "import llama_cpp, gguf, torch, transformers, safetensors, numpy, sentencepiece" 2>/dev/null
}
venv_ok || stage llama_cpp_venv bash "$root/scripts/llama_cpp_venv.sh" --torch "$work"

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
# the quantized GGUF (llama.cpp's quantizer) and the bytes one decode step reads from it
g4_model="$model"
case "$wtype" in
bf16) ;;
q8_0|q4_k_m)
    qgguf="$model/model-$wtype.gguf"
    [ -f "$qgguf" ] || stage "quantize_$wtype" "$py" "$here/quantize_gguf.py" "$gguf" "$qgguf" "$wtype"
    gguf="$qgguf"
    g4_model="$qgguf"
    ;;
*) echo "cpu_bench.sh: --type $wtype: bf16, q8_0 or q4_k_m" >&2; exit 2 ;;
esac

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
    "$work/build/tests/bench/bench_gemma4" "$g4_model" "${common[@]}" --precision "$3" \
        --dump-logits "$run/$2_logits.bin" | tag "$1" 0 >>"$run/$2.jsonl"
}
run_llama_cpp() { # run_llama_cpp ROUND
    "$py" "$here/bench_llama.py" "$gguf" "${common[@]}" --n-batch 2048 --weights "$wtype" \
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

"$py" "$here/report.py" "$run" "$model" "$cmd" "$wtype" "$gguf"
{ echo; echo "stage wall times (this run):"; sed 's/^/- /' "$timings"; } | tee -a "$run/table.md"
cp "$run/table.md" "$work/results/latest.md"
echo "results in $run (table.md, *.jsonl, *.log)"
