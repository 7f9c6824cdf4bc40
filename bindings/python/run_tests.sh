#!/usr/bin/env bash
# Runs the Python binding's tests against a built libgemma4.
# usage: bindings/python/run_tests.sh [LIBDIR]   (LIBDIR holds libgemma4.so; default: build/)
# Installs pytest and numpy with pip if they are missing. Exits non-zero on any failure.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
libdir="${1:-${GEMMA4_LIBRARY:-$root/build}}"
libdir="$(cd "$(dirname "$libdir")" && pwd)/$(basename "$libdir")"
PYTHON="${PYTHON:-python3}"

if [ -d "$libdir" ] && [ ! -e "$libdir/libgemma4.so" ]; then
    echo "run_tests.sh: no libgemma4.so in $libdir (build the library first)" >&2
    exit 2
fi
if [ ! -e "$libdir" ]; then
    echo "run_tests.sh: $libdir does not exist (build the library first)" >&2
    exit 2
fi

for mod in pytest numpy; do
    if ! "$PYTHON" -c "import $mod" 2>/dev/null; then
        "$PYTHON" -m pip install --quiet "$mod"
    fi
done

export GEMMA4_LIBRARY="$libdir"
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
cd "$here"
exec "$PYTHON" -m pytest -q -p no:cacheprovider tests "${@:2}"
