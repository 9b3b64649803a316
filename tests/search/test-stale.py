#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Staleness through cortexd, in a real git repository (issue 3).

An observation about src/parser.c is recorded with the file's blob id; when
the file changes afterwards, search, get and recent report the item stale
with the changed path, and it ranks below an equally good fresh item;
restoring the file makes it fresh again. Outside git nothing is stale.
Prints "N passed, N failed"; exits 1 on failure.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

CORTEXD = os.environ.get("CORTEXD")
passed = failed = 0


def check(ok, what, detail=""):
    global passed, failed
    passed += bool(ok)
    failed += not ok
    print(("ok      " if ok else "FAILED  ") + what + ("" if ok else " %s" % (detail,)))


class Cortexd:
    def __init__(self, ws):
        self.p = subprocess.Popen([CORTEXD, "--workspace", ws], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.n = 0
        self.req("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                "clientInfo": {"name": "stale-test", "version": "1"}})

    def req(self, method, params):
        self.n += 1
        self.p.stdin.write(json.dumps({"jsonrpc": "2.0", "id": self.n, "method": method,
                                       "params": params}) + "\n")
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())

    def call(self, tool, args):
        r = self.req("tools/call", {"name": tool, "arguments": args})["result"]
        assert not r.get("isError"), r
        return r["structuredContent"]

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=10)


def git(ws, *args):
    subprocess.run(["git", "-C", ws, "-c", "user.name=t", "-c", "user.email=t@x", *args],
                   check=True, capture_output=True)


def by_id(results, i):
    return next((r for r in results if r["id"] == i), None)


def main():
    ws = tempfile.mkdtemp(prefix="cortex-stale-")
    plain = tempfile.mkdtemp(prefix="cortex-plain-")
    d = None
    try:
        git(ws, "init", "-q")
        os.makedirs(os.path.join(ws, "src"))
        parser = os.path.join(ws, "src", "parser.c")
        with open(parser, "w") as f:
            f.write("int parse(const char *s) { return s[0]; }\n")
        with open(os.path.join(ws, "src", "lexer.c"), "w") as f:
            f.write("int lex(void) { return 0; }\n")
        git(ws, "add", ".")
        git(ws, "commit", "-q", "-m", "init")
        d = Cortexd(ws)
        a = d.call("observe", {"text": "parse() crashes on an empty config string",
                               "files": ["src/parser.c"]})["results"][0]["id"]
        b = d.call("observe", {"text": "lex() crashes on an empty config string too",
                               "files": ["src/lexer.c"]})["results"][0]["id"]
        got = d.call("get", {"ids": [a]})["items"][0]
        prov = got.get("provenance", {})
        blob = subprocess.run(["git", "-C", ws, "hash-object", "src/parser.c"],
                              capture_output=True, text=True).stdout.strip()
        check(prov.get("files") == [{"path": "src/parser.c", "blob": blob}],
              "the item records the file's git blob id", prov)
        check(got.get("stale") is False, "fresh right after recording", got.get("stale"))

        with open(parser, "a") as f:
            f.write("/* handle empty input */\n")
        res = d.call("search", {"query": "crashes on an empty config string"})
        ra, rb = by_id(res["results"], a), by_id(res["results"], b)
        check(ra and ra["stale"] is True and ra.get("changed") == ["src/parser.c"],
              "search marks the item stale, naming the changed file", ra)
        check(rb and "stale" not in rb and "changed" not in rb,
              "an item about an unchanged file stays fresh (the compact answer says nothing)", rb)
        check(ra and rb and res["results"].index(rb) < res["results"].index(ra),
              "the stale item ranks below the fresh one", [r["id"] for r in res["results"]])
        full = d.call("search", {"query": "crashes on an empty config string", "explain": True})
        fa, fb = by_id(full["results"], a), by_id(full["results"], b)
        check(fa and fa["stale"] is True and fa.get("changed") == ["src/parser.c"]
              and fa["why"]["stale"] is True and fa.get("provenance", {}).get("files"),
              "with explain the stale item carries why and its provenance", fa)
        check(fb and fb["stale"] is False and fb["why"]["stale"] is False,
              "with explain a fresh item says stale: false", fb)
        got = d.call("get", {"ids": [a]})["items"][0]
        check(got.get("stale") is True and got.get("changed") == ["src/parser.c"],
              "get reports it stale too", got.get("changed"))
        rec = by_id(d.call("recent", {})["items"], a)
        check(rec and rec.get("stale") is True, "and so does recent", rec)

        git(ws, "checkout", "--", "src/parser.c")
        got = d.call("get", {"ids": [a]})["items"][0]
        check(got.get("stale") is False, "restoring the file makes it fresh again", got.get("stale"))
        d.close()
        d = None

        d = Cortexd(plain)
        c = d.call("observe", {"text": "outside git nothing is stale", "files": ["x.c"]})
        got = d.call("get", {"ids": [c["results"][0]["id"]]})["items"][0]
        check(got.get("stale") is False and "provenance" not in got,
              "outside git an item has no provenance and is never stale", got)
    finally:
        if d:
            d.close()
        shutil.rmtree(ws, ignore_errors=True)
        shutil.rmtree(plain, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
