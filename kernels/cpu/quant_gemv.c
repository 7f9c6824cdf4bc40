// Exact-path GEMV on block-quantized rows; see quant_gemv.h. AVX-512 only (other levels take
// the dequantize-into-a-buffer route in matmul_cpu.c). Compiled with -ffp-contract=off: each
// weight is computed exactly as g4_to_f32 computes it (d * q, or d1 * q - m1 rounded before the
// subtraction) and only then meets x in an explicit fused multiply-add.
#include "quant_gemv.h"

#include "qblock.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))

AVX512 static inline float f16(const uint8_t *p) { return _cvtsh_ss(g4_qblock_u16(p)); }

// acc + ((float)(bytes - off) * d) * x[0..16)
AVX512 static inline __m512 fma16(__m512 acc, __m128i bytes, __m512i off, __m512 d, const float *x) {
    const __m512 q = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(bytes), off));
    return _mm512_fmadd_ps(_mm512_mul_ps(q, d), _mm512_loadu_ps(x), acc);
}

AVX512 static float row_q4_0(const uint8_t *b, const float *x, int64_t nb) {
    const __m128i m4 = _mm_set1_epi8(0xF);
    const __m512i off = _mm512_set1_epi32(8);
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++, b += G4_QBLOCK_Q4_0_BYTES, x += 32) {
        const __m512 d = _mm512_set1_ps(f16(b));
        const __m128i r = _mm_loadu_si128((const __m128i *)(b + 2));
        a0 = fma16(a0, _mm_and_si128(r, m4), off, d, x);
        a1 = fma16(a1, _mm_and_si128(_mm_srli_epi16(r, 4), m4), off, d, x + 16);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

AVX512 static float row_q5_0(const uint8_t *b, const float *x, int64_t nb) {
    const __m128i m4 = _mm_set1_epi8(0xF), sixteen8 = _mm_set1_epi8(16);
    const __m512i off = _mm512_set1_epi32(16);
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++, b += G4_QBLOCK_Q5_0_BYTES, x += 32) {
        const __m512 d = _mm512_set1_ps(f16(b));
        const uint32_t qh = g4_qblock_u32(b + 2);
        const __m128i r = _mm_loadu_si128((const __m128i *)(b + 6));
        const __m128i lo = _mm_mask_add_epi8(_mm_and_si128(r, m4), (__mmask16)(qh & 0xFFFF),
                                             _mm_and_si128(r, m4), sixteen8);
        const __m128i hr = _mm_and_si128(_mm_srli_epi16(r, 4), m4);
        const __m128i hi = _mm_mask_add_epi8(hr, (__mmask16)(qh >> 16), hr, sixteen8);
        a0 = fma16(a0, lo, off, d, x);
        a1 = fma16(a1, hi, off, d, x + 16);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

AVX512 static float row_q8_0(const uint8_t *b, const float *x, int64_t nb) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++, b += G4_QBLOCK_Q8_0_BYTES, x += 32) {
        const __m512 d = _mm512_set1_ps(f16(b));
        const __m512 q0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b + 2))));
        const __m512 q1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b + 18))));
        a0 = _mm512_fmadd_ps(_mm512_mul_ps(q0, d), _mm512_loadu_ps(x), a0);
        a1 = _mm512_fmadd_ps(_mm512_mul_ps(q1, d), _mm512_loadu_ps(x + 16), a1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

// acc + (d1 * (float)q - m1) * x[0..16), q given as 16 bytes
AVX512 static inline __m512 fma16_dm(__m512 acc, __m128i q, __m512 d1, __m512 m1, const float *x) {
    const __m512 w = _mm512_sub_ps(_mm512_mul_ps(d1, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(q))), m1);
    return _mm512_fmadd_ps(w, _mm512_loadu_ps(x), acc);
}

AVX512 static inline float row_q45_k(const uint8_t *b, const float *x, int64_t nb, const int five) {
    const size_t bb = five ? G4_QBLOCK_Q5_K_BYTES : G4_QBLOCK_Q4_K_BYTES;
    const __m128i m4 = _mm_set1_epi8(0xF), one = _mm_set1_epi8(1);
    __m512 a[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int64_t i = 0; i < nb; i++, b += bb, x += 256) {
        const float d = f16(b), dmin = f16(b + 2);
        uint8_t sc[8], m[8];
        g4_qblock_k4_scales(b + G4_QBLOCK_K_SCALES, sc, m);
        const uint8_t *qs = b + (five ? G4_QBLOCK_Q5_K_QS : G4_QBLOCK_Q4_K_QS), *qh = b + G4_QBLOCK_Q5_K_QH;
        for (int c = 0; c < 4; c++) {
            const __m512 d1 = _mm512_set1_ps(d * sc[2 * c]), m1 = _mm512_set1_ps(dmin * m[2 * c]);
            const __m512 d2 = _mm512_set1_ps(d * sc[2 * c + 1]), m2 = _mm512_set1_ps(dmin * m[2 * c + 1]);
            for (int h = 0; h < 2; h++) {
                const __m128i r = _mm_loadu_si128((const __m128i *)(qs + 32 * c + 16 * h));
                __m128i lo = _mm_and_si128(r, m4), hi = _mm_and_si128(_mm_srli_epi16(r, 4), m4);
                if (five) {
                    const __m128i hb = _mm_loadu_si128((const __m128i *)(qh + 16 * h));
                    lo = _mm_or_si128(lo, _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(hb, 2 * c), one), 4));
                    hi = _mm_or_si128(hi, _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(hb, 2 * c + 1), one), 4));
                }
                a[h] = fma16_dm(a[h], lo, d1, m1, x + 64 * c + 16 * h);
                a[2 + h] = fma16_dm(a[2 + h], hi, d2, m2, x + 64 * c + 32 + 16 * h);
            }
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a[0], a[1]), _mm512_add_ps(a[2], a[3])));
}

AVX512 static float row_q6_k(const uint8_t *b, const float *x, int64_t nb) {
    const __m128i m4 = _mm_set1_epi8(0xF), m3 = _mm_set1_epi8(3);
    const __m512i off = _mm512_set1_epi32(32);
    __m512 a[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int64_t i = 0; i < nb; i++, b += G4_QBLOCK_Q6_K_BYTES, x += 256) {
        const float d = f16(b + G4_QBLOCK_Q6_K_D);
        const int8_t *sc = (const int8_t *)(b + G4_QBLOCK_Q6_K_SCALES);
        for (int nh = 0; nh < 2; nh++) {
            const uint8_t *ql = b + 64 * nh, *qh = b + G4_QBLOCK_Q6_K_QH + 32 * nh;
            const int8_t *s = sc + 8 * nh;
            const float *xn = x + 128 * nh;
            for (int h = 0; h < 2; h++) {
                const __m128i lo = _mm_loadu_si128((const __m128i *)(ql + 16 * h));
                const __m128i hi = _mm_loadu_si128((const __m128i *)(ql + 32 + 16 * h));
                const __m128i hb = _mm_loadu_si128((const __m128i *)(qh + 16 * h));
                const __m128i q[4] = {
                    _mm_or_si128(_mm_and_si128(lo, m4), _mm_slli_epi16(_mm_and_si128(hb, m3), 4)),
                    _mm_or_si128(_mm_and_si128(hi, m4), _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(hb, 2), m3), 4)),
                    _mm_or_si128(_mm_and_si128(_mm_srli_epi16(lo, 4), m4),
                                 _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(hb, 4), m3), 4)),
                    _mm_or_si128(_mm_and_si128(_mm_srli_epi16(hi, 4), m4),
                                 _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(hb, 6), m3), 4)),
                };
                for (int k = 0; k < 4; k++)
                    a[k] = fma16(a[k], q[k], off, _mm512_set1_ps(d * (float)s[h + 2 * k]), xn + 32 * k + 16 * h);
            }
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a[0], a[1]), _mm512_add_ps(a[2], a[3])));
}

#define ROWS(NAME, CALL)                                                                         \
    AVX512 static void NAME(float *out, const uint8_t *w, size_t row_bytes, int nr, const float *x, \
                            int64_t k) {                                                         \
        for (int r = 0; r < nr; r++, w += row_bytes) out[r] = CALL;                              \
    }
ROWS(gemv_q4_0, row_q4_0(w, x, k / 32))
ROWS(gemv_q5_0, row_q5_0(w, x, k / 32))
ROWS(gemv_q8_0, row_q8_0(w, x, k / 32))
ROWS(gemv_q4_k, row_q45_k(w, x, k / 256, 0))
ROWS(gemv_q5_k, row_q45_k(w, x, k / 256, 1))
ROWS(gemv_q6_k, row_q6_k(w, x, k / 256))
#undef ROWS

static const g4_quant_gemv_fn avx512[] = {gemv_q4_0, gemv_q5_0, gemv_q8_0,
                                          gemv_q4_k, gemv_q5_k, gemv_q6_k};
#endif

g4_quant_gemv_fn g4_quant_gemv_for(enum g4_dtype dt, enum g4_isa isa) {
    if (!G4_DTYPE_IS_QUANT(dt)) return NULL;
#if defined(__x86_64__) || defined(__i386__)
    if (isa >= G4_ISA_AVX512) return avx512[dt - G4_DTYPE_Q4_0];
#endif
    (void)isa;
    return NULL;
}
