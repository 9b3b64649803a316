#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# A broken or hostile core cannot hold a sync forever, and what it says
# reaches the terminal only cleaned. FAKE cores (small HTTPS servers in this
# process on 127.0.0.1, certificates made by openssl; FakeCore in synclib)
# that never let a sync make progress:
# - a pull page with "more": true whose "next" is the cursor again;
# - a "next" that goes backwards (5, then 3);
# - a push answered 200 {"results": []};
# for each, `cortex sync` ends in under 30 s with exit 4 and says "the core
# broke the protocol", and nothing of the broken answer is applied (the
# cursor never moves back; the unacknowledged op stays in the backlog).
# A cortexd syncing in the background against the same-next core and
# against the empty-results core asks it a bounded number of times over
# ~5 s (it backs off; before, it pulled ~23 times a second forever).
# A core whose answer is larger than the client takes (a gzip body that
# inflates past 64 MiB) makes `cortex sync` exit 4 (upstream), not 3
# (store). A core whose error message carries ANSI/OSC escapes and other
# control characters: `cortex sync` and `cortex status` print none of them
# (403: exit 1, the core refused the key), nor does cortexd's log. Prints "N passed, N failed";
# exits non-zero on any failure.
import gzip
import threading
import time

from synclib import (Agent, FakeCore, check, cli, fake_workspace, run, serve_fake_core,
                     sync_state, wait_until)

lock = threading.Lock()
hits = {}  # handler name -> number of sync requests it answered


def count(name):
    with lock:
        hits[name] = hits.get(name, 0) + 1


def hits_of(name):
    with lock:
        return hits.get(name, 0)


class SameNext(FakeCore):
    def pull(self, since):
        count("same-next")
        return {"changes": [], "next": since, "more": True}


class Backwards(FakeCore):
    def pull(self, since):
        count("backwards")
        if since < 5:
            return {"changes": [], "next": 5, "more": True}
        return {"changes": [], "next": 3, "more": True}


class NoResults(FakeCore):
    def push(self, req):
        count("no-results")
        return 200, {"results": []}


class Oversized(FakeCore):
    def do_GET(self):
        if not self.path.startswith("/v1/sync/pull"):
            return super().do_GET()
        # 80 MiB once inflated, a few kilobytes on the wire
        body = gzip.compress(b'{"changes": [' + b" " * (80 << 20) + b'], "next": 1, "more": false}',
                             compresslevel=6)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass


HOSTILE = "\x1b]0;owned\x07\x1b[2J\x1b[31mkey revoked\x1b[0m\x9b1m\x08\x7f see admin"


class Escapes(FakeCore):
    def do_GET(self):
        if self.path.startswith("/v1/sync/pull"):
            count("escapes")
            return self.answer(403, {"error": {"code": "forbidden", "message": HOSTILE}})
        return super().do_GET()


def timed_sync(ws, env):
    t0 = time.monotonic()
    p = cli(ws, env, "sync", timeout=60)
    return p, time.monotonic() - t0


def looping(tmp, name, handler, notes, what):
    srv, url, cert = serve_fake_core(tmp, handler)
    try:
        ws, env = fake_workspace(tmp, name, url, cert, notes, CORTEX_SYNC_DEADLINE="20")
        p, took = timed_sync(ws, env)
        check(p.returncode == 4, f"{what}: cortex sync exits 4: {p.returncode} {p.stderr}")
        check(took < 30, f"{what}: cortex sync ends in under 30 s: {took:.1f} s")
        check("the core broke the protocol" in p.stderr,
              f"{what}: the message says the core broke the protocol: {p.stderr}")
        return ws, env
    finally:
        srv.shutdown()


def tests(tmp):
    looping(tmp, "same", SameNext, 0, "more with the same next")
    check(hits_of("same-next") <= 3, f"the looping pull was asked at most 3 times: "
                                     f"{hits_of('same-next')}")

    ws, env = looping(tmp, "back", Backwards, 0, "next going backwards")
    sync = sync_state(ws, env)
    check(sync.get("cursor") == 5, f"the cursor did not move back: {sync}")
    check("broke the protocol" in (sync.get("last_error") or ""),
          f"status keeps the protocol error: {sync}")

    ws, env = looping(tmp, "nores", NoResults, 2, "push answered without results")
    sync = sync_state(ws, env)
    check(sync.get("backlog") == 2 and sync.get("rejected") == 0,
          f"the two unacknowledged ops are still to push: {sync}")

    # an answer past the client's cap is the core's doing: exit 4
    srv, url, cert = serve_fake_core(tmp, Oversized)
    try:
        ws, env = fake_workspace(tmp, "big", url, cert, CORTEX_SYNC_DEADLINE="20")
        p, took = timed_sync(ws, env)
        check(p.returncode == 4, f"an oversized answer exits 4: {p.returncode} {p.stderr}")
        check("larger than" in p.stderr, f"and says the answer was too large: {p.stderr}")
    finally:
        srv.shutdown()

    # escapes from a core never reach the terminal
    srv, url, cert = serve_fake_core(tmp, Escapes)
    try:
        ws, env = fake_workspace(tmp, "esc", url, cert, CORTEX_SYNC_DEADLINE="20")
        p, _ = timed_sync(ws, env)
        check(p.returncode == 1, f"a 403 exits 1 (the key was refused): {p.returncode} {p.stderr!r}")
        check("key revoked" in p.stderr and "see admin" in p.stderr,
              f"the core's message is shown: {p.stderr!r}")
        bad = [c for c in p.stderr if (ord(c) < 32 and c not in "\n\t") or 0x7f <= ord(c) < 0xa0]
        check(not bad, f"no control character from the core is printed by sync: {p.stderr!r}")
        st = cli(ws, env, "status")
        check("key revoked" in st.stdout, f"status shows the last error: {st.stdout!r}")
        bad = [c for c in st.stdout if (ord(c) < 32 and c not in "\n\t") or 0x7f <= ord(c) < 0xa0]
        check(not bad, f"no control character from the core is printed by status: {st.stdout!r}")
    finally:
        srv.shutdown()

    background(tmp)


def background(tmp):
    """cortexd syncing in the background asks a looping core a bounded
    number of times."""
    for name, handler, key, notes in (("bg-same", SameNext, "same-next", 0),
                                      ("bg-nores", NoResults, "no-results", 1),
                                      ("bg-esc", Escapes, "escapes", 0)):
        srv, url, cert = serve_fake_core(tmp, handler)
        try:
            ws, env = fake_workspace(tmp, name, url, cert, notes, CORTEX_SYNC_DEADLINE="20")
            env["CORTEX_SYNC_INTERVAL_MS"] = "100"
            start = hits_of(key)
            agent = Agent(ws, env)
            try:
                got = wait_until(lambda: hits_of(key) > start, 30)
                check(got, f"{name}: cortexd synced with the core")
                t0 = hits_of(key)
                time.sleep(5)
                n = hits_of(key) - t0
                check(n <= 3, f"{name}: cortexd asked the broken core {n} times in 5 s "
                              f"(at most 3: it backs off)")
                res, err = agent.call("status", {})
                check(not err, f"{name}: cortexd still answers: {res}")
            finally:
                agent.close()
            log = open(ws + ".cortexd.log", encoding="utf-8", errors="replace").read()
            if key == "escapes":
                check("key revoked" in log, f"{name}: cortexd logs the core's message: {log!r}")
                bad = [c for c in log if (ord(c) < 32 and c != "\n") or 0x7f <= ord(c) < 0xa0]
                check(not bad, f"{name}: cortexd's log holds no control character from the "
                               f"core: {bad!r}")
            else:
                check("the core broke the protocol" in log,
                      f"{name}: cortexd logs that the core broke the protocol: {log[-2000:]!r}")
        finally:
            srv.shutdown()


if __name__ == "__main__":
    run("cx-looping-core-", tests)
