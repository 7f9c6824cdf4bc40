// KV cache: byte counts for the released shapes against the spec's formula, actual allocations,
// ring addressing at the window boundary, and shared layers owning nothing.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "harness.h"
#include "kv_cache.h"

static void load_cfg(const char *name, struct g4_config *c) {
    int st = g4_config_fixture(name, c);
    if (st != G4_OK) print_error("%s\n", g4_last_error());
    assert_int_equal(st, G4_OK);
}

// From the spec's "KV-cache footprint" table (bf16, one sequence).
static const struct {
    const char *name;
    int sliding_own, full_own, kv_sliding, kv_full, window;
    size_t growth_per_token; // full layers, bytes
    size_t fixed_sliding;    // bytes once the window is full
} variants[] = {
    {"e2b", 12, 3, 1, 1, 512, 6 * 1024, 12ull * 512 * 1 * 256 * 2 * 2},
    {"e4b", 20, 4, 2, 2, 512, 16 * 1024, 20ull * 512 * 2 * 256 * 2 * 2},
    {"26b-a4b", 25, 5, 8, 2, 1024, 20 * 1024, 25ull * 1024 * 8 * 256 * 2 * 2},
    {"31b", 50, 10, 16, 4, 1024, 80 * 1024, 50ull * 1024 * 16 * 256 * 2 * 2},
};

static void test_kv_bytes_formula(void **state) {
    (void)state;
    static const int64_t ctxs[] = {1, 100, 512, 1000, 4096, 131072};
    for (size_t v = 0; v < G4_COUNT(variants); v++) {
        struct g4_config c;
        load_cfg(variants[v].name, &c);
        assert_int_equal(c.n_kv_slots, variants[v].sliding_own + variants[v].full_own);
        for (size_t i = 0; i < G4_COUNT(ctxs); i++) {
            int64_t n = ctxs[i];
            int64_t win_rows = n < variants[v].window ? n : variants[v].window;
            size_t want = (size_t)variants[v].sliding_own * win_rows * variants[v].kv_sliding * 256 * 2 * 2 +
                          (size_t)variants[v].full_own * n * variants[v].kv_full * 512 * 2 * 2;
            size_t got = g4_config_kv_bytes(&c, n, 2);
            printf("%-8s n_ctx=%-7lld bf16 KV bytes %12zu\n", variants[v].name, (long long)n, got);
            assert_int_equal(got, want);
            if (n >= variants[v].window)
                assert_int_equal(got, variants[v].fixed_sliding + variants[v].growth_per_token * n);
        }
    }
    // spec: "total at 128K tokens" E2B 0.81 GB, 31B 11.6 GB
    struct g4_config c;
    load_cfg("e2b", &c);
    assert_true(g4_config_kv_bytes(&c, 131072, 2) / 1e9 > 0.80 &&
                g4_config_kv_bytes(&c, 131072, 2) / 1e9 < 0.82);
}

// The cache actually allocated (fp32 on the CPU) matches the formula; shared layers own nothing.
static void test_kv_alloc(void **state) {
    (void)state;
    static const char *names[] = {"e2b", "e4b"};
    static const int64_t ctxs[] = {7, 512, 513, 2048};
    for (size_t v = 0; v < G4_COUNT(names); v++) {
        struct g4_config c;
        load_cfg(names[v], &c);
        for (size_t i = 0; i < G4_COUNT(ctxs); i++) {
            struct g4_kv_cache kv;
            assert_int_equal(g4_kv_cache_init(&kv, &c, ctxs[i], 4), G4_OK);
            assert_int_equal(kv.cache_bytes, g4_config_kv_bytes(&c, ctxs[i], sizeof(float)));
            assert_int_equal(kv.n_slots, c.n_kv_slots);
            for (int s = 0; s < kv.n_slots; s++) {
                bool sliding = c.slot[s].is_sliding;
                assert_int_equal(kv.slot[s].ring, sliding && ctxs[i] > c.sliding_window);
                assert_int_equal(kv.slot[s].capacity,
                                 sliding && ctxs[i] > c.sliding_window ? c.sliding_window : ctxs[i]);
            }
            g4_kv_cache_free(&kv);
        }
    }
}

// Ring addressing: after steps covering positions 0..W+1, the view finds position p at
// ring row p % W, and this step's rows in the staging area, around the boundary W-1, W, W+1.
static void test_ring_boundary(void **state) {
    (void)state;
    const char *json =
        "{\"vocab_size\":8,\"hidden_size\":4,\"num_hidden_layers\":2,\"head_dim\":2,"
        "\"global_head_dim\":2,\"num_attention_heads\":1,\"num_key_value_heads\":1,"
        "\"intermediate_size\":4,\"hidden_size_per_layer_input\":0,\"sliding_window\":4,"
        "\"layer_types\":[\"sliding_attention\",\"full_attention\"]}";
    struct g4_config c;
    assert_int_equal(g4_config_parse(&c, json, strlen(json), "t"), G4_OK);
    const int W = 4;
    struct g4_kv_cache kv;
    assert_int_equal(g4_kv_cache_init(&kv, &c, 32, 3), G4_OK);
    assert_true(kv.slot[0].ring);
    assert_int_equal(kv.slot[0].capacity, W);
    // write positions 0..W+1 in steps of 3, value = position in both K elements
    int64_t pos = 0;
    while (pos < W + 2) {
        int n = 3;
        float *k = g4_kv_cache_new_k(&kv, 0, pos), *v = g4_kv_cache_new_v(&kv, 0, pos);
        for (int i = 0; i < n; i++) k[2 * i] = k[2 * i + 1] = v[2 * i] = v[2 * i + 1] = (float)(pos + i);
        float *kf = g4_kv_cache_new_k(&kv, 1, pos);
        for (int i = 0; i < n; i++) kf[2 * i] = (float)(pos + i);
        g4_kv_cache_commit(&kv, pos, n);
        pos += n;
    }
    // now positions 0..5 written; the ring holds 2..5 at rows p % 4
    for (int64_t p = 2; p < 6; p++) assert_true(kv.slot[0].k[(p % W) * 2] == (float)p);
    for (int64_t p = 0; p < 6; p++) assert_true(kv.slot[1].k[p * 2] == (float)p);
    // a view during a step at pos0 = 6 resolves old rows through the ring, new ones via staging
    struct g4_kv_view view = g4_kv_cache_view(&kv, 0, 6);
    kv.slot[0].stage_k[0] = 6.0f;
    for (int64_t p = W - 1; p <= W + 1; p++)
        assert_true(view.k[(p % view.capacity) * 2] == (float)p);
    assert_true(view.new_k[0] == 6.0f);
    g4_kv_cache_free(&kv);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kv_bytes_formula),
        cmocka_unit_test(test_kv_alloc),
        cmocka_unit_test(test_ring_boundary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
