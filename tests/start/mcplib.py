# SPDX-License-Identifier: Apache-2.0
"""What the start and agents tests share: an agent's MCP server entry run
the way an agent runs it (the command looked up on the PATH the agent has,
its arguments, its cwd: the project directory unless the entry names one),
then initialize and the `status` tool over stdio, bounded in time.
Standard library only."""
import json
import os
import shutil
import subprocess


def resolve(command, env):
    """The program an agent would start for `command`: as given when it has
    a slash, else the first executable of that name on env's PATH (None
    when there is none)."""
    if "/" in command:
        return command
    return shutil.which(command, path=env.get("PATH", ""))


def probe(command, args, cwd, env, timeout=30):
    """Starts the server as an agent would and asks it which workspace it
    serves. Returns (workspace root or None, a description for messages)."""
    prog = resolve(command, env)
    if prog is None:
        return None, f"`{command}` is not on PATH {env.get('PATH')!r}"
    msgs = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize",
         "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                    "clientInfo": {"name": "cortex-tests", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
         "params": {"name": "status", "arguments": {}}},
    ]
    text = "".join(json.dumps(m) + "\n" for m in msgs)
    try:
        p = subprocess.run([prog, *args], cwd=cwd, env=env, input=text, capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"{prog} {args} did not answer within {timeout} s"
    answers = {}
    for line in p.stdout.splitlines():
        try:
            m = json.loads(line)
        except ValueError:
            continue
        if isinstance(m, dict) and "id" in m:
            answers[m["id"]] = m
    init = answers.get(1, {}).get("result", {})
    if init.get("serverInfo", {}).get("name") != "cortexd":
        return None, f"no initialize answer from {prog} {args} in {cwd}: {p.stdout[:500]!r} {p.stderr[-800:]!r}"
    try:
        status = json.loads(answers[2]["result"]["content"][0]["text"])
    except (KeyError, IndexError, ValueError, TypeError):
        return None, f"no status answer: {p.stdout[-800:]!r} {p.stderr[-800:]!r}"
    return status.get("workspace"), f"{prog} {args} in {cwd}"
