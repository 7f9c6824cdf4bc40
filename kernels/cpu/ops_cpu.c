// Reference fp32 math for the Gemma 4 and Gemma 3 decoders; see ops_cpu.h. Numerics follow transformers'
// float32 path (fp32 accumulation, fp32 inv_freq/cos/sin, softmax in fp32).
#include "ops_cpu.h"

#include "matmul_cpu.h"
#include "vec_cpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void g4_rmsnorm_cpu(float *out, const float *x, const float *w, int n_rows, int dim, float eps) {
    for (int r = 0; r < n_rows; r++) {
        const float *xr = x + (size_t)r * dim;
        float *o = out + (size_t)r * dim;
        const float ss = g4_vec_dot(xr, xr, (size_t)dim); // SIMD: runs on one thread per step
        float inv = powf(ss / dim + eps, -0.5f);
        for (int i = 0; i < dim; i++) o[i] = w ? xr[i] * inv * w[i] : xr[i] * inv;
    }
}

void g4_rope_cpu(float *x, int n_heads, int head_dim, int n_rope_pairs, float theta, int64_t pos) {
    g4_rope_factor_cpu(x, n_heads, head_dim, n_rope_pairs, theta, 1.0f, pos);
}

void g4_rope_factor_cpu(float *x, int n_heads, int head_dim, int n_rope_pairs, float theta,
                        float factor, int64_t pos) {
    const int half = head_dim / 2;
    for (int i = 0; i < n_rope_pairs; i++) {
        // torch: 1.0 / (base ** (arange(0, 2*n, 2).float() / head_dim)) [/ factor], then
        // pos * inv_freq, fp32 (x / 1.0f is exact, so factor 1 changes nothing)
        float inv_freq = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim) / factor;
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

// Visible keys [first, last] as runs of consecutive cache rows: the cached positions (a ring
// wraps at most once, since at most `capacity` of them are visible), then this step's new rows.
struct kv_run {
    int64_t j0, n;      // first key index (relative to `first`), number of keys
    const float *k, *v; // row of key j0 (all KV heads)
};

static int kv_runs(const struct g4_kv_view *kv, int64_t first, int64_t last, struct kv_run *runs) {
    const size_t stride = (size_t)kv->n_kv_heads * kv->head_dim;
    const int64_t cached_end = last + 1 < kv->new_pos0 ? last + 1 : kv->new_pos0;
    int n = 0;
    for (int64_t p = first; p < cached_end;) {
        const int64_t row = kv->ring ? p % kv->capacity : p;
        int64_t len = cached_end - p;
        if (kv->ring && row + len > kv->capacity) len = kv->capacity - row;
        runs[n++] = (struct kv_run){p - first, len, kv->k + row * stride, kv->v + row * stride};
        p += len;
    }
    const int64_t p = first > kv->new_pos0 ? first : kv->new_pos0;
    if (p <= last)
        runs[n++] = (struct kv_run){p - first, last - p + 1,
                                    kv->new_k + (size_t)(p - kv->new_pos0) * stride,
                                    kv->new_v + (size_t)(p - kv->new_pos0) * stride};
    return n;
}

void g4_attention_cpu(float *out, const float *q, const struct g4_kv_view *kv, int64_t pos,
                      int n_heads, int h0, int h1, int window, float *scores) {
    g4_attention_scaled_cpu(out, q, kv, pos, n_heads, h0, h1, window, 1.0f, scores);
}

void g4_attention_scaled_cpu(float *out, const float *q, const struct g4_kv_view *kv, int64_t pos,
                             int n_heads, int h0, int h1, int window, float scale, float *scores) {
    const int hd = kv->head_dim, group = n_heads / kv->n_kv_heads;
    const int64_t stride = (int64_t)kv->n_kv_heads * hd;
    const int64_t first = window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
    const int64_t n = pos - first + 1;
    struct kv_run runs[4];
    const int n_runs = kv_runs(kv, first, pos, runs);
    // Heads of one KV head together: each key and value row is read once for all of them.
    for (int g = h0 / group; g * group < h1; g++) {
        const int hs = h0 > g * group ? h0 : g * group;
        const int he = h1 < (g + 1) * group ? h1 : (g + 1) * group, nh = he - hs;
        const size_t koff = (size_t)g * hd;
        // scores (nh, n) = q_heads @ K^T * scale  (Gemma 4: scale 1, q/k norms replace 1/sqrt(d))
        for (int r = 0; r < n_runs; r++)
            g4_matmul_rows_f32(scores + runs[r].j0, n, q + (size_t)hs * hd, hd, nh, runs[r].k + koff,
                               stride, runs[r].n, hd);
        if (scale != 1.0f)
            for (int64_t j = 0; j < (int64_t)nh * n; j++) scores[j] *= scale;
        for (int h = 0; h < nh; h++) { // softmax in fp32
            float *sh = scores + h * n, mx = -INFINITY, sum = 0.0f;
            for (int64_t j = 0; j < n; j++) mx = sh[j] > mx ? sh[j] : mx;
            for (int64_t j = 0; j < n; j++) sum += (sh[j] = expf(sh[j] - mx));
            const float inv = 1.0f / sum;
            for (int64_t j = 0; j < n; j++) sh[j] *= inv;
        }
        float *oh = out + (size_t)hs * hd;
        memset(oh, 0, (size_t)nh * hd * sizeof(float));
        for (int r = 0; r < n_runs; r++)
            g4_vec_pv(oh, nh, hd, scores + runs[r].j0, n, runs[r].v + koff, stride, runs[r].n);
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
