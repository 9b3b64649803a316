/* SPDX-License-Identifier: Apache-2.0 */
/* Secret redaction: every text that enters the store is scanned first with a
 * fixed rule set (cloud and SaaS key formats, private key blocks, JWTs,
 * connection strings with passwords, entropy-gated generic assignments) on
 * PCRE2 (loaded with dlopen() on first use), and each match becomes "[REDACTED:<rule-id>]". Known placeholders
 * (an allowlist) are left alone. Never prints; never returns a secret except
 * as offsets into the caller's own text.
 *
 * The rules are compiled once per process, on first use (cx_redact_init()
 * may be called early to move that cost off a latency-sensitive path). All
 * functions are thread-safe. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* The marker a match becomes: "[REDACTED:" rule-id "]". */
#define CX_REDACT_PREFIX "[REDACTED:"

/* Whether byte offset `at` of s[0, len) lies strictly inside a marker (after
 * its '[' and before the end of its ']'), so that a cut there would split
 * it; then [*start, *end) are the marker's bounds. A marker that does not
 * close within s[0, len) (the text was cut already) reaches to len. */
bool cx_redact_in_marker(const char *s, size_t len, size_t at, size_t *start, size_t *end);

/* Where to cut s[0, len) to keep at most `max` bytes: cx_utf8_cut's UTF-8
 * boundary, moved back to before a marker the cut would split (or the start
 * of one that the kept part ends with, "[REDAC"), so that a kept text never
 * ends in part of a marker. `more`: s is itself the start of a longer text
 * (cut elsewhere), so its end is a cut too. */
size_t cx_redact_cut(const char *s, size_t len, size_t max, bool more);

/* One match: rule index (see cx_redact_rule_id) and the byte range
 * [start, end) of the text that is replaced. */
typedef struct cx_redact_match {
    size_t rule;
    size_t start, end;
} cx_redact_match;

/* What a redaction did, accumulated over one or more calls: the number of
 * matches replaced and, per rule index, how often it fired. Zero it before
 * the first call (cx_redact_report r = {0}). */
#define CX_REDACT_MAX_RULES 128
typedef struct cx_redact_report {
    size_t total;
    unsigned counts[CX_REDACT_MAX_RULES];
} cx_redact_report;

/* Loads PCRE2 and compiles the rules (once; later calls return at once,
 * with the first call's result). 0, or CX_EFAIL with a message when PCRE2
 * cannot be loaded ("secret redaction needs PCRE2: cannot load ...") or a
 * rule does not compile (a bug). Every function that redacts calls it and
 * fails the same way, so nothing is written unredacted. */
int cx_redact_init(void);

/* The largest text cx_redact_find and cx_redact_text accept (CX_ELIMIT
 * beyond it). */
#define CX_REDACT_MAX_TEXT ((size_t)1 << 30)

/* The number of rules, and each rule's stable id (e.g. "aws-access-key-id")
 * and one-line description (NULL for a rule index out of range). */
size_t cx_redact_rule_count(void);
const char *cx_redact_rule_id(size_t rule);
const char *cx_redact_rule_description(size_t rule);

/* Finds every match in text[0, len) (any bytes; need not be NUL-terminated),
 * non-overlapping, sorted by start. *out is malloc'd (NULL when n == 0).
 * Where matches of two rules overlap, the earlier rule in the table (the
 * more specific one) wins. */
int cx_redact_find(const char *text, size_t len, cx_redact_match **out, size_t *n);

/* Redacts text[0, len): *out = NULL when nothing matched (the common case:
 * no copy, no allocation), else a malloc'd NUL-terminated copy with every
 * match replaced by its marker, its length in *out_len (may be NULL; len
 * when nothing matched). Adds to *rep (may be NULL). Idempotent: a redacted
 * text redacts to itself (the replacement is repeated until nothing more
 * matches, so in rare texts the copy differs from applying
 * cx_redact_find's matches once). */
int cx_redact_text(const char *text, size_t len, char **out, size_t *out_len,
                   cx_redact_report *rep);

/* Redacts a malloc'd NUL-terminated string in place: *s is replaced (and
 * the old one freed) only when something matched. */
int cx_redact_string(char **s, cx_redact_report *rep);

/* Is this file an obvious credential file, one that must never be stored
 * even as a binary blob? By its name (NULL = unknown: id_rsa and other SSH
 * keys, .pem and .key files holding a private key, .env and .env.<x>, .jks,
 * .keystore, .p12, .pfx, .npmrc, .pypirc, .netrc, credentials files) or its content
 * (PEM private key blocks, JKS/JCEKS and PKCS#12 magic). Returns a short
 * reason (a static string, e.g. "a private key file"), or NULL when not. */
const char *cx_redact_credential_file(const char *name, const void *data, size_t len);

/* Does the data look like text (valid UTF-8 with no NUL bytes)? Binary data
 * is not redacted (it is checked with cx_redact_credential_file instead). */
bool cx_redact_is_text(const void *data, size_t len);

/* The report as JSON: {"count": total, "rules": ["rule-id", ...]} (rules
 * that fired, in table order, no duplicates), or NULL when total == 0. */
json_t *cx_redact_report_json(const cx_redact_report *rep);

/* Redacts, in place, every string inside JSON value o at any depth, member
 * names included (a member whose name matched moves to its redacted name),
 * except o's own members named in `keep` (a NULL-terminated list, or NULL),
 * which stay exactly as they are. Adds to *rep (may be NULL). */
int cx_redact_json(json_t *o, const char *const *keep, cx_redact_report *rep);

/* Redacts an item envelope of the sync protocol in place: every text
 * (title, body, tags, subcortex, author, agent, files, provenance, review
 * notes, versions' source paths, unknown members) but not the members
 * that the envelope check holds to a strict form (id, kind, status,
 * visibility, times, server_seq, blobs, review.decision/at,
 * versions[].sha256, and parent_id/evidence entries that are ULIDs). */
int cx_redact_item(json_t *it, cx_redact_report *rep);

/* The members of a review ({decision, at}) and of an artifact version
 * ({sha256}) that hold no text, for cx_redact_json's `keep`. */
extern const char *const CX_REDACT_REVIEW_KEEP[];
extern const char *const CX_REDACT_VERSION_KEEP[];
