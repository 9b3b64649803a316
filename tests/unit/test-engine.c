/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the push step of the sidecar's sync client
 * (sidecar/sync/engine.c) against a scripted HTTP core on 127.0.0.1 (plain
 * http, which the client allows to loopback only): a push the core refuses
 * with 400 "ops[N]. …" rejects op N with the core's message, succeeds with
 * rejected = 1, and the next push carries the rest; a 400 that names no op
 * of the batch (no prefix, an index past it) stays a failure and rejects
 * nothing. And cx_engine_refused_op, the reading of that prefix. And the
 * progress rule: a push answered without a result for every op, a pull page
 * with more and a next that does not pass the cursor, a next behind it, a
 * page of the wrong shape are protocol errors (CX_EFAIL, `protocol` and
 * `remote` set) that apply nothing of the page; a refusal or an unreachable
 * core is `remote` without `protocol`. */
#include "test.h"

#include "store/apply.h"
#include "store/kv.h"
#include "store/outbox.h"
#include "store/store.h"
#include "sync/client.h"
#include "sync/engine.h"
#include "sync/upstream.h"
#include "util/error.h"
#include "util/fsx.h"
#include "util/utf8.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <strings.h>
#include <sys/socket.h>

static char *root;
static const cx_actor who = {.author = "ada@example.com", .agent = "test-agent"};

/* ---- a scripted core ---------------------------------------------------- */

#define MAX_REQ (1 << 20)
#define MAX_SCRIPT 8

typedef struct core {
    int fd;
    int port;
    pthread_t thread;
    /* what to answer the pushes with, in order: a status and an error
     * message; past the script (or status 200), every op is applied */
    int status[MAX_SCRIPT];
    const char *message[MAX_SCRIPT];
    int nscript;
    const char *body[MAX_SCRIPT];  /* with status 200: this push answer, as it is */
    const char *pages[MAX_SCRIPT]; /* the pull answers (200), in order; 404 past them */
    int npages;
    atomic_int pulls;       /* pulls answered */
    atomic_int pushes;      /* pushes answered */
    json_t *last_ops;       /* the ops of the last push (the thread's until joined) */
    pthread_mutex_t mu;
} core;

static int read_request(int fd, char *buf, size_t cap, size_t *len, size_t *body_at) {
    size_t n = 0;
    char *end = NULL;
    while (!end) {
        if (n + 1 >= cap)
            return -1;
        ssize_t k = recv(fd, buf + n, cap - 1 - n, 0);
        if (k <= 0)
            return -1;
        n += (size_t)k;
        buf[n] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    size_t head = (size_t)(end - buf) + 4, clen = 0;
    for (char *p = buf; p && p < end; p = strstr(p, "\r\n"), p = p ? p + 2 : NULL)
        if (strncasecmp(p, "content-length:", 15) == 0)
            clen = strtoul(p + 15, NULL, 10);
    if (head + clen + 1 > cap)
        return -1;
    while (n < head + clen) {
        ssize_t k = recv(fd, buf + n, head + clen - n, 0);
        if (k <= 0)
            return -1;
        n += (size_t)k;
    }
    buf[n] = '\0';
    *len = n;
    *body_at = head;
    return 0;
}

static void answer(int fd, int status, const char *body) {
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, strlen(body));
    send(fd, head, (size_t)n, MSG_NOSIGNAL);
    send(fd, body, strlen(body), MSG_NOSIGNAL);
}

static void serve_one(core *c, int fd, char *buf) {
    size_t len = 0, at = 0;
    if (read_request(fd, buf, MAX_REQ, &len, &at) != 0)
        return;
    if (strncmp(buf, "GET /v1/sync/pull?", 18) == 0) {
        int k = atomic_fetch_add(&c->pulls, 1);
        if (k < c->npages)
            answer(fd, 200, c->pages[k]);
        else
            answer(fd, 404, "{\"error\":{\"code\":\"not_found\",\"message\":\"no page\"}}");
        return;
    }
    if (strncmp(buf, "POST /v1/sync/push ", 19) != 0) {
        answer(fd, 404, "{\"error\":{\"code\":\"not_found\",\"message\":\"not found\"}}");
        return;
    }
    json_t *req = json_loadb(buf + at, len - at, 0, NULL);
    json_t *ops = json_object_get(req, "ops");
    int i = atomic_load(&c->pushes);
    pthread_mutex_lock(&c->mu);
    json_decref(c->last_ops);
    c->last_ops = json_incref(ops);
    pthread_mutex_unlock(&c->mu);
    char *text = NULL;
    int status = 200;
    if (i < c->nscript && c->status[i] == 200 && c->body[i]) {
        text = strdup(c->body[i]);
    } else if (i < c->nscript && c->status[i] != 200) {
        status = c->status[i];
        json_t *e = json_pack("{s:{s:s, s:s}}", "error", "code", "bad_request", "message",
                              c->message[i]);
        text = json_dumps(e, JSON_COMPACT);
        json_decref(e);
    } else {
        json_t *res = json_pack("{s:[]}", "results"), *op;
        size_t k;
        json_array_foreach(ops, k, op)
            json_array_append_new(json_object_get(res, "results"),
                                  json_pack("{s:O, s:s, s:I}", "op_id",
                                            json_object_get(op, "op_id"), "status", "applied",
                                            "seq", (json_int_t)(100 + k)));
        text = json_dumps(res, JSON_COMPACT);
        json_decref(res);
    }
    atomic_fetch_add(&c->pushes, 1);
    answer(fd, status, text ? text : "{}");
    free(text);
    json_decref(req);
}

static void *core_main(void *ud) {
    core *c = ud;
    char *buf = malloc(MAX_REQ);
    for (;;) {
        int fd = accept(c->fd, NULL, NULL);
        if (fd < 0)
            break; /* the listening socket was shut down */
        if (buf)
            serve_one(c, fd, buf);
        close(fd);
    }
    free(buf);
    return NULL;
}

static int core_start(core *c) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    pthread_mutex_init(&c->mu, NULL);
    if ((c->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
        bind(c->fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(c->fd, 8) != 0 ||
        getsockname(c->fd, (struct sockaddr *)&a, &alen) != 0)
        return -1;
    c->port = ntohs(a.sin_port);
    return pthread_create(&c->thread, NULL, core_main, c) == 0 ? 0 : -1;
}

static void core_stop(core *c) {
    shutdown(c->fd, SHUT_RDWR);
    pthread_join(c->thread, NULL);
    close(c->fd);
    json_decref(c->last_ops);
    pthread_mutex_destroy(&c->mu);
}

/* The op ids of the last push, "id,id,…" (ids are short). */
static void last_ids(core *c, char *out, size_t cap) {
    size_t i, n = 0;
    json_t *op;
    out[0] = '\0';
    pthread_mutex_lock(&c->mu);
    json_array_foreach(c->last_ops, i, op)
        n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%s", i ? "," : "",
                              json_string_value(json_object_get(op, "op_id")));
    pthread_mutex_unlock(&c->mu);
}

/* ---- helpers ------------------------------------------------------------ */

static cx_store *with_notes(const char *name, size_t n) {
    char *dir = cx_fs_join(root, name);
    cx_store *s = NULL;
    CX_CHECK_OK(cx_store_open(&s, dir));
    free(dir);
    for (size_t i = 0; s && i < n; i++) {
        char body[64];
        snprintf(body, sizeof body, "note %zu of %s", i, name);
        cx_note note = {.body = body};
        json_t *out = NULL;
        CX_CHECK_OK(cx_store_observe(s, &who, &note, 1, NULL, NULL, &out));
        json_decref(out);
    }
    return s;
}

static cx_client *client_for(const core *c) {
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", c->port);
    cx_upstream u = {.url = url};
    cx_client *cl = NULL;
    CX_CHECK_OK(cx_client_new(&cl, &u, "cx_test_key", NULL));
    return cl;
}

/* The outbox's op ids, oldest first, "id,id,…". */
static void outbox_ids(cx_store *s, char *out, size_t cap) {
    json_t *ops = NULL, *blobs = NULL, *op;
    size_t i, n = 0;
    out[0] = '\0';
    CX_CHECK_OK(cx_outbox_batch(s, CX_OUTBOX_MAX_OPS, CX_OUTBOX_MAX_BYTES, &ops, &blobs));
    json_array_foreach(ops, i, op)
        n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%s", i ? "," : "",
                              json_string_value(json_object_get(op, "op_id")));
    json_decref(ops);
    json_decref(blobs);
}

static long long state_int(cx_store *s, const char *k) {
    json_t *st = NULL;
    CX_CHECK_OK(cx_outbox_state(s, &st));
    long long v = (long long)json_integer_value(json_object_get(st, k));
    json_decref(st);
    return v;
}

/* ---- tests -------------------------------------------------------------- */

static void test_refused_op_prefix(void) {
    CX_CHECK_INT(cx_engine_refused_op("ops[1].item.title: at most 200 bytes (got 1024)", 3), 1);
    CX_CHECK_INT(cx_engine_refused_op("ops[0].op: unknown", 1), 0);
    CX_CHECK_INT(cx_engine_refused_op("ops[99].item.body: too long", 100), 99);
    CX_CHECK_INT(cx_engine_refused_op("ops[3].item.title: x", 3), -1);  /* past the batch */
    CX_CHECK_INT(cx_engine_refused_op("ops[1].x", 0), -1);
    CX_CHECK_INT(cx_engine_refused_op("ops[1]: x", 3), -1);          /* no '.' */
    CX_CHECK_INT(cx_engine_refused_op("ops[].item", 3), -1);
    CX_CHECK_INT(cx_engine_refused_op("ops[01].item", 3), -1);       /* leading zero */
    CX_CHECK_INT(cx_engine_refused_op("ops[-1].item", 3), -1);
    CX_CHECK_INT(cx_engine_refused_op("ops[+1].item", 3), -1);
    CX_CHECK_INT(cx_engine_refused_op("ops[1x].item", 3), -1);
    CX_CHECK_INT(cx_engine_refused_op("ops[99999999999999999999999].item", 3), -1);
    CX_CHECK_INT(cx_engine_refused_op("the batch: ops[1].item", 3), -1);
    CX_CHECK_INT(cx_engine_refused_op("OPS[1].item", 3), -1);
    CX_CHECK_INT(cx_engine_refused_op("", 3), -1);
    CX_CHECK_INT(cx_engine_refused_op(NULL, 3), -1);
}

static const char MESSAGE[] = "ops[1].item.title: at most 200 bytes (got 1024)";

/* 400 "ops[1]. …": op 1 rejected with the message, the rest pushed next. */
static void test_push_refused_op(void) {
    core c = {.status = {400}, .message = {MESSAGE}, .nscript = 1};
    CX_CHECK(core_start(&c) == 0);
    cx_store *s = with_notes("refused-op", 3);
    cx_client *cl = client_for(&c);
    if (!s || !cl)
        goto out;
    char before[120], sent[120], ids[3][32] = {{0}};
    outbox_ids(s, before, sizeof before);
    sscanf(before, "%31[^,],%31[^,],%31s", ids[0], ids[1], ids[2]);

    cx_engine_step st;
    CX_CHECK_OK(cx_engine_push(s, cl, &st));
    CX_CHECK_INT(st.status, 400);
    CX_CHECK_INT(st.sent, 3);
    CX_CHECK_INT(st.acked, 0);
    CX_CHECK_INT(st.rejected, 1);
    last_ids(&c, sent, sizeof sent);
    CX_CHECK_STR(sent, before);
    CX_CHECK_INT(state_int(s, "rejected"), 1);
    CX_CHECK_INT(state_int(s, "backlog"), 2);
    json_t *state = NULL;
    CX_CHECK_OK(cx_outbox_state(s, &state));
    json_t *rej = json_array_get(json_object_get(state, "rejected_ops"), 0);
    CX_CHECK_STR(json_string_value(json_object_get(rej, "op_id")), ids[1]);
    CX_CHECK_STR(json_string_value(json_object_get(rej, "reason")), MESSAGE);
    json_decref(state);

    CX_CHECK_OK(cx_engine_push(s, cl, &st));
    CX_CHECK_INT(st.status, 200);
    CX_CHECK_INT(st.sent, 2);
    CX_CHECK_INT(st.acked, 2);
    CX_CHECK_INT(st.rejected, 0);
    char want[80];
    snprintf(want, sizeof want, "%s,%s", ids[0], ids[2]);
    last_ids(&c, sent, sizeof sent);
    CX_CHECK_STR(sent, want);
    CX_CHECK_INT(state_int(s, "backlog"), 0);
    CX_CHECK_INT(state_int(s, "rejected"), 1);

    CX_CHECK_OK(cx_engine_push(s, cl, &st)); /* nothing left, op 1 not sent again */
    CX_CHECK_INT(st.sent, 0);
    CX_CHECK_INT(atomic_load(&c.pushes), 2);
out:
    cx_client_free(cl);
    cx_store_free(s);
    core_stop(&c);
}

/* A 400 that names no op of the batch is a failure of the whole batch. */
static void test_push_refused_batch(void) {
    core c = {.status = {400, 400}, .message = {"the request body is not JSON",
                                                "ops[2].item.title: at most 200 bytes"},
              .nscript = 2};
    CX_CHECK(core_start(&c) == 0);
    cx_store *s = with_notes("refused-batch", 2);
    cx_client *cl = client_for(&c);
    if (!s || !cl)
        goto out;
    for (int i = 0; i < 2; i++) {
        cx_engine_step st;
        cx_error_clear();
        CX_CHECK_INT(cx_engine_push(s, cl, &st), CX_EFAIL);
        CX_CHECK(strstr(cx_error_last(), c.message[i]) != NULL);
        CX_CHECK_INT(st.rejected, 0);
        CX_CHECK_INT(state_int(s, "rejected"), 0);
        CX_CHECK_INT(state_int(s, "backlog"), 2);
    }
    cx_engine_step st;
    CX_CHECK_OK(cx_engine_push(s, cl, &st)); /* the core takes it now */
    CX_CHECK_INT(st.acked, 2);
    CX_CHECK_INT(state_int(s, "backlog"), 0);
out:
    cx_client_free(cl);
    cx_store_free(s);
    core_stop(&c);
}

/* The core's message is the reason, cut to a bounded length on a
 * character boundary. */
static void test_push_refused_long(void) {
    static char message[4096];
    size_t n = (size_t)snprintf(message, sizeof message, "ops[0].item.title: ");
    while (n + 3 < sizeof message)
        n += (size_t)snprintf(message + n, sizeof message - n, "\xc3\xa9"); /* é, 2 bytes */
    core c = {.status = {400}, .message = {message}, .nscript = 1};
    CX_CHECK(core_start(&c) == 0);
    cx_store *s = with_notes("refused-long", 1);
    cx_client *cl = client_for(&c);
    if (!s || !cl)
        goto out;
    cx_engine_step st;
    CX_CHECK_OK(cx_engine_push(s, cl, &st));
    CX_CHECK_INT(st.rejected, 1);
    json_t *state = NULL;
    CX_CHECK_OK(cx_outbox_state(s, &state));
    const char *why = json_string_value(
        json_object_get(json_array_get(json_object_get(state, "rejected_ops"), 0), "reason"));
    CX_CHECK(why && strncmp(why, "ops[0].item.title: \xc3\xa9", 21) == 0);
    CX_CHECK(why && strlen(why) < CX_APPLY_MAX_REASON && strlen(why) > CX_APPLY_MAX_REASON - 4);
    CX_CHECK(why && cx_utf8_valid(why, strlen(why)));
    json_decref(state);
out:
    cx_client_free(cl);
    cx_store_free(s);
    core_stop(&c);
}

/* A push answer without a result for every op sent: a protocol error; the
 * ops it did answer are acknowledged, the others stay to push. */
static void test_push_without_results(void) {
    core c = {.status = {200, 200}, .body = {"{\"results\":[]}", NULL}, .nscript = 2};
    CX_CHECK(core_start(&c) == 0);
    cx_store *s = with_notes("no-results", 2);
    cx_client *cl = client_for(&c);
    if (!s || !cl)
        goto out;
    cx_engine_step st;
    cx_error_clear();
    CX_CHECK_INT(cx_engine_push(s, cl, &st), CX_EFAIL);
    CX_CHECK(st.protocol && st.remote);
    CX_CHECK(strstr(cx_error_last(), "the core broke the protocol: ") != NULL);
    CX_CHECK(strstr(cx_error_last(), "0 of the 2 ops") != NULL);
    CX_CHECK_INT(state_int(s, "backlog"), 2);
    CX_CHECK_INT(state_int(s, "rejected"), 0);

    /* a result for the first op only */
    char before[120], first[40] = "";
    outbox_ids(s, before, sizeof before);
    sscanf(before, "%39[^,]", first);
    char one[200];
    snprintf(one, sizeof one, "{\"results\":[{\"op_id\":\"%s\",\"status\":\"applied\","
             "\"seq\":7}]}", first);
    c.body[1] = one;
    cx_error_clear();
    CX_CHECK_INT(cx_engine_push(s, cl, &st), CX_EFAIL);
    CX_CHECK(st.protocol && st.remote);
    CX_CHECK_INT(st.acked, 1);
    CX_CHECK(strstr(cx_error_last(), "1 of the 2 ops") != NULL);
    CX_CHECK_INT(state_int(s, "backlog"), 1);

    CX_CHECK_OK(cx_engine_push(s, cl, &st)); /* past the script: every op applied */
    CX_CHECK(!st.protocol);
    CX_CHECK_INT(st.acked, 1);
    CX_CHECK_INT(state_int(s, "backlog"), 0);
out:
    cx_client_free(cl);
    cx_store_free(s);
    core_stop(&c);
}

static long long cursor_of(cx_store *s) {
    int64_t cur = -1;
    CX_CHECK_OK(cx_kv_cursor(s, &cur));
    return (long long)cur;
}

/* A pull must progress: the cursor never moves back, and a page with more
 * moves it forward. Nothing of a broken page is applied. */
static void test_pull_progress(void) {
    core c = {.pages = {
                  "{\"changes\":[],\"next\":5,\"more\":true}",   /* progress */
                  "{\"changes\":[],\"next\":5,\"more\":true}",   /* the same next */
                  "{\"changes\":[],\"next\":3,\"more\":false}",  /* backwards */
                  "{\"changes\":[],\"next\":4,\"more\":true}",   /* backwards, more */
                  "{\"changes\":{},\"next\":9,\"more\":false}",  /* not a page */
                  "{\"changes\":[],\"next\":5,\"more\":false}",  /* caught up */
              },
              .npages = 6};
    CX_CHECK(core_start(&c) == 0);
    cx_store *s = with_notes("pull-progress", 0);
    cx_client *cl = client_for(&c);
    if (!s || !cl)
        goto out;
    cx_engine_step st;
    CX_CHECK_OK(cx_engine_pull(s, cl, &st));
    CX_CHECK(st.more && !st.protocol);
    CX_CHECK_INT(cursor_of(s), 5);
    for (int i = 0; i < 4; i++) {
        cx_error_clear();
        CX_CHECK_INT(cx_engine_pull(s, cl, &st), CX_EFAIL);
        CX_CHECK(st.protocol && st.remote);
        CX_CHECK(strstr(cx_error_last(), "the core broke the protocol: ") != NULL);
        CX_CHECK_INT(cursor_of(s), 5);
    }
    CX_CHECK_OK(cx_engine_pull(s, cl, &st));
    CX_CHECK(!st.more && !st.protocol);
    CX_CHECK_INT(cursor_of(s), 5);

    /* a refusal is the core's, not a protocol error; so is no answer */
    cx_error_clear();
    CX_CHECK_INT(cx_engine_pull(s, cl, &st), CX_EFAIL); /* 404 past the pages */
    CX_CHECK(st.remote && !st.protocol);
    cx_client_free(cl);
    cl = NULL;
    core_stop(&c);
    cl = client_for(&c); /* the port is closed now */
    cx_error_clear();
    CX_CHECK_INT(cx_engine_pull(s, cl, &st), CX_EIO);
    CX_CHECK(st.remote && !st.protocol);
    cx_client_free(cl);
    cx_store_free(s);
    return;
out:
    cx_client_free(cl);
    cx_store_free(s);
    core_stop(&c);
}

int main(void) {
    root = cx_test_tmpdir();
    if (!root)
        return 1;
    test_refused_op_prefix();
    test_push_refused_op();
    test_push_refused_batch();
    test_push_refused_long();
    test_push_without_results();
    test_pull_progress();
    cx_test_rmrf(root);
    free(root);
    return cx_test_done();
}
