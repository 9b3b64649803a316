/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for keyword search over a real store: ranking (title over
 * body), AND first then OR, filters, snippets, the token budget, private
 * items, hostile queries and limits. */
#include "test.h"

#include "search/fts.h"
#include "search/search.h"
#include "store/store-search.h" /* the connection, to check scores */
#include "store/store.h"
#include "util/fsx.h"

#include <math.h>

static char *root;
static cx_store *s;
static const cx_actor who = {.author = "ada", .agent = "test"};

static const char *sget(json_t *o, const char *key) {
    return json_string_value(json_object_get(o, key));
}

static char *observe(const cx_note *n) {
    json_t *out = NULL;
    int r = cx_store_observe(s, &who, n, 1, NULL, NULL, &out);
    if (r) {
        fprintf(stderr, "observe: %s\n", cx_error_last());
        return strdup("");
    }
    char *id = strdup(sget(json_array_get(json_object_get(out, "results"), 0), "id"));
    json_decref(out);
    return id;
}

/* Runs a keyword search; returns the full answer (explain: every field and
 * why) or NULL; the caller frees it. The hybrid and semantic modes are
 * tested in test-hybrid.c, the compact answer in test_compact_answer. */
static json_t *search(const char *text, size_t limit) {
    cx_search_query q = {.text = text, .limit = limit, .mode = CX_SEARCH_KEYWORD, .explain = true};
    json_t *out = NULL;
    int r = cx_search_run(s, &q, &out);
    if (r) {
        fprintf(stderr, "search '%s': %s\n", text, cx_error_last());
        return NULL;
    }
    return out;
}

static size_t count(json_t *res) {
    return (size_t)json_integer_value(json_object_get(res, "count"));
}

static const char *id_at(json_t *res, size_t i) {
    return sget(json_array_get(json_object_get(res, "results"), i), "id");
}

static bool has_id(json_t *res, const char *id) {
    for (size_t i = 0; i < json_array_size(json_object_get(res, "results")); i++)
        if (strcmp(id_at(res, i), id) == 0)
            return true;
    return false;
}

static char *title_hit, *body_hit, *both, *tagged, *priv, *draft_id;

static void setup(void) {
    const char *t1[] = {"ops", "release"};
    const char *t2[] = {"ops"};
    cx_note a = {.title = "Deploy pipeline", .body = "How releases go out to production."};
    cx_note b = {.body = "Sometimes we deploy on a Friday, which the on-call person dislikes; "
                         "please avoid that whenever possible."};
    cx_note c = {.body = "Friday deploys need a second reviewer.", .tags = {t1, 2},
                 .subcortex = "release"};
    cx_note d = {.body = "Release notes live in docs/CHANGES.md.", .tags = {t2, 1}};
    cx_note e = {.body = "My private deploy checklist.", .visibility = "private"};
    cx_note f = {.body = "The résumé parser handles naïve dates."};
    title_hit = observe(&a);
    body_hit = observe(&b);
    both = observe(&c);
    tagged = observe(&d);
    priv = observe(&e);
    free(observe(&f));
    cx_note g = {.title = "Reviewer", .body = "reviewer reviewer"};
    free(observe(&g));
    cx_note dr = {.title = "Deploy on Fridays", .body = "Proposal: never deploy on Fridays.",
                  .subcortex = "release"};
    json_t *out = NULL;
    CX_CHECK_OK(cx_store_draft(s, &who, &dr, &out));
    draft_id = strdup(sget(out, "id"));
    json_decref(out);
}

static void test_ranking(void) {
    json_t *res = search("deploy", 10);
    CX_CHECK(res != NULL);
    if (!res)
        return;
    CX_CHECK_STR(sget(res, "query"), "deploy");
    CX_CHECK(json_is_false(json_object_get(res, "truncated")));
    /* and "deploys" by its stem, below every note with "deploy" itself */
    CX_CHECK_INT(count(res), 5);
    CX_CHECK(count(res) == 5 && strcmp(id_at(res, 4), both) == 0);
    /* a title match ranks above a body-only match */
    size_t ti = 99, bi = 99;
    json_t *results = json_object_get(res, "results");
    for (size_t i = 0; i < json_array_size(results); i++) {
        if (strcmp(id_at(res, i), title_hit) == 0)
            ti = i;
        if (strcmp(id_at(res, i), body_hit) == 0)
            bi = i;
    }
    CX_CHECK(ti < bi && bi < 99);
    /* scores: higher is better, in order */
    double prev = 1e300;
    bool ordered = true;
    for (size_t i = 0; i < json_array_size(results); i++) {
        double sc = json_real_value(json_object_get(json_array_get(results, i), "score"));
        ordered = ordered && sc <= prev && sc > 0;
        prev = sc;
    }
    CX_CHECK(ordered);
    /* the result shape */
    json_t *r0 = json_array_get(results, bi);
    CX_CHECK_STR(sget(r0, "kind"), "observation");
    CX_CHECK_STR(sget(r0, "status"), "recorded");
    CX_CHECK_STR(sget(r0, "subcortex"), "general");
    CX_CHECK_STR(sget(r0, "title"), "");
    CX_CHECK(json_is_array(json_object_get(r0, "tags")));
    CX_CHECK(sget(r0, "updated_at") != NULL);
    CX_CHECK(json_is_real(json_object_get(r0, "score")));
    const char *snip = sget(r0, "snippet");
    CX_CHECK(snip && strstr(snip, "\xc2\xab" "deploy" "\xc2\xbb") != NULL);
    /* private items are searchable locally */
    CX_CHECK(has_id(res, priv));
    json_decref(res);

    /* prefix, diacritics folded, case */
    res = search("DEPL*", 10);
    CX_CHECK(res && count(res) == 5); /* deploy and deploys */
    json_decref(res);
    res = search("resume naive", 10);
    CX_CHECK(res && count(res) == 1);
    json_decref(res);
}

static void test_all_then_any(void) {
    /* every word first: the one item with both words leads */
    json_t *res = search("friday reviewer", 10);
    CX_CHECK(res && count(res) >= 2);
    if (res)
        CX_CHECK_STR(id_at(res, 0), both);
    /* then items with any word, once each */
    CX_CHECK(res && has_id(res, body_hit));
    bool unique = true;
    for (size_t i = 0; res && i < count(res); i++)
        for (size_t j = i + 1; j < count(res); j++)
            unique = unique && strcmp(id_at(res, i), id_at(res, j)) != 0;
    CX_CHECK(unique);
    json_decref(res);

    res = search("friday reviewer", 1);
    CX_CHECK(res && count(res) == 1);
    if (res)
        CX_CHECK_STR(id_at(res, 0), both);
    json_decref(res);

    /* a word the tokenizer cannot see does not empty the AND pass (which
     * would put the note that is best on "reviewer" alone in front) */
    res = search("friday \xe2\x80\x94 reviewer \xc2\xab", 1);
    CX_CHECK(res && count(res) == 1);
    if (res && count(res) == 1)
        CX_CHECK_STR(id_at(res, 0), both);
    json_decref(res);

    /* phrases stay phrases */
    res = search("\"second reviewer\"", 10);
    CX_CHECK(res && count(res) == 1);
    json_decref(res);
    res = search("\"reviewer second\"", 10);
    CX_CHECK(res && count(res) == 0);
    json_decref(res);
}

static void test_filters(void) {
    cx_search_query q = {.text = "deploy friday release", .limit = 10, .mode = CX_SEARCH_KEYWORD};
    json_t *res = NULL;
    q.kind = "draft";
    CX_CHECK_OK(cx_search_run(s, &q, &res));
    CX_CHECK(res && count(res) == 1 && strcmp(id_at(res, 0), draft_id) == 0);
    CX_CHECK_STR(sget(json_array_get(json_object_get(res, "results"), 0), "title"),
                 "Deploy on Fridays");
    json_decref(res);
    res = NULL;
    q.kind = NULL;
    q.status = "pending";
    CX_CHECK_OK(cx_search_run(s, &q, &res));
    CX_CHECK(res && count(res) == 1);
    json_decref(res);
    res = NULL;
    q.status = NULL;
    q.subcortex = "release";
    CX_CHECK_OK(cx_search_run(s, &q, &res));
    CX_CHECK(res && count(res) == 2 && has_id(res, both) && has_id(res, draft_id));
    json_decref(res);
    res = NULL;
    q.subcortex = NULL;
    const char *t_ops[] = {"ops"}, *t_both[] = {"release", "ops"}, *t_none[] = {"nope"};
    q.tags = (cx_strv){t_ops, 1};
    CX_CHECK_OK(cx_search_run(s, &q, &res));
    CX_CHECK(res && count(res) == 2 && has_id(res, both) && has_id(res, tagged));
    json_decref(res);
    res = NULL;
    q.tags = (cx_strv){t_both, 2};
    CX_CHECK_OK(cx_search_run(s, &q, &res));
    CX_CHECK(res && count(res) == 1 && has_id(res, both));
    json_decref(res);
    res = NULL;
    q.tags = (cx_strv){t_none, 1};
    CX_CHECK_OK(cx_search_run(s, &q, &res));
    CX_CHECK(res && count(res) == 0);
    json_decref(res);
    res = NULL;

    q.tags = (cx_strv){0};
    q.kind = "bogus";
    CX_CHECK_INT(cx_search_run(s, &q, &res), CX_EINVAL);
    CX_CHECK(strstr(cx_error_last(), "kind") != NULL);
    q.kind = NULL;
    q.status = "done";
    CX_CHECK_INT(cx_search_run(s, &q, &res), CX_EINVAL);
    q.status = NULL;
    q.limit = CX_SEARCH_MAX_LIMIT + 1;
    CX_CHECK_INT(cx_search_run(s, &q, &res), CX_ELIMIT);
    q.limit = 10;
    char big[CX_SEARCH_MAX_QUERY + 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    q.text = big;
    CX_CHECK_INT(cx_search_run(s, &q, &res), CX_ELIMIT);
    CX_CHECK(res == NULL);
}

static void test_other_kinds(void) {
    json_t *out = NULL;
    CX_CHECK_OK(cx_store_comment(s, &who, draft_id, "Agreed, zebra deploys are risky.", &out));
    json_decref(out);
    out = NULL;
    const char content[] = "step one";
    cx_publish p = {.name = "Runbook for quokka outages", .data = content,
                    .len = sizeof content - 1};
    CX_CHECK_OK(cx_store_publish(s, &who, &p, &out));
    char *art = strdup(sget(out, "artifact_id"));
    json_decref(out);

    json_t *res = search("zebra", 10);
    CX_CHECK(res && count(res) == 1);
    CX_CHECK_STR(sget(json_array_get(json_object_get(res, "results"), 0), "kind"), "comment");
    json_decref(res);
    res = search("quokka", 10);
    CX_CHECK(res && count(res) == 1 && has_id(res, art));
    /* an artifact without a description: the snippet comes from the title */
    const char *snip = res ? sget(json_array_get(json_object_get(res, "results"), 0), "snippet")
                           : NULL;
    CX_CHECK(snip && strstr(snip, "\xc2\xabquokka\xc2\xbb") != NULL);
    json_decref(res);
    free(art);
}

static void test_budget(void) {
    char body[1200];
    for (int i = 0; i < 30; i++) {
        int n = snprintf(body, sizeof body, "walrus entry %d:", i);
        while (n < (int)sizeof body - 8)
            n += snprintf(body + n, sizeof body - (size_t)n, " filler%d", n % 97);
        cx_note note = {.body = body};
        free(observe(&note));
    }
    cx_search_query q = {.text = "walrus", .limit = 30, .max_tokens = 300,
                         .mode = CX_SEARCH_KEYWORD};
    json_t *res = NULL;
    CX_CHECK_OK(cx_search_run(s, &q, &res));
    CX_CHECK(res && json_is_true(json_object_get(res, "truncated")));
    CX_CHECK(res && count(res) >= 1 && count(res) < 30);
    CX_CHECK(res && count(res) == json_array_size(json_object_get(res, "results")));
    size_t bytes = res ? json_dumpb(res, NULL, 0, JSON_COMPACT) : 0;
    CX_CHECK(bytes <= 300 * 4);
    json_decref(res);
    res = NULL;

    /* a budget too small for anything: still one result, snippet cut */
    q.max_tokens = 10;
    CX_CHECK_OK(cx_search_run(s, &q, &res));
    CX_CHECK(res && count(res) == 1 && json_is_true(json_object_get(res, "truncated")));
    json_decref(res);
    res = NULL;

    /* enough budget: everything, not truncated */
    q.max_tokens = 20000;
    CX_CHECK_OK(cx_search_run(s, &q, &res));
    CX_CHECK(res && count(res) == 30 && json_is_false(json_object_get(res, "truncated")));
    json_decref(res);
    res = NULL;

    /* default limit is 10 */
    q.limit = 0;
    CX_CHECK_OK(cx_search_run(s, &q, &res));
    CX_CHECK(res && count(res) == 10);
    json_decref(res);
}

static void test_hostile(void) {
    static const char *const queries[] = {
        "", "   ", "!!!", "\"", "\"\"", "\"deploy", "deploy\"", "AND", "OR OR OR", "NOT deploy",
        "NEAR(deploy friday, 2)", "title:deploy", "{title}:deploy", "^deploy", "deploy*",
        "*deploy", "(deploy", "deploy)", "-deploy", "+deploy", "deploy AND", "a\"b\"c",
        "'; DROP TABLE items; --", "\xff\xfe\xfd", "deploy\xc0\xaf", "\xe2\x80\x94", NULL};
    int errors = 0;
    for (int i = 0; queries[i]; i++) {
        cx_search_query q = {.text = queries[i]};
        json_t *res = NULL;
        if (cx_search_run(s, &q, &res) != 0) {
            fprintf(stderr, "query '%s' failed: %s\n", queries[i], cx_error_last());
            errors++;
        } else if (!json_is_string(json_object_get(res, "query")) ||
                   !json_is_array(json_object_get(res, "results"))) {
            errors++;
        }
        json_decref(res);
    }
    CX_CHECK_INT(errors, 0);
    json_t *res = search("!!! ???", 10);
    CX_CHECK(res && count(res) == 0 && json_is_false(json_object_get(res, "truncated")));
    json_decref(res);
    /* invalid UTF-8 is echoed as U+FFFD */
    res = search("deploy\xff", 10);
    CX_CHECK_STR(res ? sget(res, "query") : NULL, "deploy\xef\xbf\xbd");
    CX_CHECK(res && count(res) > 0);
    json_decref(res);
    res = search("'; DROP TABLE items; --", 10);
    json_decref(res);
    res = search("deploy", 10);
    CX_CHECK(res && count(res) > 0); /* still there */
    json_decref(res);
}

/* bm25() as SQLite computes it for one item and an expression. */
static double sqlite_bm25(const char *expr, const char *id) {
    sqlite3_stmt *st = NULL;
    double v = 1e9;
    if (sqlite3_prepare_v2(cx_store_sqlite(s),
                           "SELECT bm25(items_fts, 4.0, 1.0, 2.0) FROM items_fts WHERE items_fts"
                           " MATCH ?1 AND rowid = (SELECT rid FROM items WHERE id = ?2)",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, expr, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_double(st, 0);
    }
    sqlite3_finalize(st);
    return v;
}

/* How many of the results of `queries` score other than -bm25(items_fts,
 * 4, 1, 2) as SQLite computes it; *total counts the results. */
static int bm25_mismatches(const char *const *queries, int *total) {
    int bad = 0;
    *total = 0;
    for (int k = 0; queries[k]; k++) {
        json_t *res = search(queries[k], 50);
        char *all = NULL, *any = NULL;
        cx_fts_build_query(queries[k], CX_FTS_ALL, &all);
        cx_fts_build_query(queries[k], CX_FTS_ANY, &any);
        json_t *results = res ? json_object_get(res, "results") : NULL;
        for (size_t i = 0; i < json_array_size(results); i++) {
            json_t *r = json_array_get(results, i);
            double got = json_real_value(json_object_get(json_object_get(r, "why"), "bm25"));
            double want = -sqlite_bm25(all, sget(r, "id"));
            if (want < -1e8) /* an OR-only match: scored with the OR expression */
                want = -sqlite_bm25(any, sget(r, "id"));
            (*total)++;
            bad += !(fabs(got - want) < 1e-9);
        }
        free(all);
        free(any);
        json_decref(res);
    }
    return bad;
}

/* On a small store the scores are exactly -bm25(items_fts, 4, 1, 2). */
static void test_scores_are_bm25(void) {
    static const char *const queries[] = {"deploy", "friday reviewer", "release notes",
                                          "\"second reviewer\"", "depl*", NULL};
    int total = 0, bad = bm25_mismatches(queries, &total);
    CX_CHECK(total > 10);
    CX_CHECK_INT(bad, 0);
}

/* Every block of the store's row lengths (store/lengths.c) that it holds
 * at today's edits: *blocks of them, each row's length checked against
 * FTS5's docsize row; the rows that differ. */
static int stored_lengths_wrong(cx_store *t, int *blocks) {
    int64_t indexed = 0, edits = 0;
    int wrong = 0;
    *blocks = 0;
    CX_CHECK_OK(cx_store_fts_generation(t, &indexed, &edits));
    uint16_t *lens = calloc(CX_STORE_LENGTHS_BLOCK, sizeof *lens);
    sqlite3_stmt *st = NULL;
    CX_CHECK(sqlite3_prepare_v2(cx_store_sqlite(t), "SELECT id, sz FROM items_fts_docsize"
                                " ORDER BY id", -1, &st, NULL) == SQLITE_OK);
    int64_t blk = -1;
    bool got = false;
    while (lens && st && sqlite3_step(st) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        if (id / CX_STORE_LENGTHS_BLOCK != blk) {
            blk = id / CX_STORE_LENGTHS_BLOCK;
            CX_CHECK_OK(cx_store_lengths_get(t, blk, edits, indexed, false, lens, &got));
            *blocks += got;
        }
        uint16_t want = cx_store_lengths_of_docsize(sqlite3_column_blob(st, 1),
                                                    (size_t)sqlite3_column_bytes(st, 1));
        wrong += got && lens[id % CX_STORE_LENGTHS_BLOCK] != want;
    }
    sqlite3_finalize(st);
    free(lens);
    return wrong;
}

/* The row lengths kept in the store: indexing writes them, an edit of the
 * index leaves them aside until maintenance rewrites them, a damaged copy
 * is ignored, and a new handle (a new process) ranks from them with the
 * scores SQLite's bm25() gives. */
static void test_stored_lengths(void) {
    char *dir = cx_test_tmpdir();
    cx_store *t = NULL, *keep = s;
    CX_CHECK(dir && cx_store_open(&t, dir) == 0);
    if (!t)
        return;
    s = t;
    enum { N = 4600, BATCH = 460 }; /* two blocks of row ids */
    cx_note *batch = calloc(BATCH, sizeof *batch);
    char (*bodies)[160] = calloc(BATCH, 160);
    static const char *const words[] = {"ledger", "rollback", "quorum", "shard", "replica"};
    char *first_id = NULL;
    for (int off = 0; batch && bodies && off < N; off += BATCH) {
        for (int i = 0; i < BATCH; i++) {
            int k = off + i, len = 0;
            len += snprintf(bodies[i] + len, 160 - (size_t)len, "note %d on the %s", k,
                            words[k % 5]);
            for (int w = 0; w < k % 13; w++) /* lengths that differ */
                len += snprintf(bodies[i] + len, 160 - (size_t)len, " %s", words[(k + w) % 5]);
            batch[i] = (cx_note){.body = bodies[i], .title = k % 11 ? NULL : "Shard ledger"};
        }
        json_t *out = NULL;
        CX_CHECK_OK(cx_store_observe(t, &who, batch, BATCH, NULL, NULL, &out));
        if (!first_id && out)
            first_id = strdup(sget(json_array_get(json_object_get(out, "results"), 0), "id"));
        json_decref(out);
    }
    free(batch);
    free(bodies);
    CX_CHECK_OK(cx_store_fts_sync(t, 0));
    int blocks = 0;
    CX_CHECK_INT(stored_lengths_wrong(t, &blocks), 0);
    CX_CHECK_INT(blocks, 2); /* indexing wrote them */

    static const char *const queries[] = {"ledger", "shard replica", "quorum OR rollback",
                                          "ledger shard quorum", NULL};
    int total = 0;
    cx_store *fresh = NULL; /* a new process: it ranks from the stored lengths */
    CX_CHECK_OK(cx_store_open(&fresh, dir));
    s = fresh;
    CX_CHECK_INT(bm25_mismatches(queries, &total), 0);
    CX_CHECK(total >= 30);
    cx_store_free(fresh);
    s = t;

    /* an edit of an indexed row (another handle, as another process): the
     * stored blocks are of other edits now, and nobody reads them */
    cx_store *other = NULL;
    CX_CHECK_OK(cx_store_open(&other, dir));
    char sql[200];
    snprintf(sql, sizeof sql,
             "UPDATE items SET body = 'ledger ledger ledger, rewritten' WHERE id = '%s'",
             first_id ? first_id : "");
    CX_CHECK(other && sqlite3_exec(cx_store_sqlite(other), sql, NULL, NULL, NULL) == SQLITE_OK);
    cx_store_free(other);
    CX_CHECK_INT(stored_lengths_wrong(t, &blocks), 0);
    CX_CHECK_INT(blocks, 0);
    CX_CHECK_OK(cx_store_open(&fresh, dir));
    s = fresh;
    CX_CHECK_INT(bm25_mismatches(queries, &total), 0);
    json_t *res = search("rewritten", 5);
    CX_CHECK(res && count(res) == 1 && first_id && has_id(res, first_id));
    json_decref(res);
    cx_store_free(fresh);
    s = t;

    /* maintenance writes them again, at the new edits */
    CX_CHECK_OK(cx_store_maintain(t));
    CX_CHECK_INT(stored_lengths_wrong(t, &blocks), 0);
    CX_CHECK_INT(blocks, 2);

    /* a damaged copy (cut short) is not read: FTS5 gives that block */
    CX_CHECK(sqlite3_exec(cx_store_sqlite(t), "UPDATE fts_lengths SET lens = x'0102' WHERE blk = 0",
                          NULL, NULL, NULL) == SQLITE_OK);
    CX_CHECK_INT(stored_lengths_wrong(t, &blocks), 0);
    CX_CHECK_INT(blocks, 1);
    CX_CHECK_OK(cx_store_open(&fresh, dir));
    s = fresh;
    CX_CHECK_INT(bm25_mismatches(queries, &total), 0);
    cx_store_free(fresh);
    s = t;

    /* rows added later extend the last block's copy */
    cx_note n = {.title = "Ledger of shards", .body = "ledger ledger zebrafish shard replica"};
    char *late = observe(&n);
    CX_CHECK_OK(cx_store_fts_sync(t, 0));
    CX_CHECK_INT(stored_lengths_wrong(t, &blocks), 0);
    CX_CHECK_INT(blocks, 1);
    CX_CHECK_OK(cx_store_open(&fresh, dir));
    s = fresh;
    CX_CHECK_INT(bm25_mismatches(queries, &total), 0);
    res = search("zebrafish ledger", 3);
    CX_CHECK(res && has_id(res, late));
    json_decref(res);
    cx_store_free(fresh);
    s = t;

    /* row ids that jump (sqlite_sequence moved on, as by a store that saw
     * many items): indexing counts rows, not ids, so it does not crawl
     * through a million empty chunks, and no empty block is kept */
    static const char *const jumps[] = {"1000000", "1099511627776", NULL};
    for (int j = 0; jumps[j]; j++) {
        snprintf(sql, sizeof sql, "UPDATE sqlite_sequence SET seq = %s WHERE name = 'items'",
                 jumps[j]);
        CX_CHECK(sqlite3_exec(cx_store_sqlite(t), sql, NULL, NULL, NULL) == SQLITE_OK);
        cx_note far[300];
        char fbody[300][48];
        for (int i = 0; i < 300; i++) {
            snprintf(fbody[i], sizeof fbody[i], "far note %d %s", i, j ? "okapi" : "tapir");
            far[i] = (cx_note){.body = fbody[i]};
        }
        json_t *out = NULL;
        CX_CHECK_OK(cx_store_observe(t, &who, far, 300, NULL, NULL, &out));
        json_decref(out);
        CX_CHECK_OK(cx_store_fts_sync(t, 0));
        res = search(j ? "okapi" : "tapir", 5);
        CX_CHECK(res && count(res) == 5);
        json_decref(res);
    }
    CX_CHECK_INT(stored_lengths_wrong(t, &blocks), 0);
    CX_CHECK_INT(blocks, 2); /* 1 and 244; 0 stays damaged; none past 2^24 */
    sqlite3_stmt *st = NULL;
    CX_CHECK(sqlite3_prepare_v2(cx_store_sqlite(t), "SELECT count(*) FROM fts_lengths", -1, &st,
                                NULL) == SQLITE_OK &&
             sqlite3_step(st) == SQLITE_ROW);
    CX_CHECK(st && sqlite3_column_int(st, 0) <= 3);
    sqlite3_finalize(st);
    free(late);
    free(first_id);
    s = keep;
    cx_store_free(t);
    cx_test_rmrf(dir);
    free(dir);
}

static void test_snippets(void) {
    cx_note n = {.body = "Intro words come first here, quite a few of them, enough to fill more "
                         "than half of a snippet window. The résumé parser chokes on ISO dates "
                         "like 2026-01-31 when the locale is set; after that there is a lot more "
                         "text that goes on and on and on until the end of this rather long note."};
    free(observe(&n));
    json_t *res = search("resume parser chokes", 1);
    const char *snip = res ? sget(json_array_get(json_object_get(res, "results"), 0), "snippet")
                           : NULL;
    /* adjacent matches are one highlighted run, with the original accents */
    CX_CHECK(snip && strstr(snip, "\xc2\xabr\xc3\xa9sum\xc3\xa9 parser chokes\xc2\xbb") != NULL);
    /* cut on both sides */
    CX_CHECK(snip && strncmp(snip, "\xe2\x80\xa6", 3) == 0);
    CX_CHECK(snip && strcmp(snip + strlen(snip) - 3, "\xe2\x80\xa6") == 0);
    json_decref(res);

    res = search("\"ISO dates\" pars* chokes", 1);
    snip = res ? sget(json_array_get(json_object_get(res, "results"), 0), "snippet") : NULL;
    CX_CHECK(snip && strstr(snip, "\xc2\xab" "ISO dates" "\xc2\xbb") != NULL);
    CX_CHECK(snip && strstr(snip, "\xc2\xab" "parser chokes" "\xc2\xbb") != NULL);
    json_decref(res);
    /* a phrase highlights only where its words stand together */
    res = search("\"dates ISO\" chokes", 1);
    snip = res ? sget(json_array_get(json_object_get(res, "results"), 0), "snippet") : NULL;
    CX_CHECK(snip && strstr(snip, "\xc2\xab" "ISO") == NULL);
    json_decref(res);
}

/* Every "[REDACTED:github-pat]" in a snippet is whole: the cut is never
 * inside it, whichever side of the match it stands and however far. */
static bool markers_whole(const char *snip) {
    static const char m[] = "[REDACTED:github-pat]";
    for (const char *p = snip; (p = strstr(p, "github")) != NULL; p++) {
        if (p - snip < 10 || strncmp(p - 10, m, sizeof m - 1) != 0)
            return false;
    }
    for (const char *p = snip; (p = strstr(p, "REDACTED")) != NULL; p++) {
        if (p == snip || strncmp(p - 1, m, sizeof m - 1) != 0)
            return false;
    }
    return strstr(snip, "pat]") == NULL || strstr(snip, "github-pat]") != NULL;
}

/* A word of filler for note `k`, position `i`: distinct across notes, so
 * that near-duplicates are not folded into one. */
static const char *filler(int k, int i, char buf[8]) {
    unsigned x = (unsigned)(k * 977 + i * 131 + 7) * 2654435761u;
    buf[0] = 'q';
    for (int j = 1; j < 6; j++, x /= 26)
        buf[j] = (char)('a' + x % 26);
    buf[6] = '\0';
    return buf;
}

static void test_snippet_markers(void) {
    for (int side = 0; side < 2; side++) {
        for (int off = 0; off < 30; off++) {
            char target[16], body[2048], w[8];
            int k = side * 100 + off;
            size_t n = 0;
            snprintf(target, sizeof target, "kea%c%c%c", 'a' + side, 'a' + off / 10, 'a' + off % 10);
            for (int i = 0; i < 30; i++)
                n += (size_t)snprintf(body + n, sizeof body - n, "%s ", filler(k, i, w));
            n += (size_t)snprintf(body + n, sizeof body - n, "%s ",
                                  side ? target : "[REDACTED:github-pat]");
            for (int i = 0; i < off; i++)
                n += (size_t)snprintf(body + n, sizeof body - n, "%s ", filler(k, 30 + i, w));
            n += (size_t)snprintf(body + n, sizeof body - n, "%s ",
                                  side ? "[REDACTED:github-pat]" : target);
            for (int i = 0; i < 30; i++)
                n += (size_t)snprintf(body + n, sizeof body - n, "%s ", filler(k, 60 + i, w));
            cx_note note = {.body = body};
            free(observe(&note));
            json_t *res = search(target, 1);
            const char *snip =
                res ? sget(json_array_get(json_object_get(res, "results"), 0), "snippet") : NULL;
            if (snip && !strstr(snip, target))
                fprintf(stderr, "target %s not in %s\n", target, snip);
            CX_CHECK(snip && strstr(snip, target) != NULL);
            if (snip && !markers_whole(snip))
                fprintf(stderr, "side %d off %d: marker cut: %s\n", side, off, snip);
            CX_CHECK(snip && markers_whole(snip));
            json_decref(res);
        }
    }
}

/* The ten best of a list of ids, in order, as one string. */
static char *ids_of(json_t *res) {
    size_t n = count(res), len = 0;
    char *all = calloc(n + 1, 40);
    for (size_t i = 0; all && i < n; i++) {
        const char *id = id_at(res, i);
        size_t k = strlen(id);
        if (len + k + 2 > (n + 1) * 40)
            break;
        memcpy(all + len, id, k);
        len += k;
        all[len++] = ' ';
    }
    return all;
}

/* Many more matches than the answer: every match is ranked whatever its
 * age, old observations and old curated items (a thread) alike, and
 * skipping rows that cannot make the list changes nothing. */
/* The keyword list of q, with the posting cache and through FTS5 scoring
 * every match, must be the same list. */
static void same_as_fts5(const char *text, size_t want_at_least) {
    cx_search_query kq = {.text = text, .mode = CX_SEARCH_KEYWORD, .limit = 50,
                          .max_tokens = 50000};
    json_t *a = NULL, *b = NULL;
    CX_CHECK_OK(cx_search_run(s, &kq, &a));
    CX_CHECK_OK(cx_search_set_exhaustive(s, true));
    CX_CHECK_OK(cx_search_run(s, &kq, &b));
    CX_CHECK_OK(cx_search_set_exhaustive(s, false));
    char *ia = a ? ids_of(a) : NULL, *ib = b ? ids_of(b) : NULL;
    CX_CHECK(a && count(a) >= want_at_least);
    if (ia && ib)
        CX_CHECK_STR(ia, ib);
    else
        CX_CHECK(ia && ib);
    free(ia);
    free(ib);
    json_decref(a);
    json_decref(b);
}

static void test_window(void) {
    cx_note first = {.title = "Gnu herd census", .body = "The gnu herd, counted: gnu gnu."};
    char *first_id = observe(&first);
    json_t *out = NULL;
    cx_note old = {.title = "Gnu migration runbook", .body = "How the gnu migration works."};
    CX_CHECK_OK(cx_store_draft(s, &who, &old, &out));
    char *old_id = strdup(sget(out, "id"));
    json_decref(out);
    out = NULL;
    CX_CHECK_OK(cx_store_review(s, &who, old_id, "approve", NULL, &out));
    json_decref(out);

    enum { N = 2600 }; /* more than the first step of pruning scores (rank.c) */
    cx_note *batch = calloc(N, sizeof *batch);
    char (*bodies)[64] = calloc(N, 64);
    for (int i = 0; i < N; i++) {
        snprintf(bodies[i], 64, "gnu note number %d about %s", i, i % 3 ? "herds" : "the herd");
        batch[i].body = bodies[i];
    }
    for (int off = 0; off < N; off += 325) {
        out = NULL;
        CX_CHECK_OK(cx_store_observe(s, &who, batch + off, 325, NULL, NULL, &out));
        json_decref(out);
    }
    json_t *res = search("gnu", 10);
    CX_CHECK(res && count(res) == 10);
    CX_CHECK(res && has_id(res, old_id));   /* title matches rank first */
    CX_CHECK(res && has_id(res, first_id)); /* the oldest of all */
    json_decref(res);
    static const char *const queries[] = {"gnu", "gnu herds", "gnu migration number 7",
                                          "herds census runbook", "gnu*", NULL};
    for (int k = 0; queries[k]; k++)
        same_as_fts5(queries[k], 1);
    cx_search_query q = {.text = "gnu", .kind = "thread", .mode = CX_SEARCH_KEYWORD};
    res = NULL;
    CX_CHECK_OK(cx_search_run(s, &q, &res));
    CX_CHECK(res && count(res) == 1 && has_id(res, old_id));
    json_decref(res);
    free(batch);
    free(bodies);
    free(old_id);
    free(first_id);
}

/* A keyword search with room for every result. */
static json_t *search_all(const char *text, size_t limit) {
    cx_search_query q = {.text = text, .limit = limit, .mode = CX_SEARCH_KEYWORD,
                         .max_tokens = 50000};
    json_t *out = NULL;
    CX_CHECK_OK(cx_search_run(s, &q, &out));
    return out;
}

static int64_t fts_edits(void) {
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(cx_store_sqlite(s), "SELECT edits FROM fts_state", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The posting cache (search/postings.c) stays true as the store changes:
 * rows indexed after a list was read extend it, an edit or a delete of an
 * indexed row (fts_state.edits moves) drops what was read, writes through
 * another connection are seen, and with no memory at all, or only some,
 * the answers are the same. Every list is compared with FTS5 scoring every
 * match. */
static void test_posting_cache(void) {
    static const char *const animals[] = {"wombats", "emus", "dingoes", "koalas", "possums"};
    char body[160];
    char *ids[40];
    for (int i = 0; i < 40; i++) {
        snprintf(body, sizeof body, "quokka sighting %d near %s%s", i * 7919 % 1000,
                 animals[i % 5],
                 i % 4 ? "" : ", the quokka colony and its quokka census");
        cx_note n = {.body = body, .title = i % 10 == 3 ? "Quokka census" : NULL};
        ids[i] = observe(&n);
    }
    json_t *res = search_all("quokka", 50);
    size_t all = res ? count(res) : 0;
    CX_CHECK(all >= 35); /* near-duplicates may fold */
    json_decref(res);
    same_as_fts5("quokka", all);
    same_as_fts5("quokka wombats", 5);
    same_as_fts5("quokka OR census", all);

    /* rows added since: the cached list grows by them (no edit counted) */
    int64_t edits = fts_edits();
    CX_CHECK(edits >= 0);
    cx_note later = {.title = "Quokka quokka", .body = "The newest quokka census of all: quokka."};
    char *later_id = observe(&later);
    res = search_all("quokka", 5);
    CX_CHECK(res && count(res) == 5 && has_id(res, later_id));
    json_decref(res);
    CX_CHECK_INT(fts_edits(), edits);
    same_as_fts5("quokka", all + 1);

    /* another store handle, as another process: its delete of an indexed
     * row is counted, and the row is gone from the next answer */
    cx_store *other = NULL;
    CX_CHECK_OK(cx_store_open(&other, cx_store_dir(s)));
    if (!other)
        return;
    sqlite3 *db = cx_store_sqlite(other);
    char sql[160];
    snprintf(sql, sizeof sql, "DELETE FROM items WHERE id = '%s'", later_id);
    CX_CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
    CX_CHECK(fts_edits() > edits);
    res = search_all("quokka", 50);
    CX_CHECK(res && count(res) == all && !has_id(res, later_id));
    json_decref(res);
    same_as_fts5("quokka census", 5);

    /* an edit of an indexed row's text: the old words no longer find it */
    edits = fts_edits();
    snprintf(sql, sizeof sql, "UPDATE items SET body = 'platypus only now' WHERE id = '%s'",
             ids[1]);
    CX_CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
    CX_CHECK(fts_edits() > edits);
    res = search_all("quokka", 50);
    CX_CHECK(res && count(res) == all - 1 && !has_id(res, ids[1]));
    json_decref(res);
    res = search_all("platypus", 5);
    CX_CHECK(res && count(res) == 1 && has_id(res, ids[1]));
    json_decref(res);

    /* rows it adds are found */
    json_t *out = NULL;
    cx_note n2 = {.title = "Quokka census", .body = "quokka quokka quokka, counted elsewhere"};
    CX_CHECK_OK(cx_store_observe(other, &who, &n2, 1, NULL, NULL, &out));
    const char *other_id = sget(json_array_get(json_object_get(out, "results"), 0), "id");
    res = search_all("quokka", 3);
    CX_CHECK(res && other_id && has_id(res, other_id));
    json_decref(res);
    same_as_fts5("quokka census", 5);
    json_decref(out);
    cx_store_free(other);

    /* what ranking keeps of an item (its trust) follows a review */
    cx_note dq = {.title = "Quokka feeding policy", .body = "Never feed a quokka bread."};
    out = NULL;
    CX_CHECK_OK(cx_store_draft(s, &who, &dq, &out));
    char *dq_id = strdup(out ? sget(out, "id") : "");
    json_decref(out);
    const char *trusts[2] = {"draft", "rejected"};
    for (int round = 0; round < 2; round++) {
        res = search("quokka feeding policy", 5);
        json_t *hit = NULL;
        for (size_t i = 0; res && i < json_array_size(json_object_get(res, "results")); i++)
            if (strcmp(id_at(res, i), dq_id) == 0)
                hit = json_array_get(json_object_get(res, "results"), i);
        CX_CHECK(hit != NULL);
        if (hit)
            CX_CHECK_STR(sget(json_object_get(hit, "why"), "trust"), trusts[round]);
        json_decref(res);
        if (round == 0) {
            out = NULL;
            CX_CHECK_OK(cx_store_review(s, &who, dq_id, "reject", "not now", &out));
            json_decref(out);
        }
    }
    free(dq_id);

    /* a row id past what the cache keeps lengths for (a store that has
     * seen 16 M items): FTS5 ranks that query, and finds the row */
    CX_CHECK(sqlite3_exec(cx_store_sqlite(s),
                          "UPDATE sqlite_sequence SET seq = 16777300 WHERE name = 'items'", NULL,
                          NULL, NULL) == SQLITE_OK);
    cx_note far = {.title = "Quokka census far out", .body = "quokka numbers from row 2^24"};
    char *far_id = observe(&far);
    res = search_all("quokka numbers", 5);
    CX_CHECK(res && has_id(res, far_id));
    json_decref(res);
    same_as_fts5("quokka", 10);
    /* the warm-up loads the lengths of the blocks that hold rows, not of
     * the 4,096 empty blocks before that row */
    CX_CHECK_OK(cx_search_warm(s));
    same_as_fts5("quokka numbers", 1);
    free(far_id);

    /* no memory for lists: each search reads them again, same answers */
    CX_CHECK_OK(cx_search_set_postings_memory(s, 0));
    same_as_fts5("quokka", all);
    same_as_fts5("quokka wombats colony", 1);
    /* room for the lists but hardly for their decoded rows: those are
     * dropped first and made again, in turns; the same answers */
    for (size_t budget = 400; budget <= 3200; budget *= 2) {
        CX_CHECK_OK(cx_search_set_postings_memory(s, budget));
        for (int round = 0; round < 3; round++) {
            same_as_fts5("quokka", all);
            same_as_fts5("quokka census", 5);
            same_as_fts5("quokka wombats colony", 1);
        }
    }
    CX_CHECK_OK(cx_search_set_postings_memory(s, 8u << 20));
    for (int i = 0; i < 40; i++)
        free(ids[i]);
    free(later_id);
}

/* The index follows changes to items it already holds. */
static void test_index_follows_updates(void) {
    const char v1[] = "one", v2[] = "two";
    cx_publish p = {.name = "ibex config", .data = v1, .len = 3, .title = "alpha description"};
    json_t *out = NULL;
    CX_CHECK_OK(cx_store_publish(s, &who, &p, &out));
    json_decref(out);
    json_t *res = search("alpha ibex", 10); /* indexes it */
    CX_CHECK(res && count(res) == 1);
    json_decref(res);
    p.data = v2;
    p.title = "omega description";
    out = NULL;
    CX_CHECK_OK(cx_store_publish(s, &who, &p, &out));
    json_decref(out);
    res = search("omega ibex", 10);
    CX_CHECK(res && count(res) == 1);
    json_decref(res);
    res = search("alpha", 10);
    CX_CHECK(res && count(res) == 0);
    json_decref(res);
}

/* The answer an agent reads by default: id, kind, status, title (when the
 * item has one), the matching text (the whole body when it is short, else
 * an excerpt), and nothing else unless explain asks for it. */
static void test_compact_answer(void) {
    const char short_body[] = "The quetzal importer skips rows that start with a BOM.";
    char long_body[1024];
    int n = snprintf(long_body, sizeof long_body, "%s",
                     "Before the quetzal importer runs, the staging tables are truncated");
    for (int i = 0; n < 600; i++)
        n += snprintf(long_body + n, sizeof long_body - (size_t)n, " padding%d", i);
    cx_note a = {.body = short_body};
    cx_note b = {.body = long_body};
    cx_note c = {.title = "Quetzal importer owners", .body = "Ask the data team.",
                 .tags = {(const char *[]){"importer"}, 1}};
    char *ida = observe(&a), *idb = observe(&b), *idc = observe(&c);
    cx_search_query q = {.text = "quetzal", .limit = 10, .mode = CX_SEARCH_KEYWORD};
    json_t *res = NULL;
    CX_CHECK_OK(cx_search_run(s, &q, &res));
    CX_CHECK(res && count(res) == 3);
    json_t *results = res ? json_object_get(res, "results") : NULL;
    static const char *const allowed[] = {"id", "kind", "status", "title", "snippet", NULL};
    const char *snip_long = NULL;
    for (size_t i = 0; i < json_array_size(results); i++) {
        json_t *r = json_array_get(results, i);
        const char *key;
        json_t *v;
        json_object_foreach(r, key, v) {
            bool ok = false;
            for (int k = 0; allowed[k]; k++)
                ok = ok || strcmp(key, allowed[k]) == 0;
            if (!ok)
                fprintf(stderr, "compact result has \"%s\"\n", key);
            CX_CHECK(ok);
        }
        CX_CHECK_STR(sget(r, "kind"), "observation");
        CX_CHECK_STR(sget(r, "status"), "recorded");
        const char *id = sget(r, "id"), *snip = sget(r, "snippet");
        CX_CHECK(id && snip);
        if (!id || !snip)
            continue;
        if (strcmp(id, ida) == 0) {
            /* short: the whole body, the match marked, nothing left out */
            CX_CHECK_STR(snip, "The \xc2\xab" "quetzal" "\xc2\xbb importer skips rows that start "
                               "with a BOM.");
            CX_CHECK(!json_object_get(r, "title")); /* it has none */
        } else if (strcmp(id, idb) == 0) {
            snip_long = snip;
            CX_CHECK(strstr(snip, "\xc2\xab" "quetzal" "\xc2\xbb") != NULL);
            CX_CHECK(strstr(snip, "\xe2\x80\xa6") != NULL); /* an excerpt */
            CX_CHECK(strlen(snip) < 200);
        } else {
            CX_CHECK_STR(id, idc);
            CX_CHECK_STR(sget(r, "title"), "Quetzal importer owners");
            CX_CHECK_STR(snip, "Ask the data team."); /* the body; the title matched */
        }
    }
    CX_CHECK(snip_long != NULL);

    /* explain: every field, why, and the longer excerpt people read */
    json_t *full = NULL;
    q.explain = true;
    CX_CHECK_OK(cx_search_run(s, &q, &full));
    results = full ? json_object_get(full, "results") : NULL;
    CX_CHECK(json_array_size(results) == 3);
    for (size_t i = 0; i < json_array_size(results); i++) {
        json_t *r = json_array_get(results, i);
        CX_CHECK(json_is_object(json_object_get(r, "why")));
        CX_CHECK(json_is_real(json_object_get(r, "score")));
        CX_CHECK(json_is_false(json_object_get(r, "stale")));
        CX_CHECK(json_is_string(json_object_get(r, "title")));
        CX_CHECK(json_is_string(json_object_get(r, "subcortex")));
        CX_CHECK(json_is_array(json_object_get(r, "tags")));
        CX_CHECK(json_is_string(json_object_get(r, "updated_at")));
        if (snip_long && strcmp(sget(r, "id"), idb) == 0)
            CX_CHECK(strlen(sget(r, "snippet")) > strlen(snip_long));
    }
    /* the same results in the same order either way */
    for (size_t i = 0; i < json_array_size(results); i++)
        CX_CHECK_STR(id_at(full, i), id_at(res, i));
    json_decref(full);
    json_decref(res);
    free(ida);
    free(idb);
    free(idc);
}

int main(void) {
    root = cx_test_tmpdir();
    if (!root || cx_store_open(&s, root) != 0) {
        fprintf(stderr, "setup: %s\n", cx_error_last());
        return 2;
    }
    setup();
    test_ranking();
    test_all_then_any();
    test_filters();
    test_other_kinds();
    test_budget();
    test_hostile();
    test_scores_are_bm25();
    test_stored_lengths();
    test_snippets();
    test_snippet_markers();
    test_index_follows_updates();
    test_window();
    test_posting_cache();
    test_compact_answer();
    cx_store_free(s);
    cx_test_rmrf(root);
    free(root);
    free(title_hit);
    free(body_hit);
    free(both);
    free(tagged);
    free(priv);
    free(draft_id);
    return cx_test_done();
}
