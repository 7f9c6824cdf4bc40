// 8-row decode kernels for the 32-element block types; see quant_rows8.h.
//
// Q4_0, Q5_0 and Q8_0 in ggml_vec_dot_q*_0_q8_0's order (quant_dot_x86.inc, QD_GROW32): per row
// an 8-lane fp32 accumulator, lane l taking per block the exact integer sum of the block's
// quants 4l..4l+3 times the activation's, times d_w * d_y, fused, in block order; then ggml's
// hsum_float_8. Here two rows share a 512-bit vector (one per 256-bit half, the activation's
// block broadcast to both), so every lane holds the same integers as the one-row kernel's and the
// final sums run per row in hsum's order: the results are equal bit for bit.
//
// The integer sums come from one VPDPBUSD per block and row pair on unsigned quants u = q + B
// (Q8_0: q xor 0x80, B = 128; Q4_0: the nibble, B = 8; Q5_0: nibble + 16 x fifth bit, B = 16),
// the accumulator started at -B x (the activation's 4-element sums), which the eight rows share:
// sum u y - B sum y = sum q y exactly in int32. The eight rows' scales come in one gather per
// block. Like quant_rows8_k.c they prefetch the next eight rows (the caller's next call), one
// cache line per row every 64 bytes of blocks.
#include "quant_rows8.h"

#include <stddef.h>
#include <string.h>

#include "qblock.h"
#include "quant_act.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define R8 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

R8 static inline float hsum8(__m256 v) { // quant_dot_x86.inc's hsum (ggml's hsum_float_8)
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Rows a and b's 32 unsigned quants u = q + B of their blocks, row a in the low 256 bits.
R8 static inline __m512i u_q8_0(const uint8_t *a, const uint8_t *b) {
    const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(a + 2))),
                                         _mm256_loadu_si256((const __m256i *)(b + 2)), 1);
    return _mm512_xor_si512(q, _mm512_set1_epi8((char)0x80));
}

// 16 bytes of nibbles per row -> per 256-bit half: low nibbles (elements 0-15), high (16-31).
R8 static inline __m512i nibbles2(const uint8_t *a, const uint8_t *b) {
    const __m512i t = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)a))),
        _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)b)), 1);
    return _mm512_and_si512(_mm512_mask_blend_epi64(0xCC, t, _mm512_srli_epi16(t, 4)), _mm512_set1_epi8(0xF));
}

R8 static inline __m512i u_q4_0(const uint8_t *a, const uint8_t *b) { return nibbles2(a + 2, b + 2); }

R8 static inline __m512i u_q5_0(const uint8_t *a, const uint8_t *b) {
    // bit j of qh: element j's fifth bit, element j at byte j of its half
    const __mmask64 hi = _cvtu64_mask64((uint64_t)g4_qblock_u32(a + 2) | (uint64_t)g4_qblock_u32(b + 2) << 32);
    const __m512i u = nibbles2(a + 6, b + 6);
    return _mm512_mask_add_epi8(u, hi, u, _mm512_set1_epi8(16));
}

#define ROWS8_32(TYPE, BYTES, BIAS)                                                                     \
    R8 static void TYPE##_rows8(float *out, const uint8_t *w, size_t row_bytes, int nr, const uint8_t *xq,  \
                                int64_t k) {                                                            \
        if (nr != 8) {                                                                                  \
            g4_quant_dot_ggml_for(G4_DTYPE_##BYTES, G4_ISA_AVX512VNNI)(out, w, row_bytes, nr, xq, k);   \
            return;                                                                                     \
        }                                                                                               \
        const int8_t *y = g4_quant_act_qs(xq);                                                          \
        const float *yd = g4_quant_act_d(xq, k);                                                        \
        const size_t bb = G4_QBLOCK_##BYTES##_BYTES;                                                    \
        const __m256i roff = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),              \
                                                _mm256_set1_epi32((int)row_bytes));                     \
        __m512i ipair[4];                                                                               \
        for (int i = 0; i < 4; i++)                                                                     \
            ipair[i] = _mm512_mask_blend_epi32(0xFF00, _mm512_set1_epi32(2 * i), _mm512_set1_epi32(2 * i + 1)); \
        __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()}; \
        const int64_t nb = k / 32;                                                                      \
        int64_t pf = 0; /* bytes of the next rows prefetched */                                         \
        for (int64_t b = 0; b < nb; b++, y += 32) {                                                     \
            const uint8_t *blk = w + (size_t)b * bb;                                                    \
            if ((int64_t)((size_t)b * bb) >= pf) {                                                      \
                for (int r = 0; r < 8; r++)                                                             \
                    _mm_prefetch((const char *)blk + (size_t)(8 + r) * row_bytes, _MM_HINT_T0);         \
                pf += 64;                                                                               \
            }                                                                                           \
            /* d of the eight rows' block b: the fp16 in the low half of bytes 0-3 */                   \
            const __m256i dd = _mm256_i32gather_epi32((const int *)(const void *)blk, roff, 1);         \
            const __m512 d8 = _mm512_zextps256_ps512(                                                   \
                _mm256_mul_ps(_mm256_set1_ps(yd[b]), _mm256_cvtph_ps(_mm256_cvtepi32_epi16(dd))));      \
            const __m512i yv = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)y));          \
            const __m512i bias = _mm512_sub_epi32(                                                      \
                _mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(BIAS), yv)); \
            for (int i = 0; i < 4; i++) {                                                               \
                const uint8_t *pa = blk + (size_t)(2 * i) * row_bytes;                                  \
                const __m512i p = _mm512_dpbusd_epi32(bias, u_##TYPE(pa, pa + row_bytes), yv);          \
                acc[i] = _mm512_fmadd_ps(_mm512_permutexvar_ps(ipair[i], d8), _mm512_cvtepi32_ps(p), acc[i]); \
            }                                                                                           \
        }                                                                                               \
        for (int i = 0; i < 4; i++) {                                                                   \
            out[2 * i] = hsum8(_mm512_castps512_ps256(acc[i]));                                         \
            out[2 * i + 1] = hsum8(_mm512_extractf32x8_ps(acc[i], 1));                                  \
        }                                                                                               \
    }
ROWS8_32(q4_0, Q4_0, 8)
ROWS8_32(q5_0, Q5_0, 16)
ROWS8_32(q8_0, Q8_0, (char)0x80)
#undef ROWS8_32
#endif

g4_quant_dot_fn g4_quant_rows8_0_for(enum g4_dtype dt, enum g4_isa isa) {
#if defined(__x86_64__) || defined(__i386__)
    if (isa >= G4_ISA_AVX512VNNI && dt == G4_DTYPE_Q4_0) return q4_0_rows8;
    if (isa >= G4_ISA_AVX512VNNI && dt == G4_DTYPE_Q5_0) return q5_0_rows8;
    if (isa >= G4_ISA_AVX512VNNI && dt == G4_DTYPE_Q8_0) return q8_0_rows8;
#endif
    (void)dt, (void)isa;
    return NULL;
}
