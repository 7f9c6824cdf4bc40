// 8-bit block quantization of activations; see quant_act.h.
#include "quant_act.h"

#include <math.h>
#include <string.h>

enum g4_quant_act_type g4_quant_act_type_for(enum g4_dtype w) {
    switch (w) {
    case G4_DTYPE_Q4_0:
    case G4_DTYPE_Q5_0:
    case G4_DTYPE_Q8_0: return G4_QUANT_ACT_Q8_0;
    case G4_DTYPE_Q4_K:
    case G4_DTYPE_Q5_K:
    case G4_DTYPE_Q6_K: return G4_QUANT_ACT_Q8_K;
    default: return G4_QUANT_ACT_NONE;
    }
}

// Round to nearest, ties to even, for |v| < 2^22 (ggml's nearest_int): adding 1.5 * 2^23 leaves
// the rounded integer in the low mantissa bits.
static inline int nearest_int(float v) {
    const float f = v + 12582912.0f;
    int32_t i;
    memcpy(&i, &f, 4);
    return (i & 0x007fffff) - 0x00400000;
}

// ggml's x86 quantize_row_q8_0 (AVX2 build): d = max|x| / 127 stored as fp16, values
// round-to-even(x * (127 / max|x|)).
static void row_q8_0(uint8_t *dst, const float *x, int64_t k) {
    int8_t *qs = (int8_t *)dst;
    float *d = (float *)(void *)(dst + k);
    for (int64_t b = 0; b < k / 32; b++) {
        const float *xb = x + b * 32;
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(xb[j]));
        d[b] = g4_f16_to_f32(g4_f32_to_f16(amax / 127.0f));
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        for (int j = 0; j < 32; j++) qs[b * 32 + j] = (int8_t)nearest_int(xb[j] * id);
    }
}

// The same quantization, written as the values q * d in fp32 (exact for Q8_0: 8 bits times an
// fp16 scale) instead of q and d.
static void round_q8_0(float *dst, const float *x, int64_t k) {
    for (int64_t b = 0; b < k / 32; b++) {
        const float *xb = x + b * 32;
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(xb[j]));
        const float d = g4_f16_to_f32(g4_f32_to_f16(amax / 127.0f));
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        for (int j = 0; j < 32; j++) dst[b * 32 + j] = (float)nearest_int(xb[j] * id) * d;
    }
}

// ggml's quantize_row_q8_K_ref: the value of largest magnitude (the first of equals) maps to
// -127, d = 1 / iscale, values clamped to 127, plus the sums of each 16 quants.
static void row_q8_k(uint8_t *dst, const float *x, int64_t k) {
    int8_t *qs = (int8_t *)dst;
    float *d = (float *)(void *)(dst + k);
    int16_t *bsums = (int16_t *)(void *)(dst + k + k / 256 * 4);
    for (int64_t b = 0; b < k / 256; b++) {
        const float *xb = x + b * 256;
        int8_t *q = qs + b * 256;
        float max = 0.0f, amax = 0.0f;
        for (int j = 0; j < 256; j++) {
            const float ax = fabsf(xb[j]);
            if (ax > amax) amax = ax, max = xb[j];
        }
        if (amax == 0.0f) {
            d[b] = 0.0f;
            memset(q, 0, 256);
            memset(bsums + b * 16, 0, 16 * sizeof(int16_t));
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < 256; j++) {
            const int v = nearest_int(iscale * xb[j]);
            q[j] = (int8_t)(v < 127 ? v : 127);
        }
        for (int j = 0; j < 16; j++) {
            int s = 0;
            for (int i = 0; i < 16; i++) s += q[j * 16 + i];
            bsums[b * 16 + j] = (int16_t)s;
        }
        d[b] = 1.0f / iscale;
    }
}

static void round_q8_k(float *dst, const float *x, int64_t k) {
    for (int64_t b = 0; b < k / 256; b++) {
        const float *xb = x + b * 256;
        float max = 0.0f, amax = 0.0f;
        for (int j = 0; j < 256; j++) {
            const float ax = fabsf(xb[j]);
            if (ax > amax) amax = ax, max = xb[j];
        }
        if (amax == 0.0f) {
            memset(dst + b * 256, 0, 256 * sizeof(float));
            continue;
        }
        const float iscale = -127.0f / max, d = 1.0f / iscale;
        for (int j = 0; j < 256; j++) {
            const int v = nearest_int(iscale * xb[j]);
            dst[b * 256 + j] = (float)(v < 127 ? v : 127) * d;
        }
    }
}

void g4_quant_act_round_rows(float *dst, enum g4_quant_act_type type, const float *x, int64_t ldx,
                             int n, int64_t k) {
    for (int t = 0; t < n; t++) {
        if (type == G4_QUANT_ACT_Q8_K) round_q8_k(dst + t * k, x + t * ldx, k);
        else round_q8_0(dst + t * k, x + t * ldx, k);
    }
}

void g4_quant_act_rows(uint8_t *dst, enum g4_quant_act_type type, const float *x, int64_t ldx,
                       int n, int64_t k) {
    const int64_t ld = G4_QUANT_ACT_LD(k);
    for (int t = 0; t < n; t++) {
        if (type == G4_QUANT_ACT_Q8_K) row_q8_k(dst + t * ld, x + t * ldx, k);
        else row_q8_0(dst + t * ld, x + t * ldx, k);
    }
}
