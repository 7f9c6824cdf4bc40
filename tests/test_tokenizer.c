// Tokenizer tests: encode/decode of every record in tests/tokenizer/expected_small.txt (made by
// the Hugging Face `tokenizers` library, see tests/tokenizer/make_tokenizer_fixtures.py) must
// match exactly; pieces, buffer convention and load errors. With G4_REAL_VOCAB_DIR set
// (tests/tokenizer/real_vocab.sh) the same comparison runs on a real 262144-token vocabulary
// (by default Gemma 4's own, from llama.cpp's ggml-vocab-gemma-4.gguf), and, when the directory
// has llama.cpp's tokenizer test cases (ggml-vocab-gemma-4.gguf.inp/.out), those too.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "status.h"
#include "tokenizer.h"

#define SMALL_JSON "tests/golden/tokenizer_small/tokenizer.json"
#define SMALL_EXPECTED "tests/tokenizer/expected_small.txt"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// Splits line (modified in place) at tabs; returns the number of fields.
static int split_tabs(char *line, char **f, int max) {
    int n = 0;
    f[n++] = line;
    for (char *p = line; *p && n < max; p++)
        if (*p == '\t') *p = '\0', f[n++] = p + 1;
    return n;
}

static size_t unhex(const char *h, char *out) {
    size_t n = 0;
    for (; h[0] && h[1]; h += 2) {
        unsigned v;
        sscanf(h, "%2x", &v);
        out[n++] = (char)v;
    }
    return n;
}

static size_t parse_ids(char *s, int32_t *out) {
    size_t n = 0;
    for (char *end; *s; s = end) {
        long v = strtol(s, &end, 10);
        if (end == s) break;
        out[n++] = (int32_t)v;
    }
    return n;
}

static void print_ids(const char *what, const int32_t *ids, size_t n) {
    printf("    %s:", what);
    for (size_t i = 0; i < n && i < 40; i++) printf(" %d", ids[i]);
    printf(n > 40 ? " ...\n" : "\n");
}

struct counts {
    int records, mismatches, piece_mismatches;
    double encode_s;
    size_t encode_bytes;
};

static void check_encode(const struct g4_tokenizer *tok, char **f, int nf, struct counts *c,
                         int32_t *ids, int32_t *want, char *text) {
    assert_int_equal(nf, 4);
    size_t len = unhex(f[1], text);
    for (int bos = 0; bos < 2; bos++) {
        size_t n_want = parse_ids(f[2 + bos], want), n = 0;
        double t0 = now_s();
        g4_status st = g4_tokenizer_encode(tok, text, len, bos, ids, 1 << 20, &n);
        c->encode_s += now_s() - t0;
        c->encode_bytes += len;
        c->records++;
        if (st != G4_OK || n != n_want || memcmp(ids, want, n * sizeof *ids) != 0) {
            if (c->mismatches++ < 5) {
                printf("  encode mismatch (add_bos=%d, status %d) for hex %s\n", bos, st, f[1]);
                print_ids("want", want, n_want);
                print_ids("got ", ids, n);
            }
        }
    }
}

static void check_decode(const struct g4_tokenizer *tok, char **f, int nf, struct counts *c,
                         int32_t *ids, char *want, char *got) {
    assert_int_equal(nf, 4);
    size_t n_ids = parse_ids(f[1], ids);
    for (int skip = 0; skip < 2; skip++) {
        size_t n_want = unhex(f[2 + skip], want), n = 0;
        g4_status st = g4_tokenizer_decode(tok, ids, n_ids, skip, got, 1 << 22, &n);
        c->records++;
        if (st != G4_OK || n != n_want || memcmp(got, want, n) != 0) {
            if (c->mismatches++ < 5) {
                printf("  decode mismatch (skip_special=%d, status %d) for ids %s\n", skip, st,
                       f[1]);
                printf("    want %.*s\n    got  %.*s\n", (int)n_want, want, (int)n, got);
            }
        }
    }
    // Streaming pieces concatenate to decode(skip_special=0) whenever byte runs are valid UTF-8
    // (else ByteFallback turns each byte into U+FFFD while a piece is the raw byte).
    size_t n_want = unhex(f[2], want), o = 0;
    for (size_t i = 0; i < n_ids; i++) {
        size_t n;
        assert_int_equal(g4_tokenizer_piece(tok, ids[i], got + o, (1 << 22) - o, &n), G4_OK);
        o += n;
    }
    if (!strstr(f[2], "efbfbd") && (o != n_want || memcmp(got, want, o) != 0))
        c->piece_mismatches++;
}

static void run_expected(const char *json_path, const char *expected_path, int min_records) {
    struct g4_tokenizer *tok = NULL;
    double t0 = now_s();
    g4_status st = g4_tokenizer_load(&tok, json_path);
    if (st != G4_OK) printf("  load: %s\n", g4_last_error());
    assert_int_equal(st, G4_OK);
    printf("  loaded %s: %d ids in %.3f s\n", json_path, g4_tokenizer_vocab_size(tok), now_s() - t0);
    size_t bytes = 0;
    char *text = g4_read_file(expected_path, &bytes);
    assert_non_null(text);
    int32_t *ids = malloc((1 << 20) * sizeof *ids), *want = malloc((1 << 20) * sizeof *want);
    char *a = malloc(1 << 22), *b = malloc(1 << 22);
    assert_true(ids && want && a && b);
    struct counts c = {0};
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        if (strncmp(line, "# vocabulary: ", 14) == 0) printf("  vocabulary: %s\n", line + 14);
        if (line[0] == '#' || !line[0]) continue;
        char *f[8];
        int nf = split_tabs(line, f, 8);
        if (strcmp(f[0], "E") == 0) check_encode(tok, f, nf, &c, ids, want, a);
        else if (strcmp(f[0], "D") == 0) check_decode(tok, f, nf, &c, ids, a, b);
        else fail_msg("bad record kind %s", f[0]);
    }
    printf("  %d comparisons, %d mismatches, %d piece-concatenation mismatches; encode %.1f MB/s\n",
           c.records, c.mismatches, c.piece_mismatches,
           c.encode_bytes / 1e6 / (c.encode_s > 0 ? c.encode_s : 1e-9));
    free(text), free(ids), free(want), free(a), free(b);
    g4_tokenizer_free(tok);
    assert_true(c.records >= min_records);
    assert_int_equal(c.mismatches, 0);
    assert_int_equal(c.piece_mismatches, 0);
}

static void test_small_matches_hf(void **state) {
    (void)state;
    run_expected(g4_src_path(SMALL_JSON), g4_src_path(SMALL_EXPECTED), 10000);
}

// llama.cpp's tests/test-tokenizer-0.cpp cases: inputs separated by "\n__ggml_vocab_test__\n"
// in INP, one line of expected ids (encoded without BOS) per input in OUT. Returns the number of
// cases compared, or -1 when INP is absent.
static int run_llama_cpp_cases(const char *json_path, const char *inp_path, const char *out_path) {
    size_t n_inp = 0, n_out = 0;
    char *inp = g4_read_file(inp_path, &n_inp);
    if (!inp) return -1;
    char *out = g4_read_file(out_path, &n_out);
    assert_non_null(out);
    struct g4_tokenizer *tok = NULL;
    assert_int_equal(g4_tokenizer_load(&tok, json_path), G4_OK);
    static const char sep[] = "\n__ggml_vocab_test__\n";
    int32_t *ids = malloc((1 << 16) * sizeof *ids), *want = malloc((1 << 16) * sizeof *want);
    assert_true(ids && want);
    int cases = 0, mismatches = 0;
    char *o = out;
    for (size_t pos = 0; pos < n_inp;) {
        char *next = strstr(inp + pos, sep);
        size_t len = next ? (size_t)(next - (inp + pos)) : n_inp - pos;
        assert_true(o < out + n_out); // as many output lines as inputs
        char *eol = strchr(o, '\n');
        if (eol) *eol = '\0';
        size_t n_want = parse_ids(o, want), n = 0;
        o = eol ? eol + 1 : out + n_out;
        g4_status st = g4_tokenizer_encode(tok, inp + pos, len, 0, ids, 1 << 16, &n);
        cases++;
        if (st != G4_OK || n != n_want || memcmp(ids, want, n * sizeof *ids) != 0) {
            mismatches++;
            printf("  llama.cpp case %d mismatch (status %d): \"%.*s\"\n", cases, st, (int)len,
                   inp + pos);
            print_ids("want", want, n_want);
            print_ids("got ", ids, n);
        }
        pos = next ? (size_t)(next - inp) + sizeof sep - 1 : n_inp;
    }
    assert_true(o >= out + n_out); // and no more
    printf("  llama.cpp tokenizer test cases (%s): %d compared, %d mismatches\n", inp_path, cases,
           mismatches);
    free(ids), free(want), free(inp), free(out);
    g4_tokenizer_free(tok);
    assert_int_equal(mismatches, 0);
    return cases;
}

static void test_real_vocab_matches_hf(void **state) {
    (void)state;
    const char *dir = getenv("G4_REAL_VOCAB_DIR");
    if (!dir || !*dir) {
        printf("  G4_REAL_VOCAB_DIR unset (tests/tokenizer/real_vocab.sh builds it): skipped\n");
        skip();
    }
    char json[4096], expected[4096], inp[4096], out[4096];
    snprintf(json, sizeof json, "%s/tokenizer.json", dir);
    snprintf(expected, sizeof expected, "%s/expected.txt", dir);
    snprintf(inp, sizeof inp, "%s/ggml-vocab-gemma-4.gguf.inp", dir);
    snprintf(out, sizeof out, "%s/ggml-vocab-gemma-4.gguf.out", dir);
    run_expected(json, expected, 1000);
    if (run_llama_cpp_cases(json, inp, out) < 0)
        printf("  no llama.cpp test cases (%s): not compared\n", inp);
}

static struct g4_tokenizer *load_small(void) {
    struct g4_tokenizer *tok = NULL;
    assert_int_equal(g4_tokenizer_load(&tok, g4_src_path(SMALL_JSON)), G4_OK);
    return tok;
}

static void test_lookup_and_special(void **state) {
    (void)state;
    struct g4_tokenizer *tok = load_small();
    assert_int_equal(g4_tokenizer_vocab_size(tok), 512);
    assert_int_equal(g4_tokenizer_find(tok, "<bos>"), 2);
    assert_int_equal(g4_tokenizer_find(tok, "<|turn>"), 5);
    assert_int_equal(g4_tokenizer_find(tok, "<0x41>"), g4_tokenizer_find(tok, "<0x40>") + 1);
    assert_int_equal(g4_tokenizer_find(tok, "no such token"), -1);
    assert_true(g4_tokenizer_is_special(tok, 2));
    assert_true(g4_tokenizer_is_special(tok, g4_tokenizer_find(tok, "<turn|>")));
    assert_false(g4_tokenizer_is_special(tok, g4_tokenizer_find(tok, "\n")));
    assert_false(g4_tokenizer_is_special(tok, g4_tokenizer_find(tok, "<0x41>")));
    assert_false(g4_tokenizer_is_special(tok, -1));
    // pieces: "▁" becomes a space, byte tokens give their raw byte
    char buf[16];
    size_t n = 0;
    assert_int_equal(g4_tokenizer_piece(tok, g4_tokenizer_find(tok, "<0xE6>"), buf, sizeof buf, &n),
                     G4_OK);
    assert_int_equal(n, 1);
    assert_int_equal((unsigned char)buf[0], 0xE6);
    int32_t sp = g4_tokenizer_find(tok, "\xE2\x96\x81");
    assert_true(sp >= 0);
    assert_int_equal(g4_tokenizer_piece(tok, sp, buf, sizeof buf, &n), G4_OK);
    assert_int_equal(n, 1);
    assert_int_equal(buf[0], ' ');
    g4_tokenizer_free(tok);
}

static void test_buffer_convention(void **state) {
    (void)state;
    struct g4_tokenizer *tok = load_small();
    const char *text = "Hello, world! user\n";
    size_t need = 0, n = 0;
    assert_int_equal(g4_tokenizer_encode(tok, text, strlen(text), 1, NULL, 0, &need), G4_OK);
    assert_true(need > 3);
    int32_t ids[64] = {0};
    ids[need - 1] = -7;
    assert_int_equal(g4_tokenizer_encode(tok, text, strlen(text), 1, ids, need - 1, &n),
                     G4_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(n, need);
    assert_int_equal(ids[need - 1], -7); // nothing written past cap... nor anything at all
    assert_non_null(strstr(g4_last_error(), "needs"));
    ids[need] = -9; // sentinel just past the exact fit
    assert_int_equal(g4_tokenizer_encode(tok, text, strlen(text), 1, ids, need, &n), G4_OK);
    assert_int_equal(n, need);
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[need], -9);

    size_t bytes = 0;
    assert_int_equal(g4_tokenizer_decode(tok, ids, n, 1, NULL, 0, &bytes), G4_OK);
    assert_int_equal(bytes, strlen(text)); // <bos> dropped, rest round-trips
    char out[64];
    memset(out, 'Z', sizeof out);
    assert_int_equal(g4_tokenizer_decode(tok, ids, n, 1, out, bytes - 1, &n), G4_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(n, bytes);
    assert_int_equal(g4_tokenizer_decode(tok, ids, need, 1, out, bytes, &n), G4_OK);
    assert_memory_equal(out, text, bytes);
    assert_int_equal(out[bytes], 'Z'); // exact fit: no NUL written past cap
    assert_int_equal(g4_tokenizer_decode(tok, ids, need, 1, out, sizeof out, &n), G4_OK);
    assert_int_equal(out[bytes], '\0');
    assert_int_equal(g4_tokenizer_piece(tok, 2, NULL, 0, &n), G4_OK);
    assert_int_equal(n, 5); // "<bos>"
    assert_int_equal(g4_tokenizer_piece(tok, 2, out, 4, &n), G4_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(g4_tokenizer_encode(tok, NULL, 0, 0, NULL, 0, &n), G4_OK);
    assert_int_equal(n, 0);
    g4_tokenizer_free(tok);
}

static void test_invalid_token(void **state) {
    (void)state;
    struct g4_tokenizer *tok = load_small();
    int32_t bad[] = {2, 512};
    size_t n = 0;
    assert_int_equal(g4_tokenizer_decode(tok, bad, 2, 0, NULL, 0, &n), G4_ERR_INVALID_TOKEN);
    assert_non_null(strstr(g4_last_error(), "512"));
    bad[1] = -1;
    assert_int_equal(g4_tokenizer_decode(tok, bad, 2, 0, NULL, 0, &n), G4_ERR_INVALID_TOKEN);
    assert_int_equal(g4_tokenizer_piece(tok, 99999, NULL, 0, &n), G4_ERR_INVALID_TOKEN);
    g4_tokenizer_free(tok);
}

// Invalid UTF-8 is byte-fallback encoded one byte at a time and decodes back to U+FFFD per byte.
static void test_invalid_utf8(void **state) {
    (void)state;
    struct g4_tokenizer *tok = load_small();
    const char text[] = "a\xE6\x97\xff\xC0\x80\xED\xA0\x80z\xE6";
    size_t len = sizeof text - 1, n = 0;
    int32_t ids[64];
    assert_int_equal(g4_tokenizer_encode(tok, text, len, 0, ids, 64, &n), G4_OK);
    char bytes[64];
    size_t nb = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k;
        assert_int_equal(g4_tokenizer_piece(tok, ids[i], bytes + nb, sizeof bytes - nb, &k), G4_OK);
        nb += k;
    }
    assert_int_equal(nb, len); // the pieces give back the exact bytes
    assert_memory_equal(bytes, text, len);
    assert_int_equal(n, len);  // each byte its own token ("a" and "z" included here)
    g4_tokenizer_free(tok);
}

static void expect_load(const char *json, g4_status want, const char *msg) {
    const char *dir = g4_tmpdir("tokenizer");
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    assert_int_equal(g4_write_file(path, json, strlen(json)), 0);
    struct g4_tokenizer *tok = (struct g4_tokenizer *)1;
    g4_status st = g4_tokenizer_load(&tok, path);
    if (st != want || !strstr(g4_last_error(), msg))
        printf("  %s -> status %d, message \"%s\"\n", json, st, g4_last_error());
    assert_int_equal(st, want);
    assert_null(tok);
    assert_non_null(strstr(g4_last_error(), msg));
    g4_rm_rf(dir);
}

#define MODEL_OK "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[\"a b\"]}"

static void test_load_errors(void **state) {
    (void)state;
    struct g4_tokenizer *tok = (struct g4_tokenizer *)1;
    assert_int_equal(g4_tokenizer_load(&tok, "/nonexistent/tokenizer.json"), G4_ERR_IO);
    assert_null(tok);
    assert_non_null(strstr(g4_last_error(), "/nonexistent/tokenizer.json"));
    expect_load("{\"model\": {", G4_ERR_FORMAT, "not valid JSON");
    expect_load("[1,2]", G4_ERR_FORMAT, "not an object");
    expect_load("{}", G4_ERR_FORMAT, "model is missing");
    expect_load("{\"model\":{\"type\":\"WordPiece\",\"vocab\":{}}}", G4_ERR_UNSUPPORTED,
                "model type WordPiece");
    expect_load("{\"model\":{\"type\":\"Unigram\",\"vocab\":[]}}", G4_ERR_UNSUPPORTED, "Unigram");
    expect_load("{" MODEL_OK ",\"normalizer\":{\"type\":\"NFKC\"}}", G4_ERR_UNSUPPORTED,
                "normalizer type NFKC");
    expect_load("{" MODEL_OK ",\"normalizer\":{\"type\":\"Replace\",\"pattern\":{\"Regex\":\" +\"},"
                "\"content\":\"x\"}}", G4_ERR_UNSUPPORTED, "Regex");
    expect_load("{" MODEL_OK ",\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}", G4_ERR_UNSUPPORTED,
                "pre_tokenizer type ByteLevel");
    expect_load("{" MODEL_OK ",\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":"
                "\"Metaspace\"}]}}", G4_ERR_UNSUPPORTED, "decoder type Metaspace");
    expect_load("{" MODEL_OK ",\"post_processor\":{\"type\":\"BertProcessing\"}}",
                G4_ERR_UNSUPPORTED, "post_processor type BertProcessing");
    expect_load("{" MODEL_OK ",\"added_tokens\":[{\"id\":3,\"content\":\"<x>\",\"single_word\":"
                "true}]}", G4_ERR_UNSUPPORTED, "single_word");
    expect_load("{" MODEL_OK ",\"truncation\":{\"max_length\":5}}", G4_ERR_UNSUPPORTED,
                "truncation");
    expect_load("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"a b\"]}}",
                G4_ERR_FORMAT, "\"ab\" is not in the vocab");
    expect_load("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a c\"]}}",
                G4_ERR_FORMAT, "\"c\" is not in the vocab");
    expect_load("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":0},\"merges\":[]}}",
                G4_ERR_FORMAT, "given twice");
    expect_load("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-4},\"merges\":[]}}",
                G4_ERR_FORMAT, "not a valid id");
    // fuzzer find: one huge id made the dense id tables allocate gigabytes
    expect_load("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":480000000},\"merges\":[]}}",
                G4_ERR_UNSUPPORTED, "480000000");
    expect_load("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[],\"dropout\":0.1}}",
                G4_ERR_UNSUPPORTED, "dropout");
    expect_load("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[],\"unk_token\":"
                "\"<unk>\"}}", G4_ERR_FORMAT, "unk_token");
}

// Both merge spellings load to the same tokenizer; the pair form allows spaces in tokens.
static void test_merge_formats(void **state) {
    (void)state;
    const char *dir = g4_tmpdir("tokenizer_merges");
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    const char *json = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2,\" \":3,"
                       "\"ab \":4},\"merges\":[[\"a\",\"b\"],[\"ab\",\" \"]]}}";
    assert_int_equal(g4_write_file(path, json, strlen(json)), 0);
    struct g4_tokenizer *tok = NULL;
    assert_int_equal(g4_tokenizer_load(&tok, path), G4_OK);
    int32_t ids[8];
    size_t n = 0;
    assert_int_equal(g4_tokenizer_encode(tok, "ab ab", 5, 1, ids, 8, &n), G4_OK);
    assert_int_equal(n, 2); // no post_processor: add_bos adds nothing
    assert_int_equal(ids[0], 4);
    assert_int_equal(ids[1], 2);
    char out[16];
    assert_int_equal(g4_tokenizer_decode(tok, ids, n, 0, out, sizeof out, &n), G4_OK);
    assert_string_equal(out, "ab  ab"); // no decoder: tokens joined with " ", as HF
    g4_tokenizer_free(tok);
    g4_rm_rf(dir);
}

// Loads json (written to a temporary tokenizer.json) or fails the test.
static struct g4_tokenizer *load_json(const char *json) {
    const char *dir = g4_tmpdir("tokenizer_json");
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    assert_int_equal(g4_write_file(path, json, strlen(json)), 0);
    struct g4_tokenizer *tok = NULL;
    g4_status st = g4_tokenizer_load(&tok, path);
    if (st != G4_OK) printf("  %s\n", g4_last_error());
    assert_int_equal(st, G4_OK);
    g4_rm_rf(dir);
    return tok;
}

static void expect_ids(const struct g4_tokenizer *tok, const char *text, size_t len,
                       const int32_t *want, size_t n_want) {
    int32_t *ids = malloc((len + 1) * sizeof *ids);
    size_t n = 0;
    assert_int_equal(g4_tokenizer_encode(tok, text, len, 0, ids, len + 1, &n), G4_OK);
    assert_int_equal(n, n_want);
    assert_memory_equal(ids, want, n * sizeof *ids);
    free(ids);
}

// Added tokens that are whitespace and strip whitespace: each match used to rescan the run
// before it (lstrip) or after it (rstrip), so a long run took quadratic time (100k spaces: 30 s).
// The small cases and the 2000-character runs were checked against Hugging Face tokenizers
// 0.23.3, which gives one token per character for such runs.
static void test_strip_runs_linear(void **state) {
    (void)state;
    struct g4_tokenizer *tok = load_json(
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"<unk>\":0,\"a\":1,\"b\":2},\"merges\":[],"
        "\"unk_token\":\"<unk>\"},\"added_tokens\":["
        "{\"id\":3,\"content\":\" \",\"lstrip\":true,\"rstrip\":false,\"normalized\":false},"
        "{\"id\":4,\"content\":\"\\t\",\"lstrip\":false,\"rstrip\":true,\"normalized\":false},"
        "{\"id\":5,\"content\":\"<r>\",\"lstrip\":false,\"rstrip\":true,\"normalized\":false}]}");
    expect_ids(tok, "a   b", 5, (const int32_t[]){1, 3, 3, 3, 2}, 5);
    expect_ids(tok, "a\t\t\tb", 5, (const int32_t[]){1, 4, 4, 4, 2}, 5);
    expect_ids(tok, "<r>\t\t a", 7, (const int32_t[]){5, 4, 4, 1}, 4);
    enum { N = 200000 };
    char *text = malloc(N);
    int32_t *want = malloc(N * sizeof *want);
    static const struct { char c; int32_t id; } runs[] = {{' ', 3}, {'\t', 4}};
    for (size_t r = 0; r < G4_COUNT(runs); r++) {
        memset(text, runs[r].c, N);
        for (int i = 0; i < N; i++) want[i] = runs[r].id;
        double t0 = now_s();
        expect_ids(tok, text, N, want, N);
        double dt = now_s() - t0;
        printf("  %d x '%s': %.3f s\n", N, runs[r].c == ' ' ? " " : "\\t", dt);
        assert_true(dt < 2.0); // ~0.01 s; the quadratic scan took minutes
    }
    free(text);
    free(want);
    g4_tokenizer_free(tok);
}

// Sparse ids: the id tables are dense but zero-initialised, so holes cost nothing to load (a
// 4 KB fuzzer input with one id of 371497 took 23 ms per load before) and decode to nothing.
static void test_sparse_ids(void **state) {
    (void)state;
    double t0 = now_s();
    struct g4_tokenizer *tok = load_json(
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":5000000,\"ab\":16777215},"
        "\"merges\":[\"a b\"]},\"added_tokens\":[{\"id\":9000000,\"content\":\"<x>\","
        "\"special\":true}],\"decoder\":{\"type\":\"Fuse\"}}");
    printf("  loaded in %.3f s\n", now_s() - t0);
    assert_int_equal(g4_tokenizer_vocab_size(tok), 16777216);
    assert_int_equal(g4_tokenizer_find(tok, "ab"), 16777215);
    assert_int_equal(g4_tokenizer_find(tok, "<x>"), 9000000);
    assert_int_equal(g4_tokenizer_find(tok, "c"), -1);
    assert_int_equal(g4_tokenizer_is_special(tok, 9000000), 1);
    assert_int_equal(g4_tokenizer_is_special(tok, 1), 0);
    expect_ids(tok, "ab<x>b", 6, (const int32_t[]){16777215, 9000000, 5000000}, 3);
    const int32_t ids[] = {0, 1, 5000000, 8999999, 9000000, 16777215}; // 1, 8999999: holes
    char out[32];
    size_t n = 0;
    assert_int_equal(g4_tokenizer_decode(tok, ids, G4_COUNT(ids), 0, out, sizeof out, &n), G4_OK);
    assert_string_equal(out, "ab<x>ab");
    assert_int_equal(g4_tokenizer_decode(tok, ids, G4_COUNT(ids), 1, out, sizeof out, &n), G4_OK);
    assert_string_equal(out, "abab");
    assert_int_equal(g4_tokenizer_piece(tok, 1, out, sizeof out, &n), G4_OK);
    assert_int_equal(n, 0);
    g4_tokenizer_free(tok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_matches_hf),  cmocka_unit_test(test_lookup_and_special),
        cmocka_unit_test(test_buffer_convention), cmocka_unit_test(test_invalid_token),
        cmocka_unit_test(test_invalid_utf8),      cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_merge_formats),     cmocka_unit_test(test_strip_runs_linear),
        cmocka_unit_test(test_sparse_ids),        cmocka_unit_test(test_real_vocab_matches_hf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
