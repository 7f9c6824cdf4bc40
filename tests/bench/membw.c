// membw: measures this machine's memory bandwidth with N threads, for the decode limit in
// tests/bench/cpu_bench.sh. Each thread works on its own contiguous slice of two buffers far
// larger than the caches (first touched by that thread), all threads start together after a
// barrier, and the best of --reps runs is kept.
//   read:   sums 64-bit words of the source (read-only stream, what a decode step does with the
//           weights); GB/s = bytes read / s
//   memcpy: memcpy source -> destination; GB/s = (bytes read + bytes written) / s
// GB = 1e9 bytes. Prints one JSON line: {"threads":N,"bytes":B,"read_gbs":R,"memcpy_gbs":C}.
//
//   membw [--threads N] [--mib 1024] [--reps 5]
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct worker {
    pthread_t thread;
    pthread_barrier_t *start, *done;
    uint64_t *src, *dst; // this thread's slices, n_words each
    size_t n_words;
    int reps;
    uint64_t sink;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// Eight independent accumulators so the loop is bound by loads, not by an add chain.
static uint64_t sum_words(const uint64_t *p, size_t n) {
    uint64_t a[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) a[k] += p[i + k];
    for (; i < n; i++) a[0] += p[i];
    return a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
}

static void *run(void *arg) {
    struct worker *w = arg;
    for (size_t i = 0; i < w->n_words; i++) w->src[i] = i, w->dst[i] = 0; // first touch
    for (int r = 0; r < 2 * w->reps; r++) {
        pthread_barrier_wait(w->start);
        if (r % 2 == 0) w->sink += sum_words(w->src, w->n_words);
        else memcpy(w->dst, w->src, w->n_words * sizeof *w->src);
        pthread_barrier_wait(w->done);
    }
    return NULL;
}

int main(int argc, char **argv) {
    int n_threads = 2, reps = 5;
    size_t mib = 1024;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) n_threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--mib")) mib = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: membw [--threads N] [--mib 1024] [--reps 5]\n");
            return 2;
        }
    }
    if (n_threads < 1 || reps < 1 || mib < 64) return 2;
    size_t n_words = mib * 1024 * 1024 / sizeof(uint64_t) / (size_t)n_threads;
    n_words -= n_words % 8;
    size_t bytes = n_words * sizeof(uint64_t) * (size_t)n_threads;
    uint64_t *src = aligned_alloc(4096, bytes), *dst = aligned_alloc(4096, bytes);
    struct worker *w = calloc((size_t)n_threads, sizeof *w);
    pthread_barrier_t start, done;
    if (!src || !dst || !w) return 1;
    pthread_barrier_init(&start, NULL, (unsigned)n_threads + 1);
    pthread_barrier_init(&done, NULL, (unsigned)n_threads + 1);
    for (int t = 0; t < n_threads; t++) {
        w[t] = (struct worker){.start = &start, .done = &done, .src = src + (size_t)t * n_words,
                               .dst = dst + (size_t)t * n_words, .n_words = n_words, .reps = reps};
        if (pthread_create(&w[t].thread, NULL, run, &w[t])) return 1;
    }
    double best_read = 1e30, best_copy = 1e30;
    for (int r = 0; r < 2 * reps; r++) {
        pthread_barrier_wait(&start);
        double t0 = now_s();
        pthread_barrier_wait(&done);
        double dt = now_s() - t0;
        if (r % 2 == 0 && dt < best_read) best_read = dt;
        if (r % 2 == 1 && dt < best_copy) best_copy = dt;
    }
    uint64_t sink = 0;
    for (int t = 0; t < n_threads; t++) {
        pthread_join(w[t].thread, NULL);
        sink += w[t].sink;
    }
    printf("{\"threads\":%d,\"bytes\":%zu,\"read_gbs\":%.2f,\"memcpy_gbs\":%.2f,\"sink\":%llu}\n",
           n_threads, bytes, bytes / best_read / 1e9, 2.0 * bytes / best_copy / 1e9,
           (unsigned long long)(sink & 0xff));
    free(src);
    free(dst);
    free(w);
    return 0;
}
