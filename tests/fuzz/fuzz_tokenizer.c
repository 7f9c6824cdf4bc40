// libFuzzer target: encode/decode/piece with the committed small Gemma tokenizer
// (tests/golden/tokenizer_small/tokenizer.json, loaded once). The first input byte picks a mode:
//   even: the rest is text; encode it (with and without <bos>), decode the ids both ways, and
//         check that the size query, the exact-size buffer and a one-short buffer agree, and
//         that the concatenated pieces give back the input bytes when the text holds no "▁"
//         (the normalizer maps ' ' to "▁" and the decoder maps it back, so "▁" does not
//         round-trip) and no added token that strips the whitespace around it.
//   odd:  the rest is an array of little-endian int32 ids (any values, invalid ones included);
//         decode it both ways and take every piece.
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

#ifndef G4_SOURCE_DIR
#error "build with -DG4_SOURCE_DIR=\"/path/to/repo\""
#endif

static struct g4_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *path = G4_SOURCE_DIR "/tests/golden/tokenizer_small/tokenizer.json";
    if (g4_tokenizer_load(&tok, path) != G4_OK) {
        fprintf(stderr, "cannot load %s: %s\n", path, g4_last_error());
        abort();
    }
    return 0;
}

// decode with the size query, the exact buffer and a one-short buffer; returns malloc'd text.
static char *decode_checked(const int32_t *ids, size_t n, int skip, size_t *len, g4_status *st) {
    size_t need = 0, got = 0;
    *st = g4_tokenizer_decode(tok, ids, n, skip, NULL, 0, &need);
    if (*st != G4_OK) return NULL;
    char *buf = malloc(need + 1);
    if (!buf) abort();
    if (g4_tokenizer_decode(tok, ids, n, skip, buf, need, &got) != G4_OK || got != need) abort();
    if (need > 0) {
        if (g4_tokenizer_decode(tok, ids, n, skip, buf, need - 1, &got) != G4_ERR_BUFFER_TOO_SMALL ||
            got != need)
            abort();
    }
    *len = need;
    return buf;
}

static void pieces(const int32_t *ids, size_t n, char **cat, size_t *cat_len) {
    size_t total = 0, cap = 0;
    char *out = NULL;
    for (size_t i = 0; i < n; i++) {
        char one[64];
        size_t need = 0;
        g4_status st = g4_tokenizer_piece(tok, ids[i], one, sizeof one, &need);
        if (st == G4_ERR_INVALID_TOKEN) {
            if (ids[i] >= 0 && ids[i] < g4_tokenizer_vocab_size(tok)) abort();
            continue;
        }
        if (st != G4_OK || need >= sizeof one) abort(); // the small vocab has short tokens
        if (!cat) continue;
        if (total + need > cap) {
            cap = 2 * (total + need) + 64;
            if (!(out = realloc(out, cap))) abort();
        }
        memcpy(out + total, one, need);
        total += need;
    }
    if (cat) *cat = out, *cat_len = total;
}

// Whether the pieces must give back `text`: not when it holds "▁" (becomes ' ') or one of the
// small tokenizer's added tokens with lstrip/rstrip (they swallow the whitespace beside them).
static int round_trips(const char *text, size_t len) {
    static const char *const bad[] = {"\xe2\x96\x81", "<lstrip>", "<rstrip>", "<both>"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        if (memmem(text, len, bad[k], strlen(bad[k]))) return 0;
    return 1;
}

static void fuzz_text(const char *text, size_t len) {
    // without <bos>: full checks
    size_t n = 0, got = 0;
    if (g4_tokenizer_encode(tok, text, len, 0, NULL, 0, &n) != G4_OK) abort();
    int32_t *ids = malloc((n + 8) * sizeof *ids);
    if (!ids) abort();
    if (g4_tokenizer_encode(tok, text, len, 0, ids, n, &got) != G4_OK || got != n) abort();
    if (n > 0 && g4_tokenizer_encode(tok, text, len, 0, ids, n - 1, &got) != G4_ERR_BUFFER_TOO_SMALL)
        abort();
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= g4_tokenizer_vocab_size(tok)) abort();
    for (int skip = 0; skip < 2; skip++) {
        size_t dl;
        g4_status st;
        char *d = decode_checked(ids, n, skip, &dl, &st);
        if (st != G4_OK) abort(); // ids from encode are valid
        free(d);
    }
    char *cat = NULL;
    size_t cat_len = 0;
    pieces(ids, n, &cat, &cat_len);
    if (round_trips(text, len) && (cat_len != len || (len && memcmp(cat, text, len)))) {
        fprintf(stderr, "pieces do not give back the input (%zu vs %zu bytes)\n", cat_len, len);
        abort();
    }
    free(cat);
    // with <bos> (the small tokenizer's template adds exactly one id in front)
    size_t nb = 0;
    if (g4_tokenizer_encode(tok, text, len, 1, ids, n + 8, &nb) != G4_OK || nb != n + 1) abort();
    free(ids);
}

static void fuzz_ids(const uint8_t *data, size_t size) {
    size_t n = size / 4;
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) abort();
    int any_bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)data[4 * i] | (uint32_t)data[4 * i + 1] << 8 |
                     (uint32_t)data[4 * i + 2] << 16 | (uint32_t)data[4 * i + 3] << 24;
        // mostly small ids (valid ones), sometimes anything
        ids[i] = (u & 0x80000000u) ? (int32_t)u : (int32_t)(u % 600u);
        if (ids[i] < 0 || ids[i] >= g4_tokenizer_vocab_size(tok)) any_bad = 1;
    }
    for (int skip = 0; skip < 2; skip++) {
        size_t dl;
        g4_status st;
        char *d = decode_checked(ids, n, skip, &dl, &st);
        if ((st == G4_ERR_INVALID_TOKEN) != any_bad) abort();
        if (st != G4_OK && st != G4_ERR_INVALID_TOKEN) abort();
        free(d);
    }
    pieces(ids, n, NULL, NULL);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    if (data[0] & 1) {
        fuzz_ids(data + 1, size - 1);
    } else {
        // exact-size heap copy: reads past the end are caught (text is not NUL-terminated)
        char *text = malloc(size - 1 ? size - 1 : 1);
        if (!text) abort();
        memcpy(text, data + 1, size - 1);
        fuzz_text(text, size - 1);
        free(text);
    }
    return 0;
}
