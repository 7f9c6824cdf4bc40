// Small fp32 vector primitives for the CPU engine's non-matmul ops (attention, activations), with
// AVX-512 / AVX2 versions chosen at run time like the matmul kernels (same ISA limit) and
// portable C otherwise. Results equal the plain loops up to summation order.
#ifndef G4_VEC_CPU_H
#define G4_VEC_CPU_H

#include <stddef.h>
#include <stdint.h>

#include "isa.h"

// sum_i a[i] * b[i]
// The kernel family these functions use: g4_matmul_isa() capped at G4_ISA_AVX512.
enum g4_isa g4_vec_isa(void);

float g4_vec_dot(const float *a, const float *b, size_t n);
// y[i] += s * x[i]
void g4_vec_axpy(float *y, float s, const float *x, size_t n);
// Attention's probability-weighted sum for nh heads sharing one value head:
// out[h * hd + d] += sum_j p[h * ldp + j] * v[j * v_stride + d], for h < nh, d < hd, j < n.
void g4_vec_pv(float *out, int nh, int hd, const float *p, int64_t ldp, const float *v,
               int64_t v_stride, int64_t n);
// Final logit softcapping x[i] = cap * tanh(x[i] / cap) (cap > 0); absolute error <= 1e-6 * cap.
void g4_vec_softcap(float *x, size_t n, float cap);
// x[i] = gelu_tanh(x[i]) * y[i] (the gated MLP's activation), in fp32; tanh evaluated through
// exp with relative error < 2e-7 (the tests compare it with tanhf).
void g4_vec_gelu_mul(float *x, const float *y, size_t n);

#endif
