#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# A push the core refuses because of one op does not wedge the outbox.
# cortex-core checks every op of a push against item.json before applying
# any, and answers a bad one with HTTP 400 and a message that begins
# "ops[N]." (N the op's index in the batch). A FAKE core (a small HTTPS
# server in this process on 127.0.0.1, a self-signed certificate made by
# openssl, as in test-pull-input.py) answers the first push that way,
# blaming ops[1], and accepts every later push. After three `cortex observe`
# and `cortex sync` in a workspace pointed at it:
# - the sync exits 0;
# - the core received the other two ops (in a later push), never op 1 again;
# - `cortex status --json` shows one rejected op, op 1 of the refused batch,
#   whose reason holds the core's message ("ops[1].item.title: …"), and an
#   empty backlog.
# A 400 that names no op of the batch (no "ops[N]." prefix, or an index past
# the batch) stays a failure: in a second workspace, whose pushes the fake
# core answers that way, `cortex sync` fails and the three ops stay in the
# backlog, none rejected. Prints "N passed, N failed"; exits non-zero on any
# failure.
import threading

from synclib import FakeCore, check, cli, fake_workspace, run, serve_fake_core, sync_state

MESSAGE = "ops[1].item.title: at most 200 bytes (got 1024)"

lock = threading.Lock()
pushes = []             # every push body the fake core received, in order
refusals = []           # what to answer the next pushes with: (status, message) ...


class Handler(FakeCore):
    def push(self, req):
        with lock:
            pushes.append(req)
            refusal = refusals.pop(0) if refusals else None
        if refusal:
            return refusal[0], {"error": {"code": "bad_request", "message": refusal[1]}}
        return super().push(req)


def tests(tmp):
    srv, url, cert = serve_fake_core(tmp, Handler)
    try:
        refused_op(tmp, url, cert)
        refused_batch(tmp, url, cert)
    finally:
        srv.shutdown()


def op_ids(push):
    return [o.get("op_id") for o in push.get("ops", [])]


def refused_op(tmp, url, cert):
    ws, env = fake_workspace(tmp, "W", url, cert, notes=3)
    with lock:
        pushes.clear()
        refusals[:] = [(400, MESSAGE)]
    p = cli(ws, env, "sync")
    check(p.returncode == 0, f"cortex sync exits 0: {p.returncode} {p.stderr}")
    check("1 rejected" in p.stderr, f"the sync says an op was rejected: {p.stderr}")

    with lock:
        got = list(pushes)
    check(len(got) >= 2, f"the core was pushed to again after the 400: {len(got)} push(es)")
    first = op_ids(got[0]) if got else []
    check(len(first) == 3, f"the refused push held the three ops: {first}")
    later = [i for push in got[1:] for i in op_ids(push)]
    if len(first) == 3:
        check(sorted(later) == sorted([first[0], first[2]]),
              f"the core received the other two ops, and not op 1 again: {later} of {first}")

    sync = sync_state(ws, env)
    check(sync.get("rejected") == 1, f"status shows one rejected op: {sync}")
    check(sync.get("backlog") == 0, f"nothing is left to push: {sync}")
    rej = sync.get("rejected_ops") or []
    check(len(rej) == 1, f"status lists the rejected op: {rej}")
    if rej:
        check("ops[1].item.title" in (rej[0].get("reason") or ""),
              f"its reason is the core's message: {rej[0]}")
        if len(first) == 3:
            check(rej[0].get("op_id") == first[1], f"the rejected op is op 1: {rej[0]} {first}")

    # the rejected op is not sent again
    with lock:
        pushes.clear()
    p = cli(ws, env, "sync")
    check(p.returncode == 0, f"second sync: {p.returncode} {p.stderr}")
    with lock:
        check(not pushes, f"nothing is pushed again: {pushes}")


def refused_batch(tmp, url, cert):
    ws, env = fake_workspace(tmp, "V", url, cert, notes=3)
    for message in ("the batch is malformed", "ops[3].item.title: at most 200 bytes (got 1024)"):
        with lock:
            refusals[:] = [(400, message)] * 50
        p = cli(ws, env, "sync")
        check(p.returncode != 0, f"a 400 that names no op of the batch fails the sync "
                                 f"({message!r}): {p.returncode} {p.stderr}")
        sync = sync_state(ws, env)
        check(sync.get("rejected") == 0, f"nothing was rejected ({message!r}): {sync}")
        check(sync.get("backlog") == 3, f"the three ops are still to push ({message!r}): {sync}")
    with lock:
        refusals.clear()


if __name__ == "__main__":
    run("cx-push-refused-", tests)
