// Ring commit of the sliding K/V slots (g4_kv_cache_commit in core/kv_cache.c): a step writes
// its new K/V rows to staging, attention reads ring + staging, and after the last layer the
// staged rows that stay inside the window are copied into their ring rows. Rows of the linear
// (full-attention) slots are written in place by rope.cu and need nothing here. The position
// comes from the device step state (a captured graph serves every position); rows are copied
// as bytes (fp32 or bf16 elements alike), 16 bytes at a time where the row size and the bases
// allow it.
#include "common.cuh"

// Block (i, s): staged row i of ring s.
static __global__ void kv_commit_kernel(const struct g4_cuda_ring *rings,
                                        const struct g4_cuda_step *step, int n_tokens) {
    const struct g4_cuda_ring r = rings[blockIdx.y];
    const int i = blockIdx.x;
    if (i < n_tokens - r.capacity) return; // overwritten later in this same step
    const int64_t bytes = (int64_t)r.row * (r.bf16 ? 2 : 4);
    const int64_t dst = ((step->pos0 + i) % r.capacity) * bytes, src = (int64_t)i * bytes;
    const unsigned char *sk = static_cast<const unsigned char *>(r.stage_k) + src;
    const unsigned char *sv = static_cast<const unsigned char *>(r.stage_v) + src;
    unsigned char *dk = static_cast<unsigned char *>(r.k) + dst;
    unsigned char *dv = static_cast<unsigned char *>(r.v) + dst;
    const uintptr_t al = (uintptr_t)sk | (uintptr_t)sv | (uintptr_t)dk | (uintptr_t)dv;
    if (al % 16 == 0 && bytes % 16 == 0) {
        for (int64_t c = threadIdx.x; c < bytes / 16; c += blockDim.x) {
            reinterpret_cast<uint4 *>(dk)[c] = reinterpret_cast<const uint4 *>(sk)[c];
            reinterpret_cast<uint4 *>(dv)[c] = reinterpret_cast<const uint4 *>(sv)[c];
        }
    } else { // row = n_kv_heads * head_dim is even: 4-byte units
        for (int64_t c = threadIdx.x; c < bytes / 4; c += blockDim.x) {
            reinterpret_cast<uint32_t *>(dk)[c] = reinterpret_cast<const uint32_t *>(sk)[c];
            reinterpret_cast<uint32_t *>(dv)[c] = reinterpret_cast<const uint32_t *>(sv)[c];
        }
    }
}

g4_status g4_cuda_kv_commit(const struct g4_cuda_ring *rings, int n_rings,
                            const struct g4_cuda_step *step, int n_tokens, cudaStream_t stream) {
    if (n_rings == 0) return G4_OK;
    if (n_rings < 0 || n_rings > 65535 || n_tokens < 1 || !step)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "cuda kv_commit: n_rings %d, n_tokens %d%s",
                       n_rings, n_tokens, step ? "" : ", no step state");
    const dim3 grid((unsigned)n_tokens, (unsigned)n_rings);
    kv_commit_kernel G4_LAUNCH(grid, 128, 0, stream)(rings, step, n_tokens);
    return g4_cuda_launch_status("kv_commit_kernel");
}
