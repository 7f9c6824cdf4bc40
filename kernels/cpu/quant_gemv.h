// The exact path's decode product: one token's fp32 activations against block-quantized rows,
// each block dequantized in registers (the values of g4_to_f32, not fused with anything) and
// multiplied into fp32 accumulators, so the weights stream through once with no buffer in
// between. Results equal a dequantize-then-fp32 product up to summation order.
#ifndef G4_QUANT_GEMV_H
#define G4_QUANT_GEMV_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"
#include "isa.h"

// out[r] = dot(dequantized row r of w, x) over k columns (whole blocks), r < nr; rows row_bytes
// apart.
typedef void (*g4_quant_gemv_fn)(float *out, const uint8_t *w, size_t row_bytes, int nr,
                                 const float *x, int64_t k);

// The kernel for block dtype dt at level isa; NULL where this file has none (the caller then
// dequantizes into a buffer for the fp32 tiles).
g4_quant_gemv_fn g4_quant_gemv_for(enum g4_dtype dt, enum g4_isa isa);

#endif
