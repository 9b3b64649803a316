# SPDX-License-Identifier: Apache-2.0
"""The restore drill of cortex-core(8) (issue 13 item 5), on both backends,
with a real core over HTTPS and real sidecars:

- SQLite: `cortex-core backup DIR DEST` while the core serves and a sidecar
  pushes; DEST serves after a restart: verify-audit passes with the entries
  the backup holds, the feed is a prefix of the live one, a new workspace
  pulls it whole;
- PostgreSQL (with-pg.py --databases 2): `pg_dump -Fc` of the database and
  `pg_restore` into a fresh one, DIR copied with its database file pointed
  at it: verify-audit gives the same chain, the feed is the same JSON, the
  existing workspace's next sync pulls nothing new, a new workspace pulls
  everything (artifact contents with their hashes included), keys work
  and stay revoked as they were, and forget and compact work on the
  restored database (a cursor below the horizon gets 410, a pull from 0
  holds the forgotten item as a tombstone only).
Without PostgreSQL the SQLite half runs alone and says so."""
import json
import os
import shutil
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sync"))
import pglib  # noqa: E402  (tests/pglib.py, for the PostgreSQL tools' directory)
from corelib import Http, core, cursor, key_id, make_key, sync, workspace  # noqa: E402
from synclib import Agent, Core, check, cli, make_cert, run  # noqa: E402

URI, URI2 = os.environ.get("CORTEX_TEST_PG_URI"), os.environ.get("CORTEX_TEST_PG_URI_2")


def fill(tmp, c, url, cert, data, name):
    """Keys, a workspace with notes, a reviewed draft and an artifact,
    synced: (workspace, env, agent key, revoked key)."""
    ka = make_key(data, "T", "agent", name + "-agent")
    kr = make_key(data, "T", "reviewer", name + "-rev")
    gone = make_key(data, "T", "agent", name + "-gone")
    check(core("keys", "revoke", data, key_id(gone)).returncode == 0, "keys revoke")
    ws, env = workspace(tmp, name, url, cert, [ka, kr])
    for i in range(40):
        p = cli(ws, env, "observe", f"{name} note {i}: the nightly vacuum blocks the ledger {i}")
        check(p.returncode == 0, f"observe {i}: {p.stderr}")
    p = cli(ws, env, "--json", "draft", "--title", "Vacuum blocks the ledger",
            "The nightly vacuum takes the ledger's lock; move it to 04:00.")
    draft = json.loads(p.stdout or "{}").get("id") if p.returncode == 0 else None
    a = Agent(ws, env)
    try:
        out, err = a.call("publish", {"name": "vacuum.sql", "content": "VACUUM ledger;\n"})
        check(not err and out and out.get("artifact_id"), f"publish: {out}")
    finally:
        a.close()
    sync(ws, env, name)
    p = cli(ws, env, "review", "approve", draft or "-", "--note", "moved")
    check(p.returncode == 0, f"approve: {p.returncode} {p.stderr}")
    sync(ws, env, name + " after review")
    return ws, env, ka, gone


def sqlite_drill(tmp, cert, pkey):
    data = os.path.join(tmp, "sq")
    check(core("init", data, "--team", "T").returncode == 0, "init")
    c = Core(tmp, data, (cert, pkey))
    c.start()
    ws, env, ka, gone = fill(tmp, c, c.url(), cert, data, "S")
    # a backup while the core serves and a sidecar pushes
    stop = threading.Event()

    def keep_writing():
        for i in range(200):
            if stop.is_set():
                return
            cli(ws, env, "observe", f"written during the backup {i}")
            cli(ws, env, "sync", timeout=120)
    w = threading.Thread(target=keep_writing)
    w.start()
    dest = os.path.join(tmp, "sq-restored")
    p = core("backup", data, dest)
    stop.set()
    w.join(300)
    check(p.returncode == 0, f"backup while serving: {p.stderr}")
    live = Http(c.port, cert, ka).feed()
    c.stop()
    p = core("verify-audit", dest)
    check(p.returncode == 0 and "audit chain ok" in p.stdout, f"verify-audit on the restore: "
          f"{p.stdout} {p.stderr}")
    r = Core(tmp, dest, (cert, pkey))
    r.start()
    back = Http(r.port, cert, ka).feed()
    b, lv = json.loads(back), json.loads(live)
    kinds = lambda f: [(x.get("item") or {}).get("kind", "tombstone") for x in f]  # noqa: E731
    check(len(b) >= 42 and lv[:len(b)] == b,
          f"the restored feed holds what the backup took ({len(b)} of {len(lv)} changes): "
          f"{kinds(b)[-5:]} {kinds(lv)[-5:]} {lv[:len(b)] == b}")
    st, _ = Http(r.port, cert, gone).req("/v1/info")
    check(st == 401, f"a revoked key stays revoked in the restore: {st}")
    N, nenv = workspace(tmp, "S-new", r.url(), cert, [ka])
    sync(N, nenv, "a new workspace on the restore")
    p = cli(N, nenv, "--json", "search", "nightly vacuum ledger")
    check(p.returncode == 0 and "vacuum" in p.stdout, "it finds the notes")
    r.stop()


def pg_drill(tmp, cert, pkey):
    data = os.path.join(tmp, "pg")
    check(core("init", data, "--team", "T", "--database", URI).returncode == 0, "init --database")
    c = Core(tmp, data, (cert, pkey))
    c.start()
    ws, env, ka, gone = fill(tmp, c, c.url(), cert, data, "P")
    before = Http(c.port, cert, ka).feed()
    cur = cursor(ws, env)
    audit = core("verify-audit", data).stdout
    # the backup: pg_dump while the core serves
    dump = os.path.join(tmp, "cortex.dump")
    tools = pglib.bindir()
    p = subprocess.run([os.path.join(tools, "pg_dump"), "-Fc", "-f", dump, "-d", URI],
                       capture_output=True, text=True, timeout=300)
    check(p.returncode == 0 and os.path.getsize(dump) > 0, f"pg_dump: {p.stderr}")
    c.stop()
    # the restore into a fresh database, DIR copied and pointed at it
    p = subprocess.run([os.path.join(tools, "pg_restore"), "--no-owner", "-d", URI2, dump],
                       capture_output=True, text=True, timeout=300)
    check(p.returncode == 0, f"pg_restore: {p.stderr}")
    restored = os.path.join(tmp, "pg-restored")
    os.makedirs(restored, mode=0o700)
    shutil.copy2(os.path.join(data, "secret"), restored)
    with open(os.path.join(restored, "database"), "w") as f:
        f.write(URI2 + "\n")
    os.chmod(os.path.join(restored, "database"), 0o600)
    p = core("verify-audit", restored)
    check(p.returncode == 0 and p.stdout == audit, f"the same audit chain: {p.stdout!r} {audit!r}")
    r = Core(tmp, restored, (cert, pkey))
    r.port = c.port  # the workspace's upstream URL stays the same
    r.start()
    check(Http(r.port, cert, ka).feed() == before, "the restored feed is the same JSON")
    st, _ = Http(r.port, cert, gone).req("/v1/info")
    check(st == 401, f"a revoked key stays revoked: {st}")
    sync(ws, env, "the old workspace against the restore")
    check(cursor(ws, env) == cur and cur is not None,
          f"its next sync pulls nothing new: {cur} {cursor(ws, env)}")
    N, nenv = workspace(tmp, "P-new", r.url(), cert, [ka])
    p = sync(N, nenv, "a new workspace on the restore")
    check("fetched the content of 1 artifact version" in p.stderr,
          f"it fetches the artifact's content, hash checked: {p.stderr}")
    p = cli(ws, env, "observe", "after the restore the ledger is fine")
    sync(ws, env, "a write to the restore")
    check(Http(r.port, cert, ka).feed() != before, "the restore takes writes")
    r.stop()
    # forget and compact work on PostgreSQL as on SQLite
    first = json.loads(before)[0]
    victim = (first.get("item") or first).get("id")
    p = core("forget", restored, "--team", "T", victim, "--reason", "drill")
    check(p.returncode == 0 and "tombstone" in p.stderr, f"forget on PostgreSQL: {p.stderr}")
    p = core("compact", restored, "--team", "T", "--before-seq", "5")
    check(p.returncode == 0 and "horizon 5" in p.stderr, f"compact on PostgreSQL: {p.stderr}")
    r.start()
    st, _ = Http(r.port, cert, ka).req("/v1/sync/pull?since=2")
    check(st == 410, f"a cursor below the horizon gets 410 on PostgreSQL: {st}")
    st, page = Http(r.port, cert, ka).req("/v1/sync/pull?since=0")
    check(st == 200 and not any((c.get("item") or {}).get("id") == victim
                                for c in page.get("changes", [])) and
          any(c.get("id") == victim and c.get("deleted") for c in page.get("changes", [])),
          f"a pull from 0 holds the forgotten item as a tombstone only: {st}")
    r.stop()
    p = core("verify-audit", restored)
    check(p.returncode == 0 and "audit chain ok" in p.stdout, f"the chain after: {p.stdout}")


def tests(tmp):
    cert, pkey = make_cert(tmp)
    sqlite_drill(tmp, cert, pkey)
    if not (URI and URI2):
        print("test-restore: PostgreSQL is missing: the pg_dump/pg_restore drill did not run",
              flush=True)
        return
    pg_drill(tmp, cert, pkey)


if __name__ == "__main__":
    run("cx-restore-", tests)
