// Element types and fp32 conversion; see dtype.h.
#include "dtype.h"

#include <stdbool.h>
#include <string.h>

#include "qblock.h"
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

float g4_f16_to_f32(uint16_t h) {
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

uint16_t g4_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    const uint32_t sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu)); // NaN: quiet
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); // rounds past 65504: inf
    if (a < 0x38800000u) { // below 2^-14: subnormal (or zero) in f16
        if (a < 0x33000000u) return (uint16_t)sign; // below half the smallest subnormal
        const uint32_t mant = (a & 0x7fffffu) | 0x800000u, shift = 126u - (a >> 23);
        // mant * 2^(E - 150) in units of the f16 subnormal 2^-24 is mant >> (126 - E), E in
        // [102, 112]; round the dropped bits to nearest even (rounding up to 0x400 gives the
        // smallest normal, as it should)
        const uint32_t q = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        return (uint16_t)(sign | (q + (rem > half || (rem == half && (q & 1)))));
    }
    // normal: rebias the exponent, round the 13 dropped bits to nearest even (a carry into the
    // exponent is the right answer)
    const uint32_t r = a + 0xfffu + ((a >> 13) & 1u);
    return (uint16_t)(sign | ((r - 0x38000000u) >> 13));
}

// ggml's dequantize_row_* (ggml-quants.c) one block at a time, with the same float operations in
// the same order (products are not fused: this file is compiled without FMA), so the values are
// bit-identical to ggml's and to the gguf package's.
static void dequant_block(float *y, const uint8_t *b, enum g4_dtype dt) {
    switch (dt) {
    case G4_DTYPE_Q4_0: {
        const float d = g4_f16_to_f32(g4_qblock_u16(b));
        for (int j = 0; j < 16; j++) {
            y[j] = (float)((b[2 + j] & 0xF) - 8) * d;
            y[j + 16] = (float)((b[2 + j] >> 4) - 8) * d;
        }
        break;
    }
    case G4_DTYPE_Q5_0: {
        const float d = g4_f16_to_f32(g4_qblock_u16(b));
        const uint32_t qh = g4_qblock_u32(b + 2);
        for (int j = 0; j < 16; j++) {
            const int h0 = (int)((qh >> j) & 1) << 4, h1 = (int)((qh >> (j + 16)) & 1) << 4;
            y[j] = (float)(((b[6 + j] & 0xF) | h0) - 16) * d;
            y[j + 16] = (float)(((b[6 + j] >> 4) | h1) - 16) * d;
        }
        break;
    }
    case G4_DTYPE_Q8_0: {
        const float d = g4_f16_to_f32(g4_qblock_u16(b));
        for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)b[2 + j] * d;
        break;
    }
    case G4_DTYPE_Q4_K:
    case G4_DTYPE_Q5_K: {
        const float d = g4_f16_to_f32(g4_qblock_u16(b)), dmin = g4_f16_to_f32(g4_qblock_u16(b + 2));
        uint8_t sc[8], m[8];
        g4_qblock_k4_scales(b + G4_QBLOCK_K_SCALES, sc, m);
        const bool five = dt == G4_DTYPE_Q5_K;
        const uint8_t *qs = b + (five ? G4_QBLOCK_Q5_K_QS : G4_QBLOCK_Q4_K_QS), *qh = b + G4_QBLOCK_Q5_K_QH;
        for (int c = 0; c < 4; c++) {
            const float d1 = d * sc[2 * c], m1 = dmin * m[2 * c];
            const float d2 = d * sc[2 * c + 1], m2 = dmin * m[2 * c + 1];
            for (int l = 0; l < 32; l++) {
                const int h1 = five && (qh[l] >> (2 * c) & 1) ? 16 : 0;
                const int h2 = five && (qh[l] >> (2 * c + 1) & 1) ? 16 : 0;
                y[64 * c + l] = d1 * (float)((qs[32 * c + l] & 0xF) + h1) - m1;
                y[64 * c + 32 + l] = d2 * (float)((qs[32 * c + l] >> 4) + h2) - m2;
            }
        }
        break;
    }
    case G4_DTYPE_Q6_K: {
        const float d = g4_f16_to_f32(g4_qblock_u16(b + G4_QBLOCK_Q6_K_D));
        const uint8_t *ql = b, *qh = b + G4_QBLOCK_Q6_K_QH;
        const int8_t *sc = (const int8_t *)(b + G4_QBLOCK_Q6_K_SCALES);
        for (int n = 0; n < 256; n += 128, ql += 64, qh += 32, sc += 8)
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xF) | ((qh[l] >> 0 & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | ((qh[l] >> 2 & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | ((qh[l] >> 4 & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6 & 3) << 4)) - 32;
                y[n + l] = d * (float)sc[is] * (float)q1;
                y[n + l + 32] = d * (float)sc[is + 2] * (float)q2;
                y[n + l + 64] = d * (float)sc[is + 4] * (float)q3;
                y[n + l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
        break;
    }
    default: break;
    }
}

void g4_to_f32(float *dst, const void *src, enum g4_dtype dtype, size_t n) {
    switch (dtype) {
    case G4_DTYPE_F32: memcpy(dst, src, n * sizeof(float)); return;
    case G4_DTYPE_BF16: {
        const uint16_t *s = src;
        for (size_t i = 0; i < n; i++) dst[i] = bf16_to_f32(s[i]);
        return;
    }
    case G4_DTYPE_F16: {
        const uint16_t *s = src;
        for (size_t i = 0; i < n; i++) dst[i] = g4_f16_to_f32(s[i]);
        return;
    }
    default: break;
    }
    if (!G4_DTYPE_IS_QUANT(dtype)) { // g4_weights_bind admits no other dtype
        memset(dst, 0, n * sizeof(float));
        return;
    }
    const size_t qk = (size_t)g4_dtype_block(dtype), bb = g4_dtype_block_bytes(dtype);
    const uint8_t *b = src;
    size_t i = 0;
    for (; i + qk <= n; i += qk, b += bb) dequant_block(dst + i, b, dtype);
    if (i < n) { // a partial last block: the whole block through a buffer
        float tmp[256];
        dequant_block(tmp, b, dtype);
        memcpy(dst + i, tmp, (n - i) * sizeof(float));
    }
}
