// libFuzzer target: the tokenizer.json loader (g4_tokenizer_load reads a path, so the input is
// placed in a memfd and loaded through /proc/self/fd/N). A loaded tokenizer also encodes and
// decodes a fixed text, which exercises the tables the loader built.
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tokenizer.h"

static int fd = -1;
static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (fd < 0) {
        fd = memfd_create("fuzz_tokenizer_json", 0);
        if (fd < 0) abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size) abort();
    struct g4_tokenizer *tok = NULL;
    if (g4_tokenizer_load(&tok, path) != G4_OK) {
        if (tok) abort(); // *out is NULL on error
        return 0;
    }
    static const char text[] = "Hello <bos> world\n\n  caf\xc3\xa9 \xff\xfe \xe2\x96\x81x<|turn>";
    int32_t ids[256];
    size_t n = 0;
    if (g4_tokenizer_encode(tok, text, sizeof text - 1, 1, ids, G4_COUNT(ids), &n) == G4_OK) {
        char out[1024];
        size_t m;
        (void)g4_tokenizer_decode(tok, ids, n, 0, out, sizeof out, &m);
        (void)g4_tokenizer_decode(tok, ids, n, 1, out, sizeof out, &m);
        for (size_t i = 0; i < n; i++) (void)g4_tokenizer_piece(tok, ids[i], out, sizeof out, &m);
    }
    int32_t v = g4_tokenizer_vocab_size(tok);
    for (int32_t id = -1; id <= v && id < 64; id++) {
        char out[256];
        size_t m;
        (void)g4_tokenizer_piece(tok, id, out, sizeof out, &m);
        (void)g4_tokenizer_is_special(tok, id);
    }
    (void)g4_tokenizer_find(tok, "<bos>");
    g4_tokenizer_free(tok);
    return 0;
}
