// gemv_bench: one-token matrix products (decode) of Gemma 4 E2B's shapes with bf16 weights,
// through the CPU engine's internal API on a pool of --threads threads, for tuning
// kernels/cpu/matmul_cpu.c and for the per-op accounting in docs/performance.md.
// Each shape gets enough copies of its matrix to fill --mib MiB (far beyond the caches), and the
// copies are walked in turn, so every call streams its weights from memory as a decode step does.
// GB/s = weight bytes / s of the median call; also the cost of one empty pool dispatch.
// Prints one JSON line per shape and precision (fp32: g4_matmul_cpu; bf16: g4_matmul_cpu_bf16act).
//
//   gemv_bench [--threads 2] [--mib 1024] [--reps 3] [--shapes 2048x1536,...] [--cpu-time 0|1]
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dtype.h"
#include "matmul_cpu.h"
#include "threadpool.h"

// --cpu-time: process CPU time instead of wall time (with --threads 1, a proxy for the speed
// the kernel would have on an idle machine when other jobs share the cores; it counts spinning
// workers too, so it is meaningless with more threads).
static clockid_t clock_id = CLOCK_MONOTONIC;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(clock_id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void nop(void *ctx, int i, int n) { (void)ctx, (void)i, (void)n; }

int main(int argc, char **argv) {
    int n_threads = 2, reps = 3;
    size_t mib = 1024;
    // E2B decode: q (sliding / full), k/v, o, gate/up (single / double-wide), down, PLE gate,
    // PLE projection, per-layer model projection, tied LM head
    const char *shapes = "2048x1536,4096x1536,256x1536,1536x2048,1536x4096,6144x1536,12288x1536,"
                         "1536x6144,1536x12288,1536x256,8960x1536,262144x1536";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) n_threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--mib")) mib = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--shapes")) shapes = argv[i + 1];
        else if (!strcmp(argv[i], "--cpu-time")) clock_id = atoi(argv[i + 1]) ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC;
        else {
            fprintf(stderr, "usage: gemv_bench [--threads N] [--mib 1024] [--reps 3] [--shapes RxC,...]\n");
            return 2;
        }
    }
    struct g4_pool *pool;
    if (g4_pool_init(&pool, n_threads) != G4_OK) return 1;
    { // hand-off cost: empty jobs
        const int n = 20000;
        double t0 = now_s();
        for (int i = 0; i < n; i++) g4_pool_run(pool, nop, NULL);
        printf("{\"test\":\"dispatch\",\"threads\":%d,\"us\":%.3f}\n", n_threads, (now_s() - t0) / n * 1e6);
    }
    const size_t budget = mib << 20;
    uint16_t *buf = malloc(budget);
    float *x = malloc(262144 * sizeof(float)), *out = malloc(262144 * sizeof(float));
    void *scratch = malloc(G4_BF16ACT_LD(262144) * sizeof(float));
    if (!buf || !x || !out || !scratch) return 1;
    for (size_t i = 0; i < budget / 2; i++) buf[i] = (uint16_t)(0x3a00 + (i * 2654435761u >> 24) % 64);
    for (int i = 0; i < 262144; i++) x[i] = (float)(i % 17) * 0.01f - 0.08f;
    for (const char *s = shapes; *s;) {
        char *end;
        const long rows = strtol(s, &end, 10);
        if (*end != 'x') return 2;
        const long cols = strtol(end + 1, &end, 10);
        s = *end ? end + 1 : end;
        const size_t bytes = (size_t)rows * cols * 2;
        const size_t copies = budget / bytes ? budget / bytes : 1;
        if (bytes > budget) {
            fprintf(stderr, "gemv_bench: %ldx%ld needs --mib >= %zu\n", rows, cols, (bytes >> 20) + 1);
            continue;
        }
        for (int prec = 0; prec < 2; prec++) {
            const int n_calls = (int)(copies * (size_t)reps < 8 ? 8 : copies * (size_t)reps);
            double *t = malloc(sizeof(double) * (size_t)n_calls);
            for (int c = -(int)copies; c < n_calls; c++) { // first pass over the copies: warm-up
                const size_t k = (size_t)(c < 0 ? c + (int)copies : c) % copies;
                struct g4_weight w = {buf + k * bytes / 2, G4_DTYPE_BF16, rows, cols};
                const double t0 = now_s();
                if (prec) g4_matmul_cpu_bf16act(out, x, w, 1, pool, scratch);
                else g4_matmul_cpu(out, x, w, 1, pool);
                if (c >= 0) t[c] = now_s() - t0;
            }
            qsort(t, (size_t)n_calls, sizeof *t, cmp_d);
            const double med = t[n_calls / 2], best = t[0];
            printf("{\"test\":\"gemv\",\"precision\":\"%s\",\"rows\":%ld,\"cols\":%ld,\"threads\":%d,"
                   "\"median_us\":%.1f,\"gbs_median\":%.2f,\"gbs_best\":%.2f}\n",
                   prec ? "bf16" : "fp32", rows, cols, n_threads, med * 1e6, bytes / med / 1e9,
                   bytes / best / 1e9);
            fflush(stdout);
            free(t);
        }
    }
    g4_pool_free(pool);
    free(buf), free(x), free(out), free(scratch);
    return 0;
}
