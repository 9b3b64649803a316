/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for typo correction (issue 12 item 3): the Damerau distance
 * and the neighbours one edit away (search/typo.c), the query builder with
 * corrections and the weights of its phrases (search/fts.c), the store's
 * typo dictionary filled on every path that indexes text (observe, a
 * pulled page, an update of an indexed item, the rebuild after a tokenizer
 * upgrade, the migration of a version 4 store), and search with
 * corrections on a real store: a typo finds its note and is reported, an
 * exact match ranks above an expansion, a correct rare word is not
 * corrected away, hostile queries stay fast. */
#include "test.h"

#include "search/search-internal.h"
#include "search/search.h"
#include "store/apply.h"
#include "store/store-search.h"
#include "store/store.h"
#include "text/tokenizer.h"
#include "util/clock.h"
#include "util/fsx.h"

#include <sqlite3.h>

static char *root;
static const cx_actor who = {.author = "ada", .agent = "test"};

static cx_store *fresh(const char *name) {
    char *dir = cx_fs_join(root, name);
    cx_store *s = NULL;
    CX_CHECK_OK(cx_store_open(&s, dir));
    free(dir);
    return s;
}

static char *observe(cx_store *s, const char *body) {
    cx_note n = {.body = body};
    json_t *out = NULL;
    if (cx_store_observe(s, &who, &n, 1, NULL, NULL, &out) != 0) {
        fprintf(stderr, "observe: %s\n", cx_error_last());
        return strdup("");
    }
    json_t *first = json_array_get(json_object_get(out, "results"), 0);
    const char *id = json_string_value(json_object_get(first, "id"));
    char *r = strdup(id ? id : "");
    json_decref(out);
    return r;
}

/* Whether the typo dictionary holds term. */
static bool known(cx_store *s, const char *term) {
    bool k = false;
    CX_CHECK_OK(cx_store_term_known(s, term, strlen(term), &k));
    return k;
}

static long long q1(cx_store *s, const char *sql) {
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (sqlite3_prepare_v2(cx_store_sqlite(s), sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* ---- distance and neighbours ---- */

static void test_distance(void) {
    CX_CHECK_INT(cx_typo_distance("parse", 5, "parse", 5), 0);
    CX_CHECK_INT(cx_typo_distance("pasre", 5, "parse", 5), 1); /* transposition */
    CX_CHECK_INT(cx_typo_distance("prse", 4, "parse", 5), 1);  /* deletion */
    CX_CHECK_INT(cx_typo_distance("parsse", 6, "parse", 5), 1); /* insertion */
    CX_CHECK_INT(cx_typo_distance("parze", 5, "parse", 5), 1); /* substitution */
    CX_CHECK_INT(cx_typo_distance("spare", 5, "parse", 5), 2);
    CX_CHECK_INT(cx_typo_distance("", 0, "abc", 3), 3);
    CX_CHECK_INT(cx_typo_distance("ca", 2, "abc", 3), 3); /* optimal string alignment */
    char big[CX_STORE_TERM_MAX + 2];
    memset(big, 'a', sizeof big);
    CX_CHECK_INT(cx_typo_distance(big, sizeof big, "a", 1), -1);
}

typedef struct seen {
    size_t calls, bad, n;
    const char *word;
    size_t wn;
    char found[8][CX_STORE_TERM_MAX + 1];
    const char *want[8];
    int stop_after;
} seen;

static bool on_cand(void *ud, const char *c, size_t len) {
    seen *S = ud;
    S->calls++;
    if (len > CX_STORE_TERM_MAX || cx_typo_distance(S->word, S->wn, c, len) != 1)
        S->bad++;
    for (int i = 0; i < 8 && S->want[i]; i++)
        if (strlen(S->want[i]) == len && memcmp(S->want[i], c, len) == 0)
            snprintf(S->found[i], sizeof S->found[i], "%s", S->want[i]);
    return S->stop_after == 0 || (int)S->calls < S->stop_after;
}

static void test_neighbours(void) {
    seen S = {.word = "pasre", .wn = 5,
              .want = {"parse", "pase", "pasres", "pzsre", "_pasre", "apsre", "psare", NULL}};
    size_t n = cx_typo_neighbours("pasre", 5, on_cand, &S);
    CX_CHECK(n == S.calls);
    CX_CHECK_INT((long long)S.bad, 0); /* every one is one edit away */
    /* deletions 5, transpositions 4, substitutions 5 x 26, insertions 6 x 27 */
    CX_CHECK(n > 250 && n <= 5 + 4 + 130 + 162);
    for (int i = 0; S.want[i]; i++)
        CX_CHECK_STR(S.found[i], S.want[i]);
    /* double letters: deleting either is one string */
    seen D = {.word = "bookkeeper", .wn = 10,
              .want = {"bokkeeper", "bookeeper", "bookkeepr", NULL}};
    cx_typo_neighbours("bookkeeper", 10, on_cand, &D);
    CX_CHECK_INT((long long)D.bad, 0);
    for (int i = 0; D.want[i]; i++)
        CX_CHECK_STR(D.found[i], D.want[i]);
    /* the callback stops it */
    seen T = {.word = "pasre", .wn = 5, .stop_after = 3};
    CX_CHECK_INT((long long)cx_typo_neighbours("pasre", 5, on_cand, &T), 3);
    /* a word of the longest length gets no insertion past it */
    char w[CX_STORE_TERM_MAX];
    memset(w, 'q', sizeof w);
    seen L = {.word = w, .wn = sizeof w};
    cx_typo_neighbours(w, sizeof w, on_cand, &L);
    CX_CHECK_INT((long long)L.bad, 0);
    CX_CHECK_INT((long long)cx_typo_neighbours(w, sizeof w + 1, on_cand, &L), 0);
}

/* ---- the expression builder with corrections ---- */

/* A fake dictionary: pasre -> parse, confg -> config, pasreconfigfile ->
 * parseconfigfile; counts its calls. */
static int fix_calls;
static size_t fake_fix(void *ud, const char *w, size_t n, bool part,
                       char fix[CX_TYPO_MAX_FIX][CX_STORE_TERM_MAX + 1]) {
    (void)ud;
    (void)part;
    fix_calls++;
    static const char *const map[][3] = {{"pasre", "parse", NULL},
                                         {"confg", "config", "confog"},
                                         {"pasreconfigfile", "parseconfigfile", NULL}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (strlen(map[i][0]) != n || memcmp(map[i][0], w, n) != 0)
            continue;
        size_t k = 0;
        for (; k < 2 && map[i][k + 1]; k++)
            snprintf(fix[k], CX_STORE_TERM_MAX + 1, "%s", map[i][k + 1]);
        return k;
    }
    return 0;
}

static char *build(const char *text, cx_fts_mode mode, cx_fts_opts *o) {
    memset(o, 0, sizeof *o);
    o->mode = mode;
    o->fix = fake_fix;
    char *out = NULL;
    CX_CHECK_OK(cx_fts_build_query_opts(text, o, &out));
    return out;
}

static void check_weights(const cx_fts_opts *o, const char *want) {
    char got[64] = {0};
    for (int i = 0; i < o->nphrase && i < 63; i++)
        got[i] = o->weight[i] == 1.0f ? '1' : o->weight[i] == CX_FTS_FIX_WEIGHT ? 'f' : '?';
    CX_CHECK_STR(got, want);
}

static void test_builder(void) {
    cx_fts_opts *o = calloc(1, sizeof *o);
    char *e = build("pasre", CX_FTS_ALL, o);
    CX_CHECK_STR(e, "((\"pasre\" OR \"~pasre\") OR (\"parse\" OR \"~parse\"))");
    check_weights(o, "11ff");
    free(e);
    e = build("Pasre confg files", CX_FTS_ANY, o);
    CX_CHECK_STR(e, "((\"Pasre\" OR \"~Pasre\") OR (\"parse\" OR \"~parse\")) OR "
                    "((\"confg\" OR \"~confg\") OR (\"config\" OR \"~config\") OR "
                    "(\"confog\" OR \"~confog\")) OR (\"files\" OR \"~files\")");
    check_weights(o, "11ff11ffff11");
    free(e);
    /* an identifier: whole and parts corrected, each in its place */
    e = build("pasreConfigFile", CX_FTS_ALL, o);
    CX_CHECK_STR(e, "(\"pasreConfigFile\" OR \"parseconfigfile\" OR ((\"pasre\" OR \"parse\") "
                    "AND \"Config\" AND \"File\"))");
    check_weights(o, "1f1f11");
    free(e);
    e = build("prase_confg", CX_FTS_ANY, o);
    CX_CHECK_STR(e, "(\"prase_confg\" OR \"prase\" OR (\"confg\" OR \"config\" OR \"confog\"))");
    check_weights(o, "111ff");
    free(e);
    /* no correction for a prefix, a quoted phrase, short or non-ASCII words,
     * words with digits: the expression is the one without the hook */
    const char *plain[] = {"pasre*", "\"pasre confg\"", "pas", "pasré", "x86_64", NULL};
    for (int i = 0; plain[i]; i++) {
        char *want = NULL;
        CX_CHECK_OK(cx_fts_build_query(plain[i], CX_FTS_ALL, &want));
        fix_calls = 0;
        e = build(plain[i], CX_FTS_ALL, o);
        CX_CHECK_STR(e, want);
        CX_CHECK_INT(fix_calls, 0);
        for (int k = 0; k < o->nphrase && k < CX_FTS_MAX_PHRASES; k++)
            CX_CHECK(o->weight[k] == 1.0f);
        free(e);
        free(want);
    }
    /* phrases are counted as FTS5 counts them */
    e = build("\"a b\" pasre", CX_FTS_ALL, o);
    CX_CHECK_INT(o->nphrase, 5);
    check_weights(o, "111ff");
    free(e);
    /* the hook is asked once per word form offered, and nothing else
     * changes when it corrects nothing */
    char *want = NULL;
    CX_CHECK_OK(cx_fts_build_query("parse config", CX_FTS_ALL, &want));
    e = build("parse config", CX_FTS_ALL, o);
    CX_CHECK_STR(e, want);
    free(e);
    free(want);
    free(o);
}

/* FTS5's own count of an expression's phrases, to check the builder's. */
static void phrase_count(const Fts5ExtensionApi *api, Fts5Context *fts, sqlite3_context *ctx,
                         int nval, sqlite3_value **vals) {
    (void)nval, (void)vals;
    sqlite3_result_int(ctx, api->xPhraseCount(fts));
}

static void test_phrase_numbering(void) {
    cx_store *s = fresh("phrases");
    if (!s)
        return;
    sqlite3 *db = cx_store_sqlite(s);
    fts5_api *api = cx_text_fts5_api(db);
    CX_CHECK(api && api->xCreateFunction(api, "cx_test_phrases", NULL, phrase_count, NULL) ==
                        SQLITE_OK);
    CX_CHECK(sqlite3_exec(db,
                          "CREATE VIRTUAL TABLE temp.t USING fts5(body, tokenize='cortex');"
                          "INSERT INTO temp.t VALUES ('pasre parse confg config confog file "
                          "files pasreconfigfile parseconfigfile prase café 连接池 a b');",
                          NULL, NULL, NULL) == SQLITE_OK);
    const char *texts[] = {"pasre", "Pasre confg files", "pasreConfigFile", "prase_confg",
                           "\"a b\" pasre", "café pasre*", "连接池 pasre", NULL};
    cx_fts_opts *o = calloc(1, sizeof *o);
    for (int i = 0; texts[i]; i++)
        for (int mode = 0; mode < 2; mode++) {
            char *e = build(texts[i], mode ? CX_FTS_ANY : CX_FTS_ALL, o);
            sqlite3_stmt *st = NULL;
            int n = -1;
            if (e && sqlite3_prepare_v2(db,
                                        "SELECT cx_test_phrases(t) FROM temp.t WHERE t MATCH ?1",
                                        -1, &st, NULL) == SQLITE_OK) {
                sqlite3_bind_text(st, 1, e, -1, SQLITE_STATIC);
                if (sqlite3_step(st) == SQLITE_ROW)
                    n = sqlite3_column_int(st, 0);
            }
            sqlite3_finalize(st);
            if (n != o->nphrase)
                fprintf(stderr, "%s: FTS5 counts %d phrases, the builder %d\n", e, n, o->nphrase);
            CX_CHECK_INT(n, o->nphrase);
            free(e);
        }
    free(o);
    cx_store_free(s);
}

/* The text the semantic list embeds once words were corrected. */
static void test_embed_text(void) {
    cx_typo *t = calloc(1, sizeof *t);
    cx_typo_init(t, NULL);
    const char *memo[][2] = {{"pasre", "parse"}, {"confg", "config"}, {"conection", "connection"},
                             {"webhok", ""}};
    for (size_t i = 0; i < 4; i++) {
        snprintf(t->memo[i].word, sizeof t->memo[i].word, "%s", memo[i][0]);
        snprintf(t->memo[i].fix[0], sizeof t->memo[i].fix[0], "%s", memo[i][1]);
        t->memo[i].nfix = *memo[i][1] ? 1 : 0;
    }
    t->nmemo = 4;
    char *out = NULL;
    CX_CHECK_OK(cx_typo_embed_text(t, "pasreConfigFile and prase_confg, Conection! webhok 连接",
                                   &out));
    CX_CHECK_STR(out, "pasreConfigFile and prase_confg, Conection! webhok 连接 parse config "
                      "connection");
    free(out);
    t->nmemo = 0; /* nothing corrected: no text */
    out = (char *)"x";
    CX_CHECK_OK(cx_typo_embed_text(t, "pasre", &out));
    CX_CHECK(out == NULL);
    free(t);
}

/* ---- the dictionary, on every path that indexes ---- */

static void test_dictionary(void) {
    cx_store *s = fresh("dict");
    if (!s)
        return;
    free(observe(s, "The parseConfigFile loader handles deadlocks in prase_config; build 12345, "
                    "hash abc3def, café au lait, 连接池, retry.policy.max"));
    CX_CHECK_OK(cx_store_fts_sync(s, 0));
    const char *yes[] = {"parseconfigfile", "parse", "config", "file", "loader", "handles",
                         "deadlocks", "prase_config", "prase", "build", "hash", "cafe",
                         "lait", "retry", "policy", NULL};
    for (int i = 0; yes[i]; i++)
        if (!known(s, yes[i]))
            CX_CHECK_STR("missing", yes[i]);
    const char *no[] = {"the", "in", "12345", "abc3def", "abc", "~deadlock", "=café", "café",
                        "retry.policy.max", "连接", "max", NULL};
    for (int i = 0; no[i]; i++)
        if (known(s, no[i]))
            CX_CHECK_STR("present", no[i]);
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM typo_terms WHERE term GLOB '*[^a-z_]*'"
                       " OR length(term) NOT BETWEEN 4 AND 64"),
                 0);

    /* a pulled page: new items, then an update of an indexed item (the
     * trigger re-indexes it inside the pull's transaction) */
    json_t *it = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:[], s:s, s:s, s:s}", "id",
                           "01JDQ7Y0000000000000000A01", "kind", "observation", "status",
                           "recorded", "subcortex", "build", "title", "Quixotic",
                           "body", "zephyrs blow", "visibility", "shared", "tags",
                           "author", "bob@example.com", "created_at", "2026-12-01T10:00:00Z",
                           "updated_at", "2026-12-01T10:00:00Z");
    json_t *page = json_pack("{s:[{s:I, s:O}], s:I, s:b}", "changes", "seq", (json_int_t)1,
                             "item", it, "next", (json_int_t)1, "more", 0);
    cx_apply_result res;
    CX_CHECK_OK(cx_apply_page(s, page, &res));
    json_decref(page);
    CX_CHECK_OK(cx_store_fts_sync(s, 0));
    CX_CHECK(known(s, "quixotic") && known(s, "zephyrs") && known(s, "blow"));
    json_object_set_new(it, "body", json_string("jubilant zephyrs"));
    json_object_set_new(it, "updated_at", json_string("2026-12-02T10:00:00Z"));
    page = json_pack("{s:[{s:I, s:O}], s:I, s:b}", "changes", "seq", (json_int_t)2, "item", it,
                     "next", (json_int_t)2, "more", 0);
    CX_CHECK_OK(cx_apply_page(s, page, &res));
    json_decref(page);
    json_decref(it);
    CX_CHECK(known(s, "jubilant")); /* no catch-up needed: the trigger indexed it */

    /* the rebuild after a tokenizer upgrade fills it again */
    char *dir = strdup(cx_store_dir(s));
    sqlite3 *db = cx_store_sqlite(s);
    CX_CHECK(sqlite3_exec(db, "DELETE FROM typo_terms; UPDATE fts_state SET tokenizer = 1",
                          NULL, NULL, NULL) == SQLITE_OK);
    cx_store_free(s);
    s = NULL;
    CX_CHECK_OK(cx_store_open(&s, dir));
    if (!s)
        goto out;
    CX_CHECK(!known(s, "loader"));
    CX_CHECK_OK(cx_store_fts_sync(s, 0));
    CX_CHECK(known(s, "loader") && known(s, "jubilant") && known(s, "parseconfigfile"));

    /* a version 4 store gets it from the index's vocabulary */
    CX_CHECK(sqlite3_exec(cx_store_sqlite(s), "DROP TABLE typo_terms; PRAGMA user_version = 4",
                          NULL, NULL, NULL) == SQLITE_OK);
    cx_store_free(s);
    s = NULL;
    CX_CHECK_OK(cx_store_open(&s, dir));
    if (!s)
        goto out;
    CX_CHECK_INT(q1(s, "PRAGMA user_version"), 8);
    CX_CHECK(known(s, "loader") && known(s, "jubilant") && known(s, "prase_config"));
    CX_CHECK(!known(s, "~deadlock") && !known(s, "12345"));
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM typo_terms WHERE term GLOB '*[^a-z_]*'"), 0);
out:
    cx_store_free(s);
    free(dir);
}

/* ---- search with corrections ---- */

static json_t *run(cx_store *s, const char *text, cx_search_mode mode) {
    cx_search_query q = {.text = text, .limit = 20, .mode = mode};
    json_t *out = NULL;
    if (cx_search_run(s, &q, &out) != 0) {
        fprintf(stderr, "search '%s': %s\n", text, cx_error_last());
        return NULL;
    }
    return out;
}

static int pos(const json_t *res, const char *id) {
    json_t *rs = json_object_get(res, "results");
    for (size_t i = 0; i < json_array_size(rs); i++)
        if (strcmp(json_string_value(json_object_get(json_array_get(rs, i), "id")), id) == 0)
            return (int)i;
    return -1;
}

static const char *fixed(const json_t *res, const char *word) {
    return json_string_value(json_object_get(json_object_get(res, "corrected"), word));
}

/* The neighbours of a word that the dictionary holds, in their order:
 * read through one range scan for those sharing the word's first letters
 * and a look-up for each other, the same as a look-up for each. */
typedef struct seq {
    char buf[240];
    size_t len;
} seq;

static bool add_known(void *ud, const char *t, size_t n) {
    seq *q = ud;
    if (q->len + n + 1 < sizeof q->buf) {
        memcpy(q->buf + q->len, t, n);
        q->len += n;
        q->buf[q->len++] = ' ';
        q->buf[q->len] = '\0';
    }
    return true;
}

typedef struct cands {
    char buf[16384];
    size_t len, n;
} cands;

static bool add_cand(void *ud, const char *t, size_t n) {
    cands *c = ud;
    if (c->len + n + 1 >= sizeof c->buf)
        return false;
    memcpy(c->buf + c->len, t, n);
    c->buf[c->len + n] = '\0';
    c->len += n + 1;
    c->n++;
    return true;
}

static void test_known_each(void) {
    cx_store *s = fresh("known-each");
    static const char *const notes[] = {
        "parse the config, parser parses configs; a praser is no word",
        "the queue rotates: rotate_queue qeue queues queued quorum",
        "retry retries retrying retired retire_policy return returns",
        "config_file configs confirm confident conflict zebra zz_top",
        NULL};
    for (int i = 0; notes[i]; i++)
        free(observe(s, notes[i]));
    CX_CHECK_OK(cx_store_fts_sync(s, 0));
    static const char *const words[] = {"pasre", "qeue", "retyr", "confg", "parsee",
                                        "zebr", "rotat", "xyzzy", "zz_to", NULL};
    int found = 0;
    for (int w = 0; words[w]; w++) {
        cands *c = calloc(1, sizeof *c);
        seq *want = calloc(1, sizeof *want), *got = calloc(1, sizeof *got);
        if (!c || !want || !got)
            break;
        size_t n = strlen(words[w]);
        cx_typo_neighbours(words[w], n, add_cand, c);
        const char *p = c->buf;
        for (size_t i = 0; i < c->n; i++, p += strlen(p) + 1)
            if (known(s, p))
                add_known(want, p, strlen(p));
        for (size_t np = 0; np <= 3; np++) {
            memset(got, 0, sizeof *got);
            CX_CHECK_OK(cx_store_terms_known_each(s, c->buf, c->n, words[w], np, add_known, got));
            CX_CHECK_STR(got->buf, want->buf);
        }
        found += want->len > 0;
        free(c);
        free(want);
        free(got);
    }
    CX_CHECK(found >= 6); /* most of the words have neighbours in the dictionary */
    cx_store_free(s);
}

static void test_search(void) {
    cx_store *s = fresh("search");
    if (!s)
        return;
    char *target = observe(s, "The loader calls parseConfigFile before the server starts.");
    char *exact = observe(s, "A pasre step appears in the legacy build script.");
    char *parse[12];
    for (int i = 0; i < 12; i++) {
        char body[128];
        snprintf(body, sizeof body, "Note %d: parse the header of frame %d first.", i, i);
        parse[i] = observe(s, body);
    }
    char *rare = observe(s, "The zygote cache is warmed at boot.");
    char *rot = observe(s, "rotateQueueWindow runs once per request in src/obs/queue.c.");
    char *vt = observe(s, "validate_tenant_path must hold the lock; hydrateBucketPlan too.");
    char *deadlock = observe(s, "A deadlock in the connection pool when retries overlap.");
    free(observe(s, "Take the lock before the flush."));

    /* an identifier with a typo in a part, and whole */
    json_t *res = run(s, "pasreConfigFile", CX_SEARCH_KEYWORD);
    CX_CHECK(res && pos(res, target) == 0);
    CX_CHECK_STR(res ? fixed(res, "pasreconfigfile") : NULL, "parseconfigfile");
    json_decref(res);
    res = run(s, "prase_config", CX_SEARCH_KEYWORD);
    CX_CHECK(res && pos(res, target) >= 0);
    json_decref(res);
    /* a word: the exact (rare) match first, the expansions after it */
    res = run(s, "pasre", CX_SEARCH_KEYWORD);
    CX_CHECK(res && pos(res, exact) == 0);
    CX_CHECK(res && pos(res, parse[0]) > 0 && pos(res, parse[11]) > 0);
    CX_CHECK_STR(res ? fixed(res, "pasre") : NULL, "parse");
    json_decref(res);
    /* a typo with no exact match, in a sentence, in hybrid mode too */
    res = run(s, "deadlokc connection", CX_SEARCH_KEYWORD);
    CX_CHECK(res && pos(res, deadlock) == 0);
    CX_CHECK_STR(res ? fixed(res, "deadlokc") : NULL, "deadlock");
    json_decref(res);
    res = run(s, "conection pool", CX_SEARCH_HYBRID);
    CX_CHECK(res && pos(res, deadlock) == 0);
    CX_CHECK_STR(res ? fixed(res, "conection") : NULL, "connection");
    json_decref(res);
    /* a short word (4 letters) only by a transposition: lcok is lock,
     * lick is no typo of it */
    res = run(s, "lcok", CX_SEARCH_KEYWORD);
    CX_CHECK_STR(res ? fixed(res, "lcok") : NULL, "lock");
    json_decref(res);
    res = run(s, "lick", CX_SEARCH_KEYWORD);
    CX_CHECK(res && !json_object_get(res, "corrected"));
    json_decref(res);
    /* a part of an identifier of several parts: every edit even when short
     * (its sibling parts must match too), three letters too, and counted as
     * written (hydrat has the stem of hydrate, but parts are not stemmed) */
    res = run(s, "rotateQeueWindow", CX_SEARCH_KEYWORD);
    CX_CHECK(res && pos(res, rot) == 0);
    CX_CHECK_STR(res ? fixed(res, "qeue") : NULL, "queue");
    json_decref(res);
    res = run(s, "validate_tenant_pth", CX_SEARCH_KEYWORD);
    CX_CHECK(res && pos(res, vt) == 0);
    CX_CHECK_STR(res ? fixed(res, "pth") : NULL, "path");
    json_decref(res);
    res = run(s, "hydrat_bucket_plan", CX_SEARCH_KEYWORD);
    CX_CHECK(res && pos(res, vt) == 0);
    CX_CHECK_STR(res ? fixed(res, "hydrat") : NULL, "hydrate");
    json_decref(res);
    /* the same short words alone are held to the stricter rules */
    res = run(s, "qeue", CX_SEARCH_KEYWORD);
    CX_CHECK(res && !json_object_get(res, "corrected"));
    json_decref(res);
    res = run(s, "pth", CX_SEARCH_KEYWORD);
    CX_CHECK(res && !json_object_get(res, "corrected"));
    json_decref(res);
    /* a correct rare word with no common neighbour is not corrected away,
     * and a correct word is never reported */
    res = run(s, "zygote", CX_SEARCH_KEYWORD);
    CX_CHECK(res && pos(res, rare) == 0 && !json_object_get(res, "corrected"));
    json_decref(res);
    res = run(s, "parse header", CX_SEARCH_KEYWORD);
    CX_CHECK(res && !json_object_get(res, "corrected"));
    json_decref(res);
    /* semantic mode corrects nothing */
    res = run(s, "pasre", CX_SEARCH_SEMANTIC);
    CX_CHECK(res && !json_object_get(res, "corrected"));
    json_decref(res);

    /* hostile: as many misspelt words as a query holds (CX_SEARCH_MAX_QUERY
     * bytes; a longer one is refused), 64-byte words, non-ASCII and FTS5
     * syntax; each answers (within a second: a bound the issue states for
     * answers) */
    size_t cap = CX_SEARCH_MAX_QUERY + 1;
    char *q = malloc(cap);
    size_t n = 0;
    for (int i = 0; i < 1000 && n + 12 < cap; i++)
        n += (size_t)snprintf(q + n, cap - n, "%s ",
                              (i % 3) ? "pasre" : i % 2 ? "conectoin" : "deadlokc");
    const char *more[] = {q,
                          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa "
                          "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
                          "pa\"sre* :^ NEAR(pasre conf) \"pasre OR -pasre ^pasre",
                          "пасре ünïcödé pasré 连接池 \xff\xfe pasre", NULL};
    /* distinct misspelt words too, each needing its own look-ups */
    char *distinct = malloc(cap);
    size_t m = 0;
    for (int i = 0; i < 1000 && m + 12 < cap; i++)
        m += (size_t)snprintf(distinct + m, cap - m, "q%c%cxw ", 'a' + i % 26, 'a' + (i / 26) % 26);
    for (int i = 0; more[i] || i == 4; i++) {
        const char *text = more[i] ? more[i] : distinct;
        uint64_t t0 = cx_clock_mono_ns();
        res = run(s, text, i % 2 ? CX_SEARCH_KEYWORD : CX_SEARCH_HYBRID);
        uint64_t ms = (cx_clock_mono_ns() - t0) / 1000000;
        CX_CHECK(res != NULL);
        if (ms >= 1000)
            fprintf(stderr, "hostile query %d took %llu ms\n", i, (unsigned long long)ms);
        CX_CHECK(ms < 1000);
        json_decref(res);
        if (!more[i])
            break;
    }
    cx_search_query big = {.text = NULL, .limit = 10, .mode = CX_SEARCH_KEYWORD};
    char *huge = malloc(8 * CX_SEARCH_MAX_QUERY);
    for (size_t i = 0; i + 6 < 8 * CX_SEARCH_MAX_QUERY; i += 6)
        memcpy(huge + i, "pasre ", 6);
    huge[8 * CX_SEARCH_MAX_QUERY - 6] = '\0';
    big.text = huge;
    res = NULL;
    CX_CHECK_INT(cx_search_run(s, &big, &res), CX_ELIMIT);
    CX_CHECK(res == NULL);
    free(huge);
    free(q);
    free(distinct);
    free(target);
    free(exact);
    for (int i = 0; i < 12; i++)
        free(parse[i]);
    free(rare);
    free(rot);
    free(vt);
    free(deadlock);
    cx_store_free(s);
}

int main(void) {
    root = cx_test_tmpdir();
    if (!root) {
        fprintf(stderr, "no temporary directory\n");
        return 2;
    }
    test_distance();
    test_neighbours();
    test_builder();
    test_embed_text();
    test_phrase_numbering();
    test_dictionary();
    test_known_each();
    test_search();
    cx_test_rmrf(root);
    free(root);
    return cx_test_done();
}
