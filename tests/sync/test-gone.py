#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Tombstones and 410 end to end. A cortex-core on 127.0.0.1 (plain HTTP on
# loopback) and two workspaces synced with it through the cortex CLI; then,
# with the core stopped, an observation recorded in workspace W (unpushed
# work), and at the core an admin `forget` of two items (one W pushed, one W
# pulled from V) and a `compact` past W's cursor. The next `cortex sync` in
# W pushes its work, gets 410 for its old cursor, rebuilds its cache from a
# fresh pull: the forgotten items are gone in W, its unpushed observation,
# its private note and its pending draft survive, and the observation is at
# the core exactly once. Every wait is bounded; every process is killed at
# the end. Prints "N passed, N failed"; exits non-zero on any failure.
import http.client, json, os, sqlite3, subprocess

from synclib import CORE, Core, check, cli, run
class CoreDB(Core):
    """The core, plus what this test reads of its state."""

    def admin(self, *args):
        return subprocess.run([CORE, args[0], self.data, *args[1:]], capture_output=True,
                              text=True, timeout=60)

    def rows(self, team="T"):
        """[(id, deleted, json)] at the core for a team, from its database."""
        with sqlite3.connect(os.path.join(self.data, "core.db"), timeout=30) as db:
            return list(db.execute("SELECT id, deleted, json FROM items WHERE team = ?", (team,)))

    def last_seq(self, team="T"):
        with sqlite3.connect(os.path.join(self.data, "core.db"), timeout=30) as db:
            r = db.execute("SELECT seq FROM teams WHERE team = ?", (team,)).fetchone()
            return r[0] if r else 0

    def metric(self, line):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
        c.close()
        for ln in text.splitlines():
            if ln.startswith(line + " "):
                return int(float(ln.split()[-1]))
        return 0



def observe(ws, env, text, *extra):
    p = cli(ws, env, "--json", "observe", text, *extra)
    check(p.returncode == 0, f"observe {text!r}: {p.returncode} {p.stderr}")
    try:
        return json.loads(p.stdout)["results"][0]["id"]
    except (ValueError, KeyError, IndexError):
        return None


def has_item(ws, env, item_id):
    p = cli(ws, env, "--json", "show", item_id)
    return p.returncode == 0


def status(ws, env):
    p = cli(ws, env, "--json", "status")
    try:
        return json.loads(p.stdout).get("sync", {})
    except ValueError:
        return {}


def new_ws(tmp, name, url, env, key):
    ws = os.path.join(tmp, name)
    os.makedirs(ws)
    p = cli(ws, env, "remote", "set", url)
    check(p.returncode == 0, f"{name}: remote set: {p.stderr}")
    p = cli(ws, env, "login", stdin=key + "\n")
    check(p.returncode == 0, f"{name}: login: {p.returncode} {p.stderr}")
    return ws


def sync(ws, env, what):
    p = cli(ws, env, "sync")
    check(p.returncode == 0, f"{what}: cortex sync: {p.returncode} {p.stderr}")
    return p


def tests(tmp):
    data = os.path.join(tmp, "core")
    p = subprocess.run([CORE, "init", data], capture_output=True, text=True, timeout=60)
    check(p.returncode == 0, "core init")
    key = subprocess.run([CORE, "keys", "create", data, "--team", "T", "--role", "agent", "--name",
                          "agent"], capture_output=True, text=True, timeout=60).stdout.strip()
    core = CoreDB(tmp, data)
    core.start()
    env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(tmp, "home"))
    env.pop("CORTEX_WORKSPACE", None)

    # --- W and V synced with the core
    W = new_ws(tmp, "W", core.url(), env, key)
    V = new_ws(tmp, "V", core.url(), env, key)
    keep = observe(W, env, "The gadgetmoss build keeps its cache in /var/tmp.")
    doomed = observe(W, env, "The password of the lynxpaddle staging box is written here by mistake.")
    sync(W, env, "W first")
    remote_keep = observe(V, env, "V learned that the quillbarrow tests need a clean HOME.")
    remote_doomed = observe(V, env, "V pasted the otterflint customer's data by mistake.")
    sync(V, env, "V")
    sync(W, env, "W second")
    for i in (keep, doomed, remote_keep, remote_doomed):
        check(i and has_item(W, env, i), f"W holds {i} before the forget")
    cursor_before = status(W, env).get("cursor", 0)
    check(cursor_before == core.last_seq(), f"W is caught up ({cursor_before}, {core.last_seq()})")
    private = observe(W, env, "A private note about the pelicanrune laptop.", "--private")
    p = cli(W, env, "--json", "draft", "--title", "Clean HOME for quillbarrow",
            "Run the quillbarrow tests with a clean HOME.")
    check(p.returncode == 0, f"local draft: {p.stderr}")
    try:
        draft = json.loads(p.stdout).get("id")
    except ValueError:
        draft = None

    # --- the core stops; W records work meanwhile
    core.stop()
    offline = observe(W, env, "Recorded while the core was down: the walrusgrain job needs 8 GiB.")
    check(status(W, env).get("backlog", 0) >= 2, "W has unpushed work (offline note, draft)")

    # --- at the core: forget two items, then compact past W's cursor
    p = core.admin("forget", "--team", "T", doomed, "--reason", "a password in the text")
    check(p.returncode == 0, f"forget W's item: {p.returncode} {p.stderr}")
    p = core.admin("forget", "--team", "T", remote_doomed, "--reason", "customer data")
    check(p.returncode == 0, f"forget V's item: {p.returncode} {p.stderr}")
    rows = {r[0]: r for r in core.rows()}
    check(rows.get(doomed, (0, 0, "x"))[1:] == (1, None) and
          rows.get(remote_doomed, (0, 0, "x"))[1:] == (1, None),
          "the core keeps only tombstones of the forgotten items")
    last = core.last_seq()
    p = core.admin("compact", "--team", "T", "--before-seq", str(last + 1))
    check(p.returncode == 0 and "2 tombstones dropped" in p.stderr,
          f"compact drops the tombstones: {p.returncode} {p.stderr}")
    check(not any(r[0] in (doomed, remote_doomed) for r in core.rows()),
          "the tombstones are gone from the feed")
    p = core.admin("verify-audit")
    check(p.returncode == 0, f"the audit chain verifies: {p.stdout} {p.stderr}")

    # --- W syncs: pushes its work, gets 410, rebuilds from a fresh pull
    core.start()
    p = sync(W, env, "W after compact")
    check(core.metric('cortex_http_requests_total{endpoint="sync_pull",code="410"}') == 1,
          "W's old cursor got exactly one 410")
    check(not has_item(W, env, doomed), "W's forgotten item is gone from W")
    check(not has_item(W, env, remote_doomed), "V's forgotten item is gone from W")
    p = cli(W, env, "search", "lynxpaddle")
    check(p.returncode == 1, f"search does not find the forgotten text: {p.stdout}")
    p = cli(W, env, "search", "otterflint")
    check(p.returncode == 1, f"search does not find V's forgotten text: {p.stdout}")
    for what, i in [("the kept note", keep), ("V's kept note", remote_keep),
                    ("the offline note", offline), ("the private note", private),
                    ("the local draft", draft)]:
        check(i and has_item(W, env, i), f"{what} survives in W")
    p = cli(W, env, "search", "walrusgrain")
    check(p.returncode == 0 and offline in p.stdout, f"the offline note is searchable: {p.stdout}")
    at_core = {r[0]: r for r in core.rows() if r[1] == 0}
    check(offline in at_core and draft in at_core, "the unpushed work reached the core")
    check(sum(1 for r in at_core.values() if "walrusgrain" in (r[2] or "")) == 1,
          "the offline note is at the core exactly once")
    check(private not in at_core and not any("pelicanrune" in (r[2] or "") for r in at_core.values()),
          "the private note never reached the core")
    st = status(W, env)
    check(st.get("backlog") == 0 and st.get("cursor") == core.last_seq(),
          f"W is caught up after the rebuild: {st} (core at {core.last_seq()})")

    # --- V, not yet told: its own sync also rebuilds, and loses the item too
    sync(V, env, "V after compact")
    check(not has_item(V, env, remote_doomed) and not has_item(V, env, doomed),
          "V no longer holds the forgotten items")
    check(has_item(V, env, offline), "V pulled W's offline note")
    check(core.metric('cortex_http_requests_total{endpoint="sync_pull",code="410"}') == 2,
          "V's old cursor got a 410 too")
    core.stop()


if __name__ == "__main__":
    run("cortex-gone-", tests)
