#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Several agents writing to one workspace at once.

Phase 1: PROCS cortexd processes on one fresh git workspace each make CALLS
`observe` calls (single texts, and every BATCH_EVERY-th call a batch of
BATCH), pipelined and interleaved, while CLI_PROCS loops run `cortex
observe TEXT`. Every answer must be a success without any "busy" text, every
id distinct, and the store must hold exactly the texts written.

Phase 2: the same text recorded by 2 or by all processes at the same moment
(released by a barrier) must end as one item: every process gets the same
id, exactly one with repeat=false.

Finally a fresh cortexd must `get` a sample of the ids back with their text,
and every process must exit cleanly when its stdin closes.

Environment: CORTEXD, CORTEX (paths); STRESS_PROCS, STRESS_CALLS,
STRESS_CLI_RUNS to scale."""

import json
import os
import random
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stresslib import (BUSY_RE, ULID_RE, Checks, ProtocolError, Server, binary,  # noqa: E402
                       fts_check, items_table, log, make_workspace, open_db, remove_tree, schema,
                       tool_result)

PROCS = max(4, int(os.environ.get("STRESS_PROCS", "4")))
CALLS = int(os.environ.get("STRESS_CALLS", "300"))
BATCH_EVERY = 10
BATCH = 20
WINDOW = 8  # requests in flight per process
CLI_PROCS = 2
CLI_RUNS = int(os.environ.get("STRESS_CLI_RUNS", "40"))
RACE_ROUNDS = 24
DEADLINE = time.monotonic() + 250  # meson's timeout is 300 s

WORDS = ("cache index build linker header socket parser token schema commit branch "
         "module symbol vector thread buffer journal cursor review sync").split()


def text_for(tag, p, c, k):
    # Plain words and decimal numbers: nothing a secret scanner could take
    # for a key, and every text unique.
    w = WORDS[(p * 7 + c * 3 + k) % len(WORDS)]
    return "stress %s proc %d call %d item %d touches the %s" % (tag, p, c, k, w)


def time_left():
    return max(5.0, DEADLINE - time.monotonic())


def scan_busy(checks, where, text):
    m = BUSY_RE.search(text)
    checks.check(m is None, "%s mentions busy/locked" % where,
                 text[max(0, m.start() - 200):m.end() + 200] if m else None)


def run_mcp_writer(checks, srv, p, start, written, ids):
    """Phase 1 for one process: CALLS pipelined observe calls."""
    plan = []
    for c in range(CALLS):
        if c % BATCH_EVERY == BATCH_EVERY - 1:
            texts = [text_for("batch", p, c, k) for k in range(BATCH)]
            plan.append((texts, {"observations": [{"text": t} for t in texts]}))
        else:
            t = text_for("single", p, c, 0)
            plan.append(([t], {"text": t}))
    start.wait()
    sent = []
    base = srv.count_responses()
    try:
        for i, (texts, args) in enumerate(plan):
            if not srv.wait_count(base + i - WINDOW, time_left()):
                raise ProtocolError("%s: stalled with %d answers of %d" % (srv.name, srv.count_responses() - base, i))
            rid = srv.send_request("tools/call", {"name": "observe", "arguments": args})
            sent.append((rid, texts))
        for rid, texts in sent:
            resp = srv.wait(rid, time_left())
            sc, err = tool_result(resp)
            if not checks.check(err is None, "%s observe of %d text(s) succeeds" % (srv.name, len(texts)), err):
                continue
            res = sc.get("results")
            ok = (isinstance(res, list) and len(res) == len(texts)
                  and sc.get("recorded") == len(texts) and sc.get("repeats") == 0)
            if not checks.check(ok, "%s observe answers one new result per text" % srv.name, json.dumps(sc)[:500]):
                continue
            for t, r in zip(texts, res):
                rid_ = r.get("id") if isinstance(r, dict) else None
                checks.check(isinstance(rid_, str) and ULID_RE.match(rid_) is not None and r.get("repeat") is False,
                             "%s result is a ULID with repeat=false" % srv.name, r)
                written.append(t)
                ids.append((rid_, t))
    except ProtocolError as e:
        checks.check(False, "%s phase 1" % srv.name, "%s; stderr: %s" % (e, srv.stderr_tail()))


def run_cli_loop(checks, cortex, ws, n, start, written, ids):
    env = dict(os.environ)
    env["CORTEX_WORKSPACE"] = ws
    start.wait()
    for i in range(CLI_RUNS):
        if time.monotonic() > DEADLINE - 60:
            checks.check(False, "cli loop %d finished in time" % n, "stopped after %d runs" % i)
            return
        t = text_for("cli", n, i, 0)
        try:
            r = subprocess.run([cortex, "observe", t], cwd=ws, env=env, timeout=60,
                               stdin=subprocess.DEVNULL, capture_output=True)
        except subprocess.TimeoutExpired:
            checks.check(False, "cortex observe finishes within 60 s", t)
            continue
        out = (r.stdout + r.stderr).decode("utf-8", "replace")
        if checks.check(r.returncode == 0, "cortex observe exits 0",
                        "exit %d, output: %s" % (r.returncode, out[:1500])):
            written.append(t)
            # It prints the new id (an id followed by "(already recorded)"
            # would mean the text was taken for someone else's).
            words = r.stdout.decode("utf-8", "replace").split()
            ok = len(words) == 1 and ULID_RE.match(words[0]) is not None
            if checks.check(ok, "cortex observe prints one new id", r.stdout[:300]):
                ids.append((words[0], t))
        scan_busy(checks, "cortex observe output", out)


def race(checks, servers, rounds):
    """Phase 2: the same text(s) from several processes at the same moment.
    Returns {text: id}."""
    result = {}
    for rnd in range(rounds):
        group = servers if rnd % 2 else servers[:2]
        batch = rnd % 3 == 2
        texts = ["stress shared round %d item %d from %d agents" % (rnd, k, len(group))
                 for k in range(BATCH if batch else 1)]
        args = {"observations": [{"text": t} for t in texts]} if batch else {"text": texts[0]}
        barrier = threading.Barrier(len(group))
        answers = [None] * len(group)

        def go(i, srv):
            try:
                barrier.wait(timeout=60)
                answers[i] = srv.call("observe", args, timeout=time_left())
            except (ProtocolError, threading.BrokenBarrierError, OSError) as e:
                answers[i] = {"error": {"message": str(e)}}

        threads = [threading.Thread(target=go, args=(i, s)) for i, s in enumerate(group)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=time_left())
        per_text = [[] for _ in texts]
        for i, a in enumerate(answers):
            sc, err = tool_result(a) if a else (None, "no answer")
            if not checks.check(err is None, "race round %d: %s observe succeeds" % (rnd, group[i].name), err):
                continue
            res = sc.get("results")
            if not checks.check(isinstance(res, list) and len(res) == len(texts),
                                "race round %d: one result per text" % rnd, json.dumps(sc)[:500]):
                continue
            for k, r in enumerate(res):
                per_text[k].append(r)
        for k, rs in enumerate(per_text):
            if len(rs) != len(group):
                continue
            idset = {r.get("id") for r in rs}
            fresh = sum(1 for r in rs if r.get("repeat") is False)
            checks.check(len(idset) == 1, "race round %d: every process gets the same id for one text" % rnd, rs)
            checks.check(fresh == 1, "race round %d: exactly one repeat=false among %d writers" % (rnd, len(group)), rs)
            result[texts[k]] = rs[0].get("id")
    return result


def main():
    checks = Checks("test-concurrency")
    cortexd = binary("CORTEXD")
    cortex = binary("CORTEX")
    ws = make_workspace("cx-stress-conc-")
    servers = []
    log("workspace %s, %d cortexd x %d calls, %d cli loops x %d runs" % (ws, PROCS, CALLS, CLI_PROCS, CLI_RUNS))
    try:
        for p in range(PROCS):
            servers.append(Server(cortexd, ws, name="cortexd#%d" % p))
        for s in servers:
            s.initialize()

        # Phase 1.
        start = threading.Barrier(PROCS + CLI_PROCS)
        written = [[] for _ in range(PROCS + CLI_PROCS)]
        ids = [[] for _ in range(PROCS + CLI_PROCS)]
        threads = [threading.Thread(target=run_mcp_writer, args=(checks, servers[p], p, start, written[p], ids[p]))
                   for p in range(PROCS)]
        threads += [threading.Thread(target=run_cli_loop, args=(checks, cortex, ws, n, start, written[PROCS + n], ids[PROCS + n]))
                    for n in range(CLI_PROCS)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=time_left())
            checks.check(not t.is_alive(), "phase 1 thread finishes before the deadline")
        log("phase 1: %.1f s" % (time.monotonic() - t0))

        all_ids = [i for per in ids for i in per]
        mcp_texts = [t for per in written[:PROCS] for t in per]
        cli_texts = [t for per in written[PROCS:] for t in per]
        id_values = [i for i, _ in all_ids]
        checks.check(len(set(id_values)) == len(id_values), "every id returned is distinct",
                     "%d ids, %d distinct" % (len(id_values), len(set(id_values))))
        checks.check(len(mcp_texts) == PROCS * (CALLS - CALLS // BATCH_EVERY + (CALLS // BATCH_EVERY) * BATCH),
                     "every MCP write was answered", len(mcp_texts))

        # Phase 2.
        t0 = time.monotonic()
        shared = race(checks, servers, RACE_ROUNDS)
        log("phase 2: %.1f s, %d shared texts" % (time.monotonic() - t0, len(shared)))

        for s in servers:
            with s.cond:
                raw = list(s.raw_responses)
                bad = list(s.bad_lines)
                others = list(s.others)
            checks.check(not bad, "%s writes only JSON-RPC to stdout" % s.name, bad[:5])
            for line in raw:
                if BUSY_RE.search(line):
                    scan_busy(checks, "%s response" % s.name, line)
                    break
            checks.check(not any(o.get("method") == "notifications/message" and
                                 BUSY_RE.search(json.dumps(o)) for o in others),
                         "%s sends no busy log message" % s.name)

        # Every process ends cleanly on EOF.
        for s in servers:
            rc = s.close(timeout=30)
            checks.check(rc == 0, "%s exits 0 when stdin closes" % s.name,
                         "exit %s; stderr: %s" % (rc, s.stderr_tail()))

        # The store holds exactly what was written.
        expected = mcp_texts + cli_texts + list(shared)
        db = open_db(ws)
        try:
            table = items_table(db)
            bodies = [r[0] for r in db.execute("SELECT body FROM %s WHERE kind='observation'" % table)]
            integ = [r[0] for r in db.execute("PRAGMA integrity_check")] + fts_check(db)
        finally:
            db.close()
        checks.check(integ == ["ok"], "the store passes integrity_check and FTS5 integrity-check", integ)
        checks.check(len(bodies) == len(expected), "observation count equals the number of distinct texts written",
                     "store has %d, wrote %d (%d mcp, %d cli, %d shared)"
                     % (len(bodies), len(expected), len(mcp_texts), len(cli_texts), len(shared)))
        bset = set(bodies)
        missing = [t for t in expected if t not in bset]
        checks.check(not missing, "every text written is in the store", "%d missing, e.g. %s" % (len(missing), missing[:3]))
        checks.check(len(bset) == len(bodies), "no text is stored twice",
                     "%d bodies, %d distinct" % (len(bodies), len(bset)))

        # A fresh process reads a sample back.
        rnd = random.Random(1234)
        sample = rnd.sample(all_ids, min(100, len(all_ids))) + [(i, t) for t, i in list(shared.items())[:20]]
        reader = Server(cortexd, ws, name="cortexd-reader")
        servers.append(reader)
        reader.initialize()
        for k in range(0, len(sample), 20):
            chunk = sample[k:k + 20]
            sc, err = tool_result(reader.call("get", {"ids": [i for i, _ in chunk]}, timeout=time_left()))
            if not checks.check(err is None, "get of %d ids succeeds" % len(chunk), err):
                continue
            got = {it.get("id"): it for it in sc.get("items", []) if isinstance(it, dict)}
            checks.check(not sc.get("missing"), "get reports no id missing", sc.get("missing"))
            for i, t in chunk:
                it = got.get(i)
                checks.check(it is not None and it.get("body") == t and it.get("kind") == "observation",
                             "get returns item %s with its text" % i, it)
        probe_id, probe_text = sample[0]
        sc, err = tool_result(reader.call("search", {"query": probe_text, "limit": 5}, timeout=time_left()))
        if checks.check(err is None, "search succeeds", err):
            checks.check(any(r.get("id") == probe_id for r in sc.get("results", [])),
                         "search finds a text by its own words", json.dumps(sc)[:800])
        rc = reader.close(timeout=30)
        checks.check(rc == 0, "reader exits 0", "exit %s; stderr: %s" % (rc, reader.stderr_tail()))
    except (ProtocolError, OSError, RuntimeError) as e:
        checks.check(False, "test ran to the end", e)
        for s in servers:
            log("--- %s stderr ---\n%s" % (s.name, s.stderr_tail()))
    finally:
        for s in servers:
            s.cleanup()
        if checks.failed:
            try:
                db = open_db(ws)
                log("store schema:\n" + schema(db))
                db.close()
            except Exception as e:  # diagnostics only
                log("(no schema: %s)" % e)
        remove_tree(ws)
    return checks.summary()


if __name__ == "__main__":
    sys.exit(main())
