/* SPDX-License-Identifier: Apache-2.0 */
/* fts-check DB: checks every FTS5 index over the items table of a Cortex
 * store, on an in-memory copy: FTS5's own integrity-check, then agreement
 * with the content (no row missing, none indexed twice or with old text),
 * against a reference index built from the rows with the same tokenizer
 * and compared through fts5vocab('instance'). The indexes use Cortex's own
 * tokenizer, which only a connection set up by the store can load, hence a
 * C program rather than Python's sqlite3. Prints one problem a line;
 * exit 0 when there are none, 1 when there are, 2 when it cannot check. */
#include "store/store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

static int problems;

/* One problem: "what: detail". */
static void problem(const char *what, const char *detail) {
    printf("%s: %s\n", what, detail);
    problems++;
}

static int exec(sqlite3 *db, const char *sql) {
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        problem(sql, err ? err : sqlite3_errstr(rc));
        sqlite3_free(err);
    }
    return rc;
}

static long long one_int(sqlite3 *db, const char *sql, long long dflt) {
    sqlite3_stmt *st;
    long long v = dflt;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void check_index(sqlite3 *mem, const char *name, long long indexed) {
    char sql[1024];
    snprintf(sql, sizeof sql, "INSERT INTO \"%s\"(\"%s\") VALUES('integrity-check')", name, name);
    if (exec(mem, sql) != SQLITE_OK)
        return;
    const char *filter = strstr(name, "curated") ? " AND kind IN ('draft','thread','artifact')" : "";
    snprintf(sql, sizeof sql,
             "CREATE VIRTUAL TABLE \"ref_%s\" USING fts5(title, body, tags, tokenize='cortex');"
             "INSERT INTO \"ref_%s\"(rowid, title, body, tags) SELECT rid, title, body, tags"
             " FROM items WHERE rid <= %lld%s;"
             "CREATE VIRTUAL TABLE \"v_%s\" USING fts5vocab(\"%s\", 'instance');"
             "CREATE VIRTUAL TABLE \"v_ref_%s\" USING fts5vocab(\"ref_%s\", 'instance');",
             name, name, indexed, filter, name, name, name, name);
    if (exec(mem, sql) != SQLITE_OK)
        return;
    const char *pairs[2][3] = {{"v_", "v_ref_", "in the index but not in the rows"},
                               {"v_ref_", "v_", "in the rows but not in the index"}};
    for (int i = 0; i < 2; i++) {
        snprintf(sql, sizeof sql,
                 "SELECT count(*), substr(group_concat(quote(term) || '@' || doc, ' '), 1, 300)"
                 " FROM (SELECT * FROM \"%s%s\" EXCEPT SELECT * FROM \"%s%s\")",
                 pairs[i][0], name, pairs[i][1], name);
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(mem, sql, -1, &st, NULL) != SQLITE_OK) {
            problem(name, sqlite3_errmsg(mem));
            continue;
        }
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0) {
            char what[160];
            snprintf(what, sizeof what, "%lld entries %s (indexed_rid %lld)",
                     (long long)sqlite3_column_int64(st, 0), pairs[i][2], indexed);
            problem(name, what);
            printf("  sample: %s\n", (const char *)sqlite3_column_text(st, 1));
        }
        sqlite3_finalize(st);
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: fts-check DB\n");
        return 2;
    }
    sqlite3 *disk = NULL, *mem = NULL;
    if (sqlite3_open_v2(argv[1], &disk, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_open(":memory:", &mem) != SQLITE_OK ||
        cx_store_register_sqlite(disk) != SQLITE_OK || cx_store_register_sqlite(mem) != SQLITE_OK) {
        fprintf(stderr, "fts-check: cannot open %s\n", argv[1]);
        return 2;
    }
    sqlite3_busy_timeout(disk, 10000);
    sqlite3_backup *b = sqlite3_backup_init(mem, "main", disk, "main");
    if (!b || sqlite3_backup_step(b, -1) != SQLITE_DONE) {
        fprintf(stderr, "fts-check: cannot copy %s: %s\n", argv[1], sqlite3_errmsg(mem));
        return 2;
    }
    sqlite3_backup_finish(b);
    long long indexed = one_int(mem, "SELECT indexed_rid FROM fts_state", -1);
    if (indexed < 0)
        indexed = one_int(mem, "SELECT coalesce(max(rid), 0) FROM items", 0);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(mem,
                           "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE "
                           "'%USING fts5(%' AND sql LIKE '%content=''items''%'",
                           -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "fts-check: %s\n", sqlite3_errmsg(mem));
        return 2;
    }
    char names[8][64];
    int n = 0;
    while (n < 8 && sqlite3_step(st) == SQLITE_ROW)
        snprintf(names[n++], sizeof names[0], "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    for (int i = 0; i < n; i++)
        check_index(mem, names[i], indexed);
    sqlite3_close(mem);
    sqlite3_close(disk);
    return problems ? 1 : 0;
}
