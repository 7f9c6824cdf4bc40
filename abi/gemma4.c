// The public ABI: the only file with exported symbols. Argument checks, then calls into core/;
// statuses and thread-local messages come back unchanged. A public handle is a small tagged
// struct g4_handle naming the core struct (core/handle.h): every entry point checks the tag after
// the NULL check, and every call that runs or changes a session marks it busy for its duration.
#include "gemma4.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "chat.h"
#include "chat_stream.h"
#include "generate.h"
#include "handle.h"
#include "log.h"
#include "mem.h"
#include "model.h"
#include "session.h"
#include "utf8.h"

#define HANDLE(p) ((struct g4_handle *)(p))
#define MODEL(p) ((struct g4_model *)HANDLE(p)->obj)
#define SESSION(p) ((struct g4_session *)HANDLE(p)->obj)
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) return g4_fail(G4_ERR_INVALID_ARGUMENT, __VA_ARGS__);                         \
    } while (0)

// Text inputs must be well-formed UTF-8 (abi/gemma4.h, "Text"): INVALID_ARGUMENT naming the
// argument, the byte offset and the byte. s may be NULL (other checks report that).
static g4_status check_utf8(const char *s, size_t n, const char *fn, const char *what,
                            long index) {
    size_t bad;
    if (!s || g4_utf8_valid(s, n, &bad)) return G4_OK;
    char name[96];
    if (index >= 0) snprintf(name, sizeof name, "%s[%ld]", what, index);
    else snprintf(name, sizeof name, "%s", what);
    return g4_fail(G4_ERR_INVALID_ARGUMENT,
                   "%s: %s is not valid UTF-8: byte 0x%02x at offset %zu starts no UTF-8 sequence",
                   fn, name, (unsigned char)s[bad], bad);
}
#define CHECK_UTF8(s, fn, what) G4_TRY(check_utf8(s, (s) ? strlen(s) : 0, fn, what, -1))

static g4_status check_messages(const char *const *roles, const char *const *contents, size_t n,
                                const char *fn) {
    for (size_t i = 0; i < n; i++) {
        G4_TRY(check_utf8(roles[i], roles[i] ? strlen(roles[i]) : 0, fn, "roles", (long)i));
        G4_TRY(check_utf8(contents[i], contents[i] ? strlen(contents[i]) : 0, fn, "contents", (long)i));
    }
    return G4_OK;
}

// Every public call starts here: the message describes this call's failure, not an older one.
#define BEGIN() g4_clear_error()

// Tag checks for non-NULL handles (see core/handle.h for what they can and cannot catch).
static bool model_ok(const gemma4_model *m) { return g4_handle_get(HANDLE(m), G4_TAG_MODEL); }
static bool session_ok(const gemma4_session *s) { return g4_handle_get(HANDLE(s), G4_TAG_SESSION); }
#define CHECK_MODEL(m, fn) CHECK(model_ok(m), "%s: invalid or freed model handle", fn)
#define CHECK_SESSION(s, fn) CHECK(session_ok(s), "%s: invalid or freed session handle", fn)

// A session runs one call at a time: ENTER marks it busy (GEMMA4_ERR_BUSY if it already is, e.g.
// when a token callback calls back into its own session), LEAVE clears the mark and passes the
// status through. Every return between the two must go through LEAVE.
static g4_status busy(const char *fn) {
    return g4_fail(G4_ERR_BUSY,
                   "%s: the session is busy with another call (called from its own token "
                   "callback, or from two threads at once)", fn);
}
#define ENTER(s, fn)                                                                               \
    do {                                                                                           \
        if (atomic_exchange(&(s)->busy, true)) return busy(fn);                                    \
    } while (0)
static g4_status leave(struct g4_session *s, g4_status st) { // st is evaluated before the call
    atomic_store(&s->busy, false);
    return st;
}
#define LEAVE(s, st) leave(s, st)

GEMMA4_API const char *gemma4_version(void) { return GEMMA4_VERSION_STRING; }
GEMMA4_API int32_t gemma4_abi_version(void) { return GEMMA4_ABI_VERSION; }
GEMMA4_API const char *gemma4_last_error(void) { return g4_last_error(); }
GEMMA4_API const char *gemma4_status_name(gemma4_status status) {
    return g4_status_name((g4_status)status);
}

GEMMA4_API gemma4_status gemma4_set_log_callback(gemma4_log_fn fn, void *user_data) {
    BEGIN();
    g4_log_set((g4_log_fn)fn, user_data);
    return GEMMA4_OK;
}

GEMMA4_API gemma4_status gemma4_set_memory_budget(uint64_t bytes) {
    BEGIN();
    g4_budget_set(bytes);
    return GEMMA4_OK;
}

GEMMA4_API gemma4_status gemma4_load(const char *model_dir, int32_t device, int32_t device_index,
                                     int64_t n_ctx, int32_t n_threads, gemma4_model **out) {
    return gemma4_load_ex(model_dir, device, device_index, n_ctx, n_threads, 0, out);
}

GEMMA4_API gemma4_status gemma4_load_ex(const char *model_dir, int32_t device,
                                        int32_t device_index, int64_t n_ctx, int32_t n_threads,
                                        uint32_t flags, gemma4_model **out) {
    BEGIN();
    CHECK(out, "gemma4_load: out is NULL");
    *out = NULL;
    CHECK(model_dir, "gemma4_load: model_dir is NULL");
    CHECK(device == GEMMA4_DEVICE_CPU || device == GEMMA4_DEVICE_CUDA,
          "gemma4_load: device %d is neither GEMMA4_DEVICE_CPU nor GEMMA4_DEVICE_CUDA", device);
    CHECK(device_index >= 0, "gemma4_load: device_index %d < 0", device_index);
    CHECK(!(flags & ~(uint32_t)GEMMA4_LOAD_IN_MEMORY), "gemma4_load: unknown flags 0x%x", flags);
    struct g4_model *m;
    G4_TRY(g4_model_load_flags(&m, model_dir, (enum g4_device)device, device_index, n_ctx,
                               n_threads, flags & GEMMA4_LOAD_IN_MEMORY ? G4_LOAD_IN_MEMORY : 0));
    g4_log(G4_LOG_INFO, "loaded %s: %s, %d layers, %zu weight bytes", model_dir, m->cfg.variant,
           m->cfg.num_hidden_layers, m->w.n_bytes);
    struct g4_handle *h;
    g4_status st = g4_handle_new(G4_TAG_MODEL, m, &h);
    if (st != G4_OK) {
        g4_model_release(m);
        return st;
    }
    *out = (gemma4_model *)h;
    return GEMMA4_OK;
}

GEMMA4_API void gemma4_model_free(gemma4_model *model) {
    if (!model) return;
    if (!model_ok(model)) {
        g4_fail(G4_ERR_INVALID_ARGUMENT,
                "gemma4_model_free: invalid or freed model handle (ignored)");
        return;
    }
    // The caller's reference and handle are gone, even while sessions keep the model.
    struct g4_model *m = MODEL(model);
    g4_handle_retire(HANDLE(model));
    g4_model_release(m);
}

GEMMA4_API gemma4_status gemma4_model_info(const gemma4_model *model, int32_t key, int64_t *value) {
    BEGIN();
    CHECK(model && value, "gemma4_model_info: NULL argument");
    CHECK_MODEL(model, "gemma4_model_info");
    const struct g4_model *m = MODEL(model);
    const struct g4_config *c = &m->cfg;
    switch (key) {
    case GEMMA4_INFO_VOCAB_SIZE: *value = c->vocab_size; break;
    case GEMMA4_INFO_CONTEXT_LENGTH: *value = c->max_position_embeddings; break;
    case GEMMA4_INFO_N_LAYERS: *value = c->num_hidden_layers; break;
    case GEMMA4_INFO_BOS_ID: *value = c->bos_token_id; break;
    case GEMMA4_INFO_EOS_ID: *value = c->eos_token_id[0]; break;
    case GEMMA4_INFO_WEIGHT_BYTES: *value = (int64_t)m->w.n_bytes; break;
    case GEMMA4_INFO_HIDDEN_SIZE: *value = c->hidden_size; break;
    case GEMMA4_INFO_N_CTX: *value = m->n_ctx; break;
    case GEMMA4_INFO_END_OF_TURN_ID:
        *value = m->tok ? g4_tokenizer_find(m->tok, g4_chat_end_of_turn((enum g4_chat_format)m->cfg.chat_format))
                        : -1;
        break;
    case GEMMA4_INFO_DEVICE: *value = m->device; break;
    case GEMMA4_INFO_N_THREADS: *value = m->n_threads; break;
    default: return g4_fail(G4_ERR_INVALID_ARGUMENT, "gemma4_model_info: unknown key %d", key);
    }
    return GEMMA4_OK;
}

// Copies a NUL-terminated string out under the buffer convention.
static g4_status copy_out(const char *src, char *buf, size_t capacity, size_t *n_out) {
    size_t n = strlen(src);
    *n_out = n;
    if (!buf) return G4_OK;
    if (capacity < n)
        return g4_fail(G4_ERR_BUFFER_TOO_SMALL, "buffer of %zu bytes, %zu needed", capacity, n);
    memcpy(buf, src, n);
    if (capacity > n) buf[n] = '\0';
    return G4_OK;
}

GEMMA4_API gemma4_status gemma4_model_variant(const gemma4_model *model, char *buf,
                                              size_t capacity, size_t *n_out) {
    BEGIN();
    CHECK(model && n_out, "gemma4_model_variant: NULL argument");
    CHECK_MODEL(model, "gemma4_model_variant");
    return copy_out(MODEL(model)->cfg.variant, buf, capacity, n_out);
}

static g4_status need_tokenizer(const gemma4_model *model, const char *fn) {
    if (!model) return g4_fail(G4_ERR_INVALID_ARGUMENT, "%s: model is NULL", fn);
    CHECK_MODEL(model, fn);
    if (!MODEL(model)->tok)
        return g4_fail(G4_ERR_NO_TOKENIZER, "%s: the model directory has no tokenizer.json", fn);
    return G4_OK;
}

GEMMA4_API gemma4_status gemma4_tokenize(const gemma4_model *model, const char *text, size_t len,
                                         int32_t flags, int32_t *ids, size_t capacity,
                                         size_t *n_out) {
    BEGIN();
    G4_TRY(need_tokenizer(model, "gemma4_tokenize"));
    CHECK(n_out && (text || len == 0), "gemma4_tokenize: NULL argument");
    G4_TRY(check_utf8(text, len, "gemma4_tokenize", "text", -1));
    CHECK(!(flags & ~GEMMA4_TOKENIZE_ADD_BOS), "gemma4_tokenize: unknown flags 0x%x", flags);
    return g4_tokenizer_encode(MODEL(model)->tok, text ? text : "", len,
                               flags & GEMMA4_TOKENIZE_ADD_BOS, ids, capacity, n_out);
}

GEMMA4_API gemma4_status gemma4_detokenize(const gemma4_model *model, const int32_t *ids,
                                           size_t n_ids, int32_t flags, char *buf,
                                           size_t capacity, size_t *n_out) {
    BEGIN();
    G4_TRY(need_tokenizer(model, "gemma4_detokenize"));
    CHECK(n_out && (ids || n_ids == 0), "gemma4_detokenize: NULL argument");
    CHECK(!(flags & ~GEMMA4_DETOKENIZE_SKIP_SPECIAL), "gemma4_detokenize: unknown flags 0x%x", flags);
    return g4_tokenizer_decode(MODEL(model)->tok, ids, n_ids,
                               flags & GEMMA4_DETOKENIZE_SKIP_SPECIAL, buf, capacity, n_out);
}

GEMMA4_API gemma4_status gemma4_token_piece(const gemma4_model *model, int32_t token, char *buf,
                                            size_t capacity, size_t *n_out) {
    BEGIN();
    G4_TRY(need_tokenizer(model, "gemma4_token_piece"));
    CHECK(n_out, "gemma4_token_piece: n_out is NULL");
    return g4_tokenizer_piece(MODEL(model)->tok, token, buf, capacity, n_out);
}

GEMMA4_API gemma4_status gemma4_chat_apply(const gemma4_model *model, const char *const *roles,
                                           const char *const *contents, size_t n_messages,
                                           int32_t add_generation_prompt, char *buf,
                                           size_t capacity, size_t *n_out) {
    BEGIN();
    CHECK(n_out && roles && contents, "gemma4_chat_apply: NULL argument");
    G4_TRY(check_messages(roles, contents, n_messages, "gemma4_chat_apply"));
    if (model) CHECK_MODEL(model, "gemma4_chat_apply");
    int gen = 0;
    if (add_generation_prompt) gen = model ? MODEL(model)->cfg.chat_gen_prompt : G4_CHAT_GEN_PROMPT;
    if (!model) return g4_chat_render(roles, contents, n_messages, gen, buf, capacity, n_out);
    *n_out = 0;
    cJSON *msgs;
    G4_TRY(g4_chat_from_arrays(roles, contents, n_messages, &msgs));
    g4_status st = g4_chat_render_text((enum g4_chat_format)MODEL(model)->cfg.chat_format, msgs,
                                       NULL, gen, buf, capacity, n_out);
    cJSON_Delete(msgs);
    return st;
}

GEMMA4_API gemma4_status gemma4_session_new(gemma4_model *model, int64_t n_ctx,
                                            gemma4_session **out) {
    BEGIN();
    CHECK(out, "gemma4_session_new: out is NULL");
    *out = NULL;
    CHECK(model, "gemma4_session_new: model is NULL");
    CHECK_MODEL(model, "gemma4_session_new");
    struct g4_session *s;
    G4_TRY(g4_session_init(&s, MODEL(model), n_ctx));
    struct g4_handle *h;
    g4_status st = g4_handle_new(G4_TAG_SESSION, s, &h);
    if (st != G4_OK) {
        g4_session_free(s);
        return st;
    }
    *out = (gemma4_session *)h;
    return GEMMA4_OK;
}

GEMMA4_API void gemma4_session_free(gemma4_session *session) {
    if (!session) return;
    if (!session_ok(session)) {
        g4_fail(G4_ERR_INVALID_ARGUMENT,
                "gemma4_session_free: invalid or freed session handle (ignored)");
        return;
    }
    struct g4_session *s = SESSION(session);
    if (atomic_exchange(&s->busy, true)) {
        busy("gemma4_session_free (not freed)");
        return;
    }
    g4_handle_retire(HANDLE(session));
    g4_session_free(s);
}

GEMMA4_API gemma4_status gemma4_session_step(gemma4_session *session, const int32_t *tokens,
                                             size_t n_tokens, float *logits, size_t capacity,
                                             size_t *n_logits) {
    BEGIN();
    CHECK(session && tokens, "gemma4_session_step: NULL argument");
    CHECK_SESSION(session, "gemma4_session_step");
    CHECK(n_tokens > 0, "gemma4_session_step: n_tokens is 0");
    struct g4_session *s = SESSION(session);
    const size_t V = (size_t)s->model->cfg.vocab_size;
    if (n_logits) *n_logits = V;
    if (logits && capacity < V)
        return g4_fail(G4_ERR_BUFFER_TOO_SMALL,
                       "gemma4_session_step: logits buffer of %zu floats, vocab size is %zu",
                       capacity, V);
    if (n_tokens > (size_t)INT64_MAX / 2)
        return g4_fail(G4_ERR_CONTEXT_FULL, "gemma4_session_step: %zu tokens", n_tokens);
    ENTER(s, "gemma4_session_step");
    return LEAVE(s, g4_session_step(s, tokens, (int64_t)n_tokens, logits, false));
}

GEMMA4_API gemma4_status gemma4_kv_reset(gemma4_session *session) {
    BEGIN();
    CHECK(session, "gemma4_kv_reset: session is NULL");
    CHECK_SESSION(session, "gemma4_kv_reset");
    struct g4_session *s = SESSION(session);
    ENTER(s, "gemma4_kv_reset");
    g4_session_reset(s);
    return LEAVE(s, GEMMA4_OK);
}

GEMMA4_API gemma4_status gemma4_session_truncate(gemma4_session *session, int64_t n_keep) {
    BEGIN();
    CHECK(session, "gemma4_session_truncate: session is NULL");
    CHECK_SESSION(session, "gemma4_session_truncate");
    struct g4_session *s = SESSION(session);
    ENTER(s, "gemma4_session_truncate");
    return LEAVE(s, g4_session_truncate(s, n_keep));
}

GEMMA4_API gemma4_status gemma4_session_info(const gemma4_session *session, int32_t key,
                                             int64_t *value) {
    BEGIN();
    CHECK(session && value, "gemma4_session_info: NULL argument");
    CHECK_SESSION(session, "gemma4_session_info");
    const struct g4_session *s = SESSION(session);
    switch (key) {
    case GEMMA4_SESSION_N_PAST: *value = s->n_past; break;
    case GEMMA4_SESSION_N_CTX: *value = s->n_ctx; break;
    case GEMMA4_SESSION_KV_BYTES: *value = (int64_t)s->model->backend->kv_bytes(s); break;
    case GEMMA4_SESSION_N_EVALUATED: *value = (int64_t)s->n_evaluated; break;
    case GEMMA4_SESSION_LAST_PROMPT_TOKENS: *value = s->last_prompt_tokens; break;
    case GEMMA4_SESSION_LAST_GEN_TOKENS: *value = s->last_gen_tokens; break;
    case GEMMA4_SESSION_LAST_PROMPT_US: *value = s->last_prompt_us; break;
    case GEMMA4_SESSION_LAST_GEN_US: *value = s->last_gen_us; break;
    case GEMMA4_SESSION_FINISH_REASON: *value = s->finish_reason; break;
    case GEMMA4_SESSION_USAGE_PROMPT_TOKENS: *value = s->usage_prompt; break;
    case GEMMA4_SESSION_USAGE_CACHED_TOKENS: *value = s->usage_cached; break;
    case GEMMA4_SESSION_USAGE_COMPLETION_TOKENS: *value = s->usage_completion; break;
    case GEMMA4_SESSION_PRECISION:
        *value = s->bf16 ? GEMMA4_PRECISION_BF16 : GEMMA4_PRECISION_FP32;
        break;
    default: return g4_fail(G4_ERR_INVALID_ARGUMENT, "gemma4_session_info: unknown key %d", key);
    }
    return GEMMA4_OK;
}

GEMMA4_API gemma4_status gemma4_session_set_precision(gemma4_session *session,
                                                      int32_t precision) {
    BEGIN();
    CHECK(session, "gemma4_session_set_precision: session is NULL");
    CHECK_SESSION(session, "gemma4_session_set_precision");
    if (precision != GEMMA4_PRECISION_FP32 && precision != GEMMA4_PRECISION_BF16)
        return g4_fail(G4_ERR_INVALID_ARGUMENT,
                       "gemma4_session_set_precision: unknown precision %d (GEMMA4_PRECISION_FP32 "
                       "0 or GEMMA4_PRECISION_BF16 1)", precision);
    struct g4_session *s = SESSION(session);
    ENTER(s, "gemma4_session_set_precision");
    s->bf16 = precision == GEMMA4_PRECISION_BF16;
    return LEAVE(s, GEMMA4_OK);
}

GEMMA4_API gemma4_status gemma4_session_set_greedy(gemma4_session *session) {
    BEGIN();
    CHECK(session, "gemma4_session_set_greedy: session is NULL");
    CHECK_SESSION(session, "gemma4_session_set_greedy");
    struct g4_session *s = SESSION(session);
    ENTER(s, "gemma4_session_set_greedy");
    struct g4_sampler *sp = &s->sampler;
    return LEAVE(s, g4_sampler_set(sp, 0.0f, 0, 1.0f, 0.0f, sp->repeat_penalty, sp->repeat_last_n));
}

GEMMA4_API gemma4_status gemma4_session_set_sampling(gemma4_session *session, float temperature,
                                                     int32_t top_k, float top_p, float min_p) {
    BEGIN();
    CHECK(session, "gemma4_session_set_sampling: session is NULL");
    CHECK_SESSION(session, "gemma4_session_set_sampling");
    struct g4_session *s = SESSION(session);
    ENTER(s, "gemma4_session_set_sampling");
    struct g4_sampler *sp = &s->sampler;
    return LEAVE(s, g4_sampler_set(sp, temperature, top_k, top_p, min_p, sp->repeat_penalty,
                          sp->repeat_last_n));
}

GEMMA4_API gemma4_status gemma4_session_set_repetition_penalty(gemma4_session *session,
                                                               float penalty, int32_t last_n) {
    BEGIN();
    CHECK(session, "gemma4_session_set_repetition_penalty: session is NULL");
    CHECK_SESSION(session, "gemma4_session_set_repetition_penalty");
    struct g4_session *s = SESSION(session);
    ENTER(s, "gemma4_session_set_repetition_penalty");
    struct g4_sampler *sp = &s->sampler;
    return LEAVE(s, g4_sampler_set(sp, sp->temperature, sp->top_k, sp->top_p, sp->min_p, penalty, last_n));
}

GEMMA4_API gemma4_status gemma4_session_set_seed(gemma4_session *session, uint64_t seed) {
    BEGIN();
    CHECK(session, "gemma4_session_set_seed: session is NULL");
    CHECK_SESSION(session, "gemma4_session_set_seed");
    struct g4_session *s = SESSION(session);
    ENTER(s, "gemma4_session_set_seed");
    g4_sampler_set_seed(&s->sampler, seed);
    return LEAVE(s, GEMMA4_OK);
}

GEMMA4_API gemma4_status gemma4_session_sample(gemma4_session *session, int32_t *token) {
    BEGIN();
    CHECK(session && token, "gemma4_session_sample: NULL argument");
    CHECK_SESSION(session, "gemma4_session_sample");
    struct g4_session *s = SESSION(session);
    ENTER(s, "gemma4_session_sample");
    if (!s->has_logits)
        return LEAVE(s, g4_fail(G4_ERR_INVALID_ARGUMENT,
                                "gemma4_session_sample: no logits yet (step the session first)"));
    return LEAVE(s, g4_session_sample(s, token));
}

GEMMA4_API gemma4_status gemma4_session_add_stop(gemma4_session *session, const char *stop) {
    BEGIN();
    CHECK(session && stop, "gemma4_session_add_stop: NULL argument");
    CHECK_UTF8(stop, "gemma4_session_add_stop", "stop");
    CHECK_SESSION(session, "gemma4_session_add_stop");
    struct g4_session *s = SESSION(session);
    ENTER(s, "gemma4_session_add_stop");
    return LEAVE(s, g4_session_add_stop(s, stop));
}

GEMMA4_API gemma4_status gemma4_session_clear_stops(gemma4_session *session) {
    BEGIN();
    CHECK(session, "gemma4_session_clear_stops: session is NULL");
    CHECK_SESSION(session, "gemma4_session_clear_stops");
    struct g4_session *s = SESSION(session);
    ENTER(s, "gemma4_session_clear_stops");
    g4_session_clear_stops(s);
    return LEAVE(s, GEMMA4_OK);
}

GEMMA4_API gemma4_status gemma4_generate(gemma4_session *session, const char *prompt,
                                         int32_t max_tokens, gemma4_token_fn on_token,
                                         void *user_data) {
    BEGIN();
    CHECK(session && prompt, "gemma4_generate: NULL argument");
    CHECK_UTF8(prompt, "gemma4_generate", "prompt");
    CHECK_SESSION(session, "gemma4_generate");
    CHECK(max_tokens >= 0, "gemma4_generate: max_tokens %d < 0", max_tokens);
    struct g4_session *s = SESSION(session);
    ENTER(s, "gemma4_generate");
    return LEAVE(s, g4_generate(s, prompt, max_tokens, on_token, user_data));
}

GEMMA4_API gemma4_status gemma4_chat_generate(gemma4_session *session, const char *const *roles,
                                              const char *const *contents, size_t n_messages,
                                              int32_t max_tokens, gemma4_token_fn on_token,
                                              void *user_data) {
    BEGIN();
    CHECK(session && roles && contents && n_messages > 0, "gemma4_chat_generate: NULL argument");
    G4_TRY(check_messages(roles, contents, n_messages, "gemma4_chat_generate"));
    CHECK_SESSION(session, "gemma4_chat_generate");
    CHECK(max_tokens >= 0, "gemma4_chat_generate: max_tokens %d < 0", max_tokens);
    struct g4_session *s = SESSION(session);
    ENTER(s, "gemma4_chat_generate");
    return LEAVE(s, g4_chat_generate(s, roles, contents, n_messages, max_tokens, on_token,
                                     user_data));
}

GEMMA4_API gemma4_status gemma4_session_clear_cancel(gemma4_session *session) {
    BEGIN();
    CHECK(session, "gemma4_session_clear_cancel: session is NULL");
    CHECK_SESSION(session, "gemma4_session_clear_cancel");
    struct g4_session *s = SESSION(session);
    ENTER(s, "gemma4_session_clear_cancel");
    g4_session_clear_cancel(s);
    return LEAVE(s, GEMMA4_OK);
}

GEMMA4_API gemma4_status gemma4_session_cancel(gemma4_session *session) {
    // No BEGIN(): may run on another thread while the session works; touches only the counter.
    if (!session) return g4_fail(G4_ERR_INVALID_ARGUMENT, "gemma4_session_cancel: session is NULL");
    CHECK_SESSION(session, "gemma4_session_cancel");
    g4_session_cancel(SESSION(session));
    return GEMMA4_OK;
}

// ---- Chat with tools and thinking (JSON conversations) ---------------------------------------

_Static_assert(GEMMA4_CHAT_ADD_GENERATION_PROMPT == G4_CHAT_GEN_PROMPT &&
                   GEMMA4_CHAT_THINKING == G4_CHAT_THINKING &&
                   GEMMA4_CHAT_PRESERVE_THINKING == G4_CHAT_PRESERVE_THINKING,
               "chat flags");
_Static_assert(GEMMA4_CHAT_EVENT_TEXT == G4_CHAT_EVENT_TEXT &&
                   GEMMA4_CHAT_EVENT_REASONING == G4_CHAT_EVENT_REASONING &&
                   GEMMA4_CHAT_EVENT_TOOL_CALL == G4_CHAT_EVENT_TOOL_CALL,
               "chat events");
_Static_assert(GEMMA4_FINISH_STOP == G4_FINISH_STOP && GEMMA4_FINISH_LENGTH == G4_FINISH_LENGTH &&
                   GEMMA4_FINISH_TOOL_CALLS == G4_FINISH_TOOL_CALLS &&
                   GEMMA4_FINISH_CANCELLED == G4_FINISH_CANCELLED,
               "finish reasons");

#define CHAT_FLAGS (GEMMA4_CHAT_ADD_GENERATION_PROMPT | GEMMA4_CHAT_THINKING | GEMMA4_CHAT_PRESERVE_THINKING)

GEMMA4_API gemma4_status gemma4_chat_render_json(const gemma4_model *model,
                                                 const char *messages_json,
                                                 const char *tools_json, int32_t flags,
                                                 char *buf, size_t capacity, size_t *n_out) {
    BEGIN();
    CHECK(n_out && messages_json, "gemma4_chat_render_json: NULL argument");
    *n_out = 0;
    if (model) CHECK_MODEL(model, "gemma4_chat_render_json");
    CHECK(!(flags & ~CHAT_FLAGS), "gemma4_chat_render_json: unknown flags 0x%x", flags);
    if (model && (flags & GEMMA4_CHAT_ADD_GENERATION_PROMPT))
        flags |= MODEL(model)->cfg.chat_gen_prompt & G4_CHAT_TEMPLATE_LARGE;
    cJSON *m, *t;
    CHECK_UTF8(messages_json, "gemma4_chat_render_json", "messages_json");
    CHECK_UTF8(tools_json, "gemma4_chat_render_json", "tools_json");
    G4_TRY(g4_chat_parse(messages_json, tools_json, &m, &t));
    const enum g4_chat_format fmt =
        model ? (enum g4_chat_format)MODEL(model)->cfg.chat_format : G4_CHAT_FORMAT_GEMMA4;
    g4_status st = g4_chat_render_text(fmt, m, t, flags, buf, capacity, n_out);
    cJSON_Delete(m);
    cJSON_Delete(t);
    return st;
}

GEMMA4_API gemma4_status gemma4_chat_tokenize_json(const gemma4_model *model,
                                                   const char *messages_json,
                                                   const char *tools_json, int32_t flags,
                                                   int32_t *ids, size_t capacity, size_t *n_out) {
    BEGIN();
    G4_TRY(need_tokenizer(model, "gemma4_chat_tokenize_json"));
    CHECK(n_out && messages_json, "gemma4_chat_tokenize_json: NULL argument");
    *n_out = 0;
    CHECK(!(flags & ~CHAT_FLAGS), "gemma4_chat_tokenize_json: unknown flags 0x%x", flags);
    if (flags & GEMMA4_CHAT_ADD_GENERATION_PROMPT)
        flags |= MODEL(model)->cfg.chat_gen_prompt & G4_CHAT_TEMPLATE_LARGE;
    cJSON *m, *t;
    CHECK_UTF8(messages_json, "gemma4_chat_tokenize_json", "messages_json");
    CHECK_UTF8(tools_json, "gemma4_chat_tokenize_json", "tools_json");
    G4_TRY(g4_chat_parse(messages_json, tools_json, &m, &t));
    int32_t *v = NULL;
    size_t n = 0;
    g4_status st = g4_chat_render_ids((enum g4_chat_format)MODEL(model)->cfg.chat_format,
                                      MODEL(model)->tok, m, t, flags, &v, &n);
    cJSON_Delete(m);
    cJSON_Delete(t);
    if (st == G4_OK) {
        *n_out = n;
        if (ids && capacity < n)
            st = g4_fail(G4_ERR_BUFFER_TOO_SMALL, "gemma4_chat_tokenize_json: buffer of %zu ids, "
                         "%zu needed", capacity, n);
        else if (ids && n)
            memcpy(ids, v, n * sizeof *ids);
    }
    free(v);
    return st;
}

GEMMA4_API gemma4_status gemma4_chat_complete(gemma4_session *session, const char *messages_json,
                                              const char *tools_json, int32_t flags,
                                              int32_t max_tokens, gemma4_chat_event_fn on_event,
                                              void *user_data) {
    BEGIN();
    CHECK(session && messages_json, "gemma4_chat_complete: NULL argument");
    CHECK_SESSION(session, "gemma4_chat_complete");
    CHECK(max_tokens >= 0, "gemma4_chat_complete: max_tokens %d < 0", max_tokens);
    CHECK(!(flags & ~CHAT_FLAGS), "gemma4_chat_complete: unknown flags 0x%x", flags);
    struct g4_session *s = SESSION(session);
    cJSON *m, *t;
    CHECK_UTF8(messages_json, "gemma4_chat_complete", "messages_json");
    CHECK_UTF8(tools_json, "gemma4_chat_complete", "tools_json");
    G4_TRY(g4_chat_parse(messages_json, tools_json, &m, &t));
    g4_status st;
    if (atomic_exchange(&s->busy, true)) {
        st = busy("gemma4_chat_complete");
    } else {
        st = g4_chat_complete(s, m, t, flags, max_tokens, (g4_chat_event_fn)on_event, user_data);
        atomic_store(&s->busy, false);
    }
    cJSON_Delete(m);
    cJSON_Delete(t);
    return st;
}

GEMMA4_API gemma4_status gemma4_chat_result(const gemma4_session *session, char *buf,
                                            size_t capacity, size_t *n_out) {
    BEGIN();
    CHECK(session && n_out, "gemma4_chat_result: NULL argument");
    *n_out = 0;
    CHECK_SESSION(session, "gemma4_chat_result");
    const struct g4_session *s = SESSION(session);
    CHECK(s->chat_result, "gemma4_chat_result: no chat completion on this session yet");
    return copy_out(s->chat_result, buf, capacity, n_out);
}

GEMMA4_API gemma4_status gemma4_session_reset_sampling(gemma4_session *session) {
    BEGIN();
    CHECK(session, "gemma4_session_reset_sampling: session is NULL");
    CHECK_SESSION(session, "gemma4_session_reset_sampling");
    struct g4_session *s = SESSION(session);
    ENTER(s, "gemma4_session_reset_sampling");
    return LEAVE(s, g4_session_reset_sampling(s));
}

GEMMA4_API gemma4_status gemma4_session_get_sampling(const gemma4_session *session,
                                                     float *temperature, int32_t *top_k,
                                                     float *top_p, float *min_p) {
    BEGIN();
    CHECK(session, "gemma4_session_get_sampling: session is NULL");
    CHECK_SESSION(session, "gemma4_session_get_sampling");
    const struct g4_sampler *sp = &SESSION(session)->sampler;
    if (temperature) *temperature = sp->temperature > 0 ? sp->temperature : 0.0f;
    if (top_k) *top_k = sp->top_k;
    if (top_p) *top_p = sp->top_p;
    if (min_p) *min_p = sp->min_p;
    return GEMMA4_OK;
}

GEMMA4_API gemma4_status gemma4_session_force_tokens(gemma4_session *session,
                                                     const int32_t *tokens, size_t n) {
    BEGIN();
    CHECK(session && (tokens || n == 0), "gemma4_session_force_tokens: NULL argument");
    CHECK_SESSION(session, "gemma4_session_force_tokens");
    struct g4_session *s = SESSION(session);
    const int32_t V = s->model->cfg.vocab_size;
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            return g4_fail(G4_ERR_INVALID_TOKEN,
                           "gemma4_session_force_tokens: token %zu is %d, outside [0, %d)", i,
                           tokens[i], V);
    ENTER(s, "gemma4_session_force_tokens");
    int32_t *copy = NULL;
    if (n && g4_calloc((void **)&copy, n, sizeof *copy, "forced tokens") != G4_OK)
        return LEAVE(s, G4_ERR_OUT_OF_MEMORY);
    if (n) memcpy(copy, tokens, n * sizeof *copy);
    free(s->forced);
    s->forced = copy;
    s->n_forced = n;
    s->i_forced = 0;
    return LEAVE(s, GEMMA4_OK);
}
