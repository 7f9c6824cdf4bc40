// Mixture of experts (26B-A4B) on the device: Gemma4TextRouter and Gemma4TextExperts.
//
// Router (fp32 throughout, so routing decisions see the same numbers as the CPU engine's): one
// kernel normalises each token once (the router's scaled rmsnorm, and the experts' input norm
// pre_feedforward_layernorm_2 from the same sum of squares), a multi-block GEMV streams the fp32
// router matrix with 16-byte loads (experts x hidden split across blocks; the split partials are
// summed in split order by the next kernel), and a top-k kernel (one warp per token) does the
// softmax, top-k (ties to the lower index), renormalisation and per-expert scale. The split count
// depends on hidden only, so a token routes the same way in any batch.
//
// Experts: the (token, k) assignments are grouped by expert (stable counting sort; fused into the
// top-k kernel when one block holds every token). At decode (<= 8 tokens) two GEMV kernels stream
// each chosen expert's gate_up and down matrices once with 16-byte loads: gelu(gate) * up is fused
// into the first, the weighted combine into the second (each output row sums its token's experts
// in expert-id order, as the CPU engine does). At prefill a grouped GEMM (64 x 128 tiles, 4 x 8
// outputs per thread, 16-byte global loads, gelu * up fused into the gate_up product) runs every
// expert's rows in one launch without the host knowing the counts, then a combine kernel.
//
// Precision: fp32 accumulation everywhere. FP32 (bf16_act false): fp32 activations times bf16
// weights, exact products. BF16 (bf16_act true): activations rounded to bf16 on load, so the
// products are those of bf16 tensor cores (the sums run in fp32 in another order).
// CPU reference: g4_moe_route_cpu (kernels/cpu/ops_cpu.h) and moe() in kernels/cpu/forward_cpu.c.
#include "gemv.cuh"

#define NORM_THREADS 256
#define ROUTER_WARPS 8  // experts per router GEMV block, one warp each
#define ROUTER_TOKENS 8 // tokens per router GEMV block (the weights are read once per 8 tokens)
#define TOPK_SMEM_MAX 49152
#define DECODE_TOKENS 8   // the GEMV path's largest batch (registers hold one sum per token)
#define DECODE_ASSIGN 512  // and most assignments (the down kernel's dynamic shared memory)
#define DOWN_THREADS 128   // 4 warps of 4 rows: 16 output rows per block (176 blocks at 2816)

static __device__ __forceinline__ float act_round(float v, bool bf16) {
    return bf16 ? bf2f(f2bf(v)) : v;
}

// The 8 bf16 of a 16-byte load as floats (little-endian: the low half is the lower index).
static __device__ __forceinline__ void unpack8(const uint4 u, float *w) {
    const uint32_t p[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        w[2 * i] = __uint_as_float(p[i] << 16);
        w[2 * i + 1] = __uint_as_float(p[i] & 0xffff0000u);
    }
}

static inline bool aligned16(const void *p) { return ((uintptr_t)p & 15u) == 0; }

// ---- router ----------------------------------------------------------------------------------
static int router_splits(int hidden) {
    const int s = hidden / 256;
    return s < 1 ? 1 : s > G4_CUDA_MOE_ROUTER_SPLITS ? G4_CUDA_MOE_ROUTER_SPLITS : s;
}

size_t g4_cuda_moe_route_scratch_floats(int n_tokens, int hidden, int n_experts) {
    return (size_t)n_tokens * hidden + (size_t)G4_CUDA_MOE_ROUTER_SPLITS * n_tokens * n_experts;
}

// One block per token: rx = rmsnorm(x) * scale * root (the router input) and, when h2 is not
// NULL, h2 = rmsnorm(x) * w2 (the experts' input).
static __global__ void moe_norms_kernel(float *h2, float *rx, const float *x, const float *w2,
                                        const float *scale, int hidden, float root, float eps) {
    const int64_t t = blockIdx.x;
    const float *xr = x + t * hidden;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < hidden; i += blockDim.x) ss += xr[i] * xr[i];
    const float inv = rsqrtf(block_sum(ss) / (float)hidden + eps);
    for (int i = threadIdx.x; i < hidden; i += blockDim.x) {
        const float v = xr[i] * inv;
        rx[t * hidden + i] = v * scale[i] * root;
        if (h2) h2[t * hidden + i] = v * w2[i];
    }
}

// Block (x, y, z): experts [8x, 8x + 8) (a warp each), columns [y * chunk, (y + 1) * chunk) of
// hidden, tokens [8z, 8z + 8). part (n_splits, n_tokens, n_experts) gets the partial dots. vec:
// hidden % 4 == 0 and 16-byte aligned bases (chunk is then a multiple of 4).
static __global__ void __launch_bounds__(ROUTER_WARPS * 32)
    moe_router_gemv_kernel(float *part, const float *rx, const float *proj, int n_tokens,
                           int hidden, int n_experts, int chunk, bool vec) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int e = blockIdx.x * ROUTER_WARPS + warp;
    if (e >= n_experts) return; // whole warps; no block barrier below
    const int k0 = blockIdx.y * chunk, k1 = min(hidden, k0 + chunk);
    const int t0 = blockIdx.z * ROUTER_TOKENS, nt = min(ROUTER_TOKENS, n_tokens - t0);
    const float *pr = proj + (int64_t)e * hidden;
    float acc[ROUTER_TOKENS] = {};
    if (vec) {
        for (int c = k0 / 4 + lane; c < k1 / 4; c += 32) {
            const float4 w = reinterpret_cast<const float4 *>(pr)[c];
#pragma unroll
            for (int j = 0; j < ROUTER_TOKENS; j++) {
                if (j >= nt) break;
                const float4 v = reinterpret_cast<const float4 *>(rx + (int64_t)(t0 + j) * hidden)[c];
                acc[j] += w.x * v.x + w.y * v.y + w.z * v.z + w.w * v.w;
            }
        }
    } else {
        for (int i = k0 + lane; i < k1; i += 32) {
            const float w = pr[i];
#pragma unroll
            for (int j = 0; j < ROUTER_TOKENS; j++) {
                if (j >= nt) break;
                acc[j] += w * rx[(int64_t)(t0 + j) * hidden + i];
            }
        }
    }
#pragma unroll
    for (int j = 0; j < ROUTER_TOKENS; j++) {
        const float d = warp_sum(acc[j]);
        if (lane == 0 && j < nt) part[((int64_t)blockIdx.y * n_tokens + t0 + j) * n_experts + e] = d;
    }
}

// Stable counting sort of the n_assign assignments by expert, by the whole block: thread e
// counts and then lists expert e's assignments in assignment order. experts must be visible to
// every thread (written before a __syncthreads or by an earlier launch).
static __device__ void sort_assignments(int32_t *offsets, int32_t *order, int32_t *slot_of,
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

// One warp per token: logits = sum of the split partials in split order, softmax, top-k (largest
// first, ties to the lower index, torch.topk as the CPU reference resolves them), renormalise in
// k order, * per_expert_scale. Each lane only touches its own experts e = lane + 32 i in the
// warp's probs (dynamic shared memory, n_experts floats per warp), so no barrier is needed; a
// taken expert is marked -1 (a probability is >= 0; NaN ranks as -0.5, after every number). With
// offsets != NULL (one block holding every token) the block then sorts the assignments.
static __global__ void moe_topk_kernel(float *weights, int32_t *experts, int32_t *offsets,
                                       int32_t *order, int32_t *slot_of, const float *part,
                                       int n_splits, const float *per_expert_scale, int n_tokens,
                                       int n_experts, int top_k) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
    float *probs = dynamic_smem<float>() + (size_t)warp * n_experts;
    const int t = blockIdx.x * n_warps + warp;
    if (t < n_tokens) { // warp-uniform; the block barrier of the sort is outside
        float mx = -INFINITY;
        for (int e = lane; e < n_experts; e += 32) {
            float v = 0.0f;
            for (int s = 0; s < n_splits; s++) v += part[((int64_t)s * n_tokens + t) * n_experts + e];
            probs[e] = v;
            mx = fmaxf(mx, v);
        }
        mx = warp_max(mx);
        float sum = 0.0f;
        for (int e = lane; e < n_experts; e += 32) {
            const float v = expf(probs[e] - mx);
            probs[e] = v;
            sum += v;
        }
        sum = warp_sum(sum);
        for (int e = lane; e < n_experts; e += 32) {
            const float v = probs[e] / sum;
            probs[e] = v == v ? v : -0.5f;
        }
        float wsum = 0.0f;
        for (int k = 0; k < top_k; k++) {
            float bv = -INFINITY;
            int bi = -1;
            for (int e = lane; e < n_experts; e += 32) // ascending e: the first of equals stays
                if (bi < 0 || probs[e] > bv) {
                    bv = probs[e];
                    bi = e;
                }
            warp_argmax(&bv, &bi);
            if (lane == (bi & 31)) probs[bi] = -1.0f; // its owner marks it taken
            if (lane == 0) {
                experts[(int64_t)t * top_k + k] = bi;
                weights[(int64_t)t * top_k + k] = bv;
                wsum += bv;
            }
        }
        if (lane == 0) // lane 0 wrote them: renormalise in k order, as the reference sums
            for (int k = 0; k < top_k; k++) {
                const int64_t a = (int64_t)t * top_k + k;
                weights[a] = weights[a] / wsum * per_expert_scale[experts[a]];
            }
    }
    if (!offsets) return; // uniform over the grid
    __syncthreads();
    sort_assignments(offsets, order, slot_of, experts, n_tokens * top_k, n_experts);
}

// One block: the grouping for a grid of several top-k blocks.
static __global__ void moe_sort_kernel(int32_t *offsets, int32_t *order, int32_t *slot_of,
                                       const int32_t *experts, int n_assign, int n_experts) {
    sort_assignments(offsets, order, slot_of, experts, n_assign, n_experts);
}

g4_status g4_cuda_moe_route(float *weights, int32_t *experts, int32_t *offsets, int32_t *order,
                            int32_t *slot_of, float *h2, const float *w2, const float *x,
                            const float *scale, const float *proj, const float *per_expert_scale,
                            int n_tokens, int hidden, int n_experts, int top_k, float eps,
                            float *scratch, size_t scratch_floats, cudaStream_t stream) {
    if (n_tokens < 1 || hidden < 1 || n_experts < 1 || n_experts > 4096 || top_k < 1 ||
        top_k > n_experts || n_tokens > 65535 * ROUTER_TOKENS)
        return g4_fail(G4_ERR_INVALID_ARGUMENT,
                       "cuda moe_route: n_tokens %d, hidden %d, n_experts %d (<= 4096), top_k %d",
                       n_tokens, hidden, n_experts, top_k);
    if (!offsets != !order || !offsets != !slot_of || !h2 != !w2)
        return g4_fail(G4_ERR_INVALID_ARGUMENT,
                       "cuda moe_route: offsets, order and slot_of (and h2 with w2) go together");
    const size_t need = g4_cuda_moe_route_scratch_floats(n_tokens, hidden, n_experts);
    if (!scratch || scratch_floats < need)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "cuda moe_route: scratch of %zu floats, needs %zu",
                       scratch_floats, need);
    float *rx = scratch, *part = scratch + (size_t)n_tokens * hidden;
    // hidden^-0.5 from the host's powf, as the CPU reference computes it
    moe_norms_kernel G4_LAUNCH(n_tokens, NORM_THREADS, 0, stream)(h2, rx, x, w2, scale, hidden,
                                                                 powf((float)hidden, -0.5f), eps);
    G4_TRY(g4_cuda_launch_status("moe_norms_kernel"));
    const int splits = router_splits(hidden);
    const bool vec = hidden % 4 == 0 && aligned16(rx) && aligned16(proj);
    int chunk = (int)g4_ceil_div(hidden, splits);
    if (vec) chunk = (chunk + 3) / 4 * 4;
    const dim3 grid((unsigned)g4_ceil_div(n_experts, ROUTER_WARPS), (unsigned)splits,
                    (unsigned)g4_ceil_div(n_tokens, ROUTER_TOKENS));
    moe_router_gemv_kernel G4_LAUNCH(grid, ROUTER_WARPS * 32, 0, stream)(
        part, rx, proj, n_tokens, hidden, n_experts, chunk, vec);
    G4_TRY(g4_cuda_launch_status("moe_router_gemv_kernel"));
    int warps = TOPK_SMEM_MAX / (n_experts * (int)sizeof(float));
    if (warps > 8) warps = 8;
    const int blocks = (int)g4_ceil_div(n_tokens, warps);
    const bool fuse_sort = offsets && blocks == 1;
    moe_topk_kernel G4_LAUNCH(blocks, warps * 32, (size_t)warps * n_experts * sizeof(float), stream)(
        weights, experts, fuse_sort ? offsets : NULL, order, slot_of, part, splits,
        per_expert_scale, n_tokens, n_experts, top_k);
    G4_TRY(g4_cuda_launch_status("moe_topk_kernel"));
    if (!offsets || fuse_sort) return G4_OK;
    moe_sort_kernel G4_LAUNCH(1, 1024, 0, stream)(offsets, order, slot_of, experts,
                                                  n_tokens * top_k, n_experts);
    return g4_cuda_launch_status("moe_sort_kernel");
}

// ---- experts at decode: GEMV (gemv.cuh's building blocks) -------------------------------------
// Block (x, s) of 8 warps: act columns o in [16x, 16x + 16) (a warp takes 2: gate rows o, o + 1
// and up rows inter + o, inter + o + 1, G4_GEMV_RPW = 4 rows, so 8 16-byte loads are in flight
// per lane) of the expert e of sorted slot s, run only by the blocks of e's first slot (the
// others exit), for all NT tokens of e at once (slots [offsets[e], offsets[e + 1]) hold distinct
// tokens). The tokens' h2 rows are gathered into shared memory chunk by chunk (rounded to bf16
// in BF16). act (n_assign, inter) in sorted slot order.
template <int NT>
static __device__ __forceinline__ void gate_up_expert(float *act, float *xs, const float *h2,
                                                      const int *tok, int s0, const g4_bf16 *we,
                                                      int inter, int hidden, bool bf16) {
    constexpr int OPW = G4_GEMV_RPW / 2, KC = g4_gemv_chunk<NT>();
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int64_t o0 = ((int64_t)blockIdx.x * G4_GEMV_WARPS + warp) * OPW;
    const g4_bf16 *wr[G4_GEMV_RPW];
#pragma unroll
    for (int j = 0; j < G4_GEMV_RPW; j++) {
        const int64_t o = o0 + j % OPW;
        wr[j] = o < inter ? we + (j < OPW ? o : inter + o) * hidden : nullptr;
    }
    float acc[NT][G4_GEMV_RPW];
#pragma unroll
    for (int t = 0; t < NT; t++)
#pragma unroll
        for (int j = 0; j < G4_GEMV_RPW; j++) acc[t][j] = 0.0f;
    for (int kk = 0; kk < hidden; kk += KC) {
        const int len = min(KC, hidden - kk);
        __syncthreads(); // the previous chunk's readers are done (and tok is written)
        for (int q = threadIdx.x; q < NT * len / 4; q += blockDim.x) { // gather stage
            const int e = q * 4, t = e / len, i = e - t * len;
            float4 v = *reinterpret_cast<const float4 *>(h2 + (int64_t)tok[t] * hidden + kk + i);
            v.x = act_round(v.x, bf16), v.y = act_round(v.y, bf16);
            v.z = act_round(v.z, bf16), v.w = act_round(v.w, bf16);
            *reinterpret_cast<float4 *>(xs + e) = v;
        }
        __syncthreads();
        g4_gemv_warp_dot<NT>(acc, wr, xs, len, kk, kk, kk + len);
    }
#pragma unroll
    for (int t = 0; t < NT; t++)
#pragma unroll
        for (int j = 0; j < G4_GEMV_RPW; j++) acc[t][j] = warp_sum(acc[t][j]);
#pragma unroll
    for (int t = 0; t < NT; t++)
#pragma unroll
        for (int o = 0; o < OPW; o++)
            if (lane == t * OPW + o && o0 + o < inter)
                act[(int64_t)(s0 + t) * inter + o0 + o] = gelu_tanh(acc[t][o]) * acc[t][o + OPW];
}

static __global__ void __launch_bounds__(G4_GEMV_THREADS)
    moe_gemv_gate_up_kernel(float *act, const float *h2, const int32_t *experts,
                            const int32_t *order, const int32_t *offsets, int top_k,
                            const g4_bf16 *w, int inter, int hidden, bool bf16) {
    __shared__ __align__(16) float xs[G4_GEMV_XS_FLOATS];
    __shared__ int tok[DECODE_TOKENS];
    const int s = blockIdx.y, e = experts[order[s]];
    if (s != offsets[e]) return; // the whole block
    const int m = min(offsets[e + 1] - s, DECODE_TOKENS);
    if ((int)threadIdx.x < m) tok[threadIdx.x] = order[s + threadIdx.x] / top_k;
    const g4_bf16 *we = w + (int64_t)e * 2 * inter * hidden;
    switch (m) { // block-uniform
    case 1: gate_up_expert<1>(act, xs, h2, tok, s, we, inter, hidden, bf16); break;
    case 2: gate_up_expert<2>(act, xs, h2, tok, s, we, inter, hidden, bf16); break;
    case 3: gate_up_expert<3>(act, xs, h2, tok, s, we, inter, hidden, bf16); break;
    case 4: gate_up_expert<4>(act, xs, h2, tok, s, we, inter, hidden, bf16); break;
    case 5: gate_up_expert<5>(act, xs, h2, tok, s, we, inter, hidden, bf16); break;
    case 6: gate_up_expert<6>(act, xs, h2, tok, s, we, inter, hidden, bf16); break;
    case 7: gate_up_expert<7>(act, xs, h2, tok, s, we, inter, hidden, bf16); break;
    default: gate_up_expert<8>(act, xs, h2, tok, s, we, inter, hidden, bf16); break;
    }
}

// One expert of the down product: the act rows of its NT slots [s0, s0 + NT) staged (rounded to
// bf16 in BF16), the warp's 4 output rows dotted with them, and weight * dot added into the
// row sums of each slot's token with an fmaf.
template <int NT>
static __device__ __forceinline__ void down_expert(float (&sum)[DECODE_TOKENS][G4_GEMV_RPW],
                                                   float *xs, const float *act, int s0,
                                                   const int32_t *tok, const float *wt,
                                                   const g4_bf16 *we, int64_t i0, int hidden,
                                                   int inter, bool bf16) {
    constexpr int KC = g4_gemv_chunk<NT>();
    const g4_bf16 *wr[G4_GEMV_RPW];
#pragma unroll
    for (int j = 0; j < G4_GEMV_RPW; j++) wr[j] = i0 + j < hidden ? we + (i0 + j) * inter : nullptr;
    float acc[NT][G4_GEMV_RPW];
#pragma unroll
    for (int t = 0; t < NT; t++)
#pragma unroll
        for (int j = 0; j < G4_GEMV_RPW; j++) acc[t][j] = 0.0f;
    for (int kk = 0; kk < inter; kk += KC) {
        const int len = min(KC, inter - kk);
        __syncthreads(); // the previous expert's (or chunk's) readers are done
        g4_gemv_stage<NT>(xs, act + (int64_t)s0 * inter, inter, kk, len, bf16);
        __syncthreads();
        g4_gemv_warp_dot<NT>(acc, wr, xs, len, kk, kk, kk + len);
    }
#pragma unroll
    for (int t = 0; t < NT; t++) {
        const int q = tok[s0 + t];
        const float wk = wt[s0 + t];
#pragma unroll
        for (int j = 0; j < G4_GEMV_RPW; j++) {
            const float y = warp_sum(acc[t][j]);
#pragma unroll
            for (int p = 0; p < DECODE_TOKENS; p++) // a register per token, no local memory
                if (p == q) sum[p][j] = fmaf(wk, y, sum[p][j]);
        }
    }
}

// Block x of 4 warps: output rows [16x, 16x + 16) (4 per warp) of every token. The block walks
// the step's experts in id order and streams its rows of each chosen expert's down matrix once:
// the combine of g4_cuda_moe_combine (expert-id order, an fmaf per term from 0), fused. Dynamic
// shared memory: per sorted slot its token, its weight and the expert-group starts.
static __global__ void __launch_bounds__(DOWN_THREADS)
    moe_gemv_down_kernel(float *out, const float *act, const float *weights,
                         const int32_t *experts, const int32_t *order, const int32_t *offsets,
                         int n_tokens, int top_k, const g4_bf16 *w, int hidden, int inter,
                         bool bf16) {
    __shared__ __align__(16) float xs[G4_GEMV_XS_FLOATS];
    __shared__ int n_groups;
    const int n_assign = n_tokens * top_k;
    int32_t *tok = dynamic_smem<int32_t>();
    float *wt = reinterpret_cast<float *>(tok + n_assign);
    int32_t *group = reinterpret_cast<int32_t *>(wt + n_assign); // group starts, then n_assign
    int32_t *gexp = group + n_assign + 1;                          // expert of each group
    for (int s = threadIdx.x; s < n_assign; s += blockDim.x) {
        const int a = order[s];
        tok[s] = a / top_k;
        wt[s] = weights[a];
    }
    if (threadIdx.x == 0) { // slots are sorted by expert: a group starts where the expert changes
        int g = 0;
        for (int s = 0; s < n_assign; s++) {
            const int e = experts[order[s]];
            if (s == offsets[e]) {
                group[g] = s;
                gexp[g++] = e;
            }
        }
        group[g] = n_assign;
        n_groups = g;
    }
    __syncthreads();
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
    const int64_t i0 = ((int64_t)blockIdx.x * n_warps + warp) * G4_GEMV_RPW;
    float sum[DECODE_TOKENS][G4_GEMV_RPW];
#pragma unroll
    for (int p = 0; p < DECODE_TOKENS; p++)
#pragma unroll
        for (int j = 0; j < G4_GEMV_RPW; j++) sum[p][j] = 0.0f;
    for (int g = 0; g < n_groups; g++) { // block-uniform
        const int s0 = group[g], m = min(group[g + 1] - s0, DECODE_TOKENS);
        const g4_bf16 *we = w + (int64_t)gexp[g] * hidden * inter;
        switch (m) {
        case 1: down_expert<1>(sum, xs, act, s0, tok, wt, we, i0, hidden, inter, bf16); break;
        case 2: down_expert<2>(sum, xs, act, s0, tok, wt, we, i0, hidden, inter, bf16); break;
        case 3: down_expert<3>(sum, xs, act, s0, tok, wt, we, i0, hidden, inter, bf16); break;
        case 4: down_expert<4>(sum, xs, act, s0, tok, wt, we, i0, hidden, inter, bf16); break;
        case 5: down_expert<5>(sum, xs, act, s0, tok, wt, we, i0, hidden, inter, bf16); break;
        case 6: down_expert<6>(sum, xs, act, s0, tok, wt, we, i0, hidden, inter, bf16); break;
        case 7: down_expert<7>(sum, xs, act, s0, tok, wt, we, i0, hidden, inter, bf16); break;
        default: down_expert<8>(sum, xs, act, s0, tok, wt, we, i0, hidden, inter, bf16); break;
        }
    }
#pragma unroll
    for (int p = 0; p < DECODE_TOKENS; p++)
#pragma unroll
        for (int j = 0; j < G4_GEMV_RPW; j++)
            if (lane == p * G4_GEMV_RPW + j && p < n_tokens && i0 + j < hidden)
                out[(int64_t)p * hidden + i0 + j] = sum[p][j];
}

bool g4_cuda_moe_decode_path(int n_tokens, int top_k, int hidden, int inter) {
    return n_tokens >= 1 && n_tokens <= DECODE_TOKENS && top_k >= 1 &&
           n_tokens * top_k <= DECODE_ASSIGN && hidden >= 8 && hidden % 8 == 0 && inter >= 8 &&
           inter % 8 == 0;
}

static g4_status check_decode(const char *what, int n_tokens, int top_k, int hidden, int inter,
                              const void *x, const void *w) {
    if (g4_cuda_moe_decode_path(n_tokens, top_k, hidden, inter) && aligned16(x) && aligned16(w))
        return G4_OK;
    return g4_fail(G4_ERR_INVALID_ARGUMENT,
                   "cuda %s: n_tokens %d (1..%d), top_k %d (n_tokens * top_k <= %d), hidden %d "
                   "and inter %d (multiples of 8), 16-byte aligned activations and weights",
                   what, n_tokens, DECODE_TOKENS, top_k, DECODE_ASSIGN, hidden, inter);
}

g4_status g4_cuda_moe_gemv_gate_up(float *act, const float *h2, const int32_t *experts,
                                   const int32_t *order, const int32_t *offsets, int n_tokens,
                                   int top_k, const g4_bf16 *w, int inter, int hidden, bool bf16_act,
                                   cudaStream_t stream) {
    G4_TRY(check_decode("moe_gemv_gate_up", n_tokens, top_k, hidden, inter, h2, w));
    const dim3 grid((unsigned)g4_ceil_div(inter, G4_GEMV_WARPS * (G4_GEMV_RPW / 2)),
                    (unsigned)(n_tokens * top_k));
    moe_gemv_gate_up_kernel G4_LAUNCH(grid, G4_GEMV_THREADS, 0, stream)(
        act, h2, experts, order, offsets, top_k, w, inter, hidden, bf16_act);
    return g4_cuda_launch_status("moe_gemv_gate_up_kernel");
}

g4_status g4_cuda_moe_gemv_down(float *out, const float *act, const float *weights,
                                const int32_t *experts, const int32_t *order,
                                const int32_t *offsets, int n_tokens, int top_k, const g4_bf16 *w,
                                int hidden, int inter, bool bf16_act, cudaStream_t stream) {
    G4_TRY(check_decode("moe_gemv_down", n_tokens, top_k, hidden, inter, act, w));
    const int A = n_tokens * top_k;
    const size_t smem = (size_t)A * 4 * 4 + 4; // token, weight, group start, group expert
    const int rows_per_block = (DOWN_THREADS / 32) * G4_GEMV_RPW;
    moe_gemv_down_kernel G4_LAUNCH((unsigned)g4_ceil_div(hidden, rows_per_block), DOWN_THREADS, smem,
                                   stream)(out, act, weights, experts, order, offsets, n_tokens,
                                           top_k, w, hidden, inter, bf16_act);
    return g4_cuda_launch_status("moe_gemv_down_kernel");
}

// ---- experts at prefill: grouped GEMM ----------------------------------------------------------
#define MM_BM 64  // rows (assignments) per block
#define MM_BW 128 // weight rows per block: 128 output columns, or 64 gate + 64 up (GLU)
#define MM_BK 32  // reduction step
#define MM_THREADS 256

// Block (x, y, e): expert e's sorted rows [64y, 64y + 64) times a 128-row tile of its weights.
// Thread (ty, tx) = (tid / 16, tid % 16) computes rows ty * 4 + [0, 4) against tile rows
// tx * 4 + [0, 4) and 64 + tx * 4 + [0, 4) from fp32 tiles in shared memory (weights widened
// from bf16, activations rounded to bf16 in BF16). GLU: the tile is gate rows 64x + [0, 64) and
// up rows inter + 64x + [0, 64), and the block writes gelu(gate) * up (n_out = inter columns);
// otherwise output columns 128x + [0, 128). vec_a: k_dim % 4 == 0 and a 16-byte aligned;
// vec_w: k_dim % 8 == 0 and w 16-byte aligned.
template <bool GLU>
static __global__ void __launch_bounds__(MM_THREADS)
    moe_matmul_kernel(float *out, const float *a, const int32_t *order, int a_div,
                      const g4_bf16 *w, const int32_t *offsets, int n_out, int k_dim, bool bf16,
                      bool vec_a, bool vec_w) {
    __shared__ __align__(16) float as[MM_BK][MM_BM + 4];
    __shared__ __align__(16) float ws[MM_BK][MM_BW + 4];
    __shared__ int64_t arow[MM_BM];
    const int e = blockIdx.z;
    const int row_begin = offsets[e] + blockIdx.y * MM_BM;
    const int row_end = min(offsets[e + 1], row_begin + MM_BM);
    if (row_begin >= row_end) return; // the whole block: this expert has fewer rows
    const int tid = threadIdx.x, ty = tid / 16, tx = tid % 16;
    const int n0 = blockIdx.x * (GLU ? MM_BW / 2 : MM_BW);
    const g4_bf16 *we = w + (int64_t)e * (GLU ? 2 : 1) * n_out * k_dim;
    if (tid < MM_BM) {
        const int s = row_begin + tid;
        arow[tid] = s < row_end ? (order ? order[s] / a_div : s) : -1;
    }
    // weight row of tile row rr, or -1 past the matrix
    auto wrow = [&](int rr) -> int64_t {
        if (GLU) {
            const int c = n0 + (rr & (MM_BW / 2 - 1));
            return c < n_out ? (rr < MM_BW / 2 ? c : (int64_t)n_out + c) : -1;
        }
        return n0 + rr < n_out ? n0 + rr : -1;
    };
    __syncthreads();
    float acc[4][8] = {};
    for (int k0 = 0; k0 < k_dim; k0 += MM_BK) {
        if (vec_a) {
            for (int idx = tid; idx < MM_BM * MM_BK / 4; idx += MM_THREADS) {
                const int m = idx / (MM_BK / 4), kc = idx % (MM_BK / 4) * 4;
                const int64_t r = arow[m];
                float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
                if (r >= 0 && k0 + kc < k_dim)
                    v = *reinterpret_cast<const float4 *>(a + r * k_dim + k0 + kc);
                as[kc][m] = act_round(v.x, bf16);
                as[kc + 1][m] = act_round(v.y, bf16);
                as[kc + 2][m] = act_round(v.z, bf16);
                as[kc + 3][m] = act_round(v.w, bf16);
            }
        } else {
            for (int idx = tid; idx < MM_BM * MM_BK; idx += MM_THREADS) {
                const int m = idx / MM_BK, kk = idx % MM_BK, k = k0 + kk;
                const int64_t r = arow[m];
                as[kk][m] = r >= 0 && k < k_dim ? act_round(a[r * k_dim + k], bf16) : 0.0f;
            }
        }
        if (vec_w) {
            for (int idx = tid; idx < MM_BW * MM_BK / 8; idx += MM_THREADS) {
                const int rr = idx / (MM_BK / 8), kc = idx % (MM_BK / 8) * 8;
                const int64_t n = wrow(rr);
                float v[8] = {};
                if (n >= 0 && k0 + kc < k_dim)
                    unpack8(*reinterpret_cast<const uint4 *>(we + n * k_dim + k0 + kc), v);
#pragma unroll
                for (int j = 0; j < 8; j++) ws[kc + j][rr] = v[j];
            }
        } else {
            for (int idx = tid; idx < MM_BW * MM_BK; idx += MM_THREADS) {
                const int rr = idx / MM_BK, kk = idx % MM_BK, k = k0 + kk;
                const int64_t n = wrow(rr);
                ws[kk][rr] = n >= 0 && k < k_dim ? bf2f(we[n * k_dim + k]) : 0.0f;
            }
        }
        __syncthreads();
#pragma unroll 4
        for (int kk = 0; kk < MM_BK; kk++) {
            const float4 av = *reinterpret_cast<const float4 *>(&as[kk][ty * 4]);
            const float4 w0 = *reinterpret_cast<const float4 *>(&ws[kk][tx * 4]);
            const float4 w1 = *reinterpret_cast<const float4 *>(&ws[kk][MM_BW / 2 + tx * 4]);
            const float ar[4] = {av.x, av.y, av.z, av.w};
            const float wv[8] = {w0.x, w0.y, w0.z, w0.w, w1.x, w1.y, w1.z, w1.w};
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 8; j++) acc[i][j] += ar[i] * wv[j];
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int s = row_begin + ty * 4 + i;
        if (s >= row_end) continue;
        float *o = out + (int64_t)s * n_out;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int c = n0 + tx * 4 + j;
            if (GLU) {
                if (c < n_out) o[c] = gelu_tanh(acc[i][j]) * acc[i][4 + j];
            } else {
                if (c < n_out) o[c] = acc[i][j];
                if (c + MM_BW / 2 < n_out) o[c + MM_BW / 2] = acc[i][4 + j];
            }
        }
    }
}

static g4_status grouped(bool glu, float *out, const float *a, const int32_t *order, int a_div,
                         const g4_bf16 *w, const int32_t *offsets, int n_experts, int max_rows,
                         int n_out, int k_dim, bool bf16, cudaStream_t stream) {
    const char *what = glu ? "moe_gate_up" : "moe_matmul";
    if (n_experts < 1 || n_experts > 65535 || max_rows < 1 || max_rows > 65535 * MM_BM ||
        n_out < 1 || k_dim < 1 || (order && a_div < 1))
        return g4_fail(G4_ERR_INVALID_ARGUMENT,
                       "cuda %s: n_experts %d, max_rows %d, n_out %d, k_dim %d, a_div %d", what,
                       n_experts, max_rows, n_out, k_dim, a_div);
    const bool vec_a = k_dim % 4 == 0 && aligned16(a), vec_w = k_dim % 8 == 0 && aligned16(w);
    const dim3 grid((unsigned)g4_ceil_div(n_out, glu ? MM_BW / 2 : MM_BW),
                    (unsigned)g4_ceil_div(max_rows, MM_BM), (unsigned)n_experts);
    if (glu)
        moe_matmul_kernel<true> G4_LAUNCH(grid, MM_THREADS, 0, stream)(
            out, a, order, a_div, w, offsets, n_out, k_dim, bf16, vec_a, vec_w);
    else
        moe_matmul_kernel<false> G4_LAUNCH(grid, MM_THREADS, 0, stream)(
            out, a, order, a_div, w, offsets, n_out, k_dim, bf16, vec_a, vec_w);
    return g4_cuda_launch_status("moe_matmul_kernel");
}

g4_status g4_cuda_moe_matmul(float *out, const float *a, const int32_t *order, int a_div,
                             const g4_bf16 *w, const int32_t *offsets, int n_experts,
                             int max_rows, int n_out, int k_dim, bool bf16_act,
                             cudaStream_t stream) {
    return grouped(false, out, a, order, a_div, w, offsets, n_experts, max_rows, n_out, k_dim,
                   bf16_act, stream);
}

g4_status g4_cuda_moe_gate_up(float *act, const float *a, const int32_t *order, int a_div,
                              const g4_bf16 *w, const int32_t *offsets, int n_experts,
                              int max_rows, int inter, int k_dim, bool bf16_act,
                              cudaStream_t stream) {
    return grouped(true, act, a, order, a_div, w, offsets, n_experts, max_rows, inter, k_dim,
                   bf16_act, stream);
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

// ---- the experts of one MoE block ----------------------------------------------------------------
g4_status g4_cuda_moe_experts(float *out, const float *h2, const float *weights,
                              const int32_t *experts, const int32_t *offsets,
                              const int32_t *order, const int32_t *slot_of,
                              const g4_bf16 *w_gate_up, const g4_bf16 *w_down, int n_tokens,
                              int hidden, int inter, int n_experts, int top_k, bool bf16_act,
                              float *act, float *y, cudaStream_t stream) {
    if (n_tokens < 1 || top_k < 1 || top_k > n_experts)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "cuda moe_experts: n_tokens %d, top_k %d of %d",
                       n_tokens, top_k, n_experts);
    if (g4_cuda_moe_decode_path(n_tokens, top_k, hidden, inter) && aligned16(h2) &&
        aligned16(act) && aligned16(w_gate_up) && aligned16(w_down)) {
        G4_TRY(g4_cuda_moe_gemv_gate_up(act, h2, experts, order, offsets, n_tokens, top_k,
                                        w_gate_up, inter, hidden, bf16_act, stream));
        return g4_cuda_moe_gemv_down(out, act, weights, experts, order, offsets, n_tokens, top_k,
                                     w_down, hidden, inter, bf16_act, stream);
    }
    G4_TRY(g4_cuda_moe_gate_up(act, h2, order, top_k, w_gate_up, offsets, n_experts, n_tokens,
                               inter, hidden, bf16_act, stream));
    G4_TRY(g4_cuda_moe_matmul(y, act, NULL, 1, w_down, offsets, n_experts, n_tokens, hidden, inter,
                              bf16_act, stream));
    return g4_cuda_moe_combine(out, y, weights, experts, slot_of, n_tokens, top_k, hidden, stream);
}
