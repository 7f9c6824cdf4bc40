#!/usr/bin/env bash
# The one command for a lent GPU machine (an H100/H200 with CUDA 13, nvcc and PyTorch, but no
# internet and no cJSON/cmocka). Each step runs under its own time budget inside a 400 s total,
# so the whole check ends in under 7 minutes; every log goes to $OUT (at most 8 files):
#   summary.txt   one line per step: PASS / FAIL (rc) / TIMEOUT / SKIP and seconds
#   env.txt       nvidia-smi, nvcc, compute-sanitizer, cmake versions
#   build.log     cmake configure + build for sm_90 with every core
#   ctest_gpu.log ctest -L gpu (test_kernels_cuda, test_forward_cuda)
#   memcheck.log  compute-sanitizer --tool memcheck over test_kernels_cuda
#   racecheck.log compute-sanitizer --tool racecheck over the kernel tests with shared memory
#   decode.log    the GPU benchmark of the GPU-speed issue when it exists (tests/bench/gpu_bench.sh),
#                 else a quick decode timing on an E2B-shaped random model (4 layers)
#
#   scripts/gpu_check.sh --prepare-debs DIR   on a machine with Debian's packages: downloads the
#                                             build dependencies' .deb files into DIR
#   scripts/gpu_check.sh [--debs DIR] [--dry-run] [--no-build]
#                                             on the GPU machine (DIR: unpacked with dpkg -x into
#                                             a private prefix when cJSON/cmocka are missing)
# --dry-run (automatic without a GPU) runs the steps that need no GPU and prints SKIP for the
# others. With the device tool: prepare into .gpu_debs/ (listed in .git/info/exclude, never
# committed), then run with carry [".gpu_debs"]: OUT=$OUT bash scripts/gpu_check.sh --debs .gpu_debs
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
total=400
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
  step "configure + build (sm_90, $(nproc) jobs)" 170 "$OUT/build.log" bash -c "
    cmake -S '$root' -B '$bdir' -DCMAKE_BUILD_TYPE=Release -DGEMMA4_CUDA=ON \
      -DGEMMA4_CUDA_ARCHITECTURES=90 -DGEMMA4_BUILD_SAMPLES=OFF -DGEMMA4_BUILD_BENCH=OFF \
      -DGEMMA4_EMU=OFF -DGEMMA4_SWIG=OFF &&
    cmake --build '$bdir' -j$(nproc) --target gemma4 test_kernels_cuda test_forward_cuda" || failed=1
else
  skip "build" "--no-build"
fi

# ---- GPU steps ----------------------------------------------------------------------------------
kt=$bdir/tests/test_kernels_cuda
if [ $gpu -eq 1 ] && [ -x "$kt" ]; then
  step "ctest -L gpu" 150 "$OUT/ctest_gpu.log" \
    ctest --test-dir "$bdir" -L gpu --output-on-failure --timeout 140 || true
  # the kernel tests hold their own buffers (no model): the sanitizers' natural target
  if command -v compute-sanitizer > /dev/null; then
    step "compute-sanitizer memcheck (test_kernels_cuda)" 100 "$OUT/memcheck.log" \
      env CMOCKA_MESSAGE_OUTPUT=STDOUT compute-sanitizer --tool memcheck --error-exitcode 9 "$kt" || true
  else
    skip "compute-sanitizer memcheck" "compute-sanitizer not found"
  fi
else
  skip "ctest -L gpu" "no GPU"
  skip "compute-sanitizer memcheck (test_kernels_cuda)" "no GPU"
fi

# decode timing: the GPU-speed issue's benchmark if it exists, else an E2B-shaped random model
if [ $gpu -eq 1 ] && [ -x "$kt" ]; then
  if [ -x tests/bench/gpu_bench.sh ]; then
    step "GPU benchmark (tests/bench/gpu_bench.sh)" 90 "$OUT/decode.log" bash tests/bench/gpu_bench.sh "$bdir" || true
  else
    model=$(mktemp -d /tmp/g4e2b.XXXX)
    step "decode timing, E2B-shaped random model (4 layers)" 100 "$OUT/decode.log" bash -c "
      python3 '$root/tests/bench/make_model.py' '$root/tests/configs/e2b.json' '$root/tests/golden/e2b' '$model' --layers 4 &&
      python3 '$root/scripts/gpu_decode_timing.py' '$bdir/libgemma4.so' '$model' --prompt 128 --steps 64" || true
    rm -rf "$model"
  fi
else
  skip "decode timing" "no GPU"
fi

if [ $gpu -eq 1 ] && [ -x "$kt" ] && command -v compute-sanitizer > /dev/null; then
  step "compute-sanitizer racecheck (shared-memory kernels)" 90 "$OUT/racecheck.log" \
    env CMOCKA_MESSAGE_OUTPUT=STDOUT \
    G4_CUDA_TESTS=test_rmsnorm,test_attention,test_moe_route,test_moe_dispatch,test_softcap_argmax \
    compute-sanitizer --tool racecheck --racecheck-report all --error-exitcode 9 "$kt" || true
else
  skip "compute-sanitizer racecheck" "no GPU or no compute-sanitizer"
fi

echo "total $(($(date +%s) - start)) s; logs in $OUT" | tee -a "$summary"
exit $failed
