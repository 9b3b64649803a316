#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""No secret in a name or a path gets through: end to end, over real HTTPS.

A workspace in a git repository whose branch name holds a GitHub token and
whose remote's path holds another (and a user:password) syncs, through its
background cortexd, to a cortex-core on 127.0.0.1. Secrets go in through
everything that is not a note's text: the CLI's observe with --subcortex,
--tag and --file (a file whose name holds a token), MCP observe and draft
with a subcortex, tags and files, MCP publish with a token in the artifact's
name and in its source path, and the agent hooks with a token in the
session_id (session-start, then stop, which writes a digest draft), plus
encoded secrets (URL-encoded, JSON-escaped, split over two lines, a PEM
body without armour) in a note. The writes happen before the workspace has
an upstream, and no secret may be found, raw or JSON-escaped, in any file
under .cortex/ (database, WAL, blobs, session files, and every file name),
read as bytes: what the store keeps, before a pull could replace it. Then
the upstream is set and, once the outbox has drained, the same holds for
.cortex/ and the core's data directory; the core holds the markers. Prints
"N passed, N failed".
"""
import json
import os
import subprocess

from synclib import CORE, Agent, Core, check, cli, make_cert, run, wait_until  # noqa: E402

# made-up secrets in real formats
GHP_BRANCH = "ghp_Zq8Xv2Lm4Np6Rt8Vx0Bz2Dc4Fg6Hj8Kl0Mn2Pq"
GHP_REMOTE = "ghp_Ab1Cd3Ef5Gh7Ij9Kl1Mn3Op5Qr7St9Uv1Wx3Yz"
GHP_TAG = "ghp_Tq2Wr4Ey6Ui8Op0As2Df4Gh6Jk8Lz0Xc2Vb4Nm"
GHP_FILE = "ghp_Fp3Lk5Jh7Gf9Ds1Aq3Wz5Sx7Ed9Cr1Fv3Tg5By"
GHP_NAME = "ghp_Nm4Bv6Cx8Zl0Kj2Hg4Fd6Sa8Qw0Er2Ty4Ui6Op"
GHP_SESSION = "ghp_Ss5Ee7Ss9Ii1Oo3Nn5Ii7Dd9Tt1Oo3Kk5Ee7Nn"
GHP_SPLIT = "ghp_Sp6Li8Tt0Ww2Oo4Ll6Ii8Nn0Ee2Ss4Kk6Ee7Yy"
AKIA_SUB = "AKIAQYLPMN2ZSHX4KW7E"
AKIA_PATH = "AKIAZ7RWQ3MXNB5KTY2H"
AKIA_JSON = "AKIAV4HXQ7TRMN2PLK6W"
PASSWORD_REMOTE = "Hq3Lz8Wm1Pv6xRt"
PASSWORD_URLENC = "xK9vQ2mLp7RtY4w"
# a P-256 key's body, pasted without its BEGIN/END lines
KEY_BODY = ("MHcCAQEEIL58lTGz8LwZlFR49eahzZY/XoP447Nmy8ku7OslaoZ/oAoGCCqGSM49\n"
            "AwEHoUQDQgAEb64q8MNCCmYu/kji4zQqtdhC0zSNe/j1LCSsWaF+ee7Q1U4LsTud\n"
            "6XxkD9XgYggA7HB/rLRyJ6hyRw6mYuWaoA==")

SECRETS = [GHP_BRANCH, GHP_REMOTE, GHP_TAG, GHP_FILE, GHP_NAME, GHP_SESSION, AKIA_SUB, AKIA_PATH,
           AKIA_JSON, PASSWORD_REMOTE, PASSWORD_URLENC]


def needles():
    """Each secret raw and JSON-escaped; of the tokens, the part after the
    prefix too (so that "gh\\u0070_..." or a split token is caught); the
    halves of the split token; each line of the key body."""
    out = set()
    for s in SECRETS:
        out |= {s, json.dumps(s)[1:-1]}
        if s.startswith("ghp_"):
            out.add(s[4:])
        if s.startswith("AKIA"):
            out.add(s[4:])
    out |= {GHP_SPLIT[:22], GHP_SPLIT[22:]}
    out |= {ln for ln in KEY_BODY.splitlines() if len(ln) >= 16}
    return {n.encode() for n in out}


def every_file(*dirs):
    for d in dirs:
        for root, subdirs, fs in os.walk(d):
            for name in subdirs + fs:
                yield os.path.join(root, name)


def leaks(dirs, bad):
    """(path, needle) for every file under dirs whose name or bytes hold a needle."""
    found = []
    for path in every_file(*dirs):
        if any(n in os.path.basename(path).encode() for n in bad):
            found.append(("name", path))
        if not os.path.isfile(path) or os.path.islink(path):
            continue
        with open(path, "rb") as f:
            blob = f.read()
        for n in bad:
            if n in blob:
                found.append((path, n[:12]))
                break
    return found


def tests(tmp):
    data = os.path.join(tmp, "core")
    subprocess.run([CORE, "init", data], check=True, capture_output=True, timeout=60)
    key = subprocess.run([CORE, "keys", "create", data, "--team", "T", "--role", "reviewer",
                          "--name", "rev"], check=True, capture_output=True, text=True,
                         timeout=60).stdout.strip()
    cert, tlskey = make_cert(tmp)
    core = Core(tmp, data, (cert, tlskey))
    core.start()

    ws = os.path.join(tmp, "repo")
    home = os.path.join(tmp, "home")
    env = dict(os.environ, CORTEX_SYNC_INTERVAL_MS="300", XDG_CONFIG_HOME=home, HOME=home,
               CORTEX_AUTHOR="tester", GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null")
    env.pop("CORTEX_WORKSPACE", None)

    def git(*args):
        subprocess.run(["git", "-C", ws, *args], check=True, capture_output=True, env=env,
                       timeout=60)

    # the repository: a token in the branch name, in the remote's path, a password
    subprocess.run(["git", "init", "-q", "-b", "feat/" + GHP_BRANCH, ws], check=True, env=env)
    git("config", "user.name", "T")
    git("config", "user.email", "t@example.com")
    os.makedirs(os.path.join(ws, "notes"))
    os.makedirs(os.path.join(ws, "scripts", AKIA_PATH))
    token_file = os.path.join("notes", GHP_FILE + ".md")
    with open(os.path.join(ws, token_file), "w") as f:
        f.write("about the deploy\n")
    with open(os.path.join(ws, "scripts", AKIA_PATH, "deploy.sh"), "w") as f:
        f.write("#!/bin/sh\necho deploy\n")
    git("add", "-A")
    git("commit", "-q", "-m", "first")
    git("remote", "add", "origin",
        f"https://deploy:{PASSWORD_REMOTE}@git.example.com/org/{GHP_REMOTE}.git")

    # first without an upstream: what the store itself keeps is checked
    # before a pull could replace it with the core's (redacted) copy
    p = cli(ws, env, "start", "--no-daemon")
    check(p.returncode == 0, f"cortex start: {p.returncode} {p.stderr}")

    # the CLI: subcortex, tag, a file whose name holds a token
    p = cli(ws, env, "observe", "--json", "--subcortex", "sub-" + AKIA_SUB, "--tag",
            "tag-" + GHP_TAG, "--file", token_file, "the deploy notes moved")
    check(p.returncode == 0, f"cli observe with secrets in its names: {p.returncode} {p.stderr}")
    check(not any(s in p.stdout + p.stderr for s in SECRETS), f"cli observe echoes no secret: {p.stdout}")
    try:
        got = json.loads(p.stdout)
    except ValueError:
        got = {}
    check("redacted" in json.dumps(got), f"cli observe says what it redacted: {p.stdout}")

    # MCP: observe and draft with names and files, publish with a token in the name and path
    agent = Agent(ws, env)
    res, err = agent.call("observe", {"text": "encoded secrets: " +
                          f"postgres%3A%2F%2Fapp%3A{PASSWORD_URLENC}%40db.internal%2Fprod and "
                          f'{{"k": "\\u0041{AKIA_JSON[1:]}"}} and the token, wrapped:\n'
                          f"{GHP_SPLIT[:22]}\n{GHP_SPLIT[22:]}\nand a key body:\n{KEY_BODY}\nend",
                          "subcortex": "sub-" + AKIA_SUB, "tags": ["t-" + GHP_TAG],
                          "files": [token_file]})
    check(not err and res.get("redacted"), f"MCP observe of encoded secrets redacted: {res}")
    res, err = agent.call("draft", {"title": "Deploy notes " + GHP_NAME, "body": "how we deploy",
                                    "subcortex": "sub-" + AKIA_SUB, "tags": ["tag-" + GHP_TAG],
                                    "files": [token_file, "scripts/" + AKIA_PATH + "/deploy.sh"]})
    check(not err and res.get("redacted"), f"MCP draft with secrets in its names redacted: {res}")
    res, err = agent.call("publish", {"name": "deploy " + GHP_NAME,
                                      "path": "scripts/" + AKIA_PATH + "/deploy.sh",
                                      "subcortex": "sub-" + AKIA_SUB})
    check(not err and res.get("redacted") and "[REDACTED:github-pat]" in (res.get("name") or ""),
          f"MCP publish with a token in its name and path redacted: {res}")
    check(not any(s in json.dumps(res) for s in SECRETS), f"publish echoes no secret: {res}")

    # hooks: a token in the session id (session-start, an observation, stop)
    payload = {"session_id": "sess-" + GHP_SESSION, "cwd": ws, "hook_event_name": "SessionStart",
               "source": "startup"}
    p = subprocess.run([os.environ["CORTEX"], "hook", "session-start", "--workspace", ws],
                       input=json.dumps(payload), capture_output=True, text=True, env=env,
                       timeout=60)
    check(p.returncode == 0, f"hook session-start: {p.returncode} {p.stderr}")
    p = cli(ws, env, "observe", "--tag", "parser", "the parser drops trailing commas")
    check(p.returncode == 0, f"observe in the session: {p.stderr}")
    payload.update(hook_event_name="Stop", stop_hook_active=False)
    p = subprocess.run([os.environ["CORTEX"], "hook", "stop", "--workspace", ws],
                       input=json.dumps(payload), capture_output=True, text=True, env=env,
                       timeout=60)
    check(p.returncode == 0, f"hook stop: {p.returncode} {p.stderr}")
    sessions = os.path.join(ws, ".cortex", "sessions")
    names = os.listdir(sessions) if os.path.isdir(sessions) else []
    check(any(n.startswith("s-") and n.endswith(".json") for n in names),
          f"the session is recorded under a hashed name: {names}")
    recorded = [json.load(open(os.path.join(sessions, n))) for n in names if n.startswith("s-")]
    check(any(r.get("session_id") == "sess-[REDACTED:github-pat]" for r in recorded),
          f"the session file holds the redacted id: {recorded}")

    agent.close()
    found = leaks([os.path.join(ws, ".cortex")], needles())
    check(not found, f"no secret in the workspace's store before sync ({len(found)}: {found[:8]})")

    # then the team's core: the background cortexd pushes the outbox
    p = cli(ws, env, "start", "--upstream", core.url(), "--ca-file", cert)
    check(p.returncode == 0, f"cortex start --upstream: {p.returncode} {p.stderr}")
    p = cli(ws, env, "login", stdin=key + "\n")
    check(p.returncode == 0, f"cortex login: {p.returncode} {p.stderr}")
    def drained():
        p = cli(ws, env, "status", "--json")
        try:
            return json.loads(p.stdout)["sync"].get("backlog") == 0
        except (ValueError, KeyError):
            return False
    check(wait_until(drained, 120), "the background daemon pushed everything to the core")
    p = cli(ws, env, "stop")
    check(p.returncode == 0, f"cortex stop: {p.stderr}")
    core.stop()

    # nothing anywhere: file contents and file names, workspace and core
    found = leaks([os.path.join(ws, ".cortex"), data], needles())
    markers = 0
    for path in every_file(data):
        if os.path.isfile(path):
            with open(path, "rb") as f:
                markers += f.read().count(b"[REDACTED:")
    check(markers > 0, "redacted names reached the core's database")
    check(not found, f"no secret stored anywhere after sync ({len(found)} found: {found[:8]})")


run("cortex-redact-names-", tests)
