#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Artifacts travel whole. A real cortex-core over HTTPS on 127.0.0.1 (a
# certificate made here by openssl) and workspaces in temporary git
# repositories, driven through cortexd (MCP `publish`, raw JSON-RPC over
# stdio) and the cortex CLI:
# - A publishes an artifact in two versions (text, then binary bytes) and
#   records an observation; B pulls: B has both versions (sha-256, size),
#   `cortex artifact content ID N` gives each version's bytes exactly and
#   `cortex show ID --content` the latest;
# - the same text observed in B after the pull folds as a repeat of A's;
# - `cortex artifact accept` by a reviewer key against the core: B sees the
#   version accepted (by whom) after its pull; an agent key is refused
#   (exit 1); locally (no upstream) with CORTEX_AUTHOR as the reviewer;
#   usage errors exit 2, an unknown version 1;
# - one name published in two workspaces before either pulled: each ends
#   with both artifacts (two ids, each with its own content), nothing
#   skipped; a later publish of the name adds a version to the oldest;
# - a hostile core (a fake one) serving a blob that does not hash to its
#   name, one longer than its version says, one that says it is past the
#   limit of one version, and none at all: `cortex sync`
#   succeeds and says what failed, the content is refused (never stored),
#   and `cortex artifact content` exits 1 saying why.
# Every wait is bounded; every process is killed at the end.
import hashlib
import json
import os
import subprocess

from synclib import (CORE, Agent, Core, FakeCore, check, cli, make_cert, run, serve_fake_core,
                     fake_workspace)

V1 = b"#!/bin/sh\n# deploy, version one\nexec ./release --canary\n"
V2 = bytes(range(256)) * 3 + b"\x00\xff binary tail"
NOTE = "The integration suite needs   PGPORT=5433 set before it starts"


def sha(b):
    return hashlib.sha256(b).hexdigest()


def key(data, role, name):
    p = subprocess.run([CORE, "keys", "create", data, "--team", "T", "--role", role, "--name",
                        name], capture_output=True, text=True, timeout=60)
    check(p.returncode == 0 and p.stdout.strip(), f"keys create {role}: {p.stderr}")
    return p.stdout.strip().split()[0]


def workspace(tmp, name, url, ca, keys, **env_extra):
    """A git repository tmp/name whose upstream is the core, logged in with
    keys (each kept beside the others), with its own home."""
    env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(tmp, "home-" + name),
               CORTEX_AUTHOR=name.lower() + "@example.com", **env_extra)
    env.pop("CORTEX_WORKSPACE", None)
    ws = os.path.join(tmp, name)
    os.makedirs(ws)
    subprocess.run(["git", "init", "-q", ws], check=True, timeout=30)
    if url:
        p = cli(ws, env, "remote", "set", url, "--ca-file", ca)
        check(p.returncode == 0, f"{name}: remote set: {p.stderr}")
    for k in keys:
        p = cli(ws, env, "login", stdin=k + "\n")
        check(p.returncode == 0, f"{name}: login: {p.returncode} {p.stderr}")
    return ws, env


def publish(ws, env, **args):
    agent = Agent(ws, env)
    try:
        out, err = agent.call("publish", args)
    finally:
        agent.close()
    check(not err and out and out.get("artifact_id"), f"publish {args.get('name')}: {out}")
    return out or {}


def sync(ws, env, what):
    p = cli(ws, env, "sync", timeout=120)
    check(p.returncode == 0, f"{what}: sync: {p.returncode} {p.stderr}")
    return p


def show(ws, env, item_id):
    p = cli(ws, env, "--json", "show", item_id)
    try:
        return json.loads(p.stdout)
    except ValueError:
        check(False, f"show {item_id}: {p.returncode} {p.stderr}")
        return {}


def content(ws, env, item_id, *version):
    return subprocess.run([os.environ["CORTEX"], "--workspace", ws, "artifact", "content",
                           item_id, *version], capture_output=True, env=env, timeout=60)


def blob_files(ws):
    out = {}
    for root, _, files in os.walk(os.path.join(ws, ".cortex", "blobs")):
        for f in files:
            out[f] = open(os.path.join(root, f), "rb").read()
    return out


def real_core(tmp):
    data = os.path.join(tmp, "core")
    p = subprocess.run([CORE, "init", data], capture_output=True, text=True, timeout=60)
    check(p.returncode == 0, f"core init: {p.stderr}")
    agent_key, rev_key = key(data, "agent", "agent"), key(data, "reviewer", "rita")
    cert, tkey = make_cert(tmp)
    core = Core(tmp, data, tls=(cert, tkey))
    core.start()
    A, aenv = workspace(tmp, "A", core.url(), cert, [agent_key, rev_key])
    B, benv = workspace(tmp, "B", core.url(), cert, [agent_key])

    # --- A publishes two versions and records a note; B pulls them whole
    open(os.path.join(A, "tool.bin"), "wb").write(V2)
    one = publish(A, aenv, name="deploy.sh", content=V1.decode(), title="How we deploy")
    two = publish(A, aenv, name="deploy.sh", path="tool.bin")
    art = one.get("artifact_id")
    check(two.get("artifact_id") == art and two.get("version") == 2,
          f"the second publish is version 2 of the same artifact: {one} {two}")
    p = cli(A, aenv, "--json", "observe", NOTE)
    check(p.returncode == 0, f"A observes: {p.stderr}")
    note_id = (json.loads(p.stdout).get("results") or [{}])[0].get("id")
    sync(A, aenv, "A")
    p = sync(B, benv, "B")
    check("fetched the content of 2 artifact versions" in p.stderr,
          f"B's sync says it fetched both contents: {p.stderr}")
    it = show(B, benv, art)
    vs = it.get("versions", [])
    check([(v.get("version"), v.get("sha256"), v.get("size"), v.get("status"), v.get("content"))
           for v in vs] == [(1, sha(V1), len(V1), "published", True),
                            (2, sha(V2), len(V2), "published", True)],
          f"B has both versions with their hash, size and content: {vs}")
    check(it.get("title") == "deploy.sh", f"the artifact keeps its name in B: {it}")
    for n, want in (("1", V1), ("2", V2)):
        p = content(B, benv, art, n)
        check(p.returncode == 0 and p.stdout == want,
              f"B: artifact content {n} gives the bytes A published: {p.returncode} "
              f"{len(p.stdout)} bytes {p.stderr[-300:]!r}")
    p = subprocess.run([os.environ["CORTEX"], "--workspace", B, "show", art, "--content"],
                       capture_output=True, env=benv, timeout=60)
    check(p.returncode == 0 and p.stdout == V2, f"B: show --content gives the latest: "
                                                f"{p.returncode} {p.stderr[-300:]!r}")
    check(sorted(blob_files(B)) == sorted([sha(V1), sha(V2)]),
          f"B holds each content once, named by its hash: {sorted(blob_files(B))}")
    p = content(B, benv, art, "3")
    check(p.returncode == 1 and b"no version 3" in p.stderr,
          f"no version 3: exit 1: {p.returncode} {p.stderr!r}")
    p = content(B, benv, art, "x")
    check(p.returncode == 2, f"a version that is not a number is a usage error: {p.returncode}")

    # --- the same text observed in B folds into A's pulled observation
    p = cli(B, benv, "--json", "observe", " ".join(NOTE.split()))
    try:
        first = (json.loads(p.stdout).get("results") or [{}])[0]
    except ValueError:
        first = {}
    check(p.returncode == 0 and first.get("repeat") is True and first.get("id") == note_id,
          f"B's identical observation is a repeat of A's: {p.returncode} {p.stdout} {p.stderr}")
    p = cli(B, benv, "--json", "search", "PGPORT", "--kind", "observation")
    try:
        hits = json.loads(p.stdout).get("results", [])
    except ValueError:
        hits = []
    check(len(hits) == 1, f"B holds the note once: {p.stdout[:500]}")
    p = cli(B, benv, "--json", "status")
    try:
        backlog = json.loads(p.stdout)["sync"].get("backlog")
    except (ValueError, KeyError):
        backlog = None
    check(backlog == 0, f"the repeat pushes nothing: backlog {backlog}")

    # --- acceptance against the core travels
    p = cli(B, benv, "artifact", "accept", art, "2")
    check(p.returncode == 1, f"an agent key cannot accept: {p.returncode} {p.stderr}")
    p = cli(A, aenv, "artifact", "accept", art, "2")
    check(p.returncode == 0 and "Accepted version 2" in p.stdout,
          f"the reviewer accepts version 2 at the core: {p.returncode} {p.stdout} {p.stderr}")
    p = cli(A, aenv, "artifact", "accept", art, "7")
    check(p.returncode == 1, f"no version 7 at the core: exit 1: {p.returncode} {p.stderr}")
    p = cli(A, aenv, "artifact", "accept", art)
    check(p.returncode == 2, f"accept without a version: usage error: {p.returncode}")
    sync(B, benv, "B after the acceptance")
    it = show(B, benv, art)
    v2 = (it.get("versions") or [{}, {}])[-1]
    check(it.get("status") == "accepted" and v2.get("status") == "accepted"
          and v2.get("accepted_by") == "rita" and v2.get("accepted_at"),
          f"B sees version 2 accepted by the reviewer: {it.get('status')} {v2}")
    check((it.get("versions") or [{}])[0].get("status") == "published",
          f"version 1 stays published: {it.get('versions')}")
    sync(A, aenv, "A after the acceptance")
    check(show(A, aenv, art).get("status") == "accepted", "A sees it accepted too")
    # a new version of an accepted artifact, from the other workspace: the
    # core takes it (the push claims no acceptance), and it is published
    three = publish(B, benv, name="deploy.sh", content="#!/bin/sh\nexec ./release --all\n")
    check(three.get("artifact_id") == art and three.get("version") == 3,
          f"B adds version 3 to A's artifact: {three}")
    check(show(B, benv, art).get("status") == "published",
          "in B the artifact is published again: its status is its latest version's")
    p = sync(B, benv, "B pushes version 3")
    check("rejected" not in p.stderr, f"the core takes version 3: {p.stderr}")
    sync(A, aenv, "A pulls version 3")
    it = show(A, aenv, art)
    check([v.get("status") for v in it.get("versions", [])] ==
          ["published", "accepted", "published"] and it.get("status") == "published",
          f"A: version 3 published, version 2 still accepted: {it.get('versions')}")
    p = content(A, aenv, art, "3")
    check(p.returncode == 0 and p.stdout == b"#!/bin/sh\nexec ./release --all\n",
          f"A reads version 3: {p.returncode} {p.stderr!r}")

    # --- one name from two workspaces: two artifacts, none dropped
    a_same = publish(A, aenv, name="runbook.md", content="A's runbook\n")
    b_same = publish(B, benv, name="runbook.md", content="B's runbook\n")
    check(a_same.get("artifact_id") != b_same.get("artifact_id"), "two ids for one name")
    for ws, env, who in ((A, aenv, "A"), (B, benv, "B"), (A, aenv, "A"), (B, benv, "B")):
        p = sync(ws, env, who)
        check("skipped" not in p.stderr, f"{who}: nothing skipped: {p.stderr}")
    for ws, env, who in ((A, aenv, "A"), (B, benv, "B")):
        for got, text in ((a_same, b"A's runbook\n"), (b_same, b"B's runbook\n")):
            p = content(ws, env, got.get("artifact_id", "-"))
            check(p.returncode == 0 and p.stdout == text,
                  f"{who} holds {text!r} under its own id: {p.returncode} {p.stderr!r}")
            check(show(ws, env, got.get("artifact_id", "-")).get("title") == "runbook.md",
                  f"{who}: both are named runbook.md")
        st = json.loads(cli(ws, env, "--json", "status").stdout)
        check(st.get("sync", {}).get("skipped", 0) == 0, f"{who}: no pulled change skipped: {st}")
    oldest = min((a_same, b_same), key=lambda o: o.get("artifact_id", ""))
    again = publish(B, benv, name="runbook.md", content="B's runbook, revised\n")
    check(again.get("artifact_id") == oldest.get("artifact_id") and again.get("version") == 2,
          f"a later publish of the name adds a version to the oldest artifact: {again}")
    sync(B, benv, "B")
    sync(A, aenv, "A")
    p = content(A, aenv, oldest.get("artifact_id", "-"), "2")
    check(p.returncode == 0 and p.stdout == b"B's runbook, revised\n",
          f"A gets that version: {p.returncode} {p.stderr!r}")

    # --- a local acceptance (no upstream): the person there is the reviewer
    L, lenv = workspace(tmp, "L", None, None, [])
    loc = publish(L, lenv, name="notes.txt", content="local notes\n")
    p = cli(L, lenv, "artifact", "accept", loc.get("artifact_id", "-"), "1")
    check(p.returncode == 0, f"local accept: {p.returncode} {p.stderr}")
    it = show(L, lenv, loc.get("artifact_id", "-"))
    v = (it.get("versions") or [{}])[0]
    check(it.get("status") == "accepted" and v.get("accepted_by") == "l@example.com",
          f"accepted locally by CORTEX_AUTHOR: {it}")
    p = cli(L, lenv, "artifact", "accept", loc.get("artifact_id", "-"), "1")
    check(p.returncode == 0, f"accepting again changes nothing: {p.returncode} {p.stderr}")
    p = cli(L, lenv, "artifact", "accept", loc.get("artifact_id", "-"), "2")
    check(p.returncode == 1, f"no version 2 locally: exit 1: {p.returncode} {p.stderr}")
    p = cli(L, lenv, "artifact", "accept", "01JDQ8ZZZZZZZZZZZZZZZZZZZZ", "1")
    check(p.returncode == 1, f"no such artifact: exit 1: {p.returncode} {p.stderr}")
    p = cli(L, lenv, "artifact", "frobnicate")
    check(p.returncode == 2, f"unknown action: exit 2: {p.returncode}")
    core.stop()


GOOD = b"the content the version names\n"
EVIL = GOOD.upper()  # as long as what the version names: only the hash tells
LONG = b"a blob longer than its version says it is, by a lot"
T = "2026-12-01T10:00:00Z"
HUGE = b"<says it is 80 MiB>"
IDS = {"evil": "01JDQ8AAAAAAAAAAAAAAAAAA01", "long": "01JDQ8AAAAAAAAAAAAAAAAAA02",
       "gone": "01JDQ8AAAAAAAAAAAAAAAAAA03", "huge": "01JDQ8AAAAAAAAAAAAAAAAAA04"}
# name: (the hash its version names, the size it says (None: no size), what is served)
NAMED = {"evil": (sha(GOOD), len(GOOD), EVIL), "long": (sha(b"short"), 5, LONG),
         "gone": (sha(b"nowhere"), 7, None), "huge": (sha(b"huge"), None, HUGE)}


class Hostile(FakeCore):
    """A feed of three artifacts whose blobs it serves wrong (or not)."""

    def pull(self, since):
        if since >= len(NAMED):
            return {"changes": [], "next": since, "more": False}
        ch = []
        for seq, (name, (h, size, _)) in enumerate(NAMED.items(), 1):
            v = {"version": 1, "sha256": h, "status": "published", "created_at": T}
            if size is not None:
                v["size"] = size
            ch.append({"seq": seq, "item": {
                "id": IDS[name], "kind": "artifact", "status": "published", "title": name,
                "body": "", "tags": [], "visibility": "shared", "created_at": T,
                "updated_at": T, "versions": [v]}})
        return {"changes": ch, "next": len(NAMED), "more": False}

    def do_GET(self):
        if self.path.startswith("/v1/blobs/"):
            h = self.path[len("/v1/blobs/"):]
            body = next((b for (n, _, b) in NAMED.values() if n == h), None)
            if body is None:
                return self.answer(404, {"error": {"code": "not_found", "message": "no blob"}})
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            # past the limit of one version (64 MiB): the fetch stops at once
            big = body == HUGE
            self.send_header("Content-Length", str(80 << 20 if big else len(body)))
            if big:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            return
        return super().do_GET()


def hostile_core(tmp):
    fake = os.path.join(tmp, "fake")
    os.makedirs(fake)
    srv, url, cert = serve_fake_core(fake, Hostile)
    try:
        ws, env = fake_workspace(tmp, "H", url, cert)
        p = cli(ws, env, "sync", timeout=120)
        check(p.returncode == 0, f"the pull itself succeeds: {p.returncode} {p.stderr}")
        check("could not fetch the content of 4 artifact versions" in p.stderr,
              f"sync says what it could not fetch: {p.stderr}")
        want = {"evil": "hashes to " + sha(EVIL), "long": "more than the 5 bytes",
                "gone": "404", "huge": "larger than 67108864 bytes"}
        for name, needle in want.items():
            p = content(ws, env, IDS[name])
            err = p.stderr.decode(errors="replace")
            check(p.returncode == 1 and needle in err and "not on this machine" in err,
                  f"{name}: content refused with the reason: {p.returncode} {err}")
            check(not p.stdout, f"{name}: no bytes printed")
            it = show(ws, env, IDS[name])
            check([v.get("content") for v in it.get("versions", [])] == [False],
                  f"{name}: the version says its content is absent: {it.get('versions')}")
        files = blob_files(ws)
        check(files == {}, f"nothing a hostile core sent is kept: {sorted(files)}")
        st = json.loads(cli(ws, env, "--json", "status").stdout).get("sync", {})
        check("blob" in json.dumps(st.get("last_error")),
              f"status shows the failed fetch: {st.get('last_error')}")
        # a second sync does not ask again at once (bounded retries)
        p = cli(ws, env, "sync", timeout=120)
        check(p.returncode == 0 and "could not fetch" not in p.stderr,
              f"a failed blob is not fetched again on every pull: {p.stderr}")
    finally:
        srv.shutdown()


def tests(tmp):
    real_core(tmp)
    hostile_core(tmp)


run("cx-artifacts-", tests)
