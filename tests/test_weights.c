// Checkpoint validation through g4_model_load: a config that does not describe the checkpoint
// (missing, extra or mis-shaped tensors), a truncated file and NaN weights each give a clear
// error naming the tensor or file, and leave nothing allocated (ASan/valgrind runs check that).
#define _GNU_SOURCE // memmem
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
#include "model.h"

// A model dir with e2b's checkpoint (copied, possibly modified) and config.json with `from`
// replaced by `to` (once).
static const char *make_dir(const char *from, const char *to, const char *ckpt, size_t ckpt_len) {
    const char *dir = g4_tmpdir("weights");
    assert_non_null(dir);
    size_t n;
    char *cfg = g4_read_file(g4_src_path("tests/golden/e2b/config.json"), &n);
    assert_non_null(cfg);
    char *hit = from ? strstr(cfg, from) : NULL;
    assert_true(!from || hit);
    char out[8192], path[4200];
    if (hit)
        snprintf(out, sizeof out, "%.*s%s%s", (int)(hit - cfg), cfg, to, hit + strlen(from));
    else
        snprintf(out, sizeof out, "%s", cfg);
    snprintf(path, sizeof path, "%s/config.json", dir);
    assert_int_equal(g4_write_file(path, out, strlen(out)), 0);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (ckpt) {
        assert_int_equal(g4_write_file(path, ckpt, ckpt_len), 0);
    } else {
        assert_int_equal(symlink(g4_src_path("tests/golden/e2b/model.safetensors"), path), 0);
    }
    free(cfg);
    return dir;
}

static void expect_load_error(const char *dir, g4_status code, const char *substr) {
    struct g4_model *m = (struct g4_model *)0x1;
    g4_status st = g4_model_load(&m, dir, G4_DEVICE_CPU, 0, 64, 1);
    printf("-> %s: %s\n", g4_status_name(st), g4_last_error());
    assert_int_equal(st, code);
    assert_null(m);
    assert_non_null(strstr(g4_last_error(), substr));
}

static void test_config_mismatch(void **state) {
    (void)state;
    static const struct { const char *from, *to; g4_status st; const char *msg; } cases[] = {
        // shared layers 5..7 have no k_proj: a config without sharing needs them
        {"\"num_kv_shared_layers\": 3", "\"num_kv_shared_layers\": 0", G4_ERR_FORMAT,
         "missing tensor model.layers.5.self_attn.k_proj.weight"},
        {"\"intermediate_size\": 128", "\"intermediate_size\": 96", G4_ERR_FORMAT,
         "tensor model.layers.0.mlp.gate_proj.weight has shape [128,64], config needs [96,64]"},
        {"\"hidden_size_per_layer_input\": 8", "\"hidden_size_per_layer_input\": 0", G4_ERR_FORMAT,
         "unexpected tensor model."},
        {"\"head_dim\": 16", "\"head_dim\": 8", G4_ERR_FORMAT, "q_proj.weight has shape"},
        {"\"vocab_size\": 512", "\"vocab_size\": 1000", G4_ERR_FORMAT,
         "model.embed_tokens.weight has shape [512,64], config needs [1000,64]"},
        {"\"sliding_window\": 8", "\"sliding_window\": 0", G4_ERR_CONFIG, "sliding_window"},
    };
    for (size_t i = 0; i < G4_COUNT(cases); i++) {
        const char *dir = make_dir(cases[i].from, cases[i].to, NULL, 0);
        printf("%s", cases[i].to);
        expect_load_error(dir, cases[i].st, cases[i].msg);
        g4_rm_rf(dir);
    }
    // the unmodified copy loads
    const char *dir = make_dir(NULL, NULL, NULL, 0);
    struct g4_model *m;
    assert_int_equal(g4_model_load(&m, dir, G4_DEVICE_CPU, 0, 64, 1), G4_OK);
    g4_model_release(m);
    g4_rm_rf(dir);
}

static void test_bad_checkpoint_files(void **state) {
    (void)state;
    size_t n;
    char *ck = g4_read_file(g4_src_path("tests/golden/e2b/model.safetensors"), &n);
    assert_non_null(ck);
    // truncated: half the file
    const char *dir = make_dir(NULL, NULL, ck, n / 2);
    expect_load_error(dir, G4_ERR_FORMAT, "truncated");
    g4_rm_rf(dir);
    // NaN in the final norm weight: find its data through the parser, poison a copy
    struct g4_safetensors st = {0};
    assert_int_equal(g4_safetensors_parse(&st, (const uint8_t *)ck, n, 0, "e2b"), G4_OK);
    const struct g4_tensor *t = g4_safetensors_find(&st, "model.norm.weight");
    assert_non_null(t);
    size_t off = (size_t)((const char *)t->data - ck);
    g4_safetensors_free(&st);
    float nan = NAN;
    memcpy(ck + off + 4 * 3, &nan, 4);
    dir = make_dir(NULL, NULL, ck, n);
    expect_load_error(dir, G4_ERR_FORMAT, "model.norm.weight has a non-finite value at [3]");
    g4_rm_rf(dir);
    free(ck);
    // a text-model tensor in a dtype the engine does not compute with (I32: same byte size)
    ck = g4_read_file(g4_src_path("tests/golden/e2b/model.safetensors"), &n);
    const char *key = "\"model.norm.weight\":{\"dtype\":\"F32\"";
    char *hdr = memmem(ck, n < 100000 ? n : 100000, key, strlen(key));
    assert_non_null(hdr);
    memcpy(hdr + strlen(key) - 4, "I32", 3);
    dir = make_dir(NULL, NULL, ck, n);
    expect_load_error(dir, G4_ERR_UNSUPPORTED, "model.norm.weight has dtype I32");
    g4_rm_rf(dir);
    free(ck);
    // a directory with a config but no weights
    dir = g4_tmpdir("noweights");
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    size_t cn;
    char *cfg = g4_read_file(g4_src_path("tests/golden/e2b/config.json"), &cn);
    assert_int_equal(g4_write_file(path, cfg, cn), 0);
    free(cfg);
    expect_load_error(dir, G4_ERR_IO, dir);
    g4_rm_rf(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_mismatch),
        cmocka_unit_test(test_bad_checkpoint_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
