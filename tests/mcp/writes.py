#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""What an `observe` answer promises, whichever thread of cortexd served it
(a single observe is served by the main thread while the worker is idle):

1. read-your-writes: right after its answer, an observation is found by a
   keyword search for a word only it has, and by a semantic search for its
   text;
2. durability: cortexd killed with SIGKILL right after an answer keeps every
   observation it answered (read back from the SQLite file);
3. SIGTERM still ends cortexd within 2 s while an observe waits for the
   store's write lock, held by another process.

Usage: writes.py CORTEXD. Real processes, a real git repository and SQLite
file in a temporary directory; every wait is bounded."""
import json
import os
import queue
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

TIMEOUT = 30.0


class Server:
    def __init__(self, cortexd, ws):
        env = dict(os.environ)
        env.pop("CORTEX_WORKSPACE", None)
        env["CORTEX_AUTHOR"] = "writes-test"
        self.proc = subprocess.Popen([cortexd, "--workspace", ws], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
                                     cwd=ws)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.next_id = 0

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def send(self, method, params):
        self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}
        self.proc.stdin.write((json.dumps(msg) + "\n").encode())
        self.proc.stdin.flush()
        return self.next_id

    def call(self, method, params):
        rid = self.send(method, params)
        while True:
            line = self.lines.get(timeout=TIMEOUT)
            if line is None:
                raise AssertionError("cortexd closed its output")
            msg = json.loads(line)
            if msg.get("id") == rid:
                if "error" in msg:
                    raise AssertionError("error answer: %r" % msg)
                return msg["result"]

    def tool(self, name, args):
        res = self.call("tools/call", {"name": name, "arguments": args})
        if res.get("isError"):
            raise AssertionError("%s failed: %r" % (name, res))
        # the text block is the same JSON as structuredContent
        assert json.loads(res["content"][0]["text"]) == res["structuredContent"], res
        return res["structuredContent"]

    def initialize(self):
        self.call("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                 "clientInfo": {"name": "writes-test", "version": "1"}})
        msg = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        self.proc.stdin.write((json.dumps(msg) + "\n").encode())
        self.proc.stdin.flush()


def observe(srv, text):
    out = srv.tool("observe", {"text": text})
    assert out["recorded"] == 1 and not out["results"][0]["repeat"], out
    return out["results"][0]["id"]


def word(i):
    """A word only note i has (letters: the tokenizer splits digits off)."""
    return "zq" + chr(97 + i // 26) + chr(97 + i % 26) + "xv"


def note(i):
    return ("Note %d: the kettle %s frobnicates the %s gasket after a cold start"
            % (i, word(i), ["brass", "copper", "steel", "rubber"][i % 4]))


def read_your_writes(cortexd, ws):
    srv = Server(cortexd, ws)
    srv.initialize()
    ids = []
    for i in range(40):
        rid = observe(srv, note(i))
        ids.append(rid)
        kw = srv.tool("search", {"query": word(i), "mode": "keyword"})
        assert kw["results"] and kw["results"][0]["id"] == rid, (i, kw)
        sem = srv.tool("search", {"query": note(i), "mode": "semantic", "limit": 5})
        assert rid in [r["id"] for r in sem["results"]], (i, sem)
        hyb = srv.tool("search", {"query": word(i) + " kettle", "limit": 5})
        assert hyb["results"] and hyb["results"][0]["id"] == rid, (i, hyb)
    srv.proc.stdin.close()
    assert srv.proc.wait(timeout=TIMEOUT) == 0
    return ids


def killed_after_answers(cortexd, ws, earlier):
    srv = Server(cortexd, ws)
    srv.initialize()
    ids = [observe(srv, "Durable %d: answered means written, qkv%dzz" % (i, i))
           for i in range(150)]
    srv.proc.send_signal(signal.SIGKILL)  # right after the last answer
    srv.proc.wait(timeout=TIMEOUT)
    db = sqlite3.connect(os.path.join(ws, ".cortex", "cortex.db"), timeout=TIMEOUT)
    stored = {row[0] for row in db.execute("SELECT id FROM items")}
    db.close()
    missing = [i for i in earlier + ids if i not in stored]
    assert not missing, "answered but lost after SIGKILL: %r" % missing


def sigterm_while_locked(cortexd, ws):
    srv = Server(cortexd, ws)
    srv.initialize()
    observe(srv, "The store opens before the lock is taken")
    db = sqlite3.connect(os.path.join(ws, ".cortex", "cortex.db"), timeout=TIMEOUT,
                         isolation_level=None)
    db.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        srv.send("tools/call", {"name": "observe",
                                "arguments": {"text": "This one waits for the lock"}})
        time.sleep(0.5)
        assert srv.proc.poll() is None
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        rc = srv.proc.wait(timeout=10)
        took = time.monotonic() - t0
    finally:
        db.execute("ROLLBACK")
        db.close()
    assert rc == 0, rc
    assert took < 2.5, "SIGTERM took %.2f s while an observe waited for the lock" % took


def main():
    cortexd = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="cortex-writes-")
    try:
        ws = os.path.join(tmp, "ws")
        subprocess.run(["git", "init", "-q", ws], check=True)
        ids = read_your_writes(cortexd, ws)
        killed_after_answers(cortexd, ws, ids)
        sigterm_while_locked(cortexd, ws)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("writes: ok")


if __name__ == "__main__":
    main()
