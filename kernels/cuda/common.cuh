// Device helpers shared by kernels/*.cu: bf16 conversion, warp and block reductions, grid
// sizing. Not a public header. Block reductions assume blockDim.x is a multiple of 32 (every
// launcher in kernels/ uses 128, 256 or 1024 threads) and that every thread of the block calls
// them (they contain __syncthreads).
#ifndef G4_COMMON_CUH
#define G4_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "cuda_check.h"
#include "kernels.h"

#define G4_FULL_MASK 0xffffffffu

// Kernel launches are written `kernel G4_LAUNCH(grid, block, smem, stream)(args...)`: under nvcc
// that is kernel<<<grid, block, smem, stream>>>(args...); the CPU execution harness
// (tests/emu, which compiles these files with the host C++ compiler) defines its own G4_LAUNCH.
#if defined(__CUDACC__)
#define G4_LAUNCH(...) <<<__VA_ARGS__>>>
#elif !defined(G4_LAUNCH)
#error "kernels/cuda compiles with nvcc, or with a host compiler against tests/emu/include"
#endif

static inline int64_t g4_ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Blocks for a grid-stride loop over n elements with `threads` per block.
static inline unsigned g4_grid_1d(size_t n, int threads) {
    size_t b = (n + (size_t)threads - 1) / (size_t)threads;
    if (b < 1) b = 1;
    return b > (1u << 20) ? (1u << 20) : (unsigned)b;
}

static __device__ __forceinline__ float bf2f(g4_bf16 h) {
    return __uint_as_float((uint32_t)h << 16);
}

// Round to nearest even (the cvt.rn.bf16.f32 instruction on sm_80+).
static __device__ __forceinline__ g4_bf16 f2bf(float f) {
    return __bfloat16_as_ushort(__float2bfloat16_rn(f));
}

// gelu_pytorch_tanh in fp32.
static __device__ __forceinline__ float gelu_tanh(float v) {
    const float k = 0.7978845608028654f; // sqrt(2/pi)
    return 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
}

static __device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(G4_FULL_MASK, v, o);
    return v;
}

static __device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(G4_FULL_MASK, v, o));
    return v;
}

// Sum over the block, returned to every thread.
static __device__ __forceinline__ float block_sum(float v) {
    __shared__ float partial[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads(); // an earlier call may still be reading partial
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    return warp_sum(lane < n_warps ? partial[lane] : 0.0f);
}

static __device__ __forceinline__ float block_max(float v) {
    __shared__ float partial[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    return warp_max(lane < n_warps ? partial[lane] : -INFINITY);
}

// (value, index) pair that ranks first: larger value, then lower index. NaN values must be
// mapped to -inf by the caller; index -1 ranks last.
static __device__ __forceinline__ bool ranks_first(float v, int i, float bv, int bi) {
    return bi < 0 || (i >= 0 && (v > bv || (v == bv && i < bi)));
}

static __device__ __forceinline__ void warp_argmax(float *v, int *i) {
    for (int o = 16; o > 0; o >>= 1) {
        float ov = __shfl_xor_sync(G4_FULL_MASK, *v, o);
        int oi = __shfl_xor_sync(G4_FULL_MASK, *i, o);
        if (ranks_first(ov, oi, *v, *i)) {
            *v = ov;
            *i = oi;
        }
    }
}

// Block-wide argmax of (v, i) pairs, returned to every thread.
static __device__ __forceinline__ void block_argmax(float *v, int *i) {
    __shared__ float pv[32];
    __shared__ int pi[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
    warp_argmax(v, i);
    __syncthreads();
    if (lane == 0) {
        pv[warp] = *v;
        pi[warp] = *i;
    }
    __syncthreads();
    *v = lane < n_warps ? pv[lane] : -INFINITY;
    *i = lane < n_warps ? pi[lane] : -1;
    warp_argmax(v, i);
}

// Dynamic shared memory of a launch, 16-byte aligned.
template <typename T> static __device__ __forceinline__ T *dynamic_smem() {
    extern __shared__ __align__(16) unsigned char g4_smem[];
    return reinterpret_cast<T *>(g4_smem);
}

#endif
