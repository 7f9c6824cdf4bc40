// Ring commit of the sliding K/V slots (g4_kv_cache_commit in core/kv_cache.c): a step writes
// its new K/V rows to staging, attention reads ring + staging, and after the last layer the
// staged rows that stay inside the window are copied into their ring rows. Rows of the linear
// (full-attention) slots are written in place by rope.cu and need nothing here.
#include "common.cuh"

// Block (i, s): staged row i of ring s.
static __global__ void kv_commit_kernel(const struct g4_cuda_ring *rings, int64_t pos0,
                                        int n_tokens) {
    const struct g4_cuda_ring r = rings[blockIdx.y];
    const int i = blockIdx.x;
    if (i < n_tokens - r.capacity) return; // overwritten later in this same step
    const int64_t dst = ((pos0 + i) % r.capacity) * r.row, src = (int64_t)i * r.row;
    // row = n_kv_heads * head_dim is even and rows start 8-byte aligned: copy float pairs
    const float2 *sk = reinterpret_cast<const float2 *>(r.stage_k + src);
    const float2 *sv = reinterpret_cast<const float2 *>(r.stage_v + src);
    float2 *dk = reinterpret_cast<float2 *>(r.k + dst);
    float2 *dv = reinterpret_cast<float2 *>(r.v + dst);
    for (int c = threadIdx.x; c < r.row / 2; c += blockDim.x) {
        dk[c] = sk[c];
        dv[c] = sv[c];
    }
}

g4_status g4_cuda_kv_commit(const struct g4_cuda_ring *rings, int n_rings, int64_t pos0,
                            int n_tokens, cudaStream_t stream) {
    if (n_rings == 0) return G4_OK;
    if (n_rings < 0 || n_rings > 65535 || n_tokens < 1 || pos0 < 0)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "cuda kv_commit: n_rings %d, n_tokens %d, pos0 %lld",
                       n_rings, n_tokens, (long long)pos0);
    const dim3 grid((unsigned)n_tokens, (unsigned)n_rings);
    kv_commit_kernel G4_LAUNCH(grid, 128, 0, stream)(rings, pos0, n_tokens);
    return g4_cuda_launch_status("kv_commit_kernel");
}
