// The public ABI: error codes and messages for misuse, buffer convention, lifetimes (model freed
// before its session), freed and bogus handles, context overflow, truncation exactness,
// cancellation, and the exported symbol table of libgemma4.so being exactly the gemma4_*
// functions of abi/gemma4.h.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gemma4.h"
#include "harness.h"

#define EXPECT_ERR(call, code, substr)                                                             \
    do {                                                                                           \
        gemma4_status st_ = (call);                                                                \
        printf("%-60.60s -> %s: %s\n", #call, gemma4_status_name(st_), gemma4_last_error());       \
        assert_int_equal(st_, code);                                                               \
        assert_non_null(strstr(gemma4_last_error(), substr));                                      \
    } while (0)

static gemma4_model *load_e2b(int64_t n_ctx) {
    gemma4_model *m = NULL;
    gemma4_status st = gemma4_load(g4_src_path("tests/golden/e2b"), GEMMA4_DEVICE_CPU, 0, n_ctx, 2, &m);
    if (st) print_error("%s\n", gemma4_last_error());
    assert_int_equal(st, GEMMA4_OK);
    return m;
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

// A copy of the e2b fixture (config + weights, no tokenizer) in a temporary directory.
static const char *e2b_copy(const char *tag, char *weights, size_t cap) {
    const char *src = g4_src_path("tests/golden/e2b"), *dir = g4_tmpdir(tag);
    assert_non_null(dir);
    copy_file(src, dir, "config.json");
    copy_file(src, dir, "model.safetensors");
    snprintf(weights, cap, "%s/model.safetensors", dir);
    return dir;
}

static void remove_copy(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    remove(path);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    remove(path);
    rmdir(dir);
}

static void on_sigbus(int sig) {
    (void)sig;
    _exit(42);
}

// The hostile probe's finding: a checkpoint truncated while loaded. GEMMA4_LOAD_IN_MEMORY keeps
// working (logits equal to the mapped load's); the mapped default dies with SIGBUS at the next
// step, as abi/gemma4.h documents (checked in a child process, which reports SIGBUS by exit 42).
static void test_load_in_memory(void **state) {
    (void)state;
    char weights[4096];
    const char *dir = e2b_copy("inmem", weights, sizeof weights);
    const int32_t toks[4] = {2, 10, 11, 12};
    float ref[512], got[512];
    size_t nl;
    gemma4_model *m;
    gemma4_session *s;
    assert_int_equal(gemma4_load(dir, GEMMA4_DEVICE_CPU, 0, 64, 1, &m), GEMMA4_OK);
    assert_int_equal(gemma4_session_new(m, 0, &s), GEMMA4_OK);
    assert_int_equal(gemma4_session_step(s, toks, 4, ref, 512, &nl), GEMMA4_OK);
    gemma4_session_free(s);
    gemma4_model_free(m);
    EXPECT_ERR(gemma4_load_ex(dir, GEMMA4_DEVICE_CPU, 0, 64, 1, 6, &m), GEMMA4_ERR_INVALID_ARGUMENT,
               "unknown flags 0x6");
    assert_int_equal(gemma4_load_ex(dir, GEMMA4_DEVICE_CPU, 0, 64, 1, GEMMA4_LOAD_IN_MEMORY, &m), GEMMA4_OK);
    assert_int_equal(truncate(weights, 0), 0); // and rewritten with other bytes
    FILE *f = fopen(weights, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite("garbage", 1, 7, f), 7);
    fclose(f);
    assert_int_equal(gemma4_session_new(m, 0, &s), GEMMA4_OK);
    assert_int_equal(gemma4_session_step(s, toks, 4, got, 512, &nl), GEMMA4_OK);
    assert_memory_equal(got, ref, sizeof ref);
    gemma4_session_free(s);
    gemma4_model_free(m);
    remove_copy(dir);

    // mapped: the child loads, truncates the file, steps
    dir = e2b_copy("mapped", weights, sizeof weights);
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_sigbus;
        sigaction(SIGBUS, &sa, NULL);
        if (gemma4_load(dir, GEMMA4_DEVICE_CPU, 0, 64, 1, &m) || gemma4_session_new(m, 0, &s)) _exit(2);
        if (truncate(weights, 0) != 0) _exit(3);
        gemma4_status st = gemma4_session_step(s, toks, 4, got, 512, &nl);
        _exit(st == GEMMA4_OK ? 0 : 4); // survived: not what the header says
    }
    int wst = 0;
    assert_int_equal(waitpid(pid, &wst, 0), pid);
    printf("mapped load, file truncated, step: child %s %d\n",
           WIFEXITED(wst) ? "exited" : "killed by signal",
           WIFEXITED(wst) ? WEXITSTATUS(wst) : WTERMSIG(wst));
    assert_true(WIFEXITED(wst));
    assert_int_equal(WEXITSTATUS(wst), 42);
    remove_copy(dir);
}

// Text that is not UTF-8 is refused wherever text enters, naming the argument and byte offset;
// well-formed text (up to 4-byte characters) is accepted.
static void test_invalid_utf8(void **state) {
    (void)state;
    gemma4_model *m = load_e2b(64);
    gemma4_session *s;
    assert_int_equal(gemma4_session_new(m, 0, &s), GEMMA4_OK);
    int32_t ids[64];
    size_t n;
    static const struct { const char *text; size_t offset; } bad[] = {
        {"abc\xff", 3},         {"\x80x", 0},          {"a\xc3", 1},       // stray, lone continuation, truncated
        {"\xc0\xaf", 0},        {"\xe0\x80\xaf", 0},   {"\xed\xa0\x80", 0}, // overlong, overlong, surrogate
        {"\xf4\x90\x80\x80", 0}, {"ok \xf0\x9f\x99", 3},                    // > U+10FFFF, truncated emoji
    };
    for (size_t i = 0; i < G4_COUNT(bad); i++) {
        char want[64];
        snprintf(want, sizeof want, "at offset %zu", bad[i].offset);
        EXPECT_ERR(gemma4_tokenize(m, bad[i].text, strlen(bad[i].text), 0, ids, 64, &n),
                   GEMMA4_ERR_INVALID_ARGUMENT, want);
        assert_non_null(strstr(gemma4_last_error(), "text is not valid UTF-8"));
    }
    // the length counts: a NUL-free check over exactly len bytes
    assert_int_equal(gemma4_tokenize(m, "ab\xff", 2, 0, ids, 64, &n), GEMMA4_OK);
    const char *good = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x99\x82";
    assert_int_equal(gemma4_tokenize(m, good, strlen(good), 0, ids, 64, &n), GEMMA4_OK);
    EXPECT_ERR(gemma4_generate(s, "hi \xfe", 1, NULL, NULL), GEMMA4_ERR_INVALID_ARGUMENT,
               "gemma4_generate: prompt is not valid UTF-8: byte 0xfe at offset 3");
    EXPECT_ERR(gemma4_session_add_stop(s, "\xff"), GEMMA4_ERR_INVALID_ARGUMENT, "stop is not valid UTF-8");
    const char *roles[] = {"user", "model"}, *contents[] = {"fine", "bad \xc3("};
    char buf[256];
    EXPECT_ERR(gemma4_chat_apply(m, roles, contents, 2, 1, buf, sizeof buf, &n),
               GEMMA4_ERR_INVALID_ARGUMENT, "contents[1] is not valid UTF-8: byte 0xc3 at offset 4");
    EXPECT_ERR(gemma4_chat_generate(s, roles, contents, 2, 1, NULL, NULL), GEMMA4_ERR_INVALID_ARGUMENT,
               "contents[1]");
    int64_t past;
    gemma4_session_info(s, GEMMA4_SESSION_N_PAST, &past);
    assert_int_equal(past, 0); // nothing ran
    gemma4_session_free(s);
    gemma4_model_free(m);
}

static void test_version(void **state) {
    (void)state;
    assert_string_equal(gemma4_version(), GEMMA4_VERSION_STRING);
    assert_int_equal(gemma4_abi_version(), GEMMA4_ABI_VERSION);
    assert_string_equal(gemma4_status_name(GEMMA4_ERR_CONTEXT_FULL), "GEMMA4_ERR_CONTEXT_FULL");
    assert_string_equal(gemma4_status_name(9999), "GEMMA4_ERR_UNKNOWN");
}

static void test_load_errors(void **state) {
    (void)state;
    gemma4_model *m = (gemma4_model *)0x1;
    EXPECT_ERR(gemma4_load(NULL, 0, 0, 0, 0, &m), GEMMA4_ERR_INVALID_ARGUMENT, "model_dir");
    assert_null(m);
    EXPECT_ERR(gemma4_load("/x", 0, 0, 0, 0, NULL), GEMMA4_ERR_INVALID_ARGUMENT, "out");
    EXPECT_ERR(gemma4_load("/x", 7, 0, 0, 0, &m), GEMMA4_ERR_INVALID_ARGUMENT, "device 7");
    EXPECT_ERR(gemma4_load("/nonexistent/model", 0, 0, 0, 0, &m), GEMMA4_ERR_IO, "/nonexistent/model");
    EXPECT_ERR(gemma4_load(g4_src_path("tests"), 0, 0, 0, 0, &m), GEMMA4_ERR_IO, "config.json");
    assert_null(m);
    // CUDA: a clean error on a machine without a GPU or a build without CUDA (never a crash)
    gemma4_status st = gemma4_load(g4_src_path("tests/golden/e2b"), GEMMA4_DEVICE_CUDA, 0, 0, 0, &m);
    printf("load on CUDA -> %s: %s\n", gemma4_status_name(st), gemma4_last_error());
    if (st != GEMMA4_OK) {
        assert_true(st == GEMMA4_ERR_DEVICE || st == GEMMA4_ERR_UNSUPPORTED);
        assert_true(strlen(gemma4_last_error()) > 10);
        assert_null(m);
    }
    gemma4_model_free(m);
    gemma4_model_free(NULL);
    gemma4_session_free(NULL);
}

static void test_info(void **state) {
    (void)state;
    gemma4_model *m = load_e2b(64);
    int64_t v;
    assert_int_equal(gemma4_model_info(m, GEMMA4_INFO_VOCAB_SIZE, &v), GEMMA4_OK);
    assert_int_equal(v, 512);
    assert_int_equal(gemma4_model_info(m, GEMMA4_INFO_N_LAYERS, &v), GEMMA4_OK);
    assert_int_equal(v, 8);
    assert_int_equal(gemma4_model_info(m, GEMMA4_INFO_BOS_ID, &v), GEMMA4_OK);
    assert_int_equal(v, 2);
    assert_int_equal(gemma4_model_info(m, GEMMA4_INFO_N_CTX, &v), GEMMA4_OK);
    assert_int_equal(v, 64);
    assert_int_equal(gemma4_model_info(m, GEMMA4_INFO_WEIGHT_BYTES, &v), GEMMA4_OK);
    assert_true(v > 1000000 && v < 1844040); // tensors of model.safetensors, less its header
    EXPECT_ERR(gemma4_model_info(m, 999, &v), GEMMA4_ERR_INVALID_ARGUMENT, "unknown key 999");
    char buf[16];
    size_t n;
    assert_int_equal(gemma4_model_variant(m, NULL, 0, &n), GEMMA4_OK);
    assert_int_equal(n, strlen("custom"));
    EXPECT_ERR(gemma4_model_variant(m, buf, 3, &n), GEMMA4_ERR_BUFFER_TOO_SMALL, "needed");
    assert_int_equal(n, 6);
    assert_int_equal(gemma4_model_variant(m, buf, sizeof buf, &n), GEMMA4_OK);
    assert_string_equal(buf, "custom");
    // precision: fp32 by default, settable, unknown values refused and the setting kept
    gemma4_session *s;
    assert_int_equal(gemma4_session_new(m, 0, &s), GEMMA4_OK);
    assert_int_equal(gemma4_session_info(s, GEMMA4_SESSION_PRECISION, &v), GEMMA4_OK);
    assert_int_equal(v, GEMMA4_PRECISION_FP32);
    assert_int_equal(gemma4_session_set_precision(s, GEMMA4_PRECISION_BF16), GEMMA4_OK);
    assert_int_equal(gemma4_session_info(s, GEMMA4_SESSION_PRECISION, &v), GEMMA4_OK);
    assert_int_equal(v, GEMMA4_PRECISION_BF16);
    EXPECT_ERR(gemma4_session_set_precision(s, 2), GEMMA4_ERR_INVALID_ARGUMENT, "unknown precision 2");
    EXPECT_ERR(gemma4_session_set_precision(s, -1), GEMMA4_ERR_INVALID_ARGUMENT, "unknown precision -1");
    EXPECT_ERR(gemma4_session_set_precision(NULL, 0), GEMMA4_ERR_INVALID_ARGUMENT, "NULL");
    assert_int_equal(gemma4_session_info(s, GEMMA4_SESSION_PRECISION, &v), GEMMA4_OK);
    assert_int_equal(v, GEMMA4_PRECISION_BF16);
    assert_int_equal(gemma4_session_set_precision(s, GEMMA4_PRECISION_FP32), GEMMA4_OK);
    assert_int_equal(gemma4_session_info(s, GEMMA4_SESSION_PRECISION, &v), GEMMA4_OK);
    assert_int_equal(v, GEMMA4_PRECISION_FP32);
    gemma4_session_free(s);
    EXPECT_ERR(gemma4_session_set_precision(s, 0), GEMMA4_ERR_INVALID_ARGUMENT, "freed session");
    gemma4_model_free(m);
}

static void test_step_errors_and_lifetime(void **state) {
    (void)state;
    gemma4_model *m = load_e2b(16);
    gemma4_session *s;
    assert_int_equal(gemma4_session_new(m, 0, &s), GEMMA4_OK);
    gemma4_model_free(m); // the session keeps the model alive
    int32_t toks[20] = {2, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28};
    float logits[512];
    size_t n;
    int32_t bad[2] = {5, 512};
    EXPECT_ERR(gemma4_session_step(s, bad, 2, NULL, 0, NULL), GEMMA4_ERR_INVALID_TOKEN, "512");
    bad[1] = -1;
    EXPECT_ERR(gemma4_session_step(s, bad, 2, NULL, 0, NULL), GEMMA4_ERR_INVALID_TOKEN, "-1");
    EXPECT_ERR(gemma4_session_step(s, NULL, 2, NULL, 0, NULL), GEMMA4_ERR_INVALID_ARGUMENT, "NULL");
    EXPECT_ERR(gemma4_session_step(s, toks, 1, logits, 10, &n), GEMMA4_ERR_BUFFER_TOO_SMALL, "512");
    EXPECT_ERR(gemma4_session_step(s, toks, 17, NULL, 0, NULL), GEMMA4_ERR_CONTEXT_FULL, "context of 16");
    int64_t past, kv;
    gemma4_session_info(s, GEMMA4_SESSION_N_PAST, &past);
    assert_int_equal(past, 0); // nothing ran
    // e2b fixture, n_ctx 16, window 8: layers 0-4 own KV: 4 sliding rings of 8 rows x 2 heads x
    // 16 dims and 1 full layer of 16 rows x 2 heads x 32 dims; K and V, fp32 on the CPU
    assert_int_equal(gemma4_session_info(s, GEMMA4_SESSION_KV_BYTES, &kv), GEMMA4_OK);
    assert_int_equal(kv, (4 * 8 * 2 * 16 + 1 * 16 * 2 * 32) * 2 * 4);
    int32_t tok;
    EXPECT_ERR(gemma4_session_sample(s, &tok), GEMMA4_ERR_INVALID_ARGUMENT, "no logits");
    assert_int_equal(gemma4_session_step(s, toks, 16, logits, 512, &n), GEMMA4_OK);
    assert_int_equal(n, 512);
    EXPECT_ERR(gemma4_session_step(s, toks, 1, NULL, 0, NULL), GEMMA4_ERR_CONTEXT_FULL, "position 16");
    assert_int_equal(gemma4_session_sample(s, &tok), GEMMA4_OK);
    int best = 0;
    for (int i = 1; i < 512; i++) best = logits[i] > logits[best] ? i : best;
    assert_int_equal(tok, best); // greedy by default
    EXPECT_ERR(gemma4_session_truncate(s, 17), GEMMA4_ERR_INVALID_ARGUMENT, "n_keep 17");
    EXPECT_ERR(gemma4_session_set_sampling(s, -1.0f, 0, 1.0f, 0.0f), GEMMA4_ERR_INVALID_ARGUMENT, "temperature");
    EXPECT_ERR(gemma4_session_set_sampling(s, 1.0f, 0, 1.5f, 0.0f), GEMMA4_ERR_INVALID_ARGUMENT, "top_p");
    assert_int_equal(gemma4_kv_reset(s), GEMMA4_OK);
    gemma4_session_info(s, GEMMA4_SESSION_N_PAST, &past);
    assert_int_equal(past, 0);
    EXPECT_ERR(gemma4_session_step(NULL, toks, 1, NULL, 0, NULL), GEMMA4_ERR_INVALID_ARGUMENT, "NULL");
    gemma4_session_free(s); // frees the model too (checked by ASan/valgrind runs)
}

// Truncation is exact: after running 30 tokens and rewinding to k, stepping token k gives the
// logits a fresh session gets for the first k + 1 tokens; k spans the window boundary (W = 8).
static void test_truncate_exact(void **state) {
    (void)state;
    gemma4_model *m = load_e2b(64);
    gemma4_session *a, *b;
    assert_int_equal(gemma4_session_new(m, 0, &a), GEMMA4_OK);
    assert_int_equal(gemma4_session_new(m, 0, &b), GEMMA4_OK);
    int32_t toks[30];
    for (int i = 0; i < 30; i++) toks[i] = i == 0 ? 2 : 3 + (i * 37) % 500;
    static const int keeps[] = {29, 28, 21, 20, 8, 7, 1};
    float la[512], lb[512];
    for (size_t i = 0; i < G4_COUNT(keeps); i++) {
        int k = keeps[i];
        gemma4_kv_reset(a);
        assert_int_equal(gemma4_session_step(a, toks, 30, NULL, 0, NULL), GEMMA4_OK);
        assert_int_equal(gemma4_session_truncate(a, k), GEMMA4_OK);
        assert_int_equal(gemma4_session_step(a, toks + k, 1, la, 512, NULL), GEMMA4_OK);
        gemma4_kv_reset(b);
        assert_int_equal(gemma4_session_step(b, toks, (size_t)k + 1, lb, 512, NULL), GEMMA4_OK);
        char what[64];
        snprintf(what, sizeof what, "truncate to %d", k);
        // Equal up to summation order: the matmul kernels block prefill and decode differently
        // (a wrong kept row shows up as ~1e-1).
        assert_true(g4_compare_rel(la, lb, 512, 1e-5, what) <= 1e-5);
    }
    gemma4_session_free(a);
    gemma4_session_free(b);
    gemma4_model_free(m);
}

// The memory budget refuses a load or a session that would exceed it, before allocating, and
// what is freed is given back.
static void test_memory_budget(void **state) {
    (void)state;
    gemma4_model *m = load_e2b(64);
    int64_t weights;
    assert_int_equal(gemma4_model_info(m, GEMMA4_INFO_WEIGHT_BYTES, &weights), GEMMA4_OK);
    gemma4_model_free(m);
    gemma4_model *m2 = (gemma4_model *)0x1;
    assert_int_equal(gemma4_set_memory_budget((uint64_t)weights - 1), GEMMA4_OK);
    EXPECT_ERR(gemma4_load(g4_src_path("tests/golden/e2b"), 0, 0, 64, 1, &m2),
               GEMMA4_ERR_OUT_OF_MEMORY, "memory budget");
    assert_null(m2);
    // weights + a 64-position session fit, a 4096-position one does not:
    // KV fp32 = (4 sliding rings x min(8, n) rows x 2 x 16 + 1 full x n rows x 2 x 32) x 2 x 4
    const uint64_t kv64 = (4 * 8 * 2 * 16 + 64 * 2 * 32) * 2 * 4;
    assert_int_equal(gemma4_set_memory_budget((uint64_t)weights + kv64), GEMMA4_OK);
    m = load_e2b(64);
    gemma4_session *s = NULL, *big = (gemma4_session *)0x1;
    EXPECT_ERR(gemma4_session_new(m, 4096, &big), GEMMA4_ERR_OUT_OF_MEMORY, "session KV cache");
    assert_null(big);
    assert_int_equal(gemma4_session_new(m, 64, &s), GEMMA4_OK);
    int64_t kv;
    gemma4_session_info(s, GEMMA4_SESSION_KV_BYTES, &kv);
    assert_int_equal(kv, kv64);
    EXPECT_ERR(gemma4_session_new(m, 1, &big), GEMMA4_ERR_OUT_OF_MEMORY, "in use");
    gemma4_session_free(s); // gives its KV bytes back
    assert_int_equal(gemma4_session_new(m, 64, &s), GEMMA4_OK);
    gemma4_session_free(s);
    gemma4_model_free(m);
    assert_int_equal(gemma4_set_memory_budget(0), GEMMA4_OK);
}

static void test_cancel_before_step(void **state) {
    (void)state;
    gemma4_model *m = load_e2b(64);
    gemma4_session *s;
    assert_int_equal(gemma4_session_new(m, 0, &s), GEMMA4_OK);
    assert_int_equal(gemma4_session_cancel(s), GEMMA4_OK);
    int32_t toks[3] = {2, 5, 6};
    // a request made before a step is not lost: the step answers it without running, once
    assert_int_equal(gemma4_session_step(s, toks, 3, NULL, 0, NULL), GEMMA4_ERR_CANCELLED);
    assert_int_equal(gemma4_session_step(s, toks, 3, NULL, 0, NULL), GEMMA4_OK);
    EXPECT_ERR(gemma4_session_cancel(NULL), GEMMA4_ERR_INVALID_ARGUMENT, "NULL");
    gemma4_session_free(s);
    gemma4_model_free(m);
}

// A freed handle gives INVALID_ARGUMENT, and a second _free is ignored. Only handles the header
// promises to catch are used after free: a session among the last 8 freed (its struct is still
// allocated in the library's quarantine) and a model whose struct its session keeps alive, so
// this test reads no freed memory and stays clean under ASan and valgrind. A pointer to zeroed
// memory stands for any other pointer that is no handle.
static void test_freed_handles(void **state) {
    (void)state;
    gemma4_model *m = load_e2b(64);
    gemma4_session *s, *keep;
    int32_t toks[3] = {2, 5, 6}, tok;
    int64_t v;
    size_t n;
    assert_int_equal(gemma4_session_new(m, 0, &s), GEMMA4_OK);
    assert_int_equal(gemma4_session_step(s, toks, 3, NULL, 0, NULL), GEMMA4_OK);
    gemma4_session_free(s);
    EXPECT_ERR(gemma4_session_info(s, GEMMA4_SESSION_N_PAST, &v), GEMMA4_ERR_INVALID_ARGUMENT,
               "gemma4_session_info: invalid or freed session handle");
    EXPECT_ERR(gemma4_session_step(s, toks, 3, NULL, 0, NULL), GEMMA4_ERR_INVALID_ARGUMENT,
               "invalid or freed session handle");
    EXPECT_ERR(gemma4_session_sample(s, &tok), GEMMA4_ERR_INVALID_ARGUMENT, "freed session");
    EXPECT_ERR(gemma4_generate(s, "hi", 1, NULL, NULL), GEMMA4_ERR_INVALID_ARGUMENT,
               "freed session");
    EXPECT_ERR(gemma4_session_cancel(s), GEMMA4_ERR_INVALID_ARGUMENT, "freed session");
    EXPECT_ERR(gemma4_kv_reset(s), GEMMA4_ERR_INVALID_ARGUMENT, "freed session");
    gemma4_session_free(s); // double free: ignored, with a message
    assert_non_null(strstr(gemma4_last_error(), "gemma4_session_free: invalid or freed session"));

    // model: freed by its caller while a session keeps it alive
    assert_int_equal(gemma4_session_new(m, 0, &keep), GEMMA4_OK);
    gemma4_model_free(m);
    EXPECT_ERR(gemma4_model_info(m, GEMMA4_INFO_VOCAB_SIZE, &v), GEMMA4_ERR_INVALID_ARGUMENT,
               "gemma4_model_info: invalid or freed model handle");
    EXPECT_ERR(gemma4_tokenize(m, "hi", 2, 0, NULL, 0, &n), GEMMA4_ERR_INVALID_ARGUMENT,
               "freed model");
    EXPECT_ERR(gemma4_session_new(m, 0, &s), GEMMA4_ERR_INVALID_ARGUMENT, "freed model");
    assert_null(s);
    gemma4_model_free(m); // would drop the session's reference without the tag
    assert_non_null(strstr(gemma4_last_error(), "gemma4_model_free: invalid or freed model"));
    float logits[512];
    assert_int_equal(gemma4_session_step(keep, toks, 3, logits, 512, &n), GEMMA4_OK);
    assert_true(isfinite(logits[0]) && n == 512); // the model is intact
    gemma4_session_free(keep); // frees the model (its handle stays quarantined)
    gemma4_model_free(m);
    assert_non_null(strstr(gemma4_last_error(), "invalid or freed model"));

    // not a handle at all; a handle of the other kind
    static uint64_t zeros[64];
    gemma4_model *bogus_m = (gemma4_model *)zeros;
    gemma4_session *bogus_s = (gemma4_session *)zeros;
    EXPECT_ERR(gemma4_model_variant(bogus_m, NULL, 0, &n), GEMMA4_ERR_INVALID_ARGUMENT,
               "freed model");
    EXPECT_ERR(gemma4_chat_apply(bogus_m, (const char *[]){"user"}, (const char *[]){"x"}, 1, 1,
                                 NULL, 0, &n),
               GEMMA4_ERR_INVALID_ARGUMENT, "freed model");
    EXPECT_ERR(gemma4_session_set_seed(bogus_s, 1), GEMMA4_ERR_INVALID_ARGUMENT, "freed session");
    gemma4_model_free(bogus_m); // ignored: nothing is freed or released
    gemma4_session_free(bogus_s);
    m = load_e2b(64);
    EXPECT_ERR(gemma4_session_info((gemma4_session *)m, GEMMA4_SESSION_N_PAST, &v),
               GEMMA4_ERR_INVALID_ARGUMENT, "invalid or freed session handle");
    gemma4_model_free(m);
}

// Names declared GEMMA4_API in the header == names the shared library exports.
static void test_exported_symbols(void **state) {
    (void)state;
    size_t n;
    char *hdr = g4_read_file(g4_src_path("abi/gemma4.h"), &n);
    assert_non_null(hdr);
    char declared[64][64];
    int n_declared = 0;
    for (char *p = hdr; (p = strstr(p, "GEMMA4_API ")) != NULL; p++) {
        char *name = strstr(p, "gemma4_"), *paren = strchr(p, '(');
        if (!name || !paren || name > paren || strncmp(p, "GEMMA4_API __", 13) == 0 ||
            p[-1] == ' ')
            continue;
        while (strstr(name + 1, "gemma4_") && strstr(name + 1, "gemma4_") < paren)
            name = strstr(name + 1, "gemma4_");
        snprintf(declared[n_declared++], 64, "%.*s", (int)(paren - name), name);
    }
    free(hdr);
    assert_true(n_declared >= 31); // the functions of abi/gemma4.h at the time of writing
    char cmd[512];
    snprintf(cmd, sizeof cmd, "nm -D --defined-only %s/libgemma4.so | awk '$2 ~ /[TDBR]/ {print $3}'",
             G4_BINARY_DIR);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    char line[256];
    int n_exported = 0, n_unexpected = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        n_exported++;
        int found = 0;
        for (int i = 0; i < n_declared; i++) found |= strcmp(line, declared[i]) == 0;
        if (!found) {
            printf("exported but not in gemma4.h: %s\n", line);
            n_unexpected++;
        }
    }
    pclose(f);
    printf("declared %d, exported %d\n", n_declared, n_exported);
    assert_int_equal(n_unexpected, 0);
    assert_int_equal(n_exported, n_declared);
    // soname carries the ABI major version
    snprintf(cmd, sizeof cmd, "readelf -d %s/libgemma4.so | grep SONAME", G4_BINARY_DIR);
    f = popen(cmd, "r");
    assert_non_null(f);
    char want[64];
    snprintf(want, sizeof want, "[libgemma4.so.%d]", GEMMA4_ABI_VERSION);
    assert_non_null(fgets(line, sizeof line, f));
    pclose(f);
    printf("%s", line);
    assert_non_null(strstr(line, want));
}

// A Gemma 3 checkpoint through the ABI: variant, chat format (Gemma 3's, chosen by the model),
// and the CUDA engine's refusal (UNSUPPORTED where a GPU exists, DEVICE/UNSUPPORTED without).
static void test_gemma3_model(void **state) {
    (void)state;
    gemma4_model *m = NULL;
    assert_int_equal(gemma4_load(g4_src_path("tests/golden/gemma3"), GEMMA4_DEVICE_CPU, 0, 64, 2, &m),
                     GEMMA4_OK);
    char buf[256];
    size_t n;
    assert_int_equal(gemma4_model_variant(m, buf, sizeof buf, &n), GEMMA4_OK);
    assert_string_equal(buf, "gemma3-custom");
    int64_t v;
    assert_int_equal(gemma4_model_info(m, GEMMA4_INFO_END_OF_TURN_ID, &v), GEMMA4_OK);
    assert_int_equal(v, -1); // the fixture has no tokenizer
    const char *roles[] = {"system", "user"}, *contents[] = {"Be brief.", " Hi "};
    assert_int_equal(gemma4_chat_apply(m, roles, contents, 2, 1, buf, sizeof buf, &n), GEMMA4_OK);
    assert_string_equal(buf, "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n"
                             "<start_of_turn>model\n");
    const char *bad_roles[] = {"user", "user"};
    EXPECT_ERR(gemma4_chat_apply(m, bad_roles, contents, 2, 1, buf, sizeof buf, &n),
               GEMMA4_ERR_INVALID_ARGUMENT, "must alternate");
    assert_int_equal(gemma4_chat_render_json(m, "[{\"role\":\"user\",\"content\":\"Hi\"}]", NULL,
                                             GEMMA4_CHAT_ADD_GENERATION_PROMPT, buf, sizeof buf, &n),
                     GEMMA4_OK);
    assert_string_equal(buf, "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n");
    EXPECT_ERR(gemma4_chat_render_json(m, "[{\"role\":\"user\",\"content\":\"Hi\"}]",
                                       "[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]",
                                       GEMMA4_CHAT_ADD_GENERATION_PROMPT, buf, sizeof buf, &n),
               GEMMA4_ERR_UNSUPPORTED, "no tools");
    // no model: Gemma 4's format
    assert_int_equal(gemma4_chat_apply(NULL, roles, contents, 2, 1, buf, sizeof buf, &n), GEMMA4_OK);
    assert_non_null(strstr(buf, "<|turn>system\n"));
    gemma4_model_free(m);
    m = NULL;
    gemma4_status st = gemma4_load(g4_src_path("tests/golden/gemma3"), GEMMA4_DEVICE_CUDA, 0, 0, 0, &m);
    printf("gemma3 on CUDA -> %s: %s\n", gemma4_status_name(st), gemma4_last_error());
    assert_true(st == GEMMA4_ERR_DEVICE || st == GEMMA4_ERR_UNSUPPORTED);
    if (st == GEMMA4_ERR_UNSUPPORTED) // a GPU present, or a build without the CUDA engine
        assert_true(strstr(gemma4_last_error(), "Gemma 3") || strstr(gemma4_last_error(), "no CUDA engine"));
    assert_null(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_info),
        cmocka_unit_test(test_gemma3_model),
        cmocka_unit_test(test_step_errors_and_lifetime),
        cmocka_unit_test(test_truncate_exact),
        cmocka_unit_test(test_memory_budget),
        cmocka_unit_test(test_cancel_before_step),
        cmocka_unit_test(test_freed_handles),
        cmocka_unit_test(test_load_in_memory),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_exported_symbols),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
