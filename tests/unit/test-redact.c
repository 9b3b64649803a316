/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for src/redact: every rule against its fixtures
 * (fixtures/redact/cases.json, the first argument), overlap resolution,
 * idempotence, reports, credential files, text detection, binary and large
 * inputs, concurrent use, and the decoded views (URL encoding, JSON
 * escapes, a key split over two lines: the "decoded" fixtures). */
#include "test.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "redact/redact.h"
#include "util/error.h"

/* A failing check with the text shown, for the table-driven cases. */
static void check_case(bool ok, const char *what, const char *rule, const char *text,
                       const char *out) {
    char detail[1024];
    snprintf(detail, sizeof detail, "rule %s\n  text: %.300s\n  out:  %.300s", rule, text,
             out ? out : "(unchanged)");
    cx_test_report(ok, __FILE__, __LINE__, what, ok ? NULL : detail);
}

static char *redact(const char *text) {
    char *out = NULL;
    int rc = cx_redact_text(text, strlen(text), &out, NULL, NULL);
    CX_CHECK_INT(rc, 0);
    return out;
}

static size_t rule_index(const char *id) {
    for (size_t r = 0; r < cx_redact_rule_count(); r++)
        if (strcmp(cx_redact_rule_id(r), id) == 0)
            return r;
    return SIZE_MAX;
}

static void test_rule_table(void) {
    size_t n = cx_redact_rule_count();
    CX_CHECK(n >= 45);
    CX_CHECK(n <= CX_REDACT_MAX_RULES);
    bool ok = true;
    for (size_t r = 0; r < n; r++) {
        const char *id = cx_redact_rule_id(r), *d = cx_redact_rule_description(r);
        if (!id || !*id || !d || !*d || strchr(d, '\n'))
            ok = false;
        for (const char *c = id; c && *c; c++)
            if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-'))
                ok = false;
        for (size_t q = 0; q < r; q++)
            if (strcmp(cx_redact_rule_id(q), id) == 0)
                ok = false;
    }
    CX_CHECK(ok);
    CX_CHECK(cx_redact_rule_id(n) == NULL);
    CX_CHECK(cx_redact_rule_description(n) == NULL);
    CX_CHECK_INT(cx_redact_init(), 0);
}

/* Every rule has fixtures and every fixture names a rule; each positive
 * loses its secret to that rule's marker and is stable; each negative is
 * left alone. */
static void test_fixtures(json_t *rules) {
    size_t n = cx_redact_rule_count();
    for (size_t r = 0; r < n; r++) {
        json_t *c = json_object_get(rules, cx_redact_rule_id(r));
        check_case(c != NULL, "the rule has fixtures", cx_redact_rule_id(r), "", NULL);
        check_case(json_array_size(json_object_get(c, "positive")) >= 3, ">= 3 positives",
                   cx_redact_rule_id(r), "", NULL);
        check_case(json_array_size(json_object_get(c, "negative")) >= 2, ">= 2 negatives",
                   cx_redact_rule_id(r), "", NULL);
    }
    const char *id;
    json_t *c;
    json_object_foreach(rules, id, c) {
        check_case(rule_index(id) != SIZE_MAX, "the fixture names a rule", id, "", NULL);
        char marker[128];
        snprintf(marker, sizeof marker, "%s%s]", CX_REDACT_PREFIX, id);
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(c, "positive"), i, p) {
            const char *text = json_string_value(json_object_get(p, "text"));
            const char *secret = json_string_value(json_object_get(p, "secret"));
            if (!text || !secret || !strstr(text, secret)) {
                check_case(false, "a positive has text containing its secret", id,
                           text ? text : "", NULL);
                continue;
            }
            char *out = redact(text);
            check_case(out && !strstr(out, secret), "the secret is gone", id, text, out);
            check_case(out && strstr(out, marker), "the rule's marker is there", id, text, out);
            if (out) {
                char *again = redact(out);
                check_case(again == NULL, "a redacted text redacts to itself", id, out, again);
                free(again);
            }
            free(out);
        }
        json_array_foreach(json_object_get(c, "negative"), i, p) {
            const char *text = json_string_value(p);
            char *out = redact(text ? text : "");
            check_case(text && out == NULL, "a negative is unchanged", id, text ? text : "", out);
            free(out);
        }
    }
}

/* All positives joined into one text (in fixture order, separated by blank
 * lines and noise): every secret goes, the matches are sorted and do not
 * overlap, and the report agrees with them. */
static char *join_positives(json_t *rules, size_t *nsecrets) {
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    const char *id;
    json_t *c;
    *nsecrets = 0;
    json_object_foreach(rules, id, c) {
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(c, "positive"), i, p) {
            const char *t = json_string_value(json_object_get(p, "text"));
            size_t n = strlen(t);
            if (len + n + 64 > cap) {
                cap = (len + n + 64) * 2;
                buf = realloc(buf, cap);
            }
            len += (size_t)snprintf(buf + len, cap - len, "%s\n\nnoise line %zu ok\n", t, *nsecrets);
            (*nsecrets)++;
        }
    }
    return buf;
}

static void test_find_and_report(json_t *rules) {
    size_t nsecrets;
    char *all = join_positives(rules, &nsecrets);
    size_t len = strlen(all);
    cx_redact_match *m = NULL;
    size_t n = 0;
    CX_CHECK_OK(cx_redact_find(all, len, &m, &n));
    CX_CHECK(n >= nsecrets);
    bool sorted = true;
    for (size_t i = 0; i < n; i++) {
        if (m[i].start >= m[i].end || m[i].end > len || m[i].rule >= cx_redact_rule_count())
            sorted = false;
        if (i && m[i - 1].end > m[i].start)
            sorted = false;
    }
    CX_CHECK(sorted);

    cx_redact_report rep = {0};
    char *out = NULL;
    size_t out_len = 0;
    CX_CHECK_OK(cx_redact_text(all, len, &out, &out_len, &rep));
    CX_CHECK(out && strlen(out) == out_len);
    CX_CHECK_INT(rep.total, n);
    unsigned sum = 0;
    for (size_t r = 0; r < CX_REDACT_MAX_RULES; r++)
        sum += rep.counts[r];
    CX_CHECK_INT(sum, rep.total);
    /* every secret is gone from the joined text */
    const char *id;
    json_t *c;
    bool gone = true;
    json_object_foreach(rules, id, c) {
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(c, "positive"), i, p) {
            const char *secret = json_string_value(json_object_get(p, "secret"));
            if (out && strstr(out, secret)) {
                gone = false;
                fprintf(stderr, "  still there (%s): %.80s\n", id, secret);
            }
        }
    }
    CX_CHECK(gone);
    /* a report accumulates */
    cx_redact_report twice = rep;
    char *out2 = NULL;
    CX_CHECK_OK(cx_redact_text(all, len, &out2, NULL, &twice));
    CX_CHECK_INT(twice.total, 2 * rep.total);
    CX_CHECK(out2 && out && strcmp(out, out2) == 0);
    free(out2);

    json_t *j = cx_redact_report_json(&rep);
    CX_CHECK(j != NULL);
    CX_CHECK_INT(json_integer_value(json_object_get(j, "count")), rep.total);
    json_t *ids = json_object_get(j, "rules");
    size_t fired = 0;
    for (size_t r = 0; r < CX_REDACT_MAX_RULES; r++)
        fired += rep.counts[r] != 0;
    CX_CHECK_INT(json_array_size(ids), fired);
    bool in_order = true;
    size_t last = 0;
    for (size_t i = 0; i < json_array_size(ids); i++) {
        size_t r = rule_index(json_string_value(json_array_get(ids, i)));
        if (r == SIZE_MAX || (i && r <= last) || rep.counts[r] == 0)
            in_order = false;
        last = r;
    }
    CX_CHECK(in_order);
    json_decref(j);
    cx_redact_report none = {0};
    CX_CHECK(cx_redact_report_json(&none) == NULL);
    CX_CHECK(cx_redact_report_json(NULL) == NULL);

    /* the redacted text has nothing left to find */
    cx_redact_match *m2 = NULL;
    size_t n2 = 99;
    CX_CHECK_OK(cx_redact_find(out, out_len, &m2, &n2));
    CX_CHECK_INT(n2, 0);
    CX_CHECK(m2 == NULL);
    free(out);
    free(m);
    free(all);
}

/* Overlaps: the earlier (more specific) rule wins, and only the secret of a
 * keyed rule is replaced. */
static void test_overlaps(void) {
    char text[512];
    snprintf(text, sizeof text, "token=ghp_%s and password=%s",
             "Q1w2E3r4T5y6U7i8O9p0A1s2D3f4G5h6J7k8", "zN4!qT8@wR2#");
    char *out = redact(text);
    CX_CHECK_STR(out, "token=[REDACTED:github-pat] and password=[REDACTED:generic-password]");
    free(out);

    const char *jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
                      "Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eA";
    snprintf(text, sizeof text, "Authorization: Bearer %s", jwt);
    out = redact(text);
    CX_CHECK_STR(out, "Authorization: Bearer [REDACTED:jwt]");
    free(out);

    cx_redact_match *m = NULL;
    size_t n = 0;
    CX_CHECK_OK(cx_redact_find(text, strlen(text), &m, &n));
    CX_CHECK_INT(n, 1);
    if (n == 1) {
        CX_CHECK_STR(cx_redact_rule_id(m[0].rule), "jwt");
        CX_CHECK_INT(m[0].start, strlen("Authorization: Bearer "));
        CX_CHECK_INT(m[0].end, strlen(text));
    }
    free(m);

    /* a private key block swallows what is inside it */
    out = redact("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAghp1234567890abcdefghijklmnopqrstuvwxyzAB\n"
                 "AKIA2345ABCDEFGHIJKL\n-----END RSA PRIVATE KEY-----\ntail");
    CX_CHECK_STR(out, "[REDACTED:private-key]\ntail");
    free(out);

    /* database URL: only the password */
    out = redact("DATABASE_URL=postgresql://svc:k8Zq2Wm9Lp4R@db:5432/app");
    CX_CHECK_STR(out, "DATABASE_URL=postgresql://svc:[REDACTED:database-url-password]@db:5432/app");
    free(out);

    /* a marker already there is left alone, also when a rule would see it
     * as a value */
    const char *marked = "password=[REDACTED:generic-password] url=https://u:[REDACTED:url-basic-auth]@h";
    out = redact(marked);
    CX_CHECK(out == NULL);
    free(out);
}

static void test_placeholders(void) {
    static const char *const same[] = {
        "AKIAIOSFODNN7EXAMPLE",
        "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "password=xxxxxxxxxxxx",
        "password: '<your password>'",
        "api_key=${API_KEY}",
        "api_key=$API_KEY_VALUE",
        "token: '{{ vault_token }}'",
        "password = '%s'",
        "password=changeme",
        "api_key: your-api-key",
        "TOKEN=your_token_here",
        "secret: example-secret-value-123",
        "password: dummy-password-123",
        "api_key: placeholder1234",
        "token: redacted-1234567",
        "password: ********",
        "GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "[REDACTED:github-pat]",
        "",
        NULL,
    };
    for (size_t i = 0; same[i]; i++) {
        char *out = redact(same[i]);
        check_case(out == NULL, "a placeholder is left alone", "-", same[i], out);
        free(out);
    }
}

static void test_string_and_empty(void) {
    char *s = strdup("export NPM_TOKEN=npm_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8 && npm publish");
    cx_redact_report rep = {0};
    CX_CHECK_OK(cx_redact_string(&s, &rep));
    CX_CHECK_STR(s, "export NPM_TOKEN=[REDACTED:npm-token] && npm publish");
    CX_CHECK_INT(rep.total, 1);
    CX_CHECK_INT(rep.counts[rule_index("npm-token")], 1);
    char *before = s;
    CX_CHECK_OK(cx_redact_string(&s, &rep));
    CX_CHECK(s == before); /* nothing matched: the same string */
    CX_CHECK_INT(rep.total, 1);
    free(s);

    char *out = (char *)1;
    size_t out_len = 7;
    CX_CHECK_OK(cx_redact_text("", 0, &out, &out_len, NULL));
    CX_CHECK(out == NULL);
    CX_CHECK_INT(out_len, 0);
    cx_redact_match *m = (cx_redact_match *)1;
    size_t n = 5;
    CX_CHECK_OK(cx_redact_find("plain text", 10, &m, &n));
    CX_CHECK(m == NULL);
    CX_CHECK_INT(n, 0);

    /* not NUL-terminated: only len bytes are read */
    const char buf[] = "key npm_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8";
    CX_CHECK_OK(cx_redact_text(buf, 4, &out, &out_len, NULL));
    CX_CHECK(out == NULL);
    CX_CHECK_INT(out_len, 4);
}

static void test_credential_files(void) {
    static const char *const yes[] = {
        "id_rsa", "/home/a/.ssh/id_ed25519", "id_ecdsa", "id_dsa", "id_ed25519_sk", "id_rsa_work",
        ".env", "app/.env.local", ".env.production", "deploy/prod.env", "release.jks",
        "keys/app.keystore", "cert.p12", "cert.pfx", ".npmrc", ".pypirc", ".netrc", "_netrc",
        ".git-credentials", "credentials", "/home/a/.aws/credentials", "credentials.json",
        "client_secret_1234.apps.googleusercontent.com.json", "server.key", "C:\\Users\\a\\.ssh\\id_rsa",
        ".pgpass", "putty.ppk", NULL,
    };
    for (size_t i = 0; yes[i]; i++)
        check_case(cx_redact_credential_file(yes[i], NULL, 0) != NULL, "a credential file name",
                   "-", yes[i], NULL);
    /* Public keys, docs, templates (.env.example is meant to be committed;
     * its text is redacted like any other), certificates by name alone. */
    static const char *const no[] = {
        "id_rsa.pub", "id_ed25519.pub", "README.md", "env.example", ".env.example",
        ".env.sample", ".env.template", "src/environment.c", "cert.pem", "keys.txt",
        "my_credentials_helper.c", "main.c", "", NULL,
    };
    for (size_t i = 0; no[i]; i++) {
        const char *why = cx_redact_credential_file(no[i], NULL, 0);
        check_case(why == NULL, "not a credential file name", "-", no[i], why);
    }

    const char *pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
                      "-----END OPENSSH PRIVATE KEY-----\n";
    CX_CHECK(cx_redact_credential_file(NULL, pem, strlen(pem)) != NULL);
    CX_CHECK(cx_redact_credential_file("cert.pem", pem, strlen(pem)) != NULL);
    CX_CHECK(cx_redact_credential_file("notes.txt", pem, strlen(pem)) != NULL);
    const char *pgp = "xx\n-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: GnuPG v2\n\n"
                      "lQOYBGVxT2sBCADL0m6dB9Hq3k2c+N1p/8wQ7bZx4YtK0sJq3vR5u1aLm9E\n";
    CX_CHECK(cx_redact_credential_file(NULL, pgp, strlen(pgp)) != NULL);
    /* a parser that names the header is not a key */
    const char *code = "_SK_START = b\"-----BEGIN OPENSSH PRIVATE KEY-----\"\n_SK_END = b\"-----END\"\n";
    CX_CHECK(cx_redact_credential_file("ssh.py", code, strlen(code)) == NULL);
    const char *cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    CX_CHECK(cx_redact_credential_file("cert.pem", cert, strlen(cert)) == NULL);
    const char *pub = "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n";
    CX_CHECK(cx_redact_credential_file("key.pem", pub, strlen(pub)) == NULL);
    /* a .key file whose content is known and not a key (a Keynote deck) */
    CX_CHECK(cx_redact_credential_file("talk.key", "PK\x03\x04", 4) == NULL);

    const unsigned char jks[] = {0xfe, 0xed, 0xfe, 0xed, 0x00, 0x00, 0x00, 0x02};
    const unsigned char jceks[] = {0xce, 0xce, 0xce, 0xce, 0x00, 0x00, 0x00, 0x02};
    CX_CHECK(cx_redact_credential_file("blob.bin", jks, sizeof jks) != NULL);
    CX_CHECK(cx_redact_credential_file(NULL, jceks, sizeof jceks) != NULL);
    /* PKCS#12: SEQUENCE { INTEGER 3, SEQUENCE { OID 1.2.840.113549.1.7.1 ... */
    const unsigned char p12[] = {0x30, 0x82, 0x0a, 0x1c, 0x02, 0x01, 0x03, 0x30, 0x82, 0x09,
                                 0xe2, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01,
                                 0x07, 0x01, 0xa0, 0x82};
    CX_CHECK(cx_redact_credential_file(NULL, p12, sizeof p12) != NULL);
    const unsigned char p12_short[] = {0x30, 0x80, 0x02, 0x01, 0x03, 0x30, 0x80, 0x06, 0x09, 0x2a,
                                       0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01};
    CX_CHECK(cx_redact_credential_file(NULL, p12_short, sizeof p12_short) != NULL);
    /* an X.509 certificate in DER is a SEQUENCE too, but not PKCS#12 */
    const unsigned char x509[] = {0x30, 0x82, 0x03, 0x1c, 0x30, 0x82, 0x02, 0x04, 0xa0, 0x03,
                                  0x02, 0x01, 0x02, 0x02, 0x09, 0x00};
    CX_CHECK(cx_redact_credential_file(NULL, x509, sizeof x509) == NULL);
    const unsigned char truncated[] = {0x30, 0x82, 0x0a};
    CX_CHECK(cx_redact_credential_file(NULL, truncated, sizeof truncated) == NULL);
    const char *plain = "just some text about PRIVATE KEY handling\n";
    CX_CHECK(cx_redact_credential_file("notes.md", plain, strlen(plain)) == NULL);
    CX_CHECK(cx_redact_credential_file(NULL, NULL, 0) == NULL);
}

static void test_is_text(void) {
    CX_CHECK(cx_redact_is_text("", 0));
    CX_CHECK(cx_redact_is_text("plain ASCII text, long enough for the word loop\n", 48));
    const char *utf8 = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 na\xc3\xafve and more ASCII after";
    CX_CHECK(cx_redact_is_text(utf8, strlen(utf8)));
    CX_CHECK(!cx_redact_is_text("abc\0def", 7));
    CX_CHECK(!cx_redact_is_text("0123456789abcdef\0", 17));
    CX_CHECK(!cx_redact_is_text("caf\xe9", 4));             /* Latin-1 */
    CX_CHECK(!cx_redact_is_text("\xc0\xaf", 2));            /* overlong */
    CX_CHECK(!cx_redact_is_text("\xed\xa0\x80", 3));        /* surrogate */
    CX_CHECK(!cx_redact_is_text("ok ok ok \xe2\x82", 11));  /* cut sequence */
    const unsigned char png[] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d};
    CX_CHECK(!cx_redact_is_text(png, sizeof png));
}

/* Arbitrary bytes: NULs, invalid UTF-8, secrets in between. Must not
 * crash, must still find the secrets, and must be stable. */
static void test_binary(void) {
    unsigned char buf[8192];
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < sizeof buf; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[i] = (unsigned char)x;
    }
    const char *secret = "glpat-Zr8Tq2Lm5Xw9Bn4Vc7Hd";
    memcpy(buf + 1000, " ", 1);
    memcpy(buf + 1001, secret, strlen(secret));
    memcpy(buf + 1001 + strlen(secret), "\0", 1);
    char *out = NULL;
    size_t out_len = 0;
    CX_CHECK_OK(cx_redact_text((const char *)buf, sizeof buf, &out, &out_len, NULL));
    CX_CHECK(out != NULL);
    CX_CHECK(out && memmem(out, out_len, secret, strlen(secret)) == NULL);
    CX_CHECK(out && memmem(out, out_len, "[REDACTED:gitlab-pat]", 21) != NULL);
    char *again = (char *)1;
    CX_CHECK_OK(cx_redact_text(out, out_len, &again, NULL, NULL));
    CX_CHECK(again == NULL);
    free(out);

    /* many random buffers with keyword fragments sprinkled in */
    static const char *const frags[] = {"password=", "-----BEGIN RSA PRIVATE KEY-----\n", "ghp_", "://",
                                        "AKIA", "eyJ", "Authorization: Bearer ", "sk-", "token: ",
                                        "[REDACTED:", "\\n", "@", ":AA", "-us", ".atlasv1.", NULL};
    bool stable = true;
    for (int round = 0; round < 300; round++) {
        size_t n = 64 + (size_t)(x % 2000);
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[i] = (x & 3) ? (unsigned char)(' ' + x % 90) : (unsigned char)(x >> 8);
            if ((x & 63) == 0) {
                const char *f = frags[(x >> 16) % 15];
                size_t fl = strlen(f);
                if (i + fl < n) {
                    memcpy(buf + i, f, fl);
                    i += fl - 1;
                }
            }
        }
        char *o1 = NULL, *o2 = NULL;
        size_t l1 = 0;
        if (cx_redact_text((const char *)buf, n, &o1, &l1, NULL) != 0) {
            stable = false;
            continue;
        }
        if (o1 && (cx_redact_text(o1, l1, &o2, NULL, NULL) != 0 || o2 != NULL))
            stable = false;
        free(o1);
        free(o2);
    }
    CX_CHECK(stable);
}

/* 4 MiB: ordinary text with a few secrets and one enormous key block. */
static void test_large(void) {
    size_t cap = 4u << 20, len = 0;
    char *big = malloc(cap + 1);
    const char *line = "2026-11-22T10:00:00Z INFO GET /api/v1/items?page=3 200 12ms user=42 "
                       "token_count=118 cache=hit\n";
    size_t ll = strlen(line), secrets = 0;
    while (len + ll + 200 < cap / 2) {
        memcpy(big + len, line, ll);
        len += ll;
        if (len % 100000 < ll) {
            len += (size_t)snprintf(big + len, cap - len,
                                    "export STRIPE_KEY=sk_live_%08zuAbCdEfGhIjKlMnOpQr\n", len);
            secrets++;
        }
    }
    len += (size_t)snprintf(big + len, cap - len, "-----BEGIN PRIVATE KEY-----\n");
    while (len + 80 < cap - 64) {
        memcpy(big + len, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n", 65);
        len += 65;
    }
    len += (size_t)snprintf(big + len, cap - len, "-----END PRIVATE KEY-----\n");
    big[len] = 0;
    char *out = NULL;
    size_t out_len = 0;
    cx_redact_report rep = {0};
    CX_CHECK_OK(cx_redact_text(big, len, &out, &out_len, &rep));
    CX_CHECK(out != NULL);
    CX_CHECK(out && !strstr(out, "sk_live_"));
    CX_CHECK(out && !strstr(out, "MIIEvQ"));
    CX_CHECK_INT(rep.counts[rule_index("stripe-secret-key")], secrets);
    CX_CHECK(rep.counts[rule_index("private-key")] >= 1);
    free(out);

    /* an unterminated key header repeated over megabytes stays linear */
    len = 0;
    const char *hdr = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAz8Wq\n";
    while (len + strlen(hdr) < cap) {
        memcpy(big + len, hdr, strlen(hdr));
        len += strlen(hdr);
    }
    CX_CHECK_OK(cx_redact_text(big, len, &out, &out_len, NULL));
    CX_CHECK(out && !strstr(out, "-----BEGIN"));
    free(out);
    free(big);
}

/* Four threads redacting at once agree with one thread. */
typedef struct job {
    const char *text;
    const char *want;
    int ok;
} job;

static void *worker(void *arg) {
    job *j = arg;
    j->ok = 1;
    for (int i = 0; i < 40; i++) {
        char *out = NULL;
        if (cx_redact_text(j->text, strlen(j->text), &out, NULL, NULL) != 0 || !out ||
            strcmp(out, j->want) != 0)
            j->ok = 0;
        free(out);
    }
    return NULL;
}

static void test_threads(json_t *rules) {
    size_t nsecrets;
    char *all = join_positives(rules, &nsecrets);
    char *want = redact(all);
    job jobs[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (job){.text = all, .want = want ? want : ""};
        CX_CHECK_INT(pthread_create(&t[i], NULL, worker, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CX_CHECK(jobs[i].ok);
    }
    free(want);
    free(all);
}

/* cx_redact_item: every text of an envelope, member names too, and none of
 * the members the envelope check holds to a strict form. */
static void test_item(void) {
    const char *key = "AKIA5NEHUOQIYE7OL66L";
    const char *ulid = "01JD3ZABCDEFGHJKMNPQRSTVWX";
    json_t *it = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:[s], s:s, s:[s, s], s:{s:s}, s:{s:s, s:s, s:s},"
        " s:[{s:s, s:s}], s:s}",
        "id", ulid, "kind", "observation", "status", "recorded", "title", key, "body",
        "nothing secret", "tags", key, "parent_id", ulid, "evidence", ulid, key, "provenance",
        "remote", key, "review", "decision", "approve", "at", "2026-12-07", "note", key,
        "versions", "sha256", "AKIA5NEHUOQIYE7OL66L", "source_path", key, key, "unknown");
    CX_CHECK(it != NULL);
    cx_redact_report rep = {0};
    CX_CHECK_OK(cx_redact_item(it, &rep));
    char *text = json_dumps(it, JSON_COMPACT);
    /* six texts and one member name: the key is nowhere but in sha256,
     * which the check holds to 64 hex digits (so it is never text) */
    CX_CHECK_INT(rep.total, 7);
    CX_CHECK_STR(json_string_value(json_object_get(it, "id")), ulid);
    CX_CHECK_STR(json_string_value(json_object_get(it, "parent_id")), ulid);
    CX_CHECK_STR(json_string_value(json_array_get(json_object_get(it, "evidence"), 0)), ulid);
    CX_CHECK(strncmp(json_string_value(json_array_get(json_object_get(it, "evidence"), 1)),
                     CX_REDACT_PREFIX, strlen(CX_REDACT_PREFIX)) == 0);
    CX_CHECK_STR(json_string_value(json_object_get(json_object_get(it, "review"), "decision")),
                 "approve");
    CX_CHECK_STR(json_string_value(json_object_get(it, "body")), "nothing secret");
    CX_CHECK(json_object_get(it, key) == NULL);
    const char *sha = json_string_value(
        json_object_get(json_array_get(json_object_get(it, "versions"), 0), "sha256"));
    CX_CHECK_STR(sha, key);
    /* apart from that one hash, the key appears nowhere */
    char *first = text ? strstr(text, key) : NULL;
    CX_CHECK(first != NULL && strstr(first + 1, key) == NULL);
    free(text);
    /* idempotent: a redacted item redacts to itself */
    cx_redact_report again = {0};
    CX_CHECK_OK(cx_redact_item(it, &again));
    CX_CHECK_INT(again.total, 0);
    json_decref(it);
    /* a bare string and an array through cx_redact_json */
    json_t *a = json_pack("[s, {s:s}]", key, "x", key);
    CX_CHECK_OK(cx_redact_json(a, NULL, NULL));
    char *t = json_dumps(a, JSON_COMPACT);
    CX_CHECK(t && strstr(t, key) == NULL);
    free(t);
    json_decref(a);
}

/* The decoding passes: each positive loses every part of its secret to the
 * named rule's marker, and only the encoded span (the text around it stays
 * byte for byte where no match reached); each negative is left alone. */
static void test_decoded(json_t *decoded) {
    const char *pass;
    json_t *c;
    size_t npass = 0;
    json_object_foreach(decoded, pass, c) {
        npass++;
        check_case(json_array_size(json_object_get(c, "positive")) >= 3, ">= 3 positives", pass,
                   "", NULL);
        check_case(json_array_size(json_object_get(c, "negative")) >= 3, ">= 3 negatives", pass,
                   "", NULL);
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(c, "positive"), i, p) {
            const char *text = json_string_value(json_object_get(p, "text"));
            const char *rule = json_string_value(json_object_get(p, "rule"));
            check_case(text && rule && rule_index(rule) != SIZE_MAX, "a case names a rule", pass,
                       text ? text : "", NULL);
            if (!text || !rule)
                continue;
            char marker[128];
            snprintf(marker, sizeof marker, "%s%s]", CX_REDACT_PREFIX, rule);
            char *out = redact(text);
            check_case(out && strstr(out, marker), "the rule's marker is there", pass, text, out);
            size_t k;
            json_t *part;
            json_array_foreach(json_object_get(p, "parts"), k, part) {
                const char *sec = json_string_value(part);
                check_case(sec && strstr(text, sec), "the part is in the text", pass, text, NULL);
                check_case(out && sec && !strstr(out, sec), "the part is gone", pass, text, out);
            }
            if (out) {
                char *again = redact(out);
                check_case(again == NULL, "a redacted text redacts to itself", pass, out, again);
                free(again);
            }
            free(out);
        }
        json_array_foreach(json_object_get(c, "negative"), i, p) {
            const char *text = json_string_value(p);
            char *out = redact(text ? text : "");
            check_case(text && out == NULL, "a negative is unchanged", pass, text ? text : "", out);
            free(out);
        }
    }
    CX_CHECK_INT(npass, 3);
}

/* The views map a match back to exactly the encoded span: the words around
 * it, other escapes and other lines are kept. */
static void test_decoded_spans(void) {
    /* %67 is 'g': the whole token goes, the query around it stays */
    const char *t = "GET /x?a=%20b&q=%67hp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A7B&page=2 done";
    char *out = redact(t);
    CX_CHECK_STR(out, "GET /x?a=%20b&q=[REDACTED:github-pat]&page=2 done");
    free(out);
    /* a JSON \u escape at the start of the key */
    out = redact("{\"a\": \"x\\n\", \"k\": \"\\u0041KIAQYLPMN2ZSHX4KW7E\"}");
    CX_CHECK_STR(out, "{\"a\": \"x\\n\", \"k\": \"[REDACTED:aws-access-key-id]\"}");
    free(out);
    /* a key over two lines becomes one marker; the lines around stay */
    out = redact("before line\n  ghp_aB3dE5fG7hJ9kL1mN3\n  pQ5rS7tU9vW1xY3z5A7B\nafter line");
    CX_CHECK_STR(out, "before line\n  [REDACTED:github-pat]\nafter line");
    free(out);
    /* two halves that are each too short to be words are not joined */
    out = redact("ghp_aB3\ndE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A7B");
    CX_CHECK(out == NULL);
    free(out);
    /* a long word with an escape deep inside: decoded in a window */
    size_t n = 200000;
    char *big = malloc(n + 64);
    memset(big, 'a', n);
    memcpy(big + n - 60, "/%67hp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A7B/", 47);
    big[n - 13] = '\0';
    out = redact(big);
    CX_CHECK(out && strstr(out, "[REDACTED:github-pat]") && !strstr(out, "hp_aB3dE5"));
    free(out);
    free(big);
    /* a key body: the word on the line after it is not key material */
    const char *body =
        "MHcCAQEEIL58lTGz8LwZlFR49eahzZY/XoP447Nmy8ku7OslaoZ/oAoGCCqGSM49\n"
        "AwEHoUQDQgAEb64q8MNCCmYu/kji4zQqtdhC0zSNe/j1LCSsWaF+ee7Q1U4LsTud\n"
        "6XxkD9XgYggA7HB/rLRyJ6hyRw6mYuWaoA==\nDone\n";
    out = redact(body);
    CX_CHECK_STR(out, "[REDACTED:private-key-body]\nDone\n");
    free(out);
}

/* A cut never keeps part of a marker: it moves back to before it. */
static void test_cut(void) {
    static const char t[] = "key is [REDACTED:github-pat] and more";
    size_t len = sizeof t - 1, ms = 0, me = 0;
    /* every cut inside the marker moves to its start (7), none outside does */
    for (size_t max = 0; max <= len; max++) {
        size_t n = cx_redact_cut(t, len, max, false);
        if (max > 7 && max < 28)
            CX_CHECK_INT(n, 7);
        else
            CX_CHECK_INT(n, max);
    }
    CX_CHECK(cx_redact_in_marker(t, len, 8, &ms, &me));
    CX_CHECK_INT(ms, 7);
    CX_CHECK_INT(me, 28);
    CX_CHECK(!cx_redact_in_marker(t, len, 7, &ms, &me));
    CX_CHECK(!cx_redact_in_marker(t, len, 28, &ms, &me));
    CX_CHECK(!cx_redact_in_marker(t, len, 33, &ms, &me));
    /* a text already cut inside a marker, or in its prefix, loses that part */
    CX_CHECK_INT(cx_redact_cut(t, 20, 20, true), 7);
    CX_CHECK_INT(cx_redact_cut(t, 11, 11, true), 7);
    CX_CHECK_INT(cx_redact_cut(t, 8, 8, true), 7);
    CX_CHECK_INT(cx_redact_cut(t, 28, 28, true), 28);
    CX_CHECK_INT(cx_redact_cut(t, 20, 20, false), 20); /* whole: not a cut */
    /* other brackets are text */
    static const char u[] = "a[0] = b[1]";
    CX_CHECK_INT(cx_redact_cut(u, sizeof u - 1, 3, false), 3);
    CX_CHECK_INT(cx_redact_cut(u, sizeof u - 1, 10, false), 10);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test-redact fixtures/redact/cases.json\n");
        return 2;
    }
    json_error_t jerr;
    json_t *root = json_load_file(argv[1], 0, &jerr);
    if (!root) {
        fprintf(stderr, "%s:%d: %s\n", argv[1], jerr.line, jerr.text);
        return 2;
    }
    json_t *rules = json_object_get(root, "rules");
    CX_CHECK(json_is_object(rules));
    test_rule_table();
    test_fixtures(rules);
    test_find_and_report(rules);
    test_overlaps();
    test_placeholders();
    test_string_and_empty();
    test_credential_files();
    test_is_text();
    test_binary();
    test_large();
    test_threads(rules);
    test_item();
    CX_CHECK(json_is_object(json_object_get(root, "decoded")));
    test_decoded(json_object_get(root, "decoded"));
    test_decoded_spans();
    test_cut();
    json_decref(root);
    return cx_test_done();
}
