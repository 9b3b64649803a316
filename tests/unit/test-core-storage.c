/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for cortex-core's storage (src/core/storage.c) on a database
 * in a temporary directory: the per-team seq, items and tombstones, the
 * change feed and its compaction horizon, op idempotency records, keys,
 * blobs, the review queue, the audit log, transactions, reopening, backup,
 * and that no call reads across teams. */
#include "core/storage.h"

#include "test.h"
#include "util/error.h"

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
    int64_t seq = -1;
    CX_CHECK_OK(cx_storage_begin(st, true));
    CX_CHECK_OK(cx_storage_seq_next(st, team, &seq));
    CX_CHECK_OK(cx_storage_commit(st));
    return seq;
}

/* Puts an item (a new seq) and returns the seq. */
static int64_t put(cx_storage *st, const char *team, const char *id, const char *kind,
                   const char *status, bool deleted) {
    int64_t seq = -1;
    char json[256];
    snprintf(json, sizeof json, "{\"id\":\"%s\",\"kind\":\"%s\",\"status\":\"%s\"}", id, kind,
             status);
    CX_CHECK_OK(cx_storage_begin(st, true));
    CX_CHECK_OK(cx_storage_seq_next(st, team, &seq));
    CX_CHECK_OK(cx_storage_item_put(st, team, id, kind, status, seq, deleted, json));
    CX_CHECK_OK(cx_storage_commit(st));
    return seq;
}

static void test_seq(cx_storage *st) {
    int64_t a1 = next_seq(st, "A"), a2 = next_seq(st, "A"), b1 = next_seq(st, "B");
    int64_t a3 = next_seq(st, "A");
    CX_CHECK_INT(a1, 1);
    CX_CHECK(a2 > a1 && a3 > a2);
    CX_CHECK_INT(b1, 1); /* each team has its own seq */
    int64_t last = 0;
    CX_CHECK_OK(cx_storage_begin(st, false));
    CX_CHECK_OK(cx_storage_seq_last(st, "A", &last));
    CX_CHECK_INT(last, a3);
    CX_CHECK_OK(cx_storage_seq_last(st, "nobody", &last));
    CX_CHECK_INT(last, 0);
    cx_storage_rollback(st);
    /* a rolled-back seq is given out again: nothing skips in the feed */
    int64_t seq = 0;
    CX_CHECK_OK(cx_storage_begin(st, true));
    CX_CHECK_OK(cx_storage_seq_next(st, "A", &seq));
    cx_storage_rollback(st);
    CX_CHECK_INT(next_seq(st, "A"), seq);
}

static void test_items(cx_storage *st) {
    int64_t s1 = put(st, "T", "01J00000000000000000000001", "observation", "recorded", false);
    int64_t s2 = put(st, "T", "01J00000000000000000000002", "draft", "pending", false);
    CX_CHECK(s2 > s1);
    char *json = NULL;
    int64_t seq = 0;
    bool deleted = true;
    CX_CHECK_OK(cx_storage_begin(st, false));
    CX_CHECK_OK(cx_storage_item_get(st, "T", "01J00000000000000000000001", &json, &seq, &deleted));
    CX_CHECK(json && strstr(json, "\"observation\""));
    CX_CHECK_INT(seq, s1);
    CX_CHECK(!deleted);
    free(json);
    json = NULL;
    CX_CHECK_INT(cx_storage_item_get(st, "T", "01J0000000000000000000000Z", &json, &seq, &deleted),
                 CX_ENOTFOUND);
    /* team isolation: the same id in another team is not there */
    CX_CHECK_INT(cx_storage_item_get(st, "U", "01J00000000000000000000001", &json, &seq, &deleted),
                 CX_ENOTFOUND);
    CX_CHECK(json == NULL);
    cx_storage_rollback(st);

    /* an update moves the item to a new seq: the feed has it once */
    int64_t s3 = put(st, "T", "01J00000000000000000000001", "observation", "recorded", false);
    /* a tombstone */
    int64_t s4 = put(st, "T", "01J00000000000000000000002", "draft", "pending", true);
    CX_CHECK(s4 > s3 && s3 > s2);
    CX_CHECK_OK(cx_storage_begin(st, false));
    CX_CHECK_OK(cx_storage_item_get(st, "T", "01J00000000000000000000002", &json, &seq, &deleted));
    CX_CHECK(deleted);
    CX_CHECK_INT(seq, s4);
    free(json);
    json = NULL;
    feed f = {0};
    CX_CHECK_OK(cx_storage_changes(st, "T", 0, 10, on_change, &f));
    CX_CHECK_INT(f.n, 2);
    CX_CHECK(f.seq[0] == s3 && f.seq[1] == s4);
    CX_CHECK_STR(f.id[0], "01J00000000000000000000001");
    CX_CHECK(!f.tomb[0] && f.tomb[1]);
    /* since and limit */
    feed g = {0};
    CX_CHECK_OK(cx_storage_changes(st, "T", s3, 10, on_change, &g));
    CX_CHECK(g.n == 1 && g.seq[0] == s4);
    feed h = {0};
    CX_CHECK_OK(cx_storage_changes(st, "T", 0, 1, on_change, &h));
    CX_CHECK(h.n == 1 && h.seq[0] == s3);
    /* a callback's failure stops the walk and is returned */
    int calls = 0;
    CX_CHECK_INT(cx_storage_changes(st, "T", 0, 10, on_change_stop, &calls), CX_ECANCELED);
    CX_CHECK_INT(calls, 1);
    feed none = {0};
    CX_CHECK_OK(cx_storage_changes(st, "U", 0, 10, on_change, &none));
    CX_CHECK_INT(none.n, 0);
    cx_storage_rollback(st);

    /* compaction: tombstones below `before` go, the horizon only rises */
    int64_t dropped = -1, horizon = -1;
    CX_CHECK_OK(cx_storage_begin(st, true));
    CX_CHECK_OK(cx_storage_compact(st, "T", s4 + 1, &dropped));
    CX_CHECK_INT(dropped, 1);
    CX_CHECK_OK(cx_storage_horizon(st, "T", &horizon));
    CX_CHECK_INT(horizon, s4 + 1);
    CX_CHECK_OK(cx_storage_compact(st, "T", 1, &dropped));
    CX_CHECK_INT(dropped, 0);
    CX_CHECK_OK(cx_storage_horizon(st, "T", &horizon));
    CX_CHECK_INT(horizon, s4 + 1);
    CX_CHECK_OK(cx_storage_horizon(st, "U", &horizon));
    CX_CHECK_INT(horizon, 0);
    CX_CHECK_OK(cx_storage_commit(st));
    CX_CHECK_OK(cx_storage_begin(st, false));
    CX_CHECK_INT(cx_storage_item_get(st, "T", "01J00000000000000000000002", &json, &seq, &deleted),
                 CX_ENOTFOUND);
    feed after = {0};
    CX_CHECK_OK(cx_storage_changes(st, "T", 0, 10, on_change, &after));
    CX_CHECK(after.n == 1 && !after.tomb[0]); /* the live item stays */
    cx_storage_rollback(st);
}

static void test_ops(cx_storage *st) {
    uint8_t d[32], got[32];
    memset(d, 0xab, sizeof d);
    int64_t seq = 0;
    CX_CHECK_OK(cx_storage_begin(st, true));
    CX_CHECK_INT(cx_storage_op_get(st, "T", "op-1", got, &seq), CX_ENOTFOUND);
    CX_CHECK_OK(cx_storage_op_put(st, "T", "op-1", d, 7));
    CX_CHECK(cx_storage_op_put(st, "T", "op-1", d, 8) != 0); /* an op id is recorded once */
    CX_CHECK_OK(cx_storage_op_get(st, "T", "op-1", got, &seq));
    CX_CHECK(memcmp(got, d, 32) == 0);
    CX_CHECK_INT(seq, 7);
    CX_CHECK_INT(cx_storage_op_get(st, "U", "op-1", got, &seq), CX_ENOTFOUND);
    CX_CHECK_OK(cx_storage_op_put(st, "U", "op-1", d, 1)); /* op ids are per team */
    CX_CHECK_OK(cx_storage_commit(st));
}

static void test_keys(cx_storage *st) {
    cx_storage_key k = {.key_id = "0123456789abcdef", .team = "T", .role = "agent",
                        .name = "ann", .created_ms = 1000};
    memset(k.hash, 0x11, sizeof k.hash);
    cx_storage_key got;
    CX_CHECK_OK(cx_storage_begin(st, true));
    CX_CHECK_OK(cx_storage_key_put(st, &k));
    CX_CHECK(cx_storage_key_put(st, &k) != 0); /* key ids are unique */
    CX_CHECK_OK(cx_storage_key_get(st, k.key_id, &got));
    CX_CHECK_STR(got.team, "T");
    CX_CHECK_STR(got.role, "agent");
    CX_CHECK_STR(got.name, "ann");
    CX_CHECK(memcmp(got.hash, k.hash, sizeof k.hash) == 0);
    CX_CHECK_INT(got.revoked_ms, 0);
    CX_CHECK_INT(cx_storage_key_get(st, "ffffffffffffffff", &got), CX_ENOTFOUND);
    int n = 0;
    CX_CHECK_OK(cx_storage_key_list(st, count_keys, &n));
    CX_CHECK_INT(n, 1);
    CX_CHECK_OK(cx_storage_key_revoke(st, k.key_id, 5000));
    CX_CHECK_INT(cx_storage_key_revoke(st, k.key_id, 6000), CX_ECONFLICT);
    CX_CHECK_INT(cx_storage_key_revoke(st, "ffffffffffffffff", 6000), CX_ENOTFOUND);
    CX_CHECK_OK(cx_storage_key_get(st, k.key_id, &got));
    CX_CHECK_INT(got.revoked_ms, 5000);
    CX_CHECK_OK(cx_storage_commit(st));
}

static void test_blobs(cx_storage *st) {
    const char *sha = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    bool created = false, has = false, gone = true;
    void *data = NULL;
    size_t len = 0;
    CX_CHECK_OK(cx_storage_begin(st, true));
    CX_CHECK_OK(cx_storage_blob_put(st, "T", sha, "hello", 5, &created));
    CX_CHECK(created);
    CX_CHECK_OK(cx_storage_blob_put(st, "T", sha, "hello", 5, &created));
    CX_CHECK(!created);
    CX_CHECK_OK(cx_storage_blob_has(st, "T", sha, &has));
    CX_CHECK(has);
    CX_CHECK_OK(cx_storage_blob_has(st, "U", sha, &has));
    CX_CHECK(!has);
    CX_CHECK_OK(cx_storage_blob_get(st, "T", sha, &data, &len));
    CX_CHECK(len == 5 && data && memcmp(data, "hello", 5) == 0);
    free(data);
    data = NULL;
    CX_CHECK_INT(cx_storage_blob_get(st, "U", sha, &data, &len), CX_ENOTFOUND);
    /* a blob a live item names stays; an unnamed one goes */
    int64_t seq = 0;
    char json[160];
    snprintf(json, sizeof json, "{\"versions\":[{\"sha256\":\"%s\"}]}", sha);
    CX_CHECK_OK(cx_storage_seq_next(st, "T", &seq));
    CX_CHECK_OK(cx_storage_item_put(st, "T", "01J000000000000000000ART01", "artifact",
                                    "published", seq, false, json));
    CX_CHECK_OK(cx_storage_blob_drop_unused(st, "T", sha, &gone));
    CX_CHECK(!gone);
    CX_CHECK_OK(cx_storage_seq_next(st, "T", &seq));
    CX_CHECK_OK(cx_storage_item_put(st, "T", "01J000000000000000000ART01", "artifact",
                                    "published", seq, true, NULL));
    CX_CHECK_OK(cx_storage_blob_drop_unused(st, "T", sha, &gone));
    CX_CHECK(gone);
    CX_CHECK_OK(cx_storage_blob_has(st, "T", sha, &has));
    CX_CHECK(!has);
    CX_CHECK_OK(cx_storage_commit(st));
}

static void test_queue(cx_storage *st) {
    put(st, "Q", "01J0000000000000000000000A", "draft", "pending", false);
    put(st, "Q", "01J0000000000000000000000B", "draft", "changes_requested", false);
    put(st, "Q", "01J0000000000000000000000C", "draft", "rejected", false);
    put(st, "Q", "01J0000000000000000000000D", "thread", "canon", false);
    put(st, "Q", "01J0000000000000000000000E", "draft", "pending", true);
    put(st, "R", "01J0000000000000000000000A", "draft", "pending", false);
    int n = 0;
    int64_t total = 0, depth = 0;
    CX_CHECK_OK(cx_storage_begin(st, false));
    CX_CHECK_OK(cx_storage_queue(st, "Q", 10, count_cb, &n, &total));
    CX_CHECK_INT(n, 2);
    CX_CHECK_INT(total, 2);
    n = 0;
    CX_CHECK_OK(cx_storage_queue(st, "Q", 1, count_cb, &n, &total));
    CX_CHECK(n == 1 && total == 2); /* the total is not cut by the page */
    CX_CHECK_OK(cx_storage_queue_depth(st, &depth));
    CX_CHECK_INT(depth, 3); /* every team: Q two, R one */
    cx_storage_rollback(st);
}

static void test_audit(cx_storage *st) {
    int64_t n = -1;
    char hash[65];
    const char *h1 = "1111111111111111111111111111111111111111111111111111111111111111";
    CX_CHECK_OK(cx_storage_begin(st, true));
    CX_CHECK_OK(cx_storage_audit_last(st, &n, hash));
    CX_CHECK_INT(n, 0);
    CX_CHECK(hash[0] == '\0');
    cx_storage_audit a = {.n = 1, .ts_ms = 1, .team = "T", .actor = "rev", .action = "key.create",
                          .detail = "{}", .prev = "", .hash = h1};
    CX_CHECK_OK(cx_storage_audit_put(st, &a));
    a.n = 2;
    a.action = "review.decision";
    a.prev = h1;
    CX_CHECK_OK(cx_storage_audit_put(st, &a));
    CX_CHECK(cx_storage_audit_put(st, &a) != 0); /* n is unique: the chain cannot fork */
    CX_CHECK_OK(cx_storage_audit_last(st, &n, hash));
    CX_CHECK_INT(n, 2);
    CX_CHECK_STR(hash, h1);
    audit_seen seen = {0};
    CX_CHECK_OK(cx_storage_audit_each(st, on_audit, &seen));
    CX_CHECK_INT(seen.n, 2);
    CX_CHECK_STR(seen.last_action, "review.decision");
    CX_CHECK_OK(cx_storage_commit(st));
}

static void test_rollback(cx_storage *st) {
    int64_t seq = 0;
    char *json = NULL;
    bool deleted = false;
    CX_CHECK_OK(cx_storage_begin(st, true));
    CX_CHECK_OK(cx_storage_seq_next(st, "W", &seq));
    CX_CHECK_OK(cx_storage_item_put(st, "W", "01J0000000000000000000000W", "observation",
                                    "recorded", seq, false, "{}"));
    cx_storage_rollback(st);
    CX_CHECK_OK(cx_storage_begin(st, false));
    CX_CHECK_INT(cx_storage_item_get(st, "W", "01J0000000000000000000000W", &json, &seq, &deleted),
                 CX_ENOTFOUND);
    cx_storage_rollback(st);
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
    CX_CHECK_INT(cx_storage_open(&st, path, 0), CX_ENOTFOUND); /* init comes first */
    CX_CHECK(st == NULL);
    CX_CHECK_OK(cx_storage_open(&st, path, CX_STORAGE_CREATE));
    if (st) {
        test_seq(st);
        test_items(st);
        test_ops(st);
        test_keys(st);
        test_blobs(st);
        test_queue(st);
        test_audit(st);
        test_rollback(st);
        CX_CHECK_OK(cx_storage_backup(st, copy));
        CX_CHECK_INT(cx_storage_backup(st, copy), CX_ECONFLICT);
        cx_storage_free(st);
        st = NULL;
    }

    /* reopening (without CX_STORAGE_CREATE) keeps everything */
    CX_CHECK_OK(cx_storage_open(&st, path, 0));
    if (st) {
        char *json = NULL;
        int64_t seq = 0, last = 0;
        bool deleted = true;
        CX_CHECK_OK(cx_storage_begin(st, true));
        CX_CHECK_OK(cx_storage_item_get(st, "T", "01J00000000000000000000001", &json, &seq,
                                        &deleted));
        CX_CHECK(json && !deleted);
        free(json);
        CX_CHECK_OK(cx_storage_seq_last(st, "T", &last));
        CX_CHECK_OK(cx_storage_seq_next(st, "T", &seq));
        CX_CHECK_INT(seq, last + 1); /* the seq goes on where it was */
        cx_storage_key got;
        CX_CHECK_OK(cx_storage_key_get(st, "0123456789abcdef", &got));
        CX_CHECK_OK(cx_storage_commit(st));
        cx_storage_free(st);
        st = NULL;
    }

    /* the backup is a whole database of its own, readable read-only */
    CX_CHECK_OK(cx_storage_open(&st, copy, CX_STORAGE_READONLY));
    if (st) {
        int64_t last = 0;
        CX_CHECK_OK(cx_storage_begin(st, false));
        CX_CHECK_OK(cx_storage_seq_last(st, "T", &last));
        CX_CHECK(last > 0);
        audit_seen seen = {0};
        CX_CHECK_OK(cx_storage_audit_each(st, on_audit, &seen));
        CX_CHECK_INT(seen.n, 2);
        cx_storage_rollback(st);
        /* read-only: a write fails */
        int64_t seq = 0;
        int r = cx_storage_begin(st, true);
        if (r == 0) {
            CX_CHECK(cx_storage_seq_next(st, "T", &seq) != 0);
            cx_storage_rollback(st);
        }
        cx_storage_free(st);
    }
    cx_storage_free(NULL); /* accepts NULL */
    cx_test_rmrf(dir);
    free(dir);
    return cx_test_done();
}
