#!/usr/bin/env bash
# Builds the host test suite with AddressSanitizer + UndefinedBehaviorSanitizer in build-asan (CUDA,
# benchmarks and the separately built libFuzzer target off) and runs it under CTest; any sanitizer
# report fails the run. Extra arguments go to ctest (e.g. -R io_ to run only the io tests).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh"
build=${ANYBCQ_ASAN_BUILD_DIR:-$root/build-asan}
jobs=${ANYBCQ_JOBS:-$(nproc)}
flags="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DANYBCQ_ENABLE_CUDA=OFF -DANYBCQ_BUILD_BENCH=OFF -DANYBCQ_FUZZ=OFF
cmake --build "$build" -j "$jobs"
cd "$build"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --output-on-failure -j "$jobs" "$@"
