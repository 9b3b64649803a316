/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the review app's read views (src/core/views.h) through the entry
 * point the HTTP layer uses, cx_views_get(): the input is a query string
 * ("q=...&kind=...&limit=..."; names and values are raw bytes, as
 * libmicrohttpd hands them over once percent-decoded, a NUL ending a
 * value) offered to every view, the item view with the input's first 26
 * bytes as the id. The storage is one in-memory SQLite core opened once per
 * process and renewed every STORAGE_RESET_EVERY inputs, seeded with items
 * of team T (a thread, drafts, observations with files, a comment, an
 * artifact) and of team U that share their words, and audit entries of
 * both teams.
 *
 * Checked, with abort() and the input on any violation:
 * - failures are only CX_EINVAL (with a message naming a parameter) or
 *   CX_ENOTFOUND, and leave no answer: no query text, however hostile to
 *   FTS5 (quotes, `*`, NEAR(, column filters, `-`, `^`), is a 500;
 * - a search answer holds at most `limit` results, never an item of team
 *   U, each snippet at most CX_VIEWS_SNIPPET bytes of valid UTF-8; threads
 *   come before every other kind when there is text;
 * - every answer serialises (valid UTF-8 throughout);
 * - no call leaves the storage's transaction open (the next one would hang:
 *   libFuzzer reports a timeout). */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/feed.h"
#include "core/storage.h"
#include "core/views.h"
#include "fuzz.h"
#include "proto/wire.h"
#include "util/error.h"
#include "util/utf8.h"

#define STORAGE_RESET_EVERY 2000
#define MAX_PARAMS 16

static cx_storage *st;
static cx_feed feed_;
static unsigned long inputs_seen;
static const uint8_t *cur_data;
static size_t cur_size;

static void die(const char *why, const char *detail) {
    fuzz_die("fuzz-views", why, detail, cur_data, cur_size);
}

static const cx_principal T_REV = {.key_id = "00000000000000r1", .team = "T", .role = "reviewer",
                                   .name = "fuzz-reviewer"};
static const cx_principal U_AGENT = {.key_id = "00000000000000u1", .team = "U", .role = "agent",
                                     .name = "fuzz-u"};

#define DRAFT_ID "01J00000000000000000DRAFT0"

static json_t *seed_item(const char *id, const char *kind, const char *status, const char *title,
                         const char *body) {
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:[s], s:{s:[{s:s, s:s}]}}",
                     "id", id, "kind", kind, "status", status, "title", title, "body", body,
                     "created_at", "2026-01-01T00:00:00Z", "updated_at", "2026-01-01T00:00:00Z",
                     "visibility", "shared", "subcortex", "build", "evidence",
                     "01J00000000000000000DBS000", "provenance", "files", "path", "a.c", "blob",
                     "0123");
}

static void push(const cx_principal *p, json_t *ops) {
    json_t *req = json_pack("{s:o}", "ops", ops), *out = NULL;
    long applied = 0;
    if (!req || cx_feed_push(&feed_, p, req, &out, &applied) != 0)
        die("seeding the storage failed", cx_error_last());
    json_decref(req);
    json_decref(out);
}

static void seed(void) {
    static const char *const WORDS = "linker relocation overflow \"quoted\" NEAR(a b) x*y -z a:b "
                                     "\xc3\xa9t\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87";
    json_t *ops = json_array();
    const char *ids[] = {"01J00000000000000000DBS000", "01J00000000000000000DBS001", DRAFT_ID,
                         "01J00000000000000000DRAFT1", "01J00000000000000000CMT000"};
    const char *kinds[] = {"observation", "observation", "draft", "draft", "comment"};
    const char *sts[] = {"recorded", "recorded", "pending", "pending", "recorded"};
    for (int i = 0; i < 5; i++) {
        json_t *it = seed_item(ids[i], kinds[i], sts[i], "seed linker", WORDS);
        if (i == 4)
            json_object_set_new(it, "parent_id", json_string(DRAFT_ID));
        json_array_append_new(ops, json_pack("{s:s, s:s, s:o}", "op_id", ids[i], "op",
                                             "item.put", "item", it));
    }
    push(&T_REV, ops);
    json_t *u = json_array();
    json_array_append_new(u, json_pack("{s:s, s:s, s:o}", "op_id", "u1", "op", "item.put", "item",
                                       seed_item("01J00000000000000000VVVV00", "observation",
                                                 "recorded", "seed linker", WORDS)));
    push(&U_AGENT, u);
    json_t *dec = json_pack("{s:s, s:s}", "decision", "approve", "note", "ok"), *out = NULL;
    if (cx_feed_decide(&feed_, &T_REV, DRAFT_ID, dec, &out) != 0)
        die("seeding a decision failed", cx_error_last());
    json_decref(dec);
    json_decref(out);
}

static void open_storage(void) {
    if (st)
        cx_storage_free(st);
    st = NULL;
    if (cx_storage_open(&st, ":memory:", CX_STORAGE_CREATE) != 0)
        die("cannot open an in-memory storage", cx_error_last());
    feed_.st = st;
    feed_.max_blob = 1u << 20;
    memset(feed_.secret, 0x5a, sizeof feed_.secret);
    seed();
}

typedef struct params {
    int n;
    char *name[MAX_PARAMS], *value[MAX_PARAMS];
} params;

static const char *lookup(void *ud, const char *name) {
    params *p = ud;
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->name[i], name) == 0)
            return p->value[i];
    return NULL;
}

static void check_answer(cx_views_route v, int r, json_t *out, const params *p) {
    if (r) {
        if (r != CX_EINVAL && r != CX_ENOTFOUND)
            die("a view failed with an unexpected code", cx_error_last());
        if (!cx_error_last()[0])
            die("a refusal without a message", NULL);
        if (out)
            die("a failure left an answer", NULL);
        return;
    }
    char *text = json_dumps(out, JSON_COMPACT);
    if (!text)
        die("an answer does not serialise", NULL);
    if (!cx_utf8_valid(text, strlen(text)))
        die("an answer is not UTF-8", text);
    free(text);
    if (v != CX_VIEWS_SEARCH)
        return;
    const char *lim = lookup((void *)p, "limit");
    long limit = lim && *lim ? strtol(lim, NULL, 10) : CX_VIEWS_DEFAULT_LIMIT;
    json_t *res = json_object_get(out, "results");
    if (!json_is_array(res) || (long)json_array_size(res) > limit)
        die("more results than the limit", NULL);
    const char *q = lookup((void *)p, "q");
    bool past_threads = false;
    size_t i;
    json_t *x;
    json_array_foreach(res, i, x) {
        const char *id = json_string_value(json_object_get(x, "id"));
        if (!id || strcmp(id, "01J00000000000000000VVVV00") == 0)
            die("a search answered another team's item", id);
        const char *sn = json_string_value(json_object_get(x, "snippet"));
        if (!sn || strlen(sn) > CX_VIEWS_SNIPPET)
            die("a snippet over its size", sn);
        bool thread = strcmp(json_string_value(json_object_get(x, "kind")), "thread") == 0;
        if (q && *q && thread && past_threads)
            die("a thread after another kind", id);
        past_threads = past_threads || !thread;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 4096)
        return 0;
    cur_data = data;
    cur_size = size;
    if (!st || ++inputs_seen % STORAGE_RESET_EVERY == 0)
        open_storage();
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    params p = {0};
    for (char *s = buf; s && *s && p.n < MAX_PARAMS;) {
        char *amp = strchr(s, '&');
        if (amp)
            *amp = '\0';
        char *eq = strchr(s, '=');
        if (eq) {
            *eq = '\0';
            p.name[p.n] = s;
            p.value[p.n++] = eq + 1;
        }
        s = amp ? amp + 1 : NULL;
    }
    static const cx_views_route VIEWS[] = {CX_VIEWS_SEARCH, CX_VIEWS_ITEM, CX_VIEWS_QUEUE,
                                           CX_VIEWS_ARTIFACTS, CX_VIEWS_AUDIT, CX_VIEWS_ACTIVITY};
    char id[CX_WIRE_ULID_LEN + 1];
    snprintf(id, sizeof id, "%.*s", (int)(size < CX_WIRE_ULID_LEN ? size : CX_WIRE_ULID_LEN),
             (const char *)data);
    for (size_t i = 0; i < sizeof VIEWS / sizeof VIEWS[0]; i++) {
        json_t *out = NULL;
        cx_error_clear();
        int r = cx_views_get(&feed_, &T_REV, VIEWS[i], VIEWS[i] == CX_VIEWS_ITEM ? id : NULL,
                             lookup, &p, &out);
        check_answer(VIEWS[i], r, out, &p);
        json_decref(out);
    }
    /* the page cursor reader, on the raw input */
    (void)cx_views_page_next((const char *)data, size);
    free(buf);
    return 0;
}
