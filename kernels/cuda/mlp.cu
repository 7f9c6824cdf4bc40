// Gated GELU activations: gelu_tanh(gate) * up of Gemma4TextMLP and of each MoE expert (gate and
// up come from one GEMM over the concatenated [gate; up] weight rows), and the PLE gate
// gelu_tanh(per_layer_input_gate(h)) * per_layer_input, in fp32.
// CPU reference: g4_gelu_tanh_cpu (kernels/cpu/ops_cpu.h).
#include "common.cuh"

static __global__ void gelu_mul_kernel(float *out, const float *gu, int64_t n_rows, int dim) {
    const int64_t n = n_rows * dim;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n;
         e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t r = e / dim, i = e % dim;
        const float *row = gu + r * 2 * dim;
        out[e] = gelu_tanh(row[i]) * row[dim + i];
    }
}

g4_status g4_cuda_gelu_mul(float *out, const float *gu, int n_rows, int dim,
                           cudaStream_t stream) {
    if (n_rows < 1 || dim < 1)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "cuda gelu_mul: n_rows %d, dim %d", n_rows, dim);
    const size_t n = (size_t)n_rows * dim;
    gelu_mul_kernel G4_LAUNCH(g4_grid_1d(n, 256), 256, 0, stream)(out, gu, n_rows, dim);
    return g4_cuda_launch_status("gelu_mul_kernel");
}

static __global__ void ple_gate_kernel(float *out, const float *g, const float *ple,
                                       int64_t n_tokens, int n_layers, int layer, int dim) {
    const int64_t n = n_tokens * dim;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n;
         e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t t = e / dim, i = e % dim;
        out[e] = gelu_tanh(g[e]) * ple[(t * n_layers + layer) * dim + i];
    }
}

g4_status g4_cuda_ple_gate(float *out, const float *g, const float *ple, int n_tokens,
                           int n_layers, int layer, int dim, cudaStream_t stream) {
    if (n_tokens < 1 || dim < 1 || layer < 0 || layer >= n_layers)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "cuda ple_gate: n_tokens %d, layer %d of %d, dim %d",
                       n_tokens, layer, n_layers, dim);
    const size_t n = (size_t)n_tokens * dim;
    ple_gate_kernel G4_LAUNCH(g4_grid_1d(n, 256), 256, 0, stream)(out, g, ple, n_tokens, n_layers, layer,
                                                            dim);
    return g4_cuda_launch_status("ple_gate_kernel");
}
