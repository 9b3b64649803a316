#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# The systemd unit cortex-core installs (src/core/cortex-core.service.in, as
# meson configured it) works as written: `systemd-analyze verify` accepts it
# (when systemd is on the machine; .ci/setup.sh --test installs it), and its
# ExecStart, expanded as systemd expands it (${VAR} one word, $VAR split on
# white space) with the Environment= defaults and the overrides an operator
# puts in its EnvironmentFile, starts a core that answers /v1/healthz over
# HTTPS on 127.0.0.1 and stops with exit 0 on its KillSignal within
# TimeoutStopSec. The unit runs as its own user, sandboxed, and restarts on
# failure. Every wait is bounded. Prints "N passed, N failed".
import json, os, re, shutil, signal, ssl, subprocess, sys, tempfile, time, urllib.request

CORE = os.path.abspath(os.environ["CORTEX_CORE"])
UNIT = os.environ["CORTEX_CORE_UNIT"]
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what, flush=True)


def make_cert(tmp):
    """A self-signed certificate for 127.0.0.1: (cert, key)."""
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                        "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", key, "-out", cert], capture_output=True, timeout=60)
    check(p.returncode == 0, f"openssl made a certificate: {p.stderr}")
    return cert, key


def parse(path):
    """[section] -> list of (key, value), in order (systemd's syntax, no
    line continuations in this unit)."""
    out, sec = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                sec = line.strip("[]")
                out[sec] = []
                continue
            k, _, v = line.partition("=")
            out[sec].append((k.strip(), v.strip()))
    return out


def expand(cmd, env):
    """ExecStart's words as systemd makes them: ${VAR} stays one word,
    a word that is exactly $VAR splits on white space."""
    words = []
    for w in cmd.split():
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", w)
        if m:
            words += env.get(m.group(1), "").split()
        else:
            words.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}",
                                lambda g: env.get(g.group(1), ""), w))
    return words


def main():
    unit = parse(UNIT)
    svc = dict(unit.get("Service", []))
    check(set(unit) == {"Unit", "Service", "Install"}, f"sections: {sorted(unit)}")
    check(dict(unit["Install"]).get("WantedBy") == "multi-user.target", "wanted by multi-user")
    check(svc.get("User") == "cortex-core" and svc.get("NoNewPrivileges") == "yes" and
          svc.get("ProtectSystem") == "strict" and svc.get("Restart") == "on-failure",
          "runs as its own user, sandboxed, restarted on failure")
    check("postgresql.service" in dict(unit["Unit"]).get("After", ""),
          "starts after a local PostgreSQL")
    exe = svc["ExecStart"].split()[0]
    check(os.path.basename(exe) == "cortex-core" and os.path.isabs(exe),
          f"ExecStart names the installed binary by its path: {exe}")

    analyze = shutil.which("systemd-analyze")
    if analyze:
        with tempfile.TemporaryDirectory() as d:
            # verify wants the binary to exist: the built one stands in
            copy = os.path.join(d, "cortex-core.service")
            with open(UNIT) as f, open(copy, "w") as g:
                g.write(f.read().replace(exe, CORE))
            p = subprocess.run([analyze, "verify", "--man=no", copy], capture_output=True,
                               text=True, timeout=60)
            check(p.returncode == 0 and "cortex-core.service" not in p.stderr,
                  f"systemd-analyze verify: {p.returncode} {p.stderr.strip()}")
    else:
        print("note: systemd-analyze is not installed; the unit's syntax is not verified "
              "(.ci/setup.sh --test installs systemd)", flush=True)

    env = {}
    for k, v in unit["Service"]:
        if k == "Environment":
            name, _, val = v.partition("=")
            env[name] = val
    check(env.get("PGPASSFILE", "").startswith("/etc/cortex-core/"),
          "a PostgreSQL password comes from a file, never the command line")
    check(svc.get("EnvironmentFile", "").lstrip("-") == "/etc/default/cortex-core",
          "operators' settings come from /etc/default/cortex-core")

    tmp = tempfile.mkdtemp(prefix="cx-unit-")
    proc = None
    try:
        data = os.path.join(tmp, "data")
        p = subprocess.run([CORE, "init", data, "--team", "T"], capture_output=True, text=True,
                           timeout=60)
        check(p.returncode == 0, f"init: {p.stderr}")
        cert, key = make_cert(tmp)
        ready = os.path.join(tmp, "ready")
        # what an operator would put in /etc/default/cortex-core
        env.update(CORTEX_CORE_DIR=data, CORTEX_CORE_LISTEN="127.0.0.1:0",
                   CORTEX_CORE_TLS_CERT=cert, CORTEX_CORE_TLS_KEY=key,
                   CORTEX_CORE_OPTIONS=f"--ready-file {ready} --threads 2")
        argv = expand(svc["ExecStart"], env)
        check(argv[0] == exe and argv[1:3] == ["serve", data],
              f"ExecStart expands to serve DIR: {argv[:3]}")
        argv[0] = CORE
        log = open(os.path.join(tmp, "serve.log"), "w")
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log)
        port = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            if os.path.exists(ready) and open(ready).read().strip():
                port = int(open(ready).read())
                break
            time.sleep(0.05)
        check(port is not None, "the unit's command line serves")
        if port:
            ctx = ssl.create_default_context(cafile=cert)
            with urllib.request.urlopen(f"https://127.0.0.1:{port}/v1/healthz", context=ctx,
                                        timeout=10) as r:
                body = json.load(r)
            check(r.status == 200 and body.get("status") == "ok", f"healthz over HTTPS: {body}")
        stop = float(svc.get("TimeoutStopSec", "90"))
        sig = getattr(signal, svc.get("KillSignal", "SIGTERM"))
        proc.send_signal(sig)
        try:
            rc = proc.wait(timeout=stop)
        except subprocess.TimeoutExpired:
            rc = None
        check(rc == 0, f"{svc.get('KillSignal')} stops it with 0 within {stop:g} s (got {rc})")
    finally:
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
