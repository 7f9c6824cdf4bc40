// Checked allocation helpers; see mem.h.
#include "mem.h"

#include <stdatomic.h>
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

static _Atomic uint64_t budget, used;

void g4_budget_set(uint64_t bytes) { atomic_store(&budget, bytes); }

uint64_t g4_budget_used(void) { return atomic_load(&used); }

g4_status g4_budget_reserve(uint64_t bytes, const char *what) {
    uint64_t cur = atomic_load(&used);
    for (;;) {
        uint64_t limit = atomic_load(&budget);
        if (limit && (bytes > limit || cur > limit - bytes))
            return g4_fail(G4_ERR_OUT_OF_MEMORY,
                           "%s needs %llu bytes; the memory budget is %llu bytes with %llu in use",
                           what, (unsigned long long)bytes, (unsigned long long)limit,
                           (unsigned long long)cur);
        if (atomic_compare_exchange_weak(&used, &cur, cur + bytes)) return G4_OK;
    }
}

void g4_budget_release(uint64_t bytes) { atomic_fetch_sub(&used, bytes); }
