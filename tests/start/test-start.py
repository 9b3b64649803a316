#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""`cortex start`, `cortex stop` and `cortex status`, end to end.

Each test runs the real `cortex` (and through it the real background
`cortexd`) in a fresh temporary git repository with its own $HOME, and
checks what a person relies on: start sets the workspace up and starts one
daemon, running it twice changes nothing and still leaves one daemon, each
--agent writes a file that the agent's own format parser accepts without
losing what was in it, a file that cannot be parsed is refused and left
alone, and stop leaves no process behind. Daemon logs are checked for
sanitizer reports. Prints "N passed, M failed"; exits non-zero on failure.
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
from clilib import SANITIZER, Fail, Result, check  # noqa: E402

CORTEX = os.environ["CORTEX"]
CORTEXD = os.environ["CORTEXD"]
CHECKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "check-agent-config.py")

passed = 0
failed = 0


def daemons_of(root):
    """Pids of background cortexd processes serving `root` (from /proc)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if (argv and os.path.basename(argv[0]).startswith(b"cortexd") and b"--background" in argv
                and root.encode() in argv):
            try:
                with open("/proc/%s/stat" % d) as f:
                    if f.read().split(")")[-1].split()[0] == "Z":
                        continue  # a zombie is gone already
            except OSError:
                continue
            pids.append(int(d))
    return pids


def wait_until(cond, seconds=10.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest(), os.stat(path).st_mtime_ns


class Workspace:
    def __init__(self, tmp, git=True):
        self.tmp = tmp
        self.home = os.path.join(tmp, "home")
        self.root = os.path.realpath(os.path.join(tmp, "My Repo.git-like"))
        os.makedirs(self.home)
        os.makedirs(self.root)
        env = {k: v for k, v in os.environ.items()
               if k not in ("CORTEX_WORKSPACE", "CORTEX_AUTHOR", "NO_COLOR", "GIT_DIR",
                            "GIT_WORK_TREE", "CORTEX_CORTEXD", "CORTEX_CLI")}
        env.update({"HOME": self.home, "CORTEX_AUTHOR": "tester", "GIT_CONFIG_NOSYSTEM": "1",
                    "LC_ALL": "C.UTF-8", "XDG_CONFIG_HOME": os.path.join(self.home, ".config")})
        self.env = env
        if git:
            subprocess.run(["git", "-c", "init.defaultBranch=main", "init", "-q", self.root],
                           env=env, check=True)

    def run(self, *args, expect=None, stdin=None, cwd=None):
        p = subprocess.run([CORTEX] + list(args), cwd=cwd or self.root, env=self.env,
                           input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        r = Result(list(args), p.returncode, p.stdout.decode("utf-8", "replace"),
                   p.stderr.decode("utf-8", "replace"))
        check(not SANITIZER.search(r.err), "sanitizer report:\n%s" % r)
        if expect is not None:
            check(r.rc == expect, "expected exit %d:\n%s" % (expect, r))
        return r

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def git_config(self, key):
        p = subprocess.run(["git", "config", "-f", self.path(".cortex", "config"), key],
                           env=self.env, stdout=subprocess.PIPE, text=True)
        return p.stdout.strip() if p.returncode == 0 else None

    def write(self, rel, text):
        full = self.path(rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)

    def stop_all(self):
        """Leaves no daemon behind, whatever the test did."""
        self.run("stop")
        for pid in daemons_of(self.root):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def log(self):
        try:
            with open(self.path(".cortex", "cortexd.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""


def test(fn, git=True):
    global passed, failed
    tmp = tempfile.mkdtemp(prefix="cortex-start-")
    ws = None
    try:
        ws = Workspace(tmp, git=git)
        fn(ws)
        check(not SANITIZER.search(ws.log()), "sanitizer report in the daemon log:\n%s" % ws.log())
        passed += 1
        print("ok      %s" % fn.__name__, flush=True)
    except Exception as e:
        failed += 1
        print("FAILED  %s: %s" % (fn.__name__, e if isinstance(e, Fail) else traceback.format_exc()),
              flush=True)
    finally:
        if ws:
            try:
                ws.stop_all()
            except Exception:
                pass
        shutil.rmtree(tmp, ignore_errors=True)


# ---- start ---------------------------------------------------------------------

def start_sets_up_and_runs_one_daemon(ws):
    r = ws.run("start", expect=0)
    for word in ("workspace", ".cortex/", "daemon", "started", "cortex start --agent claude",
                 "cortex doctor"):
        check(word in r.out, "start output lacks %r:\n%s" % (word, r))
    check(os.path.isdir(ws.path(".cortex")), "no .cortex/")
    with open(ws.path(".git", "info", "exclude")) as f:
        check(".cortex" in f.read(), ".cortex/ not excluded from git")
    check(ws.git_config("workspace.subcortex") == "my-repo.git-like",
          "subcortex not derived from the repository name: %r" % ws.git_config("workspace.subcortex"))
    check(ws.git_config("embed.provider") == "builtin", "embed.provider not written")
    check(ws.git_config("sync.intervalMs") == "10000", "sync.intervalMs not written")
    check(os.path.exists(ws.path(".cortex", "cortex.db")), "no store")
    pids = daemons_of(ws.root)
    check(len(pids) == 1, "expected one daemon, found %s" % pids)
    with open(ws.path(".cortex", "cortexd.pid")) as f:
        check(int(f.read()) == pids[0], "pid file does not name the daemon")
    st = ws.run("status", "--json", expect=0).json()
    check(st["daemon"]["running"] is True and st["daemon"]["pid"] == pids[0],
          "status --json daemon: %r" % st.get("daemon"))
    check("running, pid %d" % pids[0] in ws.run("status", expect=0).out, "status shows no daemon")
    # git status stays clean of .cortex
    p = subprocess.run(["git", "status", "--porcelain"], cwd=ws.root, env=ws.env,
                       stdout=subprocess.PIPE, text=True, check=True)
    check(".cortex" not in p.stdout, "git sees .cortex:\n%s" % p.stdout)
    # notes default to the workspace's subcortex
    obs = ws.run("observe", "The build needs meson 1.0", "--json", expect=0).json()
    item = ws.run("show", obs["results"][0]["id"], "--json", expect=0).json()
    item = item[0] if isinstance(item, list) else item.get("items", [item])[0]
    check(item["subcortex"] == "my-repo.git-like", "observe did not use the workspace subcortex")


def start_twice_changes_nothing(ws):
    ws.write(".mcp.json", json.dumps({"mcpServers": {"other": {"command": "other-server"}}}))
    ws.run("start", "--agent", "claude", "--agent", "codex", expect=0)
    pid = daemons_of(ws.root)
    check(len(pid) == 1, "expected one daemon after the first start: %s" % pid)
    files = [".cortex/config", ".mcp.json", ".claude/settings.json", ".codex/config.toml"]
    before = {f: digest(ws.path(f)) for f in files}
    time.sleep(0.02)
    r = ws.run("start", "--agent", "claude", "--agent", "codex", expect=0)
    check("already running" in r.out, "second start did not say the daemon runs:\n%s" % r)
    check("unchanged" in r.out, "second start did not report unchanged files:\n%s" % r)
    after = {f: digest(ws.path(f)) for f in files}
    check(before == after, "files changed on the second start: %s" % [
        f for f in files if before[f] != after[f]])
    check(daemons_of(ws.root) == pid, "daemon changed: %s -> %s" % (pid, daemons_of(ws.root)))
    j = ws.run("start", "--json", expect=0).json()
    check(j["daemon"] == {"action": "running", "pid": pid[0]}, "start --json daemon: %r" % j["daemon"])
    check(j["config_set"] == [], "start --json set config keys again: %r" % j["config_set"])


def concurrent_starts_leave_one_daemon(ws):
    procs = [subprocess.Popen([CORTEX, "start"], cwd=ws.root, env=ws.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(4)]
    outs = [p.communicate(timeout=60) for p in procs]
    for p, (o, e) in zip(procs, outs):
        check(p.returncode == 0, "a concurrent start failed (%d):\n%s%s" % (
            p.returncode, o.decode(), e.decode()))
    check(wait_until(lambda: len(daemons_of(ws.root)) == 1, 5),
          "expected one daemon after concurrent starts: %s" % daemons_of(ws.root))


def stop_leaves_nothing(ws):
    ws.run("start", expect=0)
    pid = daemons_of(ws.root)
    check(len(pid) == 1, "no daemon: %s" % pid)
    r = ws.run("stop", expect=0)
    check("Stopped the background cortexd (pid %d)" % pid[0] in r.out, "stop output:\n%s" % r)
    check(daemons_of(ws.root) == [], "a daemon is left: %s" % daemons_of(ws.root))
    check(not os.path.exists("/proc/%d" % pid[0]) or "Z" in open("/proc/%d/stat" % pid[0]).read(),
          "pid %d still exists" % pid[0])
    check(not os.path.exists(ws.path(".cortex", "cortexd.pid")), "pid file left behind")
    check("stopped" in ws.log(), "the daemon log does not say it stopped:\n%s" % ws.log())
    st = ws.run("status", "--json", expect=0).json()
    check(st["daemon"]["running"] is False, "status says running after stop")
    r = ws.run("stop", expect=0)
    check("No background cortexd was running" in r.out, "second stop:\n%s" % r)
    # start again after a stop works
    ws.run("start", expect=0)
    check(len(daemons_of(ws.root)) == 1, "no daemon after a restart")


def stale_pid_file_is_not_trusted(ws):
    ws.run("start", expect=0)
    ws.run("stop", expect=0)
    with open(ws.path(".cortex", "cortexd.pid"), "w") as f:
        f.write("%d\n" % os.getpid())  # a live process that is no daemon
    st = ws.run("status", "--json", expect=0).json()
    check(st["daemon"]["running"] is False, "a stale pid file counts as running")
    r = ws.run("stop", expect=0)
    check("No background cortexd" in r.out, "stop acted on a stale pid file:\n%s" % r)
    ws.run("start", expect=0)
    check(len(daemons_of(ws.root)) == 1, "start did not replace the stale pid file")


def killed_daemon_is_restarted(ws):
    ws.run("start", expect=0)
    pid = daemons_of(ws.root)[0]
    os.kill(pid, signal.SIGKILL)
    check(wait_until(lambda: daemons_of(ws.root) == []), "SIGKILLed daemon still there")
    r = ws.run("start", expect=0)
    check("started" in r.out, "start after a crash did not start a daemon:\n%s" % r)
    check(len(daemons_of(ws.root)) == 1, "no daemon after restart")


def no_daemon_option(ws):
    r = ws.run("start", "--no-daemon", expect=0)
    check("not started" in r.out, "--no-daemon output:\n%s" % r)
    check(daemons_of(ws.root) == [], "--no-daemon started a daemon")


def upstream_option_writes_config(ws):
    ws.run("start", "--no-daemon", "--upstream", "http://127.0.0.1:9/", expect=0)
    check(ws.git_config("upstream.url") == "http://127.0.0.1:9/", "upstream.url not in the config")
    r = ws.run("remote", expect=0)
    check("http://127.0.0.1:9" in r.out, "remote does not show the upstream:\n%s" % r)
    # a URL edited in the config is applied by the next start
    subprocess.run(["git", "config", "-f", ws.path(".cortex", "config"), "upstream.url",
                    "http://127.0.0.1:10"], check=True, env=ws.env)
    ws.run("start", "--no-daemon", expect=0)
    check("http://127.0.0.1:10" in ws.run("remote", expect=0).out, "config edit not applied")
    r = ws.run("start", "--upstream", "http://example.com", expect=2)
    check("loopback" in r.err or "https" in r.err, "plain http to a remote host accepted:\n%s" % r)


def bad_usage(ws):
    r = ws.run("start", "--agent", "vim", expect=2)
    check("claude" in r.err, "unknown agent error does not list the agents:\n%s" % r)
    check(not os.path.exists(ws.path(".cortex")), "a refused start created state")
    ws.run("start", "extra", expect=2)
    ws.run("stop", "now", expect=2)
    r = ws.run("start", "--help", expect=0)
    for word in ("--agent", "claude", "codex", "cursor", "gemini", "--upstream", "--no-daemon"):
        check(word in r.out, "start --help lacks %s" % word)


def start_outside_git(ws):
    r = ws.run("start", "--no-daemon", expect=0)
    check("not in git" in r.out, "start outside git does not say so:\n%s" % r)


# ---- agents ------------------------------------------------------------------------

EXISTING = {
    ".mcp.json": json.dumps({"mcpServers": {"github": {"type": "stdio", "command": "gh-mcp",
                                                       "args": ["--x"], "env": {"A": "1"}}},
                             "extra": [1, 2, {"deep": True}]}, indent=4),
    ".claude/settings.json": json.dumps({
        "permissions": {"allow": ["Bash(ls:*)"]},
        "hooks": {"SessionStart": [{"matcher": "startup",
                                    "hooks": [{"type": "command", "command": "echo hi"}]}],
                  "PreToolUse": [{"matcher": "Bash",
                                  "hooks": [{"type": "command", "command": "./check.sh"}]}]}}),
    ".codex/config.toml": (
        '# my codex settings\nmodel = "o4-mini"\napproval_policy = "on-request"\n\n'
        '[mcp_servers.docs]\ncommand = "docs-mcp"\nargs = ["--port", "0"]\n\n'
        '[mcp_servers.docs.env]\nTOKEN_ENV = "X"\n\n[profiles.fast]\nmodel = "gpt-5"\n'),
    ".cursor/mcp.json": json.dumps({"mcpServers": {"browser": {"command": "npx",
                                                               "args": ["-y", "browser-mcp"]}}}),
    ".gemini/settings.json": json.dumps({"theme": "Dracula", "mcpServers": {
        "k8s": {"command": "k8s-mcp", "timeout": 30000}}, "contextFileName": "GEMINI.md"}),
}


def run_checker(ws, before, agents):
    args = [sys.executable, CHECKER, ws.root, CORTEXD_REAL, CORTEX_REAL] + agents
    if before:
        args[2:2] = ["--before", before]
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    check(p.returncode == 0, "agent config check failed:\n%s" % p.stdout)


def each_agent_into_new_files(ws):
    r = ws.run("start", "--no-daemon", "--agent", "claude", "--agent", "codex", "--agent",
               "cursor", "--agent", "gemini", expect=0)
    for f in (".mcp.json", ".claude/settings.json", ".codex/config.toml", ".cursor/mcp.json",
              ".gemini/settings.json"):
        check(f in r.out and os.path.exists(ws.path(f)), "%s not written:\n%s" % (f, r))
    run_checker(ws, None, ["claude", "codex", "cursor", "gemini"])
    check(ws.git_config("workspace.agents") == "claude,codex,cursor,gemini",
          "workspace.agents: %r" % ws.git_config("workspace.agents"))


def each_agent_keeps_existing_content(ws):
    before = os.path.join(ws.tmp, "before")
    for rel, text in EXISTING.items():
        ws.write(rel, text)
        os.makedirs(os.path.dirname(os.path.join(before, rel)), exist_ok=True)
        shutil.copy(ws.path(rel), os.path.join(before, rel))
    for agent in ("claude", "codex", "cursor", "gemini"):
        r = ws.run("start", "--no-daemon", "--agent", agent, expect=0)
        check("updated" in r.out, "%s: not reported as updated:\n%s" % (agent, r))
    run_checker(ws, before, ["claude", "codex", "cursor", "gemini"])
    with open(ws.path(".codex", "config.toml")) as f:
        toml = f.read()
    check(toml.startswith(EXISTING[".codex/config.toml"].rstrip("\n")),
          "codex config: existing bytes not kept:\n%s" % toml)


def unparseable_files_are_refused(ws):
    bad = {"claude": (".mcp.json", '{"mcpServers": {"a": 1,}'),
           "codex": (".codex/config.toml", '[mcp_servers.docs]\ncommand = "x\n'),
           "cursor": (".cursor/mcp.json", "not json at all"),
           "gemini": (".gemini/settings.json", '{"mcpServers": []}')}
    for agent, (rel, text) in bad.items():
        ws.write(rel, text)
        before = digest(ws.path(rel))
        r = ws.run("start", "--no-daemon", "--agent", agent, expect=1)
        check(rel in r.err and ("parse" in r.err or "must be" in r.err or "object" in r.err),
              "%s: unclear refusal:\n%s" % (agent, r))
        check("nothing was changed" in r.err, "%s: refusal does not say nothing changed:\n%s" % (agent, r))
        check(digest(ws.path(rel)) == before, "%s: refused file was changed" % agent)
    check(ws.git_config("workspace.agents") is None, "refused agents were recorded")


def main():
    global CORTEXD_REAL, CORTEX_REAL
    CORTEXD_REAL = os.path.realpath(CORTEXD)
    CORTEX_REAL = os.path.realpath(CORTEX)
    for fn in (start_sets_up_and_runs_one_daemon, start_twice_changes_nothing,
               concurrent_starts_leave_one_daemon, stop_leaves_nothing,
               stale_pid_file_is_not_trusted, killed_daemon_is_restarted, no_daemon_option,
               upstream_option_writes_config, bad_usage, each_agent_into_new_files,
               each_agent_keeps_existing_content, unparseable_files_are_refused):
        test(fn)
    test(start_outside_git, git=False)
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
