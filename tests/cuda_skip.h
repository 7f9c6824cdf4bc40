// For the GPU tests (test_*_cuda.c, built with G4_WITH_CUDA): whether this machine has no CUDA
// device, printing why (the reason matters on a GPU machine: an old driver, say). Their main()
// then returns 77, which ctest reports as "skipped".
#ifndef G4_TESTS_CUDA_SKIP_H
#define G4_TESTS_CUDA_SKIP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

static inline int g4_no_cuda_device(void) {
    int n_devices = 0;
    const cudaError_t err = cudaGetDeviceCount(&n_devices);
    if (err == cudaSuccess && n_devices > 0) return 0;
    printf("skipped: no CUDA device (%s)\n", err == cudaSuccess ? "0 devices" : cudaGetErrorString(err));
    return 1;
}

// Keeps the tests named in $G4_CUDA_TESTS (comma-separated; unset: all), in order; returns how
// many remain. The sanitizer builds of the CPU execution harness (tests/emu) run a subset.
static inline size_t g4_cuda_tests_select(struct CMUnitTest *tests, size_t n) {
    const char *only = getenv("G4_CUDA_TESTS");
    if (!only || !*only) return n;
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        const size_t len = strlen(tests[i].name);
        for (const char *p = only; *p;) {
            const char *end = strchr(p, ',');
            const size_t l = end ? (size_t)(end - p) : strlen(p);
            if (l == len && strncmp(p, tests[i].name, l) == 0) {
                tests[kept++] = tests[i];
                break;
            }
            p += l + (end != NULL);
        }
    }
    printf("G4_CUDA_TESTS: running %zu of %zu tests\n", kept, n);
    return kept;
}

#endif
