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
    // The last step ran through backend->forward_greedy: its logits are still on the device
    // (s->logits is stale until g4_session_host_logits fetches them) and greedy_next is their
    // argmax.
    bool logits_on_device;
    int32_t greedy_next;
    struct g4_sampler sampler;
    char *stops[G4_MAX_STOPS];
    int n_stops;
    bool bf16;               // GEMMA4_PRECISION_BF16: llama.cpp numerics (bf16 / 8-bit activations)
    // Cancellation (see gemma4_session_cancel): any thread increments cancel_requests; the
    // session's own thread answers every request made since the last answer with one
    // G4_ERR_CANCELLED (cancel_answered = the count it saw), so no request is lost or cleared.
    atomic_uint_fast64_t cancel_requests;
    uint_fast64_t cancel_answered;
    atomic_bool busy;        // an ABI call that runs or changes the session is in progress
    // Statistics of the last g4_generate.
    int64_t last_prompt_tokens, last_gen_tokens, last_prompt_us, last_gen_us;
    // Chat (generate.c): the last generation's finish reason (G4_FINISH_*, -1 before any), the
    // usage of the last chat completion, its result JSON (malloc'd, NULL before any), and the
    // test aid of gemma4_session_force_tokens (the next generation takes forced[i_forced..]
    // instead of sampling).
    int finish_reason;
    int64_t usage_prompt, usage_cached, usage_completion;
    char *chat_result;
    int32_t *forced;
    size_t n_forced, i_forced;
};

#define G4_FINISH_STOP 0       // end of turn / end of sequence / stop string / callback
#define G4_FINISH_LENGTH 1     // max_tokens or the context filled
#define G4_FINISH_TOOL_CALLS 2 // the turn ended with tool calls
#define G4_FINISH_CANCELLED 3

g4_status g4_session_init(struct g4_session **out, struct g4_model *m, int64_t n_ctx);
void g4_session_free(struct g4_session *s); // NULL fine

// Sampling back to the model's generation_config.json defaults (greedy without one, or when it
// does not set do_sample), keeping the repetition penalty.
g4_status g4_session_reset_sampling(struct g4_session *s);
// Requests cancellation (any thread, any time while s is alive).
void g4_session_cancel(struct g4_session *s);
// On s's own thread: true (and the pending requests answered) when a cancel request arrived
// since the last answer; the caller then returns G4_ERR_CANCELLED.
bool g4_session_cancelled(struct g4_session *s);
// On s's own thread: answers the pending requests without cancelling anything.
void g4_session_clear_cancel(struct g4_session *s);

// Appends n tokens and runs them (micro-batched). logits: NULL, or (n, vocab) when all_logits,
// else (vocab,) for the last token; the last position's logits are also kept in s->logits.
// Invalid token: G4_ERR_INVALID_TOKEN; n_past + n > n_ctx: G4_ERR_CONTEXT_FULL; both before
// anything runs, so the session is unchanged. A cancel request is checked before each
// micro-batch (G4_ERR_CANCELLED; the chunks already run stay, none if it was pending at entry).
g4_status g4_session_step(struct g4_session *s, const int32_t *tokens, int64_t n, float *logits,
                          bool all_logits);
// The last step's logits in s->logits, fetched from the device when that step left them there
// (a device error is returned). Requires s->has_logits.
g4_status g4_session_host_logits(struct g4_session *s);
// Samples the next token from the last step's logits with s->sampler (g4_sampler_sample over
// the history): a greedy sampler without repetition penalty takes the device's argmax when the
// step left the logits on the device; anything else fetches them first. Requires has_logits.
g4_status g4_session_sample(struct g4_session *s, int32_t *token);
// Empties the cache (position 0).
void g4_session_reset(struct g4_session *s);
// Rewinds to the first n_keep tokens, exactly (see gemma4_session_truncate in abi/gemma4.h).
g4_status g4_session_truncate(struct g4_session *s, int64_t n_keep);
// Adds a stop string (copied) / removes all.
g4_status g4_session_add_stop(struct g4_session *s, const char *stop);
void g4_session_clear_stops(struct g4_session *s);

#endif
