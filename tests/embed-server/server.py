#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A scriptable OpenAI-compatible embeddings server for the tests (stdlib only).

    server.py [--port 0] [--dim 8] [--time-limit 300]

Listens on 127.0.0.1 and prints the port it got on the first line of stdout.
Exits when its stdin closes (so a test that dies never leaves it behind) or
after --time-limit seconds.

POST /v1/embeddings  {"model": M, "input": [texts] | text}
    answers {"object": "list", "data": [{"index": i, "embedding": [...]}, ...]}
    with deterministic, deliberately unnormalised vectors derived from a hash
    of (model, text), listed in reverse index order (clients must place rows
    by "index").  The dimension is model_dims[M] if set, else dim.

POST /control  {"mode": ..., "count": N, "retry_after": S, "dim": D,
                "model_dims": {model: dim}, "reset": true}
    mode is one of
      ok           answer normally
      fail503      503 with a JSON error (and Retry-After if retry_after is set)
      fail429      429 (and Retry-After if retry_after is set)
      fail400      400 (a client error; must not be retried)
      echo_auth    401 whose body echoes the Authorization header received
      hang         hold the request (until the mode changes, at most 30 s),
                   then close the connection without an answer
      close        close the connection without an answer
      wrong_dim    the first vector has one dimension too many
      wrong_count  one vector fewer than inputs
      huge_value   one value is 1e39 (finite in JSON, not a float)
      bad_json     a 200 whose body is not JSON
    count N applies the mode to the next N requests, then returns to ok
    (without count the mode stays).  reset clears the statistics.

GET /stats
    {"requests": all POSTs to /v1/embeddings, "inputs": inputs answered,
     "batches": [sizes of answered requests], "texts": [answered inputs in
     order, at most 10000], "last_auth": Authorization of the last request,
     "models": [model of each answered request]}
"""

import argparse
import hashlib
import json
import os
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 64 << 20
MODES = {"ok", "fail503", "fail429", "fail400", "echo_auth", "hang", "close",
         "wrong_dim", "wrong_count", "huge_value", "bad_json"}

lock = threading.Lock()
state = {"mode": "ok", "count": None, "retry_after": None, "dim": 8,
         "model_dims": {}}
stats = {}


def reset_stats():
    stats.update(requests=0, inputs=0, batches=[], texts=[], last_auth=None,
                 models=[])


def vector(model, text, dim):
    seed = hashlib.sha256(model.encode() + b"\0" + text.encode()).digest()
    rng = random.Random(int.from_bytes(seed, "big"))
    scale = 1 + seed[0] % 5  # not unit length: the client normalises
    return [scale * rng.uniform(-1.0, 1.0) for _ in range(dim)]


def take_mode():
    """The mode for this request, counting down a limited one."""
    with lock:
        mode = state["mode"]
        if state["count"] is not None:
            state["count"] -= 1
            if state["count"] <= 0:
                state["mode"], state["count"] = "ok", None
        return mode, state["retry_after"]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # stdout carries the port only
        pass

    def reply(self, status, body, headers=()):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n < 0 or n > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(n)

    def do_GET(self):
        if self.path != "/stats":
            return self.reply(404, {"error": {"message": "not found"}})
        with lock:
            body = dict(stats)
        self.reply(200, body)

    def do_POST(self):
        try:
            raw = self.read_body()
        except ValueError:
            self.close_connection = True
            return self.reply(413, {"error": {"message": "too large"}})
        if self.path == "/control":
            return self.control(raw)
        if self.path != "/v1/embeddings":
            return self.reply(404, {"error": {"message": "not found"}})
        with lock:
            stats["requests"] += 1
            stats["last_auth"] = self.headers.get("Authorization")
        mode, retry_after = take_mode()
        extra = [("Retry-After", str(retry_after))] if retry_after is not None else []
        if mode == "fail503":
            return self.reply(503, {"error": {"message": "model is loading"}}, extra)
        if mode == "fail429":
            return self.reply(429, {"error": {"message": "rate limited"}}, extra)
        if mode == "fail400":
            return self.reply(400, {"error": {"message": "bad input"}})
        if mode == "echo_auth":
            auth = self.headers.get("Authorization") or ""
            return self.reply(401, {"error": {"message": "invalid key: " + auth}})
        if mode == "hang":
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with lock:
                    if state["mode"] != "hang":
                        break
                time.sleep(0.02)
            self.close_connection = True
            return
        if mode == "close":
            self.close_connection = True
            return
        if mode == "bad_json":
            return self.reply(200, b"{this is not json")

        try:
            req = json.loads(raw)
            model = req["model"]
            texts = req["input"]
            if isinstance(texts, str):
                texts = [texts]
            if not isinstance(model, str) or not all(isinstance(t, str) for t in texts):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return self.reply(400, {"error": {"message": "malformed request"}})
        with lock:
            dim = state["model_dims"].get(model, state["dim"])
            stats["inputs"] += len(texts)
            stats["batches"].append(len(texts))
            stats["models"].append(model)
            room = 10000 - len(stats["texts"])
            stats["texts"].extend(texts[:max(room, 0)])
        data = [{"object": "embedding", "index": i, "embedding": vector(model, t, dim)}
                for i, t in enumerate(texts)]
        if mode == "wrong_dim" and data:
            data[0]["embedding"].append(0.5)
        if mode == "wrong_count" and data:
            data.pop()
        data.reverse()
        body = {"object": "list", "data": data, "model": model,
                "usage": {"prompt_tokens": 0, "total_tokens": 0}}
        out = json.dumps(body)
        if mode == "huge_value" and data:
            first = json.dumps(data[0]["embedding"][0])
            out = out.replace(first, "1e39", 1)
        self.reply(200, out.encode())

    def control(self, raw):
        try:
            req = json.loads(raw or b"{}")
            if not isinstance(req, dict):
                raise ValueError
            with lock:
                if "mode" in req:
                    if req["mode"] not in MODES:
                        raise ValueError
                    state["mode"] = req["mode"]
                    state["count"] = req.get("count")
                if "retry_after" in req:
                    state["retry_after"] = req["retry_after"]
                if "dim" in req:
                    state["dim"] = int(req["dim"])
                if "model_dims" in req:
                    state["model_dims"] = {str(k): int(v) for k, v in req["model_dims"].items()}
                if req.get("reset"):
                    reset_stats()
        except (ValueError, TypeError, AttributeError):
            return self.reply(400, {"error": {"message": "bad control request"}})
        self.reply(200, {"ok": True})


def watch_stdin():
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        os._exit(0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--dim", type=int, default=8)
    ap.add_argument("--time-limit", type=float, default=300)
    args = ap.parse_args()
    state["dim"] = args.dim
    reset_stats()

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    threading.Thread(target=watch_stdin, daemon=True).start()
    timer = threading.Timer(args.time_limit, lambda: os._exit(2))
    timer.daemon = True
    timer.start()
    sys.stdout.write("%d\n" % server.server_address[1])
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
