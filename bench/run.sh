#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Reproduce the figures in bench/README.md:
#   bash bench/run.sh                 full run (10k and 100k items)
#   bash bench/run.sh --quick         smoke-sized run
#   bash bench/run.sh --json          one JSON object instead of lines
#   bash bench/run.sh redact [--quick] only the secret-redaction benchmark
# Extra arguments go to bench-mcp (see `bench-mcp --help`). Populated
# workspaces are cached in build-bench/bench/work (delete it, or pass
# --rebuild, after changing the store's schema).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=build-bench

redact_only=false
if [ "${1:-}" = redact ]; then
    redact_only=true
    shift
fi

if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" --buildtype=release
fi
if $redact_only; then
    ninja -C "$build" bench/bench-redact >/dev/null
else
    ninja -C "$build" bench/bench-mcp bench/bench-redact sidecar/cortexd >/dev/null
fi

echo "# cortex bench: $(date -u +%Y-%m-%dT%H:%M:%SZ) commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- 2>/dev/null || echo '+dirty')"
echo "# $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); $(free -m | awk '/^Mem:/ {print $2 " MB RAM"}')"

out="$build/bench/results-$(date -u +%Y%m%dT%H%M%SZ).txt"
if ! $redact_only; then
    "$build/bench/bench-mcp" --workdir "$build/bench/work" "$@" "$build/sidecar/cortexd" | tee "$out"
fi

# Secret redaction (bench-redact): throughput and latency per observation.
redact_args=()
for a in "$@"; do
    if [ "$a" = --quick ]; then
        redact_args+=(--quick)
    fi
done
"$build/bench/bench-redact" "${redact_args[@]}" | tee -a "$out"
echo "# saved to $out" >&2
