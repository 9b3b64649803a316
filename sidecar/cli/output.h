/* SPDX-License-Identifier: Apache-2.0 */
/* Human-readable rendering for the cortex CLI: styles (colour only when
 * stdout is a terminal and NO_COLOR is unset or empty), text that came from
 * the store made safe for a terminal, word wrapping, table cells, relative
 * times and byte sizes.
 *
 * Everything here writes to the FILE it is given and never fails loudly:
 * write errors are left on the stream for the caller's final ferror() check.
 * Text from the store was written by agents and must be treated as
 * untrusted: every function that prints such text drops control characters
 * (except newline and tab) so an item cannot drive the terminal. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    CX_OUT_RESET = 0,
    CX_OUT_BOLD,
    CX_OUT_DIM,
    CX_OUT_RED,
    CX_OUT_GREEN,
    CX_OUT_YELLOW,
    CX_OUT_BLUE,
    CX_OUT_MAGENTA,
    CX_OUT_CYAN,
} cx_out_style;

/* Decides, once, whether stdout gets colour (a terminal, NO_COLOR unset or
 * empty, TERM not "dumb") and how wide lines may be (the terminal's width,
 * else $COLUMNS, else 80; kept within 40..120). */
void cx_out_init(void);

bool cx_out_color(void);
int cx_out_width(void);

/* The escape sequence for a style, or "" without colour. Borrowed. */
const char *cx_out_sgr(cx_out_style style);

/* A style that tells item kinds apart (thread green, draft yellow, …). */
cx_out_style cx_out_kind_style(const char *kind);

/* Writes untrusted text with control characters (C0 except \n and \t, DEL,
 * C1, invalid UTF-8) replaced by U+FFFD ("?" for invalid bytes). With
 * `one_line`, newlines and tabs become spaces too. NULL prints nothing. */
void cx_out_text(FILE *f, const char *s, bool one_line);

/* Formats like fprintf and writes the result as cx_out_text (newlines and
 * tabs kept): for messages that carry text from a core or the store, such
 * as an error detail. Styles cannot go through it (their escapes would be
 * dropped). Past 1 MiB the message is cut. */
void cx_out_printf(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cx_out_vprintf(FILE *f, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Writes a search snippet on one line: the «…» match markers become bold
 * when colour is on and are kept as they are otherwise. */
void cx_out_snippet(FILE *f, const char *s);

/* Writes text wrapped at `width` columns with every line indented by
 * `indent` spaces. Line breaks in the text are kept; lines inside ```
 * fences or indented by a tab or four spaces (markdown code) are never
 * re-flowed. A word longer than a line gets a line of its own. Ends with a
 * newline unless the text is empty. */
void cx_out_wrap(FILE *f, const char *text, int indent, int width);

/* Writes a search snippet as one paragraph wrapped like cx_out_wrap, with
 * the markers rendered as by cx_out_snippet. */
void cx_out_wrap_snippet(FILE *f, const char *s, int indent, int width);

/* Display columns of UTF-8 text: code points, with combining marks as 0
 * and East Asian wide characters as 2. */
size_t cx_out_columns(const char *s);

/* Writes untrusted text on one line in exactly `width` columns: cut with
 * "…" when longer, padded with spaces when shorter (unless `pad` is false). */
void cx_out_cell(FILE *f, const char *s, size_t width, bool pad);

/* "just now", "5 minutes ago", "yesterday", "3 weeks ago", or the date
 * ("2026-01-03") past about a year. `iso` is an ISO 8601 time; something
 * unparseable is copied as it is. */
void cx_out_reltime(const char *iso, uint64_t now_ms, char *buf, size_t n);

/* "512 B", "1.2 KiB", "3.0 MiB", … */
void cx_out_size(uint64_t bytes, char *buf, size_t n);
