// fp32 vector primitives; see vec_cpu.h. The ISA is the matmul's (g4_matmul_isa), so one limit
// switches the whole engine to portable C for comparisons.
#include "vec_cpu.h"

#include <math.h>

#include "matmul_cpu.h"

// gelu_tanh(v) = 0.5 v (1 + tanh(u)) = v / (1 + exp(-2u)), u = sqrt(2/pi) (v + 0.044715 v^3).
#define GELU_K 0.7978845608028654f
#define GELU_C 0.044715f

static float dot_portable(const float *a, const float *b, size_t n) {
    float s = 0.0f;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static void axpy_portable(float *y, float s, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += s * x[i];
}

static void pv_portable(float *out, int nh, int hd, const float *p, int64_t ldp, const float *v,
                        int64_t v_stride, int64_t n) {
    for (int h = 0; h < nh; h++)
        for (int64_t j = 0; j < n; j++) {
            const float ph = p[h * ldp + j], *vj = v + j * v_stride;
            float *o = out + (size_t)h * hd;
            for (int d = 0; d < hd; d++) o[d] += ph * vj[d];
        }
}

static void softcap_portable(float *x, size_t n, float cap) {
    for (size_t i = 0; i < n; i++) x[i] = cap * tanhf(x[i] / cap);
}

static void gelu_mul_portable(float *x, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const float v = x[i], u = GELU_K * (v + GELU_C * v * v * v);
        x[i] = v / (1.0f + expf(-2.0f * u)) * y[i];
    }
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))
#define AVX512 __attribute__((target("avx512f,avx512dq,avx2,fma")))

// Cephes expf: exp(x) = 2^n exp(r), r = x - n ln2 in [-ln2/2, ln2/2], degree-6 polynomial;
// relative error ~1e-7 over the clamped range [-87, 88].
#define EXP_BODY(V, SET1, ADD, MUL, FMA, MIN, MAX, ROUND, CVT, SHIFT_ADD)                      \
    x = MIN(SET1(88.0f), MAX(SET1(-87.0f), x)); /* x second: x86 min/max then pass a NaN on */  \
    V n = ROUND(MUL(x, SET1(1.44269504088896341f)));                                            \
    V r = FMA(n, SET1(-0.693359375f), x);                                                       \
    r = FMA(n, SET1(2.12194440e-4f), r);                                                        \
    V p = SET1(1.9875691500e-4f);                                                               \
    p = FMA(p, r, SET1(1.3981999507e-3f));                                                      \
    p = FMA(p, r, SET1(8.3334519073e-3f));                                                      \
    p = FMA(p, r, SET1(4.1665795894e-2f));                                                      \
    p = FMA(p, r, SET1(1.6666665459e-1f));                                                      \
    p = FMA(p, r, SET1(5.0000001201e-1f));                                                      \
    p = ADD(FMA(p, MUL(r, r), r), SET1(1.0f));                                                  \
    return SHIFT_ADD(p, CVT(n));

AVX2 static inline __m256 exp_avx2(__m256 x) {
#define ROUND8(v) _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define SCALE8(p, ni) \
    _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), _mm256_slli_epi32(ni, 23)))
    EXP_BODY(__m256, _mm256_set1_ps, _mm256_add_ps, _mm256_mul_ps, _mm256_fmadd_ps, _mm256_min_ps,
             _mm256_max_ps, ROUND8, _mm256_cvtps_epi32, SCALE8)
#undef ROUND8
#undef SCALE8
}

AVX512 static inline __m512 exp_avx512(__m512 x) {
#define ROUND16(v) _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define SCALE16(p, ni) \
    _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(p), _mm512_slli_epi32(ni, 23)))
    EXP_BODY(__m512, _mm512_set1_ps, _mm512_add_ps, _mm512_mul_ps, _mm512_fmadd_ps, _mm512_min_ps,
             _mm512_max_ps, ROUND16, _mm512_cvtps_epi32, SCALE16)
#undef ROUND16
#undef SCALE16
}

AVX2 static float dot_avx2(const float *a, const float *b, size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    s0 = _mm256_add_ps(s0, s1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    float s = _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

AVX2 static void axpy_avx2(float *y, float s, const float *x, size_t n) {
    const __m256 sv = _mm256_set1_ps(s);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(sv, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += s * x[i];
}

// out (nh, hd) += p (nh, n; row stride ldp) @ v (n, hd; row stride v_stride): per column chunk,
// the accumulators of up to 8 heads stay in registers while the value rows stream past once.
// NB (1..8, a constant after inlining) heads from h0, columns [d, d + vector width).
#define PV_SWITCH(FN, ...)                                                                      \
    switch (nb) {                                                                               \
    case 8: FN(__VA_ARGS__, 8); break;                                                          \
    case 7: FN(__VA_ARGS__, 7); break;                                                          \
    case 6: FN(__VA_ARGS__, 6); break;                                                          \
    case 5: FN(__VA_ARGS__, 5); break;                                                          \
    case 4: FN(__VA_ARGS__, 4); break;                                                          \
    case 3: FN(__VA_ARGS__, 3); break;                                                          \
    case 2: FN(__VA_ARGS__, 2); break;                                                          \
    default: FN(__VA_ARGS__, 1); break;                                                         \
    }

AVX2 static inline __attribute__((always_inline)) void pv_block_avx2(
    float *out, int hd, const float *p, int64_t ldp, const float *v, int64_t v_stride, int64_t n,
    int d, const int nb) {
    __m256 acc[8];
    _Pragma("GCC unroll 8") for (int h = 0; h < nb; h++) acc[h] = _mm256_loadu_ps(out + (size_t)h * hd + d);
    for (int64_t j = 0; j < n; j++) {
        const __m256 vj = _mm256_loadu_ps(v + j * v_stride + d);
        _Pragma("GCC unroll 8") for (int h = 0; h < nb; h++)
            acc[h] = _mm256_fmadd_ps(_mm256_broadcast_ss(p + h * ldp + j), vj, acc[h]);
    }
    _Pragma("GCC unroll 8") for (int h = 0; h < nb; h++) _mm256_storeu_ps(out + (size_t)h * hd + d, acc[h]);
}

AVX2 static void pv_avx2(float *out, int nh, int hd, const float *p, int64_t ldp, const float *v,
                         int64_t v_stride, int64_t n) {
    int d = 0;
    for (; d + 8 <= hd; d += 8)
        for (int h0 = 0; h0 < nh; h0 += 8) {
            const int nb = nh - h0 < 8 ? nh - h0 : 8;
            PV_SWITCH(pv_block_avx2, out + (size_t)h0 * hd, hd, p + h0 * ldp, ldp, v, v_stride, n, d)
        }
    for (int h = 0; h < nh && d < hd; h++) // columns past the last full vector
        for (int64_t j = 0; j < n; j++)
            for (int c = d; c < hd; c++) out[(size_t)h * hd + c] += p[h * ldp + j] * v[j * v_stride + c];
}

AVX512 static inline __attribute__((always_inline)) void pv_block_avx512(
    float *out, int hd, const float *p, int64_t ldp, const float *v, int64_t v_stride, int64_t n,
    int d, const int nb) {
    const __mmask16 m = hd - d >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (hd - d)) - 1);
    __m512 acc[8];
    _Pragma("GCC unroll 8") for (int h = 0; h < nb; h++)
        acc[h] = _mm512_maskz_loadu_ps(m, out + (size_t)h * hd + d);
    for (int64_t j = 0; j < n; j++) {
        const __m512 vj = _mm512_maskz_loadu_ps(m, v + j * v_stride + d);
        _Pragma("GCC unroll 8") for (int h = 0; h < nb; h++)
            acc[h] = _mm512_fmadd_ps(_mm512_set1_ps(p[h * ldp + j]), vj, acc[h]);
    }
    _Pragma("GCC unroll 8") for (int h = 0; h < nb; h++)
        _mm512_mask_storeu_ps(out + (size_t)h * hd + d, m, acc[h]);
}

AVX512 static void pv_avx512(float *out, int nh, int hd, const float *p, int64_t ldp,
                             const float *v, int64_t v_stride, int64_t n) {
    for (int d = 0; d < hd; d += 16)
        for (int h0 = 0; h0 < nh; h0 += 8) {
            const int nb = nh - h0 < 8 ? nh - h0 : 8;
            PV_SWITCH(pv_block_avx512, out + (size_t)h0 * hd, hd, p + h0 * ldp, ldp, v, v_stride, n, d)
        }
}

AVX2 static void gelu_mul_avx2(float *x, const float *y, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        const __m256 u = _mm256_mul_ps(
            _mm256_set1_ps(-2.0f * GELU_K),
            _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(GELU_C), v), _mm256_mul_ps(v, v), v));
        const __m256 g = _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), exp_avx2(u)));
        _mm256_storeu_ps(x + i, _mm256_mul_ps(g, _mm256_loadu_ps(y + i)));
    }
    gelu_mul_portable(x + i, y + i, n - i);
}

AVX512 static float dot_avx512(const float *a, const float *b, size_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    if (i < n) { // up to two masked steps
        const size_t m0 = n - i < 16 ? n - i : 16;
        const __mmask16 k0 = (__mmask16)((1u << m0) - 1);
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k0, a + i), _mm512_maskz_loadu_ps(k0, b + i), s0);
        i += m0;
        if (i < n) {
            const __mmask16 k1 = (__mmask16)((1u << (n - i)) - 1);
            s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k1, a + i), _mm512_maskz_loadu_ps(k1, b + i), s1);
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

AVX512 static void axpy_avx512(float *y, float s, const float *x, size_t n) {
    const __m512 sv = _mm512_set1_ps(s);
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(sv, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    if (i < n) {
        const __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, k, _mm512_fmadd_ps(sv, _mm512_maskz_loadu_ps(k, x + i),
                                                        _mm512_maskz_loadu_ps(k, y + i)));
    }
}

// cap * tanh(x / cap), tanh(a) = sign(a) (1 - 2 / (exp(2|a|) + 1)): absolute error ~1e-7 * cap.
AVX512 static void softcap_avx512(float *x, size_t n, float cap) {
    const __m512 inv2 = _mm512_set1_ps(2.0f / cap), capv = _mm512_set1_ps(cap), one = _mm512_set1_ps(1.0f);
    const __m512 two = _mm512_set1_ps(2.0f);
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 v = _mm512_loadu_ps(x + i);
        const __m512 a = _mm512_abs_ps(v);
        const __m512 t = _mm512_sub_ps(one, _mm512_div_ps(two, _mm512_add_ps(exp_avx512(_mm512_mul_ps(a, inv2)), one)));
        const __m512 s = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), sign));
        _mm512_storeu_ps(x + i, _mm512_mul_ps(capv, _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(t), _mm512_castps_si512(s)))));
    }
    softcap_portable(x + i, n - i, cap);
}

AVX512 static void gelu_mul_avx512(float *x, const float *y, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 v = _mm512_loadu_ps(x + i);
        const __m512 u = _mm512_mul_ps(
            _mm512_set1_ps(-2.0f * GELU_K),
            _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(GELU_C), v), _mm512_mul_ps(v, v), v));
        const __m512 g = _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), exp_avx512(u)));
        _mm512_storeu_ps(x + i, _mm512_mul_ps(g, _mm512_loadu_ps(y + i)));
    }
    gelu_mul_portable(x + i, y + i, n - i);
}
#endif

// The kernel family for the current ISA level: AVX512_BF16 adds nothing here.
enum g4_isa g4_vec_isa(void) {
    const enum g4_isa isa = g4_matmul_isa();
    return isa > G4_ISA_AVX512 ? G4_ISA_AVX512 : isa;
}

float g4_vec_dot(const float *a, const float *b, size_t n) {
#if defined(__x86_64__) || defined(__i386__)
    switch (g4_vec_isa()) {
    case G4_ISA_AVX512: return dot_avx512(a, b, n);
    case G4_ISA_AVX2: return dot_avx2(a, b, n);
    default: break;
    }
#endif
    return dot_portable(a, b, n);
}

void g4_vec_axpy(float *y, float s, const float *x, size_t n) {
#if defined(__x86_64__) || defined(__i386__)
    switch (g4_vec_isa()) {
    case G4_ISA_AVX512: axpy_avx512(y, s, x, n); return;
    case G4_ISA_AVX2: axpy_avx2(y, s, x, n); return;
    default: break;
    }
#endif
    axpy_portable(y, s, x, n);
}

void g4_vec_gelu_mul(float *x, const float *y, size_t n) {
#if defined(__x86_64__) || defined(__i386__)
    switch (g4_vec_isa()) {
    case G4_ISA_AVX512: gelu_mul_avx512(x, y, n); return;
    case G4_ISA_AVX2: gelu_mul_avx2(x, y, n); return;
    default: break;
    }
#endif
    gelu_mul_portable(x, y, n);
}

void g4_vec_pv(float *out, int nh, int hd, const float *p, int64_t ldp, const float *v,
               int64_t v_stride, int64_t n) {
#if defined(__x86_64__) || defined(__i386__)
    switch (g4_vec_isa()) {
    case G4_ISA_AVX512: pv_avx512(out, nh, hd, p, ldp, v, v_stride, n); return;
    case G4_ISA_AVX2: pv_avx2(out, nh, hd, p, ldp, v, v_stride, n); return;
    default: break;
    }
#endif
    pv_portable(out, nh, hd, p, ldp, v, v_stride, n);
}

void g4_vec_softcap(float *x, size_t n, float cap) {
#if defined(__x86_64__) || defined(__i386__)
    if (g4_vec_isa() == G4_ISA_AVX512) {
        softcap_avx512(x, n, cap);
        return;
    }
#endif
    softcap_portable(x, n, cap);
}
