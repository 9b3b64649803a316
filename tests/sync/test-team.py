# SPDX-License-Identifier: Apache-2.0
"""A workspace is bound to its team (issue 10, item 4), against a real
cortex-core over HTTPS on 127.0.0.1 with keys of two teams (alpha, beta)
made by `cortex-core keys create`:

- the team switch: workspace A is bound to alpha; the same person logs in
  with a beta key in workspace B. Both keys are held side by side and each
  workspace syncs with its own team's key. When the only key A can find is
  beta's (a credentials file written by an older cortex, whose login
  replaced the alpha key, or a config home with only the beta key), A's
  `cortex sync` is refused (exit 4) with a message naming both teams, and
  its cortexd refuses too: nothing of A reaches beta's feed, nothing of beta
  reaches A. `cortex remote set URL --rebind` moves A deliberately;
- an agent key and a reviewer key held together: sync uses the agent key,
  `cortex review approve` the reviewer key (proved by revoking each);
- URL normalisation (case, default port, trailing slash) and the near-miss
  message (localhost vs 127.0.0.1 on one port);
- `cortex status` (text and --json) shows the team and the role."""
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from synclib import CORE, Agent, Core, check, cli, make_cert, run, wait_until  # noqa: E402


def make_key(data, team, role, name):
    p = subprocess.run([CORE, "keys", "create", data, "--team", team, "--role", role, "--name", name],
                       capture_output=True, text=True, timeout=60)
    check(p.returncode == 0 and p.stdout.strip(), f"keys create {team}/{role}: {p.stderr}")
    return p.stdout.strip()


def key_id(key):
    return key.split("_")[1]


def feed(url, cert, key):
    """Everything a key's team can pull, as one JSON text."""
    ctx = ssl.create_default_context(cafile=cert)
    changes, since = [], 0
    for _ in range(100):
        req = urllib.request.Request(f"{url}/v1/sync/pull?since={since}&limit=500",
                                     headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
            page = json.loads(r.read())
        changes += page["changes"]
        since = page["next"]
        if not page["more"]:
            break
    return json.dumps(changes)


def new_ws(tmp, name, url, env, cert):
    ws = os.path.join(tmp, name)
    os.makedirs(ws)
    p = cli(ws, env, "remote", "set", url, "--ca-file", cert)
    check(p.returncode == 0, f"{name}: remote set: {p.stderr}")
    return ws


def login(ws, env, key, what):
    p = cli(ws, env, "login", stdin=key + "\n")
    check(p.returncode == 0, f"{what}: login: {p.returncode} {p.stderr}")
    return p


def status(ws, env):
    p = cli(ws, env, "status", "--json")
    return json.loads(p.stdout).get("sync", {}) if p.returncode == 0 else {}


def found(ws, env, word):
    p = cli(ws, env, "search", word, "--json")
    res = json.loads(p.stdout).get("results", []) if p.returncode == 0 else []
    return any(word in json.dumps(r) for r in res)


def creds(home):
    path = os.path.join(home, "cortex", "credentials")
    lines = [ln for ln in open(path).read().splitlines() if ln and not ln.startswith("#")]
    return path, lines


def tests(tmp):
    data = os.path.join(tmp, "core")
    p = subprocess.run([CORE, "init", data], capture_output=True, text=True, timeout=60)
    check(p.returncode == 0, "core init")
    ka = make_key(data, "alpha", "agent", "alice-agent")
    kar = make_key(data, "alpha", "reviewer", "alice-rev")
    kb = make_key(data, "beta", "agent", "alice-beta")
    cert, pkey = make_cert(tmp)
    core = Core(tmp, data, (cert, pkey))
    core.start()
    url = core.url()

    base = dict(os.environ, CORTEX_SYNC_INTERVAL_MS="300", CORTEX_SYNC_DEADLINE="30")
    base.pop("CORTEX_WORKSPACE", None)
    home1 = os.path.join(tmp, "home1")
    env1 = dict(base, XDG_CONFIG_HOME=home1)

    # --- the team switch, with both keys held side by side
    A = new_ws(tmp, "A", url, env1, cert)
    p = login(A, env1, ka, "A alpha")
    check("team alpha" in p.stdout and "role agent" in p.stdout, f"login names team and role: {p.stdout}")
    st = status(A, env1)
    check(st.get("team") == "alpha" and st.get("role") == "agent" and st.get("team_bound") is True,
          f"status --json shows the team and role after login: {st}")
    p = cli(A, env1, "observe", "alphamarker one quokka")
    check(p.returncode == 0, f"A observe: {p.stderr}")
    p = cli(A, env1, "sync")
    check(p.returncode == 0, f"A syncs with alpha: {p.returncode} {p.stderr}")
    p = cli(A, env1, "status")
    check(p.returncode == 0 and any(ln.split()[:1] == ["team"] and "alpha, role agent" in ln
                                    for ln in p.stdout.splitlines()),
          f"status shows 'team alpha, role agent': {p.stdout}")

    B = new_ws(tmp, "B", url, env1, cert)
    p = login(B, env1, kb, "B beta")
    check("team beta" in p.stdout, f"login in B names team beta: {p.stdout}")
    path, lines = creds(home1)
    check(os.stat(path).st_mode & 0o777 == 0o600, "the credentials file stays 0600")
    check(len(lines) == 2 and any(ka in ln and "\talpha\tagent" in ln for ln in lines)
          and any(kb in ln and "\tbeta\tagent" in ln for ln in lines),
          f"both keys are held, with their team and role: {len(lines)} lines")
    p = cli(A, env1, "observe", "alphamarker two wombat")
    check(p.returncode == 0, f"A observe: {p.stderr}")
    p = cli(A, env1, "sync")
    check(p.returncode == 0, f"A still syncs with its alpha key: {p.returncode} {p.stderr}")
    p = cli(B, env1, "observe", "betamarker one numbat")
    check(p.returncode == 0, f"B observe: {p.stderr}")
    p = cli(B, env1, "sync")
    check(p.returncode == 0, f"B syncs with beta: {p.returncode} {p.stderr}")
    fa, fb = feed(url, cert, ka), feed(url, cert, kb)
    check("alphamarker one" in fa and "alphamarker two" in fa, "alpha's feed has A's notes")
    check("alphamarker" not in fb, "beta's feed has nothing of A")
    check("betamarker" in fb and "betamarker" not in fa, "B's note is in beta only")
    check(not found(B, env1, "alphamarker") and not found(A, env1, "betamarker"),
          "neither workspace holds the other team's notes")
    st = status(B, env1)
    check(st.get("team") == "beta" and st.get("role") == "agent", f"B's status: team beta: {st}")
    # a beta key logged in inside the alpha workspace is stored, not used there
    p = cli(A, env1, "login", stdin=kb + "\n")
    check(p.returncode == 0 and "bound to team alpha" in p.stderr and "--rebind" in p.stderr,
          f"login of another team's key in a bound workspace says so: {p.returncode} {p.stderr}")
    check(status(A, env1).get("team") == "alpha", "A stays bound to alpha")

    # --- the only key A can find is beta's: a credentials file of the first
    # format, as an older cortex left it after its login replaced the alpha key
    home2 = os.path.join(tmp, "home2")
    os.makedirs(os.path.join(home2, "cortex"))
    with open(os.path.join(home2, "cortex", "credentials"), "w") as f:
        f.write(f"{url}\t{kb}\n")
    os.chmod(os.path.join(home2, "cortex", "credentials"), 0o600)
    env2 = dict(base, XDG_CONFIG_HOME=home2)
    p = cli(A, env2, "observe", "alphamarker three dingo")
    check(p.returncode == 0, f"A observe: {p.stderr}")
    cursor = status(A, env1).get("cursor")
    p = cli(A, env2, "sync")
    check(p.returncode == 4, f"A's sync with a beta key is refused (exit 4): {p.returncode}")
    check("team alpha" in p.stderr and "team beta" in p.stderr and "cortex login" in p.stderr
          and "--rebind" in p.stderr, f"the refusal names both teams and what to do: {p.stderr}")
    _, lines2 = creds(home2)
    check(len(lines2) == 1 and lines2[0].endswith("\tbeta\tagent\talice-beta"),
          f"the old-format line now records its team: {lines2}")
    p = cli(A, env2, "sync")  # now found by team: no key of alpha at all
    check(p.returncode == 4 and "team alpha" in p.stderr and "team beta" in p.stderr,
          f"refused again, by the stored team: {p.returncode} {p.stderr}")
    st = status(A, env2)
    check(st.get("team") == "alpha" and st.get("logged_in") is False
          and "team beta" in (st.get("key_error") or ""),
          f"status says the keys are of another team: {st}")
    # cortexd's background sync refuses too
    a = Agent(A, env2)
    sc, err = a.call("observe", {"text": "alphamarker four platypus"})
    check(not err, f"A's agent observes: {sc}")
    got = wait_until(lambda: "team beta" in str(((a.call("status", {})[0] or {}).get("sync") or {})
                                                 .get("this_process", {}).get("last_error")), 20, 0.3)
    check(got, "cortexd records the team refusal as its sync error")
    time.sleep(1)
    a.close(10)
    fb = feed(url, cert, kb)
    check("alphamarker" not in fb, "nothing of A reached beta's feed (cortex sync and cortexd)")
    check(not found(A, env1, "betamarker"), "nothing of beta reached A")
    check(status(A, env1).get("cursor") == cursor, "A's cursor did not move")
    # the same through a new-format file holding only the beta key
    home3 = os.path.join(tmp, "home3")
    env3 = dict(base, XDG_CONFIG_HOME=home3)
    login(B, env3, kb, "B beta in home3")
    p = cli(A, env3, "sync")
    check(p.returncode == 4 and "team alpha" in p.stderr and "team beta" in p.stderr,
          f"refused with a new-format beta key too: {p.returncode} {p.stderr}")
    check("alphamarker" not in feed(url, cert, kb), "still nothing of A in beta")
    # A's own alpha key (home1) still works, and pushes what waited
    p = cli(A, env1, "sync")
    check(p.returncode == 0, f"A syncs with its alpha key again: {p.returncode} {p.stderr}")
    fa = feed(url, cert, ka)
    check("alphamarker three" in fa and "alphamarker four" in fa, "A's waiting notes reach alpha")

    # --- a deliberate move: --rebind forgets the team and resets the cursor
    C = new_ws(tmp, "C", url, env1, cert)
    login(C, env1, ka, "C alpha")
    p = cli(C, env1, "sync")
    check(p.returncode == 0 and found(C, env1, "alphamarker"), f"C pulls alpha: {p.stderr}")
    p = cli(C, env1, "remote", "set", url, "--ca-file", cert, "--rebind")
    check(p.returncode == 0 and "no longer bound to team alpha" in p.stdout,
          f"remote set --rebind says what it forgot: {p.returncode} {p.stdout} {p.stderr}")
    st = status(C, env1)
    check(st.get("team_bound") is False and st.get("cursor") == 0,
          f"after --rebind: no team, cursor 0: {st}")
    p = cli(C, env1, "sync")
    check(p.returncode == 4 and "alpha" in p.stderr and "beta" in p.stderr,
          f"unbound with keys of two teams: sync asks which: {p.returncode} {p.stderr}")
    login(C, env1, kb, "C beta after --rebind")
    p = cli(C, env1, "sync")
    check(p.returncode == 0 and status(C, env1).get("team") == "beta" and found(C, env1, "betamarker"),
          f"C now syncs with beta: {p.returncode} {p.stderr}")

    # --- an agent key and a reviewer key held together (reviewer first)
    home4 = os.path.join(tmp, "home4")
    env4 = dict(base, XDG_CONFIG_HOME=home4)
    R = new_ws(tmp, "R", url, env4, cert)
    login(R, env4, kar, "R reviewer")
    login(R, env4, ka, "R agent")
    _, lines4 = creds(home4)
    check(len(lines4) == 2, f"the agent key is kept beside the reviewer key: {len(lines4)}")
    st = status(R, env4)
    check(st.get("team") == "alpha" and st.get("role") == "agent"
          and sorted(k.get("role") for k in st.get("keys", [])) == ["agent", "reviewer"],
          f"status: sync uses the agent key; both are listed: {st}")
    p = cli(R, env4, "draft", "--title", "Reviewed by alice", "draftmarker body of the draft")
    draft = p.stdout.strip().split()[-1] if p.returncode == 0 else ""
    check(p.returncode == 0 and draft, f"draft: {p.stdout} {p.stderr}")
    p = cli(R, env4, "sync")
    check(p.returncode == 0, f"R syncs: {p.stderr}")
    p = cli(R, env4, "review", "approve", draft, "--note", "fine")
    check(p.returncode == 0, f"review approve uses the reviewer key: {p.returncode} {p.stderr}")
    thread = [c for c in json.loads(feed(url, cert, ka)) if (c.get("item") or c).get("id") == draft]
    check(any("alice-rev" in json.dumps(c) and "thread" in json.dumps(c) for c in thread),
          "the core made the draft canon, decided by the reviewer key's principal")
    # revoke the reviewer key: sync still works (it never used it), review fails
    p = subprocess.run([CORE, "keys", "revoke", data, key_id(kar)], capture_output=True, text=True,
                       timeout=60)
    check(p.returncode == 0, f"revoke the reviewer key: {p.stderr}")
    cli(R, env4, "observe", "agentkeymarker after revoking the reviewer")
    p = cli(R, env4, "sync")
    check(p.returncode == 0 and "agentkeymarker" in feed(url, cert, ka),
          f"sync keeps working: it uses the agent key: {p.returncode} {p.stderr}")
    p = cli(R, env4, "review", "list")
    check(p.returncode == 1, f"review uses the (revoked) reviewer key, not the agent key: {p.returncode}")
    p = subprocess.run([CORE, "keys", "revoke", data, key_id(ka)], capture_output=True, text=True,
                       timeout=60)
    p = cli(R, env4, "sync")
    check(p.returncode == 1, f"with the agent key revoked too, sync is refused (1, a 4xx answer, "
                             f"as cortex sync --help says): {p.returncode} {p.stderr}")

    # --- URL normalisation and the near-miss
    home5 = os.path.join(tmp, "home5")
    env5 = dict(base, XDG_CONFIG_HOME=home5)
    port = url.rsplit(":", 1)[1]
    N = new_ws(tmp, "N", f"HTTPS://LocalHost:{port}/", env5, cert)
    p = cli(N, env5, "remote", "--json")
    check(p.returncode == 0 and json.loads(p.stdout).get("url") == f"https://localhost:{port}",
          f"the URL is stored normalised: {p.stdout}")
    login(N, env5, kb, "N beta via localhost")
    _, lines5 = creds(home5)
    check(lines5 and lines5[0].startswith(f"https://localhost:{port}\t"),
          f"the key is stored under the normalised URL: {lines5}")
    p = cli(N, env5, "remote", "set", f"https://localhost:{port}//", "--ca-file", cert)
    p = cli(N, env5, "sync")
    check(p.returncode == 0, f"a trailing slash does not lose the login: {p.returncode} {p.stderr}")
    p = cli(N, env5, "remote", "set", "https://Core.Example.COM:443/", "--json")
    check(p.returncode == 0 and json.loads(p.stdout).get("url") == "https://core.example.com",
          f"the default port is dropped: {p.stdout}")
    M = new_ws(tmp, "M", url, env5, cert)  # 127.0.0.1, the same core
    p = cli(M, env5, "sync")
    check(p.returncode == 4 and f"https://localhost:{port}" in p.stderr and url in p.stderr,
          f"the near-miss names the URL that has a key: {p.returncode} {p.stderr}")
    st = status(M, env5)
    check(st.get("logged_in") is False and f"https://localhost:{port}" in (st.get("key_error") or ""),
          f"status shows the near-miss: {st}")
    # an old-format line written with another spelling of the URL is found
    home6 = os.path.join(tmp, "home6")
    os.makedirs(os.path.join(home6, "cortex"))
    with open(os.path.join(home6, "cortex", "credentials"), "w") as f:
        f.write(f"HTTPS://127.0.0.1:{port}/\t{kb}\n")
    env6 = dict(base, XDG_CONFIG_HOME=home6)
    p = cli(M, env6, "sync")
    check(p.returncode == 0 and status(M, env6).get("team") == "beta",
          f"an old-format line is read, its URL normalised: {p.returncode} {p.stderr}")
    core.stop()


if __name__ == "__main__":
    run("cortex-team-", tests)
