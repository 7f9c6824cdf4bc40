#!/usr/bin/env bash
# Builds the SWIG Python and C# modules in their own build directory and runs their tests.
# usage: bindings/swig/run_tests.sh [BUILD_DIR]    (default: <repo>/build-swig)
# With the top-level hook (option GEMMA4_SWIG -> add_subdirectory(bindings/swig)) it configures
# the whole project with -DGEMMA4_SWIG=ON; without it, it builds libgemma4 in BUILD_DIR/lib and
# configures bindings/swig standalone against it. Needs swig >= 4.0, Python 3 headers and Mono
# for the C# test (apt-get install -y swig python3-dev mono-devel, or scripts/install_deps.sh). Exits non-zero
# on any failure.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${1:-$root/build-swig}"
jobs="$(nproc 2>/dev/null || echo 2)"

command -v swig >/dev/null || command -v swig4.0 >/dev/null || {
    echo "run_tests.sh: swig not found (apt-get install -y swig python3-dev)" >&2; exit 2; }

common=(-DCMAKE_BUILD_TYPE=Release)
if grep -q "bindings/swig" "$root/CMakeLists.txt"; then
    cmake -S "$root" -B "$build" "${common[@]}" -DGEMMA4_CUDA=OFF -DGEMMA4_SWIG=ON \
        -DGEMMA4_BUILD_TESTS=OFF -DGEMMA4_BUILD_SAMPLES=OFF
    cmake --build "$build" -j "$jobs"
    tests_dir="$build/bindings/swig"
else
    echo "run_tests.sh: top-level CMakeLists.txt has no GEMMA4_SWIG hook; building standalone"
    cmake -S "$root" -B "$build/lib" "${common[@]}" -DGEMMA4_CUDA=OFF -DGEMMA4_BUILD_TESTS=OFF \
        -DGEMMA4_BUILD_SAMPLES=OFF
    cmake --build "$build/lib" -j "$jobs" --target gemma4
    cmake -S "$here" -B "$build/swig" "${common[@]}" -DGEMMA4_LIB_DIR="$build/lib"
    cmake --build "$build/swig" -j "$jobs"
    tests_dir="$build/swig"
fi
cd "$tests_dir"
ctest --output-on-failure -R '^swig_'
