/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for cortex-core's storage interface (src/core/storage.h) on a
 * database in a temporary directory: the per-team seq, items and
 * tombstones, the change feed and its compaction horizon (and pull, the
 * two read together), op idempotency
 * records, keys, blobs, the review queue, the audit log, transactions,
 * reads beside an open write, writers and incremental readers in parallel
 * threads (every change seen once, in order, in its team), reopening,
 * backup, and that no call reads across teams. run_cases() is backend
 * neutral: it runs on SQLite here, and on the PostgreSQL database that
 * CX_TEST_STORAGE_URI names when it is set. */
#include "core/storage.h"

#include "test.h"
#include "util/error.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct feed {
    int n;
    int64_t seq[16];
    char id[16][32];
    bool tomb[16];
} feed;

static int on_change(void *ud, int64_t seq, const char *id, const char *json) {
    feed *f = ud;
    if (f->n == 16)
        return CX_ELIMIT;
    f->seq[f->n] = seq;
    snprintf(f->id[f->n], sizeof f->id[f->n], "%s", id);
    f->tomb[f->n] = json == NULL;
    f->n++;
    return 0;
}

static int on_change_stop(void *ud, int64_t seq, const char *id, const char *json) {
    (void)seq, (void)id, (void)json;
    ++*(int *)ud;
    return CX_ECANCELED;
}

static int count_cb(void *ud, const char *json) {
    (void)json;
    ++*(int *)ud;
    return 0;
}

static int count_keys(void *ud, const cx_storage_key *k) {
    (void)k;
    ++*(int *)ud;
    return 0;
}

typedef struct audit_seen {
    int n;
    char last_action[32];
} audit_seen;

static int on_audit(void *ud, const cx_storage_audit *a) {
    audit_seen *s = ud;
    s->n++;
    snprintf(s->last_action, sizeof s->last_action, "%s", a->action);
    return 0;
}

/* The next seq of team, in its own write transaction. */
static int64_t next_seq(cx_storage *st, const char *team) {
    cx_storage_tx *tx = NULL;
    int64_t seq = -1;
    CX_CHECK_OK(cx_storage_begin(st, true, &tx));
    CX_CHECK_OK(cx_storage_seq_next(tx, team, &seq));
    CX_CHECK_OK(cx_storage_commit(tx));
    return seq;
}

/* Puts an item (a new seq) and returns the seq. */
static int64_t put(cx_storage *st, const char *team, const char *id, const char *kind,
                   const char *status, bool deleted) {
    cx_storage_tx *tx = NULL;
    int64_t seq = -1;
    char json[256];
    snprintf(json, sizeof json, "{\"id\":\"%s\",\"kind\":\"%s\",\"status\":\"%s\"}", id, kind,
             status);
    CX_CHECK_OK(cx_storage_begin(st, true, &tx));
    CX_CHECK_OK(cx_storage_seq_next(tx, team, &seq));
    CX_CHECK_OK(cx_storage_item_put(tx, team, id, kind, status, seq, deleted, json));
    CX_CHECK_OK(cx_storage_commit(tx));
    return seq;
}

static void test_seq(cx_storage *st) {
    cx_storage_tx *tx = NULL;
    int64_t a1 = next_seq(st, "A"), a2 = next_seq(st, "A"), b1 = next_seq(st, "B");
    int64_t a3 = next_seq(st, "A");
    CX_CHECK_INT(a1, 1);
    CX_CHECK(a2 > a1 && a3 > a2);
    CX_CHECK_INT(b1, 1); /* each team has its own seq */
    int64_t last = 0;
    CX_CHECK_OK(cx_storage_begin(st, false, &tx));
    CX_CHECK_OK(cx_storage_seq_last(tx, "A", &last));
    CX_CHECK_INT(last, a3);
    CX_CHECK_OK(cx_storage_seq_last(tx, "nobody", &last));
    CX_CHECK_INT(last, 0);
    cx_storage_rollback(tx);
    /* a rolled-back seq is given out again: nothing skips in the feed */
    int64_t seq = 0;
    CX_CHECK_OK(cx_storage_begin(st, true, &tx));
    CX_CHECK_OK(cx_storage_seq_next(tx, "A", &seq));
    cx_storage_rollback(tx);
    CX_CHECK_INT(next_seq(st, "A"), seq);
}

static void test_items(cx_storage *st) {
    cx_storage_tx *tx = NULL;
    int64_t s1 = put(st, "T", "01J00000000000000000000001", "observation", "recorded", false);
    int64_t s2 = put(st, "T", "01J00000000000000000000002", "draft", "pending", false);
    CX_CHECK(s2 > s1);
    char *json = NULL;
    int64_t seq = 0;
    bool deleted = true;
    CX_CHECK_OK(cx_storage_begin(st, false, &tx));
    CX_CHECK_OK(cx_storage_item_get(tx, "T", "01J00000000000000000000001", &json, &seq, &deleted));
    CX_CHECK(json && strstr(json, "\"observation\""));
    CX_CHECK_INT(seq, s1);
    CX_CHECK(!deleted);
    free(json);
    json = NULL;
    CX_CHECK_INT(cx_storage_item_get(tx, "T", "01J0000000000000000000000Z", &json, &seq, &deleted),
                 CX_ENOTFOUND);
    /* team isolation: the same id in another team is not there */
    CX_CHECK_INT(cx_storage_item_get(tx, "U", "01J00000000000000000000001", &json, &seq, &deleted),
                 CX_ENOTFOUND);
    CX_CHECK(json == NULL);
    cx_storage_rollback(tx);

    /* an update moves the item to a new seq: the feed has it once */
    int64_t s3 = put(st, "T", "01J00000000000000000000001", "observation", "recorded", false);
    /* a tombstone */
    int64_t s4 = put(st, "T", "01J00000000000000000000002", "draft", "pending", true);
    CX_CHECK(s4 > s3 && s3 > s2);
    CX_CHECK_OK(cx_storage_begin(st, false, &tx));
    CX_CHECK_OK(cx_storage_item_get(tx, "T", "01J00000000000000000000002", &json, &seq, &deleted));
    CX_CHECK(deleted);
    CX_CHECK_INT(seq, s4);
    free(json);
    json = NULL;
    feed f = {0};
    CX_CHECK_OK(cx_storage_changes(tx, "T", 0, 10, on_change, &f));
    CX_CHECK_INT(f.n, 2);
    CX_CHECK(f.seq[0] == s3 && f.seq[1] == s4);
    CX_CHECK_STR(f.id[0], "01J00000000000000000000001");
    CX_CHECK(!f.tomb[0] && f.tomb[1]);
    /* since and limit */
    feed g = {0};
    CX_CHECK_OK(cx_storage_changes(tx, "T", s3, 10, on_change, &g));
    CX_CHECK(g.n == 1 && g.seq[0] == s4);
    feed h = {0};
    CX_CHECK_OK(cx_storage_changes(tx, "T", 0, 1, on_change, &h));
    CX_CHECK(h.n == 1 && h.seq[0] == s3);
    /* a callback's failure stops the walk and is returned */
    int calls = 0;
    CX_CHECK_INT(cx_storage_changes(tx, "T", 0, 10, on_change_stop, &calls), CX_ECANCELED);
    CX_CHECK_INT(calls, 1);
    feed none = {0};
    CX_CHECK_OK(cx_storage_changes(tx, "U", 0, 10, on_change, &none));
    CX_CHECK_INT(none.n, 0);
    /* pull: the horizon (none yet) and the same pages as changes */
    int64_t hz = -1;
    feed pa = {0}, pb = {0}, pc = {0};
    CX_CHECK_OK(cx_storage_pull(tx, "T", 0, 10, &hz, on_change, &pa));
    CX_CHECK_INT(hz, 0);
    CX_CHECK(pa.n == 2 && pa.seq[0] == s3 && pa.seq[1] == s4 && !pa.tomb[0] && pa.tomb[1]);
    CX_CHECK_STR(pa.id[0], "01J00000000000000000000001");
    CX_CHECK_OK(cx_storage_pull(tx, "T", s3, 1, &hz, on_change, &pb));
    CX_CHECK(pb.n == 1 && pb.seq[0] == s4);
    CX_CHECK_OK(cx_storage_pull(tx, "T", s4, 10, &hz, on_change, &pc));
    CX_CHECK_INT(pc.n, 0); /* caught up: nothing, the horizon still told */
    CX_CHECK_INT(hz, 0);
    calls = 0;
    CX_CHECK_INT(cx_storage_pull(tx, "T", 0, 10, &hz, on_change_stop, &calls), CX_ECANCELED);
    CX_CHECK_INT(calls, 1);
    cx_storage_rollback(tx);

    /* compaction: tombstones below `before` go, the horizon only rises */
    int64_t dropped = -1, horizon = -1;
    CX_CHECK_OK(cx_storage_begin(st, true, &tx));
    CX_CHECK_OK(cx_storage_compact(tx, "T", s4 + 1, &dropped));
    CX_CHECK_INT(dropped, 1);
    CX_CHECK_OK(cx_storage_horizon(tx, "T", &horizon));
    CX_CHECK_INT(horizon, s4 + 1);
    CX_CHECK_OK(cx_storage_compact(tx, "T", 1, &dropped));
    CX_CHECK_INT(dropped, 0);
    CX_CHECK_OK(cx_storage_horizon(tx, "T", &horizon));
    CX_CHECK_INT(horizon, s4 + 1);
    CX_CHECK_OK(cx_storage_horizon(tx, "U", &horizon));
    CX_CHECK_INT(horizon, 0);
    CX_CHECK_OK(cx_storage_commit(tx));
    CX_CHECK_OK(cx_storage_begin(st, false, &tx));
    CX_CHECK_INT(cx_storage_item_get(tx, "T", "01J00000000000000000000002", &json, &seq, &deleted),
                 CX_ENOTFOUND);
    feed after = {0};
    CX_CHECK_OK(cx_storage_changes(tx, "T", 0, 10, on_change, &after));
    CX_CHECK(after.n == 1 && !after.tomb[0]); /* the live item stays */
    /* pull under a horizon: from 0 or at it, the page; below it, none */
    feed p0 = {0}, p1 = {0}, p2 = {0};
    CX_CHECK_OK(cx_storage_pull(tx, "T", 0, 10, &horizon, on_change, &p0));
    CX_CHECK_INT(horizon, s4 + 1);
    CX_CHECK(p0.n == 1 && p0.seq[0] == s3);
    horizon = -1;
    CX_CHECK_OK(cx_storage_pull(tx, "T", s1, 10, &horizon, on_change, &p1));
    CX_CHECK_INT(horizon, s4 + 1);
    CX_CHECK_INT(p1.n, 0); /* s1 < the horizon: the caller answers "gone" */
    CX_CHECK_OK(cx_storage_pull(tx, "T", s4 + 1, 10, &horizon, on_change, &p2));
    CX_CHECK_INT(p2.n, 0);
    horizon = -1;
    CX_CHECK_OK(cx_storage_pull(tx, "U", 0, 10, &horizon, on_change, &p2));
    CX_CHECK_INT(horizon, 0);
    cx_storage_rollback(tx);
}

/* Puts an item of team "S" with a title (a new seq, one transaction). */
static void put_titled(cx_storage *st, const char *id, const char *title, bool deleted) {
    cx_storage_tx *tx = NULL;
    int64_t seq = -1;
    char json[256];
    snprintf(json, sizeof json,
             "{\"id\":\"%s\",\"kind\":\"observation\",\"status\":\"recorded\",\"title\":\"%s\","
             "\"body\":\"the body\"}",
             id, title);
    CX_CHECK_OK(cx_storage_begin(st, true, &tx));
    CX_CHECK_OK(cx_storage_seq_next(tx, "S", &seq));
    CX_CHECK_OK(cx_storage_item_put(tx, "S", id, "observation", "recorded", seq, deleted,
                                    deleted ? NULL : json));
    CX_CHECK_OK(cx_storage_commit(tx));
}

/* Indexes everything pending; returns what is left (0). */
static int64_t index_all(cx_storage *st) {
    cx_storage_tx *tx = NULL;
    int64_t pending = -1;
    CX_CHECK_OK(cx_storage_begin(st, true, &tx));
    CX_CHECK_OK(cx_storage_index(tx, 1000, &pending));
    CX_CHECK_OK(cx_storage_commit(tx));
    return pending;
}

/* Matches of one word in team "S". */
static int hits(cx_storage *st, const char *word) {
    cx_storage_tx *tx = NULL;
    int n = 0;
    int64_t total = -1;
    cx_storage_query q = {.text = word, .limit = 10};
    CX_CHECK_OK(cx_storage_begin(st, false, &tx));
    CX_CHECK_OK(cx_storage_search(tx, "S", &q, count_cb, &n, &total));
    cx_storage_rollback(tx);
    CX_CHECK_INT(total, n);
    return n;
}

/* The search index's deferred work (cx_storage_index): an item is found
 * once indexed (SQLite queues it; PostgreSQL indexes in the write), an
 * update or a tombstone while it waits or after it was indexed leaves only
 * the newest text findable, and nothing stays pending. */
static void test_search_index(cx_storage *st) {
    put_titled(st, "01J0000000000000000000S001", "alphaword", false);
    CX_CHECK_INT(index_all(st), 0);
    CX_CHECK_INT(hits(st, "alphaword"), 1);
    /* updated while queued */
    put_titled(st, "01J0000000000000000000S002", "bravoword", false);
    put_titled(st, "01J0000000000000000000S002", "charlieword", false);
    CX_CHECK_INT(index_all(st), 0);
    CX_CHECK_INT(hits(st, "bravoword"), 0);
    CX_CHECK_INT(hits(st, "charlieword"), 1);
    /* updated once indexed */
    put_titled(st, "01J0000000000000000000S002", "deltaword", false);
    CX_CHECK_INT(index_all(st), 0);
    CX_CHECK_INT(hits(st, "charlieword"), 0);
    CX_CHECK_INT(hits(st, "deltaword"), 1);
    /* a tombstone while queued, and one once indexed */
    put_titled(st, "01J0000000000000000000S003", "echoword", false);
    put_titled(st, "01J0000000000000000000S003", "", true);
    put_titled(st, "01J0000000000000000000S001", "", true);
    CX_CHECK_INT(index_all(st), 0);
    CX_CHECK_INT(hits(st, "echoword"), 0);
    CX_CHECK_INT(hits(st, "alphaword"), 0);
    /* live again after a tombstone */
    put_titled(st, "01J0000000000000000000S001", "foxtrotword", false);
    CX_CHECK_INT(index_all(st), 0);
    CX_CHECK_INT(hits(st, "foxtrotword"), 1);
    CX_CHECK_INT(hits(st, "deltaword"), 1);
    /* limit 0 only counts, in a read transaction too */
    cx_storage_tx *tx = NULL;
    int64_t pending = -1;
    CX_CHECK_OK(cx_storage_begin(st, false, &tx));
    CX_CHECK_OK(cx_storage_index(tx, 0, &pending));
    cx_storage_rollback(tx);
    CX_CHECK_INT(pending, 0);
}

static void test_ops(cx_storage *st) {
    cx_storage_tx *tx = NULL;
    uint8_t d[32], got[32];
    memset(d, 0xab, sizeof d);
    int64_t seq = 0;
    CX_CHECK_OK(cx_storage_begin(st, true, &tx));
    CX_CHECK_INT(cx_storage_op_get(tx, "T", "op-1", got, &seq), CX_ENOTFOUND);
    CX_CHECK_OK(cx_storage_op_put(tx, "T", "op-1", d, 7));
    CX_CHECK(cx_storage_op_put(tx, "T", "op-1", d, 8) != 0); /* an op id is recorded once */
    CX_CHECK_OK(cx_storage_op_get(tx, "T", "op-1", got, &seq));
    CX_CHECK(memcmp(got, d, 32) == 0);
    CX_CHECK_INT(seq, 7);
    CX_CHECK_INT(cx_storage_op_get(tx, "U", "op-1", got, &seq), CX_ENOTFOUND);
    CX_CHECK_OK(cx_storage_op_put(tx, "U", "op-1", d, 1)); /* op ids are per team */
    CX_CHECK_OK(cx_storage_commit(tx));
}

static void test_keys(cx_storage *st) {
    cx_storage_tx *tx = NULL;
    cx_storage_key k = {.key_id = "0123456789abcdef", .team = "T", .role = "agent",
                        .name = "ann", .created_ms = 1000};
    memset(k.hash, 0x11, sizeof k.hash);
    cx_storage_key got;
    CX_CHECK_OK(cx_storage_begin(st, true, &tx));
    CX_CHECK_OK(cx_storage_key_put(tx, &k));
    CX_CHECK(cx_storage_key_put(tx, &k) != 0); /* key ids are unique */
    CX_CHECK_OK(cx_storage_key_get(tx, k.key_id, &got));
    CX_CHECK_STR(got.team, "T");
    CX_CHECK_STR(got.role, "agent");
    CX_CHECK_STR(got.name, "ann");
    CX_CHECK(memcmp(got.hash, k.hash, sizeof k.hash) == 0);
    CX_CHECK_INT(got.revoked_ms, 0);
    CX_CHECK_INT(cx_storage_key_get(tx, "ffffffffffffffff", &got), CX_ENOTFOUND);
    int n = 0;
    CX_CHECK_OK(cx_storage_key_list(tx, count_keys, &n));
    CX_CHECK_INT(n, 1);
    CX_CHECK_OK(cx_storage_key_revoke(tx, k.key_id, 5000));
    CX_CHECK_INT(cx_storage_key_revoke(tx, k.key_id, 6000), CX_ECONFLICT);
    CX_CHECK_INT(cx_storage_key_revoke(tx, "ffffffffffffffff", 6000), CX_ENOTFOUND);
    CX_CHECK_OK(cx_storage_key_get(tx, k.key_id, &got));
    CX_CHECK_INT(got.revoked_ms, 5000);
    CX_CHECK_OK(cx_storage_commit(tx));
}

/* Sessions: stored by the hash of their token, ended one at a time or all
 * of a key's at once, and old rows purged a bounded number at a time. */
static void test_sessions(cx_storage *st) {
    cx_storage_tx *tx = NULL;
    cx_storage_session s = {.token_hash = "aa", .key_id = "0123456789abcdef", .team = "T",
                            .csrf = "csrf-1", .created_ms = 1000, .expires_ms = 2000};
    cx_storage_session got;
    char h[65];
    CX_CHECK_OK(cx_storage_begin(st, true, &tx));
    CX_CHECK_OK(cx_storage_session_put(tx, &s));
    /* more of the same key, one of another key, old ones to purge */
    for (int i = 0; i < 6; i++) {
        cx_storage_session o = s;
        snprintf(h, sizeof h, "old-%d", i);
        snprintf(o.token_hash, sizeof o.token_hash, "%s", h);
        o.expires_ms = 100 + i; /* long expired */
        CX_CHECK_OK(cx_storage_session_put(tx, &o));
    }
    cx_storage_session b = s;
    snprintf(b.token_hash, sizeof b.token_hash, "bb");
    cx_storage_session c = s;
    snprintf(c.token_hash, sizeof c.token_hash, "cc");
    snprintf(c.key_id, sizeof c.key_id, "fedcba9876543210");
    CX_CHECK_OK(cx_storage_session_put(tx, &b));
    CX_CHECK_OK(cx_storage_session_put(tx, &c));
    CX_CHECK_OK(cx_storage_commit(tx));

    CX_CHECK_OK(cx_storage_begin(st, false, &tx)); /* a reader sees them */
    CX_CHECK_OK(cx_storage_session_get(tx, "aa", &got));
    CX_CHECK_STR(got.key_id, "0123456789abcdef");
    CX_CHECK_STR(got.team, "T");
    CX_CHECK_STR(got.csrf, "csrf-1");
    CX_CHECK_INT(got.created_ms, 1000);
    CX_CHECK_INT(got.expires_ms, 2000);
    CX_CHECK_INT(got.ended_ms, 0);
    CX_CHECK_INT(cx_storage_session_get(tx, "zz", &got), CX_ENOTFOUND);
    cx_storage_rollback(tx);

    int64_t n = -1;
    CX_CHECK_OK(cx_storage_begin(st, true, &tx));
    CX_CHECK_OK(cx_storage_session_end(tx, "aa", 1500));
    CX_CHECK_INT(cx_storage_session_end(tx, "aa", 1600), CX_ENOTFOUND); /* ended already */
    CX_CHECK_INT(cx_storage_session_end(tx, "zz", 1600), CX_ENOTFOUND);
    CX_CHECK_OK(cx_storage_session_get(tx, "aa", &got));
    CX_CHECK_INT(got.ended_ms, 1500);
    /* the key's live sessions: bb and the six old ones, not aa (ended) nor cc */
    CX_CHECK_OK(cx_storage_session_end_key(tx, "0123456789abcdef", 1700, &n));
    CX_CHECK_INT(n, 7);
    CX_CHECK_OK(cx_storage_session_get(tx, "bb", &got));
    CX_CHECK_INT(got.ended_ms, 1700);
    CX_CHECK_OK(cx_storage_session_get(tx, "cc", &got));
    CX_CHECK_INT(got.ended_ms, 0);
    CX_CHECK_OK(cx_storage_session_end_key(tx, "0123456789abcdef", 1800, &n));
    CX_CHECK_INT(n, 0);
    /* purge before 1000: only the six expired at 100..105, at most 4 a call */
    CX_CHECK_OK(cx_storage_session_purge(tx, 1000, 4, &n));
    CX_CHECK_INT(n, 4);
    CX_CHECK_OK(cx_storage_session_purge(tx, 1000, 4, &n));
    CX_CHECK_INT(n, 2);
    CX_CHECK_OK(cx_storage_session_purge(tx, 1000, 4, &n));
    CX_CHECK_INT(n, 0);
    CX_CHECK_OK(cx_storage_session_get(tx, "aa", &got)); /* ended at 1500: kept */
    /* purge before 1750: aa (ended 1500) goes; bb ended at 1700 goes too */
    CX_CHECK_OK(cx_storage_session_purge(tx, 1750, 100, &n));
    CX_CHECK_INT(n, 2);
    CX_CHECK_INT(cx_storage_session_get(tx, "aa", &got), CX_ENOTFOUND);
    CX_CHECK_OK(cx_storage_session_get(tx, "cc", &got)); /* live, expires at 2000 */
    CX_CHECK_OK(cx_storage_session_purge(tx, 3000, 100, &n)); /* expired by 3000 */
    CX_CHECK_INT(n, 1);
    CX_CHECK_OK(cx_storage_commit(tx));
    /* one row per token (a failure voids a PostgreSQL transaction: alone) */
    CX_CHECK_OK(cx_storage_begin(st, true, &tx));
    CX_CHECK_OK(cx_storage_session_put(tx, &s));
    CX_CHECK(cx_storage_session_put(tx, &s) != 0);
    cx_storage_rollback(tx);
}

static void test_blobs(cx_storage *st) {
    cx_storage_tx *tx = NULL;
    const char *sha = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    bool created = false, has = false, gone = true;
    void *data = NULL;
    size_t len = 0;
    CX_CHECK_OK(cx_storage_begin(st, true, &tx));
    CX_CHECK_OK(cx_storage_blob_put(tx, "T", sha, "hello", 5, &created));
    CX_CHECK(created);
    CX_CHECK_OK(cx_storage_blob_put(tx, "T", sha, "hello", 5, &created));
    CX_CHECK(!created);
    CX_CHECK_OK(cx_storage_blob_has(tx, "T", sha, &has));
    CX_CHECK(has);
    CX_CHECK_OK(cx_storage_blob_has(tx, "U", sha, &has));
    CX_CHECK(!has);
    CX_CHECK_OK(cx_storage_blob_get(tx, "T", sha, &data, &len));
    CX_CHECK(len == 5 && data && memcmp(data, "hello", 5) == 0);
    free(data);
    data = NULL;
    CX_CHECK_INT(cx_storage_blob_get(tx, "U", sha, &data, &len), CX_ENOTFOUND);
    /* a blob a live item names stays; an unnamed one goes */
    int64_t seq = 0;
    char json[160];
    snprintf(json, sizeof json, "{\"versions\":[{\"sha256\":\"%s\"}]}", sha);
    CX_CHECK_OK(cx_storage_seq_next(tx, "T", &seq));
    CX_CHECK_OK(cx_storage_item_put(tx, "T", "01J000000000000000000ART01", "artifact",
                                    "published", seq, false, json));
    CX_CHECK_OK(cx_storage_blob_drop_unused(tx, "T", sha, &gone));
    CX_CHECK(!gone);
    CX_CHECK_OK(cx_storage_seq_next(tx, "T", &seq));
    CX_CHECK_OK(cx_storage_item_put(tx, "T", "01J000000000000000000ART01", "artifact",
                                    "published", seq, true, NULL));
    CX_CHECK_OK(cx_storage_blob_drop_unused(tx, "T", sha, &gone));
    CX_CHECK(gone);
    CX_CHECK_OK(cx_storage_blob_has(tx, "T", sha, &has));
    CX_CHECK(!has);
    CX_CHECK_OK(cx_storage_commit(tx));
}

static void test_queue(cx_storage *st) {
    cx_storage_tx *tx = NULL;
    put(st, "Q", "01J0000000000000000000000A", "draft", "pending", false);
    put(st, "Q", "01J0000000000000000000000B", "draft", "changes_requested", false);
    put(st, "Q", "01J0000000000000000000000C", "draft", "rejected", false);
    put(st, "Q", "01J0000000000000000000000D", "thread", "canon", false);
    put(st, "Q", "01J0000000000000000000000E", "draft", "pending", true);
    put(st, "R", "01J0000000000000000000000A", "draft", "pending", false);
    int n = 0;
    int64_t total = 0, depth = 0;
    CX_CHECK_OK(cx_storage_begin(st, false, &tx));
    CX_CHECK_OK(cx_storage_queue(tx, "Q", 10, count_cb, &n, &total));
    CX_CHECK_INT(n, 2);
    CX_CHECK_INT(total, 2);
    n = 0;
    CX_CHECK_OK(cx_storage_queue(tx, "Q", 1, count_cb, &n, &total));
    CX_CHECK(n == 1 && total == 2); /* the total is not cut by the page */
    CX_CHECK_OK(cx_storage_queue_depth(tx, &depth));
    CX_CHECK_INT(depth, 3); /* every team: Q two, R one */
    cx_storage_rollback(tx);
}

static void test_audit(cx_storage *st) {
    cx_storage_tx *tx = NULL;
    int64_t n = -1;
    char hash[65];
    const char *h1 = "1111111111111111111111111111111111111111111111111111111111111111";
    CX_CHECK_OK(cx_storage_begin(st, true, &tx));
    CX_CHECK_OK(cx_storage_audit_last(tx, &n, hash));
    CX_CHECK_INT(n, 0);
    CX_CHECK(hash[0] == '\0');
    cx_storage_audit a = {.n = 1, .ts_ms = 1, .team = "T", .actor = "rev", .action = "key.create",
                          .detail = "{}", .prev = "", .hash = h1};
    CX_CHECK_OK(cx_storage_audit_put(tx, &a));
    a.n = 2;
    a.action = "review.decision";
    a.prev = h1;
    CX_CHECK_OK(cx_storage_audit_put(tx, &a));
    CX_CHECK(cx_storage_audit_put(tx, &a) != 0); /* n is unique: the chain cannot fork */
    CX_CHECK_OK(cx_storage_audit_last(tx, &n, hash));
    CX_CHECK_INT(n, 2);
    CX_CHECK_STR(hash, h1);
    audit_seen seen = {0};
    CX_CHECK_OK(cx_storage_audit_each(tx, on_audit, &seen));
    CX_CHECK_INT(seen.n, 2);
    CX_CHECK_STR(seen.last_action, "review.decision");
    CX_CHECK_OK(cx_storage_commit(tx));
}

static void test_rollback(cx_storage *st) {
    cx_storage_tx *tx = NULL;
    int64_t seq = 0;
    char *json = NULL;
    bool deleted = false;
    CX_CHECK_OK(cx_storage_begin(st, true, &tx));
    CX_CHECK_OK(cx_storage_seq_next(tx, "W", &seq));
    CX_CHECK_OK(cx_storage_item_put(tx, "W", "01J0000000000000000000000W", "observation",
                                    "recorded", seq, false, "{}"));
    cx_storage_rollback(tx);
    CX_CHECK_OK(cx_storage_begin(st, false, &tx));
    CX_CHECK_INT(cx_storage_item_get(tx, "W", "01J0000000000000000000000W", &json, &seq, &deleted),
                 CX_ENOTFOUND);
    cx_storage_rollback(tx);
}

/* A read transaction runs while a write transaction is open, on the same
 * thread (so it cannot be waiting behind the writer), and sees the last
 * commit, not the writer's work in progress. */
static void test_read_beside_write(cx_storage *st) {
    cx_storage_tx *w = NULL, *r = NULL;
    int64_t before = 0, seq = 0, seen = -1;
    CX_CHECK_OK(cx_storage_begin(st, false, &r));
    CX_CHECK_OK(cx_storage_seq_last(r, "RW", &before));
    cx_storage_rollback(r);
    CX_CHECK_OK(cx_storage_begin(st, true, &w));
    CX_CHECK_OK(cx_storage_seq_next(w, "RW", &seq));
    CX_CHECK_OK(cx_storage_item_put(w, "RW", "01J000000000000000000000RW", "observation",
                                    "recorded", seq, false, "{}"));
    CX_CHECK_OK(cx_storage_begin(st, false, &r));
    CX_CHECK_OK(cx_storage_seq_last(r, "RW", &seen));
    CX_CHECK_INT(seen, before);
    cx_storage_rollback(r);
    CX_CHECK_OK(cx_storage_commit(w));
    CX_CHECK_OK(cx_storage_begin(st, false, &r));
    CX_CHECK_OK(cx_storage_seq_last(r, "RW", &seen));
    CX_CHECK_INT(seen, seq);
    cx_storage_rollback(r);
}

/* Writers commit items in several teams from several threads while
 * readers pull each team's changes incrementally with a cursor; every
 * reader must see every change of its team exactly once, in strictly
 * increasing seq order (the commit-order guarantee of seq_next). */
#define CC_TEAMS 3
#define CC_WRITERS 4
#define CC_PER_WRITER 60
#define CC_READERS 3

typedef struct cc_shared {
    cx_storage *st;
    atomic_int writers_left;
    atomic_int failures;
} cc_shared;

typedef struct cc_writer {
    cc_shared *sh;
    int n;
} cc_writer;

static const char *cc_team(int i) {
    static const char *const names[CC_TEAMS] = {"cc-a", "cc-b", "cc-c"};
    return names[i % CC_TEAMS];
}

typedef struct cc_put {
    const char *team;
    char id[32];
    int64_t seq;
} cc_put;

static int cc_put_tx(cx_storage_tx *tx, void *ud) {
    cc_put *p = ud;
    int r = cx_storage_seq_next(tx, p->team, &p->seq);
    if (r == 0)
        r = cx_storage_item_put(tx, p->team, p->id, "observation", "recorded", p->seq, false,
                                "{}");
    return r;
}

static void *cc_write(void *arg) {
    cc_writer *w = arg;
    for (int i = 0; i < CC_PER_WRITER; i++) {
        cc_put p = {.team = cc_team(i + w->n)};
        /* the id names its team: 01J…T<team>W<writer>I<i> */
        snprintf(p.id, sizeof p.id, "01J00000000000000T%dW%02dI%03d", (i + w->n) % CC_TEAMS,
                 w->n, i);
        if (cx_storage_run(w->sh->st, true, cc_put_tx, &p) != 0)
            atomic_fetch_add(&w->sh->failures, 1);
    }
    atomic_fetch_sub(&w->sh->writers_left, 1);
    return NULL;
}

typedef struct cc_reader {
    cc_shared *sh;
    int team;
    int64_t cursor;
    int seen, dups, disorder;
    char (*ids)[32]; /* every id seen, to find a second sighting */
} cc_reader;

static int cc_on_change(void *ud, int64_t seq, const char *id, const char *json) {
    (void)json;
    cc_reader *r = ud;
    if (seq <= r->cursor)
        r->disorder++;
    r->cursor = seq;
    for (int i = 0; i < r->seen; i++)
        if (strcmp(r->ids[i], id) == 0)
            r->dups++;
    if (r->seen < CC_WRITERS * CC_PER_WRITER)
        snprintf(r->ids[r->seen++], 32, "%s", id);
    return 0;
}

static int cc_pull(cc_reader *r) {
    cx_storage_tx *tx = NULL;
    int rc = cx_storage_begin(r->sh->st, false, &tx);
    if (rc)
        return rc;
    rc = cx_storage_changes(tx, cc_team(r->team), r->cursor, 7, cc_on_change, r);
    cx_storage_rollback(tx);
    return rc;
}

static void *cc_read(void *arg) {
    cc_reader *r = arg;
    /* bounded: pulls while writers write, then until a pull brings nothing */
    for (int i = 0; i < 1000000; i++) {
        bool done = atomic_load(&r->sh->writers_left) == 0;
        int before = r->seen;
        if (cc_pull(r) != 0) {
            atomic_fetch_add(&r->sh->failures, 1);
            break;
        }
        if (done && r->seen == before)
            break;
    }
    return NULL;
}

static void test_concurrent(cx_storage *st) {
    cc_shared sh = {.st = st};
    atomic_init(&sh.writers_left, CC_WRITERS);
    atomic_init(&sh.failures, 0);
    pthread_t wt[CC_WRITERS], rt[CC_READERS * CC_TEAMS];
    cc_writer ws[CC_WRITERS];
    cc_reader rs[CC_READERS * CC_TEAMS];
    memset(rs, 0, sizeof rs);
    int nr = 0;
    for (int t = 0; t < CC_TEAMS; t++)
        for (int k = 0; k < CC_READERS; k++, nr++) {
            rs[nr].sh = &sh;
            rs[nr].team = t;
            rs[nr].ids = calloc(CC_WRITERS * CC_PER_WRITER, 32);
            CX_CHECK(rs[nr].ids != NULL);
            pthread_create(&rt[nr], NULL, cc_read, &rs[nr]);
        }
    for (int i = 0; i < CC_WRITERS; i++) {
        ws[i] = (cc_writer){.sh = &sh, .n = i};
        pthread_create(&wt[i], NULL, cc_write, &ws[i]);
    }
    for (int i = 0; i < CC_WRITERS; i++)
        pthread_join(wt[i], NULL);
    for (int i = 0; i < nr; i++)
        pthread_join(rt[i], NULL);
    CX_CHECK_INT(atomic_load(&sh.failures), 0);
    int per_team[CC_TEAMS] = {0};
    for (int w = 0; w < CC_WRITERS; w++)
        for (int i = 0; i < CC_PER_WRITER; i++)
            per_team[(i + w) % CC_TEAMS]++;
    for (int i = 0; i < nr; i++) {
        CX_CHECK_INT(rs[i].seen, per_team[rs[i].team]);
        CX_CHECK_INT(rs[i].dups, 0);
        CX_CHECK_INT(rs[i].disorder, 0);
        for (int k = 0; k < rs[i].seen; k++) /* nothing crossed teams */
            CX_CHECK(rs[i].ids[k][18] == '0' + rs[i].team);
        free(rs[i].ids);
    }
    cx_storage_stats stats;
    cx_storage_stats_get(st, &stats);
    CX_CHECK(stats.tx_total >= (uint64_t)(CC_WRITERS * CC_PER_WRITER));
    CX_CHECK_INT(stats.pool_in_use, 0);
    cx_storage_health_info health;
    CX_CHECK_OK(cx_storage_health(st, &health));
    CX_CHECK(health.ok);
}

/* Every backend-neutral case against a new, empty database at target (a
 * file path or a postgresql:// URI), then again after reopening it. */
static void run_cases(const char *target) {
    cx_storage *st = NULL;
    cx_storage_tx *tx = NULL;
    CX_CHECK_OK(cx_storage_open(&st, target, CX_STORAGE_CREATE));
    if (!st)
        return;
    CX_CHECK_INT(cx_storage_set_pool(st, 0), CX_EINVAL);
    test_seq(st);
    test_items(st);
    test_ops(st);
    test_keys(st);
    test_sessions(st);
    test_blobs(st);
    test_queue(st);
    test_search_index(st);
    test_audit(st);
    test_rollback(st);
    test_read_beside_write(st);
    test_concurrent(st);
    cx_storage_free(st);
    st = NULL;

    /* reopening (without CX_STORAGE_CREATE) keeps everything */
    CX_CHECK_OK(cx_storage_open(&st, target, 0));
    if (st) {
        char *json = NULL;
        int64_t seq = 0, last = 0;
        bool deleted = true;
        CX_CHECK_OK(cx_storage_begin(st, true, &tx));
        CX_CHECK_OK(cx_storage_item_get(tx, "T", "01J00000000000000000000001", &json, &seq,
                                        &deleted));
        CX_CHECK(json && !deleted);
        free(json);
        CX_CHECK_OK(cx_storage_seq_last(tx, "T", &last));
        CX_CHECK_OK(cx_storage_seq_next(tx, "T", &seq));
        CX_CHECK_INT(seq, last + 1); /* the seq goes on where it was */
        cx_storage_key got;
        CX_CHECK_OK(cx_storage_key_get(tx, "0123456789abcdef", &got));
        CX_CHECK_OK(cx_storage_commit(tx));
        cx_storage_free(st);
    }
}

int main(void) {
    char *dir = cx_test_tmpdir();
    CX_CHECK(dir != NULL);
    if (!dir)
        return cx_test_done();
    char path[1024], copy[1024];
    snprintf(path, sizeof path, "%s/core.db", dir);
    snprintf(copy, sizeof copy, "%s/backup.db", dir);
    cx_storage *st = NULL;
    cx_storage_tx *tx = NULL;
    CX_CHECK_INT(cx_storage_open(&st, path, 0), CX_ENOTFOUND); /* init comes first */
    CX_CHECK(st == NULL);
    run_cases(path);

    /* SQLite's own: the online backup, and opening it read-only */
    CX_CHECK_OK(cx_storage_open(&st, path, 0));
    if (st) {
        CX_CHECK_OK(cx_storage_backup(st, copy));
        CX_CHECK_INT(cx_storage_backup(st, copy), CX_ECONFLICT);
        cx_storage_free(st);
        st = NULL;
    }
    /* the backup is a whole database of its own, readable read-only */
    CX_CHECK_OK(cx_storage_open(&st, copy, CX_STORAGE_READONLY));
    if (st) {
        int64_t last = 0;
        CX_CHECK_OK(cx_storage_begin(st, false, &tx));
        CX_CHECK_OK(cx_storage_seq_last(tx, "T", &last));
        CX_CHECK(last > 0);
        audit_seen seen = {0};
        CX_CHECK_OK(cx_storage_audit_each(tx, on_audit, &seen));
        CX_CHECK_INT(seen.n, 2);
        cx_storage_rollback(tx);
        /* read-only: a write fails */
        int64_t seq = 0;
        int r = cx_storage_begin(st, true, &tx);
        if (r == 0) {
            CX_CHECK(cx_storage_seq_next(tx, "T", &seq) != 0);
            cx_storage_rollback(tx);
        }
        cx_storage_free(st);
    }
    cx_storage_free(NULL); /* accepts NULL */

    /* A PostgreSQL database when the environment names one (a new, empty
     * database: the PostgreSQL tests create it); a build without the
     * backend refuses the URI. */
    const char *uri = getenv("CX_TEST_STORAGE_URI");
    if (uri && *uri)
        run_cases(uri);
    st = NULL;
    CX_CHECK(cx_storage_is_uri("postgresql://cortex@db.internal/cortex"));
    CX_CHECK(cx_storage_is_uri("postgres://localhost/x"));
    CX_CHECK(!cx_storage_is_uri("/var/lib/cortex/core.db"));
#ifndef CX_HAVE_PG
    CX_CHECK_INT(cx_storage_open(&st, "postgresql://localhost/x", 0), CX_EINVAL);
    CX_CHECK(st == NULL);
#endif
    cx_test_rmrf(dir);
    free(dir);
    return cx_test_done();
}
