// AMX-INT8 prompt products on block-quantized weights; see quant_amx.h.
//
// Tiles: A = 16 weight rows x one block of K (Q8_0: 32 int8 straight from the matrix; Q4_K: 32
// nibbles unpacked to bytes; Q6_K: 16 values less 32, as int8), B = the same K of 16 tokens in
// VNNI order (packed: K/4 rows of 16 tokens x 4 bytes), C = 16 rows x 16 tokens of exact int32
// sums. Per row and block the C row (16 tokens) is scaled in fp32: Q8_0 by d_w * d_y; Q4_K by
// sc_j (summed over the super-block's 8 sub-blocks), then d * d_y, less dmin * d_y * sum_j m_j *
// (sum of y over sub-block j); Q6_K by sc_i over its 16 sub-blocks, then d * d_y. The weights of
// a 16-row tile are unpacked once per 1024 columns into a 16 KB buffer and meet every token group
// of a block of 16 groups (their fp32 sums wait in a 16 KB buffer between column chunks).
#include "quant_amx.h"

#include <string.h>

#include "matmul_cpu.h"
#include "qblock.h"
#include "quant_act.h"
#include "threadpool.h"

// Packed activations, per group of 16 tokens (missing tokens zero): ks = k / 32 B tiles of
// 512 bytes, then nd 16-float vectors of the tokens' scales (one per activation block: k / 32
// for Q8_0, k / 256 for Q8_K), then for Q4_K ks vectors of the sums of y over each 32-element
// sub-block.
struct layout {
    int64_t ks, nd;
    size_t dy, bsp, group;
};

static struct layout layout_for(enum g4_dtype dt, int64_t k) {
    struct layout l;
    l.ks = k / 32;
    l.nd = dt == G4_DTYPE_Q8_0 ? k / 32 : k / 256;
    l.dy = (size_t)l.ks * 512;
    l.bsp = l.dy + (size_t)l.nd * 64;
    l.group = l.bsp + (dt == G4_DTYPE_Q4_K ? (size_t)l.ks * 64 : 0);
    return l;
}

size_t g4_quant_amx_pack_bytes(enum g4_dtype dt, int64_t k, int n) {
    return layout_for(dt, k).group * (size_t)((n + 15) / 16);
}

#if defined(__x86_64__) && defined(__linux__)
#include <cpuid.h>
#include <immintrin.h>

#define QA __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))

static bool has_amx_int8(void) {
    static _Atomic int cached = -1;
    if (cached < 0) {
        unsigned a = 0, b = 0, c = 0, d = 0;
        if (__get_cpuid_max(0, NULL) >= 7) __cpuid_count(7, 0, a, b, c, d);
        cached = (d >> 25 & 1) != 0; // AMX-INT8
    }
    return cached == 1;
}

bool g4_quant_amx_usable(enum g4_dtype dt, int64_t k, int n) {
    if (dt != G4_DTYPE_Q8_0 && dt != G4_DTYPE_Q4_K && dt != G4_DTYPE_Q6_K) return false;
    if (n < G4_QUANT_AMX_MIN_TOKENS || k <= 0 || k % g4_dtype_block(dt)) return false;
    return has_amx_int8() && g4_matmul_has_amx();
}

struct pack_job {
    uint8_t *xp;
    const uint8_t *xq;
    enum g4_dtype dt;
    int64_t k;
    int n;
};

QA static void pack_part(void *arg, int part, int n_parts) {
    const struct pack_job *j = arg;
    const struct layout l = layout_for(j->dt, j->k);
    const int64_t ldq = G4_QUANT_ACT_LD(j->k), k = j->k;
    const int ng = (j->n + 15) / 16;
    const __m512i vindex = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                              _mm512_set1_epi32((int)ldq));
    for (int g = ng * part / n_parts; g < ng * (part + 1) / n_parts; g++) {
        uint8_t *gp = j->xp + (size_t)g * l.group;
        const int nt = j->n - 16 * g < 16 ? j->n - 16 * g : 16;
        const __mmask16 mask = (__mmask16)((1u << nt) - 1);
        const uint8_t *base = j->xq + (size_t)g * 16 * (size_t)ldq;
        for (int64_t s = 0; s < l.ks; s++)
            for (int i = 0; i < 8; i++)
                _mm512_store_si512(gp + s * 512 + i * 64,
                                   _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), mask, vindex,
                                                               base + 32 * s + 4 * i, 1));
        float *dy = (float *)(void *)(gp + l.dy);
        for (int64_t b = 0; b < l.nd; b++)
            _mm512_store_ps(dy + 16 * b, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mask, vindex,
                                                                   base + k + 4 * b, 1));
        if (j->dt == G4_DTYPE_Q4_K) {
            float *bsp = (float *)(void *)(gp + l.bsp);
            const uint8_t *bs = base + k + k / 256 * 4; // int16 sums of 16
            for (int64_t s = 0; s < l.ks; s++) {
                const __m512i v = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), mask, vindex, bs + 4 * s, 1);
                const __m512i sum = _mm512_add_epi32(_mm512_srai_epi32(_mm512_slli_epi32(v, 16), 16),
                                                     _mm512_srai_epi32(v, 16));
                _mm512_store_ps(bsp + 16 * s, _mm512_cvtepi32_ps(sum));
            }
        }
    }
}

void g4_quant_amx_pack(uint8_t *xp, const uint8_t *xq, enum g4_dtype dt, int64_t k, int n,
                       struct g4_pool *pool) {
    struct pack_job job = {xp, xq, dt, k, n};
    g4_pool_run(n >= 64 ? pool : NULL, pack_part, &job);
}

enum {
    KC = 1024,  // columns per chunk of a row tile's unpacked weights
    GB = 16,    // token groups per block (their sums wait in accbuf between chunks)
};

struct amx_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
};

struct mm_job {
    float *out;
    const uint8_t *xp, *w;
    size_t rb;
    int64_t rows, k;
    int n;
    enum g4_dtype dt;
};

// Per-tile state of one part: the chunk's unpacked weights and their scales.
struct tile_state {
    _Alignas(64) uint8_t a[KC / 32][16][32]; // Q8_0 (partial tiles), Q4_K: [block][row][32]; Q6_K: [sub][row][16]
    float wt[KC / 256][16][18];              // Q4_K: [sb][row] sc0-7 m0-7 d dmin; Q6_K: sc0-15 d
    float dw[KC / 32][16];                   // Q8_0: [block][row] d
    _Alignas(64) int32_t c[16][16][16];      // C tiles of one super-block (or block pair)
    _Alignas(64) float acc[GB][16][16];      // [group][row][token]
};

static inline float f16(const uint8_t *p) { return g4_f16_to_f32(g4_qblock_u16(p)); }

// Unpacks rows r0 .. r0 + nr - 1 (of 16), columns c0 .. c1 of the tile into st.
QA static void prepare(const struct mm_job *j, struct tile_state *st, int64_t r0, int nr, int64_t c0,
                       int64_t c1) {
    const int full = nr == 16;
    if (!full) memset(st->a, 0, sizeof st->a);
    memset(st->wt, 0, sizeof st->wt);
    memset(st->dw, 0, sizeof st->dw);
    const __m256i m4 = _mm256_set1_epi8(0xF), m3 = _mm256_set1_epi8(3), b32 = _mm256_set1_epi8(32);
    for (int m = 0; m < nr; m++) {
        const uint8_t *row = j->w + (size_t)(r0 + m) * j->rb;
        if (j->dt == G4_DTYPE_Q8_0) {
            for (int64_t b = 0; b < (c1 - c0) / 32; b++) {
                const uint8_t *p = row + (size_t)(c0 / 32 + b) * G4_QBLOCK_Q8_0_BYTES;
                st->dw[b][m] = f16(p);
                if (!full) memcpy(st->a[b][m], p + 2, 32);
            }
        } else if (j->dt == G4_DTYPE_Q4_K) {
            for (int64_t sb = 0; sb < (c1 - c0) / 256; sb++) {
                const uint8_t *p = row + (size_t)(c0 / 256 + sb) * G4_QBLOCK_Q4_K_BYTES;
                uint8_t sc[8], mn[8];
                g4_qblock_k4_scales(p + G4_QBLOCK_K_SCALES, sc, mn);
                float *f = st->wt[sb][m];
                for (int i = 0; i < 8; i++) f[i] = sc[i], f[8 + i] = mn[i];
                f[16] = f16(p), f[17] = f16(p + 2);
                for (int c = 0; c < 4; c++) {
                    const __m256i q = _mm256_loadu_si256((const __m256i *)(p + G4_QBLOCK_Q4_K_QS + 32 * c));
                    _mm256_store_si256((__m256i *)st->a[sb * 8 + 2 * c][m], _mm256_and_si256(q, m4));
                    _mm256_store_si256((__m256i *)st->a[sb * 8 + 2 * c + 1][m],
                                       _mm256_and_si256(_mm256_srli_epi16(q, 4), m4));
                }
            }
        } else { // Q6_K: sub-block i of super-block sb at a[sb * 16 + i][m][0..16)
            uint8_t(*a16)[16][16] = (uint8_t(*)[16][16])(void *)st->a;
            for (int64_t sb = 0; sb < (c1 - c0) / 256; sb++) {
                const uint8_t *p = row + (size_t)(c0 / 256 + sb) * G4_QBLOCK_Q6_K_BYTES;
                float *f = st->wt[sb][m];
                for (int i = 0; i < 16; i++) f[i] = (float)(int8_t)p[G4_QBLOCK_Q6_K_SCALES + i];
                f[16] = f16(p + G4_QBLOCK_Q6_K_D);
                for (int n = 0; n < 2; n++) {
                    const __m256i qa = _mm256_loadu_si256((const __m256i *)(p + 64 * n));
                    const __m256i qb = _mm256_loadu_si256((const __m256i *)(p + 64 * n + 32));
                    const __m256i qh = _mm256_loadu_si256((const __m256i *)(p + G4_QBLOCK_Q6_K_QH + 32 * n));
                    const __m256i q[4] = {
                        _mm256_or_si256(_mm256_and_si256(qa, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4)),
                        _mm256_or_si256(_mm256_and_si256(qb, m4),
                                        _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m3), 4)),
                        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qa, 4), m4),
                                        _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m3), 4)),
                        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qb, 4), m4),
                                        _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m3), 4)),
                    };
                    for (int g = 0; g < 4; g++) {
                        const __m256i v = _mm256_sub_epi8(q[g], b32);
                        _mm_store_si128((__m128i *)a16[sb * 16 + 8 * n + 2 * g][m], _mm256_castsi256_si128(v));
                        _mm_store_si128((__m128i *)a16[sb * 16 + 8 * n + 2 * g + 1][m], _mm256_extracti128_si256(v, 1));
                    }
                }
            }
        }
    }
}

// The chunk (columns c0 .. c1) of one token group: acc (16 rows x 16 tokens) += its products.
QA static void run_group(const struct mm_job *j, struct tile_state *st, float acc_out[16][16], int64_t r0,
                         int full, int64_t c0, int64_t c1, const uint8_t *gp, const struct layout *l) {
    __m512 acc[16];
    for (int m = 0; m < 16; m++) acc[m] = _mm512_load_ps(acc_out[m]);
    const float *dyv = (const float *)(const void *)(gp + l->dy);
    if (j->dt == G4_DTYPE_Q8_0) {
        const int64_t nb = (c1 - c0) / 32, b0 = c0 / 32;
        for (int64_t b = 0; b < nb; b += 2) {
            const int two = b + 1 < nb;
            _tile_zero(0);
            if (full) _tile_loadd(4, j->w + (size_t)r0 * j->rb + (size_t)(b0 + b) * G4_QBLOCK_Q8_0_BYTES + 2, (long)j->rb);
            else _tile_loadd(4, st->a[b], 32);
            _tile_loadd(6, gp + (size_t)(b0 + b) * 512, 64);
            _tile_dpbssd(0, 4, 6);
            _tile_stored(0, st->c[0], 64);
            if (two) {
                _tile_zero(1);
                if (full)
                    _tile_loadd(5, j->w + (size_t)r0 * j->rb + (size_t)(b0 + b + 1) * G4_QBLOCK_Q8_0_BYTES + 2, (long)j->rb);
                else _tile_loadd(5, st->a[b + 1], 32);
                _tile_loadd(7, gp + (size_t)(b0 + b + 1) * 512, 64);
                _tile_dpbssd(1, 5, 7);
                _tile_stored(1, st->c[1], 64);
            }
            for (int h = 0; h <= two; h++) {
                const __m512 dy = _mm512_load_ps(dyv + 16 * (b0 + b + h));
#pragma GCC unroll 16
                for (int m = 0; m < 16; m++)
                    acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(st->c[h][m])),
                                             _mm512_mul_ps(_mm512_set1_ps(st->dw[b + h][m]), dy), acc[m]);
            }
        }
    } else if (j->dt == G4_DTYPE_Q4_K) {
        const float *bspv = (const float *)(const void *)(gp + l->bsp);
        for (int64_t sb = 0; sb < (c1 - c0) / 256; sb++) {
            const int64_t s0 = c0 / 32 + sb * 8; // the super-block's first 32-column step
            for (int i = 0; i < 8; i += 2) {
                _tile_zero(0);
                _tile_zero(1);
                _tile_loadd(4, st->a[sb * 8 + i], 32);
                _tile_loadd(5, st->a[sb * 8 + i + 1], 32);
                _tile_loadd(6, gp + (size_t)(s0 + i) * 512, 64);
                _tile_loadd(7, gp + (size_t)(s0 + i + 1) * 512, 64);
                _tile_dpbusd(0, 4, 6);
                _tile_dpbusd(1, 5, 7);
                _tile_stored(0, st->c[i], 64);
                _tile_stored(1, st->c[i + 1], 64);
            }
            const __m512 dy = _mm512_load_ps(dyv + 16 * (c0 / 256 + sb));
            __m512 bsp[8];
            for (int i = 0; i < 8; i++) bsp[i] = _mm512_load_ps(bspv + 16 * (s0 + i));
#pragma GCC unroll 4
            for (int m = 0; m < 16; m++) {
                const float *f = st->wt[sb][m];
                __m512 s = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_load_si512(st->c[0][m])), _mm512_set1_ps(f[0]));
                __m512 mm = _mm512_mul_ps(bsp[0], _mm512_set1_ps(f[8]));
                for (int i = 1; i < 8; i++) {
                    s = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(st->c[i][m])), _mm512_set1_ps(f[i]), s);
                    mm = _mm512_fmadd_ps(bsp[i], _mm512_set1_ps(f[8 + i]), mm);
                }
                acc[m] = _mm512_fmadd_ps(s, _mm512_mul_ps(_mm512_set1_ps(f[16]), dy), acc[m]);
                acc[m] = _mm512_fnmadd_ps(mm, _mm512_mul_ps(_mm512_set1_ps(f[17]), dy), acc[m]);
            }
        }
    } else { // Q6_K
        const uint8_t(*a16)[16][16] = (const uint8_t(*)[16][16])(const void *)st->a;
        for (int64_t sb = 0; sb < (c1 - c0) / 256; sb++) {
            const int64_t s0 = c0 / 32 + sb * 8;
            for (int i = 0; i < 16; i += 2) { // sub-blocks i, i + 1: the two halves of step s0 + i / 2
                _tile_zero(0);
                _tile_zero(1);
                _tile_loadd(4, a16[sb * 16 + i], 16);
                _tile_loadd(5, a16[sb * 16 + i + 1], 16);
                _tile_loadd(6, gp + (size_t)(s0 + i / 2) * 512, 64);
                _tile_loadd(7, gp + (size_t)(s0 + i / 2) * 512 + 256, 64);
                _tile_dpbssd(0, 4, 6);
                _tile_dpbssd(1, 5, 7);
                _tile_stored(0, st->c[i], 64);
                _tile_stored(1, st->c[i + 1], 64);
            }
            const __m512 dy = _mm512_load_ps(dyv + 16 * (c0 / 256 + sb));
#pragma GCC unroll 4
            for (int m = 0; m < 16; m++) {
                const float *f = st->wt[sb][m];
                __m512 s = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_load_si512(st->c[0][m])), _mm512_set1_ps(f[0]));
                for (int i = 1; i < 16; i++)
                    s = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(st->c[i][m])), _mm512_set1_ps(f[i]), s);
                acc[m] = _mm512_fmadd_ps(s, _mm512_mul_ps(_mm512_set1_ps(f[16]), dy), acc[m]);
            }
        }
    }
    for (int m = 0; m < 16; m++) _mm512_store_ps(acc_out[m], acc[m]);
}

QA static void mm_part(void *arg, int part, int n_parts) {
    const struct mm_job *j = arg;
    const int64_t n_rt = (j->rows + 15) / 16;
    const int64_t rt0 = n_rt * part / n_parts, rt1 = n_rt * (part + 1) / n_parts;
    if (rt1 <= rt0) return;
    const struct layout l = layout_for(j->dt, j->k);
    struct amx_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    const int q6 = j->dt == G4_DTYPE_Q6_K;
    for (int t = 0; t < 2; t++) cfg.colsb[t] = 64, cfg.rows[t] = 16;                  // C
    for (int t = 4; t < 6; t++) cfg.colsb[t] = q6 ? 16 : 32, cfg.rows[t] = 16;        // A
    for (int t = 6; t < 8; t++) cfg.colsb[t] = 64, cfg.rows[t] = q6 ? 4 : 8;          // B
    _tile_loadconfig(&cfg);
    struct tile_state st;
    const int ng = (j->n + 15) / 16;
    for (int64_t rt = rt0; rt < rt1; rt++) {
        const int64_t r0 = rt * 16;
        const int nr = j->rows - r0 < 16 ? (int)(j->rows - r0) : 16;
        for (int g0 = 0; g0 < ng; g0 += GB) {
            const int g1 = ng - g0 < GB ? ng : g0 + GB;
            memset(st.acc, 0, sizeof st.acc);
            for (int64_t c0 = 0; c0 < j->k; c0 += KC) {
                const int64_t c1 = j->k - c0 < KC ? j->k : c0 + KC;
                prepare(j, &st, r0, nr, c0, c1);
                for (int g = g0; g < g1; g++)
                    run_group(j, &st, st.acc[g - g0], r0, nr == 16, c0, c1, j->xp + (size_t)g * l.group, &l);
            }
            for (int g = g0; g < g1; g++) {
                const int nt = j->n - 16 * g < 16 ? j->n - 16 * g : 16;
                for (int t = 0; t < nt; t++) {
                    float *o = j->out + (size_t)(16 * g + t) * (size_t)j->rows + r0;
                    for (int m = 0; m < nr; m++) o[m] = st.acc[g - g0][m][t];
                }
            }
        }
    }
    _tile_release();
}

void g4_quant_amx_matmul(float *out, const uint8_t *xp, const void *w, enum g4_dtype dt,
                         int64_t rows, int64_t k, int n, struct g4_pool *pool) {
    struct mm_job job = {out, xp, w, g4_dtype_row_bytes(dt, k), rows, k, n, dt};
    g4_pool_run(pool, mm_part, &job);
}

#else

bool g4_quant_amx_usable(enum g4_dtype dt, int64_t k, int n) {
    (void)dt, (void)k, (void)n;
    return false;
}

void g4_quant_amx_pack(uint8_t *xp, const uint8_t *xq, enum g4_dtype dt, int64_t k, int n,
                       struct g4_pool *pool) {
    (void)xp, (void)xq, (void)dt, (void)k, (void)n, (void)pool;
}

void g4_quant_amx_matmul(float *out, const uint8_t *xp, const void *w, enum g4_dtype dt,
                         int64_t rows, int64_t k, int n, struct g4_pool *pool) {
    (void)out, (void)xp, (void)w, (void)dt, (void)rows, (void)k, (void)n, (void)pool;
}

#endif
