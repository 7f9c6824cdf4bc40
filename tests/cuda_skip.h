// For the GPU tests (test_*_cuda.c, built with G4_WITH_CUDA): whether this machine has no CUDA
// device, printing why (the reason matters on a GPU machine: an old driver, say). Their main()
// then returns 77, which ctest reports as "skipped".
#ifndef G4_TESTS_CUDA_SKIP_H
#define G4_TESTS_CUDA_SKIP_H

#include <stdio.h>

#include <cuda_runtime_api.h>

static inline int g4_no_cuda_device(void) {
    int n_devices = 0;
    const cudaError_t err = cudaGetDeviceCount(&n_devices);
    if (err == cudaSuccess && n_devices > 0) return 0;
    printf("skipped: no CUDA device (%s)\n", err == cudaSuccess ? "0 devices" : cudaGetErrorString(err));
    return 1;
}

#endif
