#!/usr/bin/env bash
# Builds the Elixir binding's NIF against libgemma4.so and runs its ExUnit tests on the golden
# fixtures. Usage: bindings/elixir/run_tests.sh [LIBDIR]
#   LIBDIR  directory holding libgemma4.so (default: $GEMMA4_LIBDIR, else <repo>/build)
# Installs Debian's elixir and erlang-dev when mix is missing. Needs no Hex and no network
# beyond apt. Exits non-zero when the build or a test fails.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
libdir=${1:-${GEMMA4_LIBDIR:-$root/build}}

if ! command -v mix >/dev/null 2>&1 || [ -z "$(ls /usr/lib/erlang/usr/include/erl_nif.h 2>/dev/null)" ]; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "run_tests.sh: installing elixir and erlang-dev with apt-get"
    $sudo apt-get install -y elixir erlang-dev ||
        { $sudo apt-get update && $sudo apt-get install -y elixir erlang-dev; }
fi

if [ ! -f "$libdir/libgemma4.so" ]; then
    echo "run_tests.sh: no libgemma4.so in $libdir; build it first:" >&2
    echo "  cmake -S $root -B $root/build && cmake --build $root/build" >&2
    exit 2
fi

export GEMMA4_LIBDIR=$(cd "$libdir" && pwd)
export MIX_ENV=test
# mix wants a writable HOME (and MIX_HOME) even when it needs nothing from them
if [ -z "${HOME:-}" ] || [ ! -w "${HOME}" ]; then export HOME=$(mktemp -d); fi
export MIX_HOME=${MIX_HOME:-$HOME/.mix}
# the VM warns (and may mangle file names) without a UTF-8 locale
export LC_ALL=${LC_ALL:-C.UTF-8}

cd "$here"
echo "run_tests.sh: libgemma4 from $GEMMA4_LIBDIR, $(elixir --version | tail -1)"
mix compile --no-deps-check
mix test --no-deps-check "${@:2}"
