// Matrix products of activations (fp32) with checkpoint-dtype weights (f32, bf16, f16, and the
// ggml block types), the bulk of the CPU engine's time. Weights stay where they are (usually the
// read-only mapping) and are converted to fp32 in registers (block types: a slice at a time
// into an L1/L2 buffer); accumulation is fp32, so results equal the fp32 reference on the
// dequantized weights up to summation order. Kernels: AVX-512, AVX2/FMA/F16C (each chosen at run time when the CPU
// has it) and portable C, all behind one cache-blocked driver.
#ifndef G4_MATMUL_CPU_H
#define G4_MATMUL_CPU_H

#include <stdbool.h>
#include <stdint.h>

#include "isa.h"
#include "threadpool.h"
#include "weights.h"

// nn.Linear without bias: out (n_tokens, w.rows) = x (n_tokens, w.cols) @ w^T, fp32 accumulate.
// Output rows are split across pool (NULL: calling thread only). No allocation.
void g4_matmul_cpu(float *out, const float *x, struct g4_weight w, int n_tokens,
                   struct g4_pool *pool);

// g4_matmul_cpu with a scratch buffer: with AMX-BF16 (g4_matmul_has_amx) and bf16 weights, 16
// tokens or more run on AMX tiles with each activation split exactly into three bf16 values
// (hi + mid + lo = x; exact products, fp32 sums: the fp32 reference up to summation order, as
// the FMA tiles) when scratch_bytes >= G4_AMX_SCRATCH_BYTES(n_tokens, w.cols); otherwise, and
// everywhere else, g4_matmul_cpu.
#define G4_AMX_SCRATCH_BYTES(n, cols) ((size_t)3 * (((n) + 15) / 16 * 16) * (((cols) + 31) / 32 * 32) * 2)
void g4_matmul_cpu_scratch(float *out, const float *x, struct g4_weight w, int n_tokens,
                           struct g4_pool *pool, void *scratch, size_t scratch_bytes);

// The same product on the calling thread for fp32 rows spaced row_stride floats apart (e.g. the
// K rows of one KV head in a cache): out[t * ldo + r] = dot(rows + r * row_stride, x + t * ldx)
// over k columns, for t < n, r < n_rows.
void g4_matmul_rows_f32(float *out, int64_t ldo, const float *x, int64_t ldx, int n,
                        const float *rows, int64_t row_stride, int64_t n_rows, int64_t k);

// GEMMA4_PRECISION_BF16 products: as g4_matmul_cpu, but x is first rounded to bf16 (to
// nearest even) when w is bf16; other dtypes go to g4_matmul_cpu unchanged. scratch: room for
// n_tokens * G4_BF16ACT_LD(w.cols) floats. With AVX512_BF16 the products run on VDPBF16PS (bf16 pairs, fp32
// accumulation); elsewhere the rounded values go through the fp32 kernels, so every CPU computes
// the same products up to summation order.
#define G4_BF16ACT_LD(cols) (((cols) + 31) / 32 * 32 + 32)
void g4_matmul_cpu_bf16act(float *out, const float *x, struct g4_weight w, int n_tokens,
                           struct g4_pool *pool, void *scratch);
// GEMMA4_PRECISION_BF16 products on block-quantized weights (llama.cpp's numerics): x is
// quantized to 8 bits per block (Q8_0 for Q4_0/Q5_0/Q8_0 weights, Q8_K for the K-quants, see
// quant_act.h), then multiplied with w: for 1 to 3 tokens (decode) by integer dot products
// (quant_dot.h) on the best level this CPU has; for more (prompts) through the exact path's
// fp32 tiles on the 8-bit values q * d, which gives the same products up to fp32 rounding and is
// faster there. scratch: room for n_tokens * G4_BF16ACT_LD(w.cols) floats (which covers both
// forms). Other dtypes go to g4_matmul_cpu_bf16act.
void g4_matmul_cpu_q8act(float *out, const float *x, struct g4_weight w, int n_tokens,
                         struct g4_pool *pool, void *scratch);
// Its two halves, so that several products on one input quantize it once: g4_matmul_quantize
// writes x quantized for w's dtype into xq; g4_matmul_cpu_q8 computes out from it (w a block
// type, the same n_tokens).
void g4_matmul_quantize(void *xq, const float *x, struct g4_weight w, int n_tokens,
                        struct g4_pool *pool);
void g4_matmul_cpu_q8(float *out, const void *xq, struct g4_weight w, int n_tokens,
                      struct g4_pool *pool);

// f rounded to bf16 bits, to nearest even; NaN stays NaN.
uint16_t g4_bf16_round(float f);

// The best level this CPU has, within the limit set by g4_matmul_limit_isa (tests use it to
// compare each kernel with portable C).
enum g4_isa g4_matmul_isa(void);
void g4_matmul_limit_isa(enum g4_isa max);
// Whether g4_matmul_cpu_bf16act may use AMX-BF16 tiles for prompts (16 tokens or more) where the
// CPU and the kernel allow them (default: yes; tests turn it off to test the VDPBF16PS tile),
// and whether it does on this machine now.
void g4_matmul_allow_amx(bool allow);
bool g4_matmul_has_amx(void);

#endif
