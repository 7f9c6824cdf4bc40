// Golden tests: the CPU engine against transformers' float32 logits on every fixture in
// tests/golden (made by tests/golden/make_fixtures.py), for a full prefill, for token-by-token
// decoding after a short prefill, for uneven chunks longer than the sliding window, and for
// greedy continuation; Gemma 4 and Gemma 3 (gemma3*) fixtures alike. A missing fixture is a failure. Each fixture runs twice: on the fast
// kernels this CPU has (AVX-512 / AVX2) and on the portable C reference.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "matmul_cpu.h"
#include "model.h"
#include "session.h"

// fp32 engine vs fp32 transformers: only summation order differs.
#define TOL_FP32 1e-4

static struct g4_model *load(const char *fixture) {
    char rel[256];
    snprintf(rel, sizeof rel, "tests/golden/%s", fixture);
    struct g4_model *m = NULL;
    g4_status st = g4_model_load(&m, g4_src_path(rel), G4_DEVICE_CPU, 0, 256, 2);
    if (st != G4_OK) print_error("load %s: %s\n", fixture, g4_last_error());
    assert_int_equal(st, G4_OK);
    return m;
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static void run_fixture_isa(const char *fixture_name, enum g4_isa isa) {
    g4_matmul_limit_isa(isa);
    char fixture[64];
    snprintf(fixture, sizeof fixture, "%s", fixture_name);
    printf("-- %s on %s kernels\n", fixture, g4_isa_name(g4_matmul_isa()));
    struct g4_reference r;
    assert_int_equal(g4_reference_read(fixture, &r), 0);
    struct g4_model *m = load(fixture);
    const int T = r.n_tokens, V = r.vocab;
    assert_int_equal(V, m->cfg.vocab_size);
    float *logits = malloc(sizeof(float) * T * V);
    char what[128];

    // 1. full prefill, logits at every position
    struct g4_session *s;
    assert_int_equal(g4_session_init(&s, m, 0), G4_OK);
    assert_int_equal(g4_session_step(s, r.tokens, T, logits, true), G4_OK);
    snprintf(what, sizeof what, "%s prefill", fixture);
    assert_true(g4_compare_rel(logits, r.logits, (size_t)T * V, TOL_FP32, what) <= TOL_FP32);

    // 2. prefill 20, then token by token (well past 2x the sliding window)
    g4_session_reset(s);
    memset(logits, 0, sizeof(float) * T * V);
    assert_int_equal(g4_session_step(s, r.tokens, 20, logits, true), G4_OK);
    for (int t = 20; t < T; t++)
        assert_int_equal(g4_session_step(s, r.tokens + t, 1, logits + (size_t)t * V, false), G4_OK);
    snprintf(what, sizeof what, "%s decode", fixture);
    assert_true(g4_compare_rel(logits, r.logits, (size_t)T * V, TOL_FP32, what) <= TOL_FP32);

    // 3. uneven chunks, some longer than the window (ring staging)
    g4_session_reset(s);
    static const int chunks[] = {5, 13, 1, 9, 30};
    int done = 0;
    for (size_t i = 0; done < T; i++) {
        int n = chunks[i % G4_COUNT(chunks)];
        if (n > T - done) n = T - done;
        assert_int_equal(g4_session_step(s, r.tokens + done, n, logits + (size_t)done * V, true), G4_OK);
        done += n;
    }
    snprintf(what, sizeof what, "%s chunked", fixture);
    assert_true(g4_compare_rel(logits, r.logits, (size_t)T * V, TOL_FP32, what) <= TOL_FP32);

    // 4. greedy continuation equals transformers' generate(do_sample=False)
    int32_t tok = argmax(logits + (size_t)(T - 1) * V, V);
    int n_same = 0;
    for (int i = 0; i < r.n_gen; i++) {
        if (tok != r.gen[i]) break;
        n_same++;
        assert_int_equal(g4_session_step(s, &tok, 1, logits, false), G4_OK);
        tok = argmax(logits, V);
    }
    printf("%-40s greedy tokens identical: %d / %d\n", fixture, n_same, r.n_gen);
    assert_int_equal(n_same, r.n_gen);

    g4_session_free(s);
    g4_model_release(m);
    free(logits);
    free(r.blob);
    g4_matmul_limit_isa(G4_ISA_AVX512BF16);
}

static void run_fixture(const char *fixture) {
    run_fixture_isa(fixture, G4_ISA_AVX512BF16); // the best this CPU has
    if (g4_matmul_isa() != G4_ISA_PORTABLE) run_fixture_isa(fixture, G4_ISA_PORTABLE);
}

static void copy_file(const char *from_dir, const char *to_dir, const char *name) {
    char a[4096], b[4096];
    snprintf(a, sizeof a, "%s/%s", from_dir, name);
    snprintf(b, sizeof b, "%s/%s", to_dir, name);
    FILE *in = fopen(a, "rb"), *out = fopen(b, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    fclose(out);
}

// A NaN inside a weight matrix (matrices are not scanned at load) must end in an error from the
// step, not in NaN logits handed to the caller or the sampler.
static void test_nan_matrix(void **state) {
    (void)state;
    const char *src = g4_src_path("tests/golden/e2b"), *dir = g4_tmpdir("nanmatrix");
    assert_non_null(dir);
    copy_file(src, dir, "config.json");
    copy_file(src, dir, "model.safetensors");
    struct g4_safetensors st;
    assert_int_equal(g4_safetensors_open(&st, dir), G4_OK);
    const struct g4_tensor *t = NULL;
    for (int i = 0; i < st.n_tensors && !t; i++)
        if (strstr(st.tensors[i].name, "layers.0.mlp.down_proj.weight")) t = &st.tensors[i];
    assert_non_null(t);
    assert_int_equal(t->dtype, G4_DTYPE_F32);
    const size_t data_offset = t->data_offset;
    g4_safetensors_free(&st);
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    uint64_t header_len = 0;
    assert_int_equal(fread(&header_len, 8, 1, f), 1); // little-endian, as on x86/ARM hosts
    const float nan = NAN;
    assert_int_equal(fseek(f, (long)(8 + header_len + data_offset + 4 * 7), SEEK_SET), 0);
    assert_int_equal(fwrite(&nan, 4, 1, f), 1);
    fclose(f);

    struct g4_model *m = NULL;
    assert_int_equal(g4_model_load(&m, dir, G4_DEVICE_CPU, 0, 64, 2), G4_OK);
    struct g4_session *s;
    assert_int_equal(g4_session_init(&s, m, 0), G4_OK);
    const int32_t toks[3] = {2, 10, 11};
    float *logits = malloc(sizeof(float) * m->cfg.vocab_size);
    const g4_status got = g4_session_step(s, toks, 3, logits, false);
    printf("NaN in layers.0 down_proj -> %s: %s\n", g4_status_name(got), g4_last_error());
    assert_int_equal(got, G4_ERR_FORMAT);
    assert_non_null(strstr(g4_last_error(), "non-finite logit"));
    assert_false(s->has_logits);
    free(logits);
    g4_session_free(s);
    g4_model_release(m);
    for (const char *name = "config.json"; name; name = strcmp(name, "config.json") ? NULL : "model.safetensors") {
        snprintf(path, sizeof path, "%s/%s", dir, name);
        remove(path);
    }
    rmdir(dir);
}

// GEMMA4_PRECISION_BF16 (s->bf16): products with bf16 weights round their activations to bf16
// (the products themselves are tested exactly in test_ops_cpu). The bf16 fixture (moe) has a
// second reference, reference_bf16act.bin: transformers' float32 forward with every nn.Linear
// input but the router rounded to bf16, i.e. the same numerics. Against it the tolerance is
// still wider than fp32's: a sum in another order can round a later activation to the
// neighbouring bf16 value (2^-8 apart), and this tiny random network amplifies that (the
// rounding itself moves its logits by 5e-2 median, 0.45 worst, from the float32 reference). So:
// every position within 3e-2 and the median within 5e-3 of reference_bf16act, argmax equal at
// all but 2 positions, and the logits must differ from our own fp32 ones (the rounding happens);
// for a full prefill and for one token at a time (the decode kernels), on each ISA. Fixtures
// with f32/f16 weights are unaffected, bit for bit.
static double median(double *v, int n) {
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            const double t = v[j];
            v[j] = v[j - 1], v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void check_bf16_logits(const char *what, const float *got, const float *fp32,
                              const struct g4_reference *r) {
    const int T = r->n_tokens, V = r->vocab;
    double rel[256], moved = 0.0;
    int same = 0;
    assert_true(T <= 256);
    for (int t = 0; t < T; t++) {
        const float *g = got + (size_t)t * V, *ref = r->logits + (size_t)t * V;
        double d = 0.0, m = 0.0;
        for (int i = 0; i < V; i++) {
            d = fmax(d, fabs((double)g[i] - ref[i]));
            m = fmax(m, fabs((double)ref[i]));
            moved = fmax(moved, fabs((double)g[i] - fp32[(size_t)t * V + i]));
        }
        rel[t] = d / m;
        same += argmax(g, V) == argmax(ref, V);
    }
    const double med = median(rel, T);
    printf("%-28s vs reference_bf16act: median position rel %.2e, worst %.2e, argmax equal "
           "%d / %d; max change from fp32 %.2e\n", what, med, rel[T - 1], same, T, moved);
    assert_true(moved > 1e-3);
    assert_true(med <= 5e-3 && rel[T - 1] <= 3e-2);
    assert_true(same >= T - 2);
}

static void test_bf16_precision(void **state) {
    (void)state;
    static const char *fixtures[] = {"moe", "e2b", "dense31b"};
    for (size_t fi = 0; fi < G4_COUNT(fixtures); fi++) {
        const char *fixture = fixtures[fi];
        struct g4_reference r;
        assert_int_equal(g4_reference_read(fixture, &r), 0);
        struct g4_model *m = load(fixture);
        const int T = r.n_tokens, V = r.vocab;
        const size_t n = (size_t)T * V;
        float *fp32 = malloc(sizeof(float) * n), *bf = malloc(sizeof(float) * n);
        struct g4_session *s;
        assert_int_equal(g4_session_init(&s, m, 0), G4_OK);
        const bool bf16_weights = m->w.layer[0].q_proj.dtype == G4_DTYPE_BF16;
        struct g4_reference rb = {0};
        if (bf16_weights) assert_int_equal(g4_reference_read_file(fixture, "reference_bf16act.bin", &rb), 0);
        for (int pass = 0; pass < 2; pass++) {
            const enum g4_isa isa = pass ? G4_ISA_PORTABLE : G4_ISA_AVX512BF16;
            g4_matmul_limit_isa(isa);
            g4_session_reset(s);
            s->bf16 = false;
            assert_int_equal(g4_session_step(s, r.tokens, T, fp32, true), G4_OK);
            g4_session_reset(s);
            s->bf16 = true;
            assert_int_equal(g4_session_step(s, r.tokens, T, bf, true), G4_OK);
            char what[96];
            snprintf(what, sizeof what, "%s bf16 prefill, %s", fixture, g4_isa_name(g4_matmul_isa()));
            if (bf16_weights) {
                check_bf16_logits(what, bf, fp32, &rb);
            } else {
                printf("%-28s %s weights: must equal fp32 bit for bit\n", what,
                       g4_dtype_name(m->w.layer[0].q_proj.dtype));
                assert_memory_equal(bf, fp32, sizeof(float) * n);
            }
        }
        g4_matmul_limit_isa(G4_ISA_AVX512BF16);
        // one token at a time (the fp32 logits of the last pass serve for "moved")
        g4_session_reset(s);
        for (int t = 0; t < T; t++)
            assert_int_equal(g4_session_step(s, r.tokens + t, 1, bf + (size_t)t * V, false), G4_OK);
        char what[96];
        snprintf(what, sizeof what, "%s bf16 one token a step", fixture);
        if (bf16_weights) check_bf16_logits(what, bf, fp32, &rb);
        else assert_true(g4_compare_rel(bf, r.logits, n, TOL_FP32, what) <= TOL_FP32);
        g4_session_free(s);
        g4_model_release(m);
        free(fp32), free(bf), free(r.blob), free(rb.blob);
    }
}

static void test_e2b(void **state) { (void)state; run_fixture("e2b"); }
static void test_moe(void **state) { (void)state; run_fixture("moe"); }
static void test_dense31b(void **state) { (void)state; run_fixture("dense31b"); }
static void test_multimodal(void **state) { (void)state; run_fixture("multimodal"); }
static void test_gemma3(void **state) { (void)state; run_fixture("gemma3"); }
static void test_gemma3_sliding(void **state) { (void)state; run_fixture("gemma3_sliding"); }
static void test_gemma3_multimodal(void **state) { (void)state; run_fixture("gemma3_multimodal"); }
// Configurations transformers reads in a way an earlier gemma4 did not (tests/golden/README.md).
static void test_tie_mm_untied(void **state) { (void)state; run_fixture("tie_mm_untied"); }
static void test_tie_mm_tied(void **state) { (void)state; run_fixture("tie_mm_tied"); }
static void test_head_dim_eq(void **state) { (void)state; run_fixture("head_dim_eq"); }
static void test_rope_partial(void **state) { (void)state; run_fixture("rope_partial"); }
static void test_rope_factor(void **state) { (void)state; run_fixture("rope_factor"); }

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_e2b),
        cmocka_unit_test(test_moe),
        cmocka_unit_test(test_dense31b),
        cmocka_unit_test(test_multimodal),
        cmocka_unit_test(test_gemma3),
        cmocka_unit_test(test_gemma3_sliding),
        cmocka_unit_test(test_gemma3_multimodal),
        cmocka_unit_test(test_tie_mm_untied),
        cmocka_unit_test(test_tie_mm_tied),
        cmocka_unit_test(test_head_dim_eq),
        cmocka_unit_test(test_rope_partial),
        cmocka_unit_test(test_rope_factor),
        cmocka_unit_test(test_nan_matrix),
        cmocka_unit_test(test_bf16_precision),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
