/* SPDX-License-Identifier: Apache-2.0 */
/* Clocks and ISO 8601 timestamps. */
#include "util/clock.h"

#include "util/error.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

uint64_t cx_clock_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t cx_clock_mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t cx_clock_mono_ms(void) { return cx_clock_mono_ns() / 1000000u; }

void cx_clock_sleep_ms(uint64_t ms) {
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void cx_clock_format(uint64_t ms, char out[CX_ISO_LEN]) {
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char date[24];
    /* strftime keeps the compiler's field-width analysis out of it */
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, CX_ISO_LEN, "%.19s.%03uZ", date, (unsigned)(ms % 1000));
}

/* Reads exactly n digits. */
static int digits(const char **p, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

int cx_clock_parse(const char *s, uint64_t *ms) {
    int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, off = 0;
    const char *p = s;
    if (!s || digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
        digits(&p, 2, &d))
        goto bad;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi))
            goto bad;
        if (*p == ':') {
            p++;
            if (digits(&p, 2, &sec))
                goto bad;
            if (*p == '.') {
                p++;
                int scale = 100, n = 0;
                while (isdigit((unsigned char)*p)) {
                    if (n++ < 3) {
                        frac += (*p - '0') * scale;
                        scale /= 10;
                    }
                    p++;
                }
                if (n == 0)
                    goto bad;
            }
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, oh, om;
            if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om))
                goto bad;
            off = sign * (oh * 60 + om);
        }
    }
    if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 ||
        y < 1970)
        goto bad;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
                    .tm_hour = h, .tm_min = mi, .tm_sec = sec};
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        goto bad;
    t -= (time_t)off * 60;
    if (t < 0)
        goto bad;
    *ms = (uint64_t)t * 1000u + (uint64_t)frac;
    return 0;
bad:
    return cx_error_set(CX_EINVAL,
                        "'%s' is not a time; use ISO 8601 such as 2026-01-31 or "
                        "2026-01-31T09:30:00Z",
                        s ? s : "(null)");
}
