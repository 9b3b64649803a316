#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# with-pg.py [--databases N] [--as NAME] -- CMD [ARG...]
#
# Runs CMD beside a real PostgreSQL (tests/pglib.py): starts a throwaway
# cluster, creates N databases (default 1) owned by the login role, and runs
# CMD with CORTEX_TEST_PG_URI set to the first one's URI (the others as
# CORTEX_TEST_PG_URI_2, _3, ...; with --as NAME, NAME too names the first)
# and PGPASSFILE to the pass file; every other PG* variable is removed. The server is stopped and its directory
# removed when CMD ends, on failure too, and on SIGTERM (CMD gets it too).
# CMD's exit status is ours.
#
# Where PostgreSQL is missing, says so on stderr and runs CMD without
# CORTEX_TEST_PG_URI, so that the test runs its SQLite half only; with
# CORTEX_TEST_REQUIRE_PG=1, or in CI (CI=true: .ci/setup.sh --test installs
# PostgreSQL there, so missing means broken), that is a failure (exit 1).
import os, signal, subprocess, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import pglib  # noqa: E402


def on_term(signum, frame):
    # A test runner's timeout or a kill: unwind, so that the server is
    # stopped and its directory removed.
    raise SystemExit(128 + signum)


def main(argv):
    signal.signal(signal.SIGTERM, on_term)
    n, alias = 1, None
    args = argv[1:]
    while args[:1] in (["--databases"], ["--as"]) and len(args) >= 2:
        if args[0] == "--databases":
            n = int(args[1])
        else:
            alias = args[1]
        args = args[2:]
    if args[:1] != ["--"] or len(args) < 2 or not 1 <= n <= 16:
        print("usage: with-pg.py [--databases N] [--as NAME] -- CMD [ARG...]", file=sys.stderr)
        return 2
    cmd = args[1:]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CORTEX_TEST_PG_URI") and k != alias}
    try:
        pg = pglib.Postgres()
    except pglib.Missing as e:
        if os.environ.get("CORTEX_TEST_REQUIRE_PG") == "1" or os.environ.get("CI") == "true":
            print(f"with-pg: {e}; failing: CORTEX_TEST_REQUIRE_PG=1 or CI=true asks for it",
                  file=sys.stderr)
            return 1
        print(f"with-pg: {e}; running {os.path.basename(cmd[0])} on SQLite only",
              file=sys.stderr, flush=True)
        return subprocess.call(cmd, env=env)
    with pg:
        env = pg.env(env)
        for i in range(n):
            key = "CORTEX_TEST_PG_URI" + ("" if i == 0 else f"_{i + 1}")
            env[key] = pg.create_database(f"cortex_test_{i + 1}")
        if alias:
            env[alias] = env["CORTEX_TEST_PG_URI"]
        print(f"with-pg: PostgreSQL on 127.0.0.1:{pg.port} for {os.path.basename(cmd[0])}",
              file=sys.stderr, flush=True)
        p = subprocess.Popen(cmd, env=env)
        try:
            return p.wait()
        except BaseException:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            raise


if __name__ == "__main__":
    rc = main(sys.argv)
    sys.exit(rc if rc >= 0 else 128 - rc)
