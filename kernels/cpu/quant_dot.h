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

#endif
