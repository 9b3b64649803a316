/* SPDX-License-Identifier: Apache-2.0 */
/* Every script in keyword mode, over a real store: among 1,000 English
 * notes, notes in Chinese, Japanese, Korean, Thai, Cyrillic, Arabic, with
 * emoji and with diacritics are each found by a word of theirs (bigrams,
 * emoji tokens, case folding, NFD = NFC); an exact match with diacritics
 * ranks above a folded one; and an index built by an older tokenizer is
 * rebuilt when the store opens. */
#include "test.h"

#include "search/search.h"
#include "store/store.h"
#include "text/tokenizer.h"
#include "util/fsx.h"

#include <sqlite3.h>

static char *root;
static cx_store *s;
static const cx_actor who = {.author = "ada", .agent = "test"};

static char *observe(const char *body) {
    json_t *out = NULL;
    cx_note n = {.body = body};
    if (cx_store_observe(s, &who, &n, 1, NULL, NULL, &out)) {
        fprintf(stderr, "observe: %s\n", cx_error_last());
        return strdup("");
    }
    char *id = strdup(json_string_value(
        json_object_get(json_array_get(json_object_get(out, "results"), 0), "id")));
    json_decref(out);
    return id;
}

/* The rank (0-based) of id among the keyword results for text, -1 if
 * absent. */
static int rank_of(const char *text, const char *id) {
    cx_search_query q = {.text = text, .limit = 10, .mode = CX_SEARCH_KEYWORD};
    json_t *out = NULL;
    if (cx_search_run(s, &q, &out)) {
        fprintf(stderr, "search '%s': %s\n", text, cx_error_last());
        return -2;
    }
    json_t *res = json_object_get(out, "results");
    int at = -1;
    for (size_t i = 0; i < json_array_size(res) && at < 0; i++)
        if (strcmp(json_string_value(json_object_get(json_array_get(res, i), "id")), id) == 0)
            at = (int)i;
    json_decref(out);
    return at;
}

typedef struct case_ {
    const char *body, *query;
    char *id;
} case_;

static case_ cases[] = {
    /* Chinese: 数据库连接池在高负载下耗尽 / 连接池 */
    {"\xe6\x95\xb0\xe6\x8d\xae\xe5\xba\x93\xe8\xbf\x9e\xe6\x8e\xa5\xe6\xb1\xa0\xe5\x9c\xa8\xe9\xab"
     "\x98\xe8\xb4\x9f\xe8\xbd\xbd\xe4\xb8\x8b\xe8\x80\x97\xe5\xb0\xbd",
     "\xe8\xbf\x9e\xe6\x8e\xa5\xe6\xb1\xa0", NULL},
    /* Japanese: ファイルのアップロードに失敗した / アップロード */
    {"\xe3\x83\x95\xe3\x82\xa1\xe3\x82\xa4\xe3\x83\xab\xe3\x81\xae\xe3\x82\xa2\xe3\x83\x83\xe3\x83"
     "\x97\xe3\x83\xad\xe3\x83\xbc\xe3\x83\x89\xe3\x81\xab\xe5\xa4\xb1\xe6\x95\x97\xe3\x81\x97\xe3"
     "\x81\x9f",
     "\xe3\x82\xa2\xe3\x83\x83\xe3\x83\x97\xe3\x83\xad\xe3\x83\xbc\xe3\x83\x89", NULL},
    /* Korean: 배포 파이프라인이 실패했습니다 / 파이프라인 */
    {"\xeb\xb0\xb0\xed\x8f\xac \xed\x8c\x8c\xec\x9d\xb4\xed\x94\x84\xeb\x9d\xbc\xec\x9d\xb8\xec\x9d"
     "\xb4 \xec\x8b\xa4\xed\x8c\xa8\xed\x96\x88\xec\x8a\xb5\xeb\x8b\x88\xeb\x8b\xa4",
     "\xed\x8c\x8c\xec\x9d\xb4\xed\x94\x84\xeb\x9d\xbc\xec\x9d\xb8", NULL},
    /* Thai: ฐานข้อมูลล่มเมื่อคืนนี้ / ฐานข้อมูล */
    {"\xe0\xb8\x90\xe0\xb8\xb2\xe0\xb8\x99\xe0\xb8\x82\xe0\xb9\x89\xe0\xb8\xad\xe0\xb8\xa1\xe0\xb8"
     "\xb9\xe0\xb8\xa5\xe0\xb8\xa5\xe0\xb9\x88\xe0\xb8\xa1\xe0\xb9\x80\xe0\xb8\xa1\xe0\xb8\xb7\xe0"
     "\xb9\x88\xe0\xb8\xad\xe0\xb8\x84\xe0\xb8\xb7\xe0\xb8\x99\xe0\xb8\x99\xe0\xb8\xb5\xe0\xb9\x89",
     "\xe0\xb8\x90\xe0\xb8\xb2\xe0\xb8\x99\xe0\xb8\x82\xe0\xb9\x89\xe0\xb8\xad\xe0\xb8\xa1\xe0\xb8"
     "\xb9\xe0\xb8\xa5",
     NULL},
    /* Cyrillic: Сервер ПЕРЕЗАГРУЗИЛСЯ ночью / перезагрузился */
    {"\xd0\xa1\xd0\xb5\xd1\x80\xd0\xb2\xd0\xb5\xd1\x80 \xd0\x9f\xd0\x95\xd0\xa0\xd0\x95\xd0\x97\xd0"
     "\x90\xd0\x93\xd0\xa0\xd0\xa3\xd0\x97\xd0\x98\xd0\x9b\xd0\xa1\xd0\xaf \xd0\xbd\xd0\xbe\xd1\x87"
     "\xd1\x8c\xd1\x8e",
     "\xd0\xbf\xd0\xb5\xd1\x80\xd0\xb5\xd0\xb7\xd0\xb0\xd0\xb3\xd1\x80\xd1\x83\xd0\xb7\xd0\xb8\xd0"
     "\xbb\xd1\x81\xd1\x8f",
     NULL},
    /* Arabic: فشل النشر على الخادم / الخادم */
    {"\xd9\x81\xd8\xb4\xd9\x84 \xd8\xa7\xd9\x84\xd9\x86\xd8\xb4\xd8\xb1 \xd8\xb9\xd9\x84\xd9\x89 "
     "\xd8\xa7\xd9\x84\xd8\xae\xd8\xa7\xd8\xaf\xd9\x85",
     "\xd8\xa7\xd9\x84\xd8\xae\xd8\xa7\xd8\xaf\xd9\x85", NULL},
    /* emoji: the release went out 🚀 / 🚀 */
    {"the release went out \xf0\x9f\x9a\x80", "\xf0\x9f\x9a\x80", NULL},
    /* diacritics, written NFD: Zürich office / zurich */
    {"Zu\xcc\x88rich office moved", "zurich", NULL},
};
#define NCASES (sizeof cases / sizeof cases[0])

static void test_found(void) {
    for (size_t i = 0; i < NCASES; i++) {
        int at = rank_of(cases[i].query, cases[i].id);
        if (at != 0)
            fprintf(stderr, "case %zu (%s): rank %d\n", i, cases[i].query, at);
        CX_CHECK_INT(at, 0);
    }
    /* NFC query for an NFD note, and the Cyrillic word in capitals */
    CX_CHECK_INT(rank_of("Z\xc3\xbcrich", cases[7].id), 0);
    CX_CHECK_INT(rank_of("\xd0\xa1\xd0\x95\xd0\xa0\xd0\x92\xd0\x95\xd0\xa0", cases[4].id), 0);
    /* one character of a run (池, "pool") */
    CX_CHECK_INT(rank_of("\xe6\xb1\xa0", cases[0].id), 0);
    /* a query of two bigram words: both must be in the note */
    CX_CHECK_INT(rank_of("\xe8\xbf\x9e\xe6\x8e\xa5\xe6\xb1\xa0 \xe8\x80\x97\xe5\xb0\xbd",
                         cases[0].id),
                 0);
}

/* The exact form ranks above the folded one, either way round in age. */
static void test_exact_first(void) {
    char *folded = observe("the resume of the quarterly planning");
    char *exact = observe("the r\xc3\xa9sum\xc3\xa9 of the quarterly planning");
    char *folded2 = observe("the resume of the quarterly planning again");
    CX_CHECK_INT(rank_of("r\xc3\xa9sum\xc3\xa9", exact), 0);
    CX_CHECK(rank_of("r\xc3\xa9sum\xc3\xa9", folded) > 0);
    CX_CHECK(rank_of("r\xc3\xa9sum\xc3\xa9", folded2) > 0);
    CX_CHECK(rank_of("resume", exact) >= 0); /* the folded query finds all */
    CX_CHECK(rank_of("resume", folded) >= 0);
    free(folded);
    free(exact);
    free(folded2);
}

/* A store whose index an older tokenizer built (version 1, as recorded
 * before the version existed) is rebuilt at open: the version is current
 * and the notes are found. */
static void test_rebuild(void) {
    cx_store_free(s);
    s = NULL;
    char *path = cx_fs_join(root, "cortex.db");
    sqlite3 *db = NULL;
    CX_CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    CX_CHECK_INT(sqlite3_exec(db, "UPDATE fts_state SET tokenizer = 1", NULL, NULL, NULL),
                 SQLITE_OK);
    sqlite3_close(db);
    CX_CHECK_OK(cx_store_open(&s, root));
    db = NULL;
    sqlite3_stmt *st = NULL;
    int v = -1, indexed = -1;
    CX_CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    if (sqlite3_prepare_v2(db, "SELECT tokenizer, indexed_rid FROM fts_state", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int(st, 0);
        indexed = sqlite3_column_int(st, 1);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    CX_CHECK_INT(v, CX_TEXT_TOKENIZER_VERSION);
    CX_CHECK_INT(indexed, 0); /* emptied, to be filled again */
    CX_CHECK_INT(rank_of(cases[0].query, cases[0].id), 0);
    CX_CHECK_INT(rank_of(cases[6].query, cases[6].id), 0);
    free(path);
}

int main(void) {
    root = cx_test_tmpdir();
    if (!root || cx_store_open(&s, root) != 0) {
        fprintf(stderr, "setup: %s\n", cx_error_last());
        return 2;
    }
    static const char *const words[] = {"deploy", "release",  "config", "retry", "cache",
                                        "server", "database", "queue",  "token", "review",
                                        "build",  "test",     "latency", "index", "shard"};
    char body[256];
    for (int i = 0; i < 1000; i++) {
        snprintf(body, sizeof body, "Note %d: the %s %s needs a %s before the %s, see %s.", i,
                 words[i % 15], words[(i / 15) % 15], words[(i * 7) % 15], words[(i * 11) % 15],
                 words[(i * 13 + 3) % 15]);
        free(observe(body));
        if (i % 125 == 0 && (size_t)(i / 125) < NCASES)
            cases[i / 125].id = observe(cases[i / 125].body);
    }
    test_found();
    test_exact_first();
    test_rebuild();
    for (size_t i = 0; i < NCASES; i++)
        free(cases[i].id);
    cx_store_free(s);
    cx_test_rmrf(root);
    free(root);
    return cx_test_done();
}
