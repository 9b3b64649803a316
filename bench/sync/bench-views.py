#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# The review app's reads at size (issue 14): a core with N items in one team
# (default 100,000: observations, with every 50th a draft citing three of
# them, and every 200th draft approved through the decision endpoint, which
# makes it a canon thread), then each of the app's JSON
# endpoints timed as a browser would call it, one request at a time, over
# plain HTTP on 127.0.0.1. Prints the median and the slowest of --runs
# requests per endpoint, and how long the fill took; never asserts on time.
#
#   search common     a word in every item (ranks every match)
#   search rare       a word in one item in a thousand
#   search none       a word no item holds
#   search filter     kind=thread, no text (newest first)
#   item              GET /v1/items/{id} of a draft with three evidence items
#   queue             GET /v1/review/queue
#   audit             GET /v1/audit
#   activity          GET /v1/team/activity?days=30
#   first search      the first search after the fill: on SQLite it indexes
#                     what the push threads had not yet (see cortex-core(8))
#
# Usage: bench-views.py [--items N] [--runs R] [--bindir BUILD] [--init-args ARGS]
#                       [--idle SECS] [--fill-only]
# --init-args adds arguments to `cortex-core init` (PostgreSQL: "--database URI";
# run it under tests/core/with-pg.py as bench/sync/README.md shows).
import argparse, http.client, json, os, shlex, shutil, socket, subprocess, sys, tempfile, time

ap = argparse.ArgumentParser()
ap.add_argument("--items", type=int, default=100000)
ap.add_argument("--runs", type=int, default=9)
ap.add_argument("--batch", type=int, default=500)
ap.add_argument("--bindir", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                 "build-rel"))
ap.add_argument("--init-args", default="", help="more arguments for cortex-core init")
ap.add_argument("--fill-only", action="store_true",
                help="fill and report the fill's times only (works on a core without the views)")
ap.add_argument("--idle", type=float, default=0,
                help="seconds to wait after the fill before the first search")
args = ap.parse_args()
if args.items < 1000 or args.runs < 1 or not 1 <= args.batch <= 500:
    sys.exit("--items at least 1000, --runs at least 1, --batch 1..500")
CORE = os.path.join(os.path.abspath(args.bindir), "src/core/cortex-core")
CROCK = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
WORDS = ("build cache compiler linker deadlock mutex socket parser config schema index "
         "query planner vacuum replica cursor budget token flaky retry backoff jitter "
         "checksum manifest artifact toolchain docker runner migration rollback").split()


def ulid(n):
    s = ""
    for _ in range(16):
        s = CROCK[n % 32] + s
        n //= 32
    return "01JD000000" + s


def day(n):
    """A created_at spread over the last 60 days."""
    t = time.time() - (n % 60) * 86400 - 3600
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def item(n):
    w = [WORDS[(n * 7 + k * 13) % len(WORDS)] for k in range(12)]
    kind, status = "observation", "recorded"
    extra = {}
    if n % 50 == 0:
        kind, status = "draft", "pending"
        extra = {"evidence": [ulid(n - k) for k in (1, 2, 3)], "subcortex": "build"}
    body = " ".join(w) + " common"
    if n % 1000 == 7:
        body += " zanzibar"
    it = {"id": ulid(n), "kind": kind, "status": status, "title": " ".join(w[:5]),
          "body": body, "tags": [], "author": "bench", "agent": "bench",
          "created_at": day(n), "updated_at": day(n), "visibility": "shared",
          "provenance": {"files": [{"path": f"src/{w[0]}.c", "blob": f"{n % 97:040x}"}]}}
    it.update(extra)
    return it


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Conn:
    def __init__(self, port, key):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        self.h = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def req(self, method, path, body=None):
        self.c.request(method, path, body=json.dumps(body) if body is not None else None,
                       headers=self.h)
        r = self.c.getresponse()
        data = r.read()
        if r.status >= 300:
            sys.exit(f"{method} {path}: {r.status} {data[:200]!r}")
        return json.loads(data) if data else None


def timed(conn, path):
    t = time.perf_counter()
    conn.req("GET", path)
    return (time.perf_counter() - t) * 1000


def main():
    if not os.access(CORE, os.X_OK):
        sys.exit(f"{CORE} is missing: meson setup {args.bindir} --buildtype=release && "
                 f"ninja -C {args.bindir}")
    tmp = tempfile.mkdtemp(prefix="cortex-bench-views-")
    proc = None
    try:
        data = os.path.join(tmp, "core")
        subprocess.run([CORE, "init", data, *shlex.split(args.init_args)], check=True,
                       capture_output=True, timeout=120)
        key = subprocess.run([CORE, "keys", "create", data, "--team", "bench", "--role",
                              "reviewer", "--name", "bench"], check=True, capture_output=True,
                             text=True, timeout=60).stdout.strip()
        port, ready = free_port(), os.path.join(tmp, "ready")
        proc = subprocess.Popen([CORE, "serve", data, "--listen", f"127.0.0.1:{port}",
                                 "--ready-file", ready, "--rate-limit", "1000000", "--burst",
                                 "1000000"], stdout=subprocess.DEVNULL,
                                stderr=open(os.path.join(tmp, "core.log"), "w"))
        for _ in range(6000):
            if os.path.exists(ready) and open(ready).read().strip():
                break
            time.sleep(0.05)
        else:
            sys.exit("cortex-core did not start")
        conn = Conn(port, key)
        t0 = time.perf_counter()
        for start in range(1, args.items + 1, args.batch):
            ops = [{"op_id": f"v-{n}", "op": "item.put", "item": item(n)}
                   for n in range(start, min(start + args.batch, args.items + 1))]
            res = conn.req("POST", "/v1/sync/push", {"ops": ops})["results"]
            bad = [r for r in res if r.get("status") != "applied"]
            if bad:
                sys.exit(f"push refused: {bad[:2]}")
        pushed = time.perf_counter() - t0
        for n in range(200, args.items + 1, 200):
            conn.req("POST", f"/v1/drafts/{ulid(n)}/decision",
                     {"decision": "approve", "note": "bench"})
        fill = time.perf_counter() - t0
        if args.fill_only:
            print(f"{args.items:,} items pushed in {pushed:.1f} s ({args.items / pushed:,.0f}/s),"
                  f" {args.items // 200:,} drafts approved in {fill - pushed:.1f} s")
            return 0
        if args.idle:
            time.sleep(args.idle)
        first = timed(conn, "/v1/search?q=zanzibar")
        draft = ulid(50 * ((args.items // 100) | 1))  # a draft still waiting
        paths = [("search common", "/v1/search?q=common"),
                 ("search rare", "/v1/search?q=zanzibar"),
                 ("search none", "/v1/search?q=qwertyuiop"),
                 ("search filter", "/v1/search?kind=thread"),
                 ("item", f"/v1/items/{draft}"),
                 ("queue", "/v1/review/queue"),
                 ("audit", "/v1/audit"),
                 ("activity", "/v1/team/activity?days=30")]
        print(f"{args.items:,} items pushed and {args.items // 200:,} drafts approved in"
              f" {fill:.1f} s;"
              f" first search {first:.1f} ms" + (f" after {args.idle:g} s idle" if args.idle
                                                 else " right after the fill"))
        for name, path in paths:
            ms = sorted(timed(conn, path) for _ in range(args.runs))
            print(f"  {name:<14} median {ms[len(ms) // 2]:8.1f} ms   slowest {ms[-1]:8.1f} ms")
        return 0
    finally:
        if proc and proc.poll() is None:
            proc.terminate()
            proc.wait(120)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
