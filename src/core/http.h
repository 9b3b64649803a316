/* SPDX-License-Identifier: Apache-2.0 */
/* The HTTP front of cortex-core on libmicrohttpd: routing, bearer
 * authentication, body limits, per-key rate limits, metrics, and the one
 * place where CX_E… codes become HTTP status codes. */
#pragma once

#include "core/sync.h"

#include <stdint.h>

typedef struct cx_http_config {
    const char *host;      /* numeric address or name to bind */
    uint16_t port;         /* 0 = any free port */
    const char *tls_cert;  /* PEM files; both or neither */
    const char *tls_key;
    double rate;           /* requests per second per key; 0 = unlimited */
    double burst;          /* bucket size */
    unsigned threads;      /* worker threads */
} cx_http_config;

typedef struct cx_http cx_http;

/* Starts serving in background threads. *out is the caller's. The TLS
 * files are read here. CX_EINVAL (bad address, a non-loopback address
 * without TLS), CX_EIO (cannot bind). */
int cx_http_start(cx_http **out, cx_sync *sync, const cx_http_config *cfg);
/* The port actually bound. */
uint16_t cx_http_port(const cx_http *h);
void cx_http_stop(cx_http *h);

/* True when host (a literal or a name) resolves only to loopback. */
bool cx_http_host_is_loopback(const char *host);
