// Element types of checkpoint tensors, and their conversion to fp32: the one place both the
// formats (which validate them) and the engines (which compute with them) take them from.
#ifndef G4_DTYPE_H
#define G4_DTYPE_H

#include <stddef.h>
#include <stdint.h>

// F32, F16 and BF16 are what the engines compute with; the other safetensors dtypes are parsed
// and validated (a multimodal checkpoint may hold them outside the text model) but
// g4_weights_bind refuses them for text-model tensors. The ggml block-quantized types (GGUF) come
// last: a row of n elements is n / g4_dtype_block(dt) blocks of g4_dtype_block_bytes(dt) bytes
// (layouts in qblock.h); the CPU engine takes them for matrices, kept quantized.
enum g4_dtype {
    G4_DTYPE_F32 = 0,
    G4_DTYPE_F16 = 1,
    G4_DTYPE_BF16 = 2,
    G4_DTYPE_F64,
    G4_DTYPE_I64,
    G4_DTYPE_I32,
    G4_DTYPE_I16,
    G4_DTYPE_I8,
    G4_DTYPE_U8,
    G4_DTYPE_BOOL,
    G4_DTYPE_F8_E4M3,
    G4_DTYPE_F8_E5M2,
    G4_DTYPE_SAFETENSORS_COUNT, // the safetensors dtypes are the ones before this
    G4_DTYPE_Q4_0 = G4_DTYPE_SAFETENSORS_COUNT, // ggml block types: 32 elements per block
    G4_DTYPE_Q5_0,
    G4_DTYPE_Q8_0,
    G4_DTYPE_Q4_K, // 256 elements per super-block
    G4_DTYPE_Q5_K,
    G4_DTYPE_Q6_K,
    G4_DTYPE_COUNT
};
// True for the dtypes g4_to_f32 converts (F32, F16, BF16).
#define G4_DTYPE_IS_FLOAT(dt) ((dt) == G4_DTYPE_F32 || (dt) == G4_DTYPE_F16 || (dt) == G4_DTYPE_BF16)

// True for the ggml block-quantized types.
#define G4_DTYPE_IS_QUANT(dt) ((dt) >= G4_DTYPE_Q4_0 && (dt) < G4_DTYPE_COUNT)

// Bytes per element (0 for an unknown value and for block types) and the name: the safetensors
// name ("F32", "BF16", ...), ggml's for block types ("Q4_K").
size_t g4_dtype_size(enum g4_dtype dt);
const char *g4_dtype_name(enum g4_dtype dt);
// Elements per block (1 for element types, 0 for an unknown value) and bytes per block.
int g4_dtype_block(enum g4_dtype dt);
size_t g4_dtype_block_bytes(enum g4_dtype dt);
// Bytes of a row of n elements; 0 when dt is unknown or n is not a whole number of blocks.
size_t g4_dtype_row_bytes(enum g4_dtype dt, int64_t n);

// Converts n elements of dtype at src to fp32; src is the start of a row (element 0 of a block
// for the block types, whose values are bit-identical to ggml's dequantize_row_*; a partial last
// block is read whole and cut). Any other dtype gives zeros (g4_weights_bind admits none).
void g4_to_f32(float *dst, const void *src, enum g4_dtype dtype, size_t n);

// IEEE half <-> single, exact one way and rounded to nearest even the other (as F16C's
// VCVTPH2PS / VCVTPS2PH; NaN stays NaN).
float g4_f16_to_f32(uint16_t h);
uint16_t g4_f32_to_f16(float f);

#endif
