#!/usr/bin/env bash
# Installs what is needed, builds everything (CUDA too when nvcc is present) and runs every
# test: the C suite (ctest). GPU tests report "skipped" where there is no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j"$(nproc)"
