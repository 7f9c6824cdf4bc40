#!/usr/bin/env bash
# Creates (or updates) the Python virtual environment of the tests and tools and prints its
# directory; never installs into the system Python. Usage:
#   venv=$(bash scripts/venv.sh) && . "$venv/bin/activate"
# GEMMA4_VENV: the directory (default <repo>/.venv); an existing environment there is reused.
# Installs scripts/requirements-test.txt plus any requirement files given as arguments; pip runs
# only when a file changed since the last install (a stamp inside the environment).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${GEMMA4_VENV:-$root/.venv}
reqs=("$root/scripts/requirements-test.txt" "$@")
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2 || {
    echo "venv.sh: python3 -m venv failed (Debian: apt-get install python3-venv)" >&2; exit 1; }
fi
stamp="$venv/.gemma4-requirements"
want=$(cat "${reqs[@]}" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  args=()
  for r in "${reqs[@]}"; do args+=(-r "$r"); done
  "$venv/bin/python" -m pip install --quiet "${args[@]}" >&2
  echo "$want" >"$stamp"
fi
echo "$venv"
