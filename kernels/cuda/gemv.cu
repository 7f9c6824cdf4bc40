// Decode products: 1..8 tokens times a bf16 weight matrix, each weight read once from device
// memory for all tokens (decode is bound by those reads), with the MLP's gelu(gate) * up and
// the PLE gate fused into the epilogue; and g4_cuda_linear, which picks this or the cuBLAS GEMM.
// CPU reference: g4_matmul_cpu (FP32) / g4_matmul_cpu_bf16act (BF16), g4_gelu_tanh_cpu.
//
// Grid: (row blocks, splits). A block of 8 warps owns 8 * RPW = 32 consecutive weight rows
// (GELU_MUL: 8 * 2 output columns, i.e. 16 gate rows and the 16 matching up rows, so one warp
// holds gate and up of its outputs) for `groups` consecutive row groups, and one column range
// of cols / splits. Per chunk of columns the block stages the tokens' activations in shared
// memory (gemv.cuh), then every warp streams its rows. With one split the warp writes its
// outputs directly; with several, each block writes partials and the last block of a row block
// to arrive (an atomic counter after a __threadfence) adds them in split order, applies the
// epilogue and rearms the counter, so split-K costs no extra launch and is deterministic.
#include "gemv.cuh"

// Automatic split / grouping: aim at this many blocks per SM.
#define BLOCKS_PER_SM 2
#define MAX_GROUPS 8

template <int NT, int EPI>
static __device__ __forceinline__ void write_outputs(float *out, const float (&acc)[NT][G4_GEMV_RPW],
                                                     int64_t o0, int64_t n_out, const float *ple,
                                                     int ple_layers, int ple_layer) {
    constexpr int OPW = EPI == G4_CUDA_EPI_GELU_MUL ? G4_GEMV_RPW / 2 : G4_GEMV_RPW;
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int t = 0; t < NT; t++)
#pragma unroll
        for (int o = 0; o < OPW; o++) {
            const int64_t oc = o0 + o;
            if (lane != t * OPW + o || oc >= n_out) continue;
            float v = acc[t][o];
            if (EPI == G4_CUDA_EPI_GELU_MUL) v = gelu_tanh(v) * acc[t][o + OPW];
            if (EPI == G4_CUDA_EPI_PLE_GATE)
                v = gelu_tanh(v) * ple[((int64_t)t * ple_layers + ple_layer) * n_out + oc];
            out[t * n_out + oc] = v;
        }
}

template <int NT, int EPI>
static __global__ void __launch_bounds__(G4_GEMV_THREADS, 1)
gemv_kernel(float *out, const float *x, const g4_bf16 *w, int rows, int cols, int ks, int groups,
            int bf16_act, const float *ple, int ple_layers, int ple_layer, float *partial,
            unsigned *counters) {
    __shared__ __align__(16) float xs[G4_GEMV_XS_FLOATS];
    __shared__ bool is_last;
    constexpr int OPW = EPI == G4_CUDA_EPI_GELU_MUL ? G4_GEMV_RPW / 2 : G4_GEMV_RPW;
    constexpr int KC = g4_gemv_chunk<NT>();
    const int warp = threadIdx.x >> 5;
    const int split = blockIdx.y, n_splits = gridDim.y;
    const int k0 = split * ks, k1 = min(cols, k0 + ks);
    const int64_t n_out = EPI == G4_CUDA_EPI_GELU_MUL ? rows / 2 : rows;
    const bool one_chunk = k1 - k0 <= KC;
    for (int g = 0; g < groups; g++) {
        const int64_t slot0 = ((int64_t)(blockIdx.x * groups + g) * G4_GEMV_WARPS + warp);
        const int64_t o0 = slot0 * OPW; // the warp's first output column
        const g4_bf16 *wr[G4_GEMV_RPW];
#pragma unroll
        for (int j = 0; j < G4_GEMV_RPW; j++) {
            const int64_t o = o0 + j % OPW;
            const int64_t r = j < OPW ? o : n_out + o; // GELU_MUL: gate rows, then up rows
            wr[j] = o < n_out ? w + r * cols : nullptr;
        }
        float acc[NT][G4_GEMV_RPW];
#pragma unroll
        for (int t = 0; t < NT; t++)
#pragma unroll
            for (int j = 0; j < G4_GEMV_RPW; j++) acc[t][j] = 0.0f;
        for (int kk = k0; kk < k1; kk += KC) {
            const int len = min(KC, k1 - kk);
            if (!one_chunk || g == 0) { // one chunk: staged once for every group
                __syncthreads();        // the previous chunk's readers are done
                g4_gemv_stage<NT>(xs, x, cols, kk, len, bf16_act != 0);
                __syncthreads();
            }
            g4_gemv_warp_dot<NT>(acc, wr, xs, len, kk, kk, kk + len);
        }
#pragma unroll
        for (int t = 0; t < NT; t++)
#pragma unroll
            for (int j = 0; j < G4_GEMV_RPW; j++) acc[t][j] = warp_sum(acc[t][j]);
        if (n_splits == 1) {
            write_outputs<NT, EPI>(out, acc, o0, n_out, ple, ple_layers, ple_layer);
            continue;
        }
        // Split-K (groups == 1): partial[split][t][slot * RPW + j], then the last block sums.
        const int64_t stride = (int64_t)gridDim.x * G4_GEMV_WARPS * G4_GEMV_RPW;
        const int lane = threadIdx.x & 31;
#pragma unroll
        for (int t = 0; t < NT; t++)
#pragma unroll
            for (int j = 0; j < G4_GEMV_RPW; j++)
                if (lane == t * G4_GEMV_RPW + j)
                    partial[((int64_t)split * NT + t) * stride + slot0 * G4_GEMV_RPW + j] = acc[t][j];
        __threadfence(); // the partials are visible device-wide before the arrival is counted
        __syncthreads();
        if (threadIdx.x == 0) is_last = atomicAdd(&counters[blockIdx.x], 1u) == (unsigned)n_splits - 1;
        __syncthreads();
        if (!is_last) return;
        __threadfence();
        const volatile float *vp = partial; // other blocks' writes: not through a stale L1 line
#pragma unroll
        for (int t = 0; t < NT; t++)
#pragma unroll
            for (int j = 0; j < G4_GEMV_RPW; j++) {
                float sum = 0.0f;
                for (int sp = 0; sp < n_splits; sp++)
                    sum += vp[((int64_t)sp * NT + t) * stride + slot0 * G4_GEMV_RPW + j];
                acc[t][j] = sum;
            }
        write_outputs<NT, EPI>(out, acc, o0, n_out, ple, ple_layers, ple_layer);
        if (threadIdx.x == 0) counters[blockIdx.x] = 0; // rearmed for the next launch
    }
}

bool g4_cuda_gemv_supported(const float *x, const g4_bf16 *w, int n_tokens, int cols) {
    return n_tokens >= 1 && n_tokens <= G4_CUDA_GEMV_MAX_TOKENS && cols >= 8 && cols % 8 == 0 &&
           (uintptr_t)w % 16 == 0 && (uintptr_t)x % 16 == 0;
}

typedef void (*gemv_fn)(float *, const float *, const g4_bf16 *, int, int, int, int, int,
                        const float *, int, int, float *, unsigned *);

template <int EPI> static gemv_fn pick(int n) {
    switch (n) {
    case 1: return gemv_kernel<1, EPI>;
    case 2: return gemv_kernel<2, EPI>;
    case 3: return gemv_kernel<3, EPI>;
    case 4: return gemv_kernel<4, EPI>;
    case 5: return gemv_kernel<5, EPI>;
    case 6: return gemv_kernel<6, EPI>;
    case 7: return gemv_kernel<7, EPI>;
    default: return gemv_kernel<8, EPI>;
    }
}

g4_status g4_cuda_gemv(float *out, const float *x, const g4_bf16 *w, int n_tokens, int rows,
                       int cols, bool bf16_act, enum g4_cuda_epilogue epi, const float *ple,
                       int ple_layers, int ple_layer, int n_splits,
                       const struct g4_cuda_gemv_scratch *scr, cudaStream_t stream) {
    if (n_tokens < 1 || n_tokens > G4_CUDA_GEMV_MAX_TOKENS || rows < 1 || cols < 1 || n_splits < 0)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "cuda gemv: n_tokens %d (1..%d), rows %d, cols %d, splits %d",
                       n_tokens, G4_CUDA_GEMV_MAX_TOKENS, rows, cols, n_splits);
    if (cols % 8 || (uintptr_t)w % 16 || (uintptr_t)x % 16)
        return g4_fail(G4_ERR_INVALID_ARGUMENT,
                       "cuda gemv: 16-byte loads need cols %% 8 == 0 (cols %d) and 16-byte aligned "
                       "weights and activations", cols);
    if (epi != G4_CUDA_EPI_NONE && epi != G4_CUDA_EPI_GELU_MUL && epi != G4_CUDA_EPI_PLE_GATE)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "cuda gemv: unknown epilogue %d", (int)epi);
    if (epi == G4_CUDA_EPI_GELU_MUL && rows % 2)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "cuda gemv: gelu(gate) * up needs an even row count (%d)", rows);
    if (epi == G4_CUDA_EPI_PLE_GATE && (!ple || ple_layer < 0 || ple_layer >= ple_layers))
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "cuda gemv: PLE gate of layer %d of %d (ple %p)",
                       ple_layer, ple_layers, (const void *)ple);
    if (!scr || scr->n_sms < 1)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "cuda gemv: no scratch");
    const int64_t n_out = epi == G4_CUDA_EPI_GELU_MUL ? rows / 2 : rows;
    const int opw = epi == G4_CUDA_EPI_GELU_MUL ? G4_GEMV_RPW / 2 : G4_GEMV_RPW;
    const int64_t row_blocks = g4_ceil_div(n_out, (int64_t)G4_GEMV_WARPS * opw);
    int64_t target = (int64_t)BLOCKS_PER_SM * scr->n_sms;
    if (target > G4_CUDA_GEMV_COUNTERS / 2) target = G4_CUDA_GEMV_COUNTERS / 2;
    int64_t groups = 1, splits = n_splits;
    if (splits == 0) {
        if (row_blocks >= 2 * target) {
            groups = row_blocks / (2 * target);
            if (groups > MAX_GROUPS) groups = MAX_GROUPS;
        }
        splits = row_blocks < target ? g4_ceil_div(target, row_blocks) : 1;
        if (splits > cols / G4_GEMV_KSTEP) splits = cols / G4_GEMV_KSTEP; // >= 1 column step each
        if (splits < 1) splits = 1;
    }
    // columns per split: a multiple of the warp's load step when automatic, of 8 when asked
    const int64_t unit = n_splits ? 8 : G4_GEMV_KSTEP;
    const int64_t ks = g4_ceil_div(g4_ceil_div(cols, splits), unit) * unit;
    splits = g4_ceil_div(cols, ks);
    const int64_t grid_x = g4_ceil_div(row_blocks, groups);
    if (grid_x > 0x7fffffff)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "cuda gemv: %d rows exceed the grid", rows);
    if (splits > 1) {
        const size_t need = (size_t)splits * n_tokens * grid_x * G4_GEMV_WARPS * G4_GEMV_RPW;
        if (!scr->partial || !scr->counters || need > scr->partial_floats || grid_x > scr->n_counters)
            return g4_fail(G4_ERR_INVALID_ARGUMENT,
                           "cuda gemv: %lld splits of %lld row blocks need %zu partial floats and "
                           "%lld counters (scratch: %zu, %d)", (long long)splits, (long long)grid_x,
                           need, (long long)grid_x, scr->partial_floats, scr->n_counters);
    }
    gemv_fn fn = epi == G4_CUDA_EPI_GELU_MUL   ? pick<G4_CUDA_EPI_GELU_MUL>(n_tokens)
                 : epi == G4_CUDA_EPI_PLE_GATE ? pick<G4_CUDA_EPI_PLE_GATE>(n_tokens)
                                               : pick<G4_CUDA_EPI_NONE>(n_tokens);
    const dim3 grid((unsigned)grid_x, (unsigned)splits);
    fn G4_LAUNCH(grid, G4_GEMV_THREADS, 0, stream)(out, x, w, rows, cols, (int)ks, (int)groups,
                                                    bf16_act ? 1 : 0, ple, ple_layers, ple_layer,
                                                    scr->partial, scr->counters);
    return g4_cuda_launch_status("gemv_kernel");
}

g4_status g4_cuda_linear(const struct g4_cuda_linear_ctx *ctx, float *out, const float *x,
                         const g4_bf16 *w, int n_tokens, int rows, int cols, bool bf16_act,
                         enum g4_cuda_epilogue epi, const float *ple, int ple_layers,
                         int ple_layer, float *tmp) {
    if (g4_cuda_gemv_supported(x, w, n_tokens, cols))
        return g4_cuda_gemv(out, x, w, n_tokens, rows, cols, bf16_act, epi, ple, ple_layers,
                            ple_layer, 0, &ctx->gemv, ctx->stream);
    if (epi != G4_CUDA_EPI_NONE && !tmp)
        return g4_fail(G4_ERR_INVALID_ARGUMENT, "cuda linear: epilogue %d needs tmp", (int)epi);
    float *y = epi == G4_CUDA_EPI_NONE ? out : tmp;
    G4_TRY(g4_cuda_matmul(ctx->blas, y, x, w, n_tokens, rows, cols, bf16_act, &ctx->gemm, ctx->stream));
    if (epi == G4_CUDA_EPI_GELU_MUL) return g4_cuda_gelu_mul(out, y, n_tokens, rows / 2, ctx->stream);
    if (epi == G4_CUDA_EPI_PLE_GATE)
        return g4_cuda_ple_gate(out, y, ple, n_tokens, ple_layers, ple_layer, rows, ctx->stream);
    return G4_OK;
}
