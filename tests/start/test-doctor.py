#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""`cortex doctor` finds and explains each broken link, one at a time.

A workspace is set up as a person would (`cortex start --agent claude
--upstream` against a real cortex-core over HTTPS on 127.0.0.1, `cortex
login`), with copies of the cortex and cortexd binaries in a directory of
their own so that one can be taken away. Doctor must pass on the healthy
chain; then each link is broken in turn (the cortexd binary, the workspace
config, the store, the agent's MCP config, the hooks, the daemon, the git
exclude, the core, the key: missing and revoked), and doctor must name that
check, explain it, give a fix, exit 1 for a failure (0 for a warning), and
pass again once the link is mended. Prints "N passed, N failed".
"""
import json
import os
import shutil
import subprocess

from synclib import CORE, Core, check, make_cert, run  # noqa: E402

CORTEX, CORTEXD = os.environ["CORTEX"], os.environ["CORTEXD"]


def tests(tmp):
    data = os.path.join(tmp, "core")
    subprocess.run([CORE, "init", data], check=True, capture_output=True, timeout=60)
    key = subprocess.run([CORE, "keys", "create", data, "--team", "T", "--role", "agent",
                          "--name", "dev"], check=True, capture_output=True, text=True,
                         timeout=60).stdout.strip()
    cert, tlskey = make_cert(tmp)
    core = Core(tmp, data, (cert, tlskey))
    core.start()

    bindir = os.path.join(tmp, "bin")
    os.makedirs(bindir)
    cortex, cortexd = os.path.join(bindir, "cortex"), os.path.join(bindir, "cortexd")
    shutil.copy2(CORTEX, cortex)
    shutil.copy2(CORTEXD, cortexd)
    ws = os.path.join(tmp, "repo")
    home = os.path.join(tmp, "home")
    env = {k: v for k, v in os.environ.items()
           if k not in ("CORTEX_WORKSPACE", "CORTEX_CORTEXD", "CORTEX_CLI")}
    env.update(HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"), CORTEX_AUTHOR="dev",
               GIT_CONFIG_NOSYSTEM="1", CORTEX_SYNC_INTERVAL_MS="300")
    # the agent's own program, as doctor looks for it on PATH (a stand-in:
    # tests/agents runs the real one)
    agentbin = os.path.join(tmp, "agentbin")
    os.makedirs(agentbin)
    with open(os.path.join(agentbin, "claude"), "w") as f:
        f.write("#!/bin/sh\nexit 0\n")
    os.chmod(os.path.join(agentbin, "claude"), 0o755)
    env["PATH"] = agentbin + os.pathsep + env.get("PATH", "/usr/bin:/bin")
    subprocess.run(["git", "init", "-q", ws], check=True, env=env)

    def cx(*args, stdin=None):
        return subprocess.run([cortex, *args], cwd=ws, env=env, input=stdin, capture_output=True,
                              text=True, timeout=120)

    p = cx("start", "--agent", "claude", "--upstream", core.url(), "--ca-file", cert)
    check(p.returncode == 0, f"cortex start: {p.returncode} {p.stderr}")
    p = cx("login", stdin=key + "\n")
    check(p.returncode == 0, f"cortex login: {p.stderr}")

    def doctor(expect_rc):
        p = cx("doctor", "--json")
        try:
            rep = json.loads(p.stdout)
        except ValueError:
            check(False, f"doctor --json printed no JSON: {p.stdout!r} {p.stderr!r}")
            return {}, p
        check(p.returncode == expect_rc, f"doctor exits {expect_rc}, not {p.returncode}: "
              f"{json.dumps([c for c in rep.get('checks', []) if c['status'] != 'ok'])}")
        return {c["name"]: c for c in rep.get("checks", [])}, p

    def healthy(after):
        checks, _ = doctor(0)
        bad = [(n, c["status"], c["detail"]) for n, c in checks.items() if c["status"] != "ok"]
        check(not bad, f"all checks ok {after}: {bad}")
        return checks

    def broken(name, status, words, after_fix, fix_words=()):
        checks, p = doctor(1 if status == "fail" else 0)
        c = checks.get(name)
        check(c is not None and c["status"] == status,
              f"{after_fix}: doctor reports {name} as {status}: {c}")
        if c:
            text = (c.get("detail", "") + " " + c.get("fix", "")).lower()
            check(all(w.lower() in text for w in words), f"{name}: explained with {words}: {c}")
            check(bool(c.get("fix")) and all(w in c.get("fix", "") for w in fix_words),
                  f"{name}: a fix is given {fix_words}: {c}")
        human = cx("doctor")
        check(name in human.stdout and "fix:" in human.stdout,
              f"{name}: the human report names it with its fix:\n{human.stdout}")

    checks = healthy("after start and login")
    for name in ("cortexd", "workspace", "config", "store", "redaction", "daemon", "agent:claude",
                 "hooks:claude", "approval:claude", "program:claude", "upstream", "key"):
        check(name in checks, f"doctor checks {name}")

    # 1. the cortexd binary disappears
    os.rename(cortexd, cortexd + ".away")
    broken("cortexd", "fail", ["not found"], "cortexd removed", ["CORTEX_CORTEXD"])
    os.rename(cortexd + ".away", cortexd)
    healthy("with cortexd back")

    # 2. the agent's MCP config points elsewhere
    mcp = os.path.join(ws, ".mcp.json")
    saved = open(mcp).read()
    j = json.loads(saved)
    j["mcpServers"]["cortex"]["command"] = "/usr/bin/true"
    open(mcp, "w").write(json.dumps(j))
    broken("agent:claude", "fail", [".mcp.json"], "wrong binary in .mcp.json",
           ["cortex start --agent claude"])
    os.remove(mcp)
    broken("agent:claude", "fail", [".mcp.json"], ".mcp.json deleted")
    p = cx("start", "--agent", "claude")
    check(p.returncode == 0, f"start mends .mcp.json: {p.stderr}")
    healthy("after start --agent claude")

    # 3. the hooks are gone
    settings = os.path.join(ws, ".claude", "settings.json")
    j = json.load(open(settings))
    j.pop("hooks", None)
    json.dump(j, open(settings, "w"))
    broken("hooks:claude", "fail", ["hook"], "hooks removed", ["cortex start --agent claude"])
    cx("start", "--agent", "claude")
    healthy("after the hooks are back")

    # 3b. the person's approval of the project's server is gone (Claude Code
    # would list it as pending), then the agent's program is not on PATH
    local = os.path.join(ws, ".claude", "settings.local.json")
    os.remove(local)
    broken("approval:claude", "fail", ["pending approval"], "approval removed",
           ["cortex start --agent claude", "enabledMcpjsonServers"])
    json.dump({"disabledMcpjsonServers": ["cortex"]}, open(local, "w"))
    broken("approval:claude", "fail", ["rejected"], "server rejected", ["cortex start --agent claude"])
    cx("start", "--agent", "claude")
    check(json.load(open(local)) == {"disabledMcpjsonServers": [], "enabledMcpjsonServers": ["cortex"]},
          f"start approves again: {open(local).read()}")
    healthy("after the approval is back")
    os.rename(os.path.join(agentbin, "claude"), os.path.join(agentbin, "claude.away"))
    broken("program:claude", "warn", ["not on PATH"], "claude not on PATH", ["claude-code"])
    os.rename(os.path.join(agentbin, "claude.away"), os.path.join(agentbin, "claude"))
    healthy("with claude back on PATH")

    # 4. the workspace config has a value cortex does not understand
    cfg = os.path.join(ws, ".cortex", "config")
    saved = open(cfg).read()
    subprocess.run(["git", "config", "-f", cfg, "embed.provider", "magic"], check=True, env=env)
    broken("config", "fail", ["embed.provider"], "bad config value")
    open(cfg, "w").write(saved)
    healthy("with the config restored")

    # 5. the daemon is not running: a warning, not a failure
    check(cx("stop").returncode == 0, "cortex stop")
    broken("daemon", "warn", ["background"], "daemon stopped", ["cortex start"])

    # 6. the store is damaged
    db = os.path.join(ws, ".cortex", "cortex.db")
    os.rename(db, db + ".good")
    for suffix in ("-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.rename(db + suffix, db + ".good" + suffix)
    open(db, "wb").write(b"this is not an SQLite database" * 100)
    broken("store", "fail", ["cannot be opened"], "garbage store")
    os.remove(db)
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + ".good" + suffix):
            os.rename(db + ".good" + suffix, db + suffix)
    check(cx("start").returncode == 0, "start again")
    healthy("with the store restored")

    # 7. .cortex is no longer excluded from git
    excl = os.path.join(ws, ".git", "info", "exclude")
    saved = open(excl).read()
    open(excl, "w").write("# nothing\n")
    broken("workspace", "warn", ["excluded"], "exclude line removed", ["cortex start"])
    open(excl, "w").write(saved)

    # 8. the core is down
    core.stop()
    broken("upstream", "fail", ["does not answer"], "core stopped")
    core.start()
    healthy("with the core back")

    # 9. no key stored, then a revoked key
    cred = os.path.join(home, ".config", "cortex", "credentials")
    saved = open(cred).read()
    os.remove(cred)
    broken("key", "fail", ["no key"], "credentials removed", ["cortex login"])
    open(cred, "w").write(saved)
    os.chmod(cred, 0o600)
    healthy("with the key back")
    p = subprocess.run([CORE, "keys", "revoke", data, key[4:20]], capture_output=True, timeout=60)
    check(p.returncode == 0, "keys revoke")
    broken("key", "fail", ["refuses"], "key revoked", ["cortex login"])

    # 10. not set up at all
    p = subprocess.run([cortex, "doctor"], cwd=tmp, env=env, capture_output=True, text=True,
                       timeout=60)
    check(p.returncode == 1 and "cortex start" in p.stdout,
          f"doctor outside a set-up workspace says to run cortex start: {p.stdout}")
    cx("stop")


run("cortex-doctor-", tests)
