/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes secret redaction (src/redact/redact.h) with arbitrary bytes: NULs,
 * invalid UTF-8, keyword fragments, half markers.
 *
 * Checked, with abort() and the input on any violation:
 * - redaction succeeds (no rule reaches its match limit, no other error);
 * - its matches are sorted, do not overlap and lie inside the text;
 * - the output holds nothing that a rule still matches, so it redacts to
 *   itself (idempotence), and it is at least as long as the kept text;
 * - an input with nothing to find comes back as NULL (no copy);
 * - cx_redact_is_text and cx_redact_credential_file accept any bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "redact/redact.h"
#include "util/error.h"

static void die(const char *why, const uint8_t *data, size_t size) {
    fprintf(stderr, "fuzz-redact: %s (%s)\n  input (%zu bytes): \"", why, cx_error_last(), size);
    for (size_t i = 0; i < size && i < 2000; i++) {
        if (data[i] >= 0x20 && data[i] < 0x7f && data[i] != '"' && data[i] != '\\')
            fputc(data[i], stderr);
        else
            fprintf(stderr, "\\x%02x", data[i]);
    }
    fputs("\"\n", stderr);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    cx_redact_match *m = NULL;
    size_t n = 0;
    if (cx_redact_find(text, size, &m, &n) != 0)
        die("cx_redact_find failed", data, size);
    for (size_t i = 0; i < n; i++)
        if (m[i].start >= m[i].end || m[i].end > size || (i && m[i - 1].end > m[i].start) ||
            m[i].rule >= cx_redact_rule_count())
            die("matches out of order, overlapping or outside the text", data, size);
    free(m);

    char *out = NULL;
    size_t out_len = 0;
    cx_redact_report rep = {0};
    if (cx_redact_text(text, size, &out, &out_len, &rep) != 0)
        die("cx_redact_text failed", data, size);
    if ((n == 0) != (out == NULL) || (out == NULL) != (rep.total == 0))
        die("a copy without a match, or a match without a copy", data, size);
    if (out) {
        if (out[out_len] != 0)
            die("the copy is not NUL-terminated", data, size);
        cx_redact_match *m2 = NULL;
        size_t n2 = 0;
        if (cx_redact_find(out, out_len, &m2, &n2) != 0)
            die("cx_redact_find failed on the copy", data, size);
        free(m2);
        if (n2 != 0)
            die("the redacted text still has a match", data, size);
        char *again = NULL;
        if (cx_redact_text(out, out_len, &again, NULL, NULL) != 0 || again != NULL)
            die("redaction is not idempotent", data, size);
        free(again);
        json_t *j = cx_redact_report_json(&rep);
        if (!j)
            die("no report for a redaction", data, size);
        json_decref(j);
        free(out);
    }
    (void)cx_redact_is_text(data, size);
    (void)cx_redact_credential_file(size > 0 && data[size - 1] == 0 ? text : NULL, data, size);
    return 0;
}
