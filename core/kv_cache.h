// The session's K/V cache: one buffer per slot (not per layer), laid out from the config's slot
// table. Full-attention slots are linear (n_ctx rows); sliding slots are rings of
// min(sliding_window, n_ctx) rows indexed by position % capacity, so their memory does not grow
// with context. KV-shared layers read their donor's slot and own nothing.
//
// A step of n tokens at positions [pos0, pos0 + n) writes its new rows first and commits them
// after the whole step: full slots write straight into their rows; sliding slots write into a
// staging area of n_batch rows and g4_kv_cache_commit copies the last min(n, window) of them into
// the ring. Queries of the step therefore always see the old window and the new rows, so a
// prefill chunk longer than the window is exact.
#ifndef G4_KV_CACHE_H
#define G4_KV_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

// Where attention finds K/V rows for one cache slot. Rows for positions
// [new_pos0, new_pos0 + n_new) (this step's tokens) are in new_k/new_v; older positions are in
// k/v at row (ring ? p % capacity : p). Row layout: (n_kv_heads, head_dim).
struct g4_kv_view {
    const float *k, *v;         // (capacity, n_kv_heads, head_dim)
    const float *new_k, *new_v; // (n_new, n_kv_heads, head_dim)
    int64_t new_pos0;
    int capacity;
    bool ring;
    int n_kv_heads, head_dim;
};

struct g4_kv_slot {
    float *k, *v;             // (capacity, n_kv_heads, head_dim)
    float *stage_k, *stage_v; // (n_batch, n_kv_heads, head_dim); sliding slots only
    int capacity;
    bool ring;
    int n_kv_heads, head_dim;
};

struct g4_kv_cache {
    int n_slots;
    int64_t n_ctx;
    int n_batch;                  // most tokens one step may write
    size_t cache_bytes;           // bytes of K/V rows (what g4_config_kv_bytes predicts)
    float *buf;                   // one allocation: all slots' K/V, then all staging areas
    struct g4_kv_slot slot[G4_MAX_LAYERS];
};

g4_status g4_kv_cache_init(struct g4_kv_cache *kv, const struct g4_config *cfg, int64_t n_ctx,
                           int n_batch);
void g4_kv_cache_free(struct g4_kv_cache *kv); // zeroed struct fine

// Where the step [pos0, pos0 + n) writes new K (or V) rows of slot s: (n, n_kv_heads, head_dim).
float *g4_kv_cache_new_k(struct g4_kv_cache *kv, int s, int64_t pos0);
float *g4_kv_cache_new_v(struct g4_kv_cache *kv, int s, int64_t pos0);
// The attention view of slot s during the step starting at pos0.
struct g4_kv_view g4_kv_cache_view(const struct g4_kv_cache *kv, int s, int64_t pos0);
// Makes the step's rows part of the cache (copies staged sliding rows into their rings).
void g4_kv_cache_commit(struct g4_kv_cache *kv, int64_t pos0, int n);

#endif
