// Element types and fp32 conversion; see dtype.h.
#include "dtype.h"

#include <string.h>

#include "status.h"

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    [G4_DTYPE_F32] = {"F32", 4},     [G4_DTYPE_F16] = {"F16", 2},   [G4_DTYPE_BF16] = {"BF16", 2},
    [G4_DTYPE_F64] = {"F64", 8},     [G4_DTYPE_I64] = {"I64", 8},   [G4_DTYPE_I32] = {"I32", 4},
    [G4_DTYPE_I16] = {"I16", 2},     [G4_DTYPE_I8] = {"I8", 1},     [G4_DTYPE_U8] = {"U8", 1},
    [G4_DTYPE_BOOL] = {"BOOL", 1},   [G4_DTYPE_F8_E4M3] = {"F8_E4M3", 1},
    [G4_DTYPE_F8_E5M2] = {"F8_E5M2", 1},
};

size_t g4_dtype_size(enum g4_dtype dt) {
    return (unsigned)dt < G4_COUNT(dtypes) ? dtypes[dt].size : 0;
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

