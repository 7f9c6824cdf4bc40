#!/usr/bin/env bash
# The GPU benchmark of the GPU-speed issue: gemma4's CUDA engine (gpu_bench, built in BUILD_DIR
# with -DGEMMA4_BUILD_BENCH=ON) and Hugging Face transformers (gpu_bench_hf.py, python3 with
# torch and transformers) on random-weight E2B, E4B, 26B-A4B and 31B shapes, then the combined
# table with ratios (gpu_bench_table.py). docs/performance.md ("GPU") describes the method.
#
#   tests/bench/gpu_bench.sh BUILD_DIR [--phase all|1|2|3|table] [--json FILE] [--budget S]
#
# Phases, most important numbers first:
#   1   E2B and E4B: decode at context 128 and the 512-token prompt, both precisions; then
#       transformers on the same (eager)
#   2   26B-A4B and 31B at context 128 and the 512-token prompt (40% of the budget), then all
#       four at contexts 4096 and 32768 and the 4096-token prompt; gemma4 in BF16 (the CUDA
#       default) only, transformers after gemma4 in each (eager)
#   3   transformers' E2B decode at context 128 under torch.compile (its compile takes long)
#   table   the combined table of FILE
#   all     1, 2, 3, table (default)
# Each run gets a share of its phase's budget S (default 150 s per phase), capped by what is left
# of it; each program skips what its time budget cannot fit, with a line saying so. Results are
# appended to FILE (default BUILD_DIR/gpu_bench.json, emptied by --phase all and 1).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bdir=${1:?usage: gpu_bench.sh BUILD_DIR [--phase all|1|2|3|table] [--json FILE] [--budget S]}
shift
phase=all json="" budget=150
while [ $# -gt 0 ]; do
  case "$1" in
    --phase) phase=$2; shift 2 ;;
    --json) json=$2; shift 2 ;;
    --budget) budget=$2; shift 2 ;;
    *) echo "gpu_bench.sh: unknown argument $1"; exit 2 ;;
  esac
done
json=${json:-$bdir/gpu_bench.json}
bench=$bdir/tests/bench/gpu_bench
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
[ "$phase" = all ] || [ "$phase" = 1 ] && : > "$json"

phase_start=$(date +%s) phase_budget=$budget
# The seconds left of the phase, capped at PERCENT of its budget.
share() {
  local cap=$((phase_budget * $1 / 100)) left=$((phase_budget - ($(date +%s) - phase_start)))
  [ "$cap" -lt "$left" ] && echo "$cap" || echo "$left"
}

# ours PERCENT ARGS...: gpu_bench with its time budget (it skips what does not fit) and a hard
# timeout 20 s later
ours() {
  local b
  b=$(share "$1"); shift
  if [ ! -x "$bench" ]; then
    echo "gpu_bench.sh: $bench not built (configure with -DGEMMA4_BUILD_BENCH=ON and CUDA)"
  elif [ "$b" -lt 10 ]; then
    echo "gpu_bench $*: skipped (${b} s left of the phase)"
  else
    echo "\$ gpu_bench $* --time-budget $b"
    timeout --kill-after=5 $((b + 20)) "$bench" "$@" --time-budget "$b" --json "$json" ||
      echo "gpu_bench: exit status $?"
  fi
}

# hf PERCENT ARGS...: gpu_bench_hf.py likewise
hf() {
  local b
  b=$(share "$1"); shift
  if [ "$b" -lt 15 ]; then
    echo "gpu_bench_hf.py $*: skipped (${b} s left of the phase)"
  else
    echo "\$ gpu_bench_hf.py $* --time-budget $((b - 10))"
    timeout --kill-after=5 "$b" "$py" "$here/gpu_bench_hf.py" "$@" --time-budget $((b - 10)) \
      --json "$json" || echo "gpu_bench_hf.py: exit status $?"
  fi
}

if [ "$phase" = all ] || [ "$phase" = 1 ]; then
  phase_start=$(date +%s)
  echo "== phase 1: E2B and E4B, decode at 128 and the 512-token prompt"
  ours 35 --models e2b,e4b --contexts 128 --prompts 512
  hf 100 --models e2b,e4b --contexts 128 --prompts 512 --modes eager
fi
if [ "$phase" = all ] || [ "$phase" = 2 ]; then
  phase_start=$(date +%s)
  echo "== phase 2a: 26B-A4B and 31B, decode at 128 and the 512-token prompt"
  ours 20 --models 26b-a4b,31b --contexts 128 --prompts 512 --precisions bf16
  hf 15 --models 26b-a4b,31b --contexts 128 --prompts 512 --modes eager
  echo "== phase 2b: all four at 4096 and 32768 and the 4096-token prompt"
  ours 40 --models e2b,e4b,26b-a4b,31b --contexts 4096,32768 --prompts 4096 --precisions bf16 --reps 2
  hf 100 --models e2b,e4b,26b-a4b,31b --contexts 4096,32768 --prompts 4096 --modes eager
fi
if [ "$phase" = all ] || [ "$phase" = 3 ]; then
  phase_start=$(date +%s)
  echo "== phase 3: transformers' E2B decode at 128 under torch.compile"
  hf 100 --models e2b --contexts 128 --prompts "" --modes compile --compile-models e2b
fi
if [ "$phase" = all ] || [ "$phase" = table ]; then
  echo "== combined table ($json)"
  "$py" "$here/gpu_bench_table.py" "$json"
fi
