// Sampling one token on the device from a logits row, with the filters of g4_sampler_sample
// (core/sampler.c) in Hugging Face's order: temperature -> top-k -> top-p -> min-p -> draw.
// One block of 1024 threads; no scratch. Thresholds come from radix selects (8 bits per pass)
// instead of sorting: the k-th largest logit for top-k, then the weight at which the mass ranked
// above crosses top_p for top-p. Weights e = exp((v - max) / T) in [0, 1] are summed as 2^-40
// fixed-point integers, so sums are exact, order-free and the draw is deterministic.
// The draw walks the survivors in token-id order (the CPU sampler walks its own candidate
// order): same distribution, not necessarily the same id for the same u.
#include "common.cuh"

#define SAMPLE_THREADS 1024
#define FIX_ONE 1099511627776.0f // 2^40

// Monotone map of floats to unsigned keys (larger float, larger key).
static __device__ __forceinline__ uint32_t order_key(float f) {
    const uint32_t u = __float_as_uint(f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
static __device__ __forceinline__ float key_float(uint32_t k) {
    return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

struct sample_args {
    const float *logits;
    int n;
    float m, inv_t, thr; // row max, 1 / temperature, top-k threshold (-inf: off)
};

static __device__ __forceinline__ float logit(const sample_args &a, int i) {
    const float v = a.logits[i];
    return v == v ? v : -INFINITY;
}

// Weight of token i after temperature and top-k (0 when top-k drops it).
static __device__ __forceinline__ float weight(const sample_args &a, int i) {
    const float v = logit(a, i);
    return v >= a.thr ? expf((v - a.m) * a.inv_t) : 0.0f;
}

static __device__ __forceinline__ unsigned long long fixed(float e) {
    return __float2ull_rn(e * FIX_ONE);
}

static __global__ void __launch_bounds__(SAMPLE_THREADS)
    sample_kernel(int32_t *token, const float *logits, int n, float temperature, int top_k,
                  float top_p, float min_p, double u) {
    __shared__ unsigned int hist_n[256];
    __shared__ unsigned long long hist_mass[256];
    __shared__ unsigned long long part[SAMPLE_THREADS];
    __shared__ unsigned int part_ties[SAMPLE_THREADS];
    __shared__ uint32_t sh_prefix;
    __shared__ unsigned long long sh_above;
    __shared__ long long sh_remaining;
    const int tid = threadIdx.x;
    sample_args a = {logits, n, 0.0f, 0.0f, -INFINITY};

    float bv = -INFINITY;
    int bi = -1;
    for (int i = tid; i < n; i += SAMPLE_THREADS) {
        const float v = logit(a, i);
        if (ranks_first(v, i, bv, bi)) {
            bv = v;
            bi = i;
        }
    }
    block_argmax(&bv, &bi);
    if (temperature <= 0.0f || !isfinite(bv)) { // greedy, or nothing finite to weigh
        if (tid == 0) *token = bi;
        return;
    }
    a.m = bv;
    a.inv_t = 1.0f / temperature;

    // Top-k: the k-th largest logit by radix select over order keys; ties at it all stay.
    if (top_k > 0 && top_k < n) {
        if (tid == 0) {
            sh_prefix = 0;
            sh_remaining = top_k;
        }
        uint32_t mask = 0;
        for (int shift = 24; shift >= 0; shift -= 8) {
            for (int b = tid; b < 256; b += SAMPLE_THREADS) hist_n[b] = 0;
            __syncthreads();
            const uint32_t prefix = sh_prefix;
            for (int i = tid; i < n; i += SAMPLE_THREADS) {
                const uint32_t key = order_key(logit(a, i));
                if ((key & mask) == prefix) atomicAdd(&hist_n[(key >> shift) & 255u], 1u);
            }
            __syncthreads();
            if (tid == 0) {
                long long above = 0;
                int b = 255;
                for (; b > 0 && above + hist_n[b] < sh_remaining; b--) above += hist_n[b];
                sh_remaining -= above;
                sh_prefix = prefix | ((uint32_t)b << shift);
            }
            mask |= 255u << shift;
            __syncthreads();
        }
        a.thr = key_float(sh_prefix);
    }

    // Total weight z after top-k (the top-p normaliser).
    unsigned long long local = 0;
    for (int i = tid; i < n; i += SAMPLE_THREADS) local += fixed(weight(a, i));
    part[tid] = local;
    __syncthreads();
    if (tid == 0) {
        unsigned long long z = 0;
        for (int t = 0; t < SAMPLE_THREADS; t++) z += part[t];
        sh_above = z;
    }
    __syncthreads();
    const unsigned long long z = sh_above;

    // Top-p: tau = the weight of the token whose ranked-above mass first reaches top_p * z;
    // every weight above tau stays, and of the tokens weighing exactly tau the lowest ids stay
    // while the mass ranked above them is still < top_p * z.
    const bool use_top_p = top_p < 1.0f;
    float tau = 0.0f;
    long long n_tie_keep = 0x7fffffffffffffffll;
    if (use_top_p) {
        const double target = (double)top_p * (double)z;
        __syncthreads();
        if (tid == 0) {
            sh_prefix = 0;
            sh_above = 0;
        }
        uint32_t mask = 0;
        for (int shift = 24; shift >= 0; shift -= 8) {
            for (int b = tid; b < 256; b += SAMPLE_THREADS) hist_mass[b] = 0;
            __syncthreads();
            const uint32_t prefix = sh_prefix;
            for (int i = tid; i < n; i += SAMPLE_THREADS) {
                const float e = weight(a, i);
                const unsigned long long f = fixed(e);
                const uint32_t key = __float_as_uint(e); // e >= 0: bits are monotone
                if (f && (key & mask) == prefix) atomicAdd(&hist_mass[(key >> shift) & 255u], f);
            }
            __syncthreads();
            if (tid == 0) {
                unsigned long long above = sh_above;
                int b = 255;
                for (; b > 0 && (double)(above + hist_mass[b]) < target; b--) above += hist_mass[b];
                sh_above = above;
                sh_prefix = prefix | ((uint32_t)b << shift);
            }
            mask |= 255u << shift;
            __syncthreads();
        }
        tau = __uint_as_float(sh_prefix);
        const unsigned long long f_tau = fixed(tau);
        if (f_tau > 0) {
            const double need = (target - (double)sh_above) / (double)f_tau;
            n_tie_keep = (long long)ceil(need);
        }
    }

    // Survivors in id order: thread t owns ids [t * chunk, (t + 1) * chunk).
    const int chunk = (n + SAMPLE_THREADS - 1) / SAMPLE_THREADS;
    const int i0 = tid * chunk < n ? tid * chunk : n, i1 = i0 + chunk < n ? i0 + chunk : n;
    unsigned int ties = 0;
    for (int i = i0; i < i1; i++) ties += use_top_p && weight(a, i) == tau;
    __syncthreads();
    part_ties[tid] = ties;
    __syncthreads();
    if (tid == 0) { // exclusive scan of the tie counts
        unsigned int run = 0;
        for (int t = 0; t < SAMPLE_THREADS; t++) {
            const unsigned int c = part_ties[t];
            part_ties[t] = run;
            run += c;
        }
    }
    __syncthreads();
    const float e_min = min_p > 0.0f ? min_p : 0.0f;
    local = 0;
    long long tie_rank = part_ties[tid];
    for (int i = i0; i < i1; i++) {
        const float e = weight(a, i);
        bool keep = e > 0.0f && e >= e_min;
        if (use_top_p) {
            if (e == tau) keep = keep && tie_rank++ < n_tie_keep;
            else keep = keep && e > tau;
        }
        if (keep) local += fixed(e);
    }
    part[tid] = local;
    __syncthreads();
    if (tid == 0) { // exclusive scan of the kept mass; pick the owning thread
        unsigned long long run = 0;
        for (int t = 0; t < SAMPLE_THREADS; t++) {
            const unsigned long long c = part[t];
            part[t] = run;
            run += c;
        }
        unsigned long long target = (unsigned long long)(u * (double)run);
        if (target >= run) target = run ? run - 1 : 0;
        sh_above = target;
        *token = bi; // fallback: the argmax always survives, so this is overwritten below
    }
    __syncthreads();
    const unsigned long long target = sh_above;
    if (local == 0 || target < part[tid] || target >= part[tid] + local) return;
    unsigned long long acc = part[tid];
    tie_rank = part_ties[tid];
    for (int i = i0; i < i1; i++) {
        const float e = weight(a, i);
        bool keep = e > 0.0f && e >= e_min;
        if (use_top_p) {
            if (e == tau) keep = keep && tie_rank++ < n_tie_keep;
            else keep = keep && e > tau;
        }
        if (!keep) continue;
        acc += fixed(e);
        if (target < acc) {
            *token = i;
            return;
        }
    }
}

g4_status g4_cuda_sample(int32_t *token, const float *logits, int n_vocab, float temperature,
                         int top_k, float top_p, float min_p, double u, cudaStream_t stream) {
    if (n_vocab < 1 || !(top_p > 0.0f) || !(u >= 0.0 && u < 1.0) || temperature != temperature)
        return g4_fail(G4_ERR_INVALID_ARGUMENT,
                       "cuda sample: n_vocab %d, top_p %g (> 0), u %g (in [0, 1))", n_vocab, top_p,
                       u);
    sample_kernel G4_LAUNCH(1, SAMPLE_THREADS, 0, stream)(token, logits, n_vocab, temperature, top_k,
                                                    top_p, min_p, u);
    return g4_cuda_launch_status("sample_kernel");
}
