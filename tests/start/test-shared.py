#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Agent configs a team can commit (`cortex start --agent`), end to end.

In real temporary git repositories, each with its own $HOME:

- with the build's cortexd directory on PATH (so `cortexd` there is the
  cortexd in use), every agent's config names plain `cortexd` with no
  argument and no path of this machine, Claude Code's hooks run plain
  `cortex`, start says to commit them and warns about nothing; once they
  are committed nothing is left untracked (.claude/settings.local.json is
  kept out of git); a teammate's clone, with Cortex on their PATH, gets a
  working server from each committed config: the command resolves as the
  agent resolves it and an MCP initialize through it, started in the
  clone's directory, serves the clone's workspace; `cortex start` there
  changes no committed file;
- without it on PATH, or with another cortexd first on PATH, the configs
  name the absolute path and --workspace, start warns why and how to fix
  it, and its banner never suggests `claude mcp add cortex -- cortexd`;
  putting the directory on PATH and starting again rewrites them shared.

Prints "N passed, M failed"; exits non-zero on failure.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "cli"))
sys.path.insert(0, HERE)
from clilib import SANITIZER, Fail, check  # noqa: E402
from mcplib import probe, resolve  # noqa: E402

CORTEX = os.path.realpath(os.environ["CORTEX"])
CORTEXD = os.path.realpath(os.environ["CORTEXD"])
BINDIR = os.path.dirname(CORTEXD)
SHARED = [".mcp.json", ".claude/settings.json", ".codex/config.toml", ".cursor/mcp.json",
          ".gemini/settings.json"]
AGENTS = ["--agent", "claude", "--agent", "codex", "--agent", "cursor", "--agent", "gemini"]

passed = failed = 0


def make_env(tmp, name, path):
    home = os.path.join(tmp, name + "-home")
    os.makedirs(home, exist_ok=True)
    env = {k: v for k, v in os.environ.items()
           if k not in ("CORTEX_WORKSPACE", "CORTEX_CORTEXD", "CORTEX_CLI", "GIT_DIR",
                        "GIT_WORK_TREE", "CODEX_HOME", "GEMINI_CLI_TRUSTED_FOLDERS_PATH")}
    env.update(HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"), CORTEX_AUTHOR=name,
               GIT_CONFIG_NOSYSTEM="1", LC_ALL="C.UTF-8", PATH=path,
               GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=name + "@example.org",
               GIT_COMMITTER_NAME=name, GIT_COMMITTER_EMAIL=name + "@example.org")
    return env


def git(env, cwd, *args):
    p = subprocess.run(["git", "-c", "init.defaultBranch=main", *args], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=60)
    check(p.returncode == 0, f"git {args}: {p.stderr}")
    return p.stdout


def cx(env, cwd, *args, expect=0):
    p = subprocess.run([CORTEX, *args], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=120)
    check(not SANITIZER.search(p.stderr), f"sanitizer report:\n{p.stderr}")
    check(expect is None or p.returncode == expect,
          f"cortex {' '.join(args)} -> {p.returncode}, expected {expect}\n{p.stdout}\n{p.stderr}")
    return p


def new_repo(tmp, env, name="proj"):
    root = os.path.join(tmp, name)
    os.makedirs(root)
    git(env, root, "init", "-q")
    with open(os.path.join(root, "main.c"), "w") as f:
        f.write("int main(void) { return 0; }\n")
    git(env, root, "add", "main.c")
    git(env, root, "commit", "-qm", "first")
    return os.path.realpath(root)


def entries(root):
    """Each agent's cortex server entry, read with its format's parser."""
    out = {}
    for agent, rel in (("claude", ".mcp.json"), ("cursor", ".cursor/mcp.json"),
                       ("gemini", ".gemini/settings.json")):
        with open(os.path.join(root, rel)) as f:
            out[agent] = json.load(f)["mcpServers"]["cortex"]
    with open(os.path.join(root, ".codex/config.toml"), "rb") as f:
        out["codex"] = tomllib.load(f)["mcp_servers"]["cortex"]
    return out


def hook_programs(root):
    with open(os.path.join(root, ".claude/settings.json")) as f:
        hooks = json.load(f)["hooks"]
    return [h["command"].split()[0] for k in ("SessionStart", "Stop") for g in hooks[k]
            for h in g["hooks"]]


def shared_on_path(tmp):
    env = make_env(tmp, "ann", BINDIR + os.pathsep + "/usr/bin:/bin")
    root = new_repo(tmp, env)
    cx(env, root, "start", "--no-daemon", "--trust", "--agent", "claude", expect=2)
    rep = json.loads(cx(env, root, "start", "--no-daemon", "--json", "--agent", "claude").stdout)
    check(rep.get("shared_configs") is True, f"--json says the configs are shared: {rep}")
    ap = rep["agents"][0].get("approval", {})
    check(ap.get("path") == ".claude/settings.local.json" and ap.get("action") == "created",
          f"--json reports the approval: {rep['agents']}")
    p = cx(env, root, "start", "--no-daemon", "--agent", "claude")
    check("claude mcp add cortex -- cortexd\n" in p.stdout,
          f"the by-hand command is the shared one:\n{p.stdout}")
    p = cx(env, root, "start", "--no-daemon", *AGENTS)
    check("warning" not in p.stderr, f"no warning when cortexd is on PATH:\n{p.stderr}")
    check("commit them" in p.stdout, f"start says the configs can be committed:\n{p.stdout}")
    for agent, e in entries(root).items():
        check(e.get("command") == "cortexd" and e.get("args") == [],
              f"{agent}: the entry names plain cortexd with no arguments: {e}")
        check("cwd" not in e, f"{agent}: no machine-specific cwd: {e}")
    check(hook_programs(root) == ["'cortex'", "'cortex'"] or hook_programs(root) == ["cortex", "cortex"],
          f"the hooks run plain cortex: {hook_programs(root)}")
    for rel in SHARED:
        with open(os.path.join(root, rel)) as f:
            text = f.read()
        check(tmp not in text and os.path.realpath(tmp) not in text and BINDIR not in text,
              f"{rel} holds a path of this machine:\n{text}")
    rep = json.loads(cx(env, root, "doctor", "--json", expect=None).stdout)
    bad = [c for c in rep["checks"]
           if c["name"].split(":")[0] in ("agent", "hooks") and c["status"] != "ok"]
    check(not bad, f"doctor accepts the shared configs: {bad}")

    # commit what the README says to commit: nothing else is left over
    git(env, root, "add", *SHARED)
    git(env, root, "commit", "-qm", "agents: cortex")
    left = git(env, root, "status", "--porcelain", "--untracked-files=all")
    check(left == "", f"after committing the shared configs nothing is left untracked:\n{left}")
    check(os.path.exists(os.path.join(root, ".claude/settings.local.json")),
          "the approval is in .claude/settings.local.json")

    # a teammate clones it, with Cortex installed on their PATH
    tenv = make_env(tmp, "bob", BINDIR + os.pathsep + "/usr/bin:/bin")
    clone = os.path.join(tmp, "bob-clone")
    git(tenv, tmp, "clone", "-q", root, clone)
    clone = os.path.realpath(clone)
    for agent, e in entries(clone).items():
        ws, how = probe(e["command"], e.get("args", []), e.get("cwd", clone), tenv)
        check(ws == clone, f"{agent}: the committed entry serves the clone ({how}): {ws}")
    # and in a subdirectory, as Codex starts it when run there
    sub = os.path.join(clone, "src")
    os.makedirs(sub)
    ws, how = probe("cortexd", [], sub, tenv)
    check(ws == clone, f"started in a subdirectory it still serves the clone ({how}): {ws}")
    check(resolve("cortexd", tenv) == CORTEXD, "cortexd resolves to the build's")
    before = {rel: open(os.path.join(clone, rel), "rb").read() for rel in SHARED}
    cx(tenv, clone, "start", "--no-daemon", *AGENTS)
    after = {rel: open(os.path.join(clone, rel), "rb").read() for rel in SHARED}
    check(before == after, "start in the teammate's clone changes no committed config")
    left = git(tenv, clone, "status", "--porcelain", "--untracked-files=all")
    check(left == "" or left == "?? src/\n", f"the teammate's clone stays clean:\n{left}")
    # a teammate without Cortex on PATH: doctor names the fix
    nenv = dict(tenv, PATH="/usr/bin:/bin")
    rep = json.loads(cx(nenv, clone, "doctor", "--json", expect=None).stdout)
    c = {c["name"]: c for c in rep["checks"]}.get("agent:claude", {})
    check(c.get("status") == "fail" and "not on PATH" in c.get("detail", "")
          and BINDIR in c.get("fix", ""), f"doctor says to put cortexd on PATH: {c}")


def absolute_when_not_on_path(tmp):
    env = make_env(tmp, "ann", "/usr/bin:/bin")
    root = new_repo(tmp, env)
    p = cx(env, root, "start", "--no-daemon", *AGENTS)
    check("warning" in p.stderr and "not on PATH" in p.stderr and BINDIR in p.stderr,
          f"start warns that cortexd is not on PATH and says which directory to add:\n{p.stderr}")
    check("claude mcp add cortex -- cortexd" not in p.stdout,
          f"the banner suggests no command that would not run:\n{p.stdout}")
    check("keep them out of git" in p.stdout, f"start says not to commit them:\n{p.stdout}")
    for agent, e in entries(root).items():
        check(e.get("command") == CORTEXD and e.get("args") == ["--workspace", root],
              f"{agent}: absolute path and --workspace: {e}")
        ws, how = probe(e["command"], e["args"], e.get("cwd", root), env)
        check(ws == root, f"{agent}: the entry serves the workspace ({how}): {ws}")
    check(hook_programs(root)[0].strip("'") == CORTEX, f"hooks name {CORTEX}: {hook_programs(root)}")

    # another cortexd first on PATH: still absolute, and start says why
    other = os.path.join(tmp, "other-bin")
    os.makedirs(other)
    shutil.copy2("/bin/true", os.path.join(other, "cortexd"))
    oenv = dict(env, PATH=other + os.pathsep + BINDIR + os.pathsep + "/usr/bin:/bin")
    p = cx(oenv, root, "start", "--no-daemon", "--agent", "claude")
    check("another cortexd" in p.stderr, f"start names the other cortexd on PATH:\n{p.stderr}")
    check(entries(root)["claude"]["command"] == CORTEXD, "still the absolute path")

    # with the build's directory on PATH, start again makes them shared
    senv = dict(env, PATH=BINDIR + os.pathsep + "/usr/bin:/bin")
    p = cx(senv, root, "start", "--no-daemon", *AGENTS)
    check("updated" in p.stdout and "warning" not in p.stderr, f"rewritten shared:\n{p.stdout}{p.stderr}")
    for agent, e in entries(root).items():
        check(e.get("command") == "cortexd" and e.get("args") == [] and "cwd" not in e,
              f"{agent}: shared after PATH is fixed: {e}")


def run(fn):
    global passed, failed
    tmp = tempfile.mkdtemp(prefix="cortex-shared-")
    try:
        fn(tmp)
        passed += 1
        print(f"ok   {fn.__name__}")
    except (Fail, AssertionError, subprocess.TimeoutExpired, OSError, KeyError, ValueError) as e:
        failed += 1
        print(f"FAIL {fn.__name__}: {e}")
        traceback.print_exc()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


for t in (shared_on_path, absolute_when_not_on_path):
    run(t)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
