// The GPU benchmark's own kernel (tests/bench/gpu_bench_kernels.cu): a streaming read that
// measures the device's read bandwidth in the benchmark's run, the ceiling its decode limits are
// computed from. C linkage; compiled by nvcc, or by the host compiler against tests/emu.
#ifndef G4_GPU_BENCH_KERNELS_H
#define G4_GPU_BENCH_KERNELS_H

#include <stddef.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif
#include "status.h"

#define G4_BENCH_READ_THREADS 512
#define G4_BENCH_READ_UNROLL 4 // independent 16-byte loads in flight per thread

// Reads every 16-byte word of buf (bytes, a multiple of 16; buf 16-byte aligned) once, with
// `blocks` blocks of G4_BENCH_READ_THREADS threads in a grid-stride loop of
// G4_BENCH_READ_UNROLL loads per thread per iteration; *sink is written only if the XOR of
// everything read equals a fixed value (so the loads cannot be dropped). Enqueue only.
g4_status g4_bench_read(const void *buf, size_t bytes, unsigned *sink, int blocks,
                        cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
