/* SPDX-License-Identifier: Apache-2.0 */
/* Replays inputs through a fuzz target without libFuzzer: every regular file
 * named on the command line, or found (recursively, in name order) under a
 * directory named there, is passed once to LLVMFuzzerTestOneInput(). Used by
 * `meson test` to run each target over its corpus, so that every crasher
 * ever found stays a regression test.
 *
 * Exits 0 after printing the count, 1 when no input was read or a file could
 * not be read. A target that finds a bug abort()s. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#define MAX_INPUT_BYTES (64u * 1024 * 1024)
#define MAX_DIR_DEPTH 8

static unsigned long n_inputs;
static unsigned long n_errors;

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fuzz-main: %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0 || (unsigned long long)st.st_size > MAX_INPUT_BYTES) {
        fprintf(stderr, "fuzz-main: %s: cannot stat or larger than %u bytes\n", path, MAX_INPUT_BYTES);
        fclose(f);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    /* Exactly `size` bytes on the heap, so ASan sees reads past the end. */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        fclose(f);
        return -1;
    }
    size_t got = size ? fread(buf, 1, size, f) : 0;
    fclose(f);
    if (got != size) {
        fprintf(stderr, "fuzz-main: %s: short read\n", path);
        free(buf);
        return -1;
    }
    LLVMFuzzerTestOneInput(buf, size);
    free(buf);
    n_inputs++;
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_path(const char *path, int depth);

static void run_dir(const char *path, int depth)
{
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "fuzz-main: %s: %s\n", path, strerror(errno));
        n_errors++;
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue; /* ".", "..", and hidden files such as .gitkeep */
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **nn = realloc(names, ncap * sizeof *nn);
            if (!nn)
                break;
            names = nn;
            cap = ncap;
        }
        size_t len = strlen(path) + 1 + strlen(e->d_name) + 1;
        char *full = malloc(len);
        if (!full)
            break;
        snprintf(full, len, "%s/%s", path, e->d_name);
        names[n++] = full;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        run_path(names[i], depth + 1);
        free(names[i]);
    }
    free(names);
}

static void run_path(const char *path, int depth)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "fuzz-main: %s: %s\n", path, strerror(errno));
        n_errors++;
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        if (depth < MAX_DIR_DEPTH)
            run_dir(path, depth);
    } else if (S_ISREG(st.st_mode)) {
        if (run_file(path) != 0)
            n_errors++;
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE…\n", argv[0]);
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-')
            continue; /* libFuzzer-style flags: accepted, ignored */
        run_path(argv[i], 0);
    }
    printf("%s: %lu inputs replayed, %lu errors\n", argv[0], n_inputs, n_errors);
    return n_inputs == 0 || n_errors ? 1 : 0;
}
