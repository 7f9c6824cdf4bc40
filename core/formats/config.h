// Model configuration: config.json (a Gemma4TextConfig or Gemma3TextConfig, or a multimodal
// Gemma4Config / Gemma3Config whose "text_config" holds one) parsed into struct g4_config, plus the
// per-layer table that decides the layer structure once: attention kind, head dim, KV heads, RoPE,
// window, KV slot and sharing, MLP width, MoE. The forward passes and kernels read this table and
// re-derive nothing. Field names are the exact Hugging Face config keys; absent keys take
// transformers' defaults of the architecture at hand (Gemma 3 and Gemma 4 defaults differ).
#ifndef G4_CONFIG_H
#define G4_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define G4_MAX_LAYERS 256
#define G4_MAX_EOS 8

// Which decoder the checkpoint holds. Gemma 3 differs from Gemma 4 only in fields of this struct
// (attn_scale, rope_factor, no v norm, no layer scalar/PLE/KV sharing/MoE);
// the norm weights' (1 + w) is folded into the fp32 vectors at bind time (see weights.h).
enum g4_arch { G4_ARCH_GEMMA4 = 0, G4_ARCH_GEMMA3 = 1 };

// DEFAULT: every pair rotates, inv_freq[i] = theta^(-2i/head_dim). PROPORTIONAL (Gemma 4 full
// layers): the first n_rope_pairs rotate, the rest are identity. LINEAR (Gemma 3 full layers of
// 4B+): DEFAULT with inv_freq divided by rope_factor.
enum g4_rope_type { G4_ROPE_DEFAULT = 0, G4_ROPE_PROPORTIONAL = 1, G4_ROPE_LINEAR = 2 };

struct g4_layer {
    bool is_sliding;        // layer_types[i] == "sliding_attention"
    int head_dim;           // head_dim (sliding) or global_head_dim (full)
    int n_kv_heads;         // num_key_value_heads, or num_global_key_value_heads on full k_eq_v layers
    int window;             // sliding_window for sliding layers, 0 for full layers
    enum g4_rope_type rope_type;
    float rope_theta;
    int n_rope_pairs;       // frequency pairs that rotate; pairs n_rope_pairs..head_dim/2-1 are identity
    float rope_factor;      // inverse frequencies are divided by this (LINEAR's factor); 1 otherwise
    bool k_eq_v;            // full layer of an attention_k_eq_v model: V comes from k_proj, no v_proj
    bool writes_kv;         // false for the trailing num_kv_shared_layers layers
    int kv_slot;            // cache slot this layer reads (its own, or its donor's when shared)
    int kv_donor;           // layer that writes kv_slot (== own index when writes_kv)
    int intermediate_size;  // dense MLP width (doubled on shared layers with use_double_wide_mlp)
};

struct g4_kv_slot_info {
    int layer;              // the layer that writes this slot
    bool is_sliding;
    int head_dim;
    int n_kv_heads;
    int window;             // ring capacity for sliding slots, 0 for full (linear, n_ctx rows)
};

struct g4_config {
    enum g4_arch arch;      // model_type gemma4_text / gemma4 or gemma3_text / gemma3

    // Exact HF keys (text config).
    int vocab_size;
    int hidden_size;
    int intermediate_size;
    int num_hidden_layers;
    int num_attention_heads;
    int num_key_value_heads;
    int head_dim;
    int global_head_dim;
    int num_global_key_value_heads; // 0 when absent
    int max_position_embeddings;
    int sliding_window;
    int vocab_size_per_layer_input;
    int hidden_size_per_layer_input; // 0: no per-layer embeddings (PLE)
    int num_kv_shared_layers;
    int num_experts;
    int top_k_experts;
    int moe_intermediate_size;
    float rms_norm_eps;
    float final_logit_softcapping;  // 0: none
    float query_pre_attn_scalar;    // Gemma 3 (default 256); 0 for Gemma 4, which has none
    bool attention_k_eq_v;
    bool enable_moe_block;
    bool use_double_wide_mlp;
    bool tie_word_embeddings;       // of a multimodal config: the top level's, as transformers ties
    int bos_token_id;
    int pad_token_id;
    int eos_token_id[G4_MAX_EOS];
    int n_eos;

    // Derived.
    float attn_scale;        // attention score scale: 1.0 (Gemma 4: q/k norms replace 1/sqrt(d)),
                             // query_pre_attn_scalar^-0.5 (Gemma 3)
    bool v_norm;             // Gemma 4: weightless RMSNorm over V's head_dim; Gemma 3: none
    bool is_multimodal;      // config.json was a Gemma4Config / Gemma3Config with text_config
    const char *variant;     // "e2b", "e4b", "26b-a4b", "31b" when the shapes match a release, else
                             // "custom"; Gemma 3: "gemma3-270m", "gemma3-1b", "gemma3-4b",
                             // "gemma3-12b", "gemma3-27b", else "gemma3-custom"
    int chat_format;         // enum g4_chat_format (chat.h): GEMMA3 for Gemma 3, else GEMMA4
    int chat_gen_prompt;     // G4_CHAT_GEN_PROMPT*: the 26B-A4B/31B templates open the model turn
                             // with an empty thought channel, the others do not
    struct g4_layer layer[G4_MAX_LAYERS];
    int n_kv_slots;
    struct g4_kv_slot_info slot[G4_MAX_LAYERS];
};

// Parses config.json text (`n` bytes). `what` names the file in messages. G4_ERR_FORMAT for
// malformed JSON or wrong value types, G4_ERR_CONFIG for values out of range or inconsistent,
// G4_ERR_UNSUPPORTED for valid settings we do not implement (attention_bias, other activations,
// bidirectional attention, unknown rope types, other model types).
// Gemma 3 (Gemma3TextConfig): layer_types, or every sliding_window_pattern-th (default 6) layer
// full (the last layer is NOT forced full, unlike Gemma 4); RoPE from rope_parameters
// {"full_attention", "sliding_attention"} or the legacy rope_theta (full, default 1e6),
// rope_local_base_freq (sliding, default 1e4) and rope_scaling (applied to full layers only);
// rope types "default" and "linear". attn_logit_softcapping is type-checked and ignored, as
// transformers does: Gemma3Attention stores it but never passes it to the attention (5.23; the
// released configs have null, and llama.cpp's gemma3 has no attention softcap either).
g4_status g4_config_parse(struct g4_config *cfg, const char *json, size_t n, const char *what);
// Reads and parses dir/config.json.
g4_status g4_config_load(struct g4_config *cfg, const char *dir);

// The derived part, for configs filled from elsewhere (GGUF metadata): given the HF-named fields
// above and layer[].is_sliding / head_dim / n_kv_heads / intermediate_size / rope_* / window,
// validates every value, builds the KV-slot table and sets attn_scale, v_norm, variant,
// chat_format and chat_gen_prompt. g4_config_parse ends with this.
g4_status g4_config_finish(struct g4_config *cfg, const char *what);

// Bytes of K+V cache for one sequence of n_ctx positions at elem_bytes per element: full slots
// hold n_ctx rows, sliding slots min(window, n_ctx) rows, shared layers nothing.
size_t g4_config_kv_bytes(const struct g4_config *cfg, int64_t n_ctx, size_t elem_bytes);

#endif
