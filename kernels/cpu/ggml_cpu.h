// The operations of llama.cpp's CPU backend (ggml) other than the matrix products, with ggml's
// numerics, for the GEMMA4_PRECISION_BF16 path on block-quantized models (whose products are
// ggml's already: quant_dot.h). On Gemma 3 270M Q4_K_M each differed from ggml by more than the
// 8-bit activations of the next product forgive (tests/real/README.md).
//
// Attention with the numerics of ggml's CPU flash attention (llama.cpp's default on the CPU,
// ggml_compute_forward_flash_attn_ext_f16_one_chunk), for the GEMMA4_PRECISION_BF16 path on
// block-quantized models: the K/V cache holds fp16 values, each query row is rounded to fp16,
// each score is an fp32 dot product in ggml's order (4 x 16 lanes, then ggml's reduction), and
// the softmax runs online over the keys in position order with the value sum kept in fp16: on
// CPUs with AVX512-FP16 (where llama.cpp's native build uses it) by fp16 fused multiply-adds with
// each softmax weight rounded to fp16, elsewhere by fp32 fused multiply-adds stored back to fp16
// (ggml's F32Cx16 path); the sum of the weights in fp32. Measured on Gemma 3 270M Q4_K_M against
// llama-cpp-python 0.3.36: attention outputs 1.2e-7 RMS relative from llama.cpp's given the
// same Q/K/V (an fp32 softmax: 4.5e-4), see tests/real/README.md.
#ifndef G4_GGML_CPU_H
#define G4_GGML_CPU_H

#include <stddef.h>
#include <stdint.h>

#include "kv_cache.h"

// Largest head dimension g4_ggml_cpu_attention takes.
#define G4_GGML_CPU_MAX_HEAD_DIM 1024

// Rounds n values to their nearest fp16 values (ties to even), kept as fp32: what ggml's f16 K/V
// cache stores.
void g4_ggml_cpu_round_f16(float *x, int64_t n);

// out[h] for heads h0 <= h < h1 of one query row at position pos, as g4_attention_scaled_cpu
// (ops_cpu.h) computes it, with the numerics above; kv rows must hold fp16 values
// (g4_ggml_cpu_round_f16). head_dim <= G4_GGML_CPU_MAX_HEAD_DIM.
void g4_ggml_cpu_attention(float *out, const float *q, const struct g4_kv_view *kv, int64_t pos,
                  int n_heads, int h0, int h1, int window, float scale);

// RMSNorm as ggml_compute_forward_rms_norm_f32 then its MUL by w (w NULL: none): the squares
// summed in double, scale = 1 / sqrtf(mean + eps), out = x * scale * w.
void g4_ggml_cpu_rmsnorm(float *out, const float *x, const float *w, int n_rows, int dim, float eps);

// Rotate-half (NeoX) RoPE of every pair of n_heads heads as ggml's rope cache and rotate_pairs
// compute it: the angle of pair i is pos * theta^(-2i / head_dim), a running product in fp32,
// times 1 / factor; each output one fused multiply-add (as ggml's -march=native build contracts
// x0 * cos - x1 * sin and x0 * sin + x1 * cos).
void g4_ggml_cpu_rope(float *x, int n_heads, int head_dim, float theta, float factor, int64_t pos);

// x[i] = gelu_tanh(x[i]) * g[i] as ggml_vec_geglu_f32 computes it: x rounded to fp16 and looked
// up in a table of fp16 values of ggml's tanh formula, times g in fp32; x <= -10 gives 0 and
// x >= 10 gives x * g.
void g4_ggml_cpu_geglu(float *x, const float *g, size_t n);

#endif
