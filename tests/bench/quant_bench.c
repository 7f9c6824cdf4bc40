// quant_bench: single-thread speed of the CPU matrix products per weight type, for the report
// in docs/performance.md and for tuning kernels/cpu/quant_*.c.
//   decode: one token against a (rows, cols) matrix of --mib MiB (larger than the caches), in
//           the exact path (g4_matmul_cpu: blocks dequantized in the tiles, fp32 activations) and
//           the fast path (g4_matmul_cpu_q8act: 8-bit activations, integer dot products, the
//           quantization of x included); GB/s = weight bytes / s
//   prompt: --tokens tokens against a 2048 x 2048 matrix (cache resident); GFLOP/s = 2 * rows *
//           cols * tokens / s
// Best of --reps runs each (the machine may be shared). Prints one JSON line per type.
//
//   quant_bench [--mib 512] [--cols 4096] [--tokens 64] [--reps 5] [--types Q4_K,Q8_0,...]
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dtype.h"
#include "matmul_cpu.h"
#include "qblock.h"
#include "quant_act.h"

static double fmin_d(double a, double b) { return a < b ? a : b; }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint64_t next(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

// Random bytes with small finite fp16 scales where the block type has them.
static void *random_matrix(enum g4_dtype dt, int64_t rows, int64_t cols, size_t *bytes) {
    *bytes = g4_dtype_row_bytes(dt, cols) * (size_t)rows;
    uint8_t *w = malloc(*bytes);
    if (!w) return NULL;
    for (size_t i = 0; i + 8 <= *bytes; i += 8) {
        const uint64_t v = next();
        memcpy(w + i, &v, 8);
    }
    const uint16_t h = g4_f32_to_f16(0.001f), one = dt == G4_DTYPE_F16 ? h : 0x3a00; // bf16 ~0.0005
    if (dt == G4_DTYPE_F32) {
        for (size_t i = 0; i < *bytes / 4; i++) ((float *)w)[i] = (float)(int)(next() % 200 - 100) * 1e-3f;
    } else if (dt == G4_DTYPE_F16 || dt == G4_DTYPE_BF16) {
        for (size_t i = 0; i < *bytes / 2; i++) ((uint16_t *)w)[i] = one;
    } else {
        const size_t bb = g4_dtype_block_bytes(dt), nb = *bytes / bb;
        for (size_t b = 0; b < nb; b++) {
            uint8_t *p = w + b * bb;
            if (dt == G4_DTYPE_Q6_K) {
                memcpy(p + G4_QBLOCK_Q6_K_D, &h, 2);
            } else {
                memcpy(p, &h, 2);
                if (dt == G4_DTYPE_Q4_K || dt == G4_DTYPE_Q5_K) memcpy(p + 2, &h, 2);
            }
        }
    }
    return w;
}

int main(int argc, char **argv) {
    double mib = 512;
    int64_t cols = 4096;
    int tokens = 64, reps = 5;
    const char *types = "F32,BF16,Q8_0,Q5_0,Q4_0,Q4_K,Q5_K,Q6_K";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--mib")) mib = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--cols")) cols = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--tokens")) tokens = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--types")) types = argv[i + 1];
        else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    printf("{\"isa\":\"%s\",\"cols\":%lld,\"mib\":%.0f,\"tokens\":%d}\n", g4_isa_name(g4_matmul_isa()),
           (long long)cols, mib, tokens);
    char list[256];
    snprintf(list, sizeof list, "%s", types);
    for (char *name = strtok(list, ","); name; name = strtok(NULL, ",")) {
        enum g4_dtype dt = G4_DTYPE_COUNT;
        for (int d = 0; d < G4_DTYPE_COUNT; d++)
            if (!strcmp(g4_dtype_name((enum g4_dtype)d), name)) dt = (enum g4_dtype)d;
        if (dt == G4_DTYPE_COUNT || !g4_dtype_row_bytes(dt, cols)) {
            fprintf(stderr, "skipping %s (unknown, or %lld columns are not whole blocks)\n", name,
                    (long long)cols);
            continue;
        }
        // decode
        const int64_t rows = (int64_t)(mib * 1048576.0 / (double)g4_dtype_row_bytes(dt, cols));
        size_t bytes;
        void *w = random_matrix(dt, rows, cols, &bytes);
        float *x = malloc(sizeof(float) * cols * tokens), *out = malloc(sizeof(float) * 2048 * tokens);
        float *y = malloc(sizeof(float) * rows);
        void *scratch = malloc(sizeof(float) * tokens * G4_BF16ACT_LD(cols > 2048 ? cols : 2048));
        if (!w || !x || !out || !y || !scratch) {
            fprintf(stderr, "out of memory\n");
            return 1;
        }
        for (int64_t i = 0; i < cols * tokens; i++) x[i] = (float)(int)(next() % 2000 - 1000) * 1e-3f;
        const struct g4_weight m = {w, dt, rows, cols};
        double best_exact = 1e30, best_fast = 1e30;
        for (int r = 0; r < reps; r++) {
            double t0 = now_s();
            g4_matmul_cpu(y, x, m, 1, NULL);
            best_exact = fmin_d(best_exact, now_s() - t0);
            t0 = now_s();
            g4_matmul_cpu_q8act(y, x, m, 1, NULL, scratch);
            best_fast = fmin_d(best_fast, now_s() - t0);
        }
        free(w);
        // prompt
        void *wp = random_matrix(dt, 2048, cols, &bytes);
        const struct g4_weight mp = {wp, dt, 2048, cols};
        double pe = 1e30, pf = 1e30;
        for (int r = 0; r < reps; r++) {
            double t0 = now_s();
            g4_matmul_cpu(out, x, mp, tokens, NULL);
            pe = fmin_d(pe, now_s() - t0);
            t0 = now_s();
            g4_matmul_cpu_q8act(out, x, mp, tokens, NULL, scratch);
            pf = fmin_d(pf, now_s() - t0);
        }
        const double flop = 2.0 * 2048 * (double)cols * tokens, wbytes = (double)g4_dtype_row_bytes(dt, cols) * rows;
        printf("{\"type\":\"%s\",\"decode_rows\":%lld,\"decode_exact_gbs\":%.2f,\"decode_fast_gbs\":%.2f,"
               "\"prompt_exact_gflops\":%.1f,\"prompt_fast_gflops\":%.1f}\n",
               name, (long long)rows, wbytes / best_exact * 1e-9, wbytes / best_fast * 1e-9,
               flop / pe * 1e-9, flop / pf * 1e-9);
        fflush(stdout);
        free(wp), free(x), free(out), free(y), free(scratch);
    }
    return 0;
}
