#!/usr/bin/env bash
# Installs what is needed, builds everything (CUDA too when nvcc is present) and runs every
# test: the C suite (ctest), then the same suite again under AddressSanitizer +
# UndefinedBehaviorSanitizer, the concurrency tests under ThreadSanitizer, valgrind memcheck
# over the ABI tests, and the Python, SWIG, C# and Elixir binding tests. (The GPU tests, ctest
# label gpu, report "skipped" on a machine without a CUDA device.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
jobs=$(nproc)

echo "== build + ctest"
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j"$jobs"

echo "== tokenizer against Hugging Face tokenizers on Gemma 4's real 262144-token vocabulary"
bash tests/tokenizer/real_vocab.sh build/real_vocab
G4_REAL_VOCAB_DIR="$PWD/build/real_vocab" build/tests/test_tokenizer

echo "== Python binding (pytest)"
bash bindings/python/run_tests.sh "$PWD/build"

echo "== SWIG modules (Python, C#)"
bash bindings/swig/run_tests.sh

echo "== C# binding (Mono)"
bash bindings/csharp/run_tests.sh "$PWD/build"

echo "== Elixir binding (ExUnit)"
bash bindings/elixir/run_tests.sh "$PWD/build"

echo "== ctest under ASan + UBSan"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DGEMMA4_CUDA=OFF -DGEMMA4_BUILD_SAMPLES=OFF \
  "-DGEMMA4_SANITIZE=address;undefined" >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs"

echo "== ThreadSanitizer: concurrency and generation tests"
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DGEMMA4_CUDA=OFF -DGEMMA4_BUILD_SAMPLES=OFF \
  -DGEMMA4_SANITIZE=thread >/dev/null
cmake --build build-tsan -j"$jobs" --target test_concurrency test_generate
TSAN_OPTIONS=halt_on_error=1 build-tsan/tests/test_concurrency
TSAN_OPTIONS=halt_on_error=1 build-tsan/tests/test_generate

echo "== valgrind memcheck: ABI tests"
cmake -S . -B build-vg -DCMAKE_BUILD_TYPE=Debug -DGEMMA4_CUDA=OFF -DGEMMA4_BUILD_SAMPLES=OFF >/dev/null
cmake --build build-vg -j"$jobs" --target gemma4 test_abi
valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect,possible \
  --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=1 build-vg/tests/test_abi
echo "== all tests passed"
