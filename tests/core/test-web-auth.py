#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The review app's server side (issue 14) at the HTTP level, against real
cortex-core processes over HTTPS on 127.0.0.1, on SQLite and (with-pg.py)
on PostgreSQL with a second node over the same database:

- the app's files: / and /app/app.js with their types, HEAD, ETag and 304,
  an unknown /app path 404; every response (JSON, files, errors) carries
  the CSP, nosniff, Referrer-Policy and X-Frame-Options headers, and
  Cache-Control no-store on all but the files;
- sign-in: the cookie's flags (HttpOnly, Secure, SameSite=Strict, Path=/,
  Max-Age), the key never echoed, GET /v1/session, the cookie accepted
  where a Bearer key is, sign-out (DELETE) ends it in the database;
- CSRF: a cookie-authenticated decision without or with a wrong
  X-CSRF-Token, or with another Origin, is 403 and decides nothing; an agent
  session is refused (403), another team's session sees 404; Bearer wins
  over a cookie;
- a key revoked with the command line ends its session at once; an
  expired session is 401 (CORTEX_SESSION_TTL); a session made at one node
  is honoured at the other (PostgreSQL), and a revocation at one node ends
  it at the other;
- the keys API: roles (agent/reviewer 403), admin list/create/revoke, the
  created key works, revoke ends it, another team's key is 404, audited;
- hostile input: garbage and huge cookies, an 8 KB Cookie header, sign-in
  bodies that are not JSON, keys too long, bodies over the cap, refused
  sign-ins counted per address (429);
- every new JSON answer validates against protocol/sync/schemas (session.json,
  keys.json, error.json) with test-core.py's validator.

Prints "N passed, N failed"; exits non-zero on a failure."""
import http.client
import importlib.util
import json
import os
import shutil
import sqlite3
import ssl
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "sync"))
from corelib import core, key_id, make_key  # noqa: E402
from synclib import Core, check, make_cert, procs, run  # noqa: E402

URI = os.environ.get("CORTEX_TEST_PG_URI")

# test-core.py's JSON Schema validator (one validator for every core test)
_spec = importlib.util.spec_from_file_location("coretest", os.path.join(HERE, "test-core.py"))
coretest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(coretest)

SECURITY = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self'; connect-src 'self'; font-src 'self'; "
                               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
seen = {"responses": 0, "bad_headers": []}


def conforms(body, ref, what):
    """body validates against ref ("keys.json" or "keys.json#/$defs/created")."""
    base = ref.split("#")[0]
    errs = coretest.validate(body, {"$ref": ref}, base)
    check(not errs, f"{what}: does not match {ref}: {errs[:3]}")


class Web:
    """Requests to one node over TLS, as a browser or a script would send
    them; every answer's security headers are checked on the way."""

    def __init__(self, port, ca):
        self.port = port
        self.ctx = ssl.create_default_context(cafile=ca)
        self.origin = f"https://127.0.0.1:{port}"

    def req(self, method, path, body=None, bearer=None, cookie=None, csrf=None, origin=None,
            raw=None, headers=None):
        """(status, JSON or bytes, {lower-case header: value})."""
        c = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=30, context=self.ctx)
        h = dict(headers or {})
        if bearer:
            h["Authorization"] = "Bearer " + bearer
        if cookie is not None:
            h["Cookie"] = cookie if "=" in cookie else "cortex_session=" + cookie
        if csrf is not None:
            h["X-CSRF-Token"] = csrf
        if origin is not None:
            h["Origin"] = origin
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            h.setdefault("Content-Type", "application/json")
        try:
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            payload = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            status = r.status
        finally:
            c.close()
        seen["responses"] += 1
        bad = [k for k, v in SECURITY.items() if hdrs.get(k) != v]
        cache = hdrs.get("cache-control")
        if not (path == "/" or path.startswith("/app/")) and cache != "no-store":
            bad.append(f"cache-control {cache!r}")
        if bad:
            seen["bad_headers"].append(f"{method} {path} {status}: {bad}")
        js = payload
        if hdrs.get("content-type", "").startswith("application/json") and payload:
            js = json.loads(payload)
        return status, js, hdrs

    def signin(self, key, **kw):
        """(status, body, cookie token or None, Set-Cookie text)."""
        st, js, h = self.req("POST", "/v1/session", {"key": key}, **kw)
        sc = h.get("set-cookie", "")
        tok = None
        if sc.startswith("cortex_session="):
            tok = sc.split(";")[0].split("=", 1)[1] or None
        return st, js, tok, sc


def draft(n, title):
    t = f"2026-12-07T00:00:{n:02d}Z"
    ids = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    i = "01JD" + "".join(ids[(n * 7 + k) % 32] for k in range(22))
    return {"id": i, "kind": "draft", "status": "pending", "title": title, "body": "b",
            "tags": ["x"], "author": "ann", "created_at": t, "updated_at": t,
            "visibility": "shared"}


def push_draft(w, agent, n, title):
    d = draft(n, title)
    st, js, _ = w.req("POST", "/v1/sync/push", {"ops": [{"op_id": f"d{n}", "op": "item.put",
                                                          "item": d}]}, bearer=agent)
    check(st == 200 and js["results"][0]["status"] == "applied", f"push draft {n}: {st} {js}")
    return d["id"]


def queue_ids(w, bearer):
    st, js, _ = w.req("GET", "/v1/review/queue", bearer=bearer)
    return [d["id"] for d in js.get("drafts", [])] if st == 200 else None


def audit_entries(data):
    p = core("verify-audit", data)
    try:
        return int(p.stdout.split(":")[1].split()[0])
    except (IndexError, ValueError):
        return -1


def assets(w, label):
    st, body, h = w.req("GET", "/")
    check(st == 200 and h.get("content-type", "").startswith("text/html") and
          b"/app/app.js" in body and b"<script>" not in body.replace(b" ", b""),
          f"{label}: / is the app's page: {st} {h.get('content-type')}")
    check(h.get("cache-control") == "no-cache" and h.get("etag"), f"{label}: / has an ETag, no-cache")
    st, js_body, h = w.req("GET", "/app/app.js")
    check(st == 200 and h.get("content-type", "").startswith("text/javascript") and len(js_body) > 0,
          f"{label}: /app/app.js is javascript: {st} {h.get('content-type')}")
    etag = h.get("etag")
    st, _, h = w.req("GET", "/app/app.css")
    check(st == 200 and h.get("content-type", "").startswith("text/css"),
          f"{label}: /app/app.css is css: {st} {h.get('content-type')}")
    st, body, h = w.req("HEAD", "/app/app.js")
    check(st == 200 and body == b"" and h.get("content-length") == str(len(js_body)) and
          h.get("etag") == etag, f"{label}: HEAD /app/app.js: headers, no body: {st} {h}")
    st, body, h = w.req("GET", "/app/app.js", headers={"If-None-Match": etag})
    check(st == 304 and body == b"", f"{label}: If-None-Match with the ETag: 304: {st}")
    for bad in ("/app/nope.js", "/app/", "/app/../secret", "/app/index.html/x", "/index.html"):
        st, js, _ = w.req("GET", bad)
        check(st == 404, f"{label}: {bad} is 404: {st}")
    st, js, _ = w.req("POST", "/app/app.js", raw=b"x")
    check(st == 405, f"{label}: POST to a file is 405: {st}")
    st, js, _ = w.req("GET", "/v1/healthz")
    check(st == 200, f"{label}: healthz")


def sessions(w, data, keys, label, w_other=None):
    admin, rev, agent, other_rev = keys["admin"], keys["rev"], keys["agent"], keys["other_rev"]

    # --- sign in: the cookie, the body, the key never echoed
    st, js, tok, sc = w.signin(rev)
    check(st == 200 and tok, f"{label}: a reviewer signs in: {st} {js}")
    conforms(js, "session.json", f"{label}: POST /v1/session")
    flags = [f.strip() for f in sc.split(";")]
    check("HttpOnly" in flags and "Secure" in flags and "SameSite=Strict" in flags and
          "Path=/" in flags and "Max-Age=43200" in flags,
          f"{label}: the cookie is HttpOnly, Secure, SameSite=Strict, Path=/, Max-Age=43200: {sc}")
    check(len(tok) == 43, f"{label}: the token is 32 random bytes in base64url: {tok!r}")
    check(rev not in json.dumps(js) and rev[21:] not in sc,
          f"{label}: the key is not echoed in the body or the cookie")
    check(js["role"] == "reviewer" and js["team"] == "T" and js["key_id"] == key_id(rev),
          f"{label}: the session is the key's team and role: {js}")
    csrf = js["csrf"]
    st2, js2, tok2, _ = w.signin(rev)
    check(st2 == 200 and tok2 != tok and js2["csrf"] != csrf,
          f"{label}: each sign-in is a new session with its own CSRF token")

    st, js, _ = w.req("GET", "/v1/session", cookie=tok)
    check(st == 200 and js.get("csrf") == csrf and js.get("role") == "reviewer",
          f"{label}: GET /v1/session with the cookie: {st} {js}")
    conforms(js, "session.json", f"{label}: GET /v1/session")
    st, js, _ = w.req("GET", "/v1/session")
    check(st == 401, f"{label}: GET /v1/session without a cookie: 401: {st}")
    conforms(js, "error.json", f"{label}: 401")
    st, js, _ = w.req("GET", "/v1/session", bearer=rev)
    check(st == 401, f"{label}: GET /v1/session is about a cookie, not a Bearer key: {st}")
    st, js, _ = w.req("GET", "/v1/info", cookie=tok)
    check(st == 200 and js.get("role") == "reviewer" and js.get("team") == "T",
          f"{label}: the cookie authenticates /v1/info: {st} {js}")

    # --- CSRF on a decision: nothing decided without the token or from elsewhere
    d1 = push_draft(w, agent, 1, "first draft")
    d2 = push_draft(w, agent, 2, "second draft")
    path = f"/v1/drafts/{d1}/decision"
    dec = {"decision": "approve", "note": "looks right"}
    st, js, _ = w.req("POST", path, dec, cookie=tok)
    check(st == 403 and js.get("error", {}).get("code") == "csrf",
          f"{label}: a decision with the cookie and no X-CSRF-Token: 403 csrf: {st} {js}")
    conforms(js, "error.json", f"{label}: 403 csrf")
    st, js, _ = w.req("POST", path, dec, cookie=tok, csrf="A" * 43)
    check(st == 403 and js.get("error", {}).get("code") == "csrf",
          f"{label}: a wrong X-CSRF-Token: 403: {st} {js}")
    st, js, _ = w.req("POST", path, dec, cookie=tok, csrf=js2["csrf"])
    check(st == 403, f"{label}: another session's CSRF token: 403: {st}")
    st, js, _ = w.req("POST", path, dec, cookie=tok, csrf=csrf, origin="https://evil.example")
    check(st == 403 and js.get("error", {}).get("code") == "csrf",
          f"{label}: the right token from another Origin: 403: {st} {js}")
    st, js, _ = w.req("POST", path, dec, cookie=tok, csrf=csrf, origin="http://127.0.0.1:%d" % w.port)
    check(st == 403, f"{label}: an http:// Origin: 403: {st}")
    check(d1 in (queue_ids(w, rev) or []), f"{label}: nothing was decided by the refused requests")
    st, js, _ = w.req("POST", path, dec, cookie=tok, csrf=csrf, origin=w.origin)
    check(st == 200 and js.get("item", {}).get("kind") == "thread",
          f"{label}: with the token and this Origin the decision is made: {st} {js}")
    check(d1 not in (queue_ids(w, rev) or ["?"]), f"{label}: the approved draft left the queue")

    # --- an agent session may read, not decide; another team sees nothing
    st, ajs, atok, _ = w.signin(agent)
    check(st == 200 and ajs.get("role") == "agent", f"{label}: an agent key signs in (read-only)")
    st, q, _ = w.req("GET", "/v1/review/queue", cookie=atok)
    check(st == 200 and d2 in [d["id"] for d in q.get("drafts", [])],
          f"{label}: an agent session reads the queue: {st}")
    st, js, _ = w.req("POST", f"/v1/drafts/{d2}/decision", {"decision": "approve"}, cookie=atok,
                      csrf=ajs["csrf"])
    check(st == 403 and js.get("error", {}).get("code") == "forbidden",
          f"{label}: an agent session cannot decide: {st} {js}")
    st, js, otok, _ = w.signin(other_rev)
    ocsrf = js["csrf"]
    st, js, _ = w.req("POST", f"/v1/drafts/{d2}/decision", {"decision": "approve"}, cookie=otok,
                      csrf=ocsrf)
    check(st == 404, f"{label}: another team's reviewer session: 404 for the draft: {st} {js}")
    st, q, _ = w.req("GET", "/v1/review/queue", cookie=otok)
    check(st == 200 and q.get("drafts") == [], f"{label}: another team's queue is empty: {q}")
    # Bearer wins over the cookie: an agent key with a reviewer's cookie is an agent
    st, js, _ = w.req("POST", f"/v1/drafts/{d2}/decision", {"decision": "approve"}, bearer=agent,
                      cookie=tok)
    check(st == 403 and js.get("error", {}).get("code") == "forbidden",
          f"{label}: Bearer and cookie: judged by the Bearer key (agent: 403): {st} {js}")
    st, js, _ = w.req("GET", "/v1/info", bearer="cxk_0000000000000000_nope", cookie=tok)
    check(st == 401, f"{label}: a bad Bearer key with a good cookie: 401: {st}")
    check(d2 in (queue_ids(w, rev) or []), f"{label}: d2 is still undecided")

    # --- sign-out: 204, the cookie cleared, the session over
    st, js, _ = w.req("DELETE", "/v1/session", cookie=tok2)
    check(st == 403, f"{label}: DELETE /v1/session without the CSRF token: 403: {st}")
    st, body, h = w.req("DELETE", "/v1/session", cookie=tok2, csrf=js2["csrf"], origin=w.origin)
    sc = h.get("set-cookie", "")
    check(st == 204 and body == b"", f"{label}: sign-out: 204: {st} {body!r}")
    check(sc.startswith("cortex_session=;") and "Max-Age=0" in sc and "HttpOnly" in sc,
          f"{label}: sign-out clears the cookie: {sc}")
    st, js, _ = w.req("GET", "/v1/session", cookie=tok2)
    check(st == 401, f"{label}: after sign-out GET /v1/session: 401: {st}")
    st, js, _ = w.req("GET", "/v1/info", cookie=tok2)
    check(st == 401, f"{label}: after sign-out the cookie authenticates nothing: {st}")
    st, js, _ = w.req("GET", "/v1/session", cookie=tok)
    check(st == 200, f"{label}: the other session of the same key lives on: {st}")

    # --- a second node shares the sessions (PostgreSQL)
    if w_other:
        st, js, _ = w_other.req("GET", "/v1/session", cookie=tok)
        check(st == 200 and js.get("csrf") == csrf,
              f"{label}: the session made at node 1 works at node 2: {st} {js}")
        st, js, _ = w_other.req("GET", "/v1/session", cookie=tok2)
        check(st == 401, f"{label}: the session ended at node 1 is ended at node 2: {st}")

    # --- the command line revokes the key: its sessions end at once
    st, js, ctok, _ = w.signin(keys["rev2"])
    st, js, _ = w.req("GET", "/v1/session", cookie=ctok)
    check(st == 200, f"{label}: rev2 signed in: {st}")
    p = core("keys", "revoke", data, key_id(keys["rev2"]))
    check(p.returncode == 0, f"{label}: keys revoke: {p.stderr}")
    for node in [w] + ([w_other] if w_other else []):
        st, js, _ = node.req("GET", "/v1/session", cookie=ctok)
        check(st == 401, f"{label}: revoked with the CLI: the session is 401 at once: {st} {js}")
        st, js, _ = node.req("GET", "/v1/review/queue", cookie=ctok)
        check(st == 401, f"{label}: revoked with the CLI: the queue is 401 at once: {st}")
    st, js, _, sc = w.signin(keys["rev2"])
    check(st == 401 and not sc, f"{label}: a revoked key cannot sign in: {st} {js}")
    return tok, csrf


def keys_api(w, data, keys, label, w_other=None):
    admin, rev, agent = keys["admin"], keys["rev"], keys["agent"]
    for who in ("agent", "rev"):
        st, js, _ = w.req("GET", "/v1/keys", bearer=keys[who])
        check(st == 403, f"{label}: GET /v1/keys as {who}: 403: {st}")
        st, js, _ = w.req("POST", "/v1/keys", {"name": "x", "role": "admin"}, bearer=keys[who])
        check(st == 403, f"{label}: POST /v1/keys as {who}: 403: {st}")
        st, js, _ = w.req("POST", f"/v1/keys/{key_id(admin)}/revoke", bearer=keys[who])
        check(st == 403, f"{label}: revoke as {who}: 403: {st}")
    st, js, _ = w.req("GET", "/v1/keys", bearer=admin)
    check(st == 200, f"{label}: GET /v1/keys as admin: {st} {js}")
    conforms(js, "keys.json", f"{label}: GET /v1/keys")
    ids = {k["key_id"] for k in js.get("keys", [])}
    check(key_id(admin) in ids and key_id(rev) in ids and key_id(keys["other_rev"]) not in ids,
          f"{label}: the list holds the team's keys only: {ids}")
    check(all(k["key_id"] != key_id(keys["rev2"]) or k["revoked_at"] for k in js["keys"]),
          f"{label}: the revoked key shows revoked_at")
    check(admin not in json.dumps(js), f"{label}: no key text in the list")

    before = audit_entries(data)
    # the admin's browser session: CSRF applies to the keys API too
    st, s, atok, _ = w.signin(admin)
    st, js, _ = w.req("POST", "/v1/keys", {"name": "web-made", "role": "agent"}, cookie=atok)
    check(st == 403, f"{label}: POST /v1/keys with the cookie and no CSRF token: 403: {st}")
    st, js, _ = w.req("POST", "/v1/keys", {"name": "web-made", "role": "agent"}, cookie=atok,
                      csrf=s["csrf"], origin=w.origin)
    check(st == 201 and js.get("key", "").startswith("cxk_") and js.get("role") == "agent",
          f"{label}: an admin makes a key: {st} {js}")
    conforms(js, "keys.json#/$defs/created", f"{label}: POST /v1/keys")
    made = js.get("key", "")
    st, info, _ = w.req("GET", "/v1/info", bearer=made)
    check(st == 200 and info.get("role") == "agent" and info.get("team") == "T",
          f"{label}: the key made through the API works: {st} {info}")
    if w_other:
        st, info, _ = w_other.req("GET", "/v1/info", bearer=made)
        check(st == 200, f"{label}: and at the other node: {st}")
    for bad, what in (({"name": "x", "role": "root"}, "a bad role"), ({"role": "agent"}, "no name"),
                      ({"name": "", "role": "agent"}, "an empty name"),
                      ({"name": "a\u0001b", "role": "agent"}, "a control character"),
                      ({"name": "x" * 200, "role": "agent"}, "a long name"), ([1], "an array")):
        st, js, _ = w.req("POST", "/v1/keys", bad, bearer=admin)
        check(st == 400, f"{label}: POST /v1/keys with {what}: 400: {st} {js}")
    st, js, _ = w.req("POST", "/v1/keys", raw=b"{nope", bearer=admin)
    check(st == 400, f"{label}: POST /v1/keys with a body that is not JSON: 400: {st}")

    kid = key_id(made)
    st, js, _ = w.req("POST", f"/v1/keys/{kid}/revoke", bearer=admin)
    check(st == 200 and js.get("key_id") == kid and js.get("revoked_at"),
          f"{label}: an admin revokes it: {st} {js}")
    conforms(js, "keys.json#/$defs/revoked", f"{label}: revoke")
    for node in [w] + ([w_other] if w_other else []):
        st, info, _ = node.req("GET", "/v1/info", bearer=made)
        check(st == 401, f"{label}: the revoked key is refused at once: {st}")
    st, js, _ = w.req("POST", f"/v1/keys/{kid}/revoke", bearer=admin)
    check(st == 409, f"{label}: revoking it again: 409: {st} {js}")
    st, js, _ = w.req("POST", f"/v1/keys/{key_id(keys['other_rev'])}/revoke", bearer=admin)
    check(st == 404, f"{label}: another team's key: 404: {st} {js}")
    for bad in ("zzzz", "0000000000000000", "A" * 16, "x" * 80):
        st, js, _ = w.req("POST", f"/v1/keys/{bad}/revoke", bearer=admin)
        check(st == 404, f"{label}: revoke {bad[:20]}: 404: {st}")
    st, js, _ = w.req("GET", f"/v1/keys/{kid}/revoke", bearer=admin)
    check(st == 405, f"{label}: GET on revoke: 405: {st}")
    st, js, _ = w.req("DELETE", "/v1/keys", bearer=admin)
    check(st == 405, f"{label}: DELETE /v1/keys: 405: {st}")
    after = audit_entries(data)
    check(after == before + 2, f"{label}: key.create and key.revoke were audited: {before} -> {after}")
    p = core("verify-audit", data)
    check(p.returncode == 0, f"{label}: the audit chain verifies: {p.stdout} {p.stderr}")
    # revoking one's own key through the session ends the session
    own = make_key(data, "T", "admin", "own-admin")
    st, s, otok, _ = w.signin(own)
    st, js, _ = w.req("POST", f"/v1/keys/{key_id(own)}/revoke", cookie=otok, csrf=s["csrf"])
    check(st == 200, f"{label}: an admin may revoke its own key: {st} {js}")
    st, js, _ = w.req("GET", "/v1/session", cookie=otok)
    check(st == 401, f"{label}: ... which ends its session: {st}")


def hostile(w, keys, label):
    rev = keys["rev"]
    for tok, what in (("garbage", "garbage"), ("A" * 43, "a well-formed unknown token"),
                      ("A" * 5000, "a huge token"), ("%00%ff" * 10, "escapes"),
                      ("", "an empty value")):
        st, js, _ = w.req("GET", "/v1/session", cookie="cortex_session=" + tok)
        check(st == 401, f"{label}: a cookie with {what}: 401: {st}")
        st, js, _ = w.req("GET", "/v1/review/queue", cookie="cortex_session=" + tok)
        check(st == 401, f"{label}: the queue with {what}: 401: {st}")
    big = "; ".join(f"c{i}=" + "v" * 60 for i in range(130))
    st, js, _ = w.req("GET", "/v1/session", cookie=big)
    check(st in (401, 431), f"{label}: an 8 KB Cookie header: refused, no crash: {st}")
    st, js, tok, _ = w.signin(rev)
    st, js, _ = w.req("GET", "/v1/session", cookie=big + "; cortex_session=" + tok + "; z=1")
    check(st == 200, f"{label}: the session cookie found among many: {st}")
    st, js, _ = w.req("GET", "/v1/healthz")
    check(st == 200, f"{label}: alive after hostile cookies: {st}")

    for raw, code, what in ((b"not json", 400, "not JSON"), (b"[]", 400, "an array"),
                            (b'{"key": 5}', 400, "a number key"), (b"{}", 400, "no key"),
                            (b'{"key":"a","key":"b"}', 400, "a duplicate member"),
                            (json.dumps({"key": "cxk_" + "a" * 300}).encode(), 401, "a key too long"),
                            (json.dumps({"key": "x" * 20000}).encode(), 413, "a body over the cap"),
                            (b"", 400, "an empty body")):
        st, js, h = w.req("POST", "/v1/session", raw=raw)
        check(st == code and "set-cookie" not in h, f"{label}: sign-in with {what}: {code}: {st} {js}")
        if isinstance(js, dict):
            conforms(js, "error.json", f"{label}: sign-in with {what}")
    st, js, _, sc = w.signin(rev + "x")
    check(st == 401 and not sc, f"{label}: a wrong key: 401, no cookie: {st}")
    msg_wrong = js.get("error", {}).get("message")
    st, js, _, _ = w.signin("cxk_0123456789abcdef_" + "A" * 43)
    check(st == 401 and js.get("error", {}).get("message") == msg_wrong,
          f"{label}: an unknown key: 401 with the same message: {js}")
    st, js, _, sc = w.signin(rev, origin="https://evil.example")
    check(st == 403 and not sc, f"{label}: sign-in from another Origin: 403: {st}")
    st, js, _, sc = w.signin(rev, origin=w.origin)
    check(st == 200 and sc, f"{label}: sign-in from this Origin: {st}")


def concurrent(w, keys, label, w_other=None):
    """Sign-ins at once (on both nodes when there are two): every one gets
    its own session, and every session checks out at every node."""
    nodes = [w] + ([w_other] if w_other else [])
    out = [None] * 24

    def one(i):
        try:
            st, js, tok, _ = nodes[i % len(nodes)].signin(keys["rev"] if i % 2 else keys["agent"])
            out[i] = (st, tok)
        except Exception as e:  # counted below
            out[i] = (repr(e), None)
    ts = [threading.Thread(target=one, args=(i,)) for i in range(len(out))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    check(all(o and o[0] == 200 and o[1] for o in out),
          f"{label}: {len(out)} sign-ins at once all succeed: {[o and o[0] for o in out]}")
    toks = {o[1] for o in out if o and o[1]}
    check(len(toks) == len(out), f"{label}: each got its own token ({len(toks)})")
    ok = all(n.req("GET", "/v1/session", cookie=t)[0] == 200 for t in toks for n in nodes)
    check(ok, f"{label}: every concurrent session checks out at every node")


def plain(tmp, data, rev, label):
    """A core serving plain HTTP on loopback: the page's own origin is
    http://<Host>, which it accepts; other origins stay refused."""
    c = Core(tmp, data)
    c.start()

    def signin(origin):
        conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=30)
        try:
            conn.request("POST", "/v1/session", body=json.dumps({"key": rev}).encode(),
                         headers={"Origin": origin, "Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            return r.status
        finally:
            conn.close()
    here = f"127.0.0.1:{c.port}"
    check(signin("http://" + here) == 200, f"{label}: plain HTTP core: its own http origin signs in")
    check(signin("https://" + here) == 200, f"{label}: plain HTTP core: the https origin too")
    check(signin("http://evil.example") == 403, f"{label}: plain HTTP core: another origin: 403")
    check(signin("http://" + here + ".evil") == 403, f"{label}: plain HTTP core: a suffix: 403")
    c.stop()


def rate(tmp, data, cert, key, label):
    """Refused sign-ins count against the address's bucket like refused keys."""
    c = Core(tmp, data, (cert, key), extra=["--rate-limit", "0.01", "--burst", "3"])
    c.start()
    w = Web(c.port, cert)
    codes = [w.signin("cxk_0123456789abcdef_" + "B" * 43)[0] for _ in range(4)]
    check(codes == [401, 401, 401, 429], f"{label}: refused sign-ins: 401 x3 then 429: {codes}")
    c.stop()


def expiry(tmp, data, cert, key, rev, label):
    os.environ["CORTEX_SESSION_TTL"] = "2"
    try:
        c = Core(tmp, data, (cert, key))
        c.start()
    finally:
        del os.environ["CORTEX_SESSION_TTL"]
    w = Web(c.port, cert)
    st, js, tok, sc = w.signin(rev)
    check(st == 200 and "Max-Age=2" in sc, f"{label}: CORTEX_SESSION_TTL=2: Max-Age=2: {sc}")
    st, js, _ = w.req("GET", "/v1/session", cookie=tok)
    check(st == 200, f"{label}: the short session works at first: {st}")
    end = time.monotonic() + 15
    st = 200
    while st == 200 and time.monotonic() < end:
        time.sleep(0.5)
        st = w.req("GET", "/v1/session", cookie=tok)[0]
    check(st == 401, f"{label}: the expired session is 401: {st}")
    st, js, _ = w.req("GET", "/v1/info", cookie=tok)
    check(st == 401, f"{label}: the expired session authenticates nothing: {st}")
    c.stop()
    p = subprocess.run([os.environ["CORTEX_CORE"], "serve", data, "--listen", "127.0.0.1:0"],
                       env=dict(os.environ, CORTEX_SESSION_TTL="abc"), capture_output=True,
                       text=True, timeout=30)
    check(p.returncode == 2 and "CORTEX_SESSION_TTL" in p.stderr,
          f"{label}: a bad CORTEX_SESSION_TTL is refused: {p.returncode} {p.stderr}")


def backend(tmp, label, init_args):
    data = os.path.join(tmp, label)
    p = core("init", data, "--team", "T", "--name", "admin", *init_args)
    check(p.returncode == 0, f"{label}: init: {p.stderr}")
    keys = {"admin": p.stdout.strip().split()[0],
            "rev": make_key(data, "T", "reviewer", "rev-1"),
            "rev2": make_key(data, "T", "reviewer", "rev-2"),
            "agent": make_key(data, "T", "agent", "agent-1"),
            "other_rev": make_key(data, "U", "reviewer", "other-rev")}
    if not init_args:  # a database made before the sessions table: serving adds it
        db = sqlite3.connect(os.path.join(data, "core.db"))
        db.execute("DROP TABLE sessions")
        db.commit()
        db.close()
    cert, key = make_cert(tmp)
    n1 = Core(tmp, data, (cert, key))
    n1.start()
    w = Web(n1.port, cert)
    w2 = None
    if init_args:  # PostgreSQL: a second node over the same database
        d2 = data + "-node2"
        os.makedirs(d2, mode=0o700)
        for f in ("secret", "database"):
            shutil.copy2(os.path.join(data, f), os.path.join(d2, f))
        n2 = Core(tmp, d2, (cert, key))
        n2.start()
        w2 = Web(n2.port, cert)
    assets(w, label)
    sessions(w, data, keys, label, w2)
    keys_api(w, data, keys, label, w2)
    hostile(w, keys, label)
    concurrent(w, keys, label, w2)
    rate(tmp, data, cert, key, label)
    if not init_args:
        plain(tmp, data, keys["rev"], label)
    expiry(tmp, data, cert, key, keys["rev"], label)
    check(not seen["bad_headers"],
          f"{label}: every response carries the security headers: {seen['bad_headers'][:5]}")
    check(seen["responses"] > 100, f"{label}: {seen['responses']} responses checked")
    seen["bad_headers"].clear()
    n1.stop()
    if w2:
        n2.stop()


def openapi():
    """The paths served here are described in openapi.yaml."""
    with open(os.path.join(os.environ["SCHEMAS"], "..", "openapi.yaml")) as f:
        text = f.read()
    for path in ("/v1/session:", "/v1/keys:", "/v1/keys/{key_id}/revoke:", "  /:", "/app/{file}:",
                 "schemas/session.json", "schemas/keys.json", "in: cookie"):
        check(path in text, f"openapi.yaml describes {path}")


def tests(tmp):
    openapi()
    backend(tmp, "sqlite", [])
    if URI:
        backend(tmp, "pg", ["--database", URI])
    else:
        print("test-web-auth: PostgreSQL is missing (CORTEX_TEST_PG_URI unset): SQLite only",
              flush=True)


if __name__ == "__main__":
    run("cx-web-auth-", tests)
