#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# The review app in a real browser (issue 14): a real cortex-core (SQLite)
# over HTTPS on 127.0.0.1 with a certificate made here, real sidecars, and
# Debian's chromium driven by puppeteer-core (web.test.mjs).
#  1. Keys of team T (reviewer, agent, admin) and of team U (reviewer).
#  2. Workspace A (T's agent key, a git repository with a committed file):
#     cortexd's MCP `observe` records two observations about the file,
#     `draft` proposes knowledge citing them as evidence, and a second,
#     hostile draft carries <script>, onerror=, javascript: links, SVG onload
#     and an <iframe> in its title, body and a comment; the file then
#     changes and a newer observation records it (the evidence goes stale);
#     `publish` makes two versions of an artifact; `cortex sync` pushes it
#     all.
#  3. web.test.mjs drives the browser through every page (see its header):
#     sign-in, queue, draft with evidence, approve with a note, the hostile
#     draft inert, cookie flags, CSRF refused, agent read-only, another team
#     sees nothing, keys, sign-out, axe-core on each page, screenshots.
#  4. Workspace B (a teammate's sidecar, its own key) syncs and finds the
#     approved draft as canon through cortexd's MCP `search`.
# Every wait is bounded; every process is killed at the end; the summary
# line counts the python checks and the browser's together.
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "core"))
sys.path.insert(0, os.path.join(HERE, "..", "sync"))
from corelib import core, make_key, sync, workspace  # noqa: E402
from synclib import Agent, Core, check, counts, make_cert, procs, run  # noqa: E402

DRAFT_TITLE = "Pin the toolchain to gcc 12 in CI"
DRAFT_BODY = """The CI image and the developers' machines must use the same compiler.

## What to do

- Keep `FROM debian:12` in `ci/Dockerfile`
- Install **gcc 12** only; see [the Debian page](https://packages.debian.org/bookworm/gcc-12)

```sh
apt-get install gcc-12
```
"""
# Markup a browser must show as text and never run.
HOSTILE_TITLE = "<script>window.__pwned=1</script><img src=x onerror=\"window.__pwned=2\">"
HOSTILE_BODY = """Hostile <b onmouseover="window.__pwned=3">bold</b>

<iframe src="javascript:window.__pwned=4"></iframe>

<svg onload="window.__pwned=5"><circle r="9"/></svg>

[click me](javascript:window.__pwned=6) and [data](data:text/html,<script>window.__pwned=7</script>)
[shout](JAVASCRIPT:window.__pwned=10) [entity](&#106;avascript:window.__pwned=11) [far](//evil.example/x)
[vb](vbscript:msgbox) ![pic](https://evil.example/pixel.png) and a [fine link](https://example.com/ok)

<img src=x onerror="window.__pwned=8">
<script>window.__pwned=9</script>
"""

THIRD_TITLE = "Indent C with tabs"
# ~200 KB of unmatched markdown delimiters (lines, and one long paragraph):
# the renderer's cost must stay linear, so the page draws in a bounded wait.
HEAVY_TITLE = "Many unmatched delimiters"
HEAVY_BODY = ("**a __b [c]( <http://d `e *f _g [[h\n" * 4000 + "[x](" * 8000
              + "\n\nheavy-end-marker\n")
HOSTILE_COMMENT = "<img src=x onerror=\"window.__pwned=12\"> <a href=\"javascript:window.__pwned=13\">x</a>"


def git(ws, *args):
    p = subprocess.run(["git", "-C", ws, *args], capture_output=True, text=True, timeout=60)
    check(p.returncode == 0, f"git {' '.join(args)}: {p.stderr}")


def tests(tmp):
    data = os.path.join(tmp, "core-data")
    p = core("init", data, timeout=60)
    check(p.returncode == 0, f"core init: {p.stderr}")
    keys = {
        "reviewer": make_key(data, "T", "reviewer", "rita-reviewer"),
        "agent": make_key(data, "T", "agent", "ann-agent"),
        "teammate": make_key(data, "T", "agent", "bob-agent"),
        "admin": make_key(data, "T", "admin", "ada-admin"),
        "other": make_key(data, "U", "reviewer", "uma-reviewer"),
    }
    cert, key = make_cert(tmp)
    srv = Core(tmp, data, tls=(cert, key))
    srv.start()
    url = srv.url()

    # --- workspace A: observations, a draft citing them, a hostile draft, an artifact
    A, aenv = workspace(tmp, "A", url, cert, [keys["agent"]])
    aenv["CORTEX_AUTHOR"] = "ann@example.com"
    os.makedirs(os.path.join(A, "ci"))
    with open(os.path.join(A, "ci", "Dockerfile"), "w") as f:
        f.write("FROM debian:12\nRUN apt-get install -y gcc-12\n")
    git(A, "add", "ci/Dockerfile")
    git(A, "-c", "user.name=ann", "-c", "user.email=ann@example.com", "commit", "-qm", "ci image")
    agent = Agent(A, aenv)
    evidence = []
    try:
        for text in ("The CI image is built from debian:12 and installs gcc-12 (ci/Dockerfile).",
                     "A build broke when a laptop had gcc 13: warnings differ from the CI's gcc 12."):
            sc, err = agent.call("observe", {"text": text, "files": ["ci/Dockerfile"],
                                             "subcortex": "build"})
            ok = not err and sc and sc.get("results")
            check(ok, f"observe: {sc}")
            if ok:
                evidence.append(sc["results"][0]["id"])
        sc, err = agent.call("draft", {"title": DRAFT_TITLE, "body": DRAFT_BODY,
                                       "subcortex": "build", "evidence": evidence,
                                       "files": ["ci/Dockerfile"]})
        check(not err and sc and sc.get("status") == "pending", f"draft: {sc}")
        draft_id = (sc or {}).get("id", "")
        sc, err = agent.call("comment", {"target_id": draft_id,
                                         "body": "Checked against the CI image: **it matches**."})
        check(not err, f"comment on the draft: {sc}")
        sc, err = agent.call("draft", {"title": THIRD_TITLE, "body": "Tabs, width 8, everywhere.",
                                       "subcortex": "style"})
        check(not err and sc and sc.get("status") == "pending", f"third draft: {sc}")
        sc, err = agent.call("draft", {"title": HEAVY_TITLE, "body": HEAVY_BODY, "subcortex": "style"})
        check(not err and sc and sc.get("status") == "pending", f"heavy draft: {(sc, err)}")
        sc, err = agent.call("draft", {"title": HOSTILE_TITLE, "body": HOSTILE_BODY,
                                       "subcortex": "security"})
        check(not err and sc and sc.get("status") == "pending", f"hostile draft: {sc}")
        sc, err = agent.call("comment", {"target_id": (sc or {}).get("id", ""),
                                         "body": HOSTILE_COMMENT})
        check(not err, f"hostile comment: {sc}")
        # the file the evidence was recorded against changes: the evidence is stale
        with open(os.path.join(A, "ci", "Dockerfile"), "w") as f:
            f.write("FROM debian:13\nRUN apt-get install -y gcc-14\n")
        git(A, "-c", "user.name=ann", "-c", "user.email=ann@example.com", "commit", "-qam",
            "ci image on trixie")
        sc, err = agent.call("observe", {"text": "The CI image moved to debian:13 and gcc-14.",
                                         "files": ["ci/Dockerfile"], "subcortex": "build"})
        check(not err and sc and sc.get("results"), f"observe after the change: {sc}")
        for content in ("#!/bin/sh\nset -e\nmake\n", "#!/bin/sh\nset -eu\nmake\nmake check\n"):
            sc, err = agent.call("publish", {"name": "build.sh", "content": content,
                                             "title": "How CI builds"})
            check(not err and sc and sc.get("artifact_id"), f"publish: {sc}")
    finally:
        agent.close()
    sync(A, aenv, "A pushes its notes, drafts and artifact")

    # --- the browser
    screens = os.environ.get("CORTEX_WEB_SCREENS") or os.path.join(tmp, "web-screens")
    env = dict(os.environ, CORE_URL=url, CORE_CA=cert, CORTEX_WEB_SCREENS=screens,
               KEY_REVIEWER=keys["reviewer"], KEY_AGENT=keys["agent"],
               KEY_ADMIN=keys["admin"], KEY_OTHER=keys["other"],
               DRAFT_TITLE=DRAFT_TITLE, HOSTILE_TITLE=HOSTILE_TITLE,
               EVIDENCE_IDS=",".join(evidence), HOSTILE_COMMENT=HOSTILE_COMMENT,
               THIRD_TITLE=THIRD_TITLE, HEAVY_TITLE=HEAVY_TITLE)
    node = os.environ.get("NODE", "node")
    drv = subprocess.Popen([node, os.path.join(HERE, "web.test.mjs")], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    procs.append(drv)
    try:
        out, _ = drv.communicate(timeout=float(os.environ.get("CORTEX_WEB_TIMEOUT", "420")))
    except subprocess.TimeoutExpired:
        drv.kill()
        out, _ = drv.communicate(timeout=30)
        check(False, "the browser test finished in time")
    sys.stdout.write(out)
    m = re.search(r"^browser: (\d+) passed, (\d+) failed$", out, re.M)
    check(m is not None, "the browser test printed its summary")
    if m:
        counts["passed"] += int(m.group(1))
        counts["failed"] += int(m.group(2))
    check(drv.returncode == 0, f"the browser test exits 0 ({drv.returncode})")

    # --- a teammate's sidecar finds the approved draft as canon
    B, benv = workspace(tmp, "B", url, cert, [keys["teammate"]])
    sync(B, benv, "B pulls the team's feed")
    agent = Agent(B, benv)
    try:
        sc, err = agent.call("search", {"query": "pin the toolchain gcc 12", "mode": "keyword"})
        results = (sc or {}).get("results") or []
        top = results[0] if results else {}
        check(not err and top.get("title") == DRAFT_TITLE and top.get("kind") == "thread"
              and top.get("status") == "canon",
              f"B's cortexd finds the draft approved in the browser as canon, first: {sc}")
        hostile = [r for r in results if r.get("title") == HOSTILE_TITLE]
        check(not hostile or hostile[0].get("status") == "pending",
              f"the hostile draft was never decided: {hostile}")
    finally:
        agent.close()
    srv.stop()


if __name__ == "__main__":
    run("cortex-web-", tests)
