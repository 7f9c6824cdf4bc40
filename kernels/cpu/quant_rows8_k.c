// 8-row decode kernels for the K-quants; see quant_rows8.h.
//
// Q4_K, in ggml's repacked-gemv order (quant_dot_x86.inc, grow_q4_k): per row and 256-element
// super-block the exact integers S = sum_j sc_j * dot(q_j, y_j) and M = sum_j m_j * (sum of
// y_j), then acc = fma(S, d_w * d_y, acc), accm = fma(M, dmin_w * d_y, accm), result acc - accm.
// Here each row's S comes from four VPMADDUBSW + VPDPWSSD on 512-bit vectors (64 quants each,
// the activation's 32-element halves arranged once per super-block for all eight rows, the
// sub-block scales broadcast to their int16 lanes by VPERMW), the eight rows' S and M are
// reduced across rows in vectors, and the fp32 steps run on the eight rows at once: each lane's
// FMA is the same correctly rounded operation as the one-row kernel's fmaf, so the results are
// equal bit for bit.
//
// Q6_K, in ggml_vec_dot_q6_K_q8_K's order (grow_q6_k): per row an 8-lane fp32 accumulator, lane
// l taking per super-block the exact integer sum of its 4-quant groups times their scales less
// the -32 offset's share, times d_w * d_y, fused; then ggml's hsum_float_8. Here two rows share
// a 512-bit vector (one per 256-bit half, the activation broadcast to both), so every lane holds
// the same integers as the one-row kernel's, and the final sums run per row in hsum's order.
//
// Both prefetch the next eight rows' current block (the caller's next call): from memory one
// core streams about twice as fast with those loads in flight (the kernels run near 26 GB/s on
// a matrix in L2, 8 GB/s from memory without them). Prefetches never fault past the matrix.
#include "quant_rows8.h"

#include <stddef.h>

#include "qblock.h"
#include "quant_act.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define R8 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

// c[r] holds row r's partial sums in its low 256 bits and row r + 4's in its high 256 bits (8
// int32 each); returns the 8 rows' totals in order.
R8 static inline __m256i reduce_pairs(const __m512i c[4]) {
    const __m512i d01 = _mm512_add_epi32(_mm512_unpacklo_epi32(c[0], c[1]), _mm512_unpackhi_epi32(c[0], c[1]));
    const __m512i d23 = _mm512_add_epi32(_mm512_unpacklo_epi32(c[2], c[3]), _mm512_unpackhi_epi32(c[2], c[3]));
    // per 128-bit lane: [row 0, 1, 2, 3] (lanes 0, 1) or [row 4, 5, 6, 7] (lanes 2, 3) partials
    const __m512i e = _mm512_add_epi32(_mm512_unpacklo_epi64(d01, d23), _mm512_unpackhi_epi64(d01, d23));
    const __m512i f = _mm512_add_epi32(_mm512_shuffle_i64x2(e, e, 0x88), _mm512_shuffle_i64x2(e, e, 0xDD));
    return _mm512_castsi512_si256(f);
}

// The totals of eight 16-lane vectors, v[r] -> lane r.
R8 static inline __m256i reduce8x16(const __m512i v[8]) {
    __m512i c[4];
    for (int r = 0; r < 4; r++)
        c[r] = _mm512_add_epi32(_mm512_shuffle_i64x2(v[r], v[r + 4], 0x44),
                                _mm512_shuffle_i64x2(v[r], v[r + 4], 0xEE));
    return reduce_pairs(c);
}

// A Q4_K block's 6-bit scales and mins as int16 [sc0..sc7, m0..m7] (g4_qblock_k4_scales).
R8 static inline __m256i k4_scales16(const uint8_t *s12) {
    const __m128i x = _mm_loadu_si128((const __m128i *)s12); // 12 bytes used; 4 more of the block
    const __m128i a = _mm_shuffle_epi32(x, _MM_SHUFFLE(2, 1, 2, 0)); // u0 u2 u1 u2
    const __m128i b = _mm_shuffle_epi32(x, _MM_SHUFFLE(1, 1, 0, 0)); // u0 u0 u1 u1
    const __m128i lo = _mm_and_si128(_mm_srlv_epi32(a, _mm_setr_epi32(0, 0, 0, 4)),
                                     _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
    const __m128i hi = _mm_slli_epi32(
        _mm_and_si128(_mm_srli_epi32(b, 6), _mm_setr_epi32(0, 0x03030303, 0, 0x03030303)), 4);
    return _mm256_cvtepu8_epi16(_mm_or_si128(lo, hi));
}

R8 static void q4_k_rows8(float *out, const uint8_t *w, size_t row_bytes, int nr, const uint8_t *xq,
                          int64_t k) {
    if (nr != 8) {
        g4_quant_dot_ggml_for(G4_DTYPE_Q4_K, G4_ISA_AVX512VNNI)(out, w, row_bytes, nr, xq, k);
        return;
    }
    const int8_t *y = g4_quant_act_qs(xq);
    const float *yd = g4_quant_act_d(xq, k);
    const int16_t *bsums = g4_quant_act_bsums(xq, k);
    const __m512i m4 = _mm512_set1_epi8(0xF);
    // VPERMW indexes into [sc0..sc7, m0..m7]: the scales of (low, high) nibbles of quants 0-63
    // and 64-127 of each 128 (sub-blocks 0|2, 1|3, 4|6, 5|7), and the mins paired with bsums
    const __m512i i02 = _mm512_set_epi64(0x0002000200020002, 0x0002000200020002, 0x0002000200020002, 0x0002000200020002,
                                         0, 0, 0, 0);
    const __m512i i13 = _mm512_add_epi16(i02, _mm512_set1_epi16(1));
    const __m512i i46 = _mm512_add_epi16(i02, _mm512_set1_epi16(4));
    const __m512i i57 = _mm512_add_epi16(i02, _mm512_set1_epi16(5));
    const __m256i imin = _mm256_setr_epi16(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
    const __m256i roff = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                            _mm256_set1_epi32((int)row_bytes));
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    const int64_t nb = k / 256;
    for (int64_t b = 0; b < nb; b++, y += 256, bsums += 16) {
        const uint8_t *blk = w + (size_t)b * G4_QBLOCK_Q4_K_BYTES;
        const __m512i y0 = _mm512_loadu_si512(y), y1 = _mm512_loadu_si512(y + 64);
        const __m512i y2 = _mm512_loadu_si512(y + 128), y3 = _mm512_loadu_si512(y + 192);
        const __m512i ya0 = _mm512_shuffle_i64x2(y0, y1, 0x44), yb0 = _mm512_shuffle_i64x2(y0, y1, 0xEE);
        const __m512i ya1 = _mm512_shuffle_i64x2(y2, y3, 0x44), yb1 = _mm512_shuffle_i64x2(y2, y3, 0xEE);
        const __m256i bs = _mm256_loadu_si256((const __m256i *)bsums);
        __m512i s[8];
        __m256i m[8];
        for (int r = 0; r < 8; r++) {
            const uint8_t *p = blk + (size_t)r * row_bytes;
            const char *next = (const char *)p + 8 * row_bytes;
            _mm_prefetch(next, _MM_HINT_T0);
            _mm_prefetch(next + 64, _MM_HINT_T0);
            _mm_prefetch(next + 143, _MM_HINT_T0);
            const __m256i sc16 = k4_scales16(p + G4_QBLOCK_K_SCALES);
            const __m512i sz = _mm512_zextsi256_si512(sc16);
            const __m512i q0 = _mm512_loadu_si512(p + G4_QBLOCK_Q4_K_QS);
            const __m512i q1 = _mm512_loadu_si512(p + G4_QBLOCK_Q4_K_QS + 64);
            __m512i t = _mm512_dpwssd_epi32(_mm512_setzero_si512(),
                                            _mm512_maddubs_epi16(_mm512_and_si512(q0, m4), ya0),
                                            _mm512_permutexvar_epi16(i02, sz));
            t = _mm512_dpwssd_epi32(t, _mm512_maddubs_epi16(_mm512_and_si512(_mm512_srli_epi16(q0, 4), m4), yb0),
                                    _mm512_permutexvar_epi16(i13, sz));
            t = _mm512_dpwssd_epi32(t, _mm512_maddubs_epi16(_mm512_and_si512(q1, m4), ya1),
                                    _mm512_permutexvar_epi16(i46, sz));
            s[r] = _mm512_dpwssd_epi32(t, _mm512_maddubs_epi16(_mm512_and_si512(_mm512_srli_epi16(q1, 4), m4), yb1),
                                       _mm512_permutexvar_epi16(i57, sz));
            m[r] = _mm256_madd_epi16(_mm256_permutexvar_epi16(imin, sc16), bs);
        }
        __m512i mc[4];
        for (int r = 0; r < 4; r++) mc[r] = _mm512_inserti64x4(_mm512_castsi256_si512(m[r]), m[r + 4], 1);
        const __m256i S = reduce8x16(s), M = reduce_pairs(mc);
        // d and dmin of the eight rows' block b (fp16 pairs at the block's start)
        const __m256i dd = _mm256_i32gather_epi32((const int *)(const void *)blk, roff, 1);
        const __m256 ydb = _mm256_set1_ps(yd[b]);
        const __m256 d = _mm256_mul_ps(_mm256_cvtph_ps(_mm256_cvtepi32_epi16(dd)), ydb);
        const __m256 dmin = _mm256_mul_ps(_mm256_cvtph_ps(_mm256_cvtepi32_epi16(_mm256_srli_epi32(dd, 16))), ydb);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(S), d, acc);
        accm = _mm256_fmadd_ps(_mm256_cvtepi32_ps(M), dmin, accm);
    }
    _mm256_storeu_ps(out, _mm256_sub_ps(acc, accm));
}

R8 static inline float hsum8(__m256 v) { // quant_dot_x86.inc's hsum (ggml's hsum_float_8)
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Two rows' 256-bit loads at offset off of their blocks, row a in the low half.
R8 static inline __m512i load2(const uint8_t *a, const uint8_t *b, size_t off) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(a + off))),
                              _mm256_loadu_si256((const __m256i *)(b + off)), 1);
}

R8 static void q6_k_rows8(float *out, const uint8_t *w, size_t row_bytes, int nr, const uint8_t *xq,
                          int64_t k) {
    if (nr != 8) {
        g4_quant_dot_ggml_for(G4_DTYPE_Q6_K, G4_ISA_AVX512VNNI)(out, w, row_bytes, nr, xq, k);
        return;
    }
    const int8_t *y = g4_quant_act_qs(xq);
    const float *yd = g4_quant_act_d(xq, k);
    const int16_t *bsums = g4_quant_act_bsums(xq, k);
    const __m512i m4 = _mm512_set1_epi8(0xF), m3 = _mm512_set1_epi8(3);
    // VPERMW indexes into [row a's 16 int8 scales as int16 | row b's]: group (n, k)'s two scales
    // (its 16-quant halves) to the 8 int16 lanes of their 128-bit quarter, per row
    __m512i isc[8];
    for (int g = 0; g < 8; g++) {
        const int j = 8 * (g / 4) + 2 * (g % 4);
        isc[g] = _mm512_mask_blend_epi16(0x0000FF00u, _mm512_set1_epi16((short)j), _mm512_set1_epi16((short)(j + 1)));
        isc[g] = _mm512_mask_blend_epi16(0x00FF0000u, isc[g], _mm512_set1_epi16((short)(16 + j)));
        isc[g] = _mm512_mask_blend_epi16(0xFF000000u, isc[g], _mm512_set1_epi16((short)(17 + j)));
    }
    __m512i ipair[4];
    for (int i = 0; i < 4; i++)
        ipair[i] = _mm512_mask_blend_epi32(0xFF00, _mm512_set1_epi32(2 * i), _mm512_set1_epi32(2 * i + 1));
    const __m256i roff = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                            _mm256_set1_epi32((int)row_bytes));
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    const int64_t nb = k / 256;
    for (int64_t b = 0; b < nb; b++, y += 256, bsums += 16) {
        const uint8_t *blk = w + (size_t)b * G4_QBLOCK_Q6_K_BYTES;
        const __m512i bs = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)bsums));
        // d of the eight rows' block b: the fp16 at 208, read as the high half of bytes 206-209
        const __m256i dd = _mm256_i32gather_epi32((const int *)(const void *)(blk + G4_QBLOCK_Q6_K_D - 2), roff, 1);
        const __m512 d8 = _mm512_zextps256_ps512(_mm256_mul_ps(
            _mm256_set1_ps(yd[b]), _mm256_cvtph_ps(_mm256_cvtepi32_epi16(_mm256_srli_epi32(dd, 16)))));
        for (int i = 0; i < 4; i++) {
            const uint8_t *pa = blk + (size_t)(2 * i) * row_bytes, *pb = pa + row_bytes;
            for (int h = 0; h < 2; h++) {
                const char *na = (const char *)(h ? pb : pa) + 8 * row_bytes;
                _mm_prefetch(na, _MM_HINT_T0);
                _mm_prefetch(na + 64, _MM_HINT_T0);
                _mm_prefetch(na + 128, _MM_HINT_T0);
                _mm_prefetch(na + 192, _MM_HINT_T0);
                _mm_prefetch(na + 209, _MM_HINT_T0);
            }
            const __m512i s16 = _mm512_inserti64x4(
                _mm512_castsi256_si512(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(pa + G4_QBLOCK_Q6_K_SCALES)))),
                _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(pb + G4_QBLOCK_Q6_K_SCALES))), 1);
            const __m512i off = _mm512_slli_epi32(_mm512_madd_epi16(bs, s16), 5);
            __m512i sumi = _mm512_setzero_si512();
            for (int n = 0; n < 2; n++) {
                const __m512i qa = load2(pa, pb, 64 * n), qb = load2(pa, pb, 64 * n + 32);
                const __m512i qh = load2(pa, pb, G4_QBLOCK_Q6_K_QH + 32 * n);
                const __m512i q[4] = {
                    _mm512_or_si512(_mm512_and_si512(qa, m4), _mm512_slli_epi16(_mm512_and_si512(qh, m3), 4)),
                    _mm512_or_si512(_mm512_and_si512(qb, m4),
                                    _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(qh, 2), m3), 4)),
                    _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(qa, 4), m4),
                                    _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(qh, 4), m3), 4)),
                    _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(qb, 4), m4),
                                    _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(qh, 6), m3), 4)),
                };
                for (int g = 0; g < 4; g++)
                    sumi = _mm512_dpwssd_epi32(
                        sumi,
                        _mm512_maddubs_epi16(q[g], _mm512_broadcast_i64x4(_mm256_loadu_si256(
                                                       (const __m256i *)(y + 128 * n + 32 * g)))),
                        _mm512_permutexvar_epi16(isc[4 * n + g], s16));
            }
            acc[i] = _mm512_fmadd_ps(_mm512_permutexvar_ps(ipair[i], d8),
                                     _mm512_cvtepi32_ps(_mm512_sub_epi32(sumi, off)), acc[i]);
        }
    }
    for (int i = 0; i < 4; i++) {
        out[2 * i] = hsum8(_mm512_castps512_ps256(acc[i]));
        out[2 * i + 1] = hsum8(_mm512_extractf32x8_ps(acc[i], 1));
    }
}
#endif

g4_quant_dot_fn g4_quant_rows8_k_for(enum g4_dtype dt, enum g4_isa isa) {
#if defined(__x86_64__) || defined(__i386__)
    if (isa >= G4_ISA_AVX512VNNI && dt == G4_DTYPE_Q4_K) return q4_k_rows8;
    if (isa >= G4_ISA_AVX512VNNI && dt == G4_DTYPE_Q6_K) return q6_k_rows8;
#endif
    (void)dt, (void)isa;
    return NULL;
}
