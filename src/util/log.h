/* SPDX-License-Identifier: Apache-2.0 */
/* Structured logging to stderr, for programs only: engine code never logs.
 *
 * One event per line: `ts=… level=… prog=… msg="…"`. The level is checked
 * before anything is formatted. A sink can be installed to mirror events
 * elsewhere (cortexd forwards them as MCP notifications/message). */
#pragma once

#include <stdarg.h>
#include <stdbool.h>

typedef enum {
    CX_LOG_DEBUG = 0,
    CX_LOG_INFO,
    CX_LOG_NOTICE,
    CX_LOG_WARNING,
    CX_LOG_ERROR,
    CX_LOG_CRITICAL,
    CX_LOG_ALERT,
    CX_LOG_EMERGENCY,
    CX_LOG_OFF,
} cx_log_level;

typedef void (*cx_log_sink)(void *ud, cx_log_level level, const char *msg);

void cx_log_init(const char *prog, cx_log_level level);
void cx_log_set_level(cx_log_level level);
cx_log_level cx_log_get_level(void);
/* Installs (or with fn NULL removes) the mirror sink; called for every event
 * that passes the stderr level or the sink's own min level. */
void cx_log_set_sink(cx_log_sink fn, void *ud, cx_log_level min);
void cx_log_set_sink_level(cx_log_level min);

/* Parses "debug", "info", … (syslog names as MCP uses them); -1 if unknown. */
int cx_log_level_parse(const char *name);
const char *cx_log_level_name(cx_log_level level);

/* Logs and returns `r`, so a failure is reported and propagated in one line:
 * `return cx_log_ret(CX_LOG_ERROR, r, "open failed: %s", cx_error_last());` */
int cx_log_ret(cx_log_level level, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void cx_log(cx_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) cx_log(CX_LOG_DEBUG, __VA_ARGS__)
#define log_info(...) cx_log(CX_LOG_INFO, __VA_ARGS__)
#define log_warn(...) cx_log(CX_LOG_WARNING, __VA_ARGS__)
#define log_err(r, ...) cx_log_ret(CX_LOG_ERROR, (r), __VA_ARGS__)
