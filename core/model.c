// Model loading and lifetime; see model.h. Order: config -> checkpoint -> weights -> tokenizer
// -> backend, each validated before the next, with one cleanup path.
#include "model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpu.h"
#include "gguf_config.h"
#include "gguf_weights.h"
#include "log.h"
#include "mem.h"
#include "tokenizer_gguf.h"

static void model_destroy(struct g4_model *m) {
    if (!m) return;
    if (m->backend && m->backend->model_free) m->backend->model_free(m);
    g4_tokenizer_free(m->tok);
    g4_budget_release(m->budget_bytes);
    g4_weights_free(&m->w);
    g4_safetensors_free(&m->st);
    g4_gguf_free(&m->gguf); // after the table, whose data points into its mapping
    free(m);
}

// A path names a GGUF checkpoint when it is a regular file whose name ends in .gguf.
static bool is_gguf_file(const char *path, const struct stat *sb) {
    size_t n = strlen(path);
    return S_ISREG(sb->st_mode) && n > 5 && strcasecmp(path + n - 5, ".gguf") == 0;
}

g4_status g4_model_load(struct g4_model **out, const char *dir, enum g4_device device,
                        int device_index, int64_t n_ctx, int n_threads) {
    return g4_model_load_flags(out, dir, device, device_index, n_ctx, n_threads, 0);
}

g4_status g4_model_load_flags(struct g4_model **out, const char *dir, enum g4_device device,
                              int device_index, int64_t n_ctx, int n_threads, unsigned flags) {
    *out = NULL;
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return g4_fail(G4_ERR_IO, "%s: %s", dir, errno == ENOENT ? "does not exist" : strerror(errno));
    const bool gguf = is_gguf_file(dir, &sb);
    if (!gguf && !S_ISDIR(sb.st_mode))
        return g4_fail(G4_ERR_IO, "%s: not a directory (a model directory or a .gguf file)", dir);
    g4_log(G4_LOG_INFO, "load %s: reading %s", dir, gguf ? "the GGUF metadata" : "config.json");
    struct g4_model *m;
    G4_TRY(g4_calloc((void **)&m, 1, sizeof *m, "model"));
    g4_status st;
    if (gguf) {
        // One file: metadata -> config, tensors -> the binder's table (translated names).
        if ((st = g4_gguf_load(&m->gguf, dir, flags & G4_LOAD_IN_MEMORY)) != G4_OK) goto fail;
        if ((st = g4_gguf_config_load(&m->cfg, &m->gguf, dir)) != G4_OK) goto fail;
    } else if ((st = g4_config_load(&m->cfg, dir)) != G4_OK) {
        goto fail;
    }
    if (n_ctx <= 0) n_ctx = m->cfg.max_position_embeddings < 8192 ? m->cfg.max_position_embeddings : 8192;
    if (n_ctx > m->cfg.max_position_embeddings) {
        st = g4_fail(G4_ERR_INVALID_ARGUMENT, "n_ctx %lld exceeds max_position_embeddings %d",
                     (long long)n_ctx, m->cfg.max_position_embeddings);
        goto fail;
    }
    m->n_ctx = n_ctx;
    if (n_threads <= 0) n_threads = g4_cpu_default_threads();
    if (n_threads > 256) n_threads = 256;
    m->n_threads = n_threads;
    m->device = device;
    m->device_index = device_index;
    g4_log(G4_LOG_INFO, "load %s: %s%s, %d layers, hidden %d, vocab %d; checking the weights", dir,
           m->cfg.variant, m->cfg.is_multimodal ? " (text part of a multimodal checkpoint)" : "",
           m->cfg.num_hidden_layers, m->cfg.hidden_size, m->cfg.vocab_size);
    if (gguf) {
        if ((st = g4_gguf_weights_table(&m->st, &m->gguf, dir)) != G4_OK ||
            (st = g4_gguf_weights_bind(&m->w, &m->cfg, &m->st, dir)) != G4_OK)
            goto fail;
    } else if ((st = g4_safetensors_load(&m->st, dir, flags & G4_LOAD_IN_MEMORY)) != G4_OK ||
               (st = g4_weights_bind(&m->w, &m->cfg, &m->st, dir)) != G4_OK) {
        goto fail;
    }
    g4_log(G4_LOG_INFO, "load %s: weights: %.1f MB", dir, m->w.n_bytes / 1e6);
    // The text model's weights count against the budget (mapped, and resident once used).
    if ((st = g4_budget_reserve(m->w.n_bytes, "model weights")) != G4_OK) goto fail;
    m->budget_bytes = m->w.n_bytes;

    char path[4096];
    if (gguf) {
        // The tokenizer from the GGUF metadata (tokenizer.ggml.*), encoding as llama.cpp does;
        // none (m->tok NULL: text functions return G4_ERR_NO_TOKENIZER) without tokenizer.ggml.model.
        // Sampling defaults: those of a directory without generation_config.json (greedy).
        snprintf(path, sizeof path, "%s", dir);
        if ((st = g4_tokenizer_gguf_load(&m->tok, &m->gguf, dir)) != G4_OK) goto fail;
        m->gen = (struct g4_generation_config){false, false, 1.0f, 50, 1.0f};
    } else {
        snprintf(path, sizeof path, "%s/tokenizer.json", dir);
        if (access(path, F_OK) == 0 && (st = g4_tokenizer_load(&m->tok, path)) != G4_OK) goto fail;
        if ((st = g4_generation_config_load(&m->gen, dir)) != G4_OK) goto fail;
    }
    if (m->tok && g4_tokenizer_vocab_size(m->tok) > m->cfg.vocab_size) {
        st = g4_fail(G4_ERR_FORMAT, "%s: tokenizer has %d tokens, model vocab_size is %d", path,
                     g4_tokenizer_vocab_size(m->tok), m->cfg.vocab_size);
        goto fail;
    }

    if (device == G4_DEVICE_CPU) {
        m->backend = &g4_backend_cpu;
    } else {
#ifdef G4_WITH_CUDA
        extern const struct g4_backend g4_backend_cuda;
        m->backend = &g4_backend_cuda;
#else
        st = g4_fail(G4_ERR_UNSUPPORTED, "this gemma4 build has no CUDA engine");
        goto fail;
#endif
    }
    if (m->tok)
        g4_log(G4_LOG_INFO, "load %s: tokenizer: %d tokens", dir, g4_tokenizer_vocab_size(m->tok));
    else
        g4_log(G4_LOG_WARN, "load %s: no tokenizer: text functions are unavailable", dir);
    if (device == G4_DEVICE_CPU)
        g4_log(G4_LOG_INFO, "load %s: CPU engine, %d threads", dir, n_threads);
    else
        g4_log(G4_LOG_INFO, "load %s: CUDA engine on device %d: uploading the weights", dir, device_index);
    if (m->backend->model_init && (st = m->backend->model_init(m)) != G4_OK) goto fail;
    atomic_init(&m->refs, 1);
    *out = m;
    return G4_OK;
fail:
    model_destroy(m);
    return st;
}

int g4_model_device_index(const struct g4_model *m) { return m->device_index; }

void g4_model_retain(struct g4_model *m) { atomic_fetch_add(&m->refs, 1); }

void g4_model_release(struct g4_model *m) {
    if (m && atomic_fetch_sub(&m->refs, 1) == 1) model_destroy(m);
}
