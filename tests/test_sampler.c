// Sampler: greedy == argmax (lowest id on ties), seeded reproducibility, top-k / top-p / min-p
// cut-offs on hand-built rows checked by frequency, repetition penalty, and parameter errors.
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
#include "sampler.h"

// Frequencies over n draws have binomial standard error <= sqrt(0.25 / n); each tolerance is
// more than 4 of those: 20000 draws (se 0.0035) -> 0.015 on small rows; the 262144-entry rows
// cost O(n_vocab) per draw, so they take 500 draws (se 0.0224) -> 0.09.
#define N_DRAWS 20000
#define FREQ_TOL 0.015
#define N_DRAWS_BIG 500
#define FREQ_TOL_BIG 0.09

static struct g4_sampler new_sampler(int32_t n_vocab) {
    struct g4_sampler s;
    assert_int_equal(g4_sampler_init(&s, n_vocab), G4_OK);
    return s;
}

// Counts n_draws samples into counts (n_vocab,).
static void draw_n(struct g4_sampler *s, const float *logits, int *counts, int n_draws) {
    memset(counts, 0, sizeof(int) * (size_t)s->n_vocab);
    for (int i = 0; i < n_draws; i++) {
        int32_t t = g4_sampler_sample(s, logits, NULL, 0);
        assert_true(t >= 0 && t < s->n_vocab);
        counts[t]++;
    }
}

static void draw(struct g4_sampler *s, const float *logits, int *counts) {
    draw_n(s, logits, counts, N_DRAWS);
}

// expected (n,) are probabilities; zero means the id must never appear.
static void expect_freqs_n(const int *counts, const double *expected, int n, int n_draws,
                           double tol, const char *what) {
    for (int i = 0; i < n; i++) {
        double f = (double)counts[i] / n_draws;
        if (expected[i] == 0.0 && counts[i] != 0)
            fail_msg("%s: id %d was cut off but drawn %d times", what, i, counts[i]);
        if (fabs(f - expected[i]) > tol)
            fail_msg("%s: id %d frequency %.4f, expected %.4f (tol %.3f)", what, i, f,
                     expected[i], tol);
    }
}

static void expect_freqs(const int *counts, const double *expected, int n, const char *what) {
    expect_freqs_n(counts, expected, n, N_DRAWS, FREQ_TOL, what);
}

// Row whose softmax is exactly p (logits = log p).
static void logits_from_probs(float *logits, const double *p, int n) {
    for (int i = 0; i < n; i++) logits[i] = p[i] > 0 ? (float)log(p[i]) : -INFINITY;
}

static void test_greedy_argmax(void **state) {
    (void)state;
    struct g4_sampler s = new_sampler(7);
    const float row[7] = {-1.0f, 3.0f, 0.5f, 3.0f, -INFINITY, 2.9f, 3.0f};
    assert_int_equal(g4_sampler_sample(&s, row, NULL, 0), 1); // ties: lowest id, like torch
    const float neg[7] = {-5.0f, -4.0f, -3.5f, -9.0f, -3.5f, -7.0f, -3.50001f};
    assert_int_equal(g4_sampler_sample(&s, neg, NULL, 0), 2);
    const float nan_first[7] = {NAN, -1.0f, 0.0f, NAN, 1.0f, 0.5f, 1.0f};
    assert_int_equal(g4_sampler_sample(&s, nan_first, NULL, 0), 4); // NaN never wins
    g4_sampler_free(&s);

    // Large vocabulary: the maximum at the last id, a tie at a higher id loses.
    const int32_t n = 262144;
    s = new_sampler(n);
    float *big = malloc(sizeof(float) * n);
    for (int32_t i = 0; i < n; i++) big[i] = (float)((i * 7919) % 1000) * 0.01f;
    big[n - 1] = 50.0f;
    assert_int_equal(g4_sampler_sample(&s, big, NULL, 0), n - 1);
    big[12345] = 50.0f;
    assert_int_equal(g4_sampler_sample(&s, big, NULL, 0), 12345);
    free(big);
    g4_sampler_free(&s);
}

static void test_seed_reproducible(void **state) {
    (void)state;
    const int32_t n = 1000;
    struct g4_sampler s = new_sampler(n);
    float *row = malloc(sizeof(float) * n);
    for (int32_t i = 0; i < n; i++) row[i] = (float)((i * 37) % 101) * 0.05f; // many near-ties
    assert_int_equal(g4_sampler_set(&s, 1.0f, 0, 1.0f, 0.0f, 1.0f, 64), G4_OK);
    int32_t a[64], b[64], c[64];
    g4_sampler_set_seed(&s, 42);
    for (int i = 0; i < 64; i++) a[i] = g4_sampler_sample(&s, row, NULL, 0);
    g4_sampler_set_seed(&s, 42);
    for (int i = 0; i < 64; i++) b[i] = g4_sampler_sample(&s, row, NULL, 0);
    g4_sampler_set_seed(&s, 43);
    for (int i = 0; i < 64; i++) c[i] = g4_sampler_sample(&s, row, NULL, 0);
    assert_memory_equal(a, b, sizeof a);
    int n_diff = 0;
    for (int i = 0; i < 64; i++) n_diff += a[i] != c[i];
    assert_true(n_diff > 32); // ~1000 likely ids: different seeds almost never agree
    // Seed 0 is a valid seed (splitmix64) and still produces varied draws.
    g4_sampler_set_seed(&s, 0);
    int n_distinct = 0;
    int32_t first = g4_sampler_sample(&s, row, NULL, 0);
    for (int i = 0; i < 63; i++) n_distinct += g4_sampler_sample(&s, row, NULL, 0) != first;
    assert_true(n_distinct > 32);
    free(row);
    g4_sampler_free(&s);
}

static void test_top_k_one_is_greedy(void **state) {
    (void)state;
    const int32_t n = 4096;
    struct g4_sampler s = new_sampler(n);
    float *row = malloc(sizeof(float) * n);
    g4_sampler_set_seed(&s, 7);
    for (int rep = 0; rep < 20; rep++) {
        uint64_t h = 0x1234567ull + (uint64_t)rep;
        for (int32_t i = 0; i < n; i++) {
            h = h * 6364136223846793005ull + 1442695040888963407ull;
            row[i] = (float)(h >> 40) * 1e-6f; // distinct-ish values in [0, 16.8)
        }
        assert_int_equal(g4_sampler_set(&s, 0.0f, 0, 1.0f, 0.0f, 1.0f, 64), G4_OK);
        int32_t greedy = g4_sampler_sample(&s, row, NULL, 0);
        assert_int_equal(g4_sampler_set(&s, 2.5f, 1, 1.0f, 0.0f, 1.0f, 64), G4_OK);
        for (int k = 0; k < 10; k++) assert_int_equal(g4_sampler_sample(&s, row, NULL, 0), greedy);
    }
    free(row);
    g4_sampler_free(&s);
}

static void test_temperature_only(void **state) {
    (void)state;
    struct g4_sampler s = new_sampler(4);
    const double p[4] = {0.1, 0.2, 0.3, 0.4};
    float row[4];
    logits_from_probs(row, p, 4);
    int counts[4];
    g4_sampler_set_seed(&s, 1);
    assert_int_equal(g4_sampler_set(&s, 1.0f, 0, 1.0f, 0.0f, 1.0f, 64), G4_OK);
    draw(&s, row, counts);
    expect_freqs(counts, p, 4, "T=1");
    // T = 0.5 squares the probabilities before renormalizing: (1, 4, 9, 16) / 30.
    const double p_half[4] = {1.0 / 30, 4.0 / 30, 9.0 / 30, 16.0 / 30};
    assert_int_equal(g4_sampler_set(&s, 0.5f, 0, 1.0f, 0.0f, 1.0f, 64), G4_OK);
    draw(&s, row, counts);
    expect_freqs(counts, p_half, 4, "T=0.5");
    g4_sampler_free(&s);
}

static void test_top_k(void **state) {
    (void)state;
    struct g4_sampler s = new_sampler(6);
    const double p[6] = {0.05, 0.30, 0.10, 0.25, 0.20, 0.10};
    float row[6];
    logits_from_probs(row, p, 6);
    int counts[6];
    g4_sampler_set_seed(&s, 2);
    // top-3 = ids 1, 3, 4 renormalized: 0.30 / 0.75, 0.25 / 0.75, 0.20 / 0.75.
    assert_int_equal(g4_sampler_set(&s, 1.0f, 3, 1.0f, 0.0f, 1.0f, 64), G4_OK);
    draw(&s, row, counts);
    const double want[6] = {0, 0.4, 0, 1.0 / 3, 0.8 / 3, 0};
    expect_freqs(counts, want, 6, "top_k=3");
    // top-4: the 4th largest is 0.10, shared by ids 2 and 5; HF keeps every tie (>= threshold).
    assert_int_equal(g4_sampler_set(&s, 1.0f, 4, 1.0f, 0.0f, 1.0f, 64), G4_OK);
    draw(&s, row, counts);
    const double want4[6] = {0, 0.30 / 0.95, 0.10 / 0.95, 0.25 / 0.95, 0.20 / 0.95, 0.10 / 0.95};
    expect_freqs(counts, want4, 6, "top_k=4 with tie");
    g4_sampler_free(&s);
}

static void test_top_p(void **state) {
    (void)state;
    struct g4_sampler s = new_sampler(5);
    const double p[5] = {0.10, 0.40, 0.05, 0.30, 0.15};
    float row[5];
    logits_from_probs(row, p, 5);
    int counts[5];
    g4_sampler_set_seed(&s, 3);
    // Descending 0.40, 0.30, 0.15, ...: mass before 0.15 is 0.70 < 0.75, so 0.15 is kept and
    // crosses; 0.10 (mass before 0.85) is cut.
    assert_int_equal(g4_sampler_set(&s, 1.0f, 0, 0.75f, 0.0f, 1.0f, 64), G4_OK);
    draw(&s, row, counts);
    const double want[5] = {0, 0.40 / 0.85, 0, 0.30 / 0.85, 0.15 / 0.85};
    expect_freqs(counts, want, 5, "top_p=0.75");
    // A tiny top_p keeps only the most likely token.
    assert_int_equal(g4_sampler_set(&s, 1.0f, 0, 0.01f, 0.0f, 1.0f, 64), G4_OK);
    draw(&s, row, counts);
    const double only[5] = {0, 1, 0, 0, 0};
    expect_freqs(counts, only, 5, "top_p=0.01");
    // top-k then top-p: top-2 renormalizes to 4/7, 3/7; top_p 0.5 keeps only the first.
    assert_int_equal(g4_sampler_set(&s, 1.0f, 2, 0.5f, 0.0f, 1.0f, 64), G4_OK);
    draw(&s, row, counts);
    expect_freqs(counts, only, 5, "top_k=2 top_p=0.5");
    // top_p 0.6 after top-2: mass before the 2nd is 4/7 = 0.571 < 0.6, so both stay.
    assert_int_equal(g4_sampler_set(&s, 1.0f, 2, 0.6f, 0.0f, 1.0f, 64), G4_OK);
    draw(&s, row, counts);
    const double two[5] = {0, 4.0 / 7, 0, 3.0 / 7, 0};
    expect_freqs(counts, two, 5, "top_k=2 top_p=0.6");
    g4_sampler_free(&s);
}

// Full 262144 vocabulary: a handful of likely ids over a sea of near-zero ones. top_p must not
// let any of the 262139 unlikely ids through (checks the pre-filter and the heap selection).
static void test_top_p_large_vocab(void **state) {
    (void)state;
    const int32_t n = 262144;
    struct g4_sampler s = new_sampler(n);
    float *row = malloc(sizeof(float) * n);
    int *counts = malloc(sizeof(int) * n);
    double *want = calloc((size_t)n, sizeof(double));
    for (int32_t i = 0; i < n; i++) row[i] = -20.0f + (float)(i % 13) * 0.1f;
    static const int32_t ids[5] = {200000, 7, 131072, 99, 262143};
    static const float lg[5] = {2.0f, 1.5f, 1.0f, 0.5f, 0.0f};
    double e[5], z5 = 0;
    for (int i = 0; i < 5; i++) {
        row[ids[i]] = lg[i];
        e[i] = exp(lg[i]);
        z5 += e[i];
    }
    // Tail mass is ~262139 * e^-19.4 ~ 1e-3 / z5 of the total; top_p 0.8 keeps ids 200000, 7,
    // 131072 (mass before the 3rd: (e^2 + e^1.5) / z ~ 0.69 < 0.8; before the 4th ~ 0.85).
    assert_true((e[0] + e[1]) / z5 < 0.78 && (e[0] + e[1] + e[2]) / z5 > 0.82);
    g4_sampler_set_seed(&s, 4);
    assert_int_equal(g4_sampler_set(&s, 1.0f, 0, 0.8f, 0.0f, 1.0f, 64), G4_OK);
    draw_n(&s, row, counts, N_DRAWS_BIG);
    double z3 = e[0] + e[1] + e[2];
    for (int i = 0; i < 3; i++) want[ids[i]] = e[i] / z3;
    expect_freqs_n(counts, want, n, N_DRAWS_BIG, FREQ_TOL_BIG, "vocab 262144 top_p=0.8");
    // min_p 0.5: keep ids with p >= 0.5 * p_max, i.e. logit >= 2 + log(0.5) = 1.307.
    assert_int_equal(g4_sampler_set(&s, 1.0f, 0, 1.0f, 0.5f, 1.0f, 64), G4_OK);
    draw_n(&s, row, counts, N_DRAWS_BIG);
    memset(want, 0, sizeof(double) * (size_t)n);
    want[ids[0]] = e[0] / (e[0] + e[1]);
    want[ids[1]] = e[1] / (e[0] + e[1]);
    expect_freqs_n(counts, want, n, N_DRAWS_BIG, FREQ_TOL_BIG, "vocab 262144 min_p=0.5");
    // top_k 4 over the large row.
    assert_int_equal(g4_sampler_set(&s, 1.0f, 4, 1.0f, 0.0f, 1.0f, 64), G4_OK);
    draw_n(&s, row, counts, N_DRAWS_BIG);
    memset(want, 0, sizeof(double) * (size_t)n);
    double z4 = z5 - e[4];
    for (int i = 0; i < 4; i++) want[ids[i]] = e[i] / z4;
    expect_freqs_n(counts, want, n, N_DRAWS_BIG, FREQ_TOL_BIG, "vocab 262144 top_k=4");
    // Flat row: the pre-filter keeps everything and the heap pops half the vocabulary. Ties
    // rank by lower id (torch.sort leaves their order unspecified), so top_p 0.5 keeps exactly
    // ids 0 .. n/2-1, each with probability 2/n: check the range and the mean id.
    for (int32_t i = 0; i < n; i++) row[i] = 0.0f;
    assert_int_equal(g4_sampler_set(&s, 1.0f, 0, 0.5f, 0.0f, 1.0f, 64), G4_OK);
    double sum = 0;
    for (int i = 0; i < 50; i++) {
        int32_t t = g4_sampler_sample(&s, row, NULL, 0);
        if (t < 0 || t >= n / 2) fail_msg("flat top_p=0.5 drew id %d outside [0, %d)", t, n / 2);
        sum += t;
    }
    // Uniform on [0, 131072): sd of the mean over 50 draws = 37837 / sqrt(50) = 5351. (Each
    // draw pops 131072 heap entries, hence few draws.)
    assert_true(fabs(sum / 50 - 65535.5) < 5 * 5351);
    free(want);
    free(counts);
    free(row);
    g4_sampler_free(&s);
}

static void test_min_p(void **state) {
    (void)state;
    struct g4_sampler s = new_sampler(5);
    const double p[5] = {0.40, 0.25, 0.19, 0.12, 0.04};
    float row[5];
    logits_from_probs(row, p, 5);
    int counts[5];
    g4_sampler_set_seed(&s, 5);
    // Threshold 0.5 * 0.40 = 0.20: keeps 0.40 and 0.25, drops 0.19 and below.
    assert_int_equal(g4_sampler_set(&s, 1.0f, 0, 1.0f, 0.5f, 1.0f, 64), G4_OK);
    draw(&s, row, counts);
    const double want[5] = {0.40 / 0.65, 0.25 / 0.65, 0, 0, 0};
    expect_freqs(counts, want, 5, "min_p=0.5");
    // min_p after top_p: top_p 0.5 keeps 0.40 and 0.25 (mass before 0.25 is 0.40 < 0.5);
    // min_p 0.7 (threshold 0.28) then drops 0.25.
    assert_int_equal(g4_sampler_set(&s, 1.0f, 0, 0.5f, 0.7f, 1.0f, 64), G4_OK);
    draw(&s, row, counts);
    const double one[5] = {1, 0, 0, 0, 0};
    expect_freqs(counts, one, 5, "top_p=0.5 min_p=0.7");
    // min_p 1 keeps only the maximum.
    assert_int_equal(g4_sampler_set(&s, 1.0f, 0, 1.0f, 1.0f, 1.0f, 64), G4_OK);
    draw(&s, row, counts);
    expect_freqs(counts, one, 5, "min_p=1");
    g4_sampler_free(&s);
}

static void test_repetition_penalty(void **state) {
    (void)state;
    struct g4_sampler s = new_sampler(5);
    const float row[5] = {2.0f, 1.5f, -0.5f, -1.0f, 0.5f};
    const float before[5] = {2.0f, 1.5f, -0.5f, -1.0f, 0.5f};
    const int32_t hist[4] = {0, 0, 2, 99}; // 99 is out of range: ignored
    assert_int_equal(g4_sampler_sample(&s, row, hist, 4), 0); // penalty 1: off
    // Penalty 2: id 0 -> 2.0 / 2 = 1.0 (once, although repeated), so id 1 (1.5) wins.
    assert_int_equal(g4_sampler_set(&s, 0.0f, 0, 1.0f, 0.0f, 2.0f, 64), G4_OK);
    assert_int_equal(g4_sampler_sample(&s, row, hist, 4), 1);
    assert_memory_equal(row, before, sizeof row); // logits not modified
    // Penalty 1.2 (once): 2.0 / 1.2 = 1.667 still beats 1.5; applied twice it would not.
    assert_int_equal(g4_sampler_set(&s, 0.0f, 0, 1.0f, 0.0f, 1.2f, 64), G4_OK);
    assert_int_equal(g4_sampler_sample(&s, row, hist, 4), 0);
    // Negative logits are multiplied: all-negative row, penalized id 0 falls behind id 1.
    const float negrow[5] = {-1.0f, -1.5f, -3.0f, -4.0f, -5.0f};
    const int32_t h0[1] = {0};
    assert_int_equal(g4_sampler_set(&s, 0.0f, 0, 1.0f, 0.0f, 2.0f, 64), G4_OK);
    assert_int_equal(g4_sampler_sample(&s, negrow, h0, 1), 1);
    // A penalty < 1 rewards repeats: id 4 (0.5 / 0.2 = 2.5) overtakes id 0.
    const int32_t h4[1] = {4};
    assert_int_equal(g4_sampler_set(&s, 0.0f, 0, 1.0f, 0.0f, 0.2f, 64), G4_OK);
    assert_int_equal(g4_sampler_sample(&s, row, h4, 1), 4);
    // repeat_last_n 2 looks only at {2, 99}: id 0 is not penalized.
    assert_int_equal(g4_sampler_set(&s, 0.0f, 0, 1.0f, 0.0f, 2.0f, 2), G4_OK);
    assert_int_equal(g4_sampler_sample(&s, row, hist, 4), 0);
    // repeat_last_n <= 0: the whole history.
    assert_int_equal(g4_sampler_set(&s, 0.0f, 0, 1.0f, 0.0f, 2.0f, 0), G4_OK);
    assert_int_equal(g4_sampler_sample(&s, row, hist, 4), 1);
    // With sampling: penalized id 0 gets exp(1.0) instead of exp(2.0).
    int counts[5];
    assert_int_equal(g4_sampler_set(&s, 1.0f, 0, 1.0f, 0.0f, 2.0f, 64), G4_OK);
    g4_sampler_set_seed(&s, 6);
    memset(counts, 0, sizeof counts);
    for (int i = 0; i < N_DRAWS; i++) counts[g4_sampler_sample(&s, row, hist, 4)]++;
    const float pen[5] = {1.0f, 1.5f, -1.0f, -1.0f, 0.5f};
    double z = 0, want[5];
    for (int i = 0; i < 5; i++) z += exp(pen[i]);
    for (int i = 0; i < 5; i++) want[i] = exp(pen[i]) / z;
    expect_freqs(counts, want, 5, "penalty 2, T=1");
    g4_sampler_free(&s);
}

static void expect_invalid(struct g4_sampler *s, float t, int32_t k, float p, float m, float pen,
                           const char *substr) {
    g4_clear_error();
    assert_int_equal(g4_sampler_set(s, t, k, p, m, pen, 64), G4_ERR_INVALID_ARGUMENT);
    if (!strstr(g4_last_error(), substr))
        fail_msg("message \"%s\" lacks \"%s\"", g4_last_error(), substr);
}

static void test_invalid(void **state) {
    (void)state;
    struct g4_sampler s = new_sampler(8);
    assert_int_equal(g4_sampler_set(&s, 0.7f, 40, 0.9f, 0.05f, 1.1f, 32), G4_OK);
    expect_invalid(&s, -0.1f, 0, 1.0f, 0.0f, 1.0f, "temperature");
    expect_invalid(&s, NAN, 0, 1.0f, 0.0f, 1.0f, "temperature");
    expect_invalid(&s, INFINITY, 0, 1.0f, 0.0f, 1.0f, "temperature");
    expect_invalid(&s, 1.0f, 0, 0.0f, 0.0f, 1.0f, "top_p");
    expect_invalid(&s, 1.0f, 0, 1.5f, 0.0f, 1.0f, "top_p");
    expect_invalid(&s, 1.0f, 0, NAN, 0.0f, 1.0f, "top_p");
    expect_invalid(&s, 1.0f, 0, 1.0f, -0.01f, 1.0f, "min_p");
    expect_invalid(&s, 1.0f, 0, 1.0f, 1.01f, 1.0f, "min_p");
    expect_invalid(&s, 1.0f, 0, 1.0f, 0.0f, 0.0f, "repeat_penalty");
    expect_invalid(&s, 1.0f, 0, 1.0f, 0.0f, -1.0f, "repeat_penalty");
    expect_invalid(&s, 1.0f, 0, 1.0f, 0.0f, NAN, "repeat_penalty");
    // A failed set leaves the previous settings.
    assert_true(s.temperature == 0.7f && s.top_k == 40 && s.top_p == 0.9f);
    assert_true(s.min_p == 0.05f && s.repeat_penalty == 1.1f && s.repeat_last_n == 32);
    g4_sampler_free(&s);
    g4_sampler_free(&s); // freed struct is zeroed: second free is a no-op

    struct g4_sampler z;
    g4_clear_error();
    assert_int_equal(g4_sampler_init(&z, 0), G4_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(g4_last_error(), "n_vocab"));
    assert_null(z.probs);
    g4_sampler_free(&z);
}

static void test_defaults(void **state) {
    (void)state;
    struct g4_sampler s = new_sampler(3);
    assert_true(s.temperature == 0.0f && s.top_k == 0 && s.top_p == 1.0f && s.min_p == 0.0f);
    assert_true(s.repeat_penalty == 1.0f && s.repeat_last_n == 64 && s.seed == 0);
    g4_sampler_free(&s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_greedy_argmax),
        cmocka_unit_test(test_seed_reproducible),
        cmocka_unit_test(test_top_k_one_is_greedy),
        cmocka_unit_test(test_temperature_only),
        cmocka_unit_test(test_top_k),
        cmocka_unit_test(test_top_p),
        cmocka_unit_test(test_top_p_large_vocab),
        cmocka_unit_test(test_min_p),
        cmocka_unit_test(test_repetition_penalty),
        cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
