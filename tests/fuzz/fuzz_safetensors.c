// libFuzzer target: g4_safetensors_parse on arbitrary bytes (a whole safetensors file image).
// A successful parse must yield tensors that g4_safetensors_find finds, whose data lies inside
// the buffer; parsing the same image again as a second shard must fail (duplicate names).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    // Own copy, 8-byte aligned like an mmap base (libFuzzer's buffer is malloc'd, but make the
    // alignment assumption explicit).
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    struct g4_safetensors st = {0};
    g4_status s = g4_safetensors_parse(&st, buf, size, 0, "fuzz");
    if (s == G4_OK) {
        for (int i = 0; i < st.n_tensors; i++) {
            const struct g4_tensor *t = &st.tensors[i];
            if (g4_safetensors_find(&st, t->name) == NULL) abort();
            const uint8_t *p = t->data;
            if (t->n_bytes && (p < buf || p + t->n_bytes > buf + size)) abort();
            if (g4_dtype_size(t->dtype) == 0 || t->n_dims < 0 || t->n_dims > G4_MAX_DIMS) abort();
        }
        int before = st.n_tensors;
        s = g4_safetensors_parse(&st, buf, size, 1, "fuzz2");
        if (before > 0 && s == G4_OK) abort(); // every name is now present twice
        if (s != G4_OK && st.n_tensors != before) abort(); // error leaves st as it was
    } else if (st.n_tensors != 0 || st.tensors != NULL) {
        abort(); // "on error st keeps what it had before the call"
    }
    g4_safetensors_free(&st);
    free(buf);
    return 0;
}
