#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Relevance of `search` on the fixed set in fixtures/relevance/.

Builds a throw-away git repository holding every file the corpus mentions,
starts `cortexd --workspace <repo>`, records the corpus through MCP the way
agents and people would (observations in batches, drafts, drafts approved
into canon threads with `cortex review approve`, artifacts with `publish`),
then changes the files that the corpus's stale items are about, commits,
and records the items written after that change. Then it runs every query
in every search mode the server offers (`mode` in the search tool's
inputSchema, found with tools/list) and prints recall@5 and MRR per mode
and per query category.

  python3 bench/relevance/eval.py --cortexd build/sidecar/cortexd \\
      --cortex build/sidecar/cortex [--json] [--verbose]

Metrics (limit 10 results a query):
  recall@5  relevant items in the top 5 / min(relevant items, 5), averaged
  MRR       1 / rank of the first relevant result (0 if none in the top 10)
  hit@5     share of queries with at least one relevant item in the top 5
For "stale" queries the relevant item is the fresh note, for "trust" the
canon thread; `order_ok` is the share of those queries where the item in
the query's `below` (the stale twin; the observation saying the same as the
thread) is not ranked above the first relevant result (a stale twin may
instead come back marked stale). Only python3's standard library is used.
"""

import argparse
import datetime
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DEFAULT_CORPUS = os.path.join(ROOT, "fixtures", "relevance", "corpus.jsonl")
DEFAULT_QUERIES = os.path.join(ROOT, "fixtures", "relevance", "queries.jsonl")
ALL_MODES = ("keyword", "semantic", "hybrid")
BATCH = 500
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Relevance Bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "Relevance Bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    "GIT_AUTHOR_DATE": "2026-11-01T09:00:00Z", "GIT_COMMITTER_DATE": "2026-11-01T09:00:00Z",
}


class BenchError(Exception):
    pass


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def load_jsonl(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except ValueError as e:
                raise BenchError("%s:%d: not JSON (%s)" % (path, n, e))
    return out


# ---------------------------------------------------------------- MCP client

class Server:
    """cortexd on pipes: one request at a time, each with a deadline."""

    def __init__(self, argv, env, cwd, stderr_path, timeout):
        self.timeout = timeout
        self.errf = open(stderr_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.errf, env=env, cwd=cwd)
        self.lines = queue.Queue()
        self.next_id = 0
        t = threading.Thread(target=self._read, daemon=True)
        t.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def send(self, msg):
        try:
            self.proc.stdin.write((json.dumps(msg) + "\n").encode("utf-8"))
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise BenchError("cortexd is gone (%s); see its stderr" % e)

    def request(self, method, params, timeout=None):
        self.next_id += 1
        rid = self.next_id
        self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError("no answer to %s within %.0f s" % (method, timeout or self.timeout))
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise BenchError("cortexd closed stdout while %s was pending (exit %s)"
                                 % (method, self.proc.poll()))
            try:
                msg = json.loads(line)
            except ValueError:
                raise BenchError("cortexd wrote a line that is not JSON: %r" % line[:200])
            if msg.get("id") != rid:
                continue  # a notification (log, progress)
            if "error" in msg:
                raise BenchError("%s failed: %s" % (method, json.dumps(msg["error"])))
            return msg.get("result")

    def tool(self, name, args, timeout=None):
        res = self.request("tools/call", {"name": name, "arguments": args}, timeout)
        if res.get("isError"):
            text = " ".join(c.get("text", "") for c in res.get("content", []))
            raise BenchError("tool %s: %s" % (name, text[:500]))
        sc = res.get("structuredContent")
        if sc is None:
            sc = json.loads(res["content"][0]["text"])
        return sc

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.errf.close()
        return self.proc.returncode


# ---------------------------------------------------------------- workspace

def git(repo, *args, env):
    subprocess.run(["git", "-C", repo] + list(args), env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)


def file_content(path, generation):
    """Plausible stand-in content for a file the corpus mentions."""
    ext = os.path.splitext(path)[1]
    line = {".c": "/* %s */", ".h": "/* %s */", ".ts": "// %s", ".tsx": "// %s",
            ".sql": "-- %s", ".md": "<!-- %s -->", ".py": "# %s", ".yml": "# %s",
            ".yaml": "# %s", ".toml": "# %s", ".sh": "# %s"}.get(ext, "# %s")
    text = line % ("%s: fixture for the relevance bench, revision %d" % (path, generation))
    return text + "\n" + (line % "contents are not read by the bench") + "\n"


def make_repo(repo, paths, env):
    os.makedirs(repo)
    git(repo, "-c", "init.defaultBranch=main", "init", "-q", ".", env=env)
    for p in sorted(paths):
        full = os.path.join(repo, p)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(file_content(p, 1))
    git(repo, "add", "-A", env=env)
    git(repo, "commit", "-q", "-m", "payments service snapshot", env=env)


# ---------------------------------------------------------------- recording

def observation_args(it):
    a = {"text": it["body"]}
    for k in ("title", "tags", "subcortex", "files"):
        if it.get(k):
            a[k] = it[k]
    return a


def record(srv, items, ids, cli, stats):
    """Records items (one phase) in corpus order, grouped by how they are written."""
    canon = [it for it in items if it["kind"] == "thread"]
    obs = [it for it in items if it["kind"] == "observation"]
    drafts = [it for it in items if it["kind"] == "draft"]
    arts = [it for it in items if it["kind"] == "artifact"]

    # Canon first: reviewed knowledge is older than the notes that repeat it,
    # so recency cannot be what puts a thread first.
    for it in canon:
        args = {"title": it["title"], "body": it["body"]}
        for k in ("tags", "subcortex", "files"):
            if it.get(k):
                args[k] = it[k]
        r = srv.tool("draft", args)
        ids[it["key"]] = r["id"]
        cli("review", "approve", r["id"], "--note", "relevance bench")
    stats["canon"] += len(canon)

    for i in range(0, len(obs), BATCH):
        chunk = obs[i:i + BATCH]
        r = srv.tool("observe", {"observations": [observation_args(it) for it in chunk]},
                     timeout=max(srv.timeout, 120))
        res = r.get("results", [])
        if len(res) != len(chunk):
            raise BenchError("observe answered %d results for %d observations" % (len(res), len(chunk)))
        for it, one in zip(chunk, res):
            ids[it["key"]] = one["id"]
            if one.get("repeat"):
                stats["repeats"].append(it["key"])
            if one.get("folded"):
                stats["folded"].append(it["key"])
    stats["observations"] += len(obs)

    for it in drafts:
        args = {"title": it["title"], "body": it["body"]}
        for k in ("tags", "subcortex", "files"):
            if it.get(k):
                args[k] = it[k]
        ev = [ids[k] for k in it.get("evidence", []) if k in ids]
        if ev:
            args["evidence"] = ev
        r = srv.tool("draft", args)
        ids[it["key"]] = r["id"]
    stats["drafts"] += len(drafts)

    for it in arts:
        args = {"name": it["name"], "content": it["body"]}
        for k in ("title", "tags", "subcortex"):
            if it.get(k):
                args[k] = it[k]
        r = srv.tool("publish", args)
        ids[it["key"]] = r["artifact_id"]
    stats["artifacts"] += len(arts)


# ---------------------------------------------------------------- metrics

def is_stale(result):
    v = result.get("stale")
    if isinstance(v, dict):
        return bool(v.get("stale", True))
    if v:
        return True
    why = result.get("why") or result.get("ranking") or {}
    return isinstance(why, dict) and bool(why.get("stale"))


def score_query(q, ranked, id_keys):
    """ranked: the search results (dicts). Returns per-query figures."""
    rel = set(q["relevant"])
    keys = [id_keys.get(r["id"], []) for r in ranked]
    first = None
    found5 = set()
    for i, ks in enumerate(keys):
        hit = rel.intersection(ks)
        if hit and first is None:
            first = i + 1
        if i < 5:
            found5 |= hit
    out = {
        "id": q["id"], "category": q["category"], "rank": first,
        "rr": 1.0 / first if first else 0.0,
        "marked_stale": sum(1 for r in ranked if is_stale(r)),
        "recall5": len(found5) / min(len(rel), 5),
        "hit5": 1.0 if first is not None and first <= 5 else 0.0,
        "top": [",".join(k) or r["id"] for k, r in zip(keys[:5], ranked)],
        "ranked": [",".join(k) or r["id"] for k, r in zip(keys, ranked)],
    }
    below = set(q.get("below", []))
    if below:
        # The items that say the same with less authority (a stale note, an
        # observation beside a canon thread) must not come first; a stale
        # note may also come back marked stale instead.
        ok = True
        for i, (ks, r) in enumerate(zip(keys, ranked)):
            if below.intersection(ks) and (first is None or i + 1 < first):
                if not (q["category"] == "stale" and is_stale(r)):
                    ok = False
        out["order_ok"] = 1.0 if ok else 0.0
    return out


def summarize(rows):
    def agg(rs):
        n = len(rs)
        d = {"queries": n,
             "recall@5": round(sum(r["recall5"] for r in rs) / n, 4) if n else None,
             "mrr": round(sum(r["rr"] for r in rs) / n, 4) if n else None,
             "hit@5": round(sum(r["hit5"] for r in rs) / n, 4) if n else None}
        st = [r["order_ok"] for r in rs if "order_ok" in r]
        if st:
            d["order_ok"] = round(sum(st) / len(st), 4)
        return d
    cats = {}
    for r in rows:
        cats.setdefault(r["category"], []).append(r)
    return {"all": agg(rows), "by_category": {c: agg(rs) for c, rs in sorted(cats.items())}}


# ---------------------------------------------------------------- main

def run(opts):
    corpus = load_jsonl(opts.corpus)
    queries = load_jsonl(opts.queries)
    keys = {it["key"] for it in corpus}
    for q in queries:
        for k in q["relevant"] + q.get("below", []):
            if k not in keys:
                raise BenchError("query %s names unknown item %s" % (q["id"], k))

    tmp = tempfile.mkdtemp(prefix="cortex-relevance-")
    notes = []
    srv = None
    t0 = time.monotonic()
    try:
        home = os.path.join(tmp, "home")
        repo = os.path.realpath(os.path.join(tmp, "repo"))
        os.makedirs(home)
        env = {k: v for k, v in os.environ.items()
               if k not in ("CORTEX_WORKSPACE", "GIT_DIR", "GIT_WORK_TREE", "NO_COLOR")}
        env.update(GIT_ENV)
        env.update({"HOME": home, "CORTEX_AUTHOR": "relevance-bench",
                    "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C.UTF-8"})
        paths = set()
        for it in corpus:
            paths.update(it.get("files", []))
        make_repo(repo, paths, env)

        def cli(*args):
            p = subprocess.run([opts.cortex, "--workspace", repo] + list(args), env=env, cwd=repo,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=opts.timeout)
            if p.returncode != 0:
                raise BenchError("cortex %s -> exit %d: %s" % (" ".join(args), p.returncode,
                                                               p.stderr.decode("utf-8", "replace")[:500]))
            return p.stdout

        srv = Server([opts.cortexd, "--workspace", repo], env, repo,
                     os.path.join(tmp, "cortexd.stderr"), opts.timeout)
        srv.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                   "clientInfo": {"name": "relevance-bench", "version": "1"}})
        srv.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        tools, cursor = [], None
        while True:
            r = srv.request("tools/list", {"cursor": cursor} if cursor else {})
            tools += r.get("tools", [])
            cursor = r.get("nextCursor")
            if not cursor:
                break
        search = next((t for t in tools if t["name"] == "search"), None)
        if search is None:
            raise BenchError("cortexd has no search tool")
        mode_prop = search.get("inputSchema", {}).get("properties", {}).get("mode")
        if mode_prop:
            offered = mode_prop.get("enum", list(ALL_MODES))
            modes = [m for m in ALL_MODES if m in offered]
            unavailable = [m for m in ALL_MODES if m not in offered]
        else:
            unavailable = ["semantic", "hybrid"]
            modes = [None]  # keyword only, the tool takes no mode
            notes.append("search has no `mode`: only keyword search measured; "
                         "semantic and hybrid are unavailable")
        if opts.modes:
            want = opts.modes.split(",")
            if mode_prop:
                missing = [m for m in want if m not in modes]
                modes = [m for m in modes if m in want]
            else:
                missing = [m for m in want if m != "keyword"]
                modes = [None] if "keyword" in want else []
            for m in missing:
                notes.append("mode %s asked for but not offered by cortexd" % m)

        ids = {}
        stats = {"observations": 0, "drafts": 0, "canon": 0, "artifacts": 0,
                 "repeats": [], "folded": []}
        phase1 = [it for it in corpus if it.get("phase", 1) == 1]
        phase2 = [it for it in corpus if it.get("phase", 1) == 2]
        record(srv, phase1, ids, cli, stats)

        # The code moves on: the files stale items are about change after
        # they were recorded (committed, so HEAD and working tree agree).
        changed = sorted({f for it in corpus if it.get("expect_stale") for f in it.get("files", [])})
        for p in changed:
            with open(os.path.join(repo, p), "w") as f:
                f.write(file_content(p, 2))
        if changed:
            env2 = dict(env, GIT_AUTHOR_DATE="2026-11-20T09:00:00Z",
                        GIT_COMMITTER_DATE="2026-11-20T09:00:00Z")
            git(repo, "commit", "-q", "-a", "-m", "rework after the notes were written", env=env2)
        record(srv, phase2, ids, cli, stats)
        t_record = time.monotonic() - t0

        id_keys = {}
        for k, i in ids.items():
            id_keys.setdefault(i, []).append(k)
        shared = {i: ks for i, ks in id_keys.items() if len(ks) > 1}
        if shared:
            notes.append("%d ids stand for several corpus items (folded or repeated): %s"
                         % (len(shared), "; ".join(",".join(v) for v in list(shared.values())[:10])))
        if stats["folded"]:
            notes.append("observe folded %d items into existing ones: %s"
                         % (len(stats["folded"]), ", ".join(stats["folded"][:10])))

        # Does the server mark the stale items at all?
        stale_items = [it["key"] for it in corpus if it.get("expect_stale")]
        marked = 0
        for i in range(0, len(stale_items), 20):
            got = srv.tool("get", {"ids": [ids[k] for k in stale_items[i:i + 20]],
                                   "max_tokens": 50000})
            marked += sum(1 for g in got.get("items", []) if is_stale(g))
        if stale_items:
            if marked == 0:
                notes.append("get marks none of the %d items whose files changed as stale"
                             % len(stale_items))
            elif marked < len(stale_items):
                notes.append("get marks %d of %d items whose files changed as stale"
                             % (marked, len(stale_items)))

        # Vectors load lazily behind initialize; wait (bounded) until a
        # semantic search is served as such before measuring.
        if any(m in ("semantic", "hybrid") for m in modes):
            deadline = time.monotonic() + opts.warmup
            while True:
                r = srv.tool("search", {"query": "warm up the vector index", "mode": "semantic", "limit": 1})
                if not r.get("degraded"):
                    break
                if time.monotonic() > deadline:
                    notes.append("semantic search still degraded after %.0f s (%s); measured anyway"
                                 % (opts.warmup, r.get("degraded")))
                    break
                time.sleep(0.2)

        results = {}
        for mode in modes:
            name = mode or "keyword"
            rows = []
            degraded = 0
            other_mode = {}
            t1 = time.monotonic()
            for q in queries:
                args = {"query": q["query"], "limit": 10, "max_tokens": 20000}
                if mode:
                    args["mode"] = mode
                r = srv.tool("search", args)
                if r.get("degraded"):
                    degraded += 1
                if mode and r.get("mode", mode) != mode:
                    other_mode[r["mode"]] = other_mode.get(r["mode"], 0) + 1
                rows.append(score_query(q, r.get("results", []), id_keys))
            s = summarize(rows)
            s["seconds"] = round(time.monotonic() - t1, 2)
            s["results_marked_stale"] = sum(r["marked_stale"] for r in rows)
            if degraded:
                s["degraded_queries"] = degraded
                notes.append("%s: %d queries answered degraded" % (name, degraded))
            for m, n in sorted(other_mode.items()):
                s.setdefault("answered_in_mode", {})[m] = n
                notes.append("%s: %d queries were answered in mode %s" % (name, n, m))
            s["_rows"] = rows
            if opts.verbose or opts.dump:
                s["per_query"] = rows
            results[name] = s
        if stale_items:
            for name, v in results.items():
                if not v["results_marked_stale"]:
                    notes.append("%s: no search result was marked stale" % name)
        names = list(results)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                ra = [r["ranked"] for r in results[a]["_rows"]]
                rb = [r["ranked"] for r in results[b]["_rows"]]
                if ra == rb:
                    notes.append("modes %s and %s returned the same ranking for every query "
                                 "(is `mode` ignored?)" % (a, b))
        for v in results.values():
            v.pop("_rows")
        code = srv.close()
        srv = None
        if code not in (0, None):
            notes.append("cortexd exited with status %d" % code)
        return {
            "date": datetime.date.today().isoformat(),
            "corpus": {"items": len(corpus), "queries": len(queries),
                       "observations": stats["observations"], "drafts": stats["drafts"],
                       "canon_threads": stats["canon"], "artifacts": stats["artifacts"],
                       "changed_files": len(changed), "stale_items": len(stale_items),
                       "stale_marked_by_get": marked,
                       "repeats": len(stats["repeats"]), "folded": len(stats["folded"])},
            "record_seconds": round(t_record, 2),
            "modes": results,
            "unavailable": unavailable,
            "not_measured": [m for m in ALL_MODES if m not in results and m not in unavailable],
            "notes": notes,
        }
    except BaseException:
        if srv is not None:
            try:
                with open(os.path.join(tmp, "cortexd.stderr"), "rb") as f:
                    tail = f.read()[-4000:].decode("utf-8", "replace")
                if tail.strip():
                    log("--- cortexd stderr (tail)\n" + tail)
            except OSError:
                pass
        raise
    finally:
        if srv is not None:
            srv.close()
        if opts.keep:
            log("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def print_table(rep, verbose):
    c = rep["corpus"]
    print("Relevance set: %d items (%d observations, %d drafts, %d canon threads, %d artifacts), "
          "%d queries; recorded in %.1f s" % (c["items"], c["observations"], c["drafts"],
                                             c["canon_threads"], c["artifacts"], c["queries"],
                                             rep["record_seconds"]))
    modes = list(rep["modes"])
    cats = sorted({cat for m in modes for cat in rep["modes"][m]["by_category"]})
    head = "%-22s %5s" % ("category", "n")
    for m in modes:
        head += " | %-8s R@5    MRR   hit@5" % m
    print(head)
    print("-" * len(head))
    for cat in cats + ["all"]:
        first = rep["modes"][modes[0]]
        d0 = first["all"] if cat == "all" else first["by_category"][cat]
        line = "%-22s %5d" % (cat, d0["queries"])
        for m in modes:
            d = rep["modes"][m]["all"] if cat == "all" else rep["modes"][m]["by_category"][cat]
            line += " | %-8s %.3f  %.3f  %.3f" % ("", d["recall@5"], d["mrr"], d["hit@5"])
        print(line)
    for m in modes:
        for cat, what in (("stale", "stale note not above the fresh one (or marked stale)"),
                          ("trust", "canon thread above the observation saying the same")):
            st = rep["modes"][m]["by_category"].get(cat, {}).get("order_ok")
            if st is not None:
                print("%s, %s: %s in %.0f%% of queries" % (m, cat, what, 100 * st))
    if rep["unavailable"]:
        print("unavailable modes (search does not offer them): %s" % ", ".join(rep["unavailable"]))
    for n in rep["notes"]:
        print("note: %s" % n)
    if verbose:
        for m in modes:
            print("\n== %s: queries without a relevant result in the top 5" % m)
            for r in rep["modes"][m].get("per_query", []):
                if not r["hit5"]:
                    print("  %-8s %-12s rank=%s top=%s" % (r["id"], r["category"], r["rank"],
                                                           " ".join(r["top"])))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cortexd", default=os.environ.get("CORTEXD"), help="cortexd binary ($CORTEXD)")
    ap.add_argument("--cortex", default=os.environ.get("CORTEX"), help="cortex CLI binary ($CORTEX)")
    ap.add_argument("--corpus", default=DEFAULT_CORPUS)
    ap.add_argument("--queries", default=DEFAULT_QUERIES)
    ap.add_argument("--modes", help="comma-separated subset of keyword,semantic,hybrid")
    ap.add_argument("--timeout", type=float, default=60, help="seconds per request (default 60)")
    ap.add_argument("--warmup", type=float, default=30,
                    help="seconds to wait for semantic search to stop being degraded (default 30)")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    ap.add_argument("--verbose", action="store_true", help="per-query ranks")
    ap.add_argument("--keep", action="store_true", help="keep the temporary workspace")
    ap.add_argument("--dump", metavar="FILE", help="write each mode's ranked item keys per query to FILE (JSON)")
    opts = ap.parse_args()
    if not opts.cortexd or not opts.cortex:
        ap.error("give --cortexd and --cortex (or set $CORTEXD and $CORTEX)")
    opts.cortexd = os.path.abspath(opts.cortexd)
    opts.cortex = os.path.abspath(opts.cortex)
    try:
        rep = run(opts)
    except (BenchError, subprocess.SubprocessError, OSError) as e:
        log("eval.py: %s" % e)
        return 2
    if opts.dump:
        with open(opts.dump, "w") as f:
            json.dump({m: {r["id"]: r["ranked"] for r in v["per_query"]} for m, v in rep["modes"].items()},
                      f, indent=1)
        if not opts.verbose:
            for v in rep["modes"].values():
                v.pop("per_query", None)
    if opts.json:
        print(json.dumps(rep, indent=1))
    else:
        print_table(rep, opts.verbose)
    return 0


if __name__ == "__main__":
    sys.exit(main())
