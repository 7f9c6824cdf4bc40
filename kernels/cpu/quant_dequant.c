// Vectorised row dequantization; see quant_dequant.h. AVX-512 kernels (16 values per vector) and
// AVX2 ones (8); the portable level is g4_to_f32 itself.
#include "quant_dequant.h"

#include <string.h>

#include "qblock.h"

#define PORTABLE_DEQ(NAME, DT)                                                                   \
    static void NAME(float *dst, const uint8_t *src, int64_t n) { g4_to_f32(dst, src, DT, (size_t)n); }
PORTABLE_DEQ(deq_q4_0, G4_DTYPE_Q4_0)
PORTABLE_DEQ(deq_q5_0, G4_DTYPE_Q5_0)
PORTABLE_DEQ(deq_q8_0, G4_DTYPE_Q8_0)
PORTABLE_DEQ(deq_q4_k, G4_DTYPE_Q4_K)
PORTABLE_DEQ(deq_q5_k, G4_DTYPE_Q5_K)
PORTABLE_DEQ(deq_q6_k, G4_DTYPE_Q6_K)
static const g4_quant_dequant_fn portable[] = {deq_q4_0, deq_q5_0, deq_q8_0,
                                               deq_q4_k, deq_q5_k, deq_q6_k};

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))

AVX512 static inline float f16(const uint8_t *p) { return _cvtsh_ss(g4_qblock_u16(p)); }

// 16 bytes (unsigned) minus off, as floats times d.
AVX512 static inline void put16(float *dst, __m128i bytes, int off, float d) {
    const __m512i v = _mm512_sub_epi32(_mm512_cvtepu8_epi32(bytes), _mm512_set1_epi32(off));
    _mm512_storeu_ps(dst, _mm512_mul_ps(_mm512_cvtepi32_ps(v), _mm512_set1_ps(d)));
}

AVX512 static void avx512_q4_0(float *dst, const uint8_t *b, int64_t n) {
    const __m128i m4 = _mm_set1_epi8(0xF);
    for (int64_t i = 0; i < n; i += 32, b += G4_QBLOCK_Q4_0_BYTES, dst += 32) {
        const float d = f16(b);
        const __m128i r = _mm_loadu_si128((const __m128i *)(b + 2));
        put16(dst, _mm_and_si128(r, m4), 8, d);
        put16(dst + 16, _mm_and_si128(_mm_srli_epi16(r, 4), m4), 8, d);
    }
}

AVX512 static void avx512_q5_0(float *dst, const uint8_t *b, int64_t n) {
    const __m128i m4 = _mm_set1_epi8(0xF);
    for (int64_t i = 0; i < n; i += 32, b += G4_QBLOCK_Q5_0_BYTES, dst += 32) {
        const float d = f16(b);
        const uint32_t qh = g4_qblock_u32(b + 2);
        const __m128i r = _mm_loadu_si128((const __m128i *)(b + 6));
        const __m512i sixteen = _mm512_set1_epi32(16), dv = _mm512_castps_si512(_mm512_set1_ps(d));
        __m512i lo = _mm512_cvtepu8_epi32(_mm_and_si128(r, m4));
        __m512i hi = _mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(r, 4), m4));
        lo = _mm512_mask_add_epi32(lo, (__mmask16)(qh & 0xFFFF), lo, sixteen);
        hi = _mm512_mask_add_epi32(hi, (__mmask16)(qh >> 16), hi, sixteen);
        _mm512_storeu_ps(dst, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(lo, sixteen)),
                                            _mm512_castsi512_ps(dv)));
        _mm512_storeu_ps(dst + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(hi, sixteen)),
                                                 _mm512_castsi512_ps(dv)));
    }
}

AVX512 static void avx512_q8_0(float *dst, const uint8_t *b, int64_t n) {
    for (int64_t i = 0; i < n; i += 32, b += G4_QBLOCK_Q8_0_BYTES, dst += 32) {
        const __m512 d = _mm512_set1_ps(f16(b));
        const __m512i a = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b + 2)));
        const __m512i c = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b + 18)));
        _mm512_storeu_ps(dst, _mm512_mul_ps(_mm512_cvtepi32_ps(a), d));
        _mm512_storeu_ps(dst + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(c), d));
    }
}

// 16 quants (0..31) as d1 * q - m1, product rounded before the subtraction (as ggml).
AVX512 static inline void put16_dm(float *dst, __m512i q, float d1, float m1) {
    const __m512 p = _mm512_mul_ps(_mm512_cvtepi32_ps(q), _mm512_set1_ps(d1));
    _mm512_storeu_ps(dst, _mm512_sub_ps(p, _mm512_set1_ps(m1)));
}

AVX512 static inline void avx512_q45_k(float *dst, const uint8_t *b, int64_t n, const int five) {
    const size_t bb = five ? G4_QBLOCK_Q5_K_BYTES : G4_QBLOCK_Q4_K_BYTES;
    const __m128i m4 = _mm_set1_epi8(0xF), m1 = _mm_set1_epi8(1);
    for (int64_t i = 0; i < n; i += 256, b += bb, dst += 256) {
        const float d = f16(b), dmin = f16(b + 2);
        uint8_t sc[8], m[8];
        g4_qblock_k4_scales(b + G4_QBLOCK_K_SCALES, sc, m);
        const uint8_t *qs = b + (five ? G4_QBLOCK_Q5_K_QS : G4_QBLOCK_Q4_K_QS), *qh = b + G4_QBLOCK_Q5_K_QH;
        for (int c = 0; c < 4; c++) {
            const float d1 = d * sc[2 * c], m1v = dmin * m[2 * c];
            const float d2 = d * sc[2 * c + 1], m2v = dmin * m[2 * c + 1];
            for (int h = 0; h < 2; h++) { // elements l in [16h, 16h + 16) of each 32
                const __m128i r = _mm_loadu_si128((const __m128i *)(qs + 32 * c + 16 * h));
                __m128i lo = _mm_and_si128(r, m4), hi = _mm_and_si128(_mm_srli_epi16(r, 4), m4);
                if (five) {
                    const __m128i hb = _mm_loadu_si128((const __m128i *)(qh + 16 * h));
                    const __m128i b0 = _mm_and_si128(_mm_srli_epi16(hb, 2 * c), m1);
                    const __m128i b1 = _mm_and_si128(_mm_srli_epi16(hb, 2 * c + 1), m1);
                    lo = _mm_or_si128(lo, _mm_slli_epi16(b0, 4));
                    hi = _mm_or_si128(hi, _mm_slli_epi16(b1, 4));
                }
                put16_dm(dst + 64 * c + 16 * h, _mm512_cvtepu8_epi32(lo), d1, m1v);
                put16_dm(dst + 64 * c + 32 + 16 * h, _mm512_cvtepu8_epi32(hi), d2, m2v);
            }
        }
    }
}
AVX512 static void avx512_q4_k(float *dst, const uint8_t *b, int64_t n) { avx512_q45_k(dst, b, n, 0); }
AVX512 static void avx512_q5_k(float *dst, const uint8_t *b, int64_t n) { avx512_q45_k(dst, b, n, 1); }

AVX512 static void avx512_q6_k(float *dst, const uint8_t *b, int64_t n) {
    const __m128i m4 = _mm_set1_epi8(0xF), m3 = _mm_set1_epi8(3);
    for (int64_t i = 0; i < n; i += 256, b += G4_QBLOCK_Q6_K_BYTES, dst += 256) {
        const float d = f16(b + G4_QBLOCK_Q6_K_D);
        const int8_t *sc = (const int8_t *)(b + G4_QBLOCK_Q6_K_SCALES);
        for (int nh = 0; nh < 2; nh++) {
            const uint8_t *ql = b + 64 * nh, *qh = b + G4_QBLOCK_Q6_K_QH + 32 * nh;
            const int8_t *s = sc + 8 * nh;
            float *y = dst + 128 * nh;
            for (int h = 0; h < 2; h++) { // l in [16h, 16h + 16): scales s[h], s[h + 2], ...
                const __m128i a = _mm_loadu_si128((const __m128i *)(ql + 16 * h));
                const __m128i c = _mm_loadu_si128((const __m128i *)(ql + 32 + 16 * h));
                const __m128i hb = _mm_loadu_si128((const __m128i *)(qh + 16 * h));
                const __m128i q[4] = {
                    _mm_or_si128(_mm_and_si128(a, m4), _mm_slli_epi16(_mm_and_si128(hb, m3), 4)),
                    _mm_or_si128(_mm_and_si128(c, m4), _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(hb, 2), m3), 4)),
                    _mm_or_si128(_mm_and_si128(_mm_srli_epi16(a, 4), m4),
                                 _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(hb, 4), m3), 4)),
                    _mm_or_si128(_mm_and_si128(_mm_srli_epi16(c, 4), m4),
                                 _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(hb, 6), m3), 4)),
                };
                for (int k = 0; k < 4; k++) {
                    const float dk = d * (float)s[h + 2 * k];
                    const __m512i v = _mm512_sub_epi32(_mm512_cvtepu8_epi32(q[k]), _mm512_set1_epi32(32));
                    _mm512_storeu_ps(y + 32 * k + 16 * h, _mm512_mul_ps(_mm512_set1_ps(dk), _mm512_cvtepi32_ps(v)));
                }
            }
        }
    }
}

static const g4_quant_dequant_fn avx512[] = {avx512_q4_0, avx512_q5_0, avx512_q8_0,
                                             avx512_q4_k, avx512_q5_k, avx512_q6_k};

// --- AVX2: the same operations on 8 values per vector.

#define AVX2 __attribute__((target("avx2,fma,f16c")))

AVX2 static inline float f16_2(const uint8_t *p) { return _cvtsh_ss(g4_qblock_u16(p)); }

// The 16 bytes' values minus off, times d, then (K-quants, sub) minus m, into dst[0..16).
AVX2 static inline void put16_avx2(float *dst, __m128i bytes, int off, float d, float m, const int sub) {
    const __m256i o = _mm256_set1_epi32(off);
    const __m256 dv = _mm256_set1_ps(d), mv = _mm256_set1_ps(m);
    const __m256i lo = _mm256_sub_epi32(_mm256_cvtepu8_epi32(bytes), o);
    const __m256i hi = _mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(bytes, 8)), o);
    __m256 a = _mm256_mul_ps(_mm256_cvtepi32_ps(lo), dv), b = _mm256_mul_ps(_mm256_cvtepi32_ps(hi), dv);
    if (sub) a = _mm256_sub_ps(a, mv), b = _mm256_sub_ps(b, mv);
    _mm256_storeu_ps(dst, a);
    _mm256_storeu_ps(dst + 8, b);
}

// 16 bits to 16 bytes of 16 or 0.
AVX2 static inline __m128i bits16(uint32_t bits) {
    const __m128i shuf = _mm_set_epi64x(0x0101010101010101, 0x0000000000000000);
    __m128i v = _mm_shuffle_epi8(_mm_set1_epi32((int)bits), shuf);
    v = _mm_and_si128(v, _mm_set1_epi64x((long long)0x8040201008040201ull));
    return _mm_and_si128(_mm_cmpeq_epi8(v, _mm_set1_epi64x((long long)0x8040201008040201ull)), _mm_set1_epi8(16));
}

AVX2 static void avx2_q4_0(float *dst, const uint8_t *b, int64_t n) {
    const __m128i m4 = _mm_set1_epi8(0xF);
    for (int64_t i = 0; i < n; i += 32, b += G4_QBLOCK_Q4_0_BYTES, dst += 32) {
        const float d = f16_2(b);
        const __m128i r = _mm_loadu_si128((const __m128i *)(b + 2));
        put16_avx2(dst, _mm_and_si128(r, m4), 8, d, 0.0f, 0);
        put16_avx2(dst + 16, _mm_and_si128(_mm_srli_epi16(r, 4), m4), 8, d, 0.0f, 0);
    }
}

AVX2 static void avx2_q5_0(float *dst, const uint8_t *b, int64_t n) {
    const __m128i m4 = _mm_set1_epi8(0xF);
    for (int64_t i = 0; i < n; i += 32, b += G4_QBLOCK_Q5_0_BYTES, dst += 32) {
        const float d = f16_2(b);
        const uint32_t qh = g4_qblock_u32(b + 2);
        const __m128i r = _mm_loadu_si128((const __m128i *)(b + 6));
        put16_avx2(dst, _mm_or_si128(_mm_and_si128(r, m4), bits16(qh & 0xFFFF)), 16, d, 0.0f, 0);
        put16_avx2(dst + 16, _mm_or_si128(_mm_and_si128(_mm_srli_epi16(r, 4), m4), bits16(qh >> 16)), 16, d, 0.0f, 0);
    }
}

AVX2 static void avx2_q8_0(float *dst, const uint8_t *b, int64_t n) {
    for (int64_t i = 0; i < n; i += 32, b += G4_QBLOCK_Q8_0_BYTES, dst += 32) {
        const __m256 d = _mm256_set1_ps(f16_2(b));
        for (int j = 0; j < 4; j++) {
            const __m256i v = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(b + 2 + 8 * j)));
            _mm256_storeu_ps(dst + 8 * j, _mm256_mul_ps(_mm256_cvtepi32_ps(v), d));
        }
    }
}

AVX2 static inline void avx2_q45_k(float *dst, const uint8_t *b, int64_t n, const int five) {
    const size_t bb = five ? G4_QBLOCK_Q5_K_BYTES : G4_QBLOCK_Q4_K_BYTES;
    const __m128i m4 = _mm_set1_epi8(0xF), m1 = _mm_set1_epi8(1);
    for (int64_t i = 0; i < n; i += 256, b += bb, dst += 256) {
        const float d = f16_2(b), dmin = f16_2(b + 2);
        uint8_t sc[8], m[8];
        g4_qblock_k4_scales(b + G4_QBLOCK_K_SCALES, sc, m);
        const uint8_t *qs = b + (five ? G4_QBLOCK_Q5_K_QS : G4_QBLOCK_Q4_K_QS), *qh = b + G4_QBLOCK_Q5_K_QH;
        for (int c = 0; c < 4; c++) {
            const float d1 = d * sc[2 * c], m1v = dmin * m[2 * c];
            const float d2 = d * sc[2 * c + 1], m2v = dmin * m[2 * c + 1];
            for (int h = 0; h < 2; h++) {
                const __m128i r = _mm_loadu_si128((const __m128i *)(qs + 32 * c + 16 * h));
                __m128i lo = _mm_and_si128(r, m4), hi = _mm_and_si128(_mm_srli_epi16(r, 4), m4);
                if (five) {
                    const __m128i hb = _mm_loadu_si128((const __m128i *)(qh + 16 * h));
                    lo = _mm_or_si128(lo, _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(hb, 2 * c), m1), 4));
                    hi = _mm_or_si128(hi, _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(hb, 2 * c + 1), m1), 4));
                }
                put16_avx2(dst + 64 * c + 16 * h, lo, 0, d1, m1v, 1);
                put16_avx2(dst + 64 * c + 32 + 16 * h, hi, 0, d2, m2v, 1);
            }
        }
    }
}
AVX2 static void avx2_q4_k(float *dst, const uint8_t *b, int64_t n) { avx2_q45_k(dst, b, n, 0); }
AVX2 static void avx2_q5_k(float *dst, const uint8_t *b, int64_t n) { avx2_q45_k(dst, b, n, 1); }

AVX2 static void avx2_q6_k(float *dst, const uint8_t *b, int64_t n) {
    const __m128i m4 = _mm_set1_epi8(0xF), m3 = _mm_set1_epi8(3);
    for (int64_t i = 0; i < n; i += 256, b += G4_QBLOCK_Q6_K_BYTES, dst += 256) {
        const float d = f16_2(b + G4_QBLOCK_Q6_K_D);
        const int8_t *sc = (const int8_t *)(b + G4_QBLOCK_Q6_K_SCALES);
        for (int nh = 0; nh < 2; nh++) {
            const uint8_t *ql = b + 64 * nh, *qh = b + G4_QBLOCK_Q6_K_QH + 32 * nh;
            const int8_t *s = sc + 8 * nh;
            float *y = dst + 128 * nh;
            for (int h = 0; h < 2; h++) {
                const __m128i a = _mm_loadu_si128((const __m128i *)(ql + 16 * h));
                const __m128i c = _mm_loadu_si128((const __m128i *)(ql + 32 + 16 * h));
                const __m128i hb = _mm_loadu_si128((const __m128i *)(qh + 16 * h));
                const __m128i q[4] = {
                    _mm_or_si128(_mm_and_si128(a, m4), _mm_slli_epi16(_mm_and_si128(hb, m3), 4)),
                    _mm_or_si128(_mm_and_si128(c, m4), _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(hb, 2), m3), 4)),
                    _mm_or_si128(_mm_and_si128(_mm_srli_epi16(a, 4), m4),
                                 _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(hb, 4), m3), 4)),
                    _mm_or_si128(_mm_and_si128(_mm_srli_epi16(c, 4), m4),
                                 _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(hb, 6), m3), 4)),
                };
                for (int k = 0; k < 4; k++) put16_avx2(y + 32 * k + 16 * h, q[k], 32, d * (float)s[h + 2 * k], 0.0f, 0);
            }
        }
    }
}

static const g4_quant_dequant_fn avx2[] = {avx2_q4_0, avx2_q5_0, avx2_q8_0,
                                           avx2_q4_k, avx2_q5_k, avx2_q6_k};
#endif

g4_quant_dequant_fn g4_quant_dequant_for(enum g4_dtype dt, enum g4_isa isa) {
    if (!G4_DTYPE_IS_QUANT(dt)) return NULL;
    const int i = dt - G4_DTYPE_Q4_0;
#if defined(__x86_64__) || defined(__i386__)
    if (isa >= G4_ISA_AVX512) return avx512[i];
    if (isa >= G4_ISA_AVX2) return avx2[i];
#endif
    (void)isa;
    return portable[i];
}
