// Reference fp32 math for the Gemma 4 decoder; see ops_cpu.h. Numerics follow transformers'
// float32 path (fp32 accumulation, fp32 inv_freq/cos/sin, softmax in fp32).
#include "ops_cpu.h"

#include "vec_cpu.h"

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
            const float s = g4_vec_dot(qh, kv_row(kv, kv->k, kv->new_k, first + j) + koff, (size_t)hd);
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
        const float inv = 1.0f / sum;
        for (int64_t j = 0; j < n; j++)
            g4_vec_axpy(oh, scores[j] * inv, kv_row(kv, kv->v, kv->new_v, first + j) + koff,
                        (size_t)hd);
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
