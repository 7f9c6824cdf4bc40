// Binds Hugging Face tensor names to struct g4_weights and checks every tensor the config implies
// for presence, dtype and shape before any compute. Matrices point into the safetensors mapping
// (checkpoint dtype); vectors (norm weights, scales) are converted once to fp32 into one pool.
// Norm vectors hold the effective RMSNorm scale the forward multiplies by, whatever the source:
// Gemma 4 stores it as is; Gemma 3's HF checkpoints store w for a scale of (1 + w), and the
// binder adds the 1 here (in fp32, exactly as Gemma3RMSNorm does); GGUF gemma3 files store w + 1
// already (llama.cpp's converter adds it): tables built from GGUF say so (norms_as_scales) and
// are taken as stored.
#ifndef G4_WEIGHTS_H
#define G4_WEIGHTS_H

#include <stdint.h>

#include "config.h"
#include "dtype.h"
#include "safetensors.h"

// A row-major matrix (rows, cols) in checkpoint dtype, usually pointing into the mapping.
struct g4_weight {
    const void *data;
    enum g4_dtype dtype;
    int64_t rows, cols;
};

// Rows [row0, row0 + n) of w as a matrix of its own (e.g. one expert of a 3-D expert tensor).
struct g4_weight g4_weight_rows(struct g4_weight w, int64_t row0, int64_t n);

struct g4_layer_weights {
    const float *input_layernorm, *post_attention_layernorm;     // (hidden,)
    const float *pre_feedforward_layernorm, *post_feedforward_layernorm; // (hidden,)
    struct g4_weight q_proj;   // (n_heads * head_dim, hidden)
    struct g4_weight k_proj;   // (n_kv_heads * head_dim, hidden); absent on KV-shared layers
    struct g4_weight v_proj;   // (n_kv_heads * head_dim, hidden); absent when k_eq_v or shared
    struct g4_weight o_proj;   // (hidden, n_heads * head_dim)
    const float *q_norm, *k_norm; // (head_dim,); k_norm NULL on KV-shared layers
                                  // (every norm vector: the effective scale, see above)
    struct g4_weight gate_proj, up_proj; // (intermediate, hidden)
    struct g4_weight down_proj;          // (hidden, intermediate)
    // PLE (hidden_size_per_layer_input > 0)
    struct g4_weight per_layer_input_gate; // (ple_dim, hidden)
    struct g4_weight per_layer_projection; // (hidden, ple_dim)
    const float *post_per_layer_input_norm; // (hidden,)
    // MoE (enable_moe_block)
    struct g4_weight router_proj;          // (n_experts, hidden)
    const float *router_scale;             // (hidden,)
    const float *router_per_expert_scale;  // (n_experts,)
    struct g4_weight experts_gate_up;      // (n_experts * 2 * moe_intermediate, hidden): gate rows then up rows per expert
    struct g4_weight experts_down;         // (n_experts * hidden, moe_intermediate)
    const float *post_feedforward_layernorm_1, *post_feedforward_layernorm_2;
    const float *pre_feedforward_layernorm_2; // (hidden,)
    float layer_scalar;        // 1 for Gemma 3 (no layer_scalar tensor)
};

struct g4_weights {
    struct g4_weight embed_tokens;           // (vocab, hidden)
    struct g4_weight lm_head;                // (vocab, hidden); == embed_tokens when tied
    struct g4_weight embed_tokens_per_layer; // (vocab_per_layer, n_layers * ple_dim)
    struct g4_weight per_layer_model_projection; // (n_layers * ple_dim, hidden)
    const float *per_layer_projection_norm;  // (ple_dim,)
    const float *norm;                       // (hidden,)
    struct g4_layer_weights layer[G4_MAX_LAYERS];
    float *vec_pool;                         // owns every const float * above
    size_t n_bytes;                          // bytes of all bound tensors (checkpoint dtype)
};

// Binds and validates. Errors name the tensor: missing (G4_ERR_FORMAT "missing tensor"),
// mis-shaped, unexpected extra tensor in the language-model namespace, non-finite vector values.
// `what` names the checkpoint in messages. On error w is freed and zeroed.
g4_status g4_weights_bind(struct g4_weights *w, const struct g4_config *cfg,
                          const struct g4_safetensors *st, const char *what);
void g4_weights_free(struct g4_weights *w);

#endif
