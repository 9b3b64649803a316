/* SPDX-License-Identifier: Apache-2.0 */
/* The server: the HTTP front of cortex-core on libmicrohttpd: routing, bearer
 * authentication, body limits, per-key and per-address rate limits,
 * connection limits and request deadlines, metrics, and the one place
 * where CX_E… codes become HTTP status codes. */
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
    /* Connections. A request's headers must arrive within header_timeout
     * seconds of its connection opening (the TLS handshake included) or of
     * the previous response's end; its body within body_timeout seconds
     * of its headers plus one second per CX_SERVER_BODY_RATE bytes
     * received; a connection that moves no byte for idle_timeout seconds
     * is closed. max_per_address caps one client address's concurrent
     * connections; max_connections all of them (0: derived from the
     * descriptor limit, see cx_server_max_connections). */
    unsigned header_timeout;
    unsigned body_timeout;
    unsigned idle_timeout;
    unsigned max_per_address;
    unsigned max_connections;
    size_t page_memory;    /* bytes of pull pages held for slow readers; 0 = 64 MiB */
    double send_min_rate;  /* bytes/s a client must take a pull page at (after a
                              10 s grace) or be dropped; 0 = 64 KiB/s */
    unsigned session_ttl;  /* seconds a browser session lives; 0 = 12 h */
} cx_server_config;

/* The defaults of cortex-core serve (documented in cortex-core(8)). */
#define CX_SERVER_HEADER_TIMEOUT 10
#define CX_SERVER_BODY_TIMEOUT 60
#define CX_SERVER_IDLE_TIMEOUT 30
#define CX_SERVER_MAX_PER_ADDRESS 64
#define CX_SERVER_BODY_RATE (64 * 1024)
/* The total connection limit is at most this, and at most the descriptor
 * limit less CX_SERVER_FD_RESERVE + 4 per thread (the database, the
 * listening socket, each thread's event descriptors, logs). */
#define CX_SERVER_MAX_CONNECTIONS 4096
#define CX_SERVER_FD_RESERVE 64

typedef struct cx_server cx_server;

/* The largest total connection limit the process's descriptor limit
 * (RLIMIT_NOFILE, soft) allows with `threads` worker threads, capped at
 * CX_SERVER_MAX_CONNECTIONS; 0 when the limit leaves no room. */
unsigned cx_server_max_connections(unsigned threads);

/* Starts serving in background threads. *out is the caller's. The TLS
 * files are read here. Zero timeouts and limits take the defaults above.
 * CX_EINVAL (bad address, a non-loopback address without TLS, a
 * max_connections the descriptor limit cannot hold), CX_EIO (cannot
 * bind). */
int cx_server_start(cx_server **out, cx_feed *feed, const cx_server_config *cfg);
/* The port actually bound. */
uint16_t cx_server_port(const cx_server *h);
void cx_server_stop(cx_server *h);

/* True when host (a literal or a name) resolves only to loopback. */
bool cx_server_host_is_loopback(const char *host);
