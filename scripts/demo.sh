#!/usr/bin/env bash
# Installs what is missing, builds the `anybcq` command-line tool and runs its main job. With no
# arguments it quantizes a built-in, seeded set of Llama-shaped layers at p = 2..4 and prints the
# error/size table; any arguments are passed to `anybcq` instead (try --help).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh"
build=${ANYBCQ_BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)" --target anybcq_cli >/dev/null
if [ $# -eq 0 ]; then set -- quantize; fi
exec "$build/examples/anybcq/anybcq" "$@"
