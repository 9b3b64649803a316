/* SPDX-License-Identifier: Apache-2.0 */
/* Runs cx_hook_run() as `cortex hook` does, for tests/hooks/test-hooks.py
 * when the cortex binary at hand has no `hook` command:
 *
 *     hook-driver EVENT [WORKSPACE|"" [MAX_TOKENS]]
 *
 * reads the hook JSON on stdin, writes the answer on stdout, exits with
 * cx_hook_run's status. */
#include "hooks.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc < 2 || argc > 4) {
        fputs("usage: hook-driver EVENT [WORKSPACE [MAX_TOKENS]]\n", stderr);
        return 64;
    }
    cx_hook_opts o = {0};
    if (argc > 2 && argv[2][0])
        o.workspace = argv[2];
    if (argc > 3) {
        char *end = NULL;
        unsigned long long n = strtoull(argv[3], &end, 10);
        if (!end || *end || end == argv[3]) {
            fputs("hook-driver: MAX_TOKENS must be a number\n", stderr);
            return 64;
        }
        o.max_tokens = (size_t)n;
    }
    o.author = getenv("CORTEX_AUTHOR");
    return cx_hook_run(argv[1], &o, stdin, stdout, stderr);
}
