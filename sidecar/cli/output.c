/* SPDX-License-Identifier: Apache-2.0 */
/* Human-readable rendering for the cortex CLI (see output.h). Owns the
 * decision about colour and line width, and the rule that text from the
 * store is printed only after control characters have been taken out. */
#include "output.h"

#include "util/clock.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static bool use_color;
static int line_width = 80;

static const char *const sgr[] = {
    [CX_OUT_RESET] = "\033[0m",    [CX_OUT_BOLD] = "\033[1m",    [CX_OUT_DIM] = "\033[2m",
    [CX_OUT_RED] = "\033[31m",     [CX_OUT_GREEN] = "\033[32m",  [CX_OUT_YELLOW] = "\033[33m",
    [CX_OUT_BLUE] = "\033[34m",    [CX_OUT_MAGENTA] = "\033[35m", [CX_OUT_CYAN] = "\033[36m",
};

static const char REPLACEMENT[] = "\xEF\xBF\xBD"; /* U+FFFD */

void cx_out_init(void) {
    const char *no_color = getenv("NO_COLOR");
    const char *term = getenv("TERM");
    bool tty = isatty(STDOUT_FILENO) == 1;
    use_color = tty && !(no_color && no_color[0]) && !(term && strcmp(term, "dumb") == 0);

    int w = 0;
    struct winsize ws;
    if (tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        w = ws.ws_col;
    if (w == 0) {
        const char *cols = getenv("COLUMNS");
        if (cols && *cols) {
            char *end;
            errno = 0;
            long v = strtol(cols, &end, 10);
            if (errno == 0 && *end == '\0' && v > 0 && v < 10000)
                w = (int)v;
        }
    }
    if (w == 0)
        w = 80;
    if (w < 40)
        w = 40;
    if (w > 120)
        w = 120;
    line_width = w;
}

bool cx_out_color(void) { return use_color; }
int cx_out_width(void) { return line_width; }

const char *cx_out_sgr(cx_out_style style) {
    if (!use_color || (size_t)style >= sizeof sgr / sizeof sgr[0])
        return "";
    return sgr[style];
}

cx_out_style cx_out_kind_style(const char *kind) {
    if (!kind)
        return CX_OUT_RESET;
    if (strcmp(kind, "thread") == 0)
        return CX_OUT_GREEN;
    if (strcmp(kind, "draft") == 0)
        return CX_OUT_YELLOW;
    if (strcmp(kind, "artifact") == 0)
        return CX_OUT_CYAN;
    if (strcmp(kind, "comment") == 0)
        return CX_OUT_MAGENTA;
    if (strcmp(kind, "observation") == 0)
        return CX_OUT_BLUE;
    return CX_OUT_RESET;
}

/* Decodes one UTF-8 sequence at s (at most `left` bytes). Returns its
 * length and stores the code point, or 0 for an invalid sequence. */
static size_t utf8_decode(const unsigned char *s, size_t left, uint32_t *cp) {
    unsigned char c = s[0];
    size_t n;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        n = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3, v = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n > left)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return n;
}

/* Characters that must not reach a terminal: C0 controls other than
 * newline and tab, DEL, C1 controls, and the bidirectional overrides and
 * isolates that can make text read differently from what it is. */
static bool is_unsafe(uint32_t cp) {
    if (cp < 0x20)
        return cp != '\n' && cp != '\t';
    if (cp == 0x7F || (cp >= 0x80 && cp <= 0x9F))
        return true;
    if ((cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069))
        return true;
    return false;
}

static int cp_columns(uint32_t cp) {
    if ((cp >= 0x0300 && cp <= 0x036F) || (cp >= 0x1AB0 && cp <= 0x1AFF) ||
        (cp >= 0x1DC0 && cp <= 0x1DFF) || (cp >= 0x20D0 && cp <= 0x20FF) ||
        (cp >= 0xFE20 && cp <= 0xFE2F) || cp == 0x200B || cp == 0x200D || cp == 0xFE0F)
        return 0;
    if ((cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0xA4CF && cp != 0x303F) ||
        (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) ||
        (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
        (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x1F300 && cp <= 0x1F64F) ||
        (cp >= 0x1F900 && cp <= 0x1F9FF) || (cp >= 0x20000 && cp <= 0x3FFFD))
        return 2;
    return 1;
}

/* A copy of len bytes of s that is safe to print (see is_unsafe), with
 * newlines and tabs turned into spaces when one_line. malloc'd, or NULL
 * when out of memory. Each input byte yields at most three output bytes. */
static char *sanitize(const char *s, size_t len, bool one_line) {
    char *out = malloc(len * 3 + 1);
    if (!out)
        return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, o = 0;
    while (i < len) {
        uint32_t cp;
        size_t n = utf8_decode(p + i, len - i, &cp);
        if (n == 0) {
            out[o++] = '?';
            i++;
            continue;
        }
        if (one_line && (cp == '\n' || cp == '\t')) {
            out[o++] = ' ';
        } else if (cp == '\r') {
            /* CRLF line ends: drop the CR quietly */
            if (!(i + 1 < len && p[i + 1] == '\n')) {
                memcpy(out + o, REPLACEMENT, 3);
                o += 3;
            }
        } else if (is_unsafe(cp)) {
            memcpy(out + o, REPLACEMENT, 3);
            o += 3;
        } else {
            memcpy(out + o, p + i, n);
            o += n;
        }
        i += n;
    }
    out[o] = '\0';
    return out;
}

static void put_span(FILE *f, const char *s, size_t len, bool one_line) {
    char *safe = sanitize(s, len, one_line);
    if (safe) {
        fputs(safe, f);
        free(safe);
    }
}

void cx_out_text(FILE *f, const char *s, bool one_line) {
    if (s)
        put_span(f, s, strlen(s), one_line);
}

void cx_out_vprintf(FILE *f, const char *fmt, va_list ap) {
    char small[1024], *big = NULL;
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    const char *text = small;
    if (n >= (int)sizeof small && n < (1 << 20) && (big = malloc((size_t)n + 1))) {
        vsnprintf(big, (size_t)n + 1, fmt, again);
        text = big;
    }
    va_end(again);
    if (n > 0)
        put_span(f, text, strlen(text), false);
    free(big);
}

void cx_out_printf(FILE *f, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    cx_out_vprintf(f, fmt, ap);
    va_end(ap);
}

static const char MARK_OPEN[] = "\xC2\xAB", MARK_CLOSE[] = "\xC2\xBB"; /* « » */

/* Writes len bytes of a snippet on one line, the «…» markers in bold when
 * colour is on. */
static void snippet_span(FILE *f, const char *s, size_t len) {
    const char *p = s, *end = s + len;
    while (p < end) {
        const char *m = NULL;
        for (const char *q = p; q + 1 < end; q++)
            if (memcmp(q, MARK_OPEN, 2) == 0 || memcmp(q, MARK_CLOSE, 2) == 0) {
                m = q;
                break;
            }
        if (!m) {
            put_span(f, p, (size_t)(end - p), true);
            return;
        }
        put_span(f, p, (size_t)(m - p), true);
        bool open = memcmp(m, MARK_OPEN, 2) == 0;
        if (use_color)
            fputs(open ? sgr[CX_OUT_BOLD] : sgr[CX_OUT_RESET], f);
        else
            fputs(open ? MARK_OPEN : MARK_CLOSE, f);
        p = m + 2;
    }
}

void cx_out_snippet(FILE *f, const char *s) {
    if (s)
        snippet_span(f, s, strlen(s));
}

static size_t columns_span(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, cols = 0;
    while (i < len) {
        uint32_t cp;
        size_t n = utf8_decode(p + i, len - i, &cp);
        if (n == 0) {
            cols++;
            i++;
            continue;
        }
        cols += (size_t)cp_columns(cp);
        i += n;
    }
    return cols;
}

size_t cx_out_columns(const char *s) {
    return s ? columns_span(s, strlen(s)) : 0;
}

void cx_out_cell(FILE *f, const char *s, size_t width, bool pad) {
    char *safe = sanitize(s ? s : "", s ? strlen(s) : 0, true);
    if (!safe)
        return;
    size_t cols = columns_span(safe, strlen(safe));
    if (cols <= width) {
        fputs(safe, f);
        if (pad)
            for (size_t i = cols; i < width; i++)
                fputc(' ', f);
    } else if (width > 0) {
        /* keep whole characters up to width-1 columns, then "…" */
        const unsigned char *p = (const unsigned char *)safe;
        size_t len = strlen(safe), i = 0, used = 0;
        while (i < len) {
            uint32_t cp;
            size_t n = utf8_decode(p + i, len - i, &cp);
            int w = n ? cp_columns(cp) : 1;
            if (!n)
                n = 1;
            if (used + (size_t)w > width - 1)
                break;
            used += (size_t)w;
            i += n;
        }
        fwrite(safe, 1, i, f);
        fputs("\xE2\x80\xA6", f);
        if (pad)
            for (size_t k = used + 1; k < width; k++)
                fputc(' ', f);
    }
    free(safe);
}

static void spaces(FILE *f, int n) {
    for (int i = 0; i < n; i++)
        fputc(' ', f);
}

/* The width of a markdown list marker at the start of s ("- ", "* ",
 * "12. "), so that wrapped lines of a list item line up under its text. */
static int list_marker(const char *s, size_t len) {
    if (len >= 2 && (s[0] == '-' || s[0] == '*' || s[0] == '+') && s[1] == ' ')
        return 2;
    size_t i = 0;
    while (i < len && i < 4 && s[i] >= '0' && s[i] <= '9')
        i++;
    if (i > 0 && i + 1 < len && (s[i] == '.' || s[i] == ')') && s[i + 1] == ' ')
        return (int)i + 2;
    return 0;
}

/* Columns of a span as displayed: without the markers when they turn into
 * colour changes. */
static size_t span_columns(const char *s, size_t len, bool marks) {
    size_t cols = columns_span(s, len);
    if (marks && use_color)
        for (size_t i = 0; i + 1 < len; i++)
            if (memcmp(s + i, MARK_OPEN, 2) == 0 || memcmp(s + i, MARK_CLOSE, 2) == 0)
                cols--;
    return cols;
}

static void wrap_line(FILE *f, const char *line, size_t len, int indent, int width, bool marks) {
    size_t lead = 0;
    while (lead < len && line[lead] == ' ')
        lead++;
    int cont = indent + (int)lead + list_marker(line + lead, len - lead);
    spaces(f, indent);
    put_span(f, line, lead, true);
    int col = indent + (int)lead, start = col;
    size_t i = lead;
    while (i < len) {
        while (i < len && isspace((unsigned char)line[i]))
            i++;
        if (i >= len)
            break;
        size_t j = i;
        while (j < len && !isspace((unsigned char)line[j]))
            j++;
        int w = (int)span_columns(line + i, j - i, marks);
        if (col > start && col + 1 + w > width) {
            fputc('\n', f);
            spaces(f, cont);
            col = start = cont;
        } else if (col > start) {
            fputc(' ', f);
            col++;
        }
        if (marks)
            snippet_span(f, line + i, j - i);
        else
            put_span(f, line + i, j - i, true);
        col += w;
        i = j;
    }
    fputc('\n', f);
}

void cx_out_wrap(FILE *f, const char *text, int indent, int width) {
    if (!text || !*text)
        return;
    bool fence = false;
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len > 0 && p[len - 1] == '\r')
            len--;
        const char *t = p;
        while (t < p + len && *t == ' ')
            t++;
        bool is_fence = (size_t)(p + len - t) >= 3 &&
                        (strncmp(t, "```", 3) == 0 || strncmp(t, "~~~", 3) == 0);
        bool code = fence || is_fence || (len > 0 && p[0] == '\t') ||
                    (len >= 4 && strncmp(p, "    ", 4) == 0);
        if (len == 0) {
            fputc('\n', f);
        } else if (code) {
            spaces(f, indent);
            put_span(f, p, len, false);
            fputc('\n', f);
        } else {
            wrap_line(f, p, len, indent, width, false);
        }
        if (is_fence)
            fence = !fence;
        if (!nl)
            break;
        p = nl + 1;
    }
}

void cx_out_wrap_snippet(FILE *f, const char *s, int indent, int width) {
    if (s && *s)
        wrap_line(f, s, strlen(s), indent, width, true);
}

void cx_out_reltime(const char *iso, uint64_t now_ms, char *buf, size_t n) {
    uint64_t t;
    if (n == 0)
        return;
    if (!iso || cx_clock_parse(iso, &t) != 0) {
        snprintf(buf, n, "%s", iso ? iso : "?");
        return;
    }
    const uint64_t minute = 60000, hour = 60 * minute, day = 24 * hour;
    if (t > now_ms) {
        /* a clock a little ahead of ours is still "now" */
        if (t - now_ms < 5 * minute)
            snprintf(buf, n, "just now");
        else
            snprintf(buf, n, "%.10s", iso);
        return;
    }
    uint64_t d = now_ms - t;
#define PLURAL(v, unit) snprintf(buf, n, "%llu " unit "%s ago", (unsigned long long)(v), (v) == 1 ? "" : "s")
    if (d < minute)
        snprintf(buf, n, "just now");
    else if (d < hour)
        PLURAL(d / minute, "minute");
    else if (d < day)
        PLURAL(d / hour, "hour");
    else if (d < 2 * day)
        snprintf(buf, n, "yesterday");
    else if (d < 14 * day)
        PLURAL(d / day, "day");
    else if (d < 60 * day)
        PLURAL(d / (7 * day), "week");
    else if (d < 365 * day)
        PLURAL(d / (30 * day), "month");
    else
        snprintf(buf, n, "%.10s", iso);
#undef PLURAL
}

void cx_out_size(uint64_t bytes, char *buf, size_t n) {
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
    if (bytes < 1024) {
        snprintf(buf, n, "%llu B", (unsigned long long)bytes);
        return;
    }
    double v = (double)bytes / 1024.0;
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, n, "%.1f %s", v, units[u]);
}
