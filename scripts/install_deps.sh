#!/usr/bin/env bash
# Installs the Debian packages gemma4 needs to build and to run every test stage of
# scripts/test.sh (idempotent: installs only what is missing, and runs apt-get update only then).
#   build:    build-essential cmake pkg-config libcjson-dev libcmocka-dev
#   tests:    valgrind; swig python3-dev (SWIG modules); python3-venv (the tests' Python
#             packages go into a virtual environment, see scripts/venv.sh); mono-devel (mcs +
#             mono: C# binding and SWIG C# module); elixir erlang-dev (Elixir binding's NIF)
# GEMMA4_DEPS=build installs only the build packages (enough for scripts/build.sh and run.sh).
set -euo pipefail
pkgs=(build-essential cmake pkg-config libcjson-dev libcmocka-dev)
[ "${GEMMA4_DEPS:-all}" = build ] ||
  pkgs+=(valgrind swig python3-dev python3-venv mono-devel elixir erlang-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  echo "install_deps.sh: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
