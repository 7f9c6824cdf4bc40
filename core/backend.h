// The one CPU/CUDA seam: what an engine must provide to run a session. The session owns the
// token history, position and validation; a backend owns its activations and K/V cache and runs
// steps. CPU: kernels/cpu/forward_cpu.c; CUDA: kernels/cuda/forward_cuda.cu (when built).
#ifndef G4_BACKEND_H
#define G4_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

struct g4_model;
struct g4_session;

struct g4_backend {
    const char *name;
    // Most tokens one forward runs (a session's n_batch, capped by its context); 0: the core's
    // default (128, the CPU engine's). CUDA takes 512: a prompt step of at least 512 tokens
    // keeps the tensor cores busy.
    int n_batch;
    // Per-model device state (weights upload); may be NULL for the CPU.
    g4_status (*model_init)(struct g4_model *m);
    void (*model_free)(struct g4_model *m);
    // Per-session state: K/V cache and activations for s->n_ctx positions, s->n_batch per step.
    g4_status (*session_init)(struct g4_session *s);
    void (*session_free)(struct g4_session *s);
    // Runs tokens (n <= s->n_batch) at positions [s->n_past, s->n_past + n); does not advance
    // n_past. logits: NULL, or (n, vocab) when all_logits, else (vocab,) for the last token.
    g4_status (*forward)(struct g4_session *s, const int32_t *tokens, int n, float *logits,
                         bool all_logits);
    // Bytes of this session's K/V cache.
    size_t (*kv_bytes)(const struct g4_session *s);
    // Optional (NULL: the CPU). forward with the last token's logits kept on the device and
    // only what greedy decoding and the session's finiteness check need coming back:
    // *next = argmax of the last position's logits (lowest id on ties, NaN never wins, as
    // g4_sampler_sample at temperature 0), *nonfinite = the lowest id of a NaN/Inf logit there
    // or -1. The session uses it for the last chunk of a step whose caller wants no logits
    // while its sampler is greedy without a repetition penalty.
    g4_status (*forward_greedy)(struct g4_session *s, const int32_t *tokens, int n,
                                int32_t *next, int32_t *nonfinite);
    // With forward_greedy: copies the logits (vocab,) of the last forward_greedy to the host
    // (they stay on the device until the next forward); for a sampler that needs them after all.
    g4_status (*fetch_logits)(struct g4_session *s, float *logits);
};

extern const struct g4_backend g4_backend_cpu;

// For backends compiled as C++ (CUDA), which cannot include model.h (C11 atomics).
int g4_model_device_index(const struct g4_model *m);

#endif
