# SPDX-License-Identifier: Apache-2.0
"""cortex-core migrate (issue 13 item 4), against a real PostgreSQL
(with-pg.py sets CORTEX_TEST_PG_URI and PGPASSFILE) and a real core over
HTTPS with real sidecars:

- a SQLite core with two teams holds observations, a reviewed draft, an
  artifact with two versions (blobs), a refused forged push and key events
  (audit entries), a forgotten item (tombstone) and a compacted horizon, a
  revoked key, and two workspaces that synced;
- `migrate DIR --database URL` copies it, says what it verified, points DIR
  at the database (DIR/database, mode 0600) and leaves core.db byte for
  byte as it was;
- on PostgreSQL: verify-audit gives the same entries, keys list the same
  keys, each team's whole feed is the same JSON, the revoked key is still
  refused, the workspaces' next sync pulls nothing new with the cursors
  they had, and a new workspace pulls everything, artifact contents with
  their hashes included;
- refused: migrating a DIR already on PostgreSQL, migrating another core
  into the database that now holds one (that DIR is left as it was), a URI
  with a password, something else than a URI;
- rollback: removing DIR/database serves the SQLite core again, as it was.

Without PostgreSQL, the refusals that need no database still run."""
import hashlib
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sync"))
from corelib import Http, core, cursor, key_id, make_key, sync, workspace  # noqa: E402
from synclib import Agent, Core, check, cli, make_cert, run  # noqa: E402

URI = os.environ.get("CORTEX_TEST_PG_URI")


def sha_file(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def refusals_without_db(tmp):
    data = os.path.join(tmp, "plain")
    p = core("init", data, "--team", "alpha")
    check(p.returncode == 0, f"init: {p.stderr}")
    p = core("migrate", data, "--database", "postgresql://cortex:s3cret@127.0.0.1/db")
    check(p.returncode == 2 and "password" in p.stderr and "s3cret" not in p.stderr,
          f"a URI with a password is refused without echoing it: {p.returncode} {p.stderr}")
    p = core("migrate", data, "--database", os.path.join(tmp, "other.db"))
    check(p.returncode == 2 and "PostgreSQL URI" in p.stderr,
          f"a path is not a database URI: {p.returncode} {p.stderr}")
    p = core("migrate", data)
    check(p.returncode == 2, f"--database is required: {p.returncode}")
    p = core("migrate", os.path.join(tmp, "nowhere"), "--database", "postgresql://x@127.0.0.1/x")
    check(p.returncode == 1 and "migrate" in p.stderr,
          f"a DIR without a core: exit 1: {p.returncode} {p.stderr}")
    check(not os.path.exists(os.path.join(data, "database")), "refusals point DIR nowhere")


def tests(tmp):
    refusals_without_db(tmp)
    if not URI:
        print("test-migrate: PostgreSQL is missing: only the refusals that need no database ran",
              flush=True)
        return

    data = os.path.join(tmp, "core")
    p = core("init", data, "--team", "alpha")
    check(p.returncode == 0, f"init: {p.stderr}")
    admin = p.stdout.strip().split()[0]
    ka = make_key(data, "alpha", "agent", "alice-agent")
    kr = make_key(data, "alpha", "reviewer", "rita-reviewer")
    kb = make_key(data, "beta", "agent", "bob-agent")
    gone = make_key(data, "alpha", "agent", "old-laptop")
    p = core("keys", "revoke", data, key_id(gone))
    check(p.returncode == 0, f"keys revoke: {p.stderr}")
    cert, pkey = make_cert(tmp)
    c = Core(tmp, data, (cert, pkey))
    c.start()
    url = c.url()

    A, aenv = workspace(tmp, "A", url, cert, [ka, kr])
    B, benv = workspace(tmp, "B", url, cert, [kb])
    for i in range(30):
        p = cli(A, aenv, "observe", f"alpha note {i}: the ledger flush waits for fsync {i}")
        check(p.returncode == 0, f"A observe {i}: {p.stderr}")
    for i in range(5):
        p = cli(B, benv, "observe", f"beta note {i}: rotate the kafka consumer group")
        check(p.returncode == 0, f"B observe {i}: {p.stderr}")
    p = cli(A, aenv, "--json", "draft", "--title", "Ledger flushes wait for fsync",
            "Every ledger flush waits for fsync; batch the writes.")
    check(p.returncode == 0, f"A drafts: {p.stderr}")
    draft = json.loads(p.stdout or "{}").get("id") if p.returncode == 0 else None
    agent = Agent(A, aenv)
    try:
        out, err = agent.call("publish", {"name": "flush.sh", "content": "#!/bin/sh\nsync\n",
                                          "title": "How we flush"})
        check(not err and out and out.get("artifact_id"), f"publish v1: {out}")
        open(os.path.join(A, "flush.bin"), "wb").write(bytes(range(256)) * 64)
        out, err = agent.call("publish", {"name": "flush.sh", "path": "flush.bin"})
        check(not err and out and out.get("version") == 2, f"publish v2: {out}")
    finally:
        agent.close()
    sync(A, aenv, "A")
    sync(B, benv, "B")
    if draft:
        p = cli(A, aenv, "review", "approve", draft, "--note", "checked on staging")
        check(p.returncode == 0, f"the reviewer approves: {p.returncode} {p.stderr}")
    # a forged push (an agent key claiming canon): refused and audited
    st, body = Http(c.port, cert, ka).req("/v1/sync/push", {"ops": [{
        "op_id": "forged-1", "op": "item.put", "item": {
            "id": "01JD3Z5K8W2N4Q6R8T0V2X4Y6Z", "kind": "thread", "status": "canon",
            "title": "forged canon", "body": "not reviewed", "created_at": "2026-12-07T00:00:00Z",
            "updated_at": "2026-12-07T00:00:00Z"}}]})
    check(st == 400 or "rejected" in json.dumps(body), f"the forged push is refused: {st} {body}")
    # a tombstone and a horizon
    st, page = Http(c.port, cert, ka).req("/v1/sync/pull?since=0&limit=5")
    victim = page["changes"][0]["item"]["id"] if st == 200 and page.get("changes") else None
    check(victim is not None, "a change to forget")
    c.stop()
    if victim:
        p = core("forget", data, "--team", "alpha", victim, "--reason", "pasted a customer name")
        check(p.returncode == 0, f"forget: {p.stderr}")
        p = core("compact", data, "--team", "alpha", "--before-seq", "3")
        check(p.returncode == 0, f"compact: {p.stderr}")
    c.start()
    sync(A, aenv, "A after forget")
    sync(B, benv, "B again")
    before = {"alpha": Http(c.port, cert, ka).feed(), "beta": Http(c.port, cert, kb).feed()}
    cur = {"A": cursor(A, aenv), "B": cursor(B, benv)}
    check(None not in cur.values(), f"the workspaces have cursors: {cur}")
    c.stop()

    audit0 = core("verify-audit", data)
    check(audit0.returncode == 0 and "ok" in audit0.stdout, f"audit before: {audit0.stdout}")
    keys0 = core("keys", "list", data).stdout
    db = os.path.join(data, "core.db")
    sha0 = sha_file(db)

    # --- the migration
    p = core("migrate", data, "--database", URI)
    check(p.returncode == 0, f"migrate: {p.returncode} {p.stderr}")
    check("verified" in p.stderr and "2 teams" in p.stderr and "2 blobs" in p.stderr,
          f"migrate says what it copied and verified: {p.stderr}")
    named = os.path.join(data, "database")
    check(os.path.exists(named) and open(named).read().strip() == URI and
          (os.stat(named).st_mode & 0o777) == 0o600,
          "DIR/database names the database, mode 0600")
    check(sha_file(db) == sha0, "core.db is untouched")
    # the planner's statistics are fresh (migrate ran ANALYZE), so the first
    # pushes into a large team use the op records' index
    q = subprocess.run(["psql", URI, "-Atc", "SELECT count(*) FROM pg_stat_user_tables"
                        " WHERE relname IN ('items', 'ops', 'keys', 'audit')"
                        " AND last_analyze IS NOT NULL"],
                       capture_output=True, text=True, timeout=60)
    check(q.returncode == 0 and q.stdout.strip() == "4",
          f"migrate leaves fresh planner statistics: {q.stdout!r} {q.stderr}")

    audit1 = core("verify-audit", data)
    check(audit1.returncode == 0 and audit1.stdout == audit0.stdout,
          f"the same audit chain on PostgreSQL: {audit0.stdout!r} {audit1.stdout!r}")
    check(core("keys", "list", data).stdout == keys0, "the same keys on PostgreSQL")

    c.start()
    after = {"alpha": Http(c.port, cert, ka).feed(), "beta": Http(c.port, cert, kb).feed()}
    check(after == before, "each team's whole feed is the same JSON on PostgreSQL")
    st, _ = Http(c.port, cert, gone).req("/v1/info")
    check(st == 401, f"the revoked key is still refused: {st}")
    st, info = Http(c.port, cert, admin).req("/v1/info")
    check(st == 200 and info.get("team") == "alpha", f"the admin key still works: {st} {info}")
    sync(A, aenv, "A after migrate")
    sync(B, benv, "B after migrate")
    check(cursor(A, aenv) == cur["A"] and cursor(B, benv) == cur["B"],
          f"the next sync pulls nothing new: {cur} {cursor(A, aenv)} {cursor(B, benv)}")
    C, cenv = workspace(tmp, "C", url, cert, [ka])
    p = sync(C, cenv, "C from scratch")
    check("fetched the content of 2 artifact versions" in p.stderr,
          f"a new workspace pulls the artifact contents from PostgreSQL: {p.stderr}")
    p = cli(C, cenv, "--json", "search", "ledger flush fsync")
    check(p.returncode == 0 and "ledger" in p.stdout, f"C finds alpha's notes: {p.stdout[:300]}")
    p = cli(A, aenv, "observe", "after the move: postgres holds the feed")
    sync(A, aenv, "A writes after migrate")
    check(Http(c.port, cert, ka).feed() != before["alpha"],
          "a write after the move lands on PostgreSQL")
    c.stop()

    # --- refusals
    p = core("migrate", data, "--database", URI)
    check(p.returncode == 1 and "already keeps its data in PostgreSQL" in p.stderr,
          f"a DIR already on PostgreSQL: {p.returncode} {p.stderr}")
    other = os.path.join(tmp, "other")
    check(core("init", other, "--team", "gamma").returncode == 0, "init another core")
    p = core("migrate", other, "--database", URI)
    check(p.returncode == 1 and "already holds a cortex-core" in p.stderr,
          f"a database that holds a core is refused: {p.returncode} {p.stderr}")
    check(not os.path.exists(os.path.join(other, "database")), "that DIR stays on SQLite")

    # --- rollback: DIR/database removed, the SQLite core serves as before
    os.unlink(named)
    c.start()
    check(Http(c.port, cert, ka).feed() == before["alpha"] and
          Http(c.port, cert, kb).feed() == before["beta"],
          "without DIR/database the SQLite core serves what it held")
    c.stop()


if __name__ == "__main__":
    run("cx-migrate-", tests)
