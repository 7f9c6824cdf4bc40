// Checked allocation helpers; see mem.h.
#include "mem.h"

#include <stdlib.h>

g4_status g4_calloc(void **out, size_t n, size_t size, const char *what) {
    size_t bytes;
    *out = NULL;
    if (!g4_mul_size(n, size, &bytes))
        return g4_fail(G4_ERR_OUT_OF_MEMORY, "%s: size %zu x %zu overflows", what, n, size);
    *out = calloc(n ? n : 1, size ? size : 1);
    if (!*out) return g4_fail(G4_ERR_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes", what, bytes);
    return G4_OK;
}
