// struct g4_config from the metadata (and a few tensor shapes) of a GGUF file of architecture
// "gemma4" or "gemma3", read as llama.cpp reads them (src/models/gemma4.cpp, gemma3.cpp) and as
// its converter (conversion/gemma.py) writes them from the HF config:
//   <arch>.block_count, .embedding_length, .context_length, .feed_forward_length (scalar or one
//   per layer: gemma4's double-wide MLP), .attention.head_count, .attention.head_count_kv (scalar
//   or per layer: gemma4's full-layer KV heads), .attention.key_length / value_length (gemma4:
//   the full layers' head dim) and _swa (gemma4: sliding layers'), .attention.layer_norm_rms_epsilon,
//   .attention.sliding_window, .attention.sliding_window_pattern (gemma4: one bool per layer,
//   true = sliding; gemma3: bool array or period, absent: 6, i.e. every 6th layer full),
//   .rope.freq_base (full layers) and .rope.freq_base_swa (sliding; absent: 10000),
//   .rope.dimension_count(_swa) (checked: gemma4 rotates whole sliding heads and marks the full
//   layers' frozen pairs in rope_freqs; gemma3 rotates whole heads), .rope.scaling.type/.factor
//   (gemma3 full layers: linear), .attention.shared_kv_layers, .embedding_length_per_layer_input,
//   .final_logit_softcapping, .expert_count, .expert_used_count, .expert_feed_forward_length,
//   tokenizer.ggml.bos/eos/eot/eom/padding_token_id (end of generation also on the tokens
//   <eos>, <end_of_turn>, <turn|> of tokenizer.ggml.tokens, as llama.cpp).
// From tensors: vocab_size = token_embd rows (the converter drops the padding rows beyond the
// tokenizer's), tie_word_embeddings = no `output` tensor, vocab_size_per_layer_input =
// per_layer_token_embd rows, attention_k_eq_v = the full layers that write K/V have no attn_v,
// and gemma4's proportional RoPE: `rope_freqs` holds 1.0 for each rotating frequency pair and
// 1e30 for each frozen one; its count of 1.0s is n_rope_pairs, checked against the config rule
// n_rope_pairs = floor(partial_rotary_factor * head_dim / 2) with 0 < partial_rotary_factor <= 1.
// KV sharing (gemma4's shared_kv_layers) follows transformers' rule, as for config.json: a shared
// layer reads the last non-shared layer of its own attention type. llama.cpp instead reads layer
// n_kv - 1 (full) or n_kv - 2 (sliding) of the n_kv layers that own K/V; the two agree on the
// released E2B/E4B layouts but not on every file (tests/golden/e2b's S S S F S | S S F: llama.cpp
// would give its full shared layer the sliding layer 4's K/V, transformers layer 3's).
// Not in GGUF: Gemma 3's query_pre_attn_scalar (llama.cpp: head_dim, hidden / heads for the
// 62-layer 27B, as the released configs hold).
#ifndef G4_GGUF_CONFIG_H
#define G4_GGUF_CONFIG_H

#include "config.h"
#include "gguf.h"

// Fills *cfg (zeroed first) from g and finishes it with g4_config_finish. Errors name the key or
// tensor: G4_ERR_FORMAT for a missing required key or one of the wrong type or length,
// G4_ERR_CONFIG for values out of range, G4_ERR_UNSUPPORTED for other architectures and settings
// gemma4 does not implement (rope_freqs not of the 1 / 1e30 form, other RoPE scaling, partial
// rotation of sliding heads, key_length != value_length). `what` names the file in messages.
g4_status g4_gguf_config_load(struct g4_config *cfg, const struct g4_gguf *g, const char *what);

#endif
