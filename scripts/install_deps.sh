#!/usr/bin/env bash
# Installs the Debian packages gemma4 needs to build and test (idempotent; skips what is present).
set -euo pipefail
pkgs=(build-essential cmake pkg-config libcjson-dev libcmocka-dev valgrind swig)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
