// Generation through the public ABI: greedy tokens identical to transformers' generate() on
// every golden fixture, seeded sampling reproducible, multi-turn chat running only new tokens,
// stop strings, callback stop, cancellation from another thread, text streaming.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gemma4.h"
#include "harness.h"

static gemma4_model *load(const char *fixture, int64_t n_ctx) {
    char rel[128];
    snprintf(rel, sizeof rel, "tests/golden/%s", fixture);
    gemma4_model *m = NULL;
    gemma4_status st = gemma4_load(g4_src_path(rel), GEMMA4_DEVICE_CPU, 0, n_ctx, 2, &m);
    if (st) print_error("%s\n", gemma4_last_error());
    assert_int_equal(st, GEMMA4_OK);
    return m;
}

static void greedy_matches_transformers(const char *fixture) {
    struct g4_reference r;
    assert_int_equal(g4_reference_read(fixture, &r), 0);
    const int32_t T = r.n_tokens, n_gen = r.n_gen, *prompt = r.tokens, *gen = r.gen;

    gemma4_model *m = load(fixture, 128);
    gemma4_session *s;
    assert_int_equal(gemma4_session_new(m, 0, &s), GEMMA4_OK);
    assert_int_equal(gemma4_session_step(s, prompt, (size_t)T, NULL, 0, NULL), GEMMA4_OK);
    int same = 0;
    for (int i = 0; i < n_gen; i++) {
        int32_t tok;
        assert_int_equal(gemma4_session_sample(s, &tok), GEMMA4_OK);
        if (tok != gen[i]) break;
        same++;
        assert_int_equal(gemma4_session_step(s, &tok, 1, NULL, 0, NULL), GEMMA4_OK);
    }
    printf("%-12s greedy via ABI: %d / %d tokens identical to transformers\n", fixture, same, n_gen);
    assert_int_equal(same, n_gen);
    gemma4_session_free(s);
    gemma4_model_free(m);
    free(r.blob);
}

static void test_greedy_all_fixtures(void **state) {
    (void)state;
    static const char *fixtures[] = {"e2b", "moe", "dense31b", "multimodal"};
    for (size_t i = 0; i < G4_COUNT(fixtures); i++) greedy_matches_transformers(fixtures[i]);
}

struct collect {
    char text[8192];
    size_t len;
    int32_t tokens[512];
    int n_tokens;
    int stop_after;           // callback returns 1 after this many tokens (0: never)
    gemma4_session *cancel_me; // cancel this session from the callback at token 2
};

static int32_t collect_fn(const char *piece, size_t len, int32_t token, void *user) {
    struct collect *c = user;
    if (c->len + len < sizeof c->text) {
        memcpy(c->text + c->len, piece, len);
        c->len += len;
        c->text[c->len] = '\0';
    }
    if (token >= 0 && c->n_tokens < 512) c->tokens[c->n_tokens++] = token;
    if (c->cancel_me && c->n_tokens == 2) gemma4_session_cancel(c->cancel_me);
    return c->stop_after && c->n_tokens >= c->stop_after;
}

static void test_seeded_sampling(void **state) {
    (void)state;
    gemma4_model *m = load("e2b", 256);
    gemma4_session *s;
    assert_int_equal(gemma4_session_new(m, 0, &s), GEMMA4_OK);
    struct collect a = {0}, b = {0}, c = {0};
    assert_int_equal(gemma4_session_set_sampling(s, 1.5f, 40, 0.95f, 0.0f), GEMMA4_OK);
    gemma4_session_set_seed(s, 42);
    assert_int_equal(gemma4_generate(s, "Hello world", 24, collect_fn, &a), GEMMA4_OK);
    gemma4_kv_reset(s);
    gemma4_session_set_seed(s, 42);
    assert_int_equal(gemma4_generate(s, "Hello world", 24, collect_fn, &b), GEMMA4_OK);
    gemma4_kv_reset(s);
    gemma4_session_set_seed(s, 7);
    assert_int_equal(gemma4_generate(s, "Hello world", 24, collect_fn, &c), GEMMA4_OK);
    printf("seed 42: %d tokens, seed 42 again: %d, seed 7: %d\n", a.n_tokens, b.n_tokens, c.n_tokens);
    assert_true(a.n_tokens > 0);
    assert_int_equal(a.n_tokens, b.n_tokens);
    assert_memory_equal(a.tokens, b.tokens, sizeof(int32_t) * a.n_tokens);
    assert_string_equal(a.text, b.text);
    assert_true(c.n_tokens != a.n_tokens || memcmp(a.tokens, c.tokens, sizeof(int32_t) * a.n_tokens));
    gemma4_session_free(s);
    gemma4_model_free(m);
}

static size_t count_tokens(gemma4_model *m, const char *text) {
    size_t n;
    assert_int_equal(gemma4_tokenize(m, text, strlen(text), 0, NULL, 0, &n), GEMMA4_OK);
    return n;
}

static char *render(const char *const *roles, const char *const *contents, size_t n) {
    size_t len;
    assert_int_equal(gemma4_chat_apply(NULL, roles, contents, n, 1, NULL, 0, &len), GEMMA4_OK);
    char *buf = malloc(len + 1);
    assert_int_equal(gemma4_chat_apply(NULL, roles, contents, n, 1, buf, len + 1, &len), GEMMA4_OK);
    return buf;
}

// The second turn runs only the tokens the first did not: rendered(turn 2) - rendered(turn 1).
static void test_multi_turn_reuses_cache(void **state) {
    (void)state;
    gemma4_model *m = load("e2b", 512);
    gemma4_session *s;
    assert_int_equal(gemma4_session_new(m, 0, &s), GEMMA4_OK);
    const char *roles[] = {"system", "user", "model", "user"};
    const char *contents[] = {"You are terse.", "Hi there, how are you?", "Fine, thanks.",
                              "Tell me more."};
    struct collect c = {0};
    assert_int_equal(gemma4_chat_generate(s, roles, contents, 2, 0, collect_fn, &c), GEMMA4_OK);
    char *r1 = render(roles, contents, 2), *r2 = render(roles, contents, 4);
    size_t n1 = count_tokens(m, r1), n2 = count_tokens(m, r2);
    int64_t ev1, ev2, past;
    gemma4_session_info(s, GEMMA4_SESSION_N_EVALUATED, &ev1);
    gemma4_session_info(s, GEMMA4_SESSION_N_PAST, &past);
    assert_int_equal(ev1, n1);
    assert_int_equal(past, n1);
    assert_int_equal(gemma4_chat_generate(s, roles, contents, 4, 0, collect_fn, &c), GEMMA4_OK);
    gemma4_session_info(s, GEMMA4_SESSION_N_EVALUATED, &ev2);
    printf("turn 1: %zu tokens run; turn 2: %lld new of %zu rendered\n", n1, (long long)(ev2 - ev1), n2);
    assert_int_equal(ev2 - ev1, (int64_t)(n2 - n1));
    // and the logits equal a fresh session's on the full conversation
    gemma4_session *fresh;
    assert_int_equal(gemma4_session_new(m, 0, &fresh), GEMMA4_OK);
    assert_int_equal(gemma4_chat_generate(fresh, roles, contents, 4, 0, collect_fn, &c), GEMMA4_OK);
    int32_t t1, t2;
    assert_int_equal(gemma4_session_sample(s, &t1), GEMMA4_OK);
    assert_int_equal(gemma4_session_sample(fresh, &t2), GEMMA4_OK);
    assert_int_equal(t1, t2);
    // a cancelled turn leaves no stale request: the next turn (which rewinds, since an earlier
    // message changed) runs to the end
    struct collect cc = {.cancel_me = s};
    assert_int_equal(gemma4_chat_generate(s, roles, contents, 4, 8, collect_fn, &cc), GEMMA4_ERR_CANCELLED);
    const char *edited[] = {"You are terse.", "Hi there, how are you today?", "Fine, thanks.", "Tell me more."};
    assert_int_equal(gemma4_chat_generate(s, roles, edited, 4, 4, NULL, NULL), GEMMA4_OK);
    free(r1);
    free(r2);
    gemma4_session_free(fresh);
    gemma4_session_free(s);
    gemma4_model_free(m);
}

static void test_stops(void **state) {
    (void)state;
    gemma4_model *m = load("e2b", 512);
    gemma4_session *s;
    assert_int_equal(gemma4_session_new(m, 0, &s), GEMMA4_OK);
    struct collect full = {0};
    assert_int_equal(gemma4_generate(s, "The sea", 40, collect_fn, &full), GEMMA4_OK);
    int64_t gen;
    gemma4_session_info(s, GEMMA4_SESSION_LAST_GEN_TOKENS, &gen);
    printf("greedy text (%lld tokens): \"%s\"\n", (long long)gen, full.text);
    assert_true(full.len >= 8);
    // max_tokens: exactly that many tokens streamed
    gemma4_kv_reset(s);
    struct collect three = {0};
    assert_int_equal(gemma4_generate(s, "The sea", 3, collect_fn, &three), GEMMA4_OK);
    gemma4_session_info(s, GEMMA4_SESSION_LAST_GEN_TOKENS, &gen);
    assert_int_equal(gen, 3);
    // callback stop after 2 tokens
    gemma4_kv_reset(s);
    struct collect two = {.stop_after = 2};
    assert_int_equal(gemma4_generate(s, "The sea", 40, collect_fn, &two), GEMMA4_OK);
    gemma4_session_info(s, GEMMA4_SESSION_LAST_GEN_TOKENS, &gen);
    assert_int_equal(gen, 2);
    // a stop string from the middle of the greedy text: output is the text before it
    char stop[4];
    memcpy(stop, full.text + full.len / 2, 3);
    stop[3] = '\0';
    size_t at = (size_t)(strstr(full.text, stop) - full.text);
    gemma4_kv_reset(s);
    assert_int_equal(gemma4_session_add_stop(s, stop), GEMMA4_OK);
    struct collect cut = {0};
    assert_int_equal(gemma4_generate(s, "The sea", 40, collect_fn, &cut), GEMMA4_OK);
    printf("stop \"%s\" -> \"%s\"\n", stop, cut.text);
    assert_int_equal(cut.len, at);
    assert_memory_equal(cut.text, full.text, at);
    assert_int_equal(gemma4_session_clear_stops(s), GEMMA4_OK);
    assert_int_equal(gemma4_session_add_stop(s, ""), GEMMA4_ERR_INVALID_ARGUMENT);
    // cancel from the callback: the next token boundary returns CANCELLED
    gemma4_kv_reset(s);
    struct collect cc = {.cancel_me = s};
    assert_int_equal(gemma4_generate(s, "The sea", 40, collect_fn, &cc), GEMMA4_ERR_CANCELLED);
    assert_int_equal(cc.n_tokens, 2);
    // a prompt that does not fit runs nothing
    gemma4_session *small;
    assert_int_equal(gemma4_session_new(m, 4, &small), GEMMA4_OK);
    assert_int_equal(gemma4_generate(small, "a b c d e f g h i j", 5, NULL, NULL), GEMMA4_ERR_CONTEXT_FULL);
    int64_t past;
    gemma4_session_info(small, GEMMA4_SESSION_N_PAST, &past);
    assert_int_equal(past, 0);
    gemma4_session_free(small);
    gemma4_session_free(s);
    gemma4_model_free(m);
}

struct canceller {
    gemma4_session *s;
    useconds_t delay;
};

static void *cancel_later(void *arg) {
    struct canceller *c = arg;
    usleep(c->delay);
    gemma4_session_cancel(c->s);
    return NULL;
}

static void test_cancel_from_thread(void **state) {
    (void)state;
    gemma4_model *m = load("e2b", 8192);
    gemma4_session *s;
    assert_int_equal(gemma4_session_new(m, 0, &s), GEMMA4_OK);
    struct canceller c = {s, 20000};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, cancel_later, &c), 0);
    gemma4_status st = gemma4_generate(s, "The sea", 8000, NULL, NULL);
    char msg[256];
    snprintf(msg, sizeof msg, "%s", gemma4_last_error());
    pthread_join(t, NULL);
    int64_t gen;
    gemma4_session_info(s, GEMMA4_SESSION_LAST_GEN_TOKENS, &gen);
    printf("cancelled after %lld tokens: %s\n", (long long)gen, msg);
    assert_non_null(strstr(msg, "cancelled"));
    assert_int_equal(st, GEMMA4_ERR_CANCELLED);
    assert_true(gen < 8000);
    gemma4_session_free(s);
    gemma4_model_free(m);
}

// Cancel during a long prefill: it stops at a micro-batch boundary with CANCELLED, keeps what ran,
// and the session goes on from there.
static void test_cancel_mid_prefill(void **state) {
    (void)state;
    gemma4_model *m = load("e2b", 8192);
    gemma4_session *s;
    assert_int_equal(gemma4_session_new(m, 0, &s), GEMMA4_OK);
    enum { N = 8000 };
    int32_t *toks = malloc(sizeof(int32_t) * N);
    for (int i = 0; i < N; i++) toks[i] = 3 + (i * 7919) % 500;
    struct canceller c = {s, 2000};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, cancel_later, &c), 0);
    gemma4_status st = gemma4_session_step(s, toks, N, NULL, 0, NULL);
    pthread_join(t, NULL);
    int64_t past;
    gemma4_session_info(s, GEMMA4_SESSION_N_PAST, &past);
    printf("prefill of %d tokens: %s after %lld\n", N, gemma4_status_name(st), (long long)past);
    if (st == GEMMA4_OK) {
        // the machine finished 8000 tokens within 2 ms: nothing to check but the result
        assert_int_equal(past, N);
    } else {
        assert_int_equal(st, GEMMA4_ERR_CANCELLED);
        assert_true(past < N && past % 128 == 0); // 128: the session micro-batch (session.c)
        assert_int_equal(gemma4_session_step(s, toks + past, 1, NULL, 0, NULL), GEMMA4_OK);
    }
    free(toks);
    gemma4_session_free(s);
    gemma4_model_free(m);
}

static void test_text_roundtrip(void **state) {
    (void)state;
    gemma4_model *m = load("e2b", 64);
    const char *text = "Hello <|turn>user\nwörld 🙂";
    size_t n, len;
    int32_t ids[64];
    assert_int_equal(gemma4_tokenize(m, text, strlen(text), GEMMA4_TOKENIZE_ADD_BOS, ids, 64, &n), GEMMA4_OK);
    assert_int_equal(ids[0], 2);
    int64_t turn;
    assert_int_equal(gemma4_model_info(m, GEMMA4_INFO_END_OF_TURN_ID, &turn), GEMMA4_OK);
    assert_true(turn > 0);
    char out[256];
    assert_int_equal(gemma4_detokenize(m, ids + 1, n - 1, 0, out, sizeof out, &len), GEMMA4_OK);
    assert_string_equal(out, text);
    assert_int_equal(gemma4_tokenize(m, text, strlen(text), 0, ids, 1, &n), GEMMA4_ERR_BUFFER_TOO_SMALL);
    int32_t bad = 9999;
    assert_int_equal(gemma4_detokenize(m, &bad, 1, 0, out, sizeof out, &len), GEMMA4_ERR_INVALID_TOKEN);
    gemma4_model_free(m);
    // a model without tokenizer.json
    m = load("moe", 64);
    assert_int_equal(gemma4_tokenize(m, "x", 1, 0, ids, 64, &n), GEMMA4_ERR_NO_TOKENIZER);
    gemma4_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy_all_fixtures),
        cmocka_unit_test(test_seeded_sampling),
        cmocka_unit_test(test_multi_turn_reuses_cache),
        cmocka_unit_test(test_stops),
        cmocka_unit_test(test_cancel_from_thread),
        cmocka_unit_test(test_cancel_mid_prefill),
        cmocka_unit_test(test_text_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
