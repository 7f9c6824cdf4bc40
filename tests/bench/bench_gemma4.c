// bench_gemma4: times gemma4's CPU engine through the public ABI only (abi/gemma4.h), for
// tests/bench/cpu_bench.sh, which runs bench_llama.py with the same token ids and compares.
// Not a test: it checks nothing but finiteness, and prints one JSON object per line on stdout:
//   {"test":"info",...}                  model, threads, context, load time
//   {"test":"pp","n_prompt":P,...}       one step of P prompt tokens on an empty cache, best of --reps
//   {"test":"tg","ctx":C,...}            --n-decode single-token steps around context C
//   {"test":"greedy","tokens":[...]}     argmax continuation of the first tg run
//   {"test":"finite","ok":true}          every logits row seen was finite
// Prompt timing covers one gemma4_session_step (the last position's logits included). Decode:
// prefill C - n_decode/2 tokens (untimed), then n_decode steps feeding the argmax of the
// previous logits, so the mean context is C; the argmax is inside the timed loop.
// A 16-token step runs first and is thrown away, so page faults of the mmap are not timed.
//
//   bench_gemma4 MODEL_DIR --ids FILE [--threads N] [--prompts 128,1024] [--ctx 128,2048]
//                [--n-decode 32] [--reps 2] [--dump-logits FILE] [--precision fp32|bf16]
// --ctx none: prompts only.
// --precision bf16: gemma4_session_set_precision(GEMMA4_PRECISION_BF16), llama.cpp's numerics in
// every matrix product, prompt and decode steps alike: activations rounded to bf16 for bf16
// weights, quantized to 8 bits per block (Q8_0 / Q8_K) for block-quantized weights (integer dot
// products up to 3 tokens a step, fp32 tiles on the 8-bit values beyond); F32 / F16 weights, the
// MoE router and experts keep fp32 activations (see GEMMA4_PRECISION_BF16 in abi/gemma4.h).
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gemma4.h"

#define MAX_LIST 8

struct opts {
    const char *model_dir, *ids_path, *dump_logits;
    int n_threads, n_decode, reps, precision;
    int prompts[MAX_LIST], n_prompts;
    int ctxs[MAX_LIST], n_ctxs;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int parse_list(const char *s, int *out) {
    int n = 0;
    for (char *end; *s; s = *end ? end + 1 : end) {
        long v = strtol(s, &end, 10);
        if (end == s || v <= 0 || n == MAX_LIST) return -1;
        out[n++] = (int)v;
    }
    return n;
}

static int parse_args(int argc, char **argv, struct opts *o) {
    *o = (struct opts){.n_decode = 32, .reps = 2, .prompts = {128, 1024}, .n_prompts = 2,
                       .ctxs = {128, 2048}, .n_ctxs = 2};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] != '-') {
            o->model_dir = a;
            continue;
        }
        if (!v) return -1;
        i++;
        if (!strcmp(a, "--ids")) o->ids_path = v;
        else if (!strcmp(a, "--dump-logits")) o->dump_logits = v;
        else if (!strcmp(a, "--threads")) o->n_threads = atoi(v);
        else if (!strcmp(a, "--n-decode")) o->n_decode = atoi(v);
        else if (!strcmp(a, "--reps")) o->reps = atoi(v);
        else if (!strcmp(a, "--precision") && (!strcmp(v, "fp32") || !strcmp(v, "bf16")))
            o->precision = !strcmp(v, "bf16") ? GEMMA4_PRECISION_BF16 : GEMMA4_PRECISION_FP32;
        else if (!strcmp(a, "--prompts")) o->n_prompts = parse_list(v, o->prompts);
        else if (!strcmp(a, "--ctx")) o->n_ctxs = !strcmp(v, "none") ? 0 : parse_list(v, o->ctxs);
        else return -1;
    }
    if (!o->model_dir || !o->ids_path || o->n_decode < 2 || o->reps < 1 || o->n_prompts < 0 ||
        o->n_ctxs < 0)
        return -1;
    for (int i = 0; i < o->n_ctxs; i++)
        if (o->ctxs[i] <= o->n_decode / 2) return -1;
    return 0;
}

// Whitespace-separated token ids; returns how many were read (at most cap), -1 on error.
static long read_ids(const char *path, int32_t *ids, long cap) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long n = 0;
    while (n < cap && fscanf(f, "%d", &ids[n]) == 1) n++;
    fclose(f);
    return n;
}

// First index of the maximum, like numpy.argmax.
static int32_t argmax(const float *x, size_t n) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return (int32_t)best;
}

static int all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

static int fail(const char *what, gemma4_status st) {
    fprintf(stderr, "bench_gemma4: %s: %s: %s\n", what, gemma4_status_name(st), gemma4_last_error());
    return 1;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *x, int n) {
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

int main(int argc, char **argv) {
    struct opts o;
    if (parse_args(argc, argv, &o)) {
        fprintf(stderr, "usage: bench_gemma4 MODEL_DIR --ids FILE [--threads N] [--prompts 128,1024] "
                        "[--ctx 128,2048] [--n-decode 32] [--reps 2] [--dump-logits FILE] "
                        "[--precision fp32|bf16]\n");
        return 2;
    }
    int max_tokens = 16;
    for (int i = 0; i < o.n_prompts; i++)
        if (o.prompts[i] > max_tokens) max_tokens = o.prompts[i];
    for (int i = 0; i < o.n_ctxs; i++)
        if (o.ctxs[i] + o.n_decode > max_tokens) max_tokens = o.ctxs[i] + o.n_decode;
    const int n_ctx = max_tokens + 16;
    int32_t *ids = malloc((size_t)max_tokens * sizeof *ids), *gen = malloc((size_t)o.n_decode * sizeof *gen);
    double *step_s = malloc((size_t)o.n_decode * sizeof *step_s);
    if (!ids || !gen || !step_s) return 1;
    long n_ids = read_ids(o.ids_path, ids, max_tokens);
    if (n_ids < max_tokens) {
        fprintf(stderr, "bench_gemma4: %s: need %d token ids, read %ld\n", o.ids_path, max_tokens, n_ids);
        return 1;
    }

    gemma4_model *model = NULL;
    gemma4_session *s = NULL;
    gemma4_status st;
    double t0 = now_s();
    if ((st = gemma4_load(o.model_dir, GEMMA4_DEVICE_CPU, 0, n_ctx, o.n_threads, &model)))
        return fail("gemma4_load", st);
    if ((st = gemma4_session_new(model, n_ctx, &s))) return fail("gemma4_session_new", st);
    if ((st = gemma4_session_set_precision(s, o.precision))) return fail("set_precision", st);
    const double load_s = now_s() - t0;
    int64_t vocab = 0, n_layers = 0, weight_bytes = 0, kv_bytes = 0;
    gemma4_model_info(model, GEMMA4_INFO_VOCAB_SIZE, &vocab);
    gemma4_model_info(model, GEMMA4_INFO_N_LAYERS, &n_layers);
    gemma4_model_info(model, GEMMA4_INFO_WEIGHT_BYTES, &weight_bytes);
    gemma4_session_info(s, GEMMA4_SESSION_KV_BYTES, &kv_bytes);
    char variant[32] = "";
    size_t n_variant = 0;
    gemma4_model_variant(model, variant, sizeof variant, &n_variant);
    float *logits = malloc((size_t)vocab * sizeof *logits);
    if (!logits) return 1;
    printf("{\"engine\":\"gemma4\",\"test\":\"info\",\"version\":\"%s\",\"variant\":\"%s\","
           "\"n_layers\":%lld,\"vocab\":%lld,\"weight_bytes\":%lld,\"kv_bytes\":%lld,"
           "\"n_threads\":%d,\"n_ctx\":%d,\"n_ubatch\":128,\"load_s\":%.3f,\"precision\":\"%s\"}\n",
           gemma4_version(), variant, (long long)n_layers, (long long)vocab, (long long)weight_bytes,
           (long long)kv_bytes, o.n_threads, n_ctx, load_s,
           o.precision == GEMMA4_PRECISION_BF16 ? "bf16" : "fp32");
    fflush(stdout);

    // Warm-up: faults in every weight page a step touches (the LM head included).
    if ((st = gemma4_session_step(s, ids, 16, logits, vocab, NULL))) return fail("warm-up step", st);
    int finite = all_finite(logits, vocab);

    for (int ip = 0; ip < o.n_prompts; ip++) {
        const int P = o.prompts[ip];
        double best = 1e30;
        for (int r = 0; r < o.reps; r++) {
            gemma4_kv_reset(s);
            t0 = now_s();
            if ((st = gemma4_session_step(s, ids, P, logits, vocab, NULL))) return fail("prompt step", st);
            const double dt = now_s() - t0;
            if (dt < best) best = dt;
            finite &= all_finite(logits, vocab);
            if (r == 0 && ip == 0 && o.dump_logits) {
                FILE *f = fopen(o.dump_logits, "wb");
                if (!f || fwrite(logits, sizeof *logits, vocab, f) != (size_t)vocab) return 1;
                fclose(f);
            }
        }
        printf("{\"engine\":\"gemma4\",\"test\":\"pp\",\"n_prompt\":%d,\"seconds\":%.4f,"
               "\"tok_s\":%.3f,\"argmax\":%d}\n", P, best, P / best, argmax(logits, vocab));
        fflush(stdout);
    }

    for (int ic = 0; ic < o.n_ctxs; ic++) {
        const int C = o.ctxs[ic], n_pre = C - o.n_decode / 2;
        gemma4_kv_reset(s);
        t0 = now_s();
        if ((st = gemma4_session_step(s, ids, n_pre, logits, vocab, NULL))) return fail("prefill", st);
        const double pre_s = now_s() - t0;
        const double t_all = now_s();
        for (int i = 0; i < o.n_decode; i++) {
            const double ts = now_s();
            int32_t tok = argmax(logits, vocab);
            gen[i] = tok;
            if ((st = gemma4_session_step(s, &tok, 1, logits, vocab, NULL))) return fail("decode step", st);
            step_s[i] = now_s() - ts;
        }
        const double total = now_s() - t_all;
        finite &= all_finite(logits, vocab);
        printf("{\"engine\":\"gemma4\",\"test\":\"tg\",\"ctx\":%d,\"n_prefill\":%d,\"prefill_s\":%.3f,"
               "\"n_decode\":%d,\"seconds\":%.4f,\"tok_s\":%.3f,\"median_ms\":%.3f}\n",
               C, n_pre, pre_s, o.n_decode, total, o.n_decode / total, 1e3 * median(step_s, o.n_decode));
        if (ic == 0) {
            printf("{\"engine\":\"gemma4\",\"test\":\"greedy\",\"n_prompt\":%d,\"tokens\":[", n_pre);
            for (int i = 0; i < o.n_decode; i++) printf("%s%d", i ? "," : "", gen[i]);
            printf("]}\n");
        }
        fflush(stdout);
    }
    printf("{\"engine\":\"gemma4\",\"test\":\"finite\",\"ok\":%s}\n", finite ? "true" : "false");

    gemma4_session_free(s);
    gemma4_model_free(model);
    free(logits);
    free(step_s);
    free(gen);
    free(ids);
    return finite ? 0 : 1;
}
