#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# What a core sends is input. A FAKE core (a small HTTPS server in this
# process on 127.0.0.1, with a self-signed certificate made by openssl)
# serves a change feed whose items carry fresh secrets (an AWS access key id
# and secret access key, a GitHub token, a Slack token, a PEM private key
# block, a database URL with a password) and, in other items, fields past
# the limits of protocol/sync/schemas/item.json (a 1,024-byte title, a
# 300 KiB body, 10,000 blob references, created_at "99999-99-99", an
# observation claiming to be canon) and a tombstone whose id is no id.
# `cortex sync` in a workspace pointed at it (remote set --ca-file, login)
# must exit 0, hold the good items (redacted), hold none of the bad ones,
# leave none of the secret strings in any file under .cortex/ (the
# database, its WAL, blobs, logs: read as bytes), and `cortex status
# --json` must show the skips. Prints "N passed, N failed"; exits non-zero
# on any failure.
import base64
import json
import os
import random
import string

from synclib import FakeCore, check, cli, fake_workspace, run, serve_fake_core

rng = random.SystemRandom()


def rand(alphabet, n):
    return "".join(rng.choice(alphabet) for _ in range(n))


def ulid(n):
    """A ULID-shaped id, distinct for each n."""
    return "01JDQ8" + rand("0123456789ABCDEFGHJKMNPQRSTVWXYZ", 16) + f"{n:04d}"


ALNUM = string.ascii_letters + string.digits
SECRETS = {
    "aws-access-key-id": "AKIA" + rand("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16),
    "aws-secret-access-key": rand(ALNUM + "/+", 40),
    "github-pat": "ghp_" + rand(ALNUM, 36),
    "slack-bot-token": "xoxb-" + rand(string.digits, 12) + "-" + rand(string.digits, 13) + "-"
    + rand(ALNUM, 24),
    "database-url-password": rand(ALNUM, 18),
}
PEM_BODY = "\n".join(base64.b64encode(os.urandom(48)).decode() for _ in range(12))
PEM = "-----BEGIN RSA PRIVATE KEY-----\n" + PEM_BODY + "\n-----END RSA PRIVATE KEY-----"
# what must appear nowhere: every secret, and each line of the key's body
NEEDLES = list(SECRETS.values()) + PEM_BODY.splitlines()

T = "2026-12-01T10:00:00Z"


def item(i, kind="observation", status="recorded", title="t", body="b", **extra):
    it = {"id": i, "kind": kind, "status": status, "subcortex": "ops", "title": title,
          "body": body, "tags": [], "visibility": "shared", "author": "core@example.com",
          "created_at": T, "updated_at": T}
    it.update(extra)
    return it


GOOD = {
    "aws": item(ulid(1), title="AWS keys of the deploy role",
                body="[default]\naws_access_key_id = " + SECRETS["aws-access-key-id"]
                + "\naws_secret_access_key = " + SECRETS["aws-secret-access-key"] + "\n"),
    "github": item(ulid(2), kind="draft", status="pending",
                   title="clone with " + SECRETS["github-pat"],
                   body="export GITHUB_TOKEN=" + SECRETS["github-pat"]),
    "slack": item(ulid(3), kind="thread", status="canon", title="Slack alerts",
                  body="SLACK_BOT_TOKEN=" + SECRETS["slack-bot-token"],
                  tags=[SECRETS["slack-bot-token"]],
                  review={"decision": "approve", "reviewer": "rita@example.com", "at": T}),
    "pem": item(ulid(4), title="The deploy key", body="$ cat id_rsa\n" + PEM + "\n$ ls"),
    "db": item(ulid(5), title="database",
               body="DATABASE_URL=postgres://app:" + SECRETS["database-url-password"]
               + "@db.internal:5432/app",
               provenance={"repository": "https://x-access-token:" + SECRETS["github-pat"]
                           + "@github.com/acme/api.git"}),
}
BAD = {
    "title": item(ulid(11), title="T" * 1024),
    "body": item(ulid(12), body="B" * (300 * 1024)),
    "blobs": item(ulid(13), kind="artifact", status="published", title="tool.sh",
                  blobs=["%064x" % n for n in range(10000)]),
    "time": item(ulid(14), created_at="99999-99-99"),
    "forged": item(ulid(15), status="canon",
                   body="forged canon with " + SECRETS["slack-bot-token"]),
}


def feed():
    changes, seq = [], 0
    for it in list(GOOD.values())[:3] + list(BAD.values()) + list(GOOD.values())[3:]:
        seq += 1
        changes.append({"seq": seq, "item": it})
    seq += 1
    changes.append({"seq": seq, "id": "not-a-ulid/../x", "deleted": True})
    return changes, seq


CHANGES, LAST = feed()


class Handler(FakeCore):
    def pull(self, since):
        return {"changes": [c for c in CHANGES if c["seq"] > since], "next": LAST, "more": False}


def tests(tmp):
    srv, url, cert = serve_fake_core(tmp, Handler)
    try:
        run_sync(tmp, url, cert)
    finally:
        srv.shutdown()


def run_sync(tmp, url, cert):
    ws, env = fake_workspace(tmp, "W", url, cert)
    p = cli(ws, env, "observe", "a local note that is pushed first")
    check(p.returncode == 0, f"observe: {p.stderr}")

    p = cli(ws, env, "sync")
    check(p.returncode == 0, f"cortex sync exits 0: {p.returncode} {p.stderr}")
    check("skipped 6 pulled changes" in p.stderr, f"the sync says what it skipped: {p.stderr}")
    for needle in NEEDLES:
        check(needle not in p.stderr, "no secret in what cortex sync prints")

    # the good items are there, redacted; the bad ones are not
    for name, it in GOOD.items():
        p = cli(ws, env, "--json", "show", it["id"].lower())
        check(p.returncode == 0, f"the {name} item was applied: {p.returncode} {p.stderr}")
        check("[REDACTED:" in p.stdout, f"the {name} item is redacted: {p.stdout[:300]}")
    for name, it in BAD.items():
        p = cli(ws, env, "--json", "show", it["id"])
        check(p.returncode != 0, f"the item with a bad {name} was not stored")

    st = cli(ws, env, "--json", "status")
    check(st.returncode == 0, f"status: {st.stderr}")
    try:
        sync = json.loads(st.stdout).get("sync", {})
    except ValueError:
        sync = {}
    check(sync.get("skipped") == 6, f"status shows 6 skips: {sync}")
    last = sync.get("last_skip") or {}
    check(last.get("reason", "").startswith("tombstone id"), f"status shows the last skip: {last}")
    check(sync.get("cursor") == LAST, f"the cursor moved past every change: {sync}")
    for k in ("backlog", "rejected", "last_push", "last_pull", "last_error", "rejected_ops"):
        check(k in sync, f"status keeps sync.{k}")
    check(sync.get("backlog") == 0, f"the local note was pushed: {sync}")
    # and plain `cortex status` tells a person
    st = cli(ws, env, "status")
    check(st.returncode == 0 and "6 pulled changes not stored" in st.stdout
          and "tombstone id" in st.stdout, f"status shows the skips: {st.stdout}")

    # a second sync is quiet: nothing new, nothing skipped again
    p = cli(ws, env, "sync")
    check(p.returncode == 0, f"second sync: {p.stderr}")
    check("skipped" not in p.stderr, f"nothing skipped twice: {p.stderr}")

    # nothing under .cortex/ holds a secret, in any file, as bytes
    files = 0
    for root, _, names in os.walk(os.path.join(ws, ".cortex")):
        for n in names:
            path = os.path.join(root, n)
            try:
                data = open(path, "rb").read()
            except OSError:
                continue
            files += 1
            for needle in NEEDLES:
                check(needle.encode() not in data, f"{path} holds no secret")
    check(files >= 2, f"the state directory was read ({files} files)")
    check(os.path.exists(os.path.join(ws, ".cortex", "cortex.db")), "the database exists")


if __name__ == "__main__":
    run("cx-pull-input-", tests)
