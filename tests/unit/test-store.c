/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for src/store on real SQLite files in temporary directories:
 * migrations, observe (single, batch, all-or-none, repeats), validation,
 * drafts, comments, publish and blobs, get, recent, review, the outbox,
 * maintenance on a second connection yielding to writes, and several
 * processes writing one store at once, and WAL frames as walvfs.c writes
 * them. */
#include "test.h"

#include "store/store-internal.h" /* cx_store_fts_sync */
#include "store/kv.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/fsx.h"

#include <sodium.h>
#include <sqlite3.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

static char *root;

/* A store in a fresh sub-directory (that does not exist yet). */
static cx_store *fresh(const char *name) {
    char *dir = cx_fs_join(root, name);
    cx_store *s = NULL;
    CX_CHECK_OK(cx_store_open(&s, dir));
    free(dir);
    return s;
}

/* One integer from a SQL query on the store's file, through a separate
 * connection (what another process would see). */
static long long q1(cx_store *s, const char *sql) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (sqlite3_open_v2(cx_store_db_path(s), &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    else
        fprintf(stderr, "q1(%s): %s\n", sql, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* The same through the store's own connection: the search index needs the
 * "cortex" tokenizer, which the store registers on its connections. */
static long long q1s(cx_store *s, const char *sql) {
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (sqlite3_prepare_v2(cx_store_sqlite(s), sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    else
        fprintf(stderr, "q1s(%s): %s\n", sql, sqlite3_errmsg(cx_store_sqlite(s)));
    sqlite3_finalize(st);
    return v;
}

static const char *sget(json_t *o, const char *key) {
    return json_string_value(json_object_get(o, key));
}

static long long iget(json_t *o, const char *key) {
    return (long long)json_integer_value(json_object_get(o, key));
}

static cx_note note(const char *body) {
    cx_note n = {.body = body};
    return n;
}

static const cx_actor who = {.author = "ada@example.com", .agent = "test-agent"};

/* Observes one text; returns its id (static buffer) or NULL. */
static const char *observe1(cx_store *s, const char *body, bool *repeat) {
    static char id[64];
    cx_note n = note(body);
    json_t *out = NULL;
    int r = cx_store_observe(s, &who, &n, 1, NULL, NULL, &out);
    if (r != 0) {
        fprintf(stderr, "observe1: %s\n", cx_error_last());
        return NULL;
    }
    json_t *res = json_array_get(json_object_get(out, "results"), 0);
    snprintf(id, sizeof id, "%s", sget(res, "id"));
    if (repeat)
        *repeat = json_is_true(json_object_get(res, "repeat"));
    json_decref(out);
    return id;
}

static void test_open_and_migrate(void) {
    cx_store *s = fresh("open/nested/state");
    if (!s)
        return;
    char *blobs = cx_fs_join(cx_store_dir(s), "blobs");
    CX_CHECK(cx_fs_is_dir(blobs));
    free(blobs);
    CX_CHECK(strstr(cx_store_db_path(s), "open/nested/state/cortex.db") != NULL);
    CX_CHECK_INT(q1(s, "PRAGMA user_version"), 8);
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM sqlite_master WHERE name IN ('items','items_fts',"
                       "'outbox','blobs','artifact_versions','reviews')"),
                 6);
    json_t *st = NULL;
    CX_CHECK_OK(cx_store_status(s, &st));
    CX_CHECK_INT(iget(st, "schema_version"), 8);
    CX_CHECK_INT(iget(json_object_get(st, "items"), "total"), 0);
    CX_CHECK(sget(st, "sqlite_version") && sget(st, "sqlite_version")[0] == '3');
    CX_CHECK(iget(st, "db_bytes") > 0);
    json_decref(st);

    /* journal mode is WAL, seen from another connection */
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    sqlite3_open(cx_store_db_path(s), &db);
    sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL);
    CX_CHECK(sqlite3_step(q) == SQLITE_ROW &&
             strcmp((const char *)sqlite3_column_text(q, 0), "wal") == 0);
    sqlite3_finalize(q);
    sqlite3_close(db);

    const char *id = observe1(s, "survives a reopen", NULL);
    char saved[64];
    snprintf(saved, sizeof saved, "%s", id ? id : "");
    char *dir = strdup(cx_store_dir(s));
    cx_store_free(s);

    s = NULL;
    CX_CHECK_OK(cx_store_open(&s, dir));
    json_t *item = NULL;
    CX_CHECK_OK(cx_store_get(s, saved, &item));
    CX_CHECK_STR(sget(item, "body"), "survives a reopen");
    json_decref(item);
    cx_store_free(s);

    /* a database from a newer cortex is refused, not damaged */
    char *path = cx_fs_join(dir, "cortex.db");
    sqlite3_open(path, &db);
    sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL);
    sqlite3_close(db);
    s = NULL;
    CX_CHECK_INT(cx_store_open(&s, dir), CX_EFAIL);
    CX_CHECK(strstr(cx_error_last(), "newer") != NULL);
    CX_CHECK(s == NULL);
    sqlite3_open(path, &db);
    sqlite3_exec(db, "PRAGMA user_version=6", NULL, NULL, NULL);
    sqlite3_close(db);
    CX_CHECK_OK(cx_store_open(&s, dir));
    cx_store_free(s);
    free(path);
    free(dir);

    CX_CHECK_INT(cx_store_open(&s, ""), CX_EINVAL);
    /* a state "directory" that is a file */
    char *file = cx_fs_join(root, "a-file");
    cx_fs_write_atomic(file, "x", 1, 0600);
    s = NULL;
    CX_CHECK(cx_store_open(&s, file) != 0);
    CX_CHECK(s == NULL);
    free(file);
}

static void test_observe(void) {
    cx_store *s = fresh("observe");
    if (!s)
        return;
    const char *tags[] = {"zeta", "alpha", "zeta"};
    const char *files[] = {"src/a.c", "src/b.c"};
    cx_note n = {.title = "Build flag", .body = "Use -Db_sanitize=address for ASan.",
                 .subcortex = "build", .tags = {tags, 3}, .files = {files, 2}};
    json_t *out = NULL;
    CX_CHECK_OK(cx_store_observe(s, &who, &n, 1, NULL, NULL, &out));
    CX_CHECK_INT(iget(out, "recorded"), 1);
    CX_CHECK_INT(iget(out, "repeats"), 0);
    json_t *r0 = json_array_get(json_object_get(out, "results"), 0);
    CX_CHECK(json_is_false(json_object_get(r0, "repeat")));
    char id[64];
    snprintf(id, sizeof id, "%s", sget(r0, "id"));
    CX_CHECK_INT(strlen(id), 26);
    json_decref(out);

    json_t *item = NULL;
    CX_CHECK_OK(cx_store_get(s, id, &item));
    CX_CHECK_STR(sget(item, "id"), id);
    CX_CHECK_STR(sget(item, "kind"), "observation");
    CX_CHECK_STR(sget(item, "status"), "recorded");
    CX_CHECK_STR(sget(item, "subcortex"), "build");
    CX_CHECK_STR(sget(item, "title"), "Build flag");
    CX_CHECK_STR(sget(item, "visibility"), "shared");
    CX_CHECK_STR(sget(item, "author"), "ada@example.com");
    CX_CHECK_STR(sget(item, "agent"), "test-agent");
    CX_CHECK_INT(iget(item, "seen"), 1);
    json_t *t = json_object_get(item, "tags");
    CX_CHECK_INT(json_array_size(t), 2); /* sorted, de-duplicated */
    CX_CHECK_STR(json_string_value(json_array_get(t, 0)), "alpha");
    CX_CHECK_STR(json_string_value(json_array_get(t, 1)), "zeta");
    CX_CHECK_INT(json_array_size(json_object_get(item, "files")), 2);
    CX_CHECK(json_object_get(item, "server_seq") == NULL);
    CX_CHECK(json_object_get(item, "evidence") == NULL);
    CX_CHECK(json_object_get(item, "comments") == NULL);
    const char *created = sget(item, "created_at");
    uint64_t ms = 0;
    CX_CHECK(created && cx_clock_parse(created, &ms) == 0 && ms > 0);
    json_decref(item);

    /* lower-case id works too */
    char lower[64];
    for (size_t i = 0; i <= strlen(id); i++)
        lower[i] = (char)((id[i] >= 'A' && id[i] <= 'Z') ? id[i] + 32 : id[i]);
    item = NULL;
    CX_CHECK_OK(cx_store_get(s, lower, &item));
    json_decref(item);

    /* The same text again, whitespace aside: the first id, repeat=true */
    bool repeat = false;
    const char *again = observe1(s, "  Use -Db_sanitize=address\n\tfor   ASan. ", &repeat);
    CX_CHECK_STR(again, id);
    CX_CHECK(repeat);
    item = NULL;
    CX_CHECK_OK(cx_store_get(s, id, &item));
    CX_CHECK_INT(iget(item, "seen"), 2);
    json_decref(item);
    /* different text is different */
    const char *other = observe1(s, "Use -Db_sanitize=undefined for UBSan.", &repeat);
    CX_CHECK(other && strcmp(other, id) != 0 && !repeat);

    /* a batch with a repeat inside it and one of an earlier item */
    cx_note batch[3] = {note("batch one"), note("batch two"), note("batch  one")};
    out = NULL;
    CX_CHECK_OK(cx_store_observe(s, &who, batch, 3, NULL, NULL, &out));
    CX_CHECK_INT(iget(out, "recorded"), 2);
    CX_CHECK_INT(iget(out, "repeats"), 1);
    json_t *res = json_object_get(out, "results");
    CX_CHECK_INT(json_array_size(res), 3);
    CX_CHECK_STR(sget(json_array_get(res, 2), "id"), sget(json_array_get(res, 0), "id"));
    CX_CHECK(json_is_true(json_object_get(json_array_get(res, 2), "repeat")));
    json_decref(out);

    /* defaults: subcortex general, title "" */
    const char *plain = observe1(s, "plain", NULL);
    item = NULL;
    CX_CHECK_OK(cx_store_get(s, plain, &item));
    CX_CHECK_STR(sget(item, "subcortex"), "general");
    CX_CHECK_STR(sget(item, "title"), "");
    json_decref(item);

    CX_CHECK_INT(q1(s, "SELECT count(*) FROM items"), 5);
    cx_store_free(s);
}

static int cancel_at_two(void *ud, size_t done, size_t total) {
    (void)ud, (void)total;
    return done == 2;
}

static void test_validation(void) {
    cx_store *s = fresh("validation");
    if (!s)
        return;
    json_t *out = NULL;
    int r;

    /* all or none: the third element is bad, nothing is recorded */
    cx_note batch[3] = {note("good one"), note("good two"), note("   ")};
    r = cx_store_observe(s, &who, batch, 3, NULL, NULL, &out);
    CX_CHECK_INT(r, CX_EINVAL);
    CX_CHECK(strstr(cx_error_last(), "observations[2].text") != NULL);
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM items"), 0);
    CX_CHECK(out == NULL);

    const char *many[17] = {"a", "b", "c", "d", "e", "f", "g", "h", "i",
                            "j", "k", "l", "m", "n", "o", "p", "q"};
    cx_note tagged = {.body = "x", .tags = {many, 17}};
    cx_note b2[2] = {note("fine"), tagged};
    CX_CHECK_INT(cx_store_observe(s, &who, b2, 2, NULL, NULL, &out), CX_ELIMIT);
    CX_CHECK(strstr(cx_error_last(), "observations[1].tags") != NULL);
    CX_CHECK(strstr(cx_error_last(), "16") != NULL);

    /* batch sizes */
    CX_CHECK_INT(cx_store_observe(s, &who, batch, 0, NULL, NULL, &out), CX_EINVAL);
    cx_note *big = calloc(CX_STORE_MAX_BATCH + 1, sizeof *big);
    for (int i = 0; i <= CX_STORE_MAX_BATCH; i++)
        big[i].body = "same";
    CX_CHECK_INT(cx_store_observe(s, &who, big, CX_STORE_MAX_BATCH + 1, NULL, NULL, &out),
                 CX_ELIMIT);
    CX_CHECK(strstr(cx_error_last(), "500") != NULL);
    out = NULL;
    CX_CHECK_OK(cx_store_observe(s, &who, big, CX_STORE_MAX_BATCH, NULL, NULL, &out));
    CX_CHECK_INT(iget(out, "repeats"), CX_STORE_MAX_BATCH - 1);
    json_decref(out);
    out = NULL;
    free(big);

    /* single-field checks, each with a message naming the field */
    cx_note n = note("");
    CX_CHECK_INT(cx_store_observe(s, &who, &n, 1, NULL, NULL, &out), CX_EINVAL);
    CX_CHECK(strstr(cx_error_last(), "text") != NULL);
    n = note(NULL);
    CX_CHECK_INT(cx_store_observe(s, &who, &n, 1, NULL, NULL, &out), CX_EINVAL);
    n = note("bad \xff\xfe utf-8");
    CX_CHECK_INT(cx_store_observe(s, &who, &n, 1, NULL, NULL, &out), CX_EINVAL);
    CX_CHECK(strstr(cx_error_last(), "UTF-8") != NULL);
    n = note("overlong \xc0\xaf slash");
    CX_CHECK_INT(cx_store_observe(s, &who, &n, 1, NULL, NULL, &out), CX_EINVAL);
    char *huge = malloc(CX_STORE_MAX_TEXT + 2);
    memset(huge, 'a', CX_STORE_MAX_TEXT + 1);
    huge[CX_STORE_MAX_TEXT + 1] = '\0';
    n = note(huge);
    CX_CHECK_INT(cx_store_observe(s, &who, &n, 1, NULL, NULL, &out), CX_ELIMIT);
    CX_CHECK(strstr(cx_error_last(), "262144") != NULL);
    huge[CX_STORE_MAX_TEXT] = '\0'; /* exactly the limit is fine */
    CX_CHECK_OK(cx_store_observe(s, &who, &n, 1, NULL, NULL, &out));
    json_decref(out);
    out = NULL;
    free(huge);

    char title[CX_STORE_MAX_TITLE + 2];
    memset(title, 't', sizeof title - 1);
    title[sizeof title - 1] = '\0';
    n = note("titled");
    n.title = title;
    CX_CHECK_INT(cx_store_observe(s, &who, &n, 1, NULL, NULL, &out), CX_ELIMIT);
    CX_CHECK(strstr(cx_error_last(), "title") != NULL);
    n.title = "two\nlines";
    CX_CHECK_INT(cx_store_observe(s, &who, &n, 1, NULL, NULL, &out), CX_EINVAL);
    n.title = NULL;
    n.visibility = "public";
    CX_CHECK_INT(cx_store_observe(s, &who, &n, 1, NULL, NULL, &out), CX_EINVAL);
    CX_CHECK(strstr(cx_error_last(), "visibility") != NULL);
    n.visibility = NULL;
    const char *empty_tag[] = {""};
    n.tags = (cx_strv){empty_tag, 1};
    CX_CHECK_INT(cx_store_observe(s, &who, &n, 1, NULL, NULL, &out), CX_EINVAL);
    CX_CHECK(strstr(cx_error_last(), "tags[0]") != NULL);
    char longtag[CX_STORE_MAX_TAG + 2];
    memset(longtag, 'g', sizeof longtag - 1);
    longtag[sizeof longtag - 1] = '\0';
    const char *lt[] = {longtag};
    n.tags = (cx_strv){lt, 1};
    CX_CHECK_INT(cx_store_observe(s, &who, &n, 1, NULL, NULL, &out), CX_ELIMIT);
    n.tags = (cx_strv){0};
    const char *fl[CX_STORE_MAX_FILES + 1];
    for (int i = 0; i <= CX_STORE_MAX_FILES; i++)
        fl[i] = "f.c";
    n.files = (cx_strv){fl, CX_STORE_MAX_FILES + 1};
    CX_CHECK_INT(cx_store_observe(s, &who, &n, 1, NULL, NULL, &out), CX_ELIMIT);
    CX_CHECK(strstr(cx_error_last(), "files") != NULL);
    n.files = (cx_strv){0};
    const char *ev[] = {"01ARZ3NDEKTSV4RRFFQ69G5FAV"};
    n.evidence = (cx_strv){ev, 1};
    CX_CHECK_INT(cx_store_observe(s, &who, &n, 1, NULL, NULL, &out), CX_EINVAL);
    n.evidence = (cx_strv){0};
    n.subcortex = "has\ttab";
    CX_CHECK_INT(cx_store_observe(s, &who, &n, 1, NULL, NULL, &out), CX_EINVAL);
    n.subcortex = NULL;
    cx_actor bad_actor = {.author = "bad\xff"};
    CX_CHECK_INT(cx_store_observe(s, &bad_actor, &n, 1, NULL, NULL, &out), CX_EINVAL);
    CX_CHECK(out == NULL);

    /* a progress callback can cancel; nothing is kept */
    long long before = q1(s, "SELECT count(*) FROM items");
    cx_note three[3] = {note("p1"), note("p2"), note("p3")};
    CX_CHECK_INT(cx_store_observe(s, &who, three, 3, cancel_at_two, NULL, &out), CX_ECANCELED);
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM items"), before);

    /* NULL actor is fine */
    CX_CHECK_OK(cx_store_observe(s, NULL, three, 3, NULL, NULL, &out));
    json_decref(out);
    cx_store_free(s);
}

static void test_draft_comment_review(void) {
    cx_store *s = fresh("draft");
    if (!s)
        return;
    char obs[64];
    snprintf(obs, sizeof obs, "%s", observe1(s, "evidence for the draft", NULL));
    char lower[64];
    for (size_t i = 0; i <= strlen(obs); i++)
        lower[i] = (char)((obs[i] >= 'A' && obs[i] <= 'Z') ? obs[i] + 32 : obs[i]);

    const char *ev[] = {lower};
    const char *tags[] = {"ci"};
    cx_note d = {.title = "How CI caches", .body = "The CI caches ~/.cache keyed by lockfile.",
                 .subcortex = "build", .tags = {tags, 1}, .evidence = {ev, 1}};
    json_t *out = NULL;
    CX_CHECK_OK(cx_store_draft(s, &who, &d, &out));
    CX_CHECK_STR(sget(out, "status"), "pending");
    char draft[64];
    snprintf(draft, sizeof draft, "%s", sget(out, "id") ? sget(out, "id") : "");
    json_decref(out);

    /* evidence must exist, and the message names the missing id */
    const char *missing[] = {obs, "01ARZ3NDEKTSV4RRFFQ69G5FAV"};
    cx_note bad = d;
    bad.evidence = (cx_strv){missing, 2};
    out = NULL;
    CX_CHECK_INT(cx_store_draft(s, &who, &bad, &out), CX_ENOTFOUND);
    CX_CHECK(strstr(cx_error_last(), "01ARZ3NDEKTSV4RRFFQ69G5FAV") != NULL);
    bad = d;
    bad.title = NULL;
    CX_CHECK_INT(cx_store_draft(s, &who, &bad, &out), CX_EINVAL);
    CX_CHECK(strstr(cx_error_last(), "title") != NULL);
    bad = d;
    bad.body = "";
    CX_CHECK_INT(cx_store_draft(s, &who, &bad, &out), CX_EINVAL);
    CX_CHECK(strstr(cx_error_last(), "body") != NULL);
    CX_CHECK(out == NULL);

    json_t *item = NULL;
    CX_CHECK_OK(cx_store_get(s, draft, &item));
    CX_CHECK_STR(sget(item, "kind"), "draft");
    CX_CHECK_STR(json_string_value(json_array_get(json_object_get(item, "evidence"), 0)), obs);
    CX_CHECK_INT(json_array_size(json_object_get(item, "comments")), 0);
    json_decref(item);

    /* comments: on a draft fine, on an observation not, unknown target not */
    out = NULL;
    CX_CHECK_OK(cx_store_comment(s, &who, draft, "First comment.", &out));
    CX_CHECK_STR(sget(out, "target_id"), draft);
    char c1[64];
    snprintf(c1, sizeof c1, "%s", sget(out, "id") ? sget(out, "id") : "");
    json_decref(out);
    out = NULL;
    CX_CHECK_OK(cx_store_comment(s, &who, draft, "Second comment.", &out));
    json_decref(out);
    out = NULL;
    CX_CHECK_INT(cx_store_comment(s, &who, obs, "nope", &out), CX_EINVAL);
    CX_CHECK(strstr(cx_error_last(), "observation") != NULL);
    CX_CHECK_INT(cx_store_comment(s, &who, "01ARZ3NDEKTSV4RRFFQ69G5FAV", "nope", &out),
                 CX_ENOTFOUND);
    CX_CHECK_INT(cx_store_comment(s, &who, draft, "", &out), CX_EINVAL);
    CX_CHECK_INT(cx_store_comment(s, &who, "", "x", &out), CX_EINVAL);

    item = NULL;
    CX_CHECK_OK(cx_store_get(s, draft, &item));
    json_t *comments = json_object_get(item, "comments");
    CX_CHECK_INT(json_array_size(comments), 2);
    CX_CHECK_STR(sget(json_array_get(comments, 0), "id"), c1); /* oldest first */
    CX_CHECK_STR(sget(json_array_get(comments, 0), "body"), "First comment.");
    CX_CHECK_STR(sget(json_array_get(comments, 0), "parent_id"), draft);
    CX_CHECK_STR(sget(json_array_get(comments, 0), "kind"), "comment");
    CX_CHECK_STR(sget(json_array_get(comments, 0), "subcortex"), "build");
    json_decref(item);

    /* a second draft for reject / changes */
    cx_note d2 = {.title = "Wrong idea", .body = "Tabs everywhere."};
    out = NULL;
    CX_CHECK_OK(cx_store_draft(s, &who, &d2, &out));
    char draft2[64];
    snprintf(draft2, sizeof draft2, "%s", sget(out, "id") ? sget(out, "id") : "");
    json_decref(out);

    out = NULL;
    CX_CHECK_OK(cx_store_review_list(s, &out));
    CX_CHECK_INT(iget(out, "count"), 2);
    json_t *drafts = json_object_get(out, "drafts");
    CX_CHECK_STR(sget(json_array_get(drafts, 0), "id"), draft); /* oldest first */
    CX_CHECK_STR(sget(json_array_get(drafts, 0), "title"), "How CI caches");
    CX_CHECK(sget(json_array_get(drafts, 0), "snippet") != NULL);
    json_decref(out);

    const cx_actor reviewer = {.author = "grace@example.com", .agent = "cortex-cli"};
    out = NULL;
    CX_CHECK_INT(cx_store_review(s, &reviewer, draft, "maybe", NULL, &out), CX_EINVAL);
    CX_CHECK_INT(cx_store_review(s, &reviewer, draft2, "reject", NULL, &out), CX_EINVAL);
    CX_CHECK(strstr(cx_error_last(), "reason") != NULL);
    CX_CHECK_INT(cx_store_review(s, &reviewer, draft2, "changes_requested", "", &out),
                 CX_EINVAL);
    CX_CHECK_INT(cx_store_review(s, &reviewer, "01ARZ3NDEKTSV4RRFFQ69G5FAV", "approve", NULL,
                                 &out),
                 CX_ENOTFOUND);
    CX_CHECK_INT(cx_store_review(s, &reviewer, obs, "approve", NULL, &out), CX_ECONFLICT);
    CX_CHECK(out == NULL);

    CX_CHECK_OK(cx_store_review(s, &reviewer, draft2, "changes_requested", "Say why.", &out));
    CX_CHECK_STR(sget(out, "status"), "changes_requested");
    CX_CHECK_STR(sget(out, "kind"), "draft");
    json_decref(out);
    out = NULL;
    CX_CHECK_OK(cx_store_review_list(s, &out)); /* still awaiting review */
    CX_CHECK_INT(iget(out, "count"), 2);
    json_decref(out);
    out = NULL;
    CX_CHECK_OK(cx_store_review(s, &reviewer, draft2, "reject", "Not our style.", &out));
    CX_CHECK_STR(sget(out, "status"), "rejected");
    json_t *rv = json_object_get(out, "review");
    CX_CHECK_STR(sget(rv, "decision"), "reject");
    CX_CHECK_STR(sget(rv, "reason"), "Not our style.");
    CX_CHECK_STR(sget(rv, "reviewer"), "grace@example.com");
    json_decref(out);
    out = NULL;
    CX_CHECK_INT(cx_store_review(s, &reviewer, draft2, "approve", NULL, &out), CX_ECONFLICT);

    CX_CHECK_OK(cx_store_review(s, &reviewer, draft, "approve", NULL, &out));
    CX_CHECK_STR(sget(out, "id"), draft); /* same id */
    CX_CHECK_STR(sget(out, "kind"), "thread");
    CX_CHECK_STR(sget(out, "status"), "canon");
    CX_CHECK_STR(sget(json_object_get(out, "review"), "decision"), "approve");
    CX_CHECK(json_object_get(json_object_get(out, "review"), "reason") == NULL);
    CX_CHECK_INT(json_array_size(json_object_get(out, "comments")), 2);
    json_decref(out);
    out = NULL;
    CX_CHECK_INT(cx_store_review(s, &reviewer, draft, "approve", NULL, &out), CX_ECONFLICT);
    CX_CHECK(strstr(cx_error_last(), "thread") != NULL);

    /* comments on a canon thread */
    CX_CHECK_OK(cx_store_comment(s, &who, draft, "Still true in 2026.", &out));
    json_decref(out);
    out = NULL;

    CX_CHECK_OK(cx_store_review_list(s, &out));
    CX_CHECK_INT(iget(out, "count"), 0);
    json_decref(out);
    out = NULL;
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM reviews"), 3);

    CX_CHECK_OK(cx_store_status(s, &out));
    json_t *items = json_object_get(out, "items");
    CX_CHECK_INT(iget(items, "observation"), 1);
    CX_CHECK_INT(iget(items, "draft"), 1);
    CX_CHECK_INT(iget(items, "thread"), 1);
    CX_CHECK_INT(iget(items, "comment"), 3);
    CX_CHECK_INT(iget(items, "artifact"), 0);
    CX_CHECK_INT(iget(items, "total"), 6);
    CX_CHECK_INT(iget(out, "drafts_pending"), 0);
    json_decref(out);
    cx_store_free(s);
}

static void test_publish(void) {
    cx_store *s = fresh("publish");
    if (!s)
        return;
    const char v1[] = "#!/bin/sh\necho deploy\n";
    const unsigned char bin[] = {0, 1, 2, 0xff, 0, 'x'};
    cx_publish p = {.name = "deploy.sh", .data = v1, .len = sizeof v1 - 1,
                    .source_path = "scripts/deploy.sh", .title = "How we deploy"};
    json_t *out = NULL;
    CX_CHECK_OK(cx_store_publish(s, &who, &p, &out));
    CX_CHECK_INT(iget(out, "version"), 1);
    CX_CHECK(json_is_false(json_object_get(out, "unchanged")));
    CX_CHECK_STR(sget(out, "status"), "published");
    CX_CHECK_STR(sget(out, "name"), "deploy.sh");
    CX_CHECK_INT(iget(out, "size"), sizeof v1 - 1);
    char art[64], sha1[65];
    snprintf(art, sizeof art, "%s", sget(out, "artifact_id") ? sget(out, "artifact_id") : "");
    snprintf(sha1, sizeof sha1, "%s", sget(out, "sha256") ? sget(out, "sha256") : "");
    json_decref(out);

    /* the sha is the content's, and the blob file holds the content */
    unsigned char d[crypto_hash_sha256_BYTES];
    char hex[65];
    crypto_hash_sha256(d, (const unsigned char *)v1, sizeof v1 - 1);
    sodium_bin2hex(hex, sizeof hex, d, sizeof d);
    CX_CHECK_STR(sha1, hex);
    char rel[128];
    snprintf(rel, sizeof rel, "blobs/%.2s/%s", hex, hex);
    char *blob = cx_fs_join(cx_store_dir(s), rel);
    char *data = NULL;
    size_t len = 0;
    CX_CHECK_OK(cx_fs_read_file(blob, 1 << 20, &data, &len));
    CX_CHECK(len == sizeof v1 - 1 && data && memcmp(data, v1, len) == 0);
    free(data);
    free(blob);

    /* the same content again: nothing new */
    out = NULL;
    CX_CHECK_OK(cx_store_publish(s, &who, &p, &out));
    CX_CHECK_INT(iget(out, "version"), 1);
    CX_CHECK(json_is_true(json_object_get(out, "unchanged")));
    CX_CHECK_STR(sget(out, "artifact_id"), art);
    json_decref(out);

    /* binary content: version 2 */
    cx_publish p2 = {.name = "deploy.sh", .data = bin, .len = sizeof bin};
    out = NULL;
    CX_CHECK_OK(cx_store_publish(s, &who, &p2, &out));
    CX_CHECK_INT(iget(out, "version"), 2);
    CX_CHECK_STR(sget(out, "artifact_id"), art);
    json_decref(out);

    json_t *item = NULL;
    CX_CHECK_OK(cx_store_get(s, art, &item));
    CX_CHECK_STR(sget(item, "kind"), "artifact");
    CX_CHECK_STR(sget(item, "status"), "published");
    CX_CHECK_STR(sget(item, "title"), "deploy.sh");
    CX_CHECK_STR(sget(item, "body"), "How we deploy");
    json_t *versions = json_object_get(item, "versions");
    CX_CHECK_INT(json_array_size(versions), 2);
    CX_CHECK_INT(iget(json_array_get(versions, 0), "version"), 1);
    CX_CHECK_STR(sget(json_array_get(versions, 0), "sha256"), sha1);
    CX_CHECK_STR(sget(json_array_get(versions, 0), "source_path"), "scripts/deploy.sh");
    CX_CHECK_STR(sget(json_array_get(versions, 0), "status"), "published");
    CX_CHECK(json_object_get(json_array_get(versions, 1), "source_path") == NULL);
    CX_CHECK_INT(iget(json_array_get(versions, 1), "size"), sizeof bin);
    json_decref(item);

    data = NULL;
    CX_CHECK_OK(cx_store_artifact_content(s, art, 0, &data, &len));
    CX_CHECK(len == sizeof bin && data && memcmp(data, bin, len) == 0);
    free(data);
    data = NULL;
    CX_CHECK_OK(cx_store_artifact_content(s, art, 1, &data, &len));
    CX_CHECK(len == sizeof v1 - 1 && data && memcmp(data, v1, len) == 0);
    free(data);
    data = NULL;
    CX_CHECK_INT(cx_store_artifact_content(s, art, 3, &data, &len), CX_ENOTFOUND);
    CX_CHECK_INT(cx_store_artifact_content(s, art, -1, &data, &len), CX_EINVAL);
    CX_CHECK_INT(cx_store_artifact_content(s, "01ARZ3NDEKTSV4RRFFQ69G5FAV", 0, &data, &len),
                 CX_ENOTFOUND);
    CX_CHECK(data == NULL);

    /* publishing the first content again is a new version (3), same blob */
    out = NULL;
    CX_CHECK_OK(cx_store_publish(s, &who, &p, &out));
    CX_CHECK_INT(iget(out, "version"), 3);
    json_decref(out);
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM blobs"), 2);

    /* another name is another artifact; empty content is allowed */
    cx_publish p3 = {.name = "empty.txt", .data = "", .len = 0};
    out = NULL;
    CX_CHECK_OK(cx_store_publish(s, &who, &p3, &out));
    CX_CHECK(strcmp(sget(out, "artifact_id"), art) != 0);
    CX_CHECK_INT(iget(out, "version"), 1);
    json_decref(out);
    out = NULL;

    cx_publish bad = p;
    bad.name = "";
    CX_CHECK_INT(cx_store_publish(s, &who, &bad, &out), CX_EINVAL);
    CX_CHECK(strstr(cx_error_last(), "name") != NULL);
    char longname[CX_STORE_MAX_TITLE + 2];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    bad.name = longname;
    CX_CHECK_INT(cx_store_publish(s, &who, &bad, &out), CX_ELIMIT);
    bad = p;
    bad.len = (size_t)CX_STORE_MAX_BLOB + 1;
    CX_CHECK_INT(cx_store_publish(s, &who, &bad, &out), CX_ELIMIT);
    CX_CHECK(out == NULL);

    out = NULL;
    CX_CHECK_OK(cx_store_status(s, &out));
    CX_CHECK_INT(iget(out, "blob_bytes"), (long long)(sizeof v1 - 1 + sizeof bin));
    CX_CHECK_INT(iget(json_object_get(out, "items"), "artifact"), 2);
    json_decref(out);
    /* artifact.version ops: v1, v2, v3 and empty.txt v1 */
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM outbox WHERE op = 'artifact.version'"), 4);
    cx_store_free(s);
}

static void sleep_ms(int ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void test_recent(void) {
    cx_store *s = fresh("recent");
    if (!s)
        return;
    char a[64], b[64], c[64];
    snprintf(a, sizeof a, "%s", observe1(s, "first thing", NULL));
    sleep_ms(5);
    snprintf(b, sizeof b, "%s", observe1(s, "second thing", NULL));
    sleep_ms(5);
    cx_note d = {.title = "A draft", .body = "third thing", .subcortex = "docs"};
    json_t *out = NULL;
    CX_CHECK_OK(cx_store_draft(s, &who, &d, &out));
    snprintf(c, sizeof c, "%s", sget(out, "id"));
    json_decref(out);

    cx_recent_query q = {.limit = 10};
    out = NULL;
    CX_CHECK_OK(cx_store_recent(s, &q, &out));
    json_t *items = json_object_get(out, "items");
    CX_CHECK_INT(iget(out, "count"), 3);
    CX_CHECK(json_is_false(json_object_get(out, "truncated")));
    CX_CHECK_STR(sget(json_array_get(items, 0), "id"), c); /* newest first */
    CX_CHECK_STR(sget(json_array_get(items, 2), "id"), a);
    CX_CHECK_STR(sget(json_array_get(items, 0), "snippet"), "third thing");
    CX_CHECK_STR(sget(json_array_get(items, 1), "title"), "");
    CX_CHECK(sget(json_array_get(items, 1), "updated_at") != NULL);
    json_decref(out);

    /* a summary's snippet never ends inside a [REDACTED:rule] marker */
    {
        cx_store *s2 = fresh("recent-marker");
        for (int k = 185; s2 && k < 215; k++) {
            char body[512];
            unsigned x = (unsigned)k * 2654435761u;
            for (int j = 0; j < k; j++, x = x * 1103515245u + 12345u)
                body[j] = (j % 7 == 6) ? ' ' : (char)('a' + (x >> 16) % 26);
            snprintf(body + k, sizeof body - (size_t)k, " [REDACTED:github-pat] tail %d", k);
            CX_CHECK(observe1(s2, body, NULL) != NULL);
        }
        cx_recent_query q2 = {.limit = 100, .max_tokens = 100000};
        json_t *o2 = NULL;
        CX_CHECK(s2 && cx_store_recent(s2, &q2, &o2) == 0);
        size_t i;
        json_t *it;
        int cut = 0;
        json_array_foreach(json_object_get(o2, "items"), i, it) {
            const char *sn = sget(it, "snippet");
            const char *m = sn ? strchr(sn, '[') : NULL;
            if (m && !strstr(m, "[REDACTED:github-pat]"))
                fprintf(stderr, "a snippet ends inside a marker: %s\n", sn), cut++;
        }
        CX_CHECK_INT(cut, 0);
        CX_CHECK_INT(json_array_size(json_object_get(o2, "items")), 30);
        json_decref(o2);
        cx_store_free(s2);
    }

    /* since an item id: only what changed after it */
    q.since = a;
    out = NULL;
    CX_CHECK_OK(cx_store_recent(s, &q, &out));
    CX_CHECK_INT(iget(out, "count"), 2);
    json_decref(out);
    /* since a time */
    json_t *item = NULL;
    CX_CHECK_OK(cx_store_get(s, b, &item));
    char since[64];
    snprintf(since, sizeof since, "%s", sget(item, "updated_at"));
    json_decref(item);
    q.since = since;
    out = NULL;
    CX_CHECK_OK(cx_store_recent(s, &q, &out));
    CX_CHECK_INT(iget(out, "count"), 1);
    CX_CHECK_STR(sget(json_array_get(json_object_get(out, "items"), 0), "id"), c);
    json_decref(out);
    q.since = "2000-01-01";
    out = NULL;
    CX_CHECK_OK(cx_store_recent(s, &q, &out));
    CX_CHECK_INT(iget(out, "count"), 3);
    json_decref(out);
    q.since = "2999-01-01T00:00:00Z";
    out = NULL;
    CX_CHECK_OK(cx_store_recent(s, &q, &out));
    CX_CHECK_INT(iget(out, "count"), 0);
    json_decref(out);
    out = NULL;
    q.since = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
    CX_CHECK_INT(cx_store_recent(s, &q, &out), CX_ENOTFOUND);
    q.since = "last tuesday";
    CX_CHECK_INT(cx_store_recent(s, &q, &out), CX_EINVAL);
    CX_CHECK(strstr(cx_error_last(), "ISO 8601") && strstr(cx_error_last(), "item id"));
    q.since = NULL;
    q.limit = 101;
    CX_CHECK_INT(cx_store_recent(s, &q, &out), CX_ELIMIT);
    CX_CHECK(out == NULL);

    /* filters */
    q.limit = 0; /* default */
    q.kind = "draft";
    CX_CHECK_OK(cx_store_recent(s, &q, &out));
    CX_CHECK_INT(iget(out, "count"), 1);
    json_decref(out);
    out = NULL;
    q.kind = NULL;
    q.subcortex = "general";
    CX_CHECK_OK(cx_store_recent(s, &q, &out));
    CX_CHECK_INT(iget(out, "count"), 2);
    json_decref(out);
    out = NULL;
    q.subcortex = NULL;
    q.limit = 2;
    CX_CHECK_OK(cx_store_recent(s, &q, &out));
    CX_CHECK_INT(iget(out, "count"), 2);
    json_decref(out);
    out = NULL;

    /* a long body makes a cut snippet; a tiny budget truncates the list but
     * always keeps one item */
    char body[2000];
    for (size_t i = 0; i < sizeof body - 1; i++)
        body[i] = i % 7 == 6 ? ' ' : (char)('a' + i % 26);
    body[sizeof body - 1] = '\0';
    observe1(s, body, NULL);
    q.limit = 10;
    q.max_tokens = 60;
    CX_CHECK_OK(cx_store_recent(s, &q, &out));
    CX_CHECK(json_is_true(json_object_get(out, "truncated")));
    CX_CHECK(iget(out, "count") >= 1 && iget(out, "count") < 4);
    const char *snip = sget(json_array_get(json_object_get(out, "items"), 0), "snippet");
    CX_CHECK(snip && strlen(snip) <= 203 && strstr(snip, "\xe2\x80\xa6") != NULL);
    json_decref(out);
    cx_store_free(s);
}

/* The item.put an observe queues is built from the row without reading it
 * back: it must be exactly the stored envelope (what cx_item_load gives,
 * less the members the core owns), byte for byte as jansson writes it, for
 * texts with every kind of character JSON escapes, tags, files,
 * provenance, and with and without an author. */
static void test_outbox_observe_payload(void) {
    cx_store *s = fresh("outbox-payload");
    if (!s)
        return;
    static const char *bodies[] = {
        "plain words",
        "quotes \" and \\ backslashes, a / slash, tab\tnewline\ncr\r bell\a \x01\x1f end\x7f",
        "unicode: na\xc3\xafve caf\xc3\xa9 \xe8\xbf\x9e\xe6\x8e\xa5\xe6\xb1\xa0 \xf0\x9f\x9a\x80 \xe2\x80\xa8",
    };
    const char *tags[] = {"parser", "a\"quoted\" tag"};
    const char *files[] = {"src/a.c", "docs/\xc3\xa9t\xc3\xa9.md"};
    json_t *prov = json_pack("{s:s, s:s, s:{s:s}}", "remote", "git@example.com:a/b.git",
                             "branch", "main\t\"x\"", "blobs", "src/a.c", "0123abcd");
    const cx_actor anon = {0};
    for (size_t i = 0; i < 2 * sizeof bodies / sizeof *bodies; i++) {
        char body[256]; /* each its own item: a repeat would count `seen` up */
        snprintf(body, sizeof body, "%s (variant %zu)", bodies[i / 2], i);
        cx_note n = {.body = body, .title = i % 2 ? "a \"title\" \\ of one line" : NULL,
                     .tags = {.v = tags, .n = i % 2 ? 2 : 0},
                     .files = {.v = files, .n = i % 2 ? 2 : 1},
                     .provenance = i % 2 ? prov : NULL, .subcortex = i % 2 ? "team/x" : NULL};
        json_t *out = NULL;
        CX_CHECK_OK(cx_store_observe(s, i % 2 ? &who : &anon, &n, 1, NULL, NULL, &out));
        char id[64];
        snprintf(id, sizeof id, "%s",
                 sget(json_array_get(json_object_get(out, "results"), 0), "id"));
        json_decref(out);
        json_t *env = NULL;
        CX_CHECK_OK(cx_item_load(s, id, &env));
        json_object_del(env, "review");
        json_object_del(env, "server_seq");
        char *want = json_dumps(env, JSON_COMPACT);
        sqlite3_stmt *st = NULL;
        CX_CHECK(sqlite3_prepare_v2(cx_store_sqlite(s),
                                    "SELECT payload FROM outbox WHERE item_id = ?1", -1, &st,
                                    NULL) == SQLITE_OK);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        CX_CHECK(sqlite3_step(st) == SQLITE_ROW);
        const char *got = (const char *)sqlite3_column_text(st, 0);
        CX_CHECK_STR(got, want);
        json_t *parsed = got ? json_loads(got, JSON_REJECT_DUPLICATES, NULL) : NULL;
        CX_CHECK(parsed && json_equal(parsed, env));
        json_decref(parsed);
        sqlite3_finalize(st);
        free(want);
        json_decref(env);
    }
    json_decref(prov);
    cx_store_free(s);
}

/* The content hash is SHA-256 of the text with whitespace runs made one
 * space and trimmed: the same for any spacing, texts longer than the
 * hash's buffer included (the core computes it the same way for pulled
 * observations, so its value is pinned here). */
static void test_content_hash(void) {
    char got[65], want[65];
    unsigned char d[crypto_hash_sha256_BYTES];
    cx_item_content_hash("  hello \t\n world\r\n", got);
    crypto_hash_sha256(d, (const unsigned char *)"hello world", 11);
    sodium_bin2hex(want, sizeof want, d, sizeof d);
    CX_CHECK_STR(got, want);
    CX_CHECK_STR(got, "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");
    /* 5,000 words of 1-9 letters with varied spacing, across buffer ends */
    size_t cap = 80000;
    char *spaced = malloc(cap), *plain = malloc(cap);
    size_t a = 0, b = 0;
    for (int i = 0; i < 5000; i++) {
        int len = 1 + i % 9;
        const char *gap = i % 3 == 0 ? " \n\t " : i % 3 == 1 ? "  " : " ";
        if (i)
            plain[b++] = ' ';
        a += (size_t)snprintf(spaced + a, cap - a, "%s", gap);
        for (int k = 0; k < len; k++)
            spaced[a++] = plain[b++] = (char)('a' + (i + k) % 26);
    }
    spaced[a] = plain[b] = '\0';
    cx_item_content_hash(spaced, got);
    crypto_hash_sha256(d, (const unsigned char *)plain, b);
    sodium_bin2hex(want, sizeof want, d, sizeof d);
    CX_CHECK_STR(got, want);
    free(spaced);
    free(plain);
}

static void test_outbox(void) {
    cx_store *s = fresh("outbox");
    if (!s)
        return;
    observe1(s, "shared one", NULL);
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM outbox"), 1);
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM outbox o JOIN items i ON i.id = o.item_id"
                       " WHERE o.op = 'item.put' AND json_extract(o.payload, '$.id') = i.id"
                       " AND json_extract(o.payload, '$.body') = 'shared one'"
                       " AND length(o.op_id) = 26"),
                 1);
    observe1(s, "shared one", NULL); /* a repeat sends nothing */
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM outbox"), 1);

    cx_note priv = {.body = "my private note", .visibility = "private"};
    json_t *out = NULL;
    CX_CHECK_OK(cx_store_observe(s, &who, &priv, 1, NULL, NULL, &out));
    char pid[64];
    snprintf(pid, sizeof pid, "%s", sget(json_array_get(json_object_get(out, "results"), 0), "id"));
    json_decref(out);
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM outbox"), 1);
    json_t *item = NULL;
    CX_CHECK_OK(cx_store_get(s, pid, &item));
    CX_CHECK_STR(sget(item, "visibility"), "private");
    json_decref(item);

    /* the same text shared is another item, and it is sent */
    cx_note shared_copy = {.body = "my private note"};
    out = NULL;
    CX_CHECK_OK(cx_store_observe(s, &who, &shared_copy, 1, NULL, NULL, &out));
    json_t *sc = json_array_get(json_object_get(out, "results"), 0);
    CX_CHECK(json_is_false(json_object_get(sc, "repeat")) && strcmp(sget(sc, "id"), pid) != 0);
    json_decref(out);
    out = NULL;
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM outbox"), 2);
    CX_CHECK_OK(cx_store_observe(s, &who, &priv, 1, NULL, NULL, &out)); /* private repeat */
    sc = json_array_get(json_object_get(out, "results"), 0);
    CX_CHECK(json_is_true(json_object_get(sc, "repeat")));
    CX_CHECK_STR(sget(sc, "id"), pid);
    json_decref(out);
    out = NULL;

    cx_note pd = {.title = "Private draft", .body = "secret plan", .visibility = "private"};
    out = NULL;
    CX_CHECK_OK(cx_store_draft(s, &who, &pd, &out));
    char pdraft[64];
    snprintf(pdraft, sizeof pdraft, "%s", sget(out, "id"));
    json_decref(out);
    out = NULL;
    CX_CHECK_OK(cx_store_comment(s, &who, pdraft, "private comment", &out));
    json_decref(out);
    out = NULL;
    CX_CHECK_OK(cx_store_review(s, &who, pdraft, "approve", NULL, &out));
    json_decref(out);
    out = NULL;
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM outbox"), 2); /* none of that left */
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM items WHERE visibility = 'private'"), 3);

    cx_note sd = {.title = "Shared draft", .body = "shared plan"};
    CX_CHECK_OK(cx_store_draft(s, &who, &sd, &out));
    char sdraft[64];
    snprintf(sdraft, sizeof sdraft, "%s", sget(out, "id"));
    json_decref(out);
    out = NULL;
    CX_CHECK_OK(cx_store_comment(s, &who, sdraft, "shared comment", &out));
    json_decref(out);
    out = NULL;
    CX_CHECK_OK(cx_store_review(s, &who, sdraft, "approve", NULL, &out));
    json_decref(out);
    out = NULL;
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM outbox"), 5);
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM outbox WHERE op = 'review.decision'"
                       " AND json_extract(payload, '$.review.decision') = 'approve'"
                       " AND json_extract(payload, '$.item.kind') = 'thread'"),
                 1);
    /* in order of the changes */
    CX_CHECK_INT(q1(s, "SELECT op = 'review.decision' FROM outbox ORDER BY seq DESC LIMIT 1"), 1);

    out = NULL;
    CX_CHECK_OK(cx_store_status(s, &out));
    CX_CHECK_INT(iget(json_object_get(out, "outbox"), "pending"), 5);
    CX_CHECK_INT(iget(json_object_get(out, "outbox"), "rejected"), 0);
    json_decref(out);
    cx_store_free(s);
}

/* ---- one process, two connections: an agent's write and maintenance ---- */

#define BACKLOG 3000

struct maint_run {
    cx_store *s;
    int r;
    atomic_bool done;
};

static void *maint_thread(void *arg) {
    struct maint_run *m = arg;
    m->r = cx_store_maintain(m->s);
    atomic_store(&m->done, true);
    return NULL;
}

struct writer_run {
    cx_store *s;
    atomic_bool stop;
    int written;
};

/* Small writes without a pause until told to stop (bounded: 200,000). */
static void *writer_thread(void *arg) {
    struct writer_run *w = arg;
    char v[32];
    for (int i = 0; i < 200000 && !atomic_load(&w->stop); i++) {
        snprintf(v, sizeof v, "%d", i);
        if (cx_kv_set(w->s, "test.busy", v) != 0)
            break;
        w->written++;
    }
    return NULL;
}

/* cx_store_maintain_busy: false after a run on an idle store; true after
 * one during which this process's writes never paused (cortexd then runs
 * the next at once). A write may still pause on a loaded machine: one run
 * of ten must find none. */
static void test_maintenance_busy(void) {
    cx_store *s = fresh("busy"), *bg = NULL;
    if (!s)
        return;
    CX_CHECK_OK(cx_store_defer_maintenance(s));
    CX_CHECK_OK(cx_store_open(&bg, cx_store_dir(s)));
    if (!bg) {
        cx_store_free(s);
        return;
    }
    CX_CHECK(observe1(s, "one quiet note", NULL) != NULL);
    CX_CHECK_OK(cx_store_maintain(bg));
    CX_CHECK(!cx_store_maintain_busy(bg));
    /* rows for maintenance to index, which it does only in a pause: enough
     * that the pauses a loaded machine makes in the writes below do not
     * index them all before a run finds none (once they are indexed, no
     * run is busy), and under MAINT_FTS_PRESSING (4096), past which it
     * indexes without waiting for a pause */
    static cx_note notes[CX_STORE_MAX_BATCH];
    static char texts[CX_STORE_MAX_BATCH][80];
    for (int b = 0; b < 8; b++) {
        for (size_t n = 0; n < CX_STORE_MAX_BATCH; n++) {
            snprintf(texts[n], sizeof texts[n], "busy backlog %d.%zu about quokkas", b, n);
            notes[n] = note(texts[n]);
        }
        json_t *out = NULL;
        CX_CHECK_OK(cx_store_observe(s, &who, notes, CX_STORE_MAX_BATCH, NULL, NULL, &out));
        json_decref(out);
    }
    struct writer_run w = {.s = s};
    atomic_init(&w.stop, false);
    pthread_t t;
    CX_CHECK(pthread_create(&t, NULL, writer_thread, &w) == 0);
    bool busy = false;
    for (int i = 0; i < 10 && !busy && w.written < 190000; i++) {
        CX_CHECK_OK(cx_store_maintain(bg));
        busy = cx_store_maintain_busy(bg);
    }
    atomic_store(&w.stop, true);
    pthread_join(t, NULL);
    CX_CHECK(busy);
    CX_CHECK_OK(cx_store_maintain(bg)); /* the writes are over */
    CX_CHECK(!cx_store_maintain_busy(bg));
    cx_store_free(bg);
    cx_store_free(s);
}

/* cortexd's maintenance thread indexes a large backlog on its own
 * connection while the agent's writes go on: a write gets its turn without
 * waiting for the whole backlog (the maintenance chunk ends early for it),
 * and the chunks that ended early lose no row: every item is found once
 * maintenance is over. */
static void test_maintenance_yields(void) {
    cx_store *s = fresh("bgindex"), *bg = NULL;
    if (!s)
        return;
    CX_CHECK_OK(cx_store_defer_maintenance(s)); /* writes leave indexing to maintenance */
    static cx_note notes[CX_STORE_MAX_BATCH];
    static char texts[CX_STORE_MAX_BATCH][80];
    for (int done = 0; done < BACKLOG;) {
        size_t n = 0;
        for (; n < CX_STORE_MAX_BATCH && done < BACKLOG; n++, done++) {
            snprintf(texts[n], sizeof texts[n], "backlog note %d about quokka indexing", done);
            notes[n] = note(texts[n]);
        }
        json_t *out = NULL;
        CX_CHECK_OK(cx_store_observe(s, &who, notes, n, NULL, NULL, &out));
        json_decref(out);
    }
    CX_CHECK_INT(q1(s, "SELECT indexed_rid FROM fts_state"), 0);
    CX_CHECK_OK(cx_store_open(&bg, cx_store_dir(s)));
    if (!bg) {
        cx_store_free(s);
        return;
    }
    struct maint_run m = {.s = bg};
    atomic_init(&m.done, false);
    pthread_t t;
    CX_CHECK(pthread_create(&t, NULL, maint_thread, &m) == 0);
    /* until maintenance has indexed its first rows (bounded: 20 s) */
    for (int i = 0; i < 20000 && q1(s, "SELECT indexed_rid FROM fts_state") == 0; i++)
        sleep_ms(1);
    bool repeat = true;
    const char *id = observe1(s, "written while maintenance indexes quokka notes", &repeat);
    CX_CHECK(id != NULL && !repeat);
    /* answered while the backlog is still being indexed */
    CX_CHECK(!atomic_load(&m.done));
    CX_CHECK(q1(s, "SELECT indexed_rid FROM fts_state") < BACKLOG);
    /* Maintenance chunks are 256 rows (MAINT_FTS_CHUNK): one that ended
     * for a waiting write leaves the mark between two multiples of it. */
    /* Each write comes a little after a pause, when a chunk has had time
     * to start: how soon it starts depends on the machine's load, so the
     * writes go on (bounded: 400) until one has ended a chunk early or the
     * backlog is done. */
    char text[80];
    int early = 0, written = 0;
    for (int i = 0; i < 400 && !early && !atomic_load(&m.done); i++) {
        sleep_ms(3);
        snprintf(text, sizeof text, "another quokka note %d during maintenance", i);
        CX_CHECK(observe1(s, text, NULL) != NULL);
        written++;
        long long mark = q1(s, "SELECT indexed_rid FROM fts_state");
        early += mark < BACKLOG && mark % 256 != 0;
    }
    CX_CHECK(early > 0);
    pthread_join(t, NULL);
    CX_CHECK_OK(m.r);
    CX_CHECK_OK(cx_store_maintain(bg)); /* what came after its last look */
    long long total = q1(s, "SELECT count(*) FROM items");
    CX_CHECK_INT(total, BACKLOG + 1 + written);
    CX_CHECK_INT(q1s(s, "SELECT count(*) FROM items_fts WHERE items_fts MATCH 'quokka'"), total);
    CX_CHECK_INT(q1(s, "SELECT indexed_rid = (SELECT max(rid) FROM items) FROM fts_state"), 1);
    cx_store_free(bg);
    cx_store_free(s);
}

/* ---- several processes ---- */

#define PROCS 4
#define PER_PROC 150

/* A child: opens the (maybe fresh) store itself, records PER_PROC unique
 * observations one at a time and the shared text once, and writes the
 * shared text's id and repeat flag to a file. Exit 0 when all went well. */
static int child_writer(const char *dir, int k) {
    cx_store *s = NULL;
    if (cx_store_open(&s, dir) != 0) {
        fprintf(stderr, "child %d: open: %s\n", k, cx_error_last());
        return 1;
    }
    char text[96];
    int bad = 0;
    for (int i = 0; i < PER_PROC; i++) {
        if (i == PER_PROC / 2) {
            bool repeat = false;
            const char *id = observe1(s, "the text every process records", &repeat);
            char path[600], line[64];
            snprintf(path, sizeof path, "%s/child-%d", dir, k);
            snprintf(line, sizeof line, "%s %d", id ? id : "-", repeat ? 1 : 0);
            if (!id || cx_fs_write_atomic(path, line, strlen(line), 0600) != 0)
                bad = 1;
        }
        snprintf(text, sizeof text, "process %d observation %d", k, i);
        cx_note n = note(text);
        json_t *out = NULL;
        if (cx_store_observe(s, &who, &n, 1, NULL, NULL, &out) != 0) {
            fprintf(stderr, "child %d: observe: %s\n", k, cx_error_last());
            bad = 1;
        }
        json_decref(out);
    }
    cx_store_free(s);
    return bad;
}

static void test_processes(void) {
    char *dir = cx_fs_join(root, "concurrent/state"); /* fresh: migrations race too */
    pid_t pids[PROCS];
    for (int k = 0; k < PROCS; k++) {
        pids[k] = fork();
        if (pids[k] == 0)
            _exit(child_writer(dir, k));
    }
    int ok = 0;
    for (int k = 0; k < PROCS; k++) {
        int status = 0;
        waitpid(pids[k], &status, 0);
        ok += WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    CX_CHECK_INT(ok, PROCS);

    cx_store *s = NULL;
    CX_CHECK_OK(cx_store_open(&s, dir));
    if (s) {
        /* no lost write, the shared text once */
        CX_CHECK_INT(q1(s, "SELECT count(*) FROM items"), PROCS * PER_PROC + 1);
        CX_CHECK_INT(q1(s, "SELECT count(*) FROM outbox"), PROCS * PER_PROC + 1);
        CX_CHECK_INT(q1(s, "SELECT seen FROM items WHERE body = 'the text every process records'"),
                     PROCS);
        /* the search index catches up with all of it */
        CX_CHECK_OK(cx_store_fts_sync(s, 0));
        CX_CHECK_INT(q1s(s, "SELECT count(*) FROM items_fts WHERE items_fts MATCH 'process'"),
                     PROCS * PER_PROC + 1);
        CX_CHECK_INT(q1(s, "SELECT indexed_rid = (SELECT max(rid) FROM items) FROM fts_state"), 1);
        cx_store_free(s);
    }
    /* every process got the same id; exactly one recorded it */
    char first[64] = "";
    int fresh_count = 0, same = 0;
    for (int k = 0; k < PROCS; k++) {
        char name[32], *data = NULL, id[64] = "";
        size_t len;
        int rep = -1;
        snprintf(name, sizeof name, "child-%d", k);
        char *path = cx_fs_join(dir, name);
        if (cx_fs_read_file(path, 100, &data, &len) == 0 && sscanf(data, "%63s %d", id, &rep) == 2) {
            if (!first[0])
                snprintf(first, sizeof first, "%s", id);
            same += strcmp(first, id) == 0;
            fresh_count += rep == 0;
        }
        free(data);
        free(path);
    }
    CX_CHECK_INT(same, PROCS);
    CX_CHECK_INT(fresh_count, 1);
    free(dir);
}

/* Another process holds the write lock for a while: a write waits for it
 * and then succeeds, it does not fail with busy. */
static void test_waits_for_lock(void) {
    cx_store *s = fresh("locked");
    if (!s)
        return;
    int fds[2];
    CX_CHECK(pipe(fds) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        sqlite3 *db = NULL;
        char c = 'x';
        int rc = sqlite3_open(cx_store_db_path(s), &db);
        rc |= sqlite3_exec(db, "BEGIN IMMEDIATE; INSERT INTO kv VALUES ('lock', 'held')", NULL,
                           NULL, NULL);
        if (write(fds[1], &c, 1) != 1)
            rc = 1;
        sleep_ms(400);
        rc |= sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        sqlite3_close(db);
        _exit(rc == SQLITE_OK ? 0 : 1);
    }
    char c;
    CX_CHECK(read(fds[0], &c, 1) == 1);
    uint64_t t0 = cx_clock_mono_ns();
    bool repeat = true;
    const char *id = observe1(s, "written while another process held the lock", &repeat);
    uint64_t waited_ms = (cx_clock_mono_ns() - t0) / 1000000;
    CX_CHECK(id != NULL && !repeat);
    CX_CHECK(waited_ms >= 200);
    int status = 0;
    waitpid(pid, &status, 0);
    CX_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CX_CHECK_INT(q1(s, "SELECT count(*) FROM kv WHERE key = 'lock'"), 1);
    close(fds[0]);
    close(fds[1]);
    cx_store_free(s);
}

static void test_get_errors(void) {
    cx_store *s = fresh("get");
    if (!s)
        return;
    json_t *out = NULL;
    CX_CHECK_INT(cx_store_get(s, "01ARZ3NDEKTSV4RRFFQ69G5FAV", &out), CX_ENOTFOUND);
    CX_CHECK(strstr(cx_error_last(), "01ARZ3NDEKTSV4RRFFQ69G5FAV") != NULL);
    CX_CHECK_INT(cx_store_get(s, "", &out), CX_EINVAL);
    CX_CHECK_INT(cx_store_get(s, "not-an-id", &out), CX_ENOTFOUND);
    char longid[200];
    memset(longid, 'A', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    CX_CHECK_INT(cx_store_get(s, longid, &out), CX_EINVAL);
    CX_CHECK(out == NULL);
    cx_store_free(s);
}

/* One token rule for every layer: 4 bytes a token, 0 tokens = 2000, and a
 * budget no sum can overflow. The SQLite version without SQLite's header. */
static void test_budget_and_version(void) {
    CX_CHECK(cx_store_budget_bytes(0) ==
             (size_t)CX_STORE_DEFAULT_MAX_TOKENS * CX_STORE_TOKEN_BYTES);
    CX_CHECK(cx_store_budget_bytes(0) == 8000);
    CX_CHECK(cx_store_budget_bytes(100) == 400);
    CX_CHECK(cx_store_budget_bytes(SIZE_MAX) == SIZE_MAX / 8);
    const char *v = cx_store_sqlite_version();
    CX_CHECK(v && v[0] == '3' && v[1] == '.');
}

/* Files under `dir` whose bytes hold `needle` (nftw has no user pointer). */
static const char *leak_needle;
static int leak_count;
static int leak_visit(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)ftw;
    if (type != FTW_F || !S_ISREG(st->st_mode))
        return 0;
    char *data = NULL;
    size_t len = 0;
    if (cx_fs_read_file(path, (size_t)1 << 30, &data, &len) == 0 &&
        memmem(data, len, leak_needle, strlen(leak_needle))) {
        fprintf(stderr, "  secret found in %s\n", path);
        leak_count++;
    }
    free(data);
    return 0;
}

static int leaks(const char *dir, const char *needle) {
    leak_needle = needle;
    leak_count = 0;
    nftw(dir, leak_visit, 16, FTW_PHYS);
    return leak_count;
}

/* Every text a caller writes is redacted before it is stored: the
 * subcortex, tags, files, the provenance (remote, branch, paths) of
 * observations and drafts, an artifact's name, source path and subcortex;
 * the markers pass validation; no secret is anywhere in the store's files
 * (database, WAL, blobs), the outbox included. */
static void test_redacted_fields(void) {
    cx_store *s = fresh("redacted-fields");
    if (!s)
        return;
    const char *akia = "AKIAQYLPMN2ZSHX4KW7E";
    const char *ghp = "ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A7B";
    char sub[64], tag[80], file[128], branch[128], remote[160], name[128], path[128];
    snprintf(sub, sizeof sub, "sub-%s", akia);
    snprintf(tag, sizeof tag, "tag-%s", ghp);
    snprintf(file, sizeof file, "notes/%s.md", ghp);
    snprintf(branch, sizeof branch, "feat/%s", ghp);
    snprintf(remote, sizeof remote, "https://example.com/org/%s.git", ghp);
    snprintf(name, sizeof name, "deploy notes %s", ghp);
    snprintf(path, sizeof path, "scripts/%s/deploy.sh", akia);
    const char *tags[] = {tag, "plain"};
    const char *files[] = {file, "src/a.c"};
    json_t *prov = json_pack("{s:s, s:s, s:s, s:[{s:s, s:s}]}", "remote", remote, "branch",
                             branch, "head", "3f2c1e9a7b8d6c5e4f3a2b1c0d9e8f7a6b5c4d3e", "files",
                             "path", file, "blob", "3f2c1e9a7b8d6c5e4f3a2b1c0d9e8f7a6b5c4d3e");
    cx_note n = {.body = "a note about the deploy", .subcortex = sub,
                 .tags = {tags, 2}, .files = {files, 2}, .provenance = prov};
    json_t *out = NULL;
    CX_CHECK_OK(cx_store_observe(s, &who, &n, 1, NULL, NULL, &out));
    json_t *res = json_array_get(json_object_get(out, "results"), 0);
    char id[64];
    snprintf(id, sizeof id, "%s", sget(res, "id") ? sget(res, "id") : "");
    CX_CHECK(json_object_get(out, "redacted") != NULL);
    json_decref(out);
    json_t *it = NULL;
    CX_CHECK_OK(cx_store_get(s, id, &it));
    CX_CHECK_STR(sget(it, "subcortex"), "sub-[REDACTED:aws-access-key-id]");
    char *dump = json_dumps(it, JSON_COMPACT);
    CX_CHECK(dump && !strstr(dump, akia) && !strstr(dump, ghp + 4));
    CX_CHECK(dump && strstr(dump, "\"branch\":\"feat/[REDACTED:github-pat]\""));
    CX_CHECK(dump && strstr(dump, "notes/[REDACTED:github-pat].md"));
    CX_CHECK(dump && strstr(dump, "tag-[REDACTED:github-pat]"));
    free(dump);
    json_decref(it);

    /* a draft: the same fields */
    n.title = "a draft";
    CX_CHECK_OK(cx_store_draft(s, &who, &n, &out));
    json_decref(out);
    json_decref(prov);

    /* an artifact: its name (the title), source path and subcortex */
    const char body[] = "#!/bin/sh\necho deploy\n";
    cx_publish p = {.name = name, .data = body, .len = sizeof body - 1, .source_path = path,
                    .subcortex = sub, .tags = {tags, 1}};
    CX_CHECK_OK(cx_store_publish(s, &who, &p, &out));
    CX_CHECK_STR(sget(out, "name"), "deploy notes [REDACTED:github-pat]");
    CX_CHECK(json_object_get(out, "redacted") != NULL);
    json_decref(out);
    /* publishing again under the same name is the same artifact */
    CX_CHECK_OK(cx_store_publish(s, &who, &p, &out));
    CX_CHECK(json_is_true(json_object_get(out, "unchanged")));
    json_decref(out);

    /* a subcortex that is too long only with the marker says so */
    char longsub[80];
    snprintf(longsub, sizeof longsub, "%.40s-%s", "abcdefghijabcdefghijabcdefghijabcdefghij", akia);
    cx_note ln = {.body = "x", .subcortex = longsub};
    CX_CHECK_INT(cx_store_observe(s, &who, &ln, 1, NULL, NULL, &out), CX_ELIMIT);
    CX_CHECK(strstr(cx_error_last(), "redacted") && !strstr(cx_error_last(), akia));

    char *dir = strdup(cx_store_dir(s));
    cx_store_free(s);
    CX_CHECK_INT(leaks(dir, akia), 0);
    CX_CHECK_INT(leaks(dir, ghp + 4), 0);
    free(dir);
}

/* walvfs.c writes each WAL frame (header and page) in one call. A child
 * process writes through it and ends with _exit() (nothing checkpointed,
 * the WAL left as a crash leaves it): a transaction larger than the page
 * cache (frames spilled, overwritten, their checksums rewritten before the
 * commit) and small commits. Opening the file through SQLite's default
 * VFS then recovers the WAL from its frames, checking every checksum: all
 * of it must be there. */
static void test_wal_frames(void) {
    char *dir = cx_fs_join(root, "walvfs");
    pid_t pid = fork();
    if (pid == 0) {
        cx_store *s = NULL;
        if (cx_store_open(&s, dir) != 0)
            _exit(2);
        sqlite3 *db = cx_store_sqlite(s);
        sqlite3_vfs *vfs = NULL;
        if (sqlite3_file_control(db, "main", SQLITE_FCNTL_VFS_POINTER, &vfs) != SQLITE_OK ||
            !vfs || strcmp(vfs->zName, "cortex-wal") != 0)
            _exit(3);
        if (sqlite3_exec(db,
                         "PRAGMA cache_size=20; PRAGMA wal_autocheckpoint=0;"
                         "CREATE TABLE wal_t(k INTEGER PRIMARY KEY, v BLOB);"
                         "BEGIN;"
                         "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
                         " WHERE i < 3000) INSERT INTO wal_t SELECT i, randomblob(2000) FROM n;"
                         "UPDATE wal_t SET v = randomblob(1500) WHERE k % 3 = 0;"
                         "COMMIT;",
                         NULL, NULL, NULL) != SQLITE_OK)
            _exit(4);
        for (int i = 0; i < 50; i++)
            if (sqlite3_exec(db, "INSERT INTO wal_t(v) VALUES (randomblob(100))", NULL, NULL,
                             NULL) != SQLITE_OK)
                _exit(5);
        _exit(0); /* as a crash would: no checkpoint, no close */
    }
    int status = -1;
    CX_CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CX_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char *path = cx_fs_join(dir, "cortex.db");
    struct stat st;
    CX_CHECK(stat(path, &st) == 0);
    char *wal = NULL;
    CX_CHECK(asprintf(&wal, "%s-wal", path) > 0);
    CX_CHECK(wal && stat(wal, &st) == 0 && st.st_size > 6000000); /* not checkpointed */
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    long long n = -1, bytes = -1, ok = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db,
                           "SELECT (SELECT count(*) FROM wal_t),"
                           " (SELECT sum(length(v)) FROM wal_t WHERE k <= 3000),"
                           " (SELECT count(*) FROM pragma_integrity_check"
                           "  WHERE integrity_check = 'ok')",
                           -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW) {
        n = sqlite3_column_int64(q, 0);
        bytes = sqlite3_column_int64(q, 1);
        ok = sqlite3_column_int64(q, 2);
    } else {
        fprintf(stderr, "wal_t: %s\n", sqlite3_errmsg(db));
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    CX_CHECK_INT(n, 3050);
    CX_CHECK_INT(bytes, 2000 * 2000 + 1000 * 1500);
    CX_CHECK_INT(ok, 1);
    free(wal);
    free(path);
    free(dir);
}

int main(void) {
    if (sodium_init() < 0)
        return 2;
    root = cx_test_tmpdir();
    if (!root) {
        fprintf(stderr, "cannot make a temporary directory\n");
        return 2;
    }
    test_open_and_migrate();
    test_budget_and_version();
    test_observe();
    test_validation();
    test_draft_comment_review();
    test_publish();
    test_redacted_fields();
    test_recent();
    test_outbox();
    test_content_hash();
    test_outbox_observe_payload();
    test_get_errors();
    test_waits_for_lock();
    test_maintenance_yields();
    test_maintenance_busy();
    test_processes();
    test_wal_frames();
    cx_test_rmrf(root);
    free(root);
    return cx_test_done();
}
