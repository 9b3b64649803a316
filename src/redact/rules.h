/* SPDX-License-Identifier: Apache-2.0 */
/* The redaction rule table, private to src/redact: what each rule matches
 * (a PCRE2 pattern), which literal keywords must occur for it to be tried,
 * which part of a match is the secret, and how that part is judged. The
 * engine (redact.c) compiles the table once; rules.c is the only place that
 * lists rules. */
#pragma once

#include <stddef.h>

/* Flags of a rule. */
enum {
    /* The secret is a free-form value of an assignment (`password = …`):
     * it must also look like a secret, not a word, a path, a URL, a
     * dotted identifier or an environment variable name (see redact.c). */
    CX_REDACT_GENERIC = 1u << 0,
    /* The match is a run of base64 lines that may be a private key's body
     * without its BEGIN/END armour: the engine decodes its first bytes and
     * keeps it only when they start a private key (a PKCS#1, SEC1 or
     * PKCS#8 structure, or OpenSSH's "openssh-key-v1"), and cuts the run
     * where its lines stop having one width (see redact.c). */
    CX_REDACT_KEY_BODY = 1u << 1,
};

typedef struct cx_redact_rule {
    const char *id;          /* stable, kebab-case: the marker's text */
    const char *description; /* one line */
    const char *pattern;     /* PCRE2, no UTF mode: \w and \s are ASCII */
    /* Keywords for the prefilter, separated by '|': the rule's regex runs
     * only where one occurs, and a match must start at most `back` bytes
     * before that occurrence. Compared without regard to case, unless the
     * keyword is written with a leading '=' (then the bytes must be equal).
     * No keyword of a rule may contain another keyword of the same rule. */
    const char *keywords;
    unsigned back;
    unsigned group;       /* capture group that is the secret; 0: the whole match */
    /* Capture group holding the rest of the key after the keyword (0:
     * none): a match is refused when it names something about a secret
     * rather than the secret (token_type, password_file; see redact.c). */
    unsigned key_group;
    unsigned min_len;     /* of the secret, in bytes; 0: no minimum */
    double min_entropy;   /* Shannon entropy of the secret, bits a byte; 0: none */
    unsigned flags;
} cx_redact_rule;

/* The table, most specific rule first (an earlier rule wins an overlap). */
extern const cx_redact_rule cx_redact_rules[];
extern const size_t cx_redact_nrules;
