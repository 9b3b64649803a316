#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""kill -9 during a write: all or nothing, and nothing acknowledged lost.

Each iteration starts cortexd on the same workspace, sends one `observe`
with a batch of 500 unique ~1 KB observations (every 5th private), and
SIGKILLs the process a few milliseconds later. Then, on the store:
  - PRAGMA integrity_check is "ok", and so is FTS5's integrity-check;
  - the batch has 0 or 500 items, never anything between, and 500 if the
    answer had arrived before the kill;
  - the outbox holds exactly one row for each stored shared item of the
    batch and none for its private ones, and its payload (JSON written
    from the row in the same transaction) is that item: id and body;
  - earlier batches are untouched.
Finally a fresh cortexd records a batch normally, searches, and exits 0.

Environment: CORTEXD; STRESS_SEED (default: time) and STRESS_KILLS (15)."""

import json
import os
import random
import signal
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stresslib import (ULID_RE, Checks, ProtocolError, Server, binary, columns,  # noqa: E402
                       fts_check, items_table, log, make_workspace, open_db, remove_tree, schema, tables,
                       tool_result)

BATCH = 500
KILLS = int(os.environ.get("STRESS_KILLS", "15"))
SEED = int(os.environ.get("STRESS_SEED", str(int(time.time()))))
DEADLINE = time.monotonic() + 250

FILLER = ("The linker resolves each symbol against the archive in order, so a "
          "library listed before the object that needs it is skipped; the fix "
          "is to list dependencies after their users or to group them. ")


def batch_texts(tag):
    texts = []
    for k in range(BATCH):
        head = "%s item %d of the batch. " % (tag, k)
        body = head + (FILLER * 6)
        texts.append(body[:1000] + " end %d" % k)
    return texts


def batch_args(tag):
    obs = []
    for k, t in enumerate(batch_texts(tag)):
        o = {"text": t, "tags": ["stress"]}
        if k % 5 == 4:
            o["visibility"] = "private"
        obs.append(o)
    return {"observations": obs}


def time_left():
    return max(5.0, DEADLINE - time.monotonic())


def outbox_item_column(db):
    if "outbox" not in tables(db):
        raise RuntimeError("no outbox table; tables: %s" % tables(db))
    cols = columns(db, "outbox")
    for c in ("item_id", "item", "entity_id", "target_id"):
        if c in cols:
            return c
    raise RuntimeError("cannot tell which outbox column names the item; columns: %s" % cols)


def inspect(db, tag):
    """(integrity, stored, shared stored, private stored, outbox rows for
    shared items, outbox rows for private items, total items)."""
    integrity = [r[0] for r in db.execute("PRAGMA integrity_check")] + fts_check(db)
    it = items_table(db)
    oc = outbox_item_column(db)
    like = tag + " item %"
    stored = db.execute("SELECT count(*) FROM %s WHERE body LIKE ?" % it, (like,)).fetchone()[0]
    vis = "visibility" in columns(db, it)
    if vis:
        shared = db.execute("SELECT count(*) FROM %s WHERE body LIKE ? AND visibility='shared'" % it, (like,)).fetchone()[0]
        private = db.execute("SELECT count(*) FROM %s WHERE body LIKE ? AND visibility='private'" % it, (like,)).fetchone()[0]
    else:
        shared = private = None
    ob_shared = db.execute(
        "SELECT count(*) FROM outbox o JOIN %s i ON i.id = o.%s WHERE i.body LIKE ? AND i.visibility='shared'" % (it, oc),
        (like,)).fetchone()[0] if vis else None
    ob_private = db.execute(
        "SELECT count(*) FROM outbox o JOIN %s i ON i.id = o.%s WHERE i.body LIKE ? AND i.visibility<>'shared'" % (it, oc),
        (like,)).fetchone()[0] if vis else None
    distinct_shared = db.execute(
        "SELECT count(DISTINCT o.%s) FROM outbox o JOIN %s i ON i.id = o.%s WHERE i.body LIKE ?" % (oc, it, oc),
        (like,)).fetchone()[0]
    total = db.execute("SELECT count(*) FROM %s" % it).fetchone()[0]
    return integrity, stored, shared, private, ob_shared, ob_private, distinct_shared, total


def payload_mismatches(db, tag):
    """Outbox rows of the batch whose payload is not valid JSON naming the
    row's item with the item's body (the payload is written from the new
    row, not read back from it)."""
    it = items_table(db)
    oc = outbox_item_column(db)
    bad = 0
    for item_id, body, payload in db.execute(
            "SELECT i.id, i.body, o.payload FROM outbox o JOIN %s i ON i.id = o.%s WHERE i.body LIKE ?" % (it, oc),
            (tag + " item %",)):
        try:
            p = json.loads(payload)
        except ValueError:
            bad += 1
            continue
        if not isinstance(p, dict) or p.get("id") != item_id or p.get("body") != body:
            bad += 1
    return bad


def main():
    checks = Checks("test-kill9")
    cortexd = binary("CORTEXD")
    rng = random.Random(SEED)
    ws = make_workspace("cx-stress-kill9-")
    servers = []
    outcomes = []
    log("workspace %s, seed %d, %d kills of a %d-item batch" % (ws, SEED, KILLS, BATCH))
    try:
        # How long, from the send, does a fresh process take to answer a
        # batch here (the store is opened behind `initialize`)? Measured
        # twice (the first run creates the store); used to aim some kills
        # at the commit itself, whatever the build's speed.
        batch_s = 0.0
        for w in range(2):
            srv = Server(cortexd, ws, name="cortexd-warmup%d" % w)
            servers.append(srv)
            srv.initialize()
            t0 = time.monotonic()
            sc, err = tool_result(srv.call("observe", batch_args("killwarmup%d" % w), timeout=time_left()))
            batch_s = time.monotonic() - t0
            checks.check(err is None and sc.get("recorded") == BATCH, "warm-up batch of %d is recorded" % BATCH,
                         err or json.dumps(sc)[:300])
            rc = srv.close(timeout=30)
            checks.check(rc == 0, "warm-up cortexd exits 0", "exit %s; stderr: %s" % (rc, srv.stderr_tail()))
        log("a fresh process answers a batch in %.0f ms" % (batch_s * 1000))
        stored_tags = ["killwarmup0", "killwarmup1"]

        for n in range(KILLS):
            if time.monotonic() > DEADLINE - 40:
                checks.check(False, "all kill iterations ran before the deadline", "stopped at %d" % n)
                break
            # Even iterations: 0-50 ms after the send (parsing, opening,
            # early inserts). Odd ones: aimed around the end of the measured
            # duration, where the commit and the answer happen.
            if n % 2 == 1:
                delay = rng.uniform(0.6, 1.15) * batch_s
            else:
                delay = rng.uniform(0.0, 0.050)
            tag = "killbatch%02d" % n
            srv = Server(cortexd, ws, name="cortexd-kill%02d" % n)
            servers.append(srv)
            srv.initialize()
            rid = srv.send_request("tools/call", {"name": "observe", "arguments": batch_args(tag)})
            time.sleep(delay)
            try:
                os.kill(srv.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            srv.kill()
            with srv.cond:
                resp = srv.responses.get(json.dumps(rid))
            acked = False
            if resp is not None:
                sc, err = tool_result(resp)
                acked = err is None
                checks.check(err is None, "%s: an answer that arrived is a success" % tag, err)

            db = open_db(ws)
            try:
                integ, stored, shared, private, ob_shared, ob_private, distinct, total = inspect(db, tag)
                bad_payloads = payload_mismatches(db, tag) if "payload" in columns(db, "outbox") else 0
            finally:
                db.close()
            outcomes.append((round(delay * 1000, 1), stored, acked))
            checks.check(integ == ["ok"], "%s: integrity_check is ok" % tag, integ)
            checks.check(stored in (0, BATCH), "%s: the batch is all or nothing" % tag,
                         "%d of %d items stored (kill after %.1f ms)" % (stored, BATCH, delay * 1000))
            if acked:
                checks.check(stored == BATCH, "%s: an acknowledged batch is kept" % tag, stored)
            if shared is not None:
                want_private = BATCH // 5 if stored == BATCH else 0
                checks.check(private == want_private and shared == stored - want_private,
                             "%s: visibility kept" % tag, (shared, private))
                checks.check(ob_shared == shared, "%s: one outbox row per stored shared item" % tag,
                             "%s outbox rows for %s shared items" % (ob_shared, shared))
                checks.check(ob_private == 0, "%s: no outbox row for private items" % tag, ob_private)
                checks.check(bad_payloads == 0, "%s: each outbox payload is its item" % tag,
                             "%d payloads do not match their item" % bad_payloads)
            checks.check(distinct == (shared if shared is not None else stored),
                         "%s: outbox rows name distinct items" % tag, distinct)
            if stored == BATCH:
                stored_tags.append(tag)
            checks.check(total == BATCH * len(stored_tags), "%s: no stray or lost items in the store" % tag,
                         "%d items, expected %d" % (total, BATCH * len(stored_tags)))

        log("kills (ms after send, items stored, acknowledged): %s" % outcomes)
        log("batches kept: %d of %d" % (len(stored_tags) - 2, len(outcomes)))

        # A fresh process works normally on the store that survived.
        srv = Server(cortexd, ws, name="cortexd-final")
        servers.append(srv)
        srv.initialize()
        sc, err = tool_result(srv.call("observe", batch_args("killfinal"), timeout=time_left()))
        checks.check(err is None and sc.get("recorded") == BATCH, "final batch is recorded", err or json.dumps(sc)[:300])
        ids = [r.get("id") for r in (sc or {}).get("results", [])]
        checks.check(len(ids) == BATCH and all(isinstance(i, str) and ULID_RE.match(i) for i in ids),
                     "final batch returns %d ULIDs" % BATCH)
        for tag in (stored_tags[-1], "killfinal"):
            sc, err = tool_result(srv.call("search", {"query": tag + " item 7", "limit": 10}, timeout=time_left()))
            if checks.check(err is None, "search for %s succeeds" % tag, err):
                checks.check(sc.get("count", 0) > 0 and
                             any(tag in (str(r.get("snippet", "")) + str(r.get("title", ""))).replace("\u00ab", "").replace("\u00bb", "")
                                 for r in sc.get("results", [])),
                             "search finds batch %s" % tag, json.dumps(sc)[:800])
        sc, err = tool_result(srv.call("status", {}, timeout=time_left()))
        checks.check(err is None, "status succeeds after the kills", err)
        rc = srv.close(timeout=30)
        checks.check(rc == 0, "final cortexd exits 0", "exit %s; stderr: %s" % (rc, srv.stderr_tail()))
        db = open_db(ws)
        try:
            integ = [r[0] for r in db.execute("PRAGMA integrity_check")] + fts_check(db)
        finally:
            db.close()
        checks.check(integ == ["ok"], "integrity_check is ok at the end", integ)
    except (ProtocolError, OSError, RuntimeError) as e:
        checks.check(False, "test ran to the end", e)
        for s in servers[-2:]:
            log("--- %s stderr ---\n%s" % (s.name, s.stderr_tail()))
        try:
            db = open_db(ws)
            log("store schema:\n" + schema(db))
            db.close()
        except Exception as e2:  # diagnostics only
            log("(no schema: %s)" % e2)
    finally:
        for s in servers:
            s.cleanup()
        remove_tree(ws)
    log("seed %d (set STRESS_SEED to repeat)" % SEED)
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
