#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# The review gate cannot be forged (issue 10, items 1 and 5), against a real
# cortex-core over HTTPS on 127.0.0.1 (a certificate made here) and a real
# sidecar (the cortex CLI):
#  - an agent key pushes each forged form (a draft `approved`, a canon
#    thread, an artifact `accepted`, a `review` object on a pending draft,
#    versions[].status `accepted`, an item.put turning a pending draft into
#    a thread or an approved draft, an accepted artifact.version, a
#    review.decision op); a reviewer key's item.put of a thread too: each op
#    is rejected with a reason, none is applied;
#  - the pull, and a sidecar that syncs it, show none of them as canon,
#    accepted or approved;
#  - the audit log holds a push.refused entry for each (item, claimed
#    status, principal) and `cortex-core verify-audit` passes;
#  - a reviewer's decision through /v1/drafts/{id}/decision, and an accept
#    through /v1/artifacts/{id}/versions/{n}/accept, still work;
#  - a shared draft citing a private note as evidence reaches the core
#    without the private id; the local draft keeps it.
# Every wait is bounded; processes are killed at the end.
import hashlib, http.client, json, os, sqlite3, ssl, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sync"))
from synclib import CORE, Core, check, cli, make_cert, run  # noqa: E402

ULID_CHARS = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_n = [0]
T = "2026-12-07T10:00:00Z"


def ulid():
    _n[0] += 1
    t, s = int(time.time() * 1000), ""
    for _ in range(10):
        s = ULID_CHARS[t % 32] + s
        t //= 32
    r, tail = _n[0], ""
    for _ in range(16):
        tail = ULID_CHARS[r % 32] + tail
        r //= 32
    return s + tail


def item(kind="observation", status="recorded", title="t", **kw):
    it = {"id": ulid(), "kind": kind, "status": status, "title": title, "body": "b",
          "tags": [], "author": "mallory", "created_at": T, "updated_at": T,
          "visibility": "shared"}
    it.update(kw)
    return it


class Client:
    def __init__(self, port, key, ctx):
        self.port, self.key, self.ctx = port, key, ctx

    def req(self, method, path, body=None, raw=None):
        c = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=30, context=self.ctx)
        h = {"Authorization": "Bearer " + self.key}
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if body is not None:
            h["Content-Type"] = "application/json"
        if raw is not None:
            h["Content-Type"] = "application/octet-stream"
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        payload = r.read()
        c.close()
        try:
            return r.status, json.loads(payload)
        except ValueError:
            return r.status, payload

    def push(self, *ops):
        st, js = self.req("POST", "/v1/sync/push", {"ops": list(ops)})
        check(st == 200, f"push answers 200 ({st} {js})")
        return js.get("results", []) if isinstance(js, dict) else []


def put(op_id, it):
    return {"op_id": op_id, "op": "item.put", "item": it}


def tests(tmp):
    data = os.path.join(tmp, "core")
    p = subprocess.run([CORE, "init", data], capture_output=True, text=True, timeout=60)
    check(p.returncode == 0, f"core init: {p.stderr}")
    keys = {}
    for role, name in (("agent", "mallory-agent"), ("reviewer", "rita-reviewer")):
        p = subprocess.run([CORE, "keys", "create", data, "--team", "T", "--role", role,
                            "--name", name], capture_output=True, text=True, timeout=60)
        keys[role] = p.stdout.strip()
    cert, key = make_cert(tmp)
    core = Core(tmp, data, tls=(cert, key))
    core.start()
    ctx = ssl.create_default_context(cafile=cert)
    A = Client(core.port, keys["agent"], ctx)
    R = Client(core.port, keys["reviewer"], ctx)

    # --- legitimate items the forgeries lean on
    draft = item(kind="draft", status="pending", title="Pin the toolchain")
    res = A.push(put("legit-draft", draft))
    check([r.get("status") for r in res] == ["applied"], f"a pending draft is applied: {res}")
    content = b"#!/bin/sh\necho build\n"
    sha = hashlib.sha256(content).hexdigest()
    st, _ = A.req("PUT", f"/v1/blobs/{sha}", raw=content)
    check(st in (200, 201), f"blob uploaded ({st})")
    art = item(kind="artifact", status="published", title="build.sh")
    res = A.push({"op_id": "legit-art", "op": "artifact.version", "item": art,
                  "version": {"version": 1, "sha256": sha, "size": len(content),
                              "status": "published", "created_at": T}})
    check([r.get("status") for r in res] == ["applied"], f"a published version is applied: {res}")

    # --- every forged form, each its own op
    admin_review = {"decision": "approve", "reviewer": "admin", "at": T}
    forged = {
        "draft-approved": put("f-draft-approved", item(kind="draft", status="approved")),
        "thread-canon": put("f-thread", item(kind="thread", status="canon",
                                              review=admin_review)),
        "artifact-accepted": put("f-art-accepted", item(kind="artifact", status="accepted")),
        "review-on-pending-draft": put("f-review", dict(draft, review=admin_review)),
        "review-on-observation": put("f-review-obs", item(review=admin_review)),
        "versions-accepted": put("f-versions", dict(art, versions=[
            {"version": 1, "sha256": sha, "status": "accepted", "accepted_by": "admin",
             "accepted_at": T}])),
        "draft-to-thread": put("f-to-thread", dict(draft, kind="thread", status="canon")),
        "draft-to-approved": put("f-to-approved", dict(draft, status="approved")),
        "version-op-accepted": {"op_id": "f-ver-op", "op": "artifact.version",
                                "item": dict(art, status="accepted"),
                                "version": {"version": 2, "sha256": sha, "status": "accepted",
                                            "accepted_by": "admin"}},
        "new-artifact-accepted-op": {"op_id": "f-ver-new", "op": "artifact.version",
                                     "item": item(kind="artifact", status="accepted"),
                                     "version": {"version": 1, "sha256": sha}},
        "review-decision-op": {"op_id": "f-decision", "op": "review.decision", "item": draft,
                               "review": {"decision": "approve", "at": T}},
    }
    refused = {}
    for name, op in forged.items():
        res = A.push(op)
        r0 = res[0] if res else {}
        check(r0.get("status") == "rejected" and r0.get("reason", "").startswith("forbidden"),
              f"{name}: rejected as forbidden with a reason: {r0}")
        refused[name] = (op["item"]["id"], r0.get("reason", ""))
    check("only a reviewer's decision may set status approved" in refused["draft-approved"][1],
          f"the reason says who sets the status: {refused['draft-approved']}")
    # the same forged push again is refused again (no op id is kept for it)
    res = A.push(forged["thread-canon"])
    check(res and res[0].get("status") == "rejected", f"a forged op sent again: {res}")
    # a reviewer key's item.put may not write a thread either: only decisions do
    rthread = item(kind="thread", status="canon", title="reviewer shortcut")
    res = R.push(put("r-thread", rthread))
    check(res and res[0].get("status") == "rejected" and "forbidden" in res[0].get("reason", ""),
          f"a reviewer's item.put of a thread is refused: {res}")
    # one push mixing a forged op and a good one: only the good one applies
    good = item(title="an honest observation")
    res = A.push(put("mix-forged", item(kind="draft", status="rejected")), put("mix-good", good))
    check([r.get("status") for r in res] == ["rejected", "applied"],
          f"the forged op of a batch is refused, the rest applies: {res}")

    # an observation claiming canon is outside item.json: the whole push is
    # refused with 400 naming the field, and the claim is audited too
    obs_canon = item(status="canon", review=admin_review)
    st, js = A.req("POST", "/v1/sync/push", {"ops": [put("f-obs-canon", obs_canon)]})
    msg = js.get("error", {}).get("message", "") if isinstance(js, dict) else ""
    check(st == 400 and msg.startswith("ops[0].item.status"),
          f"an observation claiming canon: 400 naming item.status ({st} {msg!r})")

    # --- the pull: none of them canon, accepted or approved
    st, page = A.req("GET", "/v1/sync/pull?since=0&limit=1000")
    check(st == 200, f"pull {st}")
    items = {c["item"]["id"]: c["item"] for c in page.get("changes", []) if "item" in c}
    forged_ids = {i for i, _ in refused.values()} - {draft["id"], art["id"]}
    forged_ids.add(obs_canon["id"])
    check(not forged_ids & set(items), f"no forged item in the feed: {forged_ids & set(items)}")
    check(rthread["id"] not in items, "the reviewer's forged thread is not in the feed")
    d = items.get(draft["id"], {})
    check(d.get("kind") == "draft" and d.get("status") == "pending" and "review" not in d,
          f"the draft is still pending with no review: {d}")
    a = items.get(art["id"], {})
    check(a.get("status") == "published" and
          all(v.get("status") == "published" and "accepted_by" not in v
              for v in a.get("versions", [])) and len(a.get("versions", [])) == 1,
          f"the artifact is published, one version, none accepted: {a}")
    for it in items.values():
        check(it.get("status") not in ("canon", "accepted", "approved"),
              f"nothing in the feed is canon/accepted/approved before a reviewer: {it['id']}")

    # --- the audit log: one push.refused per refused op, naming item,
    # claimed status and principal; the chain verifies
    with sqlite3.connect(os.path.join(data, "core.db")) as db:
        rows = [(actor, json.loads(detail)) for actor, detail in db.execute(
            "SELECT actor, detail FROM audit WHERE action = 'push.refused' ORDER BY n")]
    by_item = {}
    for actor, det in rows:
        by_item.setdefault(det.get("item"), []).append((actor, det))
    for name, op in forged.items():
        entries = by_item.get(op["item"]["id"], [])
        claimed = op["item"]["status"]
        check(any(actor == "mallory-agent" and det.get("status") == claimed
                  and det.get("op") == op["op"] and det.get("reason", "").startswith("forbidden")
                  and det.get("role") == "agent" for actor, det in entries),
              f"{name}: the audit log holds its refusal: {entries}")
    check(len(rows) == len(forged) + 4,
          f"one entry per refused op ({len(rows)} for {len(forged) + 4})")
    oc = by_item.get(obs_canon["id"], [])
    check(len(oc) == 1 and oc[0][0] == "mallory-agent" and oc[0][1].get("status") == "canon"
          and oc[0][1].get("kind") == "observation",
          f"the observation claiming canon is audited: {oc}")
    check(any(actor == "rita-reviewer" for actor, det in by_item.get(rthread["id"], [])),
          "the reviewer's refused thread is audited under the reviewer")
    p = subprocess.run([CORE, "verify-audit", data], capture_output=True, text=True, timeout=60)
    check(p.returncode == 0 and "ok" in p.stdout, f"verify-audit: {p.stdout} {p.stderr}")

    # --- the reviewer's paths still work, and are what the feed shows
    st, js = R.req("POST", f"/v1/drafts/{draft['id']}/decision", {"decision": "approve",
                                                                 "note": "pinned"})
    check(st == 200 and js.get("item", {}).get("status") == "canon"
          and js["item"].get("review", {}).get("reviewer") == "rita-reviewer",
          f"a reviewer's decision makes the canon thread: {st} {js}")
    st, js = R.req("POST", f"/v1/artifacts/{art['id']}/versions/1/accept")
    check(st == 200 and js.get("item", {}).get("status") == "accepted",
          f"a reviewer accepts the version: {st} {js}")
    # an agent's text edit of the canon thread is refused too
    res = A.push(put("f-edit-canon", dict(draft, kind="thread", status="canon",
                                         body="poisoned", review=js.get("item", {}).get("review"))))
    check(res and res[0].get("status") == "rejected", f"an agent cannot rewrite canon: {res}")
    st, page = A.req("GET", "/v1/sync/pull?since=0&limit=1000")
    items = {c["item"]["id"]: c["item"] for c in page.get("changes", []) if "item" in c}
    check(items.get(draft["id"], {}).get("status") == "canon"
          and items[draft["id"]].get("body") == "b", "the thread is canon, its text the draft's")

    # --- a sidecar syncing this feed: the forged items are nowhere, the
    # reviewed ones are canon / accepted
    env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(tmp, "home"))
    env.pop("CORTEX_WORKSPACE", None)
    ws = os.path.join(tmp, "W")
    os.makedirs(ws)
    p = cli(ws, env, "remote", "set", core.url(), "--ca-file", cert)
    check(p.returncode == 0, f"remote set: {p.stderr}")
    p = cli(ws, env, "login", stdin=keys["agent"] + "\n")
    check(p.returncode == 0, f"login: {p.returncode} {p.stderr}")
    priv = cli(ws, env, "--json", "observe", "a private note about the heronmint laptop",
               "--private")
    check(priv.returncode == 0, f"private observe: {priv.stderr}")
    priv_id = json.loads(priv.stdout)["results"][0]["id"] if priv.returncode == 0 else "?"
    shared = cli(ws, env, "--json", "observe", "the heronmint build needs 4 GiB")
    shared_id = json.loads(shared.stdout)["results"][0]["id"] if shared.returncode == 0 else "?"
    p = cli(ws, env, "--json", "draft", "--title", "heronmint memory", "--evidence", priv_id,
            "--evidence", shared_id, "The heronmint build needs 4 GiB of memory.")
    check(p.returncode == 0, f"draft citing a private note: {p.stderr}")
    local_draft = json.loads(p.stdout).get("id") if p.returncode == 0 else "?"
    p = cli(ws, env, "sync")
    check(p.returncode == 0, f"cortex sync: {p.returncode} {p.stderr}")
    for name, (fid, _) in refused.items():
        if fid in (draft["id"], art["id"]):
            continue
        p = cli(ws, env, "--json", "show", fid)
        check(p.returncode != 0, f"{name}: the sidecar does not hold the forged item")
    p = cli(ws, env, "--json", "show", draft["id"])
    shown = json.loads(p.stdout) if p.returncode == 0 else {}
    shown = shown.get("item", shown)
    check(shown.get("kind") == "thread" and shown.get("status") == "canon",
          f"the sidecar holds the reviewed thread as canon: {p.stdout[:300]}")
    # the private id stayed local: the core's draft cites only the shared one
    st, page = A.req("GET", "/v1/sync/pull?since=0&limit=1000")
    items = {c["item"]["id"]: c["item"] for c in page.get("changes", []) if "item" in c}
    core_draft = items.get(local_draft, {})
    check(core_draft.get("evidence") == [shared_id],
          f"the pushed evidence has no private id: {core_draft.get('evidence')}")
    check(priv_id not in json.dumps(page), "the private id is nowhere in the core's feed")
    leaks = []
    for root, _, files in os.walk(data):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                if priv_id.encode() in fh.read():
                    leaks.append(f)
    check(not leaks, f"the private id is nowhere in the core's data directory: {leaks}")
    p = cli(ws, env, "--json", "show", local_draft)
    check(p.returncode == 0 and priv_id in p.stdout, "the local draft keeps its private evidence")
    p = subprocess.run([CORE, "verify-audit", data], capture_output=True, text=True, timeout=60)
    check(p.returncode == 0, f"verify-audit at the end: {p.stdout}")
    core.stop()


if __name__ == "__main__":
    run("cortex-forged-", tests)
