// The GPU benchmark's read-bandwidth kernel (gpu_bench_kernels.h). A pure streaming read: 16-byte
// coalesced loads (a warp reads 512 contiguous bytes per load), G4_BENCH_READ_UNROLL of them
// issued before any is used, a grid sized by the caller from the SM count, no writes but one
// word that is never written in practice. What the decode kernels can at best reach.
#include "common.cuh"
#include "gpu_bench_kernels.h"

#define SINK_MAGIC 0x9e3779b9u

static __global__ void read_kernel(const uint4 *buf, size_t n, unsigned *sink) {
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    unsigned acc = 0;
    for (; i + (G4_BENCH_READ_UNROLL - 1) * stride < n; i += G4_BENCH_READ_UNROLL * stride) {
        uint4 v[G4_BENCH_READ_UNROLL];
#pragma unroll
        for (int u = 0; u < G4_BENCH_READ_UNROLL; u++) v[u] = buf[i + u * stride];
#pragma unroll
        for (int u = 0; u < G4_BENCH_READ_UNROLL; u++) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
    }
    for (; i < n; i += stride) {
        const uint4 v = buf[i];
        acc ^= v.x ^ v.y ^ v.z ^ v.w;
    }
    if (acc == SINK_MAGIC) *sink = acc;
}

g4_status g4_bench_read(const void *buf, size_t bytes, unsigned *sink, int blocks,
                        cudaStream_t stream) {
    if (bytes % 16 || ((uintptr_t)buf & 15) || blocks < 1)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "bench read: %zu bytes at %p, %d blocks", bytes,
                       buf, blocks);
    read_kernel G4_LAUNCH(blocks, G4_BENCH_READ_THREADS, 0, stream)((const uint4 *)buf, bytes / 16,
                                                                   sink);
    return g4_cuda_launch_status("read_kernel");
}
