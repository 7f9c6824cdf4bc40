// Quantized weights on the CPU: the dequantizers bit for bit against the gguf package
// (tests/quant/dequant.bin, written by tests/quant/make_fixture.py), fp32 <-> fp16.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtype.h"
#include "harness.h"
#include "matmul_cpu.h"
#include "model.h"
#include "qblock.h"
#include "quant_act.h"
#include "quant_dequant.h"
#include "quant_dot.h"
#include "quant_rows8.h"
#include "safetensors.h"
#include "session.h"
#include "threadpool.h"
#include "weights.h"

#define SENTINEL 12345.0f
#define GUARD 16

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rand32(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}
static float frand(void) { return (float)((rand32() >> 8) * (1.0 / (1 << 24))) * 2.0f - 1.0f; }

static const enum g4_dtype quant_types[] = {G4_DTYPE_Q4_0, G4_DTYPE_Q5_0, G4_DTYPE_Q8_0,
                                            G4_DTYPE_Q4_K, G4_DTYPE_Q5_K, G4_DTYPE_Q6_K};

// A (rows, cols) matrix of random blocks: random quants and scale bytes, scales d (and dmin)
// about 1 / (typical |q| * sqrt-ish), so products stay O(1).
static void *random_quant(enum g4_dtype dt, int64_t rows, int64_t cols) {
    const size_t bb = g4_dtype_block_bytes(dt), nb = (size_t)rows * cols / g4_dtype_block(dt);
    uint8_t *w = malloc(nb * bb);
    for (size_t i = 0; i < nb * bb; i++) w[i] = (uint8_t)rand32();
    for (size_t b = 0; b < nb; b++) {
        uint8_t *p = w + b * bb;
        const float mag = dt == G4_DTYPE_Q8_0 ? 1.0f / 127 : dt == G4_DTYPE_Q4_K || dt == G4_DTYPE_Q5_K ? 1.0f / 600 : 1.0f / 16;
        const uint16_t d = g4_f32_to_f16(frand() * mag), dmin = g4_f32_to_f16(frand() * mag);
        if (dt == G4_DTYPE_Q6_K) {
            memcpy(p + G4_QBLOCK_Q6_K_D, &d, 2);
        } else {
            memcpy(p, &d, 2);
            if (dt == G4_DTYPE_Q4_K || dt == G4_DTYPE_Q5_K) memcpy(p + 2, &dmin, 2);
        }
    }
    return w;
}

struct record {
    char name[9];
    uint32_t n, in_bytes, out_bytes;
    const uint8_t *in, *out;
};

// Parses the fixture into recs (at most max); returns the count, or -1 on a malformed file.
static int read_fixture(char **blob, struct record *recs, int max) {
    size_t size = 0;
    *blob = g4_read_file(g4_src_path("tests/quant/dequant.bin"), &size);
    if (!*blob || size < 12 || memcmp(*blob, "G4QF", 4)) return -1;
    const uint8_t *p = (const uint8_t *)*blob, *end = p + size;
    uint32_t version, count;
    memcpy(&version, p + 4, 4);
    memcpy(&count, p + 8, 4);
    if (version != 1 || count > (uint32_t)max) return -1;
    p += 12;
    for (uint32_t i = 0; i < count; i++) {
        struct record *r = &recs[i];
        if (end - p < 20) return -1;
        memcpy(r->name, p, 8);
        r->name[8] = 0;
        memcpy(&r->n, p + 8, 4);
        memcpy(&r->in_bytes, p + 12, 4);
        memcpy(&r->out_bytes, p + 16, 4);
        p += 20;
        if ((size_t)(end - p) < (size_t)r->in_bytes + r->out_bytes) return -1;
        r->in = p;
        r->out = p + r->in_bytes;
        p += r->in_bytes + r->out_bytes;
    }
    return (int)count;
}

static enum g4_dtype dtype_named(const char *name) {
    for (int dt = 0; dt < G4_DTYPE_COUNT; dt++)
        if (strcmp(g4_dtype_name((enum g4_dtype)dt), name) == 0) return (enum g4_dtype)dt;
    return G4_DTYPE_COUNT;
}

// Index of the first element whose bits differ, or -1.
static long first_diff(const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], 4)) return (long)i;
    return -1;
}

// g4_to_f32 on every record: the whole row, every prefix length (partial last blocks), and rows
// starting at each block; NaN bits included. Also the exact path's dequantizers (quant_dequant.h)
// at every ISA level on whole rows.
static void test_dequant_bit_exact(void **state) {
    (void)state;
    char *blob = NULL;
    struct record recs[16];
    const int n_recs = read_fixture(&blob, recs, 16);
    assert_true(n_recs > 0);
    int seen_quant = 0, n_checks = 0;
    for (int ri = 0; ri < n_recs; ri++) {
        const struct record *r = &recs[ri];
        if (strcmp(r->name, "TOF16") == 0) continue;
        const enum g4_dtype dt = dtype_named(r->name);
        assert_true(dt != G4_DTYPE_COUNT);
        assert_int_equal(r->out_bytes, (size_t)r->n * 4);
        assert_int_equal(g4_dtype_row_bytes(dt, r->n), r->in_bytes);
        seen_quant += G4_DTYPE_IS_QUANT(dt);
        float *want = malloc((size_t)r->n * 4), *got = malloc((size_t)r->n * 4 + 64);
        memcpy(want, r->out, (size_t)r->n * 4);
        const int qk = g4_dtype_block(dt);
        // whole row, then prefixes: n = qk * b + tail for a spread of tails
        for (uint32_t n = r->n; n > 0; n = n > 97 ? n - 97 : n - 1) {
            memset(got, 0xA5, (size_t)r->n * 4 + 64);
            g4_to_f32(got, r->in, dt, n);
            const long d = first_diff(got, want, n);
            if (d >= 0)
                print_message("%s n=%u: element %ld is %.9g (0x%08x), gguf says %.9g\n", r->name, n,
                              d, got[d], ((uint32_t *)got)[d], want[d]);
            assert_int_equal(d, -1);
            // nothing written past n
            for (size_t i = n; i < (size_t)r->n + 16; i++) assert_int_equal(((uint32_t *)got)[i], 0xA5A5A5A5u);
            n_checks++;
        }
        // rows starting at each block (as a row lookup or a matmul tile does)
        for (uint32_t b0 = 0; b0 * qk < r->n; b0++) {
            const size_t n = r->n - (size_t)b0 * qk;
            g4_to_f32(got, r->in + g4_dtype_row_bytes(dt, (int64_t)b0 * qk), dt, n);
            assert_int_equal(first_diff(got, want + (size_t)b0 * qk, n), -1);
            n_checks++;
        }
        // the exact path's vectorised dequantizers, every level
        for (int isa = G4_ISA_PORTABLE; G4_DTYPE_IS_QUANT(dt) && isa <= (int)g4_matmul_isa(); isa++) {
            memset(got, 0xA5, (size_t)r->n * 4 + 64);
            g4_quant_dequant_for(dt, (enum g4_isa)isa)(got, r->in, r->n);
            const long d = first_diff(got, want, r->n);
            if (d >= 0) print_message("%s dequantizer %s: element %ld differs\n", r->name, g4_isa_name((enum g4_isa)isa), d);
            assert_int_equal(d, -1);
            assert_int_equal(((uint32_t *)got)[r->n], 0xA5A5A5A5u);
            n_checks++;
        }
        print_message("%-5s %5u elements (%u blocks) bit-identical to gguf.quants\n", r->name, r->n,
                      r->n / qk);
        free(want), free(got);
    }
    assert_int_equal(seen_quant, 6); // Q4_0 Q5_0 Q8_0 Q4_K Q5_K Q6_K
    print_message("dequantization: %d checks\n", n_checks);
    free(blob);
}

// fp32 -> fp16 against numpy's rounding (ties, subnormals, overflow), and fp16 -> fp32 -> fp16
// for every non-NaN half.
static void test_f16_round(void **state) {
    (void)state;
    char *blob = NULL;
    struct record recs[16];
    const int n_recs = read_fixture(&blob, recs, 16);
    assert_true(n_recs > 0);
    int found = 0;
    for (int ri = 0; ri < n_recs; ri++) {
        const struct record *r = &recs[ri];
        if (strcmp(r->name, "TOF16") != 0) continue;
        found = 1;
        for (uint32_t i = 0; i < r->n; i++) {
            float f;
            uint16_t want;
            memcpy(&f, r->in + 4 * i, 4);
            memcpy(&want, r->out + 2 * i, 2);
            const uint16_t got = g4_f32_to_f16(f);
            if (got != want) print_message("f16(%.9g) = 0x%04x, numpy 0x%04x\n", f, got, want);
            assert_int_equal(got, want);
        }
        print_message("fp32 -> fp16: %u values as numpy rounds them\n", r->n);
    }
    assert_true(found);
    for (uint32_t h = 0; h < 0x10000; h++) {
        const float f = g4_f16_to_f32((uint16_t)h);
        if (isnan(f)) assert_true(isnan(g4_f16_to_f32(g4_f32_to_f16(f))));
        else assert_int_equal(g4_f32_to_f16(f), h);
    }
    assert_true(isnan(g4_f16_to_f32(g4_f32_to_f16(NAN))));
    free(blob);
}

// The exact path: g4_matmul_cpu on quantized weights against a double-precision product with
// the dequantized matrix, every ISA level, awkward shapes (1 to 5 blocks, K past the 2048-column
// slices, rows around the 4-row tiles), 1 to 130 tokens (the 96-token blocks), sentinels.
static void test_matmul_exact(void **state) {
    (void)state;
    static const struct { int rows, blocks32; } shapes[] = {{1, 8}, {7, 1}, {5, 3}, {33, 9},
                                                           {4, 24}, {9, 72}, {6, 136}};
    static const int tokens[] = {1, 2, 3, 5, 6, 7, 13, 130};
    struct g4_pool *pool;
    assert_int_equal(g4_pool_init(&pool, 3), G4_OK);
    const enum g4_isa best = g4_matmul_isa();
    int n_cases = 0;
    double worst = 0.0;
    for (size_t qi = 0; qi < G4_COUNT(quant_types); qi++)
        for (size_t si = 0; si < G4_COUNT(shapes); si++) {
            const enum g4_dtype dt = quant_types[qi];
            const int qk = g4_dtype_block(dt), R = shapes[si].rows;
            const int C = qk == 32 ? shapes[si].blocks32 * 32 : (shapes[si].blocks32 + 7) / 8 * 256;
            void *wq = random_quant(dt, R, C);
            float *wf = malloc(sizeof(float) * R * C);
            for (int r = 0; r < R; r++)
                g4_to_f32(wf + (size_t)r * C, (const char *)wq + g4_dtype_row_bytes(dt, C) * r, dt, (size_t)C);
            const struct g4_weight w = {wq, dt, R, C};
            for (size_t ti = 0; ti < G4_COUNT(tokens); ti++) {
                const int nt = tokens[ti];
                float *x = malloc(sizeof(float) * nt * C), *ref = malloc(sizeof(float) * nt * R);
                float *got = malloc(sizeof(float) * (nt * R + 2 * GUARD));
                for (int i = 0; i < nt * C; i++) x[i] = frand();
                for (int t = 0; t < nt; t++)
                    for (int r = 0; r < R; r++) {
                        double acc = 0.0;
                        for (int k = 0; k < C; k++) acc += (double)wf[(size_t)r * C + k] * x[t * C + k];
                        ref[t * R + r] = (float)acc;
                    }
                for (int isa = G4_ISA_PORTABLE; isa <= (int)best; isa++) {
                    for (int i = 0; i < nt * R + 2 * GUARD; i++) got[i] = SENTINEL;
                    g4_matmul_limit_isa((enum g4_isa)isa);
                    g4_matmul_cpu(got + GUARD, x, w, nt, isa & 1 ? NULL : pool);
                    g4_matmul_limit_isa(G4_ISA_AVX512BF16);
                    char what[112];
                    snprintf(what, sizeof what, "exact %s %s rows=%d cols=%d tokens=%d",
                             g4_isa_name((enum g4_isa)isa), g4_dtype_name(dt), R, C, nt);
                    // fp32 accumulation against double: a few ulps of sqrt(cols)
                    const double e = g4_compare_rel(got + GUARD, ref, (size_t)nt * R, 1e-5, what);
                    assert_true(e <= 1e-5);
                    worst = fmax(worst, e);
                    for (int i = 0; i < GUARD; i++)
                        assert_true(got[i] == SENTINEL && got[GUARD + nt * R + i] == SENTINEL);
                    n_cases++;
                }
                free(x), free(ref), free(got);
            }
            free(wq), free(wf);
        }
    print_message("exact path: %d cases (up to %s) within %.2e of the dequantized double product\n",
                  n_cases, g4_isa_name(best), worst);
    g4_pool_free(pool);
}

// Dequantized activation row t of xq (the values the integer products see).
static void dequant_act(float *dst, const uint8_t *xq, enum g4_quant_act_type type, int64_t k) {
    const int qk = type == G4_QUANT_ACT_Q8_K ? 256 : 32;
    for (int64_t i = 0; i < k; i++) dst[i] = g4_quant_act_qs(xq)[i] * g4_quant_act_d(xq, k)[i / qk];
}

// The activation quantizers: Q8_0 as ggml's x86 build (d = amax / 127 rounded to fp16, values
// round-to-even(x * 127 / amax)), Q8_K as quantize_row_q8_K_ref (largest magnitude -> -127,
// clamp at 127, 16-element sums); errors within half a step.
static void test_quant_act(void **state) {
    (void)state;
    enum { K = 512 };
    float x[2 * K], back[K];
    for (int i = 0; i < 2 * K; i++) x[i] = frand() * (i < K ? 1.0f : 1e-3f);
    x[5] = 0.0f, x[40] = 3.0f; // block 1 of Q8_0 has amax 3
    memset(x + 64, 0, 32 * sizeof(float)); // an all-zero Q8_0 block
    uint8_t *q = malloc(2 * G4_QUANT_ACT_LD(K));
    // Q8_0
    g4_quant_act_rows(q, G4_QUANT_ACT_Q8_0, x, K, 2, K);
    for (int t = 0; t < 2; t++) {
        const uint8_t *row = q + t * G4_QUANT_ACT_LD(K);
        dequant_act(back, row, G4_QUANT_ACT_Q8_0, K);
        for (int b = 0; b < K / 32; b++) {
            float amax = 0.0f;
            for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[t * K + b * 32 + j]));
            const float d = g4_quant_act_d(row, K)[b];
            assert_true(d == g4_f16_to_f32(g4_f32_to_f16(amax / 127.0f)));
            for (int j = 0; j < 32; j++) {
                const float v = x[t * K + b * 32 + j] * (amax ? 127.0f / amax : 0.0f);
                assert_int_equal(g4_quant_act_qs(row)[b * 32 + j], (int)nearbyintf(v)); // ties to even
                assert_true(fabsf(back[b * 32 + j] - x[t * K + b * 32 + j]) <= 0.57f * d + 4e-6f);
            }
        }
    }
    assert_int_equal(g4_quant_act_qs(q)[40], 127);
    // Q8_K
    g4_quant_act_rows(q, G4_QUANT_ACT_Q8_K, x, K, 2, K);
    for (int t = 0; t < 2; t++) {
        const uint8_t *row = q + t * G4_QUANT_ACT_LD(K);
        const int8_t *qs = g4_quant_act_qs(row);
        for (int b = 0; b < K / 256; b++) {
            float amax = 0.0f, max = 0.0f;
            for (int j = 0; j < 256; j++)
                if (fabsf(x[t * K + b * 256 + j]) > amax) amax = fabsf(x[t * K + b * 256 + j]), max = x[t * K + b * 256 + j];
            const float iscale = -127.0f / max;
            assert_true(g4_quant_act_d(row, K)[b] == 1.0f / iscale);
            for (int j = 0; j < 256; j++) {
                long v = lrintf(iscale * x[t * K + b * 256 + j]);
                assert_int_equal(qs[b * 256 + j], v > 127 ? 127 : v);
            }
        }
        for (int j = 0; j < K / 16; j++) {
            int sum = 0;
            for (int i = 0; i < 16; i++) sum += qs[j * 16 + i];
            assert_int_equal(g4_quant_act_bsums(row, K)[j], sum);
        }
    }
    assert_int_equal(g4_quant_act_qs(q)[40], -127); // the largest magnitude in block 0
    free(q);
}

// The 8-row decode kernels (quant_rows8.h) against the one-row kernels in ggml's order, bit for
// bit, for every row count 1..8 and several widths, on random blocks and on activations that
// reach the 8-bit extremes (every integer partial sum at its largest).
static void test_rows8_bit_exact(void **state) {
    (void)state;
    const enum g4_isa isa = g4_matmul_isa();
    static const int64_t widths[] = {256, 512, 1536, 2304, 32, 96, 1184}; // the last 3: 32-blocks only
    int kernels = 0;
    for (size_t ti = 0; ti < sizeof quant_types / sizeof *quant_types; ti++) {
        const enum g4_dtype dt = quant_types[ti];
        const g4_quant_dot_fn fast = g4_quant_rows8_for(dt, isa), ref = g4_quant_dot_ggml_for(dt, isa);
        if (!fast) continue;
        kernels++;
        for (size_t wi = 0; wi < sizeof widths / sizeof *widths; wi++) {
            const int64_t k = widths[wi];
            if (k % 256 && g4_dtype_block(dt) != 32) continue;
            const size_t rb = g4_dtype_row_bytes(dt, k);
            uint8_t *w = random_quant(dt, 8, k);
            float *x = malloc((size_t)k * sizeof *x);
            uint8_t *xq = malloc((size_t)G4_QUANT_ACT_LD(k));
            for (int pass = 0; pass < 4; pass++) {
                for (int64_t i = 0; i < k; i++)
                    x[i] = pass == 0 ? frand() : pass & 1 ? (i & 1 ? -1.0f : 1.0f) : (frand() < -0.9f ? 50.0f : frand());
                if (pass == 3) // the most negative quants: Q8_0 -128, Q4_0 -8, Q5_0 -16
                    for (size_t b = 0; b < rb * 8 / g4_dtype_block_bytes(dt); b++) {
                        uint8_t *p = w + b * g4_dtype_block_bytes(dt);
                        if (dt == G4_DTYPE_Q8_0) memset(p + 2, 0x80, 32);
                        if (dt == G4_DTYPE_Q4_0 || dt == G4_DTYPE_Q5_0) memset(p + 2, 0, g4_dtype_block_bytes(dt) - 2);
                    }
                if (pass == 1) // every weight quant at its largest too: worst-case integer sums
                    for (size_t b = 0; b < rb * 8 / g4_dtype_block_bytes(dt); b++) {
                        uint8_t *p = w + b * g4_dtype_block_bytes(dt);
                        if (dt == G4_DTYPE_Q8_0) memset(p + 2, 0x7F, 32);
                        if (dt == G4_DTYPE_Q4_0 || dt == G4_DTYPE_Q5_0) memset(p + 2, 0xFF, g4_dtype_block_bytes(dt) - 2);
                        if (dt == G4_DTYPE_Q4_K) memset(p + G4_QBLOCK_Q4_K_QS, 0xFF, 128);
                        if (dt == G4_DTYPE_Q4_K) memset(p + G4_QBLOCK_K_SCALES, 0xFF, 12);
                        if (dt == G4_DTYPE_Q6_K) memset(p, 0xFF, G4_QBLOCK_Q6_K_SCALES);
                        if (dt == G4_DTYPE_Q6_K) memset(p + G4_QBLOCK_Q6_K_SCALES, 0x7F, 16);
                    }
                g4_quant_act_rows(xq, g4_quant_act_type_for(dt), x, k, 1, k);
                for (int nr = 1; nr <= 8; nr++) {
                    float a[8], b[8];
                    memset(a, 0xA5, sizeof a), memset(b, 0x5A, sizeof b);
                    fast(a, w, rb, nr, xq, k);
                    ref(b, w, rb, nr, xq, k);
                    for (int r = 0; r < nr; r++) {
                        if (memcmp(&a[r], &b[r], sizeof(float)))
                            fail_msg("%s k %lld nr %d pass %d row %d: %.9g vs ggml order %.9g",
                                     g4_dtype_name(dt), (long long)k, nr, pass, r, a[r], b[r]);
                    }
                    for (int r = nr; r < 8; r++) assert_memory_equal(&a[r], &(uint32_t){0xA5A5A5A5u}, 4);
                }
            }
            free(w), free(x), free(xq);
        }
    }
    if (!kernels) print_message("rows8: no 8-row kernel at ISA %s (needs AVX-512 VNNI): nothing compared\n", g4_isa_name(isa));
}

// g4_matmul_cpu_q8act at every ISA level (integer dot products up to 3 tokens, the fp32 tiles on
// the 8-bit values from 4) against a double product of the dequantized weights and the
// dequantized 8-bit activations (so the integer sums are checked exactly, independently of the
// kernels), then against the exact path: the 8-bit activations cost about 1e-2 RMS and must
// show.
static void test_matmul_fast(void **state) {
    (void)state;
    static const struct { int rows, blocks32; } shapes[] = {{1, 8}, {7, 1}, {5, 3}, {33, 9},
                                                           {4, 24}, {9, 72}, {6, 136}};
    static const int tokens[] = {1, 2, 3, 4, 7, 13, 65, 130};
    struct g4_pool *pool;
    assert_int_equal(g4_pool_init(&pool, 3), G4_OK);
    const enum g4_isa best = g4_matmul_isa();
    int n_cases = 0;
    double worst_ref = 0.0, worst_exact = 0.0, least_exact = 1.0;
    for (size_t qi = 0; qi < G4_COUNT(quant_types); qi++)
        for (size_t si = 0; si < G4_COUNT(shapes); si++) {
            const enum g4_dtype dt = quant_types[qi];
            const enum g4_quant_act_type at = g4_quant_act_type_for(dt);
            const int qk = g4_dtype_block(dt), R = shapes[si].rows;
            const int C = qk == 32 ? shapes[si].blocks32 * 32 : (shapes[si].blocks32 + 7) / 8 * 256;
            void *wq = random_quant(dt, R, C);
            float *wf = malloc(sizeof(float) * R * C), *xa = malloc(sizeof(float) * C);
            for (int r = 0; r < R; r++)
                g4_to_f32(wf + (size_t)r * C, (const char *)wq + g4_dtype_row_bytes(dt, C) * r, dt, (size_t)C);
            const struct g4_weight w = {wq, dt, R, C};
            for (size_t ti = 0; ti < G4_COUNT(tokens); ti++) {
                const int nt = tokens[ti];
                float *x = malloc(sizeof(float) * nt * C), *ref = malloc(sizeof(float) * nt * R);
                float *exact = malloc(sizeof(float) * nt * R);
                float *got = malloc(sizeof(float) * (nt * R + 2 * GUARD));
                uint8_t *xq = malloc((size_t)nt * G4_QUANT_ACT_LD(C));
                float *scratch = malloc(sizeof(float) * nt * G4_BF16ACT_LD(C));
                for (int i = 0; i < nt * C; i++) x[i] = frand();
                g4_quant_act_rows(xq, at, x, C, nt, C);
                for (int t = 0; t < nt; t++) {
                    dequant_act(xa, xq + (size_t)t * G4_QUANT_ACT_LD(C), at, C);
                    for (int r = 0; r < R; r++) {
                        double acc = 0.0;
                        for (int k = 0; k < C; k++) acc += (double)wf[(size_t)r * C + k] * xa[k];
                        ref[t * R + r] = (float)acc;
                    }
                }
                g4_matmul_cpu(exact, x, w, nt, pool);
                for (int isa = G4_ISA_PORTABLE; isa <= (int)best; isa++) {
                    for (int i = 0; i < nt * R + 2 * GUARD; i++) got[i] = SENTINEL;
                    g4_matmul_limit_isa((enum g4_isa)isa);
                    g4_matmul_cpu_q8act(got + GUARD, x, w, nt, isa & 1 ? NULL : pool, scratch);
                    g4_matmul_limit_isa(G4_ISA_AVX512BF16);
                    char what[112];
                    snprintf(what, sizeof what, "q8act %s %s rows=%d cols=%d tokens=%d",
                             g4_isa_name((enum g4_isa)isa), g4_dtype_name(dt), R, C, nt);
                    // exact integer sums; fp32 scaling and summation against double
                    const double e = g4_compare_rel(got + GUARD, ref, (size_t)nt * R, 1e-5, what);
                    assert_true(e <= 1e-5);
                    worst_ref = fmax(worst_ref, e);
                    for (int i = 0; i < GUARD; i++)
                        assert_true(got[i] == SENTINEL && got[GUARD + nt * R + i] == SENTINEL);
                    n_cases++;
                }
                // against the exact path (fp32 activations): the 8-bit rounding of x, RMS over
                // the case's outputs (a single output can be a small sum with large relative error)
                if (C >= 256 && nt * R >= 8) {
                    double d2 = 0.0, e2 = 0.0;
                    for (int i = 0; i < nt * R; i++) {
                        const double e = (double)got[GUARD + i] - exact[i];
                        d2 += e * e, e2 += (double)exact[i] * exact[i];
                    }
                    const double rel = sqrt(d2 / e2);
                    if (!(rel <= 2e-2 && rel >= 1e-4))
                        print_message("%s %dx%d t=%d: %.3e RMS\n", g4_dtype_name(dt), R, C, nt, rel);
                    assert_true(rel <= 2e-2 && rel >= 1e-4);
                    worst_exact = fmax(worst_exact, rel);
                    least_exact = fmin(least_exact, rel);
                }
                free(x), free(ref), free(exact), free(got), free(xq), free(scratch);
            }
            free(wq), free(wf), free(xa);
        }
    print_message("fast path: %d cases (up to %s) within %.2e of the double product on the 8-bit "
                  "activations; %.2e to %.2e RMS from the exact path\n", n_cases,
                  g4_isa_name(best), worst_ref, least_exact, worst_exact);
    g4_pool_free(pool);
}

// ggml's reference quantizers for the 32-element types (quantize_row_q*_0_ref).
static void quantize_row32(uint8_t *dst, const float *x, int64_t k, enum g4_dtype dt) {
    for (int64_t b = 0; b < k / 32; b++, x += 32) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 32; j++)
            if (fabsf(x[j]) > amax) amax = fabsf(x[j]), max = x[j];
        if (dt == G4_DTYPE_Q8_0) {
            const float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
            const uint16_t h = g4_f32_to_f16(d);
            memcpy(dst, &h, 2);
            for (int j = 0; j < 32; j++) dst[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
            dst += G4_QBLOCK_Q8_0_BYTES;
            continue;
        }
        const int five = dt == G4_DTYPE_Q5_0, top = five ? 31 : 15;
        const float d = max / (five ? -16.0f : -8.0f), id = d ? 1.0f / d : 0.0f;
        const uint16_t h = g4_f32_to_f16(d);
        memcpy(dst, &h, 2);
        uint32_t qh = 0;
        uint8_t *qs = dst + (five ? 6 : 2);
        for (int j = 0; j < 16; j++) {
            int q0 = (int)(int8_t)(x[j] * id + (five ? 16.5f : 8.5f));
            int q1 = (int)(int8_t)(x[j + 16] * id + (five ? 16.5f : 8.5f));
            q0 = q0 < top ? q0 : top, q1 = q1 < top ? q1 : top;
            qs[j] = (uint8_t)((q0 & 0xF) | (q1 & 0xF) << 4);
            qh |= (uint32_t)(q0 >> 4 & 1) << j | (uint32_t)(q1 >> 4 & 1) << (j + 16);
        }
        if (five) memcpy(dst + 2, &qh, 4);
        dst += five ? G4_QBLOCK_Q5_0_BYTES : G4_QBLOCK_Q4_0_BYTES;
    }
}

// Every matrix of a loaded model that can take 32-element blocks.
static int model_matrices(struct g4_model *m, struct g4_weight **out) {
    int n = 0;
    struct g4_weights *w = &m->w;
    out[n++] = &w->embed_tokens;
    out[n++] = &w->embed_tokens_per_layer;
    out[n++] = &w->per_layer_model_projection;
    for (int il = 0; il < m->cfg.num_hidden_layers; il++) {
        struct g4_layer_weights *l = &w->layer[il];
        struct g4_weight *all[] = {&l->q_proj, &l->k_proj, &l->v_proj, &l->o_proj, &l->gate_proj,
                                   &l->up_proj, &l->down_proj, &l->per_layer_input_gate,
                                   &l->per_layer_projection};
        for (size_t i = 0; i < G4_COUNT(all); i++) out[n++] = all[i];
    }
    int kept = 0;
    for (int i = 0; i < n; i++)
        if (out[i]->data && out[i]->dtype == G4_DTYPE_F32 && out[i]->cols % 32 == 0) out[kept++] = out[i];
    return kept;
}

// The e2b golden model with its matrices quantized (Q4_0, Q5_0, Q8_0 in turn; the tied LM head
// reads the quantized embedding, embedding and PLE rows dequantize per token) against the same
// model with those matrices dequantized to F32: the exact path agrees to summation order, the
// fast path (GEMMA4_PRECISION_BF16) within the cost of 8-bit activations; prefill, chunked and
// token-by-token fast steps agree with each other.
static void test_forward_quantized(void **state) {
    (void)state;
    struct g4_reference r;
    assert_int_equal(g4_reference_read("e2b", &r), 0);
    struct g4_model *mq = NULL, *mf = NULL;
    assert_int_equal(g4_model_load(&mq, g4_src_path("tests/golden/e2b"), G4_DEVICE_CPU, 0, 256, 2), G4_OK);
    assert_int_equal(g4_model_load(&mf, g4_src_path("tests/golden/e2b"), G4_DEVICE_CPU, 0, 256, 2), G4_OK);
    struct g4_weight *wq[8 + 9 * G4_MAX_LAYERS], *wf[8 + 9 * G4_MAX_LAYERS];
    const int n = model_matrices(mq, wq);
    assert_int_equal(model_matrices(mf, wf), n);
    assert_true(n > 40);
    void *bufs[2 * (8 + 9 * G4_MAX_LAYERS)];
    int counts[3] = {0};
    for (int i = 0; i < n; i++) {
        static const enum g4_dtype types[] = {G4_DTYPE_Q8_0, G4_DTYPE_Q4_0, G4_DTYPE_Q5_0};
        const enum g4_dtype dt = types[i % 3];
        const int64_t R = wq[i]->rows, C = wq[i]->cols;
        uint8_t *q = malloc(g4_dtype_row_bytes(dt, C) * R);
        float *f = malloc(sizeof(float) * R * C);
        for (int64_t row = 0; row < R; row++) {
            quantize_row32(q + g4_dtype_row_bytes(dt, C) * row, (const float *)wq[i]->data + row * C, C, dt);
            g4_to_f32(f + row * C, q + g4_dtype_row_bytes(dt, C) * row, dt, (size_t)C);
        }
        *wq[i] = (struct g4_weight){q, dt, R, C};
        *wf[i] = (struct g4_weight){f, G4_DTYPE_F32, R, C};
        bufs[2 * i] = q, bufs[2 * i + 1] = f;
        counts[i % 3]++;
    }
    mq->w.lm_head = mq->w.embed_tokens; // tied: the quantized table
    mf->w.lm_head = mf->w.embed_tokens;
    print_message("e2b: %d matrices quantized (%d Q8_0, %d Q4_0, %d Q5_0), embedding %s\n", n,
                  counts[0], counts[1], counts[2], g4_dtype_name(mq->w.embed_tokens.dtype));

    const int T = r.n_tokens, V = r.vocab;
    float *lf = malloc(sizeof(float) * T * V), *lq = malloc(sizeof(float) * T * V);
    float *lfast = malloc(sizeof(float) * T * V), *lstep = malloc(sizeof(float) * T * V);
    struct g4_session *sf, *sq;
    assert_int_equal(g4_session_init(&sf, mf, 0), G4_OK);
    assert_int_equal(g4_session_init(&sq, mq, 0), G4_OK);
    assert_int_equal(g4_session_step(sf, r.tokens, T, lf, true), G4_OK);
    assert_int_equal(g4_session_step(sq, r.tokens, T, lq, true), G4_OK);
    // exact path: fp32 on the dequantized weights
    assert_true(g4_compare_rel(lq, lf, (size_t)T * V, 1e-4, "e2b quantized, exact path vs dequantized F32") <= 1e-4);
    // fast path
    g4_session_reset(sq);
    sq->bf16 = true;
    assert_int_equal(g4_session_step(sq, r.tokens, T, lfast, true), G4_OK);
    // 8 layers of 64-wide random weights amplify the 8-bit rounding of each product's inputs
    // (the same steps through the exact path on the dequantized 8-bit activations give these
    // logits too); measured: 1.3e-1 RMS, argmax equal at 37 of 48 positions
    double d2 = 0.0, r2 = 0.0;
    int same = 0;
    for (int t = 0; t < T; t++) {
        int a = 0, b = 0;
        for (int v = 0; v < V; v++) {
            const double x = lfast[(size_t)t * V + v], y = lq[(size_t)t * V + v];
            d2 += (x - y) * (x - y), r2 += y * y;
            if (x > lfast[(size_t)t * V + a]) a = v;
            if (y > lq[(size_t)t * V + b]) b = v;
        }
        same += a == b;
    }
    const double rms = sqrt(d2 / r2);
    print_message("e2b fast path vs exact: %.2e RMS relative, argmax equal at %d of %d positions\n",
                  rms, same, T);
    assert_true(rms <= 0.2 && rms >= 1e-3);
    // fast path: prefill 20, then chunks and single tokens give the prefill's logits
    g4_session_reset(sq);
    assert_int_equal(g4_session_step(sq, r.tokens, 20, lstep, true), G4_OK);
    for (int t = 20; t < T;) {
        const int k = t % 3 == 0 && t + 5 <= T ? 5 : 1;
        assert_int_equal(g4_session_step(sq, r.tokens + t, k, lstep + (size_t)t * V, true), G4_OK);
        t += k;
    }
    assert_true(g4_compare_rel(lstep, lfast, (size_t)T * V, 1e-4, "e2b fast path, steps vs prefill") <= 1e-4);
    g4_session_free(sf);
    g4_session_free(sq);
    g4_model_release(mq);
    g4_model_release(mf);
    for (int i = 0; i < 2 * n; i++) free(bufs[i]);
    free(lf), free(lq), free(lfast), free(lstep), free(r.blob);
}

// g4_weights_bind on block types (as a GGUF gives them): matrices whose rows are whole blocks are
// taken, kept where they are; a quantized norm weight or a matrix whose rows are not whole
// blocks is refused with the tensor named. (The e2b checkpoint's dtypes relabelled in memory.)
static void expect_bind(struct g4_safetensors *st, const struct g4_config *cfg, const char *name,
                        enum g4_dtype dt, g4_status code, const char *msg) {
    struct g4_tensor *t = (struct g4_tensor *)g4_safetensors_find(st, name);
    assert_non_null(t);
    const enum g4_dtype saved = t->dtype;
    t->dtype = dt;
    struct g4_weights w;
    const g4_status got = g4_weights_bind(&w, cfg, st, "e2b");
    print_message("%s as %s -> %s %s\n", name, g4_dtype_name(dt), g4_status_name(got),
                  got ? g4_last_error() : "");
    assert_int_equal(got, code);
    if (msg) assert_non_null(strstr(g4_last_error(), msg));
    if (got == G4_OK) {
        assert_true(w.layer[0].q_proj.dtype == dt || w.embed_tokens.dtype == dt);
        g4_weights_free(&w);
    }
    t->dtype = saved;
}

static void test_bind_quantized(void **state) {
    (void)state;
    struct g4_config cfg;
    struct g4_safetensors st;
    const char *dir = g4_src_path("tests/golden/e2b");
    assert_int_equal(g4_config_load(&cfg, dir), G4_OK);
    assert_int_equal(g4_safetensors_open(&st, dir), G4_OK);
    const char *q = g4_safetensors_find(&st, "model.layers.0.self_attn.q_proj.weight")
                        ? "model.layers.0.self_attn.q_proj.weight"
                        : "model.language_model.layers.0.self_attn.q_proj.weight";
    char norm[128], proj[128], emb[128];
    snprintf(norm, sizeof norm, "%.*sinput_layernorm.weight", (int)(strstr(q, "self_attn") - q), q);
    snprintf(proj, sizeof proj, "%.*sper_layer_projection.weight", (int)(strstr(q, "self_attn") - q), q);
    snprintf(emb, sizeof emb, "%.*sembed_tokens.weight", (int)(strstr(q, "layers.") - q), q);
    expect_bind(&st, &cfg, q, G4_DTYPE_Q8_0, G4_OK, NULL);        // 64 columns: 2 blocks
    expect_bind(&st, &cfg, emb, G4_DTYPE_Q5_0, G4_OK, NULL);      // the tied table too
    expect_bind(&st, &cfg, q, G4_DTYPE_Q4_K, G4_ERR_FORMAT, "not a multiple of its 256-element blocks");
    expect_bind(&st, &cfg, proj, G4_DTYPE_Q4_0, G4_ERR_FORMAT, "per_layer_projection.weight is Q4_0");
    expect_bind(&st, &cfg, norm, G4_DTYPE_Q8_0, G4_ERR_UNSUPPORTED, "input_layernorm.weight has dtype Q8_0");
    expect_bind(&st, &cfg, q, G4_DTYPE_I32, G4_ERR_UNSUPPORTED, "matrices need F32, F16, BF16 or a ggml block type");
    g4_safetensors_free(&st);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dequant_bit_exact),
        cmocka_unit_test(test_f16_round),
        cmocka_unit_test(test_matmul_exact),
        cmocka_unit_test(test_quant_act),
        cmocka_unit_test(test_rows8_bit_exact),
        cmocka_unit_test(test_matmul_fast),
        cmocka_unit_test(test_forward_quantized),
        cmocka_unit_test(test_bind_quantized),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
