/* SPDX-License-Identifier: Apache-2.0 */
/* JSON-RPC 2.0 framing: depth pre-scan, parsing, builders, line reader. */
#include "proto/jsonrpc.h"

#include "util/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cx_rpc_depth(const char *text, size_t len, int cap) {
    int depth = 0, max = 0;
    bool in_str = false, esc = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"')
            in_str = true;
        else if (c == '[' || c == '{') {
            if (++depth > max && (max = depth) > cap)
                return max;
        } else if ((c == ']' || c == '}') && depth > 0)
            depth--;
    }
    return max;
}

void cx_rpc_msg_clear(cx_rpc_msg *m) {
    json_decref(m->root);
    memset(m, 0, sizeof *m);
}

static void invalid(cx_rpc_msg *m, int code, const char *msg) {
    m->kind = CX_RPC_INVALID;
    m->err_code = code;
    m->err_msg = msg;
}

int cx_rpc_parse(const char *text, size_t len, int max_depth, cx_rpc_msg *m,
                 const char **err_msg) {
    memset(m, 0, sizeof *m);
    if (cx_rpc_depth(text, len, max_depth) > max_depth) {
        *err_msg = "message nested too deeply";
        return -1;
    }
    json_error_t jerr;
    /* JSON_ALLOW_NUL: "\u0000" is valid JSON; the schema check refuses it in
     * tool arguments, where it could truncate text. */
    json_t *root = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
                              &jerr);
    if (!root) {
        *err_msg = "parse error: not valid JSON";
        return -1;
    }
    cx_rpc_classify(root, m);
    return 0;
}

void cx_rpc_classify(json_t *root, cx_rpc_msg *m) {
    memset(m, 0, sizeof *m);
    m->root = root;
    if (json_is_array(m->root)) {
        invalid(m, CX_RPC_INVALID_REQUEST,
                "batches (JSON arrays) are not supported in this protocol version; send one "
                "message per line");
        return;
    }
    if (!json_is_object(m->root)) {
        invalid(m, CX_RPC_INVALID_REQUEST, "a message must be a JSON object");
        return;
    }
    json_t *id = json_object_get(m->root, "id");
    json_t *method = json_object_get(m->root, "method");
    json_t *ver = json_object_get(m->root, "jsonrpc");
    bool id_ok = id && (json_is_string(id) || json_is_integer(id));
    if (id_ok)
        m->id = id;
    if (!json_is_string(ver) || strcmp(json_string_value(ver), "2.0") != 0) {
        invalid(m, CX_RPC_INVALID_REQUEST, "\"jsonrpc\" must be \"2.0\"");
        return;
    }
    if (id && !id_ok) {
        invalid(m, CX_RPC_INVALID_REQUEST, "\"id\" must be a string or an integer");
        return;
    }
    if (!method) {
        if (id && (json_object_get(m->root, "result") || json_object_get(m->root, "error"))) {
            m->kind = CX_RPC_RESPONSE;
            return;
        }
        invalid(m, CX_RPC_INVALID_REQUEST, "\"method\" is missing");
        return;
    }
    if (!json_is_string(method)) {
        invalid(m, CX_RPC_INVALID_REQUEST, "\"method\" must be a string");
        return;
    }
    m->method = json_string_value(method);
    m->params = json_object_get(m->root, "params");
    if (m->params && !json_is_object(m->params) && !json_is_array(m->params)) {
        invalid(m, CX_RPC_INVALID_REQUEST, "\"params\" must be an object");
        return;
    }
    m->kind = id ? CX_RPC_REQUEST : CX_RPC_NOTIFICATION;
    return;
}

static json_t *envelope(json_t *id) {
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "jsonrpc", json_string("2.0"));
    json_object_set_new(o, "id", id ? json_deep_copy(id) : json_null());
    return o;
}

json_t *cx_rpc_result(json_t *id, json_t *result) {
    json_t *o = envelope(id);
    if (!o || !result) {
        json_decref(o);
        json_decref(result);
        return NULL;
    }
    json_object_set_new(o, "result", result);
    return o;
}

json_t *cx_rpc_error(json_t *id, int code, const char *message, json_t *data) {
    json_t *o = envelope(id), *e = json_object();
    if (!o || !e) {
        json_decref(o);
        json_decref(e);
        json_decref(data);
        return NULL;
    }
    json_object_set_new(e, "code", json_integer(code));
    json_object_set_new(e, "message", json_string(message));
    if (data)
        json_object_set_new(e, "data", data);
    json_object_set_new(o, "error", e);
    return o;
}

json_t *cx_rpc_notification(const char *method, json_t *params) {
    json_t *o = json_object();
    if (!o) {
        json_decref(params);
        return NULL;
    }
    json_object_set_new(o, "jsonrpc", json_string("2.0"));
    json_object_set_new(o, "method", json_string(method));
    if (params)
        json_object_set_new(o, "params", params);
    return o;
}

void cx_rpc_id_text(json_t *id, char *buf, size_t size) {
    if (size == 0)
        return;
    size_t n = id ? json_dumpb(id, buf, size - 1, JSON_ENCODE_ANY | JSON_COMPACT) : 0;
    buf[n < size ? n : 0] = '\0';
}

struct cx_linereader {
    int fd;
    size_t max;
    char *buf;
    size_t cap, start, end; /* unconsumed bytes are buf[start..end) */
    size_t scanned;         /* bytes after start known to hold no '\n' */
    bool skipping;          /* dropping the rest of an oversize line */
    size_t skipped;
    bool eof;
};

int cx_linereader_new(cx_linereader **out, int fd, size_t max_line) {
    cx_linereader *lr = calloc(1, sizeof *lr);
    if (!lr)
        return CX_ENOMEM;
    lr->fd = fd;
    lr->max = max_line;
    lr->cap = 64 * 1024;
    lr->buf = malloc(lr->cap);
    if (!lr->buf) {
        free(lr);
        return CX_ENOMEM;
    }
    *out = lr;
    return 0;
}

void cx_linereader_free(cx_linereader *lr) {
    if (!lr)
        return;
    free(lr->buf);
    free(lr);
}

bool cx_linereader_pending(const cx_linereader *lr) {
    return lr->eof ||
           memchr(lr->buf + lr->start + lr->scanned, '\n', lr->end - lr->start - lr->scanned);
}

cx_line_status cx_linereader_next(cx_linereader *lr, const char **line, size_t *len) {
    bool did_read = false;
    for (;;) {
        char *nl = memchr(lr->buf + lr->start + lr->scanned, '\n',
                          lr->end - lr->start - lr->scanned);
        if (nl) {
            size_t n = (size_t)(nl - (lr->buf + lr->start));
            size_t at = lr->start;
            lr->start += n + 1;
            lr->scanned = 0;
            if (lr->skipping) {
                lr->skipping = false;
                *len = lr->skipped + n;
                lr->skipped = 0;
                return CX_LINE_OVERSIZE;
            }
            if (n > lr->max) {
                *len = n;
                return CX_LINE_OVERSIZE;
            }
            *line = lr->buf + at;
            *len = n;
            return CX_LINE_OK;
        }
        lr->scanned = lr->end - lr->start;
        if (lr->eof) {
            if (lr->end > lr->start && !lr->skipping) { /* a last line without '\n' */
                *line = lr->buf + lr->start;
                *len = lr->end - lr->start;
                lr->start = lr->end;
                lr->scanned = 0;
                if (*len > lr->max)
                    return CX_LINE_OVERSIZE;
                return CX_LINE_OK;
            }
            if (lr->skipping) {
                lr->skipping = false;
                *len = lr->skipped + (lr->end - lr->start);
                lr->start = lr->end;
                return CX_LINE_OVERSIZE;
            }
            return CX_LINE_EOF;
        }
        if (did_read)
            return CX_LINE_AGAIN; /* one read() a call, so poll() stays in charge */
        /* Over the cap: keep nothing more of this line. */
        if (lr->end - lr->start > lr->max) {
            lr->skipping = true;
            lr->skipped += lr->end - lr->start;
            lr->start = lr->end = lr->scanned = 0;
        }
        /* Make room: compact, then grow (bounded by max + one read). */
        if (lr->start > 0) {
            memmove(lr->buf, lr->buf + lr->start, lr->end - lr->start);
            lr->end -= lr->start;
            lr->start = 0;
        }
        if (lr->cap - lr->end < 16 * 1024) {
            size_t ncap = lr->cap * 2;
            if (ncap > lr->max + 128 * 1024)
                ncap = lr->max + 128 * 1024;
            if (ncap > lr->cap) {
                char *nb = realloc(lr->buf, ncap);
                if (!nb)
                    return CX_LINE_ERROR;
                lr->buf = nb;
                lr->cap = ncap;
            }
        }
        ssize_t k = read(lr->fd, lr->buf + lr->end, lr->cap - lr->end);
        if (k < 0) {
            if (errno == EINTR || errno == EAGAIN)
                return CX_LINE_AGAIN;
            return CX_LINE_ERROR;
        }
        if (k == 0)
            lr->eof = true;
        lr->end += (size_t)k;
        did_read = true;
    }
}
