/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes the MCP state machine (sidecar/mcp.h) the way cortexd drives it:
 * the input is a stdio session, split on '\n', each line first offered to
 * cx_mcp_preview_cancel() and cx_mcp_handle_quick() (as the reader thread
 * does) and then handled.
 *
 * Every message the server writes must be one line of valid JSON with
 * "jsonrpc":"2.0" and be a well-formed request, notification or response;
 * a notification from the client is never answered; a success answers the
 * request's own id. Anything else abort()s with the offending message.
 *
 * One session (cx_mcp) per input, over one workspace in a temporary
 * directory created once per process; its store is wiped every
 * STORE_RESET_EVERY inputs so that the cost of an input stays bounded. The
 * directory is removed at exit (libFuzzer itself ends with _Exit and leaves
 * it behind: $TMPDIR/cx-fuzz-mcp-*). */
#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "mcp.h"
#include "util/log.h"
#include "workspace.h"

#define STORE_RESET_EVERY 256

static char tmp_root[4096];
static cx_workspace ws;
static unsigned long inputs_seen;

/* What the line being handled was, for the checks in on_write(). */
static pthread_mutex_t check_lock = PTHREAD_MUTEX_INITIALIZER;
static bool line_is_notification; /* valid JSON-RPC notification */
static json_t *line_request_id;   /* id of a well-formed request, or NULL */
static unsigned line_responses;   /* responses written for this line */
static const char *cur_line;
static size_t cur_len;

static void die(const char *why, const char *json, size_t len)
{
    fprintf(stderr, "fuzz-mcp: %s\n  output: %.*s\n", why, (int)(len > 4000 ? 4000 : len), json);
    if (cur_line)
        fprintf(stderr, "  while handling line (%zu bytes): %.*s\n", cur_len,
                (int)(cur_len > 4000 ? 4000 : cur_len), cur_line);
    abort();
}

static bool is_valid_id(const json_t *id)
{
    return json_is_string(id) || json_is_integer(id);
}

/* Checks one message object; `batched` when it is an element of a batch
 * response (JSON-RPC 2.0 batches, 2025-03-26 only), whose ids the line's
 * own checks do not cover. Called with check_lock held. */
static void check_message(json_t *msg, bool batched, const char *json, size_t len)
{
    if (!json_is_object(msg))
        die("output is not a JSON object", json, len);
    if (!json_is_string(json_object_get(msg, "jsonrpc")) ||
        strcmp(json_string_value(json_object_get(msg, "jsonrpc")), "2.0") != 0)
        die("output lacks \"jsonrpc\":\"2.0\"", json, len);

    json_t *method = json_object_get(msg, "method");
    json_t *id = json_object_get(msg, "id");
    json_t *result = json_object_get(msg, "result");
    json_t *error = json_object_get(msg, "error");

    if (method) {
        /* A notification or request from the server. */
        if (batched)
            die("a server request inside a batch response", json, len);
        if (!json_is_string(method))
            die("server message has a non-string method", json, len);
        if (result || error)
            die("server message has both method and result/error", json, len);
        if (id && !is_valid_id(id))
            die("server request id is neither string nor integer", json, len);
        return;
    }
    /* A response. */
    if (!id)
        die("response without id", json, len);
    if (!is_valid_id(id) && !json_is_null(id))
        die("response id is neither string, integer nor null", json, len);
    if ((result != NULL) == (error != NULL))
        die("response must have exactly one of result and error", json, len);
    if (result && !json_is_object(result))
        die("result is not an object", json, len);
    if (error && (!json_is_object(error) || !json_is_integer(json_object_get(error, "code")) ||
                  !json_is_string(json_object_get(error, "message"))))
        die("error lacks integer code / string message", json, len);
    if (result && json_is_null(id))
        die("successful response with a null id", json, len);
    if (batched)
        return;
    /* A parse error (id null) cannot know it was a notification. */
    if (line_is_notification && !(error && json_is_null(id)))
        die("a client notification was answered", json, len);
    /* A success answers exactly the request's id; an error may also carry
     * null (the server may parse more strictly than we do). */
    if (line_request_id && !json_equal(id, line_request_id) && !(error && json_is_null(id)))
        die("response id differs from the request's id", json, len);
}

static void on_write(void *ud, const char *json, size_t len)
{
    (void)ud;
    json_error_t err;

    if (len == 0)
        die("empty message", json, len);
    if (memchr(json, '\n', len) || memchr(json, '\r', len))
        die("message contains a raw newline (stdio framing broken)", json, len);

    json_t *msg = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
    if (!msg)
        die("output is not valid JSON", json, len);

    pthread_mutex_lock(&check_lock);
    bool response;
    if (json_is_array(msg)) {
        /* A batch response: only ever to a batch request, never empty. */
        if (json_array_size(msg) == 0)
            die("empty batch response", json, len);
        size_t i;
        json_t *el;
        json_array_foreach(msg, i, el) check_message(el, true, json, len);
        if (line_is_notification || line_request_id)
            die("a batch response to a line that was not a batch", json, len);
        response = true;
    } else {
        check_message(msg, false, json, len);
        response = !json_object_get(msg, "method");
    }
    if (response && ++line_responses > 1 && cur_line)
        die("more than one response to one line", json, len);
    pthread_mutex_unlock(&check_lock);
    json_decref(msg);
}

/* Classifies a line as the checks above need it; leaves both unset when
 * the line is anything else (invalid, batch, odd id, …). */
static void classify(const char *line, size_t len)
{
    json_error_t err;

    line_is_notification = false;
    line_request_id = NULL;
    if (len && line[len - 1] == '\r')
        len--;
    json_t *msg = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
    if (!msg)
        return;
    if (json_is_object(msg) && json_is_string(json_object_get(msg, "jsonrpc")) &&
        strcmp(json_string_value(json_object_get(msg, "jsonrpc")), "2.0") == 0 &&
        json_is_string(json_object_get(msg, "method"))) {
        json_t *id = json_object_get(msg, "id");
        if (!id)
            line_is_notification = true;
        else if (is_valid_id(id))
            line_request_id = json_incref(id);
    }
    json_decref(msg);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void rm_tree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void cleanup(void)
{
    if (tmp_root[0])
        rm_tree(tmp_root);
}

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    int n = snprintf(tmp_root, sizeof tmp_root, "%s/cx-fuzz-mcp-XXXXXX",
                     tmp && *tmp ? tmp : "/tmp");
    if (n < 0 || (size_t)n >= sizeof tmp_root || !mkdtemp(tmp_root)) {
        fprintf(stderr, "fuzz-mcp: mkdtemp: %s\n", strerror(errno));
        abort();
    }
    atexit(cleanup);

    static char state[4096 + 16];
    n = snprintf(state, sizeof state, "%s/.cortex", tmp_root);
    if (n < 0 || (size_t)n >= sizeof state)
        abort();
    ws.root = tmp_root;
    ws.state_dir = state;
    ws.git_dir = NULL;
    ws.name = strrchr(tmp_root, '/') + 1;

    /* Keep stderr quiet: the engine's logs are not what is tested here. */
    cx_log_init("fuzz-mcp", CX_LOG_OFF);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        setup();
        ready = true;
    }
    if (++inputs_seen % STORE_RESET_EVERY == 0)
        rm_tree(ws.state_dir);

    cx_mcp *m = NULL;
    cx_mcp_config cfg = {.ws = &ws, .write = on_write, .write_ud = NULL, .page_size = 3};
    if (cx_mcp_new(&m, &cfg) != 0) {
        fprintf(stderr, "fuzz-mcp: cx_mcp_new failed\n");
        abort();
    }

    const char *p = (const char *)data;
    const char *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);

        pthread_mutex_lock(&check_lock);
        classify(p, len);
        line_responses = 0;
        cur_line = p;
        cur_len = len;
        pthread_mutex_unlock(&check_lock);

        /* The reader applies cancels before queueing the line; the line
         * itself still reaches the state machine, which must take a
         * repeated cancel calmly. The reader serves the quick messages
         * (initialize, ping...) itself while its worker is idle, as it is
         * here: the same rules hold for their answers. */
        (void)cx_mcp_preview_cancel(m, p, len);
        if (!cx_mcp_handle_quick(m, p, len))
            cx_mcp_handle_line(m, p, len);

        pthread_mutex_lock(&check_lock);
        cur_line = NULL;
        json_decref(line_request_id);
        line_request_id = NULL;
        line_is_notification = false;
        pthread_mutex_unlock(&check_lock);

        p = nl ? nl + 1 : end;
    }

    cx_mcp_free(m);
    return 0;
}
