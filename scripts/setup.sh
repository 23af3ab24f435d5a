#!/usr/bin/env bash
# Installs every Debian package that whale's build and tests need. Idempotent and non-interactive.
set -euo pipefail

packages=(
  # build
  cmake ninja-build g++ pkg-config
  # libraries
  nlohmann-json3-dev libcli11-dev libfmt-dev libpcre2-dev libutf8proc-dev libsimdjson-dev libhwy-dev
  # HTTP server (whale serve)
  libcpp-httplib-dev
  # training: f32 GEMM (OpenBLAS, loaded at run time: src/whale/train/blas.h)
  libopenblas0-pthread
  # benchmarks (Google Benchmark)
  libbenchmark-dev
  # tests
  libgtest-dev libgmock-dev
  # whale serve tests drive the server with curl too
  curl
  # reference forward pass (PyTorch) and checkpoint generator; Debian's python3, not a virtualenv
  python3 python3-numpy python3-torch
  # libFuzzer targets
  clang libclang-rt-14-dev
)

# Node.js runs the reference tokenizers and Jinja from npm; Debian's own is used unless a node is already installed.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages already installed"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "setup: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
