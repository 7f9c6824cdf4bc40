// libFuzzer target: g4_gguf_parse on arbitrary bytes (a whole GGUF file image). A successful
// parse must yield tensors that g4_gguf_find_tensor finds, whose data lies inside the buffer with
// n_bytes consistent with ne and the dtype, no two overlapping, and metadata whose every element
// the accessors read (strings inside the buffer). On error the struct must be zeroed. Parsed files
// then go through the config from metadata, the tensor table and the binder (gguf_config.c,
// gguf_weights.c, weights.c): any status, no crash, leak or out-of-bounds read.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "gguf_config.h"
#include "gguf_weights.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    // Own exact-size copy, so ASan flags any read past the end (libFuzzer's buffer is too).
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    struct g4_gguf g;
    g4_status s = g4_gguf_parse(&g, buf, size, "fuzz");
    if (s != G4_OK) {
        if (g.kv || g.tensors || g.n_kv || g.n_tensors) abort(); // "on error *g is zeroed"
        free(buf);
        return 0;
    }
    if (g.alignment == 0 || (g.alignment & (g.alignment - 1)) || g.data_start > size) abort();
    for (int64_t i = 0; i < g.n_tensors; i++) {
        const struct g4_gguf_tensor *t = &g.tensors[i];
        if (g4_gguf_find_tensor(&g, t->name) != t) abort();
        if (t->n_dims < 1 || t->n_dims > G4_GGUF_MAX_DIMS || g4_dtype_block(t->dtype) == 0) abort();
        size_t bytes = g4_dtype_row_bytes(t->dtype, t->ne[0]);
        for (int d = 1; d < G4_GGUF_MAX_DIMS; d++) bytes *= (size_t)t->ne[d];
        if (t->ne[0] && bytes != t->n_bytes) abort();
        const uint8_t *p = t->data;
        if (p < buf + g.data_start || (size_t)(p - buf) > size || t->n_bytes > size - (size_t)(p - buf))
            abort();
        if (t->offset % g.alignment) abort();
        if (i > 0 && strcmp(g.tensors[i - 1].name, t->name) >= 0) abort(); // sorted, unique
        for (int64_t j = 0; j < i; j++) { // no overlaps (inputs are small: quadratic is fine)
            const struct g4_gguf_tensor *u = &g.tensors[j];
            if (t->n_bytes && u->n_bytes && t->offset < u->offset + u->n_bytes &&
                u->offset < t->offset + t->n_bytes)
                abort();
        }
    }
    volatile uint64_t sink = 0;
    for (int64_t i = 0; i < g.n_kv; i++) {
        const struct g4_gguf_kv *kv = &g.kv[i];
        if (g4_gguf_find_kv(&g, kv->key) != kv) abort(); // keys are unique
        for (uint64_t e = 0; e < kv->n; e++) {
            int64_t v;
            double d;
            bool b;
            struct g4_gguf_str str;
            if (g4_gguf_kv_int(kv, e, &v)) sink += (uint64_t)v;
            if (g4_gguf_kv_float(kv, e, &d)) sink += (uint64_t)(d == d);
            if (g4_gguf_kv_bool(kv, e, &b)) sink += b;
            if (g4_gguf_kv_str(kv, e, &str)) {
                const uint8_t *p = (const uint8_t *)str.p;
                if (p < buf || (size_t)(p - buf) > size || str.n > size - (size_t)(p - buf)) abort();
                if (str.n) sink += p[str.n - 1];
            }
        }
    }
    (void)sink;
    static struct g4_config cfg;
    if (g4_gguf_config_load(&cfg, &g, "fuzz") == G4_OK) {
        struct g4_safetensors table;
        if (g4_gguf_weights_table(&table, &g, "fuzz") == G4_OK) {
            static struct g4_weights w;
            if (g4_gguf_weights_bind(&w, &cfg, &table, "fuzz") == G4_OK) g4_weights_free(&w);
            g4_safetensors_free(&table);
        }
    }
    g4_gguf_free(&g);
    free(buf);
    return 0;
}
