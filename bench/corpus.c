/* SPDX-License-Identifier: Apache-2.0 */
#include "corpus.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- PRNG ---------------------------------------------------------------- */

uint64_t bench_rng_next(bench_rng *r) {
    uint64_t z = (r->s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

void bench_rng_seed(bench_rng *r, uint64_t seed, uint64_t stream, uint64_t index) {
    r->s = seed;
    r->s ^= bench_rng_next(r) + stream * UINT64_C(0xD1B54A32D192ED03);
    r->s ^= bench_rng_next(r) + index * UINT64_C(0x8CB92BA72F3D8DD7);
    (void)bench_rng_next(r);
}

uint32_t bench_rng_below(bench_rng *r, uint32_t n) {
    return (uint32_t)(((bench_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

double bench_rng_unit(bench_rng *r) {
    return (double)(bench_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

static bool chance(bench_rng *r, double p) {
    return bench_rng_unit(r) < p;
}

/* ---- vocabulary ------------------------------------------------------------ */

/* Roughly in order of how often developers write them: the Zipf draw favours
 * the front of each list. */
static const char *const nouns[] = {
    "cache",       "config",      "request",    "test",       "build",      "session",
    "token",       "file",        "error",      "server",     "client",     "query",
    "index",       "handler",     "worker",     "queue",      "connection", "timeout",
    "user",        "service",     "database",   "schema",     "migration",  "response",
    "buffer",      "lock",        "thread",     "process",    "path",       "version",
    "release",     "branch",      "commit",     "table",      "column",     "record",
    "field",       "value",       "event",      "message",    "log",        "logger",
    "metric",      "trace",       "span",       "endpoint",   "route",      "router",
    "controller",  "model",       "view",       "component",  "state",      "store",
    "hook",        "context",     "provider",   "module",     "package",    "plugin",
    "dependency",  "lockfile",    "manifest",   "artifact",   "image",      "container",
    "pod",         "node",        "cluster",    "namespace",  "secret",     "key",
    "certificate", "account",     "role",       "permission", "policy",     "tenant",
    "team",        "project",     "workspace",  "repo",       "pipeline",   "runner",
    "job",         "task",        "scheduler",  "cron",       "timer",      "clock",
    "timestamp",   "date",        "locale",     "string",     "bytes",      "blob",
    "chunk",       "block",       "segment",    "offset",     "length",     "size",
    "capacity",    "memory",      "heap",       "stack",      "frame",      "pointer",
    "reference",   "allocator",   "arena",      "leak",       "snapshot",   "backup",
    "replica",     "shard",       "partition",  "leader",     "follower",   "heartbeat",
    "probe",       "deploy",      "rollout",    "rollback",   "canary",     "flag",
    "feature",     "experiment",  "env",        "variable",   "setting",    "option",
    "argument",    "parameter",   "default",    "fallback",   "ttl",        "eviction",
    "hash",        "checksum",    "digest",     "signature",  "nonce",      "password",
    "login",       "auth",        "oauth",      "jwt",        "scope",      "grant",
    "invoice",     "payment",     "order",      "cart",       "checkout",   "product",
    "catalog",     "inventory",   "shipment",   "customer",   "email",      "notification",
    "webhook",     "upload",      "download",   "thumbnail",  "search",     "ranking",
    "embedding",   "vector",      "tokenizer",  "compiler",   "linker",     "loader",
    "runtime",     "interpreter", "sandbox",    "fixture",    "mock",       "stub",
    "assertion",   "benchmark",   "coverage",   "lint",       "formatter",  "agent",
    "registry",    "mirror",      "parser",     "lexer",      "encoder",    "decoder",
    "serializer",  "codec",       "format",     "template",   "renderer",   "widget",
    "button",      "form",        "modal",      "reducer",    "action",     "effect",
    "entity",      "struct",      "enum",       "interface",  "trait",      "macro",
    "function",    "method",      "callback",   "promise",    "future",     "pool",
    "socket",      "pipe",        "stream",     "channel",    "topic",      "subscriber",
    "publisher",   "consumer",    "producer",   "offset",     "watermark",  "checkpoint",
    "cursor",      "page",        "batch",      "payload",    "header",     "cookie",
    "proxy",       "gateway",     "daemon",     "signal",     "retry",      "backoff",
    "limit",       "quota",       "budget",     "counter",    "gauge",      "histogram",
    "directory",   "volume",      "mount",      "driver",     "adapter",    "extension",
    "descriptor",  "inode",       "symlink",    "permission", "umask",      "locale",
    "timezone",    "charset",     "encoding",   "escape",     "regex",      "glob",
    "pattern",     "matcher",     "diff",       "patch",      "hunk",       "conflict",
    "rebase",      "merge",       "stash",      "submodule",  "hook",       "tag",
    "annotation",  "decorator",   "generator",  "iterator",   "closure",    "lambda",
    "coroutine",   "semaphore",   "mutex",      "condvar",    "barrier",    "atomic",
    "fence",       "epoch",       "generation", "tombstone",  "outbox",     "inbox",
    "ledger",      "journal",     "wal",        "fsync",      "compaction", "vacuum",
    "statistics",  "planner",     "optimizer",  "join",       "subquery",   "transaction",
    "isolation",   "deadlock",    "savepoint",  "trigger",    "view",       "sequence",
    "constraint",  "foreign",     "primary",    "unique",     "nullable",   "bitmap",
    "bloom",       "filter",      "sketch",     "sampler",    "profiler",   "flamegraph",
};

static const char *const verbs[] = {
    "parse",      "load",     "save",     "fetch",      "send",      "handle",    "validate",
    "build",      "update",   "create",   "delete",     "read",      "write",     "open",
    "close",      "init",     "start",    "stop",       "get",       "set",       "resolve",
    "render",     "compile",  "deploy",   "migrate",    "retry",     "flush",     "sync",
    "merge",      "split",    "encode",   "decode",     "serialize", "allocate",  "free",
    "insert",     "select",   "scan",     "sort",       "filter",    "map",       "reduce",
    "emit",       "dispatch", "schedule", "cancel",     "spawn",     "kill",      "wait",
    "acquire",    "release",  "refresh",  "rotate",     "sign",      "verify",    "hash",
    "encrypt",    "decrypt",  "compress", "decompress", "upload",    "download",  "index",
    "query",      "rank",     "evict",    "invalidate", "register",  "subscribe", "publish",
    "notify",     "shutdown", "restart",  "reload",     "watch",     "poll",      "connect",
    "disconnect", "bind",     "listen",   "accept",     "normalize", "apply",     "commit",
    "rollback",   "checkout", "prune",    "compact",    "vacuum",    "reindex",   "backfill",
    "throttle",   "debounce", "memoize",  "hydrate",    "dehydrate", "marshal",   "unmarshal",
    "clone",      "copy",     "move",     "rename",     "truncate",  "pad",       "trim",
    "escape",     "quote",    "tokenize", "stem",       "embed",     "score",     "batch",
    "enqueue",    "dequeue",  "drain",    "replay",     "snapshot",  "restore",
};

static const char *const adjectives[] = {
    "stale",     "flaky",     "slow",      "broken",    "missing",   "duplicate",  "empty",
    "invalid",   "expired",   "corrupted", "truncated", "blocking",  "async",      "concurrent",
    "partial",   "large",     "nested",    "optional",  "required",  "deprecated", "legacy",
    "unused",    "cached",    "dirty",     "idle",      "pending",   "failed",     "orphaned",
    "recursive", "unbounded", "global",    "local",     "remote",    "shared",     "private",
    "default",   "custom",    "internal",  "external",  "temporary", "persistent", "lazy",
    "eager",     "strict",    "loose",     "hot",       "cold",      "warm",       "raw",
    "encoded",   "signed",
};

static const char *const exts[] = {
    "c",    "h",    "go",  "py",   "ts", "tsx", "rs",    "js", "java",  "rb",
    "yaml", "json", "sql", "toml", "md", "sh",  "proto", "kt", "swift", "cc",
};

static const char *const top_dirs[] = {
    "src",        "lib",    "internal",          "pkg",    "services",        "cmd",   "app",
    "web/src",    "tests",  "scripts",           "deploy", "infra/terraform", "tools", "docs",
    "migrations", "config", ".github/workflows",
};

static const char *const subcortices[] = {
    "general", "build", "ci",      "deploy", "database", "auth-service", "frontend", "search",
    "billing", "infra", "testing", "perf",   "api",      "mobile",       "security",
};

static const char *const tagset[] = {
    "bug", "gotcha",   "fix",        "flaky",     "perf",  "workaround", "config",
    "ci",  "security", "regression", "migration", "docs",  "todo",       "timeout",
    "oom", "memory",   "race",       "windows",   "macos", "linux",
};

static const char *const tools_versions[] = {
    "gcc 13.2",      "clang 17",    "node 20.11",  "python 3.12", "go 1.22",
    "rustc 1.78",    "postgres 15", "redis 7.2",   "docker 24.0", "kubectl 1.29",
    "terraform 1.7", "nginx 1.25",  "sqlite 3.45", "openssl 3.0", "cmake 3.28",
    "meson 1.3",     "java 21",     "pnpm 8.15",   "bazel 7.0",   "envoy 1.29",
};

static const char *const platforms[] = {
    "Ubuntu 22.04", "Debian 12",     "macOS 14 (arm64)",    "Alpine 3.19",    "WSL2",
    "Fedora 39",    "the CI runner", "the staging cluster", "prod-eu-west-1", "a fresh clone",
};

static const char *const ci_systems[] = {
    "GitHub Actions", "GitLab CI", "Buildkite", "Jenkins", "CircleCI",
};

/* Error message templates: %I identifier, %P path, %N number, %W noun, %H host. */
static const char *const errors[] = {
    "segmentation fault (core dumped)",
    "undefined reference to `%I'",
    "TypeError: Cannot read properties of undefined (reading '%I')",
    "database is locked",
    "connect ECONNREFUSED 127.0.0.1:%N",
    "permission denied: %P",
    "No such file or directory: %P",
    "timeout after %Nms waiting for %W",
    "assertion `%I != NULL' failed",
    "KeyError: '%I'",
    "panic: runtime error: index out of range [%N] with length %N",
    "OOMKilled (exit code 137)",
    "error[E0502]: cannot borrow `%I` as mutable because it is also borrowed as immutable",
    "fatal: not a git repository (or any of the parent directories): .git",
    "ModuleNotFoundError: No module named '%I'",
    "java.lang.NullPointerException at %I",
    "error: implicit declaration of function '%I'",
    "SSL certificate problem: unable to get local issuer certificate",
    "context deadline exceeded",
    "too many open files",
    "duplicate key value violates unique constraint \"%I_key\"",
    "relation \"%I\" does not exist",
    "ERR_REQUIRE_ESM: require() of ES Module %P not supported",
    "Address already in use (port %N)",
    "429 Too Many Requests from %H",
    "502 Bad Gateway from %H",
    "deadlock detected while acquiring %W lock",
    "double free or corruption (fasttop)",
    "heap-use-after-free in %I",
    "stack overflow in %I",
    "invalid memory address or nil pointer dereference",
    "expected %I to equal %N but got %N",
    "unexpected end of JSON input",
    "certificate has expired for %H",
    "disk quota exceeded on %P",
    "lock wait timeout exceeded; try restarting transaction",
    "cannot find symbol %I",
    "Killed: 9",
    "warning: unused variable '%I' [-Wunused-variable]",
    "cannot allocate memory (%N bytes)",
};

/* What a note did about it. */
static const char *const fixes[] = {
    "pin %T in the lockfile",      "set %E before starting",
    "bump the %W timeout to %Ns",  "call %I before %I",
    "run `make clean` first",      "clear the %W cache",
    "retry with backoff",          "use a fresh %W per request",
    "move %I out of the hot loop", "add an index on %I",
    "drop the %W and rebuild it",  "increase the pool size to %N",
    "disable %W in tests",         "check the return value of %I",
    "guard %I with a mutex",       "rerun the migration",
    "free the %W in %I",           "split the %W into batches of %N",
    "regenerate the fixtures",     "pass --no-cache to the build",
    "restart the %W worker",       "revert the %W change",
};

/* ---- generated project-specific names --------------------------------------- */

static const char *const onsets[] = {
    "b", "br", "c",  "ch", "d", "dr", "f",  "fl", "g", "gr", "h", "j", "k", "kr", "l",  "m",
    "n", "p",  "pl", "qu", "r", "s",  "sk", "st", "t", "tr", "v", "w", "z", "sh", "th", "bl",
};
static const char *const vowels[] = {"a", "e", "i", "o", "u", "ai", "ea", "io", "ou", "y"};
static const char *const codas[] = {"", "n", "r", "x", "l", "s", "nd", "st", "k", "m", "rt", "sh"};

#define N_PSEUDO 3000
#define PSEUDO_LEN 16

struct bench_corpus {
    uint64_t seed;
    char pseudo[N_PSEUDO][PSEUDO_LEN];
    /* Zipf cumulative tables, one per list */
    double *cdf_nouns, *cdf_verbs, *cdf_adj, *cdf_pseudo, *cdf_errors, *cdf_fixes;
};

static double *zipf_table(size_t n, double s) {
    double *cdf = malloc(n * sizeof *cdf);
    if (!cdf)
        return NULL;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        sum += 1.0 / pow((double)i + 2.7, s);
        cdf[i] = sum;
    }
    for (size_t i = 0; i < n; i++)
        cdf[i] /= sum;
    return cdf;
}

static size_t zipf_draw(const double *cdf, size_t n, bench_rng *r) {
    double u = bench_rng_unit(r);
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void syllables(bench_rng *r, char *out, size_t cap, int n, bool miss) {
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        const char *o = onsets[bench_rng_below(r, N_ELEMS(onsets))];
        const char *v = vowels[bench_rng_below(r, N_ELEMS(vowels))];
        const char *k = codas[bench_rng_below(r, N_ELEMS(codas))];
        int w = snprintf(out + len, cap - len, "%s%s%s", o, v, k);
        if (w < 0 || (size_t)w >= cap - len)
            break;
        len += (size_t)w;
    }
    if (miss) {
        /* "qz"/"xq" never come out of the syllable tables above. */
        int w = snprintf(out + len, cap - len, "%s", (len & 1) ? "qz" : "xq");
        (void)w;
    }
}

bench_corpus *bench_corpus_new(uint64_t seed) {
    bench_corpus *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->seed = seed;
    bench_rng r;
    bench_rng_seed(&r, seed, 0, 0);
    for (size_t i = 0; i < N_PSEUDO; i++)
        syllables(&r, c->pseudo[i], PSEUDO_LEN, 2 + (int)bench_rng_below(&r, 2), false);
    c->cdf_nouns = zipf_table(N_ELEMS(nouns), 1.0);
    c->cdf_verbs = zipf_table(N_ELEMS(verbs), 1.0);
    c->cdf_adj = zipf_table(N_ELEMS(adjectives), 0.9);
    c->cdf_pseudo = zipf_table(N_PSEUDO, 1.05);
    c->cdf_errors = zipf_table(N_ELEMS(errors), 0.8);
    c->cdf_fixes = zipf_table(N_ELEMS(fixes), 0.8);
    if (!c->cdf_nouns || !c->cdf_verbs || !c->cdf_adj || !c->cdf_pseudo || !c->cdf_errors ||
        !c->cdf_fixes) {
        bench_corpus_free(c);
        return NULL;
    }
    return c;
}

void bench_corpus_free(bench_corpus *c) {
    if (!c)
        return;
    free(c->cdf_nouns);
    free(c->cdf_verbs);
    free(c->cdf_adj);
    free(c->cdf_pseudo);
    free(c->cdf_errors);
    free(c->cdf_fixes);
    free(c);
}

/* ---- a bounded string builder ---------------------------------------------- */

typedef struct sb {
    char *p;
    size_t cap, len;
} sb;

__attribute__((format(printf, 2, 3))) static void sb_printf(sb *b, const char *fmt, ...) {
    if (b->len + 1 >= b->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (w < 0)
        return;
    b->len += (size_t)w;
    if (b->len >= b->cap)
        b->len = b->cap - 1;
}

static void sb_puts(sb *b, const char *s) {
    sb_printf(b, "%s", s);
}

/* ---- parts of speech --------------------------------------------------------- */

#define NOUN(c, r) nouns[zipf_draw((c)->cdf_nouns, N_ELEMS(nouns), r)]
#define VERB(c, r) verbs[zipf_draw((c)->cdf_verbs, N_ELEMS(verbs), r)]
#define ADJ(c, r) adjectives[zipf_draw((c)->cdf_adj, N_ELEMS(adjectives), r)]
#define PSEUDO(c, r) (c)->pseudo[zipf_draw((c)->cdf_pseudo, N_PSEUDO, r)]
#define PICK(list, r) list[bench_rng_below(r, N_ELEMS(list))]

static void put_cap(sb *b, const char *w) {
    if (!w[0])
        return;
    char first = w[0];
    if (first >= 'a' && first <= 'z')
        first = (char)(first - 'a' + 'A');
    sb_printf(b, "%c%s", first, w + 1);
}

static void put_upper(sb *b, const char *w) {
    for (const char *p = w; *p; p++) {
        char ch = *p;
        if (ch >= 'a' && ch <= 'z')
            ch = (char)(ch - 'a' + 'A');
        else if (ch == '-')
            ch = '_';
        sb_printf(b, "%c", ch);
    }
}

/* A word for an identifier: mostly developer words, sometimes a project name. */
static const char *ident_word(const bench_corpus *c, bench_rng *r) {
    return chance(r, 0.25) ? PSEUDO(c, r) : NOUN(c, r);
}

static void put_identifier(const bench_corpus *c, bench_rng *r, sb *b) {
    switch (bench_rng_below(r, 6)) {
    case 0: /* camelCase function */
    case 1:
        sb_puts(b, VERB(c, r));
        put_cap(b, ident_word(c, r));
        if (chance(r, 0.4))
            put_cap(b, NOUN(c, r));
        break;
    case 2: /* snake_case */
        sb_printf(b, "%s_%s", ident_word(c, r), NOUN(c, r));
        if (chance(r, 0.3))
            sb_printf(b, "_%s", chance(r, 0.5) ? "ms" : NOUN(c, r));
        break;
    case 3: /* PascalCase type */
        put_cap(b, ident_word(c, r));
        put_cap(b, NOUN(c, r));
        break;
    case 4: /* CONSTANT */
        put_upper(b, chance(r, 0.5) ? "max" : ADJ(c, r));
        sb_puts(b, "_");
        put_upper(b, NOUN(c, r));
        if (chance(r, 0.5)) {
            sb_puts(b, "_");
            put_upper(b, NOUN(c, r));
        }
        break;
    default: /* module.function */
        sb_printf(b, "%s.%s", ident_word(c, r), VERB(c, r));
        put_cap(b, NOUN(c, r));
        break;
    }
}

static void put_path(const bench_corpus *c, bench_rng *r, sb *b) {
    const char *top = PICK(top_dirs, r);
    const char *ext =
        exts[bench_rng_below(r, 8) < 6 ? bench_rng_below(r, 8) : bench_rng_below(r, N_ELEMS(exts))];
    sb_printf(b, "%s/", top);
    if (chance(r, 0.6))
        sb_printf(b, "%s/", chance(r, 0.5) ? PSEUDO(c, r) : NOUN(c, r));
    if (chance(r, 0.3))
        sb_printf(b, "%s/", NOUN(c, r));
    if (chance(r, 0.5))
        sb_printf(b, "%s_%s.%s", NOUN(c, r), NOUN(c, r), ext);
    else
        sb_printf(b, "%s.%s", chance(r, 0.3) ? PSEUDO(c, r) : NOUN(c, r), ext);
}

static void put_host(const bench_corpus *c, bench_rng *r, sb *b) {
    sb_printf(b, "%s-%s.internal", PSEUDO(c, r), NOUN(c, r));
}

static void put_envvar(const bench_corpus *c, bench_rng *r, sb *b) {
    put_upper(b, chance(r, 0.5) ? PSEUDO(c, r) : NOUN(c, r));
    sb_puts(b, "_");
    put_upper(b, NOUN(c, r));
    sb_printf(b, "_%s", chance(r, 0.5) ? "URL" : (chance(r, 0.5) ? "TIMEOUT" : "PATH"));
}

/* Expands %I %P %N %W %H %T %E in a template. */
static void put_template(const bench_corpus *c, bench_rng *r, sb *b, const char *t) {
    for (const char *p = t; *p; p++) {
        if (*p != '%' || !p[1]) {
            sb_printf(b, "%c", *p);
            continue;
        }
        p++;
        switch (*p) {
        case 'I': put_identifier(c, r, b); break;
        case 'P': put_path(c, r, b); break;
        case 'N': sb_printf(b, "%u", 1 + bench_rng_below(r, chance(r, 0.5) ? 100 : 65000)); break;
        case 'W': sb_puts(b, NOUN(c, r)); break;
        case 'H': put_host(c, r, b); break;
        case 'T': sb_puts(b, PICK(tools_versions, r)); break;
        case 'E': put_envvar(c, r, b); break;
        default: sb_printf(b, "%%%c", *p); break;
        }
    }
}

static void put_error(const bench_corpus *c, bench_rng *r, sb *b) {
    put_template(c, r, b, errors[zipf_draw(c->cdf_errors, N_ELEMS(errors), r)]);
}

static void put_fix(const bench_corpus *c, bench_rng *r, sb *b) {
    put_template(c, r, b, fixes[zipf_draw(c->cdf_fixes, N_ELEMS(fixes), r)]);
}

static void put_commit(bench_rng *r, sb *b) {
    sb_printf(b, "%07llx", (unsigned long long)(bench_rng_next(r) & 0xFFFFFFFULL));
}

/* The opening, saying what the note is about. */
static void put_lead(const bench_corpus *c, bench_rng *r, sb *b) {
    switch (bench_rng_below(r, 14)) {
    case 0:
        sb_puts(b, "`");
        put_path(c, r, b);
        sb_puts(b, "`: ");
        put_identifier(c, r, b);
        sb_printf(b, "() returns %s %s when the %s is %s; ", ADJ(c, r), NOUN(c, r), NOUN(c, r),
                  ADJ(c, r));
        put_fix(c, r, b);
        sb_puts(b, ".");
        break;
    case 1:
        sb_puts(b, "Build fails with `");
        put_error(c, r, b);
        sb_puts(b, "` in ");
        put_path(c, r, b);
        sb_printf(b, ":%u after bumping %s. Workaround: ", 1 + bench_rng_below(r, 900),
                  PICK(tools_versions, r));
        put_fix(c, r, b);
        sb_puts(b, ".");
        break;
    case 2:
        sb_puts(b, "Test ");
        sb_printf(b, "test_%s_%s_%s", VERB(c, r), ident_word(c, r), ADJ(c, r));
        sb_printf(b, " is flaky on %s: the %s %s is %s under load. Reproduce with --count=%u.",
                  PICK(ci_systems, r), NOUN(c, r), NOUN(c, r), ADJ(c, r),
                  10 + bench_rng_below(r, 200));
        break;
    case 3:
        sb_printf(b, "Deploy note for %s: ", chance(r, 0.5) ? PSEUDO(c, r) : PICK(subcortices, r));
        put_envvar(c, r, b);
        sb_printf(b, " must be set before the %s %s, otherwise the pods crash with `", NOUN(c, r),
                  VERB(c, r));
        put_error(c, r, b);
        sb_puts(b, "`.");
        break;
    case 4:
        sb_printf(b, "The %s %s uses ", PSEUDO(c, r), NOUN(c, r));
        put_identifier(c, r, b);
        sb_printf(b, " to cache %s %s; invalidate it in ", ADJ(c, r), NOUN(c, r));
        put_identifier(c, r, b);
        sb_printf(b, " whenever the %s changes.", NOUN(c, r));
        break;
    case 5:
        sb_puts(b, "Gotcha: ");
        put_identifier(c, r, b);
        sb_printf(b, " is not thread-safe; two %ss calling it at once corrupt the %s. ", NOUN(c, r),
                  NOUN(c, r));
        put_fix(c, r, b);
        sb_puts(b, ".");
        break;
    case 6:
        sb_puts(b, "Fixed `");
        put_error(c, r, b);
        sb_puts(b, "` in ");
        put_identifier(c, r, b);
        sb_puts(b, " (commit ");
        put_commit(r, b);
        sb_printf(b, "): the %s was %s because the %s %s ran first.", NOUN(c, r), ADJ(c, r),
                  NOUN(c, r), VERB(c, r));
        break;
    case 7:
        sb_printf(b, "To %s the %s locally: `make %s && ./scripts/%s_%s.sh --%s`. ", VERB(c, r),
                  NOUN(c, r), NOUN(c, r), VERB(c, r), NOUN(c, r), NOUN(c, r));
        sb_printf(b, "Needs %s and a %s %s.", PICK(tools_versions, r), ADJ(c, r), NOUN(c, r));
        break;
    case 8:
        sb_printf(b, "Migration %04u adds %s_%s to the %s table; ", 1 + bench_rng_below(r, 400),
                  NOUN(c, r), NOUN(c, r), NOUN(c, r));
        sb_printf(b, "backfill takes ~%u min on prod, run it before the %s rollout.",
                  1 + bench_rng_below(r, 90), PSEUDO(c, r));
        break;
    case 9:
        sb_puts(b, "Perf: ");
        put_identifier(c, r, b);
        sb_printf(b, " spends %u%% of its time in ", 10 + bench_rng_below(r, 85));
        put_identifier(c, r, b);
        sb_printf(b, "; the %s %s is %s. ", NOUN(c, r), NOUN(c, r), ADJ(c, r));
        put_fix(c, r, b);
        sb_puts(b, ".");
        break;
    case 10:
        sb_printf(b, "On %s, ", PICK(platforms, r));
        put_path(c, r, b);
        sb_puts(b, " fails to load: `");
        put_error(c, r, b);
        sb_puts(b, "`. ");
        put_fix(c, r, b);
        sb_puts(b, ".");
        break;
    case 11:
        sb_printf(b,
                  "API: POST /v%u/%s/%s returns %u when the %s is %s; clients should %s and "
                  "%s.",
                  1 + bench_rng_below(r, 3), NOUN(c, r), VERB(c, r), 400 + bench_rng_below(r, 30),
                  NOUN(c, r), ADJ(c, r), VERB(c, r), VERB(c, r));
        break;
    case 12:
        sb_printf(b, "The %s in ", NOUN(c, r));
        put_path(c, r, b);
        sb_puts(b, " is generated from ");
        put_path(c, r, b);
        sb_printf(b, "; never edit it by hand, run `%s %s` instead.", PSEUDO(c, r), VERB(c, r));
        break;
    default:
        sb_printf(b, "Code review: prefer ");
        put_identifier(c, r, b);
        sb_puts(b, " over ");
        put_identifier(c, r, b);
        sb_printf(b, " for %s %s; the old one %ss the %s twice.", ADJ(c, r), NOUN(c, r), VERB(c, r),
                  NOUN(c, r));
        break;
    }
}

/* Follow-up sentences, to reach the target length. */
static void put_filler(const bench_corpus *c, bench_rng *r, sb *b) {
    sb_puts(b, " ");
    switch (bench_rng_below(r, 9)) {
    case 0:
        sb_puts(b, "Also touched ");
        put_identifier(c, r, b);
        sb_puts(b, " in ");
        put_path(c, r, b);
        sb_puts(b, ".");
        break;
    case 1:
        sb_printf(b, "See %s-%u for context.", chance(r, 0.5) ? "PROJ" : "OPS",
                  100 + bench_rng_below(r, 9000));
        break;
    case 2:
        put_cap(b, ADJ(c, r));
        sb_printf(b, " %s %s after the %s change.", NOUN(c, r),
                  chance(r, 0.5) ? "is fine" : "breaks", PSEUDO(c, r));
        break;
    case 3:
        sb_printf(b, "Confirmed on %s with %s.", PICK(platforms, r), PICK(tools_versions, r));
        break;
    case 4:
        sb_printf(b, "Took %u minutes to find; the logs only showed `",
                  5 + bench_rng_below(r, 120));
        put_error(c, r, b);
        sb_puts(b, "`.");
        break;
    case 5:
        sb_printf(b, "The %s %s %s the %s on every %s.", ADJ(c, r), NOUN(c, r), VERB(c, r),
                  NOUN(c, r), NOUN(c, r));
        break;
    case 6:
        sb_puts(b, "Owner: ");
        sb_printf(b, "%s team, ask in #%s.", PSEUDO(c, r), PICK(subcortices, r));
        break;
    case 7:
        sb_puts(b, "Related: ");
        put_identifier(c, r, b);
        sb_puts(b, ", ");
        put_identifier(c, r, b);
        sb_puts(b, ".");
        break;
    default:
        sb_printf(b, "Do not %s the %s before %s is %s.", VERB(c, r), NOUN(c, r), NOUN(c, r),
                  ADJ(c, r));
        break;
    }
}

void bench_corpus_item(const bench_corpus *c, uint64_t stream, uint64_t index, bench_item *out) {
    bench_rng r;
    bench_rng_seed(&r, c->seed, stream, index);
    memset(out, 0, sizeof *out);

    sb b = {out->text, sizeof out->text, 0};
    size_t target = 150 + bench_rng_below(&r, 230);
    put_lead(c, &r, &b);
    while (b.len < target && b.len < 400)
        put_filler(c, &r, &b);
    if (b.len > 400) { /* cut at a word boundary */
        size_t cut = 400;
        while (cut > 200 && out->text[cut] != ' ')
            cut--;
        out->text[cut] = '\0';
    }

    if (chance(&r, 0.4)) {
        sb t = {out->title, sizeof out->title, 0};
        put_cap(&t, VERB(c, &r));
        sb_printf(&t, " %s %s", ADJ(c, &r), NOUN(c, &r));
        if (chance(&r, 0.5))
            sb_printf(&t, " in %s", chance(&r, 0.5) ? PSEUDO(c, &r) : NOUN(c, &r));
    }
    out->subcortex =
        subcortices[bench_rng_below(&r, 8) < 3 ? 0 : bench_rng_below(&r, N_ELEMS(subcortices))];
    out->ntags = bench_rng_below(&r, BENCH_MAX_ITEM_TAGS + 1);
    for (size_t i = 0; i < out->ntags; i++) {
        const char *t = PICK(tagset, &r);
        bool dup = false;
        for (size_t j = 0; j < i; j++)
            dup = dup || strcmp(out->tags[j], t) == 0;
        out->tags[i] = dup ? tagset[(i * 7) % N_ELEMS(tagset)] : t;
    }
    if (chance(&r, 0.3)) {
        out->nfiles = 1 + bench_rng_below(&r, BENCH_MAX_ITEM_FILES);
        for (size_t i = 0; i < out->nfiles; i++) {
            sb f = {out->files[i], sizeof out->files[i], 0};
            put_path(c, &r, &f);
        }
    }
}

bench_query_kind bench_corpus_query(const bench_corpus *c, uint64_t index, char *buf, size_t cap) {
    bench_rng r;
    bench_rng_seed(&r, c->seed, BENCH_STREAM_QUERY, index);
    sb b = {buf, cap, 0};
    buf[0] = '\0';
    uint32_t roll = bench_rng_below(&r, 100);
    if (roll < 30) {
        uint32_t k = bench_rng_below(&r, 10);
        sb_puts(&b, k < 5 ? NOUN(c, &r) : k < 7 ? VERB(c, &r) : k < 9 ? PSEUDO(c, &r) : ADJ(c, &r));
        return BENCH_Q_WORD1;
    }
    if (roll < 55) {
        switch (bench_rng_below(&r, 4)) {
        case 0: sb_printf(&b, "%s %s", NOUN(c, &r), NOUN(c, &r)); break;
        case 1: sb_printf(&b, "%s %s", VERB(c, &r), NOUN(c, &r)); break;
        case 2: sb_printf(&b, "%s %s", PSEUDO(c, &r), NOUN(c, &r)); break;
        default: sb_printf(&b, "%s %s", ADJ(c, &r), NOUN(c, &r)); break;
        }
        return BENCH_Q_WORD2;
    }
    if (roll < 72) {
        if (chance(&r, 0.4)) {
            /* the first three words of an error message */
            char tmp[256];
            sb e = {tmp, sizeof tmp, 0};
            put_error(c, &r, &e);
            int words = 0;
            for (const char *p = tmp; *p && words < 3; p++) {
                bool wordch = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                              (*p >= '0' && *p <= '9') || *p == '_';
                if (wordch) {
                    sb_printf(&b, "%c", *p);
                    if (!p[1] || !((p[1] >= 'a' && p[1] <= 'z') || (p[1] >= 'A' && p[1] <= 'Z') ||
                                   (p[1] >= '0' && p[1] <= '9') || p[1] == '_')) {
                        words++;
                        if (words < 3)
                            sb_puts(&b, " ");
                    }
                }
            }
            while (b.len > 0 && buf[b.len - 1] == ' ')
                buf[--b.len] = '\0';
        } else {
            sb_printf(&b, "%s %s %s", ADJ(c, &r), NOUN(c, &r), NOUN(c, &r));
        }
        return BENCH_Q_WORD3;
    }
    if (roll < 90) {
        if (chance(&r, 0.25))
            put_path(c, &r, &b);
        else
            put_identifier(c, &r, &b);
        return BENCH_Q_IDENTIFIER;
    }
    char miss[32];
    syllables(&r, miss, sizeof miss, 2, true);
    if (chance(&r, 0.5))
        sb_puts(&b, miss);
    else
        sb_printf(&b, "%s %s", miss, NOUN(c, &r)); /* a miss ANDed with a common word */
    return BENCH_Q_MISS;
}
