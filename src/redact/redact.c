/* SPDX-License-Identifier: Apache-2.0 */
/* The redaction engine: compiles the rule table (rules.c) once with PCRE2
 * and its JIT, and finds, resolves and replaces matches.
 *
 * One pass over the text drives everything: a case-insensitive Aho–Corasick
 * automaton over every rule's keywords (a DFA over byte classes, one table
 * load a byte, two blocks of text at a time). Where a keyword occurs, only the rules that own it
 * are tried, and only at start positions from `back` bytes before the
 * keyword up to the keyword itself (PCRE2's offset limit), so a rule's
 * regex never scans the text on its own. A text without keywords costs
 * the automaton pass and nothing else; no allocation happens until a match
 * is accepted (the PCRE2 contexts live in a stack arena).
 *
 * A match is accepted when its secret (the rule's capture group, or the
 * whole match) is not a placeholder (the allowlist below), not part of a
 * "[REDACTED:...]" marker, long enough and random enough; generic rules
 * also check that the value looks like a secret rather than a word, path,
 * URL or identifier. Each rule's matches do not overlap; across rules the
 * earlier rule in the table wins.
 *
 * PCRE2 is opened with dlopen() (util/dl.h) when the rules first compile,
 * not linked: linked, every start of cortexd would map and relocate it
 * before main(), while only a write needs it (cortexd compiles the rules on
 * its warm-up thread, after `initialize` is answered). The soname is the
 * one meson found at build time (CX_LIBPCRE2_SONAME). */
#define PCRE2_CODE_UNIT_WIDTH 8

#include "redact/redact.h"

#include <assert.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redact/rules.h"
#include "util/dl.h"
#include "util/error.h"
#include "util/utf8.h"

#ifndef CX_LIBPCRE2_SONAME
#define CX_LIBPCRE2_SONAME "libpcre2-8.so.0"
#endif

/* ASCII classes: the text is bytes, and <ctype.h> answers by locale. */
static inline bool is_lower(int c) { return c >= 'a' && c <= 'z'; }
static inline bool is_upper(int c) { return c >= 'A' && c <= 'Z'; }
static inline bool is_digit(int c) { return c >= '0' && c <= '9'; }
static inline bool is_alpha(int c) { return is_lower(c) || is_upper(c); }
static inline bool is_alnum(int c) { return is_alpha(c) || is_digit(c); }
static inline int to_lower(int c) { return is_upper(c) ? c + 32 : c; }

#define MARKER_MAX_ID 64
/* PCRE2's budget for one attempt; our bounded patterns use a few hundred. */
#define MATCH_LIMIT 1000000u
/* A redaction repeats until nothing more matches (a replacement can, in
 * contrived texts, complete a new match); this bounds the repeats. */
#define MAX_PASSES 8

/* ---- PCRE2, loaded when the rules first compile ----------------------- */

/* The functions used, each typed as pcre2.h declares it (pcre2_compile is
 * a macro for pcre2_compile_8, so that __typeof__ and the symbol's name
 * both follow the code unit width chosen above). */
static struct {
    __typeof__(pcre2_compile) *compile;
    __typeof__(pcre2_get_error_message) *get_error_message;
    __typeof__(pcre2_jit_compile) *jit_compile;
    __typeof__(pcre2_pattern_info) *pattern_info;
    __typeof__(pcre2_general_context_create) *general_context_create;
    __typeof__(pcre2_match_context_create) *match_context_create;
    __typeof__(pcre2_match_data_create) *match_data_create;
    __typeof__(pcre2_set_match_limit) *set_match_limit;
    __typeof__(pcre2_set_offset_limit) *set_offset_limit;
    __typeof__(pcre2_match_data_free) *match_data_free;
    __typeof__(pcre2_match_context_free) *match_context_free;
    __typeof__(pcre2_general_context_free) *general_context_free;
    __typeof__(pcre2_jit_match) *jit_match;
    __typeof__(pcre2_match) *match;
    __typeof__(pcre2_get_ovector_pointer) *get_ovector_pointer;
} pc;

#define SYM_NAME_(f) #f
#define SYM_NAME(f) SYM_NAME_(f) /* the name after macro expansion: "pcre2_match_8" */
#define SYM(f, member) {SYM_NAME(f), &pc.member}

/* Fills `pc`, once (from init_once). 0, or CX_EFAIL with the loader's
 * reason in the thread's error detail. */
static int pcre2_load(void) {
    static const char *const sonames[] = {CX_LIBPCRE2_SONAME, NULL};
    const cx_dl_sym syms[] = {
        SYM(pcre2_compile, compile),
        SYM(pcre2_get_error_message, get_error_message),
        SYM(pcre2_jit_compile, jit_compile),
        SYM(pcre2_pattern_info, pattern_info),
        SYM(pcre2_general_context_create, general_context_create),
        SYM(pcre2_match_context_create, match_context_create),
        SYM(pcre2_match_data_create, match_data_create),
        SYM(pcre2_set_match_limit, set_match_limit),
        SYM(pcre2_set_offset_limit, set_offset_limit),
        SYM(pcre2_match_data_free, match_data_free),
        SYM(pcre2_match_context_free, match_context_free),
        SYM(pcre2_general_context_free, general_context_free),
        SYM(pcre2_jit_match, jit_match),
        SYM(pcre2_match, match),
        SYM(pcre2_get_ovector_pointer, get_ovector_pointer),
    };
    return cx_dl_open(sonames, syms, sizeof syms / sizeof *syms, NULL);
}

/* ---- The compiled rules ---------------------------------------------- */

typedef struct kw_use {
    uint16_t rule;
    const char *exact; /* the keyword's bytes when it is case-sensitive */
} kw_use;

static struct engine {
    pthread_once_t once;
    int err;
    char errmsg[700]; /* room for cx_error_last() (512) and a sentence */
    size_t nrules;
    pcre2_code *code[CX_REDACT_MAX_RULES];
    bool jit[CX_REDACT_MAX_RULES];
    size_t marker_len[CX_REDACT_MAX_RULES];
    uint32_t ovec_pairs;

    /* The keyword automaton: a DFA over byte classes (one class per byte
     * that occurs in a keyword, either case; class 0 for the rest).
     * delta[row + cls[byte]] is the next state's row (state * nclass).
     * States from first_out on end at least one keyword: for those,
     * out_kw[out_off[k], out_off[k + 1]) are the keywords (longest first)
     * of state first_out + k. */
    unsigned char cls[256];
    uint32_t nclass;
    uint32_t nstates;
    uint32_t first_out;
    uint32_t max_kw; /* the longest keyword */
    uint16_t *delta; /* 16 bits: the table stays in the L1/L2 cache */
    uint32_t *out_off;
    uint16_t *out_kw;
    uint16_t *kw_len;
    uint32_t *use_off;  /* per keyword: its uses in uses[use_off[k], use_off[k + 1]) */
    kw_use *uses;
} E = {.once = PTHREAD_ONCE_INIT};

__attribute__((format(printf, 2, 3))) static void fail_init(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    E.err = code;
    vsnprintf(E.errmsg, sizeof E.errmsg, fmt, ap);
    va_end(ap);
}

/* Builds the automaton from the rules' keywords. Runs once, single-threaded. */
static int build_automaton(void) {
    /* Distinct lowercased keywords, and each one's (rule, exact) uses. */
    size_t cap = 0;
    for (size_t r = 0; r < E.nrules; r++) {
        cap++;
        for (const char *p = cx_redact_rules[r].keywords; *p; p++)
            cap += *p == '|';
    }
    char **kw = calloc(cap, sizeof *kw);
    kw_use *uses = calloc(cap, sizeof *uses);
    uint16_t *use_kw = calloc(cap, sizeof *use_kw);
    size_t nkw = 0, nuses = 0, total_len = 0;
    int rc = CX_ENOMEM;
    if (!kw || !uses || !use_kw)
        goto out;
    for (size_t r = 0; r < E.nrules; r++) {
        const char *p = cx_redact_rules[r].keywords;
        while (*p) {
            const char *end = strchr(p, '|');
            size_t n = end ? (size_t)(end - p) : strlen(p);
            bool exact = *p == '=';
            const char *word = p + exact;
            size_t wn = n - exact;
            if (wn == 0 || wn > 64) {
                fail_init(CX_EFAIL, "redaction rule %s has an empty or long keyword",
                          cx_redact_rules[r].id);
                rc = CX_EFAIL;
                goto out;
            }
            char low[65];
            for (size_t i = 0; i < wn; i++)
                low[i] = (char)to_lower((unsigned char)word[i]);
            low[wn] = 0;
            size_t k = 0;
            while (k < nkw && strcmp(kw[k], low) != 0)
                k++;
            if (k == nkw) {
                if (!(kw[nkw] = strdup(low)))
                    goto out;
                nkw++;
                total_len += wn;
            }
            uses[nuses] = (kw_use){.rule = (uint16_t)r, .exact = NULL};
            if (exact && !(uses[nuses].exact = strndup(word, wn)))
                goto out;
            use_kw[nuses++] = (uint16_t)k;
            p = end ? end + 1 : p + n;
        }
    }

    /* A rule's keywords must not contain one another: the scan relies on
     * each rule seeing its keywords in the order they start. */
    for (size_t u = 0; u < nuses; u++)
        for (size_t v = 0; v < nuses; v++)
            if (u != v && uses[u].rule == uses[v].rule && use_kw[u] != use_kw[v] &&
                strstr(kw[use_kw[u]], kw[use_kw[v]])) {
                fail_init(CX_EFAIL, "redaction rule %s: keyword \"%s\" contains \"%s\"",
                          cx_redact_rules[uses[u].rule].id, kw[use_kw[u]], kw[use_kw[v]]);
                rc = CX_EFAIL;
                goto out;
            }

    /* Byte classes: one per byte that occurs in a keyword (either case),
     * class 0 for the rest. */
    memset(E.cls, 0, sizeof E.cls);
    E.nclass = 1;
    for (size_t k = 0; k < nkw; k++)
        for (const char *c = kw[k]; *c; c++)
            if (!E.cls[(unsigned char)*c])
                E.cls[(unsigned char)*c] = (unsigned char)E.nclass++;
    for (int c = 'A'; c <= 'Z'; c++)
        E.cls[c] = E.cls[c + 32];

    /* The trie, then failure links and the full DFA (breadth first). */
    size_t maxstates = total_len + 1;
    uint32_t nc = E.nclass;
    uint32_t *go = malloc(maxstates * nc * sizeof *go);
    uint32_t *fail = calloc(maxstates, sizeof *fail);
    int32_t *own = malloc(maxstates * sizeof *own);
    uint32_t *queue = malloc(maxstates * sizeof *queue);
    uint32_t *nout = calloc(maxstates, sizeof *nout);
    if (!go || !fail || !own || !queue || !nout) {
        free(go), free(fail), free(own), free(queue), free(nout);
        goto out;
    }
    memset(go, 0xff, maxstates * nc * sizeof *go);
    for (size_t i = 0; i < maxstates; i++)
        own[i] = -1;
    uint32_t ns = 1;
    for (size_t k = 0; k < nkw; k++) {
        uint32_t s = 0;
        for (const char *c = kw[k]; *c; c++) {
            uint32_t *t = &go[s * nc + E.cls[(unsigned char)*c]];
            if (*t == UINT32_MAX)
                *t = ns++;
            s = *t;
        }
        own[s] = (int32_t)k;
    }
    size_t qh = 0, qt = 0;
    for (uint32_t c = 0; c < nc; c++) {
        uint32_t t = go[c];
        if (t == UINT32_MAX) {
            go[c] = 0;
        } else {
            fail[t] = 0;
            queue[qt++] = t;
        }
    }
    while (qh < qt) {
        uint32_t s = queue[qh++];
        nout[s] = (own[s] >= 0) + nout[fail[s]];
        for (uint32_t c = 0; c < nc; c++) {
            uint32_t t = go[s * nc + c];
            if (t == UINT32_MAX) {
                go[s * nc + c] = go[fail[s] * nc + c];
            } else {
                fail[t] = go[fail[s] * nc + c];
                queue[qt++] = t;
            }
        }
    }
    /* Outputs: a state's own keyword, then its failure state's (shorter),
     * computed breadth first (fail[s] is done before s). */
    uint32_t *toff = calloc(ns + 1, sizeof *toff), *newid = malloc(ns * sizeof *newid);
    for (uint32_t s = 0; toff && s < ns; s++)
        toff[s + 1] = toff[s] + nout[s];
    uint16_t *tkw = toff ? malloc((toff[ns] + 1) * sizeof *tkw) : NULL;
    E.out_off = calloc(ns + 1, sizeof *E.out_off);
    E.out_kw = tkw ? malloc((toff[ns] + 1) * sizeof *E.out_kw) : NULL;
    E.delta = malloc((size_t)ns * nc * sizeof *E.delta);
    if (!newid || !tkw || !E.out_off || !E.out_kw || !E.delta || (uint64_t)ns * nc > UINT16_MAX) {
        free(go), free(fail), free(own), free(queue), free(nout), free(toff), free(tkw), free(newid);
        if ((uint64_t)ns * nc > UINT16_MAX) {
            fail_init(CX_EFAIL, "the redaction keywords need %u states of %u classes, over 65535 "
                      "entries", ns, nc);
            rc = CX_EFAIL;
        }
        goto out;
    }
    for (size_t i = 0; i < qt; i++) {
        uint32_t s = queue[i], o = toff[s];
        if (own[s] >= 0)
            tkw[o++] = (uint16_t)own[s];
        memcpy(&tkw[o], &tkw[toff[fail[s]]], nout[fail[s]] * sizeof *tkw);
    }
    /* Renumber: states without output first (the root is 0), so that the
     * scan tests "has output" with one comparison, off its load chain. */
    uint32_t next = 0;
    for (uint32_t s = 0; s < ns; s++)
        if (!nout[s])
            newid[s] = next++;
    E.first_out = next;
    for (uint32_t s = 0; s < ns; s++)
        if (nout[s]) {
            uint32_t k = next - E.first_out;
            newid[s] = next++;
            E.out_off[k + 1] = E.out_off[k] + nout[s];
            memcpy(&E.out_kw[E.out_off[k]], &tkw[toff[s]], nout[s] * sizeof *tkw);
        }
    for (uint32_t s = 0; s < ns; s++)
        for (uint32_t c = 0; c < nc; c++)
            E.delta[newid[s] * nc + c] = (uint16_t)(newid[go[s * nc + c]] * nc);
    E.nstates = ns;
    free(go), free(fail), free(own), free(queue), free(nout), free(toff), free(tkw), free(newid);

    /* Keyword lengths and uses, grouped by keyword. */
    E.kw_len = calloc(nkw, sizeof *E.kw_len);
    E.use_off = calloc(nkw + 1, sizeof *E.use_off);
    E.uses = malloc((nuses + 1) * sizeof *E.uses);
    if (!E.kw_len || !E.use_off || !E.uses)
        goto out;
    for (size_t k = 0; k < nkw; k++) {
        E.kw_len[k] = (uint16_t)strlen(kw[k]);
        if (E.kw_len[k] > E.max_kw)
            E.max_kw = E.kw_len[k];
    }
    for (size_t u = 0; u < nuses; u++)
        E.use_off[use_kw[u] + 1]++;
    for (size_t k = 0; k < nkw; k++)
        E.use_off[k + 1] += E.use_off[k];
    uint32_t *fill = calloc(nkw + 1, sizeof *fill);
    if (!fill)
        goto out;
    for (size_t u = 0; u < nuses; u++) {
        uint16_t k = use_kw[u];
        E.uses[E.use_off[k] + fill[k]++] = uses[u];
        uses[u].exact = NULL; /* moved */
    }
    free(fill);
    rc = 0;
out:
    if (rc == CX_ENOMEM)
        fail_init(CX_ENOMEM, "out of memory compiling the redaction rules");
    for (size_t k = 0; kw && k < nkw; k++)
        free(kw[k]);
    for (size_t u = 0; uses && u < nuses; u++)
        free((char *)uses[u].exact);
    free(kw), free(uses), free(use_kw);
    return rc;
}

static void init_once(void) {
    if (pcre2_load() != 0) {
        fail_init(CX_EFAIL, "secret redaction needs PCRE2: %s (install it, e.g. Debian's "
                            "libpcre2-8-0)", cx_error_last());
        return;
    }
    E.nrules = cx_redact_nrules;
    if (E.nrules > CX_REDACT_MAX_RULES) {
        fail_init(CX_EFAIL, "%zu redaction rules, more than %d", E.nrules, CX_REDACT_MAX_RULES);
        return;
    }
    uint32_t pairs = 1;
    for (size_t r = 0; r < E.nrules; r++) {
        const cx_redact_rule *rule = &cx_redact_rules[r];
        int errcode;
        PCRE2_SIZE erroff;
        /* No start optimizations: they search ahead for a first or a
         * required character (the '@' of a URL's password) before looking
         * at the offset limit, up to kilobytes a call, while an attempt
         * here only ever starts within `back` bytes of its keyword. */
        E.code[r] = pc.compile((PCRE2_SPTR)rule->pattern, PCRE2_ZERO_TERMINATED,
                               PCRE2_USE_OFFSET_LIMIT | PCRE2_NO_START_OPTIMIZE, &errcode,
                               &erroff, NULL);
        if (!E.code[r]) {
            PCRE2_UCHAR msg[160];
            pc.get_error_message(errcode, msg, sizeof msg);
            fail_init(CX_EFAIL, "redaction rule %s does not compile: %s", rule->id,
                      (const char *)msg);
            return;
        }
        /* Without a JIT (an unsupported CPU) pcre2_match interprets. */
        E.jit[r] = pc.jit_compile(E.code[r], PCRE2_JIT_COMPLETE) == 0;
        uint32_t ncap = 0;
        pc.pattern_info(E.code[r], PCRE2_INFO_CAPTURECOUNT, &ncap);
        if (rule->group > ncap || rule->key_group > ncap) {
            fail_init(CX_EFAIL, "redaction rule %s names a capture group it does not have",
                      rule->id);
            return;
        }
        if (ncap + 1 > pairs)
            pairs = ncap + 1;
        E.marker_len[r] = strlen(CX_REDACT_PREFIX) + strlen(rule->id) + 1;
    }
    E.ovec_pairs = pairs;
    build_automaton();
}

int cx_redact_init(void) {
    pthread_once(&E.once, init_once);
    if (E.err)
        return cx_error_set(E.err, "%s", E.errmsg);
    return 0;
}

size_t cx_redact_rule_count(void) {
    if (cx_redact_init() != 0)
        return 0;
    return E.nrules;
}

const char *cx_redact_rule_id(size_t rule) {
    return rule < cx_redact_nrules ? cx_redact_rules[rule].id : NULL;
}

const char *cx_redact_rule_description(size_t rule) {
    return rule < cx_redact_nrules ? cx_redact_rules[rule].description : NULL;
}

/* ---- Judging a secret ------------------------------------------------- */

static bool has_ci(const char *s, size_t n, const char *word) {
    size_t w = strlen(word);
    for (size_t i = 0; i + w <= n; i++)
        if (to_lower((unsigned char)s[i]) == word[0] && strncasecmp(s + i, word, w) == 0)
            return true;
    return false;
}

/* Does s contain word (lowercase) written in one case, "example" or
 * "EXAMPLE"? A random token contains a mixed-case "DuMmY" far more often
 * than a placeholder does. */
static bool has_word(const char *s, size_t n, const char *word) {
    size_t w = strlen(word);
    for (size_t i = 0; i + w <= n; i++) {
        if (to_lower((unsigned char)s[i]) != word[0] || strncasecmp(s + i, word, w) != 0)
            continue;
        bool lower = true, upper = true;
        for (size_t k = 0; k < w; k++) {
            unsigned char c = (unsigned char)s[i + k];
            lower &= !is_upper(c);
            upper &= !is_lower(c);
        }
        if (lower || upper)
            return true;
    }
    return false;
}

static bool is_ident_start(unsigned char c) { return is_alpha(c) || c == '_' || c == '$'; }
static bool is_ident(unsigned char c) { return is_alnum(c) || c == '_' || c == '$'; }

/* The length of a "[REDACTED:<id>]" marker at s (n bytes), or 0. */
static size_t marker_at(const char *s, size_t n) {
    size_t p = strlen(CX_REDACT_PREFIX);
    if (n < p + 2 || memcmp(s, CX_REDACT_PREFIX, p) != 0)
        return 0;
    size_t i = p;
    while (i < n && i - p <= MARKER_MAX_ID &&
           (is_lower((unsigned char)s[i]) || is_digit((unsigned char)s[i]) || s[i] == '-'))
        i++;
    return i > p && i < n && s[i] == ']' ? i + 1 : 0;
}

/* Does [s, e) of the text touch a marker that is already there? */
static bool overlaps_marker(const char *text, size_t len, size_t s, size_t e) {
    size_t p = strlen(CX_REDACT_PREFIX), maxlen = p + MARKER_MAX_ID + 1;
    size_t from = s > maxlen ? s - maxlen : 0;
    const char *t = text + from, *end = text + e;
    while (t < end && (t = memchr(t, '[', (size_t)(end - t)))) {
        size_t m = marker_at(t, (size_t)(text + len - t));
        if (m && (size_t)(t - text) + m > s)
            return true;
        t++;
    }
    return false;
}

/* Placeholders that documentation, templates and tests use instead of a
 * secret. Checked on the secret part only. Kept narrow: a placeholder
 * redacted costs nothing, a secret taken for one leaks. */
static bool placeholder(const char *v, size_t n) {
    static const char *const words[] = {
        "changeme", "changeit", "password", "passwd", "pass", "secret", "token", "null",
        "none", "nil", "undefined", "true", "false", "test", "testing", "todo", "fixme",
        "hidden", "masked", "foobar", "xxx", NULL,
    };
    static const char *const parts[] = {
        "example", "dummy", "placeholder", "redacted", "changeme", "change_me", "change-me",
        "replace_me", "replace-me", "replaceme", "_here", "-here", "your-", "your_", "...",
        "{{", "}}", NULL,
    };
    if (n == 0)
        return true;
    for (size_t i = 0; words[i]; i++)
        if (strlen(words[i]) == n && strncasecmp(v, words[i], n) == 0)
            return true;
    /* Only in values of placeholder size: a long key or key block is what
     * it looks like even if "dummy" turns up in its base64. */
    for (size_t i = 0; n <= 128 && parts[i]; i++)
        if (has_word(v, n, parts[i]))
            return true;
    if (n >= 4 && strncasecmp(v, "your", 4) == 0)
        return true; /* your-api-key, YOUR_TOKEN, your_token_here */
    if (v[0] == '<' && v[n - 1] == '>')
        return true;
    if (v[0] == '%') { /* %s, %(password)s, %API_KEY% */
        if (n == 2 || (v[1] == '(' && v[n - 1] == 's') || v[n - 1] == '%')
            return true;
    }
    if (v[0] == '$') {
        if (n >= 2 && (v[1] == '{' || v[1] == '('))
            return true; /* ${VAR}, $(command) */
        /* $VAR, $DB2_PASSWORD, $password (shell, PHP); not $ecr3tPass */
        bool lower = false, digit = false, other = n < 2 || is_digit((unsigned char)v[1]);
        for (size_t i = 1; i < n; i++) {
            lower |= is_lower((unsigned char)v[i]);
            digit |= is_digit((unsigned char)v[i]);
            other |= !is_ident((unsigned char)v[i]) || v[i] == '$';
        }
        if (!other && !(lower && digit))
            return true;
    }
    /* xxxx, ****, 0000, ..., also behind a prefix: ghp_xxxxxxxx, sk_live_0000 */
    size_t filler = 0;
    for (size_t i = 0; i < n; i++)
        filler += v[i] == 'x' || v[i] == 'X' || v[i] == '*' || v[i] == '0' || v[i] == '.' ||
                  v[i] == '#';
    if (filler * 4 >= n * 3)
        return true;
    size_t run = 1;
    for (size_t i = 1; i < n; i++) {
        run = v[i] == v[i - 1] ? run + 1 : 1;
        if (run >= 6 && (v[i] == 'x' || v[i] == 'X' || v[i] == '*'))
            return true;
    }
    return false;
}

/* log2(x) for x >= 1, to about 1e-12, without libm: x = m * 2^e with m in
 * [1, 2), ln m = 2 atanh((m - 1) / (m + 1)) by its series. */
static double log2_of(double x) {
    int e = 0;
    while (x >= 2) {
        x /= 2;
        e++;
    }
    double y = (x - 1) / (x + 1), y2 = y * y, term = y, sum = 0;
    for (int k = 1; k < 40; k += 2) {
        sum += term / k;
        term *= y2;
    }
    return e + 2 * sum / 0.69314718055994530942;
}

/* Shannon entropy in bits a byte: log2 n - (1/n) sum c log2 c. */
static double entropy(const char *v, size_t n) {
    unsigned counts[256];
    for (size_t i = 0; i < n; i++)
        counts[(unsigned char)v[i]] = 0;
    for (size_t i = 0; i < n; i++)
        counts[(unsigned char)v[i]]++;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned c = counts[(unsigned char)v[i]];
        if (c > 1)
            sum += c * log2_of(c);
        counts[(unsigned char)v[i]] = 0; /* each byte value once */
    }
    return log2_of((double)n) - sum / (double)n;
}

/* A generic rule's value: does it look like a secret rather than code or
 * configuration that merely sits next to the word "password"? */
/* What a password has; not - _ . : / , which names and paths have. */
static const bool pw_symbol[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['*'] = 1, ['+'] = 1,
    ['='] = 1, ['?'] = 1, ['@'] = 1, ['^'] = 1, ['~'] = 1, ['|'] = 1,
};

static bool plausible_value(const char *v, size_t n, bool quoted) {
    /* paths: /run/secrets/db, ~/.ssh/key, ./key.pem, C:\keys */
    if (v[0] == '/' || (n > 1 && v[0] == '~' && v[1] == '/') ||
        (n > 1 && v[0] == '.' && (v[1] == '/' || v[1] == '.')) ||
        (n > 2 && is_alpha((unsigned char)v[0]) && v[1] == ':' && v[2] == '\\'))
        return false;
    if (has_ci(v, n, "://"))
        return false;
    /* host:port[/path], or the port and path after a host named "token"
     * (token.internal:8757/x) */
    const char *colon = memchr(v, ':', n);
    size_t d = colon ? (size_t)(colon - v) + 1 : 0, d0 = d;
    while (d < n && d - d0 < 6 && is_digit((unsigned char)v[d]))
        d++;
    if (d > d0 && d - d0 < 6 && (d == n || v[d] == '/'))
        return false;
    /* C++ scopes (detail::PassConcept), relative paths to files
     * (icons/15/tokens.svg) */
    if (has_ci(v, n, "::"))
        return false;
    if (memchr(v, '/', n)) {
        size_t e = n;
        while (e > 0 && is_alnum((unsigned char)v[e - 1]) && n - e < 6)
            e--;
        if (e > 1 && e < n && v[e - 1] == '.' && is_lower((unsigned char)v[e]))
            return false;
    }
    bool lower = false, upper = false, digit = false, dot = false, underscore = false;
    bool ident = is_ident_start((unsigned char)v[0]), envname = is_upper((unsigned char)v[0]);
    bool member = false; /* x.y, x?.y: code, when not quoted */
    size_t first_plain = n, last_plain = 0, sym_inside = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        bool sym = pw_symbol[c];
        if (is_lower(c))
            lower = true;
        else if (is_upper(c))
            upper = true;
        else if (is_digit(c))
            digit = true;
        else if (c == '.')
            dot = true;
        else if (c == '_')
            underscore = true;
        if (!sym) {
            if (first_plain == n)
                first_plain = i;
            last_plain = i;
        }
        if (c == '.') {
            if (i + 1 >= n || !is_ident_start((unsigned char)v[i + 1]))
                ident = false;
            else if (i > 0 && (is_ident(v[i - 1]) || v[i - 1] == '?'))
                member = true;
        } else if (!is_ident(c)) {
            ident = false;
        }
        if (!(is_upper(c) || is_digit(c) || c == '_'))
            envname = false;
    }
    for (size_t i = first_plain; i < last_plain; i++)
        sym_inside += pw_symbol[(unsigned char)v[i]];
    /* os.environ, settings.SECRET_KEY, self.password */
    if (ident && dot && !digit)
        return false;
    /* this.effectDuration=0, options?.token, ed25519.Ed25519PrivateKey,
     * ref.current++ (a quoted value is a literal, not code) */
    if (!quoted && member && (is_ident_start((unsigned char)v[0]) || v[0] == '!'))
        return false;
    /* DB_PASSWORD, GITHUB_TOKEN: a variable's name, not its value */
    if (envname && underscore)
        return false;
    /* A digit and a letter, or a symbol inside (not only around, as in
     * #define, !!flag, i++). */
    bool letters = lower || upper;
    if (letters && digit)
        return true;
    if (sym_inside > 0 && (letters || digit))
        return true;
    /* Letters only: a word, a name or a type (OnNewTokenCallback), unless
     * it is long and its case changes like random text's: about every
     * other letter, with runs of capitals (a CamelCase name changes case
     * twice a word and rarely has two capitals in a row). 1 in 280
     * random 32-character base62 strings has no digit. */
    if (!(lower && upper && n >= 20))
        return false;
    size_t changes = 0, caps = 0;
    for (size_t i = 1; i < n; i++) {
        bool u0 = is_upper((unsigned char)v[i - 1]), u1 = is_upper((unsigned char)v[i]);
        changes += u0 != u1;
        caps += u0 && u1;
    }
    return changes * 3 >= n && caps >= 2 && entropy(v, n) >= 3.5;
}

/* ---- Matching ---------------------------------------------------------- */

/* A fixed buffer the PCRE2 contexts are carved from, so that a call that
 * finds nothing never allocates. Larger requests (the interpreter's frames,
 * when there is no JIT) go to malloc. */
typedef struct arena {
    _Alignas(16) unsigned char buf[2048];
    size_t used;
} arena;

static void *arena_malloc(size_t size, void *data) {
    arena *a = data;
    size_t sz = (size + 15) & ~(size_t)15;
    if (sz >= size && sizeof a->buf - a->used >= sz) {
        void *p = a->buf + a->used;
        a->used += sz;
        return p;
    }
    return malloc(size);
}

static void arena_free(void *p, void *data) {
    arena *a = data;
    if (p && !((unsigned char *)p >= a->buf && (unsigned char *)p < a->buf + sizeof a->buf))
        free(p);
}

typedef struct scan {
    const char *text;
    size_t len;
    size_t floor[CX_REDACT_MAX_RULES]; /* per rule: no match may start before this */
    cx_redact_match *cand;
    size_t ncand, capcand;
    arena mem;
    pcre2_general_context *gctx;
    pcre2_match_context *mctx;
    pcre2_match_data *md;
} scan;

static int scan_contexts(scan *sc) {
    sc->mem.used = 0;
    sc->gctx = pc.general_context_create(arena_malloc, arena_free, &sc->mem);
    sc->mctx = sc->gctx ? pc.match_context_create(sc->gctx) : NULL;
    sc->md = sc->mctx ? pc.match_data_create(E.ovec_pairs, sc->gctx) : NULL;
    if (!sc->md)
        return cx_error_set(CX_ENOMEM, "out of memory for a redaction match");
    pc.set_match_limit(sc->mctx, MATCH_LIMIT);
    return 0;
}

static void scan_done(scan *sc) {
    pc.match_data_free(sc->md);
    pc.match_context_free(sc->mctx);
    pc.general_context_free(sc->gctx);
    free(sc->cand);
}

/* The rest of a generic rule's key (after "token", "password", ...): does
 * it name something about a secret rather than the secret? Split into
 * words at _ . - and lower-to-upper case changes (token_type, tokenType,
 * PASSWORD_FILE, secretRef, api_key_id). */
static bool meta_key(const char *k, size_t n) {
    static const char *const words[] = {
        "type", "count", "limit", "url", "uri", "endpoint", "length", "len", "size", "file",
        "path", "name", "expiry", "expires", "expiration", "expire", "ttl", "timeout", "hint",
        "policy", "prefix", "format", "header", "field", "param", "version", "id", "ids",
        "rotation", "usage", "budget", "store", "manager", "provider", "ref", "reset", "min",
        "max", "regex", "pattern", "label", "dir", "env", "var", "mode",
        "enabled", "required", "changed", "set", "hash", "algorithm", "lifetime", "validity",
        "source", "class", "schema", "kind", "scope", "scopes", "index", "placeholder",
        "encryption", "string", "strings", "chars", "charset", "alphabet", NULL,
    };
    size_t i = 0;
    while (i < n) {
        while (i < n && (k[i] == '_' || k[i] == '.' || k[i] == '-'))
            i++;
        size_t w = i + 1;
        while (w < n && k[w] != '_' && k[w] != '.' && k[w] != '-' &&
               !(is_upper((unsigned char)k[w]) && is_lower((unsigned char)k[w - 1])))
            w++;
        if (w > n)
            break;
        /* "izer", "ize": tokenizer, tokenize */
        if (i == 0 && w - i >= 2 && strncasecmp(k, "iz", 2) == 0)
            return true;
        for (size_t j = 0; words[j]; j++)
            if (strlen(words[j]) == w - i && strncasecmp(k + i, words[j], w - i) == 0)
                return true;
        i = w;
    }
    return false;
}

static bool accept_match(const scan *sc, size_t r, size_t s, size_t e, size_t ks, size_t ke) {
    const cx_redact_rule *rule = &cx_redact_rules[r];
    const char *v = sc->text + s;
    size_t n = e - s;
    if (n == 0 || n < rule->min_len)
        return false;
    if (rule->key_group && ks != PCRE2_UNSET && meta_key(sc->text + ks, ke - ks))
        return false;
    if (placeholder(v, n) || overlaps_marker(sc->text, sc->len, s, e))
        return false;
    if ((rule->flags & CX_REDACT_GENERIC) &&
        !plausible_value(v, n, s > 0 && strchr("\"'`", sc->text[s - 1]) && sc->text[s - 1]))
        return false;
    if (rule->min_entropy > 0 && entropy(v, n) < rule->min_entropy)
        return false;
    return true;
}

/* ---- Private key bodies without armour --------------------------------- */

static int b64_value(unsigned char c) {
    if (is_upper(c))
        return c - 'A';
    if (is_lower(c))
        return c - 'a' + 26;
    if (is_digit(c))
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

static bool is_b64(unsigned char c) { return b64_value(c) >= 0 || c == '='; }

/* Do these bytes start a private key? A DER SEQUENCE whose first member is
 * INTEGER 0 (PKCS#1 RSA and DSA, PKCS#8) or INTEGER 1 followed by an OCTET
 * STRING or a SEQUENCE (SEC1 EC, PKCS#8 v2), or an encrypted PKCS#8 key
 * (a SEQUENCE of a PKCS#5 or PKCS#12 encryption algorithm), or OpenSSH's
 * "openssh-key-v1" format. A certificate, a public key or a CSR starts
 * with a SEQUENCE inside the SEQUENCE instead, and is not taken. */
static bool key_der(const unsigned char *d, size_t n) {
    static const char openssh[] = "openssh-key-v1";
    if (n >= sizeof openssh && memcmp(d, openssh, sizeof openssh) == 0)
        return true;
    if (n < 8 || d[0] != 0x30)
        return false;
    size_t i = d[1] < 0x80 ? 2 : d[1] >= 0x81 && d[1] <= 0x83 ? 2u + (d[1] & 0x7f) : 0;
    if (i == 0 || n < i + 4)
        return false;
    const unsigned char *m = d + i;
    if (m[0] == 0x02 && m[1] == 0x01 && m[2] == 0x00)
        return true;
    if (m[0] == 0x02 && m[1] == 0x01 && m[2] == 0x01 && (m[3] == 0x04 || m[3] == 0x30))
        return true;
    /* EncryptedPrivateKeyInfo: SEQUENCE { SEQUENCE { OID 1.2.840.113549.1.5.x
     * (PKCS#5) or 1.2.840.113549.1.12.x (PKCS#12 PBE), ... }, ... } */
    static const unsigned char rsadsi[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01};
    if (m[0] != 0x30)
        return false;
    size_t j = m[1] < 0x80 ? 2 : m[1] == 0x81 ? 3 : m[1] == 0x82 ? 4 : 0;
    if (j == 0 || n < i + j + 2 + sizeof rsadsi + 1 || m[j] != 0x06)
        return false;
    const unsigned char *oid = m + j + 2;
    return memcmp(oid, rsadsi, sizeof rsadsi) == 0 && (oid[7] == 0x05 || oid[7] == 0x0c);
}

/* The end of the private key body that starts at text[s] in the run of
 * base64 lines [s, e), or s when it is no key. The lines are the base64
 * runs between blanks, newlines and escaped newlines (\n in JSON). A body
 * has one line width: the lines from the second on have the width of the
 * second, except a last, shorter one (or one ending in '=' padding); the
 * run stops where that breaks, so that a word on the next line is not
 * taken for key material. At least 60 base64 characters, the length of
 * the shortest key (an Ed25519 PKCS#8 key). */
static size_t key_body_end(const char *t, size_t s, size_t e) {
    size_t i = s, end = s, nseg = 0, first = 0, width = 0, total = 0;
    while (i < e) {
        size_t a = i;
        while (i < e && is_b64((unsigned char)t[i]))
            i++;
        size_t w = i - a;
        if (w == 0)
            break;
        bool padded = t[i - 1] == '=', last = padded;
        nseg++;
        if (nseg == 1) {
            first = w;
        } else if (nseg == 2 && w > first) {
            width = w; /* the first line is short: "KEY=" or an indent before it */
        } else if (nseg == 2) {
            width = w;
            if (w < first) {
                /* a two-line body's short last line, or a word after a
                 * one-line body: only a long or padded line is key */
                if (w < 16 && !padded)
                    break;
                last = true;
            }
        } else if (w > width) {
            break;
        } else if (w < width) {
            last = true;
        }
        end = i;
        total += w;
        if (last)
            break;
        while (i < e) {
            if (t[i] == ' ' || t[i] == '\t' || t[i] == '\r' || t[i] == '\n')
                i++;
            else if (t[i] == '\\' && i + 1 < e && (t[i + 1] == 'n' || t[i + 1] == 'r'))
                i += 2;
            else
                break;
        }
    }
    if (total < 60)
        return s;
    /* Decode the start of the first line (at least 40 characters: 30 bytes). */
    unsigned char d[48];
    size_t nd = 0;
    uint32_t acc = 0;
    for (size_t k = 0; k < first && k < 64; k++) {
        int v = b64_value((unsigned char)t[s + k]);
        if (v < 0)
            break;
        acc = acc << 6 | (uint32_t)v;
        if (k % 4 == 3) {
            d[nd++] = (unsigned char)(acc >> 16);
            d[nd++] = (unsigned char)(acc >> 8);
            d[nd++] = (unsigned char)acc;
            acc = 0;
        }
    }
    return key_der(d, nd) ? end : s;
}

static int add_candidate(scan *sc, size_t r, size_t s, size_t e) {
    if (sc->ncand == sc->capcand) {
        size_t cap = sc->capcand ? sc->capcand * 2 : 16;
        cx_redact_match *c = realloc(sc->cand, cap * sizeof *c);
        if (!c)
            return cx_error_set(CX_ENOMEM, "out of memory for redaction matches");
        sc->cand = c;
        sc->capcand = cap;
    }
    sc->cand[sc->ncand++] = (cx_redact_match){.rule = r, .start = s, .end = e};
    return 0;
}

/* Tries rule r for the keyword that starts at h: matches that start in
 * [h - back, h] and not before the rule's floor. */
static int attempt(scan *sc, size_t r, size_t h) {
    const cx_redact_rule *rule = &cx_redact_rules[r];
    size_t start = h >= rule->back ? h - rule->back : 0;
    if (start < sc->floor[r])
        start = sc->floor[r];
    if (start > h)
        return 0;
    if (!sc->md) {
        int rc = scan_contexts(sc);
        if (rc < 0)
            return rc;
    }
    /* A key body's keyword (MII, MIG, ...) is mostly a word (migrate):
     * only a run of base64 that starts there is worth the regex. */
    if (rule->flags & CX_REDACT_KEY_BODY) {
        bool run = h + 40 <= sc->len && (h == 0 || b64_value((unsigned char)sc->text[h - 1]) < 0);
        for (size_t i = h; run && i < h + 40; i++)
            run = b64_value((unsigned char)sc->text[i]) >= 0;
        if (!run) {
            if (sc->floor[r] < h + 1)
                sc->floor[r] = h + 1;
            return 0;
        }
    }
    pc.set_offset_limit(sc->mctx, h);
    while (start <= h) {
        int rc = E.jit[r] ? pc.jit_match(E.code[r], (PCRE2_SPTR)sc->text, sc->len, start, 0,
                                         sc->md, sc->mctx)
                          : pc.match(E.code[r], (PCRE2_SPTR)sc->text, sc->len, start, 0,
                                     sc->md, sc->mctx);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0) {
            PCRE2_UCHAR msg[120];
            pc.get_error_message(rc, msg, sizeof msg);
            return cx_error_set(rc == PCRE2_ERROR_NOMEMORY ? CX_ENOMEM : CX_ELIMIT,
                                "redaction rule %s failed at byte %zu: %s", rule->id, h,
                                (const char *)msg);
        }
        PCRE2_SIZE *ov = pc.get_ovector_pointer(sc->md);
        size_t ms = ov[0], me = ov[1];
        size_t s = ov[2 * rule->group], e = ov[2 * rule->group + 1];
        size_t ks = ov[2 * rule->key_group], ke = ov[2 * rule->key_group + 1];
        if (s != PCRE2_UNSET && e > s && (rule->flags & CX_REDACT_KEY_BODY))
            e = key_body_end(sc->text, s, e);
        if (s != PCRE2_UNSET && e > s && accept_match(sc, r, s, e, ks, ke)) {
            int ar = add_candidate(sc, r, s, e);
            if (ar < 0)
                return ar;
            if (rule->flags & CX_REDACT_KEY_BODY)
                me = e; /* the lines after the body are text again */
            sc->floor[r] = me > ms ? me : ms + 1;
            if (sc->floor[r] > h)
                return 0;
            start = sc->floor[r];
        } else {
            start = ms + 1;
        }
    }
    if (sc->floor[r] < h + 1)
        sc->floor[r] = h + 1;
    return 0;
}

/* Every keyword that ends at text[end]: try the rules that own it. */
static int on_keywords(scan *sc, size_t end, uint32_t state) {
    for (uint32_t i = E.out_off[state]; i < E.out_off[state + 1]; i++) {
        uint16_t k = E.out_kw[i];
        size_t start = end + 1 - E.kw_len[k];
        for (uint32_t u = E.use_off[k]; u < E.use_off[k + 1]; u++) {
            const kw_use *use = &E.uses[u];
            if (use->exact && memcmp(sc->text + start, use->exact, E.kw_len[k]) != 0)
                continue;
            int rc = attempt(sc, use->rule, start);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

/* The keyword pass. The text is cut into pairs of blocks, and the DFA runs
 * over both blocks of a pair at once: two independent chains of table
 * loads keep the CPU busy where one would wait on each load. Each stream
 * starts max_kw bytes before its block (a keyword ending in the block has
 * all its bytes there) and records where keywords end; then the first
 * block's keywords are handled, then the second's, so rules still see
 * their keywords in text order. */
#define BLOCK 1024

static int scan_text(scan *sc) {
    const unsigned char *p = (const unsigned char *)sc->text;
    const uint16_t *delta = E.delta;
    const unsigned char *cls = E.cls;
    const uint32_t thr = E.first_out * E.nclass;
    const size_t len = sc->len, warm = E.max_kw;
    /* where keywords end (offset in the block) and the state there */
    uint32_t ha[BLOCK], hb[BLOCK], qa[BLOCK], qb[BLOCK];
    for (size_t a0 = 0; a0 < len; a0 += 2 * BLOCK) {
        size_t na = len - a0 < BLOCK ? len - a0 : BLOCK, b0 = a0 + na;
        size_t nb = len - b0 < BLOCK ? len - b0 : BLOCK;
        uint32_t sa = 0, sb = 0;
        for (size_t i = a0 > warm ? a0 - warm : 0; i < a0; i++)
            sa = delta[sa + cls[p[i]]];
        for (size_t i = b0 > warm ? b0 - warm : 0; nb && i < b0; i++)
            sb = delta[sb + cls[p[i]]];
        const unsigned char *pa = p + a0, *pb = p + b0;
        size_t ka = 0, kb = 0, j = 0;
        for (; j < nb; j++) {
            sa = delta[sa + cls[pa[j]]];
            sb = delta[sb + cls[pb[j]]];
            ha[ka] = (uint32_t)j; /* branch-free: kept only when it counts */
            qa[ka] = sa;
            ka += sa >= thr;
            hb[kb] = (uint32_t)j;
            qb[kb] = sb;
            kb += sb >= thr;
        }
        for (; j < na; j++) {
            sa = delta[sa + cls[pa[j]]];
            ha[ka] = (uint32_t)j;
            qa[ka] = sa;
            ka += sa >= thr;
        }
        for (size_t h = 0; h < ka + kb; h++) {
            size_t end = h < ka ? a0 + ha[h] : b0 + hb[h - ka];
            uint32_t st = h < ka ? qa[h] : qb[h - ka];
            int rc = on_keywords(sc, end, st / E.nclass - E.first_out);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

static int by_rule_start(const void *a, const void *b) {
    const cx_redact_match *x = a, *y = b;
    if (x->rule != y->rule)
        return x->rule < y->rule ? -1 : 1;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* Resolves the candidates into non-overlapping matches sorted by start,
 * an earlier rule winning an overlap: each rule's candidates (sorted, not
 * overlapping one another) are merged into what earlier rules kept. */
/* Lays the matches found in decoded views (v, resolved among themselves)
 * over the text's own (m): a view's match never removes nor stretches one
 * of the text's; it is added where it overlaps none of them. (A view's
 * match that overlaps one is the same secret seen twice, or a word on the
 * next line that a pattern without an end would run into.) Both lists are
 * freed; *out is the result, sorted by start. */
static int merge_views(cx_redact_match *m, size_t nm, cx_redact_match *v, size_t nv,
                       cx_redact_match **out, size_t *n) {
    if (nv == 0) {
        free(v);
        *out = m;
        *n = nm;
        return 0;
    }
    cx_redact_match *res = malloc((nm + nv) * sizeof *res);
    if (!res) {
        free(m), free(v);
        return cx_error_set(CX_ENOMEM, "out of memory for redaction matches");
    }
    size_t k = 0, i = 0, j = 0;
    for (size_t x = 0; x < nv; x++) {
        while (j < nm && m[j].end <= v[x].start)
            j++;
        if (j < nm && m[j].start < v[x].end)
            continue;
        while (i < nm && m[i].start < v[x].start)
            res[k++] = m[i++];
        res[k++] = v[x];
    }
    while (i < nm)
        res[k++] = m[i++];
    free(m);
    free(v);
    *out = res;
    *n = k;
    return 0;
}

static int resolve(scan *sc, cx_redact_match **out, size_t *n) {
    size_t nc = sc->ncand;
    cx_redact_match *c = sc->cand;
    qsort(c, nc, sizeof *c, by_rule_start);
    /* One rule's candidates overlap only in a decoded view (two joined
     * line pairs of one key body): their union. */
    size_t w = 0;
    for (size_t k = 0; k < nc; k++) {
        if (w > 0 && c[w - 1].rule == c[k].rule && c[k].start < c[w - 1].end) {
            if (c[k].end > c[w - 1].end)
                c[w - 1].end = c[k].end;
            continue;
        }
        c[w++] = c[k];
    }
    nc = sc->ncand = w;
    cx_redact_match *acc = malloc(nc * sizeof *acc), *tmp = malloc(nc * sizeof *tmp);
    if (!acc || !tmp) {
        free(acc), free(tmp);
        return cx_error_set(CX_ENOMEM, "out of memory for redaction matches");
    }
    size_t na = 0;
    for (size_t i = 0; i < nc;) {
        size_t j = i;
        while (j < nc && c[j].rule == c[i].rule)
            j++;
        size_t a = 0, o = 0;
        for (size_t k = i; k < j; k++) {
            while (a < na && acc[a].end <= c[k].start)
                tmp[o++] = acc[a++];
            if (a < na && acc[a].start < c[k].end)
                continue; /* an earlier rule holds part of it */
            if (o > 0 && tmp[o - 1].end > c[k].start)
                continue; /* cannot happen (a rule's matches do not overlap); be safe */
            tmp[o++] = c[k];
        }
        while (a < na)
            tmp[o++] = acc[a++];
        cx_redact_match *sw = acc;
        acc = tmp;
        tmp = sw;
        na = o;
        i = j;
    }
    free(tmp);
    *out = acc;
    *n = na;
    return 0;
}

/* ---- Decoded views ------------------------------------------------------
 * A secret can hide behind an encoding that no pattern sees through: URL
 * encoding (postgres%3A%2F%2Fuser%3Apw%40host), JSON escapes
 * (gh\u0070_...), or a line break in the middle of a key. A view is a text
 * made of decoded pieces of the original, each byte knowing the span of
 * the original it came from; the view is scanned like any text, and a
 * match in it redacts the span it came from. Views are built only where
 * their trigger occurs (an escape; two adjacent one-word lines), so a text
 * without them costs a memchr for '%' and '\\' and a look at each line. */

/* A decoded view: len bytes, and for view byte i the original span
 * [from[i], to[i]); from[i] == NO_SPAN for the separators between pieces,
 * which no match may cross. */
#define NO_SPAN UINT32_MAX
typedef struct view {
    char *buf;
    uint32_t *from, *to;
    size_t len, cap;
} view;

static void view_free(view *v) {
    free(v->buf);
    free(v->from);
    free(v->to);
}

/* Makes room for k more bytes. */
static int view_reserve(view *v, size_t k) {
    if (v->cap - v->len < k) {
        size_t cap = v->cap ? v->cap * 2 : 256;
        while (cap - v->len < k)
            cap *= 2;
        char *b = realloc(v->buf, cap);
        if (b)
            v->buf = b;
        uint32_t *f = b ? realloc(v->from, cap * sizeof *f) : NULL;
        if (f)
            v->from = f;
        uint32_t *t = f ? realloc(v->to, cap * sizeof *t) : NULL;
        if (!t)
            return cx_error_set(CX_ENOMEM, "out of memory for a decoded view");
        v->to = t;
        v->cap = cap;
    }
    return 0;
}

static int view_put(view *v, char c, uint32_t from, uint32_t to) {
    if (v->len == v->cap && view_reserve(v, 1))
        return CX_ENOMEM;
    v->buf[v->len] = c;
    v->from[v->len] = from;
    v->to[v->len] = to;
    v->len++;
    return 0;
}

/* Appends t[a, z) as it is; the room is reserved. */
static void view_copy(view *v, const char *t, size_t a, size_t z) {
    memcpy(v->buf + v->len, t + a, z - a);
    for (size_t i = a; i < z; i++, v->len++) {
        v->from[v->len] = (uint32_t)i;
        v->to[v->len] = (uint32_t)i + 1;
    }
}

/* Two newlines between pieces: no rule's match crosses a blank line. */
static int view_separate(view *v) {
    int r = view_put(v, '\n', NO_SPAN, NO_SPAN);
    return r ? r : view_put(v, '\n', NO_SPAN, NO_SPAN);
}

static int hex_value(unsigned char c) {
    if (is_digit(c))
        return c - '0';
    c = (unsigned char)to_lower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The escape at t[i]: its length (0: none) and the byte it stands for.
 * %XX (URL encoding); \u00XX below 0x80 and \/ (JSON). Other JSON escapes
 * (\n, \", \\) are left: the rules read them as they are. */
static size_t escape_at(const char *t, size_t n, size_t i, unsigned char *b) {
    const unsigned char *u = (const unsigned char *)t;
    if (u[i] == '%' && i + 2 < n && hex_value(u[i + 1]) >= 0 && hex_value(u[i + 2]) >= 0) {
        *b = (unsigned char)(hex_value(u[i + 1]) << 4 | hex_value(u[i + 2]));
        return 3;
    }
    if (u[i] != '\\' || i + 1 >= n)
        return 0;
    if (u[i + 1] == '/') {
        *b = '/';
        return 2;
    }
    if (u[i + 1] == 'u' && i + 5 < n && u[i + 2] == '0' && u[i + 3] == '0' &&
        hex_value(u[i + 4]) >= 0 && hex_value(u[i + 4]) < 8 && hex_value(u[i + 5]) >= 0) {
        *b = (unsigned char)(hex_value(u[i + 4]) << 4 | hex_value(u[i + 5]));
        return 6;
    }
    return 0;
}

static bool is_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Appends t[a, z) with its escapes decoded, then a separator. */
static int view_decode(view *v, const char *t, size_t n, size_t a, size_t z) {
    for (size_t i = a; i < z;) {
        unsigned char b;
        size_t k = escape_at(t, n, i, &b);
        if (k == 0 || i + k > z) {
            b = (unsigned char)t[i];
            k = 1;
        }
        int r = view_put(v, (char)b, (uint32_t)i, (uint32_t)(i + k));
        if (r)
            return r;
        i += k;
    }
    return view_separate(v);
}

/* How far around an escape its word is decoded: a long word (a line of
 * minified JSON) is decoded in windows, not whole. Longer than any secret
 * an escape hides in practice. */
#define ESCAPE_WINDOW 4096

/* The escape view: every word (a run of non-blanks) that holds an escape,
 * decoded. */
static int escape_view(const char *t, size_t n, view *v) {
    const char *pct = memchr(t, '%', n), *bsl = memchr(t, '\\', n);
    size_t ra = 0, rz = 0; /* the open piece [ra, rz) */
    bool open = false;
    int r = 0;
    while (pct || bsl) {
        const char *p = !bsl || (pct && pct < bsl) ? pct : bsl;
        size_t at = (size_t)(p - t);
        unsigned char b;
        if (escape_at(t, n, at, &b)) {
            if (!open || at >= rz) {
                if (open && (r = view_decode(v, t, n, ra, rz)))
                    return r;
                size_t floor = open ? rz : 0;
                ra = at;
                while (ra > floor && at - ra < ESCAPE_WINDOW && !is_space((unsigned char)t[ra - 1]))
                    ra--;
                rz = at;
                open = true;
            }
            /* the piece runs to the end of the word, or a window past the escape */
            while (rz < n && rz < at + ESCAPE_WINDOW && !is_space((unsigned char)t[rz]))
                rz++;
        }
        const char *next = t + (open && rz > at + 1 ? rz : at + 1);
        size_t left = (size_t)(t + n - next);
        if (p == pct || (pct && pct < next))
            pct = left ? memchr(next, '%', left) : NULL;
        if (p == bsl || (bsl && bsl < next))
            bsl = left ? memchr(next, '\\', left) : NULL;
    }
    return open ? view_decode(v, t, n, ra, rz) : 0;
}

/* A key split over two lines: each half alone on its line (blanks around
 * it aside), of this many bytes. */
#define HALF_MIN 8
#define HALF_MAX 512

/* What a key's half is made of (letters, digits, the base64 and token
 * punctuation): a line of code (a brace, a call, a string) is not one. */
static const bool key_char[256] = {
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1,
    ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1,
    ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1,
    ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1,
    ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1,
    ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1,
    ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1, ['_'] = 1, ['-'] = 1,
    ['+'] = 1, ['/'] = 1, ['='] = 1, ['.'] = 1, ['~'] = 1,
};

/* The join view: each two adjacent lines that are one word each (of
 * key_char, '=' only at its end), joined. */
static int join_view(const char *t, size_t n, view *v) {
    size_t pa = 0, pz = 0;
    bool prev = false;
    for (size_t ls = 0; ls < n;) {
        const char *nl = memchr(t + ls, '\n', n - ls);
        size_t le = nl ? (size_t)(nl - t) : n;
        size_t a = ls, z = le;
        while (a < z && (t[a] == ' ' || t[a] == '\t'))
            a++;
        while (z > a && (t[z - 1] == ' ' || t[z - 1] == '\t' || t[z - 1] == '\r'))
            z--;
        bool word = z - a >= HALF_MIN && z - a <= HALF_MAX, pad = false;
        for (size_t i = a; word && i < z; i++) {
            /* '=' only as base64 padding: NAME=value is an assignment */
            word = key_char[(unsigned char)t[i]] && (!pad || t[i] == '=');
            pad |= t[i] == '=';
        }
        if (word && prev) {
            if (view_reserve(v, (pz - pa) + (z - a) + 2))
                return CX_ENOMEM;
            view_copy(v, t, pa, pz);
            view_copy(v, t, a, z);
            int r = view_separate(v);
            if (r)
                return r;
        }
        prev = word;
        pa = a;
        pz = z;
        ls = le + 1;
    }
    return 0;
}

static void scan_init(scan *s, const char *text, size_t len) {
    s->text = text;
    s->len = len;
    memset(s->floor, 0, E.nrules * sizeof s->floor[0]);
    s->cand = NULL;
    s->ncand = s->capcand = 0;
    s->gctx = NULL;
    s->mctx = NULL;
    s->md = NULL;
}

/* Scans view v and adds its matches to sc, as spans of sc's text. A match
 * may not cross a separator; in the join view it must cross the line
 * break (a match on one line alone is the text's own scan's). */
static int scan_view(scan *sc, const view *v, bool joined) {
    if (v->len == 0)
        return 0;
    scan vs;
    scan_init(&vs, v->buf, v->len);
    int rc = scan_text(&vs);
    for (size_t k = 0; rc == 0 && k < vs.ncand; k++) {
        size_t a = vs.cand[k].start, z = vs.cand[k].end;
        bool whole = true;
        for (size_t i = a; whole && i < z; i++)
            whole = v->from[i] != NO_SPAN;
        if (!whole)
            continue;
        size_t from = v->from[a], to = v->to[z - 1];
        if (joined && !memchr(sc->text + from, '\n', to - from))
            continue;
        rc = add_candidate(sc, vs.cand[k].rule, from, to);
    }
    scan_done(&vs);
    return rc;
}

/* The decoded views of sc's text, scanned. */
static int scan_views(scan *sc) { /* sc: the text, collecting the views' candidates */
    view v = {0};
    int rc = escape_view(sc->text, sc->len, &v);
    if (rc == 0)
        rc = scan_view(sc, &v, false);
    v.len = 0;
    if (rc == 0)
        rc = join_view(sc->text, sc->len, &v);
    if (rc == 0)
        rc = scan_view(sc, &v, true);
    view_free(&v);
    return rc;
}

int cx_redact_find(const char *text, size_t len, cx_redact_match **out, size_t *n) {
    assert(out && n && (text || len == 0));
    int rc = cx_redact_init();
    if (rc < 0)
        return rc;
    if (len > CX_REDACT_MAX_TEXT)
        return cx_error_set(CX_ELIMIT, "text of %zu bytes is over the redaction limit of %zu",
                            len, (size_t)CX_REDACT_MAX_TEXT);
    /* The scan state is on the stack: a call that finds nothing allocates
     * nothing. */
    scan s, vs;
    scan_init(&s, text, len);
    scan_init(&vs, text, len);

    cx_redact_match *m = NULL, *vm = NULL;
    size_t nm = 0, nvm = 0;
    rc = scan_text(&s);
    if (rc == 0)
        rc = scan_views(&vs);
    if (rc == 0 && s.ncand)
        rc = resolve(&s, &m, &nm);
    if (rc == 0 && vs.ncand)
        rc = resolve(&vs, &vm, &nvm);
    if (rc == 0)
        rc = merge_views(m, nm, vm, nvm, &m, &nm);
    else
        free(m), free(vm);
    if (rc == 0) {
        *out = m;
        *n = nm;
    }
    scan_done(&s);
    scan_done(&vs);
    return rc;
}

/* ---- Replacing --------------------------------------------------------- */

/* A copy of text with each match replaced by its marker; NUL-terminated. */
static int apply(const char *text, size_t len, const cx_redact_match *m, size_t n, char **out,
                 size_t *out_len) {
    size_t total = len;
    for (size_t i = 0; i < n; i++)
        total = total - (m[i].end - m[i].start) + E.marker_len[m[i].rule];
    char *buf = malloc(total + 1);
    if (!buf)
        return cx_error_set(CX_ENOMEM, "out of memory for a redacted copy of %zu bytes", total);
    size_t at = 0, from = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(buf + at, text + from, m[i].start - from);
        at += m[i].start - from;
        at += (size_t)snprintf(buf + at, total + 1 - at, "%s%s]", CX_REDACT_PREFIX,
                               cx_redact_rules[m[i].rule].id);
        from = m[i].end;
    }
    memcpy(buf + at, text + from, len - from);
    at += len - from;
    assert(at == total);
    buf[at] = 0;
    *out = buf;
    *out_len = total;
    return 0;
}

int cx_redact_text(const char *text, size_t len, char **out, size_t *out_len,
                   cx_redact_report *rep) {
    assert(out);
    const char *cur = text;
    size_t curlen = len;
    char *buf = NULL;
    cx_redact_report add;
    add.total = 0;
    int rc = 0;
    for (int pass = 0; pass < MAX_PASSES; pass++) {
        cx_redact_match *m = NULL;
        size_t n = 0;
        rc = cx_redact_find(cur, curlen, &m, &n);
        if (rc < 0 || n == 0)
            break;
        if (add.total == 0)
            memset(add.counts, 0, sizeof add.counts);
        char *next = NULL;
        size_t nextlen = 0;
        rc = apply(cur, curlen, m, n, &next, &nextlen);
        if (rc == 0) {
            add.total += n;
            for (size_t i = 0; i < n; i++)
                add.counts[m[i].rule]++;
        }
        free(m);
        if (rc < 0)
            break;
        free(buf);
        buf = next;
        cur = buf;
        curlen = nextlen;
    }
    if (rc < 0) {
        free(buf);
        return rc;
    }
    if (rep && add.total) {
        rep->total += add.total;
        for (size_t r = 0; r < E.nrules; r++)
            rep->counts[r] += add.counts[r];
    }
    *out = buf;
    if (out_len)
        *out_len = curlen;
    return 0;
}

int cx_redact_string(char **s, cx_redact_report *rep) {
    assert(s && *s);
    char *out = NULL;
    int rc = cx_redact_text(*s, strlen(*s), &out, NULL, rep);
    if (rc < 0)
        return rc;
    if (out) {
        free(*s);
        *s = out;
    }
    return 0;
}

json_t *cx_redact_report_json(const cx_redact_report *rep) {
    if (!rep || rep->total == 0)
        return NULL;
    json_t *rules = json_array();
    for (size_t r = 0; rules && r < cx_redact_nrules && r < CX_REDACT_MAX_RULES; r++)
        if (rep->counts[r] && json_array_append_new(rules, json_string(cx_redact_rules[r].id)) != 0) {
            json_decref(rules);
            return NULL;
        }
    return rules ? json_pack("{s:I,s:o}", "count", (json_int_t)rep->total, "rules", rules) : NULL;
}

/* ---- Files ------------------------------------------------------------- */

static bool ends_with(const char *s, size_t n, const char *suffix) {
    size_t k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

static const char *credential_name(const char *name) {
    const char *base = name;
    for (const char *p = name; *p; p++)
        if (*p == '/' || *p == '\\')
            base = p + 1;
    size_t n = strlen(base);
    if (n == 0)
        return NULL;
    if (ends_with(base, n, ".pub"))
        return NULL; /* id_rsa.pub, a public key */
    static const char *const ssh[] = {"id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", NULL};
    for (size_t i = 0; ssh[i]; i++)
        if (strncmp(base, ssh[i], strlen(ssh[i])) == 0)
            return "an SSH private key";
    /* .env, .env.local, .env.production, prod.env; not the templates
     * (.env.example, .env.sample, .env.template, .env.dist), which are
     * meant to be shared and go through text redaction like any file. */
    if (strcasecmp(base, ".env") == 0 || ends_with(base, n, ".env"))
        return "an environment file";
    if (strncasecmp(base, ".env.", 5) == 0) {
        static const char *const templates[] = {".example", ".sample", ".template", ".dist",
                                                ".defaults", ".default", ".tpl", ".schema", NULL};
        for (size_t i = 0; templates[i]; i++)
            if (ends_with(base, n, templates[i]))
                return NULL;
        return "an environment file";
    }
    static const char *const stores[] = {".jks", ".keystore", ".jceks", ".bks", NULL};
    for (size_t i = 0; stores[i]; i++)
        if (ends_with(base, n, stores[i]))
            return "a Java key store";
    if (ends_with(base, n, ".p12") || ends_with(base, n, ".pfx"))
        return "a PKCS#12 key store";
    if (ends_with(base, n, ".ppk"))
        return "a PuTTY private key";
    static const char *const creds[] = {".npmrc", ".pypirc", ".netrc", "_netrc", ".git-credentials",
                                        ".pgpass", ".htpasswd", ".dockercfg", "credentials", NULL};
    for (size_t i = 0; creds[i]; i++)
        if (strcasecmp(base, creds[i]) == 0)
            return "a credentials file";
    if (strncasecmp(base, "credentials.", 12) == 0 || strncasecmp(base, "client_secret", 13) == 0)
        return "a credentials file";
    return NULL;
}

/* A DER/BER length at p (n bytes left): the number of length bytes, 0 if bad. */
static size_t der_len_bytes(const unsigned char *p, size_t n) {
    if (n == 0)
        return 0;
    if (p[0] < 0x80 || p[0] == 0x80)
        return 1; /* short form, or BER's indefinite length */
    size_t k = p[0] & 0x7f;
    return k <= 4 && k + 1 <= n ? k + 1 : 0;
}

/* PKCS#12: SEQUENCE { INTEGER 3, SEQUENCE { OID pkcs7-data ... } ... } */
static bool pkcs12(const unsigned char *p, size_t n) {
    static const unsigned char version[] = {0x02, 0x01, 0x03};
    static const unsigned char data_oid[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                             0xf7, 0x0d, 0x01, 0x07, 0x01};
    if (n < 2 || p[0] != 0x30)
        return false;
    size_t i = 1, k = der_len_bytes(p + i, n - i);
    if (!k)
        return false;
    i += k;
    if (n - i < sizeof version + 1 || memcmp(p + i, version, sizeof version) != 0)
        return false;
    i += sizeof version;
    if (p[i] != 0x30)
        return false;
    i++;
    k = der_len_bytes(p + i, n - i);
    if (!k)
        return false;
    i += k;
    return n - i >= sizeof data_oid && memcmp(p + i, data_oid, sizeof data_oid) == 0;
}

/* Does the data hold a private key block, as the private-key rule sees it
 * (a header and key material; not a header quoted alone in code)? */
static bool private_key_block(const char *p, size_t n) {
    if (cx_redact_init() != 0 || n > CX_REDACT_MAX_TEXT)
        return false;
    size_t r = 0;
    while (r < E.nrules && strcmp(cx_redact_rules[r].id, "private-key") != 0)
        r++;
    if (r == E.nrules)
        return false;
    scan sc;
    memset(&sc, 0, sizeof sc);
    sc.text = p;
    sc.len = n;
    static const char begin[] = "-----BEGIN";
    const char *at = p, *end = p + n;
    int rc = 0;
    while (rc == 0 && sc.ncand == 0 && (at = memmem(at, (size_t)(end - at), begin, sizeof begin - 1))) {
        rc = attempt(&sc, r, (size_t)(at - p));
        at += sizeof begin - 1;
    }
    bool found = sc.ncand > 0;
    scan_done(&sc);
    return found;
}

static const char *credential_content(const unsigned char *p, size_t n) {
    if (n >= 4 && p[0] == 0xfe && p[1] == 0xed && p[2] == 0xfe && p[3] == 0xed)
        return "a Java key store";
    if (n >= 4 && p[0] == 0xce && p[1] == 0xce && p[2] == 0xce && p[3] == 0xce)
        return "a Java key store";
    if (pkcs12(p, n))
        return "a PKCS#12 key store";
    static const char putty[] = "PuTTY-User-Key-File-";
    if (n >= sizeof putty - 1 && memcmp(p, putty, sizeof putty - 1) == 0)
        return "a PuTTY private key";
    return private_key_block((const char *)p, n) ? "a private key file" : NULL;
}

const char *cx_redact_credential_file(const char *name, const void *data, size_t len) {
    const char *why = name ? credential_name(name) : NULL;
    if (why)
        return why;
    if (data && len) {
        why = credential_content(data, len);
        if (why)
            return why;
    }
    /* A .key file is nearly always a private key (or a Keynote deck); when
     * its content is unknown, treat it as a key. A .pem file is more often
     * a certificate: only its content decides. */
    if (name && !data) {
        size_t n = strlen(name);
        if (ends_with(name, n, ".key"))
            return "a private key file";
    }
    return NULL;
}

bool cx_redact_in_marker(const char *s, size_t len, size_t at, size_t *start, size_t *end) {
    const size_t plen = sizeof CX_REDACT_PREFIX - 1;
    /* a rule id is short: no marker starts further back than this */
    size_t back = at > 128 ? at - 128 : 0;
    if (at > len)
        return false;
    for (size_t i = at; i-- > back;) {
        if (s[i] == ']')
            return false; /* whatever marker came before closed before `at` */
        if (s[i] != '[' || i + plen > len || memcmp(s + i, CX_REDACT_PREFIX, plen) != 0)
            continue;
        const char *close = memchr(s + i + plen, ']', len - i - plen);
        size_t e = close ? (size_t)(close - s) + 1 : len;
        if (at > i && at < e + (close ? 0 : 1)) {
            *start = i;
            *end = e;
            return true;
        }
        return false;
    }
    return false;
}

size_t cx_redact_cut(const char *s, size_t len, size_t max, bool more) {
    const size_t plen = sizeof CX_REDACT_PREFIX - 1;
    size_t n = cx_utf8_cut(s, len, max), ms, me;
    if (n >= len && !more)
        return len; /* nothing cut */
    if (cx_redact_in_marker(s, len, n, &ms, &me))
        return ms;
    /* the kept part ends in the start of a marker: "[", "[RED", ... */
    for (size_t k = n < plen - 1 ? n : plen - 1; k > 0; k--)
        if (memcmp(s + n - k, CX_REDACT_PREFIX, k) == 0)
            return n - k;
    return n;
}

bool cx_redact_is_text(const void *data, size_t len) {
    const unsigned char *p = data;
    size_t i = 0;
    while (i < len) {
        /* ASCII runs, eight bytes at a time: no high bit and no zero byte */
        while (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if ((w & 0x8080808080808080ull) || ((w - 0x0101010101010101ull) & ~w & 0x8080808080808080ull))
                break;
            i += 8;
        }
        if (i >= len)
            break;
        if (p[i] == 0)
            return false;
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = cx_utf8_seq_len(p + i, len - i);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}
