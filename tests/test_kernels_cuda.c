// Every CUDA kernel launcher (kernels/cuda/kernels.h) against its CPU reference (kernels/cpu/ops_cpu.h,
// core/kv_cache.h, the production code, not a copy) on seeded random inputs of awkward sizes:
// rows and dims that are not multiples of a block or tile, 1/7/33/130 tokens, head dims 16 to 512
// (and 30, which is not a multiple of 8), sliding windows at positions W-1, W, W+1, ring
// wrap-around and prefill chunks longer than the window, forced flash-decoding splits, GQA
// groups 1 to 8. Outputs are poisoned with NaN before the launch (an unwritten element fails)
// and surrounded by guard bytes (a write outside fails). GEMMs, gathers and copies use small
// integers and must match bit for bit; everything else has a named tolerance. Activations and
// K/V are fp32 on the device as on the CPU, so the tolerances are fp32 ones.
// Without a CUDA device (or a CUDA build) the program prints "skipped: no CUDA device" and exits
// with 77, which ctest reports as skipped (SKIP_RETURN_CODE in tests/CMakeLists.txt).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#ifndef G4_WITH_CUDA
int main(void) {
    printf("skipped: no CUDA device (this build has no CUDA engine)\n");
    return 77;
}
#else

#include "cuda_skip.h"
#include "kernels.h"
#include "kv_cache.h"
#include "matmul_cpu.h"
#include "ops_cpu.h"
#include "threadpool.h"

// fp32 on both sides, different summation order and rsqrtf / powf / expf: a few ulp, relative to
// the largest element.
#define TOL_FP32 2e-5
// GEMM of random floats: the bf16 hi + lo split leaves ~2^-18 |x| per input, plus fp32
// accumulation order over up to 1000 terms.
#define TOL_SPLIT 2e-5
// RoPE at positions near 131072: fp32 sin/cos of angles ~1e5 rad agree to a few ulp of the
// argument reduction; relative to the largest element.
#define TOL_ROPE 5e-5
// The BF16 MoE chain rounds an fp32 intermediate (gelu(gate) * up) to bf16: where the two
// engines' fp32 sums differ by an ulp near a rounding boundary, that element differs by one bf16
// ulp (2^-8 relative), which moves the output by up to ~3e-4 of its largest element (measured on
// the small cases). The stages themselves are checked at TOL_FP32 on identical inputs, where
// not rounding is 2e-3 away.
#define TOL_BF16_CHAIN 1e-3

#define GUARD 256
#define GUARD_BYTE 0xA5

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static float frand(void) { // uniform in [-1, 1)
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / (1 << 24))) * 2.0f - 1.0f;
}
static int irand(int n) { // uniform in [0, n)
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (int)((rng >> 33) % (uint64_t)n);
}

static uint16_t to_bf16(float f) { // round to nearest even, as the device does
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
static float from_bf16(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// n bf16 values scale * U[-1, 1): bits in h, their exact fp32 values in f (f may be NULL).
static void fill_bf16(uint16_t *h, float *f, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) {
        h[i] = to_bf16(frand() * scale);
        if (f) f[i] = from_bf16(h[i]);
    }
}
static void fill_f32(float *f, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) f[i] = frand() * scale;
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    assert_non_null(p);
    return p;
}

// ---- device buffers with guard bytes ---------------------------------------------------------
struct dbuf {
    unsigned char *base;
    void *p;
    size_t bytes;
};

static void *dnew(struct dbuf *b, size_t bytes) {
    b->bytes = bytes;
    assert_int_equal(cudaMalloc((void **)&b->base, bytes + 2 * GUARD), cudaSuccess);
    assert_int_equal(cudaMemset(b->base, GUARD_BYTE, GUARD), cudaSuccess);
    assert_int_equal(cudaMemset(b->base + GUARD, 0xFF, bytes), cudaSuccess); // NaN poison
    assert_int_equal(cudaMemset(b->base + GUARD + bytes, GUARD_BYTE, GUARD), cudaSuccess);
    b->p = b->base + GUARD;
    return b->p;
}

static void *dput(struct dbuf *b, const void *h, size_t bytes) {
    dnew(b, bytes);
    assert_int_equal(cudaMemcpy(b->p, h, bytes, cudaMemcpyHostToDevice), cudaSuccess);
    return b->p;
}

static void dget(void *h, const struct dbuf *b) {
    assert_int_equal(cudaDeviceSynchronize(), cudaSuccess);
    assert_int_equal(cudaMemcpy(h, b->p, b->bytes, cudaMemcpyDeviceToHost), cudaSuccess);
}

// Checks the guards and frees.
static void dfree(struct dbuf *b) {
    if (!b->base) return;
    unsigned char g[2 * GUARD];
    assert_int_equal(cudaDeviceSynchronize(), cudaSuccess);
    assert_int_equal(cudaMemcpy(g, b->base, GUARD, cudaMemcpyDeviceToHost), cudaSuccess);
    assert_int_equal(cudaMemcpy(g + GUARD, b->base + GUARD + b->bytes, GUARD, cudaMemcpyDeviceToHost),
                     cudaSuccess);
    for (int i = 0; i < 2 * GUARD; i++)
        if (g[i] != GUARD_BYTE) {
            print_error("guard byte %d %s the buffer overwritten (0x%02x)\n",
                        i < GUARD ? GUARD - i : i - GUARD, i < GUARD ? "before" : "after", g[i]);
            fail();
        }
    assert_int_equal(cudaFree(b->base), cudaSuccess);
    memset(b, 0, sizeof *b);
}

static void expect_ok(g4_status st) {
    if (st != G4_OK) print_error("launcher failed: %s\n", g4_last_error());
    assert_int_equal(st, G4_OK);
    assert_int_equal(cudaDeviceSynchronize(), cudaSuccess);
}

static void expect_close(const float *got, const float *ref, size_t n, double tol, const char *what) {
    assert_true(g4_compare_rel(got, ref, n, tol, what) <= tol);
}

static void expect_exact(const float *got, const float *ref, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(&got[i], &ref[i], sizeof(float)) != 0) {
            print_error("%s: [%zu] got %.9g, want %.9g (bit-exact)\n", what, i, got[i], ref[i]);
            fail();
        }
    printf("%-56s n=%zu bit-exact\n", what, n);
}

// The device step state (kernels.h) of a step of n tokens at pos0.
static struct g4_cuda_step *dstep(struct dbuf *b, int64_t pos0, int n) {
    const struct g4_cuda_step st = {pos0, n, 0};
    return dput(b, &st, sizeof st);
}

// ---- gemm.cu ---------------------------------------------------------------------------------
// Both paths of the wrapper: one GEMM over hi and lo with the fold (scratch large enough), and
// two accumulating GEMMs (no fold scratch). Small integers are exact in hi (lo = 0) and in any
// summation order, so those results must be bit-exact; random floats test the split.
static void test_matmul(void **state) {
    (void)state;
    static const struct { int n, rows, cols; } cases[] = {
        {1, 1000, 1000}, {7, 333, 256}, {130, 97, 1000}, {3, 5, 7}, {33, 1, 129}, {8, 262, 64}};
    cublasHandle_t blas;
    assert_int_equal(cublasCreate(&blas), CUBLAS_STATUS_SUCCESS);
    assert_int_equal(cublasSetStream(blas, NULL), CUBLAS_STATUS_SUCCESS);
    for (size_t c = 0; c < G4_COUNT(cases); c++)
        for (int ints = 0; ints < 2; ints++)
            for (int mode = 0; mode < 3; mode++) { // two GEMMs, GEMM + fold, bf16 activations
                const int n = cases[c].n, R = cases[c].rows, C = cases[c].cols;
                const bool fold = mode == 1, bf16 = mode == 2;
                uint16_t *wh = xmalloc((size_t)R * C * 2);
                float *x = xmalloc((size_t)n * C * 4), *ref = xmalloc((size_t)n * R * 4),
                      *got = xmalloc((size_t)n * R * 4);
                for (int i = 0; i < n * C; i++) x[i] = ints ? (float)(irand(9) - 4) : frand() * 3.0f;
                for (int i = 0; i < R * C; i++)
                    wh[i] = to_bf16(ints ? (float)(irand(7) - 3) : frand() * 0.5f);
                struct g4_weight w = {wh, G4_DTYPE_BF16, R, C};
                float *bscr = xmalloc((size_t)n * G4_BF16ACT_LD(C) * 4);
                if (bf16) g4_matmul_cpu_bf16act(ref, x, w, n, NULL, bscr);
                else g4_matmul_cpu(ref, x, w, n, NULL);
                free(bscr);
                struct dbuf dx, dw, dout, dsplit, dout2;
                dput(&dx, x, (size_t)n * C * 4);
                dput(&dw, wh, (size_t)R * C * 2);
                dnew(&dout, (size_t)n * R * 4);
                struct g4_cuda_gemm_scratch scr = {dnew(&dsplit, (size_t)2 * n * C * 2),
                                                   (size_t)2 * n * C, NULL, 0};
                memset(&dout2, 0, sizeof dout2);
                if (fold) {
                    scr.out2 = dnew(&dout2, (size_t)2 * n * R * 4);
                    scr.out2_floats = (size_t)2 * n * R;
                }
                expect_ok(g4_cuda_matmul(blas, dout.p, dx.p, dw.p, n, R, C, bf16, &scr, NULL));
                dget(got, &dout);
                char what[112];
                snprintf(what, sizeof what, "matmul %s %s n=%d rows=%d cols=%d",
                         ints ? "integers" : "floats",
                         bf16 ? "bf16 activations" : fold ? "one GEMM + fold" : "two GEMMs", n, R, C);
                if (ints) expect_exact(got, ref, (size_t)n * R, what);
                else expect_close(got, ref, (size_t)n * R, TOL_SPLIT, what);
                dfree(&dx), dfree(&dw), dfree(&dout), dfree(&dsplit), dfree(&dout2);
                free(wh), free(x), free(ref), free(got);
            }
    struct g4_cuda_gemm_scratch none = {NULL, 0, NULL, 0};
    assert_int_equal(g4_cuda_matmul(blas, NULL, NULL, NULL, 0, 1, 1, false, &none, NULL),
                     G4_ERR_INVALID_ARGUMENT);
    assert_int_equal(g4_cuda_matmul(blas, NULL, NULL, NULL, 1, 1, 1, false, &none, NULL),
                     G4_ERR_INVALID_ARGUMENT); // no split scratch
    cublasDestroy(blas);
}

// ---- gemv.cu ---------------------------------------------------------------------------------
// The decode GEMV against the CPU products (g4_matmul_cpu for FP32, g4_matmul_cpu_bf16act for
// BF16) and, for the fused epilogues, against the unfused composition on the CPU (product, then
// g4_gelu_tanh_cpu and the multiply). Both sides compute the same exact products (bf16 weight
// times fp32 or bf16-rounded activation) and differ by fp32 summation order only, so the
// tolerance is TOL_FP32 relative to the largest element. Shapes: cols below one warp step
// (24), not a multiple of the 256-column step (1000, 1544: a partial step and, at 8 tokens, a
// second staged chunk of 520), above the 8192-column chunk of one token (8200), row counts that
// leave partial warps and blocks (5, 97, 133, 4099); token counts 1..8; the automatic
// split (132 SMs: split-K on the small matrices; 2 SMs: 8 row groups per block) and forced
// splits of 3 and 7 (uneven column ranges, multiples of 8). Every case runs on the same
// scratch, so a split counter that is not rearmed fails the next case.
static void gemv_reference(float *ref, const float *x, const uint16_t *wh, int n, int rows, int cols,
                           bool bf16, enum g4_cuda_epilogue epi, const float *ple, int n_layers,
                           int layer) {
    struct g4_weight w = {wh, G4_DTYPE_BF16, rows, cols};
    float *y = xmalloc((size_t)n * rows * 4), *scr = xmalloc((size_t)n * G4_BF16ACT_LD(cols) * 4);
    if (bf16) g4_matmul_cpu_bf16act(y, x, w, n, NULL, scr);
    else g4_matmul_cpu(y, x, w, n, NULL);
    const int d = epi == G4_CUDA_EPI_GELU_MUL ? rows / 2 : rows;
    for (int t = 0; t < n; t++)
        for (int i = 0; i < d; i++) {
            float g = y[(size_t)t * rows + i];
            if (epi == G4_CUDA_EPI_NONE) {
                ref[(size_t)t * d + i] = g;
                continue;
            }
            g4_gelu_tanh_cpu(&g, 1);
            ref[(size_t)t * d + i] = epi == G4_CUDA_EPI_GELU_MUL
                                         ? g * y[(size_t)t * rows + d + i]
                                         : g * ple[((size_t)t * n_layers + layer) * d + i];
        }
    free(y), free(scr);
}

struct gemv_scratch_buf {
    struct dbuf part, cnt;
    struct g4_cuda_gemv_scratch scr;
};
static void gemv_scratch_new(struct gemv_scratch_buf *b) {
    b->scr.partial = dnew(&b->part, G4_CUDA_GEMV_PARTIAL_FLOATS * 4);
    b->scr.partial_floats = G4_CUDA_GEMV_PARTIAL_FLOATS;
    b->scr.counters = dnew(&b->cnt, G4_CUDA_GEMV_COUNTERS * sizeof(unsigned));
    assert_int_equal(cudaMemset(b->scr.counters, 0, G4_CUDA_GEMV_COUNTERS * sizeof(unsigned)), cudaSuccess);
    b->scr.n_counters = G4_CUDA_GEMV_COUNTERS;
    b->scr.n_sms = 132;
}

// One product through g4_cuda_gemv (splits >= 0) or g4_cuda_linear (splits < 0) against the CPU.
static void gemv_case(struct gemv_scratch_buf *sb, cublasHandle_t blas, int n, int rows, int cols,
                      bool bf16, enum g4_cuda_epilogue epi, int splits, int n_sms) {
    const int L = 3, layer = 1, d = epi == G4_CUDA_EPI_GELU_MUL ? rows / 2 : rows;
    uint16_t *wh = xmalloc((size_t)rows * cols * 2);
    float *x = xmalloc((size_t)n * cols * 4), *ple = xmalloc((size_t)n * L * d * 4);
    float *ref = xmalloc((size_t)n * d * 4), *got = xmalloc((size_t)n * d * 4);
    fill_f32(x, (size_t)n * cols, 3.0f);
    fill_bf16(wh, NULL, (size_t)rows * cols, 0.5f);
    fill_f32(ple, (size_t)n * L * d, 1.0f);
    gemv_reference(ref, x, wh, n, rows, cols, bf16, epi, ple, L, layer);
    struct dbuf dx, dw, dple, dout, dtmp, dsplit;
    dput(&dx, x, (size_t)n * cols * 4);
    dput(&dw, wh, (size_t)rows * cols * 2);
    dput(&dple, ple, (size_t)n * L * d * 4);
    dnew(&dout, (size_t)n * d * 4);
    sb->scr.n_sms = n_sms;
    char what[128];
    static const char *epi_name[] = {"", " gelu(gate)*up", " ple gate"};
    if (splits >= 0) {
        expect_ok(g4_cuda_gemv(dout.p, dx.p, dw.p, n, rows, cols, bf16, epi, dple.p, L, layer, splits,
                               &sb->scr, NULL));
        snprintf(what, sizeof what, "gemv%s %s n=%d %dx%d splits %d%s", epi_name[epi],
                 bf16 ? "bf16" : "fp32", n, rows, cols, splits, n_sms == 132 ? "" : " (2 SMs)");
        memset(&dtmp, 0, sizeof dtmp), memset(&dsplit, 0, sizeof dsplit);
    } else {
        struct g4_cuda_linear_ctx ctx = {blas, NULL, {dnew(&dsplit, (size_t)2 * n * cols * 2), (size_t)2 * n * cols,
                                                      NULL, 0}, sb->scr};
        dnew(&dtmp, (size_t)n * rows * 4);
        expect_ok(g4_cuda_linear(&ctx, dout.p, dx.p, dw.p, n, rows, cols, bf16, epi, dple.p, L, layer,
                                 dtmp.p));
        snprintf(what, sizeof what, "linear (%s)%s %s n=%d %dx%d",
                 g4_cuda_gemv_supported(dx.p, dw.p, n, cols) ? "gemv" : "gemm + epilogue kernel",
                 epi_name[epi], bf16 ? "bf16" : "fp32", n, rows, cols);
    }
    dget(got, &dout);
    expect_close(got, ref, (size_t)n * d, TOL_FP32, what);
    dfree(&dx), dfree(&dw), dfree(&dple), dfree(&dout), dfree(&dtmp), dfree(&dsplit);
    free(wh), free(x), free(ple), free(ref), free(got);
}

static void test_gemv(void **state) {
    (void)state;
    // every token count on the small shapes; 1, 3 and 8 tokens on the others
    static const struct { int rows, cols; bool all_n; } shapes[] = {
        {133, 1000, true}, {5, 24, true}, {97, 1544, false}, {4099, 64, false}, {40, 8200, false}};
    struct gemv_scratch_buf sb;
    gemv_scratch_new(&sb);
    for (size_t c = 0; c < G4_COUNT(shapes); c++)
        for (int n = 1; n <= G4_CUDA_GEMV_MAX_TOKENS; n++)
            for (int bf16 = 0; bf16 < 2; bf16++) {
                const int R = shapes[c].rows, C = shapes[c].cols;
                const bool some = n == 1 || n == 3 || n == 8;
                if (!shapes[c].all_n && !some) continue;
                const bool big = (size_t)R * C > 100000;
                if (R < 1000) gemv_case(&sb, NULL, n, R, C, bf16, G4_CUDA_EPI_NONE, 0, 132);
                if (some && n != 3) gemv_case(&sb, NULL, n, R, C, bf16, G4_CUDA_EPI_NONE, big ? 3 : 7, 132);
                if (R > 1000) gemv_case(&sb, NULL, n, R, C, bf16, G4_CUDA_EPI_NONE, 0, some ? 2 : 132);
            }
    dfree(&sb.part), dfree(&sb.cnt);
}

// The fused epilogues against the unfused composition: gelu_tanh(gate) * up on [gate; up]
// matrices (the MLP's gate_up: rows 2 * dim, dim odd in one case, so a warp's last output pair
// is partial) and the PLE gate gelu_tanh(x w^T) * ple[t, layer], each with one split and with
// split-K (the epilogue then runs in the last block); g4_cuda_linear on the GEMV (n <= 8) and on
// the GEMM + epilogue kernel path (9 tokens; cols 20, not a multiple of 8); and the launcher's
// refusals.
static void test_gemv_epilogue(void **state) {
    (void)state;
    static const struct { int rows, cols; } shapes[] = {{2 * 333, 256}, {2 * 9, 1544}, {256, 1536}};
    struct gemv_scratch_buf sb;
    gemv_scratch_new(&sb);
    cublasHandle_t blas;
    assert_int_equal(cublasCreate(&blas), CUBLAS_STATUS_SUCCESS);
    assert_int_equal(cublasSetStream(blas, NULL), CUBLAS_STATUS_SUCCESS);
    for (size_t c = 0; c < G4_COUNT(shapes); c++)
        for (int epi = 1; epi <= 2; epi++)
            for (int bf16 = 0; bf16 < 2; bf16++) {
                const int R = shapes[c].rows, C = shapes[c].cols;
                static const int ns[] = {1, 2, 5, 8};
                for (size_t k = 0; k < G4_COUNT(ns); k++)
                    gemv_case(&sb, blas, ns[k], R, C, bf16, (enum g4_cuda_epilogue)epi, 0, 132);
                gemv_case(&sb, blas, 3, R, C, bf16, (enum g4_cuda_epilogue)epi, 3, 132);
                gemv_case(&sb, blas, 4, R, C, bf16, (enum g4_cuda_epilogue)epi, -1, 132);
                gemv_case(&sb, blas, 9, R, C, bf16, (enum g4_cuda_epilogue)epi, -1, 132);
            }
    gemv_case(&sb, blas, 3, 2 * 7, 20, true, G4_CUDA_EPI_GELU_MUL, -1, 132);  // cols % 8: GEMM
    gemv_case(&sb, blas, 2, 10, 20, false, G4_CUDA_EPI_NONE, -1, 132);
    // refusals, each naming the constraint
    struct dbuf dx, dw, dout;
    dnew(&dx, 9 * 64 * 4), dnew(&dw, 64 * 64 * 2), dnew(&dout, 9 * 64 * 4);
    const g4_status e = G4_ERR_INVALID_ARGUMENT;
    assert_int_equal(g4_cuda_gemv(dout.p, dx.p, dw.p, 9, 64, 64, false, G4_CUDA_EPI_NONE, NULL, 0, 0, 0,
                                  &sb.scr, NULL), e);
    assert_non_null(strstr(g4_last_error(), "n_tokens 9"));
    assert_int_equal(g4_cuda_gemv(dout.p, dx.p, dw.p, 1, 64, 60, false, G4_CUDA_EPI_NONE, NULL, 0, 0, 0,
                                  &sb.scr, NULL), e);
    assert_non_null(strstr(g4_last_error(), "cols % 8 == 0 (cols 60)"));
    assert_int_equal(g4_cuda_gemv(dout.p, (const float *)dx.p + 1, dw.p, 1, 64, 64, false, G4_CUDA_EPI_NONE,
                                  NULL, 0, 0, 0, &sb.scr, NULL), e);
    assert_non_null(strstr(g4_last_error(), "aligned"));
    assert_int_equal(g4_cuda_gemv(dout.p, dx.p, dw.p, 1, 63, 64, false, G4_CUDA_EPI_GELU_MUL, NULL, 0, 0, 0,
                                  &sb.scr, NULL), e);
    assert_non_null(strstr(g4_last_error(), "even row count (63)"));
    assert_int_equal(g4_cuda_gemv(dout.p, dx.p, dw.p, 1, 64, 64, false, G4_CUDA_EPI_PLE_GATE, NULL, 3, 1, 0,
                                  &sb.scr, NULL), e);
    assert_non_null(strstr(g4_last_error(), "PLE gate"));
    struct g4_cuda_gemv_scratch small = sb.scr;
    small.partial_floats = 10;
    assert_int_equal(g4_cuda_gemv(dout.p, dx.p, dw.p, 1, 64, 64, false, G4_CUDA_EPI_NONE, NULL, 0, 0, 4,
                                  &small, NULL), e);
    assert_non_null(strstr(g4_last_error(), "partial floats"));
    dfree(&dx), dfree(&dw), dfree(&dout), dfree(&sb.part), dfree(&sb.cnt);
    cublasDestroy(blas);
}

// ---- embed.cu --------------------------------------------------------------------------------
static void test_embed(void **state) {
    (void)state;
    static const struct { int n, dim; } cases[] = {{1, 1000}, {7, 64}, {130, 257}};
    const int V = 101;
    for (size_t c = 0; c < G4_COUNT(cases); c++) {
        const int n = cases[c].n, D = cases[c].dim;
        uint16_t *table = xmalloc((size_t)V * D * 2);
        int32_t *tok = xmalloc((size_t)n * 4);
        float *ref = xmalloc((size_t)n * D * 4), *got = xmalloc((size_t)n * D * 4);
        fill_bf16(table, NULL, (size_t)V * D, 0.1f);
        for (int t = 0; t < n; t++) tok[t] = t == 0 ? V - 1 : irand(V);
        const float scale = sqrtf((float)D);
        for (int t = 0; t < n; t++) { // embed_row of forward_cpu.c
            g4_to_f32(ref + (size_t)t * D, table + (size_t)tok[t] * D, G4_DTYPE_BF16, (size_t)D);
            for (int i = 0; i < D; i++) ref[(size_t)t * D + i] *= scale;
        }
        struct dbuf dt, dtok, dx;
        dput(&dt, table, (size_t)V * D * 2);
        dput(&dtok, tok, (size_t)n * 4);
        dnew(&dx, (size_t)n * D * 4);
        expect_ok(g4_cuda_embed(dx.p, dt.p, dtok.p, n, D, scale, NULL));
        dget(got, &dx);
        char what[96];
        snprintf(what, sizeof what, "embed n=%d dim=%d", n, D);
        expect_exact(got, ref, (size_t)n * D, what);
        dfree(&dt), dfree(&dtok), dfree(&dx);
        free(table), free(tok), free(ref), free(got);
    }
}

static void test_ple_combine(void **state) {
    (void)state;
    static const struct { int n, layers, dim; } cases[] = {{1, 35, 256}, {7, 5, 257}, {130, 3, 8}};
    const int V = 50;
    const float eps = 1e-6f;
    for (size_t c = 0; c < G4_COUNT(cases); c++) {
        const int n = cases[c].n, L = cases[c].layers, P = cases[c].dim;
        const size_t N = (size_t)n * L * P;
        uint16_t *table = xmalloc((size_t)V * L * P * 2);
        float *tablef = xmalloc((size_t)V * L * P * 4), *ple = xmalloc(N * 4),
              *ref = xmalloc(N * 4), *got = xmalloc(N * 4), *w = xmalloc((size_t)P * 4);
        int32_t *tok = xmalloc((size_t)n * 4);
        fill_bf16(table, tablef, (size_t)V * L * P, 0.5f);
        fill_f32(ple, N, 3.0f);
        fill_f32(w, (size_t)P, 1.0f);
        for (int t = 0; t < n; t++) tok[t] = irand(V);
        const float proj_scale = 0.125f, tok_scale = sqrtf((float)P), mix = 0.70710678118654752f;
        // per_layer_inputs of forward_cpu.c
        for (size_t i = 0; i < N; i++) ref[i] = ple[i] * proj_scale;
        g4_rmsnorm_cpu(ref, ref, w, n * L, P, eps);
        for (int t = 0; t < n; t++)
            for (int i = 0; i < L * P; i++) {
                float *d = ref + (size_t)t * L * P + i;
                *d = (*d + tablef[(size_t)tok[t] * L * P + i] * tok_scale) * mix;
            }
        struct dbuf dt, dtok, dp, dw;
        dput(&dt, table, (size_t)V * L * P * 2);
        dput(&dtok, tok, (size_t)n * 4);
        dput(&dp, ple, N * 4);
        dput(&dw, w, (size_t)P * 4);
        expect_ok(g4_cuda_ple_combine(dp.p, dt.p, dtok.p, dw.p, n, L, P, proj_scale, tok_scale, eps,
                                      NULL));
        dget(got, &dp);
        char what[96];
        snprintf(what, sizeof what, "ple_combine n=%d layers=%d dim=%d", n, L, P);
        expect_close(got, ref, N, TOL_FP32, what);
        dfree(&dt), dfree(&dtok), dfree(&dp), dfree(&dw);
        free(table), free(tablef), free(ple), free(ref), free(got), free(w), free(tok);
    }
}

// ---- rmsnorm.cu ------------------------------------------------------------------------------
static void test_rmsnorm(void **state) {
    (void)state;
    static const struct { int rows, dim; } cases[] = {{1, 1000}, {7, 64}, {33, 2816}, {130, 257}};
    const float eps = 1e-6f;
    for (size_t c = 0; c < G4_COUNT(cases); c++) {
        const int R = cases[c].rows, D = cases[c].dim;
        const size_t N = (size_t)R * D;
        float *x = xmalloc(N * 4), *t = xmalloc(N * 4), *w = xmalloc((size_t)D * 4),
              *w2 = xmalloc((size_t)D * 4), *ref = xmalloc(N * 4), *ref2 = xmalloc(N * 4),
              *got = xmalloc(N * 4);
        fill_f32(x, N, 4.0f);
        fill_f32(t, N, 0.5f);
        fill_f32(w, (size_t)D, 2.0f);
        fill_f32(w2, (size_t)D, 2.0f);
        char what[96];
        struct dbuf dx, dt, dw, dw2, dout;
        dput(&dx, x, N * 4);
        dput(&dt, t, N * 4);
        dput(&dw, w, (size_t)D * 4);
        dput(&dw2, w2, (size_t)D * 4);
        dnew(&dout, N * 4);

        g4_rmsnorm_cpu(ref, x, NULL, R, D, eps); // no weight (V norm, router norm)
        expect_ok(g4_cuda_rmsnorm(dout.p, dx.p, NULL, R, D, eps, NULL));
        dget(got, &dout);
        snprintf(what, sizeof what, "rmsnorm no weight rows=%d dim=%d", R, D);
        expect_close(got, ref, N, TOL_FP32, what);
        g4_rmsnorm_cpu(ref, x, w, R, D, eps); // in place
        expect_ok(g4_cuda_rmsnorm(dx.p, dx.p, dw.p, R, D, eps, NULL));
        dget(got, &dx);
        snprintf(what, sizeof what, "rmsnorm in place rows=%d dim=%d", R, D);
        expect_close(got, ref, N, TOL_FP32, what);

        // add_rmsnorm: x = (x + norm(t) w) * scale, then optionally the next norm
        for (int mode = G4_CUDA_OUT_NONE; mode <= G4_CUDA_OUT_NORM; mode++) {
            const float scale = 0.77f;
            assert_int_equal(cudaMemcpy(dx.p, x, N * 4, cudaMemcpyHostToDevice), cudaSuccess);
            g4_rmsnorm_cpu(ref2, t, w, R, D, eps);
            for (size_t i = 0; i < N; i++) ref[i] = (x[i] + ref2[i]) * scale; // new x
            expect_ok(g4_cuda_add_rmsnorm(dx.p, dt.p, dw.p, scale, dout.p, dw2.p,
                                          (enum g4_cuda_out)mode, R, D, eps, NULL));
            dget(got, &dx);
            snprintf(what, sizeof what, "add_rmsnorm x rows=%d dim=%d mode=%d", R, D, mode);
            expect_close(got, ref, N, TOL_FP32, what);
            if (mode == G4_CUDA_OUT_NONE) continue;
            g4_rmsnorm_cpu(ref2, ref, w2, R, D, eps);
            dget(got, &dout);
            snprintf(what, sizeof what, "add_rmsnorm next norm rows=%d dim=%d", R, D);
            expect_close(got, ref2, N, TOL_FP32, what);
        }
        // rmsnorm_sum2: a = norm(a) w + norm(t) w2
        assert_int_equal(cudaMemcpy(dx.p, x, N * 4, cudaMemcpyHostToDevice), cudaSuccess);
        g4_rmsnorm_cpu(ref, x, w, R, D, eps);
        g4_rmsnorm_cpu(ref2, t, w2, R, D, eps);
        for (size_t i = 0; i < N; i++) ref[i] += ref2[i];
        expect_ok(g4_cuda_rmsnorm_sum2(dx.p, dw.p, dt.p, dw2.p, R, D, eps, NULL));
        dget(got, &dx);
        snprintf(what, sizeof what, "rmsnorm_sum2 rows=%d dim=%d", R, D);
        expect_close(got, ref, N, TOL_FP32, what);

        dfree(&dx), dfree(&dt), dfree(&dw), dfree(&dw2), dfree(&dout);
        free(x), free(t), free(w), free(w2), free(ref), free(ref2), free(got);
    }
    assert_int_equal(g4_cuda_add_rmsnorm(NULL, NULL, NULL, 1.0f, NULL, NULL, G4_CUDA_OUT_NORM, 1,
                                         8, 1e-6f, NULL),
                     G4_ERR_INVALID_ARGUMENT);
}

// ---- rope.cu ---------------------------------------------------------------------------------
static void test_head_norm_rope(void **state) {
    (void)state;
    static const struct {
        int n, heads, hd, pairs;
        float theta;
        int64_t pos0;
        int extra_stride, packed_out, weighted;
    } cases[] = {
        {1, 8, 512, 64, 1e6f, 131000, 0, 0, 1},  // full layer, proportional RoPE, late position
        {7, 4, 256, 128, 1e4f, 0, 96, 1, 1},     // sliding layer from a fused qkv row to a K row
        {130, 2, 16, 8, 1e4f, 5, 0, 0, 1},       // fixture-sized heads
        {33, 3, 30, 3, 1e6f, 77, 10, 1, 1},      // head_dim not a multiple of 8, partial rotation
        {7, 2, 512, 0, 1e6f, 9, 0, 1, 0},        // v_norm: no weight, no rotation
        {7, 8, 128, 64, 1e4f, 4000, 0, 0, 1},    // head_dim 128
        {3, 4, 64, 16, 1e6f, 100000, 0, 1, 1},   // head_dim 64, partial rotation
    };
    const float eps = 1e-6f;
    for (size_t c = 0; c < G4_COUNT(cases); c++) {
        const int n = cases[c].n, nh = cases[c].heads, hd = cases[c].hd;
        const int64_t row = (int64_t)nh * hd, stride = row + cases[c].extra_stride;
        const size_t N = (size_t)n * stride;
        float *src = xmalloc(N * 4), *ref = xmalloc((size_t)n * row * 4), *got = xmalloc(N * 4),
              *w = xmalloc((size_t)hd * 4), *gotc = xmalloc((size_t)n * row * 4);
        fill_f32(src, N, 3.0f);
        fill_f32(w, (size_t)hd, 1.5f);
        const float *wp = cases[c].weighted ? w : NULL;
        for (int t = 0; t < n; t++) {
            float *r = ref + (size_t)t * row;
            memcpy(r, src + (size_t)t * stride, (size_t)row * 4);
            g4_rmsnorm_cpu(r, r, wp, nh, hd, eps);
            g4_rope_cpu(r, nh, hd, cases[c].pairs, cases[c].theta, cases[c].pos0 + t);
        }
        struct dbuf ds, dw, dd, df, dst;
        dput(&ds, src, N * 4);
        dput(&dw, w, (size_t)hd * 4);
        dstep(&dst, cases[c].pos0, n);
        float freq[G4_CUDA_MAX_HEAD_DIM / 2 + 1];
        g4_cuda_rope_inv_freq(freq, cases[c].pairs, hd, cases[c].theta, 1.0f);
        dput(&df, freq, sizeof freq);
        char what[112];
        snprintf(what, sizeof what, "head_norm_rope n=%d heads=%d hd=%d pairs=%d pos0=%lld %s", n,
                 nh, hd, cases[c].pairs, (long long)cases[c].pos0,
                 cases[c].packed_out ? "to packed rows" : "in place");
        if (cases[c].packed_out) { // packed destination, like a K/V cache row
            dnew(&dd, (size_t)n * row * 4);
            const struct g4_cuda_rope_part part = {dd.p, row, ds.p, stride, wp ? dw.p : NULL, nh,
                                                   cases[c].pairs, 0, 0};
            expect_ok(g4_cuda_head_norm_rope(&part, 1, n, hd, df.p, dst.p, eps, NULL));
            dget(gotc, &dd);
            expect_close(gotc, ref, (size_t)n * row, TOL_ROPE, what);
            dfree(&dd);
        } else { // in place with the source stride (the q part of the qkv buffer)
            const struct g4_cuda_rope_part part = {ds.p, stride, ds.p, stride, wp ? dw.p : NULL,
                                                   nh, cases[c].pairs, 0, 0};
            expect_ok(g4_cuda_head_norm_rope(&part, 1, n, hd, df.p, dst.p, eps, NULL));
            dget(got, &ds);
            for (int t = 0; t < n; t++)
                memcpy(gotc + (size_t)t * row, got + (size_t)t * stride, (size_t)row * 4);
            expect_close(gotc, ref, (size_t)n * row, TOL_ROPE, what);
            for (int t = 0; t < n; t++) // the bytes between rows are untouched
                for (int64_t i = row; i < stride; i++)
                    assert_true(got[(size_t)t * stride + i] == src[(size_t)t * stride + i]);
        }
        dfree(&dst);
        dfree(&ds), dfree(&dw), dfree(&df);
        free(src), free(ref), free(got), free(w), free(gotc);
    }
    const struct g4_cuda_rope_part bad = {(float *)8, 514, (float *)8, 514, NULL, 1, 0, 0, 0};
    const struct g4_cuda_step *fake_step = (const struct g4_cuda_step *)8;
    assert_int_equal(g4_cuda_head_norm_rope(&bad, 1, 1, 514, NULL, fake_step, 1e-6f, NULL),
                     G4_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(g4_last_error(), "head_dim 514"));
}

// q, k and v of one layer in one launch (the forward's call): q in place in a fused qkv row,
// k and v into a linear K/V slot at rows pos0 + t (dst_at_pos), in fp32 or bf16. bf16 outputs
// are compared with the fp32 CPU reference within one bf16 rounding (2^-8 of the largest
// element: the device's fp32 value may round to the other neighbour at a tie-near point).
static void test_qkv_norm_rope(void **state) {
    (void)state;
    const int nh = 8, nkv = 2, hd = 256, pairs = 64;
    const float eps = 1e-6f, theta = 1e4f;
    for (int n = 1; n <= 9; n += 8)
        for (int b16 = 0; b16 < 2; b16++) {
            const int64_t pos0 = 37, W = (int64_t)(nh + 2 * nkv) * hd, row = (int64_t)nkv * hd;
            const int64_t cap = pos0 + n + 3;
            float *src = xmalloc((size_t)n * W * 4), *wq = xmalloc(hd * 4), *wk = xmalloc(hd * 4);
            fill_f32(src, (size_t)n * W, 3.0f), fill_f32(wq, hd, 1.5f), fill_f32(wk, hd, 1.5f);
            float *ref = xmalloc((size_t)n * W * 4);
            memcpy(ref, src, (size_t)n * W * 4);
            for (int t = 0; t < n; t++) {
                float *r = ref + (size_t)t * W;
                g4_rmsnorm_cpu(r, r, wq, nh, hd, eps);
                g4_rope_cpu(r, nh, hd, pairs, theta, pos0 + t);
                g4_rmsnorm_cpu(r + nh * hd, r + nh * hd, wk, nkv, hd, eps);
                g4_rope_cpu(r + nh * hd, nkv, hd, pairs, theta, pos0 + t);
                g4_rmsnorm_cpu(r + nh * hd + row, r + nh * hd + row, NULL, nkv, hd, eps);
            }
            float freq[G4_CUDA_MAX_HEAD_DIM / 2];
            g4_cuda_rope_inv_freq(freq, pairs, hd, theta, 1.0f);
            struct dbuf ds, dwq, dwk, df, dk, dv, dst;
            float *s_d = dput(&ds, src, (size_t)n * W * 4);
            dput(&dwq, wq, hd * 4), dput(&dwk, wk, hd * 4), dput(&df, freq, sizeof freq);
            const size_t esz = b16 ? 2 : 4;
            dnew(&dk, (size_t)cap * row * esz), dnew(&dv, (size_t)cap * row * esz);
            const struct g4_cuda_rope_part parts[3] = {
                {s_d, W, s_d, W, dwq.p, nh, pairs, 0, 0},
                {dk.p, row, s_d + nh * hd, W, dwk.p, nkv, pairs, b16, 1},
                {dv.p, row, s_d + nh * hd + row, W, NULL, nkv, 0, b16, 1},
            };
            expect_ok(g4_cuda_head_norm_rope(parts, 3, n, hd, df.p, dstep(&dst, pos0, n), eps, NULL));
            float *got = xmalloc((size_t)n * W * 4), *gq = xmalloc((size_t)n * nh * hd * 4);
            float *rq = xmalloc((size_t)n * nh * hd * 4), *gkv = xmalloc((size_t)n * row * 4),
                  *rkv = xmalloc((size_t)n * row * 4);
            unsigned char *hkv = xmalloc((size_t)cap * row * esz);
            dget(got, &ds);
            for (int t = 0; t < n; t++) {
                memcpy(gq + (size_t)t * nh * hd, got + (size_t)t * W, (size_t)nh * hd * 4);
                memcpy(rq + (size_t)t * nh * hd, ref + (size_t)t * W, (size_t)nh * hd * 4);
            }
            char what[96];
            snprintf(what, sizeof what, "qkv_norm_rope n=%d q in place", n);
            expect_close(gq, rq, (size_t)n * nh * hd, TOL_ROPE, what);
            for (int kv = 0; kv < 2; kv++) {
                dget(hkv, kv ? &dv : &dk);
                for (int t = 0; t < n; t++)
                    for (int64_t i = 0; i < row; i++) {
                        const size_t at = (size_t)(pos0 + t) * row + (size_t)i;
                        float v;
                        if (b16) {
                            uint16_t h;
                            memcpy(&h, hkv + at * 2, 2);
                            v = from_bf16(h);
                        } else {
                            memcpy(&v, hkv + at * 4, 4);
                        }
                        gkv[(size_t)t * row + i] = v;
                        rkv[(size_t)t * row + i] = ref[(size_t)t * W + nh * hd + kv * row + i];
                    }
                snprintf(what, sizeof what, "qkv_norm_rope n=%d %c at rows pos0+t %s", n, "KV"[kv],
                         b16 ? "bf16" : "fp32");
                expect_close(gkv, rkv, (size_t)n * row, b16 ? 1.0 / 256 : TOL_ROPE, what);
                // rows outside [pos0, pos0 + n) stay poisoned: nothing else was written
                for (int64_t r = 0; r < cap; r++) {
                    if (r >= pos0 && r < pos0 + n) continue;
                    for (size_t bI = 0; bI < (size_t)row * esz; bI++)
                        assert_int_equal(hkv[(size_t)r * row * esz + bI], 0xFF);
                }
            }
            dfree(&ds), dfree(&dwq), dfree(&dwk), dfree(&df), dfree(&dk), dfree(&dv), dfree(&dst);
            free(src), free(wq), free(wk), free(ref), free(got), free(gq), free(rq), free(gkv);
            free(rkv), free(hkv);
        }
}

// ---- attention.cu ----------------------------------------------------------------------------
struct att_case {
    int n, heads, kv_heads, hd;
    int64_t pos0;
    int window;   // 0: full attention
    int capacity; // ring capacity (== window) or 0 for a linear slot of pos0 + n rows
    int splits;   // 0: automatic
    const char *what;
    int misalign; // K/V device bases this many elements past a 16-byte boundary
    int bf16;     // K/V cache and staging in bf16 (the BF16 precision's cache)
};

static void run_attention(const struct att_case *ac) {
    const int n = ac->n, nh = ac->heads, nkv = ac->kv_heads, hd = ac->hd;
    const int64_t pos0 = ac->pos0, row = (int64_t)nkv * hd, qrow = (int64_t)nh * hd;
    const bool ring = ac->capacity > 0;
    const int64_t cap = ring ? ac->capacity : pos0 + n;
    // Cache rows (ring or linear) and the step's new rows (staging for a ring).
    const size_t ncache = (size_t)cap * row, nnew = (size_t)n * row;
    float *kc = xmalloc(ncache * 4), *vc = xmalloc(ncache * 4), *kn = xmalloc(nnew * 4),
          *vn = xmalloc(nnew * 4), *q = xmalloc((size_t)n * qrow * 4),
          *ref = xmalloc((size_t)n * qrow * 4), *got = xmalloc((size_t)n * qrow * 4),
          *scores = xmalloc((size_t)nh * (pos0 + n) * 4);
    // q.k of unit-scale entries grows with head_dim: scale so scores span a few units
    const float qs = 3.0f / sqrtf((float)hd);
    fill_f32(kc, ncache, 1.0f);
    fill_f32(vc, ncache, 1.0f);
    fill_f32(kn, nnew, 1.0f);
    fill_f32(vn, nnew, 1.0f);
    fill_f32(q, (size_t)n * qrow, qs);
    if (ac->bf16) // the reference reads the values the bf16 cache holds
        for (size_t i = 0; i < ncache; i++) kc[i] = from_bf16(to_bf16(kc[i])), vc[i] = from_bf16(to_bf16(vc[i]));
    if (ac->bf16)
        for (size_t i = 0; i < nnew; i++) kn[i] = from_bf16(to_bf16(kn[i])), vn[i] = from_bf16(to_bf16(vn[i]));
    if (!ring) { // a linear slot holds the new rows in place at pos0
        memcpy(kc + (size_t)pos0 * row, kn, nnew * 4);
        memcpy(vc + (size_t)pos0 * row, vn, nnew * 4);
    }
    struct g4_kv_view view = {kc, vc, ring ? kn : kc + pos0 * row, ring ? vn : vc + pos0 * row,
                              pos0, (int)cap, ring, nkv, hd};
    for (int t = 0; t < n; t++)
        g4_attention_cpu(ref + (size_t)t * qrow, q + (size_t)t * qrow, &view, pos0 + t, nh, 0, nh,
                         ac->window, scores);

    struct dbuf dkc, dvc, dkn, dvn, dq, dout;
    const size_t mis = (size_t)ac->misalign, esz = ac->bf16 ? 2 : 4;
    unsigned char *kcd = (unsigned char *)dnew(&dkc, (ncache + mis) * esz) + mis * esz;
    unsigned char *vcd = (unsigned char *)dnew(&dvc, (ncache + mis) * esz) + mis * esz;
    unsigned char *knd = (unsigned char *)dnew(&dkn, (nnew + mis) * esz) + mis * esz;
    unsigned char *vnd = (unsigned char *)dnew(&dvn, (nnew + mis) * esz) + mis * esz;
    const float *hsrc[4] = {kc, vc, kn, vn};
    unsigned char *ddst[4] = {kcd, vcd, knd, vnd};
    for (int b = 0; b < 4; b++) {
        const size_t ne = b < 2 ? ncache : nnew;
        if (ac->bf16) {
            uint16_t *h16 = xmalloc(ne * 2);
            for (size_t i = 0; i < ne; i++) h16[i] = to_bf16(hsrc[b][i]); // exact: already rounded
            assert_int_equal(cudaMemcpy(ddst[b], h16, ne * 2, cudaMemcpyHostToDevice), cudaSuccess);
            free(h16);
        } else {
            assert_int_equal(cudaMemcpy(ddst[b], hsrc[b], ne * 4, cudaMemcpyHostToDevice), cudaSuccess);
        }
    }
    dput(&dq, q, (size_t)n * qrow * 4);
    dnew(&dout, (size_t)n * qrow * 4);
    struct dbuf dst, dpart, dtick;
    dstep(&dst, pos0, n);
    struct g4_cuda_att_scratch scr = {0, NULL, 0, NULL, 0};
    assert_int_equal(cudaDeviceGetAttribute(&scr.n_sm, cudaDevAttrMultiProcessorCount, 0), cudaSuccess);
    const int splits = g4_cuda_attention_splits(scr.n_sm, n, nh, nkv, hd, ac->splits,
                                                &scr.part_floats, &scr.n_tickets);
    scr.part = dnew(&dpart, scr.part_floats * 4);
    scr.tickets = dnew(&dtick, scr.n_tickets * sizeof(unsigned));
    assert_int_equal(cudaMemset(scr.tickets, 0, scr.n_tickets * sizeof(unsigned)), cudaSuccess);
    // A linear slot holds the step's rows in place (no staging view), as the forward passes it.
    struct g4_cuda_kv_view dview = {kcd, vcd, ring ? knd : NULL, ring ? vnd : NULL, (int)cap,
                                    ring, ac->bf16 != 0, nkv, hd};
    expect_ok(g4_cuda_attention(dout.p, qrow, dq.p, qrow, &dview, dst.p, n, nh, ac->window,
                                ac->splits, &scr, NULL));
    // The last block of each merge resets its ticket: a second launch (a graph replay) finds
    // them zero.
    unsigned *tick = xmalloc(scr.n_tickets * sizeof(unsigned) + 1);
    dget(tick, &dtick);
    for (size_t i = 0; i < scr.n_tickets; i++) assert_int_equal(tick[i], 0);
    free(tick);
    dget(got, &dout);
    char what[200], al[64] = "";
    if (mis) snprintf(al, sizeof al, " K/V bases %zu-byte aligned", (mis * esz) & (~(mis * esz) + 1));
    snprintf(what, sizeof what, "attention %s: n=%d h=%d/%d hd=%d pos0=%lld W=%d cap=%lld split=%d%s%s",
             ac->what, n, nh, nkv, hd, (long long)pos0, ac->window, (long long)cap, splits,
             ac->bf16 ? " bf16 K/V" : "", al);
    expect_close(got, ref, (size_t)n * qrow, TOL_FP32, what);
    dfree(&dkc), dfree(&dvc), dfree(&dkn), dfree(&dvn), dfree(&dq), dfree(&dout);
    dfree(&dst), dfree(&dpart), dfree(&dtick);
    free(kc), free(vc), free(kn), free(vn), free(q), free(ref), free(got), free(scores);
}

static void test_attention(void **state) {
    (void)state;
    static const struct att_case cases[] = {
        {1, 8, 1, 512, 700, 0, 0, 0, "decode, full, hd 512, group 8", 0, 0},
        {1, 8, 1, 512, 700, 0, 0, 5, "decode, full, hd 512, 5 splits", 0, 0},
        {1, 16, 2, 512, 3000, 0, 0, 0, "decode, long context", 0, 0},
        {130, 4, 2, 256, 0, 0, 0, 0, "prefill from 0, full", 0, 0},
        {33, 16, 2, 256, 40, 0, 0, 3, "prefill chunk, group 8, 3 splits", 0, 0},
        {1, 4, 2, 256, 63, 64, 64, 0, "ring, pos W-1", 0, 0},
        {1, 4, 2, 256, 64, 64, 64, 0, "ring, pos W", 0, 0},
        {1, 4, 2, 256, 65, 64, 64, 0, "ring, pos W+1", 0, 0},
        {1, 4, 2, 256, 200, 64, 64, 4, "ring wrapped, 4 splits", 0, 0},
        {70, 4, 2, 256, 100, 64, 64, 0, "ring, chunk longer than the window", 0, 0},
        {7, 4, 2, 512, 13, 8, 8, 0, "ring, hd 512, tiny window", 0, 0},
        {7, 4, 2, 16, 13, 8, 8, 0, "fixture shapes, sliding", 0, 0},
        {130, 4, 1, 32, 5, 0, 0, 0, "fixture shapes, full", 0, 0},
        {7, 6, 3, 30, 20, 9, 9, 2, "hd 30 (8-byte tile loads), 2 splits", 0, 0},
        {9, 2, 2, 6, 3, 0, 0, 0, "hd 6, no GQA", 0, 0},
        {20, 4, 2, 256, 30, 512, 0, 0, "window larger than the context, linear slot", 0, 0},
        {9, 8, 2, 64, 40, 0, 0, 0, "hd 64, group 4", 0, 0},
        {5, 8, 4, 128, 300, 128, 128, 0, "hd 128, ring", 0, 0},
        {1, 8, 1, 128, 2000, 0, 0, 0, "decode, hd 128, long context", 0, 0},
        {7, 4, 2, 64, 13, 8, 8, 0, "misaligned K/V bases", 1, 0},
        {9, 8, 2, 128, 40, 0, 0, 2, "misaligned K/V bases", 2, 0},
        {1, 4, 2, 30, 70, 0, 0, 0, "misaligned K/V bases", 1, 0},
        // bf16 K/V (BF16 precision), decode sizes: 16-byte loads of 8 elements, narrower where
        // the bases or head_dim do not allow it; the reference reads the same rounded values,
        // so the tolerance stays fp32's
        {1, 8, 1, 512, 700, 0, 0, 0, "bf16, decode hd 512, group 8", 0, 1},
        {1, 8, 1, 256, 3000, 0, 0, 0, "bf16, decode hd 256, long context", 0, 1},
        {8, 8, 1, 256, 90, 64, 64, 0, "bf16, 8 tokens, ring wrapped", 0, 1},
        {3, 4, 2, 512, 5, 0, 0, 0, "bf16, short context: most splits empty", 0, 1},
        {1, 8, 1, 512, 6, 0, 0, 7, "bf16, 7 splits, 7 keys", 0, 1},
        {5, 4, 2, 16, 13, 8, 8, 0, "bf16, fixture shapes, sliding", 0, 1},
        {2, 4, 2, 64, 40, 0, 0, 0, "bf16, 4-byte-aligned bases", 1, 1},
        {2, 4, 2, 64, 40, 16, 16, 0, "bf16, 8-byte-aligned bases", 2, 1},
        {1, 4, 2, 30, 33, 0, 0, 0, "bf16, hd 30, 4-byte loads", 0, 1},
        {1, 2, 1, 6, 9, 4, 4, 0, "bf16, hd 6, 2-byte-aligned bases", 3, 1},
    };
    for (size_t c = 0; c < G4_COUNT(cases); c++) run_attention(&cases[c]);

    struct g4_cuda_kv_view bad = {NULL, NULL, NULL, NULL, 8, false, false, 3, 64};
    const struct g4_cuda_step *fake_step = (const struct g4_cuda_step *)8;
    assert_int_equal(g4_cuda_attention(NULL, 256, NULL, 256, &bad, fake_step, 1, 4, 0, 0, NULL, NULL),
                     G4_ERR_INVALID_ARGUMENT); // 4 heads over 3 KV heads
}

// ---- kv_cache.cu -----------------------------------------------------------------------------
static void test_kv_commit(void **state) {
    (void)state;
    static const struct { int64_t pos0; int n; } steps[] = {{0, 1}, {0, 7}, {5, 7}, {61, 3},
                                                            {100, 70}, {127, 1}, {1000, 130}};
    static const struct { int capacity, row; } rings[] = {{8, 32}, {64, 512}, {1024, 6}};
    const int n_rings = (int)G4_COUNT(rings), n_batch = 130;
    // bf16 rings: the commit copies bytes, so a bf16 row of 2R elements is the CPU's fp32 row of
    // R floats
    for (int b16 = 0; b16 < 2; b16++)
    for (size_t si = 0; si < G4_COUNT(steps); si++) {
        const int64_t pos0 = steps[si].pos0;
        const int n = steps[si].n;
        struct g4_kv_cache kv;
        memset(&kv, 0, sizeof kv);
        kv.n_slots = n_rings;
        kv.n_batch = n_batch;
        struct g4_cuda_ring hr[3];
        struct dbuf dk[3], dv[3], dsk[3], dsv[3], dr, dst;
        for (int r = 0; r < n_rings; r++) {
            const size_t nc = (size_t)rings[r].capacity * rings[r].row, ns = (size_t)n_batch * rings[r].row;
            struct g4_kv_slot *sl = &kv.slot[r];
            sl->k = xmalloc(nc * 4), sl->v = xmalloc(nc * 4);
            sl->stage_k = xmalloc(ns * 4), sl->stage_v = xmalloc(ns * 4);
            sl->capacity = rings[r].capacity;
            sl->ring = true;
            sl->n_kv_heads = 1;
            sl->head_dim = rings[r].row;
            fill_f32(sl->k, nc, 1.0f), fill_f32(sl->v, nc, 1.0f);
            fill_f32(sl->stage_k, ns, 1.0f), fill_f32(sl->stage_v, ns, 1.0f);
            hr[r].k = dput(&dk[r], sl->k, nc * 4);
            hr[r].v = dput(&dv[r], sl->v, nc * 4);
            hr[r].stage_k = dput(&dsk[r], sl->stage_k, ns * 4);
            hr[r].stage_v = dput(&dsv[r], sl->stage_v, ns * 4);
            hr[r].capacity = rings[r].capacity;
            hr[r].row = b16 ? 2 * rings[r].row : rings[r].row;
            hr[r].bf16 = b16;
            hr[r].pad = 0;
        }
        dput(&dr, hr, sizeof hr);
        g4_kv_cache_commit(&kv, pos0, n);
        expect_ok(g4_cuda_kv_commit(dr.p, n_rings, dstep(&dst, pos0, n), n, NULL));
        for (int r = 0; r < n_rings; r++) {
            const size_t nc = (size_t)rings[r].capacity * rings[r].row;
            float *gotf = xmalloc(nc * 4);
            char what[96];
            for (int kvi = 0; kvi < 2; kvi++) {
                dget(gotf, kvi ? &dv[r] : &dk[r]);
                snprintf(what, sizeof what, "kv_commit %c pos0=%lld n=%d cap=%d row=%d%s", "KV"[kvi],
                         (long long)pos0, n, rings[r].capacity, hr[r].row, b16 ? " bf16" : "");
                expect_exact(gotf, kvi ? kv.slot[r].v : kv.slot[r].k, nc, what);
            }
            free(gotf);
            dfree(&dk[r]), dfree(&dv[r]), dfree(&dsk[r]), dfree(&dsv[r]);
            free(kv.slot[r].k), free(kv.slot[r].v), free(kv.slot[r].stage_k), free(kv.slot[r].stage_v);
        }
        dfree(&dr), dfree(&dst);
    }
}

// ---- mlp.cu ----------------------------------------------------------------------------------
static void test_gelu(void **state) {
    (void)state;
    static const struct { int rows, dim; } cases[] = {{1, 6144}, {7, 1000}, {130, 33}};
    for (size_t c = 0; c < G4_COUNT(cases); c++) {
        const int R = cases[c].rows, D = cases[c].dim;
        const size_t N = (size_t)R * D;
        float *gu = xmalloc(2 * N * 4), *ref = xmalloc(N * 4), *got = xmalloc(N * 4);
        fill_f32(gu, 2 * N, 4.0f);
        for (int r = 0; r < R; r++) {
            memcpy(ref + (size_t)r * D, gu + (size_t)r * 2 * D, (size_t)D * 4);
            g4_gelu_tanh_cpu(ref + (size_t)r * D, (size_t)D);
            for (int i = 0; i < D; i++) ref[(size_t)r * D + i] *= gu[(size_t)r * 2 * D + D + i];
        }
        struct dbuf dgu, dout;
        dput(&dgu, gu, 2 * N * 4);
        dnew(&dout, N * 4);
        expect_ok(g4_cuda_gelu_mul(dout.p, dgu.p, R, D, NULL));
        dget(got, &dout);
        char what[96];
        snprintf(what, sizeof what, "gelu_mul rows=%d dim=%d", R, D);
        expect_close(got, ref, N, TOL_FP32, what);
        dfree(&dgu), dfree(&dout);
        free(gu), free(ref), free(got);
    }
    // PLE gate: gelu(g) * ple[t, layer]
    const int n = 7, L = 5, P = 257, layer = 4;
    float *g = xmalloc((size_t)n * P * 4), *ple = xmalloc((size_t)n * L * P * 4),
          *ref = xmalloc((size_t)n * P * 4), *got = xmalloc((size_t)n * P * 4);
    fill_f32(g, (size_t)n * P, 3.0f);
    fill_f32(ple, (size_t)n * L * P, 2.0f);
    memcpy(ref, g, (size_t)n * P * 4);
    g4_gelu_tanh_cpu(ref, (size_t)n * P);
    for (int t = 0; t < n; t++)
        for (int i = 0; i < P; i++) ref[t * P + i] *= ple[((size_t)t * L + layer) * P + i];
    struct dbuf dg, dp, dout;
    dput(&dg, g, (size_t)n * P * 4);
    dput(&dp, ple, (size_t)n * L * P * 4);
    dnew(&dout, (size_t)n * P * 4);
    expect_ok(g4_cuda_ple_gate(dout.p, dg.p, dp.p, n, L, layer, P, NULL));
    dget(got, &dout);
    expect_close(got, ref, (size_t)n * P, TOL_FP32, "ple_gate n=7 layers=5 layer=4 dim=257");
    dfree(&dg), dfree(&dp), dfree(&dout);
    free(g), free(ple), free(ref), free(got);
}

// ---- moe.cu ----------------------------------------------------------------------------------
// Stable counting sort of assignments by expert (the grouping's reference).
static void ref_sort(int32_t *off, int32_t *order, const int32_t *ex, int A, int E) {
    memset(off, 0, (size_t)(E + 1) * 4);
    for (int a = 0; a < A; a++) off[ex[a] + 1]++;
    for (int e = 0; e < E; e++) off[e + 1] += off[e];
    for (int e = 0, p = 0; e < E; e++)
        for (int a = 0; a < A; a++)
            if (ex[a] == e) order[p++] = a;
}

// Distinct experts per token. mode 0: uniform; 1: expert 0 is every token's first pick and
// expert E - 1 never picked (an expert with all tokens, one with none); E == K: every expert.
static void draw_experts(int32_t *ex, int n, int E, int K, int mode) {
    for (int t = 0; t < n; t++)
        for (int k = 0; k < K; k++) {
            int e;
            bool dup;
            do {
                e = mode == 1 ? (k == 0 ? 0 : 1 + irand(E - 2)) : irand(E);
                dup = false;
                for (int j = 0; j < k; j++) dup |= ex[t * K + j] == e;
            } while (dup);
            ex[t * K + k] = e;
        }
}

static void round_bf16(float *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = from_bf16(to_bf16(src[i]));
}

// The experts of kernels/cpu/forward_cpu.c's moe() from given routing: per token and expert,
// y = down(gelu(gate(x)) * up(x)) with fp32 matmuls of the bf16 weights, summed over the token's
// experts in expert-id order with fmaf from 0. bf16: x and the gelu product rounded to bf16
// before their products (the BF16 path).
static void ref_experts(float *out, const float *h2, const float *wts, const int32_t *ex,
                        const uint16_t *wgu, const uint16_t *wd, int n, int H, int Im, int E,
                        int K, bool bf16) {
    float *x = xmalloc((size_t)H * 4), *gu = xmalloc((size_t)2 * Im * 4), *y = xmalloc((size_t)H * 4);
    struct g4_weight wg = {wgu, G4_DTYPE_BF16, (int64_t)E * 2 * Im, H};
    struct g4_weight wdn = {wd, G4_DTYPE_BF16, (int64_t)E * H, Im};
    for (int t = 0; t < n; t++) {
        float *o = out + (size_t)t * H;
        for (int i = 0; i < H; i++) o[i] = 0.0f;
        if (bf16) round_bf16(x, h2 + (size_t)t * H, (size_t)H);
        else memcpy(x, h2 + (size_t)t * H, (size_t)H * 4);
        for (int e = 0; e < E; e++)
            for (int k = 0; k < K; k++) {
                if (ex[t * K + k] != e) continue;
                g4_matmul_cpu(gu, x, g4_weight_rows(wg, (int64_t)e * 2 * Im, 2 * Im), 1, NULL);
                g4_gelu_tanh_cpu(gu, (size_t)Im);
                for (int i = 0; i < Im; i++) gu[i] *= gu[Im + i];
                if (bf16) round_bf16(gu, gu, (size_t)Im);
                g4_matmul_cpu(y, gu, g4_weight_rows(wdn, (int64_t)e * H, H), 1, NULL);
                for (int i = 0; i < H; i++) o[i] = fmaf(wts[t * K + k], y[i], o[i]);
            }
    }
    free(x), free(gu), free(y);
}

// Router GEMV + top-k (+ grouping, + the experts' input norm) against g4_moe_route_cpu: decode
// and prompt batches (one top-k block with the grouping fused; several blocks and the separate
// sort), hidden not a multiple of 4 (scalar loads), top_k == n_experts, and exact ties: pairs of
// identical router rows (e, e + stride) give bit-equal probabilities on both engines, and the
// k-th pick falls inside a pair, so the lower index must win; stride 1 puts the twins on
// different lanes of the top-k warp, stride 32 on the same lane.
static void test_moe_route(void **state) {
    (void)state;
    static const struct { int n, hidden, experts, top_k, tie_stride; } cases[] = {
        {1, 2816, 128, 8, 0}, {7, 1000, 128, 8, 0}, {1, 64, 8, 2, 0},   {33, 2816, 128, 8, 0},
        {3, 100, 5, 5, 0},    {130, 65, 16, 4, 0},  {9, 256, 16, 5, 1}, {2, 2816, 128, 7, 1},
        {4, 30, 6, 6, 1},     {5, 512, 128, 9, 32}};
    const float eps = 1e-6f;
    for (size_t c = 0; c < G4_COUNT(cases); c++) {
        const int n = cases[c].n, H = cases[c].hidden, E = cases[c].experts, K = cases[c].top_k;
        const int stride = cases[c].tie_stride;
        const bool ties = stride > 0;
#define LOWER_TWIN(e) ((e) / stride % 2 == 0 && (e) + stride < E)
        const int A = n * K;
        float *x = xmalloc((size_t)n * H * 4), *scale = xmalloc((size_t)H * 4),
              *proj = xmalloc((size_t)E * H * 4), *pes = xmalloc((size_t)E * 4),
              *w2 = xmalloc((size_t)H * 4), *refw = xmalloc((size_t)A * 4),
              *gotw = xmalloc((size_t)A * 4), *normed = xmalloc((size_t)H * 4),
              *probs = xmalloc((size_t)E * 4), *refh = xmalloc((size_t)n * H * 4),
              *goth = xmalloc((size_t)n * H * 4);
        int32_t *refe = xmalloc((size_t)A * 4), *gote = xmalloc((size_t)A * 4),
                *roff = xmalloc((size_t)(E + 1) * 4), *rord = xmalloc((size_t)A * 4),
                *off = xmalloc((size_t)(E + 1) * 4), *ord = xmalloc((size_t)A * 4),
                *slot = xmalloc((size_t)A * 4);
        fill_f32(scale, (size_t)H, 2.0f);
        fill_f32(proj, (size_t)E * H, 1.0f);
        fill_f32(pes, (size_t)E, 1.0f);
        fill_f32(w2, (size_t)H, 1.5f);
        if (ties) // row e + stride = row e for every lower twin e
            for (int e = 0; e < E; e++)
                if (LOWER_TWIN(e)) memcpy(proj + (size_t)(e + stride) * H, proj + (size_t)e * H, (size_t)H * 4);
        struct g4_weight pw = {proj, G4_DTYPE_F32, E, H};
        int n_tied_picks = 0;
        for (int t = 0; t < n; t++) {
            // redraw a token whose top-k has a near-tie the two fp32 orders could resolve apart
            // (exact ties of identical rows are the point of the tie cases)
            for (int tries = 0; tries < 100; tries++) {
                fill_f32(x + (size_t)t * H, (size_t)H, 3.0f);
                g4_moe_route_cpu(refw + (size_t)t * K, refe + (size_t)t * K, x + (size_t)t * H,
                                 scale, pw, pes, H, E, K, eps, normed, probs);
                bool tie = false;
                for (int a = 0; a < E; a++)
                    for (int b = a + 1; b < E; b++) {
                        if (ties && LOWER_TWIN(a) && b == a + stride) {
                            assert_true(probs[a] == probs[b]); // the premise: bit-equal
                            continue;
                        }
                        tie |= fabsf(probs[a] - probs[b]) < 1e-5f * fmaxf(probs[a], probs[b]);
                    }
                if (!tie) break;
            }
            // a last pick of a lower twin left its bit-equal twin (the lower index won)
            if (ties) n_tied_picks += LOWER_TWIN(refe[(size_t)t * K + K - 1]);
        }
        g4_rmsnorm_cpu(refh, x, w2, n, H, eps);
        ref_sort(roff, rord, refe, A, E);
        const size_t scr = g4_cuda_moe_route_scratch_floats(n, H, E);
        struct dbuf dx, ds, dp, dpes, dw, de, dw2, dh, doff, dord, dslot, dscr;
        dput(&dx, x, (size_t)n * H * 4);
        dput(&ds, scale, (size_t)H * 4);
        dput(&dp, proj, (size_t)E * H * 4);
        dput(&dpes, pes, (size_t)E * 4);
        dput(&dw2, w2, (size_t)H * 4);
        dnew(&dw, (size_t)A * 4);
        dnew(&de, (size_t)A * 4);
        dnew(&dh, (size_t)n * H * 4);
        dnew(&doff, (size_t)(E + 1) * 4);
        dnew(&dord, (size_t)A * 4);
        dnew(&dslot, (size_t)A * 4);
        dnew(&dscr, scr * 4);
        expect_ok(g4_cuda_moe_route(dw.p, de.p, doff.p, dord.p, dslot.p, dh.p, dw2.p, dx.p, ds.p,
                                    dp.p, dpes.p, n, H, E, K, eps, dscr.p, scr, NULL));
        dget(gotw, &dw), dget(gote, &de), dget(goth, &dh);
        dget(off, &doff), dget(ord, &dord), dget(slot, &dslot);
        char what[128];
        snprintf(what, sizeof what, "moe_route n=%d hidden=%d experts=%d top_k=%d ties %d", n,
                 H, E, K, stride);
        for (int i = 0; i < A; i++) {
            if (gote[i] != refe[i]) print_error("%s: assignment %d expert %d, want %d\n", what, i, gote[i], refe[i]);
            assert_int_equal(gote[i], refe[i]);
        }
        expect_close(gotw, refw, (size_t)A, TOL_FP32, what);
        if (ties) { // with an odd top_k < n_experts every token's last pick splits a pair
            printf("  %d of %d tokens' last pick split a tied pair\n", n_tied_picks, n);
            if (K % 2 && K < E) assert_int_equal(n_tied_picks, n);
        }
#undef LOWER_TWIN
        assert_memory_equal(off, roff, (size_t)(E + 1) * 4);
        assert_memory_equal(ord, rord, (size_t)A * 4);
        for (int s = 0; s < A; s++) assert_int_equal(slot[ord[s]], s);
        snprintf(what, sizeof what, "moe_route h2 = rmsnorm(x) * w2 n=%d hidden=%d", n, H);
        expect_close(goth, refh, (size_t)n * H, TOL_FP32, what);
        // without the grouping and h2 (NULLs): the same routing
        expect_ok(g4_cuda_moe_route(dw.p, de.p, NULL, NULL, NULL, NULL, NULL, dx.p, ds.p, dp.p,
                                    dpes.p, n, H, E, K, eps, dscr.p, scr, NULL));
        dget(gote, &de);
        assert_memory_equal(gote, refe, (size_t)A * 4);
        dfree(&dx), dfree(&ds), dfree(&dp), dfree(&dpes), dfree(&dw), dfree(&de), dfree(&dw2);
        dfree(&dh), dfree(&doff), dfree(&dord), dfree(&dslot), dfree(&dscr);
        free(x), free(scale), free(proj), free(pes), free(w2), free(refw), free(gotw);
        free(normed), free(probs), free(refh), free(goth), free(refe), free(gote), free(roff);
        free(rord), free(off), free(ord), free(slot);
    }
    // bad arguments: a clear error before any launch
    assert_int_equal(g4_cuda_moe_route(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                                       NULL, 1, 64, 8, 9, 1e-6f, NULL, 0, NULL),
                     G4_ERR_INVALID_ARGUMENT);
    float dummy;
    assert_int_equal(g4_cuda_moe_route(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                                       NULL, 1, 64, 8, 2, 1e-6f, &dummy, 1, NULL),
                     G4_ERR_INVALID_ARGUMENT);
}

// Prefill: the grouped GEMMs (plain and with gelu * up fused) and the combine, at several token
// counts, with an expert that gets every token and one that gets none, dims that are not
// multiples of the tiles or of 8 (scalar loads). Integer operands: the FP32 products must match
// the CPU's matmul bit for bit; BF16: random activations against the CPU's matmul of the
// bf16-rounded activations (same products, other summation order).
static void test_moe_grouped(void **state) {
    (void)state;
    static const struct { int n, experts, top_k, hidden, inter, mode; } cases[] = {
        {1, 128, 8, 264, 96, 0},   {7, 8, 2, 64, 32, 1}, {130, 16, 4, 65, 33, 0},
        {3, 5, 5, 7, 3, 0},        {20, 6, 2, 256, 96, 1}, {70, 4, 1, 136, 72, 1}};
    for (size_t c = 0; c < G4_COUNT(cases); c++) {
        const int n = cases[c].n, E = cases[c].experts, K = cases[c].top_k, H = cases[c].hidden;
        const int Im = cases[c].inter, I2 = 2 * Im, A = n * K;
        int32_t *ex = xmalloc((size_t)A * 4), *roff = xmalloc((size_t)(E + 1) * 4),
                *rorder = xmalloc((size_t)A * 4), *slot = xmalloc((size_t)A * 4);
        draw_experts(ex, n, E, K, cases[c].mode);
        ref_sort(roff, rorder, ex, A, E);
        for (int s = 0; s < A; s++) slot[rorder[s]] = s;
        struct dbuf dex, doff, dord, dslot;
        dput(&dex, ex, (size_t)A * 4);
        dput(&doff, roff, (size_t)(E + 1) * 4);
        dput(&dord, rorder, (size_t)A * 4);
        dput(&dslot, slot, (size_t)A * 4);
        char what[128];

        // gate_up over gathered token rows: plain (all 2 * inter columns) and fused gelu * up
        uint16_t *wgu = xmalloc((size_t)E * I2 * H * 2);
        float *xf = xmalloc((size_t)n * H * 4), *ref = xmalloc((size_t)A * I2 * 4),
              *got = xmalloc((size_t)A * I2 * 4), *refa = xmalloc((size_t)A * Im * 4);
        for (int i = 0; i < n * H; i++) xf[i] = (float)(irand(9) - 4);
        for (size_t i = 0; i < (size_t)E * I2 * H; i++) wgu[i] = to_bf16((float)(irand(7) - 3));
        struct g4_weight wg = {wgu, G4_DTYPE_BF16, (int64_t)E * I2, H};
        for (int s = 0; s < A; s++) {
            const int a = rorder[s], e = ex[a];
            g4_matmul_cpu(ref + (size_t)s * I2, xf + (size_t)(a / K) * H,
                          g4_weight_rows(wg, (int64_t)e * I2, I2), 1, NULL);
            float *ra = refa + (size_t)s * Im;
            memcpy(ra, ref + (size_t)s * I2, (size_t)Im * 4);
            g4_gelu_tanh_cpu(ra, (size_t)Im);
            for (int i = 0; i < Im; i++) ra[i] *= ref[(size_t)s * I2 + Im + i];
        }
        struct dbuf dx, dw, dout, dact;
        dput(&dx, xf, (size_t)n * H * 4);
        dput(&dw, wgu, (size_t)E * I2 * H * 2);
        dnew(&dout, (size_t)A * I2 * 4);
        dnew(&dact, (size_t)A * Im * 4);
        for (int b = 0; b < 2; b++) { // integers are exact in bf16: both precisions bit-exact
            expect_ok(g4_cuda_moe_matmul(dout.p, dx.p, dord.p, K, dw.p, doff.p, E, n, I2, H, b, NULL));
            dget(got, &dout);
            snprintf(what, sizeof what, "moe_matmul gathered n=%d E=%d K=%d %dx%d %s", n, E, K,
                     I2, H, b ? "bf16" : "fp32");
            expect_exact(got, ref, (size_t)A * I2, what);
        }
        expect_ok(g4_cuda_moe_gate_up(dact.p, dx.p, dord.p, K, dw.p, doff.p, E, n, Im, H, false, NULL));
        dget(got, &dact);
        snprintf(what, sizeof what, "moe_gate_up (gelu fused) n=%d E=%d K=%d %dx%d", n, E, K, I2, H);
        expect_close(got, refa, (size_t)A * Im, TOL_FP32, what);

        // BF16 activations: random floats, the reference rounds them
        float *xr = xmalloc((size_t)n * H * 4);
        fill_f32(xf, (size_t)n * H, 2.0f);
        round_bf16(xr, xf, (size_t)n * H);
        float *ref_fp = xmalloc((size_t)A * I2 * 4);
        for (int s = 0; s < A; s++) {
            const int a = rorder[s], e = ex[a];
            g4_matmul_cpu(ref + (size_t)s * I2, xr + (size_t)(a / K) * H,
                          g4_weight_rows(wg, (int64_t)e * I2, I2), 1, NULL);
            g4_matmul_cpu(ref_fp + (size_t)s * I2, xf + (size_t)(a / K) * H,
                          g4_weight_rows(wg, (int64_t)e * I2, I2), 1, NULL);
        }
        assert_int_equal(cudaMemcpy(dx.p, xf, (size_t)n * H * 4, cudaMemcpyHostToDevice), cudaSuccess);
        expect_ok(g4_cuda_moe_matmul(dout.p, dx.p, dord.p, K, dw.p, doff.p, E, n, I2, H, true, NULL));
        dget(got, &dout);
        snprintf(what, sizeof what, "moe_matmul bf16 act n=%d E=%d %dx%d", n, E, I2, H);
        expect_close(got, ref, (size_t)A * I2, TOL_FP32, what);
        for (int s = 0; s < A; s++) {
            float *ra = refa + (size_t)s * Im;
            memcpy(ra, ref + (size_t)s * I2, (size_t)Im * 4);
            g4_gelu_tanh_cpu(ra, (size_t)Im);
            for (int i = 0; i < Im; i++) ra[i] *= ref[(size_t)s * I2 + Im + i];
        }
        expect_ok(g4_cuda_moe_gate_up(dact.p, dx.p, dord.p, K, dw.p, doff.p, E, n, Im, H, true, NULL));
        dget(got, &dact);
        snprintf(what, sizeof what, "moe_gate_up bf16 act n=%d E=%d %dx%d", n, E, I2, H);
        expect_close(got, refa, (size_t)A * Im, TOL_FP32, what);
        snprintf(what, sizeof what, "  (info) the same vs unrounded activations");
        g4_compare_rel(got, ref_fp, (size_t)A * I2, 1.0, what);
        expect_ok(g4_cuda_moe_matmul(dout.p, dx.p, dord.p, K, dw.p, doff.p, E, n, I2, H, false, NULL));
        dget(got, &dout);
        snprintf(what, sizeof what, "moe_matmul fp32 act n=%d E=%d %dx%d", n, E, I2, H);
        expect_close(got, ref_fp, (size_t)A * I2, TOL_FP32, what);

        // rows in sorted order (order NULL): the down projection's shape
        uint16_t *wd = xmalloc((size_t)E * H * Im * 2);
        float *af = xmalloc((size_t)A * Im * 4), *ref2 = xmalloc((size_t)A * H * 4),
              *got2 = xmalloc((size_t)A * H * 4);
        for (size_t i = 0; i < (size_t)A * Im; i++) af[i] = (float)(irand(5) - 2);
        for (size_t i = 0; i < (size_t)E * H * Im; i++) wd[i] = to_bf16((float)(irand(5) - 2));
        struct g4_weight wdn = {wd, G4_DTYPE_BF16, (int64_t)E * H, Im};
        for (int s = 0; s < A; s++)
            g4_matmul_cpu(ref2 + (size_t)s * H, af + (size_t)s * Im,
                          g4_weight_rows(wdn, (int64_t)ex[rorder[s]] * H, H), 1, NULL);
        struct dbuf da, dwd, dout2;
        dput(&da, af, (size_t)A * Im * 4);
        dput(&dwd, wd, (size_t)E * H * Im * 2);
        dnew(&dout2, (size_t)A * H * 4);
        expect_ok(g4_cuda_moe_matmul(dout2.p, da.p, NULL, 1, dwd.p, doff.p, E, n, H, Im, false, NULL));
        dget(got2, &dout2);
        snprintf(what, sizeof what, "moe_matmul sorted n=%d E=%d K=%d %dx%d", n, E, K, H, Im);
        expect_exact(got2, ref2, (size_t)A * H, what);

        // combine: out[t] = sum of w[t,k] y[slot_of[t,k]] in expert-id order (the CPU engine's
        // order), each term an fmaf: bit-exact
        float *wts = xmalloc((size_t)A * 4), *refc = xmalloc((size_t)n * H * 4),
              *gotc = xmalloc((size_t)n * H * 4);
        fill_f32(wts, (size_t)A, 1.0f);
        for (int t = 0; t < n; t++)
            for (int i = 0; i < H; i++) {
                float acc = 0.0f;
                for (int e = 0; e < E; e++)
                    for (int k = 0; k < K; k++)
                        if (ex[t * K + k] == e)
                            acc = fmaf(wts[t * K + k], ref2[(size_t)slot[t * K + k] * H + i], acc);
                refc[(size_t)t * H + i] = acc;
            }
        struct dbuf dwt, dc;
        dput(&dwt, wts, (size_t)A * 4);
        dnew(&dc, (size_t)n * H * 4);
        expect_ok(g4_cuda_moe_combine(dc.p, dout2.p, dwt.p, dex.p, dslot.p, n, K, H, NULL));
        dget(gotc, &dc);
        snprintf(what, sizeof what, "moe_combine n=%d K=%d hidden=%d (expert order)", n, K, H);
        expect_exact(gotc, refc, (size_t)n * H, what);

        dfree(&dex), dfree(&doff), dfree(&dord), dfree(&dslot), dfree(&dx), dfree(&dw);
        dfree(&dout), dfree(&dact), dfree(&da), dfree(&dwd), dfree(&dout2), dfree(&dwt), dfree(&dc);
        free(ex), free(roff), free(rorder), free(slot), free(wgu), free(xf), free(ref), free(got);
        free(refa), free(xr), free(ref_fp), free(wd), free(af), free(ref2), free(got2), free(wts);
        free(refc), free(gotc);
    }
}

// Decode: the two expert GEMVs (gelu * up fused into the first, the combine into the second)
// at 1-8 tokens: hidden over one staged chunk (1288 with all 8 tokens on one expert), hidden not
// a multiple of the 256-column load step, inter not a multiple of a block's 16 columns,
// top_k == n_experts, an expert with every token and one with none; dims that are not multiples
// of 8 take the grouped path. Integer operands make the down + combine bit-exact against an
// fmaf sum in expert-id order. Then the whole g4_cuda_moe_experts (decode and grouped paths, both
// precisions) on random floats against the CPU MoE's experts (ref_experts).
static void test_moe_decode(void **state) {
    (void)state;
    static const struct { int n, experts, top_k, hidden, inter, mode; } cases[] = {
        {1, 8, 8, 2816, 704, 0},  {8, 16, 8, 256, 96, 0}, {8, 16, 8, 1288, 96, 1},
        {2, 8, 2, 264, 40, 0},    {2, 8, 2, 65, 33, 0},   {3, 5, 5, 64, 32, 0},
        {4, 8, 2, 128, 64, 1},    {20, 8, 3, 136, 40, 1}};
    for (size_t c = 0; c < G4_COUNT(cases); c++) {
        const int n = cases[c].n, E = cases[c].experts, K = cases[c].top_k, H = cases[c].hidden;
        const int Im = cases[c].inter, I2 = 2 * Im, A = n * K;
        const bool decode = g4_cuda_moe_decode_path(n, K, H, Im);
        int32_t *ex = xmalloc((size_t)A * 4), *roff = xmalloc((size_t)(E + 1) * 4),
                *rorder = xmalloc((size_t)A * 4), *slot = xmalloc((size_t)A * 4);
        draw_experts(ex, n, E, K, cases[c].mode);
        ref_sort(roff, rorder, ex, A, E);
        for (int s = 0; s < A; s++) slot[rorder[s]] = s;
        uint16_t *wgu = xmalloc((size_t)E * I2 * H * 2), *wd = xmalloc((size_t)E * H * Im * 2);
        float *h2 = xmalloc((size_t)n * H * 4), *wts = xmalloc((size_t)A * 4),
              *act = xmalloc((size_t)A * Im * 4), *gota = xmalloc((size_t)A * Im * 4),
              *ref = xmalloc((size_t)n * H * 4), *got = xmalloc((size_t)n * H * 4);
        fill_f32(wts, (size_t)A, 1.0f);
        struct dbuf dex, doff, dord, dslot, dwt, dh2, dwgu, dwd, dact, dy, dout;
        dput(&dex, ex, (size_t)A * 4);
        dput(&doff, roff, (size_t)(E + 1) * 4);
        dput(&dord, rorder, (size_t)A * 4);
        dput(&dslot, slot, (size_t)A * 4);
        dput(&dwt, wts, (size_t)A * 4);
        dnew(&dh2, (size_t)n * H * 4);
        dnew(&dwgu, (size_t)E * I2 * H * 2);
        dnew(&dwd, (size_t)E * H * Im * 2);
        dnew(&dact, (size_t)A * Im * 4);
        dnew(&dy, (size_t)A * H * 4);
        dnew(&dout, (size_t)n * H * 4);
        char what[128];
        if (decode) {
            // integer operands: gate and up exact, gelu within TOL_FP32
            for (int i = 0; i < n * H; i++) h2[i] = (float)(irand(9) - 4);
            for (size_t i = 0; i < (size_t)E * I2 * H; i++) wgu[i] = to_bf16((float)(irand(7) - 3));
            for (size_t i = 0; i < (size_t)E * H * Im; i++) wd[i] = to_bf16((float)(irand(5) - 2));
            struct g4_weight wg = {wgu, G4_DTYPE_BF16, (int64_t)E * I2, H};
            float *gu = xmalloc((size_t)I2 * 4);
            for (int s = 0; s < A; s++) {
                const int a = rorder[s];
                g4_matmul_cpu(gu, h2 + (size_t)(a / K) * H, g4_weight_rows(wg, (int64_t)ex[a] * I2, I2), 1, NULL);
                g4_gelu_tanh_cpu(gu, (size_t)Im);
                for (int i = 0; i < Im; i++) act[(size_t)s * Im + i] = gu[i] * gu[Im + i];
            }
            free(gu);
            assert_int_equal(cudaMemcpy(dh2.p, h2, (size_t)n * H * 4, cudaMemcpyHostToDevice), cudaSuccess);
            assert_int_equal(cudaMemcpy(dwgu.p, wgu, (size_t)E * I2 * H * 2, cudaMemcpyHostToDevice), cudaSuccess);
            assert_int_equal(cudaMemcpy(dwd.p, wd, (size_t)E * H * Im * 2, cudaMemcpyHostToDevice), cudaSuccess);
            expect_ok(g4_cuda_moe_gemv_gate_up(dact.p, dh2.p, dex.p, dord.p, doff.p, n, K, dwgu.p,
                                               Im, H, false, NULL));
            dget(gota, &dact);
            snprintf(what, sizeof what, "moe_gemv_gate_up n=%d E=%d K=%d %dx%d", n, E, K, I2, H);
            expect_close(gota, act, (size_t)A * Im, TOL_FP32, what);
            // down + combine on integer act: bit-exact
            for (size_t i = 0; i < (size_t)A * Im; i++) act[i] = (float)(irand(5) - 2);
            struct g4_weight wdn = {wd, G4_DTYPE_BF16, (int64_t)E * H, Im};
            float *y = xmalloc((size_t)H * 4);
            for (int t = 0; t < n; t++) {
                float *o = ref + (size_t)t * H;
                for (int i = 0; i < H; i++) o[i] = 0.0f;
                for (int e = 0; e < E; e++)
                    for (int k = 0; k < K; k++) {
                        if (ex[t * K + k] != e) continue;
                        g4_matmul_cpu(y, act + (size_t)slot[t * K + k] * Im,
                                      g4_weight_rows(wdn, (int64_t)e * H, H), 1, NULL);
                        for (int i = 0; i < H; i++) o[i] = fmaf(wts[t * K + k], y[i], o[i]);
                    }
            }
            free(y);
            assert_int_equal(cudaMemcpy(dact.p, act, (size_t)A * Im * 4, cudaMemcpyHostToDevice), cudaSuccess);
            for (int b = 0; b < 2; b++) {
                expect_ok(g4_cuda_moe_gemv_down(dout.p, dact.p, dwt.p, dex.p, dord.p, doff.p, n, K,
                                                dwd.p, H, Im, b, NULL));
                dget(got, &dout);
                snprintf(what, sizeof what, "moe_gemv_down + combine n=%d E=%d K=%d %dx%d %s", n,
                         E, K, H, Im, b ? "bf16" : "fp32");
                expect_exact(got, ref, (size_t)n * H, what);
            }
        }
        // the whole experts block on random floats, both precisions
        fill_f32(h2, (size_t)n * H, 2.0f);
        fill_bf16(wgu, NULL, (size_t)E * I2 * H, 0.1f);
        fill_bf16(wd, NULL, (size_t)E * H * Im, 0.1f);
        assert_int_equal(cudaMemcpy(dh2.p, h2, (size_t)n * H * 4, cudaMemcpyHostToDevice), cudaSuccess);
        assert_int_equal(cudaMemcpy(dwgu.p, wgu, (size_t)E * I2 * H * 2, cudaMemcpyHostToDevice), cudaSuccess);
        assert_int_equal(cudaMemcpy(dwd.p, wd, (size_t)E * H * Im * 2, cudaMemcpyHostToDevice), cudaSuccess);
        float *ref_other = xmalloc((size_t)n * H * 4);
        for (int b = 0; b < 2; b++) {
            ref_experts(ref, h2, wts, ex, wgu, wd, n, H, Im, E, K, b);
            ref_experts(ref_other, h2, wts, ex, wgu, wd, n, H, Im, E, K, !b);
            expect_ok(g4_cuda_moe_experts(dout.p, dh2.p, dwt.p, dex.p, doff.p, dord.p, dslot.p,
                                          dwgu.p, dwd.p, n, H, Im, E, K, b, dact.p, dy.p, NULL));
            dget(got, &dout);
            snprintf(what, sizeof what, "moe_experts (%s) n=%d E=%d K=%d H=%d I=%d %s",
                     decode ? "gemv" : "grouped", n, E, K, H, Im, b ? "bf16" : "fp32");
            expect_close(got, ref, (size_t)n * H, b ? TOL_BF16_CHAIN : TOL_FP32, what);
            snprintf(what, sizeof what, "  (info) vs the %s reference", b ? "fp32" : "bf16");
            g4_compare_rel(got, ref_other, (size_t)n * H, 1.0, what);
        }
        free(ref_other);
        if (decode) { // the two GEMVs in BF16 on random floats: the reference rounds the inputs
            float *xr = xmalloc((size_t)n * H * 4), *gu = xmalloc((size_t)I2 * 4),
                  *y = xmalloc((size_t)H * 4);
            struct g4_weight wg = {wgu, G4_DTYPE_BF16, (int64_t)E * I2, H};
            struct g4_weight wdn = {wd, G4_DTYPE_BF16, (int64_t)E * H, Im};
            round_bf16(xr, h2, (size_t)n * H);
            for (int s = 0; s < A; s++) {
                const int a = rorder[s];
                g4_matmul_cpu(gu, xr + (size_t)(a / K) * H, g4_weight_rows(wg, (int64_t)ex[a] * I2, I2), 1, NULL);
                g4_gelu_tanh_cpu(gu, (size_t)Im);
                for (int i = 0; i < Im; i++) act[(size_t)s * Im + i] = gu[i] * gu[Im + i];
            }
            expect_ok(g4_cuda_moe_gemv_gate_up(dact.p, dh2.p, dex.p, dord.p, doff.p, n, K, dwgu.p,
                                               Im, H, true, NULL));
            dget(gota, &dact);
            snprintf(what, sizeof what, "moe_gemv_gate_up bf16 act n=%d E=%d K=%d", n, E, K);
            expect_close(gota, act, (size_t)A * Im, TOL_FP32, what);
            // down on the device's own act (same inputs on both sides)
            for (int t = 0; t < n; t++) {
                float *o = ref + (size_t)t * H;
                for (int i = 0; i < H; i++) o[i] = 0.0f;
                for (int e = 0; e < E; e++)
                    for (int k = 0; k < K; k++) {
                        if (ex[t * K + k] != e) continue;
                        round_bf16(gu, gota + (size_t)slot[t * K + k] * Im, (size_t)Im);
                        g4_matmul_cpu(y, gu, g4_weight_rows(wdn, (int64_t)e * H, H), 1, NULL);
                        for (int i = 0; i < H; i++) o[i] = fmaf(wts[t * K + k], y[i], o[i]);
                    }
            }
            expect_ok(g4_cuda_moe_gemv_down(dout.p, dact.p, dwt.p, dex.p, dord.p, doff.p, n, K,
                                            dwd.p, H, Im, true, NULL));
            dget(got, &dout);
            snprintf(what, sizeof what, "moe_gemv_down + combine bf16 act n=%d E=%d K=%d", n, E, K);
            expect_close(got, ref, (size_t)n * H, TOL_FP32, what);
            free(xr), free(gu), free(y);
        }
        dfree(&dex), dfree(&doff), dfree(&dord), dfree(&dslot), dfree(&dwt), dfree(&dh2);
        dfree(&dwgu), dfree(&dwd), dfree(&dact), dfree(&dy), dfree(&dout);
        free(ex), free(roff), free(rorder), free(slot), free(wgu), free(wd), free(h2), free(wts);
        free(act), free(gota), free(ref), free(got);
    }
#ifdef G4EMU
    // Launches of one MoE block (g4_cuda_moe_route + g4_cuda_moe_experts, as moe() in
    // forward_cuda.cu calls them) with 26B-A4B's hidden, moe_intermediate and top-k (16 experts
    // instead of 128: the count does not depend on it; zero inputs: only the count matters).
    {
        const int H = 2816, Im = 704, E = 16, K = 8, NMAX = 9;
        struct dbuf b[13];
        float *x = dnew(&b[0], (size_t)NMAX * H * 4), *w2 = dnew(&b[1], (size_t)H * 4);
        float *scale = dnew(&b[2], (size_t)H * 4), *proj = dnew(&b[3], (size_t)E * H * 4);
        float *pes = dnew(&b[4], (size_t)E * 4), *wts = dnew(&b[5], (size_t)NMAX * K * 4);
        int32_t *ex = dnew(&b[6], (size_t)NMAX * K * 4), *off = dnew(&b[7], (size_t)(E + 1) * 4);
        int32_t *ord = dnew(&b[8], (size_t)NMAX * K * 4), *slot = dnew(&b[9], (size_t)NMAX * K * 4);
        float *h2 = dnew(&b[10], (size_t)NMAX * H * 4);
        const size_t scr = g4_cuda_moe_route_scratch_floats(NMAX, H, E);
        float *scratch = dnew(&b[11], scr * 4);
        float *buf = dnew(&b[12], (size_t)NMAX * K * (Im + H) * 4 + (size_t)NMAX * H * 4);
        struct dbuf bw[2];
        uint16_t *wgu = dnew(&bw[0], (size_t)E * 2 * Im * H * 2), *wd = dnew(&bw[1], (size_t)E * H * Im * 2);
        for (int i = 0; i < 13; i++) assert_int_equal(cudaMemset(b[i].p, 0, b[i].bytes), cudaSuccess);
        for (int i = 0; i < 2; i++) assert_int_equal(cudaMemset(bw[i].p, 0, bw[i].bytes), cudaSuccess);
        unsigned long long count[2];
        const int ns[2] = {1, NMAX};
        for (int c = 0; c < 2; c++) {
            const int n = ns[c];
            float *act = buf, *y = buf + (size_t)n * K * Im, *out = y + (size_t)n * K * H;
            assert_int_equal(cudaDeviceSynchronize(), cudaSuccess);
            const unsigned long long before = g4emu_kernel_runs();
            expect_ok(g4_cuda_moe_route(wts, ex, off, ord, slot, h2, w2, x, scale, proj, pes, n, H,
                                        E, K, 1e-6f, scratch, scr, NULL));
            expect_ok(g4_cuda_moe_experts(out, h2, wts, ex, off, ord, slot, wgu, wd, n, H, Im, E, K,
                                          false, act, y, NULL));
            count[c] = g4emu_kernel_runs() - before;
        }
        printf("MoE block launches (hidden 2816, moe_intermediate 704, top-8): decode (1 token) "
               "%llu, prefill (9 tokens) %llu\n", count[0], count[1]);
        assert_true(count[0] == 5 && count[1] == 7);
        for (int i = 0; i < 13; i++) dfree(&b[i]);
        dfree(&bw[0]), dfree(&bw[1]);
    }
#endif
    // outside the GEMV path (9 tokens; hidden 65): a clear error, nothing launched
    assert_int_equal(g4_cuda_moe_gemv_down(NULL, NULL, NULL, NULL, NULL, NULL, 9, 8, NULL, 64,
                                           32, false, NULL),
                     G4_ERR_INVALID_ARGUMENT);
    assert_int_equal(g4_cuda_moe_gemv_gate_up(NULL, NULL, NULL, NULL, NULL, 1, 2, NULL, 32, 65,
                                              false, NULL),
                     G4_ERR_INVALID_ARGUMENT);
}

// ---- logits.cu / sample.cu -------------------------------------------------------------------
static void test_softcap_argmax(void **state) {
    (void)state;
    const size_t n = 262144 * 2 + 3;
    float *x = xmalloc(n * 4), *ref = xmalloc(n * 4), *got = xmalloc(n * 4);
    fill_f32(x, n, 60.0f);
    memcpy(ref, x, n * 4);
    g4_softcap_cpu(ref, n, 30.0f);
    struct dbuf dx;
    dput(&dx, x, n * 4);
    expect_ok(g4_cuda_softcap(dx.p, n, 30.0f, NULL));
    dget(got, &dx);
    expect_close(got, ref, n, 1e-6, "softcap n=524291 cap=30");
    dfree(&dx);

    // argmax rows: random; a tie (lowest id wins); NaNs; all -inf (id 0); short row
    enum { V = 262144, R = 4 };
    float *rows = xmalloc((size_t)R * V * 4);
    fill_f32(rows, (size_t)R * V, 10.0f);
    rows[(size_t)0 * V + 70000] = 50.0f;
    rows[(size_t)1 * V + 9] = 40.0f, rows[(size_t)1 * V + 200000] = 40.0f, rows[(size_t)1 * V + 5] = NAN;
    for (int i = 0; i < V; i++) rows[(size_t)2 * V + i] = i % 3 ? -INFINITY : NAN;
    rows[(size_t)3 * V + V - 1] = 11.0f;
    rows[(size_t)3 * V + 100001] = -INFINITY, rows[(size_t)3 * V + 200001] = INFINITY / INFINITY;
    rows[(size_t)0 * V + 262143] = INFINITY; // ranks first, and is reported
    const int32_t want[R] = {262143, 9, 0, V - 1}, want_nf[R] = {262143, 5, 0, 100001};
    int32_t tok[R], nf[R];
    struct dbuf dr, dt, dn;
    dput(&dr, rows, (size_t)R * V * 4);
    dnew(&dt, sizeof tok);
    dnew(&dn, sizeof nf);
    expect_ok(g4_cuda_argmax(dt.p, dn.p, dr.p, R, V, NULL));
    dget(tok, &dt);
    dget(nf, &dn);
    for (int r = 0; r < R; r++) assert_int_equal(tok[r], want[r]);
    for (int r = 0; r < R; r++) assert_int_equal(nf[r], want_nf[r]);
    rows[(size_t)0 * V + 262143] = 0.0f; // row 0 all finite: -1, and its maximum again
    assert_int_equal(cudaMemcpy(dr.p, rows, V * 4, cudaMemcpyHostToDevice), cudaSuccess);
    expect_ok(g4_cuda_argmax(dt.p, dn.p, dr.p, 1, V, NULL));
    assert_int_equal(cudaMemcpy(tok, dt.p, 4, cudaMemcpyDeviceToHost), cudaSuccess);
    assert_int_equal(cudaMemcpy(nf, dn.p, 4, cudaMemcpyDeviceToHost), cudaSuccess);
    assert_int_equal(tok[0], 70000);
    assert_int_equal(nf[0], -1);
    expect_ok(g4_cuda_argmax(dt.p, NULL, dr.p, 1, 7, NULL)); // 7 of 1024 threads have an element
    assert_int_equal(cudaMemcpy(tok, dt.p, 4, cudaMemcpyDeviceToHost), cudaSuccess);
    int best = 0;
    for (int i = 1; i < 7; i++)
        if (rows[i] > rows[best]) best = i;
    assert_int_equal(tok[0], best);
    // a row at an address that is not 16-byte aligned: the scalar path (row 1 from id 1 on)
    expect_ok(g4_cuda_argmax(dt.p, dn.p, (const float *)dr.p + V + 1, 1, 4096, NULL));
    assert_int_equal(cudaMemcpy(tok, dt.p, 4, cudaMemcpyDeviceToHost), cudaSuccess);
    assert_int_equal(cudaMemcpy(nf, dn.p, 4, cudaMemcpyDeviceToHost), cudaSuccess);
    assert_int_equal(tok[0], 9 - 1);
    assert_int_equal(nf[0], 5 - 1);
    printf("argmax: ties, NaN, Inf, all -inf, short and unaligned rows, non-finite ids: exact\n");
    dfree(&dr), dfree(&dt), dfree(&dn);
    free(x), free(ref), free(got), free(rows);
}

// Survivors of g4_sampler_sample's filters, by definition (sorted, in double): keep[i] and the
// weights e[i]. Returns their total weight.
static const float *sort_v;
static const double *sort_e;
static int by_value(const void *a, const void *b) { // larger value first, then lower id
    const int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    if (sort_v[i] != sort_v[j]) return sort_v[i] > sort_v[j] ? -1 : 1;
    return i < j ? -1 : i > j;
}
static int by_weight(const void *a, const void *b) { // larger weight first, then lower id
    const int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    if (sort_e[i] != sort_e[j]) return sort_e[i] > sort_e[j] ? -1 : 1;
    return i < j ? -1 : i > j;
}

static double sample_reference(const float *v, int n, float temp, int top_k, float top_p,
                               float min_p, bool *keep, double *e) {
    int32_t *idx = xmalloc((size_t)n * 4);
    for (int i = 0; i < n; i++) idx[i] = i;
    sort_v = v;
    qsort(idx, (size_t)n, sizeof *idx, by_value);
    const float m = v[idx[0]];
    const float thr = top_k > 0 && top_k < n ? v[idx[top_k - 1]] : -INFINITY;
    double z = 0.0;
    for (int i = 0; i < n; i++) {
        e[i] = v[i] >= thr ? (double)expf((v[i] - m) * (1.0f / temp)) : 0.0;
        z += e[i];
    }
    sort_e = e;
    qsort(idx, (size_t)n, sizeof *idx, by_weight);
    double above = 0.0, total = 0.0;
    for (int r = 0; r < n; r++) {
        const int i = idx[r];
        bool k = e[i] > 0.0 && e[i] >= (double)min_p;
        if (top_p < 1.0f) k = k && above < (double)top_p * z;
        above += e[i];
        keep[i] = k;
        if (k) total += e[i];
    }
    free(idx);
    return total;
}

static void test_sample(void **state) {
    (void)state;
    static const struct { int n; float temp; int top_k; float top_p, min_p; } cases[] = {
        {1000, 0.7f, 50, 0.9f, 0.0f}, {1000, 1.0f, 0, 0.5f, 0.0f}, {1000, 1.3f, 0, 1.0f, 0.05f},
        {262144, 0.8f, 40, 0.95f, 0.0f}, {777, 1.0f, 1, 1.0f, 0.0f}, {1000, 0.9f, 20, 1.0f, 0.0f}};
    for (size_t c = 0; c < G4_COUNT(cases); c++) {
        const int n = cases[c].n;
        float *v = xmalloc((size_t)n * 4);
        bool *keep = xmalloc((size_t)n);
        double *e = xmalloc((size_t)n * 8);
        fill_f32(v, (size_t)n, 6.0f);
        for (int i = 0; i < 40; i++) v[irand(n)] = 4.5f; // ties, some at the top-k threshold
        const double total = sample_reference(v, n, cases[c].temp, cases[c].top_k, cases[c].top_p,
                                              cases[c].min_p, keep, e);
        struct dbuf dv, dt;
        dput(&dv, v, (size_t)n * 4);
        dnew(&dt, 4);
        // u at the middle of each survivor's interval (in id order): that survivor must come out
        double cum = 0.0;
        int n_kept = 0, checked = 0;
        for (int i = 0; i < n; i++) {
            if (!keep[i]) continue;
            n_kept++;
            const double u = (cum + e[i] / 2) / total;
            cum += e[i];
            if (n_kept > 64 && irand(8)) continue; // a sample of the survivors
            int32_t tok = -1;
            expect_ok(g4_cuda_sample(dt.p, dv.p, n, cases[c].temp, cases[c].top_k, cases[c].top_p,
                                     cases[c].min_p, u, NULL));
            assert_int_equal(cudaMemcpy(&tok, dt.p, 4, cudaMemcpyDeviceToHost), cudaSuccess);
            if (tok != i)
                print_error("sample n=%d T=%g k=%d p=%g min_p=%g u=%.9f: got %d, want %d\n", n,
                            cases[c].temp, cases[c].top_k, cases[c].top_p, cases[c].min_p, u, tok, i);
            assert_int_equal(tok, i);
            checked++;
        }
        printf("sample n=%d T=%g top_k=%d top_p=%g min_p=%g: %d survivors, %d draws exact\n", n,
               cases[c].temp, cases[c].top_k, cases[c].top_p, cases[c].min_p, n_kept, checked);
        // temperature 0 is argmax
        int32_t tok = -1;
        int best = 0;
        for (int i = 1; i < n; i++)
            if (v[i] > v[best]) best = i;
        expect_ok(g4_cuda_sample(dt.p, dv.p, n, 0.0f, 0, 1.0f, 0.0f, 0.5, NULL));
        assert_int_equal(cudaMemcpy(&tok, dt.p, 4, cudaMemcpyDeviceToHost), cudaSuccess);
        assert_int_equal(tok, best);
        dfree(&dv), dfree(&dt);
        free(v), free(keep), free(e);
    }
}

// ---- device.cu: random values of the benchmark's models ----------------------------------------
// The host twin of z(stream, i) (kernels.h): same integer hash, same float operations.
static uint64_t fill_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static float fill_z(uint64_t stream, uint64_t i) {
    const uint64_t a = fill_mix64(stream ^ fill_mix64(2 * i)),
                   b = fill_mix64(stream ^ fill_mix64(2 * i + 1));
    const float sum = (float)(a & 0xffff) + (float)((a >> 32) & 0xffff) + (float)(b & 0xffff) +
                      (float)((b >> 32) & 0xffff);
    return (sum * (1.0f / 65536.0f) - 2.0f) * 1.7320508075688772f;
}

// bf16: bit-exact against the host twin (integer hash, exact sums, two roundings); fp32 with a
// center: within 1 ulp (the device may contract 1 + spread * z into an FMA). Moments of the bf16
// values: mean 0 and standard deviation sigma within 1% over 2^18 values; another stream gives
// other values.
static void test_fill_normal(void **state) {
    (void)state;
    const size_t n = ((size_t)1 << 18) + 77;
    const float sigma = 0.03125f;
    uint16_t *got = xmalloc(n * 2), *got2 = xmalloc(n * 2);
    float *gotf = xmalloc(n * 4);
    struct dbuf db, df;
    dnew(&db, n * 2);
    dnew(&df, n * 4);
    expect_ok(g4_cuda_fill_normal_bf16(db.p, n, 12345, sigma, NULL));
    dget(got, &db);
    double sum = 0, sum2 = 0;
    for (size_t i = 0; i < n; i++) {
        const uint16_t want = to_bf16(fill_z(12345, i) * sigma);
        if (got[i] != want) {
            print_error("fill_normal_bf16 [%zu]: got 0x%04x, want 0x%04x\n", i, got[i], want);
            fail();
        }
        const double v = from_bf16(got[i]);
        sum += v, sum2 += v * v;
    }
    const double mean = sum / (double)n, sd = sqrt(sum2 / (double)n - mean * mean);
    printf("fill_normal_bf16 n=%zu bit-exact; mean %.2e, sd %.6f (sigma %g)\n", n, mean, sd, sigma);
    assert_true(fabs(mean) < 0.01 * sigma);
    assert_true(fabs(sd / sigma - 1.0) < 0.01);
    expect_ok(g4_cuda_fill_normal_bf16(db.p, n, 12346, sigma, NULL));
    dget(got2, &db);
    size_t same = 0;
    for (size_t i = 0; i < n; i++) same += got[i] == got2[i];
    printf("fill_normal_bf16: another stream repeats %zu of %zu values\n", same, n);
    assert_true(same < n / 20);
    float *ref = xmalloc(n * 4);
    for (int centered = 0; centered < 2; centered++) {
        const float center = centered ? 0.25f : 0.0f, spread = centered ? 0.02f : 0.5f;
        expect_ok(g4_cuda_fill_normal_f32(df.p, n, 777, center, spread, NULL));
        dget(gotf, &df);
        for (size_t i = 0; i < n; i++) {
            const float z = fill_z(777, i);
            ref[i] = centered ? center * (1.0f + spread * z) : spread * z;
        }
        expect_close(gotf, ref, n, 2e-7, centered ? "fill_normal_f32 center 0.25 spread 0.02"
                                                  : "fill_normal_f32 sigma 0.5");
    }
    dfree(&db), dfree(&df);
    free(got), free(got2), free(gotf), free(ref);
}

int main(void) {
    if (g4_no_cuda_device()) return 77;
    struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul),        cmocka_unit_test(test_gemv),
        cmocka_unit_test(test_gemv_epilogue), cmocka_unit_test(test_embed),
        cmocka_unit_test(test_ple_combine),   cmocka_unit_test(test_rmsnorm),
        cmocka_unit_test(test_head_norm_rope), cmocka_unit_test(test_qkv_norm_rope), cmocka_unit_test(test_attention),
        cmocka_unit_test(test_kv_commit),     cmocka_unit_test(test_gelu),
        cmocka_unit_test(test_moe_route),     cmocka_unit_test(test_moe_grouped),
        cmocka_unit_test(test_moe_decode),
        cmocka_unit_test(test_softcap_argmax), cmocka_unit_test(test_sample),
        cmocka_unit_test(test_fill_normal),
    };
    return _cmocka_run_group_tests("tests", tests, g4_cuda_tests_select(tests, G4_COUNT(tests)),
                                   NULL, NULL);
}

#endif
