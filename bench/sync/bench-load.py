#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# The core's load benchmark (issue 13, item 7): N concurrent simulated
# sidecars (default 64, up to 256) in T teams (default 8), each pushing
# batches of B ops (default 100) and pulling what its team changed with its
# own cursor, against one or two cortex-core nodes serving one data
# directory, over plain HTTP on 127.0.0.1 (rate limits raised so they never
# interfere). Prints figures; never asserts on time. See bench/sync/README.md.
#
#   ops/s      ops applied / wall time of the push phase (from the start to
#              the last push's answer, every client together)
#   push p50/p99, pull p50/p99
#              per request, as the client saw it; the pulls are those made
#              during the push phase (every pull runs while pushes run)
#   verified   after the push phase every client catches up; then each
#              client's pulls must have seen every change of its team
#              exactly once (nothing lost, duplicated or skipped by a
#              cursor), in strictly increasing seqs, and nothing of another
#              team (the item ids name their team). Any failure is printed
#              and the exit status is 1.
#
# A simulated sidecar is a loop: push one batch (one POST /v1/sync/push),
# then pull from its cursor until caught up (GET /v1/sync/pull, pages of
# --pull-limit). Clients run as threads in --procs processes so the
# client side is not one Python interpreter's lock.
#
# Usage: bench-load.py [--clients N] [--teams T] [--batch B] [--pushes P]
#                      [--nodes 1|2] [--kill-node] [--bindir BUILD] [--init-args ARGS] [--json]
# --kill-node (with --nodes 2) SIGKILLs node 1 once team 0 is halfway; its clients
# send their broken request again to node 2, as behind a load balancer, and
# the verification must still find every change exactly once.
# --init-args adds arguments to `cortex-core init` (for PostgreSQL:
# "--database postgresql://…"), so the same run measures either backend.
import argparse, http.client, json, multiprocessing as mp, os, shlex, shutil, signal, socket
import subprocess, sys, tempfile, threading, time

ap = argparse.ArgumentParser()
ap.add_argument("--clients", type=int, default=64)
ap.add_argument("--teams", type=int, default=8)
ap.add_argument("--batch", type=int, default=100)
ap.add_argument("--pushes", type=int, default=20, help="pushes per client")
ap.add_argument("--nodes", type=int, default=1, choices=(1, 2))
ap.add_argument("--kill-node", action="store_true",
                help="with --nodes 2: SIGKILL node 1 halfway; its clients go on at node 2")
ap.add_argument("--procs", type=int, default=4, help="client processes")
ap.add_argument("--core-threads", type=int, default=0, help="serve --threads (0: its default)")
ap.add_argument("--pull-limit", type=int, default=500)
ap.add_argument("--bindir", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                 "build-rel"))
ap.add_argument("--init-args", default="", help="more arguments for cortex-core init")
ap.add_argument("--serve-prefix", default="",
                help="a command to run serve under (e.g. valgrind --tool=callgrind)")
ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
ap.add_argument("--json", action="store_true", help="print one JSON object")
args = ap.parse_args()
if not 1 <= args.clients <= 256 or args.teams < 1 or args.batch < 1 or args.pushes < 1:
    sys.exit("--clients 1..256, --teams, --batch and --pushes at least 1")
if args.kill_node and args.nodes != 2:
    sys.exit("--kill-node needs --nodes 2")
CORE = os.path.join(os.path.abspath(args.bindir), "src/core/cortex-core")
CROCK = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
T = "2026-12-07T10:00:00Z"


def say(*a):
    if not args.json:
        print(*a, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def ulid(team, n):
    """A ULID whose time part names the team, so a crossed change shows."""
    t, s = 1767225600000 + team, ""
    for _ in range(10):
        s = CROCK[t % 32] + s
        t //= 32
    tail = ""
    for _ in range(16):
        tail = CROCK[n % 32] + tail
        n //= 32
    return s + tail


TEAM_PREFIX = {ulid(t, 0)[:10]: t for t in range(256)}


def team_name(t):
    return f"load-{t}"


def pushed_ids(client):
    """Every item id client pushes, in order."""
    team = client % args.teams
    return [ulid(team, (client * args.pushes + k) * args.batch + j)
            for k in range(args.pushes) for j in range(args.batch)]


class Conn:
    """One keep-alive connection, as a sidecar holds one. On a broken
    connection it reconnects and sends the same request again (a push is
    idempotent by its op ids): once to the same node, and with --kill-node
    to the next node in turn, as a load balancer would, for up to 30 s.
    `resent` says whether the last request was sent more than once."""

    def __init__(self, ports, first, key):
        self.ports, self.i, self.key, self.c = ports, first, key, None
        self.resent = False

    def req(self, method, path, body=None):
        tries = 300 if args.kill_node else 2
        self.resent = False
        for attempt in range(tries):
            try:
                if self.c is None:
                    self.c = http.client.HTTPConnection("127.0.0.1", self.ports[self.i],
                                                        timeout=120)
                h = {"Authorization": "Bearer " + self.key}
                if body is not None:
                    h["Content-Type"] = "application/json"
                self.resent = attempt > 0
                self.c.request(method, path, body=body, headers=h)
                r = self.c.getresponse()
                return r.status, r.read()
            except (OSError, http.client.HTTPException):
                if self.c:
                    self.c.close()
                self.c = None
                if attempt == tries - 1:
                    raise
                if args.kill_node:
                    self.i = (self.i + 1) % len(self.ports)
                    time.sleep(0.1)
        return 0, b""


def client(n, ports, key, res):
    """One simulated sidecar: pushes, pulling after each, then (once every
    client has pushed) a last catch-up; results into res."""
    team = n % args.teams
    ids = pushed_ids(n)
    conn = Conn(ports, n % len(ports), key)
    out = {"push_ms": [], "pull_ms": [], "applied": 0, "errors": [], "seen": [],
           "push_end": 0.0, "resent": 0}
    cursor = 0

    def pull_all(timed):
        nonlocal cursor
        for _ in range(100000):  # bounded: a page at least per call
            t0 = time.monotonic()
            st, body = conn.req("GET", f"/v1/sync/pull?since={cursor}&limit={args.pull_limit}")
            if timed:
                out["pull_ms"].append((time.monotonic() - t0) * 1000)
            if st != 200:
                out["errors"].append(f"pull {st} {body[:200]!r}")
                return
            page = json.loads(body)
            for ch in page["changes"]:
                out["seen"].append((ch["seq"], ch["item"]["id"] if "item" in ch else ch["id"]))
            cursor = page["next"]
            if not page["more"]:
                return

    try:
        for k in range(args.pushes):
            ops = [{"op_id": f"load-{n}-{k}-{j}", "op": "item.put",
                    "item": {"id": ids[k * args.batch + j], "kind": "observation",
                             "status": "recorded", "title": "", "tags": ["load"],
                             "body": f"change {j} of push {k} by client {n}: service-{j} "
                                     f"listens on port {10000 + j}", "author": f"c{n}",
                             "created_at": T, "updated_at": T, "visibility": "shared"}}
                   for j in range(args.batch)]
            body = json.dumps({"ops": ops})
            t0 = time.monotonic()
            st, answer = conn.req("POST", "/v1/sync/push", body)
            out["push_ms"].append((time.monotonic() - t0) * 1000)
            if st != 200:
                out["errors"].append(f"push {st} {answer[:200]!r}")
                break
            # a push sent again after its node died: what the dead node
            # committed comes back as duplicate, and was applied once
            done = ("applied", "duplicate") if conn.resent else ("applied",)
            out["applied"] += sum(1 for r in json.loads(answer)["results"]
                                  if r["status"] in done)
            out["resent"] += 1 if conn.resent else 0
            pull_all(True)
        out["push_end"] = time.monotonic()
    except Exception as e:  # noqa: BLE001 - reported as an error of this client
        out["errors"].append(repr(e))
    res.append((n, team, out, lambda: pull_all(False)))


def worker(w, clients, ports, keys, ready, go, pushed, result_q):
    """Runs clients as threads; after every process's clients have pushed
    (the `pushed` barrier), each catches up and is verified."""
    res, lock = [], threading.Lock()
    threads = []
    for n in clients:
        key = keys[n % args.teams]
        t = threading.Thread(target=lambda n=n, key=key:
                             client(n, ports, key, _Sink(res, lock)))
        threads.append(t)
    ready.wait()
    go.wait()
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pushed.wait()
    summary = {"t0": t0, "push_ms": [], "pull_ms": [], "applied": 0, "errors": [],
               "push_end": 0.0, "verified": 0, "resent": 0}
    want = {}
    for n, team, out, catch_up in res:
        try:
            catch_up()
        except Exception as e:  # noqa: BLE001
            out["errors"].append(f"catch-up: {e!r}")
        if team not in want:
            want[team] = set()
            for c in range(args.clients):
                if c % args.teams == team:
                    want[team].update(pushed_ids(c))
        seen = out["seen"]
        seqs = [s for s, _ in seen]
        got = [i for _, i in seen]
        if any(a >= b for a, b in zip(seqs, seqs[1:])):
            out["errors"].append(f"client {n}: seqs not strictly increasing")
        if len(set(got)) != len(got):
            out["errors"].append(f"client {n}: {len(got) - len(set(got))} changes seen twice")
        crossed = sum(1 for i in got if TEAM_PREFIX.get(i[:10]) != team)
        if crossed:
            out["errors"].append(f"client {n}: {crossed} changes of another team")
        missing = len(want[team] - set(got))
        if missing:
            out["errors"].append(f"client {n}: {missing} changes of its team never seen")
        if not out["errors"]:
            summary["verified"] += 1
        summary["push_ms"] += out["push_ms"]
        summary["pull_ms"] += out["pull_ms"]
        summary["applied"] += out["applied"]
        summary["resent"] += out["resent"]
        summary["errors"] += out["errors"][:3]
        summary["push_end"] = max(summary["push_end"], out["push_end"])
    result_q.put(summary)


class _Sink:
    def __init__(self, res, lock):
        self.res, self.lock = res, lock

    def append(self, v):
        with self.lock:
            self.res.append(v)


def pct(xs, p):
    if not xs:
        return 0.0
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    if not os.access(CORE, os.X_OK):
        sys.exit(f"{CORE} is missing: meson setup {args.bindir} --buildtype=release && "
                 f"ninja -C {args.bindir}")
    tmp = tempfile.mkdtemp(prefix="cortex-bench-load-")
    procs = []
    try:
        rc = run(tmp, procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(120)
        if args.keep:
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(rc)


def run(tmp, procs):
    data = os.path.join(tmp, "core")
    subprocess.run([CORE, "init", data, *shlex.split(args.init_args)], check=True,
                   capture_output=True, timeout=120)
    keys = [subprocess.run([CORE, "keys", "create", data, "--team", team_name(t), "--role",
                            "agent", "--name", f"load-{t}"], check=True, capture_output=True,
                           text=True, timeout=60).stdout.strip() for t in range(args.teams)]
    ports = []
    for i in range(args.nodes):
        port, ready = free_port(), os.path.join(tmp, f"ready-{i}")
        extra = ["--threads", str(args.core_threads)] if args.core_threads else []
        procs.append(subprocess.Popen(
            [*shlex.split(args.serve_prefix), CORE, "serve", data, "--listen", f"127.0.0.1:{port}", "--ready-file", ready,
             "--rate-limit", "1000000", "--burst", "1000000", "--max-connections-per-address",
             "10000", *extra], stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(tmp, f"core-{i}.log"), "w")))
        for _ in range(6000):
            if os.path.exists(ready) and open(ready).read().strip():
                break
            time.sleep(0.05)
        else:
            sys.exit("cortex-core did not start")
        ports.append(port)
    nproc = max(1, min(args.procs, args.clients))
    ready, go, pushed = (mp.Barrier(nproc + 1), mp.Barrier(nproc + 1), mp.Barrier(nproc))
    q = mp.Queue()
    workers = [mp.Process(target=worker, args=(w, list(range(w, args.clients, nproc)), ports,
                                               keys, ready, go, pushed, q))
               for w in range(nproc)]
    for w in workers:
        w.start()
    load0 = os.getloadavg()[0]
    killed = {}
    if args.kill_node:
        threading.Thread(target=kill_halfway, args=(procs[0], ports[1], keys[0], killed),
                         daemon=True).start()
    ready.wait()
    go.wait()
    results = [q.get(timeout=3600) for _ in workers]
    for w in workers:
        w.join(60)
    core_cpu = 0.0
    for p in procs:
        try:
            with open(f"/proc/{p.pid}/stat") as f:
                st = f.read().rsplit(")", 1)[1].split()
            core_cpu += (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    import resource
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = ru.ru_utime + ru.ru_stime
    t0 = min(r["t0"] for r in results)
    t1 = max(r["push_end"] for r in results)
    push_ms = [x for r in results for x in r["push_ms"]]
    pull_ms = [x for r in results for x in r["pull_ms"]]
    applied = sum(r["applied"] for r in results)
    errors = [e for r in results for e in r["errors"]]
    verified = sum(r["verified"] for r in results)
    resent = sum(r["resent"] for r in results)
    fig = {
        "backend": "postgresql" if "--database" in args.init_args else "sqlite",
        "killed_node_at_seq": killed.get("seq"), "pushes_resent": resent,
        "clients": args.clients, "teams": args.teams, "batch": args.batch,
        "pushes_per_client": args.pushes, "nodes": args.nodes,
        "ops_applied": applied, "push_phase_s": round(t1 - t0, 3),
        "ops_per_s": round(applied / (t1 - t0)) if t1 > t0 else 0,
        "push_p50_ms": round(pct(push_ms, 50), 1), "push_p99_ms": round(pct(push_ms, 99), 1),
        "pull_p50_ms": round(pct(pull_ms, 50), 1), "pull_p99_ms": round(pct(pull_ms, 99), 1),
        "pushes": len(push_ms), "pulls": len(pull_ms),
        "clients_verified": verified, "errors": len(errors),
        "core_cpu_s": round(core_cpu, 2), "client_cpu_s": round(client_cpu, 2),
        "loadavg_start": round(load0, 2), "loadavg_end": round(os.getloadavg()[0], 2),
    }
    if args.json:
        print(json.dumps(fig))
    else:
        say(f"{fig['backend']}, {args.nodes} node(s): {args.clients} clients in {args.teams} "
            f"teams, {args.pushes} pushes of {args.batch} ops each")
        say(f"  {applied:,} ops in {t1 - t0:.2f} s = {fig['ops_per_s']:,} ops/s")
        say(f"  push p50 {fig['push_p50_ms']} ms, p99 {fig['push_p99_ms']} ms "
            f"({len(push_ms)} pushes)")
        say(f"  pull p50 {fig['pull_p50_ms']} ms, p99 {fig['pull_p99_ms']} ms "
            f"({len(pull_ms)} pulls while pushes ran)")
        if args.kill_node:
            say(f"  node 1 SIGKILLed when team 0 passed seq {killed.get('seq')} of "
                f"{team_ops(0)}; {resent} pushes sent again to node 2")
        say(f"  cpu: core {core_cpu:.1f} s, clients {client_cpu:.1f} s (user+sys)")
        say(f"  verified: {verified}/{args.clients} clients saw every change of their team once, "
            f"in order, nothing of another team; loadavg {fig['loadavg_start']} -> "
            f"{fig['loadavg_end']}")
    for e in errors[:20]:
        print("ERROR:", e, file=sys.stderr)
    want = args.clients * args.pushes * args.batch
    if errors or verified != args.clients or applied != want:
        print(f"FAILED: {len(errors)} errors, {verified}/{args.clients} verified, "
              f"{applied}/{want} applied", file=sys.stderr)
        return 1
    return 0


def team_ops(team):
    """The ops every client of the team pushes together."""
    return sum(args.pushes * args.batch for c in range(args.clients) if c % args.teams == team)


def kill_halfway(proc, port, key, killed):
    """SIGKILLs proc (node 1) once team 0's feed, read through the other
    node, has passed half of the team's ops."""
    half = team_ops(0) // 2
    c = Conn([port], 0, key)
    for _ in range(60000):  # bounded: 10 minutes of 10 ms polls
        try:
            st, body = c.req("GET", f"/v1/sync/pull?since={half}&limit=1")
        except (OSError, http.client.HTTPException):
            st, body = 0, b""
        if st == 200 and json.loads(body)["changes"]:
            proc.send_signal(signal.SIGKILL)
            killed["seq"] = half
            return
        time.sleep(0.01)


if __name__ == "__main__":
    main()
