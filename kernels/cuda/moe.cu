// Mixture of experts (26B-A4B): Gemma4TextRouter on the device (fp32 throughout, so routing
// decisions see the same numbers as the CPU engine's), a stable grouping of the (token, k)
// assignments by expert, a grouped matmul (bf16 weights, fp32 activations and arithmetic) that
// runs every expert's rows in one launch without the host knowing the counts (no
// synchronization), and the weighted combine.
// CPU reference: g4_moe_route_cpu (kernels/cpu/ops_cpu.h) and moe() in kernels/cpu/forward_cpu.c.
#include "common.cuh"

#define ROUTE_THREADS 256

// One block per token. Dynamic shared memory: probs (n_experts) floats, taken (n_experts) bytes.
static __global__ void moe_route_kernel(float *weights, int32_t *experts, const float *x,
                                        const float *scale, const float *proj,
                                        const float *per_expert_scale, int hidden, int n_experts,
                                        int top_k, float eps) {
    float *probs = dynamic_smem<float>();
    unsigned char *taken = reinterpret_cast<unsigned char *>(probs + n_experts);
    const int64_t t = blockIdx.x;
    const float *xr = x + t * hidden;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;

    float ss = 0.0f;
    for (int i = threadIdx.x; i < hidden; i += blockDim.x) ss += xr[i] * xr[i];
    const float inv = rsqrtf(block_sum(ss) / (float)hidden + eps);
    const float root = powf((float)hidden, -0.5f);
    // router logits: one warp per expert; the normed input is recomputed on the fly
    for (int e = warp; e < n_experts; e += n_warps) {
        const float *pr = proj + (int64_t)e * hidden;
        float d = 0.0f;
        for (int i = lane; i < hidden; i += 32) d += xr[i] * inv * scale[i] * root * pr[i];
        d = warp_sum(d);
        if (lane == 0) probs[e] = d;
    }
    for (int e = threadIdx.x; e < n_experts; e += blockDim.x) taken[e] = 0;
    __syncthreads();
    float mx = -INFINITY;
    for (int e = threadIdx.x; e < n_experts; e += blockDim.x) mx = fmaxf(mx, probs[e]);
    mx = block_max(mx);
    float sum = 0.0f;
    for (int e = threadIdx.x; e < n_experts; e += blockDim.x) {
        const float v = expf(probs[e] - mx);
        probs[e] = v;
        sum += v;
    }
    sum = block_sum(sum);
    for (int e = threadIdx.x; e < n_experts; e += blockDim.x) probs[e] /= sum;
    __syncthreads();
    // top-k, largest first, ties towards the lower index (torch.topk as the CPU reference does)
    for (int k = 0; k < top_k; k++) {
        float bv = -INFINITY;
        int bi = -1;
        for (int e = threadIdx.x; e < n_experts; e += blockDim.x) {
            const float v = probs[e] == probs[e] ? probs[e] : -INFINITY;
            if (!taken[e] && ranks_first(v, e, bv, bi)) {
                bv = v;
                bi = e;
            }
        }
        block_argmax(&bv, &bi);
        if (threadIdx.x == 0) {
            experts[t * top_k + k] = bi;
            weights[t * top_k + k] = probs[bi];
            taken[bi] = 1;
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) { // renormalise in k order, as the reference sums
        float wsum = 0.0f;
        for (int k = 0; k < top_k; k++) wsum += weights[t * top_k + k];
        for (int k = 0; k < top_k; k++)
            weights[t * top_k + k] =
                weights[t * top_k + k] / wsum * per_expert_scale[experts[t * top_k + k]];
    }
}

g4_status g4_cuda_moe_route(float *weights, int32_t *experts, const float *x, const float *scale,
                            const float *proj, const float *per_expert_scale, int n_tokens,
                            int hidden, int n_experts, int top_k, float eps, cudaStream_t stream) {
    if (n_tokens < 1 || hidden < 1 || n_experts < 1 || n_experts > 4096 || top_k < 1 ||
        top_k > n_experts)
        return g4_fail(G4_ERR_INVALID_ARGUMENT,
                       "cuda moe_route: n_tokens %d, hidden %d, n_experts %d (<= 4096), top_k %d",
                       n_tokens, hidden, n_experts, top_k);
    const size_t smem = (size_t)n_experts * (sizeof(float) + 1);
    moe_route_kernel G4_LAUNCH(n_tokens, ROUTE_THREADS, smem, stream)(
        weights, experts, x, scale, proj, per_expert_scale, hidden, n_experts, top_k, eps);
    return g4_cuda_launch_status("moe_route_kernel");
}

// One block: thread e counts and then lists expert e's assignments in assignment order.
static __global__ void moe_sort_kernel(int32_t *offsets, int32_t *order, int32_t *slot_of,
                                       const int32_t *experts, int n_assign, int n_experts) {
    for (int e = threadIdx.x; e < n_experts; e += blockDim.x) {
        int c = 0;
        for (int a = 0; a < n_assign; a++) c += experts[a] == e;
        offsets[e + 1] = c;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        offsets[0] = 0;
        for (int e = 0; e < n_experts; e++) offsets[e + 1] += offsets[e];
    }
    __syncthreads();
    for (int e = threadIdx.x; e < n_experts; e += blockDim.x) {
        int pos = offsets[e];
        for (int a = 0; a < n_assign; a++) {
            if (experts[a] != e) continue;
            order[pos] = a;
            slot_of[a] = pos;
            pos++;
        }
    }
}

g4_status g4_cuda_moe_sort(int32_t *offsets, int32_t *order, int32_t *slot_of,
                           const int32_t *experts, int n_assign, int n_experts,
                           cudaStream_t stream) {
    if (n_assign < 1 || n_experts < 1)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "cuda moe_sort: n_assign %d, n_experts %d", n_assign,
                       n_experts);
    moe_sort_kernel G4_LAUNCH(1, 1024, 0, stream)(offsets, order, slot_of, experts, n_assign, n_experts);
    return g4_cuda_launch_status("moe_sort_kernel");
}

#define MM_BM 64 // rows (assignments) per block
#define MM_BN 64 // output columns per block
#define MM_BK 32 // reduction step
#define MM_THREADS 256

// Block (x, y, e): output columns [64x, 64x + 64) of expert e's rows [64y, 64y + 64). Each thread
// computes a 4 x 4 patch from fp32 tiles in shared memory (weights widened from bf16).
static __global__ void __launch_bounds__(MM_THREADS)
    moe_matmul_kernel(float *out, const float *a, const int32_t *order, int a_div,
                      const g4_bf16 *w, const int32_t *offsets, int n_out, int k_dim) {
    __shared__ float as[MM_BK][MM_BM + 1];
    __shared__ float ws[MM_BK][MM_BN + 1];
    __shared__ int64_t arow[MM_BM];
    const int e = blockIdx.z;
    const int row_begin = offsets[e] + blockIdx.y * MM_BM;
    const int row_end = min(offsets[e + 1], row_begin + MM_BM);
    if (row_begin >= row_end) return; // the whole block: this expert has fewer rows
    const int n0 = blockIdx.x * MM_BN, tid = threadIdx.x, ty = tid / 16, tx = tid % 16;
    const g4_bf16 *we = w + (int64_t)e * n_out * k_dim;
    if (tid < MM_BM) {
        const int s = row_begin + tid;
        arow[tid] = s < row_end ? (order ? order[s] / a_div : s) : -1;
    }
    __syncthreads();
    float acc[4][4] = {};
    for (int k0 = 0; k0 < k_dim; k0 += MM_BK) {
        for (int idx = tid; idx < MM_BM * MM_BK; idx += MM_THREADS) {
            const int m = idx / MM_BK, kk = idx % MM_BK, k = k0 + kk;
            const int64_t r = arow[m];
            as[kk][m] = r >= 0 && k < k_dim ? a[r * k_dim + k] : 0.0f;
        }
        for (int idx = tid; idx < MM_BN * MM_BK; idx += MM_THREADS) {
            const int nn = idx / MM_BK, kk = idx % MM_BK, k = k0 + kk, n = n0 + nn;
            ws[kk][nn] = n < n_out && k < k_dim ? bf2f(we[(int64_t)n * k_dim + k]) : 0.0f;
        }
        __syncthreads();
#pragma unroll 8
        for (int kk = 0; kk < MM_BK; kk++) {
            float av[4], wv[4];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                av[i] = as[kk][ty * 4 + i];
                wv[i] = ws[kk][tx * 4 + i];
            }
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] += av[i] * wv[j];
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int s = row_begin + ty * 4 + i;
        if (s >= row_end) continue;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int n = n0 + tx * 4 + j;
            if (n < n_out) out[(int64_t)s * n_out + n] = acc[i][j];
        }
    }
}

g4_status g4_cuda_moe_matmul(float *out, const float *a, const int32_t *order, int a_div,
                             const g4_bf16 *w, const int32_t *offsets, int n_experts,
                             int max_rows, int n_out, int k_dim, cudaStream_t stream) {
    if (n_experts < 1 || n_experts > 65535 || max_rows < 1 || n_out < 1 || k_dim < 1 ||
        (order && a_div < 1))
        return g4_fail(G4_ERR_INVALID_ARGUMENT,
                       "cuda moe_matmul: n_experts %d, max_rows %d, n_out %d, k_dim %d, a_div %d",
                       n_experts, max_rows, n_out, k_dim, a_div);
    const dim3 grid((unsigned)g4_ceil_div(n_out, MM_BN), (unsigned)g4_ceil_div(max_rows, MM_BM),
                    (unsigned)n_experts);
    moe_matmul_kernel G4_LAUNCH(grid, MM_THREADS, 0, stream)(out, a, order, a_div, w, offsets, n_out,
                                                       k_dim);
    return g4_cuda_launch_status("moe_matmul_kernel");
}

// One block per token. Its assignments are first ordered by expert id (thread 0, in dynamic
// shared memory), so the sum runs in expert-id order as the CPU engine's moe() sums (one order
// on both engines, whatever order the router ranked them in); explicit FMAs, so the rounding
// does not depend on the compiler's contraction.
static __global__ void moe_combine_kernel(float *out, const float *y, const float *weights,
                                          const int32_t *experts, const int32_t *slot_of,
                                          int top_k, int dim) {
    int32_t *slot = dynamic_smem<int32_t>(); // (top_k,) in expert order
    float *wk = reinterpret_cast<float *>(slot + top_k);
    const int64_t t = blockIdx.x;
    if (threadIdx.x == 0) {
        int32_t *ex = reinterpret_cast<int32_t *>(wk + top_k);
        for (int k = 0; k < top_k; k++) { // insertion sort by expert id (top_k is small)
            const int32_t e = experts[t * top_k + k];
            int j = k;
            for (; j > 0 && ex[j - 1] > e; j--) {
                ex[j] = ex[j - 1];
                slot[j] = slot[j - 1];
                wk[j] = wk[j - 1];
            }
            ex[j] = e;
            slot[j] = slot_of[t * top_k + k];
            wk[j] = weights[t * top_k + k];
        }
    }
    __syncthreads();
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        float acc = 0.0f;
        for (int k = 0; k < top_k; k++) acc = fmaf(wk[k], y[(int64_t)slot[k] * dim + i], acc);
        out[t * dim + i] = acc;
    }
}

g4_status g4_cuda_moe_combine(float *out, const float *y, const float *weights,
                              const int32_t *experts, const int32_t *slot_of, int n_tokens,
                              int top_k, int dim, cudaStream_t stream) {
    if (n_tokens < 1 || top_k < 1 || top_k > 4096 || dim < 1)
        return g4_fail(G4_ERR_INVALID_ARGUMENT,
                       "cuda moe_combine: n_tokens %d, top_k %d (<= 4096), dim %d", n_tokens,
                       top_k, dim);
    const size_t smem = (size_t)top_k * 12; // slots, weights, experts: <= 48 KiB
    moe_combine_kernel G4_LAUNCH(n_tokens, 256, smem, stream)(out, y, weights, experts, slot_of,
                                                              top_k, dim);
    return g4_cuda_launch_status("moe_combine_kernel");
}
