#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks the agent configuration that `cortex start --agent` writes.

usage: check-agent-config.py [--before DIR] ROOT CORTEXD CORTEX AGENT...

Each agent's file is loaded with the real parser of its format (json, with
duplicate keys refused, or tomllib) and its cortex entry checked:

  claude  .mcp.json              mcpServers.cortex: type "stdio", command
                                 CORTEXD, args ["--workspace", ROOT], env {}
          .claude/settings.json  exactly one cortex SessionStart hook, in a
                                 group with matcher "startup|resume|clear|compact"
                                 (or one that matches every source: none, "" or
                                 "*"), and one cortex Stop hook; each
                                 {"type": "command", "command": <sh words
                                 CORTEX hook EVENT>, "timeout": 10}
  codex   .codex/config.toml     mcp_servers.cortex: command, args
  cursor  .cursor/mcp.json       mcpServers.cortex: command, args, env {}
  gemini  .gemini/settings.json  mcpServers.cortex: command, args, cwd ROOT

With --before DIR (copies of the files as they were before, at the same
relative paths; a missing copy means the file was new), everything that was
there must still be there: the parsed documents, without the cortex entry
and the cortex hooks, must be equal, key order included.

Prints one line per agent; exits 0 when all are right, 1 when not, 2 on a
usage error. Standard library only (Python 3.11+).
"""
import argparse
import json
import math
import os
import shlex
import sys
import tomllib

FILES = {
    "claude": [".mcp.json", ".claude/settings.json"],
    "codex": [".codex/config.toml"],
    "cursor": [".cursor/mcp.json"],
    "gemini": [".gemini/settings.json"],
}
MATCHER = "startup|resume|clear|compact"
EVENTS = (("SessionStart", "session-start"), ("Stop", "stop"))


class Bad(Exception):
    pass


def reject_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise Bad(f"duplicate key {k!r}")
        out[k] = v
    return out


def load(path, missing_ok=False):
    if missing_ok and not os.path.exists(path):
        return None
    if path.endswith(".toml"):
        with open(path, "rb") as f:
            data = f.read()
        try:
            # tomllib refuses a byte order mark that TOML parsers (and toml-test) accept
            return tomllib.loads(data.decode("utf-8-sig"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise Bad(f"{path}: not valid TOML: {e}") from None
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if missing_ok and not text.strip():
        return {}
    try:
        doc = json.loads(text, object_pairs_hook=reject_duplicates)
    except (ValueError, Bad) as e:
        raise Bad(f"{path}: not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise Bad(f"{path}: the top level is not an object")
    return doc


def cortex_hook_words(command, event):
    """The program when command is `<.../cortex> hook <event>`, else None."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    if len(words) == 3 and os.path.basename(words[0]) == "cortex" and words[1:] == ["hook", event]:
        return words[0]
    return None


def expect(cond, why):
    if not cond:
        raise Bad(why)


def check_server(entry, agent, root, cortexd):
    expect(isinstance(entry, dict), f"the cortex entry is {type(entry).__name__}, not a table/object")
    expect(entry.get("command") == cortexd,
           f"command is {entry.get('command')!r}, expected {cortexd!r}")
    expect(entry.get("args") == ["--workspace", root],
           f"args are {entry.get('args')!r}, expected {['--workspace', root]!r}")
    if agent == "claude":
        expect(entry.get("type") == "stdio", f"type is {entry.get('type')!r}, expected 'stdio'")
    if agent in ("claude", "cursor"):
        expect(isinstance(entry.get("env"), dict), "env is not an object")
    if agent == "gemini":
        expect(entry.get("cwd") == root, f"cwd is {entry.get('cwd')!r}, expected {root!r}")


def check_hooks(doc, cortex):
    hooks = doc.get("hooks")
    expect(isinstance(hooks, dict), "settings.json has no hooks object")
    for key, event in EVENTS:
        groups = hooks.get(key)
        expect(isinstance(groups, list), f"hooks.{key} is not a list")
        found = []
        for g in groups:
            if not isinstance(g, dict) or not isinstance(g.get("hooks"), list):
                continue
            for h in g["hooks"]:
                if isinstance(h, dict) and isinstance(h.get("command"), str) \
                        and cortex_hook_words(h["command"], event) is not None:
                    found.append((g, h))
        expect(len(found) == 1, f"hooks.{key} has {len(found)} cortex hooks, expected exactly 1")
        g, h = found[0]
        expect(shlex.split(h["command"]) == [cortex, "hook", event],
               f"the {key} hook runs {h['command']!r}, expected {cortex!r} hook {event}")
        expect(h.get("type") == "command", f"the {key} hook's type is {h.get('type')!r}")
        expect(h.get("timeout") == 10 and type(h.get("timeout")) is int,
               f"the {key} hook's timeout is {h.get('timeout')!r}, expected 10")
        if key == "SessionStart":
            # a group cortex made has MATCHER; one it shares with other hooks
            # may keep a matcher that already runs for every source
            expect("matcher" not in g or g["matcher"] in ("", "*", MATCHER),
                   f"the SessionStart group's matcher is {g.get('matcher')!r}, expected {MATCHER!r}")


def strip_cortex(doc, rel):
    """doc without what cortex owns, and without containers left empty."""
    if rel.endswith("settings.json") and rel.startswith(".claude"):
        hooks = doc.get("hooks")
        if isinstance(hooks, dict):
            for key, event in EVENTS:
                groups = hooks.get(key)
                if not isinstance(groups, list):
                    continue
                kept = []
                for g in groups:
                    if isinstance(g, dict) and isinstance(g.get("hooks"), list):
                        hs = [h for h in g["hooks"]
                              if not (isinstance(h, dict) and isinstance(h.get("command"), str)
                                      and cortex_hook_words(h["command"], event) is not None)]
                        if len(hs) != len(g["hooks"]):
                            if not hs:
                                continue
                            g = dict(g)
                            g["hooks"] = hs
                    kept.append(g)
                if kept:
                    hooks[key] = kept
                else:
                    del hooks[key]
            if not hooks:
                del doc["hooks"]
        return doc
    key = "mcp_servers" if rel.endswith(".toml") else "mcpServers"
    servers = doc.get(key)
    if isinstance(servers, dict):
        servers.pop("cortex", None)
        if not servers:
            del doc[key]
    return doc


def same(a, b, where="$"):
    """Equal values of the same types, objects with their keys in the same order."""
    if type(a) is not type(b):
        raise Bad(f"{where}: was {a!r}, now {b!r}")
    if isinstance(a, dict):
        if list(a) != list(b):
            raise Bad(f"{where}: keys were {list(a)}, now {list(b)}")
        for k in a:
            same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        if len(a) != len(b):
            raise Bad(f"{where}: had {len(a)} items, now {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        if not math.isnan(b):
            raise Bad(f"{where}: was nan, now {b!r}")
    elif a != b:
        raise Bad(f"{where}: was {a!r}, now {b!r}")


def check_agent(agent, args):
    for rel in FILES[agent]:
        path = os.path.join(args.root, rel)
        if not os.path.exists(path):
            raise Bad(f"{rel} does not exist")
        doc = load(path)
        try:
            if rel == ".claude/settings.json":
                check_hooks(doc, args.cortex)
            elif rel.endswith(".toml"):
                servers = doc.get("mcp_servers")
                expect(isinstance(servers, dict) and "cortex" in servers, "no mcp_servers.cortex table")
                check_server(servers["cortex"], agent, args.root, args.cortexd)
            else:
                servers = doc.get("mcpServers")
                expect(isinstance(servers, dict) and "cortex" in servers, "no mcpServers.cortex entry")
                check_server(servers["cortex"], agent, args.root, args.cortexd)
            if args.before:
                old = load(os.path.join(args.before, rel), missing_ok=True)
                if old is not None:
                    same(strip_cortex(old, rel), strip_cortex(doc, rel))
        except Bad as e:
            raise Bad(f"{rel}: {e}") from None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", metavar="DIR", help="copies of the files before wiring")
    ap.add_argument("root")
    ap.add_argument("cortexd")
    ap.add_argument("cortex")
    ap.add_argument("agents", nargs="+", metavar="AGENT", choices=sorted(FILES))
    args = ap.parse_args()
    failed = False
    for agent in args.agents:
        try:
            check_agent(agent, args)
            print(f"{agent}: ok ({', '.join(FILES[agent])})")
        except (Bad, OSError, UnicodeDecodeError) as e:
            print(f"{agent}: FAIL: {e}")
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
