// Reference fp32 math for the Gemma 4 decoder; see ops_cpu.h. Numerics follow transformers'
// float32 path (fp32 accumulation, fp32 inv_freq/cos/sin, softmax in fp32).
#include "ops_cpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static inline float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, u;
    if (exp == 0x1f) {
        u = sign | 0x7f800000u | (mant << 13);
    } else if (exp != 0) {
        u = sign | ((exp + 112) << 23) | (mant << 13);
    } else if (mant == 0) {
        u = sign;
    } else { // subnormal: normalise
        int e = -1;
        do {
            e++;
            mant <<= 1;
        } while (!(mant & 0x400));
        u = sign | ((uint32_t)(112 - e) << 23) | ((mant & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

void g4_to_f32(float *dst, const void *src, enum g4_dtype dtype, size_t n) {
    switch (dtype) {
    case G4_DTYPE_F32: memcpy(dst, src, n * sizeof(float)); break;
    case G4_DTYPE_BF16: {
        const uint16_t *s = src;
        for (size_t i = 0; i < n; i++) dst[i] = bf16_to_f32(s[i]);
        break;
    }
    case G4_DTYPE_F16: {
        const uint16_t *s = src;
        for (size_t i = 0; i < n; i++) dst[i] = f16_to_f32(s[i]);
        break;
    }
    default: // g4_weights_bind admits only the three float dtypes
        memset(dst, 0, n * sizeof(float));
        break;
    }
}

struct g4_weight g4_weight_rows(struct g4_weight w, int64_t row0, int64_t n) {
    struct g4_weight r = w;
    r.data = (const char *)w.data + (size_t)row0 * w.cols * g4_dtype_size(w.dtype);
    r.rows = n;
    return r;
}

void g4_rmsnorm_cpu(float *out, const float *x, const float *w, int n_rows, int dim, float eps) {
    for (int r = 0; r < n_rows; r++) {
        const float *xr = x + (size_t)r * dim;
        float *o = out + (size_t)r * dim;
        float ss = 0.0f;
        for (int i = 0; i < dim; i++) ss += xr[i] * xr[i];
        float inv = powf(ss / dim + eps, -0.5f);
        for (int i = 0; i < dim; i++) o[i] = w ? xr[i] * inv * w[i] : xr[i] * inv;
    }
}

// --- matmul. Rows of w are split across the pool; each part walks its rows once and dots each
// row with up to 4 tokens at a time, so a weight byte is read once per 4 tokens. The AVX2/FMA
// kernels convert bf16/f16 to fp32 in registers; the portable kernel converts a row at a time.

#define TOK_BLOCK 4

static _Atomic int simd_allowed = 1;

void g4_ops_cpu_allow_simd(bool allow) { simd_allowed = allow; }

static bool cpu_has_avx2(void) {
#if defined(__x86_64__) || defined(__i386__)
    static _Atomic int cached = -1;
    if (cached < 0)
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                 __builtin_cpu_supports("f16c");
    return cached && simd_allowed;
#else
    return false;
#endif
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

__attribute__((target("avx2,fma,f16c"))) static inline __m256 load8(const void *w,
                                                                      enum g4_dtype dt,
                                                                      int64_t i) {
    switch (dt) {
    case G4_DTYPE_BF16: {
        __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w + i));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    case G4_DTYPE_F16:
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i)));
    default: return _mm256_loadu_ps((const float *)w + i);
    }
}

__attribute__((target("avx2,fma,f16c"))) static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

// out[t] = dot(row, x + t * cols) for t < nt (nt <= TOK_BLOCK).
__attribute__((target("avx2,fma,f16c"))) static void dot_rows_avx2(
    float *out, const void *row, enum g4_dtype dt, const float *x, int64_t cols, int nt) {
    __m256 acc[TOK_BLOCK] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                             _mm256_setzero_ps()};
    int64_t i = 0;
    if (nt == TOK_BLOCK) {
        for (; i + 8 <= cols; i += 8) {
            __m256 w = load8(row, dt, i);
            acc[0] = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + i), acc[0]);
            acc[1] = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + cols + i), acc[1]);
            acc[2] = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + 2 * cols + i), acc[2]);
            acc[3] = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + 3 * cols + i), acc[3]);
        }
    } else {
        for (; i + 8 <= cols; i += 8) {
            __m256 w = load8(row, dt, i);
            for (int t = 0; t < nt; t++)
                acc[t] = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + t * cols + i), acc[t]);
        }
    }
    for (int t = 0; t < nt; t++) out[t] = hsum(acc[t]);
    if (i < cols) { // tail
        float tail[8];
        g4_to_f32(tail, (const char *)row + i * g4_dtype_size(dt), dt, (size_t)(cols - i));
        for (int t = 0; t < nt; t++)
            for (int64_t j = i; j < cols; j++) out[t] += tail[j - i] * x[t * cols + j];
    }
}
#endif

struct matmul_job {
    float *out;
    const float *x;
    struct g4_weight w;
    int n_tokens;
};

static void matmul_part(void *arg, int part, int n_parts) {
    const struct matmul_job *j = arg;
    const int64_t cols = j->w.cols, rows = j->w.rows;
    const int64_t row0 = rows * part / n_parts, row1 = rows * (part + 1) / n_parts;
    const size_t row_bytes = (size_t)cols * g4_dtype_size(j->w.dtype);
    const bool simd = cpu_has_avx2();
    float row_f32[4096];
    for (int64_t r = row0; r < row1; r++) {
        const char *row = (const char *)j->w.data + (size_t)r * row_bytes;
        for (int t0 = 0; t0 < j->n_tokens; t0 += TOK_BLOCK) {
            const int nt = j->n_tokens - t0 < TOK_BLOCK ? j->n_tokens - t0 : TOK_BLOCK;
            const float *x = j->x + (size_t)t0 * cols;
            float dots[TOK_BLOCK];
#if defined(__x86_64__) || defined(__i386__)
            if (simd) {
                dot_rows_avx2(dots, row, j->w.dtype, x, cols, nt);
            } else
#endif
            {
                // portable: fp32 row in chunks of 4096 columns
                for (int t = 0; t < nt; t++) dots[t] = 0.0f;
                for (int64_t c0 = 0; c0 < cols; c0 += 4096) {
                    int64_t nc = cols - c0 < 4096 ? cols - c0 : 4096;
                    g4_to_f32(row_f32, row + (size_t)c0 * g4_dtype_size(j->w.dtype), j->w.dtype,
                              (size_t)nc);
                    for (int t = 0; t < nt; t++) {
                        float acc = 0.0f;
                        for (int64_t i = 0; i < nc; i++) acc += row_f32[i] * x[t * cols + c0 + i];
                        dots[t] += acc;
                    }
                }
                (void)simd;
            }
            for (int t = 0; t < nt; t++) j->out[(size_t)(t0 + t) * rows + r] = dots[t];
        }
    }
}

void g4_matmul_cpu(float *out, const float *x, struct g4_weight w, int n_tokens,
                   struct g4_pool *pool) {
    struct matmul_job job = {out, x, w, n_tokens};
    // Small products are not worth waking the workers.
    if ((double)w.rows * w.cols * n_tokens < 1 << 15) pool = NULL;
    g4_pool_run(pool, matmul_part, &job);
}

void g4_rope_cpu(float *x, int n_heads, int head_dim, int n_rope_pairs, float theta, int64_t pos) {
    const int half = head_dim / 2;
    for (int i = 0; i < n_rope_pairs; i++) {
        // torch: 1.0 / (base ** (arange(0, 2*n, 2).float() / head_dim)), then pos * inv_freq, fp32
        float inv_freq = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim);
        float ang = (float)pos * inv_freq;
        float c = cosf(ang), s = sinf(ang);
        for (int h = 0; h < n_heads; h++) {
            float *xh = x + (size_t)h * head_dim;
            float a = xh[i], b = xh[i + half];
            xh[i] = a * c - b * s;
            xh[i + half] = b * c + a * s;
        }
    }
}

void g4_gelu_tanh_cpu(float *x, size_t n) {
    const float k = 0.7978845608028654f; // sqrt(2/pi)
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
    }
}

void g4_softcap_cpu(float *x, size_t n, float cap) {
    for (size_t i = 0; i < n; i++) x[i] = cap * tanhf(x[i] / cap);
}

static inline const float *kv_row(const struct g4_kv_view *kv, const float *cache,
                                   const float *fresh, int64_t p) {
    size_t stride = (size_t)kv->n_kv_heads * kv->head_dim;
    if (p >= kv->new_pos0) return fresh + (size_t)(p - kv->new_pos0) * stride;
    return cache + (size_t)(kv->ring ? p % kv->capacity : p) * stride;
}

void g4_attention_cpu(float *out, const float *q, const struct g4_kv_view *kv, int64_t pos,
                      int n_heads, int h0, int h1, int window, float *scores) {
    const int hd = kv->head_dim, group = n_heads / kv->n_kv_heads;
    const int64_t first = window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
    const int64_t n = pos - first + 1;
    for (int h = h0; h < h1; h++) {
        const float *qh = q + (size_t)h * hd;
        const size_t koff = (size_t)(h / group) * hd;
        float mx = -INFINITY;
        for (int64_t j = 0; j < n; j++) {
            const float *k = kv_row(kv, kv->k, kv->new_k, first + j) + koff;
            float s = 0.0f;
            for (int d = 0; d < hd; d++) s += qh[d] * k[d];
            scores[j] = s;
            if (s > mx) mx = s;
        }
        float sum = 0.0f;
        for (int64_t j = 0; j < n; j++) {
            scores[j] = expf(scores[j] - mx);
            sum += scores[j];
        }
        float *oh = out + (size_t)h * hd;
        memset(oh, 0, (size_t)hd * sizeof(float));
        for (int64_t j = 0; j < n; j++) {
            const float *v = kv_row(kv, kv->v, kv->new_v, first + j) + koff;
            float p = scores[j] / sum;
            for (int d = 0; d < hd; d++) oh[d] += p * v[d];
        }
    }
}

void g4_moe_route_cpu(float *weights, int32_t *experts, const float *x, const float *scale,
                      struct g4_weight proj, const float *per_expert_scale, int hidden,
                      int n_experts, int top_k, float eps, float *normed, float *probs) {
    g4_rmsnorm_cpu(normed, x, NULL, 1, hidden, eps);
    const float root = powf((float)hidden, -0.5f);
    for (int i = 0; i < hidden; i++) normed[i] = normed[i] * scale[i] * root;
    g4_matmul_cpu(probs, normed, proj, 1, NULL);
    float mx = -INFINITY, sum = 0.0f;
    for (int e = 0; e < n_experts; e++) mx = probs[e] > mx ? probs[e] : mx;
    for (int e = 0; e < n_experts; e++) sum += (probs[e] = expf(probs[e] - mx));
    for (int e = 0; e < n_experts; e++) probs[e] /= sum;
    // torch.topk: largest first; ties resolved towards the lower index here.
    float wsum = 0.0f;
    for (int k = 0; k < top_k; k++) {
        int best = -1;
        for (int e = 0; e < n_experts; e++) {
            bool taken = false;
            for (int j = 0; j < k; j++) taken |= experts[j] == e;
            if (!taken && (best < 0 || probs[e] > probs[best])) best = e;
        }
        experts[k] = best;
        weights[k] = probs[best];
        wsum += probs[best];
    }
    for (int k = 0; k < top_k; k++) weights[k] = weights[k] / wsum * per_expert_scale[experts[k]];
}
