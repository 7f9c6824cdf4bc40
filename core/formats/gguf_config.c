// GGUF metadata -> struct g4_config; see gguf_config.h. Every value is type- and range-checked
// here, then g4_config_finish validates the whole config as for config.json.
#include "gguf_config.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

struct reader {
    const struct g4_gguf *g;
    const char *arch; // "gemma4" / "gemma3": the key prefix
    const char *what;
    char key[160];
};

static const struct g4_gguf_kv *find(struct reader *r, const char *suffix) {
    snprintf(r->key, sizeof r->key, "%s.%s", r->arch, suffix);
    return g4_gguf_find_kv(r->g, r->key);
}

static g4_status missing(struct reader *r) {
    return g4_fail(G4_ERR_FORMAT, "%s: missing metadata key %s", r->what, r->key);
}

static g4_status int_range(struct reader *r, int64_t v, int64_t lo, int64_t hi, int *out) {
    if (v < lo || v > hi)
        return g4_fail(G4_ERR_CONFIG, "%s: %s = %lld out of range [%lld, %lld]", r->what, r->key,
                       (long long)v, (long long)lo, (long long)hi);
    *out = (int)v;
    return G4_OK;
}

// A scalar integer <arch>.<suffix> in [lo, hi]; dflt when absent and !required.
static g4_status get_int(struct reader *r, const char *suffix, bool required, int dflt, int64_t lo,
                         int64_t hi, int *out) {
    const struct g4_gguf_kv *kv = find(r, suffix);
    if (!kv) {
        if (required) return missing(r);
        *out = dflt;
        return G4_OK;
    }
    int64_t v;
    if (kv->type == G4_GGUF_ARRAY || !g4_gguf_kv_int(kv, 0, &v))
        return g4_fail(G4_ERR_FORMAT, "%s: %s is %s, must be an integer", r->what, r->key,
                       g4_gguf_type_name(kv->type));
    return int_range(r, v, lo, hi, out);
}

// An integer that is a scalar or one value per layer (llama.cpp's get_key_or_arr): out[0..n).
static g4_status get_int_per_layer(struct reader *r, const char *suffix, bool required, int dflt,
                                   int64_t lo, int64_t hi, int n, int *out) {
    const struct g4_gguf_kv *kv = find(r, suffix);
    if (!kv) {
        if (required) return missing(r);
        for (int i = 0; i < n; i++) out[i] = dflt;
        return G4_OK;
    }
    if (kv->type == G4_GGUF_ARRAY && kv->n != (uint64_t)n)
        return g4_fail(G4_ERR_FORMAT, "%s: %s has %llu values; block_count is %d", r->what, r->key,
                       (unsigned long long)kv->n, n);
    for (int i = 0; i < n; i++) {
        int64_t v;
        if (!g4_gguf_kv_int(kv, kv->type == G4_GGUF_ARRAY ? (uint64_t)i : 0, &v))
            return g4_fail(G4_ERR_FORMAT, "%s: %s is %s of %s, must hold integers", r->what, r->key,
                           g4_gguf_type_name(kv->type), g4_gguf_type_name(kv->elem_type));
        G4_TRY(int_range(r, v, lo, hi, &out[i]));
    }
    return G4_OK;
}

static g4_status get_float(struct reader *r, const char *suffix, bool required, float dflt,
                           float *out) {
    const struct g4_gguf_kv *kv = find(r, suffix);
    if (!kv) {
        if (required) return missing(r);
        *out = dflt;
        return G4_OK;
    }
    double d;
    if (kv->type == G4_GGUF_ARRAY || !g4_gguf_kv_float(kv, 0, &d))
        return g4_fail(G4_ERR_FORMAT, "%s: %s is %s, must be a float", r->what, r->key,
                       g4_gguf_type_name(kv->type));
    if (!isfinite(d))
        return g4_fail(G4_ERR_CONFIG, "%s: %s = %g is not finite", r->what, r->key, d);
    *out = (float)d;
    return G4_OK;
}

// Sliding or full per layer: a bool array (true = sliding), or a period n (llama.cpp's
// set_swa_pattern: layer il slides iff il % n < n - 1; n == 0: every layer slides).
static g4_status get_layer_types(struct reader *r, bool required, int dflt_period,
                                 struct g4_config *c) {
    const int L = c->num_hidden_layers;
    const struct g4_gguf_kv *kv = find(r, "attention.sliding_window_pattern");
    if (!kv && required) return missing(r);
    if (kv && kv->type == G4_GGUF_ARRAY) {
        if (kv->n != (uint64_t)L)
            return g4_fail(G4_ERR_FORMAT, "%s: %s has %llu values; block_count is %d", r->what,
                           r->key, (unsigned long long)kv->n, L);
        for (int il = 0; il < L; il++)
            if (!g4_gguf_kv_bool(kv, (uint64_t)il, &c->layer[il].is_sliding))
                return g4_fail(G4_ERR_FORMAT, "%s: %s is an ARRAY of %s, must hold bools", r->what,
                               r->key, g4_gguf_type_name(kv->elem_type));
        return G4_OK;
    }
    int period = dflt_period;
    if (kv) G4_TRY(get_int(r, "attention.sliding_window_pattern", true, 0, 0, 1 << 16, &period));
    for (int il = 0; il < L; il++)
        c->layer[il].is_sliding = period == 0 || il % period < period - 1;
    return G4_OK;
}

static const struct g4_gguf_tensor *tensor(const struct g4_gguf *g, const char *name) {
    return g4_gguf_find_tensor(g, name);
}

// gemma4's proportional RoPE on full layers: rope_freqs.weight (head_dim / 2,) F32 of n 1.0s
// then 1e30s (llama.cpp divides each pair's frequency by its factor).
static g4_status rope_pairs_from_freqs(struct reader *r, int head_dim, int *n_pairs) {
    const struct g4_gguf_tensor *t = tensor(r->g, "rope_freqs.weight");
    if (!t)
        return g4_fail(G4_ERR_FORMAT,
                       "%s: missing tensor rope_freqs.weight (gemma4 full layers' proportional RoPE)",
                       r->what);
    if (t->dtype != G4_DTYPE_F32 || t->n_dims != 1 || t->ne[0] != head_dim / 2)
        return g4_fail(G4_ERR_FORMAT,
                       "%s: tensor rope_freqs.weight is %s [%lld%s], needs F32 [%d] (key_length / 2)",
                       r->what, g4_dtype_name(t->dtype), (long long)t->ne[0],
                       t->n_dims > 1 ? ", ..." : "", head_dim / 2);
    const int half = head_dim / 2;
    int n = 0;
    for (int i = 0; i < half; i++) {
        float f;
        memcpy(&f, (const char *)t->data + 4 * (size_t)i, 4);
        bool one = f == 1.0f, frozen = f >= 1e29f && isfinite(f);
        if (one && n == i) {
            n++;
        } else if (!frozen) {
            return g4_fail(G4_ERR_UNSUPPORTED,
                           "%s: rope_freqs.weight[%d] = %g: gemma4 reads only 1.0 (rotating pairs) "
                           "followed by 1e30 (frozen pairs)",
                           r->what, i, f);
        }
    }
    // transformers' rule: n_rope_pairs = int(partial_rotary_factor * head_dim // 2), partial in
    // (0, 1]: the partial factor this file implies must give back the same count.
    double partial = (double)n / half;
    if (n < 1 || (int)floor(partial * head_dim / 2.0) != n)
        return g4_fail(G4_ERR_CONFIG,
                       "%s: rope_freqs.weight rotates %d of %d pairs: partial_rotary_factor %g is "
                       "not in (0, 1]",
                       r->what, n, half, partial);
    *n_pairs = n;
    return G4_OK;
}

// bos / eos (+ eot, eom: llama.cpp ends generation on any of them) / pad ids.
static g4_status token_ids(const struct g4_gguf *g, struct g4_config *c, const char *what) {
    static const char *const keys[] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.padding_token_id",
                                       "tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
                                       "tokenizer.ggml.eom_token_id"};
    c->bos_token_id = 2;
    c->pad_token_id = 0;
    c->n_eos = 0;
    for (size_t i = 0; i < G4_COUNT(keys); i++) {
        const struct g4_gguf_kv *kv = g4_gguf_find_kv(g, keys[i]);
        int64_t v;
        if (!kv) continue;
        if (kv->type == G4_GGUF_ARRAY || !g4_gguf_kv_int(kv, 0, &v) || v < 0 || v > INT_MAX)
            return g4_fail(G4_ERR_FORMAT, "%s: %s must be a non-negative integer", what, keys[i]);
        if (i == 0) c->bos_token_id = (int)v;
        else if (i == 1) c->pad_token_id = (int)v;
        else {
            bool dup = false;
            for (int e = 0; e < c->n_eos; e++) dup |= c->eos_token_id[e] == v;
            if (!dup) c->eos_token_id[c->n_eos++] = (int)v;
        }
    }
    if (c->n_eos == 0) c->eos_token_id[c->n_eos++] = 1;
    // llama.cpp also ends generation on these tokens wherever the vocabulary has them
    // (llama-vocab.cpp's end-of-generation list; the released configs' eos_token_id [1, 106]).
    static const char *const eog[] = {"<eos>", "<end_of_turn>", "<turn|>"};
    const struct g4_gguf_kv *toks = g4_gguf_find_kv(g, "tokenizer.ggml.tokens");
    for (uint64_t id = 0; toks && toks->elem_type == G4_GGUF_STRING && id < toks->n && id <= INT_MAX; id++) {
        struct g4_gguf_str t = toks->strs[id];
        for (size_t k = 0; k < G4_COUNT(eog); k++) {
            if (t.n != strlen(eog[k]) || memcmp(t.p, eog[k], (size_t)t.n) != 0) continue;
            bool dup = false;
            for (int e = 0; e < c->n_eos; e++) dup |= c->eos_token_id[e] == (int)id;
            if (!dup && c->n_eos < G4_MAX_EOS) c->eos_token_id[c->n_eos++] = (int)id;
        }
    }
    return G4_OK;
}

// Rows of a 2-D tensor (its ne[1]); 0 when absent or not 2-D (the binder then names the problem).
static int rows_of(const struct g4_gguf *g, const char *name) {
    const struct g4_gguf_tensor *t = tensor(g, name);
    return t && t->n_dims == 2 && t->ne[1] <= INT_MAX ? (int)t->ne[1] : 0;
}

g4_status g4_gguf_config_load(struct g4_config *c, const struct g4_gguf *g, const char *what) {
    memset(c, 0, sizeof *c);
    const struct g4_gguf_kv *ak = g4_gguf_find_kv(g, "general.architecture");
    struct g4_gguf_str as;
    if (!ak || ak->type != G4_GGUF_STRING || !g4_gguf_kv_str(ak, 0, &as))
        return g4_fail(G4_ERR_FORMAT, "%s: missing metadata key general.architecture (a string)",
                       what);
    struct reader r = {g, NULL, what, ""};
    if (as.n == 6 && memcmp(as.p, "gemma4", 6) == 0) {
        r.arch = "gemma4";
        c->arch = G4_ARCH_GEMMA4;
    } else if (as.n == 6 && memcmp(as.p, "gemma3", 6) == 0) {
        r.arch = "gemma3";
        c->arch = G4_ARCH_GEMMA3;
    } else {
        return g4_fail(G4_ERR_UNSUPPORTED,
                       "%s: general.architecture is \"%.*s\"; gemma4 runs gemma4 and gemma3", what,
                       as.n > 64 ? 64 : (int)as.n, as.p);
    }
    const bool g4 = c->arch == G4_ARCH_GEMMA4;

    G4_TRY(get_int(&r, "block_count", true, 0, 1, G4_MAX_LAYERS, &c->num_hidden_layers));
    const int L = c->num_hidden_layers;
    G4_TRY(get_int(&r, "embedding_length", true, 0, 1, 1 << 16, &c->hidden_size));
    G4_TRY(get_int(&r, "context_length", true, 0, 1, 1 << 30, &c->max_position_embeddings));
    G4_TRY(get_float(&r, "attention.layer_norm_rms_epsilon", true, 0, &c->rms_norm_eps));
    G4_TRY(get_float(&r, "final_logit_softcapping", false, 0.0f, &c->final_logit_softcapping));
    int per[G4_MAX_LAYERS];
    G4_TRY(get_int_per_layer(&r, "attention.head_count", true, 0, 1, 1024, L, per));
    c->num_attention_heads = per[0];
    for (int il = 1; il < L; il++)
        if (per[il] != per[0])
            return g4_fail(G4_ERR_UNSUPPORTED, "%s: %s differs between layers (%d, %d)", what, r.key,
                           per[0], per[il]);
    G4_TRY(get_int_per_layer(&r, "feed_forward_length", true, 0, 1, 1 << 21, L, per));
    c->intermediate_size = per[0];
    for (int il = 0; il < L; il++) c->layer[il].intermediate_size = per[il];
    G4_TRY(get_int_per_layer(&r, "attention.head_count_kv", false, c->num_attention_heads, 1, 1024,
                             L, per));
    for (int il = 0; il < L; il++) c->layer[il].n_kv_heads = per[il];

    // Head dims: gemma4 key_length is the full layers', key_length_swa the sliding layers'.
    int kl, vl, kls = 0, vls = 0;
    const int dflt_hd = c->hidden_size / c->num_attention_heads;
    G4_TRY(get_int(&r, "attention.key_length", g4, dflt_hd, 2, 4096, &kl));
    G4_TRY(get_int(&r, "attention.value_length", false, kl, 2, 4096, &vl));
    if (vl != kl)
        return g4_fail(G4_ERR_UNSUPPORTED, "%s: %s.attention.value_length %d != key_length %d",
                       what, r.arch, vl, kl);
    if (g4) {
        G4_TRY(get_int(&r, "attention.key_length_swa", true, 0, 2, 4096, &kls));
        G4_TRY(get_int(&r, "attention.value_length_swa", false, kls, 2, 4096, &vls));
        if (vls != kls)
            return g4_fail(G4_ERR_UNSUPPORTED,
                           "%s: gemma4.attention.value_length_swa %d != key_length_swa %d", what,
                           vls, kls);
    }
    c->head_dim = g4 ? kls : kl;
    c->global_head_dim = kl;

    // Layer pattern and window: gemma3 without a window has no sliding layers (llama.cpp).
    int window = 0;
    G4_TRY(get_int(&r, "attention.sliding_window", g4, 0, g4 ? 1 : 0, 1 << 30, &window));
    if (window > 0) {
        G4_TRY(get_layer_types(&r, g4, 6, c));
    }
    c->sliding_window = window > 0 ? window : c->max_position_embeddings;

    // RoPE. Sliding layers: default RoPE over the whole head; full: gemma4 proportional (pairs
    // from rope_freqs), gemma3 default or linear.
    float base_full = 10000.0f, base_swa = 10000.0f, factor = 1.0f;
    G4_TRY(get_float(&r, "rope.freq_base", false, 10000.0f, &base_full));
    G4_TRY(get_float(&r, "rope.freq_base_swa", false, 10000.0f, &base_swa));
    int n_rot = 0, n_rot_swa = 0;
    G4_TRY(get_int(&r, "rope.dimension_count", false, kl, 0, 4096, &n_rot));
    if (n_rot != kl)
        return g4_fail(G4_ERR_UNSUPPORTED, "%s: %s = %d: %s rotates whole heads of %d", what, r.key,
                       n_rot, g4 ? "gemma4's full layers (rope_freqs marks frozen pairs)" : "gemma3",
                       kl);
    if (g4) {
        G4_TRY(get_int(&r, "rope.dimension_count_swa", false, kls, 0, 4096, &n_rot_swa));
        if (n_rot_swa != kls)
            return g4_fail(G4_ERR_UNSUPPORTED,
                           "%s: %s = %d: gemma4's sliding layers rotate whole heads of %d", what,
                           r.key, n_rot_swa, kls);
    }
    enum g4_rope_type full_type = g4 ? G4_ROPE_PROPORTIONAL : G4_ROPE_DEFAULT;
    const struct g4_gguf_kv *st = find(&r, "rope.scaling.type");
    if (st) {
        struct g4_gguf_str s;
        if (!g4_gguf_kv_str(st, 0, &s) || st->type != G4_GGUF_STRING)
            return g4_fail(G4_ERR_FORMAT, "%s: %s must be a string", what, r.key);
        bool linear = s.n == 6 && memcmp(s.p, "linear", 6) == 0;
        if (!(s.n == 4 && memcmp(s.p, "none", 4) == 0) && !(linear && !g4))
            return g4_fail(G4_ERR_UNSUPPORTED, "%s: %s = \"%.*s\" (gemma4 supports %s)", what,
                           r.key, s.n > 32 ? 32 : (int)s.n, s.p,
                           g4 ? "none" : "none and linear (gemma3)");
        if (linear) {
            G4_TRY(get_float(&r, "rope.scaling.factor", false, 1.0f, &factor));
            if (factor == 0.0f) factor = 1.0f; // llama.cpp: 0 means none
            if (!(factor >= 1.0f))
                return g4_fail(G4_ERR_CONFIG, "%s: %s = %g must be >= 1", what, r.key, factor);
            if (factor != 1.0f) full_type = G4_ROPE_LINEAR;
        }
    }
    int full_pairs = kl / 2;
    bool any_full = false;
    for (int il = 0; il < L; il++) any_full |= !c->layer[il].is_sliding;
    if (g4 && any_full && kl % 2 == 0) G4_TRY(rope_pairs_from_freqs(&r, kl, &full_pairs));

    // Gemma 4 extras (absent keys: none of them).
    if (g4) {
        G4_TRY(get_int(&r, "attention.shared_kv_layers", false, 0, 0, L - 1, &c->num_kv_shared_layers));
        G4_TRY(get_int(&r, "embedding_length_per_layer_input", false, 0, 0, 1 << 16,
                       &c->hidden_size_per_layer_input));
        G4_TRY(get_int(&r, "expert_count", false, 0, 0, 4096, &c->num_experts));
        G4_TRY(get_int(&r, "expert_used_count", false, 0, 0, 4096, &c->top_k_experts));
        G4_TRY(get_int_per_layer(&r, "expert_feed_forward_length", false, 0, 0, 1 << 21, L, per));
        c->moe_intermediate_size = per[0];
        for (int il = 1; il < L; il++)
            if (per[il] != per[0])
                return g4_fail(G4_ERR_UNSUPPORTED, "%s: %s differs between layers (%d, %d)", what,
                               r.key, per[0], per[il]);
        c->enable_moe_block = c->num_experts > 0;
        if (!c->enable_moe_block) c->top_k_experts = c->moe_intermediate_size = 0;
    } else {
        // query_pre_attn_scalar is not in GGUF; llama.cpp takes head_dim, or hidden / heads for
        // the 62-layer 27B (gemma_pytorch's config), which is what the released configs hold.
        c->query_pre_attn_scalar =
            L == 62 ? (float)(c->hidden_size / c->num_attention_heads) : (float)kl;
    }

    // From tensors.
    c->vocab_size = rows_of(g, "token_embd.weight");
    if (c->vocab_size == 0)
        return g4_fail(G4_ERR_FORMAT, "%s: missing tensor token_embd.weight (2-D)", what);
    const struct g4_gguf_kv *toks = g4_gguf_find_kv(g, "tokenizer.ggml.tokens");
    if (toks && toks->n != (uint64_t)c->vocab_size)
        return g4_fail(G4_ERR_FORMAT, "%s: tokenizer.ggml.tokens has %llu tokens, token_embd.weight %d rows",
                       what, (unsigned long long)toks->n, c->vocab_size);
    c->tie_word_embeddings = tensor(g, "output.weight") == NULL;
    c->vocab_size_per_layer_input = c->vocab_size;
    if (c->hidden_size_per_layer_input) {
        int rows = rows_of(g, "per_layer_token_embd.weight");
        if (rows) c->vocab_size_per_layer_input = rows;
    }
    // attention_k_eq_v (26B, 31B): llama.cpp uses K as V where attn_v is absent. gemma4's config
    // has it on full layers only: every full layer that writes K/V lacks attn_v, every sliding
    // one has it.
    if (g4) {
        int full_writers = 0, full_without_v = 0, sliding_without_v = -1;
        for (int il = 0; il < L - c->num_kv_shared_layers; il++) {
            char name[64];
            snprintf(name, sizeof name, "blk.%d.attn_v.weight", il);
            bool has_v = tensor(g, name) != NULL;
            if (c->layer[il].is_sliding) {
                if (!has_v && sliding_without_v < 0) sliding_without_v = il;
            } else {
                full_writers++;
                full_without_v += !has_v;
            }
        }
        if (full_without_v && (full_without_v != full_writers || sliding_without_v >= 0))
            return g4_fail(G4_ERR_UNSUPPORTED,
                           "%s: attn_v is missing on %d of %d full layers%s: gemma4 shares K as V "
                           "on all full layers or none",
                           what, full_without_v, full_writers,
                           sliding_without_v >= 0 ? " and on a sliding layer" : "");
        c->attention_k_eq_v = full_without_v > 0;
    }
    G4_TRY(token_ids(g, c, what));

    // The per-layer table (config.c's parse_text does the same from config.json).
    bool kv_sliding_set = false, kv_full_set = false;
    const int first_shared = L - c->num_kv_shared_layers;
    bool double_wide = g4 && c->num_kv_shared_layers > 0;
    for (int il = 0; il < L; il++) {
        struct g4_layer *ly = &c->layer[il];
        if (window <= 0) ly->is_sliding = false;
        ly->head_dim = ly->is_sliding ? c->head_dim : c->global_head_dim;
        ly->window = ly->is_sliding ? c->sliding_window : 0;
        ly->k_eq_v = c->attention_k_eq_v && !ly->is_sliding;
        ly->rope_factor = 1.0f;
        if (ly->is_sliding) {
            ly->rope_type = G4_ROPE_DEFAULT;
            ly->rope_theta = base_swa;
            ly->n_rope_pairs = ly->head_dim / 2;
        } else {
            ly->rope_type = full_type;
            ly->rope_theta = base_full;
            ly->n_rope_pairs = full_type == G4_ROPE_PROPORTIONAL ? full_pairs : ly->head_dim / 2;
            if (full_type == G4_ROPE_LINEAR) ly->rope_factor = factor;
        }
        if (ly->is_sliding && !kv_sliding_set) {
            c->num_key_value_heads = ly->n_kv_heads;
            kv_sliding_set = true;
        } else if (!ly->is_sliding && !kv_full_set) {
            c->num_global_key_value_heads = ly->n_kv_heads;
            kv_full_set = true;
        }
        int want = il < first_shared ? c->intermediate_size : 2 * c->intermediate_size;
        double_wide &= ly->intermediate_size == want;
    }
    if (!kv_sliding_set) c->num_key_value_heads = c->num_global_key_value_heads;
    if (!c->attention_k_eq_v && c->num_global_key_value_heads == c->num_key_value_heads)
        c->num_global_key_value_heads = 0; // as config.json: set only where it differs
    c->use_double_wide_mlp = double_wide;
    if (!(c->rms_norm_eps > 0.0f))
        return g4_fail(G4_ERR_CONFIG, "%s: %s.attention.layer_norm_rms_epsilon = %g out of range",
                       what, r.arch, c->rms_norm_eps);
    return g4_config_finish(c, what);
}
