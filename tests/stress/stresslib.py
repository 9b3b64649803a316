# SPDX-License-Identifier: Apache-2.0
"""Shared helpers for the multi-process stress tests: a cortexd client over
stdio (newline-delimited JSON-RPC), pass/fail accounting, temporary git
workspaces, and read access to a workspace's store. Standard library only."""

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

PROTOCOL_VERSION = "2025-11-25"
ULID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
# Text that must never reach an agent: the store is supposed to retry.
BUSY_RE = re.compile(r"busy|database is locked|sqlite_locked", re.IGNORECASE)


def log(*args):
    print(*args, flush=True)


class Checks:
    """Counts assertions; a failure is printed at once and the run goes on."""

    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0
        self.lock = threading.Lock()

    def check(self, ok, what, detail=None):
        with self.lock:
            if ok:
                self.passed += 1
            else:
                self.failed += 1
                msg = "FAIL: " + what
                if detail is not None:
                    d = str(detail)
                    msg += ": " + (d if len(d) < 2000 else d[:2000] + "…")
                log(msg)
        return ok

    def summary(self):
        log("%s: %d passed, %d failed" % (self.name, self.passed, self.failed))
        return 0 if self.failed == 0 and self.passed > 0 else 1


def binary(var):
    path = os.environ.get(var)
    if not path or not os.access(path, os.X_OK):
        log("%s is not set to an executable (got %r)" % (var, path))
        sys.exit(1)
    return path


def make_workspace(prefix):
    """A fresh temporary git repository; returns its real path."""
    d = os.path.realpath(tempfile.mkdtemp(prefix=prefix))
    subprocess.run(["git", "init", "-q", d], check=True, timeout=30,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return d


def remove_tree(path):
    if path and os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)


class ProtocolError(Exception):
    pass


class Server:
    """One cortexd process. A reader thread files every response by id and
    keeps every other line; stdout must carry nothing but JSON-RPC."""

    def __init__(self, cortexd, workspace, name="cortexd", extra_env=None):
        self.name = name
        self.workspace = workspace
        self.stderr_file = tempfile.TemporaryFile()
        env = dict(os.environ)
        env.pop("CORTEX_WORKSPACE", None)
        if extra_env:
            env.update(extra_env)
        self.proc = subprocess.Popen(
            [cortexd, "--workspace", workspace],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr_file,
            cwd=workspace, env=env)
        self.cond = threading.Condition()
        self.responses = {}      # id (as JSON text) -> message
        self.others = []         # notifications / server requests
        self.bad_lines = []      # stdout lines that are not JSON-RPC
        self.raw_responses = []  # raw text of every response, for text scans
        self.eof = False
        self.write_lock = threading.Lock()
        self.next_id = 1000000
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        out = self.proc.stdout
        try:
            for raw in out:
                line = raw.rstrip(b"\n")
                try:
                    text = line.decode("utf-8")
                    msg = json.loads(text)
                except (UnicodeDecodeError, ValueError):
                    with self.cond:
                        self.bad_lines.append(line[:500])
                    continue
                with self.cond:
                    if not isinstance(msg, dict) or msg.get("jsonrpc") != "2.0":
                        self.bad_lines.append(line[:500])
                    elif "method" in msg:
                        self.others.append(msg)
                    elif "id" in msg:
                        key = json.dumps(msg["id"])
                        if key in self.responses:
                            self.bad_lines.append(b"duplicate response: " + line[:500])
                        self.responses[key] = msg
                        self.raw_responses.append(text)
                    else:
                        self.bad_lines.append(line[:500])
                    self.cond.notify_all()
        except (OSError, ValueError):
            pass
        finally:
            with self.cond:
                self.eof = True
                self.cond.notify_all()

    def send(self, msg):
        data = (json.dumps(msg, separators=(",", ":")) + "\n").encode("utf-8")
        with self.write_lock:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()

    def alloc_id(self):
        with self.write_lock:
            self.next_id += 1
            return self.next_id

    def send_request(self, method, params=None, rid=None):
        if rid is None:
            rid = self.alloc_id()
        msg = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)
        return rid

    def notify(self, method, params=None):
        msg = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)

    def wait(self, rid, timeout):
        key = json.dumps(rid)
        deadline = time.monotonic() + timeout
        with self.cond:
            while key not in self.responses:
                left = deadline - time.monotonic()
                if self.eof:
                    raise ProtocolError("%s: stdout closed before the answer to %s (exit %s); stderr: %s"
                                        % (self.name, key, self.proc.poll(), self.stderr_tail()))
                if left <= 0:
                    raise ProtocolError("%s: no answer to %s within %.0f s" % (self.name, key, timeout))
                self.cond.wait(min(left, 1.0))
            return self.responses[key]

    def count_responses(self):
        with self.cond:
            return len(self.responses)

    def wait_count(self, n, timeout):
        """Waits until at least n responses arrived."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.responses) < n:
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    return False
                self.cond.wait(min(left, 1.0))
            return True

    def request(self, method, params=None, timeout=60):
        return self.wait(self.send_request(method, params), timeout)

    def initialize(self, timeout=30):
        r = self.request("initialize", {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "cortex-stress", "version": "1"},
        }, timeout=timeout)
        if "result" not in r:
            raise ProtocolError("%s: initialize failed: %s" % (self.name, r))
        self.notify("notifications/initialized")
        return r["result"]

    def call(self, tool, arguments, timeout=60):
        return self.request("tools/call", {"name": tool, "arguments": arguments}, timeout=timeout)

    def stderr_tail(self, n=3000):
        try:
            self.stderr_file.seek(0)
            data = self.stderr_file.read()
            return data[-n:].decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def close(self, timeout=30):
        """Closes stdin (how clients end a session) and waits for the exit.
        Returns the exit status, or None if it had to be killed."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        self.reader.join(timeout=10)
        return rc

    def kill(self):
        if self.proc.poll() is None:
            try:
                self.proc.kill()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except (OSError, ValueError):
                pass
        self.reader.join(timeout=10)

    def cleanup(self):
        self.kill()
        try:
            self.stderr_file.close()
        except OSError:
            pass


def tool_result(resp):
    """(structuredContent, error text or None) for a tools/call response."""
    if "error" in resp:
        return None, "JSON-RPC error %s" % json.dumps(resp["error"])
    res = resp.get("result")
    if not isinstance(res, dict):
        return None, "result is not an object: %r" % (res,)
    if res.get("isError"):
        return None, "isError: %s" % json.dumps(res.get("content"))[:1500]
    sc = res.get("structuredContent")
    if not isinstance(sc, dict):
        return None, "no structuredContent: %s" % json.dumps(res)[:1500]
    return sc, None


def open_db(workspace):
    path = os.path.join(workspace, ".cortex", "cortex.db")
    if not os.path.exists(path):
        raise FileNotFoundError(path)
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    db.execute("PRAGMA busy_timeout=30000")
    return db


def columns(db, table):
    return [r[1] for r in db.execute("PRAGMA table_info(%s)" % table)]


def tables(db):
    return [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]


def items_table(db):
    """The table of items (the one that has id, kind and body)."""
    names = tables(db)
    order = ["items"] + sorted(n for n in names if n != "items")
    for t in order:
        if t not in names:
            continue
        cols = columns(db, t)
        if "body" in cols and "kind" in cols and "id" in cols:
            return t
    raise RuntimeError("no items table (id, kind, body) in the store; tables: %s" % names)


def fts_check(db, exact=True):
    """Checks every FTS5 index over the items table: FTS5's own
    integrity-check, then agreement with the content (no row missing, none
    indexed twice or with old text), by tests/stress/fts-check (a C program:
    the indexes use Cortex's tokenizer, which Python's sqlite3 cannot load).
    Returns a list of problems (empty when all is well)."""
    path = [r[2] for r in db.execute("PRAGMA database_list") if r[1] == "main"][0]
    tool = binary("FTS_CHECK")
    p = subprocess.run([tool, path], capture_output=True, text=True, timeout=120)
    if p.returncode == 0:
        return []
    lines = [l for l in p.stdout.splitlines() if l.strip()] or [p.stderr.strip() or "fts-check failed"]
    return lines


def schema(db):
    return "\n".join(r[0] for r in db.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL"))
