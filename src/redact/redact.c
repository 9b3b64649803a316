/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder until the rule engine lands: finds nothing. */
#include "redact/redact.h"

#include <stdlib.h>
#include <string.h>

int cx_redact_init(void) { return 0; }
size_t cx_redact_rule_count(void) { return 0; }
const char *cx_redact_rule_id(size_t rule) { (void)rule; return "none"; }
const char *cx_redact_rule_description(size_t rule) { (void)rule; return ""; }
int cx_redact_find(const char *text, size_t len, cx_redact_match **out, size_t *n) {
    (void)text; (void)len; *out = NULL; *n = 0; return 0;
}
int cx_redact_text(const char *text, size_t len, char **out, size_t *out_len, cx_redact_report *rep) {
    (void)text; (void)len; (void)rep; *out = NULL; if (out_len) *out_len = 0; return 0;
}
int cx_redact_string(char **s, cx_redact_report *rep) { (void)s; (void)rep; return 0; }
const char *cx_redact_credential_file(const char *name, const void *data, size_t len) {
    (void)name; (void)data; (void)len; return NULL;
}
bool cx_redact_is_text(const void *data, size_t len) { return memchr(data, 0, len) == NULL; }
json_t *cx_redact_report_json(const cx_redact_report *rep) { (void)rep; return NULL; }
