// Checked allocation and overflow-checked size arithmetic. Never exits: failures are statuses.
#ifndef G4_MEM_H
#define G4_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

// *out = a * b; false on overflow.
static inline bool g4_mul_size(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool g4_add_size(size_t a, size_t b, size_t *out) {
    return !__builtin_add_overflow(a, b, out);
}

// calloc(n, size) with a status: *out is NULL on failure and the message names `what`.
g4_status g4_calloc(void **out, size_t n, size_t size, const char *what);

// Process-wide memory budget (gemma4_set_memory_budget): model weights and session caches are
// reserved against it before anything is allocated. 0 = no limit. Thread-safe.
void g4_budget_set(uint64_t bytes);
uint64_t g4_budget_used(void);
// Reserves bytes or fails with G4_ERR_OUT_OF_MEMORY naming `what`, the budget and what is in use.
g4_status g4_budget_reserve(uint64_t bytes, const char *what);
void g4_budget_release(uint64_t bytes);

#endif
