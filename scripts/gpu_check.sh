#!/usr/bin/env bash
# The one command for a lent GPU machine (an H100/H200 with CUDA 13, nvcc, PyTorch and
# transformers, but no internet and no cJSON/cmocka). Each step runs under its own time budget
# inside a 480 s total (8 minutes), in the order that puts the most important numbers first;
# every log goes to $OUT (7 files):
#   summary.txt   one line per step: PASS / FAIL (rc) / TIMEOUT / SKIP and seconds
#   env.txt       nvidia-smi, nvcc, compute-sanitizer, cmake, torch and transformers versions
#   build.log     cmake configure + build for sm_90 with every core (library, GPU tests, gpu_bench)
#   bench.log     the GPU benchmark (tests/bench/gpu_bench.sh): phase 1 (E2B and E4B at context
#                 128 and the 512-token prompt, gemma4 in both precisions and transformers) right
#                 after the build, phase 2 (26B-A4B and 31B, then contexts 4096 / 32768 and the
#                 4096-token prompt) after the correctness steps, phase 3 (transformers' E2B
#                 under torch.compile) with what is left, and the combined table
#   bench.json    the benchmark's rows (JSON lines; tests/bench/gpu_bench_table.py prints them)
#   ctest_gpu.log ctest -L gpu (test_kernels_cuda, test_forward_cuda)
#   sanitizer.log compute-sanitizer memcheck over test_kernels_cuda, then racecheck over the
#                 kernel tests with shared memory
# The combined benchmark table is printed last (the device tool's reply shows the output's end).
#
#   scripts/gpu_check.sh --prepare-debs DIR   on a machine with Debian's packages: downloads the
#                                             build dependencies' .deb files into DIR
#   scripts/gpu_check.sh [--debs DIR] [--dry-run] [--no-build]
#                                             on the GPU machine (DIR: unpacked with dpkg -x into
#                                             a private prefix when cJSON/cmocka are missing)
# --dry-run (automatic without a GPU) runs the steps that need no GPU and prints SKIP for the
# others. With the device tool: prepare into .gpu_debs/ (listed in .git/info/exclude, never
# committed), then run with carry [".gpu_debs"] and timeout_s 560:
#   OUT=$OUT bash scripts/gpu_check.sh --debs .gpu_debs
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
debs_pkgs=(libcjson1 libcjson-dev libcmocka0 libcmocka-dev pkgconf pkgconf-bin libpkgconf3 pkg-config)

if [ "${1:-}" = "--prepare-debs" ]; then
  dir=${2:?usage: gpu_check.sh --prepare-debs DIR}
  mkdir -p "$dir" && cd "$dir" || exit 1
  apt-get download "${debs_pkgs[@]}" || { echo "apt-get download failed (apt-get update first?)"; exit 1; }
  ls -l ./*.deb
  exit 0
fi

debs="" dry=0 build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --debs) debs=$2; shift 2 ;;
    --dry-run) dry=1; shift ;;
    --no-build) build=0; shift ;;
    *) echo "gpu_check.sh: unknown argument $1"; exit 2 ;;
  esac
done
OUT=${OUT:-$root/gpu_check_out}
mkdir -p "$OUT"
summary=$OUT/summary.txt
: > "$summary"
start=$(date +%s)
total=480
failed=0

# step NAME BUDGET LOG CMD...: runs CMD with a timeout of min(BUDGET, what is left of the total)
step() {
  local name=$1 budget=$2 log=$3
  shift 3
  local left=$((total - ($(date +%s) - start)))
  [ "$budget" -gt "$left" ] && budget=$left
  if [ "$budget" -le 5 ]; then
    echo "SKIP     $name (no time left in the ${total} s budget)" | tee -a "$summary"
    return 0
  fi
  echo "== $name (budget ${budget} s)" | tee -a "$log"
  local t0=$(date +%s)
  timeout --kill-after=10 "$budget" "$@" >> "$log" 2>&1
  local rc=$? dt=$(($(date +%s) - t0))
  if [ $rc -eq 0 ]; then echo "PASS     $name (${dt} s)"
  elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then echo "TIMEOUT  $name (${dt} s, budget ${budget} s)"; failed=1
  else echo "FAIL     $name (rc $rc, ${dt} s; see $(basename "$log"))"; failed=1
  fi | tee -a "$summary"
  return $rc
}
skip() { echo "SKIP     $1 ($2)" | tee -a "$summary"; }

# ---- environment ------------------------------------------------------------------------------
[ -x /usr/local/cuda/bin/nvcc ] && export PATH="/usr/local/cuda/bin:$PATH"
gpu=0
if command -v nvidia-smi > /dev/null && nvidia-smi -L > /dev/null 2>&1; then gpu=1; fi
[ $dry -eq 1 ] && gpu=0
{
  echo "date: $(date -u)"; echo "host: $(uname -a)"; echo "cores: $(nproc)"
  nvidia-smi 2>&1 || echo "nvidia-smi: no GPU"
  nvcc --version 2>&1 || echo "nvcc: not found"
  compute-sanitizer --version 2>&1 || echo "compute-sanitizer: not found"
  cmake --version 2>&1 | head -1
  python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.is_available())' 2>&1 || true
  python3 -c 'import transformers; print("transformers", transformers.__version__)' 2>&1 || true
} > "$OUT/env.txt" 2>&1
echo "GPU: $([ $gpu -eq 1 ] && nvidia-smi -L | head -1 || echo "none: dry run, GPU steps are skipped")" | tee -a "$summary"

# ---- build dependencies from .deb files ---------------------------------------------------------
# With --debs, the unpacked packages are the only ones pkg-config sees (PKG_CONFIG_LIBDIR), so a
# dry run here exercises the same path as the GPU machine.
if [ -n "$debs" ]; then
  if ls "$debs"/*.deb > /dev/null 2>&1; then
    prefix=$(mktemp -d /tmp/g4deps.XXXX)
    for f in "$debs"/*.deb; do
      if command -v dpkg > /dev/null; then dpkg -x "$f" "$prefix"
      else # no dpkg: a .deb is an ar archive holding data.tar.*
        t=$(mktemp -d) && fa=$(realpath "$f") && (cd "$t" && ar x "$fa") &&
          tar -xf "$t"/data.tar.* -C "$prefix"; rm -rf "$t"
      fi
    done
    ml=$prefix/usr/lib/x86_64-linux-gnu
    command -v pkg-config > /dev/null || export PATH="$prefix/usr/bin:$PATH"
    export LD_LIBRARY_PATH="$ml${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export PKG_CONFIG_LIBDIR="$ml/pkgconfig:$prefix/usr/share/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$prefix"
    if pkg-config --exists libcjson cmocka; then
      echo "PASS     deps from $debs (unpacked in $prefix: $(pkg-config --cflags libcjson cmocka))" | tee -a "$summary"
    else
      echo "FAIL     deps: pkg-config cannot find libcjson/cmocka in $debs" | tee -a "$summary"; failed=1
    fi
  else
    echo "FAIL     deps: no .deb files in $debs" | tee -a "$summary"; failed=1
  fi
elif pkg-config --exists libcjson cmocka 2> /dev/null; then
  echo "PASS     deps (pkg-config finds libcjson and cmocka)" | tee -a "$summary"
else
  echo "FAIL     deps: cJSON/cmocka missing; pass --debs DIR (made by --prepare-debs)" | tee -a "$summary"
  failed=1
fi

# ---- build for sm_90 ----------------------------------------------------------------------------
bdir=$root/build-gpu
if [ $build -eq 1 ]; then
  step "configure + build (sm_90, $(nproc) jobs)" 130 "$OUT/build.log" bash -c "
    cmake -S '$root' -B '$bdir' -DCMAKE_BUILD_TYPE=Release -DGEMMA4_CUDA=ON \
      -DGEMMA4_CUDA_ARCHITECTURES=90 -DGEMMA4_BUILD_SAMPLES=OFF -DGEMMA4_BUILD_BENCH=ON \
      -DGEMMA4_EMU=OFF -DGEMMA4_SWIG=OFF &&
    cmake --build '$bdir' -j$(nproc) --target gemma4 test_kernels_cuda test_forward_cuda gpu_bench" || failed=1
else
  skip "build" "--no-build"
fi

# ---- GPU steps ----------------------------------------------------------------------------------
kt=$bdir/tests/test_kernels_cuda
gb=$bdir/tests/bench/gpu_bench
bench_json=$OUT/bench.json
: > "$bench_json"
ready=0
[ $gpu -eq 1 ] && [ -x "$kt" ] && ready=1

# 1. the headline numbers: E2B and E4B decode at context 128 (and the 512-token prompt)
if [ $ready -eq 1 ] && [ -x "$gb" ]; then
  step "GPU benchmark phase 1: E2B, E4B at context 128 (gemma4 + transformers)" 105 "$OUT/bench.log" \
    bash tests/bench/gpu_bench.sh "$bdir" --phase 1 --json "$bench_json" --budget 100 || true
else
  skip "GPU benchmark phase 1" "no GPU or no gpu_bench"
fi

# 2. correctness on the GPU
if [ $ready -eq 1 ]; then
  step "ctest -L gpu" 90 "$OUT/ctest_gpu.log" \
    ctest --test-dir "$bdir" -L gpu --output-on-failure --timeout 85 || true
  # the kernel tests hold their own buffers (no model): the sanitizers' natural target
  if command -v compute-sanitizer > /dev/null; then
    step "compute-sanitizer memcheck (test_kernels_cuda)" 45 "$OUT/sanitizer.log" \
      env CMOCKA_MESSAGE_OUTPUT=STDOUT compute-sanitizer --tool memcheck --error-exitcode 9 "$kt" || true
  else
    skip "compute-sanitizer memcheck" "compute-sanitizer not found"
  fi
else
  skip "ctest -L gpu" "no GPU"
  skip "compute-sanitizer memcheck (test_kernels_cuda)" "no GPU"
fi

# 3. the rest of the benchmark: what is left of the total but the racecheck's 25 s
if [ $ready -eq 1 ] && [ -x "$gb" ]; then
  left=$((total - ($(date +%s) - start) - 25))
  [ $left -gt 120 ] && left=120
  if [ $left -gt 20 ]; then
    step "GPU benchmark phase 2: 26B-A4B, 31B; contexts 4096, 32768; prompt 4096" $((left + 5)) \
      "$OUT/bench.log" bash tests/bench/gpu_bench.sh "$bdir" --phase 2 --json "$bench_json" --budget "$left" || true
  else
    skip "GPU benchmark phase 2" "no time left"
  fi
else
  skip "GPU benchmark phase 2" "no GPU or no gpu_bench"
fi

if [ $ready -eq 1 ] && command -v compute-sanitizer > /dev/null; then
  step "compute-sanitizer racecheck (shared-memory kernels)" 25 "$OUT/sanitizer.log" \
    env CMOCKA_MESSAGE_OUTPUT=STDOUT \
    G4_CUDA_TESTS=test_rmsnorm,test_attention,test_moe_route,test_moe_dispatch,test_softcap_argmax \
    compute-sanitizer --tool racecheck --racecheck-report all --error-exitcode 9 "$kt" || true
else
  skip "compute-sanitizer racecheck" "no GPU or no compute-sanitizer"
fi

# 4. with what is left: transformers' E2B decode under torch.compile (a long compile)
left=$((total - ($(date +%s) - start)))
if [ $ready -eq 1 ] && [ $left -gt 40 ]; then
  step "GPU benchmark phase 3: transformers E2B under torch.compile" "$left" "$OUT/bench.log" \
    bash tests/bench/gpu_bench.sh "$bdir" --phase 3 --json "$bench_json" --budget $((left - 5)) || true
else
  skip "GPU benchmark phase 3 (transformers torch.compile)" "no GPU or under 40 s left"
fi

echo "total $(($(date +%s) - start)) s; logs in $OUT" | tee -a "$summary"
# the combined benchmark table last, into bench.log and onto the output's end
if [ -s "$bench_json" ]; then
  bash tests/bench/gpu_bench.sh "$bdir" --phase table --json "$bench_json" 2>&1 | tee -a "$OUT/bench.log"
fi
exit $failed
