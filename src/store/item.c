/* SPDX-License-Identifier: Apache-2.0 */
/* Writing items: the row insert and update every write path shares (local
 * writes and pulled changes, see apply.c), redaction of a caller's texts,
 * and the item operations of the store API that write (observe with its
 * repeats and folds, draft and revise, comment, review). Validation is in
 * item-check.c, the envelope in envelope.c, reads in read.c.
 *
 * Comments do not change their target's updated_at: a comment is an item of
 * its own (it shows in `recent` with its parent_id), and the target's
 * updated_at keeps meaning "this item itself changed", which is also what
 * the core's copy says. */
#include "store/store-internal.h"

#include "proto/jsonrpc.h"
#include "redact/redact.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/ulid.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char SQL_INSERT[] =
    "INSERT INTO items (id, kind, status, subcortex, title, body, tags, files, evidence,"
    " author, agent, created_at, updated_at, visibility, parent_id, content_hash, provenance,"
    " fold_key, sig, review, server_seq)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?21, ?13, ?14, ?15, ?16, ?17,"
    " ?18, ?22, ?23)";
/* a new item's built-in vector, in the same transaction (see vec.c) */
static const char SQL_INSERT_VEC[] =
    "INSERT OR REPLACE INTO builtin_vectors (rid, kind, subcortex, scale, v)"
    " VALUES (?1, ?2, ?3, ?4, ?5)";
static const char SQL_UPDATE[] =
    "UPDATE items SET kind = ?2, status = ?3, subcortex = ?4, title = ?5, body = ?6, tags = ?7,"
    " files = ?8, evidence = ?9, author = ?10, agent = ?11, created_at = ?12, updated_at = ?21,"
    " server_seq = ?23, parent_id = ?14, review = ?22, provenance = ?16, sync_rejected = NULL"
    " WHERE id = ?1";
static const char SQL_DECIDE[] =
    "UPDATE items SET kind = ?2, status = ?3, review = ?22, updated_at = ?21 WHERE id = ?1";

static uint64_t or_now(uint64_t ms, uint64_t now) {
    return ms ? ms : now;
}

/* Binds the parameters that SQL_INSERT, SQL_UPDATE and (only the first
 * five, when `decision`) SQL_DECIDE share. */
static void bind_row(sqlite3_stmt *st, const cx_item_row *row, bool decision) {
    cx_store_bind_text(st, 1, row->id);
    cx_store_bind_text(st, 2, row->kind);
    cx_store_bind_text(st, 3, row->status);
    sqlite3_bind_int64(st, 21, (sqlite3_int64)or_now(row->updated_ms, row->now_ms));
    cx_store_bind_text(st, 22, row->review);
    if (decision)
        return;
    cx_store_bind_text(st, 4, row->subcortex);
    cx_store_bind_text(st, 5, row->title ? row->title : "");
    cx_store_bind_text(st, 6, row->body ? row->body : "");
    cx_store_bind_text(st, 7, row->tags ? row->tags : "[]");
    cx_store_bind_text(st, 8, row->files ? row->files : "[]");
    cx_store_bind_text(st, 9, row->evidence ? row->evidence : "[]");
    cx_store_bind_text(st, 10, row->author);
    cx_store_bind_text(st, 11, row->agent);
    sqlite3_bind_int64(st, 12, (sqlite3_int64)or_now(row->created_ms, row->now_ms));
    cx_store_bind_text(st, 14, row->parent_id);
    cx_store_bind_text(st, 16, row->provenance);
    if (row->server_seq > 0)
        sqlite3_bind_int64(st, 23, row->server_seq);
}

int cx_item_insert(cx_store *s, const cx_item_row *row, int64_t *rid) {
    sqlite3_stmt *st;
    int dim = cx_embed_dim(s->builtin);
    int r = cx_store_prepare(s, SQL_INSERT, &st);
    if (r)
        return r;
    bind_row(st, row, false);
    cx_store_bind_text(st, 13, row->visibility);
    cx_store_bind_text(st, 15, row->content_hash);
    if (row->has_fold_key)
        sqlite3_bind_int64(st, 17, row->fold_key);
    int8_t q[CX_EMBED_MAX_DIM];
    float scale;
    if (row->vec)
        sqlite3_bind_int64(st, 18, (sqlite3_int64)cx_vec_sig(row->vec, dim));
    r = cx_store_exec_stmt(s, st, "writing an item");
    sqlite3_clear_bindings(st);
    if (r)
        return r;
    int64_t new_rid = sqlite3_last_insert_rowid(cx_store_sqlite(s));
    if (row->vec) {
        cx_vec_quantize(row->vec, dim, q, &scale);
        if ((r = cx_store_prepare(s, SQL_INSERT_VEC, &st)))
            return r;
        sqlite3_bind_int64(st, 1, new_rid);
        cx_store_bind_text(st, 2, row->kind);
        cx_store_bind_text(st, 3, row->subcortex);
        sqlite3_bind_double(st, 4, scale);
        sqlite3_bind_blob(st, 5, q, dim, SQLITE_STATIC);
        r = cx_store_exec_stmt(s, st, "writing an item's vector");
        sqlite3_clear_bindings(st);
        if (r)
            return r;
    }
    if (rid)
        *rid = new_rid;
    return 0;
}

int cx_item_update(cx_store *s, const cx_item_row *row, unsigned flags) {
    sqlite3_stmt *st;
    bool decision = flags & CX_ITEM_DECISION;
    int r = cx_store_prepare(s, decision ? SQL_DECIDE : SQL_UPDATE, &st);
    if (r)
        return r;
    bind_row(st, row, decision);
    r = cx_store_exec_stmt(s, st, "updating an item");
    sqlite3_clear_bindings(st);
    return r;
}

/* The built-in vector of a title and body into out[dim]. */
static int embed_item(cx_store *s, const char *title, const char *body, float *out) {
    char *text = cx_vec_text(title, body);
    if (!text)
        return CX_ENOMEM;
    int r = cx_vec_builtin(s, text, out);
    free(text);
    return r;
}

/* Pushes item.put with the stored envelope unless the item is private. */
static int push_item(cx_store *s, const char *id, const char *visibility) {
    if (strcmp(visibility, "private") == 0)
        return 0;
    json_t *env = NULL;
    int r = cx_item_load(s, id, &env);
    if (r == 0)
        r = cx_outbox_push(s, CX_OP_ITEM_PUT, id, env);
    json_decref(env);
    return r;
}

/* Pushes item.put for a new observation straight from its row (the
 * envelope cx_item_load would read back, without reading or re-encoding
 * it) unless it is private. s->scratch keeps its memory between calls. */
static int push_new_observation(cx_store *s, const cx_item_row *row) {
    if (strcmp(row->visibility, "private") == 0)
        return 0;
    int r = cx_item_envelope_text(row, &s->scratch);
    if (r == 0)
        r = cx_outbox_push_text(s, CX_OP_ITEM_PUT, row->id, s->scratch.data, s->scratch.len);
    if (s->scratch.alloc > (64u << 10)) /* a large note's: give the memory back */
        cx_buf_free(&s->scratch);
    else
        cx_buf_reset(&s->scratch);
    return r;
}

/* ---- redaction ----
 * Every text a caller writes is redacted before anything else looks at it
 * (validation, hashing, embedding, the row, the outbox): a secret never
 * reaches the database. */

typedef struct clean_note {
    cx_note note;              /* the caller's note with redacted strings */
    char *title, *body, *subcortex; /* owned redacted copies, or NULL */
    char *tagbuf[CX_STORE_MAX_TAGS];
    const char *tagv[CX_STORE_MAX_TAGS];
    char *filebuf[CX_STORE_MAX_FILES];
    const char *filev[CX_STORE_MAX_FILES];
    json_t *provenance;        /* a redacted copy, or NULL */
    cx_redact_report rep;
} clean_note;

int cx_item_redact(const char *in, char **owned, const char **use, cx_redact_report *rep) {
    *owned = NULL;
    *use = in;
    if (!in || !*in)
        return 0;
    size_t len = strlen(in);
    int r = cx_redact_text(in, len, owned, NULL, rep);
    if (r == 0 && *owned)
        *use = *owned;
    return r;
}

static void clean_note_free(clean_note *c) {
    free(c->title);
    free(c->body);
    free(c->subcortex);
    c->title = c->body = c->subcortex = NULL;
    for (size_t i = 0; i < CX_STORE_MAX_TAGS; i++) {
        free(c->tagbuf[i]);
        c->tagbuf[i] = NULL;
    }
    for (size_t i = 0; i < CX_STORE_MAX_FILES; i++) {
        free(c->filebuf[i]);
        c->filebuf[i] = NULL;
    }
    json_decref(c->provenance);
    c->provenance = NULL;
}

/* Redacts a list of strings (at most max; a longer list is left for
 * validation to refuse) into buf/v, and points *l at the result. */
static int redact_list(cx_strv *l, size_t max, char **buf, const char **v, cx_redact_report *rep) {
    if (l->n > max)
        return 0;
    int r = 0;
    for (size_t i = 0; i < l->n && r == 0; i++)
        r = cx_item_redact(l->v[i], &buf[i], &v[i], rep);
    *l = (cx_strv){.v = v, .n = l->n};
    return r;
}

/* c->note becomes `in` with every text redacted: title, body, subcortex,
 * tags, files and the provenance (remote, branch, paths: every string in
 * it). Evidence and visibility are held to strict forms by validation. */
static int clean_note_init(clean_note *c, const cx_note *in) {
    memset(c, 0, sizeof *c);
    c->note = *in;
    int r = cx_item_redact(in->title, &c->title, &c->note.title, &c->rep);
    if (r == 0)
        r = cx_item_redact(in->body, &c->body, &c->note.body, &c->rep);
    if (r == 0)
        r = cx_item_redact(in->subcortex, &c->subcortex, &c->note.subcortex, &c->rep);
    if (r == 0)
        r = redact_list(&c->note.tags, CX_STORE_MAX_TAGS, c->tagbuf, c->tagv, &c->rep);
    if (r == 0)
        r = redact_list(&c->note.files, CX_STORE_MAX_FILES, c->filebuf, c->filev, &c->rep);
    if (r == 0 && json_is_object(in->provenance)) {
        if (!(c->provenance = json_deep_copy(in->provenance)))
            r = CX_ENOMEM;
        else if ((r = cx_redact_json(c->provenance, NULL, &c->rep)) == 0)
            c->note.provenance = c->provenance;
    }
    if (r)
        clean_note_free(c);
    return r;
}

/* Adds {"redacted": {"count", "rules"}} to o when anything was redacted. */
int cx_item_add_redacted(json_t *o, const cx_redact_report *rep) {
    if (rep->total == 0)
        return 0;
    json_t *j = cx_redact_report_json(rep);
    if (!j || json_object_set_new(o, "redacted", j) != 0)
        return CX_ENOMEM;
    return 0;
}

static void merge_report(cx_redact_report *into, const cx_redact_report *from) {
    into->total += from->total;
    for (size_t i = 0; i < CX_REDACT_MAX_RULES; i++)
        into->counts[i] += from->counts[i];
}

/* ---- observe ---- */

typedef struct obs_prep {
    const char *title, *body, *subcortex, *visibility;
    char *tags, *files, *provenance;
    char hash[65];
    int64_t fold_key;
    float *vec; /* the built-in vector */
} obs_prep;

typedef struct obs_result {
    char id[CX_ULID_LEN + 1];
    bool repeat, folded;
    double similarity;
} obs_result;

typedef struct obs_ctx {
    const cx_actor *who;
    obs_prep *preps;
    size_t n;
    cx_progress_fn progress;
    void *ud;
    obs_result *res;
    bool fts_behind; /* the search index should catch up after the commit */
} obs_ctx;

/* SHA-256 of the text with runs of whitespace made one space and none at
 * the ends. The normalised text goes to the hash in blocks of a buffer,
 * not a word at a time: each update call costs more than the bytes of a
 * short word. */
void cx_item_content_hash(const char *text, char out[65]) {
    cx_store_sha256 h;
    unsigned char buf[1024];
    size_t n = 0;
    cx_store_sha256_init(&h);
    const unsigned char *p = (const unsigned char *)text;
    bool first = true;
    for (;;) {
        while (*p && cx_item_is_space(*p))
            p++;
        if (!*p)
            break;
        if (!first) {
            if (n == sizeof buf) {
                cx_store_sha256_update(&h, buf, n);
                n = 0;
            }
            buf[n++] = ' ';
        }
        while (*p && !cx_item_is_space(*p)) {
            if (n == sizeof buf) {
                cx_store_sha256_update(&h, buf, n);
                n = 0;
            }
            buf[n++] = *p++;
        }
        first = false;
    }
    if (n)
        cx_store_sha256_update(&h, buf, n);
    cx_store_sha256_final(&h, out);
}

/* The name of a field of observation i for messages: "observations[i].x"
 * in a batch, else the name itself (no formatting on the common path). */
static const char *field_name(char *buf, size_t cap, size_t i, size_t total, const char *name) {
    if (total == 1)
        return name;
    snprintf(buf, cap, "observations[%zu].%s", i, name);
    return buf;
}

/* A checked list of strings as json_dumps(JSON_COMPACT) writes it (the
 * row's text), without jansson's writer; NULL when out of memory. */
static char *dump_list(const json_t *list) {
    if (!list)
        return NULL;
    cx_buf b;
    cx_buf_init(&b, CX_STORE_SCRATCH_MAX);
    if (cx_rpc_dump(&b, list) != 0) {
        cx_buf_free(&b);
        cx_error_clear();
        return json_dumps(list, JSON_COMPACT);
    }
    return cx_buf_take(&b, NULL);
}

static int prep_observation(cx_store *s, const cx_note *n, size_t i, size_t total, obs_prep *p) {
    char f[96];
    int r;
    json_t *tags = NULL, *files = NULL;
    if ((r = cx_item_check_text(field_name(f, sizeof f, i, total, "text"), n->body,
                                CX_STORE_MAX_TEXT, true, false)))
        goto out;
    if ((r = cx_item_check_text(field_name(f, sizeof f, i, total, "title"), n->title,
                                CX_STORE_MAX_TITLE, false, true)))
        goto out;
    if ((r = cx_item_check_subcortex(field_name(f, sizeof f, i, total, "subcortex"), n->subcortex,
                                     &p->subcortex)))
        goto out;
    if ((r = cx_item_check_visibility(field_name(f, sizeof f, i, total, "visibility"),
                                      n->visibility, &p->visibility)))
        goto out;
    if ((r = cx_item_check_tags(field_name(f, sizeof f, i, total, "tags"), n->tags, &tags)))
        goto out;
    if ((r = cx_item_check_list(field_name(f, sizeof f, i, total, "files"), n->files,
                                CX_STORE_MAX_FILES, CX_STORE_MAX_PATH, &files)))
        goto out;
    if ((r = cx_item_check_provenance(field_name(f, sizeof f, i, total, "provenance"),
                                      n->provenance, &p->provenance)))
        goto out;
    if (n->evidence.n > 0) {
        r = cx_error_set(CX_EINVAL, "%sevidence is only for drafts; leave it out of observations",
                         field_name(f, sizeof f, i, total, ""));
        goto out;
    }
    p->title = n->title ? n->title : "";
    p->body = n->body;
    p->tags = dump_list(tags);
    p->files = dump_list(files);
    p->vec = malloc(sizeof(float) * (size_t)cx_embed_dim(s->builtin));
    if (!p->tags || !p->files || !p->vec) {
        r = CX_ENOMEM;
        goto out;
    }
    if ((r = embed_item(s, p->title, p->body, p->vec)))
        goto out;
    cx_item_content_hash(n->body, p->hash);
    p->fold_key = cx_item_fold_key(p->visibility, p->subcortex, files,
                                   p->provenance ? n->provenance : NULL, p->title, p->body);
out:
    json_decref(tags);
    json_decref(files);
    return r;
}

static const char SQL_FIND_OBS[] =
    "SELECT id FROM items WHERE kind = 'observation' AND content_hash = ?1 AND visibility = ?2";
static const char SQL_SEEN[] = "UPDATE items SET seen = seen + 1 WHERE id = ?1";
/* the newest observations with the same fold key, from the index alone */
static const char SQL_FOLD_CAND[] =
    "SELECT rid, sig FROM items WHERE fold_key = ?1 AND kind = 'observation'"
    " ORDER BY rid DESC LIMIT ?2";
static const char SQL_FOLD_VEC[] =
    "SELECT b.scale, b.v, i.id FROM builtin_vectors b JOIN items i ON i.rid = b.rid"
    " WHERE b.rid = ?1";
static const char SQL_FOLD[] =
    "UPDATE items SET seen = seen + 1, updated_at = max(updated_at, ?2) WHERE id = ?1";

/* Sign bits that may differ between two vectors with cosine similarity
 * >= CX_STORE_FOLD_SIMILARITY: about 64 * acos(0.92) / pi = 8.4 on
 * average; 20 keeps a true near-duplicate with overwhelming odds while
 * most other notes are ruled out without reading their vectors. */
#define FOLD_SIG_BITS 20

/* Looks for an observation `p` folds into: res->folded, id, similarity. */
static int find_fold(cx_store *s, const obs_prep *p, obs_result *res) {
    sqlite3_stmt *st;
    int64_t rids[CX_STORE_FOLD_CANDIDATES];
    size_t n = 0;
    int dim = cx_embed_dim(s->builtin), rc;
    uint64_t sig = cx_vec_sig(p->vec, dim);
    int r = cx_store_prepare(s, SQL_FOLD_CAND, &st);
    if (r)
        return r;
    sqlite3_bind_int64(st, 1, p->fold_key);
    sqlite3_bind_int(st, 2, CX_STORE_FOLD_CANDIDATES);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < CX_STORE_FOLD_CANDIDATES) {
        if (sqlite3_column_type(st, 1) == SQLITE_NULL)
            continue;
        uint64_t other = (uint64_t)sqlite3_column_int64(st, 1);
        if (__builtin_popcountll(other ^ sig) <= FOLD_SIG_BITS)
            rids[n++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return cx_store_sqlerr(s, rc, "looking for a near-duplicate");
    double best = -1.0;
    for (size_t k = 0; k < n; k++) {
        if ((r = cx_store_prepare(s, SQL_FOLD_VEC, &st)))
            return r;
        sqlite3_bind_int64(st, 1, rids[k]);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 1) == dim) {
            const int8_t *q = sqlite3_column_blob(st, 1);
            double dot = 0.0;
            for (int i = 0; i < dim; i++)
                dot += (double)p->vec[i] * q[i];
            double sim = dot * sqlite3_column_double(st, 0);
            if (sim > best) {
                best = sim;
                if (sim >= CX_STORE_FOLD_SIMILARITY)
                    snprintf(res->id, sizeof res->id, "%s",
                             (const char *)sqlite3_column_text(st, 2));
            }
        }
        sqlite3_reset(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return cx_store_sqlerr(s, rc, "reading a near-duplicate's vector");
    }
    res->folded = best >= CX_STORE_FOLD_SIMILARITY;
    res->similarity = best > 1.0 ? 1.0 : best;
    return 0;
}

static int observe_tx(cx_store *s, void *ud) {
    obs_ctx *c = ud;
    uint64_t now = cx_clock_now_ms();
    int64_t last_rid = 0;
    c->fts_behind = false;
    for (size_t i = 0; i < c->n; i++) {
        obs_prep *p = &c->preps[i];
        obs_result *res = &c->res[i];
        sqlite3_stmt *st;
        *res = (obs_result){0};
        int r = cx_store_prepare(s, SQL_FIND_OBS, &st);
        if (r)
            return r;
        sqlite3_bind_text(st, 1, p->hash, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, p->visibility, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            snprintf(res->id, sizeof res->id, "%s", (const char *)sqlite3_column_text(st, 0));
        sqlite3_reset(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return cx_store_sqlerr(s, rc, "looking for an earlier observation");
        res->repeat = rc == SQLITE_ROW;
        if (res->repeat) {
            if ((r = cx_store_prepare(s, SQL_SEEN, &st)))
                return r;
            sqlite3_bind_text(st, 1, res->id, -1, SQLITE_STATIC);
            if ((r = cx_store_exec_stmt(s, st, "counting a repeated observation")))
                return r;
        } else if ((r = find_fold(s, p, res)) != 0) {
            return r;
        } else if (res->folded) {
            res->repeat = true;
            if ((r = cx_store_prepare(s, SQL_FOLD, &st)))
                return r;
            sqlite3_bind_text(st, 1, res->id, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
            if ((r = cx_store_exec_stmt(s, st, "folding a near-duplicate observation")))
                return r;
        } else {
            if ((r = cx_ulid_new(res->id)))
                return r;
            cx_item_row row = {
                .id = res->id, .kind = "observation", .status = "recorded",
                .subcortex = p->subcortex, .title = p->title, .body = p->body,
                .tags = p->tags, .files = p->files, .author = c->who ? c->who->author : NULL,
                .agent = c->who ? c->who->agent : NULL, .visibility = p->visibility,
                .content_hash = p->hash, .provenance = p->provenance, .vec = p->vec,
                .fold_key = p->fold_key, .has_fold_key = true, .now_ms = now,
            };
            if ((r = cx_item_insert(s, &row, &last_rid)))
                return r;
            if ((r = push_new_observation(s, &row)))
                return r;
        }
        if (c->progress && c->progress(c->ud, i + 1, c->n) != 0)
            return cx_error_set(CX_ECANCELED, "recording observations was canceled; nothing "
                                              "was recorded");
    }
    return last_rid ? cx_store_fts_behind(s, last_rid, &c->fts_behind) : 0;
}

int cx_store_observe(cx_store *s, const cx_actor *who, const cx_note *notes, size_t n,
                     cx_progress_fn progress, void *ud, json_t **out) {
    int r = 0;
    obs_ctx c = {.who = who, .n = n, .progress = progress, .ud = ud};
    json_t *res = NULL;
    clean_note *clean = NULL;
    size_t ncleaned = 0;
    cx_redact_report total = {0};
    if (n == 0 || !notes)
        return cx_error_set(CX_EINVAL, "no observations given; pass at least one");
    if (n > CX_STORE_MAX_BATCH)
        return cx_error_set(CX_ELIMIT, "%zu observations in one call; the limit is %d, split "
                                       "the batch", n, CX_STORE_MAX_BATCH);
    if ((r = cx_item_check_actor(who)))
        return r;
    c.preps = calloc(n, sizeof *c.preps);
    c.res = calloc(n, sizeof *c.res);
    clean = calloc(n, sizeof *clean);
    if (!c.preps || !c.res || !clean) {
        r = CX_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if ((r = clean_note_init(&clean[i], &notes[i])))
            goto out;
        ncleaned = i + 1;
        merge_report(&total, &clean[i].rep);
        if ((r = prep_observation(s, &clean[i].note, i, n, &c.preps[i])))
            goto out;
    }
    if ((r = cx_store_write(s, observe_tx, &c)))
        goto out;
    /* Recorded: a failure to index now is only retried later. */
    if (c.fts_behind)
        (void)cx_store_fts_sync(s, s->fts_lag);

    res = json_object();
    json_t *arr = json_array();
    if (!res || !arr || json_object_set_new(res, "results", arr) != 0) {
        r = CX_ENOMEM;
        goto out;
    }
    size_t repeats = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "id", json_string(c.res[i].id));
        json_object_set_new(o, "repeat", json_boolean(c.res[i].repeat));
        if (c.res[i].folded) {
            json_object_set_new(o, "folded", json_true());
            json_object_set_new(o, "similarity",
                                json_real(round(c.res[i].similarity * 1000.0) / 1000.0));
        }
        if (cx_item_add_redacted(o, &clean[i].rep) != 0 || json_array_append_new(arr, o) != 0) {
            r = CX_ENOMEM;
            goto out;
        }
        repeats += c.res[i].repeat;
    }
    json_object_set_new(res, "recorded", json_integer((json_int_t)(n - repeats)));
    json_object_set_new(res, "repeats", json_integer((json_int_t)repeats));
    if ((r = cx_item_add_redacted(res, &total)))
        goto out;
    *out = res;
    res = NULL;
out:
    if (c.preps)
        for (size_t i = 0; i < n; i++) {
            free(c.preps[i].tags);
            free(c.preps[i].files);
            free(c.preps[i].provenance);
            free(c.preps[i].vec);
        }
    for (size_t i = 0; i < ncleaned; i++)
        clean_note_free(&clean[i]);
    free(clean);
    free(c.preps);
    free(c.res);
    json_decref(res);
    return r;
}

/* ---- draft ---- */

typedef struct draft_ctx {
    const cx_actor *who;
    clean_note clean;
    const cx_note *note; /* &clean.note */
    const char *subcortex, *visibility;
    json_t *evidence;
    char *tags, *files, *ev, *provenance;
    float *vec;
    char id[CX_ULID_LEN + 1];
    const char *revise; /* revise: the draft's id */
} draft_ctx;

static const char SQL_EXISTS[] = "SELECT 1 FROM items WHERE id = ?1";

static int check_evidence(cx_store *s, const json_t *evidence) {
    size_t i;
    json_t *v;
    json_array_foreach(evidence, i, v) {
        sqlite3_stmt *st;
        int r = cx_store_prepare(s, SQL_EXISTS, &st);
        if (r)
            return r;
        sqlite3_bind_text(st, 1, json_string_value(v), -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc == SQLITE_DONE)
            return cx_error_set(CX_ENOTFOUND,
                                "evidence id '%s' is no item in this store; cite ids that "
                                "observe, search or recent returned",
                                json_string_value(v));
        if (rc != SQLITE_ROW)
            return cx_store_sqlerr(s, rc, "checking evidence");
    }
    return 0;
}

static int draft_tx(cx_store *s, void *ud) {
    draft_ctx *c = ud;
    int r;
    if ((r = check_evidence(s, c->evidence)))
        return r;
    if ((r = cx_ulid_new(c->id)))
        return r;
    cx_item_row row = {
        .id = c->id, .kind = "draft", .status = "pending", .subcortex = c->subcortex,
        .title = c->note->title, .body = c->note->body, .tags = c->tags, .files = c->files,
        .evidence = c->ev, .author = c->who ? c->who->author : NULL,
        .agent = c->who ? c->who->agent : NULL, .visibility = c->visibility,
        .provenance = c->provenance, .vec = c->vec, .now_ms = cx_clock_now_ms(),
    };
    if ((r = cx_item_insert(s, &row, NULL)))
        return r;
    return push_item(s, c->id, c->visibility);
}

static const char SQL_REVISE[] =
    "UPDATE items SET status = 'pending', title = ?2, body = ?3, tags = ?4, files = ?5,"
    " evidence = ?6, provenance = ?7, updated_at = ?8, sync_rejected = NULL WHERE id = ?1";

/* Reads an item's kind, status, visibility and rid (any may be ignored by
 * the caller) for a change that depends on them. CX_ENOTFOUND naming
 * `what` when there is no such item. */
typedef struct item_state {
    char kind[32], status[32], visibility[16];
    int64_t rid;
} item_state;

static const char SQL_ITEM_STATE[] =
    "SELECT kind, status, visibility, rid FROM items WHERE id = ?1";

static int read_state(cx_store *s, const char *id, const char *what, item_state *out) {
    sqlite3_stmt *st;
    *out = (item_state){0};
    int r = cx_store_prepare(s, SQL_ITEM_STATE, &st);
    if (r)
        return r;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(out->kind, sizeof out->kind, "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(out->status, sizeof out->status, "%s", (const char *)sqlite3_column_text(st, 1));
        snprintf(out->visibility, sizeof out->visibility, "%s",
                 (const char *)sqlite3_column_text(st, 2));
        out->rid = sqlite3_column_int64(st, 3);
    }
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return cx_error_set(CX_ENOTFOUND, "no item with id '%s' to %s", id, what);
    if (rc != SQLITE_ROW)
        return cx_store_sqlerr(s, rc, "reading the draft");
    return 0;
}

/* May `role` take the item from its state to (kind, status)? The wire
 * model's transitions decide, for local writes as for the core. */
static bool may_become(const item_state *st, cx_actor_role role, cx_kind kind, cx_status status) {
    return cx_transition_allowed(role, cx_kind_parse(st->kind), cx_status_parse(st->status), kind,
                                 status);
}

static int revise_tx(cx_store *s, void *ud) {
    draft_ctx *c = ud;
    sqlite3_stmt *st;
    item_state is;
    int r = read_state(s, c->revise, "revise", &is);
    if (r)
        return r;
    if (!may_become(&is, CX_ROLE_AGENT, CX_KIND_DRAFT, CX_STATUS_PENDING))
        return cx_error_set(CX_ECONFLICT,
                            "item '%s' is %s %s with status %s; only drafts that await review "
                            "can be revised",
                            c->revise, cx_wire_article(is.kind), is.kind, is.status);
    if ((r = check_evidence(s, c->evidence)))
        return r;
    if ((r = cx_store_prepare(s, SQL_REVISE, &st)))
        return r;
    sqlite3_bind_text(st, 1, c->revise, -1, SQLITE_STATIC);
    cx_store_bind_text(st, 2, c->note->title);
    cx_store_bind_text(st, 3, c->note->body);
    cx_store_bind_text(st, 4, c->tags);
    cx_store_bind_text(st, 5, c->files);
    cx_store_bind_text(st, 6, c->ev);
    cx_store_bind_text(st, 7, c->provenance);
    sqlite3_bind_int64(st, 8, (sqlite3_int64)cx_clock_now_ms());
    r = cx_store_exec_stmt(s, st, "revising the draft");
    sqlite3_clear_bindings(st);
    if (r)
        return r;
    if ((r = cx_vec_put(s, s->builtin_model, is.rid, c->vec, cx_embed_dim(s->builtin), 0)))
        return r;
    snprintf(c->id, sizeof c->id, "%s", c->revise);
    return push_item(s, c->id, is.visibility);
}

static void draft_clear(draft_ctx *c) {
    json_decref(c->evidence);
    free(c->tags);
    free(c->files);
    free(c->ev);
    free(c->provenance);
    free(c->vec);
    clean_note_free(&c->clean);
}

/* Redacts and checks a draft's note into c (for a new draft or a revision). */
static int draft_prep(cx_store *s, const cx_actor *who, const cx_note *in, draft_ctx *c) {
    json_t *tags = NULL, *files = NULL;
    int r;
    c->who = who;
    if ((r = cx_item_check_actor(who)))
        return r;
    if ((r = clean_note_init(&c->clean, in)))
        return r;
    const cx_note *note = c->note = &c->clean.note;
    if ((r = cx_item_check_text("title", note->title, CX_STORE_MAX_TITLE, true, true)))
        goto out;
    if ((r = cx_item_check_text("body", note->body, CX_STORE_MAX_TEXT, true, false)))
        goto out;
    if ((r = cx_item_check_subcortex("subcortex", note->subcortex, &c->subcortex)))
        goto out;
    if ((r = cx_item_check_visibility("visibility", note->visibility, &c->visibility)))
        goto out;
    if ((r = cx_item_check_tags("tags", note->tags, &tags)))
        goto out;
    if ((r = cx_item_check_list("files", note->files, CX_STORE_MAX_FILES, CX_STORE_MAX_PATH,
                                &files)))
        goto out;
    if ((r = cx_item_check_list("evidence", note->evidence, CX_STORE_MAX_EVIDENCE,
                                CX_STORE_MAX_ID, &c->evidence)))
        goto out;
    if ((r = cx_item_check_provenance("provenance", note->provenance, &c->provenance)))
        goto out;
    if (!(c->vec = malloc(sizeof(float) * (size_t)cx_embed_dim(s->builtin)))) {
        r = CX_ENOMEM;
        goto out;
    }
    if ((r = embed_item(s, note->title, note->body, c->vec)))
        goto out;
    /* ids are stored upper-case; accept them in any case */
    size_t i;
    json_t *v;
    json_array_foreach(c->evidence, i, v) {
        char id[CX_STORE_MAX_ID + 1];
        if ((r = cx_item_norm_id("evidence", json_string_value(v), id)))
            goto out;
        json_array_set_new(c->evidence, i, json_string(id));
    }
    c->tags = json_dumps(tags, JSON_COMPACT);
    c->files = json_dumps(files, JSON_COMPACT);
    c->ev = json_dumps(c->evidence, JSON_COMPACT);
    if (!c->tags || !c->files || !c->ev)
        r = CX_ENOMEM;
out:
    json_decref(tags);
    json_decref(files);
    return r;
}

static int draft_write(cx_store *s, draft_ctx *c, json_t **out) {
    int r = cx_store_write(s, c->revise ? revise_tx : draft_tx, c);
    if (r)
        return r;
    json_t *o = json_pack("{s:s, s:s}", "id", c->id, "status", "pending");
    if (!o || (c->revise && json_object_set_new(o, "revised", json_true()) != 0) ||
        cx_item_add_redacted(o, &c->clean.rep) != 0) {
        json_decref(o);
        return CX_ENOMEM;
    }
    *out = o;
    return 0;
}

int cx_store_draft(cx_store *s, const cx_actor *who, const cx_note *note, json_t **out) {
    draft_ctx c = {0};
    int r = draft_prep(s, who, note, &c);
    if (r == 0)
        r = draft_write(s, &c, out);
    draft_clear(&c);
    return r;
}

int cx_store_draft_revise(cx_store *s, const cx_actor *who, const char *id, const cx_note *note,
                          json_t **out) {
    char nid[CX_STORE_MAX_ID + 1];
    draft_ctx c = {0};
    int r = cx_item_norm_id("id", id, nid);
    if (r == 0)
        r = draft_prep(s, who, note, &c);
    if (r == 0) {
        c.revise = nid;
        r = draft_write(s, &c, out);
    }
    draft_clear(&c);
    return r;
}

/* ---- comment ---- */

typedef struct comment_ctx {
    const cx_actor *who;
    const char *target, *body;
    float *vec;
    char id[CX_ULID_LEN + 1];
} comment_ctx;

static const char SQL_TARGET[] =
    "SELECT kind, subcortex, visibility FROM items WHERE id = ?1";

static int comment_tx(cx_store *s, void *ud) {
    comment_ctx *c = ud;
    sqlite3_stmt *st;
    char subcortex[CX_STORE_MAX_TAG + 1], visibility[16], kind[32];
    int r = cx_store_prepare(s, SQL_TARGET, &st);
    if (r)
        return r;
    sqlite3_bind_text(st, 1, c->target, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(kind, sizeof kind, "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(subcortex, sizeof subcortex, "%s", (const char *)sqlite3_column_text(st, 1));
        snprintf(visibility, sizeof visibility, "%s", (const char *)sqlite3_column_text(st, 2));
    }
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return cx_error_set(CX_ENOTFOUND,
                            "no item with id '%s'; comments go on threads and drafts, with ids "
                            "from search or recent",
                            c->target);
    if (rc != SQLITE_ROW)
        return cx_store_sqlerr(s, rc, "reading the comment's target");
    cx_kind k = cx_kind_parse(kind);
    if (k != CX_KIND_THREAD && k != CX_KIND_DRAFT)
        return cx_error_set(CX_EINVAL,
                            "item '%s' is a%s %s; comments go only on threads and drafts",
                            c->target, kind[0] == 'a' || kind[0] == 'o' ? "n" : "", kind);
    if ((r = cx_ulid_new(c->id)))
        return r;
    /* A comment lives where its target does: same subcortex, and private
     * when the target is (it must not leave the machine either). */
    cx_item_row row = {
        .id = c->id, .kind = "comment", .status = "recorded", .subcortex = subcortex,
        .body = c->body, .author = c->who ? c->who->author : NULL,
        .agent = c->who ? c->who->agent : NULL, .visibility = visibility,
        .parent_id = c->target, .vec = c->vec, .now_ms = cx_clock_now_ms(),
    };
    if ((r = cx_item_insert(s, &row, NULL)))
        return r;
    return push_item(s, c->id, visibility);
}

int cx_store_comment(cx_store *s, const cx_actor *who, const char *target_id, const char *body,
                     json_t **out) {
    char target[CX_STORE_MAX_ID + 1];
    comment_ctx c = {.who = who, .target = target};
    cx_redact_report rep = {0};
    char *owned = NULL;
    int r;
    if ((r = cx_item_check_actor(who)))
        return r;
    if ((r = cx_item_norm_id("target_id", target_id, target)))
        return r;
    if ((r = cx_item_redact(body, &owned, &c.body, &rep)))
        return r;
    if ((r = cx_item_check_text("body", c.body, CX_STORE_MAX_TEXT, true, false)))
        goto out;
    if (!(c.vec = malloc(sizeof(float) * (size_t)cx_embed_dim(s->builtin)))) {
        r = CX_ENOMEM;
        goto out;
    }
    if ((r = embed_item(s, NULL, c.body, c.vec)) == 0)
        r = cx_store_write(s, comment_tx, &c);
    if (r)
        goto out;
    json_t *o = json_pack("{s:s, s:s}", "id", c.id, "target_id", target);
    if (!o || cx_item_add_redacted(o, &rep) != 0) {
        json_decref(o);
        r = CX_ENOMEM;
        goto out;
    }
    *out = o;
out:
    free(c.vec);
    free(owned);
    return r;
}

/* ---- review ---- */

typedef struct review_ctx {
    const cx_actor *who;
    const char *id, *decision, *reason;
} review_ctx;

static const char SQL_REVIEW_SET[] =
    "UPDATE items SET kind = ?2, status = ?3, review = ?4, updated_at = ?5 WHERE id = ?1";
static const char SQL_REVIEW_LOG[] =
    "INSERT INTO reviews (item_id, decision, reason, reviewer, agent, at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

static int review_tx(cx_store *s, void *ud) {
    review_ctx *c = ud;
    sqlite3_stmt *st;
    item_state is;
    int r = read_state(s, c->id, "review", &is);
    if (r)
        return r;
    cx_decision d = cx_decision_parse(c->decision);
    cx_kind to_kind = d == CX_DECISION_APPROVE ? CX_KIND_THREAD : CX_KIND_DRAFT;
    /* a decision is on a draft that awaits review (a canon thread stays
     * canon: "no change" is a transition, not a decision); a person
     * reviewing in their own workspace (no upstream) is its reviewer */
    if (!cx_awaits_review(cx_kind_parse(is.kind), cx_status_parse(is.status)) ||
        !may_become(&is, CX_ROLE_REVIEWER, to_kind, cx_decision_status(d)))
        return cx_error_set(CX_ECONFLICT,
                            "item '%s' is %s %s with status %s; only drafts that are pending or "
                            "have changes requested can be reviewed",
                            c->id, cx_wire_article(is.kind), is.kind, is.status);

    uint64_t now = cx_clock_now_ms();
    char iso[CX_ISO_LEN];
    cx_clock_format(now, iso);
    const char *author = c->who ? c->who->author : NULL, *agent = c->who ? c->who->agent : NULL;
    json_t *rv = json_pack("{s:s, s:s}", "decision", c->decision, "at", iso);
    if (!rv)
        return CX_ENOMEM;
    if (c->reason && *c->reason)
        json_object_set_new(rv, "reason", json_string(c->reason));
    if (author)
        json_object_set_new(rv, "reviewer", json_string(author));
    char *rvtext = json_dumps(rv, JSON_COMPACT);
    if (!rvtext) {
        json_decref(rv);
        return CX_ENOMEM;
    }
    if ((r = cx_store_prepare(s, SQL_REVIEW_SET, &st)))
        goto out;
    sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, cx_kind_name(to_kind), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, cx_status_name(cx_decision_status(d)), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, rvtext, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)now);
    r = cx_store_exec_stmt(s, st, "recording the review");
    sqlite3_clear_bindings(st);
    if (r)
        goto out;
    if ((r = cx_store_prepare(s, SQL_REVIEW_LOG, &st)))
        goto out;
    sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->decision, -1, SQLITE_STATIC);
    cx_store_bind_text(st, 3, c->reason && *c->reason ? c->reason : NULL);
    cx_store_bind_text(st, 4, author);
    cx_store_bind_text(st, 5, agent);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)now);
    if ((r = cx_store_exec_stmt(s, st, "logging the review")))
        goto out;
    if (strcmp(is.visibility, "private") != 0) {
        json_t *env = NULL;
        if ((r = cx_item_load(s, c->id, &env)))
            goto out;
        json_t *payload = json_pack("{s:s, s:O, s:o}", "item_id", c->id, "review", rv, "item", env);
        if (!payload) {
            r = CX_ENOMEM;
            goto out;
        }
        if (agent)
            json_object_set_new(payload, "agent", json_string(agent));
        r = cx_outbox_push(s, CX_OP_REVIEW_DECISION, c->id, payload);
        json_decref(payload);
    }
out:
    json_decref(rv);
    free(rvtext);
    return r;
}

int cx_store_review(cx_store *s, const cx_actor *who, const char *id, const char *decision,
                    const char *reason, json_t **out) {
    char nid[CX_STORE_MAX_ID + 1];
    int r;
    if ((r = cx_item_check_actor(who)))
        return r;
    if ((r = cx_item_norm_id("id", id, nid)))
        return r;
    cx_decision d = cx_decision_parse(decision);
    if (d == CX_DECISION_INVALID)
        return cx_error_set(CX_EINVAL,
                            "decision must be \"approve\", \"reject\" or \"changes_requested\", "
                            "not \"%.40s\"",
                            decision ? decision : "");
    bool needs_reason = cx_decision_needs_note(d);
    if ((r = cx_item_check_text("reason", reason, CX_WIRE_MAX_NOTE, needs_reason, false))) {
        if (needs_reason && (!reason || !*reason))
            return cx_error_set(CX_EINVAL, "a reason is required to %s a draft; say what is "
                                           "wrong or what to change",
                                d == CX_DECISION_REJECT ? "reject" : "request changes on");
        return r;
    }
    char *owned = NULL;
    review_ctx c = {.who = who, .id = nid, .decision = decision};
    if ((r = cx_item_redact(reason, &owned, &c.reason, NULL)))
        return r;
    r = cx_store_write(s, review_tx, &c);
    free(owned);
    if (r)
        return r;
    return cx_store_get(s, nid, out);
}
