#!/usr/bin/env bash
# Compile-time resource check of the CUDA kernels (kernels/cuda/*.cu) for sm_90: nvcc with
# -Xptxas -v -lineinfo, one table row per kernel (registers, static shared memory, the largest
# dynamic shared memory its launcher asks for, stack frame, spill stores/loads) printed to the
# log, and a failure when a kernel
#   - spills registers or has a stack frame (local memory: slow on the hot path), or
#   - needs more than 48 KiB of shared memory (static + the launcher's dynamic maximum) without
#     an opt-in (the kernels never opt in), or
#   - needs more registers than its block size allows (65536 per SM / threads per block).
# Without nvcc it says so and exits 0 (the CUDA engine is then not built either).
# Usage: scripts/cuda_resources.sh [ARCH]   (default sm_90)
set -euo pipefail
cd "$(dirname "$0")/.."
arch=${1:-sm_90}
nvcc=$(command -v nvcc || true)
[ -z "$nvcc" ] && [ -x /usr/local/cuda/bin/nvcc ] && nvcc=/usr/local/cuda/bin/nvcc
if [ -z "$nvcc" ]; then
  echo "cuda_resources: no nvcc on this machine: the compile-time check did not run"
  exit 0
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
inc="-Ikernels/cuda -Icore -Icore/formats -Icore/text -Iabi"
# nvcc per file, two at a time
ls kernels/cuda/*.cu | xargs -P "$(nproc)" -I{} sh -c \
  "'$nvcc' -std=c++17 -arch=$arch -lineinfo -Xptxas -v ${G4_CUDA_RESOURCES_FLAGS:-} $inc -c {} -o $out/\$(basename {}).o \
   > $out/\$(basename {}).log 2>&1 || { cat $out/\$(basename {}).log; exit 1; }"

# Largest dynamic shared memory each launcher requests (bytes), from the launchers' code:
# attention: 2 * BK * head_dim floats (ATT_BK keeps it at 32 KiB); moe_topk: warps * n_experts
# floats, warps chosen to fit 48 KiB; moe_gemv_down: 16 * n_assign (<= 512) + 4; moe_combine:
# top_k (<= 4096) * 12.
declare -A dyn=([attention_kernel]=32768 [moe_topk_kernel]=49152 [moe_gemv_down_kernel]=8196 [moe_combine_kernel]=49152)
# Threads per block of each kernel's launches (registers x threads must fit 64 K registers).
declare -A threads=([attention_kernel]=128 [attention_merge_kernel]=128 [head_norm_rope_kernel]=128
  [moe_matmul_kernel]=256 [moe_gemv_down_kernel]=128 [moe_sort_kernel]=1024 [sample_kernel]=1024 [argmax_kernel]=1024
  [ple_combine_kernel]=128 [kv_commit_kernel]=128)

cat "$out"/*.log | c++filt | awk -v arch="$arch" -v dyn="$(for k in "${!dyn[@]}"; do printf '%s=%s ' "$k" "${dyn[$k]}"; done)" \
  -v thr="$(for k in "${!threads[@]}"; do printf '%s=%s ' "$k" "${threads[$k]}"; done)" '
BEGIN {
  n = split(dyn, a, " "); for (i = 1; i <= n; i++) { split(a[i], kv, "="); D[kv[1]] = kv[2] }
  n = split(thr, a, " "); for (i = 1; i <= n; i++) { split(a[i], kv, "="); T[kv[1]] = kv[2] }
  printf "%-44s %5s %8s %8s %6s %7s %7s  %s\n", "kernel (" arch ")", "regs", "smem", "dynamic", "stack", "spill-s", "spill-l", "verdict"
  bad = 0
}
/Compiling entry function/ { name = $0; sub(/.*entry function .?/, "", name); sub(/.? for .*/, "", name) }
/bytes stack frame/ { stack = $1; spills = $5; spilll = $9 }
/Used [0-9]+ registers/ {
  regs = $0; sub(/.*Used /, "", regs); sub(/ registers.*/, "", regs)
  smem = 0; if (match($0, /[0-9]+ bytes smem/)) { smem = substr($0, RSTART, RLENGTH); sub(/ bytes smem/, "", smem) }
  short = name; sub(/\(.*/, "", short); sub(/^void /, "", short); base = short; sub(/<.*/, "", base)
  d = (base in D) ? D[base] : 0; t = (base in T) ? T[base] : 256
  verdict = "ok"
  if (stack + 0 > 0 || spills + 0 > 0 || spilll + 0 > 0) verdict = "FAIL: local memory (stack/spills)"
  else if (smem + d > 49152) verdict = "FAIL: shared memory over 48 KiB"
  else if (regs * t > 65536) verdict = "FAIL: registers x " t " threads over 64 K"
  if (verdict != "ok") bad++
  printf "%-44s %5d %8d %8d %6d %7d %7d  %s\n", substr(short, 1, 44), regs, smem, d, stack, spills, spilll, verdict
}
END { if (bad) { printf "cuda_resources: %d kernel(s) over budget\n", bad; exit 1 } print "cuda_resources: every kernel within budget" }
'
