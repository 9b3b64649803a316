/* SPDX-License-Identifier: Apache-2.0 */
/* `cortex observe` and `cortex draft`: recording notes from the command line. */
#include "cli.h"

#include "output.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char cx_cli_help_observe[] =
    "Usage: cortex observe TEXT... [OPTIONS]\n"
    "       cortex observe - [OPTIONS]        (read TEXT from standard input)\n"
    "\n"
    "Records an observation: something learned while working. Several TEXT\n"
    "words are joined with spaces; '-' reads the text from standard input. The\n"
    "text is at most 256 KiB (262144 bytes of UTF-8), the limit for every\n"
    "writer, agents' observe tool included (see cortexd(8)); a title at most\n"
    "200 characters. Prints the new id; a text already in the store (ignoring\n"
    "whitespace) is not recorded twice, and its id is printed followed by\n"
    "\"(already recorded)\". Secrets in the text are redacted before storing.\n"
    "\n"
    "Options:\n"
    "  --title TITLE      a short title\n"
    "  --tag TAG          a tag; repeatable (at most 16)\n"
    "  --subcortex NAME   the topic namespace (default: workspace.subcortex of\n"
    "                     .cortex/config, which cortex start sets; else general)\n"
    "  --file PATH        a file inside the workspace that the observation is\n"
    "                     about; repeatable. Relative paths are taken from the\n"
    "                     current directory when it is inside the workspace,\n"
    "                     else from the workspace root\n"
    "  --private          keep it on this machine: never synced\n"
    "  --json             print the store's answer as JSON\n"
    "  --workspace DIR    the workspace (see cortex help)\n"
    "\n"
    "Exit status: 0 recorded (or already recorded), 2 usage error or a value\n"
    "the store refuses (too long, too many tags, a file outside the workspace),\n"
    "3 workspace or store error.\n";

const char cx_cli_help_draft[] =
    "Usage: cortex draft --title TITLE BODY... [OPTIONS]\n"
    "       cortex draft --title TITLE - [OPTIONS]   (read BODY from standard input)\n"
    "\n"
    "Proposes knowledge for review: a draft with status 'pending' that\n"
    "'cortex review approve' turns into a canon thread. BODY words are joined\n"
    "with spaces; '-' reads it from standard input (at most 256 KiB). Prints\n"
    "the new id.\n"
    "\n"
    "Options:\n"
    "  --title TITLE      the title (required)\n"
    "  --tag TAG          a tag; repeatable (at most 16)\n"
    "  --subcortex NAME   the topic namespace (default: workspace.subcortex of\n"
    "                     .cortex/config, which cortex start sets; else general)\n"
    "  --file PATH        a file the draft is about; repeatable (as for observe)\n"
    "  --evidence ID      an item that supports the draft; repeatable\n"
    "  --json             print the store's answer as JSON\n"
    "  --workspace DIR    the workspace (see cortex help)\n"
    "\n"
    "Exit status: 0 recorded, 1 an --evidence id is unknown, 2 usage error or a\n"
    "value the store refuses, 3 workspace or store error.\n";

/* Tells the person on stderr what was redacted (rule ids, never the text). */
static void note_redacted(const json_t *r) {
    if (!r)
        return;
    long long n = cx_cli_jint(r, "count", 0);
    fprintf(stderr, "cortex: redacted %lld secret%s before storing (", n, n == 1 ? "" : "s");
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(r, "rules"), i, v)
        fprintf(stderr, "%s%s", i ? ", " : "", json_string_value(v));
    fputs(")\n", stderr);
}

int cx_cli_cmd_observe(ctx *c) {
    const args *a = c->a;
    char *text = NULL;
    strlist files = {0};
    json_t *res = NULL;
    int rc;

    if ((rc = cx_cli_operand_text(c, "TEXT", &text)) != RC_OK)
        return rc;
    if ((rc = cx_cli_open_store(c, true)) != RC_OK)
        goto out;
    if ((rc = cx_cli_workspace_paths(c, &files)) != RC_OK)
        goto out;
    cx_note note = {
        .title = a->val[O_TITLE],
        .body = text,
        .subcortex = cx_cli_note_subcortex(c),
        .tags = cx_cli_strv(&a->tags),
        .files = cx_cli_strv(&files),
        .visibility = a->seen[O_PRIVATE] ? "private" : NULL,
    };
    json_t *pv = cx_cli_capture_provenance(c, &note.files);
    note.provenance = pv;
    cx_error_clear();
    int r = cx_store_observe(c->store, &c->who, &note, 1, NULL, NULL, &res);
    json_decref(pv);
    if (r < 0) {
        rc = r == CX_EINVAL || r == CX_ELIMIT ? cx_cli_usage_error("observe", "%s", cx_cli_engine_msg(r))
                                              : cx_cli_fail(cx_cli_rc_for(r), "cannot record: %s", cx_cli_engine_msg(r));
        goto out;
    }
    if (c->json) {
        rc = cx_cli_print_json(res);
        goto out;
    }
    json_t *first = json_array_get(json_object_get(res, "results"), 0);
    const char *id = cx_cli_jstr(first, "id");
    if (!id) {
        rc = cx_cli_fail(RC_STORE, "the store recorded the observation but returned no id");
        goto out;
    }
    cx_out_text(stdout, id, true);
    fputs(cx_cli_jtrue(first, "repeat") ? " (already recorded)\n" : "\n", stdout);
    note_redacted(json_object_get(res, "redacted"));
out:
    json_decref(res);
    cx_cli_free_strlist(&files);
    free(text);
    return rc;
}

int cx_cli_cmd_draft(ctx *c) {
    const args *a = c->a;
    char *text = NULL;
    strlist files = {0};
    json_t *res = NULL;
    int rc;

    const char *title = a->val[O_TITLE];
    if (!title || cx_cli_blank(title))
        return cx_cli_usage_error("draft", "draft needs --title TITLE");
    if ((rc = cx_cli_operand_text(c, "BODY", &text)) != RC_OK)
        return rc;
    if ((rc = cx_cli_open_store(c, true)) != RC_OK)
        goto out;
    if ((rc = cx_cli_workspace_paths(c, &files)) != RC_OK)
        goto out;
    cx_note note = {
        .title = title,
        .body = text,
        .subcortex = cx_cli_note_subcortex(c),
        .tags = cx_cli_strv(&a->tags),
        .files = cx_cli_strv(&files),
        .evidence = cx_cli_strv(&a->evidence),
    };
    cx_error_clear();
    json_t *pv = cx_cli_capture_provenance(c, &note.files);
    note.provenance = pv;
    int r = cx_store_draft(c->store, &c->who, &note, &res);
    json_decref(pv);
    if (r < 0) {
        if (r == CX_ENOTFOUND)
            rc = cx_cli_fail(RC_NONE, "cannot record the draft: %s", cx_cli_engine_msg(r));
        else if (r == CX_EINVAL || r == CX_ELIMIT)
            rc = cx_cli_usage_error("draft", "%s", cx_cli_engine_msg(r));
        else
            rc = cx_cli_fail(cx_cli_rc_for(r), "cannot record the draft: %s", cx_cli_engine_msg(r));
        goto out;
    }
    if (c->json) {
        rc = cx_cli_print_json(res);
        goto out;
    }
    cx_out_text(stdout, cx_cli_jstr(res, "id"), true);
    fputc('\n', stdout);
    note_redacted(json_object_get(res, "redacted"));
out:
    json_decref(res);
    cx_cli_free_strlist(&files);
    free(text);
    return rc;
}
