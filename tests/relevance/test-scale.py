#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Relevance floors at 10,000 items (issue 12, item 7).

Runs bench/relevance/scale.py (the real cortexd named by $CORTEXD, a fresh
git repository, the generated store recorded through batch `observe`) at
1,000 and 10,000 items and checks that the generated stores pass its audit
(no note but a target holds the target's combination), that the keyword
list, which skips matches that cannot make it (MaxScore, src/search/rank.c),
is at both sizes the same as scoring every match (CORTEX_SEARCH_EXHAUSTIVE),
and at 10,000:

  - every mode and every query class reaches its floor: recall@5 and MRR
    measured on 2026-12-07 (before issue 12's search work) minus a margin;
  - the oldest third of the targets is not lost entirely in hybrid mode.

It also checks, per query class, that hybrid recall@5 at 10,000 is within
0.03 of recall@5 at 1,000 (issue 12), and prints that gap for keyword and
semantic mode too (the built-in vectors still lose recall as the store
grows; hybrid holds because keyword ranking is exact at any size).

Prints every figure either way, so a failure says how far off it is.
"""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SCALE = os.path.join(ROOT, "bench", "relevance", "scale.py")

SMALL, LARGE = 1000, 10000
MARGIN = 0.03           # floors sit this far under the measured figures
MAX_GAP = 0.03          # recall@5 at LARGE within this of SMALL (issue 12)
GAP_MODES = ("hybrid",) # modes whose gap is asserted (issue 12 asks it of hybrid)

# recall@5 / MRR at 10,000 items, measured 2026-12-07 with all of issue
# 12's search work (exact keyword ranking, word forms, every script, typo
# correction, the built-in embedder v3 and its list at half weight in the
# fusion); release and ASan builds give the same ranking (builtin
# embedder, fixed seed; word forms with tokenizer version 4, -ic verbs;
# identifier parts corrected by every edit, from three letters).
# Semantic identifier MRR fell 0.972 -> 0.951 with
# embedder v3 (a note sharing a stem ranks near the target); its floor
# stays.
MEASURED = {
    "keyword": {
        "identifier": (1.000, 0.972),
        "wordform": (1.000, 0.993),
        "typo_ident": (1.000, 0.993),
        "typo_word": (1.000, 1.000),
        "paraphrase": (0.389, 0.362),
        "script": (1.000, 1.000),
        "all": (0.898, 0.887),
    },
    "semantic": {
        "identifier": (1.000, 0.972),  # MRR 0.951 with embedder v3; floor kept
        "wordform": (0.972, 0.870),
        "typo_ident": (0.736, 0.472),
        "typo_word": (0.931, 0.851),
        "paraphrase": (0.264, 0.219),
        "script": (0.931, 0.880),
        "all": (0.806, 0.707),
    },
    "hybrid": {
        "identifier": (1.000, 0.993),
        "wordform": (1.000, 0.972),
        "typo_ident": (1.000, 0.975),
        "typo_word": (1.000, 1.000),
        "paraphrase": (0.375, 0.347),
        "script": (1.000, 0.984),
        "all": (0.896, 0.879),
    },
}
# hybrid recall@5 of the oldest third of the targets at 10,000: 0.889
# (0.736 before issue 12's ranking work, 0.556 before word forms)
OLDEST_FLOOR = 0.889 - MARGIN

failures = []


def check(cond, msg):
    print("%s  %s" % ("ok    " if cond else "FAILED", msg))
    if not cond:
        failures.append(msg)


def main():
    if not os.environ.get("CORTEXD"):
        print("set CORTEXD to the binary under test")
        return 2
    a = subprocess.run([sys.executable, SCALE, "--check", "--sizes", "%d,%d" % (SMALL, LARGE)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    check(a.returncode == 0, "the generated stores keep each target's combination to the target:\n"
          + a.stdout.decode("utf-8", "replace").rstrip())
    p = subprocess.run([sys.executable, SCALE, "--json", "--timeout", "120", "--exact-check",
                        "--sizes", "%d,%d" % (SMALL, LARGE)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
    if p.returncode != 0:
        print(p.stderr.decode("utf-8", "replace"))
        print("FAILED  scale.py exited with %d" % p.returncode)
        return 1
    rep = json.loads(p.stdout)
    small, large = rep["results"][str(SMALL)], rep["results"][str(LARGE)]
    for r in (small, large):
        print("%d items recorded in %.1f s; %d folded, %d repeats" % (
            r["items"], r["load_seconds"], r["folded"], r["repeats"]))
        for n in r["notes"]:
            print("note: %s" % n)

    for mode, classes in sorted(MEASURED.items()):
        m = large["modes"].get(mode)
        if m is None:
            check(False, "mode %s measured" % mode)
            continue
        check(not m.get("degraded_queries"), "%s: no query answered degraded" % mode)
        for cls, (rec, mrr) in sorted(classes.items()):
            d = m["all"] if cls == "all" else m["by_class"][cls]
            check(d["recall@5"] >= rec - MARGIN, "%s %s recall@5 %.3f >= floor %.3f"
                  % (mode, cls, d["recall@5"], rec - MARGIN))
            check(d["mrr"] >= mrr - MARGIN, "%s %s MRR %.3f >= floor %.3f"
                  % (mode, cls, d["mrr"], mrr - MARGIN))

    for r in (small, large):
        ec = r.get("exact_check") or {}
        check(ec.get("queries") and ec.get("identical") == ec.get("queries"),
              "%d items: the keyword list is the same as scoring every match in %s of %s queries%s"
              % (r["items"], ec.get("identical"), ec.get("queries"),
                 "" if not ec.get("differ") else " (differ: %s)" % ", ".join(ec["differ"][:10])))

    old = large["modes"]["hybrid"]["by_age"]["oldest"]["recall@5"]
    check(old >= OLDEST_FLOOR, "hybrid recall@5 of the oldest third %.3f >= %.3f" % (old, OLDEST_FLOOR))

    print("\nrecall@5 at %d minus at %d (issue 12 asks for >= -%.2f; asserted for %s)"
          % (LARGE, SMALL, MAX_GAP, ", ".join(GAP_MODES)))
    for mode in rep["modes"]:
        a, b = small["modes"][mode], large["modes"][mode]
        for cls in list(b["by_class"]) + ["all"]:
            ra = a["all"]["recall@5"] if cls == "all" else a["by_class"][cls]["recall@5"]
            rb = b["all"]["recall@5"] if cls == "all" else b["by_class"][cls]["recall@5"]
            held = rb >= ra - MAX_GAP
            line = "%-8s %-11s %.3f -> %.3f (%+.3f)" % (mode, cls, ra, rb, rb - ra)
            if mode in GAP_MODES:
                check(held, line)
            else:
                print("%s  %s" % ("held  " if held else "FALLS ", line))

    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("all relevance-at-scale checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
