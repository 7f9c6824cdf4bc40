#!/usr/bin/env bash
# The main job: install, build, and chat with a model. With no --model, uses the small
# E2B-shaped checkpoint that ships in tests/golden/e2b (random weights: the text is gibberish,
# but every step of the real pipeline runs). Any gemma4-chat flags may be given.
set -euo pipefail
cd "$(dirname "$0")/.."
GEMMA4_DEPS=build bash scripts/install_deps.sh
bash scripts/build.sh
args=("$@")
[[ " $* " == *" --model "* ]] || args=(--model tests/golden/e2b "${args[@]}")
[[ " $* " == *" --prompt "* || " $* " == *" -i "* || " $* " == *" --interactive "* ]] ||
  args+=(--prompt "Write a haiku about the sea.")
exec build/samples/gemma4-chat "${args[@]}"
