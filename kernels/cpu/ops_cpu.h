// Reference math for the Gemma 4 and Gemma 3 decoders, in fp32. Two jobs: the CPU engine's building blocks and
// the oracle the CUDA kernels are tested against (there is no second copy in the tests).
// Each function names the transformers code it is equivalent to.
#ifndef G4_OPS_CPU_H
#define G4_OPS_CPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv_cache.h"
#include "weights.h"

// Gemma4RMSNorm: out = x * (mean(x^2) + eps)^-0.5 * w, per row; w == NULL: no scale (V norm,
// router norm). x: (n_rows, dim). out may alias x.
void g4_rmsnorm_cpu(float *out, const float *x, const float *w, int n_rows, int dim, float eps);

// apply_rotary_pos_emb (rotate-half convention: pair i is (x[i], x[i + head_dim/2])) to
// x (n_heads, head_dim) at position pos. Pairs >= n_rope_pairs have frequency 0 (identity), which
// is how transformers' "proportional" RoPE builds inv_freq; "default" RoPE rotates every pair.
// inv_freq[i] = 1 / theta^(2i / head_dim), computed in fp32 as transformers does.
void g4_rope_cpu(float *x, int n_heads, int head_dim, int n_rope_pairs, float theta, int64_t pos);
// The same with inv_freq[i] divided by `factor` (fp32, as _compute_linear_scaling_rope_parameters
// does: Gemma 3's linear RoPE on full layers); factor 1 is g4_rope_cpu exactly.
void g4_rope_factor_cpu(float *x, int n_heads, int head_dim, int n_rope_pairs, float theta,
                        float factor, int64_t pos);

// gelu_pytorch_tanh, in place.
void g4_gelu_tanh_cpu(float *x, size_t n);
// Final logit softcapping: x = cap * tanh(x / cap), in place (cap > 0).
void g4_softcap_cpu(float *x, size_t n, float cap);

// eager_attention_forward for one query token at position pos, query heads [h0, h1) of
// n_heads, scaling 1.0 (q/k norms replace 1/sqrt(d)), causal, GQA (query head h reads KV head
// h / (n_heads / n_kv_heads)), and for window > 0 the sliding mask of
// masking_utils.sliding_window_overlay: key j is visible iff pos - window < j <= pos.
// q, out: (n_heads, head_dim). scores: scratch of >= (h1 - h0) * (pos + 1) floats.
void g4_attention_cpu(float *out, const float *q, const struct g4_kv_view *kv, int64_t pos,
                      int n_heads, int h0, int h1, int window, float *scores);
// The same with scores = (q . k) * scale before the softmax (Gemma 3's eager_attention_forward,
// scaling = query_pre_attn_scalar^-0.5; Gemma 3 passes no softcap). scale 1 is g4_attention_cpu
// exactly.
void g4_attention_scaled_cpu(float *out, const float *q, const struct g4_kv_view *kv, int64_t pos,
                             int n_heads, int h0, int h1, int window, float scale, float *scores);

// Gemma4TextRouter: weights (top_k,) and experts (top_k,) for one token's residual x (hidden,).
// norm without scale -> * scale * hidden^-0.5 -> proj -> softmax -> top-k -> renormalise ->
// * per_expert_scale. probs: scratch (n_experts,).
void g4_moe_route_cpu(float *weights, int32_t *experts, const float *x, const float *scale,
                      struct g4_weight proj, const float *per_expert_scale, int hidden,
                      int n_experts, int top_k, float eps, float *normed, float *probs);

#endif
