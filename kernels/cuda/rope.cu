// Per-head RMSNorm + RoPE: q_norm / k_norm (learned weight) or v_norm (no weight, no rotation)
// of Gemma4TextAttention, then apply_rotary_pos_emb with the rotate-half convention, for up to
// three tensors (q, k, v) in one launch: at decode that is one kernel per layer instead of
// three. One warp per (token, head) row; lane l owns the pairs (i, i + head_dim/2) for
// i = l, l + 32, ... so a row of head_dim <= 512 lives in 16 registers per lane and can be
// rewritten in place. Positions come from the device step state (struct g4_cuda_step), so a
// captured graph serves every position. Outputs are fp32 or bf16 (the K/V cache in BF16
// precision; rounded to nearest even once, after the rotation).
// inv_freq[i] = 1 / theta^(2i / head_dim) comes from a table the host computes with the CPU
// engine's expression (g4_cuda_rope_inv_freq): the device powf is not correctly rounded, and
// one ulp of inv_freq at position ~131000 moves cos/sin by ~1e-2. Pairs i >= n_rope_pairs are
// the identity ("proportional" RoPE of the full-attention layers).
// CPU reference: g4_rmsnorm_cpu + g4_rope_cpu (kernels/cpu/ops_cpu.h).
#include <string.h>

#include "common.cuh"

#define ROPE_ROWS_PER_BLOCK 4
#define PAIRS_PER_LANE (G4_CUDA_MAX_HEAD_DIM / 2 / 32)

struct rope_params {
    struct g4_cuda_rope_part part[G4_CUDA_ROPE_MAX_PARTS];
    int n_parts, heads_per_token, n_rows, head_dim;
    const float *inv_freq;
    const struct g4_cuda_step *step;
    float eps;
};

static __global__ void head_norm_rope_kernel(const rope_params p) {
    const int row = blockIdx.x * ROPE_ROWS_PER_BLOCK + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (row >= p.n_rows) return; // whole warps leave; no block barrier below
    const int64_t t = row / p.heads_per_token;
    // This row's part, by constant indices only (a dynamic index into the parameter struct
    // would copy it to local memory).
    int h = row % p.heads_per_token;
    struct g4_cuda_rope_part pt = p.part[0];
#pragma unroll
    for (int i = 1; i < G4_CUDA_ROPE_MAX_PARTS; i++)
        if (i < p.n_parts && h >= pt.n_heads) {
            h -= pt.n_heads;
            pt = p.part[i];
        }
    const int head_dim = p.head_dim, half = head_dim / 2;
    const float *x = pt.src + t * pt.src_stride + (int64_t)h * head_dim;
    float a[PAIRS_PER_LANE], b[PAIRS_PER_LANE];
    float ss = 0.0f;
#pragma unroll
    for (int j = 0; j < PAIRS_PER_LANE; j++) {
        const int i = lane + 32 * j;
        a[j] = i < half ? x[i] : 0.0f;
        b[j] = i < half ? x[i + half] : 0.0f;
        ss += a[j] * a[j] + b[j] * b[j];
    }
    const float inv = rsqrtf(warp_sum(ss) / (float)head_dim + p.eps);
    const float pos = (float)(p.step->pos0 + t);
    const int64_t o0 = (pt.dst_at_pos ? p.step->pos0 + t : t) * pt.dst_stride + (int64_t)h * head_dim;
#pragma unroll
    for (int j = 0; j < PAIRS_PER_LANE; j++) {
        const int i = lane + 32 * j;
        if (i >= half) continue;
        float va = a[j] * inv, vb = b[j] * inv;
        if (pt.w) {
            va *= pt.w[i];
            vb *= pt.w[i + half];
        }
        if (i < pt.n_rope_pairs) {
            const float ang = pos * p.inv_freq[i];
            const float c = cosf(ang), s = sinf(ang);
            const float ra = va * c - vb * s, rb = vb * c + va * s;
            va = ra;
            vb = rb;
        }
        if (pt.dst_bf16) {
            g4_bf16 *d = static_cast<g4_bf16 *>(pt.dst) + o0 + i;
            d[0] = f2bf(va);
            d[half] = f2bf(vb);
        } else {
            float *d = static_cast<float *>(pt.dst) + o0 + i;
            d[0] = va;
            d[half] = vb;
        }
    }
}

void g4_cuda_rope_inv_freq(float *inv_freq, int n_rope_pairs, int head_dim, float theta,
                           float factor) {
    // the expression of g4_rope_factor_cpu (kernels/cpu/ops_cpu.c), by the host's libm
    for (int i = 0; i < n_rope_pairs; i++)
        inv_freq[i] = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim) / factor;
}

g4_status g4_cuda_head_norm_rope(const struct g4_cuda_rope_part *parts, int n_parts,
                                 int n_tokens, int head_dim, const float *inv_freq,
                                 const struct g4_cuda_step *step, float eps,
                                 cudaStream_t stream) {
    if (n_parts < 1 || n_parts > G4_CUDA_ROPE_MAX_PARTS || n_tokens < 1 || head_dim < 2 ||
        head_dim % 2 || head_dim > G4_CUDA_MAX_HEAD_DIM || !step)
        return g4_fail(G4_ERR_INVALID_ARGUMENT,
                       "cuda head_norm_rope: %d parts (1..%d), n_tokens %d, head_dim %d (even, "
                       "<= %d)%s",
                       n_parts, G4_CUDA_ROPE_MAX_PARTS, n_tokens, head_dim, G4_CUDA_MAX_HEAD_DIM,
                       step ? "" : ", no step state");
    rope_params p;
    memset(&p, 0, sizeof p);
    int64_t heads = 0;
    for (int i = 0; i < n_parts; i++) {
        const struct g4_cuda_rope_part *pt = &parts[i];
        const int64_t row = (int64_t)pt->n_heads * head_dim;
        if (pt->n_heads < 1 || pt->n_rope_pairs < 0 || pt->n_rope_pairs > head_dim / 2 ||
            (pt->n_rope_pairs > 0 && !inv_freq) || !pt->dst || !pt->src ||
            pt->src_stride < row || pt->dst_stride < row)
            return g4_fail(G4_ERR_INVALID_ARGUMENT,
                           "cuda head_norm_rope: part %d: n_heads %d, head_dim %d, rope pairs "
                           "%d, strides %lld/%lld",
                           i, pt->n_heads, head_dim, pt->n_rope_pairs, (long long)pt->src_stride,
                           (long long)pt->dst_stride);
        p.part[i] = *pt;
        heads += pt->n_heads;
    }
    if ((int64_t)n_tokens * heads > 0x7fffffff)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "cuda head_norm_rope: %d tokens x %lld heads",
                       n_tokens, (long long)heads);
    p.n_parts = n_parts;
    p.heads_per_token = (int)heads;
    p.n_rows = n_tokens * (int)heads;
    p.head_dim = head_dim;
    p.inv_freq = inv_freq;
    p.step = step;
    p.eps = eps;
    const unsigned blocks = (unsigned)g4_ceil_div(p.n_rows, ROPE_ROWS_PER_BLOCK);
    head_norm_rope_kernel G4_LAUNCH(blocks, 32 * ROPE_ROWS_PER_BLOCK, 0, stream)(p);
    return g4_cuda_launch_status("head_norm_rope_kernel");
}
