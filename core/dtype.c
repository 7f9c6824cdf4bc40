// Element types and fp32 conversion; see dtype.h.
#include "dtype.h"

#include <string.h>

#include "status.h"

static const struct {
    const char *name;
    size_t size;  // bytes per element; per block for block types
    int block;    // elements per block (0 means 1)
} dtypes[] = {
    [G4_DTYPE_F32] = {"F32", 4, 0},     [G4_DTYPE_F16] = {"F16", 2, 0},   [G4_DTYPE_BF16] = {"BF16", 2, 0},
    [G4_DTYPE_F64] = {"F64", 8, 0},     [G4_DTYPE_I64] = {"I64", 8, 0},   [G4_DTYPE_I32] = {"I32", 4, 0},
    [G4_DTYPE_I16] = {"I16", 2, 0},     [G4_DTYPE_I8] = {"I8", 1, 0},     [G4_DTYPE_U8] = {"U8", 1, 0},
    [G4_DTYPE_BOOL] = {"BOOL", 1, 0},   [G4_DTYPE_F8_E4M3] = {"F8_E4M3", 1, 0},
    [G4_DTYPE_F8_E5M2] = {"F8_E5M2", 1, 0},
    // ggml's block layouts (ggml-common.h): Q4_0 = f16 d + 16 B nibbles; Q5_0 = d + 4 B high bits
    // + 16 B; Q8_0 = d + 32 int8; Q4_K = f16 d, dmin + 12 B scales + 128 B; Q5_K = Q4_K + 32 B
    // high bits; Q6_K = 128 B low + 64 B high + 16 int8 scales + f16 d.
    [G4_DTYPE_Q4_0] = {"Q4_0", 18, 32},  [G4_DTYPE_Q5_0] = {"Q5_0", 22, 32},
    [G4_DTYPE_Q8_0] = {"Q8_0", 34, 32},  [G4_DTYPE_Q4_K] = {"Q4_K", 144, 256},
    [G4_DTYPE_Q5_K] = {"Q5_K", 176, 256}, [G4_DTYPE_Q6_K] = {"Q6_K", 210, 256},
};

size_t g4_dtype_size(enum g4_dtype dt) {
    return (unsigned)dt < G4_COUNT(dtypes) && !dtypes[dt].block ? dtypes[dt].size : 0;
}

int g4_dtype_block(enum g4_dtype dt) {
    if ((unsigned)dt >= G4_COUNT(dtypes)) return 0;
    return dtypes[dt].block ? dtypes[dt].block : 1;
}

size_t g4_dtype_block_bytes(enum g4_dtype dt) {
    return (unsigned)dt < G4_COUNT(dtypes) ? dtypes[dt].size : 0;
}

size_t g4_dtype_row_bytes(enum g4_dtype dt, int64_t n) {
    const int b = g4_dtype_block(dt);
    if (b == 0 || n < 0 || n % b) return 0;
    return (size_t)(n / b) * g4_dtype_block_bytes(dt);
}

const char *g4_dtype_name(enum g4_dtype dt) {
    return (unsigned)dt < G4_COUNT(dtypes) ? dtypes[dt].name : "unknown";
}

static inline float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, u;
    if (exp == 0x1f) {
        u = sign | 0x7f800000u | (mant << 13);
    } else if (exp != 0) {
        u = sign | ((exp + 112) << 23) | (mant << 13);
    } else if (mant == 0) {
        u = sign;
    } else { // subnormal: normalise
        int e = -1;
        do {
            e++;
            mant <<= 1;
        } while (!(mant & 0x400));
        u = sign | ((uint32_t)(112 - e) << 23) | ((mant & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

void g4_to_f32(float *dst, const void *src, enum g4_dtype dtype, size_t n) {
    switch (dtype) {
    case G4_DTYPE_F32: memcpy(dst, src, n * sizeof(float)); break;
    case G4_DTYPE_BF16: {
        const uint16_t *s = src;
        for (size_t i = 0; i < n; i++) dst[i] = bf16_to_f32(s[i]);
        break;
    }
    case G4_DTYPE_F16: {
        const uint16_t *s = src;
        for (size_t i = 0; i < n; i++) dst[i] = f16_to_f32(s[i]);
        break;
    }
    default: // g4_weights_bind admits only the three float dtypes
        memset(dst, 0, n * sizeof(float));
        break;
    }
}

