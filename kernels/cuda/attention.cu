// Attention for prefill and decode (eager_attention_forward of Gemma4TextAttention): scaling
// 1.0, causal, GQA, optional sliding window, keys read through a g4_cuda_kv_view (linear slot,
// or ring + this step's staging rows). Per-layer head_dim up to 512; fp32 queries, K/V, output.
//
// Algorithm: one block of 128 threads handles 16 query rows of one KV head; a row is a
// (token, query head of the group) pair, token-major, so the group's heads share every K/V tile
// (GQA reads each tile once per block). 8 lanes own a row: lane `sub` holds columns sub + 8i of
// the query and of the output accumulator in registers (CPT columns each; one template per
// head_dim bound 32, 64, 128, 256, 512). Keys stream through shared memory in fp32 tiles of BK
// rows (K and V, 32 KiB at most); each key's score is reduced over the row's 8 lanes with
// shuffles and folded into an online softmax in fp32 (running max m, sum l). The key range of a block is the union of its rows' visible ranges;
// a split (blockIdx.z) takes one chunk of it, and with more than one split the unnormalised
// partials (acc, m, l) go to scratch and attention_merge_kernel combines them (flash-decoding).
// CPU reference: g4_attention_cpu (kernels/cpu/ops_cpu.h).
#include "common.cuh"

#define ATT_THREADS 128
#define ATT_ROWS 16 // query rows per block: 8 lanes each
#define ATT_MAX_SPLITS 64
#define ATT_MIN_SPLIT_KEYS 256

struct attn_params {
    float *out;
    int64_t out_stride;
    const float *q;
    int64_t q_stride;
    const float *k, *v, *new_k, *new_v;
    int64_t new_pos0;
    int capacity, ring;
    int n_kv_heads, head_dim, n_heads, group;
    int64_t pos0;
    int n_tokens, window;
    int n_splits;
    int vec;            // floats per K/V tile load: 4 or 2 when every K/V base allows it, else 1
    int64_t split_keys; // keys per split, a multiple of the tile
    float *part_o;      // (n_splits, n_tokens, n_heads, head_dim) when n_splits > 1
    float *part_ml;     // (n_splits, n_tokens, n_heads, 2): running max and sum
};

static __device__ __forceinline__ const float *kv_row(const float *cache, const float *fresh,
                                                      int64_t key, const attn_params &p) {
    const int64_t stride = (int64_t)p.n_kv_heads * p.head_dim;
    if (key >= p.new_pos0) return fresh + (key - p.new_pos0) * stride;
    return cache + (p.ring ? key % p.capacity : key) * stride;
}

// Loads keys [k0, k0 + BK) of KV head g into ks / vs (BK, head_dim); rows at or past kend are
// zero (a masked score times a garbage V row could be NaN). Loads are p.vec floats wide; the
// shared tiles are 16-byte aligned and head_dim % vec == 0, so the stores are aligned too.
template <int BK>
static __device__ __forceinline__ void load_tile(float *ks, float *vs, int64_t k0, int64_t kend,
                                                 int g, const attn_params &p) {
    const int hd = p.head_dim;
    const int64_t koff = (int64_t)g * hd;
    if (p.vec == 4) { // 16-byte chunks: head_dim % 4 == 0 and 16-byte-aligned bases (checked)
        const int cpr = hd / 4;
        for (int idx = threadIdx.x; idx < BK * cpr; idx += ATT_THREADS) {
            const int j = idx / cpr, cc = idx % cpr;
            const int64_t key = k0 + j;
            float4 kk = make_float4(0.0f, 0.0f, 0.0f, 0.0f), vv = kk;
            if (key < kend) {
                kk = reinterpret_cast<const float4 *>(kv_row(p.k, p.new_k, key, p) + koff)[cc];
                vv = reinterpret_cast<const float4 *>(kv_row(p.v, p.new_v, key, p) + koff)[cc];
            }
            reinterpret_cast<float4 *>(ks + j * hd)[cc] = kk;
            reinterpret_cast<float4 *>(vs + j * hd)[cc] = vv;
        }
    } else if (p.vec == 2) { // head_dim is even and the bases 8-byte aligned: 8-byte pairs
        const int cpr = hd / 2;
        for (int idx = threadIdx.x; idx < BK * cpr; idx += ATT_THREADS) {
            const int j = idx / cpr, cc = idx % cpr;
            const int64_t key = k0 + j;
            float2 kk = make_float2(0.0f, 0.0f), vv = kk;
            if (key < kend) {
                kk = reinterpret_cast<const float2 *>(kv_row(p.k, p.new_k, key, p) + koff)[cc];
                vv = reinterpret_cast<const float2 *>(kv_row(p.v, p.new_v, key, p) + koff)[cc];
            }
            reinterpret_cast<float2 *>(ks + j * hd)[cc] = kk;
            reinterpret_cast<float2 *>(vs + j * hd)[cc] = vv;
        }
    } else { // bases only 4-byte aligned: single floats
        for (int idx = threadIdx.x; idx < BK * hd; idx += ATT_THREADS) {
            const int j = idx / hd, c = idx % hd;
            const int64_t key = k0 + j;
            float kk = 0.0f, vv = 0.0f;
            if (key < kend) {
                kk = kv_row(p.k, p.new_k, key, p)[koff + c];
                vv = kv_row(p.v, p.new_v, key, p)[koff + c];
            }
            ks[j * hd + c] = kk;
            vs[j * hd + c] = vv;
        }
    }
}

template <int CPT, int BK>
static __global__ void __launch_bounds__(ATT_THREADS) attention_kernel(const attn_params p) {
    float *ks = dynamic_smem<float>(); // (BK, head_dim)
    float *vs = ks + BK * p.head_dim;  // (BK, head_dim)
    const int hd = p.head_dim, sub = threadIdx.x & 7, g = blockIdx.y;
    const int n_rows = p.n_tokens * p.group;
    const int r0 = blockIdx.x * ATT_ROWS, row = r0 + (threadIdx.x >> 3);
    const bool active = row < n_rows;
    const int t = active ? row / p.group : 0;
    const int h = g * p.group + (active ? row % p.group : 0);
    const int64_t pos = p.pos0 + t;
    const int64_t lo = p.window > 0 && pos - p.window + 1 > 0 ? pos - p.window + 1 : 0;

    // Keys any row of this block sees, and this split's share of them.
    const int t_lo = r0 / p.group, t_hi = (min(r0 + ATT_ROWS, n_rows) - 1) / p.group;
    const int64_t first = p.pos0 + t_lo - p.window + 1;
    const int64_t kb = p.window > 0 && first > 0 ? first : 0, ke = p.pos0 + t_hi + 1;
    const int64_t k_begin = kb + (int64_t)blockIdx.z * p.split_keys;
    const int64_t k_end = min(ke, k_begin + p.split_keys);

    float q[CPT], acc[CPT];
    const float *qr = p.q + (int64_t)t * p.q_stride + (int64_t)h * hd;
#pragma unroll
    for (int i = 0; i < CPT; i++) {
        const int c = sub + 8 * i;
        q[i] = active && c < hd ? qr[c] : 0.0f;
        acc[i] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;

    for (int64_t k0 = k_begin; k0 < k_end; k0 += BK) {
        __syncthreads(); // the previous tile is consumed
        load_tile<BK>(ks, vs, k0, k_end, g, p);
        __syncthreads();
        // one key at a time: score, then the online-softmax update of (m, l, acc)
#pragma unroll 2
        for (int j = 0; j < BK; j++) {
            float d = 0.0f;
#pragma unroll
            for (int i = 0; i < CPT; i++) {
                const int c = sub + 8 * i;
                if (c < hd) d += q[i] * ks[j * hd + c];
            }
            d += __shfl_xor_sync(G4_FULL_MASK, d, 4);
            d += __shfl_xor_sync(G4_FULL_MASK, d, 2);
            d += __shfl_xor_sync(G4_FULL_MASK, d, 1);
            const int64_t key = k0 + j;
            if (!active || key >= k_end || key < lo || key > pos) continue; // masked
            const float m_new = fmaxf(m, d);
            const float alpha = expf(m - m_new), pj = expf(d - m_new); // alpha 0 while m is -inf
            l = l * alpha + pj;
#pragma unroll
            for (int i = 0; i < CPT; i++) {
                const int c = sub + 8 * i;
                if (c < hd) acc[i] = acc[i] * alpha + pj * vs[j * hd + c];
            }
            m = m_new;
        }
    }

    if (!active) return;
    if (p.n_splits == 1) { // every row saw at least its own position: l > 0
        float *o = p.out + (int64_t)t * p.out_stride + (int64_t)h * hd;
        const float inv = 1.0f / l;
#pragma unroll
        for (int i = 0; i < CPT; i++) {
            const int c = sub + 8 * i;
            if (c < hd) o[c] = acc[i] * inv;
        }
        return;
    }
    const int64_t part = ((int64_t)blockIdx.z * p.n_tokens + t) * p.n_heads + h;
#pragma unroll
    for (int i = 0; i < CPT; i++) {
        const int c = sub + 8 * i;
        if (c < hd) p.part_o[part * hd + c] = acc[i];
    }
    if (sub == 0) {
        p.part_ml[2 * part] = m;
        p.part_ml[2 * part + 1] = l;
    }
}

// One block per (token, head): out = sum_s e^(m_s - M) acc_s / sum_s e^(m_s - M) l_s.
static __global__ void attention_merge_kernel(float *out, int64_t out_stride,
                                              const float *part_o, const float *part_ml,
                                              int n_splits, int n_tokens, int n_heads,
                                              int head_dim) {
    const int64_t t = blockIdx.x / n_heads, h = blockIdx.x % n_heads;
    const int64_t split_stride = (int64_t)n_tokens * n_heads;
    const int64_t base = t * n_heads + h;
    float mx = -INFINITY;
    for (int s = 0; s < n_splits; s++) mx = fmaxf(mx, part_ml[2 * (base + s * split_stride)]);
    float sum = 0.0f;
    for (int s = 0; s < n_splits; s++) {
        const float ms = part_ml[2 * (base + s * split_stride)];
        if (ms != -INFINITY) sum += expf(ms - mx) * part_ml[2 * (base + s * split_stride) + 1];
    }
    const float inv = 1.0f / sum;
    float *o = out + t * out_stride + h * head_dim;
    for (int c = threadIdx.x; c < head_dim; c += blockDim.x) {
        float acc = 0.0f;
        for (int s = 0; s < n_splits; s++) {
            const float ms = part_ml[2 * (base + s * split_stride)];
            if (ms != -INFINITY)
                acc += expf(ms - mx) * part_o[(base + s * split_stride) * head_dim + c];
        }
        o[c] = acc * inv;
    }
}

template <int CPT, int BK>
static g4_status launch(const attn_params &p, dim3 grid, cudaStream_t stream) {
    const size_t smem = 2 * (size_t)BK * p.head_dim * sizeof(float); // <= 32 KiB
    attention_kernel<CPT, BK> G4_LAUNCH(grid, ATT_THREADS, smem, stream)(p);
    return g4_cuda_launch_status("attention_kernel");
}

// Tile sizes: BK keys per tile keeps the fp32 K+V tiles at 32 KiB at most (no opt-in to more
// than 48 KiB of shared memory needed); q and acc take 2 * CPT registers per thread.
#define ATT_BK(hd) ((hd) <= 128 ? 32 : (hd) <= 256 ? 16 : 8)
static g4_status dispatch(const attn_params &p, dim3 grid, cudaStream_t stream) {
    const int hd = p.head_dim;
    if (hd <= 32) return launch<4, ATT_BK(32)>(p, grid, stream);
    if (hd <= 64) return launch<8, ATT_BK(64)>(p, grid, stream);
    if (hd <= 128) return launch<16, ATT_BK(128)>(p, grid, stream);
    if (hd <= 256) return launch<32, ATT_BK(256)>(p, grid, stream);
    return launch<64, ATT_BK(512)>(p, grid, stream);
}

g4_status g4_cuda_attention(float *out, int64_t out_stride, const float *q, int64_t q_stride,
                            const struct g4_cuda_kv_view *kv, int64_t pos0, int n_tokens,
                            int n_heads, int window, int n_splits, float *scratch,
                            size_t scratch_floats, cudaStream_t stream) {
    const int hd = kv->head_dim, nkv = kv->n_kv_heads;
    if (n_tokens < 1 || n_heads < 1 || nkv < 1 || n_heads % nkv || hd < 2 || hd % 2 ||
        hd > G4_CUDA_MAX_HEAD_DIM || pos0 < 0 || window < 0 || n_splits < 0 ||
        n_splits > ATT_MAX_SPLITS || (kv->ring && kv->capacity < 1) ||
        q_stride < (int64_t)n_heads * hd || out_stride < (int64_t)n_heads * hd)
        return g4_fail(G4_ERR_INVALID_ARGUMENT,
                       "cuda attention: n_tokens %d, n_heads %d, n_kv_heads %d, head_dim %d "
                       "(even, <= %d), pos0 %lld, window %d, n_splits %d (<= %d)",
                       n_tokens, n_heads, nkv, hd, G4_CUDA_MAX_HEAD_DIM, (long long)pos0, window,
                       n_splits, ATT_MAX_SPLITS);
    attn_params p;
    p.out = out;
    p.out_stride = out_stride;
    p.q = q;
    p.q_stride = q_stride;
    p.k = kv->k;
    p.v = kv->v;
    p.new_k = kv->new_k;
    p.new_v = kv->new_v;
    p.new_pos0 = kv->new_pos0;
    p.capacity = kv->capacity;
    p.ring = kv->ring;
    p.n_kv_heads = nkv;
    p.head_dim = hd;
    p.n_heads = n_heads;
    p.group = n_heads / nkv;
    p.pos0 = pos0;
    p.n_tokens = n_tokens;
    p.window = window;
    p.part_o = p.part_ml = NULL;
    // Widest K/V load every base allows: rows start at base + key * n_kv_heads * head_dim
    // floats, so with head_dim % 4 == 0 a 16-byte-aligned base keeps every row 16-byte aligned.
    const uintptr_t bases = (uintptr_t)kv->k | (uintptr_t)kv->v | (uintptr_t)kv->new_k |
                            (uintptr_t)kv->new_v;
    if (bases % sizeof(float))
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "cuda attention: K/V bases not float-aligned");
    p.vec = hd % 4 == 0 && bases % 16 == 0 ? 4 : bases % 8 == 0 ? 2 : 1;

    const int64_t n_rows = (int64_t)n_tokens * p.group;
    const int64_t tiles = g4_ceil_div(n_rows, ATT_ROWS);
    const int bk = ATT_BK(hd);
    // Longest key range of any block: its tokens' span plus the window, or everything so far.
    const int64_t span = n_tokens < ATT_ROWS ? n_tokens : ATT_ROWS;
    int64_t max_len = pos0 + n_tokens;
    if (window > 0 && (int64_t)window + span < max_len) max_len = (int64_t)window + span;
    const size_t per_split = (size_t)n_tokens * n_heads * (hd + 2);

    int64_t splits = n_splits;
    if (splits == 0) { // few blocks and a long range: split the keys so every SM has work
        int dev = 0, n_sm = 0;
        G4_CUDA_TRY(cudaGetDevice(&dev));
        G4_CUDA_TRY(cudaDeviceGetAttribute(&n_sm, cudaDevAttrMultiProcessorCount, dev));
        const int64_t blocks = tiles * nkv;
        splits = 1;
        if (blocks < n_sm) {
            splits = g4_ceil_div(2 * (int64_t)n_sm, blocks);
            const int64_t by_len = g4_ceil_div(max_len, ATT_MIN_SPLIT_KEYS);
            const int64_t by_scratch = (int64_t)(scratch_floats / per_split);
            if (splits > by_len) splits = by_len;
            if (splits > ATT_MAX_SPLITS) splits = ATT_MAX_SPLITS;
            if (splits > by_scratch) splits = by_scratch;
            if (splits < 1) splits = 1;
        }
    }
    p.split_keys = g4_ceil_div(g4_ceil_div(max_len, splits), bk) * bk;
    p.n_splits = (int)g4_ceil_div(max_len, p.split_keys);
    if (p.n_splits > 1) {
        if (!scratch || scratch_floats < per_split * (size_t)p.n_splits)
            return g4_fail(G4_ERR_INVALID_ARGUMENT,
                           "cuda attention: %d splits need %zu scratch floats, have %zu",
                           p.n_splits, per_split * (size_t)p.n_splits, scratch_floats);
        p.part_o = scratch;
        p.part_ml = scratch + (size_t)p.n_splits * n_tokens * n_heads * hd;
    }
    if (tiles > 0x7fffffff)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "cuda attention: %lld query tiles", (long long)tiles);
    const dim3 grid((unsigned)tiles, (unsigned)nkv, (unsigned)p.n_splits);
    G4_TRY(dispatch(p, grid, stream));
    if (p.n_splits == 1) return G4_OK;
    attention_merge_kernel G4_LAUNCH((unsigned)(n_tokens * n_heads), 128, 0, stream)(
        out, out_stride, p.part_o, p.part_ml, p.n_splits, n_tokens, n_heads, hd);
    return g4_cuda_launch_status("attention_merge_kernel");
}
