/* SPDX-License-Identifier: Apache-2.0 */
/* The keyword index's row lengths, kept compact (fts_lengths, schema 8).
 *
 * BM25 needs each scored row's length in tokens. FTS5 keeps it in
 * items_fts_docsize, a row of varints per item: reading 100k of them costs
 * about 100 M instructions (~30 ms), which a fresh process paid before its
 * first search of a common word could rank. Here they are kept a block of
 * CX_STORE_LENGTHS_BLOCK row ids per table row, as 16-bit little-endian
 * counts (0: no such row; saturated at 65535), which a reader copies in a
 * few microseconds.
 *
 * A block is true of the index while fts_state.edits equals the edits it
 * was written at, for the rows up to its `upto`: rows are only ever added
 * to the index in rid order, and every other change moves edits. Indexing
 * (fts_chunk_tx) brings the blocks of the rows it adds up to date in the
 * same transaction; maintenance rewrites the blocks an edit left behind,
 * one per call. A reader takes a block only at the edits it reads in its
 * own snapshot, and reads the rows past `upto` from FTS5. */
#include "store/store-internal.h"

#include "store/gate.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

#define BLOCK CX_STORE_LENGTHS_BLOCK

static const char SQL_GET[] = "SELECT edits, upto, lens FROM fts_lengths WHERE blk = ?1";
static const char SQL_PUT[] =
    "INSERT OR REPLACE INTO fts_lengths (blk, edits, upto, lens) VALUES (?1, ?2, ?3, ?4)";
static const char SQL_DOCSIZE[] =
    "SELECT id, sz FROM items_fts_docsize WHERE id >= ?1 AND id <= ?2";
static const char SQL_NEXT_ROW[] = "SELECT min(id) FROM items_fts_docsize WHERE id >= ?1";

/* An SQLite varint (FTS5 writes its sizes so): *v, bytes read, 0 if cut. */
static size_t get_varint(const unsigned char *p, size_t n, uint64_t *v) {
    uint64_t x = 0;
    for (size_t i = 0; i < n && i < 9; i++) {
        if (i == 8) {
            *v = (x << 8) | p[i];
            return 9;
        }
        x = (x << 7) | (p[i] & 0x7f);
        if (!(p[i] & 0x80)) {
            *v = x;
            return i + 1;
        }
    }
    return 0;
}

uint16_t cx_store_lengths_of_docsize(const void *sz, size_t n) {
    const unsigned char *p = sz;
    uint64_t total = 0, v;
    size_t off = 0, k;
    while (off < n && (k = get_varint(p + off, n - off, &v)) > 0) {
        total += v;
        off += k;
    }
    return total > UINT16_MAX ? UINT16_MAX : (uint16_t)total;
}

/* The lengths of rows [from, to] of block blk from FTS5 into lens. */
static int read_docsize(cx_store *s, int64_t blk, int64_t from, int64_t to, uint16_t *lens) {
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, SQL_DOCSIZE, &st), rc;
    if (r)
        return r;
    sqlite3_bind_int64(st, 1, from);
    sqlite3_bind_int64(st, 2, to);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        if (id / BLOCK == blk && id >= 0)
            lens[id % BLOCK] = cx_store_lengths_of_docsize(sqlite3_column_blob(st, 1),
                                                           (size_t)sqlite3_column_bytes(st, 1));
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : cx_store_sqlerr(s, rc, "reading the lengths of items");
}

/* Block blk as stored: *upto -1 when there is none at `edits`. */
static int get_block(cx_store *s, int64_t blk, int64_t edits, uint16_t *lens, int64_t *upto) {
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, SQL_GET, &st), rc;
    if (r)
        return r;
    *upto = -1;
    sqlite3_bind_int64(st, 1, blk);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_int64(st, 0) == edits &&
        sqlite3_column_bytes(st, 2) == BLOCK * 2) {
        const unsigned char *b = sqlite3_column_blob(st, 2);
        for (size_t i = 0; b && i < BLOCK; i++)
            lens[i] = (uint16_t)(b[2 * i] | b[2 * i + 1] << 8);
        int64_t u = sqlite3_column_int64(st, 1);
        if (b && u >= blk * BLOCK && u < (blk + 1) * BLOCK)
            *upto = u;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return cx_store_sqlerr(s, rc, "reading the lengths of items");
    return 0;
}

static int put_block(cx_store *s, int64_t blk, int64_t edits, int64_t upto, const uint16_t *lens) {
    unsigned char *b = malloc(BLOCK * 2);
    if (!b)
        return CX_ENOMEM;
    for (size_t i = 0; i < BLOCK; i++) {
        b[2 * i] = (unsigned char)(lens[i] & 0xff);
        b[2 * i + 1] = (unsigned char)(lens[i] >> 8);
    }
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, SQL_PUT, &st);
    if (r == 0) {
        sqlite3_bind_int64(st, 1, blk);
        sqlite3_bind_int64(st, 2, edits);
        sqlite3_bind_int64(st, 3, upto);
        sqlite3_bind_blob(st, 4, b, BLOCK * 2, SQLITE_STATIC);
        r = cx_store_exec_stmt(s, st, "keeping the lengths of items");
    }
    free(b);
    return r;
}

int cx_store_lengths_get(cx_store *s, int64_t blk, int64_t edits, int64_t indexed, bool whole,
                         uint16_t *lens, bool *got) {
    int64_t upto = -1;
    memset(lens, 0, BLOCK * sizeof *lens);
    *got = false;
    if (blk < 0 || blk >= CX_STORE_LENGTHS_MAX_BLOCKS)
        return 0;
    int r = get_block(s, blk, edits, lens, &upto);
    if (r || (upto < 0 && !whole))
        return r;
    *got = true;
    int64_t from = upto >= 0 ? upto + 1 : blk * BLOCK, to = (blk + 1) * BLOCK - 1;
    if (to > indexed)
        to = indexed;
    return from <= to ? read_docsize(s, blk, from, to, lens) : 0;
}

int cx_store_lengths_next_row(cx_store *s, int64_t from, int64_t *rid, bool *have) {
    sqlite3_stmt *st;
    int r = cx_store_prepare(s, SQL_NEXT_ROW, &st);
    if (r)
        return r;
    sqlite3_bind_int64(st, 1, from);
    int rc = sqlite3_step(st);
    *have = rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL;
    *rid = *have ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : cx_store_sqlerr(s, rc, "reading the lengths of items");
}

/* Brings block blk up to date with the index up to row `to` (inside a
 * write transaction): from its stored upto when it is current, else
 * whole. */
static int refresh_block(cx_store *s, int64_t blk, int64_t edits, int64_t to) {
    uint16_t *lens = calloc(BLOCK, sizeof *lens);
    int64_t upto = -1;
    if (!lens)
        return CX_ENOMEM;
    int r = get_block(s, blk, edits, lens, &upto);
    int64_t from = upto >= 0 ? upto + 1 : blk * BLOCK;
    if (to >= (blk + 1) * BLOCK)
        to = (blk + 1) * BLOCK - 1;
    if (r == 0 && from <= to && (r = read_docsize(s, blk, from, to, lens)) == 0)
        r = put_block(s, blk, edits, to, lens);
    free(lens);
    return r;
}

int cx_store_lengths_indexed(cx_store *s, int64_t from, int64_t to) {
    int64_t indexed = 0, edits = 0;
    if (from > to || from < 0)
        return 0;
    int r = cx_store_fts_generation(s, &indexed, &edits);
    if (to >= CX_STORE_LENGTHS_MAX_BLOCKS * (int64_t)BLOCK)
        to = CX_STORE_LENGTHS_MAX_BLOCKS * (int64_t)BLOCK - 1;
    /* the blocks that hold rows: row ids may jump (sqlite_sequence) */
    while (r == 0 && from <= to) {
        int64_t rid = 0;
        bool have = false;
        if ((r = cx_store_lengths_next_row(s, from, &rid, &have)) || !have || rid > to)
            break;
        int64_t blk = rid / BLOCK;
        r = refresh_block(s, blk, edits, to);
        from = (blk + 1) * BLOCK;
    }
    return r;
}

typedef struct fill_ctx {
    int64_t blk, edits;
} fill_ctx;

static int fill_tx(cx_store *s, void *ud) {
    fill_ctx *f = ud;
    int64_t indexed = 0, edits = 0;
    int r = cx_store_fts_generation(s, &indexed, &edits);
    if (r || edits != f->edits)
        return r; /* edited meanwhile: the next call starts over */
    return refresh_block(s, f->blk, edits, indexed);
}

int cx_store_lengths_fill(cx_store *s, uint64_t quiet_ns, uint64_t until_ns, bool *more) {
    *more = false;
    int64_t indexed = 0, edits = 0;
    int r = cx_store_fts_generation(s, &indexed, &edits);
    if (r)
        return r;
    if (!s->lengths_known || s->lengths_edits != edits) {
        s->lengths_known = true;
        s->lengths_edits = edits;
        s->lengths_indexed = -1;
        s->lengths_next = 0;
    }
    if (s->lengths_indexed == indexed)
        return 0; /* every block was current at this state */
    /* the next block holding rows whose stored copy is missing, old or
     * short of the index (row ids may be sparse: one look-up a block) */
    uint16_t *lens = malloc(BLOCK * sizeof *lens);
    if (!lens)
        return CX_ENOMEM;
    int64_t from = s->lengths_next;
    while (from <= indexed && from < CX_STORE_LENGTHS_MAX_BLOCKS * (int64_t)BLOCK) {
        int64_t rid = 0;
        bool have = false;
        if ((r = cx_store_lengths_next_row(s, from, &rid, &have)) || !have || rid > indexed)
            break;
        int64_t blk = rid / BLOCK, upto = -1, last = (blk + 1) * BLOCK - 1;
        if ((r = get_block(s, blk, edits, lens, &upto)))
            break;
        if (upto >= (last < indexed ? last : indexed)) {
            from = last + 1;
            continue;
        }
        fill_ctx f = {blk, edits};
        if (s->gate && !cx_store_gate_quiet(s->gate, quiet_ns, until_ns)) {
            *more = true; /* no pause came: the next maintenance goes on */
            free(lens);
            return 0;
        }
        if ((r = cx_store_write(s, fill_tx, &f)) == 0) {
            s->lengths_next = last + 1;
            *more = true;
        }
        free(lens);
        return r; /* one block a call */
    }
    free(lens);
    if (r == 0) {
        /* rows added from now on are kept by indexing; only the last
         * block can still be short */
        s->lengths_indexed = indexed;
        s->lengths_next = indexed / BLOCK * BLOCK;
    }
    return r;
}
