// RMSNorm kernels (Gemma4RMSNorm: x * (mean(x^2) + eps)^-0.5 * w, plain weight, fp32), one block
// of 256 threads per row: the plain norm, the sandwich-norm residual update fused with the next
// norm, and the MoE block's sum of two norms.
// CPU reference: g4_rmsnorm_cpu (kernels/cpu/ops_cpu.h); the fused forms mirror kernels/cpu/forward_cpu.c.
#include "common.cuh"

#define NORM_THREADS 256

static __device__ __forceinline__ float row_inv_rms(const float *x, int dim, float eps) {
    float ss = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) ss += x[i] * x[i];
    return rsqrtf(block_sum(ss) / (float)dim + eps);
}

// Every thread reads its elements before the block_sum barrier and writes only those after it,
// so out may be x.
static __global__ void rmsnorm_kernel(float *out, const float *x, const float *w, int dim,
                                      float eps) {
    const int64_t r = blockIdx.x;
    const float *xr = x + r * dim;
    const float inv = row_inv_rms(xr, dim, eps);
    float *o = out + r * dim;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) o[i] = w ? xr[i] * inv * w[i] : xr[i] * inv;
}

static g4_status check_rows(const char *what, int n_rows, int dim) {
    if (n_rows >= 1 && dim >= 1) return G4_OK;
    return g4_fail(G4_ERR_INVALID_ARGUMENT, "cuda %s: n_rows %d, dim %d", what, n_rows, dim);
}

g4_status g4_cuda_rmsnorm(float *out, const float *x, const float *w, int n_rows, int dim,
                          float eps, cudaStream_t stream) {
    G4_TRY(check_rows("rmsnorm", n_rows, dim));
    rmsnorm_kernel G4_LAUNCH(n_rows, NORM_THREADS, 0, stream)(out, x, w, dim, eps);
    return g4_cuda_launch_status("rmsnorm_kernel");
}

// x = (x + rmsnorm(t) * w_t) * scale; then out per mode. Each thread rereads only the x elements
// it wrote itself, so no barrier is needed between the update and the second norm's sum.
static __global__ void add_rmsnorm_kernel(float *x, const float *t, const float *w_t, float scale,
                                          float *out, const float *w_out, int mode, int dim,
                                          float eps) {
    const int64_t r = blockIdx.x;
    float *xr = x + r * dim;
    const float *tr = t + r * dim;
    const float inv_t = row_inv_rms(tr, dim, eps);
    float ss = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        const float v = (xr[i] + tr[i] * inv_t * w_t[i]) * scale;
        xr[i] = v;
        ss += v * v;
    }
    if (mode == G4_CUDA_OUT_NONE) return;
    float *o = out + r * dim;
    const float inv = rsqrtf(block_sum(ss) / (float)dim + eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x) o[i] = xr[i] * inv * w_out[i];
}

g4_status g4_cuda_add_rmsnorm(float *x, const float *t, const float *w_t, float scale,
                              float *out, const float *w_out, enum g4_cuda_out mode,
                              int n_rows, int dim, float eps, cudaStream_t stream) {
    G4_TRY(check_rows("add_rmsnorm", n_rows, dim));
    if ((mode != G4_CUDA_OUT_NONE && mode != G4_CUDA_OUT_NORM) ||
        (mode == G4_CUDA_OUT_NORM && (!out || !w_out)))
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "cuda add_rmsnorm: output mode %d needs out and w_out",
                       (int)mode);
    add_rmsnorm_kernel G4_LAUNCH(n_rows, NORM_THREADS, 0, stream)(x, t, w_t, scale, out, w_out,
                                                            (int)mode, dim, eps);
    return g4_cuda_launch_status("add_rmsnorm_kernel");
}

static __global__ void rmsnorm_sum2_kernel(float *a, const float *wa, const float *b,
                                           const float *wb, int dim, float eps) {
    const int64_t r = blockIdx.x;
    float *ar = a + r * dim;
    const float *br = b + r * dim;
    const float inv_a = row_inv_rms(ar, dim, eps);
    const float inv_b = row_inv_rms(br, dim, eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x)
        ar[i] = ar[i] * inv_a * wa[i] + br[i] * inv_b * wb[i];
}

g4_status g4_cuda_rmsnorm_sum2(float *a, const float *wa, const float *b, const float *wb,
                               int n_rows, int dim, float eps, cudaStream_t stream) {
    G4_TRY(check_rows("rmsnorm_sum2", n_rows, dim));
    rmsnorm_sum2_kernel G4_LAUNCH(n_rows, NORM_THREADS, 0, stream)(a, wa, b, wb, dim, eps);
    return g4_cuda_launch_status("rmsnorm_sum2_kernel");
}
