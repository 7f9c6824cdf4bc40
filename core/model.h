// struct g4_model: config, mapped checkpoint, bound weights, tokenizer and the backend that runs
// them. Immutable after load and shared read-only by sessions on any thread; reference counted
// so that sessions keep it alive (freeing the model first is safe).
#ifndef G4_MODEL_H
#define G4_MODEL_H

#include <stdatomic.h>

#include "backend.h"
#include "config.h"
#include "gguf.h"
#include "generation_config.h"
#include "safetensors.h"
#include "tokenizer.h"
#include "weights.h"

enum g4_device { G4_DEVICE_CPU = 0, G4_DEVICE_CUDA = 1 };

struct g4_model {
    struct g4_config cfg;
    struct g4_safetensors st;     // the tensor table (from a GGUF file: translated names, gguf_weights.h)
    struct g4_gguf gguf;          // the mapped GGUF file when loaded from one, else zeroed
    struct g4_weights w;
    struct g4_tokenizer *tok;     // NULL when the directory has no tokenizer.json
    struct g4_generation_config gen; // generation_config.json sampling defaults (sessions start there)
    const struct g4_backend *backend;
    void *device_state;           // backend-owned (CUDA weights); NULL on CPU
    enum g4_device device;
    int device_index;
    int64_t n_ctx;                // default context for sessions (<= max_position_embeddings)
    int n_threads;
    uint64_t budget_bytes;        // reserved against the memory budget (released at free)
    atomic_int refs;
};

// Loads dir (config.json, safetensors, optional tokenizer.json), or a GGUF file (a regular file
// named *.gguf: config from its metadata, weights from its tensors, see gguf_config.h and
// gguf_weights.h). n_ctx <= 0: min(8192,
// max_position_embeddings); n_threads <= 0: online processors. *out NULL on error.
g4_status g4_model_load(struct g4_model **out, const char *dir, enum g4_device device,
                        int device_index, int64_t n_ctx, int n_threads);
// With flags: G4_LOAD_IN_MEMORY reads the checkpoint files into memory instead of mapping them
// (see g4_safetensors_load).
#define G4_LOAD_IN_MEMORY 1u
g4_status g4_model_load_flags(struct g4_model **out, const char *dir, enum g4_device device,
                              int device_index, int64_t n_ctx, int n_threads, unsigned flags);
void g4_model_retain(struct g4_model *m);
void g4_model_release(struct g4_model *m); // frees at zero; NULL fine

#endif
