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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_faults),          cmocka_unit_test(test_collectives),
        cmocka_unit_test(test_missing_barrier), cmocka_unit_test(test_launch_limits),
        cmocka_unit_test(test_poison_and_deferred), cmocka_unit_test(test_cublas),
        cmocka_unit_test(test_device_math),     cmocka_unit_test(test_misaligned_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
