#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The layering check can fail: plant violations and assert that
check-layers.py exits 1 naming each planted file and line, and names nothing
that is allowed.

1. A synthetic tree with the real layer table: a store file including
   "sidecar/tools.h", util including the store, sync including
   store-internal.h, sync (sidecar/sync/) including a header of the rest of
   the sidecar by its bare name, the core including a sidecar header by its bare name, the
   sidecar including the core, a relative include that climbs out of store,
   and beside them allowed includes (and a violation inside a comment) that
   must not be named; util including <jansson.h> and embed including
   <curl/curl.h> itself (only net may) must be.
2. A compile database as the build writes it, where a store file gets the
   wide -I src, another the sync layer's view, a sidecar file -I of the
   core, and a sync file (sidecar/sync/) -I of sidecar/: check-build.py
   exits 1 naming those and nothing else.
3. A copy of the real src/ and sidecar/ with an include of "sync/engine.h"
   added to src/store/blob.c (the engine may not know the sidecar's sync
   client) and one of "drain.h" to sidecar/sync/engine.c (sync sits below
   the rest of the sidecar), checked with the real allow-list.

    test-planted.py [ROOT]
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CHECK = os.path.join(HERE, "check-layers.py")
CHECK_BUILD = os.path.join(HERE, "check-build.py")
failed = 0


def expect(cond, what):
    global failed
    if not cond:
        failed += 1
        print("FAIL: " + what)


def write(root, rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def run(root, allow):
    p = subprocess.run([sys.executable, CHECK, "--root", root, "--allow", allow],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(p.stdout, end="")
    return p.returncode, p.stdout


def synthetic(tmp):
    root = os.path.join(tmp, "synthetic")
    headers = ["src/util/error.h", "src/store/store.h", "src/store/store-internal.h",
               "src/embed/embed.h", "sidecar/sync/engine.h", "src/core/storage.h",
               "src/search/fts-internal.h", "sidecar/tools.h", "sidecar/workspace.h"]
    for h in headers:
        write(root, h, "#pragma once\n")
    planted = {
        "src/store/bad.c": '#include "util/error.h"\n#include "sidecar/tools.h"\n',
        "src/util/bad.c": '\n\n#include "store/store.h"\n',
        "sidecar/sync/bad.c": '#include "store/store.h"\n#include "store/store-internal.h"\n',
        "src/core/bad.c": '#include "core/storage.h"\n#include "tools.h"\n',
        "sidecar/bad.c": '#include "workspace.h"\n#include <core/storage.h>\n',
        "src/store/climb.c": '#include "../../sidecar/workspace.h"\n',
        "src/store/peek.c": '#include "search/fts-internal.h"\n',
        "sidecar/peek.c": '#include "search/fts-internal.h"\n',
        "src/util/json.c": '#include <stdio.h>\n#include <jansson.h>\n',
        "src/embed/fetch.c": '#include "net/curlapi.h"\n#include <curl/curl.h>\n',
        "sidecar/sync/up.c": '#include "sync/client.h"\n#include "workspace.h"\n',
    }
    wanted = {"src/store/bad.c:2", "src/util/bad.c:3", "sidecar/sync/bad.c:2",
              "sidecar/sync/up.c:2",
              "src/core/bad.c:2", "sidecar/bad.c:2", "src/store/climb.c:1",
              "src/store/peek.c:1", "sidecar/peek.c:1", "src/util/json.c:2",
              "src/embed/fetch.c:2"}
    allowed = {
        "src/store/ok.c": ('#include "util/error.h"\n#include "embed/embed.h"\n'
                           '#include "store/store-internal.h"\n#include <stdio.h>\n'
                           '/* an example, not an include:\n#include "sidecar/tools.h"\n*/\n'),
        "src/search/ok.c": '#include "store/store-internal.h"\n#include "util/error.h"\n',
        "sidecar/ok.c": '#include "sync/engine.h"\n#include "tools.h"\n#include <git2.h>\n',
        "src/net/ok.c": '#include <curl/curl.h>\n#include <pthread.h>\n#include "util/error.h"\n',
        "sidecar/sync/ok.c": '#include "sync/engine.h"\n#include "store/store.h"\n#include "net/httpio.h"\n',
    }
    for rel, text in {**planted, **allowed}.items():
        write(root, rel, text)
    empty = os.path.join(tmp, "empty-allow.txt")
    write(tmp, "empty-allow.txt", "")
    rc, out = run(root, empty)
    expect(rc == 1, "synthetic tree: check exits 1 (got %d)" % rc)
    named = {line.split(": ", 1)[0] for line in out.splitlines() if ": " in line}
    for w in sorted(wanted):
        expect(w in named, "synthetic tree: %s is named" % w)
    for rel in allowed:
        expect(not any(n.startswith(rel + ":") for n in named),
               "synthetic tree: allowed file %s is not named" % rel)
    expect("violation(s)" in out and ("%d violation(s)" % len(wanted)) in out,
           "synthetic tree: exactly %d violations" % len(wanted))


def planted_build(tmp):
    root = os.path.join(tmp, "synthetic")
    build = os.path.join(root, "build")
    os.makedirs(os.path.join(build, "layer-views", "store"), exist_ok=True)

    def cmd(f, *incs):
        return {"directory": build, "file": "../" + f, "output": "x.o",
                "command": "cc " + " ".join("-I" + i for i in incs) + " -c ../" + f}

    db = [
        cmd("src/store/ok.c", "src/libcx_store.a.p", "layer-views/store", "../layer-views/store",
            "layer-views/util", "/usr/include/x86_64-linux-gnu"),
        cmd("src/store/bad.c", "layer-views/store", "../src", "../sidecar"),
        cmd("src/store/climb.c", "layer-views/store", "layer-views/sync"),
        cmd("sidecar/ok.c", "sidecar", "../sidecar", "layer-views/sidecar", "layer-views/sync"),
        cmd("sidecar/bad.c", "../sidecar", "layer-views/sidecar", "../src/core"),
        cmd("sidecar/sync/engine.c", "layer-views/sync"),
        cmd("sidecar/sync/client.c", "layer-views/sync", "../sidecar"),
        cmd("tests/unit/test-x.c", "../src", "../sidecar"),   # tests see everything
    ]
    with open(os.path.join(build, "compile_commands.json"), "w", encoding="utf-8") as f:
        json.dump(db, f)
    p = subprocess.run([sys.executable, CHECK_BUILD, build, root],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(p.stdout, end="")
    expect(p.returncode == 1, "planted build: check-build exits 1 (got %d)" % p.returncode)
    for want in ("src/store/bad.c (layer store): compiled with -I src,",
                 "src/store/bad.c (layer store): compiled with -I sidecar,",
                 "src/store/climb.c (layer store): compiled with -I build/layer-views/sync,",
                 "sidecar/bad.c (layer sidecar): compiled with -I src/core,",
                 "sidecar/sync/client.c (layer sync): compiled with -I sidecar,"):
        expect(want in p.stdout, "planted build: names " + want)
    expect("5 include paths out of their layer" in p.stdout,
           "planted build: exactly 5 include paths named")


def copy_of_real(tmp, real):
    root = os.path.join(tmp, "copy")
    for top in ("src", "sidecar"):
        shutil.copytree(os.path.join(real, top), os.path.join(root, top),
                        ignore=shutil.ignore_patterns("*.o", "__pycache__"))
    planted = {}
    for rel, include in (("src/store/blob.c", "sync/engine.h"),
                         ("sidecar/sync/engine.c", "drain.h")):
        path = os.path.join(root, rel)
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        at = next(i for i, l in enumerate(lines) if l.startswith("#include")) + 1
        lines.insert(at, '#include "%s"' % include)
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines))
        planted[rel] = (at + 1, include)
    rc, out = run(root, os.path.join(HERE, "known-violations.txt"))
    expect(rc == 1, "copy of the tree: check exits 1 (got %d)" % rc)
    for rel, (line, include) in planted.items():
        expect(("%s:%d: includes \"%s\"" % (rel, line, include)) in out,
               "copy of the tree: %s:%d is named" % (rel, line))
    expect("%d violation(s)" % len(planted) in out,
           "copy of the tree: exactly %d violations" % len(planted))


def main():
    real = sys.argv[1] if len(sys.argv) > 1 else os.path.normpath(os.path.join(HERE, "..", ".."))
    with tempfile.TemporaryDirectory() as tmp:
        synthetic(tmp)
        planted_build(tmp)
        copy_of_real(tmp, real)
    print("test-planted: %s" % ("FAILED (%d)" % failed if failed else "ok"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
