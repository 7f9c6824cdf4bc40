// Attention on CUDA cores (eager_attention_forward of Gemma4TextAttention): scaling 1.0,
// causal, GQA, optional sliding window, keys read through a g4_cuda_kv_view (linear slot, or
// ring + this step's staging rows) in fp32 or bf16. Every decode step and the FP32 prefill run
// here; the BF16 prefill runs in attention_flash.cu. Per-layer head_dim up to 512; fp32
// queries, output and arithmetic.
//
// Algorithm: one block of 128 threads handles 16 query rows of one KV head; a row is a
// (token, query head of the group) pair, token-major, so the group's heads share every K/V tile
// (GQA reads each tile once per block). 8 lanes own a row: lane `sub` holds columns sub + 8i of
// the query and of the output accumulator in registers (CPT columns each; one template per
// head_dim bound 32, 64, 128, 256, 512). Keys stream through shared memory as fp32 tiles of BK
// rows (K and V, 32 KiB at most), loaded 16 bytes at a time (4 fp32 or 8 bf16 elements) where
// the bases allow it; each key's score is reduced over the row's 8 lanes with shuffles and
// folded into an online softmax in fp32 (running max m, sum l).
//
// Splits (flash-decoding): at decode a layer has 1-8 tokens and few KV heads (E2B: one), so the
// grid is split along the keys into S ranges (blockIdx.z), S fixed by the grid and the SM count
// (about 2 blocks per SM, g4_cuda_attention_splits), never by the context: each block finds its
// range on the device from the step state (the union of its rows' visible keys, cut into S
// equal tile-aligned pieces; at short contexts the last pieces are empty and write an empty
// partial). Partials (acc, m, l) go to scratch; the merge is done by the last block to finish,
// without a second kernel: blocks take a ticket (__threadfence, then atomicAdd on a counter per
// query tile, KV head and merge group of ATT_FAN splits); the last of a group merges the
// group's partials (into a group partial, or into the output when there is one group), and with
// several groups the last group merger merges the group partials. The block that completes a
// counter resets it to zero, so the next launch (or graph replay) finds it zero.
// CPU reference: g4_attention_cpu (kernels/cpu/ops_cpu.h).
#include "common.cuh"

#define ATT_THREADS 128
#define ATT_ROWS 16       // query rows per block: 8 lanes each
#define ATT_MAX_SPLITS 512
#define ATT_FAN 16        // partials one merging block combines

struct attn_params {
    float *out;
    int64_t out_stride;
    const float *q;
    int64_t q_stride;
    const void *k, *v, *new_k, *new_v;
    const struct g4_cuda_step *step;
    int capacity, ring;
    int n_kv_heads, head_dim, n_heads, group;
    int n_tokens, window;
    int n_splits, n_groups; // key ranges; merge groups of ATT_FAN ranges
    int vec;                // elements per K/V load: 16 bytes when every base allows it
    float *part;            // partials (see part_* below), when n_splits > 1
    unsigned *tickets;
};

// Scratch layout, per block b = blockIdx.y * gridDim.x + blockIdx.x (n_blk blocks per split):
// level-1 partial (b, z): o at part + (b * S + z) * ATT_ROWS * hd, (m, l) pairs after all o;
// level-2 (group) partial (b, g) after the level-1 area in the same layout with G for S.
static inline size_t part_floats(int64_t n_blk, int S, int G, int hd) {
    return (size_t)n_blk * ATT_ROWS * (hd + 2) * (size_t)(S + (G > 1 ? G : 0));
}

// 32-bit word -> 1 fp32 or 2 bf16 elements (little-endian: the low half is the first).
template <typename T> static __device__ __forceinline__ void word_to_f(uint32_t w, float *d);
template <> __device__ __forceinline__ void word_to_f<float>(uint32_t w, float *d) {
    d[0] = __uint_as_float(w);
}
template <> __device__ __forceinline__ void word_to_f<g4_bf16>(uint32_t w, float *d) {
    d[0] = __uint_as_float(w << 16);
    d[1] = __uint_as_float(w & 0xffff0000u);
}

template <typename T>
static __device__ __forceinline__ const T *kv_row(const void *cache, const void *fresh,
                                                  int64_t key, int64_t pos0,
                                                  const attn_params &p) {
    const int64_t stride = (int64_t)p.n_kv_heads * p.head_dim;
    if (fresh && key >= pos0) return static_cast<const T *>(fresh) + (key - pos0) * stride;
    // positions are below 2^31 (n_ctx is an int): 32-bit modulo, no 64-bit division call
    const int64_t slot = p.ring ? (int64_t)((uint32_t)key % (uint32_t)p.capacity) : key;
    return static_cast<const T *>(cache) + slot * stride;
}

// Loads VEC elements of type T from src (VEC * sizeof(T) bytes, that aligned) into d as fp32.
template <typename T, int VEC>
static __device__ __forceinline__ void load_vec(const T *src, float *d) {
    constexpr int bytes = VEC * (int)sizeof(T), per_word = 4 / (int)sizeof(T);
    if constexpr (bytes == 16) {
        const uint4 w = *reinterpret_cast<const uint4 *>(src);
        word_to_f<T>(w.x, d), word_to_f<T>(w.y, d + per_word);
        word_to_f<T>(w.z, d + 2 * per_word), word_to_f<T>(w.w, d + 3 * per_word);
    } else if constexpr (bytes == 8) {
        const uint2 w = *reinterpret_cast<const uint2 *>(src);
        word_to_f<T>(w.x, d), word_to_f<T>(w.y, d + per_word);
    } else if constexpr (bytes == 4) {
        word_to_f<T>(*reinterpret_cast<const uint32_t *>(src), d);
    } else { // one bf16 (2-byte-aligned bases)
        d[0] = bf2f(reinterpret_cast<const g4_bf16 *>(src)[0]);
    }
}

// Loads keys [k0, k0 + BK) of KV head g into ks / vs (BK, head_dim) fp32; rows at or past kend
// are zero (a masked score times a garbage V row could be NaN).
template <typename T, int VEC, int BK>
static __device__ __forceinline__ void load_tile_v(float *ks, float *vs, int64_t k0,
                                                   int64_t kend, int64_t pos0, int g,
                                                   const attn_params &p) {
    const int hd = p.head_dim, cpr = hd / VEC;
    const int64_t koff = (int64_t)g * hd;
    for (int idx = threadIdx.x; idx < BK * cpr; idx += ATT_THREADS) {
        const int j = idx / cpr, c = (idx % cpr) * VEC;
        const int64_t key = k0 + j;
        float kk[VEC], vv[VEC];
        if (key < kend) {
            load_vec<T, VEC>(kv_row<T>(p.k, p.new_k, key, pos0, p) + koff + c, kk);
            load_vec<T, VEC>(kv_row<T>(p.v, p.new_v, key, pos0, p) + koff + c, vv);
        } else {
#pragma unroll
            for (int e = 0; e < VEC; e++) kk[e] = vv[e] = 0.0f;
        }
#pragma unroll
        for (int e = 0; e < VEC; e++) {
            ks[j * hd + c + e] = kk[e];
            vs[j * hd + c + e] = vv[e];
        }
    }
}

template <typename T, int BK>
static __device__ __forceinline__ void load_tile(float *ks, float *vs, int64_t k0, int64_t kend,
                                                 int64_t pos0, int g, const attn_params &p) {
    constexpr int V16 = 16 / (int)sizeof(T), V8 = 8 / (int)sizeof(T), V4 = 4 / (int)sizeof(T);
    if (p.vec == V16) load_tile_v<T, V16, BK>(ks, vs, k0, kend, pos0, g, p);
    else if (p.vec == V8) load_tile_v<T, V8, BK>(ks, vs, k0, kend, pos0, g, p);
    else if (p.vec == V4) load_tile_v<T, V4, BK>(ks, vs, k0, kend, pos0, g, p);
    else load_tile_v<T, 1, BK>(ks, vs, k0, kend, pos0, g, p);
}

// Merges n_in (<= ATT_MAX_IN) partials of row r: inputs o at in_o + s * ATT_ROWS * hd, (m, l)
// at in_ml + s * ATT_ROWS * 2. Writes the normalised output (dst_o NULL) or a partial. Every
// thread of the block calls it (inactive rows compute nothing): the weights e^(m_s - M) go
// through shared memory, one column at a time keeps the registers free. Reads through
// volatile: other blocks wrote the partials (before their __threadfence and ticket), and the
// loads must not be served from this SM's L1.
#define ATT_MAX_IN 32 // max(ATT_FAN, ATT_MAX_SPLITS / ATT_FAN)
static __device__ __forceinline__ void merge_row(const attn_params &p, const float *in_o,
                                                 const float *in_ml, int n_in, int r,
                                                 bool active, int t, int h, float *dst_o,
                                                 float *dst_ml) {
    __shared__ float sw[ATT_ROWS][ATT_MAX_IN];
    const int hd = p.head_dim, sub = threadIdx.x & 7;
    const volatile float *vo = in_o, *vml = in_ml;
    float mx = -INFINITY, l = 0.0f;
    if (active)
        for (int s = 0; s < n_in; s++) mx = fmaxf(mx, vml[(s * ATT_ROWS + r) * 2]);
    for (int s = sub; s < n_in; s += 8) {
        const float ms = active ? vml[(s * ATT_ROWS + r) * 2] : -INFINITY;
        // an empty range (m = -inf) weighs 0 and its acc, never written, is never read
        const float w = ms == -INFINITY ? 0.0f : expf(ms - mx);
        if (w != 0.0f) l += w * vml[(s * ATT_ROWS + r) * 2 + 1];
        sw[r][s] = w;
    }
    l += __shfl_xor_sync(G4_FULL_MASK, l, 4);
    l += __shfl_xor_sync(G4_FULL_MASK, l, 2);
    l += __shfl_xor_sync(G4_FULL_MASK, l, 1);
    __syncwarp();
    if (!active) return;
    // every row saw at least its own position: in the final merge l > 0
    float *o = dst_o ? dst_o + r * hd : p.out + (int64_t)t * p.out_stride + (int64_t)h * hd;
    const float scale = dst_o ? 1.0f : 1.0f / l;
    for (int c = sub; c < hd; c += 8) {
        float acc = 0.0f;
        for (int s = 0; s < n_in; s++) {
            const float w = sw[r][s];
            if (w != 0.0f) acc += w * vo[((int64_t)s * ATT_ROWS + r) * hd + c];
        }
        o[c] = acc * scale;
    }
    if (dst_o && sub == 0) {
        dst_ml[r * 2] = mx;
        dst_ml[r * 2 + 1] = l;
    }
}

// Takes a ticket on *counter (after this block's partial writes) and says whether this block
// is the last of `n` to arrive; that block resets the counter. Every thread calls it.
static __device__ __forceinline__ bool last_to_arrive(unsigned *counter, unsigned n) {
    __shared__ unsigned s_last;
    __threadfence(); // this thread's partials are visible device-wide before the ticket
    __syncthreads();
    if (threadIdx.x == 0) {
        const unsigned ticket = atomicAdd(counter, 1u);
        s_last = ticket == n - 1;
        if (s_last) *counter = 0; // for the next launch or graph replay
    }
    __syncthreads();
    const bool last = s_last;
    if (last) __threadfence(); // order the ticket before the reads of the others' partials
    return last;
}

template <typename T, int CPT, int BK>
static __global__ void __launch_bounds__(ATT_THREADS, 1) attention_kernel(const attn_params p) {
    float *ks = dynamic_smem<float>(); // (BK, head_dim)
    float *vs = ks + BK * p.head_dim;  // (BK, head_dim)
    const int hd = p.head_dim, sub = threadIdx.x & 7, g = blockIdx.y, r = threadIdx.x >> 3;
    const int64_t pos0 = p.step->pos0;
    const int n_rows = p.n_tokens * p.group;
    const int r0 = blockIdx.x * ATT_ROWS, row = r0 + r;
    const bool active = row < n_rows;
    const int t = active ? row / p.group : 0;
    const int h = g * p.group + (active ? row % p.group : 0);
    const int64_t pos = pos0 + t;
    const int64_t lo = p.window > 0 && pos - p.window + 1 > 0 ? pos - p.window + 1 : 0;

    // Keys any row of this block sees, and this split's share of them (possibly none).
    const int t_lo = r0 / p.group, t_hi = (min(r0 + ATT_ROWS, n_rows) - 1) / p.group;
    const int64_t first = pos0 + t_lo - p.window + 1;
    const int64_t kb = p.window > 0 && first > 0 ? first : 0, ke = pos0 + t_hi + 1;
    const int64_t per_split = (uint32_t)(ke - kb + p.n_splits - 1) / (uint32_t)p.n_splits;
    const int64_t split_keys = (per_split + BK - 1) / BK * BK;
    const int64_t k_begin = kb + (int64_t)blockIdx.z * split_keys;
    const int64_t k_end = min(ke, k_begin + split_keys);

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
        load_tile<T, BK>(ks, vs, k0, k_end, pos0, g, p);
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

    if (p.n_splits == 1) {
        if (!active) return;
        float *o = p.out + (int64_t)t * p.out_stride + (int64_t)h * hd;
        const float inv = 1.0f / l; // every row saw at least its own position: l > 0
#pragma unroll
        for (int i = 0; i < CPT; i++) {
            const int c = sub + 8 * i;
            if (c < hd) o[c] = acc[i] * inv;
        }
        return;
    }

    // This split's partial; an empty one (m = -inf) writes only (m, l).
    const int S = p.n_splits, G = p.n_groups, z = blockIdx.z;
    const int64_t n_blk = (int64_t)gridDim.x * gridDim.y, b = (int64_t)g * gridDim.x + blockIdx.x;
    float *o1 = p.part, *ml1 = o1 + n_blk * S * ATT_ROWS * hd;
    float *o2 = ml1 + n_blk * S * ATT_ROWS * 2, *ml2 = o2 + n_blk * G * ATT_ROWS * hd;
    if (active) {
        const int64_t pi = b * S + z;
        if (m != -INFINITY)
#pragma unroll
            for (int i = 0; i < CPT; i++) {
                const int c = sub + 8 * i;
                if (c < hd) o1[(pi * ATT_ROWS + r) * hd + c] = acc[i];
            }
        if (sub == 0) {
            ml1[(pi * ATT_ROWS + r) * 2] = m;
            ml1[(pi * ATT_ROWS + r) * 2 + 1] = l;
        }
    }
    const int grp = z / ATT_FAN, s0 = grp * ATT_FAN, n_in = min(ATT_FAN, S - s0);
    if (!last_to_arrive(&p.tickets[b * G + grp], (unsigned)n_in)) return;
    const int64_t in = b * S + s0;
    if (G == 1) { // one group: its last block writes the output
        merge_row(p, o1 + in * ATT_ROWS * hd, ml1 + in * ATT_ROWS * 2, n_in, r, active, t, h,
                  NULL, NULL);
        return;
    }
    const int64_t gi = b * G + grp;
    merge_row(p, o1 + in * ATT_ROWS * hd, ml1 + in * ATT_ROWS * 2, n_in, r, active, t, h,
              o2 + gi * ATT_ROWS * hd, ml2 + gi * ATT_ROWS * 2);
    if (!last_to_arrive(&p.tickets[n_blk * G + b], (unsigned)G)) return;
    merge_row(p, o2 + b * G * ATT_ROWS * hd, ml2 + b * G * ATT_ROWS * 2, G, r, active, t, h,
              NULL, NULL);
}

template <typename T, int CPT, int BK>
static g4_status launch(const attn_params &p, dim3 grid, cudaStream_t stream) {
    const size_t smem = 2 * (size_t)BK * p.head_dim * sizeof(float); // <= 32 KiB
    attention_kernel<T, CPT, BK> G4_LAUNCH(grid, ATT_THREADS, smem, stream)(p);
    return g4_cuda_launch_status("attention_kernel");
}

// Tile sizes: BK keys per tile keeps the fp32 K+V tiles at 32 KiB at most (no opt-in to more
// than 48 KiB of shared memory needed); q and acc take 2 * CPT registers per thread.
#define ATT_BK(hd) ((hd) <= 128 ? 32 : (hd) <= 256 ? 16 : 8)
template <typename T> static g4_status dispatch(const attn_params &p, dim3 grid, cudaStream_t stream) {
    const int hd = p.head_dim;
    if (hd <= 32) return launch<T, 4, ATT_BK(32)>(p, grid, stream);
    if (hd <= 64) return launch<T, 8, ATT_BK(64)>(p, grid, stream);
    if (hd <= 128) return launch<T, 16, ATT_BK(128)>(p, grid, stream);
    if (hd <= 256) return launch<T, 32, ATT_BK(256)>(p, grid, stream);
    return launch<T, 64, ATT_BK(512)>(p, grid, stream);
}

int g4_cuda_attention_splits(int n_sm, int n_tokens, int n_heads, int n_kv_heads, int head_dim,
                             int n_splits, size_t *part, size_t *n_tickets) {
    const int64_t group = n_kv_heads > 0 ? n_heads / n_kv_heads : 1;
    const int64_t tiles = g4_ceil_div((int64_t)n_tokens * group, ATT_ROWS);
    const int64_t blocks = tiles * n_kv_heads;
    int64_t s = n_splits;
    if (s <= 0) { // about two blocks per SM
        s = blocks < n_sm ? g4_ceil_div(2 * (int64_t)n_sm, blocks) : 1;
        if (s > ATT_MAX_SPLITS) s = ATT_MAX_SPLITS;
    }
    const int G = (int)g4_ceil_div(s, ATT_FAN);
    if (part) *part = s > 1 ? part_floats(blocks, (int)s, G, head_dim) : 0;
    if (n_tickets) *n_tickets = s > 1 ? (size_t)blocks * G + (G > 1 ? (size_t)blocks : 0) : 0;
    return (int)s;
}

g4_status g4_cuda_attention(float *out, int64_t out_stride, const float *q, int64_t q_stride,
                            const struct g4_cuda_kv_view *kv, const struct g4_cuda_step *step,
                            int n_tokens, int n_heads, int window, int n_splits,
                            const struct g4_cuda_att_scratch *scr, cudaStream_t stream) {
    const int hd = kv->head_dim, nkv = kv->n_kv_heads;
    if (n_tokens < 1 || n_heads < 1 || nkv < 1 || n_heads % nkv || hd < 2 || hd % 2 ||
        hd > G4_CUDA_MAX_HEAD_DIM || window < 0 || n_splits < 0 ||
        n_splits > ATT_MAX_SPLITS || (kv->ring && kv->capacity < 1) || !step ||
        q_stride < (int64_t)n_heads * hd || out_stride < (int64_t)n_heads * hd)
        return g4_fail(G4_ERR_INVALID_ARGUMENT,
                       "cuda attention: n_tokens %d, n_heads %d, n_kv_heads %d, head_dim %d "
                       "(even, <= %d), window %d, n_splits %d (<= %d)%s",
                       n_tokens, n_heads, nkv, hd, G4_CUDA_MAX_HEAD_DIM, window, n_splits,
                       ATT_MAX_SPLITS, step ? "" : ", no step state");
    attn_params p;
    p.out = out;
    p.out_stride = out_stride;
    p.q = q;
    p.q_stride = q_stride;
    p.k = kv->k;
    p.v = kv->v;
    p.new_k = kv->new_k;
    p.new_v = kv->new_v;
    p.step = step;
    p.capacity = kv->capacity;
    p.ring = kv->ring;
    p.n_kv_heads = nkv;
    p.head_dim = hd;
    p.n_heads = n_heads;
    p.group = n_heads / nkv;
    p.n_tokens = n_tokens;
    p.window = window;
    p.part = NULL;
    p.tickets = NULL;
    // Widest K/V load every base allows: rows start at base + key * n_kv_heads * head_dim
    // elements, so with head_dim a multiple of the vector a 16-byte-aligned base keeps every
    // row 16-byte aligned.
    const size_t esz = kv->bf16 ? 2 : 4;
    const uintptr_t bases = (uintptr_t)kv->k | (uintptr_t)kv->v | (uintptr_t)kv->new_k |
                            (uintptr_t)kv->new_v;
    if (!kv->k || !kv->v || !kv->new_k != !kv->new_v || (!kv->new_k && kv->ring))
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "cuda attention: K/V view without %s",
                       kv->k && kv->v ? "staging rows for a ring" : "cache rows");
    if (bases % esz)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "cuda attention: K/V bases not %zu-byte aligned", esz);
    p.vec = 1;
    for (size_t bytes = 16; bytes > esz; bytes /= 2)
        if (bases % bytes == 0 && (size_t)hd % (bytes / esz) == 0) {
            p.vec = (int)(bytes / esz);
            break;
        }

    const int n_sm = scr ? scr->n_sm : 0;
    size_t need_part = 0, need_tickets = 0;
    p.n_splits = g4_cuda_attention_splits(n_sm, n_tokens, n_heads, nkv, hd, n_splits, &need_part,
                                          &need_tickets);
    p.n_groups = (int)g4_ceil_div(p.n_splits, ATT_FAN);
    if (p.n_splits > 1) {
        if (!scr || !scr->part || !scr->tickets || scr->part_floats < need_part ||
            scr->n_tickets < need_tickets)
            return g4_fail(G4_ERR_INVALID_ARGUMENT,
                           "cuda attention: %d splits need %zu scratch floats and %zu tickets, "
                           "have %zu and %zu",
                           p.n_splits, need_part, need_tickets, scr ? scr->part_floats : 0,
                           scr ? scr->n_tickets : 0);
        p.part = scr->part;
        p.tickets = scr->tickets;
    }
    const int64_t tiles = g4_ceil_div((int64_t)n_tokens * p.group, ATT_ROWS);
    if (tiles > 0x7fffffff || nkv > 65535)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "cuda attention: %lld query tiles, %d KV heads",
                       (long long)tiles, nkv);
    const dim3 grid((unsigned)tiles, (unsigned)nkv, (unsigned)p.n_splits);
    return kv->bf16 ? dispatch<g4_bf16>(p, grid, stream) : dispatch<float>(p, grid, stream);
}
