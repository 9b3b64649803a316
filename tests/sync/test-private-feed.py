#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# A core's feed never touches a private note. Two private notes are recorded
# in a workspace (`cortex observe --private`); a FAKE core (synclib's
# FakeCore over TLS on 127.0.0.1) then serves a pull page holding a
# teammate's shared item under the id of the first (as if the id had leaked)
# and a tombstone for the second. After `cortex sync`:
# - the sync exits 0;
# - both private notes are still there, text and visibility unchanged;
# - nothing private was pushed (the core received no op for either id).
# Prints "N passed, N failed"; exits non-zero on any failure.
import json
import threading

from synclib import FakeCore, check, cli, fake_workspace, run, serve_fake_core, sync_state

lock = threading.Lock()
page = {"changes": [], "next": 0, "more": False}
pushed_ids = []


class Handler(FakeCore):
    def pull(self, since):
        with lock:
            return page if since < page["next"] else {"changes": [], "next": since,
                                                      "more": False}

    def push(self, req):
        with lock:
            pushed_ids.extend(o.get("item", {}).get("id") for o in req.get("ops", []))
        return super().push(req)


def observe_private(ws, env, text):
    p = cli(ws, env, "--json", "observe", "--private", text)
    check(p.returncode == 0, f"observe --private: {p.stderr}")
    try:
        return json.loads(p.stdout)["results"][0]["id"]
    except (ValueError, KeyError, IndexError):
        check(False, f"observe answered an id: {p.stdout}")
        return None


def show(ws, env, item_id):
    p = cli(ws, env, "--json", "show", item_id)
    try:
        return json.loads(p.stdout) if p.returncode == 0 else None
    except ValueError:
        return None


def tests(tmp):
    srv, url, cert = serve_fake_core(tmp, Handler)
    try:
        ws, env = fake_workspace(tmp, "W", url, cert)
        kept = observe_private(ws, env, "private: the staging password rotates on Fridays")
        gone = observe_private(ws, env, "private: my notes on the flaky deploy runner")
        if not kept or not gone:
            return
        with lock:
            page["changes"] = [
                {"seq": 1, "item": {"id": kept, "kind": "observation", "status": "recorded",
                                    "title": "replaced", "body": "a teammate replaced your note",
                                    "subcortex": "general", "visibility": "shared",
                                    "created_at": "2026-12-07T10:00:00Z",
                                    "updated_at": "2026-12-07T10:00:00Z"}},
                {"seq": 2, "id": gone, "deleted": True},
            ]
            page["next"] = 2

        p = cli(ws, env, "sync")
        check(p.returncode == 0, f"cortex sync exits 0: {p.returncode} {p.stderr}")

        a, b = show(ws, env, kept), show(ws, env, gone)
        check(a is not None and "staging password" in a.get("body", "")
              and a.get("visibility") == "private",
              f"the private note survives a shared item with its id: {a}")
        check(b is not None and "flaky deploy runner" in b.get("body", "")
              and b.get("visibility") == "private",
              f"the private note survives a tombstone: {b}")
        with lock:
            leaked = [i for i in pushed_ids if i in (kept, gone)]
        check(not leaked, f"no private note was pushed: {leaked}")
        cursor = sync_state(ws, env).get("cursor")
        check(cursor == 2, f"the cursor moved past both changes: {cursor}")
    finally:
        srv.shutdown()


if __name__ == "__main__":
    run("cx-private-feed-", tests)
