// Element types of checkpoint tensors, and their conversion to fp32: the one place both the
// formats (which validate them) and the engines (which compute with them) take them from.
#ifndef G4_DTYPE_H
#define G4_DTYPE_H

#include <stddef.h>
#include <stdint.h>

// F32, F16 and BF16 are what the engines compute with; the other safetensors dtypes are parsed
// and validated (a multimodal checkpoint may hold them outside the text model) but
// g4_weights_bind refuses them for text-model tensors.
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
    G4_DTYPE_COUNT
};
// True for the dtypes g4_to_f32 converts (F32, F16, BF16).
#define G4_DTYPE_IS_FLOAT(dt) ((dt) == G4_DTYPE_F32 || (dt) == G4_DTYPE_F16 || (dt) == G4_DTYPE_BF16)

// Bytes per element (0 for an unknown value) and the safetensors name ("F32", "BF16", ...).
size_t g4_dtype_size(enum g4_dtype dt);
const char *g4_dtype_name(enum g4_dtype dt);

// Converts n elements of dtype at src to fp32.
void g4_to_f32(float *dst, const void *src, enum g4_dtype dtype, size_t n);

#endif
