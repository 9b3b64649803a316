#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The relevance floor: hybrid search must beat keyword search on the set.

Runs bench/relevance/eval.py (the real cortexd and cortex named by $CORTEXD
and $CORTEX, a fresh git repository, the corpus and queries in
fixtures/relevance/) and checks:

  - the committed fixtures are what fixtures/relevance/generate.py makes;
  - search offers `mode` with keyword and hybrid (without it this test
    fails: hybrid ranking is not available);
  - hybrid recall@5 and MRR reach their floors, and keyword measured in the
    same run stays below them (a floor keyword reaches proves nothing);
  - hybrid is ahead of keyword by a margin on both figures;
  - typo and identifier-variant queries: hybrid has a relevant item in the
    top 5 for at least the given share of them;
  - stale and trust pairs: the stale note or the mere observation does not
    outrank the fresh note or the canon thread (order_ok) in most queries.

Prints every figure either way, so a failure says how far off it is.
"""

import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
EVAL = os.path.join(ROOT, "bench", "relevance", "eval.py")
GENERATE = os.path.join(ROOT, "fixtures", "relevance", "generate.py")
FIXTURES = os.path.join(ROOT, "fixtures", "relevance")

# Floors (see bench/relevance/README.md). Measured on 2026-11-22 with
# hybrid ranking in place: keyword recall@5 0.636, MRR 0.642; semantic
# 0.651 / 0.622; hybrid 0.671 / 0.692. The floors sit just under hybrid
# and above keyword, so the test proves hybrid beats keyword alone (the
# ranking is deterministic: builtin embedder, fixed corpus).
# Measured again on 2026-12-07 with English word forms (tokenizer version
# 3: keyword finds `deploys` for `deploy`): keyword 0.689 / 0.670, hybrid
# 0.694 / 0.720. The floors rose to just under the new hybrid figures;
# keyword gained more recall than hybrid (it had the word forms to gain),
# so the recall margin is now 0.005, the MRR margin 0.050.
# Raised with issue 12 item 3 (typo correction; hybrid 0.722 / 0.754
# from 0.694 / 0.720). Typo correction lifted keyword search on this set
# to 0.735 / 0.732 (from 0.689 / 0.670): its typo queries now find their
# notes. With exact keyword ranking, the built-in embedder v3 and its list
# at half weight in the fusion (all issue 12), hybrid measured 0.738 /
# 0.755 and keyword 0.735 / 0.732 on 2026-12-07: the floors sit just under
# hybrid and above keyword again. Hybrid's lead in recall@5 is small (its
# semantic list adds paraphrases, keyword now has the typos), so that
# margin is 0.002; its MRR lead is 0.02.
FLOOR_RECALL5 = 0.736
FLOOR_MRR = 0.750
KEYWORD_AHEAD_XFAIL = False  # True printed the two keyword checks as XFAIL
MARGIN_RECALL5 = 0.002  # hybrid minus keyword, same run
MARGIN_MRR = 0.02
FLOOR_HIT5 = {"typo": 0.95, "identifier": 0.90}  # typo: 0.80 before issue 12 item 3
FLOOR_ORDER = {"stale": 0.75, "trust": 0.75}

failures = []


def check(cond, msg):
    print("%s  %s" % ("ok    " if cond else "FAILED", msg))
    if not cond:
        failures.append(msg)


def check_xfail(cond, msg):
    """A check known to fail until fusion catches up (KEYWORD_AHEAD_XFAIL)."""
    print("%s  %s" % ("ok    " if cond else "XFAIL ", msg + ("" if cond else
          " (keyword search corrects typos; fusion to follow, issue 12 item 1)")))


def fixtures_current():
    with tempfile.TemporaryDirectory(prefix="cortex-relevance-gen-") as out:
        p = subprocess.run([sys.executable, GENERATE, "--out", out], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=120)
        if p.returncode != 0:
            return "generate.py failed:\n" + p.stdout.decode("utf-8", "replace")
        for name in ("corpus.jsonl", "queries.jsonl"):
            with open(os.path.join(out, name), "rb") as a, open(os.path.join(FIXTURES, name), "rb") as b:
                if a.read() != b.read():
                    return "%s differs from what generate.py makes" % name
    return None


def main():
    if not os.environ.get("CORTEXD") or not os.environ.get("CORTEX"):
        print("set CORTEXD and CORTEX to the binaries under test")
        return 2
    err = fixtures_current()
    check(err is None, "fixtures/relevance matches generate.py" + ("" if err is None else ": " + err +
          " (run python3 fixtures/relevance/generate.py)"))

    p = subprocess.run([sys.executable, EVAL, "--json", "--timeout", "60"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=300)
    if p.returncode != 0:
        print(p.stderr.decode("utf-8", "replace"))
        print("FAILED  eval.py exited with %d" % p.returncode)
        return 1
    rep = json.loads(p.stdout)
    modes = rep["modes"]
    for m, v in modes.items():
        a = v["all"]
        print("%-8s recall@5 %.3f  MRR %.3f  hit@5 %.3f" % (m, a["recall@5"], a["mrr"], a["hit@5"]))
        for cat, d in v["by_category"].items():
            extra = "  order_ok %.3f" % d["order_ok"] if "order_ok" in d else ""
            print("   %-11s recall@5 %.3f  MRR %.3f  hit@5 %.3f%s" % (cat, d["recall@5"], d["mrr"], d["hit@5"], extra))
    for n in rep.get("notes", []):
        print("note: %s" % n)

    if "hybrid" not in modes or "keyword" not in modes:
        print("FAILED  search has no mode: hybrid ranking not available "
              "(the search tool's inputSchema must offer mode with keyword and hybrid)")
        return 1

    for m, v in sorted(modes.items()):
        other = v.get("answered_in_mode")
        check(not other, "search honours mode=%s%s" % (m, "" if not other else " (answered in %s)" % ", ".join(
            "%s %d times" % kv for kv in sorted(other.items()))))
    h, k = modes["hybrid"], modes["keyword"]
    hr, hm = h["all"]["recall@5"], h["all"]["mrr"]
    kr, km = k["all"]["recall@5"], k["all"]["mrr"]
    check(hr >= FLOOR_RECALL5, "hybrid recall@5 %.3f >= floor %.3f" % (hr, FLOOR_RECALL5))
    check(hm >= FLOOR_MRR, "hybrid MRR %.3f >= floor %.3f" % (hm, FLOOR_MRR))
    gated = check_xfail if KEYWORD_AHEAD_XFAIL else check
    gated(kr < FLOOR_RECALL5 and km < FLOOR_MRR,
          "keyword (recall@5 %.3f, MRR %.3f) stays below the floors; otherwise raise them" % (kr, km))
    gated(hr - kr >= MARGIN_RECALL5, "hybrid recall@5 ahead of keyword by %.3f >= %.3f" % (hr - kr, MARGIN_RECALL5))
    check(hm - km >= MARGIN_MRR, "hybrid MRR ahead of keyword by %.3f >= %.2f" % (hm - km, MARGIN_MRR))
    for cat, floor in sorted(FLOOR_HIT5.items()):
        d = h["by_category"].get(cat)
        check(d is not None and d["hit@5"] >= floor,
              "hybrid finds a relevant item in the top 5 for %.0f%% of %s queries (floor %.0f%%)"
              % (100 * (d["hit@5"] if d else 0), cat, 100 * floor))
    for cat, floor in sorted(FLOOR_ORDER.items()):
        d = h["by_category"].get(cat)
        v = d.get("order_ok", 0) if d else 0
        check(v >= floor, "hybrid %s order kept in %.0f%% of queries (floor %.0f%%)" % (cat, 100 * v, 100 * floor))
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("all relevance checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
