/* SPDX-License-Identifier: Apache-2.0 */
/* A validating TOML 1.0 reader (see toml.h).
 *
 * One pass over the document: a recursive-descent parser for the grammar,
 * and a tree of defined keys (one node per table, array of tables or value,
 * found through one hash table keyed by parent and name) for the rules the
 * grammar cannot express: no key defined twice, no table defined twice, no
 * table extended after it was closed (inline tables, static arrays, tables
 * made by dotted keys in an earlier section). The rules follow the TOML 1.0
 * specification as Python's tomllib reads it. Values are not kept, except
 * the strings of the one table a caller asks about. */
#include "toml.h"

#include "util/buf.h"
#include "util/error.h"
#include "util/utf8.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NESTING 128 /* arrays and inline tables inside each other */

/* ---- strings in util's capped buffer --------------------------------------- */

/* Nonzero (an error of cx_buf_add) when c cannot be appended. */
static int sb_putc(cx_buf *b, char c) {
    return cx_buf_add(b, &c, 1);
}

/* ---- UTF-8 encoding (the checks are util's) --------------------------------- */

static int utf8_put(cx_buf *b, uint32_t v) {
    char u[4];
    size_t k;
    if (v < 0x80) {
        u[0] = (char)v;
        k = 1;
    } else if (v < 0x800) {
        u[0] = (char)(0xC0 | (v >> 6));
        u[1] = (char)(0x80 | (v & 0x3F));
        k = 2;
    } else if (v < 0x10000) {
        u[0] = (char)(0xE0 | (v >> 12));
        u[1] = (char)(0x80 | ((v >> 6) & 0x3F));
        u[2] = (char)(0x80 | (v & 0x3F));
        k = 3;
    } else {
        u[0] = (char)(0xF0 | (v >> 18));
        u[1] = (char)(0x80 | ((v >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((v >> 6) & 0x3F));
        u[3] = (char)(0x80 | (v & 0x3F));
        k = 4;
    }
    return cx_buf_add(b, u, k);
}

/* ---- the tree of defined keys ---------------------------------------------- */

enum { N_TABLE, N_AOT, N_VALUE };

enum {
    F_HEADER = 1,  /* defined by its own [header] (or an array-of-tables element) */
    F_DOTTED = 2,  /* created by dotted keys in a section that has ended */
    F_PENDING = 4, /* created or extended by dotted keys in the current section */
    F_INLINE = 8,  /* a value that is an inline table */
    F_ARRAY = 16,  /* a value that is an array */
};

typedef struct node node;
struct node {
    node *parent; /* NULL for roots (the document, array elements, inline tables) */
    char *key;
    size_t klen;
    int kind;
    unsigned flags;
    size_t pos;  /* where it was first defined, for messages */
    node *elem;  /* N_AOT: its last element, the table that [a.b] after [[a]] extends */
};

/* ---- values a caller asked about ------------------------------------------ */

enum { V_STRING, V_ARRAY, V_INLINE, V_OTHER };

typedef struct capture {
    int kind;
    char *str;     /* V_STRING */
    char **items;  /* V_ARRAY whose elements are all strings */
    size_t nitems, capitems;
    bool all_strings;
} capture;

static void capture_clear(capture *c) {
    free(c->str);
    for (size_t k = 0; k < c->nitems; k++)
        free(c->items[k]);
    free(c->items);
    memset(c, 0, sizeof *c);
}

enum { E_STRING, E_STRINGS, E_OTHER, E_COMPLEX };

typedef struct entry {
    char *key;
    size_t klen;
    int kind;
    size_t start, end; /* the `key = value` line; E_COMPLEX: none */
    char *str;
    char **items;
    size_t nitems;
} entry;

struct cx_toml_table {
    cx_toml_form form;
    char how[160];
    bool has_range;
    size_t start, body, end;
    entry *v;
    size_t n, cap;
};

/* ---- the parser ------------------------------------------------------------ */

typedef struct keypart {
    char *s;
    size_t n;
} keypart;

typedef struct keypath {
    keypart *v;
    size_t n, cap;
} keypath;

enum { T_BEFORE, T_IN, T_SUB, T_AFTER }; /* where the parse is relative to the target section */

typedef struct parser {
    const char *s;
    size_t n, i;
    cx_toml_error *err;
    int failed; /* 0, CX_EINVAL or CX_ENOMEM */
    int depth;
    cx_buf str; /* the last string decoded: capped at the document's length, which no
                 * decoded string passes (every escape is longer than what it means) */
    char desc[32];
    char name[128];

    node **nodes; /* every node, for freeing */
    size_t nnodes, capnodes;
    node **ht; /* open addressing over (parent, key) */
    size_t htcap, htcount;
    node **pending;
    size_t npending, cappending;
    node *root, *cur;

    const char *const *tpath; /* the table asked about, or NULL */
    size_t tdepth;
    int tstate;
    cx_toml_table *tt;
} parser;

static int fail(parser *p, size_t pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(parser *p, size_t pos, const char *fmt, ...) {
    if (p->failed)
        return -1;
    p->failed = CX_EINVAL;
    if (!p->err)
        return -1;
    if (pos > p->n)
        pos = p->n;
    int line = 1;
    size_t bol = 0;
    for (size_t k = 0; k < pos; k++)
        if (p->s[k] == '\n') {
            line++;
            bol = k + 1;
        }
    if (bol == 0 && p->n >= 3 && memcmp(p->s, "\xEF\xBB\xBF", 3) == 0 && pos >= 3)
        bol = 3; /* a byte order mark is not a column */
    int col = 1;
    for (size_t k = bol; k < pos; k++)
        if (((unsigned char)p->s[k] & 0xC0) != 0x80)
            col++;
    p->err->line = line;
    p->err->column = col;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err->message, sizeof p->err->message, fmt, ap);
    va_end(ap);
    return -1;
}

static int oom(parser *p) {
    if (!p->failed) {
        p->failed = CX_ENOMEM;
        if (p->err) {
            p->err->line = p->err->column = 0;
            snprintf(p->err->message, sizeof p->err->message, "out of memory");
        }
    }
    return -1;
}

/* A short description of the character at the cursor, for messages. */
static const char *describe(parser *p) {
    if (p->i >= p->n)
        return "the end of the file";
    unsigned char c = (unsigned char)p->s[p->i];
    if (c == '\n' || c == '\r')
        return "the end of the line";
    if (c >= 0x21 && c < 0x7F)
        snprintf(p->desc, sizeof p->desc, "'%c'", c);
    else if (c == ' ' || c == '\t')
        return "whitespace";
    else if (c < 0x80)
        snprintf(p->desc, sizeof p->desc, "control character U+%04X", c);
    else
        return "a non-ASCII character";
    return p->desc;
}

/* A key path for messages, parts joined with dots (truncated). */
static const char *keyname(parser *p, const keypath *k, size_t upto) {
    size_t o = 0;
    p->name[0] = '\0';
    for (size_t j = 0; j < upto && o + 1 < sizeof p->name; j++) {
        int w = snprintf(p->name + o, sizeof p->name - o, "%s%.*s", j ? "." : "",
                         (int)(k->v[j].n > 60 ? 60 : k->v[j].n), k->v[j].s);
        if (w < 0)
            break;
        o += (size_t)w;
    }
    for (char *c = p->name; *c; c++) /* keep messages on one line */
        if ((unsigned char)*c < 0x20 || *c == 0x7F)
            *c = '?';
    return p->name;
}

static bool at(const parser *p, size_t k, char c) {
    return p->i + k < p->n && p->s[p->i + k] == c;
}

static int peek(const parser *p) {
    return p->i < p->n ? (unsigned char)p->s[p->i] : -1;
}

static bool is_digit(int c) {
    return c >= '0' && c <= '9';
}

static bool is_ctl(unsigned char c) {
    return (c < 0x20 && c != '\t') || c == 0x7F;
}

static bool is_bare(int c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '_' || c == '-';
}

/* ---- nodes ----------------------------------------------------------------- */

static size_t hash(const node *parent, const char *k, size_t n) {
    uint64_t h = 1469598103934665603ull ^ (uint64_t)(uintptr_t)parent;
    for (size_t j = 0; j < n; j++) {
        h ^= (unsigned char)k[j];
        h *= 1099511628211ull;
    }
    h ^= h >> 29;
    return (size_t)h;
}

static node *find(const parser *p, const node *parent, const char *k, size_t n) {
    if (!p->htcap)
        return NULL;
    size_t m = p->htcap - 1;
    for (size_t h = hash(parent, k, n) & m; p->ht[h]; h = (h + 1) & m) {
        node *x = p->ht[h];
        if (x->parent == parent && x->klen == n && memcmp(x->key, k, n) == 0)
            return x;
    }
    return NULL;
}

static int ht_insert(parser *p, node *x) {
    if ((p->htcount + 1) * 2 > p->htcap) {
        size_t cap = p->htcap ? p->htcap * 2 : 64;
        node **ht = calloc(cap, sizeof *ht);
        if (!ht)
            return -1;
        for (size_t j = 0; j < p->htcap; j++) {
            node *y = p->ht[j];
            if (!y)
                continue;
            size_t h = hash(y->parent, y->key, y->klen) & (cap - 1);
            while (ht[h])
                h = (h + 1) & (cap - 1);
            ht[h] = y;
        }
        free(p->ht);
        p->ht = ht;
        p->htcap = cap;
    }
    size_t m = p->htcap - 1, h = hash(x->parent, x->key, x->klen) & m;
    while (p->ht[h])
        h = (h + 1) & m;
    p->ht[h] = x;
    p->htcount++;
    return 0;
}

/* A new node; with a parent it is also entered in the hash table. */
static node *add(parser *p, node *parent, const keypart *k, int kind, unsigned flags,
                 size_t pos) {
    if (p->nnodes == p->capnodes) {
        size_t cap = p->capnodes ? p->capnodes * 2 : 64;
        node **nv = realloc(p->nodes, cap * sizeof *nv);
        if (!nv)
            return oom(p), NULL;
        p->nodes = nv;
        p->capnodes = cap;
    }
    node *x = calloc(1, sizeof *x);
    if (!x)
        return oom(p), NULL;
    p->nodes[p->nnodes++] = x;
    x->parent = parent;
    x->kind = kind;
    x->flags = flags;
    x->pos = pos;
    if (k) {
        x->key = malloc(k->n + 1);
        if (!x->key)
            return oom(p), NULL;
        memcpy(x->key, k->s, k->n);
        x->key[k->n] = '\0';
        x->klen = k->n;
    }
    if (parent && ht_insert(p, x) != 0)
        return oom(p), NULL;
    return x;
}

static int pend(parser *p, node *x) {
    if (x->flags & F_PENDING)
        return 0;
    if (p->npending == p->cappending) {
        size_t cap = p->cappending ? p->cappending * 2 : 16;
        node **nv = realloc(p->pending, cap * sizeof *nv);
        if (!nv)
            return oom(p);
        p->pending = nv;
        p->cappending = cap;
    }
    x->flags |= F_PENDING;
    p->pending[p->npending++] = x;
    return 0;
}

/* A section ended: tables made by its dotted keys are closed. */
static void finalize_pending(parser *p) {
    for (size_t j = 0; j < p->npending; j++)
        p->pending[j]->flags = (p->pending[j]->flags & ~(unsigned)F_PENDING) | F_DOTTED;
    p->npending = 0;
}

static const char *what_node(const node *x) {
    if (x->kind == N_AOT)
        return "an array of tables";
    if (x->kind == N_TABLE)
        return "a table";
    if (x->flags & F_INLINE)
        return "an inline table";
    if (x->flags & F_ARRAY)
        return "an array";
    return "a value";
}

/* Defines key path k (relative to table t) as a value of kind vkind. */
static int define_value(parser *p, node *t, const keypath *k, size_t pos, int vkind) {
    for (size_t j = 0; j + 1 < k->n; j++) {
        node *c = find(p, t, k->v[j].s, k->v[j].n);
        if (!c) {
            c = add(p, t, &k->v[j], N_TABLE, 0, pos);
            if (!c || pend(p, c) != 0)
                return -1;
        } else if (c->kind == N_TABLE) {
            if (c->flags & F_HEADER)
                return fail(p, pos, "cannot add to table %s with dotted keys: it has its own [header]",
                            keyname(p, k, j + 1));
            if (c->flags & F_DOTTED)
                return fail(p, pos,
                            "cannot add to table %s with dotted keys: it was defined in an earlier section",
                            keyname(p, k, j + 1));
            if (pend(p, c) != 0)
                return -1;
        } else
            return fail(p, pos, "%s is already defined as %s", keyname(p, k, j + 1), what_node(c));
        t = c;
    }
    const keypart *last = &k->v[k->n - 1];
    node *c = find(p, t, last->s, last->n);
    if (c)
        return fail(p, pos, "duplicate key %s", keyname(p, k, k->n));
    unsigned flags = vkind == V_INLINE ? F_INLINE : vkind == V_ARRAY ? F_ARRAY : 0;
    return add(p, t, last, N_VALUE, flags, pos) ? 0 : -1;
}

/* [k] or [[k]]: makes the table the current one. */
static int define_table(parser *p, const keypath *k, size_t pos, bool aot) {
    node *t = p->root;
    for (size_t j = 0; j + 1 < k->n; j++) {
        node *c = find(p, t, k->v[j].s, k->v[j].n);
        if (!c) {
            c = add(p, t, &k->v[j], N_TABLE, 0, pos);
            if (!c)
                return -1;
        } else if (c->kind == N_AOT)
            c = c->elem;
        else if (c->kind == N_VALUE)
            return fail(p, pos, "%s is already defined as %s", keyname(p, k, j + 1), what_node(c));
        t = c;
    }
    const keypart *last = &k->v[k->n - 1];
    node *c = find(p, t, last->s, last->n);
    if (aot) {
        if (!c) {
            c = add(p, t, last, N_AOT, 0, pos);
            if (!c)
                return -1;
        } else if (c->kind != N_AOT)
            return fail(p, pos, "[[%s]]: %s is already defined as %s", keyname(p, k, k->n),
                        keyname(p, k, k->n), what_node(c));
        node *e = add(p, NULL, NULL, N_TABLE, F_HEADER, pos);
        if (!e)
            return -1;
        c->elem = e;
        p->cur = e;
        return 0;
    }
    if (!c) {
        c = add(p, t, last, N_TABLE, F_HEADER, pos);
        if (!c)
            return -1;
    } else if (c->kind != N_TABLE)
        return fail(p, pos, "[%s]: %s is already defined as %s", keyname(p, k, k->n),
                    keyname(p, k, k->n), what_node(c));
    else if (c->flags & F_HEADER)
        return fail(p, pos, "table [%s] is defined twice", keyname(p, k, k->n));
    else if (c->flags & (F_DOTTED | F_PENDING))
        return fail(p, pos, "table [%s] was already defined with dotted keys", keyname(p, k, k->n));
    else
        c->flags |= F_HEADER;
    p->cur = c;
    return 0;
}

/* ---- lexical pieces --------------------------------------------------------- */

static void skip_ws(parser *p) {
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t'))
        p->i++;
}

/* At '#': consumes the comment up to (not including) its newline. */
static int comment(parser *p) {
    p->i++;
    while (p->i < p->n) {
        unsigned char c = (unsigned char)p->s[p->i];
        if (c == '\n' || (c == '\r' && at(p, 1, '\n')))
            break;
        if (c == '\r')
            return fail(p, p->i, "a carriage return must be followed by a line feed");
        if (is_ctl(c))
            return fail(p, p->i, "control character U+%04X is not allowed in a comment", c);
        p->i++;
    }
    return 0;
}

/* Consumes one newline: 1 if there was one, 0 if not, -1 on a bare CR. */
static int newline(parser *p) {
    if (at(p, 0, '\n')) {
        p->i++;
        return 1;
    }
    if (at(p, 0, '\r')) {
        if (at(p, 1, '\n')) {
            p->i += 2;
            return 1;
        }
        return fail(p, p->i, "a carriage return must be followed by a line feed");
    }
    return 0;
}

/* After a statement: whitespace, an optional comment, then a newline or EOF. */
static int end_of_line(parser *p, const char *after) {
    skip_ws(p);
    if (at(p, 0, '#') && comment(p) != 0)
        return -1;
    if (p->i >= p->n)
        return 0;
    int r = newline(p);
    if (r < 0)
        return -1;
    if (r == 0)
        return fail(p, p->i, "expected the end of the line after %s, found %s", after, describe(p));
    return 0;
}

/* Whitespace, comments and newlines (inside arrays). */
static int skip_ws_nl(parser *p) {
    for (;;) {
        skip_ws(p);
        if (at(p, 0, '#')) {
            if (comment(p) != 0)
                return -1;
            continue;
        }
        int r = newline(p);
        if (r < 0)
            return -1;
        if (r == 0)
            return 0;
    }
}

/* ---- strings ---------------------------------------------------------------- */

static int hexval(int c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* At a backslash in a basic string: decodes one escape into p->str. */
static int escape(parser *p) {
    size_t pos = p->i++;
    if (p->i >= p->n)
        return fail(p, pos, "unterminated escape sequence");
    char c = p->s[p->i];
    char out;
    switch (c) {
    case 'b': out = '\b'; break;
    case 't': out = '\t'; break;
    case 'n': out = '\n'; break;
    case 'f': out = '\f'; break;
    case 'r': out = '\r'; break;
    case '"': out = '"'; break;
    case '\\': out = '\\'; break;
    case 'u':
    case 'U': {
        int digits = c == 'u' ? 4 : 8;
        uint32_t v = 0;
        p->i++;
        for (int d = 0; d < digits; d++, p->i++) {
            int h = p->i < p->n ? hexval((unsigned char)p->s[p->i]) : -1;
            if (h < 0)
                return fail(p, pos, "\\%c must be followed by %d hexadecimal digits", c, digits);
            v = v * 16 + (uint32_t)h;
        }
        if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
            return fail(p, pos, "\\%c%0*X is not a Unicode scalar value", c, digits, (unsigned)v);
        return utf8_put(&p->str, v) == 0 ? 0 : oom(p);
    }
    default:
        p->i = pos + 1;
        return fail(p, pos, "invalid escape sequence '\\' followed by %s", describe(p));
    }
    p->i++;
    return sb_putc(&p->str, out) == 0 ? 0 : oom(p);
}

/* Appends s[i] (one UTF-8 sequence, already validated) to p->str. */
static int copy_char(parser *p) {
    size_t k = cx_utf8_seq_len((const unsigned char *)p->s + p->i, p->n - p->i);
    if (k == 0)
        k = 1;
    if (cx_buf_add(&p->str, p->s + p->i, k) != 0)
        return oom(p);
    p->i += k;
    return 0;
}

static int basic_string(parser *p) {
    size_t start = p->i++;
    cx_buf_reset(&p->str);
    for (;;) {
        if (p->i >= p->n)
            return fail(p, start, "unterminated string");
        unsigned char c = (unsigned char)p->s[p->i];
        if (c == '"') {
            p->i++;
            return 0;
        }
        if (c == '\\') {
            if (escape(p) != 0)
                return -1;
            continue;
        }
        if (c == '\n' || c == '\r')
            return fail(p, start, "unterminated string (a newline comes before its closing quote)");
        if (is_ctl(c))
            return fail(p, p->i, "control character U+%04X must be escaped in a string", c);
        if (copy_char(p) != 0)
            return -1;
    }
}

static int literal_string(parser *p) {
    size_t start = p->i++;
    cx_buf_reset(&p->str);
    for (;;) {
        if (p->i >= p->n)
            return fail(p, start, "unterminated literal string");
        unsigned char c = (unsigned char)p->s[p->i];
        if (c == '\'') {
            p->i++;
            return 0;
        }
        if (c == '\n' || c == '\r')
            return fail(p, start,
                        "unterminated literal string (a newline comes before its closing quote)");
        if (is_ctl(c))
            return fail(p, p->i, "control character U+%04X is not allowed in a literal string", c);
        if (copy_char(p) != 0)
            return -1;
    }
}

/* """…""" or '''…''' (q is the quote character). */
static int multiline_string(parser *p, char q) {
    size_t start = p->i;
    p->i += 3;
    cx_buf_reset(&p->str);
    if (at(p, 0, '\n'))
        p->i++;
    else if (at(p, 0, '\r') && at(p, 1, '\n'))
        p->i += 2;
    for (;;) {
        if (p->i >= p->n)
            return fail(p, start, "unterminated multi-line string");
        unsigned char c = (unsigned char)p->s[p->i];
        if (c == (unsigned char)q) {
            size_t k = 0;
            while (at(p, k, q))
                k++;
            if (k >= 3) {
                if (k > 5)
                    return fail(p, p->i + 5, "too many quotes at the end of a multi-line string");
                for (size_t j = 0; j < k - 3; j++)
                    if (sb_putc(&p->str, q) != 0)
                        return oom(p);
                p->i += k;
                return 0;
            }
            if (cx_buf_add(&p->str, p->s + p->i, k) != 0)
                return oom(p);
            p->i += k;
            continue;
        }
        if (c == '\\' && q == '"') {
            /* a backslash at the end of a line trims the newline and the
             * whitespace after it */
            size_t j = p->i + 1;
            while (j < p->n && (p->s[j] == ' ' || p->s[j] == '\t'))
                j++;
            if (j < p->n && (p->s[j] == '\n' || (p->s[j] == '\r' && j + 1 < p->n && p->s[j + 1] == '\n'))) {
                p->i = j;
                for (;;) {
                    skip_ws(p);
                    int r = newline(p);
                    if (r < 0)
                        return -1;
                    if (r == 0)
                        break;
                }
                continue;
            }
            if (escape(p) != 0)
                return -1;
            continue;
        }
        if (c == '\n') {
            if (sb_putc(&p->str, '\n') != 0)
                return oom(p);
            p->i++;
            continue;
        }
        if (c == '\r') {
            if (!at(p, 1, '\n'))
                return fail(p, p->i, "a carriage return must be followed by a line feed");
            if (sb_putc(&p->str, '\n') != 0)
                return oom(p);
            p->i += 2;
            continue;
        }
        if (is_ctl(c))
            return fail(p, p->i, "control character U+%04X %s", c,
                        q == '"' ? "must be escaped in a string" : "is not allowed in a literal string");
        if (copy_char(p) != 0)
            return -1;
    }
}

/* ---- keys ------------------------------------------------------------------- */

static void keypath_clear(keypath *k) {
    for (size_t j = 0; j < k->n; j++)
        free(k->v[j].s);
    k->n = 0;
}

static void keypath_free(keypath *k) {
    keypath_clear(k);
    free(k->v);
    memset(k, 0, sizeof *k);
}

static int simple_key(parser *p, keypart *out) {
    size_t start = p->i;
    int c = peek(p);
    if (c == '"' || c == '\'') {
        if (at(p, 1, (char)c) && at(p, 2, (char)c))
            return fail(p, p->i, "a multi-line string cannot be a key");
        if ((c == '"' ? basic_string(p) : literal_string(p)) != 0)
            return -1;
    } else {
        while (p->i < p->n && is_bare((unsigned char)p->s[p->i]))
            p->i++;
        if (p->i == start)
            return fail(p, p->i, "expected a key, found %s", describe(p));
        cx_buf_reset(&p->str);
        if (cx_buf_add(&p->str, p->s + start, p->i - start) != 0)
            return oom(p);
    }
    out->s = malloc(p->str.len + 1);
    if (!out->s)
        return oom(p);
    if (p->str.len)
        memcpy(out->s, p->str.data, p->str.len);
    out->s[p->str.len] = '\0';
    out->n = p->str.len;
    return 0;
}

/* A dotted key into k (cleared first). */
static int key(parser *p, keypath *k) {
    keypath_clear(k);
    for (;;) {
        if (k->n == k->cap) {
            size_t cap = k->cap ? k->cap * 2 : 4;
            keypart *nv = realloc(k->v, cap * sizeof *nv);
            if (!nv)
                return oom(p);
            k->v = nv;
            k->cap = cap;
        }
        if (simple_key(p, &k->v[k->n]) != 0)
            return -1;
        k->n++;
        skip_ws(p);
        if (!at(p, 0, '.'))
            return 0;
        p->i++;
        skip_ws(p);
    }
}

/* ---- numbers and date-times -------------------------------------------------- */

static bool is_base_digit(int c, int base) {
    if (base == 16)
        return hexval(c) >= 0;
    if (base == 8)
        return c >= '0' && c <= '7';
    if (base == 2)
        return c == '0' || c == '1';
    return is_digit(c);
}

/* One or more digits of `base`, an underscore only between two digits. */
static int digits(parser *p, int base, const char *what) {
    size_t start = p->i;
    while (p->i < p->n) {
        int c = (unsigned char)p->s[p->i];
        if (is_base_digit(c, base)) {
            p->i++;
            continue;
        }
        if (c == '_') {
            if (p->i == start || p->i + 1 >= p->n ||
                !is_base_digit((unsigned char)p->s[p->i + 1], base))
                return fail(p, p->i, "an underscore in a number must be between two digits");
            p->i++;
            continue;
        }
        break;
    }
    if (p->i == start)
        return fail(p, p->i, "expected %s, found %s", what, describe(p));
    return 0;
}

/* Whether s[from..to) (digits of base and underscores) fits in 0..limit. */
static bool fits(const char *s, size_t from, size_t to, int base, uint64_t limit) {
    uint64_t v = 0;
    for (size_t j = from; j < to; j++) {
        if (s[j] == '_')
            continue;
        uint64_t d = (uint64_t)hexval((unsigned char)s[j]);
        if (v > (limit - d) / (uint64_t)base)
            return false;
        v = v * (uint64_t)base + d;
    }
    return true;
}

static bool starts(const parser *p, const char *w) {
    size_t n = strlen(w);
    return p->n - p->i >= n && memcmp(p->s + p->i, w, n) == 0;
}

static int number(parser *p) {
    size_t start = p->i;
    bool sign = false, neg = false;
    if (at(p, 0, '+') || at(p, 0, '-')) {
        sign = true;
        neg = p->s[p->i] == '-';
        p->i++;
    }
    if (starts(p, "inf") || starts(p, "nan")) {
        p->i += 3;
        return 0;
    }
    if (at(p, 0, '0') && (at(p, 1, 'x') || at(p, 1, 'o') || at(p, 1, 'b'))) {
        char b = p->s[p->i + 1];
        int base = b == 'x' ? 16 : b == 'o' ? 8 : 2;
        if (sign)
            return fail(p, start, "a %s integer cannot have a sign",
                        base == 16 ? "hexadecimal" : base == 8 ? "octal" : "binary");
        p->i += 2;
        size_t ds = p->i;
        if (digits(p, base, base == 16 ? "hexadecimal digits" : base == 8 ? "octal digits" : "binary digits") != 0)
            return -1;
        if (!fits(p->s, ds, p->i, base, INT64_MAX))
            return fail(p, start, "integer does not fit in 64 bits");
        return 0;
    }
    if (!is_digit(peek(p)))
        return fail(p, p->i, "expected a digit, found %s", describe(p));
    if (at(p, 0, '0') && p->i + 1 < p->n && (is_digit((unsigned char)p->s[p->i + 1]) || p->s[p->i + 1] == '_'))
        return fail(p, p->i, "leading zeros are not allowed in a decimal number");
    size_t ds = p->i;
    if (digits(p, 10, "digits") != 0)
        return -1;
    size_t de = p->i;
    bool real = false;
    if (at(p, 0, '.')) {
        p->i++;
        real = true;
        if (digits(p, 10, "digits after the decimal point") != 0)
            return -1;
    }
    if (at(p, 0, 'e') || at(p, 0, 'E')) {
        p->i++;
        real = true;
        if (at(p, 0, '+') || at(p, 0, '-'))
            p->i++;
        if (digits(p, 10, "exponent digits") != 0)
            return -1;
    }
    if (!real && !fits(p->s, ds, de, 10, neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX))
        return fail(p, start, "integer does not fit in 64 bits");
    return 0;
}

static int two_digits(parser *p, int *v, const char *what) {
    if (p->i + 2 > p->n || !is_digit((unsigned char)p->s[p->i]) || !is_digit((unsigned char)p->s[p->i + 1]))
        return fail(p, p->i, "expected two digits for the %s, found %s", what, describe(p));
    *v = (p->s[p->i] - '0') * 10 + (p->s[p->i + 1] - '0');
    p->i += 2;
    return 0;
}

static int expect_char(parser *p, char c, const char *in) {
    if (!at(p, 0, c))
        return fail(p, p->i, "expected '%c' in %s, found %s", c, in, describe(p));
    p->i++;
    return 0;
}

static int time_of_day(parser *p) {
    size_t start = p->i;
    int h = 0, m = 0, s = 0;
    if (two_digits(p, &h, "hour") || expect_char(p, ':', "a time") || two_digits(p, &m, "minute") ||
        expect_char(p, ':', "a time") || two_digits(p, &s, "second"))
        return -1;
    if (h > 23 || m > 59 || s > 60)
        return fail(p, start, "%02d:%02d:%02d is not a valid time", h, m, s);
    if (at(p, 0, '.')) {
        p->i++;
        if (!is_digit(peek(p)))
            return fail(p, p->i, "expected digits after the decimal point of the seconds");
        while (is_digit(peek(p)))
            p->i++;
    }
    return 0;
}

static int datetime(parser *p) {
    size_t start = p->i;
    int y = 0, mo = 0, d = 0;
    for (int k = 0; k < 4; k++)
        y = y * 10 + (p->s[p->i++] - '0'); /* the caller saw four digits */
    if (expect_char(p, '-', "a date") || two_digits(p, &mo, "month") || expect_char(p, '-', "a date") ||
        two_digits(p, &d, "day"))
        return -1;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap))
        return fail(p, start, "%04d-%02d-%02d is not a valid date", y, mo, d);
    bool has_time = false;
    if (at(p, 0, 'T') || at(p, 0, 't')) {
        p->i++;
        has_time = true;
    } else if (at(p, 0, ' ') && p->i + 3 < p->n && is_digit((unsigned char)p->s[p->i + 1]) &&
               is_digit((unsigned char)p->s[p->i + 2]) && p->s[p->i + 3] == ':') {
        p->i++;
        has_time = true;
    }
    if (!has_time)
        return 0;
    if (time_of_day(p) != 0)
        return -1;
    if (at(p, 0, 'Z') || at(p, 0, 'z'))
        p->i++;
    else if (at(p, 0, '+') || at(p, 0, '-')) {
        size_t os = p->i++;
        int oh = 0, om = 0;
        if (two_digits(p, &oh, "offset hours") || expect_char(p, ':', "a time offset") ||
            two_digits(p, &om, "offset minutes"))
            return -1;
        if (oh > 23 || om > 59)
            return fail(p, os, "not a valid time offset");
    }
    return 0;
}

/* ---- values ------------------------------------------------------------------- */

static int value(parser *p, capture *cap, int *vkind);

static int array(parser *p, capture *cap) {
    size_t start = p->i++;
    if (++p->depth > MAX_NESTING)
        return fail(p, start, "arrays and inline tables are nested more than %d deep", MAX_NESTING);
    if (cap)
        cap->all_strings = true;
    for (;;) {
        if (skip_ws_nl(p) != 0)
            return -1;
        if (p->i >= p->n)
            return fail(p, start, "unterminated array");
        if (at(p, 0, ']')) {
            p->i++;
            break;
        }
        capture ec = {0};
        int vk;
        if (value(p, cap ? &ec : NULL, &vk) != 0) {
            capture_clear(&ec);
            return -1;
        }
        if (cap && vk == V_STRING && cap->all_strings) {
            if (cap->nitems == cap->capitems) {
                size_t nc = cap->capitems ? cap->capitems * 2 : 4;
                char **nv = realloc(cap->items, nc * sizeof *nv);
                if (!nv) {
                    capture_clear(&ec);
                    return oom(p);
                }
                cap->items = nv;
                cap->capitems = nc;
            }
            cap->items[cap->nitems++] = ec.str;
            ec.str = NULL;
        } else if (cap)
            cap->all_strings = false;
        capture_clear(&ec);
        if (skip_ws_nl(p) != 0)
            return -1;
        if (at(p, 0, ',')) {
            p->i++;
            continue;
        }
        if (at(p, 0, ']')) {
            p->i++;
            break;
        }
        if (p->i >= p->n)
            return fail(p, start, "unterminated array");
        return fail(p, p->i, "expected ',' or ']' in an array, found %s", describe(p));
    }
    p->depth--;
    return 0;
}

static int inline_table(parser *p) {
    size_t start = p->i++;
    if (++p->depth > MAX_NESTING)
        return fail(p, start, "arrays and inline tables are nested more than %d deep", MAX_NESTING);
    node *t = add(p, NULL, NULL, N_TABLE, 0, start);
    if (!t)
        return -1;
    keypath k = {0};
    int r = -1;
    skip_ws(p);
    if (at(p, 0, '}')) {
        p->i++;
        r = 0;
        goto out;
    }
    for (;;) {
        skip_ws(p);
        size_t kpos = p->i;
        if (key(p, &k) != 0)
            goto out;
        if (!at(p, 0, '=')) {
            fail(p, p->i, "expected '=' after the key %s, found %s", keyname(p, &k, k.n), describe(p));
            goto out;
        }
        p->i++;
        skip_ws(p);
        int vk;
        if (value(p, NULL, &vk) != 0 || define_value(p, t, &k, kpos, vk) != 0)
            goto out;
        skip_ws(p);
        if (at(p, 0, ',')) {
            p->i++;
            skip_ws(p);
            if (at(p, 0, '}')) {
                fail(p, p->i, "a trailing comma is not allowed in an inline table");
                goto out;
            }
            continue;
        }
        if (at(p, 0, '}')) {
            p->i++;
            break;
        }
        if (p->i >= p->n)
            fail(p, start, "unterminated inline table");
        else if (at(p, 0, '\n') || at(p, 0, '\r') || at(p, 0, '#'))
            fail(p, p->i, "an inline table must be on one line");
        else
            fail(p, p->i, "expected ',' or '}' in an inline table, found %s", describe(p));
        goto out;
    }
    r = 0;
out:
    keypath_free(&k);
    if (r == 0)
        p->depth--;
    return r;
}

/* One value; *vkind says what it was. With cap, a string's text or an
 * array's strings are kept there. */
static int value(parser *p, capture *cap, int *vkind) {
    int c = peek(p);
    *vkind = V_OTHER;
    if (cap)
        cap->kind = V_OTHER;
    switch (c) {
    case '"':
    case '\'': {
        int r = at(p, 1, (char)c) && at(p, 2, (char)c) ? multiline_string(p, (char)c)
                : c == '"'                             ? basic_string(p)
                                                       : literal_string(p);
        if (r != 0)
            return -1;
        *vkind = V_STRING;
        if (cap) {
            cap->kind = V_STRING;
            cap->str = malloc(p->str.len + 1);
            if (!cap->str)
                return oom(p);
            if (p->str.len)
                memcpy(cap->str, p->str.data, p->str.len);
            cap->str[p->str.len] = '\0';
        }
        return 0;
    }
    case 't':
    case 'f':
        if (starts(p, "true")) {
            p->i += 4;
            return 0;
        }
        if (starts(p, "false")) {
            p->i += 5;
            return 0;
        }
        break;
    case '[':
        *vkind = V_ARRAY;
        if (cap)
            cap->kind = V_ARRAY;
        return array(p, cap);
    case '{':
        *vkind = V_INLINE;
        if (cap)
            cap->kind = V_INLINE;
        return inline_table(p);
    case 'i':
    case 'n':
        if (starts(p, "inf") || starts(p, "nan"))
            return number(p);
        break;
    case '+':
    case '-':
        return number(p);
    case -1:
        return fail(p, p->i, "expected a value, found the end of the file");
    default:
        if (is_digit(c)) {
            if (p->i + 4 < p->n && is_digit((unsigned char)p->s[p->i + 1]) &&
                is_digit((unsigned char)p->s[p->i + 2]) && is_digit((unsigned char)p->s[p->i + 3]) &&
                p->s[p->i + 4] == '-')
                return datetime(p);
            if (p->i + 2 < p->n && is_digit((unsigned char)p->s[p->i + 1]) && p->s[p->i + 2] == ':')
                return time_of_day(p);
            return number(p);
        }
        break;
    }
    return fail(p, p->i, "expected a value, found %s", describe(p));
}

/* ---- the table asked about -------------------------------------------------- */

static bool path_prefix(const parser *p, const keypath *k) {
    if (!p->tpath || k->n < p->tdepth)
        return false;
    for (size_t j = 0; j < p->tdepth; j++) {
        size_t n = strlen(p->tpath[j]);
        if (k->v[j].n != n || memcmp(k->v[j].s, p->tpath[j], n) != 0)
            return false;
    }
    return true;
}

static entry *entry_find(const cx_toml_table *t, const char *key, size_t n) {
    for (size_t j = 0; j < t->n; j++)
        if (t->v[j].klen == n && memcmp(t->v[j].key, key, n) == 0)
            return &t->v[j];
    return NULL;
}

/* Records key part kp of the target table: a keyval (cap != NULL) or a
 * dotted key / sub-table through it (cap == NULL: E_COMPLEX). */
static int entry_add(parser *p, const keypart *kp, capture *cap, size_t start, size_t end) {
    cx_toml_table *t = p->tt;
    entry *e = entry_find(t, kp->s, kp->n);
    if (e) {
        if (!cap) /* a sub-table of a key already seen */
            e->kind = E_COMPLEX;
        return 0;
    }
    if (t->n == t->cap) {
        size_t cap_n = t->cap ? t->cap * 2 : 8;
        entry *nv = realloc(t->v, cap_n * sizeof *nv);
        if (!nv)
            return oom(p);
        t->v = nv;
        t->cap = cap_n;
    }
    e = &t->v[t->n];
    memset(e, 0, sizeof *e);
    e->key = malloc(kp->n + 1);
    if (!e->key)
        return oom(p);
    memcpy(e->key, kp->s, kp->n);
    e->key[kp->n] = '\0';
    e->klen = kp->n;
    t->n++;
    if (!cap) {
        e->kind = E_COMPLEX;
        return 0;
    }
    e->start = start;
    e->end = end;
    if (cap->kind == V_STRING) {
        e->kind = E_STRING;
        e->str = cap->str;
        cap->str = NULL;
    } else if (cap->kind == V_ARRAY && cap->all_strings) {
        e->kind = E_STRINGS;
        e->items = cap->items;
        e->nitems = cap->nitems;
        cap->items = NULL;
        cap->nitems = cap->capitems = 0;
    } else
        e->kind = E_OTHER;
    return 0;
}

/* ---- statements ----------------------------------------------------------------- */

static int header(parser *p, size_t line_start) {
    size_t start = p->i;
    bool aot = at(p, 1, '[');
    p->i += aot ? 2 : 1;
    keypath k = {0};
    int r = -1;
    skip_ws(p);
    if (key(p, &k) != 0)
        goto out;
    if (!at(p, 0, ']')) {
        fail(p, p->i, "expected '%s' to close the table header, found %s", aot ? "]]" : "]", describe(p));
        goto out;
    }
    p->i++;
    if (aot) {
        if (!at(p, 0, ']')) {
            fail(p, p->i, "expected ']]' to close the array-of-tables header, found %s", describe(p));
            goto out;
        }
        p->i++;
    }
    finalize_pending(p);
    if (define_table(p, &k, start, aot) != 0)
        goto out;
    if (p->tt) {
        bool prefix = path_prefix(p, &k);
        bool same = prefix && k.n == p->tdepth;
        if (p->tstate == T_IN || p->tstate == T_SUB) {
            if (prefix && !same)
                p->tstate = T_SUB;
            else {
                p->tt->end = line_start;
                p->tstate = T_AFTER;
            }
        }
        if (same && !aot) {
            p->tstate = T_IN;
            p->tt->has_range = true;
            p->tt->start = line_start;
        }
        if (prefix && !same && entry_add(p, &k.v[p->tdepth], NULL, 0, 0) != 0)
            goto out;
    }
    if (end_of_line(p, "a table header") != 0)
        goto out;
    if (p->tt && p->tstate == T_IN && p->tt->start == line_start)
        p->tt->body = p->i;
    r = 0;
out:
    keypath_free(&k);
    return r;
}

static int keyval(parser *p) {
    size_t start = p->i;
    keypath k = {0};
    capture cap = {0};
    int r = -1;
    if (key(p, &k) != 0)
        goto out;
    if (!at(p, 0, '=')) {
        fail(p, p->i, "expected '=' after the key %s, found %s", keyname(p, &k, k.n), describe(p));
        goto out;
    }
    p->i++;
    skip_ws(p);
    bool target = p->tt && p->tstate == T_IN;
    int vk;
    if (value(p, target && k.n == 1 ? &cap : NULL, &vk) != 0 ||
        define_value(p, p->cur, &k, start, vk) != 0 || end_of_line(p, "a value") != 0)
        goto out;
    if (target && entry_add(p, &k.v[0], k.n == 1 ? &cap : NULL, start, p->i) != 0)
        goto out;
    r = 0;
out:
    capture_clear(&cap);
    keypath_free(&k);
    return r;
}

static int parse(parser *p) {
    size_t bad = cx_utf8_valid_prefix(p->s, p->n);
    if (bad < p->n)
        return fail(p, bad, "the file is not valid UTF-8");
    p->root = p->cur = add(p, NULL, NULL, N_TABLE, F_HEADER, 0);
    if (!p->root)
        return -1;
    if (p->n >= 3 && memcmp(p->s, "\xEF\xBB\xBF", 3) == 0)
        p->i = 3; /* a UTF-8 byte order mark (toml-test accepts one) */
    while (p->i < p->n) {
        size_t line_start = p->i;
        skip_ws(p);
        int c = peek(p);
        int r;
        if (c == -1)
            break;
        if (c == '#' || c == '\n' || c == '\r')
            r = end_of_line(p, "a comment");
        else if (c == '[')
            r = header(p, line_start);
        else
            r = keyval(p);
        if (r != 0)
            return -1;
    }
    if (p->tt && (p->tstate == T_IN || p->tstate == T_SUB))
        p->tt->end = p->n;
    return 0;
}

static void parser_free(parser *p) {
    for (size_t j = 0; j < p->nnodes; j++) {
        free(p->nodes[j]->key);
        free(p->nodes[j]);
    }
    free(p->nodes);
    free(p->ht);
    free(p->pending);
    cx_buf_free(&p->str);
}

static int line_of(const char *s, size_t pos) {
    int line = 1;
    for (size_t k = 0; k < pos; k++)
        line += s[k] == '\n';
    return line;
}

/* How the parsed document defines the target table. */
static void classify(parser *p) {
    cx_toml_table *t = p->tt;
    node *x = p->root;
    for (size_t j = 0; j < p->tdepth; j++) {
        node *c = find(p, x, p->tpath[j], strlen(p->tpath[j]));
        if (!c) {
            t->form = CX_TOML_ABSENT;
            return;
        }
        bool last = j + 1 == p->tdepth;
        const char *how = NULL;
        if (c->kind == N_AOT)
            how = "an array of tables";
        else if (c->kind == N_VALUE)
            how = c->flags & F_INLINE ? "an inline table" : c->flags & F_ARRAY ? "an array" : "a value";
        else if (last && (c->flags & (F_DOTTED | F_PENDING)) && !(c->flags & F_HEADER))
            how = "dotted keys";
        if (how) {
            t->form = CX_TOML_OTHER;
            char path[96];
            size_t o = 0;
            path[0] = '\0';
            for (size_t q = 0; q <= j && o < sizeof path; q++) {
                int w = snprintf(path + o, sizeof path - o, "%s%s", q ? "." : "", p->tpath[q]);
                if (w < 0)
                    break;
                o += (size_t)w;
            }
            if (last)
                snprintf(t->how, sizeof t->how, "%s (line %d)", how, line_of(p->s, c->pos));
            else
                snprintf(t->how, sizeof t->how, "%s, which is defined as %s (line %d)", path, how,
                         line_of(p->s, c->pos));
            return;
        }
        x = c;
    }
    t->form = x->flags & F_HEADER ? CX_TOML_TABLE : CX_TOML_IMPLICIT;
}

static int run(const char *doc, size_t len, const char *const *path, size_t depth,
               cx_toml_table *tt, cx_toml_error *err) {
    parser p = {.s = doc, .n = len, .err = err, .tpath = path, .tdepth = depth, .tt = tt};
    cx_buf_init(&p.str, len);
    if (err)
        memset(err, 0, sizeof *err);
    int r = 0;
    if (parse(&p) != 0)
        r = p.failed ? p.failed : CX_EINVAL;
    else if (tt)
        classify(&p);
    parser_free(&p);
    return r;
}

/* ---- public ------------------------------------------------------------------------ */

int cx_toml_validate(const char *doc, size_t len, cx_toml_error *err) {
    return run(doc, len, NULL, 0, NULL, err);
}

int cx_toml_find(const char *doc, size_t len, const char *const *path, size_t depth,
                 cx_toml_table **out, cx_toml_error *err) {
    if (!path || depth == 0)
        return cx_error_set(CX_EINVAL, "cx_toml_find needs a table path");
    cx_toml_table *t = calloc(1, sizeof *t);
    if (!t)
        return CX_ENOMEM;
    int r = run(doc, len, path, depth, t, err);
    if (r != 0) {
        cx_toml_table_free(t);
        return r;
    }
    if (t->form != CX_TOML_TABLE)
        t->has_range = false;
    *out = t;
    return 0;
}

cx_toml_form cx_toml_table_form(const cx_toml_table *t) {
    return t->form;
}

const char *cx_toml_table_how(const cx_toml_table *t) {
    return t->form == CX_TOML_OTHER ? t->how : "";
}

bool cx_toml_table_range(const cx_toml_table *t, size_t *start, size_t *body, size_t *end) {
    if (!t->has_range)
        return false;
    if (start)
        *start = t->start;
    if (body)
        *body = t->body;
    if (end)
        *end = t->end;
    return true;
}

/* The entry for key if the table is defined as a block. */
static const entry *lookup(const cx_toml_table *t, const char *key) {
    if (t->form != CX_TOML_TABLE && t->form != CX_TOML_IMPLICIT)
        return NULL;
    return entry_find(t, key, strlen(key));
}

int cx_toml_table_string(const cx_toml_table *t, const char *key, const char **out) {
    const entry *e = lookup(t, key);
    if (!e)
        return CX_ENOTFOUND;
    if (e->kind != E_STRING)
        return CX_EINVAL;
    *out = e->str;
    return 0;
}

int cx_toml_table_strings(const cx_toml_table *t, const char *key, const char *const **items,
                          size_t *n) {
    const entry *e = lookup(t, key);
    if (!e)
        return CX_ENOTFOUND;
    if (e->kind != E_STRINGS)
        return CX_EINVAL;
    *items = (const char *const *)e->items;
    *n = e->nitems;
    return 0;
}

int cx_toml_table_key_span(const cx_toml_table *t, const char *key, size_t *start, size_t *end) {
    const entry *e = lookup(t, key);
    if (!e)
        return CX_ENOTFOUND;
    if (e->kind == E_COMPLEX)
        return CX_EINVAL;
    *start = e->start;
    *end = e->end;
    return 0;
}

void cx_toml_table_free(cx_toml_table *t) {
    if (!t)
        return;
    for (size_t j = 0; j < t->n; j++) {
        free(t->v[j].key);
        free(t->v[j].str);
        for (size_t q = 0; q < t->v[j].nitems; q++)
            free(t->v[j].items[q]);
        free(t->v[j].items);
    }
    free(t->v);
    free(t);
}

int cx_toml_quote(const char *s, size_t n, char **out) {
    if (!cx_utf8_valid(s, n))
        return cx_error_set(CX_EINVAL, "'%.*s' is not valid UTF-8 and cannot be written to TOML",
                            (int)(n > 200 ? 200 : n), s);
    cx_buf b;
    cx_buf_init(&b, 6 * n + 2); /* each byte at most \\u00XX, and the quotes */
    int bad = sb_putc(&b, '"');
    for (size_t j = 0; j < n && !bad; j++) {
        unsigned char c = (unsigned char)s[j];
        char esc[8];
        switch (c) {
        case '"': bad = cx_buf_add(&b, "\\\"", 2); break;
        case '\\': bad = cx_buf_add(&b, "\\\\", 2); break;
        case '\b': bad = cx_buf_add(&b, "\\b", 2); break;
        case '\t': bad = cx_buf_add(&b, "\\t", 2); break;
        case '\n': bad = cx_buf_add(&b, "\\n", 2); break;
        case '\f': bad = cx_buf_add(&b, "\\f", 2); break;
        case '\r': bad = cx_buf_add(&b, "\\r", 2); break;
        default:
            if (c < 0x20 || c == 0x7F) {
                snprintf(esc, sizeof esc, "\\u%04X", c);
                bad = cx_buf_add(&b, esc, 6);
            } else
                bad = sb_putc(&b, (char)c);
        }
    }
    if (!bad)
        bad = sb_putc(&b, '"');
    if (bad) {
        cx_buf_free(&b);
        return bad;
    }
    if (!(*out = cx_buf_take(&b, NULL)))
        return CX_ENOMEM;
    return 0;
}
