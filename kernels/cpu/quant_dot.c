// Quantized-weight x 8-bit-activation dot products; see quant_dot.h. Portable C here (the
// reference the SIMD kernels are tested against); the x86 kernels come from quant_dot_x86.inc,
// instantiated once for AVX2 (VPMADDUBSW) and once for AVX-512 VNNI (VPDPBUSD / VPDPWSSD, on
// 256-bit vectors except Q5_0 and Q6_K, which measured faster on 512-bit ones).
#include "quant_dot.h"

#include <math.h>
#include <string.h>

#include "qblock.h"
#include "quant_act.h"
#include "quant_rows8.h"
#include "threadpool.h"

// --- portable C

static float dot_q4_0(const uint8_t *w, const int8_t *y, const float *yd, int64_t nb) {
    float s = 0.0f;
    for (int64_t b = 0; b < nb; b++, w += G4_QBLOCK_Q4_0_BYTES, y += 32) {
        int sumi = 0;
        for (int j = 0; j < 16; j++)
            sumi += ((w[2 + j] & 0xF) - 8) * y[j] + ((w[2 + j] >> 4) - 8) * y[j + 16];
        s += (float)sumi * (g4_f16_to_f32(g4_qblock_u16(w)) * yd[b]);
    }
    return s;
}

static float dot_q5_0(const uint8_t *w, const int8_t *y, const float *yd, int64_t nb) {
    float s = 0.0f;
    for (int64_t b = 0; b < nb; b++, w += G4_QBLOCK_Q5_0_BYTES, y += 32) {
        const uint32_t qh = g4_qblock_u32(w + 2);
        int sumi = 0;
        for (int j = 0; j < 16; j++) {
            const int lo = (w[6 + j] & 0xF) | (int)((qh >> j) & 1) << 4;
            const int hi = (w[6 + j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
            sumi += (lo - 16) * y[j] + (hi - 16) * y[j + 16];
        }
        s += (float)sumi * (g4_f16_to_f32(g4_qblock_u16(w)) * yd[b]);
    }
    return s;
}

static float dot_q8_0(const uint8_t *w, const int8_t *y, const float *yd, int64_t nb) {
    float s = 0.0f;
    for (int64_t b = 0; b < nb; b++, w += G4_QBLOCK_Q8_0_BYTES, y += 32) {
        int sumi = 0;
        for (int j = 0; j < 32; j++) sumi += (int8_t)w[2 + j] * y[j];
        s += (float)sumi * (g4_f16_to_f32(g4_qblock_u16(w)) * yd[b]);
    }
    return s;
}

// Q4_K and Q5_K: sum_j sc_j * dot(q_j, y_j) * d * dy - dmin * dy * sum_j m_j * (sum of y_j).
static float dot_q45_k(const uint8_t *w, const int8_t *y, const float *yd, const int16_t *bsums,
                       int64_t nb, int five) {
    float s = 0.0f;
    const size_t bb = five ? G4_QBLOCK_Q5_K_BYTES : G4_QBLOCK_Q4_K_BYTES;
    for (int64_t b = 0; b < nb; b++, w += bb, y += 256, bsums += 16) {
        uint8_t sc[8], m[8];
        g4_qblock_k4_scales(w + G4_QBLOCK_K_SCALES, sc, m);
        const uint8_t *qs = w + (five ? G4_QBLOCK_Q5_K_QS : G4_QBLOCK_Q4_K_QS), *qh = w + G4_QBLOCK_Q5_K_QH;
        int sumi = 0, summ = 0;
        for (int c = 0; c < 4; c++) {
            int lo = 0, hi = 0;
            for (int l = 0; l < 32; l++) {
                const int h1 = five ? (qh[l] >> (2 * c) & 1) << 4 : 0;
                const int h2 = five ? (qh[l] >> (2 * c + 1) & 1) << 4 : 0;
                lo += ((qs[32 * c + l] & 0xF) | h1) * y[64 * c + l];
                hi += ((qs[32 * c + l] >> 4) | h2) * y[64 * c + 32 + l];
            }
            sumi += sc[2 * c] * lo + sc[2 * c + 1] * hi;
        }
        for (int j = 0; j < 8; j++) summ += m[j] * (bsums[2 * j] + bsums[2 * j + 1]);
        const float d = g4_f16_to_f32(g4_qblock_u16(w)) * yd[b];
        const float dmin = g4_f16_to_f32(g4_qblock_u16(w + 2)) * yd[b];
        s += d * (float)sumi - dmin * (float)summ;
    }
    return s;
}

static float dot_q6_k(const uint8_t *w, const int8_t *y, const float *yd, int64_t nb) {
    float s = 0.0f;
    for (int64_t b = 0; b < nb; b++, w += G4_QBLOCK_Q6_K_BYTES, y += 256) {
        const uint8_t *ql = w, *qh = w + G4_QBLOCK_Q6_K_QH;
        const int8_t *sc = (const int8_t *)(w + G4_QBLOCK_Q6_K_SCALES);
        int sumi = 0;
        for (int n = 0; n < 2; n++, ql += 64, qh += 32, sc += 8) {
            const int8_t *yn = y + 128 * n;
            for (int half = 0; half < 2; half++) { // elements 0-15 / 16-31 of each 32: scale is, is + 1
                int p0 = 0, p1 = 0, p2 = 0, p3 = 0;
                for (int l = 16 * half; l < 16 * half + 16; l++) {
                    p0 += (((ql[l] & 0xF) | ((qh[l] >> 0 & 3) << 4)) - 32) * yn[l];
                    p1 += (((ql[l + 32] & 0xF) | ((qh[l] >> 2 & 3) << 4)) - 32) * yn[l + 32];
                    p2 += (((ql[l] >> 4) | ((qh[l] >> 4 & 3) << 4)) - 32) * yn[l + 64];
                    p3 += (((ql[l + 32] >> 4) | ((qh[l] >> 6 & 3) << 4)) - 32) * yn[l + 96];
                }
                sumi += sc[half] * p0 + sc[half + 2] * p1 + sc[half + 4] * p2 + sc[half + 6] * p3;
            }
        }
        s += g4_f16_to_f32(g4_qblock_u16(w + G4_QBLOCK_Q6_K_D)) * yd[b] * (float)sumi;
    }
    return s;
}

#define PORTABLE_DOT(NAME, CALL)                                                                 \
    static void NAME(float *out, const uint8_t *w, size_t row_bytes, int nr, const uint8_t *xq,  \
                     int64_t k) {                                                                \
        const int8_t *y = g4_quant_act_qs(xq);                                                   \
        const float *yd = g4_quant_act_d(xq, k);                                                 \
        const int16_t *bsums = g4_quant_act_bsums(xq, k);                                        \
        (void)bsums;                                                                             \
        for (int r = 0; r < nr; r++, w += row_bytes) out[r] = CALL;                              \
    }
PORTABLE_DOT(portable_q4_0, dot_q4_0(w, y, yd, k / 32))
PORTABLE_DOT(portable_q5_0, dot_q5_0(w, y, yd, k / 32))
PORTABLE_DOT(portable_q8_0, dot_q8_0(w, y, yd, k / 32))
PORTABLE_DOT(portable_q4_k, dot_q45_k(w, y, yd, bsums, k / 256, 0))
PORTABLE_DOT(portable_q5_k, dot_q45_k(w, y, yd, bsums, k / 256, 1))
PORTABLE_DOT(portable_q6_k, dot_q6_k(w, y, yd, k / 256))

// Kernels per dtype, in enum order from G4_DTYPE_Q4_0.
static const g4_quant_dot_fn portable[] = {portable_q4_0, portable_q5_0, portable_q8_0,
                                           portable_q4_k, portable_q5_k, portable_q6_k};

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define QD_CAT(a, b) a##b // two levels, so that a macro argument expands first
#define QD_TARGET __attribute__((target("avx2,fma,f16c")))
#define QD_VNNI 0
#define QD(name) QD_CAT(avx2_, name)
#include "quant_dot_x86.inc"
#undef QD_TARGET
#undef QD_VNNI
#undef QD

#define QD_TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#define QD_VNNI 1
#define QD(name) QD_CAT(vnni_, name)
#include "quant_dot_x86.inc"
#undef QD_TARGET
#undef QD_VNNI
#undef QD

static const g4_quant_dot_fn avx2[] = {avx2_q4_0, avx2_q5_0, avx2_q8_0,
                                       avx2_q4_k, avx2_q5_k, avx2_q6_k};
static const g4_quant_dot_fn vnni[] = {vnni_q4_0, vnni_q5_0, vnni_q8_0,
                                       vnni_q4_k, vnni_q5_k, vnni_q6_k};
// ggml's order; Q5_K has none of its own here (its default kernel)
static const g4_quant_dot_fn avx2_ggml[] = {avx2_g_q4_0, avx2_g_q5_0, avx2_g_q8_0,
                                            avx2_g_q4_k, avx2_q5_k, avx2_g_q6_k};
static const g4_quant_dot_fn vnni_ggml[] = {vnni_g_q4_0, vnni_g_q5_0, vnni_g_q8_0,
                                            vnni_g_q4_k, vnni_q5_k, vnni_g_q6_k};
#endif

// The kernel for tokens ggml's repacked Q4_K gemm takes in fours (others: as one token).
static g4_quant_dot_fn ggml_for_fours(enum g4_dtype dt, enum g4_isa isa) {
#if defined(__x86_64__) || defined(__i386__)
    (void)0;
    if (dt == G4_DTYPE_Q4_K && isa >= G4_ISA_AVX512VNNI) return vnni_g_q4_k_pairs;
    if (dt == G4_DTYPE_Q4_K && isa >= G4_ISA_AVX2) return avx2_g_q4_k_pairs;
#endif
    return g4_quant_dot_ggml_for(dt, isa);
}

g4_quant_dot_fn g4_quant_dot_ggml_for(enum g4_dtype dt, enum g4_isa isa) {
    if (!G4_DTYPE_IS_QUANT(dt)) return NULL;
    const int i = dt - G4_DTYPE_Q4_0;
#if defined(__x86_64__) || defined(__i386__)
    if (isa >= G4_ISA_AVX512VNNI) return vnni_ggml[i];
    if (isa >= G4_ISA_AVX2) return avx2_ggml[i];
#endif
    (void)isa;
    return portable[i];
}

struct ggml_mm_job {
    float *out;
    const uint8_t *xq, *w;
    size_t row_bytes;
    int64_t rows, k;
    int n;
    g4_quant_dot_fn dot, dot4, dot8;
};

// Rows split across the parts; 8-row tiles meet every token of a 64-token block (weights stay
// in L1/L2 while the tokens pass), as matmul_cpu.c's q8 products do.
static void ggml_mm_part(void *arg, int part, int n_parts) {
    const struct ggml_mm_job *j = arg;
    const int64_t r0 = j->rows * part / n_parts, r1 = j->rows * (part + 1) / n_parts;
    const size_t ldq = (size_t)G4_QUANT_ACT_LD(j->k);
    for (int b0 = 0; b0 < j->n; b0 += 64) {
        const int b1 = j->n - b0 < 64 ? j->n : b0 + 64;
        for (int64_t r = r0; r < r1; r += 8) {
            const int nr = r1 - r < 8 ? (int)(r1 - r) : 8;
            for (int t = b0; t < b1; t++)
                (j->dot8 ? j->dot8 : t < j->n - j->n % 4 ? j->dot4 : j->dot)(
                    j->out + (size_t)t * (size_t)j->rows + r, j->w + (size_t)r * j->row_bytes, j->row_bytes,
                    nr, j->xq + (size_t)t * ldq, j->k);
        }
    }
}

void g4_quant_dot_ggml_matmul(float *out, const uint8_t *xq, const void *w, enum g4_dtype dt,
                              int64_t rows, int64_t k, int n, enum g4_isa isa, struct g4_pool *pool) {
    const g4_quant_dot_fn rows8 = g4_quant_rows8_for(dt, isa);
    struct ggml_mm_job job = {out, xq, w, g4_dtype_row_bytes(dt, k), rows, k, n,
                              rows8 ? rows8 : g4_quant_dot_ggml_for(dt, isa), ggml_for_fours(dt, isa),
                              NULL};
    if (dt != G4_DTYPE_Q4_K) job.dot4 = job.dot; // one order for every token count
#if defined(__x86_64__) || defined(__i386__)
    // ggml's tiled K-quant product takes batches of 8+ tokens on non-repacked K-quant matrices
    if (dt == G4_DTYPE_Q6_K && n >= 8 && isa >= G4_ISA_AVX2)
        job.dot8 = isa >= G4_ISA_AVX512VNNI ? vnni_g_q6_k_tiled : avx2_g_q6_k_tiled;
#endif
    if ((double)rows * (double)k * n < 1 << 15) pool = NULL;
    g4_pool_run(pool, ggml_mm_part, &job);
}

g4_quant_dot_fn g4_quant_dot_for(enum g4_dtype dt, enum g4_isa isa) {
    if (!G4_DTYPE_IS_QUANT(dt)) return NULL;
    const int i = dt - G4_DTYPE_Q4_0;
#if defined(__x86_64__) || defined(__i386__)
    if (isa >= G4_ISA_AVX512VNNI) return vnni[i];
    if (isa >= G4_ISA_AVX2) return avx2[i];
#endif
    (void)isa;
    return portable[i];
}
