/* SPDX-License-Identifier: Apache-2.0 */
/* The "cortex" FTS5 tokenizer (see tokenizer.h): a wrapper around
 * unicode61 that joins words into identifiers and emits their parts, cuts
 * runs of scripts written without spaces into bigrams, makes emoji tokens
 * and indexes words with diacritics both folded and exact. ASCII text it
 * splits into words itself, exactly as unicode61 would (the fast path). */
#include "text/tokenizer.h"

#include "text/ident.h"
#include "text/nfc.h"
#include "util/dl.h"
#include "util/error.h"

#include <ctype.h>
#include <libstemmer.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifndef CX_LIBSTEMMER_SONAME
#define CX_LIBSTEMMER_SONAME "libstemmer.so.0d"
#endif

/* ---- the "cortex" FTS5 tokenizer ----
 * unicode61 (remove_diacritics 2 and categories "L* N* Co M*" unless other
 * arguments are given) finds
 * and folds the words; this wrapper joins words separated by one joiner
 * (cx_text_ident_joiner) into identifiers: `parse_config`,
 * `retry.policy.max`, `src/billing/invoice.c`. For a document it emits
 * each identifier whole and lower-cased, then each of its parts (the
 * words, each cut at camelCase and digit boundaries) as
 * FTS5_TOKEN_COLOCATED synonyms at the same position: `parseConfigFile`
 * is indexed as parseconfigfile = parse = config = file. For a query it
 * emits only the whole identifier, so that `parse_config` in a query
 * matches the identifier; the query builder (src/search/fts.c) adds the
 * parts itself. Positions count identifiers, so phrases work as before.
 *
 * Every script (version 2, CX_TEXT_TOKENIZER_VERSION):
 * - unicode61 already folds case beyond ASCII (Latin, Greek, Cyrillic,
 *   Armenian...) and splits Arabic, Cyrillic, Greek, Hebrew words at
 *   spaces like English.
 * - A run of Han, Hiragana, Katakana, Hangul, Thai, Lao, Khmer or Myanmar
 *   (unicode61 gives it as one word, a whole sentence) becomes its
 *   overlapping bigrams, one position each (连接池 -> 连接 接池); a run of
 *   one character is itself. A document also indexes each CJK character
 *   alone at the same positions (colocated), for queries of one
 *   character. A query word in those scripts becomes the
 *   same bigrams, which FTS5 matches as a phrase: 连接池 finds every text
 *   that holds 连接池. No dictionary (ICU is not used): see DECISIONS.md.
 * - Emoji (which unicode61 drops) are tokens of their own, one per emoji;
 *   skin-tone modifiers, variation selectors and ZWJ are left out, so
 *   a thumbs-up with any skin tone is the token of the thumbs-up.
 * - A word with combining marks is composed first (text/nfc.h), so NFD
 *   and NFC text give the same tokens.
 * - Diacritics: the word's token is folded (café -> cafe, as before, and
 *   Greek accents and breathings too, which unicode61 keeps: ά -> α); a
 *   document also indexes the exact, case-folded form (café) at the same
 *   position when it differs. A query emits the folded form, or the exact
 *   one when its text starts with '=' (CX_TEXT_EXACT_MARK, which unicode61
 *   ignores): the query builder asks for both, so an exact match scores
 *   on both terms and ranks above a folded-only one.
 *
 * Word forms (version 3): a plain word of a document (ASCII letters only,
 * 3 to 64 of them, one identifier part: not camelCase, not joined to
 * another word) is also indexed as CX_TEXT_STEM_MARK and its English
 * Snowball stem (libstemmer), colocated: `deadlocks` = `~deadlock`.
 * Identifiers and their parts are never stemmed, so `parse_configs`
 * matches only itself and its parts. A query string that starts with the
 * mark emits the stem instead of the word; the query builder asks for
 * ("word" OR "~word"), so the exact word scores on both terms and ranks
 * above a word that only shares its stem. One stemmer per tokenizer
 * instance (libstemmer's stemmers are not thread-safe; SQLite uses an
 * instance on one connection, one thread at a time). */

/* ---- libstemmer, loaded when the first connection registers ----
 * libstemmer is opened with dlopen() (util/dl.h), not linked: its tables
 * of every language are pointers, about 10,800 relocations and 90 pages
 * that the dynamic loader would write before main() of every program
 * that links it, 1.3 ms of cortexd's start. Loaded here, the cost is paid
 * by the first store open, which cortexd does on its warm-up thread after
 * `initialize` is answered. The soname is the one meson found at build
 * time (CX_LIBSTEMMER_SONAME). */
static struct {
    struct sb_stemmer *(*new_)(const char *algorithm, const char *charenc);
    void (*delete_)(struct sb_stemmer *st);
    const sb_symbol *(*stem)(struct sb_stemmer *st, const sb_symbol *word, int size);
    int (*length)(struct sb_stemmer *st);
} sb;
static bool sb_loaded;
static char sb_failure[256];
static pthread_once_t sb_once = PTHREAD_ONCE_INIT;

static void sb_load(void) {
    static const char *const sonames[] = {CX_LIBSTEMMER_SONAME, NULL};
    const cx_dl_sym syms[] = {
        {"sb_stemmer_new", &sb.new_},
        {"sb_stemmer_delete", &sb.delete_},
        {"sb_stemmer_stem", &sb.stem},
        {"sb_stemmer_length", &sb.length},
    };
    if (cx_dl_open(sonames, syms, sizeof syms / sizeof *syms, NULL) != 0) {
        snprintf(sb_failure, sizeof sb_failure, "%s", cx_error_last());
        return;
    }
    sb_loaded = true;
}

int cx_text_stemmer_load(void) {
    pthread_once(&sb_once, sb_load);
    return sb_loaded ? 0
                     : cx_error_set(CX_EFAIL,
                                    "%s (the English stemmer, for word forms in search; "
                                    "install libstemmer, e.g. Debian's libstemmer0d)",
                                    sb_failure);
}

#define TOK_GROUP_MAX 16  /* words joined into one identifier, at most */
#define TOK_WHOLE_MAX 256 /* bytes of a whole identifier token */
#define TOK_PARTS_MAX 32  /* camelCase parts of one word, at most */
#define TOK_STEM_MIN 3    /* letters of a word that is stemmed, at least */
#define TOK_STEM_MAX 64   /* and at most */
#define TOK_STEM_CACHE 2048 /* words whose stems an instance remembers */
#define TOK_STEM_CACHED 30  /* ... of at most this many letters (longer: stemmed each time) */

/* A word and its stem, remembered: stemming costs about a thousand
 * instructions a word, a look-up here a tenth of that, and the words of
 * notes repeat. */
typedef struct stem_slot {
    unsigned char nw, ns; /* 0: empty */
    char w[TOK_STEM_CACHED], s[TOK_STEM_CACHED + 1];
} stem_slot;

/* What one registration shares with its instances: the connection's
 * fts5_api and the sink of base tokens (cx_text_tokenizer_sink). */
typedef struct ctok_reg {
    fts5_api *api;
    cx_text_term_fn sink;
    void *sink_ud;
} ctok_reg;

typedef struct ctok {
    fts5_tokenizer u61;
    ctok_reg *reg;
    Fts5Tokenizer *inst;  /* the words, folded (remove_diacritics 2 by default) */
    Fts5Tokenizer *exact; /* case folding only (remove_diacritics 0) */
    struct sb_stemmer *stemmer; /* English Snowball, this instance's own */
    bool fast; /* the ASCII fast path applies: cls is what unicode61 does */
    unsigned char cls[256]; /* per byte: one of CLS_* */
    stem_slot cache[TOK_STEM_CACHE]; /* direct-mapped by a hash of the word */
} ctok;

typedef struct ctok_word {
    const char *tok; /* its normalised bytes: in the arena, or the text's own */
    int len;
    int start, end; /* the word in the text */
    bool fast;      /* found by the fast path: ASCII, and `one` is known */
    bool one;       /* (fast only) letters only, one identifier part: plain_word(),
                       or all upper case (cx_text_ident_parts gives it whole) */
} ctok_word;

typedef struct ctok_run {
    ctok *t; /* mutable: its stem cache */
    const char *text;
    int base;   /* what unicode61's offsets are relative to (a span's start) */
    int flags;  /* FTS5_TOKENIZE_* of the call */
    int scan;   /* text before this is scanned for emoji */
    bool query;
    bool doc;   /* a document (FTS5_TOKENIZE_DOCUMENT): base tokens go to the sink */
    bool exact; /* a query for the exact forms (CX_TEXT_EXACT_MARK) */
    bool stem;  /* a query for the stems (CX_TEXT_STEM_MARK) */
    uint32_t stem_initials; /* a document's words stemmed: those starting
                               with these letters (bit c - 'a'), see
                               cx_text_tokenize_snippet */
    void *uctx;
    int (*xtoken)(void *, int, const char *, int, int, int);
    ctok_word w[TOK_GROUP_MAX];
    int nw, alen;
    char arena[TOK_WHOLE_MAX];
    char buf[TOK_WHOLE_MAX];
    char nfc[TOK_WHOLE_MAX];   /* a word composed */
    char form[TOK_WHOLE_MAX];  /* a word re-tokenized */
    char form2[TOK_WHOLE_MAX]; /* the exact form of a word of a document */
    char greek[TOK_WHOLE_MAX]; /* a Greek word folded */
    char stemmed[TOK_STEM_MAX + 2]; /* the mark and a stem */
} ctok_run;

/* ---- the ASCII fast path ----
 * Most text is ASCII, and there unicode61 is a table: a byte is part of a
 * word or a separator, and A-Z fold to a-z. The fast path finds the words
 * of ASCII spans itself (cx_text_tokenize_snippet and every document and
 * query) and hands them to the same word logic (ctok_word_add) that
 * unicode61's words go to; a span of text between ASCII separators that
 * holds a byte >= 0x80 still goes through unicode61 and ctok_word_cb, so
 * every non-ASCII word is tokenized as before. Splitting there is exact:
 * unicode61 ends a word at every ASCII separator and never reads one as
 * part of a UTF-8 sequence. The table is not assumed but learnt from this
 * SQLite's unicode61, with the instance's own arguments, when the instance
 * is created (ctok_learn_ascii): bytes 0-127 tokenized once, and the fast
 * path is off unless every word it gives is the bytes' ASCII lower case.
 * With the default arguments (remove_diacritics 2, categories "L* N* Co
 * M*") the words are the runs of [A-Za-z0-9]; tests/unit/test-text.c
 * compares both paths on every byte and on random text. */
enum {
    CLS_SEP = 0,   /* an ASCII separator */
    CLS_LOWER = 1, /* a-z */
    CLS_UPPER = 2, /* A-Z */
    CLS_OTHER = 4, /* another ASCII byte of words (0-9) */
    CLS_HIGH = 8   /* a byte >= 0x80 */
};

/* Set by cx_text_tokenizer_test_slow(): every call takes unicode61. */
static atomic_bool force_slow;

void cx_text_tokenizer_test_slow(bool on) {
    atomic_store_explicit(&force_slow, on, memory_order_relaxed);
}

typedef struct learn {
    const unsigned char *text;
    unsigned char *cls;
    bool ok;
} learn;

static int learn_cb(void *ctx, int tflags, const char *tok, int n, int start, int end) {
    learn *L = ctx;
    if (tflags != 0 || start < 0 || end > 128 || n != end - start) {
        L->ok = false;
        return SQLITE_OK;
    }
    for (int i = 0; i < n; i++) {
        unsigned char c = L->text[start + i];
        unsigned char f = c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
        if ((unsigned char)tok[i] != f)
            L->ok = false;
        L->cls[c] = c >= 'a' && c <= 'z'   ? CLS_LOWER
                    : c >= 'A' && c <= 'Z' ? CLS_UPPER
                                           : CLS_OTHER;
    }
    return SQLITE_OK;
}

/* Learns t->cls from t->inst (see the fast path above); t->fast says
 * whether the fast path may be used. */
static int ctok_learn_ascii(ctok *t) {
    unsigned char bytes[128];
    for (int c = 0; c < 128; c++)
        bytes[c] = (unsigned char)c;
    memset(t->cls, CLS_SEP, 128);
    memset(t->cls + 128, CLS_HIGH, 128);
    learn L = {.text = bytes, .cls = t->cls, .ok = true};
    int rc = t->u61.xTokenize(t->inst, &L, FTS5_TOKENIZE_DOCUMENT, (const char *)bytes, 128,
                              learn_cb);
    t->fast = rc == SQLITE_OK && L.ok;
    return rc;
}

static int ctok_create(void *ud, const char **args, int nargs, Fts5Tokenizer **out) {
    ctok_reg *reg = ud;
    fts5_api *api = reg->api;
    void *u61ud = NULL;
    /* M*: the marks of Thai, Devanagari and the like are parts of words
     * (unicode61 cuts words at them by default) */
    static const char *const defaults[] = {"remove_diacritics", "2", "categories",
                                           "L* N* Co M*"};
    static const char *const exact[] = {"remove_diacritics", "0", "categories", "L* N* Co M*"};
    ctok *t = sqlite3_malloc(sizeof *t);
    if (!t)
        return SQLITE_NOMEM;
    memset(t, 0, sizeof *t);
    t->reg = reg;
    int rc = api->xFindTokenizer(api, "unicode61", &u61ud, &t->u61);
    if (rc == SQLITE_OK)
        rc = t->u61.xCreate(u61ud, nargs ? args : (const char **)defaults, nargs ? nargs : 4,
                            &t->inst);
    if (rc == SQLITE_OK)
        rc = ctok_learn_ascii(t);
    if (rc == SQLITE_OK)
        rc = t->u61.xCreate(u61ud, (const char **)exact, 4, &t->exact);
    if (rc == SQLITE_OK && cx_text_stemmer_load() != 0)
        rc = SQLITE_ERROR;
    if (rc == SQLITE_OK && !(t->stemmer = sb.new_("english", NULL)))
        rc = SQLITE_NOMEM;
    if (rc != SQLITE_OK) {
        if (t->inst)
            t->u61.xDelete(t->inst);
        if (t->exact)
            t->u61.xDelete(t->exact);
        sqlite3_free(t);
        return rc;
    }
    *out = (Fts5Tokenizer *)t;
    return SQLITE_OK;
}

static void ctok_delete(Fts5Tokenizer *p) {
    ctok *t = (ctok *)p;
    if (t && t->inst)
        t->u61.xDelete(t->inst);
    if (t && t->exact)
        t->u61.xDelete(t->exact);
    if (t && t->stemmer)
        sb.delete_(t->stemmer);
    sqlite3_free(t);
}

/* ---- scripts ---- */

/* Scripts written without spaces between words: bigrams. */
static bool cp_bigram(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) ||   /* CJK unified ideographs */
           (c >= 0x3400 && c <= 0x4DBF) ||   /* extension A */
           (c >= 0x20000 && c <= 0x3134F) || /* extensions B-G */
           (c >= 0xF900 && c <= 0xFAFF) ||   /* compatibility ideographs */
           (c >= 0x3005 && c <= 0x3007) ||   /* 々 〆 〇 */
           (c >= 0x3040 && c <= 0x30FF) ||   /* Hiragana, Katakana */
           (c >= 0x31F0 && c <= 0x31FF) ||   /* Katakana extensions */
           (c >= 0xFF66 && c <= 0xFF9F) ||   /* halfwidth Katakana */
           (c >= 0xAC00 && c <= 0xD7AF) ||   /* Hangul syllables */
           (c >= 0x1100 && c <= 0x11FF) ||   /* Hangul jamo */
           (c >= 0x3130 && c <= 0x318F) ||   /* Hangul compatibility jamo */
           (c >= 0x0E00 && c <= 0x0EFF) ||   /* Thai, Lao */
           (c >= 0x1780 && c <= 0x17FF) ||   /* Khmer */
           (c >= 0x1000 && c <= 0x109F);     /* Myanmar */
}

/* Emoji (pictographs) that are tokens of their own. */
static bool cp_emoji(uint32_t c) {
    return (c >= 0x1F300 && c <= 0x1F3FA) || (c >= 0x1F400 && c <= 0x1F6FF) ||
           (c >= 0x1F780 && c <= 0x1F7FF) || (c >= 0x1F900 && c <= 0x1FAFF) ||
           (c >= 0x1F000 && c <= 0x1F02F) || (c >= 0x1F0A0 && c <= 0x1F0FF) ||
           (c >= 0x1F170 && c <= 0x1F251) || /* enclosed, regional indicators */
           (c >= 0x2600 && c <= 0x27BF) ||   /* symbols, dingbats */
           (c >= 0x2300 && c <= 0x23FF) ||   /* ⌚ ⏰ ... */
           (c >= 0x2B00 && c <= 0x2BFF);     /* ⭐ ⬆ ... */
}

/* Parts of an emoji sequence that are no token: skin tones, variation
 * selectors, ZWJ, tags. */
static bool cp_emoji_mod(uint32_t c) {
    return (c >= 0x1F3FB && c <= 0x1F3FF) || c == 0xFE0F || c == 0xFE0E || c == 0x200D ||
           (c >= 0xE0020 && c <= 0xE007F);
}

/* Whether tok has a character of cls (cp_bigram or cp_emoji_mod), and
 * whether all of its characters are. */
static void tok_scan(const char *tok, int n, bool (*cls)(uint32_t), bool *any, bool *all) {
    const unsigned char *p = (const unsigned char *)tok;
    *any = false;
    *all = true;
    for (int i = 0; i < n;) {
        uint32_t c = p[i];
        size_t k = 1;
        if (c >= 0x80)
            k = cx_text_cp_decode(p + i, (size_t)(n - i), &c);
        bool in = c >= 0x80 && cls(c);
        *any = *any || in;
        *all = *all && in;
        i += (int)k;
    }
}

static bool is_ascii(const char *s, int n) {
    for (int i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return false;
    return true;
}

/* Whether tok may hold a Greek letter with an accent (U+0370-U+03FF: lead
 * bytes CD-CF; Greek Extended U+1F00-U+1FFF: E1 BC-BF). */
static bool greek(const char *tok, int n) {
    for (int i = 0; i < n; i++) {
        unsigned char c = (unsigned char)tok[i];
        if ((c >= 0xCD && c <= 0xCF) ||
            (c == 0xE1 && i + 1 < n && (unsigned char)tok[i + 1] >= 0xBC))
            return true;
    }
    return false;
}

/* The first token of one re-tokenized word. */
typedef struct ctok_one {
    char *out;
    int n;
    bool got;
} ctok_one;

static int ctok_one_cb(void *ctx, int tflags, const char *tok, int n, int start, int end) {
    ctok_one *o = ctx;
    (void)tflags, (void)start, (void)end;
    if (!o->got && n > 0 && n <= TOK_WHOLE_MAX / 2) {
        memcpy(o->out, tok, (size_t)n);
        o->n = n;
    }
    o->got = true;
    return SQLITE_OK;
}

/* The word at text[start, end) through inst (folded or exact), composed
 * first when it has combining marks, into out: its length, 0 if none. */
static int ctok_form(ctok_run *R, Fts5Tokenizer *inst, int start, int end, char *out, int *nout) {
    const char *w = R->text + start;
    int n = end - start;
    *nout = 0;
    if (n <= 0 || n > TOK_WHOLE_MAX)
        return SQLITE_OK;
    if (cx_text_nfc_needed(w, (size_t)n)) {
        n = (int)cx_text_nfc(w, (size_t)n, R->nfc);
        w = R->nfc;
    }
    ctok_one o = {.out = out, .n = 0, .got = false};
    int rc = R->t->u61.xTokenize(inst, &o, FTS5_TOKENIZE_DOCUMENT, w, n, ctok_one_cb);
    *nout = o.n;
    return rc;
}

static int ctok_flush(ctok_run *R);

/* Emits the emoji of text[R->scan, upto) (after the pending identifier). */
static int ctok_gap(ctok_run *R, int upto) {
    const unsigned char *p = (const unsigned char *)R->text;
    int rc = SQLITE_OK;
    for (int i = R->scan; rc == SQLITE_OK && i < upto;) {
        if (p[i] < 0xE2) { /* no emoji starts below U+2000 */
            i++;
            continue;
        }
        uint32_t c;
        int k = (int)cx_text_cp_decode(p + i, (size_t)(upto - i), &c);
        if (cp_emoji(c) && (rc = ctok_flush(R)) == SQLITE_OK)
            rc = R->xtoken(R->uctx, 0, R->text + i, k, i, i + k);
        i += k;
    }
    if (upto > R->scan)
        R->scan = upto;
    return rc;
}

/* Emits a word that holds a run of a script without spaces: each such run
 * as its overlapping bigrams (a run of one character as itself), the rest
 * of the word as it is. The offsets of the tokens never overlap (snippets
 * need that): a bigram spans its first character, the last one of a run
 * both. When the folded word is not as long as its text, the first token
 * spans the word and the others are empty at its end. */
typedef struct ctok_emit {
    ctok_run *R;
    const char *tok;
    int start, end;
    int s, e; /* the offsets of the last token emitted */
    bool same, first;
} ctok_emit;

static int emit_at(ctok_emit *E, int a, int b, int oa, int ob) {
    int s = E->same ? E->start + oa : E->first ? E->start : E->end;
    int e = E->same ? E->start + ob : E->end;
    E->first = false;
    E->s = s;
    E->e = e;
    return E->R->xtoken(E->R->uctx, 0, E->tok + a, b - a, s, e);
}

/* A document also indexes each CJK character of a run alone, at the
 * position of the bigram it starts (the last one at the last bigram), so
 * that a query of one character (锁, "lock") finds it anywhere in a run. */
static int emit_unigram(ctok_emit *E, int a, int b) {
    uint32_t c = 0;
    cx_text_cp_decode((const unsigned char *)E->tok + a, (size_t)(b - a), &c);
    /* a letter of Thai, Lao, Khmer or Myanmar alone is no word */
    if (E->R->query || (c >= 0x0E00 && c <= 0x0EFF) || (c >= 0x1780 && c <= 0x17FF) ||
        (c >= 0x1000 && c <= 0x109F))
        return SQLITE_OK;
    return E->R->xtoken(E->R->uctx, FTS5_TOKEN_COLOCATED, E->tok + a, b - a, E->s, E->e);
}

static int ctok_bigrams(ctok_run *R, const char *tok, int n, int start, int end) {
    const unsigned char *p = (const unsigned char *)tok;
    ctok_emit E = {.R = R, .tok = tok, .start = start, .end = end, .same = end - start == n,
                   .first = true};
    int rc = SQLITE_OK, i = 0;
    while (rc == SQLITE_OK && i < n) {
        uint32_t c = p[i];
        int k = c < 0x80 ? 1 : (int)cx_text_cp_decode(p + i, (size_t)(n - i), &c);
        if (c >= 0x80 && cp_bigram(c)) {
            /* pending bigram tok[pa, pc), its first character tok[pa, pb) */
            int c0 = i, prev = i, pa = -1, pb = -1, pc = -1;
            i += k;
            while (rc == SQLITE_OK && i < n) {
                uint32_t c2 = p[i];
                int k2 = c2 < 0x80 ? 1 : (int)cx_text_cp_decode(p + i, (size_t)(n - i), &c2);
                if (c2 < 0x80 || !cp_bigram(c2))
                    break;
                if (pa >= 0 && /* not the last: it spans its first character */
                    (rc = emit_at(&E, pa, pc, pa, pb)) == SQLITE_OK)
                    rc = emit_unigram(&E, pa, pb);
                pa = prev;
                pb = i;
                pc = i + k2;
                prev = i;
                i += k2;
            }
            if (rc == SQLITE_OK && pa < 0)
                rc = emit_at(&E, c0, i, c0, i);
            else if (rc == SQLITE_OK && (rc = emit_at(&E, pa, pc, pa, pc)) == SQLITE_OK &&
                     (rc = emit_unigram(&E, pa, pb)) == SQLITE_OK)
                rc = emit_unigram(&E, pb, pc);
        } else {
            int from = i;
            i += k;
            while (i < n) {
                uint32_t c2 = p[i];
                int k2 = c2 < 0x80 ? 1 : (int)cx_text_cp_decode(p + i, (size_t)(n - i), &c2);
                if (c2 >= 0x80 && cp_bigram(c2))
                    break;
                i += k2;
            }
            rc = emit_at(&E, from, i, from, i);
        }
    }
    return rc;
}

/* Hands a base token of a document to the sink, when one is set. */
static void ctok_sink(const ctok_run *R, const char *tok, int n) {
    const ctok_reg *reg = R->t->reg;
    if (R->doc && reg->sink)
        reg->sink(reg->sink_ud, tok, n);
}

/* Whether text[0, n) is one ASCII word of letters that is its own only
 * identifier part (cx_text_ident_parts gives it whole: no camelCase, no
 * digits): a letter, then lower-case letters. Most words of a note; the
 * test costs a tenth of the cut. */
static bool plain_word(const char *text, int n) {
    if (n <= 0)
        return false;
    unsigned char c = (unsigned char)text[0];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
        return false;
    for (int i = 1; i < n; i++)
        if ((unsigned char)text[i] < 'a' || (unsigned char)text[i] > 'z')
            return false;
    return true;
}

/* Emits the parts of word w (colocated), skipping one equal to `skip`,
 * then the exact form of a word with diacritics when it differs from the
 * folded one. */
static int ctok_parts(ctok_run *R, const ctok_word *w, const char *skip, int nskip) {
    const char *norm = w->tok;
    bool one = w->fast ? w->one
                       : w->end - w->start == w->len && plain_word(R->text + w->start, w->len);
    /* a plain word's one part is the word, lower-cased: its token */
    if (one && w->len == nskip && (skip == norm || memcmp(norm, skip, (size_t)nskip) == 0))
        return SQLITE_OK;
    cx_text_span parts[TOK_PARTS_MAX];
    size_t np = one ? 1 /* itself */
                      : cx_text_ident_parts(R->text + w->start, (size_t)(w->end - w->start),
                                            parts, TOK_PARTS_MAX);
    /* a folded word (é -> e) may differ in length from its text: one part */
    if (np > 1 && w->end - w->start != w->len)
        np = 1;
    for (size_t i = 0; i < np; i++) {
        const char *p = norm;
        int n = w->len, start = w->start, end = w->end;
        char low[TOK_WHOLE_MAX];
        if (np > 1) {
            n = (int)parts[i].len;
            for (int k = 0; k < n; k++)
                low[k] = (char)tolower((unsigned char)R->text[w->start + (int)parts[i].off + k]);
            p = low;
            start = w->start + (int)parts[i].off;
            end = start + n;
        }
        if (n == nskip && memcmp(p, skip, (size_t)n) == 0)
            continue;
        int rc = R->xtoken(R->uctx, FTS5_TOKEN_COLOCATED, p, n, start, end);
        if (rc != SQLITE_OK)
            return rc;
        ctok_sink(R, p, n);
    }
    /* no exact form to add when the text is ASCII or already its token */
    if (w->fast || is_ascii(R->text + w->start, w->end - w->start) ||
        (w->end - w->start == w->len && memcmp(R->text + w->start, norm, (size_t)w->len) == 0))
        return SQLITE_OK;
    int nx = 0;
    int rc = ctok_form(R, R->t->exact, w->start, w->end, R->form2, &nx);
    if (rc == SQLITE_OK && nx > 0 && (nx != w->len || memcmp(R->form2, norm, (size_t)nx) != 0))
        rc = R->xtoken(R->uctx, FTS5_TOKEN_COLOCATED, R->form2, nx, w->start, w->end);
    return rc;
}

/* The stem term of word w into R->stemmed (the mark, then the stem): its
 * length, 0 when w is no plain word (ASCII letters only, TOK_STEM_MIN to
 * TOK_STEM_MAX of them, one identifier part) or has no stem. */
static int ctok_stem(ctok_run *R, const ctok_word *w) {
    const char *text = R->text + w->start;
    int n = w->end - w->start;
    if (n < TOK_STEM_MIN || n > TOK_STEM_MAX || w->len != n)
        return 0;
    const char *word = w->tok;
    unsigned initial = (unsigned)(unsigned char)word[0] - 'a';
    if (initial < 26u && !((R->stem_initials >> initial) & 1u))
        return 0; /* no stem asked for starts so (Snowball keeps a word's first letter) */
    if (w->fast) {
        if (!w->one)
            return 0; /* digits, or camelCase: an identifier */
    } else if (!plain_word(text, n)) {
        for (int i = 0; i < n; i++)
            if (!isalpha((unsigned char)text[i]))
                return 0;
        cx_text_span parts[2];
        if (cx_text_ident_parts(text, (size_t)n, parts, 2) != 1)
            return 0; /* camelCase: an identifier */
    }
    uint32_t h = 2166136261u; /* FNV-1a */
    for (int i = 0; i < n; i++)
        h = (h ^ (unsigned char)word[i]) * 16777619u;
    stem_slot *slot = &R->t->cache[h % TOK_STEM_CACHE];
    if (slot->nw == n && memcmp(slot->w, word, (size_t)n) == 0) {
        R->stemmed[0] = CX_TEXT_STEM_MARK;
        memcpy(R->stemmed + 1, slot->s, slot->ns);
        return slot->ns + 1;
    }
    const sb_symbol *st = sb.stem(R->t->stemmer, (const sb_symbol *)word, n);
    int ns = st ? sb.length(R->t->stemmer) : 0;
    if (ns <= 0 || ns > TOK_STEM_MAX)
        return 0;
    /* English spells -ic verbs with a k before -ing and -ed (panic,
     * panicking, panicked), and Snowball keeps it (panick, but panic for
     * panics): a stem of six letters or more ending in "ick" drops the k.
     * The same on both sides of a match, so a noun that ends so (limerick
     * -> limeric) still meets its own forms; pick, trick and stick are
     * shorter. */
    if (ns >= 6 && memcmp(st + ns - 3, "ick", 3) == 0)
        ns--;
    R->stemmed[0] = CX_TEXT_STEM_MARK;
    memcpy(R->stemmed + 1, st, (size_t)ns);
    if (n <= TOK_STEM_CACHED && ns <= TOK_STEM_CACHED + 1) { /* short enough to keep */
        slot->nw = (unsigned char)n;
        slot->ns = (unsigned char)ns;
        memcpy(slot->w, word, (size_t)n);
        memcpy(slot->s, st, (size_t)ns);
    }
    return ns + 1;
}

static int ctok_flush(ctok_run *R) {
    int rc = SQLITE_OK, nw = R->nw;
    if (nw == 0)
        return rc;
    R->nw = 0;
    R->alen = 0;
    const ctok_word *w = R->w;
    if (nw == 1) {
        int ns = R->query && !R->stem ? 0 : ctok_stem(R, w);
        if (R->stem && ns > 0) /* a query for the stem: the stem only */
            return R->xtoken(R->uctx, 0, R->stemmed, ns, w->start, w->end);
        rc = R->xtoken(R->uctx, 0, w->tok, w->len, w->start, w->end);
        if (rc == SQLITE_OK)
            ctok_sink(R, w->tok, w->len);
        if (rc == SQLITE_OK && !R->query)
            rc = ctok_parts(R, w, w->tok, w->len);
        if (rc == SQLITE_OK && !R->query && ns > 0)
            rc = R->xtoken(R->uctx, FTS5_TOKEN_COLOCATED, R->stemmed, ns, w->start, w->end);
        return rc;
    }
    /* the whole identifier: the folded words with the joiners between them */
    int n = 0;
    for (int i = 0; i < nw; i++) {
        if (i > 0) {
            int gap = w[i].start - w[i - 1].end;
            memcpy(R->buf + n, R->text + w[i - 1].end, (size_t)gap);
            n += gap;
        }
        memcpy(R->buf + n, w[i].tok, (size_t)w[i].len);
        n += w[i].len;
    }
    rc = R->xtoken(R->uctx, 0, R->buf, n, w[0].start, w[nw - 1].end);
    if (rc == SQLITE_OK)
        ctok_sink(R, R->buf, n);
    for (int i = 0; rc == SQLITE_OK && !R->query && i < nw; i++)
        rc = ctok_parts(R, &w[i], NULL, -1);
    return rc;
}

static int ctok_word_add(ctok_run *R, int tflags, const char *tok, int n, int start, int end,
                         int fast);

/* A word unicode61 found (offsets relative to R->base). */
static int ctok_word_cb(void *ctx, int tflags, const char *tok, int n, int start, int end) {
    ctok_run *R = ctx;
    int rc;
    if (n <= 0)
        return SQLITE_OK;
    start += R->base;
    end += R->base;
    bool any = false, all = false;
    if (!is_ascii(tok, n)) {
        tok_scan(tok, n, cp_emoji_mod, &any, &all);
        if (all) /* a skin tone alone, which unicode61 takes for a word */
            return SQLITE_OK;
    }
    if ((rc = ctok_gap(R, start)) != SQLITE_OK)
        return rc;
    R->scan = end;
    if (any || !is_ascii(R->text + start, end - start)) {
        tok_scan(tok, n, cp_bigram, &any, &all);
        if (any) {
            if ((rc = ctok_flush(R)) != SQLITE_OK)
                return rc;
            return ctok_bigrams(R, tok, n, start, end);
        }
        /* combining marks (NFD), or a query for the exact form: the word
         * again, composed, through the tokenizer it needs */
        bool marks = cx_text_nfc_needed(R->text + start, (size_t)(end - start));
        if (marks || R->exact) {
            int nf = 0;
            rc = ctok_form(R, R->exact ? R->t->exact : R->t->inst, start, end, R->form, &nf);
            if (rc != SQLITE_OK)
                return rc;
            if (nf > 0) {
                tok = R->form;
                n = nf;
            }
        }
        /* Greek accents and breathings, which unicode61 keeps */
        if (!R->exact && greek(tok, n)) {
            n = (int)cx_text_greek_fold_str(tok, (size_t)n, R->greek);
            tok = R->greek;
        }
    }
    return ctok_word_add(R, tflags, tok, n, start, end, -1);
}

/* Adds word tok[0, n) (folded), found at text[start, end), to the pending
 * identifier, flushing that first unless a joiner links them. fast: -1
 * from unicode61, else from the fast path and ctok_word.one of it. */
static int ctok_word_add(ctok_run *R, int tflags, const char *tok, int n, int start, int end,
                         int fast) {
    int rc;
    if (n > TOK_WHOLE_MAX / 2) { /* a huge word: on its own, as unicode61 gives it */
        if ((rc = ctok_flush(R)) != SQLITE_OK)
            return rc;
        return R->xtoken(R->uctx, tflags, tok, n, start, end);
    }
    if (R->nw > 0) {
        const ctok_word *last = &R->w[R->nw - 1];
        int gap = start - last->end;
        bool join = R->nw < TOK_GROUP_MAX && gap > 0 && gap <= 2 &&
                    cx_text_ident_joiner(R->text + last->end, (size_t)gap) &&
                    R->alen + n + 2 * (R->nw + 1) <= TOK_WHOLE_MAX;
        if (!join && (rc = ctok_flush(R)) != SQLITE_OK)
            return rc;
    }
    /* a fast word that needed no folding is its text: no copy (the arena
     * still counts it, for the limit on an identifier's length above) */
    if (fast < 0 || tok != R->text + start) {
        memcpy(R->arena + R->alen, tok, (size_t)n);
        tok = R->arena + R->alen;
    }
    R->w[R->nw++] = (ctok_word){.tok = tok, .len = n, .start = start, .end = end,
                                .fast = fast >= 0, .one = fast > 0};
    R->alen += n;
    return SQLITE_OK;
}

/* An ASCII word text[s, e) of the fast path: folded (A-Z to a-z) when it
 * has upper case, then as a word of unicode61's; one: ctok_word.one of it. */
static int ctok_ascii_word(ctok_run *R, int s, int e, bool upper, bool one) {
    const char *tok = R->text + s;
    int n = e - s, rc;
    char *heap = NULL;
    R->scan = e;
    if (upper) {
        char *low = n <= TOK_WHOLE_MAX ? R->form : (heap = sqlite3_malloc(n));
        if (!low)
            return SQLITE_NOMEM;
        for (int i = 0; i < n; i++) {
            unsigned char c = (unsigned char)tok[i];
            low[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        tok = low;
    }
    rc = ctok_word_add(R, 0, tok, n, s, e, one);
    if (heap)
        sqlite3_free(heap);
    return rc;
}

/* A span text[s, e) between ASCII separators with a byte >= 0x80: through
 * unicode61 and ctok_word_cb as before, then its emoji after its last word. */
static int ctok_span(ctok_run *R, int s, int e) {
    R->scan = s; /* text[R->scan, s) is ASCII: no emoji */
    R->base = s;
    int rc = R->t->u61.xTokenize(R->t->inst, R, R->flags, R->text + s, e - s, ctok_word_cb);
    R->base = 0;
    if (rc == SQLITE_OK)
        rc = ctok_gap(R, e);
    return rc;
}

/* The fast path (see above): the words of text[0, n), span by span. */
static int ctok_fast(ctok_run *R, int n) {
    const unsigned char *p = (const unsigned char *)R->text;
    const unsigned char *cls = R->t->cls;
    int i = 0;
    for (;;) {
        while (i < n && cls[p[i]] == CLS_SEP)
            i++;
        if (i >= n)
            return SQLITE_OK;
        int s = i;
        unsigned first = cls[p[i++]], rest = 0, c;
        while (i < n && (c = cls[p[i]]) != CLS_SEP) {
            rest |= c;
            i++;
        }
        unsigned any = first | rest;
        /* one part of letters: a letter, then a-z only (plain_word()), or
         * A-Z only */
        bool one = !(first & (CLS_OTHER | CLS_HIGH)) &&
                   (!(rest & ~(unsigned)CLS_LOWER) ||
                    (first == CLS_UPPER && !(rest & ~(unsigned)CLS_UPPER)));
        int rc = any & CLS_HIGH ? ctok_span(R, s, i)
                                : ctok_ascii_word(R, s, i, any & CLS_UPPER, one);
        if (rc != SQLITE_OK)
            return rc;
    }
}

static int ctok_run_text(Fts5Tokenizer *p, void *uctx, int flags, const char *text, int ntext,
                         uint32_t stem_initials, bool sink,
                         int (*xtoken)(void *, int, const char *, int, int, int)) {
    ctok *t = (ctok *)p;
    /* on the stack: about 2 KB, and a malloc a call less */
    ctok_run run, *R = &run;
    R->t = t;
    R->text = text;
    R->base = 0;
    R->flags = flags;
    R->scan = 0;
    R->query = (flags & FTS5_TOKENIZE_QUERY) != 0;
    R->doc = sink && (flags & FTS5_TOKENIZE_DOCUMENT) != 0 && !R->query;
    R->exact = R->query && ntext > 0 && text[0] == CX_TEXT_EXACT_MARK;
    R->stem = R->query && ntext > 0 && text[0] == CX_TEXT_STEM_MARK;
    R->stem_initials = stem_initials;
    R->uctx = uctx;
    R->xtoken = xtoken;
    R->nw = 0;
    R->alen = 0;
    int rc;
    if (t->fast && !atomic_load_explicit(&force_slow, memory_order_relaxed))
        rc = ctok_fast(R, ntext);
    else
        rc = t->u61.xTokenize(t->inst, R, flags, text, ntext, ctok_word_cb);
    if (rc == SQLITE_OK)
        rc = ctok_gap(R, ntext);
    if (rc == SQLITE_OK)
        rc = ctok_flush(R);
    return rc;
}

static int ctok_tokenize(Fts5Tokenizer *p, void *uctx, int flags, const char *text, int ntext,
                         int (*xtoken)(void *, int, const char *, int, int, int)) {
    return ctok_run_text(p, uctx, flags, text, ntext, UINT32_MAX, true, xtoken);
}

int cx_text_tokenize_snippet(Fts5Tokenizer *tok, void *ctx, const char *text, int n,
                             uint32_t stem_initials,
                             int (*xtoken)(void *, int, const char *, int, int, int)) {
    return ctok_run_text(tok, ctx, FTS5_TOKENIZE_DOCUMENT, text, n, stem_initials, false,
                        xtoken);
}

/* The fts5_api of a connection (NULL without FTS5). */
fts5_api *cx_text_fts5_api(sqlite3 *db) {
    fts5_api *api = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_pointer(st, 1, (void *)&api, "fts5_api_ptr", NULL);
        sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return api;
}

int cx_text_tokenizer_register(sqlite3 *db) {
    fts5_api *api = cx_text_fts5_api(db);
    if (!api || cx_text_stemmer_load() != 0)
        return SQLITE_ERROR;
    ctok_reg *reg = sqlite3_malloc(sizeof *reg);
    if (!reg)
        return SQLITE_NOMEM;
    *reg = (ctok_reg){.api = api};
    fts5_tokenizer tk = {ctok_create, ctok_delete, ctok_tokenize};
    /* FTS5 frees reg (sqlite3_free) when the connection closes; a failed
     * registration leaves it to us */
    int rc = api->xCreateTokenizer(api, CX_TEXT_TOKENIZER, reg, &tk, sqlite3_free);
    if (rc != SQLITE_OK)
        sqlite3_free(reg);
    return rc;
}

int cx_text_tokenizer_sink(sqlite3 *db, cx_text_term_fn fn, void *ud) {
    fts5_api *api = cx_text_fts5_api(db);
    void *p = NULL;
    fts5_tokenizer tk;
    if (!api || api->xFindTokenizer(api, CX_TEXT_TOKENIZER, &p, &tk) != SQLITE_OK || !p ||
        tk.xCreate != ctok_create)
        return SQLITE_ERROR;
    ctok_reg *reg = p;
    reg->sink = fn;
    reg->sink_ud = fn ? ud : NULL;
    return SQLITE_OK;
}
