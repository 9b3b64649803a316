/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for what schema v2 added to the store and search: the "cortex"
 * tokenizer and identifier variants, vectors and semantic search, hybrid
 * ranking (trust, staleness, why, canon above its evidence), provenance,
 * near-duplicate folding, other embedding models (pending items,
 * background embedding, reindex), degraded search when the query's
 * embedder is down, the migration of a version 1 store, and the
 * selection of a semantic list's best hits. */
#include "test.h"

#include "embed/embed.h"
#include "search/search-internal.h" /* the semantic list's selection */
#include "search/search.h"
#include "store/store-search.h"
#include "store/store.h"
#include "util/fsx.h"

#include <math.h>
#include <sqlite3.h>
#include <time.h>

static char *root;
static const cx_actor who = {.author = "ada", .agent = "test"};

static const char *sget(const json_t *o, const char *key) {
    return json_string_value(json_object_get(o, key));
}

static long long iget(const json_t *o, const char *key) {
    return (long long)json_integer_value(json_object_get(o, key));
}

static cx_store *fresh(const char *name) {
    char *dir = cx_fs_join(root, name);
    cx_store *s = NULL;
    CX_CHECK_OK(cx_store_open(&s, dir));
    free(dir);
    return s;
}

/* Records one note; returns its result element (caller frees). */
static json_t *observe_note(cx_store *s, const cx_note *n) {
    json_t *out = NULL;
    if (cx_store_observe(s, &who, n, 1, NULL, NULL, &out) != 0) {
        fprintf(stderr, "observe: %s\n", cx_error_last());
        return NULL;
    }
    json_t *r = json_incref(json_array_get(json_object_get(out, "results"), 0));
    json_decref(out);
    return r;
}

/* Records a note with just a body; returns its id (malloc'd). */
static char *observe(cx_store *s, const char *body) {
    cx_note n = {.body = body};
    json_t *r = observe_note(s, &n);
    char *id = strdup(r && sget(r, "id") ? sget(r, "id") : "");
    json_decref(r);
    return id;
}

static json_t *run(cx_store *s, const char *text, cx_search_mode mode) {
    cx_search_query q = {.text = text, .limit = 10, .mode = mode, .explain = true};
    json_t *out = NULL;
    if (cx_search_run(s, &q, &out) != 0) {
        fprintf(stderr, "search '%s': %s\n", text, cx_error_last());
        return NULL;
    }
    return out;
}

static json_t *result(const json_t *res, size_t i) {
    return json_array_get(json_object_get(res, "results"), i);
}

static size_t count(const json_t *res) {
    return res ? json_array_size(json_object_get(res, "results")) : 0;
}

/* Position of id in the results, or -1. */
static int pos(const json_t *res, const char *id) {
    for (size_t i = 0; i < count(res); i++)
        if (strcmp(sget(result(res, i), "id"), id) == 0)
            return (int)i;
    return -1;
}

static long long q1(cx_store *s, const char *sql) {
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (sqlite3_prepare_v2(cx_store_sqlite(s), sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    else
        fprintf(stderr, "q1(%s): %s\n", sql, sqlite3_errmsg(cx_store_sqlite(s)));
    sqlite3_finalize(st);
    return v;
}

/* ---- the tokenizer ---- */

/* The tokens the cortex tokenizer gives a document, as "token@offset"
 * joined by spaces (colocated tokens share an offset). */
static char *doc_tokens(cx_store *s, const char *text) {
    sqlite3 *db = cx_store_sqlite(s);
    sqlite3_exec(db,
                 "DROP TABLE IF EXISTS temp.tk; DROP TABLE IF EXISTS temp.tkv;"
                 "CREATE VIRTUAL TABLE temp.tk USING fts5(x, tokenize='cortex');"
                 "CREATE VIRTUAL TABLE temp.tkv USING fts5vocab(temp, tk, 'instance');",
                 NULL, NULL, NULL);
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db, "INSERT INTO temp.tk(x) VALUES (?1)", -1, &st, NULL);
    sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
    sqlite3_step(st);
    sqlite3_finalize(st);
    char *buf = calloc(1, 4096);
    size_t n = 0;
    sqlite3_prepare_v2(db, "SELECT term, offset FROM temp.tkv ORDER BY offset, term", -1, &st,
                       NULL);
    while (buf && sqlite3_step(st) == SQLITE_ROW && n < 3900)
        n += (size_t)snprintf(buf + n, 4096 - n, "%s%s@%d", n ? " " : "",
                              (const char *)sqlite3_column_text(st, 0), sqlite3_column_int(st, 1));
    sqlite3_finalize(st);
    return buf;
}

static long long matches(cx_store *s, const char *doc, const char *match) {
    sqlite3 *db = cx_store_sqlite(s);
    sqlite3_exec(db,
                 "DROP TABLE IF EXISTS temp.tm;"
                 "CREATE VIRTUAL TABLE temp.tm USING fts5(x, tokenize='cortex');",
                 NULL, NULL, NULL);
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db, "INSERT INTO temp.tm(x) VALUES (?1)", -1, &st, NULL);
    sqlite3_bind_text(st, 1, doc, -1, SQLITE_STATIC);
    sqlite3_step(st);
    sqlite3_finalize(st);
    long long v = -1;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM temp.tm WHERE tm MATCH ?1", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(st, 1, match, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return v;
}

static void test_tokenizer(void) {
    cx_store *s = fresh("tokenizer");
    if (!s)
        return;
    char *t = doc_tokens(s, "Call parseConfigFile now");
    CX_CHECK_STR(t, "call@0 ~call@0 config@1 file@1 parse@1 parseconfigfile@1 now@2 ~now@2");
    free(t);
    t = doc_tokens(s, "see src/billing/invoice.c and retry.policy.max");
    /* plain words also by their stem (~), identifiers and parts not */
    CX_CHECK_STR(t, "see@0 ~see@0 billing@1 c@1 invoice@1 src@1 src/billing/invoice.c@1 and@2 "
                    "~and@2 max@3 policy@3 retry@3 retry.policy.max@3");
    free(t);
    t = doc_tokens(s, "XMLHttpRequest sha256 Café_Crème");
    /* the parts with diacritics also in their exact form */
    CX_CHECK_STR(t, "http@0 request@0 xml@0 xmlhttprequest@0 256@1 sha@1 sha256@1 cafe@2 "
                    "cafe_creme@2 caf\xc3\xa9@2 creme@2 cr\xc3\xa8me@2");
    free(t);
    /* joiners only join words; a dot ending a sentence does not */
    t = doc_tokens(s, "Done. Next -flag");
    CX_CHECK_STR(t, "done@0 ~done@0 next@1 ~next@1 flag@2 ~flag@2");
    free(t);
    /* queries: the whole identifier, as the query builder writes it */
    CX_CHECK_INT(matches(s, "uses parse_config here", "\"parse_config\""), 1);
    CX_CHECK_INT(matches(s, "uses parseConfig here", "\"parse_config\""), 0);
    CX_CHECK_INT(matches(s, "uses parseConfig here", "\"parse\" AND \"config\""), 1);
    CX_CHECK_INT(matches(s, "uses parseConfig here", "\"uses parseConfig here\""), 1);
    CX_CHECK_INT(matches(s, "uses parseConfig here", "\"parsec\"*"), 1);
    cx_store_free(s);
}

/* ---- identifier variants, typos, paraphrases ---- */

static void test_identifiers(void) {
    cx_store *s = fresh("identifiers");
    if (!s)
        return;
    char *camel = observe(s, "parseConfigFile crashes when the YAML has tabs.");
    char *snake = observe(s, "parse_config_file is the old name of the loader.");
    char *other = observe(s, "The release train leaves on Tuesdays.");
    char *path = observe(s, "Totals are rounded half-up in src/billing/invoice.c.");
    static const char *const all_find[] = {"parse config", "parse_config", "parseConfigFile",
                                           "ParseConfigFile", "PARSE_CONFIG_FILE", NULL};
    for (int m = 0; m < 2; m++) {
        cx_search_mode mode = m ? CX_SEARCH_HYBRID : CX_SEARCH_KEYWORD;
        for (int i = 0; all_find[i]; i++) {
            json_t *res = run(s, all_find[i], mode);
            CX_CHECK(res && pos(res, camel) >= 0 && pos(res, snake) >= 0);
            CX_CHECK(res && pos(res, other) < 0);
            json_decref(res);
        }
        /* the item with the very identifier ranks first */
        json_t *res = run(s, "parseConfigFile", mode);
        CX_CHECK(res && pos(res, camel) == 0);
        json_decref(res);
        res = run(s, "parse_config_file", mode);
        CX_CHECK(res && pos(res, snake) == 0);
        json_decref(res);
        /* half remembered: at least what has "parse" */
        res = run(s, "parseCfg", mode);
        CX_CHECK(res && (pos(res, camel) >= 0 || pos(res, snake) >= 0));
        json_decref(res);
        res = run(s, "invoice", mode);
        CX_CHECK(res && pos(res, path) == 0);
        json_decref(res);
        res = run(s, "billing/invoice.c", mode);
        CX_CHECK(res && pos(res, path) == 0);
        json_decref(res);
    }
    /* prefix and phrase queries */
    json_t *res = run(s, "parseConf*", CX_SEARCH_KEYWORD);
    CX_CHECK(res && pos(res, camel) == 0);
    json_decref(res);
    res = run(s, "\"old name\"", CX_SEARCH_KEYWORD);
    CX_CHECK(res && count(res) == 1 && pos(res, snake) == 0);
    json_decref(res);
    res = run(s, "\"name old\"", CX_SEARCH_KEYWORD);
    CX_CHECK(res && count(res) == 0);
    json_decref(res);
    /* snippets highlight the identifier a part matched */
    res = run(s, "config", CX_SEARCH_KEYWORD);
    const char *snip = res && count(res) ? sget(result(res, 0), "snippet") : NULL;
    CX_CHECK(snip && (strstr(snip, "\xc2\xabparseConfigFile\xc2\xbb") ||
                      strstr(snip, "\xc2\xabparse_config_file\xc2\xbb")));
    json_decref(res);
    free(camel);
    free(snake);
    free(other);
    free(path);
    cx_store_free(s);
}

static void test_typo_and_paraphrase(void) {
    cx_store *s = fresh("typo");
    if (!s)
        return;
    char *hook = observe(s, "How to receive webhooks: verify the signature first.");
    char *crash = observe(s, "Segfault while parsing configuration files with tabs.");
    char *noise[4];
    noise[0] = observe(s, "The release train leaves on Tuesdays.");
    noise[1] = observe(s, "Dashboards show the p99 latency per endpoint.");
    noise[2] = observe(s, "Use the staging cluster for load tests.");
    noise[3] = observe(s, "The cache key includes the lockfile hash.");
    /* misspelt beyond one edit (webhooks and signature are two away):
     * keyword search finds nothing, semantic and hybrid do */
    json_t *res = run(s, "webhok signatrues", CX_SEARCH_KEYWORD);
    CX_CHECK(res && count(res) == 0);
    CX_CHECK(res && !json_object_get(res, "corrected"));
    json_decref(res);
    res = run(s, "webhok signatrue", CX_SEARCH_SEMANTIC);
    CX_CHECK(res && pos(res, hook) == 0);
    json_decref(res);
    res = run(s, "webhok signatrues", CX_SEARCH_HYBRID);
    CX_CHECK(res && pos(res, hook) == 0);
    CX_CHECK_STR(res ? sget(res, "mode") : NULL, "hybrid");
    json_t *why = res ? json_object_get(result(res, 0), "why") : NULL;
    CX_CHECK(json_array_size(json_object_get(why, "lists")) == 1);
    CX_CHECK_STR(json_string_value(json_array_get(json_object_get(why, "lists"), 0)), "semantic");
    CX_CHECK(iget(why, "semantic_rank") == 1 && !json_object_get(why, "keyword_rank"));
    CX_CHECK(json_real_value(json_object_get(why, "similarity")) > 0.18);
    json_decref(res);
    /* one edit away (signatrue: a transposition): keyword search corrects
     * it and says so; hybrid finds it by both lists */
    res = run(s, "webhok signatrue", CX_SEARCH_KEYWORD);
    CX_CHECK(res && pos(res, hook) == 0);
    CX_CHECK_STR(res ? sget(json_object_get(res, "corrected"), "signatrue") : NULL, "signature");
    json_decref(res);
    res = run(s, "webhok signatrue", CX_SEARCH_HYBRID);
    CX_CHECK(res && pos(res, hook) == 0);
    why = res ? json_object_get(result(res, 0), "why") : NULL;
    CX_CHECK(json_array_size(json_object_get(why, "lists")) == 2);
    json_decref(res);
    /* other forms of the note's words: keyword search finds it by stems */
    res = run(s, "segfaults parser configs", CX_SEARCH_KEYWORD);
    CX_CHECK(res && pos(res, crash) == 0);
    json_decref(res);
    res = run(s, "segfaults parser configs", CX_SEARCH_HYBRID);
    CX_CHECK(res && pos(res, crash) == 0);
    json_decref(res);
    /* nothing like it: no results, not the nearest noise */
    res = run(s, "nothing-matches-this-zebra", CX_SEARCH_HYBRID);
    CX_CHECK(res && count(res) == 0);
    json_decref(res);
    res = run(s, "!!! ???", CX_SEARCH_SEMANTIC);
    CX_CHECK(res && count(res) == 0);
    json_decref(res);
    /* both lists: the fused rank says so */
    res = run(s, "webhooks signature", CX_SEARCH_HYBRID);
    why = res ? json_object_get(result(res, 0), "why") : NULL;
    CX_CHECK(res && pos(res, hook) == 0);
    CX_CHECK(json_array_size(json_object_get(why, "lists")) == 2);
    CX_CHECK(iget(why, "keyword_rank") == 1 && iget(why, "semantic_rank") == 1);
    CX_CHECK_STR(sget(why, "trust"), "observation");
    CX_CHECK(json_is_false(json_object_get(why, "stale")));
    CX_CHECK(json_real_value(json_object_get(why, "score")) ==
             json_real_value(json_object_get(result(res, 0), "score")));
    json_decref(res);
    /* filters apply to semantic results too */
    cx_search_query q = {.text = "webhok signatrue", .mode = CX_SEARCH_SEMANTIC,
                         .subcortex = "elsewhere"};
    res = NULL;
    CX_CHECK_OK(cx_search_run(s, &q, &res));
    CX_CHECK(res && count(res) == 0);
    json_decref(res);
    q.subcortex = NULL;
    q.kind = "draft";
    res = NULL;
    CX_CHECK_OK(cx_search_run(s, &q, &res));
    CX_CHECK(res && count(res) == 0);
    json_decref(res);
    q.kind = "observation";
    const char *tag[] = {"nope"};
    q.tags = (cx_strv){tag, 1};
    res = NULL;
    CX_CHECK_OK(cx_search_run(s, &q, &res));
    CX_CHECK(res && count(res) == 0);
    json_decref(res);
    q.mode = (cx_search_mode)7;
    CX_CHECK_INT(cx_search_run(s, &q, &res), CX_EINVAL);
    cx_search_mode mode;
    CX_CHECK_OK(cx_search_mode_parse("semantic", &mode));
    CX_CHECK(mode == CX_SEARCH_SEMANTIC);
    CX_CHECK_OK(cx_search_mode_parse(NULL, &mode));
    CX_CHECK(mode == CX_SEARCH_HYBRID);
    CX_CHECK_INT(cx_search_mode_parse("fuzzy", &mode), CX_EINVAL);
    CX_CHECK(strstr(cx_error_last(), "keyword") != NULL);
    free(hook);
    free(crash);
    for (int i = 0; i < 4; i++)
        free(noise[i]);
    cx_store_free(s);
}

/* ---- trust and staleness ---- */

static int fake_stale(void *ud, const json_t *prov, json_t **changed) {
    int *calls = ud;
    (*calls)++;
    const char *blob = json_string_value(json_object_get(prov, "blob"));
    if (blob && strcmp(blob, "old") == 0) {
        *changed = json_pack("[s]", "src/pay.c");
        return 1;
    }
    if (blob && strcmp(blob, "error") == 0)
        return CX_EIO;
    return 0;
}

static void test_trust_and_stale(void) {
    cx_store *s = fresh("trust");
    if (!s)
        return;
    const char *text = "Always take the ledger locks in account id order to avoid deadlocks.";
    cx_note d = {.title = "Ledger lock order", .body = text};
    json_t *out = NULL;
    CX_CHECK_OK(cx_store_draft(s, &who, &d, &out));
    char *canon = strdup(sget(out, "id") ? sget(out, "id") : "");
    json_decref(out);
    out = NULL;
    CX_CHECK_OK(cx_store_review(s, &who, canon, "approve", NULL, &out));
    json_decref(out);
    /* the same words, newer, as an observation with the same title */
    cx_note o = {.title = "Ledger lock order", .body = text};
    json_t *r = observe_note(s, &o);
    char *obs = strdup(r ? sget(r, "id") : "");
    json_decref(r);
    for (int m = 0; m < 3; m++) {
        json_t *res = run(s, "ledger lock order deadlocks", (cx_search_mode)m);
        CX_CHECK(res && pos(res, canon) == 0 && pos(res, obs) == 1);
        CX_CHECK_STR(res ? sget(json_object_get(result(res, 0), "why"), "trust") : NULL, "canon");
        json_decref(res);
    }

    /* stale ranks below fresh; the answer says which files changed */
    json_t *p_old = json_pack("{s:s, s:s}", "commit", "c1", "blob", "old");
    json_t *p_new = json_pack("{s:s, s:s}", "commit", "c2", "blob", "new");
    json_t *p_err = json_pack("{s:s}", "blob", "error");
    cx_note st = {.body = "Payouts are created at 02:00 UTC by the payout cron job.",
                  .provenance = p_old, .files = {(const char *[]){"src/pay.c"}, 1}};
    cx_note fr = {.body = "Payouts are created at 04:00 UTC by the payout cron job since "
                          "the bank moved its cut-off.",
                  .provenance = p_new, .files = {(const char *[]){"src/pay.c"}, 1}};
    cx_note er = {.body = "The payout cron job logs to payouts.log.", .provenance = p_err};
    r = observe_note(s, &st);
    char *stale_id = strdup(r ? sget(r, "id") : "");
    json_decref(r);
    r = observe_note(s, &fr);
    char *fresh_id = strdup(r ? sget(r, "id") : "");
    json_decref(r);
    r = observe_note(s, &er);
    char *err_id = strdup(r ? sget(r, "id") : "");
    json_decref(r);
    int calls = 0;
    for (int m = 0; m < 3; m++) {
        /* the stale note matches best on its own (shorter, all words) */
        cx_search_query q = {.text = "payouts created cron job", .mode = (cx_search_mode)m,
                             .explain = true};
        json_t *res = NULL;
        CX_CHECK_OK(cx_search_run(s, &q, &res));
        int ps = pos(res, stale_id), pf = pos(res, fresh_id);
        CX_CHECK(ps >= 0 && pf >= 0 && ps < pf);
        CX_CHECK(ps >= 0 && json_is_false(json_object_get(result(res, (size_t)ps), "stale")));
        json_decref(res);
        res = NULL;
        q.stale = fake_stale;
        q.stale_ud = &calls;
        CX_CHECK_OK(cx_search_run(s, &q, &res));
        ps = pos(res, stale_id);
        pf = pos(res, fresh_id);
        CX_CHECK(ps >= 0 && pf >= 0 && pf < ps);
        json_t *sr = ps >= 0 ? result(res, (size_t)ps) : NULL;
        CX_CHECK(json_is_true(json_object_get(sr, "stale")));
        CX_CHECK(json_is_true(json_object_get(json_object_get(sr, "why"), "stale")));
        CX_CHECK_STR(json_string_value(json_array_get(json_object_get(sr, "changed"), 0)),
                     "src/pay.c");
        CX_CHECK_STR(sget(json_object_get(sr, "provenance"), "commit"), "c1");
        /* a callback that fails counts as fresh */
        int pe = pos(res, err_id);
        CX_CHECK(pe < 0 || json_is_false(json_object_get(result(res, (size_t)pe), "stale")));
        json_decref(res);
        /* compact (no explain): "stale" and "changed" only on the stale
         * result; no provenance, no why */
        q.explain = false;
        res = NULL;
        CX_CHECK_OK(cx_search_run(s, &q, &res));
        ps = pos(res, stale_id);
        pf = pos(res, fresh_id);
        CX_CHECK(ps >= 0 && pf >= 0 && pf < ps);
        sr = ps >= 0 ? result(res, (size_t)ps) : NULL;
        CX_CHECK(json_is_true(json_object_get(sr, "stale")));
        CX_CHECK_STR(json_string_value(json_array_get(json_object_get(sr, "changed"), 0)),
                     "src/pay.c");
        CX_CHECK(!json_object_get(sr, "provenance") && !json_object_get(sr, "why"));
        json_t *fr_r = pf >= 0 ? result(res, (size_t)pf) : NULL;
        CX_CHECK(fr_r && !json_object_get(fr_r, "stale") && !json_object_get(fr_r, "changed"));
        json_decref(res);
    }
    CX_CHECK(calls > 0);
    /* items without provenance are never asked about */
    calls = 0;
    cx_search_query q = {.text = "ledger lock order", .stale = fake_stale, .stale_ud = &calls};
    out = NULL;
    CX_CHECK_OK(cx_search_run(s, &q, &out));
    CX_CHECK_INT(calls, 0);
    json_decref(out);

    /* get and recent report it too */
    out = NULL;
    CX_CHECK_OK(cx_store_get_ex(s, stale_id, fake_stale, &calls, &out));
    CX_CHECK(json_is_true(json_object_get(out, "stale")));
    CX_CHECK_STR(json_string_value(json_array_get(json_object_get(out, "changed"), 0)),
                 "src/pay.c");
    CX_CHECK_STR(sget(json_object_get(out, "provenance"), "blob"), "old");
    json_decref(out);
    out = NULL;
    CX_CHECK_OK(cx_store_get_ex(s, fresh_id, fake_stale, &calls, &out));
    CX_CHECK(json_is_false(json_object_get(out, "stale")) && !json_object_get(out, "changed"));
    json_decref(out);
    out = NULL;
    CX_CHECK_OK(cx_store_get(s, stale_id, &out)); /* no callback: no "stale" */
    CX_CHECK(!json_object_get(out, "stale") && json_object_get(out, "provenance"));
    json_decref(out);
    cx_recent_query rq = {.limit = 10, .stale = fake_stale, .stale_ud = &calls};
    out = NULL;
    CX_CHECK_OK(cx_store_recent(s, &rq, &out));
    bool seen_stale = false, all_have = true;
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(out, "items"), i, it) {
        all_have = all_have && json_is_boolean(json_object_get(it, "stale"));
        if (strcmp(sget(it, "id"), stale_id) == 0)
            seen_stale = json_is_true(json_object_get(it, "stale")) &&
                         json_object_get(it, "provenance") && json_object_get(it, "changed");
    }
    CX_CHECK(seen_stale && all_have);
    json_decref(out);

    /* provenance must be an object of bounded size */
    json_t *bad = json_string("not an object");
    cx_note b = {.body = "x y z", .provenance = bad};
    out = NULL;
    CX_CHECK_INT(cx_store_observe(s, &who, &b, 1, NULL, NULL, &out), CX_EINVAL);
    CX_CHECK(strstr(cx_error_last(), "provenance") != NULL);
    json_decref(bad);
    char *big = malloc(CX_STORE_MAX_PROVENANCE + 10);
    memset(big, 'a', CX_STORE_MAX_PROVENANCE + 9);
    big[CX_STORE_MAX_PROVENANCE + 9] = '\0';
    bad = json_pack("{s:s}", "x", big);
    b.provenance = bad;
    CX_CHECK_INT(cx_store_draft(s, &who, &(cx_note){.title = "t", .body = "b", .provenance = bad},
                                &out),
                 CX_ELIMIT);
    json_decref(bad);
    free(big);
    json_decref(p_old);
    json_decref(p_new);
    json_decref(p_err);
    free(canon);
    free(obs);
    free(stale_id);
    free(fresh_id);
    free(err_id);
    cx_store_free(s);
}

/* ---- canon above its evidence ---- */

/* Drafts (and approves, when `approve`) a note citing ev[0..nev); returns
 * its id (malloc'd). */
static char *draft_citing(cx_store *s, const char *title, const char *body, const char **ev,
                          size_t nev, bool approve) {
    cx_note d = {.title = title, .body = body, .evidence = {ev, nev}};
    json_t *out = NULL;
    CX_CHECK_OK(cx_store_draft(s, &who, &d, &out));
    char *id = strdup(sget(out, "id") ? sget(out, "id") : "");
    json_decref(out);
    if (approve) {
        out = NULL;
        CX_CHECK_OK(cx_store_review(s, &who, id, "approve", NULL, &out));
        json_decref(out);
    }
    return id;
}

/* Checks that in res the digest ranks right above its evidence obs
 * (first when `first`), lifted, by a hair. */
static void check_lifted(const json_t *res, int mode, const char *digest, const char *obs,
                         bool first) {
    int d = pos(res, digest), e = pos(res, obs);
    CX_CHECK(res && d >= 0 && e == d + 1 && (!first || d == 0));
    if (!res || d < 0 || e != d + 1 || (first && d != 0))
        fprintf(stderr, "  mode %d: digest at %d, its evidence at %d\n", mode, d, e);
    if (d < 0 || e != d + 1)
        return;
    const json_t *why = json_object_get(result(res, (size_t)d), "why");
    CX_CHECK_STR(sget(why, "trust"), "canon");
    CX_CHECK(json_is_true(json_object_get(why, "above_evidence")));
    /* just above: the score of its evidence, not a big constant */
    double ds = json_number_value(json_object_get(result(res, (size_t)d), "score"));
    double es = json_number_value(json_object_get(result(res, (size_t)e), "score"));
    CX_CHECK(ds > es && ds < es * 1.001);
    CX_CHECK(!json_object_get(json_object_get(result(res, (size_t)e), "why"), "above_evidence"));
}

/* The walkthrough's case: a session digest (a thread whose body lists its
 * observations' titles among boilerplate) approved into canon, and the
 * observation it cites, which matches a one-word query far more strongly:
 * the thread ranks first, just above its evidence, in every mode that
 * finds it. Then, among other matches: the thread stays right above its
 * evidence and an observation that is not its evidence and matches better
 * still ranks above both; a canon thread citing only what did not match, a
 * pending draft citing the observation, are not lifted; a thread whose
 * evidence matched but which itself did not is not added; under a filter
 * its evidence does not pass, the thread ranks on its own. */
static void test_canon_over_evidence(void) {
    cx_store *s = fresh("canon-evidence");
    if (!s)
        return;
    cx_note o1 = {.title = "libmicrohttpd 0.9.75 or later, not a gnutls problem",
                  .body = "The shop needs libmicrohttpd 0.9.75 or later. With an older "
                          "libmicrohttpd, meson setup fails with a misleading message about "
                          "gnutls; upgrade libmicrohttpd instead of chasing gnutls."};
    cx_note o2 = {.body = "shop_port() in src/config.c hard-codes 8080; the port is not read "
                          "from the environment yet."};
    json_t *r1 = observe_note(s, &o1), *r2 = observe_note(s, &o2);
    char *obs1 = strdup(r1 ? sget(r1, "id") : ""), *obs2 = strdup(r2 ? sget(r2, "id") : "");
    json_decref(r1);
    json_decref(r2);
    char body[2048];
    snprintf(body, sizeof body,
             "Observations recorded during agent session `3f1c2a9e-7d41-4b8e-9a55-0c2d6e8f1b37` "
             "(2026-12-07T10:00:00Z to 2026-12-07T10:20:00Z), grouped by file. Made by `cortex "
             "hook stop` without a language model: approve it to keep it as canon, request "
             "changes, or reject it.\n\n## By file\n\n### `meson.build` (1)\n"
             "- libmicrohttpd 0.9.75 or later, not a gnutls problem (%s)\n\n"
             "### `src/config.c` (1)\n- shop_port() in src/config.c hard-codes 8080 (%s)\n\n"
             "## Tags\n\n- `build`: 1\n- `config`: 1\n",
             obs1, obs2);
    const char *both[] = {obs1, obs2}, *second[] = {obs2}, *first[] = {obs1};
    char *digest = draft_citing(s, "Session digest: 2 observations on meson.build, src/config.c",
                                body, both, 2, true);
    /* without the rule the observation comes first: bm25 and the trust
     * factor alone */
    json_t *res = run(s, "libmicrohttpd", CX_SEARCH_KEYWORD);
    double bd = res ? json_number_value(json_object_get(
                          json_object_get(result(res, 0), "why"), "bm25"))
                    : 0,
           be = res ? json_number_value(json_object_get(
                          json_object_get(result(res, 1), "why"), "bm25"))
                    : 0;
    CX_CHECK(be > 1.125 * bd); /* the case the rule is for */
    json_decref(res);
    for (int m = 0; m < 3; m++) {
        res = run(s, "libmicrohttpd", (cx_search_mode)m);
        if (m != CX_SEARCH_SEMANTIC || pos(res, digest) >= 0) /* semantic: may be below the floor */
            check_lifted(res, m, digest, obs1, true);
        json_decref(res);
    }

    cx_note o3 = {.title = "libmicrohttpd on Debian",
                  .body = "Debian ships libmicrohttpd 0.9.76: libmicrohttpd-dev is enough."};
    json_t *r3 = observe_note(s, &o3);
    char *other = strdup(r3 ? sget(r3, "id") : "");
    json_decref(r3);
    char *unrelated = draft_citing(s, "Port configuration",
                                   "Read the port from the environment; libmicrohttpd is not "
                                   "involved in this at all, it only serves what it is given.",
                                   second, 1, true);
    char *pending = draft_citing(s, "Proposal: pin the HTTP library",
                                 "Pin libmicrohttpd in the wrap file so that the gnutls "
                                 "confusion cannot come back; see the observation cited.",
                                 first, 1, false);
    char *silent = draft_citing(s, "Upgrade path for the HTTP server library",
                                "Upgrade the server library instead of chasing TLS errors.", first,
                                1, true);
    for (int m = 0; m < 2; m++) {
        res = run(s, "libmicrohttpd", (cx_search_mode)m);
        check_lifted(res, m, digest, obs1, false);
        int o = pos(res, other), u = pos(res, unrelated), p = pos(res, pending);
        CX_CHECK(o >= 0 && o < pos(res, digest));
        CX_CHECK(u >= 0 && !json_object_get(json_object_get(result(res, (size_t)u), "why"),
                                             "above_evidence"));
        CX_CHECK(p >= 0 && !json_object_get(json_object_get(result(res, (size_t)p), "why"),
                                             "above_evidence"));
        if (m == CX_SEARCH_KEYWORD)
            CX_CHECK_INT(pos(res, silent), -1);
        json_decref(res);
    }
    cx_search_query q = {.text = "libmicrohttpd", .limit = 10, .mode = CX_SEARCH_KEYWORD,
                         .kind = "thread"};
    res = NULL;
    CX_CHECK_OK(cx_search_run(s, &q, &res));
    CX_CHECK(res && pos(res, digest) >= 0 && pos(res, obs1) < 0);
    for (size_t i = 0; i < count(res); i++)
        CX_CHECK(!json_object_get(json_object_get(result(res, i), "why"), "above_evidence"));
    json_decref(res);
    free(obs1);
    free(obs2);
    free(other);
    free(digest);
    free(unrelated);
    free(pending);
    free(silent);
    cx_store_free(s);
}

/* ---- folding ---- */

static void test_folding(void) {
    cx_store *s = fresh("folding");
    if (!s)
        return;
    const char *files[] = {"tests/ws_test.c"};
    cx_note a = {.body = "The flaky websocket test times out on slow CI runners.",
                 .files = {files, 1}};
    json_t *r = observe_note(s, &a);
    char *first = strdup(r ? sget(r, "id") : "");
    CX_CHECK(r && json_is_false(json_object_get(r, "repeat")));
    json_decref(r);
    long long before = q1(s, "SELECT updated_at FROM items WHERE kind = 'observation'");
    struct timespec ts = {0, 3000000};
    nanosleep(&ts, NULL);

    /* a near-duplicate: folded into the first */
    cx_note b = {.body = "The flaky websocket test times out on the slow CI runners.",
                 .files = {files, 1}};
    r = observe_note(s, &b);
    CX_CHECK(r && json_is_true(json_object_get(r, "repeat")));
    CX_CHECK(r && json_is_true(json_object_get(r, "folded")));
    CX_CHECK_STR(r ? sget(r, "id") : NULL, first);
    double sim = r ? json_real_value(json_object_get(r, "similarity")) : 0;
    CX_CHECK(sim >= CX_STORE_FOLD_SIMILARITY && sim <= 1.0);
    json_decref(r);
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM items"), 1);
    CX_CHECK_INT(q1(s, "SELECT seen FROM items"), 2);
    CX_CHECK(q1(s, "SELECT updated_at FROM items") > before);
    /* an exact repeat keeps its old answer */
    r = observe_note(s, &a);
    CX_CHECK(r && json_is_true(json_object_get(r, "repeat")) && !json_object_get(r, "folded"));
    json_decref(r);
    CX_CHECK_INT(q1(s, "SELECT seen FROM items"), 3);

    /* not folded (each as near to the first as the folded one): other
     * files, no files, another subcortex, private, a different number,
     * another text */
    const char *other_files[] = {"tests/ws_test.c", "ci/runners.yml"};
    cx_note c[] = {
        {.body = "The flaky websocket test times out on slow CI runners!",
         .files = {other_files, 2}},
        {.body = "the flaky websocket test times out on slow CI runners"},
        {.body = "A flaky websocket test times out on slow CI runners.", .files = {files, 1},
         .subcortex = "ci"},
        {.body = "The flaky websocket test timed out on slow CI runners.", .files = {files, 1},
         .visibility = "private"},
        {.body = "The flaky websocket test times out after 30 s on slow CI runners.",
         .files = {files, 1}},
        {.body = "The flaky websocket test times out after 60 s on slow CI runners.",
         .files = {files, 1}},
        {.body = "The websocket server drops idle connections after a minute.",
         .files = {files, 1}},
    };
    json_t *out = NULL;
    CX_CHECK_OK(cx_store_observe(s, &who, c, sizeof c / sizeof c[0], NULL, NULL, &out));
    CX_CHECK_INT(iget(out, "recorded"), (long long)(sizeof c / sizeof c[0]));
    CX_CHECK_INT(iget(out, "repeats"), 0);
    json_decref(out);
    /* the files set is a set: order does not matter */
    const char *swapped[] = {"ci/runners.yml", "tests/ws_test.c"};
    cx_note d = {.body = "The flaky websocket test times out on slow CI runners!!",
                 .files = {swapped, 2}};
    r = observe_note(s, &d);
    CX_CHECK(r && json_is_true(json_object_get(r, "folded")));
    json_decref(r);
    /* folding inside one batch */
    cx_note e[] = {{.body = "Run meson test with --suite unit before pushing changes."},
                   {.body = "Run meson test with --suite unit before pushing the changes."}};
    out = NULL;
    CX_CHECK_OK(cx_store_observe(s, &who, e, 2, NULL, NULL, &out));
    CX_CHECK_INT(iget(out, "recorded"), 1);
    json_t *r0 = json_array_get(json_object_get(out, "results"), 0);
    json_t *r1 = json_array_get(json_object_get(out, "results"), 1);
    CX_CHECK_STR(sget(r1, "id"), sget(r0, "id"));
    CX_CHECK(json_is_true(json_object_get(r1, "folded")));
    json_decref(out);
    /* the folded note's text is not in the search index */
    json_t *res = run(s, "\"on the slow\"", CX_SEARCH_KEYWORD);
    CX_CHECK(res && pos(res, first) < 0);
    json_decref(res);
    free(first);
    cx_store_free(s);
}

/* ---- other models ---- */

static int progress_calls;
static size_t progress_last, progress_total;
static int progress_stop_at;

static int on_progress(void *ud, size_t done, size_t total) {
    if (done == 0)
        return 0; /* a block of row lengths, loaded before the vectors */
    progress_calls++;
    progress_last = done;
    progress_total = total;
    return progress_stop_at && progress_calls >= progress_stop_at;
}

static json_t *model_status(cx_store *s, const char *model) {
    json_t *st = NULL, *found = NULL;
    if (cx_store_status(s, &st) != 0)
        return NULL;
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(json_object_get(st, "embeddings"), "models"), i, m) {
        if (strcmp(sget(m, "model"), model) == 0)
            found = json_incref(m);
    }
    json_decref(st);
    return found;
}

static void test_models(void) {
    cx_store *s = fresh("models");
    if (!s)
        return;
    enum { N = 2300 }; /* more than are scored exactly: the Hamming scan runs */
    cx_note *batch = calloc(N, sizeof *batch);
    char (*bodies)[96] = calloc(N, 96);
    static const char *const words[] = {"cache", "index", "socket", "parser", "token",
                                        "schema", "branch", "vector", "thread", "buffer",
                                        "cursor", "review", "linker", "header", "module"};
    for (int i = 0; i < N; i++) {
        snprintf(bodies[i], 96, "Note %d about the %s and the %s of build %d.", i,
                 words[i % 15], words[(i / 15) % 15], i * 7);
        batch[i].body = bodies[i];
    }
    json_t *out = NULL;
    for (int off = 0; off < N; off += 500) {
        out = NULL;
        CX_CHECK_OK(cx_store_observe(s, &who, batch + off, off + 500 <= N ? 500 : N - off, NULL,
                                     NULL, &out));
        json_decref(out);
    }
    char *target = observe(s, "How to receive webhooks: verify the signature first.");
    json_t *m = model_status(s, "builtin-ngram-v3-320");
    CX_CHECK(m && iget(m, "vectors") == N + 1 && iget(m, "pending") == 0 && iget(m, "dim") == CX_EMBED_BUILTIN_DIM);
    json_decref(m);
    /* warming up can stop early: the first search loads the rest */
    cx_store *w = NULL;
    CX_CHECK_OK(cx_store_open(&w, cx_store_dir(s)));
    progress_calls = 0;
    progress_stop_at = 1;
    CX_CHECK_INT(cx_search_warm_ex(w, on_progress, NULL), CX_ECANCELED);
    CX_CHECK(progress_calls == 1 && progress_total == N + 1 && progress_last == 512);
    json_t *res = run(w, "webhok signatrue", CX_SEARCH_SEMANTIC);
    CX_CHECK(res && pos(res, target) == 0);
    CX_CHECK(res && !json_object_get(res, "degraded"));
    json_decref(res);
    cx_store_free(w);
    /* a warm-up announced (cortexd's warm-up thread, between requests):
     * with this few vectors still to load, a search loads them itself */
    CX_CHECK_OK(cx_store_open(&w, cx_store_dir(s)));
    CX_CHECK_OK(cx_search_warm_expect(w));
    res = run(w, "webhok signatrue", CX_SEARCH_SEMANTIC);
    CX_CHECK(res && pos(res, target) == 0 && !json_object_get(res, "degraded"));
    json_decref(res);
    cx_store_free(w);
    progress_stop_at = 0;
    CX_CHECK_OK(cx_search_warm(s));
    res = run(s, "webhok signatrue", CX_SEARCH_SEMANTIC);
    CX_CHECK(res && pos(res, target) == 0);
    json_decref(res);
    res = run(s, "parser socket build", CX_SEARCH_SEMANTIC);
    CX_CHECK(res && count(res) == 10);
    /* a connection whose vectors do not fit in memory: scored from SQLite
     * after a scan of sign bits, the same best answers */
    cx_store *lean = NULL;
    CX_CHECK_OK(cx_store_open(&lean, cx_store_dir(s)));
    CX_CHECK_OK(cx_search_set_memory(lean, 0));
    json_t *res2 = run(lean, "parser socket build", CX_SEARCH_SEMANTIC);
    CX_CHECK(res2 && count(res2) == 10);
    size_t same = 0;
    for (size_t i = 0; res && res2 && i < count(res); i++)
        same += pos(res2, sget(result(res, i), "id")) >= 0;
    CX_CHECK(same >= 8);
    json_decref(res2);
    res2 = run(lean, "webhok signatrue", CX_SEARCH_SEMANTIC);
    CX_CHECK(res2 && pos(res2, target) == 0);
    json_decref(res2);
    cx_store_free(lean);
    json_decref(res);

    /* another model: everything becomes pending for it, nothing embedded yet */
    cx_embedder *small = NULL;
    CX_CHECK_OK(cx_embed_builtin_new(&small, 64));
    CX_CHECK_OK(cx_store_set_embedder(s, small));
    m = model_status(s, "builtin-ngram-v3-64");
    CX_CHECK(m && iget(m, "vectors") == 0 && iget(m, "pending") == N + 1);
    json_decref(m);
    json_t *st = NULL;
    CX_CHECK_OK(cx_store_status(s, &st));
    CX_CHECK_STR(sget(json_object_get(st, "embeddings"), "model"), "builtin-ngram-v3-64");
    json_decref(st);
    /* meanwhile search ranks items by their built-in vectors */
    res = run(s, "webhok signatrue", CX_SEARCH_HYBRID);
    CX_CHECK(res && pos(res, target) == 0);
    CX_CHECK_STR(res ? sget(json_object_get(result(res, 0), "why"), "semantic_model") : NULL,
                 "builtin");
    json_decref(res);

    /* the background work, in bounded steps */
    size_t done = 0;
    CX_CHECK_OK(cx_store_embed_pending(s, 1000, &done));
    CX_CHECK_INT(done, 1000);
    m = model_status(s, "builtin-ngram-v3-64");
    CX_CHECK(m && iget(m, "vectors") == 1000 && iget(m, "pending") == N + 1 - 1000);
    json_decref(m);
    CX_CHECK_OK(cx_store_embed_pending(s, 0, &done));
    CX_CHECK_INT(done, N + 1 - 1000);
    m = model_status(s, "builtin-ngram-v3-64");
    CX_CHECK(m && iget(m, "vectors") == N + 1 && iget(m, "pending") == 0 && iget(m, "dim") == 64);
    json_decref(m);
    CX_CHECK_OK(cx_store_embed_pending(s, 0, &done));
    CX_CHECK_INT(done, 0);
    res = run(s, "webhooks signature", CX_SEARCH_SEMANTIC);
    CX_CHECK(res && pos(res, target) == 0);
    CX_CHECK(res && !json_object_get(json_object_get(result(res, 0), "why"), "semantic_model"));
    json_decref(res);
    /* a new item is pending for the model until the next round, and found
     * by its built-in vector meanwhile */
    char *late = observe(s, "Rotate the signing keys of the payment provider every quarter.");
    m = model_status(s, "builtin-ngram-v3-64");
    CX_CHECK(m && iget(m, "pending") == 1);
    json_decref(m);
    res = run(s, "rotate signing keys", CX_SEARCH_SEMANTIC);
    CX_CHECK(res && pos(res, late) >= 0);
    json_decref(res);
    CX_CHECK_OK(cx_store_embed_pending(s, 0, &done));
    CX_CHECK_INT(done, 1);
    /* a text that changes is embedded again */
    const char v1[] = "one";
    cx_publish p = {.name = "quokka runbook", .data = v1, .len = 3, .title = "old words"};
    out = NULL;
    CX_CHECK_OK(cx_store_publish(s, &who, &p, &out));
    json_decref(out);
    CX_CHECK_OK(cx_store_embed_pending(s, 0, &done));
    CX_CHECK_INT(done, 1);
    p.data = "two";
    p.title = "new words";
    out = NULL;
    CX_CHECK_OK(cx_store_publish(s, &who, &p, &out));
    json_decref(out);
    m = model_status(s, "builtin-ngram-v3-64");
    CX_CHECK(m && iget(m, "pending") == 1);
    json_decref(m);
    m = model_status(s, "builtin-ngram-v3-320"); /* the built-in one was redone inline */
    CX_CHECK(m && iget(m, "pending") == 0);
    json_decref(m);
    CX_CHECK_OK(cx_store_embed_pending(s, 0, &done));
    CX_CHECK_INT(done, 1);

    /* reindex in the foreground, with progress, and cancelled */
    progress_calls = 0;
    progress_stop_at = 0;
    CX_CHECK_OK(cx_store_reindex(s, small, on_progress, NULL));
    CX_CHECK(progress_calls == (N + 3 + CX_EMBED_MAX_BATCH - 1) / CX_EMBED_MAX_BATCH);
    CX_CHECK(progress_last == N + 3 && progress_total == N + 3);
    long long seq = q1(s, "SELECT coalesce(max(seq), 0) FROM vec_log");
    progress_calls = 0;
    progress_stop_at = 2;
    CX_CHECK_INT(cx_store_reindex(s, NULL, on_progress, NULL), CX_ECANCELED);
    CX_CHECK(strstr(cx_error_last(), "canceled") != NULL);
    CX_CHECK_INT(progress_calls, 2);
    /* built-in vectors are in their narrow table, and logged when remade */
    CX_CHECK_INT(q1(s, "SELECT max(seq) FROM vec_log") - seq, 2 * CX_EMBED_MAX_BATCH);
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM vectors"), N + 3);
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM builtin_vectors"), N + 3);
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM items WHERE sig IS NOT NULL"), N + 3);
    /* back to the built-in model alone */
    CX_CHECK_OK(cx_store_set_embedder(s, NULL));
    res = run(s, "webhok signatrue", CX_SEARCH_SEMANTIC);
    CX_CHECK(res && pos(res, target) == 0);
    json_decref(res);

    /* a query embedder that is down: keyword results, and the answer says so */
    cx_embedder *down = NULL;
    cx_embed_http_config cfg = {.base_url = "http://127.0.0.1:1", .model = "down",
                                .timeout_ms = 2000, .retries = -1};
    CX_CHECK_OK(cx_embed_http_new(&down, &cfg));
    CX_CHECK_OK(cx_store_set_embedder(s, down));
    cx_search_query q = {.text = "webhooks signature", .embedder = down, .explain = true};
    out = NULL;
    CX_CHECK_OK(cx_search_run(s, &q, &out));
    const char *deg = out ? sget(out, "degraded") : NULL;
    CX_CHECK(deg && strncmp(deg, "semantic unavailable: ", 22) == 0);
    CX_CHECK(out && pos(out, target) == 0);
    json_t *lists = out ? json_object_get(json_object_get(result(out, 0), "why"), "lists") : NULL;
    CX_CHECK(json_array_size(lists) == 1 &&
             strcmp(json_string_value(json_array_get(lists, 0)), "keyword") == 0);
    json_decref(out);
    /* the same in semantic mode; and through the store's embedder */
    q.mode = CX_SEARCH_SEMANTIC;
    q.embedder = NULL;
    out = NULL;
    CX_CHECK_OK(cx_search_run(s, &q, &out));
    CX_CHECK(out && sget(out, "degraded") && pos(out, target) == 0);
    json_decref(out);
    /* background embedding reports the outage and keeps the items pending */
    CX_CHECK(cx_store_embed_pending(s, 0, &done) < 0);
    m = model_status(s, "http:down");
    CX_CHECK(m && iget(m, "pending") == N + 3 && iget(m, "vectors") == 0);
    json_decref(m);
    CX_CHECK_OK(cx_store_set_embedder(s, NULL));
    cx_embed_free(down);
    cx_embed_free(small);
    free(target);
    free(late);
    free(batch);
    free(bodies);
    cx_store_free(s);
}

/* A second connection sees what the first writes, at its next search. */
static void test_incremental(void) {
    cx_store *a = fresh("incremental"), *b = NULL;
    if (!a)
        return;
    CX_CHECK_OK(cx_store_open(&b, cx_store_dir(a)));
    char *x = observe(a, "The invoice renderer needs the Noto CJK fonts.");
    CX_CHECK_OK(cx_search_warm(b));
    json_t *res = run(b, "invoce renderer", CX_SEARCH_SEMANTIC);
    CX_CHECK(res && pos(res, x) == 0);
    json_decref(res);
    char *y = observe(a, "Webhook signatures are checked on the raw request body.");
    res = run(b, "webhok signatures", CX_SEARCH_SEMANTIC);
    CX_CHECK(res && pos(res, y) == 0);
    json_decref(res);
    free(x);
    free(y);
    cx_store_free(b);
    cx_store_free(a);
}

/* A search between two chunks of a warm-up (as cortexd's worker runs one
 * while its warm-up thread loads a large index): it ranks by the vectors
 * loaded so far and says so, and the warm-up then goes on. */
static cx_store *warm_conn;
static json_t *warm_seen; /* the answer of the search between chunks */

static int search_between(void *ud, size_t done, size_t total) {
    (void)ud;
    (void)total;
    if (!warm_seen && done > 0) /* after the first chunk of vectors */
        warm_seen = run(warm_conn, "socket parser build", CX_SEARCH_HYBRID);
    return 0;
}

static void test_warm_between_requests(void) {
    cx_store *a = fresh("warm-between"), *b = NULL;
    if (!a)
        return;
    enum { N = 4800 }; /* more than a search loads itself while warming */
    cx_note *batch = calloc(N, sizeof *batch);
    char (*bodies)[80] = calloc(N, 80);
    for (int i = 0; i < N; i++) {
        snprintf(bodies[i], 80, "Socket %d of the parser build %d.", i, i * 3);
        batch[i].body = bodies[i];
    }
    json_t *out = NULL;
    for (int off = 0; off < N; off += 480) {
        out = NULL;
        CX_CHECK_OK(cx_store_observe(a, &who, batch + off, 480, NULL, NULL, &out));
        json_decref(out);
    }
    CX_CHECK_OK(cx_store_open(&b, cx_store_dir(a)));
    CX_CHECK_OK(cx_search_warm_expect(b));
    /* before the warm-up's first chunk: keyword results, semantic nothing */
    json_t *res = run(b, "socket parser build", CX_SEARCH_HYBRID);
    const char *why = res ? json_string_value(json_object_get(res, "degraded")) : NULL;
    CX_CHECK(why && strstr(why, "ranks 0 of about 4800 items while the vector index loads"));
    CX_CHECK(res && count(res) == 10);
    json_decref(res);
    warm_conn = b;
    warm_seen = NULL;
    CX_CHECK_OK(cx_search_warm_ex(b, search_between, NULL));
    why = warm_seen ? json_string_value(json_object_get(warm_seen, "degraded")) : NULL;
    CX_CHECK(why && strstr(why, "ranks 512 of about 4800 items"));
    CX_CHECK(warm_seen && count(warm_seen) == 10);
    json_decref(warm_seen);
    warm_seen = NULL;
    /* once it is done, nothing is degraded */
    res = run(b, "socket parser build", CX_SEARCH_SEMANTIC);
    CX_CHECK(res && count(res) == 10 && !json_object_get(res, "degraded"));
    json_decref(res);
    free(batch);
    free(bodies);
    cx_store_free(b);
    cx_store_free(a);
}

/* ---- migration from version 1 ---- */

/* The version 1 schema as it was released (src/store/schema.c, schema_v1). */
static const char *const v1_schema[] = {
    "CREATE TABLE items (rid INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,"
    " kind TEXT NOT NULL CHECK (kind IN ('observation','draft','thread','comment',"
    " 'artifact','subcortex')), status TEXT NOT NULL, subcortex TEXT NOT NULL,"
    " title TEXT NOT NULL DEFAULT '', body TEXT NOT NULL DEFAULT '',"
    " tags TEXT NOT NULL DEFAULT '[]', files TEXT NOT NULL DEFAULT '[]',"
    " evidence TEXT NOT NULL DEFAULT '[]', author TEXT, agent TEXT,"
    " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, server_seq INTEGER,"
    " visibility TEXT NOT NULL DEFAULT 'shared' CHECK (visibility IN ('shared','private')),"
    " parent_id TEXT REFERENCES items(id), content_hash TEXT,"
    " seen INTEGER NOT NULL DEFAULT 1, review TEXT, sync_rejected TEXT) STRICT;",
    "CREATE UNIQUE INDEX items_observation_hash ON items(content_hash, visibility)"
    " WHERE kind = 'observation';",
    "CREATE UNIQUE INDEX items_artifact_name ON items(title) WHERE kind = 'artifact';",
    "CREATE INDEX items_updated ON items(updated_at);",
    "CREATE INDEX items_parent ON items(parent_id) WHERE parent_id IS NOT NULL;",
    "CREATE INDEX items_review_queue ON items(created_at) WHERE kind = 'draft'"
    " AND status IN ('pending','changes_requested');",
    "CREATE TABLE blobs (sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL, uploaded INTEGER NOT NULL DEFAULT 0) STRICT;",
    "CREATE TABLE artifact_versions (artifact_id TEXT NOT NULL REFERENCES items(id),"
    " version INTEGER NOT NULL CHECK (version >= 1), sha256 TEXT NOT NULL REFERENCES"
    " blobs(sha256), size INTEGER NOT NULL, status TEXT NOT NULL, created_at INTEGER NOT NULL,"
    " source_path TEXT, author TEXT, agent TEXT, PRIMARY KEY (artifact_id, version)) STRICT;",
    "CREATE TABLE reviews (rid INTEGER PRIMARY KEY, item_id TEXT NOT NULL REFERENCES items(id),"
    " decision TEXT NOT NULL, reason TEXT, reviewer TEXT, agent TEXT, at INTEGER NOT NULL)"
    " STRICT;",
    "CREATE INDEX reviews_item ON reviews(item_id);",
    "CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, op_id TEXT NOT NULL UNIQUE,"
    " op TEXT NOT NULL, item_id TEXT NOT NULL, payload TEXT NOT NULL,"
    " created_at INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,"
    " rejected_reason TEXT) STRICT;",
    "CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;",
    "CREATE VIRTUAL TABLE items_fts USING fts5(title, body, tags, content='items',"
    " content_rowid='rid', tokenize='unicode61 remove_diacritics 2');",
    "INSERT INTO items_fts(items_fts, rank) VALUES('rank', 'bm25(4.0, 1.0, 2.0)');",
    "CREATE VIRTUAL TABLE items_curated_fts USING fts5(title, body, tags, content='items',"
    " content_rowid='rid', tokenize='unicode61 remove_diacritics 2');",
    "INSERT INTO items_curated_fts(items_curated_fts, rank) VALUES('rank',"
    " 'bm25(4.0, 1.0, 2.0)');",
    "CREATE TABLE fts_state (k INTEGER PRIMARY KEY CHECK (k = 0), indexed_rid INTEGER NOT NULL)"
    " STRICT;",
    "INSERT INTO fts_state VALUES (0, 0);",
    "CREATE TRIGGER items_fts_delete AFTER DELETE ON items"
    " WHEN old.rid <= (SELECT indexed_rid FROM fts_state) BEGIN"
    " INSERT INTO items_fts(items_fts, rowid, title, body, tags)"
    " VALUES ('delete', old.rid, old.title, old.body, old.tags);"
    " INSERT INTO items_curated_fts(items_curated_fts, rowid, title, body, tags)"
    " SELECT 'delete', old.rid, old.title, old.body, old.tags"
    " WHERE old.kind IN ('draft', 'thread', 'artifact'); END;",
    "CREATE TRIGGER items_fts_update AFTER UPDATE OF title, body, tags ON items"
    " WHEN old.rid <= (SELECT indexed_rid FROM fts_state) BEGIN"
    " INSERT INTO items_fts(items_fts, rowid, title, body, tags)"
    " VALUES ('delete', old.rid, old.title, old.body, old.tags);"
    " INSERT INTO items_fts(rowid, title, body, tags) VALUES (new.rid, new.title, new.body,"
    " new.tags);"
    " INSERT INTO items_curated_fts(items_curated_fts, rowid, title, body, tags)"
    " SELECT 'delete', old.rid, old.title, old.body, old.tags"
    " WHERE old.kind IN ('draft', 'thread', 'artifact');"
    " INSERT INTO items_curated_fts(rowid, title, body, tags)"
    " SELECT new.rid, new.title, new.body, new.tags"
    " WHERE new.kind IN ('draft', 'thread', 'artifact'); END;",
    "INSERT INTO items (id, kind, status, subcortex, body, created_at, updated_at,"
    " content_hash) VALUES"
    " ('01J00000000000000000000001', 'observation', 'recorded', 'general',"
    "  'loadConfigDefaults reads REMIT_* variables first.', 1, 1, 'h1'),"
    " ('01J00000000000000000000002', 'observation', 'recorded', 'general',"
    "  'The flaky websocket test times out on slow CI runners.', 2, 2, 'h2'),"
    " ('01J00000000000000000000003', 'thread', 'canon', 'general',"
    "  'Webhook signatures are verified on the raw body.', 3, 3, NULL);",
    /* observations pulled before version 3: no content hash, one text twice */
    "INSERT INTO items (id, kind, status, subcortex, body, created_at, updated_at,"
    " server_seq) VALUES"
    " ('01J00000000000000000000004', 'observation', 'recorded', 'general',"
    "  'Pulled  note:\tthe staging DB is reset nightly.', 4, 4, 7),"
    " ('01J00000000000000000000005', 'observation', 'recorded', 'general',"
    "  'Pulled note: the staging DB is reset nightly.', 5, 5, 8);",
    "INSERT INTO items_fts(rowid, title, body, tags) SELECT rid, title, body, tags FROM items;",
    "INSERT INTO items_curated_fts(rowid, title, body, tags) SELECT rid, title, body, tags"
    " FROM items WHERE kind = 'thread';",
    "UPDATE fts_state SET indexed_rid = 3;",
    "PRAGMA user_version = 1;",
    NULL,
};

static void test_migration(void) {
    char *dir = cx_fs_join(root, "v1");
    char *path = cx_fs_join(dir, "cortex.db");
    cx_fs_mkdir_p(dir, 0700);
    sqlite3 *db = NULL;
    CX_CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    for (int i = 0; v1_schema[i]; i++) {
        char *err = NULL;
        CX_CHECK(sqlite3_exec(db, v1_schema[i], NULL, NULL, &err) == SQLITE_OK);
        if (err)
            fprintf(stderr, "v1 schema: %s\n", err);
        sqlite3_free(err);
    }
    sqlite3_close(db);

    cx_store *s = NULL;
    CX_CHECK_OK(cx_store_open(&s, dir));
    if (!s)
        goto out;
    CX_CHECK_INT(q1(s, "PRAGMA user_version"), 8);
    /* the fixture's four observations (two of them pulled) */
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM items WHERE fold_key IS NOT NULL"), 4);
    /* version 3: an artifact's name is no longer unique (two workspaces may
     * publish one name), blobs say whether their content is here */
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM pragma_index_list('items')"
                       " WHERE name = 'items_artifact_name' AND \"unique\" = 0"), 1);
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM pragma_table_info('blobs') WHERE name = 'present'"),
                 1);
    /* pulled observations got the hash observe gives, once per text: the
     * same text observed now is a repeat of the first */
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM items WHERE rid IN (4, 5)"
                       " AND content_hash IS NOT NULL"), 1);
    {
        static const cx_actor me = {.author = "ada@example.com"};
        cx_note n = {.body = "Pulled note: the staging DB is reset nightly."};
        json_t *o = NULL;
        CX_CHECK_OK(cx_store_observe(s, &me, &n, 1, NULL, NULL, &o));
        json_t *r0 = json_array_get(json_object_get(o, "results"), 0);
        CX_CHECK(json_is_true(json_object_get(r0, "repeat")));
        CX_CHECK(json_string_value(json_object_get(r0, "id")) &&
                 strcmp(json_string_value(json_object_get(r0, "id")),
                        "01J00000000000000000000004") == 0);
        json_decref(o);
    }
    /* the index is rebuilt with the new tokenizer */
    json_t *res = run(s, "load config defaults", CX_SEARCH_KEYWORD);
    CX_CHECK(res && count(res) == 1);
    json_decref(res);
    /* old items (the fixture's five) have no vectors until the background
     * embeds them */
    json_t *m = model_status(s, "builtin-ngram-v3-320");
    CX_CHECK(m && iget(m, "pending") == 5 && iget(m, "vectors") == 0);
    json_decref(m);
    res = run(s, "webhok signatures", CX_SEARCH_SEMANTIC);
    CX_CHECK(res && count(res) == 0);
    json_decref(res);
    size_t done = 0;
    CX_CHECK_OK(cx_store_embed_pending(s, 0, &done));
    CX_CHECK_INT(done, 5);
    res = run(s, "webhok signatures", CX_SEARCH_SEMANTIC);
    CX_CHECK(res && count(res) == 1);
    CX_CHECK_STR(res ? sget(result(res, 0), "id") : NULL, "01J00000000000000000000003");
    CX_CHECK_STR(res ? sget(json_object_get(result(res, 0), "why"), "trust") : NULL, "canon");
    json_decref(res);
    /* and an old observation takes near-duplicates */
    cx_note n = {.body = "The flaky websocket test times out on the slow CI runners."};
    json_t *r = observe_note(s, &n);
    CX_CHECK(r && json_is_true(json_object_get(r, "folded")));
    CX_CHECK_STR(r ? sget(r, "id") : NULL, "01J00000000000000000000002");
    json_decref(r);
    cx_store_free(s);
out:
    free(dir);
    free(path);
}

/* A store written by an earlier built-in model (another model id, here
 * with vectors of another dimension) drops those vectors when it opens
 * with the new one, finds nothing by them, and gets every item embedded
 * again by the background work; opening again drops nothing. */
static void test_builtin_model_change(void) {
    cx_store *s = fresh("builtin-change");
    if (!s)
        return;
    char *target = observe(s, "How to receive webhooks: verify the signature first.");
    free(observe(s, "The nightly backup job copies the ledger database to cold storage."));
    free(observe(s, "Rotate the signing keys of the payment provider every quarter."));
    char *dir = strdup(cx_store_dir(s));
    char old[64];
    snprintf(old, sizeof old, "builtin-ngram-v1-%d", CX_EMBED_BUILTIN_DIM - 64);
    sqlite3_stmt *st = NULL;
    CX_CHECK(sqlite3_prepare_v2(cx_store_sqlite(s),
                                "UPDATE embed_models SET name = ?1 WHERE name = ?2", -1, &st,
                                NULL) == SQLITE_OK);
    sqlite3_bind_text(st, 1, old, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, cx_embed_model_id(cx_store_builtin_embedder(s)), -1,
                      SQLITE_STATIC);
    CX_CHECK(sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(cx_store_sqlite(s)) == 1);
    sqlite3_finalize(st);
    CX_CHECK(sqlite3_exec(cx_store_sqlite(s), "UPDATE builtin_vectors SET v = zeroblob(256)", NULL,
                          NULL, NULL) == SQLITE_OK);
    cx_store_free(s);

    s = NULL;
    CX_CHECK_OK(cx_store_open(&s, dir));
    if (!s)
        goto out;
    char now[64];
    snprintf(now, sizeof now, "builtin-ngram-v3-%d", CX_EMBED_BUILTIN_DIM);
    CX_CHECK_STR(cx_embed_model_id(cx_store_builtin_embedder(s)), now);
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM builtin_vectors"), 0);
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM items WHERE sig IS NOT NULL"), 0);
    json_t *m = model_status(s, now);
    CX_CHECK(m && iget(m, "vectors") == 0 && iget(m, "pending") == 3);
    json_decref(m);
    m = model_status(s, old); /* forgotten, not pending for ever */
    CX_CHECK(m == NULL);
    json_decref(m);
    json_t *res = run(s, "webhok signatrue", CX_SEARCH_SEMANTIC);
    CX_CHECK(res && count(res) == 0);
    json_decref(res);
    size_t done = 0;
    CX_CHECK_OK(cx_store_embed_pending(s, 0, &done));
    CX_CHECK_INT(done, 3);
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM builtin_vectors WHERE length(v) = %d",
             CX_EMBED_BUILTIN_DIM);
    CX_CHECK_INT(q1(s, sql), 3);
    res = run(s, "webhok signatrue", CX_SEARCH_SEMANTIC);
    CX_CHECK(res && pos(res, target) == 0);
    json_decref(res);
    cx_store_free(s);

    s = NULL;
    CX_CHECK_OK(cx_store_open(&s, dir));
    if (s) {
        CX_CHECK_INT(q1(s, sql), 3);
        cx_store_free(s);
    }
out:
    free(dir);
    free(target);
}

/* ---- migration from version 5: built-in vectors out of the items' rows ---- */

/* The answer of a search as text, without the final scores (their recency
 * part moves with the clock); ranks, lists, similarities and BM25 stay. */
static char *answer_text(cx_store *s, const char *text, cx_search_mode mode) {
    json_t *res = run(s, text, mode);
    if (!res)
        return strdup("(failed)");
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(res, "results"), i, r) {
        json_object_del(r, "score");
        json_object_del(json_object_get(r, "why"), "score");
    }
    char *t = json_dumps(res, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(res);
    return t ? t : strdup("(failed)");
}

/* rid, scale and vector bytes of every built-in vector, as one text */
static char *vectors_text(cx_store *s, const char *sql) {
    sqlite3_stmt *st = NULL;
    size_t cap = 1u << 20, len = 0;
    char *buf = calloc(1, cap);
    if (!buf || sqlite3_prepare_v2(cx_store_sqlite(s), sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "vectors_text(%s): %s\n", sql, sqlite3_errmsg(cx_store_sqlite(s)));
        sqlite3_finalize(st);
        free(buf);
        return strdup("(failed)");
    }
    while (sqlite3_step(st) == SQLITE_ROW && len + 64 < cap) {
        const unsigned char *v = sqlite3_column_blob(st, 2);
        int n = sqlite3_column_bytes(st, 2);
        uint64_t h = 1469598103934665603ull;
        for (int i = 0; i < n; i++)
            h = (h ^ v[i]) * 1099511628211ull;
        len += (size_t)snprintf(buf + len, cap - len, "%lld:%.9g:%d:%llx;",
                                (long long)sqlite3_column_int64(st, 0),
                                sqlite3_column_double(st, 1), n, (unsigned long long)h);
    }
    sqlite3_finalize(st);
    return buf;
}

/* A version 5 store, as cortex wrote it: the built-in vector in the items'
 * rows (items.vec, items.vec_scale, items_novec). */
static const char *const to_v5[] = {
    "DROP TRIGGER items_bvec_delete",
    "DROP TRIGGER items_bvec_move",
    "DROP TRIGGER items_bvec_compat_insert",
    "DROP TRIGGER items_bvec_compat_update",
    "UPDATE items SET vec = (SELECT v FROM builtin_vectors b WHERE b.rid = items.rid),"
    " vec_scale = (SELECT scale FROM builtin_vectors b WHERE b.rid = items.rid)",
    "DROP TABLE builtin_vectors",
    "DROP INDEX items_nosig",
    "CREATE INDEX items_novec ON items(rid) WHERE vec IS NULL",
    "PRAGMA user_version = 5",
    NULL,
};

static void test_migration_v6(void) {
    cx_store *s = fresh("v5");
    char *dir = NULL, *before_vec = NULL, *after_vec = NULL;
    enum { N = 300, Q = 4 };
    static const char *const queries[Q] = {"socket parser", "invoce renderer fonts",
                                           "webhok signatrue", "deadlock 17"};
    char *before[Q][3] = {{0}};
    if (!s)
        return;
    dir = strdup(cx_store_dir(s));
    cx_note *batch = calloc(N, sizeof *batch);
    char (*bodies)[96] = calloc(N, 96);
    static const char *const topics[] = {"socket parser", "invoice renderer and its fonts",
                                         "webhook signature check", "scheduler deadlock"};
    for (int i = 0; i < N; i++) {
        snprintf(bodies[i], 96, "Note %d about the %s, case %d.", i, topics[i % 4], i * 7);
        batch[i].body = bodies[i];
        batch[i].subcortex = i % 3 ? "general" : "build";
    }
    json_t *out = NULL;
    CX_CHECK_OK(cx_store_observe(s, &who, batch, N, NULL, NULL, &out));
    json_decref(out);
    char *d = draft_citing(s, "Parser sockets", "The socket parser drops a frame.", NULL, 0, true);
    free(d);
    for (int q = 0; q < Q; q++)
        for (int m = 0; m < 3; m++)
            before[q][m] = answer_text(s, queries[q], (cx_search_mode)m);
    before_vec = vectors_text(s, "SELECT rid, scale, v FROM builtin_vectors ORDER BY rid");
    long long sigs = q1(s, "SELECT count(*) FROM items WHERE sig IS NOT NULL");
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM builtin_vectors"), N + 1);
    for (int i = 0; to_v5[i]; i++) {
        char *err = NULL;
        CX_CHECK(sqlite3_exec(cx_store_sqlite(s), to_v5[i], NULL, NULL, &err) == SQLITE_OK);
        if (err)
            fprintf(stderr, "to v5: %s: %s\n", to_v5[i], err);
        sqlite3_free(err);
    }
    char *v5_vec = vectors_text(s, "SELECT rid, vec_scale, vec FROM items WHERE vec IS NOT NULL"
                                   " ORDER BY rid");
    CX_CHECK_STR(v5_vec, before_vec); /* the fixture holds the same vectors */
    free(v5_vec);
    cx_store_free(s);

    s = NULL;
    CX_CHECK_OK(cx_store_open(&s, dir));
    if (!s)
        goto out;
    CX_CHECK_INT(q1(s, "PRAGMA user_version"), 8);
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM items WHERE vec IS NOT NULL"
                       " OR vec_scale IS NOT NULL"), 0);
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM sqlite_master WHERE name = 'items_novec'"), 0);
    after_vec = vectors_text(s, "SELECT rid, scale, v FROM builtin_vectors ORDER BY rid");
    CX_CHECK_STR(after_vec, before_vec);
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM items WHERE sig IS NOT NULL"), sigs);
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM builtin_vectors b JOIN items i USING (rid)"
                       " WHERE b.kind = i.kind AND b.subcortex = i.subcortex"), N + 1);
    /* nothing to embed again, and the same answers, from a cold index */
    size_t done = 99;
    CX_CHECK_OK(cx_store_embed_pending(s, 0, &done));
    CX_CHECK_INT((long long)done, 0);
    for (int q = 0; q < Q; q++)
        for (int m = 0; m < 3; m++) {
            char *now = answer_text(s, queries[q], (cx_search_mode)m);
            CX_CHECK_STR(now, before[q][m]);
            free(now);
        }
    /* the narrow rows follow their items: a moved item, a deleted one */
    CX_CHECK(sqlite3_exec(cx_store_sqlite(s),
                          "UPDATE items SET subcortex = 'moved' WHERE rid = 1;"
                          "DELETE FROM items WHERE rid = 2",
                          NULL, NULL, NULL) == SQLITE_OK);
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM builtin_vectors WHERE rid = 1 AND"
                       " subcortex = 'moved'"), 1);
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM builtin_vectors WHERE rid = 2"), 0);

    /* a cortex of version 5 still running (a daemon during an upgrade)
     * writes vectors into the rows, as it did: they land in the table */
    char *later = observe(s, "The webhook verifier rejects signatures with a trailing newline.");
    CX_CHECK(sqlite3_exec(cx_store_sqlite(s),
                          "CREATE TEMP TABLE v5_copy AS SELECT rid, scale, v FROM builtin_vectors"
                          " WHERE rid = (SELECT max(rid) FROM items);"
                          "DELETE FROM builtin_vectors WHERE rid = (SELECT rid FROM v5_copy);"
                          /* what its vec_write did */
                          "UPDATE items SET vec = (SELECT v FROM v5_copy), vec_scale ="
                          " (SELECT scale FROM v5_copy) WHERE rid = (SELECT rid FROM v5_copy);"
                          /* and its insert of a new item */
                          "INSERT INTO items (id, kind, status, subcortex, body, created_at,"
                          " updated_at, sig, vec, vec_scale) SELECT '01J00000000000000000000099',"
                          " 'observation', 'recorded', 'general', 'copied', 1, 1, 7, v, scale"
                          " FROM v5_copy",
                          NULL, NULL, NULL) == SQLITE_OK);
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM builtin_vectors b JOIN temp.v5_copy c"
                       " ON b.v = c.v AND b.scale = c.scale"), 2);
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM items WHERE vec IS NOT NULL"
                       " OR vec_scale IS NOT NULL"), 0);
    json_t *res = run(s, "webhok verifer trailing newline", CX_SEARCH_SEMANTIC);
    CX_CHECK(res && pos(res, later) >= 0);
    json_decref(res);
    free(later);
    cx_store_free(s);

    /* running the step again (a store set back to version 5 by hand) is
     * harmless */
    s = NULL;
    CX_CHECK_OK(cx_store_open(&s, dir));
    if (!s)
        goto out;
    CX_CHECK(sqlite3_exec(cx_store_sqlite(s), "PRAGMA user_version = 5", NULL, NULL, NULL) ==
             SQLITE_OK);
    cx_store_free(s);
    s = NULL;
    CX_CHECK_OK(cx_store_open(&s, dir));
    CX_CHECK_INT(s ? q1(s, "SELECT count(*) FROM builtin_vectors") : -1, N + 2);
out:
    for (int q = 0; q < Q; q++)
        for (int m = 0; m < 3; m++)
            free(before[q][m]);
    free(before_vec);
    free(after_vec);
    free(batch);
    free(bodies);
    free(dir);
    cx_store_free(s);
}

static int ref_order(const void *a, const void *b) {
    const cx_sem_hit *x = a, *y = b;
    if (x->sim != y->sim)
        return x->sim > y->sim ? -1 : 1;
    return x->rid > y->rid ? -1 : x->rid < y->rid;
}

/* cx_vindex_best (the selection of a semantic list, fed as the scan feeds
 * it, trimming its buffer whenever it fills) against a sort of every hit
 * at or above the floor: the same hits in the same order, with many ties
 * of similarity, hits below the floor, NaN, and streams of up to 25 times
 * the buffer. */
static void test_sem_select(void) {
    static const size_t sizes[] = {0, 1, 2, 15, 17, 199, 200, 201, 799, 800, 801, 5000, 20000};
    static const size_t maxes[] = {1, 10, 200};
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    size_t cases = 0, bad = 0;
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        for (size_t mi = 0; mi < sizeof maxes / sizeof maxes[0]; mi++) {
            for (int shape = 0; shape < 4; shape++) {
                size_t n = sizes[si], max = maxes[mi];
                cx_sem_hit *h = calloc(n ? n : 1, sizeof *h), *ref = calloc(n ? n : 1, sizeof *h);
                cx_sem_hit *got = calloc(max, sizeof *got);
                for (size_t i = 0; i < n; i++) {
                    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                    unsigned r = (unsigned)(seed >> 33);
                    float sim;
                    if (shape == 0) /* few distinct values: ties everywhere */
                        sim = (float)(r % 8) / 10.0f;
                    else if (shape == 1) /* rising: every hit beats the last */
                        sim = (float)i / (float)(n + 1);
                    else if (shape == 2) /* falling: the first are the best */
                        sim = 1.0f - (float)i / (float)(n + 1);
                    else
                        sim = r % 97 == 0 ? NAN : r % 5 == 0 ? -2.0f : (float)(r % 10000) / 10000.0f;
                    /* unique row ids, not in order */
                    h[i] = (cx_sem_hit){(int64_t)((i * 7919u) % (n + 1) + 1), sim};
                }
                const double floor = 0.18;
                size_t nref = 0;
                for (size_t i = 0; i < n; i++)
                    if ((float)h[i].sim >= (float)floor && h[i].sim >= floor)
                        ref[nref++] = h[i];
                qsort(ref, nref, sizeof *ref, ref_order);
                if (nref > max)
                    nref = max;
                size_t ngot = 99;
                CX_CHECK_OK(cx_vindex_best(h, n, max, floor, got, &ngot));
                cases++;
                bool same = ngot == nref;
                for (size_t i = 0; same && i < nref; i++)
                    same = got[i].rid == ref[i].rid && got[i].sim == ref[i].sim;
                if (!same && bad++ < 3)
                    fprintf(stderr, "select n=%zu max=%zu shape=%d: %zu hits, expected %zu\n", n,
                            max, shape, ngot, nref);
                free(h);
                free(ref);
                free(got);
            }
        }
    }
    CX_CHECK(cases == 13 * 3 * 4);
    CX_CHECK(bad == 0);
}

int main(void) {
    root = cx_test_tmpdir();
    if (!root) {
        fprintf(stderr, "no temporary directory\n");
        return 2;
    }
    test_tokenizer();
    test_identifiers();
    test_typo_and_paraphrase();
    test_trust_and_stale();
    test_canon_over_evidence();
    test_folding();
    test_models();
    test_builtin_model_change();
    test_incremental();
    test_warm_between_requests();
    test_migration();
    test_migration_v6();
    test_sem_select();
    cx_test_rmrf(root);
    free(root);
    return cx_test_done();
}
