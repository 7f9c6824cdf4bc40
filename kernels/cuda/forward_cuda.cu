// CUDA decoder for Gemma 4: the session's device state (K/V cache, activations, stream, cuBLAS
// handle) and the forward pass, mirroring kernels/cpu/forward_cpu.c step for step (same order, same
// names; transformers' Gemma4TextModel.forward + Gemma4TextDecoderLayer.forward).
//
// Precision (engine.h): weights are bf16; activations, norms, softmax and elementwise work are
// fp32. G4_CUDA_FP32: the matrix products see each fp32 activation exactly (the GEMV multiplies
// it in fp32, the GEMM as an exact bf16 hi + lo pair, see gemm.cu), like the CPU engine on a
// bf16 checkpoint. G4_CUDA_BF16: the products' inputs are rounded to bf16 (the CPU engine's
// GEMMA4_PRECISION_BF16); on the golden fixtures that moves the logits by 4-38% from FP32
// (kernels/README.md). Everything is enqueued on the session's stream; the only
// synchronization is one cudaStreamSynchronize at the end of each forward, after the logits
// copy.
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_check.h"
#include "engine.h"

extern "C" {
#include "log.h"
}

#define ALIGN 256
#define FOLD_TOKENS 8         // GEMMs of up to 8 tokens read their weights once (gemm.cu)

#define GRAPH_MAX_TOKENS 8 // steps of up to this many tokens replay a graph (decode)

// What a step leaves for the host.
enum step_out {
    OUT_NONE = 0,   // nothing (a prompt chunk)
    OUT_LAST = 1,   // the last position's logits row, through s->h_logits
    OUT_GREEDY = 2, // its argmax and lowest non-finite id (s->io->pick); the row stays on the device
    OUT_ALL = 3,    // every position's logits, straight into the caller's buffer (never a graph)
};
#define N_GRAPH_OUT 3

// Device step state and token ids, contiguous so that one copy uploads both, then the pick.
struct step_io {
    struct g4_cuda_step step;
    int32_t pick[2]; // greedy token, lowest non-finite id (-1: all finite)
    int32_t pad[2];
    int32_t tokens[1]; // (n_batch,)
};
static size_t step_io_bytes(int n_batch) {
    return offsetof(struct step_io, tokens) + (size_t)n_batch * sizeof(int32_t);
}

struct kv_slot {
    void *k, *v;             // (capacity, n_kv_heads, head_dim) of the session's K/V dtype
    void *stage_k, *stage_v; // (n_batch, n_kv_heads, head_dim); ring slots only
    int capacity;
    bool ring;
    int n_kv_heads, head_dim;
};

struct g4_cuda_session {
    const struct g4_cuda_model *m;
    const struct g4_config *cfg;
    int device;
    cudaStream_t stream;
    cublasHandle_t blas;
    int64_t n_ctx;
    int n_batch;
    // K/V: one allocation, slots first (kv_bytes), then the staging rows of ring slots; fp32,
    // or bf16 (kv_bf16) for the BF16 precision.
    bool kv_bf16;
    bool kv_bf16_in_bf16;     // the BF16 precision keeps K/V in bf16 (g4_cuda_session_kv_policy)
    void *kv_base;
    size_t kv_bytes;
    struct kv_slot slot[G4_MAX_LAYERS];
    // Activations: one allocation carved below. B = n_batch.
    void *act_base;
    int32_t *tokens;          // (B,) in io
    float *x, *t;             // (B, hidden) residual stream, sub-block output
    float *h;                 // (B, hidden) normed input of the next GEMM
    float *qkv;               // (B, max qkv width) q | k | v projections
    float *att;               // (B, n_heads * max head_dim) attention output
    float *gu;                // (B, 2 * max intermediate) gate | up
    float *act;               // (B, max intermediate) gelu(gate) * up
    struct g4_cuda_att_scratch att_scr; // split-attention partials and merge tickets
    struct g4_cuda_step *step; // in io: the step state the position-dependent kernels read
    struct g4_cuda_gemm_scratch gemm; // x split (2B, max GEMM cols) and fold rows
    struct g4_cuda_gemv_scratch gemv; // split-K partials and counters of the decode GEMV
    bool bf16_act;            // this forward's precision is G4_CUDA_BF16 (matrix products)
    float *ple;               // (B, n_layers, ple_dim) per-layer inputs
    float *g, *gated;         // (B, ple_dim) PLE gate before / after gelu * input
    float *h2;                // (B, hidden) expert input
    float *route_w;           // (B, top_k)
    int32_t *route_e;         // (B, top_k)
    int32_t *offsets;         // (n_experts + 1,)
    int32_t *order, *slot_of; // (B * top_k,)
    float *route_scratch;     // g4_cuda_moe_route_scratch_floats(B, hidden, n_experts)
    size_t route_scratch_floats;
    float *eact;              // (B * top_k, moe_intermediate)
    float *eout;              // (B * top_k, hidden)
    float *moe;               // (B, hidden)
    float *logits;            // (B, vocab)
    struct g4_cuda_ring *rings; // (n_rings,) device table for the commit
    int n_rings;
    // The step driver's traffic (g4_cuda_forward): one upload of the step state and the token
    // ids, one download of the greedy pick or the last logits row, both through pinned memory.
    struct step_io *io;       // device: step, tokens (B,), pick
    struct step_io *h_io;     // pinned host twin
    float *h_logits;          // (vocab,) pinned: the last position's logits
    // Decode steps as CUDA graphs, one per (precision, output, token count), made on first use.
    cudaGraphExec_t graph[2][N_GRAPH_OUT][GRAPH_MAX_TOKENS];
    bool graph_failed[2][N_GRAPH_OUT][GRAPH_MAX_TOKENS]; // capture failed: eager from then on
    const void *graph_kv_base; // the K/V allocation the graphs were captured with
    bool graphs_off;           // g4_cuda_session_use_graphs(s, false)
    struct g4_cuda_graph_counts counts;
};

static size_t align_up(size_t x) { return (x + ALIGN - 1) / ALIGN * ALIGN; }

static int qkv_width(const struct g4_config *c, int il) {
    const struct g4_layer *ly = &c->layer[il];
    const int kv = ly->n_kv_heads * ly->head_dim;
    return c->num_attention_heads * ly->head_dim + (ly->writes_kv ? (ly->k_eq_v ? kv : 2 * kv) : 0);
}

static g4_status device_alloc(void **out, size_t bytes, int device, const char *what) {
    cudaError_t err = cudaMalloc(out, bytes);
    if (err == cudaSuccess) return G4_OK;
    cudaGetLastError();
    *out = NULL;
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    return g4_fail(err == cudaErrorMemoryAllocation ? G4_ERR_OUT_OF_MEMORY : G4_ERR_DEVICE,
                   "cuda session: %s needs %zu bytes on device %d (%zu of %zu free): %s", what,
                   bytes, device, free_b, total_b, cudaGetErrorString(err));
}

// Slot table and one K/V allocation, as g4_kv_cache_init lays out the CPU cache, in fp32 or
// (bf16) bf16 elements.
static g4_status kv_init(struct g4_cuda_session *s, bool bf16) {
    const struct g4_config *c = s->cfg;
    const size_t esz = bf16 ? sizeof(g4_bf16) : sizeof(float);
    size_t cache = 0, stage = 0;
    s->n_rings = 0;
    for (int i = 0; i < c->n_kv_slots; i++) {
        const struct g4_kv_slot_info *si = &c->slot[i];
        struct kv_slot *sl = &s->slot[i];
        sl->ring = si->is_sliding && si->window < s->n_ctx;
        sl->capacity = sl->ring ? si->window : (int)s->n_ctx;
        sl->n_kv_heads = si->n_kv_heads;
        sl->head_dim = si->head_dim;
        const size_t row = (size_t)si->n_kv_heads * si->head_dim * esz;
        cache += 2 * align_up(row * (size_t)sl->capacity);
        if (sl->ring) stage += 2 * align_up(row * (size_t)s->n_batch);
    }
    G4_TRY(device_alloc(&s->kv_base, cache + stage, s->device, "K/V cache"));
    s->kv_bytes = cache;
    s->kv_bf16 = bf16;
    char *p = (char *)s->kv_base, *q = p + cache;
    for (int i = 0; i < c->n_kv_slots; i++) {
        struct kv_slot *sl = &s->slot[i];
        const size_t row = (size_t)sl->n_kv_heads * sl->head_dim * esz;
        sl->k = p;
        p += align_up(row * (size_t)sl->capacity);
        sl->v = p;
        p += align_up(row * (size_t)sl->capacity);
        sl->stage_k = sl->stage_v = NULL;
        if (!sl->ring) continue;
        sl->stage_k = q;
        q += align_up(row * (size_t)s->n_batch);
        sl->stage_v = q;
        q += align_up(row * (size_t)s->n_batch);
        s->n_rings++;
    }
    return G4_OK;
}

// The commit's ring table (device), after every (re)allocation of the K/V cache.
static g4_status rings_upload(struct g4_cuda_session *s) {
    if (!s->n_rings) return G4_OK;
    struct g4_cuda_ring h_rings[G4_MAX_LAYERS];
    int n = 0;
    for (int i = 0; i < s->cfg->n_kv_slots; i++) {
        const struct kv_slot *sl = &s->slot[i];
        if (!sl->ring) continue;
        h_rings[n].k = sl->k;
        h_rings[n].v = sl->v;
        h_rings[n].stage_k = sl->stage_k;
        h_rings[n].stage_v = sl->stage_v;
        h_rings[n].capacity = sl->capacity;
        h_rings[n].row = sl->n_kv_heads * sl->head_dim;
        h_rings[n].bf16 = s->kv_bf16;
        h_rings[n].pad = 0;
        n++;
    }
    // on the session's stream, so the next forward finds it there (the pageable source is
    // staged before the call returns)
    G4_CUDA_TRY(cudaMemcpyAsync(s->rings, h_rings, (size_t)n * sizeof *h_rings,
                                cudaMemcpyHostToDevice, s->stream));
    return G4_OK;
}

// Contract 2 of the precisions: the K/V cache holds bf16 in BF16 and fp32 in FP32. A forward
// whose precision wants the other dtype re-makes the cache (free, then allocate the new size:
// bf16 needs half) while the session is empty; with tokens in it that is an error and nothing
// changes. Re-making moves every slot pointer: anything captured with the old ones is stale.
static g4_status kv_match(struct g4_cuda_session *s, bool bf16, int64_t pos0) {
    if (s->kv_base && s->kv_bf16 == bf16) return G4_OK;
    if (pos0 > 0)
        return g4_fail(G4_ERR_INVALID_ARGUMENT,
                       "cuda forward: the session's K/V cache holds %lld positions in %s and this "
                       "step's precision keeps K/V in %s: reset the session first",
                       (long long)pos0, s->kv_bf16 ? "bf16" : "fp32", bf16 ? "bf16" : "fp32");
    G4_CUDA_TRY(cudaStreamSynchronize(s->stream)); // nothing in flight reads the old cache
    if (s->kv_base) cudaFree(s->kv_base);
    s->kv_base = NULL;
    s->kv_bytes = 0;
    // Captured graphs hold the old slot pointers (a new allocation may even reuse the base
    // address with another layout): forward_step drops them when graph_kv_base differs.
    if (s->graph_kv_base) s->graph_kv_base = (const void *)&s->graph_kv_base;
    G4_TRY(kv_init(s, bf16)); // on failure kv_base stays NULL: the next forward tries again
    return rings_upload(s);
}

// Activation arena: sizes first, one allocation, then carve (llm.c's malloc_and_point).
static g4_status act_init(struct g4_cuda_session *s) {
    const struct g4_config *c = s->cfg;
    const size_t B = (size_t)s->n_batch, H = (size_t)c->hidden_size, V = (size_t)c->vocab_size;
    const size_t L = (size_t)c->num_hidden_layers, P = (size_t)c->hidden_size_per_layer_input;
    const size_t nh = (size_t)c->num_attention_heads, E = (size_t)c->num_experts;
    const size_t K = (size_t)c->top_k_experts, Im = (size_t)c->moe_intermediate_size;
    size_t max_hd = 0, max_i = 0, max_qkv = 0;
    for (int il = 0; il < c->num_hidden_layers; il++) {
        if ((size_t)c->layer[il].head_dim > max_hd) max_hd = (size_t)c->layer[il].head_dim;
        if ((size_t)c->layer[il].intermediate_size > max_i) max_i = (size_t)c->layer[il].intermediate_size;
        if ((size_t)qkv_width(c, il) > max_qkv) max_qkv = (size_t)qkv_width(c, il);
    }
    // Split attention: the largest scratch any step size and layer shape asks for (the split
    // count depends on the grid and the SM count only, never on the position).
    G4_CUDA_TRY(cudaDeviceGetAttribute(&s->att_scr.n_sm, cudaDevAttrMultiProcessorCount,
                                       s->device));
    for (int n = 1; n <= s->n_batch; n++)
        for (int il = 0; il < c->num_hidden_layers; il++) {
            size_t pf = 0, tk = 0;
            g4_cuda_attention_splits(s->att_scr.n_sm, n, (int)nh, c->layer[il].n_kv_heads,
                                     c->layer[il].head_dim, 0, &pf, &tk);
            if (pf > s->att_scr.part_floats) s->att_scr.part_floats = pf;
            if (tk > s->att_scr.n_tickets) s->att_scr.n_tickets = tk;
        }
    s->route_scratch_floats = E ? g4_cuda_moe_route_scratch_floats((int)B, (int)H, (int)E) : 0;
    // GEMM inputs have hidden, n_heads * head_dim, intermediate or ple_dim columns; outputs up
    // to vocab (LM head), L * ple_dim, 2 * intermediate or the qkv width rows.
    size_t max_cols = H, max_rows = V;
    if (nh * max_hd > max_cols) max_cols = nh * max_hd;
    if (max_i > max_cols) max_cols = max_i;
    if (L * P > max_rows) max_rows = L * P;
    if (2 * max_i > max_rows) max_rows = 2 * max_i;
    if (max_qkv > max_rows) max_rows = max_qkv;
    const size_t fold_tokens = B < FOLD_TOKENS ? B : FOLD_TOKENS;
    s->gemm.x_split_elems = 2 * B * max_cols;
    s->gemm.out2_floats = 2 * fold_tokens * max_rows;
    const size_t f = sizeof(float), b = sizeof(g4_bf16), i4 = sizeof(int32_t);
    struct { void **ptr; size_t bytes; } parts[] = {
        {(void **)&s->x, B * H * f},
        {(void **)&s->t, B * H * f},
        {(void **)&s->h, B * H * f},
        {(void **)&s->qkv, B * max_qkv * f},
        {(void **)&s->att, B * nh * max_hd * f},
        {(void **)&s->gu, B * 2 * max_i * f},
        {(void **)&s->act, B * max_i * f},
        {(void **)&s->att_scr.part, s->att_scr.part_floats * f},
        {(void **)&s->att_scr.tickets, s->att_scr.n_tickets * sizeof(unsigned)},
        {(void **)&s->gemm.x_split, s->gemm.x_split_elems * b},
        {(void **)&s->gemm.out2, s->gemm.out2_floats * f},
        {(void **)&s->gemv.partial, G4_CUDA_GEMV_PARTIAL_FLOATS * f},
        {(void **)&s->gemv.counters, G4_CUDA_GEMV_COUNTERS * sizeof(unsigned)},
        {(void **)&s->ple, B * L * P * f},
        {(void **)&s->g, B * P * f},
        {(void **)&s->gated, B * P * f},
        {(void **)&s->h2, E ? B * H * f : 0},
        {(void **)&s->route_w, B * K * f},
        {(void **)&s->route_e, B * K * i4},
        {(void **)&s->offsets, E ? (E + 1) * i4 : 0},
        {(void **)&s->order, B * K * i4},
        {(void **)&s->slot_of, B * K * i4},
        {(void **)&s->route_scratch, s->route_scratch_floats * f},
        {(void **)&s->eact, B * K * Im * f},
        {(void **)&s->eout, E ? B * K * H * f : 0},
        {(void **)&s->moe, E ? B * H * f : 0},
        {(void **)&s->logits, B * V * f},
        {(void **)&s->rings, (size_t)s->n_rings * sizeof(struct g4_cuda_ring)},
    };
    size_t total = 0;
    for (size_t i = 0; i < G4_COUNT(parts); i++) total += align_up(parts[i].bytes);
    G4_TRY(device_alloc(&s->act_base, total, s->device, "activations"));
    char *p = (char *)s->act_base;
    for (size_t i = 0; i < G4_COUNT(parts); i++) {
        *parts[i].ptr = parts[i].bytes ? p : NULL;
        p += align_up(parts[i].bytes);
    }
    G4_TRY(rings_upload(s));
    // The GEMV's split-K counters start at zero; every launch leaves them zero.
    s->gemv.partial_floats = G4_CUDA_GEMV_PARTIAL_FLOATS;
    s->gemv.n_counters = G4_CUDA_GEMV_COUNTERS;
    G4_CUDA_TRY(cudaDeviceGetAttribute(&s->gemv.n_sms, cudaDevAttrMultiProcessorCount, s->device));
    G4_CUDA_TRY(cudaMemsetAsync(s->gemv.counters, 0, G4_CUDA_GEMV_COUNTERS * sizeof(unsigned),
                                s->stream));
    // The merge tickets start at zero; every attention launch leaves them zero.
    if (s->att_scr.n_tickets)
        G4_CUDA_TRY(cudaMemsetAsync(s->att_scr.tickets, 0, s->att_scr.n_tickets * sizeof(unsigned),
                                    s->stream));
    return G4_OK;
}

// The step driver's buffers: the device step state + token ids (+ pick), and their pinned twins.
static g4_status io_init(struct g4_cuda_session *s) {
    const size_t bytes = step_io_bytes(s->n_batch);
    G4_TRY(device_alloc((void **)&s->io, bytes, s->device, "step state"));
    s->tokens = s->io->tokens;
    s->step = &s->io->step;
    G4_CUDA_TRY(cudaMallocHost((void **)&s->h_io, bytes));
    G4_CUDA_TRY(cudaMallocHost((void **)&s->h_logits, (size_t)s->cfg->vocab_size * sizeof(float)));
    return G4_OK;
}

static void graphs_clear(struct g4_cuda_session *s) {
    for (int p = 0; p < 2; p++)
        for (int o = 0; o < N_GRAPH_OUT; o++)
            for (int n = 0; n < GRAPH_MAX_TOKENS; n++) {
                if (s->graph[p][o][n]) cudaGraphExecDestroy(s->graph[p][o][n]);
                s->graph[p][o][n] = NULL;
                s->graph_failed[p][o][n] = false;
            }
    s->graph_kv_base = NULL;
}

// On a (nearly) full device, stream and cuBLAS handle creation fail with codes that do not say
// "memory" (cuBLAS reports CUBLAS_STATUS_NOT_INITIALIZED when it cannot allocate its
// workspace): with less than this free at the failure, the cause is memory.
#define CONTEXT_HEADROOM ((size_t)64 << 20)

static g4_status context_fail(const struct g4_cuda_session *s, const char *what,
                              const char *err_text, bool oom_code) {
    cudaGetLastError(); // the failed allocation must not fail a later launch check
    size_t free_b = 0, total_b = 0;
    const bool known = cudaMemGetInfo(&free_b, &total_b) == cudaSuccess;
    cudaGetLastError();
    const bool oom = oom_code || (known && free_b < CONTEXT_HEADROOM);
    return g4_fail(oom ? G4_ERR_OUT_OF_MEMORY : G4_ERR_DEVICE,
                   "cuda session: %s: %s (%zu of %zu bytes free on device %d)", what, err_text,
                   free_b, total_b, s->device);
}

g4_status g4_cuda_session_init(struct g4_cuda_session **out, const struct g4_cuda_model *m,
                               int64_t n_ctx, int n_batch) {
    *out = NULL;
    if (!m || n_ctx < 1 || n_ctx > 0x7fffffff || n_batch < 1)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "cuda session: n_ctx %lld, n_batch %d",
                       (long long)n_ctx, n_batch);
    struct g4_cuda_session *s = (struct g4_cuda_session *)calloc(1, sizeof *s);
    if (!s) return g4_fail(G4_ERR_OUT_OF_MEMORY, "cuda session");
    s->m = m;
    s->cfg = m->cfg;
    s->device = m->device;
    s->n_ctx = n_ctx;
    s->n_batch = n_batch;
    s->kv_bf16_in_bf16 = G4_CUDA_KV_BF16_IN_BF16;
    g4_status st = G4_OK;
    cudaGetLastError(); // a stale error of earlier work on this thread is not ours to report
    cudaError_t err = cudaSetDevice(s->device);
    if (err != cudaSuccess)
        st = g4_fail(G4_ERR_DEVICE, "cuda session: cudaSetDevice(%d): %s", s->device,
                     cudaGetErrorString(err));
    if (st == G4_OK && (err = cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking)) != cudaSuccess) {
        s->stream = NULL;
        st = context_fail(s, "stream", cudaGetErrorString(err), err == cudaErrorMemoryAllocation);
    }
    cublasStatus_t bst = CUBLAS_STATUS_SUCCESS;
    if (st == G4_OK && (bst = cublasCreate(&s->blas)) != CUBLAS_STATUS_SUCCESS) {
        s->blas = NULL;
        st = context_fail(s, "cublasCreate", cublasGetStatusString(bst),
                          bst == CUBLAS_STATUS_ALLOC_FAILED);
    }
    if (st == G4_OK && (bst = cublasSetStream(s->blas, s->stream)) != CUBLAS_STATUS_SUCCESS)
        st = g4_fail(G4_ERR_DEVICE, "cuda session: cublasSetStream: %s", cublasGetStatusString(bst));
    if (st == G4_OK) st = kv_init(s, false); // fp32 until a BF16 forward re-makes it
    if (st == G4_OK) st = act_init(s);
    if (st == G4_OK) st = io_init(s);
    if (st != G4_OK) {
        g4_cuda_session_free(s);
        return st;
    }
    *out = s;
    return G4_OK;
}

void g4_cuda_session_free(struct g4_cuda_session *s) {
    if (!s) return;
    cudaSetDevice(s->device);
    if (s->stream) cudaStreamSynchronize(s->stream);
    graphs_clear(s);
    if (s->h_io) cudaFreeHost(s->h_io);
    if (s->h_logits) cudaFreeHost(s->h_logits);
    if (s->io) cudaFree(s->io);
    if (s->act_base) cudaFree(s->act_base);
    if (s->kv_base) cudaFree(s->kv_base);
    if (s->blas) cublasDestroy(s->blas);
    if (s->stream) cudaStreamDestroy(s->stream);
    cudaGetLastError(); // errors while tearing down have nowhere to go
    free(s);
}

size_t g4_cuda_session_kv_bytes(const struct g4_cuda_session *s) { return s->kv_bytes; }

void g4_cuda_session_kv_policy(struct g4_cuda_session *s, bool bf16_kv_in_bf16) {
    s->kv_bf16_in_bf16 = bf16_kv_in_bf16;
}

// The session's linear layer (g4_cuda_linear: the GEMV up to 8 tokens, cuBLAS above) in this
// forward's precision, with an optional fused epilogue (tmp: the GEMM path's pre-epilogue rows).
static g4_status linear(struct g4_cuda_session *s, float *out, const float *x,
                        const struct g4_cuda_mat *w, int n, enum g4_cuda_epilogue epi,
                        int ple_layer, float *tmp) {
    const struct g4_cuda_linear_ctx ctx = {s->blas, s->stream, s->gemm, s->gemv};
    return g4_cuda_linear(&ctx, out, x, w->w, n, w->rows, w->cols, s->bf16_act, epi, s->ple,
                          s->cfg->num_hidden_layers, ple_layer, tmp);
}

static g4_status matmul(struct g4_cuda_session *s, float *out, const float *x,
                        const struct g4_cuda_mat *w, int n) {
    return linear(s, out, x, w, n, G4_CUDA_EPI_NONE, 0, NULL);
}

// Gemma4TextAttention.forward: reads s->h (n, hidden), writes s->t (n, hidden). Positions come
// from the device step state (s->step): nothing enqueued here depends on the position.
static g4_status attention(struct g4_cuda_session *s, int il, int n) {
    const struct g4_config *c = s->cfg;
    const struct g4_layer *ly = &c->layer[il];
    const struct g4_cuda_layer *lw = &s->m->layer[il];
    const int nh = c->num_attention_heads, hd = ly->head_dim, nkv = ly->n_kv_heads;
    const int W = lw->qkv.rows;
    const float eps = c->rms_norm_eps;
    cudaStream_t st = s->stream;
    // q | k | v = h @ [q_proj; k_proj; v_proj]^T
    G4_TRY(matmul(s, s->qkv, s->h, &lw->qkv, n));
    const struct kv_slot *sl = &s->slot[ly->kv_slot];
    const int64_t row = (int64_t)nkv * hd;
    // Rings: this step's rows go to staging (committed after the last layer); linear slots:
    // in place at their positions.
    void *new_k = sl->ring ? sl->stage_k : sl->k, *new_v = sl->ring ? sl->stage_v : sl->v;
    const int at_pos = !sl->ring, kv16 = s->kv_bf16;
    // q = RoPE(q_norm(q)) in place; k = RoPE(k_norm(k)), v = v_norm(v) into the slot's new
    // rows: one launch for the three.
    struct g4_cuda_rope_part parts[3] = {
        {s->qkv, W, s->qkv, W, lw->q_norm, nh, ly->n_rope_pairs, 0, 0},
    };
    int n_parts = 1;
    if (ly->writes_kv) {
        const float *k = s->qkv + (int64_t)nh * hd;
        // k_eq_v: V is the k_proj output before k_norm and RoPE
        const float *v = ly->k_eq_v ? k : k + row;
        parts[1] = (struct g4_cuda_rope_part){new_k, row, k, W, lw->k_norm, nkv, ly->n_rope_pairs, kv16,
                                             at_pos};
        parts[2] = (struct g4_cuda_rope_part){new_v, row, v, W, NULL, nkv, 0, kv16, at_pos};
        n_parts = 3;
    }
    G4_TRY(g4_cuda_head_norm_rope(parts, n_parts, n, hd, lw->rope_inv_freq, s->step, eps, st));
    // KV-shared layers read their donor's slot, written earlier in this same step.
    const struct g4_cuda_kv_view view = {sl->k, sl->v, sl->ring ? new_k : NULL,
                                         sl->ring ? new_v : NULL, sl->capacity, sl->ring,
                                         s->kv_bf16, nkv, hd};
    G4_TRY(g4_cuda_attention(s->att, (int64_t)nh * hd, s->qkv, W, &view, s->step, n, nh,
                             ly->window, 0, &s->att_scr, st));
    return matmul(s, s->t, s->att, &lw->o_proj, n);
}

// Gemma4TextMLP: s->t = down(gelu_tanh(gate(h)) * up(h)).
static g4_status mlp(struct g4_cuda_session *s, const struct g4_cuda_layer *lw, int n) {
    G4_TRY(linear(s, s->act, s->h, &lw->gate_up, n, G4_CUDA_EPI_GELU_MUL, 0, s->gu));
    return matmul(s, s->t, s->act, &lw->down, n);
}

// Gemma4TextRouter + Gemma4TextExperts: the router reads the residual x, the experts
// pre_feedforward_layernorm_2(x) (both norms from one launch); result in s->moe (n, hidden).
// Decode (g4_cuda_moe_decode_path): 5 launches (norms, router GEMV, top-k + grouping, two expert
// GEMVs with gelu * up and the combine fused); prefill: 7 (the grouping, the grouped GEMMs and
// the combine as their own launches).
// Both precisions keep the experts' activations fp32 (the kernels' bf16_act false): transformers'
// experts are not nn.Linear, so reference_bf16act.bin, the CPU engine's BF16 mode and abi/gemma4.h
// keep them fp32, and on the moe fixture rounding them moves the BF16 logits 0.24 (max |diff| /
// max |ref|) from that reference instead of 8e-3 (test_moe_precisions); decode streams the same
// weight bytes either way. The kernels take the flag for a tensor-core grouped GEMM.
#define MOE_BF16_EXPERTS false
static g4_status moe(struct g4_cuda_session *s, const struct g4_cuda_layer *lw, int n) {
    const bool bf16_act = s->bf16_act && MOE_BF16_EXPERTS;
    const struct g4_config *c = s->cfg;
    const int H = c->hidden_size, E = c->num_experts, K = c->top_k_experts;
    cudaStream_t st = s->stream;
    G4_TRY(g4_cuda_moe_route(s->route_w, s->route_e, s->offsets, s->order, s->slot_of, s->h2,
                             lw->pre_feedforward_layernorm_2, s->x, lw->router_scale,
                             lw->router_proj, lw->router_per_expert_scale, n, H, E, K,
                             c->rms_norm_eps, s->route_scratch, s->route_scratch_floats, st));
    return g4_cuda_moe_experts(s->moe, s->h2, s->route_w, s->route_e, s->offsets, s->order,
                               s->slot_of, lw->experts_gate_up, lw->experts_down, n, H,
                               c->moe_intermediate_size, E, K, bf16_act, s->eact, s->eout, st);
}

// Every layer and the logits for tokens already in s->tokens; enqueue only. The ring commit is
// not here: g4_cuda_forward enqueues it last (a failed step commits nothing).
static g4_status run(struct g4_cuda_session *s, int n, int64_t pos0, bool want_logits,
                     bool all_logits) {
    const struct g4_cuda_model *m = s->m;
    const struct g4_config *c = s->cfg;
    const int H = c->hidden_size, L = c->num_hidden_layers, P = c->hidden_size_per_layer_input;
    const float eps = c->rms_norm_eps;
    cudaStream_t st = s->stream;
    (void)pos0; // the position-dependent kernels read it from s->step

    // inputs_embeds = embed_tokens(ids) * sqrt(hidden)
    G4_TRY(g4_cuda_embed(s->x, m->embed.w, s->tokens, n, H, sqrtf((float)H), st));
    if (P) { // Gemma4TextModel.get_per_layer_inputs + project_per_layer_inputs
        G4_TRY(matmul(s, s->ple, s->x, &m->ple_model_proj, n));
        G4_TRY(g4_cuda_ple_combine(s->ple, m->ple_table.w, s->tokens, m->ple_norm, n, L, P,
                                   powf((float)H, -0.5f), sqrtf((float)P), eps, st));
    }
    G4_TRY(g4_cuda_rmsnorm(s->h, s->x, m->layer[0].input_layernorm, n, H, eps, st));

    for (int il = 0; il < L; il++) {
        const struct g4_cuda_layer *lw = &m->layer[il];
        const float *next_norm = il + 1 < L ? m->layer[il + 1].input_layernorm : NULL;
        const enum g4_cuda_out next_mode = next_norm ? G4_CUDA_OUT_NORM : G4_CUDA_OUT_NONE;

        // h = x + post_attention_layernorm(attn(input_layernorm(x))), then pre_ff_norm(h)
        G4_TRY(attention(s, il, n));
        G4_TRY(g4_cuda_add_rmsnorm(s->x, s->t, lw->post_attention_layernorm, 1.0f, s->h,
                                   lw->pre_feedforward_layernorm, G4_CUDA_OUT_NORM, n, H, eps, st));

        // h = h + post_feedforward_layernorm(mlp(pre_ff_norm(h)) [+ MoE])
        G4_TRY(mlp(s, lw, n));
        if (c->enable_moe_block) {
            G4_TRY(moe(s, lw, n));
            G4_TRY(g4_cuda_rmsnorm_sum2(s->t, lw->post_feedforward_layernorm_1, s->moe,
                                        lw->post_feedforward_layernorm_2, n, H, eps, st));
        }
        if (!P) { // ... then * layer_scalar, and the next layer's input norm
            G4_TRY(g4_cuda_add_rmsnorm(s->x, s->t, lw->post_feedforward_layernorm, lw->layer_scalar,
                                       s->h, next_norm, next_mode, n, H, eps, st));
            continue;
        }
        G4_TRY(g4_cuda_add_rmsnorm(s->x, s->t, lw->post_feedforward_layernorm, 1.0f, NULL, NULL,
                                   G4_CUDA_OUT_NONE, n, H, eps, st));
        // PLE: h = h + post_per_layer_input_norm(proj(gelu(gate(h)) * per_layer_input[il]))
        G4_TRY(linear(s, s->gated, s->x, &lw->ple_gate, n, G4_CUDA_EPI_PLE_GATE, il, s->g));
        G4_TRY(matmul(s, s->t, s->gated, &lw->ple_proj, n));
        G4_TRY(g4_cuda_add_rmsnorm(s->x, s->t, lw->post_per_layer_input_norm, lw->layer_scalar,
                                   s->h, next_norm, next_mode, n, H, eps, st));
    }
    if (!want_logits) return G4_OK;

    // final norm -> LM head -> softcap, for every token or only the last
    const int first = all_logits ? 0 : n - 1, n_out = n - first;
    G4_TRY(g4_cuda_rmsnorm(s->h, s->x + (size_t)first * H, m->norm, n_out, H, eps, st));
    G4_TRY(matmul(s, s->logits, s->h, &m->lm_head, n_out));
    if (c->final_logit_softcapping > 0.0f)
        G4_TRY(g4_cuda_softcap(s->logits, (size_t)n_out * c->vocab_size, c->final_logit_softcapping,
                               st));
    return G4_OK;
}

// Everything of one step after the upload, enqueued on s->stream (or recorded, while it
// captures): the layers, what the host gets back, and last the ring commit (a step that fails
// before it leaves the rings as they were). Nothing here synchronizes, allocates or reads a
// host value that changes from step to step: positions come from s->io->step.
static g4_status enqueue_step(struct g4_cuda_session *s, int n, int64_t pos0,
                              enum step_out out, float *all_logits) {
    const size_t V = (size_t)s->cfg->vocab_size;
    G4_TRY(run(s, n, pos0, out != OUT_NONE, out == OUT_ALL));
    cudaError_t err = cudaSuccess;
    if (out == OUT_GREEDY) {
        G4_TRY(g4_cuda_argmax(&s->io->pick[0], &s->io->pick[1], s->logits, 1, (int)V, s->stream));
        err = cudaMemcpyAsync(s->h_io->pick, s->io->pick, sizeof s->io->pick,
                              cudaMemcpyDeviceToHost, s->stream);
    } else if (out == OUT_LAST) {
        err = cudaMemcpyAsync(s->h_logits, s->logits, V * sizeof(float), cudaMemcpyDeviceToHost,
                              s->stream);
    } else if (out == OUT_ALL) {
        err = cudaMemcpyAsync(all_logits, s->logits, (size_t)n * V * sizeof(float),
                              cudaMemcpyDeviceToHost, s->stream);
    }
    if (err != cudaSuccess)
        return g4_fail(G4_ERR_DEVICE, "cuda forward: result copy: %s", cudaGetErrorString(err));
    return g4_cuda_kv_commit(s->rings, s->n_rings, s->step, n, s->stream);
}

// Captures enqueue_step as a graph; NULL (and the reason in the log) when the capture fails,
// which leaves the stream and the session as they were: nothing of the step has run.
static cudaGraphExec_t capture_step(struct g4_cuda_session *s, int n, int64_t pos0,
                                    enum step_out out) {
    cudaError_t err = cudaStreamBeginCapture(s->stream, cudaStreamCaptureModeThreadLocal);
    g4_status st = G4_OK;
    char why[256] = "";
    if (err != cudaSuccess) {
        snprintf(why, sizeof why, "cudaStreamBeginCapture: %s", cudaGetErrorName(err));
    } else {
        st = enqueue_step(s, n, pos0, out, NULL);
        if (st != G4_OK) snprintf(why, sizeof why, "%s", g4_last_error());
        cudaGraph_t graph = NULL;
        err = cudaStreamEndCapture(s->stream, &graph); // ends it whatever happened inside
        if (st == G4_OK && err != cudaSuccess)
            snprintf(why, sizeof why, "cudaStreamEndCapture: %s", cudaGetErrorName(err));
        cudaGraphExec_t exec = NULL;
        if (st == G4_OK && err == cudaSuccess) {
            err = cudaGraphInstantiate(&exec, graph, 0);
            if (err != cudaSuccess) {
                exec = NULL;
                snprintf(why, sizeof why, "cudaGraphInstantiate: %s", cudaGetErrorName(err));
            }
        }
        if (graph) cudaGraphDestroy(graph);
        if (exec) {
            s->counts.captured++;
            return exec;
        }
    }
    cudaGetLastError(); // the capture's errors must not fail the eager step that follows
    s->counts.capture_failed++;
    g4_log(G4_LOG_WARN, "cuda: capturing the %d-token step as a CUDA graph failed (%s); "
           "this step shape runs eagerly in this session", n, why);
    return NULL;
}

// One step: upload (step state + tokens), the step's work (a graph replay for decode shapes,
// else enqueued), one stream synchronization, then the results to the host.
static g4_status forward_step(struct g4_cuda_session *s, const int32_t *tokens, int n, int64_t pos0,
                              enum g4_cuda_precision prec, enum step_out out, float *logits) {
    if (prec != G4_CUDA_FP32 && prec != G4_CUDA_BF16)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "cuda forward: unknown precision %d", (int)prec);
    if (n < 1 || n > s->n_batch || pos0 < 0 || pos0 + n > s->n_ctx)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "cuda forward: %d tokens at %lld (batch %d, ctx %lld)",
                       n, (long long)pos0, s->n_batch, (long long)s->n_ctx);
    G4_CUDA_TRY(cudaSetDevice(s->device));
    cudaGetLastError(); // a stale error of earlier work on this thread is not ours to report
    // The K/V dtype of this precision (contract 2): re-made while empty, else refused.
    G4_TRY(kv_match(s, prec == G4_CUDA_BF16 && s->kv_bf16_in_bf16, pos0));
    s->bf16_act = prec == G4_CUDA_BF16;

    // A graph bakes in every device pointer: a re-made K/V cache makes them all stale.
    if (s->graph_kv_base && s->graph_kv_base != s->kv_base) graphs_clear(s);
    cudaGraphExec_t exec = NULL;
    if (!s->graphs_off && out != OUT_ALL && n <= GRAPH_MAX_TOKENS) {
        cudaGraphExec_t *slot = &s->graph[prec][out][n - 1];
        bool *failed = &s->graph_failed[prec][out][n - 1];
        if (!*slot && !*failed) {
            *slot = capture_step(s, n, pos0, out);
            *failed = !*slot;
            if (*slot) s->graph_kv_base = s->kv_base;
        }
        exec = *slot;
    }

    s->h_io->step.pos0 = pos0;
    s->h_io->step.n_tokens = n;
    s->h_io->step.pad = 0;
    memcpy(s->h_io->tokens, tokens, (size_t)n * sizeof(int32_t));
    g4_status st = G4_OK;
    cudaError_t err = cudaMemcpyAsync(s->io, s->h_io, step_io_bytes(n), cudaMemcpyHostToDevice,
                                      s->stream);
    if (err != cudaSuccess)
        st = g4_fail(G4_ERR_DEVICE, "cuda forward: step upload: %s", cudaGetErrorString(err));
    if (st == G4_OK && exec) {
        err = cudaGraphLaunch(exec, s->stream);
        if (err != cudaSuccess)
            st = g4_fail(G4_ERR_DEVICE, "cuda forward: cudaGraphLaunch: %s (%s)",
                         cudaGetErrorString(err), cudaGetErrorName(err));
        else s->counts.replayed++;
    } else if (st == G4_OK) {
        st = enqueue_step(s, n, pos0, out, logits);
        s->counts.eager++;
    }
    // Always drain the stream (the pinned buffers are reused next call); asynchronous faults of
    // any kernel above surface here.
    err = cudaStreamSynchronize(s->stream);
    if (st == G4_OK && err != cudaSuccess)
        st = g4_fail(G4_ERR_DEVICE, "cuda forward: %s (%s)", cudaGetErrorString(err),
                     cudaGetErrorName(err));
    if (st == G4_OK && out == OUT_LAST)
        memcpy(logits, s->h_logits, (size_t)s->cfg->vocab_size * sizeof(float));
    return st;
}

g4_status g4_cuda_forward(struct g4_cuda_session *s, const int32_t *tokens, int n, int64_t pos0,
                          float *logits, bool all_logits, enum g4_cuda_precision prec) {
    const enum step_out out = !logits ? OUT_NONE : all_logits ? OUT_ALL : OUT_LAST;
    return forward_step(s, tokens, n, pos0, prec, out, logits);
}

g4_status g4_cuda_forward_greedy(struct g4_cuda_session *s, const int32_t *tokens, int n,
                                 int64_t pos0, enum g4_cuda_precision prec, int32_t *next,
                                 int32_t *nonfinite) {
    G4_TRY(forward_step(s, tokens, n, pos0, prec, OUT_GREEDY, NULL));
    *next = s->h_io->pick[0];
    *nonfinite = s->h_io->pick[1];
    return G4_OK;
}

g4_status g4_cuda_fetch_logits(struct g4_cuda_session *s, float *logits) {
    G4_CUDA_TRY(cudaSetDevice(s->device));
    G4_CUDA_TRY(cudaMemcpyAsync(s->h_logits, s->logits, (size_t)s->cfg->vocab_size * sizeof(float),
                                cudaMemcpyDeviceToHost, s->stream));
    G4_CUDA_TRY(cudaStreamSynchronize(s->stream));
    memcpy(logits, s->h_logits, (size_t)s->cfg->vocab_size * sizeof(float));
    return G4_OK;
}

void g4_cuda_session_use_graphs(struct g4_cuda_session *s, bool on) { s->graphs_off = !on; }

struct g4_cuda_graph_counts g4_cuda_session_graph_counts(const struct g4_cuda_session *s) {
    return s->counts;
}
