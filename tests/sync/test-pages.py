#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Pull pages bounded by bytes, and a core whose memory stays bounded while
# clients read slowly. A real cortex-core over HTTPS on 127.0.0.1 (a
# certificate made by the test), one team whose feed holds N_ITEMS items
# with the largest legal body (256 KiB each, about 70 MiB of feed: under a
# page limit by count alone the first page would hold all of it, past the
# sidecar's 64 MiB answer cap, and `cortex sync` would fail forever).
#
# - raw pages read with a python HTTPS client each stay within the 8 MiB
#   budget, follow next/more, and together carry every item once;
# - `cortex sync` of a workspace of that team completes and catches up;
# - eight slow readers (a few KiB a second, small receive buffers) of the
#   largest page leave the core's VmRSS within +256 MB of its idle figure;
#   meanwhile one more large page is answered 503 with Retry-After (the
#   page memory is full) and /v1/healthz still answers;
# - the core is started with --send-min-rate 512 KiB/s, so an 8 MiB page has
#   a send deadline of about 26 s: each slow reader is dropped before it has
#   its page, the drops are counted in /metrics and the page memory is given
#   back (a full pull is served again).
# Every wait is bounded; every process is killed at the end. Prints
# "N passed, N failed"; exits non-zero on any failure.
import json, os, random, socket, ssl, subprocess, threading, time

from synclib import CORE, Core, check, cli, make_cert, run, wait_until

N_ITEMS = 280
BODY = 256 * 1024            # CX_WIRE_MAX_BODY: the largest legal body
PAGE_BYTES = 8 * 1024 * 1024  # CX_WIRE_MAX_PAGE_BYTES
ANSWER_CAP = 64 * 1024 * 1024  # CX_CLIENT_MAX_ANSWER
SLOW_READERS = 8
RSS_MARGIN = 256 * 1024 * 1024
WORDS = ("build cache linker flaky test retry timeout socket buffer page cursor "
         "deploy rollback schema index query parser token budget review canon draft "
         "observation artifact version sidecar core feed tombstone horizon").split()


def ulid(i):
    return f"01JPAGES{i:018d}"


def filler():
    """256 KiB of plain words (nothing a redaction rule matches), made once."""
    rnd, words, n = random.Random(10), [], 0
    while n < BODY:
        w = rnd.choice(WORDS)
        words.append(w)
        n += len(w) + 1
    return " ".join(words)


def body(i, text):
    head = f"Large note {i}: "
    return head + text[:BODY - len(head)]


class Https:
    """Raw HTTPS to the core, verified against the test's certificate."""

    def __init__(self, port, cert, key):
        self.port, self.key = port, key
        self.ctx = ssl.create_default_context(cafile=cert)

    def connect(self, rcvbuf=None):
        s = socket.socket()
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(30)
        s.connect(("127.0.0.1", self.port))
        return self.ctx.wrap_socket(s, server_hostname="127.0.0.1")

    def request(self, method, path, payload=None, auth=True, timeout=120):
        import http.client
        c = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=timeout)
        hdrs = {"Authorization": f"Bearer {self.key}"} if auth else {}
        data = None
        if payload is not None:
            data = json.dumps(payload).encode()
            hdrs["Content-Type"] = "application/json"
        c.request(method, path, body=data, headers=hdrs)
        r = c.getresponse()
        out = (r.status, r.getheader("Retry-After"), r.read())
        c.close()
        return out


def fill(h):
    """Pushes N_ITEMS observations with 256 KiB bodies, 14 per push (under 4 MiB)."""
    text = filler()
    ok = 0
    for start in range(0, N_ITEMS, 14):
        ops = []
        for i in range(start, min(start + 14, N_ITEMS)):
            ops.append({"op_id": f"fill-{i}", "op": "item.put", "item": {
                "id": ulid(i), "kind": "observation", "status": "recorded",
                "title": f"large note {i}", "body": body(i, text),
                "created_at": "2026-12-07T10:00:00Z", "updated_at": "2026-12-07T10:00:00Z",
                "visibility": "shared"}})
        st, _, raw = h.request("POST", "/v1/sync/push", {"ops": ops})
        if st == 200:
            ok += sum(1 for r in json.loads(raw)["results"] if r["status"] == "applied")
        else:
            check(False, f"push from {start}: HTTP {st} {raw[:300]!r}")
            return ok
    return ok


def read_pages(h):
    """Walks the feed from 0 with the largest count limit: [(bytes, changes, next, more)]."""
    pages, since = [], 0
    for _ in range(200):
        st, _, raw = h.request("GET", f"/v1/sync/pull?since={since}&limit=1000")
        if st != 200:
            check(False, f"raw pull since={since}: HTTP {st} {raw[:200]!r}")
            break
        page = json.loads(raw)
        pages.append((len(raw), page["changes"], page["next"], page["more"]))
        if not page["more"]:
            break
        since = page["next"]
    return pages


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1]) * 1024
    return 0


def metric(h, name):
    st, _, raw = h.request("GET", "/metrics", auth=False)
    for ln in raw.decode().splitlines():
        if ln.startswith(name + " "):
            return int(float(ln.split()[-1]))
    return -1


class SlowReader(threading.Thread):
    """GETs the first (largest) page and reads it at about 8 KiB a second
    through a 16 KiB receive buffer, until the core closes or `limit` s
    after the answer began (`ended` counts from then: the page's send
    deadline starts when the core has built it)."""

    def __init__(self, h, limit):
        super().__init__(daemon=True)
        self.h, self.limit = h, limit
        self.got, self.length, self.status, self.ended, self.error = 0, None, None, None, None

    def run(self):
        t0 = time.monotonic()
        try:
            s = self.h.connect(rcvbuf=16 * 1024)
            s.sendall(f"GET /v1/sync/pull?since=0&limit=1000 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      f"Authorization: Bearer {self.h.key}\r\n\r\n".encode())
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                d = s.recv(4096)
                if not d:
                    break
                head += d
            hdr, _, rest = head.partition(b"\r\n\r\n")
            lines = hdr.decode(errors="replace").split("\r\n")
            self.status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
            for ln in lines[1:]:
                k, _, v = ln.partition(":")
                if k.strip().lower() == "content-length":
                    self.length = int(v.strip())
            self.got = len(rest)
            t0 = time.monotonic()
            while time.monotonic() - t0 < self.limit:
                d = s.recv(4096)
                if not d:
                    break
                self.got += len(d)
                if self.length is not None and self.got >= self.length:
                    break
                time.sleep(0.5)
            s.close()
        except (OSError, ssl.SSLError) as e:
            self.error = repr(e)
        self.ended = time.monotonic() - t0


def tests(tmp):
    cert, key_pem = make_cert(tmp)
    data = os.path.join(tmp, "core")
    p = subprocess.run([CORE, "init", data], capture_output=True, text=True, timeout=60)
    check(p.returncode == 0, "core init")
    key = subprocess.run([CORE, "keys", "create", data, "--team", "T", "--role", "agent", "--name",
                          "agent"], capture_output=True, text=True, timeout=60).stdout.strip()
    core = Core(tmp, data, tls=(cert, key_pem), extra=["--send-min-rate", str(512 * 1024)])
    core.start()
    h = Https(core.port, cert, key)

    # --- a feed of large items
    t0 = time.monotonic()
    applied = fill(h)
    check(applied == N_ITEMS, f"{N_ITEMS} large items pushed ({applied} applied)")
    print(f"filled in {time.monotonic() - t0:.1f}s", flush=True)

    # --- raw pages: within the budget, following next/more, every item once
    pages = read_pages(h)
    sizes = [n for n, _, _, _ in pages]
    check(len(pages) >= 2, f"the feed comes in several pages ({len(pages)})")
    check(all(n <= PAGE_BYTES or len(c) == 1 for n, c, _, _ in pages),
          f"every page is within {PAGE_BYTES} bytes: {sizes}")
    check(all(n <= ANSWER_CAP for n in sizes), "every page fits the sidecar's answer cap")
    check(sum(sizes) > ANSWER_CAP, f"the feed ({sum(sizes)} bytes) is larger than the answer cap, "
          "so one page by count alone could not be read")
    ids = [c["item"]["id"] for _, cs, _, _ in pages for c in cs]
    check(sorted(ids) == sorted(ulid(i) for i in range(N_ITEMS)), "the pages carry every item once")
    check(all(nx == cs[-1]["seq"] for _, cs, nx, _ in pages if cs), "next is each page's last seq")
    check([m for _, _, _, m in pages] == [True] * (len(pages) - 1) + [False],
          "more is true until the last page")
    first_page = sizes[0] if sizes else 0

    # --- a sidecar of the team syncs the whole feed
    env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(tmp, "home"))
    env.pop("CORTEX_WORKSPACE", None)
    ws = os.path.join(tmp, "W")
    os.makedirs(ws)
    p = cli(ws, env, "remote", "set", core.url(), "--ca-file", cert)
    check(p.returncode == 0, f"remote set: {p.stderr}")
    p = cli(ws, env, "login", stdin=key + "\n")
    check(p.returncode == 0, f"login: {p.returncode} {p.stderr}")
    t0 = time.monotonic()
    p = cli(ws, env, "sync", timeout=120)
    check(p.returncode == 0, f"cortex sync of the large feed: {p.returncode} {p.stderr[-500:]}")
    print(f"synced in {time.monotonic() - t0:.1f}s", flush=True)
    p = cli(ws, env, "--json", "status")
    try:
        cursor = json.loads(p.stdout).get("sync", {}).get("cursor")
    except ValueError:
        cursor = None
    check(cursor == pages[-1][2], f"the workspace caught up (cursor {cursor}, feed {pages[-1][2]})")
    p = cli(ws, env, "--json", "show", ulid(N_ITEMS - 1))
    check(p.returncode == 0 and "Large note" in p.stdout, "the last large item is in the workspace")

    # --- eight slow readers of the largest page
    idle = rss(core.proc.pid)
    readers = [SlowReader(h, 45) for _ in range(SLOW_READERS)]
    for r in readers:
        r.start()
    peak = idle

    def all_held():
        nonlocal peak
        peak = max(peak, rss(core.proc.pid))
        held = metric(h, "cortex_pull_page_bytes")
        return held if held >= SLOW_READERS * first_page and all(r.status for r in readers) \
            else None
    held = wait_until(all_held, 15, step=0.25) or metric(h, "cortex_pull_page_bytes")
    check(SLOW_READERS * first_page <= held <= 64 * 1024 * 1024,
          f"the slow readers' pages are held, within the page memory ({held} bytes)")
    end = time.monotonic() + 3
    while time.monotonic() < end:
        peak = max(peak, rss(core.proc.pid))
        time.sleep(0.25)
    busy = h.request("GET", "/v1/sync/pull?since=0&limit=1000")
    try:
        code = json.loads(busy[2])["error"]["code"]
    except (ValueError, KeyError, TypeError):
        code = None
    check(busy[0] == 503 and busy[1] and int(busy[1]) >= 1 and code == "unavailable",
          f"one more large page is answered 503 unavailable with Retry-After "
          f"({busy[0]}, {busy[1]}, {code})")
    st, _, _ = h.request("GET", "/v1/healthz", auth=False, timeout=5)
    check(st == 200, "healthz answers while slow readers hold pages")
    peak = max(peak, rss(core.proc.pid))
    print(f"rss idle {idle >> 20} MiB, peak {peak >> 20} MiB, held {held >> 20} MiB", flush=True)
    check(peak - idle <= RSS_MARGIN,
          f"VmRSS stays within +256 MB of idle ({idle >> 20} -> {peak >> 20} MiB)")

    # --- the send deadline drops them
    for r in readers:
        r.join(90)
    check(all(r.status == 200 for r in readers), f"the slow readers got their page: "
          f"{[r.status for r in readers]}")
    check(all(r.length and r.got < r.length for r in readers),
          f"each slow reader was dropped before it had its page: "
          f"{[(r.got, r.length, r.error) for r in readers]}")
    check(all(r.ended is not None and r.ended < 36 for r in readers),
          f"within the send deadline: {[round(r.ended or -1, 1) for r in readers]}")
    check(wait_until(lambda: metric(h, "cortex_pull_pages_dropped_total") == SLOW_READERS, 10),
          "the drops are counted in /metrics")
    check(wait_until(lambda: metric(h, "cortex_pull_page_bytes") == 0, 10),
          "the page memory is given back")
    peak = max(peak, rss(core.proc.pid))
    st, _, raw = h.request("GET", "/v1/sync/pull?since=0&limit=1000")
    check(st == 200 and len(raw) == first_page, "a full pull is served again")
    check(peak - idle <= RSS_MARGIN, f"VmRSS stayed within +256 MB ({peak >> 20} MiB)")
    core.stop()


if __name__ == "__main__":
    run("cortex-pages-", tests)
