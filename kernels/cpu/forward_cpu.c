// CPU decoder for Gemma 4 and Gemma 3, built only from ops_cpu and kv_cache. Reads top to bottom
// like transformers' Gemma4TextModel.forward + Gemma4TextDecoderLayer.forward (Gemma 3 is the same
// graph without v norm, layer scalar, PLE and MoE, its attention scaled by
// query_pre_attn_scalar^-0.5 and its norms' (1 + w) folded in at bind time), in fp32 (matmul inputs
// rounded to bf16, or quantized to 8 bits for block-quantized weights, when the session asks for
// GEMMA4_PRECISION_BF16). This is the
// reference engine the golden tests compare with transformers and the CUDA engine with.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ggml_cpu.h"
#include "kv_cache.h"
#include "matmul_cpu.h"
#include "mem.h"
#include "ops_cpu.h"
#include "quant_act.h"
#include "quant_dot.h"
#include "session.h"
#include "threadpool.h"
#include "vec_cpu.h"

struct cpu_state {
    struct g4_kv_cache kv;
    struct g4_pool *pool;  // model->n_threads threads, this session's
    float *arena;          // one allocation, carved below
    float *x, *h, *t;      // (B, hidden) residual stream, normed input, sub-block output
    float *q, *att;        // (B, n_heads * max_head_dim)
    float *gate, *up;      // (B, max_intermediate)
    float *ple;            // (B, n_layers, ple_dim) per-layer inputs
    float *g;              // (B, ple_dim)
    float *h2, *moe;       // (B, hidden) expert input and expert sum
    float *xe, *eg, *eo;   // (B, hidden), (B, 2 * moe_intermediate), (B, hidden): one expert's
                           // tokens gathered, their gate|up and down outputs
    float *rnorm, *probs;  // (hidden,), (n_experts,) router scratch
    float *ew;             // (B, top_k) routing weights
    int32_t *ei;           // (B, top_k) routed experts
    int32_t *et;           // (B,) tokens routed to the expert at hand
    float *scores;         // (pool size, max_group * n_ctx) attention scores, per pool part
    size_t n_scores;       // max_group * n_ctx
    float *xs;             // (B, widest matmul input) activations rounded to bf16 or quantized
                           // to 8 bits (precision bf16), or split into bf16 planes for AMX
    size_t xs_bytes;
    // What xs holds quantized (precision bf16 on block-quantized weights): the input, its
    // activation type and shape, so products on one input (q/k/v, gate/up) quantize it once.
    const float *xq_src;
    int xq_type, xq_n;
    int64_t xq_cols;
};

static struct cpu_state *state(struct g4_session *s) { return s->backend_state; }

// Diagnostic probe (tests/real/dump_gemma4.c, not part of the ABI): when set, sees each
// intermediate of the forward pass, named as llama.cpp's graph names it ("attn_norm", "Qcur", ...),
// rows x cols floats for the n tokens of the step from position pos0. NULL in the library's use.
void (*g4_forward_cpu_probe)(const char *name, int layer, int64_t pos0, const float *x, int rows,
                             int64_t cols);
#define PROBE(name, il, x, rows, cols) \
    do { \
        if (g4_forward_cpu_probe) g4_forward_cpu_probe(name, il, pos0, x, rows, cols); \
    } while (0)

// Precision bf16 on block-quantized weights (GGUF checkpoints) is llama.cpp's numerics: its
// products (quant_dot.h) and, since the 8-bit activations of each product turn any other
// difference of rounding into a larger one, its other operations too (ggml_cpu.h).
static bool ggml_numerics(const struct g4_session *s) {
    return s->bf16 && G4_DTYPE_IS_QUANT(s->model->w.layer[0].q_proj.dtype);
}

static void norm(const struct g4_session *s, float *out, const float *x, const float *w, int n_rows,
                 int dim, float eps) {
    if (ggml_numerics(s)) g4_ggml_cpu_rmsnorm(out, x, w, n_rows, dim, eps);
    else g4_rmsnorm_cpu(out, x, w, n_rows, dim, eps);
}

static void rope(const struct g4_session *s, const struct g4_layer *ly, float *x, int n_heads, int64_t pos) {
    if (ggml_numerics(s) && 2 * ly->n_rope_pairs == ly->head_dim && ly->head_dim <= G4_GGML_CPU_MAX_HEAD_DIM)
        g4_ggml_cpu_rope(x, n_heads, ly->head_dim, ly->rope_theta, ly->rope_factor, pos);
    else
        g4_rope_factor_cpu(x, n_heads, ly->head_dim, ly->n_rope_pairs, ly->rope_theta, ly->rope_factor, pos);
}

static g4_status cpu_session_init(struct g4_session *s) {
    const struct g4_config *c = &s->model->cfg;
    struct cpu_state *cs;
    G4_TRY(g4_calloc((void **)&cs, 1, sizeof *cs, "cpu session"));
    s->backend_state = cs;
    G4_TRY(g4_kv_cache_init(&cs->kv, c, s->n_ctx, s->n_batch));
    G4_TRY(g4_pool_init(&cs->pool, s->model->n_threads));
    size_t B = (size_t)s->n_batch, H = c->hidden_size, max_hd = 0, max_i = 0, max_group = 1;
    for (int il = 0; il < c->num_hidden_layers; il++) {
        if ((size_t)c->layer[il].head_dim > max_hd) max_hd = c->layer[il].head_dim;
        const size_t group = (size_t)(c->num_attention_heads / c->layer[il].n_kv_heads);
        if (group > max_group) max_group = group;
        if ((size_t)c->layer[il].intermediate_size > max_i) max_i = c->layer[il].intermediate_size;
    }
    size_t nq = (size_t)c->num_attention_heads * max_hd;
    size_t LP = (size_t)c->num_hidden_layers * c->hidden_size_per_layer_input;
    size_t P = c->hidden_size_per_layer_input, E = c->num_experts, K = c->top_k_experts;
    size_t Im = c->moe_intermediate_size;
    size_t max_in = H > nq ? H : nq; // inputs of the prompt matmuls: hidden, attention, MLP, PLE
    if (max_i > max_in) max_in = max_i;
    if (P > max_in) max_in = P;
    const size_t BE = E ? B : 0; // expert buffers only for MoE models
    // xs: bf16 / 8-bit activations (precision bf16) or the exact three-plane AMX split (fp32)
    size_t n_xs = B * G4_BF16ACT_LD(max_in);
    if (G4_AMX_SCRATCH_BYTES(B, max_in) / sizeof(float) + 1 > n_xs)
        n_xs = G4_AMX_SCRATCH_BYTES(B, max_in) / sizeof(float) + 1;
    size_t sizes[] = {B * H, B * H, B * H, B * nq, B * nq, B * max_i, B * max_i, B * LP, B * P,
                      B * H, B * H, BE * H, BE * 2 * Im, BE * H, H, E, B * K, B * K, BE,
                      max_group * (size_t)s->n_ctx * g4_pool_size(cs->pool), n_xs};
    float **ptrs[] = {&cs->x, &cs->h, &cs->t, &cs->q, &cs->att, &cs->gate, &cs->up, &cs->ple,
                      &cs->g, &cs->h2, &cs->moe, &cs->xe, &cs->eg, &cs->eo, &cs->rnorm, &cs->probs,
                      &cs->ew, (float **)&cs->ei, (float **)&cs->et, &cs->scores, &cs->xs};
    size_t total = 0;
    for (size_t i = 0; i < G4_COUNT(sizes); i++) total += sizes[i];
    cs->n_scores = max_group * (size_t)s->n_ctx;
    cs->xs_bytes = n_xs * sizeof(float);
    G4_TRY(g4_calloc((void **)&cs->arena, total, sizeof(float), "cpu activations"));
    float *p = cs->arena;
    for (size_t i = 0; i < G4_COUNT(sizes); i++) {
        *ptrs[i] = p;
        p += sizes[i];
    }
    return G4_OK;
}

static void cpu_session_free(struct g4_session *s) {
    struct cpu_state *cs = state(s);
    if (!cs) return;
    g4_kv_cache_free(&cs->kv);
    g4_pool_free(cs->pool);
    free(cs->arena);
    free(cs);
    s->backend_state = NULL;
}

static size_t cpu_kv_bytes(const struct g4_session *s) {
    return ((const struct cpu_state *)s->backend_state)->kv.cache_bytes;
}

// out (n, w.rows) = x (n, w.cols) @ w^T over the session's pool. With GEMMA4_PRECISION_BF16
// (llama.cpp's numerics, see abi/gemma4.h) x is first rounded to bf16 for bf16 weights, or
// quantized to 8 bits per block for block-quantized weights; same_input says x has not changed
// since the previous product on it, so its quantized copy may serve again.
// Steps of this many tokens or more take the same 8-bit products on fp32 tiles (about twice as
// fast on prompts) instead of ggml's order: llama.cpp's attention then runs its tiled kernel,
// which ggml_cpu.h does not reproduce, so such steps are not bit-exact anyway.
#define GGML_EXACT_MAX_TOKENS 64

static void mm_in(struct g4_session *s, float *out, const float *x, struct g4_weight w, int n,
                  bool same_input) {
    struct cpu_state *cs = state(s);
    if (ggml_numerics(s) && G4_DTYPE_IS_QUANT(w.dtype) && n < GGML_EXACT_MAX_TOKENS) {
        // llama.cpp's numerics: 8-bit rows and ggml's summation order (quant_dot.h)
        const int type = (int)g4_quant_act_type_for(w.dtype);
        if (!same_input || cs->xq_src != x || cs->xq_type != type || cs->xq_n != n ||
            cs->xq_cols != w.cols) {
            g4_quant_act_rows((uint8_t *)cs->xs, (enum g4_quant_act_type)type, x, w.cols, n, w.cols);
            cs->xq_src = x, cs->xq_type = type, cs->xq_n = n, cs->xq_cols = w.cols;
        }
        g4_quant_dot_ggml_matmul(out, (const uint8_t *)cs->xs, w.data, w.dtype, w.rows, w.cols, n,
                                 g4_matmul_isa(), cs->pool);
        return;
    }
    if (s->bf16 && G4_DTYPE_IS_QUANT(w.dtype)) {
        const int type = (int)g4_quant_act_type_for(w.dtype);
        if (!same_input || cs->xq_src != x || cs->xq_type != type || cs->xq_n != n ||
            cs->xq_cols != w.cols) {
            g4_matmul_quantize(cs->xs, x, w, n, cs->pool);
            cs->xq_src = x, cs->xq_type = type, cs->xq_n = n, cs->xq_cols = w.cols;
        }
        g4_matmul_cpu_q8(out, cs->xs, w, n, cs->pool);
        return;
    }
    cs->xq_src = NULL; // the bf16 rounding below reuses xs
    if (s->bf16)
        g4_matmul_cpu_bf16act(out, x, w, n, cs->pool, cs->xs);
    else
        g4_matmul_cpu_scratch(out, x, w, n, cs->pool, cs->xs, cs->xs_bytes);
}

static void mm(struct g4_session *s, float *out, const float *x, struct g4_weight w, int n) {
    mm_in(s, out, x, w, n, false);
}

// A further product on the x of the previous mm (unchanged since).
static void mm_again(struct g4_session *s, float *out, const float *x, struct g4_weight w, int n) {
    mm_in(s, out, x, w, n, true);
}

// Row `id` of an embedding table, times scale (Gemma4TextScaledWordEmbedding). Quantized tables
// (GGUF) dequantize just this row.
static void embed_row(float *out, struct g4_weight table, int32_t id, float scale) {
    g4_to_f32(out, (const char *)table.data + (size_t)id * g4_dtype_row_bytes(table.dtype, table.cols),
              table.dtype, (size_t)table.cols);
    for (int64_t i = 0; i < table.cols; i++) out[i] *= scale;
}

// Gemma4TextModel.get_per_layer_inputs + project_per_layer_inputs -> cs->ple (n, L, P).
static void per_layer_inputs(struct g4_session *s, const int32_t *tokens, int n) {
    const struct g4_model *m = s->model;
    const struct g4_config *c = &m->cfg;
    struct cpu_state *cs = state(s);
    const int L = c->num_hidden_layers, P = c->hidden_size_per_layer_input;
    const size_t LP = (size_t)L * P;
    // context part: RMSNorm(per_layer_model_projection(embeds) * hidden^-0.5) per (token, layer)
    mm(s, cs->ple, cs->x, m->w.per_layer_model_projection, n);
    const float proj_scale = powf((float)c->hidden_size, -0.5f);
    for (size_t i = 0; i < (size_t)n * LP; i++) cs->ple[i] *= proj_scale;
    norm(s, cs->ple, cs->ple, m->w.per_layer_projection_norm, n * L, P, c->rms_norm_eps);
    // token part: embed_tokens_per_layer(ids) * sqrt(P); sum times 1/sqrt(2)
    const float tok_scale = sqrtf((float)P), mix = 0.70710678118654752f; // 2^-0.5
    const struct g4_weight tab = m->w.embed_tokens_per_layer;
    for (int t = 0; t < n; t++) {
        float *dst = cs->ple + (size_t)t * LP;
        const char *src = (const char *)tab.data + (size_t)tokens[t] * g4_dtype_row_bytes(tab.dtype, (int64_t)LP);
        for (size_t i = 0; i < LP; i += 256) { // 256: a whole number of blocks of every type
            float tmp[256];
            size_t k = LP - i < 256 ? LP - i : 256;
            g4_to_f32(tmp, src + g4_dtype_row_bytes(tab.dtype, (int64_t)i), tab.dtype, k);
            for (size_t j = 0; j < k; j++) dst[i + j] = (dst[i + j] + tmp[j] * tok_scale) * mix;
        }
    }
}

// One layer's attention split across the pool in units of (token, heads of one KV head); each
// part has its own scores scratch.
struct attn_job {
    struct cpu_state *cs;
    struct g4_kv_view view;
    int64_t pos0;
    int n, nh, window, heads_per_unit;
    size_t qrow;
    float scale;          // cfg attn_scale
    bool ggml;            // llama.cpp's attention numerics (ggml_cpu.h)
};

// llama.cpp's attention: ggml's CPU flash attention on an fp16 K/V cache (ggml_cpu.h). Without it
// the 8-bit activations of the next product turn the fp32 softmax's differences (4.5e-4 RMS at
// the first layer of Gemma 3 270M) into 4e-3 and greedy continuations part from llama.cpp's
// (tests/real/README.md).
static bool ggml_attention(const struct g4_session *s, const struct g4_layer *ly) {
    return ggml_numerics(s) && ly->head_dim % 64 == 0 && ly->head_dim <= G4_GGML_CPU_MAX_HEAD_DIM;
}

static void attention_part(void *arg, int part, int n_parts) {
    const struct attn_job *j = arg;
    const int per_token = j->nh / j->heads_per_unit;
    const int64_t units = (int64_t)j->n * per_token;
    float *scores = j->cs->scores + (size_t)part * j->cs->n_scores;
    for (int64_t u = units * part / n_parts; u < units * (part + 1) / n_parts; u++) {
        const int t = (int)(u / per_token), h = (int)(u % per_token) * j->heads_per_unit;
        if (j->ggml && j->n < GGML_EXACT_MAX_TOKENS) // ggml's one-row kernel; 64+ tokens: tiles
            g4_ggml_cpu_attention(j->cs->att + t * j->qrow, j->cs->q + t * j->qrow, &j->view, j->pos0 + t, j->nh,
                         h, h + j->heads_per_unit, j->window, j->scale);
        else
            g4_attention_scaled_cpu(j->cs->att + t * j->qrow, j->cs->q + t * j->qrow, &j->view,
                                j->pos0 + t, j->nh, h, h + j->heads_per_unit, j->window, j->scale,
                                scores);
    }
}

// Gemma4TextAttention.forward for n tokens at positions [pos0, pos0 + n); reads cs->h, writes cs->t.
static void attention(struct g4_session *s, int il, int64_t pos0, int n) {
    const struct g4_model *m = s->model;
    const struct g4_config *c = &m->cfg;
    const struct g4_layer *ly = &c->layer[il];
    const struct g4_layer_weights *lw = &m->w.layer[il];
    struct cpu_state *cs = state(s);
    const int nh = c->num_attention_heads, hd = ly->head_dim, nkv = ly->n_kv_heads;
    const size_t qrow = (size_t)nh * hd, kvrow = (size_t)nkv * hd;

    // q = RoPE(q_norm(q_proj(h)))   (transformers: q_norm before RoPE)
    mm(s, cs->q, cs->h, lw->q_proj, n);
    PROBE("Qcur|MUL_MAT", il, cs->q, n, (int64_t)qrow);
    norm(s, cs->q, cs->q, lw->q_norm, n * nh, hd, c->rms_norm_eps);
    PROBE("Qcur_normed|MUL", il, cs->q, n, (int64_t)qrow);
    for (int t = 0; t < n; t++)
        rope(s, ly, cs->q + t * qrow, nh, pos0 + t);
    PROBE("Qcur|ROPE", il, cs->q, n, (int64_t)qrow);

    if (ly->writes_kv) {
        float *k = g4_kv_cache_new_k(&cs->kv, ly->kv_slot, pos0);
        float *v = g4_kv_cache_new_v(&cs->kv, ly->kv_slot, pos0);
        mm_again(s, k, cs->h, lw->k_proj, n);
        // k_eq_v: V is the k_proj output before k_norm and RoPE
        if (ly->k_eq_v)
            memcpy(v, k, (size_t)n * kvrow * sizeof(float));
        else
            mm_again(s, v, cs->h, lw->v_proj, n);
        PROBE("Kcur|MUL_MAT", il, k, n, (int64_t)kvrow);
        PROBE("Vcur|MUL_MAT", il, v, n, (int64_t)kvrow);
        norm(s, k, k, lw->k_norm, n * nkv, hd, c->rms_norm_eps);
        PROBE("Kcur_normed|MUL", il, k, n, (int64_t)kvrow);
        for (int t = 0; t < n; t++)
            rope(s, ly, k + t * kvrow, nkv, pos0 + t);
        PROBE("Kcur|ROPE", il, k, n, (int64_t)kvrow);
        if (c->v_norm) norm(s, v, v, NULL, n * nkv, hd, c->rms_norm_eps); // no weight
        if (ggml_attention(s, ly)) { // ggml's f16 K/V cache
            g4_ggml_cpu_round_f16(k, (int64_t)n * (int64_t)kvrow);
            g4_ggml_cpu_round_f16(v, (int64_t)n * (int64_t)kvrow);
        }
    }
    // KV-shared layers read their donor's slot, written earlier in this same step.
    // Heads per unit: a whole GQA group (each K/V row read once for all its heads) unless that
    // leaves parts of the pool idle (decode), then halves of it, and so on.
    const int group = nh / nkv, n_parts = g4_pool_size(cs->pool);
    int per_unit = group;
    while (per_unit > 1 && (int64_t)n * (nh / per_unit) < n_parts) {
        int smaller = per_unit - 1;
        while (group % smaller) smaller--;
        per_unit = smaller;
    }
    struct attn_job job = {cs, g4_kv_cache_view(&cs->kv, ly->kv_slot, pos0), pos0, n, nh, ly->window,
                           per_unit, qrow, c->attn_scale, ggml_attention(s, ly)};
    g4_pool_run(n * nh >= 2 ? cs->pool : NULL, attention_part, &job);
    PROBE("kqv_out|RESHAPE", il, cs->att, n, (int64_t)qrow);
    mm(s, cs->t, cs->att, lw->o_proj, n);
}

// Gemma4TextMLP: down(gelu_tanh(gate(x)) * up(x)); reads in (n, hidden), writes out.
static void mlp(struct g4_session *s, const struct g4_layer_weights *lw, int I, const float *in,
                float *out, int n, int il, int64_t pos0) {
    struct cpu_state *cs = state(s);
    mm(s, cs->gate, in, lw->gate_proj, n);
    mm_again(s, cs->up, in, lw->up_proj, n);
    PROBE("ffn_gate|MUL_MAT", il, cs->gate, n, I);
    PROBE("ffn_up|MUL_MAT", il, cs->up, n, I);
    if (ggml_numerics(s)) // ggml's GEGLU: an fp16 table of GELU
        g4_ggml_cpu_geglu(cs->gate, cs->up, (size_t)n * I);
    else
        g4_vec_gelu_mul(cs->gate, cs->up, (size_t)n * I);
    PROBE("ffn_geglu|GLU", il, cs->gate, n, I);
    mm(s, out, cs->gate, lw->down_proj, n);
    PROBE("ffn_out|MUL_MAT", il, out, n, s->model->cfg.hidden_size);
}

// Gemma4TextRouter + Gemma4TextExperts for n tokens: router reads `resid`, experts read
// pre_feedforward_layernorm_2(resid); result into cs->moe (n, hidden). Tokens are routed first,
// then each expert runs once on all the tokens routed to it (gathered into cs->xe), so a prompt
// reads each chosen expert's weights once, not once per token; each token's sum over its experts
// is taken in expert order whatever the batch. Experts stay fp32 in every precision (they are
// not nn.Linear in transformers, see tests/golden/README.md).
static void moe(struct g4_session *s, const struct g4_layer_weights *lw, const float *resid, int n) {
    const struct g4_config *c = &s->model->cfg;
    struct cpu_state *cs = state(s);
    const int H = c->hidden_size, Im = c->moe_intermediate_size, K = c->top_k_experts;
    norm(s, cs->h2, resid, lw->pre_feedforward_layernorm_2, n, H, c->rms_norm_eps);
    for (int t = 0; t < n; t++)
        g4_moe_route_cpu(cs->ew + (size_t)t * K, cs->ei + (size_t)t * K, resid + (size_t)t * H,
                         lw->router_scale, lw->router_proj, lw->router_per_expert_scale, H,
                         c->num_experts, K, c->rms_norm_eps, cs->rnorm, cs->probs);
    memset(cs->moe, 0, (size_t)n * H * sizeof(float));
    for (int e = 0; e < c->num_experts; e++) {
        int m = 0;
        for (int t = 0; t < n; t++)
            for (int k = 0; k < K; k++)
                if (cs->ei[(size_t)t * K + k] == e) {
                    cs->et[m] = t;
                    memcpy(cs->xe + (size_t)m++ * H, cs->h2 + (size_t)t * H, (size_t)H * sizeof(float));
                }
        if (!m) continue;
        g4_matmul_cpu(cs->eg, cs->xe, g4_weight_rows(lw->experts_gate_up, (int64_t)e * 2 * Im, 2 * Im),
                      m, cs->pool);
        for (int i = 0; i < m; i++) { // gelu(gate) * up, packed to (m, Im) for the down product
            float *row = cs->eg + (size_t)i * 2 * Im;
            g4_vec_gelu_mul(row, row + Im, (size_t)Im);
            memmove(cs->eg + (size_t)i * Im, row, (size_t)Im * sizeof(float));
        }
        g4_matmul_cpu(cs->eo, cs->eg, g4_weight_rows(lw->experts_down, (int64_t)e * H, H), m, cs->pool);
        for (int i = 0; i < m; i++) {
            const int t = cs->et[i];
            float wk = 0.0f;
            for (int k = 0; k < K; k++)
                if (cs->ei[(size_t)t * K + k] == e) wk = cs->ew[(size_t)t * K + k];
            g4_vec_axpy(cs->moe + (size_t)t * H, wk, cs->eo + (size_t)i * H, (size_t)H);
        }
    }
}

static g4_status cpu_forward(struct g4_session *s, const int32_t *tokens, int n, float *logits,
                             bool all_logits) {
    const struct g4_model *m = s->model;
    const struct g4_config *c = &m->cfg;
    const struct g4_weights *w = &m->w;
    struct cpu_state *cs = state(s);
    const int H = c->hidden_size, P = c->hidden_size_per_layer_input;
    const int64_t pos0 = s->n_past;
    const float eps = c->rms_norm_eps;

    // inputs_embeds = embed_tokens(ids) * sqrt(hidden)  (fp32 scale: the fp32 reference path)
    const float embed_scale = sqrtf((float)H);
    for (int t = 0; t < n; t++) embed_row(cs->x + (size_t)t * H, w->embed_tokens, tokens[t], embed_scale);
    PROBE("inp_scaled|SCALE", -1, cs->x, n, H);
    if (P) per_layer_inputs(s, tokens, n);
    // the last layer past attention for the last row only (ggml numerics, Gemma 3's plain layers)
    const bool trim = ggml_numerics(s) && logits && !all_logits && !P && !c->enable_moe_block;
    bool trimmed = false;

    for (int il = 0; il < c->num_hidden_layers; il++) {
        const struct g4_layer *ly = &c->layer[il];
        const struct g4_layer_weights *lw = &w->layer[il];

        // h = x + post_attention_layernorm(attn(input_layernorm(x)))
        norm(s, cs->h, cs->x, lw->input_layernorm, n, H, eps);
        PROBE("attn_norm|MUL", il, cs->h, n, H);
        attention(s, il, pos0, n);
        PROBE("attn_out|MUL_MAT", il, cs->t, n, H);
        // llama.cpp takes the last layer past its attention for the output rows only (the other
        // rows' K/V are written); with its numerics that changes the products (a one-token batch,
        // not ggml's tiled or 4-token kernels), so do the same for a last-token step
        int nr = n;
        if (trim && il == c->num_hidden_layers - 1 && n > 1) {
            memmove(cs->x, cs->x + (size_t)(n - 1) * H, (size_t)H * sizeof(float));
            memmove(cs->t, cs->t + (size_t)(n - 1) * H, (size_t)H * sizeof(float));
            nr = 1, trimmed = true;
        }
        const size_t nrH = (size_t)nr * H;
        norm(s, cs->t, cs->t, lw->post_attention_layernorm, nr, H, eps);
        PROBE("attn_post_norm|MUL", il, cs->t, nr, H);
        for (size_t i = 0; i < nrH; i++) cs->x[i] += cs->t[i];
        PROBE("sa_out|ADD", il, cs->x, nr, H);

        // h = h + post_feedforward_layernorm(mlp(pre_feedforward_layernorm(h)) [+ MoE])
        norm(s, cs->h, cs->x, lw->pre_feedforward_layernorm, nr, H, eps);
        PROBE("ffn_norm|MUL", il, cs->h, nr, H);
        mlp(s, lw, ly->intermediate_size, cs->h, cs->t, nr, il, pos0);
        if (c->enable_moe_block) {
            norm(s, cs->t, cs->t, lw->post_feedforward_layernorm_1, nr, H, eps);
            moe(s, lw, cs->x, n);
            norm(s, cs->moe, cs->moe, lw->post_feedforward_layernorm_2, nr, H, eps);
            for (size_t i = 0; i < nrH; i++) cs->t[i] += cs->moe[i];
        }
        norm(s, cs->t, cs->t, lw->post_feedforward_layernorm, nr, H, eps);
        PROBE("ffn_post_norm|MUL", il, cs->t, nr, H);
        for (size_t i = 0; i < nrH; i++) cs->x[i] += cs->t[i];

        // PLE: h = h + post_per_layer_input_norm(proj(gelu(gate(h)) * per_layer_input[il]))
        if (P) {
            mm(s, cs->g, cs->x, lw->per_layer_input_gate, n);
            g4_gelu_tanh_cpu(cs->g, (size_t)n * P);
            for (int t = 0; t < n; t++) {
                const float *pl = cs->ple + ((size_t)t * c->num_hidden_layers + il) * P;
                for (int i = 0; i < P; i++) cs->g[(size_t)t * P + i] *= pl[i];
            }
            mm(s, cs->t, cs->g, lw->per_layer_projection, n);
            norm(s, cs->t, cs->t, lw->post_per_layer_input_norm, nr, H, eps);
            for (size_t i = 0; i < nrH; i++) cs->x[i] += cs->t[i];
        }
        for (size_t i = 0; i < nrH; i++) cs->x[i] *= lw->layer_scalar;
        PROBE("l_out|ADD", il, cs->x, nr, H);
    }
    g4_kv_cache_commit(&cs->kv, pos0, n);

    if (logits) {
        // final norm -> tied LM head -> softcap, for every token or only the last
        const int first = all_logits ? 0 : n - 1, n_out = n - first;
        norm(s, cs->h, cs->x + (trimmed ? 0 : (size_t)first * H), w->norm, n_out, H, eps);
        PROBE("result_norm|MUL", -1, cs->h, n_out, H);
        mm(s, logits, cs->h, w->lm_head, n_out);
        if (c->final_logit_softcapping > 0.0f)
            g4_vec_softcap(logits, (size_t)n_out * c->vocab_size, c->final_logit_softcapping);
    }
    return G4_OK;
}

const struct g4_backend g4_backend_cpu = {
    .name = "cpu",
    .model_init = NULL,
    .model_free = NULL,
    .session_init = cpu_session_init,
    .session_free = cpu_session_free,
    .forward = cpu_forward,
    .kv_bytes = cpu_kv_bytes,
};
