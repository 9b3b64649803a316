/* SPDX-License-Identifier: Apache-2.0 */
/* `cortex doctor` (see doctor.h). Every check adds one entry and never
 * stops the others, so one run shows every broken link. */
#include "doctor.h"

#include "agents.h"
#include "config.h"
#include "daemon.h"
#include "redact/redact.h"
#include "session.h"
#include "store/store.h"
#include "sync/client.h"
#include "sync/upstream.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/fsx.h"
#include "workspace.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define VERSION_TIMEOUT_MS 5000
#define UPSTREAM_TIMEOUT_S 5

typedef struct doc {
    json_t *checks;
    bool failed;
} doc;

static void add(doc *d, const char *name, const char *status, const char *fix,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void add(doc *d, const char *name, const char *status, const char *fix,
                const char *fmt, ...) {
    char detail[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    json_t *o = json_pack("{s:s, s:s, s:s}", "name", name, "status", status, "detail", detail);
    if (o && fix && strcmp(status, "ok") != 0)
        json_object_set_new(o, "fix", json_string(fix));
    if (o)
        json_array_append_new(d->checks, o);
    if (strcmp(status, "fail") == 0)
        d->failed = true;
}

/* Runs `prog --version` with a deadline; 0 and its first output line in
 * buf, or -1 with the reason in buf. */
static int run_version(const char *prog, char *buf, size_t cap) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        snprintf(buf, cap, "cannot run it: %s", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(buf, cap, "cannot run it: %s", strerror(errno));
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
            dup2(devnull, STDERR_FILENO);
        }
        dup2(p[1], STDOUT_FILENO);
        execl(prog, prog, "--version", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    size_t n = 0;
    uint64_t deadline = cx_clock_mono_ms() + VERSION_TIMEOUT_MS;
    for (;;) {
        uint64_t now = cx_clock_mono_ms();
        if (now >= deadline)
            break;
        struct pollfd pf = {.fd = p[0], .events = POLLIN};
        int k = poll(&pf, 1, (int)(deadline - now));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        ssize_t got = read(p[0], buf + n, cap - 1 - n);
        if (got <= 0)
            break;
        n += (size_t)got;
        if (n >= cap - 1)
            break;
    }
    close(p[0]);
    buf[n] = '\0';
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = '\0';
    int status = 0;
    pid_t w;
    for (;;) { /* its output has ended; give it until the deadline to exit */
        w = waitpid(pid, &status, WNOHANG);
        if (w != 0 || cx_clock_mono_ms() >= deadline)
            break;
        cx_clock_sleep_ms(5);
    }
    if (w == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        snprintf(buf, cap, "`%s --version` did not answer within %d ms", prog,
                 VERSION_TIMEOUT_MS);
        return -1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || strncmp(buf, "cortexd ", 8) != 0) {
        snprintf(buf, cap, "`%s --version` failed (%s %d)", prog,
                 WIFEXITED(status) ? "exit status" : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        return -1;
    }
    return 0;
}

static void check_cortexd(doc *d, const cx_doctor_opts *o) {
    char out[256];
    if (!o->cortexd) {
        add(d, "cortexd", "fail",
            "install Cortex (meson install), or set CORTEX_CORTEXD to the cortexd binary",
            "cortexd was not found next to cortex or on $PATH");
        return;
    }
    if (run_version(o->cortexd, out, sizeof out) != 0) {
        add(d, "cortexd", "fail", "reinstall Cortex, or set CORTEX_CORTEXD to a working cortexd",
            "%s", out);
        return;
    }
    add(d, "cortexd", "ok", NULL, "%s (%s)", o->cortexd, out);
}

static const cx_workspace *check_workspace(doc *d, const cx_doctor_opts *o, cx_session **sess) {
    cx_error_clear();
    if (cx_session_open(sess, o->workspace, 0) != 0) {
        add(d, "workspace", "fail", "run cortex in a repository, or pass --workspace DIR",
            "cannot find the workspace: %s", cx_error_last());
        return NULL;
    }
    const cx_workspace *ws = cx_session_workspace(*sess);
    if (!cx_fs_is_dir(ws->state_dir)) {
        add(d, "workspace", "fail", "run: cortex start",
            "%s is not set up: no .cortex/ directory", ws->root);
        return ws;
    }
    if (!ws->git_dir)
        add(d, "workspace", "warn", "run cortex start inside a git repository",
            "%s is not in a git repository: notes get no provenance and never go stale",
            ws->root);
    else if (!cx_workspace_excluded(ws))
        add(d, "workspace", "warn", "run: cortex start (it adds .cortex/ to .git/info/exclude)",
            "%s: .cortex/ is not excluded from git, so it may get committed", ws->root);
    else
        add(d, "workspace", "ok", NULL, "%s (git; .cortex/ excluded)", ws->root);
    return ws;
}

/* The config as the session reads it, and the embedder it selects. */
static const cx_config *check_config(doc *d, cx_session *sess) {
    (void)cx_session_add(sess, CX_SESSION_CONFIG);
    const cx_config *cfg = cx_session_config(sess);
    if (!cfg) {
        add(d, "config", "fail", "fix the named key in .cortex/config (git-config format)", "%s",
            cx_session_problem(sess, CX_SESSION_CONFIG));
        return NULL;
    }
    (void)cx_session_add(sess, CX_SESSION_EMBED_QUERY);
    const char *why = cx_session_problem(sess, CX_SESSION_EMBED_QUERY);
    if (why) {
        add(d, "config", "fail", "set embed.url and embed.model, or embed.provider = builtin",
            "%s", why);
        return cfg;
    }
    add(d, "config", "ok", NULL, "subcortex %s, embedder %s%s%s", cx_config_subcortex(cfg),
        cfg->embed_provider, cfg->embed_model ? " " : "", cfg->embed_model ? cfg->embed_model : "");
    return cfg;
}

static void check_store(doc *d, cx_session *sess) {
    const cx_workspace *ws = cx_session_workspace(sess);
    char *db = cx_fs_join(ws->state_dir, "cortex.db");
    if (!db || access(db, F_OK) != 0) {
        add(d, "store", "fail", "run: cortex start", "no store yet (%s)",
            db ? db : ".cortex/cortex.db");
        free(db);
        return;
    }
    json_t *st = NULL;
    int r = cx_session_add(sess, CX_SESSION_STORE | CX_SESSION_EXISTING);
    if (r == 0)
        r = cx_store_status(cx_session_store(sess), &st);
    if (r != 0) {
        add(d, "store", "fail",
            "move .cortex/cortex.db aside and run cortex start (with an upstream, sync "
            "pulls the team's items back)",
            "%s cannot be opened: %s", db, cx_error_last());
    } else {
        json_t *items = json_object_get(st, "items");
        add(d, "store", "ok", NULL, "%s: %lld items, schema %lld", db,
            (long long)json_integer_value(json_object_get(items, "total")),
            (long long)json_integer_value(json_object_get(st, "schema_version")));
    }
    json_decref(st);
    free(db);
}

static void check_redaction(doc *d) {
    cx_error_clear();
    if (cx_redact_init() != 0) {
        add(d, "redaction", "fail", "reinstall Cortex (the rule set is built in)", "%s",
            cx_error_last());
        return;
    }
    add(d, "redaction", "ok", NULL, "%zu rules; every text is redacted before it is stored",
        cx_redact_rule_count());
}

static void check_daemon(doc *d, const cx_workspace *ws) {
    cx_daemon_info info;
    cx_daemon_status(ws->state_dir, &info);
    if (info.running)
        add(d, "daemon", "ok", NULL, "background cortexd running (pid %ld)", (long)info.pid);
    else
        add(d, "daemon", "warn", "run: cortex start",
            "no background cortexd: sync runs only while an agent's cortexd does");
}

/* Which agents to check: those recorded by cortex start, and any whose
 * config file mentions cortex. */
static void agents_to_check(const cx_workspace *ws, const cx_config *cfg,
                            bool out[CX_AGENT_COUNT]) {
    cx_agent_list_parse(cfg ? cfg->agents : NULL, out);
    for (int k = 0; k < CX_AGENT_COUNT; k++) {
        char *path = cx_fs_join(ws->root, cx_agent_config_path((cx_agent_kind)k)), *text = NULL;
        size_t len = 0;
        if (path && cx_fs_read_file(path, 4u << 20, &text, &len) == 0 && strstr(text, "cortex"))
            out[k] = true;
        free(text);
        free(path);
    }
    cx_error_clear();
}

/* Whether git tracks rel in the work tree root (`git ls-files
 * --error-unmatch`, as Claude Code asks before it reads its local
 * settings): 1 yes, 0 no, -1 git could not tell within the deadline. */
static int git_tracks(const char *root, const char *rel) {
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
            dup2(devnull, STDOUT_FILENO);
            dup2(devnull, STDERR_FILENO);
        }
        execlp("git", "git", "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=", "-C", root,
               "ls-files", "--error-unmatch", "--", rel, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    pid_t w = 0;
    uint64_t deadline = cx_clock_mono_ms() + VERSION_TIMEOUT_MS;
    while ((w = waitpid(pid, &status, WNOHANG)) == 0 && cx_clock_mono_ms() < deadline)
        cx_clock_sleep_ms(5);
    if (w == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return -1;
    }
    if (!WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status) == 0 ? 1 : WEXITSTATUS(status) == 1 ? 0 : -1;
}

/* The step after the config (Claude Code's approval, Gemini CLI's and
 * Codex's trust) and the agent's own program on PATH. */
static void check_access(doc *d, cx_agent_kind k, const char *root) {
    static const char *const progs[CX_AGENT_COUNT] = {
        [CX_AGENT_CLAUDE] = "claude", [CX_AGENT_CODEX] = "codex", [CX_AGENT_GEMINI] = "gemini"};
    static const char *const installs[CX_AGENT_COUNT] = {
        [CX_AGENT_CLAUDE] = "install Claude Code (npm install -g @anthropic-ai/claude-code) or put claude on PATH",
        [CX_AGENT_CODEX] = "install Codex CLI (npm install -g @openai/codex) or put codex on PATH",
        [CX_AGENT_GEMINI] = "install Gemini CLI (npm install -g @google/gemini-cli) or put gemini on PATH"};
    const char *agent = cx_agent_name(k);
    char name[64];
    json_t *c = NULL;
    cx_error_clear();
    int r = cx_agent_check_access(k, root, &c);
    if (r != 0) {
        snprintf(name, sizeof name, "trust:%s", agent);
        add(d, name, "warn", "set HOME", "cannot check: %s", cx_error_last());
    } else if (c) {
        snprintf(name, sizeof name, "%s:%s", json_string_value(json_object_get(c, "name")), agent);
        const char *path = json_string_value(json_object_get(c, "path"));
        if (json_is_true(json_object_get(c, "ok")) && k == CX_AGENT_CLAUDE &&
            git_tracks(root, path) == 1)
            add(d, name, "fail",
                "run: git rm --cached .claude/settings.local.json (and commit), then cortex start --agent claude",
                "%s is tracked by git, so Claude Code ignores it and lists the server as pending approval",
                path);
        else if (json_is_true(json_object_get(c, "ok")))
            add(d, name, "ok", NULL, "%s: %s", path,
                k == CX_AGENT_CLAUDE ? "you approved the project's cortex server" : "this folder is trusted");
        else
            add(d, name, "fail", json_string_value(json_object_get(c, "fix")), "%s: %s", path,
                json_string_value(json_object_get(c, "problem")));
        json_decref(c);
    }
    cx_error_clear();
    if (!progs[k])
        return;
    snprintf(name, sizeof name, "program:%s", agent);
    char *found = cx_agent_on_path(progs[k]);
    if (found)
        add(d, name, "ok", NULL, "%s", found);
    else
        add(d, name, "warn", installs[k], "%s is not on PATH, so this shell cannot start the agent", progs[k]);
    free(found);
}

static void check_agents(doc *d, const cx_workspace *ws, const cx_config *cfg,
                         const cx_doctor_opts *o) {
    bool which[CX_AGENT_COUNT];
    agents_to_check(ws, cfg, which);
    bool any = false;
    for (int k = 0; k < CX_AGENT_COUNT; k++) {
        if (!which[k])
            continue;
        any = true;
        cx_agent_wiring w = {.root = ws->root, .cortexd = o->cortexd ? o->cortexd : "cortexd",
                             .cortex = o->cortex ? o->cortex : "cortex"};
        json_t *rep = NULL;
        char name[64];
        snprintf(name, sizeof name, "agent:%s", cx_agent_name((cx_agent_kind)k));
        cx_error_clear();
        if (cx_agent_check((cx_agent_kind)k, &w, &rep) != 0) {
            add(d, name, "fail", NULL, "cannot check: %s", cx_error_last());
            continue;
        }
        size_t i;
        json_t *ch;
        json_array_foreach(json_object_get(rep, "checks"), i, ch) {
            const char *cn = json_string_value(json_object_get(ch, "name"));
            const char *path = json_string_value(json_object_get(ch, "path"));
            bool ok = json_is_true(json_object_get(ch, "ok"));
            const char *problem = json_string_value(json_object_get(ch, "problem"));
            const char *fix = json_string_value(json_object_get(ch, "fix"));
            char cname[80];
            if (cn && strcmp(cn, "hooks") == 0)
                snprintf(cname, sizeof cname, "hooks:%s", cx_agent_name((cx_agent_kind)k));
            else
                snprintf(cname, sizeof cname, "%s", name);
            if (ok)
                add(d, cname, "ok", NULL, "%s names this %s", path ? path : "",
                    cn && strcmp(cn, "hooks") == 0 ? "cortex" : "cortexd and workspace");
            else
                add(d, cname, "fail", fix, "%s: %s", path ? path : "",
                    problem ? problem : "wrong");
        }
        json_decref(rep);
        check_access(d, (cx_agent_kind)k, ws->root);
    }
    if (!any)
        add(d, "agents", "warn", "run: cortex start --agent claude (or codex, cursor, gemini)",
            "no agent is wired to this workspace");
}

static void check_upstream(doc *d, const cx_workspace *ws) {
    cx_upstream *u = NULL;
    cx_error_clear();
    int r = cx_upstream_read(ws->state_dir, &u);
    if (r == CX_ENOTFOUND) {
        add(d, "upstream", "ok", NULL, "none configured: memory stays on this machine");
        return;
    }
    if (r != 0) {
        add(d, "upstream", "fail", "run: cortex remote set URL", "cannot read the upstream: %s",
            cx_error_last());
        return;
    }
    if (u->timeout_s == 0 || u->timeout_s > UPSTREAM_TIMEOUT_S)
        u->timeout_s = UPSTREAM_TIMEOUT_S;
    cx_client *cl = NULL;
    cx_client_answer a = {0};
    if (cx_client_new(&cl, u, NULL, NULL) != 0 ||
        cx_client_request(cl, "GET", "/v1/healthz", NULL, 0, NULL, &a) != 0) {
        add(d, "upstream", "fail",
            "check that cortex-core runs there and the URL and CA file are right "
            "(cortex remote set URL --ca-file FILE)",
            "%s does not answer: %s", u->url, cx_error_last());
        goto out;
    }
    if (a.status != 200) {
        add(d, "upstream", "fail", "check the URL: it should be the core's base URL",
            "%s/v1/healthz answered %ld", u->url, a.status);
        goto out;
    }
    add(d, "upstream", "ok", NULL, "%s answers", u->url);
    cx_client_answer_clear(&a);
    cx_client_free(cl);
    cl = NULL;

    char *key = NULL;
    cx_error_clear();
    if (cx_upstream_key_get(u->url, &key) != 0) {
        add(d, "key", "fail", "run: cortex login (paste the key an admin made with "
                              "cortex-core keys create)",
            "no key stored for %s", u->url);
        goto out;
    }
    r = cx_client_new(&cl, u, key, NULL);
    explicit_bzero(key, strlen(key));
    free(key);
    if (r == 0)
        r = cx_client_request(cl, "GET", "/v1/info", NULL, 0, NULL, &a);
    if (r != 0) {
        add(d, "key", "fail", "try again when the core answers", "cannot check the key: %s",
            cx_error_last());
    } else if (a.status == 401 || a.status == 403) {
        add(d, "key", "fail", "ask an admin for a new key and run: cortex login",
            "the core refuses the stored key (%ld: %s)", a.status, cx_client_error_text(&a));
    } else if (a.status != 200) {
        add(d, "key", "fail", "see the core's log", "%s/v1/info answered %ld: %s", u->url,
            a.status, cx_client_error_text(&a));
    } else {
        const char *team = json_string_value(json_object_get(a.json, "team"));
        const char *role = json_string_value(json_object_get(a.json, "role"));
        add(d, "key", "ok", NULL, "accepted (team %s, role %s)", team ? team : "?",
            role ? role : "?");
    }
out:
    cx_client_answer_clear(&a);
    cx_client_free(cl);
    cx_upstream_free(u);
}

int cx_doctor_run(const cx_doctor_opts *o, json_t **out) {
    doc d = {.checks = json_array()};
    if (!d.checks)
        return CX_ENOMEM;
    check_cortexd(&d, o);
    cx_session *sess = NULL;
    const cx_workspace *ws = check_workspace(&d, o, &sess);
    if (ws && cx_fs_is_dir(ws->state_dir)) {
        const cx_config *cfg = check_config(&d, sess);
        check_store(&d, sess);
        check_redaction(&d);
        check_daemon(&d, ws);
        check_agents(&d, ws, cfg, o);
        check_upstream(&d, ws);
    } else {
        check_redaction(&d);
    }
    json_t *rep = json_pack("{s:s?, s:b, s:o}", "workspace", ws ? ws->root : NULL, "ok",
                            !d.failed, "checks", d.checks);
    cx_session_free(sess);
    if (!rep)
        return CX_ENOMEM;
    *out = rep;
    return 0;
}
