// The logits tail: final softcap (cap * tanh(x / cap), Gemma4ForCausalLM with
// final_logit_softcapping) and greedy argmax over a vocabulary row on the device.
// CPU reference: g4_softcap_cpu (kernels/cpu/ops_cpu.h); argmax as g4_sampler_sample at temperature 0.
#include "common.cuh"

static __global__ void softcap_kernel(float *x, size_t n, float cap) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        x[i] = cap * tanhf(x[i] / cap);
}

g4_status g4_cuda_softcap(float *x, size_t n, float cap, cudaStream_t stream) {
    if (n == 0 || !(cap > 0.0f))
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "cuda softcap: n %zu, cap %g", n, cap);
    softcap_kernel G4_LAUNCH(g4_grid_1d(n, 256), 256, 0, stream)(x, n, cap);
    return g4_cuda_launch_status("softcap_kernel");
}

// One block per row.
static __global__ void argmax_kernel(int32_t *token, const float *logits, int n_vocab) {
    const float *row = logits + (int64_t)blockIdx.x * n_vocab;
    float bv = -INFINITY;
    int bi = -1;
    for (int i = threadIdx.x; i < n_vocab; i += blockDim.x) {
        const float v = row[i] == row[i] ? row[i] : -INFINITY;
        if (ranks_first(v, i, bv, bi)) {
            bv = v;
            bi = i;
        }
    }
    block_argmax(&bv, &bi);
    if (threadIdx.x == 0) token[blockIdx.x] = bi;
}

g4_status g4_cuda_argmax(int32_t *token, const float *logits, int n_rows, int n_vocab,
                         cudaStream_t stream) {
    if (n_rows < 1 || n_vocab < 1)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "cuda argmax: n_rows %d, n_vocab %d", n_rows,
                       n_vocab);
    argmax_kernel G4_LAUNCH(n_rows, 1024, 0, stream)(token, logits, n_vocab);
    return g4_cuda_launch_status("argmax_kernel");
}
