# SPDX-License-Identifier: Apache-2.0
"""What the PostgreSQL-era core tests share (test-migrate, test-nodes,
test-restore), on top of tests/sync/synclib.py: running cortex-core
commands, making keys, requests to a node with a key over TLS, a team's
whole feed, and a git workspace joined to a core. Standard library only."""
import json
import os
import ssl
import subprocess
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sync"))
from synclib import CORE, check, cli  # noqa: E402

ULID_CHARS = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def core(*args, timeout=300):
    """cortex-core ARGS: the finished process (text)."""
    return subprocess.run([CORE, *args], capture_output=True, text=True, timeout=timeout)


def make_key(data, team, role, name):
    p = core("keys", "create", data, "--team", team, "--role", role, "--name", name)
    check(p.returncode == 0 and p.stdout.strip(), f"keys create {team}/{role}: {p.stderr}")
    return p.stdout.strip().split()[0]


def key_id(key):
    return key.split("_")[1]


def ulid(n, salt):
    """A valid ULID unique to (n, salt)."""
    v = (salt << 40) | n
    s = ""
    for _ in range(16):
        s = ULID_CHARS[v & 31] + s
        v >>= 5
    return "01JD" + ("0000000000" + s)[-22:]


def item(id_, title, kind="observation", status="recorded"):
    return {"id": id_, "kind": kind, "status": status, "title": title, "body": title,
            "tags": ["x"], "author": "ann", "created_at": "2026-12-07T00:00:00Z",
            "updated_at": "2026-12-07T00:00:00Z", "visibility": "shared"}


class Http:
    """Requests to one node (port) with one key, over TLS (ca)."""

    def __init__(self, port, ca, key):
        self.base, self.key = f"https://127.0.0.1:{port}", key
        self.ctx = ssl.create_default_context(cafile=ca)

    def req(self, path, body=None, key=None):
        """(status, parsed body)."""
        data = json.dumps(body).encode() if body is not None else None
        r = urllib.request.Request(self.base + path, data=data,
                                   method="POST" if data is not None else "GET",
                                   headers={"Authorization": f"Bearer {key or self.key}",
                                            "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(r, context=self.ctx, timeout=60) as res:
                return res.status, json.loads(res.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def push(self, ops):
        return self.req("/v1/sync/push", {"ops": ops})

    def feed(self):
        """Every change the key's team can pull, as one JSON text."""
        changes, since = [], 0
        for _ in range(1000):
            st, page = self.req(f"/v1/sync/pull?since={since}&limit=500")
            check(st == 200, f"pull: {st} {page}")
            if st != 200:
                break
            changes += page["changes"]
            since = page["next"]
            if not page["more"]:
                break
        return json.dumps(changes, sort_keys=True)


def workspace(tmp, name, url, ca, keys):
    """A git repository tmp/name joined to the core at url with keys, with
    its own config home: (ws, env)."""
    env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(tmp, "home-" + name),
               CORTEX_AUTHOR=name.lower() + "@example.com", CORTEX_SYNC_DEADLINE="60")
    env.pop("CORTEX_WORKSPACE", None)
    ws = os.path.join(tmp, name)
    os.makedirs(ws)
    subprocess.run(["git", "init", "-q", ws], check=True, timeout=30)
    p = cli(ws, env, "remote", "set", url, "--ca-file", ca)
    check(p.returncode == 0, f"{name}: remote set: {p.stderr}")
    for k in keys:
        p = cli(ws, env, "login", stdin=k + "\n")
        check(p.returncode == 0, f"{name}: login: {p.returncode} {p.stderr}")
    return ws, env


def sync(ws, env, what):
    p = cli(ws, env, "sync", timeout=180)
    check(p.returncode == 0, f"{what}: sync: {p.returncode} {p.stderr}")
    return p


def cursor(ws, env):
    """The workspace's pull cursor (cortex status --json), or None."""
    p = cli(ws, env, "--json", "status")
    try:
        return json.loads(p.stdout).get("sync", {}).get("cursor")
    except ValueError:
        return None
