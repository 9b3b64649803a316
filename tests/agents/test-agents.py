#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""`cortex start --agent X` against the real agent command lines.

Claude Code, Gemini CLI and Codex CLI come from npm, pinned in
tests/agents/package-lock.json and installed by `bash .ci/setup.sh --test`.
Each case is a real temporary git repository with its own $HOME (no
account, no login) and the build's cortexd first on PATH; every client run
is bounded in time and, where the machine allows it (`unshare -n`), has no
network at all (the MCP servers speak stdio). What a person relies on:

- claude: before `cortex start`, `claude mcp list` lists no cortex; after
  `cortex start --agent claude` it lists cortex `Connected` (the approval
  is recorded in .claude/settings.local.json) and it started the shared
  entry's plain `cortexd` in the project directory, where cortexd finds the
  workspace; without that approval, or
  with that file tracked by git (Claude Code then ignores it), it says
  `Pending approval` and `cortex doctor` names the missing step.
- gemini: after `cortex start --agent gemini` the server is `Disabled`
  (untrusted folder), start prints the one command that trusts it and
  doctor fails trust:gemini with it; after `--trust` (which keeps the
  user's other rules) `gemini mcp list` lists cortex `Connected`, started
  in the project directory.
- codex: before trust `codex mcp list` has no MCP server (Codex ignores an
  untrusted project's config) and doctor fails trust:codex; after
  `--trust` (which keeps every byte of the user's config.toml)
  `codex mcp get cortex --json` reads the entry from the project's config,
  enabled, and the command it names, resolved and started the way Codex
  starts it (the project as cwd), answers MCP initialize for this
  workspace.

Prints "N passed, M failed"; exits non-zero on failure.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "cli"))
sys.path.insert(0, os.path.join(HERE, "..", "start"))
from clilib import SANITIZER, Fail, check  # noqa: E402
from mcplib import probe  # noqa: E402

CORTEX = os.path.realpath(os.environ["CORTEX"])
CORTEXD = os.path.realpath(os.environ["CORTEXD"])
BINDIR = os.path.dirname(CORTEXD)
NODE_BIN = os.path.join(HERE, "node_modules", ".bin")
CLIENT_TIMEOUT = 120

passed = failed = 0


def no_network_prefix():
    """`unshare -n` when this machine lets us drop the network, else []."""
    exe = shutil.which("unshare")
    if exe:
        try:
            if subprocess.run([exe, "-n", "true"], capture_output=True, timeout=10).returncode == 0:
                return [exe, "-n"]
        except (OSError, subprocess.TimeoutExpired):
            pass
    return []


NONET = no_network_prefix()


class Case:
    def __init__(self, tmp):
        self.home = os.path.join(tmp, "home")
        os.makedirs(self.home)
        node = shutil.which("node")
        path = [BINDIR, NODE_BIN] + ([os.path.dirname(node)] if node else []) + ["/usr/bin", "/bin"]
        self.env = {
            "HOME": self.home, "PATH": os.pathsep.join(path), "LC_ALL": "C.UTF-8",
            "TERM": "dumb", "NO_COLOR": "1", "CORTEX_AUTHOR": "tester",
            "XDG_CONFIG_HOME": os.path.join(self.home, ".config"), "GIT_CONFIG_NOSYSTEM": "1",
            # no updates, telemetry or other traffic: there is no network
            "DISABLE_AUTOUPDATER": "1", "DISABLE_TELEMETRY": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "GEMINI_TELEMETRY_ENABLED": "false",
            "GEMINI_CLI_NO_RELAUNCH": "true",
        }
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TMPDIR"):
            if k in os.environ:
                self.env[k] = os.environ[k]
        self.root = os.path.join(tmp, "project")
        os.makedirs(self.root)
        subprocess.run(["git", "-c", "init.defaultBranch=main", "init", "-q", self.root],
                       env=self.env, check=True, timeout=60)
        self.root = os.path.realpath(self.root)

    def cortex(self, *args, expect=0):
        p = subprocess.run([CORTEX, *args], cwd=self.root, env=self.env, capture_output=True,
                           text=True, timeout=120)
        check(not SANITIZER.search(p.stderr), f"sanitizer report:\n{p.stderr}")
        check(expect is None or p.returncode == expect,
              f"cortex {' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr}")
        return p

    def client(self, name, *args):
        exe = os.path.join(NODE_BIN, name)
        try:
            p = subprocess.run(NONET + [exe, *args], cwd=self.root, env=self.env,
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=CLIENT_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise Fail(f"{name} {' '.join(args)} did not finish within {CLIENT_TIMEOUT} s")
        return p.returncode, p.stdout + p.stderr

    def spy_on_cwd(self, tmp):
        """Runs the clients with a `cortexd` first on PATH that records the
        directory the agent starts it in, then runs the real one: the
        shared entry relies on that being the project. Returns the log."""
        spy = os.path.join(tmp, "spy")
        os.makedirs(spy, exist_ok=True)
        log = os.path.join(tmp, "spy.log")
        with open(os.path.join(spy, "cortexd"), "w") as f:
            f.write(f'#!/bin/sh\npwd -P >> "{log}"\nexec "{CORTEXD}" "$@"\n')
        os.chmod(os.path.join(spy, "cortexd"), 0o755)
        self.env["PATH"] = spy + os.pathsep + self.env["PATH"]
        return log

    def doctor(self):
        p = self.cortex("doctor", "--json", expect=None)
        return {c["name"]: c for c in json.loads(p.stdout)["checks"]}


def cortex_line(out):
    lines = [l for l in out.splitlines() if l.strip().startswith(("cortex:", "✓ cortex", "○ cortex", "✗ cortex"))
             or " cortex:" in l or l.startswith("cortex ")]
    return "\n".join(lines)


def claude(tmp):
    c = Case(tmp)
    rc, out = c.client("claude", "mcp", "list")
    check("cortex:" not in out, f"before start claude lists no cortex server:\n{out}")
    p = c.cortex("start", "--no-daemon", "--agent", "claude")
    check(".claude/settings.local.json" in p.stdout, f"start says where it recorded the approval:\n{p.stdout}")
    with open(os.path.join(c.root, ".mcp.json")) as f:
        check(json.load(f)["mcpServers"]["cortex"]["command"] == "cortexd", "the shared entry")
    spy = c.spy_on_cwd(tmp)
    rc, out = c.client("claude", "mcp", "list")
    check(rc == 0 and "cortex" in out and "Connected" in cortex_line(out),
          f"claude mcp list shows cortex Connected after cortex start --agent claude:\n{out}")
    with open(spy) as f:
        check(f.read().split() == [c.root], "claude starts cortexd in the project directory")
    c.env["PATH"] = c.env["PATH"].split(os.pathsep, 1)[1]
    d = c.doctor()
    for name in ("agent:claude", "hooks:claude", "approval:claude", "program:claude"):
        check(d.get(name, {}).get("status") == "ok", f"doctor {name} ok: {d.get(name)}")

    # negative: the approval taken away, as before this change
    local = os.path.join(c.root, ".claude", "settings.local.json")
    os.rename(local, local + ".away")
    rc, out = c.client("claude", "mcp", "list")
    check("Pending approval" in out, f"without the approval claude says pending:\n{out}")
    d = c.doctor()
    a = d.get("approval:claude", {})
    check(a.get("status") == "fail" and "pending approval" in a.get("detail", "")
          and "cortex start --agent claude" in a.get("fix", ""), f"doctor names the step: {a}")
    os.rename(local + ".away", local)

    # negative: the approval is there but git tracks it (committed by
    # mistake), so Claude Code ignores it; doctor says so
    subprocess.run(["git", "add", "-f", ".claude/settings.local.json"], cwd=c.root, env=c.env,
                   check=True, timeout=60)
    rc, out = c.client("claude", "mcp", "list")
    check("Pending approval" in out, f"a tracked settings.local.json is ignored by claude:\n{out}")
    a = c.doctor().get("approval:claude", {})
    check(a.get("status") == "fail" and "tracked by git" in a.get("detail", "")
          and "git rm --cached" in a.get("fix", ""), f"doctor names the tracked file: {a}")
    subprocess.run(["git", "rm", "-q", "--cached", ".claude/settings.local.json"], cwd=c.root,
                   env=c.env, check=True, timeout=60)
    rc, out = c.client("claude", "mcp", "list")
    check("Connected" in cortex_line(out), f"untracked again, claude connects:\n{out}")

    # the binary is not on PATH: doctor warns
    env = dict(c.env, PATH=os.pathsep.join(p for p in c.env["PATH"].split(os.pathsep) if p != NODE_BIN))
    p = subprocess.run([CORTEX, "doctor", "--json"], cwd=c.root, env=env, capture_output=True,
                       text=True, timeout=120)
    prog = {x["name"]: x for x in json.loads(p.stdout)["checks"]}.get("program:claude", {})
    check(prog.get("status") == "warn" and "not on PATH" in prog.get("detail", ""),
          f"doctor warns that claude is not on PATH: {prog}")


def gemini(tmp):
    c = Case(tmp)
    trusted = os.path.join(c.home, ".gemini", "trustedFolders.json")
    os.makedirs(os.path.dirname(trusted))
    elsewhere = os.path.join(tmp, "elsewhere")
    with open(trusted, "w") as f:
        json.dump({elsewhere: "DO_NOT_TRUST"}, f)
    p = c.cortex("start", "--no-daemon", "--agent", "gemini")
    check("cortex start --agent gemini --trust" in p.stdout and trusted in p.stdout,
          f"start prints the one command that trusts the folder and the file it changes:\n{p.stdout}")
    with open(trusted) as f:
        check(json.load(f) == {elsewhere: "DO_NOT_TRUST"}, "without --trust the user's file is untouched")
    rc, out = c.client("gemini", "mcp", "list")
    check("cortex" in out and "Disabled" in out and "Connected" not in out,
          f"before trust gemini disables the server:\n{out}")
    t = c.doctor().get("trust:gemini", {})
    check(t.get("status") == "fail" and "--trust" in t.get("fix", ""), f"doctor names the step: {t}")

    p = c.cortex("start", "--no-daemon", "--agent", "gemini", "--trust")
    check("TRUST_FOLDER" in p.stdout and trusted in p.stdout, f"--trust says what it changed:\n{p.stdout}")
    with open(trusted) as f:
        check(json.load(f) == {elsewhere: "DO_NOT_TRUST", c.root: "TRUST_FOLDER"},
              "the folder is added, the other rule kept")
    spy = c.spy_on_cwd(tmp)
    rc, out = c.client("gemini", "mcp", "list")
    check(rc == 0 and "cortex" in out and "Connected" in out,
          f"gemini mcp list shows cortex Connected after --trust:\n{out}")
    with open(spy) as f:
        check(set(f.read().split()) == {c.root}, "gemini starts cortexd in the project directory")
    c.env["PATH"] = c.env["PATH"].split(os.pathsep, 1)[1]
    check(c.doctor().get("trust:gemini", {}).get("status") == "ok", "doctor: trusted")


def codex(tmp):
    c = Case(tmp)
    cfg = os.path.join(c.home, ".codex", "config.toml")
    os.makedirs(os.path.dirname(cfg))
    mine = '# my settings\nmodel = "o3"  # keep\n\n[profiles.fast]\nmodel = "o4-mini"\n'
    with open(cfg, "w") as f:
        f.write(mine)
    p = c.cortex("start", "--no-daemon", "--agent", "codex")
    check("cortex start --agent codex --trust" in p.stdout, f"start prints the trust command:\n{p.stdout}")
    rc, out = c.client("codex", "mcp", "list")
    check("No MCP servers configured" in out, f"Codex ignores the untrusted project's config:\n{out}")
    t = c.doctor().get("trust:codex", {})
    check(t.get("status") == "fail" and "--trust" in t.get("fix", ""), f"doctor names the step: {t}")

    p = c.cortex("start", "--no-daemon", "--agent", "codex", "--trust")
    check("trust_level" in p.stdout, f"--trust says what it changed:\n{p.stdout}")
    with open(cfg) as f:
        text = f.read()
    check(text.startswith(mine) and f'[projects."{c.root}"]\ntrust_level = "trusted"\n' in text,
          f"the user's config kept byte for byte, the project added:\n{text}")
    rc, out = c.client("codex", "mcp", "list")
    row = [l.split() for l in out.splitlines() if l.startswith("cortex ")]
    check(rc == 0 and row and row[0][1] == "cortexd" and "enabled" in row[0],
          f"codex mcp list shows cortex:\n{out}")
    rc, out = c.client("codex", "mcp", "get", "cortex", "--json")
    start = out.find("{")
    try:
        entry = json.loads(out[start:out.rfind("}") + 1])
    except ValueError:
        raise Fail(f"codex mcp get cortex --json printed no JSON:\n{out}")
    check(entry.get("enabled") is True, f"enabled: {entry}")
    tr = entry.get("transport", {})
    check(tr.get("type") == "stdio" and tr.get("command") == "cortexd", f"the shared entry: {tr}")
    ws, how = probe(tr["command"], tr.get("args") or [], tr.get("cwd") or c.root, c.env)
    check(ws == c.root, f"the entry Codex reads serves this workspace ({how}): {ws}")
    check(c.doctor().get("trust:codex", {}).get("status") == "ok", "doctor: trusted")


def run(fn):
    global passed, failed
    tmp = tempfile.mkdtemp(prefix="cortex-agents-")
    try:
        fn(tmp)
        passed += 1
        print(f"ok   {fn.__name__}", flush=True)
    except (Fail, AssertionError, subprocess.TimeoutExpired, OSError, KeyError, ValueError) as e:
        failed += 1
        print(f"FAIL {fn.__name__}: {e}", flush=True)
        traceback.print_exc()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


missing = [n for n in ("claude", "gemini", "codex") if not os.path.exists(os.path.join(NODE_BIN, n))]
if missing:
    sys.exit(f"agents: {', '.join(missing)} not installed in {NODE_BIN}: run `bash .ci/setup.sh --test`")
print(f"network: {'none (unshare -n)' if NONET else 'not isolated (unshare -n is not allowed here)'}")
for t in (claude, gemini, codex):
    run(t)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
