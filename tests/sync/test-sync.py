#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Sync end to end. A cortex-core is started here on 127.0.0.1 (HTTPS with a
# certificate made here by openssl, and plain HTTP on loopback behind fault
# proxies); workspaces are driven through cortexd (raw JSON-RPC over stdio)
# and the cortex CLI. Every wait is bounded; every process is killed at the
# end. Prints "N passed, N failed"; exits non-zero on any failure.
import http.client, json, os, socket, sqlite3, subprocess, threading, time

CORTEXD = os.environ["CORTEXD"]
from synclib import CORE, Agent, Core, check, cli, make_cert, procs, run, wait_until  # noqa: E402
class CoreDB(Core):
    """The core, plus what this test reads of its state."""

    def items(self, team="T"):
        """{id: item} at the core for a team, read from its database."""
        with sqlite3.connect(os.path.join(self.data, "core.db"), timeout=30) as db:
            cols = [r[1] for r in db.execute("PRAGMA table_info(items)")]
            jcol = next(c for c in ("json", "item", "body", "data") if c in cols)
            return {r[0]: json.loads(r[1]) for r in
                    db.execute(f"SELECT id, {jcol} FROM items WHERE team = ?", (team,))}

    def op_count(self, team="T"):
        with sqlite3.connect(os.path.join(self.data, "core.db"), timeout=30) as db:
            return db.execute("SELECT count(*), count(DISTINCT op_id) FROM ops WHERE team = ?",
                              (team,)).fetchone()


def backlog(ws, env):
    p = cli(ws, env, "status", "--json")
    try:
        return json.loads(p.stdout)["sync"].get("backlog")
    except (ValueError, KeyError):
        return None


class FaultProxy:
    """Plain HTTP proxy to a core: the first `fail` push requests get 503 or
    429 (Retry-After: 1); with hang=True it accepts and never answers."""

    def __init__(self, target_port, fail=0, hang=False, port=None):
        self.target, self.fail, self.hang = target_port, fail, hang
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port or 0))
        self.port = self.sock.getsockname()[1]
        self.sock.listen(64)
        self.failed, self.stop, self.conns = 0, False, []
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            if not self.hang:
                threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        f = c.makefile("rb")
        try:
            while True:
                line = f.readline()
                if not line:
                    return
                method, path, _ = line.decode().split(" ", 2)
                hdrs = {}
                while True:
                    h = f.readline().decode()
                    if h in ("\r\n", "\n", ""):
                        break
                    k, _, v = h.partition(":")
                    hdrs[k.strip().lower()] = v.strip()
                body = f.read(int(hdrs.get("content-length", "0")))
                if path.startswith("/v1/sync/push") and self.failed < self.fail:
                    self.failed += 1
                    code = 503 if self.failed % 2 else 429
                    msg = json.dumps({"error": {"code": "unavailable", "message": "injected"}})
                    c.sendall((f"HTTP/1.1 {code} X\r\nContent-Type: application/json\r\n"
                               f"Retry-After: 1\r\nContent-Length: {len(msg)}\r\n\r\n{msg}").encode())
                    continue
                up = http.client.HTTPConnection("127.0.0.1", self.target, timeout=30)
                fwd = {k: v for k, v in hdrs.items() if k in ("authorization", "content-type")}
                up.request(method, path, body=body, headers=fwd)
                r = up.getresponse()
                data = r.read()
                extra = "".join(f"{k}: {v}\r\n" for k, v in r.getheaders()
                                if k.lower() in ("content-type", "retry-after"))
                c.sendall((f"HTTP/1.1 {r.status} X\r\n{extra}Content-Length: {len(data)}\r\n\r\n")
                          .encode() + data)
                up.close()
        except (OSError, ValueError):
            pass
        finally:
            c.close()

    def close(self):
        self.stop = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() in progress
        except OSError:
            pass
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


def try_proxy(target, port):
    try:
        return FaultProxy(target, port=port)
    except OSError:
        return None


def new_ws(tmp, name, url, env, ca=None, timeout=None):
    ws = os.path.join(tmp, name)
    os.makedirs(ws)
    args = ["remote", "set", url] + (["--ca-file", ca] if ca else [])
    p = cli(ws, env, *args)
    check(p.returncode == 0, f"{name}: remote set: {p.stderr}")
    if timeout:
        with open(os.path.join(ws, ".cortex", "upstream"), "a") as f:
            f.write(f"timeout={timeout}\n")
    return ws


def login(ws, env, key):
    p = cli(ws, env, "login", stdin=key + "\n")
    check(p.returncode == 0, f"login: {p.returncode} {p.stderr}")


def marker_items(core, marker):
    return [i for i in core.items().values() if marker in (i.get("body") or "")]


def tests(tmp):
    data = os.path.join(tmp, "core")
    p = subprocess.run([CORE, "init", data], capture_output=True, text=True, timeout=60)
    check(p.returncode == 0, "core init")
    keys = {}
    for role, name in [("agent", "agent"), ("reviewer", "rev")]:
        p = subprocess.run([CORE, "keys", "create", data, "--team", "T", "--role", role, "--name",
                            name], capture_output=True, text=True, timeout=60)
        keys[name] = p.stdout.strip()
    cert, key = make_cert(tmp)
    core = CoreDB(tmp, data, (cert, key))
    core.start()

    base = dict(os.environ, CORTEX_SYNC_INTERVAL_MS="300", CORTEX_SYNC_DEADLINE="60")
    base.pop("CORTEX_WORKSPACE", None)
    agent_env = dict(base, XDG_CONFIG_HOME=os.path.join(tmp, "agent-home"))
    rev_env = dict(base, XDG_CONFIG_HOME=os.path.join(tmp, "rev-home"))

    # --- configuration and credentials
    p = cli(os.path.join(tmp, "x"), agent_env, "remote", "set", "http://example.com:1")
    check(p.returncode == 2, "plain http to a non-loopback host is refused")
    A = new_ws(tmp, "A", core.url(), agent_env, ca=cert)
    p = cli(A, agent_env, "login", stdin="cxk_0000000000000000_bogus\n")
    check(p.returncode == 1, f"a bad key is refused by login: {p.returncode} {p.stderr}")
    login(A, agent_env, keys["agent"])
    cred = os.path.join(tmp, "agent-home", "cortex", "credentials")
    check(os.path.exists(cred) and os.stat(cred).st_mode & 0o777 == 0o600, "credentials are 0600")
    ws_files = "".join(open(os.path.join(r, f), errors="replace").read()
                       for r, _, fs in os.walk(os.path.join(A, ".cortex")) for f in fs
                       if not f.startswith("cortex.db"))
    check(keys["agent"] not in ws_files, "the key is not in the workspace")
    # a wrong CA: verification fails
    W = new_ws(tmp, "W", core.url(), agent_env)
    p = cli(W, agent_env, "login", stdin=keys["agent"] + "\n")
    check(p.returncode == 4, f"an unknown CA fails verification: {p.returncode} {p.stderr}")

    # --- (a) end to end over HTTPS
    a = Agent(A, agent_env)
    sc, err = a.call("observe", {"text": "The quokkaflux build needs LD_PRELOAD unset."})
    check(not err, f"observe: {sc}")
    sc, err = a.call("observe", {"text": "private note about secretwombat", "visibility": "private"})
    check(not err, f"private observe: {sc}")
    sc, err = a.call("draft", {"title": "Unset LD_PRELOAD for quokkaflux builds",
                               "body": "The quokkaflux build breaks when LD_PRELOAD is set; unset it."})
    check(not err and sc and sc.get("id"), f"draft: {sc}")
    draft_id = sc.get("id") if sc else None
    p = cli(A, agent_env, "sync")
    check(p.returncode == 0, f"cortex sync in A: {p.returncode} {p.stderr}")
    at_core = core.items()
    check(draft_id in at_core, "the draft reached the core")
    check(any("quokkaflux" in (i.get("body") or "") and i["kind"] == "observation"
              for i in at_core.values()), "the observation reached the core")
    p = cli(A, agent_env, "status", "--json")
    st = json.loads(p.stdout).get("sync", {}) if p.returncode == 0 else {}
    check(st.get("upstream") == core.url() and st.get("backlog") == 0 and st.get("last_push")
          and st.get("stale") is False, f"status after sync: {st}")

    R = new_ws(tmp, "R", core.url(), rev_env, ca=cert)
    login(R, rev_env, keys["rev"])
    p = cli(R, rev_env, "review", "list", "--json")
    q = json.loads(p.stdout) if p.returncode == 0 else {}
    check(any(d.get("id") == draft_id for d in q.get("drafts", [])), f"review list at the core: {p.stderr}")
    p = cli(A, agent_env, "review", "approve", draft_id)
    check(p.returncode == 1, f"an agent key cannot approve: {p.returncode} {p.stderr}")
    p = cli(R, rev_env, "review", "approve", draft_id, "--note", "verified")
    check(p.returncode == 0, f"reviewer approves: {p.returncode} {p.stderr}")
    check(core.items().get(draft_id, {}).get("kind") == "thread", "the draft is canon at the core")

    B = new_ws(tmp, "B", core.url(), agent_env, ca=cert)
    p = cli(B, agent_env, "sync")
    check(p.returncode == 0, f"cortex sync in B: {p.returncode} {p.stderr}")
    b = Agent(B, agent_env)
    sc, err = b.call("search", {"query": "quokkaflux LD_PRELOAD"})
    res = (sc or {}).get("results", [])
    check(any(r.get("id") == draft_id and r.get("kind") == "thread" for r in res),
          f"B's agent finds the canon thread: {res}")
    sc, err = b.call("status", {})
    sy = (sc or {}).get("sync", {})
    check(not err and sy.get("upstream") == core.url() and sy.get("state") == "configured"
          and sy.get("backlog") == 0 and sy.get("last_pull") is not None,
          f"the MCP status tool reports the upstream and the sync state: {sy}")
    sc, err = b.call("search", {"query": "secretwombat"})
    check(not (sc or {}).get("results"), "B does not see A's private note")

    # A's background sync (cortexd) pulls the decision
    check(wait_until(lambda: json.loads(cli(A, agent_env, "show", draft_id, "--json").stdout or "{}")
                     .get("kind") == "thread", 20), "A's cortexd pulls the decision in the background")
    # and pushes new work in the background
    a.call("observe", {"text": "background push of the platypusgear note"})
    check(wait_until(lambda: marker_items(core, "platypusgear"), 20), "cortexd pushes in the background")

    # --- (c) private items never reach the core
    check(not any("secretwombat" in json.dumps(i) for i in core.items().values()),
          "the private item never reached the core")
    t0 = time.monotonic()
    a.close(10)
    check(time.monotonic() - t0 < 5, "cortexd with sync exits promptly")
    b.close(10)

    # --- (b) faults, on a plain-HTTP core on loopback behind proxies
    data2 = os.path.join(tmp, "core2")
    subprocess.run([CORE, "init", data2], capture_output=True, timeout=60)
    k2 = subprocess.run([CORE, "keys", "create", data2, "--team", "T", "--role", "agent",
                         "--name", "agent"], capture_output=True, text=True, timeout=60).stdout.strip()
    core2 = CoreDB(tmp, data2)
    core2.start()
    env2 = dict(base, XDG_CONFIG_HOME=os.path.join(tmp, "home2"))

    # 503 and 429 for a while, then recovery
    proxy = FaultProxy(core2.port, fail=6)
    F = new_ws(tmp, "F", f"http://127.0.0.1:{proxy.port}", env2)
    login(F, env2, k2)
    f = Agent(F, env2)
    n = 40
    sc, err = f.call("observe", {"observations": [{"text": f"faultA note {i} emuquill"} for i in range(n)]})
    check(not err, f"batch observe: {sc}")
    t0 = time.monotonic()
    sc, err = f.call("status", {})
    check(not err and time.monotonic() - t0 < 2, "agent calls answer during 503/429")
    check(wait_until(lambda: backlog(F, env2) == 0, 60), "the outbox drains after 503/429")
    check(proxy.failed == 6, f"the proxy injected its failures ({proxy.failed})")
    check(len(marker_items(core2, "emuquill")) == n, "every op at the core exactly once (503/429)")
    f.close(10)
    proxy.close()

    # the core killed mid-push and restarted
    G = new_ws(tmp, "G", core2.url(), env2)
    login(G, env2, k2)
    g = Agent(G, env2)
    n = 1500
    for k in range(0, n, 500):
        g.call("observe", {"observations": [{"text": f"faultB note {i} kiwiborne"} for i in range(k, k + 500)]})
    wait_until(lambda: marker_items(core2, "kiwiborne"), 30, 0.01)
    core2.kill()
    sc, err = g.call("observe", {"text": "while the core is down"})
    check(not err, "agent calls answer while the core is down")
    time.sleep(1)
    core2.start()
    check(wait_until(lambda: backlog(G, env2) == 0, 90), "the outbox drains after the core restarts")
    check(len(marker_items(core2, "kiwiborne")) == n, "every op at the core exactly once (core killed)")
    g.close(10)

    # cortexd killed with SIGKILL mid-push, then restarted
    H = new_ws(tmp, "H", core2.url(), env2)
    login(H, env2, k2)
    h = Agent(H, env2)
    n = 1500
    for k in range(0, n, 500):
        h.call("observe", {"observations": [{"text": f"faultC note {i} dingoloom"} for i in range(k, k + 500)]})
    wait_until(lambda: marker_items(core2, "dingoloom"), 30, 0.01)
    h.proc.kill()
    h.proc.wait(10)
    h = Agent(H, env2)
    check(wait_until(lambda: backlog(H, env2) == 0, 90), "the outbox drains after cortexd restarts")
    check(len(marker_items(core2, "dingoloom")) == n, "every op at the core exactly once (cortexd killed)")
    h.close(10)

    # a core that accepts connections and never answers
    hang = FaultProxy(0, hang=True)
    J = new_ws(tmp, "J", f"http://127.0.0.1:{hang.port}", env2, timeout=2)
    login_env = env2  # login needs a core that answers: store the key as login would
    with open(os.path.join(tmp, "home2", "cortex", "credentials"), "a") as fh:
        fh.write(f"http://127.0.0.1:{hang.port}\t{k2}\n")
    j = Agent(J, login_env)
    slow = 0
    for i in range(20):
        t0 = time.monotonic()
        sc, err = j.call("observe", {"text": f"faultD note {i} yakhollow"})
        slow += (time.monotonic() - t0) > 1 or err
        time.sleep(0.05)
    check(slow == 0, f"agent calls keep answering while the core hangs ({slow} slow)")
    t0 = time.monotonic()
    j.close(10)
    check(time.monotonic() - t0 < 4, f"cortexd exits promptly with a hanging core ({time.monotonic() - t0:.1f} s)")
    hang.close()
    # the core comes back on that address
    back = wait_until(lambda: try_proxy(core2.port, hang.port), 10)
    check(back is not None, "the address of the hanging core could be reused")
    j = Agent(J, login_env)
    check(wait_until(lambda: backlog(J, env2) == 0, 60), "the outbox drains once the core answers")
    check(len(marker_items(core2, "yakhollow")) == 20, "every op at the core exactly once (hanging core)")
    j.close(10)
    back.close()
    core2.kill()
    core.kill()


if __name__ == "__main__":
    run("cortex-sync-", tests)
