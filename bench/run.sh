#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Reproduce the figures in bench/README.md:
#   bash bench/run.sh                 full run (10k and 100k items)
#   bash bench/run.sh --quick         smoke-sized run
#   bash bench/run.sh --json          one JSON object instead of lines
# Extra arguments go to bench-mcp (see `bench-mcp --help`). Populated
# workspaces are cached in build-bench/bench/work (delete it, or pass
# --rebuild, after changing the store's schema).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=build-bench

if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" --buildtype=release
fi
ninja -C "$build" bench/bench-mcp sidecar/cortexd >/dev/null

echo "# cortex bench: $(date -u +%Y-%m-%dT%H:%M:%SZ) commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- 2>/dev/null || echo '+dirty')"
echo "# $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); $(free -m | awk '/^Mem:/ {print $2 " MB RAM"}')"

out="$build/bench/results-$(date -u +%Y%m%dT%H%M%SZ).txt"
"$build/bench/bench-mcp" --workdir "$build/bench/work" "$@" "$build/sidecar/cortexd" | tee "$out"
echo "# saved to $out" >&2
