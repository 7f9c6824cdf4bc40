#!/usr/bin/env bash
# Runs the Python binding's tests against a built libgemma4.
# usage: bindings/python/run_tests.sh [LIBDIR]   (LIBDIR holds libgemma4.so; default: build/)
# Python: $PYTHON, else the active virtual environment, else the repository's (scripts/venv.sh,
# created with pytest and numpy when missing). Exits non-zero on any failure.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
libdir="${1:-${GEMMA4_LIBRARY:-$root/build}}"
libdir="$(cd "$(dirname "$libdir")" && pwd)/$(basename "$libdir")"

if [ -d "$libdir" ] && [ ! -e "$libdir/libgemma4.so" ]; then
    echo "run_tests.sh: no libgemma4.so in $libdir (build the library first)" >&2
    exit 2
fi
if [ ! -e "$libdir" ]; then
    echo "run_tests.sh: $libdir does not exist (build the library first)" >&2
    exit 2
fi

# pytest and numpy come from the repository's virtual environment (scripts/venv.sh), never
# pip-installed into a system Python; an explicit $PYTHON or an active environment is used as is.
if [ -z "${PYTHON:-}" ] && [ -z "${VIRTUAL_ENV:-}" ]; then
    PYTHON="$(bash "$root/scripts/venv.sh")/bin/python"
fi
PYTHON="${PYTHON:-python3}"
for mod in pytest numpy; do
    "$PYTHON" -c "import $mod" 2>/dev/null || {
        echo "run_tests.sh: $PYTHON has no $mod (bash scripts/venv.sh makes an environment with it)" >&2
        exit 2; }
done

export GEMMA4_LIBRARY="$libdir"
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
cd "$here"
exec "$PYTHON" -m pytest -q -p no:cacheprovider tests "${@:2}"
