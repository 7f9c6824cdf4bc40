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

// out = tmpl (a flat JSON object) with the top-level pairs of `field` added and those of tmpl
// whose key `field` names left out (duplicate keys are an error of their own).
static void mutate(char *out, size_t cap, const char *tmpl, const char *field) {
    size_t n = (size_t)snprintf(out, cap, "{%s", field);
    const char *p = tmpl + 1;
    while (*p && *p != '}') {
        const char *start = p, *key_end = strchr(p + 1, '"');
        int depth = 0;
        bool in_str = false;
        for (; *p && (in_str || depth || (*p != ',' && *p != '}')); p++) {
            if (*p == '"' && p[-1] != '\\') in_str = !in_str;
            else if (!in_str && (*p == '[' || *p == '{')) depth++;
            else if (!in_str && (*p == ']' || *p == '}')) depth--;
        }
        char key[128];
        snprintf(key, sizeof key, "%.*s:", (int)(key_end - start + 1), start);
        if (!strstr(field, key)) n += (size_t)snprintf(out + n, cap - n, ",%.*s", (int)(p - start), start);
        if (*p == ',') p++;
    }
    snprintf(out + n, cap - n, "}");
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
        {"\"hidden_activation\":\"gelu\"", G4_ERR_UNSUPPORTED, "ACT2FN[\"gelu\"]"},
        // read exactly as transformers reads it (issue 17's hostile probe)
        {"\"eos_token_id\":1.7", G4_ERR_FORMAT, "eos_token_id 1.7 is not an integer"},
        {"\"eos_token_id\":[1,2.5]", G4_ERR_FORMAT, "eos_token_id"},
        {"\"per_layer_config\":{\" 1\":{\"head_dim\":16}}", G4_ERR_CONFIG, "key \" 1\" is not a layer index"},
        {"\"per_layer_config\":{\"01\":{\"head_dim\":16}}", G4_ERR_CONFIG, "key \"01\""},
        {"\"per_layer_config\":{\"+1\":{\"head_dim\":16}}", G4_ERR_CONFIG, "key \"+1\""},
        {"\"per_layer_config\":{\"1\":{\"head_dim\":16,\"head_dim\":32}}", G4_ERR_FORMAT,
         "key \"head_dim\" appears twice"},
        {"\"vocab_size\":64,\"vocab_size\":128", G4_ERR_FORMAT, "key \"vocab_size\" appears twice"},
        {"\"rope_parameters\":{\"full_attention\":{\"rope_type\":\"proportional\",\"factor\":0}}",
         G4_ERR_CONFIG, "factor 0 must be > 0"},
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
        "\"layer_types\":[\"sliding_attention\",\"full_attention\"]}";
    char json[1024];
    struct g4_config c;
    for (size_t i = 0; i < G4_COUNT(cases); i++) {
        mutate(json, sizeof json, tmpl, cases[i].field);
        size_t len = strlen(json);
        g4_status st = g4_config_parse(&c, json, len, "cfg.json");
        printf("%-70.70s -> %d %s\n", cases[i].field, st, g4_last_error());
        assert_int_equal(st, cases[i].st);
        assert_non_null(strstr(g4_last_error(), cases[i].msg));
        assert_non_null(strstr(g4_last_error(), "cfg.json"));
    }
    // the unmutated template is valid
    assert_int_equal(g4_config_parse(&c, tmpl, strlen(tmpl), "cfg.json"), G4_OK);
    assert_int_equal(g4_config_parse(&c, "{", 1, "x"), G4_ERR_FORMAT);
    assert_int_equal(g4_config_load(&c, "/nonexistent"), G4_ERR_IO);
    assert_non_null(strstr(g4_last_error(), "/nonexistent/config.json"));
}

// config.json is read as strictly as Python's json module reads it (transformers): anything it
// would read differently or refuse is G4_ERR_FORMAT with the byte offset; whitespace is fine.
static void test_strict_json(void **state) {
    (void)state;
    const char *base = "{\"vocab_size\":64,\"hidden_size\":16,\"num_hidden_layers\":2,\"head_dim\":8,"
                       "\"global_head_dim\":16,\"num_attention_heads\":2,\"num_key_value_heads\":1,"
                       "\"intermediate_size\":32,\"hidden_size_per_layer_input\":0,\"x\":%s}";
    static const struct { const char *value, *msg; } bad[] = {
        {"1} {", "after the JSON value"}, {"1}x", "after the JSON value"},
        {"+1", "not a JSON value"},       {"01", "',' or '}' expected"},
        {".5", "not a JSON value"},       {"1.", "a digit expected"},
        {"1e", "a digit expected"},       {"NaN", "not a JSON value"},
        {"Infinity", "not a JSON value"}, {"\"a\tb\"", "control character"},
        {"\"\\x\"", "bad escape"},       {"\"\\u12G4\"", "u escape"},
        {"\"\xff\"", "invalid UTF-8"},    {"\"\xc0\xaf\"", "invalid UTF-8"}, // overlong '/'
        {"\"\xed\xa0\x80\"", "invalid UTF-8"}, // UTF-16 surrogate
        {"[1,]", "not a JSON value"},     {"{\"a\":1,}", "object key expected"},
        {"tru", "not a JSON value"},      {"[1 2]", "',' or ']' expected"},
        {"{\"a\":{\"b\":1,\"b\":2}}", "key \"b\" appears twice"},
    };
    char json[512];
    struct g4_config c;
    for (size_t i = 0; i < G4_COUNT(bad); i++) {
        snprintf(json, sizeof json, base, bad[i].value);
        g4_status st = g4_config_parse(&c, json, strlen(json), "cfg.json");
        printf("%-24s -> %d %s\n", bad[i].value, st, g4_last_error());
        assert_int_equal(st, G4_ERR_FORMAT);
        assert_non_null(strstr(g4_last_error(), bad[i].msg));
        assert_non_null(strstr(g4_last_error(), "cfg.json"));
    }
    // valid JSON: escapes, UTF-8, exponents, nesting, whitespace around and after the value
    snprintf(json, sizeof json, base, "{\"s\":\"\\u00e9\\n\xc3\xa9\xf0\x9f\x99\x82\",\"n\":[-0.5e+3,0,1E2,true,false,null]}");
    strcat(json, " \r\n\t");
    assert_int_equal(g4_config_parse(&c, json, strlen(json), "cfg.json"), G4_OK);
    // a UTF-8 byte-order mark is not JSON (Python: "Unexpected UTF-8 BOM")
    snprintf(json, sizeof json, "\xef\xbb\xbf");
    snprintf(json + 3, sizeof json - 3, base, "1");
    assert_int_equal(g4_config_parse(&c, json, strlen(json), "cfg.json"), G4_ERR_FORMAT);
    assert_non_null(strstr(g4_last_error(), "at byte 0"));
}

// Configurations transformers accepts that an earlier reader got wrong (issue 17).
static void test_transformers_semantics(void **state) {
    (void)state;
    struct g4_config c;
    // head_dim == global_head_dim: transformers writes "per_layer_config": {} and no
    // global_head_dim; full layers then use head_dim (not the default 512).
    const char *eq = "{\"vocab_size\":64,\"hidden_size\":16,\"num_hidden_layers\":2,\"head_dim\":8,"
                     "\"num_attention_heads\":2,\"num_key_value_heads\":1,\"intermediate_size\":32,"
                     "\"hidden_size_per_layer_input\":0,\"attention_k_eq_v\":true,"
                     "\"num_global_key_value_heads\":7,\"global_head_dim\":64,"
                     "\"layer_types\":[\"sliding_attention\",\"full_attention\"],\"per_layer_config\":{}}";
    assert_int_equal(g4_config_parse(&c, eq, strlen(eq), "t"), G4_OK);
    assert_int_equal(c.layer[1].head_dim, 8);   // global_head_dim is ignored next to per_layer_config
    assert_int_equal(c.layer[1].n_kv_heads, 1); // and so is num_global_key_value_heads
    assert_int_equal(c.layer[1].n_rope_pairs, 1); // proportional 0.25 of 8 / 2
    // partial_rotary_factor in double precision: int(0.7 * 20 // 2) = 7 (float would give 6);
    // proportional factor kept; factor on default RoPE ignored, as transformers does
    const char *rope = "{\"vocab_size\":64,\"hidden_size\":16,\"num_hidden_layers\":2,\"head_dim\":8,"
                       "\"num_attention_heads\":2,\"num_key_value_heads\":1,\"intermediate_size\":32,"
                       "\"hidden_size_per_layer_input\":0,"
                       "\"layer_types\":[\"sliding_attention\",\"full_attention\"],"
                       "\"per_layer_config\":{\"1\":{\"head_dim\":20}},\"rope_parameters\":{"
                       "\"sliding_attention\":{\"rope_type\":\"default\",\"rope_theta\":10000.0,\"factor\":4.0,"
                       "\"partial_rotary_factor\":0.5},"
                       "\"full_attention\":{\"rope_type\":\"proportional\",\"rope_theta\":1000000.0,"
                       "\"partial_rotary_factor\":0.7,\"factor\":2.5}}}";
    assert_int_equal(g4_config_parse(&c, rope, strlen(rope), "t"), G4_OK);
    assert_int_equal(c.layer[1].n_rope_pairs, 7);
    assert_true(c.layer[1].rope_factor == 2.5f);
    assert_int_equal(c.layer[0].n_rope_pairs, 4);
    assert_true(c.layer[0].rope_factor == 1.0f);
    // multimodal: the top-level tie_word_embeddings decides (default true), not text_config's
    static const struct { const char *top; bool tied; } tie[] = {
        {"\"tie_word_embeddings\":false,", false}, {"\"tie_word_embeddings\":true,", true}, {"", true}};
    for (size_t i = 0; i < G4_COUNT(tie); i++) {
        char json[512];
        snprintf(json, sizeof json,
                 "{\"model_type\":\"gemma4\",%s\"text_config\":{\"vocab_size\":64,\"hidden_size\":16,"
                 "\"num_hidden_layers\":1,\"head_dim\":8,\"global_head_dim\":8,\"num_attention_heads\":2,"
                 "\"num_key_value_heads\":1,\"intermediate_size\":32,\"hidden_size_per_layer_input\":0,"
                 "\"tie_word_embeddings\":%s}}", tie[i].top, tie[i].tied ? "false" : "true");
        assert_int_equal(g4_config_parse(&c, json, strlen(json), "t"), G4_OK);
        assert_true(c.is_multimodal);
        assert_int_equal(c.tie_word_embeddings, tie[i].tied);
    }
}

// Gemma 3 text config (Gemma3ForCausalLM layout, legacy rope keys): every 6th layer full.
static void test_gemma3_270m(void **state) {
    (void)state;
    struct g4_config c;
    load_cfg("gemma3-270m", &c);
    assert_int_equal(c.arch, G4_ARCH_GEMMA3);
    assert_false(c.is_multimodal);
    assert_string_equal(c.variant, "gemma3-270m");
    assert_false(c.v_norm);
    assert_true(c.attn_scale == 0.0625f); // 256^-0.5
    assert_true(c.final_logit_softcapping == 0.0f);
    assert_int_equal(c.n_kv_slots, 18);
    assert_int_equal(c.hidden_size_per_layer_input, 0);
    for (int il = 0; il < 18; il++) {
        const struct g4_layer *ly = &c.layer[il];
        assert_int_equal(ly->is_sliding, (il + 1) % 6 != 0);
        assert_int_equal(ly->head_dim, 256);
        assert_int_equal(ly->n_kv_heads, 1);
        assert_int_equal(ly->n_rope_pairs, 128);
        assert_int_equal(ly->rope_type, G4_ROPE_DEFAULT);
        assert_true(ly->rope_factor == 1.0f);
        assert_true(ly->rope_theta == (ly->is_sliding ? 1e4f : 1e6f));
        assert_int_equal(ly->window, ly->is_sliding ? 512 : 0);
        assert_int_equal(ly->intermediate_size, 2048);
        assert_true(ly->writes_kv);
    }
}

// Multimodal Gemma3Config with a sparse text_config: Gemma 3 defaults, rope_scaling on full
// layers only, and no forced full last layer (34 layers: layer 33 is sliding).
static void test_gemma3_4b(void **state) {
    (void)state;
    struct g4_config c;
    load_cfg("gemma3-4b", &c);
    assert_int_equal(c.arch, G4_ARCH_GEMMA3);
    assert_true(c.is_multimodal);
    assert_string_equal(c.variant, "gemma3-4b");
    assert_int_equal(c.vocab_size, 262208);
    assert_int_equal(c.num_attention_heads, 8);
    assert_int_equal(c.num_key_value_heads, 4);
    assert_true(c.layer[33].is_sliding);
    assert_false(c.layer[5].is_sliding);
    assert_int_equal(c.layer[5].rope_type, G4_ROPE_LINEAR);
    assert_true(c.layer[5].rope_factor == 8.0f);
    assert_true(c.layer[5].rope_theta == 1e6f);
    assert_int_equal(c.layer[0].rope_type, G4_ROPE_DEFAULT);
    assert_true(c.layer[0].rope_factor == 1.0f);
    assert_true(c.layer[0].rope_theta == 1e4f);
    assert_int_equal(c.layer[0].window, 1024);
}

// transformers 5 serialisation (rope_parameters per layer type) and sliding_window_pattern.
static void test_gemma3_rope_parameters(void **state) {
    (void)state;
    const char *json =
        "{\"model_type\":\"gemma3_text\",\"vocab_size\":64,\"hidden_size\":16,\"num_hidden_layers\":5,"
        "\"head_dim\":8,\"num_attention_heads\":2,\"num_key_value_heads\":1,\"intermediate_size\":32,"
        "\"sliding_window_pattern\":2,\"query_pre_attn_scalar\":64,\"sliding_window\":3,"
        "\"attn_logit_softcapping\":50.0,\"rope_theta\":123.0,"
        "\"rope_parameters\":{\"full_attention\":{\"rope_type\":\"linear\",\"factor\":4.0,"
        "\"rope_theta\":5e5},\"sliding_attention\":{\"rope_type\":\"default\",\"rope_theta\":2e4}}}";
    struct g4_config c;
    assert_int_equal(g4_config_parse(&c, json, strlen(json), "t"), G4_OK);
    for (int il = 0; il < 5; il++) assert_int_equal(c.layer[il].is_sliding, il % 2 == 0);
    assert_true(c.layer[1].rope_theta == 5e5f); // rope_parameters' theta wins over rope_theta
    assert_true(c.layer[1].rope_factor == 4.0f);
    assert_true(c.layer[0].rope_theta == 2e4f);
    assert_true(c.attn_scale == 0.125f);
    assert_string_equal(c.variant, "gemma3-custom");
}

static void test_gemma3_invalid(void **state) {
    (void)state;
    static const struct {
        const char *field;
        g4_status st;
        const char *msg;
    } cases[] = {
        {"\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":8}", G4_ERR_UNSUPPORTED, "yarn"},
        {"\"rope_scaling\":{\"rope_type\":\"linear\",\"factor\":0}", G4_ERR_CONFIG, "factor"},
        {"\"rope_scaling\":7", G4_ERR_FORMAT, "rope_scaling"},
        {"\"rope_parameters\":{\"sliding_attention\":{\"rope_type\":\"default\","
         "\"partial_rotary_factor\":0.5}}", G4_ERR_UNSUPPORTED, "partial_rotary_factor"},
        {"\"rope_local_base_freq\":0.5", G4_ERR_CONFIG, "rope_theta"},
        {"\"use_bidirectional_attention\":true", G4_ERR_UNSUPPORTED, "use_bidirectional_attention"},
        {"\"query_pre_attn_scalar\":0", G4_ERR_CONFIG, "query_pre_attn_scalar"},
        {"\"attn_logit_softcapping\":\"x\"", G4_ERR_FORMAT, "attn_logit_softcapping"},
        {"\"sliding_window_pattern\":0", G4_ERR_CONFIG, "sliding_window_pattern"},
        {"\"head_dim\":7", G4_ERR_CONFIG, "head_dim"},
        {"\"hidden_activation\":\"silu\"", G4_ERR_UNSUPPORTED, "hidden_activation"},
    };
    const char *tmpl =
        "{\"model_type\":\"gemma3_text\",\"vocab_size\":64,\"hidden_size\":16,\"num_hidden_layers\":2,"
        "\"head_dim\":8,\"num_attention_heads\":2,\"num_key_value_heads\":1,\"intermediate_size\":32,"
        "\"sliding_window_pattern\":2}";
    char json[1024];
    struct g4_config c;
    for (size_t i = 0; i < G4_COUNT(cases); i++) {
        mutate(json, sizeof json, tmpl, cases[i].field);
        g4_status st = g4_config_parse(&c, json, strlen(json), "cfg.json");
        printf("%-70.70s -> %d %s\n", cases[i].field, st, g4_last_error());
        assert_int_equal(st, cases[i].st);
        assert_non_null(strstr(g4_last_error(), cases[i].msg));
    }
    assert_int_equal(g4_config_parse(&c, tmpl, strlen(tmpl), "cfg.json"), G4_OK);
    assert_true(c.layer[0].is_sliding);
    assert_false(c.layer[1].is_sliding);
    assert_int_equal(c.layer[0].window, 4096); // Gemma3TextConfig's default window
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_e2b_layer_table),
        cmocka_unit_test(test_large_variants),
        cmocka_unit_test(test_per_layer_config),
        cmocka_unit_test(test_invalid_fields),
        cmocka_unit_test(test_strict_json),
        cmocka_unit_test(test_transformers_semantics),
        cmocka_unit_test(test_gemma3_270m),
        cmocka_unit_test(test_gemma3_4b),
        cmocka_unit_test(test_gemma3_rope_parameters),
        cmocka_unit_test(test_gemma3_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
