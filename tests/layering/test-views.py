#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The include views make a wrong include fail to compile: with a layer's
view as its only engine include path, the compiler finds the headers of the
layers that layer may use and not the others.

    test-views.py VIEWS CC [CC ARGS...]

VIEWS is the build's layer-views directory (made from layers.txt at
configure time); CC the C compiler command.
"""

import os
import subprocess
import sys
import tempfile

failed = 0


def compiles(cc, views, layer, include, tmp):
    src = os.path.join(tmp, "probe.c")
    with open(src, "w", encoding="utf-8") as f:
        f.write('#include "%s"\nint cx_probe(void);\nint cx_probe(void) { return 0; }\n' % include)
    p = subprocess.run(cc + ["-std=c11", "-D_GNU_SOURCE", "-fsyntax-only",
                             "-I" + os.path.join(views, layer), src],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return p.returncode == 0, p.stdout


def expect(cc, views, layer, include, want, tmp):
    global failed
    ok, out = compiles(cc, views, layer, include, tmp)
    verdict = "compiles" if ok else "fails"
    print("%-8s #include \"%s\": %s" % (layer, include, verdict))
    if ok != want:
        failed += 1
        print("FAIL: layer %s including %s should %s\n%s"
              % (layer, include, "compile" if want else "fail to compile", out))


def main():
    views, cc = sys.argv[1], sys.argv[2:]
    with tempfile.TemporaryDirectory() as tmp:
        expect(cc, views, "util", "util/error.h", True, tmp)
        expect(cc, views, "util", "store/store.h", False, tmp)
        expect(cc, views, "redact", "util/error.h", True, tmp)
        expect(cc, views, "redact", "embed/embed.h", False, tmp)
        expect(cc, views, "store", "sync/engine.h", False, tmp)
        expect(cc, views, "store", "search/search.h", False, tmp)
        expect(cc, views, "store", "tools.h", False, tmp)
        expect(cc, views, "store", "sidecar/tools.h", False, tmp)
        expect(cc, views, "sync", "core/storage.h", False, tmp)
        expect(cc, views, "sync", "search/search.h", False, tmp)
        expect(cc, views, "sync", "drain.h", False, tmp)
        expect(cc, views, "sidecar", "sync/engine.h", True, tmp)
        expect(cc, views, "core", "util/error.h", True, tmp)
        expect(cc, views, "core", "store/store.h", False, tmp)
        expect(cc, views, "core", "tools.h", False, tmp)
    print("test-views: %s" % ("FAILED (%d)" % failed if failed else "ok"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
