/* SPDX-License-Identifier: Apache-2.0 */
/* JSON-RPC 2.0 framing for newline-delimited streams: a bounded line reader,
 * message classification, and response/error builders. Knows nothing of
 * MCP; the sidecar's mcp module gives the methods their meaning. */
#pragma once

#include "util/buf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum {
    CX_RPC_PARSE_ERROR = -32700,
    CX_RPC_INVALID_REQUEST = -32600,
    CX_RPC_METHOD_NOT_FOUND = -32601,
    CX_RPC_INVALID_PARAMS = -32602,
    CX_RPC_INTERNAL_ERROR = -32603,
};

typedef enum {
    CX_RPC_REQUEST,      /* method + id */
    CX_RPC_NOTIFICATION, /* method, no id */
    CX_RPC_RESPONSE,     /* result or error + id, no method (a client's answer) */
    CX_RPC_INVALID,      /* answer with *err_code / *err_msg, id as given */
} cx_rpc_kind;

/* The deepest nesting of arrays/objects in a JSON text, scanning outside
 * strings; stops counting at `cap` + 1. Never fails on any bytes. */
int cx_rpc_depth(const char *text, size_t len, int cap);

/* The bytes json_dumpb(j, JSON_COMPACT | JSON_ENCODE_ANY) would write,
 * counted without writing them: jansson's own escaping (\" \\ \b \f \n
 * \r \t, \u00XX for other control characters, UTF-8 as it is). A
 * measure of an answer against its budget costs a tenth of a dump. */
size_t cx_rpc_compact_size(const json_t *j);

/* json_stringn(s, n): a string of s[0, n), NULL when it is not UTF-8 (or
 * no memory), with the check of util/utf8.h, which reads ASCII eight
 * bytes at a time where jansson's reads one. */
json_t *cx_rpc_string(const char *s, size_t n);

/* One parsed message. `root` is owned (release with cx_rpc_msg_clear());
 * the other pointers borrow from it. For CX_RPC_INVALID, err_code and
 * err_msg say why, and id is the id to answer with (NULL answers null). */
typedef struct cx_rpc_msg {
    json_t *root;
    cx_rpc_kind kind;
    json_t *id;         /* borrowed; NULL = none */
    const char *method; /* borrowed */
    json_t *params;     /* borrowed; NULL = absent */
    int err_code;
    const char *err_msg;
} cx_rpc_msg;

/* Parses one message into out. Text that is not JSON (or nests deeper than
 * max_depth) returns -1 with a static reason in err_msg: answer -32700 with
 * id null. Otherwise returns 0 and out->kind says what it is. */
int cx_rpc_parse(const char *text, size_t len, int max_depth, cx_rpc_msg *out, const char **err_msg);
void cx_rpc_msg_clear(cx_rpc_msg *m);

/* The JSON text [text, text + len) as jansson's json_loadb would read it
 * with cx_rpc_parse's flags (any value, duplicate keys refused, "\u0000"
 * allowed in strings), or NULL where this reader declines: it builds
 * objects, arrays, strings, true/false/null and integers of up to 18
 * digits, and leaves everything else (reals, longer integers, duplicate
 * keys, NUL in a key, invalid UTF-8 or escapes, nesting deeper than
 * max_depth, any syntax error) to jansson, whose answer, value or error,
 * then stands. What it returns equals jansson's value, members in the
 * same order (test-proto holds it to that). Sets no error. */
json_t *cx_rpc_load_fast(const char *text, size_t len, int max_depth);

/* Appends v to b as json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) writes
 * it, byte for byte. Returns 0; nonzero when it cannot: 1 for a value
 * holding a real (jansson's formatting stays jansson's) or text that is not
 * UTF-8, else cx_buf's error (CX_ENOMEM, the buffer's limit). On failure b
 * holds a partial value: the caller drops it (cx_buf_drop, cx_buf_reset). */
int cx_rpc_dump(cx_buf *b, const json_t *v);

/* Classifies an already parsed message, taking ownership of root (so that
 * the elements of a batch go through the same rules as single messages). */
void cx_rpc_classify(json_t *root, cx_rpc_msg *out);

/* {"jsonrpc":"2.0","id":id,"result":result}; steals result, copies id
 * (NULL id → null). NULL on out of memory. */
json_t *cx_rpc_result(json_t *id, json_t *result);

/* {"jsonrpc":"2.0","id":id,"error":{"code","message","data"?}}; steals data. */
json_t *cx_rpc_error(json_t *id, int code, const char *message, json_t *data);

/* {"jsonrpc":"2.0","method":…,"params":…}; steals params. */
json_t *cx_rpc_notification(const char *method, json_t *params);

/* The id as compact JSON text ("7", "\"a\"") into buf; "" for none. */
void cx_rpc_id_text(json_t *id, char *buf, size_t size);

/* A reader of '\n'-terminated lines from a file descriptor, holding at most
 * `max_line` bytes of one line; longer lines are skipped and reported. */
typedef struct cx_linereader cx_linereader;

typedef enum {
    CX_LINE_OK,       /* line and len: one line without '\n' (borrowed until next call) */
    CX_LINE_OVERSIZE, /* a line longer than max_line was dropped; len = its size */
    CX_LINE_EOF,
    CX_LINE_AGAIN,    /* interrupted or would block; call again */
    CX_LINE_ERROR,
} cx_line_status;

int cx_linereader_new(cx_linereader **out, int fd, size_t max_line);
void cx_linereader_free(cx_linereader *lr);

/* True when the next call can answer without reading (a whole line or the
 * end of input is buffered): poll() only when this is false. */
bool cx_linereader_pending(const cx_linereader *lr);
/* Returns the next line, reading at most once from the descriptor: when
 * that read brings no complete line, CX_LINE_AGAIN (poll, then call again). */
cx_line_status cx_linereader_next(cx_linereader *lr, const char **line, size_t *len);
