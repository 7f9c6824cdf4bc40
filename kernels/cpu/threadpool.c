// Persistent worker threads with a generation counter; see threadpool.h. Workers spin briefly
// before sleeping on a condition variable, since decode dispatches hundreds of short jobs per
// token and a wake-up through the kernel costs more than the job.
#define _GNU_SOURCE // sched_getaffinity, CPU_* macros
#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "mem.h"

struct g4_pool {
    int n;                     // parts per job (workers + caller)
    pthread_t *threads;        // (n - 1,)
    int n_started;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    atomic_uint generation;    // bumped for every job
    atomic_int remaining;      // workers still running the current job
    atomic_bool stop;
    g4_pool_fn fn;
    void *ctx;
};

struct worker_arg {
    struct g4_pool *p;
    int index;
};

enum { SPINS = 20000 };

static void *worker(void *arg) {
    struct g4_pool *p = ((struct worker_arg *)arg)->p;
    const int index = ((struct worker_arg *)arg)->index;
    free(arg);
    unsigned seen = 0;
    for (;;) {
        unsigned gen;
        int spins = 0;
        while ((gen = atomic_load(&p->generation)) == seen && !atomic_load(&p->stop)) {
            if (++spins < SPINS) {
                if (spins % 64 == 0) sched_yield(); // lets an oversubscribed machine progress
                continue;
            }
            pthread_mutex_lock(&p->lock);
            while (atomic_load(&p->generation) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->wake, &p->lock);
            pthread_mutex_unlock(&p->lock);
        }
        if (atomic_load(&p->stop)) return NULL;
        seen = gen;
        p->fn(p->ctx, index, p->n);
        atomic_fetch_sub(&p->remaining, 1);
    }
}

g4_status g4_pool_init(struct g4_pool **out, int n_threads) {
    *out = NULL;
    struct g4_pool *p;
    G4_TRY(g4_calloc((void **)&p, 1, sizeof *p, "thread pool"));
    p->n = n_threads > 1 ? n_threads : 1;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    atomic_init(&p->generation, 0);
    atomic_init(&p->remaining, 0);
    atomic_init(&p->stop, false);
    g4_status st = g4_calloc((void **)&p->threads, (size_t)p->n, sizeof(pthread_t), "threads");
    for (int i = 1; st == G4_OK && i < p->n; i++) {
        struct worker_arg *a = malloc(sizeof *a);
        if (!a) {
            st = g4_fail(G4_ERR_OUT_OF_MEMORY, "thread pool");
            break;
        }
        *a = (struct worker_arg){p, i};
        if (pthread_create(&p->threads[i - 1], NULL, worker, a) != 0) {
            free(a);
            st = g4_fail(G4_ERR_OUT_OF_MEMORY, "thread pool: cannot start thread %d of %d", i, p->n);
            break;
        }
        p->n_started++;
    }
    if (st != G4_OK) {
        g4_pool_free(p);
        return st;
    }
    *out = p;
    return G4_OK;
}

void g4_pool_free(struct g4_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->n_started; i++) pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p->threads);
    free(p);
}

int g4_pool_size(const struct g4_pool *p) { return p ? p->n : 1; }

void g4_pool_run(struct g4_pool *p, g4_pool_fn fn, void *ctx) {
    if (!p || p->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    atomic_store(&p->remaining, p->n - 1);
    pthread_mutex_lock(&p->lock);
    atomic_fetch_add(&p->generation, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    fn(ctx, 0, p->n);
    for (unsigned spins = 0; atomic_load(&p->remaining) > 0; spins++)
        if (spins % 64 == 63) sched_yield();
}

// Physical cores among the CPUs this process may run on: distinct (package, core) pairs from
// sysfs topology. SMT siblings share a core's FMA units and caches, so a second thread per core
// only adds contention to these bandwidth- and FMA-bound kernels.
