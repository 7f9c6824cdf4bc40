// Prompt products of GEMMA4_PRECISION_BF16 on block-quantized weights on AMX-INT8 tiles (Sapphire
// Rapids and later): the weights' integer quants (Q8_0 as stored, Q4_K's nibbles, Q6_K's 6-bit
// values less 32) times the activations' 8-bit quants (quant_act.h), one block or sub-block of
// K per tile product (TDPBSSD / TDPBUSD: 16 weight rows x 16 tokens, exact int32 sums), then
// each sum scaled in fp32 by the weight's and the activation's scales and added up. So the
// result is the exact value of the 8-bit products (what the integer dot products compute) up to
// fp32 rounding, like the fp32-tile route it replaces, at about ten times its rate.
//
// Use: g4_quant_amx_usable says whether it applies; then the activations, quantized to int8
// rows (g4_quant_act_rows), are packed once per input by g4_quant_amx_pack (B tiles in VNNI
// order, 16 tokens per group, with the tokens' scales as vectors), and g4_quant_amx_matmul runs
// any number of products on that packing.
#ifndef G4_QUANT_AMX_H
#define G4_QUANT_AMX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtype.h"

struct g4_pool;

enum { G4_QUANT_AMX_MIN_TOKENS = 16 };

// Whether n tokens against a dt matrix of k columns run here: the CPU has AMX-INT8 and the
// kernel granted the tile state (g4_matmul_has_amx, which also honours g4_matmul_limit_isa and
// g4_matmul_allow_amx), dt is Q8_0, Q4_K or Q6_K, and n >= G4_QUANT_AMX_MIN_TOKENS.
bool g4_quant_amx_usable(enum g4_dtype dt, int64_t k, int n);

// Bytes g4_quant_amx_pack writes for n tokens of k columns quantized for dt.
size_t g4_quant_amx_pack_bytes(enum g4_dtype dt, int64_t k, int n);

// xq: n rows quantized for dt (g4_quant_act_rows, G4_QUANT_ACT_LD(k) bytes apart); xp: room for
// g4_quant_amx_pack_bytes, 64-byte aligned.
void g4_quant_amx_pack(uint8_t *xp, const uint8_t *xq, enum g4_dtype dt, int64_t k, int n,
                       struct g4_pool *pool);

// out (n, rows) = w (rows, k; dt) . x^T from xp (g4_quant_amx_pack of the same dt, k, n). Only
// after g4_quant_amx_usable(dt, k, n).
void g4_quant_amx_matmul(float *out, const uint8_t *xp, const void *w, enum g4_dtype dt,
                         int64_t rows, int64_t k, int n, struct g4_pool *pool);

#endif
