// config.json -> struct g4_config and its per-layer table. Validates every value before any
// allocation or compute; see config.h. Defaults mirror transformers' Gemma4TextConfig, and
// Gemma3TextConfig for model_type gemma3_text / gemma3.
#include "config.h"

#include "chat.h"
#include "file.h"
#include "utf8.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// ---- Strict JSON ------------------------------------------------------------------------------
// transformers reads config.json with Python's json module from UTF-8 text. cJSON alone is looser
// (it takes "+1", "01", ".5", raw control characters in strings, invalid UTF-8 and bytes after
// the value, and returns the first of duplicated keys where Python keeps the last), so the text
// is first checked against RFC 8259 here, and the parsed tree for duplicate keys. Anything that
// Python would read differently, or not at all, is G4_ERR_FORMAT naming the byte offset.
// (Python's NaN / Infinity extensions are refused too: no config value may be non-finite. One
// leniency remains: an integer field written as 64.0 or 1e3 is read as that integer, which
// transformers' typed config may refuse; it never yields a different model.)
struct json_scan {
    const unsigned char *p, *end, *start;
    const char *err; // what is wrong at p
};

static void json_ws(struct json_scan *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static bool json_fail(struct json_scan *j, const char *err) {
    j->err = err;
    return false;
}

static bool json_digits(struct json_scan *j) {
    if (j->p >= j->end || *j->p < '0' || *j->p > '9') return json_fail(j, "a digit expected");
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
    return true;
}

static bool json_number(struct json_scan *j) {
    if (j->p < j->end && *j->p == '-') j->p++;
    if (j->p < j->end && *j->p == '0') j->p++;
    else if (!json_digits(j)) return json_fail(j, "not a JSON value");
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (!json_digits(j)) return false;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-')) j->p++;
        if (!json_digits(j)) return false;
    }
    return true;
}

static bool json_string(struct json_scan *j) {
    j->p++; // opening quote
    while (j->p < j->end) {
        const unsigned char c = *j->p;
        if (c == '"') {
            j->p++;
            return true;
        }
        if (c < 0x20) return json_fail(j, "control character in a string");
        if (c == '\\') {
            if (++j->p >= j->end) break;
            if (*j->p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (j->p + i >= j->end || !strchr("0123456789abcdefABCDEF", j->p[i]) || !j->p[i])
                        return json_fail(j, "bad \\u escape");
                j->p += 5;
            } else if (*j->p && strchr("\"\\/bfnrt", *j->p)) {
                j->p++;
            } else {
                return json_fail(j, "bad escape");
            }
            continue;
        }
        const int n = g4_utf8_seq(j->p, (size_t)(j->end - j->p));
        if (!n) return json_fail(j, "invalid UTF-8");
        j->p += n;
    }
    return json_fail(j, "unterminated string");
}

static bool json_literal(struct json_scan *j, const char *word) {
    const size_t n = strlen(word);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0) return json_fail(j, "not a JSON value");
    j->p += n;
    return true;
}

static bool json_value(struct json_scan *j, int depth) {
    if (depth > 256) return json_fail(j, "nested too deeply");
    json_ws(j);
    if (j->p >= j->end) return json_fail(j, "value expected");
    const unsigned char c = *j->p;
    if (c == '{' || c == '[') {
        const unsigned char close = c == '{' ? '}' : ']';
        j->p++;
        json_ws(j);
        if (j->p < j->end && *j->p == close) {
            j->p++;
            return true;
        }
        for (;;) {
            if (c == '{') {
                json_ws(j);
                if (j->p >= j->end || *j->p != '"') return json_fail(j, "object key expected");
                if (!json_string(j)) return false;
                json_ws(j);
                if (j->p >= j->end || *j->p != ':') return json_fail(j, "':' expected");
                j->p++;
            }
            if (!json_value(j, depth + 1)) return false;
            json_ws(j);
            if (j->p < j->end && *j->p == ',') {
                j->p++;
                continue;
            }
            if (j->p < j->end && *j->p == close) {
                j->p++;
                return true;
            }
            return json_fail(j, c == '{' ? "',' or '}' expected" : "',' or ']' expected");
        }
    }
    if (c == '"') return json_string(j);
    if (c == 't') return json_literal(j, "true");
    if (c == 'f') return json_literal(j, "false");
    if (c == 'n') return json_literal(j, "null");
    return json_number(j);
}

// First key that occurs twice in one object of the tree, or NULL.
static const char *json_duplicate_key(const cJSON *o) {
    for (const cJSON *a = o ? o->child : NULL; a; a = a->next) {
        if (cJSON_IsObject(o))
            for (const cJSON *b = a->next; b; b = b->next)
                if (strcmp(a->string, b->string) == 0) return a->string;
        const char *d = json_duplicate_key(a);
        if (d) return d;
    }
    return NULL;
}

static g4_status parse_json_strict(const char *text, size_t n, const char *what, cJSON **out) {
    *out = NULL;
    struct json_scan j = {(const unsigned char *)text, (const unsigned char *)text + n,
                          (const unsigned char *)text, NULL};
    if (json_value(&j, 0)) {
        json_ws(&j);
        if (j.p < j.end) json_fail(&j, "unexpected bytes after the JSON value");
    }
    if (j.err)
        return g4_fail(G4_ERR_FORMAT, "%s: invalid JSON at byte %zu: %s", what,
                       (size_t)(j.p - j.start), j.err);
    cJSON *root = cJSON_ParseWithLength(text, n);
    if (!root) return g4_fail(G4_ERR_FORMAT, "%s: not valid JSON", what);
    const char *dup = json_duplicate_key(root);
    if (dup) {
        g4_fail(G4_ERR_FORMAT, "%s: key \"%s\" appears twice in one object", what, dup);
        cJSON_Delete(root); // after the message, which quotes the key from the tree
        return G4_ERR_FORMAT;
    }
    *out = root;
    return G4_OK;
}

// ---- Typed values ------------------------------------------------------------------------------

// An integral JSON number within int range.
static bool is_int(const cJSON *it) {
    return cJSON_IsNumber(it) && it->valuedouble == floor(it->valuedouble) &&
           fabs(it->valuedouble) <= 2147483647.0;
}

// Reads integer key `key` of object o into *out (default when absent or null).
static g4_status get_int(const cJSON *o, const char *key, int dflt, int *out, const char *what) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!it || cJSON_IsNull(it)) {
        *out = dflt;
        return G4_OK;
    }
    if (!is_int(it)) return g4_fail(G4_ERR_FORMAT, "%s: \"%s\" must be an integer", what, key);
    *out = (int)it->valuedouble;
    return G4_OK;
}

// The same for a number (transformers computes rope fractions in double precision).
static g4_status get_double(const cJSON *o, const char *key, double dflt, double *out,
                            const char *what) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!it || cJSON_IsNull(it)) {
        *out = dflt;
        return G4_OK;
    }
    if (!cJSON_IsNumber(it)) return g4_fail(G4_ERR_FORMAT, "%s: \"%s\" must be a number", what, key);
    *out = it->valuedouble;
    return G4_OK;
}

// The same, rounded to float.
static g4_status get_float(const cJSON *o, const char *key, float dflt, float *out,
                           const char *what) {
    double d = dflt;
    G4_TRY(get_double(o, key, dflt, &d, what));
    *out = (float)d;
    return G4_OK;
}

static g4_status get_bool(const cJSON *o, const char *key, bool dflt, bool *out,
                          const char *what) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!it || cJSON_IsNull(it)) {
        *out = dflt;
        return G4_OK;
    }
    if (!cJSON_IsBool(it)) return g4_fail(G4_ERR_FORMAT, "%s: \"%s\" must be a boolean", what, key);
    *out = cJSON_IsTrue(it);
    return G4_OK;
}

// "sliding_attention" / "full_attention" rope parameters -> layer fields (head_dim set already).
static g4_status parse_rope(const cJSON *rope, const char *type, struct g4_layer *ly,
                            const char *what) {
    const cJSON *p = rope ? cJSON_GetObjectItemCaseSensitive(rope, type) : NULL;
    bool full = strcmp(type, "full_attention") == 0;
    const char *rt = full ? "proportional" : "default";
    float theta = full ? 1e6f : 1e4f;
    double partial = full ? 0.25 : 1.0, factor = 1.0;
    if (p) {
        if (!cJSON_IsObject(p))
            return g4_fail(G4_ERR_FORMAT, "%s: rope_parameters.%s must be an object", what, type);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "rope_type");
        if (t && !cJSON_IsString(t))
            return g4_fail(G4_ERR_FORMAT, "%s: rope_parameters.%s.rope_type must be a string", what,
                           type);
        rt = t ? t->valuestring : "default";
        G4_TRY(get_float(p, "rope_theta", 1e4f, &theta, what));
        G4_TRY(get_double(p, "partial_rotary_factor", 1.0, &partial, what));
        G4_TRY(get_double(p, "factor", 1.0, &factor, what));
    }
    if (!(theta > 1.0f) || !isfinite(theta))
        return g4_fail(G4_ERR_CONFIG, "%s: rope_parameters.%s.rope_theta %g out of range", what,
                       type, theta);
    ly->rope_theta = theta;
    ly->rope_factor = 1.0f;
    if (strcmp(rt, "default") == 0) {
        // Gemma4TextRotaryEmbedding.compute_default_rope_parameters ignores partial_rotary_factor
        // and factor: every pair rotates at the plain frequencies.
        ly->rope_type = G4_ROPE_DEFAULT;
        ly->n_rope_pairs = ly->head_dim / 2;
    } else if (strcmp(rt, "proportional") == 0) {
        if (!(partial > 0.0 && partial <= 1.0))
            return g4_fail(G4_ERR_CONFIG, "%s: partial_rotary_factor %g not in (0, 1]", what,
                           partial);
        if (!(factor > 0.0) || !isfinite(factor))
            return g4_fail(G4_ERR_CONFIG, "%s: rope_parameters.%s.factor %g must be > 0", what,
                           type, factor);
        // modeling_rope_utils._compute_proportional_rope_parameters: int(p * head_dim // 2) in
        // double precision (p = 0.7 on head_dim 20 gives 7 pairs, 6 in float), then
        // inv_freq /= factor.
        ly->rope_type = G4_ROPE_PROPORTIONAL;
        ly->n_rope_pairs = (int)floor(partial * ly->head_dim / 2.0);
        ly->rope_factor = (float)factor;
    } else {
        return g4_fail(G4_ERR_UNSUPPORTED, "%s: rope_type \"%s\" for %s", what, rt, type);
    }
    return G4_OK;
}

// per_layer_config (transformers >= 5.2x serialisation): {"<layer>": {"head_dim": .., ...}}.
static g4_status apply_per_layer_config(const cJSON *plc, struct g4_config *cfg,
                                        const char *what) {
    if (!plc || cJSON_IsNull(plc)) return G4_OK;
    if (!cJSON_IsObject(plc)) return g4_fail(G4_ERR_FORMAT, "%s: per_layer_config must be an object", what);
    const cJSON *e;
    cJSON_ArrayForEach(e, plc) {
        // A layer index in canonical decimal: transformers' per_layer_config is keyed by int
        // layer index, so " 3", "+3" or "03" name no layer.
        const char *k = e->string;
        long il = -1;
        if (k[0] >= '0' && k[0] <= '9' && (k[0] != '0' || !k[1]) && strlen(k) <= 4 &&
            strspn(k, "0123456789") == strlen(k))
            il = strtol(k, NULL, 10);
        if (il < 0 || il >= cfg->num_hidden_layers || !cJSON_IsObject(e))
            return g4_fail(G4_ERR_CONFIG, "%s: per_layer_config key \"%s\" is not a layer index",
                           what, e->string);
        struct g4_layer *ly = &cfg->layer[il];
        const cJSON *f;
        cJSON_ArrayForEach(f, e) {
            int v;
            if (!is_int(f))
                return g4_fail(G4_ERR_FORMAT, "%s: per_layer_config.%s.%s must be an integer", what,
                               e->string, f->string);
            v = (int)f->valuedouble;
            if (strcmp(f->string, "head_dim") == 0) ly->head_dim = v;
            else if (strcmp(f->string, "num_key_value_heads") == 0) ly->n_kv_heads = v;
            else if (strcmp(f->string, "intermediate_size") == 0) ly->intermediate_size = v;
            else
                return g4_fail(G4_ERR_UNSUPPORTED, "%s: per_layer_config.%s.%s", what, e->string,
                               f->string);
        }
    }
    return G4_OK;
}

static const char *detect_variant(const struct g4_config *c) {
    static const struct { enum g4_arch arch; const char *name; int layers, hidden; } known[] = {
        {G4_ARCH_GEMMA4, "e2b", 35, 1536},          {G4_ARCH_GEMMA4, "e4b", 42, 2560},
        {G4_ARCH_GEMMA4, "26b-a4b", 30, 2816},      {G4_ARCH_GEMMA4, "31b", 60, 5376},
        {G4_ARCH_GEMMA3, "gemma3-270m", 18, 640},   {G4_ARCH_GEMMA3, "gemma3-1b", 26, 1152},
        {G4_ARCH_GEMMA3, "gemma3-4b", 34, 2560},    {G4_ARCH_GEMMA3, "gemma3-12b", 48, 3840},
        {G4_ARCH_GEMMA3, "gemma3-27b", 62, 5376}};
    for (size_t i = 0; i < G4_COUNT(known); i++)
        if (c->arch == known[i].arch && c->num_hidden_layers == known[i].layers &&
            c->hidden_size == known[i].hidden)
            return known[i].name;
    return c->arch == G4_ARCH_GEMMA3 ? "gemma3-custom" : "custom";
}

// Builds layer[].writes_kv / kv_slot / kv_donor and slot[] (transformers' kv_sharing_modes:
// a shared layer reads the last non-shared layer of its own attention type).
static g4_status build_kv_table(struct g4_config *cfg, const char *what) {
    int first_shared = cfg->num_hidden_layers - cfg->num_kv_shared_layers;
    cfg->n_kv_slots = 0;
    for (int il = 0; il < cfg->num_hidden_layers; il++) {
        struct g4_layer *ly = &cfg->layer[il];
        ly->writes_kv = il < first_shared;
        if (ly->writes_kv) {
            struct g4_kv_slot_info *s = &cfg->slot[cfg->n_kv_slots];
            s->layer = il;
            s->is_sliding = ly->is_sliding;
            s->head_dim = ly->head_dim;
            s->n_kv_heads = ly->n_kv_heads;
            s->window = ly->window;
            ly->kv_slot = cfg->n_kv_slots++;
            ly->kv_donor = il;
            continue;
        }
        int donor = -1;
        for (int j = first_shared - 1; j >= 0 && donor < 0; j--)
            if (cfg->layer[j].is_sliding == ly->is_sliding) donor = j;
        if (donor < 0)
            return g4_fail(G4_ERR_CONFIG,
                           "%s: KV-shared layer %d (%s) has no earlier non-shared layer of its type",
                           what, il, ly->is_sliding ? "sliding_attention" : "full_attention");
        const struct g4_layer *d = &cfg->layer[donor];
        if (d->head_dim != ly->head_dim || d->n_kv_heads != ly->n_kv_heads)
            return g4_fail(G4_ERR_CONFIG, "%s: KV-shared layer %d does not match its donor %d", what,
                           il, donor);
        ly->kv_slot = d->kv_slot;
        ly->kv_donor = donor;
    }
    return G4_OK;
}

static g4_status validate(const struct g4_config *c, const char *what) {
    static const struct { const char *name; size_t off; int min, max; } ranges[] = {
#define R(f, lo, hi) {#f, offsetof(struct g4_config, f), lo, hi}
        R(vocab_size, 1, 1 << 24), R(hidden_size, 1, 1 << 16), R(intermediate_size, 1, 1 << 20),
        R(num_hidden_layers, 1, G4_MAX_LAYERS), R(num_attention_heads, 1, 1024),
        R(num_key_value_heads, 1, 1024), R(head_dim, 2, 4096), R(global_head_dim, 2, 4096),
        R(num_global_key_value_heads, 0, 1024), R(max_position_embeddings, 1, 1 << 30),
        R(sliding_window, 1, 1 << 30), R(hidden_size_per_layer_input, 0, 1 << 16),
        R(num_kv_shared_layers, 0, G4_MAX_LAYERS),
#undef R
    };
    for (size_t i = 0; i < G4_COUNT(ranges); i++) {
        int v = *(const int *)((const char *)c + ranges[i].off);
        if (v < ranges[i].min || v > ranges[i].max)
            return g4_fail(G4_ERR_CONFIG, "%s: %s = %d out of range [%d, %d]", what, ranges[i].name,
                           v, ranges[i].min, ranges[i].max);
    }
    if (c->num_kv_shared_layers >= c->num_hidden_layers)
        return g4_fail(G4_ERR_CONFIG, "%s: num_kv_shared_layers = %d must be < num_hidden_layers = %d",
                       what, c->num_kv_shared_layers, c->num_hidden_layers);
    if (c->hidden_size_per_layer_input > 0 &&
        (c->vocab_size_per_layer_input < 1 || c->vocab_size_per_layer_input > c->vocab_size))
        return g4_fail(G4_ERR_CONFIG, "%s: vocab_size_per_layer_input = %d out of range [1, %d]",
                       what, c->vocab_size_per_layer_input, c->vocab_size);
    if (!(c->rms_norm_eps > 0.0f && c->rms_norm_eps < 1.0f))
        return g4_fail(G4_ERR_CONFIG, "%s: rms_norm_eps = %g out of range", what, c->rms_norm_eps);
    if (c->final_logit_softcapping < 0.0f || !isfinite(c->final_logit_softcapping))
        return g4_fail(G4_ERR_CONFIG, "%s: final_logit_softcapping = %g out of range", what,
                       c->final_logit_softcapping);
    if (c->enable_moe_block &&
        (c->num_experts < 1 || c->num_experts > 4096 || c->top_k_experts < 1 ||
         c->top_k_experts > c->num_experts || c->moe_intermediate_size < 1))
        return g4_fail(G4_ERR_CONFIG,
                       "%s: MoE needs 1 <= top_k_experts (%d) <= num_experts (%d) and "
                       "moe_intermediate_size (%d) >= 1",
                       what, c->top_k_experts, c->num_experts, c->moe_intermediate_size);
    if (c->bos_token_id < 0 || c->bos_token_id >= c->vocab_size)
        return g4_fail(G4_ERR_CONFIG, "%s: bos_token_id = %d outside the vocabulary", what,
                       c->bos_token_id);
    for (int i = 0; i < c->n_eos; i++)
        if (c->eos_token_id[i] < 0 || c->eos_token_id[i] >= c->vocab_size)
            return g4_fail(G4_ERR_CONFIG, "%s: eos_token_id %d outside the vocabulary", what,
                           c->eos_token_id[i]);
    for (int il = 0; il < c->num_hidden_layers; il++) {
        const struct g4_layer *ly = &c->layer[il];
        if (ly->head_dim < 2 || ly->head_dim % 2 || ly->head_dim > 4096)
            return g4_fail(G4_ERR_CONFIG, "%s: layer %d head_dim = %d must be even in [2, 4096]",
                           what, il, ly->head_dim);
        if (ly->n_kv_heads < 1 || c->num_attention_heads % ly->n_kv_heads)
            return g4_fail(G4_ERR_CONFIG,
                           "%s: layer %d num_attention_heads %d not divisible by %d KV heads", what,
                           il, c->num_attention_heads, ly->n_kv_heads);
        if (!(ly->rope_factor > 0.0f) || !isfinite(ly->rope_factor))
            return g4_fail(G4_ERR_CONFIG, "%s: layer %d RoPE factor %g must be > 0", what, il,
                           ly->rope_factor);
        if (ly->intermediate_size < 1 || ly->intermediate_size > (1 << 21))
            return g4_fail(G4_ERR_CONFIG, "%s: layer %d intermediate_size = %d out of range", what,
                           il, ly->intermediate_size);
    }
    return G4_OK;
}

// eos_token_id: an integer or a list of up to G4_MAX_EOS integers (default 1).
static g4_status parse_eos(struct g4_config *c, const cJSON *t, const char *what) {
    const cJSON *eos = cJSON_GetObjectItemCaseSensitive(t, "eos_token_id");
    c->n_eos = 0;
    if (!eos || cJSON_IsNull(eos)) {
        c->eos_token_id[c->n_eos++] = 1;
    } else if (cJSON_IsNumber(eos)) {
        if (!is_int(eos)) return g4_fail(G4_ERR_FORMAT, "%s: eos_token_id %g is not an integer", what, eos->valuedouble);
        c->eos_token_id[c->n_eos++] = eos->valueint;
    } else if (cJSON_IsArray(eos)) {
        const cJSON *e;
        cJSON_ArrayForEach(e, eos) {
            if (!is_int(e) || c->n_eos == G4_MAX_EOS)
                return g4_fail(G4_ERR_FORMAT, "%s: eos_token_id must be up to %d integers", what,
                               G4_MAX_EOS);
            c->eos_token_id[c->n_eos++] = e->valueint;
        }
    } else {
        return g4_fail(G4_ERR_FORMAT, "%s: eos_token_id must be an integer or a list", what);
    }
    return G4_OK;
}

// layer_types: one "sliding_attention" / "full_attention" per layer -> layer[].is_sliding.
static g4_status parse_layer_types(struct g4_config *c, const cJSON *lt, const char *what) {
    if (!cJSON_IsArray(lt) || cJSON_GetArraySize(lt) != c->num_hidden_layers)
        return g4_fail(G4_ERR_CONFIG, "%s: layer_types must list %d entries (num_hidden_layers), has %d",
                       what, c->num_hidden_layers, cJSON_IsArray(lt) ? cJSON_GetArraySize(lt) : -1);
    int il = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, lt) {
        if (!cJSON_IsString(e) || (strcmp(e->valuestring, "sliding_attention") != 0 &&
                                   strcmp(e->valuestring, "full_attention") != 0))
            return g4_fail(G4_ERR_CONFIG, "%s: layer_types[%d] must be \"sliding_attention\" or \"full_attention\"",
                           what, il);
        c->layer[il++].is_sliding = strcmp(e->valuestring, "sliding_attention") == 0;
    }
    return G4_OK;
}

static g4_status parse_text(struct g4_config *c, const cJSON *t, const char *what) {
    // transformers computes both of these (ACT2FN[hidden_activation] in the MLPs, experts and
    // per-layer input gate; biases on q/k/v/o_proj); this engine does not, so it refuses them
    // rather than compute something else.
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(t, "hidden_activation");
    if (act && !cJSON_IsNull(act) &&
        (!cJSON_IsString(act) || strcmp(act->valuestring, "gelu_pytorch_tanh") != 0))
        return g4_fail(G4_ERR_UNSUPPORTED,
                       "%s: hidden_activation \"%s\" is not implemented (only "
                       "\"gelu_pytorch_tanh\"; transformers would apply ACT2FN[\"%s\"] in the "
                       "MLPs and the per-layer input gate)",
                       what, cJSON_IsString(act) ? act->valuestring : "?",
                       cJSON_IsString(act) ? act->valuestring : "?");
    bool attention_bias = false;
    G4_TRY(get_bool(t, "attention_bias", false, &attention_bias, what));
    if (attention_bias)
        return g4_fail(G4_ERR_UNSUPPORTED,
                       "%s: attention_bias = true is not implemented (transformers would add "
                       "q/k/v/o_proj.bias to the attention projections)", what);
    const cJSON *bidi = cJSON_GetObjectItemCaseSensitive(t, "use_bidirectional_attention");
    if (cJSON_IsString(bidi) && strcmp(bidi->valuestring, "all") == 0)
        return g4_fail(G4_ERR_UNSUPPORTED, "%s: use_bidirectional_attention = \"all\"", what);

    G4_TRY(get_int(t, "vocab_size", 262144, &c->vocab_size, what));
    G4_TRY(get_int(t, "hidden_size", 2304, &c->hidden_size, what));
    G4_TRY(get_int(t, "intermediate_size", 9216, &c->intermediate_size, what));
    G4_TRY(get_int(t, "num_hidden_layers", 30, &c->num_hidden_layers, what));
    G4_TRY(get_int(t, "num_attention_heads", 8, &c->num_attention_heads, what));
    G4_TRY(get_int(t, "num_key_value_heads", 4, &c->num_key_value_heads, what));
    G4_TRY(get_int(t, "head_dim", 256, &c->head_dim, what));
    G4_TRY(get_int(t, "global_head_dim", 512, &c->global_head_dim, what));
    G4_TRY(get_int(t, "num_global_key_value_heads", 0, &c->num_global_key_value_heads, what));
    G4_TRY(get_int(t, "max_position_embeddings", 131072, &c->max_position_embeddings, what));
    G4_TRY(get_int(t, "sliding_window", 512, &c->sliding_window, what));
    G4_TRY(get_int(t, "vocab_size_per_layer_input", 262144, &c->vocab_size_per_layer_input, what));
    G4_TRY(get_int(t, "hidden_size_per_layer_input", 256, &c->hidden_size_per_layer_input, what));
    G4_TRY(get_int(t, "num_kv_shared_layers", 0, &c->num_kv_shared_layers, what));
    G4_TRY(get_int(t, "num_experts", 0, &c->num_experts, what));
    G4_TRY(get_int(t, "top_k_experts", 0, &c->top_k_experts, what));
    G4_TRY(get_int(t, "moe_intermediate_size", 0, &c->moe_intermediate_size, what));
    G4_TRY(get_int(t, "bos_token_id", 2, &c->bos_token_id, what));
    G4_TRY(get_int(t, "pad_token_id", 0, &c->pad_token_id, what));
    G4_TRY(get_float(t, "rms_norm_eps", 1e-6f, &c->rms_norm_eps, what));
    G4_TRY(get_float(t, "final_logit_softcapping", 0.0f, &c->final_logit_softcapping, what));
    G4_TRY(get_bool(t, "attention_k_eq_v", false, &c->attention_k_eq_v, what));
    G4_TRY(get_bool(t, "enable_moe_block", false, &c->enable_moe_block, what));
    G4_TRY(get_bool(t, "use_double_wide_mlp", false, &c->use_double_wide_mlp, what));
    G4_TRY(get_bool(t, "tie_word_embeddings", true, &c->tie_word_embeddings, what));

    G4_TRY(parse_eos(c, t, what));
    if (c->num_hidden_layers < 1 || c->num_hidden_layers > G4_MAX_LAYERS)
        return g4_fail(G4_ERR_CONFIG, "%s: num_hidden_layers = %d out of range [1, %d]", what,
                       c->num_hidden_layers, G4_MAX_LAYERS);

    // layer_types: explicit list, or transformers' default 5:1 pattern; the last layer is full.
    const cJSON *lt = cJSON_GetObjectItemCaseSensitive(t, "layer_types");
    if (lt && !cJSON_IsNull(lt)) {
        G4_TRY(parse_layer_types(c, lt, what));
    } else {
        for (int il = 0; il < c->num_hidden_layers; il++) c->layer[il].is_sliding = (il + 1) % 6 != 0;
    }
    c->layer[c->num_hidden_layers - 1].is_sliding = false;

    // Gemma4TextConfig.__post_init__: without per_layer_config, full layers get global_head_dim
    // (default 512) and, on k_eq_v models, num_global_key_value_heads. A per_layer_config, even
    // an empty one (what transformers writes when head_dim == global_head_dim), replaces both:
    // every layer starts from head_dim / num_key_value_heads and takes only its overrides.
    const cJSON *plc = cJSON_GetObjectItemCaseSensitive(t, "per_layer_config");
    const bool has_plc = plc && !cJSON_IsNull(plc);
    if (has_plc) c->global_head_dim = c->head_dim, c->num_global_key_value_heads = 0;
    for (int il = 0; il < c->num_hidden_layers; il++) {
        struct g4_layer *ly = &c->layer[il];
        ly->head_dim = ly->is_sliding ? c->head_dim : c->global_head_dim;
        ly->n_kv_heads = c->num_key_value_heads;
        if (!ly->is_sliding && c->attention_k_eq_v && c->num_global_key_value_heads > 0)
            ly->n_kv_heads = c->num_global_key_value_heads;
        ly->intermediate_size = c->intermediate_size;
    }
    G4_TRY(apply_per_layer_config(plc, c, what));

    const cJSON *rope = cJSON_GetObjectItemCaseSensitive(t, "rope_parameters");
    if (rope && !cJSON_IsNull(rope) && !cJSON_IsObject(rope))
        return g4_fail(G4_ERR_FORMAT, "%s: rope_parameters must be an object", what);
    int first_shared = c->num_hidden_layers - c->num_kv_shared_layers;
    for (int il = 0; il < c->num_hidden_layers; il++) {
        struct g4_layer *ly = &c->layer[il];
        ly->window = ly->is_sliding ? c->sliding_window : 0;
        ly->k_eq_v = c->attention_k_eq_v && !ly->is_sliding;
        // (a width that would overflow when doubled is far above validate()'s limit anyway)
        if (c->use_double_wide_mlp && il >= first_shared && ly->intermediate_size <= (1 << 21))
            ly->intermediate_size *= 2;
        if (ly->head_dim >= 2)
            G4_TRY(parse_rope(rope, ly->is_sliding ? "sliding_attention" : "full_attention", ly,
                              what));
    }
    if (!c->enable_moe_block) c->num_experts = c->top_k_experts = c->moe_intermediate_size = 0;
    return g4_config_finish(c, what);
}

// Gemma3TextConfig rope parameters of one layer type: rope_parameters.<type> when present, else
// the legacy keys (rope_theta / rope_local_base_freq, rope_scaling on full layers), as
// Gemma3TextConfig.convert_rope_params_to_dict merges them (rope_parameters' own theta wins).
static g4_status parse_rope_gemma3(const cJSON *t, const cJSON *rope, bool full,
                                   struct g4_layer *ly, const char *what) {
    const char *type = full ? "full_attention" : "sliding_attention";
    const cJSON *p = rope ? cJSON_GetObjectItemCaseSensitive(rope, type) : NULL;
    if (p && !cJSON_IsNull(p) && !cJSON_IsObject(p))
        return g4_fail(G4_ERR_FORMAT, "%s: rope_parameters.%s must be an object", what, type);
    if (p && cJSON_IsNull(p)) p = NULL;
    const cJSON *scaling = full ? cJSON_GetObjectItemCaseSensitive(t, "rope_scaling") : NULL;
    if (scaling && cJSON_IsNull(scaling)) scaling = NULL;
    if (scaling && !cJSON_IsObject(scaling))
        return g4_fail(G4_ERR_FORMAT, "%s: rope_scaling must be an object or null", what);
    float theta = 0.0f;
    G4_TRY(get_float(t, full ? "rope_theta" : "rope_local_base_freq", full ? 1e6f : 1e4f, &theta,
                     what));
    const char *rt = "default";
    float factor = 1.0f, partial = 1.0f;
    // Later sources override earlier ones: legacy keys, rope_scaling, then rope_parameters.
    const cJSON *src[2] = {scaling, p};
    for (int i = 0; i < 2; i++) {
        if (!src[i]) continue;
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(src[i], "rope_type");
        if (!ty) ty = cJSON_GetObjectItemCaseSensitive(src[i], "type"); // older configs
        if (ty && !cJSON_IsString(ty))
            return g4_fail(G4_ERR_FORMAT, "%s: %s rope_type must be a string", what, type);
        if (ty) rt = ty->valuestring;
        G4_TRY(get_float(src[i], "rope_theta", theta, &theta, what));
        G4_TRY(get_float(src[i], "factor", factor, &factor, what));
        G4_TRY(get_float(src[i], "partial_rotary_factor", partial, &partial, what));
    }
    if (!(theta > 1.0f) || !isfinite(theta))
        return g4_fail(G4_ERR_CONFIG, "%s: %s rope_theta %g out of range", what, type, theta);
    if (partial != 1.0f)
        return g4_fail(G4_ERR_UNSUPPORTED, "%s: %s partial_rotary_factor %g (Gemma 3: only 1.0)",
                       what, type, partial);
    ly->rope_theta = theta;
    ly->n_rope_pairs = ly->head_dim / 2;
    ly->rope_factor = 1.0f;
    if (strcmp(rt, "default") == 0) {
        ly->rope_type = G4_ROPE_DEFAULT; // default RoPE ignores `factor`
    } else if (strcmp(rt, "linear") == 0) {
        if (!(factor > 0.0f) || !isfinite(factor))
            return g4_fail(G4_ERR_CONFIG, "%s: %s linear RoPE factor %g must be > 0", what, type,
                           factor);
        ly->rope_type = G4_ROPE_LINEAR;
        ly->rope_factor = factor;
    } else {
        return g4_fail(G4_ERR_UNSUPPORTED, "%s: rope_type \"%s\" for %s (Gemma 3: default, linear)",
                       what, rt, type);
    }
    return G4_OK;
}

// Gemma3TextConfig (transformers models/gemma3/configuration_gemma3.py): no PLE, KV sharing, MoE,
// k_eq_v, global head dim or v norm; attention scaled by query_pre_attn_scalar^-0.5.
static g4_status parse_text_gemma3(struct g4_config *c, const cJSON *t, const char *what) {
    c->arch = G4_ARCH_GEMMA3;
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(t, "hidden_activation");
    if (act && !cJSON_IsNull(act) &&
        (!cJSON_IsString(act) || strcmp(act->valuestring, "gelu_pytorch_tanh") != 0))
        return g4_fail(G4_ERR_UNSUPPORTED, "%s: hidden_activation must be \"gelu_pytorch_tanh\"",
                       what);
    bool flag = false;
    G4_TRY(get_bool(t, "attention_bias", false, &flag, what));
    if (flag) return g4_fail(G4_ERR_UNSUPPORTED, "%s: attention_bias = true", what);
    G4_TRY(get_bool(t, "use_bidirectional_attention", false, &flag, what));
    if (flag) return g4_fail(G4_ERR_UNSUPPORTED, "%s: use_bidirectional_attention = true", what);

    G4_TRY(get_int(t, "vocab_size", 262208, &c->vocab_size, what));
    G4_TRY(get_int(t, "hidden_size", 2304, &c->hidden_size, what));
    G4_TRY(get_int(t, "intermediate_size", 9216, &c->intermediate_size, what));
    G4_TRY(get_int(t, "num_hidden_layers", 26, &c->num_hidden_layers, what));
    G4_TRY(get_int(t, "num_attention_heads", 8, &c->num_attention_heads, what));
    G4_TRY(get_int(t, "num_key_value_heads", 4, &c->num_key_value_heads, what));
    G4_TRY(get_int(t, "head_dim", 256, &c->head_dim, what));
    c->global_head_dim = c->head_dim;
    G4_TRY(get_int(t, "max_position_embeddings", 131072, &c->max_position_embeddings, what));
    G4_TRY(get_int(t, "sliding_window", 4096, &c->sliding_window, what));
    G4_TRY(get_int(t, "bos_token_id", 2, &c->bos_token_id, what));
    G4_TRY(get_int(t, "pad_token_id", 0, &c->pad_token_id, what));
    G4_TRY(get_float(t, "rms_norm_eps", 1e-6f, &c->rms_norm_eps, what));
    G4_TRY(get_float(t, "final_logit_softcapping", 0.0f, &c->final_logit_softcapping, what));
    float unused_softcap; // see config.h: transformers ignores it for Gemma 3
    G4_TRY(get_float(t, "attn_logit_softcapping", 0.0f, &unused_softcap, what));
    G4_TRY(get_float(t, "query_pre_attn_scalar", 256.0f, &c->query_pre_attn_scalar, what));
    G4_TRY(get_bool(t, "tie_word_embeddings", true, &c->tie_word_embeddings, what));
    G4_TRY(parse_eos(c, t, what));
    if (c->num_hidden_layers < 1 || c->num_hidden_layers > G4_MAX_LAYERS)
        return g4_fail(G4_ERR_CONFIG, "%s: num_hidden_layers = %d out of range [1, %d]", what,
                       c->num_hidden_layers, G4_MAX_LAYERS);

    // layer_types, else every sliding_window_pattern-th layer full; no forced full last layer.
    const cJSON *lt = cJSON_GetObjectItemCaseSensitive(t, "layer_types");
    if (lt && !cJSON_IsNull(lt)) {
        G4_TRY(parse_layer_types(c, lt, what));
    } else {
        int pattern;
        G4_TRY(get_int(t, "_sliding_window_pattern", 6, &pattern, what));
        G4_TRY(get_int(t, "sliding_window_pattern", pattern, &pattern, what));
        if (pattern < 1)
            return g4_fail(G4_ERR_CONFIG, "%s: sliding_window_pattern = %d must be >= 1", what,
                           pattern);
        for (int il = 0; il < c->num_hidden_layers; il++)
            c->layer[il].is_sliding = (il + 1) % pattern != 0;
    }
    const cJSON *rope = cJSON_GetObjectItemCaseSensitive(t, "rope_parameters");
    if (rope && cJSON_IsNull(rope)) rope = NULL;
    if (rope && !cJSON_IsObject(rope))
        return g4_fail(G4_ERR_FORMAT, "%s: rope_parameters must be an object", what);
    for (int il = 0; il < c->num_hidden_layers; il++) {
        struct g4_layer *ly = &c->layer[il];
        ly->head_dim = c->head_dim;
        ly->n_kv_heads = c->num_key_value_heads;
        ly->intermediate_size = c->intermediate_size;
        ly->window = ly->is_sliding ? c->sliding_window : 0;
        if (ly->head_dim >= 2) G4_TRY(parse_rope_gemma3(t, rope, !ly->is_sliding, ly, what));
    }
    return g4_config_finish(c, what);
}

g4_status g4_config_finish(struct g4_config *c, const char *what) {
    if (c->arch == G4_ARCH_GEMMA3 &&
        (c->hidden_size_per_layer_input || c->num_kv_shared_layers || c->enable_moe_block ||
         c->attention_k_eq_v || c->use_double_wide_mlp))
        return g4_fail(G4_ERR_CONFIG, "%s: Gemma 3 has no PLE, KV sharing, MoE, k_eq_v or double-wide MLP",
                       what);
    if (c->arch == G4_ARCH_GEMMA3 &&
        (!(c->query_pre_attn_scalar > 0.0f) || !isfinite(c->query_pre_attn_scalar)))
        return g4_fail(G4_ERR_CONFIG, "%s: query_pre_attn_scalar = %g must be > 0", what,
                       c->query_pre_attn_scalar);
    G4_TRY(validate(c, what));
    G4_TRY(build_kv_table(c, what));
    c->attn_scale = c->arch == G4_ARCH_GEMMA3 ? (float)(1.0 / sqrt((double)c->query_pre_attn_scalar))
                                              : 1.0f;
    c->v_norm = c->arch == G4_ARCH_GEMMA4;
    c->variant = detect_variant(c);
    c->chat_format = c->arch == G4_ARCH_GEMMA3 ? G4_CHAT_FORMAT_GEMMA3 : G4_CHAT_FORMAT_GEMMA4;
    c->chat_gen_prompt = strcmp(c->variant, "26b-a4b") == 0 || strcmp(c->variant, "31b") == 0
                             ? G4_CHAT_GEN_PROMPT_EMPTY_THOUGHT
                             : G4_CHAT_GEN_PROMPT;
    return G4_OK;
}

g4_status g4_config_parse(struct g4_config *cfg, const char *json, size_t n, const char *what) {
    memset(cfg, 0, sizeof *cfg);
    cJSON *root;
    G4_TRY(parse_json_strict(json, n, what, &root));
    g4_status st;
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(root, "text_config");
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (!cJSON_IsObject(root)) {
        st = g4_fail(G4_ERR_FORMAT, "%s: not a JSON object", what);
        goto done;
    }
    if (text && !cJSON_IsNull(text)) {
        if (!cJSON_IsObject(text)) {
            st = g4_fail(G4_ERR_FORMAT, "%s: text_config must be an object", what);
            goto done;
        }
        cfg->is_multimodal = true;
        mt = cJSON_GetObjectItemCaseSensitive(text, "model_type");
    } else {
        text = root;
    }
    // The outer model_type decides for a multimodal config whose text_config lacks one.
    const cJSON *outer = cfg->is_multimodal ? cJSON_GetObjectItemCaseSensitive(root, "model_type") : NULL;
    if (!mt) mt = outer;
    bool gemma3 = cJSON_IsString(mt) && (strcmp(mt->valuestring, "gemma3_text") == 0 ||
                                         strcmp(mt->valuestring, "gemma3") == 0);
    if (mt && !gemma3 && (!cJSON_IsString(mt) || (strcmp(mt->valuestring, "gemma4_text") != 0 &&
                                                   strcmp(mt->valuestring, "gemma4") != 0))) {
        st = g4_fail(G4_ERR_UNSUPPORTED,
                     "%s: model_type \"%s\" is not a Gemma 4 or Gemma 3 text model", what,
                     cJSON_IsString(mt) ? mt->valuestring : "?");
        goto done;
    }
    st = gemma3 ? parse_text_gemma3(cfg, text, what) : parse_text(cfg, text, what);
    // A multimodal checkpoint is loaded by a *ForConditionalGeneration class, whose own config
    // (the top level, default true) decides the LM head tying; text_config's flag is unused.
    if (st == G4_OK && cfg->is_multimodal)
        st = get_bool(root, "tie_word_embeddings", true, &cfg->tie_word_embeddings, what);
done:
    cJSON_Delete(root);
    return st;
}

g4_status g4_config_load(struct g4_config *cfg, const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *buf;
    size_t len;
    g4_status st = g4_file_read(path, 1 << 24, &buf, &len);
    if (st == G4_ERR_IO && access(path, F_OK) != 0 && errno == ENOENT)
        return g4_fail(st, "%s: no such file (is this a model directory?)", path);
    if (st != G4_OK) return st;
    st = g4_config_parse(cfg, buf, len, path);
    free(buf);
    return st;
}

size_t g4_config_kv_bytes(const struct g4_config *cfg, int64_t n_ctx, size_t elem_bytes) {
    size_t total = 0;
    for (int s = 0; s < cfg->n_kv_slots; s++) {
        const struct g4_kv_slot_info *si = &cfg->slot[s];
        int64_t rows = si->is_sliding && si->window < n_ctx ? si->window : n_ctx;
        total += 2 * (size_t)rows * si->n_kv_heads * si->head_dim * elem_bytes;
    }
    return total;
}
