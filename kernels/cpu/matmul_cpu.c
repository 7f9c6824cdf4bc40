// Cache-blocked matmul for the CPU engine; see matmul_cpu.h.
//
// out (n, rows) = x (n, K) @ w^T with w (rows, K) in checkpoint dtype. The work is cut into
// tiles of MR weight rows x MT tokens; a tile keeps its MR x MT dot products in registers and
// walks K once, so each weight vector it loads (and converts) serves MT tokens and each
// activation vector serves MR rows. Around the tiles:
//   - output rows are split across the pool (each weight byte read by one thread),
//   - for prefill (n > MT) K is cut into KC-column slices and tokens into TB-token blocks, so a
//     tile's weight slice (MR x KC) stays in L1 while it meets every token of the block, and the
//     block's activations (TB x KC fp32 = 768 KB) stay in L2 while every row tile of the thread
//     passes over them; partial sums of later slices are added to out,
//   - g4_matmul_cpu_bf16act (GEMMA4_PRECISION_BF16) runs the same blocks on bf16 copies of the
//     activations with the VDPBF16PS tile (2 x TB tokens per block: the same bytes),
//   - decode (n <= MT) walks each row once, end to end (pure streaming; memory bound); with one
//     token, rows longer than GEMV_MAX_K go 8 at a time so the activation vector stays in L1.
// Tiles exist for AVX-512 (MT 6), AVX2/FMA/F16C (MT 2) and portable C (the reference the others
// are tested against), each specialised per dtype and per token count so the accumulators stay
// in registers.
//
// Block-quantized weights (GGUF): the exact path (quant_part) dequantizes each MR x KC slice once
// per token block into a buffer the fp32 tiles read (quant_dequant.h), and one token goes
// through quant_gemv.h (blocks dequantized in registers) where the level has it. The
// GEMMA4_PRECISION_BF16 path quantizes the activations to 8 bits (quant_act.h): up to 3 tokens
// run integer dot products (quant_dot.h, q8_part), more run the exact path on the 8-bit values.
#include "matmul_cpu.h"

#include <stdbool.h>
#include <string.h>

#include "dtype.h"
#include "quant_act.h"
#include "quant_dequant.h"
#include "quant_dot.h"
#include "quant_amx.h"
#include "quant_gemv.h"

enum { MR = 4, KC = 2048, TB = 96, GEMV_MAX_K = 3072 };

// Decode choices per CPU, set once by cpu_isa() (see decode_tuning there): rows longer than
// gemv_max_k fp32 columns go 8 at a time (else one at a time), and the 8-row kernels prefetch
// each row decode_prefetch bytes ahead (0: none).
static _Atomic int gemv_max_k = GEMV_MAX_K, decode_prefetch = 0;
_Static_assert(KC % 256 == 0, "K slices must start on quantized blocks");

// out[t * ldo + r] = (acc ? out[t * ldo + r] : 0) + dot(w row r, x row t) over columns [k0, k1),
// for r < nr (<= MR) and t < nt (<= the kernel's MT). Row r of w starts at w + r * row_bytes.
// x is fp32 for every tile except the bf16-activation tile (uint16_t bf16 bits); ldx counts
// elements.
typedef void (*tile_fn)(float *out, int64_t ldo, const char *w, size_t row_bytes, int nr,
                        const void *x, int64_t ldx, int nt, int64_t k0, int64_t k1, bool acc);

struct kernel {
    tile_fn f32, bf16, f16;
    int mt;
    bool gemv_all_rows; // with one token the tile takes any number of rows (it walks them itself)
};

static inline void store_tile(float *out, int64_t ldo, int t, const float *sums, int nr, bool acc) {
    float *o = out + t * ldo;
    for (int r = 0; r < nr; r++) o[r] = acc ? o[r] + sums[r] : sums[r];
}

// --- portable C: one row at a time through an fp32 buffer.

static void tile_portable(float *out, int64_t ldo, const char *w, size_t row_bytes, int nr,
                          const float *x, int64_t ldx, int nt, int64_t k0, int64_t k1, bool acc,
                          enum g4_dtype dt) {
    const size_t es = g4_dtype_size(dt);
    float row[256], sums[MR][8] = {{0}};
    for (int64_t c0 = k0; c0 < k1; c0 += 256) {
        const int64_t nc = k1 - c0 < 256 ? k1 - c0 : 256;
        for (int r = 0; r < nr; r++) {
            g4_to_f32(row, w + (size_t)r * row_bytes + (size_t)c0 * es, dt, (size_t)nc);
            for (int t = 0; t < nt; t++) {
                const float *xt = x + t * ldx + c0;
                float s = 0.0f;
                for (int64_t i = 0; i < nc; i++) s += row[i] * xt[i];
                sums[r][t] += s;
            }
        }
    }
    for (int t = 0; t < nt; t++) {
        float col[MR] = {0};
        for (int r = 0; r < nr; r++) col[r] = sums[r][t];
        store_tile(out, ldo, t, col, nr, acc);
    }
}

#define PORTABLE_TILE(NAME, DT)                                                                  \
    static void NAME(float *out, int64_t ldo, const char *w, size_t row_bytes, int nr,          \
                     const void *x, int64_t ldx, int nt, int64_t k0, int64_t k1, bool acc) {    \
        tile_portable(out, ldo, w, row_bytes, nr, x, ldx, nt, k0, k1, acc, DT);                 \
    }
PORTABLE_TILE(tile_portable_f32, G4_DTYPE_F32)
PORTABLE_TILE(tile_portable_bf16, G4_DTYPE_BF16)
PORTABLE_TILE(tile_portable_f16, G4_DTYPE_F16)

static const struct kernel kernel_portable = {tile_portable_f32, tile_portable_bf16,
                                              tile_portable_f16, 8, false};

// Copies the last (< vector width) columns of the tile's rows and tokens into zero-padded
// buffers, so the SIMD tiles finish with one ordinary vector step.
static void pad_tail(char *wbuf, size_t wstride, float *xbuf, size_t xstride, const char *w,
                     size_t row_bytes, int nr, const float *x, int64_t ldx, int nt, int64_t k,
                     int64_t n, size_t es) {
    memset(wbuf, 0, MR * wstride);
    memset(xbuf, 0, (size_t)nt * xstride * sizeof(float));
    for (int r = 0; r < MR; r++) // rows >= nr repeat the last row, as in the main loop
        memcpy(wbuf + r * wstride, w + (size_t)(r < nr ? r : nr - 1) * row_bytes + k * es,
               (size_t)n * es);
    for (int t = 0; t < nt; t++) memcpy(xbuf + t * xstride, x + t * ldx + k, (size_t)n * 4);
}

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))
#define INLINE inline __attribute__((always_inline))
// Loops over the tile's rows and tokens must unroll fully (at -O2 too) so accumulators stay in
// registers.
#define UNROLL _Pragma("GCC unroll 8")

// --- AVX2/FMA/F16C: 8 columns per vector, MR x 2 accumulators (+ 4 weights + 1 x of 16 ymm).

AVX2 static INLINE __m256 load8(const char *p, enum g4_dtype dt) {
    if (dt == G4_DTYPE_BF16)
        return _mm256_castsi256_ps(
            _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
    if (dt == G4_DTYPE_F16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
    return _mm256_loadu_ps((const float *)p);
}

// o[r] = (acc ? o[r] : 0) + s[r] for r < nr (<= 4).
AVX2 static INLINE void store4(float *o, __m128 s, int nr, bool acc) {
    if (nr == 4) {
        _mm_storeu_ps(o, acc ? _mm_add_ps(_mm_loadu_ps(o), s) : s);
        return;
    }
    for (int r = 0; r < nr; r++) {
        o[r] = acc ? o[r] + _mm_cvtss_f32(s) : _mm_cvtss_f32(s);
        s = _mm_shuffle_ps(s, s, _MM_SHUFFLE(0, 3, 2, 1));
    }
}

// The four horizontal sums of a, b, c, d.
AVX2 static INLINE __m128 hsum4_256(__m256 a, __m256 b, __m256 c, __m256 d) {
    __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
    return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

AVX2 static INLINE void tile_avx2(float *out, int64_t ldo, const char *w, size_t row_bytes,
                                  int nr, const float *x, int64_t ldx, const int nt, int64_t k0,
                                  int64_t k1, bool acc, const enum g4_dtype dt) {
    const size_t es = dt == G4_DTYPE_F32 ? 4 : 2;
    const char *wr[MR];
    for (int r = 0; r < MR; r++) wr[r] = w + (size_t)(r < nr ? r : nr - 1) * row_bytes + k0 * es;
    const float *xr = x + k0;
    __m256 a[MR][2];
    UNROLL for (int r = 0; r < MR; r++)
        UNROLL for (int t = 0; t < nt; t++) a[r][t] = _mm256_setzero_ps();
    const int64_t len = k1 - k0;
    int64_t k = 0;
#define AVX2_STEP(WP, XP, XSTRIDE)                                                               \
    do {                                                                                         \
        __m256 wv[MR];                                                                           \
        UNROLL for (int r = 0; r < MR; r++) wv[r] = load8(WP(r), dt);                          \
        UNROLL for (int t = 0; t < nt; t++) {                                                    \
            const __m256 xv = _mm256_loadu_ps((XP) + t * (XSTRIDE));                             \
            UNROLL for (int r = 0; r < MR; r++) a[r][t] = _mm256_fmadd_ps(wv[r], xv, a[r][t]);   \
        }                                                                                        \
    } while (0)
#define WROW(r) (wr[r] + k * es)
    for (; k + 8 <= len; k += 8) AVX2_STEP(WROW, xr + k, ldx);
#undef WROW
    if (k < len) {
        char wbuf[MR][32];
        float xbuf[2][8];
#define WBUF(r) (wbuf[r])
        pad_tail(&wbuf[0][0], 32, &xbuf[0][0], 8, w, row_bytes, nr, x, ldx, nt, k0 + k, len - k, es);
        AVX2_STEP(WBUF, &xbuf[0][0], 8);
#undef WBUF
    }
#undef AVX2_STEP
    UNROLL for (int t = 0; t < nt; t++)
        store4(out + t * ldo, hsum4_256(a[0][t], a[1][t], a[2][t], a[3][t]), nr, acc);
}

// Decode (one token): rows one after another, each walked by 4 independent accumulators, so
// the weights stream through in order.
AVX2 static INLINE void gemv_avx2(float *out, const char *w, size_t row_bytes, int nr,
                                  const float *x, int64_t k0, int64_t k1, bool acc,
                                  const enum g4_dtype dt) {
    const size_t es = dt == G4_DTYPE_F32 ? 4 : 2;
    const int64_t len = k1 - k0;
    for (int r = 0; r < nr; r++) {
        const char *wr = w + (size_t)r * row_bytes + k0 * es;
        const float *xr = x + k0;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int64_t k = 0;
        for (; k + 32 <= len; k += 32) {
            a0 = _mm256_fmadd_ps(load8(wr + k * es, dt), _mm256_loadu_ps(xr + k), a0);
            a1 = _mm256_fmadd_ps(load8(wr + (k + 8) * es, dt), _mm256_loadu_ps(xr + k + 8), a1);
            a2 = _mm256_fmadd_ps(load8(wr + (k + 16) * es, dt), _mm256_loadu_ps(xr + k + 16), a2);
            a3 = _mm256_fmadd_ps(load8(wr + (k + 24) * es, dt), _mm256_loadu_ps(xr + k + 24), a3);
        }
        for (; k + 8 <= len; k += 8)
            a0 = _mm256_fmadd_ps(load8(wr + k * es, dt), _mm256_loadu_ps(xr + k), a0);
        const __m256 a = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
        float s = _mm_cvtss_f32(hsum4_256(a, a, a, a));
        if (k < len) {
            float tail[8];
            g4_to_f32(tail, wr + k * es, dt, (size_t)(len - k));
            for (int64_t i = 0; i < len - k; i++) s += tail[i] * xr[k + i];
        }
        out[r] = acc ? out[r] + s : s;
    }
}

#define AVX2_TILE(NAME, DT)                                                                      \
    AVX2 static void NAME(float *out, int64_t ldo, const char *w, size_t row_bytes, int nr,     \
                          const void *x, int64_t ldx, int nt, int64_t k0, int64_t k1,           \
                          bool acc) {                                                            \
        if (nt == 2) tile_avx2(out, ldo, w, row_bytes, nr, x, ldx, 2, k0, k1, acc, DT);          \
        else gemv_avx2(out, w, row_bytes, nr, x, k0, k1, acc, DT);                               \
    }
AVX2_TILE(tile_avx2_f32, G4_DTYPE_F32)
AVX2_TILE(tile_avx2_bf16, G4_DTYPE_BF16)
AVX2_TILE(tile_avx2_f16, G4_DTYPE_F16)

static const struct kernel kernel_avx2 = {tile_avx2_f32, tile_avx2_bf16, tile_avx2_f16, 2, true};

// --- AVX-512: 16 columns per vector, MR x 6 accumulators (+ 4 weights + 1 x of 32 zmm).

AVX512 static INLINE __m512 load16(const char *p, enum g4_dtype dt) {
    if (dt == G4_DTYPE_BF16)
        return _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
    if (dt == G4_DTYPE_F16) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
    return _mm512_loadu_ps((const float *)p);
}

AVX512 static INLINE __m256 fold512(__m512 v) {
    return _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
}

AVX512 static INLINE void tile_avx512(float *out, int64_t ldo, const char *w, size_t row_bytes,
                                      int nr, const float *x, int64_t ldx, const int nt,
                                      int64_t k0, int64_t k1, bool acc, const enum g4_dtype dt) {
    const size_t es = dt == G4_DTYPE_F32 ? 4 : 2;
    const char *wr[MR];
    for (int r = 0; r < MR; r++) wr[r] = w + (size_t)(r < nr ? r : nr - 1) * row_bytes + k0 * es;
    const float *xr = x + k0;
    __m512 a[MR][6];
    UNROLL for (int r = 0; r < MR; r++)
        UNROLL for (int t = 0; t < nt; t++) a[r][t] = _mm512_setzero_ps();
    const int64_t len = k1 - k0;
    int64_t k = 0;
#define AVX512_STEP(WP, XP, XSTRIDE)                                                             \
    do {                                                                                         \
        __m512 wv[MR];                                                                           \
        UNROLL for (int r = 0; r < MR; r++) wv[r] = load16(WP(r), dt);                         \
        UNROLL for (int t = 0; t < nt; t++) {                                                    \
            const __m512 xv = _mm512_loadu_ps((XP) + t * (XSTRIDE));                             \
            UNROLL for (int r = 0; r < MR; r++) a[r][t] = _mm512_fmadd_ps(wv[r], xv, a[r][t]);   \
        }                                                                                        \
    } while (0)
#define WROW(r) (wr[r] + k * es)
    for (; k + 16 <= len; k += 16) AVX512_STEP(WROW, xr + k, ldx);
#undef WROW
    if (k < len) {
        char wbuf[MR][64];
        float xbuf[6][16];
#define WBUF(r) (wbuf[r])
        pad_tail(&wbuf[0][0], 64, &xbuf[0][0], 16, w, row_bytes, nr, x, ldx, nt, k0 + k, len - k, es);
        AVX512_STEP(WBUF, &xbuf[0][0], 16);
#undef WBUF
    }
#undef AVX512_STEP
    UNROLL for (int t = 0; t < nt; t++)
        store4(out + t * ldo,
               hsum4_256(fold512(a[0][t]), fold512(a[1][t]), fold512(a[2][t]), fold512(a[3][t])),
               nr, acc);
}

// Decode (one token): rows one after another, each walked by 4 independent accumulators, so
// the weights stream through in order. Only while x stays in L1 beside the stream: measured on
// Zen 4 (one thread, 400 MB of bf16 rows), ~22-25 GB/s with 6-8 KB of x, 16 at 16 KB, 12.5 at
// 24 KB (down_proj, 6144 columns). Longer rows go through gemv8_avx512.
AVX512 static INLINE void gemv_avx512(float *out, const char *w, size_t row_bytes, int nr,
                                      const float *x, int64_t k0, int64_t k1, bool acc,
                                      const enum g4_dtype dt) {
    const size_t es = dt == G4_DTYPE_F32 ? 4 : 2;
    const int64_t len = k1 - k0;
    for (int r = 0; r < nr; r++) {
        const char *wr = w + (size_t)r * row_bytes + k0 * es;
        const float *xr = x + k0;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int64_t k = 0;
        for (; k + 64 <= len; k += 64) {
            a0 = _mm512_fmadd_ps(load16(wr + k * es, dt), _mm512_loadu_ps(xr + k), a0);
            a1 = _mm512_fmadd_ps(load16(wr + (k + 16) * es, dt), _mm512_loadu_ps(xr + k + 16), a1);
            a2 = _mm512_fmadd_ps(load16(wr + (k + 32) * es, dt), _mm512_loadu_ps(xr + k + 32), a2);
            a3 = _mm512_fmadd_ps(load16(wr + (k + 48) * es, dt), _mm512_loadu_ps(xr + k + 48), a3);
        }
        for (; k + 16 <= len; k += 16)
            a0 = _mm512_fmadd_ps(load16(wr + k * es, dt), _mm512_loadu_ps(xr + k), a0);
        float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
        if (k < len) {
            float tail[16];
            g4_to_f32(tail, wr + k * es, dt, (size_t)(len - k));
            for (int64_t i = 0; i < len - k; i++) s += tail[i] * xr[k + i];
        }
        out[r] = acc ? out[r] + s : s;
    }
}

// Decode over rows longer than GEMV_MAX_K: 8 rows at a time, so each x vector loaded serves 8
// rows (8 weight streams; on short rows that many streams cost more than they save: 16 GB/s vs
// 22 at 1536 columns, but 21.6-23.4 vs 12.5 at 6144-12288). Leftover rows: the 4-row tile.
AVX512 static INLINE void gemv8_avx512(float *out, int64_t ldo, const char *w, size_t row_bytes,
                                       int nr, const float *x, int64_t k0, int64_t k1, bool acc,
                                       const enum g4_dtype dt) {
    const size_t es = dt == G4_DTYPE_F32 ? 4 : 2;
    const int64_t len = k1 - k0, pf = decode_prefetch;
    int r = 0;
    for (; r + 8 <= nr; r += 8) {
        const char *wr = w + (size_t)r * row_bytes + k0 * es;
        const float *xr = x + k0;
        __m512 a[8];
        UNROLL for (int i = 0; i < 8; i++) a[i] = _mm512_setzero_ps();
        int64_t k = 0;
        if (pf) // one prefetch per row and cache line of bf16/f16 weights (two of f32)
            for (; k + 32 <= len; k += 32) {
                const __m512 xv0 = _mm512_loadu_ps(xr + k), xv1 = _mm512_loadu_ps(xr + k + 16);
                UNROLL for (int i = 0; i < 8; i++) {
                    const char *p = wr + i * row_bytes + k * es;
                    _mm_prefetch(p + pf, _MM_HINT_T0);
                    if (es == 4) _mm_prefetch(p + pf + 64, _MM_HINT_T0);
                    a[i] = _mm512_fmadd_ps(load16(p, dt), xv0, a[i]);
                    a[i] = _mm512_fmadd_ps(load16(p + 16 * es, dt), xv1, a[i]);
                }
            }
        for (; k + 16 <= len; k += 16) {
            const __m512 xv = _mm512_loadu_ps(xr + k);
            UNROLL for (int i = 0; i < 8; i++)
                a[i] = _mm512_fmadd_ps(load16(wr + i * row_bytes + k * es, dt), xv, a[i]);
        }
        for (int i = 0; i < 8; i++) {
            float s = _mm512_reduce_add_ps(a[i]);
            if (k < len) {
                float tail[16];
                g4_to_f32(tail, wr + i * row_bytes + k * es, dt, (size_t)(len - k));
                for (int64_t c = 0; c < len - k; c++) s += tail[c] * xr[k + c];
            }
            out[r + i] = acc ? out[r + i] + s : s;
        }
    }
    for (; r < nr; r += MR)
        tile_avx512(out + r, ldo, w + (size_t)r * row_bytes, row_bytes, nr - r < MR ? nr - r : MR, x,
                    0, 1, k0, k1, acc, dt);
}

#define AVX512_TILE(NAME, DT)                                                                    \
    AVX512 static void NAME(float *out, int64_t ldo, const char *w, size_t row_bytes, int nr,   \
                            const void *x, int64_t ldx, int nt, int64_t k0, int64_t k1,         \
                            bool acc) {                                                          \
        switch (nt) {                                                                            \
        case 6: tile_avx512(out, ldo, w, row_bytes, nr, x, ldx, 6, k0, k1, acc, DT); break;     \
        case 5: tile_avx512(out, ldo, w, row_bytes, nr, x, ldx, 5, k0, k1, acc, DT); break;     \
        case 4: tile_avx512(out, ldo, w, row_bytes, nr, x, ldx, 4, k0, k1, acc, DT); break;     \
        case 3: tile_avx512(out, ldo, w, row_bytes, nr, x, ldx, 3, k0, k1, acc, DT); break;     \
        case 2: tile_avx512(out, ldo, w, row_bytes, nr, x, ldx, 2, k0, k1, acc, DT); break;     \
        default:                                                                                 \
            if (k1 - k0 <= gemv_max_k) gemv_avx512(out, w, row_bytes, nr, x, k0, k1, acc, DT);  \
            else gemv8_avx512(out, ldo, w, row_bytes, nr, x, k0, k1, acc, DT);                  \
            break;                                                                               \
        }                                                                                        \
    }
AVX512_TILE(tile_avx512_f32, G4_DTYPE_F32)
AVX512_TILE(tile_avx512_bf16, G4_DTYPE_BF16)
AVX512_TILE(tile_avx512_f16, G4_DTYPE_F16)

static const struct kernel kernel_avx512 = {tile_avx512_f32, tile_avx512_bf16, tile_avx512_f16,
                                            6, true};

// --- AVX512_BF16: bf16 weights x bf16 activations (GEMMA4_PRECISION_BF16). VDPBF16PS
// multiplies 32 bf16 pairs exactly and adds them into 16 fp32 lanes: twice the MACs of an FMA
// per instruction, and no conversion of the weights. Same MR x 6 tile and reductions as above,
// 32 columns per step.

#define AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma,f16c")))

AVX512BF16 static INLINE __m512bh load32bh(const void *p) {
    return (__m512bh)_mm512_loadu_si512(p);
}

AVX512BF16 static INLINE void tile_avx512bf16(float *out, int64_t ldo, const char *w,
                                              size_t row_bytes, int nr, const uint16_t *x,
                                              int64_t ldx, const int nt, int64_t k0, int64_t k1,
                                              bool acc) {
    const char *wr[MR];
    for (int r = 0; r < MR; r++) wr[r] = w + (size_t)(r < nr ? r : nr - 1) * row_bytes + k0 * 2;
    const uint16_t *xr = x + k0;
    __m512 a[MR][6];
    UNROLL for (int r = 0; r < MR; r++)
        UNROLL for (int t = 0; t < nt; t++) a[r][t] = _mm512_setzero_ps();
    const int64_t len = k1 - k0;
    int64_t k = 0;
#define BF16_STEP(WP, XP, XSTRIDE)                                                               \
    do {                                                                                         \
        __m512bh wv[MR];                                                                         \
        UNROLL for (int r = 0; r < MR; r++) wv[r] = load32bh(WP(r));                           \
        UNROLL for (int t = 0; t < nt; t++) {                                                    \
            const __m512bh xv = load32bh((XP) + t * (XSTRIDE));                                  \
            UNROLL for (int r = 0; r < MR; r++) a[r][t] = _mm512_dpbf16_ps(a[r][t], wv[r], xv);  \
        }                                                                                        \
    } while (0)
#define WROW(r) (wr[r] + k * 2)
    for (; k + 32 <= len; k += 32) BF16_STEP(WROW, xr + k, ldx);
#undef WROW
    if (k < len) { // zero-padded copies of the last columns
        uint16_t wbuf[MR][32] = {{0}}, xbuf[6][32] = {{0}};
        for (int r = 0; r < MR; r++)
            memcpy(wbuf[r], wr[r] + k * 2, (size_t)(len - k) * 2);
        for (int t = 0; t < nt; t++) memcpy(xbuf[t], xr + t * ldx + k, (size_t)(len - k) * 2);
#define WBUF(r) (wbuf[r])
        BF16_STEP(WBUF, &xbuf[0][0], 32);
#undef WBUF
    }
#undef BF16_STEP
    UNROLL for (int t = 0; t < nt; t++)
        store4(out + t * ldo,
               hsum4_256(fold512(a[0][t]), fold512(a[1][t]), fold512(a[2][t]), fold512(a[3][t])),
               nr, acc);
}

// One token (decode): rows one after another with 4 accumulators, as gemv_avx512. bf16 x is half
// the bytes of fp32 x, so it stays in L1 beside the weight stream up to twice the row length.
AVX512BF16 static INLINE void gemv_avx512bf16(float *out, const char *w, size_t row_bytes, int nr,
                                              const uint16_t *x, int64_t k0, int64_t k1, bool acc) {
    const int64_t len = k1 - k0;
    const uint16_t *xr = x + k0;
    for (int r = 0; r < nr; r++) {
        const char *wr = w + (size_t)r * row_bytes + k0 * 2;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int64_t k = 0;
        for (; k + 128 <= len; k += 128) {
            a0 = _mm512_dpbf16_ps(a0, load32bh(wr + k * 2), load32bh(xr + k));
            a1 = _mm512_dpbf16_ps(a1, load32bh(wr + (k + 32) * 2), load32bh(xr + k + 32));
            a2 = _mm512_dpbf16_ps(a2, load32bh(wr + (k + 64) * 2), load32bh(xr + k + 64));
            a3 = _mm512_dpbf16_ps(a3, load32bh(wr + (k + 96) * 2), load32bh(xr + k + 96));
        }
        for (; k + 32 <= len; k += 32) a0 = _mm512_dpbf16_ps(a0, load32bh(wr + k * 2), load32bh(xr + k));
        if (k < len) {
            uint16_t wbuf[32] = {0}, xbuf[32] = {0};
            memcpy(wbuf, wr + k * 2, (size_t)(len - k) * 2);
            memcpy(xbuf, xr + k, (size_t)(len - k) * 2);
            a1 = _mm512_dpbf16_ps(a1, load32bh(wbuf), load32bh(xbuf));
        }
        const float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
        out[r] = acc ? out[r] + s : s;
    }
}

// One token, 8 rows at a time with a software prefetch per row and cache line (decode_prefetch
// bytes ahead): the Intel decode kernel (see decode_tuning). Leftover rows: the 4-row tile.
AVX512BF16 static INLINE void gemv8_avx512bf16(float *out, int64_t ldo, const char *w,
                                               size_t row_bytes, int nr, const uint16_t *x,
                                               int64_t k0, int64_t k1, bool acc) {
    const int64_t len = k1 - k0, pf = decode_prefetch;
    const uint16_t *xr = x + k0;
    int r = 0;
    for (; r + 8 <= nr; r += 8) {
        const char *wr = w + (size_t)r * row_bytes + k0 * 2;
        __m512 a[8];
        UNROLL for (int i = 0; i < 8; i++) a[i] = _mm512_setzero_ps();
        int64_t k = 0;
        for (; k + 32 <= len; k += 32) {
            const __m512bh xv = load32bh(xr + k);
            UNROLL for (int i = 0; i < 8; i++) {
                const char *p = wr + i * row_bytes + k * 2;
                if (pf) _mm_prefetch(p + pf, _MM_HINT_T0);
                a[i] = _mm512_dpbf16_ps(a[i], load32bh(p), xv);
            }
        }
        if (k < len) {
            uint16_t xbuf[32] = {0};
            memcpy(xbuf, xr + k, (size_t)(len - k) * 2);
            for (int i = 0; i < 8; i++) {
                uint16_t wbuf[32] = {0};
                memcpy(wbuf, wr + i * row_bytes + k * 2, (size_t)(len - k) * 2);
                a[i] = _mm512_dpbf16_ps(a[i], load32bh(wbuf), load32bh(xbuf));
            }
        }
        for (int i = 0; i < 8; i++) {
            const float s = _mm512_reduce_add_ps(a[i]);
            out[r + i] = acc ? out[r + i] + s : s;
        }
    }
    for (; r < nr; r += MR)
        tile_avx512bf16(out + r, ldo, w + (size_t)r * row_bytes, row_bytes, nr - r < MR ? nr - r : MR,
                        x, 0, 1, k0, k1, acc);
}

AVX512BF16 static void tile_bf16act(float *out, int64_t ldo, const char *w, size_t row_bytes,
                                    int nr, const void *x, int64_t ldx, int nt, int64_t k0,
                                    int64_t k1, bool acc) {
    switch (nt) {
    case 6: tile_avx512bf16(out, ldo, w, row_bytes, nr, x, ldx, 6, k0, k1, acc); break;
    case 5: tile_avx512bf16(out, ldo, w, row_bytes, nr, x, ldx, 5, k0, k1, acc); break;
    case 4: tile_avx512bf16(out, ldo, w, row_bytes, nr, x, ldx, 4, k0, k1, acc); break;
    case 3: tile_avx512bf16(out, ldo, w, row_bytes, nr, x, ldx, 3, k0, k1, acc); break;
    case 2: tile_avx512bf16(out, ldo, w, row_bytes, nr, x, ldx, 2, k0, k1, acc); break;
    default:
        if (decode_prefetch) {
            gemv8_avx512bf16(out, ldo, w, row_bytes, nr, x, k0, k1, acc);
        } else if (k1 - k0 <= 2 * gemv_max_k) {
            gemv_avx512bf16(out, w, row_bytes, nr, x, k0, k1, acc);
        } else {
            for (int r = 0; r < nr; r += MR)
                tile_avx512bf16(out + r, ldo, w + (size_t)r * row_bytes, row_bytes,
                                nr - r < MR ? nr - r : MR, x, ldx, 1, k0, k1, acc);
        }
        break;
    }
}

// Rounds n floats to bf16 bits, to nearest even (NaN stays NaN), as g4_bf16_round below.
AVX512 static void round_bf16_avx512(uint16_t *dst, const float *src, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512i u = _mm512_loadu_si512(src + i);
        const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
        __m512i r = _mm512_srli_epi32(
            _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
        const __mmask16 nan = _mm512_cmpgt_epu32_mask(
            _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
        r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
        _mm256_storeu_si256((__m256i *)(dst + i), _mm512_cvtepi32_epi16(r));
    }
    for (; i < n; i++) dst[i] = g4_bf16_round(src[i]);
}
// --- AMX-BF16 (Sapphire Rapids and later): prompts in GEMMA4_PRECISION_BF16. TDPBF16PS multiplies
// a 16 x 32 bf16 tile by a 32 x 16 one into 16 x 16 fp32 sums (512 products per instruction; about
// 16x VDPBF16PS's rate per core, measured ~1.4 TMAC/s on one core here). A tiles are 16 weight
// rows x 32 columns loaded straight from the matrix (stride row_bytes); B tiles are 16 tokens of
// the activations, rounded to bf16 and packed once per call in VNNI order (column pairs of one
// token side by side: a 16 x 16 transpose of 32-bit pairs). Each C tile is 16 rows x 16 tokens.
// Same products as the VDPBF16PS tile (exact bf16 x bf16, fp32 sums, denormals as zero); only the
// summation order differs. Needs the kernel's permission for the tile state (Linux
// ARCH_REQ_XCOMP_PERM), asked once; without it the VDPBF16PS tile runs.
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#define HAVE_AMX 1
#define AMX __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma,f16c")))

enum { AMX_MIN_TOKENS = 16 };

static bool amx_supported(void) {
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, NULL) < 7) return false;
    __cpuid_count(7, 0, a, b, c, d);
    if (!(d >> 22 & 1) || !(d >> 24 & 1)) return false; // AMX-BF16, AMX-TILE
    return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0;
}

struct amx_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
};

// Packed activations: group g (tokens 16g..16g+15, missing ones zero), K step s (columns
// 32s..32s+31, zero past K): one 1 KB B tile at xp + (g * ks + s) * 256, row kp = columns
// 32s + 2kp, +1 of each token. planes 3 (the exact fp32 path): x = hi + mid + lo, three bf16
// values whose sum is x exactly (hi and mid truncated, so each remainder fits the next 8 bits
// of x's 24), one packed plane each, groups * ks * 256 words apart; the products of each plane
// with bf16 weights are exact, so only fp32 summation differs from the FMA tiles.
struct amx_pack_job {
    uint32_t *xp;
    const float *x;
    int n, planes;
    int64_t k, ks;
};

// 16 floats -> bf16 planes: planes 1 rounds to nearest even; planes 3 splits exactly (non-finite
// values: all in hi).
AVX512 static void amx_split16(uint16_t *hi, uint16_t *mid, uint16_t *lo, const float *src, int planes) {
    if (planes == 1) {
        round_bf16_avx512(hi, src, 16);
        return;
    }
    const __m512i u = _mm512_loadu_si512(src), top = _mm512_set1_epi32((int)0xffff0000u);
    const __m512i h = _mm512_and_si512(u, top);
    const __m512 r1 = _mm512_sub_ps(_mm512_castsi512_ps(u), _mm512_castsi512_ps(h));
    const __m512i m = _mm512_and_si512(_mm512_castps_si512(r1), top);
    const __m512 r2 = _mm512_sub_ps(r1, _mm512_castsi512_ps(m));
    const __mmask16 fin = _mm512_cmpneq_epi32_mask(
        _mm512_and_si512(u, _mm512_set1_epi32(0x7f800000)), _mm512_set1_epi32(0x7f800000));
    float r2f[16];
    _mm512_storeu_ps(r2f, r2);
    _mm256_storeu_si256((__m256i *)hi, _mm512_cvtepi32_epi16(_mm512_srli_epi32(h, 16)));
    _mm256_storeu_si256((__m256i *)mid, _mm512_cvtepi32_epi16(_mm512_maskz_srli_epi32(fin, m, 16)));
    round_bf16_avx512(lo, r2f, 16);
    for (int i = 0; i < 16; i++)
        if (!(fin >> i & 1)) lo[i] = 0;
}

AVX512 static void amx_pack_part(void *arg, int part, int n_parts) {
    const struct amx_pack_job *j = arg;
    const int groups = (j->n + 15) / 16;
    const size_t plane = (size_t)groups * j->ks * 256;
    enum { CH = 1024 }; // columns per chunk (even, a multiple of 16)
    uint16_t row[3][CH];
    float tmp[16];
    for (int g = groups * part / n_parts; g < groups * (part + 1) / n_parts; g++) {
        for (int t = 0; t < 16; t++) {
            const int tok = g * 16 + t;
            for (int64_t c0 = 0; c0 < j->ks * 32; c0 += CH) {
                const int64_t nc = j->ks * 32 - c0 < CH ? j->ks * 32 - c0 : CH;
                const int64_t nv = tok < j->n ? (j->k - c0 < nc ? j->k - c0 : nc) : 0;
                for (int64_t c = 0; c < nc; c += 16) {
                    const int64_t m = nv - c >= 16 ? 16 : nv - c > 0 ? nv - c : 0;
                    memset(tmp, 0, sizeof tmp);
                    if (m > 0) memcpy(tmp, j->x + (size_t)tok * j->k + c0 + c, (size_t)m * 4);
                    amx_split16(row[0] + c, row[1] + c, row[2] + c, tmp, j->planes);
                }
                for (int pl = 0; pl < j->planes; pl++) {
                    uint32_t pair[CH / 2];
                    memcpy(pair, row[pl], (size_t)nc * 2);
                    uint32_t *dst = j->xp + pl * plane + (size_t)g * j->ks * 256;
                    for (int64_t q = 0; q < nc / 2; q++) {
                        const int64_t qq = c0 / 2 + q; // column pair index
                        dst[(qq / 16) * 256 + (qq % 16) * 16 + t] = pair[q];
                    }
                }
            }
        }
    }
}

struct amx_job {
    float *out;
    int64_t ldo;
    const uint32_t *xp;
    const char *w;
    size_t row_bytes;
    int64_t rows, k, ks;
    int n, tb_groups; // tokens, token groups per block (their B tiles stay in L2)
    int planes;       // bf16 planes of the activations (1, or 3 for the exact fp32 split)
};

// Rows r..r+15 (nr of them valid), K step s, into tile register T: straight from the matrix when
// all 16 rows and 32 columns exist, else from a zero-padded copy.
#define AMX_LOAD_A(T, r, nr, s)                                                                  \
    do {                                                                                         \
        const char *src_ = j->w + (size_t)(r) * j->row_bytes + (size_t)(s) * 64;                 \
        if ((nr) == 16 && ((s) + 1) * 32 <= j->k) {                                              \
            _tile_loadd(T, src_, (long)j->row_bytes);                                            \
        } else {                                                                                 \
            uint16_t abuf_[16][32];                                                              \
            memset(abuf_, 0, sizeof abuf_);                                                      \
            const int64_t nc_ = j->k - (s) * 32 < 32 ? j->k - (s) * 32 : 32;                     \
            for (int i_ = 0; i_ < (nr); i_++) memcpy(abuf_[i_], src_ + i_ * j->row_bytes, (size_t)nc_ * 2); \
            _tile_loadd(T, abuf_, 64);                                                           \
        }                                                                                        \
    } while (0)

// C tile (16 rows x 16 tokens) -> out rows r.., tokens 16g..
AMX static void amx_store(const struct amx_job *j, const float *c, int64_t r, int nr, int g) {
    const int nt = j->n - g * 16 < 16 ? j->n - g * 16 : 16;
    for (int t = 0; t < nt; t++) {
        float *o = j->out + (size_t)(g * 16 + t) * j->ldo + r;
        for (int i = 0; i < nr; i++) o[i] = c[i * 16 + t];
    }
}

// Row tiles (16 rows) split across the parts. Per block of tb_groups token groups, pairs of row
// tiles meet pairs of token groups: 4 C tiles (tmm0-3), 2 A (tmm4, 5), 2 B (tmm6, 7).
AMX static void amx_part(void *arg, int part, int n_parts) {
    const struct amx_job *j = arg;
    const int64_t n_rt = (j->rows + 15) / 16;
    const int64_t rt0 = n_rt * part / n_parts, rt1 = n_rt * (part + 1) / n_parts;
    if (rt1 <= rt0) return;
    struct amx_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 8; i++) cfg.colsb[i] = 64, cfg.rows[i] = 16;
    _tile_loadconfig(&cfg);
    const int groups = (j->n + 15) / 16;
    float c[4][256];
    for (int b0 = 0; b0 < groups; b0 += j->tb_groups) {
        const int b1 = groups - b0 < j->tb_groups ? groups : b0 + j->tb_groups;
        for (int64_t rt = rt0; rt < rt1; rt += 2) {
            const int two_r = rt + 1 < rt1;
            const int64_t r = rt * 16;
            const int nr0 = j->rows - r < 16 ? (int)(j->rows - r) : 16;
            const int nr1 = two_r ? (j->rows - r - 16 < 16 ? (int)(j->rows - r - 16) : 16) : 0;
            for (int g = b0; g < b1; g += 2) {
                const int two_g = g + 1 < b1;
                const uint32_t *bp0 = j->xp + (size_t)g * j->ks * 256, *bp1 = bp0 + j->ks * 256;
                _tile_zero(0);
                _tile_zero(1);
                _tile_zero(2);
                _tile_zero(3);
                const size_t plane = (size_t)groups * j->ks * 256;
                for (int64_t s = 0; s < j->ks; s++) {
                    AMX_LOAD_A(4, r, nr0, s);
                    if (two_r) AMX_LOAD_A(5, r + 16, nr1, s);
                    for (int pl = 0; pl < j->planes; pl++) {
                        _tile_loadd(6, bp0 + pl * plane + s * 256, 64);
                        _tile_dpbf16ps(0, 4, 6);
                        if (two_r) _tile_dpbf16ps(2, 5, 6);
                        if (two_g) {
                            _tile_loadd(7, bp1 + pl * plane + s * 256, 64);
                            _tile_dpbf16ps(1, 4, 7);
                            if (two_r) _tile_dpbf16ps(3, 5, 7);
                        }
                    }
                }
                _tile_stored(0, c[0], 64);
                amx_store(j, c[0], r, nr0, g);
                if (two_g) {
                    _tile_stored(1, c[1], 64);
                    amx_store(j, c[1], r, nr0, g + 1);
                }
                if (two_r) {
                    _tile_stored(2, c[2], 64);
                    amx_store(j, c[2], r + 16, nr1, g);
                    if (two_g) {
                        _tile_stored(3, c[3], 64);
                        amx_store(j, c[3], r + 16, nr1, g + 1);
                    }
                }
            }
        }
    }
    _tile_release(); // no tile state left for context switches to save
}
#undef AMX_LOAD_A
#endif
#endif

// --- instruction set choice

static _Atomic int isa_limit = G4_ISA_AVX512BF16;

// Data (or unified) cache size of one core at level 1, 2 or 3 in bytes, from CPUID's cache
// descriptors (leaf 4 on Intel, 0x8000001D on AMD: the same format); 0 when unknown. The decode
// and prompt blocking derive from it, so one binary suits Zen 4 (32 KB L1d, 1 MB L2) and recent
// Xeons (48 KB, 2 MB).
static int64_t cache_bytes(int level) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    const unsigned max = __get_cpuid_max(0, NULL);
    unsigned leaf = 4;
    if (__get_cpuid_max(0x80000000u, NULL) >= 0x8000001Du) {
        __cpuid(0, a, b, c, d);
        if (b == 0x68747541u) leaf = 0x8000001Du; // "Auth"enticAMD
    }
    if (leaf == 4 && max < 4) return 0;
    for (unsigned i = 0; i < 16; i++) {
        __cpuid_count(leaf, i, a, b, c, d);
        const unsigned type = a & 31, lvl = a >> 5 & 7;
        if (type == 0) break;
        if (lvl == (unsigned)level && (type == 1 || type == 3)) // data or unified
            return (int64_t)((b >> 22) + 1) * ((b >> 12 & 0x3ff) + 1) * ((b & 0xfff) + 1) * ((int64_t)c + 1);
    }
#endif
    (void)level;
    return 0;
}

// Decode kernels per CPU family (GEMVs are bound by how many cache-line misses one core keeps in
// flight). Zen 4 (measured there, see docs/performance.md): one row at a time while the fp32 x
// (4 bytes per column) takes at most 3/8 of L1d (3072 columns of its 32 KB), 8 rows beyond, no
// software prefetch. Intel cores (measured on a Xeon with 48 KB L1d / 2 MB L2, one thread, 400+ MB
// of bf16 rows): one row streams 7.4-7.9 GB/s at 1536-6144 columns, 8 rows with a prefetch 512
// bytes ahead per row 9.0-11.1, close to a plain read loop (9.2-9.6): 8 rows with prefetch for
// every shape.
static void decode_tuning(void) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    __cpuid(0, a, b, c, d);
    const bool intel = b == 0x756e6547u; // "Genu"ineIntel
    const int64_t l1 = cache_bytes(1);
    if (intel) {
        gemv_max_k = 0;
        decode_prefetch = 512;
    } else if (l1 > 0) {
        gemv_max_k = (int)(l1 * 3 / 8 / 4);
    }
#endif
}

static enum g4_isa cpu_isa(void) {
#if defined(__x86_64__) || defined(__i386__)
    static _Atomic int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        int isa = G4_ISA_PORTABLE;
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
            __builtin_cpu_supports("f16c")) {
            isa = G4_ISA_AVX2;
            if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
                isa = G4_ISA_AVX512;
                if (__builtin_cpu_supports("avx512vnni")) {
                    isa = G4_ISA_AVX512VNNI;
                    if (__builtin_cpu_supports("avx512bf16")) isa = G4_ISA_AVX512BF16;
                }
            }
        }
        decode_tuning();
        cached = isa;
    }
    return (enum g4_isa)cached;
#else
    return G4_ISA_PORTABLE;
#endif
}

enum g4_isa g4_matmul_isa(void) {
    const int isa = cpu_isa(), limit = isa_limit;
    return (enum g4_isa)(isa < limit ? isa : limit);
}

void g4_matmul_limit_isa(enum g4_isa max) { isa_limit = max; }

static _Atomic bool amx_allowed = true;

void g4_matmul_allow_amx(bool allow) { amx_allowed = allow; }

// AMX-BF16 tiles usable here (CPU has them, the kernel granted the tile state) and allowed.
static bool use_amx(void) {
#ifdef HAVE_AMX
    static _Atomic int cached = -1;
    if (cached < 0) cached = cpu_isa() == G4_ISA_AVX512BF16 && amx_supported(); // not the limit of the moment
    return cached == 1 && amx_allowed && g4_matmul_isa() == G4_ISA_AVX512BF16;
#else
    return false;
#endif
}

bool g4_matmul_has_amx(void) { return use_amx(); }

static const struct kernel *kernel_for(enum g4_isa isa) {
#if defined(__x86_64__) || defined(__i386__)
    if (isa >= G4_ISA_AVX512) return &kernel_avx512;
    if (isa == G4_ISA_AVX2) return &kernel_avx2;
#endif
    (void)isa;
    return &kernel_portable;
}

// --- driver

struct matmul_job {
    float *out;
    int64_t ldo;
    const char *x;
    int64_t ldx;
    size_t x_es; // bytes per activation: 4 (fp32) or 2 (bf16 bits)
    const char *w;
    size_t row_bytes;
    int64_t rows, K;
    int n;
    tile_fn tile;
    int mt;
    int64_t kc, tb;     // K slice and token block of prefill
    bool gemv_all_rows; // one token: a single tile call over the part's rows
    enum g4_dtype wq;   // a block type: w holds it, and tile is the fp32 tile (see quant_part)
    g4_quant_dequant_fn deq; // its row dequantizer
    g4_quant_gemv_fn gemv;   // one token against its rows, dequantized in registers (or NULL)
};

// Block-quantized weights on the exact path: each MR-row x KC-column slice of the part's rows is
// dequantized once per token block into an fp32 buffer (32 KB, in L1/L2), which the fp32 tile
// then meets with every token of the block; the weights stay quantized in memory and stream
// once per token block. KC is a multiple of every block size, so slices start on blocks.
static void quant_part(const struct matmul_job *j, int64_t row0, int64_t row1) {
    if (j->n == 1 && j->gemv) {
        if (row1 > row0)
            j->gemv(j->out + row0, (const uint8_t *)j->w + (size_t)row0 * j->row_bytes, j->row_bytes,
                    (int)(row1 - row0), (const float *)j->x, j->K);
        return;
    }
    float wbuf[MR * KC];
    const int64_t K = j->K;
    for (int64_t k0 = 0; k0 < K; k0 += KC) {
        const int64_t k1 = K - k0 < KC ? K : k0 + KC, nk = k1 - k0;
        const size_t off = g4_dtype_row_bytes(j->wq, k0);
        for (int b0 = 0; b0 < j->n; b0 += j->tb) {
            const int b1 = j->n - b0 < j->tb ? j->n : b0 + (int)j->tb;
            for (int64_t r = row0; r < row1; r += MR) {
                const int nr = row1 - r < MR ? (int)(row1 - r) : MR;
                for (int i = 0; i < nr; i++)
                    j->deq(wbuf + i * nk, (const uint8_t *)j->w + (size_t)(r + i) * j->row_bytes + off, nk);
                for (int t = b0; t < b1; t += j->mt) {
                    const int nt = b1 - t < j->mt ? b1 - t : j->mt;
                    j->tile(j->out + (size_t)t * j->ldo + r, j->ldo, (const char *)wbuf,
                            (size_t)nk * sizeof(float), nr,
                            (const float *)j->x + (size_t)t * j->ldx + k0, j->ldx, nt, 0, nk,
                            k0 > 0);
                }
            }
        }
    }
}

static void matmul_part(void *arg, int part, int n_parts) {
    const struct matmul_job *j = arg;
    const int64_t K = j->K, rows = j->rows, n_tiles = (rows + MR - 1) / MR;
    const int64_t row0 = n_tiles * part / n_parts * MR;
    const int64_t row1_raw = n_tiles * (part + 1) / n_parts * MR;
    const int64_t row1 = row1_raw < rows ? row1_raw : rows;
    if (G4_DTYPE_IS_QUANT(j->wq)) {
        quant_part(j, row0, row1);
        return;
    }
    if (j->n == 1 && j->gemv_all_rows) {
        if (row1 > row0)
            j->tile(j->out + row0, j->ldo, j->w + (size_t)row0 * j->row_bytes, j->row_bytes,
                    (int)(row1 - row0), j->x, j->ldx, 1, 0, K, false);
        return;
    }
    const int64_t kc = j->n <= j->mt ? K : j->kc;
    for (int64_t k0 = 0; k0 < K; k0 += kc) {
        const int64_t k1 = K - k0 < kc ? K : k0 + kc;
        for (int b0 = 0; b0 < j->n; b0 += j->tb) {
            const int b1 = j->n - b0 < j->tb ? j->n : b0 + (int)j->tb;
            for (int64_t r = row0; r < row1; r += MR) {
                const int nr = row1 - r < MR ? (int)(row1 - r) : MR;
                for (int t = b0; t < b1; t += j->mt) {
                    const int nt = b1 - t < j->mt ? b1 - t : j->mt;
                    j->tile(j->out + (size_t)t * j->ldo + r, j->ldo, j->w + (size_t)r * j->row_bytes,
                            j->row_bytes, nr, j->x + (size_t)t * j->ldx * j->x_es, j->ldx, nt,
                            k0, k1, k0 > 0);
                }
            }
        }
    }
}

static tile_fn tile_for(const struct kernel *k, enum g4_dtype dt) {
    return dt == G4_DTYPE_BF16 ? k->bf16 : dt == G4_DTYPE_F16 ? k->f16 : k->f32;
}

void g4_matmul_cpu(float *out, const float *x, struct g4_weight w, int n_tokens,
                   struct g4_pool *pool) {
    if (n_tokens <= 0 || w.rows <= 0) return;
    if (w.cols <= 0) {
        memset(out, 0, (size_t)n_tokens * w.rows * sizeof(float));
        return;
    }
    const struct kernel *k = kernel_for(g4_matmul_isa());
    const bool quant = G4_DTYPE_IS_QUANT(w.dtype);
    struct matmul_job job = {out, w.rows, (const char *)x, w.cols, 4, w.data,
                             g4_dtype_row_bytes(w.dtype, w.cols), w.rows, w.cols,
                             n_tokens, tile_for(k, quant ? G4_DTYPE_F32 : w.dtype), k->mt, KC, TB,
                             k->gemv_all_rows, quant ? w.dtype : G4_DTYPE_F32,
                             g4_quant_dequant_for(w.dtype, g4_matmul_isa()),
                             g4_quant_gemv_for(w.dtype, g4_matmul_isa())};
    // Small products are not worth waking the workers.
    if ((double)w.rows * w.cols * n_tokens < 1 << 15) pool = NULL;
    g4_pool_run(pool, matmul_part, &job);
}

void g4_matmul_rows_f32(float *out, int64_t ldo, const float *x, int64_t ldx, int n,
                        const float *rows, int64_t row_stride, int64_t n_rows, int64_t k) {
    if (n <= 0 || n_rows <= 0) return;
    const struct kernel *kn = kernel_for(g4_matmul_isa());
    if (k <= 0) {
        for (int t = 0; t < n; t++) memset(out + t * ldo, 0, (size_t)n_rows * sizeof(float));
        return;
    }
    struct matmul_job job = {out, ldo, (const char *)x, ldx, 4, (const char *)rows,
                             (size_t)row_stride * sizeof(float), n_rows, k, n, kn->f32, kn->mt,
                             KC, TB, kn->gemv_all_rows, G4_DTYPE_F32, NULL, NULL};
    matmul_part(&job, 0, 1);
}

uint16_t g4_bf16_round(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); // quiet NaN
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

#ifdef HAVE_AMX
// out = x @ w^T on AMX tiles (w bf16), x packed into scratch as `planes` bf16 planes
// (G4_AMX_SCRATCH_BYTES).
static void amx_matmul(float *out, const float *x, struct g4_weight w, int n_tokens,
                       struct g4_pool *pool, void *scratch, int planes) {
    const int64_t ks = (w.cols + 31) / 32;
    struct amx_pack_job pj = {scratch, x, n_tokens, planes, w.cols, ks};
    g4_pool_run(pool, amx_pack_part, &pj);
    // token groups per block: their packed tiles (groups * planes * ks KB) take half of L2, so
    // they stay there while every row tile of the part passes
    const int64_t l2 = cache_bytes(2) > 0 ? cache_bytes(2) : 1 << 20;
    int64_t tbg = l2 / 2 / (16 * ks * 64 * planes);
    tbg = tbg < 2 ? 2 : tbg > 1 << 20 ? 1 << 20 : tbg & ~(int64_t)1;
    struct amx_job job = {out, w.rows, scratch, w.data, (size_t)w.cols * 2, w.rows, w.cols, ks,
                          n_tokens, (int)tbg, planes};
    g4_pool_run(pool, amx_part, &job);
}
#endif

void g4_matmul_cpu_scratch(float *out, const float *x, struct g4_weight w, int n_tokens,
                           struct g4_pool *pool, void *scratch, size_t scratch_bytes) {
#ifdef HAVE_AMX
    if (w.dtype == G4_DTYPE_BF16 && n_tokens >= AMX_MIN_TOKENS && w.rows > 0 && w.cols > 0 &&
        scratch_bytes >= G4_AMX_SCRATCH_BYTES(n_tokens, w.cols) && use_amx()) {
        amx_matmul(out, x, w, n_tokens, pool, scratch, 3);
        return;
    }
#endif
    (void)scratch, (void)scratch_bytes;
    g4_matmul_cpu(out, x, w, n_tokens, pool);
}

void g4_matmul_cpu_bf16act(float *out, const float *x, struct g4_weight w, int n_tokens,
                           struct g4_pool *pool, void *scratch) {
    if (w.dtype != G4_DTYPE_BF16 || n_tokens <= 0 || w.rows <= 0 || w.cols <= 0) {
        g4_matmul_cpu(out, x, w, n_tokens, pool);
        return;
    }
    const size_t n = (size_t)n_tokens * w.cols;
#if defined(__x86_64__) || defined(__i386__)
    if (g4_matmul_isa() == G4_ISA_AVX512BF16) {
        // Token rows of the rounded copy are G4_BF16ACT_LD(cols) apart: a multiple of 64 bytes
        // plus one line, so the 6 rows a tile reads never fall into the same L1 set (with 6144
        // columns they would be 12 KB apart, a multiple of 4 KB).
#ifdef HAVE_AMX
        if (n_tokens >= AMX_MIN_TOKENS && use_amx()) {
            amx_matmul(out, x, w, n_tokens, pool, scratch, 1);
            return;
        }
#endif
        uint16_t *xb = scratch;
        const int64_t ld = G4_BF16ACT_LD(w.cols);
        for (int t = 0; t < n_tokens; t++)
            round_bf16_avx512(xb + t * ld, x + (size_t)t * w.cols, (size_t)w.cols);
        struct matmul_job job = {out, w.rows, (const char *)xb, ld, 2, w.data,
                                 (size_t)w.cols * 2, w.rows, w.cols, n_tokens, tile_bf16act, 6,
                                 KC, 2 * TB, true, G4_DTYPE_F32, NULL, NULL}; // bf16 block: the same bytes as an fp32 one
        if ((double)w.rows * w.cols * n_tokens < 1 << 15) pool = NULL;
        g4_pool_run(pool, matmul_part, &job);
        return;
    }
#endif
    // Without VDPBF16PS: the same rounded activations, as floats, through the fp32 kernels
    // (exact products either way; only the summation order differs).
    float *xr = scratch;
    for (size_t i = 0; i < n; i++) {
        const uint32_t u = (uint32_t)g4_bf16_round(x[i]) << 16;
        memcpy(&xr[i], &u, 4);
    }
    g4_matmul_cpu(out, xr, w, n_tokens, pool);
}

// --- GEMMA4_PRECISION_BF16 on block-quantized weights: 8-bit activations, integer dot products

struct quant_job {
    void *xq;
    const float *x;
    enum g4_quant_act_type type;
    int n;
    int64_t k;
    bool int_rows; // 8-bit rows (quant_act.h); else the values q * d as floats
};

// From this many tokens on, the 8-bit activations go through the exact path's fp32 tiles as the
// values q * d: the same products up to fp32 rounding, and faster than integer dot products once
// each dequantized weight slice serves several tokens (the integer kernels rescale every 32
// values and unpack the weights again for each token).
enum { Q8_FP32_MIN_TOKENS = 4 };

static void quantize_part(void *arg, int part, int n_parts) {
    const struct quant_job *j = arg;
    const int t0 = (int)((int64_t)j->n * part / n_parts), t1 = (int)((int64_t)j->n * (part + 1) / n_parts);
    if (t1 <= t0) return;
    if (!j->int_rows)
        g4_quant_act_round_rows((float *)j->xq + (size_t)t0 * j->k, j->type, j->x + (size_t)t0 * j->k,
                                j->k, t1 - t0, j->k);
    else
        g4_quant_act_rows((uint8_t *)j->xq + (size_t)t0 * G4_QUANT_ACT_LD(j->k), j->type,
                          j->x + (size_t)t0 * j->k, j->k, t1 - t0, j->k);
}

// With AMX-INT8 (quant_amx.h) the prompt's 8-bit rows go through tiles: packed after the rows.
static uint8_t *amx_packed(const void *xq, struct g4_weight w, int n_tokens) {
    const uintptr_t end = (uintptr_t)xq + (size_t)n_tokens * (size_t)G4_QUANT_ACT_LD(w.cols);
    return (uint8_t *)((end + 63) & ~(uintptr_t)63);
}

void g4_matmul_quantize(void *xq, const float *x, struct g4_weight w, int n_tokens,
                        struct g4_pool *pool) {
    struct quant_job job = {xq, x, g4_quant_act_type_for(w.dtype), n_tokens, w.cols, true};
    if (job.type == G4_QUANT_ACT_NONE || n_tokens <= 0) return;
    job.int_rows = n_tokens < Q8_FP32_MIN_TOKENS || g4_quant_amx_usable(w.dtype, w.cols, n_tokens);
    g4_pool_run(n_tokens >= 8 ? pool : NULL, quantize_part, &job);
    if (n_tokens >= Q8_FP32_MIN_TOKENS && job.int_rows)
        g4_quant_amx_pack(amx_packed(xq, w, n_tokens), xq, w.dtype, w.cols, n_tokens, pool);
}

enum { QR = 8, QTB = 64 }; // rows per tile (their weights stay in L1/L2), tokens per block

struct q8_job {
    float *out;
    const uint8_t *xq, *w;
    size_t row_bytes;
    int64_t rows, k, ldq;
    int n;
    g4_quant_dot_fn dot;
};

// Rows split across the parts; one token: each row once, end to end (streaming). More tokens:
// QR-row tiles meet every token of a QTB-token block (activation rows in L2).
static void q8_part(void *arg, int part, int n_parts) {
    const struct q8_job *j = arg;
    const int64_t n_tiles = (j->rows + QR - 1) / QR;
    const int64_t row0 = n_tiles * part / n_parts * QR;
    const int64_t row1_raw = n_tiles * (part + 1) / n_parts * QR;
    const int64_t row1 = row1_raw < j->rows ? row1_raw : j->rows;
    if (row1 <= row0) return;
    if (j->n == 1) {
        j->dot(j->out + row0, j->w + (size_t)row0 * j->row_bytes, j->row_bytes, (int)(row1 - row0),
               j->xq, j->k);
        return;
    }
    for (int b0 = 0; b0 < j->n; b0 += QTB) {
        const int b1 = j->n - b0 < QTB ? j->n : b0 + QTB;
        for (int64_t r = row0; r < row1; r += QR) {
            const int nr = row1 - r < QR ? (int)(row1 - r) : QR;
            for (int t = b0; t < b1; t++)
                j->dot(j->out + (size_t)t * j->rows + r, j->w + (size_t)r * j->row_bytes,
                       j->row_bytes, nr, j->xq + (size_t)t * j->ldq, j->k);
        }
    }
}

void g4_matmul_cpu_q8(float *out, const void *xq, struct g4_weight w, int n_tokens,
                      struct g4_pool *pool) {
    if (n_tokens <= 0 || w.rows <= 0) return;
    if (w.cols <= 0) {
        memset(out, 0, (size_t)n_tokens * w.rows * sizeof(float));
        return;
    }
    if (g4_quant_amx_usable(w.dtype, w.cols, n_tokens)) {
        g4_quant_amx_matmul(out, amx_packed(xq, w, n_tokens), w.data, w.dtype, w.rows, w.cols, n_tokens, pool);
        return;
    }
    if (n_tokens >= Q8_FP32_MIN_TOKENS) {
        g4_matmul_cpu(out, xq, w, n_tokens, pool);
        return;
    }
    struct q8_job job = {out, xq, w.data, g4_dtype_row_bytes(w.dtype, w.cols), w.rows, w.cols,
                         G4_QUANT_ACT_LD(w.cols), n_tokens,
                         g4_quant_dot_for(w.dtype, g4_matmul_isa())};
    if ((double)w.rows * w.cols * n_tokens < 1 << 15) pool = NULL;
    g4_pool_run(pool, q8_part, &job);
}

void g4_matmul_cpu_q8act(float *out, const float *x, struct g4_weight w, int n_tokens,
                         struct g4_pool *pool, void *scratch) {
    if (!G4_DTYPE_IS_QUANT(w.dtype)) {
        g4_matmul_cpu_bf16act(out, x, w, n_tokens, pool, scratch);
        return;
    }
    g4_matmul_quantize(scratch, x, w, n_tokens, pool);
    g4_matmul_cpu_q8(out, scratch, w, n_tokens, pool);
}
