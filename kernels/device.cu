// CUDA backend instance. This version only opens the device: the GPU forward pass (kernels
// for embedding, norms, RoPE, attention, MLP, MoE, sampling) is not implemented yet, so loading
// with GEMMA4_DEVICE_CUDA fails cleanly with G4_ERR_UNSUPPORTED after checking the device.
#include <cuda_runtime.h>

extern "C" {
#include "backend.h"
}
#include "cuda_check.h"

static g4_status cuda_model_init(struct g4_model *m) {
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess || n == 0)
        return g4_fail(G4_ERR_DEVICE, "no CUDA device (%s)",
                       err == cudaSuccess ? "0 devices" : cudaGetErrorString(err));
    const int index = g4_model_device_index(m);
    if (index >= n)
        return g4_fail(G4_ERR_DEVICE, "CUDA device %d requested, %d present", index, n);
    G4_CUDA_TRY(cudaSetDevice(index));
    return g4_fail(G4_ERR_UNSUPPORTED,
                   "the CUDA forward pass is not implemented in this version; use GEMMA4_DEVICE_CPU");
}

static void cuda_model_free(struct g4_model *m) { (void)m; }

extern "C" const struct g4_backend g4_backend_cuda = {
    "cuda", cuda_model_init, cuda_model_free, NULL, NULL, NULL, NULL,
};
