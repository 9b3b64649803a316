#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The layering check (in the spirit of curl's checksrc): every #include in
every .c and .h under src/ and sidecar/ must name a header of a layer the
including file's layer may use, per tests/layering/layers.txt, the table the
build's include views are made from. A *-internal.h header may be included
only by its own layer and the layers its `internal` line names; a library's
header (<sqlite3.h>, <curl/...>) only by the layers its `external` line
names, so that only net knows libcurl and util stays libc only.

    check-layers.py [--root DIR] [--table FILE] [--allow FILE]

Prints one line per violation (FILE:LINE: ...) and exits 1 when there is one
that the allow-list (known-violations.txt) does not name. Allow-listed
violations are printed too, on every run, so that the list only shrinks.
"""

import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import layers  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
SCANNED = ("src", "sidecar")


def strip_comments(text):
    """The text with /* */ and // comments blanked, line count kept, so that
    an #include in a comment (an example) is not read as one."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("".join(c if c == "\n" else " " for c in text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
        elif text[i] == '"':                 # a string literal: keep as is
            j = i + 1
            while j < n and text[j] not in '"\n':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def load_allow(path):
    allow = []
    if not path or not os.path.exists(path):
        return allow
    with open(path, encoding="utf-8") as f:
        for raw in f:
            words = raw.split("#", 1)[0].split()
            if len(words) == 2:
                allow.append((words[0], words[1]))
            elif words:
                raise SystemExit("%s: expected 'FILE INCLUDE': %s" % (path, raw.strip()))
    return allow


def resolve(table, root, relfile, quote, name):
    """The layers and the root-relative header paths an include may reach:
    a list of (layer, path) pairs, empty for a system header."""
    first = name.split("/", 1)[0]
    if quote == '"' and not name.startswith("/"):
        local = os.path.normpath(os.path.join(os.path.dirname(relfile), name))
        if os.path.exists(os.path.join(root, local)) or ".." in name.split("/"):
            layer = table.layer_of(local)
            return [(layer, local)] if layer else [("(outside every layer)", local)]
    if first in table.dirs and "/" in name:
        return [(first, table.dirs[first] + "/" + name.split("/", 1)[1])]
    if quote == '"' and "/" not in name:
        # A bare name not beside the file: whatever directory holds it
        # (only an -I of that directory would make it compile).
        hits = []
        for layer in table.order:
            p = table.dirs[layer] + "/" + name
            if os.path.exists(os.path.join(root, p)):
                hits.append((layer, p))
        return hits
    return []


def check(root, table, allow):
    """Returns (violations, allowed): lists of (file, line, include, message)."""
    internal = {}
    for hdr, extra in table.internal.items():
        layer, rest = hdr.split("/", 1)
        internal[table.dirs[layer] + "/" + rest] = {layer} | extra
    violations, allowed = [], []
    files = []
    for top in SCANNED:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
            dirnames.sort()
            for fn in sorted(filenames):
                if fn.endswith((".c", ".h")):
                    files.append(os.path.relpath(os.path.join(dirpath, fn), root))
    for rel in files:
        own = table.layer_of(rel)
        if own is None:
            violations.append((rel, 0, "", "is in no layer of tests/layering/layers.txt "
                               "(add its directory there)"))
            continue
        sees = table.sees(own)
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
            text = strip_comments(f.read())
        for lineno, line in enumerate(text.split("\n"), 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            quote, name = m.group(1), m.group(2)
            pat = layers.external_owner(table, name) if quote == "<" else None
            if pat is not None and own not in table.external[pat]:
                msg = "includes <%s>, which only %s may use" % (
                    name, " ".join(sorted(table.external[pat])))
                entry = (rel, lineno, name, msg)
                (allowed if (rel, name) in allow else violations).append(entry)
                continue
            for layer, path in resolve(table, root, rel, quote, name):
                msg = None
                if layer not in sees:
                    msg = "includes \"%s\" of layer %s; %s may use only %s" % (
                        name, layer, own, " ".join(sorted(sees - {own})) or "libc")
                else:
                    base = os.path.basename(path)
                    limit = internal.get(path)
                    if limit is None and base.endswith("-internal.h"):
                        limit = {layer}
                    if limit is not None and own not in limit:
                        msg = "includes \"%s\", internal to %s" % (name, " and ".join(sorted(limit)))
                if msg:
                    entry = (rel, lineno, name, msg)
                    (allowed if (rel, name) in allow else violations).append(entry)
                    break
    return violations, allowed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=os.path.normpath(os.path.join(HERE, "..", "..")))
    ap.add_argument("--table", default=os.path.join(HERE, "layers.txt"))
    ap.add_argument("--allow", default=os.path.join(HERE, "known-violations.txt"))
    args = ap.parse_args()
    try:
        table = layers.load(args.table)
    except layers.TableError as e:
        print("check-layers: %s" % e)
        return 1
    allow = load_allow(args.allow)
    violations, allowed = check(args.root, table, allow)
    for rel, lineno, name, msg in allowed:
        print("%s:%d: known violation (allow-listed in %s): %s"
              % (rel, lineno, os.path.basename(args.allow), msg))
    used = {(a[0], a[2]) for a in allowed}
    for rel, name in allow:
        if (rel, name) not in used:
            print("%s: allow-list entry for \"%s\" no longer matches; remove it from %s"
                  % (rel, name, os.path.basename(args.allow)))
    for rel, lineno, name, msg in violations:
        print("%s:%d: %s" % (rel, lineno, msg))
    print("check-layers: %d violation(s), %d allow-listed" % (len(violations), len(allowed)))
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
