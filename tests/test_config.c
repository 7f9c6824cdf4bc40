// config.json parsing: the released shapes' layer tables, and every invalid field -> exact status
// and a message naming it.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "config.h"
#include "harness.h"

static void load_cfg(const char *name, struct g4_config *c) {
    int st = g4_config_fixture(name, c);
    if (st != G4_OK) print_error("%s\n", g4_last_error());
    assert_int_equal(st, G4_OK);
}

static void test_e2b_layer_table(void **state) {
    (void)state;
    struct g4_config c;
    load_cfg("e2b", &c);
    assert_true(c.is_multimodal);
    assert_string_equal(c.variant, "e2b");
    assert_int_equal(c.chat_gen_prompt, G4_CHAT_GEN_PROMPT);
    assert_int_equal(c.num_hidden_layers, 35);
    assert_int_equal(c.n_kv_slots, 15);
    int n_sliding = 0;
    for (int il = 0; il < 35; il++) n_sliding += c.layer[il].is_sliding;
    assert_int_equal(n_sliding, 28);
    // layers 15..34 share: sliding ones read layer 13's slot, full ones layer 14's
    for (int il = 15; il < 35; il++) {
        assert_false(c.layer[il].writes_kv);
        assert_int_equal(c.layer[il].kv_donor, c.layer[il].is_sliding ? 13 : 14);
        assert_int_equal(c.layer[il].kv_slot, c.layer[il].is_sliding ? 13 : 14);
        assert_int_equal(c.layer[il].intermediate_size, 12288); // double-wide on shared layers
    }
    assert_int_equal(c.layer[0].intermediate_size, 6144);
    assert_int_equal(c.layer[0].head_dim, 256);
    assert_int_equal(c.layer[0].n_rope_pairs, 128);
    assert_int_equal(c.layer[0].window, 512);
    assert_int_equal(c.layer[4].head_dim, 512);
    assert_int_equal(c.layer[4].n_rope_pairs, 64); // proportional, factor 0.25 of 512 / 2
    assert_int_equal(c.layer[4].window, 0);
    assert_true(c.layer[4].rope_theta == 1e6f);
    assert_int_equal(c.n_eos, 2);
}

static void test_large_variants(void **state) {
    (void)state;
    struct g4_config c;
    load_cfg("26b-a4b", &c);
    assert_string_equal(c.variant, "26b-a4b");
    assert_int_equal(c.chat_gen_prompt, G4_CHAT_GEN_PROMPT_EMPTY_THOUGHT);
    assert_true(c.enable_moe_block);
    assert_int_equal(c.n_kv_slots, 30);
    assert_int_equal(c.layer[0].n_kv_heads, 8);
    assert_false(c.layer[0].k_eq_v);
    assert_int_equal(c.layer[5].n_kv_heads, 2);
    assert_true(c.layer[5].k_eq_v);
    assert_int_equal(c.layer[5].head_dim, 512);
    load_cfg("31b", &c);
    assert_string_equal(c.variant, "31b");
    assert_int_equal(c.layer[0].n_kv_heads, 16);
    assert_int_equal(c.layer[59].n_kv_heads, 4);
    assert_int_equal(c.hidden_size_per_layer_input, 0);
}

// transformers >= 5.2x writes per-layer overrides instead of global_head_dim.
static void test_per_layer_config(void **state) {
    (void)state;
    const char *json =
        "{\"model_type\":\"gemma4_text\",\"vocab_size\":64,\"hidden_size\":16,\"num_hidden_layers\":2,"
        "\"layer_types\":[\"sliding_attention\",\"full_attention\"],\"head_dim\":8,"
        "\"num_attention_heads\":2,\"num_key_value_heads\":2,\"intermediate_size\":32,"
        "\"hidden_size_per_layer_input\":0,\"attention_k_eq_v\":true,"
        "\"per_layer_config\":{\"1\":{\"head_dim\":16,\"num_key_value_heads\":1}}}";
    struct g4_config c;
    assert_int_equal(g4_config_parse(&c, json, strlen(json), "t"), G4_OK);
    assert_int_equal(c.layer[0].head_dim, 8);
    assert_int_equal(c.layer[1].head_dim, 16);
    assert_int_equal(c.layer[1].n_kv_heads, 1);
    assert_int_equal(c.layer[1].n_rope_pairs, 2);
}

// Each case: a mutation of a valid small config -> status + message substring.
static void test_invalid_fields(void **state) {
    (void)state;
    static const struct {
        const char *field; // replaces "@" in the template
        g4_status st;
        const char *msg;
    } cases[] = {
        {"\"num_attention_heads\":0", G4_ERR_CONFIG, "num_attention_heads"},
        {"\"num_key_value_heads\":4", G4_ERR_CONFIG, "not divisible"},
        {"\"head_dim\":7", G4_ERR_CONFIG, "head_dim"},
        {"\"sliding_window\":0", G4_ERR_CONFIG, "sliding_window"},
        {"\"num_kv_shared_layers\":2", G4_ERR_CONFIG, "num_kv_shared_layers"},
        {"\"num_kv_shared_layers\":1", G4_ERR_CONFIG, "no earlier non-shared layer"},
        {"\"layer_types\":[\"sliding_attention\"]", G4_ERR_CONFIG, "layer_types"},
        {"\"layer_types\":[\"sliding_attention\",\"chunked\"]", G4_ERR_CONFIG, "layer_types[1]"},
        {"\"vocab_size\":-5", G4_ERR_CONFIG, "vocab_size"},
        {"\"vocab_size\":99999999", G4_ERR_CONFIG, "vocab_size"},
        {"\"hidden_size\":\"big\"", G4_ERR_FORMAT, "hidden_size"},
        {"\"hidden_size\":1.5", G4_ERR_FORMAT, "hidden_size"},
        {"\"rms_norm_eps\":0", G4_ERR_CONFIG, "rms_norm_eps"},
        {"\"hidden_activation\":\"silu\"", G4_ERR_UNSUPPORTED, "hidden_activation"},
        {"\"attention_bias\":true", G4_ERR_UNSUPPORTED, "attention_bias"},
        {"\"enable_moe_block\":true", G4_ERR_CONFIG, "top_k_experts"},
        {"\"bos_token_id\":64", G4_ERR_CONFIG, "bos_token_id"},
        {"\"eos_token_id\":[1,900]", G4_ERR_CONFIG, "eos_token_id"},
        {"\"rope_parameters\":{\"full_attention\":{\"rope_type\":\"yarn\",\"rope_theta\":1e6}}",
         G4_ERR_UNSUPPORTED, "yarn"},
        {"\"model_type\":\"llama\"", G4_ERR_UNSUPPORTED, "llama"},
        {"\"num_hidden_layers\":300", G4_ERR_CONFIG, "num_hidden_layers"},
        // fuzzer finds (undefined behaviour before the fix; UBSan runs catch a regression)
        {"\"per_layer_config\":{\"1\":{\"head_dim\":77777777777777777777}}", G4_ERR_FORMAT,
         "per_layer_config.1.head_dim"},
        {"\"intermediate_size\":2000000000,\"use_double_wide_mlp\":true,\"num_kv_shared_layers\":1",
         G4_ERR_CONFIG, "intermediate_size"},
    };
    const char *tmpl =
        "{\"vocab_size\":64,\"hidden_size\":16,\"num_hidden_layers\":2,\"head_dim\":8,"
        "\"global_head_dim\":16,\"num_attention_heads\":2,\"num_key_value_heads\":1,"
        "\"intermediate_size\":32,\"hidden_size_per_layer_input\":0,"
        "\"layer_types\":[\"sliding_attention\",\"full_attention\"],@}";
    char json[1024];
    struct g4_config c;
    for (size_t i = 0; i < G4_COUNT(cases); i++) {
        const char *at = strchr(tmpl, '@');
        // cJSON returns the first of duplicate keys, so the mutation goes first.
        snprintf(json, sizeof json, "{%s,%.*s", cases[i].field, (int)(at - tmpl - 1), tmpl + 1);
        size_t len = strlen(json);
        json[len - 1] = '}';
        g4_status st = g4_config_parse(&c, json, len, "cfg.json");
        printf("%-70.70s -> %d %s\n", cases[i].field, st, g4_last_error());
        assert_int_equal(st, cases[i].st);
        assert_non_null(strstr(g4_last_error(), cases[i].msg));
        assert_non_null(strstr(g4_last_error(), "cfg.json"));
    }
    // the unmutated template is valid
    snprintf(json, sizeof json, "%.*s}", (int)(strchr(tmpl, '@') - tmpl - 1), tmpl);
    assert_int_equal(g4_config_parse(&c, json, strlen(json), "cfg.json"), G4_OK);
    assert_int_equal(g4_config_parse(&c, "{", 1, "x"), G4_ERR_FORMAT);
    assert_int_equal(g4_config_load(&c, "/nonexistent"), G4_ERR_IO);
    assert_non_null(strstr(g4_last_error(), "/nonexistent/config.json"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_e2b_layer_table),
        cmocka_unit_test(test_large_variants),
        cmocka_unit_test(test_per_layer_config),
        cmocka_unit_test(test_invalid_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
