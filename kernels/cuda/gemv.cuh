// Device building blocks of the decode GEMV (kernels/cuda/gemv.cu), for kernels that multiply a
// few tokens (1..8) by a bf16 weight matrix and read the matrix once: the MoE experts at decode
// reuse them with the expert's matrix as a pointer offset. Not a public header.
//
// The pattern (one block of G4_GEMV_THREADS threads):
//   1. g4_gemv_stage: the block copies the activations of its column range into shared memory
//      (fp32, or rounded to bf16 and back for GEMMA4_PRECISION_BF16), one 16-byte load per
//      thread and step;
//   2. g4_gemv_warp_dot: each warp accumulates G4_GEMV_RPW rows times every token: each lane
//      loads 16 bytes (8 bf16 weights) of each of its rows per step, G4_GEMV_UNROLL steps at a
//      time, so RPW * UNROLL = 8 independent 16-byte loads are in flight per thread before the
//      first multiply; a warp's loads of one row are 512 contiguous bytes (coalesced). Products
//      are fp32 FMAs of the exact bf16 weight and the staged activation;
//   3. warp_sum of each (token, row) lane partial (common.cuh).
// Constraints: cols (the row stride of the weights) a multiple of 8 and the matrix 16-byte
// aligned (16-byte loads); the activations 16-byte aligned with a row stride that is a multiple
// of 4 floats. The launcher checks them (g4_cuda_gemv_supported).
#ifndef G4_GEMV_CUH
#define G4_GEMV_CUH

#include "common.cuh"

#define G4_GEMV_THREADS 256
#define G4_GEMV_WARPS (G4_GEMV_THREADS / 32)
#define G4_GEMV_RPW 4                                // weight rows per warp
#define G4_GEMV_KSTEP 256                            // columns a warp covers per load (32 x 8)
#define G4_GEMV_UNROLL 2                             // load steps in flight per lane
#define G4_GEMV_XS_FLOATS 8192                       // staged activations: 32 KiB of shared memory
#define G4_GEMV_MAX_TOKENS 8

// Columns of one staged chunk for NT tokens: a multiple of G4_GEMV_KSTEP (1024 at NT = 8,
// 8192 at NT = 1).
template <int NT> static __host__ __device__ constexpr int g4_gemv_chunk() {
    return (G4_GEMV_XS_FLOATS / NT) / G4_GEMV_KSTEP * G4_GEMV_KSTEP;
}

// xs[t * len + i] = x[t * ld + k0 + i] for t < NT, i < len (len, k0, ld multiples of 4), rounded
// through bf16 (round to nearest even) when bf16_act. Every thread of the block calls it; the
// caller puts the barriers around it.
template <int NT>
static __device__ __forceinline__ void g4_gemv_stage(float *xs, const float *x, int64_t ld,
                                                     int k0, int len, bool bf16_act) {
    const int n4 = NT * len / 4;
    for (int q = threadIdx.x; q < n4; q += blockDim.x) {
        const int e = q * 4, t = e / len, i = e - t * len;
        float4 v = *reinterpret_cast<const float4 *>(x + t * ld + k0 + i);
        if (bf16_act) {
            v.x = bf2f(f2bf(v.x));
            v.y = bf2f(f2bf(v.y));
            v.z = bf2f(f2bf(v.z));
            v.w = bf2f(f2bf(v.w));
        }
        *reinterpret_cast<float4 *>(xs + e) = v;
    }
}

// acc[t][r] += 8 products of the bf16 weights in w (uint4: element 0 in the low half of .x) and
// xs[0..8) of token t.
static __device__ __forceinline__ float g4_gemv_dot8(uint4 w, const float *xs, float acc) {
    const float4 a = *reinterpret_cast<const float4 *>(xs);
    const float4 b = *reinterpret_cast<const float4 *>(xs + 4);
    acc = fmaf(__uint_as_float(w.x << 16), a.x, acc);
    acc = fmaf(__uint_as_float(w.x & 0xffff0000u), a.y, acc);
    acc = fmaf(__uint_as_float(w.y << 16), a.z, acc);
    acc = fmaf(__uint_as_float(w.y & 0xffff0000u), a.w, acc);
    acc = fmaf(__uint_as_float(w.z << 16), b.x, acc);
    acc = fmaf(__uint_as_float(w.z & 0xffff0000u), b.y, acc);
    acc = fmaf(__uint_as_float(w.w << 16), b.z, acc);
    acc = fmaf(__uint_as_float(w.w & 0xffff0000u), b.w, acc);
    return acc;
}

// Lane partials of the warp's rows over columns [k0, k1) (multiples of 8): acc[t][j] +=
// sum_c wr[j][c] * xs[t * len + c - xs_k0], where xs holds columns [xs_k0, xs_k0 + len) of
// each token. wr[j] NULL: an absent row (past the matrix end), left at its value. The caller
// reduces acc across the warp.
template <int NT>
static __device__ __forceinline__ void g4_gemv_warp_dot(float (&acc)[NT][G4_GEMV_RPW],
                                                        const g4_bf16 *const (&wr)[G4_GEMV_RPW],
                                                        const float *xs, int len, int xs_k0,
                                                        int k0, int k1) {
    const int lane = threadIdx.x & 31;
    for (int c0 = k0 + lane * 8; c0 < k1; c0 += G4_GEMV_KSTEP * G4_GEMV_UNROLL) {
        uint4 wv[G4_GEMV_UNROLL][G4_GEMV_RPW];
#pragma unroll
        for (int u = 0; u < G4_GEMV_UNROLL; u++) {
            const int c = c0 + u * G4_GEMV_KSTEP;
#pragma unroll
            for (int j = 0; j < G4_GEMV_RPW; j++)
                wv[u][j] = c < k1 && wr[j] ? __ldg(reinterpret_cast<const uint4 *>(wr[j] + c))
                                           : make_uint4(0u, 0u, 0u, 0u);
        }
#pragma unroll
        for (int u = 0; u < G4_GEMV_UNROLL; u++) {
            const int c = c0 + u * G4_GEMV_KSTEP;
            if (c >= k1) break; // columns past the staged chunk are not read
#pragma unroll
            for (int t = 0; t < NT; t++) {
                const float *xt = xs + t * len + (c - xs_k0);
#pragma unroll
                for (int j = 0; j < G4_GEMV_RPW; j++) acc[t][j] = g4_gemv_dot8(wv[u][j], xt, acc[t][j]);
            }
        }
    }
}

#endif
