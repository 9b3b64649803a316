#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# cortex-core end to end: init and keys CLI contracts, then a real server on
# 127.0.0.1 (plain HTTP, and once HTTPS with a certificate made here),
# driven over HTTP; every JSON response is validated against
# protocol/sync/schemas. Servers are always killed at the end; every wait is
# bounded. Prints "N passed, N failed"; exits non-zero on any failure.
import base64, hashlib, http.client, json, os, re, secrets, shutil, signal, socket, sqlite3, ssl
import string, subprocess, sys, tempfile, time

CORE = os.environ["CORTEX_CORE"]
SCHEMAS = os.environ["SCHEMAS"]
passed = failed = 0
procs = []


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what, flush=True)


# --- a small JSON Schema (2020-12) validator for the subset the schemas use
_cache = {}


def load_schema(name):
    if name not in _cache:
        with open(os.path.join(SCHEMAS, name)) as f:
            _cache[name] = json.load(f)
    return _cache[name]


def resolve(ref, base):
    file, _, frag = ref.partition("#")
    doc = load_schema(file) if file else load_schema(base)
    base = file or base
    node = doc
    for part in [p for p in frag.split("/") if p]:
        node = node[part]
    return node, base


TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def type_ok(v, t):
    if t == "integer":
        return isinstance(v, int) and not isinstance(v, bool)
    if t == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    return isinstance(v, TYPES[t])


def validate(v, s, base, path="$"):
    errs = []
    if "$ref" in s:
        sub, b = resolve(s["$ref"], base)
        errs += validate(v, sub, b, path)
    if "type" in s:
        ts = s["type"] if isinstance(s["type"], list) else [s["type"]]
        if not any(type_ok(v, t) for t in ts):
            return errs + [f"{path}: {v!r:.60} is not {ts}"]
    if "const" in s and v != s["const"]:
        errs.append(f"{path}: {v!r:.60} != const {s['const']!r}")
    if "enum" in s and v not in s["enum"]:
        errs.append(f"{path}: {v!r:.60} not in {s['enum']}")
    if isinstance(v, str):
        if "pattern" in s and not re.search(s["pattern"], v):
            errs.append(f"{path}: {v!r:.60} does not match {s['pattern']}")
        if len(v) < s.get("minLength", 0) or len(v) > s.get("maxLength", 1 << 62):
            errs.append(f"{path}: bad length")
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if "minimum" in s and v < s["minimum"]:
            errs.append(f"{path}: {v} < {s['minimum']}")
        if "maximum" in s and v > s["maximum"]:
            errs.append(f"{path}: {v} > {s['maximum']}")
    if isinstance(v, dict):
        for k in s.get("required", []):
            if k not in v:
                errs.append(f"{path}: missing {k}")
        props = s.get("properties", {})
        for k, sub in props.items():
            if k in v:
                errs += validate(v[k], sub, base, f"{path}.{k}")
        if s.get("additionalProperties") is False:
            for k in v:
                if k not in props:
                    errs.append(f"{path}: unexpected member {k}")
    if isinstance(v, list):
        if len(v) > s.get("maxItems", 1 << 62):
            errs.append(f"{path}: too many items")
        if "items" in s:
            for i, x in enumerate(v):
                errs += validate(x, s["items"], base, f"{path}[{i}]")
    if "oneOf" in s:
        n = sum(1 for sub in s["oneOf"] if not validate(v, sub, base, path))
        if n != 1:
            errs.append(f"{path}: matches {n} of oneOf")
    return errs


def conforms(body, schema, what):
    errs = validate(body, load_schema(schema), schema)
    check(not errs, f"{what}: response does not match {schema}: {errs[:3]}")


# --- helpers
def run(*args, ok=True):
    p = subprocess.run([CORE, *args], capture_output=True, text=True, timeout=60)
    if ok and p.returncode != 0:
        print(f"command failed: {args}: {p.stderr}", flush=True)
    return p


def start(datadir, *extra, scheme="http"):
    ready = os.path.join(os.path.dirname(datadir), f"ready-{len(procs)}")
    log = open(os.path.join(os.path.dirname(datadir), f"serve-{len(procs)}.log"), "w")
    p = subprocess.Popen([CORE, "serve", datadir, "--listen", "127.0.0.1:0", "--ready-file", ready,
                          *extra], stdout=subprocess.DEVNULL, stderr=log)
    procs.append(p)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if os.path.exists(ready):
            with open(ready) as f:
                txt = f.read().strip()
            if txt:
                return p, int(txt)
        if p.poll() is not None:
            raise RuntimeError(f"cortex-core serve exited with {p.returncode}")
        time.sleep(0.05)
    raise RuntimeError("cortex-core serve did not become ready in 30 s")


class Client:
    def __init__(self, port, key=None, ctx=None):
        self.port, self.key, self.ctx = port, key, ctx

    def req(self, method, path, body=None, key="default", raw=None, headers=None):
        if self.ctx:
            c = http.client.HTTPSConnection("localhost", self.port, timeout=30, context=self.ctx)
        else:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = dict(headers or {})
        k = self.key if key == "default" else key
        if k:
            h["Authorization"] = "Bearer " + k
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if body is not None:
            h["Content-Type"] = "application/json"
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        payload = r.read()
        c.close()
        ctype = r.getheader("Content-Type", "")
        js = json.loads(payload) if ctype.startswith("application/json") else payload
        return r.status, js, r


ULID_CHARS = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_n = [0]


def ulid():
    _n[0] += 1
    t = int(time.time() * 1000)
    s = ""
    for _ in range(10):
        s = ULID_CHARS[t % 32] + s
        t //= 32
    r = _n[0]
    tail = ""
    for _ in range(16):
        tail = ULID_CHARS[r % 32] + tail
        r //= 32
    return s + tail


def item(kind="observation", status="recorded", title="t", **kw):
    it = {"id": ulid(), "kind": kind, "status": status, "title": title, "body": "b",
          "tags": ["x"], "author": "ann", "created_at": "2026-01-01T00:00:00Z",
          "updated_at": "2026-01-01T00:00:00Z", "visibility": "shared"}
    it.update(kw)
    return it


def main():
    tmp = tempfile.mkdtemp(prefix="cortex-core-test-")
    try:
        tests(tmp)
        pg_tests(tmp)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            check(p.returncode in (0, -signal.SIGTERM, -signal.SIGKILL),
                  f"server exited cleanly (rc {p.returncode})")
        if failed:
            for f in sorted(os.listdir(tmp)):
                if f.startswith("serve-"):
                    print(f"--- {f}\n" + open(os.path.join(tmp, f)).read()[-3000:])
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


def tests(tmp):
    data = os.path.join(tmp, "data")
    # --- the command line itself: version and usage
    for flag in ("--version", "-V"):
        p = run(flag)
        check(p.returncode == 0 and p.stdout == "cortex-core 0.1.0\n",
              f"cortex-core {flag} prints the version and exits 0: {p.returncode} {p.stdout!r}")
    p = run("--help")
    check(p.returncode == 0 and "init DIR [--team TEAM] [--name NAME]" in p.stdout
          and "--version" in p.stdout and "migrate DIR --database URL" in p.stdout
          and p.stderr == "",
          f"--help prints the usage on stdout (init's --team/--name, migrate, --version): "
          f"{p.stdout!r} {p.stderr!r}")
    p = run("frobnicate", ok=False)
    check(p.returncode == 2 and "init DIR [--team TEAM] [--name NAME]" in p.stderr,
          f"an unknown command prints the usage and exits 2: {p.returncode}")
    # --- init and keys: output contracts
    p = run("init", data)
    admin = p.stdout.strip()
    check(p.returncode == 0 and re.fullmatch(r"cxk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}\n", p.stdout),
          f"init prints exactly one key line: {p.stdout!r}")
    check(os.stat(data).st_mode & 0o777 == 0o700, "data dir is 0700")
    check(os.stat(os.path.join(data, "secret")).st_mode & 0o777 == 0o600, "secret is 0600")
    check(run("init", data, ok=False).returncode != 0, "init refuses an existing data dir")
    keys = {}
    for team, role, name in [("A", "agent", "a-agent"), ("A", "reviewer", "a-rev"),
                             ("B", "agent", "b-agent"), ("A", "agent", "a-old")]:
        p = run("keys", "create", data, "--team", team, "--role", role, "--name", name)
        check(p.returncode == 0 and re.fullmatch(r"cxk_[0-9a-f]{16}_\S+\n", p.stdout),
              f"keys create prints only the key: {p.stdout!r}")
        keys[name] = p.stdout.strip()
    check(run("keys", "create", data, "--team", "A", "--role", "god", "--name", "x",
              ok=False).returncode == 2, "keys create refuses an unknown role")
    p = run("keys", "list", data)
    check(p.returncode == 0 and "a-rev" in p.stdout and admin not in p.stdout
          and keys["a-agent"] not in p.stdout, "keys list shows names, never keys")
    old_id = keys["a-old"][4:20]
    check(run("keys", "revoke", data, old_id).returncode == 0, "keys revoke")
    check(run("keys", "revoke", data, old_id, ok=False).returncode != 0, "revoking twice fails")
    with sqlite3.connect(os.path.join(data, "core.db")) as db:
        stored = [r[0] for r in db.execute("SELECT hash FROM keys")]
    check(all(keys["a-agent"].encode() not in h for h in stored), "keys are stored hashed")

    # plain HTTP refused off loopback
    p = subprocess.run([CORE, "serve", data, "--listen", "0.0.0.0:0"], capture_output=True,
                       text=True, timeout=30)
    check(p.returncode != 0 and "TLS" in p.stderr, "plain HTTP on 0.0.0.0 is refused")

    _, port = start(data, "--rate-limit", "1000", "--max-blob", "1024")
    anon = Client(port, None)
    A = Client(port, keys["a-agent"])
    R = Client(port, keys["a-rev"])
    B = Client(port, keys["b-agent"])

    st, js, _ = anon.req("GET", "/v1/healthz")
    check(st == 200, "healthz 200")
    conforms(js, "healthz.json", "healthz")
    db = js.get("database") or {}
    check(js.get("status") == "ok" and db.get("backend") == "sqlite" and db.get("ok") is True
          and db.get("latency_ms", -1) >= 0, f"healthz reports the database: {js}")
    st, js, _ = A.req("GET", "/v1/info")
    check(st == 200 and js.get("team") == "A" and js.get("role") == "agent", f"info {st} {js}")
    conforms(js, "info.json", "info")

    # --- 401s
    for what, k in [("missing", None), ("garbage", "nope"), ("wrong", keys["a-agent"][:-2] + "xx"),
                    ("revoked", keys["a-old"])]:
        st, js, _ = Client(port, k).req("GET", "/v1/sync/pull")
        check(st == 401, f"{what} key gets 401 (got {st})")
        conforms(js, "error.json", f"401 {what}")
        check(js.get("error", {}).get("code") == "unauthorized", f"401 code {js}")
    st, js, _ = A.req("GET", "/v1/nope")
    check(st == 404, "unknown path 404")
    conforms(js, "error.json", "404")

    # --- push: applied, duplicate, rejected conflict, seq strictly increasing
    ops = [{"op_id": f"op-{i}", "op": "item.put", "item": item(title=f"obs {i}")} for i in range(5)]
    st, js, _ = A.req("POST", "/v1/sync/push", {"ops": ops})
    check(st == 200, f"push 200 ({st} {js})")
    conforms(js, "push-response.json", "push")
    res = js.get("results", [])
    check([r["status"] for r in res] == ["applied"] * 5, f"all applied: {res}")
    seqs = [r.get("seq", 0) for r in res]
    check(all(b > a for a, b in zip(seqs, seqs[1:])) and seqs[0] >= 1, f"seq increasing {seqs}")
    st, js, _ = A.req("POST", "/v1/sync/push", {"ops": ops[:2]})
    check([r["status"] for r in js["results"]] == ["duplicate"] * 2, f"duplicates: {js}")
    check([r.get("seq") for r in js["results"]] == seqs[:2], "duplicate answers the original seq")
    changed = dict(ops[0], item=dict(ops[0]["item"], title="other"))
    st, js, _ = A.req("POST", "/v1/sync/push", {"ops": [changed]})
    r0 = js["results"][0]
    check(r0["status"] == "rejected" and r0.get("reason", "").startswith("conflict"),
          f"same op_id, other content: rejected conflict: {r0}")
    conforms(js, "push-response.json", "push conflict")
    priv = {"op_id": "op-priv", "op": "item.put", "item": item(visibility="private")}
    more = {"op_id": "op-5", "op": "item.put", "item": item(title="after")}
    st, js, _ = A.req("POST", "/v1/sync/push", {"ops": [priv, more]})
    check(js["results"][0]["status"] == "rejected" and js["results"][1]["status"] == "applied"
          and js["results"][1]["seq"] > seqs[-1], f"private rejected, next applies: {js}")

    # --- 400 / 413
    st, js, _ = A.req("POST", "/v1/sync/push", raw=b'{"ops": [', headers={"Content-Type": "application/json"})
    check(st == 400, f"malformed JSON 400 ({st})")
    conforms(js, "error.json", "400 malformed")
    st, js, _ = A.req("POST", "/v1/sync/push", {"ops": "nope"})
    check(st == 400, "wrong type 400")
    conforms(js, "error.json", "400 type")
    st, js, _ = A.req("POST", "/v1/sync/push", {"ops": [{"op": "item.put", "item": {}}]})
    check(st == 400, "op without op_id 400")
    big = [{"op_id": f"b{i}", "op": "item.put", "item": item()} for i in range(501)]
    st, js, _ = A.req("POST", "/v1/sync/push", {"ops": big})
    check(st == 413, f"501 ops 413 ({st})")
    conforms(js, "error.json", "413 ops")
    # Refused from the headers alone: send them and read the answer unsent body.
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(("POST /v1/sync/push HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                   "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                   % (keys["a-agent"], 4 * 1024 * 1024 + 1)).encode())
        resp = b""
        while b"}}" not in resp:
            chunk = s.recv(4096)
            if not chunk:
                break
            resp += chunk
    head, _, rbody = resp.partition(b"\r\n\r\n")
    check(head.startswith(b"HTTP/1.1 413"), f"4 MiB + 1 body 413 ({head[:40]!r})")
    try:
        conforms(json.loads(rbody), "error.json", "413 body")
    except ValueError:
        check(False, f"413 body is JSON: {rbody[:80]!r}")

    # --- pull paging, team isolation
    st, js, _ = A.req("GET", "/v1/sync/pull?since=0&limit=2")
    check(st == 200 and len(js["changes"]) == 2 and js["more"] is True, f"first page {js}")
    conforms(js, "pull-response.json", "pull")
    got, since, pages = [], 0, 0
    while pages < 20:
        st, js, _ = A.req("GET", f"/v1/sync/pull?since={since}&limit=2")
        conforms(js, "pull-response.json", "pull page")
        got += js["changes"]
        since = js["next"]
        pages += 1
        if not js["more"]:
            break
    gs = [c["seq"] for c in got]
    check(len(got) == 6 and gs == sorted(gs) and len(set(gs)) == 6, f"paged pull: {gs}")
    check(all(c["item"]["server_seq"] == c["seq"] for c in got), "server_seq set on items")
    st, js, _ = A.req("GET", f"/v1/sync/pull?since={since}")
    check(st == 200 and js["changes"] == [] and js["more"] is False and js["next"] == since,
          "caught-up pull is empty")
    st, js, _ = A.req("GET", "/v1/sync/pull?since=abc")
    check(st == 400, "bad since 400")
    st, js, _ = B.req("GET", "/v1/sync/pull?since=0")
    check(st == 200 and js["changes"] == [], "team B sees nothing of team A")
    st, js, _ = B.req("POST", "/v1/sync/push", {"ops": ops[:1]})
    check(js["results"][0]["status"] == "applied" and js["results"][0]["seq"] == 1,
          f"team B has its own seq and op ids: {js}")
    st, js, _ = A.req("GET", f"/v1/sync/pull?since={since}")
    check(js["changes"] == [], "team A does not see team B's push")

    # --- review
    draft = item(kind="draft", status="pending", title="use ninja -j2")
    st, js, _ = A.req("POST", "/v1/sync/push", {"ops": [{"op_id": "d1", "op": "item.put", "item": draft}]})
    check(js["results"][0]["status"] == "applied", "draft pushed")
    st, js, _ = R.req("GET", "/v1/review/queue")
    check(st == 200 and [d["id"] for d in js["drafts"]] == [draft["id"]] and js["total"] == 1,
          f"queue holds the draft: {js}")
    conforms(js, "review-queue.json", "queue")
    st, js, _ = B.req("GET", "/v1/review/queue")
    check(js.get("drafts") == [], "team B's queue is empty")
    st, js, _ = A.req("POST", f"/v1/drafts/{draft['id']}/decision", {"decision": "approve"})
    check(st == 403, f"agent key cannot decide: {st}")
    conforms(js, "error.json", "403")
    st, js, _ = R.req("POST", f"/v1/drafts/{draft['id']}/decision", {"decision": "reject"})
    check(st == 400, "reject without a note is 400")
    bid = ulid()
    st, js, _ = R.req("POST", f"/v1/drafts/{bid}/decision", {"decision": "approve"})
    check(st == 404, "unknown draft 404")
    st, js, _ = R.req("POST", f"/v1/drafts/{draft['id']}/decision", {"decision": "approve", "note": "yes"})
    check(st == 200 and js["item"]["kind"] == "thread" and js["item"]["status"] == "canon"
          and js["item"]["review"]["decision"] == "approve", f"approve makes a canon thread: {js}")
    conforms(js, "decision-response.json", "decision")
    st, js2, _ = R.req("POST", f"/v1/drafts/{draft['id']}/decision", {"decision": "approve"})
    check(st == 409, "deciding twice is 409")
    st, js3, _ = A.req("GET", f"/v1/sync/pull?since={since}")
    check(any(c.get("item", {}).get("id") == draft["id"] and c["item"]["status"] == "canon"
              for c in js3["changes"]), "the decision appears in the pull feed")
    st, js3, _ = B.req("POST", f"/v1/drafts/{draft['id']}/decision", {"decision": "approve"})
    check(st == 403, "team B agent cannot decide")
    # decision through push needs a reviewer key
    d2 = item(kind="draft", status="pending", title="d2")
    A.req("POST", "/v1/sync/push", {"ops": [{"op_id": "d2", "op": "item.put", "item": d2}]})
    dec = {"op_id": "dec2", "op": "review.decision", "item": d2,
           "review": {"decision": "changes_requested", "note": "more", "at": "2026-01-01T00:00:00Z"}}
    st, js, _ = A.req("POST", "/v1/sync/push", {"ops": [dec]})
    check(js["results"][0]["status"] == "rejected" and "forbidden" in js["results"][0]["reason"],
          f"agent review.decision op rejected: {js}")
    st, js, _ = R.req("POST", "/v1/sync/push", {"ops": [dec]})
    check(js["results"][0]["status"] == "applied", f"reviewer review.decision op applied: {js}")

    # --- blobs
    content = b"artifact body\n"
    sha = hashlib.sha256(content).hexdigest()
    st, js, _ = A.req("POST", "/v1/blobs/missing", {"sha256": [sha]})
    check(st == 200 and js["missing"] == [sha], "blob missing")
    conforms(js, "blobs-missing-response.json", "missing")
    st, js, _ = A.req("PUT", f"/v1/blobs/{sha}", raw=b"not the content",
                      headers={"Content-Type": "application/octet-stream"})
    check(st == 400, f"blob hash mismatch refused ({st})")
    conforms(js, "error.json", "blob mismatch")
    st, js, _ = A.req("PUT", f"/v1/blobs/{sha}", raw=content,
                      headers={"Content-Type": "application/octet-stream"})
    check(st == 201 and js.get("created") is True, f"blob stored {st} {js}")
    conforms(js, "blob-put-response.json", "blob put")
    st, body, _ = A.req("GET", f"/v1/blobs/{sha}")
    check(st == 200 and body == content, "blob read back")
    st, js, _ = B.req("GET", f"/v1/blobs/{sha}")
    check(st == 404, "team B cannot read team A's blob")
    big = b"x" * 2048
    st, js, _ = A.req("PUT", f"/v1/blobs/{hashlib.sha256(big).hexdigest()}", raw=big)
    check(st == 413, f"blob over the cap 413 ({st})")
    # Without a Content-Length (chunked) the cap is met while the body is
    # read: the request buffer refuses the byte past --max-blob, then 413.
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(("PUT /v1/blobs/%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                   "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n"
                   "Connection: close\r\n\r\n" % (hashlib.sha256(big).hexdigest(), keys["a-agent"])
                   ).encode())
        for part in (big[:1000], big[1000:]):
            s.sendall(b"%x\r\n" % len(part) + part + b"\r\n")
        s.sendall(b"0\r\n\r\n")
        resp = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            resp += chunk
    check(resp.startswith(b"HTTP/1.1 413"), f"chunked blob over the cap 413 ({resp[:40]!r})")

    # --- artifacts
    art = item(kind="artifact", status="published", title="build.sh")
    op = {"op_id": "art1", "op": "artifact.version", "item": art,
          "version": {"version": 1, "sha256": sha, "size": len(content), "status": "published"}}
    st, js, _ = A.req("POST", "/v1/sync/push", {"ops": [op]})
    check(js["results"][0]["status"] == "applied", f"artifact version applied {js}")
    st, js, _ = A.req("POST", f"/v1/artifacts/{art['id']}/versions/1/accept")
    check(st == 403, "agent cannot accept")
    st, js, _ = R.req("POST", f"/v1/artifacts/{art['id']}/versions/1/accept")
    check(st == 200 and js["item"]["versions"][0]["status"] == "accepted"
          and js["item"]["status"] == "accepted", f"accept {st} {js}")
    conforms(js, "decision-response.json", "accept")
    st, js, _ = R.req("POST", f"/v1/artifacts/{art['id']}/versions/9/accept")
    check(st == 404, "accepting an unknown version 404")

    # --- metrics
    st, body, r = anon.req("GET", "/metrics")
    text = body.decode() if isinstance(body, bytes) else ""
    check(st == 200 and 'cortex_http_requests_total{endpoint="sync_push",code="200"}' in text
          and "cortex_sync_ops_applied_total" in text and "cortex_review_queue_depth 1" in text
          and "cortex_http_request_duration_seconds_bucket" in text, "metrics exposition")
    gauges = dict(line.rsplit(" ", 1) for line in text.splitlines()
                  if line.startswith("cortex_db_"))
    check(gauges.get('cortex_db_up{backend="sqlite"}') == "1"
          and int(gauges.get("cortex_db_pool_connections", 0)) >= 2
          and gauges.get("cortex_db_pool_in_use") == "0"
          and int(gauges.get("cortex_db_transactions_total", 0)) > 10
          and "cortex_db_transaction_retries_total" in gauges
          and float(gauges.get("cortex_db_wait_seconds_total", -1)) >= 0
          and float(gauges.get("cortex_db_latency_seconds", -1)) >= 0,
          f"metrics show the database pool: {gauges}")
    check("cortex_push_waiting 0\n" in text, "metrics show no push waiting when none runs")

    # --- backup while serving, then audit
    dest = os.path.join(tmp, "backup")
    p = run("backup", data, dest)
    check(p.returncode == 0 and os.path.exists(os.path.join(dest, "core.db")), "backup")
    with sqlite3.connect(os.path.join(dest, "core.db")) as db:
        n = db.execute("SELECT count(*) FROM items WHERE team='A'").fetchone()[0]
    check(n >= 8, f"backup holds the items ({n})")
    p = run("verify-audit", dest)
    check(p.returncode == 0, f"backup's audit chain verifies: {p.stdout}")
    p = run("verify-audit", data)
    check(p.returncode == 0 and "ok" in p.stdout, f"audit chain ok: {p.stdout}")
    with sqlite3.connect(os.path.join(dest, "core.db")) as db:
        db.execute("UPDATE audit SET detail = replace(detail, 'approve', 'reject') "
                   "WHERE action = 'review.decision'")
    p = run("verify-audit", dest, ok=False)
    check(p.returncode != 0 and "BROKEN" in p.stdout, f"edited audit row detected: {p.stdout}")

    # --- a damaged stored item fails the pull (500), never a broken page;
    # items with every JSON form (escapes, numbers, nesting) pass the check
    odd = item(title="\u00e9\u2603 \"q\" \\ \t", body="\ud83d\ude00 x", tags=["a", "b"])
    st, js, _ = B.req("POST", "/v1/sync/push", {"ops": [{"op_id": "odd-1", "op": "item.put",
                                                        "item": odd}]})
    check(st == 200 and js["results"][0]["status"] == "applied", f"odd item pushed: {js}")
    dbpath = os.path.join(data, "core.db")
    with sqlite3.connect(dbpath, timeout=30) as db:
        good = db.execute("SELECT json FROM items WHERE team='B' AND id=?",
                          (odd["id"],)).fetchone()[0]
    st, js, _ = B.req("GET", "/v1/sync/pull?since=0")
    check(st == 200 and any(c.get("item", {}).get("id") == odd["id"] for c in js["changes"]),
          "an item with escapes and unicode pulls")
    for bad in [good[:-1], good + "x", good + "}", "[1]", good.replace('"title"', '"ti\x01tle"'),
                '{"a":01}', '{"a":1.}', '{"a":"\\x"}', '{"a" 1}', '{"a":[1,]}', '{"a":tru}',
                '{"a":"\\u12"}', '{"a":"\\u0000"}', ""]:
        with sqlite3.connect(dbpath, timeout=30) as db:
            db.execute("UPDATE items SET json=? WHERE team='B' AND id=?", (bad, odd["id"]))
        st, js, _ = B.req("GET", "/v1/sync/pull?since=0")
        check(st == 500, f"a damaged stored item ({bad[-20:]!r}) fails the pull: {st}")
    with sqlite3.connect(dbpath, timeout=30) as db:
        db.execute("UPDATE items SET json=CAST(? AS BLOB) WHERE team='B' AND id=?",
                   (b'{"a":"\xff"}', odd["id"]))
    st, js, _ = B.req("GET", "/v1/sync/pull?since=0")
    check(st == 500, f"a stored item that is not UTF-8 fails the pull: {st}")
    with sqlite3.connect(dbpath, timeout=30) as db:
        db.execute("UPDATE items SET json=? WHERE team='B' AND id=?", (good, odd["id"]))
    st, js, _ = B.req("GET", "/v1/sync/pull?since=0")
    check(st == 200, "the repaired item pulls again")

    # --- forget (a tombstone in the feed) and compact (the horizon, 410)
    gone_id = ops[1]["item"]["id"]
    p = run("forget", data, "--team", "B", gone_id, ok=False)
    check(p.returncode != 0 and p.stdout == "", "forget refuses another team's item")
    p = run("forget", data, "--team", "A", gone_id, "--reason", "leaked a secret")
    check(p.returncode == 0 and p.stdout == "", f"forget: {p.returncode} {p.stderr}")
    p = run("forget", data, "--team", "A", gone_id, ok=False)
    check(p.returncode == 1, "forgetting twice fails")
    p = run("forget", data, "--team", "A", ok=False)
    check(p.returncode == 2, "forget without an id is a usage error")
    st, js, _ = A.req("GET", "/v1/sync/pull?since=0&limit=1000")
    check(st == 200, f"pull after forget {st}")
    conforms(js, "pull-response.json", "pull with a tombstone")
    tomb = [c for c in js.get("changes", []) if c.get("id") == gone_id]
    check(len(tomb) == 1 and tomb[0].get("deleted") is True and "item" not in tomb[0]
          and not any(c.get("item", {}).get("id") == gone_id for c in js["changes"]),
          f"pull shows a tombstone, not the item: {tomb}")
    tomb_seq = tomb[0]["seq"] if tomb else 0
    check(tomb_seq == js["next"], f"the tombstone has the newest seq ({tomb_seq}, {js['next']})")
    with sqlite3.connect(os.path.join(data, "core.db")) as db:
        row = db.execute("SELECT deleted, json FROM items WHERE team = 'A' AND id = ?",
                         (gone_id,)).fetchone()
        actions = [r[0] for r in db.execute("SELECT action FROM audit ORDER BY n")]
    check(row == (1, None), f"the content is deleted at the core: {row}")
    check("item.forget" in actions, "forget is audited")
    st, js, _ = A.req("GET", f"/v1/sync/pull?since={tomb_seq - 1}")
    check(st == 200 and [c.get("id") for c in js["changes"]] == [gone_id],
          f"an incremental pull gets the tombstone: {js}")
    p = run("compact", data, "--team", "A", "--before-seq", "0", ok=False)
    check(p.returncode == 2, "compact --before-seq 0 is a usage error")
    p = run("compact", data, "--team", "A", "--before-seq", str(tomb_seq + 1))
    check(p.returncode == 0 and p.stdout == "" and "1 tombstones dropped" in p.stderr,
          f"compact: {p.returncode} {p.stderr}")
    for since_old in (1, tomb_seq - 1):
        st, js, _ = A.req("GET", f"/v1/sync/pull?since={since_old}")
        check(st == 410, f"a cursor ({since_old}) below the horizon gets 410 ({st})")
        conforms(js, "error.json", "410")
        check(js.get("error", {}).get("code") == "gone", f"410 code: {js}")
    st, js, _ = A.req("GET", "/v1/sync/pull?since=0&limit=1000")
    check(st == 200 and not any(c.get("id") == gone_id or c.get("item", {}).get("id") == gone_id
                                for c in js["changes"]),
          "a fresh pull from 0 works and no longer carries the tombstone")
    st, js, _ = A.req("GET", f"/v1/sync/pull?since={tomb_seq + 1}")
    check(st == 200, f"a cursor at the horizon pulls ({st})")
    st, js, _ = B.req("GET", "/v1/sync/pull?since=1")
    check(st == 200, "another team's horizon is untouched")
    p = run("compact", data, "--team", "A", "--before-seq", "1000000")
    check(p.returncode == 0 and f"horizon {tomb_seq + 1}" in p.stderr,
          f"the horizon is clamped to the last seq + 1: {p.stderr}")
    p = run("verify-audit", data)
    check(p.returncode == 0 and "ok" in p.stdout, f"audit chain ok after forget and compact: {p.stdout}")

    # --- rate limit
    _, port2 = start(data, "--rate-limit", "1", "--burst", "2")
    A2 = Client(port2, keys["a-agent"])
    codes = [A2.req("GET", "/v1/info")[0] for _ in range(4)]
    st, js, r = A2.req("GET", "/v1/info")
    check(codes[:2] == [200, 200] and st == 429 and int(r.getheader("Retry-After", "0")) >= 1,
          f"rate limit 429 with Retry-After: {codes} {st}")
    conforms(js, "error.json", "429")
    st, js, _ = Client(port2, keys["a-rev"]).req("GET", "/v1/info")
    check(st == 200, "the limit is per key")

    # --- HTTPS with a certificate made here
    if not shutil.which("openssl"):
        check(False, "openssl is needed for the HTTPS test")
        return
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                        "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                        "-keyout", key, "-out", cert], capture_output=True, timeout=60)
    check(p.returncode == 0, f"openssl made a certificate: {p.stderr[-300:]}")
    _, port3 = start(data, "--tls-cert", cert, "--tls-key", key)
    ctx = ssl.create_default_context(cafile=cert)
    S = Client(port3, keys["a-agent"], ctx)
    st, js, _ = S.req("GET", "/v1/info")
    check(st == 200 and js.get("team") == "A", f"HTTPS info with the test CA: {st}")
    try:
        Client(port3, keys["a-agent"], ssl.create_default_context()).req("GET", "/v1/info")
        check(False, "an unknown CA must fail verification")
    except ssl.SSLError:
        check(True, "unknown CA refused")

    hostile_client(data, S, Client(port3, keys["a-rev"], ctx))


def fresh(alphabet, n):
    return "".join(secrets.choice(alphabet) for _ in range(n))


def fresh_secrets():
    """New values of the shapes src/redact/rules.c knows (as in
    fixtures/redact/cases.json), so that no earlier run can have left them:
    name -> (text to push, the part that must never be stored)."""
    up, alnum = string.ascii_uppercase + "234567", string.ascii_letters + string.digits
    aws_id = "AKIA" + fresh(up, 16)
    aws_secret = fresh(alnum + "/+", 40)
    ghp = "ghp_" + fresh(alnum, 36)
    slack = "xoxb-%s-%s-%s" % (fresh(string.digits, 12), fresh(string.digits, 13), fresh(alnum, 24))
    pem_lines = [base64.b64encode(secrets.token_bytes(48)).decode() for _ in range(6)]
    pem = ("-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(pem_lines) +
           "\n-----END RSA PRIVATE KEY-----")
    dbpw = fresh(alnum, 18)
    return {
        "aws-access-key-id": ("key " + aws_id + " denied", aws_id),
        "aws-secret-access-key": ("aws_secret_access_key = " + aws_secret, aws_secret),
        "github-pat": (ghp, ghp),
        "slack-bot-token": ("SLACK_BOT_TOKEN=" + slack, slack),
        "private-key": ("$ cat id_rsa\n" + pem, pem_lines[2]),
        "database-url-password": ("DATABASE_URL=postgres://app:%s@db.internal:5432/app" % dbpw, dbpw),
    }


def hostile_client(data, S, SR):
    """A raw HTTPS client that ignores every rule a sidecar keeps: fresh
    secrets in every text it can send, fields past item.json's limits, ids
    in lower case. The core must redact, refuse with 400 naming the field,
    and normalise."""
    sec = fresh_secrets()
    t = {k: v[0] for k, v in sec.items()}
    obs = item(title="deploy " + t["aws-access-key-id"],
               body="\n".join([t["aws-secret-access-key"], t["private-key"],
                               t["database-url-password"], t["slack-bot-token"]]),
               tags=[t["github-pat"], "ok"], author="ann " + t["github-pat"],
               subcortex="s " + t["github-pat"][:40],
               provenance={"remote": "https://x:" + t["github-pat"] + "@github.com/a/b.git",
                           "branch": "main", "files": [{"path": "a.c", "blob": "0" * 40}]},
               extra={"note": t["slack-bot-token"]})
    draft = item(kind="draft", status="pending", title="draft " + t["github-pat"],
                 body=t["database-url-password"], tags=[t["github-pat"]])
    draft2 = item(kind="draft", status="pending", title="draft two")
    st, js, _ = S.req("POST", "/v1/sync/push", {"ops": [
        {"op_id": "sec-1", "op": "item.put", "item": obs},
        {"op_id": "sec-2", "op": "item.put", "item": draft},
        {"op_id": "sec-3", "op": "item.put", "item": draft2}]})
    check(st == 200 and [r["status"] for r in js.get("results", [])] == ["applied"] * 3,
          f"items with secrets are applied (redacted): {st} {js}")
    rv = {"decision": "changes_requested", "note": "rotate " + t["aws-secret-access-key"],
          "reason": "see " + t["slack-bot-token"], "at": "2026-01-01T00:00:00Z"}
    st, js, _ = SR.req("POST", "/v1/sync/push", {"ops": [
        {"op_id": "sec-4", "op": "review.decision", "item": draft, "review": rv}]})
    check(st == 200 and js["results"][0]["status"] == "applied",
          f"a review op with secrets in its note is applied: {st} {js}")
    st, js, _ = SR.req("POST", f"/v1/drafts/{draft2['id']}/decision",
                       {"decision": "reject", "note": "leaked " + t["database-url-password"] +
                        " and " + t["github-pat"]})
    check(st == 200, f"a decision with secrets in its note: {st} {js}")

    st, js, _ = S.req("GET", "/v1/sync/pull?since=0&limit=1000")
    check(st == 200, f"pull {st}")
    conforms(js, "pull-response.json", "pull of redacted items")
    text = json.dumps(js)
    by_id = {c["item"]["id"]: c["item"] for c in js["changes"] if "item" in c}
    for name, (_, secret) in sec.items():
        check(secret not in text, f"the pull carries no {name}")
    o, d, d2 = by_id.get(obs["id"], {}), by_id.get(draft["id"], {}), by_id.get(draft2["id"], {})
    check("[REDACTED:aws-access-key-id]" in o.get("title", ""), f"title redacted: {o.get('title')}")
    for name in ("aws-secret-access-key", "private-key", "database-url-password", "slack-bot-token"):
        check(f"[REDACTED:{name}]" in o.get("body", ""), f"body: {name} redacted: {o.get('body')!r:.300}")
    check(o.get("tags", [""])[0] == "[REDACTED:github-pat]", f"tag redacted: {o.get('tags')}")
    check("[REDACTED:" in o.get("author", "") and "[REDACTED:" in o.get("subcortex", ""),
          f"author and subcortex redacted: {o.get('author')} {o.get('subcortex')}")
    check("[REDACTED:" in o.get("provenance", {}).get("remote", ""),
          f"provenance redacted: {o.get('provenance')}")
    check("[REDACTED:slack-bot-token]" in o.get("extra", {}).get("note", ""),
          f"a member item.json does not name is redacted too: {o.get('extra')}")
    review = d.get("review", {})
    check(d.get("status") == "changes_requested" and "[REDACTED:" in review.get("note", ""),
          f"the review op's note is redacted: {review}")
    check("[REDACTED:github-pat]" in d.get("title", ""), f"draft title redacted: {d.get('title')}")
    check(d2.get("status") == "rejected"
          and "[REDACTED:database-url-password]" in d2.get("review", {}).get("note", "")
          and "[REDACTED:github-pat]" in d2["review"]["note"],
          f"the decision note is redacted: {d2.get('review')}")

    # --- a blob is named by its hash, so the core cannot redact it: one
    # that holds a secret, or is a private key, is refused
    for name in ("github-pat", "private-key"):
        content = ("#!/bin/sh\n" + t[name] + "\n").encode()
        st, js, _ = S.req("PUT", f"/v1/blobs/{hashlib.sha256(content).hexdigest()}", raw=content,
                          headers={"Content-Type": "application/octet-stream"})
        msg = js.get("error", {}).get("message", "")
        check(st == 400 and (name in msg or name.replace("-", " ") in msg),
              f"a blob holding a {name} is refused, naming the rule ({st} {js})")
    redacted = b"token = [REDACTED:github-pat]\n"
    st, js, _ = S.req("PUT", f"/v1/blobs/{hashlib.sha256(redacted).hexdigest()}", raw=redacted,
                      headers={"Content-Type": "application/octet-stream"})
    check(st == 201, f"a blob a sidecar redacted is stored ({st} {js})")

    # --- nothing of it anywhere in the core's data directory (the
    # database, its WAL and shared memory, while the servers run)
    names, leaks = [], []
    for root, _, files in os.walk(data):
        for f in files:
            path = os.path.join(root, f)
            names.append(f)
            with open(path, "rb") as fh:
                blob = fh.read()
            leaks += [f"{f}: {name}" for name, (_, secret) in sec.items()
                      if secret.encode() in blob]
    check(any(n.endswith("-wal") for n in names), f"the WAL was read too: {names}")
    check(not leaks, f"no secret in the data directory: {leaks}")

    # --- fields past item.json's limits: 400, the message names the field,
    # nothing of the push is applied
    good = item(title="must not be applied")
    cases = [
        ("title", item(title="x" * 1024), "ops[1].item.title"),
        ("100 kB tag", item(tags=["t" * 100_000]), "ops[1].item.tags[0]"),
        ("10,000 blob refs", item(blobs=[hashlib.sha256(b"%d" % i).hexdigest()
                                         for i in range(10_000)]), "ops[1].item.blobs"),
        ("created_at", item(created_at="99999-99-99"), "ops[1].item.created_at"),
        ("17 tags", item(tags=[f"t{i}" for i in range(17)]), "ops[1].item.tags"),
        ("300 KiB body", item(body="b" * (300 * 1024)), "ops[1].item.body"),
        ("unknown status", item(status="bogus"), "ops[1].item.status"),
        ("a status the kind cannot hold", item(status="canon"), "ops[1].item.status"),
    ]
    for what, bad, field in cases:
        st, js, _ = S.req("POST", "/v1/sync/push", {"ops": [
            {"op_id": "lim-ok-" + what, "op": "item.put", "item": good},
            {"op_id": "lim-" + what, "op": "item.put", "item": bad}]})
        msg = js.get("error", {}).get("message", "") if isinstance(js, dict) else ""
        check(st == 400 and msg.startswith(field + ":") and js["error"]["code"] == "bad_request",
              f"{what}: 400 naming {field} ({st} {msg!r:.120})")
        conforms(js, "error.json", f"400 {what}")
    st, js, _ = S.req("POST", "/v1/sync/push", {"ops": [
        {"op_id": "lim-note", "op": "review.decision", "item": draft2,
         "review": {"decision": "reject", "note": "n" * 9000, "at": "2026-01-01T00:00:00Z"}}]})
    check(st == 400 and js["error"]["message"].startswith("ops[0].review.note:"),
          f"a review op's note past 8192 bytes: 400 naming it ({st} {js})")
    d3 = item(kind="draft", status="pending", title="d3")
    S.req("POST", "/v1/sync/push", {"ops": [{"op_id": "d3", "op": "item.put", "item": d3}]})
    st, js, _ = SR.req("POST", f"/v1/drafts/{d3['id']}/decision",
                       {"decision": "reject", "note": "n" * 8193})
    check(st == 400 and js["error"]["message"].startswith("note:"),
          f"a decision note past 8192 bytes: 400 naming note ({st} {js})")
    st, js, _ = S.req("GET", "/v1/sync/pull?since=0&limit=1000")
    check(not any(c.get("item", {}).get("id") == good["id"] for c in js["changes"]),
          "a refused push applies none of its ops")

    # --- ids are case-insensitive: a lower-case copy is the same item
    low = dict(obs, id=obs["id"].lower(), title="updated through a lower-case id")
    st, js, _ = S.req("POST", "/v1/sync/push", {"ops": [{"op_id": "low-1", "op": "item.put",
                                                        "item": low}]})
    check(st == 200 and js["results"][0]["status"] == "applied", f"lower-case id push: {js}")
    st, js, _ = S.req("GET", "/v1/sync/pull?since=0&limit=1000")
    same = [c["item"] for c in js["changes"]
            if c.get("item", {}).get("id", "").upper() == obs["id"]]
    check(len(same) == 1 and same[0]["id"] == obs["id"]
          and same[0]["title"] == "updated through a lower-case id",
          f"one item in the pull, under its upper-case id: {same}")
    st, js, _ = SR.req("POST", f"/v1/drafts/{d3['id'].lower()}/decision", {"decision": "approve"})
    check(st == 200 and js.get("item", {}).get("id") == d3["id"]
          and js["item"].get("status") == "canon",
          f"a decision through a lower-case draft id decides the draft: {st} {js}")


def pg_tests(tmp):
    """The basic flow again on a core whose data is in PostgreSQL
    (init --database, keys, push, pull, a decision, a blob, forget,
    verify-audit, an edited audit row found),
    and a second node over the same database serving the same feed. Runs
    when tests/core/with-pg.py gave a database (CORTEX_TEST_PG_URI)."""
    uri = os.environ.get("CORTEX_TEST_PG_URI")
    if not uri:
        print("test-core: the PostgreSQL half did not run: CORTEX_TEST_PG_URI is not set "
              "(PostgreSQL missing, or not run through tests/core/with-pg.py)", flush=True)
        return
    data = os.path.join(tmp, "pg-data")
    # --- init: the URI's checks come before anything is made
    with_pw = uri.replace("://cortex@", "://cortex:hunter2@")
    p = run("init", data, "--database", with_pw, ok=False)
    check(p.returncode == 2 and "PGPASSFILE" in p.stderr and "hunter2" not in p.stderr
          and not os.path.exists(data),
          f"init refuses a URI with a password, never echoing it: {p.returncode} {p.stderr!r}")
    p = run("init", data, "--database", uri + "?password=hunter2", ok=False)
    check(p.returncode == 2 and "hunter2" not in p.stderr and not os.path.exists(data),
          f"init refuses a password given as a URI parameter: {p.returncode} {p.stderr!r}")
    p = run("init", data, "--database", "mysql://x/y", ok=False)
    check(p.returncode == 2 and not os.path.exists(data), f"init refuses a non-PostgreSQL URL: {p.stderr!r}")
    p = run("init", data, "--database", uri)
    admin = p.stdout.strip()
    check(p.returncode == 0 and re.fullmatch(r"cxk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}\n", p.stdout),
          f"init --database prints exactly one key line: {p.returncode} {p.stdout!r} {p.stderr!r}")
    if p.returncode != 0:
        return
    names = sorted(os.listdir(data))
    check(names == ["database", "secret"], f"DIR holds the secret and the database's URI: {names}")
    with open(os.path.join(data, "database")) as f:
        check(f.read() == uri + "\n", "DIR/database holds the URI")
    check(os.stat(os.path.join(data, "database")).st_mode & 0o777 == 0o600, "DIR/database is 0600")
    p = run("init", os.path.join(tmp, "pg-other"), "--database", uri, ok=False)
    check(p.returncode == 1 and "already" in p.stderr,
          f"init refuses a database that holds a core: {p.returncode} {p.stderr!r}")
    keys = {}
    for team, role, name in [("A", "agent", "a-agent"), ("A", "reviewer", "a-rev"),
                             ("B", "agent", "b-agent"), ("A", "agent", "a-old")]:
        p = run("keys", "create", data, "--team", team, "--role", role, "--name", name)
        check(p.returncode == 0 and re.fullmatch(r"cxk_[0-9a-f]{16}_\S+\n", p.stdout),
              f"pg: keys create prints only the key: {p.stdout!r} {p.stderr!r}")
        keys[name] = p.stdout.strip()
    p = run("keys", "list", data)
    check(p.returncode == 0 and "a-rev" in p.stdout and admin not in p.stdout
          and p.stdout.count("\n") == 6, f"pg: keys list: {p.stdout!r}")
    old_id = keys["a-old"][4:20]
    check(run("keys", "revoke", data, old_id).returncode == 0, "pg: keys revoke")
    check(run("keys", "revoke", data, old_id, ok=False).returncode == 1, "pg: revoking twice fails")

    # --- a node: healthz, push, duplicate, pull, isolation, a decision
    _, port = start(data)
    A, R, B = (Client(port, keys[n]) for n in ("a-agent", "a-rev", "b-agent"))
    st, js, _ = Client(port).req("GET", "/v1/healthz")
    check(st == 200, f"pg: healthz {st} {js}")
    st, js, _ = Client(port, keys["a-old"]).req("GET", "/v1/sync/pull")
    check(st == 401, f"pg: a revoked key gets 401 ({st})")
    ops = [{"op_id": f"pg-{i}", "op": "item.put", "item": item(title=f"pg {i}")} for i in range(5)]
    st, js, _ = A.req("POST", "/v1/sync/push", {"ops": ops})
    res = js.get("results", []) if isinstance(js, dict) else []
    seqs = [r.get("seq", 0) for r in res]
    check(st == 200 and [r["status"] for r in res] == ["applied"] * 5 and seqs == [1, 2, 3, 4, 5],
          f"pg: push applies with seqs 1..5: {st} {js}")
    conforms(js, "push-response.json", "pg push")
    st, js, _ = A.req("POST", "/v1/sync/push", {"ops": ops[:2]})
    check([r["status"] for r in js["results"]] == ["duplicate"] * 2
          and [r.get("seq") for r in js["results"]] == [1, 2], f"pg: duplicates: {js}")
    st, js, _ = A.req("GET", "/v1/sync/pull?since=0&limit=3")
    check(st == 200 and [c["seq"] for c in js["changes"]] == [1, 2, 3] and js["more"] is True,
          f"pg: first page {js}")
    conforms(js, "pull-response.json", "pg pull")
    st, js, _ = A.req("GET", f"/v1/sync/pull?since={js['next']}")
    check([c["seq"] for c in js["changes"]] == [4, 5] and js["more"] is False, f"pg: second page {js}")
    st, js, _ = B.req("GET", "/v1/sync/pull?since=0")
    check(st == 200 and js["changes"] == [], "pg: team B sees nothing of team A")
    draft = item(kind="draft", status="pending", title="pg draft")
    A.req("POST", "/v1/sync/push", {"ops": [{"op_id": "pg-d", "op": "item.put", "item": draft}]})
    st, js, _ = R.req("GET", "/v1/review/queue")
    check(st == 200 and js.get("total") == 1, f"pg: the queue holds the draft: {js}")
    st, js, _ = R.req("POST", f"/v1/drafts/{draft['id']}/decision", {"decision": "approve"})
    check(st == 200 and js["item"]["status"] == "canon", f"pg: approve: {st} {js}")
    content = b"pg blob\n" * 1000
    sha = hashlib.sha256(content).hexdigest()
    st, js, _ = A.req("PUT", f"/v1/blobs/{sha}", raw=content,
                      headers={"Content-Type": "application/octet-stream"})
    check(st == 201, f"pg: blob stored ({st} {js})")
    st, body, _ = A.req("GET", f"/v1/blobs/{sha}")
    check(st == 200 and body == content, f"pg: the blob reads back whole ({st})")

    # --- a second node over the same database: one feed, one idempotency
    data2 = os.path.join(tmp, "pg-data-2")
    shutil.copytree(data, data2)
    _, port2 = start(data2, "--db-pool", "2")  # a small pool: requests wait their turn
    A2 = Client(port2, keys["a-agent"])
    st, js, _ = A2.req("GET", "/v1/sync/pull?since=0&limit=100")
    check(st == 200 and [c["seq"] for c in js["changes"]] == [1, 2, 3, 4, 5, 7],
          f"pg: node 2 serves the same feed: {js}")
    st, js, _ = A2.req("POST", "/v1/sync/push", {"ops": ops[:1] + [
        {"op_id": "pg-n2", "op": "item.put", "item": item(title="via node 2")}]})
    check([r["status"] for r in js["results"]] == ["duplicate", "applied"]
          and js["results"][1]["seq"] == 8, f"pg: node 2 knows node 1's ops, goes on with the seq: {js}")
    st, js, _ = A.req("GET", "/v1/sync/pull?since=7")
    check([c["seq"] for c in js["changes"]] == [8], f"pg: node 1 sees node 2's push: {js}")

    # --- forget, verify-audit, backup (refused: pg_dump's job)
    p = run("forget", data, "--team", "A", ops[4]["item"]["id"])
    check(p.returncode == 0, f"pg: forget: {p.stderr!r}")
    st, js, _ = A2.req("GET", "/v1/sync/pull?since=8")
    check(len(js["changes"]) == 1 and js["changes"][0]["seq"] == 9 and "item" not in js["changes"][0],
          f"pg: the tombstone is in the feed: {js}")
    p = run("verify-audit", data2)
    m = re.fullmatch(r"audit chain ok: (\d+) entries\n", p.stdout)
    check(p.returncode == 0 and m and int(m.group(1)) == 8,
          f"pg: verify-audit: 5 keys made, 1 revoked, a decision, a forget: {p.stdout!r} {p.stderr!r}")
    # an audit row edited in the database is found
    psql = os.path.join(os.environ.get("CORTEX_PG_BINDIR") or "/usr/lib/postgresql/15/bin", "psql")
    e = subprocess.run([psql, uri, "-v", "ON_ERROR_STOP=1", "-Atqc",
                        "UPDATE audit SET detail = replace(detail, 'approve', 'reject')"
                        " WHERE action = 'review.decision'"],
                       capture_output=True, text=True, timeout=60)
    check(e.returncode == 0, f"pg: psql edits an audit row: {e.stderr!r}")
    p = run("verify-audit", data, ok=False)
    check(p.returncode == 1 and "BROKEN" in p.stdout, f"pg: the edited audit row is found: {p.stdout!r}")
    p = run("backup", data, os.path.join(tmp, "pg-backup"), ok=False)
    check(p.returncode == 1 and "pg_dump" in p.stderr and not os.path.exists(os.path.join(tmp, "pg-backup")),
          f"pg: backup points at pg_dump: {p.returncode} {p.stderr!r}")


if __name__ == "__main__":
    main()
