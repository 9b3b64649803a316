#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The review app's read endpoints (issue 14, src/core/views.c) on a real
cortex-core over HTTPS, on SQLite and (through with-pg.py) on PostgreSQL:
keys made with the CLI, items pushed with /v1/sync/push, every answer
validated against protocol/sync/schemas with test-core.py's validator.

- search: a word of the body and of the title is found, threads first,
  the kind/status/subcortex filters, never another team's item nor a
  tombstone, hostile queries (`"`, `*`, `NEAR(`, `-x`, `a:b`, empty) never
  a 500, a 300-byte q is a 400, snippets plain and at most 240 bytes;
- an item with its evidence (stale + stale_paths, a missing id), comments
  and history after a decision; another team's id and a tombstone are 404;
- the review queue's subcortex filter, evidence_count and subcortices;
- artifacts newest first; the audit log newest first, the team's only,
  paged, verification ok, and (SQLite) bad after a row is edited while the
  core is stopped;
- team activity: observations per day on chosen days, drafts waiting,
  approval latency, and the record of a real workspace's sync (the
  sidecar's X-Cortex-Workspace header).
Without PostgreSQL the SQLite half runs alone and says so."""
import datetime
import hashlib
import importlib.util
import json
import os
import sqlite3
import sys
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "sync"))
from corelib import Http, core, make_key, sync, workspace  # noqa: E402
from synclib import Core, check, make_cert, run, wait_until  # noqa: E402

# test-core.py's schema validator, imported (not copied)
_spec = importlib.util.spec_from_file_location("test_core", os.path.join(HERE, "test-core.py"))
tc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tc)

URI = os.environ.get("CORTEX_TEST_PG_URI")
ULID_CHARS = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_n = [0]


def conforms(body, schema, what):
    errs = tc.validate(body, tc.load_schema(schema), schema)
    check(not errs, f"{what}: the answer does not match {schema}: {errs[:3]}")


def ulid():
    _n[0] += 1
    t, s = int(datetime.datetime.now().timestamp() * 1000), ""
    for _ in range(10):
        s = ULID_CHARS[t % 32] + s
        t //= 32
    r, tail = _n[0], ""
    for _ in range(16):
        tail = ULID_CHARS[r % 32] + tail
        r //= 32
    return s + tail


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


NOW = datetime.datetime.now(datetime.timezone.utc)
ODD = 'src/\u00fc "q"\\x.c'  # a path JSON spells with escapes


def item(title, body, kind="observation", status="recorded", created=None, **kw):
    at = iso(created or NOW)
    it = {"id": ulid(), "kind": kind, "status": status, "title": title, "body": body,
          "tags": ["t"], "author": "ann", "agent": "claude", "created_at": at,
          "updated_at": at, "visibility": "shared", "subcortex": "build"}
    it.update(kw)
    return it


def put(http, *items):
    ops = [{"op_id": "op-" + it["id"], "op": "item.put", "item": it} for it in items]
    st, js = http.push(ops)
    ok = st == 200 and all(r.get("status") == "applied" for r in js.get("results", []))
    check(ok, f"push applied: {st} {js}")


def get(http, path, **params):
    q = urllib.parse.urlencode(params)
    return http.req(path + ("?" + q if q else ""))


def msg(js):
    """An error answer's message."""
    return (js.get("error") or {}).get("message", "") if isinstance(js, dict) else ""


def ids(js):
    return [r["id"] for r in js.get("results", [])]


def scenario(tmp, name, data, c, cert):
    """Everything on one running core; returns what the SQLite half needs
    for its audit-corruption check."""
    ka = make_key(data, "A", "agent", "a-agent")
    kr = make_key(data, "A", "reviewer", "a-rev")
    kb = make_key(data, "B", "reviewer", "b-rev")
    A, R, B = (Http(c.port, cert, k) for k in (ka, kr, kb))

    # --- items
    d2 = NOW - datetime.timedelta(days=2)
    obs1 = item("Linker flakes on arm64", "The gold linker fails with a relocation overflow "
                "when the image grows past 2 GiB.", created=d2,
                provenance={"files": [{"path": "build/ld.sh", "blob": "a" * 40},
                                      {"path": "build/keep.sh", "blob": "c" * 40},
                                      {"path": ODD, "blob": "d" * 40}]})
    obs2 = item("ld.sh now passes --no-relax", "Changed the linker flags.", created=d2,
                provenance={"files": [{"path": "build/keep.sh", "blob": "c" * 40},
                                      {"path": "build/ld.sh", "blob": "b" * 40},
                                      {"path": ODD, "blob": "e" * 40}]})
    # a member of another object named created_at, before the item's own:
    # the day counted is the item's (the activity view reads the member
    # without parsing when it occurs once)
    obs2 = {"meta": {"created_at": iso(NOW)}, **obs2}
    obs3 = item("Cache warms slowly", "Nothing about linkers here.")
    missing = ulid()
    draft1 = item("Use lld for arm64 builds", "lld avoids the relocation overflow of gold.",
                  kind="draft", status="pending", created=NOW - datetime.timedelta(hours=2),
                  evidence=[obs1["id"], missing])
    draft2 = item("Rotate the auth tokens weekly", "Tokens older than a week fail relocation "
                  "checks.", kind="draft", status="pending", subcortex="auth",
                  evidence=[obs3["id"]])
    gone = item("zebracorn secret note", "zebracorn appears only here")
    long_body = ("filler words " * 300) + "needlework appears in the middle " + ("tail " * 300)
    longi = item("A long note", long_body)
    put(A, obs1, obs2, obs3, draft1, draft2, gone, longi)
    other = item("Team B relocation overflow", "relocation overflow zebracorn in team B")
    put(B, other)
    comment = item("Re: lld", "Tried it, works.", kind="comment", parent_id=draft1["id"])
    put(A, comment)
    content = b"#!/bin/sh\nexec lld \"$@\"\n"
    sha = hashlib.sha256(content).hexdigest()
    st, _ = A.req("/v1/blobs/missing", {"sha256": [sha]})
    st_put = 0
    import urllib.request
    r = urllib.request.Request(A.base + f"/v1/blobs/{sha}", data=content, method="PUT",
                               headers={"Authorization": f"Bearer {ka}",
                                        "Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(r, context=A.ctx, timeout=60) as res:
        st_put = res.status
    check(st_put in (200, 201), f"blob stored: {st_put}")
    art = item("lld.sh", "the wrapper", kind="artifact", status="published")
    st, js = A.push([{"op_id": "art-" + art["id"], "op": "artifact.version", "item": art,
                      "version": {"version": 1, "sha256": sha, "size": len(content),
                                  "status": "published"}}])
    check(st == 200 and js["results"][0]["status"] == "applied", f"artifact pushed: {js}")

    # a decision: draft1 becomes canon (a thread)
    st, js = R.req(f"/v1/drafts/{draft1['id']}/decision", {"decision": "approve",
                                                           "note": "ship it"})
    check(st == 200, f"{name}: approve: {st} {js}")
    # team B's audit entries exist too (B's reviewer decides B's draft)
    bd = item("B draft", "b", kind="draft", status="pending")
    put(B, bd)
    st, _ = B.req(f"/v1/drafts/{bd['id']}/decision", {"decision": "reject", "note": "no"})
    check(st == 200, f"{name}: team B decided")
    p = core("forget", data, "--team", "A", gone["id"], "--reason", "test")
    check(p.returncode == 0, f"{name}: forget: {p.stderr}")

    # --- search
    st, js = get(A, "/v1/search", q="relocation")
    check(st == 200, f"{name}: search 200: {st} {js}")
    conforms(js, "search.json", f"{name}: search")
    found = ids(js)
    check(found[:1] == [draft1["id"]] and obs1["id"] in found and draft2["id"] in found,
          f"{name}: search finds body words, the thread first: {found}")
    kinds = [r["kind"] for r in js["results"]]
    check(kinds[0] == "thread", f"{name}: the approved draft is a thread now: {kinds}")
    check(other["id"] not in found, f"{name}: never another team's item")
    check(js["total"] == len(found), f"{name}: total counts the matches: {js['total']}")
    st, js = get(A, "/v1/search", q="arm64")
    found = ids(js)
    check(set(found) == {draft1["id"], obs1["id"]} and found[0] == draft1["id"],
          f"{name}: a title word is found, thread first: {found}")
    st, js = get(A, "/v1/search", q="overflow gold")
    check(set(ids(js)) == {obs1["id"], draft1["id"]}, f"{name}: words are ANDed: {ids(js)}")
    st, js = get(A, "/v1/search", q="relocation", kind="observation")
    check(ids(js) == [obs1["id"]], f"{name}: kind filter: {ids(js)}")
    st, js = get(A, "/v1/search", q="relocation", subcortex="auth")
    check(ids(js) == [draft2["id"]], f"{name}: subcortex filter: {ids(js)}")
    st, js = get(A, "/v1/search", q="relocation", status="pending")
    check(ids(js) == [draft2["id"]], f"{name}: status filter: {ids(js)}")
    st, js = get(A, "/v1/search", q="zebracorn")
    check(st == 200 and ids(js) == [] and js["total"] == 0,
          f"{name}: a tombstone and another team's item never appear: {js}")
    st, js = get(A, "/v1/search", kind="observation")
    obs_ids = ids(js)
    check(st == 200 and obs_ids[:2] == [longi["id"], obs3["id"]] and gone["id"] not in obs_ids,
          f"{name}: empty q with a filter: newest first: {obs_ids}")
    st, js = get(A, "/v1/search", q="needlework")
    snip = js["results"][0]["snippet"] if js.get("results") else ""
    check("needlework" in snip and len(snip.encode()) <= 240,
          f"{name}: the snippet shows the hit, at most 240 bytes: {snip!r}")
    st, js = get(A, "/v1/search", q="relocation", limit=1)
    check(len(js["results"]) == 1 and js["total"] >= 3, f"{name}: limit: {js}")
    for q in ['"', '""', "*", "NEAR(", "NEAR(a b)", "-x", "a:b", "title:lld", "lld*",
              "relocation OR zebracorn", "\\", "'; DROP TABLE items; --", "é ü 中文", " ", "^"]:
        st, js = get(A, "/v1/search", q=q)
        check(st == 200 and "results" in js, f"{name}: hostile q {q!r} answered: {st} {js}")
        check(other["id"] not in ids(js) and gone["id"] not in ids(js),
              f"{name}: hostile q {q!r} stays in the team")
    st, js = A.req("/v1/search?q=%FF%FE")
    check(st == 400 and "q" in msg(js), f"{name}: a q that is not UTF-8 is 400: {st} {js}")
    st, js = A.req("/v1/search?q=%00relocation")
    check(st in (200, 400), f"{name}: a NUL in q is answered: {st}")
    st, js = get(A, "/v1/search", q="relocation OR zebracorn")
    check(ids(js) == [], f"{name}: OR is a word, not syntax: {ids(js)}")
    st, js = get(A, "/v1/search", q="x" * 300)
    check(st == 400 and "q" in msg(js), f"{name}: a 300-byte q is 400: {st} {js}")
    conforms(js, "error.json", f"{name}: 400")
    for params, what in [({"kind": "nope"}, "kind"), ({"status": "nope"}, "status"),
                         ({"limit": "0"}, "limit"), ({"limit": "201"}, "limit"),
                         ({"limit": "x"}, "limit"), ({"subcortex": "s" * 65}, "subcortex")]:
        st, js = get(A, "/v1/search", **params)
        check(st == 400 and what in msg(js),
              f"{name}: {params} is a 400 naming {what}: {st} {js}")

    # --- one item
    st, js = get(A, f"/v1/items/{draft1['id']}")
    check(st == 200, f"{name}: item view: {st} {js}")
    conforms(js, "item-view.json", f"{name}: item view")
    ev = {e["id"]: e for e in js.get("evidence", [])}
    check(ev.get(obs1["id"], {}).get("stale") is True
          and ev[obs1["id"]].get("stale_paths") == ["build/ld.sh", ODD],
          f"{name}: the evidence is stale on the file a newer item changed: {ev.get(obs1['id'])}")
    check(ev.get(missing) == {"id": missing, "missing": True}, f"{name}: missing evidence: {ev}")
    check([x["id"] for x in js.get("comments", [])] == [comment["id"]], f"{name}: comments")
    hist = js.get("history", [])
    check(len(hist) == 1 and hist[0]["action"] == "review.decision"
          and hist[0]["actor"] == "a-rev" and hist[0]["detail"].get("decision") == "approve",
          f"{name}: history holds the decision: {hist}")
    check(js.get("item", {}).get("kind") == "thread", f"{name}: the item is canon now")
    st, js = get(A, f"/v1/items/{draft1['id'].lower()}")
    check(st == 200, f"{name}: an id in lower case names the same item")
    st, js = get(A, f"/v1/items/{obs3['id']}")
    check(st == 200 and js["evidence"] == [] and js["history"] == [], f"{name}: plain item")
    st, js = get(A, f"/v1/items/{other['id']}")
    check(st == 404, f"{name}: another team's item is 404: {st}")
    conforms(js, "error.json", f"{name}: 404")
    st, js = get(A, f"/v1/items/{gone['id']}")
    check(st == 404, f"{name}: a tombstone is 404: {st}")
    st, js = get(A, f"/v1/items/{ulid()}")
    check(st == 404, f"{name}: an unknown id is 404")

    # --- the review queue
    draft3 = item("Pin the toolchain", "pin it", kind="draft", status="pending",
                  evidence=[obs1["id"], obs2["id"]])
    put(A, draft3)
    st, js = get(A, "/v1/review/queue")
    check(st == 200 and [d["id"] for d in js["drafts"]] == [draft2["id"], draft3["id"]]
          and js["total"] == 2 and js.get("subcortices") == ["auth", "build"],
          f"{name}: the queue, oldest first, with its subcortices: {js}")
    conforms(js, "review-queue.json", f"{name}: queue")
    check([d.get("evidence_count") for d in js["drafts"]] == [1, 2], f"{name}: evidence_count")
    st, js = get(A, "/v1/review/queue", subcortex="build")
    check([d["id"] for d in js["drafts"]] == [draft3["id"]] and js["total"] == 1
          and js["subcortices"] == ["auth", "build"], f"{name}: the subcortex filter: {js}")
    st, js = get(B, "/v1/review/queue")
    check(st == 200 and js["drafts"] == [] and js["subcortices"] == [],
          f"{name}: team B sees none of A's queue: {js}")

    # --- artifacts
    st, js = get(A, "/v1/artifacts")
    check(st == 200 and [a["id"] for a in js.get("artifacts", [])] == [art["id"]]
          and js["artifacts"][0]["versions"][0]["sha256"] == sha,
          f"{name}: artifacts with their versions: {js}")
    conforms(js, "artifacts.json", f"{name}: artifacts")
    st, js = get(B, "/v1/artifacts")
    check(st == 200 and js["artifacts"] == [], f"{name}: team B has no artifact")

    # --- audit
    st, js = get(A, "/v1/audit")
    check(st == 200, f"{name}: audit: {st} {js}")
    conforms(js, "audit.json", f"{name}: audit")
    ns = [e["n"] for e in js["entries"]]
    check(ns == sorted(ns, reverse=True) and len(ns) >= 2, f"{name}: newest first: {ns}")
    check(all(e["action"] != "review.decision" or e["detail"].get("item") != bd["id"]
              for e in js["entries"]), f"{name}: never team B's entries")
    check(js["verification"]["ok"] is True and js["verification"]["bad"] is None
          and js["verification"]["entries"] >= len(ns) + 1,
          f"{name}: the chain verifies (B's entries counted): {js['verification']}")
    st, page1 = get(A, "/v1/audit", limit=1)
    check(len(page1["entries"]) == 1 and page1["next_before"] == page1["entries"][0]["n"],
          f"{name}: a page of one: {page1}")
    st, page2 = get(A, "/v1/audit", limit=1, before=page1["next_before"])
    check(page2["entries"] and page2["entries"][0]["n"] == ns[1], f"{name}: the next page")
    st, js = get(A, "/v1/audit", before="x")
    check(st == 400 and "before" in msg(js), f"{name}: bad before is 400")

    # --- team activity, with a real workspace's sync
    ws, env = workspace(tmp, "Repo One" if name == "sqlite" else "Repo Two", c.url(), cert, [ka])
    sync(ws, env, f"{name}: workspace")
    st, js = get(A, "/v1/team/activity", days=7)
    check(st == 200, f"{name}: activity: {st} {js}")
    conforms(js, "activity.json", f"{name}: activity")
    per = {d["day"]: d["count"] for d in js.get("observations_per_day", [])}
    today, two = NOW.strftime("%Y-%m-%d"), d2.strftime("%Y-%m-%d")
    check(len(per) == 7 and per.get(two) == 2 and per.get(today) == 2 and sum(per.values()) == 4,
          f"{name}: observations per day (the forgotten one gone): {per}")
    dw = js.get("drafts_waiting", {})
    check(dw.get("count") == 2 and dw.get("oldest_age_s", -1) >= 0, f"{name}: drafts waiting {dw}")
    al = js.get("approval_latency", {})
    check(al.get("count") == 1 and 7000 <= (al.get("median_s") or 0) <= 9000,
          f"{name}: approval latency ~2 h: {al}")
    wss = {w["workspace"]: w for w in js.get("workspaces", [])}
    want = "Repo-One" if name == "sqlite" else "Repo-Two"
    st2, feed = get(A, "/v1/sync/pull", since=0, limit=500)
    last = max((ch.get("seq", 0) for ch in feed.get("changes", [])), default=0)
    check(want in wss and wss[want]["principal"] == "a-agent" and wss[want]["lag"] == 0
          and wss[want]["cursor"] == last,
          f"{name}: the workspace's sync is recorded (name sanitised): {wss} last={last}")
    st, js = get(A, "/v1/team/activity", days=0)
    check(st == 400 and "days" in msg(js), f"{name}: days=0 is 400")
    st, js = get(A, "/v1/team/activity", days=366)
    check(st == 400, f"{name}: days=366 is 400")
    st, js = get(B, "/v1/team/activity")
    check(st == 200 and js["workspaces"] == [] and js["drafts_waiting"]["count"] == 0,
          f"{name}: team B sees none of A's activity: {js}")
    # a revised draft is found by its new words only (the index follows an
    # update); forgotten, it leaves the index
    rev = item("Quasar draft", "the quasar pipeline", kind="draft", status="pending")
    put(A, rev)
    rev2 = dict(rev, title="Pulsar draft", body="the pulsar pipeline",
                updated_at=iso(NOW + datetime.timedelta(seconds=1)))
    st, js = A.push([{"op_id": "rev-" + rev["id"], "op": "item.put", "item": rev2}])
    check(st == 200 and js["results"][0]["status"] == "applied", f"{name}: revised: {js}")
    st, js = get(A, "/v1/search", q="quasar")
    check(ids(js) == [], f"{name}: a revised item's old words are gone: {ids(js)}")
    st, js = get(A, "/v1/search", q="pulsar")
    check(ids(js) == [rev["id"]], f"{name}: its new words are found: {ids(js)}")
    p = core("forget", data, "--team", "A", rev["id"])
    check(p.returncode == 0, f"{name}: forget the revised draft: {p.stderr}")
    st, js = get(A, "/v1/search", q="pulsar pipeline")
    check(st == 200 and ids(js) == [], f"{name}: a forgotten item leaves the index: {ids(js)}")
    # every view needs a key
    st, js = Http(c.port, cert, "cxk_0000000000000000_nope").req("/v1/search?q=x")
    check(st == 401, f"{name}: a bad key is 401")
    return A, bd


def tests(tmp):
    cert, key = make_cert(tmp)
    data = os.path.join(tmp, "data")
    p = core("init", data)
    check(p.returncode == 0, f"init: {p.stderr}")
    c = Core(tmp, data, tls=(cert, key))
    c.start()
    A, _ = scenario(tmp, "sqlite", data, c, cert)
    # an audit row edited while the core is stopped: the view says so
    c.stop()
    with sqlite3.connect(os.path.join(data, "core.db")) as db:
        n = db.execute("SELECT min(n) FROM audit WHERE team = 'A'").fetchone()[0]
        db.execute("UPDATE audit SET detail = '{\"item\":\"edited\"}' WHERE n = ?", (n,))
    c.start()
    A = Http(c.port, cert, A.key)
    st, js = get(A, "/v1/audit")
    check(st == 200 and js["verification"]["ok"] is False and js["verification"]["bad"] == n,
          f"sqlite: an edited row breaks the chain at it: {js.get('verification')}")
    conforms(js, "audit.json", "sqlite: audit, broken")
    c.stop()
    # an existing core.db (the index built on open): drop the index, reopen
    with sqlite3.connect(os.path.join(data, "core.db")) as db:
        db.executescript("DROP TRIGGER items_fts_ins; DROP TRIGGER items_fts_upd;"
                         " DROP TRIGGER items_fts_del; DROP TABLE items_fts; DROP TABLE fts_queue;"
                         " DROP TABLE syncs;")
    c.start()
    A = Http(c.port, cert, A.key)

    def queued():
        with sqlite3.connect(f"file:{os.path.join(data, 'core.db')}?mode=ro", uri=True) as db:
            return db.execute("SELECT count(*) FROM fts_queue").fetchone()[0]

    # the upgrade queues every live item; idle push threads index them
    # without a search asking (bounded wait)
    check(wait_until(lambda: queued() == 0, 30),
          f"sqlite: the upgraded core.db's items are indexed while idle: {queued()} queued")
    st, js = get(A, "/v1/search", q="needlework")
    check(st == 200 and len(js["results"]) == 1,
          f"sqlite: a core.db without the index gets it on open: {st} {js}")
    c.stop()
    with sqlite3.connect(os.path.join(data, "core.db")) as db:
        db.execute("INSERT INTO items_fts(items_fts) VALUES ('integrity-check')")
        n_fts = db.execute("SELECT count(*) FROM items_fts").fetchone()[0]
        n_queued = db.execute("SELECT count(*) FROM fts_queue").fetchone()[0]
        n_both = db.execute("SELECT count(*) FROM fts_queue q JOIN items_fts f"
                            " ON f.rowid = q.rid").fetchone()[0]
        n_live = db.execute("SELECT count(*) FROM items WHERE deleted = 0").fetchone()[0]
    check(n_fts + n_queued == n_live and n_both == 0,
          f"sqlite: every live item is indexed or queued for it, once: {n_fts} + {n_queued}"
          f" (both {n_both}), {n_live} live")

    if not URI:
        print("test-web-data: the PostgreSQL half did not run: CORTEX_TEST_PG_URI is not set "
              "(PostgreSQL missing, or not run through tests/core/with-pg.py)", flush=True)
        return
    pdata = os.path.join(tmp, "pg-data")
    p = core("init", pdata, "--database", URI)
    check(p.returncode == 0, f"init --database: {p.stderr}")
    cp = Core(tmp, pdata, tls=(cert, key))
    cp.start()
    scenario(tmp, "postgresql", pdata, cp, cert)
    cp.stop()


if __name__ == "__main__":
    run("cortex-web-data-", tests)
