#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The quick start never makes the Cortex checkout a workspace (issue 11,
Why 6): .ci/quickstart.sh, copied into a fake checkout whose setup and
build steps are stubs (setup.sh, meson and ninja that do nothing) and whose
build/sidecar/cortexd is the real one, is run as the README says, and an
agent's observe goes through the cortexd it starts:

- from the checkout's root (and from a directory inside it): no .cortex/
  appears in the checkout; cortexd runs on a scratch workspace under
  $TMPDIR, which the script names on stderr and which holds the note;
- from another directory (an agent's project), or given DIR: that one is
  the workspace, as before.
Prints "N passed, N failed"."""
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", ".ci", "quickstart.sh")
CORTEXD = os.environ["CORTEXD"]
counts = {"passed": 0, "failed": 0}


def check(cond, what):
    counts["passed" if cond else "failed"] += 1
    if not cond:
        print("FAIL:", what, flush=True)


def stub(path, body="exit 0\n"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def mcp_observe(text):
    msgs = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize",
         "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                    "clientInfo": {"name": "quickstart-test", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
         "params": {"name": "observe", "arguments": {"text": text}}},
    ]
    return "".join(json.dumps(m) + "\n" for m in msgs)


def quickstart(clone, cwd, env, *args):
    """Runs the checkout's quickstart.sh in cwd with an observe on stdin:
    (process, the observe's answer or None)."""
    p = subprocess.run(["bash", os.path.join(clone, ".ci", "quickstart.sh"), *args], cwd=cwd,
                       env=env, input=mcp_observe("the quickstart heron note"),
                       capture_output=True, text=True, timeout=120)
    answer = None
    for line in p.stdout.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("id") == 2:
            answer = msg
    return p, answer


def recorded_in(ws):
    return os.path.isdir(os.path.join(ws, ".cortex"))


def tests(tmp):
    clone = os.path.join(tmp, "cortex")
    os.makedirs(os.path.join(clone, ".ci"))
    os.makedirs(os.path.join(clone, "src"))
    shutil.copy(SCRIPT, os.path.join(clone, ".ci", "quickstart.sh"))
    stub(os.path.join(clone, ".ci", "setup.sh"))
    os.makedirs(os.path.join(clone, "build", "sidecar"))
    os.symlink(os.path.realpath(CORTEXD), os.path.join(clone, "build", "sidecar", "cortexd"))
    subprocess.run(["git", "init", "-q", clone], check=True)
    bindir = os.path.join(tmp, "bin")
    stub(os.path.join(bindir, "meson"))
    stub(os.path.join(bindir, "ninja"))
    scratch = os.path.join(tmp, "scratch")
    os.makedirs(scratch)
    env = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""), TMPDIR=scratch,
               HOME=os.path.join(tmp, "home"))
    env.pop("CORTEX_WORKSPACE", None)

    for where in (clone, os.path.join(clone, "src")):
        p, ans = quickstart(clone, where, env)
        res = (ans or {}).get("result", {})
        check(ans is not None and not res.get("isError"),
              f"cortexd answered the observe (from {where}): {p.returncode} {p.stderr[-2000:]}")
        check(not recorded_in(clone) and not recorded_in(os.path.join(clone, "src")),
              f"no .cortex/ in the checkout after quickstart from {where}")
        m = re.search(r"scratch workspace (\S+)", p.stderr)
        check(m and m.group(1).startswith(scratch) and recorded_in(m.group(1)),
              f"the scratch workspace is named and holds the note: {p.stderr[-1000:]}")

    project = os.path.join(tmp, "project")
    os.makedirs(project)
    subprocess.run(["git", "init", "-q", project], check=True)
    p, ans = quickstart(clone, project, env)
    check(ans is not None and recorded_in(project) and "scratch" not in p.stderr,
          f"started in a project, the project is the workspace: {p.stderr[-1000:]}")
    other = os.path.join(tmp, "other")
    os.makedirs(other)
    p, ans = quickstart(clone, clone, env, other)
    check(ans is not None and recorded_in(other) and not recorded_in(clone),
          f"given DIR, DIR is the workspace: {p.stderr[-1000:]}")
    p, _ = quickstart(clone, clone, env, other, other)
    check(p.returncode == 2 and "usage" in p.stderr, f"two DIRs are a usage error: {p.returncode}")


def main():
    tmp = tempfile.mkdtemp(prefix="cortex-quickstart-test-")
    try:
        tests(tmp)
    except Exception as e:  # a crash is a failure
        import traceback
        traceback.print_exc()
        check(False, f"test crashed: {e!r}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{counts['passed']} passed, {counts['failed']} failed")
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
