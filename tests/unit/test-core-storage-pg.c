/* SPDX-License-Identifier: Apache-2.0 */
/* What only the PostgreSQL backend (src/core/storage-pg.c) has, tested on
 * a real PostgreSQL that tests/core/with-pg.py starts (CORTEX_TEST_PG_URI
 * and CORTEX_TEST_PG_URI_2 name two empty databases; PGPASSFILE holds the
 * password): a URI with a password refused without echoing it, an empty
 * database refused without CX_STORAGE_CREATE, the migration run by several
 * handles at once (several nodes starting together), two handles over one
 * database as two nodes (writers on both, an incremental reader: every
 * change seen once, in commit order; one audit chain, no fork), the pool
 * bound (a transaction waits for a free connection), a blob larger than a
 * read slice, health, backup pointing at pg_dump, prefetch (answers from
 * what it read, this transaction's own writes seen after it), a push's item
 * and op writes held and sent as one statement each (new items, an update,
 * an item written twice, a tombstone: the same rows and seqs as one by
 * one, seen by reads in the transaction; an op id another writer records
 * first is CX_ERETRY at commit), read transactions ended without waiting
 * for the ROLLBACK (the next on the connection sees the latest commit; a
 * failed read ends the old way), and a pool whose
 * connections the server cut (a restart, a failover): the next transaction
 * is run again on a new connection. Without PostgreSQL
 * it says so and passes (the backend-neutral cases run on SQLite in
 * test-core-storage). */
#include "core/storage.h"

#include "test.h"
#include "util/error.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WRITERS 4
#define WRITES 40 /* per writer */
#define OPENERS 4

static const char *uri1, *uri2;

/* --- the migration, run by several handles at once ------------------------ */

typedef struct opener {
    pthread_t t;
    int r;
    cx_storage *st;
} opener;

static void *open_one(void *ud) {
    opener *o = ud;
    o->r = cx_storage_open(&o->st, uri2, CX_STORAGE_CREATE);
    return NULL;
}

static void test_open(void) {
    cx_storage *st = NULL;
    /* a password in the URI: refused, and never in the message */
    char bad[1024];
    const char *at = strstr(uri1, "://");
    CX_CHECK(at != NULL);
    snprintf(bad, sizeof bad, "postgresql://cortex:hunter2@%s", strchr(at + 3, '@') + 1);
    CX_CHECK_INT(cx_storage_open(&st, bad, CX_STORAGE_CREATE), CX_EINVAL);
    CX_CHECK(strstr(cx_error_last(), "hunter2") == NULL);
    CX_CHECK(strstr(cx_error_last(), "PGPASSFILE") != NULL);
    CX_CHECK(st == NULL);
    /* an empty database is not a core until init */
    CX_CHECK_INT(cx_storage_open(&st, uri2, 0), CX_ENOTFOUND);
    CX_CHECK(st == NULL);
    CX_CHECK_INT(cx_storage_open(&st, uri2, CX_STORAGE_READONLY), CX_ENOTFOUND);
    /* several nodes starting at once: the migration runs once, all open */
    opener o[OPENERS];
    memset(o, 0, sizeof o);
    for (int i = 0; i < OPENERS; i++)
        CX_CHECK_INT(pthread_create(&o[i].t, NULL, open_one, &o[i]), 0);
    for (int i = 0; i < OPENERS; i++) {
        pthread_join(o[i].t, NULL);
        CX_CHECK_OK(o[i].r);
        cx_storage_free(o[i].st);
    }
    CX_CHECK_OK(cx_storage_open(&st, uri2, 0)); /* now without CREATE */
    cx_storage_free(st);
    st = NULL;
    CX_CHECK_OK(cx_storage_open(&st, uri2, CX_STORAGE_READONLY));
    cx_storage_free(st);
}

/* --- two nodes: writers on both, one incremental reader --------------------- */

typedef struct node_writer {
    pthread_t t;
    cx_storage *st;
    int w;
    int failures;
    atomic_int *done;
} node_writer;

typedef struct put_one {
    int w, i;
    int64_t seq;
} put_one;

static int put_fn(cx_storage_tx *tx, void *ud) {
    put_one *p = ud;
    char id[32], op[32], json[128];
    uint8_t digest[32];
    memset(digest, p->w, sizeof digest);
    snprintf(id, sizeof id, "01J%02d%021d", p->w, p->i);
    snprintf(op, sizeof op, "op-%d-%d", p->w, p->i);
    snprintf(json, sizeof json, "{\"id\":\"%s\",\"w\":%d,\"i\":%d}", id, p->w, p->i);
    int r = cx_storage_seq_next(tx, "N", &p->seq);
    if (r == 0)
        r = cx_storage_item_put(tx, "N", id, "observation", "recorded", p->seq, false, json);
    if (r == 0)
        r = cx_storage_op_put(tx, "N", op, digest, p->seq);
    /* every fourth write also appends to the audit chain */
    if (r == 0 && p->i % 4 == 0) {
        int64_t n = 0;
        char prev[65], hash[65];
        if ((r = cx_storage_audit_last(tx, &n, prev)) == 0) {
            snprintf(hash, sizeof hash, "%064lld", (long long)(n + 1));
            cx_storage_audit a = {.n = n + 1, .ts_ms = 1, .team = "N", .actor = "w",
                                  .action = "test", .detail = op, .prev = prev, .hash = hash};
            r = cx_storage_audit_put(tx, &a);
        }
    }
    return r;
}

static void *write_many(void *ud) {
    node_writer *w = ud;
    for (int i = 0; i < WRITES; i++) {
        put_one p = {.w = w->w, .i = i};
        if (cx_storage_run(w->st, true, put_fn, &p) != 0)
            w->failures++;
    }
    atomic_fetch_add(w->done, 1);
    return NULL;
}

typedef struct seen {
    int64_t last;
    int n, out_of_order;
    int per_writer[WRITERS];
    int next_i[WRITERS];
    int skipped;
} seen;

static int on_change(void *ud, int64_t seq, const char *id, const char *json) {
    seen *s = ud;
    (void)id;
    if (seq <= s->last)
        s->out_of_order++;
    s->last = seq;
    s->n++;
    int w = -1, i = -1;
    if (json && sscanf(strstr(json, "\"w\":") ? strstr(json, "\"w\":") : "", "\"w\":%d,\"i\":%d",
                       &w, &i) == 2 &&
        w >= 0 && w < WRITERS) {
        /* one writer's items come in its order: none skipped by the cursor */
        if (i != s->next_i[w])
            s->skipped++;
        s->next_i[w] = i + 1;
        s->per_writer[w]++;
    }
    return 0;
}

typedef struct pull_state {
    cx_storage *st;
    seen *s;
} pull_state;

static int pull_fn(cx_storage_tx *tx, void *ud) {
    pull_state *p = ud;
    return cx_storage_changes(tx, "N", p->s->last, 50, on_change, p->s);
}

typedef struct chain {
    int64_t n;
    char prev[65];
    int broken;
} chain;

static int on_audit(void *ud, const cx_storage_audit *a) {
    chain *c = ud;
    if (a->n != c->n + 1 || strcmp(a->prev, c->prev) != 0)
        c->broken++;
    c->n = a->n;
    snprintf(c->prev, sizeof c->prev, "%s", a->hash);
    return 0;
}

static int audit_fn(cx_storage_tx *tx, void *ud) {
    chain *c = ud;
    memset(c, 0, sizeof *c);
    return cx_storage_audit_each(tx, on_audit, c);
}

static void test_two_nodes(void) {
    cx_storage *a = NULL, *b = NULL;
    CX_CHECK_OK(cx_storage_open(&a, uri1, CX_STORAGE_CREATE));
    CX_CHECK_OK(cx_storage_open(&b, uri1, 0));
    if (!a || !b) {
        cx_storage_free(a);
        cx_storage_free(b);
        return;
    }
    atomic_int done = 0;
    node_writer w[WRITERS];
    memset(w, 0, sizeof w);
    for (int i = 0; i < WRITERS; i++) {
        w[i] = (node_writer){.st = i % 2 ? b : a, .w = i, .done = &done};
        CX_CHECK_INT(pthread_create(&w[i].t, NULL, write_many, &w[i]), 0);
    }
    /* Pull while they write, alternating nodes, until all are done and the
     * feed is drained; bounded by a count of rounds. */
    seen s = {0};
    for (int round = 0; round < 200000; round++) {
        bool finished = atomic_load(&done) == WRITERS;
        int before = s.n;
        pull_state p = {.st = round % 2 ? b : a, .s = &s};
        CX_CHECK_OK(cx_storage_run(p.st, false, pull_fn, &p));
        if (finished && s.n == before)
            break;
        if (s.n == before)
            usleep(1000);
    }
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(w[i].t, NULL);
        CX_CHECK_INT(w[i].failures, 0);
    }
    CX_CHECK_INT(s.n, WRITERS * WRITES);
    CX_CHECK_INT(s.out_of_order, 0);
    CX_CHECK_INT(s.skipped, 0);
    for (int i = 0; i < WRITERS; i++)
        CX_CHECK_INT(s.per_writer[i], WRITES);
    CX_CHECK_INT(s.last, WRITERS * WRITES); /* no seq lost to a rollback */
    /* one audit chain, no fork, whichever node appended */
    chain c;
    CX_CHECK_OK(cx_storage_run(b, false, audit_fn, &c));
    CX_CHECK_INT(c.broken, 0);
    CX_CHECK_INT(c.n, WRITERS * (WRITES / 4));
    cx_storage_free(a);
    cx_storage_free(b);
}

/* --- the pool: a transaction waits for a free connection ------------------------ */

typedef struct waiter {
    pthread_t t;
    cx_storage *st;
    int r;
    atomic_int started, finished;
} waiter;

static void *begin_wait(void *ud) {
    waiter *w = ud;
    cx_storage_tx *tx = NULL;
    atomic_store(&w->started, 1);
    w->r = cx_storage_begin(w->st, false, &tx);
    if (w->r == 0)
        cx_storage_rollback(tx);
    atomic_store(&w->finished, 1);
    return NULL;
}

static void test_pool(void) {
    cx_storage *st = NULL;
    CX_CHECK_OK(cx_storage_open(&st, uri1, 0));
    if (!st)
        return;
    CX_CHECK_OK(cx_storage_set_pool(st, 1));
    cx_storage_stats stats;
    cx_storage_stats_get(st, &stats);
    CX_CHECK_STR(stats.backend, "postgresql");
    CX_CHECK_INT(stats.pool_size, 1);
    cx_storage_tx *tx = NULL;
    CX_CHECK_OK(cx_storage_begin(st, true, &tx));
    waiter w = {.st = st};
    CX_CHECK_INT(pthread_create(&w.t, NULL, begin_wait, &w), 0);
    for (int i = 0; i < 5000 && !atomic_load(&w.started); i++)
        usleep(1000);
    usleep(100000); /* it is waiting for the one connection now */
    CX_CHECK_INT(atomic_load(&w.finished), 0);
    int64_t seq = 0;
    CX_CHECK_OK(cx_storage_seq_next(tx, "P", &seq));
    CX_CHECK_OK(cx_storage_commit(tx));
    pthread_join(w.t, NULL);
    CX_CHECK_OK(w.r); /* it got the connection once it was given back */
    CX_CHECK_INT(cx_storage_set_pool(st, 0), CX_EINVAL);
    cx_storage_free(st);
}

/* --- a blob larger than a read slice; health; backup ----------------------------- */

static int blob_fn(cx_storage_tx *tx, void *ud) {
    size_t n = 2621440 + 7; /* 2.5 MiB and a bit: three slices */
    uint8_t *buf = malloc(n);
    if (!buf)
        return CX_ENOMEM;
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)(i * 2654435761u >> 13);
    const char *sha = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    bool created = false;
    void *back = NULL;
    size_t len = 0;
    int r = cx_storage_blob_put(tx, "T", sha, buf, n, &created);
    if (r == 0)
        r = cx_storage_blob_get(tx, "T", sha, &back, &len);
    if (r == 0) {
        *(bool *)ud = created && len == n && memcmp(back, buf, n) == 0;
        free(back);
    }
    free(buf);
    return r;
}

static void test_blob_health_backup(void) {
    cx_storage *st = NULL;
    CX_CHECK_OK(cx_storage_open(&st, uri1, 0));
    if (!st)
        return;
    bool same = false;
    CX_CHECK_OK(cx_storage_run(st, true, blob_fn, &same));
    CX_CHECK(same);
    cx_storage_health_info h;
    CX_CHECK_OK(cx_storage_health(st, &h));
    CX_CHECK(h.ok);
    CX_CHECK(strncmp(h.detail, "postgresql ", 11) == 0);
    CX_CHECK(h.latency_us >= 0);
    CX_CHECK_INT(cx_storage_backup(st, "/nonexistent/backup.db"), CX_EINVAL);
    CX_CHECK(strstr(cx_error_last(), "pg_dump") != NULL);
    cx_storage_free(st);
}

/* --- blobs in chunks; a blob of schema version 1 still reads; drops cascade ----- */

static const char SHA_B[] = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
static const char SHA_C[] = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

/* The first column of the first row of sql, as a number (-1 on error). */
static long long sql_num(const char *sql) {
    PGconn *c = PQconnectdb(uri1);
    long long v = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *res = PQexec(c, sql);
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
            v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        else if (PQresultStatus(res) == PGRES_COMMAND_OK)
            v = strtoll(PQcmdTuples(res), NULL, 10);
        PQclear(res);
    }
    PQfinish(c);
    return v;
}

static int old_blob_fn(cx_storage_tx *tx, void *ud) {
    void *back = NULL;
    size_t len = 0;
    int r = cx_storage_blob_get(tx, "T", SHA_C, &back, &len);
    if (r == 0) {
        *(bool *)ud = len == 5 && memcmp(back, "hello", 5) == 0;
        free(back);
    }
    return r;
}

static int drop_fn(cx_storage_tx *tx, void *ud) {
    return cx_storage_blob_drop_unused(tx, "T", SHA_B, ud);
}

static void test_blob_chunks(void) {
    cx_storage *st = NULL;
    CX_CHECK_OK(cx_storage_open(&st, uri1, 0));
    if (!st)
        return;
    /* the 2.5 MiB blob test_blob_health_backup stored: three chunks, no bytes in blobs */
    CX_CHECK(sql_num("SELECT count(*) FROM blob_chunks WHERE team = 'T' AND sha256 = '"
                     "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'") == 3);
    CX_CHECK(sql_num("SELECT count(*) FROM blobs WHERE team = 'T' AND data IS NULL AND "
                     "sha256 = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'") ==
             1);
    /* a row as schema version 1 wrote it, its bytes in blobs.data */
    CX_CHECK(sql_num("INSERT INTO blobs(team, sha256, size, data) VALUES ('T', "
                     "'cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc', 5, "
                     "'hello'::bytea)") == 1);
    bool same = false;
    CX_CHECK_OK(cx_storage_run(st, false, old_blob_fn, &same));
    CX_CHECK(same);
    bool deleted = false;
    CX_CHECK_OK(cx_storage_run(st, true, drop_fn, &deleted));
    CX_CHECK(deleted);
    CX_CHECK(sql_num("SELECT count(*) FROM blob_chunks WHERE sha256 = '"
                     "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'") == 0);
    cx_storage_free(st);
}

/* --- prefetch: answers from what it read, and this transaction's writes --------- */

static int prefetch_fn(cx_storage_tx *tx, void *ud) {
    int *checks = ud;
    uint8_t d[32], got[32];
    memset(d, 7, sizeof d);
    int64_t seq = 0, s2 = 0;
    char *json = NULL;
    bool deleted = false;
    int r = cx_storage_seq_next(tx, "F", &seq);
    if (r == 0)
        r = cx_storage_item_put(tx, "F", "01JF0000000000000000000001", "observation", "recorded",
                                seq, false, "{\"v\":1}");
    if (r == 0)
        r = cx_storage_op_put(tx, "F", "f-1", d, seq);
    if (r)
        return r;
    /* what the loop of a push reads; "f-\"2\\" tests the array's quoting */
    const char *ops[] = {"f-1", "f-\"2\\", NULL, "f-1"};
    const char *items[] = {"01JF0000000000000000000001", "01JF0000000000000000000002", NULL,
                           "01JF0000000000000000000001"};
    if ((r = cx_storage_prefetch(tx, "F", ops, items, 4)))
        return r;
    *checks = 0;
    if (cx_storage_op_get(tx, "F", "f-1", got, &s2) == 0 && s2 == seq && !memcmp(got, d, 32))
        ++*checks;
    if (cx_storage_op_get(tx, "F", "f-\"2\\", got, &s2) == CX_ENOTFOUND)
        ++*checks;
    if (cx_storage_op_get(tx, "G", "f-1", got, &s2) == CX_ENOTFOUND) /* another team */
        ++*checks;
    if (cx_storage_item_get(tx, "F", items[0], &json, &s2, &deleted) == 0 && s2 == seq &&
        json && strcmp(json, "{\"v\":1}") == 0)
        ++*checks;
    free(json);
    json = NULL;
    if (cx_storage_item_get(tx, "F", items[1], &json, &s2, &deleted) == CX_ENOTFOUND)
        ++*checks;
    /* this transaction's own writes after the prefetch are seen */
    if ((r = cx_storage_seq_next(tx, "F", &s2)) ||
        (r = cx_storage_op_put(tx, "F", "f-\"2\\", d, s2)) ||
        (r = cx_storage_item_put(tx, "F", items[1], "observation", "recorded", s2, false, "{}")) ||
        (r = cx_storage_item_put(tx, "F", items[0], "observation", "recorded", s2 + 1, true,
                                 NULL)))
        return r;
    if (cx_storage_op_get(tx, "F", "f-\"2\\", got, &seq) == 0 && seq == s2)
        ++*checks;
    if (cx_storage_item_get(tx, "F", items[1], &json, &seq, &deleted) == 0 && seq == s2)
        ++*checks;
    free(json);
    json = NULL;
    if (cx_storage_item_get(tx, "F", items[0], &json, &seq, &deleted) == 0 && deleted)
        ++*checks;
    free(json);
    /* a second op_put of the same id still fails */
    if (cx_storage_op_put(tx, "F", "f-\"2\\", d, s2) != 0)
        ++*checks;
    return CX_ECANCELED; /* roll back: nothing of it stays */
}

static void test_prefetch(void) {
    cx_storage *st = NULL;
    CX_CHECK_OK(cx_storage_open(&st, uri1, 0));
    if (!st)
        return;
    int checks = 0;
    CX_CHECK_INT(cx_storage_run(st, true, prefetch_fn, &checks), CX_ECANCELED);
    CX_CHECK_INT(checks, 9);
    cx_storage_free(st);
}

/* --- writes held and sent as one statement -------------------------------------- */

typedef struct wseen {
    int n;
    int64_t seq[16];
    char id[16][16];
    char json[16][64]; /* "" for a tombstone */
} wseen;

static int wseen_fn(void *ud, int64_t seq, const char *id, const char *json) {
    wseen *sn = ud;
    if (sn->n == 16)
        return CX_ELIMIT;
    sn->seq[sn->n] = seq;
    snprintf(sn->id[sn->n], sizeof sn->id[0], "%s", id);
    snprintf(sn->json[sn->n], sizeof sn->json[0], "%s", json ? json : "");
    sn->n++;
    return 0;
}

static int put(cx_storage_tx *tx, const char *id, bool deleted, const char *json, int64_t *seq) {
    int r = cx_storage_seq_next(tx, "W", seq);
    return r ? r : cx_storage_item_put(tx, "W", id, "note", "active", *seq, deleted, json);
}

/* A push's worth: new items, an update, one item written twice, a
 * tombstone, op records; reads in the transaction see all of it. */
static int batch_fn(cx_storage_tx *tx, void *ud) {
    int64_t *seqs = ud, s = 0;
    const char *ops[3] = {"op-1", "op-2", "op-1"}, *items[3] = {"w1", "w3", "w4"};
    int r = cx_storage_prefetch(tx, "W", ops, items, 3);
    uint8_t d[32], got[32];
    memset(d, 7, sizeof d);
    for (int i = 0; r == 0 && i < 2; i++) {
        r = cx_storage_op_get(tx, "W", ops[i], got, &s);
        if (r != CX_ENOTFOUND)
            return r ? r : CX_EIO;
        r = 0;
    }
    if (r == 0 && (r = put(tx, "w1", false, "{\"v\":2}", &seqs[0])) == 0 &&
        (r = put(tx, "w3", false, "{\"v\":1}", &seqs[1])) == 0 &&
        (r = put(tx, "w3", false, "{\"v\":3}", &seqs[2])) == 0 &&
        (r = put(tx, "w4", true, NULL, &seqs[3])) == 0 &&
        (r = cx_storage_op_put(tx, "W", "op-1", d, seqs[0])) == 0)
        r = cx_storage_op_put(tx, "W", "op-2", d, seqs[2]);
    if (r)
        return r;
    /* read back in the same transaction: the held writes went first */
    char *json = NULL;
    bool deleted = true;
    CX_CHECK_OK(cx_storage_item_get(tx, "W", "w3", &json, &s, &deleted));
    CX_CHECK(json && strcmp(json, "{\"v\":3}") == 0 && s == seqs[2] && !deleted);
    free(json);
    CX_CHECK_OK(cx_storage_op_get(tx, "W", "op-1", got, &s));
    CX_CHECK(s == seqs[0] && memcmp(got, d, 32) == 0);
    return 0;
}

static int first_fn(cx_storage_tx *tx, void *ud) {
    int64_t *seq = ud;
    int r = put(tx, "w1", false, "{\"v\":1}", seq);
    return r ? r : put(tx, "w2", false, "{\"v\":1}", seq + 1);
}

static int race_fn(cx_storage_tx *tx, void *ud) {
    uint8_t d[32];
    int64_t s = 0;
    memset(d, 9, sizeof d);
    int r = cx_storage_op_get(tx, "W", "op-race", d, &s);
    if (r != CX_ENOTFOUND)
        return r ? r : CX_EIO;
    if ((r = put(tx, "w5", false, "{\"v\":5}", &s)) ||
        (r = cx_storage_op_put(tx, "W", "op-race", d, s)))
        return r;
    /* another writer that took no team lock records the same op id first */
    PGconn *c = PQconnectdb(uri1);
    CX_CHECK(PQstatus(c) == CONNECTION_OK);
    PGresult *res = PQexec(c, "INSERT INTO ops(team, op_id, digest, seq) VALUES"
                              " ('W', 'op-race', decode(repeat('09', 32), 'hex'), 1)");
    CX_CHECK(PQresultStatus(res) == PGRES_COMMAND_OK);
    PQclear(res);
    PQfinish(c);
    return 0;
}

static void test_batched_writes(void) {
    cx_storage *st = NULL;
    CX_CHECK_OK(cx_storage_open(&st, uri1, 0));
    if (!st)
        return;
    int64_t first[2] = {0}, seqs[4] = {0};
    CX_CHECK_OK(cx_storage_run(st, true, first_fn, first));
    CX_CHECK_OK(cx_storage_run(st, true, batch_fn, seqs));
    CX_CHECK(seqs[0] == first[1] + 1 && seqs[1] == seqs[0] + 1 && seqs[2] == seqs[1] + 1 &&
             seqs[3] == seqs[2] + 1);
    /* as a reader sees it: one row per item, each with its last seq */
    cx_storage_tx *tx = NULL;
    wseen sn = {0};
    CX_CHECK_OK(cx_storage_begin(st, false, &tx));
    CX_CHECK_OK(cx_storage_changes(tx, "W", 0, 16, wseen_fn, &sn));
    CX_CHECK_INT(sn.n, 4);
    CX_CHECK(sn.n == 4 && !strcmp(sn.id[0], "w2") && sn.seq[0] == first[1] &&
             !strcmp(sn.id[1], "w1") && sn.seq[1] == seqs[0] && !strcmp(sn.json[1], "{\"v\":2}") &&
             !strcmp(sn.id[2], "w3") && sn.seq[2] == seqs[2] && !strcmp(sn.json[2], "{\"v\":3}") &&
             !strcmp(sn.id[3], "w4") && sn.seq[3] == seqs[3] && sn.json[3][0] == '\0');
    uint8_t d[32];
    int64_t s = 0;
    CX_CHECK_OK(cx_storage_op_get(tx, "W", "op-2", d, &s));
    CX_CHECK_INT(s, seqs[2]);
    CX_CHECK_OK(cx_storage_seq_last(tx, "W", &s));
    CX_CHECK_INT(s, seqs[3]);
    cx_storage_rollback(tx);
    /* a unique race inside a held batch: CX_ERETRY at commit, nothing kept */
    CX_CHECK_OK(cx_storage_begin(st, true, &tx));
    CX_CHECK_OK(race_fn(tx, NULL));
    CX_CHECK_INT(cx_storage_commit(tx), CX_ERETRY);
    char *json = NULL;
    bool deleted = false;
    CX_CHECK_OK(cx_storage_begin(st, false, &tx));
    CX_CHECK_INT(cx_storage_item_get(tx, "W", "w5", &json, &s, &deleted), CX_ENOTFOUND);
    CX_CHECK_OK(cx_storage_seq_last(tx, "W", &s));
    CX_CHECK_INT(s, seqs[3]);
    cx_storage_rollback(tx);
    free(json);
    cx_storage_free(st);
}

/* --- connections the server cut ------------------------------------------------ */

static int last_fn(cx_storage_tx *tx, void *ud) { return cx_storage_seq_last(tx, "R", ud); }

static int next_fn(cx_storage_tx *tx, void *ud) { return cx_storage_seq_next(tx, "R", ud); }

/* Ends every session of cortex-core's but this one's, as a server restart
 * would (a role may end its own sessions). */
static void cut_connections(int at_least) {
    PGconn *c = PQconnectdb(uri1);
    CX_CHECK(PQstatus(c) == CONNECTION_OK);
    PGresult *res = PQexec(c, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                              " WHERE application_name = 'cortex-core'"
                              " AND pid <> pg_backend_pid()");
    CX_CHECK(PQresultStatus(res) == PGRES_TUPLES_OK);
    CX_CHECK(PQntuples(res) == 1 && strtol(PQgetvalue(res, 0, 0), NULL, 10) >= at_least);
    PQclear(res);
    PQfinish(c);
    usleep(200000); /* the backends go */
}

static void test_reconnect(void) {
    cx_storage *st = NULL;
    CX_CHECK_OK(cx_storage_open(&st, uri1, 0));
    if (!st)
        return;
    CX_CHECK_OK(cx_storage_set_pool(st, 4));
    /* two connections in the pool */
    cx_storage_tx *t1 = NULL, *t2 = NULL;
    CX_CHECK_OK(cx_storage_begin(st, false, &t1));
    CX_CHECK_OK(cx_storage_begin(st, false, &t2));
    int64_t seq = 0;
    CX_CHECK_OK(cx_storage_seq_last(t1, "R", &seq));
    CX_CHECK_OK(cx_storage_seq_last(t2, "R", &seq));
    cx_storage_rollback(t1);
    cx_storage_rollback(t2);
    cut_connections(2);
    /* the first statement on a dead connection: run it again (nothing
     * was done), and the pool has dropped the other dead one */
    CX_CHECK_OK(cx_storage_begin(st, false, &t1));
    CX_CHECK_INT(cx_storage_seq_last(t1, "R", &seq), CX_ERETRY);
    cx_storage_rollback(t1);
    CX_CHECK_OK(cx_storage_run(st, false, last_fn, &seq));
    /* and through cx_storage_run at once, for a write */
    cut_connections(1);
    int64_t before = seq;
    CX_CHECK_OK(cx_storage_run(st, true, next_fn, &seq));
    CX_CHECK_INT(seq, before + 1);
    cx_storage_stats stats;
    cx_storage_stats_get(st, &stats);
    CX_CHECK(stats.tx_retries >= 1);
    cx_storage_free(st);
}

/* --- read transactions that end without waiting ---------------------------------- */

static void test_read_end(void) {
    cx_storage *st = NULL;
    CX_CHECK_OK(cx_storage_open(&st, uri1, 0));
    if (!st)
        return;
    CX_CHECK_OK(cx_storage_set_pool(st, 1)); /* every transaction on one connection */
    int64_t seq = 0, last = 0;
    for (int i = 0; i < 20; i++) {
        /* a write, then reads ended by rollback and by commit, then a
         * health check (plain queries): each sees what came before */
        CX_CHECK_OK(cx_storage_run(st, true, next_fn, &seq));
        cx_storage_tx *tx = NULL;
        CX_CHECK_OK(cx_storage_begin(st, false, &tx));
        CX_CHECK_OK(cx_storage_seq_last(tx, "R", &last));
        CX_CHECK_INT(last, seq);
        cx_storage_rollback(tx);
        last = 0;
        CX_CHECK_OK(cx_storage_run(st, false, last_fn, &last));
        CX_CHECK_INT(last, seq);
        if (i % 5 == 0) {
            cx_storage_health_info h;
            CX_CHECK_OK(cx_storage_health(st, &h));
            CX_CHECK(h.ok);
        }
    }
    /* a read that failed ends the old way, and the connection serves on */
    cx_storage_tx *tx = NULL;
    CX_CHECK_OK(cx_storage_begin(st, false, &tx));
    CX_CHECK_INT(cx_storage_team_set(tx, "R", 1, 0), CX_EINVAL); /* a write in a read */
    cx_storage_rollback(tx);
    CX_CHECK_OK(cx_storage_run(st, false, last_fn, &last));
    CX_CHECK_INT(last, seq);
    cx_storage_stats stats;
    cx_storage_stats_get(st, &stats);
    CX_CHECK_INT(stats.pool_in_use, 0);
    cx_storage_free(st);
}

int main(void) {
    uri1 = getenv("CORTEX_TEST_PG_URI");
    uri2 = getenv("CORTEX_TEST_PG_URI_2");
    if (!uri1 || !uri2) {
        fprintf(stderr, "test-core-storage-pg: PostgreSQL is missing (CORTEX_TEST_PG_URI and "
                        "_2 are not set; run under tests/core/with-pg.py --databases 2): "
                        "nothing run\n");
        return cx_test_done();
    }
    test_open();
    test_two_nodes();
    test_pool();
    test_blob_health_backup();
    test_blob_chunks();
    test_prefetch();
    test_batched_writes();
    test_reconnect();
    test_read_end();
    return cx_test_done();
}
