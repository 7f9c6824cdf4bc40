// The engine's GEMM (prompts; decode of up to 8 tokens goes through gemv.cu): nn.Linear without
// bias, bf16 weights times fp32 activations with fp32 accumulation, through cuBLAS. CPU reference: g4_matmul_cpu.
//
// Precision. GEMMA4_PRECISION_BF16 (bf16_act): the activations are rounded to bf16 (round to
// nearest even) and one bf16 x bf16 GEMM with fp32 accumulation runs, as the CPU engine's
// g4_matmul_cpu_bf16act computes. FP32: cuBLAS needs A and B of one type, and rounding the
// activations is not exact (on the golden fixtures bf16 GEMM inputs move the logits by 5-36%,
// see kernels/README.md). Each fp32 activation x is split exactly into hi = bf16(x) and
// lo = bf16(x - hi); w.x = w.hi + w.lo with exact bf16 products and fp32 accumulation, leaving
// ~2^-17 |x| of x unrepresented (the CPU engine, fp32 throughout, differs from it by summation
// order). Both halves are the columns of
// one GEMM, so the weights are read once (decode is bound by those reads); a fold kernel adds
// the halves. When the fold scratch is too small (prefill of a large vocabulary), two GEMMs
// accumulate into out instead, reading the weights twice.
//
// Layout: w row-major (rows, cols) is w^T column-major with ld cols; x row-major (n, cols) is
// x^T with ld cols; out row-major (n, rows) is out^T with ld rows. So out^T = op_T(w^T) x^T:
// cublasGemmEx(transa = T, transb = N, m = rows, n = tokens, k = cols).
#include "common.cuh"

static __global__ void split_kernel(g4_bf16 *xs, const float *x, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const float v = x[i];
        const g4_bf16 hi = f2bf(v);
        xs[i] = hi;
        xs[n + i] = f2bf(v - bf2f(hi));
    }
}

// xs (n) = bf16(x): GEMMA4_PRECISION_BF16's rounded activations
static __global__ void round_kernel(g4_bf16 *xs, const float *x, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        xs[i] = f2bf(x[i]);
}

// out (n) = out2[0, n) + out2[n, 2n)
static __global__ void fold_kernel(float *out, const float *out2, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        out[i] = out2[i] + out2[n + i];
}

static g4_status gemm(cublasHandle_t blas, float *out, const g4_bf16 *x, const g4_bf16 *w, int n,
                      int rows, int cols, float beta) {
    const float one = 1.0f;
    G4_CUBLAS_TRY(cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, rows, n, cols, &one, w, CUDA_R_16BF,
                               cols, x, CUDA_R_16BF, cols, &beta, out, CUDA_R_32F, rows,
                               CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return G4_OK;
}

g4_status g4_cuda_matmul(cublasHandle_t blas, float *out, const float *x, const g4_bf16 *w,
                         int n_tokens, int rows, int cols, bool bf16_act,
                         const struct g4_cuda_gemm_scratch *scr, cudaStream_t stream) {
    const size_t n_in = (size_t)n_tokens * cols, n_out = (size_t)n_tokens * rows;
    if (n_tokens < 1 || rows < 1 || cols < 1 || 2 * (size_t)n_tokens > 0x7fffffff)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "cuda matmul: sizes n=%d rows=%d cols=%d", n_tokens,
                       rows, cols);
    if (!scr || !scr->x_split || scr->x_split_elems < 2 * n_in)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "cuda matmul: split scratch needs %zu elements, has %zu",
                       2 * n_in, scr ? scr->x_split_elems : 0);
    if (bf16_act) {
        round_kernel G4_LAUNCH(g4_grid_1d(n_in, 256), 256, 0, stream)(scr->x_split, x, (int64_t)n_in);
        G4_TRY(g4_cuda_launch_status("round_kernel"));
        return gemm(blas, out, scr->x_split, w, n_tokens, rows, cols, 0.0f);
    }
    split_kernel G4_LAUNCH(g4_grid_1d(n_in, 256), 256, 0, stream)(scr->x_split, x, (int64_t)n_in);
    G4_TRY(g4_cuda_launch_status("split_kernel"));
    const g4_bf16 *hi = scr->x_split, *lo = scr->x_split + n_in;
    if (scr->out2 && scr->out2_floats >= 2 * n_out) {
        G4_TRY(gemm(blas, scr->out2, hi, w, 2 * n_tokens, rows, cols, 0.0f));
        fold_kernel G4_LAUNCH(g4_grid_1d(n_out, 256), 256, 0, stream)(out, scr->out2, (int64_t)n_out);
        return g4_cuda_launch_status("fold_kernel");
    }
    G4_TRY(gemm(blas, out, hi, w, n_tokens, rows, cols, 0.0f));
    return gemm(blas, out, lo, w, n_tokens, rows, cols, 1.0f);
}
