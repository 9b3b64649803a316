/* SPDX-License-Identifier: Apache-2.0 */
/* Secret redaction benchmark (src/redact): throughput over a deterministic
 * realistic corpus and a secret-dense one, latency per observation-sized
 * body, and the one-time rule compile. Prints figures and never asserts on
 * time; it fails (exit 1) only when an inserted secret survives redaction
 * or redaction returns an error.
 *
 *   bench-redact [--quick] [--size MIB] [--runs N] [--matches] [--write FILE]
 *
 * --matches lists every match in the realistic corpus with its context (to
 * look for false positives); --write saves the realistic corpus to FILE.
 *
 * The realistic corpus mixes source code (C, Python, Go, JS), service logs,
 * JSON API payloads, shell/env dumps and developer notes (bench/corpus.c),
 * all generated from a fixed seed, with about one made-up secret every
 * 20 KiB (tokens, keys, a password assignment, a connection URL, a JWT, a
 * PEM block). The text is full of near-misses: token_count, password
 * prompts, PWD=, URLs with ports, request ids, commit hashes. The dense
 * corpus has a secret about every 400 bytes, and a third one none at all
 * (the common case: nothing to replace, one pass, no copy). MB/s is 10^6
 * bytes a second. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "corpus.h"
#include "redact/redact.h"
#include "util/error.h"

#define SEED 20261122u

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("bench-redact: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* ---- A growing text ---------------------------------------------------- */

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

__attribute__((format(printf, 2, 3))) static void put(buf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            die("vsnprintf failed");
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = (b->cap + (size_t)n + 1) * 2;
        if (!(b->p = realloc(b->p, b->cap)))
            die("out of memory");
    }
}

/* ---- Generators --------------------------------------------------------- */

static const char *const words[] = {
    "cache",   "config",  "session", "user",    "order",   "invoice", "payment", "worker",
    "queue",   "search",  "index",   "report",  "upload",  "billing", "account", "project",
    "deploy",  "metrics", "router",  "handler", "client",  "server",  "request", "response",
    "token",   "auth",    "ledger",  "shard",   "replica", "schema",  "item",    "batch",
};
#define NWORDS (sizeof words / sizeof words[0])

static const char *word(bench_rng *r) { return words[bench_rng_below(r, NWORDS)]; }

static void rand_chars(bench_rng *r, char *out, size_t n, const char *alpha) {
    size_t k = strlen(alpha);
    for (size_t i = 0; i < n; i++)
        out[i] = alpha[bench_rng_below(r, (uint32_t)k)];
    out[n] = 0;
}

#define B62 "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
#define HEX "0123456789abcdef"
#define B64 B62 "+/"
#define B64U B62 "_-"

static void code_block(bench_rng *r, buf *b) {
    int lines = 8 + (int)bench_rng_below(r, 24);
    for (int i = 0; i < lines; i++) {
        const char *a = word(r), *c = word(r);
        switch (bench_rng_below(r, 16)) {
        case 0: put(b, "    if (%s_%s == NULL)\n        return -1;\n", a, c); break;
        case 1: put(b, "def get_%s(self, %s_id, token=None):\n", a, c); break;
        case 2: put(b, "    token = self.%s.get_token(%s_id)\n", a, c); break;
        case 3: put(b, "    password = os.environ.get(\"%s_PASSWORD\")\n", a); break;
        case 4: put(b, "const %sRes = await fetch(`${baseUrl}/api/%s`, { headers });\n", a, c); break;
        case 5: put(b, "    for (size_t i = 0; i < %s->n_%s; i++) {\n", a, c); break;
        case 6: put(b, "import { %sClient } from './%s/%s';\n", a, c, a); break;
        case 7: put(b, "func (s *%sStore) Load%s(ctx context.Context, key string) error {\n", a, c); break;
        case 8: put(b, "// TODO(%s): rotate the %s secret when the key expires\n", a, c); break;
        case 9: put(b, "    api_key = settings.%s_API_KEY\n", a); break;
        case 10: put(b, "    return jsonify({\"status\": \"ok\", \"count\": %u})\n", bench_rng_below(r, 9999)); break;
        case 11: put(b, "#include \"%s/%s.h\"\n", a, c); break;
        case 12: put(b, "    log.Printf(\"refreshing token for %%s after %%dms\", %s, elapsed)\n", a); break;
        case 13: put(b, "    if password != confirm_password:\n        raise ValueError(\"passwords differ\")\n"); break;
        case 14: put(b, "    %s_token_count += len(tokenizer.encode(%s))\n", a, c); break;
        default: put(b, "    %s := New%s(cfg.%s, time.Second*%u)\n", a, c, c, bench_rng_below(r, 60)); break;
        }
    }
    put(b, "\n");
}

static void log_block(bench_rng *r, buf *b) {
    int lines = 10 + (int)bench_rng_below(r, 30);
    for (int i = 0; i < lines; i++) {
        char id[37], sha[41];
        rand_chars(r, sha, 40, HEX);
        rand_chars(r, id, 36, HEX);
        id[8] = id[13] = id[18] = id[23] = '-';
        unsigned m = bench_rng_below(r, 60), s = bench_rng_below(r, 60), ms = bench_rng_below(r, 1000);
        const char *a = word(r), *c = word(r);
        switch (bench_rng_below(r, 7)) {
        case 0:
            put(b, "2026-11-22T10:%02u:%02u.%03uZ INFO  [%s] GET /api/v1/%s?page=%u 200 %ums request_id=%s\n",
                m, s, ms, a, c, bench_rng_below(r, 50), bench_rng_below(r, 900), id);
            break;
        case 1:
            put(b, "2026-11-22T10:%02u:%02u.%03uZ WARN  [%s] retrying https://%s.internal:%u/%s (attempt %u)\n",
                m, s, ms, a, c, 8000 + bench_rng_below(r, 999), a, 1 + bench_rng_below(r, 5));
            break;
        case 2:
            put(b, "2026-11-22T10:%02u:%02u.%03uZ ERROR [%s] connection to postgres://%s-db:5432/%s refused\n",
                m, s, ms, a, c, a);
            break;
        case 3:
            put(b, "2026-11-22T10:%02u:%02u.%03uZ DEBUG token refresh scheduled in %us for session %s\n",
                m, s, ms, bench_rng_below(r, 3600), id);
            break;
        case 4:
            put(b, "2026-11-22T10:%02u:%02u.%03uZ INFO  commit %s deployed to %s-%u\n", m, s, ms, sha, a,
                bench_rng_below(r, 9));
            break;
        case 5:
            put(b, "%s.go:%u: %s: password authentication failed for user \"%s\"\n", a,
                bench_rng_below(r, 900), c, a);
            break;
        default:
            put(b, "[%s] POST https://api.%s.io/v2/%s -> 201 (%u bytes, %ums)\n", a, c, a,
                bench_rng_below(r, 99999), bench_rng_below(r, 500));
            break;
        }
    }
}

static void json_block(bench_rng *r, buf *b) {
    int items = 2 + (int)bench_rng_below(r, 6);
    put(b, "{\"data\": [");
    for (int i = 0; i < items; i++) {
        char sha[41];
        rand_chars(r, sha, 40, HEX);
        put(b, "%s{\"id\": %u, \"name\": \"%s-%s\", \"url\": \"https://%s.example.org/%s/%u\", "
               "\"created_at\": \"2026-11-%02uT%02u:00:00Z\", \"token_count\": %u, \"tags\": [\"%s\", \"%s\"], "
               "\"sha\": \"%s\", \"password_set\": true, \"secret_ref\": \"vault:%s/%s\"}",
            i ? ", " : "", bench_rng_below(r, 1000000), word(r), word(r), word(r), word(r),
            bench_rng_below(r, 999), 1 + bench_rng_below(r, 28), bench_rng_below(r, 24),
            bench_rng_below(r, 100000), word(r), word(r), sha, word(r), word(r));
    }
    put(b, "], \"next\": null}\n");
}

static void env_block(bench_rng *r, buf *b) {
    const char *u = word(r), *p = word(r);
    put(b, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/home/%s/.cargo/bin\n"
           "HOME=/home/%s\nPWD=/home/%s/src/%s\nOLDPWD=/home/%s\nSHELL=/bin/bash\nLANG=en_US.UTF-8\n"
           "TERM=xterm-256color\nUSER=%s\nHOSTNAME=%s-%u\nNODE_ENV=production\nLOG_LEVEL=info\n"
           "npm_config_cache=/home/%s/.npm\nXDG_RUNTIME_DIR=/run/user/1000\n"
           "SSH_AUTH_SOCK=/tmp/ssh-XXXXk2/agent.%u\nKUBECONFIG=/home/%s/.kube/config\n"
           "DB_HOST=%s-db.internal\nDB_PASSWORD_FILE=/run/secrets/db_password\nAWS_REGION=eu-west-1\n"
           "GIT_ASKPASS=/usr/lib/git-core/git-gui--askpass\nMAX_TOKENS=4096\n\n",
        u, u, u, p, u, u, p, bench_rng_below(r, 99), u, bench_rng_below(r, 99999), u, p);
}

static void note_block(const bench_corpus *c, bench_rng *r, buf *b, uint64_t index) {
    bench_item it;
    bench_corpus_item(c, BENCH_STREAM_POPULATE, index, &it);
    put(b, "%s\n\n", it.text);
    (void)r;
}

/* Inserts one made-up secret in a plausible setting; records the secret. */
static void secret(bench_rng *r, buf *b, char *out, size_t cap) {
    char s[512], t[128];
    switch (bench_rng_below(r, 12)) {
    case 0:
        rand_chars(r, t, 36, B62);
        snprintf(s, sizeof s, "ghp_%s", t);
        put(b, "export GITHUB_TOKEN=%s\n", s);
        break;
    case 1:
        rand_chars(r, t, 16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
        snprintf(s, sizeof s, "AKIA%s", t);
        put(b, "aws_access_key_id = %s\n", s);
        break;
    case 2:
        rand_chars(r, t, 40, B64);
        snprintf(s, sizeof s, "%s", t);
        put(b, "aws_secret_access_key = %s\n", s);
        break;
    case 3:
        rand_chars(r, t, 14, B62 "!#%");
        snprintf(s, sizeof s, "%s9", t);
        put(b, "    \"password\": \"%s\",\n", s);
        break;
    case 4:
        rand_chars(r, t, 18, B62);
        snprintf(s, sizeof s, "%s", t);
        put(b, "DATABASE_URL=postgres://app:%s@db.internal:5432/app\n", s);
        break;
    case 5: {
        char sig[44];
        rand_chars(r, t, 24, B64U);
        rand_chars(r, sig, 43, B64U);
        snprintf(s, sizeof s, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOi%s.%s", t, sig);
        put(b, "Authorization: Bearer %s\n", s);
        break;
    }
    case 6:
        rand_chars(r, t, 24, B62);
        snprintf(s, sizeof s, "xoxb-%u%u-%u%u-%s", 1000000 + bench_rng_below(r, 8999999),
                 100000 + bench_rng_below(r, 899999), 1000000 + bench_rng_below(r, 8999999),
                 100000 + bench_rng_below(r, 899999), t);
        put(b, "SLACK_BOT_TOKEN=%s\n", s);
        break;
    case 7:
        rand_chars(r, t, 99, B62);
        snprintf(s, sizeof s, "sk_live_%s", t);
        put(b, "stripe.api_key = \"%s\"\n", s);
        break;
    case 8: {
        size_t n = 0;
        n += (size_t)snprintf(s + n, sizeof s - n, "-----BEGIN OPENSSH PRIVATE KEY-----\n");
        for (int i = 0; i < 5; i++) {
            rand_chars(r, t, 70, B64);
            n += (size_t)snprintf(s + n, sizeof s - n, "%s\n", t);
        }
        snprintf(s + n, sizeof s - n, "-----END OPENSSH PRIVATE KEY-----");
        put(b, "%s\n", s);
        break;
    }
    case 9:
        rand_chars(r, t, 32, B62);
        snprintf(s, sizeof s, "%s", t);
        put(b, "SECRET_KEY=%s\n", s);
        break;
    case 10:
        rand_chars(r, t, 93, B64U);
        snprintf(s, sizeof s, "sk-ant-api03-%sAA", t);
        put(b, "ANTHROPIC_API_KEY=%s\n", s);
        break;
    default:
        rand_chars(r, t, 20, B64U);
        snprintf(s, sizeof s, "glpat-%s", t);
        put(b, "git push https://oauth2:%s@gitlab.com/acme/app.git\n", s);
        break;
    }
    snprintf(out, cap, "%s", s);
}

typedef struct corpus {
    buf text;
    char **secrets;
    size_t *offsets; /* where each secret is in text */
    size_t nsecrets;
} corpus;

static void build(corpus *c, const bench_corpus *notes, size_t size, size_t every, uint64_t stream) {
    bench_rng r;
    bench_rng_seed(&r, SEED, stream, 0);
    memset(c, 0, sizeof *c);
    size_t next_secret = every / 2, cap = 0;
    uint64_t note = 0;
    while (c->text.len < size) {
        switch (bench_rng_below(&r, 5)) {
        case 0: code_block(&r, &c->text); break;
        case 1: log_block(&r, &c->text); break;
        case 2: json_block(&r, &c->text); break;
        case 3: if (bench_rng_below(&r, 4) == 0) env_block(&r, &c->text); else log_block(&r, &c->text); break;
        default:
            for (int i = 0; i < 4; i++)
                note_block(notes, &r, &c->text, note++);
            break;
        }
        while (c->text.len >= next_secret) {
            if (c->nsecrets == cap) {
                cap = cap ? cap * 2 : 256;
                if (!(c->secrets = realloc(c->secrets, cap * sizeof *c->secrets)) ||
                    !(c->offsets = realloc(c->offsets, cap * sizeof *c->offsets)))
                    die("out of memory");
            }
            char s[512];
            size_t before = c->text.len;
            secret(&r, &c->text, s, sizeof s);
            const char *at = memmem(c->text.p + before, c->text.len - before, s, strlen(s));
            if (!at)
                die("a secret is not where it was put");
            c->offsets[c->nsecrets] = (size_t)(at - c->text.p);
            if (!(c->secrets[c->nsecrets++] = strdup(s)))
                die("out of memory");
            next_secret += every / 2 + bench_rng_below(&r, (uint32_t)every);
        }
    }
}

static void corpus_free(corpus *c) {
    for (size_t i = 0; i < c->nsecrets; i++)
        free(c->secrets[i]);
    free(c->secrets);
    free(c->offsets);
    free(c->text.p);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Redacts the whole corpus `runs` times; prints MB/s; checks the secrets. */
static int throughput(const char *name, const corpus *c, int runs) {
    double *t = calloc((size_t)runs, sizeof *t);
    char *out = NULL;
    size_t out_len = 0;
    cx_redact_report rep = {0};
    for (int i = 0; i < runs; i++) {
        free(out);
        out = NULL;
        memset(&rep, 0, sizeof rep);
        double t0 = now_ms();
        int rc = cx_redact_text(c->text.p, c->text.len, &out, &out_len, &rep);
        t[i] = now_ms() - t0;
        if (rc < 0)
            die("redaction failed: %s", cx_error_last());
    }
    qsort(t, (size_t)runs, sizeof *t, cmp_double);
    double mb = (double)c->text.len / 1e6;
    printf("redact throughput (%s): %.1f MB/s (median of %d, best %.1f; %.1f MB, %zu secrets inserted, "
           "%zu matches)\n",
           name, mb / (t[runs / 2] / 1e3), runs, mb / (t[0] / 1e3), mb, c->nsecrets, rep.total);
    free(out);
    free(t);

    /* Every inserted secret is (at least partly) inside a match. Matches
     * are sorted and do not overlap; so are the secrets. */
    cx_redact_match *m = NULL;
    size_t n = 0, k = 0;
    if (cx_redact_find(c->text.p, c->text.len, &m, &n) != 0)
        die("redaction failed: %s", cx_error_last());
    int bad = 0;
    for (size_t i = 0; i < c->nsecrets; i++) {
        size_t s = c->offsets[i], e = s + strlen(c->secrets[i]);
        while (k < n && m[k].end <= s)
            k++;
        if (k == n || m[k].start >= e) {
            fprintf(stderr, "bench-redact: a secret survived (%s corpus): %.60s\n", name, c->secrets[i]);
            bad = 1;
        }
    }
    free(m);
    return bad;
}

/* Times single observation-sized bodies cut from the corpus. */
static void per_observation(const corpus *c, size_t body, int samples) {
    bench_rng r;
    bench_rng_seed(&r, SEED, 9, body);
    double *t = calloc((size_t)samples, sizeof *t);
    for (int i = 0; i < samples; i++) {
        size_t at = (size_t)(bench_rng_unit(&r) * (double)(c->text.len - body));
        char *out = NULL;
        double t0 = now_ms();
        int rc = cx_redact_text(c->text.p + at, body, &out, NULL, NULL);
        t[i] = (now_ms() - t0) * 1e3;
        if (rc < 0)
            die("redaction failed: %s", cx_error_last());
        free(out);
    }
    qsort(t, (size_t)samples, sizeof *t, cmp_double);
    char label[32];
    if (body % 1024 == 0)
        snprintf(label, sizeof label, "%zu KiB", body / 1024);
    else
        snprintf(label, sizeof label, "%zu B", body);
    printf("redact per observation (%s body): p50 %.2f µs, p99 %.2f µs (%d bodies)\n", label,
           t[samples / 2], t[(size_t)samples * 99 / 100], samples);
    free(t);
}

/* --matches: every match in the realistic corpus with its rule, to look
 * for false positives (the corpus's secrets are known). */
static void show_matches(const corpus *c) {
    cx_redact_match *m = NULL;
    size_t n = 0;
    if (cx_redact_find(c->text.p, c->text.len, &m, &n) != 0)
        die("redaction failed: %s", cx_error_last());
    for (size_t i = 0; i < n; i++) {
        size_t from = m[i].start > 40 ? m[i].start - 40 : 0;
        size_t to = m[i].end + 20 < c->text.len ? m[i].end + 20 : c->text.len;
        printf("%-24s ", cx_redact_rule_id(m[i].rule));
        for (size_t k = from; k < to; k++) {
            if (k == m[i].start)
                fputs("[[", stdout);
            if (k == m[i].end)
                fputs("]]", stdout);
            if (c->text.p[k] == '\n')
                fputs("\\n", stdout);
            else
                putchar(c->text.p[k]);
        }
        putchar('\n');
    }
    free(m);
}

int main(int argc, char **argv) {
    size_t size_mib = 32;
    int runs = 5, samples = 20000;
    bool quick = false, matches = false;
    const char *write_to = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = true;
        } else if (strcmp(argv[i], "--matches") == 0) {
            matches = true;
        } else if (strcmp(argv[i], "--write") == 0 && i + 1 < argc) {
            write_to = argv[++i];
        } else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc) {
            size_mib = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            runs = (int)strtol(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: bench-redact [--quick] [--size MIB] [--runs N] [--matches] [--write FILE]\n");
            return 2;
        }
    }
    if (quick) {
        size_mib = 1;
        runs = 1;
        samples = 500;
    }
    if (size_mib == 0 || runs < 1)
        die("--size and --runs must be positive");

    /* First thing in the process: the compile is measured on its own. */
    double t0 = now_ms();
    if (cx_redact_init() != 0)
        die("rules: %s", cx_error_last());
    double compile = now_ms() - t0;

    bench_corpus *notes = bench_corpus_new(SEED);
    if (!notes)
        die("out of memory");
    corpus real, dense, clean;
    build(&real, notes, size_mib << 20, 20 << 10, 1);
    build(&dense, notes, (size_mib << 20) / 4, 400, 2);
    build(&clean, notes, (size_mib << 20) / 4, SIZE_MAX / 4, 3);

    if (write_to) {
        FILE *f = fopen(write_to, "wb");
        if (!f || fwrite(real.text.p, 1, real.text.len, f) != real.text.len || fclose(f) != 0)
            die("cannot write %s", write_to);
    }
    if (matches) {
        show_matches(&real);
        corpus_free(&real);
        corpus_free(&dense);
        corpus_free(&clean);
        bench_corpus_free(notes);
        return 0;
    }
    printf("# cortex redact bench: %zu rules, realistic corpus %zu bytes (1 secret / ~20 KiB), "
           "dense corpus %zu bytes (1 secret / ~400 B), corpus without secrets %zu bytes\n",
           cx_redact_rule_count(), real.text.len, dense.text.len, clean.text.len);
    printf("rule compile (once per process): %.2f ms\n", compile);
    int bad = throughput("realistic", &real, runs);
    bad |= throughput("dense", &dense, runs);
    bad |= throughput("no secrets", &clean, runs);
    per_observation(&real, 500, samples);
    per_observation(&real, 4096, samples / 4);
    corpus_free(&real);
    corpus_free(&dense);
    corpus_free(&clean);
    bench_corpus_free(notes);
    return bad;
}
