// Activations quantized to 8 bits per block for the integer dot products of the
// GEMMA4_PRECISION_BF16 path on block-quantized weights (llama.cpp's numerics: ggml's
// vec_dot_type). Q8_0: one scale per 32 values, rounded to fp16 as ggml stores it, for Q4_0, Q5_0
// and Q8_0 weights; Q8_K: one fp32 scale per 256 values and the sums of each 16, for Q4_K, Q5_K
// and Q6_K weights. The values equal what ggml's x86 build computes (quantize_row_q8_0 as its
// AVX2 code does it, quantize_row_q8_K_ref), bit for bit.
//
// A quantized row of K values (K a multiple of the block) lies in G4_QUANT_ACT_LD(K) bytes:
// int8 qs[K] | float d[K / block] | Q8_K only: int16 bsums[K / 16]; rows are 64-byte aligned
// when the buffer is.
#ifndef G4_QUANT_ACT_H
#define G4_QUANT_ACT_H

#include <stdint.h>

#include "dtype.h"

enum g4_quant_act_type { G4_QUANT_ACT_NONE = 0, G4_QUANT_ACT_Q8_0, G4_QUANT_ACT_Q8_K };

// The activation type a weight dtype's dot products take (NONE for the float dtypes).
enum g4_quant_act_type g4_quant_act_type_for(enum g4_dtype w);

// Bytes per quantized row: enough for either type, rounded up to 64.
#define G4_QUANT_ACT_LD(k) ((((int64_t)(k) + (int64_t)(k) / 8 + (int64_t)(k) / 8 + 8) + 63) / 64 * 64)

// Quantizes n rows of k floats (x rows ldx floats apart) into dst (rows G4_QUANT_ACT_LD(k)
// bytes apart).
void g4_quant_act_rows(uint8_t *dst, enum g4_quant_act_type type, const float *x, int64_t ldx,
                       int n, int64_t k);

// The same quantization as fp32 values q * d (rows k floats apart in dst): what the integer
// products see, for products that run on the fp32 tiles instead (prompts, see matmul_cpu.h).
void g4_quant_act_round_rows(float *dst, enum g4_quant_act_type type, const float *x, int64_t ldx,
                             int n, int64_t k);

// The parts of a quantized row.
static inline const int8_t *g4_quant_act_qs(const uint8_t *row) { return (const int8_t *)row; }
static inline const float *g4_quant_act_d(const uint8_t *row, int64_t k) {
    return (const float *)(const void *)(row + k);
}
static inline const int16_t *g4_quant_act_bsums(const uint8_t *row, int64_t k) {
    return (const int16_t *)(const void *)(row + k + k / 256 * 4);
}

#endif
