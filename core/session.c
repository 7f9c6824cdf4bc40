// Session lifetime and stepping; see session.h. The backend does the math; this file owns
// validation, micro-batching and the token history.
#include "session.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

enum { DEFAULT_N_BATCH = 128 };

g4_status g4_session_init(struct g4_session **out, struct g4_model *m, int64_t n_ctx) {
    *out = NULL;
    if (n_ctx <= 0) n_ctx = m->n_ctx;
    if (n_ctx > m->cfg.max_position_embeddings)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "n_ctx %lld exceeds max_position_embeddings %d",
                       (long long)n_ctx, m->cfg.max_position_embeddings);
    struct g4_session *s;
    G4_TRY(g4_calloc((void **)&s, 1, sizeof *s, "session"));
    g4_model_retain(m);
    s->model = m;
    s->n_ctx = n_ctx;
    const int nb = m->backend->n_batch > 0 ? m->backend->n_batch : DEFAULT_N_BATCH;
    s->n_batch = n_ctx < nb ? (int)n_ctx : nb;
    atomic_init(&s->cancel_requests, 0);
    atomic_init(&s->busy, false);
    s->finish_reason = -1;
    // Default precision per device (abi/gemma4.h): FP32 on the CPU, BF16 on CUDA.
    s->bf16 = m->device == G4_DEVICE_CUDA;
    // K/V cache (fp32 on the CPU, bf16 on CUDA: the larger is reserved) before any allocation.
    const uint64_t kv_bytes = g4_config_kv_bytes(&m->cfg, n_ctx, sizeof(float));
    g4_status st = g4_budget_reserve(kv_bytes, "session KV cache");
    if (st == G4_OK) s->budget_bytes = kv_bytes;
    if (st == G4_OK) st = g4_calloc((void **)&s->history, (size_t)n_ctx, sizeof(int32_t), "token history");
    if (st == G4_OK)
        st = g4_calloc((void **)&s->logits, (size_t)m->cfg.vocab_size, sizeof(float), "logits");
    if (st == G4_OK) st = g4_sampler_init(&s->sampler, m->cfg.vocab_size);
    if (st == G4_OK) st = g4_session_reset_sampling(s);
    if (st == G4_OK) st = m->backend->session_init(s);
    if (st != G4_OK) {
        g4_session_free(s);
        return st;
    }
    *out = s;
    return G4_OK;
}

void g4_session_free(struct g4_session *s) {
    if (!s) return;
    if (s->model) {
        s->model->backend->session_free(s);
        g4_model_release(s->model);
    }
    g4_budget_release(s->budget_bytes);
    g4_session_clear_stops(s);
    g4_sampler_free(&s->sampler);
    free(s->logits);
    free(s->history);
    free(s->chat_result);
    free(s->forced);
    free(s);
}

g4_status g4_session_reset_sampling(struct g4_session *s) {
    const struct g4_generation_config *g = &s->model->gen;
    struct g4_sampler *sp = &s->sampler;
    // transformers: without do_sample, generate() is greedy whatever the temperature says.
    if (!g->do_sample) return g4_sampler_set(sp, 0.0f, 0, 1.0f, 0.0f, sp->repeat_penalty, sp->repeat_last_n);
    return g4_sampler_set(sp, g->temperature, g->top_k, g->top_p, 0.0f, sp->repeat_penalty,
                          sp->repeat_last_n);
}

void g4_session_cancel(struct g4_session *s) { atomic_fetch_add(&s->cancel_requests, 1); }

void g4_session_clear_cancel(struct g4_session *s) {
    s->cancel_answered = atomic_load(&s->cancel_requests);
}

bool g4_session_cancelled(struct g4_session *s) {
    const uint_fast64_t n = atomic_load(&s->cancel_requests);
    if (n == s->cancel_answered) return false;
    s->cancel_answered = n;
    return true;
}

// What g4_sampler_sample does at temperature 0 without a repetition penalty: the argmax.
static bool greedy_sampler(const struct g4_sampler *sp) {
    return sp->temperature <= 0.0f && sp->repeat_penalty == 1.0f;
}

g4_status g4_session_step(struct g4_session *s, const int32_t *tokens, int64_t n, float *logits,
                          bool all_logits) {
    const struct g4_config *c = &s->model->cfg;
    const int32_t V = c->vocab_size;
    // With per-layer embeddings a token must also have a row in that (possibly smaller) table.
    const int32_t V_in = c->hidden_size_per_layer_input && c->vocab_size_per_layer_input < V
                             ? c->vocab_size_per_layer_input
                             : V;
    if (n < 1) return g4_fail(G4_ERR_INVALID_ARGUMENT, "step: n_tokens %lld must be >= 1", (long long)n);
    for (int64_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= V_in)
            return g4_fail(G4_ERR_INVALID_TOKEN, "step: token %d at index %lld is outside [0, %d)",
                           tokens[i], (long long)i, V_in);
    if (n > s->n_ctx - s->n_past)
        return g4_fail(G4_ERR_CONTEXT_FULL,
                       "step: %lld tokens at position %lld exceed the context of %lld",
                       (long long)n, (long long)s->n_past, (long long)s->n_ctx);
    // A request pending at entry cancels before anything changes (logits kept).
    if (g4_session_cancelled(s))
        return g4_fail(G4_ERR_CANCELLED, "step: cancelled before it ran (the request came before "
                                         "or as the step began)");
    s->has_logits = false;
    s->logits_on_device = false;
    const struct g4_backend *be = s->model->backend;
    // Greedy decoding needs one id per step, not the logits: a backend that can pick it (and
    // check the logits for NaN/Inf) on the device leaves them there (kernels/README.md).
    const bool device_pick = !logits && be->forward_greedy && greedy_sampler(&s->sampler);
    int32_t next = -1, nonfinite = -1;
    for (int64_t done = 0; done < n;) {
        if (done && g4_session_cancelled(s))
            return g4_fail(G4_ERR_CANCELLED, "step: cancelled after %lld of %lld tokens",
                           (long long)done, (long long)n);
        int chunk = n - done < s->n_batch ? (int)(n - done) : s->n_batch;
        bool last = done + chunk == n;
        float *lg = NULL;
        if (logits && all_logits) lg = logits + (size_t)done * V;
        else if (last) lg = s->logits;
        g4_status st = last && device_pick
                           ? be->forward_greedy(s, tokens + done, chunk, &next, &nonfinite)
                           : be->forward(s, tokens + done, chunk, lg, all_logits && logits);
        // A failed chunk commits nothing (rings are written only at its end), so the session
        // stays valid at the end of the previous chunk.
        if (st != G4_OK) return st;
        memmove(s->history + s->n_past, tokens + done, (size_t)chunk * sizeof(int32_t));
        s->n_past += chunk;
        s->n_evaluated += (uint64_t)chunk;
        done += chunk;
    }
    if (logits && all_logits)
        memcpy(s->logits, logits + (size_t)(n - 1) * V, (size_t)V * sizeof(float));
    // Matrices are not scanned at load (that would read every page of the checkpoint), so a
    // NaN/Inf weight, or an overflow, surfaces here: an error rather than a silent wrong answer.
    // On the device path the backend made the same scan (the lowest non-finite id).
    if (!device_pick)
        for (int32_t i = 0; i < V && nonfinite < 0; i++)
            if (!isfinite(s->logits[i])) nonfinite = i;
    if (nonfinite >= 0)
        return g4_fail(G4_ERR_FORMAT,
                       "step: non-finite logit (id %d) at position %lld: the checkpoint holds "
                       "NaN/Inf weights or the activations overflowed; reset the session",
                       nonfinite, (long long)s->n_past - 1);
    if (logits && !all_logits) memcpy(logits, s->logits, (size_t)V * sizeof(float));
    s->logits_on_device = device_pick;
    s->greedy_next = next;
    s->has_logits = true;
    return G4_OK;
}

g4_status g4_session_host_logits(struct g4_session *s) {
    if (!s->has_logits)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "no logits yet (step the session first)");
    if (!s->logits_on_device) return G4_OK;
    G4_TRY(s->model->backend->fetch_logits(s, s->logits));
    s->logits_on_device = false;
    return G4_OK;
}

g4_status g4_session_sample(struct g4_session *s, int32_t *token) {
    if (!s->has_logits)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "no logits yet (step the session first)");
    if (s->logits_on_device && greedy_sampler(&s->sampler)) {
        *token = s->greedy_next;
        return G4_OK;
    }
    G4_TRY(g4_session_host_logits(s));
    *token = g4_sampler_sample(&s->sampler, s->logits, s->history, (size_t)s->n_past);
    return G4_OK;
}

void g4_session_reset(struct g4_session *s) {
    s->n_past = 0;
    s->has_logits = false;
    s->logits_on_device = false;
}

g4_status g4_session_truncate(struct g4_session *s, int64_t n_keep) {
    if (n_keep < 0 || n_keep > s->n_past)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "truncate: n_keep %lld outside [0, %lld]",
                       (long long)n_keep, (long long)s->n_past);
    // Rings hold positions [n_past - window, n_past); the query at n_keep needs
    // [n_keep - window + 1, n_keep), which they still hold iff n_keep >= n_past - 1.
    bool rings = false;
    const struct g4_config *c = &s->model->cfg;
    for (int i = 0; i < c->n_kv_slots; i++)
        rings |= c->slot[i].is_sliding && c->slot[i].window < s->n_ctx;
    if (g4_session_cancelled(s))
        return g4_fail(G4_ERR_CANCELLED, "truncate: cancelled before it ran");
    int64_t old = s->n_past;
    s->has_logits = false;
    s->logits_on_device = false;
    if (!rings || n_keep >= old - 1 || n_keep == 0) {
        s->n_past = n_keep;
        return G4_OK;
    }
    // Re-run the kept tokens from the start; history[0, n_keep) is unchanged by the re-run.
    s->n_past = 0;
    return g4_session_step(s, s->history, n_keep, NULL, false);
}

g4_status g4_session_add_stop(struct g4_session *s, const char *stop) {
    if (s->n_stops == G4_MAX_STOPS)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "add_stop: at most %d stop strings", G4_MAX_STOPS);
    if (!stop[0]) return g4_fail(G4_ERR_INVALID_ARGUMENT, "add_stop: empty stop string");
    char *copy = strdup(stop);
    if (!copy) return g4_fail(G4_ERR_OUT_OF_MEMORY, "add_stop");
    s->stops[s->n_stops++] = copy;
    return G4_OK;
}

void g4_session_clear_stops(struct g4_session *s) {
    for (int i = 0; i < s->n_stops; i++) free(s->stops[i]);
    s->n_stops = 0;
}
