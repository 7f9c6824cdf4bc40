// GGUF tensor names -> the binder's transformers names; see gguf_weights.h. The map follows
// llama.cpp's gguf-py tensor_mapping.py for the gemma3 / gemma4 architectures.
#define _POSIX_C_SOURCE 200809L

#include "gguf_weights.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

struct name_map {
    const char *gguf, *hf;
};

static const struct name_map globals[] = {
    {"token_embd.weight", "model.embed_tokens.weight"},
    {"output_norm.weight", "model.norm.weight"},
    {"output.weight", "lm_head.weight"},
    {"per_layer_token_embd.weight", "model.embed_tokens_per_layer.weight"},
    {"per_layer_model_proj.weight", "model.per_layer_model_projection.weight"},
    {"per_layer_proj_norm.weight", "model.per_layer_projection_norm.weight"},
};

// blk.N.<gguf> <-> model.layers.N.<hf>
static const struct name_map per_layer[] = {
    {"attn_norm.weight", "input_layernorm.weight"},
    {"attn_q.weight", "self_attn.q_proj.weight"},
    {"attn_k.weight", "self_attn.k_proj.weight"},
    {"attn_v.weight", "self_attn.v_proj.weight"},
    {"attn_output.weight", "self_attn.o_proj.weight"},
    {"attn_q_norm.weight", "self_attn.q_norm.weight"},
    {"attn_k_norm.weight", "self_attn.k_norm.weight"},
    {"post_attention_norm.weight", "post_attention_layernorm.weight"},
    {"ffn_norm.weight", "pre_feedforward_layernorm.weight"},
    {"post_ffw_norm.weight", "post_feedforward_layernorm.weight"},
    {"ffn_gate.weight", "mlp.gate_proj.weight"},
    {"ffn_up.weight", "mlp.up_proj.weight"},
    {"ffn_down.weight", "mlp.down_proj.weight"},
    {"inp_gate.weight", "per_layer_input_gate.weight"},
    {"proj.weight", "per_layer_projection.weight"},
    {"post_norm.weight", "post_per_layer_input_norm.weight"},
    {"layer_output_scale.weight", "layer_scalar"},
    {"ffn_gate_inp.weight", "router.proj.weight"},
    {"ffn_gate_inp.scale", "router.scale"},
    {"ffn_down_exps.scale", "router.per_expert_scale"},
    {"ffn_gate_up_exps.weight", "experts.gate_up_proj"},
    {"ffn_down_exps.weight", "experts.down_proj"},
    {"pre_ffw_norm_2.weight", "pre_feedforward_layernorm_2.weight"},
    {"post_ffw_norm_1.weight", "post_feedforward_layernorm_1.weight"},
    {"post_ffw_norm_2.weight", "post_feedforward_layernorm_2.weight"},
};

// "<prefix><digits>.<rest>": the layer index and rest, or false.
static bool split_layer(const char *name, const char *prefix, long *il, const char **rest) {
    size_t n = strlen(prefix);
    if (strncmp(name, prefix, n) != 0 || !isdigit((unsigned char)name[n])) return false;
    char *end;
    *il = strtol(name + n, &end, 10);
    if (*end != '.' || *il < 0 || *il > 1000000) return false;
    *rest = end + 1;
    return true;
}

// Transformers name of GGUF name `name` into out; false when the map does not know it.
static bool hf_name(const char *name, char *out, size_t cap) {
    for (size_t i = 0; i < G4_COUNT(globals); i++)
        if (strcmp(name, globals[i].gguf) == 0)
            return (size_t)snprintf(out, cap, "%s", globals[i].hf) < cap;
    long il;
    const char *rest;
    if (!split_layer(name, "blk.", &il, &rest)) return false;
    for (size_t i = 0; i < G4_COUNT(per_layer); i++)
        if (strcmp(rest, per_layer[i].gguf) == 0)
            return (size_t)snprintf(out, cap, "model.layers.%ld.%s", il, per_layer[i].hf) < cap;
    return false;
}

bool g4_gguf_weights_gguf_name(const char *hf, char *out, size_t cap) {
    for (size_t i = 0; i < G4_COUNT(globals); i++)
        if (strcmp(hf, globals[i].hf) == 0)
            return (size_t)snprintf(out, cap, "%s", globals[i].gguf) < cap;
    long il;
    const char *rest;
    if (!split_layer(hf, "model.layers.", &il, &rest)) return false;
    for (size_t i = 0; i < G4_COUNT(per_layer); i++)
        if (strcmp(rest, per_layer[i].hf) == 0)
            return (size_t)snprintf(out, cap, "blk.%ld.%s", il, per_layer[i].gguf) < cap;
    return false;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const struct g4_tensor *)a)->name, ((const struct g4_tensor *)b)->name);
}

g4_status g4_gguf_weights_table(struct g4_safetensors *st, const struct g4_gguf *g, const char *what) {
    memset(st, 0, sizeof *st);
    if (g->n_tensors > INT32_MAX)
        return g4_fail(G4_ERR_FORMAT, "%s: %lld tensors", what, (long long)g->n_tensors);
    G4_TRY(g4_calloc((void **)&st->tensors, g->n_tensors ? (size_t)g->n_tensors : 1,
                     sizeof *st->tensors, what));
    st->norms_as_scales = true;
    g4_status s = G4_OK;
    for (int64_t i = 0; i < g->n_tensors && s == G4_OK; i++) {
        const struct g4_gguf_tensor *gt = &g->tensors[i];
        if (strcmp(gt->name, "rope_freqs.weight") == 0) continue; // gguf_config.c reads it
        char hf[512];
        const char *name = hf_name(gt->name, hf, sizeof hf) ? hf : gt->name;
        struct g4_tensor *t = &st->tensors[st->n_tensors];
        if (!(t->name = strdup(name))) {
            s = g4_fail(G4_ERR_OUT_OF_MEMORY, "%s: tensor %s: name", what, gt->name);
            break;
        }
        st->n_tensors++;
        t->dtype = gt->dtype;
        t->n_dims = gt->n_dims;
        for (int d = 0; d < gt->n_dims; d++) t->shape[d] = gt->ne[gt->n_dims - 1 - d];
        t->data = gt->data;
        t->n_bytes = gt->n_bytes;
        t->shard = 0;
        t->data_offset = (size_t)gt->offset;
    }
    if (s == G4_OK) {
        qsort(st->tensors, (size_t)st->n_tensors, sizeof *st->tensors, by_name);
        for (int i = 1; i < st->n_tensors && s == G4_OK; i++)
            if (strcmp(st->tensors[i - 1].name, st->tensors[i].name) == 0)
                s = g4_fail(G4_ERR_FORMAT, "%s: two tensors are both %s (one under its GGUF name)",
                            what, st->tensors[i].name);
    }
    if (s != G4_OK) g4_safetensors_free(st);
    return s;
}

// Rewrites every transformers tensor name in msg into its GGUF name.
static void to_gguf_names(const char *msg, char *out, size_t cap) {
    size_t o = 0;
    for (const char *p = msg; *p && o + 1 < cap;) {
        bool start = (p == msg || p[-1] == ' ') &&
                     (strncmp(p, "model.", 6) == 0 || strncmp(p, "lm_head.", 8) == 0);
        if (start) {
            size_t n = 0;
            while (p[n] && (isalnum((unsigned char)p[n]) || p[n] == '_' || p[n] == '.')) n++;
            while (n && p[n - 1] == '.') n--;
            char hf[512], gg[512];
            if (n < sizeof hf) {
                memcpy(hf, p, n);
                hf[n] = '\0';
                if (g4_gguf_weights_gguf_name(hf, gg, sizeof gg)) {
                    o += (size_t)snprintf(out + o, cap - o, "%s", gg);
                    if (o >= cap) o = cap - 1;
                    p += n;
                    continue;
                }
            }
        }
        out[o++] = *p++;
    }
    out[o < cap ? o : cap - 1] = '\0';
}

g4_status g4_gguf_weights_bind(struct g4_weights *w, const struct g4_config *cfg,
                               const struct g4_safetensors *st, const char *what) {
    g4_status s = g4_weights_bind(w, cfg, st, what);
    if (s == G4_OK) return s;
    char msg[1024];
    to_gguf_names(g4_last_error(), msg, sizeof msg);
    // Shapes are printed in transformers' order, the reverse of GGUF's ne.
    bool shape = strstr(msg, "has shape [") != NULL;
    return g4_fail(s, "%s%s", msg, shape ? " (transformers order: GGUF's ne reversed)" : "");
}
