/* SPDX-License-Identifier: Apache-2.0 */
/* The built-in embedder: signed feature hashing of words and character
 * n-grams into a fixed dimension, no model files.
 *
 * A text is read as identifiers: runs of letters and digits, joined by
 * `_ . / -` when a letter or digit follows (`parse_config`, `src/x.c`).
 * Each identifier splits into words at those joiners and at camelCase
 * boundaries (`parseConfigFile`, `HTTPServer` → http server). Features:
 *
 *   - each word, lightly stemmed (parser, parsing, parsed → "pars"): 1.0;
 *     common English function words only 0.2 and nothing else;
 *   - each pair of neighbouring words, joined ("parse config" →
 *     "parseconfig"): 0.25;
 *   - each identifier of two or more words, joined the same way: 1.0, so
 *     `parseConfig`, `parse_config`, "parse config" and "parseconfig" share
 *     a feature;
 *   - character 3-grams of each word with boundary markers (`<pa`, `ars`,
 *     `er>`): 0.7, which keep typos and other forms of a word near it; the
 *     400 grams most frequent in English prose (`<th`, `ion`, `ed>`) less,
 *     by a fixed table (common_grams below);
 *   - when the stem is shorter than the word, the 3-grams of the stem too:
 *     0.3, so `allocators` has the grams of `allocator` ending in `r>` and
 *     meets the singular on all of them;
 *   - the sorted letters of each word of five letters or more: 0.3, so a
 *     swap of two letters (recieve/receive) keeps one whole-word feature;
 *   - for a word in a small table of developer abbreviations and
 *     near-synonyms (cfg → config, db → database, segfault → crash), the
 *     stem of the word it stands for: 0.8, and that word's 3-grams: 0.56
 *     (with grams this heavy, the stem alone would leave `login` far from
 *     `authentication`).
 *
 * A word with a character of three or more UTF-8 bytes (Chinese, Japanese,
 * Thai: scripts written without spaces, so a whole clause is one word here)
 * has none of those features but one for each pair of neighbouring
 * characters over its whole length: 1.5. A word of a query is then found
 * wherever it stands in a note's run, as the keyword index's bigrams do.
 * A word with two-byte characters (Cyrillic, Greek, Arabic, accented Latin)
 * has the usual features and those pairs too: 3-grams of bytes cut its
 * characters in halves.
 *
 * Why (v3, issue 12 item 5): a vector of a few hundred dimensions holds a
 * note's hundreds of features only with collisions, and a query's cosine
 * to an unrelated note has a spread of about 1/sqrt(dim); among 100,000
 * notes the best of that noise outranks a note that shares only word forms
 * or misspelt words with the query. v1 had 3- and 4-grams at 0.35/0.45,
 * word pairs 0.5, sorted letters 0.5, every common gram at full weight,
 * long runs of other scripts cut at MAX_WORD bytes, and 256 dimensions.
 * Fewer, less redundant features put more of a note's weight on what a
 * query can share with it, and 320 dimensions (the most that keeps 100k
 * items under 64 MB resident) shrink the noise by a tenth. Measured on
 * bench/relevance/scale.py (semantic recall@5 at 100k 0.414 → 0.61) and
 * fixtures/relevance (unchanged); see bench/relevance/README.md.
 *
 * Each feature is hashed (FNV-1a with a final mix, byte order fixed) to a
 * dimension and a sign; the weighted sum is L2-normalised. Case folding and
 * character classes are ASCII only and never consult the locale, and bytes
 * ≥ 0x80 count as letters, so the vectors are the same on every machine.
 * Nothing is allocated per text or per feature. Changing any of this
 * changes the vectors and needs a new model id ("builtin-ngram-v4-…"); a
 * store that opens with a new id re-embeds its items (src/store/vec.c). */
#include "embed/embed-impl.h"

#include "util/error.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WORD 48 /* bytes of a word that features look at */

#define W_TERM 1.0f
#define W_STOP 0.2f
#define W_BIGRAM 0.25f
#define W_IDENT 1.0f
#define W_GRAM3 0.7f
#define W_STEM_GRAM3 0.3f
#define W_SORTED 0.3f
#define W_ALIAS 0.8f
#define W_CHAR_PAIR 1.5f

/* Feature namespaces: the first byte hashed. Words, word pairs and whole
 * identifiers share one on purpose (see above). */
#define NS_TERM 't'
#define NS_GRAM 'g'
#define NS_SORTED 's'
#define NS_PAIR 'u'

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

static inline uint64_t fnv_byte(uint64_t h, unsigned char c) {
    return (h ^ c) * FNV_PRIME;
}

static inline uint64_t fnv_bytes(uint64_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        h = fnv_byte(h, (unsigned char)s[i]);
    return h;
}

static inline uint64_t ns_start(char ns) {
    return fnv_byte(FNV_OFFSET, (unsigned char)ns);
}

/* FNV's low bits are weak for short keys; a final multiply-xorshift mix
 * spreads every input bit over the index and the sign. */
static inline uint64_t mix(uint64_t h) {
    h ^= h >> 31;
    h *= 0x7fb5d329728ea185ull;
    h ^= h >> 27;
    h *= 0x81dadef4bc2dd44dull;
    h ^= h >> 33;
    return h;
}

typedef struct builtin {
    cx_embedder base;
} builtin;

/* The vector being built for one text, and the previous content word for
 * word pairs. */
typedef struct acc {
    float *v;
    uint32_t dim;
    char prev[MAX_WORD];
    size_t prev_len;
} acc;

static inline void add(acc *a, uint64_t h, float w) {
    h = mix(h);
    /* high bits → index (multiply-shift handles any dim), low bit → sign */
    uint32_t idx = (uint32_t)(((h >> 32) * (uint64_t)a->dim) >> 32);
    a->v[idx] += (h & 1) ? -w : w;
}

static inline int is_upper(unsigned char c) {
    return c >= 'A' && c <= 'Z';
}
static inline int is_lower(unsigned char c) {
    return (c >= 'a' && c <= 'z') || c >= 0x80;
}
static inline int is_digit(unsigned char c) {
    return c >= '0' && c <= '9';
}
static inline int is_word(unsigned char c) {
    return is_upper(c) || is_lower(c) || is_digit(c);
}
static inline int is_joiner(unsigned char c) {
    return c == '_' || c == '.' || c == '/' || c == '-';
}
static inline char to_lower(unsigned char c) {
    return (char)(is_upper(c) ? c + ('a' - 'A') : c);
}

/* Sorted by (bytes, then length) for the binary search in is_stop(). */
static const char *const stopwords[] = {
    "a",     "about", "after", "all",   "also", "an",    "and",   "any",  "are",   "as",
    "at",    "be",    "been",  "but",   "by",   "can",   "could", "did",  "do",    "does",
    "for",   "from",  "had",   "has",   "have", "he",    "her",   "his",  "how",   "i",
    "if",    "in",    "into",  "is",    "it",   "its",   "just",  "me",   "my",    "of",
    "on",    "or",    "our",   "she",   "so",   "some",  "than",  "that", "the",   "their",
    "them",  "then",  "there", "these", "they", "this",  "those", "to",   "too",   "up",
    "us",    "was",   "we",    "were",  "what", "when",  "where", "which", "while", "who",
    "why",   "will",  "with",  "would", "you",  "your",
};

static int word_cmp(const char *w, size_t n, const char *s) {
    size_t m = strlen(s);
    int c = memcmp(w, s, n < m ? n : m);
    if (c)
        return c;
    return n < m ? -1 : n > m ? 1 : 0;
}

static int is_stop(const char *w, size_t n) {
    if (n > 5)
        return 0;
    size_t lo = 0, hi = sizeof stopwords / sizeof *stopwords;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = word_cmp(w, n, stopwords[mid]);
        if (c == 0)
            return 1;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return 0;
}

static int ends(const char *w, size_t n, const char *suf, size_t keep) {
    size_t m = strlen(suf);
    return n >= m + keep && memcmp(w + n - m, suf, m) == 0;
}

static int is_vowel(char c) {
    return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u';
}

/* A light suffix stripper, in place: not English morphology, only enough
 * that the usual forms of a word in bug reports (parse, parser, parsing,
 * parsed; crash, crashes; retry, retries) meet on one stem. Returns the
 * stem's length; stems keep at least three bytes. */
static size_t stem(char *w, size_t n) {
    for (int round = 0; round < 3; round++) {
        size_t was = n;
        int vowel_suffix = 0;
        if (ends(w, n, "ies", 2) || ends(w, n, "ied", 2)) {
            n -= 2;
            w[n - 1] = 'y';
        } else if (ends(w, n, "ings", 3)) {
            n -= 4, vowel_suffix = 1;
        } else if (ends(w, n, "ing", 3)) {
            n -= 3, vowel_suffix = 1;
        } else if (ends(w, n, "ers", 3)) {
            n -= 3, vowel_suffix = 1;
        } else if (ends(w, n, "er", 3)) {
            n -= 2, vowel_suffix = 1;
        } else if (ends(w, n, "ed", 3)) {
            n -= 2, vowel_suffix = 1;
        } else if (ends(w, n, "es", 3) &&
                   (w[n - 3] == 's' || w[n - 3] == 'x' || w[n - 3] == 'z' ||
                    ((w[n - 3] == 'h') && (w[n - 4] == 'c' || w[n - 4] == 's')))) {
            n -= 2;
        } else if (ends(w, n, "s", 3) && w[n - 2] != 's' && w[n - 2] != 'u' &&
                   w[n - 2] != 'i') {
            n -= 1;
        }
        if (vowel_suffix) {
            /* running → run; authenticating → authenticate */
            if (n >= 4 && w[n - 1] == w[n - 2] && !is_vowel(w[n - 1]) && w[n - 1] != 'l' &&
                w[n - 1] != 's' && w[n - 1] != 'z')
                n--;
            else if (ends(w, n, "at", 1) || ends(w, n, "iz", 1) || ends(w, n, "bl", 1))
                w[n++] = 'e';
        }
        if (n == was)
            break;
    }
    if (ends(w, n, "ation", 3))
        n -= 5;
    else if (ends(w, n, "ate", 3))
        n -= 3;
    else if (ends(w, n, "ion", 3))
        n -= 3;
    else if (ends(w, n, "ment", 4))
        n -= 4;
    else if (ends(w, n, "e", 3))
        n -= 1;
    return n;
}

/* Abbreviations and near-synonyms that developers use for one another,
 * mapped to one word. Keys and values are plain words; both are stemmed
 * once, so every form of a key (segfaults, configured) finds its entry.
 * Keep this general: it is part of the model (changes need a new id). */
static const char *const alias_pairs[][2] = {
    {"abort", "crash"},          {"addr", "address"},       {"alloc", "allocate"},
    {"arg", "argument"},         {"args", "argument"},      {"auth", "authentication"},
    {"authn", "authentication"}, {"authz", "authorization"}, {"buf", "buffer"},
    {"cb", "callback"},          {"cfg", "config"},         {"cnt", "count"},
    {"conf", "config"},          {"configuration", "config"}, {"conn", "connection"},
    {"coredump", "crash"},       {"ctx", "context"},        {"curr", "current"},
    {"db", "database"},          {"del", "delete"},         {"dep", "dependency"},
    {"deps", "dependency"},      {"dest", "destination"},   {"dir", "directory"},
    {"doc", "documentation"},    {"docs", "documentation"}, {"dst", "destination"},
    {"env", "environment"},      {"err", "error"},          {"exception", "error"},
    {"failure", "fail"},         {"fn", "function"},        {"folder", "directory"},
    {"freeze", "hang"},          {"frozen", "hang"},        {"func", "function"},
    {"idx", "index"},            {"impl", "implementation"}, {"init", "initialize"},
    {"k8s", "kubernetes"},       {"len", "length"},         {"lib", "library"},
    {"login", "authentication"}, {"mem", "memory"},         {"msg", "message"},
    {"num", "number"},           {"obj", "object"},         {"panic", "crash"},
    {"param", "parameter"},      {"params", "parameter"},   {"perf", "performance"},
    {"pkg", "package"},          {"prev", "previous"},      {"ptr", "pointer"},
    {"py", "python"},            {"remove", "delete"},      {"repo", "repository"},
    {"req", "request"},          {"resp", "response"},      {"rm", "delete"},
    {"segfault", "crash"},       {"segv", "crash"},         {"sigabrt", "crash"},
    {"sigsegv", "crash"},        {"spec", "specification"}, {"src", "source"},
    {"str", "string"},           {"stuck", "hang"},         {"tmp", "temporary"},
    {"unresponsive", "hang"},    {"val", "value"},          {"var", "variable"},
};
#define N_ALIASES (sizeof alias_pairs / sizeof *alias_pairs)

/* The table with stemmed keys, sorted for binary search, and the hash of
 * each stemmed value; built once. */
typedef struct alias {
    char key[24];
    size_t key_len;
    uint64_t value_hash;
    const char *value; /* the word as written in the table */
} alias;
static alias aliases[N_ALIASES];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static int alias_cmp(const void *a, const void *b) {
    const alias *x = a, *y = b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    return c ? c : (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

static void aliases_init(void) {
    for (size_t i = 0; i < N_ALIASES; i++) {
        char v[MAX_WORD];
        size_t kn = strlen(alias_pairs[i][0]), vn = strlen(alias_pairs[i][1]);
        memcpy(aliases[i].key, alias_pairs[i][0], kn);
        aliases[i].key_len = stem(aliases[i].key, kn);
        memcpy(v, alias_pairs[i][1], vn);
        vn = stem(v, vn);
        aliases[i].value_hash = fnv_bytes(ns_start(NS_TERM), v, vn);
        aliases[i].value = alias_pairs[i][1];
    }
    qsort(aliases, N_ALIASES, sizeof *aliases, alias_cmp);
}

/* The entry of the word a stem stands for, or NULL. */
static const alias *alias_of(const char *s, size_t n) {
    if (n >= sizeof aliases[0].key)
        return NULL;
    alias k;
    memcpy(k.key, s, n);
    k.key_len = n;
    return bsearch(&k, aliases, N_ALIASES, sizeof *aliases, alias_cmp);
}

/* The 3-grams most frequent in English technical prose, and their weight
 * in percent: ln(1/p) / 6.2, at least 30, for a gram found in a fraction p
 * of the words of 6,000 manual pages (sections 1, 3 and 7 of a Debian
 * system, 3.1 million words); a gram that is not listed weighs 100. They
 * are in every English text and said little about any: with full weight
 * they lifted the similarity of unrelated notes (mean 0.038 against 0.028
 * with the table) and let near misses that share only common grams pass
 * the semantic list's floor. Part of the model (changes need a new id). */
static const struct {
    char g[4];
    unsigned char pct;
} common_grams[] = {
    {"<ac", 76}, {"<ad", 90}, {"<al", 68}, {"<an", 64}, {"<ap", 80}, {"<ar", 65}, {"<as", 82},
    {"<at", 80}, {"<av", 89}, {"<ba", 88}, {"<be", 64}, {"<bi", 89}, {"<bu", 87}, {"<by", 83},
    {"<ca", 75}, {"<ch", 85}, {"<cl", 77}, {"<co", 53}, {"<cr", 89}, {"<da", 86}, {"<de", 63},
    {"<di", 81}, {"<do", 86}, {"<en", 75}, {"<ex", 75}, {"<fi", 68}, {"<fl", 74}, {"<fo", 62},
    {"<fu", 84}, {"<gc", 71}, {"<gr", 84}, {"<he", 84}, {"<ht", 90}, {"<id", 86}, {"<if", 79},
    {"<im", 90}, {"<in", 56}, {"<is", 67}, {"<it", 86}, {"<ke", 85}, {"<li", 67}, {"<lo", 72},
    {"<ma", 73}, {"<me", 85}, {"<mi", 91}, {"<mo", 86}, {"<mu", 88}, {"<na", 78}, {"<ne", 86},
    {"<no", 72}, {"<of", 65}, {"<on", 70}, {"<op", 82}, {"<or", 75}, {"<ot", 90}, {"<pa", 75},
    {"<po", 76}, {"<pr", 59}, {"<qu", 92}, {"<re", 58}, {"<ru", 83}, {"<se", 61}, {"<si", 88},
    {"<so", 83}, {"<sp", 72}, {"<st", 77}, {"<su", 86}, {"<ta", 89}, {"<te", 91}, {"<th", 39},
    {"<to", 56}, {"<tr", 84}, {"<un", 89}, {"<up", 91}, {"<us", 70}, {"<va", 79}, {"<ve", 91},
    {"<wh", 83}, {"<wi", 66}, {"abl", 74}, {"acc", 79}, {"ace", 91}, {"ack", 89}, {"act", 87},
    {"ad>", 92}, {"ag>", 87}, {"age", 77}, {"ags", 87}, {"ail", 77}, {"ain", 85}, {"al>", 76},
    {"all", 73}, {"alp", 87}, {"alu", 86}, {"ame", 74}, {"an>", 71}, {"anc", 83}, {"and", 61},
    {"api", 89}, {"app", 88}, {"ara", 92}, {"are", 74}, {"arg", 75}, {"as>", 85}, {"ase", 92},
    {"at>", 73}, {"ata", 86}, {"ate", 67}, {"ati", 62}, {"att", 78}, {"aul", 86}, {"ava", 89},
    {"ay>", 91}, {"be>", 69}, {"bet", 88}, {"ble", 73}, {"but", 83}, {"by>", 85}, {"cal", 90},
    {"can", 83}, {"cat", 74}, {"cce", 88}, {"cco", 90}, {"ce>", 63}, {"ces", 76}, {"ch>", 84},
    {"cha", 88}, {"cif", 74}, {"clo", 66}, {"clu", 92}, {"com", 63}, {"con", 69}, {"cou", 87},
    {"cre", 86}, {"cri", 89}, {"ct>", 72}, {"cti", 82}, {"cur", 90}, {"cy>", 90}, {"dat", 78},
    {"de>", 74}, {"def", 83}, {"der", 87}, {"des", 81}, {"din", 90}, {"dis", 89}, {"ds>", 87},
    {"ead", 91}, {"eat", 88}, {"eci", 73}, {"ect", 67}, {"ed>", 53}, {"efa", 87}, {"egi", 87},
    {"ele", 91}, {"elp", 91}, {"en>", 71}, {"ena", 91}, {"end", 87}, {"ent", 59}, {"er>", 56},
    {"era", 86}, {"ers", 77}, {"ert", 90}, {"erv", 79}, {"es>", 58}, {"esc", 89}, {"ese", 84},
    {"eso", 85}, {"ess", 74}, {"est", 85}, {"et>", 68}, {"eta", 79}, {"ete", 87}, {"exp", 92},
    {"ey>", 89}, {"fau", 87}, {"fie", 71}, {"fig", 87}, {"fil", 72}, {"fla", 75}, {"for", 62},
    {"ful", 90}, {"gcl", 71}, {"ge>", 78}, {"gio", 89}, {"gro", 86}, {"gs>", 81}, {"gum", 79},
    {"ha>", 86}, {"han", 92}, {"hat", 83}, {"he>", 45}, {"hel", 90}, {"hen", 89}, {"her", 81},
    {"hes", 87}, {"his", 68}, {"htt", 91}, {"ibu", 88}, {"ica", 89}, {"ice", 79}, {"icy", 91},
    {"id>", 87}, {"ide", 74}, {"ied", 75}, {"ies", 91}, {"if>", 79}, {"ifi", 72}, {"ila", 89},
    {"ile", 75}, {"ill", 86}, {"imi", 92}, {"in>", 66}, {"ind", 90}, {"ine", 73}, {"ing", 60},
    {"ins", 81}, {"int", 76}, {"ion", 51}, {"is>", 56}, {"ist", 76}, {"it>", 77}, {"ith", 72},
    {"iti", 91}, {"ity", 89}, {"ive", 86}, {"jec", 75}, {"ken", 92}, {"key", 85}, {"lab", 84},
    {"lag", 79}, {"lat", 86}, {"ld>", 89}, {"le>", 61}, {"les", 89}, {"let", 91}, {"lic", 81},
    {"lin", 77}, {"lis", 80}, {"ll>", 74}, {"llo", 89}, {"lly", 89}, {"loc", 77}, {"lou", 66},
    {"low", 88}, {"lp>", 92}, {"lph", 87}, {"ls>", 82}, {"lt>", 87}, {"lue", 87}, {"ly>", 72},
    {"man", 69}, {"mat", 84}, {"me>", 72}, {"men", 71}, {"mit", 88}, {"mma", 72}, {"mpl", 88},
    {"nal", 92}, {"nam", 76}, {"nce", 80}, {"nd>", 61}, {"ndi", 90}, {"ne>", 71}, {"nfi", 86},
    {"ng>", 61}, {"not", 79}, {"ns>", 75}, {"nst", 82}, {"nt>", 63}, {"nta", 89}, {"nte", 83},
    {"nti", 89}, {"nts", 81}, {"oca", 79}, {"ode", 90}, {"of>", 65}, {"oje", 77}, {"oli", 88},
    {"om>", 83}, {"omm", 71}, {"omp", 83}, {"on>", 51}, {"one", 84}, {"onf", 86}, {"ons", 76},
    {"ont", 85}, {"ope", 81}, {"or>", 61}, {"ore", 83}, {"ork", 88}, {"orm", 83}, {"ort", 84},
    {"osi", 91}, {"ot>", 83}, {"oth", 88}, {"oud", 66}, {"oun", 83}, {"oup", 86}, {"our", 78},
    {"out", 79}, {"ove", 91}, {"ovi", 84}, {"par", 91}, {"pec", 73}, {"per", 75}, {"pha", 87},
    {"pla", 91}, {"ple", 88}, {"pol", 88}, {"por", 91}, {"pre", 84}, {"pro", 62}, {"ps>", 90},
    {"pti", 86}, {"put", 80}, {"rac", 88}, {"rat", 79}, {"rce", 79}, {"re>", 65}, {"rea", 81},
    {"rec", 90}, {"red", 91}, {"reg", 85}, {"ren", 89}, {"res", 68}, {"ret", 91}, {"rgu", 79},
    {"rib", 81}, {"rin", 87}, {"rma", 88}, {"roj", 77}, {"rou", 81}, {"rov", 84}, {"rs>", 83},
    {"rt>", 86}, {"run", 85}, {"rvi", 83}, {"ry>", 83}, {"scr", 88}, {"se>", 71}, {"sed", 87},
    {"ser", 73}, {"set", 74}, {"sio", 82}, {"sou", 80}, {"spe", 72}, {"ss>", 81}, {"ssi", 89},
    {"st>", 67}, {"sta", 78}, {"ste", 83}, {"sto", 88}, {"str", 87}, {"ta>", 82}, {"tai", 84},
    {"tan", 85}, {"te>", 62}, {"ted", 78}, {"ten", 87}, {"ter", 66}, {"tes", 84}, {"th>", 71},
    {"tha", 82}, {"the", 42}, {"thi", 67}, {"tin", 85}, {"tio", 56}, {"to>", 58}, {"tor", 81},
    {"tra", 87}, {"tri", 79}, {"ts>", 68}, {"tte", 88}, {"ttp", 91}, {"ttr", 88}, {"tur", 89},
    {"ty>", 82}, {"ud>", 67}, {"ue>", 86}, {"ull", 89}, {"ult", 82}, {"ume", 75}, {"un>", 88},
    {"unt", 85}, {"up>", 82}, {"urc", 80}, {"use", 72}, {"ust", 81}, {"ut>", 77}, {"ute", 77},
    {"vai", 90}, {"val", 82}, {"ve>", 86}, {"ver", 78}, {"vic", 83}, {"vid", 84}, {"wit", 73},
    {"wor", 86},
};
#define N_COMMON_GRAMS (sizeof common_grams / sizeof *common_grams)

/* Index of a gram of `a`-`z`, `<` and `>` in gram_pct, or -1. */
static int gram_code(unsigned char c) {
    return c >= 'a' && c <= 'z' ? c - 'a' : c == '<' ? 26 : c == '>' ? 27 : -1;
}
static int gram_index(const char *g) {
    int a = gram_code((unsigned char)g[0]), b = gram_code((unsigned char)g[1]),
        c = gram_code((unsigned char)g[2]);
    return a < 0 || b < 0 || c < 0 ? -1 : (a * 28 + b) * 28 + c;
}

/* The weight in percent of every gram of the 28 bytes above, from
 * common_grams; 0 means 100. Filled once, with the aliases. */
static unsigned char gram_pct[28 * 28 * 28];

static void grams_init(void) {
    for (size_t i = 0; i < N_COMMON_GRAMS; i++) {
        int k = gram_index(common_grams[i].g);
        if (k >= 0)
            gram_pct[k] = common_grams[i].pct;
    }
}

static float gram_weight(const char *g, float weight) {
    int k = gram_index(g);
    return k >= 0 && gram_pct[k] ? weight * (float)gram_pct[k] * 0.01f : weight;
}

/* Character 3-grams of "<word>", each of weight w. */
static void add_grams(acc *a, const char *w, size_t n, float weight) {
    char b[MAX_WORD + 2];
    b[0] = '<';
    memcpy(b + 1, w, n);
    b[n + 1] = '>';
    size_t len = n + 2;
    const uint64_t h0 = ns_start(NS_GRAM);
    for (size_t i = 0; i + 3 <= len; i++)
        add(a, fnv_byte(fnv_byte(fnv_byte(h0, (unsigned char)b[i]), (unsigned char)b[i + 1]),
                        (unsigned char)b[i + 2]),
            gram_weight(b + i, weight));
}

static void add_sorted(acc *a, const char *w, size_t n) {
    unsigned char s[MAX_WORD];
    memcpy(s, w, n);
    for (size_t i = 1; i < n; i++) { /* insertion sort: words are short */
        unsigned char c = s[i];
        size_t j = i;
        for (; j > 0 && s[j - 1] > c; j--)
            s[j] = s[j - 1];
        s[j] = c;
    }
    add(a, fnv_bytes(ns_start(NS_SORTED), (const char *)s, n), W_SORTED);
}

/* One lowercased word (n ≤ MAX_WORD). */
static void add_word(acc *a, const char *w, size_t n) {
    const uint64_t h0 = ns_start(NS_TERM);
    if (is_stop(w, n)) {
        add(a, fnv_bytes(h0, w, n), W_STOP);
        return;
    }
    int digits = 1;
    for (size_t i = 0; i < n; i++)
        if (!is_digit((unsigned char)w[i]))
            digits = 0;

    char s[MAX_WORD];
    memcpy(s, w, n);
    size_t sn = digits ? n : stem(s, n);
    add(a, fnv_bytes(h0, s, sn), W_TERM);
    const alias *al = alias_of(s, sn);
    if (al) {
        add(a, al->value_hash, W_ALIAS);
        add_grams(a, al->value, strlen(al->value), W_ALIAS * W_GRAM3);
    }

    if (a->prev_len)
        add(a, fnv_bytes(fnv_bytes(h0, a->prev, a->prev_len), w, n), W_BIGRAM);
    memcpy(a->prev, w, n);
    a->prev_len = n;

    if (digits)
        return;
    add_grams(a, w, n, W_GRAM3);
    if (sn != n)
        add_grams(a, s, sn, W_STEM_GRAM3);
    if (n >= 5)
        add_sorted(a, w, n);
}

/* Each pair of neighbouring characters of a word written in another
 * script (a run of Chinese, Japanese or Thai has no spaces and is one long
 * word here, of which the other features would see only MAX_WORD bytes):
 * the pairs of the whole run, so that two words of a note are found in it
 * wherever they stand. Characters are UTF-8 sequences; pairs of two ASCII
 * characters are left to the other features. */
static void add_char_pairs(acc *a, const char *s, size_t n) {
    const uint64_t h0 = ns_start(NS_PAIR);
    size_t prev = 0, prev_len = 0;
    for (size_t i = 0; i < n;) {
        size_t len = 1;
        while (i + len < n && ((unsigned char)s[i + len] & 0xc0) == 0x80)
            len++;
        if (prev_len && ((unsigned char)s[prev] >= 0x80 || (unsigned char)s[i] >= 0x80))
            add(a, fnv_bytes(fnv_bytes(h0, s + prev, prev_len), s + i, len), W_CHAR_PAIR);
        prev = i;
        prev_len = len;
        i += len;
    }
}

/* s[0..n) starts and ends with a word byte. */
static void add_identifier(acc *a, const char *s, size_t n) {
    char w[MAX_WORD];
    size_t wn = 0, words = 0, ws = 0;
    int wide = 0, two = 0; /* a character of 3+ bytes, of 2+ bytes */
    uint64_t whole = ns_start(NS_TERM);
    for (size_t i = 0; i <= n; i++) {
        unsigned char c = i < n ? (unsigned char)s[i] : 0;
        int split = i == n || is_joiner(c);
        if (!split && i > 0 && is_upper(c)) {
            unsigned char p = (unsigned char)s[i - 1];
            /* fooBar | HTTPServer: a capital after a small letter or a
             * digit, or the last of a run of capitals before a small one */
            if (is_lower(p) || is_digit(p) ||
                (is_upper(p) && i + 1 < n && is_lower((unsigned char)s[i + 1]) &&
                 (unsigned char)s[i + 1] < 0x80))
                split = 1;
        }
        if (split && wn) {
            if (wide) {
                add_char_pairs(a, s + ws, i - ws);
                a->prev_len = 0;
            } else {
                add_word(a, w, wn);
                if (two)
                    add_char_pairs(a, s + ws, i - ws);
            }
            words++;
            wn = 0;
            wide = two = 0;
        }
        if (i == n || is_joiner(c))
            continue;
        char lc = to_lower(c);
        whole = fnv_byte(whole, (unsigned char)lc);
        if (wn == 0)
            ws = i;
        wide |= c >= 0xe0;
        two |= c >= 0xc0;
        if (wn < MAX_WORD)
            w[wn++] = lc;
    }
    if (words >= 2)
        add(a, whole, W_IDENT);
}

static void tables_init(void) {
    aliases_init();
    grams_init();
}

static void embed_one(const char *text, float *v, int dim) {
    pthread_once(&tables_once, tables_init);
    acc a = {.v = v, .dim = (uint32_t)dim, .prev_len = 0};
    memset(v, 0, (size_t)dim * sizeof *v);
    const unsigned char *p = (const unsigned char *)text;
    size_t i = 0;
    while (p[i]) {
        if (!is_word(p[i])) {
            i++;
            continue;
        }
        size_t start = i;
        while (p[i] && (is_word(p[i]) || (is_joiner(p[i]) && is_word(p[i + 1]))))
            i++;
        add_identifier(&a, (const char *)p + start, i - start);
    }
    cx_embed_normalize(v, dim);
}

static int builtin_batch(cx_embedder *e, const char *const *texts, size_t n, float *out) {
    for (size_t i = 0; i < n; i++)
        embed_one(texts[i], out + i * (size_t)e->dim, e->dim);
    return 0;
}

static void builtin_free(cx_embedder *e) {
    free(e);
}

static const cx_embed_ops builtin_ops = {
    .batch = builtin_batch,
    .probe = NULL,
    .free = builtin_free,
};

int cx_embed_builtin_new(cx_embedder **out, int dim) {
    if (!out)
        return cx_error_set(CX_EINVAL, "embed: out must not be NULL");
    if (dim == 0)
        dim = CX_EMBED_BUILTIN_DIM;
    if (dim < 1 || dim > CX_EMBED_MAX_DIM)
        return cx_error_set(CX_EINVAL, "embed: builtin dimension %d is out of range (1..%d)",
                            dim, CX_EMBED_MAX_DIM);
    builtin *b = calloc(1, sizeof *b);
    if (!b)
        return cx_error_set(CX_ENOMEM, "embed: out of memory");
    b->base.ops = &builtin_ops;
    b->base.dim = dim;
    b->base.local = true;
    snprintf(b->base.model_id, sizeof b->base.model_id, "builtin-ngram-v3-%d", dim);
    *out = &b->base;
    return 0;
}
