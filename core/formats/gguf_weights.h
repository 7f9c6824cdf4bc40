// GGUF tensors presented to the one weight binder (weights.c) as the tensor table the
// safetensors path builds: each llama.cpp name translated to its transformers name
// (blk.N.attn_q.weight -> model.layers.N.self_attn.q_proj.weight, ...), each shape reversed (GGUF
// ne[0] is the contiguous dimension: ne = [cols, rows] is the (rows, cols) matrix, [H, 2I, E] the
// (E, 2I, H) expert tensor), data pointing into the GGUF mapping. So presence, dtype and shape are
// checked for GGUF exactly as for safetensors, by the same code. The converter's other transforms
// (llama.cpp conversion/gemma.py): gemma3 norm weights hold w + 1 (the table says so:
// norms_as_scales), token_embd drops the rows beyond the tokenizer's vocabulary (vocab_size is
// read from it, gguf_config.h), router.scale / per_expert_scale become ffn_gate_inp.scale /
// ffn_down_exps.scale, layer_scalar becomes layer_output_scale.weight; KV-shared layers carry no
// K/V tensors; rope_freqs.weight is read by gguf_config.c, not bound. Names the map does not know
// stay as they are, so the binder refuses them as unexpected.
#ifndef G4_GGUF_WEIGHTS_H
#define G4_GGUF_WEIGHTS_H

#include "config.h"
#include "gguf.h"
#include "safetensors.h"
#include "weights.h"

// Builds the table *st (zeroed first; no shards: the data stays in g's mapping, which must
// outlive st). G4_ERR_FORMAT when two GGUF names translate to one name. Free with
// g4_safetensors_free.
g4_status g4_gguf_weights_table(struct g4_safetensors *st, const struct g4_gguf *g, const char *what);

// g4_weights_bind on such a table, with error messages naming the GGUF tensors
// ("missing tensor blk.3.attn_v.weight" rather than its transformers name).
g4_status g4_gguf_weights_bind(struct g4_weights *w, const struct g4_config *cfg,
                               const struct g4_safetensors *st, const char *what);

// The GGUF name of a transformers name of the table ("lm_head.weight" -> "output.weight"); false
// (out untouched) for names the map does not know.
bool g4_gguf_weights_gguf_name(const char *hf, char *out, size_t cap);

#endif
