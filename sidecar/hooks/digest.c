/* SPDX-License-Identifier: Apache-2.0 */
/* `cortex hook stop` (see hooks.h): the session's new observations,
 * grouped by file and tag, made into one digest draft for review (a later
 * stop of the same session revises it). The body's first line says what
 * the digest is about (its first observations' titles), since snippets and
 * briefings show a body's first bytes. */
#include "hook.h"

#include "util/clock.h"
#include "util/error.h"
#include "util/fsx.h"
#include "util/ulid.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One observation of the digest (fields borrowed from `item`). */
typedef struct obs {
    json_t *item; /* cx_store_get's envelope, owned */
    const char *id;
} obs;

typedef struct obsv {
    obs *v;
    size_t n, cap;
} obsv;

static bool obsv_take(obsv *l, json_t *item) {
    if (l->n == l->cap) {
        size_t c = l->cap ? l->cap * 2 : 64;
        obs *v = realloc(l->v, c * sizeof *v);
        if (!v) {
            json_decref(item);
            return false;
        }
        l->v = v;
        l->cap = c;
    }
    l->v[l->n].item = item;
    l->v[l->n].id = cx_hook_jstr(item, "id");
    l->n++;
    return true;
}

static void obsv_clear(obsv *l) {
    for (size_t i = 0; i < l->n; i++)
        json_decref(l->v[i].item);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int obs_by_id(const void *a, const void *b) {
    return strcmp(((const obs *)a)->id, ((const obs *)b)->id);
}

static bool id_in(const json_t *arr, const char *id) {
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        const char *s = json_string_value(v);
        if (s && strcmp(s, id) == 0)
            return true;
    }
    return false;
}

/* An array of the valid id strings in `v` (a JSON value from a session
 * file), the newest `keep` when there are more. */
static json_t *id_array(const json_t *v, size_t keep) {
    json_t *a = json_array();
    size_t n = json_array_size(v), from = n > keep ? n - keep : 0;
    for (size_t i = from; a && i < n; i++) {
        const char *s = json_string_value(json_array_get(v, i));
        if (s && strlen(s) == CX_ULID_LEN)
            json_array_append_new(a, json_string(s));
    }
    return a;
}

/* The item when it counts for the session: an observation, shared, by this
 * workspace's user, created at or after since_ms. NULL otherwise. */
static json_t *session_observation(hook *h, const char *id, uint64_t since_ms) {
    json_t *it = NULL;
    if (cx_store_get(h->store, id, &it) != 0)
        return NULL;
    const char *kind = cx_hook_jstr(it, "kind"), *vis = cx_hook_jstr(it, "visibility"),
               *author = cx_hook_jstr(it, "author"), *created = cx_hook_jstr(it, "created_at");
    uint64_t ms = 0;
    if (kind && strcmp(kind, "observation") == 0 && vis && strcmp(vis, "shared") == 0 &&
        author && strcmp(author, h->author) == 0 && created && cx_clock_parse(created, &ms) == 0 &&
        ms >= since_ms && cx_hook_jstr(it, "id"))
        return it;
    json_decref(it);
    return NULL;
}

/* Observations of the session recorded since `from_ms` that no digest of
 * it covers yet. The store lists at most RECENT_PAGE items per call, newest
 * first; Claude Code runs Stop after every turn, so that is per turn.
 * Returns false when the deadline passed (nothing is kept then). */
static bool new_observations(hook *h, uint64_t start_ms, uint64_t from_ms, const json_t *covered1,
                             const json_t *covered2, obsv *out) {
    char since[CX_ISO_LEN];
    cx_clock_format(from_ms > 0 ? from_ms - 1 : 0, since);
    json_t *res = NULL;
    cx_recent_query q = {.since = since, .kind = "observation", .limit = RECENT_PAGE,
                         .max_tokens = LIST_BYTES / CX_STORE_TOKEN_BYTES};
    cx_error_clear();
    int r = cx_store_recent(h->store, &q, &res);
    if (r != 0) {
        cx_hook_say(h, "cannot list the session's observations: %s",
            cx_error_code() ? cx_error_last() : cx_strerror(r));
        return false;
    }
    json_t *items = json_object_get(res, "items");
    /* A full page may hide older observations; when its oldest one is
     * already covered, so are (as a rule) those before it. */
    size_t got = json_array_size(items);
    bool full = got == RECENT_PAGE || json_is_true(json_object_get(res, "truncated"));
    const char *oldest = full && got ? cx_hook_jstr(json_array_get(items, got - 1), "id") : NULL;
    if (oldest && !id_in(covered1, oldest) && !id_in(covered2, oldest))
        cx_hook_say(h, "more than %d observations since the last digest; the digest takes the newest %d",
            RECENT_PAGE, RECENT_PAGE);
    size_t i;
    json_t *s;
    bool ok = true;
    json_array_foreach(items, i, s) {
        const char *id = cx_hook_jstr(s, "id"), *author = cx_hook_jstr(s, "author");
        if (!id || !author || strcmp(author, h->author) != 0 || id_in(covered1, id) ||
            id_in(covered2, id))
            continue;
        if (cx_hook_late(h)) {
            ok = false;
            break;
        }
        json_t *it = session_observation(h, id, start_ms);
        if (it && !obsv_take(out, it)) {
            ok = false;
            break;
        }
    }
    json_decref(res);
    return ok;
}

/* Counting strings: (key, observation index) pairs sorted by key. */
typedef struct pair {
    const char *key;
    size_t obs;
} pair;

static int pair_cmp(const void *a, const void *b) {
    const pair *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->obs > y->obs) - (x->obs < y->obs);
}

typedef struct group {
    const char *key;
    size_t first, count; /* a run in the sorted pairs */
} group;

static int group_cmp(const void *a, const void *b) {
    const group *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return strcmp(x->key, y->key);
}

/* Pairs of every string in member `field` (an array) of each observation,
 * grouped by string, most frequent first. */
static int tally(const obsv *ov, const char *field, pair **pairs_out, group **groups_out,
                 size_t *ngroups) {
    size_t np = 0, cap = 0;
    pair *pairs = NULL;
    for (size_t i = 0; i < ov->n; i++) {
        json_t *arr = json_object_get(ov->v[i].item, field);
        size_t j;
        json_t *v;
        json_array_foreach(arr, j, v) {
            const char *s = json_string_value(v);
            if (!s || !*s)
                continue;
            if (np == cap) {
                size_t c = cap ? cap * 2 : 64;
                pair *q = realloc(pairs, c * sizeof *q);
                if (!q) {
                    free(pairs);
                    return CX_ENOMEM;
                }
                pairs = q;
                cap = c;
            }
            pairs[np++] = (pair){s, i};
        }
    }
    if (np)
        qsort(pairs, np, sizeof *pairs, pair_cmp);
    group *groups = calloc(np ? np : 1, sizeof *groups);
    if (!groups) {
        free(pairs);
        return CX_ENOMEM;
    }
    size_t ng = 0;
    for (size_t i = 0; i < np;) {
        size_t j = i;
        size_t distinct = 0;
        while (j < np && strcmp(pairs[j].key, pairs[i].key) == 0) {
            if (j == i || pairs[j].obs != pairs[j - 1].obs)
                distinct++;
            j++;
        }
        groups[ng++] = (group){pairs[i].key, i, distinct};
        i = j;
    }
    qsort(groups, ng, sizeof *groups, group_cmp);
    *pairs_out = pairs;
    *groups_out = groups;
    *ngroups = ng;
    return 0;
}

/* The label of one observation: its title, else its first line, on one
 * line (malloc'd; NULL when out of memory). */
static char *obs_label(const obs *o) {
    const char *t = cx_hook_jstr(o->item, "title");
    if (!cx_hook_blank(t))
        return cx_hook_one_line(t, TITLE_MAX, false);
    const char *body = cx_hook_jstr(o->item, "body");
    if (!body)
        body = "";
    while (*body == '\n' || *body == '\r' || *body == ' ' || *body == '\t')
        body++;
    size_t n = strcspn(body, "\n");
    char *first = strndup(body, n > 4096 ? 4096 : n);
    char *label = first ? cx_hook_one_line(first, TITLE_MAX, false) : NULL;
    free(first);
    return label;
}

/* The line of one observation: "- <title or first line> (<id>)". */
static char *obs_line(const obs *o) {
    char *label = obs_label(o);
    char *line = label ? cx_hook_concat("- ", label, " (", o->id, ")\n", (const char *)NULL) : NULL;
    free(label);
    return line;
}

/* The body's first line, what the digest is about: the labels of its
 * first observations, "; " between them, within ABOUT_MAX bytes, "and N
 * more" for the rest. Search snippets and the session briefing show a
 * body's first bytes, so this is what a reader sees of the digest. */
#define ABOUT_MAX 240
static int about_line(const obsv *ov, text *body) {
    char line[ABOUT_MAX + 64];
    size_t len = 0, shown = 0;
    line[0] = '\0';
    for (; shown < ov->n; shown++) {
        char *label = obs_label(&ov->v[shown]);
        if (!label)
            return CX_ENOMEM;
        size_t ll = strlen(label), sep = len ? 2 : 0;
        if (ll == 0) { /* nothing to say of this one */
            free(label);
            continue;
        }
        bool fits = len + sep + ll <= ABOUT_MAX;
        if (fits) {
            snprintf(line + len, sizeof line - len, "%s%s", sep ? "; " : "", label);
            len += sep + ll;
        }
        free(label);
        if (!fits)
            break;
    }
    if (len == 0) /* a first label too long for the line: the title says enough */
        return 0;
    if (shown < ov->n)
        snprintf(line + len, sizeof line - len, "; and %zu more", ov->n - shown);
    len = strlen(line);
    snprintf(line + len, sizeof line - len, "\n\n");
    cx_hook_text_put(body, line); /* out of memory shows in body->oom */
    return 0;
}

typedef struct digest {
    char title[CX_STORE_MAX_TITLE + 1];
    text body;
    const char **tags, **files, **evidence;
    size_t ntags, nfiles, nevidence;
    const char *subcortex;
    pair *fpairs, *tpairs;
    group *fgroups, *tgroups;
    size_t nfg, ntg;
} digest;

static void digest_clear(digest *d) {
    cx_buf_free(&d->body.b);
    free(d->tags);
    free(d->files);
    free(d->evidence);
    free(d->fpairs);
    free(d->tpairs);
    free(d->fgroups);
    free(d->tgroups);
}

/* Adds a line to the body unless the body is full; counts what is left out. */
static void body_line(digest *d, char *line, size_t *left_out) {
    /* lines stop 64 bytes short of the cap: room for "(N more not shown)" */
    if (!line || strlen(line) > BODY_MAX - 64 - d->body.b.len || !cx_hook_text_put(&d->body, line))
        (*left_out)++;
    free(line);
}

static int make_digest(hook *h, obsv *ov, uint64_t start_ms, uint64_t now_ms, digest *d) {
    qsort(ov->v, ov->n, sizeof *ov->v, obs_by_id); /* ULIDs: oldest first */
    int r;
    if ((r = tally(ov, "files", &d->fpairs, &d->fgroups, &d->nfg)) ||
        (r = tally(ov, "tags", &d->tpairs, &d->tgroups, &d->ntg)))
        return r;

    /* the most common subcortex; ties go to the earliest observation's */
    size_t best = 0, best_n = 0;
    for (size_t i = 0; i < ov->n; i++) {
        const char *sc = cx_hook_jstr(ov->v[i].item, "subcortex");
        size_t c = 0;
        for (size_t j = 0; sc && j < ov->n; j++) {
            const char *o = cx_hook_jstr(ov->v[j].item, "subcortex");
            c += o && strcmp(o, sc) == 0;
        }
        if (c > best_n) {
            best_n = c;
            best = i;
        }
    }
    d->subcortex = ov->n ? cx_hook_jstr(ov->v[best].item, "subcortex") : NULL;

    /* title: "Session digest: N observations on a.c, b.c and 3 more files" */
    int k = snprintf(d->title, sizeof d->title, "Session digest: %zu observation%s on ", ov->n,
                     ov->n == 1 ? "" : "s");
    size_t tl = (size_t)k, room = CX_STORE_MAX_TITLE;
    if (d->nfg == 0) {
        char *sc = cx_hook_one_line(d->subcortex ? d->subcortex : CX_STORE_DEFAULT_SUBCORTEX,
                            room - tl, false);
        if (!sc)
            return CX_ENOMEM;
        snprintf(d->title + tl, sizeof d->title - tl, "%s", sc);
        free(sc);
    } else {
        size_t shown = 0;
        for (; shown < d->nfg; shown++) {
            char *f = cx_hook_one_line(d->fgroups[shown].key, room, false);
            if (!f)
                return CX_ENOMEM;
            size_t fl = strlen(f), sep = shown ? 2 : 0;
            size_t tail = shown + 1 < d->nfg ? 24 : 0; /* " and NNNN more files" */
            if (tl + sep + fl + tail > room) {
                if (shown == 0) { /* one long path: cut it */
                    char *cut = cx_hook_one_line(d->fgroups[0].key, room - tl - 24, false);
                    if (cut) {
                        snprintf(d->title + tl, sizeof d->title - tl, "%s", cut);
                        tl = strlen(d->title);
                        shown = 1;
                    }
                    free(cut);
                }
                free(f);
                break;
            }
            snprintf(d->title + tl, sizeof d->title - tl, "%s%s", sep ? ", " : "", f);
            tl += sep + fl;
            free(f);
        }
        if (shown < d->nfg)
            snprintf(d->title + tl, sizeof d->title - tl, " and %zu more file%s", d->nfg - shown,
                     d->nfg - shown == 1 ? "" : "s");
    }

    /* body */
    cx_hook_text_init(&d->body, BODY_MAX);
    char start_iso[CX_ISO_LEN], now_iso[CX_ISO_LEN];
    cx_clock_format(start_ms, start_iso);
    cx_clock_format(now_ms, now_iso);
    char *sid = cx_hook_one_line(h->session_id ? h->session_id : "unknown", 128, true);
    char head[512];
    snprintf(head, sizeof head,
             "Observations recorded during agent session `%s` (%s to %s), grouped by file. "
             "Made by `cortex hook stop` without a language model: approve it to keep it as "
             "canon, request changes, or reject it.\n",
             sid ? sid : "?", start_iso, now_iso);
    free(sid);
    if ((r = about_line(ov, &d->body)))
        return r;
    cx_hook_text_put(&d->body, head);
    size_t left_out = 0;
    cx_hook_text_put(&d->body, "\n## By file\n");
    for (size_t g = 0; g < d->nfg; g++) {
        char *f = cx_hook_one_line(d->fgroups[g].key, 512, true);
        char cnt[32];
        snprintf(cnt, sizeof cnt, "` (%zu)\n", d->fgroups[g].count);
        body_line(d, f ? cx_hook_concat("\n### `", f, cnt, (const char *)NULL) : NULL, &left_out);
        free(f);
        const pair *p = d->fpairs + d->fgroups[g].first;
        for (size_t i = 0; i < d->fgroups[g].count; p++) {
            if (i > 0 && p->obs == p[-1].obs)
                continue; /* a file named twice in one observation */
            body_line(d, obs_line(&ov->v[p->obs]), &left_out);
            i++;
        }
    }
    size_t other = 0;
    for (size_t i = 0; i < ov->n; i++)
        other += json_array_size(json_object_get(ov->v[i].item, "files")) == 0;
    if (other) {
        char hd[48];
        snprintf(hd, sizeof hd, "\n### Other (%zu)\n", other);
        body_line(d, strdup(hd), &left_out);
        for (size_t i = 0; i < ov->n; i++)
            if (json_array_size(json_object_get(ov->v[i].item, "files")) == 0)
                body_line(d, obs_line(&ov->v[i]), &left_out);
    }
    if (d->ntg) {
        body_line(d, strdup("\n## Tags\n\n"), &left_out);
        for (size_t g = 0; g < d->ntg; g++) {
            char *t = cx_hook_one_line(d->tgroups[g].key, CX_STORE_MAX_TAG, true);
            char cnt[32];
            snprintf(cnt, sizeof cnt, "`: %zu\n", d->tgroups[g].count);
            body_line(d, t ? cx_hook_concat("- `", t, cnt, (const char *)NULL) : NULL, &left_out);
            free(t);
        }
    }
    if (left_out) {
        char more[64];
        snprintf(more, sizeof more, "\n(%zu more not shown)\n", left_out);
        cx_hook_text_put(&d->body, more);
    }
    if (d->body.oom || !d->body.b.data)
        return CX_ENOMEM;

    /* tags, files, evidence */
    d->tags = calloc(CX_STORE_MAX_TAGS, sizeof *d->tags);
    d->files = calloc(CX_STORE_MAX_FILES, sizeof *d->files);
    d->evidence = calloc(CX_STORE_MAX_EVIDENCE, sizeof *d->evidence);
    if (!d->tags || !d->files || !d->evidence)
        return CX_ENOMEM;
    d->tags[d->ntags++] = "session-digest";
    for (size_t g = 0; g < d->ntg && d->ntags < CX_STORE_MAX_TAGS; g++)
        if (strcmp(d->tgroups[g].key, "session-digest") != 0)
            d->tags[d->ntags++] = d->tgroups[g].key;
    for (size_t g = 0; g < d->nfg && d->nfiles < CX_STORE_MAX_FILES; g++)
        d->files[d->nfiles++] = d->fgroups[g].key;
    for (size_t i = 0; i < ov->n && d->nevidence < CX_STORE_MAX_EVIDENCE; i++)
        d->evidence[d->nevidence++] = ov->v[i].id;
    return 0;
}

/* Gets the observations with the given ids (those still in the store). */
static bool fetch_ids(hook *h, const json_t *ids, obsv *out) {
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v) {
        if (cx_hook_late(h))
            return false;
        json_t *it = NULL;
        const char *id = json_string_value(v);
        if (id && cx_store_get(h->store, id, &it) == 0 && cx_hook_jstr(it, "id")) {
            if (!obsv_take(out, it))
                return false;
        } else {
            json_decref(it);
        }
    }
    return true;
}

static json_t *ids_of(const obsv *ov) {
    json_t *a = json_array();
    for (size_t i = 0; a && i < ov->n; i++)
        json_array_append_new(a, json_string(ov->v[i].id));
    return a;
}

/* Makes the digest of ov (replacing what d and *prov held) and the
 * provenance of its files. */
static int build_digest(hook *h, obsv *ov, uint64_t start, uint64_t now, digest *d,
                        json_t **prov) {
    digest_clear(d);
    memset(d, 0, sizeof *d);
    json_decref(*prov);
    *prov = NULL;
    int r = make_digest(h, ov, start, now, d);
    if (r != 0) {
        cx_hook_say(h, "stop: out of memory making the digest");
        return r;
    }
    cx_prov *p = !cx_hook_late(h) ? cx_hook_get_prov(h) : NULL;
    cx_strv files = {d->files, d->nfiles};
    if (p && cx_prov_capture(p, &files, prov) != 0) {
        cx_hook_say(h, "stop: %s; the digest has no provenance", cx_error_last());
        *prov = NULL;
    }
    return 0;
}

static cx_note note_of(const digest *d, const json_t *prov) {
    return (cx_note){
        .title = d->title,
        .body = d->body.b.data,
        .subcortex = d->subcortex,
        .tags = {d->tags, d->ntags},
        .files = {d->files, d->nfiles},
        .evidence = {d->evidence, d->nevidence},
        .provenance = prov,
    };
}

int cx_hook_stop(hook *h) {
    int r;
    uint64_t now = cx_clock_now_ms();
    json_t *sess = NULL, *draft_obs = NULL, *earlier = NULL, *res = NULL, *prov = NULL;
    json_t *last = NULL;
    char *path = NULL, *last_path = NULL;
    obsv ov = {0};
    digest d = {0};
    char draft_id[CX_ULID_LEN + 1] = "";

    if (!h->input) {
        cx_hook_say(h, "stop: no hook input on stdin; nothing to do");
        return 0;
    }
    if (!cx_hook_find_workspace(h))
        return 0;
    last_path = cx_fs_join(h->sessions_dir, LAST_DIGEST);
    path = h->sid[0] ? cx_hook_session_path(h, h->sid) : NULL;
    if (!last_path || (h->sid[0] && !path)) {
        cx_hook_say(h, "out of memory");
        goto out;
    }
    sess = path ? cx_hook_load_state(h, path) : NULL;
    uint64_t start = sess ? cx_hook_json_ms(sess, "started_ms") : 0;
    if (!start) { /* no session-start seen: since the last digest, at most a day back */
        last = cx_hook_load_state(h, last_path);
        uint64_t floor = now > FALLBACK_MS ? now - FALLBACK_MS : 0, at = cx_hook_json_ms(last, "at_ms");
        start = at > floor ? at : floor;
        json_decref(sess);
        char iso[CX_ISO_LEN];
        cx_clock_format(start, iso);
        sess = json_pack("{s:s?, s:s, s:I, s:b}", "session_id", h->session_id, "started_at", iso,
                         "started_ms", (json_int_t)start, "inferred", 1);
        if (!sess) {
            cx_hook_say(h, "out of memory");
            goto out;
        }
    }
    const char *did = cx_hook_jstr(sess, "draft_id");
    if (did && strlen(did) == CX_ULID_LEN)
        memcpy(draft_id, did, sizeof draft_id);
    draft_obs = id_array(json_object_get(sess, "draft_observations"), MAX_DIGEST);
    earlier = id_array(json_object_get(sess, "earlier_observations"), MAX_EARLIER);
    if (!draft_obs || !earlier) {
        cx_hook_say(h, "out of memory");
        goto out;
    }
    uint64_t digested = cx_hook_json_ms(sess, "digested_ms");
    uint64_t from = digested > start + SLACK_MS ? digested - SLACK_MS : start;

    if (!cx_hook_open_store(h))
        goto out;
    if (!new_observations(h, start, from, draft_obs, earlier, &ov)) {
        if (cx_hook_late(h))
            cx_hook_say(h, "stop: ran out of time; the next stop will pick these observations up");
        goto out;
    }
    size_t fresh = ov.n;
    if (fresh == 0) {
        if (h->verbose)
            cx_hook_say(h, "stop: no new observations in this session");
        goto out;
    }

    /* revise the session's digest while it awaits review, else start anew */
    bool revise = false;
    if (draft_id[0]) {
        json_t *dj = NULL;
        if (cx_store_get(h->store, draft_id, &dj) == 0) {
            const char *kind = cx_hook_jstr(dj, "kind");
            revise = kind && strcmp(kind, "draft") == 0 && cx_hook_awaiting_review(cx_hook_jstr(dj, "status"));
        }
        json_decref(dj);
        if (revise && json_array_size(draft_obs) + fresh > MAX_DIGEST)
            revise = false; /* full: the rest goes into a new digest */
        if (!revise) {
            json_array_extend(earlier, draft_obs);
            json_array_clear(draft_obs);
            draft_id[0] = '\0';
        }
    }
    if (revise && !fetch_ids(h, draft_obs, &ov)) {
        cx_hook_say(h, "stop: ran out of time; the next stop will pick these observations up");
        goto out;
    }
    if ((r = build_digest(h, &ov, start, now, &d, &prov)) != 0)
        goto out;
    cx_note note = note_of(&d, prov);
    cx_actor who = {.author = h->author, .agent = HOOK_AGENT};
    cx_error_clear();
    if (revise) {
        r = cx_store_draft_revise(h->store, &who, draft_id, &note, &res);
        if (r == CX_ECONFLICT || r == CX_ENOTFOUND) {
            /* decided a moment ago: the new observations make a new digest */
            cx_hook_say(h, "stop: the session's digest %s was decided meanwhile; starting a new one",
                draft_id);
            revise = false;
            json_array_extend(earlier, draft_obs);
            json_array_clear(draft_obs);
            for (size_t i = ov.n; i-- > 0;)
                if (id_in(earlier, ov.v[i].id)) {
                    json_decref(ov.v[i].item);
                    ov.v[i] = ov.v[--ov.n];
                }
            if ((r = build_digest(h, &ov, start, now, &d, &prov)) != 0)
                goto out;
            note = note_of(&d, prov);
            cx_error_clear();
        }
    }
    if (!revise)
        r = cx_store_draft(h->store, &who, &note, &res);
    if (r != 0) {
        cx_hook_say(h, "stop: cannot %s the session digest: %s", revise ? "revise" : "make",
            cx_error_code() ? cx_error_last() : cx_strerror(r));
        goto out;
    }
    const char *id = cx_hook_jstr(res, "id");
    if (!id || strlen(id) != CX_ULID_LEN) {
        cx_hook_say(h, "stop: the store answered without a draft id");
        goto out;
    }
    memcpy(draft_id, id, sizeof draft_id);

    /* remember it: in the session file, and as the workspace's last digest */
    json_t *ids = ids_of(&ov);
    json_t *trimmed = id_array(earlier, MAX_EARLIER);
    if (ids && trimmed) {
        json_object_set_new(sess, "draft_id", json_string(draft_id));
        json_object_set_new(sess, "draft_observations", ids);
        json_object_set_new(sess, "earlier_observations", trimmed);
        json_object_set_new(sess, "digested_ms", json_integer((json_int_t)now));
        ids = trimmed = NULL;
        if (path)
            cx_hook_save_state(h, path, sess);
    } else {
        cx_hook_say(h, "stop: out of memory recording the digest");
    }
    json_decref(ids);
    json_decref(trimmed);
    json_t *ld = json_pack("{s:I, s:s, s:s?}", "at_ms", (json_int_t)now, "draft_id", draft_id,
                           "session_id", h->session_id);
    if (ld)
        cx_hook_save_state(h, last_path, ld);
    json_decref(ld);
    if (h->verbose)
        cx_hook_say(h, "stop: digest %s %s: %zu observation%s (%zu new)", draft_id,
            revise ? "revised" : "made", ov.n, ov.n == 1 ? "" : "s", fresh);
out:
    digest_clear(&d);
    obsv_clear(&ov);
    json_decref(prov);
    json_decref(res);
    json_decref(sess);
    json_decref(last);
    json_decref(draft_obs);
    json_decref(earlier);
    free(path);
    free(last_path);
    return 0;
}
