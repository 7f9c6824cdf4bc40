// Row dequantization for the exact path's tiles (matmul_cpu.c): n elements (whole blocks) of a
// block-quantized row into fp32, vectorised per instruction-set level. Every level gives the
// values of g4_to_f32 (ggml's dequantize_row_*) bit for bit: the same float operations in the
// same order, never fused (this file is compiled with -ffp-contract=off).
#ifndef G4_QUANT_DEQUANT_H
#define G4_QUANT_DEQUANT_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"
#include "isa.h"

typedef void (*g4_quant_dequant_fn)(float *dst, const uint8_t *src, int64_t n);

// The dequantizer for block dtype dt at level isa (portable: g4_to_f32); NULL for other dtypes.
g4_quant_dequant_fn g4_quant_dequant_for(enum g4_dtype dt, enum g4_isa isa);

#endif
