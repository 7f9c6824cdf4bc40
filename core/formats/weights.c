// Tensor-name binding and shape checks; see weights.h. Names follow transformers'
// Gemma4ForCausalLM / Gemma3ForCausalLM ("model."), Gemma4ForConditionalGeneration
// ("model.language_model.") and Gemma3ForConditionalGeneration as transformers saves it
// ("language_model.model.", the original checkpoints' layout).
#include "weights.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

struct binder {
    const struct g4_safetensors *st;
    const char *prefix; // "model.", "model.language_model." or "language_model.model."
    const char *what;
    bool norm_plus_one; // Gemma 3: RMSNorm weights are stored as w for a scale of (1 + w)
    bool *used;         // (st->n_tensors,)
    float *pool_next;
    struct g4_weights *w;
};

// Vectors (norm weights, scales) must be F32, F16 or BF16; matrices may also be ggml block types
// (kept quantized, see dtype.h), with rows a whole number of blocks.
static g4_status check_dtype(struct binder *b, const struct g4_tensor *t) {
    if (G4_DTYPE_IS_FLOAT(t->dtype)) return G4_OK;
    return g4_fail(G4_ERR_UNSUPPORTED, "%s: tensor %s has dtype %s; the text model needs F32, F16 or BF16",
                   b->what, t->name, g4_dtype_name(t->dtype));
}

static g4_status check_matrix_dtype(struct binder *b, const struct g4_tensor *t, int64_t cols) {
    if (G4_DTYPE_IS_FLOAT(t->dtype)) return G4_OK;
    if (!G4_DTYPE_IS_QUANT(t->dtype))
        return g4_fail(G4_ERR_UNSUPPORTED,
                       "%s: tensor %s has dtype %s; matrices need F32, F16, BF16 or a ggml block type "
                       "(Q4_0, Q5_0, Q8_0, Q4_K, Q5_K, Q6_K)", b->what, t->name, g4_dtype_name(t->dtype));
    if (cols % g4_dtype_block(t->dtype))
        return g4_fail(G4_ERR_FORMAT, "%s: tensor %s is %s with rows of %lld elements, not a multiple "
                       "of its %d-element blocks", b->what, t->name, g4_dtype_name(t->dtype),
                       (long long)cols, g4_dtype_block(t->dtype));
    return G4_OK;
}

static g4_status find(struct binder *b, const char *name, const struct g4_tensor **out) {
    char full[512];
    snprintf(full, sizeof full, "%s%s", b->prefix, name);
    const struct g4_tensor *t = g4_safetensors_find(b->st, full);
    if (!t) return g4_fail(G4_ERR_FORMAT, "%s: missing tensor %s", b->what, full);
    b->used[t - b->st->tensors] = true;
    *out = t;
    return G4_OK;
}

static g4_status check_shape(struct binder *b, const struct g4_tensor *t, int n_dims,
                             const int64_t *dims) {
    bool ok = t->n_dims == n_dims;
    for (int i = 0; ok && i < n_dims; i++) ok = t->shape[i] == dims[i];
    if (ok) return G4_OK;
    char got[128] = "", want[128] = "";
    for (int i = 0; i < t->n_dims; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? "," : "",
                 (long long)t->shape[i]);
    for (int i = 0; i < n_dims; i++)
        snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", i ? "," : "",
                 (long long)dims[i]);
    return g4_fail(G4_ERR_FORMAT, "%s: tensor %s has shape [%s], config needs [%s]", b->what,
                   t->name, got, want);
}

// Matrix (rows, cols), or a 3-D (a, b, cols) tensor viewed as (a * b, cols) when d0 > 0.
static g4_status mat(struct binder *b, struct g4_weight *out, const char *name, int64_t d0,
                     int64_t rows, int64_t cols) {
    const struct g4_tensor *t = NULL;
    G4_TRY(find(b, name, &t));
    int64_t dims3[3] = {d0, rows, cols}, dims2[2] = {rows, cols};
    G4_TRY(d0 > 0 ? check_shape(b, t, 3, dims3) : check_shape(b, t, 2, dims2));
    G4_TRY(check_matrix_dtype(b, t, cols));
    *out = (struct g4_weight){t->data, t->dtype, d0 > 0 ? d0 * rows : rows, cols};
    b->w->n_bytes += t->n_bytes;
    return G4_OK;
}

static g4_status vec(struct binder *b, const float **out, const char *name, int64_t n) {
    const struct g4_tensor *t = NULL;
    G4_TRY(find(b, name, &t));
    G4_TRY(check_shape(b, t, 1, &n));
    G4_TRY(check_dtype(b, t));
    float *dst = b->pool_next;
    b->pool_next += n;
    g4_to_f32(dst, t->data, t->dtype, (size_t)n);
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(dst[i]))
            return g4_fail(G4_ERR_FORMAT, "%s: tensor %s has a non-finite value at [%lld]", b->what,
                           t->name, (long long)i);
    b->w->n_bytes += t->n_bytes;
    *out = dst;
    return G4_OK;
}

// An RMSNorm weight: the effective fp32 scale, (1 + w) for Gemma 3 (Gemma3RMSNorm computes
// `1.0 + weight.float()` in fp32, so adding here once is exact), w as stored for Gemma 4.
static g4_status norm(struct binder *b, const float **out, const char *name, int64_t n) {
    G4_TRY(vec(b, out, name, n));
    if (b->norm_plus_one)
        for (int64_t i = 0; i < n; i++) ((float *)*out)[i] += 1.0f;
    return G4_OK;
}

static size_t pool_floats(const struct g4_config *c) {
    size_t H = c->hidden_size, n = H + c->hidden_size_per_layer_input;
    for (int il = 0; il < c->num_hidden_layers; il++) {
        n += 4 * H + 2 * (size_t)c->layer[il].head_dim + 1;
        if (c->hidden_size_per_layer_input) n += H;
        if (c->enable_moe_block) n += 4 * H + c->num_experts;
    }
    return n;
}

static g4_status bind_layer(struct binder *b, const struct g4_config *c, int il) {
    const struct g4_layer *ly = &c->layer[il];
    struct g4_layer_weights *lw = &b->w->layer[il];
    const int64_t H = c->hidden_size, hd = ly->head_dim, nq = (int64_t)c->num_attention_heads * hd,
                  nkv = (int64_t)ly->n_kv_heads * hd, I = ly->intermediate_size;
    char n[256];
#define NAME(s) (snprintf(n, sizeof n, "layers.%d.%s", il, s), n)
    G4_TRY(norm(b, &lw->input_layernorm, NAME("input_layernorm.weight"), H));
    G4_TRY(norm(b, &lw->post_attention_layernorm, NAME("post_attention_layernorm.weight"), H));
    G4_TRY(norm(b, &lw->pre_feedforward_layernorm, NAME("pre_feedforward_layernorm.weight"), H));
    G4_TRY(norm(b, &lw->post_feedforward_layernorm, NAME("post_feedforward_layernorm.weight"), H));
    lw->layer_scalar = 1.0f; // Gemma 3 has none
    if (c->arch == G4_ARCH_GEMMA4) {
        const float *scalar = NULL;
        G4_TRY(vec(b, &scalar, NAME("layer_scalar"), 1));
        lw->layer_scalar = scalar[0];
    }
    G4_TRY(mat(b, &lw->q_proj, NAME("self_attn.q_proj.weight"), 0, nq, H));
    G4_TRY(mat(b, &lw->o_proj, NAME("self_attn.o_proj.weight"), 0, H, nq));
    G4_TRY(norm(b, &lw->q_norm, NAME("self_attn.q_norm.weight"), hd));
    if (ly->writes_kv) {
        G4_TRY(mat(b, &lw->k_proj, NAME("self_attn.k_proj.weight"), 0, nkv, H));
        if (!ly->k_eq_v) G4_TRY(mat(b, &lw->v_proj, NAME("self_attn.v_proj.weight"), 0, nkv, H));
        G4_TRY(norm(b, &lw->k_norm, NAME("self_attn.k_norm.weight"), hd));
    }
    G4_TRY(mat(b, &lw->gate_proj, NAME("mlp.gate_proj.weight"), 0, I, H));
    G4_TRY(mat(b, &lw->up_proj, NAME("mlp.up_proj.weight"), 0, I, H));
    G4_TRY(mat(b, &lw->down_proj, NAME("mlp.down_proj.weight"), 0, H, I));
    if (c->hidden_size_per_layer_input) {
        const int64_t P = c->hidden_size_per_layer_input;
        G4_TRY(mat(b, &lw->per_layer_input_gate, NAME("per_layer_input_gate.weight"), 0, P, H));
        G4_TRY(mat(b, &lw->per_layer_projection, NAME("per_layer_projection.weight"), 0, H, P));
        G4_TRY(vec(b, &lw->post_per_layer_input_norm, NAME("post_per_layer_input_norm.weight"), H));
    }
    if (c->enable_moe_block) {
        const int64_t E = c->num_experts, Im = c->moe_intermediate_size;
        G4_TRY(mat(b, &lw->router_proj, NAME("router.proj.weight"), 0, E, H));
        G4_TRY(vec(b, &lw->router_scale, NAME("router.scale"), H));
        G4_TRY(vec(b, &lw->router_per_expert_scale, NAME("router.per_expert_scale"), E));
        G4_TRY(mat(b, &lw->experts_gate_up, NAME("experts.gate_up_proj"), E, 2 * Im, H));
        G4_TRY(mat(b, &lw->experts_down, NAME("experts.down_proj"), E, H, Im));
        G4_TRY(vec(b, &lw->post_feedforward_layernorm_1, NAME("post_feedforward_layernorm_1.weight"), H));
        G4_TRY(vec(b, &lw->post_feedforward_layernorm_2, NAME("post_feedforward_layernorm_2.weight"), H));
        G4_TRY(vec(b, &lw->pre_feedforward_layernorm_2, NAME("pre_feedforward_layernorm_2.weight"), H));
    }
#undef NAME
    return G4_OK;
}

// Tensors a checkpoint may carry that we deliberately do not use: the k/v projections and norms
// of KV-shared layers (transformers lists them in _keys_to_ignore_on_load_unexpected).
static bool ignorable(const struct g4_config *c, const char *rest) {
    int il, end = 0;
    char what[64];
    if (sscanf(rest, "layers.%d.self_attn.%63[a-z_]%n", &il, what, &end) != 2) return false;
    if (il < 0 || il >= c->num_hidden_layers || c->layer[il].writes_kv) return false;
    return (strcmp(what, "k_proj") == 0 || strcmp(what, "v_proj") == 0 ||
            strcmp(what, "k_norm") == 0 || strcmp(what, "v_norm") == 0);
}

g4_status g4_weights_bind(struct g4_weights *w, const struct g4_config *c,
                          const struct g4_safetensors *st, const char *what) {
    memset(w, 0, sizeof *w);
    struct binder b = {st, "model.", what, c->arch == G4_ARCH_GEMMA3 && !st->norms_as_scales,
                       NULL, NULL, w};
    const char *lm_head_name = "lm_head.weight";
    if (g4_safetensors_find(st, "model.language_model.embed_tokens.weight")) {
        b.prefix = "model.language_model.";
    } else if (g4_safetensors_find(st, "language_model.model.embed_tokens.weight")) {
        b.prefix = "language_model.model.";
        lm_head_name = "language_model.lm_head.weight";
    }
    g4_status s = g4_calloc((void **)&b.used, st->n_tensors ? st->n_tensors : 1, sizeof(bool),
                            "tensor table");
    if (s == G4_OK) s = g4_calloc((void **)&w->vec_pool, pool_floats(c), sizeof(float), "weights");
    if (s != G4_OK) goto fail;
    b.pool_next = w->vec_pool;

    const int64_t H = c->hidden_size, L = c->num_hidden_layers, P = c->hidden_size_per_layer_input;
    if ((s = mat(&b, &w->embed_tokens, "embed_tokens.weight", 0, c->vocab_size, H))) goto fail;
    if ((s = norm(&b, &w->norm, "norm.weight", H))) goto fail;
    w->lm_head = w->embed_tokens;
    if (!c->tie_word_embeddings) {
        const struct g4_tensor *t = g4_safetensors_find(st, lm_head_name);
        if (!t) {
            s = g4_fail(G4_ERR_FORMAT, "%s: missing tensor %s (untied embeddings)", what, lm_head_name);
            goto fail;
        }
        int64_t dims[2] = {c->vocab_size, H};
        if ((s = check_shape(&b, t, 2, dims)) || (s = check_matrix_dtype(&b, t, H))) goto fail;
        w->lm_head = (struct g4_weight){t->data, t->dtype, c->vocab_size, H};
        w->n_bytes += t->n_bytes;
        b.used[t - st->tensors] = true;
    }
    if (P) {
        if ((s = mat(&b, &w->embed_tokens_per_layer, "embed_tokens_per_layer.weight", 0,
                     c->vocab_size_per_layer_input, L * P)) ||
            (s = mat(&b, &w->per_layer_model_projection, "per_layer_model_projection.weight", 0,
                     L * P, H)) ||
            (s = vec(&b, &w->per_layer_projection_norm, "per_layer_projection_norm.weight", P)))
            goto fail;
    }
    for (int il = 0; il < L; il++)
        if ((s = bind_layer(&b, c, il))) goto fail;

    // Anything else in the language model's namespace means the config does not describe this
    // checkpoint: refuse rather than silently ignore weights.
    size_t plen = strlen(b.prefix);
    for (int i = 0; i < st->n_tensors; i++) {
        const char *name = st->tensors[i].name;
        if (b.used[i]) continue;
        if (strcmp(name, lm_head_name) == 0) continue; // tied copy
        bool ours = strncmp(name, b.prefix, plen) == 0;
        if (ours && ignorable(c, name + plen)) continue;
        // In a multimodal checkpoint the vision/audio towers live outside the language model.
        if (!ours && c->is_multimodal) continue;
        s = g4_fail(G4_ERR_FORMAT, "%s: unexpected tensor %s (not used by this config)", what, name);
        goto fail;
    }
    free(b.used);
    return G4_OK;
fail:
    free(b.used);
    g4_weights_free(w);
    return s;
}

void g4_weights_free(struct g4_weights *w) {
    if (!w) return;
    free(w->vec_pool);
    memset(w, 0, sizeof *w);
}

struct g4_weight g4_weight_rows(struct g4_weight w, int64_t row0, int64_t n) {
    struct g4_weight r = w;
    r.data = (const char *)w.data + (size_t)row0 * g4_dtype_row_bytes(w.dtype, w.cols);
    r.rows = n;
    return r;
}
