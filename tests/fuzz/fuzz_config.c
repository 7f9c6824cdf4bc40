// libFuzzer target: g4_config_parse on arbitrary bytes (config.json text, not NUL-terminated).
// A successful parse must give a self-consistent layer table.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

static struct g4_config cfg; // large (two 256-entry tables): keep it off the stack

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    // Exact-size heap copy so ASan sees any read past the end (the parser must not rely on a NUL).
    char *text = malloc(size ? size : 1);
    if (!text) return 0;
    if (size) memcpy(text, data, size);
    memset(&cfg, 0xA5, sizeof cfg);
    g4_status s = g4_config_parse(&cfg, text, size, "fuzz");
    if (s == G4_OK) {
        int L = cfg.num_hidden_layers;
        if (L <= 0 || L > G4_MAX_LAYERS) abort();
        if (cfg.n_kv_slots <= 0 || cfg.n_kv_slots > L) abort();
        for (int i = 0; i < L; i++) {
            const struct g4_layer *l = &cfg.layer[i];
            if (l->kv_slot < 0 || l->kv_slot >= cfg.n_kv_slots) abort();
            if (l->kv_donor < 0 || l->kv_donor >= L) abort();
            if (l->head_dim <= 0 || l->n_kv_heads <= 0) abort();
        }
        (void)g4_config_kv_bytes(&cfg, 4096, 2);
        (void)g4_config_kv_bytes(&cfg, INT64_MAX / 4, 4);
    }
    free(text);
    return 0;
}
