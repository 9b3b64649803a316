/* SPDX-License-Identifier: Apache-2.0 */
/* The server: the HTTP front of cortex-core on libmicrohttpd: routing, bearer
 * authentication, body limits, per-key rate limits, metrics, and the one
 * place where CX_E… codes become HTTP status codes. */
#pragma once

#include "core/feed.h"

#include <stdint.h>

typedef struct cx_server_config {
    const char *host;      /* numeric address or name to bind */
    uint16_t port;         /* 0 = any free port */
    const char *tls_cert;  /* PEM files; both or neither */
    const char *tls_key;
    double rate;           /* requests per second per key; 0 = unlimited */
    double burst;          /* bucket size */
    unsigned threads;      /* worker threads */
    size_t page_memory;    /* bytes of pull pages held for slow readers; 0 = 64 MiB */
    double send_min_rate;  /* bytes/s a client must take a pull page at (after a
                              10 s grace) or be dropped; 0 = 64 KiB/s */
} cx_server_config;

typedef struct cx_server cx_server;

/* Starts serving in background threads. *out is the caller's. The TLS
 * files are read here. CX_EINVAL (bad address, a non-loopback address
 * without TLS), CX_EIO (cannot bind). */
int cx_server_start(cx_server **out, cx_feed *feed, const cx_server_config *cfg);
/* The port actually bound. */
uint16_t cx_server_port(const cx_server *h);
void cx_server_stop(cx_server *h);

/* True when host (a literal or a name) resolves only to loopback. */
bool cx_server_host_is_loopback(const char *host);
