// tests/emu: IEEE half precision for the host compiler, bit-exact with CUDA's conversions
// (round to nearest even, subnormals kept, overflow to infinity).
#ifndef G4EMU_CUDA_FP16_H
#define G4EMU_CUDA_FP16_H

#include <stdint.h>
#include <string.h>

#include "cuda_runtime.h"

#ifdef __cplusplus
struct __half {
    unsigned short __x;
};
typedef __half half;

static inline __half __float2half_rn(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    const uint32_t sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    __half h;
    if (a > 0x7f800000u) { h.__x = (unsigned short)(sign | 0x7e00u); return h; } // NaN
    if (a >= 0x477ff000u) { h.__x = (unsigned short)(sign | 0x7c00u); return h; } // overflow
    if (a < 0x38800000u) { // |f| < 2^-14: a half subnormal (or zero), unit 2^-24
        const int e = (int)(a >> 23), d = 126 - e; // value = m * 2^(e - 150) = (m >> d) units
        if (e == 0 || d > 25) { h.__x = (unsigned short)sign; return h; }
        const uint32_t m = (a & 0x7fffffu) | 0x800000u, halfway = 1u << (d - 1);
        uint32_t r = m >> d;
        const uint32_t rem = m & ((1u << d) - 1);
        if (rem > halfway || (rem == halfway && (r & 1))) r++;
        h.__x = (unsigned short)(sign | r);
        return h;
    }
    uint32_t r = a - 0x38000000u; // rebias exponent 127 -> 15
    r = (r + 0xfffu + ((r >> 13) & 1u)) >> 13;
    h.__x = (unsigned short)(sign | r);
    return h;
}
static inline float __half2float(__half h) {
    const uint32_t sign = (uint32_t)(h.__x & 0x8000u) << 16, e = (h.__x >> 10) & 31,
                   m = h.__x & 0x3ffu;
    uint32_t u;
    if (e == 31) u = sign | 0x7f800000u | (m << 13);
    else if (e) u = sign | ((e + 112) << 23) | (m << 13);
    else if (!m) u = sign;
    else { // subnormal: normalise
        int k = 0;
        uint32_t mm = m;
        while (!(mm & 0x400u)) mm <<= 1, k++;
        u = sign | ((uint32_t)(113 - k) << 23) | ((mm & 0x3ffu) << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline __half __float2half(float f) { return __float2half_rn(f); }
static inline unsigned short __half_as_ushort(__half h) { return h.__x; }
static inline __half __ushort_as_half(unsigned short x) {
    __half h;
    h.__x = x;
    return h;
}
#endif

#endif
