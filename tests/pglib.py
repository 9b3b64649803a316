# SPDX-License-Identifier: Apache-2.0
"""A real PostgreSQL for the tests: a throwaway cluster in a temporary
directory, started and stopped by the test that needs it.

    with pglib.Postgres() as pg:        # raises pglib.Missing when it cannot
        uri = pg.create_database("t1")  # postgresql://cortex@127.0.0.1:PORT/t1
        env = pg.env()                  # PGPASSFILE (and nothing else of libpq)

initdb runs in a new temporary directory (as the `postgres` user when the
tests run as root: PostgreSQL refuses to run as root, so that directory is
handed to it), `postgres` listens on 127.0.0.1 on a free port and on a unix
socket in that directory, readiness is awaited with a bound, and a login
role `cortex` with a random password is created. Clients get a libpq URI
without the password and a PGPASSFILE (mode 0600) holding it: the password
is never on a command line. The superuser connects only over the unix
socket (trust, as the cluster's owner). stop() (or leaving the `with`)
shuts the server down (fast, then immediate, then SIGKILL, each bounded)
and removes everything, on failure too. The server stays in the caller's
process group, so that a test runner that kills the group (a timeout)
takes it too.

Where PostgreSQL is missing (no binaries in CORTEX_PG_BINDIR or
/usr/lib/postgresql/15/bin, or root without a `postgres` user) the
constructor raises Missing with a sentence saying what and how to get it
(`bash .ci/setup.sh --test`); callers print it and run their SQLite half.
"""
import os, pwd, secrets, shutil, signal, socket, subprocess, tempfile, time

DEFAULT_BINDIR = "/usr/lib/postgresql/15/bin"
ROLE = "cortex"


class Missing(Exception):
    """PostgreSQL cannot be started here; str() says why."""


def bindir():
    return os.environ.get("CORTEX_PG_BINDIR") or DEFAULT_BINDIR


def missing_reason():
    """None when a server can be started here, else a sentence why not."""
    b = bindir()
    for prog in ("initdb", "postgres", "psql"):
        if not os.access(os.path.join(b, prog), os.X_OK):
            return (f"PostgreSQL is missing: no {prog} in {b} "
                    "(install postgresql-15 with `bash .ci/setup.sh --test`, "
                    "or point CORTEX_PG_BINDIR at its bin directory)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "PostgreSQL cannot run as root and there is no `postgres` user to run it as"
    return None


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    def __init__(self, start_timeout=60):
        why = missing_reason()
        if why:
            raise Missing(why)
        self.bin = bindir()
        self.proc = None
        self.top = tempfile.mkdtemp(prefix="cortex-pg-")
        try:
            self._setup(start_timeout)
        except BaseException:
            self.stop()
            raise

    # --- running things as the cluster's owner
    def _owner_kw(self):
        if os.geteuid() != 0:
            return {}
        return {"user": "postgres", "group": "postgres", "extra_groups": []}

    def _run(self, args, input=None, timeout=60):
        p = subprocess.run(args, input=input, capture_output=True, text=True, timeout=timeout,
                           cwd=self.pgdir, env=self._admin_env(), **self._owner_kw())
        if p.returncode != 0:
            raise RuntimeError(f"{os.path.basename(args[0])} failed ({p.returncode}): "
                               f"{p.stderr.strip()[-2000:]}")
        return p.stdout

    def _admin_env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        return env

    def _setup(self, start_timeout):
        # The cluster's own directory belongs to its owner; the top stays
        # the caller's (the pass file lives there, 0600, the caller's).
        self.pgdir = os.path.join(self.top, "pg")
        os.mkdir(self.pgdir, 0o700)
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.pgdir, pw.pw_uid, pw.pw_gid)
            os.chmod(self.top, 0o711)
        self.data = os.path.join(self.pgdir, "data")
        self._run([os.path.join(self.bin, "initdb"), "-D", self.data, "-U", "postgres",
                   "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                   "--locale=C", "--no-sync"], timeout=120)
        self.password = secrets.token_urlsafe(24)
        for attempt in range(5):
            self.port = _free_port()
            if self._start(start_timeout):
                break
        else:
            raise RuntimeError("postgres did not start: " + self._log_tail())
        # The login role; its password goes through psql's stdin only.
        self.sql("CREATE ROLE %s LOGIN PASSWORD '%s';" % (ROLE, self.password))
        self.passfile = os.path.join(self.top, "pgpass")
        fd = os.open(self.passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("127.0.0.1:%d:*:%s:%s\n" % (self.port, ROLE, self.password))

    def _log_tail(self):
        try:
            with open(os.path.join(self.top, "postgres.log")) as f:
                return f.read()[-2000:]
        except OSError:
            return "(no log)"

    def _start(self, timeout):
        """Starts postgres on self.port; False when it could not bind."""
        log = open(os.path.join(self.top, "postgres.log"), "a")
        if os.geteuid() == 0:
            os.chown(log.name, pwd.getpwnam("postgres").pw_uid, -1)
        self.proc = subprocess.Popen(
            [os.path.join(self.bin, "postgres"), "-D", self.data, "-p", str(self.port),
             "-k", self.pgdir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
             "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=200", "-c", "shared_buffers=32MB"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=self._admin_env(),
            cwd=self.pgdir, **self._owner_kw())
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                if "could not bind" in self._log_tail() or "in use" in self._log_tail():
                    return False
                raise RuntimeError("postgres exited at start: " + self._log_tail())
            p = subprocess.run([os.path.join(self.bin, "psql"), "-h", self.pgdir, "-p",
                                str(self.port), "-U", "postgres", "-d", "postgres", "-Atqc",
                                "SELECT 1"], capture_output=True, text=True, timeout=30,
                               env=self._admin_env())
            if p.returncode == 0 and p.stdout.strip() == "1":
                return True
            time.sleep(0.1)
        raise RuntimeError(f"postgres was not ready in {timeout} s: " + self._log_tail())

    # --- what tests use
    def sql(self, text, db="postgres"):
        """Runs SQL as the superuser over the unix socket (stdin, not argv)."""
        p = subprocess.run([os.path.join(self.bin, "psql"), "-h", self.pgdir, "-p",
                            str(self.port), "-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1",
                            "-Atq"], input=text, capture_output=True, text=True, timeout=60,
                           env=self._admin_env())
        if p.returncode != 0:
            raise RuntimeError("psql: " + p.stderr.strip())
        return p.stdout

    def create_database(self, name):
        """A new database owned by the login role; returns its URI."""
        assert name.replace("_", "").isalnum(), name
        self.sql('CREATE DATABASE "%s" OWNER %s;' % (name, ROLE))
        return self.uri(name)

    def uri(self, db):
        return "postgresql://%s@127.0.0.1:%d/%s" % (ROLE, self.port, db)

    def env(self, base=None):
        """base (default os.environ) with PGPASSFILE set and every other PG*
        variable removed, so that nothing of the caller's leaks in."""
        env = {k: v for k, v in (base if base is not None else os.environ).items()
               if not k.startswith("PG")}
        env["PGPASSFILE"] = self.passfile
        return env

    def stop(self):
        p, self.proc = self.proc, None
        if p is not None and p.poll() is None:
            # fast shutdown, then immediate, then kill; each bounded.
            for sig, wait in ((signal.SIGINT, 30), (signal.SIGQUIT, 10), (signal.SIGKILL, 10)):
                try:
                    os.kill(p.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    p.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        shutil.rmtree(self.top, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False
