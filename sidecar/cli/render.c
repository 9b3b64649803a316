/* SPDX-License-Identifier: Apache-2.0 */
/* Rendering of items for people (`cortex show`, review lists): labels,
 * lists, who, kind line, times, and one item in full. */
#include "cli.h"

#include "output.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put_label(const char *label) {
    printf("  %s%-10s%s ", cx_out_sgr(CX_OUT_DIM), label, cx_out_sgr(CX_OUT_RESET));
}

/* Strings of a JSON array (or the "path" of objects in it), comma separated. */
static void put_list(const json_t *arr) {
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (i > 0)
            fputs(", ", stdout);
        if (json_is_string(v)) {
            cx_out_text(stdout, json_string_value(v), true);
        } else if (json_is_object(v)) {
            cx_out_text(stdout, cx_cli_jstr(v, "path"), true);
            if (cx_cli_jtrue(v, "stale"))
                fputs(" (changed since)", stdout);
        }
    }
}

static void put_who(const json_t *o, const char *author_key) {
    const char *author = cx_cli_jstr(o, author_key), *agent = cx_cli_jstr(o, "agent");
    cx_out_text(stdout, author ? author : "someone", true);
    if (agent) {
        fputs(" via ", stdout);
        cx_out_text(stdout, agent, true);
    }
}

/* " · stale" (red) after the kind line of an item whose files changed since
 * it was recorded ("stale": true, as search and get answer with a
 * provenance check). */
void cx_cli_put_stale_mark(const json_t *it) {
    if (cx_cli_jtrue(it, "stale"))
        printf(" \xC2\xB7 %sstale%s", cx_out_sgr(CX_OUT_RED), cx_out_sgr(CX_OUT_RESET));
}

/* The paths of a stale item that changed since it was recorded, as one
 * line "changed since recorded: a.c, b.c" after `indent` spaces; nothing
 * for an item that is not stale. */
void cx_cli_put_changed(const json_t *it, int indent) {
    if (!cx_cli_jtrue(it, "stale"))
        return;
    const json_t *ch = json_object_get(it, "changed");
    printf("%*s%s", indent, "", cx_out_sgr(CX_OUT_YELLOW));
    if (json_array_size(ch) > 0) {
        fputs("changed since recorded: ", stdout);
        put_list(ch);
    } else {
        fputs("its files changed since it was recorded", stdout);
    }
    printf("%s\n", cx_out_sgr(CX_OUT_RESET));
}

/* "kind · status · subcortex" with the kind coloured. */
void cx_cli_put_kind_line(const json_t *it) {
    const char *kind = cx_cli_jstr(it, "kind"), *status = cx_cli_jstr(it, "status"), *sub = cx_cli_jstr(it, "subcortex");
    fputs(cx_out_sgr(cx_out_kind_style(kind)), stdout);
    cx_out_text(stdout, kind ? kind : "item", true);
    fputs(cx_out_sgr(CX_OUT_RESET), stdout);
    if (status) {
        fputs(" \xC2\xB7 ", stdout);
        cx_out_text(stdout, status, true);
    }
    if (sub) {
        fputs(" \xC2\xB7 ", stdout);
        cx_out_text(stdout, sub, true);
    }
}

static void put_time(const ctx *c, const char *iso) {
    char rel[64];
    cx_out_reltime(iso, c->now, rel, sizeof rel);
    cx_out_text(stdout, rel, true);
    if (iso && strcmp(rel, iso) != 0 && strncmp(rel, iso, 10) != 0) {
        fputs(" (", stdout);
        cx_out_text(stdout, iso, true);
        fputc(')', stdout);
    }
}

static const char *decision_words(const char *d) {
    if (!d)
        return "reviewed";
    if (strcmp(d, "approve") == 0 || strcmp(d, "approved") == 0)
        return "approved";
    if (strcmp(d, "reject") == 0 || strcmp(d, "rejected") == 0)
        return "rejected";
    if (strcmp(d, "changes_requested") == 0 || strcmp(d, "request_changes") == 0)
        return "changes requested";
    return d;
}

void cx_cli_render_item(const ctx *c, const json_t *it) {
    int width = cx_out_width();
    const char *title = cx_cli_jstr(it, "title"), *body = cx_cli_jstr(it, "body");
    const char *created = cx_cli_jstr(it, "created_at"), *updated = cx_cli_jstr(it, "updated_at");
    json_t *v;

    printf("%s", cx_out_sgr(CX_OUT_BOLD));
    cx_out_text(stdout, cx_cli_jstr(it, "id"), true);
    printf("%s  ", cx_out_sgr(CX_OUT_RESET));
    cx_cli_put_kind_line(it);
    const char *vis = cx_cli_jstr(it, "visibility");
    if (vis && strcmp(vis, "private") == 0)
        fputs(" \xC2\xB7 private", stdout);
    cx_cli_put_stale_mark(it);
    fputc('\n', stdout);
    if (title && *title) {
        printf("%s", cx_out_sgr(CX_OUT_BOLD));
        cx_out_text(stdout, title, true);
        printf("%s\n", cx_out_sgr(CX_OUT_RESET));
    }
    if (body && *body) {
        fputc('\n', stdout);
        cx_out_wrap(stdout, body, 2, width);
    }
    fputc('\n', stdout);

    v = json_object_get(it, "tags");
    if (json_array_size(v) > 0) {
        put_label("tags");
        put_list(v);
        fputc('\n', stdout);
    }
    v = json_object_get(it, "files");
    if (json_array_size(v) > 0) {
        put_label("files");
        put_list(v);
        fputc('\n', stdout);
    }
    if (cx_cli_jtrue(it, "stale")) {
        put_label("stale");
        cx_cli_put_changed(it, 0);
    }
    put_label("author");
    put_who(it, "author");
    fputc('\n', stdout);
    if (created) {
        put_label("created");
        put_time(c, created);
        fputc('\n', stdout);
    }
    if (updated && (!created || strcmp(updated, created) != 0)) {
        put_label("updated");
        put_time(c, updated);
        fputc('\n', stdout);
    }
    long long seen = cx_cli_jint(it, "seen", 1);
    if (seen > 1) {
        put_label("seen");
        printf("%lld times\n", seen);
    }
    const char *parent = cx_cli_jstr(it, "parent_id");
    if (parent) {
        put_label("on");
        cx_out_text(stdout, parent, true);
        fputc('\n', stdout);
    }
    v = json_object_get(it, "evidence");
    if (json_array_size(v) > 0) {
        put_label("evidence");
        put_list(v);
        fputc('\n', stdout);
    }
    v = json_object_get(it, "review");
    if (json_is_object(v)) {
        put_label("review");
        fputs(decision_words(cx_cli_jstr(v, "decision")), stdout);
        if (cx_cli_jstr(v, "reviewer")) {
            fputs(" by ", stdout);
            cx_out_text(stdout, cx_cli_jstr(v, "reviewer"), true);
        }
        if (cx_cli_jstr(v, "at")) {
            char rel[64];
            cx_out_reltime(cx_cli_jstr(v, "at"), c->now, rel, sizeof rel);
            fputs(", ", stdout);
            cx_out_text(stdout, rel, true);
        }
        if (cx_cli_jstr(v, "reason") && *cx_cli_jstr(v, "reason")) {
            fputs(": ", stdout);
            cx_out_text(stdout, cx_cli_jstr(v, "reason"), true);
        }
        fputc('\n', stdout);
    }
    if (json_is_integer(json_object_get(it, "server_seq"))) {
        put_label("synced");
        printf("seq %lld\n", cx_cli_jint(it, "server_seq", 0));
    }

    v = json_object_get(it, "comments");
    if (json_array_size(v) > 0) {
        size_t i;
        json_t *cm;
        printf("\n%sComments (%zu)%s\n", cx_out_sgr(CX_OUT_BOLD), json_array_size(v),
               cx_out_sgr(CX_OUT_RESET));
        json_array_foreach(v, i, cm) {
            char rel[64];
            cx_out_reltime(cx_cli_jstr(cm, "created_at"), c->now, rel, sizeof rel);
            fputs("  ", stdout);
            put_who(cm, "author");
            printf(", %s  %s", rel, cx_out_sgr(CX_OUT_DIM));
            cx_out_text(stdout, cx_cli_jstr(cm, "id"), true);
            printf("%s\n", cx_out_sgr(CX_OUT_RESET));
            cx_out_wrap(stdout, cx_cli_jstr(cm, "body"), 4, width);
        }
    }
    v = json_object_get(it, "versions");
    if (json_array_size(v) > 0) {
        size_t i;
        json_t *ver;
        printf("\n%sVersions (%zu)%s\n", cx_out_sgr(CX_OUT_BOLD), json_array_size(v),
               cx_out_sgr(CX_OUT_RESET));
        json_array_foreach(v, i, ver) {
            char size[32], rel[64];
            const char *sha = cx_cli_jstr(ver, "sha256"), *src = cx_cli_jstr(ver, "source_path");
            cx_out_size((uint64_t)cx_cli_jint(ver, "size", 0), size, sizeof size);
            cx_out_reltime(cx_cli_jstr(ver, "created_at"), c->now, rel, sizeof rel);
            printf("  v%-3lld ", cx_cli_jint(ver, "version", 0));
            cx_out_cell(stdout, cx_cli_jstr(ver, "status"), 10, true);
            char short_sha[13];
            snprintf(short_sha, sizeof short_sha, "%s", sha ? sha : "");
            printf(" %10s  %s", size, cx_out_sgr(CX_OUT_DIM));
            cx_out_cell(stdout, short_sha, 12, true);
            printf("%s  ", cx_out_sgr(CX_OUT_RESET));
            cx_out_text(stdout, rel, true);
            if (src) {
                fputs("  from ", stdout);
                cx_out_text(stdout, src, true);
            }
            fputc('\n', stdout);
        }
    }
}
