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

#endif
