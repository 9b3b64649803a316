#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""`cortex review` decisions, with and without a note, against a real
cortex-core over HTTPS on 127.0.0.1 and in a workspace without an upstream
(issue 11, item 1), and the exit statuses `cortex review --help` documents:

- at the core: approve without --note (the README's command) and with one,
  reject and request-changes with --reason; each draft is decided at the
  core, by the reviewer key's name, and a note with a secret arrives
  redacted. The core itself takes a decision whose note is absent or null;
- refusals are 1 (a 4xx answer: a draft already decided, an unknown draft,
  an agent key deciding), usage errors 2 (reject without --reason, sent
  nowhere), and only a core that cannot be reached is 4;
- every answer a core may give a decision (a fake core over HTTPS: 400,
  401, 403, 404, 409 are 1; 408, 429, 500, 503 are 4), and no "note"
  member at all without --note;
- locally: the same four decisions, recorded with CORTEX_AUTHOR.
Prints "N passed, N failed"."""
import json
import os
import random
import ssl
import string
import subprocess
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sync"))
from synclib import CORE, Core, FakeCore, check, cli, make_cert, run, serve_fake_core  # noqa: E402


def make_key(data, team, role, name):
    p = subprocess.run([CORE, "keys", "create", data, "--team", team, "--role", role, "--name", name],
                       capture_output=True, text=True, timeout=60)
    check(p.returncode == 0 and p.stdout.strip(), f"keys create {team}/{role}: {p.stderr}")
    return p.stdout.strip()


def https(url, cert, key, method, path, body=None):
    """(status, answer) of one request to the core."""
    ctx = ssl.create_default_context(cafile=cert)
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method=method,
                                 headers={"Authorization": f"Bearer {key}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def feed_items(url, cert, key):
    """The last state of every item of the key's team's feed, by id."""
    items, since = {}, 0
    for _ in range(100):
        st, page = https(url, cert, key, "GET", f"/v1/sync/pull?since={since}&limit=500")
        check(st == 200, f"pull answered {st}")
        for c in page.get("changes", []):
            it = c.get("item") or {}
            if it.get("id"):
                items[it["id"]] = it
        since = page.get("next", since)
        if not page.get("more"):
            break
    return items


def draft(ws, env, title, body):
    p = cli(ws, env, "draft", "--title", title, body)
    check(p.returncode == 0, f"draft {title}: {p.returncode} {p.stderr}")
    return p.stdout.strip()


def remote(tmp, base):
    data = os.path.join(tmp, "core")
    p = subprocess.run([CORE, "init", data], capture_output=True, text=True, timeout=60)
    check(p.returncode == 0, f"core init: {p.stderr}")
    ka = make_key(data, "alpha", "agent", "alice-agent")
    kr = make_key(data, "alpha", "reviewer", "rita-rev")
    cert, pkey = make_cert(tmp)
    core = Core(tmp, data, (cert, pkey))
    core.start()
    url = core.url()

    # A's author holds an agent key only; R's reviewer both (one home each)
    envA = dict(base, XDG_CONFIG_HOME=os.path.join(tmp, "home-a"))
    env = dict(base, XDG_CONFIG_HOME=os.path.join(tmp, "home-r"))
    A, R = os.path.join(tmp, "A"), os.path.join(tmp, "R")
    for ws, keys, e in ((A, [ka], envA), (R, [ka, kr], env)):
        os.makedirs(ws)
        p = cli(ws, e, "remote", "set", url, "--ca-file", cert)
        check(p.returncode == 0, f"remote set: {p.stderr}")
        for k in keys:
            p = cli(ws, e, "login", stdin=k + "\n")
            check(p.returncode == 0, f"login: {p.returncode} {p.stderr}")

    ids = {name: draft(A, envA, f"Draft {name}", f"The {name} draft about the kestrel build.")
           for name in ("plain", "noted", "rejected", "changes", "agent", "nullnote", "absent",
                        "unreach")}
    p = cli(A, envA, "sync")
    check(p.returncode == 0, f"A pushes its drafts: {p.returncode} {p.stderr}")

    # the README's command: approve without --note
    p = cli(R, env, "review", "approve", ids["plain"])
    check(p.returncode == 0 and "canon" in p.stdout,
          f"review approve without --note at the core: {p.returncode} {p.stdout} {p.stderr}")
    secret = "ghp_" + "".join(random.choice(string.ascii_letters + string.digits) for _ in range(36))
    p = cli(R, env, "review", "approve", ids["noted"], "--note", f"checked; token {secret}")
    check(p.returncode == 0, f"review approve --note at the core: {p.returncode} {p.stderr}")
    p = cli(R, env, "review", "reject", ids["rejected"], "--reason", "we vendor nothing")
    check(p.returncode == 0, f"review reject --reason at the core: {p.returncode} {p.stderr}")
    p = cli(R, env, "--json", "review", "request-changes", ids["changes"], "--reason",
            "say which compilers")
    check(p.returncode == 0 and json.loads(p.stdout or "{}").get("status") == "changes_requested",
          f"review request-changes --reason at the core: {p.returncode} {p.stdout} {p.stderr}")
    # reject and request-changes need a reason: a usage error, nothing sent
    for action in ("reject", "request-changes"):
        p = cli(R, env, "review", action, ids["agent"])
        check(p.returncode == 2 and "--reason" in p.stderr,
              f"review {action} without --reason is a usage error: {p.returncode} {p.stderr}")

    items = feed_items(url, cert, kr)
    it = items.get(ids["plain"], {})
    rv = it.get("review") or {}
    check(it.get("kind") == "thread" and it.get("status") == "canon",
          f"the core made the draft approved without a note canon: {it}")
    check(rv.get("reviewer") == "rita-rev" and not rv.get("note"),
          f"recorded by the reviewer key's name, with no note: {rv}")
    rv = (items.get(ids["noted"]) or {}).get("review") or {}
    check(rv.get("reviewer") == "rita-rev" and "checked" in json.dumps(rv)
          and "REDACTED" in json.dumps(rv), f"the note is kept, redacted: {rv}")
    check(secret not in json.dumps(items), "the secret of a note never reaches the core")
    check((items.get(ids["rejected"]) or {}).get("status") == "rejected",
          f"rejected at the core: {items.get(ids['rejected'])}")
    check((items.get(ids["changes"]) or {}).get("status") == "changes_requested",
          f"changes requested at the core: {items.get(ids['changes'])}")

    # the core takes a decision whose note is null or absent (an approval
    # needs none); a rejection without one is the request's fault (400)
    st, ans = https(url, cert, kr, "POST", f"/v1/drafts/{ids['nullnote']}/decision",
                    {"decision": "approve", "note": None})
    check(st == 200, f"the core takes \"note\": null: {st} {ans}")
    st, ans = https(url, cert, kr, "POST", f"/v1/drafts/{ids['absent']}/decision",
                    {"decision": "reject"})
    check(st == 400 and "note" in json.dumps(ans), f"a reject without a note is a 400: {st} {ans}")
    st, ans = https(url, cert, kr, "POST", f"/v1/drafts/{ids['absent']}/decision",
                    {"decision": "approve"})
    check(st == 200, f"the core takes an absent note: {st} {ans}")

    # refusals (4xx) exit 1, with the core's word
    p = cli(R, env, "review", "approve", ids["plain"])
    check(p.returncode == 1 and "409" in p.stderr,
          f"approving a decided draft is refused (1): {p.returncode} {p.stderr}")
    p = cli(R, env, "review", "approve", "01J00000000000000000000000")
    check(p.returncode == 1 and "01J00000000000000000000000" in p.stderr,
          f"an unknown draft is refused (1): {p.returncode} {p.stderr}")
    p = cli(A, envA, "review", "approve", ids["agent"])
    check(p.returncode == 1 and "an agent key" in p.stderr and "a agent" not in p.stderr,
          f"an agent key cannot decide (1, 'an agent key'): {p.returncode} {p.stderr}")
    p = cli(R, env, "review", "list", "--json")
    check(p.returncode == 0 and ids["agent"] in p.stdout,
          f"the queue at the core still holds the undecided draft: {p.returncode} {p.stderr}")

    # only a core that cannot be reached is 4
    core.stop()
    p = cli(R, env, "review", "approve", ids["unreach"], timeout=180)
    check(p.returncode == 4, f"a core that cannot be reached exits 4: {p.returncode} {p.stderr}")


def local(tmp, base):
    env = dict(base, XDG_CONFIG_HOME=os.path.join(tmp, "home-local"), CORTEX_AUTHOR="lena")
    L = os.path.join(tmp, "L")
    os.makedirs(L)
    ids = {name: draft(L, env, f"Local {name}", f"The {name} local draft about the heron cache.")
           for name in ("plain", "noted", "rejected", "changes")}
    p = cli(L, env, "review", "approve", ids["plain"])
    check(p.returncode == 0, f"local approve without --note: {p.returncode} {p.stderr}")
    p = cli(L, env, "review", "approve", ids["noted"], "--note", "fine by me")
    check(p.returncode == 0, f"local approve --note: {p.returncode} {p.stderr}")
    for action in ("reject", "request-changes"):
        p = cli(L, env, "review", action, ids["rejected"])
        check(p.returncode == 2, f"local {action} without --reason: 2: {p.returncode}")
    p = cli(L, env, "review", "reject", ids["rejected"], "--reason", "not ours")
    check(p.returncode == 0, f"local reject --reason: {p.returncode} {p.stderr}")
    p = cli(L, env, "review", "request-changes", ids["changes"], "--reason", "more detail")
    check(p.returncode == 0, f"local request-changes --reason: {p.returncode} {p.stderr}")

    def show(i):
        p = cli(L, env, "--json", "show", ids[i])
        return json.loads(p.stdout) if p.returncode == 0 else {}
    it = show("plain")
    check(it.get("status") == "canon" and (it.get("review") or {}).get("reviewer") == "lena",
          f"local approve: canon, by CORTEX_AUTHOR: {it}")
    it = show("noted")
    check(it.get("status") == "canon" and "fine by me" in json.dumps(it.get("review")),
          f"local approve keeps the note: {it.get('review')}")
    check(show("rejected").get("status") == "rejected", "local reject")
    check(show("changes").get("status") == "changes_requested", "local request-changes")
    p = cli(L, env, "review", "approve", ids["plain"])
    check(p.returncode == 1, f"local: approving a decided draft is refused (1): {p.returncode}")


# The status a fake core answers a decision with, by the draft id's last
# two characters (the ids are made up: 26 characters, Crockford base 32).
STATUSES = {"00": 200, "40": 400, "41": 401, "43": 403, "44": 404, "49": 409, "4T": 429,
            "50": 500, "53": 503, "4R": 408}


class DecidingCore(FakeCore):
    """A fake core with a reviewer key whose decisions answer STATUSES, and
    that records the decision bodies it was sent."""
    bodies = []

    def do_GET(self):
        if self.path == "/v1/info":
            return self.answer(200, {"team": "T", "role": "reviewer", "principal": "rev"})
        return super().do_GET()

    def do_POST(self):
        if self.path.startswith("/v1/drafts/") and self.path.endswith("/decision"):
            n = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(n) or b"{}")
            DecidingCore.bodies.append(body)
            draft = self.path.split("/")[3]
            st = STATUSES.get(draft[-2:], 200)
            if st == 200:
                return self.answer(200, {"seq": 1, "item": {"id": draft, "kind": "thread",
                                                            "status": "canon"}})
            return self.answer(st, {"error": f"status {st} for the test"})
        return super().do_POST()


def fake(tmp, base):
    """Each answer of a core maps to the exit status --help gives it: 4xx
    (but 408, 429) is a refusal, 1; 5xx, 408 and 429 are 4. And without
    --note no note member is sent at all."""
    srv, url, cert = serve_fake_core(tmp, DecidingCore)
    try:
        env = dict(base, XDG_CONFIG_HOME=os.path.join(tmp, "home-fake"))
        ws = os.path.join(tmp, "F")
        os.makedirs(ws)
        p = cli(ws, env, "remote", "set", url, "--ca-file", cert)
        check(p.returncode == 0, f"fake: remote set: {p.stderr}")
        p = cli(ws, env, "login", stdin="cx_fake_reviewer_key_0123456789\n")
        check(p.returncode == 0, f"fake: login: {p.returncode} {p.stderr}")
        for tail, st in sorted(STATUSES.items()):
            draft = "01J0000000000000000000" + "00" + tail
            want = 0 if st == 200 else (1 if 400 <= st < 500 and st not in (408, 429) else 4)
            p = cli(ws, env, "review", "approve", draft)
            check(p.returncode == want,
                  f"an answer {st} to a decision exits {want}: {p.returncode} {p.stderr}")
            if st != 200:
                check(str(st) in p.stderr, f"the message names the answer {st}: {p.stderr}")
        check(DecidingCore.bodies and all("note" not in b for b in DecidingCore.bodies),
              f"approve without --note sends no note: {DecidingCore.bodies[:2]}")
        DecidingCore.bodies.clear()
        p = cli(ws, env, "review", "reject", "01J000000000000000000000" + "00", "--reason", "no")
        check(p.returncode == 0 and DecidingCore.bodies == [{"decision": "reject", "note": "no"}],
              f"reject sends its reason as the note: {p.returncode} {DecidingCore.bodies}")
    finally:
        srv.shutdown()


def tests(tmp):
    base = dict(os.environ, CORTEX_SYNC_DEADLINE="20")
    for k in ("CORTEX_WORKSPACE", "CORTEX_AUTHOR"):
        base.pop(k, None)
    remote(tmp, base)
    fake(tmp, base)
    local(tmp, base)


if __name__ == "__main__":
    run("cortex-review-core-", tests)
