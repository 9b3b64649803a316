#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""`cortex hook session-start` and `cortex hook stop`, end to end.

In a real temporary git repository: canon made with `cortex draft` and
`cortex review approve`, an item gone stale (its file changed after it was
recorded), pending drafts of this user and of someone else. session-start,
fed the recorded Claude Code payload (fixtures/hooks/, with `cwd` pointed
into the repository), must print exactly Claude Code's SessionStart JSON
with those sections within the token budget; stop must turn the session's
shared observations into one digest draft, revise it at the next stop,
start a new one once it was decided, and do nothing when nothing is new.
Bad input of every kind exits 0 (2 for an unknown event) with one line on
stderr. Each hook run is timed and the figures are printed, not asserted.

Hooks run through `cortex hook` when $CORTEX has that command, else through
$HOOK_DRIVER (tests/hooks/hook-driver.c, which calls cx_hook_run() as the
CLI does, and lets budgets below the CLI's minimum of 50 tokens be tried;
HOOK_VIA=driver forces it). Prints "N passed, N failed"; exits 1 on failure.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

def _path(var):
    v = os.environ.get(var)
    return os.path.abspath(v) if v else None


CORTEX = _path("CORTEX")
CORTEXD = _path("CORTEXD")
DRIVER = _path("HOOK_DRIVER")
FIXTURES = os.environ.get("FIXTURES") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures", "hooks")
ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
SANITIZER = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:")

passed = failed = 0
timings = []  # (event, seconds)
use_cli = False


def check(ok, what, detail=""):
    global passed, failed
    passed += bool(ok)
    failed += not ok
    print(("ok      " if ok else "FAILED  ") + what + ("" if ok else "\n        %s" % (detail,)))
    return ok


def fixture(name, **changes):
    with open(os.path.join(FIXTURES, name)) as f:
        p = json.load(f)
    p.update(changes)
    return p


class Run:
    def __init__(self, rc, out, err, secs):
        self.rc, self.out, self.err, self.secs = rc, out, err, secs

    def __repr__(self):
        return "rc=%d\n--- stdout\n%s--- stderr\n%s" % (self.rc, self.out, self.err)


class Workspace:
    def __init__(self, tmp, store=True):
        self.home = os.path.join(tmp, "home")
        self.root = os.path.realpath(os.path.join(tmp, "repo"))
        os.makedirs(self.home)
        os.makedirs(os.path.join(self.root, "src"))
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("CORTEX_WORKSPACE", "CORTEX_AUTHOR", "CLAUDE_PROJECT_DIR",
                                 "CORTEX_HOOK_VERBOSE", "GIT_DIR", "GIT_WORK_TREE")}
        self.env.update(CORTEX_AUTHOR="tester", HOME=self.home, GIT_CONFIG_NOSYSTEM="1",
                        LC_ALL="C.UTF-8")
        self.git("-c", "init.defaultBranch=main", "init", "-q", ".")
        self.write("src/parser.c", "int parse(const char *s) { return s[0]; }\n")
        self.write("src/lexer.c", "int lex(void) { return 0; }\n")
        self.write("README", "hello\n")
        self.git("add", ".")
        self.git("commit", "-q", "-m", "init")

    def git(self, *args):
        subprocess.run(["git", "-C", self.root, "-c", "user.name=t", "-c", "user.email=t@x", *args],
                       env=self.env, check=True, capture_output=True)

    def write(self, rel, text, mode="w"):
        with open(os.path.join(self.root, rel), mode) as f:
            f.write(text)

    def cortex(self, *args, author=None, stdin=None):
        env = dict(self.env)
        if author:
            env["CORTEX_AUTHOR"] = author
        p = subprocess.run([CORTEX, *args], cwd=self.root, env=env, input=stdin,
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0 or SANITIZER.search(p.stderr):
            raise RuntimeError("cortex %s -> %d\n%s%s" % (" ".join(args), p.returncode, p.stdout,
                                                        p.stderr))
        return p.stdout

    def observe(self, text, *args, author=None):
        out = self.cortex("observe", text, *args, author=author)
        i = out.split()[0]
        assert ULID.match(i), out
        return i

    def draft(self, title, body, *args, author=None):
        i = self.cortex("draft", "--title", title, body, *args, author=author).strip()
        assert ULID.match(i), i
        return i

    def show(self, i):
        return json.loads(self.cortex("show", i, "--json"))

    def review_list(self):
        return json.loads(self.cortex("review", "list", "--json"))["drafts"]

    def hook(self, event, payload=None, workspace=None, max_tokens=None, raw=None, env=None,
             cwd=None):
        if use_cli:
            cmd = [CORTEX, "hook", event]
            if workspace is not None:
                cmd += ["--workspace", workspace]
            if max_tokens is not None:
                cmd += ["--max-tokens", str(max_tokens)]
        else:
            cmd = [DRIVER, event, workspace or ""]
            if max_tokens is not None:
                cmd.append(str(max_tokens))
        data = raw if raw is not None else (json.dumps(payload).encode() if payload else b"")
        e = dict(self.env)
        e.update(env or {})
        t0 = time.monotonic()
        p = subprocess.run(cmd, cwd=cwd or self.home, env=e, input=data, capture_output=True,
                           timeout=60)
        secs = time.monotonic() - t0
        timings.append((event, secs))
        r = Run(p.returncode, p.stdout.decode("utf-8", "strict"),
                p.stderr.decode("utf-8", "replace"), secs)
        if SANITIZER.search(r.err):
            check(False, "no sanitizer report from hook %s" % event, r)
        return r


def session_file(ws, sid):
    """A session's state file: named by a sha-256 prefix of its (redacted)
    id, never by the id itself."""
    name = "s-" + hashlib.sha256(sid.encode()).hexdigest()[:32] + ".json"
    return os.path.join(ws.root, ".cortex", "sessions", name)


def briefing(r):
    """The additionalContext of a session-start answer, checking its shape."""
    try:
        doc = json.loads(r.out)
    except ValueError as e:
        check(False, "session-start prints one JSON document", "%s\n%r" % (e, r))
        return None
    ok = (isinstance(doc, dict) and list(doc) == ["hookSpecificOutput"]
          and isinstance(doc["hookSpecificOutput"], dict)
          and sorted(doc["hookSpecificOutput"]) == ["additionalContext", "hookEventName"]
          and doc["hookSpecificOutput"]["hookEventName"] == "SessionStart"
          and isinstance(doc["hookSpecificOutput"]["additionalContext"], str))
    check(ok, "the answer is exactly {hookSpecificOutput:{hookEventName, additionalContext}}", doc)
    return doc["hookSpecificOutput"]["additionalContext"] if ok else None


def section(md, name):
    """The lines of markdown section `## name`, or None."""
    m = re.search(r"^## %s\n(.*?)(?=^## |\Z)" % re.escape(name), md, re.M | re.S)
    return m.group(1) if m else None


def digests(ws):
    return [d for d in ws.review_list() if "session-digest" in d.get("tags", [])]


def test_session_start(ws, sid):
    # canon in the workspace's subcortex (general), and in another one
    canon = ws.draft("Build with meson and ninja", "Run meson setup build, then ninja -C build.",
                     "--tag", "build")
    ws.cortex("review", "approve", canon)
    accent = ws.draft("Überprüfung der Zeichenketten — ünïcödé", "Non-ASCII titles are fine: "
                      "日本語のテキスト and ñ.")
    ws.cortex("review", "approve", accent)
    elsewhere = ws.draft("Deploy with the blue-green script", "deploy/bluegreen.sh does it.",
                         "--subcortex", "ops")
    ws.cortex("review", "approve", elsewhere)
    # an item that goes stale
    stale = ws.observe("parse() crashes on an empty config string", "--file", "src/parser.c",
                       "--title", "parse crashes on empty input")
    fresh = ws.observe("lex() never fails", "--file", "src/lexer.c")
    ws.write("src/parser.c", "/* handle empty input */\n", "a")
    # pending drafts: mine, mine with changes requested, someone else's
    mine = ws.draft("Use ccache for faster rebuilds", "export CC='ccache cc' before meson setup.")
    asked = ws.draft("Tests need a UTF-8 locale", "Set LC_ALL=C.UTF-8 in CI.")
    ws.cortex("review", "request-changes", asked, "--reason", "say which tests break")
    theirs = ws.draft("Their proposal", "Someone else's draft.", author="someone")

    payload = fixture("session-start.json", cwd=os.path.join(ws.root, "src"), session_id=sid)
    r = ws.hook("session-start", payload)
    check(r.rc == 0, "session-start exits 0", r)
    md = briefing(r)
    if md is None:
        return
    print("        --- briefing (%d bytes) ---\n        %s" % (
        len(md.encode()), md.replace("\n", "\n        ")))
    check(len(md.encode()) <= 1500 * 4, "the briefing fits the default budget of 1500 tokens",
          len(md.encode()))
    check(md.splitlines()[0].count("`search`") and "observe" in md.splitlines()[0]
          and "draft" in md.splitlines()[0] and os.path.basename(ws.root) in md.splitlines()[0],
          "a one-line header names the workspace and the search/observe/draft tools",
          md.splitlines()[0])
    c = section(md, "Canon") or ""
    check("- Build with meson and ninja (%s, general): Run meson setup build" % canon in c,
          "Canon lists the canon thread as '- title (id, subcortex): snippet'", c)
    check(accent in c and "Überprüfung" in c, "non-ASCII canon comes through intact", c)
    check(c.find(accent) < c.find(canon), "Canon is newest first", c)
    check(elsewhere not in md, "canon of another subcortex is left out", md)
    s = section(md, "Stale") or ""
    check(stale in s and "src/parser.c" in s and "parse crashes on empty input" in s,
          "Stale names the item whose file changed, with the changed path", s)
    check(fresh not in md, "an item whose file did not change is not stale", md)
    d = section(md, "Your pending drafts") or ""
    check(mine in d and "pending" in d, "my pending draft is listed with its status", d)
    check(asked in d and "changes requested" in d and "say which tests break" in d,
          "a draft sent back is listed with the reviewer's reason", d)
    check(theirs not in md, "someone else's draft is not", md)

    sess = session_file(ws, sid)
    try:
        with open(sess) as f:
            rec = json.load(f)
        check(rec.get("session_id") == sid and isinstance(rec.get("started_ms"), int)
              and re.match(r"^\d{4}-\d\d-\d\dT", rec.get("started_at", "")),
              "the session start is recorded in .cortex/sessions/s-<sha-256 of the id>.json", rec)
    except (OSError, ValueError) as e:
        check(False, "the session start is recorded in .cortex/sessions/s-<sha-256 of the id>.json", e)

    # session files older than 7 days are pruned; a resumed session keeps its start
    sdir = os.path.join(ws.root, ".cortex", "sessions")
    old, recent = os.path.join(sdir, "old-session.json"), os.path.join(sdir, "recent.json")
    for path, age in ((old, 8), (recent, 6)):
        with open(path, "w") as f:
            f.write('{"session_id":"x","started_ms":1}\n')
        t = time.time() - age * 86400
        os.utime(path, (t, t))
    with open(sess) as f:
        first = json.load(f)
    r = ws.hook("session-start", dict(payload, source="resume"))
    with open(sess) as f:
        check(json.load(f) == first, "a resumed session keeps its recorded start")
    check(r.rc == 0 and not os.path.exists(old) and os.path.exists(recent),
          "session files older than 7 days are pruned, newer ones kept", os.listdir(sdir))
    os.unlink(recent)

    # budgets: never over, never a cut character, always says what was left out
    # `cortex hook` takes --max-tokens from 50; the driver passes any value through
    tiny = (60, 50) if use_cli else (60, 25, 10, 3, 1)
    for tokens in tiny:
        r = ws.hook("session-start", payload, max_tokens=tokens)
        small = briefing(r)
        if small is None:
            break
        n = len(small.encode())
        if not check(n <= tokens * 4, "--max-tokens %d: %d bytes, within %d" % (tokens, n, tokens * 4),
                     small):
            break
        if tokens >= 10:
            check(re.search(r"\(\d+ more not shown\)", small),
                  "--max-tokens %d says how many items were left out" % tokens, small)
    bad = []
    low = 50 if use_cli else 30
    for tokens in range(low, low + 100, 7):
        try:
            doc = json.loads(ws.hook("session-start", payload, max_tokens=tokens).out)
            ctx = doc["hookSpecificOutput"]["additionalContext"]
            if len(ctx.encode("utf-8")) > tokens * 4:
                bad.append((tokens, len(ctx.encode())))
        except (ValueError, KeyError, UnicodeDecodeError) as e:
            bad.append((tokens, str(e)))
    check(not bad, "every budget from %d to %d tokens gives valid UTF-8 JSON within it" % (
        low, low + 100), bad)
    return mine


def test_stop(ws, sid):
    before = {d["id"] for d in ws.review_list()}
    a = ws.observe("parse() reads past the end on a lone backslash", "--file", "src/parser.c",
                   "--tag", "parser", "--tag", "bug", "--title", "parse overreads on backslash")
    b = ws.observe("the lexer and the parser disagree on tab width 8 versus 4",
                   "--file", "src/parser.c", "--file", "src/lexer.c", "--tag", "parser")
    c = ws.observe("ninja -C build takes 41 seconds from clean", "--tag", "build")
    p = ws.observe("my private note about the build, 7 minutes", "--private")
    x = ws.observe("someone else's observation 12345", author="someone")

    payload = fixture("stop.json", cwd=ws.root, session_id=sid)
    r = ws.hook("stop", payload)
    check(r.rc == 0 and r.out == "", "stop exits 0 and prints nothing on stdout", r)
    new = [d for d in ws.review_list() if d["id"] not in before]
    if not check(len(new) == 1, "stop makes exactly one draft", new):
        return None
    dg = ws.show(new[0]["id"])
    check(dg["title"].startswith("Session digest: 3 observations on ")
          and "src/parser.c" in dg["title"] and len(dg["title"].encode()) <= 200,
          "its title counts the observations and names the files", dg["title"])
    check(sorted(dg.get("evidence", [])) == sorted([a, b, c]),
          "its evidence is exactly the session's shared observations", dg.get("evidence"))
    body = dg["body"]
    print("        --- digest body ---\n        %s" % body.replace("\n", "\n        "))
    about = ("parse overreads on backslash; the lexer and the parser disagree on tab width 8 "
             "versus 4; ninja -C build takes 41 seconds from clean\n\n")
    check(body.startswith(about), "the body's first line is what it is about: the observations' "
          "titles or first lines, oldest first", body)
    par = re.search(r"### `src/parser.c` \(2\)\n(.*?)(?=\n###|\n## |\Z)", body, re.S)
    lex = re.search(r"### `src/lexer.c` \(1\)\n(.*?)(?=\n###|\n## |\Z)", body, re.S)
    oth = re.search(r"### Other \(1\)\n(.*?)(?=\n###|\n## |\Z)", body, re.S)
    check(par and a in par.group(1) and b in par.group(1)
          and "- parse overreads on backslash (%s)" % a in par.group(1),
          "the body groups by file: parser.c has both of its observations", body)
    check(lex and b in lex.group(1) and a not in lex.group(1),
          "an observation about two files appears under each", body)
    check(oth and c in oth.group(1), "an observation without files is under Other", body)
    check(re.search(r"## Tags\n\n- `parser`: 2\n(- `\w+`: 1\n){2}", body),
          "the body lists tags with counts, most frequent first", body)
    check(p not in body and "private note" not in body and p not in dg.get("evidence", []),
          "a private observation is never in a digest", body)
    check(x not in body and x not in dg.get("evidence", []),
          "someone else's observation is not in this user's digest", body)
    check("session-digest" in dg["tags"] and "parser" in dg["tags"] and "bug" in dg["tags"],
          "tags: session-digest and the observations' tags", dg["tags"])
    check(sorted(dg.get("files", [])) == ["src/lexer.c", "src/parser.c"],
          "files: the union of the observations' files", dg.get("files"))
    check(dg.get("author") == "tester", "the digest is by the workspace's user", dg.get("author"))
    with open(session_file(ws, sid)) as f:
        check(json.load(f).get("draft_id") == dg["id"], "the session file records the draft id")

    # nothing new: nothing happens
    r = ws.hook("stop", payload)
    again = ws.show(dg["id"])
    check(r.rc == 0 and r.out == "" and again["updated_at"] == dg["updated_at"]
          and len(digests(ws)) == 1, "a stop with no new observations does nothing", r)

    # more observations: the same draft is revised (stop_hook_active makes no difference)
    d = ws.observe("parse() is quadratic in nesting depth 3", "--file", "src/parser.c",
                   "--tag", "perf")
    e = ws.observe("README says nothing about meson 1.0", "--file", "README")
    r = ws.hook("stop", fixture("stop-active.json", cwd=ws.root, session_id=sid))
    rev = ws.show(dg["id"])
    check(r.rc == 0 and r.out == "", "the second stop prints nothing either", r)
    check(sorted(rev.get("evidence", [])) == sorted([a, b, c, d, e])
          and rev["status"] == "pending" and rev["title"].startswith("Session digest: 5 "),
          "the second stop revises the same draft with more evidence", rev)
    check(len(digests(ws)) == 1, "the session still has one digest", digests(ws))

    # verbose: a one-line summary on stderr, still nothing on stdout
    f = ws.observe("the build needs python 3.8 or newer", "--tag", "build")
    r = ws.hook("stop", payload, env={"CORTEX_HOOK_VERBOSE": "1"})
    check(r.rc == 0 and r.out == "" and re.search(r"^cortex hook: .*%s.*revised" % dg["id"],
                                                  r.err, re.M) and r.err.count("\n") == 1,
          "CORTEX_HOOK_VERBOSE=1 prints one summary line on stderr", r)

    # once decided, a later stop starts a new digest of what is not covered
    ws.cortex("review", "approve", dg["id"])
    g = ws.observe("lexer tokens carry 1-based columns", "--file", "src/lexer.c")
    r = ws.hook("stop", payload)
    fresh = digests(ws)
    check(r.rc == 0 and len(fresh) == 1 and fresh[0]["id"] != dg["id"]
          and ws.show(fresh[0]["id"]).get("evidence") == [g],
          "after approval, the next stop makes a new digest of the new observations only",
          [(x["id"], ws.show(x["id"]).get("evidence")) for x in fresh])
    check(ws.show(dg["id"])["kind"] == "thread", "the approved digest stays canon")

    # a session that never ran session-start: since the workspace's last digest
    h = ws.observe("the parser accepts trailing commas 99", "--file", "src/parser.c")
    other = fixture("stop.json", cwd=ws.root, session_id="0b7e1c44-unknown-session")
    r = ws.hook("stop", other)
    found = [x for x in digests(ws) if ws.show(x["id"]).get("evidence") == [h]]
    check(r.rc == 0 and len(found) == 1,
          "a stop without a session file digests what came since the last digest", r)
    return dg["id"]


def test_bad_input(ws, tmp):
    before = len(ws.review_list())
    r = ws.hook("session-start", raw=b"{not json", workspace=ws.root)
    check(r.rc == 0 and r.err.startswith("cortex hook: ") and briefing(r) is not None,
          "session-start with garbage input: exit 0, a message, still a briefing", r)
    r = ws.hook("stop", raw=b"\x00\xff garbage", workspace=ws.root)
    check(r.rc == 0 and r.out == "" and r.err.startswith("cortex hook: "),
          "stop with garbage input: exit 0, a message, nothing on stdout", r)
    r = ws.hook("stop", raw=b"[1, 2, 3]", workspace=ws.root)
    check(r.rc == 0 and r.out == "" and "cortex hook: " in r.err,
          "stop with JSON that is not an object: exit 0 and a message", r)
    r = ws.hook("stop", raw=b" " + b"x" * (1 << 20), workspace=ws.root)
    check(r.rc == 0 and r.out == "" and "1 MiB" in r.err, "input over 1 MiB is refused", r)
    r = ws.hook("session-start", raw=b"", workspace=ws.root)
    check(r.rc == 0 and briefing(r) is not None and r.err == "",
          "session-start with no input at all briefs quietly", r)
    check(len(ws.review_list()) == before, "bad input makes no draft")

    gone = os.path.join(tmp, "no", "such", "dir")
    for ev, fx in (("session-start", "session-start.json"), ("stop", "stop.json")):
        r = ws.hook(ev, fixture(fx, cwd=gone))
        check(r.rc == 0 and r.out == "" and r.err.startswith("cortex hook: ")
              and r.err.count("\n") == 1,
              "%s in a missing directory: exit 0 and one line on stderr" % ev, r)
    r = ws.hook("session-start", fixture("session-start.json"), workspace=gone)
    check(r.rc == 0 and r.out == "" and "cortex hook: " in r.err,
          "a missing --workspace: exit 0 and a message", r)

    bare = os.path.join(tmp, "bare")
    os.makedirs(bare)
    subprocess.run(["git", "init", "-q", bare], check=True, env=ws.env)
    for ev, fx in (("session-start", "session-start.json"), ("stop", "stop.json")):
        r = ws.hook(ev, fixture(fx, cwd=bare))
        check(r.rc == 0 and r.out == "" and "no Cortex memory" in r.err,
              "%s in a workspace without a store: exit 0, says so" % ev, r)
    check(not os.path.exists(os.path.join(bare, ".cortex")),
          "hooks never create state in a workspace without a store")

    r = ws.hook("pre-compact", fixture("stop.json", cwd=ws.root))
    check(r.rc == 2 and r.out == "" and r.err.startswith("cortex hook: ")
          and "session-start" in r.err, "an unknown event exits 2 with a message", r)

    # a hostile session id never leaves the sessions directory
    evil = "../../../escape"
    r = ws.hook("session-start", fixture("session-start.json", cwd=ws.root, session_id=evil))
    names = os.listdir(os.path.join(ws.root, ".cortex", "sessions"))
    check(r.rc == 0 and not os.path.exists(os.path.join(ws.root, "escape.json"))
          and not os.path.exists(os.path.join(ws.root, ".cortex", "escape.json"))
          and all(re.match(r"^[A-Za-z0-9_.-]+$", n) for n in names),
          "a session id with '/' is hashed into a safe file name", names)

    # CLAUDE_PROJECT_DIR is used when the payload names no cwd
    pl = fixture("session-start.json")
    del pl["cwd"]
    r = ws.hook("session-start", pl, env={"CLAUDE_PROJECT_DIR": ws.root})
    md = briefing(r)
    check(r.rc == 0 and md and "## Canon" in md, "without cwd, $CLAUDE_PROJECT_DIR is used", r)


def test_large(tmp):
    """A few thousand items through cortexd's batch observe: hooks stay quick."""
    if not CORTEXD or not os.path.exists(CORTEXD):
        print("skip    large store (no $CORTEXD)")
        return
    ws = Workspace(os.path.join(tmp, "large"))
    payload = fixture("session-start.json", cwd=ws.root, session_id="large-session")
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india"]
    p = subprocess.Popen([CORTEXD, "--workspace", ws.root], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=ws.env)
    n = 0

    def req(method, params):
        nonlocal n
        n += 1
        p.stdin.write(json.dumps({"jsonrpc": "2.0", "id": n, "method": method, "params": params})
                      + "\n")
        p.stdin.flush()
        return json.loads(p.stdout.readline())

    req("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "hooks-test", "version": "1"}})
    batches = 6
    r = None
    for k in range(batches):
        if k == batches - 1:  # the last batch comes after session-start
            r = ws.hook("session-start", payload)
        obs = [{"text": "%s %s observation number %d in batch %d" % (
                    words[i % 9], words[(i // 9) % 9], k * 1000 + i, k),
                "files": ["src/parser.c" if i % 2 else "src/lexer.c"],
                "tags": [words[i % 5]]} for i in range(500)]
        res = req("tools/call", {"name": "observe", "arguments": {"observations": obs}})
        assert not res["result"].get("isError"), res
    p.stdin.close()
    p.wait(timeout=30)
    ws.write("src/parser.c", "/* changed */\n", "a")
    check(r.rc == 0 and briefing(r) is not None, "session-start on 2,500 items answers", r)
    r = ws.hook("session-start", payload)
    md = briefing(r) or ""
    check(r.rc == 0 and "## Stale" in md, "a briefing with stale items on 3,000 items", r.err)
    r = ws.hook("stop", fixture("stop.json", cwd=ws.root, session_id="large-session"))
    dg = digests(ws)
    check(r.rc == 0 and r.out == "" and len(dg) == 1, "stop on 500 new observations", r)
    if dg:
        ev = ws.show(dg[0]["id"]).get("evidence", [])
        check(len(ev) == 100, "the digest's evidence is capped at 100 ids", len(ev))
    print("        large store: session-start %.3f s, stop %.3f s" % (
        timings[-2][1], timings[-1][1]))


def main():
    global use_cli
    if not CORTEX:
        print("CORTEX is not set")
        return 1
    probe = subprocess.run([CORTEX, "hook", "--help"], capture_output=True)
    use_cli = probe.returncode == 0 and os.environ.get("HOOK_VIA") != "driver"
    if not use_cli and not (DRIVER and os.path.exists(DRIVER)):
        print("neither `cortex hook` nor $HOOK_DRIVER is available")
        return 1
    print("running hooks through %s" % ("`cortex hook`" if use_cli else DRIVER))
    tmp = tempfile.mkdtemp(prefix="cortex-hooks-")
    try:
        ws = Workspace(os.path.join(tmp, "main"))
        sid = "3f9c2a71-5d4e-4b8a-9e61-0c7d2b8f4a15"
        for name, fn in (("session-start", lambda: test_session_start(ws, sid)),
                         ("stop", lambda: test_stop(ws, sid)),
                         ("bad input", lambda: test_bad_input(ws, tmp)),
                         ("large store", lambda: test_large(tmp))):
            try:
                fn()
            except Exception as e:  # a broken step fails, the others still run
                import traceback
                check(False, "%s ran to the end" % name, traceback.format_exc())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if timings:
        for ev in ("session-start", "stop"):
            t = sorted(s for e, s in timings if e == ev)
            if t:
                print("timing  %s: %d runs, median %.3f s, max %.3f s" % (
                    ev, len(t), t[len(t) // 2], t[-1]))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
