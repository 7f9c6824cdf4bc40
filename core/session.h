// struct g4_session: one conversation's state (token history, position, backend K/V cache and
// activations). Used by one thread at a time. Validates tokens and context before any compute.
#ifndef G4_SESSION_H
#define G4_SESSION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "model.h"
#include "sampler.h"

#define G4_MAX_STOPS 16

struct g4_session {
    uint32_t tag;            // G4_TAG_SESSION from gemma4_session_new to _free (handle.h)
    struct g4_model *model;  // holds a reference
    int64_t n_ctx;
    int64_t n_past;          // positions already in the cache
    int n_batch;             // micro-batch: most tokens one backend forward runs
    int32_t *history;        // (n_ctx,) tokens at positions [0, n_past)
    uint64_t n_evaluated;    // tokens run through the model since creation (for tests, stats)
    void *backend_state;
    uint64_t budget_bytes;   // reserved against the memory budget (released at free)
    float *logits;           // (vocab,) logits of the last position of the last step
    bool has_logits;
    struct g4_sampler sampler;
    char *stops[G4_MAX_STOPS];
    int n_stops;
    bool bf16;               // GEMMA4_PRECISION_BF16: matmul activations rounded to bf16
    atomic_bool cancel;      // set by any thread; checked between micro-batches and tokens
    // Statistics of the last g4_generate.
    int64_t last_prompt_tokens, last_gen_tokens, last_prompt_us, last_gen_us;
};

g4_status g4_session_init(struct g4_session **out, struct g4_model *m, int64_t n_ctx);
void g4_session_free(struct g4_session *s); // via the handle quarantine; NULL fine

// Appends n tokens and runs them (micro-batched). logits: NULL, or (n, vocab) when all_logits,
// else (vocab,) for the last token; the last position's logits are also kept in s->logits.
// Invalid token: G4_ERR_INVALID_TOKEN; n_past + n > n_ctx: G4_ERR_CONTEXT_FULL; both before
// anything runs, so the session is unchanged. A cancel request stops between micro-batches
// (G4_ERR_CANCELLED; the chunks already run stay).
g4_status g4_session_step(struct g4_session *s, const int32_t *tokens, int64_t n, float *logits,
                          bool all_logits);
// Empties the cache (position 0).
void g4_session_reset(struct g4_session *s);
// Rewinds to the first n_keep tokens, exactly (see gemma4_session_truncate in abi/gemma4.h).
g4_status g4_session_truncate(struct g4_session *s, int64_t n_keep);
// Adds a stop string (copied) / removes all.
g4_status g4_session_add_stop(struct g4_session *s, const char *stop);
void g4_session_clear_stops(struct g4_session *s);

#endif
