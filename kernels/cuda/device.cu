// CUDA device and model weights: opens the device, checks what the engine supports, and uploads
// every text-model tensor once into one device allocation (bf16 matrices; fp32 norm vectors,
// layer scalars and router). Checkpoint bf16 is copied as is; f32 and f16 are rounded to bf16
// (nearest even) on the host in chunks. Matrices read by one GEMM are placed back to back:
// [q_proj; k_proj; v_proj] and [gate_proj; up_proj]. After the upload the device never reads
// the host mapping. Sizes are computed by a first pass over the same code that uploads.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "cuda_check.h"

#define ALIGN 256
#define STAGE_ELEMS ((size_t)1 << 22) // host staging: 4 Mi elements (16 MiB fp32 + 8 MiB bf16)

// Places tensors in the device allocation. With base == NULL only counts bytes.
struct placer {
    char *base;
    size_t off;
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

// Copies w (checkpoint dtype) to dst as bf16; block-quantized weights (GGUF) are dequantized
// here, so this engine computes with their bf16 roundings.
static g4_status put_bf16(struct placer *p, g4_bf16 *dst, const struct g4_weight *w) {
    const size_t n = weight_elems(w);
    if (!p->base || n == 0) return G4_OK;
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

// One matrix, or several with the same cols stacked by rows (parts with data == NULL skipped).
static g4_status put_mat(struct placer *p, struct g4_cuda_mat *out, const struct g4_weight *parts,
                         int n_parts) {
    size_t rows = 0;
    for (int i = 0; i < n_parts; i++)
        if (parts[i].data) rows += (size_t)parts[i].rows;
    const size_t cols = (size_t)parts[0].cols;
    if (rows > 0x7fffffff || cols > 0x7fffffff)
        return g4_fail(G4_ERR_UNSUPPORTED, "cuda: a %zu x %zu matrix exceeds the int GEMM sizes",
                       rows, cols);
    g4_bf16 *dst = (g4_bf16 *)take(p, rows * cols * sizeof(g4_bf16));
    out->w = dst;
    out->rows = (int)rows;
    out->cols = (int)cols;
    for (int i = 0; i < n_parts; i++) {
        if (!parts[i].data) continue;
        G4_TRY(put_bf16(p, dst, &parts[i]));
        if (dst) dst += weight_elems(&parts[i]);
    }
    return G4_OK;
}

static g4_status put_vec(struct placer *p, const float **out, const float *src, size_t n) {
    float *dst = (float *)take(p, n * sizeof(float));
    *out = dst;
    if (p->base) G4_CUDA_TRY(cudaMemcpy(dst, src, n * sizeof(float), cudaMemcpyHostToDevice));
    return G4_OK;
}

// A checkpoint-dtype matrix as fp32 (the MoE router).
static g4_status put_f32_mat(struct placer *p, const float **out, const struct g4_weight *w) {
    const size_t n = weight_elems(w);
    float *dst = (float *)take(p, n * sizeof(float));
    *out = dst;
    if (!p->base) return G4_OK;
    for (size_t i = 0; i < n; i += STAGE_ELEMS) {
        const size_t k = n - i < STAGE_ELEMS ? n - i : STAGE_ELEMS;
        g4_to_f32(p->stage_f32, (const char *)w->data + elem_offset(w, i), w->dtype, k);
        G4_CUDA_TRY(cudaMemcpy(dst + i, p->stage_f32, k * sizeof(float), cudaMemcpyHostToDevice));
    }
    return G4_OK;
}

static g4_status put_layer(struct placer *p, struct g4_cuda_layer *d, const struct g4_config *c,
                           const struct g4_layer_weights *lw, int il) {
    const size_t H = (size_t)c->hidden_size, hd = (size_t)c->layer[il].head_dim;
    G4_TRY(put_vec(p, &d->input_layernorm, lw->input_layernorm, H));
    G4_TRY(put_vec(p, &d->post_attention_layernorm, lw->post_attention_layernorm, H));
    G4_TRY(put_vec(p, &d->pre_feedforward_layernorm, lw->pre_feedforward_layernorm, H));
    G4_TRY(put_vec(p, &d->post_feedforward_layernorm, lw->post_feedforward_layernorm, H));
    G4_TRY(put_vec(p, &d->q_norm, lw->q_norm, hd));
    d->k_norm = NULL;
    if (lw->k_norm) G4_TRY(put_vec(p, &d->k_norm, lw->k_norm, hd));
    d->rope_inv_freq = NULL;
    const int n_pairs = c->layer[il].n_rope_pairs;
    if (n_pairs > 0) { // the host's exact table (rope.cu says why)
        float freq[G4_CUDA_MAX_HEAD_DIM / 2];
        g4_cuda_rope_inv_freq(freq, n_pairs, c->layer[il].head_dim, c->layer[il].rope_theta,
                              c->layer[il].rope_factor);
        G4_TRY(put_vec(p, &d->rope_inv_freq, freq, (size_t)n_pairs));
    }
    const struct g4_weight qkv[3] = {lw->q_proj, lw->k_proj, lw->v_proj}; // absent: data NULL
    G4_TRY(put_mat(p, &d->qkv, qkv, 3));
    G4_TRY(put_mat(p, &d->o_proj, &lw->o_proj, 1));
    const struct g4_weight gate_up[2] = {lw->gate_proj, lw->up_proj};
    G4_TRY(put_mat(p, &d->gate_up, gate_up, 2));
    G4_TRY(put_mat(p, &d->down, &lw->down_proj, 1));
    if (c->hidden_size_per_layer_input) {
        G4_TRY(put_mat(p, &d->ple_gate, &lw->per_layer_input_gate, 1));
        G4_TRY(put_mat(p, &d->ple_proj, &lw->per_layer_projection, 1));
        G4_TRY(put_vec(p, &d->post_per_layer_input_norm, lw->post_per_layer_input_norm, H));
    }
    if (c->enable_moe_block) {
        const size_t E = (size_t)c->num_experts;
        struct g4_cuda_mat m;
        G4_TRY(put_f32_mat(p, &d->router_proj, &lw->router_proj));
        G4_TRY(put_vec(p, &d->router_scale, lw->router_scale, H));
        G4_TRY(put_vec(p, &d->router_per_expert_scale, lw->router_per_expert_scale, E));
        G4_TRY(put_mat(p, &m, &lw->experts_gate_up, 1));
        d->experts_gate_up = m.w;
        G4_TRY(put_mat(p, &m, &lw->experts_down, 1));
        d->experts_down = m.w;
        G4_TRY(put_vec(p, &d->post_feedforward_layernorm_1, lw->post_feedforward_layernorm_1, H));
        G4_TRY(put_vec(p, &d->post_feedforward_layernorm_2, lw->post_feedforward_layernorm_2, H));
        G4_TRY(put_vec(p, &d->pre_feedforward_layernorm_2, lw->pre_feedforward_layernorm_2, H));
    }
    d->layer_scalar = lw->layer_scalar;
    return G4_OK;
}

static g4_status put_all(struct placer *p, struct g4_cuda_model *m, const struct g4_config *c,
                         const struct g4_weights *w) {
    G4_TRY(put_mat(p, &m->embed, &w->embed_tokens, 1));
    if (w->lm_head.data == w->embed_tokens.data) m->lm_head = m->embed;
    else G4_TRY(put_mat(p, &m->lm_head, &w->lm_head, 1));
    if (c->hidden_size_per_layer_input) {
        G4_TRY(put_mat(p, &m->ple_table, &w->embed_tokens_per_layer, 1));
        G4_TRY(put_mat(p, &m->ple_model_proj, &w->per_layer_model_projection, 1));
        G4_TRY(put_vec(p, &m->ple_norm, w->per_layer_projection_norm,
                       (size_t)c->hidden_size_per_layer_input));
    }
    G4_TRY(put_vec(p, &m->norm, w->norm, (size_t)c->hidden_size));
    for (int il = 0; il < c->num_hidden_layers; il++)
        G4_TRY(put_layer(p, &m->layer[il], c, &w->layer[il], il));
    return G4_OK;
}

// Every constraint the kernels assume, checked once at load so that an unsupported model is a
// clear G4_ERR_UNSUPPORTED here rather than a launch error at its first step.
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

static g4_status upload(struct g4_cuda_model *m, const struct g4_config *c,
                        const struct g4_weights *w) {
    struct placer p = {NULL, 0, NULL, NULL};
    G4_TRY(put_all(&p, m, c, w)); // sizing pass
    m->bytes = p.off;
    cudaError_t err = cudaMalloc(&m->base, m->bytes);
    if (err != cudaSuccess) {
        cudaGetLastError();
        m->base = NULL;
        size_t free_b = 0, total_b = 0;
        cudaMemGetInfo(&free_b, &total_b);
        return g4_fail(err == cudaErrorMemoryAllocation ? G4_ERR_OUT_OF_MEMORY : G4_ERR_DEVICE,
                       "cuda: weights need %zu bytes on device %d (%zu of %zu free): %s",
                       m->bytes, m->device, free_b, total_b, cudaGetErrorString(err));
    }
    p.base = (char *)m->base;
    p.off = 0;
    p.stage_f32 = (float *)malloc(STAGE_ELEMS * sizeof(float));
    p.stage_bf = (uint16_t *)malloc(STAGE_ELEMS * sizeof(uint16_t));
    g4_status st = p.stage_f32 && p.stage_bf
                       ? put_all(&p, m, c, w)
                       : g4_fail(G4_ERR_OUT_OF_MEMORY, "cuda: host staging buffer for the upload");
    free(p.stage_f32);
    free(p.stage_bf);
    G4_TRY(st);
    // cudaMemcpy from pageable memory may return before its DMA lands, and sessions run on
    // non-blocking streams that do not wait for the legacy stream: wait for it here, once.
    G4_CUDA_TRY(cudaStreamSynchronize(cudaStreamLegacy));
    return G4_OK;
}

g4_status g4_cuda_model_init(struct g4_cuda_model **out, const struct g4_config *cfg,
                             const struct g4_weights *w, int device_index) {
    *out = NULL;
    G4_TRY(open_device(device_index));
    G4_TRY(check_supported(cfg));
    struct g4_cuda_model *m = (struct g4_cuda_model *)calloc(1, sizeof *m);
    if (!m) return g4_fail(G4_ERR_OUT_OF_MEMORY, "cuda model");
    m->cfg = cfg;
    m->device = device_index;
    g4_status st = upload(m, cfg, w);
    if (st != G4_OK) {
        g4_cuda_model_free(m);
        return st;
    }
    *out = m;
    return G4_OK;
}

void g4_cuda_model_free(struct g4_cuda_model *m) {
    if (!m) return;
    if (m->base) {
        cudaSetDevice(m->device);
        cudaFree(m->base);
    }
    free(m);
}
