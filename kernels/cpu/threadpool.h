// A small persistent thread pool for the CPU engine: n_threads - 1 workers plus the calling
// thread run one parallel job at a time and the caller waits for all of them. No allocation
// per job. Owned by one session (one thread submits at a time).
#ifndef G4_THREADPOOL_H
#define G4_THREADPOOL_H

#include "status.h"

struct g4_pool;

// Job body: part `i` of `n` (i in [0, n)).
typedef void (*g4_pool_fn)(void *ctx, int i, int n);

// n_threads <= 1 creates no workers (jobs run on the caller).
g4_status g4_pool_init(struct g4_pool **out, int n_threads);
void g4_pool_free(struct g4_pool *p); // NULL fine
// Number of parts jobs are split into (1 for NULL).
int g4_pool_size(const struct g4_pool *p);
// Runs fn(ctx, i, n) for every i in [0, n) with n = g4_pool_size(p); returns when all are done.
// p may be NULL (runs fn(ctx, 0, 1)).
void g4_pool_run(struct g4_pool *p, g4_pool_fn fn, void *ctx);


#endif
