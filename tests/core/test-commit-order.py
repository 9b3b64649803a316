#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Commit order under concurrency, against a real cortex-core over HTTPS on
# 127.0.0.1 (issue 13, item 2): many writer threads push batches to three
# teams while puller threads of every team pull incrementally with their
# cursors, in small pages, all the time. At the end, for every puller:
#  - its pulls saw every change its team's pushes applied, exactly once
#    (nothing lost, nothing skipped by a cursor, nothing duplicated);
#  - the seqs it saw were strictly increasing, and are exactly the seqs
#    the pushes were answered with;
#  - nothing crossed teams (every item id names its team);
# an op sent again is answered "duplicate" with its first seq and applied
# once; `cortex-core verify-audit` passes. Then a node is stopped (SIGTERM)
# while pushes are queued for its push threads: it exits cleanly, and every
# push it answered 200 is in the feed after a restart.
# The scenario runs against one node, then against two nodes serving the
# same data directory. How the directory is made is a parameter, so the same
# test runs on every backend: CX_CORE_INIT_ARGS holds extra arguments for
# `cortex-core init` (for PostgreSQL: "--database postgresql://…"). Every
# loop and wait is bounded; processes are killed at the end.
import http.client, json, os, shlex, ssl, subprocess, sys, threading, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sync"))
from synclib import CORE, Core, check, make_cert, run  # noqa: E402

TEAMS = ["co-a", "co-b", "co-c"]
WRITERS = 4        # per team
PUSHES = 25        # per writer
BATCH = 20         # ops per push
PULLERS = 3        # per team
PAGE = 37          # a small page: many pulls, cursors in the middle of batches
T = "2026-12-07T10:00:00Z"
CROCK = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid(team, n):
    """A ULID whose time part names the team (so a crossed change shows)."""
    t, s = 1767225600000 + TEAMS.index(team), ""
    for _ in range(10):
        s = CROCK[t % 32] + s
        t //= 32
    tail = ""
    for _ in range(16):
        tail = CROCK[n % 32] + tail
        n //= 32
    return s + tail


def team_of(item_id):
    for t in TEAMS:
        if item_id.startswith(ulid(t, 0)[:10]):
            return t
    return None


class Conn:
    """One keep-alive HTTPS connection, as a sidecar holds one."""

    def __init__(self, port, key, ctx):
        self.port, self.key, self.ctx, self.c = port, key, ctx, None

    def req(self, method, path, body=None):
        for attempt in range(3):
            try:
                if self.c is None:
                    self.c = http.client.HTTPSConnection("localhost", self.port, timeout=60,
                                                         context=self.ctx)
                h = {"Authorization": "Bearer " + self.key}
                data = None
                if body is not None:
                    data = json.dumps(body).encode()
                    h["Content-Type"] = "application/json"
                self.c.request(method, path, body=data, headers=h)
                r = self.c.getresponse()
                payload = r.read()
                return r.status, json.loads(payload) if payload else None
            except (OSError, http.client.HTTPException):
                if self.c:
                    self.c.close()
                self.c = None
                if attempt == 2:
                    raise
                time.sleep(0.2)

    def close(self):
        if self.c:
            self.c.close()


def scenario(ports, keys, ctx, tag, applied):
    """applied: team -> id -> the seq its push was answered with, over every
    scenario so far (pullers start from 0 and see them all)."""
    errors = []
    dup_ok = {"n": 0, "bad": 0}
    lock = threading.Lock()
    writers_left = [WRITERS * len(TEAMS)]

    def writer(team, w):
        conn = Conn(ports[w % len(ports)], keys[team], ctx)
        prev = None
        try:
            for k in range(PUSHES):
                base = ((tag * 100 + w) * PUSHES + k) * BATCH
                ops = [{"op_id": f"{tag}-{team}-{base + j}", "op": "item.put",
                        "item": {"id": ulid(team, base + j), "kind": "observation",
                                 "status": "recorded", "title": "", "tags": [],
                                 "body": f"change {base + j} of {team}", "author": "w",
                                 "created_at": T, "updated_at": T, "visibility": "shared"}}
                       for j in range(BATCH)]
                sent = ops + ([prev] if prev else [])  # the last op again: a duplicate
                st, body = conn.req("POST", "/v1/sync/push", {"ops": sent})
                if st != 200:
                    errors.append(f"push {team}/{w}/{k}: {st} {str(body)[:200]}")
                    return
                res = body["results"]
                with lock:
                    for op, rr in zip(sent, res):
                        iid = op["item"]["id"]
                        if op is prev:
                            dup_ok["n"] += 1
                            if rr.get("status") != "duplicate" or rr.get("seq") != applied[team].get(iid):
                                dup_ok["bad"] += 1
                        elif rr.get("status") == "applied":
                            applied[team][iid] = rr["seq"]
                        else:
                            errors.append(f"op {op['op_id']}: {rr}")
                prev = ops[-1]
        except Exception as e:  # noqa: BLE001 - a crash is an error of the scenario
            errors.append(f"writer {team}/{w}: {e!r}")
        finally:
            conn.close()
            with lock:
                writers_left[0] -= 1

    seen = {}  # (team, puller) -> [(seq, id)]

    def puller(team, r):
        conn = Conn(ports[(r + 1) % len(ports)], keys[team], ctx)
        got, cursor = [], 0
        seen[(team, r)] = got
        try:
            for _ in range(200000):  # bounded; ends when caught up after the writers
                with lock:
                    done = writers_left[0] == 0
                caught_up = False
                while True:
                    st, body = conn.req("GET", f"/v1/sync/pull?since={cursor}&limit={PAGE}")
                    if st != 200:
                        errors.append(f"pull {team}/{r}: {st} {str(body)[:200]}")
                        return
                    for ch in body["changes"]:
                        iid = ch["item"]["id"] if "item" in ch else ch["id"]
                        got.append((ch["seq"], iid))
                    cursor = body["next"]
                    if not body["more"]:
                        caught_up = not body["changes"]
                        break
                if done and caught_up:
                    return
        except Exception as e:  # noqa: BLE001
            errors.append(f"puller {team}/{r}: {e!r}")
        finally:
            conn.close()

    threads = [threading.Thread(target=puller, args=(t, r)) for t in TEAMS for r in range(PULLERS)]
    threads += [threading.Thread(target=writer, args=(t, w)) for t in TEAMS for w in range(WRITERS)]
    t0 = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join(600)
    check(not any(th.is_alive() for th in threads), f"[{tag}] every client finished")
    check(not errors, f"[{tag}] no client error: {errors[:5]}")
    want = tag * WRITERS * PUSHES * BATCH
    for t in TEAMS:
        check(len(applied[t]) == want, f"[{tag}] team {t}: {want} ops applied "
              f"(got {len(applied[t])})")
    check(dup_ok["n"] > 0 and dup_ok["bad"] == 0,
          f"[{tag}] an op sent again is a duplicate with its first seq ({dup_ok})")
    for (t, r), got in sorted(seen.items()):
        seqs = [s for s, _ in got]
        ids = [i for _, i in got]
        check(all(a < b for a, b in zip(seqs, seqs[1:])),
              f"[{tag}] puller {t}/{r}: seqs strictly increasing")
        check(len(set(ids)) == len(ids), f"[{tag}] puller {t}/{r}: no change twice")
        check(all(team_of(i) == t for i in ids), f"[{tag}] puller {t}/{r}: nothing crossed teams")
        check(sorted(got) == sorted((s, i) for i, s in applied[t].items()),
              f"[{tag}] puller {t}/{r}: saw exactly the changes pushed, at the seqs answered "
              f"({len(got)} seen, {len(applied[t])} applied)")
    print(f"[{tag}] {WRITERS * PUSHES * BATCH * len(TEAMS)} ops by {WRITERS * len(TEAMS)} writers on "
          f"{len(ports)} node(s), {PULLERS * len(TEAMS)} pullers: {time.monotonic() - t0:.1f} s",
          flush=True)


def tests(tmp):
    data = os.path.join(tmp, "core")
    init = [CORE, "init", data, *shlex.split(os.environ.get("CX_CORE_INIT_ARGS", ""))]
    p = subprocess.run(init, capture_output=True, text=True, timeout=120)
    if not check(p.returncode == 0, f"cortex-core init: {p.stderr}"):
        return
    keys = {}
    for t in TEAMS:
        p = subprocess.run([CORE, "keys", "create", data, "--team", t, "--role", "agent",
                            "--name", "w-" + t], capture_output=True, text=True, timeout=60)
        check(p.returncode == 0, f"key for {t}")
        keys[t] = p.stdout.strip()
    cert, key = make_cert(tmp)
    ctx = ssl.create_default_context(cafile=cert)
    nodes = [Core(tmp, data, tls=(cert, key), extra=["--threads", "8"]) for _ in range(2)]
    applied = {t: {} for t in TEAMS}
    nodes[0].start()
    scenario([nodes[0].port], keys, ctx, 1, applied)
    # two nodes serving the same directory, each client on one of them
    nodes[1].start()
    scenario([n.port for n in nodes], keys, ctx, 2, applied)
    nodes[1].stop()
    stop_while_pushing(nodes[0], keys, ctx)
    p = subprocess.run([CORE, "verify-audit", data], capture_output=True, text=True, timeout=120)
    check(p.returncode == 0, f"verify-audit passes: {p.stdout} {p.stderr}")


def stop_while_pushing(node, keys, ctx):
    """SIGTERM while pushers keep the push queue full: a clean exit, and
    every push answered 200 is in the feed after a restart."""
    answered, lock, stop = {}, threading.Lock(), threading.Event()

    def pusher(w):
        team = TEAMS[w % len(TEAMS)]
        conn = Conn(node.port, keys[team], ctx)
        for k in range(10000):  # bounded; ends when the node stops answering
            if stop.is_set():
                break
            base = (900000 + w * 10000 + k) * 5
            ops = [{"op_id": f"stop-{team}-{base + j}", "op": "item.put",
                    "item": {"id": ulid(team, base + j), "kind": "observation",
                             "status": "recorded", "title": "", "tags": [], "author": "s",
                             "body": f"stop change {base + j}", "created_at": T,
                             "updated_at": T, "visibility": "shared"}} for j in range(5)]
            try:
                st, body = conn.req("POST", "/v1/sync/push", {"ops": ops})
            except Exception:  # noqa: BLE001 - the node went away mid-request
                break
            if st == 200:
                with lock:
                    for op, rr in zip(ops, body["results"]):
                        answered[op["item"]["id"]] = (team, rr.get("seq"))
        conn.close()

    threads = [threading.Thread(target=pusher, args=(w,)) for w in range(12)]
    for th in threads:
        th.start()
    time.sleep(1.0)
    node.proc.terminate()
    try:
        rc = node.proc.wait(60)
    except subprocess.TimeoutExpired:
        rc = None
    stop.set()
    for th in threads:
        th.join(60)
    check(rc == 0, f"a node stopped while pushes were queued exits cleanly (rc {rc})")
    check(len(answered) > 0, "pushes were answered before the stop")
    node.start()
    seen = {}
    for t in TEAMS:
        conn, cursor = Conn(node.port, keys[t], ctx), 0
        for _ in range(10000):
            st, body = conn.req("GET", f"/v1/sync/pull?since={cursor}&limit=1000")
            if st != 200:
                break
            for ch in body["changes"]:
                if "item" in ch:
                    seen[ch["item"]["id"]] = (t, ch["seq"])
            cursor = body["next"]
            if not body["more"]:
                break
        conn.close()
    lost = [i for i, v in answered.items() if seen.get(i) != v]
    check(not lost, f"every push answered before the stop is in the feed ({len(lost)} of "
          f"{len(answered)} missing)")
    node.stop()


if __name__ == "__main__":
    run("cortex-commit-order-", tests)
