#!/usr/bin/env bash
# Installs what is missing, builds everything (C++17 and C++20 tests; CUDA where nvcc exists) and runs
# the whole test suite under CTest. Extra arguments go to ctest.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh"
build=${ANYBCQ_BUILD_DIR:-$root/build}
jobs=${ANYBCQ_JOBS:-$(nproc)}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j "$jobs"
cd "$build"
ctest --output-on-failure -j "$jobs" "$@"
