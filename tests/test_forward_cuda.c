// The CUDA engine against the CPU engine on every golden fixture in tests/golden (E2B-like with
// PLE and KV sharing, MoE with K=V in bf16, 31B-like in f16, the sharded multimodal layout):
// logits of a full prefill, of token-by-token decoding after a short prefill and of uneven chunks
// longer than the sliding window must be within max |diff| / max |ref| <= 2e-2 of the CPU
// engine's prefill, and 32 greedy tokens must be identical. Also: a bad device index is a clean
// error and a session outlives its model's handle. A missing fixture is a failure.
//
// The CUDA engine holds every weight matrix in bf16 (kernels/README.md), and on these tiny
// random fixtures rounding the f32 / f16 checkpoints' weights to bf16 alone moves the logits by
// 7-22% (max |diff| / max |ref|). So the reference is the CPU engine running the same
// bf16-rounded matrices (its "bf16 twin", made below exactly as kernels/cuda/device.cu rounds):
// that compares the engines, not the weight formats. The distance to the unrounded checkpoint
// is printed for information.
// Without a CUDA device (or a CUDA build) the program prints "skipped: no CUDA device" and exits
// with 77, which ctest reports as skipped.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#ifndef G4_WITH_CUDA
int main(void) {
    printf("skipped: no CUDA device (this build has no CUDA engine)\n");
    return 77;
}
#else

#include <cuda_runtime_api.h>

#include "cuda_skip.h"
#include "engine.h"

#include "log.h"
#include "model.h"
#include "session.h"

// bf16 weights, bf16 GEMM inputs and K/V cache against the fp32 engine (the bound).
#define TOL_BF16 2e-2
#define N_GREEDY 32

static struct g4_model *load(const char *fixture, enum g4_device device) {
    char rel[256];
    snprintf(rel, sizeof rel, "tests/golden/%s", fixture);
    struct g4_model *m = NULL;
    g4_status st = g4_model_load(&m, g4_src_path(rel), device, 0, 256, 2);
    if (st != G4_OK) print_error("load %s on %s: %s\n", fixture, device ? "cuda" : "cpu", g4_last_error());
    assert_int_equal(st, G4_OK);
    return m;
}

// Replaces every weight matrix the CUDA engine stores in bf16 (all but the MoE router, which it
// keeps in fp32) by a bf16 copy rounded to nearest even, as kernels/cuda/device.cu does. The copies
// are listed in bufs (free them after the model).
struct twin {
    void *bufs[4 * G4_MAX_LAYERS * 16];
    int n;
};

static uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static void round_matrix(struct twin *tw, struct g4_weight *w) {
    if (!w->data || w->dtype == G4_DTYPE_BF16) return;
    const size_t n = (size_t)w->rows * w->cols;
    float *f = malloc(n * sizeof(float));
    uint16_t *h = malloc(n * sizeof(uint16_t));
    assert_non_null(f), assert_non_null(h);
    g4_to_f32(f, w->data, w->dtype, n);
    for (size_t i = 0; i < n; i++) h[i] = to_bf16(f[i]);
    free(f);
    w->data = h;
    w->dtype = G4_DTYPE_BF16;
    assert_true(tw->n < (int)G4_COUNT(tw->bufs));
    tw->bufs[tw->n++] = h;
}

static void make_bf16_twin(struct g4_model *m, struct twin *tw) {
    struct g4_weights *w = &m->w;
    const bool tied = w->lm_head.data == w->embed_tokens.data;
    round_matrix(tw, &w->embed_tokens);
    if (tied) w->lm_head = w->embed_tokens;
    else round_matrix(tw, &w->lm_head);
    round_matrix(tw, &w->embed_tokens_per_layer);
    round_matrix(tw, &w->per_layer_model_projection);
    for (int il = 0; il < m->cfg.num_hidden_layers; il++) {
        struct g4_layer_weights *l = &w->layer[il];
        struct g4_weight *mats[] = {&l->q_proj, &l->k_proj, &l->v_proj, &l->o_proj,
                                    &l->gate_proj, &l->up_proj, &l->down_proj,
                                    &l->per_layer_input_gate, &l->per_layer_projection,
                                    &l->experts_gate_up, &l->experts_down};
        for (size_t i = 0; i < G4_COUNT(mats); i++) round_matrix(tw, mats[i]);
    }
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static void step_ok(struct g4_session *s, const int32_t *tokens, int64_t n, float *logits, bool all) {
    g4_status st = g4_session_step(s, tokens, n, logits, all);
    if (st != G4_OK) print_error("step: %s\n", g4_last_error());
    assert_int_equal(st, G4_OK);
}

static void run_fixture(const char *fixture) {
    struct g4_reference r;
    assert_int_equal(g4_reference_read(fixture, &r), 0);
    struct g4_model *cpu = load(fixture, G4_DEVICE_CPU), *gpu = load(fixture, G4_DEVICE_CUDA);
    assert_string_equal(gpu->backend->name, "cuda");
    struct twin *tw = calloc(1, sizeof *tw);
    assert_non_null(tw);
    make_bf16_twin(cpu, tw);
    const int T = r.n_tokens, V = r.vocab;
    assert_int_equal(V, gpu->cfg.vocab_size);
    float *ref = malloc(sizeof(float) * T * V), *logits = malloc(sizeof(float) * T * V);
    float *ref_step = malloc(sizeof(float) * V);
    assert_non_null(ref), assert_non_null(logits), assert_non_null(ref_step);
    char what[128];

    // The reference: the CPU engine's prefill on the bf16 twin.
    struct g4_session *sc, *sg;
    assert_int_equal(g4_session_init(&sc, cpu, 0), G4_OK);
    assert_int_equal(g4_session_init(&sg, gpu, 0), G4_OK);
    sg->bf16 = false; // GEMMA4_PRECISION_FP32 (CUDA sessions start in BF16)
    step_ok(sc, r.tokens, T, ref, true);

    // 1. full prefill, logits at every position
    step_ok(sg, r.tokens, T, logits, true);
    snprintf(what, sizeof what, "%s cuda prefill vs cpu", fixture);
    assert_true(g4_compare_rel(logits, ref, (size_t)T * V, TOL_BF16, what) <= TOL_BF16);
    // for the log: the unrounded checkpoint's logits (transformers' float32 forward)
    snprintf(what, sizeof what, "%s (info) vs f32 transformers", fixture);
    g4_compare_rel(logits, r.logits, (size_t)T * V, 1.0, what);

    // 2. prefill 20, then token by token (well past 2x the sliding window)
    g4_session_reset(sg);
    memset(logits, 0, sizeof(float) * T * V);
    step_ok(sg, r.tokens, 20, logits, true);
    for (int t = 20; t < T; t++) step_ok(sg, r.tokens + t, 1, logits + (size_t)t * V, false);
    snprintf(what, sizeof what, "%s cuda decode vs cpu", fixture);
    assert_true(g4_compare_rel(logits, ref, (size_t)T * V, TOL_BF16, what) <= TOL_BF16);

    // 3. uneven chunks, some longer than the window (ring staging)
    g4_session_reset(sg);
    static const int chunks[] = {5, 13, 1, 9, 30};
    int done = 0;
    for (size_t i = 0; done < T; i++) {
        int n = chunks[i % G4_COUNT(chunks)];
        if (n > T - done) n = T - done;
        step_ok(sg, r.tokens + done, n, logits + (size_t)done * V, true);
        done += n;
    }
    snprintf(what, sizeof what, "%s cuda chunked vs cpu", fixture);
    assert_true(g4_compare_rel(logits, ref, (size_t)T * V, TOL_BF16, what) <= TOL_BF16);

    // 4. greedy continuation: both engines from the same prompt, token for token
    int32_t tok_g = argmax(logits + (size_t)(T - 1) * V, V);
    int32_t tok_c = argmax(ref + (size_t)(T - 1) * V, V);
    int n_same = 0;
    double worst = 0.0;
    for (int i = 0; i < N_GREEDY; i++) {
        if (tok_g != tok_c) {
            print_error("%s: greedy token %d: cuda %d, cpu %d\n", fixture, i, tok_g, tok_c);
            break;
        }
        n_same++;
        step_ok(sg, &tok_g, 1, logits, false);
        step_ok(sc, &tok_c, 1, ref_step, false);
        snprintf(what, sizeof what, "%s greedy step %d", fixture, i);
        double rel = g4_compare_rel(logits, ref_step, (size_t)V, TOL_BF16, what);
        if (!(rel <= worst)) worst = rel;
        tok_g = argmax(logits, V);
        tok_c = argmax(ref_step, V);
    }
    printf("%-40s greedy tokens identical: %d / %d (worst step rel %.3e)\n", fixture, n_same,
           N_GREEDY, worst);
    assert_int_equal(n_same, N_GREEDY);
    assert_true(worst <= TOL_BF16);

    g4_session_free(sg);
    g4_session_free(sc);
    g4_model_release(gpu);
    g4_model_release(cpu);
    for (int i = 0; i < tw->n; i++) free(tw->bufs[i]);
    free(tw);
    free(ref), free(logits), free(ref_step), free(r.blob);
}

// GEMMA4_PRECISION_BF16 on the GPU (s->bf16: the matrix products' inputs rounded to bf16, fp32
// accumulation, norms and softmax; the MoE router and experts keep fp32 inputs, as on the CPU).
// Two references with the same numerics. A sum in another order can round a later activation
// to the neighbouring bf16 value, which these tiny random networks amplify, so the bounds are
// not fp32's: every position within 3e-2 (max |diff| / max |ref| per position), argmax equal at
// all but 2 positions, and the logits must differ from the CUDA engine's own FP32 ones by
// > 1e-3 (the rounding happens); the median position within
//   - 5e-3 of reference_bf16act.bin (moe, the one bf16 checkpoint): transformers' float32
//     forward with every nn.Linear input but the router rounded to bf16, the CPU test's bounds
//     (tests/test_forward_cpu.c, test_bf16_precision);
//   - 1e-2 of the CPU engine's GEMMA4_PRECISION_BF16 on the bf16 twin (the same rounded
//     matrices the GPU holds), on moe and e2b (PLE, KV sharing): twice the CPU's own spread,
//     whose one-token-a-step and prefill kernels differ by a median 4.4e-3 (moe) and 5.1e-3
//     (e2b) (printed as "(info)").
// For a full prefill (cuBLAS bf16 GEMMs) and one token a step (the decode GEMVs).
static double median_of(double *v, int n) {
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            const double t = v[j];
            v[j] = v[j - 1], v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void check_bf16(const char *what, const float *got, const float *fp32, const float *ref,
                       int T, int V, double max_median) {
    double rel[256], moved = 0.0;
    int same = 0;
    assert_true(T <= 256);
    for (int t = 0; t < T; t++) {
        const float *g = got + (size_t)t * V, *r = ref + (size_t)t * V;
        double d = 0.0, m = 0.0;
        for (int i = 0; i < V; i++) {
            d = fmax(d, fabs((double)g[i] - r[i]));
            m = fmax(m, fabs((double)r[i]));
            moved = fmax(moved, fabs((double)g[i] - fp32[(size_t)t * V + i]));
        }
        rel[t] = d / m;
        same += argmax(g, V) == argmax(r, V);
    }
    const double med = median_of(rel, T);
    printf("%-44s median position rel %.2e, worst %.2e, argmax equal %d / %d; max change "
           "from cuda fp32 %.2e\n", what, med, rel[T - 1], same, T, moved);
    assert_true(moved > 1e-3);
    assert_true(med <= max_median && rel[T - 1] <= 3e-2);
    assert_true(same >= T - 2);
}

static void check_bf16_info(const char *what, const float *got, const float *ref, int T, int V) {
    double rel[256];
    for (int t = 0; t < T; t++) {
        double d = 0.0, m = 0.0;
        for (int i = 0; i < V; i++) {
            d = fmax(d, fabs((double)got[(size_t)t * V + i] - ref[(size_t)t * V + i]));
            m = fmax(m, fabs((double)ref[(size_t)t * V + i]));
        }
        rel[t] = d / m;
    }
    const double med = median_of(rel, T);
    printf("%-44s median position rel %.2e, worst %.2e\n", what, med, rel[T - 1]);
}

static void bf16_fixture(const char *fixture) {
    struct g4_reference r;
    assert_int_equal(g4_reference_read(fixture, &r), 0);
    struct g4_model *cpu = load(fixture, G4_DEVICE_CPU), *gpu = load(fixture, G4_DEVICE_CUDA);
    const bool bf16_ckpt = cpu->w.layer[0].q_proj.dtype == G4_DTYPE_BF16;
    struct twin *tw = calloc(1, sizeof *tw);
    assert_non_null(tw);
    make_bf16_twin(cpu, tw);
    const int T = r.n_tokens, V = r.vocab;
    const size_t n = (size_t)T * V;
    float *cpu_bf = malloc(sizeof(float) * n), *fp32 = malloc(sizeof(float) * n);
    float *bf = malloc(sizeof(float) * n);
    assert_non_null(cpu_bf), assert_non_null(fp32), assert_non_null(bf);
    struct g4_session *sc, *sg;
    assert_int_equal(g4_session_init(&sc, cpu, 0), G4_OK);
    assert_int_equal(g4_session_init(&sg, gpu, 0), G4_OK);
    // the default precision per device: FP32 on the CPU, BF16 on CUDA (abi/gemma4.h)
    assert_false(sc->bf16);
    assert_true(sg->bf16);
    sc->bf16 = true;
    step_ok(sc, r.tokens, T, cpu_bf, true);
    sg->bf16 = false;
    step_ok(sg, r.tokens, T, fp32, true); // the GPU's FP32
    { // for the log: the CPU's own BF16 spread, one token a step vs its prefill
        float *c1 = malloc(sizeof(float) * n);
        g4_session_reset(sc);
        for (int t = 0; t < T; t++) step_ok(sc, r.tokens + t, 1, c1 + (size_t)t * V, false);
        char w2[96];
        snprintf(w2, sizeof w2, "%s (info) cpu bf16 step vs prefill:", fixture);
        check_bf16_info(w2, c1, cpu_bf, T, V);
        free(c1);
    }
    struct g4_reference rb = {0};
    if (bf16_ckpt) assert_int_equal(g4_reference_read_file(fixture, "reference_bf16act.bin", &rb), 0);
    for (int pass = 0; pass < 2; pass++) {
        g4_session_reset(sg);
        sg->bf16 = true;
        if (pass == 0) step_ok(sg, r.tokens, T, bf, true);
        else
            for (int t = 0; t < T; t++) step_ok(sg, r.tokens + t, 1, bf + (size_t)t * V, false);
        char what[96];
        snprintf(what, sizeof what, "%s cuda bf16 %s vs cpu bf16:", fixture,
                 pass ? "one token a step" : "prefill");
        check_bf16(what, bf, fp32, cpu_bf, T, V, 1e-2);
        if (bf16_ckpt) {
            snprintf(what, sizeof what, "%s cuda bf16 %s vs bf16act:", fixture,
                     pass ? "one token a step" : "prefill");
            check_bf16(what, bf, fp32, rb.logits, T, V, 5e-3);
        }
    }
    g4_session_free(sg);
    g4_session_free(sc);
    g4_model_release(gpu);
    g4_model_release(cpu);
    for (int i = 0; i < tw->n; i++) free(tw->bufs[i]);
    free(tw);
    free(cpu_bf), free(fp32), free(bf), free(r.blob), free(rb.blob);
}

static void test_bf16_precision(void **state) {
    (void)state;
    bf16_fixture("moe");
    bf16_fixture("e2b");
}

static void test_e2b(void **state) { (void)state; run_fixture("e2b"); }
static void test_moe(void **state) { (void)state; run_fixture("moe"); }
static void test_dense31b(void **state) { (void)state; run_fixture("dense31b"); }
static void test_multimodal(void **state) { (void)state; run_fixture("multimodal"); }

// The MoE fixture in both precisions through the two expert paths: a full prefill (grouped
// GEMM) and token-by-token decoding after 20 tokens (the decode GEMVs). FP32 against
// transformers' float32 forward (reference.bin); BF16 against transformers with every nn.Linear
// input rounded to bf16 (reference_bf16act.bin; router and experts are not nn.Linear and stay
// fp32 there, as they do in the CUDA engine's BF16 MoE: MOE_BF16_EXPERTS in forward_cuda.cu,
// which this bound tells apart, 0.24 when they are rounded); and the two paths against each
// other. test_bf16_precision holds BF16 to tighter per-position bounds.
#define TOL_MOE_FP32 2e-2 // measured 2.0e-4
#define TOL_MOE_BF16 2e-2 // measured 8.1e-3 (prefill), 3.2e-3 (decode)
static void test_moe_precisions(void **state) {
    (void)state;
    struct g4_reference r32, rb;
    assert_int_equal(g4_reference_read("moe", &r32), 0);
    assert_int_equal(g4_reference_read_file("moe", "reference_bf16act.bin", &rb), 0);
    assert_int_equal(rb.n_tokens, r32.n_tokens);
    struct g4_model *gpu = load("moe", G4_DEVICE_CUDA);
    const int T = r32.n_tokens, V = r32.vocab;
    float *pre = malloc(sizeof(float) * T * V), *dec = malloc(sizeof(float) * T * V);
    assert_non_null(pre), assert_non_null(dec);
    for (int b = 0; b < 2; b++) {
        struct g4_session *sg;
        assert_int_equal(g4_session_init(&sg, gpu, 0), G4_OK);
        sg->bf16 = b;
        step_ok(sg, r32.tokens, T, pre, true);
        g4_session_reset(sg);
        step_ok(sg, r32.tokens, 20, dec, true);
        for (int t = 20; t < T; t++) step_ok(sg, r32.tokens + t, 1, dec + (size_t)t * V, false);
        const struct g4_reference *ref = b ? &rb : &r32;
        const double tol = b ? TOL_MOE_BF16 : TOL_MOE_FP32;
        char what[128];
        snprintf(what, sizeof what, "moe %s prefill vs %s", b ? "bf16" : "fp32",
                 b ? "reference_bf16act" : "reference");
        assert_true(g4_compare_rel(pre, ref->logits, (size_t)T * V, tol, what) <= tol);
        snprintf(what, sizeof what, "moe %s decode vs %s", b ? "bf16" : "fp32",
                 b ? "reference_bf16act" : "reference");
        assert_true(g4_compare_rel(dec, ref->logits, (size_t)T * V, tol, what) <= tol);
        snprintf(what, sizeof what, "moe %s decode vs prefill", b ? "bf16" : "fp32");
        assert_true(g4_compare_rel(dec, pre, (size_t)T * V, tol, what) <= tol);
        g4_session_free(sg);
    }
    g4_model_release(gpu);
    free(pre), free(dec), free(r32.blob), free(rb.blob);
}

// A device index past the last device is a clean G4_ERR_DEVICE naming the device count.
static void test_bad_device(void **state) {
    (void)state;
    struct g4_model *m = NULL;
    g4_status st = g4_model_load(&m, g4_src_path("tests/golden/e2b"), G4_DEVICE_CUDA, 4096, 64, 1);
    printf("device 4096 -> %s: %s\n", g4_status_name(st), g4_last_error());
    assert_int_equal(st, G4_ERR_DEVICE);
    assert_null(m);
    assert_non_null(strstr(g4_last_error(), "device 4096"));
}

// The model outlives its sessions' references; freeing the model first is safe on the device too.
static void test_free_order(void **state) {
    (void)state;
    struct g4_model *m = load("moe", G4_DEVICE_CUDA);
    struct g4_session *s;
    assert_int_equal(g4_session_init(&s, m, 64), G4_OK);
    g4_model_release(m);
    const int32_t toks[3] = {2, 17, 300};
    step_ok(s, toks, 3, NULL, false);
    assert_int_equal(s->n_past, 3);
    g4_session_free(s);
}

// Takes the free device memory until at most keep + 64 KiB is left; returns how many blocks it
// holds.
static int hog_device(void **hog, int cap, size_t keep) {
    size_t free_b = 0, total_b = 0;
    assert_int_equal(cudaMemGetInfo(&free_b, &total_b), cudaSuccess);
    int n = 0;
    for (size_t chunk = free_b > keep ? free_b - keep : 0; chunk >= ((size_t)64 << 10) && n < cap;) {
        if (cudaMalloc(&hog[n], chunk) == cudaSuccess) {
            n++;
            assert_int_equal(cudaMemGetInfo(&free_b, &total_b), cudaSuccess);
            chunk = free_b > keep ? free_b - keep : 0;
        } else {
            cudaGetLastError(), chunk /= 2;
        }
    }
    return n;
}

static void unhog_device(void **hog, int n) {
    for (int i = 0; i < n; i++) assert_int_equal(cudaFree(hog[i]), cudaSuccess);
}

// Out of device memory at load and at session creation: clean G4_ERR_OUT_OF_MEMORY with a
// message, nothing left allocated (the retries below succeed), no abort. Two shapes of a full
// device: next to nothing free (< 64 KiB: even the stream and the cuBLAS handle fail, and
// cuBLAS says CUBLAS_STATUS_NOT_INITIALIZED, not "out of memory"), and room for the context but
// not for a long K/V cache.
static void test_out_of_memory(void **state) {
    (void)state;
    void *hog[128];
    int n = hog_device(hog, (int)G4_COUNT(hog), 0);
    struct g4_model *m = NULL;
    g4_status st = g4_model_load(&m, g4_src_path("tests/golden/e2b"), G4_DEVICE_CUDA, 0, 64, 1);
    printf("load with the device full -> %s: %s\n", g4_status_name(st), g4_last_error());
    assert_int_equal(st, G4_ERR_OUT_OF_MEMORY);
    assert_null(m);
    unhog_device(hog, n);

    m = load("e2b", G4_DEVICE_CUDA);
    n = hog_device(hog, (int)G4_COUNT(hog), 0);
    struct g4_session *s = NULL;
    st = g4_session_init(&s, m, 64);
    printf("session with the device full -> %s: %s\n", g4_status_name(st), g4_last_error());
    assert_int_equal(st, G4_ERR_OUT_OF_MEMORY);
    assert_null(s);
    unhog_device(hog, n);

    const int64_t long_ctx = m->cfg.max_position_embeddings;
    const size_t kv = (size_t)g4_config_kv_bytes(&m->cfg, long_ctx, sizeof(float));
    const size_t keep = kv / 2 < ((size_t)48 << 20) ? kv / 2 : ((size_t)48 << 20);
    n = hog_device(hog, (int)G4_COUNT(hog), keep);
    st = g4_session_init(&s, m, long_ctx);
    printf("session of %lld positions (K/V %zu bytes) with %zu bytes left -> %s: %s\n",
           (long long)long_ctx, kv, keep, g4_status_name(st), g4_last_error());
    assert_int_equal(st, G4_ERR_OUT_OF_MEMORY);
    assert_null(s);
    unhog_device(hog, n);

    assert_int_equal(g4_session_init(&s, m, 64), G4_OK);
    const int32_t toks[2] = {2, 100};
    step_ok(s, toks, 2, NULL, false);
    g4_session_free(s);
    g4_model_release(m);
}

// Every constraint the kernels assume is checked at load: a config outside them is a clear
// G4_ERR_UNSUPPORTED naming the constraint, before anything is uploaded.
static void test_unsupported_config(void **state) {
    (void)state;
    struct g4_model *cpu = load("e2b", G4_DEVICE_CPU);
    struct g4_config *c = malloc(sizeof *c);
    assert_non_null(c);
    static const struct { const char *what, *expect; } cases[] = {
        {"odd head_dim", "head_dim 31"},
        {"head_dim over 512", "head_dim 640"},
        {"heads not divisible by KV heads", "not divisible"},
        {"5000 experts", "experts"},
        {"top-k over the experts", "top-k"},
        {"Gemma 3 attention scale", "only Gemma 4"},
    };
    for (int i = 0; i < (int)G4_COUNT(cases); i++) {
        memcpy(c, &cpu->cfg, sizeof *c);
        switch (i) {
        case 0: c->layer[1].head_dim = 31; break;
        case 1: c->layer[2].head_dim = 640; break;
        case 2: c->num_attention_heads = 3; break;
        case 3: c->enable_moe_block = true, c->num_experts = 5000, c->top_k_experts = 8; break;
        case 4: c->enable_moe_block = true, c->num_experts = 4, c->top_k_experts = 5; break;
        case 5: c->attn_scale = 0.0625f; break;
        }
        struct g4_cuda_model *cm = NULL;
        g4_status st = g4_cuda_model_init(&cm, c, &cpu->w, 0);
        printf("%-34s -> %s: %s\n", cases[i].what, g4_status_name(st), g4_last_error());
        g4_cuda_model_free(cm);
        assert_int_equal(st, G4_ERR_UNSUPPORTED);
        assert_null(cm);
        assert_non_null(strstr(g4_last_error(), cases[i].expect));
    }
    free(c);
    g4_model_release(cpu);
}

// ---- the step driver: CUDA graphs and the device-side greedy pick ----------------------------
static struct g4_cuda_session *cuda_of(struct g4_session *s) {
    return (struct g4_cuda_session *)s->backend_state;
}

// Greedy sampling on the session; the device pick (no logits came back) must be what the CPU
// sampler chooses from the same logits, fetched afterwards.
static int32_t greedy_pick(struct g4_session *s) {
    assert_true(s->has_logits && s->logits_on_device);
    int32_t dev = -1, cpu = -2;
    assert_int_equal(g4_session_sample(s, &dev), G4_OK);
    assert_int_equal(g4_session_host_logits(s), G4_OK);
    assert_false(s->logits_on_device);
    cpu = g4_sampler_sample(&s->sampler, s->logits, s->history, (size_t)s->n_past);
    assert_int_equal(dev, cpu);
    return dev;
}

// Decode steps replayed from CUDA graphs equal the same steps enqueued one by one, bit for bit,
// over a multi-step decode of the E2B fixture (PLE, KV sharing, sliding rings that wrap) in
// both precisions: single-token steps returning logits, 3-token steps, and greedy steps that
// leave the logits on the device (the pick equals the CPU sampler's greedy choice, and the
// logits fetched afterwards equal the eager session's). The eager session never replays; the
// graph session captures each step shape once and replays it at every later position.
static void test_graph_decode(void **state) {
    (void)state;
    struct g4_reference r;
    assert_int_equal(g4_reference_read("e2b", &r), 0);
    struct g4_model *m = load("e2b", G4_DEVICE_CUDA);
    const int V = m->cfg.vocab_size, P = 12, T = r.n_tokens;
    float *le = malloc(sizeof(float) * 3 * V), *lg = malloc(sizeof(float) * 3 * V);
    assert_non_null(le), assert_non_null(lg);
    for (int prec = 0; prec < 2; prec++) {
        struct g4_session *e, *g;
        assert_int_equal(g4_session_init(&e, m, 64), G4_OK);
        assert_int_equal(g4_session_init(&g, m, 64), G4_OK);
        e->bf16 = g->bf16 = prec == 1;
        assert_int_equal(g4_sampler_set(&e->sampler, 0.0f, 0, 1.0f, 0.0f, 1.0f, 64), G4_OK);
        assert_int_equal(g4_sampler_set(&g->sampler, 0.0f, 0, 1.0f, 0.0f, 1.0f, 64), G4_OK);
        g4_cuda_session_use_graphs(cuda_of(e), false);
        step_ok(e, r.tokens, P, NULL, false);
        step_ok(g, r.tokens, P, NULL, false);
        int steps = 0;
        // single tokens with logits, then 3-token steps with logits, up to the fixture's end
        for (int t = P; t < T;) {
            const int n = t < P + 14 || t + 3 > T ? 1 : 3;
            step_ok(e, r.tokens + t, n, le, false);
            step_ok(g, r.tokens + t, n, lg, false);
            if (memcmp(le, lg, sizeof(float) * V) != 0) {
                int i = 0;
                while (le[i] == lg[i] || (le[i] != le[i] && lg[i] != lg[i])) i++;
                print_error("%s: step at %d (%d tokens): graph logit %d = %.9g, eager %.9g\n",
                            prec ? "bf16" : "fp32", t, n, i, lg[i], le[i]);
                fail();
            }
            t += n, steps++;
        }
        // greedy steps: the logits stay on the device, the pick comes back
        int32_t te = -1, tg = -2;
        assert_int_equal(g4_session_sample(e, &te), G4_OK); // from the host logits
        assert_int_equal(g4_session_sample(g, &tg), G4_OK);
        for (int i = 0; i < 10; i++) {
            assert_int_equal(te, tg);
            step_ok(e, &te, 1, NULL, false);
            step_ok(g, &tg, 1, NULL, false);
            te = greedy_pick(e), tg = greedy_pick(g);
            assert_int_equal(memcmp(e->logits, g->logits, sizeof(float) * V), 0);
        }
        const struct g4_cuda_graph_counts ce = g4_cuda_session_graph_counts(cuda_of(e));
        const struct g4_cuda_graph_counts cg = g4_cuda_session_graph_counts(cuda_of(g));
        printf("%s: %d logits steps + 10 greedy steps: graph session captured %llu, replayed %llu, "
               "eager %llu; eager session eager %llu; bit-identical\n", prec ? "bf16" : "fp32",
               steps, (unsigned long long)cg.captured, (unsigned long long)cg.replayed,
               (unsigned long long)cg.eager, (unsigned long long)ce.eager);
        assert_int_equal(ce.replayed, 0);
        assert_int_equal(ce.captured, 0);
        assert_int_equal(cg.captured, 3);        // 1 token + logits, 3 tokens + logits, greedy
        assert_int_equal(cg.capture_failed, 0);
        assert_int_equal(cg.replayed, (uint64_t)steps + 10);
        assert_int_equal(cg.eager, 1);           // the prompt
        g4_session_free(e);
        g4_session_free(g);
    }
    g4_model_release(m);
    free(le), free(lg), free(r.blob);
}

// A NaN weight surfaces through the device path as the session's G4_ERR_FORMAT naming the same
// logit id as the host check (logits copied back) names: row 17 of the LM head (tied to the
// embedding; the prompt does not contain token 17) made NaN on the device.
static void test_device_pick_nan(void **state) {
    (void)state;
    struct g4_reference r;
    assert_int_equal(g4_reference_read("e2b", &r), 0);
    struct g4_model *m = load("e2b", G4_DEVICE_CUDA);
    const struct g4_cuda_model *cm = (const struct g4_cuda_model *)m->device_state;
    const int H = cm->lm_head.cols, V = m->cfg.vocab_size;
    for (int i = 0; i < 12; i++) assert_int_not_equal(r.tokens[i], 17);
    uint16_t *nan_row = malloc(sizeof(uint16_t) * H);
    float *logits = malloc(sizeof(float) * V);
    assert_non_null(nan_row), assert_non_null(logits);
    for (int i = 0; i < H; i++) nan_row[i] = 0x7FC0;
    assert_int_equal(cudaMemcpy((uint16_t *)cm->lm_head.w + (size_t)17 * H, nan_row,
                                sizeof(uint16_t) * H, cudaMemcpyHostToDevice), cudaSuccess);
    char host_msg[512];
    for (int path = 0; path < 3; path++) { // host check, device pick eager, device pick graph
        struct g4_session *s;
        assert_int_equal(g4_session_init(&s, m, 64), G4_OK);
        assert_int_equal(g4_sampler_set(&s->sampler, 0.0f, 0, 1.0f, 0.0f, 1.0f, 64), G4_OK);
        g4_cuda_session_use_graphs(cuda_of(s), path == 2);
        g4_status st = g4_session_step(s, r.tokens, 11, path == 0 ? logits : NULL, false);
        if (path == 0) snprintf(host_msg, sizeof host_msg, "%s", g4_last_error());
        printf("NaN LM-head row, %s -> %s: %s\n",
               path == 0 ? "host check" : path == 1 ? "device pick" : "device pick (graph)",
               g4_status_name(st), g4_last_error());
        assert_int_equal(st, G4_ERR_FORMAT);
        assert_non_null(strstr(g4_last_error(), "non-finite logit (id 17)"));
        if (path) assert_string_equal(g4_last_error(), host_msg);
        assert_false(s->has_logits);
        // a decode step on the graph path too
        st = g4_session_step(s, r.tokens + 11, 1, NULL, false);
        assert_int_equal(st, G4_ERR_FORMAT);
        assert_non_null(strstr(g4_last_error(), "non-finite logit (id 17)"));
        g4_session_free(s);
    }
    g4_model_release(m);
    free(nan_row), free(logits), free(r.blob);
}

#ifdef G4EMU
// Kernel launches of one decode step on the e2b fixture (PLE, KV sharing), counted by the
// harness (g4emu_kernel_runs: kernels run, a cuBLAS GEMM counted as one), for the log and the
// kernels/README.md table: 1 token (the GEMV path: one launch per product, gelu * up and the
// PLE gate fused) in both precisions, and 9 tokens in FP32 (the GEMM path: split + GEMM + fold
// per product and the separate gelu / PLE gate kernels, the launch pattern every step had before
// the GEMV). A decode step must stay within 14 launches per layer + 10 (the GEMM path needs 26).
static unsigned long long count_step(struct g4_session *s, const int32_t *tokens, int n, bool bf16,
                                     float *logits) {
    g4_session_reset(s);
    s->bf16 = bf16;
    step_ok(s, tokens, 20, logits, false); // not counted
    assert_int_equal(cudaDeviceSynchronize(), cudaSuccess);
    const unsigned long long before = g4emu_kernel_runs();
    step_ok(s, tokens + 20, n, logits, false);
    return g4emu_kernel_runs() - before;
}

static void test_launch_count(void **state) {
    (void)state;
    struct g4_reference r;
    assert_int_equal(g4_reference_read("e2b", &r), 0);
    struct g4_model *m = load("e2b", G4_DEVICE_CUDA);
    const int L = m->cfg.num_hidden_layers;
    int writes = 0;
    for (int il = 0; il < L; il++) writes += m->cfg.layer[il].writes_kv;
    struct g4_session *s;
    assert_int_equal(g4_session_init(&s, m, 0), G4_OK);
    float *logits = malloc(sizeof(float) * m->cfg.vocab_size);
    assert_non_null(logits);
    const unsigned long long d32 = count_step(s, r.tokens, 1, false, logits);
    const unsigned long long d16 = count_step(s, r.tokens, 1, true, logits);
    const unsigned long long p9 = count_step(s, r.tokens, 9, false, logits);
    printf("e2b fixture (%d layers, %d writing K/V): launches of a 1-token step %llu (FP32), "
           "%llu (BF16), %.1f per layer; of a 9-token step (GEMM path) %llu, %.1f per layer\n",
           L, writes, d32, d16, (double)d32 / L, p9, (double)p9 / L);
    assert_true(d32 <= 14ull * L + 10 && d16 <= 14ull * L + 10);
    g4_session_free(s);
    g4_model_release(m);
    free(logits), free(r.blob);
}

// A step that fails after its layers (the harness refuses the final softcap's launch) commits
// none of its K/V rows: the session is where it was, and repeating the step gives the logits of
// a session where it never failed. The sliding window (8) is shorter than the prefill, so a
// commit of the failed step would overwrite ring rows the repeat still reads. Harness only: a
// GPU cannot be told to refuse one launch.
static void test_failed_step_commits_nothing(void **state) {
    (void)state;
    struct g4_reference r;
    assert_int_equal(g4_reference_read("e2b", &r), 0);
    struct g4_model *m = load("e2b", G4_DEVICE_CUDA);
    const int V = m->cfg.vocab_size, P = 12, N = 5;
    float *want = malloc(sizeof(float) * N * V), *got = malloc(sizeof(float) * N * V);
    assert_non_null(want), assert_non_null(got);
    struct g4_session *a, *b;
    assert_int_equal(g4_session_init(&a, m, 64), G4_OK);
    assert_int_equal(g4_session_init(&b, m, 64), G4_OK);
    step_ok(a, r.tokens, P, NULL, false);
    step_ok(a, r.tokens + P, N, want, true);
    step_ok(b, r.tokens, P, NULL, false);
    g4emu_fail_launches("logits.cu", 1);
    g4_status st = g4_session_step(b, r.tokens + P, N, got, true);
    printf("step with its softcap launch refused -> %s: %s\n", g4_status_name(st), g4_last_error());
    assert_int_not_equal(st, G4_OK);
    assert_int_equal(b->n_past, P);
    step_ok(b, r.tokens + P, N, got, true);
    assert_true(g4_compare_rel(got, want, (size_t)N * V, 0.0, "repeat after a failed step") == 0.0);
    g4_session_free(a);
    g4_session_free(b);
    g4_model_release(m);
    free(want), free(got), free(r.blob);
}
#endif

// g4_cuda_model_init_random (the GPU benchmark's models) shares the checkpoint path's layout:
// on every fixture the two models have the same size and every tensor the same offset and shape
// in the allocation. Its values: norm weights near 1, q/k norms near 0.25, matrices of standard
// deviation ~1/sqrt(cols), and a forward over 16 tokens gives finite, non-constant logits.
static ptrdiff_t off(const struct g4_cuda_model *m, const void *p) {
    return p ? (const char *)p - (const char *)m->base : -1;
}

static void same_mat(const struct g4_cuda_model *a, const struct g4_cuda_mat *ma,
                     const struct g4_cuda_model *b, const struct g4_cuda_mat *mb) {
    assert_int_equal(off(a, ma->w), off(b, mb->w));
    assert_int_equal(ma->rows, mb->rows);
    assert_int_equal(ma->cols, mb->cols);
}

// Every tensor of one layer: its matrices and its vectors (fp32 or bf16 pointers), in a fixed
// order, so two models' layers can be compared field by field.
enum { N_LAYER_MATS = 6, N_LAYER_VECS = 16 };
static void layer_tensors(const struct g4_cuda_layer *l, const struct g4_cuda_mat *mats[N_LAYER_MATS],
                          const void *vecs[N_LAYER_VECS]) {
    const struct g4_cuda_mat *m[N_LAYER_MATS] = {&l->qkv,  &l->o_proj,   &l->gate_up,
                                                 &l->down, &l->ple_gate, &l->ple_proj};
    const void *v[N_LAYER_VECS] = {l->input_layernorm, l->post_attention_layernorm,
                                   l->pre_feedforward_layernorm, l->post_feedforward_layernorm,
                                   l->q_norm, l->k_norm, l->rope_inv_freq,
                                   l->post_per_layer_input_norm, l->router_proj, l->router_scale,
                                   l->router_per_expert_scale, l->experts_gate_up, l->experts_down,
                                   l->post_feedforward_layernorm_1, l->post_feedforward_layernorm_2,
                                   l->pre_feedforward_layernorm_2};
    memcpy(mats, m, sizeof m);
    memcpy(vecs, v, sizeof v);
}

static void test_random_model(void **state) {
    (void)state;
    static const char *fixtures[] = {"e2b", "moe", "dense31b"};
    for (size_t f = 0; f < G4_COUNT(fixtures); f++) {
        struct g4_model *cpu = load(fixtures[f], G4_DEVICE_CPU);
        const struct g4_config *c = &cpu->cfg;
        struct g4_cuda_model *a = NULL, *b = NULL;
        assert_int_equal(g4_cuda_model_init(&a, c, &cpu->w, 0), G4_OK);
        assert_int_equal(g4_cuda_model_init_random(&b, c, 7, 0), G4_OK);
        assert_int_equal(a->bytes, b->bytes);
        same_mat(a, &a->embed, b, &b->embed);
        same_mat(a, &a->lm_head, b, &b->lm_head);
        same_mat(a, &a->ple_table, b, &b->ple_table);
        same_mat(a, &a->ple_model_proj, b, &b->ple_model_proj);
        assert_int_equal(off(a, a->ple_norm), off(b, b->ple_norm));
        assert_int_equal(off(a, a->norm), off(b, b->norm));
        for (int il = 0; il < c->num_hidden_layers; il++) {
            const struct g4_cuda_layer *la = &a->layer[il], *lb = &b->layer[il];
            const struct g4_cuda_mat *mats_a[N_LAYER_MATS], *mats_b[N_LAYER_MATS];
            const void *vec_a[N_LAYER_VECS], *vec_b[N_LAYER_VECS];
            layer_tensors(la, mats_a, vec_a);
            layer_tensors(lb, mats_b, vec_b);
            for (int i = 0; i < N_LAYER_MATS; i++) same_mat(a, mats_a[i], b, mats_b[i]);
            for (int i = 0; i < N_LAYER_VECS; i++)
                assert_int_equal(off(a, vec_a[i]), off(b, vec_b[i]));
        }
        // values of the random model
        const int H = c->hidden_size, hd = c->layer[0].head_dim;
        float *norm = malloc(sizeof(float) * (size_t)H), *qn = malloc(sizeof(float) * (size_t)hd);
        const struct g4_cuda_mat *q = &b->layer[0].qkv;
        const size_t nw = (size_t)q->rows * q->cols;
        uint16_t *w = malloc(nw * 2);
        assert_non_null(norm), assert_non_null(qn), assert_non_null(w);
        assert_int_equal(cudaMemcpy(norm, b->layer[0].input_layernorm, sizeof(float) * H,
                                    cudaMemcpyDeviceToHost), cudaSuccess);
        assert_int_equal(cudaMemcpy(qn, b->layer[0].q_norm, sizeof(float) * hd,
                                    cudaMemcpyDeviceToHost), cudaSuccess);
        assert_int_equal(cudaMemcpy(w, q->w, nw * 2, cudaMemcpyDeviceToHost), cudaSuccess);
        for (int i = 0; i < H; i++) assert_true(fabsf(norm[i] - 1.0f) < 0.1f);
        for (int i = 0; i < hd; i++) assert_true(fabsf(qn[i] - 0.25f) < 0.025f);
        double ss = 0;
        for (size_t i = 0; i < nw; i++) {
            uint32_t u = (uint32_t)w[i] << 16;
            float v;
            memcpy(&v, &u, 4);
            ss += (double)v * v;
        }
        const double sd = sqrt(ss / (double)nw), want = 1.0 / sqrt((double)q->cols);
        printf("%-8s random model: %zu bytes, layout as the checkpoint's; q/k/v sd %.4f "
               "(1/sqrt(cols) %.4f)\n", fixtures[f], b->bytes, sd, want);
        assert_true(fabs(sd / want - 1.0) < 0.1);
        struct g4_cuda_session *s = NULL;
        assert_int_equal(g4_cuda_session_init(&s, b, 64, 16), G4_OK);
        int32_t toks[16];
        for (int i = 0; i < 16; i++) toks[i] = (int32_t)((i * 37 + 5) % c->vocab_size);
        const int V = c->vocab_size;
        float *lg = malloc(sizeof(float) * (size_t)V);
        assert_non_null(lg);
        g4_status st = g4_cuda_forward(s, toks, 16, 0, lg, false, G4_CUDA_FP32);
        if (st != G4_OK) print_error("forward: %s\n", g4_last_error());
        assert_int_equal(st, G4_OK);
        float lo = lg[0], hi = lg[0];
        for (int i = 0; i < V; i++) {
            assert_true(isfinite(lg[i]));
            lo = fminf(lo, lg[i]), hi = fmaxf(hi, lg[i]);
        }
        printf("%-8s random model: logits in [%.3f, %.3f]\n", fixtures[f], lo, hi);
        assert_true(hi - lo > 1e-3f);
        g4_cuda_session_free(s);
        g4_cuda_model_free(a);
        g4_cuda_model_free(b);
        free(norm), free(qn), free(w), free(lg);
        g4_model_release(cpu);
    }
}

#ifdef G4EMU
struct log_capture {
    char text[1024];
    int n;
};
static void capture_log(int level, const char *msg, void *user) {
    struct log_capture *c = user;
    if (level <= G4_LOG_WARN && strstr(msg, "CUDA graph")) {
        snprintf(c->text, sizeof c->text, "%s", msg);
        c->n++;
    }
}

// A capture that fails (the harness refuses a launch inside it) leaves the session usable: the
// step runs eagerly with the same result as a session that never captured, the log says why,
// and that step shape stays eager; another shape still captures.
static void test_graph_capture_fails(void **state) {
    (void)state;
    struct g4_reference r;
    assert_int_equal(g4_reference_read("e2b", &r), 0);
    struct g4_model *m = load("e2b", G4_DEVICE_CUDA);
    const int V = m->cfg.vocab_size, P = 12;
    float *le = malloc(sizeof(float) * V), *lg = malloc(sizeof(float) * V);
    assert_non_null(le), assert_non_null(lg);
    struct g4_session *e, *g;
    assert_int_equal(g4_session_init(&e, m, 64), G4_OK);
    assert_int_equal(g4_session_init(&g, m, 64), G4_OK);
    g4_cuda_session_use_graphs(cuda_of(e), false);
    step_ok(e, r.tokens, P, NULL, false);
    step_ok(g, r.tokens, P, NULL, false);
    struct log_capture lc = {{0}, 0};
    g4_log_set(capture_log, &lc);
    for (int t = P; t < P + 4; t++) {
        step_ok(e, r.tokens + t, 1, le, false);
        // the next launch of rmsnorm.cu is refused: one inside the first capture
        if (t == P) g4emu_fail_launches("rmsnorm.cu", 1);
        step_ok(g, r.tokens + t, 1, lg, false);
        assert_int_equal(memcmp(le, lg, sizeof(float) * V), 0);
    }
    g4_log_set(NULL, NULL);
    struct g4_cuda_graph_counts c = g4_cuda_session_graph_counts(cuda_of(g));
    printf("capture with a refused launch: log \"%s\"; captured %llu, failed %llu, eager %llu\n",
           lc.text, (unsigned long long)c.captured, (unsigned long long)c.capture_failed,
           (unsigned long long)c.eager);
    assert_int_equal(lc.n, 1);
    assert_non_null(strstr(lc.text, "cudaErrorLaunchOutOfResources"));
    assert_int_equal(c.capture_failed, 1);
    assert_int_equal(c.captured, 0);
    assert_int_equal(c.eager, 1 + 4);
    // the greedy shape captures and replays
    step_ok(e, r.tokens + P + 4, 1, NULL, false);
    step_ok(g, r.tokens + P + 4, 1, NULL, false);
    c = g4_cuda_session_graph_counts(cuda_of(g));
    assert_int_equal(c.captured, 1);
    assert_int_equal(c.replayed, 1);
    assert_int_equal(e->greedy_next, g->greedy_next);
    g4_session_free(e);
    g4_session_free(g);
    g4_model_release(m);
    free(le), free(lg), free(r.blob);
}
#endif

// Contract 2 of the precisions (engine.h, g4_cuda_session_kv_policy): with bf16 K/V in BF16,
// a BF16 forward at position 0 re-makes the fp32 cache in bf16 (half the bytes); an FP32
// forward on a session holding bf16 tokens fails ("reset the session first") and changes
// nothing, so the session continues exactly like one that never saw it; after a reset an FP32
// forward re-makes the cache in fp32 and equals a fresh FP32 session bit for bit. Accuracy of
// bf16 K/V against fp32 K/V (both BF16): printed, bounded at 0.2 (the fixture's measured
// K/V-rounding effect is 0.05, kernels/README.md).
static void test_kv_dtype(void **state) {
    (void)state;
    struct g4_reference r;
    assert_int_equal(g4_reference_read("e2b", &r), 0);
    struct g4_model *m = load("e2b", G4_DEVICE_CUDA);
    const int V = m->cfg.vocab_size, P = 12, N = 3;
    float *want = malloc(sizeof(float) * N * V), *got = malloc(sizeof(float) * N * V);
    float *f32 = malloc(sizeof(float) * N * V);
    assert_non_null(want), assert_non_null(got), assert_non_null(f32);
    struct g4_session *a, *b, *c;
    assert_int_equal(g4_session_init(&a, m, 64), G4_OK);
    assert_int_equal(g4_session_init(&b, m, 64), G4_OK);
    assert_int_equal(g4_session_init(&c, m, 64), G4_OK);
    const size_t fp32_bytes = g4_cuda_session_kv_bytes(a->backend_state);
    g4_cuda_session_kv_policy(a->backend_state, true);
    g4_cuda_session_kv_policy(b->backend_state, true);
    a->bf16 = b->bf16 = c->bf16 = true; // c: BF16 with fp32 K/V (the default policy)
    step_ok(a, r.tokens, P, NULL, false);
    const size_t bf16_bytes = g4_cuda_session_kv_bytes(a->backend_state);
    printf("K/V bytes: fp32 %zu, bf16 %zu\n", fp32_bytes, bf16_bytes);
    assert_int_equal(bf16_bytes * 2, fp32_bytes);
    step_ok(a, r.tokens + P, N, want, true);
    step_ok(c, r.tokens, P, NULL, false);
    step_ok(c, r.tokens + P, N, f32, true);
    assert_int_equal(g4_cuda_session_kv_bytes(c->backend_state), fp32_bytes);
    const double d = g4_compare_rel(want, f32, (size_t)N * V, 0.2, "e2b BF16, bf16 K/V vs fp32 K/V");
    assert_true(d <= 0.2 && d > 0.0); // the rounding happens, and stays bounded

    step_ok(b, r.tokens, P, NULL, false);
    b->bf16 = false; // FP32 wants fp32 K/V: the session holds bf16 rows
    g4_status st = g4_session_step(b, r.tokens + P, N, got, true);
    printf("FP32 step on a bf16 K/V session -> %s: %s\n", g4_status_name(st), g4_last_error());
    assert_int_equal(st, G4_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(g4_last_error(), "reset the session first"));
    assert_int_equal(b->n_past, P);
    assert_int_equal(g4_cuda_session_kv_bytes(b->backend_state), bf16_bytes);
    b->bf16 = true;
    step_ok(b, r.tokens + P, N, got, true);
    assert_true(g4_compare_rel(got, want, (size_t)N * V, 0.0, "bf16 K/V after a refused FP32 step") == 0.0);

    g4_session_reset(b); // empty again: FP32 re-makes the cache in fp32
    b->bf16 = false;
    step_ok(b, r.tokens, P + N, NULL, false);
    assert_int_equal(g4_cuda_session_kv_bytes(b->backend_state), fp32_bytes);
    g4_session_reset(b);
    step_ok(b, r.tokens, P, NULL, false);
    step_ok(b, r.tokens + P, N, got, true);
    c->bf16 = false;
    g4_session_reset(c);
    step_ok(c, r.tokens, P, NULL, false);
    step_ok(c, r.tokens + P, N, f32, true);
    assert_true(g4_compare_rel(got, f32, (size_t)N * V, 0.0, "FP32 after a re-made cache") == 0.0);
    g4_session_free(a), g4_session_free(b), g4_session_free(c);
    g4_model_release(m);
    free(want), free(got), free(f32), free(r.blob);
}

int main(void) {
    if (g4_no_cuda_device()) return 77;
    struct CMUnitTest tests[] = {
        cmocka_unit_test(test_e2b),        cmocka_unit_test(test_moe),
        cmocka_unit_test(test_bf16_precision), cmocka_unit_test(test_moe_precisions),
        cmocka_unit_test(test_dense31b),   cmocka_unit_test(test_multimodal),
        cmocka_unit_test(test_bad_device), cmocka_unit_test(test_free_order),
        cmocka_unit_test(test_out_of_memory), cmocka_unit_test(test_unsupported_config),
        cmocka_unit_test(test_random_model), cmocka_unit_test(test_kv_dtype),
        cmocka_unit_test(test_graph_decode), cmocka_unit_test(test_device_pick_nan),
#ifdef G4EMU
        cmocka_unit_test(test_failed_step_commits_nothing),
        cmocka_unit_test(test_launch_count),
        cmocka_unit_test(test_graph_capture_fails),
#endif
    };
    return _cmocka_run_group_tests("tests", tests, g4_cuda_tests_select(tests, G4_COUNT(tests)),
                                   NULL, NULL);
}

#endif
