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

#include "gguf.h"
#include "harness.h"

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

    assert_int_equal(g.n_tensors, 11);
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_tensors),      cmocka_unit_test(test_every_tensor_type),
        cmocka_unit_test(test_alignment),          cmocka_unit_test(test_metadata_types),
        cmocka_unit_test(test_truncated_everywhere), cmocka_unit_test(test_bad_header),
        cmocka_unit_test(test_wrong_counts),       cmocka_unit_test(test_bad_metadata),
        cmocka_unit_test(test_bad_tensors),        cmocka_unit_test(test_python_writer_file),
        cmocka_unit_test(test_open_errors),        cmocka_unit_test(test_ggml_type_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
