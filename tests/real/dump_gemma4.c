// Diagnostic: gemma4's intermediates for one prompt, through the CPU engine's probe
// (g4_forward_cpu_probe in kernels/cpu/forward_cpu.c), to compare op by op with llama.cpp's
// (tests/real/dump_llama.py; tests/real/compare_dumps.py does the comparison).
//
//   build/tests/dump_gemma4 MODEL.gguf PRECISION OUT.bin ID... [-- EXTRA_ID...]
//
// PRECISION: gemma4_session_set_precision's value (0 fp32 = exact path, 1 bf16 = fast path).
// The ids before "--" are the prompt, run as one step; each id after it is one step more.
// OUT.bin: records of a text line "name-layer[.step] rows cols\n" and rows * cols float32.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemma4.h"

extern void (*g4_forward_cpu_probe)(const char *name, int layer, int64_t pos0, const float *x,
                                    int rows, int64_t cols);

static FILE *out;
static int step;

static void probe(const char *name, int layer, int64_t pos0, const float *x, int rows, int64_t cols) {
    (void)pos0;
    char key[128];
    if (layer >= 0) snprintf(key, sizeof key, "%.*s-%d|%s", (int)(strchr(name, '|') - name), name,
                             layer, strchr(name, '|') + 1);
    else snprintf(key, sizeof key, "%s", name);
    if (step) snprintf(key + strlen(key), sizeof key - strlen(key), ".%d", step);
    fprintf(out, "%s %d %lld\n", key, rows, (long long)cols);
    fwrite(x, sizeof(float), (size_t)rows * (size_t)cols, out);
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s MODEL PRECISION OUT.bin ID... [-- ID...]\n", argv[0]);
        return 2;
    }
    int32_t ids[512];
    int n = 0, a = 4;
    for (; a < argc && strcmp(argv[a], "--") && n < 512; a++) ids[n++] = atoi(argv[a]);
    gemma4_model *m = NULL;
    gemma4_session *s = NULL;
    if (gemma4_load(argv[1], GEMMA4_DEVICE_CPU, 0, 512, 1, &m) || gemma4_session_new(m, 0, &s) ||
        gemma4_session_set_precision(s, atoi(argv[2]))) {
        fprintf(stderr, "%s\n", gemma4_last_error());
        return 1;
    }
    out = fopen(argv[3], "wb");
    if (!out) return 1;
    int64_t vocab = 0;
    gemma4_model_info(m, GEMMA4_INFO_VOCAB_SIZE, &vocab);
    float *logits = malloc((size_t)vocab * sizeof *logits);
    g4_forward_cpu_probe = probe;
    int rc = gemma4_session_step(s, ids, (size_t)n, logits, (size_t)vocab, NULL);
    fprintf(out, "logits 1 %lld\n", (long long)vocab);
    fwrite(logits, sizeof(float), (size_t)vocab, out);
    for (a++; a < argc && !rc; a++) {
        int32_t t = atoi(argv[a]);
        step++;
        rc = gemma4_session_step(s, &t, 1, logits, (size_t)vocab, NULL);
        fprintf(out, "logits.%d 1 %lld\n", step, (long long)vocab);
        fwrite(logits, sizeof(float), (size_t)vocab, out);
    }
    if (rc) fprintf(stderr, "%s\n", gemma4_last_error());
    fclose(out);
    free(logits);
    gemma4_session_free(s);
    gemma4_model_free(m);
    return rc;
}
