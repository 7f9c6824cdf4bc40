// gpu_bench: the CUDA engine's speed on random-weight models with the exact shapes of Gemma 4
// E2B, E4B, 26B-A4B and 31B (tests/configs/*.json), made directly on the device
// (g4_cuda_model_init_random: no files, no transfers), through the engine API alone
// (kernels/cuda/engine.h). A program, not a test; tests/bench/gpu_bench.sh runs it with the
// transformers peer (gpu_bench_hf.py) and docs/performance.md ("GPU") explains the method.
//
// Per model and precision: prompt tok/s (a prompt of P tokens from position 0, in chunks of
// --batch tokens, the last chunk's logits copied to the host), decode tok/s at a context c (the
// context filled with untimed prompt steps, then --warmup untimed and --steps timed one-token
// steps at positions c + warmup ...; the median step), and GPU memory used (cudaMemGetInfo before
// the model and after the session). Decode steps are greedy decoding through
// g4_cuda_forward_greedy (the device's argmax fed back as the next token, 8 bytes to the host:
// what the library does for greedy sampling); --decode-logits returns each step's logits to the
// host instead (g4_cuda_forward, what other samplers need); --no-logits returns nothing. Each
// step is timed on the host clock around the engine call, which returns once its results are in
// host memory (its one stream synchronization): the latency a caller sees. The session's stream
// is the engine's own, so CUDA events are used where the benchmark owns the stream: the read
// bandwidth and the cuBLAS GEMM below.
//
// Ceilings measured in the same run: the read bandwidth of a streaming 16-byte-load kernel over
// a buffer several times the L2 (gpu_bench_kernels.cu), and a cuBLAS bf16 GEMM (cublasGemmEx,
// bf16 inputs, fp32 output and accumulation) of the model's largest per-layer matrix times
// --gemm-tokens tokens. Decode limit = bandwidth / bytes streamed per token; prompt limit =
// GEMM FLOP/s / FLOPs per prompt token. The bytes streamed per decode token (bytes_per_token):
// every per-layer bf16 matrix, per_layer_model_projection and the LM head once; one embedding
// row and one PLE row; for MoE the fp32 router and the top-k experts' gate_up + down; the K/V
// rows every layer's attention reads at the timed positions (fp32 K/V in FP32, bf16 in BF16).
// Norm vectors, RoPE tables and activations (< 0.1%) are not counted.
//
//   gpu_bench [--models e2b,e4b,26b-a4b,31b|CONFIG.json,...] [--contexts 128,4096,32768]
//             [--prompts 512,4096] [--precisions bf16,fp32] [--steps N] [--warmup N] [--reps N]
//             [--batch N] [--bw-mib N] [--gemm-tokens N] [--time-budget S] [--json FILE]
//             [--decode-logits|--no-logits] [--seed N] [--quick] [--bytes-only TB/s[,TB/s]]
//
// --quick: 16 steps, 2 warm-up steps, 1 prompt repetition, 3 ceiling repetitions. --bytes-only:
// no device; prints the bytes per decode token and the limits they give at the bandwidths named
// (predictions). Shapes that do not fit the device memory are skipped with a line saying so.
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "gpu_bench_kernels.h"

#ifndef G4_SOURCE_DIR
#define G4_SOURCE_DIR "."
#endif

#define MAX_LIST 16
#define GB 1e9
#define MIB ((size_t)1 << 20)

struct opts {
    const char *models[MAX_LIST];
    int n_models;
    int64_t contexts[MAX_LIST];
    int n_contexts;
    int64_t prompts[MAX_LIST];
    int n_prompts;
    enum g4_cuda_precision precs[2];
    int n_precs;
    int steps, warmup, reps, ceiling_reps, batch, gemm_tokens;
    size_t bw_bytes; // 0: automatic
    double time_budget;
    const char *json;
    bool logits;
    bool greedy; // decode through g4_cuda_forward_greedy (argmax on the device, fed back)
    uint64_t seed;
    double bytes_only[2];
    int n_bytes_only;
};

static FILE *json_out;
static double t_start;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *prec_name(enum g4_cuda_precision p) { return p == G4_CUDA_BF16 ? "bf16" : "fp32"; }

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void die(const char *msg) {
    fprintf(stderr, "gpu_bench: %s\n", msg);
    exit(2);
}

// ---- options ----------------------------------------------------------------------------------
static int split(char *s, char **out, int max) {
    int n = 0;
    for (char *t = strtok(s, ","); t && n < max; t = strtok(NULL, ",")) out[n++] = t;
    return n;
}

static int parse_ints(const char *arg, int64_t *out) {
    char buf[512], *parts[MAX_LIST];
    snprintf(buf, sizeof buf, "%s", arg);
    const int n = split(buf, parts, MAX_LIST);
    for (int i = 0; i < n; i++) {
        char *end;
        out[i] = strtoll(parts[i], &end, 10);
        if (*end || out[i] < 1) die("lists take positive integers");
    }
    return n;
}

static int cmp_i64(const void *a, const void *b) {
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void usage(void) {
    printf("usage: gpu_bench [--models e2b,e4b,26b-a4b,31b|CONFIG.json,...] [--contexts 128,4096,32768]\n"
           "                 [--prompts 512,4096] [--precisions bf16,fp32] [--steps N] [--warmup N]\n"
           "                 [--reps N] [--batch N] [--bw-mib N] [--gemm-tokens N] [--time-budget S]\n"
           "                 [--json FILE] [--decode-logits|--no-logits] [--seed N] [--quick]\n"
           "                 [--bytes-only TB/s[,TB/s]]\n");
}

static void parse_args(struct opts *o, int argc, char **argv) {
    static char models_buf[1024];
    memset(o, 0, sizeof *o);
    snprintf(models_buf, sizeof models_buf, "e2b,e4b,26b-a4b,31b");
    o->n_contexts = parse_ints("128,4096,32768", o->contexts);
    o->n_prompts = parse_ints("512,4096", o->prompts);
    o->precs[0] = G4_CUDA_BF16, o->precs[1] = G4_CUDA_FP32, o->n_precs = 2;
    o->steps = 64, o->warmup = 4, o->reps = 3, o->ceiling_reps = 10, o->batch = 512;
    o->gemm_tokens = 4096, o->logits = true, o->greedy = true, o->seed = 1;
    for (int i = 1; i < argc; i++) // --quick sets defaults that the other options override
        if (!strcmp(argv[i], "--quick")) o->steps = 16, o->warmup = 2, o->reps = 1, o->ceiling_reps = 3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_VALUE() do { if (!v) die("an option lacks its value"); i++; } while (0)
        if (!strcmp(a, "--models")) { NEED_VALUE(); snprintf(models_buf, sizeof models_buf, "%s", v); }
        else if (!strcmp(a, "--contexts")) { NEED_VALUE(); o->n_contexts = parse_ints(v, o->contexts); }
        else if (!strcmp(a, "--prompts")) { NEED_VALUE(); o->n_prompts = parse_ints(v, o->prompts); }
        else if (!strcmp(a, "--precisions")) {
            NEED_VALUE();
            char buf[64], *parts[4];
            snprintf(buf, sizeof buf, "%s", v);
            o->n_precs = split(buf, parts, 2);
            for (int k = 0; k < o->n_precs; k++) {
                if (!strcmp(parts[k], "bf16")) o->precs[k] = G4_CUDA_BF16;
                else if (!strcmp(parts[k], "fp32")) o->precs[k] = G4_CUDA_FP32;
                else die("--precisions takes bf16 and/or fp32");
            }
        }
        else if (!strcmp(a, "--steps")) { NEED_VALUE(); o->steps = atoi(v); }
        else if (!strcmp(a, "--warmup")) { NEED_VALUE(); o->warmup = atoi(v); }
        else if (!strcmp(a, "--reps")) { NEED_VALUE(); o->reps = atoi(v); }
        else if (!strcmp(a, "--batch")) { NEED_VALUE(); o->batch = atoi(v); }
        else if (!strcmp(a, "--bw-mib")) { NEED_VALUE(); o->bw_bytes = (size_t)atoll(v) * MIB; }
        else if (!strcmp(a, "--gemm-tokens")) { NEED_VALUE(); o->gemm_tokens = atoi(v); }
        else if (!strcmp(a, "--time-budget")) { NEED_VALUE(); o->time_budget = atof(v); }
        else if (!strcmp(a, "--json")) { NEED_VALUE(); o->json = v; }
        else if (!strcmp(a, "--seed")) { NEED_VALUE(); o->seed = (uint64_t)atoll(v); }
        else if (!strcmp(a, "--no-logits")) o->logits = false, o->greedy = false;
        else if (!strcmp(a, "--decode-logits")) o->greedy = false;
        else if (!strcmp(a, "--quick")) continue;
        else if (!strcmp(a, "--bytes-only")) {
            NEED_VALUE();
            char buf[64], *parts[2];
            snprintf(buf, sizeof buf, "%s", v);
            o->n_bytes_only = split(buf, parts, 2);
            for (int k = 0; k < o->n_bytes_only; k++) o->bytes_only[k] = atof(parts[k]) * 1e12;
        }
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(); exit(0); }
        else { usage(); die("unknown option"); }
#undef NEED_VALUE
    }
    if (o->steps < 1 || o->warmup < 0 || o->reps < 1 || o->batch < 1 || o->gemm_tokens < 1)
        die("--steps, --reps, --batch and --gemm-tokens must be >= 1, --warmup >= 0");
    o->n_models = split(models_buf, (char **)o->models, MAX_LIST);
    qsort(o->contexts, (size_t)o->n_contexts, sizeof o->contexts[0], cmp_i64);
    qsort(o->prompts, (size_t)o->n_prompts, sizeof o->prompts[0], cmp_i64);
}

// ---- configs ----------------------------------------------------------------------------------
// A name (e2b, e4b, 26b-a4b, 31b: tests/configs/NAME.json), a .json file or a directory holding
// config.json.
static g4_status load_config(struct g4_config *cfg, const char *arg, char *path, size_t path_n) {
    if (strchr(arg, '/') || strstr(arg, ".json")) {
        const size_t n = strlen(arg);
        if (n > 5 && !strcmp(arg + n - 5, ".json")) snprintf(path, path_n, "%s", arg);
        else snprintf(path, path_n, "%s/config.json", arg);
    } else {
        snprintf(path, path_n, "%s/tests/configs/%s.json", G4_SOURCE_DIR, arg);
    }
    FILE *f = fopen(path, "rb");
    if (!f) return g4_fail(G4_ERR_IO, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    const long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)n + 1);
    if (!text) {
        fclose(f);
        return g4_fail(G4_ERR_OUT_OF_MEMORY, "config text");
    }
    const size_t got = fread(text, 1, (size_t)n, f);
    fclose(f);
    text[got] = 0;
    g4_status st = g4_config_parse(cfg, text, got, path);
    free(text);
    return st;
}

// The name a model's rows carry: the argument itself, or for a path the file's stem (NAME.json)
// or its directory's name (NAME/config.json).
static const char *model_name(const char *arg, char *buf, size_t n) {
    if (!strchr(arg, '/') && !strstr(arg, ".json")) return arg;
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", arg);
    size_t len = strlen(tmp);
    while (len > 1 && tmp[len - 1] == '/') tmp[--len] = 0;
    if (len >= 11 && !strcmp(tmp + len - 11, "config.json")) {
        tmp[len - 11] = 0;
        len -= 11;
        while (len > 0 && tmp[len - 1] == '/') tmp[--len] = 0;
    } else if (len > 5 && !strcmp(tmp + len - 5, ".json")) {
        tmp[len - 5] = 0;
    }
    const char *slash = strrchr(tmp, '/');
    snprintf(buf, n, "%s", slash ? slash + 1 : tmp);
    return buf;
}

// "4.593 GB", "12.3 MB", "950.0 KB" (and FLOP likewise, with unit "FLOP").
static const char *fmt_si(double v, const char *unit, char *buf, size_t n) {
    if (v >= 1e9) snprintf(buf, n, "%.3f G%s", v / 1e9, unit);
    else if (v >= 1e6) snprintf(buf, n, "%.3f M%s", v / 1e6, unit);
    else snprintf(buf, n, "%.1f K%s", v / 1e3, unit);
    return buf;
}

// ---- what one token costs ---------------------------------------------------------------------
// Bytes one decode step streams, by kind (see the file comment).
struct traffic {
    double matrices; // per-layer bf16 matrices + per_layer_model_projection
    double lm_head;  // vocab x hidden bf16 (the embedding itself when tied)
    double rows;     // one embedding row + one PLE row
    double router;   // MoE router, fp32
    double experts;  // top-k experts' gate_up + down
    double kv;       // K/V rows read at the timed positions (mean over the steps)
};

static double weights_total(const struct traffic *t) {
    return t->matrices + t->lm_head + t->rows + t->router + t->experts;
}

// Per-layer matrix elements every token multiplies (no experts, no router).
static double layer_matrix_elems(const struct g4_config *c, int il) {
    const struct g4_layer *ly = &c->layer[il];
    const double H = c->hidden_size, hd = ly->head_dim, nh = c->num_attention_heads;
    const double kv = ly->writes_kv ? (double)ly->n_kv_heads * hd * (ly->k_eq_v ? 1 : 2) : 0;
    const double I = ly->intermediate_size, P = c->hidden_size_per_layer_input;
    return (nh * hd + kv) * H + H * nh * hd + 2 * I * H + H * I + 2 * P * H;
}

// Keys the query at position pos attends in layer il.
static double keys_at(const struct g4_layer *ly, int64_t pos) {
    const int64_t k = pos + 1;
    return (double)(ly->window > 0 && k > ly->window ? ly->window : k);
}

// K/V bytes of one step at position pos.
static double kv_bytes_at(const struct g4_config *c, int64_t pos, double elem) {
    double b = 0;
    for (int il = 0; il < c->num_hidden_layers; il++) {
        const struct g4_layer *ly = &c->layer[il];
        b += 2.0 * keys_at(ly, pos) * ly->n_kv_heads * ly->head_dim * elem;
    }
    return b;
}

// Decode steps at positions [pos0, pos0 + steps).
static struct traffic decode_traffic(const struct g4_config *c, int64_t pos0, int steps,
                                     double kv_elem) {
    struct traffic t = {0};
    const double H = c->hidden_size, L = c->num_hidden_layers, P = c->hidden_size_per_layer_input;
    for (int il = 0; il < c->num_hidden_layers; il++) t.matrices += 2.0 * layer_matrix_elems(c, il);
    t.matrices += 2.0 * L * P * H;
    t.lm_head = 2.0 * c->vocab_size * H;
    t.rows = 2.0 * H + 2.0 * L * P;
    if (c->enable_moe_block) {
        t.router = 4.0 * L * c->num_experts * H;
        t.experts = 2.0 * L * c->top_k_experts * 3.0 * c->moe_intermediate_size * H;
    }
    for (int i = 0; i < steps; i++) t.kv += kv_bytes_at(c, pos0 + i, kv_elem);
    t.kv /= steps;
    return t;
}

// FLOPs per token of a prompt of n tokens from position 0: the products (2 per multiply-add:
// every per-layer matrix, per_layer_model_projection, router and top-k experts per token; the LM
// head for the last token only) and attention (QK^T and PV: 4 * heads * head_dim per key).
static double prompt_flops_per_token(const struct g4_config *c, int64_t n) {
    const double H = c->hidden_size, L = c->num_hidden_layers, P = c->hidden_size_per_layer_input;
    double per_tok = 2.0 * L * P * H;
    for (int il = 0; il < c->num_hidden_layers; il++) per_tok += 2.0 * layer_matrix_elems(c, il);
    if (c->enable_moe_block)
        per_tok += 2.0 * L * c->num_experts * H +
                   2.0 * L * c->top_k_experts * 3.0 * c->moe_intermediate_size * H;
    double attn = 0;
    for (int il = 0; il < c->num_hidden_layers; il++) {
        const struct g4_layer *ly = &c->layer[il];
        double keys = 0; // sum over positions of min(pos + 1, window)
        const int64_t w = ly->window > 0 && ly->window < n ? ly->window : n;
        keys = (double)w * (double)(w + 1) / 2 + (double)(n - w) * (double)w;
        attn += 4.0 * c->num_attention_heads * ly->head_dim * keys;
    }
    return per_tok + attn / (double)n + 2.0 * c->vocab_size * H / (double)n;
}

// The largest matrix a prompt multiplies per layer (the cuBLAS ceiling's shape).
static void largest_matrix(const struct g4_config *c, int *rows, int *cols) {
    double best = 0;
    for (int il = 0; il < c->num_hidden_layers; il++) {
        const struct g4_layer *ly = &c->layer[il];
        const int H = c->hidden_size, hd = ly->head_dim, nh = c->num_attention_heads;
        const int kv = ly->writes_kv ? ly->n_kv_heads * hd * (ly->k_eq_v ? 1 : 2) : 0;
        const int cand[4][2] = {{nh * hd + kv, H}, {H, nh * hd}, {2 * ly->intermediate_size, H},
                                {H, ly->intermediate_size}};
        for (int k = 0; k < 4; k++)
            if ((double)cand[k][0] * cand[k][1] > best) {
                best = (double)cand[k][0] * cand[k][1];
                *rows = cand[k][0], *cols = cand[k][1];
            }
    }
}

// ---- device and ceilings ------------------------------------------------------------------------
#define CHECK_CUDA(expr)                                                                           \
    do {                                                                                           \
        cudaError_t e_ = (expr);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            snprintf(err, err_n, "%s: %s", #expr, cudaGetErrorString(e_));                         \
            cudaGetLastError();                                                                    \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

struct device_info {
    char name[256], driver[64];
    int sms, driver_api, runtime_api;
    size_t l2, total, free0;
    double bw; // bytes/s
    size_t bw_buffer;
    int bw_blocks;
};

static void driver_version(char *out, size_t n) {
    snprintf(out, n, "unknown");
    FILE *f = fopen("/proc/driver/nvidia/version", "r");
    if (!f) return;
    char line[512];
    if (fgets(line, sizeof line, f)) {
        const char *k = strstr(line, "Kernel Module");
        if (k) {
            k += strlen("Kernel Module");
            while (*k == ' ') k++;
            size_t i = 0;
            while (k[i] && k[i] != ' ' && i + 1 < n) i++;
            snprintf(out, n, "%.*s", (int)i, k);
        }
    }
    fclose(f);
}

// Median time of `reps` read passes (events on our stream), after 2 warm-up passes.
static bool measure_bandwidth(struct device_info *d, const struct opts *o, char *err, size_t err_n) {
    void *buf = NULL;
    unsigned *sink = NULL;
    cudaStream_t st = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    double ms[64];
    size_t bytes = o->bw_bytes;
    if (!bytes) {
        bytes = 8 * d->l2 > ((size_t)2 << 30) ? 8 * d->l2 : ((size_t)2 << 30);
        if (bytes > d->free0 / 4) bytes = d->free0 / 4 / MIB * MIB;
    }
    d->bw_buffer = bytes;
    const size_t per_block = (size_t)G4_BENCH_READ_THREADS * 16 * G4_BENCH_READ_UNROLL * 4;
    size_t blocks = (size_t)d->sms * 8;
    if (blocks > bytes / per_block) blocks = bytes / per_block; // >= 4 iterations per thread
    d->bw_blocks = blocks < 1 ? 1 : (int)blocks;
    CHECK_CUDA(cudaMalloc(&buf, bytes));
    CHECK_CUDA(cudaMalloc((void **)&sink, 16));
    CHECK_CUDA(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    CHECK_CUDA(cudaEventCreate(&e0));
    CHECK_CUDA(cudaEventCreate(&e1));
    // random contents (a read of zeros could be served faster: METHOD.md)
    if (g4_cuda_fill_normal_bf16(buf, bytes / 2, 99, 1.0f, st) != G4_OK) {
        snprintf(err, err_n, "fill: %s", g4_last_error());
        goto fail;
    }
    const int reps = o->ceiling_reps < 64 ? o->ceiling_reps : 64;
    for (int r = -2; r < reps; r++) {
        CHECK_CUDA(cudaEventRecord(e0, st));
        if (g4_bench_read(buf, bytes, sink, d->bw_blocks, st) != G4_OK) {
            snprintf(err, err_n, "%s", g4_last_error());
            goto fail;
        }
        CHECK_CUDA(cudaEventRecord(e1, st));
        CHECK_CUDA(cudaEventSynchronize(e1));
        float t = 0;
        CHECK_CUDA(cudaEventElapsedTime(&t, e0, e1));
        if (r >= 0) ms[r] = t;
    }
    const double med = median(ms, reps);
    d->bw = med > 0 ? (double)bytes / (med * 1e-3) : 0;
    cudaEventDestroy(e0), cudaEventDestroy(e1), cudaStreamDestroy(st);
    cudaFree(buf), cudaFree(sink);
    return true;
fail:
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    if (st) cudaStreamDestroy(st);
    cudaFree(buf), cudaFree(sink);
    return false;
}

// cuBLAS bf16 GEMM rate of out (tokens, rows) = x (tokens, cols) @ w (rows, cols)^T, fp32 output
// and accumulation, on random operands: median of reps after 2 warm-ups. FLOP/s, 0 on error.
static double measure_gemm(int rows, int cols, int tokens, int reps, char *err, size_t err_n) {
    g4_bf16 *w = NULL, *x = NULL;
    float *out = NULL;
    cudaStream_t st = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    cublasHandle_t h = NULL;
    double ms[64], rate = 0;
    if (reps > 64) reps = 64;
    CHECK_CUDA(cudaMalloc((void **)&w, (size_t)rows * cols * 2));
    CHECK_CUDA(cudaMalloc((void **)&x, (size_t)tokens * cols * 2));
    CHECK_CUDA(cudaMalloc((void **)&out, (size_t)tokens * rows * 4));
    CHECK_CUDA(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    CHECK_CUDA(cudaEventCreate(&e0));
    CHECK_CUDA(cudaEventCreate(&e1));
    if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS || cublasSetStream(h, st) != CUBLAS_STATUS_SUCCESS) {
        snprintf(err, err_n, "cublasCreate/cublasSetStream failed");
        goto fail;
    }
    if (g4_cuda_fill_normal_bf16(w, (size_t)rows * cols, 5, 1.0f / sqrtf((float)cols), st) != G4_OK ||
        g4_cuda_fill_normal_bf16(x, (size_t)tokens * cols, 6, 1.0f, st) != G4_OK) {
        snprintf(err, err_n, "fill: %s", g4_last_error());
        goto fail;
    }
    const float one = 1.0f, zero = 0.0f;
    for (int r = -2; r < reps; r++) {
        CHECK_CUDA(cudaEventRecord(e0, st));
        // column-major: out^T (rows, tokens) = w^T^T ... i.e. C = op(A) B with A = w (cols x rows
        // column-major, transposed), B = x^T (cols x tokens)
        cublasStatus_t bs = cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, rows, tokens, cols, &one, w,
                                         CUDA_R_16BF, cols, x, CUDA_R_16BF, cols, &zero, out,
                                         CUDA_R_32F, rows, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        if (bs != CUBLAS_STATUS_SUCCESS) {
            snprintf(err, err_n, "cublasGemmEx: %s", cublasGetStatusString(bs));
            goto fail;
        }
        CHECK_CUDA(cudaEventRecord(e1, st));
        CHECK_CUDA(cudaEventSynchronize(e1));
        float t = 0;
        CHECK_CUDA(cudaEventElapsedTime(&t, e0, e1));
        if (r >= 0) ms[r] = t;
    }
    const double med = median(ms, reps);
    rate = med > 0 ? 2.0 * rows * cols * (double)tokens / (med * 1e-3) : 0;
fail:
    if (h) cublasDestroy(h);
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    if (st) cudaStreamDestroy(st);
    cudaFree(w), cudaFree(x), cudaFree(out);
    return rate;
}

// ---- the runs ---------------------------------------------------------------------------------
struct run {
    const struct opts *o;
    const struct g4_config *cfg;
    const char *model;
    enum g4_cuda_precision prec;
    struct g4_cuda_session *s;
    const struct device_info *dev;
    double gemm_rate;
    int32_t *toks;  // (n_ctx,) random token ids
    float *logits;  // (vocab,)
    int64_t filled; // positions [0, filled) hold this session's K/V in order
    double prompt_rate; // tok/s of the last prompt measured (fill-time estimates)
};

static double budget_left(const struct opts *o) {
    return o->time_budget > 0 ? o->time_budget - (now_s() - t_start) : 1e30;
}

static bool finite_logits(const struct run *r) {
    if (!r->o->logits) return true;
    for (int i = 0; i < r->cfg->vocab_size; i++)
        if (!isfinite(r->logits[i])) return false;
    return true;
}

// Tokens [pos0, pos0 + n) in chunks of --batch; logits of the last chunk when want_logits.
static g4_status run_tokens(struct run *r, int64_t pos0, int64_t n, bool want_logits) {
    for (int64_t done = 0; done < n;) {
        const int chunk = n - done < r->o->batch ? (int)(n - done) : r->o->batch;
        const bool last = done + chunk == n;
        G4_TRY(g4_cuda_forward(r->s, r->toks + pos0 + done, chunk, pos0 + done,
                               last && want_logits ? r->logits : NULL, false, r->prec));
        done += chunk;
    }
    return G4_OK;
}

static void row_skipped(const struct run *r, const char *test, int64_t n, const char *why) {
    printf("%-5s %-7s %-7lld skipped: %s\n", prec_name(r->prec), test, (long long)n, why);
    fflush(stdout);
    if (json_out)
        fprintf(json_out,
                "{\"type\":\"row\",\"model\":\"%s\",\"prec\":\"%s\",\"test\":\"%s\",\"n\":%lld,"
                "\"skipped\":\"%s\"}\n", r->model, prec_name(r->prec), test, (long long)n, why);
}

static void row_error(const struct run *r, const char *test, int64_t n) {
    printf("%-5s %-7s %-7lld error: %s\n", prec_name(r->prec), test, (long long)n, g4_last_error());
    fflush(stdout);
    if (json_out) {
        fprintf(json_out, "{\"type\":\"row\",\"model\":\"%s\",\"prec\":\"%s\",\"test\":\"%s\","
                          "\"n\":%lld,\"error\":\"", r->model, prec_name(r->prec), test,
                (long long)n);
        for (const char *p = g4_last_error(); *p; p++)
            fputc(*p == '"' || *p == '\\' ? '\'' : *p, json_out);
        fputs("\"}\n", json_out);
    }
}

// Prompt of n tokens from position 0: median wall time of --reps runs.
static bool bench_prompt(struct run *r, int64_t n) {
    const struct opts *o = r->o;
    const double est = r->prompt_rate > 0 ? (double)n * (o->reps + 1) / r->prompt_rate : 0;
    if (est > budget_left(o)) {
        row_skipped(r, "prompt", n, "time budget");
        return true;
    }
    double t[64];
    const int reps = o->reps < 64 ? o->reps : 64;
    for (int i = -1; i < reps; i++) { // one untimed run first (cuBLAS heuristics, first launches)
        const double t0 = now_s();
        if (run_tokens(r, 0, n, true) != G4_OK) {
            r->filled = 0;
            row_error(r, "prompt", n);
            return false;
        }
        if (i >= 0) t[i] = now_s() - t0;
    }
    r->filled = n;
    const double sec = median(t, reps), tok_s = (double)n / sec;
    r->prompt_rate = tok_s;
    const double flops = prompt_flops_per_token(r->cfg, n);
    const double limit = r->gemm_rate > 0 ? r->gemm_rate / flops : 0;
    const bool fin = finite_logits(r);
    char fb[32];
    printf("%-5s %-7s %-7lld %10.1f %10.3f %15s %12.1f %8.1f %%  %s  (%.1f TFLOP/s)\n",
           prec_name(r->prec), "prompt", (long long)n, tok_s, 1e3 * sec,
           fmt_si(flops, "FLOP", fb, sizeof fb), limit, limit > 0 ? 100.0 * tok_s / limit : 0.0,
           fin ? "yes" : "NO", tok_s * flops / 1e12);
    fflush(stdout);
    if (json_out)
        fprintf(json_out,
                "{\"type\":\"row\",\"model\":\"%s\",\"prec\":\"%s\",\"test\":\"prompt\",\"n\":%lld,"
                "\"tok_s\":%.6g,\"ms\":%.6g,\"flops_per_token\":%.17g,\"tflops\":%.6g,"
                "\"gemm_tflops\":%.6g,\"limit_tok_s\":%.6g,\"pct\":%.6g,\"finite\":%s,\"batch\":%d}\n",
                r->model, prec_name(r->prec), (long long)n, tok_s, 1e3 * sec, flops,
                tok_s * flops / 1e12, r->gemm_rate / 1e12, limit,
                limit > 0 ? 100.0 * tok_s / limit : 0.0, fin ? "true" : "false", o->batch);
    return true;
}

// Decode at context ctx: fill [filled, ctx) untimed, --warmup steps, then --steps timed steps.
static bool bench_decode(struct run *r, int64_t ctx) {
    const struct opts *o = r->o;
    if (ctx < r->filled) r->filled = 0; // start over from position 0
    const double fill_est = r->prompt_rate > 0 ? 1.5 * (double)(ctx - r->filled) / r->prompt_rate : 0;
    if (fill_est + 0.05 * (o->steps + o->warmup) > budget_left(o)) {
        char why[96];
        snprintf(why, sizeof why, "time budget (filling the context takes ~%.0f s)", fill_est);
        row_skipped(r, "decode", ctx, why);
        return true;
    }
    if (run_tokens(r, r->filled, ctx - r->filled, false) != G4_OK) {
        r->filled = 0;
        row_error(r, "decode", ctx);
        return false;
    }
    double t[4096];
    const int steps = o->steps < 4096 ? o->steps : 4096;
    int64_t pos = ctx;
    int32_t tok = r->toks[pos];
    bool greedy_finite = true;
    for (int i = -o->warmup; i < steps; i++, pos++) {
        const double t0 = now_s();
        g4_status st;
        if (o->greedy) { // greedy decoding: the device's argmax is the next input
            int32_t next = 0, nonfinite = -1;
            st = g4_cuda_forward_greedy(r->s, &tok, 1, pos, r->prec, &next, &nonfinite);
            tok = next;
            greedy_finite = greedy_finite && nonfinite < 0;
        } else {
            st = g4_cuda_forward(r->s, r->toks + pos, 1, pos, o->logits ? r->logits : NULL,
                                 false, r->prec);
        }
        if (st != G4_OK) {
            r->filled = 0;
            row_error(r, "decode", ctx);
            return false;
        }
        if (i >= 0) t[i] = now_s() - t0;
    }
    r->filled = pos;
    const double kv_elem = r->prec == G4_CUDA_BF16 ? 2.0 : 4.0;
    const struct traffic tr = decode_traffic(r->cfg, ctx + o->warmup, steps, kv_elem);
    const double bytes = weights_total(&tr) + tr.kv;
    const double sec = median(t, steps), tok_s = 1.0 / sec;
    const double limit = r->dev->bw / bytes;
    const bool fin = finite_logits(r);
    char bb[32], kb[32];
    printf("%-5s %-7s %-7lld %10.1f %10.3f %15s %12.1f %8.1f %%  %s  (K/V %s)\n",
           prec_name(r->prec), "decode", (long long)ctx, tok_s, 1e3 * sec,
           fmt_si(bytes, "B", bb, sizeof bb), limit, 100.0 * tok_s / limit, fin ? "yes" : "NO",
           fmt_si(tr.kv, "B", kb, sizeof kb));
    fflush(stdout);
    if (json_out)
        fprintf(json_out,
                "{\"type\":\"row\",\"model\":\"%s\",\"prec\":\"%s\",\"test\":\"decode\",\"n\":%lld,"
                "\"pos0\":%lld,\"steps\":%d,\"tok_s\":%.6g,\"ms\":%.6g,\"bytes\":%.17g,"
                "\"kv_bytes\":%.17g,\"bw\":%.6g,\"limit_tok_s\":%.6g,\"pct\":%.6g,\"finite\":%s}\n",
                r->model, prec_name(r->prec), (long long)ctx, (long long)(ctx + o->warmup), steps,
                tok_s, 1e3 * sec, bytes, tr.kv, r->dev->bw, limit, 100.0 * tok_s / limit,
                fin ? "true" : "false");
    return true;
}

static int64_t max_i64(const int64_t *v, int n) {
    int64_t m = 0;
    for (int i = 0; i < n; i++) m = v[i] > m ? v[i] : m;
    return m;
}

// One precision of one model: session, then decode and prompt tests in the order that keeps
// fills short (a prompt of P leaves the context filled to P; decode contexts ascend).
static void bench_precision(struct run *r, const struct g4_cuda_model *m, int64_t n_ctx) {
    const struct opts *o = r->o;
    size_t free_a = 0, total = 0;
    cudaMemGetInfo(&free_a, &total);
    g4_status st = g4_cuda_session_init(&r->s, m, n_ctx, o->batch);
    if (st != G4_OK) {
        printf("%-5s session of %lld positions, batch %d: %s: %s\n", prec_name(r->prec),
               (long long)n_ctx, o->batch,
               st == G4_ERR_OUT_OF_MEMORY ? "skipped, does not fit the device memory" : "error",
               g4_last_error());
        if (json_out)
            fprintf(json_out, "{\"type\":\"row\",\"model\":\"%s\",\"prec\":\"%s\",\"test\":\"session\","
                              "\"skipped\":\"%s\"}\n", r->model, prec_name(r->prec),
                    st == G4_ERR_OUT_OF_MEMORY ? "out of memory" : "error");
        return;
    }
    size_t free_b = 0;
    cudaMemGetInfo(&free_b, &total);
    r->filled = 0;
    r->prompt_rate = 0;
    int next_prompt = 0;
    for (int c = 0; c < o->n_contexts; c++) {
        while (next_prompt < o->n_prompts && o->prompts[next_prompt] <= o->contexts[c])
            bench_prompt(r, o->prompts[next_prompt++]);
        bench_decode(r, o->contexts[c]);
    }
    while (next_prompt < o->n_prompts) bench_prompt(r, o->prompts[next_prompt++]);
    const size_t kv = g4_cuda_session_kv_bytes(r->s);
    const double used = (double)(r->dev->free0 - free_b);
    printf("%-5s memory: %.2f GiB used on the device (weights %.2f GiB, session %.2f GiB of which "
           "K/V %.2f GiB for %lld positions, batch %d)\n", prec_name(r->prec), used / (1 << 30),
           (double)m->bytes / (1 << 30), (double)(free_a - free_b) / (1 << 30),
           (double)kv / (1 << 30), (long long)n_ctx, o->batch);
    fflush(stdout);
    if (json_out)
        fprintf(json_out, "{\"type\":\"memory\",\"model\":\"%s\",\"prec\":\"%s\",\"used\":%.17g,"
                          "\"weights\":%zu,\"session\":%.17g,\"kv\":%zu,\"n_ctx\":%lld}\n",
                r->model, prec_name(r->prec), used, m->bytes, (double)(free_a - free_b), kv,
                (long long)n_ctx);
    g4_cuda_session_free(r->s);
    r->s = NULL;
}

static void print_traffic(const char *model, const struct g4_config *c, const struct opts *o) {
    const struct traffic w = decode_traffic(c, 0, 1, 2.0);
    char b[6][32];
    printf("  per decode token: weights %s (matrices %s, LM head %s, embedding + PLE rows %s, "
           "router %s, top-%d experts %s) + K/V at the context\n",
           fmt_si(weights_total(&w), "B", b[0], 32), fmt_si(w.matrices, "B", b[1], 32),
           fmt_si(w.lm_head, "B", b[2], 32), fmt_si(w.rows, "B", b[3], 32),
           fmt_si(w.router, "B", b[4], 32), c->enable_moe_block ? c->top_k_experts : 0,
           fmt_si(w.experts, "B", b[5], 32));
    if (json_out)
        fprintf(json_out, "{\"type\":\"traffic\",\"model\":\"%s\",\"matrices\":%.17g,\"lm_head\":%.17g,"
                          "\"rows\":%.17g,\"router\":%.17g,\"experts\":%.17g}\n",
                model, w.matrices, w.lm_head, w.rows, w.router, w.experts);
    (void)o;
}

// --bytes-only: the byte counts and the decode limits they predict.
static void bytes_only(const char *model, const struct g4_config *c, const struct opts *o) {
    printf("\n== %s: %d layers, hidden %d, vocab %d\n", model, c->num_hidden_layers,
           c->hidden_size, c->vocab_size);
    print_traffic(model, c, o);
    printf("prec  context   GB/token  K/V GB");
    for (int k = 0; k < o->n_bytes_only; k++) printf("  limit@%.1fTB/s", o->bytes_only[k] / 1e12);
    printf("   (predictions, not measurements)\n");
    for (int p = 0; p < o->n_precs; p++)
        for (int i = 0; i < o->n_contexts; i++) {
            const double elem = o->precs[p] == G4_CUDA_BF16 ? 2.0 : 4.0;
            const struct traffic t = decode_traffic(c, o->contexts[i] + o->warmup, o->steps, elem);
            const double b = weights_total(&t) + t.kv;
            printf("%-5s %-8lld %9.3f %7.3f", prec_name(o->precs[p]), (long long)o->contexts[i],
                   b / GB, t.kv / GB);
            for (int k = 0; k < o->n_bytes_only; k++) printf("  %14.1f", o->bytes_only[k] / b);
            printf("\n");
            if (json_out)
                fprintf(json_out, "{\"type\":\"prediction\",\"model\":\"%s\",\"prec\":\"%s\","
                                  "\"n\":%lld,\"pos0\":%lld,\"steps\":%d,\"bytes\":%.17g,"
                                  "\"kv_bytes\":%.17g}\n", model, prec_name(o->precs[p]),
                        (long long)o->contexts[i], (long long)(o->contexts[i] + o->warmup),
                        o->steps, b, t.kv);
        }
    for (int i = 0; i < o->n_prompts; i++)
        printf("prompt %-6lld %.2f GFLOP/token\n", (long long)o->prompts[i],
               prompt_flops_per_token(c, o->prompts[i]) / 1e9);
}

static void bench_model(const char *arg, const struct opts *o, struct device_info *dev) {
    struct g4_config *cfg = calloc(1, sizeof *cfg);
    char path[1024], err[512];
    if (!cfg) die("out of memory");
    if (load_config(cfg, arg, path, sizeof path) != G4_OK) {
        printf("\n== %s: error: %s\n", arg, g4_last_error());
        free(cfg);
        return;
    }
    char model_buf[128];
    const char *model = model_name(arg, model_buf, sizeof model_buf);
    if (o->n_bytes_only) {
        bytes_only(model, cfg, o);
        free(cfg);
        return;
    }
    if (budget_left(o) <= 0) {
        printf("\n== %s: skipped: time budget\n", model);
        free(cfg);
        return;
    }
    const int64_t n_ctx_need = max_i64(o->contexts, o->n_contexts) + o->warmup + o->steps;
    int64_t n_ctx = max_i64(o->prompts, o->n_prompts);
    if (n_ctx_need > n_ctx) n_ctx = n_ctx_need;
    printf("\n== %s (%s): %d layers, hidden %d, vocab %d%s | %s | driver %s | %d SMs\n", model,
           path, cfg->num_hidden_layers, cfg->hidden_size, cfg->vocab_size,
           cfg->enable_moe_block ? ", MoE" : "", dev->name, dev->driver, dev->sms);
    print_traffic(model, cfg, o);
    int rows = 0, cols = 0;
    largest_matrix(cfg, &rows, &cols);
    const double gemm = measure_gemm(rows, cols, o->gemm_tokens, o->ceiling_reps, err, sizeof err);
    if (gemm > 0)
        printf("  cuBLAS bf16 GEMM %d tokens x %d x %d (fp32 accumulation): %.1f TFLOP/s\n",
               o->gemm_tokens, rows, cols, gemm / 1e12);
    else printf("  cuBLAS bf16 GEMM %d x %d x %d: error: %s\n", o->gemm_tokens, rows, cols, err);
    if (json_out)
        fprintf(json_out, "{\"type\":\"model\",\"model\":\"%s\",\"config\":\"%s\",\"layers\":%d,"
                          "\"gemm_rows\":%d,\"gemm_cols\":%d,\"gemm_tokens\":%d,\"gemm_tflops\":%.6g}\n",
                model, path, cfg->num_hidden_layers, rows, cols, o->gemm_tokens, gemm / 1e12);
    size_t free_b = 0, total = 0;
    cudaMemGetInfo(&dev->free0, &total);
    struct g4_cuda_model *m = NULL;
    const double t0 = now_s();
    g4_status st = g4_cuda_model_init_random(&m, cfg, o->seed, 0);
    if (st != G4_OK) {
        printf("  model: %s: %s\n",
               st == G4_ERR_OUT_OF_MEMORY ? "skipped, does not fit the device memory" : "error",
               g4_last_error());
        if (json_out)
            fprintf(json_out, "{\"type\":\"row\",\"model\":\"%s\",\"test\":\"model\",\"skipped\":\"%s\"}\n",
                    model, st == G4_ERR_OUT_OF_MEMORY ? "out of memory" : "error");
        free(cfg);
        return;
    }
    cudaMemGetInfo(&free_b, &total);
    printf("  random weights made on the device: %.2f GB in %.2f s\n", (double)m->bytes / GB,
           now_s() - t0);
    printf("prec  test    n       %10s %10s %15s %12s %10s  finite\n", "tok/s", "ms",
           "per token", "limit tok/s", "of limit");
    fflush(stdout);
    struct run r = {0};
    r.o = o, r.cfg = cfg, r.model = model, r.dev = dev, r.gemm_rate = gemm;
    r.toks = malloc(sizeof(int32_t) * (size_t)(n_ctx + 1));
    r.logits = malloc(sizeof(float) * (size_t)cfg->vocab_size);
    if (!r.toks || !r.logits) die("out of memory");
    uint64_t x = 0x9e3779b97f4a7c15ull ^ o->seed;
    for (int64_t i = 0; i <= n_ctx; i++) { // random ids in [2, vocab)
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        r.toks[i] = (int32_t)(2 + x % (uint64_t)(cfg->vocab_size - 2));
    }
    for (int p = 0; p < o->n_precs; p++) {
        r.prec = o->precs[p];
        bench_precision(&r, m, n_ctx);
    }
    free(r.toks), free(r.logits);
    g4_cuda_model_free(m);
    free(cfg);
}

int main(int argc, char **argv) {
    struct opts o;
    parse_args(&o, argc, argv);
    t_start = now_s();
    if (o.json) {
        json_out = fopen(o.json, "a");
        if (!json_out) die("cannot open the --json file");
    }
    struct device_info dev;
    memset(&dev, 0, sizeof dev);
    if (!o.n_bytes_only) {
        struct cudaDeviceProp p;
        char err[512];
        if (cudaGetDeviceProperties(&p, 0) != cudaSuccess) {
            printf("gpu_bench: no CUDA device (%s)\n", cudaGetErrorString(cudaGetLastError()));
            return 1;
        }
        snprintf(dev.name, sizeof dev.name, "%s", p.name);
        dev.sms = p.multiProcessorCount;
        dev.l2 = (size_t)p.l2CacheSize;
        cudaDriverGetVersion(&dev.driver_api);
        cudaRuntimeGetVersion(&dev.runtime_api);
        driver_version(dev.driver, sizeof dev.driver);
        cudaMemGetInfo(&dev.free0, &dev.total);
        printf("gpu_bench: %s | driver %s (CUDA %d.%d, runtime %d.%d) | %d SMs | L2 %zu MiB | "
               "%.1f GiB, %.1f free\n", dev.name, dev.driver, dev.driver_api / 1000,
               dev.driver_api % 1000 / 10, dev.runtime_api / 1000, dev.runtime_api % 1000 / 10,
               dev.sms, dev.l2 / MIB, (double)dev.total / (1 << 30), (double)dev.free0 / (1 << 30));
        if (!measure_bandwidth(&dev, &o, err, sizeof err)) {
            printf("gpu_bench: read bandwidth: %s\n", err);
            return 1;
        }
        printf("read bandwidth: %.3f TB/s (%zu MiB buffer, 16-byte loads, %d blocks x %d threads, "
               "median of %d)\n", dev.bw / 1e12, dev.bw_buffer / MIB, dev.bw_blocks,
               G4_BENCH_READ_THREADS, o.ceiling_reps);
        printf("timing: decode = median of %d one-token steps after %d warm-up steps (%s); "
               "prompt = median of %d runs, chunks of %d tokens\n", o.steps, o.warmup,
               o.greedy ? "greedy: the device's argmax fed back, 8 bytes to the host"
                        : o.logits ? "logits to the host" : "logits not copied",
               o.reps, o.batch);
        fflush(stdout);
        if (json_out)
            fprintf(json_out, "{\"type\":\"device\",\"name\":\"%s\",\"driver\":\"%s\",\"cuda_driver\":%d,"
                              "\"sms\":%d,\"l2\":%zu,\"total\":%zu,\"bw\":%.6g,\"bw_buffer\":%zu,"
                              "\"steps\":%d,\"warmup\":%d,\"reps\":%d,\"batch\":%d,\"logits\":%s,\"greedy\":%s}\n",
                    dev.name, dev.driver, dev.driver_api, dev.sms, dev.l2, dev.total, dev.bw,
                    dev.bw_buffer, o.steps, o.warmup, o.reps, o.batch, o.logits ? "true" : "false",
                    o.greedy ? "true" : "false");
    }
    for (int i = 0; i < o.n_models; i++) bench_model(o.models[i], &o, &dev);
    if (json_out) fclose(json_out);
    return 0;
}
