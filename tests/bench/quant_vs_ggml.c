// quant_vs_ggml: the fast path's numerics and single-thread speed against ggml's own CPU kernels,
// loaded from a llama.cpp build (libggml-cpu.so, e.g. the one llama-cpp-python installs; see
// tests/bench/cpu_bench.sh). Not part of the test suite: CI has no llama.cpp. For each block type:
//   - activations: g4_quant_act_rows against ggml's from_float for the type's vec_dot_type
//     (quantize_row_q8_0 / quantize_row_q8_K): quants and scales compared bit for bit;
//   - dot products: our kernel (best ISA) against ggml's vec_dot on the same weight rows and
//     ggml's quantized activations: max |diff| / max |ggml|;
//   - speed: one token against a --mib MiB matrix, ggml's vec_dot row by row vs our kernel (both
//     single-threaded, best of --reps); GB/s of weights.
//
//   quant_vs_ggml LIBGGML_CPU_SO [--mib 256] [--cols 4096] [--reps 5]
#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dtype.h"
#include "matmul_cpu.h"
#include "qblock.h"
#include "quant_act.h"
#include "quant_dot.h"

// ggml-cpu.h's struct ggml_type_traits_cpu and function types (ggml's ABI, declared here so
// the program builds without llama.cpp's headers).
typedef void (*ggml_from_float_t)(const float *x, void *y, int64_t k);
typedef void (*ggml_vec_dot_t)(int n, float *s, size_t bs, const void *x, size_t bx, const void *y,
                               size_t by, int nrc);
struct ggml_type_traits_cpu {
    ggml_from_float_t from_float;
    ggml_vec_dot_t vec_dot;
    int vec_dot_type;
    int64_t nrows;
};
enum { GGML_Q4_0 = 2, GGML_Q5_0 = 6, GGML_Q8_0 = 8, GGML_Q4_K = 12, GGML_Q5_K = 13,
       GGML_Q6_K = 14, GGML_Q8_K = 15 };

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
static float frand(void) { return (float)((next() >> 40) * (1.0 / (1 << 24))) * 2.0f - 1.0f; }

static void random_blocks(uint8_t *w, size_t bytes, enum g4_dtype dt) {
    for (size_t i = 0; i < bytes; i++) w[i] = (uint8_t)next();
    const size_t bb = g4_dtype_block_bytes(dt);
    for (size_t b = 0; b < bytes / bb; b++) {
        uint8_t *p = w + b * bb;
        const uint16_t d = g4_f32_to_f16(frand() * 0.01f), dm = g4_f32_to_f16(frand() * 0.01f);
        if (dt == G4_DTYPE_Q6_K) {
            memcpy(p + G4_QBLOCK_Q6_K_D, &d, 2);
        } else {
            memcpy(p, &d, 2);
            if (dt == G4_DTYPE_Q4_K || dt == G4_DTYPE_Q5_K) memcpy(p + 2, &dm, 2);
        }
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: quant_vs_ggml LIBGGML_CPU_SO [--mib 256] [--cols 4096] [--reps 5]\n");
        return 2;
    }
    double mib = 256;
    int64_t K = 4096;
    int reps = 5;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--mib")) mib = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--cols")) K = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "dlopen %s: %s\n", argv[1], dlerror());
        return 1;
    }
    void (*cpu_init)(void) = (void (*)(void))dlsym(lib, "ggml_cpu_init");
    const struct ggml_type_traits_cpu *(*traits)(int) =
        (const struct ggml_type_traits_cpu *(*)(int))dlsym(lib, "ggml_get_type_traits_cpu");
    if (!cpu_init || !traits) {
        fprintf(stderr, "%s has no ggml_cpu_init / ggml_get_type_traits_cpu\n", argv[1]);
        return 1;
    }
    cpu_init();
    static const struct { enum g4_dtype dt; int ggml; } types[] = {
        {G4_DTYPE_Q8_0, GGML_Q8_0}, {G4_DTYPE_Q5_0, GGML_Q5_0}, {G4_DTYPE_Q4_0, GGML_Q4_0},
        {G4_DTYPE_Q4_K, GGML_Q4_K}, {G4_DTYPE_Q5_K, GGML_Q5_K}, {G4_DTYPE_Q6_K, GGML_Q6_K}};
    const enum g4_isa isa = g4_matmul_isa();
    printf("{\"isa\":\"%s\",\"cols\":%lld,\"mib\":%.0f}\n", g4_isa_name(isa), (long long)K, mib);
    float *x = malloc(sizeof(float) * K);
    uint8_t *ours = malloc(G4_QUANT_ACT_LD(K)), *theirs = malloc((size_t)K * 2 + 1024);
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const enum g4_dtype dt = types[ti].dt;
        const struct ggml_type_traits_cpu *tr = traits(types[ti].ggml);
        const int kq = tr->vec_dot_type == GGML_Q8_K;
        const enum g4_quant_act_type at = kq ? G4_QUANT_ACT_Q8_K : G4_QUANT_ACT_Q8_0;
        const struct ggml_type_traits_cpu *act = traits(tr->vec_dot_type);
        // activations: ggml's quantizer vs ours, several rows of different scales
        long q_diff = 0, d_diff = 0;
        for (int trial = 0; trial < 20; trial++) {
            const float scale = powf(10.0f, (float)(trial % 7) - 3.0f);
            for (int64_t i = 0; i < K; i++) x[i] = frand() * scale * (i % 97 == 0 ? 8.0f : 1.0f);
            act->from_float(x, theirs, K);
            g4_quant_act_rows(ours, at, x, K, 1, K);
            const int qk = kq ? 256 : 32;
            const size_t bb = kq ? 4 + 256 + 32 : 34;
            for (int64_t b = 0; b < K / qk; b++) {
                const uint8_t *tb = theirs + b * bb;
                float td;
                if (kq) memcpy(&td, tb, 4);
                else td = g4_f16_to_f32(g4_qblock_u16(tb));
                d_diff += memcmp(&td, &g4_quant_act_d(ours, K)[b], 4) != 0;
                q_diff += memcmp(tb + (kq ? 4 : 2), g4_quant_act_qs(ours) + b * qk, (size_t)qk) != 0;
                if (kq) q_diff += memcmp(tb + 260, g4_quant_act_bsums(ours, K) + b * 16, 32) != 0;
            }
        }
        // dot products on ggml's activations
        const size_t rb = g4_dtype_row_bytes(dt, K);
        const int64_t rows = (int64_t)(mib * 1048576.0 / (double)rb);
        uint8_t *w = malloc(rb * (size_t)rows);
        float *got = malloc(sizeof(float) * rows), *want = malloc(sizeof(float) * rows);
        random_blocks(w, rb * (size_t)rows, dt);
        for (int64_t i = 0; i < K; i++) x[i] = frand();
        act->from_float(x, theirs, K);
        g4_quant_act_rows(ours, at, x, K, 1, K);
        const g4_quant_dot_fn dot = g4_quant_dot_for(dt, isa);
        double t_ours = 1e30, t_ggml = 1e30;
        for (int r = 0; r < reps; r++) {
            double t0 = now_s();
            dot(got, w, rb, (int)rows, ours, K);
            t_ours = fmin(t_ours, now_s() - t0);
            t0 = now_s();
            for (int64_t i = 0; i < rows; i++) tr->vec_dot((int)K, &want[i], 0, w + rb * i, 0, theirs, 0, 1);
            t_ggml = fmin(t_ggml, now_s() - t0);
        }
        double md = 0.0, mm = 0.0;
        for (int64_t i = 0; i < rows; i++) {
            md = fmax(md, fabs((double)got[i] - want[i]));
            mm = fmax(mm, fabs((double)want[i]));
        }
        const double gb = (double)rb * rows * 1e-9;
        printf("{\"type\":\"%s\",\"act\":\"%s\",\"act_quants_differing_blocks\":%ld,\"act_scales_differing\":%ld,"
               "\"dot_max_rel_diff\":%.2e,\"gemv_ours_gbs\":%.2f,\"gemv_ggml_gbs\":%.2f}\n",
               g4_dtype_name(dt), kq ? "Q8_K" : "Q8_0", q_diff, d_diff, md / mm, gb / t_ours,
               gb / t_ggml);
        fflush(stdout);
        free(w), free(got), free(want);
    }
    free(x), free(ours), free(theirs);
    dlclose(lib);
    return 0;
}
