/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for sidecar/agents.c (writing and checking agents' MCP
 * configuration and Claude Code hooks) and sidecar/toml.c (the validating
 * TOML reader behind the Codex config).
 *
 *     test-agents FIXTURES_TOML_DIR PYTHON CHECK_AGENT_CONFIG_PY
 *
 * The TOML corpus (valid/ and invalid/) must be classified right, and the
 * same corpus is given to Python's tomllib to confirm the fixtures
 * themselves. Files written by cx_agent_wire are also checked by
 * tests/start/check-agent-config.py, which reads them with the real JSON
 * and TOML parsers and compares them with copies taken before wiring. */
#include "test.h"

#include "agents.h"
#include "toml.h"
#include "util/error.h"
#include "util/fsx.h"

#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

static const char *fixtures, *python, *checker;
static char *tmp;
static const char *cortexd, *cortex;

/* ---- helpers ---------------------------------------------------------------- */

/* Formatted strings that live until the end of the test (freed in main). */
static char **owned;
static size_t nowned, capowned;

static char *S(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *S(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        abort();
    va_end(ap);
    if (nowned == capowned) {
        capowned = capowned ? capowned * 2 : 64;
        owned = realloc(owned, capowned * sizeof *owned);
        if (!owned)
            abort();
    }
    owned[nowned++] = s;
    return s;
}

static void write_file(const char *path, const char *text) {
    char *dir = S("%s", path);
    *strrchr(dir, '/') = '\0';
    if (cx_fs_mkdir_p(dir, 0755) != 0)
        abort();
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    fwrite(text, 1, strlen(text), f);
    fclose(f);
}

/* The file's bytes (owned until the end), or NULL when missing. */
static char *slurp(const char *path) {
    char *s = NULL;
    size_t n;
    if (cx_fs_read_file(path, 1 << 24, &s, &n) != 0)
        return NULL;
    char *o = S("%s", s);
    free(s);
    return o;
}

static bool exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static mode_t mode_of(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? st.st_mode & 07777 : 0;
}

static void set_old_mtime(const char *path) {
    struct timespec ts[2] = {{1000000000, 123}, {1000000000, 123}};
    utimensat(AT_FDCWD, path, ts, 0);
}

static bool has_old_mtime(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && st.st_mtim.tv_sec == 1000000000 && st.st_mtim.tv_nsec == 123;
}

static void copy_file(const char *from, const char *to) {
    char *text = slurp(from);
    if (text)
        write_file(to, text);
}

static int counter;

/* A new, empty workspace whose name needs escaping in TOML and JSON. */
static char *new_ws(const char *name) {
    char *root = S("%s/ws %d %s \"q\" \\ é", tmp, ++counter, name);
    if (cx_fs_mkdir_p(root, 0755) != 0)
        abort();
    return root;
}

static cx_agent_wiring wiring(const char *root) {
    return (cx_agent_wiring){.root = root, .cortexd = cortexd, .cortex = cortex};
}

/* Wires agent k into root; the report, or NULL on failure. */
static json_t *wire(cx_agent_kind k, const char *root) {
    cx_agent_wiring w = wiring(root);
    json_t *rep = NULL;
    int r = cx_agent_wire(k, &w, &rep);
    return r == 0 ? rep : NULL;
}

static const char *action(const json_t *rep, size_t i) {
    return json_string_value(json_object_get(json_array_get(json_object_get(rep, "files"), i), "action"));
}

static json_t *load_json(const char *path) {
    json_error_t e;
    return json_load_file(path, JSON_REJECT_DUPLICATES, &e);
}

/* Runs argv (argv[0] a path) with its stdout on our stderr; its exit status. */
static int run(const char *const argv[]) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(2, 1);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* check-agent-config.py [--before before] root cortexd cortex agent */
static int run_checker(const char *root, const char *before, const char *agent) {
    const char *argv[10];
    int n = 0;
    argv[n++] = python;
    argv[n++] = checker;
    if (before) {
        argv[n++] = "--before";
        argv[n++] = before;
    }
    argv[n++] = root;
    argv[n++] = cortexd;
    argv[n++] = cortex;
    argv[n++] = agent;
    argv[n] = NULL;
    return run(argv);
}

/* The check named `name` in a cx_agent_check result. */
static json_t *check_named(json_t *out, const char *name) {
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(out, "checks"), i, c) {
        if (strcmp(json_string_value(json_object_get(c, "name")), name) == 0)
            return c;
    }
    return NULL;
}

/* Runs cx_agent_check and returns the problem of check `name` ("" when ok). */
static const char *problem_of(cx_agent_kind k, const cx_agent_wiring *w, const char *name,
                              const char **fix) {
    json_t *out = NULL;
    if (cx_agent_check(k, w, &out) != 0)
        return "(check failed)";
    json_t *c = check_named(out, name);
    const char *res;
    if (!c)
        res = "(no such check)";
    else if (json_is_true(json_object_get(c, "ok")))
        res = json_object_get(c, "problem") ? "(ok with a problem)" : "";
    else
        res = S("%s", json_string_value(json_object_get(c, "problem")));
    if (fix)
        *fix = c && json_object_get(c, "fix") ? S("%s", json_string_value(json_object_get(c, "fix"))) : "";
    json_decref(out);
    return res;
}

static bool contains(const char *hay, const char *needle) {
    return hay && needle && strstr(hay, needle) != NULL;
}

#define CHECK_CONTAINS(hay, needle)                                                             \
    do {                                                                                        \
        const char *h_ = (hay);                                                                 \
        cx_test_report(contains(h_, needle), __FILE__, __LINE__, #hay " contains " #needle,     \
                       contains(h_, needle) ? NULL : S("got \"%s\"", h_ ? h_ : "(null)"));      \
    } while (0)

/* TOML basic string of s (only " and \ need escaping in our paths). */
static const char *toml_str(const char *s) {
    char *o = S("%*s", (int)(strlen(s) * 2 + 2), "");
    char *p = o;
    *p++ = '"';
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            *p++ = '\\';
        *p++ = *s;
    }
    *p++ = '"';
    *p = '\0';
    return o;
}

static const char *codex_block(const char *root) {
    return S("[mcp_servers.cortex]\ncommand = %s\nargs = [\"--workspace\", %s]\n", toml_str(cortexd),
             toml_str(root));
}

/* 'cortex' hook event, quoted as sh wants it. */
static const char *hook_cmd(const char *event) {
    char *q = S("%*s", (int)(strlen(cortex) * 4 + 3), "");
    char *p = q;
    *p++ = '\'';
    for (const char *s = cortex; *s; s++) {
        if (*s == '\'') {
            memcpy(p, "'\\''", 4);
            p += 4;
        } else
            *p++ = *s;
    }
    *p++ = '\'';
    *p = '\0';
    return S("%s hook %s", q, event);
}

/* ---- names ---------------------------------------------------------------------- */

static void test_names(void) {
    static const char *const names[] = {"claude", "codex", "cursor", "gemini"};
    static const char *const paths[] = {".mcp.json", ".codex/config.toml", ".cursor/mcp.json",
                                        ".gemini/settings.json"};
    for (int k = 0; k < CX_AGENT_COUNT; k++) {
        cx_agent_kind got = CX_AGENT_COUNT;
        CX_CHECK_OK(cx_agent_parse(names[k], &got));
        CX_CHECK_INT(got, k);
        CX_CHECK_STR(cx_agent_name((cx_agent_kind)k), names[k]);
        CX_CHECK_STR(cx_agent_config_path((cx_agent_kind)k), paths[k]);
    }
    cx_agent_kind got;
    CX_CHECK_INT(cx_agent_parse("vscode", &got), CX_EINVAL);
    CHECK_CONTAINS(cx_error_last(), "claude, codex, cursor and gemini");
    CHECK_CONTAINS(cx_error_last(), "vscode");
    CX_CHECK_INT(cx_agent_parse("Claude", &got), CX_EINVAL);
    CX_CHECK_INT(cx_agent_parse(NULL, &got), CX_EINVAL);

    /* bad wirings */
    char *root = new_ws("names");
    json_t *rep = NULL;
    cx_agent_wiring w = {.root = "relative/dir", .cortexd = cortexd, .cortex = cortex};
    CX_CHECK_INT(cx_agent_wire(CX_AGENT_CURSOR, &w, &rep), CX_EINVAL);
    w = (cx_agent_wiring){.root = root, .cortexd = "/bin/\xff\xfe", .cortex = cortex};
    CX_CHECK_INT(cx_agent_wire(CX_AGENT_CURSOR, &w, &rep), CX_EINVAL);
    CHECK_CONTAINS(cx_error_last(), "UTF-8");
    w = (cx_agent_wiring){.root = S("%s/does-not-exist", tmp), .cortexd = cortexd, .cortex = cortex};
    CX_CHECK_INT(cx_agent_wire(CX_AGENT_CURSOR, &w, &rep), CX_ENOTFOUND);
    CX_CHECK(!exists(S("%s/does-not-exist", tmp)));
    CX_CHECK(rep == NULL);
}

/* ---- every agent into an empty workspace ------------------------------------------ */

static void test_empty(void) {
    /* claude */
    char *root = new_ws("claude");
    json_t *rep = wire(CX_AGENT_CLAUDE, root);
    CX_CHECK(rep != NULL);
    CX_CHECK_STR(json_string_value(json_object_get(rep, "agent")), "claude");
    CX_CHECK_INT(json_array_size(json_object_get(rep, "files")), 2);
    CX_CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(rep, "files"), 0), "path")),
                 ".mcp.json");
    CX_CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(rep, "files"), 1), "path")),
                 ".claude/settings.json");
    CX_CHECK_STR(action(rep, 0), "created");
    CX_CHECK_STR(action(rep, 1), "created");
    json_decref(rep);
    json_t *mcp = load_json(S("%s/.mcp.json", root));
    json_t *e = json_object_get(json_object_get(mcp, "mcpServers"), "cortex");
    CX_CHECK_STR(json_string_value(json_object_get(e, "type")), "stdio");
    CX_CHECK_STR(json_string_value(json_object_get(e, "command")), cortexd);
    CX_CHECK_STR(json_string_value(json_array_get(json_object_get(e, "args"), 0)), "--workspace");
    CX_CHECK_STR(json_string_value(json_array_get(json_object_get(e, "args"), 1)), root);
    CX_CHECK(json_is_object(json_object_get(e, "env")) && json_object_size(json_object_get(e, "env")) == 0);
    json_decref(mcp);
    json_t *set = load_json(S("%s/.claude/settings.json", root));
    json_t *ss = json_array_get(json_object_get(json_object_get(set, "hooks"), "SessionStart"), 0);
    CX_CHECK_STR(json_string_value(json_object_get(ss, "matcher")), "startup|resume|clear|compact");
    json_t *h = json_array_get(json_object_get(ss, "hooks"), 0);
    CX_CHECK_STR(json_string_value(json_object_get(h, "type")), "command");
    CX_CHECK_STR(json_string_value(json_object_get(h, "command")), hook_cmd("session-start"));
    CX_CHECK_INT(json_integer_value(json_object_get(h, "timeout")), 10);
    json_t *st = json_array_get(json_object_get(json_object_get(set, "hooks"), "Stop"), 0);
    CX_CHECK(json_object_get(st, "matcher") == NULL);
    CX_CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(st, "hooks"), 0), "command")),
                 hook_cmd("stop"));
    json_decref(set);
    CX_CHECK_INT(mode_of(S("%s/.mcp.json", root)), 0644);
    CX_CHECK_INT(mode_of(S("%s/.claude", root)), 0755);
    CX_CHECK_INT(mode_of(S("%s/.claude/settings.json", root)), 0644);
    CX_CHECK_INT(run_checker(root, NULL, "claude"), 0);
    cx_agent_wiring w = wiring(root);
    CX_CHECK_STR(problem_of(CX_AGENT_CLAUDE, &w, "mcp-config", NULL), "");
    CX_CHECK_STR(problem_of(CX_AGENT_CLAUDE, &w, "hooks", NULL), "");

    /* cursor: the exact text (indent 2, no ASCII escaping, a final newline) */
    root = new_ws("cursor");
    rep = wire(CX_AGENT_CURSOR, root);
    CX_CHECK_STR(action(rep, 0), "created");
    json_decref(rep);
    char *esc_root = S("%s", root);
    {
        /* the root in JSON: " and \ escaped, é as it is */
        char *o = S("%*s", (int)strlen(root) * 2, ""), *p = o;
        for (const char *s = root; *s; s++) {
            if (*s == '"' || *s == '\\')
                *p++ = '\\';
            *p++ = *s;
        }
        *p = '\0';
        esc_root = o;
    }
    CX_CHECK_STR(slurp(S("%s/.cursor/mcp.json", root)),
                 S("{\n  \"mcpServers\": {\n    \"cortex\": {\n      \"command\": \"%s\",\n"
                   "      \"args\": [\n        \"--workspace\",\n        \"%s\"\n      ],\n"
                   "      \"env\": {}\n    }\n  }\n}\n",
                   cortexd, esc_root));
    CX_CHECK_INT(mode_of(S("%s/.cursor", root)), 0755);
    CX_CHECK_INT(run_checker(root, NULL, "cursor"), 0);
    w = wiring(root);
    CX_CHECK_STR(problem_of(CX_AGENT_CURSOR, &w, "mcp-config", NULL), "");

    /* gemini */
    root = new_ws("gemini");
    rep = wire(CX_AGENT_GEMINI, root);
    CX_CHECK_STR(action(rep, 0), "created");
    json_decref(rep);
    json_t *g = load_json(S("%s/.gemini/settings.json", root));
    e = json_object_get(json_object_get(g, "mcpServers"), "cortex");
    CX_CHECK_STR(json_string_value(json_object_get(e, "command")), cortexd);
    CX_CHECK_STR(json_string_value(json_object_get(e, "cwd")), root);
    CX_CHECK(json_object_get(e, "type") == NULL && json_object_get(e, "env") == NULL);
    json_decref(g);
    CX_CHECK_INT(run_checker(root, NULL, "gemini"), 0);
    w = wiring(root);
    CX_CHECK_STR(problem_of(CX_AGENT_GEMINI, &w, "mcp-config", NULL), "");

    /* codex: exactly one block */
    root = new_ws("codex");
    rep = wire(CX_AGENT_CODEX, root);
    CX_CHECK_STR(action(rep, 0), "created");
    CX_CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(rep, "files"), 0), "path")),
                 ".codex/config.toml");
    json_decref(rep);
    CX_CHECK_STR(slurp(S("%s/.codex/config.toml", root)), codex_block(root));
    CX_CHECK_INT(mode_of(S("%s/.codex/config.toml", root)), 0644);
    CX_CHECK_INT(run_checker(root, NULL, "codex"), 0);
    w = wiring(root);
    CX_CHECK_STR(problem_of(CX_AGENT_CODEX, &w, "mcp-config", NULL), "");
}

/* ---- merging into existing files ------------------------------------------------------ */

static const char *claude_mcp_before =
    "{\n"
    "  \"$schema\": \"https://example.com/mcp.schema.json\",\n"
    "  \"mcpServers\": {\n"
    "    \"github\": {\"type\": \"http\", \"url\": \"https://api.example.com/mcp\"},\n"
    "    \"fs\": {\"command\": \"npx\", \"args\": [\"-y\", \"@mcp/fs\", \"/tmp\"], \"env\": {\"A\": \"1\"}}\n"
    "  },\n"
    "  \"numbers\": [0.1, 1e3, -0, 12345678901234, 3.141592653589793, 1.5e-300],\n"
    "  \"text\": \"naïve ✓ \\u0001 \\\"q\\\" / \\\\\",\n"
    "  \"zz-last\": null\n"
    "}\n";

static const char *claude_settings_before =
    "{\n"
    "  \"permissions\": {\"allow\": [\"Bash(npm test:*)\"], \"deny\": []},\n"
    "  \"hooks\": {\n"
    "    \"PreToolUse\": [{\"matcher\": \"Bash\", \"hooks\": [{\"type\": \"command\", \"command\": \"./check.sh\"}]}],\n"
    "    \"SessionStart\": [{\"matcher\": \"startup\", \"hooks\": [{\"type\": \"command\", \"command\": \"echo hello\"}]}]\n"
    "  },\n"
    "  \"model\": \"opus\"\n"
    "}\n";

static const char *codex_before =
    "# my Codex settings\r\n"
    "model = \"o3\"\r\n"
    "\r\n"
    "[mcp_servers.docs]\r\n"
    "command = \"npx\"\r\n"
    "args = [\"-y\", \"docs\"]   # trailing comment\r\n"
    "\r\n"
    "[profiles.fast]\r\n"
    "model = \"gpt-4.1\"\r\n"
    "nested = { a = [1, 2], b = { c = 1979-05-27T07:32:00Z } }";  /* no final newline */

static void test_merge(void) {
    /* claude */
    char *root = new_ws("merge claude"), *before = new_ws("before claude");
    write_file(S("%s/.mcp.json", root), claude_mcp_before);
    write_file(S("%s/.claude/settings.json", root), claude_settings_before);
    chmod(S("%s/.mcp.json", root), 0600);
    copy_file(S("%s/.mcp.json", root), S("%s/.mcp.json", before));
    copy_file(S("%s/.claude/settings.json", root), S("%s/.claude/settings.json", before));
    json_t *rep = wire(CX_AGENT_CLAUDE, root);
    CX_CHECK_STR(action(rep, 0), "updated");
    CX_CHECK_STR(action(rep, 1), "updated");
    json_decref(rep);
    CX_CHECK_INT(run_checker(root, before, "claude"), 0);
    CX_CHECK_INT(mode_of(S("%s/.mcp.json", root)), 0600); /* an existing file keeps its mode */
    char *text = slurp(S("%s/.mcp.json", root));
    CHECK_CONTAINS(text, "0.1,");          /* not 0.10000000000000001 */
    CHECK_CONTAINS(text, "3.141592653589793");
    CHECK_CONTAINS(text, "naïve ✓");       /* no ASCII escaping */
    CX_CHECK(text && text[strlen(text) - 1] == '\n');
    json_t *mcp = load_json(S("%s/.mcp.json", root));
    const char *k1 = NULL;
    void *it = json_object_iter(mcp);
    k1 = json_object_iter_key(it);
    CX_CHECK_STR(k1, "$schema");
    json_t *servers = json_object_get(mcp, "mcpServers");
    it = json_object_iter(servers);
    CX_CHECK_STR(json_object_iter_key(it), "github");
    it = json_object_iter_next(servers, it);
    CX_CHECK_STR(json_object_iter_key(it), "fs");
    it = json_object_iter_next(servers, it);
    CX_CHECK_STR(json_object_iter_key(it), "cortex"); /* new entries go last */
    json_decref(mcp);
    json_t *set = load_json(S("%s/.claude/settings.json", root));
    json_t *ss = json_object_get(json_object_get(set, "hooks"), "SessionStart");
    CX_CHECK_INT(json_array_size(ss), 2);
    CX_CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(json_array_get(ss, 0), "hooks"), 0), "command")),
                 "echo hello");
    CX_CHECK(json_object_get(json_object_get(set, "hooks"), "PreToolUse") != NULL);
    CX_CHECK_STR(json_string_value(json_object_get(set, "model")), "opus");
    json_decref(set);

    /* cursor and gemini, with other servers and settings */
    const char *other = "{\"theme\": \"dark\", \"mcpServers\": {\"other\": {\"command\": \"x\"}}, \"tail\": [1, {\"a\": true}]}";
    const cx_agent_kind kinds[] = {CX_AGENT_CURSOR, CX_AGENT_GEMINI};
    for (int j = 0; j < 2; j++) {
        cx_agent_kind k = kinds[j];
        root = new_ws("merge json");
        before = new_ws("before json");
        const char *rel = cx_agent_config_path(k);
        write_file(S("%s/%s", root, rel), other);
        copy_file(S("%s/%s", root, rel), S("%s/%s", before, rel));
        rep = wire(k, root);
        CX_CHECK_STR(action(rep, 0), "updated");
        json_decref(rep);
        CX_CHECK_INT(run_checker(root, before, cx_agent_name(k)), 0);
    }

    /* codex: every old byte stays; the block is appended with CRLF */
    root = new_ws("merge codex");
    before = new_ws("before codex");
    write_file(S("%s/.codex/config.toml", root), codex_before);
    copy_file(S("%s/.codex/config.toml", root), S("%s/.codex/config.toml", before));
    rep = wire(CX_AGENT_CODEX, root);
    CX_CHECK_STR(action(rep, 0), "updated");
    json_decref(rep);
    text = slurp(S("%s/.codex/config.toml", root));
    CX_CHECK_STR(text, S("%s\r\n\r\n[mcp_servers.cortex]\r\ncommand = %s\r\nargs = [\"--workspace\", %s]\r\n",
                         codex_before, toml_str(cortexd), toml_str(root)));
    CX_CHECK_INT(run_checker(root, before, "codex"), 0);
    cx_agent_wiring w = wiring(root);
    CX_CHECK_STR(problem_of(CX_AGENT_CODEX, &w, "mcp-config", NULL), "");

    /* a symlinked config is written through: the link stays */
    root = new_ws("symlink");
    char *target = S("%s/shared-mcp.json", tmp);
    write_file(target, "{\"mcpServers\": {}}");
    chmod(target, 0640);
    CX_CHECK(cx_fs_mkdir_p(S("%s/.cursor", root), 0755) == 0);
    CX_CHECK(symlink(target, S("%s/.cursor/mcp.json", root)) == 0);
    rep = wire(CX_AGENT_CURSOR, root);
    CX_CHECK_STR(action(rep, 0), "updated");
    json_decref(rep);
    struct stat lst;
    CX_CHECK(lstat(S("%s/.cursor/mcp.json", root), &lst) == 0 && S_ISLNK(lst.st_mode));
    CHECK_CONTAINS(slurp(target), cortexd);
    CX_CHECK_INT(mode_of(target), 0640);
    CX_CHECK_INT(run_checker(root, NULL, "cursor"), 0);

    /* a dangling link is no config: a new file takes the link's place
     * (the target it names is not created) */
    root = new_ws("dangling");
    char *nowhere = S("%s/no-such-dir/mcp.json", tmp);
    CX_CHECK(cx_fs_mkdir_p(S("%s/.cursor", root), 0755) == 0);
    CX_CHECK(symlink(nowhere, S("%s/.cursor/mcp.json", root)) == 0);
    rep = wire(CX_AGENT_CURSOR, root);
    CX_CHECK_STR(action(rep, 0), "created");
    json_decref(rep);
    CX_CHECK(lstat(S("%s/.cursor/mcp.json", root), &lst) == 0 && S_ISREG(lst.st_mode));
    CX_CHECK(access(nowhere, F_OK) != 0);
    CX_CHECK_INT(run_checker(root, NULL, "cursor"), 0);

    /* a blank file counts as empty */
    root = new_ws("blank");
    write_file(S("%s/.cursor/mcp.json", root), "  \n");
    rep = wire(CX_AGENT_CURSOR, root);
    CX_CHECK_STR(action(rep, 0), "updated");
    json_decref(rep);
    CX_CHECK_INT(run_checker(root, NULL, "cursor"), 0);
}

/* ---- twice: nothing changes ------------------------------------------------------------ */

static void test_twice(void) {
    for (int k = 0; k < CX_AGENT_COUNT; k++) {
        char *root = new_ws("twice");
        if (k == CX_AGENT_CLAUDE)
            write_file(S("%s/.claude/settings.json", root), claude_settings_before);
        if (k == CX_AGENT_CODEX)
            write_file(S("%s/.codex/config.toml", root), codex_before);
        json_t *rep = wire((cx_agent_kind)k, root);
        CX_CHECK(rep != NULL);
        json_decref(rep);
        const char *files[2] = {S("%s/%s", root, cx_agent_config_path((cx_agent_kind)k)),
                                k == CX_AGENT_CLAUDE ? S("%s/.claude/settings.json", root) : NULL};
        const char *bytes[2];
        for (int j = 0; j < 2 && files[j]; j++) {
            set_old_mtime(files[j]);
            bytes[j] = slurp(files[j]);
        }
        rep = wire((cx_agent_kind)k, root);
        CX_CHECK_STR(action(rep, 0), "unchanged");
        if (k == CX_AGENT_CLAUDE)
            CX_CHECK_STR(action(rep, 1), "unchanged");
        json_decref(rep);
        for (int j = 0; j < 2 && files[j]; j++) {
            CX_CHECK(has_old_mtime(files[j]));
            CX_CHECK_STR(slurp(files[j]), bytes[j]);
        }
    }

    /* the same content formatted another way is left alone too */
    char *root = new_ws("twice compact");
    /* keys in another order, no whitespace (the root holds " and \, so jansson writes it) */
    json_t *doc = json_pack("{s:{s:{s:{}, s:[s,s], s:s}}}", "mcpServers", "cortex", "env", "args",
                            "--workspace", root, "command", cortexd);
    char *compact = json_dumps(doc, JSON_COMPACT);
    write_file(S("%s/.cursor/mcp.json", root), compact);
    free(compact);
    json_decref(doc);
    set_old_mtime(S("%s/.cursor/mcp.json", root));
    json_t *rep = wire(CX_AGENT_CURSOR, root);
    CX_CHECK_STR(action(rep, 0), "unchanged");
    json_decref(rep);
    CX_CHECK(has_old_mtime(S("%s/.cursor/mcp.json", root)));
}

/* ---- a stale cortex entry is updated in place -------------------------------------------- */

static void test_stale(void) {
    /* JSON: same position, env and unknown keys kept, http keys dropped */
    char *root = new_ws("stale cursor");
    write_file(S("%s/.cursor/mcp.json", root),
               "{\"mcpServers\": {\"a\": {\"command\": \"a\"}, "
               "\"cortex\": {\"url\": \"http://x\", \"command\": \"/old/cortexd\", \"args\": [\"--workspace\", \"/old\"], "
               "\"env\": {\"CORTEX_LOG\": \"debug\"}, \"disabled\": false}, "
               "\"z\": {\"command\": \"z\"}}}");
    json_t *rep = wire(CX_AGENT_CURSOR, root);
    CX_CHECK_STR(action(rep, 0), "updated");
    json_decref(rep);
    json_t *doc = load_json(S("%s/.cursor/mcp.json", root));
    json_t *servers = json_object_get(doc, "mcpServers");
    void *it = json_object_iter(servers);
    CX_CHECK_STR(json_object_iter_key(it), "a");
    it = json_object_iter_next(servers, it);
    CX_CHECK_STR(json_object_iter_key(it), "cortex");
    it = json_object_iter_next(servers, it);
    CX_CHECK_STR(json_object_iter_key(it), "z");
    json_t *e = json_object_get(servers, "cortex");
    CX_CHECK_STR(json_string_value(json_object_get(e, "command")), cortexd);
    CX_CHECK_STR(json_string_value(json_array_get(json_object_get(e, "args"), 1)), root);
    CX_CHECK_STR(json_string_value(json_object_get(json_object_get(e, "env"), "CORTEX_LOG")), "debug");
    CX_CHECK(json_is_false(json_object_get(e, "disabled")));
    CX_CHECK(json_object_get(e, "url") == NULL);
    json_decref(doc);
    CX_CHECK_INT(run_checker(root, NULL, "cursor"), 0);

    /* claude hooks: updated where they are, duplicates removed, others kept */
    root = new_ws("stale hooks");
    write_file(S("%s/.claude/settings.json", root),
               "{\"hooks\": {\n"
               " \"SessionStart\": [\n"
               "  {\"matcher\": \"startup\", \"hooks\": [{\"type\": \"command\", \"command\": \"/old/bin/cortex hook session-start\", \"timeout\": 5, \"x\": 1}]},\n"
               "  {\"hooks\": [{\"type\": \"command\", \"command\": \"echo other\"}]}],\n"
               " \"Stop\": [\n"
               "  {\"hooks\": [{\"type\": \"command\", \"command\": \"cortex hook stop\"}, {\"type\": \"command\", \"command\": \"echo bye\"}]},\n"
               "  {\"hooks\": [{\"type\": \"command\", \"command\": \"'/x y/cortex' hook stop\"}]},\n"
               "  {\"hooks\": [{\"type\": \"command\", \"command\": \"cortex hook stop; rm -rf /\"}]}]\n"
               "}}\n");
    rep = wire(CX_AGENT_CLAUDE, root);
    CX_CHECK_STR(action(rep, 1), "updated");
    json_decref(rep);
    doc = load_json(S("%s/.claude/settings.json", root));
    json_t *ss = json_object_get(json_object_get(doc, "hooks"), "SessionStart");
    CX_CHECK_INT(json_array_size(ss), 2);
    json_t *g0 = json_array_get(ss, 0);
    CX_CHECK_STR(json_string_value(json_object_get(g0, "matcher")), "startup|resume|clear|compact");
    json_t *h = json_array_get(json_object_get(g0, "hooks"), 0);
    CX_CHECK_STR(json_string_value(json_object_get(h, "command")), hook_cmd("session-start"));
    CX_CHECK_INT(json_integer_value(json_object_get(h, "timeout")), 10);
    CX_CHECK_INT(json_integer_value(json_object_get(h, "x")), 1);
    json_t *stop = json_object_get(json_object_get(doc, "hooks"), "Stop");
    CX_CHECK_INT(json_array_size(stop), 2); /* the duplicate's group went away */
    json_t *sg = json_object_get(json_array_get(stop, 0), "hooks");
    CX_CHECK_INT(json_array_size(sg), 2);
    CX_CHECK_STR(json_string_value(json_object_get(json_array_get(sg, 0), "command")), hook_cmd("stop"));
    CX_CHECK_STR(json_string_value(json_object_get(json_array_get(sg, 1), "command")), "echo bye");
    CX_CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(json_array_get(stop, 1), "hooks"), 0), "command")),
                 "cortex hook stop; rm -rf /"); /* not a plain cortex hook: not ours */
    json_decref(doc);
    CX_CHECK_INT(run_checker(root, NULL, "claude"), 0);

    /* a hook through $HOME is still a cortex hook; a shared group with a
     * narrower matcher keeps it, the cortex hook moves to its own group
     * right after; a matcher that covers every source stays */
    root = new_ws("hooks matchers");
    write_file(S("%s/.claude/settings.json", root),
               "{\"hooks\": {\"SessionStart\": [\n"
               "  {\"matcher\": \"startup\", \"hooks\": [{\"type\": \"command\", \"command\": \"echo a\"},\n"
               "     {\"type\": \"command\", \"command\": \"\\\"$HOME/bin/cortex\\\" hook session-start\"}]},\n"
               "  {\"matcher\": \"clear\", \"hooks\": [{\"type\": \"command\", \"command\": \"echo c\"}]}],\n"
               " \"Stop\": [{\"matcher\": \"*\", \"hooks\": [{\"type\": \"command\", \"command\": \"echo s\"},\n"
               "     {\"type\": \"command\", \"command\": \"~/bin/cortex hook stop\"}]}]}}\n");
    cx_agent_wiring wh = wiring(root);
    CHECK_CONTAINS(problem_of(CX_AGENT_CLAUDE, &wh, "hooks", NULL), "the SessionStart hook runs $HOME/bin/cortex");
    json_decref(wire(CX_AGENT_CLAUDE, root));
    doc = load_json(S("%s/.claude/settings.json", root));
    ss = json_object_get(json_object_get(doc, "hooks"), "SessionStart");
    CX_CHECK_INT(json_array_size(ss), 3);
    CX_CHECK_STR(json_string_value(json_object_get(json_array_get(ss, 0), "matcher")), "startup");
    CX_CHECK_INT(json_array_size(json_object_get(json_array_get(ss, 0), "hooks")), 1);
    CX_CHECK_STR(json_string_value(json_object_get(json_array_get(ss, 1), "matcher")), "startup|resume|clear|compact");
    CX_CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(json_array_get(ss, 1), "hooks"), 0), "command")),
                 hook_cmd("session-start"));
    CX_CHECK_STR(json_string_value(json_object_get(json_array_get(ss, 2), "matcher")), "clear");
    stop = json_object_get(json_object_get(doc, "hooks"), "Stop");
    CX_CHECK_INT(json_array_size(stop), 1);
    CX_CHECK_STR(json_string_value(json_object_get(json_array_get(stop, 0), "matcher")), "*");
    CX_CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(json_array_get(stop, 0), "hooks"), 1), "command")),
                 hook_cmd("stop"));
    json_decref(doc);
    CX_CHECK_STR(problem_of(CX_AGENT_CLAUDE, &wh, "hooks", NULL), "");
    CX_CHECK_INT(run_checker(root, NULL, "claude"), 0);
    /* doctor sees a narrower matcher */
    doc = load_json(S("%s/.claude/settings.json", root));
    json_object_set_new(json_array_get(json_object_get(json_object_get(doc, "hooks"), "SessionStart"), 1), "matcher",
                        json_string("resume"));
    json_dump_file(doc, S("%s/.claude/settings.json", root), 0);
    json_decref(doc);
    CHECK_CONTAINS(problem_of(CX_AGENT_CLAUDE, &wh, "hooks", NULL), "only for the matcher 'resume'");
    CX_CHECK_INT(run_checker(root, NULL, "claude"), 1);
    rep = wire(CX_AGENT_CLAUDE, root);
    CX_CHECK_STR(action(rep, 1), "updated");
    json_decref(rep);
    CX_CHECK_STR(problem_of(CX_AGENT_CLAUDE, &wh, "hooks", NULL), "");

    /* codex: only the command and args lines change */
    root = new_ws("stale codex");
    const char *head = "# top\nmodel = \"o3\"\n\n[mcp_servers.cortex]\n# keep this comment\n";
    const char *mid = "startup_timeout_sec = 30\n";
    const char *tail = "\n[mcp_servers.cortex.env]\nA = \"b\"\n\n[profiles.x]\ny = 1\n";
    write_file(S("%s/.codex/config.toml", root),
               S("%s  command = \"/old/cortexd\"   # old\n%sargs = [\n  \"--workspace\",\n  \"/old\",\n]\n%s",
                 head, mid, tail));
    rep = wire(CX_AGENT_CODEX, root);
    CX_CHECK_STR(action(rep, 0), "updated");
    json_decref(rep);
    CX_CHECK_STR(slurp(S("%s/.codex/config.toml", root)),
                 S("%s  command = %s\n%sargs = [\"--workspace\", %s]\n%s", head, toml_str(cortexd), mid,
                   toml_str(root), tail));
    CX_CHECK_INT(run_checker(root, NULL, "codex"), 0);

    /* codex: a table without command and args gets them after its header */
    root = new_ws("codex missing keys");
    write_file(S("%s/.codex/config.toml", root),
               "[mcp_servers.cortex] # mine\nstartup_timeout_sec = 5\n[other]\nx = 1\n");
    rep = wire(CX_AGENT_CODEX, root);
    CX_CHECK_STR(action(rep, 0), "updated");
    json_decref(rep);
    CX_CHECK_STR(slurp(S("%s/.codex/config.toml", root)),
                 S("[mcp_servers.cortex] # mine\ncommand = %s\nargs = [\"--workspace\", %s]\n"
                   "startup_timeout_sec = 5\n[other]\nx = 1\n",
                   toml_str(cortexd), toml_str(root)));
    CX_CHECK_INT(run_checker(root, NULL, "codex"), 0);

    /* codex: only a sub-table defines it (implicitly): a header is appended */
    root = new_ws("codex implicit");
    write_file(S("%s/.codex/config.toml", root), "[mcp_servers.cortex.env]\nA = \"b\"\n");
    rep = wire(CX_AGENT_CODEX, root);
    CX_CHECK_STR(action(rep, 0), "updated");
    json_decref(rep);
    CX_CHECK_STR(slurp(S("%s/.codex/config.toml", root)),
                 S("[mcp_servers.cortex.env]\nA = \"b\"\n\n%s", codex_block(root)));
    CX_CHECK_INT(run_checker(root, NULL, "codex"), 0);
}

/* ---- refusals leave files untouched ---------------------------------------------------------- */

/* Writes text to rel in a new workspace, wires k, expects CX_EINVAL with
 * `needle` in the message and the file unchanged. */
static void expect_refused(cx_agent_kind k, const char *rel, const char *text, const char *needle,
                           int line) {
    char *root = new_ws("refuse");
    char *path = S("%s/%s", root, rel);
    write_file(path, text);
    set_old_mtime(path);
    cx_agent_wiring w = wiring(root);
    json_t *rep = NULL;
    int r = cx_agent_wire(k, &w, &rep);
    cx_test_report(r == CX_EINVAL, __FILE__, line, "refused with CX_EINVAL", S("got %d", r));
    const char *msg = S("%s", cx_error_last());
    cx_test_report(contains(msg, needle), __FILE__, line, needle, msg);
    cx_test_report(contains(msg, "nothing was changed"), __FILE__, line, "says nothing was changed", msg);
    cx_test_report(rep == NULL, __FILE__, line, "no report", NULL);
    const char *now = slurp(path);
    cx_test_report(now && strcmp(now, text) == 0 && has_old_mtime(path), __FILE__, line,
                   "file untouched", NULL);
    if (k == CX_AGENT_CLAUDE) { /* the other file is not written either */
        const char *other = strcmp(rel, ".mcp.json") == 0 ? ".claude/settings.json" : ".mcp.json";
        cx_test_report(!exists(S("%s/%s", root, other)), __FILE__, line, "other file not created", other);
    }
}

static void test_refuse(void) {
    expect_refused(CX_AGENT_CURSOR, ".cursor/mcp.json", "{\n  \"mcpServers\": {\n    ,\n  }\n}\n",
                   "cannot parse .cursor/mcp.json at line 3, column 5:", __LINE__);
    expect_refused(CX_AGENT_GEMINI, ".gemini/settings.json", "{\"a\": 1,\n \"a\": 2}\n",
                   "cannot parse .gemini/settings.json at line 2", __LINE__);
    expect_refused(CX_AGENT_GEMINI, ".gemini/settings.json", "// a comment\n{}\n",
                   "cannot parse .gemini/settings.json at line 1", __LINE__);
    expect_refused(CX_AGENT_CURSOR, ".cursor/mcp.json", "[1, 2]\n", "top level is an array", __LINE__);
    expect_refused(CX_AGENT_CURSOR, ".cursor/mcp.json", "{} {}\n", "at line 1", __LINE__);
    expect_refused(CX_AGENT_CLAUDE, ".mcp.json", "{\"mcpServers\": []}\n",
                   "\"mcpServers\" is an array, not an object", __LINE__);
    expect_refused(CX_AGENT_GEMINI, ".gemini/settings.json", "{\"mcpServers\": \"none\"}\n",
                   "\"mcpServers\" is a string", __LINE__);
    expect_refused(CX_AGENT_CLAUDE, ".claude/settings.json", "{\"hooks\": \"none\"}\n",
                   "\"hooks\" is a string, not an object", __LINE__);
    expect_refused(CX_AGENT_CLAUDE, ".claude/settings.json", "{\"hooks\": {\"Stop\": {}}}\n",
                   "\"hooks.Stop\" is an object, not an array", __LINE__);
    expect_refused(CX_AGENT_CLAUDE, ".claude/settings.json", "{\"hooks\": {\"SessionStart\": 1}}\n",
                   "\"hooks.SessionStart\" is a number", __LINE__);
    expect_refused(CX_AGENT_CLAUDE, ".claude/settings.json", "{\"hooks\": {}\n",
                   "cannot parse .claude/settings.json at line", __LINE__);

    expect_refused(CX_AGENT_CODEX, ".codex/config.toml", "model = \"o3\"\n[mcp_servers\ncommand = 1\n",
                   "cannot parse .codex/config.toml at line 2, column 13:", __LINE__);
    expect_refused(CX_AGENT_CODEX, ".codex/config.toml", "a = 1\na = 2\n",
                   "at line 2, column 1: duplicate key a", __LINE__);
    expect_refused(CX_AGENT_CODEX, ".codex/config.toml",
                   "[mcp_servers]\ncortex = { command = \"/old\", args = [] }\n",
                   "defined as an inline table (line 2)", __LINE__);
    expect_refused(CX_AGENT_CODEX, ".codex/config.toml", "mcp_servers.cortex.command = \"/old\"\n",
                   "defined as dotted keys", __LINE__);
    expect_refused(CX_AGENT_CODEX, ".codex/config.toml", "[mcp_servers]\ncortex.command = \"/old\"\n",
                   "defined as dotted keys (line 2)", __LINE__);
    expect_refused(CX_AGENT_CODEX, ".codex/config.toml", "mcp_servers = { other = { command = \"x\" } }\n",
                   "mcp_servers, which is defined as an inline table", __LINE__);
    expect_refused(CX_AGENT_CODEX, ".codex/config.toml", "[[mcp_servers.cortex]]\ncommand = \"x\"\n",
                   "an array of tables", __LINE__);
    expect_refused(CX_AGENT_CODEX, ".codex/config.toml", "[mcp_servers.cortex]\ncommand.path = \"x\"\n",
                   "command in [mcp_servers.cortex] is defined with dotted keys", __LINE__);
    expect_refused(CX_AGENT_CODEX, ".codex/config.toml", "mcp_servers = 3\n", "defined as a value",
                   __LINE__);
}

/* ---- cx_agent_check ---------------------------------------------------------------------------- */

static void test_check(void) {
    const char *fix = NULL;
    char *root = new_ws("check");
    cx_agent_wiring w = wiring(root);

    /* missing files */
    CHECK_CONTAINS(problem_of(CX_AGENT_CURSOR, &w, "mcp-config", &fix), ".cursor/mcp.json does not exist");
    CX_CHECK_STR(fix, "run: cortex start --agent cursor");
    CHECK_CONTAINS(problem_of(CX_AGENT_CODEX, &w, "mcp-config", &fix), ".codex/config.toml does not exist");
    CHECK_CONTAINS(problem_of(CX_AGENT_CLAUDE, &w, "hooks", &fix), ".claude/settings.json does not exist");
    CX_CHECK_STR(fix, "run: cortex start --agent claude");
    json_t *out = NULL;
    CX_CHECK_OK(cx_agent_check(CX_AGENT_CLAUDE, &w, &out));
    CX_CHECK_STR(json_string_value(json_object_get(out, "agent")), "claude");
    CX_CHECK_INT(json_array_size(json_object_get(out, "checks")), 2);
    json_t *c = check_named(out, "hooks");
    CX_CHECK_STR(json_string_value(json_object_get(c, "path")), ".claude/settings.json");
    CX_CHECK(json_is_false(json_object_get(c, "ok")));
    json_decref(out);
    CX_CHECK_OK(cx_agent_check(CX_AGENT_GEMINI, &w, &out));
    CX_CHECK_INT(json_array_size(json_object_get(out, "checks")), 1);
    json_decref(out);

    /* cannot be parsed */
    write_file(S("%s/.cursor/mcp.json", root), "{\n  \"mcpServers\": nope\n}\n");
    CHECK_CONTAINS(problem_of(CX_AGENT_CURSOR, &w, "mcp-config", &fix),
                   "cannot parse .cursor/mcp.json at line 2, column");
    CHECK_CONTAINS(fix, "move .cursor/mcp.json aside");
    write_file(S("%s/.codex/config.toml", root), "x = [1,\n  2,,\n]\n");
    CHECK_CONTAINS(problem_of(CX_AGENT_CODEX, &w, "mcp-config", &fix),
                   "cannot parse .codex/config.toml at line 2, column 5");

    /* no entry */
    write_file(S("%s/.cursor/mcp.json", root), "{\"mcpServers\": {\"other\": {\"command\": \"x\"}}}");
    CHECK_CONTAINS(problem_of(CX_AGENT_CURSOR, &w, "mcp-config", &fix), "no \"cortex\" entry");
    CX_CHECK_STR(fix, "run: cortex start --agent cursor");
    write_file(S("%s/.codex/config.toml", root), "[mcp_servers.other]\ncommand = \"x\"\n");
    CHECK_CONTAINS(problem_of(CX_AGENT_CODEX, &w, "mcp-config", NULL), "no [mcp_servers.cortex] table");
    write_file(S("%s/.codex/config.toml", root), "[mcp_servers]\ncortex = {command = \"x\"}\n");
    CHECK_CONTAINS(problem_of(CX_AGENT_CODEX, &w, "mcp-config", &fix), "inline table");
    CHECK_CONTAINS(fix, "rewrite it as a [mcp_servers.cortex] table");

    /* wired: ok, then broken in each way */
    json_decref(wire(CX_AGENT_CURSOR, root));
    CX_CHECK_STR(problem_of(CX_AGENT_CURSOR, &w, "mcp-config", NULL), "");
    /* through a symlink to the same binary is the same binary */
    char *link = S("%s/link-to-cortexd", tmp);
    CX_CHECK(symlink(cortexd, link) == 0 || exists(link));
    cx_agent_wiring wl = {.root = root, .cortexd = link, .cortex = cortex};
    CX_CHECK_STR(problem_of(CX_AGENT_CURSOR, &wl, "mcp-config", NULL), "");

    cx_agent_wiring other = {.root = root, .cortexd = "/opt/other/cortexd", .cortex = cortex};
    CHECK_CONTAINS(problem_of(CX_AGENT_CURSOR, &other, "mcp-config", &fix),
                   S("the cortex server runs %s, not /opt/other/cortexd", cortexd));

    char *noexec = S("%s/noexec/cortexd", tmp);
    write_file(noexec, "#!/bin/sh\n");
    chmod(noexec, 0644);
    cx_agent_wiring wn = {.root = root, .cortexd = noexec, .cortex = cortex};
    json_decref(wire(CX_AGENT_CURSOR, root)); /* reset */
    json_t *rep = NULL;
    CX_CHECK_OK(cx_agent_wire(CX_AGENT_CURSOR, &wn, &rep));
    json_decref(rep);
    CHECK_CONTAINS(problem_of(CX_AGENT_CURSOR, &wn, "mcp-config", &fix),
                   S("%s is missing or not an executable file", noexec));
    CHECK_CONTAINS(fix, "reinstall cortex");
    cx_agent_wiring wm = {.root = root, .cortexd = S("%s/nowhere/cortexd", tmp), .cortex = cortex};
    CX_CHECK_OK(cx_agent_wire(CX_AGENT_CURSOR, &wm, &rep));
    json_decref(rep);
    CHECK_CONTAINS(problem_of(CX_AGENT_CURSOR, &wm, "mcp-config", NULL), "is missing or not an executable file");

    write_file(S("%s/.cursor/mcp.json", root),
               S("{\"mcpServers\": {\"cortex\": {\"command\": \"%s\", \"args\": [\"--workspace\", \"/elsewhere\"]}}}",
                 cortexd));
    CHECK_CONTAINS(problem_of(CX_AGENT_CURSOR, &w, "mcp-config", &fix),
                   "serves the workspace /elsewhere, not");
    CX_CHECK_STR(fix, "run: cortex start --agent cursor");
    write_file(S("%s/.cursor/mcp.json", root),
               S("{\"mcpServers\": {\"cortex\": {\"command\": \"%s\", \"args\": []}}}", cortexd));
    CHECK_CONTAINS(problem_of(CX_AGENT_CURSOR, &w, "mcp-config", NULL), "not given --workspace");
    write_file(S("%s/.cursor/mcp.json", root), "{\"mcpServers\": {\"cortex\": {\"args\": []}}}");
    CHECK_CONTAINS(problem_of(CX_AGENT_CURSOR, &w, "mcp-config", NULL), "has no command");
    write_file(S("%s/.cursor/mcp.json", root), "{\"mcpServers\": {\"cortex\": \"cortexd\"}}");
    CHECK_CONTAINS(problem_of(CX_AGENT_CURSOR, &w, "mcp-config", NULL), "is a string, not an object");

    /* codex: wrong binary, other workspace, wrong type (the inline form
     * above is refused, so start over) */
    json_t *refused = wire(CX_AGENT_CODEX, root);
    CX_CHECK(refused == NULL);
    unlink(S("%s/.codex/config.toml", root));
    json_decref(wire(CX_AGENT_CODEX, root));
    CX_CHECK_STR(problem_of(CX_AGENT_CODEX, &w, "mcp-config", NULL), "");
    CHECK_CONTAINS(problem_of(CX_AGENT_CODEX, &other, "mcp-config", NULL), "not /opt/other/cortexd");
    write_file(S("%s/.codex/config.toml", root),
               S("[mcp_servers.cortex]\ncommand = %s\nargs = ['--workspace', '/elsewhere']\n", toml_str(cortexd)));
    CHECK_CONTAINS(problem_of(CX_AGENT_CODEX, &w, "mcp-config", NULL), "serves the workspace /elsewhere");
    write_file(S("%s/.codex/config.toml", root), "[mcp_servers.cortex]\ncommand = 1\n");
    CHECK_CONTAINS(problem_of(CX_AGENT_CODEX, &w, "mcp-config", NULL), "command in [mcp_servers.cortex]");
    write_file(S("%s/.codex/config.toml", root),
               S("[mcp_servers.cortex]\ncommand = %s\nargs = ['--workspace', 1]\n", toml_str(cortexd)));
    CHECK_CONTAINS(problem_of(CX_AGENT_CODEX, &w, "mcp-config", NULL), "not an array of strings");

    /* claude: hooks */
    json_decref(wire(CX_AGENT_CLAUDE, root));
    CX_CHECK_STR(problem_of(CX_AGENT_CLAUDE, &w, "mcp-config", NULL), "");
    CX_CHECK_STR(problem_of(CX_AGENT_CLAUDE, &w, "hooks", NULL), "");
    write_file(S("%s/.claude/settings.json", root), "{\"hooks\": {}}");
    CHECK_CONTAINS(problem_of(CX_AGENT_CLAUDE, &w, "hooks", &fix), "no cortex SessionStart hook");
    CX_CHECK_STR(fix, "run: cortex start --agent claude");
    write_file(S("%s/.claude/settings.json", root), "{}");
    CHECK_CONTAINS(problem_of(CX_AGENT_CLAUDE, &w, "hooks", NULL), "no cortex SessionStart hook");
    write_file(S("%s/.claude/settings.json", root),
               S("{\"hooks\": {\"SessionStart\": [{\"hooks\": []}, {\"hooks\": [{\"type\": \"command\", \"command\": \"%s\"}]}]}}",
                 "/usr/bin/cortex hook session-start"));
    CHECK_CONTAINS(problem_of(CX_AGENT_CLAUDE, &w, "hooks", NULL),
                   S("the SessionStart hook runs /usr/bin/cortex, not %s", cortex));
    json_decref(wire(CX_AGENT_CLAUDE, root));
    CX_CHECK_STR(problem_of(CX_AGENT_CLAUDE, &w, "hooks", NULL), "");
    /* a Stop hook lost */
    json_t *set = load_json(S("%s/.claude/settings.json", root));
    json_object_del(json_object_get(set, "hooks"), "Stop");
    json_dump_file(set, S("%s/.claude/settings.json", root), 0);
    json_decref(set);
    CHECK_CONTAINS(problem_of(CX_AGENT_CLAUDE, &w, "hooks", NULL), "no cortex Stop hook");
    cx_agent_wiring wc = {.root = root, .cortexd = cortexd, .cortex = S("%s/nowhere/cortex", tmp)};
    CX_CHECK_OK(cx_agent_wire(CX_AGENT_CLAUDE, &wc, &rep));
    json_decref(rep);
    CHECK_CONTAINS(problem_of(CX_AGENT_CLAUDE, &wc, "hooks", NULL), "missing or not an executable file");
    CHECK_CONTAINS(problem_of(CX_AGENT_CLAUDE, &w, "hooks", NULL), "nowhere/cortex, not");
    write_file(S("%s/.mcp.json", root), "{\"mcpServers\": {\"cortex\": {\"type\": \"http\", \"url\": \"http://x\"}}}");
    CHECK_CONTAINS(problem_of(CX_AGENT_CLAUDE, &w, "mcp-config", NULL), "not \"stdio\"");
}

/* ---- the Python validator can fail ------------------------------------------------------------ */

static void test_checker_fails(void) {
    char *root = new_ws("checker"), *before = new_ws("checker before");
    json_decref(wire(CX_AGENT_CURSOR, root));
    /* the wrong binary */
    CX_CHECK_INT(run((const char *const[]){python, checker, root, "/wrong/cortexd", cortex, "cursor", NULL}), 1);
    /* something that was there before is gone */
    write_file(S("%s/.cursor/mcp.json", before), "{\"theme\": \"dark\", \"mcpServers\": {}}");
    CX_CHECK_INT(run_checker(root, before, "cursor"), 1);
    /* a duplicate cortex hook */
    json_decref(wire(CX_AGENT_CLAUDE, root));
    CX_CHECK_INT(run_checker(root, NULL, "claude"), 0);
    json_t *set = load_json(S("%s/.claude/settings.json", root));
    json_t *stop = json_object_get(json_object_get(set, "hooks"), "Stop");
    json_array_append(stop, json_array_get(stop, 0));
    json_dump_file(set, S("%s/.claude/settings.json", root), 0);
    json_decref(set);
    CX_CHECK_INT(run_checker(root, NULL, "claude"), 1);
    /* TOML the real parser refuses */
    write_file(S("%s/.codex/config.toml", root), "[mcp_servers.cortex]\ncommand = \"x\"\ncommand = \"y\"\n");
    CX_CHECK_INT(run_checker(root, NULL, "codex"), 1);
}

/* ---- TOML ------------------------------------------------------------------------------------- */

static int corpus(const char *sub, bool want_valid) {
    char *dir = S("%s/%s", fixtures, sub);
    DIR *d = opendir(dir);
    CX_CHECK(d != NULL);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 6 || strcmp(de->d_name + len - 5, ".toml") != 0)
            continue;
        char *text = NULL;
        size_t tl = 0;
        CX_CHECK_OK(cx_fs_read_file(S("%s/%s", dir, de->d_name), 1 << 20, &text, &tl));
        cx_toml_error e;
        int r = cx_toml_validate(text, tl, &e);
        bool ok = want_valid ? r == 0 : r == CX_EINVAL && e.line >= 1 && e.column >= 1 && e.message[0];
        cx_test_report(ok, __FILE__, __LINE__, S("%s/%s classified as %s", sub, de->d_name, sub),
                       r ? S("line %d, column %d: %s", e.line, e.column, e.message) : "valid");
        free(text);
        n++;
    }
    closedir(d);
    return n;
}

static void test_toml_corpus(void) {
    CX_CHECK(corpus("valid", true) >= 15);
    CX_CHECK(corpus("invalid", false) >= 15);
    /* and the fixtures are what the real parser says they are */
    static const char script[] =
        "import sys, tomllib, pathlib\n"
        "bad = 0\n"
        "for p in sorted(pathlib.Path(sys.argv[1]).glob('*/*.toml')):\n"
        "    try:\n"
        "        tomllib.loads(p.read_bytes().decode('utf-8', 'strict')); ok = True\n"
        "    except (tomllib.TOMLDecodeError, UnicodeDecodeError):\n"
        "        ok = False\n"
        "    if ok != (p.parent.name == 'valid'):\n"
        "        print('tomllib disagrees:', p); bad = 1\n"
        "sys.exit(bad)\n";
    CX_CHECK_INT(run((const char *const[]){python, "-c", script, fixtures, NULL}), 0);
}

static int validate(const char *doc, cx_toml_error *e) {
    return cx_toml_validate(doc, strlen(doc), e);
}

static void test_toml_api(void) {
    cx_toml_error e;
    /* line and column, in characters */
    CX_CHECK_INT(validate("a = 1\nb = \"x\ny\"\n", &e), CX_EINVAL);
    CX_CHECK_INT(e.line, 2);
    CX_CHECK_INT(e.column, 5);
    CHECK_CONTAINS(e.message, "unterminated string");
    CX_CHECK_INT(validate("\"é\" = 1 x\n", &e), CX_EINVAL);
    CX_CHECK_INT(e.line, 1);
    CX_CHECK_INT(e.column, 9);
    CX_CHECK_INT(validate("a = 1\r\nb = 2\r\nc = \"\\q\"\r\n", &e), CX_EINVAL);
    CX_CHECK_INT(e.line, 3);
    CX_CHECK_INT(e.column, 6);
    CHECK_CONTAINS(e.message, "invalid escape");
    CX_CHECK_INT(validate("[a]\nx=1\n[b]\n[a]\n", &e), CX_EINVAL);
    CX_CHECK_INT(e.line, 4);
    CHECK_CONTAINS(e.message, "table [a] is defined twice");
    CX_CHECK_INT(cx_toml_validate("a = 1\0", 6, &e), CX_EINVAL); /* NUL is a control character */
    CX_CHECK_INT(validate("a = 1\n", NULL), 0);
    CX_CHECK_INT(validate("a = 1 = 2\n", NULL), CX_EINVAL);

    /* 64-bit integers: the range is enforced */
    CX_CHECK_INT(validate("a = 9223372036854775807\nb = -9223372036854775808\nc = 0x7fff_ffff_ffff_ffff\n", &e), 0);
    CX_CHECK_INT(validate("a = 9223372036854775808\n", &e), CX_EINVAL);
    CHECK_CONTAINS(e.message, "64 bits");
    CX_CHECK_INT(validate("a = -9223372036854775809\n", &e), CX_EINVAL);
    CX_CHECK_INT(validate("a = 0x8000000000000000\n", &e), CX_EINVAL);
    CX_CHECK_INT(validate("a = 0b" "11111111111111111111111111111111111111111111111111111111111111111\n", &e), CX_EINVAL);
    CX_CHECK_INT(validate("a = 1979-05-27T07:32:60Z\n", &e), 0); /* a leap second */
    CX_CHECK_INT(validate("a = 1900-02-29\n", &e), CX_EINVAL);

    /* nesting is capped, without running out of stack */
    char deep[2 * 300 + 16];
    size_t o = 0;
    memcpy(deep, "a = ", 4);
    o = 4;
    for (int j = 0; j < 300; j++)
        deep[o++] = '[';
    for (int j = 0; j < 300; j++)
        deep[o++] = ']';
    deep[o] = '\0';
    CX_CHECK_INT(validate(deep, &e), CX_EINVAL);
    CHECK_CONTAINS(e.message, "nested");
    CX_CHECK_INT(validate("a = [[[[[[[[[[[[[[[[[[[[{b = [[[{}]]]}]]]]]]]]]]]]]]]]]]]]\n", &e), 0);

    /* many keys stay fast, and duplicates among them are found */
    size_t cap = 60000 * 24;
    char *big = malloc(cap);
    size_t n = 0;
    for (int j = 0; j < 50000; j++)
        n += (size_t)snprintf(big + n, cap - n, "k%d = %d\n", j, j);
    CX_CHECK_INT(cx_toml_validate(big, n, &e), 0);
    n += (size_t)snprintf(big + n, cap - n, "k%d = 1\n", 4711);
    CX_CHECK_INT(cx_toml_validate(big, n, &e), CX_EINVAL);
    CX_CHECK_INT(e.line, 50001);
    free(big);

    /* the table, its range and its keys */
    static const char *const path[] = {"mcp_servers", "cortex"};
    const char *doc =
        "top = 1\n"
        "[mcp_servers.docs]\n"
        "command = \"npx\"\n"
        "  [ mcp_servers . \"cortex\" ] # the one\n"
        "command = 'C:\\bin'\n"
        "args = [\"--workspace\", '/w',\n  \"\\u00e9\"]\n"
        "env.A = \"b\"\n"
        "n = 1\n"
        "[mcp_servers.cortex.sub]\n"
        "x = 1\n"
        "[[mcp_servers.cortex.list]]\n"
        "[other]\n"
        "[mcp_servers.cortex.late]\n";
    cx_toml_table *t = NULL;
    CX_CHECK_OK(cx_toml_find(doc, strlen(doc), path, 2, &t, &e));
    if (t) {
        CX_CHECK_INT(cx_toml_table_form(t), CX_TOML_TABLE);
        CX_CHECK_STR(cx_toml_table_how(t), "");
        size_t s = 0, b = 0, en = 0;
        CX_CHECK(cx_toml_table_range(t, &s, &b, &en));
        CX_CHECK_INT(s, strstr(doc, "  [ mcp_servers") - doc);
        CX_CHECK_INT(b, strstr(doc, "command = 'C") - doc);
        CX_CHECK_INT(en, strstr(doc, "[other]") - doc);
        const char *cmd = NULL;
        CX_CHECK_OK(cx_toml_table_string(t, "command", &cmd));
        CX_CHECK_STR(cmd, "C:\\bin");
        const char *const *items = NULL;
        CX_CHECK_OK(cx_toml_table_strings(t, "args", &items, &n));
        CX_CHECK_INT(n, 3);
        if (n == 3) {
            CX_CHECK_STR(items[0], "--workspace");
            CX_CHECK_STR(items[1], "/w");
            CX_CHECK_STR(items[2], "é");
        }
        size_t ks = 0, ke = 0;
        CX_CHECK_OK(cx_toml_table_key_span(t, "args", &ks, &ke));
        CX_CHECK_INT(ks, strstr(doc, "args = [") - doc);
        CX_CHECK_INT(ke, strstr(doc, "env.A") - doc);
        CX_CHECK_INT(cx_toml_table_string(t, "args", &cmd), CX_EINVAL);
        CX_CHECK_INT(cx_toml_table_strings(t, "n", &items, &n), CX_EINVAL);
        CX_CHECK_INT(cx_toml_table_string(t, "env", &cmd), CX_EINVAL);
        CX_CHECK_INT(cx_toml_table_key_span(t, "env", &ks, &ke), CX_EINVAL);
        CX_CHECK_INT(cx_toml_table_key_span(t, "sub", &ks, &ke), CX_EINVAL);
        CX_CHECK_INT(cx_toml_table_key_span(t, "late", &ks, &ke), CX_EINVAL);
        CX_CHECK_INT(cx_toml_table_string(t, "missing", &cmd), CX_ENOTFOUND);
        cx_toml_table_free(t);
        t = NULL;
    }

    /* the forms */
    struct {
        const char *doc;
        cx_toml_form form;
        const char *how;
    } forms[] = {
        {"", CX_TOML_ABSENT, ""},
        {"[mcp_servers]\nx = 1\n", CX_TOML_ABSENT, ""},
        {"mcp_servers.other.command = 'x'\n", CX_TOML_ABSENT, ""},
        {"[mcp_servers.cortex]\n", CX_TOML_TABLE, ""},
        {"[mcp_servers.cortex.env]\n", CX_TOML_IMPLICIT, ""},
        {"[mcp_servers]\ncortex = {}\n", CX_TOML_OTHER, "an inline table (line 2)"},
        {"mcp_servers = {cortex = {}}\n", CX_TOML_OTHER, "mcp_servers, which is defined as an inline table (line 1)"},
        {"[mcp_servers]\ncortex.command = 'x'\n", CX_TOML_OTHER, "dotted keys (line 2)"},
        {"\nmcp_servers.cortex.args = []\n", CX_TOML_OTHER, "dotted keys (line 2)"},
        {"[[mcp_servers]]\n", CX_TOML_OTHER, "mcp_servers, which is defined as an array of tables (line 1)"},
        {"[[mcp_servers.cortex]]\n", CX_TOML_OTHER, "an array of tables (line 1)"},
        {"[mcp_servers]\ncortex = 'x'\n", CX_TOML_OTHER, "a value (line 2)"},
        {"[mcp_servers]\ncortex = ['x']\n", CX_TOML_OTHER, "an array (line 2)"},
    };
    for (size_t j = 0; j < sizeof forms / sizeof forms[0]; j++) {
        t = NULL;
        CX_CHECK_OK(cx_toml_find(forms[j].doc, strlen(forms[j].doc), path, 2, &t, &e));
        if (!t)
            continue;
        CX_CHECK_INT(cx_toml_table_form(t), forms[j].form);
        CX_CHECK_STR(cx_toml_table_how(t), forms[j].how);
        CX_CHECK(cx_toml_table_range(t, NULL, NULL, NULL) == (forms[j].form == CX_TOML_TABLE));
        cx_toml_table_free(t);
    }
    t = NULL;
    CX_CHECK_INT(cx_toml_find("[a\n", 3, path, 2, &t, &e), CX_EINVAL);
    CX_CHECK(t == NULL);

    /* quoting round-trips through the parser */
    const char *raw = "a\"b\\c\td\ne\x01\x7f é ✓";
    char *q = NULL;
    CX_CHECK_OK(cx_toml_quote(raw, strlen(raw), &q));
    CX_CHECK_STR(q, "\"a\\\"b\\\\c\\td\\ne\\u0001\\u007F é ✓\"");
    char *line = S("[mcp_servers.cortex]\ncommand = %s\n", q ? q : "");
    free(q);
    t = NULL;
    CX_CHECK_OK(cx_toml_find(line, strlen(line), path, 2, &t, &e));
    const char *back = NULL;
    if (t)
        CX_CHECK_OK(cx_toml_table_string(t, "command", &back));
    CX_CHECK_STR(back, raw);
    cx_toml_table_free(t);
    CX_CHECK_INT(cx_toml_quote("\xff", 1, &q), CX_EINVAL);
}


/* ---- the shared form, approval and trust ------------------------------------------------------ */

/* Puts the fake cortexd's directory (and only it) on PATH for the test. */
static void path_with_cortexd(bool on) {
    char *dir = S("%s", cortexd);
    *strrchr(dir, '/') = '\0';
    setenv("PATH", on ? S("%s:/usr/bin:/bin", dir) : "/usr/bin:/bin", 1);
}

static void test_shared(void) {
    char *root = new_ws("shared");
    path_with_cortexd(true);
    char *found = cx_agent_on_path("cortexd");
    CX_CHECK(found && strcmp(found, cortexd) == 0);
    free(found);
    CX_CHECK(cx_agent_on_path("no-such-program-here") == NULL);
    CX_CHECK(cx_agent_on_path("/bin/sh") == NULL); /* a path is not a name */

    /* an absolute entry first, with a key of the user's, then the shared form */
    json_decref(wire(CX_AGENT_GEMINI, root));
    cx_agent_wiring w = wiring(root);
    w.portable = true;
    for (int k = 0; k < CX_AGENT_COUNT; k++) {
        json_t *rep = NULL;
        CX_CHECK_OK(cx_agent_wire((cx_agent_kind)k, &w, &rep));
        json_decref(rep);
        json_t *out = NULL;
        CX_CHECK_OK(cx_agent_check((cx_agent_kind)k, &w, &out));
        json_t *c0 = json_array_get(json_object_get(out, "checks"), 0);
        CX_CHECK(json_is_true(json_object_get(c0, "ok")));
        json_decref(out);
        /* twice: unchanged */
        CX_CHECK_OK(cx_agent_wire((cx_agent_kind)k, &w, &rep));
        CX_CHECK_STR(action(rep, 0), "unchanged");
        json_decref(rep);
    }
    json_t *g = json_load_file(S("%s/.gemini/settings.json", root), 0, NULL);
    json_t *e = json_object_get(json_object_get(g, "mcpServers"), "cortex");
    CX_CHECK_STR(json_string_value(json_object_get(e, "command")), "cortexd");
    CX_CHECK_INT(json_array_size(json_object_get(e, "args")), 0);
    CX_CHECK(json_object_get(e, "cwd") == NULL); /* the absolute form's cwd went */
    json_decref(g);
    CX_CHECK_STR(slurp(S("%s/.codex/config.toml", root)), "[mcp_servers.cortex]\ncommand = \"cortexd\"\nargs = []\n");
    char *settings = slurp(S("%s/.claude/settings.json", root));
    /* cortex is on PATH beside cortexd: the hooks name it plainly */
    CX_CHECK(settings && strstr(settings, tmp) == NULL);
    CX_CHECK(settings && strstr(settings, "\"'cortex' hook session-start\"") != NULL);

    /* off PATH, the shared entries fail the check and say what to do */
    path_with_cortexd(false);
    json_t *out = NULL;
    CX_CHECK_OK(cx_agent_check(CX_AGENT_CURSOR, &w, &out));
    json_t *c0 = json_array_get(json_object_get(out, "checks"), 0);
    CX_CHECK(json_is_false(json_object_get(c0, "ok")));
    CX_CHECK(strstr(json_string_value(json_object_get(c0, "problem")), "not on PATH") != NULL);
    CX_CHECK(strstr(json_string_value(json_object_get(c0, "fix")), "bin dir/it's") != NULL);
    json_decref(out);
}

static const char *access_problem(cx_agent_kind k, const char *root) {
    json_t *c = NULL;
    if (cx_agent_check_access(k, root, &c) != 0 || !c)
        return "(no check)";
    const char *p = json_is_true(json_object_get(c, "ok")) ? NULL
                                                           : S("%s", json_string_value(json_object_get(c, "problem")));
    json_decref(c);
    return p;
}

static void test_access(void) {
    char *root = new_ws("access"), *home = S("%s/home %d", tmp, ++counter);
    CX_CHECK_OK(cx_fs_mkdir_p(home, 0755));
    setenv("HOME", home, 1);
    unsetenv("CODEX_HOME");
    unsetenv("GEMINI_CLI_TRUSTED_FOLDERS_PATH");
    unsetenv("GEMINI_CLI_TRUST_WORKSPACE");
    json_t *rep = NULL;

    /* claude: pending, approved (merged into the file), rejected, approved again */
    CX_CHECK(strstr(access_problem(CX_AGENT_CLAUDE, root), "pending approval") != NULL);
    write_file(S("%s/.claude/settings.local.json", root),
               "{\"permissions\": {\"allow\": [\"Bash(ls)\"]}, \"enabledMcpjsonServers\": [\"other\"]}\n");
    CX_CHECK_OK(cx_agent_grant(CX_AGENT_CLAUDE, root, &rep));
    CX_CHECK_STR(json_string_value(json_object_get(rep, "action")), "updated");
    json_decref(rep);
    json_t *doc = json_load_file(S("%s/.claude/settings.local.json", root), 0, NULL);
    json_t *want = json_pack("{s:{s:[s]}, s:[s,s]}", "permissions", "allow", "Bash(ls)", "enabledMcpjsonServers",
                             "other", "cortex");
    CX_CHECK(json_equal(doc, want));
    json_decref(doc);
    json_decref(want);
    CX_CHECK(access_problem(CX_AGENT_CLAUDE, root) == NULL);
    write_file(S("%s/.claude/settings.local.json", root), "{\"disabledMcpjsonServers\": [\"cortex\", \"x\"]}");
    CX_CHECK(strstr(access_problem(CX_AGENT_CLAUDE, root), "rejected") != NULL);
    CX_CHECK_OK(cx_agent_grant(CX_AGENT_CLAUDE, root, &rep));
    json_decref(rep);
    CX_CHECK(access_problem(CX_AGENT_CLAUDE, root) == NULL);
    CX_CHECK_OK(cx_agent_grant(CX_AGENT_CLAUDE, root, &rep));
    CX_CHECK_STR(json_string_value(json_object_get(rep, "action")), "unchanged");
    json_decref(rep);
    /* approval may also come from the user's own settings */
    char *root2 = new_ws("access-user");
    CX_CHECK(strstr(access_problem(CX_AGENT_CLAUDE, root2), "pending approval") != NULL);
    write_file(S("%s/.claude/settings.json", home), "{\"enableAllProjectMcpServers\": true}");
    CX_CHECK(access_problem(CX_AGENT_CLAUDE, root2) == NULL);
    unlink(S("%s/.claude/settings.json", home));

    /* gemini: no file, a parent's DO_NOT_TRUST, trusted by --trust, other rules kept */
    char *tf = S("%s/.gemini/trustedFolders.json", home);
    CX_CHECK(strstr(access_problem(CX_AGENT_GEMINI, root), "does not trust") != NULL);
    write_file(tf, S("{\"%s\": \"DO_NOT_TRUST\", \"/elsewhere\": \"TRUST_FOLDER\"}", tmp));
    CX_CHECK(strstr(access_problem(CX_AGENT_GEMINI, root), "DO_NOT_TRUST") != NULL);
    char *hint = cx_agent_grant_hint(CX_AGENT_GEMINI, root);
    CX_CHECK(hint && strstr(hint, "TRUST_FOLDER") && strstr(hint, tf));
    free(hint);
    CX_CHECK_OK(cx_agent_grant(CX_AGENT_GEMINI, root, &rep));
    json_decref(rep);
    CX_CHECK(access_problem(CX_AGENT_GEMINI, root) == NULL);
    doc = json_load_file(tf, 0, NULL);
    CX_CHECK_INT(json_object_size(doc), 3);
    CX_CHECK_STR(json_string_value(json_object_get(doc, root)), "TRUST_FOLDER");
    CX_CHECK_STR(json_string_value(json_object_get(doc, "/elsewhere")), "TRUST_FOLDER");
    json_decref(doc);
    /* a TRUST_PARENT rule on a sibling trusts it too; a file that is not JSON is refused */
    write_file(tf, S("{\"%s/sibling\": \"TRUST_PARENT\"}", tmp));
    CX_CHECK(access_problem(CX_AGENT_GEMINI, root) == NULL);
    write_file(S("%s/.gemini/settings.json", home), "{\"security\": {\"folderTrust\": {\"enabled\": false}}}");
    write_file(tf, "{}");
    CX_CHECK(access_problem(CX_AGENT_GEMINI, root) == NULL); /* folder trust turned off */
    unlink(S("%s/.gemini/settings.json", home));
    write_file(tf, "{ // comment\n}");
    CX_CHECK(access_problem(CX_AGENT_GEMINI, root) != NULL);
    CX_CHECK_INT(cx_agent_grant(CX_AGENT_GEMINI, root, &rep), CX_EINVAL);
    CX_CHECK_STR(slurp(tf), "{ // comment\n}");
    unlink(tf);
    CX_CHECK_OK(cx_agent_grant(CX_AGENT_GEMINI, root, &rep));
    CX_CHECK_STR(json_string_value(json_object_get(rep, "action")), "created");
    json_decref(rep);
    CX_CHECK_INT(mode_of(tf), 0600);

    /* codex: every byte of the user's file kept, CRLF followed, a table
     * that says untrusted updated in place, CODEX_HOME honoured */
    char *cf = S("%s/.codex/config.toml", home);
    CX_CHECK(strstr(access_problem(CX_AGENT_CODEX, root), "does not trust") != NULL);
    char *mine = "# mine\r\nmodel = \"o3\" # keep\r\n\r\n[profiles.fast]\r\nmodel = \"x\"\r\n";
    write_file(cf, mine);
    CX_CHECK_OK(cx_agent_grant(CX_AGENT_CODEX, root, &rep));
    json_decref(rep);
    char *qroot = NULL;
    CX_CHECK_OK(cx_toml_quote(root, strlen(root), &qroot));
    CX_CHECK_STR(slurp(cf), S("%s\r\n[projects.%s]\r\ntrust_level = \"trusted\"\r\n", mine, qroot));
    CX_CHECK(access_problem(CX_AGENT_CODEX, root) == NULL);
    write_file(cf, S("[projects.%s]\ntrust_level = \"untrusted\" # was\nx = 1\n", qroot));
    CX_CHECK(strstr(access_problem(CX_AGENT_CODEX, root), "not \"trusted\"") != NULL);
    CX_CHECK_OK(cx_agent_grant(CX_AGENT_CODEX, root, &rep));
    json_decref(rep);
    CX_CHECK_STR(slurp(cf), S("[projects.%s]\ntrust_level = \"trusted\"\nx = 1\n", qroot));
    write_file(cf, "projects = 3\n");
    CX_CHECK_INT(cx_agent_grant(CX_AGENT_CODEX, root, &rep), CX_EINVAL);
    CX_CHECK_STR(slurp(cf), "projects = 3\n");
    setenv("CODEX_HOME", S("%s/codexhome", home), 1);
    CX_CHECK_OK(cx_agent_grant(CX_AGENT_CODEX, root, &rep));
    CX_CHECK_STR(json_string_value(json_object_get(rep, "path")), S("%s/codexhome/config.toml", home));
    json_decref(rep);
    CX_CHECK(access_problem(CX_AGENT_CODEX, root) == NULL);
    unsetenv("CODEX_HOME");
    free(qroot);

    /* cursor has no such step */
    json_t *c = (json_t *)1;
    CX_CHECK_OK(cx_agent_check_access(CX_AGENT_CURSOR, root, &c));
    CX_CHECK(c == NULL);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: test-agents FIXTURES_TOML_DIR PYTHON CHECK_AGENT_CONFIG_PY\n");
        return 2;
    }
    fixtures = argv[1];
    python = argv[2];
    checker = argv[3];
    umask(022);
    tmp = cx_test_tmpdir();
    if (!tmp)
        return 1;
    /* the binaries live where a path needs quoting for sh */
    cortexd = S("%s/bin dir/it's/cortexd", tmp);
    cortex = S("%s/bin dir/it's/cortex", tmp);
    write_file(cortexd, "#!/bin/sh\nexit 0\n");
    write_file(cortex, "#!/bin/sh\nexit 0\n");
    chmod(cortexd, 0755);
    chmod(cortex, 0755);

    test_names();
    test_empty();
    test_merge();
    test_twice();
    test_stale();
    test_refuse();
    test_check();
    test_checker_fails();
    test_toml_corpus();
    test_toml_api();
    test_shared();
    test_access();

    cx_test_rmrf(tmp);
    free(tmp);
    for (size_t j = 0; j < nowned; j++)
        free(owned[j]);
    free(owned);
    return cx_test_done();
}
