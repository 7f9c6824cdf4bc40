// Safetensors reader: files built here byte by byte (single file, sharded with an index), every
// malformed header and checkpoint layout -> exact status and a message naming the file/tensor,
// g4_safetensors_parse on in-memory buffers (its fuzz entry point), and the golden checkpoints.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "safetensors.h"

// A safetensors image: 8-byte LE header length, `json` padded with spaces to a multiple of 8 (as
// the safetensors library writes it), then `data`. Returns malloc'd bytes; *n gets the size.
static uint8_t *image(const char *json, const void *data, size_t data_bytes, size_t *n) {
    size_t hdr = strlen(json);
    size_t padded = (hdr + 7) / 8 * 8;
    *n = 8 + padded + data_bytes;
    uint8_t *buf = malloc(*n ? *n : 1);
    assert_non_null(buf);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    memcpy(buf + 8, json, hdr);
    memset(buf + 8 + hdr, ' ', padded - hdr);
    if (data_bytes) memcpy(buf + 8 + padded, data, data_bytes);
    return buf;
}

static void write_image(const char *dir, const char *file, const char *json, const void *data,
                        size_t data_bytes) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    size_t n;
    uint8_t *buf = image(json, data, data_bytes, &n);
    assert_int_equal(g4_write_file(path, buf, n), 0);
    free(buf);
}

static void write_text(const char *dir, const char *file, const char *text) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    assert_int_equal(g4_write_file(path, text, strlen(text)), 0);
}

static void expect_error(g4_status got, g4_status want, const char *needle) {
    if (got != want || !strstr(g4_last_error(), needle))
        print_error("status %s, message \"%s\"; wanted %s with \"%s\"\n", g4_status_name(got),
                    g4_last_error(), g4_status_name(want), needle);
    assert_int_equal(got, want);
    assert_non_null(strstr(g4_last_error(), needle));
}

// Two tensors of different dtypes: w.f32 (2, 3) F32 = 0..5 at [0, 24), w.bf16 (4,) BF16 = 1..4
// at [24, 32), plus __metadata__.
static const char TWO_JSON[] =
    "{\"__metadata__\":{\"format\":\"pt\"},"
    "\"w.f32\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
    "\"w.bf16\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[24,32]}}";

static void two_data(uint8_t out[32]) {
    float f[6] = {0, 1, 2, 3, 4, 5};
    uint16_t b[4] = {0x3f80, 0x4000, 0x4040, 0x4080}; // bf16 1, 2, 3, 4
    memcpy(out, f, 24);
    memcpy(out + 24, b, 8);
}

static void check_two(const struct g4_safetensors *st, int shard_of_f32, int shard_of_bf16) {
    const struct g4_tensor *f = g4_safetensors_find(st, "w.f32");
    const struct g4_tensor *b = g4_safetensors_find(st, "w.bf16");
    assert_non_null(f);
    assert_non_null(b);
    assert_null(g4_safetensors_find(st, "__metadata__"));
    assert_null(g4_safetensors_find(st, "w.f3"));
    assert_string_equal(f->name, "w.f32");
    assert_int_equal(f->dtype, G4_DTYPE_F32);
    assert_int_equal(f->n_dims, 2);
    assert_int_equal(f->shape[0], 2);
    assert_int_equal(f->shape[1], 3);
    assert_int_equal(f->n_bytes, 24);
    assert_int_equal(f->shard, shard_of_f32);
    float fv[6];
    memcpy(fv, f->data, sizeof fv);
    for (int i = 0; i < 6; i++) assert_true(fv[i] == (float)i);
    assert_int_equal(b->dtype, G4_DTYPE_BF16);
    assert_int_equal(b->n_dims, 1);
    assert_int_equal(b->shape[0], 4);
    assert_int_equal(b->n_bytes, 8);
    assert_int_equal(b->shard, shard_of_bf16);
    const uint16_t *bv = b->data;
    assert_int_equal(bv[0], 0x3f80);
    assert_int_equal(bv[3], 0x4080);
}

static void test_dtype_helpers(void **state) {
    (void)state;
    assert_int_equal(g4_dtype_size(G4_DTYPE_F32), 4);
    assert_int_equal(g4_dtype_size(G4_DTYPE_F16), 2);
    assert_int_equal(g4_dtype_size(G4_DTYPE_BF16), 2);
    assert_string_equal(g4_dtype_name(G4_DTYPE_F32), "F32");
    assert_string_equal(g4_dtype_name(G4_DTYPE_F16), "F16");
    assert_string_equal(g4_dtype_name(G4_DTYPE_BF16), "BF16");
    assert_int_equal(g4_dtype_size(G4_DTYPE_I8), 1);
    assert_string_equal(g4_dtype_name(G4_DTYPE_F8_E4M3), "F8_E4M3");
    assert_int_equal(g4_dtype_size((enum g4_dtype)99), 0);
    assert_string_equal(g4_dtype_name((enum g4_dtype)99), "unknown");
}

// Accepted edge cases: empty tensors share offsets with others and need no alignment, the header
// may be padded with whitespace, and an empty header is an empty checkpoint.
static void test_parse_edge_cases(void **state) {
    (void)state;
    const char *json = "{\"e1\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
                       "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                       "\"e2\":{\"dtype\":\"F32\",\"shape\":[3,0],\"data_offsets\":[1,1]},"
                       "\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[4,8]}}\n\t ";
    uint8_t zeros[8] = {0};
    size_t n;
    uint8_t *buf = image(json, zeros, sizeof zeros, &n);
    struct g4_safetensors st = {0};
    assert_int_equal(g4_safetensors_parse(&st, buf, n, 3, NULL), G4_OK);
    assert_int_equal(st.n_tensors, 4);
    assert_int_equal(g4_safetensors_find(&st, "e2")->shape[0], 3);
    assert_int_equal(g4_safetensors_find(&st, "b")->shard, 3);
    g4_safetensors_free(&st);
    free(buf);

    buf = image("{}", NULL, 0, &n);
    assert_int_equal(g4_safetensors_parse(&st, buf, n, 0, "empty"), G4_OK);
    assert_int_equal(st.n_tensors, 0);
    assert_null(g4_safetensors_find(&st, "a"));
    g4_safetensors_free(&st);
    free(buf);

    expect_error(g4_safetensors_parse(NULL, zeros, 8, 0, "nul"), G4_ERR_INVALID_ARGUMENT, "nul");
    expect_error(g4_safetensors_parse(&st, NULL, 8, 0, NULL), G4_ERR_INVALID_ARGUMENT,
                 "safetensors buffer");
    expect_error(g4_safetensors_open(NULL, "/tmp"), G4_ERR_INVALID_ARGUMENT, "NULL");
    assert_null(g4_safetensors_find(NULL, "a"));
    g4_safetensors_free(NULL);
}

static void test_parse_buffer(void **state) {
    (void)state;
    uint8_t data[32];
    two_data(data);
    size_t n;
    uint8_t *buf = image(TWO_JSON, data, sizeof data, &n);
    struct g4_safetensors st = {0};
    assert_int_equal(g4_safetensors_parse(&st, buf, n, 0, "mem"), G4_OK);
    assert_int_equal(st.n_tensors, 2);
    assert_string_equal(st.tensors[0].name, "w.bf16"); // sorted by name
    assert_string_equal(st.tensors[1].name, "w.f32");
    check_two(&st, 0, 0);
    const struct g4_tensor *b = g4_safetensors_find(&st, "w.bf16");
    size_t data_start = n - sizeof data;
    assert_ptr_equal(b->data, buf + data_start + 24);
    assert_int_equal(b->data_offset, 24);

    // A second buffer appends (as another shard); a failing one leaves st as it was.
    const char *more = "{\"z\":{\"dtype\":\"F16\",\"shape\":[],\"data_offsets\":[0,2]},"
                       "\"empty\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[2,2]}}";
    uint16_t half = 0x3c00;
    size_t n2;
    uint8_t *buf2 = image(more, &half, 2, &n2);
    assert_int_equal(g4_safetensors_parse(&st, buf2, n2, 1, "mem2"), G4_OK);
    assert_int_equal(st.n_tensors, 4);
    const struct g4_tensor *z = g4_safetensors_find(&st, "z");
    assert_non_null(z);
    assert_int_equal(z->n_dims, 0); // scalar
    assert_int_equal(z->n_bytes, 2);
    assert_int_equal(z->shard, 1);
    assert_int_equal(g4_safetensors_find(&st, "empty")->n_bytes, 0);
    check_two(&st, 0, 0);
    expect_error(g4_safetensors_parse(&st, buf, n, 2, "again"), G4_ERR_FORMAT, "w.bf16");
    assert_non_null(strstr(g4_last_error(), "again"));
    assert_int_equal(st.n_tensors, 4);
    check_two(&st, 0, 0);
    g4_safetensors_free(&st);
    assert_int_equal(st.n_tensors, 0);
    assert_null(st.tensors);
    g4_safetensors_free(&st); // zeroed struct is fine
    free(buf);
    free(buf2);
}

// Every header error through g4_safetensors_parse: exact status, text, st untouched.
static void test_parse_header_errors(void **state) {
    (void)state;
    static const struct {
        const char *json;
        size_t data_bytes;
        g4_status want;
        const char *needle;
    } cases[] = {
        {"{\"a\": ", 0, G4_ERR_FORMAT, "invalid JSON"},
        {"[1, 2]", 0, G4_ERR_FORMAT, "not an object"},
        {"{} x", 0, G4_ERR_FORMAT, "unexpected bytes"},
        {"{\"w.q4\":{\"dtype\":\"Q4\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4,
         G4_ERR_UNSUPPORTED, "w.q4 has dtype Q4"},
        {"{\"t\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, G4_ERR_FORMAT,
         "t: data_offsets span 8 bytes, but 3 elements of F32 need 12"},
        {"{\"a.w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b.w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         12, G4_ERR_FORMAT, "a.w [0, 8) and b.w [4, 12) overlap"},
        {"{\"far\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 12, G4_ERR_FORMAT,
         "far: data_offsets [8, 16] outside the 12-byte data section"},
        {"{\"rev\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 12, G4_ERR_FORMAT,
         "rev: data_offsets [8, 4] outside"},
        {"{\"neg\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,0]}}", 0, G4_ERR_FORMAT,
         "neg: shape[1] is not a non-negative integer"},
        {"{\"frac\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, G4_ERR_FORMAT,
         "frac: shape[0]"},
        {"{\"str\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8, G4_ERR_FORMAT,
         "str: shape[0]"},
        {"{\"deep\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
         G4_ERR_FORMAT, "deep has 9 dims, at most 8"},
        {"{\"huge\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,2],"
         "\"data_offsets\":[0,4]}}",
         4, G4_ERR_FORMAT, "huge: element count overflows"},
        {"{\"huge\":{\"dtype\":\"BF16\",\"shape\":[4294967296,2147483648],"
         "\"data_offsets\":[0,4]}}",
         4, G4_ERR_FORMAT, "huge: byte size overflows"},
        {"{\"big\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,4]}}", 4, G4_ERR_FORMAT,
         "big: shape[0]"},
        {"{\"nodt\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, G4_ERR_FORMAT,
         "nodt: missing \"dtype\""},
        {"{\"nosh\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, G4_ERR_FORMAT,
         "nosh: missing \"shape\""},
        {"{\"off3\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8, G4_ERR_FORMAT,
         "off3: \"data_offsets\" must be two"},
        {"{\"offneg\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 8, G4_ERR_FORMAT,
         "offneg: \"data_offsets\""},
        {"{\"scalar\":3}", 0, G4_ERR_FORMAT, "scalar: header entry is not an object"},
        {"{\"odd\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}", 8, G4_ERR_FORMAT,
         "odd: data at file offset 66 is misaligned for F32"},
        {"{\"dup\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"dup\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         8, G4_ERR_FORMAT, "dup is present twice"},
    };
    uint8_t zeros[64] = {0};
    for (size_t i = 0; i < G4_COUNT(cases); i++) {
        size_t n;
        uint8_t *buf = image(cases[i].json, zeros, cases[i].data_bytes, &n);
        struct g4_safetensors st = {0};
        g4_status got = g4_safetensors_parse(&st, buf, n, 0, "case.safetensors");
        if (got != cases[i].want) print_error("case %zu: %s\n", i, cases[i].json);
        expect_error(got, cases[i].want, cases[i].needle);
        assert_non_null(strstr(g4_last_error(), "case.safetensors"));
        assert_int_equal(st.n_tensors, 0);
        assert_null(st.tensors);
        free(buf);
    }
}

static void test_parse_truncated_buffers(void **state) {
    (void)state;
    struct g4_safetensors st = {0};
    uint8_t short_buf[7] = {0};
    expect_error(g4_safetensors_parse(&st, short_buf, sizeof short_buf, 0, "tiny"), G4_ERR_FORMAT,
                 "tiny: 7 bytes, shorter than the header length");
    expect_error(g4_safetensors_parse(&st, NULL, 0, 0, "none"), G4_ERR_FORMAT, "truncated");
    uint8_t past[16] = {9, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    expect_error(g4_safetensors_parse(&st, past, sizeof past, 0, "past"), G4_ERR_FORMAT,
                 "past: header length 9 exceeds file size 16");
    uint8_t huge[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    expect_error(g4_safetensors_parse(&st, huge, sizeof huge, 0, "huge"), G4_ERR_FORMAT,
                 "exceeds file size");

    // Every proper prefix of a valid image fails cleanly (ASan checks no byte past it is read).
    uint8_t data[32];
    two_data(data);
    size_t n;
    uint8_t *buf = image(TWO_JSON, data, sizeof data, &n);
    for (size_t k = 0; k < n; k++) {
        uint8_t *copy = malloc(k ? k : 1);
        memcpy(copy, buf, k);
        g4_status got = g4_safetensors_parse(&st, copy, k, 0, "prefix");
        assert_int_equal(got, G4_ERR_FORMAT);
        assert_int_equal(st.n_tensors, 0);
        free(copy);
    }
    // Single-byte corruptions of the header never crash and never leave half a table behind.
    for (size_t k = 0; k < n - sizeof data; k++) {
        for (int v = 0; v < 256; v += 37) {
            uint8_t *copy = malloc(n);
            memcpy(copy, buf, n);
            copy[k] = (uint8_t)v;
            g4_status got = g4_safetensors_parse(&st, copy, n, 0, "mutant");
            assert_true(got == G4_OK || st.n_tensors == 0);
            g4_safetensors_free(&st);
            free(copy);
        }
    }
    free(buf);
}

static void test_open_single_file(void **state) {
    (void)state;
    const char *dir = g4_tmpdir("st_single");
    assert_non_null(dir);
    uint8_t data[32];
    two_data(data);
    write_image(dir, "model.safetensors", TWO_JSON, data, sizeof data);
    // A stray index next to model.safetensors is ignored (model.safetensors wins).
    write_text(dir, "model.safetensors.index.json", "not json");
    struct g4_safetensors st;
    assert_int_equal(g4_safetensors_open(&st, dir), G4_OK);
    assert_int_equal(st.n_shards, 1);
    assert_int_equal(st.n_tensors, 2);
    assert_non_null(st.shard_map[0]);
    assert_int_equal(st.shard_bytes[0], 8 + (strlen(TWO_JSON) + 7) / 8 * 8 + 32);
    check_two(&st, 0, 0);
    g4_safetensors_free(&st);
    assert_int_equal(st.n_shards, 0);
    assert_null(st.shard_map);
    g4_rm_rf(dir);
}

static const char SHARD1[] =
    "{\"w.f32\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
    "\"extra\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[24,28]}}";
static const char SHARD2[] =
    "{\"w.bf16\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,8]}}";
static const char INDEX[] = "{\"metadata\":{\"total_size\":40},\"weight_map\":{"
                            "\"w.f32\":\"model-00001-of-00002.safetensors\","
                            "\"w.bf16\":\"model-00002-of-00002.safetensors\"}}\n";

// Writes the two-shard checkpoint; shard 1 also holds "extra", which the index does not list.
static const char *write_sharded(const char *tag) {
    const char *dir = g4_tmpdir(tag);
    assert_non_null(dir);
    uint8_t data[32], d1[28] = {0};
    two_data(data);
    memcpy(d1, data, 24);
    write_image(dir, "model-00001-of-00002.safetensors", SHARD1, d1, sizeof d1);
    write_image(dir, "model-00002-of-00002.safetensors", SHARD2, data + 24, 8);
    write_text(dir, "model.safetensors.index.json", INDEX);
    return dir;
}

static void test_open_sharded(void **state) {
    (void)state;
    const char *dir = write_sharded("st_sharded");
    struct g4_safetensors st;
    assert_int_equal(g4_safetensors_open(&st, dir), G4_OK);
    assert_int_equal(st.n_shards, 2);
    assert_int_equal(st.n_tensors, 3);
    check_two(&st, 0, 1);
    const struct g4_tensor *x = g4_safetensors_find(&st, "extra"); // in a shard, not in the index
    assert_non_null(x);
    assert_int_equal(x->dtype, G4_DTYPE_F16);
    assert_int_equal(x->shard, 0);
    for (int i = 1; i < st.n_tensors; i++)
        assert_true(strcmp(st.tensors[i - 1].name, st.tensors[i].name) < 0);
    g4_safetensors_free(&st);
    g4_rm_rf(dir);
}

static void test_open_truncated_files(void **state) {
    (void)state;
    const char *dir = g4_tmpdir("st_trunc");
    assert_non_null(dir);
    struct g4_safetensors st;
    write_text(dir, "model.safetensors", "");
    expect_error(g4_safetensors_open(&st, dir), G4_ERR_FORMAT, "file is 0 bytes (truncated)");
    assert_int_equal(st.n_shards, 0);
    assert_null(st.shard_map);
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    assert_int_equal(g4_write_file(path, "\x05\x00\x00", 3), 0);
    expect_error(g4_safetensors_open(&st, dir), G4_ERR_FORMAT, "file is 3 bytes (truncated)");
    assert_non_null(strstr(g4_last_error(), "model.safetensors"));

    uint8_t data[32];
    two_data(data);
    size_t n;
    uint8_t *buf = image(TWO_JSON, data, sizeof data, &n);
    // Header length past EOF: cut inside the JSON.
    assert_int_equal(g4_write_file(path, buf, 20), 0);
    expect_error(g4_safetensors_open(&st, dir), G4_ERR_FORMAT, "exceeds file size 20");
    assert_non_null(strstr(g4_last_error(), path));
    // Data section shorter than the offsets: cut 4 bytes off the end.
    assert_int_equal(g4_write_file(path, buf, n - 4), 0);
    expect_error(g4_safetensors_open(&st, dir), G4_ERR_FORMAT,
                 "w.bf16: data_offsets [24, 32] outside the 28-byte data section");
    assert_int_equal(st.n_tensors, 0);
    free(buf);
    g4_rm_rf(dir);
}

static void test_open_missing(void **state) {
    (void)state;
    struct g4_safetensors st;
    expect_error(g4_safetensors_open(&st, "/nonexistent/g4/checkpoint"), G4_ERR_IO,
                 "/nonexistent/g4/checkpoint: No such file or directory");
    const char *dir = g4_tmpdir("st_empty");
    assert_non_null(dir);
    expect_error(g4_safetensors_open(&st, dir), G4_ERR_IO,
                 "no model.safetensors or model.safetensors.index.json");
    char file[4200];
    snprintf(file, sizeof file, "%s/plain", dir);
    write_text(dir, "plain", "x");
    expect_error(g4_safetensors_open(&st, file), G4_ERR_IO, "not a directory");
    char sub[4200];
    snprintf(sub, sizeof sub, "%s/model.safetensors", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    expect_error(g4_safetensors_open(&st, dir), G4_ERR_IO, "model.safetensors: not a regular file");
    g4_rm_rf(dir);
}

static void test_sharded_errors(void **state) {
    (void)state;
    struct g4_safetensors st;
    uint8_t data[32];
    two_data(data);

    // Same name in two shards.
    const char *dir = write_sharded("st_dup");
    write_image(dir, "model-00002-of-00002.safetensors",
                "{\"w.bf16\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,8]},"
                "\"w.f32\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                data, 16);
    expect_error(g4_safetensors_open(&st, dir), G4_ERR_FORMAT,
                 "w.f32 is present twice (shards 0 and 1)");
    assert_non_null(strstr(g4_last_error(), "model-00002-of-00002.safetensors"));
    assert_int_equal(st.n_tensors, 0);
    assert_null(st.shard_map);
    g4_rm_rf(dir);

    // Index names a shard file that does not exist.
    dir = write_sharded("st_noshard");
    write_text(dir, "model.safetensors.index.json",
               "{\"weight_map\":{\"w.f32\":\"model-00001-of-00002.safetensors\","
               "\"w.bf16\":\"model-00009-of-00009.safetensors\"}}");
    expect_error(g4_safetensors_open(&st, dir), G4_ERR_IO,
                 "model-00009-of-00009.safetensors: No such file or directory");
    g4_rm_rf(dir);

    // Index names a tensor its shard does not hold.
    dir = write_sharded("st_notensor");
    write_text(dir, "model.safetensors.index.json",
               "{\"weight_map\":{\"w.f32\":\"model-00001-of-00002.safetensors\","
               "\"w.bf16\":\"model-00002-of-00002.safetensors\","
               "\"w.ghost\":\"model-00002-of-00002.safetensors\"}}");
    expect_error(g4_safetensors_open(&st, dir), G4_ERR_FORMAT, "w.ghost is listed in");
    assert_non_null(strstr(g4_last_error(), "model-00002-of-00002.safetensors but is not there"));
    g4_rm_rf(dir);

    // Index names the wrong shard for a tensor that exists elsewhere.
    dir = write_sharded("st_wrongshard");
    write_text(dir, "model.safetensors.index.json",
               "{\"weight_map\":{\"w.f32\":\"model-00002-of-00002.safetensors\","
               "\"w.bf16\":\"model-00002-of-00002.safetensors\","
               "\"extra\":\"model-00001-of-00002.safetensors\"}}");
    expect_error(g4_safetensors_open(&st, dir), G4_ERR_FORMAT, "w.f32 is listed in");
    assert_non_null(strstr(g4_last_error(), "found in model-00001-of-00002.safetensors"));
    g4_rm_rf(dir);

    static const struct {
        const char *index;
        g4_status want;
        const char *needle;
    } bad_index[] = {
        {"{\"weight_map\": ", G4_ERR_FORMAT, "invalid JSON"},
        {"{\"metadata\":{}}", G4_ERR_FORMAT, "missing or empty \"weight_map\""},
        {"{\"weight_map\":{}}", G4_ERR_FORMAT, "missing or empty \"weight_map\""},
        {"{\"weight_map\":{\"w.f32\":7}}", G4_ERR_FORMAT, "tensor w.f32: shard must be a file"},
        {"{\"weight_map\":{\"w.f32\":\"../model-00001-of-00002.safetensors\"}}", G4_ERR_FORMAT,
         "tensor w.f32: shard must be a file"},
        {"", G4_ERR_FORMAT, "file is 0 bytes"},
    };
    for (size_t i = 0; i < G4_COUNT(bad_index); i++) {
        dir = write_sharded("st_badindex");
        write_text(dir, "model.safetensors.index.json", bad_index[i].index);
        expect_error(g4_safetensors_open(&st, dir), bad_index[i].want, bad_index[i].needle);
        assert_non_null(strstr(g4_last_error(), "model.safetensors.index.json"));
        assert_int_equal(st.n_shards, 0);
        g4_rm_rf(dir);
    }

    // A malformed shard: the message names that shard file and the tensor.
    dir = write_sharded("st_badshard");
    write_image(dir, "model-00002-of-00002.safetensors",
                "{\"w.bf16\":{\"dtype\":\"BF16\",\"shape\":[5],\"data_offsets\":[0,8]}}", data, 8);
    expect_error(g4_safetensors_open(&st, dir), G4_ERR_FORMAT,
                 "model-00002-of-00002.safetensors: tensor w.bf16: data_offsets span 8 bytes");
    assert_int_equal(st.n_tensors, 0);
    g4_rm_rf(dir);
}

// The golden checkpoints written by tests/golden/make_fixtures.py: single-file ones in each
// dtype, and a sharded multimodal one whose vision/audio tensors load but are never read.
static void test_golden_checkpoints(void **state) {
    (void)state;
    static const struct {
        const char *dir;
        int n_shards;
        const char *embed;
    } golden[] = {
        {"tests/golden/e2b", 1, "model.embed_tokens.weight"},
        {"tests/golden/dense31b", 1, "model.embed_tokens.weight"},
        {"tests/golden/moe", 1, "model.embed_tokens.weight"},
        {"tests/golden/multimodal", 4, "model.language_model.embed_tokens.weight"},
    };
    for (size_t i = 0; i < G4_COUNT(golden); i++) {
        struct g4_safetensors st;
        g4_status got = g4_safetensors_open(&st, g4_src_path(golden[i].dir));
        if (got != G4_OK) print_error("%s: %s\n", golden[i].dir, g4_last_error());
        assert_int_equal(got, G4_OK);
        assert_int_equal(st.n_shards, golden[i].n_shards);
        assert_true(st.n_tensors > 0);
        const struct g4_tensor *e = g4_safetensors_find(&st, golden[i].embed);
        assert_non_null(e);
        assert_int_equal(e->n_dims, 2);
        assert_true(e->shape[0] > 0 && e->shape[1] > 0);
        size_t bytes = 0;
        for (int k = 0; k < st.n_tensors; k++) {
            const struct g4_tensor *t = &st.tensors[k];
            assert_ptr_equal(g4_safetensors_find(&st, t->name), t);
            assert_true((const uint8_t *)t->data + t->n_bytes <=
                        (const uint8_t *)st.shard_map[t->shard] + st.shard_bytes[t->shard]);
            bytes += t->n_bytes;
        }
        print_message("%-24s %d shard(s), %d tensors, %zu data bytes\n", golden[i].dir, st.n_shards,
                      st.n_tensors, bytes);
        if (golden[i].n_shards > 1) {
            int n_vision = 0;
            for (int k = 0; k < st.n_tensors; k++)
                n_vision += strncmp(st.tensors[k].name, "model.vision_tower.", 19) == 0 ||
                            strncmp(st.tensors[k].name, "model.audio_tower.", 18) == 0;
            assert_true(n_vision > 0);
        }
        g4_safetensors_free(&st);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dtype_helpers),
        cmocka_unit_test(test_parse_buffer),
        cmocka_unit_test(test_parse_edge_cases),
        cmocka_unit_test(test_parse_header_errors),
        cmocka_unit_test(test_parse_truncated_buffers),
        cmocka_unit_test(test_open_single_file),
        cmocka_unit_test(test_open_sharded),
        cmocka_unit_test(test_open_truncated_files),
        cmocka_unit_test(test_open_missing),
        cmocka_unit_test(test_sharded_errors),
        cmocka_unit_test(test_golden_checkpoints),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
