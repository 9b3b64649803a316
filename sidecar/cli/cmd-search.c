/* SPDX-License-Identifier: Apache-2.0 */
/* `cortex search` and `cortex show`: reading the memory. */
#include "cli.h"

#include "output.h"
#include "proto/wire.h"
#include "provenance.h"
#include "search/search.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char cx_cli_help_search[] =
    "Usage: cortex search QUERY... [OPTIONS]\n"
    "\n"
    "Finds items by their words and their meaning, best first: keyword matches\n"
    "(identifiers split, so parse_config finds parseConfigFile) fused with\n"
    "vector similarity (paraphrases and typos still match), then ranked by trust\n"
    "(canon threads first), recency and staleness. An item whose files changed\n"
    "since it was recorded is marked stale and ranks lower. Each result shows\n"
    "its id, kind, status, subcortex, age, title and a snippet with the matches\n"
    "marked \xC2\xAB" "like this" "\xC2\xBB (bold on a terminal); a stale one\n"
    "also \"stale\" and the paths that changed since it was recorded.\n"
    "A word that (almost) no item holds is also searched for as the indexed\n"
    "words one typo away, ranked below exact matches; a line\n"
    "\"corrected: pasre \xE2\x86\x92 parse\" says so.\n"
    "\n"
    "Options:\n"
    "  --mode MODE        hybrid (default), keyword or semantic\n"
    "  --kind KIND        only items of this kind: observation, draft, thread,\n"
    "                     comment, artifact, subcortex\n"
    "  --status STATUS    only items with this status (recorded, pending, canon,\n"
    "                     rejected, changes_requested, published, accepted)\n"
    "  --subcortex NAME   only items in this subcortex\n"
    "  --tag TAG          only items carrying TAG; repeat it to require several\n"
    "  --limit N          at most N results, 1 to 50 (default 10)\n"
    "  --json             print the search answer as JSON\n"
    "  --workspace DIR    the workspace (see cortex help)\n"
    "\n"
    "Exit status: 0 results found, 1 no results, 2 usage error,\n"
    "3 no Cortex memory in the workspace yet or a store error.\n";

const char cx_cli_help_show[] =
    "Usage: cortex show ID... [--content]\n"
    "\n"
    "Prints items in full: title, body, tags, files, author, times, the last\n"
    "review decision, comments (threads and drafts) and versions (artifacts).\n"
    "An item whose files changed since it was recorded is marked stale, with\n"
    "the paths that changed (as search and the agents' tools show it).\n"
    "With --json, one ID prints the item object and several print an array.\n"
    "\n"
    "Options:\n"
    "  --content          print the raw bytes of the latest version of an\n"
    "                     artifact (exactly one ID; not with --json)\n"
    "  --json             print the item(s) as JSON\n"
    "  --workspace DIR    the workspace (see cortex help)\n"
    "\n"
    "Exit status: 0 every item was found, 1 some ID is unknown (the others are\n"
    "still printed) or --content was given an item that is not an artifact,\n"
    "2 usage error, 3 no Cortex memory in the workspace yet or a store error.\n";

int cx_cli_cmd_search(ctx *c) {
    const args *a = c->a;
    size_t limit = 0;
    char *text = NULL;
    json_t *res = NULL;
    int rc;

    if (a->pos.n == 0)
        return cx_cli_usage_error("search", "search needs a QUERY");
    if ((rc = cx_cli_parse_limit(c, &limit)) != RC_OK)
        return rc;
    if (a->val[O_KIND] && !cx_cli_known_kind(a->val[O_KIND]))
        return cx_cli_usage_error("search",
                           "unknown kind '%s'; use observation, draft, thread, comment, artifact or subcortex",
                           a->val[O_KIND]);
    text = cx_cli_join_words(&a->pos);
    if (!text)
        return cx_cli_oom();
    if ((rc = cx_cli_open_store(c, false)) != RC_OK)
        goto out;

    cx_search_query q = {
        .text = text,
        .stale = c->prov ? cx_prov_stale : NULL,
        .stale_ud = c->prov,
        .kind = a->val[O_KIND],
        .status = a->val[O_STATUS],
        .subcortex = a->val[O_SUBCORTEX],
        .tags = cx_cli_strv(&a->tags),
        .limit = limit,
        .max_tokens = CLI_SEARCH_TOKENS,
        /* the full answer: the listing shows updated_at, subcortex and
         * tags, and --json keeps every field and why */
        .explain = true,
    };
    if (cx_search_mode_parse(a->val[O_MODE], &q.mode) != 0) {
        rc = cx_cli_usage_error("search", "%s", cx_error_last());
        goto out;
    }
    cx_error_clear();
    int r = cx_search_run(c->store, &q, &res);
    if (r < 0) {
        rc = r == CX_EINVAL || r == CX_ELIMIT ? cx_cli_usage_error("search", "%s", cx_cli_engine_msg(r))
                                              : cx_cli_fail(cx_cli_rc_for(r), "search failed: %s", cx_cli_engine_msg(r));
        goto out;
    }
    json_t *results = json_object_get(res, "results");
    size_t n = json_array_size(results);
    if (c->json) {
        rc = cx_cli_print_json(res);
        if (rc == RC_OK && n == 0)
            rc = RC_NONE;
        goto out;
    }
    /* the words corrected for typos: "corrected: pasre → parse" */
    const char *word;
    json_t *fix;
    json_object_foreach(json_object_get(res, "corrected"), word, fix) {
        printf("%scorrected: ", cx_out_sgr(CX_OUT_DIM));
        cx_out_text(stdout, word, true);
        printf(" \xE2\x86\x92 ");
        cx_out_text(stdout, json_string_value(fix), true);
        printf("%s\n", cx_out_sgr(CX_OUT_RESET));
    }
    if (n == 0) {
        printf("No results for \xE2\x80\x9C");
        cx_out_text(stdout, text, true);
        printf("\xE2\x80\x9D.\n");
        rc = RC_NONE;
        goto out;
    }
    size_t i;
    json_t *it;
    json_array_foreach(results, i, it) {
        char rel[64];
        const char *title = cx_cli_jstr(it, "title");
        json_t *tags = json_object_get(it, "tags");
        if (i > 0)
            fputc('\n', stdout);
        printf("%s", cx_out_sgr(CX_OUT_BOLD));
        cx_out_text(stdout, cx_cli_jstr(it, "id"), true);
        printf("%s  ", cx_out_sgr(CX_OUT_RESET));
        cx_cli_put_kind_line(it);
        cx_cli_put_stale_mark(it);
        if (cx_cli_jstr(it, "updated_at")) {
            cx_out_reltime(cx_cli_jstr(it, "updated_at"), c->now, rel, sizeof rel);
            fputs(" \xC2\xB7 ", stdout);
            cx_out_text(stdout, rel, true);
        }
        if (json_array_size(tags) > 0) {
            size_t k;
            json_t *t;
            fputs(cx_out_sgr(CX_OUT_DIM), stdout);
            json_array_foreach(tags, k, t) {
                fputs(k == 0 ? "  #" : " #", stdout);
                cx_out_text(stdout, json_string_value(t), true);
            }
            fputs(cx_out_sgr(CX_OUT_RESET), stdout);
        }
        fputc('\n', stdout);
        if (title && *title) {
            printf("  %s", cx_out_sgr(CX_OUT_BOLD));
            cx_out_text(stdout, title, true);
            printf("%s\n", cx_out_sgr(CX_OUT_RESET));
        }
        cx_cli_put_changed(it, 2);
        const char *snippet = cx_cli_jstr(it, "snippet");
        if (snippet && *snippet)
            cx_out_wrap_snippet(stdout, snippet, 2, cx_out_width());
    }
    if (cx_cli_jtrue(res, "truncated"))
        printf("\n%s(more results did not fit; narrow the query or lower --limit)%s\n",
               cx_out_sgr(CX_OUT_DIM), cx_out_sgr(CX_OUT_RESET));
out:
    json_decref(res);
    free(text);
    return rc;
}

static int show_content(ctx *c, const json_t *item, const char *id) {
    const char *kind = cx_cli_jstr(item, "kind");
    char *data = NULL;
    size_t len = 0;
    if (!kind || strcmp(kind, "artifact") != 0)
        return cx_cli_fail(RC_NONE, "%s is %s %s, not an artifact; --content prints an artifact's latest version",
                    id, cx_wire_article(kind ? kind : "item"), kind ? kind : "item");
    cx_error_clear();
    int r = cx_store_artifact_content(c->store, id, 0, &data, &len);
    if (r < 0)
        return cx_cli_fail(cx_cli_rc_for(r) == RC_USAGE ? RC_STORE : cx_cli_rc_for(r), "cannot read the content of %s: %s",
                    id, cx_cli_engine_msg(r));
    size_t w = fwrite(data, 1, len, stdout);
    free(data);
    if (w != len)
        return cx_cli_fail(RC_STORE, "cannot write to standard output");
    return RC_OK;
}

int cx_cli_cmd_show(ctx *c) {
    const args *a = c->a;
    bool content = a->seen[O_CONTENT];
    json_t *all = NULL;
    int rc = RC_OK;

    if (a->pos.n == 0)
        return cx_cli_usage_error("show", "show needs an ID");
    if (content && a->pos.n != 1)
        return cx_cli_usage_error("show", "--content takes exactly one ID");
    if (content && c->json)
        return cx_cli_usage_error("show", "--content and --json cannot be combined");
    if ((rc = cx_cli_open_store(c, false)) != RC_OK)
        return rc;
    if (c->json && a->pos.n > 1 && !(all = json_array()))
        return cx_cli_oom();

    bool printed = false;
    for (size_t i = 0; i < a->pos.n; i++) {
        const char *id = a->pos.v[i];
        json_t *item = NULL;
        cx_error_clear();
        /* with provenance, as MCP's get: "stale" and the paths "changed" */
        int r = cx_store_get_ex(c->store, id, c->prov ? cx_prov_stale : NULL, c->prov, &item);
        if (r == CX_ENOTFOUND || r == CX_EINVAL) {
            /* the store says why an id is malformed; an unknown id is simply not here */
            if (r == CX_EINVAL)
                cx_cli_fail(RC_NONE, "no item '%s': %s", id, cx_cli_engine_msg(r));
            else
                cx_cli_fail(RC_NONE, "no item '%s' in %s", id, c->ws->root);
            rc = RC_NONE;
            continue;
        } else if (r < 0) {
            rc = cx_cli_fail(RC_STORE, "cannot read '%s': %s", id, cx_cli_engine_msg(r));
            goto out;
        }
        /* from here on, the id as the store spells it */
        if (cx_cli_jstr(item, "id"))
            id = cx_cli_jstr(item, "id");
        if (content) {
            rc = show_content(c, item, id);
        } else if (all) {
            json_array_append_new(all, item);
            item = NULL;
        } else if (c->json) {
            int w = cx_cli_print_json(item);
            if (w != RC_OK)
                rc = w;
        } else {
            if (printed)
                printf("\n%s\n\n", "\xE2\x94\x80\xE2\x94\x80\xE2\x94\x80\xE2\x94\x80");
            cx_cli_render_item(c, item);
            printed = true;
        }
        json_decref(item);
    }
    if (all) {
        int w = cx_cli_print_json(all);
        if (w != RC_OK)
            rc = w;
    }
out:
    json_decref(all);
    return rc;
}
