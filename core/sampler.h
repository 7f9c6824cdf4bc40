// Token sampling over one logits row: greedy, temperature, top-k, top-p, min-p, repetition
// penalty; seeded, reproducible RNG. Scratch is allocated once at init, nothing per token.
#ifndef G4_SAMPLER_H
#define G4_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

struct g4_sampler {
    int32_t n_vocab;
    float temperature;    // <= 0: greedy (argmax, lowest id on ties)
    int32_t top_k;        // <= 0: off
    float top_p;          // >= 1: off
    float min_p;          // <= 0: off
    float repeat_penalty; // 1: off; HF RepetitionPenaltyLogitsProcessor semantics
    int32_t repeat_last_n;// how many recent tokens the penalty looks at (<= 0: all given)
    uint64_t seed;
    uint64_t rng;         // state; reset to seed by g4_sampler_set_seed
    float *probs;         // (n_vocab,) scratch
    int32_t *index;       // (n_vocab,) scratch
};

// Defaults: greedy, top_k 0, top_p 1, min_p 0, penalty 1, repeat_last_n 64, seed 0.
g4_status g4_sampler_init(struct g4_sampler *s, int32_t n_vocab);
void g4_sampler_free(struct g4_sampler *s); // zeroed struct fine
// Validates ranges (temperature >= 0, top_p in (0,1], min_p in [0,1], penalty > 0):
// G4_ERR_INVALID_ARGUMENT naming the parameter.
g4_status g4_sampler_set(struct g4_sampler *s, float temperature, int32_t top_k, float top_p,
                         float min_p, float repeat_penalty, int32_t repeat_last_n);
void g4_sampler_set_seed(struct g4_sampler *s, uint64_t seed);
// Samples one token id from logits (n_vocab,). `history` (n_history,) are the context tokens the
// repetition penalty considers (the last repeat_last_n of them). logits is not modified.
int32_t g4_sampler_sample(struct g4_sampler *s, const float *logits, const int32_t *history,
                          size_t n_history);

#endif
