#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""cortexd with an OpenAI-compatible embedding service (issue 3, "Done when").

A real cortexd in a fresh git repository, configured through .cortex/config
to use tests/embed-server/server.py on 127.0.0.1, is driven over MCP:

1. batching: a batch of observations is embedded by the background thread
   in requests of at most embed.batch texts, and every item gets a vector;
2. outage: with the service failing, hybrid search still answers, from
   keywords, and says it is degraded; observations are still recorded and
   wait for their vectors;
3. recovery: once the service answers again, search is no longer degraded
   and the waiting items get their vectors;
4. model change: after embed.model changes, cortexd re-embeds every item
   for the new model in the background.

Every wait is bounded. Prints "N passed, N failed"; exits 1 on failure.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

CORTEXD = os.environ.get("CORTEXD")
SERVER = os.environ.get("EMBED_SERVER")
passed = failed = 0


def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print("ok      " + what)
    else:
        failed += 1
        print("FAILED  %s %s" % (what, detail))


class Server:
    def __init__(self):
        self.p = subprocess.Popen([sys.executable, SERVER, "--port", "0", "--dim", "16",
                                   "--time-limit", "240"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.port = int(self.p.stdout.readline().strip())
        self.url = "http://127.0.0.1:%d" % self.port

    def post(self, path, body):
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"{}")

    def stats(self):
        with urllib.request.urlopen(self.url + "/stats", timeout=10) as r:
            return json.loads(r.read())

    def stop(self):
        try:
            self.p.stdin.close()
            self.p.wait(timeout=10)
        except Exception:
            self.p.kill()


class Cortexd:
    def __init__(self, ws):
        self.p = subprocess.Popen([CORTEXD, "--workspace", ws], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.next = 0
        self.request("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                    "clientInfo": {"name": "embed-test", "version": "1"}})
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def send(self, msg):
        self.p.stdin.write(json.dumps(msg) + "\n")
        self.p.stdin.flush()

    def request(self, method, params):
        self.next += 1
        self.send({"jsonrpc": "2.0", "id": self.next, "method": method, "params": params})
        line = self.p.stdout.readline()  # cortexd answers in order, one line each
        if not line:
            raise RuntimeError("cortexd closed stdout: " + self.p.stderr.read()[-2000:])
        return json.loads(line)

    def call(self, tool, args):
        res = self.request("tools/call", {"name": tool, "arguments": args})["result"]
        return res.get("structuredContent"), res.get("isError")

    def embeddings(self, model):
        st, _ = self.call("status", {})
        for m in st["store"]["embeddings"]["models"]:
            if m["model"] == model:
                return m
        return None

    def wait_embedded(self, model, want, seconds=30):
        deadline = time.time() + seconds
        m = None
        while time.time() < deadline:
            m = self.embeddings(model)
            if m and m["pending"] == 0 and m["vectors"] >= want:
                return m
            time.sleep(0.2)
        return m

    def close(self):
        try:
            self.p.stdin.close()
            self.p.wait(timeout=10)
        except Exception:
            self.p.kill()
            self.p.wait()


def write_config(ws, url, model):
    with open(os.path.join(ws, ".cortex", "config"), "w") as f:
        f.write("[embed]\n\tprovider = http\n\turl = %s\n\tmodel = %s\n\tbatch = 8\n"
                "\ttimeoutMs = 1000\n\tbreakerCooldownMs = 500\n" % (url, model))


def main():
    if not CORTEXD or not SERVER:
        print("set CORTEXD and EMBED_SERVER")
        return 1
    ws = tempfile.mkdtemp(prefix="cortex-embed-")
    server = Server()
    d = None
    try:
        subprocess.run(["git", "init", "-q", ws], check=True)
        os.makedirs(os.path.join(ws, ".cortex"))
        write_config(ws, server.url, "m1")
        d = Cortexd(ws)

        # 1. batching
        obs = [{"text": "Observation %d: the ledger export job retries on HTTP 503 after %d s."
                % (i, i)} for i in range(20)]
        res, err = d.call("observe", {"observations": obs})
        check(not err and res["recorded"] == 20, "a batch of 20 observations is recorded")
        m = d.wait_embedded("http:m1", 20)
        check(m and m["pending"] == 0 and m["vectors"] == 20,
              "the background thread embeds every item with the configured model", m)
        st = server.stats()
        check(st["batches"] and max(st["batches"]) <= 8,
              "requests carry at most embed.batch texts", st["batches"])
        check(set(st["models"]) == {"m1"}, "requests name the configured model", set(st["models"]))
        res, err = d.call("search", {"query": "ledger export retries", "mode": "semantic"})
        check(not err and res["count"] > 0 and "degraded" not in res,
              "semantic search runs on the service's vectors", res.get("degraded"))

        # 2. outage
        server.post("/control", {"mode": "fail503"})
        res, err = d.call("search", {"query": "ledger export retries", "explain": True})
        check(not err and res.get("degraded", "").startswith("semantic unavailable"),
              "hybrid search says it is degraded while the service fails", res.get("degraded"))
        check(res["count"] > 0 and all(r["why"]["lists"] == ["keyword"] for r in res["results"]),
              "and still answers, from keywords", [r["why"] for r in res["results"]][:2])
        res, err = d.call("observe", {"text": "Added during the outage: invoice numbering restarts yearly."})
        check(not err and res["recorded"] == 1, "observe keeps working during the outage")
        time.sleep(1.0)
        m = d.embeddings("http:m1")
        check(m and m["pending"] >= 1, "the new item waits for its vector", m)

        # 3. recovery
        server.post("/control", {"mode": "ok"})
        m = d.wait_embedded("http:m1", 21)
        check(m and m["pending"] == 0 and m["vectors"] == 21,
              "after recovery the waiting item is embedded", m)
        deadline = time.time() + 10
        while True:
            res, err = d.call("search", {"query": "invoice numbering"})
            if "degraded" not in res or time.time() > deadline:
                break
            time.sleep(0.3)
        check(not err and "degraded" not in res and res["count"] > 0,
              "after recovery hybrid search uses vectors again", res.get("degraded"))
        d.close()
        d = None

        # 4. model change
        write_config(ws, server.url, "m2")
        server.post("/control", {"reset": True})
        d = Cortexd(ws)
        m = d.wait_embedded("http:m2", 21)
        check(m and m["pending"] == 0 and m["vectors"] == 21,
              "after embed.model changes every item is re-embedded in the background", m)
        st = server.stats()
        check("m2" in st["models"] and st["inputs"] >= 21,
              "with requests for the new model", (st["inputs"], set(st["models"])))
        res, err = d.call("status", {})
        check(res["store"]["embeddings"]["model"] == "http:m2", "status names the model in use",
              res["store"]["embeddings"])
    finally:
        if d:
            d.close()
        server.stop()
        shutil.rmtree(ws, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
