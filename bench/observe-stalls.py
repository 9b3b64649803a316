#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""One observe at a time through cortexd's stdio, in a fresh workspace:
prints each build's median latency, the total, and every call slower than
10 ms with its index (the first is the store's creation). For stalls that
a percentile hides: bench-mcp reports p99 and max, not when they happen.

    python3 bench/observe-stalls.py [--calls N] CORTEXD [CORTEXD...]
"""
import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time


def run(binary, calls):
    d = tempfile.mkdtemp(prefix="cx-stalls-")
    try:
        subprocess.run(["git", "init", "-q", d], check=True, timeout=30)
        p = subprocess.Popen([binary], cwd=d, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, env=dict(os.environ, CORTEX_WORKSPACE=d))

        def call(msg, answer=True):
            p.stdin.write((json.dumps(msg) + "\n").encode())
            p.stdin.flush()
            return json.loads(p.stdout.readline()) if answer else None

        call({"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                         "clientInfo": {"name": "observe-stalls", "version": "1"}}})
        call({"jsonrpc": "2.0", "method": "notifications/initialized"}, answer=False)
        lat = []
        for i in range(calls):
            t = time.perf_counter()
            r = call({"jsonrpc": "2.0", "id": i + 2, "method": "tools/call",
                      "params": {"name": "observe", "arguments": {
                          "text": f"note {i} about the replica lag and queue {i * 7919 % 1000}"}}})
            lat.append((time.perf_counter() - t) * 1000)
            if "error" in r or r.get("result", {}).get("isError"):
                raise SystemExit(f"{binary}: call {i} failed: {r}")
        p.stdin.close()
        p.wait(timeout=60)
        slow = [(i, round(x, 1)) for i, x in enumerate(lat) if x > 10]
        print(f"{binary}: p50={sorted(lat)[calls // 2]:.3f} ms total={sum(lat):.0f} ms "
              f"slow(>10 ms)={slow}", flush=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=5000)
    ap.add_argument("cortexd", nargs="+")
    a = ap.parse_args()
    for b in a.cortexd:
        run(b, a.calls)


if __name__ == "__main__":
    main()
