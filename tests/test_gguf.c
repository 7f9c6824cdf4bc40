// GGUF reader: images built here byte by byte (every metadata type, every tensor type, alignment)
// and every malformed input -> exact status and a message naming the problem (truncation at every
// byte, wrong counts, unknown types, misaligned offsets, overflowing dims, overlaps, duplicates);
// a file written by the `gguf` Python package (tests/gguf/make_fixtures.py); g4_gguf_open.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf.h"
#include "gguf_config.h"
#include "gguf_weights.h"
#include "harness.h"
#include "model.h"
#include "session.h"
#include "weights.h"

// ---- a little GGUF writer -------------------------------------------------------------------

struct gb {
    uint8_t *p;
    size_t n, cap;
};

static void put(struct gb *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void u32(struct gb *b, uint32_t v) { put(b, &v, 4); }
static void u64(struct gb *b, uint64_t v) { put(b, &v, 8); }
static void str(struct gb *b, const char *s) {
    u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void header(struct gb *b, uint64_t n_tensors, uint64_t n_kv) {
    put(b, "GGUF", 4);
    u32(b, 3);
    u64(b, n_tensors);
    u64(b, n_kv);
}
static void kv_str(struct gb *b, const char *key, const char *v) {
    str(b, key);
    u32(b, G4_GGUF_STRING);
    str(b, v);
}
static void kv_u32(struct gb *b, const char *key, uint32_t v) {
    str(b, key);
    u32(b, G4_GGUF_UINT32);
    u32(b, v);
}
static void pad_to(struct gb *b, size_t align) {
    static const uint8_t zero[64] = {0};
    while (b->n % align) put(b, zero, 1);
}

struct ti {
    const char *name;
    int nd;
    uint64_t ne[4];
    uint32_t type;
    uint64_t off;
};

// header, general.architecture (+ general.alignment when align != 0), the tensor infos, padding,
// then data_bytes bytes of pattern (byte i = i & 0xff).
static uint8_t *image(const struct ti *t, int nt, uint32_t align, size_t data_bytes, size_t *n) {
    struct gb b = {0};
    header(&b, (uint64_t)nt, align ? 2 : 1);
    kv_str(&b, "general.architecture", "test");
    if (align) kv_u32(&b, "general.alignment", align);
    for (int i = 0; i < nt; i++) {
        str(&b, t[i].name);
        u32(&b, (uint32_t)t[i].nd);
        for (int d = 0; d < t[i].nd && d < 4; d++) u64(&b, t[i].ne[d]);
        u32(&b, t[i].type);
        u64(&b, t[i].off);
    }
    pad_to(&b, align ? align : 32);
    for (size_t i = 0; i < data_bytes; i++) {
        uint8_t v = (uint8_t)i;
        put(&b, &v, 1);
    }
    *n = b.n;
    return b.p ? b.p : calloc(1, 1);
}

static void expect_error(g4_status got, g4_status want, const char *needle) {
    if (got != want || !strstr(g4_last_error(), needle))
        print_error("status %s, message \"%s\"; wanted %s with \"%s\"\n", g4_status_name(got),
                    g4_last_error(), g4_status_name(want), needle);
    assert_int_equal(got, want);
    assert_non_null(strstr(g4_last_error(), needle));
}

// Parses and expects an error; checks *g is zeroed afterwards.
static void expect_parse_error(const uint8_t *buf, size_t n, g4_status want, const char *needle) {
    struct g4_gguf g;
    memset(&g, 0x5a, sizeof g);
    expect_error(g4_gguf_parse(&g, buf, n, "t.gguf"), want, needle);
    assert_null(g.kv);
    assert_null(g.tensors);
    assert_int_equal(g.n_kv, 0);
    assert_int_equal(g.n_tensors, 0);
}

// Three tensors: a F32 [4, 2] at 0 (32 B), q Q8_0 [32, 2] at 32 (68 B), z F16 [3] at 128 (6 B);
// the file ends with z's last byte.
static const struct ti THREE[] = {
    {"a", 2, {4, 2}, 0, 0}, {"q", 2, {32, 2}, 8, 32}, {"z", 1, {3}, 1, 128}};

static void test_valid_tensors(void **state) {
    (void)state;
    size_t n;
    uint8_t *buf = image(THREE, 3, 0, 134, &n);
    struct g4_gguf g;
    assert_int_equal(g4_gguf_parse(&g, buf, n, "t.gguf"), G4_OK);
    assert_int_equal(g.version, 3);
    assert_int_equal(g.alignment, 32);
    assert_int_equal(g.n_kv, 1);
    assert_int_equal(g.n_tensors, 3);
    assert_int_equal(g.data_start % 32, 0);
    assert_int_equal(g.data_start + 134, n);
    const struct g4_gguf_tensor *a = g4_gguf_find_tensor(&g, "a"), *q = g4_gguf_find_tensor(&g, "q"),
                                *z = g4_gguf_find_tensor(&g, "z");
    assert_non_null(a);
    assert_non_null(q);
    assert_non_null(z);
    assert_null(g4_gguf_find_tensor(&g, "b"));
    assert_int_equal(a->dtype, G4_DTYPE_F32);
    assert_int_equal(a->n_dims, 2);
    assert_int_equal(a->ne[0], 4);
    assert_int_equal(a->ne[1], 2);
    assert_int_equal(a->ne[2], 1);
    assert_int_equal(a->ne[3], 1);
    assert_int_equal(a->n_bytes, 32);
    assert_ptr_equal(a->data, buf + g.data_start);
    assert_int_equal(q->dtype, G4_DTYPE_Q8_0);
    assert_int_equal(q->ggml_type, 8);
    assert_int_equal(q->n_bytes, 68);
    assert_ptr_equal(q->data, buf + g.data_start + 32);
    assert_int_equal(((const uint8_t *)q->data)[0], 32); // the pattern byte at data offset 32
    assert_int_equal(z->dtype, G4_DTYPE_F16);
    assert_int_equal(z->n_bytes, 6);
    struct g4_gguf_str s;
    assert_true(g4_gguf_kv_str(g4_gguf_find_kv(&g, "general.architecture"), 0, &s));
    assert_int_equal(s.n, 4);
    assert_memory_equal(s.p, "test", 4);
    g4_gguf_free(&g);
    assert_null(g.tensors);
    free(buf);
}

// Every supported ggml type with its block size, byte size, and 3- and 4-dim shapes.
static void test_every_tensor_type(void **state) {
    (void)state;
    static const struct { uint32_t ggml; enum g4_dtype dt; int64_t ne0; size_t bytes; } types[] = {
        {0, G4_DTYPE_F32, 2, 8},        {1, G4_DTYPE_F16, 2, 4},       {30, G4_DTYPE_BF16, 2, 4},
        {2, G4_DTYPE_Q4_0, 64, 36},     {6, G4_DTYPE_Q5_0, 64, 44},    {8, G4_DTYPE_Q8_0, 64, 68},
        {12, G4_DTYPE_Q4_K, 256, 144},  {13, G4_DTYPE_Q5_K, 512, 352}, {14, G4_DTYPE_Q6_K, 256, 210},
        {24, G4_DTYPE_I8, 3, 3},        {25, G4_DTYPE_I16, 2, 4},      {26, G4_DTYPE_I32, 1, 4},
        {27, G4_DTYPE_I64, 1, 8},       {28, G4_DTYPE_F64, 1, 8},
    };
    for (size_t i = 0; i < G4_COUNT(types); i++) {
        struct ti t[2] = {{"t", 3, {(uint64_t)types[i].ne0, 3, 2}, types[i].ggml, 0},
                          {"u", 4, {(uint64_t)types[i].ne0, 1, 2, 1}, types[i].ggml, 0}};
        size_t one = types[i].bytes * 6, n;
        t[1].off = (one + 31) / 32 * 32;
        uint8_t *buf = image(t, 2, 0, (size_t)t[1].off + types[i].bytes * 2, &n);
        struct g4_gguf g;
        g4_status st = g4_gguf_parse(&g, buf, n, "t.gguf");
        if (st != G4_OK) print_error("type %u: %s\n", types[i].ggml, g4_last_error());
        assert_int_equal(st, G4_OK);
        const struct g4_gguf_tensor *x = g4_gguf_find_tensor(&g, "t"), *y = g4_gguf_find_tensor(&g, "u");
        assert_int_equal(x->dtype, types[i].dt);
        assert_int_equal(x->n_bytes, one);
        assert_int_equal(x->n_dims, 3);
        assert_int_equal(x->ne[2], 2);
        assert_int_equal(y->n_dims, 4);
        assert_int_equal(y->n_bytes, types[i].bytes * 2);
        g4_gguf_free(&g);
        free(buf);
    }
}

// general.alignment 64: offsets and the data start follow it; 1 is accepted for block types.
static void test_alignment(void **state) {
    (void)state;
    struct ti t[2] = {{"a", 1, {8}, 0, 0}, {"b", 1, {8}, 0, 64}};
    size_t n;
    uint8_t *buf = image(t, 2, 64, 96, &n);
    struct g4_gguf g;
    assert_int_equal(g4_gguf_parse(&g, buf, n, "t.gguf"), G4_OK);
    assert_int_equal(g.alignment, 64);
    assert_int_equal(g.data_start % 64, 0);
    g4_gguf_free(&g);
    free(buf);
    // offset 32 is fine for the default alignment but not for 64
    t[1].off = 32;
    buf = image(t, 2, 64, 96, &n);
    expect_parse_error(buf, n, G4_ERR_FORMAT, "tensor b: offset 32 is not a multiple of the alignment 64");
    free(buf);
    buf = image(t, 2, 0, 64, &n);
    assert_int_equal(g4_gguf_parse(&g, buf, n, "t.gguf"), G4_OK);
    g4_gguf_free(&g);
    free(buf);
    // alignment 1: a Q8_0 block at an odd offset is fine, an F32 at an odd file offset is not
    struct ti q[2] = {{"q", 1, {32}, 8, 0}, {"r", 1, {32}, 8, 34}};
    buf = image(q, 2, 1, 68, &n);
    assert_int_equal(g4_gguf_parse(&g, buf, n, "t.gguf"), G4_OK);
    g4_gguf_free(&g);
    free(buf);
    // (the data start does not depend on the offsets' values: pick one misaligned for F32)
    struct ti f[2] = {{"q", 1, {32}, 8, 0}, {"f", 1, {1}, 0, 34}};
    buf = image(f, 2, 1, 39, &n);
    if ((n - 39 + 34) % 4 == 0) f[1].off = 35;
    free(buf);
    buf = image(f, 2, 1, 39, &n);
    expect_parse_error(buf, n, G4_ERR_FORMAT, "tensor f: data at file offset");
    assert_non_null(strstr(g4_last_error(), "misaligned for F32"));
    free(buf);
    // bad alignment values (no tensors, so nothing is padded to them) and types
    static const uint32_t bad[] = {0, 48, 0x80000001u};
    for (size_t i = 0; i < G4_COUNT(bad); i++) {
        struct gb a = {0};
        header(&a, 0, 1);
        kv_u32(&a, "general.alignment", bad[i]);
        expect_parse_error(a.p, a.n, G4_ERR_FORMAT, "is not a power of two");
        free(a.p);
    }
    struct gb b = {0};
    header(&b, 0, 1);
    str(&b, "general.alignment");
    u32(&b, G4_GGUF_UINT64);
    u64(&b, 32);
    expect_parse_error(b.p, b.n, G4_ERR_FORMAT, "general.alignment is UINT64, must be UINT32");
    free(b.p);
}

// Every value type, scalar and array, through the accessors.
static void test_metadata_types(void **state) {
    (void)state;
    struct gb b = {0};
    header(&b, 0, 17);
    uint8_t u8 = 200;
    int8_t i8 = -100;
    uint16_t u16 = 60000;
    int16_t i16 = -30000;
    int32_t i32 = -2000000000;
    float f32 = 1.5f;
    uint8_t bo = 1;
    int64_t i64 = -((int64_t)1 << 40);
    double f64 = 0.1;
    str(&b, "u8"); u32(&b, G4_GGUF_UINT8); put(&b, &u8, 1);
    str(&b, "i8"); u32(&b, G4_GGUF_INT8); put(&b, &i8, 1);
    str(&b, "u16"); u32(&b, G4_GGUF_UINT16); put(&b, &u16, 2);
    str(&b, "i16"); u32(&b, G4_GGUF_INT16); put(&b, &i16, 2);
    kv_u32(&b, "u32", 4000000000u);
    str(&b, "i32"); u32(&b, G4_GGUF_INT32); put(&b, &i32, 4);
    str(&b, "f32"); u32(&b, G4_GGUF_FLOAT32); put(&b, &f32, 4);
    str(&b, "bool"); u32(&b, G4_GGUF_BOOL); put(&b, &bo, 1);
    kv_str(&b, "str", "h\xc3\xa9llo");
    str(&b, "u64"); u32(&b, G4_GGUF_UINT64); u64(&b, ((uint64_t)1 << 40) + 1);
    str(&b, "u64big"); u32(&b, G4_GGUF_UINT64); u64(&b, UINT64_MAX);
    str(&b, "i64"); u32(&b, G4_GGUF_INT64); put(&b, &i64, 8);
    str(&b, "f64"); u32(&b, G4_GGUF_FLOAT64); put(&b, &f64, 8);
    // arrays: INT32 [1, -2, 3], STRING ["a", "", "xyz"], BOOL [], FLOAT32 [0.5]
    str(&b, "ai32"); u32(&b, G4_GGUF_ARRAY); u32(&b, G4_GGUF_INT32); u64(&b, 3);
    int32_t ai[3] = {1, -2, 3};
    put(&b, ai, sizeof ai);
    str(&b, "astr"); u32(&b, G4_GGUF_ARRAY); u32(&b, G4_GGUF_STRING); u64(&b, 3);
    str(&b, "a"); str(&b, ""); str(&b, "xyz");
    str(&b, "aempty"); u32(&b, G4_GGUF_ARRAY); u32(&b, G4_GGUF_BOOL); u64(&b, 0);
    str(&b, "af32"); u32(&b, G4_GGUF_ARRAY); u32(&b, G4_GGUF_FLOAT32); u64(&b, 1);
    float half = 0.5f;
    put(&b, &half, 4);
    struct g4_gguf g;
    g4_status st = g4_gguf_parse(&g, b.p, b.n, "t.gguf");
    if (st) print_error("%s\n", g4_last_error());
    assert_int_equal(st, G4_OK);
    assert_int_equal(g.n_kv, 17);
    int64_t v;
    double d;
    bool bv;
    struct g4_gguf_str s;
#define INT_IS(key, want)                                                                          \
    do {                                                                                           \
        assert_true(g4_gguf_kv_int(g4_gguf_find_kv(&g, key), 0, &v));                              \
        assert_true(v == (int64_t)(want));                                                         \
    } while (0)
    INT_IS("u8", 200);
    INT_IS("i8", -100);
    INT_IS("u16", 60000);
    INT_IS("i16", -30000);
    INT_IS("u32", 4000000000LL);
    INT_IS("i32", -2000000000);
    INT_IS("u64", ((int64_t)1 << 40) + 1);
    INT_IS("i64", -((int64_t)1 << 40));
#undef INT_IS
    assert_false(g4_gguf_kv_int(g4_gguf_find_kv(&g, "u64big"), 0, &v));
    assert_false(g4_gguf_kv_int(g4_gguf_find_kv(&g, "f32"), 0, &v));
    assert_false(g4_gguf_kv_int(g4_gguf_find_kv(&g, "str"), 0, &v));
    assert_false(g4_gguf_kv_int(g4_gguf_find_kv(&g, "u8"), 1, &v)); // index out of range
    assert_false(g4_gguf_kv_int(NULL, 0, &v));
    assert_true(g4_gguf_kv_float(g4_gguf_find_kv(&g, "f32"), 0, &d) && d == 1.5);
    assert_true(g4_gguf_kv_float(g4_gguf_find_kv(&g, "f64"), 0, &d) && d == 0.1);
    assert_false(g4_gguf_kv_float(g4_gguf_find_kv(&g, "i32"), 0, &d));
    assert_true(g4_gguf_kv_bool(g4_gguf_find_kv(&g, "bool"), 0, &bv) && bv);
    assert_false(g4_gguf_kv_bool(g4_gguf_find_kv(&g, "u8"), 0, &bv));
    const struct g4_gguf_kv *kv = g4_gguf_find_kv(&g, "str");
    assert_int_equal(kv->type, G4_GGUF_STRING);
    assert_true(g4_gguf_kv_str(kv, 0, &s) && s.n == 6 && memcmp(s.p, "h\xc3\xa9llo", 6) == 0);
    kv = g4_gguf_find_kv(&g, "ai32");
    assert_int_equal(kv->type, G4_GGUF_ARRAY);
    assert_int_equal(kv->elem_type, G4_GGUF_INT32);
    assert_int_equal(kv->n, 3);
    for (int i = 0; i < 3; i++) assert_true(g4_gguf_kv_int(kv, (uint64_t)i, &v) && v == ai[i]);
    assert_false(g4_gguf_kv_int(kv, 3, &v));
    kv = g4_gguf_find_kv(&g, "astr");
    assert_int_equal(kv->n, 3);
    assert_true(g4_gguf_kv_str(kv, 0, &s) && s.n == 1 && s.p[0] == 'a');
    assert_true(g4_gguf_kv_str(kv, 1, &s) && s.n == 0);
    assert_true(g4_gguf_kv_str(kv, 2, &s) && s.n == 3 && memcmp(s.p, "xyz", 3) == 0);
    assert_false(g4_gguf_kv_str(kv, 3, &s));
    kv = g4_gguf_find_kv(&g, "aempty");
    assert_int_equal(kv->n, 0);
    assert_false(g4_gguf_kv_bool(kv, 0, &bv));
    assert_true(g4_gguf_kv_float(g4_gguf_find_kv(&g, "af32"), 0, &d) && d == 0.5);
    assert_null(g4_gguf_find_kv(&g, "nope"));
    assert_string_equal(g4_gguf_type_name(G4_GGUF_FLOAT64), "FLOAT64");
    assert_string_equal(g4_gguf_type_name((enum g4_gguf_type)99), "?");
    g4_gguf_free(&g);
    free(b.p);
}

// Every proper prefix of a valid file is refused as truncated (never read past the end: the
// prefix is copied into an exact-size allocation, so ASan and valgrind see any overread).
static void test_truncated_everywhere(void **state) {
    (void)state;
    struct gb b = {0};
    header(&b, 3, 3);
    kv_str(&b, "general.architecture", "test");
    str(&b, "arr"); u32(&b, G4_GGUF_ARRAY); u32(&b, G4_GGUF_STRING); u64(&b, 2);
    str(&b, "xy"); str(&b, "z");
    kv_u32(&b, "n", 7);
    for (int i = 0; i < 3; i++) {
        str(&b, THREE[i].name);
        u32(&b, (uint32_t)THREE[i].nd);
        for (int d = 0; d < THREE[i].nd; d++) u64(&b, THREE[i].ne[d]);
        u32(&b, THREE[i].type);
        u64(&b, THREE[i].off);
    }
    pad_to(&b, 32);
    static const uint8_t data[134] = {0};
    put(&b, data, sizeof data);
    struct g4_gguf g;
    assert_int_equal(g4_gguf_parse(&g, b.p, b.n, "t.gguf"), G4_OK);
    g4_gguf_free(&g);
    for (size_t len = 0; len < b.n; len++) {
        uint8_t *cut = malloc(len ? len : 1);
        memcpy(cut, b.p, len);
        g4_status st = g4_gguf_parse(&g, cut, len, "t.gguf");
        const char *want = len < 4 ? "not a GGUF file" : "truncated";
        if (st != G4_ERR_FORMAT || !strstr(g4_last_error(), want))
            print_error("prefix of %zu bytes: %s \"%s\"\n", len, g4_status_name(st), g4_last_error());
        assert_int_equal(st, G4_ERR_FORMAT);
        assert_non_null(strstr(g4_last_error(), want));
        assert_null(g.kv);
        free(cut);
    }
    free(b.p);
}

static void test_bad_header(void **state) {
    (void)state;
    expect_parse_error(NULL, 0, G4_ERR_FORMAT, "t.gguf: not a GGUF file");
    expect_parse_error((const uint8_t *)"GGU", 3, G4_ERR_FORMAT, "not a GGUF file");
    expect_parse_error((const uint8_t *)"{\"a\": 1}\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 24,
                       G4_ERR_FORMAT, "no \"GGUF\" magic");
    struct gb b = {0};
    put(&b, "GGUF", 4);
    u32(&b, 1);
    u64(&b, 0);
    u64(&b, 0);
    expect_parse_error(b.p, b.n, G4_ERR_UNSUPPORTED, "GGUF version 1");
    uint32_t be3 = 0x03000000u;
    memcpy(b.p + 4, &be3, 4);
    expect_parse_error(b.p, b.n, G4_ERR_UNSUPPORTED, "big-endian");
    uint32_t v2 = 2;
    memcpy(b.p + 4, &v2, 4);
    struct g4_gguf g;
    assert_int_equal(g4_gguf_parse(&g, b.p, b.n, "t.gguf"), G4_OK); // v2 has v3's layout
    assert_int_equal(g.version, 2);
    g4_gguf_free(&g);
    free(b.p);
    assert_int_equal(g4_gguf_parse(NULL, NULL, 0, NULL), G4_ERR_INVALID_ARGUMENT);
}

// Counts that do not match the contents.
static void test_wrong_counts(void **state) {
    (void)state;
    struct gb b = {0};
    header(&b, 0, 3); // says 3 entries, holds 2
    kv_str(&b, "general.architecture", "test");
    kv_u32(&b, "n", 7);
    u64(&b, UINT64_MAX); // slack for the count check; read as a key length, it runs out
    expect_parse_error(b.p, b.n, G4_ERR_FORMAT, "truncated");
    free(b.p);
    b = (struct gb){0};
    header(&b, UINT64_MAX, 1);
    kv_str(&b, "general.architecture", "test");
    expect_parse_error(b.p, b.n, G4_ERR_FORMAT, "cannot fit");
    free(b.p);
    b = (struct gb){0};
    header(&b, 0, (uint64_t)1 << 62);
    expect_parse_error(b.p, b.n, G4_ERR_FORMAT, "cannot fit");
    free(b.p);
    // one tensor announced, two written: the second info is read as data and the counts check the
    // data section; the file is then just a file with one tensor and junk in its data section,
    // which is legal. Two announced, one written: truncated.
    size_t n;
    uint8_t *img = image(THREE, 1, 0, 32, &n);
    uint64_t two = 2;
    memcpy(img + 8, &two, 8);
    expect_parse_error(img, n, G4_ERR_FORMAT, "t.gguf");
    free(img);
    // an array longer than the file
    b = (struct gb){0};
    header(&b, 0, 1);
    str(&b, "a"); u32(&b, G4_GGUF_ARRAY); u32(&b, G4_GGUF_UINT32); u64(&b, (uint64_t)1 << 61);
    u64(&b, 0);
    u64(&b, 0);
    expect_parse_error(b.p, b.n, G4_ERR_FORMAT, "key a: 2305843009213693952 values of UINT32");
    free(b.p);
    b = (struct gb){0};
    header(&b, 0, 1);
    str(&b, "s"); u32(&b, G4_GGUF_ARRAY); u32(&b, G4_GGUF_STRING); u64(&b, UINT64_MAX);
    u64(&b, 0);
    expect_parse_error(b.p, b.n, G4_ERR_FORMAT, "key s: 18446744073709551615 strings");
    free(b.p);
    // a string length beyond the end
    b = (struct gb){0};
    header(&b, 0, 1);
    str(&b, "s"); u32(&b, G4_GGUF_STRING); u64(&b, UINT64_MAX - 3);
    u64(&b, 0);
    expect_parse_error(b.p, b.n, G4_ERR_FORMAT, "truncated: key s: string value at byte 37");
    free(b.p);
}

static void test_bad_metadata(void **state) {
    (void)state;
    struct gb b = {0};
    header(&b, 0, 1);
    str(&b, "k"); u32(&b, 13); u64(&b, 0);
    expect_parse_error(b.p, b.n, G4_ERR_FORMAT, "key k has unknown value type 13");
    free(b.p);
    b = (struct gb){0};
    header(&b, 0, 1);
    str(&b, "k"); u32(&b, G4_GGUF_ARRAY); u32(&b, 77); u64(&b, 0);
    expect_parse_error(b.p, b.n, G4_ERR_FORMAT, "key k: array of unknown type 77");
    free(b.p);
    b = (struct gb){0};
    header(&b, 0, 1);
    str(&b, "k"); u32(&b, G4_GGUF_ARRAY); u32(&b, G4_GGUF_ARRAY); u64(&b, 0);
    expect_parse_error(b.p, b.n, G4_ERR_UNSUPPORTED, "key k: nested arrays");
    free(b.p);
    b = (struct gb){0};
    header(&b, 0, 2);
    kv_u32(&b, "k", 1);
    kv_u32(&b, "k", 2);
    expect_parse_error(b.p, b.n, G4_ERR_FORMAT, "key k is present twice");
    free(b.p);
    b = (struct gb){0};
    header(&b, 0, 1);
    kv_u32(&b, "", 1);
    expect_parse_error(b.p, b.n, G4_ERR_FORMAT, "key after metadata entry 0 is empty");
    free(b.p);
    b = (struct gb){0};
    header(&b, 0, 1);
    u64(&b, 3);
    put(&b, "a\0b", 3);
    u32(&b, G4_GGUF_UINT8);
    put(&b, "x", 1);
    u64(&b, 0);
    expect_parse_error(b.p, b.n, G4_ERR_FORMAT, "holds a NUL byte");
    free(b.p);
}

static void test_bad_tensors(void **state) {
    (void)state;
    static const struct {
        struct ti t[2];
        int nt;
        size_t data;
        g4_status want;
        const char *needle;
    } cases[] = {
        {{{"w", 2, {32, 2}, 3, 0}}, 1, 64, G4_ERR_UNSUPPORTED,
         "tensor w has ggml type Q4_1 (3), which gemma4 does not support"},
        {{{"w", 2, {32, 2}, 99, 0}}, 1, 64, G4_ERR_UNSUPPORTED, "tensor w has ggml type unknown (99)"},
        {{{"w", 1, {256}, 16, 0}}, 1, 64, G4_ERR_UNSUPPORTED, "ggml type IQ2_XXS (16)"},
        {{{"w", 2, {4, 2}, 0, 16}}, 1, 64, G4_ERR_FORMAT,
         "tensor w: offset 16 is not a multiple of the alignment 32"},
        {{{"w", 2, {(uint64_t)1 << 62, (uint64_t)1 << 62}, 0, 0}}, 1, 64, G4_ERR_FORMAT,
         "tensor w: element count overflows at ne[1]"},
        {{{"w", 1, {(uint64_t)1 << 63}, 0, 0}}, 1, 64, G4_ERR_FORMAT,
         "tensor w: element count overflows at ne[0]"},
        {{{"w", 1, {(uint64_t)1 << 62}, 0, 0}}, 1, 64, G4_ERR_FORMAT, "tensor w: byte size overflows"},
        {{{"w", 2, {(uint64_t)1 << 40, 4}, 0, 0}}, 1, 64, G4_ERR_FORMAT,
         "truncated: tensor w: [0, 0 + 17592186044416) runs past the 64-byte data section"},
        {{{"w", 0, {0}, 0, 0}}, 1, 64, G4_ERR_FORMAT, "tensor w has 0 dims; GGUF allows 1 to 4"},
        {{{"w", 5, {1, 1, 1, 1}, 0, 0}}, 1, 64, G4_ERR_FORMAT, "tensor w has 5 dims"},
        {{{"w", 2, {33, 2}, 8, 0}}, 1, 96, G4_ERR_FORMAT,
         "tensor w: row length ne[0] = 33 is not a multiple of the Q8_0 block size 32"},
        {{{"w", 1, {128}, 12, 0}}, 1, 256, G4_ERR_FORMAT, "not a multiple of the Q4_K block size 256"},
        {{{"w", 1, {8}, 0, 64}}, 1, 64, G4_ERR_FORMAT, "truncated: tensor w: [64, 64 + 32)"},
        {{{"w", 1, {8}, 0, UINT64_MAX - 31}}, 1, 64, G4_ERR_FORMAT, "truncated: tensor w"},
        {{{"a", 1, {16}, 0, 0}, {"b", 1, {8}, 0, 32}}, 2, 96, G4_ERR_FORMAT,
         "tensors a [0, +64) and b [32, +32) overlap"},
        {{{"a", 1, {8}, 0, 0}, {"a", 1, {8}, 0, 32}}, 2, 64, G4_ERR_FORMAT, "tensor a is present twice"},
        {{{"", 1, {8}, 0, 0}}, 1, 64, G4_ERR_FORMAT, "tensor name after tensor info 0 is empty"},
    };
    for (size_t i = 0; i < G4_COUNT(cases); i++) {
        size_t n;
        uint8_t *buf = image(cases[i].t, cases[i].nt, 0, cases[i].data, &n);
        expect_parse_error(buf, n, cases[i].want, cases[i].needle);
        free(buf);
    }
    // Empty tensors occupy nothing: they may share offsets and sit at the very end.
    struct ti e[3] = {{"e", 2, {0, 4}, 0, 0}, {"a", 1, {8}, 0, 0}, {"f", 1, {0}, 8, 32}};
    size_t n;
    uint8_t *buf = image(e, 3, 0, 32, &n);
    struct g4_gguf g;
    assert_int_equal(g4_gguf_parse(&g, buf, n, "t.gguf"), G4_OK);
    assert_int_equal(g4_gguf_find_tensor(&g, "e")->n_bytes, 0);
    g4_gguf_free(&g);
    free(buf);
}

// The file the `gguf` package wrote (tests/gguf/make_fixtures.py): the values it put there.
static void test_python_writer_file(void **state) {
    (void)state;
    struct g4_gguf g;
    g4_status st = g4_gguf_open(&g, g4_src_path("tests/gguf/writer_all_types.gguf"));
    if (st) print_error("%s\n", g4_last_error());
    assert_int_equal(st, G4_OK);
    assert_non_null(g.map);
    assert_int_equal(g.version, 3);
    assert_int_equal(g.alignment, 32);
    int64_t v;
    double d;
    bool bv;
    struct g4_gguf_str s;
    static const struct { const char *key; int64_t want; } ints[] = {
        {"t.u8", 200}, {"t.i8", -100}, {"t.u16", 60000}, {"t.i16", -30000},
        {"t.u32", 4000000000LL}, {"t.i32", -2000000000}, {"t.u64", ((int64_t)1 << 40) + 1},
        {"t.i64", -((int64_t)1 << 40)}};
    for (size_t i = 0; i < G4_COUNT(ints); i++) {
        assert_true(g4_gguf_kv_int(g4_gguf_find_kv(&g, ints[i].key), 0, &v));
        assert_true(v == ints[i].want);
    }
    assert_int_equal(g4_gguf_find_kv(&g, "t.u32")->type, G4_GGUF_UINT32);
    assert_true(g4_gguf_kv_float(g4_gguf_find_kv(&g, "t.f32"), 0, &d) && d == 1.5);
    assert_true(g4_gguf_kv_float(g4_gguf_find_kv(&g, "t.f64"), 0, &d) && d == 0.1);
    assert_true(g4_gguf_kv_bool(g4_gguf_find_kv(&g, "t.bool"), 0, &bv) && bv);
    assert_true(g4_gguf_kv_str(g4_gguf_find_kv(&g, "t.str"), 0, &s));
    assert_true(s.n == 6 && memcmp(s.p, "h\xc3\xa9llo", 6) == 0);
    assert_true(g4_gguf_kv_str(g4_gguf_find_kv(&g, "general.architecture"), 0, &s));
    assert_true(s.n == 4 && memcmp(s.p, "test", 4) == 0);
    const struct g4_gguf_kv *kv = g4_gguf_find_kv(&g, "t.arr_i32");
    assert_true(kv->type == G4_GGUF_ARRAY && kv->elem_type == G4_GGUF_INT32 && kv->n == 3);
    assert_true(g4_gguf_kv_int(kv, 1, &v) && v == -2);
    kv = g4_gguf_find_kv(&g, "t.arr_u8");
    assert_true(kv->elem_type == G4_GGUF_UINT8 && g4_gguf_kv_int(kv, 1, &v) && v == 255);
    assert_true(g4_gguf_kv_float(g4_gguf_find_kv(&g, "t.arr_f32"), 1, &d) && d == -2.0);
    kv = g4_gguf_find_kv(&g, "t.arr_bool");
    assert_true(kv->n == 3 && g4_gguf_kv_bool(kv, 1, &bv) && !bv && g4_gguf_kv_bool(kv, 2, &bv) && bv);
    kv = g4_gguf_find_kv(&g, "t.arr_str");
    assert_int_equal(kv->n, 3);
    assert_true(g4_gguf_kv_str(kv, 1, &s) && s.n == 0);
    assert_true(g4_gguf_kv_str(kv, 2, &s) && s.n == 5 && memcmp(s.p, "\xc3\xbc" "ber", 5) == 0);

    assert_int_equal(g.n_tensors, 17);
    const struct g4_gguf_tensor *t = g4_gguf_find_tensor(&g, "f32");
    assert_true(t->dtype == G4_DTYPE_F32 && t->n_dims == 2 && t->ne[0] == 2 && t->ne[1] == 3);
    float f[6];
    memcpy(f, t->data, sizeof f);
    for (int i = 0; i < 6; i++) assert_true(f[i] == (float)i);
    t = g4_gguf_find_tensor(&g, "bf16");
    assert_true(t->dtype == G4_DTYPE_BF16 && t->ne[0] == 2 && t->ne[1] == 2);
    float bf[4];
    g4_to_f32(bf, t->data, t->dtype, 4);
    assert_true(bf[0] == 1 && bf[1] == 2 && bf[2] == -3 && bf[3] == 4);
    t = g4_gguf_find_tensor(&g, "f16");
    float hf[4];
    g4_to_f32(hf, t->data, t->dtype, 4);
    assert_true(hf[0] == 1 && hf[3] == 4);
    static const struct { const char *name; enum g4_dtype dt; int64_t ne0; size_t bytes; } q[] = {
        {"q8_0", G4_DTYPE_Q8_0, 64, 136}, {"q4_0", G4_DTYPE_Q4_0, 64, 72},
        {"q5_0", G4_DTYPE_Q5_0, 64, 88},  {"q4_k", G4_DTYPE_Q4_K, 256, 288},
        {"q5_k", G4_DTYPE_Q5_K, 256, 352}, {"q6_k", G4_DTYPE_Q6_K, 256, 420}};
    for (size_t i = 0; i < G4_COUNT(q); i++) {
        t = g4_gguf_find_tensor(&g, q[i].name);
        assert_non_null(t);
        assert_int_equal(t->dtype, q[i].dt);
        assert_int_equal(t->ne[0], q[i].ne0);
        assert_int_equal(t->ne[1], 2);
        assert_int_equal(t->n_bytes, q[i].bytes);
        assert_int_equal(t->offset % 32, 0);
        // the blocks dequantize to what the package's dequantizer made of them, bit for bit
        char en[32];
        snprintf(en, sizeof en, "%s.expected", q[i].name);
        const struct g4_gguf_tensor *e = g4_gguf_find_tensor(&g, en);
        assert_non_null(e);
        assert_true(e->dtype == G4_DTYPE_F32 && e->ne[0] == t->ne[0] && e->ne[1] == 2);
        float got[512];
        g4_to_f32(got, t->data, t->dtype, (size_t)(2 * t->ne[0]));
        assert_memory_equal(got, e->data, (size_t)(2 * t->ne[0]) * sizeof(float));
    }
    t = g4_gguf_find_tensor(&g, "f32_3d");
    assert_true(t->n_dims == 3 && t->ne[0] == 4 && t->ne[1] == 3 && t->ne[2] == 2);
    t = g4_gguf_find_tensor(&g, "f32_4d");
    assert_true(t->n_dims == 4 && t->ne[0] == 3 && t->ne[1] == 1 && t->ne[2] == 2 && t->ne[3] == 1);
    g4_gguf_free(&g);
    assert_null(g.map);
}

static void test_open_errors(void **state) {
    (void)state;
    struct g4_gguf g;
    expect_error(g4_gguf_open(&g, "/nonexistent/x.gguf"), G4_ERR_IO, "/nonexistent/x.gguf");
    const char *dir = g4_tmpdir("gguf");
    expect_error(g4_gguf_open(&g, dir), G4_ERR_IO, "not a regular file (a directory)");
    char path[4200];
    snprintf(path, sizeof path, "%s/empty.gguf", dir);
    assert_int_equal(g4_write_file(path, "", 0), 0);
    expect_error(g4_gguf_open(&g, path), G4_ERR_FORMAT, "empty.gguf: 0 bytes");
    size_t n;
    uint8_t *buf = image(THREE, 3, 0, 100, &n); // z's bytes are missing
    snprintf(path, sizeof path, "%s/cut.gguf", dir);
    assert_int_equal(g4_write_file(path, buf, n), 0);
    expect_error(g4_gguf_open(&g, path), G4_ERR_FORMAT, "cut.gguf: truncated: tensor z");
    assert_null(g.map);
    free(buf);
    g4_rm_rf(dir);
    g4_gguf_free(NULL);
    expect_error(g4_gguf_open(NULL, "x"), G4_ERR_INVALID_ARGUMENT, "NULL");
}

static void test_ggml_type_names(void **state) {
    (void)state;
    enum g4_dtype dt;
    const char *name;
    assert_true(g4_gguf_ggml_dtype(30, &dt, &name) && dt == G4_DTYPE_BF16);
    assert_string_equal(name, "BF16");
    assert_true(g4_gguf_ggml_dtype(14, &dt, &name) && dt == G4_DTYPE_Q6_K);
    assert_false(g4_gguf_ggml_dtype(23, &dt, &name));
    assert_string_equal(name, "IQ4_XS");
    assert_false(g4_gguf_ggml_dtype(4, NULL, &name)); // retired id
    assert_string_equal(name, "unknown");
    assert_false(g4_gguf_ggml_dtype(1000, NULL, &name));
    assert_string_equal(name, "unknown");
}


// ---- real converter output: config and weights against the safetensors fixtures -------------

// One change to a parsed file, applied while writing it back out (reserialize).
struct mod {
    const char *key;         // metadata key to drop (drop_key) or to replace / add
    bool drop_key;
    int type;                // new value type
    const void *payload;     // value bytes after the type (arrays: element type, count, elements)
    size_t payload_len;
    const char *tensor;      // tensor to drop, retype or rename
    bool drop_tensor;
    bool retype;
    int ttype;               // new ggml type
    const char *rename;
    bool swap_dims;          // ne[0] <-> ne[1]
    const char *add_tensor;  // a new tensor of this name: empty F32 [0] at offset 0, or
    const char *copy_of;     // a copy of this tensor (its data appended to the data section)
    bool patch;              // float element patch_index of `tensor` set to patch_value
    int patch_index;
    float patch_value;
};

// Writes g back as a GGUF image with mods applied: the metadata entries (minus/with the changed
// one), the tensor infos (same offsets) and the same data section.
// With dequantize, block-quantized tensors are written as F32 (g4_to_f32) and every tensor's data
// is laid out afresh.
static uint8_t *reserialize_ex(const struct g4_gguf *g, const struct mod *mods, int n_mods,
                               bool dequantize, size_t *n) {
    struct gb b = {0};
    int64_t n_kv = 0, n_t = 0;
    for (int64_t i = 0; i < g->n_kv; i++) {
        bool drop = false;
        for (int m = 0; m < n_mods; m++) drop |= mods[m].key && mods[m].drop_key && !strcmp(mods[m].key, g->kv[i].key);
        n_kv += !drop;
    }
    for (int m = 0; m < n_mods; m++)
        if (mods[m].key && !mods[m].drop_key && !g4_gguf_find_kv(g, mods[m].key)) n_kv++;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        bool drop = false;
        for (int m = 0; m < n_mods; m++) drop |= mods[m].tensor && mods[m].drop_tensor && !strcmp(mods[m].tensor, g->tensors[i].name);
        n_t += !drop;
    }
    for (int m = 0; m < n_mods; m++) n_t += mods[m].add_tensor != NULL;
    uint64_t fresh_off = 0;
    header(&b, (uint64_t)n_t, (uint64_t)n_kv);
    for (int m = 0; m < n_mods; m++) // new keys first
        if (mods[m].key && !mods[m].drop_key && !g4_gguf_find_kv(g, mods[m].key)) {
            str(&b, mods[m].key);
            u32(&b, (uint32_t)mods[m].type);
            put(&b, mods[m].payload, mods[m].payload_len);
        }
    for (int64_t i = 0; i < g->n_kv; i++) {
        const struct g4_gguf_kv *kv = &g->kv[i];
        const struct mod *hit = NULL;
        for (int m = 0; m < n_mods; m++)
            if (mods[m].key && !strcmp(mods[m].key, kv->key)) hit = &mods[m];
        if (hit && hit->drop_key) continue;
        str(&b, kv->key);
        if (hit) {
            u32(&b, (uint32_t)hit->type);
            put(&b, hit->payload, hit->payload_len);
            continue;
        }
        u32(&b, kv->type);
        if (kv->type == G4_GGUF_ARRAY) {
            u32(&b, kv->elem_type);
            u64(&b, kv->n);
        }
        if (kv->elem_type == G4_GGUF_STRING) {
            for (uint64_t e = 0; e < kv->n; e++) {
                u64(&b, kv->strs[e].n);
                put(&b, kv->strs[e].p, (size_t)kv->strs[e].n);
            }
        } else {
            static const size_t sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
            put(&b, kv->data, (size_t)kv->n * sz[kv->elem_type]);
        }
    }
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const struct g4_gguf_tensor *t = &g->tensors[i];
        const char *name = t->name;
        uint32_t type = t->ggml_type;
        uint64_t ne[4] = {(uint64_t)t->ne[0], (uint64_t)t->ne[1], (uint64_t)t->ne[2], (uint64_t)t->ne[3]};
        bool drop = false;
        for (int m = 0; m < n_mods; m++) {
            if (!mods[m].tensor || strcmp(mods[m].tensor, t->name)) continue;
            drop |= mods[m].drop_tensor;
            if (mods[m].retype) type = (uint32_t)mods[m].ttype;
            if (mods[m].rename) name = mods[m].rename;
            if (mods[m].swap_dims) {
                uint64_t x = ne[0];
                ne[0] = ne[1];
                ne[1] = x;
            }
        }
        if (drop) continue;
        str(&b, name);
        u32(&b, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++) u64(&b, ne[d]);
        if (dequantize) {
            size_t numel = (size_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
            u32(&b, G4_DTYPE_IS_QUANT(t->dtype) ? 0 : type);
            u64(&b, fresh_off);
            fresh_off += ((G4_DTYPE_IS_QUANT(t->dtype) ? numel * 4 : t->n_bytes) + 31) / 32 * 32;
        } else {
            u32(&b, type);
            u64(&b, t->offset);
        }
    }
    const size_t data_bytes = g->map_bytes - g->data_start;
    size_t copy_at = (data_bytes + (size_t)g->alignment - 1) / (size_t)g->alignment * (size_t)g->alignment;
    for (int m = 0; m < n_mods; m++) {
        if (!mods[m].add_tensor) continue;
        str(&b, mods[m].add_tensor);
        const struct g4_gguf_tensor *src = mods[m].copy_of ? g4_gguf_find_tensor(g, mods[m].copy_of) : NULL;
        if (mods[m].copy_of) assert_non_null(src);
        if (!src) {
            u32(&b, 1);
            u64(&b, 0);
            u32(&b, 0);
            u64(&b, 0);
            continue;
        }
        u32(&b, (uint32_t)src->n_dims);
        for (int d = 0; d < src->n_dims; d++) u64(&b, (uint64_t)src->ne[d]);
        u32(&b, src->ggml_type);
        u64(&b, copy_at);
        copy_at += (src->n_bytes + (size_t)g->alignment - 1) / (size_t)g->alignment * (size_t)g->alignment;
    }
    pad_to(&b, (size_t)g->alignment);
    size_t data_at = b.n;
    if (dequantize) { // in the order of the infos above (g->tensors, sorted by name)
        for (int64_t i = 0; i < g->n_tensors; i++) {
            const struct g4_gguf_tensor *t = &g->tensors[i];
            if (G4_DTYPE_IS_QUANT(t->dtype)) {
                size_t numel = (size_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
                float *f = malloc(numel * 4);
                g4_to_f32(f, t->data, t->dtype, numel);
                put(&b, f, numel * 4);
                free(f);
            } else {
                put(&b, t->data, t->n_bytes);
            }
            pad_to(&b, 32);
        }
        *n = b.n;
        return b.p;
    }
    put(&b, (const uint8_t *)g->map + g->data_start, data_bytes);
    for (int m = 0; m < n_mods; m++) { // copies, in the order of their infos
        const struct g4_gguf_tensor *src = mods[m].copy_of ? g4_gguf_find_tensor(g, mods[m].copy_of) : NULL;
        if (!mods[m].add_tensor || !src) continue;
        while ((b.n - data_at) % g->alignment) put(&b, "", 1);
        put(&b, src->data, src->n_bytes);
    }
    for (int m = 0; m < n_mods; m++) {
        if (!mods[m].tensor || !mods[m].patch) continue;
        const struct g4_gguf_tensor *t = g4_gguf_find_tensor(g, mods[m].tensor);
        assert_non_null(t);
        memcpy(b.p + data_at + t->offset + 4 * (size_t)mods[m].patch_index, &mods[m].patch_value, 4);
    }
    *n = b.n;
    return b.p;
}

static uint8_t *reserialize(const struct g4_gguf *g, const struct mod *mods, int n_mods, size_t *n) {
    return reserialize_ex(g, mods, n_mods, false, n);
}

static void open_golden(struct g4_gguf *g, const char *fixture) {
    char rel[128];
    snprintf(rel, sizeof rel, "tests/gguf/golden_%s.gguf", fixture);
    g4_status st = g4_gguf_open(g, g4_src_path(rel));
    if (st) print_error("%s\n", g4_last_error());
    assert_int_equal(st, G4_OK);
}

static void load_hf_config(struct g4_config *c, const char *fixture) {
    char rel[128];
    snprintf(rel, sizeof rel, "tests/golden/%s", fixture);
    g4_status st = g4_config_load(c, g4_src_path(rel));
    if (st) print_error("%s\n", g4_last_error());
    assert_int_equal(st, G4_OK);
}

#define SAME(field)                                                                                \
    do {                                                                                           \
        if (a->field != b->field) {                                                                \
            print_error("%s: %s: gguf %g, config.json %g\n", fixture, #field, (double)a->field,    \
                        (double)b->field);                                                         \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

static void compare_configs(const char *fixture, const struct g4_config *a, const struct g4_config *b) {
    SAME(arch); SAME(vocab_size); SAME(hidden_size); SAME(intermediate_size); SAME(num_hidden_layers);
    SAME(num_attention_heads); SAME(num_key_value_heads); SAME(head_dim); // global_head_dim: per layer below
    SAME(max_position_embeddings); SAME(sliding_window); SAME(hidden_size_per_layer_input);
    if (a->hidden_size_per_layer_input) SAME(vocab_size_per_layer_input);
    SAME(num_kv_shared_layers); SAME(num_experts);
    SAME(top_k_experts); SAME(moe_intermediate_size); SAME(rms_norm_eps);
    SAME(final_logit_softcapping); SAME(attention_k_eq_v); SAME(enable_moe_block);
    SAME(use_double_wide_mlp); SAME(tie_word_embeddings); SAME(bos_token_id); SAME(pad_token_id);
    SAME(v_norm); SAME(n_kv_slots); SAME(chat_gen_prompt);
    // num_global_key_value_heads: transformers moves it into per_layer_config; per layer below
    assert_string_equal(a->variant, b->variant);
    for (int f = 0; f < b->n_eos; f++) { // config.json's end ids are among the GGUF's
        bool found = false;
        for (int e = 0; e < a->n_eos; e++) found |= a->eos_token_id[e] == b->eos_token_id[f];
        assert_true(found);
    }
    for (int il = 0; il < a->num_hidden_layers; il++) {
        SAME(layer[il].is_sliding); SAME(layer[il].head_dim); SAME(layer[il].n_kv_heads);
        SAME(layer[il].window); SAME(layer[il].rope_type); SAME(layer[il].rope_theta);
        SAME(layer[il].n_rope_pairs); SAME(layer[il].rope_factor); SAME(layer[il].k_eq_v);
        SAME(layer[il].writes_kv); SAME(layer[il].kv_slot); SAME(layer[il].kv_donor);
        SAME(layer[il].intermediate_size);
    }
    for (int s = 0; s < a->n_kv_slots; s++) {
        SAME(slot[s].layer); SAME(slot[s].is_sliding); SAME(slot[s].head_dim);
        SAME(slot[s].n_kv_heads); SAME(slot[s].window);
    }
}

// The converter's files give config.json's config field by field (Gemma 3's
// query_pre_attn_scalar is not in GGUF: llama.cpp's head_dim rule, 16 here against the fixture's 24).
static void test_golden_config(void **state) {
    (void)state;
    static const char *const fixtures[] = {"e2b", "moe", "dense31b", "gemma3"};
    for (size_t i = 0; i < G4_COUNT(fixtures); i++) {
        const char *fixture = fixtures[i];
        struct g4_gguf g;
        open_golden(&g, fixture);
        static struct g4_config ca, cb;
        const struct g4_config *a = &ca, *b = &cb;
        g4_status st = g4_gguf_config_load(&ca, &g, fixture);
        if (st) print_error("%s\n", g4_last_error());
        assert_int_equal(st, G4_OK);
        load_hf_config(&cb, fixture);
        compare_configs(fixture, a, b);
        if (a->arch == G4_ARCH_GEMMA3) {
            assert_true(a->query_pre_attn_scalar == 16.0f && b->query_pre_attn_scalar == 24.0f);
            assert_true(a->attn_scale == 0.25f);
        } else {
            SAME(attn_scale);
        }
        g4_gguf_free(&g);
    }
    // the fixtures cover what they should
    struct g4_gguf g;
    static struct g4_config c;
    open_golden(&g, "e2b");
    assert_int_equal(g4_gguf_config_load(&c, &g, "e2b"), G4_OK);
    assert_true(c.use_double_wide_mlp && c.num_kv_shared_layers == 3 && c.hidden_size_per_layer_input == 8);
    assert_int_equal(c.layer[3].rope_type, G4_ROPE_PROPORTIONAL);
    assert_int_equal(c.layer[3].n_rope_pairs, 4); // 0.25 of 16 pairs, from rope_freqs
    assert_true(c.n_eos == 2 && c.eos_token_id[0] == 1 && c.eos_token_id[1] == 6); // <eos>, <turn|> (tokenizer_small)
    g4_gguf_free(&g);
    open_golden(&g, "moe");
    assert_int_equal(g4_gguf_config_load(&c, &g, "moe"), G4_OK);
    assert_true(c.enable_moe_block && c.attention_k_eq_v && c.layer[2].n_kv_heads == 1);
    g4_gguf_free(&g);
    open_golden(&g, "gemma3");
    assert_int_equal(g4_gguf_config_load(&c, &g, "gemma3"), G4_OK);
    assert_true(c.layer[5].rope_type == G4_ROPE_LINEAR && c.layer[5].rope_factor == 8.0f);
    g4_gguf_free(&g);
}

// Same shape and the same values: byte for byte in one dtype, exactly after conversion to fp32
// across float dtypes (the converter stores the MoE router in F32 whatever the checkpoint's).
static void same_weight(const char *what, struct g4_weight x, struct g4_weight y) {
    if (!x.data && !y.data) return;
    bool ok = x.data && y.data && x.rows == y.rows && x.cols == y.cols;
    if (ok && x.dtype == y.dtype) {
        ok = memcmp(x.data, y.data, g4_dtype_row_bytes(x.dtype, x.cols) * (size_t)x.rows) == 0;
    } else if (ok) {
        ok = G4_DTYPE_IS_FLOAT(x.dtype) && G4_DTYPE_IS_FLOAT(y.dtype);
        size_t n = (size_t)(x.rows * x.cols);
        float *a = malloc(n * 4 + 4), *b = malloc(n * 4 + 4);
        if (ok) {
            g4_to_f32(a, x.data, x.dtype, n);
            g4_to_f32(b, y.data, y.dtype, n);
            ok = memcmp(a, b, n * 4) == 0;
        }
        free(a);
        free(b);
    }
    if (!ok) {
        print_error("%s differs\n", what);
        fail();
    }
}

static void same_vec(const char *what, const float *x, const float *y, int64_t n) {
    if (!x && !y) return;
    if (!x || !y || memcmp(x, y, (size_t)n * sizeof *x) != 0) {
        print_error("%s differs\n", what);
        fail();
    }
}

// The table from the GGUF binds to the very same weights as the safetensors checkpoint: every
// matrix byte for byte (same dtype: the files were converted without requantizing), every vector
// exactly (gemma3's stored w + 1 is the scale the HF binder computes as 1 + w, in fp32).
static void test_golden_weights(void **state) {
    (void)state;
    static const char *const fixtures[] = {"e2b", "moe", "dense31b", "gemma3"};
    for (size_t i = 0; i < G4_COUNT(fixtures); i++) {
        const char *fixture = fixtures[i];
        struct g4_gguf g;
        open_golden(&g, fixture);
        static struct g4_config c;
        assert_int_equal(g4_gguf_config_load(&c, &g, fixture), G4_OK);
        if (c.arch == G4_ARCH_GEMMA3) c.query_pre_attn_scalar = 24.0f; // irrelevant to binding
        struct g4_safetensors table, st;
        assert_int_equal(g4_gguf_weights_table(&table, &g, fixture), G4_OK);
        char rel[128];
        snprintf(rel, sizeof rel, "tests/golden/%s", fixture);
        assert_int_equal(g4_safetensors_open(&st, g4_src_path(rel)), G4_OK);
        static struct g4_weights a, b;
        g4_status s = g4_gguf_weights_bind(&a, &c, &table, fixture);
        if (s) print_error("%s\n", g4_last_error());
        assert_int_equal(s, G4_OK);
        assert_int_equal(g4_weights_bind(&b, &c, &st, fixture), G4_OK);
        const int64_t H = c.hidden_size;
        same_weight("embed_tokens", a.embed_tokens, b.embed_tokens);
        same_weight("lm_head", a.lm_head, b.lm_head);
        same_weight("embed_tokens_per_layer", a.embed_tokens_per_layer, b.embed_tokens_per_layer);
        same_weight("per_layer_model_projection", a.per_layer_model_projection, b.per_layer_model_projection);
        same_vec("per_layer_projection_norm", a.per_layer_projection_norm, b.per_layer_projection_norm,
                 c.hidden_size_per_layer_input);
        same_vec("norm", a.norm, b.norm, H);
        for (int il = 0; il < c.num_hidden_layers; il++) {
            const struct g4_layer_weights *x = &a.layer[il], *y = &b.layer[il];
            const int64_t hd = c.layer[il].head_dim, E = c.num_experts;
            same_vec("input_layernorm", x->input_layernorm, y->input_layernorm, H);
            same_vec("post_attention_layernorm", x->post_attention_layernorm, y->post_attention_layernorm, H);
            same_vec("pre_feedforward_layernorm", x->pre_feedforward_layernorm, y->pre_feedforward_layernorm, H);
            same_vec("post_feedforward_layernorm", x->post_feedforward_layernorm, y->post_feedforward_layernorm, H);
            same_vec("q_norm", x->q_norm, y->q_norm, hd);
            same_vec("k_norm", x->k_norm, y->k_norm, hd);
            same_weight("q_proj", x->q_proj, y->q_proj);
            same_weight("k_proj", x->k_proj, y->k_proj);
            same_weight("v_proj", x->v_proj, y->v_proj);
            same_weight("o_proj", x->o_proj, y->o_proj);
            same_weight("gate_proj", x->gate_proj, y->gate_proj);
            same_weight("up_proj", x->up_proj, y->up_proj);
            same_weight("down_proj", x->down_proj, y->down_proj);
            same_weight("per_layer_input_gate", x->per_layer_input_gate, y->per_layer_input_gate);
            same_weight("per_layer_projection", x->per_layer_projection, y->per_layer_projection);
            same_vec("post_per_layer_input_norm", x->post_per_layer_input_norm, y->post_per_layer_input_norm, H);
            same_weight("router_proj", x->router_proj, y->router_proj);
            same_vec("router_scale", x->router_scale, y->router_scale, H);
            same_vec("router_per_expert_scale", x->router_per_expert_scale, y->router_per_expert_scale, E);
            same_weight("experts_gate_up", x->experts_gate_up, y->experts_gate_up);
            same_weight("experts_down", x->experts_down, y->experts_down);
            same_vec("post_feedforward_layernorm_1", x->post_feedforward_layernorm_1, y->post_feedforward_layernorm_1, H);
            same_vec("post_feedforward_layernorm_2", x->post_feedforward_layernorm_2, y->post_feedforward_layernorm_2, H);
            same_vec("pre_feedforward_layernorm_2", x->pre_feedforward_layernorm_2, y->pre_feedforward_layernorm_2, H);
            assert_true(x->layer_scalar == y->layer_scalar);
        }
        // The converter stores vectors (and the MoE router) in F32 whatever the checkpoint's dtype:
        // equal byte counts only for the F32 fixtures.
        if (!strcmp(fixture, "e2b") || !strcmp(fixture, "gemma3")) assert_int_equal(a.n_bytes, b.n_bytes);
        g4_weights_free(&a);
        g4_weights_free(&b);
        g4_safetensors_free(&table);
        g4_safetensors_free(&st);
        g4_gguf_free(&g);
    }
}

// A changed copy of golden_<fixture>.gguf through parsing, config, table and binding.
static g4_status model_status(const char *fixture, const struct mod *mods, int n_mods) {
    struct g4_gguf g, h;
    open_golden(&g, fixture);
    size_t n;
    uint8_t *img = reserialize(&g, mods, n_mods, &n);
    g4_status st = g4_gguf_parse(&h, img, n, fixture);
    static struct g4_config c;
    struct g4_safetensors table = {0};
    static struct g4_weights w;
    if (st == G4_OK) st = g4_gguf_config_load(&c, &h, fixture);
    if (st == G4_OK) st = g4_gguf_weights_table(&table, &h, fixture);
    if (st == G4_OK) {
        st = g4_gguf_weights_bind(&w, &c, &table, fixture);
        if (st == G4_OK) g4_weights_free(&w);
    }
    g4_safetensors_free(&table);
    g4_gguf_free(&h);
    g4_gguf_free(&g);
    free(img);
    return st;
}

static void expect_model_error(const char *fixture, const struct mod *mods, int n_mods,
                               g4_status want, const char *needle) {
    expect_error(model_status(fixture, mods, n_mods), want, needle);
}

#define M(...) ((struct mod){__VA_ARGS__})
#define ONE(fixture, m, want, needle)                                                              \
    do {                                                                                           \
        struct mod m1_ = m;                                                                        \
        expect_model_error(fixture, &m1_, 1, want, needle);                                        \
    } while (0)

static void test_model_errors(void **state) {
    (void)state;
    struct mod none = M(.key = NULL);
    // the unchanged copies load (the rewriting itself is sound)
    static const char *const fixtures[] = {"e2b", "moe", "dense31b", "gemma3"};
    for (size_t i = 0; i < G4_COUNT(fixtures); i++) {
        g4_status st = model_status(fixtures[i], &none, 1);
        if (st) print_error("%s: %s\n", fixtures[i], g4_last_error());
        assert_int_equal(st, G4_OK);
    }

    const uint32_t u32_3 = 3, u32_0 = 0, u32_8 = 8, u32_17 = 17;
    const uint8_t s_llama[] = {5, 0, 0, 0, 0, 0, 0, 0, 'l', 'l', 'a', 'm', 'a'};
    const uint8_t s_yarn[] = {4, 0, 0, 0, 0, 0, 0, 0, 'y', 'a', 'r', 'n'};
    const uint8_t ff3[] = {G4_GGUF_UINT32, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0};
    uint8_t pat_i32[4 + 8 + 8 * 4] = {G4_GGUF_INT32, 0, 0, 0, 8};
    ONE("e2b", M(.key = "gemma4.block_count", .drop_key = true), G4_ERR_FORMAT, "missing metadata key gemma4.block_count");
    ONE("e2b", M(.key = "general.architecture", .type = G4_GGUF_STRING, .payload = s_llama, .payload_len = sizeof s_llama),
        G4_ERR_UNSUPPORTED, "general.architecture is \"llama\"");
    ONE("e2b", M(.key = "general.architecture", .drop_key = true), G4_ERR_FORMAT, "missing metadata key general.architecture");
    ONE("e2b", M(.key = "gemma4.block_count", .type = G4_GGUF_STRING, .payload = s_llama, .payload_len = sizeof s_llama),
        G4_ERR_FORMAT, "gemma4.block_count is STRING, must be an integer");
    ONE("e2b", M(.key = "gemma4.block_count", .type = G4_GGUF_UINT32, .payload = &u32_0, .payload_len = 4),
        G4_ERR_CONFIG, "gemma4.block_count = 0 out of range");
    ONE("e2b", M(.key = "gemma4.feed_forward_length", .type = G4_GGUF_ARRAY, .payload = ff3, .payload_len = sizeof ff3),
        G4_ERR_FORMAT, "gemma4.feed_forward_length has 3 values; block_count is 8");
    ONE("e2b", M(.key = "gemma4.attention.sliding_window_pattern", .drop_key = true), G4_ERR_FORMAT,
        "missing metadata key gemma4.attention.sliding_window_pattern");
    ONE("e2b", M(.key = "gemma4.attention.sliding_window_pattern", .type = G4_GGUF_ARRAY, .payload = pat_i32,
                 .payload_len = sizeof pat_i32),
        G4_ERR_FORMAT, "gemma4.attention.sliding_window_pattern is an ARRAY of INT32, must hold bools");
    ONE("e2b", M(.key = "gemma4.attention.head_count_kv", .type = G4_GGUF_UINT32, .payload = &u32_3, .payload_len = 4),
        G4_ERR_CONFIG, "not divisible by 3 KV heads");
    ONE("e2b", M(.key = "gemma4.attention.value_length", .type = G4_GGUF_UINT32, .payload = &u32_8, .payload_len = 4),
        G4_ERR_UNSUPPORTED, "value_length 8 != key_length 32");
    ONE("e2b", M(.key = "gemma4.rope.dimension_count_swa", .type = G4_GGUF_UINT32, .payload = &u32_8, .payload_len = 4),
        G4_ERR_UNSUPPORTED, "gemma4.rope.dimension_count_swa = 8: gemma4's sliding layers rotate whole heads of 16");
    ONE("e2b", M(.key = "gemma4.rope.scaling.type", .type = G4_GGUF_STRING, .payload = s_yarn, .payload_len = sizeof s_yarn),
        G4_ERR_UNSUPPORTED, "gemma4.rope.scaling.type = \"yarn\"");
    ONE("gemma3", M(.key = "gemma3.rope.scaling.type", .type = G4_GGUF_STRING, .payload = s_yarn, .payload_len = sizeof s_yarn),
        G4_ERR_UNSUPPORTED, "gemma3.rope.scaling.type = \"yarn\"");
    ONE("e2b", M(.key = "gemma4.attention.shared_kv_layers", .type = G4_GGUF_UINT32, .payload = &u32_17, .payload_len = 4),
        G4_ERR_CONFIG, "gemma4.attention.shared_kv_layers = 17 out of range [0, 7]");
    ONE("e2b", M(.key = "gemma4.context_length", .drop_key = true), G4_ERR_FORMAT, "missing metadata key gemma4.context_length");
    // rope_freqs: the proportional RoPE of full layers
    ONE("e2b", M(.tensor = "rope_freqs.weight", .drop_tensor = true), G4_ERR_FORMAT, "missing tensor rope_freqs.weight");
    ONE("e2b", M(.tensor = "rope_freqs.weight", .retype = true, .ttype = 1), G4_ERR_FORMAT,
        "rope_freqs.weight is F16 [16], needs F32 [16]");
    ONE("e2b", M(.tensor = "rope_freqs.weight", .patch = true, .patch_index = 5, .patch_value = 2.0f), G4_ERR_UNSUPPORTED,
        "rope_freqs.weight[5] = 2: gemma4 reads only 1.0");
    ONE("e2b", M(.tensor = "rope_freqs.weight", .patch = true, .patch_index = 2, .patch_value = 1e30f), G4_ERR_UNSUPPORTED,
        "rope_freqs.weight[3] = 1"); // a 1.0 after a frozen pair
    struct mod frozen[4];
    for (int i = 0; i < 4; i++) frozen[i] = M(.tensor = "rope_freqs.weight", .patch = true, .patch_index = i, .patch_value = 1e30f);
    expect_model_error("e2b", frozen, 4, G4_ERR_CONFIG, "rope_freqs.weight rotates 0 of 16 pairs");
    // K = V must hold on all full layers or none
    ONE("moe", M(.tensor = "blk.0.attn_v.weight", .drop_tensor = true), G4_ERR_UNSUPPORTED,
        "attn_v is missing on 2 of 2 full layers and on a sliding layer");
    // binding: presence, type for the role, shape, names the map does not know
    ONE("e2b", M(.tensor = "blk.2.ffn_up.weight", .drop_tensor = true), G4_ERR_FORMAT, "e2b: missing tensor blk.2.ffn_up.weight");
    ONE("e2b", M(.tensor = "blk.0.attn_k.weight", .drop_tensor = true), G4_ERR_FORMAT, "missing tensor blk.0.attn_k.weight");
    ONE("e2b", M(.tensor = "output_norm.weight", .drop_tensor = true), G4_ERR_FORMAT, "missing tensor output_norm.weight");
    ONE("e2b", M(.tensor = "blk.1.layer_output_scale.weight", .drop_tensor = true), G4_ERR_FORMAT,
        "missing tensor blk.1.layer_output_scale.weight");
    ONE("e2b", M(.tensor = "blk.0.attn_norm.weight", .retype = true, .ttype = 8), G4_ERR_UNSUPPORTED,
        "tensor blk.0.attn_norm.weight has dtype Q8_0; the text model needs F32, F16 or BF16");
    ONE("e2b", M(.tensor = "token_embd.weight", .retype = true, .ttype = 26), G4_ERR_UNSUPPORTED,
        "tensor token_embd.weight has dtype I32; matrices need");
    ONE("e2b", M(.tensor = "blk.0.attn_k.weight", .swap_dims = true), G4_ERR_FORMAT,
        "tensor blk.0.attn_k.weight has shape [64,32], config needs [32,64] (transformers order: "
        "GGUF's ne reversed)");
    ONE("e2b", M(.tensor = "blk.0.inp_gate.weight", .rename = "blk.0.inp_gate2.weight"), G4_ERR_FORMAT,
        "missing tensor blk.0.inp_gate.weight");
    // names the map does not know are refused under their own name
    ONE("dense31b", M(.add_tensor = "blk.0.ssm_conv.weight"), G4_ERR_FORMAT,
        "dense31b: unexpected tensor blk.0.ssm_conv.weight (not used by this config)");
    ONE("gemma3", M(.add_tensor = "per_layer_token_embd.weight"), G4_ERR_FORMAT,
        "unexpected tensor per_layer_token_embd.weight");
    ONE("moe", M(.tensor = "blk.0.ffn_gate_inp.scale", .rename = "blk.0.ffn_gate_inp.bias"), G4_ERR_FORMAT,
        "missing tensor blk.0.ffn_gate_inp.scale");
    // a GGUF tensor whose name collides with a translated one
    ONE("e2b", M(.add_tensor = "model.norm.weight"), G4_ERR_FORMAT,
        "two tensors are both model.norm.weight");
}

static void test_unexpected_tensor(void **state) {
    (void)state;
    // the table: translated names, reversed shapes, rope_freqs left to the config
    struct g4_gguf g;
    open_golden(&g, "dense31b");
    struct g4_safetensors table;
    assert_int_equal(g4_gguf_weights_table(&table, &g, "dense31b"), G4_OK);
    assert_true(table.norms_as_scales);
    assert_null(g4_safetensors_find(&table, "rope_freqs.weight")); // read by the config
    assert_non_null(g4_safetensors_find(&table, "model.layers.0.self_attn.q_proj.weight"));
    assert_non_null(g4_safetensors_find(&table, "model.layers.0.layer_scalar"));
    const struct g4_tensor *t = g4_safetensors_find(&table, "model.embed_tokens.weight");
    assert_true(t->n_dims == 2 && t->shape[0] == 512 && t->shape[1] == 64); // ne reversed
    g4_safetensors_free(&table);
    g4_gguf_free(&g);
    char out[64];
    assert_true(g4_gguf_weights_gguf_name("model.layers.12.mlp.down_proj.weight", out, sizeof out));
    assert_string_equal(out, "blk.12.ffn_down.weight");
    assert_true(g4_gguf_weights_gguf_name("lm_head.weight", out, sizeof out));
    assert_string_equal(out, "output.weight");
    assert_true(g4_gguf_weights_gguf_name("model.layers.3.router.per_expert_scale", out, sizeof out));
    assert_string_equal(out, "blk.3.ffn_down_exps.scale");
    assert_false(g4_gguf_weights_gguf_name("model.layers.x.mlp.down_proj.weight", out, sizeof out));
    assert_false(g4_gguf_weights_gguf_name("vision.x", out, sizeof out));
}


// Logits at every position of the fixture's reference prompt, from a model loaded from `path`.
static float *prefill_logits(const char *path, const struct g4_reference *r, float attn_scale) {
    struct g4_model *m;
    g4_status st = g4_model_load(&m, path, G4_DEVICE_CPU, 0, 0, 2);
    if (st) print_error("%s\n", g4_last_error());
    assert_int_equal(st, G4_OK);
    assert_int_equal(m->cfg.vocab_size, r->vocab);
    if (attn_scale > 0) m->cfg.attn_scale = attn_scale; // before any session reads it
    float *logits = malloc(sizeof(float) * (size_t)r->n_tokens * (size_t)r->vocab);
    struct g4_session *s;
    assert_int_equal(g4_session_init(&s, m, 0), G4_OK);
    assert_int_equal(g4_session_step(s, r->tokens, r->n_tokens, logits, true), G4_OK);
    g4_session_free(s);
    g4_model_release(m);
    return logits;
}

// A .gguf path loads like a model directory: the converted fixtures run to transformers' logits
// (<= 1e-4 of max |logit|, as test_forward_cpu) and to the directory's own logits (<= 1e-6: the
// same weights; vectors and the MoE router are F32 in the GGUF, so some kernels differ). Gemma 3:
// the GGUF's attention scale is llama.cpp's head_dim^-0.5 (query_pre_attn_scalar is not in GGUF),
// so its logits are compared with the directory model run at that scale.
static void test_gguf_model_forward(void **state) {
    (void)state;
    static const char *const fixtures[] = {"e2b", "moe", "dense31b", "gemma3"};
    for (size_t i = 0; i < G4_COUNT(fixtures); i++) {
        const char *fixture = fixtures[i];
        bool g3 = strcmp(fixture, "gemma3") == 0;
        struct g4_reference r;
        assert_int_equal(g4_reference_read(fixture, &r), 0);
        char rel[128], what[128];
        snprintf(rel, sizeof rel, "tests/gguf/golden_%s.gguf", fixture);
        float *a = prefill_logits(g4_src_path(rel), &r, 0);
        snprintf(rel, sizeof rel, "tests/golden/%s", fixture);
        float *b = prefill_logits(g4_src_path(rel), &r, g3 ? 0.25f : 0);
        const size_t n = (size_t)r.n_tokens * (size_t)r.vocab;
        snprintf(what, sizeof what, "%s: gguf vs directory", fixture);
        assert_true(g4_compare_rel(a, b, n, 1e-6, what) <= 1e-6);
        if (!g3) {
            snprintf(what, sizeof what, "%s: gguf vs transformers", fixture);
            assert_true(g4_compare_rel(a, r.logits, n, 1e-4, what) <= 1e-4);
        }
        free(a);
        free(b);
        free(r.blob);
    }
}

static void test_gguf_model_paths(void **state) {
    (void)state;
    struct g4_model *m;
    const char *dir = g4_tmpdir("gguf_model");
    char path[4200];
    // a regular file not named .gguf is neither a directory nor a GGUF checkpoint
    snprintf(path, sizeof path, "%s/model.bin", dir);
    assert_int_equal(g4_write_file(path, "GGUF", 4), 0);
    expect_error(g4_model_load(&m, path, G4_DEVICE_CPU, 0, 0, 1), G4_ERR_IO,
                 "model.bin: not a directory (a model directory or a .gguf file)");
    assert_null(m);
    // a .gguf that is not one, and one that is truncated
    snprintf(path, sizeof path, "%s/bad.gguf", dir);
    assert_int_equal(g4_write_file(path, "{\"a\":1}", 7), 0);
    expect_error(g4_model_load(&m, path, G4_DEVICE_CPU, 0, 0, 1), G4_ERR_FORMAT, "bad.gguf: not a GGUF file");
    size_t n;
    char *img = g4_read_file(g4_src_path("tests/gguf/golden_e2b.gguf"), &n);
    assert_non_null(img);
    snprintf(path, sizeof path, "%s/cut.GGUF", dir);
    assert_int_equal(g4_write_file(path, img, n - 1), 0);
    expect_error(g4_model_load(&m, path, G4_DEVICE_CPU, 0, 0, 1), G4_ERR_FORMAT, "cut.GGUF: truncated");
    free(img);
    // a directory named *.gguf is a model directory
    snprintf(path, sizeof path, "%s/dir.gguf", dir);
    char cmd[8600];
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", g4_src_path("tests/golden/e2b"), path);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(g4_model_load(&m, path, G4_DEVICE_CPU, 0, 0, 1), G4_OK);
    assert_non_null(m->tok); // its tokenizer.json
    assert_null(m->gguf.map);
    g4_model_release(m);
    // the GGUF: weights counted, mapping held by the model
    assert_int_equal(g4_model_load(&m, g4_src_path("tests/gguf/golden_e2b.gguf"), G4_DEVICE_CPU, 0, 0, 1), G4_OK);
    assert_non_null(m->gguf.map);
    assert_true(m->w.n_bytes > 0 && m->budget_bytes == m->w.n_bytes);
    assert_false(m->gguf.in_memory);
    g4_model_release(m);
    // in memory: the file may go away once loaded
    img = g4_read_file(g4_src_path("tests/gguf/golden_e2b.gguf"), &n);
    snprintf(path, sizeof path, "%s/copy.gguf", dir);
    assert_int_equal(g4_write_file(path, img, n), 0);
    free(img);
    assert_int_equal(g4_model_load_flags(&m, path, G4_DEVICE_CPU, 0, 0, 1, G4_LOAD_IN_MEMORY), G4_OK);
    assert_true(m->gguf.in_memory);
    assert_int_equal(truncate(path, 0), 0);
    struct g4_session *s;
    static float logits[512];
    const int32_t toks[3] = {2, 17, 99};
    assert_int_equal(g4_session_init(&s, m, 0), G4_OK);
    assert_int_equal(g4_session_step(s, toks, 3, logits, false), G4_OK);
    assert_true(isfinite(logits[0]));
    g4_session_free(s);
    g4_model_release(m);
    g4_rm_rf(dir);
}

// Block-quantized matrices from a GGUF (golden_e2b_q.gguf: Q8_0, Q4_0, Q5_0 written by the gguf
// package) run on the exact path to the logits of the same file dequantized to F32 (<= 1e-5 of
// max |logit|: the exact path dequantizes blocks inside its tiles, equal up to summation order;
// measured: identical).
static void test_gguf_quantized_forward(void **state) {
    (void)state;
    struct g4_gguf g;
    open_golden(&g, "e2b_q");
    int n_quant = 0;
    for (int64_t i = 0; i < g.n_tensors; i++) n_quant += G4_DTYPE_IS_QUANT(g.tensors[i].dtype);
    assert_int_equal(n_quant, 61);
    size_t n;
    uint8_t *img = reserialize_ex(&g, NULL, 0, true, &n);
    g4_gguf_free(&g);
    const char *dir = g4_tmpdir("gguf_q");
    char path[4200];
    snprintf(path, sizeof path, "%s/dequantized.gguf", dir);
    assert_int_equal(g4_write_file(path, img, n), 0);
    free(img);
    struct g4_reference r;
    assert_int_equal(g4_reference_read("e2b", &r), 0);
    float *q = prefill_logits(g4_src_path("tests/gguf/golden_e2b_q.gguf"), &r, 0);
    float *f = prefill_logits(path, &r, 0);
    const size_t nl = (size_t)r.n_tokens * (size_t)r.vocab;
    assert_true(g4_compare_rel(q, f, nl, 1e-5, "e2b_q: quantized vs its F32 dequantization") <= 1e-5);
    double d2 = 0, r2 = 0;
    for (size_t i = 0; i < nl; i++) {
        d2 += ((double)q[i] - r.logits[i]) * ((double)q[i] - r.logits[i]);
        r2 += (double)r.logits[i] * r.logits[i];
    }
    printf("e2b_q vs transformers (F32 weights): RMS diff / RMS = %.3e\n", sqrt(d2 / r2));
    // Really quantized. Not a closeness check: this tiny random model amplifies weight noise ~80x
    // (uniform noise of 1e-5 / 1e-3 of each matrix's max moves its logits by 8e-4 / 5.5e-2 RMS;
    // all-Q8_0 by 0.16, this Q4_0/Q5_0/Q8_0 mix by 0.58; unrelated logits would be ~1.4).
    assert_true(sqrt(d2 / r2) > 1e-3 && sqrt(d2 / r2) < 1.0);
    free(q);
    free(f);
    free(r.blob);
    g4_rm_rf(dir);
}

// Variants the golden files do not show: an untied head (output.weight), gemma3's layer pattern
// as a period or a bool array, gemma3 without a sliding window.
static void test_gguf_config_variants(void **state) {
    (void)state;
    struct g4_gguf g, h;
    static struct g4_config c;
    size_t n;
    // untied: output.weight (a copy of token_embd) becomes lm_head, and runs to the same logits
    struct mod out = M(.add_tensor = "output.weight", .copy_of = "token_embd.weight");
    open_golden(&g, "e2b");
    uint8_t *img = reserialize(&g, &out, 1, &n);
    g4_gguf_free(&g);
    const char *dir = g4_tmpdir("gguf_var");
    char path[4200];
    snprintf(path, sizeof path, "%s/untied.gguf", dir);
    assert_int_equal(g4_write_file(path, img, n), 0);
    free(img);
    struct g4_model *m;
    assert_int_equal(g4_model_load(&m, path, G4_DEVICE_CPU, 0, 0, 1), G4_OK);
    assert_false(m->cfg.tie_word_embeddings);
    assert_true(m->w.lm_head.data != m->w.embed_tokens.data);
    assert_memory_equal(m->w.lm_head.data, m->w.embed_tokens.data, 512 * 64 * sizeof(float));
    g4_model_release(m);
    struct g4_reference r;
    assert_int_equal(g4_reference_read("e2b", &r), 0);
    float *a = prefill_logits(path, &r, 0);
    float *b = prefill_logits(g4_src_path("tests/gguf/golden_e2b.gguf"), &r, 0);
    const size_t nl = (size_t)r.n_tokens * (size_t)r.vocab;
    assert_true(g4_compare_rel(a, b, nl, 0.0, "e2b untied vs tied") == 0.0);
    free(a);
    free(b);
    free(r.blob);
    g4_rm_rf(dir);

    // gemma3: a period, a bool array, no window
    const uint32_t three = 3;
    uint8_t bools[4 + 8 + 7] = {G4_GGUF_BOOL, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 0, 1, 1};
    const struct mod g3[] = {
        M(.key = "gemma3.attention.sliding_window_pattern", .type = G4_GGUF_UINT32, .payload = &three,
          .payload_len = 4),
        M(.key = "gemma3.attention.sliding_window_pattern", .type = G4_GGUF_ARRAY, .payload = bools,
          .payload_len = sizeof bools),
        M(.key = "gemma3.attention.sliding_window", .drop_key = true),
    };
    static const char *const want[] = {"SSFSSFS", "SFSSFSS", "FFFFFFF"};
    open_golden(&g, "gemma3");
    for (size_t i = 0; i < G4_COUNT(g3); i++) {
        img = reserialize(&g, &g3[i], 1, &n);
        assert_int_equal(g4_gguf_parse(&h, img, n, "g3"), G4_OK);
        g4_status st = g4_gguf_config_load(&c, &h, "g3");
        if (st) print_error("%s\n", g4_last_error());
        assert_int_equal(st, G4_OK);
        char got[8] = "";
        for (int il = 0; il < 7; il++) got[il] = c.layer[il].is_sliding ? 'S' : 'F';
        assert_string_equal(got, want[i]);
        for (int il = 0; il < 7; il++)
            assert_int_equal(c.layer[il].window, c.layer[il].is_sliding ? 8 : 0);
        g4_gguf_free(&h);
        free(img);
    }
    // the golden file itself: no pattern key, llama.cpp's period 6
    assert_int_equal(g4_gguf_config_load(&c, &g, "g3"), G4_OK);
    assert_true(c.layer[5].is_sliding == false && c.layer[6].is_sliding && c.layer[4].is_sliding);
    g4_gguf_free(&g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_tensors),      cmocka_unit_test(test_every_tensor_type),
        cmocka_unit_test(test_alignment),          cmocka_unit_test(test_metadata_types),
        cmocka_unit_test(test_truncated_everywhere), cmocka_unit_test(test_bad_header),
        cmocka_unit_test(test_wrong_counts),       cmocka_unit_test(test_bad_metadata),
        cmocka_unit_test(test_bad_tensors),        cmocka_unit_test(test_python_writer_file),
        cmocka_unit_test(test_open_errors),        cmocka_unit_test(test_ggml_type_names),
        cmocka_unit_test(test_golden_config),      cmocka_unit_test(test_golden_weights),
        cmocka_unit_test(test_model_errors),       cmocka_unit_test(test_unexpected_tensor),
        cmocka_unit_test(test_gguf_model_forward), cmocka_unit_test(test_gguf_model_paths),
        cmocka_unit_test(test_gguf_quantized_forward), cmocka_unit_test(test_gguf_config_variants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
