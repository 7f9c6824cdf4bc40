// Per-head RMSNorm + RoPE: q_norm / k_norm (learned weight) or v_norm (no weight, no rotation)
// of Gemma4TextAttention, then apply_rotary_pos_emb with the rotate-half convention. One warp
// per (token, head) row; lane l owns the pairs (i, i + head_dim/2) for i = l, l + 32, ... so a
// row of head_dim <= 512 lives in 16 registers per lane and can be rewritten in place.
// inv_freq[i] = 1 / theta^(2i / head_dim) comes from a table the host computes with the CPU
// engine's expression (g4_cuda_rope_inv_freq): the device powf is not correctly rounded, and
// one ulp of inv_freq at position ~131000 moves cos/sin by ~1e-2. Pairs i >= n_rope_pairs are
// the identity ("proportional" RoPE of the full-attention layers).
// CPU reference: g4_rmsnorm_cpu + g4_rope_cpu (kernels/cpu/ops_cpu.h).
#include "common.cuh"

#define ROPE_ROWS_PER_BLOCK 4
#define PAIRS_PER_LANE (G4_CUDA_MAX_HEAD_DIM / 2 / 32)

static __global__ void head_norm_rope_kernel(float *dst, int64_t dst_stride, const float *src,
                                             int64_t src_stride, const float *w,
                                             int n_rows, int n_heads, int head_dim,
                                             int n_rope_pairs, const float *inv_freq,
                                             int64_t pos0, float eps) {
    const int row = blockIdx.x * ROPE_ROWS_PER_BLOCK + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (row >= n_rows) return; // whole warps leave; no block barrier below
    const int64_t t = row / n_heads, h = row % n_heads;
    const int half = head_dim / 2;
    const float *x = src + t * src_stride + h * head_dim;
    float a[PAIRS_PER_LANE], b[PAIRS_PER_LANE];
    float ss = 0.0f;
#pragma unroll
    for (int j = 0; j < PAIRS_PER_LANE; j++) {
        const int i = lane + 32 * j;
        a[j] = i < half ? x[i] : 0.0f;
        b[j] = i < half ? x[i + half] : 0.0f;
        ss += a[j] * a[j] + b[j] * b[j];
    }
    const float inv = rsqrtf(warp_sum(ss) / (float)head_dim + eps);
    const float pos = (float)(pos0 + t);
#pragma unroll
    for (int j = 0; j < PAIRS_PER_LANE; j++) {
        const int i = lane + 32 * j;
        if (i >= half) continue;
        float va = a[j] * inv, vb = b[j] * inv;
        if (w) {
            va *= w[i];
            vb *= w[i + half];
        }
        if (i < n_rope_pairs) {
            const float ang = pos * inv_freq[i];
            const float c = cosf(ang), s = sinf(ang);
            const float ra = va * c - vb * s, rb = vb * c + va * s;
            va = ra;
            vb = rb;
        }
        const int64_t o = t * dst_stride + h * head_dim + i;
        dst[o] = va;
        dst[o + half] = vb;
    }
}

void g4_cuda_rope_inv_freq(float *inv_freq, int n_rope_pairs, int head_dim, float theta,
                           float factor) {
    // the expression of g4_rope_factor_cpu (kernels/cpu/ops_cpu.c), by the host's libm
    for (int i = 0; i < n_rope_pairs; i++)
        inv_freq[i] = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim) / factor;
}

g4_status g4_cuda_head_norm_rope(float *dst, int64_t dst_stride, const float *src,
                                 int64_t src_stride, const float *w,
                                 int n_tokens, int n_heads, int head_dim, int n_rope_pairs,
                                 const float *inv_freq, int64_t pos0, float eps,
                                 cudaStream_t stream) {
    if (n_tokens < 1 || n_heads < 1 || head_dim < 2 || head_dim % 2 ||
        head_dim > G4_CUDA_MAX_HEAD_DIM || n_rope_pairs < 0 || n_rope_pairs > head_dim / 2 ||
        (n_rope_pairs > 0 && !inv_freq) ||
        src_stride < (int64_t)n_heads * head_dim ||
        dst_stride < (int64_t)n_heads * head_dim)
        return g4_fail(G4_ERR_INVALID_ARGUMENT,
                       "cuda head_norm_rope: n_tokens %d, n_heads %d, head_dim %d (even, <= %d), "
                       "rope pairs %d, strides %lld/%lld",
                       n_tokens, n_heads, head_dim, G4_CUDA_MAX_HEAD_DIM, n_rope_pairs,
                       (long long)src_stride, (long long)dst_stride);
    const int rows = n_tokens * n_heads;
    const unsigned blocks = (unsigned)g4_ceil_div(rows, ROPE_ROWS_PER_BLOCK);
    head_norm_rope_kernel G4_LAUNCH(blocks, 32 * ROPE_ROWS_PER_BLOCK, 0, stream)(
        dst, dst_stride, src, src_stride, w, rows, n_heads, head_dim, n_rope_pairs,
        inv_freq, pos0, eps);
    return g4_cuda_launch_status("head_norm_rope_kernel");
}
