// tests/emu: the device side of CUDA C++ for the host compiler (included by cuda_runtime.h in
// C++). Kernels compile unchanged except for their launches, written
//     kernel G4_LAUNCH(grid, block, smem, stream)(args...);
// which kernels/cuda/common.cuh turns into kernel<<<grid, block, smem, stream>>>(args...) under
// nvcc and which this header turns into an emulated launch (queued on the stream, run when
// something synchronizes; every CUDA thread a fiber, a block's threads run cooperatively).
//
// What a GPU would refuse or leave undefined is reported as a fault (tests/emu/README.md):
// __syncthreads not reached by every thread of the block, or reached at different places;
// warp collectives whose mask omits the caller, names exited or missing lanes, or whose lanes
// meet at different collectives; shuffles reading a lane outside the mask. Misaligned vector
// accesses are caught by UBSan's alignment check (float2/float4 carry CUDA's alignment), which
// every harness build enables. Device math functions return the correctly rounded value moved
// by up to CUDA's documented maximum ulp error (deterministic per G4EMU_SEED).
#ifndef G4EMU_DEVICE_H
#define G4EMU_DEVICE_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmath>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

#include "cuda_runtime_api.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __restrict__ __restrict
#define __align__(n) __attribute__((aligned(n)))
#define __grid_constant__
// Block-scope thread_local is static storage, so `__shared__ float a[32];` is one array for the
// running block (blocks of a launch run one after another on the launching host thread), and
// `extern __shared__ T smem[];` names the dynamic shared memory, which the runtime defines
// (G4EMU_DYNAMIC_SMEM_NAME) and refills with NaN bytes before every block.
#define __shared__ thread_local
#define G4_LAUNCH(...) << ::g4emu::launch_config(__VA_ARGS__)

// ---- vector types (CUDA's vector_types.h: float2 8-byte and float4 16-byte aligned) --------
struct uint3 {
    unsigned int x, y, z;
};
struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1)
        : x(vx), y(vy), z(vz) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};
struct __attribute__((aligned(8))) float2 {
    float x, y;
};
struct __attribute__((aligned(16))) float4 {
    float x, y, z, w;
};
struct __attribute__((aligned(8))) int2 {
    int x, y;
};
struct __attribute__((aligned(16))) int4 {
    int x, y, z, w;
};
struct __attribute__((aligned(8))) uint2 {
    unsigned int x, y;
};
struct __attribute__((aligned(16))) uint4 {
    unsigned int x, y, z, w;
};
struct __attribute__((aligned(16))) double2 {
    double x, y;
};
static inline float2 make_float2(float x, float y) { return float2{x, y}; }
static inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
static inline int2 make_int2(int x, int y) { return int2{x, y}; }
static inline int4 make_int4(int x, int y, int z, int w) { return int4{x, y, z, w}; }
static inline uint2 make_uint2(unsigned x, unsigned y) { return uint2{x, y}; }
static inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) {
    return uint4{x, y, z, w};
}

// The running thread's indices (set by the scheduler before it resumes a fiber).
extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;
static const int warpSize = 32;

namespace g4emu {
enum warp_op_kind {
    WARP_SHFL_IDX,
    WARP_SHFL_UP,
    WARP_SHFL_DOWN,
    WARP_SHFL_XOR,
    WARP_SYNC,
    WARP_BALLOT,
    WARP_ANY,
    WARP_ALL
};
void syncthreads(const char *file, int line);
uint64_t warp_op(int kind, unsigned mask, uint64_t value, int arg, int width, const char *file,
                 int line);
unsigned active_mask();
[[noreturn]] void device_fault(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
// Device math: the correctly rounded result (computed in double) moved by a deterministic
// number of ulp in [-max_ulp, max_ulp] inside kernels; exact on the host and when the result
// is exactly representable (expf(0), powf(x, 0), ...), as CUDA is.
float dev_math1(int fn, float x);
float dev_math2(int fn, float x, float y);
double dev_math1d(int fn, double x);
double dev_math2d(int fn, double x, double y);
enum math_fn {
    F_EXP, F_EXP2, F_EXP10, F_EXPM1, F_LOG, F_LOG2, F_LOG10, F_LOG1P, F_SIN, F_COS, F_TAN,
    F_TANH, F_SINH, F_COSH, F_ASIN, F_ACOS, F_ATAN, F_ERF, F_CBRT, F_RSQRT, F_FAST_EXP,
    F_FAST_LOG, F_FAST_SIN, F_FAST_COS, F_POW, F_ATAN2, F_HYPOT, F_FAST_POW, F_FAST_DIV, F_COUNT
};

template <class T> static inline uint64_t to_bits(T v) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffle type");
    uint64_t u = 0;
    memcpy(&u, &v, sizeof v);
    return u;
}
template <class T> static inline T from_bits(uint64_t u) {
    T v;
    memcpy(&v, &u, sizeof v);
    return v;
}

// ---- launches ------------------------------------------------------------------------------
struct task {
    virtual ~task() {}
    virtual void run() const = 0;
};
template <class K, class Args> struct kernel_task final : task {
    K kernel;
    Args args;
    kernel_task(K k, Args &&a) : kernel(k), args(std::move(a)) {}
    void run() const override { std::apply(kernel, args); } // each thread copies the params
};
struct launch_config {
    dim3 grid, block;
    size_t smem;
    cudaStream_t stream;
    const char *file;
    int line;
    launch_config(dim3 g, dim3 b, size_t s = 0, cudaStream_t st = 0,
                  const char *f = __builtin_FILE(), int l = __builtin_LINE())
        : grid(g), block(b), smem(s), stream(st), file(f), line(l) {}
    template <class... A> struct pending {
        const launch_config *cfg;
        std::tuple<typename std::decay<A>::type...> args;
    };
    template <class... A> pending<A...> operator()(A &&...a) const {
        return pending<A...>{this, std::tuple<typename std::decay<A>::type...>(std::forward<A>(a)...)};
    }
};
// Checks the configuration (CUDA's launch errors go to cudaGetLastError) and queues the task.
void launch(const launch_config &cfg, const void *kernel, std::shared_ptr<const task> t);
} // namespace g4emu

template <class... P, class... A>
static inline void operator<<(void (*k)(P...), g4emu::launch_config::pending<A...> &&p) {
    using args_t = std::tuple<typename std::decay<P>::type...>;
    auto t = std::make_shared<g4emu::kernel_task<void (*)(P...), args_t>>(k, args_t(std::move(p.args)));
    g4emu::launch(*p.cfg, (const void *)k, std::move(t));
}

template <class T>
static inline cudaError_t cudaFuncSetAttribute(T *func, cudaFuncAttribute attr, int value) {
    return cudaFuncSetAttribute((const void *)func, attr, value);
}

// ---- barriers and warp collectives ---------------------------------------------------------
static inline void __syncthreads(const char *f = __builtin_FILE(), int l = __builtin_LINE()) {
    g4emu::syncthreads(f, l);
}
static inline void __syncwarp(unsigned mask = 0xffffffffu, const char *f = __builtin_FILE(),
                              int l = __builtin_LINE()) {
    g4emu::warp_op(g4emu::WARP_SYNC, mask, 0, 0, 32, f, l);
}
static inline unsigned __activemask() { return g4emu::active_mask(); }
template <class T>
static inline T __shfl_sync(unsigned mask, T v, int src, int width = 32,
                            const char *f = __builtin_FILE(), int l = __builtin_LINE()) {
    return g4emu::from_bits<T>(
        g4emu::warp_op(g4emu::WARP_SHFL_IDX, mask, g4emu::to_bits(v), src, width, f, l));
}
template <class T>
static inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32,
                               const char *f = __builtin_FILE(), int l = __builtin_LINE()) {
    return g4emu::from_bits<T>(
        g4emu::warp_op(g4emu::WARP_SHFL_UP, mask, g4emu::to_bits(v), (int)delta, width, f, l));
}
template <class T>
static inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32,
                                 const char *f = __builtin_FILE(), int l = __builtin_LINE()) {
    return g4emu::from_bits<T>(
        g4emu::warp_op(g4emu::WARP_SHFL_DOWN, mask, g4emu::to_bits(v), (int)delta, width, f, l));
}
template <class T>
static inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32,
                                const char *f = __builtin_FILE(), int l = __builtin_LINE()) {
    return g4emu::from_bits<T>(
        g4emu::warp_op(g4emu::WARP_SHFL_XOR, mask, g4emu::to_bits(v), lane_mask, width, f, l));
}
static inline unsigned __ballot_sync(unsigned mask, int pred, const char *f = __builtin_FILE(),
                                     int l = __builtin_LINE()) {
    return (unsigned)g4emu::warp_op(g4emu::WARP_BALLOT, mask, pred != 0, 0, 32, f, l);
}
static inline int __any_sync(unsigned mask, int pred, const char *f = __builtin_FILE(),
                             int l = __builtin_LINE()) {
    return (int)g4emu::warp_op(g4emu::WARP_ANY, mask, pred != 0, 0, 32, f, l);
}
static inline int __all_sync(unsigned mask, int pred, const char *f = __builtin_FILE(),
                             int l = __builtin_LINE()) {
    return (int)g4emu::warp_op(g4emu::WARP_ALL, mask, pred != 0, 0, 32, f, l);
}
static inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
static inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
static inline void __trap() { g4emu::device_fault("?", 0, "__trap()"); }

// ---- atomics (a block's threads interleave only at barriers and collectives, but other
// host threads may run kernels of other launches: real atomics) -------------------------------
template <class T> static inline T g4emu_atomic_add(T *p, T v) {
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}
static inline int atomicAdd(int *p, int v) { return g4emu_atomic_add(p, v); }
static inline unsigned atomicAdd(unsigned *p, unsigned v) { return g4emu_atomic_add(p, v); }
static inline unsigned long long atomicAdd(unsigned long long *p, unsigned long long v) {
    return g4emu_atomic_add(p, v);
}
static inline float atomicAdd(float *p, float v) {
    float old = *p, nv;
    do nv = old + v;
    while (!__atomic_compare_exchange(p, &old, &nv, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    return old;
}
static inline double atomicAdd(double *p, double v) {
    double old = *p, nv;
    do nv = old + v;
    while (!__atomic_compare_exchange(p, &old, &nv, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    return old;
}
static inline int atomicSub(int *p, int v) { return __atomic_fetch_sub(p, v, __ATOMIC_RELAXED); }
static inline unsigned atomicSub(unsigned *p, unsigned v) {
    return __atomic_fetch_sub(p, v, __ATOMIC_RELAXED);
}
template <class T> static inline T g4emu_atomic_minmax(T *p, T v, bool is_max) {
    T old = *p;
    while ((is_max ? v > old : v < old) &&
           !__atomic_compare_exchange(p, &old, &v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
    return old;
}
static inline int atomicMax(int *p, int v) { return g4emu_atomic_minmax(p, v, true); }
static inline unsigned atomicMax(unsigned *p, unsigned v) { return g4emu_atomic_minmax(p, v, true); }
static inline long long atomicMax(long long *p, long long v) { return g4emu_atomic_minmax(p, v, true); }
static inline unsigned long long atomicMax(unsigned long long *p, unsigned long long v) {
    return g4emu_atomic_minmax(p, v, true);
}
static inline int atomicMin(int *p, int v) { return g4emu_atomic_minmax(p, v, false); }
static inline unsigned atomicMin(unsigned *p, unsigned v) { return g4emu_atomic_minmax(p, v, false); }
static inline long long atomicMin(long long *p, long long v) { return g4emu_atomic_minmax(p, v, false); }
static inline unsigned long long atomicMin(unsigned long long *p, unsigned long long v) {
    return g4emu_atomic_minmax(p, v, false);
}
static inline int atomicExch(int *p, int v) { return __atomic_exchange_n(p, v, __ATOMIC_RELAXED); }
static inline unsigned atomicExch(unsigned *p, unsigned v) {
    return __atomic_exchange_n(p, v, __ATOMIC_RELAXED);
}
static inline unsigned long long atomicExch(unsigned long long *p, unsigned long long v) {
    return __atomic_exchange_n(p, v, __ATOMIC_RELAXED);
}
static inline float atomicExch(float *p, float v) {
    float old;
    __atomic_exchange(p, &v, &old, __ATOMIC_RELAXED);
    return old;
}
template <class T> static inline T g4emu_atomic_cas(T *p, T cmp, T v) {
    __atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    return cmp;
}
static inline int atomicCAS(int *p, int c, int v) { return g4emu_atomic_cas(p, c, v); }
static inline unsigned atomicCAS(unsigned *p, unsigned c, unsigned v) { return g4emu_atomic_cas(p, c, v); }
static inline unsigned long long atomicCAS(unsigned long long *p, unsigned long long c,
                                           unsigned long long v) {
    return g4emu_atomic_cas(p, c, v);
}
static inline int atomicAnd(int *p, int v) { return __atomic_fetch_and(p, v, __ATOMIC_RELAXED); }
static inline unsigned atomicAnd(unsigned *p, unsigned v) { return __atomic_fetch_and(p, v, __ATOMIC_RELAXED); }
static inline int atomicOr(int *p, int v) { return __atomic_fetch_or(p, v, __ATOMIC_RELAXED); }
static inline unsigned atomicOr(unsigned *p, unsigned v) { return __atomic_fetch_or(p, v, __ATOMIC_RELAXED); }
static inline int atomicXor(int *p, int v) { return __atomic_fetch_xor(p, v, __ATOMIC_RELAXED); }
static inline unsigned atomicXor(unsigned *p, unsigned v) { return __atomic_fetch_xor(p, v, __ATOMIC_RELAXED); }

// ---- integer and bit intrinsics, min / max --------------------------------------------------
template <class A, class B>
static inline typename std::common_type<A, B>::type min(A a, B b) {
    typedef typename std::common_type<A, B>::type T;
    return (T)b < (T)a ? (T)b : (T)a;
}
template <class A, class B>
static inline typename std::common_type<A, B>::type max(A a, B b) {
    typedef typename std::common_type<A, B>::type T;
    return (T)a < (T)b ? (T)b : (T)a;
}
static inline float __uint_as_float(unsigned u) { return g4emu::from_bits<float>(u); }
static inline unsigned __float_as_uint(float f) { return (unsigned)g4emu::to_bits(f); }
static inline float __int_as_float(int i) { return g4emu::from_bits<float>((uint32_t)i); }
static inline int __float_as_int(float f) { return (int)(uint32_t)g4emu::to_bits(f); }
static inline double __longlong_as_double(long long v) { return g4emu::from_bits<double>((uint64_t)v); }
static inline long long __double_as_longlong(double d) { return (long long)g4emu::to_bits(d); }
static inline int __popc(unsigned x) { return __builtin_popcount(x); }
static inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
static inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }
static inline int __clzll(long long x) { return x ? __builtin_clzll((unsigned long long)x) : 64; }
static inline int __ffs(int x) { return __builtin_ffs(x); }
static inline int __ffsll(long long x) { return __builtin_ffsll(x); }
static inline unsigned __brev(unsigned x) {
    x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
    x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
    x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
    x = ((x >> 8) & 0x00ff00ffu) | ((x & 0x00ff00ffu) << 8);
    return (x >> 16) | (x << 16);
}
// Conversions with CUDA's rounding (_rn: nearest even) and saturation (NaN -> 0 for unsigned
// and int, out of range -> the nearest limit; CUDA's cvt.rni.sat semantics).
template <class I> static inline I g4emu_cvt(double r, I lo, I hi) {
    if (r != r) return 0;
    if (r <= (double)lo) return lo;
    if (r >= (double)hi) return hi;
    return (I)r;
}
static inline unsigned long long __float2ull_rn(float f) {
    return g4emu_cvt<unsigned long long>(nearbyint((double)f), 0ull, ~0ull);
}
static inline long long __float2ll_rn(float f) {
    return g4emu_cvt<long long>(nearbyint((double)f), INT64_MIN, INT64_MAX);
}
static inline int __float2int_rn(float f) { return g4emu_cvt<int>(nearbyint((double)f), INT32_MIN, INT32_MAX); }
static inline int __float2int_rz(float f) { return g4emu_cvt<int>(trunc((double)f), INT32_MIN, INT32_MAX); }
static inline unsigned __float2uint_rn(float f) { return g4emu_cvt<unsigned>(nearbyint((double)f), 0u, ~0u); }
static inline float __int2float_rn(int i) { return (float)i; }
static inline float __saturatef(float x) { return x != x ? 0.0f : x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x; }
template <class T> static inline T __ldg(const T *p) { return *p; }

// ---- device math (see dev_math1 above) ------------------------------------------------------
static inline float g4emu_expf(float x) { return g4emu::dev_math1(g4emu::F_EXP, x); }
static inline float g4emu_exp2f(float x) { return g4emu::dev_math1(g4emu::F_EXP2, x); }
static inline float g4emu_exp10f(float x) { return g4emu::dev_math1(g4emu::F_EXP10, x); }
static inline float g4emu_expm1f(float x) { return g4emu::dev_math1(g4emu::F_EXPM1, x); }
static inline float g4emu_logf(float x) { return g4emu::dev_math1(g4emu::F_LOG, x); }
static inline float g4emu_log2f(float x) { return g4emu::dev_math1(g4emu::F_LOG2, x); }
static inline float g4emu_log10f(float x) { return g4emu::dev_math1(g4emu::F_LOG10, x); }
static inline float g4emu_log1pf(float x) { return g4emu::dev_math1(g4emu::F_LOG1P, x); }
static inline float g4emu_sinf(float x) { return g4emu::dev_math1(g4emu::F_SIN, x); }
static inline float g4emu_cosf(float x) { return g4emu::dev_math1(g4emu::F_COS, x); }
static inline float g4emu_tanf(float x) { return g4emu::dev_math1(g4emu::F_TAN, x); }
static inline void g4emu_sincosf(float x, float *s, float *c) {
    *s = g4emu::dev_math1(g4emu::F_SIN, x);
    *c = g4emu::dev_math1(g4emu::F_COS, x);
}
static inline float g4emu_tanhf(float x) { return g4emu::dev_math1(g4emu::F_TANH, x); }
static inline float g4emu_sinhf(float x) { return g4emu::dev_math1(g4emu::F_SINH, x); }
static inline float g4emu_coshf(float x) { return g4emu::dev_math1(g4emu::F_COSH, x); }
static inline float g4emu_asinf(float x) { return g4emu::dev_math1(g4emu::F_ASIN, x); }
static inline float g4emu_acosf(float x) { return g4emu::dev_math1(g4emu::F_ACOS, x); }
static inline float g4emu_atanf(float x) { return g4emu::dev_math1(g4emu::F_ATAN, x); }
static inline float g4emu_erff(float x) { return g4emu::dev_math1(g4emu::F_ERF, x); }
static inline float g4emu_cbrtf(float x) { return g4emu::dev_math1(g4emu::F_CBRT, x); }
static inline float g4emu_rsqrtf(float x) { return g4emu::dev_math1(g4emu::F_RSQRT, x); }
static inline float g4emu_powf(float x, float y) { return g4emu::dev_math2(g4emu::F_POW, x, y); }
static inline float g4emu_atan2f(float y, float x) { return g4emu::dev_math2(g4emu::F_ATAN2, y, x); }
static inline float g4emu_hypotf(float x, float y) { return g4emu::dev_math2(g4emu::F_HYPOT, x, y); }
static inline float g4emu_fast_expf(float x) { return g4emu::dev_math1(g4emu::F_FAST_EXP, x); }
static inline float g4emu_fast_logf(float x) { return g4emu::dev_math1(g4emu::F_FAST_LOG, x); }
static inline float g4emu_fast_sinf(float x) { return g4emu::dev_math1(g4emu::F_FAST_SIN, x); }
static inline float g4emu_fast_cosf(float x) { return g4emu::dev_math1(g4emu::F_FAST_COS, x); }
static inline float g4emu_fast_powf(float x, float y) { return g4emu::dev_math2(g4emu::F_FAST_POW, x, y); }
static inline float __fdividef(float x, float y) { return g4emu::dev_math2(g4emu::F_FAST_DIV, x, y); }
static inline void g4emu_fast_sincosf(float x, float *s, float *c) {
    *s = g4emu_fast_sinf(x);
    *c = g4emu_fast_cosf(x);
}
static inline float __frcp_rn(float x) { return 1.0f / x; }
static inline float __fsqrt_rn(float x) { return sqrtf(x); }
static inline float __fdiv_rn(float x, float y) { return x / y; }
static inline double g4emu_exp(double x) { return g4emu::dev_math1d(g4emu::F_EXP, x); }
static inline double g4emu_log(double x) { return g4emu::dev_math1d(g4emu::F_LOG, x); }
static inline double g4emu_sin(double x) { return g4emu::dev_math1d(g4emu::F_SIN, x); }
static inline double g4emu_cos(double x) { return g4emu::dev_math1d(g4emu::F_COS, x); }
static inline double g4emu_tanh(double x) { return g4emu::dev_math1d(g4emu::F_TANH, x); }
static inline double g4emu_pow(double x, double y) { return g4emu::dev_math2d(g4emu::F_POW, x, y); }
// sqrtf, division, fmaf, fabsf, fminf/fmaxf, floor/ceil/trunc/rint are exact on the GPU too.
// glibc declares __expf and friends itself: rename the CUDA intrinsics too.
#define __expf g4emu_fast_expf
#define __logf g4emu_fast_logf
#define __sinf g4emu_fast_sinf
#define __cosf g4emu_fast_cosf
#define __powf g4emu_fast_powf
#define __sincosf g4emu_fast_sincosf
#define expf g4emu_expf
#define exp2f g4emu_exp2f
#define exp10f g4emu_exp10f
#define expm1f g4emu_expm1f
#define logf g4emu_logf
#define log2f g4emu_log2f
#define log10f g4emu_log10f
#define log1pf g4emu_log1pf
#define sinf g4emu_sinf
#define cosf g4emu_cosf
#define tanf g4emu_tanf
#define sincosf g4emu_sincosf
#define tanhf g4emu_tanhf
#define sinhf g4emu_sinhf
#define coshf g4emu_coshf
#define asinf g4emu_asinf
#define acosf g4emu_acosf
#define atanf g4emu_atanf
#define erff g4emu_erff
#define cbrtf g4emu_cbrtf
#define rsqrtf g4emu_rsqrtf
#define powf g4emu_powf
#define atan2f g4emu_atan2f
#define hypotf g4emu_hypotf
#define exp g4emu_exp
#define log g4emu_log
#define sin g4emu_sin
#define cos g4emu_cos
#define tanh g4emu_tanh
#define pow g4emu_pow

#endif
