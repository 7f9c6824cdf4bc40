// ggml's block layouts (ggml-common.h) as byte offsets, and the unpacking both the dequantizers
// (core/dtype.c) and the CPU engine's quantized dot products (kernels/cpu/quant_dot.c) need.
// Blocks are packed back to back (Q5_0: 22 bytes, Q6_K: 210), so nothing inside is aligned:
// multi-byte fields are read with memcpy.
//
//   Q4_0 (32 el, 18 B): f16 d | 16 B nibbles: low nibble = element j, high = j + 16; (q - 8) * d
//   Q5_0 (32 el, 22 B): f16 d | u32 fifth bits (bit j = element j) | 16 B nibbles as Q4_0;
//                       (q - 16) * d
//   Q8_0 (32 el, 34 B): f16 d | 32 x int8; q * d
//   Q4_K (256 el, 144 B): f16 d | f16 dmin | 12 B: 8 six-bit (scale, min) pairs | 128 B nibbles:
//                       64-element chunk c uses bytes [32c, 32c + 32): low nibbles are
//                       sub-block 2c, high nibbles sub-block 2c + 1; d * sc * q - dmin * m
//   Q5_K (256 el, 176 B): as Q4_K, with 32 B of fifth bits after the scales (bit 2c of byte l
//                       for element l of sub-block 2c, bit 2c + 1 for sub-block 2c + 1)
//   Q6_K (256 el, 210 B): 128 B low nibbles | 64 B high 2-bit pairs | 16 x int8 scales | f16 d;
//                       d * sc * (q - 32) per 16-element sub-block
#ifndef G4_QBLOCK_H
#define G4_QBLOCK_H

#include <stdint.h>
#include <string.h>

enum {
    G4_QBLOCK_QK = 256, // elements per K-quant super-block
    G4_QBLOCK_Q4_0_BYTES = 18,
    G4_QBLOCK_Q5_0_BYTES = 22,
    G4_QBLOCK_Q8_0_BYTES = 34,
    G4_QBLOCK_Q4_K_BYTES = 144,
    G4_QBLOCK_Q5_K_BYTES = 176,
    G4_QBLOCK_Q6_K_BYTES = 210,
    // offsets inside the K-quant blocks
    G4_QBLOCK_K_SCALES = 4,   // Q4_K/Q5_K: after d, dmin
    G4_QBLOCK_Q4_K_QS = 16,
    G4_QBLOCK_Q5_K_QH = 16,
    G4_QBLOCK_Q5_K_QS = 48,
    G4_QBLOCK_Q6_K_QH = 128,
    G4_QBLOCK_Q6_K_SCALES = 192,
    G4_QBLOCK_Q6_K_D = 208,
};

static inline uint16_t g4_qblock_u16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

static inline uint32_t g4_qblock_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

// The 8 six-bit scales and mins of a Q4_K/Q5_K block from its 12 scale bytes (ggml's
// get_scale_min_k4): pairs 0-3 are the low 6 bits of bytes 0-3 (scales) and 4-7 (mins); pairs 4-7
// take their low 4 bits from bytes 8-11 and their top 2 bits from the top of bytes 0-7.
static inline void g4_qblock_k4_scales(const uint8_t *s, uint8_t sc[8], uint8_t m[8]) {
    for (int j = 0; j < 4; j++) {
        sc[j] = s[j] & 63;
        m[j] = s[j + 4] & 63;
        sc[j + 4] = (uint8_t)((s[j + 8] & 0xF) | ((s[j] >> 6) << 4));
        m[j + 4] = (uint8_t)((s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4));
    }
}

#endif
