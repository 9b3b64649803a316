/* SPDX-License-Identifier: Apache-2.0 */
/* Copying a whole core between databases (see migrate.h).
 *
 * The copy reads the source through cx_storage_walk, key_list and
 * audit_each in one read transaction (one snapshot: a consistent core even
 * if something writes meanwhile; the operator stops the nodes first so
 * that nothing written after the snapshot is left behind), and writes the
 * target through the same calls the server uses (item_put, op_put,
 * key_put, blob_put, audit_put, team_set) in one write transaction: the
 * target holds all of it or none.
 *
 * The verification reads the target back through other calls than the
 * copy wrote with (changes, op_get, key_get, blob_get, seq_last, horizon,
 * audit_each), each compared with the source: a backend that stored
 * something else than it was given is caught here, before DIR is pointed
 * at the target. */
#include "core/migrate.h"

#include "core/audit.h"
#include "util/error.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define PROGRESS_EVERY 10000 /* rows between two progress calls */
#define PAGE 1000            /* items compared per page of changes */

typedef struct team_rec {
    char name[CX_TEAM_MAX + 1];
    int64_t seq, horizon;
} team_rec;

typedef struct run {
    cx_storage_tx *src, *dst;
    cx_migrate_report *rep;
    cx_migrate_progress progress;
    void *pud;
    team_rec *teams;
    size_t nteams, capteams;
    int64_t done;
} run;

static void tick(run *m, const char *what) {
    if (m->progress && ++m->done % PROGRESS_EVERY == 0)
        m->progress(m->pud, what, m->done);
}

/* ---- the copy ---- */

static int copy_team(void *ud, const char *team, int64_t seq, int64_t horizon) {
    run *m = ud;
    if (strlen(team) > CX_TEAM_MAX)
        return cx_error_set(CX_EINVAL, "a team name of %zu bytes in the source", strlen(team));
    if (m->nteams == m->capteams) {
        size_t cap = m->capteams ? 2 * m->capteams : 16;
        team_rec *t = realloc(m->teams, cap * sizeof *t);
        if (!t)
            return CX_ENOMEM;
        m->teams = t;
        m->capteams = cap;
    }
    team_rec *t = &m->teams[m->nteams++];
    memcpy(t->name, team, strlen(team) + 1);
    t->seq = seq;
    t->horizon = horizon;
    m->rep->teams++;
    return 0;
}

static int copy_item(void *ud, const cx_storage_item_row *it) {
    run *m = ud;
    if (it->deleted)
        m->rep->tombstones++;
    else
        m->rep->items++;
    tick(m, "items");
    return cx_storage_item_put(m->dst, it->team, it->id, it->kind, it->status, it->seq,
                               it->deleted, it->json);
}

static int copy_op(void *ud, const char *team, const char *op_id, const uint8_t digest[32],
                   int64_t seq) {
    run *m = ud;
    m->rep->ops++;
    tick(m, "op records");
    return cx_storage_op_put(m->dst, team, op_id, digest, seq);
}

/* The blob's bytes hash to its name: 0, or CX_ECONFLICT naming it. */
static int blob_check(const char *team, const char *sha, const void *data, size_t len,
                      int64_t size, const char *where) {
    uint8_t d[crypto_hash_sha256_BYTES];
    char hex[crypto_hash_sha256_BYTES * 2 + 1];
    crypto_hash_sha256(d, data, len);
    sodium_bin2hex(hex, sizeof hex, d, sizeof d);
    if (strcmp(hex, sha) != 0 || (int64_t)len != size)
        return cx_error_set(CX_ECONFLICT,
                            "blob %s of team %s in the %s: %zu bytes hashing to %s (recorded: "
                            "%lld bytes)",
                            sha, team, where, len, hex, (long long)size);
    return 0;
}

/* One blob at a time: read whole from the source, checked, written. */
static int copy_blob(void *ud, const char *team, const char *sha, int64_t size) {
    run *m = ud;
    void *data = NULL;
    size_t len = 0;
    bool created = false;
    int r = cx_storage_blob_get(m->src, team, sha, &data, &len);
    if (r == 0)
        r = blob_check(team, sha, data, len, size, "source");
    if (r == 0)
        r = cx_storage_blob_put(m->dst, team, sha, data, len, &created);
    free(data);
    if (r == 0) {
        m->rep->blobs++;
        m->rep->blob_bytes += (int64_t)len;
        tick(m, "blobs");
    }
    return r;
}

static int copy_key(void *ud, const cx_storage_key *k) {
    run *m = ud;
    m->rep->keys++;
    return cx_storage_key_put(m->dst, k);
}

static int copy_audit(void *ud, const cx_storage_audit *a) {
    run *m = ud;
    m->rep->audit++;
    tick(m, "audit entries");
    return cx_storage_audit_put(m->dst, a);
}

/* The target holds no core yet: no key, no audit entry, and none of the
 * source's teams has a seq there. */
static int count_key(void *ud, const cx_storage_key *k) {
    (void)k;
    (*(int64_t *)ud)++;
    return 0;
}

static int target_empty(run *m) {
    int64_t keys = 0, n = 0;
    char head[65];
    int r = cx_storage_key_list(m->dst, count_key, &keys);
    if (r == 0)
        r = cx_storage_audit_last(m->dst, &n, head);
    for (size_t i = 0; r == 0 && i < m->nteams; i++) {
        int64_t seq = 0;
        if ((r = cx_storage_seq_last(m->dst, m->teams[i].name, &seq)) == 0 && seq > 0)
            return cx_error_set(CX_ECONFLICT,
                                "the target already holds items of team %s; migrate into an "
                                "empty database",
                                m->teams[i].name);
    }
    if (r == 0 && (keys || n))
        r = cx_error_set(CX_ECONFLICT,
                         "the target already holds a cortex-core (%lld keys, %lld audit "
                         "entries); migrate into an empty database",
                         (long long)keys, (long long)n);
    return r;
}

static int copy_all(run *m) {
    cx_storage_walker teams = {.ud = m, .team = copy_team};
    cx_storage_walker rows = {.ud = m, .item = copy_item, .op = copy_op, .blob = copy_blob};
    int64_t n = 0;
    char head[65];
    int r = cx_storage_walk(m->src, &teams);
    if (r == 0)
        r = target_empty(m);
    if (r == 0)
        r = cx_storage_key_list(m->src, copy_key, m);
    if (r == 0)
        r = cx_storage_walk(m->src, &rows);
    for (size_t i = 0; r == 0 && i < m->nteams; i++)
        r = cx_storage_team_set(m->dst, m->teams[i].name, m->teams[i].seq, m->teams[i].horizon);
    /* the head of the target's chain, held until commit (storage.h) */
    if (r == 0)
        r = cx_storage_audit_last(m->dst, &n, head);
    if (r == 0)
        r = cx_storage_audit_each(m->src, copy_audit, m);
    return r;
}

/* ---- the verification ---- */

typedef struct page {
    int64_t seq[PAGE];
    char *id[PAGE], *json[PAGE]; /* json NULL for a tombstone */
    int n;
} page;

static void page_clear(page *p) {
    for (int i = 0; i < p->n; i++) {
        free(p->id[i]);
        free(p->json[i]);
    }
    p->n = 0;
}

static int page_add(void *ud, int64_t seq, const char *id, const char *json) {
    page *p = ud;
    if (p->n == PAGE)
        return CX_EINVAL; /* cannot happen: changes was asked for PAGE */
    char *i = strdup(id), *j = json ? strdup(json) : NULL;
    if (!i || (json && !j)) {
        free(i);
        free(j);
        return CX_ENOMEM;
    }
    p->seq[p->n] = seq;
    p->id[p->n] = i;
    p->json[p->n] = j;
    p->n++;
    return 0;
}

/* The team's items and tombstones on both sides, page by page. */
static int verify_items(run *m, const team_rec *t, int64_t *items, int64_t *tombs) {
    page *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    int64_t since = 0;
    int r = a && b ? 0 : CX_ENOMEM;
    while (r == 0) {
        page_clear(a);
        page_clear(b);
        if ((r = cx_storage_changes(m->src, t->name, since, PAGE, page_add, a)) ||
            (r = cx_storage_changes(m->dst, t->name, since, PAGE, page_add, b)))
            break;
        if (a->n != b->n) {
            r = cx_error_set(CX_ECONFLICT, "team %s after seq %lld: %d changes in the source, "
                             "%d in the target", t->name, (long long)since, a->n, b->n);
            break;
        }
        for (int i = 0; r == 0 && i < a->n; i++) {
            bool same = a->seq[i] == b->seq[i] && strcmp(a->id[i], b->id[i]) == 0 &&
                        (a->json[i] ? b->json[i] && strcmp(a->json[i], b->json[i]) == 0
                                    : !b->json[i]);
            if (!same)
                r = cx_error_set(CX_ECONFLICT, "team %s: item %s at seq %lld differs in the "
                                 "target", t->name, a->id[i], (long long)a->seq[i]);
            else if (a->json[i])
                (*items)++;
            else
                (*tombs)++;
        }
        if (a->n < PAGE)
            break;
        since = a->seq[a->n - 1];
    }
    if (a)
        page_clear(a);
    if (b)
        page_clear(b);
    free(a);
    free(b);
    return r;
}

static int verify_team(run *m, const team_rec *t, int64_t *items, int64_t *tombs) {
    int64_t seq = 0, horizon = 0;
    int r = cx_storage_seq_last(m->dst, t->name, &seq);
    if (r == 0)
        r = cx_storage_horizon(m->dst, t->name, &horizon);
    if (r == 0 && (seq != t->seq || horizon != t->horizon))
        return cx_error_set(CX_ECONFLICT, "team %s: seq %lld horizon %lld in the target, %lld "
                            "and %lld in the source", t->name, (long long)seq,
                            (long long)horizon, (long long)t->seq, (long long)t->horizon);
    return r ? r : verify_items(m, t, items, tombs);
}

static int check_op(void *ud, const char *team, const char *op_id, const uint8_t digest[32],
                    int64_t seq) {
    run *m = ud;
    uint8_t d[32];
    int64_t s = 0;
    int r = cx_storage_op_get(m->dst, team, op_id, d, &s);
    if (r == CX_ENOTFOUND)
        return cx_error_set(CX_ECONFLICT, "op record %s of team %s is missing in the target",
                            op_id, team);
    if (r == 0 && (s != seq || sodium_memcmp(d, digest, 32) != 0))
        r = cx_error_set(CX_ECONFLICT, "op record %s of team %s differs in the target", op_id,
                         team);
    if (r == 0)
        m->done++;
    return r;
}

static int check_blob(void *ud, const char *team, const char *sha, int64_t size) {
    run *m = ud;
    void *data = NULL;
    size_t len = 0;
    int r = cx_storage_blob_get(m->dst, team, sha, &data, &len);
    if (r == CX_ENOTFOUND)
        return cx_error_set(CX_ECONFLICT, "blob %s of team %s is missing in the target", sha,
                            team);
    if (r == 0)
        r = blob_check(team, sha, data, len, size, "target");
    free(data);
    if (r == 0)
        m->done++;
    return r;
}

static int check_key(void *ud, const cx_storage_key *k) {
    run *m = ud;
    cx_storage_key t;
    int r = cx_storage_key_get(m->dst, k->key_id, &t);
    if (r == CX_ENOTFOUND)
        return cx_error_set(CX_ECONFLICT, "key %s is missing in the target", k->key_id);
    if (r == 0 && (strcmp(t.team, k->team) || strcmp(t.role, k->role) ||
                   strcmp(t.name, k->name) || sodium_memcmp(t.hash, k->hash, 32) ||
                   t.created_ms != k->created_ms || t.revoked_ms != k->revoked_ms))
        r = cx_error_set(CX_ECONFLICT, "key %s differs in the target", k->key_id);
    if (r == 0)
        m->done++;
    return r;
}

static int verify_all(run *m, const uint8_t secret[CX_SECRET_LEN]) {
    const cx_migrate_report *rep = m->rep;
    int64_t items = 0, tombs = 0, entries = 0, bad = 0, n_src = 0, n_dst = 0, keys = 0;
    char h_src[65] = "", h_dst[65] = "";
    int r = 0;
    for (size_t i = 0; r == 0 && i < m->nteams; i++)
        r = verify_team(m, &m->teams[i], &items, &tombs);
    if (r == 0 && (items != rep->items || tombs != rep->tombstones))
        r = cx_error_set(CX_ECONFLICT, "%lld items and %lld tombstones in the target, %lld "
                         "and %lld copied", (long long)items, (long long)tombs,
                         (long long)rep->items, (long long)rep->tombstones);
    cx_storage_walker w = {.ud = m, .op = check_op};
    m->done = 0;
    if (r == 0 && (r = cx_storage_walk(m->src, &w)) == 0 && m->done != rep->ops)
        r = cx_error_set(CX_ECONFLICT, "%lld op records found, %lld copied",
                         (long long)m->done, (long long)rep->ops);
    w = (cx_storage_walker){.ud = m, .blob = check_blob};
    m->done = 0;
    if (r == 0 && (r = cx_storage_walk(m->src, &w)) == 0 && m->done != rep->blobs)
        r = cx_error_set(CX_ECONFLICT, "%lld blobs found, %lld copied", (long long)m->done,
                         (long long)rep->blobs);
    m->done = 0;
    if (r == 0 && (r = cx_storage_key_list(m->src, check_key, m)) == 0 &&
        (r = cx_storage_key_list(m->dst, count_key, &keys)) == 0 &&
        (m->done != rep->keys || keys != rep->keys))
        r = cx_error_set(CX_ECONFLICT, "%lld keys in the target, %lld copied", (long long)keys,
                         (long long)rep->keys);
    if (r == 0)
        r = cx_audit_verify(m->dst, secret, &entries, &bad);
    if (r == CX_ECONFLICT)
        r = cx_error_set(CX_ECONFLICT, "the target's audit chain: %s", cx_error_last());
    if (r == 0 && (r = cx_storage_audit_last(m->src, &n_src, h_src)) == 0 &&
        (r = cx_storage_audit_last(m->dst, &n_dst, h_dst)) == 0 &&
        (entries != rep->audit || n_dst != n_src || strcmp(h_src, h_dst) != 0))
        r = cx_error_set(CX_ECONFLICT, "the target's audit chain has %lld entries ending in "
                         "%.12s…, the source's %lld ending in %.12s…", (long long)entries,
                         h_dst, (long long)n_src, h_src);
    return r;
}

int cx_migrate_copy(cx_storage *src, cx_storage *dst, const uint8_t secret[CX_SECRET_LEN],
                    cx_migrate_report *rep, cx_migrate_progress progress, void *pud) {
    run m = {.rep = rep, .progress = progress, .pud = pud};
    memset(rep, 0, sizeof *rep);
    int r = cx_storage_begin(src, false, &m.src);
    if (r)
        return r;
    if ((r = cx_storage_begin(dst, true, &m.dst)) == 0) {
        r = copy_all(&m);
        r = cx_storage_end(m.dst, r);
    }
    cx_storage_rollback(m.src); /* read only */
    /* the tables were empty when the planner last looked: without fresh
     * statistics the first pushes would scan a team's op records */
    if (r == 0)
        r = cx_storage_analyze(dst);
    if (r == 0 && progress)
        progress(pud, "verifying", 0);
    /* fresh snapshots of both for the verification */
    if (r == 0 && (r = cx_storage_begin(src, false, &m.src)) == 0) {
        if ((r = cx_storage_begin(dst, false, &m.dst)) == 0) {
            r = verify_all(&m, secret);
            cx_storage_rollback(m.dst);
        }
        cx_storage_rollback(m.src);
    }
    free(m.teams);
    return r;
}
