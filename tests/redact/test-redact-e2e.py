#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""No secret gets through: every write path, end to end, over real HTTPS.

A workspace started with `cortex start --upstream` (its background cortexd
syncs to a cortex-core on 127.0.0.1 with a certificate made here) receives
every positive sample of fixtures/redact/cases.json through MCP observe
(batches), draft, comment and publish (text content and a workspace file),
and through the CLI (observe, draft, a review reason) and a private note.
The tool results must name the rule that fired and never echo the secret.
After the outbox has drained, no secret may be found, raw or JSON-escaped,
in any file of the workspace's .cortex/ (database, WAL, blobs, logs), the
core's data directory or any log. Every negative sample must be stored
exactly as given. Binary credential files are refused; other binaries are
stored. `cortex scan` reports rule ids and exit 1 for positives, exit 0 for
negatives, and never prints a secret. Prints "N passed, N failed".
"""
import json
import os
import re
import subprocess
import sys

from synclib import CORE, Agent, Core, check, cli, make_cert, run, wait_until  # noqa: E402

FIXTURES = os.environ["REDACT_FIXTURES"]


def needles(secret):
    """What must not appear: the secret raw and JSON-escaped, and each long
    line of key material in a multi-line secret (a PEM body; its BEGIN/END
    armour and header lines are no secret, and negatives quote them)."""
    out = {secret, json.dumps(secret)[1:-1]}
    if "\n" in secret:  # the key material, not the armour or header lines
        out |= {ln.strip() for ln in secret.splitlines() if len(ln.strip()) >= 16
                and "-----" not in ln and not re.match(r"[A-Za-z-]+: ", ln)}
    return {n.encode() for n in out if n}


def files_under(*dirs):
    for d in dirs:
        for root, _, fs in os.walk(d):
            for f in fs:
                yield os.path.join(root, f)


def tests(tmp):
    with open(FIXTURES) as f:
        cases = json.load(f)["rules"]
    positives = [(rule, p["text"], p["secret"]) for rule, c in cases.items() for p in c["positive"]]
    negatives = [(rule, n) for rule, c in cases.items() for n in c["negative"]]
    check(len(cases) >= 40 and all(len(c["positive"]) >= 3 and len(c["negative"]) >= 2
                                   for c in cases.values()),
          "fixtures: at least 40 rules with 3 positives and 2 negatives each")

    # the core, over HTTPS
    data = os.path.join(tmp, "core")
    subprocess.run([CORE, "init", data], check=True, capture_output=True, timeout=60)
    key = subprocess.run([CORE, "keys", "create", data, "--team", "T", "--role", "reviewer",
                          "--name", "rev"], check=True, capture_output=True, text=True,
                         timeout=60).stdout.strip()
    cert, tlskey = make_cert(tmp)
    core = Core(tmp, data, (cert, tlskey))
    core.start()

    ws = os.path.join(tmp, "repo")
    env = dict(os.environ, CORTEX_SYNC_INTERVAL_MS="300", CORTEX_LOG_LEVEL="debug",
               XDG_CONFIG_HOME=os.path.join(tmp, "home"), HOME=os.path.join(tmp, "home"),
               CORTEX_AUTHOR="tester")
    env.pop("CORTEX_WORKSPACE", None)
    subprocess.run(["git", "init", "-q", ws], check=True, env=env)
    p = cli(ws, env, "start", "--upstream", core.url(), "--ca-file", cert)
    check(p.returncode == 0, f"cortex start: {p.returncode} {p.stderr}")
    p = cli(ws, env, "login", stdin=key + "\n")
    check(p.returncode == 0, f"cortex login: {p.returncode} {p.stderr}")

    agent = Agent(ws, env)
    leaks = []

    def no_echo(what, result):
        text = json.dumps(result)
        for _, _, secret in positives:
            if secret in text or json.dumps(secret)[1:-1] in text:
                leaks.append(f"{what} echoed a secret")
                return

    # MCP observe, in batches; each result names the fixture's rule
    wrong = []
    for i in range(0, len(positives), 200):
        chunk = positives[i:i + 200]
        res, err = agent.call("observe", {"observations": [
            {"text": f"sample {i + k}: {t}", "subcortex": f"pos-{(i + k) % 50}"}
            for k, (_, t, _) in enumerate(chunk)]})
        check(not err and res, f"observe batch {i}: {res}")
        no_echo("observe", res)
        for (rule, _, _), r in zip(chunk, (res or {}).get("results", [])):
            rd = r.get("redacted") or {}
            if rd.get("count", 0) < 1 or rule not in rd.get("rules", []):
                wrong.append((rule, rd))
        check((res or {}).get("redacted", {}).get("count", 0) >= len(chunk),
              f"observe batch {i} reports the total redacted")
    check(not wrong, f"every positive is redacted by its own rule (wrong: {wrong[:5]})")

    # draft, comment, publish (content and file), private note
    body = "\n\n".join(t for _, t, _ in positives[:150])
    res, err = agent.call("draft", {"title": "Setup notes", "body": body[:60000]})
    check(not err and res.get("redacted", {}).get("count", 0) > 0, f"draft redacted: {res}")
    no_echo("draft", res)
    draft_id = res.get("id") if res else None
    res, err = agent.call("comment", {"target_id": draft_id, "body": positives[-1][1]})
    check(not err and res.get("redacted"), f"comment redacted: {res}")
    for i in range(0, len(positives), 100):
        content = "\n".join(t for _, t, _ in positives[i:i + 100])
        res, err = agent.call("publish", {"name": f"env-dump-{i}", "content": content})
        check(not err and res.get("redacted", {}).get("count", 0) > 0, f"publish redacted: {res}")
        no_echo("publish", res)
    with open(os.path.join(ws, "deploy.log"), "w") as f:
        f.write("\n".join(t for _, t, _ in positives[100:200]))
    res, err = agent.call("publish", {"name": "deploy-log", "path": "deploy.log"})
    check(not err and res.get("redacted"), f"publish of a file redacted: {res}")
    res, err = agent.call("observe", {"text": "private: " + positives[0][1],
                                      "visibility": "private"})
    check(not err and res["results"][0].get("redacted"), f"a private note is redacted too: {res}")

    # binary files: credential files refused, others stored
    with open(os.path.join(ws, "release.jks"), "wb") as f:
        f.write(b"\xfe\xed\xfe\xed\x00\x00\x00\x02" + os.urandom(200))
    res, err = agent.call("publish", {"name": "keystore", "path": "release.jks"})
    check(err, f"a Java keystore is refused: {res}")
    with open(os.path.join(ws, "logo.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    res, err = agent.call("publish", {"name": "logo", "path": "logo.png"})
    check(not err and res.get("size") == 272, f"a binary that is no credential is stored: {res}")

    # CLI paths
    for rule, text, _ in positives[::7]:
        p = cli(ws, env, "observe", "--json", f"cli {rule}: {text}")
        ok = p.returncode == 0 and rule in json.dumps(json.loads(p.stdout).get("redacted", {}))
        if not ok:
            wrong.append(("cli", rule, p.stdout[:200], p.stderr[:200]))
        for _, _, secret in positives:
            if secret in p.stdout or secret in p.stderr:
                leaks.append("cli observe echoed a secret")
    check(not wrong, f"CLI observe names the rule: {wrong[-3:]}")
    p = cli(ws, env, "draft", "--title", "CLI draft", positives[3][1])
    check(p.returncode == 0, f"cli draft: {p.stderr}")

    # negatives: stored exactly as given
    changed = []
    for i in range(0, len(negatives), 200):
        chunk = negatives[i:i + 200]
        res, err = agent.call("observe", {"observations": [
            {"text": t, "subcortex": f"neg-{i + k}"} for k, (_, t) in enumerate(chunk)]})
        check(not err, f"observe negatives {i}: {res}")
        for (rule, text), r in zip(chunk, res.get("results", [])):
            if r.get("redacted"):
                changed.append((rule, text[:60]))
                continue
            got, _ = agent.call("get", {"ids": [r["id"]], "max_tokens": 50000})
            body = ((got or {}).get("items") or [{}])[0].get("body")
            if body != text and not r.get("repeat"):
                changed.append((rule, "stored differently"))
    check(not changed, f"no negative is redacted ({len(changed)} were: {changed[:5]})")

    # sync: the background cortexd drains the outbox
    def drained():
        p = cli(ws, env, "status", "--json")
        try:
            return json.loads(p.stdout)["sync"].get("backlog") == 0
        except (ValueError, KeyError):
            return False
    check(wait_until(drained, 120), "the background daemon pushed everything to the core")
    # a review decision with a secret in its reason, at the core (the draft is there now)
    p = cli(ws, env, "review", "request-changes", draft_id, "--reason", "rotate " + positives[5][1])
    check(p.returncode == 0, f"review with a secret in the reason: {p.returncode} {p.stderr}")
    agent.close()
    p = cli(ws, env, "stop")
    check(p.returncode == 0, f"cortex stop: {p.stderr}")
    core.stop()

    # nothing anywhere
    found = []
    core_has_marker = False
    logs = [os.path.join(tmp, f) for f in os.listdir(tmp) if f.endswith(".log")]
    for path in list(files_under(os.path.join(ws, ".cortex"), data)) + logs:
        with open(path, "rb") as f:
            blob = f.read()
        if path.startswith(data) and b"[REDACTED:" in blob:
            core_has_marker = True
        for rule, _, secret in positives:
            for n in needles(secret):
                if n in blob:
                    found.append((os.path.relpath(path, tmp), rule))
                    break
    check(core_has_marker, "redacted text reached the core's database")
    check(not found, f"no secret stored anywhere ({len(found)} found: {found[:8]})")
    check(not leaks, f"no result echoed a secret: {leaks[:3]}")

    # cortex scan
    pos_file, neg_file = os.path.join(tmp, "pos.txt"), os.path.join(tmp, "neg.txt")
    with open(pos_file, "w") as f:
        f.write("\n".join(t for _, t, _ in positives))
    with open(neg_file, "w") as f:
        f.write("\n".join(t for _, t in negatives))
    p = cli(ws, env, "scan", pos_file)
    check(p.returncode == 1, f"scan of positives exits 1: {p.returncode}")
    rules_seen = {ln.split(": ")[1].split(" ")[0] for ln in p.stdout.splitlines() if ln.startswith(pos_file + ":")}
    check(set(cases) <= rules_seen, f"scan names every rule (missing {sorted(set(cases) - rules_seen)[:5]})")
    check(not any(s in p.stdout or s in p.stderr for _, _, s in positives), "scan never prints a secret")
    p = cli(ws, env, "scan", neg_file)
    check(p.returncode == 0, f"scan of negatives exits 0: {p.returncode} {p.stdout[:500]}")
    p = cli(ws, env, "scan", "--json", pos_file, neg_file)
    j = json.loads(p.stdout) if p.stdout else {}
    check(p.returncode == 1 and j.get("total", 0) >= len(positives), f"scan --json: {p.stdout[:300]}")
    p = cli(ws, env, "scan", os.path.join(ws, "release.jks"))
    check(p.returncode == 1 and "key store" in p.stdout.lower(), f"scan flags a keystore: {p.stdout}")
    p = cli(ws, env, "scan", os.path.join(tmp, "missing"))
    check(p.returncode == 3, "scan of a missing file exits 3")


run("cortex-redact-", tests)
