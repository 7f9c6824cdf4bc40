// Slot-based K/V cache with rings for sliding layers; see kv_cache.h.
#include "kv_cache.h"

#include <stdlib.h>
#include <string.h>

#include "mem.h"

g4_status g4_kv_cache_init(struct g4_kv_cache *kv, const struct g4_config *cfg, int64_t n_ctx,
                           int n_batch) {
    memset(kv, 0, sizeof *kv);
    if (n_ctx < 1 || n_batch < 1)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "kv cache: n_ctx %lld and n_batch %d must be >= 1",
                       (long long)n_ctx, n_batch);
    kv->n_slots = cfg->n_kv_slots;
    kv->n_ctx = n_ctx;
    kv->n_batch = n_batch;
    // Sizes first (overflow-checked), then one allocation carved into K/V rows and staging.
    size_t total = 0, stage_total = 0;
    for (int s = 0; s < kv->n_slots; s++) {
        const struct g4_kv_slot_info *si = &cfg->slot[s];
        struct g4_kv_slot *sl = &kv->slot[s];
        sl->ring = si->is_sliding && si->window < n_ctx;
        sl->capacity = sl->ring ? si->window : (int)n_ctx;
        sl->n_kv_heads = si->n_kv_heads;
        sl->head_dim = si->head_dim;
        size_t row = (size_t)si->n_kv_heads * si->head_dim, rows_floats;
        if (!g4_mul_size(row, (size_t)sl->capacity, &rows_floats) ||
            !g4_add_size(total, 2 * rows_floats, &total))
            return g4_fail(G4_ERR_OUT_OF_MEMORY, "kv cache: size overflows");
        if (sl->ring) stage_total += 2 * row * (size_t)n_batch;
    }
    if (!g4_mul_size(total, sizeof(float), &kv->cache_bytes))
        return g4_fail(G4_ERR_OUT_OF_MEMORY, "kv cache: size overflows");
    G4_TRY(g4_calloc((void **)&kv->buf, total + stage_total, sizeof(float), "kv cache"));
    float *p = kv->buf;
    for (int s = 0; s < kv->n_slots; s++) {
        struct g4_kv_slot *sl = &kv->slot[s];
        size_t rows_floats = (size_t)sl->n_kv_heads * sl->head_dim * sl->capacity;
        sl->k = p;
        sl->v = p + rows_floats;
        p += 2 * rows_floats;
    }
    for (int s = 0; s < kv->n_slots; s++) {
        struct g4_kv_slot *sl = &kv->slot[s];
        if (!sl->ring) continue;
        size_t n = (size_t)sl->n_kv_heads * sl->head_dim * n_batch;
        sl->stage_k = p;
        sl->stage_v = p + n;
        p += 2 * n;
    }
    return G4_OK;
}

void g4_kv_cache_free(struct g4_kv_cache *kv) {
    if (!kv) return;
    free(kv->buf);
    memset(kv, 0, sizeof *kv);
}

static float *new_rows(struct g4_kv_cache *kv, int s, int64_t pos0, bool is_v) {
    struct g4_kv_slot *sl = &kv->slot[s];
    if (sl->ring) return is_v ? sl->stage_v : sl->stage_k;
    return (is_v ? sl->v : sl->k) + (size_t)pos0 * sl->n_kv_heads * sl->head_dim;
}

float *g4_kv_cache_new_k(struct g4_kv_cache *kv, int s, int64_t pos0) {
    return new_rows(kv, s, pos0, false);
}

float *g4_kv_cache_new_v(struct g4_kv_cache *kv, int s, int64_t pos0) {
    return new_rows(kv, s, pos0, true);
}

struct g4_kv_view g4_kv_cache_view(const struct g4_kv_cache *kv, int s, int64_t pos0) {
    const struct g4_kv_slot *sl = &kv->slot[s];
    struct g4_kv_view v = {sl->k, sl->v, NULL, NULL, pos0, sl->capacity, sl->ring, sl->n_kv_heads,
                           sl->head_dim};
    v.new_k = new_rows((struct g4_kv_cache *)kv, s, pos0, false);
    v.new_v = new_rows((struct g4_kv_cache *)kv, s, pos0, true);
    return v;
}

void g4_kv_cache_commit(struct g4_kv_cache *kv, int64_t pos0, int n) {
    for (int s = 0; s < kv->n_slots; s++) {
        struct g4_kv_slot *sl = &kv->slot[s];
        if (!sl->ring) continue;
        size_t row = (size_t)sl->n_kv_heads * sl->head_dim;
        int first = n > sl->capacity ? n - sl->capacity : 0;
        for (int i = first; i < n; i++) {
            size_t dst = (size_t)((pos0 + i) % sl->capacity) * row;
            memcpy(sl->k + dst, sl->stage_k + (size_t)i * row, row * sizeof(float));
            memcpy(sl->v + dst, sl->stage_v + (size_t)i * row, row * sizeof(float));
        }
    }
}
