// The logits tail: final softcap (cap * tanh(x / cap), Gemma4ForCausalLM with
// final_logit_softcapping) and greedy argmax over a vocabulary row on the device.
// CPU reference: g4_softcap_cpu (kernels/cpu/ops_cpu.h); argmax as g4_sampler_sample at temperature 0.
#include <limits.h>

#include "common.cuh"

static __global__ void softcap_kernel(float *x, size_t n, float cap) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        x[i] = cap * tanhf(x[i] / cap);
}

g4_status g4_cuda_softcap(float *x, size_t n, float cap, cudaStream_t stream) {
    if (n == 0 || !(cap > 0.0f))
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "cuda softcap: n %zu, cap %g", n, cap);
    softcap_kernel G4_LAUNCH(g4_grid_1d(n, 256), 256, 0, stream)(x, n, cap);
    return g4_cuda_launch_status("softcap_kernel");
}

// One block per row: the greedy token and, when nonfinite is not NULL, the lowest id whose
// logit is NaN or +-Inf (-1 when every logit is finite): what core/session.c checks on the host.
// Rows of a multiple of 4 floats at a 16-byte aligned address are read as float4.
static __global__ void argmax_kernel(int32_t *token, int32_t *nonfinite, const float *logits,
                                     int n_vocab, int vec4) {
    const float *row = logits + (int64_t)blockIdx.x * n_vocab;
    float bv = -INFINITY;
    int bi = -1, nf = INT_MAX;
    // Each thread's ids rise, so the first that ranks first is kept on ties and the first
    // non-finite one it sees is its lowest.
    if (vec4) {
        // One block streams the whole row (1 MiB for a 262144 vocabulary): UNROLL independent
        // 16-byte loads per thread in flight, each thread's ids still rising.
        enum { UNROLL = 4 };
        const float4 *r4 = reinterpret_cast<const float4 *>(row);
        const int n4 = n_vocab / 4;
        for (int j0 = threadIdx.x; j0 < n4; j0 += UNROLL * blockDim.x) {
            float4 q[UNROLL];
#pragma unroll
            for (int u = 0; u < UNROLL; u++) {
                const int j = j0 + u * (int)blockDim.x;
                q[u] = j < n4 ? r4[j] : make_float4(-INFINITY, -INFINITY, -INFINITY, -INFINITY);
            }
#pragma unroll
            for (int u = 0; u < UNROLL; u++) {
                const int j = j0 + u * (int)blockDim.x;
                if (j >= n4) break;
                const float e[4] = {q[u].x, q[u].y, q[u].z, q[u].w};
#pragma unroll
                for (int k = 0; k < 4; k++) {
                    const int i = 4 * j + k;
                    if (!isfinite(e[k]) && nf == INT_MAX) nf = i;
                    const float v = e[k] == e[k] ? e[k] : -INFINITY;
                    if (ranks_first(v, i, bv, bi)) bv = v, bi = i;
                }
            }
        }
    } else {
        for (int i = threadIdx.x; i < n_vocab; i += blockDim.x) {
            if (!isfinite(row[i]) && nf == INT_MAX) nf = i;
            const float v = row[i] == row[i] ? row[i] : -INFINITY;
            if (ranks_first(v, i, bv, bi)) bv = v, bi = i;
        }
    }
    block_argmax(&bv, &bi);
    if (nonfinite) {
        __shared__ int lowest;
        if (threadIdx.x == 0) lowest = INT_MAX;
        __syncthreads();
        if (nf != INT_MAX) atomicMin(&lowest, nf);
        __syncthreads();
        if (threadIdx.x == 0) nonfinite[blockIdx.x] = lowest == INT_MAX ? -1 : lowest;
    }
    if (threadIdx.x == 0) token[blockIdx.x] = bi;
}

g4_status g4_cuda_argmax(int32_t *token, int32_t *nonfinite, const float *logits, int n_rows,
                         int n_vocab, cudaStream_t stream) {
    if (n_rows < 1 || n_vocab < 1)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "cuda argmax: n_rows %d, n_vocab %d", n_rows,
                       n_vocab);
    const int vec4 = n_vocab % 4 == 0 && (uintptr_t)logits % 16 == 0;
    argmax_kernel G4_LAUNCH(n_rows, 1024, 0, stream)(token, nonfinite, logits, n_vocab, vec4);
    return g4_cuda_launch_status("argmax_kernel");
}
