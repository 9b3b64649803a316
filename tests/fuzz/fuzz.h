/* SPDX-License-Identifier: Apache-2.0 */
/* The libFuzzer entry point every fuzz target defines. Built either with
 * -fsanitize=fuzzer (clang, -Dfuzzing=true) or with fuzz-main.c, which
 * replays files given on the command line (the corpus, in `meson test`). */
#pragma once

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
