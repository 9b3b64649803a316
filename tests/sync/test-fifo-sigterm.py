#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# cortexd never waits on a special file, and SIGTERM always ends it.
# A real cortexd over stdio (raw JSON-RPC, synclib.Agent) in a fresh git
# workspace:
# - the MCP tool `publish` with the path of a FIFO that no one writes to,
#   of a UNIX socket and of a directory inside the workspace is answered
#   with isError ("not a regular file") within 10 s (before, the worker
#   blocked opening the FIFO forever), and the process answers the next
#   request; a regular file is still published;
# - SIGTERM while a request is blocked (the workspace database held
#   exclusively by another process, so an `observe` waits on the lock for
#   up to 30 s): cortexd exits 0 within 2 s; what was acknowledged before
#   is kept (a new cortexd finds it); the background cortexd (--background)
#   also exits 0 within 2 s of SIGTERM, with the store held or not.
# Prints "N passed, N failed"; exits non-zero on any failure.
import os
import signal
import socket
import sqlite3
import subprocess
import time

from synclib import Agent, check, procs, run, wait_until


def tests(tmp):
    ws = os.path.join(tmp, "ws")
    os.makedirs(ws)
    subprocess.run(["git", "init", "-q", ws], check=True)
    env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(tmp, "home"))
    env.pop("CORTEX_WORKSPACE", None)
    os.mkfifo(os.path.join(ws, "pipe"))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(os.path.join(ws, "sock"))
    os.makedirs(os.path.join(ws, "dir"))
    with open(os.path.join(ws, "notes.md"), "w") as f:
        f.write("# Build notes\n\nRun meson.\n")

    agent = Agent(ws, env)
    try:
        for name in ("pipe", "sock", "dir"):
            t0 = time.monotonic()
            try:
                res = agent.req("tools/call", {"name": "publish",
                                               "arguments": {"name": f"special-{name}",
                                                             "path": name}}, timeout=10)
            except TimeoutError:
                check(False, f"publish of {name} is answered at once (not in 10 s)")
                return
            r = res.get("result", {})
            text = " ".join(c.get("text", "") for c in r.get("content", []))
            check(r.get("isError") is True, f"publish of {name} is refused: {res}")
            check("not a regular file" in text, f"and says why: {text!r}")
            check(time.monotonic() - t0 < 10, f"publish of {name} answered at once")
            pong = agent.req("ping", {}, timeout=10)
            check(pong.get("result") == {}, f"cortexd answers the next request: {pong}")
        out, err = agent.call("publish", {"name": "notes", "path": "notes.md"})
        check(not err, f"a regular file is still published: {out}")
        out, err = agent.call("observe", {"text": "the release build needs LTO turned off"})
        check(not err, f"observe before the lock: {out}")

        # hold the database so that the next write waits on its lock
        db = sqlite3.connect(os.path.join(ws, ".cortex", "cortex.db"), timeout=10,
                             isolation_level=None)
        db.execute("BEGIN EXCLUSIVE")
        try:
            rid = agent.next_id
            agent.next_id += 1
            agent.send({"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                        "params": {"name": "observe",
                                   "arguments": {"text": "written while the store is locked"}}})
            time.sleep(1.0)
            check(agent.proc.poll() is None, "cortexd is busy with the blocked observe")
            t0 = time.monotonic()
            agent.proc.send_signal(signal.SIGTERM)
            try:
                rc = agent.proc.wait(10)
            except subprocess.TimeoutExpired:
                rc = None
            took = time.monotonic() - t0
            check(rc == 0, f"cortexd exits 0 on SIGTERM: {rc}")
            check(took < 2.0, f"cortexd ends within 2 s of SIGTERM while a request is blocked: "
                              f"{took:.2f} s")
        finally:
            db.execute("ROLLBACK")
            db.close()
    finally:
        agent.close()
        sock.close()

    # what was acknowledged before is kept
    again = Agent(ws, env)
    try:
        out, err = again.call("search", {"query": "release build LTO"})
        found = [r for r in (out or {}).get("results", [])
                 if "LTO" in (r.get("title", "") + r.get("snippet", "") + r.get("body", ""))]
        check(not err and found, f"the note acknowledged before SIGTERM is kept: {out}")
    finally:
        again.close()

    background(ws, env)


def background(ws, env):
    """The background cortexd (what `cortex start` runs) ends within 2 s of
    SIGTERM too, the store held by another process or not."""
    for held in (False, True):
        log = open(os.path.join(os.path.dirname(ws), "background.log"), "a")
        proc = subprocess.Popen([os.environ["CORTEXD"], "--background", "--workspace", ws],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
        procs.append(proc)
        pid_file = os.path.join(ws, ".cortex", "cortexd.pid")
        check(wait_until(lambda: os.path.exists(pid_file), 30), "the background cortexd started")
        db = None
        if held:
            db = sqlite3.connect(os.path.join(ws, ".cortex", "cortex.db"), timeout=10,
                                 isolation_level=None)
            db.execute("BEGIN EXCLUSIVE")
        try:
            time.sleep(1.0)
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(10)
            except subprocess.TimeoutExpired:
                rc = None
            took = time.monotonic() - t0
            check(rc == 0, f"background cortexd exits 0 on SIGTERM (store held: {held}): {rc}")
            check(took < 2.0, f"background cortexd ends within 2 s of SIGTERM (store held: "
                              f"{held}): {took:.2f} s")
        finally:
            if db:
                db.execute("ROLLBACK")
                db.close()


if __name__ == "__main__":
    run("cx-fifo-sigterm-", tests)
