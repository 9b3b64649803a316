/* SPDX-License-Identifier: Apache-2.0 */
/* `cortex hook session-start` (see hooks.h): the briefing, within a token
 * budget: recent canon in this workspace's subcortexes, items gone stale,
 * this workspace's drafts awaiting review, rendered as markdown. */
#include "hook.h"

#include "proto/wire.h"

#include "util/clock.h"
#include "util/error.h"
#include "util/utf8.h"

#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct section {
    const char *heading;
    strlist lines;
} section;

static int by_updated_desc(const void *a, const void *b) {
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    const char *ux = cx_hook_jstr(x, "updated_at"), *uy = cx_hook_jstr(y, "updated_at");
    int c = strcmp(uy ? uy : "", ux ? ux : "");
    if (c)
        return c;
    const char *ix = cx_hook_jstr(x, "id"), *iy = cx_hook_jstr(y, "id");
    return strcmp(iy ? iy : "", ix ? ix : "");
}

/* Appends to arr (a JSON array) the summaries of recent(kind, subcortex). */
static int recent_into(hook *h, json_t *arr, const char *kind, const char *subcortex,
                       size_t limit) {
    json_t *res = NULL;
    cx_recent_query q = {.kind = kind, .subcortex = subcortex, .limit = limit,
                         .max_tokens = LIST_BYTES / CX_STORE_TOKEN_BYTES};
    cx_error_clear();
    int r = cx_store_recent(h->store, &q, &res);
    if (r != 0) {
        cx_hook_say(h, "cannot list recent %ss: %s", kind,
            cx_error_code() ? cx_error_last() : cx_strerror(r));
        return r;
    }
    json_array_extend(arr, json_object_get(res, "items"));
    json_decref(res);
    return 0;
}

/* "<title or snippet>", on one line. */
static char *item_label(const json_t *it, size_t max) {
    const char *t = cx_hook_jstr(it, "title");
    return cx_hook_one_line(!cx_hook_blank(t) ? t : cx_hook_jstr(it, "snippet"), max, false);
}

bool cx_hook_awaiting_review(const char *status) {
    return cx_awaits_review(CX_KIND_DRAFT, cx_status_parse(status));
}

static bool is_canon(const json_t *it) {
    const char *kind = cx_hook_jstr(it, "kind"), *st = cx_hook_jstr(it, "status");
    return cx_kind_parse(kind) == CX_KIND_THREAD && cx_status_parse(st) == CX_STATUS_CANON;
}

static bool in_subcortexes(const hook *h, const json_t *it) {
    const char *sc = cx_hook_jstr(it, "subcortex");
    return sc && (strcmp(sc, cx_config_subcortex(h->cfg)) == 0 ||
                  strcmp(sc, CX_STORE_DEFAULT_SUBCORTEX) == 0);
}

/* What the briefing is made of, read once: the newest threads, the newest
 * observations and the review queue. A kind-filtered listing walks the
 * store's updated_at index, so few listings are made: one per kind, and
 * per-subcortex listings of threads only when this workspace's canon may
 * be crowded out of the newest threads by other subcortexes'. */
typedef struct brief_data {
    json_t *threads; /* summaries, newest first */
    json_t *observations;
    json_t *queue;   /* cx_store_review_list's "drafts", oldest first */
    json_t *queue_res;
} brief_data;

static void gather(hook *h, brief_data *b) {
    b->threads = json_array();
    b->observations = json_array();
    if (!b->threads || !b->observations)
        return;
    recent_into(h, b->threads, "thread", NULL, RECENT_PAGE);
    size_t mine = 0, i;
    json_t *it;
    json_array_foreach(b->threads, i, it)
        mine += is_canon(it) && in_subcortexes(h, it);
    if (json_array_size(b->threads) == RECENT_PAGE && mine < CANON_PER_SUBCORTEX) {
        json_t *more = json_array();
        const char *own = cx_config_subcortex(h->cfg);
        if (more && !cx_hook_late(h))
            recent_into(h, more, "thread", own, CANON_PER_SUBCORTEX);
        if (more && strcmp(own, CX_STORE_DEFAULT_SUBCORTEX) != 0 && !cx_hook_late(h))
            recent_into(h, more, "thread", CX_STORE_DEFAULT_SUBCORTEX, CANON_PER_SUBCORTEX);
        json_array_foreach(more, i, it) {
            bool dup = false;
            size_t j;
            json_t *t;
            json_array_foreach(b->threads, j, t) {
                if ((dup = strcmp(cx_hook_jstr(t, "id") ? cx_hook_jstr(t, "id") : "",
                                  cx_hook_jstr(it, "id") ? cx_hook_jstr(it, "id") : "") == 0))
                    break;
            }
            if (!dup)
                json_array_append(b->threads, it);
        }
        json_decref(more);
    }
    if (!cx_hook_late(h))
        recent_into(h, b->observations, "observation", NULL, RECENT_PAGE);
    if (!cx_hook_late(h)) {
        cx_error_clear();
        int r = cx_store_review_list(h->store, &b->queue_res);
        if (r != 0)
            cx_hook_say(h, "cannot list drafts: %s", cx_error_code() ? cx_error_last() : cx_strerror(r));
        b->queue = json_object_get(b->queue_res, "drafts");
    }
}

static void brief_data_clear(brief_data *b) {
    json_decref(b->threads);
    json_decref(b->observations);
    json_decref(b->queue_res);
}

/* Canon threads in this workspace's subcortex and "general", newest first. */
static void canon_lines(hook *h, const brief_data *b, section *sec) {
    size_t n = json_array_size(b->threads), k = 0;
    json_t **v = calloc(n ? n : 1, sizeof *v);
    for (size_t i = 0; v && i < n; i++) {
        json_t *it = json_array_get(b->threads, i);
        if (is_canon(it) && in_subcortexes(h, it))
            v[k++] = it;
    }
    if (v)
        qsort(v, k, sizeof *v, by_updated_desc);
    for (size_t i = 0; v && i < k; i++) {
        char *title = item_label(v[i], TITLE_MAX);
        char *snip = cx_hook_one_line(cx_hook_jstr(v[i], "snippet"), SNIPPET_MAX, false);
        char *sc = cx_hook_one_line(cx_hook_jstr(v[i], "subcortex"), CX_STORE_MAX_TAG, false);
        const char *id = cx_hook_jstr(v[i], "id");
        if (title && snip && sc)
            cx_hook_list_take(&sec->lines, cx_hook_concat("- ", title, " (", id ? id : "?", ", ", sc, "): ",
                                          snip, (const char *)NULL));
        free(title);
        free(snip);
        free(sc);
    }
    free(v);
}

/* Items whose recorded files changed: of the newest observations, canon
 * threads and drafts awaiting review, the STALE_SCAN newest that have a
 * provenance, checked newest first until the deadline. */
static void stale_lines(hook *h, const brief_data *b, section *sec) {
    cx_prov *p = cx_hook_get_prov(h);
    if (!p || !cx_prov_in_git(p))
        return;
    const json_t *lists[] = {b->threads, b->observations, b->queue};
    size_t n = 0, k = 0;
    for (size_t l = 0; l < 3; l++)
        n += json_array_size(lists[l]);
    json_t **v = calloc(n ? n : 1, sizeof *v);
    for (size_t l = 0; v && l < 3; l++) {
        size_t i;
        json_t *it;
        json_array_foreach(lists[l], i, it) {
            const char *kind = cx_hook_jstr(it, "kind");
            if (!kind || !json_is_object(json_object_get(it, "provenance")))
                continue;
            if ((strcmp(kind, "thread") == 0 && !is_canon(it)) ||
                (strcmp(kind, "draft") == 0 && !cx_hook_awaiting_review(cx_hook_jstr(it, "status"))))
                continue;
            v[k++] = it;
        }
    }
    if (v)
        qsort(v, k, sizeof *v, by_updated_desc);
    size_t checked = 0, todo = k < STALE_SCAN ? k : STALE_SCAN;
    for (size_t i = 0; v && i < todo; i++) {
        if (cx_hook_late(h)) {
            cx_hook_say(h, "staleness checked for %zu of %zu items before the deadline", checked, todo);
            break;
        }
        json_t *changed = NULL;
        int r = cx_prov_changed(p, json_object_get(v[i], "provenance"), &changed);
        checked++;
        size_t nc = json_array_size(changed);
        if (r == 0 && nc > 0) {
            text paths; /* at most PATHS_SHOWN paths of 200 bytes and a count */
            cx_hook_text_init(&paths, 4096);
            for (size_t j = 0; j < nc && j < PATHS_SHOWN; j++) {
                char *path = cx_hook_one_line(json_string_value(json_array_get(changed, j)), 200, true);
                if (path) {
                    cx_hook_text_put(&paths, j ? ", `" : "`");
                    cx_hook_text_put(&paths, path);
                    cx_hook_text_put(&paths, "`");
                }
                free(path);
            }
            if (nc > PATHS_SHOWN) {
                char more[48];
                snprintf(more, sizeof more, " and %zu more", nc - PATHS_SHOWN);
                cx_hook_text_put(&paths, more);
            }
            char *title = item_label(v[i], TITLE_MAX);
            const char *id = cx_hook_jstr(v[i], "id"), *kind = cx_hook_jstr(v[i], "kind");
            if (title && paths.b.data)
                cx_hook_list_take(&sec->lines, cx_hook_concat("- ", title, " (", id ? id : "?", ", ", kind,
                                              "): changed ", paths.b.data, (const char *)NULL));
            free(title);
            cx_buf_free(&paths.b);
        }
        json_decref(changed);
    }
    free(v);
}

/* Drafts by this workspace's user awaiting review, newest first, with the
 * reviewer's reason when changes were requested. */
static void draft_lines(hook *h, const brief_data *b, section *sec) {
    size_t reasons = 0;
    for (size_t i = json_array_size(b->queue); i-- > 0 && sec->lines.n < MAX_OWN_DRAFTS;) {
        json_t *d = json_array_get(b->queue, i);
        const char *author = cx_hook_jstr(d, "author"), *id = cx_hook_jstr(d, "id"), *st = cx_hook_jstr(d, "status");
        if (!author || strcmp(author, h->author) != 0 || !id)
            continue;
        bool sent_back = cx_status_parse(st) == CX_STATUS_CHANGES_REQUESTED;
        char *reason = NULL;
        if (sent_back && reasons < MAX_REASONS && !cx_hook_late(h)) {
            json_t *full = NULL;
            reasons++;
            if (cx_store_get(h->store, id, &full) == 0)
                reason = cx_hook_one_line(cx_hook_jstr(json_object_get(full, "review"), "reason"), SNIPPET_MAX,
                                  false);
            json_decref(full);
        }
        char *title = item_label(d, TITLE_MAX);
        if (title)
            cx_hook_list_take(&sec->lines,
                      cx_hook_concat("- ", title, " (", id, "): ",
                             sent_back ? "changes requested" : "pending review",
                             reason && *reason ? ": " : "", reason && *reason ? reason : "",
                             (const char *)NULL));
        free(title);
        free(reason);
    }
}

static size_t trailer_len(size_t n) {
    char b[64];
    return (size_t)snprintf(b, sizeof b, "(%zu more not shown)\n", n);
}

static void add_trailer(text *t, size_t n) {
    char b[64];
    snprintf(b, sizeof b, "(%zu more not shown)\n", n);
    cx_hook_text_put(t, b);
}

/* How many "(N more not shown)" lines the briefing needs when shown[s] of
 * each section's lines are shown: one per section cut short, and one for
 * the sections left out entirely. */
static size_t trailers(const section *secs, const size_t *shown, size_t nsec) {
    size_t k = 0;
    bool left_out = false;
    for (size_t s = 0; s < nsec; s++) {
        size_t n = secs[s].lines.n;
        k += shown[s] > 0 && shown[s] < n;
        left_out |= n > 0 && shown[s] == 0;
    }
    return k + left_out;
}

static char *heading_of(const section *sec, char *buf, size_t cap) {
    snprintf(buf, cap, "\n## %s\n", sec->heading);
    return buf;
}

/* The markdown, at most `budget` bytes: the header, then the sections in
 * order. Lines are dealt to the sections in turns, so one long section
 * cannot crowd out the others, and only while the "(N more not shown)"
 * lines that the result needs still fit; lines are never cut. */
static char *render(const char *header, section *secs, size_t nsec, size_t budget) {
    text t; /* the briefing: at most its budget */
    cx_hook_text_init(&t, budget);
    size_t total = 0, shown[8] = {0}, used = 0;
    char heading[64];
    assert(nsec <= 8);
    for (size_t i = 0; i < nsec; i++)
        total += secs[i].lines.n;
    size_t tl = trailer_len(total), hl = strlen(header);
    size_t avail = budget > (total ? tl : 0) ? budget - (total ? tl : 0) : 0;
    if (hl + 1 <= avail) {
        cx_hook_text_add(&t, header, hl);
        cx_hook_text_put(&t, "\n");
    } else if (avail >= 16) { /* a header cut short, on a character boundary */
        cx_hook_text_add(&t, header, cx_utf8_cut(header, hl, avail - 4));
        cx_hook_text_put(&t, "\xE2\x80\xA6\n");
    }
    used = t.b.len;
    for (bool progress = true; progress;) {
        progress = false;
        for (size_t s = 0; s < nsec; s++) {
            if (shown[s] >= secs[s].lines.n)
                continue;
            size_t need = strlen(secs[s].lines.v[shown[s]]) + 1 +
                          (shown[s] == 0 ? strlen(heading_of(&secs[s], heading, sizeof heading)) : 0);
            shown[s]++;
            if (used + need + trailers(secs, shown, nsec) * tl <= budget) {
                used += need;
                progress = true;
            } else {
                shown[s]--;
            }
        }
    }
    size_t unreported = 0;
    for (size_t s = 0; s < nsec; s++) {
        size_t n = secs[s].lines.n;
        if (shown[s] == 0) {
            unreported += n;
            continue;
        }
        cx_hook_text_put(&t, heading_of(&secs[s], heading, sizeof heading));
        for (size_t i = 0; i < shown[s]; i++) {
            cx_hook_text_put(&t, secs[s].lines.v[i]);
            cx_hook_text_put(&t, "\n");
        }
        if (shown[s] < n)
            add_trailer(&t, n - shown[s]);
    }
    if (unreported)
        add_trailer(&t, unreported);
    char *md = t.oom ? NULL : cx_buf_take(&t.b, NULL); /* "" when empty */
    cx_buf_free(&t.b);
    return md;
}

int cx_hook_session_start(hook *h) {
    uint64_t now = cx_clock_now_ms();
    if (!cx_hook_find_workspace(h) || !cx_hook_open_store(h))
        return 0;
    cx_hook_record_session(h, now);
    cx_hook_prune_sessions(h, now);

    size_t tokens = h->o->max_tokens ? h->o->max_tokens : DEFAULT_TOKENS;
    if (tokens > MAX_TOKENS)
        tokens = MAX_TOKENS;
    section secs[3] = {{.heading = "Canon"}, {.heading = "Stale"},
                       {.heading = "Your pending drafts"}};
    brief_data b = {0};
    gather(h, &b);
    canon_lines(h, &b, &secs[0]);
    draft_lines(h, &b, &secs[2]);
    if (!cx_hook_late(h))
        stale_lines(h, &b, &secs[1]);
    if (cx_hook_late(h))
        cx_hook_say(h, "the briefing was cut short by the deadline");
    brief_data_clear(&b);

    char *name = cx_hook_one_line(h->ws->name, 120, true), *header = NULL, *md = NULL;
    bool empty = !secs[0].lines.n && !secs[1].lines.n && !secs[2].lines.n;
    if (name)
        header = cx_hook_concat("Cortex, the team's shared memory, for workspace `", name,
                        "`: use its `search` tool before digging into code, `observe` to record "
                        "what you learn, `draft` to propose knowledge for review.",
                        empty ? "\nNothing in this workspace's memory yet: no canon, no stale "
                                "items, no drafts of yours awaiting review."
                              : "",
                        (const char *)NULL);
    if (header)
        md = render(header, secs, empty ? 0 : 3, cx_store_budget_bytes(tokens));
    json_t *o = md ? json_pack("{s:{s:s, s:s}}", "hookSpecificOutput", "hookEventName",
                               "SessionStart", "additionalContext", md)
                   : NULL;
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (s) {
        fputs(s, h->out);
        fputc('\n', h->out);
        fflush(h->out);
        if (h->verbose)
            cx_hook_say(h, "session-start: briefing of %zu bytes (canon %zu, stale %zu, drafts %zu)",
                strlen(md), secs[0].lines.n, secs[1].lines.n, secs[2].lines.n);
    } else {
        cx_hook_say(h, "out of memory writing the briefing");
    }
    free(s);
    json_decref(o);
    free(md);
    free(header);
    free(name);
    for (size_t i = 0; i < 3; i++)
        cx_hook_list_clear(&secs[i].lines);
    return 0;
}
