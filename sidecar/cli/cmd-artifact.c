/* SPDX-License-Identifier: Apache-2.0 */
/* `cortex artifact`: a reviewer's acceptance of an artifact version,
 * locally or at the upstream core (chosen as `cortex review` chooses), and
 * the content of any version of an artifact. */
#include "cli.h"

#include "output.h"
#include "util/error.h"
#include "util/ulid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char cx_cli_help_artifact[] =
    "Usage: cortex artifact accept ID VERSION [--json]\n"
    "       cortex artifact content ID [VERSION]\n"
    "\n"
    "Artifacts are named things with immutable versions (an agent publishes\n"
    "them with the MCP tool `publish`); a version is published, and becomes\n"
    "accepted when a reviewer accepts it.\n"
    "\n"
    "'accept' accepts version VERSION (1, 2, ...) of artifact ID: against the\n"
    "team's core when an upstream is configured (with a reviewer or admin key\n"
    "of the workspace's team from `cortex login`, as `cortex review`), and every\n"
    "workspace sees it accepted after its next pull; else in the local store,\n"
    "recorded with CORTEX_AUTHOR (default: your user name) as the reviewer. A\n"
    "local acceptance is not pushed: once the workspace has a core, accept\n"
    "there. Accepting an accepted version changes nothing.\n"
    "\n"
    "'content' prints the raw bytes of version VERSION (default: the latest).\n"
    "A version pulled from a core has its content fetched by the next pull\n"
    "(`cortex sync`), checked against its sha-256 first.\n"
    "\n"
    "Options:\n"
    "  --json             accept: print the artifact after the change as JSON\n"
    "  --workspace DIR    the workspace (see cortex help)\n"
    "\n"
    "Exit status: 0 success, 1 no such artifact or version, its content is not\n"
    "on this machine (the message says why), or the core refused the key, its\n"
    "role or the request (a 4xx answer but 408 and 429; e.g. an agent key), 2\n"
    "usage error, 3 no Cortex memory in the workspace yet or a store error, 4 no\n"
    "key for the upstream, or the core could not be reached, failed (5xx) or\n"
    "asked to wait (408, 429).\n";

/* A version number from the command line: 1 .. 10^9. */
static bool parse_version(const char *s, long *out) {
    if (!s || *s < '1' || *s > '9')
        return false;
    long n = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || n > 100000000)
            return false;
        n = n * 10 + (*p - '0');
    }
    if (n > 1000000000)
        return false;
    *out = n;
    return true;
}

static int remote_accept(cx_client *cl, const char *id, long version, json_t **out) {
    char path[128];
    snprintf(path, sizeof path, "/v1/artifacts/%s/versions/%ld/accept", id, version);
    cx_client_answer a = {0};
    cx_error_clear();
    int r = cx_client_request(cl, "POST", path, "{}", 2, NULL, &a);
    if (r < 0)
        return cx_cli_fail(RC_UPSTREAM, "cannot reach the core: %s", cx_cli_engine_msg(r));
    if (a.status != 200 || !json_is_object(json_object_get(a.json, "item"))) {
        char what[96];
        snprintf(what, sizeof what, "artifact %s version %ld", id, version);
        int rc = cx_cli_answer_fail(what, &a);
        cx_client_answer_clear(&a);
        return rc;
    }
    *out = json_incref(json_object_get(a.json, "item"));
    cx_client_answer_clear(&a);
    return RC_OK;
}

static int artifact_accept(ctx *c, const char *id, long version) {
    json_t *res = NULL;
    cx_client *cl = NULL;
    char role[CX_UPSTREAM_ROLE_MAX + 1];
    int rc;
    if (!cx_ulid_valid(id))
        return cx_cli_fail(RC_NONE, "'%s' is not an artifact id (a ULID)", id);
    if ((rc = cx_cli_reviewer_client(c, &cl, role, sizeof role)) != RC_OK)
        return rc;
    bool remote = cl != NULL;
    if (cl) {
        rc = remote_accept(cl, id, version, &res);
        cx_client_free(cl);
        cx_cli_agent_key_hint(rc, role);
        if (rc != RC_OK)
            return rc;
    } else {
        if ((rc = cx_cli_open_store(c, false)) != RC_OK)
            return rc;
        cx_error_clear();
        int r = cx_store_artifact_accept(c->store, &c->who, id, version, &res);
        if (r == CX_ENOTFOUND)
            return cx_cli_fail(RC_NONE, "%s", cx_cli_engine_msg(r));
        if (r == CX_EINVAL || r == CX_ELIMIT)
            return cx_cli_usage_error("artifact", "%s", cx_cli_engine_msg(r));
        if (r < 0)
            return cx_cli_fail(RC_STORE, "cannot accept %s version %ld: %s", id, version,
                               cx_cli_engine_msg(r));
    }
    if (c->json) {
        rc = cx_cli_print_json(res);
    } else {
        printf("Accepted version %ld of ", version);
        cx_out_text(stdout, cx_cli_jstr(res, "title") ? cx_cli_jstr(res, "title") : id, true);
        printf(" (%s)%s.\n", cx_cli_jstr(res, "id") ? cx_cli_jstr(res, "id") : id,
               remote ? " at the core; workspaces see it after their next pull" : "");
        rc = RC_OK;
    }
    json_decref(res);
    return rc;
}

static int artifact_content(ctx *c, const char *id, long version) {
    char *data = NULL;
    size_t len = 0;
    int rc = cx_cli_open_store(c, false);
    if (rc != RC_OK)
        return rc;
    cx_error_clear();
    int r = cx_store_artifact_content(c->store, id, (int)version, &data, &len);
    if (r == CX_EINVAL)
        return cx_cli_usage_error("artifact", "%s", cx_cli_engine_msg(r));
    if (r < 0)
        return cx_cli_fail(cx_cli_rc_for(r) == RC_USAGE ? RC_STORE : cx_cli_rc_for(r),
                           "cannot read the content of %s: %s", id, cx_cli_engine_msg(r));
    size_t w = fwrite(data, 1, len, stdout);
    free(data);
    if (w != len || fflush(stdout) != 0)
        return cx_cli_fail(RC_STORE, "cannot write to standard output");
    return RC_OK;
}

int cx_cli_cmd_artifact(ctx *c) {
    const args *a = c->a;
    if (a->pos.n == 0)
        return cx_cli_usage_error("artifact", "artifact needs an action: accept or content");
    const char *action = a->pos.v[0];
    long version = 0;
    if (strcmp(action, "accept") == 0) {
        if (a->pos.n != 3)
            return cx_cli_usage_error("artifact", "artifact accept needs an artifact ID and a "
                                                  "VERSION number");
        if (!parse_version(a->pos.v[2], &version))
            return cx_cli_usage_error("artifact", "'%s' is not a version number (1, 2, ...)",
                                      a->pos.v[2]);
        return artifact_accept(c, a->pos.v[1], version);
    }
    if (strcmp(action, "content") == 0) {
        if (a->pos.n != 2 && a->pos.n != 3)
            return cx_cli_usage_error("artifact", "artifact content needs an artifact ID and "
                                                  "optionally a VERSION number");
        if (c->json)
            return cx_cli_usage_error("artifact", "artifact content prints raw bytes; --json "
                                                  "does not apply");
        if (a->pos.n == 3 && !parse_version(a->pos.v[2], &version))
            return cx_cli_usage_error("artifact", "'%s' is not a version number (1, 2, ...)",
                                      a->pos.v[2]);
        return artifact_content(c, a->pos.v[1], version);
    }
    return cx_cli_usage_error("artifact", "unknown artifact action '%s'; use accept or content",
                              action);
}
