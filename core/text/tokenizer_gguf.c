// GGUF tokenizer metadata -> struct g4_tokenizer (see tokenizer_gguf.h). Reads and checks the
// tokenizer.ggml.* keys, fills the vocabulary (and merges) of a struct g4_bpe, and hands it to
// g4_tokenizer_new_gguf, which adds Gemma's normalizer and decoder.
#include "tokenizer_gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"
#include "mem.h"

// As tokenizer.c: dense id tables, so ids are capped (config.c caps vocab_size the same way).
enum { MAX_IDS = 1 << 24 };

// llama.cpp's llama_token_type
enum { TYPE_NORMAL = 1, TYPE_UNKNOWN = 2, TYPE_CONTROL = 3, TYPE_USER_DEFINED = 4,
       TYPE_UNUSED = 5, TYPE_BYTE = 6 };

static const struct g4_gguf_kv *array_of(const struct g4_gguf *g, const char *key,
                                         enum g4_gguf_type elem) {
    const struct g4_gguf_kv *kv = g4_gguf_find_kv(g, key);
    return kv && kv->type == G4_GGUF_ARRAY && kv->elem_type == elem ? kv : NULL;
}

// Optional integer id key: -1 when absent; FORMAT when present but not an id below n.
static g4_status token_id(const struct g4_gguf *g, const char *key, int64_t n, int32_t *out) {
    const struct g4_gguf_kv *kv = g4_gguf_find_kv(g, key);
    int64_t v;
    *out = -1;
    if (!kv) return G4_OK;
    if (kv->type == G4_GGUF_ARRAY || !g4_gguf_kv_int(kv, 0, &v))
        return g4_fail(G4_ERR_FORMAT, "%s is not an integer", key);
    if (v < 0 || v >= n) return g4_fail(G4_ERR_FORMAT, "%s = %lld is outside the %lld tokens", key, (long long)v, (long long)n);
    *out = (int32_t)v;
    return G4_OK;
}

// Optional bool key: dflt when absent.
static g4_status flag(const struct g4_gguf *g, const char *key, bool dflt, bool *out) {
    const struct g4_gguf_kv *kv = g4_gguf_find_kv(g, key);
    *out = dflt;
    if (!kv) return G4_OK;
    if (kv->type == G4_GGUF_ARRAY || !g4_gguf_kv_bool(kv, 0, out))
        return g4_fail(G4_ERR_FORMAT, "%s is not a bool", key);
    return G4_OK;
}

static g4_status load(struct g4_tokenizer **out, const struct g4_gguf *g) {
    const struct g4_gguf_kv *model = g4_gguf_find_kv(g, "tokenizer.ggml.model");
    struct g4_gguf_str name;
    if (!model) return G4_OK;
    if (model->type == G4_GGUF_ARRAY || !g4_gguf_kv_str(model, 0, &name))
        return g4_fail(G4_ERR_FORMAT, "tokenizer.ggml.model is not a string");
    bool spm = name.n == 5 && memcmp(name.p, "llama", 5) == 0;
    bool bpe_model = name.n == 6 && memcmp(name.p, "gemma4", 6) == 0;
    if (!spm && !bpe_model)
        return g4_fail(G4_ERR_UNSUPPORTED, "tokenizer.ggml.model \"%.*s\" (gemma4 reads \"llama\" "
                       "(Gemma 3) and \"gemma4\")", (int)(name.n > 64 ? 64 : name.n), name.p);
    const struct g4_gguf_kv *tokens = array_of(g, "tokenizer.ggml.tokens", G4_GGUF_STRING);
    if (!tokens || tokens->n == 0)
        return g4_fail(G4_ERR_FORMAT, "tokenizer.ggml.tokens is missing or not an array of strings");
    if (tokens->n > MAX_IDS)
        return g4_fail(G4_ERR_UNSUPPORTED, "tokenizer.ggml.tokens holds %llu tokens (at most %d)",
                       (unsigned long long)tokens->n, MAX_IDS);
    const int64_t n = (int64_t)tokens->n;
    const struct g4_gguf_kv *types = g4_gguf_find_kv(g, "tokenizer.ggml.token_type");
    if (types && (types->type != G4_GGUF_ARRAY || (int64_t)types->n != n))
        return g4_fail(G4_ERR_FORMAT, "tokenizer.ggml.token_type is not an array of %lld types", (long long)n);
    const struct g4_gguf_kv *scores_kv = g4_gguf_find_kv(g, "tokenizer.ggml.scores");
    if (spm && (!scores_kv || scores_kv->type != G4_GGUF_ARRAY || (int64_t)scores_kv->n != n))
        return g4_fail(G4_ERR_FORMAT, "tokenizer.ggml.scores is not an array of %lld scores "
                       "(a \"llama\" vocabulary ranks its merges by them)", (long long)n);
    const struct g4_gguf_kv *merges = NULL;
    if (bpe_model && !(merges = array_of(g, "tokenizer.ggml.merges", G4_GGUF_STRING)))
        return g4_fail(G4_ERR_FORMAT, "tokenizer.ggml.merges is missing or not an array of strings "
                       "(a \"gemma4\" vocabulary is BPE)");
    bool add_bos, add_space;
    G4_TRY(flag(g, "tokenizer.ggml.add_bos_token", true, &add_bos));
    G4_TRY(flag(g, "tokenizer.ggml.add_space_prefix", spm, &add_space));
    if (add_space)
        return g4_fail(G4_ERR_UNSUPPORTED, "tokenizer.ggml.add_space_prefix is %s (no Gemma "
                       "tokenizer prefixes a space)", g4_gguf_find_kv(g, "tokenizer.ggml.add_space_prefix") ? "true" : "absent, i.e. true");
    int32_t bos, unk;
    G4_TRY(token_id(g, "tokenizer.ggml.bos_token_id", n, &bos));
    G4_TRY(token_id(g, "tokenizer.ggml.unknown_token_id", n, &unk));

    size_t pool = 0;
    for (int64_t i = 0; i < n; i++) {
        if (tokens->strs[i].n > UINT32_MAX - pool)
            return g4_fail(G4_ERR_UNSUPPORTED, "tokenizer.ggml.tokens: over 4 GB of token text");
        pool += (size_t)tokens->strs[i].n;
    }
    struct g4_bpe bpe;
    float *scores = NULL;
    int32_t *added = NULL;
    bool *special = NULL;
    size_t n_added = 0;
    g4_status st = g4_bpe_init(&bpe, (int32_t)n, (size_t)n, pool, merges ? (size_t)merges->n : 0);
    for (int64_t i = 0; st == G4_OK && i < n; i++) {
        const struct g4_gguf_str *t = &tokens->strs[i];
        if ((st = g4_bpe_set(&bpe, (int32_t)i, t->p, (size_t)t->n)) != G4_OK) {
            char msg[256];
            snprintf(msg, sizeof msg, "%s", g4_last_error()); // g4_fail reuses that buffer
            st = g4_fail(st, "tokenizer.ggml.tokens[%lld] \"%.*s\": %s", (long long)i,
                         (int)(t->n > 64 ? 64 : t->n), t->p, msg);
        }
    }
    if (st == G4_OK) {
        g4_bpe_index(&bpe);
        bpe.byte_fallback = bpe.fuse_unk = true; // Gemma's tokenizer.json, and llama.cpp's SPM
        bpe.unk_id = unk;
    }
    for (uint64_t i = 0; st == G4_OK && merges && i < merges->n; i++) {
        // llama.cpp splits "left right" at the first space after the first byte
        const struct g4_gguf_str *m = &merges->strs[i];
        const char *sp = m->n > 1 ? memchr(m->p + 1, ' ', (size_t)m->n - 1) : NULL;
        int32_t l = sp ? g4_bpe_find(&bpe, m->p, (size_t)(sp - m->p)) : -1;
        int32_t r = sp ? g4_bpe_find(&bpe, sp + 1, (size_t)(m->p + m->n - sp - 1)) : -1;
        if (l < 0 || r < 0) {
            st = g4_fail(G4_ERR_FORMAT, "tokenizer.ggml.merges[%llu] \"%.*s\" is not two vocabulary "
                         "tokens joined by a space", (unsigned long long)i, (int)(m->n > 64 ? 64 : m->n), m->p);
            break;
        }
        st = g4_bpe_add_merge(&bpe, l, r, (uint32_t)i);
    }
    if (st == G4_OK && spm) {
        st = g4_calloc((void **)&scores, (size_t)n, sizeof *scores, "token scores");
        for (int64_t i = 0; st == G4_OK && i < n; i++) {
            double v;
            if (!g4_gguf_kv_float(scores_kv, (uint64_t)i, &v))
                st = g4_fail(G4_ERR_FORMAT, "tokenizer.ggml.scores[%lld] is not a float", (long long)i);
            else
                scores[i] = (float)v;
        }
    }
    if (st == G4_OK) st = g4_calloc((void **)&added, (size_t)n, sizeof *added, "added tokens");
    if (st == G4_OK) st = g4_calloc((void **)&special, (size_t)n, sizeof *special, "added tokens");
    for (int64_t i = 0; st == G4_OK && types && i < n; i++) {
        int64_t t;
        if (!g4_gguf_kv_int(types, (uint64_t)i, &t) || t < TYPE_NORMAL || t > TYPE_BYTE) {
            st = g4_fail(G4_ERR_FORMAT, "tokenizer.ggml.token_type[%lld] is not a token type 1-6", (long long)i);
            break;
        }
        if (t == TYPE_CONTROL || t == TYPE_UNKNOWN || t == TYPE_USER_DEFINED) {
            added[n_added] = (int32_t)i;
            special[n_added++] = t != TYPE_USER_DEFINED;
        }
    }
    if (st != G4_OK) {
        g4_bpe_free(&bpe);
        free(scores);
    } else {
        st = g4_tokenizer_new_gguf(out, &bpe, scores, added, special, n_added, add_bos ? bos : -1);
    }
    free(added);
    free(special);
    return st;
}

g4_status g4_tokenizer_gguf_load(struct g4_tokenizer **out, const struct g4_gguf *g,
                                 const char *what) {
    if (!out || !g) return g4_fail(G4_ERR_INVALID_ARGUMENT, "GGUF tokenizer: NULL argument");
    *out = NULL;
    g4_status st = load(out, g);
    if (st != G4_OK && what) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", g4_last_error());
        g4_fail(st, "%s: %s", what, msg);
    }
    return st;
}
