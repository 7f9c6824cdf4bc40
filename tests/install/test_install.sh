#!/usr/bin/env bash
# ctest test_install: installs the build into a temporary prefix (cmake --install) and checks
# that what a user gets works without environment variables:
#   - the prefix holds include/gemma4.h, the library, pkgconfig/gemma4.pc, cmake/gemma4/ and
#     bin/gemma4-chat, and that gemma4-chat runs;
#   - tests/install/app.c builds with `pkg-config --cflags --libs gemma4` and with
#     find_package(gemma4), and both programs run and generate;
#   - the README's build line against the build tree (with its rpath) runs.
# usage: test_install.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
model="$src/tests/golden/e2b"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset LD_LIBRARY_PATH GEMMA4_LIBRARY GEMMA4_LIBDIR
prefix="$tmp/prefix"
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" || { cat "$tmp/install.log"; fail "cmake --install"; }
libdir=$(dirname "$(find "$prefix" -name libgemma4.so -print -quit)")
[ -f "$prefix/include/gemma4.h" ] || fail "no include/gemma4.h"
[ -e "$libdir/libgemma4.so.0" ] || fail "no libgemma4.so.0"
[ -f "$libdir/pkgconfig/gemma4.pc" ] || fail "no pkgconfig/gemma4.pc"
[ -f "$libdir/cmake/gemma4/gemma4Config.cmake" ] || fail "no cmake/gemma4/gemma4Config.cmake"
[ -x "$prefix/bin/gemma4-chat" ] || fail "no bin/gemma4-chat"
echo "PASS installed files ($(cd "$prefix" && find . -type f | sort | tr '\n' ' '))"

"$prefix/bin/gemma4-chat" --model "$model" -n 4 -p Hello >"$tmp/chat.out" 2>&1 ||
    { cat "$tmp/chat.out"; fail "installed gemma4-chat"; }
echo "PASS installed gemma4-chat runs"

# pkg-config (the prefix is not a system path: the rpath comes from the .pc's libdir)
export PKG_CONFIG_PATH="$libdir/pkgconfig"
pkg-config --exists gemma4 || fail "pkg-config does not find gemma4"
[ "$(pkg-config --modversion gemma4)" = "$(sed -n 's/^#define GEMMA4_VERSION_STRING "\(.*\)"/\1/p' "$src/abi/gemma4.h")" ] ||
    fail "pkg-config version $(pkg-config --modversion gemma4)"
# shellcheck disable=SC2046
cc -o "$tmp/app_pc" "$src/tests/install/app.c" $(pkg-config --cflags --libs gemma4) \
    -Wl,-rpath,"$(pkg-config --variable=libdir gemma4)" || fail "build with pkg-config"
"$tmp/app_pc" "$model" >"$tmp/pc.out" || { cat "$tmp/pc.out"; fail "program built with pkg-config"; }
grep -q "GEMMA4_OK" "$tmp/pc.out" || fail "program built with pkg-config: $(cat "$tmp/pc.out")"
echo "PASS built with pkg-config, runs"

# find_package(gemma4)
cmake -S "$src/tests/install" -B "$tmp/consumer" -DCMAKE_PREFIX_PATH="$prefix" >"$tmp/cmake.log" 2>&1 ||
    { cat "$tmp/cmake.log"; fail "find_package(gemma4)"; }
cmake --build "$tmp/consumer" >"$tmp/cmake.log" 2>&1 || { cat "$tmp/cmake.log"; fail "build with find_package"; }
"$tmp/consumer/app" "$model" >"$tmp/cm.out" || { cat "$tmp/cm.out"; fail "program built with find_package"; }
cmp -s "$tmp/pc.out" "$tmp/cm.out" || fail "the two programs differ"
echo "PASS built with find_package(gemma4), runs"

# the README's line against the build tree
cc -o "$tmp/app_readme" "$src/tests/install/app.c" -I"$src/abi" -L"$build" -lgemma4 \
    -Wl,-rpath,"$build" || fail "README build line"
"$tmp/app_readme" "$model" >"$tmp/readme.out" || { cat "$tmp/readme.out"; fail "README program"; }
echo "PASS README build line (-Lbuild -lgemma4 -Wl,-rpath,build), runs"
echo "4 passed, 0 failed"
