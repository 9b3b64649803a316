#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""End-to-end tests of the `cortex` command line, as a person uses it.

Runs the binary named by $CORTEX in fresh temporary git repositories and
checks what a user notices: exit statuses, what is printed where, that a
recorded observation can be found and shown, that approving a draft makes
it canon, that read commands create no state. Any sanitizer report on
stderr fails the check it happened in. Prints "N passed, M failed" and
exits non-zero when anything failed.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import traceback

from clilib import SANITIZER, Fail, Result, check

CORTEX = os.environ.get("CORTEX")
CORTEXD = os.environ.get("CORTEXD")
ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")

passed = 0
failed = 0



def base_env(home):
    env = {k: v for k, v in os.environ.items()
           if k not in ("CORTEX_WORKSPACE", "CORTEX_AUTHOR", "NO_COLOR", "GIT_DIR", "GIT_WORK_TREE")}
    env["CORTEX_AUTHOR"] = "tester"
    env["HOME"] = home
    env["GIT_CONFIG_NOSYSTEM"] = "1"
    env["LC_ALL"] = "C.UTF-8"
    return env


def cortex(*args, cwd, env, stdin=None, expect=None):
    p = subprocess.run([CORTEX] + list(args), cwd=cwd, env=env, input=stdin,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    r = Result(list(args), p.returncode,
               p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace"))
    r.raw = p.stdout
    check(not SANITIZER.search(r.err), "sanitizer report:\n%s" % r)
    if expect is not None:
        check(r.rc == expect, "expected exit %d:\n%s" % (expect, r))
    return r


def test(fn):
    """Runs one test in a fresh git repository (Workspace) and counts it."""
    global passed, failed
    tmp = tempfile.mkdtemp(prefix="cortex-cli-")
    try:
        ws = Workspace(tmp)
        fn(ws)
        passed += 1
        print("ok      %s" % fn.__name__)
    except Exception as e:  # a failing check or anything unexpected
        failed += 1
        print("FAILED  %s: %s" % (fn.__name__, e if isinstance(e, Fail) else traceback.format_exc()))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class Workspace:
    def __init__(self, tmp):
        self.tmp = tmp
        self.home = os.path.join(tmp, "home")
        self.root = os.path.realpath(os.path.join(tmp, "repo"))
        os.makedirs(self.home)
        os.makedirs(os.path.join(self.root, "src", "deep"))
        self.env = base_env(self.home)
        subprocess.run(["git", "-c", "init.defaultBranch=main", "init", "-q", self.root],
                       env=self.env, check=True)
        with open(os.path.join(self.root, "src", "main.c"), "w") as f:
            f.write("int main(void) { return 0; }\n")

    def run(self, *args, cwd=None, stdin=None, expect=None, env=None):
        return cortex(*args, cwd=cwd or self.root, env=env or self.env, stdin=stdin, expect=expect)

    def observe(self, *args, **kw):
        r = self.run("observe", *args, expect=0, **kw)
        first = r.out.split()[0] if r.out.split() else ""
        check(ULID.match(first), "observe did not print an id:\n%s" % r)
        return first

    def draft(self, title, body, *args):
        r = self.run("draft", "--title", title, body, *args, expect=0)
        id_ = r.out.strip()
        check(ULID.match(id_), "draft did not print an id:\n%s" % r)
        return id_

    def state_exists(self):
        return os.path.exists(os.path.join(self.root, ".cortex"))


# ---- the command line itself -------------------------------------------------

COMMANDS = ["search", "show", "observe", "draft", "review", "status", "reindex", "help"]


def version(ws):
    r = ws.run("--version", expect=0)
    check(r.out == "cortex 0.1.0\n", "unexpected version output:\n%s" % r)
    r = ws.run("-V", expect=0)  # as cortexd -V
    check(r.out == "cortex 0.1.0\n", "unexpected -V output:\n%s" % r)


def help_everywhere(ws):
    r = ws.run("--help", expect=0)
    check(r.out.startswith("Usage: cortex"), "no usage in --help:\n%s" % r)
    for word in COMMANDS + ["Exit status", "CORTEX_WORKSPACE", "CORTEX_AUTHOR", "NO_COLOR"]:
        check(word in r.out, "--help does not mention %s" % word)
    check(ws.run("help", expect=0).out == r.out, "'cortex help' differs from --help")
    search_line = [ln for ln in r.out.splitlines() if ln.strip().startswith("search QUERY")]
    check(search_line and "hybrid" in search_line[0] and "by keywords" not in r.out,
          "help does not say search is hybrid:\n%s" % r.out)
    check("-V, --version" in r.out, "help does not list -V:\n%s" % r.out)
    check(ws.run("-h", expect=0).out == r.out, "'cortex -h' differs from --help")
    for cmd in COMMANDS:
        a = ws.run(cmd, "--help", expect=0)
        check(a.out.startswith("Usage: cortex " + cmd), "'%s --help' is not its usage:\n%s" % (cmd, a))
        check("Exit status" in a.out, "'%s --help' does not document exit statuses" % cmd)
        check(a.err == "", "'%s --help' wrote to stderr:\n%s" % (cmd, a))
        b = ws.run("help", cmd, expect=0)
        check(a.out == b.out, "'help %s' differs from '%s --help'" % (cmd, cmd))
        c = ws.run("--help", cmd, expect=0)
        check(a.out == c.out, "'--help %s' differs from '%s --help'" % (cmd, cmd))
    # help works even in a subcommand position, and creates nothing
    ws.run("review", "approve", "--help", expect=0)
    check(not ws.state_exists(), "--help created .cortex")


def usage_errors(ws):
    r = ws.run(expect=2)
    check("Usage: cortex" in r.err and r.out == "", "bare 'cortex' should print usage on stderr:\n%s" % r)
    r = ws.run("frobnicate", expect=2)
    check(r.err.startswith("cortex: ") and "unknown command 'frobnicate'" in r.err, str(r))
    check("cortex help" in r.err, "no usage hint:\n%s" % r)
    r = ws.run("search", "x", "--bogus", expect=2)
    check(r.err.startswith("cortex: ") and "--bogus" in r.err and "cortex search --help" in r.err, str(r))
    r = ws.run("--bogus=1", "status", expect=2)
    check("--bogus" in r.err, str(r))
    r = ws.run("status", "--limit", "3", expect=2)
    check("does not apply" in r.err, str(r))
    r = ws.run("search", "x", "--limit", expect=2)
    check("needs a value" in r.err, str(r))
    r = ws.run("search", "x", "--json=yes", expect=2)
    check("takes no value" in r.err, str(r))
    for bad in ("0", "51", "ten", "5x", "-3", ""):
        ws.run("search", "x", "--limit", bad, expect=2)
    r = ws.run("search", "x", "--kind", "nonsense", expect=2)
    check("unknown kind" in r.err, str(r))
    ws.run("search", expect=2)
    ws.run("show", expect=2)
    ws.run("observe", expect=2)
    ws.run("observe", "   ", expect=2)
    ws.run("review", expect=2)
    ws.run("review", "frob", expect=2)
    ws.run("help", "frob", expect=2)
    check(not ws.state_exists(), "usage errors created .cortex")


# ---- reads before there is any memory ----------------------------------------

def reads_create_nothing(ws):
    for args in (["search", "anything"], ["show", "01J00000000000000000000000"], ["review", "list"]):
        r = ws.run(*args, expect=3)
        check("no Cortex memory in %s yet" % ws.root in r.err, "unclear message:\n%s" % r)
        check(r.out == "", "stdout should be empty:\n%s" % r)
    r = ws.run("status", expect=0)
    check(ws.root in r.out and "none yet" in r.out and "no upstream configured" in r.out, str(r))
    # status and doctor give the same advice for a workspace without memory
    check("run: cortex start" in r.out, "status does not say 'run: cortex start':\n%s" % r)
    d = ws.run("doctor")
    check("fix: run: cortex start" in d.out, "doctor does not say 'run: cortex start':\n%s" % d)
    j = ws.run("status", "--json", expect=0).json()
    check(j["initialized"] is False and j["workspace"] == ws.root, "status --json: %r" % j)
    check(not ws.state_exists(), "a read command created .cortex")


def bad_workspace(ws):
    missing = os.path.join(ws.tmp, "nope")
    r = ws.run("--workspace", missing, "status", expect=3)
    check("does not exist" in r.err, str(r))
    env = dict(ws.env, CORTEX_WORKSPACE=missing)
    ws.run("observe", "x", env=env, expect=3)


# ---- writing and reading -----------------------------------------------------

def observe_search_show(ws):
    text = "The arm64 build needs libfrobnitz 2.3 or newer; 2.2 segfaults in frob_init."
    id_ = ws.observe(text, "--title", "libfrobnitz version", "--tag", "build", "--tag", "arm64")
    check(ws.state_exists(), "observe did not create .cortex")
    st = subprocess.run(["git", "status", "--porcelain", "--ignored=no"], cwd=ws.root, env=ws.env,
                        stdout=subprocess.PIPE, check=True).stdout.decode()
    check(".cortex" not in st, "git status shows .cortex:\n%s" % st)

    r = ws.run("search", "libfrobnitz", expect=0)
    check(id_ in r.out and "libfrobnitz version" in r.out, "search did not show the item:\n%s" % r)
    check("\x1b" not in r.out, "colour codes on a pipe:\n%r" % r.out)
    check("observation" in r.out, "search does not show the kind:\n%s" % r)

    j = ws.run("search", "libfrobnitz", "--json", expect=0).json()
    check(j["count"] >= 1 and j["results"][0]["id"] == id_, "search --json: %r" % j)
    j2 = ws.run("--json", "search", "libfrobnitz", expect=0).json()
    check(j2["results"][0]["id"] == id_, "--json before the command differs")

    ws.run("search", "libfrobnitz", "--tag", "build", "--tag", "arm64", expect=0)
    ws.run("search", "libfrobnitz", "--kind", "thread", expect=1)
    r = ws.run("search", "zyxwvutsrq", expect=1)
    check("No results" in r.out, str(r))
    j = ws.run("search", "zyxwvutsrq", "--json", expect=1).json()
    check(j["count"] == 0 and j["results"] == [], "empty search --json: %r" % j)

    r = ws.run("show", id_, expect=0)
    for want in (id_, "libfrobnitz version", "segfaults", "build", "arm64", "tester"):
        check(want in r.out, "show lacks %r:\n%s" % (want, r))
    r = ws.run("show", id_.lower(), expect=0)
    check(id_ in r.out, "ids should be case-insensitive:\n%s" % r)
    item = ws.run("show", id_, "--json", expect=0).json()
    check(item["id"] == id_ and item["kind"] == "observation" and item["status"] == "recorded", repr(item))
    check(item["body"] == text and item["title"] == "libfrobnitz version", repr(item))
    check(item["tags"] == ["arm64", "build"], "tags: %r" % item["tags"])
    check(item["author"] == "tester" and item["agent"] == "cortex-cli", "author: %r" % item)


def observe_repeat(ws):
    a = ws.observe("ccache must be off for the release build")
    r = ws.run("observe", "ccache  must be off for the   release build", expect=0)
    check(r.out.strip() == a + " (already recorded)", "repeat not reported:\n%s" % r)
    j = ws.run("observe", "ccache must be off for the release build", "--json", expect=0).json()
    check(j["results"][0]["id"] == a and j["results"][0]["repeat"] is True, repr(j))


def observe_stdin_and_words(ws):
    body = "Line one about the wombat cache.\n\n```\ncode block stays\n```\n"
    id_ = ws.observe("-", stdin=body.encode())
    item = ws.run("show", id_, "--json", expect=0).json()
    check(item["body"].startswith("Line one about the wombat cache."), repr(item["body"]))
    id2 = ws.observe("several", "words", "joined", "quokka")
    item = ws.run("show", id2, "--json", expect=0).json()
    check(item["body"] == "several words joined quokka", repr(item["body"]))
    r = ws.run("observe", "-", stdin=b"x" * (256 * 1024 + 1), expect=2)
    check("256 KiB" in r.err, str(r))
    ws.run("observe", "-", stdin=b"  \n ", expect=2)
    # values the store refuses are usage errors, and nothing is recorded
    tags = []
    for i in range(17):
        tags += ["--tag", "t%d" % i]
    r = ws.run("observe", "too many tags for the quoll", *tags, expect=2)
    check(r.err.startswith("cortex: "), str(r))
    ws.run("observe", "a title far too long", "--title", "x" * 300, expect=2)
    # nothing holds "quoll": keyword search, which finds every recorded
    # word (semantic search may rank "quokka" above its floor: a near word,
    # not a record of the refused notes)
    ws.run("search", "quoll", "--mode", "keyword", expect=1)
    # -- ends options: text may start with a dash
    id3 = ws.observe("--", "--verbose flag breaks the numbat tool")
    item = ws.run("show", id3, "--json", expect=0).json()
    check(item["body"] == "--verbose flag breaks the numbat tool", repr(item["body"]))


def observe_files_and_subdir(ws):
    sub = os.path.join(ws.root, "src", "deep")
    id_ = ws.observe("main returns zero always, see the platypus note", "--file", "../main.c", cwd=sub)
    item = ws.run("show", id_, "--json", cwd=sub, expect=0).json()
    files = [f if isinstance(f, str) else f.get("path") for f in item.get("files", [])]
    check(files == ["src/main.c"], "files: %r" % item.get("files"))
    r = ws.run("show", id_, cwd=sub, expect=0)
    check("src/main.c" in r.out, "show does not list the file:\n%s" % r)
    outside = os.path.join(ws.tmp, "outside.txt")
    with open(outside, "w") as f:
        f.write("x")
    r = ws.run("observe", "about a file outside", "--file", outside, expect=2)
    check("outside the workspace" in r.err, str(r))
    r = ws.run("observe", "about a missing file", "--file", "src/none.c", expect=2)
    check("no such file" in r.err, str(r))
    check(not os.path.exists(os.path.join(sub, ".cortex")), "state created in a subdirectory")


def observe_private(ws):
    id_ = ws.observe("my local echidna scratch note", "--private", "--subcortex", "scratch")
    item = ws.run("show", id_, "--json", expect=0).json()
    check(item["visibility"] == "private" and item["subcortex"] == "scratch", repr(item))
    item = ws.run("show", ws.observe("shared wallaby note"), "--json", expect=0).json()
    check(item["visibility"] == "shared" and item["subcortex"] == "general", repr(item))


def workspace_selection(ws):
    id_ = ws.observe("the kookaburra service listens on 8443")
    elsewhere = os.path.join(ws.tmp, "home")
    r = ws.run("--workspace", ws.root, "search", "kookaburra", cwd=elsewhere, expect=0)
    check(id_ in r.out, str(r))
    r = ws.run("search", "kookaburra", "--workspace=" + ws.root, cwd=elsewhere, expect=0)
    check(id_ in r.out, str(r))
    env = dict(ws.env, CORTEX_WORKSPACE=ws.root)
    r = ws.run("search", "kookaburra", cwd=elsewhere, env=env, expect=0)
    check(id_ in r.out, str(r))
    # a directory outside any repository is its own workspace, still empty
    ws.run("search", "kookaburra", cwd=elsewhere, expect=3)


def show_unknown_and_many(ws):
    a = ws.observe("first dingo fact")
    b = ws.observe("second dingo fact")
    r = ws.run("show", "01J00000000000000000000000", expect=1)
    check(r.err.startswith("cortex: ") and "01J00000000000000000000000" in r.err, str(r))
    r = ws.run("show", "not-an-id", expect=1)
    check("not-an-id" in r.err, str(r))
    r = ws.run("show", a, "01J00000000000000000000000", b, expect=1)
    check(a in r.out and b in r.out, "the known items should still be shown:\n%s" % r)
    arr = ws.run("show", a, b, "--json", expect=0).json()
    check(isinstance(arr, list) and [x["id"] for x in arr] == [a, b], repr(arr))
    r = ws.run("show", a, "--content", expect=1)
    check("not an artifact" in r.err, str(r))
    ws.run("show", a, b, "--content", expect=2)
    ws.run("show", a, "--content", "--json", expect=2)


def terminal_safety(ws):
    id_ = ws.observe("-", stdin=b"evil \x1b[2J\x1b]0;pwned\x07 text about the bilby\xc2\x9b31m")
    r = ws.run("show", id_, expect=0)
    check("\x1b" not in r.out and "\x07" not in r.out, "control characters reached the terminal:\n%r" % r.out)
    r = ws.run("search", "bilby", expect=0)
    check("\x1b" not in r.out, "control characters in search output:\n%r" % r.out)


def git(ws, *args):
    subprocess.run(["git", "-c", "user.name=T", "-c", "user.email=t@example.com"] + list(args),
                   cwd=ws.root, env=ws.env, check=True, stdout=subprocess.DEVNULL)


def stale_marks(ws):
    """An item whose file changed since it was recorded is marked stale, with
    the changed path, in plain search and show as in --json (and MCP)."""
    git(ws, "add", "src/main.c")
    git(ws, "commit", "-q", "-m", "first")
    id_ = ws.observe("main returns zero for the bandicoot check", "--file", "src/main.c")
    fresh = ws.observe("the bandicoot daemon has no files")
    r = ws.run("search", "bandicoot", expect=0)
    check("stale" not in r.out and "changed since" not in r.out, "stale before any change:\n%s" % r)
    with open(os.path.join(ws.root, "src", "main.c"), "w") as f:
        f.write("int main(void) { return 1; }\n")
    git(ws, "commit", "-q", "-am", "main returns 1")
    j = ws.run("search", "bandicoot", "--json", expect=0).json()
    byid = {x["id"]: x for x in j["results"]}
    check(byid[id_].get("stale") is True and byid[id_].get("changed") == ["src/main.c"],
          "search --json: %r" % byid.get(id_))
    r = ws.run("search", "bandicoot", expect=0)
    blocks = r.out.split("\n\n")
    mine = [b for b in blocks if id_ in b]
    other = [b for b in blocks if fresh in b]
    check(mine and "stale" in mine[0].splitlines()[0], "search marks the item stale:\n%s" % r)
    check(mine and "changed since recorded: src/main.c" in mine[0],
          "search names the changed path:\n%s" % r)
    check(other and "stale" not in other[0] and "changed since" not in other[0],
          "an item without files is not stale:\n%s" % r)
    r = ws.run("show", id_, expect=0)
    check("stale" in r.out.splitlines()[0], "show marks the item stale:\n%s" % r)
    check("changed since recorded: src/main.c" in r.out, "show names the changed path:\n%s" % r)
    item = ws.run("show", id_, "--json", expect=0).json()
    check(item.get("stale") is True and item.get("changed") == ["src/main.c"],
          "show --json: %r" % item)
    r = ws.run("show", fresh, expect=0)
    check("stale" not in r.out, "show marks a fresh item stale:\n%s" % r)


# ---- review --------------------------------------------------------------------

def review_approve(ws):
    ev = ws.observe("ninja is faster than make for the cassowary build")
    d = ws.draft("Use ninja", "Build with ninja -C build; make is not supported.",
                 "--tag", "build", "--evidence", ev)
    item = ws.run("show", d, "--json", expect=0).json()
    check(item["kind"] == "draft" and item["status"] == "pending", repr(item))
    r = ws.run("review", "list", expect=0)
    check(d in r.out and "Use ninja" in r.out and "pending" in r.out, str(r))
    j = ws.run("review", "list", "--json", expect=0).json()
    check(j["count"] == 1 and j["drafts"][0]["id"] == d, repr(j))

    r = ws.run("review", "approve", d, "--note", "agreed", expect=0)
    check(d in r.out and "canon" in r.out, str(r))
    item = ws.run("show", d, "--json", expect=0).json()
    check(item["id"] == d and item["kind"] == "thread" and item["status"] == "canon", repr(item))
    check(item.get("review", {}).get("reviewer") == "tester", "reviewer: %r" % item.get("review"))
    r = ws.run("show", d, expect=0)
    check("thread" in r.out and "canon" in r.out and "approved" in r.out, str(r))
    r = ws.run("search", "ninja", "--kind", "thread", expect=0)
    check(d in r.out, str(r))
    r = ws.run("review", "list", expect=0)
    check("No drafts awaiting review" in r.out, str(r))
    # approving again is refused, not an error of the tool
    r = ws.run("review", "approve", d, expect=1)
    check(r.err.startswith("cortex: "), str(r))
    r = ws.run("review", "approve", "01J00000000000000000000000", expect=1)
    check("01J00000000000000000000000" in r.err, str(r))
    ws.run("review", "approve", expect=2)
    ws.run("review", "approve", d, d, expect=2)
    ws.run("review", "approve", d, "--reason", "x", expect=2)
    # the help says what is sent and who is recorded
    h = ws.run("review", "--help", expect=0).out
    check("redacted" in h and "name of the key" in h and "CORTEX_AUTHOR" in h
          and "4xx" in h, "review --help on notes, reviewer and exit statuses:\n%s" % h)


def review_reject_and_changes(ws):
    d = ws.draft("Vendor everything", "Check all dependencies into third_party/.")
    r = ws.run("review", "reject", d, expect=2)
    check("--reason" in r.err and "cortex review --help" in r.err, "unclear usage error:\n%s" % r)
    ws.run("review", "reject", d, "--reason", "  ", expect=2)
    ws.run("review", "reject", d, "--note", "x", expect=2)
    item = ws.run("show", d, "--json", expect=0).json()
    check(item["status"] == "pending", "a refused command changed the draft: %r" % item)
    ws.run("review", "reject", d, "--reason", "we use the package manager", expect=0)
    item = ws.run("show", d, "--json", expect=0).json()
    check(item["kind"] == "draft" and item["status"] == "rejected", repr(item))
    check(item["review"]["reason"] == "we use the package manager", repr(item["review"]))
    ws.run("review", "approve", d, expect=1)

    d2 = ws.draft("Cache keys", "Key the cache on the compiler version.")
    ws.run("review", "request-changes", d2, expect=2)
    j = ws.run("review", "request-changes", d2, "--reason", "say which compilers", "--json", expect=0).json()
    check(j["id"] == d2 and j["status"] == "changes_requested", repr(j))
    r = ws.run("review", "list", expect=0)
    check(d2 in r.out and d not in r.out, str(r))
    ws.run("review", "reject", "01J00000000000000000000000", "--reason", "x", expect=1)
    ws.run("draft", "no title here", expect=2)


# ---- artifacts (published by an agent through cortexd) ----------------------

def mcp_result(ws, tool, arguments):
    """Calls one tool over MCP with cortexd: its result (maybe isError)."""
    check(CORTEXD and os.access(CORTEXD, os.X_OK), "CORTEXD must name the cortexd executable")
    msgs = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize",
         "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                    "clientInfo": {"name": "cli-test", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
         "params": {"name": tool, "arguments": arguments}},
    ]
    p = subprocess.run([CORTEXD, "--workspace", ws.root], cwd=ws.root, env=ws.env,
                       input="".join(json.dumps(m) + "\n" for m in msgs).encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    for line in p.stdout.decode().splitlines():
        msg = json.loads(line)
        if msg.get("id") == 2:
            return msg.get("result") or {"isError": True, "error": msg.get("error")}
    raise Fail("cortexd gave no answer to %s:\n%s" % (tool, p.stderr.decode()))


def one_text_limit(ws):
    """An observation's text has one limit, 256 KiB, for the CLI and for an
    agent's observe tool (it was 64 Ki characters over MCP)."""
    big = "the potoroo text " + "x" * (200 * 1024)
    res = mcp_result(ws, "observe", {"text": big})
    check(not res.get("isError"), "MCP observe refuses 200 KiB: %r" % str(res)[:300])
    res = mcp_result(ws, "observe", {"text": "y" * (256 * 1024 + 1)})
    check(res.get("isError") and "262144" in json.dumps(res),
          "MCP observe takes more than 256 KiB: %r" % str(res)[:300])
    ws.run("observe", "-", stdin=("the numbat text " + "z" * (200 * 1024)).encode(), expect=0)
    r = ws.run("observe", "-", stdin=b"w" * (256 * 1024 + 1), expect=2)
    check("256 KiB" in r.err, str(r))
    r = ws.run("observe", "--help", expect=0)
    check("256 KiB" in r.out and "observe tool" in r.out, "observe --help states the limit:\n%s" % r)
    p = subprocess.run([CORTEXD, "--help"], capture_output=True, env=ws.env, timeout=30)
    check(p.returncode == 0 and b"256 KiB" in p.stdout + p.stderr,
          "cortexd --help states the limit: %r" % (p.stdout + p.stderr))


def mcp_tool(ws, tool, arguments):
    """Calls one tool the way an agent does, over MCP with cortexd, and
    returns its structuredContent."""
    res = mcp_result(ws, tool, arguments)
    check(not res.get("isError"), "%s failed: %r" % (tool, res))
    return res["structuredContent"]


def agent_items_show(ws):
    """Artifacts and comments come from agents; show must render them."""
    content2 = "1. tag\n2. build\n3. announce \u00e9\n"
    a = mcp_tool(ws, "publish", {"name": "release-checklist.md", "content": "1. tag\n2. build\n"})["artifact_id"]
    b = mcp_tool(ws, "publish", {"name": "release-checklist.md", "content": content2})["artifact_id"]
    check(a == b, "a second version made a second artifact: %s %s" % (a, b))
    r = ws.run("show", a, "--content", expect=0)
    check(r.raw == content2.encode(), "content: %r" % r.raw)
    r = ws.run("show", a, expect=0)
    check("artifact" in r.out and "Versions (2)" in r.out and "v2" in r.out, str(r))
    item = ws.run("show", a, "--json", expect=0).json()
    check(item["kind"] == "artifact" and len(item["versions"]) == 2, repr(item))

    d = ws.draft("Pin the toolchain", "Pin gcc 13 in CI.")
    mcp_tool(ws, "comment", {"target_id": d, "body": "Also pin the galah linker version."})
    r = ws.run("show", d, expect=0)
    check("Comments (1)" in r.out and "galah linker" in r.out and "cli-test" in r.out, str(r))
    item = ws.run("show", d, "--json", expect=0).json()
    check(len(item["comments"]) == 1, repr(item))


def status_counts(ws):
    ws.observe("one wombat")
    ws.observe("two wombats")
    d = ws.draft("A wombat draft", "wombats dig")
    ws.draft("Another wombat draft", "wombats sleep")
    ws.run("review", "approve", d, expect=0)
    j = ws.run("status", "--json", expect=0).json()
    check(j["initialized"] is True and j["workspace"] == ws.root, repr(j))
    check(j["state_dir"] == os.path.join(ws.root, ".cortex"), repr(j))
    check(j["items"]["observation"] == 2 and j["items"]["draft"] == 1 and j["items"]["thread"] == 1,
          "counts: %r" % j["items"])
    check(j["drafts_pending"] == 1, repr(j))
    check(j["sync"]["upstream"] is None, repr(j))
    r = ws.run("status", expect=0)
    for want in (ws.root, os.path.join(ws.root, ".cortex"), "2 observations", "1 draft awaiting review",
                 "no upstream configured", "outbox"):
        check(want in r.out, "status lacks %r:\n%s" % (want, r))
    # without an upstream nothing waits to be pushed: the count is local only
    outbox = [ln for ln in r.out.splitlines() if ln.startswith("outbox")]
    check(outbox and "waiting to be pushed" not in outbox[0] and "recorded locally" in outbox[0]
          and "no upstream" in outbox[0], "status's outbox line without an upstream:\n%s" % r)


def reindex_and_modes(ws):
    ws.run("reindex", expect=3)  # nothing recorded yet: nothing created
    check(not ws.state_exists(), "reindex created .cortex")
    ws.observe("The invoice exporter crashes when the currency code is empty")
    ws.observe("Retry the ledger sync after a 503 from the bank gateway")
    r = ws.run("reindex", expect=0)
    check("Reindexed" in r.out, "reindex did not say it finished:\n%s" % r)
    check("built-in vectors: 2/2 (100%)" in r.err, "reindex showed no progress:\n%s" % r)
    j = ws.run("--json", "reindex", expect=0).json()
    check(j.get("reindexed") is True, repr(j))
    for mode in ("hybrid", "keyword", "semantic"):
        j = ws.run("--json", "search", "invoice", "exporter", "--mode", mode, expect=0).json()
        check(j.get("mode") == mode, "search --mode %s answered %r" % (mode, j.get("mode")))
    # typos two edits away: no keyword matches, but the vectors find the
    # item (typos whose stems are no stems of the note's words)
    ws.run("search", "eksporter", "crashhhes", "--mode", "keyword", expect=1)
    ws.run("search", "exporter", "crashs", "--mode", "keyword", expect=0)  # word forms
    j = ws.run("--json", "search", "eksporter", "crashhhes", expect=0).json()
    check(j["results"] and "exporter crashes" in j["results"][0]["snippet"]
          and j["results"][0]["why"]["lists"] == ["semantic"] and "corrected" not in j,
          "hybrid search missed a typo: %r" % j["results"][:1])
    # one edit away: keyword search corrects them and says so
    r = ws.run("search", "exportr", "crashhs", "--mode", "keyword", expect=0)
    check("corrected: exportr \u2192 exporter" in r.out and "corrected: crashhs \u2192 crashes" in r.out
          and "exporter crashes" in r.out.replace("\u00ab", "").replace("\u00bb", ""),
          "keyword search did not correct the typos:\n%s" % r)
    j = ws.run("--json", "search", "exportr", "crashhs", "--mode", "keyword", expect=0).json()
    check(j.get("corrected") == {"exportr": "exporter", "crashhs": "crashes"}
          and "exporter crashes" in j["results"][0]["snippet"].replace("\u00ab", "").replace("\u00bb", ""),
          "search --json: corrected %r" % j.get("corrected"))
    r = ws.run("search", "invoice", "exporter", "--mode", "keyword", expect=0)
    check("corrected" not in r.out, "a correct query was corrected:\n%s" % r)
    ws.run("search", "x", "--mode", "fuzzy", expect=2)


def typo_correction(ws):
    """Typo correction through the CLI: the word as typed ranks above its
    correction, the answer says what was corrected, a correct rare word
    is left alone, hostile queries are answered or refused, never fail."""
    exact = ws.observe("A pasre step appears in the legacy build script.")
    parse = [ws.observe("Note %d: parse the header of frame %d first." % (i, i)) for i in range(11)]
    rare = ws.observe("The zygote cache is warmed at boot.")
    j = ws.run("--json", "search", "pasre", "--mode", "keyword", "--limit", "20", expect=0).json()
    ids = [r["id"] for r in j["results"]]
    check(ids and ids[0] == exact and set(parse) <= set(ids[1:]),
          "the exact match should rank first, its corrections after: %r" % ids)
    check(j.get("corrected") == {"pasre": "parse"}, "corrected: %r" % j.get("corrected"))
    r = ws.run("search", "pasre", "--mode", "keyword", expect=0)
    check(r.out.startswith("corrected: pasre \u2192 parse\n"), "plain output:\n%s" % r)
    j = ws.run("--json", "search", "zygote", expect=0).json()
    check(j["results"][0]["id"] == rare and "corrected" not in j, "a rare word was corrected: %r" % j)
    # hostile: as many misspelt words as a query may hold, 64-byte words,
    # non-ASCII and FTS5 syntax are answered; a longer query is refused
    for q in (" ".join(["pasre", "deadlokc", "conectoin"] * 100)[:2000],
              "a" * 64 + " " + "b" * 70, "pa\"sre* :^ NEAR(pasre conf) \"pasre OR -pasre ^pasre",
              "\u043f\u0430\u0441\u0440\u0435 \u00fcn\u00efc\u00f6d\u00e9 pasr\u00e9 \u8fde\u63a5 pasre"):
        r = ws.run("search", q)
        check(r.rc in (0, 1) and not r.err.strip(), "hostile query %r: %s" % (q[:40], r))
    r = ws.run("search", "pasre " * 400, expect=2)
    check("longer than" in r.err, str(r))


def reindex_interrupted(ws):
    """Ctrl-C during a reindex stops it with the shell's status for SIGINT
    (130, as cortex(1) says), not 3 (a store error); the next one finishes."""
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda sigma".split()
    for b in range(8):
        obs = [{"text": " ".join(words[(i * 7 + k * 3 + b) % len(words)] for k in range(20))
                + " lyrebird %d-%d" % (b, i)} for i in range(500)]
        res = mcp_tool(ws, "observe", {"observations": obs})
        check(len(res.get("results", [])) == 500, "a batch of 500 recorded: %r" % list(res)[:5])
    # SIGINT once the first progress line is out (10% of 4000 items); a run
    # that finished before the signal arrived is tried again
    for attempt in range(5):
        p = subprocess.Popen([CORTEX, "reindex"], cwd=ws.root, env=ws.env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        first = p.stderr.readline().decode()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
        err = first + err.decode()
        check(not SANITIZER.search(err), "sanitizer report:\n%s" % err)
        if p.returncode == 0 and "Reindexed" in out.decode():
            continue
        check(p.returncode == 130, "Ctrl-C during reindex exits 130: %d\n%s" % (p.returncode, err))
        check("stopped" in err and "run cortex reindex again" in err, "says it stopped:\n%s" % err)
        break
    else:
        raise Fail("every reindex finished before SIGINT reached it")
    r = ws.run("reindex", expect=0)
    check("Reindexed" in r.out and "4000/4000 (100%)" in r.err, "the next reindex finishes:\n%s" % r)


def main():
    if not CORTEX or not os.access(CORTEX, os.X_OK):
        print("CORTEX must name the cortex executable")
        return 2
    if shutil.which("git") is None:
        print("git is required")
        return 2
    for t in (version, help_everywhere, usage_errors, reads_create_nothing, bad_workspace,
              observe_search_show, observe_repeat, observe_stdin_and_words, observe_files_and_subdir,
              observe_private, workspace_selection, show_unknown_and_many, terminal_safety, stale_marks,
              review_approve, review_reject_and_changes, agent_items_show, status_counts,
              reindex_and_modes, typo_correction, reindex_interrupted, one_text_limit):
        test(t)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
