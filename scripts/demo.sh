#!/usr/bin/env bash
# Installs what is missing, builds the `anybcq` command-line tool and runs its main job. With no
# arguments it quantizes a built-in, seeded set of Llama-shaped layers at p = 2..4 and prints the
# error/size table; any arguments are passed to `anybcq` instead (try --help).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh"
build=${ANYBCQ_BUILD_DIR:-$root/build}
log="$build/demo-build.log"
mkdir -p "$build"
echo "demo: building the anybcq tool in $build (log: $log) ..." >&2
if ! { cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release &&
       cmake --build "$build" -j "$(nproc)" --target anybcq_cli; } >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  echo "demo: build failed (full log: $log)" >&2
  exit 1
fi
if [ $# -eq 0 ]; then set -- quantize; fi
exec "$build/examples/anybcq/anybcq" "$@"
