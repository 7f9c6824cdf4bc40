#!/usr/bin/env bash
# Builds the C# binding with Mono's mcs and runs its console test program on the golden
# fixtures; also compiles samples/csharp/Chat.cs. Usage: bindings/csharp/run_tests.sh [LIBDIR]
#   LIBDIR  directory holding libgemma4.so (default: $GEMMA4_LIBDIR, else <repo>/build)
# Also runs samples/csharp/Chat.cs once without and once next to libgemma4 (the library-finding
# message and the working case). Installs Debian's mono-devel when mcs is missing. Needs no NuGet. Everything in src/ is
# compiled and tested, the IAsyncEnumerable<string> members too (written without C# 8 async
# iterators); Gemma4.Extensions.AI/ needs the Microsoft.Extensions.AI NuGet package and is not
# compiled here. Exits non-zero when a build step or a test fails.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
libdir=${1:-${GEMMA4_LIBDIR:-$root/build}}

if ! command -v mcs >/dev/null 2>&1 || ! command -v mono >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "run_tests.sh: installing mono-devel with apt-get"
    $sudo apt-get install -y mono-devel ||
        { $sudo apt-get update && $sudo apt-get install -y mono-devel; }
fi

if [ ! -f "$libdir/libgemma4.so" ]; then
    echo "run_tests.sh: no libgemma4.so in $libdir; build it first:" >&2
    echo "  cmake -S $root -B $root/build && cmake --build $root/build" >&2
    exit 2
fi
libdir=$(cd "$libdir" && pwd)

# GEMMA4_CS_OUT keeps the built Gemma4.dll / *.exe; otherwise they go to a temporary directory
if [ -n "${GEMMA4_CS_OUT:-}" ]; then
    out=$GEMMA4_CS_OUT
    mkdir -p "$out"
else
    out=$(mktemp -d)
    trap 'rm -rf "$out"' EXIT
fi
flags=(-unsafe -langversion:7.2 -warnaserror+ -nowarn:1591 -debug)
echo "run_tests.sh: $(mcs --version), libgemma4 from $libdir, output in $out"
mcs "${flags[@]}" -target:library -out:"$out/Gemma4.dll" "$here"/src/*.cs
mcs "${flags[@]}" -r:"$out/Gemma4.dll" -out:"$out/Gemma4Tests.exe" "$here"/tests/*.cs
mcs "${flags[@]}" -r:"$out/Gemma4.dll" -out:"$out/Chat.exe" "$here/../../samples/csharp/Chat.cs"

export LC_ALL=${LC_ALL:-C.UTF-8}
# The sample without LD_LIBRARY_PATH: with no library next to it the error says where the runtime
# looked; with libgemma4.so* copied next to it (as samples/csharp/run.sh does) it chats.
chat_err=$(cd "$out" && echo "" | env -u LD_LIBRARY_PATH mono Chat.exe "$root/tests/golden/e2b" 2>&1 >/dev/null) && {
    echo "run_tests.sh: Chat.exe ran without libgemma4" >&2; exit 1; }
grep -q "libgemma4.so not found: looked next to the program ($out)" <<<"$chat_err" ||
    { echo "run_tests.sh: unexpected error from Chat.exe without libgemma4: $chat_err" >&2; exit 1; }
cp -P "$libdir"/libgemma4.so* "$out/"
chat_out=$(cd "$out" && printf 'Hello\n\n' | env -u LD_LIBRARY_PATH mono Chat.exe "$root/tests/golden/e2b")
[[ "$chat_out" == "> "*"> "* ]] || { echo "run_tests.sh: Chat.exe next to libgemma4: $chat_out" >&2; exit 1; }
rm -f "$out"/libgemma4.so*
echo "run_tests.sh: Chat.exe: clear error without the library, chats with it next to it"

export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
mono --debug "$out/Gemma4Tests.exe" "$root/tests/golden"
