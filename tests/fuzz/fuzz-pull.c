/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the sidecar's handling of a pull page (src/store/apply.h): the
 * input is the body of a GET /v1/sync/pull answer, parsed as the client
 * parses it (duplicate member names refused) and given to
 * cx_apply_page(), as cx_engine_pull() does, against one workspace store
 * in a temporary directory created once per process and renewed every
 * STORE_RESET_EVERY inputs (so that an input's cost stays bounded).
 *
 * The store holds local work that was never pushed: an observation and a
 * draft. So that pages can name them, the ids LOCAL_OBS and LOCAL_DRAFT in
 * a page (an item's id, a tombstone's id) are replaced with theirs before
 * the page is applied.
 *
 * Checked, with abort() and the input on any violation:
 * - a body that is not JSON, or not {"changes":[…], "next":N>=0,
 *   "more":bool}, is refused with CX_EINVAL and moves nothing (cursor kept);
 * - the only failure is CX_EINVAL, with a message;
 * - an applied page sets the cursor to its `next` and applies at most its
 *   number of changes;
 * - the unpushed observation survives every page unchanged (local work
 *   wins until it is pushed), and its outbox row stays. */
#include <ftw.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "store/store.h"
#include "store/apply.h"
#include "store/kv.h"
#include "store/outbox.h"
#include "util/error.h"
#include "util/log.h"

#define STORE_RESET_EVERY 1000
#define LOCAL_OBS "01J0000000000000000LOCAL00"
#define LOCAL_DRAFT "01J0000000000000000LOCAL01"
#define OBS_TEXT "local unpushed observation about the wombatgear build"

static char tmp_root[4096];
static char state_dir[4200];
static cx_store *store;
static char obs_id[64], draft_id[64];
static unsigned long inputs_seen;
static const uint8_t *cur_data;
static size_t cur_size;

static void die(const char *why, const char *detail) {
    fuzz_die("fuzz-pull", why, detail, cur_data, cur_size);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void cleanup(void)
{
    cx_store_free(store);
    store = NULL;
    if (tmp_root[0])
        nftw(tmp_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void open_store(void)
{
    if (!tmp_root[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(tmp_root, sizeof tmp_root, "%s/cx-fuzz-pull-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(tmp_root))
            die("mkdtemp failed", tmp_root);
        atexit(cleanup);
        cx_log_init("fuzz-pull", CX_LOG_ERROR);
    }
    cx_store_free(store);
    store = NULL;
    snprintf(state_dir, sizeof state_dir, "%s/.cortex", tmp_root);
    nftw(state_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (cx_store_open(&store, state_dir) != 0)
        die("cannot open the store", cx_error_last());
    cx_actor who = {.author = "fuzz", .agent = "fuzz-pull"};
    cx_note obs = {.body = OBS_TEXT};
    json_t *out = NULL;
    if (cx_store_observe(store, &who, &obs, 1, NULL, NULL, &out) != 0)
        die("observe failed", cx_error_last());
    snprintf(obs_id, sizeof obs_id, "%s",
             json_string_value(json_object_get(json_array_get(json_object_get(out, "results"), 0),
                                               "id")));
    json_decref(out);
    cx_note d = {.title = "a local draft", .body = "draft body"};
    if (cx_store_draft(store, &who, &d, &out) != 0)
        die("draft failed", cx_error_last());
    snprintf(draft_id, sizeof draft_id, "%s", json_string_value(json_object_get(out, "id")));
    json_decref(out);
}

/* Replaces the placeholder ids of a page with the local items' ids. */
static void remap(json_t *page)
{
    size_t i;
    json_t *ch;
    json_array_foreach(json_object_get(page, "changes"), i, ch) {
        json_t *targets[2] = {ch, json_object_get(ch, "item")};
        for (size_t k = 0; k < 2; k++) {
            const char *id = json_string_value(json_object_get(targets[k], "id"));
            if (!json_is_object(targets[k]) || !id)
                continue;
            if (strcmp(id, LOCAL_OBS) == 0)
                json_object_set_new(targets[k], "id", json_string(obs_id));
            else if (strcmp(id, LOCAL_DRAFT) == 0)
                json_object_set_new(targets[k], "id", json_string(draft_id));
        }
    }
}

static bool page_shaped(const json_t *page)
{
    const json_t *next = json_object_get(page, "next");
    return json_is_object(page) && json_is_array(json_object_get(page, "changes")) &&
           json_is_integer(next) && json_integer_value(next) >= 0 &&
           json_is_boolean(json_object_get(page, "more"));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!store || ++inputs_seen % STORE_RESET_EVERY == 0)
        open_store();
    cur_data = data;
    cur_size = size;

    int64_t before = -1, after = -1;
    if (cx_kv_cursor(store, &before) != 0)
        die("reading the cursor failed", cx_error_last());
    json_t *page = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    remap(page);
    cx_apply_result res = {.next = -1};
    int r = cx_apply_page(store, page, &res);
    int64_t next = res.next;
    bool more = res.more;
    size_t applied = res.applied;
    if (cx_kv_cursor(store, &after) != 0)
        die("reading the cursor failed", cx_error_last());
    if (r != 0) {
        if (r != CX_EINVAL) {
            char why[64];
            snprintf(why, sizeof why, "unexpected error code %d", r);
            die(why, cx_error_last());
        }
        if (!cx_error_last() || !*cx_error_last())
            die("a refusal without a message", NULL);
        if (after != before)
            die("a refused page moved the cursor", NULL);
    } else {
        if (!page_shaped(page))
            die("a page without the pull shape was applied", NULL);
        if (next != (int64_t)json_integer_value(json_object_get(page, "next")) || after != next)
            die("the cursor is not the page's next", NULL);
        if (applied > json_array_size(json_object_get(page, "changes")))
            die("more changes applied than the page has", NULL);
        if (more != json_is_true(json_object_get(page, "more")))
            die("more is not the page's", NULL);
    }

    json_t *obs = NULL;
    if (cx_store_get(store, obs_id, &obs) != 0)
        die("the unpushed observation is gone", cx_error_last());
    const char *body = json_string_value(json_object_get(obs, "body"));
    if (!body || strcmp(body, OBS_TEXT) != 0)
        die("the unpushed observation was overwritten", body);
    json_decref(obs);
    json_t *state = NULL;
    if (cx_outbox_state(store, &state) != 0)
        die("reading the sync state failed", cx_error_last());
    if (json_integer_value(json_object_get(state, "backlog")) < 1)
        die("the outbox lost the unpushed work", NULL);
    json_decref(state);
    json_decref(page);
    return 0;
}
