/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for src/store/apply.c and the sync side of the outbox, on a
 * real store in a temporary directory: what a pull page does to the cache
 * (new items, updates, unpushed local work that wins, a reviewer's decision
 * on a local draft, tombstones, private items, ids in lower case), the
 * rebuild after a 410, and what happens to items a core should never have
 * sent (past a limit, a forged status, a bad time: skipped and recorded,
 * the rest of the page applied) or that carry secrets (stored redacted). */
#include "test.h"

#include "store/apply.h"
#include "store/blob.h"
#include "store/kv.h"
#include "store/outbox.h"
#include "store/store.h"
#include "util/error.h"
#include "util/fsx.h"

#include <ctype.h>
#include <jansson.h>
#include <sys/stat.h>

static char *root;

/* Ids a core would have made (ULIDs). */
#define ID_A "01JDQ7Y0000000000000000A01"
#define ID_B "01JDQ7Y0000000000000000A02"
#define ID_C "01JDQ7Y0000000000000000A03"
#define ID_BAD1 "01JDQ7Y0000000000000000B01"
#define ID_BAD2 "01JDQ7Y0000000000000000B02"
#define ID_BAD3 "01JDQ7Y0000000000000000B03"
#define ID_BAD4 "01JDQ7Y0000000000000000B04"
#define ID_BAD5 "01JDQ7Y0000000000000000B05"
#define ID_GOOD "01JDQ7Y0000000000000000C01"
#define ID_SECRET "01JDQ7Y0000000000000000D01"

static cx_store *fresh(const char *name) {
    char *dir = cx_fs_join(root, name);
    cx_store *s = NULL;
    CX_CHECK_OK(cx_store_open(&s, dir));
    free(dir);
    return s;
}

static const char *sget(const json_t *o, const char *k) {
    return json_string_value(json_object_get(o, k));
}

static long long iget(const json_t *o, const char *k) {
    return (long long)json_integer_value(json_object_get(o, k));
}

/* An item as a core sends it (a new reference). */
static json_t *item(const char *id, const char *kind, const char *status, const char *title,
                    const char *body) {
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:[s], s:s, s:s, s:s}", "id", id,
                     "kind", kind, "status", status, "subcortex", "build", "title", title,
                     "body", body, "visibility", "shared", "tags", "ci", "author",
                     "bob@example.com", "created_at", "2026-12-01T10:00:00Z", "updated_at",
                     "2026-12-01T10:00:00Z");
}

/* A page of changes; `changes` is stolen. */
static json_t *page(json_t *changes, long long next, bool more) {
    return json_pack("{s:o, s:I, s:b}", "changes", changes, "next", (json_int_t)next, "more",
                     more);
}

static json_t *change(long long seq, json_t *it) {
    return json_pack("{s:I, s:o}", "seq", (json_int_t)seq, "item", it);
}

static json_t *tombstone(long long seq, const char *id) {
    return json_pack("{s:I, s:s, s:b}", "seq", (json_int_t)seq, "id", id, "deleted", 1);
}

/* Applies one page of one change. */
static int apply1(cx_store *s, json_t *ch, long long next, cx_apply_result *res) {
    json_t *p = page(json_pack("[o]", ch), next, false);
    int r = cx_apply_page(s, p, res);
    json_decref(p);
    return r;
}

/* The stored item, or NULL when there is none. Caller frees. */
static json_t *get(cx_store *s, const char *id) {
    json_t *o = NULL;
    if (cx_store_get(s, id, &o) != 0) {
        cx_error_clear();
        return NULL;
    }
    return o;
}

static long long total_items(cx_store *s) {
    json_t *st = NULL;
    long long n = -1;
    if (cx_store_status(s, &st) == 0)
        n = iget(json_object_get(st, "items"), "total");
    json_decref(st);
    return n;
}

static const cx_actor who = {.author = "ada@example.com", .agent = "test-agent"};

static void test_new_and_update(void) {
    cx_store *s = fresh("update");
    cx_apply_result res;
    CX_CHECK_OK(apply1(s, change(1, item(ID_A, "observation", "recorded", "Flaky build",
                                          "the cache key misses the lockfile")),
                       1, &res));
    CX_CHECK_INT(res.applied, 1);
    CX_CHECK_INT(res.skipped, 0);
    CX_CHECK_INT(res.next, 1);
    json_t *o = get(s, ID_A);
    CX_CHECK(o != NULL);
    CX_CHECK_STR(sget(o, "title"), "Flaky build");
    CX_CHECK_STR(sget(o, "subcortex"), "build");
    CX_CHECK_INT(iget(o, "server_seq"), 1);
    CX_CHECK_STR(sget(o, "created_at"), "2026-12-01T10:00:00.000Z");
    json_decref(o);

    /* an update of the same id */
    CX_CHECK_OK(apply1(s, change(2, item(ID_A, "observation", "recorded", "Flaky build",
                                          "the cache key now hashes the lockfile")),
                       2, &res));
    CX_CHECK_INT(res.applied, 1);
    o = get(s, ID_A);
    CX_CHECK_STR(sget(o, "body"), "the cache key now hashes the lockfile");
    CX_CHECK_INT(iget(o, "server_seq"), 2);
    json_decref(o);
    int64_t cur = -1;
    CX_CHECK_OK(cx_kv_cursor(s, &cur));
    CX_CHECK_INT(cur, 2);

    /* an id in lower case reaches the same row */
    char lower[32];
    snprintf(lower, sizeof lower, "%s", ID_A);
    for (char *p = lower; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    CX_CHECK_OK(apply1(s, change(3, item(lower, "observation", "recorded", "Flaky build",
                                          "third revision")),
                       3, &res));
    CX_CHECK_INT(res.applied, 1);
    CX_CHECK_INT(total_items(s), 1);
    o = get(s, ID_A);
    CX_CHECK_STR(sget(o, "body"), "third revision");
    CX_CHECK_STR(sget(o, "id"), ID_A);
    json_decref(o);
    /* and a lower-case tombstone deletes it */
    CX_CHECK_OK(apply1(s, tombstone(4, lower), 4, &res));
    CX_CHECK_INT(res.applied, 1);
    CX_CHECK(get(s, ID_A) == NULL);
    cx_store_free(s);
}

static void test_local_work_wins(void) {
    cx_store *s = fresh("local");
    json_t *out = NULL;
    cx_note n = {.title = "Use the lockfile", .body = "local text of the draft"};
    CX_CHECK_OK(cx_store_draft(s, &who, &n, &out));
    char draft[32];
    snprintf(draft, sizeof draft, "%s", sget(out, "id"));
    json_decref(out);

    /* a pulled update of a draft with unpushed work is not applied */
    cx_apply_result res;
    CX_CHECK_OK(apply1(s, change(1, item(draft, "draft", "pending", "Other", "core text")), 1,
                       &res));
    CX_CHECK_INT(res.applied, 0);
    json_t *o = get(s, draft);
    CX_CHECK_STR(sget(o, "body"), "local text of the draft");
    CX_CHECK_STR(sget(o, "title"), "Use the lockfile");
    json_decref(o);

    /* a tombstone does not delete it either */
    CX_CHECK_OK(apply1(s, tombstone(2, draft), 2, &res));
    CX_CHECK_INT(res.applied, 0);
    CX_CHECK((o = get(s, draft)) != NULL);
    json_decref(o);

    /* a reviewer's decision applies; the local text stays */
    json_t *it = item(draft, "thread", "canon", "Reviewed title", "reviewed text");
    json_object_set_new(it, "review",
                        json_pack("{s:s, s:s, s:s}", "decision", "approve", "reviewer",
                                  "rita@example.com", "at", "2026-12-02T09:00:00Z"));
    CX_CHECK_OK(apply1(s, change(3, it), 3, &res));
    CX_CHECK_INT(res.applied, 1);
    o = get(s, draft);
    CX_CHECK_STR(sget(o, "kind"), "thread");
    CX_CHECK_STR(sget(o, "status"), "canon");
    CX_CHECK_STR(sget(o, "body"), "local text of the draft");
    CX_CHECK_STR(sget(json_object_get(o, "review"), "decision"), "approve");
    json_decref(o);

    /* a private local item is never overwritten or deleted by a core */
    cx_note pn = {.body = "private note about my shell aliases", .visibility = "private"};
    CX_CHECK_OK(cx_store_observe(s, &who, &pn, 1, NULL, NULL, &out));
    char priv[32];
    snprintf(priv, sizeof priv, "%s",
             sget(json_array_get(json_object_get(out, "results"), 0), "id"));
    json_decref(out);
    CX_CHECK_OK(apply1(s, change(4, item(priv, "observation", "recorded", "x", "overwritten")),
                       4, &res));
    CX_CHECK_INT(res.applied, 0);
    CX_CHECK_OK(apply1(s, tombstone(5, priv), 5, &res));
    CX_CHECK_INT(res.applied, 0);
    o = get(s, priv);
    CX_CHECK(o != NULL);
    CX_CHECK_STR(sget(o, "body"), "private note about my shell aliases");
    CX_CHECK_STR(sget(o, "visibility"), "private");
    json_decref(o);

    /* a synced item without local work is deleted by a tombstone */
    CX_CHECK_OK(apply1(s, change(6, item(ID_B, "observation", "recorded", "t", "synced")), 6,
                       &res));
    CX_CHECK((o = get(s, ID_B)) != NULL);
    json_decref(o);
    CX_CHECK_OK(apply1(s, tombstone(7, ID_B), 7, &res));
    CX_CHECK_INT(res.applied, 1);
    CX_CHECK(get(s, ID_B) == NULL);

    /* a comment whose parent is not here keeps no parent */
    it = item(ID_C, "comment", "recorded", "", "a comment");
    json_object_set_new(it, "parent_id", json_string("01JDQ7Y0000000000000000Z99"));
    CX_CHECK_OK(apply1(s, change(8, it), 8, &res));
    o = get(s, ID_C);
    CX_CHECK(o != NULL && json_object_get(o, "parent_id") == NULL);
    json_decref(o);
    cx_store_free(s);
}

static void test_rebuild(void) {
    cx_store *s = fresh("rebuild");
    cx_apply_result res;
    json_t *changes = json_pack("[o, o]",
                                change(1, item(ID_A, "observation", "recorded", "a", "from core")),
                                change(2, item(ID_B, "observation", "recorded", "b", "from core")));
    json_t *p = page(changes, 2, false);
    CX_CHECK_OK(cx_apply_page(s, p, &res));
    json_decref(p);
    CX_CHECK_INT(res.applied, 2);

    /* local work: one observation pushed and acknowledged, one not */
    cx_note n1 = {.body = "pushed local observation"}, n2 = {.body = "unpushed local observation"};
    json_t *out = NULL;
    CX_CHECK_OK(cx_store_observe(s, &who, &n1, 1, NULL, NULL, &out));
    char pushed[32];
    snprintf(pushed, sizeof pushed, "%s",
             sget(json_array_get(json_object_get(out, "results"), 0), "id"));
    json_decref(out);
    json_t *ops = NULL, *blobs = NULL;
    CX_CHECK_OK(cx_outbox_batch(s, CX_OUTBOX_MAX_OPS, CX_OUTBOX_MAX_BYTES, &ops, &blobs));
    CX_CHECK_INT(json_array_size(ops), 1);
    json_t *results = json_pack("[{s:s, s:s, s:i}]", "op_id",
                                sget(json_array_get(ops, 0), "op_id"), "status", "applied", "seq",
                                3);
    size_t acked = 0, rejected = 0;
    CX_CHECK_OK(cx_outbox_ack(s, ops, results, &acked, &rejected));
    CX_CHECK_INT(acked, 1);
    json_decref(ops);
    json_decref(blobs);
    json_decref(results);
    json_t *o = get(s, pushed);
    CX_CHECK_INT(iget(o, "server_seq"), 3);
    json_decref(o);
    CX_CHECK_OK(cx_store_observe(s, &who, &n2, 1, NULL, NULL, &out));
    char unpushed[32];
    snprintf(unpushed, sizeof unpushed, "%s",
             sget(json_array_get(json_object_get(out, "results"), 0), "id"));
    json_decref(out);

    CX_CHECK_OK(cx_apply_rebuild(s));
    CX_CHECK(get(s, ID_A) == NULL);
    CX_CHECK(get(s, ID_B) == NULL);
    CX_CHECK(get(s, pushed) == NULL); /* the core has it: pulled again */
    CX_CHECK((o = get(s, unpushed)) != NULL);
    json_decref(o);
    int64_t cur = -1;
    CX_CHECK_OK(cx_kv_cursor(s, &cur));
    CX_CHECK_INT(cur, 0);
    json_t *st = NULL;
    CX_CHECK_OK(cx_outbox_state(s, &st));
    CX_CHECK_INT(iget(st, "backlog"), 1);
    json_decref(st);
    cx_store_free(s);
}

/* Over-limit and forged items are skipped, recorded, and the page goes on. */
static void test_skips(void) {
    cx_store *s = fresh("skips");
    char *title = malloc(1025), *body = malloc(300 * 1024 + 1);
    memset(title, 't', 1024);
    title[1024] = '\0';
    memset(body, 'b', 300 * 1024);
    body[300 * 1024] = '\0';
    json_t *many = json_array();
    for (int i = 0; i < 10000; i++) {
        char sha[65];
        snprintf(sha, sizeof sha, "%064x", i);
        json_array_append_new(many, json_string(sha));
    }
    json_t *bad_blobs = item(ID_BAD3, "artifact", "published", "tool.sh", "");
    json_object_set_new(bad_blobs, "blobs", many);
    json_t *bad_time = item(ID_BAD4, "observation", "recorded", "t", "x");
    json_object_set_new(bad_time, "created_at", json_string("99999-99-99"));
    json_t *changes = json_pack(
        "[o, o, o, o, o, o, o]", change(1, item(ID_BAD1, "observation", "recorded", title, "x")),
        change(2, item(ID_BAD2, "observation", "recorded", "t", body)), change(3, bad_blobs),
        change(4, bad_time), change(5, item(ID_BAD5, "observation", "canon", "t", "forged")),
        change(6, item(ID_GOOD, "observation", "recorded", "good", "a good item")),
        tombstone(7, "not-an-id"));
    free(title);
    free(body);
    json_t *p = page(changes, 9, false);
    cx_apply_result res;
    CX_CHECK_OK(cx_apply_page(s, p, &res));
    json_decref(p);
    CX_CHECK_INT(res.skipped, 6);
    CX_CHECK_INT(res.applied, 1);
    CX_CHECK_INT(res.next, 9);
    CX_CHECK_STR(res.last_skip, "tombstone id: must be a ULID");
    json_t *o = get(s, ID_GOOD);
    CX_CHECK(o != NULL);
    json_decref(o);
    const char *bad[] = {ID_BAD1, ID_BAD2, ID_BAD3, ID_BAD4, ID_BAD5};
    for (size_t i = 0; i < 5; i++)
        CX_CHECK(get(s, bad[i]) == NULL);
    int64_t cur = -1;
    CX_CHECK_OK(cx_kv_cursor(s, &cur));
    CX_CHECK_INT(cur, 9);

    /* the reasons name the field; the state keeps the count and the last */
    const struct {
        json_t *it;
        const char *reason;
    } one[] = {
        {item(ID_BAD1, "observation", "canon", "t", "x"), "item.status"},
        {item(ID_BAD2, "observation", "recorded", "t", "x"), NULL},
    };
    json_object_set_new(one[1].it, "created_at", json_string("99999-99-99"));
    CX_CHECK_OK(apply1(s, change(10, one[0].it), 10, &res));
    CX_CHECK_INT(res.skipped, 1);
    CX_CHECK(strncmp(res.last_skip, "item.status", 11) == 0);
    CX_CHECK_STR(res.last_skip_id, ID_BAD1);
    CX_CHECK_OK(apply1(s, change(11, one[1].it), 11, &res));
    CX_CHECK(strncmp(res.last_skip, "item.created_at", 15) == 0);
    json_t *st = NULL;
    CX_CHECK_OK(cx_outbox_state(s, &st));
    CX_CHECK_INT(iget(st, "skipped"), 8);
    CX_CHECK_STR(sget(json_object_get(st, "last_skip"), "id"), ID_BAD2);
    CX_CHECK(strncmp(sget(json_object_get(st, "last_skip"), "reason"), "item.created_at", 15) == 0);
    CX_CHECK_INT(iget(st, "cursor"), 11);
    json_decref(st);

    /* one title over the limit, as the sidecar reads it */
    char *t = malloc(CX_STORE_MAX_TITLE + 2);
    memset(t, 'x', CX_STORE_MAX_TITLE + 1);
    t[CX_STORE_MAX_TITLE + 1] = '\0';
    CX_CHECK_OK(apply1(s, change(12, item(ID_BAD1, "observation", "recorded", t, "x")), 12,
                       &res));
    CX_CHECK_INT(res.skipped, 1);
    CX_CHECK(strncmp(res.last_skip, "item.title", 10) == 0);
    free(t);

    /* a 50 MB body, as a hostile core might send */
    size_t big = 50u * 1024 * 1024;
    char *huge = malloc(big + 1);
    if (huge) {
        memset(huge, 'h', big);
        huge[big] = '\0';
        json_t *hit = item(ID_BAD2, "observation", "recorded", "t", "x");
        json_object_set_new(hit, "body", json_stringn_nocheck(huge, big));
        free(huge);
        CX_CHECK_OK(apply1(s, change(12, hit), 12, &res));
        CX_CHECK_INT(res.skipped, 1);
        CX_CHECK(strncmp(res.last_skip, "item.body", 9) == 0);
        CX_CHECK(get(s, ID_BAD2) == NULL);
    }

    /* a page that is not a page is refused whole */
    json_t *notpage = json_pack("{s:[i], s:i, s:b}", "changes", 1, "next", 13, "more", 0);
    CX_CHECK_INT(cx_apply_page(s, notpage, &res), CX_EINVAL);
    json_decref(notpage);
    CX_CHECK_OK(cx_kv_cursor(s, &cur));
    CX_CHECK_INT(cur, 12);
    cx_store_free(s);
}

/* Secrets in a pulled item's texts are stored redacted. */
static void test_redaction(void) {
    cx_store *s = fresh("redact");
    const char *aws_id = "AKIA5NEHUOQIYE7OL66L";
    const char *gh = "ghp_7nLP0gRKgSjAnuoFseSzXSdoQMBiAxxHWH3Q";
    const char *slack = "xoxb-240175980203-1528346894440-2JvEpsIUXVRTjAk6alnlOJs5";
    const char *pw = "5nRyUsJoPxDpu8o5";
    char title[128], body[512], tag[64];
    snprintf(title, sizeof title, "deploy with %s", aws_id);
    snprintf(body, sizeof body,
             "export GITHUB_TOKEN=%s\nDATABASE_URL=postgres://app:%s@db:5432/app", gh, pw);
    snprintf(tag, sizeof tag, "%s", slack);
    json_t *it = item(ID_SECRET, "observation", "recorded", title, body);
    json_object_set_new(it, "tags", json_pack("[s]", tag));
    json_object_set_new(it, "author", json_string(slack));
    cx_apply_result res;
    CX_CHECK_OK(apply1(s, change(1, it), 1, &res));
    CX_CHECK_INT(res.applied, 1);
    json_t *o = get(s, ID_SECRET);
    CX_CHECK(o != NULL);
    char *all = json_dumps(o, JSON_COMPACT);
    CX_CHECK(all && !strstr(all, aws_id) && !strstr(all, gh) && !strstr(all, slack) &&
             !strstr(all, pw));
    CX_CHECK(strstr(sget(o, "title"), "[REDACTED:") != NULL);
    CX_CHECK(strstr(sget(o, "body"), "[REDACTED:") != NULL);
    CX_CHECK(strstr(json_string_value(json_array_get(json_object_get(o, "tags"), 0)),
                    "[REDACTED:") != NULL);
    free(all);
    json_decref(o);
    cx_store_free(s);
}

/* Blobs are served only when their content matches their name. */
static void test_blob_read(void) {
    cx_store *s = fresh("blobs");
    cx_publish p = {.name = "tool.sh", .data = "echo hi\n", .len = 8};
    json_t *out = NULL;
    CX_CHECK_OK(cx_store_publish(s, &who, &p, &out));
    char sha[65];
    snprintf(sha, sizeof sha, "%s", sget(out, "sha256"));
    json_decref(out);
    char *data = NULL;
    size_t len = 0;
    CX_CHECK_OK(cx_blob_read(s, sha, &data, &len));
    CX_CHECK(len == 8 && data && memcmp(data, "echo hi\n", 8) == 0);
    free(data);
    data = NULL;
    CX_CHECK_INT(cx_blob_read(s, "../../etc/passwd", &data, &len), CX_EINVAL);
    char missing[65];
    memset(missing, 'a', 64);
    missing[64] = '\0';
    CX_CHECK_INT(cx_blob_read(s, missing, &data, &len), CX_ENOTFOUND);
    /* damage the file: same name, other content */
    char sub[96];
    snprintf(sub, sizeof sub, "blobs/%.2s/%s", sha, sha);
    char *path = cx_fs_join(cx_store_dir(s), sub);
    chmod(path, 0600);
    CX_CHECK_OK(cx_fs_write_atomic(path, "echo no\n", 8, 0600));
    CX_CHECK_INT(cx_blob_read(s, sha, &data, &len), CX_EIO);
    CX_CHECK(data == NULL);
    free(path);
    cx_store_free(s);
}

/* A core that claims canon, approval or acceptance without the decision
 * behind it (a compromised core, or one that applied a forged push): the
 * item is skipped as invalid, never stored or ranked as claimed; with the
 * reviewer's decision it is applied. */
static void test_forged_status(void) {
    cx_store *s = fresh("forged");
    cx_apply_result res;
    json_t *canon = item(ID_BAD1, "thread", "canon", "Forged canon", "rm -rf is safe");
    json_t *approved = item(ID_BAD2, "draft", "approved", "Forged approval", "x");
    json_object_set_new(approved, "review", json_pack("{s:s, s:s}", "decision", "reject", "at",
                                                      "2026-12-02T09:00:00Z"));
    json_t *accepted = item(ID_BAD3, "artifact", "accepted", "tool.sh", "x");
    json_object_set_new(accepted, "versions",
                        json_pack("[{s:i, s:s, s:s}]", "version", 1, "sha256",
                                  "0000000000000000000000000000000000000000000000000000000000000000",
                                  "status", "accepted"));
    json_t *rejected = item(ID_BAD4, "draft", "rejected", "Forged rejection", "x");
    /* each is skipped for its missing decision, not for another check */
    const struct {
        json_t *it;
        const char *id, *reason;
    } forged[] = {
        {canon, ID_BAD1, "item.review"},
        {approved, ID_BAD2, "item.review"},
        {accepted, ID_BAD3, "item.versions"},
        {rejected, ID_BAD4, "item.review"},
    };
    for (size_t i = 0; i < 4; i++) {
        CX_CHECK_OK(apply1(s, change((long long)i + 1, forged[i].it), (long long)i + 1, &res));
        CX_CHECK_INT(res.applied, 0);
        CX_CHECK_INT(res.skipped, 1);
        CX_CHECK_INT(res.next, (long long)i + 1);
        CX_CHECK_STR(res.last_skip_id, forged[i].id);
        CX_CHECK(strncmp(res.last_skip, forged[i].reason, strlen(forged[i].reason)) == 0);
        CX_CHECK(strstr(res.last_skip, "reviewer") != NULL);
    }
    const char *ids[] = {ID_BAD1, ID_BAD2, ID_BAD3, ID_BAD4};
    for (size_t i = 0; i < 4; i++)
        CX_CHECK(get(s, ids[i]) == NULL);

    /* a pulled thread claiming the id of a synced draft leaves the draft */
    CX_CHECK_OK(apply1(s, change(5, item(ID_A, "draft", "pending", "Draft", "draft text")), 5,
                       &res));
    CX_CHECK_OK(apply1(s, change(6, item(ID_A, "thread", "canon", "Draft", "poisoned")), 6,
                       &res));
    CX_CHECK_INT(res.skipped, 1);
    json_t *o = get(s, ID_A);
    CX_CHECK_STR(sget(o, "kind"), "draft");
    CX_CHECK_STR(sget(o, "status"), "pending");
    CX_CHECK_STR(sget(o, "body"), "draft text");
    json_decref(o);

    /* with the reviewer's decision, canon and accepted apply */
    json_t *th = item(ID_A, "thread", "canon", "Draft", "draft text");
    json_object_set_new(th, "review", json_pack("{s:s, s:s, s:s}", "decision", "approve",
                                                "reviewer", "rita@example.com", "at",
                                                "2026-12-02T09:00:00Z"));
    CX_CHECK_OK(apply1(s, change(7, th), 7, &res));
    CX_CHECK_INT(res.applied, 1);
    o = get(s, ID_A);
    CX_CHECK_STR(sget(o, "status"), "canon");
    json_decref(o);
    json_t *ok = item(ID_B, "artifact", "accepted", "tool.sh", "x");
    json_object_set_new(ok, "versions",
                        json_pack("[{s:i, s:s, s:s, s:s}]", "version", 1, "sha256",
                                  "0000000000000000000000000000000000000000000000000000000000000000",
                                  "status", "accepted", "accepted_by", "rita@example.com"));
    CX_CHECK_OK(apply1(s, change(8, ok), 8, &res));
    CX_CHECK_INT(res.applied, 1);
    o = get(s, ID_B);
    CX_CHECK(o != NULL && strcmp(sget(o, "status"), "accepted") == 0);
    json_decref(o);
    cx_store_free(s);
}

/* A private note's id never leaves the machine and nothing a core sends
 * touches the note: a pulled item with its id (any kind, even a decided
 * thread), its tombstone; a shared draft citing it is pushed without it,
 * and keeps it locally after the core's copy comes back. */
static void test_private(void) {
    cx_store *s = fresh("private");
    json_t *out = NULL;
    cx_note pn = {.body = "private: the vpn password hint is the cat's name",
                  .visibility = "private"};
    CX_CHECK_OK(cx_store_observe(s, &who, &pn, 1, NULL, NULL, &out));
    char priv[32], shared[32], draft[32];
    snprintf(priv, sizeof priv, "%s",
             sget(json_array_get(json_object_get(out, "results"), 0), "id"));
    json_decref(out);
    cx_note sn = {.body = "the vpn drops every 30 minutes"};
    CX_CHECK_OK(cx_store_observe(s, &who, &sn, 1, NULL, NULL, &out));
    snprintf(shared, sizeof shared, "%s",
             sget(json_array_get(json_object_get(out, "results"), 0), "id"));
    json_decref(out);
    const char *ev[] = {priv, shared};
    cx_note dn = {.title = "VPN drops", .body = "the vpn drops every 30 minutes",
                  .evidence = {.v = ev, .n = 2}};
    CX_CHECK_OK(cx_store_draft(s, &who, &dn, &out));
    snprintf(draft, sizeof draft, "%s", sget(out, "id"));
    json_decref(out);

    /* what the outbox sends: the draft cites only the shared note */
    json_t *ops = NULL, *blobs = NULL;
    CX_CHECK_OK(cx_outbox_batch(s, CX_OUTBOX_MAX_OPS, CX_OUTBOX_MAX_BYTES, &ops, &blobs));
    char *text = json_dumps(ops, JSON_COMPACT);
    CX_CHECK(text && !strstr(text, priv));
    size_t i;
    json_t *op;
    bool found = false;
    json_array_foreach(ops, i, op) {
        json_t *it = json_object_get(op, "item");
        if (strcmp(sget(it, "id"), draft) == 0) {
            found = true;
            json_t *e = json_object_get(it, "evidence");
            CX_CHECK_INT(json_array_size(e), 1);
            CX_CHECK_STR(json_string_value(json_array_get(e, 0)), shared);
        }
    }
    CX_CHECK(found);
    free(text);
    size_t acked = 0;
    json_t *results = json_array();
    json_array_foreach(ops, i, op)
        json_array_append_new(results, json_pack("{s:s, s:s, s:i}", "op_id", sget(op, "op_id"),
                                                 "status", "applied", "seq", (int)i + 1));
    CX_CHECK_OK(cx_outbox_ack(s, ops, results, &acked, NULL));
    json_decref(results);
    json_decref(ops);
    json_decref(blobs);

    /* the core's copy of the draft comes back: the local draft keeps both */
    json_t *back = item(draft, "draft", "pending", "VPN drops", "the vpn drops every 30 minutes");
    json_object_set_new(back, "evidence", json_pack("[s]", shared));
    cx_apply_result res;
    CX_CHECK_OK(apply1(s, change(10, back), 10, &res));
    CX_CHECK_INT(res.applied, 1);
    json_t *o = get(s, draft);
    json_t *e = json_object_get(o, "evidence");
    CX_CHECK_INT(json_array_size(e), 2);
    text = json_dumps(e, JSON_COMPACT);
    CX_CHECK(text && strstr(text, priv) && strstr(text, shared));
    free(text);
    json_decref(o);

    /* an update, a decided thread, a tombstone with the private note's id */
    CX_CHECK_OK(apply1(s, change(11, item(priv, "observation", "recorded", "x", "replaced")), 11,
                       &res));
    CX_CHECK_INT(res.applied, 0);
    json_t *th = item(priv, "thread", "canon", "x", "replaced by a thread");
    json_object_set_new(th, "review", json_pack("{s:s, s:s}", "decision", "approve", "at",
                                                "2026-12-02T09:00:00Z"));
    CX_CHECK_OK(apply1(s, change(12, th), 12, &res));
    CX_CHECK_INT(res.skipped, 0);
    CX_CHECK_INT(res.applied, 0);
    CX_CHECK_OK(apply1(s, tombstone(13, priv), 13, &res));
    CX_CHECK_INT(res.applied, 0);
    o = get(s, priv);
    CX_CHECK(o != NULL);
    CX_CHECK_STR(sget(o, "body"), "private: the vpn password hint is the cat's name");
    CX_CHECK_STR(sget(o, "kind"), "observation");
    CX_CHECK_STR(sget(o, "visibility"), "private");
    json_decref(o);
    cx_store_free(s);
}


/* A pulled artifact keeps its versions: rows with hash, size and
 * acceptance, content absent until fetched (cx_blob_missing lists it; a
 * fetch that does not match is refused and recorded; one that matches is
 * readable); a version with a bad size or status skips the item; a second
 * artifact of a name is stored beside the first. */
static void test_pulled_artifact(void) {
    cx_store *s = fresh("pulled-artifact");
    cx_apply_result res;
    char sha1[65], sha2[65];
    cx_blob_sha256("one\n", 4, sha1);
    cx_blob_sha256("two!\n", 5, sha2);
    json_t *a = item(ID_A, "artifact", "accepted", "tool.sh", "");
    json_object_set_new(a, "versions",
                        json_pack("[{s:i, s:s, s:i, s:s}, {s:i, s:s, s:i, s:s, s:s, s:s}]",
                                  "version", 1, "sha256", sha1, "size", 4, "status", "published",
                                  "version", 2, "sha256", sha2, "size", 5, "status", "accepted",
                                  "accepted_by", "rita", "accepted_at", "2026-12-02T09:00:00Z"));
    CX_CHECK_OK(apply1(s, change(1, a), 1, &res));
    CX_CHECK_INT(res.applied, 1);
    json_t *o = get(s, ID_A);
    json_t *vs = json_object_get(o, "versions");
    CX_CHECK_INT(json_array_size(vs), 2);
    CX_CHECK_STR(sget(json_array_get(vs, 0), "sha256"), sha1);
    CX_CHECK_INT(iget(json_array_get(vs, 1), "size"), 5);
    CX_CHECK_STR(sget(json_array_get(vs, 1), "status"), "accepted");
    CX_CHECK_STR(sget(json_array_get(vs, 1), "accepted_by"), "rita");
    CX_CHECK(json_is_false(json_object_get(json_array_get(vs, 0), "content")));
    CX_CHECK_STR(sget(o, "status"), "accepted");
    json_decref(o);
    char *data = NULL;
    size_t len = 0;
    CX_CHECK_INT(cx_store_artifact_content(s, ID_A, 1, &data, &len), CX_ENOTFOUND);
    CX_CHECK(strstr(cx_error_last(), "not on this machine yet") != NULL);

    json_t *miss = NULL;
    CX_CHECK_OK(cx_blob_missing(s, 10, &miss));
    CX_CHECK_INT(json_array_size(miss), 2);
    json_decref(miss);
    /* wrong content for its name: refused, recorded, not listed again at once */
    cx_blob_fetch *f = NULL;
    CX_CHECK_OK(cx_blob_fetch_open(s, sha1, 4, &f));
    CX_CHECK_OK(cx_blob_fetch_write(f, "ONE\n", 4));
    CX_CHECK_INT(cx_blob_fetch_commit(s, f), CX_EIO);
    CX_CHECK(strstr(cx_error_last(), "hashes to") != NULL);
    cx_blob_fetch_free(f);
    CX_CHECK_OK(cx_blob_fetch_failed(s, sha1, "the core's content hashes to something else"));
    CX_CHECK_INT(cx_store_artifact_content(s, ID_A, 1, &data, &len), CX_ENOTFOUND);
    CX_CHECK(strstr(cx_error_last(), "hashes to something else") != NULL);
    CX_CHECK_OK(cx_blob_missing(s, 10, &miss));
    CX_CHECK_INT(json_array_size(miss), 1);
    json_decref(miss);
    /* more than the version's size: refused as it arrives */
    f = NULL;
    CX_CHECK_OK(cx_blob_fetch_open(s, sha2, 5, &f));
    CX_CHECK_INT(cx_blob_fetch_write(f, "two!\nmore", 9), CX_ELIMIT);
    cx_blob_fetch_free(f);
    /* the right content is kept and read */
    f = NULL;
    CX_CHECK_OK(cx_blob_fetch_open(s, sha2, 5, &f));
    CX_CHECK_OK(cx_blob_fetch_write(f, "tw", 2));
    CX_CHECK_OK(cx_blob_fetch_write(f, "o!\n", 3));
    CX_CHECK_OK(cx_blob_fetch_commit(s, f));
    cx_blob_fetch_free(f);
    CX_CHECK_OK(cx_store_artifact_content(s, ID_A, 2, &data, &len));
    CX_CHECK(len == 5 && data && memcmp(data, "two!\n", 5) == 0);
    free(data);
    data = NULL;
    CX_CHECK_INT(cx_blob_fetch_open(s, sha2, (int64_t)CX_STORE_MAX_BLOB + 1, &f), CX_ELIMIT);

    /* a bad size or a version status the core cannot give: skipped */
    json_t *bad[] = {
        json_pack("{s:i, s:s, s:i, s:s}", "version", 1, "sha256", sha1, "size", -1, "status",
                  "published"),
        json_pack("{s:i, s:s, s:I, s:s}", "version", 1, "sha256", sha1, "size",
                  (json_int_t)99999999999, "status", "published"),
        json_pack("{s:i, s:s, s:s, s:s}", "version", 1, "sha256", sha1, "size", "4", "status",
                  "published"),
        json_pack("{s:i, s:s, s:i, s:s}", "version", 1, "sha256", sha1, "size", 4, "status",
                  "canon"),
        json_pack("{s:i, s:s, s:i, s:s}", "version", 1, "sha256", sha1, "size", 4, "status",
                  "accepted"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *b = item(ID_BAD1, "artifact", "published", "bad.sh", "");
        json_object_set_new(b, "versions", json_pack("[o]", bad[i]));
        CX_CHECK_OK(apply1(s, change(2 + (long long)i, b), 2 + (long long)i, &res));
        CX_CHECK_INT(res.skipped, 1);
        CX_CHECK(get(s, ID_BAD1) == NULL);
    }

    /* the same name from another workspace: a second artifact */
    json_t *b = item(ID_B, "artifact", "published", "tool.sh", "");
    json_object_set_new(b, "versions", json_pack("[{s:i, s:s, s:i, s:s}]", "version", 1,
                                                 "sha256", sha2, "size", 5, "status",
                                                 "published"));
    CX_CHECK_OK(apply1(s, change(10, b), 10, &res));
    CX_CHECK_INT(res.applied, 1);
    CX_CHECK_INT(res.skipped, 0);
    o = get(s, ID_B);
    CX_CHECK(o != NULL && strcmp(sget(o, "title"), "tool.sh") == 0);
    json_decref(o);
    /* its content is the blob fetched already: readable at once */
    CX_CHECK_OK(cx_store_artifact_content(s, ID_B, 0, &data, &len));
    CX_CHECK(len == 5);
    free(data);
    cx_store_free(s);
}

/* A pulled observation folds like a local one: the same text observed
 * here afterwards is a repeat of it; a pulled one whose text a local
 * shared note already has is stored beside it (no unique-index failure). */
static void test_pulled_observation_hash(void) {
    cx_store *s = fresh("pulled-hash");
    cx_apply_result res;
    CX_CHECK_OK(apply1(s, change(1, item(ID_A, "observation", "recorded", "",
                                         "Run  make\tcheck before pushing ")),
                       1, &res));
    CX_CHECK_INT(res.applied, 1);
    cx_note n = {.body = "Run make check before pushing"};
    json_t *out = NULL;
    CX_CHECK_OK(cx_store_observe(s, &who, &n, 1, NULL, NULL, &out));
    json_t *r0 = json_array_get(json_object_get(out, "results"), 0);
    CX_CHECK(json_is_true(json_object_get(r0, "repeat")));
    CX_CHECK_STR(sget(r0, "id"), ID_A);
    json_decref(out);
    out = NULL;
    cx_note m = {.body = "The cache lives in /var/cache/app"};
    CX_CHECK_OK(cx_store_observe(s, &who, &m, 1, NULL, NULL, &out));
    json_decref(out);
    CX_CHECK_OK(apply1(s, change(2, item(ID_B, "observation", "recorded", "",
                                         "The cache lives in /var/cache/app")),
                       2, &res));
    CX_CHECK_INT(res.applied, 1);
    json_t *o = get(s, ID_B);
    CX_CHECK(o != NULL);
    json_decref(o);
    cx_store_free(s);
}

int main(void) {
    root = cx_test_tmpdir();
    if (!root)
        return 1;
    test_new_and_update();
    test_local_work_wins();
    test_rebuild();
    test_skips();
    test_redaction();
    test_blob_read();
    test_forged_status();
    test_private();
    test_pulled_artifact();
    test_pulled_observation_hash();
    cx_test_rmrf(root);
    free(root);
    return cx_test_done();
}
