/* SPDX-License-Identifier: Apache-2.0 */
/* The one model of the wire (src/proto/wire.h) against the contract in
 * protocol/sync/: every kind, status, decision, op name and limit is read
 * from the JSON schemas and the OpenAPI text and compared with the
 * constants, so that code and contract cannot drift. Then the transitions,
 * trust order, id normalisation and the envelope check. Last, the
 * request parser's and the answer writer's fast paths against jansson.
 *
 * Usage: test-proto PROTOCOL_SYNC_DIR */
#include "test.h"

#include "proto/jsonrpc.h"
#include "proto/schema.h"
#include "proto/wire.h"

#include <jansson.h>
#include <stdint.h>

static const char *dir;

static json_t *schema(const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/schemas/%s", dir, name);
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    if (!j)
        fprintf(stderr, "cannot read %s: %s\n", path, e.text);
    return j;
}

/* j at a path of object keys, "a/b/c". */
static json_t *at(json_t *j, const char *path) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf, *slash; j && p; p = slash ? slash + 1 : NULL) {
        slash = strchr(p, '/');
        if (slash)
            *slash = '\0';
        j = json_object_get(j, p);
    }
    return j;
}

static long long num(json_t *j, const char *path) {
    json_t *v = at(j, path);
    if (!json_is_integer(v)) {
        fprintf(stderr, "schema has no integer at %s\n", path);
        return -1;
    }
    return (long long)json_integer_value(v);
}

/* The enum at path holds exactly the names name(0..n-1). */
static void check_enum(json_t *j, const char *path, const char *(*name)(int), int n) {
    json_t *e = at(j, path);
    CX_CHECK(json_is_array(e));
    CX_CHECK_INT(json_array_size(e), n);
    for (int i = 0; i < n; i++) {
        bool found = false;
        size_t k;
        json_t *v;
        json_array_foreach(e, k, v) found |= strcmp(json_string_value(v), name(i)) == 0;
        if (!found)
            fprintf(stderr, "%s lacks %s\n", path, name(i));
        CX_CHECK(found);
    }
}

static const char *kind_name(int i) { return cx_kind_name((cx_kind)i); }
static const char *status_name(int i) { return cx_status_name((cx_status)i); }
static const char *decision_name(int i) { return cx_decision_name((cx_decision)i); }
static const char *op_name(int i) {
    static const char *const ops[] = {CX_OP_ITEM_PUT, CX_OP_ARTIFACT_VERSION,
                                      CX_OP_REVIEW_DECISION};
    return ops[i];
}

static void test_against_schemas(void) {
    json_t *item = schema("item.json"), *common = schema("common.json");
    json_t *push = schema("push-request.json"), *missing = schema("blobs-missing-request.json");
    json_t *decision = schema("decision-request.json"), *pull = schema("pull-response.json");
    CX_CHECK(item && common && push && missing && decision && pull);
    if (!item || !common || !push || !missing || !decision || !pull)
        goto out;

    check_enum(item, "properties/kind/enum", kind_name, CX_KIND_COUNT);
    check_enum(item, "properties/status/enum", status_name, CX_STATUS_COUNT);
    check_enum(common, "$defs/review/properties/decision/enum", decision_name,
               CX_DECISION_COUNT);
    check_enum(decision, "properties/decision/enum", decision_name, CX_DECISION_COUNT);
    check_enum(push, "properties/ops/items/properties/op/enum", op_name, 3);
    for (int i = 0; i < 3; i++)
        CX_CHECK(cx_wire_op_known(op_name(i)));
    CX_CHECK(!cx_wire_op_known("item.delete"));

    CX_CHECK_INT(num(item, "properties/title/maxLength"), CX_WIRE_MAX_TITLE);
    CX_CHECK_INT(num(item, "properties/body/maxLength"), CX_WIRE_MAX_BODY);
    CX_CHECK_INT(num(item, "properties/subcortex/maxLength"), CX_WIRE_MAX_SUBCORTEX);
    CX_CHECK_INT(num(item, "properties/tags/maxItems"), CX_WIRE_MAX_TAGS);
    CX_CHECK_INT(num(item, "properties/tags/items/maxLength"), CX_WIRE_MAX_TAG);
    CX_CHECK_INT(num(item, "properties/author/maxLength"), CX_WIRE_MAX_PRINCIPAL);
    CX_CHECK_INT(num(item, "properties/agent/maxLength"), CX_WIRE_MAX_PRINCIPAL);
    CX_CHECK_INT(num(item, "properties/files/maxItems"), CX_WIRE_MAX_FILES);
    CX_CHECK_INT(num(item, "properties/files/items/maxLength"), CX_WIRE_MAX_PATH);
    CX_CHECK_INT(num(item, "properties/evidence/maxItems"), CX_WIRE_MAX_EVIDENCE);
    CX_CHECK_INT(num(item, "properties/evidence/items/maxLength"), CX_WIRE_MAX_ID);
    CX_CHECK_INT(num(item, "properties/parent_id/maxLength"), CX_WIRE_MAX_ID);
    CX_CHECK_INT(num(item, "properties/blobs/maxItems"), CX_WIRE_MAX_BLOBS);
    CX_CHECK_INT(num(item, "properties/versions/maxItems"), CX_WIRE_MAX_VERSIONS);
    CX_CHECK_INT(num(item, "properties/provenance/x-maxBytes"), CX_WIRE_MAX_PROVENANCE);
    CX_CHECK_INT(num(common, "$defs/timestamp/minLength"), CX_WIRE_MIN_TIMESTAMP);
    CX_CHECK_INT(num(common, "$defs/timestamp/maxLength"), CX_WIRE_MAX_TIMESTAMP);
    CX_CHECK_INT(num(common, "$defs/review/properties/note/maxLength"), CX_WIRE_MAX_NOTE);
    CX_CHECK_INT(num(common, "$defs/review/properties/reason/maxLength"), CX_WIRE_MAX_NOTE);
    CX_CHECK_INT(num(common, "$defs/review/properties/reviewer/maxLength"),
                 CX_WIRE_MAX_PRINCIPAL);
    CX_CHECK_INT(num(common, "$defs/artifact_version/properties/source_path/maxLength"),
                 CX_WIRE_MAX_SOURCE_PATH);
    CX_CHECK_INT(num(decision, "properties/note/maxLength"), CX_WIRE_MAX_NOTE);
    CX_CHECK_INT(num(push, "properties/ops/maxItems"), CX_WIRE_MAX_OPS);
    CX_CHECK_INT(num(push, "properties/ops/items/properties/op_id/maxLength"),
                 CX_WIRE_MAX_OP_ID);
    CX_CHECK_INT(num(missing, "properties/sha256/maxItems"), CX_WIRE_MAX_MISSING);
    /* "At most 500 ops and 4 MiB" */
    const char *pd = json_string_value(at(push, "description"));
    CX_CHECK(pd && strstr(pd, "500 ops") && strstr(pd, "4 MiB"));
    CX_CHECK_INT(CX_WIRE_MAX_PUSH_BYTES, 4 * 1024 * 1024);
    /* the pull page's byte budget and the largest answer, in numbers and in words */
    CX_CHECK_INT(num(pull, "x-maxPageBytes"), CX_WIRE_MAX_PAGE_BYTES);
    CX_CHECK_INT(num(pull, "x-maxAnswerBytes"), CX_WIRE_MAX_ANSWER_BYTES);
    const char *pld = json_string_value(at(pull, "description"));
    CX_CHECK(pld && strstr(pld, "8 MiB") && strstr(pld, "64 MiB"));
    CX_CHECK_INT(CX_WIRE_MAX_PAGE_BYTES, 8 * 1024 * 1024);
    CX_CHECK_INT(CX_WIRE_MAX_ANSWER_BYTES, 64 * 1024 * 1024);
out:
    json_decref(item);
    json_decref(common);
    json_decref(push);
    json_decref(missing);
    json_decref(decision);
    json_decref(pull);
}

/* Every route constant is a path of openapi.yaml, and the pull limits are
 * the ones it states. */
static void test_against_openapi(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/openapi.yaml", dir);
    FILE *f = fopen(path, "r");
    CX_CHECK(f != NULL);
    if (!f)
        return;
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    static const char *const routes[] = {
        CX_ROUTE_HEALTHZ ":", CX_ROUTE_INFO ":", CX_ROUTE_PUSH ":", CX_ROUTE_PULL ":",
        CX_ROUTE_BLOBS_MISSING ":", CX_ROUTE_BLOBS "{sha256}:", CX_ROUTE_REVIEW_QUEUE ":",
        CX_ROUTE_DRAFTS "{id}" CX_ROUTE_DECISION ":",
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        bool ok = strstr(text, routes[i]) != NULL;
        if (!ok)
            fprintf(stderr, "openapi.yaml has no path %s\n", routes[i]);
        CX_CHECK(ok);
    }
    /* the pull's limit parameter: maximum 1000, default 500 */
    const char *pull = strstr(text, CX_ROUTE_PULL ":");
    CX_CHECK(pull != NULL);
    if (pull) {
        const char *lim = strstr(pull, "name: limit");
        char want[128];
        snprintf(want, sizeof want, "maximum: %d, default: %d}", CX_WIRE_MAX_PULL_LIMIT,
                 CX_WIRE_DEFAULT_PULL_LIMIT);
        CX_CHECK(lim && strstr(lim, want) && strstr(lim, want) < strstr(pull, "responses:"));
        /* and its byte budget, before the pull's responses */
        snprintf(want, sizeof want, "x-maxPageBytes: %u\n", CX_WIRE_MAX_PAGE_BYTES);
        const char *budget = strstr(pull, want);
        CX_CHECK(budget && budget < strstr(pull, "responses:"));
    }
    const char *queue = strstr(text, CX_ROUTE_REVIEW_QUEUE ":");
    if (queue) {
        char want[64];
        snprintf(want, sizeof want, "maximum: %d,", CX_WIRE_MAX_QUEUE_LIMIT);
        const char *m = strstr(queue, want);
        CX_CHECK(m && m < strstr(queue, "responses:"));
    }
}

static void test_names(void) {
    for (int k = 0; k < CX_KIND_COUNT; k++)
        CX_CHECK_INT(cx_kind_parse(cx_kind_name((cx_kind)k)), k);
    for (int s = 0; s < CX_STATUS_COUNT; s++)
        CX_CHECK_INT(cx_status_parse(cx_status_name((cx_status)s)), s);
    CX_CHECK_INT(cx_kind_parse("Observation"), CX_KIND_INVALID);
    CX_CHECK_INT(cx_kind_parse(NULL), CX_KIND_INVALID);
    CX_CHECK(cx_kind_name(CX_KIND_COUNT) == NULL);
    CX_CHECK_INT(cx_decision_parse("approve"), CX_DECISION_APPROVE);
    CX_CHECK_INT(cx_decision_status(CX_DECISION_APPROVE), CX_STATUS_CANON);
    CX_CHECK(cx_decision_needs_note(CX_DECISION_REJECT));
    CX_CHECK(!cx_decision_needs_note(CX_DECISION_APPROVE));
    /* messages say "an agent key", "an observation", "a draft" */
    CX_CHECK_STR(cx_wire_article("agent"), "an");
    CX_CHECK_STR(cx_wire_article("admin"), "an");
    CX_CHECK_STR(cx_wire_article("observation"), "an");
    CX_CHECK_STR(cx_wire_article("artifact"), "an");
    CX_CHECK_STR(cx_wire_article("reviewer"), "a");
    CX_CHECK_STR(cx_wire_article("draft"), "a");
    CX_CHECK_STR(cx_wire_article(""), "a");
    CX_CHECK_STR(cx_wire_article(NULL), "a");
}

static void test_transitions(void) {
    /* every kind is born in a status it may hold */
    for (int k = 0; k < CX_KIND_COUNT; k++)
        CX_CHECK(cx_status_allowed((cx_kind)k, cx_status_initial((cx_kind)k)));
    CX_CHECK(cx_awaits_review(CX_KIND_DRAFT, CX_STATUS_PENDING));
    CX_CHECK(cx_awaits_review(CX_KIND_DRAFT, CX_STATUS_CHANGES_REQUESTED));
    CX_CHECK(!cx_awaits_review(CX_KIND_DRAFT, CX_STATUS_REJECTED));
    CX_CHECK(!cx_awaits_review(CX_KIND_THREAD, CX_STATUS_CANON));

    const cx_kind NEW = CX_KIND_INVALID;
    const cx_status NONE = CX_STATUS_INVALID;
    /* agents create items in their initial status, never canon or accepted */
    CX_CHECK(cx_transition_allowed(CX_ROLE_AGENT, NEW, NONE, CX_KIND_OBSERVATION,
                                   CX_STATUS_RECORDED));
    CX_CHECK(cx_transition_allowed(CX_ROLE_AGENT, NEW, NONE, CX_KIND_DRAFT, CX_STATUS_PENDING));
    CX_CHECK(!cx_transition_allowed(CX_ROLE_AGENT, NEW, NONE, CX_KIND_OBSERVATION,
                                    CX_STATUS_CANON));
    CX_CHECK(!cx_transition_allowed(CX_ROLE_AGENT, NEW, NONE, CX_KIND_THREAD, CX_STATUS_CANON));
    CX_CHECK(!cx_transition_allowed(CX_ROLE_AGENT, NEW, NONE, CX_KIND_ARTIFACT,
                                    CX_STATUS_ACCEPTED));
    CX_CHECK(!cx_transition_allowed(CX_ROLE_AGENT, NEW, NONE, CX_KIND_DRAFT,
                                    CX_STATUS_APPROVED));
    /* an agent revises a draft that awaits review; only a reviewer decides */
    CX_CHECK(cx_transition_allowed(CX_ROLE_AGENT, CX_KIND_DRAFT, CX_STATUS_CHANGES_REQUESTED,
                                   CX_KIND_DRAFT, CX_STATUS_PENDING));
    CX_CHECK(!cx_transition_allowed(CX_ROLE_AGENT, CX_KIND_DRAFT, CX_STATUS_PENDING,
                                    CX_KIND_THREAD, CX_STATUS_CANON));
    CX_CHECK(cx_transition_allowed(CX_ROLE_REVIEWER, CX_KIND_DRAFT, CX_STATUS_PENDING,
                                   CX_KIND_THREAD, CX_STATUS_CANON));
    CX_CHECK(cx_transition_allowed(CX_ROLE_REVIEWER, CX_KIND_DRAFT, CX_STATUS_PENDING,
                                   CX_KIND_DRAFT, CX_STATUS_REJECTED));
    CX_CHECK(!cx_transition_allowed(CX_ROLE_REVIEWER, CX_KIND_DRAFT, CX_STATUS_REJECTED,
                                    CX_KIND_THREAD, CX_STATUS_CANON));
    CX_CHECK(!cx_transition_allowed(CX_ROLE_AGENT, CX_KIND_DRAFT, CX_STATUS_REJECTED,
                                    CX_KIND_DRAFT, CX_STATUS_PENDING));
    CX_CHECK(!cx_transition_allowed(CX_ROLE_AGENT, CX_KIND_OBSERVATION, CX_STATUS_RECORDED,
                                    CX_KIND_OBSERVATION, CX_STATUS_CANON));
    /* artifacts: anyone publishes a version, only a reviewer accepts */
    CX_CHECK(cx_transition_allowed(CX_ROLE_AGENT, CX_KIND_ARTIFACT, CX_STATUS_ACCEPTED,
                                   CX_KIND_ARTIFACT, CX_STATUS_PUBLISHED));
    CX_CHECK(!cx_transition_allowed(CX_ROLE_AGENT, CX_KIND_ARTIFACT, CX_STATUS_PUBLISHED,
                                    CX_KIND_ARTIFACT, CX_STATUS_ACCEPTED));
    CX_CHECK(cx_transition_allowed(CX_ROLE_REVIEWER, CX_KIND_ARTIFACT, CX_STATUS_PUBLISHED,
                                   CX_KIND_ARTIFACT, CX_STATUS_ACCEPTED));
}

static void test_trust(void) {
    CX_CHECK_INT(cx_trust_of(CX_KIND_THREAD, CX_STATUS_CANON), CX_TRUST_CANON);
    CX_CHECK_INT(cx_trust_of(CX_KIND_ARTIFACT, CX_STATUS_ACCEPTED), CX_TRUST_ACCEPTED);
    CX_CHECK_INT(cx_trust_of(CX_KIND_ARTIFACT, CX_STATUS_PUBLISHED), CX_TRUST_PUBLISHED);
    CX_CHECK_INT(cx_trust_of(CX_KIND_DRAFT, CX_STATUS_PENDING), CX_TRUST_DRAFT);
    CX_CHECK_INT(cx_trust_of(CX_KIND_DRAFT, CX_STATUS_REJECTED), CX_TRUST_REJECTED);
    CX_CHECK_INT(cx_trust_of(CX_KIND_OBSERVATION, CX_STATUS_RECORDED), CX_TRUST_OBSERVATION);
    CX_CHECK(CX_TRUST_CANON < CX_TRUST_ACCEPTED && CX_TRUST_ACCEPTED < CX_TRUST_PUBLISHED &&
             CX_TRUST_PUBLISHED < CX_TRUST_DRAFT && CX_TRUST_DRAFT < CX_TRUST_OBSERVATION);
    CX_CHECK_STR(cx_trust_name(CX_TRUST_CANON), "canon");
}

static void test_ids(void) {
    char buf[CX_WIRE_MAX_ID + 1];
    CX_CHECK_OK(cx_wire_id_norm("id", "01jd3zabcdefghjkmnpqrstvwx", buf));
    CX_CHECK_STR(buf, "01JD3ZABCDEFGHJKMNPQRSTVWX");
    CX_CHECK_OK(cx_wire_id_norm("id", "not-a-ulid", buf));
    CX_CHECK_STR(buf, "not-a-ulid");
    CX_CHECK_INT(cx_wire_id_norm("id", "", buf), CX_EINVAL);
    char big[CX_WIRE_MAX_ID + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CX_CHECK_INT(cx_wire_id_norm("id", big, buf), CX_EINVAL);
}

static json_t *good_item(void) {
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:[s]}", "id",
                     "01JD3ZABCDEFGHJKMNPQRSTVWX", "kind", "observation", "status", "recorded",
                     "title", "t", "created_at", "2026-12-07T09:00:00.000Z", "updated_at",
                     "2026-12-07T09:00:00Z", "visibility", "shared", "tags", "a");
}

/* The check fails with `code` and a message that begins with `field`. */
static void check_bad(json_t *it, int code, const char *field) {
    int r = cx_wire_item_check(it);
    CX_CHECK_INT(r, code);
    const char *m = cx_error_last();
    bool named = m && strncmp(m, field, strlen(field)) == 0;
    if (!named)
        fprintf(stderr, "want a message naming %s, got: %s\n", field, m ? m : "(none)");
    CX_CHECK(named);
    json_decref(it);
}

static void test_item_check(void) {
    json_t *it = good_item();
    CX_CHECK_OK(cx_wire_item_check(it));
    json_decref(it);

    char *big = malloc(CX_WIRE_MAX_BODY + 2);
    memset(big, 'x', CX_WIRE_MAX_BODY + 1);
    big[CX_WIRE_MAX_BODY + 1] = '\0';
    it = good_item();
    json_object_set_new(it, "body", json_string(big));
    check_bad(it, CX_ELIMIT, "item.body");
    big[CX_WIRE_MAX_TITLE + 1] = '\0';
    it = good_item();
    json_object_set_new(it, "title", json_string(big));
    check_bad(it, CX_ELIMIT, "item.title");
    big[CX_WIRE_MAX_TAG + 1] = '\0';
    it = good_item();
    json_object_set_new(it, "tags", json_pack("[s]", big));
    check_bad(it, CX_ELIMIT, "item.tags[0]");
    free(big);

    it = good_item();
    json_t *many = json_array();
    for (int i = 0; i < 10000; i++)
        json_array_append_new(many, json_string(
            "0000000000000000000000000000000000000000000000000000000000000000"));
    json_object_set_new(it, "blobs", many);
    check_bad(it, CX_ELIMIT, "item.blobs");

    it = good_item();
    json_object_set_new(it, "created_at", json_string("99999-99-99"));
    check_bad(it, CX_EINVAL, "item.created_at");
    it = good_item();
    json_object_set_new(it, "created_at", json_string("2026-13-45"));
    check_bad(it, CX_EINVAL, "item.created_at");
    it = good_item();
    json_object_set_new(it, "status", json_string("canon"));
    check_bad(it, CX_EINVAL, "item.status");
    it = good_item();
    json_object_set_new(it, "kind", json_string("secret"));
    check_bad(it, CX_EINVAL, "item.kind");
    it = good_item();
    json_object_set_new(it, "visibility", json_string("private"));
    check_bad(it, CX_EINVAL, "item.visibility");
    it = good_item();
    json_object_set_new(it, "id", json_string("../../etc/passwd"));
    check_bad(it, CX_EINVAL, "item.id");
    it = good_item();
    json_object_set_new(it, "title", json_stringn("a\0b", 3));
    check_bad(it, CX_EINVAL, "item.title");
    it = good_item();
    json_object_set_new(it, "review", json_pack("{s:s, s:s}", "decision", "approve", "at",
                                                "yesterday"));
    check_bad(it, CX_EINVAL, "item.review.at");
    it = good_item();
    json_object_set_new(it, "server_seq", json_integer(0));
    check_bad(it, CX_EINVAL, "item.server_seq");
    it = good_item();
    json_object_set_new(it, "provenance", json_string("x"));
    check_bad(it, CX_EINVAL, "item.provenance");
}

/* cx_rpc_compact_size counts what json_dumpb writes, byte for byte. */
static void check_size(json_t *j) {
    size_t want = json_dumpb(j, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
    CX_CHECK_INT((long long)cx_rpc_compact_size(j), (long long)want);
    json_decref(j);
}

static void test_compact_size(void) {
    char all[128];
    for (int i = 0; i < 127; i++)
        all[i] = (char)(i + 1); /* every ASCII byte, each control character */
    all[127] = 0;
    check_size(json_stringn(all, 127));
    check_size(json_stringn("a\0b", 3)); /* a NUL inside */
    check_size(json_string("snippet «match» … 連接池 \xf0\x9f\x94\x92 / \\ \""));
    check_size(json_string(""));
    /* escapes past the first 16 bytes, alone and side by side */
    check_size(json_string("0123456789abcdef0123456789abcdef\"0123456789abcdef\\\n"));
    check_size(json_string("0123456789abcdef0123456789abcde\x01\x02 tail of plain text"));
    check_size(json_object());
    check_size(json_array());
    check_size(json_pack("[iIfbbn]", 0, (json_int_t)-9007199254740993LL, 0.1, 1, 0));
    check_size(json_pack("{s:s, s:[s,{s:i}], s:{}, s:f}", "id", "01J\n", "tags", "a\tb", "k\"",
                         -42, "e", "score", 1e300));
    json_t *o = json_object();
    json_object_setn_new(o, "k\0ey", 4, json_true()); /* a key with a NUL */
    json_object_set_new(o, "\x01", json_null());
    check_size(o);
}

/* The validator names where a bad value is (its paths are written only for
 * a message). */
static void schema_says(const char *schema, const char *args, const char *want) {
    json_t *s = json_loads(schema, 0, NULL), *a = json_loads(args, 0, NULL);
    cx_error_clear();
    int r = cx_schema_validate(s, a);
    if (!want) {
        CX_CHECK_INT(r, 0);
    } else {
        CX_CHECK_INT(r, CX_EINVAL);
        CX_CHECK_STR(cx_error_last(), want);
    }
    json_decref(s);
    json_decref(a);
}

static void test_schema_paths(void) {
    const char *obs = "{\"type\":\"object\",\"required\":[\"text\"],\"properties\":{"
                      "\"text\":{\"type\":\"string\",\"minLength\":1},"
                      "\"observations\":{\"type\":\"array\",\"maxItems\":2,\"items\":{"
                      "\"type\":\"object\",\"required\":[\"text\"],\"properties\":{"
                      "\"text\":{\"type\":\"string\",\"maxLength\":3},"
                      "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}}}}}}";
    schema_says(obs, "{\"text\":\"a\",\"observations\":[{\"text\":\"abc\",\"tags\":[\"x\"]}]}",
                NULL);
    schema_says(obs, "{}", "text: required");
    schema_says(obs, "{\"text\":1}", "text: must be a string (got an integer)");
    schema_says(obs, "{\"text\":\"\"}", "text: must not be empty");
    schema_says(obs, "{\"text\":\"a\",\"x\":1}",
                "x: unknown argument; expected one of: text, observations");
    schema_says(obs, "{\"text\":\"a\",\"observations\":[{\"text\":\"abcd\"}]}",
                "observations[0].text: is 4 characters; the limit is 3");
    schema_says(obs, "{\"text\":\"a\",\"observations\":[{\"text\":\"a\"},{}]}",
                "observations[1].text: required");
    schema_says(obs, "{\"text\":\"a\",\"observations\":[5]}",
                "observations[0]: must be an object (got an integer)");
    schema_says(obs, "{\"text\":\"a\",\"observations\":[{\"text\":\"a\",\"tags\":[\"x\",2]}]}",
                "observations[0].tags[1]: must be a string (got an integer)");
    schema_says(obs, "{\"text\":\"a\",\"observations\":[{\"text\":\"a\",\"y\":1}]}",
                "observations[0].y: unknown argument; expected one of: text, tags");
    schema_says(obs, "{\"text\":\"a\",\"observations\":[{},{},{}]}",
                "observations: has 3 elements; the limit is 2");
    schema_says(obs, "[]", "arguments: must be an object (got an array)");
    schema_says("{\"type\":\"array\",\"items\":{\"type\":\"string\"}}", "[\"a\",1]",
                "arguments[1]: must be a string (got an integer)");
}

/* ---- cx_rpc_load_fast against jansson ---- */

#define RPC_FLAGS (JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL)

static int fast_declined, fast_taken, fast_dumped;

/* Whatever the fast path returns for text equals jansson's value, members
 * in the same order, and cx_rpc_parse agrees with jansson on whether the
 * text is JSON at all. */
static void same_as_jansson(const char *text, size_t len) {
    json_t *f = cx_rpc_load_fast(text, len, 64);
    json_t *j = cx_rpc_depth(text, len, 64) > 64 ? NULL : json_loadb(text, len, RPC_FLAGS, NULL);
    if (f) {
        fast_taken++;
        char *fd = json_dumps(f, JSON_COMPACT | JSON_ENCODE_ANY);
        char *jd = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        bool same = j && json_equal(f, j) && fd && jd && strcmp(fd, jd) == 0;
        if (!same)
            fprintf(stderr, "fast path differs on: %.*s\n", (int)len, text);
        CX_CHECK(same);
        free(fd);
        free(jd);
    } else {
        fast_declined++;
    }
    cx_rpc_msg m;
    const char *why = NULL;
    int r = cx_rpc_parse(text, len, 64, &m, &why);
    CX_CHECK((r == 0) == (j != NULL));
    if (r == 0) {
        CX_CHECK(json_equal(m.root, j));
        cx_rpc_msg_clear(&m);
    }
    if (j) { /* and the writer writes what json_dumps writes */
        cx_buf b;
        cx_buf_init(&b, 1 << 20);
        char *jd = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        int d = cx_rpc_dump(&b, j);
        if (d == 0) {
            fast_dumped++;
            CX_CHECK(jd && b.data && strcmp(b.data, jd) == 0);
        } else {
            CX_CHECK(d == 1); /* declined: a real, or text json_dumps refuses too */
            CX_CHECK(!jd || strpbrk(jd, ".eE") != NULL);
        }
        free(jd);
        cx_buf_free(&b);
    }
    json_decref(f);
    json_decref(j);
}

static void must_take(const char *text) {
    json_t *f = cx_rpc_load_fast(text, strlen(text), 64);
    if (!f)
        fprintf(stderr, "fast path declined: %s\n", text);
    CX_CHECK(f != NULL);
    json_decref(f);
    same_as_jansson(text, strlen(text));
}

static void must_decline(const char *text, size_t len) {
    json_t *f = cx_rpc_load_fast(text, len, 64);
    CX_CHECK(f == NULL);
    json_decref(f);
    same_as_jansson(text, len);
}

static void test_load_fast(void) {
    static const char *const good[] = {
        "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":\"observe\","
        "\"arguments\":{\"text\":\"The pool leaks a connection when parse_config fails\","
        "\"files\":[\"src/db/pool.c\"],\"tags\":[\"db\",\"leak\"]}}}",
        " { \"a\" : [ 1 , -2 , 0 , -0 , 123456789012345678 , -123456789012345678 ] } \r\n",
        "{\"s\":\"tab\\tnl\\nquote\\\"back\\\\slash\\/ \\b\\f\\r\"}",
        "{\"u\":\"\\u00e9\\u4e2d\\ud83d\\ude00\\u0041\",\"nul\":\"a\\u0000b\"}",
        "{\"utf8\":\"caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80 "
        "\xef\xbf\xbf\xf4\x8f\xbf\xbf\"}",
        "{\"esc\\u0041key\":true,\"k\":false,\"n\":null,\"e\":{},\"a\":[],\"aa\":[[],{}]}",
        "[1,\"x\",{\"b\":2,\"a\":1}]",
        "\"just a string\"",
        "42",
        "{\"\":\"\"}",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        must_take(good[i]);
    /* what it leaves to jansson: reals, long integers, duplicates, a NUL in
     * a key, lone surrogates, bad escapes and bytes, syntax errors */
    static const char *const left[] = {
        "{\"r\":1.5}", "{\"r\":1e3}", "{\"r\":-0.0}", "{\"big\":1234567890123456789}",
        "{\"big\":99999999999999999999}", "{\"a\":1,\"a\":2}", "{\"a\\u0000b\":1}",
        "{\"s\":\"\\ud800\"}", "{\"s\":\"\\udc00\"}", "{\"s\":\"\\ud800\\u0041\"}",
        "{\"s\":\"\\x41\"}", "{\"s\":\"\\u12\"}", "{\"s\":\"\\u12g4\"}", "{\"s\":\"a\tb\"}",
        "{\"s\":\"\xc0\xaf\"}", "{\"s\":\"\xed\xa0\x80\"}", "{\"s\":\"\xf4\x90\x80\x80\"}",
        "{\"s\":\"\xe0\x80\xaf\"}", "{\"s\":\"\xff\"}", "{\"s\":\"\xc3\"}", "{\"a\":01}",
        "{\"a\":-}", "{\"a\":1,}", "[1,]", "{\"a\" 1}", "{a:1}", "{\"a\":tru}", "{\"a\":truex}",
        "{\"a\":1} x", "", "   ", "{\"a\":[1,2}", "{\"a\":\"unterminated}", "nul", "+1",
    };
    for (size_t i = 0; i < sizeof left / sizeof *left; i++)
        must_decline(left[i], strlen(left[i]));
    must_decline("{\"a\":\"x\0y\"}", 11); /* a raw NUL byte */

    /* depth: 64 levels are taken, 65 are not (cx_rpc_parse refuses them) */
    char deep[200];
    for (int levels = 63; levels <= 66; levels++) {
        size_t n = 0;
        for (int i = 0; i < levels; i++)
            deep[n++] = '[';
        for (int i = 0; i < levels; i++)
            deep[n++] = ']';
        json_t *f = cx_rpc_load_fast(deep, n, 64);
        CX_CHECK((f != NULL) == (levels <= 64));
        json_decref(f);
        same_as_jansson(deep, n);
    }

    /* mutations of every sample: a fixed seed, bounded */
    static const unsigned char bytes[] = {'"', '\\', 'u', '{', '}', '[', ']', ',', ':', '0',
                                          '1', '-', '.', 'e', 'E', 'd', 'D', '8', 'n', 't',
                                          ' ', 0x00, 0x1f, 0x7f, 0x80, 0xbf, 0xc2, 0xe0, 0xed,
                                          0xf0, 0xf4, 0xff};
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    char buf[512];
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        size_t base = strlen(good[i]);
        for (int k = 0; k < 3000; k++) {
            size_t n = base;
            memcpy(buf, good[i], n);
            int edits = 1 + k % 3;
            for (int e = 0; e < edits; e++) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                size_t at = n ? (size_t)(seed >> 33) % n : 0;
                unsigned char b = (seed >> 20) & 1 ? bytes[(seed >> 8) % sizeof bytes]
                                                   : (unsigned char)(seed >> 40);
                switch ((seed >> 60) % 3) {
                case 0:
                    if (n)
                        buf[at] = (char)b;
                    break;
                case 1:
                    if (n + 1 < sizeof buf) {
                        memmove(buf + at + 1, buf + at, n - at);
                        buf[at] = (char)b;
                        n++;
                    }
                    break;
                default:
                    if (n) {
                        memmove(buf + at, buf + at + 1, n - at - 1);
                        n--;
                    }
                }
            }
            same_as_jansson(buf, n);
        }
    }
    CX_CHECK(fast_taken > 1000); /* the mutations still reach the fast path */
    CX_CHECK(fast_declined > 1000);
    CX_CHECK(fast_dumped > 1000);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test-proto PROTOCOL_SYNC_DIR\n");
        return 2;
    }
    dir = argv[1];
    test_against_schemas();
    test_against_openapi();
    test_names();
    test_transitions();
    test_trust();
    test_ids();
    test_item_check();
    test_compact_size();
    test_load_fast();
    test_schema_paths();
    return cx_test_done();
}
