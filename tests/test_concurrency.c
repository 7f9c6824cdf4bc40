// One model, many sessions at once: 16 sessions driven by 8 pthreads at the same time (greedy and
// seeded sampling through gemma4_generate, plus token-by-token gemma4_session_step with logits)
// give exactly the tokens and logits that the same 16 jobs give when run one after another.
// Also the model's last reference is dropped by the main thread while the workers still run.
// Meant to be run under ThreadSanitizer as well:
//   cmake -S . -B build-tsan -DGEMMA4_SANITIZE=thread -DGEMMA4_CUDA=OFF -DCMAKE_BUILD_TYPE=Debug
//   cmake --build build-tsan --target test_concurrency && build-tsan/tests/test_concurrency
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "harness.h"
#include "gemma4.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Under ThreadSanitizer (10-20x slower) one concurrent round: TSan reports a race from the
// accesses themselves, not from an unlucky interleaving, so more rounds add minutes, not checks.
#if defined(__SANITIZE_THREAD__)
#define G4_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define G4_TSAN 1
#endif
#endif
#ifdef G4_TSAN
enum { N_ROUNDS = 1 };
#else
enum { N_ROUNDS = 4 };
#endif
enum { N_JOBS = 16, N_THREADS = 8, N_GEN = 24, N_CTX = 256, MAX_TOK = 64 };

static const char *const prompts[] = {
    "Hello world",
    "The sea",
    "<|turn>user\nWhy is the sky blue?<turn|>\n<|turn>model\n",
    "Once upon a time, in a land far away",
    "caf\xc3\xa9 na\xc3\xafve r\xc3\xa9sum\xc3\xa9",
    "1 2 3 4 5 6 7 8 9 10 11 12",
    "  spaced   out\n\ntext\t",
    "x",
};

enum job_kind { JOB_GREEDY, JOB_SAMPLED, JOB_STEP };

struct job {
    // input
    enum job_kind kind;
    const char *prompt;
    uint64_t seed;
    float temperature, top_p;
    int32_t top_k;
    // output
    int32_t tokens[MAX_TOK];
    int n_tokens;
    float *logits;       // (vocab,) after one extra step of token 10 (generate jobs) or the last step
    int64_t n_past;
    gemma4_status st;    // first failing status, GEMMA4_OK if none
    char err[256];
    gemma4_session *s;
};

static int32_t on_token(const char *piece, size_t len, int32_t token, void *user) {
    (void)piece, (void)len;
    struct job *j = user;
    if (token >= 0 && j->n_tokens < MAX_TOK) j->tokens[j->n_tokens++] = token;
    return 0;
}

static void job_fail(struct job *j, gemma4_status st) {
    if (j->st == GEMMA4_OK && st != GEMMA4_OK) {
        j->st = st;
        snprintf(j->err, sizeof j->err, "%s", gemma4_last_error());
    }
}

static void job_init(struct job *j, int i, size_t vocab) {
    memset(j, 0, sizeof *j);
    j->kind = (enum job_kind)(i % 3);
    j->prompt = prompts[i % G4_COUNT(prompts)];
    j->seed = 1000u + (uint64_t)i * 7919u;
    j->temperature = 0.7f + 0.1f * (float)(i % 5);
    j->top_k = i % 2 ? 0 : 20 + i;
    j->top_p = i % 4 == 1 ? 0.9f : 1.0f;
    j->logits = calloc(vocab, sizeof(float));
    assert_non_null(j->logits);
}

static gemma4_status session_open(struct job *j, gemma4_model *m) {
    gemma4_status st = gemma4_session_new(m, N_CTX, &j->s);
    if (st) return st;
    if (j->kind == JOB_SAMPLED) {
        if ((st = gemma4_session_set_sampling(j->s, j->temperature, j->top_k, j->top_p, 0.0f)))
            return st;
        if ((st = gemma4_session_set_seed(j->s, j->seed))) return st;
    }
    return GEMMA4_OK;
}

// Runs one job on its (already open) session. JOB_STEP takes the prompt's ids, tokenized up
// front: in the concurrent run the caller's model reference is gone by then.
static void job_run(struct job *j, const int32_t *ids, size_t n_ids, size_t vocab) {
    gemma4_status st;
    size_t n_logits = 0;
    if (j->kind == JOB_STEP) {
        st = gemma4_session_step(j->s, ids, n_ids, j->logits, vocab, &n_logits);
        for (int t = 0; st == GEMMA4_OK && t < N_GEN; t++) {
            int32_t tok;
            if ((st = gemma4_session_sample(j->s, &tok))) break;
            j->tokens[j->n_tokens++] = tok;
            st = gemma4_session_step(j->s, &tok, 1, j->logits, vocab, &n_logits);
        }
    } else {
        st = gemma4_generate(j->s, j->prompt, N_GEN, on_token, j);
        const int32_t extra = 10;
        if (st == GEMMA4_OK) st = gemma4_session_step(j->s, &extra, 1, j->logits, vocab, &n_logits);
    }
    job_fail(j, st);
    if (st == GEMMA4_OK && n_logits != vocab) job_fail(j, GEMMA4_ERR_INTERNAL);
    gemma4_session_info(j->s, GEMMA4_SESSION_N_PAST, &j->n_past);
}

struct shared {
    struct job *jobs;
    int32_t (*ids)[MAX_TOK];
    size_t *n_ids;
    size_t vocab;
    gemma4_model *model;
    pthread_barrier_t opened; // every session exists before any job runs
};

struct worker {
    struct shared *sh;
    int t;
};

static void *worker_main(void *arg) {
    struct worker *w = arg;
    struct shared *sh = w->sh;
    // thread t owns jobs t and t + N_THREADS; both sessions are open at once
    for (int i = w->t; i < N_JOBS; i += N_THREADS) job_fail(&sh->jobs[i], session_open(&sh->jobs[i], sh->model));
    pthread_barrier_wait(&sh->opened);
    // a thread runs its two jobs one after the other, while the other 7 threads run theirs
    for (int i = w->t; i < N_JOBS; i += N_THREADS)
        if (sh->jobs[i].st == GEMMA4_OK) job_run(&sh->jobs[i], sh->ids[i], sh->n_ids[i], sh->vocab);
    for (int i = w->t; i < N_JOBS; i += N_THREADS) {
        gemma4_session_free(sh->jobs[i].s);
        sh->jobs[i].s = NULL;
    }
    return NULL;
}

static void check_job(const struct job *j, int i) {
    if (j->st != GEMMA4_OK) print_error("job %d: %s: %s\n", i, gemma4_status_name(j->st), j->err);
    assert_int_equal(j->st, GEMMA4_OK);
}

static void sessions_in_parallel_match_serial(int n_threads) {
    gemma4_model *m = NULL;
    gemma4_status st =
        gemma4_load(g4_src_path("tests/golden/e2b"), GEMMA4_DEVICE_CPU, 0, N_CTX, n_threads, &m);
    if (st) print_error("%s\n", gemma4_last_error());
    assert_int_equal(st, GEMMA4_OK);
    int64_t v;
    assert_int_equal(gemma4_model_info(m, GEMMA4_INFO_VOCAB_SIZE, &v), GEMMA4_OK);
    const size_t vocab = (size_t)v;

    static struct job serial[N_JOBS], par[N_JOBS];
    static int32_t ids[N_JOBS][MAX_TOK];
    size_t n_ids[N_JOBS];
    for (int i = 0; i < N_JOBS; i++) {
        const char *p = prompts[i % G4_COUNT(prompts)];
        assert_int_equal(gemma4_tokenize(m, p, strlen(p), GEMMA4_TOKENIZE_ADD_BOS, ids[i], MAX_TOK,
                                         &n_ids[i]), GEMMA4_OK);
        assert_true(n_ids[i] > 0);
    }

    // 1. one by one
    for (int i = 0; i < N_JOBS; i++) {
        job_init(&serial[i], i, vocab);
        job_fail(&serial[i], session_open(&serial[i], m));
        check_job(&serial[i], i);
        job_run(&serial[i], ids[i], n_ids[i], vocab);
        check_job(&serial[i], i);
        gemma4_session_free(serial[i].s);
        serial[i].s = NULL;
        assert_true(serial[i].n_tokens > 0);
    }

    // 2. all at once, N_ROUNDS times; in the last round the main thread drops the model once
    // every session holds it (the last session_free then destroys it)
    int kinds[3] = {0}, total = 0;
    for (int round = 0; round < N_ROUNDS; round++) {
        struct shared sh = {.jobs = par, .ids = ids, .n_ids = n_ids, .vocab = vocab, .model = m};
        assert_int_equal(pthread_barrier_init(&sh.opened, NULL, N_THREADS + 1), 0);
        for (int i = 0; i < N_JOBS; i++) job_init(&par[i], i, vocab);
        pthread_t th[N_THREADS];
        struct worker w[N_THREADS];
        for (int t = 0; t < N_THREADS; t++) {
            w[t] = (struct worker){&sh, t};
            assert_int_equal(pthread_create(&th[t], NULL, worker_main, &w[t]), 0);
        }
        pthread_barrier_wait(&sh.opened);
        if (round == N_ROUNDS - 1) gemma4_model_free(m);
        for (int t = 0; t < N_THREADS; t++) pthread_join(th[t], NULL);
        pthread_barrier_destroy(&sh.opened);

        for (int i = 0; i < N_JOBS; i++) {
            check_job(&par[i], i);
            const struct job *a = &serial[i], *b = &par[i];
            if (round == 0) kinds[a->kind]++, total += a->n_tokens;
            if (a->n_tokens != b->n_tokens ||
                memcmp(a->tokens, b->tokens, sizeof(int32_t) * a->n_tokens))
                print_error("round %d job %d (kind %d): %d tokens serial, %d parallel, differ\n",
                            round, i, a->kind, a->n_tokens, b->n_tokens);
            assert_int_equal(a->n_tokens, b->n_tokens);
            assert_memory_equal(a->tokens, b->tokens, sizeof(int32_t) * a->n_tokens);
            assert_int_equal(a->n_past, b->n_past);
            // same single-threaded arithmetic in the same order: bit-identical logits
            if (memcmp(a->logits, b->logits, vocab * sizeof(float)))
                g4_compare_rel(b->logits, a->logits, vocab, 0.0, "parallel vs serial logits");
            assert_memory_equal(a->logits, b->logits, vocab * sizeof(float));
            free(b->logits);
        }
    }
    for (int i = 0; i < N_JOBS; i++) free(serial[i].logits);
    printf("%d jobs (%d greedy generate, %d sampled generate, %d step+logits; %d tokens) on %d "
           "threads, %d rounds, model n_threads %d: tokens and logits identical to the serial run\n",
           N_JOBS, kinds[JOB_GREEDY], kinds[JOB_SAMPLED], kinds[JOB_STEP], total, N_THREADS,
           N_ROUNDS, n_threads);
}

// n_threads 1: each session computes on its caller's thread only.
static void test_parallel_sessions_single_threaded_model(void **state) {
    (void)state;
    sessions_in_parallel_match_serial(1);
}

// n_threads 2: every session also owns a worker pool, so 8 callers drive 16 pools at once.
static void test_parallel_sessions_pooled_model(void **state) {
    (void)state;
    sessions_in_parallel_match_serial(2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parallel_sessions_single_threaded_model),
        cmocka_unit_test(test_parallel_sessions_pooled_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
