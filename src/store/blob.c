/* SPDX-License-Identifier: Apache-2.0 */
/* Content-addressed blobs and the artifacts built on them.
 *
 * A blob lives at <state_dir>/blobs/<first 2 hex>/<sha256>, written through
 * a temporary file and a rename, so a reader never sees half of one, and is
 * recorded in the `blobs` table. The file is written before the transaction
 * that references it commits: a crash in between leaves an unreferenced
 * file (harmless, the next publish of that content reuses it), never a
 * reference to a missing file.
 *
 * An artifact is an item of kind "artifact" whose title is its unique name
 * and whose body is its description; its versions are rows of
 * artifact_versions, each naming a blob. */
#include "store/blob.h"

#include "redact/redact.h"
#include "store/store-internal.h"

#include "util/clock.h"
#include "util/error.h"
#include "util/fsx.h"
#include "util/ulid.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void cx_blob_sha256(const void *data, size_t len, char out[65]) {
    cx_store_sha256_hex(data, len, out);
}

static int blob_path(const cx_store *s, const char sha[65], char **dir, char **path) {
    char sub[3] = {sha[0], sha[1], '\0'};
    *dir = cx_fs_join(s->blob_dir, sub);
    *path = *dir ? cx_fs_join(*dir, sha) : NULL;
    if (!*path) {
        free(*dir);
        *dir = NULL;
        return CX_ENOMEM;
    }
    return 0;
}

int cx_blob_put(cx_store *s, const void *data, size_t len, const char sha[65]) {
    char *dir = NULL, *path = NULL;
    int r = blob_path(s, sha, &dir, &path);
    if (r)
        return r;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size == len)
        goto out; /* content-addressed: already there */
    if ((r = cx_fs_mkdir_p(dir, 0700)))
        goto out;
    r = cx_fs_write_atomic(path, data, len, 0600);
out:
    free(dir);
    free(path);
    return r;
}

int cx_blob_read(cx_store *s, const char *sha, char **data, size_t *len) {
    char *dir = NULL, *path = NULL, *buf = NULL;
    size_t n = 0;
    if (!cx_wire_sha_valid(sha))
        return cx_error_set(CX_EINVAL, "bad blob name: a blob is named by 64 lower-case hex "
                                       "digits");
    int r = blob_path(s, sha, &dir, &path);
    if (r)
        return r;
    if ((r = cx_fs_read_file(path, CX_STORE_MAX_BLOB, &buf, &n)))
        goto out;
    char got[65];
    cx_blob_sha256(buf, n, got);
    if (strcmp(got, sha) != 0) {
        r = cx_error_set(CX_EIO, "blob %s is damaged (its content no longer matches its hash)",
                         path);
        goto out;
    }
    *data = buf;
    *len = n;
    buf = NULL;
out:
    free(buf);
    free(dir);
    free(path);
    return r;
}

/* ---- publish ---- */

typedef struct publish_ctx {
    const cx_actor *who;
    const cx_publish *p;
    const char *subcortex;
    char *tags; /* NULL when no tags were given: keep the artifact's */
    char sha[65];
    /* results */
    char id[CX_ULID_LEN + 1];
    int64_t version, size;
    bool unchanged;
    float *vec; /* room for the built-in vector */
} publish_ctx;

/* publishing content that a pulled version named makes that blob present */
static const char SQL_BLOB_ADD[] =
    "INSERT INTO blobs (sha256, size, created_at) VALUES (?1, ?2, ?3)"
    " ON CONFLICT (sha256) DO UPDATE SET present = 1, fetch_error = NULL";
/* Two workspaces may have published one name before either pulled the
 * other's: the oldest artifact of a name is the one a publish adds to, the
 * same one in every workspace that holds both. */
static const char SQL_ARTIFACT_BY_NAME[] =
    "SELECT id FROM items WHERE kind = 'artifact' AND title = ?1"
    " ORDER BY created_at, id LIMIT 1";
static const char SQL_LATEST_VERSION[] =
    "SELECT version, sha256, size FROM artifact_versions WHERE artifact_id = ?1"
    " ORDER BY version DESC LIMIT 1";
static const char SQL_VERSION_ADD[] =
    "INSERT INTO artifact_versions (artifact_id, version, sha256, size, status, created_at,"
    " source_path, author, agent) VALUES (?1, ?2, ?3, ?4, 'published', ?5, ?6, ?7, ?8)";
/* An artifact's status is its latest version's (as at the core): a new
 * version is published, whatever a reviewer accepted before. */
static const char SQL_ARTIFACT_TOUCH[] =
    "UPDATE items SET updated_at = ?2, body = coalesce(?3, body), tags = coalesce(?4, tags),"
    " author = coalesce(?5, author), agent = coalesce(?6, agent), status = 'published'"
    " WHERE id = ?1";
static const char SQL_ARTIFACT_TEXT[] = "SELECT rid, title, body FROM items WHERE id = ?1";

/* The built-in vector of a name and description into c->vec. */
static int embed_artifact(cx_store *s, publish_ctx *c, const char *name, const char *desc) {
    char *text = cx_vec_text(name, desc);
    if (!text)
        return CX_ENOMEM;
    int r = cx_vec_builtin(s, text, c->vec);
    free(text);
    return r;
}

/* After its description changed: the artifact's built-in vector again. */
static int reembed_artifact(cx_store *s, publish_ctx *c) {
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, SQL_ARTIFACT_TEXT, &st), rc;
    if (r)
        return r;
    sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
    int64_t rid = 0;
    if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        rid = sqlite3_column_int64(st, 0);
        r = embed_artifact(s, c, (const char *)sqlite3_column_text(st, 1),
                           (const char *)sqlite3_column_text(st, 2));
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return cx_store_sqlerr(s, rc, "reading the artifact");
    if (r)
        return r;
    return cx_vec_put(s, s->builtin_model, rid, c->vec, cx_embed_dim(s->builtin),
                      CX_VEC_DEQUEUE);
}

static int publish_tx(cx_store *s, void *ud) {
    publish_ctx *c = ud;
    const cx_publish *p = c->p;
    const char *author = c->who ? c->who->author : NULL, *agent = c->who ? c->who->agent : NULL;
    const char *desc = p->title && *p->title ? p->title : NULL;
    uint64_t now = cx_clock_now_ms();
    sqlite3_stmt *st;
    int r, rc;
    bool exists = false;

    c->unchanged = false;
    c->version = 1;
    if ((r = cx_store_prepare(s, SQL_ARTIFACT_BY_NAME, &st)))
        return r;
    sqlite3_bind_text(st, 1, p->name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(c->id, sizeof c->id, "%s", (const char *)sqlite3_column_text(st, 0));
        exists = true;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return cx_store_sqlerr(s, rc, "looking up the artifact");

    if (exists) {
        if ((r = cx_store_prepare(s, SQL_LATEST_VERSION, &st)))
            return r;
        sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            c->version = sqlite3_column_int64(st, 0) + 1;
            if (strcmp((const char *)sqlite3_column_text(st, 1), c->sha) == 0) {
                c->unchanged = true;
                c->version--;
                c->size = sqlite3_column_int64(st, 2);
            }
        }
        sqlite3_reset(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return cx_store_sqlerr(s, rc, "reading the artifact's versions");
        if (c->unchanged)
            return 0;
        if ((r = cx_store_prepare(s, SQL_ARTIFACT_TOUCH, &st)))
            return r;
        sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
        cx_store_bind_text(st, 3, desc);
        cx_store_bind_text(st, 4, c->tags);
        cx_store_bind_text(st, 5, author);
        cx_store_bind_text(st, 6, agent);
        if ((r = cx_store_exec_stmt(s, st, "updating the artifact")))
            return r;
        if ((r = reembed_artifact(s, c)))
            return r;
    } else {
        if ((r = embed_artifact(s, c, p->name, desc)))
            return r;
        if ((r = cx_ulid_new(c->id)))
            return r;
        cx_item_row row = {
            .id = c->id, .kind = "artifact", .status = "published", .subcortex = c->subcortex,
            .title = p->name, .body = desc ? desc : "", .tags = c->tags, .author = author,
            .agent = agent, .visibility = "shared", .vec = c->vec, .now_ms = now,
        };
        if ((r = cx_item_insert(s, &row, NULL)))
            return r;
    }

    c->size = (int64_t)p->len;
    if ((r = cx_store_prepare(s, SQL_BLOB_ADD, &st)))
        return r;
    sqlite3_bind_text(st, 1, c->sha, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, c->size);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)now);
    if ((r = cx_store_exec_stmt(s, st, "recording the blob")))
        return r;

    if ((r = cx_store_prepare(s, SQL_VERSION_ADD, &st)))
        return r;
    sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, c->version);
    sqlite3_bind_text(st, 3, c->sha, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, c->size);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)now);
    cx_store_bind_text(st, 6, p->source_path && *p->source_path ? p->source_path : NULL);
    cx_store_bind_text(st, 7, author);
    cx_store_bind_text(st, 8, agent);
    if ((r = cx_store_exec_stmt(s, st, "adding the artifact version")))
        return r;

    json_t *env = NULL;
    if ((r = cx_item_load(s, c->id, &env)))
        return r;
    char iso[CX_ISO_LEN];
    cx_clock_format(now, iso);
    json_t *payload = json_pack("{s:o, s:{s:I, s:s, s:I, s:s, s:s}}", "item", env, "version",
                                "version", (json_int_t)c->version, "sha256", c->sha, "size",
                                (json_int_t)c->size, "status", "published", "created_at", iso);
    if (!payload)
        return CX_ENOMEM;
    if (p->source_path && *p->source_path)
        json_object_set_new(json_object_get(payload, "version"), "source_path",
                            json_string(p->source_path));
    r = cx_outbox_push(s, CX_OP_ARTIFACT_VERSION, c->id, payload);
    json_decref(payload);
    return r;
}

/* The publish request with its text redacted: title, tags and, when the
 * content is text, the content; binary content is refused when it is an
 * obvious credential file. The strings are owned by `held`. */
typedef struct clean_publish {
    cx_publish p;
    char *title, *data, *name, *source_path, *subcortex, *tagbuf[CX_STORE_MAX_TAGS];
    const char *tagv[CX_STORE_MAX_TAGS];
    cx_redact_report rep;
} clean_publish;

static void clean_publish_free(clean_publish *c) {
    free(c->title);
    free(c->data);
    free(c->name);
    free(c->source_path);
    free(c->subcortex);
    for (size_t i = 0; i < CX_STORE_MAX_TAGS; i++)
        free(c->tagbuf[i]);
}

static int clean_publish_init(clean_publish *c, const cx_publish *in) {
    c->p = *in;
    /* the name is the artifact's title: redacted like one, and so are the
     * path it came from and the subcortex */
    int r = cx_item_redact(in->title, &c->title, &c->p.title, &c->rep);
    if (r == 0)
        r = cx_item_redact(in->name, &c->name, &c->p.name, &c->rep);
    if (r == 0)
        r = cx_item_redact(in->source_path, &c->source_path, &c->p.source_path, &c->rep);
    if (r == 0)
        r = cx_item_redact(in->subcortex, &c->subcortex, &c->p.subcortex, &c->rep);
    if (r)
        return r;
    if (in->tags.n <= CX_STORE_MAX_TAGS) {
        for (size_t i = 0; i < in->tags.n && r == 0; i++)
            r = cx_item_redact(in->tags.v[i], &c->tagbuf[i], &c->tagv[i], &c->rep);
        c->p.tags = (cx_strv){.v = c->tagv, .n = in->tags.n};
    }
    if (r || !in->data || in->len == 0 || in->len > CX_STORE_MAX_BLOB)
        return r;
    /* Text is redacted (a PEM block inside becomes a marker); a credential
     * file is refused by its name, and binary data also by its content. */
    bool text = cx_redact_is_text(in->data, in->len);
    const char *why = cx_redact_credential_file(in->source_path ? in->source_path : in->name,
                                                text ? NULL : in->data, text ? 0 : in->len);
    if (why)
        return cx_error_set(CX_EINVAL,
                            "refused to store '%s': it is %s, and credentials are never stored; "
                            "publish a template without the secrets instead",
                            c->p.source_path ? c->p.source_path : c->p.name, why);
    if (!text)
        return 0;
    size_t len = 0;
    if ((r = cx_redact_text(in->data, in->len, &c->data, &len, &c->rep)))
        return r;
    if (c->data) {
        c->p.data = c->data;
        c->p.len = len;
    }
    return 0;
}

int cx_store_publish(cx_store *s, const cx_actor *who, const cx_publish *orig, json_t **out) {
    clean_publish cp = {0};
    const cx_publish *p = &cp.p;
    publish_ctx c = {.who = who, .p = p};
    json_t *tags = NULL;
    int r;
    if ((r = cx_item_check_actor(who)))
        goto out;
    if ((r = clean_publish_init(&cp, orig)))
        goto out;
    if ((r = cx_item_check_text("name", p->name, CX_STORE_MAX_TITLE, true, true)))
        goto out;
    if ((r = cx_item_check_text("title", p->title, CX_STORE_MAX_TITLE, false, true)))
        goto out;
    if ((r = cx_item_check_subcortex("subcortex", p->subcortex, &c.subcortex)))
        goto out;
    if ((r = cx_item_check_text("path", p->source_path, CX_STORE_MAX_PATH, false, true)))
        goto out;
    if ((r = cx_item_check_tags("tags", p->tags, &tags)))
        goto out;
    if (p->len > 0 && !p->data) {
        r = cx_error_set(CX_EINVAL, "content is missing");
        goto out;
    }
    if (p->len > CX_STORE_MAX_BLOB) {
        r = cx_error_set(CX_ELIMIT, "content is %zu bytes; the limit for one artifact version is "
                                    "%u bytes",
                         p->len, CX_STORE_MAX_BLOB);
        goto out;
    }
    if (p->tags.n > 0 && !(c.tags = json_dumps(tags, JSON_COMPACT))) {
        r = CX_ENOMEM;
        goto out;
    }
    if (!(c.vec = malloc(sizeof(float) * (size_t)cx_embed_dim(s->builtin)))) {
        r = CX_ENOMEM;
        goto out;
    }
    cx_blob_sha256(p->len ? p->data : "", p->len, c.sha);
    if ((r = cx_blob_put(s, p->len ? p->data : "", p->len, c.sha)))
        goto out;
    if ((r = cx_store_write(s, publish_tx, &c)))
        goto out;
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:I, s:s, s:b}", "artifact_id", c.id, "name",
                          p->name, "version", (json_int_t)c.version, "sha256", c.sha, "size",
                          (json_int_t)c.size, "status", "published", "unchanged", c.unchanged);
    if (!o || cx_item_add_redacted(o, &cp.rep) != 0) {
        json_decref(o);
        r = CX_ENOMEM;
        goto out;
    }
    *out = o;
out:
    clean_publish_free(&cp);
    json_decref(tags);
    free(c.tags);
    free(c.vec);
    return r;
}

/* ---- content ---- */

static const char SQL_ABSENT_WHY[] = "SELECT fetch_error FROM blobs WHERE sha256 = ?1";

/* Why blob sha is absent: the last fetch's error, "" when none. */
static int absent_why(cx_store *s, const char *sha, char *out, size_t cap) {
    sqlite3_stmt *st;
    out[0] = '\0';
    int r = cx_store_read_begin(s);
    if (r)
        return r;
    if ((r = cx_store_prepare(s, SQL_ABSENT_WHY, &st)) == 0) {
        sqlite3_bind_text(st, 1, sha, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW && sqlite3_column_text(st, 0))
            snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
        else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            r = cx_store_sqlerr(s, rc, "reading a blob's state");
        sqlite3_reset(st);
    }
    cx_store_read_end(s);
    return r;
}

static const char SQL_ARTIFACT_KIND[] = "SELECT kind FROM items WHERE id = ?1";
static const char SQL_VERSION_GET[] =
    "SELECT version, sha256, size FROM artifact_versions WHERE artifact_id = ?1"
    " AND (?2 = 0 OR version = ?2) ORDER BY version DESC LIMIT 1";

int cx_store_artifact_content(cx_store *s, const char *artifact_id, int version, char **data,
                              size_t *len) {
    char id[CX_STORE_MAX_ID + 1], sha[65] = "";
    char *buf = NULL;
    size_t n = 0;
    int64_t size = 0;
    sqlite3_stmt *st;
    int r, rc;
    if ((r = cx_item_norm_id("artifact_id", artifact_id, id)))
        return r;
    if (version < 0)
        return cx_error_set(CX_EINVAL, "version %d is not valid; versions start at 1 (0 = latest)",
                            version);
    if ((r = cx_store_read_begin(s)))
        return r;
    if ((r = cx_store_prepare(s, SQL_ARTIFACT_KIND, &st)))
        goto out;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    bool artifact = rc == SQLITE_ROW &&
                    strcmp((const char *)sqlite3_column_text(st, 0), "artifact") == 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        r = cx_store_sqlerr(s, rc, "reading the artifact");
        goto out;
    }
    if (!artifact) {
        r = cx_error_set(CX_ENOTFOUND, "no artifact with id '%s'", id);
        goto out;
    }
    if ((r = cx_store_prepare(s, SQL_VERSION_GET, &st)))
        goto out;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, version);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(sha, sizeof sha, "%s", (const char *)sqlite3_column_text(st, 1));
        size = sqlite3_column_int64(st, 2);
    }
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) {
        r = cx_error_set(CX_ENOTFOUND, "artifact '%s' has no version %d", id, version);
        goto out;
    }
    if (rc != SQLITE_ROW) {
        r = cx_store_sqlerr(s, rc, "reading the artifact version");
        goto out;
    }
    cx_store_read_end(s);

    if (!cx_wire_sha_valid(sha)) {
        r = cx_error_set(CX_EIO, "artifact '%s' names a malformed blob", id);
        goto out;
    }
    r = cx_blob_read(s, sha, &buf, &n);
    if (r == CX_ENOTFOUND) {
        char why[CX_BLOB_MAX_ERROR];
        if (absent_why(s, sha, why, sizeof why) == 0 && why[0])
            r = cx_error_set(CX_ENOTFOUND, "the content of artifact '%s' (blob %s) is not on this "
                                           "machine: fetching it from the core failed: %s",
                             id, sha, why);
        else
            r = cx_error_set(CX_ENOTFOUND, "the content of artifact '%s' (blob %s) is not on this "
                                           "machine yet; it is fetched from the core on the next "
                                           "pull (`cortex sync`)",
                             id, sha);
        goto out;
    }
    if (r)
        goto out;
    if (size >= 0 && (int64_t)n != size) {
        r = cx_error_set(CX_EIO, "blob %s is damaged (its content no longer matches its hash)",
                         sha);
        goto out;
    }
    *data = buf;
    *len = n;
    buf = NULL;
out:
    cx_store_read_end(s);
    free(buf);
    return r;
}

/* ---- pulled content ---- */

static const char SQL_MISSING[] =
    "SELECT b.sha256, b.size FROM blobs b WHERE b.present = 0"
    " AND EXISTS (SELECT 1 FROM artifact_versions v WHERE v.sha256 = b.sha256)"
    " AND (b.fetch_at IS NULL OR b.fetch_at <= ?1) ORDER BY b.created_at, b.sha256 LIMIT ?2";

int cx_blob_missing(cx_store *s, size_t max, json_t **out) {
    sqlite3_stmt *st;
    json_t *arr = json_array();
    if (!arr)
        return CX_ENOMEM;
    int r = cx_store_read_begin(s), rc;
    if (r) {
        json_decref(arr);
        return r;
    }
    if ((r = cx_store_prepare(s, SQL_MISSING, &st)))
        goto out;
    uint64_t now = cx_clock_now_ms();
    sqlite3_bind_int64(st, 1, (sqlite3_int64)(now > CX_BLOB_RETRY_MS ? now - CX_BLOB_RETRY_MS : 0));
    sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *sha = (const char *)sqlite3_column_text(st, 0);
        int64_t size = sqlite3_column_int64(st, 1);
        if (!cx_wire_sha_valid(sha) || size < -1 || size > (int64_t)CX_STORE_MAX_BLOB)
            continue; /* apply.c never records one; nothing to fetch by that name */
        json_t *o = json_pack("{s:s, s:I}", "sha256", sha, "size", (json_int_t)size);
        if (!o || json_array_append_new(arr, o)) {
            r = CX_ENOMEM;
            break;
        }
    }
    sqlite3_reset(st);
    if (r == 0 && rc != SQLITE_DONE)
        r = cx_store_sqlerr(s, rc, "listing the blobs to fetch");
out:
    cx_store_read_end(s);
    if (r) {
        json_decref(arr);
        return r;
    }
    *out = arr;
    return 0;
}

struct cx_blob_fetch {
    char sha[65];
    size_t size, got; /* size: what may come (the limit when not known) */
    bool known;       /* the version said its size */
    char *dir, *path, *tmp;
    int fd;
    bool over; /* more bytes came than the version's size */
    cx_store_sha256 h;
};

int cx_blob_fetch_open(cx_store *s, const char *sha, int64_t size, cx_blob_fetch **out) {
    static atomic_uint counter;
    if (!cx_wire_sha_valid(sha))
        return cx_error_set(CX_EINVAL, "bad blob name: a blob is named by 64 lower-case hex "
                                       "digits");
    if (size > (int64_t)CX_STORE_MAX_BLOB)
        return cx_error_set(CX_ELIMIT, "blob %s is %lld bytes; the limit for one artifact "
                                       "version is %u bytes", sha, (long long)size,
                            CX_STORE_MAX_BLOB);
    cx_blob_fetch *f = calloc(1, sizeof *f);
    if (!f)
        return CX_ENOMEM;
    f->fd = -1;
    f->known = size >= 0;
    f->size = size >= 0 ? (size_t)size : CX_STORE_MAX_BLOB;
    snprintf(f->sha, sizeof f->sha, "%s", sha);
    cx_store_sha256_init(&f->h);
    int r = blob_path(s, sha, &f->dir, &f->path);
    if (r)
        goto fail;
    size_t cap = strlen(f->path) + 64;
    if (!(f->tmp = malloc(cap))) {
        r = CX_ENOMEM;
        goto fail;
    }
    if ((r = cx_fs_mkdir_p(f->dir, 0700)))
        goto fail;
    for (int attempt = 0;; attempt++) {
        snprintf(f->tmp, cap, "%s.fetch.%ld.%u", f->path, (long)getpid(),
                 atomic_fetch_add(&counter, 1u));
        f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (f->fd >= 0)
            break;
        if (errno != EEXIST || attempt >= 100) {
            r = cx_error_set(CX_EIO, "cannot create %s: %s", f->tmp, strerror(errno));
            goto fail;
        }
    }
    *out = f;
    return 0;
fail:
    cx_blob_fetch_free(f);
    return r;
}

int cx_blob_fetch_write(cx_blob_fetch *f, const void *data, size_t len) {
    if (len > f->size - f->got) {
        f->over = true;
        return cx_error_set(CX_ELIMIT, "the core sent more than the %zu bytes %s blob %s",
                            f->size, f->known ? "its version says for" : "one version may have:",
                            f->sha);
    }
    cx_store_sha256_update(&f->h, data, len);
    for (const char *p = data; len > 0;) {
        ssize_t k = write(f->fd, p, len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return cx_error_set(CX_EIO, "cannot write %s: %s", f->tmp, strerror(errno));
        p += k;
        len -= (size_t)k;
        f->got += (size_t)k;
    }
    return 0;
}

static const char SQL_FETCHED[] =
    "UPDATE blobs SET present = 1, fetch_error = NULL, fetch_at = NULL, size = ?2"
    " WHERE sha256 = ?1";
/* a version that did not say its size has it now */
static const char SQL_FETCHED_SIZE[] =
    "UPDATE artifact_versions SET size = ?2 WHERE sha256 = ?1 AND size < 0";

static int fetched_tx(cx_store *s, void *ud) {
    const cx_blob_fetch *f = ud;
    sqlite3_stmt *st;
    const char *sql[] = {SQL_FETCHED, SQL_FETCHED_SIZE};
    int r = 0;
    for (size_t i = 0; i < 2 && r == 0; i++) {
        if ((r = cx_store_prepare(s, sql[i], &st)))
            return r;
        sqlite3_bind_text(st, 1, f->sha, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)f->got);
        r = cx_store_exec_stmt(s, st, "recording a fetched blob");
        sqlite3_clear_bindings(st);
    }
    return r;
}

int cx_blob_fetch_commit(cx_store *s, cx_blob_fetch *f) {
    char got[65];
    cx_store_sha256_final(&f->h, got);
    if (f->over || (f->known && f->got != f->size))
        return cx_error_set(CX_EIO, "the core sent %zu bytes for blob %s; its version says %zu: "
                                    "refused", f->got, f->sha, f->size);
    if (strcmp(got, f->sha) != 0)
        return cx_error_set(CX_EIO, "the core's content for blob %s hashes to %s: refused (a "
                                    "blob must match its sha-256)", f->sha, got);
    if (fsync(f->fd) != 0)
        return cx_error_set(CX_EIO, "cannot fsync %s: %s", f->tmp, strerror(errno));
    int c = close(f->fd);
    f->fd = -1;
    if (c != 0)
        return cx_error_set(CX_EIO, "cannot write %s: %s", f->tmp, strerror(errno));
    if (rename(f->tmp, f->path) != 0)
        return cx_error_set(CX_EIO, "cannot rename %s to %s: %s", f->tmp, f->path,
                            strerror(errno));
    free(f->tmp);
    f->tmp = NULL;
    int dfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd); /* the rename is durable, or the next pull fetches it again */
        close(dfd);
    }
    return cx_store_write(s, fetched_tx, f);
}

void cx_blob_fetch_free(cx_blob_fetch *f) {
    if (!f)
        return;
    if (f->fd >= 0)
        close(f->fd);
    if (f->tmp)
        unlink(f->tmp);
    free(f->tmp);
    free(f->dir);
    free(f->path);
    free(f);
}

typedef struct fail_ctx {
    const char *sha, *why;
} fail_ctx;

static const char SQL_FETCH_FAILED[] =
    "UPDATE blobs SET fetch_error = ?2, fetch_at = ?3 WHERE sha256 = ?1 AND present = 0";

static int failed_tx(cx_store *s, void *ud) {
    const fail_ctx *c = ud;
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, SQL_FETCH_FAILED, &st);
    if (r)
        return r;
    sqlite3_bind_text(st, 1, c->sha, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->why, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)cx_clock_now_ms());
    r = cx_store_exec_stmt(s, st, "recording a failed blob fetch");
    sqlite3_clear_bindings(st);
    return r;
}

int cx_blob_fetch_failed(cx_store *s, const char *sha, const char *why) {
    char clean[CX_BLOB_MAX_ERROR];
    size_t n = 0;
    for (const char *p = why ? why : "failed"; *p && n + 1 < sizeof clean; p++)
        clean[n++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
    clean[n] = '\0';
    fail_ctx c = {.sha = sha, .why = clean};
    return cx_store_write(s, failed_tx, &c);
}

/* ---- acceptance (local) ---- */

typedef struct accept_ctx {
    const char *id, *by;
    int64_t version;
    bool already;
} accept_ctx;

static const char SQL_ACC_VERSION[] =
    "SELECT v.status FROM artifact_versions v JOIN items i ON i.id = v.artifact_id"
    " WHERE v.artifact_id = ?1 AND v.version = ?2 AND i.kind = 'artifact'";
static const char SQL_ACC_SET[] =
    "UPDATE artifact_versions SET status = 'accepted', accepted_by = ?3, accepted_at = ?4"
    " WHERE artifact_id = ?1 AND version = ?2";
/* as the core does: the artifact's status is its latest version's */
static const char SQL_ACC_ITEM[] =
    "UPDATE items SET status = (SELECT status FROM artifact_versions WHERE artifact_id = ?1"
    " ORDER BY version DESC LIMIT 1), updated_at = ?2 WHERE id = ?1";

static int accept_tx(cx_store *s, void *ud) {
    accept_ctx *c = ud;
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, SQL_ACC_VERSION, &st), rc;
    if (r)
        return r;
    sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, c->version);
    rc = sqlite3_step(st);
    c->already = rc == SQLITE_ROW && sqlite3_column_text(st, 0) &&
                 strcmp((const char *)sqlite3_column_text(st, 0), "accepted") == 0;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc == SQLITE_DONE)
        return cx_error_set(CX_ENOTFOUND, "no artifact '%s' with version %lld", c->id,
                            (long long)c->version);
    if (rc != SQLITE_ROW)
        return cx_store_sqlerr(s, rc, "reading the artifact version");
    if (c->already)
        return 0;
    uint64_t now = cx_clock_now_ms();
    if ((r = cx_store_prepare(s, SQL_ACC_SET, &st)))
        return r;
    sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, c->version);
    cx_store_bind_text(st, 3, c->by);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)now);
    r = cx_store_exec_stmt(s, st, "accepting the artifact version");
    sqlite3_clear_bindings(st);
    if (r)
        return r;
    if ((r = cx_store_prepare(s, SQL_ACC_ITEM, &st)))
        return r;
    sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
    r = cx_store_exec_stmt(s, st, "updating the artifact's status");
    sqlite3_clear_bindings(st);
    return r;
}

int cx_store_artifact_accept(cx_store *s, const cx_actor *who, const char *artifact_id,
                             int64_t version, json_t **out) {
    char id[CX_STORE_MAX_ID + 1];
    int r;
    if ((r = cx_item_check_actor(who)))
        return r;
    if ((r = cx_item_norm_id("artifact_id", artifact_id, id)))
        return r;
    if (version < 1)
        return cx_error_set(CX_EINVAL, "version %lld is not valid; versions start at 1",
                            (long long)version);
    accept_ctx c = {.id = id, .by = who ? who->author : NULL, .version = version};
    if ((r = cx_store_write(s, accept_tx, &c)))
        return r;
    return cx_store_get(s, id, out);
}
