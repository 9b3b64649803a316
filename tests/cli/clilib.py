# SPDX-License-Identifier: Apache-2.0
"""What the command-line tests share (tests/cli, tests/start): a failing
check, the result of one `cortex` run, and the pattern of a sanitizer
report. Standard library only."""
import json
import re

SANITIZER = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:")


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


class Result:
    """One run of `cortex ARGS`: exit status and decoded stdout/stderr."""

    def __init__(self, args, rc, out, err):
        self.args, self.rc, self.out, self.err = args, rc, out, err

    def __str__(self):
        return "cortex %s -> %d\n--- stdout\n%s--- stderr\n%s" % (
            " ".join(self.args), self.rc, self.out, self.err)

    def json(self):
        try:
            return json.loads(self.out)
        except ValueError as e:
            raise Fail("stdout is not one JSON document (%s):\n%s" % (e, self))
