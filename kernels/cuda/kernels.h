// C-linkage launchers of the CUDA engine's kernels, one group per file (kernels/<op>.cu), used by
// forward_cuda.cu and by tests/test_kernels_cuda.c on device buffers.
//
// Conventions. Every pointer is a device pointer unless named h_*. Every launcher only enqueues
// work on `stream` (nothing synchronizes), checks the launch and returns G4_OK or a g4_status with
// the CUDA error text; invalid sizes are G4_ERR_INVALID_ARGUMENT before anything is launched.
// bf16 tensors are passed as g4_bf16 (the raw bits) so that C can include this header.
// Matrices are row-major; "(n, dim)" means n rows of dim elements, row stride dim unless a
// *_stride argument says otherwise. Numerics: weights are bf16; activations and all arithmetic
// are fp32; the K/V cache is fp32 or bf16 (g4_cuda_kv_view.bf16, struct g4_cuda_ring.bf16). The matrix products take a bf16_act flag (GEMMA4_PRECISION_BF16): false, each fp32
// activation enters exactly (the GEMV multiplies it in fp32, the GEMM as an exact bf16 hi + lo
// split, see gemm.cu); true, it is rounded to bf16 first (fp32 accumulation either way). Every
// CPU reference named below is in kernels/cpu/ops_cpu.h.
#ifndef G4_KERNELS_H
#define G4_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif
#include "status.h"

typedef uint16_t g4_bf16; // bfloat16 bits (upper half of an IEEE float32)

#define G4_CUDA_MAX_HEAD_DIM 512

// ---- device.cu -------------------------------------------------------------------------------
// Random values for the benchmark's models and operands (g4_cuda_model_init_random in engine.h,
// tests/bench/gpu_bench.c). z(stream, i) is an approximately standard normal variate that depends
// on (stream, i) alone: (sum of four 16-bit uniforms of splitmix64(stream ^ splitmix64(2i)) and
// splitmix64(stream ^ splitmix64(2i + 1)), each / 65536, minus 2) * sqrt(3); |z| <= 2 sqrt(3).
// bf16: dst[i] = bf16(z * sigma). fp32: dst[i] = center * (1 + spread * z), or spread * z when
// center is 0. The host twin is in tests/test_kernels_cuda.c (test_fill_normal).
g4_status g4_cuda_fill_normal_bf16(g4_bf16 *dst, size_t n, uint64_t stream, float sigma,
                                   cudaStream_t st);
g4_status g4_cuda_fill_normal_f32(float *dst, size_t n, uint64_t stream, float center,
                                  float spread, cudaStream_t st);

// ---- gemm.cu ---------------------------------------------------------------------------------
// Scratch of the GEMM wrapper, owned by the caller (one per stream).
struct g4_cuda_gemm_scratch {
    g4_bf16 *x_split;   // (2 * n_tokens, cols): hi rows, then lo rows
    size_t x_split_elems;
    float *out2;        // (2 * n_tokens, rows) when it fits: both halves from one GEMM
    size_t out2_floats;
};
// nn.Linear without bias: out (n_tokens, rows) fp32 = x (n_tokens, cols) fp32 @ w (rows, cols)^T,
// w bf16, one cuBLAS GEMM with CUBLAS_COMPUTE_32F (fp32 accumulation).
// bf16_act false: x is split exactly into bf16 hi = bf16(x) and lo = bf16(x - hi) (residual
// error ~2^-17 |x|) and the GEMM multiplies w by both, reading w once; out = w.hi + w.lo. When
// out2 cannot hold both halves, two GEMMs accumulate into out instead. CPU reference:
// g4_matmul_cpu. bf16_act true: out = w.bf16(x), one bf16 x bf16 GEMM, no fold (CPU reference:
// g4_matmul_cpu_bf16act). The cuBLAS handle must be set to `stream`.
g4_status g4_cuda_matmul(cublasHandle_t blas, float *out, const float *x, const g4_bf16 *w,
                         int n_tokens, int rows, int cols, bool bf16_act,
                         const struct g4_cuda_gemm_scratch *scr, cudaStream_t stream);

// ---- gemv.cu ---------------------------------------------------------------------------------
// Decode products (1..G4_CUDA_GEMV_MAX_TOKENS tokens): bf16 weights streamed once with 16-byte
// loads for all tokens, fp32 accumulation (see gemv.cuh for the device building blocks).
#define G4_CUDA_GEMV_MAX_TOKENS 8
// What the GEMV writes (its fused epilogue).
enum g4_cuda_epilogue {
    G4_CUDA_EPI_NONE = 0,     // out (n, rows) = x @ w^T
    G4_CUDA_EPI_GELU_MUL = 1, // w is [gate; up] (2 * dim, cols): out (n, dim) = gelu_tanh(gate) * up
    G4_CUDA_EPI_PLE_GATE = 2, // out (n, rows) = gelu_tanh(x @ w^T) * ple[t, ple_layer]
                              // (ple (n, ple_layers, rows): the PLE gate of layer ple_layer)
};
// Split-K scratch, owned by the caller (one per stream): partial sums and one arrival counter per
// row block, zero before the first launch (every launch leaves them zero again).
struct g4_cuda_gemv_scratch {
    float *partial;
    size_t partial_floats;
    unsigned *counters;
    int n_counters;
    int n_sms; // multiprocessors of the device (the automatic split aims at 2 blocks per SM)
};
// Scratch sizes the automatic choice (n_splits 0) never exceeds.
#define G4_CUDA_GEMV_COUNTERS 1024
#define G4_CUDA_GEMV_PARTIAL_FLOATS ((size_t)G4_CUDA_GEMV_COUNTERS * 32 * G4_CUDA_GEMV_MAX_TOKENS)
// Whether the GEMV can run this product: cols a multiple of 8 (16-byte weight loads), w and x
// 16-byte aligned, 1 <= n_tokens <= G4_CUDA_GEMV_MAX_TOKENS.
bool g4_cuda_gemv_supported(const float *x, const g4_bf16 *w, int n_tokens, int cols);
// out = epilogue(x (n_tokens, cols) @ w (rows, cols)^T); bf16_act rounds x to bf16 first
// (GEMMA4_PRECISION_BF16), else the fp32 x multiplies the bf16 weight in fp32 (FP32, exact up
// to summation order). n_splits 0 chooses the split of the columns (split-K: when the matrix has
// too few rows to fill 2 blocks per SM; the last block of each row block to finish adds the
// splits in split order and applies the epilogue, so the result does not depend on the
// schedule); n > 0 asks for n splits (tests), G4_ERR_INVALID_ARGUMENT if the scratch is short.
// Constraints as g4_cuda_gemv_supported (G4_ERR_INVALID_ARGUMENT naming the one broken);
// GELU_MUL needs rows even. CPU reference: g4_matmul_cpu / g4_matmul_cpu_bf16act + g4_gelu_tanh_cpu.
g4_status g4_cuda_gemv(float *out, const float *x, const g4_bf16 *w, int n_tokens, int rows,
                       int cols, bool bf16_act, enum g4_cuda_epilogue epi, const float *ple,
                       int ple_layers, int ple_layer, int n_splits,
                       const struct g4_cuda_gemv_scratch *scr, cudaStream_t stream);

// The engine's linear layer: the GEMV for n_tokens <= G4_CUDA_GEMV_MAX_TOKENS where
// g4_cuda_gemv_supported, else g4_cuda_matmul into tmp (when epi is not NONE: (n, rows) floats)
// followed by g4_cuda_gelu_mul / g4_cuda_ple_gate into out. Same numerics either way (up to
// summation order).
struct g4_cuda_linear_ctx {
    cublasHandle_t blas; // set to stream
    cudaStream_t stream;
    struct g4_cuda_gemm_scratch gemm;
    struct g4_cuda_gemv_scratch gemv;
};
g4_status g4_cuda_linear(const struct g4_cuda_linear_ctx *ctx, float *out, const float *x,
                         const g4_bf16 *w, int n_tokens, int rows, int cols, bool bf16_act,
                         enum g4_cuda_epilogue epi, const float *ple, int ple_layers,
                         int ple_layer, float *tmp);

// ---- embed.cu --------------------------------------------------------------------------------
// Gemma4TextScaledWordEmbedding: x (n_tokens, dim) = table[tokens[t]] * scale in fp32.
// table (n_vocab, dim) bf16; token ids must be valid rows.
g4_status g4_cuda_embed(float *x, const g4_bf16 *table, const int32_t *tokens, int n_tokens,
                        int dim, float scale, cudaStream_t stream);

// Gemma4TextModel.project_per_layer_inputs, after the context projection: ple (n_tokens,
// n_layers, dim) holds per_layer_model_projection(embeds) on input and, per (token, layer) row,
// becomes (rmsnorm(ple * proj_scale) * norm_w + table[tokens[t], layer] * tok_scale) * 2^-0.5.
// table (n_vocab, n_layers * dim) bf16; norm_w (dim,).
g4_status g4_cuda_ple_combine(float *ple, const g4_bf16 *table, const int32_t *tokens,
                              const float *norm_w, int n_tokens, int n_layers, int dim,
                              float proj_scale, float tok_scale, float eps, cudaStream_t stream);

// ---- rmsnorm.cu ------------------------------------------------------------------------------
// Gemma4RMSNorm, one row per block: out = x * (mean(x^2) + eps)^-0.5 * w (w NULL: no scale).
// x, out (n_rows, dim); out may be x. CPU reference: g4_rmsnorm_cpu.
g4_status g4_cuda_rmsnorm(float *out, const float *x, const float *w, int n_rows, int dim,
                          float eps, cudaStream_t stream);

// What g4_cuda_add_rmsnorm writes to `out` after updating x.
enum g4_cuda_out {
    G4_CUDA_OUT_NONE = 0, // nothing
    G4_CUDA_OUT_NORM = 1, // out = rmsnorm(x) * w_out: the next block's input norm
};
// The sandwich-norm residual update of Gemma4TextDecoderLayer, fused with the next norm:
// x = (x + rmsnorm(t) * w_t) * scale, then `out` per mode. x, t, out (n_rows, dim).
g4_status g4_cuda_add_rmsnorm(float *x, const float *t, const float *w_t, float scale,
                              float *out, const float *w_out, enum g4_cuda_out mode,
                              int n_rows, int dim, float eps, cudaStream_t stream);

// MoE block output: a = rmsnorm(a) * wa + rmsnorm(b) * wb (post_feedforward_layernorm_1 of the
// dense MLP plus post_feedforward_layernorm_2 of the experts). a, b (n_rows, dim) fp32.
g4_status g4_cuda_rmsnorm_sum2(float *a, const float *wa, const float *b, const float *wb,
                               int n_rows, int dim, float eps, cudaStream_t stream);

// ---- the device step state ------------------------------------------------------------------
// What changes from one forward to the next lives in device memory, one per session, written by
// g4_cuda_forward with one small asynchronous copy from pinned memory before the step's kernels.
// Kernels that depend on the position (RoPE, attention, the ring commit) read pos0 from it
// rather than taking it as an argument, and none sizes its grid from the context length, so one
// captured graph of a step serves every position. n_tokens is the step's token count; the
// launchers still take n_tokens (it sizes their grids, and a graph is captured per token count)
// and it must equal step->n_tokens.
struct g4_cuda_step {
    int64_t pos0;     // position of the step's first token
    int32_t n_tokens; // tokens in the step
    int32_t pad;
};

// ---- rope.cu ---------------------------------------------------------------------------------
// Per-head RMSNorm then RoPE, as Gemma4TextAttention does for q (q_norm) and k (k_norm) before
// apply_rotary_pos_emb, and for v (v_norm: w NULL, n_rope_pairs 0), for up to
// G4_CUDA_ROPE_MAX_PARTS tensors in one launch (q, k and v of a layer: one kernel). Part i:
// src (n_tokens, n_heads, head_dim) fp32 with src_stride floats between tokens; dst the same
// shape with dst_stride elements between tokens, fp32 or (dst_bf16) bf16 rounded to nearest
// even; dst may be src with the same stride (fp32). Token t is at position step->pos0 + t and
// goes to dst row t, or with dst_at_pos to dst row step->pos0 + t (a linear K/V slot written in
// place: no host pointer depends on the position);
// pairs (i, i + head_dim/2) with i < n_rope_pairs rotate by pos * inv_freq[i] (a device table
// from g4_cuda_rope_inv_freq, shared by the parts), the others are the identity (proportional
// RoPE). head_dim even, <= G4_CUDA_MAX_HEAD_DIM. CPU reference: g4_rmsnorm_cpu + g4_rope_cpu.
#define G4_CUDA_ROPE_MAX_PARTS 3
struct g4_cuda_rope_part {
    void *dst;          // fp32 or bf16 (dst_bf16)
    int64_t dst_stride; // elements between tokens
    const float *src;
    int64_t src_stride; // floats between tokens
    const float *w;     // (head_dim,) learned scale, or NULL
    int n_heads;
    int n_rope_pairs;   // 0: no rotation
    int dst_bf16;
    int dst_at_pos;     // dst row of token t: step->pos0 + t instead of t
};
g4_status g4_cuda_head_norm_rope(const struct g4_cuda_rope_part *parts, int n_parts,
                                 int n_tokens, int head_dim, const float *inv_freq,
                                 const struct g4_cuda_step *step, float eps,
                                 cudaStream_t stream);
// Host: inv_freq[i] = 1 / theta^(2i / head_dim) / factor for i < n_rope_pairs, computed exactly
// as the CPU engine's g4_rope_factor_cpu computes it (the device's powf differs by an ulp, which
// at position ~131000 moves the rotation by ~1e-2). factor 1: plain RoPE.
void g4_cuda_rope_inv_freq(float *inv_freq, int n_rope_pairs, int head_dim, float theta,
                           float factor);

// ---- attention.cu -----------------------------------------------------------------------
// Where attention finds the K/V rows of one cache slot (the device twin of struct g4_kv_view):
// rows of positions >= step->pos0 (this step's tokens) are new_k/new_v[p - pos0] when new_k is
// not NULL (a ring's staging rows); every other row is k/v[ring ? p % capacity : p] (a linear
// slot holds this step's rows in place). Row layout (n_kv_heads, head_dim), every row and
// the staging rows of one element type: fp32, or bf16 (bf16 set: the K/V cache of the BF16
// precision).
struct g4_cuda_kv_view {
    const void *k, *v;         // (capacity, n_kv_heads, head_dim)
    const void *new_k, *new_v; // (n_tokens, n_kv_heads, head_dim)
    int capacity;
    bool ring;
    bool bf16;
    int n_kv_heads, head_dim;
};
// Scratch of the split (flash-decoding) attention, owned by the caller (one per stream).
// tickets must be zero before the first launch (cudaMemset once); every launch leaves them zero.
struct g4_cuda_att_scratch {
    int n_sm;           // multiprocessors of the device (cudaDevAttrMultiProcessorCount)
    float *part;        // split partials
    size_t part_floats;
    unsigned *tickets;  // one counter per (query tile, KV head, merge group)
    size_t n_tickets;
};
// Keys are split into this many ranges when the launcher chooses (n_splits 0): a function of
// the grid and the SM count only, never of the context, so a captured graph stays valid.
// Writes the scratch it needs (partial floats, tickets); 1 means no split.
int g4_cuda_attention_splits(int n_sm, int n_tokens, int n_heads, int n_kv_heads, int head_dim,
                             int n_splits, size_t *part_floats, size_t *n_tickets);
// eager_attention_forward for n_tokens queries at positions step->pos0 + t: scaling 1.0,
// causal, GQA (query head h reads KV head h / (n_heads / n_kv_heads)), and for window > 0 the
// sliding mask (key j visible iff pos - window < j <= pos). q (n_tokens, n_heads, head_dim)
// fp32 with q_stride floats between tokens; out (n_tokens, n_heads, head_dim) fp32 with
// out_stride. fp32 or bf16 K/V (converted to fp32 on load), fp32 arithmetic, on CUDA cores
// (attention.cu) for every token count; keys split across blocks (n_splits 0: as
// g4_cuda_attention_splits chooses; n > 0: exactly n ranges, some possibly empty) and merged by
// the last block to finish. (A tensor-core flash kernel for long BF16 prefills is not written
// yet.) CPU reference: g4_attention_cpu.
g4_status g4_cuda_attention(float *out, int64_t out_stride, const float *q, int64_t q_stride,
                            const struct g4_cuda_kv_view *kv, const struct g4_cuda_step *step,
                            int n_tokens, int n_heads, int window, int n_splits,
                            const struct g4_cuda_att_scratch *scr, cudaStream_t stream);

// ---- kv_cache.cu -----------------------------------------------------------------------------
// One sliding slot's ring and the staging rows a step wrote (see core/kv_cache.h); elements
// are fp32 or bf16 (bf16 set), like the slot's cache.
struct g4_cuda_ring {
    void *k, *v;                   // (capacity, row)
    const void *stage_k, *stage_v; // (n_batch, row)
    int capacity;
    int row;                       // n_kv_heads * head_dim
    int bf16;
    int pad;
};
// g4_kv_cache_commit for every ring at once: staged rows i in [max(0, n - capacity), n) go to
// ring row (step->pos0 + i) % capacity. rings: device array of n_rings.
g4_status g4_cuda_kv_commit(const struct g4_cuda_ring *rings, int n_rings,
                            const struct g4_cuda_step *step, int n_tokens, cudaStream_t stream);

// ---- mlp.cu ----------------------------------------------------------------------------------
// Gated GELU of Gemma4TextMLP / Gemma4TextExperts: out (n_rows, dim) =
// gelu_tanh(gu[:, :dim]) * gu[:, dim:2*dim], gu (n_rows, 2 * dim) (gate half, then up).
// CPU reference: g4_gelu_tanh_cpu.
g4_status g4_cuda_gelu_mul(float *out, const float *gu, int n_rows, int dim,
                           cudaStream_t stream);
// PLE gate: out (n_tokens, dim) = gelu_tanh(g) * ple[t, layer], g (n_tokens, dim),
// ple (n_tokens, n_layers, dim).
g4_status g4_cuda_ple_gate(float *out, const float *g, const float *ple, int n_tokens,
                           int n_layers, int layer, int dim, cudaStream_t stream);

// ---- moe.cu ----------------------------------------------------------------------------------
// Gemma4TextRouter, fp32 throughout, for n_tokens tokens of the residual x (n_tokens, hidden):
// rmsnorm without weight -> * scale * hidden^-0.5 -> proj (n_experts, hidden) fp32 -> softmax ->
// top-k (ties: the lower index) -> renormalise -> * per_expert_scale into weights, experts
// (n_tokens, top_k). Three launches: the norm (once per token; with h2 and w2 also h2 (n_tokens,
// hidden) = rmsnorm(x) * w2, the experts' pre_feedforward_layernorm_2 from the same sum of
// squares), a multi-block GEMV over the router matrix (16-byte loads; hidden split into
// G4_CUDA_MOE_ROUTER_SPLITS at most, a count that depends on hidden only, so a token routes the
// same in any batch) and the top-k (a warp per token). With offsets, order and slot_of (all or
// none) it also groups the n_tokens * top_k assignments a = t * top_k + k by expert, stably:
// offsets (n_experts + 1), order (n_assign) the assignments sorted by expert, slot_of (n_assign)
// the sorted position of each (fused into the top-k kernel when one block holds every token,
// <= 8 tokens; else a fourth launch). scratch: g4_cuda_moe_route_scratch_floats floats.
// n_experts <= 4096. A NaN probability ranks after every number. CPU reference:
// g4_moe_route_cpu (the same choices unless two probabilities are within the fp32 rounding of
// the two summation orders).
#define G4_CUDA_MOE_ROUTER_SPLITS 8
size_t g4_cuda_moe_route_scratch_floats(int n_tokens, int hidden, int n_experts);
g4_status g4_cuda_moe_route(float *weights, int32_t *experts, int32_t *offsets, int32_t *order,
                            int32_t *slot_of, float *h2, const float *w2, const float *x,
                            const float *scale, const float *proj, const float *per_expert_scale,
                            int n_tokens, int hidden, int n_experts, int top_k, float eps,
                            float *scratch, size_t scratch_floats, cudaStream_t stream);

// Gemma4TextExperts for the grouped assignments of g4_cuda_moe_route: out (n_tokens, hidden) =
// sum over each token's experts, in expert-id order, of weight * down_e(gelu_tanh(gate_e(h2)) *
// up_e(h2)), each term an fmaf into the running sum from 0 (the CPU engine's order). w_gate_up
// (n_experts, 2 * inter, hidden) (gate rows then up rows), w_down (n_experts, hidden, inter),
// bf16. fp32 accumulation; bf16_act false: fp32 activations (exact products, the FP32 path);
// true: activations rounded to bf16 before the products (the BF16 path). Scratch: act
// (n_tokens * top_k, inter), y (n_tokens * top_k, hidden) (y unused on the decode path).
// g4_cuda_moe_decode_path (n <= 8, n * top_k <= 512, hidden and inter multiples of 8) with
// 16-byte aligned buffers: two GEMV launches that stream each chosen expert's matrices once
// (g4_cuda_moe_gemv_*, built on gemv.cuh); else the grouped GEMM
// (g4_cuda_moe_gate_up, g4_cuda_moe_matmul) and g4_cuda_moe_combine. CPU reference: moe() in
// kernels/cpu/forward_cpu.c.
bool g4_cuda_moe_decode_path(int n_tokens, int top_k, int hidden, int inter);
g4_status g4_cuda_moe_experts(float *out, const float *h2, const float *weights,
                              const int32_t *experts, const int32_t *offsets,
                              const int32_t *order, const int32_t *slot_of,
                              const g4_bf16 *w_gate_up, const g4_bf16 *w_down, int n_tokens,
                              int hidden, int inter, int n_experts, int top_k, bool bf16_act,
                              float *act, float *y, cudaStream_t stream);
// Decode GEMV, gate_up: act[s] (inter,) = gelu_tanh(g) * u with g | u = h2[order[s] / top_k] @
// w_gate_up[e]^T for each sorted slot s of expert e (the expert's weights read once for all its
// tokens). Needs g4_cuda_moe_decode_path and 16-byte aligned h2 and w (else
// G4_ERR_INVALID_ARGUMENT).
g4_status g4_cuda_moe_gemv_gate_up(float *act, const float *h2, const int32_t *experts,
                                   const int32_t *order, const int32_t *offsets, int n_tokens,
                                   int top_k, const g4_bf16 *w, int inter, int hidden, bool bf16_act,
                                   cudaStream_t stream);
// Decode GEMV, down with the combine fused: out[t] (hidden,) = sum over t's slots s in expert-id
// order of fmaf(weights[order[s]], act[s] @ w_down[e]^T, .); every row of out is written.
g4_status g4_cuda_moe_gemv_down(float *out, const float *act, const float *weights,
                                const int32_t *experts, const int32_t *order,
                                const int32_t *offsets, int n_tokens, int top_k, const g4_bf16 *w,
                                int hidden, int inter, bool bf16_act, cudaStream_t stream);
// Grouped expert GEMM (CUDA cores, 64 x 128 tiles): for each expert e and sorted rows s in
// [offsets[e], offsets[e + 1]): out[s] (n_out,) = a[r(s)] (k_dim,) @ w[e]^T, w (n_experts, n_out,
// k_dim) bf16, with r(s) = order[s] / a_div when order != NULL (gather token rows), else s.
// max_rows bounds any expert's row count (n_tokens: a token picks an expert at most once).
g4_status g4_cuda_moe_matmul(float *out, const float *a, const int32_t *order, int a_div,
                             const g4_bf16 *w, const int32_t *offsets, int n_experts,
                             int max_rows, int n_out, int k_dim, bool bf16_act,
                             cudaStream_t stream);
// The same for w (n_experts, 2 * inter, k_dim) with gelu_tanh(gate) * up fused: act[s] (inter,).
g4_status g4_cuda_moe_gate_up(float *act, const float *a, const int32_t *order, int a_div,
                              const g4_bf16 *w, const int32_t *offsets, int n_experts,
                              int max_rows, int inter, int k_dim, bool bf16_act,
                              cudaStream_t stream);
// out (n_tokens, dim) = sum of weights[t, k] * y[slot_of[t * top_k + k]] over the token's
// assignments in expert-id order (experts[t * top_k + k]), as the CPU engine sums; each term an
// fmaf into the running sum from 0. top_k <= 4096.
g4_status g4_cuda_moe_combine(float *out, const float *y, const float *weights,
                              const int32_t *experts, const int32_t *slot_of, int n_tokens,
                              int top_k, int dim, cudaStream_t stream);

// ---- logits.cu -------------------------------------------------------------------------------
// Final logit softcapping in place: x = cap * tanh(x / cap). CPU reference: g4_softcap_cpu.
g4_status g4_cuda_softcap(float *x, size_t n, float cap, cudaStream_t stream);
// Greedy token of each row: token[r] = argmax of logits (n_rows, n_vocab), the lowest id on
// ties, NaN never wins (g4_sampler_sample at temperature 0: id 0 when no logit is a number).
// nonfinite: NULL, or (n_rows,) the lowest id of a NaN/Inf logit of the row, -1 when all are
// finite (the check core/session.c makes on the host). One block of 1024 threads per row.
g4_status g4_cuda_argmax(int32_t *token, int32_t *nonfinite, const float *logits, int n_rows,
                         int n_vocab, cudaStream_t stream);

// ---- sample.cu -------------------------------------------------------------------------------
// One draw from logits (n_vocab,) with g4_sampler_sample's filters in Hugging Face's order:
// temperature (> 0) -> top-k (<= 0: off; ties at the k-th value all stay) -> top-p (>= 1: off;
// a token stays while the mass ranked above it is < top_p) -> min-p (<= 0: off) -> draw with
// the uniform variate u in [0, 1). Survivors are drawn in token-id order, so the same u picks
// from the same distribution as the CPU sampler but not necessarily the same id. Masses are
// summed in 2^-40 fixed point, so the result is deterministic. No repetition penalty.
// temperature <= 0 is argmax. One block; no scratch.
g4_status g4_cuda_sample(int32_t *token, const float *logits, int n_vocab, float temperature,
                         int top_k, float top_p, float min_p, double u, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
