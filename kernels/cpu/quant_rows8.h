// Eight weight rows at a time against one 8-bit activation row, AVX-512 VNNI: the decode
// kernels of the fast path on block-quantized weights. Each result equals, bit for bit, what
// g4_quant_dot_ggml_for(dt, G4_ISA_AVX512VNNI) computes for that row (ggml's fp32 order), so
// they replace it wherever it serves one token; they are faster because the activation's
// blocks are loaded and arranged once for eight rows, the rows' integer sums are reduced
// across rows in vectors, and the fp32 steps run eight rows per instruction.
//
// A kernel takes nr <= 8 rows (row_bytes apart) and k columns, like g4_quant_dot_fn; for nr < 8
// it runs the one-row ggml-order kernel. Two files, one per block family:
//   quant_rows8_0.c  Q4_0, Q5_0, Q8_0 (32-element blocks, fp16 scale)
//   quant_rows8_k.c  Q4_K, Q6_K (256-element super-blocks)
#ifndef G4_QUANT_ROWS8_H
#define G4_QUANT_ROWS8_H

#include "dtype.h"
#include "isa.h"
#include "quant_dot.h"

// The 8-row kernel for dt at isa, or NULL where there is none (below AVX-512 VNNI, other
// dtypes, non-x86 builds): then g4_quant_dot_ggml_for's kernel serves.
g4_quant_dot_fn g4_quant_rows8_0_for(enum g4_dtype dt, enum g4_isa isa);
g4_quant_dot_fn g4_quant_rows8_k_for(enum g4_dtype dt, enum g4_isa isa);

static inline g4_quant_dot_fn g4_quant_rows8_for(enum g4_dtype dt, enum g4_isa isa) {
    const g4_quant_dot_fn f = g4_quant_rows8_0_for(dt, isa);
    return f ? f : g4_quant_rows8_k_for(dt, isa);
}

#endif
