/* SPDX-License-Identifier: Apache-2.0 */
/* stderr logger with an optional mirror sink. */
#include "util/log.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *names[] = {"debug", "info", "notice", "warning", "error",
                              "critical", "alert", "emergency"};
static const char *progname = "cortex";
static cx_log_level stderr_level = CX_LOG_INFO;
static cx_log_sink sink;
static void *sink_ud;
static cx_log_level sink_level = CX_LOG_OFF;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void cx_log_init(const char *prog, cx_log_level level) {
    progname = prog;
    stderr_level = level;
}

void cx_log_set_level(cx_log_level level) { stderr_level = level; }
cx_log_level cx_log_get_level(void) { return stderr_level; }

void cx_log_set_sink(cx_log_sink fn, void *ud, cx_log_level min) {
    pthread_mutex_lock(&lock);
    sink = fn;
    sink_ud = ud;
    sink_level = fn ? min : CX_LOG_OFF;
    pthread_mutex_unlock(&lock);
}

void cx_log_set_sink_level(cx_log_level min) {
    pthread_mutex_lock(&lock);
    sink_level = min;
    pthread_mutex_unlock(&lock);
}

int cx_log_level_parse(const char *name) {
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (name && strcasecmp(name, names[i]) == 0)
            return (int)i;
    return -1;
}

const char *cx_log_level_name(cx_log_level level) {
    return level < CX_LOG_OFF ? names[level] : "off";
}

__attribute__((format(printf, 2, 0)))
static void logv(cx_log_level level, const char *fmt, va_list ap) {
    if (level < stderr_level && level < sink_level)
        return;
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    /* One event per line, and nothing that drives a terminal: messages
     * carry text from elsewhere (a core's error message, a path), so
     * control characters (C0, DEL, and C1 encoded in UTF-8) become spaces. */
    for (unsigned char *p = (unsigned char *)msg; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            *p = ' ';
        else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
            p[0] = p[1] = ' ';
    }
    if (level >= stderr_level) {
        struct timespec ts;
        struct tm tm;
        char when[32];
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
        fprintf(stderr, "ts=%s.%03ldZ level=%s prog=%s msg=\"%s\"\n", when,
                ts.tv_nsec / 1000000, names[level], progname, msg);
    }
    pthread_mutex_lock(&lock);
    if (sink && level >= sink_level)
        sink(sink_ud, level, msg);
    pthread_mutex_unlock(&lock);
}

void cx_log(cx_log_level level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    logv(level, fmt, ap);
    va_end(ap);
}

int cx_log_ret(cx_log_level level, int r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    logv(level, fmt, ap);
    va_end(ap);
    return r;
}
