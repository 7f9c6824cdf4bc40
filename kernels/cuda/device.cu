// CUDA device and model weights: opens the device, checks what the engine supports, and fills
// every text-model tensor once into one device allocation (bf16 matrices; fp32 norm vectors,
// layer scalars and router). Matrices read by one GEMM are placed back to back:
// [q_proj; k_proj; v_proj] and [gate_proj; up_proj].
//
// One layout, two sources. The layout (which tensors, their shapes from the config, their order
// and alignment) is put_all / put_layer below; each tensor's values come either from the bound
// checkpoint (g4_cuda_model_init: bf16 copied as is, f32 / f16 / block-quantized rounded to bf16
// on the host in chunks) or from a generator on the device (g4_cuda_model_init_random, for the
// benchmark: no host weights, no transfers). Sizes are computed by a first pass over the same
// code. After the upload the device never reads the host mapping.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.cuh"
#include "engine.h"

#define ALIGN 256
#define STAGE_ELEMS ((size_t)1 << 22) // host staging: 4 Mi elements (16 MiB fp32 + 8 MiB bf16)

// Places tensors in the device allocation. With base == NULL only counts bytes.
struct placer {
    char *base;
    size_t off;
    const struct g4_weights *w; // the checkpoint, or NULL: random values made on the device
    uint64_t seed;              // random: each tensor draws from stream (seed, tensor index)
    uint64_t n_tensors;
    float *stage_f32;   // (STAGE_ELEMS,)
    uint16_t *stage_bf; // (STAGE_ELEMS,)
};

static void *take(struct placer *p, size_t bytes) {
    p->off = (p->off + ALIGN - 1) / ALIGN * ALIGN;
    void *at = p->base ? p->base + p->off : NULL;
    p->off += bytes;
    return at;
}

static uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static size_t weight_elems(const struct g4_weight *w) { return (size_t)w->rows * (size_t)w->cols; }

// Byte offset of flat element i of w: i is a multiple of STAGE_ELEMS, so for block types (rows a
// whole number of blocks) it starts a block.
static size_t elem_offset(const struct g4_weight *w, size_t i) {
    return g4_dtype_row_bytes(w->dtype, (int64_t)i);
}

// ---- random values on the device (kernels.h: g4_cuda_fill_normal_*) ------------------------------
// Counter-based: element i of stream s is a function of (s, i) alone, so the values do not depend
// on the grid. An approximately normal variate from the sum of four uniforms (Irwin-Hall,
// variance 4/12, rescaled to 1; |v| <= 2 sqrt(3)): cheap, no special functions, and what a
// benchmark needs (finite activations of the right scale through every layer), not a
// distribution test.
static __device__ __forceinline__ uint64_t mix64(uint64_t z) { // splitmix64's finalizer
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static __device__ __forceinline__ float rand_normal(uint64_t stream, uint64_t i) {
    const uint64_t a = mix64(stream ^ mix64(2 * i)), b = mix64(stream ^ mix64(2 * i + 1));
    const float k = 1.0f / 65536.0f;
    const float sum = (float)(a & 0xffff) + (float)((a >> 32) & 0xffff) + (float)(b & 0xffff) +
                      (float)((b >> 32) & 0xffff);
    return (sum * k - 2.0f) * 1.7320508075688772f; // (sum of 4 U(0,1) - 2) * sqrt(3)
}

static __global__ void fill_bf16_kernel(g4_bf16 *dst, size_t n, uint64_t stream, float sigma) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        dst[i] = f2bf(rand_normal(stream, i) * sigma);
}

static __global__ void fill_f32_kernel(float *dst, size_t n, uint64_t stream, float center,
                                       float spread) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        const float r = rand_normal(stream, i);
        dst[i] = center != 0.0f ? center * (1.0f + spread * r) : spread * r;
    }
}

#define FILL_THREADS 256
#define FILL_MAX_BLOCKS 8192 // x 256 threads: enough to write at full bandwidth

static unsigned fill_blocks(size_t n) {
    const unsigned b = g4_grid_1d(n, FILL_THREADS);
    return b > FILL_MAX_BLOCKS ? FILL_MAX_BLOCKS : b;
}

g4_status g4_cuda_fill_normal_bf16(g4_bf16 *dst, size_t n, uint64_t stream, float sigma,
                                   cudaStream_t st) {
    if (n == 0) return G4_OK;
    fill_bf16_kernel G4_LAUNCH(fill_blocks(n), FILL_THREADS, 0, st)(dst, n, stream, sigma);
    return g4_cuda_launch_status("fill_bf16_kernel");
}

g4_status g4_cuda_fill_normal_f32(float *dst, size_t n, uint64_t stream, float center,
                                  float spread, cudaStream_t st) {
    if (n == 0) return G4_OK;
    fill_f32_kernel G4_LAUNCH(fill_blocks(n), FILL_THREADS, 0, st)(dst, n, stream, center, spread);
    return g4_cuda_launch_status("fill_f32_kernel");
}

static uint64_t next_stream(struct placer *p) { return p->seed * 0x9e3779b97f4a7c15ull + ++p->n_tensors; }

// Random values: what the benchmark's models hold (tests/bench/gpu_bench.c). Matrices
// N(0, 1/cols): every product keeps its input's scale, so the sandwich-normed residual stream
// stays finite through 60 layers. Norm weights 1 + N(0, 0.02); q/k norms a quarter of that
// (Gemma 4 scores are unscaled dot products of unit-RMS heads: weights of 1 give scores of
// std ~sqrt(head_dim) and one-hot softmaxes, as tests/bench/make_model.py says for the CPU
// benchmark); the router's scales 1.
#define NORM_SPREAD 0.02f
#define QK_NORM 0.25f

// ---- one tensor ------------------------------------------------------------------------------------
// A matrix part: its shape (from the config) and, when uploading, the checkpoint tensor.
struct part {
    int64_t rows, cols;
    const struct g4_weight *src; // NULL: random
};

// Copies w (checkpoint dtype) to dst as bf16; block-quantized weights (GGUF) are dequantized
// here, so this engine computes with their bf16 roundings.
static g4_status put_bf16(struct placer *p, g4_bf16 *dst, const struct g4_weight *w) {
    const size_t n = weight_elems(w);
    if (n == 0) return G4_OK;
    if (w->dtype == G4_DTYPE_BF16) {
        G4_CUDA_TRY(cudaMemcpy(dst, w->data, n * 2, cudaMemcpyHostToDevice));
        return G4_OK;
    }
    for (size_t i = 0; i < n; i += STAGE_ELEMS) {
        const size_t k = n - i < STAGE_ELEMS ? n - i : STAGE_ELEMS;
        g4_to_f32(p->stage_f32, (const char *)w->data + elem_offset(w, i), w->dtype, k);
        for (size_t j = 0; j < k; j++) p->stage_bf[j] = f32_to_bf16(p->stage_f32[j]);
        G4_CUDA_TRY(cudaMemcpy(dst + i, p->stage_bf, k * 2, cudaMemcpyHostToDevice));
    }
    return G4_OK;
}

static g4_status check_shape(const struct part *pt, const char *what) {
    if (pt->src->rows == pt->rows && pt->src->cols == pt->cols) return G4_OK;
    return g4_fail(G4_ERR_FORMAT, "cuda: %s is %lld x %lld, the config implies %lld x %lld", what,
                   (long long)pt->src->rows, (long long)pt->src->cols, (long long)pt->rows,
                   (long long)pt->cols);
}

// One matrix, or several with the same cols stacked by rows (parts with 0 rows skipped).
static g4_status put_mat(struct placer *p, struct g4_cuda_mat *out, const struct part *parts,
                         int n_parts, const char *what) {
    int64_t rows = 0;
    for (int i = 0; i < n_parts; i++) rows += parts[i].rows;
    const int64_t cols = parts[0].cols;
    if (rows > 0x7fffffff || cols > 0x7fffffff)
        return g4_fail(G4_ERR_UNSUPPORTED, "cuda: a %lld x %lld matrix exceeds the int GEMM sizes",
                       (long long)rows, (long long)cols);
    g4_bf16 *dst = (g4_bf16 *)take(p, (size_t)rows * (size_t)cols * sizeof(g4_bf16));
    out->w = dst;
    out->rows = (int)rows;
    out->cols = (int)cols;
    if (!p->base) return G4_OK;
    for (int i = 0; i < n_parts; i++) {
        const size_t n = (size_t)parts[i].rows * (size_t)cols;
        if (n == 0) continue;
        if (p->w) {
            G4_TRY(check_shape(&parts[i], what));
            G4_TRY(put_bf16(p, dst, parts[i].src));
        } else {
            G4_TRY(g4_cuda_fill_normal_bf16(dst, n, next_stream(p), 1.0f / sqrtf((float)cols),
                                            cudaStreamLegacy));
        }
        dst += n;
    }
    return G4_OK;
}

static g4_status put_mat1(struct placer *p, struct g4_cuda_mat *out, int64_t rows, int64_t cols,
                          const struct g4_weight *src, const char *what) {
    const struct part pt = {rows, cols, p->w ? src : NULL};
    return put_mat(p, out, &pt, 1, what);
}

// An fp32 vector: src (host, the binder's fp32 pool) when uploading, else random values
// center * (1 + spread * N(0, 1)).
static g4_status put_vec(struct placer *p, const float **out, const float *src, size_t n,
                         float center, float spread) {
    float *dst = (float *)take(p, n * sizeof(float));
    *out = dst;
    if (!p->base || n == 0) return G4_OK;
    if (p->w) {
        G4_CUDA_TRY(cudaMemcpy(dst, src, n * sizeof(float), cudaMemcpyHostToDevice));
        return G4_OK;
    }
    return g4_cuda_fill_normal_f32(dst, n, next_stream(p), center, spread, cudaStreamLegacy);
}

// A norm weight vector (random: 1 + N(0, 0.02), q/k norms a quarter of that).
static g4_status put_norm(struct placer *p, const float **out, const float *src, size_t n,
                          float center) {
    return put_vec(p, out, src, n, center, NORM_SPREAD);
}

// A checkpoint-dtype matrix as fp32 (the MoE router); random: N(0, 1/cols).
static g4_status put_f32_mat(struct placer *p, const float **out, int64_t rows, int64_t cols,
                             const struct g4_weight *w) {
    const size_t n = (size_t)rows * (size_t)cols;
    float *dst = (float *)take(p, n * sizeof(float));
    *out = dst;
    if (!p->base) return G4_OK;
    if (!p->w)
        return g4_cuda_fill_normal_f32(dst, n, next_stream(p), 0.0f, 1.0f / sqrtf((float)cols),
                                       cudaStreamLegacy);
    const struct part pt = {rows, cols, w};
    G4_TRY(check_shape(&pt, "router.proj"));
    for (size_t i = 0; i < n; i += STAGE_ELEMS) {
        const size_t k = n - i < STAGE_ELEMS ? n - i : STAGE_ELEMS;
        g4_to_f32(p->stage_f32, (const char *)w->data + elem_offset(w, i), w->dtype, k);
        G4_CUDA_TRY(cudaMemcpy(dst + i, p->stage_f32, k * sizeof(float), cudaMemcpyHostToDevice));
    }
    return G4_OK;
}

// ---- the layout ------------------------------------------------------------------------------------
// Shapes come from the config's layer table (the binder has checked the checkpoint against the
// same table; put_mat checks again). lw NULL: random values.
static g4_status put_layer(struct placer *p, struct g4_cuda_layer *d, const struct g4_config *c,
                           const struct g4_layer_weights *lw, int il) {
    const struct g4_layer *ly = &c->layer[il];
    const int64_t H = c->hidden_size, hd = ly->head_dim, nh = c->num_attention_heads;
    const int64_t kv_rows = (int64_t)ly->n_kv_heads * hd, I = ly->intermediate_size;
#define LW(field) (lw ? lw->field : NULL)
#define LWM(field) (lw ? &lw->field : NULL)
    G4_TRY(put_norm(p, &d->input_layernorm, LW(input_layernorm), H, 1.0f));
    G4_TRY(put_norm(p, &d->post_attention_layernorm, LW(post_attention_layernorm), H, 1.0f));
    G4_TRY(put_norm(p, &d->pre_feedforward_layernorm, LW(pre_feedforward_layernorm), H, 1.0f));
    G4_TRY(put_norm(p, &d->post_feedforward_layernorm, LW(post_feedforward_layernorm), H, 1.0f));
    G4_TRY(put_norm(p, &d->q_norm, LW(q_norm), hd, QK_NORM));
    d->k_norm = NULL;
    if (ly->writes_kv) G4_TRY(put_norm(p, &d->k_norm, LW(k_norm), hd, QK_NORM));
    d->rope_inv_freq = NULL;
    const int n_pairs = ly->n_rope_pairs;
    if (n_pairs > 0) { // the host's exact table (rope.cu says why), for both sources
        float freq[G4_CUDA_MAX_HEAD_DIM / 2];
        g4_cuda_rope_inv_freq(freq, n_pairs, ly->head_dim, ly->rope_theta, ly->rope_factor);
        float *dst = (float *)take(p, (size_t)n_pairs * sizeof(float));
        d->rope_inv_freq = dst;
        if (p->base)
            G4_CUDA_TRY(cudaMemcpy(dst, freq, (size_t)n_pairs * sizeof(float),
                                   cudaMemcpyHostToDevice));
    }
    // k_proj and v_proj only on layers that write K/V; no v_proj when V is k_proj's output
    const struct part qkv[3] = {
        {nh * hd, H, LWM(q_proj)},
        {ly->writes_kv ? kv_rows : 0, H, LWM(k_proj)},
        {ly->writes_kv && !ly->k_eq_v ? kv_rows : 0, H, LWM(v_proj)}};
    G4_TRY(put_mat(p, &d->qkv, qkv, 3, "q/k/v_proj"));
    G4_TRY(put_mat1(p, &d->o_proj, H, nh * hd, LWM(o_proj), "o_proj"));
    const struct part gate_up[2] = {{I, H, LWM(gate_proj)}, {I, H, LWM(up_proj)}};
    G4_TRY(put_mat(p, &d->gate_up, gate_up, 2, "gate/up_proj"));
    G4_TRY(put_mat1(p, &d->down, H, I, LWM(down_proj), "down_proj"));
    if (c->hidden_size_per_layer_input) {
        const int64_t P = c->hidden_size_per_layer_input;
        G4_TRY(put_mat1(p, &d->ple_gate, P, H, LWM(per_layer_input_gate), "per_layer_input_gate"));
        G4_TRY(put_mat1(p, &d->ple_proj, H, P, LWM(per_layer_projection), "per_layer_projection"));
        G4_TRY(put_norm(p, &d->post_per_layer_input_norm, LW(post_per_layer_input_norm), H, 1.0f));
    }
    if (c->enable_moe_block) {
        const int64_t E = c->num_experts, Im = c->moe_intermediate_size;
        struct g4_cuda_mat m;
        G4_TRY(put_f32_mat(p, &d->router_proj, E, H, LWM(router_proj)));
        G4_TRY(put_vec(p, &d->router_scale, LW(router_scale), H, 1.0f, 0.0f));
        G4_TRY(put_vec(p, &d->router_per_expert_scale, LW(router_per_expert_scale), E, 1.0f, 0.0f));
        G4_TRY(put_mat1(p, &m, E * 2 * Im, H, LWM(experts_gate_up), "experts.gate_up_proj"));
        d->experts_gate_up = m.w;
        G4_TRY(put_mat1(p, &m, E * H, Im, LWM(experts_down), "experts.down_proj"));
        d->experts_down = m.w;
        G4_TRY(put_norm(p, &d->post_feedforward_layernorm_1, LW(post_feedforward_layernorm_1), H, 1.0f));
        G4_TRY(put_norm(p, &d->post_feedforward_layernorm_2, LW(post_feedforward_layernorm_2), H, 1.0f));
        G4_TRY(put_norm(p, &d->pre_feedforward_layernorm_2, LW(pre_feedforward_layernorm_2), H, 1.0f));
    }
    d->layer_scalar = lw ? lw->layer_scalar : 1.0f;
#undef LW
#undef LWM
    return G4_OK;
}

static g4_status put_all(struct placer *p, struct g4_cuda_model *m, const struct g4_config *c) {
    const struct g4_weights *w = p->w;
    const int64_t V = c->vocab_size, H = c->hidden_size, L = c->num_hidden_layers;
    const int64_t P = c->hidden_size_per_layer_input;
    G4_TRY(put_mat1(p, &m->embed, V, H, w ? &w->embed_tokens : NULL, "embed_tokens"));
    const bool tied = w ? w->lm_head.data == w->embed_tokens.data : c->tie_word_embeddings;
    if (tied) m->lm_head = m->embed;
    else G4_TRY(put_mat1(p, &m->lm_head, V, H, w ? &w->lm_head : NULL, "lm_head"));
    if (P) {
        G4_TRY(put_mat1(p, &m->ple_table, c->vocab_size_per_layer_input, L * P,
                        w ? &w->embed_tokens_per_layer : NULL, "embed_tokens_per_layer"));
        G4_TRY(put_mat1(p, &m->ple_model_proj, L * P, H, w ? &w->per_layer_model_projection : NULL,
                        "per_layer_model_projection"));
        G4_TRY(put_norm(p, &m->ple_norm, w ? w->per_layer_projection_norm : NULL, (size_t)P, 1.0f));
    }
    G4_TRY(put_norm(p, &m->norm, w ? w->norm : NULL, (size_t)H, 1.0f));
    for (int il = 0; il < c->num_hidden_layers; il++)
        G4_TRY(put_layer(p, &m->layer[il], c, w ? &w->layer[il] : NULL, il));
    return G4_OK;
}

static g4_status check_supported(const struct g4_config *c) {
    if (c->arch != G4_ARCH_GEMMA4 || c->attn_scale != 1.0f || !c->v_norm)
        return g4_fail(G4_ERR_UNSUPPORTED,
                       "cuda: only Gemma 4 decoders (attention scale 1, V norm) run on the CUDA "
                       "engine; this is %s (use the CPU engine)", c->variant ? c->variant : "?");
    const int nh = c->num_attention_heads;
    if (nh < 1) return g4_fail(G4_ERR_UNSUPPORTED, "cuda: %d attention heads", nh);
    for (int il = 0; il < c->num_hidden_layers; il++) {
        const struct g4_layer *ly = &c->layer[il];
        if (ly->head_dim < 2 || ly->head_dim % 2 || ly->head_dim > G4_CUDA_MAX_HEAD_DIM)
            return g4_fail(G4_ERR_UNSUPPORTED,
                           "cuda: layer %d head_dim %d: the kernels need an even head_dim in "
                           "[2, %d]", il, ly->head_dim, G4_CUDA_MAX_HEAD_DIM);
        if (ly->n_kv_heads < 1 || nh % ly->n_kv_heads || ly->n_kv_heads > 65535)
            return g4_fail(G4_ERR_UNSUPPORTED,
                           "cuda: layer %d: %d attention heads not divisible by %d KV heads", il,
                           nh, ly->n_kv_heads);
        if (ly->n_rope_pairs < 0 || ly->n_rope_pairs > ly->head_dim / 2)
            return g4_fail(G4_ERR_UNSUPPORTED, "cuda: layer %d: %d RoPE pairs for head_dim %d",
                           il, ly->n_rope_pairs, ly->head_dim);
        if (ly->window < 0)
            return g4_fail(G4_ERR_UNSUPPORTED, "cuda: layer %d window %d", il, ly->window);
    }
    if (c->enable_moe_block &&
        (c->num_experts < 1 || c->num_experts > 4096 || c->top_k_experts < 1 ||
         c->top_k_experts > c->num_experts))
        return g4_fail(G4_ERR_UNSUPPORTED,
                       "cuda: %d experts, top-k %d: the router needs 1 <= top-k <= experts <= 4096",
                       c->num_experts, c->top_k_experts);
    if (c->n_kv_slots > 65535)
        return g4_fail(G4_ERR_UNSUPPORTED, "cuda: %d K/V slots", c->n_kv_slots);
    if ((int64_t)c->num_hidden_layers * c->hidden_size_per_layer_input > 0x7fffffff)
        return g4_fail(G4_ERR_UNSUPPORTED, "cuda: per-layer input width overflows int");
    return G4_OK;
}

static g4_status open_device(int index) {
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess || n == 0) {
        cudaGetLastError(); // clear the non-sticky error
        return g4_fail(G4_ERR_DEVICE, "no CUDA device (%s)",
                       err == cudaSuccess ? "0 devices" : cudaGetErrorString(err));
    }
    if (index >= n) return g4_fail(G4_ERR_DEVICE, "CUDA device %d requested, %d present", index, n);
    G4_CUDA_TRY(cudaSetDevice(index));
    cudaGetLastError(); // a stale error of earlier work on this thread is not ours to report
    return G4_OK;
}

// Sizing pass, one allocation, then the filling pass: from w (host staging for conversions) or,
// with w NULL, from the device generator (seed).
static g4_status fill(struct g4_cuda_model *m, const struct g4_config *c,
                      const struct g4_weights *w, uint64_t seed) {
    struct placer p = {NULL, 0, w, seed, 0, NULL, NULL};
    G4_TRY(put_all(&p, m, c)); // sizing pass
    m->bytes = p.off;
    cudaError_t err = cudaMalloc(&m->base, m->bytes);
    if (err != cudaSuccess) {
        cudaGetLastError();
        m->base = NULL;
        size_t free_b = 0, total_b = 0;
        cudaMemGetInfo(&free_b, &total_b);
        cudaGetLastError();
        return g4_fail(err == cudaErrorMemoryAllocation ? G4_ERR_OUT_OF_MEMORY : G4_ERR_DEVICE,
                       "cuda: weights need %zu bytes on device %d (%zu of %zu free): %s",
                       m->bytes, m->device, free_b, total_b, cudaGetErrorString(err));
    }
    p.base = (char *)m->base;
    p.off = 0;
    g4_status st = G4_OK;
    if (w) {
        p.stage_f32 = (float *)malloc(STAGE_ELEMS * sizeof(float));
        p.stage_bf = (uint16_t *)malloc(STAGE_ELEMS * sizeof(uint16_t));
        if (!p.stage_f32 || !p.stage_bf)
            st = g4_fail(G4_ERR_OUT_OF_MEMORY, "cuda: host staging buffer for the upload");
    }
    if (st == G4_OK) st = put_all(&p, m, c);
    free(p.stage_f32);
    free(p.stage_bf);
    G4_TRY(st);
    // cudaMemcpy from pageable memory may return before its DMA lands, the fill kernels run on
    // the legacy stream, and sessions run on non-blocking streams that do not wait for it: wait
    // for it here, once (a fault of a fill kernel surfaces here too).
    G4_CUDA_TRY(cudaStreamSynchronize(cudaStreamLegacy));
    return G4_OK;
}

static g4_status model_init(struct g4_cuda_model **out, const struct g4_config *cfg,
                            const struct g4_weights *w, uint64_t seed, int device_index) {
    *out = NULL;
    G4_TRY(open_device(device_index));
    G4_TRY(check_supported(cfg));
    struct g4_cuda_model *m = (struct g4_cuda_model *)calloc(1, sizeof *m);
    if (!m) return g4_fail(G4_ERR_OUT_OF_MEMORY, "cuda model");
    m->cfg = cfg;
    m->device = device_index;
    g4_status st = fill(m, cfg, w, seed);
    if (st != G4_OK) {
        g4_cuda_model_free(m);
        return st;
    }
    *out = m;
    return G4_OK;
}

g4_status g4_cuda_model_init(struct g4_cuda_model **out, const struct g4_config *cfg,
                             const struct g4_weights *w, int device_index) {
    if (!w) {
        *out = NULL;
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "cuda: g4_cuda_model_init without weights");
    }
    return model_init(out, cfg, w, 0, device_index);
}

g4_status g4_cuda_model_init_random(struct g4_cuda_model **out, const struct g4_config *cfg,
                                    uint64_t seed, int device_index) {
    return model_init(out, cfg, NULL, seed, device_index);
}

void g4_cuda_model_free(struct g4_cuda_model *m) {
    if (!m) return;
    if (m->base) {
        cudaSetDevice(m->device);
        cudaFree(m->base);
    }
    free(m);
}
