#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""cortexd starts without the libraries it loads on first use, and says which
one is missing when a call needs it.

SQLite (the store), PCRE2 (secret redaction) and libsodium (the store's
hashes) are opened with dlopen() after `initialize` is answered
(store/sqlite.c, redact/redact.c, store/hash.c).
For each, cortexd runs in a private mount namespace (`unshare -rm`) where
the library's file is replaced by an empty one, so that dlopen() really
fails as it would on a system without it. Then:

  - `initialize` is answered (nothing at start needs the library);
  - `observe` of a note holding an AWS key fails as a tool error that names
    the library and says it cannot be loaded;
  - nothing was written: a second cortexd, with every library, finds no
    note by a word of that text.

A control run with every library records the same note with the key
redacted, so that the failures above are the library's doing.

Usage: missing-libs.py CORTEXD SQLITE_SONAME PCRE2_SONAME SODIUM_SONAME
(exit 77 when `unshare -rm` is not permitted here, e.g. no user namespaces)
"""
import ctypes
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

SECRET = "AKIA5NEHUOQIYE7OL66L"
WORD = "zanzibarquokka"  # a word no other note has
TEXT = f"The {WORD} deploy reads export AWS_ACCESS_KEY_ID={SECRET} from the env."
INIT = {"jsonrpc": "2.0", "id": "init", "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "missing-libs", "version": "1"}}}

failures = 0


def check(ok, what):
    global failures
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures += 1


def lib_path(soname):
    """The file the loader maps for soname (a symlink's target)."""
    ctypes.CDLL(soname)
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            if os.path.basename(path).startswith(soname):
                return os.path.realpath(path)
    return None


class Server:
    """cortexd over pipes; `hide` is a library file made empty for it."""

    def __init__(self, cortexd, ws, empty, hide=None):
        argv = [cortexd, "--workspace", ws]
        if hide:
            argv = ["unshare", "-rm", "sh", "-c",
                    'mount --bind "$1" "$2" && shift 2 && exec "$@"', "sh", empty, hide] + argv
        env = dict(os.environ, CORTEX_AUTHOR="missing-libs")
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env)
        self.buf = b""

    def call(self, msg, timeout=20.0):
        try:
            self.p.stdin.write((json.dumps(msg) + "\n").encode())
            self.p.stdin.flush()
        except BrokenPipeError:  # it exited: no answer
            return None
        deadline = time.monotonic() + timeout
        while True:  # bounded by the deadline
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                obj = json.loads(line)
                if obj.get("id") == msg["id"]:
                    return obj
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.p.stdout], [], [], left)[0]:
                return None
            chunk = os.read(self.p.stdout.fileno(), 65536)
            if not chunk:
                return None
            self.buf += chunk

    def tool(self, rid, name, args):
        r = self.call({"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                       "params": {"name": name, "arguments": args}})
        return (r or {}).get("result") or {}

    def close(self):
        try:
            self.p.stdin.close()
        except BrokenPipeError:
            pass
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        return self.p.stderr.read().decode(errors="replace")


def text_of(result):
    return " ".join(c.get("text", "") for c in result.get("content", []))


def run(cortexd, tmp, name, hide, want):
    ws = tempfile.mkdtemp(dir=tmp, prefix=name + "-")
    empty = os.path.join(tmp, "empty")
    s = Server(cortexd, ws, empty, hide)
    init = s.call(INIT)
    check(bool(init and init.get("result", {}).get("serverInfo")),
          f"{name}: initialize is answered")
    s.call({"jsonrpc": "2.0", "id": "ping", "method": "ping"})
    obs = s.tool("obs", "observe", {"text": TEXT})
    err = s.close()
    if want is None:
        sc = obs.get("structuredContent") or {}
        check(obs.get("isError") is False and sc.get("recorded") == 1,
              f"{name}: observe records the note")
        check((sc.get("redacted") or {}).get("count", 0) >= 1 and SECRET not in text_of(obs),
              f"{name}: the key is redacted ({sc.get('redacted')})")
    else:
        msg = text_of(obs)
        check(obs.get("isError") is True and all(w in msg for w in want),
              f"{name}: observe fails naming the library: {msg[:300]!r}")
        check("AddressSanitizer" not in err and "runtime error:" not in err,
              f"{name}: no sanitizer report")
    # what the store holds, read by a cortexd with every library
    s = Server(cortexd, ws, empty)
    s.call(INIT)
    found = s.tool("find", "search", {"query": WORD})
    s.close()
    n = len((found.get("structuredContent") or {}).get("results", []))
    body = json.dumps(found)
    if want is None:
        check(n == 1 and SECRET not in body, f"{name}: the note is found, without the key")
    else:
        check(n == 0 and SECRET not in body, f"{name}: nothing was written (found {n})")


def main():
    if len(sys.argv) != 5:
        print(__doc__)
        return 2
    cortexd, sqlite, pcre2, sodium = sys.argv[1:]
    if shutil.which("unshare") is None or subprocess.run(
            ["unshare", "-rm", "true"], capture_output=True).returncode != 0:
        print("unshare -rm is not permitted here, skipping")
        return 77
    with tempfile.TemporaryDirectory(prefix="cx-missing-libs-") as tmp:
        open(os.path.join(tmp, "empty"), "wb").close()
        run(cortexd, tmp, "control", None, None)
        run(cortexd, tmp, "no-sqlite", lib_path(sqlite),
            ["SQLite: cannot load " + sqlite])
        run(cortexd, tmp, "no-pcre2", lib_path(pcre2),
            ["secret redaction needs PCRE2", "cannot load " + pcre2])
        run(cortexd, tmp, "no-libsodium", lib_path(sodium),
            ["libsodium", "cannot load " + sodium])
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
