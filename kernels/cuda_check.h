// G4_CUDA_TRY: turns a failed CUDA runtime call into a g4_status with the CUDA error text and
// returns it. Never exits or prints.
#ifndef G4_CUDA_CHECK_H
#define G4_CUDA_CHECK_H

#include <cuda_runtime.h>

#include "status.h"

#define G4_CUDA_TRY(expr)                                                                          \
    do {                                                                                           \
        cudaError_t err_ = (expr);                                                                 \
        if (err_ != cudaSuccess)                                                                   \
            return g4_fail(err_ == cudaErrorMemoryAllocation ? G4_ERR_OUT_OF_MEMORY : G4_ERR_DEVICE, \
                           "%s: %s (%s)", #expr, cudaGetErrorString(err_), cudaGetErrorName(err_)); \
    } while (0)

#endif
