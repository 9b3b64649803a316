#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
r"""Golden MCP transcripts for cortexd: request lines in, expected response
lines out, compared as JSON.

Usage: run-golden.py [--cortexd PATH] [-v] TRANSCRIPT...
cortexd is --cortexd, else $CORTEXD, else `cortexd` on PATH; -v prints every
line cortexd writes to stdout.

Each transcript runs against a fresh cortexd, started as
`cortexd --workspace <fresh temporary git repository> [extra args]` with the
test's environment plus CORTEX_AUTHOR=golden (header lines may add more).

Transcript syntax, one directive a line:

  (blank line)            ignored
  # text                  a comment, ignored
  #! args: A B ...        header: extra cortexd arguments (shell-quoted)
  #! file: NAME CONTENT   header: create NAME (relative to the workspace)
                          with CONTENT (escapes as for >raw, no newline is
                          added) before cortexd starts
  #! symlink: NAME TARGET header: create the symbolic link NAME (relative to
                          the workspace) pointing at TARGET, as written
  #! env: KEY=VALUE       header: set an environment variable for cortexd
  > {json}                send this line (after ${name} substitution)
  >raw TEXT               send TEXT verbatim plus "\n", after ${name}
                          substitution and these escapes: \\ backslash,
                          \r CR, \n LF, \t TAB, \xHH the byte 0xHH, \s a
                          space (useful at the end of a line); any other
                          backslash stays as it is
  >raw-nonl TEXT          the same without the trailing "\n"
  >big N                  send one line of exactly N bytes (plus "\n"): a
                          ping request padded with "x" in a string param
  >deep N                 send a ping request whose params nest N levels
                          deep (N >= 2; objects and arrays alternate)
  < {json}                read the next stdout line (10 s timeout) and
                          compare it to the expected JSON (see below)
  <none                   assert no output line arrives within 0.5 s
  !close                  close cortexd's stdin; at the end cortexd must
                          exit 0 within 5 s with no output beyond the `<`
                          lines that follow
  !signal NAME            send signal NAME (e.g. TERM); at the end cortexd
                          must exit 0 within 5 s
  !sleep SECONDS          pause

When a transcript ends without !close or !signal, stdin is closed and the
same exit check applies. Any stdout line left unread is a failure, every
stdout line must be a JSON object with "jsonrpc": "2.0" (or, answering a
2025-03-26 batch, a non-empty array of such objects), and a sanitizer
report on stderr (ASan, LSan, UBSan "runtime error:") is a failure.

Comparison of `<` lines: exact JSON equality (an integer never equals a
float or a boolean), except:
  - expected strings that are placeholders:
      "<any>"       anything
      "<string>"    any string
      "<json>"      a string holding valid JSON text
      "<ulid>"      26 Crockford base32 characters
      "<iso>"       ISO 8601 UTC time: YYYY-MM-DDTHH:MM:SS[.fff]Z
      "<number>"    an integer or a float
      "<int>"       an integer
      "<bool>"      true or false
      "<sha256>"    64 lowercase hex digits
      "<re:REGEX>"  a string in which REGEX matches (re.search)
      "<oneof:A|B>" one of the strings A, B, ... (or an integer written
                    as one of them: "<oneof:-32600|-32602>")
      "<capture:NAME>"       anything; the value is recorded as NAME
      "<capture:NAME:TYPE>"  as <TYPE> (e.g. ulid), then recorded as NAME
      "<ref:NAME>"  equal to the value captured as NAME, possibly earlier
                    in the same line (members and elements are matched in
                    the order they are written)
  - an expected object with the member "...": true may have fewer members
    than the actual one (otherwise the member names must be equal);
  - an expected array whose last element is "..." matches an actual array
    whose first elements match the ones before it (otherwise the lengths
    must be equal);
  - an expected array whose first element is "<unordered>" matches an
    actual array of the other elements in any order (JSON-RPC batch
    responses).
${NAME} in `>` and `<` lines is replaced by the captured value: a string
capture is inserted as its JSON-escaped text without quotes (so write
"${id}" inside a JSON string), any other value as JSON. In a `<` line
${NAME} must have been captured on an earlier line; use "<ref:NAME>" for a
value captured earlier in the same line. ${WORKSPACE} is predefined: the
workspace root (a real path). Header lines (#!) may appear anywhere in the
file; they all take effect before cortexd starts.

Invariant checked on every tools/call result: when structuredContent is
present, one text block of content holds JSON equal to it.

Output: PASS/FAIL per file, with a unified diff of expected vs actual and
cortexd's stderr on failure, then "N passed, N failed". Exit status 1 when
any transcript failed.
"""

import argparse
import difflib
import json
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

READ_TIMEOUT = 10.0
NONE_WINDOW = 0.5
EXIT_TIMEOUT = 5.0
# UBSan may report and carry on (exit status 0): its reports fail the test too.
SANITIZER_REPORT = re.compile(r"runtime error:|ERROR: (Address|Leak|Thread|Memory|UndefinedBehavior)Sanitizer")

PLACEHOLDER_TYPES = {
    "any": lambda v: True,
    "string": lambda v: isinstance(v, str),
    "json": lambda v: isinstance(v, str) and _is_json(v),
    "ulid": lambda v: isinstance(v, str) and re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", v) is not None,
    "iso": lambda v: isinstance(v, str)
    and re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z", v) is not None,
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "sha256": lambda v: isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) is not None,
}


def _is_json(s):
    try:
        json.loads(s)
        return True
    except ValueError:
        return False


class TranscriptError(Exception):
    """A malformed transcript (the test's fault, not cortexd's)."""


class Abort(Exception):
    """Stop running this transcript (cortexd stopped answering)."""


# ---- matching ---------------------------------------------------------------


def match(exp, act, caps, path, why):
    """True when act matches exp. Records captures into caps and the first
    reason for a mismatch into why (a list)."""

    def fail(msg):
        if not why:
            why.append("%s: %s" % (path or "$", msg))
        return False

    if isinstance(exp, str) and len(exp) >= 3 and exp[0] == "<" and exp[-1] == ">":
        body = exp[1:-1]
        if body in PLACEHOLDER_TYPES:
            return PLACEHOLDER_TYPES[body](act) or fail("expected %s, got %s" % (exp, _short(act)))
        if body.startswith("re:"):
            if isinstance(act, str) and re.search(body[3:], act):
                return True
            return fail("expected a string matching /%s/, got %s" % (body[3:], _short(act)))
        if body.startswith("oneof:"):
            alts = body[6:].split("|")
            if isinstance(act, str) and act in alts:
                return True
            if isinstance(act, int) and not isinstance(act, bool) and str(act) in alts:
                return True
            return fail("expected one of %s, got %s" % (body[6:], _short(act)))
        if body.startswith("ref:"):
            name = body[4:]
            if name not in caps:
                return fail("nothing was captured as %s" % name)
            if caps[name] == act and type(caps[name]) is type(act):
                return True
            return fail("expected %s (captured as %s), got %s" % (_short(caps[name]), name, _short(act)))
        if body.startswith("capture:"):
            parts = body.split(":")
            name = parts[1]
            if len(parts) > 2:
                t = ":".join(parts[2:])
                if t not in PLACEHOLDER_TYPES:
                    raise TranscriptError("unknown capture type %r" % t)
                if not PLACEHOLDER_TYPES[t](act):
                    return fail("expected <%s> for capture %s, got %s" % (t, name, _short(act)))
            caps[name] = act
            return True
    if isinstance(exp, dict):
        if not isinstance(act, dict):
            return fail("expected an object, got %s" % _short(act))
        open_ = exp.get("...") is True
        keys = [k for k in exp if not (k == "..." and open_)]
        missing = [k for k in keys if k not in act]
        if missing:
            return fail("missing member(s) %s" % ", ".join(missing))
        if not open_:
            extra = [k for k in act if k not in exp]
            if extra:
                return fail("unexpected member(s) %s" % ", ".join(extra))
        ok = True
        for k in keys:
            ok = match(exp[k], act[k], caps, "%s.%s" % (path or "$", k), why) and ok
        return ok
    if isinstance(exp, list) and exp[:1] == ["<unordered>"]:
        if not isinstance(act, list):
            return fail("expected an array, got %s" % _short(act))
        items = exp[1:]
        if len(act) != len(items):
            return fail("expected %d element(s) in any order, got %d" % (len(items), len(act)))
        chosen = _match_unordered(items, act, caps)
        if chosen is None:
            return fail("the elements do not match %s in any order" % _short(items))
        caps.update(chosen)
        return True
    if isinstance(exp, list):
        if not isinstance(act, list):
            return fail("expected an array, got %s" % _short(act))
        open_ = len(exp) > 0 and exp[-1] == "..."
        items = exp[:-1] if open_ else exp
        if (open_ and len(act) < len(items)) or (not open_ and len(act) != len(items)):
            return fail(
                "expected %s%d element(s), got %d" % ("at least " if open_ else "", len(items), len(act))
            )
        ok = True
        for i, e in enumerate(items):
            ok = match(e, act[i], caps, "%s[%d]" % (path or "$", i), why) and ok
        return ok
    # Scalars: exact, with strict types (true is not 1, 1 is not 1.0).
    if isinstance(exp, float):
        same = isinstance(act, (int, float)) and not isinstance(act, bool) and act == exp
    else:
        same = type(exp) is type(act) and exp == act
    return same or fail("expected %s, got %s" % (_short(exp), _short(act)))


def _match_unordered(items, act, caps):
    """Captures after matching every expected item to a distinct actual
    element (backtracking), or None."""

    def go(i, used, cur):
        if i == len(items):
            return cur
        for j, a in enumerate(act):
            if j in used:
                continue
            trial = dict(cur)
            if match(items[i], a, trial, "", []):
                done = go(i + 1, used | {j}, trial)
                if done is not None:
                    return done
        return None

    return go(0, frozenset(), dict(caps))


def _short(v):
    s = json.dumps(v, ensure_ascii=False)
    return s if len(s) <= 120 else s[:117] + "..."


def align(exp, act, caps, top=True):
    """A rendering of act that reuses exp wherever it matches, so that a diff
    shows only the real differences. Extra members that an open object
    allows are left out, except in the message itself."""
    if match(exp, act, dict(caps), "", []):
        return exp
    if isinstance(exp, dict) and isinstance(act, dict):
        out = {}
        for k in exp:
            if k in act:
                out[k] = align(exp[k], act[k], caps, False)
        if exp.get("...") is True and not top:
            out["..."] = True
        else:
            for k in act:
                if k not in out:
                    out[k] = act[k]
        return out
    if isinstance(exp, list) and isinstance(act, list):
        return [align(exp[i], a, caps, False) if i < len(exp) and exp[i] != "..." else a for i, a in enumerate(act)]
    return act


# ---- substitution and escapes ---------------------------------------------


def substitute(text, caps, lineno):
    def rep(m):
        name = m.group(1)
        if name not in caps:
            raise TranscriptError("line %d: ${%s} was never captured" % (lineno, name))
        v = caps[name]
        return json.dumps(v)[1:-1] if isinstance(v, str) else json.dumps(v)

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", rep, text)


def unescape(text):
    out = bytearray()
    raw = text.encode("utf-8")
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == 0x5C and i + 1 < len(raw):
            n = chr(raw[i + 1])
            simple = {"\\": b"\\", "r": b"\r", "n": b"\n", "t": b"\t", "s": b" "}
            if n in simple:
                out += simple[n]
                i += 2
                continue
            if n == "x" and i + 4 <= len(raw) and re.fullmatch(rb"[0-9A-Fa-f]{2}", raw[i + 2 : i + 4]):
                out.append(int(raw[i + 2 : i + 4], 16))
                i += 4
                continue
        out.append(c)
        i += 1
    return bytes(out)


def big_line(n):
    head = b'{"jsonrpc":"2.0","id":"big","method":"ping","params":{"pad":"'
    tail = b'"}}'
    if n < len(head) + len(tail):
        raise TranscriptError(">big needs at least %d bytes" % (len(head) + len(tail)))
    return head + b"x" * (n - len(head) - len(tail)) + tail


def deep_line(n):
    if n < 2:
        raise TranscriptError(">deep needs N >= 2")
    # params is level 2 (the message itself is level 1).
    inner_levels = n - 2
    opens, closes = [], []
    for i in range(inner_levels):
        if i % 2 == 0:
            opens.append('{"a":')
            closes.append("}")
        else:
            opens.append("[")
            closes.append("]")
    value = "".join(opens) + "0" + "".join(reversed(closes))
    return ('{"jsonrpc":"2.0","id":"deep","method":"ping","params":{"v":%s}}' % value).encode()


# ---- the process ------------------------------------------------------------


class Server:
    def __init__(self, argv, env, cwd):
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
        )
        self.lines = queue.Queue()
        self.stderr = bytearray()
        self.eof = threading.Event()
        self._t_out = threading.Thread(target=self._read_out, daemon=True)
        self._t_err = threading.Thread(target=self._read_err, daemon=True)
        self._t_out.start()
        self._t_err.start()
        self.stdin_closed = False

    def _read_out(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.eof.set()
        self.lines.put(None)

    def _read_err(self):
        while True:
            chunk = self.proc.stderr.read1(65536) if hasattr(self.proc.stderr, "read1") else self.proc.stderr.read(65536)
            if not chunk:
                break
            self.stderr += chunk

    def send(self, data):
        if self.stdin_closed:
            raise TranscriptError("cannot send after !close")
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise Abort("writing to cortexd failed: %s (did it exit?)" % e)

    def close_stdin(self):
        if not self.stdin_closed:
            self.stdin_closed = True
            try:
                self.proc.stdin.close()
            except OSError:
                pass

    def next_line(self, timeout):
        """A line (bytes), None at EOF, or raises queue.Empty on timeout."""
        item = self.lines.get(timeout=timeout)
        if item is None:
            self.lines.put(None)  # stay at EOF
        return item

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._t_out.join(timeout=2)
        self._t_err.join(timeout=2)


# ---- one transcript ---------------------------------------------------------


def parse(path):
    headers = {"args": [], "files": [], "symlinks": [], "env": {}}
    steps = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if line.startswith("#!"):
                body = line[2:].strip()
                key, _, val = body.partition(":")
                key, val = key.strip(), val.strip()
                if key == "args":
                    headers["args"] += shlex.split(val)
                elif key == "file":
                    name, _, content = val.partition(" ")
                    if not name:
                        raise TranscriptError("%s:%d: #! file: needs a name" % (path, lineno))
                    headers["files"].append((name, content))
                elif key == "symlink":
                    parts = val.split()
                    if len(parts) != 2:
                        raise TranscriptError("%s:%d: #! symlink: needs NAME TARGET" % (path, lineno))
                    headers["symlinks"].append((parts[0], parts[1]))
                elif key == "env":
                    k, eq, v = val.partition("=")
                    if not eq:
                        raise TranscriptError("%s:%d: #! env: needs KEY=VALUE" % (path, lineno))
                    headers["env"][k] = v
                else:
                    raise TranscriptError("%s:%d: unknown header %r" % (path, lineno, key))
                continue
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line.startswith(">raw-nonl "):
                steps.append((lineno, "raw-nonl", line[len(">raw-nonl ") :]))
            elif line.startswith(">raw "):
                steps.append((lineno, "raw", line[len(">raw ") :]))
            elif line.startswith(">big "):
                steps.append((lineno, "big", int(line[5:].strip())))
            elif line.startswith(">deep "):
                steps.append((lineno, "deep", int(line[6:].strip())))
            elif line.startswith("> "):
                steps.append((lineno, "send", line[2:]))
            elif line.strip() == "<none":
                steps.append((lineno, "none", None))
            elif line.startswith("< "):
                steps.append((lineno, "expect", line[2:]))
            elif line.strip() == "!close":
                steps.append((lineno, "close", None))
            elif line.startswith("!signal "):
                name = line[8:].strip().upper()
                if not name.startswith("SIG"):
                    name = "SIG" + name
                if not hasattr(signal, name):
                    raise TranscriptError("%s:%d: unknown signal %s" % (path, lineno, name))
                steps.append((lineno, "signal", getattr(signal, name)))
            elif line.startswith("!sleep "):
                steps.append((lineno, "sleep", float(line[7:])))
            else:
                raise TranscriptError("%s:%d: cannot parse: %s" % (path, lineno, line[:120]))
    return headers, steps


def pretty(v):
    return json.dumps(v, indent=2, ensure_ascii=False).splitlines()


def check_envelope(obj):
    """Problems with one stdout message regardless of the transcript. A
    non-empty array of messages is a JSON-RPC batch response (2025-03-26)."""
    if isinstance(obj, list) and obj:
        for o in obj:
            bad = check_envelope(o) if isinstance(o, dict) else "a batch element is not a JSON object"
            if bad:
                return bad
        return None
    if not isinstance(obj, dict):
        return "not a JSON object"
    if obj.get("jsonrpc") != "2.0":
        return 'no "jsonrpc": "2.0"'
    res = obj.get("result")
    if isinstance(res, dict) and "structuredContent" in res and isinstance(res.get("content"), list):
        sc = res["structuredContent"]
        texts = [c.get("text") for c in res["content"] if isinstance(c, dict) and c.get("type") == "text"]
        ok = False
        for t in texts:
            try:
                if json.loads(t) == sc:
                    ok = True
            except (TypeError, ValueError):
                pass
        if not ok:
            return "structuredContent is not repeated as JSON in a text block"
    return None


def run_transcript(cortexd, path, verbose):
    headers, steps = parse(path)
    tmp = tempfile.mkdtemp(prefix="cortex-golden-")
    problems = []
    diffs = []  # (title, expected lines, actual lines) of each failing step
    srv = None
    try:
        ws = os.path.realpath(os.path.join(tmp, "ws"))
        os.mkdir(ws)
        subprocess.run(["git", "init", "-q", ws], check=True, stdout=subprocess.DEVNULL)
        for name, content in headers["files"]:
            full = os.path.join(ws, name)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "wb") as f:
                f.write(unescape(content))
        for name, target in headers["symlinks"]:
            full = os.path.join(ws, name)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            os.symlink(target, full)
        env = dict(os.environ)
        env.pop("CORTEX_WORKSPACE", None)
        env["CORTEX_AUTHOR"] = "golden"
        env.update(headers["env"])
        argv = [cortexd, "--workspace", ws] + headers["args"]
        caps = {"WORKSPACE": ws}
        srv = Server(argv, env, tmp)
        ended = None  # "close" / "signal"

        def record(lineno, exp_text, exp, act_obj, raw):
            why = []
            ok = act_obj is not None and match(exp, act_obj, caps, "", why)
            if not ok:
                act = [raw] if act_obj is None else pretty(align(exp, act_obj, caps))
                diffs.append(("line %d" % lineno, pretty(exp), act))
                problems.append("line %d: %s" % (lineno, why[0] if why else "mismatch"))

        def read_one(timeout):
            try:
                line = srv.next_line(timeout)
            except queue.Empty:
                return "timeout", None, None
            if line is None:
                return "eof", None, None
            text = line.decode("utf-8", "replace").rstrip("\n")
            try:
                obj = json.loads(text)
            except ValueError:
                problems.append("stdout line is not JSON: %s" % text[:200])
                return "line", None, text
            if verbose:
                print("    <<< %s" % text[:300])
            bad = check_envelope(obj)
            if bad:
                problems.append("%s: %s" % (bad, text[:200]))
            return "line", obj, text

        def run_steps():
            nonlocal ended
            for lineno, kind, arg in steps:
                if kind == "send":
                    srv.send(substitute(arg, caps, lineno).encode("utf-8") + b"\n")
                elif kind in ("raw", "raw-nonl"):
                    data = unescape(substitute(arg, caps, lineno))
                    srv.send(data + (b"\n" if kind == "raw" else b""))
                elif kind == "big":
                    srv.send(big_line(arg) + b"\n")
                elif kind == "deep":
                    srv.send(deep_line(arg) + b"\n")
                elif kind == "sleep":
                    time.sleep(arg)
                elif kind == "close":
                    srv.close_stdin()
                    ended = "close"
                elif kind == "signal":
                    srv.proc.send_signal(arg)
                    ended = "signal"
                elif kind == "none":
                    st, obj, text = read_one(NONE_WINDOW)
                    if st == "line":
                        diffs.append(("line %d (no output expected)" % lineno, [],
                                      pretty(obj) if obj is not None else [text]))
                        problems.append("line %d: expected no output, got %s" % (lineno, text[:200]))
                elif kind == "expect":
                    exp_text = substitute(arg, caps, lineno)
                    try:
                        exp = json.loads(exp_text)
                    except ValueError as e:
                        raise TranscriptError("%s:%d: expected line is not JSON: %s" % (path, lineno, e))
                    st, obj, text = read_one(READ_TIMEOUT)
                    if st != "line":
                        diffs.append(("line %d" % lineno, pretty(exp), [
                            "(%s)" % ("no answer within %g s" % READ_TIMEOUT if st == "timeout" else "end of output")]))
                        problems.append("line %d: %s" % (lineno, "timed out" if st == "timeout" else "cortexd closed stdout"))
                        raise Abort("no answer")
                    record(lineno, exp_text, exp, obj, text)

        try:
            run_steps()
        except Abort as e:
            problems.append("aborted: %s" % e)

        # The end: close stdin unless done, then the process must exit 0.
        if ended is None:
            srv.close_stdin()
        rc = srv.wait(EXIT_TIMEOUT)
        if rc is None:
            problems.append("cortexd did not exit within %g s after %s" % (
                EXIT_TIMEOUT, "SIGTERM" if ended == "signal" else "stdin was closed"))
        elif rc != 0:
            problems.append("cortexd exited with status %d" % rc)
        srv.eof.wait(2 if rc is not None else 0)
        srv._t_err.join(timeout=2 if rc is not None else 0)
        for l in srv.stderr.decode("utf-8", "replace").splitlines():
            if SANITIZER_REPORT.search(l):
                problems.append("sanitizer report on stderr: %s" % l.strip()[:200])
                break
        while True:
            st, obj, text = read_one(0.05 if srv.eof.is_set() else 0)
            if st != "line":
                break
            diffs.append(("unread output", [], pretty(obj) if obj is not None else [text]))
            problems.append("unread output: %s" % text[:200])
    finally:
        if srv:
            srv.kill()
        shutil.rmtree(tmp, ignore_errors=True)

    name = os.path.basename(path)
    if not problems:
        print("PASS %s" % name)
        return True
    print("FAIL %s" % name)
    for p in problems:
        print("  - %s" % p)
    for title, exp_l, act_l in diffs:
        print("  %s, expected vs actual:" % title)
        for d in list(difflib.unified_diff(exp_l, act_l, "expected", "actual", lineterm="", n=3))[2:]:
            print("    " + d)
    err = srv.stderr.decode("utf-8", "replace") if srv else ""
    if err.strip():
        lines = err.rstrip("\n").splitlines()
        print("  cortexd stderr%s:" % (" (last 60 lines)" if len(lines) > 60 else ""))
        for l in lines[-60:]:
            print("    " + l)
    return False


def main():
    ap = argparse.ArgumentParser(description="Run golden MCP transcripts against cortexd.")
    ap.add_argument("--cortexd", default=os.environ.get("CORTEXD") or shutil.which("cortexd"))
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("transcripts", nargs="+")
    a = ap.parse_args()
    if not a.cortexd:
        print("no cortexd: pass --cortexd or set CORTEXD", file=sys.stderr)
        return 2
    if os.sep in a.cortexd:
        a.cortexd = os.path.abspath(a.cortexd)  # transcripts run in a temporary directory
    passed = failed = 0
    for t in a.transcripts:
        try:
            ok = run_transcript(a.cortexd, t, a.verbose)
        except TranscriptError as e:
            print("FAIL %s\n  - bad transcript: %s" % (os.path.basename(t), e))
            ok = False
        except OSError as e:
            print("FAIL %s\n  - %s" % (os.path.basename(t), e))
            ok = False
        passed += ok
        failed += not ok
        sys.stdout.flush()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
