// CPU ops on awkward sizes: SIMD matmul against the portable kernel for every dtype (rows and
// columns not multiples of the vector width, 1-5 tokens, threads), sentinels around outputs,
// and the small ops against hand-computed values.
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

#include "cpu.h"
#include "harness.h"
#include "matmul_cpu.h"
#include "ops_cpu.h"
#include "threadpool.h"
#include "vec_cpu.h"

#define SENTINEL 12345.0f
#define GUARD 16

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void) { // uniform in [-1, 1)
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / (1 << 24))) * 2.0f - 1.0f;
}

static uint16_t to_bf16(float f) { uint32_t u; memcpy(&u, &f, 4); return (uint16_t)(u >> 16); }
static uint16_t to_f16(float f) { // values here are small and normal: plain truncation
    uint32_t u; memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000, exp = (u >> 23) & 0xff, mant = (u >> 13) & 0x3ff;
    if (exp < 113) return (uint16_t)sign;
    return (uint16_t)(sign | ((exp - 112) << 10) | mant);
}

// Every SIMD level this CPU has, against portable C: shapes around the 4-row tiles and the
// 8/16-column vectors, token counts around the 2- and 6-token tiles and the 128-token blocks,
// K past the 1024-column slices; sentinels catch writes outside the output.
static void test_matmul_simd_vs_portable(void **state) {
    (void)state;
    static const struct { int rows, cols; } shapes[] = {{1, 1}, {7, 7}, {33, 9}, {5, 255},
                                                        {17, 4097}, {64, 64}, {6, 1040}};
    static const int tokens[] = {1, 2, 3, 4, 5, 6, 7, 13, 130};
    static const enum g4_dtype dtypes[] = {G4_DTYPE_F32, G4_DTYPE_BF16, G4_DTYPE_F16};
    struct g4_pool *pool;
    assert_int_equal(g4_pool_init(&pool, 3), G4_OK);
    const enum g4_isa best = g4_matmul_isa();
    print_message("matmul: this CPU runs %s; testing every level up to it\n", g4_isa_name(best));
    int n_cases = 0;
    // (G4_ISA_AVX512BF16 runs the AVX-512 kernels here; test_matmul_bf16act covers it.)
    for (int isa = G4_ISA_PORTABLE; isa <= (int)best && isa <= G4_ISA_AVX512; isa++)
    for (size_t si = 0; si < G4_COUNT(shapes); si++)
        for (size_t di = 0; di < G4_COUNT(dtypes); di++)
            for (size_t ti = 0; ti < G4_COUNT(tokens); ti++) {
                const int R = shapes[si].rows, C = shapes[si].cols, nt = tokens[ti];
                void *wd = malloc((size_t)R * C * 4);
                float *x = malloc(sizeof(float) * nt * C);
                float *a = malloc(sizeof(float) * (nt * R + 2 * GUARD));
                float *b = malloc(sizeof(float) * (nt * R + 2 * GUARD));
                for (int i = 0; i < R * C; i++) {
                    float v = frand();
                    if (dtypes[di] == G4_DTYPE_F32) ((float *)wd)[i] = v;
                    else ((uint16_t *)wd)[i] = dtypes[di] == G4_DTYPE_BF16 ? to_bf16(v) : to_f16(v);
                }
                for (int i = 0; i < nt * C; i++) x[i] = frand();
                for (int i = 0; i < nt * R + 2 * GUARD; i++) a[i] = b[i] = SENTINEL;
                struct g4_weight w = {wd, dtypes[di], R, C};
                g4_matmul_limit_isa((enum g4_isa)isa);
                g4_matmul_cpu(a + GUARD, x, w, nt, pool);
                g4_matmul_limit_isa(G4_ISA_PORTABLE);
                g4_matmul_cpu(b + GUARD, x, w, nt, NULL);
                g4_matmul_limit_isa(G4_ISA_AVX512BF16);
                char what[112];
                snprintf(what, sizeof what, "matmul %s %s rows=%d cols=%d tokens=%d",
                         g4_isa_name((enum g4_isa)isa), g4_dtype_name(dtypes[di]), R, C, nt);
                // fp32 accumulation in a different order: a few ulps of sqrt(cols)
                assert_true(g4_compare_rel(a + GUARD, b + GUARD, (size_t)nt * R, 1e-5, what) <= 1e-5);
                for (int i = 0; i < GUARD; i++) {
                    assert_true(a[i] == SENTINEL && a[GUARD + nt * R + i] == SENTINEL);
                    assert_true(b[i] == SENTINEL && b[GUARD + nt * R + i] == SENTINEL);
                }
                free(wd), free(x), free(a), free(b);
                n_cases++;
            }
    print_message("matmul: %d cases agree\n", n_cases);
    g4_pool_free(pool);
    // default thread count: physical cores, so between 1 and the online CPUs
    const int nt_default = g4_cpu_default_threads();
    print_message("default threads (physical cores): %d of %ld CPUs\n", nt_default,
                  sysconf(_SC_NPROCESSORS_ONLN));
    assert_true(nt_default >= 1 && nt_default <= sysconf(_SC_NPROCESSORS_ONLN));
}

// Round to nearest even through double, the independent reference for g4_bf16_round.
static float ref_bf16(float f) {
    if (isnan(f) || isinf(f)) return f;
    int e;
    frexp(f, &e);                             // |f| in [2^(e-1), 2^e)
    const double ulp = ldexp(1.0, e - 8);     // 8 significant bits
    double q = f / ulp, r = nearbyint(q);     // default rounding mode: to nearest, ties even
    return (float)(r * ulp);                  // may round up to the next binade or to inf
}

static float bf16_bits_to_f32(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// GEMMA4_PRECISION_BF16 products: VDPBF16PS (where the CPU has it) and the portable emulation
// against a double reference on bf16-rounded activations, the rounding itself on ties, NaN and
// overflow, and a check that rounding really happens (results differ from the fp32 product).
static void test_matmul_bf16act(void **state) {
    (void)state;
    // rounding: ties to even, carries, NaN, Inf, overflow
    static const uint32_t bits[] = {0x3f800000, 0x3f808000, 0x3f818000, 0x3f80ffff, 0x3f807fff,
                                    0xbf808001, 0x7f7fffff, 0x7f7f7fff, 0xff800000, 0x00000001,
                                    0x80000000, 0x7fc00001, 0xffa00000};
    for (size_t i = 0; i < G4_COUNT(bits); i++) {
        float f;
        memcpy(&f, &bits[i], 4);
        const float got = bf16_bits_to_f32(g4_bf16_round(f)), want = ref_bf16(f);
        if (isnan(f)) assert_true(isnan(got));
        else if (fpclassify(f) == FP_SUBNORMAL) assert_true(got == 0.0f); // rounds to +-0 here
        else assert_true(got == want);
    }
    for (int i = 0; i < 100000; i++) {
        const float f = frand() * ldexpf(1.0f, (int)(frand() * 60));
        assert_true(bf16_bits_to_f32(g4_bf16_round(f)) == ref_bf16(f));
    }

    // (one token: the GEMV up to 8192 columns, the 4-row tile beyond)
    static const struct { int rows, cols; } shapes[] = {{1, 1}, {7, 31}, {33, 33}, {5, 255},
                                                        {17, 4097}, {64, 64}, {9, 1536}, {6, 8200}};
    // (16 tokens and more: AMX tiles where the CPU has them, every case also without)
    static const int tokens[] = {1, 2, 3, 5, 6, 7, 13, 16, 17, 40, 130};
    struct g4_pool *pool;
    assert_int_equal(g4_pool_init(&pool, 3), G4_OK);
    const enum g4_isa best = g4_matmul_isa();
    print_message("bf16 activations: this CPU runs %s%s\n", g4_isa_name(best),
                  g4_matmul_has_amx() ? " and AMX-BF16" : "");
    int n_cases = 0;
    double max_vs_fp32 = 0.0;
    for (size_t si = 0; si < G4_COUNT(shapes); si++)
        for (size_t ti = 0; ti < G4_COUNT(tokens); ti++) {
            const int R = shapes[si].rows, C = shapes[si].cols, nt = tokens[ti];
            uint16_t *wd = malloc((size_t)R * C * 2);
            float *x = malloc(sizeof(float) * nt * C);
            float *scratch = malloc(sizeof(float) * nt * G4_BF16ACT_LD(C));
            float *a = malloc(sizeof(float) * (nt * R + 2 * GUARD));
            float *b = malloc(sizeof(float) * (nt * R + 2 * GUARD));
            float *f = malloc(sizeof(float) * nt * R), *ref = malloc(sizeof(float) * nt * R);
            for (int i = 0; i < R * C; i++) wd[i] = to_bf16(frand());
            for (int i = 0; i < nt * C; i++) x[i] = frand();
            for (int i = 0; i < nt * R + 2 * GUARD; i++) a[i] = b[i] = SENTINEL;
            const struct g4_weight w = {wd, G4_DTYPE_BF16, R, C};
            for (int t = 0; t < nt; t++)
                for (int r = 0; r < R; r++) {
                    double acc = 0.0;
                    for (int k = 0; k < C; k++)
                        acc += (double)bf16_bits_to_f32(wd[(size_t)r * C + k]) * ref_bf16(x[t * C + k]);
                    ref[t * R + r] = (float)acc;
                }
            g4_matmul_cpu_bf16act(a + GUARD, x, w, nt, pool, scratch);
            if (g4_matmul_has_amx()) { // the same case on the VDPBF16PS tile
                float *c = malloc(sizeof(float) * nt * R);
                g4_matmul_allow_amx(false);
                g4_matmul_cpu_bf16act(c, x, w, nt, pool, scratch);
                g4_matmul_allow_amx(true);
                char what2[112];
                snprintf(what2, sizeof what2, "bf16act no-AMX rows=%d cols=%d tokens=%d", R, C, nt);
                assert_true(g4_compare_rel(c, ref, (size_t)nt * R, 1e-5, what2) <= 1e-5);
                free(c);
            }
            g4_matmul_limit_isa(G4_ISA_PORTABLE);
            g4_matmul_cpu_bf16act(b + GUARD, x, w, nt, NULL, scratch);
            g4_matmul_limit_isa(G4_ISA_AVX512BF16);
            g4_matmul_cpu(f, x, w, nt, pool);
            { // the exact path with scratch (AMX with three bf16 planes from 16 tokens where the
              // CPU has it) against a double product on the unrounded x
                const size_t sb = G4_AMX_SCRATCH_BYTES(nt, C);
                void *s3 = malloc(sb);
                float *e = malloc(sizeof(float) * nt * R), *ref32 = malloc(sizeof(float) * nt * R);
                for (int t = 0; t < nt; t++)
                    for (int r = 0; r < R; r++) {
                        double acc = 0.0;
                        for (int k = 0; k < C; k++)
                            acc += (double)bf16_bits_to_f32(wd[(size_t)r * C + k]) * x[t * C + k];
                        ref32[t * R + r] = (float)acc;
                    }
                g4_matmul_cpu_scratch(e, x, w, nt, pool, s3, sb);
                char what3[112];
                snprintf(what3, sizeof what3, "fp32 scratch%s rows=%d cols=%d tokens=%d",
                         g4_matmul_has_amx() && nt >= 16 ? " (AMX)" : "", R, C, nt);
                assert_true(g4_compare_rel(e, ref32, (size_t)nt * R, 1e-5, what3) <= 1e-5);
                assert_true(g4_compare_rel(f, ref32, (size_t)nt * R, 1e-5, "fp32 FMA") <= 1e-5);
                free(s3), free(e), free(ref32);
            }
            char what[112];
            snprintf(what, sizeof what, "bf16act %s rows=%d cols=%d tokens=%d", g4_isa_name(best),
                     R, C, nt);
            assert_true(g4_compare_rel(a + GUARD, ref, (size_t)nt * R, 1e-5, what) <= 1e-5);
            snprintf(what, sizeof what, "bf16act portable rows=%d cols=%d tokens=%d", R, C, nt);
            assert_true(g4_compare_rel(b + GUARD, ref, (size_t)nt * R, 1e-5, what) <= 1e-5);
            for (int i = 0; i < GUARD; i++) {
                assert_true(a[i] == SENTINEL && a[GUARD + nt * R + i] == SENTINEL);
                assert_true(b[i] == SENTINEL && b[GUARD + nt * R + i] == SENTINEL);
            }
            double d = 0.0, m = 0.0;
            for (int i = 0; i < nt * R; i++) {
                d = fmax(d, fabs((double)a[GUARD + i] - f[i]));
                m = fmax(m, fabs((double)f[i]));
            }
            if (C >= 64) { // rounding 8 bits of each activation must show (and stay small)
                assert_true(d > 1e-5 * m && d < 2e-2 * m);
                max_vs_fp32 = fmax(max_vs_fp32, d / m);
            }
            free(wd), free(x), free(scratch), free(a), free(b), free(f), free(ref);
            n_cases++;
        }
    // NaN in the activations stays NaN; other dtypes are not rounded
    {
        uint16_t wd[4 * 40];
        float x[2 * 40], out[8], scratch[2 * G4_BF16ACT_LD(40)];
        for (int i = 0; i < 160; i++) wd[i] = to_bf16(frand());
        for (int i = 0; i < 80; i++) x[i] = frand();
        x[45] = NAN;
        g4_matmul_cpu_bf16act(out, x, (struct g4_weight){wd, G4_DTYPE_BF16, 4, 40}, 2, pool, scratch);
        for (int r = 0; r < 4; r++) assert_true(!isnan(out[r]) && isnan(out[4 + r]));
        float wf[4 * 40], o1[8], o2[8];
        for (int i = 0; i < 160; i++) wf[i] = frand();
        x[45] = 0.3f;
        g4_matmul_cpu_bf16act(o1, x, (struct g4_weight){wf, G4_DTYPE_F32, 4, 40}, 2, pool, scratch);
        g4_matmul_cpu(o2, x, (struct g4_weight){wf, G4_DTYPE_F32, 4, 40}, 2, pool);
        assert_memory_equal(o1, o2, sizeof o1);
    }
    print_message("bf16 activations: %d cases agree with the double reference; max difference "
                  "from the fp32 product %.2e of max |out|\n", n_cases, max_vs_fp32);
    g4_pool_free(pool);
}

// The vector primitives at every ISA level against plain loops: lengths around 8/16/32, gelu
// over [-12, 12] (both tails of the exp-based tanh) against tanhf.
static void test_vec_ops(void **state) {
    (void)state;
    enum { N = 300 };
    float a[N], b[N], y[N], g[N], ref[N];
    for (int i = 0; i < N; i++) a[i] = frand(), b[i] = frand(), y[i] = frand();
    for (int isa = G4_ISA_PORTABLE; isa <= (int)g4_matmul_isa(); isa++) {
        g4_matmul_limit_isa((enum g4_isa)isa);
        // every level runs its own SIMD family (AVX512_BF16 the AVX-512 one), never portable
        assert_int_equal(g4_vec_isa(), isa < G4_ISA_AVX512 ? isa : G4_ISA_AVX512);
        static const int lens[] = {0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 47, 256, 300};
        for (size_t li = 0; li < G4_COUNT(lens); li++) {
            const int n = lens[li];
            double dref = 0.0;
            for (int i = 0; i < n; i++) dref += (double)a[i] * b[i];
            assert_float_equal(g4_vec_dot(a, b, (size_t)n), dref, 1e-5 * (1 + sqrt(n)));
            float yy[N + 1];
            for (int i = 0; i <= N; i++) yy[i] = i < N ? y[i] : SENTINEL;
            g4_vec_axpy(yy, 0.5f, a, (size_t)n);
            for (int i = 0; i < n; i++) assert_float_equal(yy[i], y[i] + 0.5f * a[i], 1e-6);
            for (int i = n; i < N; i++) assert_true(yy[i] == y[i]);
            assert_true(yy[N] == SENTINEL);
        }
        // pv: heads 1..9 (register blocks of 8), head dims around 8/16, 0..5 keys, v stride > hd
        static const int pv_hd[] = {4, 16, 20, 33};
        for (size_t di = 0; di < G4_COUNT(pv_hd); di++)
            for (int nh = 1; nh <= 9; nh++)
                for (int nk = 0; nk <= 5; nk++) {
                    const int hd = pv_hd[di], vs = hd + 3, ldp = 7;
                    float o[9 * 33 + 1], o_ref[9 * 33];
                    for (int i = 0; i < nh * hd; i++) o[i] = o_ref[i] = frand();
                    o[nh * hd] = SENTINEL;
                    for (int h = 0; h < nh; h++)
                        for (int j = 0; j < nk; j++)
                            for (int d = 0; d < hd; d++) o_ref[h * hd + d] += a[h * ldp + j] * b[j * vs + d];
                    g4_vec_pv(o, nh, hd, a, ldp, b, vs, nk);
                    for (int i = 0; i < nh * hd; i++) assert_float_equal(o[i], o_ref[i], 1e-5);
                    assert_true(o[nh * hd] == SENTINEL);
                }
        // softcap over [-400, 400] against tanhf
        for (int i = 0; i < N; i++) g[i] = ref[i] = -400.0f + 800.0f * (float)i / (N - 1) + 0.01f;
        g4_vec_softcap(g, N, 30.0f);
        g4_softcap_cpu(ref, N, 30.0f);
        for (int i = 0; i < N; i++) assert_true(fabsf(g[i] - ref[i]) <= 30.0f * 1e-6f);
        // NaN and Inf go through as tanh would take them (a NaN must never turn into a number)
        float odd[20] = {0};
        odd[3] = NAN, odd[17] = INFINITY, odd[18] = -INFINITY;
        g4_vec_softcap(odd, 20, 30.0f);
        assert_true(isnan(odd[3]) && odd[17] == 30.0f && odd[18] == -30.0f);
        float gn[20] = {0}, ones[20];
        for (int i = 0; i < 20; i++) ones[i] = 1.0f;
        gn[5] = NAN;
        g4_vec_gelu_mul(gn, ones, 20);
        assert_true(isnan(gn[5]) && gn[4] == 0.0f);
        for (int i = 0; i < N; i++) g[i] = ref[i] = -12.0f + 24.0f * (float)i / (N - 1);
        g4_vec_gelu_mul(g, y, N);
        g4_gelu_tanh_cpu(ref, N);
        for (int i = 0; i < N; i++) {
            const float r = ref[i] * y[i];
            assert_true(fabsf(g[i] - r) <= 2e-6f * fabsf(r) + 1e-7f);
        }
    }
    g4_matmul_limit_isa(G4_ISA_AVX512BF16);
}

static void test_small_ops(void **state) {
    (void)state;
    // rmsnorm: x = (3, 4): mean square 12.5
    float x[2] = {3, 4}, w[2] = {2, 0.5f}, o[2];
    g4_rmsnorm_cpu(o, x, w, 1, 2, 0.0f);
    assert_float_equal(o[0], 3 / sqrtf(12.5f) * 2, 1e-6);
    assert_float_equal(o[1], 4 / sqrtf(12.5f) * 0.5f, 1e-6);
    g4_rmsnorm_cpu(o, x, NULL, 1, 2, 0.0f);
    assert_float_equal(o[1], 4 / sqrtf(12.5f), 1e-6);
    // gelu_tanh reference values (torch.nn.functional.gelu(approximate="tanh"))
    float g[3] = {-1.0f, 0.0f, 2.0f};
    g4_gelu_tanh_cpu(g, 3);
    assert_float_equal(g[0], -0.15880801f, 1e-6);
    assert_float_equal(g[1], 0.0f, 1e-7);
    assert_float_equal(g[2], 1.9545977f, 1e-6);
    // RoPE: pairs at and beyond n_rope_pairs are identity; pair 0 rotates by pos radians
    float q[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    g4_rope_cpu(q, 1, 8, 1, 10000.0f, 3);
    assert_float_equal(q[0], 1 * cosf(3) - 5 * sinf(3), 1e-6);
    assert_float_equal(q[4], 5 * cosf(3) + 1 * sinf(3), 1e-6);
    assert_float_equal(q[1], 2, 0);
    assert_float_equal(q[7], 8, 0);
    // softcap
    float l[2] = {0.0f, 300.0f};
    g4_softcap_cpu(l, 2, 30.0f);
    assert_float_equal(l[0], 0.0f, 0);
    assert_float_equal(l[1], 30.0f * tanhf(10.0f), 1e-5);
}

// Attention with a window: only keys pos-W+1..pos contribute. Keys are one-hot so the output
// is the average of the visible values when all scores are equal.
static void test_attention_window(void **state) {
    (void)state;
    enum { HD = 2, N = 10, W = 4 };
    float k[N * HD], v[N * HD], q[HD] = {0, 0}, out[HD], scores[N];
    for (int p = 0; p < N; p++) {
        k[p * HD] = k[p * HD + 1] = 1.0f;
        v[p * HD] = (float)p;
        v[p * HD + 1] = 1.0f;
    }
    struct g4_kv_view view = {k, v, k + (N - 1) * HD, v + (N - 1) * HD, N - 1, N, false, 1, HD};
    g4_attention_cpu(out, q, &view, N - 1, 1, 0, 1, W, scores);
    assert_float_equal(out[0], (6 + 7 + 8 + 9) / 4.0f, 1e-5); // positions W-1 back to pos
    g4_attention_cpu(out, q, &view, N - 1, 1, 0, 1, 0, scores);
    assert_float_equal(out[0], 4.5f, 1e-5); // full causal: 0..9
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul_simd_vs_portable),
        cmocka_unit_test(test_matmul_bf16act),
        cmocka_unit_test(test_small_ops),
        cmocka_unit_test(test_vec_ops),
        cmocka_unit_test(test_attention_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
