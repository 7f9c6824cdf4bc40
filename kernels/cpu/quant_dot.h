// Integer dot products of block-quantized weight rows with 8-bit quantized activation rows
// (quant_act.h), llama.cpp's numerics (ggml's ggml_vec_dot_<type>_q8_<0|K>): per block the
// integer sum is exact, then scaled by the weight's and the activation's scales in fp32 and
// summed; only that fp32 summation order differs between the kernels (portable C, AVX2,
// AVX-512 VNNI) and from ggml.
#ifndef G4_QUANT_DOT_H
#define G4_QUANT_DOT_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"
#include "isa.h"

// out[r] = dot(row r of w, xq) for r < nr, over k columns; w rows row_bytes apart, xq one
// quantized activation row of the type g4_quant_act_type_for(dt).
typedef void (*g4_quant_dot_fn)(float *out, const uint8_t *w, size_t row_bytes, int nr,
                                const uint8_t *xq, int64_t k);

// The kernel for weight dtype dt at instruction-set level isa (the best one this file has at or
// below it); NULL for non-block dtypes.
g4_quant_dot_fn g4_quant_dot_for(enum g4_dtype dt, enum g4_isa isa);

// The kernel summing in ggml's own fp32 order (its x86 build: quant_dot_x86.inc), so that each
// result equals ggml's bit for bit for Q4_0, Q5_0, Q8_0 (ggml_vec_dot / llamafile order), Q4_K
// (its repacked q4_K_8x8 order) and Q6_K; Q5_K takes g4_quant_dot_for's kernel. Below AVX2 the
// portable kernel (not ggml's order).
g4_quant_dot_fn g4_quant_dot_ggml_for(enum g4_dtype dt, enum g4_isa isa);

struct g4_pool;
// out (n, rows) = w (rows, k) . xq (n quantized activation rows, G4_QUANT_ACT_LD(k) bytes apart)
// with the g4_quant_dot_ggml_for kernel for every token (no fp32 tiles): llama.cpp's numerics
// at any n. Rows split across the pool.
void g4_quant_dot_ggml_matmul(float *out, const uint8_t *xq, const void *w, enum g4_dtype dt,
                              int64_t rows, int64_t k, int n, enum g4_isa isa, struct g4_pool *pool);

#endif
