// The CPU execution harness's own checks (tests/emu/README.md), each on a small kernel written
// to trip it: a check that never fires would let the CUDA engine's tests pass for the wrong
// reason. Faults are expected here (g4emu_expect_faults), counted and cleared after each case;
// the misaligned float4 load stops the process (UBSan), so it runs in a child.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#define FULL 0xffffffffu

// Runs a launch expected to fault: one more fault, and the sync reports the sticky error.
#define EXPECT_FAULT(launch)                                                                       \
    do {                                                                                           \
        g4emu_expect_faults(1);                                                                    \
        const int before_ = g4emu_fault_count();                                                   \
        launch;                                                                                    \
        assert_int_not_equal(cudaDeviceSynchronize(), cudaSuccess);                                \
        assert_int_equal(g4emu_fault_count(), before_ + 1);                                        \
        g4emu_expect_faults(0);                                                                    \
        assert_int_equal(cudaDeviceSynchronize(), cudaSuccess);                                    \
    } while (0)

static __global__ void early_exit_then_barrier(int *out) {
    if (threadIdx.x < 16) return;
    __syncthreads();
    out[threadIdx.x] = 1;
}
static __global__ void barriers_at_two_sites(int *out) {
    if (threadIdx.x & 1) __syncthreads();
    else __syncthreads();
    out[threadIdx.x] = 1;
}
static __global__ void shuffle_with_exited_lane(float *out) {
    if (threadIdx.x == 3) return;
    out[threadIdx.x] = __shfl_xor_sync(FULL, (float)threadIdx.x, 1);
}
static __global__ void shuffle_mask_omits_caller(float *out) {
    out[threadIdx.x] = __shfl_sync(0x1u, (float)threadIdx.x, 0);
}
static __global__ void shuffle_reads_outside_mask(float *out) {
    if (threadIdx.x < 16) out[threadIdx.x] = __shfl_xor_sync(0xffffu, (float)threadIdx.x, 16);
}
static __global__ void shuffle_at_barrier_lane(float *out) {
    if (threadIdx.x == 0) __syncthreads();
    else out[threadIdx.x] = __shfl_xor_sync(FULL, 1.0f, 1);
}

static void test_faults(void **state) {
    (void)state;
    int *d;
    assert_int_equal(cudaMalloc((void **)&d, 64 * sizeof(int)), cudaSuccess);
    EXPECT_FAULT(early_exit_then_barrier G4_LAUNCH(1, 64)(d));
    EXPECT_FAULT(barriers_at_two_sites G4_LAUNCH(1, 64)(d));
    EXPECT_FAULT(shuffle_with_exited_lane G4_LAUNCH(1, 32)((float *)d));
    EXPECT_FAULT(shuffle_mask_omits_caller G4_LAUNCH(1, 32)((float *)d));
    EXPECT_FAULT(shuffle_reads_outside_mask G4_LAUNCH(1, 32)((float *)d));
    EXPECT_FAULT(shuffle_at_barrier_lane G4_LAUNCH(1, 32)((float *)d));
    EXPECT_FAULT(shuffle_with_exited_lane G4_LAUNCH(1, 20)((float *)d)); // full mask, 20 lanes
    assert_int_equal(cudaFree(d), cudaSuccess);
}

// Correct collectives give CUDA's results: xor / up / down / idx with widths, ballot, any, all.
static __global__ void collectives(int *out) {
    const int l = threadIdx.x;
    out[0 * 32 + l] = __shfl_xor_sync(FULL, l, 5);
    out[1 * 32 + l] = __shfl_up_sync(FULL, l, 3, 16);
    out[2 * 32 + l] = __shfl_down_sync(FULL, l, 3, 16);
    out[3 * 32 + l] = __shfl_sync(FULL, l, 33, 8); // srcLane modulo width, in its segment
    out[4 * 32 + l] = (int)__ballot_sync(FULL, l % 3 == 0);
    out[5 * 32 + l] = __any_sync(FULL, l == 31) + 2 * __all_sync(FULL, l < 31);
}

static void test_collectives(void **state) {
    (void)state;
    int *d, h[6 * 32];
    assert_int_equal(cudaMalloc((void **)&d, sizeof h), cudaSuccess);
    collectives G4_LAUNCH(1, 32)(d);
    assert_int_equal(cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost), cudaSuccess);
    unsigned ballot = 0;
    for (int l = 0; l < 32; l += 3) ballot |= 1u << l;
    for (int l = 0; l < 32; l++) {
        assert_int_equal(h[l], l ^ 5);
        assert_int_equal(h[32 + l], (l % 16) < 3 ? l : l - 3);
        assert_int_equal(h[64 + l], (l % 16) + 3 >= 16 ? l : l + 3);
        assert_int_equal(h[96 + l], (l & ~7) + 1);
        assert_int_equal((unsigned)h[128 + l], ballot);
        assert_int_equal(h[160 + l], 1);
    }
    assert_int_equal(cudaFree(d), cudaSuccess);
}

// Without the barrier, some thread reads its neighbour's slot before the neighbour wrote it
// (the schedule is random): the NaN poison of fresh shared memory shows. With it, never.
static __global__ void neighbour(float *out, int with_barrier) {
    extern __shared__ __align__(16) unsigned char g4_smem[];
    float *s = reinterpret_cast<float *>(g4_smem);
    s[threadIdx.x] = (float)threadIdx.x;
    if (with_barrier) __syncthreads();
    out[threadIdx.x] = s[(threadIdx.x + 1) % blockDim.x];
    (void)__shfl_xor_sync(FULL, 0, 1); // a warp-level switch point as real kernels have
}

static void test_missing_barrier(void **state) {
    (void)state;
    float *d, h[256];
    assert_int_equal(cudaMalloc((void **)&d, sizeof h), cudaSuccess);
    for (int with = 0; with < 2; with++) {
        neighbour G4_LAUNCH(1, 256, 256 * sizeof(float))(d, with);
        assert_int_equal(cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost), cudaSuccess);
        int wrong = 0;
        for (int t = 0; t < 256; t++) wrong += h[t] != (float)((t + 1) % 256);
        printf("neighbour read %s the barrier: %d of 256 wrong\n", with ? "after" : "without", wrong);
        if (with) assert_int_equal(wrong, 0);
        else assert_true(wrong > 0);
    }
    assert_int_equal(cudaFree(d), cudaSuccess);
}

static __global__ void nothing(void) {}
static __global__ void uses_smem(float *out) {
    extern __shared__ __align__(16) unsigned char g4_smem[];
    reinterpret_cast<float *>(g4_smem)[threadIdx.x] = 1.0f;
    out[0] = 0.0f;
}

// What a GPU refuses at launch is a launch error (cudaGetLastError), not a fault.
static void test_launch_limits(void **state) {
    (void)state;
    nothing G4_LAUNCH(1, 1025)();
    assert_int_equal(cudaGetLastError(), cudaErrorInvalidConfiguration);
    nothing G4_LAUNCH(dim3(1, 65536), 32)();
    assert_int_equal(cudaGetLastError(), cudaErrorInvalidConfiguration);
    nothing G4_LAUNCH(1, dim3(8, 8, 65))();
    assert_int_equal(cudaGetLastError(), cudaErrorInvalidConfiguration);
    float *d;
    assert_int_equal(cudaMalloc((void **)&d, 4), cudaSuccess);
    uses_smem G4_LAUNCH(1, 32, 64 << 10)(d);
    assert_int_equal(cudaGetLastError(), cudaErrorInvalidValue); // 64 KiB without the opt-in
    assert_int_equal(cudaFuncSetAttribute(uses_smem, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          64 << 10), cudaSuccess);
    uses_smem G4_LAUNCH(1, 32, 64 << 10)(d);
    assert_int_equal(cudaGetLastError(), cudaSuccess);
    assert_int_equal(cudaDeviceSynchronize(), cudaSuccess);
    assert_int_equal(cudaFree(d), cudaSuccess);
}

static __global__ void write_ones(float *out, int n) {
    for (int i = threadIdx.x; i < n; i += blockDim.x) out[i] = 1.0f;
}

// Fresh device memory is NaN; work runs at the next synchronization, so the host reading device
// memory before it (here directly: the harness's device memory is host memory) sees the poison.
static void test_poison_and_deferred(void **state) {
    (void)state;
    float *d;
    assert_int_equal(cudaMalloc((void **)&d, 64 * sizeof(float)), cudaSuccess);
    assert_true(isnan(d[0]) && isnan(d[63]));
    write_ones G4_LAUNCH(1, 32)(d, 64);
    assert_true(isnan(d[5])); // not run yet
    cudaStream_t s;
    assert_int_equal(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
    float h[64];
    assert_int_equal(cudaMemcpyAsync(h, d, sizeof h, cudaMemcpyDeviceToHost, s), cudaSuccess);
    assert_int_equal(cudaStreamSynchronize(s), cudaSuccess);
    for (int i = 0; i < 64; i++) assert_true(h[i] == 1.0f);
    // a copy whose device side runs past its allocation, and a copy in the wrong direction
    assert_int_equal(cudaMemcpy(h, d + 1, sizeof h, cudaMemcpyDeviceToHost), cudaErrorInvalidValue);
    assert_int_equal(cudaMemcpy(d, h, sizeof h, cudaMemcpyDeviceToHost), cudaErrorInvalidValue);
    assert_int_equal(cudaStreamDestroy(s), cudaSuccess);
    assert_int_equal(cudaFree(d), cudaSuccess);
}

// cublasGemmEx: documented argument checks, operands inside their allocations, and the product.
static void test_cublas(void **state) {
    (void)state;
    cublasHandle_t h;
    assert_int_equal(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
    const int m = 3, n = 2, k = 4; // C (m, n) = A^T (m, k) B (k, n), column-major
    float ha[k * m], hb[k * n], hc[m * n];
    for (int i = 0; i < k * m; i++) ha[i] = (float)(i % 5) - 2.0f;
    for (int i = 0; i < k * n; i++) hb[i] = (float)(i % 3) - 1.0f;
    float *a, *b, *c;
    assert_int_equal(cudaMalloc((void **)&a, sizeof ha), cudaSuccess);
    assert_int_equal(cudaMalloc((void **)&b, sizeof hb), cudaSuccess);
    assert_int_equal(cudaMalloc((void **)&c, sizeof hc), cudaSuccess);
    cudaMemcpy(a, ha, sizeof ha, cudaMemcpyHostToDevice);
    cudaMemcpy(b, hb, sizeof hb, cudaMemcpyHostToDevice);
    const float one = 1.0f, zero = 0.0f;
    assert_int_equal(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, a, CUDA_R_32F, k, b,
                                  CUDA_R_32F, k, &zero, c, CUDA_R_32F, m, CUBLAS_COMPUTE_32F,
                                  CUBLAS_GEMM_DEFAULT), CUBLAS_STATUS_SUCCESS);
    assert_int_equal(cudaMemcpy(hc, c, sizeof hc, cudaMemcpyDeviceToHost), cudaSuccess);
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            float want = 0.0f;
            for (int l = 0; l < k; l++) want += ha[i * k + l] * hb[j * k + l];
            assert_true(hc[j * m + i] == want); // beta 0: the NaN in C is not read
        }
    // lda below k for op T
    assert_int_equal(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, a, CUDA_R_32F, k - 1,
                                  b, CUDA_R_32F, k, &zero, c, CUDA_R_32F, m, CUBLAS_COMPUTE_32F,
                                  CUBLAS_GEMM_DEFAULT), CUBLAS_STATUS_INVALID_VALUE);
    // bf16 A with fp32 B: no such combination
    assert_int_equal(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, a, CUDA_R_16BF, k, b,
                                  CUDA_R_32F, k, &zero, c, CUDA_R_32F, m, CUBLAS_COMPUTE_32F,
                                  CUBLAS_GEMM_DEFAULT), CUBLAS_STATUS_NOT_SUPPORTED);
    // lda too large: A's last column lies past its allocation (a wrong leading dimension)
    EXPECT_FAULT(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, a, CUDA_R_32F, k + 1, b,
                              CUDA_R_32F, k, &zero, c, CUDA_R_32F, m, CUBLAS_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT));
    cudaFree(a), cudaFree(b), cudaFree(c);
    assert_int_equal(cublasDestroy(h), CUBLAS_STATUS_SUCCESS);
}

static __global__ void device_math(float *out, const float *x, int n) {
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        out[3 * i] = expf(x[i]);
        out[3 * i + 1] = powf(x[i] + 2.0f, 0.0f);
        out[3 * i + 2] = sqrtf(x[i] + 2.0f);
    }
}

static int ulps(float a, float b) {
    int32_t ia, ib;
    memcpy(&ia, &a, 4), memcpy(&ib, &b, 4);
    return ia > ib ? ia - ib : ib - ia;
}

// Device math is within CUDA's bounds of the host's but not equal to it; exact results stay.
static void test_device_math(void **state) {
    (void)state;
    enum { N = 1000 };
    float hx[N], ho[3 * N];
    for (int i = 0; i < N; i++) hx[i] = -1.5f + 3.0f * (float)i / N;
    float *x, *o;
    cudaMalloc((void **)&x, sizeof hx), cudaMalloc((void **)&o, sizeof ho);
    cudaMemcpy(x, hx, sizeof hx, cudaMemcpyHostToDevice);
    device_math G4_LAUNCH(1, 128)(o, x, N);
    assert_int_equal(cudaMemcpy(ho, o, sizeof ho, cudaMemcpyDeviceToHost), cudaSuccess);
    int moved = 0, worst = 0;
    for (int i = 0; i < N; i++) {
        const int u = ulps(ho[3 * i], (float)exp((double)hx[i]));
        moved += u != 0;
        worst = u > worst ? u : worst;
        assert_true(ho[3 * i + 1] == 1.0f);
        assert_true(ho[3 * i + 2] == sqrtf(hx[i] + 2.0f));
    }
    printf("expf on the device: %d of %d moved, at most %d ulp\n", moved, N, worst);
    assert_true(moved > N / 2);
    assert_true(worst <= 2);
    cudaFree(x), cudaFree(o);
}

static __global__ void misaligned_float4(float *out, const float *in) {
    const float4 v = reinterpret_cast<const float4 *>(in + 1)[threadIdx.x];
    out[threadIdx.x] = v.x;
}

// A 16-byte load from a 4-byte-aligned address stops the program (UBSan), as the GPU faults.
static void test_misaligned_load(void **state) {
    (void)state;
    fflush(stdout);
    const pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        float *in, *out;
        cudaMalloc((void **)&in, 1024), cudaMalloc((void **)&out, 1024);
        misaligned_float4 G4_LAUNCH(1, 32)(out, in);
        cudaDeviceSynchronize();
        _exit(0); // not reached when the check works
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    printf("misaligned float4 load: child %s %d\n", WIFEXITED(status) ? "exited" : "killed by",
           WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

// ---- CUDA graphs (stream capture) -----------------------------------------------------------
// out[i] = by_value + *from_device: the first argument is recorded with the launch, the second
// is read from device memory when the (re)played kernel runs.
static __global__ void graph_kernel(float *out, float by_value, const float *from_device, int n) {
    for (int i = threadIdx.x; i < n; i += blockDim.x) out[i] = by_value + *from_device;
}

// A captured sequence (pinned upload, kernel, memset, cuBLAS GEMM, pinned download) runs nothing
// while captured; each replay reads device and pinned memory as they are then, and replays the
// kernel's by-value arguments as they were at capture.
static void test_graph_replay(void **state) {
    (void)state;
    cudaGetLastError(); // the error an earlier case left
    enum { N = 64 };
    cudaStream_t s;
    assert_int_equal(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
    cublasHandle_t h;
    assert_int_equal(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
    assert_int_equal(cublasSetStream(h, s), CUBLAS_STATUS_SUCCESS);
    float *d_v, *d_out, *d_a, *d_b, *d_c, *h_v, *h_out;
    assert_int_equal(cudaMalloc((void **)&d_v, sizeof(float)), cudaSuccess);
    assert_int_equal(cudaMalloc((void **)&d_out, 2 * N * sizeof(float)), cudaSuccess);
    assert_int_equal(cudaMalloc((void **)&d_a, 4 * sizeof(float)), cudaSuccess);
    assert_int_equal(cudaMalloc((void **)&d_b, 2 * sizeof(float)), cudaSuccess);
    assert_int_equal(cudaMalloc((void **)&d_c, 2 * sizeof(float)), cudaSuccess);
    assert_int_equal(cudaMallocHost((void **)&h_v, sizeof(float)), cudaSuccess);
    assert_int_equal(cudaMallocHost((void **)&h_out, (2 * N + 2) * sizeof(float)), cudaSuccess);
    const float ha[4] = {1, 2, 3, 4}; // C (2, 1) = A (2, 2) B (2, 1), column-major
    assert_int_equal(cudaMemcpy(d_a, ha, sizeof ha, cudaMemcpyHostToDevice), cudaSuccess);
    cudaStreamCaptureStatus cs;
    assert_int_equal(cudaStreamIsCapturing(s, &cs), cudaSuccess);
    assert_int_equal(cs, cudaStreamCaptureStatusNone);

    float by_value = 10.0f;
    *h_v = 1.0f;
    assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    assert_int_equal(cudaStreamIsCapturing(s, &cs), cudaSuccess);
    assert_int_equal(cs, cudaStreamCaptureStatusActive);
    assert_int_equal(cudaMemcpyAsync(d_v, h_v, sizeof(float), cudaMemcpyHostToDevice, s), cudaSuccess);
    graph_kernel G4_LAUNCH(1, 32, 0, s)(d_out, by_value, d_v, N);
    assert_int_equal(cudaGetLastError(), cudaSuccess);
    assert_int_equal(cudaMemsetAsync(d_out + N, 0, N * sizeof(float), s), cudaSuccess);
    const float one = 1.0f, zero = 0.0f;
    assert_int_equal(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 1, 2, &one, d_a, CUDA_R_32F, 2,
                                  d_b, CUDA_R_32F, 2, &zero, d_c, CUDA_R_32F, 2,
                                  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT), CUBLAS_STATUS_SUCCESS);
    assert_int_equal(cudaMemcpyAsync(h_out, d_out, 2 * N * sizeof(float), cudaMemcpyDeviceToHost, s),
                     cudaSuccess);
    assert_int_equal(cudaMemcpyAsync(h_out + 2 * N, d_c, 2 * sizeof(float), cudaMemcpyDeviceToHost, s),
                     cudaSuccess);
    cudaGraph_t graph;
    assert_int_equal(cudaStreamEndCapture(s, &graph), cudaSuccess);
    assert_non_null(graph);
    assert_int_equal(cudaStreamIsCapturing(s, &cs), cudaSuccess);
    assert_int_equal(cs, cudaStreamCaptureStatusNone);
    assert_int_equal(cudaStreamSynchronize(s), cudaSuccess);
    assert_true(isnan(d_out[0]) && isnan(d_out[N]) && isnan(d_c[0])); // nothing ran
    cudaGraphExec_t exec;
    assert_int_equal(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
    assert_int_equal(cudaGraphDestroy(graph), cudaSuccess); // the executable graph stays

    const unsigned long long launches = g4emu_graph_launches();
    for (int r = 0; r < 3; r++) {
        by_value = 100.0f * (float)(r + 1); // the host value changes; the graph keeps 10
        *h_v = (float)r;                    // the pinned upload reads the new value
        const float hb[2] = {(float)r, 1.0f};
        assert_int_equal(cudaMemcpy(d_b, hb, sizeof hb, cudaMemcpyHostToDevice), cudaSuccess);
        assert_int_equal(cudaGraphLaunch(exec, s), cudaSuccess);
        assert_true(h_out[0] != 10.0f + (float)r || r == 0); // not run before the sync
        assert_int_equal(cudaStreamSynchronize(s), cudaSuccess);
        for (int i = 0; i < N; i++) {
            assert_true(h_out[i] == 10.0f + (float)r);
            assert_true(h_out[N + i] == 0.0f);
        }
        assert_true(h_out[2 * N] == 1.0f * r + 3.0f && h_out[2 * N + 1] == 2.0f * r + 4.0f);
        h_out[0] = -1.0f;
    }
    assert_int_equal(g4emu_graph_launches(), launches + 3);
    printf("graph replay: by-value argument stays 10 (host now %g), device-read value follows\n",
           by_value);
    assert_int_equal(cudaGraphExecDestroy(exec), cudaSuccess);
    assert_int_equal(cudaGraphLaunch(exec, s), cudaErrorInvalidResourceHandle);
    assert_int_equal(cudaGetLastError(), cudaErrorInvalidResourceHandle);
    cudaFree(d_v), cudaFree(d_out), cudaFree(d_a), cudaFree(d_b), cudaFree(d_c);
    cudaFreeHost(h_v), cudaFreeHost(h_out);
    assert_int_equal(cublasDestroy(h), CUBLAS_STATUS_SUCCESS);
    assert_int_equal(cudaStreamDestroy(s), cudaSuccess);
}

// Ends a capture expected to be invalidated: no graph, and the stream works normally after.
static void expect_invalidated(cudaStream_t s) {
    cudaStreamCaptureStatus cs;
    assert_int_equal(cudaStreamIsCapturing(s, &cs), cudaSuccess);
    assert_int_equal(cs, cudaStreamCaptureStatusInvalidated);
    nothing G4_LAUNCH(1, 1, 0, s)();
    assert_int_equal(cudaGetLastError(), cudaErrorStreamCaptureInvalidated);
    cudaGraph_t graph = (cudaGraph_t)1;
    assert_int_equal(cudaStreamEndCapture(s, &graph), cudaErrorStreamCaptureInvalidated);
    assert_null(graph);
    assert_int_equal(cudaGetLastError(), cudaErrorStreamCaptureInvalidated);
    nothing G4_LAUNCH(1, 1, 0, s)();
    assert_int_equal(cudaGetLastError(), cudaSuccess);
    assert_int_equal(cudaStreamSynchronize(s), cudaSuccess);
}

static void malloc_free_in(cudaError_t *out) {
    void *p = nullptr;
    *out = cudaMalloc(&p, 256);
    if (p) cudaFree(p);
    cudaGetLastError();
}

static void end_capture_in(cudaStream_t s, cudaError_t *out) {
    cudaGraph_t g = nullptr;
    *out = cudaStreamEndCapture(s, &g);
    cudaGetLastError();
}

// What a GPU refuses during capture: the error CUDA returns, and the capture invalidated.
static void test_capture_refusals(void **state) {
    (void)state;
    cudaGetLastError();
    cudaStream_t s;
    assert_int_equal(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
    float *d, *pinned, pageable[4];
    assert_int_equal(cudaMalloc((void **)&d, 16), cudaSuccess);
    assert_int_equal(cudaMallocHost((void **)&pinned, 16), cudaSuccess);
    cudaGraph_t graph;

    // the legacy stream cannot capture; a stream captures once at a time; no capture to end
    assert_int_equal(cudaStreamBeginCapture(nullptr, cudaStreamCaptureModeGlobal),
                     cudaErrorStreamCaptureUnsupported);
    assert_int_equal(cudaStreamEndCapture(s, &graph), cudaErrorIllegalState);
    assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), cudaSuccess);
    assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), cudaErrorIllegalState);
    // synchronizing the capturing stream
    assert_int_equal(cudaStreamSynchronize(s), cudaErrorStreamCaptureUnsupported);
    expect_invalidated(s);
    // querying it
    assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed), cudaSuccess);
    assert_int_equal(cudaStreamQuery(s), cudaErrorStreamCaptureUnsupported);
    expect_invalidated(s);
    // the device
    assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    assert_int_equal(cudaDeviceSynchronize(), cudaErrorStreamCaptureUnsupported);
    expect_invalidated(s);
    // cudaMalloc / cudaFree / a blocking copy (unsafe unless relaxed)
    void *p = nullptr;
    assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    assert_int_equal(cudaMalloc(&p, 64), cudaErrorStreamCaptureUnsupported);
    expect_invalidated(s);
    assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), cudaSuccess);
    assert_int_equal(cudaFree(d), cudaErrorStreamCaptureUnsupported);
    expect_invalidated(s);
    assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), cudaSuccess);
    assert_int_equal(cudaMemcpy(pageable, d, 16, cudaMemcpyDeviceToHost),
                     cudaErrorStreamCaptureUnsupported);
    expect_invalidated(s);
    assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed), cudaSuccess);
    assert_int_equal(cudaMalloc(&p, 64), cudaSuccess); // relaxed: allowed
    assert_int_equal(cudaFree(p), cudaSuccess);
    assert_int_equal(cudaStreamEndCapture(s, &graph), cudaSuccess);
    assert_int_equal(cudaGraphDestroy(graph), cudaSuccess);
    // pageable memory in an asynchronous copy, either direction; pinned is fine
    assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    assert_int_equal(cudaMemcpyAsync(d, pinned, 16, cudaMemcpyHostToDevice, s), cudaSuccess);
    assert_int_equal(cudaMemcpyAsync(d, pageable, 16, cudaMemcpyHostToDevice, s),
                     cudaErrorStreamCaptureUnsupported);
    expect_invalidated(s);
    assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    assert_int_equal(cudaMemcpyAsync(pageable, d, 16, cudaMemcpyDeviceToHost, s),
                     cudaErrorStreamCaptureUnsupported);
    expect_invalidated(s);
    // an event recorded in the capture cannot be queried or waited for
    cudaEvent_t ev;
    assert_int_equal(cudaEventCreate(&ev), cudaSuccess);
    assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    assert_int_equal(cudaEventRecord(ev, s), cudaSuccess);
    assert_int_equal(cudaEventQuery(ev), cudaErrorCapturedEvent);
    assert_int_equal(cudaEventSynchronize(ev), cudaErrorCapturedEvent);
    assert_int_equal(cudaStreamEndCapture(s, &graph), cudaSuccess);
    assert_int_equal(cudaGraphDestroy(graph), cudaSuccess);
    assert_int_equal(cudaEventRecord(ev, s), cudaSuccess);
    assert_int_equal(cudaEventSynchronize(ev), cudaSuccess);
    assert_int_equal(cudaEventDestroy(ev), cudaSuccess);
    // a launch refused during capture invalidates it
    assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    nothing G4_LAUNCH(1, 2048, 0, s)();
    assert_int_equal(cudaGetLastError(), cudaErrorInvalidConfiguration);
    expect_invalidated(s);
    // the legacy stream while a blocking stream captures: an implicit dependency
    cudaStream_t blocking;
    assert_int_equal(cudaStreamCreate(&blocking), cudaSuccess);
    assert_int_equal(cudaStreamBeginCapture(blocking, cudaStreamCaptureModeRelaxed), cudaSuccess);
    nothing G4_LAUNCH(1, 1)();
    assert_int_equal(cudaGetLastError(), cudaErrorStreamCaptureImplicit);
    expect_invalidated(blocking);
    // threads: a thread-local capture lets other threads allocate and must end on its thread;
    // a global capture prohibits unsafe calls in every thread
    cudaError_t e = cudaSuccess;
    assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    std::thread(malloc_free_in, &e).join();
    assert_int_equal(e, cudaSuccess);
    std::thread(end_capture_in, s, &e).join();
    assert_int_equal(e, cudaErrorStreamCaptureWrongThread);
    assert_int_equal(cudaStreamEndCapture(s, &graph), cudaSuccess);
    assert_int_equal(cudaGraphDestroy(graph), cudaSuccess);
    assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), cudaSuccess);
    std::thread(malloc_free_in, &e).join();
    assert_int_equal(e, cudaErrorStreamCaptureUnsupported);
    expect_invalidated(s);

    assert_int_equal(cudaStreamDestroy(blocking), cudaSuccess);
    assert_int_equal(cudaFree(d), cudaSuccess);
    assert_int_equal(cudaFreeHost(pinned), cudaSuccess);
    assert_int_equal(cudaStreamDestroy(s), cudaSuccess);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_faults),          cmocka_unit_test(test_collectives),
        cmocka_unit_test(test_missing_barrier), cmocka_unit_test(test_launch_limits),
        cmocka_unit_test(test_poison_and_deferred), cmocka_unit_test(test_cublas),
        cmocka_unit_test(test_device_math),     cmocka_unit_test(test_misaligned_load),
        cmocka_unit_test(test_graph_replay),    cmocka_unit_test(test_capture_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
