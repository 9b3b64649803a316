/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the core's request bodies (src/core/feed.h) through the entry
 * point the HTTP layer uses, cx_feed_handle_body(): the input is one body,
 * offered as a push (by an agent key, then again by a reviewer key), as a
 * blobs/missing request and as a draft decision (by a reviewer, then by an
 * agent), against one in-memory SQLite storage opened once per process and
 * renewed every STORAGE_RESET_EVERY inputs so that an input's cost stays
 * bounded. Every storage starts with a pending draft (DRAFT_ID), an
 * observation, a blob (BLOB_SHA) and an artifact, so that decisions,
 * conflicts and artifact versions reach their deeper paths.
 *
 * Checked, with abort() and the input on any violation:
 * - a body that is not JSON (or repeats a member name) is refused with
 *   CX_EINVAL and no answer;
 * - failures are only CX_EINVAL, CX_ELIMIT, CX_ENOTFOUND, CX_ECONFLICT or
 *   CX_EFORBIDDEN, with a message, and leave no answer;
 * - a push answer has one result per op, in order, each with the op's id and
 *   a status: applied (a seq above every seq given out before), duplicate
 *   (a seq) or rejected (a reason);
 * - a blobs/missing answer lists only hashes that were asked for;
 * - a decision answer carries a seq and the decided item;
 * - an agent key never decides (CX_EFORBIDDEN for any JSON body), and its
 *   push stores nothing only a reviewer sets (a thread, a decided draft,
 *   an accepted version, a review the core did not make);
 * - every item the input made the core store is one that item.json allows
 *   (cx_wire_item_check on each change the pull feed then serves), with a
 *   upper-case id; the feed read in pages of a small byte budget keeps
 *   each page within it (or holds one change) and resumes where next says;
 * - no call leaves the storage's transaction open (the next one would hang:
 *   libFuzzer reports a timeout). */
#include <jansson.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/storage.h"
#include "core/feed.h"
#include "fuzz.h"
#include "proto/wire.h"
#include "util/error.h"

#define STORAGE_RESET_EVERY 2000
#define DRAFT_ID "01J00000000000000000DRAFT0"
#define OBS_ID "01J00000000000000000DBS000"
#define ART_ID "01J00000000000000000ART000"
#define BLOB_DATA "fuzz blob\n"

static cx_storage *st;
static cx_feed feed_;
static unsigned long inputs_seen;
static int64_t max_seq; /* the highest seq given out by this storage */
static const uint8_t *cur_data;
static size_t cur_size;
static char blob_sha[65];

static void die(const char *why, const char *detail) {
    fuzz_die("fuzz-core", why, detail, cur_data, cur_size);
}

static void die_json(const char *why, const json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    die(why, text ? text : "(null)");
}

static const cx_principal AGENT = {.key_id = "00000000000000a1", .team = "T", .role = "agent",
                                   .name = "fuzz-agent"};
static const cx_principal REVIEWER = {.key_id = "00000000000000r1", .team = "T",
                                      .role = "reviewer", .name = "fuzz-reviewer"};

static json_t *seed_item(const char *id, const char *kind, const char *status)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "id", id, "kind", kind, "status",
                     status, "title", "seed", "body", "seed body", "created_at",
                     "2026-01-01T00:00:00Z", "updated_at", "2026-01-01T00:00:00Z", "visibility",
                     "shared");
}

static void seed(void)
{
    bool created = false;
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(d, (const unsigned char *)BLOB_DATA, strlen(BLOB_DATA));
    sodium_bin2hex(blob_sha, sizeof blob_sha, d, sizeof d);
    if (cx_feed_blob_put(&feed_, &AGENT, blob_sha, BLOB_DATA, strlen(BLOB_DATA), &created) != 0)
        die("seeding a blob failed", cx_error_last());
    json_t *ops = json_array();
    json_array_append_new(ops, json_pack("{s:s, s:s, s:o}", "op_id", "seed-draft", "op",
                                         "item.put", "item",
                                         seed_item(DRAFT_ID, "draft", "pending")));
    json_array_append_new(ops, json_pack("{s:s, s:s, s:o}", "op_id", "seed-obs", "op", "item.put",
                                         "item", seed_item(OBS_ID, "observation", "recorded")));
    if (blob_sha[0])
        json_array_append_new(
            ops, json_pack("{s:s, s:s, s:o, s:{s:i, s:s}}", "op_id", "seed-art", "op",
                           "artifact.version", "item", seed_item(ART_ID, "artifact", "published"),
                           "version", "version", 1, "sha256", blob_sha));
    json_t *req = json_pack("{s:o}", "ops", ops), *out = NULL;
    long applied = 0;
    if (!req || cx_feed_push(&feed_, &AGENT, req, &out, &applied) != 0 || applied < 2)
        die("seeding the storage failed", cx_error_last());
    json_decref(req);
    json_decref(out);
    max_seq = applied;
}

static void open_storage(void)
{
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

static bool allowed_failure(int r)
{
    return r == CX_EINVAL || r == CX_ELIMIT || r == CX_ENOTFOUND || r == CX_ECONFLICT ||
           r == CX_EFORBIDDEN;
}

static int call(const cx_principal *p, cx_feed_body kind, const char *arg, json_t **out,
                long *applied)
{
    *out = NULL;
    int r = cx_feed_handle_body(&feed_, p, kind, arg, (const char *)cur_data, cur_size, out,
                                applied);
    if (r != 0) {
        if (!allowed_failure(r)) {
            char why[64];
            snprintf(why, sizeof why, "unexpected error code %d", r);
            die(why, cx_error_last());
        }
        if (*out)
            die_json("an answer was left on failure", *out);
        const char *msg = cx_error_last();
        if (!msg || !*msg)
            die("a failure without a message", NULL);
    } else if (!json_is_object(*out)) {
        die_json("success without an answer object", *out);
    }
    return r;
}

static void check_push(const json_t *req, const json_t *out)
{
    const json_t *ops = json_object_get(req, "ops"), *results = json_object_get(out, "results");
    if (!json_is_array(results) || json_array_size(results) != json_array_size(ops))
        die_json("push: not one result per op", out);
    int64_t last = max_seq;
    size_t i;
    const json_t *res;
    json_array_foreach(results, i, res) {
        const char *status = json_string_value(json_object_get(res, "status"));
        const char *op_id = json_string_value(json_object_get(res, "op_id"));
        const char *want = json_string_value(json_object_get(json_array_get(ops, i), "op_id"));
        json_int_t seq = json_integer_value(json_object_get(res, "seq"));
        if (!op_id || !want || strcmp(op_id, want) != 0)
            die_json("push: a result does not carry its op's id", out);
        if (!status)
            die_json("push: a result without a status", out);
        if (strcmp(status, "applied") == 0) {
            if (seq <= last)
                die_json("push: an applied op's seq does not increase", out);
            last = seq;
        } else if (strcmp(status, "duplicate") == 0) {
            if (seq < 1 || seq > last)
                die_json("push: a duplicate without its earlier seq", out);
        } else if (strcmp(status, "rejected") == 0) {
            const char *why = json_string_value(json_object_get(res, "reason"));
            if (!why || !*why)
                die_json("push: a rejection without a reason", out);
        } else {
            die_json("push: an unknown status", out);
        }
    }
    if (last > max_seq)
        max_seq = last;
}

static void check_missing(const json_t *req, const json_t *out)
{
    const json_t *asked = json_object_get(req, "sha256"), *missing = json_object_get(out, "missing");
    if (!json_is_array(missing) || json_array_size(missing) > json_array_size(asked))
        die_json("blobs/missing: a bad answer", out);
    size_t i, k;
    const json_t *m, *a;
    json_array_foreach(missing, i, m) {
        bool found = false;
        json_array_foreach(asked, k, a) found = found || json_equal(a, m);
        if (!found)
            die_json("blobs/missing: answers a hash that was not asked for", out);
    }
    if (blob_sha[0]) {
        json_array_foreach(missing, i, m) if (strcmp(json_string_value(m), blob_sha) == 0)
            die_json("blobs/missing: the stored blob is reported missing", out);
    }
}

static void check_decision(const json_t *out)
{
    json_int_t seq = json_integer_value(json_object_get(out, "seq"));
    const json_t *it = json_object_get(out, "item");
    const char *kind = json_string_value(json_object_get(it, "kind"));
    if (seq <= max_seq || !json_is_object(it) || !kind ||
        (strcmp(kind, "thread") != 0 && strcmp(kind, "draft") != 0))
        die_json("decision: a bad answer", out);
    max_seq = seq;
}

/* Every item stored since seq `since` is within item.json, under an
 * upper-case id; and the feed, read in pages of a small byte budget (one
 * input's changes span several), is the same feed: each page is JSON,
 * within its budget unless it holds one change, in rising seq order, with
 * next at its last change and more until the end. */
#define SMALL_BUDGET 2048

static void check_feed(int64_t since)
{
    /* every other input, a budget of 1 byte: each page is its one change,
     * which travels although it is larger than the budget */
    const size_t budget = inputs_seen % 2 ? SMALL_BUDGET : 1;
    int64_t at = since;
    for (int pages = 0;; pages++) {
        char *text = NULL;
        size_t len = 0;
        if (cx_feed_pull(&feed_, &AGENT, at, CX_WIRE_MAX_PULL_LIMIT, budget, &text, &len) != 0)
            die("pull after the input failed", cx_error_last());
        json_t *out = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(out) || pages > 100000)
            die("pull: a page that is not JSON, or no end", text);
        free(text);
        const json_t *changes = json_object_get(out, "changes");
        if (len > budget && json_array_size(changes) > 1)
            die_json("pull: a page over its budget with more than one change", out);
        size_t i;
        const json_t *c;
        int64_t last = at;
        json_array_foreach(changes, i, c) {
            json_int_t seq = json_integer_value(json_object_get(c, "seq"));
            if (seq <= last)
                die_json("pull: seqs do not rise", out);
            last = seq;
            const json_t *it = json_object_get(c, "item");
            if (!it)
                continue;
            if (cx_wire_item_check(it) != 0)
                die_json(cx_error_last(), it);
            char id[CX_WIRE_MAX_ID + 1];
            const char *have = json_string_value(json_object_get(it, "id"));
            if (cx_wire_id_norm("id", have, id) != 0 || strcmp(id, have) != 0)
                die_json("an item stored under an id that is not upper case", it);
        }
        if (json_integer_value(json_object_get(out, "next")) != last)
            die_json("pull: next is not the page's last seq", out);
        bool more = json_is_true(json_object_get(out, "more"));
        if (more && json_array_size(changes) == 0)
            die_json("pull: more without a change", out);
        json_decref(out);
        if (!more)
            break;
        at = last;
    }
}

/* What an agent key's push left in the feed since seq `since` claims
 * nothing only a reviewer sets: no thread, no decided draft (a draft that
 * had changes requested may keep that status), nothing accepted, no
 * version that names who accepted it, and a review only as the core's
 * reviewer made it. The storage never accepts a version (no accept
 * endpoint is fuzzed), so accepted appears nowhere. */
static void check_agent_feed(int64_t since)
{
    json_t *out = NULL;
    char *text = NULL;
    size_t len = 0;
    /* fuzz inputs are small: one page of the largest budget holds the feed */
    if (cx_feed_pull(&feed_, &AGENT, since, CX_WIRE_MAX_PULL_LIMIT, CX_WIRE_MAX_PAGE_BYTES, &text,
                     &len) != 0)
        die("pull after the agent's push failed", cx_error_last());
    out = json_loadb(text, len, 0, NULL);
    free(text);
    if (!out)
        die("the pull after the agent's push is not JSON", "");
    size_t i, k;
    const json_t *c, *v;
    json_array_foreach(json_object_get(out, "changes"), i, c) {
        const json_t *it = json_object_get(c, "item");
        if (!it)
            continue;
        cx_kind kind = cx_kind_parse(json_string_value(json_object_get(it, "kind")));
        cx_status status = cx_status_parse(json_string_value(json_object_get(it, "status")));
        const json_t *rv = json_object_get(it, "review");
        const char *by = json_string_value(json_object_get(rv, "reviewer"));
        if (kind == CX_KIND_THREAD || status == CX_STATUS_APPROVED ||
            status == CX_STATUS_REJECTED || status == CX_STATUS_ACCEPTED ||
            status == CX_STATUS_CANON)
            die_json("an agent's push stored a status only a reviewer sets", it);
        if (rv && (!by || strcmp(by, REVIEWER.name) != 0))
            die_json("an agent's push stored a review the core did not make", it);
        json_array_foreach(json_object_get(it, "versions"), k, v) {
            if (json_object_get(v, "accepted_by") ||
                cx_status_parse(json_string_value(json_object_get(v, "status"))) !=
                    CX_STATUS_PUBLISHED)
                die_json("an agent's push stored an accepted version", it);
        }
    }
    json_decref(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!st || ++inputs_seen % STORAGE_RESET_EVERY == 0)
        open_storage();
    cur_data = data;
    cur_size = size;
    int64_t seq_before = max_seq;

    json_t *req = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    json_t *out = NULL;
    long applied = 0;

    int r = call(&AGENT, CX_FEED_BODY_PUSH, NULL, &out, &applied);
    if (!req && r != CX_EINVAL)
        die("push: a body that is not JSON was not refused with CX_EINVAL", cx_error_last());
    if (r == 0)
        check_push(req, out);
    json_decref(out);
    check_agent_feed(seq_before);

    r = call(&REVIEWER, CX_FEED_BODY_PUSH, NULL, &out, &applied);
    if (r == 0)
        check_push(req, out);
    json_decref(out);

    r = call(&AGENT, CX_FEED_BODY_MISSING, NULL, &out, NULL);
    if (!req && r != CX_EINVAL)
        die("blobs/missing: a body that is not JSON was not refused", cx_error_last());
    if (r == 0)
        check_missing(req, out);
    json_decref(out);

    r = call(&REVIEWER, CX_FEED_BODY_DECISION, DRAFT_ID, &out, NULL);
    if (!req && r != CX_EINVAL)
        die("decision: a body that is not JSON was not refused", cx_error_last());
    if (r == 0)
        check_decision(out);
    json_decref(out);

    r = call(&AGENT, CX_FEED_BODY_DECISION, DRAFT_ID, &out, NULL);
    if (req && size <= CX_WIRE_MAX_PUSH_BYTES && r != CX_EFORBIDDEN)
        die("decision: an agent key was not refused with CX_EFORBIDDEN", cx_error_last());
    json_decref(out);

    check_feed(seq_before);
    json_decref(req);
    return 0;
}
