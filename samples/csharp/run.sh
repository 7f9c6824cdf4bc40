#!/usr/bin/env bash
# Builds samples/csharp/Chat.cs with the C# binding (Mono's mcs) into build/csharp/, next to a
# copy of build/libgemma4.so (where the runtime looks first), and runs it. Build the library
# first (bash scripts/build.sh). usage: samples/csharp/run.sh MODEL_DIR [SYSTEM_PROMPT]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out="$root/build/csharp"
[ -f "$root/build/libgemma4.so" ] || { echo "run.sh: no $root/build/libgemma4.so (bash scripts/build.sh)" >&2; exit 2; }
mkdir -p "$out"
cp -P "$root"/build/libgemma4.so* "$out/"
mcs -unsafe -langversion:7.2 -nologo -out:"$out/Chat.exe" "$root/samples/csharp/Chat.cs" "$root"/bindings/csharp/src/*.cs
exec mono "$out/Chat.exe" "$@"
