/* SPDX-License-Identifier: Apache-2.0 */
/* The review app's read endpoints (see views.h): search, an item with its
 * evidence, comments and history, the review queue with its filter, the
 * artifacts, the audit log with its verification (the verified prefix of
 * the chain kept in memory), the team's activity, and the per-workspace
 * sync record written on pulls (throttled in memory). Each view is one
 * read transaction scoped to the caller's team. */
#include "core/views.h"

#include "core/audit.h"
#include "proto/wire.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/utf8.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Bounds on the work of one view. */
#define QUEUE_SCAN 10000   /* waiting drafts read for the queue's filter and counts */
#define DEFAULT_QUEUE 100  /* drafts in a queue page when no limit is named */
#define HISTORY_MAX 500    /* audit entries of one item's history */
#define STALE_SCAN 20000   /* newer items read to judge the evidence's staleness */
#define STALE_PAGE 500
#define DAY_MS 86400000LL

/* --- small helpers ------------------------------------------------------- */

static const char *jstr(const json_t *o, const char *k) {
    return json_string_value(json_object_get(o, k));
}

static json_t *jstr_or_null(const json_t *o, const char *k) {
    const char *v = jstr(o, k);
    return v ? json_string(v) : json_null();
}

static json_t *iso(int64_t ms) {
    char t[CX_ISO_LEN];
    cx_clock_format(ms < 0 ? 0 : (uint64_t)ms, t);
    return json_string(t);
}

/* Milliseconds of a stored timestamp member; -1 when absent or unreadable. */
static int64_t jtime(const json_t *o, const char *k) {
    const char *v = jstr(o, k);
    uint64_t ms = 0;
    if (!v || cx_clock_parse(v, &ms))
        return -1;
    return (int64_t)ms;
}

static int append(json_t *arr, json_t *v) {
    if (!v)
        return CX_ENOMEM;
    return json_array_append_new(arr, v) ? CX_ENOMEM : 0;
}

static int read_begin(cx_feed *s, cx_storage_tx **tx) { return cx_storage_begin(s->st, false, tx); }

/* An id as the store keeps it: upper case (ids are ULIDs). */
static void norm_id(const char *id, char out[CX_WIRE_MAX_ID + 1]) {
    size_t i = 0;
    for (; id[i] && i < CX_WIRE_MAX_ID; i++)
        out[i] = (char)toupper((unsigned char)id[i]);
    out[i] = '\0';
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The q-th quantile (0..1) of n sorted values, nearest rank. */
static int64_t quantile(const int64_t *v, size_t n, double q) {
    size_t i = (size_t)(q * (double)n + 0.999999);
    if (i < 1)
        i = 1;
    if (i > n)
        i = n;
    return v[i - 1];
}

/* An audit entry as the app shows it; detail parsed back to JSON. */
static json_t *entry_json(const cx_storage_audit *a) {
    json_t *detail = json_loads(a->detail, 0, NULL);
    if (!detail)
        detail = json_string(a->detail);
    return json_pack("{s:I, s:o, s:s, s:s, s:o}", "n", (json_int_t)a->n, "at", iso(a->ts_ms),
                     "actor", a->actor, "action", a->action, "detail", detail);
}

/* --- search -------------------------------------------------------------- */

static bool word_byte(unsigned char c) { return isalnum(c) || c >= 0x80 || c == '_'; }

/* The offset of the first place in body where a word of q starts (ASCII
 * case folded), or 0 when none does. */
static size_t first_hit(const char *body, size_t blen, const char *q) {
    size_t best = blen;
    for (const char *w = q; *w;) {
        while (*w && !word_byte((unsigned char)*w))
            w++;
        const char *e = w;
        while (*e && word_byte((unsigned char)*e))
            e++;
        size_t wl = (size_t)(e - w);
        if (wl >= 2) {
            for (size_t i = 0; i + wl <= blen && i < best; i++)
                if (strncasecmp(body + i, w, wl) == 0 &&
                    (i == 0 || !word_byte((unsigned char)body[i - 1]))) {
                    best = i;
                    break;
                }
        }
        w = e;
    }
    return best == blen ? 0 : best;
}

/* Plain text of at most CX_VIEWS_SNIPPET bytes from body around the first
 * word of q: whitespace runs folded to one space, "…" where text was cut,
 * every cut on a UTF-8 boundary. No markup: the app highlights itself. */
static json_t *snippet(const char *body, const char *q) {
    if (!body)
        return json_string("");
    static const char ELL[] = "\xe2\x80\xa6"; /* … */
    size_t blen = strlen(body);
    size_t hit = q && *q ? first_hit(body, blen, q) : 0;
    size_t start = hit > 60 ? hit - 60 : 0;
    while (start > 0 && ((unsigned char)body[start] & 0xC0) == 0x80)
        start--;
    char out[CX_VIEWS_SNIPPET + 1];
    size_t n = 0, room = CX_VIEWS_SNIPPET - 3; /* keep room for a trailing … */
    if (start > 0) {
        memcpy(out, ELL, 3);
        n = 3;
    }
    bool space = false, cut = false;
    size_t i = start;
    while (i < blen) {
        unsigned char c = (unsigned char)body[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            space = n > 0;
            i++;
            continue;
        }
        size_t len = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        if (i + len > blen)
            break;
        if (n + (space ? 1 : 0) + len > room) {
            cut = true;
            break;
        }
        if (space)
            out[n++] = ' ';
        space = false;
        memcpy(out + n, body + i, len);
        n += len;
        i += len;
    }
    if (cut) {
        memcpy(out + n, ELL, 3);
        n += 3;
    }
    return json_stringn(out, n);
}

typedef struct search_run {
    const char *q;
    json_t *results;
} search_run;

static int add_result(void *ud, const char *json) {
    search_run *run = ud;
    json_t *it = json_loads(json, 0, NULL);
    if (!it)
        return cx_error_set(CX_EIO, "a stored item is damaged");
    json_t *res = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id",
                            jstr_or_null(it, "id"), "kind", jstr_or_null(it, "kind"), "status",
                            jstr_or_null(it, "status"), "subcortex",
                            jstr_or_null(it, "subcortex"), "title", jstr_or_null(it, "title"),
                            "snippet", snippet(jstr(it, "body"), run->q), "author",
                            jstr_or_null(it, "author"), "agent", jstr_or_null(it, "agent"),
                            "updated_at", jstr_or_null(it, "updated_at"));
    json_decref(it);
    return append(run->results, res);
}

typedef struct index_run {
    int limit;
    int64_t pending;
} index_run;

static int index_tx(cx_storage_tx *tx, void *ud) {
    index_run *run = ud;
    return cx_storage_index(tx, run->limit, &run->pending);
}

int cx_views_index(cx_feed *s, int limit, int64_t *pending) {
    *pending = 0;
    if (!cx_storage_indexes_later(s->st))
        return 0; /* PostgreSQL: the index is kept by the writes */
    index_run run = {.limit = limit};
    int r = cx_storage_run(s->st, limit > 0, index_tx, &run);
    *pending = r ? 0 : run.pending;
    return r;
}

/* Brings the index up to date before a search, so that a search sees every
 * item committed before it: at most CX_VIEWS_INDEX_DRAIN rows (the push
 * threads index the rest when idle; a core of that many unindexed rows is
 * one just upgraded). */
static int index_drain(cx_feed *s) {
    int64_t pending = 0, done = 0;
    int r = cx_views_index(s, 0, &pending);
    while (r == 0 && pending > 0 && done < CX_VIEWS_INDEX_DRAIN) {
        r = cx_views_index(s, CX_VIEWS_INDEX_BATCH, &pending);
        done += CX_VIEWS_INDEX_BATCH;
    }
    return r;
}

int cx_views_search(cx_feed *s, const cx_principal *p, const cx_views_search_args *a,
                    json_t **out) {
    if (a->kind && cx_kind_parse(a->kind) == CX_KIND_INVALID)
        return cx_error_set(CX_EINVAL, "kind: unknown kind \"%s\"", a->kind);
    if (a->status && cx_status_parse(a->status) == CX_STATUS_INVALID)
        return cx_error_set(CX_EINVAL, "status: unknown status \"%s\"", a->status);
    if (a->limit < 1 || a->limit > CX_VIEWS_MAX_LIMIT)
        return cx_error_set(CX_EINVAL, "limit: between 1 and %d", CX_VIEWS_MAX_LIMIT);
    search_run run = {.q = a->q, .results = json_array()};
    if (!run.results)
        return CX_ENOMEM;
    cx_storage_query q = {
        .text = a->q, .kind = a->kind, .status = a->status, .subcortex = a->subcortex,
        .limit = a->limit};
    int64_t total = 0;
    cx_storage_tx *tx = NULL;
    int r = index_drain(s);
    if (r == 0)
        r = read_begin(s, &tx);
    if (r == 0) {
        r = cx_storage_search(tx, p->team, &q, add_result, &run, &total);
        cx_storage_rollback(tx);
    }
    if (r) {
        json_decref(run.results);
        return r;
    }
    *out = json_pack("{s:o, s:I}", "results", run.results, "total", (json_int_t)total);
    return *out ? 0 : CX_ENOMEM;
}

/* --- one item -------------------------------------------------------------- */

/* An evidence observation being judged: its files and what made it stale. */
typedef struct evid {
    json_t *it;  /* the item (borrowed from the evidence array) */
    int64_t seq;
    json_t *stale_paths;
} evid;

typedef struct stale_run {
    evid *ev;
    size_t n;
    int64_t last;
    int seen;
    json_t *needles; /* each evidence path as the stored JSON spells it */
} stale_run;

/* True when json may record one of the evidence's paths: its text holds
 * one as a JSON string (items are stored as jansson's compact dumps, so a
 * path is spelt as json_dumps spells it). Most newer items name none and
 * are skipped without being parsed. */
static bool names_a_path(const stale_run *run, const char *json) {
    size_t i;
    json_t *n;
    json_array_foreach(run->needles, i, n)
        if (strstr(json, json_string_value(n)))
            return true;
    return false;
}

/* Adds the JSON spelling of every path the evidence records at a blob. */
static int add_needles(json_t *needles, const json_t *it) {
    json_t *files = json_object_get(json_object_get(it, "provenance"), "files");
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f) {
        json_t *path = json_object_get(f, "path");
        const char *blob = jstr(f, "blob");
        if (!json_is_string(path) || !blob || !*blob)
            continue;
        char *text = json_dumps(path, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!text)
            return CX_ENOMEM;
        int r = append(needles, json_string(text));
        free(text);
        if (r)
            return r;
    }
    return 0;
}

/* The blob a provenance records for path, or NULL. */
static const char *blob_of(const json_t *files, const char *path) {
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f) {
        const char *fp = jstr(f, "path");
        if (fp && strcmp(fp, path) == 0)
            return jstr(f, "blob");
    }
    return NULL;
}

static int stale_check(void *ud, int64_t seq, const char *id, const char *json) {
    stale_run *run = ud;
    run->last = seq;
    run->seen++;
    if (!json || !strstr(json, "\"provenance\"") || !names_a_path(run, json))
        return 0;
    json_t *it = json_loads(json, 0, NULL);
    if (!it)
        return 0; /* a damaged newer item proves nothing */
    json_t *files = json_object_get(json_object_get(it, "provenance"), "files");
    for (size_t e = 0; e < run->n; e++) {
        evid *v = &run->ev[e];
        if (seq <= v->seq || strcmp(id, jstr(v->it, "id") ? jstr(v->it, "id") : "") == 0)
            continue;
        json_t *mine = json_object_get(json_object_get(v->it, "provenance"), "files");
        size_t i;
        json_t *f;
        json_array_foreach(mine, i, f) {
            const char *path = jstr(f, "path"), *blob = jstr(f, "blob");
            if (!path || !blob || !*blob)
                continue;
            const char *now = blob_of(files, path);
            if (!now || !*now || strcmp(now, blob) == 0)
                continue;
            bool have = false;
            size_t k;
            json_t *sp;
            json_array_foreach(v->stale_paths, k, sp)
                have = have || strcmp(json_string_value(sp), path) == 0;
            if (!have && json_array_append_new(v->stale_paths, json_string(path))) {
                json_decref(it);
                return CX_ENOMEM;
            }
        }
    }
    json_decref(it);
    return 0;
}

typedef struct comments_run {
    const char *id;
    json_t *out;
} comments_run;

static int add_comment(void *ud, int64_t seq, const char *id, const char *json) {
    (void)seq;
    (void)id;
    comments_run *run = ud;
    if (!json || !strstr(json, run->id))
        return 0;
    json_t *it = json_loads(json, 0, NULL);
    if (!it)
        return cx_error_set(CX_EIO, "a stored comment is damaged");
    const char *parent = jstr(it, "parent_id");
    if (parent && strcasecmp(parent, run->id) == 0)
        return append(run->out, it);
    json_decref(it);
    return 0;
}

typedef struct history_run {
    const char *id;
    json_t *out; /* newest first while read */
} history_run;

static int add_history(void *ud, const cx_storage_audit *a) {
    history_run *run = ud;
    json_t *e = entry_json(a);
    if (!e)
        return CX_ENOMEM;
    const char *about = jstr(json_object_get(e, "detail"), "item");
    if (!about || strcasecmp(about, run->id) != 0) {
        json_decref(e);
        return 0;
    }
    return append(run->out, e);
}

/* Builds the item view in tx. */
static int item_tx(cx_storage_tx *tx, const cx_principal *p, const char *id, json_t *view) {
    char *text = NULL;
    int64_t seq = 0;
    bool deleted = false;
    evid *ev = NULL;
    size_t nev = 0;
    json_t *needles = NULL;
    int r = cx_storage_item_get(tx, p->team, id, &text, &seq, &deleted);
    if (r == 0 && deleted)
        r = cx_error_set(CX_ENOTFOUND, "no item %s", id);
    if (r)
        goto out;
    json_t *it = json_loads(text, 0, NULL);
    free(text);
    text = NULL;
    if (!it) {
        r = cx_error_set(CX_EIO, "item %s is damaged", id);
        goto out;
    }
    json_object_set_new(view, "item", it);

    /* evidence, then its staleness in one scan of the newer items */
    json_t *evidence = json_object_get(view, "evidence");
    json_t *ids = json_object_get(it, "evidence");
    size_t i;
    json_t *eid;
    ev = calloc(json_array_size(ids) + 1, sizeof *ev);
    if (!ev || !(needles = json_array())) {
        r = CX_ENOMEM;
        goto out;
    }
    int64_t from = INT64_MAX;
    json_array_foreach(ids, i, eid) {
        const char *e = json_string_value(eid);
        if (!e)
            continue;
        char nid[CX_WIRE_MAX_ID + 1];
        norm_id(e, nid);
        char *etext = NULL;
        int64_t eseq = 0;
        bool edel = false;
        json_t *obs = NULL;
        r = cx_storage_item_get(tx, p->team, nid, &etext, &eseq, &edel);
        if (r == CX_ENOTFOUND || (r == 0 && edel) || (r == 0 && !(obs = json_loads(etext, 0, NULL)))) {
            free(etext);
            if ((r = append(evidence, json_pack("{s:s, s:b}", "id", nid, "missing", 1))))
                goto out;
            continue;
        }
        free(etext);
        if (r)
            goto out;
        json_t *paths = json_array();
        json_object_set_new(obs, "stale", json_false());
        if (!paths || json_object_set_new(obs, "stale_paths", paths) ||
            (r = append(evidence, obs))) {
            r = CX_ENOMEM;
            goto out;
        }
        ev[nev++] = (evid){.it = obs, .seq = eseq, .stale_paths = paths};
        if ((r = add_needles(needles, obs)))
            goto out;
        if (eseq < from)
            from = eseq;
    }
    if (json_array_size(needles)) {
        stale_run run = {.ev = ev, .n = nev, .last = from, .needles = needles};
        for (;;) {
            int before = run.seen;
            if ((r = cx_storage_changes(tx, p->team, run.last, STALE_PAGE, stale_check, &run)))
                goto out;
            if (run.seen - before < STALE_PAGE || run.seen >= STALE_SCAN)
                break;
        }
        for (size_t e = 0; e < nev; e++)
            if (json_array_size(ev[e].stale_paths))
                json_object_set_new(ev[e].it, "stale", json_true());
    }

    comments_run cr = {.id = id, .out = json_object_get(view, "comments")};
    if ((r = cx_storage_items(tx, p->team, cx_kind_name(CX_KIND_COMMENT), false, 0, add_comment,
                              &cr)))
        goto out;

    history_run hr = {.id = id, .out = json_array()};
    if (!hr.out) {
        r = CX_ENOMEM;
        goto out;
    }
    r = cx_storage_audit_team(tx, p->team, 0, id, HISTORY_MAX, add_history, &hr);
    json_t *history = json_object_get(view, "history");
    for (size_t k = json_array_size(hr.out); r == 0 && k > 0; k--)
        r = json_array_append(history, json_array_get(hr.out, k - 1)) ? CX_ENOMEM : 0;
    json_decref(hr.out);
out:
    free(text);
    free(ev);
    json_decref(needles);
    return r;
}

int cx_views_item(cx_feed *s, const cx_principal *p, const char *id, json_t **out) {
    char nid[CX_WIRE_MAX_ID + 1];
    norm_id(id, nid);
    json_t *view = json_pack("{s:n, s:[], s:[], s:[]}", "item", "evidence", "comments",
                             "history");
    if (!view)
        return CX_ENOMEM;
    cx_storage_tx *tx = NULL;
    int r = read_begin(s, &tx);
    if (r == 0) {
        r = item_tx(tx, p, nid, view);
        cx_storage_rollback(tx);
    }
    if (r) {
        json_decref(view);
        return r;
    }
    *out = view;
    return 0;
}

/* --- the review queue ------------------------------------------------------- */

static int add_waiting(void *ud, const char *json) {
    json_t *it = json_loads(json, 0, NULL);
    if (!it)
        return cx_error_set(CX_EIO, "a stored draft is damaged");
    return append(ud, it);
}

/* Every waiting draft (at most QUEUE_SCAN), oldest first, into *out;
 * *total counts them all. */
static int waiting_drafts(cx_storage_tx *tx, const char *team, json_t **out, int64_t *total) {
    json_t *all = json_array();
    if (!all)
        return CX_ENOMEM;
    int r = cx_storage_queue(tx, team, QUEUE_SCAN, add_waiting, all, total);
    if (r) {
        json_decref(all);
        return r;
    }
    *out = all;
    return 0;
}

int cx_views_queue(cx_feed *s, const cx_principal *p, const char *subcortex, int limit,
                   json_t **out) {
    if (limit < 1)
        limit = DEFAULT_QUEUE;
    if (limit > CX_WIRE_MAX_QUEUE_LIMIT)
        limit = CX_WIRE_MAX_QUEUE_LIMIT;
    json_t *all = NULL;
    int64_t waiting = 0;
    cx_storage_tx *tx = NULL;
    int r = read_begin(s, &tx);
    if (r == 0) {
        r = waiting_drafts(tx, p->team, &all, &waiting);
        cx_storage_rollback(tx);
    }
    if (r)
        return r;
    json_t *drafts = json_array(), *subs = json_object(), *names = json_array();
    int64_t total = 0;
    size_t i;
    json_t *d;
    if (!drafts || !subs || !names) {
        r = CX_ENOMEM;
        goto out;
    }
    json_array_foreach(all, i, d) {
        const char *sc = jstr(d, "subcortex");
        if (sc && *sc)
            json_object_set_new(subs, sc, json_true());
        if (subcortex && (!sc || strcmp(sc, subcortex) != 0))
            continue;
        total++;
        if ((int64_t)json_array_size(drafts) >= limit)
            continue;
        json_object_set_new(d, "evidence_count",
                            json_integer((json_int_t)json_array_size(json_object_get(d, "evidence"))));
        if (json_array_append(drafts, d)) {
            r = CX_ENOMEM;
            goto out;
        }
    }
    /* jansson keeps object keys in insertion order: sort the names */
    const char *key;
    json_t *v;
    size_t n = json_object_size(subs), k = 0;
    const char **keys = calloc(n + 1, sizeof *keys);
    if (!keys) {
        r = CX_ENOMEM;
        goto out;
    }
    json_object_foreach(subs, key, v) keys[k++] = key;
    qsort(keys, n, sizeof *keys, cmp_str);
    for (k = 0; r == 0 && k < n; k++)
        r = append(names, json_string(keys[k]));
    free(keys);
    if (r)
        goto out;
    /* without a filter, every waiting draft counts (even past QUEUE_SCAN) */
    *out = json_pack("{s:O, s:I, s:O}", "drafts", drafts, "total",
                     (json_int_t)(subcortex ? total : waiting), "subcortices", names);
    if (!*out)
        r = CX_ENOMEM;
out:
    json_decref(all);
    json_decref(drafts);
    json_decref(subs);
    json_decref(names);
    return r;
}

/* --- artifacts --------------------------------------------------------------- */

static int add_item(void *ud, int64_t seq, const char *id, const char *json) {
    (void)seq;
    json_t *it = json_loads(json, 0, NULL);
    if (!it)
        return cx_error_set(CX_EIO, "item %s is damaged", id);
    return append(ud, it);
}

int cx_views_artifacts(cx_feed *s, const cx_principal *p, int limit, json_t **out) {
    if (limit < 1 || limit > CX_VIEWS_MAX_LIMIT)
        return cx_error_set(CX_EINVAL, "limit: between 1 and %d", CX_VIEWS_MAX_LIMIT);
    json_t *arts = json_array();
    if (!arts)
        return CX_ENOMEM;
    cx_storage_tx *tx = NULL;
    int r = read_begin(s, &tx);
    if (r == 0) {
        r = cx_storage_items(tx, p->team, cx_kind_name(CX_KIND_ARTIFACT), true, limit, add_item,
                             arts);
        cx_storage_rollback(tx);
    }
    if (r) {
        json_decref(arts);
        return r;
    }
    *out = json_pack("{s:o}", "artifacts", arts);
    return *out ? 0 : CX_ENOMEM;
}

/* --- the audit log ------------------------------------------------------------ */

/* The verified prefix of the chain: entries 1..n checked, n's hash. One per
 * process, for the database it was checked on (a server has one). */
static struct {
    pthread_mutex_t lock;
    const cx_storage *st;
    int64_t n;
    char hash[65];
} verified = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Verifies what was appended since the last check, in tx. */
static int verify(cx_feed *s, cx_storage_tx *tx, bool *ok, int64_t *bad) {
    pthread_mutex_lock(&verified.lock);
    if (verified.st != s->st) {
        verified.st = s->st;
        verified.n = 0;
        verified.hash[0] = '\0';
    }
    int64_t n = verified.n;
    char hash[65];
    memcpy(hash, verified.hash, sizeof hash);
    int r = cx_audit_verify_from(tx, s->secret, &n, hash, bad);
    *ok = r == 0;
    if (r == 0 || r == CX_ECONFLICT) {
        /* what checked out is kept, up to a broken entry */
        verified.n = n;
        memcpy(verified.hash, hash, sizeof hash);
        r = 0;
    }
    pthread_mutex_unlock(&verified.lock);
    return r;
}

typedef struct audit_run {
    json_t *entries;
    int limit;
    int64_t next;
} audit_run;

static int add_entry(void *ud, const cx_storage_audit *a) {
    audit_run *run = ud;
    if ((int)json_array_size(run->entries) == run->limit) {
        run->next = (int64_t)json_integer_value(
            json_object_get(json_array_get(run->entries, json_array_size(run->entries) - 1), "n"));
        return 0;
    }
    return append(run->entries, entry_json(a));
}

int cx_views_audit(cx_feed *s, const cx_principal *p, int64_t before, int limit, json_t **out) {
    if (limit < 1 || limit > CX_VIEWS_MAX_LIMIT)
        return cx_error_set(CX_EINVAL, "limit: between 1 and %d", CX_VIEWS_MAX_LIMIT);
    audit_run run = {.entries = json_array(), .limit = limit, .next = 0};
    if (!run.entries)
        return CX_ENOMEM;
    bool ok = false;
    int64_t bad = 0, last = 0;
    char head[65];
    cx_storage_tx *tx = NULL;
    int r = read_begin(s, &tx);
    if (r == 0) {
        r = cx_storage_audit_team(tx, p->team, before, NULL, limit + 1, add_entry, &run);
        if (r == 0)
            r = cx_storage_audit_last(tx, &last, head);
        if (r == 0)
            r = verify(s, tx, &ok, &bad);
        cx_storage_rollback(tx);
    }
    if (r) {
        json_decref(run.entries);
        return r;
    }
    *out = json_pack("{s:o, s:o, s:{s:b, s:I, s:o, s:o}}", "entries", run.entries, "next_before",
                     run.next ? json_integer((json_int_t)run.next) : json_null(), "verification",
                     "ok", ok, "entries", (json_int_t)last, "bad",
                     ok ? json_null() : json_integer((json_int_t)bad), "checked_at",
                     iso((int64_t)cx_clock_now_ms()));
    return *out ? 0 : CX_ENOMEM;
}

/* --- team activity ----------------------------------------------------------- */

typedef struct per_day {
    int64_t first_day; /* days since the epoch */
    int days;
    int64_t *count;
} per_day;

static int count_observation(void *ud, int64_t seq, const char *id, const char *json) {
    (void)seq;
    (void)id;
    per_day *pd = ud;
    /* The core stores items compact (feed.c), so the member reads
     * "created_at":"…"; the pattern cannot match inside a string (a quote
     * there is escaped). When it occurs once it is the top-level member
     * and the item need not be parsed (1 s at 100k observations); twice
     * (a nested member of that name), parse. */
    static const char key[] = "\"created_at\":\"";
    const char *at = strstr(json, key);
    if (!at)
        return 0;
    int64_t ms = -1;
    const char *v = at + sizeof key - 1, *end = strchr(v, '"');
    char text[40];
    if (!strstr(v, key) && end && (size_t)(end - v) < sizeof text) {
        memcpy(text, v, (size_t)(end - v));
        text[end - v] = '\0';
        uint64_t t = 0;
        if (cx_clock_parse(text, &t) == 0)
            ms = (int64_t)t;
    } else {
        json_t *it = json_loads(json, 0, NULL);
        ms = it ? jtime(it, "created_at") : -1;
        json_decref(it);
    }
    if (ms < 0)
        return 0;
    int64_t d = ms / DAY_MS - pd->first_day;
    if (d >= 0 && d < pd->days)
        pd->count[d]++;
    return 0;
}

typedef struct decisions {
    int64_t since_ms;
    json_t *list; /* [[item id, decision ms]…] */
} decisions;

#define STOP 1 /* a callback's "enough" */

static int add_decision(void *ud, const cx_storage_audit *a) {
    decisions *d = ud;
    if (a->ts_ms < d->since_ms)
        return STOP; /* newest first: the rest are older */
    if (strcmp(a->action, "review.decision") != 0)
        return 0;
    json_t *detail = json_loads(a->detail, 0, NULL);
    const char *item = jstr(detail, "item");
    int r = item ? append(d->list, json_pack("[s, I]", item, (json_int_t)a->ts_ms)) : 0;
    json_decref(detail);
    return r;
}

/* {"count","oldest_age_s","median_age_s"} of the waiting drafts. */
static json_t *waiting_json(const json_t *drafts, int64_t waiting, int64_t now_ms) {
    size_t n = json_array_size(drafts), k = 0;
    int64_t *age = calloc(n + 1, sizeof *age);
    if (!age)
        return NULL;
    size_t i;
    json_t *d;
    json_array_foreach(drafts, i, d) {
        int64_t t = jtime(d, "created_at");
        if (t >= 0)
            age[k++] = (now_ms > t ? now_ms - t : 0) / 1000;
    }
    qsort(age, k, sizeof *age, cmp_i64);
    json_t *o = json_pack("{s:I, s:o, s:o}", "count", (json_int_t)waiting, "oldest_age_s",
                          k ? json_integer(age[k - 1]) : json_null(), "median_age_s",
                          k ? json_integer(quantile(age, k, 0.5)) : json_null());
    free(age);
    return o;
}

/* {"count","median_s","p90_s"}: from each decided draft's created_at to
 * the decision. */
static int latency_json(cx_storage_tx *tx, const char *team, const json_t *list, json_t **out) {
    size_t n = json_array_size(list), k = 0;
    int64_t *lat = calloc(n + 1, sizeof *lat);
    if (!lat)
        return CX_ENOMEM;
    int r = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(list, i);
        char nid[CX_WIRE_MAX_ID + 1];
        norm_id(json_string_value(json_array_get(e, 0)), nid);
        int64_t at = (int64_t)json_integer_value(json_array_get(e, 1));
        char *text = NULL;
        int64_t seq = 0;
        bool deleted = false;
        r = cx_storage_item_get(tx, team, nid, &text, &seq, &deleted);
        if (r == CX_ENOTFOUND) {
            r = 0;
            continue;
        }
        if (r)
            break;
        json_t *it = deleted ? NULL : json_loads(text, 0, NULL);
        free(text);
        int64_t t = it ? jtime(it, "created_at") : -1;
        json_decref(it);
        if (t >= 0)
            lat[k++] = (at > t ? at - t : 0) / 1000;
    }
    if (r == 0) {
        qsort(lat, k, sizeof *lat, cmp_i64);
        *out = json_pack("{s:I, s:o, s:o}", "count", (json_int_t)k, "median_s",
                         k ? json_integer(quantile(lat, k, 0.5)) : json_null(), "p90_s",
                         k ? json_integer(quantile(lat, k, 0.9)) : json_null());
        if (!*out)
            r = CX_ENOMEM;
    }
    free(lat);
    return r;
}

typedef struct ws_run {
    int64_t last;
    json_t *out;
} ws_run;

static int add_workspace(void *ud, const cx_storage_sync *y) {
    ws_run *run = ud;
    int64_t lag = run->last > y->cursor ? run->last - y->cursor : 0;
    return append(run->out, json_pack("{s:s, s:s, s:o, s:I, s:I}", "workspace", y->workspace,
                                      "principal", y->principal, "last_sync_at", iso(y->at_ms),
                                      "cursor", (json_int_t)y->cursor, "lag", (json_int_t)lag));
}

static int activity_tx(cx_storage_tx *tx, const cx_principal *p, int days, int64_t now_ms,
                       json_t *view) {
    per_day pd = {.first_day = now_ms / DAY_MS - (days - 1), .days = days};
    json_t *drafts = NULL, *lat = NULL;
    decisions dec = {.since_ms = pd.first_day * DAY_MS, .list = json_array()};
    ws_run ws = {.out = json_array()};
    int r = 0;
    if (!(pd.count = calloc((size_t)days, sizeof *pd.count)) || !dec.list || !ws.out) {
        r = CX_ENOMEM;
        goto out;
    }
    if ((r = cx_storage_items(tx, p->team, cx_kind_name(CX_KIND_OBSERVATION), false, 0,
                              count_observation, &pd)))
        goto out;
    json_t *per = json_array();
    json_object_set_new(view, "observations_per_day", per);
    for (int d = 0; d < days && r == 0; d++) {
        char day[CX_ISO_LEN];
        cx_clock_format((uint64_t)((pd.first_day + d) * DAY_MS), day);
        day[10] = '\0';
        r = append(per, json_pack("{s:s, s:I}", "day", day, "count", (json_int_t)pd.count[d]));
    }
    int64_t waiting = 0;
    if (r || (r = waiting_drafts(tx, p->team, &drafts, &waiting)))
        goto out;
    json_t *w = waiting_json(drafts, waiting, now_ms);
    if (!w || json_object_set_new(view, "drafts_waiting", w)) {
        r = CX_ENOMEM;
        goto out;
    }
    r = cx_storage_audit_team(tx, p->team, 0, NULL, 0, add_decision, &dec);
    if (r == STOP)
        r = 0;
    if (r || (r = latency_json(tx, p->team, dec.list, &lat)))
        goto out;
    json_object_set_new(view, "approval_latency", lat);
    if ((r = cx_storage_seq_last(tx, p->team, &ws.last)) ||
        (r = cx_storage_sync_list(tx, p->team, add_workspace, &ws)))
        goto out;
    json_object_set(view, "workspaces", ws.out);
out:
    free(pd.count);
    json_decref(drafts);
    json_decref(dec.list);
    json_decref(ws.out);
    return r;
}

int cx_views_activity(cx_feed *s, const cx_principal *p, int days, int64_t now_ms,
                      json_t **out) {
    if (days < 1 || days > 365)
        return cx_error_set(CX_EINVAL, "days: between 1 and 365");
    json_t *view = json_object();
    if (!view)
        return CX_ENOMEM;
    cx_storage_tx *tx = NULL;
    int r = read_begin(s, &tx);
    if (r == 0) {
        r = activity_tx(tx, p, days, now_ms, view);
        cx_storage_rollback(tx);
    }
    if (r) {
        json_decref(view);
        return r;
    }
    *out = view;
    return 0;
}

/* --- routes and parameters ---------------------------------------------------- */

#define ROUTE_ITEMS "/v1/items/"

static bool ulid_chars(const char *s, size_t n) {
    static const char ok[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZabcdefghjkmnpqrstvwxyz";
    for (size_t i = 0; i < n; i++)
        if (!s[i] || !strchr(ok, s[i]))
            return false;
    return true;
}

cx_views_route cx_views_match(const char *path, char *arg, size_t cap) {
    static const struct {
        const char *path;
        cx_views_route v;
    } fixed[] = {
        {"/v1/search", CX_VIEWS_SEARCH},       {"/v1/artifacts", CX_VIEWS_ARTIFACTS},
        {"/v1/audit", CX_VIEWS_AUDIT},         {"/v1/team/activity", CX_VIEWS_ACTIVITY},
        {CX_ROUTE_REVIEW_QUEUE, CX_VIEWS_QUEUE},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (strcmp(path, fixed[i].path) == 0)
            return fixed[i].v;
    size_t pre = strlen(ROUTE_ITEMS);
    if (strlen(path) == pre + CX_WIRE_ULID_LEN && strncmp(path, ROUTE_ITEMS, pre) == 0 &&
        ulid_chars(path + pre, CX_WIRE_ULID_LEN) && cap > CX_WIRE_ULID_LEN) {
        snprintf(arg, cap, "%s", path + pre);
        return CX_VIEWS_ITEM;
    }
    return CX_VIEWS_NONE;
}

/* A text parameter: NULL when absent or empty; CX_EINVAL over max bytes. */
static int text_param(const char *(*param)(void *, const char *), void *ud, const char *name,
                      size_t max, const char **out) {
    const char *v = param(ud, name);
    *out = NULL;
    if (!v || !*v)
        return 0;
    size_t n = strlen(v);
    if (n > max)
        return cx_error_set(CX_EINVAL, "%s: at most %zu bytes", name, max);
    if (!cx_utf8_valid(v, n))
        return cx_error_set(CX_EINVAL, "%s: not UTF-8", name);
    *out = v;
    return 0;
}

/* An integer parameter in [min, max]; dflt when absent or empty. */
static int int_param(const char *(*param)(void *, const char *), void *ud, const char *name,
                     long long min, long long max, long long dflt, long long *out) {
    const char *v = param(ud, name);
    *out = dflt;
    if (!v || !*v)
        return 0;
    if (strlen(v) > CX_VIEWS_MAX_PARAM)
        return cx_error_set(CX_EINVAL, "%s: at most %d bytes", name, CX_VIEWS_MAX_PARAM);
    for (const char *c = v; *c; c++)
        if (*c < '0' || *c > '9')
            return cx_error_set(CX_EINVAL, "%s: an integer between %lld and %lld", name, min,
                                max);
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    if (*end || n < min || n > max)
        return cx_error_set(CX_EINVAL, "%s: an integer between %lld and %lld", name, min, max);
    *out = n;
    return 0;
}

int cx_views_get(cx_feed *s, const cx_principal *p, cx_views_route v, const char *arg,
                 const char *(*param)(void *ud, const char *name), void *ud, json_t **out) {
    long long limit = 0, n = 0;
    int r = 0;
    switch (v) {
    case CX_VIEWS_SEARCH: {
        cx_views_search_args a = {0};
        if ((r = text_param(param, ud, "q", CX_VIEWS_MAX_Q, &a.q)) ||
            (r = text_param(param, ud, "kind", CX_VIEWS_MAX_PARAM, &a.kind)) ||
            (r = text_param(param, ud, "status", CX_VIEWS_MAX_PARAM, &a.status)) ||
            (r = text_param(param, ud, "subcortex", CX_VIEWS_MAX_PARAM, &a.subcortex)) ||
            (r = int_param(param, ud, "limit", 1, CX_VIEWS_MAX_LIMIT, CX_VIEWS_DEFAULT_LIMIT,
                           &limit)))
            return r;
        a.limit = (int)limit;
        return cx_views_search(s, p, &a, out);
    }
    case CX_VIEWS_ITEM:
        return cx_views_item(s, p, arg, out);
    case CX_VIEWS_QUEUE: {
        const char *sc = NULL;
        /* as before: a limit over the most is clamped, not refused */
        if ((r = text_param(param, ud, "subcortex", CX_VIEWS_MAX_PARAM, &sc)) ||
            (r = int_param(param, ud, "limit", 1, 1000000000, 0, &limit)))
            return r;
        return cx_views_queue(s, p, sc, (int)limit, out);
    }
    case CX_VIEWS_ARTIFACTS:
        if ((r = int_param(param, ud, "limit", 1, CX_VIEWS_MAX_LIMIT, CX_VIEWS_DEFAULT_LIMIT,
                           &limit)))
            return r;
        return cx_views_artifacts(s, p, (int)limit, out);
    case CX_VIEWS_AUDIT:
        if ((r = int_param(param, ud, "before", 1, INT64_MAX, 0, &n)) ||
            (r = int_param(param, ud, "limit", 1, CX_VIEWS_MAX_LIMIT, CX_VIEWS_DEFAULT_LIMIT,
                           &limit)))
            return r;
        return cx_views_audit(s, p, n, (int)limit, out);
    case CX_VIEWS_ACTIVITY:
        if ((r = int_param(param, ud, "days", 1, 365, 30, &n)))
            return r;
        return cx_views_activity(s, p, (int)n, (int64_t)cx_clock_now_ms(), out);
    default:
        return cx_error_set(CX_ENOTFOUND, "no such endpoint");
    }
}

/* --- the sync record ------------------------------------------------------------ */

int64_t cx_views_page_next(const char *page, size_t len) {
    static const char KEY[] = "\"next\":";
    size_t k = sizeof KEY - 1;
    for (size_t i = len >= k ? len - k + 1 : 0; i-- > 0;)
        if (memcmp(page + i, KEY, k) == 0) {
            int64_t n = 0;
            size_t j = i + k;
            if (j >= len || page[j] < '0' || page[j] > '9')
                return -1;
            for (; j < len && page[j] >= '0' && page[j] <= '9' && n < INT64_MAX / 10; j++)
                n = n * 10 + (page[j] - '0');
            return n;
        }
    return -1;
}

/* The throttle: the last time each (team, key, workspace) was written,
 * in a small table; a triple that is not there (never seen, or pushed out
 * by RECENT_SLOTS others since) is written again. */
#define RECENT_SLOTS 256
#define RECORD_EVERY_MS 60000

static struct {
    pthread_mutex_t lock;
    struct {
        char who[CX_TEAM_MAX + CX_KEYID_LEN + CX_VIEWS_MAX_WORKSPACE + 3];
        uint64_t at_ms; /* monotonic */
    } slot[RECENT_SLOTS];
} recent = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* True when the triple was recorded within the last minute; otherwise
 * marks it recorded now and returns false. */
static bool throttled(const char *who, uint64_t now) {
    uint64_t h = 1469598103934665603ULL;
    for (const char *c = who; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ULL;
    size_t i = (size_t)(h % RECENT_SLOTS);
    pthread_mutex_lock(&recent.lock);
    bool same = strcmp(recent.slot[i].who, who) == 0;
    bool skip = same && now - recent.slot[i].at_ms < RECORD_EVERY_MS;
    if (!skip) {
        snprintf(recent.slot[i].who, sizeof recent.slot[i].who, "%s", who);
        recent.slot[i].at_ms = now;
    }
    pthread_mutex_unlock(&recent.lock);
    return skip;
}

static bool workspace_ok(const char *w) {
    size_t n = w ? strlen(w) : 0;
    if (n < 1 || n > CX_VIEWS_MAX_WORKSPACE)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)w[i]) && w[i] != '.' && w[i] != '_' && w[i] != '-')
            return false;
    return true;
}

int cx_views_note_pull(cx_feed *s, const cx_principal *p, const char *workspace, int64_t cursor) {
    if (!workspace_ok(workspace) || cursor < 0)
        return 0;
    char who[CX_TEAM_MAX + CX_KEYID_LEN + CX_VIEWS_MAX_WORKSPACE + 3];
    snprintf(who, sizeof who, "%s/%s/%s", p->team, p->key_id, workspace);
    if (throttled(who, cx_clock_mono_ms()))
        return 0;
    cx_storage_sync y = {.key_id = p->key_id, .principal = p->name, .workspace = workspace,
                         .at_ms = (int64_t)cx_clock_now_ms(), .cursor = cursor};
    cx_storage_tx *tx = NULL;
    int r = cx_storage_begin(s->st, true, &tx);
    if (r)
        return r;
    return cx_storage_end(tx, cx_storage_sync_put(tx, p->team, &y));
}
