// generation_config.json of a Hugging Face model directory: the sampling defaults a new session
// starts with (do_sample, temperature, top_k, top_p). Explicit settings on the session override
// them; gemma4_session_reset_sampling returns to them.
#ifndef G4_GENERATION_CONFIG_H
#define G4_GENERATION_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "status.h"

struct g4_generation_config {
    bool present;      // the file exists
    bool do_sample;    // false (or absent): greedy, as transformers' generate()
    float temperature; // transformers' defaults where a key is absent: 1.0, 50, 1.0
    int32_t top_k;
    float top_p;
};

// Reads dir/generation_config.json. A missing file leaves present false (greedy defaults).
// G4_ERR_FORMAT naming the file and key for invalid JSON or an out-of-range value
// (temperature < 0, top_p outside (0, 1], top_k < 0, non-boolean do_sample).
g4_status g4_generation_config_load(struct g4_generation_config *out, const char *dir);

#endif
