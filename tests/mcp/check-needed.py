#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""cortexd links no library that it loads on first use.

SQLite (store/sqlite.c), libstemmer (text/tokenizer.c), libcurl
(net/curlapi.c), libgit2 (sidecar/gitlib.c), PCRE2 (redact/redact.c) and
libsodium (store/hash.c) are opened with dlopen() by the thread that needs them, after `initialize`
is answered: linked, each would be loaded and relocated before main() of
every cortexd start (libstemmer alone 1.3 ms of a 5 ms budget; see
bench/README.md). A change to the build that links one of them
again fails here, not only in a benchmark nobody ran.

Usage: check-needed.py PROGRAM...   (exit 77 when readelf is missing)
"""
import re
import shutil
import subprocess
import sys

LAZY = ("libsqlite3", "libstemmer", "libcurl", "libgit2", "libpcre2", "libsodium")


def needed(path):
    out = subprocess.run(["readelf", "-dW", path], check=True, capture_output=True,
                         text=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def main():
    if shutil.which("readelf") is None:
        print("readelf not found, skipping")
        return 77
    bad = 0
    for prog in sys.argv[1:]:
        libs = needed(prog)
        if not libs:
            print(f"FAIL {prog}: no NEEDED entries (not a dynamic executable?)")
            bad += 1
            continue
        for lib in libs:
            if lib.startswith(LAZY):
                print(f"FAIL {prog} links {lib}, which it must load with dlopen() on first use")
                bad += 1
        print(f"{prog}: {' '.join(libs)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
