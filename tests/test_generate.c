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
#include "handle.h"
#include "harness.h"
#include "model.h"

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

// Cancel during a prefill, deterministically: the backend's forward is wrapped so that, while
// the second micro-batch runs, another thread calls gemma4_session_cancel (and is joined). The
// step must stop right after that micro-batch with CANCELLED, keep exactly 2 * 128 tokens (128:
// the session micro-batch, session.c), and the session goes on from there. Without a working
// cancel the step runs all N tokens and returns OK: the test fails. N is small (a second under
// ThreadSanitizer).
static const struct g4_backend *real_backend;
static gemma4_session *cancel_target;
static int forwards_seen, cancel_at_forward;

static void *cancel_now(void *arg) {
    (void)arg;
    gemma4_session_cancel(cancel_target);
    return NULL;
}

static g4_status forward_and_cancel(struct g4_session *s, const int32_t *tokens, int n,
                                    float *logits, bool all_logits) {
    g4_status st = real_backend->forward(s, tokens, n, logits, all_logits);
    if (++forwards_seen == cancel_at_forward) {
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, cancel_now, NULL), 0);
        pthread_join(t, NULL);
    }
    return st;
}

static void test_cancel_mid_prefill(void **state) {
    (void)state;
    gemma4_model *m = load("e2b", 2048);
    struct g4_model *cm = ((struct g4_handle *)m)->obj;
    real_backend = cm->backend;
    struct g4_backend wrapped = *real_backend;
    wrapped.forward = forward_and_cancel;
    cm->backend = &wrapped;
    gemma4_session *s;
    assert_int_equal(gemma4_session_new(m, 0, &s), GEMMA4_OK);
    enum { N = 1024 };
    int32_t *toks = malloc(sizeof(int32_t) * N);
    for (int i = 0; i < N; i++) toks[i] = 3 + (i * 7919) % 500;
    cancel_target = s;
    forwards_seen = 0;
    cancel_at_forward = 2;
    gemma4_status st = gemma4_session_step(s, toks, N, NULL, 0, NULL);
    int64_t past;
    gemma4_session_info(s, GEMMA4_SESSION_N_PAST, &past);
    printf("prefill of %d tokens: %s after %lld: %s\n", N, gemma4_status_name(st), (long long)past,
           gemma4_last_error());
    assert_int_equal(st, GEMMA4_ERR_CANCELLED);
    assert_int_equal(past, 2 * 128);
    assert_int_equal(forwards_seen, 2);
    // answered once: the session goes on from there
    cancel_at_forward = -1;
    assert_int_equal(gemma4_session_step(s, toks + past, 1, NULL, 0, NULL), GEMMA4_OK);

    // The same within a generate's prompt, and within the re-run of a truncate.
    gemma4_kv_reset(s);
    forwards_seen = 0;
    cancel_at_forward = 3;
    assert_int_equal(gemma4_generate(s, "The sea", 4, NULL, NULL), GEMMA4_ERR_CANCELLED);
    int64_t gen;
    gemma4_session_info(s, GEMMA4_SESSION_LAST_GEN_TOKENS, &gen);
    assert_int_equal(gen, 2); // prompt (forward 1), tokens 1 and 2 (forwards 2, 3: cancel), stop
    gemma4_kv_reset(s);
    cancel_at_forward = -1;
    assert_int_equal(gemma4_session_step(s, toks, 600, NULL, 0, NULL), GEMMA4_OK);
    forwards_seen = 0;
    cancel_at_forward = 1;
    assert_int_equal(gemma4_session_truncate(s, 500), GEMMA4_ERR_CANCELLED); // re-runs 500 tokens
    gemma4_session_info(s, GEMMA4_SESSION_N_PAST, &past);
    assert_int_equal(past, 128);
    cm->backend = real_backend;
    free(toks);
    gemma4_session_free(s);
    gemma4_model_free(m);
}

// A request made while no call runs, or racing a call's start, is not lost: the next call that
// runs the model answers it with CANCELLED before changing anything; only that one.
static void test_cancel_never_lost(void **state) {
    (void)state;
    gemma4_model *m = load("e2b", 256);
    gemma4_session *s;
    assert_int_equal(gemma4_session_new(m, 0, &s), GEMMA4_OK);
    const int32_t toks[3] = {2, 5, 6};
    int64_t past, ev;
    assert_int_equal(gemma4_session_step(s, toks, 2, NULL, 0, NULL), GEMMA4_OK);
    int32_t before, after;
    assert_int_equal(gemma4_session_sample(s, &before), GEMMA4_OK);
    assert_int_equal(gemma4_session_cancel(s), GEMMA4_OK);
    assert_int_equal(gemma4_session_cancel(s), GEMMA4_OK); // two requests before a check: one answer
    assert_int_equal(gemma4_session_step(s, toks + 2, 1, NULL, 0, NULL), GEMMA4_ERR_CANCELLED);
    assert_non_null(strstr(gemma4_last_error(), "before it ran"));
    gemma4_session_info(s, GEMMA4_SESSION_N_PAST, &past);
    gemma4_session_info(s, GEMMA4_SESSION_N_EVALUATED, &ev);
    assert_int_equal(past, 2);
    assert_int_equal(ev, 2);
    assert_int_equal(gemma4_session_sample(s, &after), GEMMA4_OK); // logits kept
    assert_int_equal(after, before);
    assert_int_equal(gemma4_session_step(s, toks + 2, 1, NULL, 0, NULL), GEMMA4_OK);
    // generate, chat_generate and truncate answer a pending request the same way
    const char *roles[] = {"user"}, *contents[] = {"Hi"};
    assert_int_equal(gemma4_session_cancel(s), GEMMA4_OK);
    assert_int_equal(gemma4_generate(s, "The sea", 4, NULL, NULL), GEMMA4_ERR_CANCELLED);
    gemma4_session_info(s, GEMMA4_SESSION_N_PAST, &past);
    assert_int_equal(past, 3);
    assert_int_equal(gemma4_session_cancel(s), GEMMA4_OK);
    assert_int_equal(gemma4_chat_generate(s, roles, contents, 1, 4, NULL, NULL), GEMMA4_ERR_CANCELLED);
    gemma4_session_info(s, GEMMA4_SESSION_N_PAST, &past);
    assert_int_equal(past, 3); // not rewound
    assert_int_equal(gemma4_session_cancel(s), GEMMA4_OK);
    assert_int_equal(gemma4_session_truncate(s, 1), GEMMA4_ERR_CANCELLED);
    gemma4_session_info(s, GEMMA4_SESSION_N_PAST, &past);
    assert_int_equal(past, 3);
    assert_int_equal(gemma4_chat_generate(s, roles, contents, 1, 2, NULL, NULL), GEMMA4_OK);
    // gemma4_session_clear_cancel drops a pending request
    assert_int_equal(gemma4_session_cancel(s), GEMMA4_OK);
    assert_int_equal(gemma4_session_clear_cancel(s), GEMMA4_OK);
    assert_int_equal(gemma4_session_step(s, toks + 2, 1, NULL, 0, NULL), GEMMA4_OK);
    gemma4_session_free(s);
    gemma4_model_free(m);
}

// Calling back into the session from its own token callback: GEMMA4_ERR_BUSY, nothing changed,
// and generation continues as if the calls had not been made.
struct reenter {
    gemma4_session *s;
    int n_calls;
    gemma4_status got[16];
    int64_t past_in_callback;
};

static int32_t reenter_fn(const char *piece, size_t len, int32_t token, void *user) {
    (void)piece, (void)len;
    struct reenter *r = user;
    if (token < 0 || r->n_calls) return 0;
    const int32_t tok = 5;
    int32_t out;
    const char *roles[] = {"user"}, *contents[] = {"x"};
    int k = 0;
    r->got[k++] = gemma4_kv_reset(r->s);
    r->got[k++] = gemma4_session_truncate(r->s, 0);
    r->got[k++] = gemma4_generate(r->s, "nested", 2, NULL, NULL);
    r->got[k++] = gemma4_chat_generate(r->s, roles, contents, 1, 2, NULL, NULL);
    r->got[k++] = gemma4_session_step(r->s, &tok, 1, NULL, 0, NULL);
    r->got[k++] = gemma4_session_sample(r->s, &out);
    r->got[k++] = gemma4_session_set_greedy(r->s);
    r->got[k++] = gemma4_session_set_seed(r->s, 1);
    r->got[k++] = gemma4_session_add_stop(r->s, "x");
    r->got[k++] = gemma4_session_clear_stops(r->s);
    r->got[k++] = gemma4_session_set_precision(r->s, GEMMA4_PRECISION_BF16);
    r->got[k++] = gemma4_session_clear_cancel(r->s);
    gemma4_session_free(r->s); // refused: the session lives on
    r->got[k++] = strstr(gemma4_last_error(), "not freed") ? GEMMA4_ERR_BUSY : GEMMA4_OK;
    r->n_calls = k;
    gemma4_status st = gemma4_session_info(r->s, GEMMA4_SESSION_N_PAST, &r->past_in_callback);
    if (st) print_error("info in callback: %s\n", gemma4_last_error());
    assert_int_equal(st, GEMMA4_OK);
    return 0;
}

static void test_reentrant_calls_busy(void **state) {
    (void)state;
    gemma4_model *m = load("e2b", 256);
    gemma4_session *s, *ref;
    assert_int_equal(gemma4_session_new(m, 0, &s), GEMMA4_OK);
    assert_int_equal(gemma4_session_new(m, 0, &ref), GEMMA4_OK);
    struct collect plain = {0};
    assert_int_equal(gemma4_generate(ref, "The sea", 8, collect_fn, &plain), GEMMA4_OK);
    struct reenter r = {.s = s};
    gemma4_status st = gemma4_generate(s, "The sea", 8, reenter_fn, &r);
    if (st) print_error("generate with re-entrant callback: %s\n", gemma4_last_error());
    assert_int_equal(st, GEMMA4_OK);
    assert_int_equal(r.n_calls, 13);
    for (int i = 0; i < r.n_calls; i++) {
        if (r.got[i] != GEMMA4_ERR_BUSY) print_error("re-entrant call %d: %s\n", i, gemma4_status_name(r.got[i]));
        assert_int_equal(r.got[i], GEMMA4_ERR_BUSY);
    }
    assert_string_equal(gemma4_status_name(GEMMA4_ERR_BUSY), "GEMMA4_ERR_BUSY");
    assert_true(r.past_in_callback > 0);
    // nothing changed: same context and tokens as an undisturbed session
    int64_t p1, p2;
    gemma4_session_info(s, GEMMA4_SESSION_N_PAST, &p1);
    gemma4_session_info(ref, GEMMA4_SESSION_N_PAST, &p2);
    assert_int_equal(p1, p2);
    int64_t prec;
    gemma4_session_info(s, GEMMA4_SESSION_PRECISION, &prec);
    assert_int_equal(prec, GEMMA4_PRECISION_FP32);
    // and the session works normally afterwards
    assert_int_equal(gemma4_kv_reset(s), GEMMA4_OK);
    gemma4_session_free(ref);
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
        cmocka_unit_test(test_cancel_never_lost),
        cmocka_unit_test(test_reentrant_calls_busy),
        cmocka_unit_test(test_text_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
