// The CUDA engine behind g4_backend_cuda (kernels/cuda/backend_cuda.c). The engine is C++ and never
// sees struct g4_model / g4_session (model.h uses C11 atomics); the C bridge passes it the
// config, the bound host weights and the session sizes, and keeps the opaque states.
//
// Device data: weights bf16 in one allocation (f32 and f16 checkpoints are rounded to bf16 once
// at load; norm vectors, layer scalars and the MoE router stay fp32); per session one K/V
// allocation and one activation allocation, both fp32. See kernels/README.md.
#ifndef G4_ENGINE_H
#define G4_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels.h"

#ifdef __cplusplus
extern "C" {
#endif
#include "config.h"
#include "weights.h"

struct g4_cuda_mat {
    const g4_bf16 *w; // (rows, cols) row-major
    int rows, cols;
};

struct g4_cuda_layer {
    const float *input_layernorm, *post_attention_layernorm;              // (hidden,)
    const float *pre_feedforward_layernorm, *post_feedforward_layernorm;  // (hidden,)
    const float *q_norm, *k_norm;                                         // (head_dim,)
    const float *rope_inv_freq; // (n_rope_pairs,) from g4_cuda_rope_inv_freq; NULL if none
    // q_proj rows, then k_proj rows (layers that write K/V), then v_proj rows (unless k_eq_v):
    // one GEMM gives (n, n_heads * hd + [n_kv * hd] + [n_kv * hd]).
    struct g4_cuda_mat qkv;
    struct g4_cuda_mat o_proj;  // (hidden, n_heads * head_dim)
    struct g4_cuda_mat gate_up; // gate_proj rows then up_proj rows: (2 * intermediate, hidden)
    struct g4_cuda_mat down;    // (hidden, intermediate)
    // PLE
    struct g4_cuda_mat ple_gate; // per_layer_input_gate (ple_dim, hidden)
    struct g4_cuda_mat ple_proj; // per_layer_projection (hidden, ple_dim)
    const float *post_per_layer_input_norm;
    // MoE
    const float *router_proj;             // (n_experts, hidden) fp32
    const float *router_scale;            // (hidden,)
    const float *router_per_expert_scale; // (n_experts,)
    const g4_bf16 *experts_gate_up;       // (n_experts, 2 * moe_intermediate, hidden)
    const g4_bf16 *experts_down;          // (n_experts, hidden, moe_intermediate)
    const float *post_feedforward_layernorm_1, *post_feedforward_layernorm_2;
    const float *pre_feedforward_layernorm_2;
    float layer_scalar;
};

struct g4_cuda_model {
    const struct g4_config *cfg; // the model's config (outlives this)
    int device;
    void *base;                  // the one device allocation holding every tensor below
    size_t bytes;
    struct g4_cuda_mat embed;    // (vocab, hidden)
    struct g4_cuda_mat lm_head;  // == embed when tied
    struct g4_cuda_mat ple_table;      // embed_tokens_per_layer (vocab_per_layer, L * ple_dim)
    struct g4_cuda_mat ple_model_proj; // per_layer_model_projection (L * ple_dim, hidden)
    const float *ple_norm;       // per_layer_projection_norm (ple_dim,)
    const float *norm;           // (hidden,)
    struct g4_cuda_layer layer[G4_MAX_LAYERS];
};

// Opens device `device_index`, checks that the engine supports cfg and uploads the weights.
// G4_ERR_DEVICE without a device; G4_ERR_OUT_OF_MEMORY when the weights do not fit;
// G4_ERR_UNSUPPORTED for head_dim > G4_CUDA_MAX_HEAD_DIM. *out NULL on error.
g4_status g4_cuda_model_init(struct g4_cuda_model **out, const struct g4_config *cfg,
                             const struct g4_weights *w, int device_index);
// The same layout with random values made on the device, for the benchmark
// (tests/bench/gpu_bench.c): no host weights, nothing transferred. Matrices N(0, 1/cols) in bf16,
// norm weights 1 + N(0, 0.02) (q/k norms 0.25 times that), router scales and layer scalars 1;
// the same seed gives the same values. Errors as g4_cuda_model_init.
g4_status g4_cuda_model_init_random(struct g4_cuda_model **out, const struct g4_config *cfg,
                                    uint64_t seed, int device_index);
void g4_cuda_model_free(struct g4_cuda_model *m); // NULL fine

// The session's precision (GEMMA4_PRECISION_*, struct g4_session's bf16 flag), passed on every
// forward. FP32: today's exact path (fp32 activations, exact bf16 hi + lo split into the GEMMs,
// fp32 K/V): the reference the tests compare with. BF16: bf16 activations into the matrix
// products with fp32 accumulation (the GEMV and the GEMM round their inputs), fp32 norms /
// softmax / elementwise, bf16 K/V cache (the K/V cache is still fp32 in both modes until the
// bf16 cache lands; the MoE experts and router keep fp32 activations, as on the CPU).
enum g4_cuda_precision { G4_CUDA_FP32 = 0, G4_CUDA_BF16 = 1 };

struct g4_cuda_session;
// K/V cache for n_ctx positions and activations for n_batch tokens per forward; *out NULL on
// error (G4_ERR_OUT_OF_MEMORY when the device memory is short).
g4_status g4_cuda_session_init(struct g4_cuda_session **out, const struct g4_cuda_model *m,
                               int64_t n_ctx, int n_batch);
void g4_cuda_session_free(struct g4_cuda_session *s); // NULL fine
// The backend forward (core/backend.h): tokens [0, n) at positions [pos0, pos0 + n), n <=
// n_batch; logits NULL, or host (n, vocab) when all_logits, else (vocab,); prec the session's
// precision (an unknown value is G4_ERR_INVALID_ARGUMENT). One stream sync per call, after the
// results' copy; decode shapes replay a CUDA graph (see g4_cuda_session_use_graphs).
g4_status g4_cuda_forward(struct g4_cuda_session *s, const int32_t *tokens, int n, int64_t pos0,
                          float *logits, bool all_logits, enum g4_cuda_precision prec);
// The greedy forward (core/backend.h forward_greedy): as g4_cuda_forward with the last
// position's logits left on the device; *next their argmax, *nonfinite the lowest id of a
// NaN/Inf logit or -1. 8 bytes come back instead of vocab floats.
g4_status g4_cuda_forward_greedy(struct g4_cuda_session *s, const int32_t *tokens, int n,
                                 int64_t pos0, enum g4_cuda_precision prec, int32_t *next,
                                 int32_t *nonfinite);
// The last g4_cuda_forward_greedy's logits (vocab,) to the host (valid until the next forward).
g4_status g4_cuda_fetch_logits(struct g4_cuda_session *s, float *logits);
size_t g4_cuda_session_kv_bytes(const struct g4_cuda_session *s);
// K/V dtype. A session holds one: fp32 at creation and in FP32; in BF16 bf16 when the session's
// policy says so (default G4_CUDA_KV_BF16_IN_BF16), else fp32. A forward whose precision wants
// the other dtype re-makes the cache (free, then allocate: bf16 takes half the bytes, which
// g4_cuda_session_kv_bytes then reports) when pos0 == 0, and fails with G4_ERR_INVALID_ARGUMENT
// "... reset the session first", changing nothing, when the session holds tokens.
// Why the default is off: on the golden fixtures (tiny random models that amplify rounding)
// bf16 K/V moves the moe fixture's BF16 logits 0.25 (max |diff| / max |ref|) from
// transformers' bf16-Linear-input reference (reference_bf16act.bin), which has fp32 K/V, and
// the median position 4.1e-2 from the CPU engine's BF16 (test_bf16_precision's bound: 1e-2).
#define G4_CUDA_KV_BF16_IN_BF16 false
void g4_cuda_session_kv_policy(struct g4_cuda_session *s, bool bf16_kv_in_bf16);

// CUDA graphs (kernels/README.md): steps of up to 8 tokens that do not return every position's
// logits replay a graph captured on first use per (precision, output, token count). On by
// default; off runs every step eagerly (the tests' reference). Counts are for tests and logs.
struct g4_cuda_graph_counts {
    uint64_t captured, capture_failed; // graphs made / capture attempts that fell back
    uint64_t replayed, eager;          // steps run as a graph replay / enqueued one by one
};
void g4_cuda_session_use_graphs(struct g4_cuda_session *s, bool on);
struct g4_cuda_graph_counts g4_cuda_session_graph_counts(const struct g4_cuda_session *s);

#ifdef __cplusplus
}
#endif

#endif
