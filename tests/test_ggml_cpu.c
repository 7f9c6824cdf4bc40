// kernels/cpu/ggml_cpu.h and the ggml-order products of quant_dot.h, which the fast path on
// block-quantized models uses to compute llama.cpp's values bit for bit (tests/test_real.c checks
// them against llama.cpp itself on the real model; this test needs no model):
//   - g4_ggml_cpu_attention against a scalar model of ggml's one-row flash attention written
//     here, bit for bit: with AVX512-FP16 (fp16 fused multiply-adds: the model rounds the exact
//     double result once to fp16) and, with the engine limited to AVX2, ggml's F32Cx16 form;
//   - the ggml-order dot kernels give the same bits at the AVX2 and AVX-512 VNNI levels (one
//     summation order), and stay within 1e-5 relative of g4_quant_dot_for's kernels (the same
//     integer sums in another fp32 order);
//   - g4_ggml_cpu_geglu's 16-wide form gives the bits of its one-at-a-time form (called with n = 1)
//     on every fp16 value (infinities and NaNs too), values between them (the rounding), the +-10
//     edges.
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
#include "ggml_cpu.h"
#include "harness.h"
#include "matmul_cpu.h"
#include "quant_act.h"
#include "quant_dot.h"

static uint32_t rng = 12345;
static float frand(void) { // uniform in [-1, 1)
    rng = rng * 1664525u + 1013904223u;
    return (float)(rng >> 8) / (float)(1 << 23) - 1.0f;
}

static float f16r(float x) { return g4_f16_to_f32(g4_f32_to_f16(x)); }

// x rounded once to the nearest fp16 value (ties to even), x finite and well inside fp16's range.
static float f16_of_double(double x) {
    if (x == 0.0) return 0.0f;
    int e;
    frexp(x, &e);                        // x = m 2^e, 0.5 <= |m| < 1
    const int q = e - 11 < -24 ? -24 : e - 11; // 11 significant bits, subnormals below 2^-14
    return (float)ldexp(nearbyint(ldexp(x, -q)), q);
}

// ggml_vec_dot_f16 of its AVX-512 build: 4 x 16 fp32 lanes, then its reduction tree.
static float dot_model(const float *x, const float *y, int n) {
    float acc[4][16] = {{0}};
    for (int i = 0; i < n; i += 64)
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 16; l++) acc[j][l] = fmaf(x[i + 16 * j + l], y[i + 16 * j + l], acc[j][l]);
    float a[16], t8[8], t4[4];
    for (int l = 0; l < 16; l++) a[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
    for (int l = 0; l < 8; l++) t8[l] = a[l + 8] + a[l];
    for (int l = 0; l < 4; l++) t4[l] = t8[l + 4] + t8[l];
    return (t4[0] + t4[2]) + (t4[1] + t4[3]);
}

// One head of ggml_compute_forward_flash_attn_ext_f16_one_chunk with an f16 V: native = fp16
// arithmetic (AVX512-FP16), else fp32 arithmetic stored as fp16 (F32Cx16).
static void attention_model(float *out, const float *q, const float *k, const float *v, int n, int hd,
                            int stride, float scale, int native) {
    float qh[512], acc[512] = {0};
    for (int d = 0; d < hd; d++) qh[d] = f16r(q[d] * scale);
    float S = 0.0f, M = -INFINITY;
    for (int p = 0; p < n; p++) {
        const float s = dot_model(k + (size_t)p * stride, qh, hd);
        float ms = 1.0f, vs = 1.0f;
        if (s > M) {
            const float Mold = M;
            M = s;
            ms = expf(Mold - M);
            for (int d = 0; d < hd; d++)
                acc[d] = native ? f16_of_double((double)acc[d] * (double)f16r(ms)) : f16r(acc[d] * ms);
        } else {
            vs = expf(s - M);
        }
        for (int d = 0; d < hd; d++) {
            const float x = v[(size_t)p * stride + d];
            acc[d] = native ? f16_of_double((double)x * (double)f16r(vs) + (double)acc[d])
                            : f16r(fmaf(x, vs, acc[d]));
        }
        S = fmaf(S, ms, vs);
    }
    const float inv = 1.0f / S;
    for (int d = 0; d < hd; d++) out[d] = acc[d] * inv;
}

static int cpu_has_fp16(void) {
#if defined(__x86_64__) || defined(__i386__)
    return __builtin_cpu_supports("avx512fp16");
#else
    return 0;
#endif
}

static void check_attention(int native) {
    enum { N = 37, HD = 256, NH = 4 };
    float *k = malloc(sizeof(float) * N * HD), *v = malloc(sizeof(float) * N * HD);
    float q[NH * HD], got[NH * HD], want[HD];
    for (int i = 0; i < N * HD; i++) k[i] = 2.0f * frand(), v[i] = 3.0f * frand();
    for (int i = 0; i < NH * HD; i++) q[i] = 4.0f * frand();
    g4_ggml_cpu_round_f16(k, N * HD);
    g4_ggml_cpu_round_f16(v, N * HD);
    struct g4_kv_view view = {NULL, NULL, k, v, 0, N, false, 1, HD};
    int bad = 0;
    for (int pos = 0; pos < N; pos++) {
        g4_ggml_cpu_attention(got, q, &view, pos, NH, 0, NH, 0, 0.0625f);
        for (int h = 0; h < NH; h++) {
            attention_model(want, q + h * HD, k, v, pos + 1, HD, HD, 0.0625f, native);
            bad += memcmp(got + h * HD, want, sizeof want) != 0;
        }
    }
    // a sliding window reads the last `window` positions only
    g4_ggml_cpu_attention(got, q, &view, N - 1, NH, 1, 2, 8, 0.0625f);
    attention_model(want, q + HD, k + (size_t)(N - 8) * HD, v + (size_t)(N - 8) * HD, 8, HD, HD, 0.0625f, native);
    bad += memcmp(got + HD, want, sizeof want) != 0;
    print_message("ggml attention (%s): %d of %d head outputs differ from the model\n",
                  native ? "AVX512-FP16" : "F32C", bad, N * NH + 1);
    assert_int_equal(bad, 0);
    free(k);
    free(v);
}

static void test_attention(void **state) {
    (void)state;
    if (cpu_has_fp16() && g4_matmul_isa() >= G4_ISA_AVX512) check_attention(1);
    else print_message("no AVX512-FP16 here: its form is not checked\n");
    const enum g4_isa isa = g4_matmul_isa();
    g4_matmul_limit_isa(G4_ISA_AVX2);
    check_attention(0);
    g4_matmul_limit_isa(isa);
}

// Random blocks of each type through both levels' ggml-order kernels, against the default ones.
static void test_ggml_order_dots(void **state) {
    (void)state;
    if (g4_matmul_isa() < G4_ISA_AVX512VNNI) {
        print_message("no AVX-512 VNNI here: the levels are not compared\n");
        return;
    }
    const enum g4_dtype types[] = {G4_DTYPE_Q4_0, G4_DTYPE_Q5_0, G4_DTYPE_Q8_0, G4_DTYPE_Q4_K, G4_DTYPE_Q6_K};
    enum { K = 1024, R = 16 };
    float x[K];
    uint8_t *xq = aligned_alloc(64, (size_t)G4_QUANT_ACT_LD(K) * 64);
    for (size_t t = 0; t < sizeof types / sizeof *types; t++) {
        const enum g4_dtype dt = types[t];
        const size_t rb = g4_dtype_row_bytes(dt, K);
        uint8_t *w = malloc(rb * R);
        for (size_t i = 0; i < rb * R; i++) w[i] = (uint8_t)(frand() * 128.0f + 128.0f);
        // sane fp16 scales: every block's d (and dmin) small and positive
        const size_t bb = g4_dtype_row_bytes(dt, dt >= G4_DTYPE_Q4_K ? 256 : 32);
        for (size_t b = 0; b < rb * R / bb; b++) {
            uint8_t *blk = w + b * bb;
            const uint16_t d = g4_f32_to_f16(0.01f + 0.001f * (float)(b % 7));
            if (dt == G4_DTYPE_Q6_K) memcpy(blk + bb - 2, &d, 2);
            else memcpy(blk, &d, 2);
            if (dt == G4_DTYPE_Q4_K) memcpy(blk + 2, &d, 2);
        }
        for (int i = 0; i < K; i++) x[i] = frand();
        g4_quant_act_rows(xq, g4_quant_act_type_for(dt), x, K, 1, K);
        float a[R], b[R], c[R];
        g4_quant_dot_ggml_for(dt, G4_ISA_AVX2)(a, w, rb, R, xq, K);
        g4_quant_dot_ggml_for(dt, G4_ISA_AVX512VNNI)(b, w, rb, R, xq, K);
        g4_quant_dot_for(dt, G4_ISA_AVX512VNNI)(c, w, rb, R, xq, K);
        double worst = 0.0;
        for (int r = 0; r < R; r++) {
            assert_memory_equal(&a[r], &b[r], sizeof(float));
            const double rel = fabs((double)a[r] - c[r]) / (fabs((double)c[r]) + 1e-3);
            if (rel > worst) worst = rel;
        }
        print_message("%s: ggml order equal at AVX2 and VNNI; %.1e relative from the default kernel\n",
                      g4_dtype_name(dt), worst);
        assert_true(worst <= 1e-5);
        free(w);
    }
    free(xq);
}

// The vector geglu (n >= 16 takes it where the CPU has AVX-512) against the scalar one (n = 1).
static void test_geglu_vector(void **state) {
    (void)state;
    enum { N = 65536 + 8192 + 7 };
    float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float)), *g = malloc(N * sizeof(float));
    const float edges[] = {-10.0f, 10.0f, nextafterf(-10.0f, 0.0f), nextafterf(10.0f, 0.0f),
                           nextafterf(-10.0f, -20.0f), nextafterf(10.0f, 20.0f), INFINITY, -INFINITY,
                           NAN, 0.0f, -0.0f, 65504.0f, 70000.0f, -1e-8f, 3e-5f};
    const int ne = (int)(sizeof edges / sizeof *edges);
    for (int i = 0; i < N; i++) {
        if (i < ne) x[i] = edges[i];
        else if (i < ne + 65536) x[i] = g4_f16_to_f32((uint16_t)(i - ne)); // every fp16 value
        else x[i] = 24.0f * frand();                                     // between them, past +-10
        g[i] = frand() * 4.0f;
    }
    memcpy(y, x, N * sizeof(float));
    g4_ggml_cpu_geglu(x, g, N);
    for (int i = 0; i < N; i++) g4_ggml_cpu_geglu(&y[i], &g[i], 1);
    for (int i = 0; i < N; i++) {
        if (isnan(y[i])) assert_true(isnan(x[i]));
        else if (memcmp(&x[i], &y[i], sizeof(float)) != 0)
            fail_msg("geglu lane %d: vector %.9g vs scalar %.9g", i, (double)x[i], (double)y[i]);
    }
    free(x);
    free(y);
    free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attention),
        cmocka_unit_test(test_ggml_order_dots),
        cmocka_unit_test(test_geglu_vector),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
