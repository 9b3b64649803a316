# SPDX-License-Identifier: Apache-2.0
"""The layer table (layers.txt), read once for the build and for the check.

As a module: load(path) -> Table, used by check-layers.py.
As a program, at configure time (meson.build):

    layers.py views TABLE ROOT OUTDIR

makes OUTDIR/<layer>/ for every layer, holding one symlink per layer it may
see (itself included) to that layer's directory under ROOT, and prints the
layer names, one a line. A library compiled with -I OUTDIR/<layer> finds
"store/store.h" exactly when store is in its view. A layer whose directory
does not exist yet gets a dangling link, which starts to resolve when the
directory appears.
"""

import os
import sys


class TableError(Exception):
    pass


class Table:
    def __init__(self):
        self.order = []       # layer names, in table order
        self.dirs = {}        # layer -> directory relative to the root
        self.uses = {}        # layer -> layers it uses directly
        self.internal = {}    # "store/store-internal.h" -> extra layers allowed
        self.external = {}    # "sqlite3.h" or "curl/" -> layers that may include it

    def sees(self, layer):
        """Every layer `layer` may include, itself included (the closure)."""
        seen, todo = set(), [layer]
        while todo:
            cur = todo.pop()
            if cur in seen:
                continue
            seen.add(cur)
            todo.extend(self.uses[cur])
        return seen

    def layer_of(self, relpath):
        """The layer a path (relative to the root) belongs to, or None: the
        layer with the longest directory that contains it."""
        best = None
        for name, d in self.dirs.items():
            if relpath == d or relpath.startswith(d + "/"):
                if best is None or len(d) > len(self.dirs[best]):
                    best = name
        return best


def load(path):
    t = Table()
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            words = raw.split("#", 1)[0].split()
            if not words:
                continue
            where = "%s:%d" % (path, lineno)
            if words[0] == "layer" and len(words) >= 3:
                name, d = words[1], words[2].rstrip("/")
                if name in t.dirs:
                    raise TableError("%s: layer %s twice" % (where, name))
                t.order.append(name)
                t.dirs[name] = d
                t.uses[name] = words[3:]
            elif words[0] == "internal" and len(words) >= 2:
                t.internal[words[1]] = set(words[2:])
            elif words[0] == "external" and len(words) >= 2:
                t.external[words[1]] = set(words[2:])
            else:
                raise TableError("%s: expected 'layer NAME DIR USES...', "
                                 "'internal HEADER LAYERS...' or 'external HEADER LAYERS...'"
                                 % where)
    for name, uses in t.uses.items():
        for u in uses:
            if u not in t.dirs:
                raise TableError("%s: layer %s uses unknown layer %s" % (path, name, u))
    for name in t.order:
        for u in t.uses[name]:
            if name in t.sees(u):
                raise TableError("%s: layers %s and %s see each other (a cycle)"
                                 % (path, name, u))
    for hdr, allowed in list(t.internal.items()) + list(t.external.items()):
        for a in allowed:
            if a not in t.dirs:
                raise TableError("%s: %s names unknown layer %s" % (path, hdr, a))
    return t


def external_owner(table, name):
    """The table's pattern for a system header (<name>), or None."""
    for pat in table.external:
        if name == pat or (pat.endswith("/") and name.startswith(pat)):
            return pat
    return None


def make_views(table, root, outdir):
    root = os.path.abspath(root)
    for name in table.order:
        view = os.path.join(outdir, name)
        os.makedirs(view, exist_ok=True)
        want = table.sees(name)
        for entry in os.listdir(view):          # drop what the table no longer allows
            if entry not in want:
                os.unlink(os.path.join(view, entry))
        for seen in want:
            link = os.path.join(view, seen)
            target = os.path.join(root, table.dirs[seen])
            if os.path.islink(link) and os.readlink(link) == target:
                continue
            if os.path.lexists(link):
                os.unlink(link)
            os.symlink(target, link)


def main(argv):
    if len(argv) != 5 or argv[1] != "views":
        sys.stderr.write("usage: layers.py views TABLE ROOT OUTDIR\n")
        return 2
    try:
        table = load(argv[2])
    except TableError as e:
        sys.stderr.write("layers.py: %s\n" % e)
        return 1
    make_views(table, argv[3], argv[4])
    for name in table.order:
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
