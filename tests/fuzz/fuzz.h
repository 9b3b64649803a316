/* SPDX-License-Identifier: Apache-2.0 */
/* The libFuzzer entry point every fuzz target defines. Built either with
 * -fsanitize=fuzzer (clang, -Dfuzzing=true) or with fuzz-main.c, which
 * replays files given on the command line (the corpus, in `meson test`). */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reports a finding of target `name` on standard error (why, detail, and
 * the input, printable ASCII as is and every other byte escaped, at most
 * 4,000 bytes) and aborts, so the fuzzer keeps the input. */
static inline void fuzz_die(const char *name, const char *why, const char *detail,
                            const uint8_t *data, size_t size) {
    fprintf(stderr, "%s: %s\n  detail: %s\n  input (%zu bytes): ", name, why,
            detail ? detail : "", size);
    for (size_t i = 0; i < size && i < 4000; i++) {
        unsigned char c = data[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            fputc(c, stderr);
        else
            fprintf(stderr, "\\x%02x", c);
    }
    fputc('\n', stderr);
    abort();
}
