// ggml's CPU numerics for attention and GEGLU; see ggml_cpu.h.
#include "ggml_cpu.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#include "dtype.h"
#include "matmul_cpu.h"
#include "vec_cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

void g4_ggml_cpu_round_f16(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = g4_f16_to_f32(g4_f32_to_f16(x[i]));
}

// The key / value row of position p (rows before new_pos0 are cached, ring-indexed for sliding
// slots; the step's own rows are in new_k / new_v).
static inline const float *kv_row(const struct g4_kv_view *kv, const float *cached, const float *fresh,
                                  int64_t p) {
    const size_t stride = (size_t)kv->n_kv_heads * kv->head_dim;
    if (p >= kv->new_pos0) return fresh + (size_t)(p - kv->new_pos0) * stride;
    return cached + (size_t)(kv->ring ? p % kv->capacity : p) * stride;
}

// ggml_vec_dot_f16 as its AVX-512 build computes it: 4 accumulators of 16 fp32 lanes, fused
// multiply-adds over steps of 64, added 0+2, 1+3, then 0+1, then _mm512_reduce_add_ps's tree
// (lanes i + i+8, i + i+4, i + i+2, 0 + 1). n is a multiple of 64.
static float dot_ggml(const float *x, const float *y, int n) {
    float acc[4][16] = {{0}};
    for (int i = 0; i < n; i += 64)
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 16; l++) acc[j][l] = fmaf(x[i + 16 * j + l], y[i + 16 * j + l], acc[j][l]);
    float a[16], t8[8], t4[4], t2[2];
    for (int l = 0; l < 16; l++) a[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
    for (int l = 0; l < 8; l++) t8[l] = a[l + 8] + a[l];
    for (int l = 0; l < 4; l++) t4[l] = t8[l + 4] + t8[l];
    for (int l = 0; l < 2; l++) t2[l] = t4[l] + t4[l + 2];
    return t2[0] + t2[1];
}

#if defined(__x86_64__) || defined(__i386__)
#define FP16 __attribute__((target("avx512fp16,avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))
#define AVX512 __attribute__((target("avx512f,avx2,fma,f16c")))

AVX512 static float dot_ggml_avx512(const float *x, const float *y, int n) {
    __m512 s[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int i = 0; i < n; i += 64)
        for (int j = 0; j < 4; j++)
            s[j] = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16 * j), _mm512_loadu_ps(y + i + 16 * j), s[j]);
    s[0] = _mm512_add_ps(s[0], s[2]);
    s[1] = _mm512_add_ps(s[1], s[3]);
    return _mm512_reduce_add_ps(_mm512_add_ps(s[0], s[1]));
}

// acc = acc * ms (fp16 multiply, ms rounded to fp16), ggml_vec_scale_f16 on AVX512-FP16
FP16 static void scale_f16_native(uint16_t *acc, int n, float ms) {
    const __m512h m = _mm512_set1_ph((_Float16)ms);
    for (int i = 0; i < n; i += 32)
        _mm512_storeu_ph(acc + i, _mm512_mul_ph(_mm512_loadu_ph(acc + i), m));
}

// acc += v * vs (fp16 fused multiply-add, v and vs rounded to fp16), ggml_vec_mad_f16
FP16 static void mad_f16_native(uint16_t *acc, const float *v, int n, float vs) {
    const __m512h w = _mm512_set1_ph((_Float16)vs);
    for (int i = 0; i < n; i += 32) {
        const __m512h vh = _mm512_castsi512_ph(_mm512_inserti64x4(
            _mm512_castsi256_si512(_mm512_cvtps_ph(_mm512_loadu_ps(v + i), 0)),
            _mm512_cvtps_ph(_mm512_loadu_ps(v + i + 16), 0), 1));
        _mm512_storeu_ph(acc + i, _mm512_fmadd_ph(vh, w, _mm512_loadu_ph(acc + i)));
    }
}

// Within the instruction-set level the CPU engine runs at (g4_matmul_limit_isa caps it).
static int has_fp16(void) {
    return g4_matmul_isa() >= G4_ISA_AVX512 && __builtin_cpu_supports("avx512fp16");
}
static int has_avx512(void) { return g4_matmul_isa() >= G4_ISA_AVX512; }
#else
static int has_fp16(void) { return 0; }
static int has_avx512(void) { return 0; }
#endif

// ggml's F32Cx16 forms of the same two operations: fp32 arithmetic, fp16 storage.
static void scale_f16_f32c(uint16_t *acc, int n, float ms) {
    for (int i = 0; i < n; i++) acc[i] = g4_f32_to_f16(g4_f16_to_f32(acc[i]) * ms);
}
static void mad_f16_f32c(uint16_t *acc, const float *v, int n, float vs) {
    for (int i = 0; i < n; i++) acc[i] = g4_f32_to_f16(fmaf(v[i], vs, g4_f16_to_f32(acc[i])));
}

void g4_ggml_cpu_attention(float *out, const float *q, const struct g4_kv_view *kv, int64_t pos,
                  int n_heads, int h0, int h1, int window, float scale) {
    const int hd = kv->head_dim, group = n_heads / kv->n_kv_heads;
    const int64_t first = window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
    const int native = has_fp16(), avx512 = has_avx512();
    float qh[G4_GGML_CPU_MAX_HEAD_DIM];
    uint16_t acc[G4_GGML_CPU_MAX_HEAD_DIM];
    for (int h = h0; h < h1; h++) {
        const size_t koff = (size_t)(h / group) * hd;
        // llama.cpp scales Q (fp32) before the attention op, which rounds it to fp16
        for (int d = 0; d < hd; d++) qh[d] = g4_f16_to_f32(g4_f32_to_f16(q[(size_t)h * hd + d] * scale));
        memset(acc, 0, (size_t)hd * sizeof *acc);
        float S = 0.0f, M = -INFINITY;
        for (int64_t p = first; p <= pos; p++) {
            const float *k = kv_row(kv, kv->k, kv->new_k, p) + koff;
            const float *v = kv_row(kv, kv->v, kv->new_v, p) + koff;
#if defined(__x86_64__) || defined(__i386__)
            const float s = avx512 ? dot_ggml_avx512(k, qh, hd) : dot_ggml(k, qh, hd);
#else
            const float s = dot_ggml(k, qh, hd);
#endif
            float ms = 1.0f, vs = 1.0f;
            if (s > M) { // a new maximum: rescale the sum so far by expf(Mold - M)
                const float Mold = M;
                M = s;
                ms = expf(Mold - M);
#if defined(__x86_64__) || defined(__i386__)
                if (native) scale_f16_native(acc, hd, ms);
                else
#endif
                    scale_f16_f32c(acc, hd, ms);
            } else {
                vs = expf(s - M);
            }
#if defined(__x86_64__) || defined(__i386__)
            if (native) mad_f16_native(acc, v, hd, vs);
            else
#endif
                mad_f16_f32c(acc, v, hd, vs);
            S = fmaf(S, ms, vs);
        }
        const float inv = S == 0.0f ? 0.0f : 1.0f / S;
        for (int d = 0; d < hd; d++) out[(size_t)h * hd + d] = g4_f16_to_f32(acc[d]) * inv;
    }
}

// ggml_table_gelu_f16: ggml_gelu_f32 of every fp16 value, rounded to fp16.
static uint16_t gelu_table[(1 << 16) + 2]; // + the gather's spare bytes
static pthread_once_t gelu_once = PTHREAD_ONCE_INIT;

static void gelu_init(void) {
    for (int i = 0; i < 1 << 16; i++) {
        const float x = g4_f16_to_f32((uint16_t)i);
        // ggml_gelu_f32 as its -march=native build contracts it: 1 + (a x) x fused
        const float y = 0.5f * x * (1.0f + tanhf(0.79788456080286535587989211986876f * x *
                                                 fmaf(0.044715f * x, x, 1.0f)));
        gelu_table[i] = g4_f32_to_f16(y);
    }
}

#if defined(__x86_64__) || defined(__i386__)
// The same 16 at a time: F16C's conversion rounds to nearest even like ggml's (and
// g4_f32_to_f16), the table read by a 32-bit gather (gelu_table has a spare entry at its end).
__attribute__((target("avx512f,avx512bw,avx512vl,f16c"))) static size_t geglu_avx512(float *x, const float *g,
                                                                                     size_t n) {
    const __m512 lo = _mm512_set1_ps(-10.0f), hi = _mm512_set1_ps(10.0f);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 v = _mm512_loadu_ps(x + i), gv = _mm512_loadu_ps(g + i);
        const __m256i h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const __m512i t = _mm512_i32gather_epi32(_mm512_cvtepu16_epi32(h), (const void *)gelu_table, 2);
        __m512 r = _mm512_mul_ps(_mm512_cvtph_ps(_mm512_cvtepi32_epi16(t)), gv);
        r = _mm512_mask_mul_ps(r, _mm512_cmp_ps_mask(v, hi, _CMP_GE_OQ), v, gv);
        r = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, lo, _CMP_NLE_UQ), r); // x <= -10: 0
        _mm512_storeu_ps(x + i, r);
    }
    return i;
}
#endif

void g4_ggml_cpu_geglu(float *x, const float *g, size_t n) {
    pthread_once(&gelu_once, gelu_init);
    size_t i = 0;
#if defined(__x86_64__) || defined(__i386__)
    if (g4_vec_isa() >= G4_ISA_AVX512) i = geglu_avx512(x, g, n);
#endif
    for (; i < n; i++) {
        if (x[i] <= -10.0f) x[i] = 0.0f;
        else if (x[i] >= 10.0f) x[i] = x[i] * g[i];
        else x[i] = g4_f16_to_f32(gelu_table[g4_f32_to_f16(x[i])]) * g[i];
    }
}

void g4_ggml_cpu_rmsnorm(float *out, const float *x, const float *w, int n_rows, int dim, float eps) {
    for (int r = 0; r < n_rows; r++) {
        const float *xr = x + (size_t)r * dim;
        float *o = out + (size_t)r * dim;
        double sum = 0.0;
        for (int i = 0; i < dim; i++) sum += (double)(xr[i] * xr[i]);
        const float mean = (float)(sum / dim);
        const float scale = 1.0f / sqrtf(mean + eps);
        for (int i = 0; i < dim; i++) o[i] = w ? xr[i] * scale * w[i] : xr[i] * scale;
    }
}

void g4_ggml_cpu_rope(float *x, int n_heads, int head_dim, float theta, float factor, int64_t pos) {
    const int half = head_dim / 2;
    const float theta_scale = powf(theta, -2.0f / (float)head_dim), freq_scale = 1.0f / factor;
    float c[G4_GGML_CPU_MAX_HEAD_DIM / 2], sn[G4_GGML_CPU_MAX_HEAD_DIM / 2];
    float t = (float)pos;
    for (int i = 0; i < half; i++) {
        const float a = freq_scale * t;
        c[i] = cosf(a), sn[i] = sinf(a);
        t *= theta_scale;
    }
    for (int h = 0; h < n_heads; h++) {
        float *xh = x + (size_t)h * head_dim;
        for (int i = 0; i < half; i++) {
            const float x0 = xh[i], x1 = xh[i + half];
            xh[i] = fmaf(x0, c[i], -(x1 * sn[i]));
            xh[i + half] = fmaf(x0, sn[i], x1 * c[i]);
        }
    }
}
