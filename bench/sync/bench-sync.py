#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Sync benchmarks against a cortex-core on loopback (plain HTTP on
# 127.0.0.1). Prints figures; never asserts on time. See bench/sync/README.md.
#
#   push ops/s          workspace A holds N observations (recorded through
#                       cortexd's batch observe before any upstream is set,
#                       so nothing syncs early); `cortex sync` in A is timed
#                       from its start to the end of its push phase (its last
#                       "pushed" line; it then pulls its own changes back).
#   pull+apply /s       an empty workspace B runs `cortex sync`: N changes
#                       pulled and applied, timed whole.
#   one-change bytes    workspace C, behind a byte-counting TCP relay, is
#                       caught up with a history of H changes (N from A, the
#                       rest pushed straight to the API in batches of 500);
#                       one more change is pushed; the bytes both ways of C's
#                       next `cortex sync` are counted (HTTP headers included).
#
# Usage: bench-sync.py [--items N] [--history H] [--bindir BUILD] [--keep]
# BUILD is a release build directory (default build-finish-rel).
import argparse, http.client, json, os, shutil, socket, subprocess, sys, tempfile, threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("--items", type=int, default=20000)
ap.add_argument("--history", type=int, default=100000)
ap.add_argument("--bindir", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                 "build-finish-rel"))
ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
ap.add_argument("--json", action="store_true", help="print one JSON object")
args = ap.parse_args()
B = os.path.abspath(args.bindir)
CORE, CORTEX, CORTEXD = (os.path.join(B, p) for p in ("src/core/cortex-core", "sidecar/cortex",
                                                      "sidecar/cortexd"))
procs, figures = [], {}


def say(*a):
    if not args.json:
        print(*a, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Relay:
    """A TCP relay to the core that counts the bytes each way."""

    def __init__(self, target):
        self.target, self.up, self.down, self.conns = target, 0, 0, 0
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self):
        with self.lock:
            self.up = self.down = self.conns = 0

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            u = socket.create_connection(("127.0.0.1", self.target))
            with self.lock:
                self.conns += 1
            threading.Thread(target=self._pipe, args=(c, u, "up"), daemon=True).start()
            threading.Thread(target=self._pipe, args=(u, c, "down"), daemon=True).start()

    def _pipe(self, a, b, way):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                with self.lock:
                    setattr(self, way, getattr(self, way) + len(d))
                b.sendall(d)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def cli(ws, env, *a, stdin=None):
    p = subprocess.run([CORTEX, "--workspace", ws, *a], input=stdin, capture_output=True,
                       text=True, env=env, timeout=1800)
    if p.returncode != 0:
        sys.exit(f"cortex {' '.join(a)} failed ({p.returncode}): {p.stderr[-2000:]}")
    return p


def timed_sync(ws, env):
    """Runs `cortex sync`; returns (total s, end of the push phase s, stderr lines)."""
    t0 = time.monotonic()
    p = subprocess.Popen([CORTEX, "--workspace", ws, "sync"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, env=env)
    push_end, lines = None, []
    for line in p.stderr:
        lines.append(line.rstrip())
        if line.startswith("cortex: pushed"):
            push_end = time.monotonic() - t0
    rc = p.wait()
    total = time.monotonic() - t0
    if rc != 0:
        sys.exit(f"cortex sync failed ({rc}): {lines[-5:]}")
    return total, push_end, lines


def populate(ws, env, n):
    """n observations through cortexd's batch observe (500 per call)."""
    d = subprocess.Popen([CORTEXD, "--workspace", ws], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)

    def rpc(i, method, params):
        d.stdin.write((json.dumps({"jsonrpc": "2.0", "id": i, "method": method,
                                   "params": params}) + "\n").encode())
        d.stdin.flush()
        while True:
            m = json.loads(d.stdout.readline())
            if m.get("id") == i:
                if "error" in m or m.get("result", {}).get("isError"):
                    sys.exit(f"cortexd {method}: {m}")
                return m

    rpc(1, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                          "clientInfo": {"name": "bench-sync", "version": "1"}})
    d.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
    t0 = time.monotonic()
    for k in range(0, n, 500):
        obs = [{"text": f"bench note {i}: service-{i} listens on port {10000 + i} and logs to "
                        f"/var/log/svc{i}.log after {i % 97} retries"}
               for i in range(k, min(n, k + 500))]
        rpc(2 + k, "tools/call", {"name": "observe", "arguments": {"observations": obs}})
    dt = time.monotonic() - t0
    d.stdin.close()
    d.wait(60)
    return dt


def api_push(port, key, items, start):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for k in range(0, items, 500):
        ops = [{"op_id": f"bulk-{start + i}", "op": "item.put",
                "item": {"id": ulid(start + i), "kind": "observation", "status": "recorded",
                         "title": "", "body": f"bulk history change {start + i} about module "
                         f"m{(start + i) % 1000} and its build flags", "tags": [],
                         "author": "bench", "created_at": "2026-01-01T00:00:00Z",
                         "updated_at": "2026-01-01T00:00:00Z", "visibility": "shared"}}
               for i in range(k, min(items, k + 500))]
        c.request("POST", "/v1/sync/push", body=json.dumps({"ops": ops}),
                  headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
        r = c.getresponse()
        body = r.read()
        if r.status != 200:
            sys.exit(f"bulk push: {r.status} {body[:300]}")
    c.close()


CROCK = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid(n):
    t, s = 1767225600000 + n, ""
    for _ in range(10):
        s = CROCK[t % 32] + s
        t //= 32
    tail = ""
    for _ in range(16):
        tail = CROCK[n % 32] + tail
        n //= 32
    return s + tail


def main():
    for p in (CORE, CORTEX, CORTEXD):
        if not os.access(p, os.X_OK):
            sys.exit(f"{p} is missing: build {B} first (meson setup {B} --buildtype=release)")
    tmp = tempfile.mkdtemp(prefix="cortex-bench-sync-")
    try:
        run(tmp)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(30)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            say(f"kept {tmp}")
    if args.json:
        print(json.dumps(figures))


def run(tmp):
    n, hist = args.items, max(args.history, args.items + 1)
    data = os.path.join(tmp, "core")
    subprocess.run([CORE, "init", data], check=True, capture_output=True, timeout=60)
    key = subprocess.run([CORE, "keys", "create", data, "--team", "bench", "--role", "agent",
                          "--name", "bench"], check=True, capture_output=True, text=True,
                         timeout=60).stdout.strip()
    port, ready = free_port(), os.path.join(tmp, "ready")
    procs.append(subprocess.Popen([CORE, "serve", data, "--listen", f"127.0.0.1:{port}",
                                   "--ready-file", ready, "--rate-limit", "1000000", "--burst",
                                   "1000000"], stdout=subprocess.DEVNULL,
                                  stderr=open(os.path.join(tmp, "core.log"), "w")))
    for _ in range(300):
        if os.path.exists(ready) and open(ready).read().strip():
            break
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(tmp, "home"))
    env.pop("CORTEX_WORKSPACE", None)

    # push: A populated offline, then synced into the empty core
    A = os.path.join(tmp, "A")
    os.makedirs(A)
    dt = populate(A, env, n)
    say(f"populate: {n} observations via cortexd batch observe in {dt:.2f} s")
    cli(A, env, "remote", "set", url)
    cli(A, env, "login", stdin=key + "\n")
    total, push_end, _ = timed_sync(A, env)
    figures["push_ops"] = n
    figures["push_s"] = round(push_end, 3)
    figures["push_ops_per_s"] = round(n / push_end)
    say(f"push: {n} ops in {push_end:.2f} s = {n / push_end:,.0f} ops/s "
        f"(goal >= 5,000); the whole sync incl. pulling them back {total:.2f} s")

    # pull+apply: an empty workspace B
    Bw = os.path.join(tmp, "B")
    os.makedirs(Bw)
    cli(Bw, env, "remote", "set", url)
    cli(Bw, env, "login", stdin=key + "\n")
    total, _, _ = timed_sync(Bw, env)
    figures["pull_changes"] = n
    figures["pull_s"] = round(total, 3)
    figures["pull_changes_per_s"] = round(n / total)
    say(f"pull+apply: {n} changes in {total:.2f} s = {n / total:,.0f} changes/s (goal >= 20,000)")

    # one-change pull bytes with a long history
    relay = Relay(port)
    rurl = f"http://127.0.0.1:{relay.port}"
    C = os.path.join(tmp, "C")
    os.makedirs(C)
    cli(C, env, "remote", "set", rurl)
    cli(C, env, "login", stdin=key + "\n")
    t0 = time.monotonic()
    api_push(port, key, hist - n, 0)
    say(f"history: {hist - n} more changes pushed to the API in {time.monotonic() - t0:.2f} s")
    total, _, _ = timed_sync(C, env)
    figures["pull_history_changes"] = hist
    figures["pull_history_s"] = round(total, 3)
    say(f"pull+apply through the relay: {hist} changes in {total:.2f} s = "
        f"{hist / total:,.0f} changes/s; {relay.down / 1e6:.1f} MB down")
    for label in ("one_change", "no_change"):
        if label == "one_change":
            api_push(port, key, 1, hist)
        relay.reset()
        timed_sync(C, env)
        time.sleep(0.2)
        figures[f"{label}_pull_bytes"] = relay.up + relay.down
        figures[f"{label}_pull_bytes_up"] = relay.up
        figures[f"{label}_pull_bytes_down"] = relay.down
        say(f"{label.replace('_', '-')} pull after a {hist}-change history: "
            f"{relay.up + relay.down} bytes ({relay.up} up, {relay.down} down, "
            f"{relay.conns} connection{'s' if relay.conns != 1 else ''}) (goal < 2 KB)")


if __name__ == "__main__":
    main()
