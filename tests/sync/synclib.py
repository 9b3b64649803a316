# SPDX-License-Identifier: Apache-2.0
"""What the sync tests share: counting checks, bounded waits, a cortex-core
started on 127.0.0.1 (plain or TLS), a fake core speaking the sync
protocol over TLS from a python handler, and the teardown that kills every
process a test started and prints "N passed, N failed". Standard library
only."""
import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time

CORTEX, CORE = os.environ["CORTEX"], os.environ["CORTEX_CORE"]
procs = []
counts = {"passed": 0, "failed": 0}


def check(cond, what):
    if cond:
        counts["passed"] += 1
    else:
        counts["failed"] += 1
        print("FAIL:", what, flush=True)
    return cond


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_until(fn, timeout, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return fn()


def cli(ws, env, *args, stdin=None, timeout=120):
    return subprocess.run([CORTEX, "--workspace", ws, *args], input=stdin, capture_output=True,
                          text=True, env=env, timeout=timeout)


class Core:
    """cortex-core serving `data` on a free loopback port; tls = (cert, key);
    extra: more `serve` options."""

    def __init__(self, tmp, data, tls=None, extra=()):
        self.tmp, self.data, self.tls, self.port, self.proc = tmp, data, tls, free_port(), None
        self.extra = list(extra)

    def start(self):
        ready = os.path.join(self.tmp, f"ready-{self.port}-{time.monotonic_ns()}")
        args = [CORE, "serve", self.data, "--listen", f"127.0.0.1:{self.port}", "--ready-file",
                ready, "--rate-limit", "10000", "--burst", "10000"]
        if self.tls:
            args += ["--tls-cert", self.tls[0], "--tls-key", self.tls[1]]
        args += self.extra
        log = open(os.path.join(self.tmp, "core.log"), "a")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log)
        procs.append(self.proc)
        if not wait_until(lambda: os.path.exists(ready) and open(ready).read().strip(), 30):
            raise RuntimeError("cortex-core did not start")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def url(self):
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"


class Agent:
    """cortexd over stdio, raw JSON-RPC."""

    def __init__(self, ws, env):
        self.proc = subprocess.Popen([os.environ["CORTEXD"], "--workspace", ws], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=open(ws + ".cortexd.log", "a"),
                                     env=env)
        procs.append(self.proc)
        self.lines, self.cv, self.next_id = [], threading.Condition(), 1
        threading.Thread(target=self._read, daemon=True).start()
        self.req("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                "clientInfo": {"name": "sync-test", "version": "1"}})
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def _read(self):
        for line in self.proc.stdout:
            with self.cv:
                self.lines.append(json.loads(line))
                self.cv.notify_all()

    def send(self, m):
        self.proc.stdin.write((json.dumps(m) + "\n").encode())
        self.proc.stdin.flush()

    def req(self, method, params, timeout=30):
        rid = self.next_id
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        end = time.monotonic() + timeout
        with self.cv:
            while True:
                for m in self.lines:
                    if m.get("id") == rid:
                        return m
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{method} not answered in {timeout} s")
                self.cv.wait(left)

    def call(self, tool, args, timeout=30):
        r = self.req("tools/call", {"name": tool, "arguments": args}, timeout)
        res = r.get("result", {})
        return res.get("structuredContent"), res.get("isError", False)

    def close(self, timeout=10):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None



def make_cert(tmp):
    """A self-signed certificate for 127.0.0.1 and localhost: (cert, key)."""
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                        "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                        "-keyout", key, "-out", cert], capture_output=True, timeout=60)
    check(p.returncode == 0, "openssl made a certificate")
    return cert, key


class FakeCore(http.server.BaseHTTPRequestHandler):
    """The sync protocol as a test wants it: info and healthz answer as an
    agent key of team T; pull(since) gives the page (default: nothing);
    push(req) gives (status, body) (default: every op applied); blobs are
    never missing. Subclasses override pull and push."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def pull(self, since):
        return {"changes": [], "next": since, "more": False}

    def push(self, req):
        return 200, {"results": [{"op_id": o["op_id"], "status": "applied", "seq": 1000 + i}
                                 for i, o in enumerate(req.get("ops", []))]}

    def do_GET(self):
        import urllib.parse
        u = urllib.parse.urlparse(self.path)
        if u.path == "/v1/info":
            return self.answer(200, {"team": "T", "role": "agent", "principal": "agent"})
        if u.path == "/v1/healthz":
            return self.answer(200, {"ok": True})
        if u.path == "/v1/sync/pull":
            since = int(urllib.parse.parse_qs(u.query).get("since", ["0"])[0])
            return self.answer(200, self.pull(since))
        self.answer(404, {"error": "not found"})

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        req = json.loads(self.rfile.read(n) or b"{}")
        if self.path == "/v1/sync/push":
            return self.answer(*self.push(req))
        if self.path == "/v1/blobs/missing":
            return self.answer(200, {"missing": []})
        self.answer(404, {"error": "not found"})


def serve_fake_core(tmp, handler):
    """Serves handler (a FakeCore) over TLS on 127.0.0.1 in a thread:
    (server, url, cert). Stop it with server.shutdown()."""
    cert, key = make_cert(tmp)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"https://127.0.0.1:{srv.server_address[1]}", cert


def fake_workspace(tmp, name, url, cert, notes=0, **env_extra):
    """A workspace tmp/name pointed at a (fake) core at url with the CA
    cert, logged in with a fake agent key, holding `notes` observations:
    (ws, env). Each workspace gets its own home (credentials)."""
    env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(tmp, "home-" + name), **env_extra)
    env.pop("CORTEX_WORKSPACE", None)
    ws = os.path.join(tmp, name)
    os.makedirs(ws)
    p = cli(ws, env, "remote", "set", url, "--ca-file", cert)
    check(p.returncode == 0, f"{name}: remote set: {p.stderr}")
    p = cli(ws, env, "login", stdin="cx_fake_agent_key_0123456789\n")
    check(p.returncode == 0, f"{name}: login: {p.returncode} {p.stderr}")
    for i in range(notes):
        p = cli(ws, env, "observe", f"note {i} of workspace {name}")
        check(p.returncode == 0, f"{name}: observe {i}: {p.stderr}")
    return ws, env


def sync_state(ws, env):
    """The "sync" object of `cortex status --json` ({} when unreadable)."""
    st = cli(ws, env, "--json", "status")
    check(st.returncode == 0, f"status: {st.stderr}")
    try:
        return json.loads(st.stdout).get("sync", {})
    except ValueError:
        return {}


def finish(tmp):
    """Kills what the test started, shows the logs when something failed,
    removes tmp, prints the summary line and exits."""
    for p in procs:
        if p.poll() is None:
            p.kill()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                pass
    if counts["failed"]:
        for root, _, files in os.walk(tmp):
            for f in files:
                if f.endswith(".log"):
                    print(f"--- {f}\n" + open(os.path.join(root, f), errors="replace").read()[-3000:])
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"{counts['passed']} passed, {counts['failed']} failed")
    sys.exit(1 if counts["failed"] else 0)


def run(prefix, tests):
    """Runs tests(tmp) in a fresh temp dir; a crash counts as a failure."""
    import tempfile
    import traceback
    tmp = tempfile.mkdtemp(prefix=prefix)
    try:
        tests(tmp)
    except Exception as e:  # a crash is a failure, with its logs
        traceback.print_exc()
        check(False, f"test crashed: {e!r}")
    finally:
        finish(tmp)
