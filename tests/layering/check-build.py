#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The build gives each library only its layer's include view: every
compile of a file under src/ or sidecar/ (compile_commands.json) may have
an -I of a build-private directory, of the include view of a layer its
layer may use (tests/layering/layers.txt), or of such a layer's own
directory, and of nothing else in the source tree. So a library that takes
the wide `inc` (-I src -I sidecar) or the implicit -I of src/ again fails
here, naming the file and the directory.

    check-build.py BUILDDIR SRCROOT
"""

import json
import os
import shlex
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import layers  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
VIEWS = "layer-views"


def include_dirs(args):
    out, i = [], 0
    while i < len(args):
        a = args[i]
        for flag in ("-I", "-iquote", "-isystem", "-idirafter"):
            if a == flag and i + 1 < len(args):
                out.append(args[i + 1])
                i += 1
                break
            if a.startswith(flag) and len(a) > len(flag):
                out.append(a[len(flag):])
                break
        i += 1
    return out


def inside(path, root):
    return path == root or path.startswith(root + os.sep)


def main():
    build, root = (os.path.realpath(p) for p in sys.argv[1:3])
    table = layers.load(os.path.join(HERE, "layers.txt"))
    with open(os.path.join(build, "compile_commands.json"), encoding="utf-8") as f:
        commands = json.load(f)
    bad, seen_files = [], 0
    for c in commands:
        d = c["directory"]
        src = os.path.normpath(os.path.join(d, c["file"]))
        if not inside(src, root) or inside(src, build):
            continue
        rel = os.path.relpath(src, root)
        if rel.split(os.sep, 1)[0] not in ("src", "sidecar"):
            continue
        own = table.layer_of(rel)
        if own is None:
            bad.append("%s: in no layer of layers.txt" % rel)
            continue
        seen_files += 1
        sees = table.sees(own)
        args = c["arguments"] if "arguments" in c else shlex.split(c["command"])
        for inc in include_dirs(args):
            p = os.path.normpath(os.path.join(d, inc))
            views = [os.path.join(base, VIEWS) for base in (build, root)]
            view = next((v for v in views if inside(p, v)), None)
            if view is not None:                          # a layer's view (either twin)
                ok = p != view and os.path.relpath(p, view).split(os.sep)[0] in sees
            elif inside(p, build):
                ok = True                                 # build-private directories
            elif inside(p, root):
                r = os.path.relpath(p, root)
                ok = any(r == table.dirs[l] for l in sees)
            else:
                ok = True                                 # system headers
            if not ok:
                shown = os.path.relpath(p, root) if inside(p, root) else p
                bad.append("%s (layer %s): compiled with -I %s, outside what %s may see"
                           % (rel, own, shown, own))
    for line in bad:
        print(line)
    print("check-build: %d source files, %d include paths out of their layer"
          % (seen_files, len(bad)))
    if seen_files == 0:
        print("check-build: no compile of src/ or sidecar/ in compile_commands.json")
        return 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
