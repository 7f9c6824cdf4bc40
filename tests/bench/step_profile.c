// step_profile: where one CPU decode step's time goes, op by op (issue 18's "per-op timings").
// Not a test. The CPU engine calls its probe (g4_forward_cpu_probe, kernels/cpu/forward_cpu.c)
// after each named operation; the time from one probe to the next is charged to the later
// one's name (summed over layers), so "Kcur|MUL_MAT" is the K projection plus whatever ran since
// the previous probe. The tail from the last probe ("result_norm") to the step's return is the
// LM head (plus the final softcap and the logits copy). Prints a table of ms per step and share.
//
//   step_profile MODEL --ids FILE [--threads N] [--ctx 128] [--steps 16] [--precision fp32|bf16]
//                [--prompt P]
// --prompt P: profile prompt steps instead: --steps steps of P tokens, each on an empty cache.
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gemma4.h"

extern void (*g4_forward_cpu_probe)(const char *name, int layer, int64_t pos0, const float *x,
                                    int rows, int64_t cols);

#define MAX_OPS 64

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static struct {
    const char *name;
    double s;
    int calls;
} ops[MAX_OPS];
static int n_ops;
static double last;

static void charge(const char *name, double t) {
    int i = 0;
    while (i < n_ops && strcmp(ops[i].name, name)) i++;
    if (i == n_ops) {
        if (n_ops == MAX_OPS) return;
        ops[n_ops++].name = name;
    }
    ops[i].s += t - last;
    ops[i].calls++;
    last = t;
}

static void probe(const char *name, int layer, int64_t pos0, const float *x, int rows, int64_t cols) {
    (void)layer, (void)pos0, (void)x, (void)rows, (void)cols;
    charge(name, now_s());
}

static int read_ids(const char *path, int32_t *ids, int cap) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int n = 0;
    while (n < cap && fscanf(f, "%d", &ids[n]) == 1) n++;
    fclose(f);
    return n;
}

int main(int argc, char **argv) {
    const char *model = NULL, *ids_path = NULL;
    int threads = 2, ctx = 128, steps = 16, prompt = 0, precision = GEMMA4_PRECISION_FP32;
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--ids") && a + 1 < argc) ids_path = argv[++a];
        else if (!strcmp(argv[a], "--threads") && a + 1 < argc) threads = atoi(argv[++a]);
        else if (!strcmp(argv[a], "--ctx") && a + 1 < argc) ctx = atoi(argv[++a]);
        else if (!strcmp(argv[a], "--steps") && a + 1 < argc) steps = atoi(argv[++a]);
        else if (!strcmp(argv[a], "--prompt") && a + 1 < argc) prompt = atoi(argv[++a]);
        else if (!strcmp(argv[a], "--precision") && a + 1 < argc)
            precision = strcmp(argv[++a], "bf16") ? GEMMA4_PRECISION_FP32 : GEMMA4_PRECISION_BF16;
        else if (!model) model = argv[a];
        else {
            fprintf(stderr, "step_profile: unknown argument %s\n", argv[a]);
            return 2;
        }
    }
    if (!model || !ids_path || ctx < 2 || steps < 1) {
        fprintf(stderr, "usage: step_profile MODEL --ids FILE [--threads N] [--ctx C] [--steps S] "
                        "[--precision fp32|bf16]\n");
        return 2;
    }
    static int32_t ids[1 << 16];
    const int n_ids = read_ids(ids_path, ids, 1 << 16);
    if (prompt > 0) ctx = prompt;
    if (n_ids < ctx) {
        fprintf(stderr, "step_profile: %s has %d ids, --ctx needs %d\n", ids_path, n_ids, ctx);
        return 1;
    }
    gemma4_model *m = NULL;
    gemma4_session *s = NULL;
    if (gemma4_load(model, GEMMA4_DEVICE_CPU, 0, ctx + steps + 16, threads, &m) ||
        gemma4_session_new(m, 0, &s) || gemma4_session_set_precision(s, precision)) {
        fprintf(stderr, "step_profile: %s\n", gemma4_last_error());
        return 1;
    }
    int64_t vocab = 0;
    gemma4_model_info(m, GEMMA4_INFO_VOCAB_SIZE, &vocab);
    float *logits = malloc((size_t)vocab * sizeof *logits);
    int rc = gemma4_session_step(s, ids, (size_t)ctx, logits, (size_t)vocab, NULL);
    double total = 0.0;
    for (int i = -2; i < steps && !rc; i++) { // two untimed steps warm the caches
        const int32_t t = ids[(ctx + i + 2) % n_ids];
        if (prompt > 0) rc = gemma4_session_truncate(s, 0);
        if (i == 0) {
            memset(ops, 0, sizeof ops);
            n_ops = 0;
            total = 0.0;
        }
        g4_forward_cpu_probe = probe;
        const double t0 = now_s();
        last = t0;
        if (!rc) rc = prompt > 0 ? gemma4_session_step(s, ids, (size_t)prompt, logits, (size_t)vocab, NULL)
                                 : gemma4_session_step(s, &t, 1, logits, (size_t)vocab, NULL);
        const double t1 = now_s();
        charge("(lm head, logits)", t1);
        g4_forward_cpu_probe = NULL;
        total += t1 - t0;
    }
    if (rc) {
        fprintf(stderr, "step_profile: %s\n", gemma4_last_error());
        return 1;
    }
    printf("| op (charged from the previous probe) | ms / step | share |\n|---|---:|---:|\n");
    for (int i = 0; i < n_ops; i++)
        printf("| %s | %.3f | %.1f%% |\n", ops[i].name, 1e3 * ops[i].s / steps, 100.0 * ops[i].s / total);
    printf("| **step** | %.3f | %.2f tok/s |\n", 1e3 * total / steps, steps * (prompt > 0 ? prompt : 1) / total);
    free(logits);
    gemma4_session_free(s);
    gemma4_model_free(m);
    return 0;
}
