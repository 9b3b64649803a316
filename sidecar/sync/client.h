/* SPDX-License-Identifier: Apache-2.0 */
/* The HTTP client of the sync protocol (libcurl): one connection to one
 * core, reused across requests.
 *
 * HTTPS peers are always verified (a custom CA bundle may be given); plain
 * http is refused unless the host is loopback. Every request carries
 * `Authorization: Bearer <key>`, has a connect timeout and a whole-request
 * timeout, and its answer is capped (CX_ELIMIT past the cap). Bodies never
 * reach stdout. A request can be aborted from another thread through the
 * `abort` flag given to cx_client_new: it ends within about 100 ms with
 * CX_ECANCELED. Errors never carry the key. */
#pragma once

#include "sync/upstream.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct cx_client cx_client;

#define CX_CLIENT_MAX_ANSWER (64u * 1024 * 1024)

/* One answer. `status` is the HTTP status (0 when there was none: a
 * transport failure returns CX_EIO instead). `json` is the parsed body
 * when it was JSON (else NULL), `retry_after_s` the Retry-After seconds (0
 * when absent). Owned by the caller: cx_client_answer_clear. */
typedef struct cx_client_answer {
    long status;
    json_t *json;
    long retry_after_s;
} cx_client_answer;

void cx_client_answer_clear(cx_client_answer *a);

/* A client for `u` with `key` (may be NULL: no Authorization). `abort_flag`
 * (borrowed, may be NULL) stops requests in flight when it becomes non-zero.
 * CX_EINVAL for a URL that cx_upstream_check_url refuses. */
int cx_client_new(cx_client **out, const cx_upstream *u, const char *key,
                  const atomic_int *abort_flag);
void cx_client_free(cx_client *c);
/* Names the workspace in the X-Cortex-Workspace header of the client's
 * pulls, so that the core's team page shows which workspace synced when:
 * the name (the workspace's, the last component of its root) with every
 * character outside [A-Za-z0-9._-] made '-', at most 64 bytes. NULL or
 * empty: no header. CX_ENOMEM. */
int cx_client_set_workspace(cx_client *c, const char *name);

/* Sends METHOD base_url+path with an optional body (`ctype` its content
 * type, NULL = application/json). Returns 0 whenever an HTTP answer came
 * (whatever its status), CX_EIO for a transport failure (connect, TLS,
 * timeout; detail says which), CX_ECANCELED when aborted, CX_ELIMIT when
 * the answer was too large. */
int cx_client_request(cx_client *c, const char *method, const char *path, const void *body,
                      size_t len, const char *ctype, cx_client_answer *ans);

/* Receives one chunk of a download; non-zero stops the transfer (with
 * the detail set by the sink). */
typedef int (*cx_client_sink_fn)(void *ud, const void *data, size_t len);

/* Bytes kept of a download's answer when it is not the content (an error). */
#define CX_CLIENT_MAX_ERROR (64u * 1024)

/* GET base_url+path, streaming a 200 answer's body to fn as it arrives
 * (never held whole here); any other status's body is read as the answer
 * (ans->json, capped at CX_CLIENT_MAX_ERROR). Returns as cx_client_request,
 * and the sink's code (with its detail) when the sink stopped the transfer. */
int cx_client_download(cx_client *c, const char *path, cx_client_sink_fn fn, void *ud,
                       cx_client_answer *ans);

/* Same, with a JSON body (serialised compactly). */
int cx_client_json(cx_client *c, const char *method, const char *path, const json_t *body,
                   cx_client_answer *ans);

/* The error message of an answer's body ({"error":{"message"}}), or a
 * generic text for the status. Borrowed from `ans` or static. */
const char *cx_client_error_text(const cx_client_answer *ans);

/* The delay before retry number `attempt` (0-based): full jitter over
 * min(cap_ms, base_ms * 2^attempt), and never less than retry_after_s.
 * In milliseconds. */
unsigned long cx_client_backoff_ms(unsigned attempt, unsigned long base_ms, unsigned long cap_ms,
                                   long retry_after_s);
