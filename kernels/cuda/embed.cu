// Embedding gathers: the scaled token embedding (Gemma4TextScaledWordEmbedding) and the
// per-layer-input combination of Gemma4TextModel.project_per_layer_inputs (PLE). The table rows
// are bf16 on the device; the scale is applied in fp32, as the fp32 reference does.
// CPU reference: embed_row / per_layer_inputs in kernels/cpu/forward_cpu.c (g4_to_f32, g4_rmsnorm_cpu).
#include "common.cuh"

// One block per token.
static __global__ void embed_kernel(float *x, const g4_bf16 *table, const int32_t *tokens, int dim,
                                    float scale) {
    const int64_t t = blockIdx.x;
    const g4_bf16 *row = table + (int64_t)tokens[t] * dim;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) x[t * dim + i] = bf2f(row[i]) * scale;
}

g4_status g4_cuda_embed(float *x, const g4_bf16 *table, const int32_t *tokens, int n_tokens,
                        int dim, float scale, cudaStream_t stream) {
    if (n_tokens < 1 || dim < 1)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "cuda embed: n_tokens %d, dim %d", n_tokens, dim);
    embed_kernel G4_LAUNCH(n_tokens, 256, 0, stream)(x, table, tokens, dim, scale);
    return g4_cuda_launch_status("embed_kernel");
}

// One block per (token, layer) row of dim elements: row r = t * n_layers + layer.
static __global__ void ple_combine_kernel(float *ple, const g4_bf16 *table, const int32_t *tokens,
                                          const float *norm_w, int n_layers, int dim,
                                          float proj_scale, float tok_scale, float eps) {
    const int64_t r = blockIdx.x, t = r / n_layers, layer = r % n_layers;
    float *row = ple + r * dim;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        const float v = row[i] * proj_scale;
        ss += v * v;
    }
    const float inv = rsqrtf(block_sum(ss) / (float)dim + eps);
    const g4_bf16 *tok = table + ((int64_t)tokens[t] * n_layers + layer) * dim;
    const float mix = 0.70710678118654752f; // 2^-0.5
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        const float v = row[i] * proj_scale * inv * norm_w[i];
        row[i] = (v + bf2f(tok[i]) * tok_scale) * mix;
    }
}

g4_status g4_cuda_ple_combine(float *ple, const g4_bf16 *table, const int32_t *tokens,
                              const float *norm_w, int n_tokens, int n_layers, int dim,
                              float proj_scale, float tok_scale, float eps, cudaStream_t stream) {
    if (n_tokens < 1 || n_layers < 1 || dim < 1)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "cuda ple_combine: n_tokens %d, n_layers %d, dim %d",
                       n_tokens, n_layers, dim);
    const unsigned rows = (unsigned)n_tokens * (unsigned)n_layers;
    ple_combine_kernel G4_LAUNCH(rows, 128, 0, stream)(ple, table, tokens, norm_w, n_layers, dim,
                                                 proj_scale, tok_scale, eps);
    return g4_cuda_launch_status("ple_combine_kernel");
}
