/* SPDX-License-Identifier: Apache-2.0 */
/* `cortex review`: the review queue and decisions, locally or at the
 * upstream core. */
#include "cli.h"

#include "output.h"
#include "redact/redact.h"
#include "util/error.h"
#include "util/ulid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char cx_cli_help_review[] =
    "Usage: cortex review list [--json]\n"
    "       cortex review approve ID [--note TEXT]\n"
    "       cortex review reject ID --reason TEXT\n"
    "       cortex review request-changes ID --reason TEXT\n"
    "\n"
    "Review of drafts: against the team's core when an upstream is configured\n"
    "(`cortex remote set`, with a reviewer or admin key of the workspace's team\n"
    "from `cortex login`, held beside the agent key `cortex sync` uses), else in\n"
    "the local store. 'list' shows the drafts awaiting review (pending\n"
    "or changes requested), oldest first. 'approve' makes a draft a canon\n"
    "thread (same id); a note is optional. 'reject' and 'request-changes' need\n"
    "a reason, for the author. The note or reason is kept with the decision,\n"
    "redacted first (secrets never reach the store or the core). The reviewer\n"
    "recorded is, at a core, the name of the key used (as `cortex-core keys\n"
    "create --name` gave it); locally, CORTEX_AUTHOR (default: your user name).\n"
    "\n"
    "Options:\n"
    "  --note TEXT        approve: a note kept with the decision (optional)\n"
    "  --reason TEXT      reject, request-changes: why (required)\n"
    "  --json             print the store's answer as JSON (list: the queue;\n"
    "                     a decision: the item after the change)\n"
    "  --workspace DIR    the workspace (see cortex help)\n"
    "\n"
    "Exit status: 0 success (also an empty queue), 1 refused: no such draft, it\n"
    "is not awaiting review, or the core refused the key, its role or the\n"
    "request (a 4xx answer but 408 and 429), 2 usage error (e.g. reject\n"
    "without --reason), 3 no Cortex memory in the workspace yet or a store\n"
    "error, 4 no key for the upstream, or the core could not be reached,\n"
    "failed (5xx) or asked to wait (408, 429).\n";

static int remote_queue(cx_client *cl, json_t **out) {
    cx_client_answer a = {0};
    cx_error_clear();
    int r = cx_client_request(cl, "GET", "/v1/review/queue?limit=500", NULL, 0, NULL, &a);
    if (r < 0)
        return cx_cli_fail(RC_UPSTREAM, "cannot reach the core: %s", cx_cli_engine_msg(r));
    if (a.status != 200 || !json_is_array(json_object_get(a.json, "drafts"))) {
        int rc = cx_cli_answer_fail("cannot list the review queue", &a);
        cx_client_answer_clear(&a);
        return rc;
    }
    json_object_set_new(a.json, "count", json_integer((json_int_t)json_array_size(
                                                json_object_get(a.json, "drafts"))));
    *out = a.json;
    a.json = NULL;
    return RC_OK;
}

static int remote_decide(cx_client *cl, const char *id, const char *decision, const char *note,
                         json_t **out) {
    if (!cx_ulid_valid(id))
        return cx_cli_fail(RC_NONE, "'%s' is not a draft id (a ULID)", id);
    char path[128];
    snprintf(path, sizeof path, "/v1/drafts/%s/decision", id);
    /* a note reaches the core's database: redacted like every stored text */
    char *clean = NULL;
    if (note && cx_redact_text(note, strlen(note), &clean, NULL, NULL) < 0)
        return cx_cli_fail(RC_STORE, "cannot redact the note: %s", cx_error_last());
    /* no note: the member is left out (the core takes an absent note, as it
     * takes null; an approval needs none) */
    json_t *body = json_pack("{s:s}", "decision", decision);
    json_t *jnote = note ? json_string(clean ? clean : note) : NULL;
    free(clean);
    if (note && !jnote) {
        json_decref(body);
        return cx_cli_usage_error("review", "the note is not UTF-8 text");
    }
    if (!body || (jnote && json_object_set_new(body, "note", jnote) != 0)) {
        json_decref(body);
        return cx_cli_oom();
    }
    cx_client_answer a = {0};
    cx_error_clear();
    int r = cx_client_json(cl, "POST", path, body, &a);
    json_decref(body);
    if (r < 0)
        return cx_cli_fail(RC_UPSTREAM, "cannot reach the core: %s", cx_cli_engine_msg(r));
    if (a.status != 200 || !json_is_object(json_object_get(a.json, "item"))) {
        int rc = cx_cli_answer_fail(id, &a);
        cx_client_answer_clear(&a);
        return rc;
    }
    *out = json_incref(json_object_get(a.json, "item"));
    cx_client_answer_clear(&a);
    return RC_OK;
}

static int review_list(ctx *c) {
    json_t *res = NULL;
    cx_client *cl = NULL;
    char role[CX_UPSTREAM_ROLE_MAX + 1];
    int rc;
    if ((rc = cx_cli_reviewer_client(c, &cl, role, sizeof role)) != RC_OK)
        return rc;
    if (cl) {
        rc = remote_queue(cl, &res);
        cx_client_free(cl);
        cx_cli_agent_key_hint(rc, role);
        if (rc != RC_OK)
            return rc;
    } else {
        if ((rc = cx_cli_open_store(c, false)) != RC_OK)
            return rc;
        cx_error_clear();
        int r = cx_store_review_list(c->store, &res);
        if (r < 0)
            return cx_cli_fail(RC_STORE, "cannot list the review queue: %s", cx_cli_engine_msg(r));
    }
    if (c->json) {
        rc = cx_cli_print_json(res);
        json_decref(res);
        return rc;
    }
    json_t *drafts = json_object_get(res, "drafts");
    size_t n = json_array_size(drafts);
    if (n == 0) {
        printf("No drafts awaiting review.\n");
        json_decref(res);
        return RC_OK;
    }
    /* ID  STATUS  AGE  SUBCORTEX  TITLE, the title taking what is left */
    size_t w_status = 6, w_age = 3, w_sub = 9;
    size_t i;
    json_t *d;
    char rel[64];
    json_array_foreach(drafts, i, d) {
        size_t k;
        k = cx_out_columns(cx_cli_jstr(d, "status"));
        w_status = k > w_status ? k : w_status;
        cx_out_reltime(cx_cli_jstr(d, "updated_at") ? cx_cli_jstr(d, "updated_at") : cx_cli_jstr(d, "created_at"), c->now,
                       rel, sizeof rel);
        k = cx_out_columns(rel);
        w_age = k > w_age ? k : w_age;
        k = cx_out_columns(cx_cli_jstr(d, "subcortex"));
        w_sub = k > w_sub ? k : w_sub;
    }
    if (w_sub > 24)
        w_sub = 24;
    if (w_status > 20)
        w_status = 20;
    int used = CX_ULID_LEN + 2 + (int)w_status + 2 + (int)w_age + 2 + (int)w_sub + 2;
    size_t w_title = cx_out_width() - used > 10 ? (size_t)(cx_out_width() - used) : 10;

    printf("%s", cx_out_sgr(CX_OUT_BOLD));
    printf("%-*s  ", CX_ULID_LEN, "ID");
    cx_out_cell(stdout, "STATUS", w_status, true);
    fputs("  ", stdout);
    cx_out_cell(stdout, "AGE", w_age, true);
    fputs("  ", stdout);
    cx_out_cell(stdout, "SUBCORTEX", w_sub, true);
    fputs("  TITLE", stdout);
    printf("%s\n", cx_out_sgr(CX_OUT_RESET));
    json_array_foreach(drafts, i, d) {
        const char *status = cx_cli_jstr(d, "status");
        cx_out_reltime(cx_cli_jstr(d, "updated_at") ? cx_cli_jstr(d, "updated_at") : cx_cli_jstr(d, "created_at"), c->now,
                       rel, sizeof rel);
        cx_out_cell(stdout, cx_cli_jstr(d, "id"), CX_ULID_LEN, true);
        fputs("  ", stdout);
        bool changes = status && strcmp(status, "pending") != 0;
        fputs(cx_out_sgr(changes ? CX_OUT_YELLOW : CX_OUT_RESET), stdout);
        cx_out_cell(stdout, status, w_status, true);
        fputs(cx_out_sgr(CX_OUT_RESET), stdout);
        fputs("  ", stdout);
        cx_out_cell(stdout, rel, w_age, true);
        fputs("  ", stdout);
        cx_out_cell(stdout, cx_cli_jstr(d, "subcortex"), w_sub, true);
        fputs("  ", stdout);
        cx_out_cell(stdout, cx_cli_jstr(d, "title"), w_title, false);
        fputc('\n', stdout);
    }
    printf("\n%zu draft%s awaiting review. Approve with 'cortex review approve ID'.\n", n,
           n == 1 ? "" : "s");
    json_decref(res);
    return RC_OK;
}

int cx_cli_cmd_review(ctx *c) {
    const args *a = c->a;
    json_t *res = NULL;
    int rc;

    if (a->pos.n == 0)
        return cx_cli_usage_error("review", "review needs an action: list, approve, reject or request-changes");
    const char *action = a->pos.v[0];
    const char *decision = NULL, *done = NULL, *verb = NULL;
    if (strcmp(action, "list") == 0) {
        if (a->pos.n > 1)
            return cx_cli_usage_error("review", "review list takes no arguments");
        if (a->seen[O_NOTE] || a->seen[O_REASON])
            return cx_cli_usage_error("review", "review list takes no --note or --reason");
        return review_list(c);
    } else if (strcmp(action, "approve") == 0) {
        decision = "approve", verb = "approve", done = "Approved";
    } else if (strcmp(action, "reject") == 0) {
        decision = "reject", verb = "reject", done = "Rejected";
    } else if (strcmp(action, "request-changes") == 0) {
        decision = "changes_requested", verb = "request changes on", done = "Requested changes on";
    } else {
        return cx_cli_usage_error("review", "unknown review action '%s'; use list, approve, reject or request-changes",
                           action);
    }
    if (a->pos.n != 2)
        return cx_cli_usage_error("review", "review %s needs exactly one draft ID", action);
    const char *reason;
    if (strcmp(action, "approve") == 0) {
        if (a->seen[O_REASON])
            return cx_cli_usage_error("review", "review approve takes --note, not --reason");
        reason = a->val[O_NOTE];
    } else {
        if (a->seen[O_NOTE])
            return cx_cli_usage_error("review", "review %s takes --reason, not --note", action);
        reason = a->val[O_REASON];
        if (!reason || cx_cli_blank(reason))
            return cx_cli_usage_error("review", "review %s needs --reason TEXT: say why, for the author", action);
    }
    const char *id = a->pos.v[1];
    cx_client *cl = NULL;
    char role[CX_UPSTREAM_ROLE_MAX + 1];
    if ((rc = cx_cli_reviewer_client(c, &cl, role, sizeof role)) != RC_OK)
        return rc;
    if (cl) {
        rc = remote_decide(cl, id, decision, reason, &res);
        cx_client_free(cl);
        cx_cli_agent_key_hint(rc, role);
        if (rc != RC_OK)
            return rc;
        goto decided;
    }
    if ((rc = cx_cli_open_store(c, false)) != RC_OK)
        return rc;
    cx_error_clear();
    int r = cx_store_review(c->store, &c->who, id, decision, reason, &res);
    if (r == CX_ENOTFOUND)
        return cx_cli_fail(RC_NONE, "no item '%s' in %s", id, c->ws->root);
    if (r == CX_ECONFLICT)
        return cx_cli_fail(RC_NONE, "cannot %s %s: %s", verb, id, cx_cli_engine_msg(r));
    if (r == CX_EINVAL || r == CX_ELIMIT)
        return cx_cli_usage_error("review", "%s", cx_cli_engine_msg(r));
    if (r < 0)
        return cx_cli_fail(RC_STORE, "cannot %s %s: %s", verb, id, cx_cli_engine_msg(r));
decided:
    if (c->json) {
        rc = cx_cli_print_json(res);
    } else {
        printf("%s ", done);
        cx_out_text(stdout, cx_cli_jstr(res, "id") ? cx_cli_jstr(res, "id") : id, true);
        if (strcmp(decision, "approve") == 0)
            printf(": it is now a canon thread");
        printf(".\n");
        rc = RC_OK;
    }
    json_decref(res);
    return rc;
}
