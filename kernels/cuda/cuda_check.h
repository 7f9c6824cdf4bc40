// G4_CUDA_TRY / G4_CUBLAS_TRY: turn a failed CUDA runtime or cuBLAS call into a g4_status with
// the library's error text and return it; out-of-memory becomes G4_ERR_OUT_OF_MEMORY, anything
// else G4_ERR_DEVICE. g4_cuda_launch_status() does the same for the last kernel launch.
// A handled failure also resets the thread's last CUDA error (cudaGetLastError), so that a later
// launch check does not report it again; sticky errors (a faulted context) stay regardless.
// Never exits or prints.
#ifndef G4_CUDA_CHECK_H
#define G4_CUDA_CHECK_H

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif
#include "status.h"
#ifdef __cplusplus
}
#endif

#define G4_CUDA_TRY(expr)                                                                          \
    do {                                                                                           \
        cudaError_t err_ = (expr);                                                                 \
        if (err_ != cudaSuccess) {                                                                 \
            g4_status st_ = g4_fail(                                                               \
                err_ == cudaErrorMemoryAllocation ? G4_ERR_OUT_OF_MEMORY : G4_ERR_DEVICE,          \
                "%s: %s (%s)", #expr, cudaGetErrorString(err_), cudaGetErrorName(err_));           \
            cudaGetLastError();                                                                    \
            return st_;                                                                            \
        }                                                                                          \
    } while (0)

#define G4_CUBLAS_TRY(expr)                                                                        \
    do {                                                                                           \
        cublasStatus_t st_ = (expr);                                                               \
        if (st_ != CUBLAS_STATUS_SUCCESS) {                                                        \
            cudaGetLastError();                                                                    \
            return g4_fail(st_ == CUBLAS_STATUS_ALLOC_FAILED ? G4_ERR_OUT_OF_MEMORY : G4_ERR_DEVICE, \
                           "%s: %s (cuBLAS status %d)", #expr, cublasGetStatusString(st_),         \
                           (int)st_);                                                              \
        }                                                                                          \
    } while (0)

// Status of the kernel launch just made (cudaGetLastError): `what` names the kernel.
static inline g4_status g4_cuda_launch_status(const char *what) {
    cudaError_t err = cudaGetLastError();
    if (err == cudaSuccess) return G4_OK;
    return g4_fail(err == cudaErrorMemoryAllocation ? G4_ERR_OUT_OF_MEMORY : G4_ERR_DEVICE,
                   "%s: kernel launch failed: %s (%s)", what, cudaGetErrorString(err),
                   cudaGetErrorName(err));
}

#endif
