/* SPDX-License-Identifier: Apache-2.0 */
/* A deterministic generator of developer-memory text for the benchmarks:
 * observations that mention file paths, identifiers (camelCase, snake_case,
 * PascalCase, CONSTANTS), error messages, build/test/deploy notes, with word
 * frequencies drawn from Zipf-like distributions over a vocabulary of a few
 * thousand words (a fixed list of developer words plus generated
 * project-specific names), so that FTS postings look like a real cache rather
 * than ten words repeated.
 *
 * Every item and every query is a pure function of (seed, stream, index):
 * item i is the same whatever the corpus size, so a 10k workspace holds
 * exactly the first 10k items of the 100k one, and reruns are reproducible
 * on any machine. Changing anything here changes the corpus: bump
 * BENCH_CORPUS_VERSION so cached workspaces are rebuilt. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define BENCH_CORPUS_VERSION 1

/* splitmix64: small, fast, good enough for test data. */
typedef struct bench_rng {
    uint64_t s;
} bench_rng;

void bench_rng_seed(bench_rng *r, uint64_t seed, uint64_t stream, uint64_t index);
uint64_t bench_rng_next(bench_rng *r);
uint32_t bench_rng_below(bench_rng *r, uint32_t n); /* 0..n-1, n > 0 */
double bench_rng_unit(bench_rng *r);                /* [0, 1) */

typedef struct bench_corpus bench_corpus;

bench_corpus *bench_corpus_new(uint64_t seed);
void bench_corpus_free(bench_corpus *c);

#define BENCH_TEXT_MAX 640
#define BENCH_TITLE_MAX 120
#define BENCH_PATH_MAX 160
#define BENCH_MAX_ITEM_TAGS 3
#define BENCH_MAX_ITEM_FILES 2

typedef struct bench_item {
    char text[BENCH_TEXT_MAX];   /* ~150-400 bytes */
    char title[BENCH_TITLE_MAX]; /* "" = none */
    const char *subcortex;       /* never NULL */
    const char *tags[BENCH_MAX_ITEM_TAGS];
    size_t ntags;
    char files[BENCH_MAX_ITEM_FILES][BENCH_PATH_MAX];
    size_t nfiles;
} bench_item;

/* Streams keep independent sequences apart. */
enum {
    BENCH_STREAM_POPULATE = 1, /* items of the populated workspaces */
    BENCH_STREAM_OBSERVE = 2,  /* the observe run (an empty workspace) */
    BENCH_STREAM_QUERY = 3,    /* search queries */
};

void bench_corpus_item(const bench_corpus *c, uint64_t stream, uint64_t index, bench_item *out);

/* What a query is meant to exercise. */
typedef enum bench_query_kind {
    BENCH_Q_WORD1,      /* one vocabulary word */
    BENCH_Q_WORD2,      /* two words */
    BENCH_Q_WORD3,      /* three words / an error phrase */
    BENCH_Q_IDENTIFIER, /* camelCase, snake_case or a path */
    BENCH_Q_MISS,       /* words that the corpus never contains */
} bench_query_kind;

/* Writes query `index` (NUL-terminated) into buf and returns its kind. */
bench_query_kind bench_corpus_query(const bench_corpus *c, uint64_t index, char *buf, size_t cap);
