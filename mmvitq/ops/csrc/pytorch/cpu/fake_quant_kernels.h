// Row and span kernels of the CPU fake quantization, free of torch headers so that one translation
// unit can compile them for AVX2 (fake_quant_avx2.cpp) beside the baseline build. Everything here
// has internal linkage: each unit keeps its own, target-specific copy.
#ifndef MMVITQ_FAKE_QUANT_KERNELS_H
#define MMVITQ_FAKE_QUANT_KERNELS_H

#include <cstdint>

#include "fake_quant_common.h"

namespace mmvitq {

struct SpanGrad {
  float dscale, dzero;
};

// The kernels of one dtype as a table, so the baseline unit can swap in the AVX2 unit's for float32.
template <typename T>
struct KernelTable {
  void (*forward_rows)(const T*, T*, int64_t, int64_t, const float*, const float*, const float*, float, float);
  void (*forward_span)(const T*, T*, int64_t, QParams, float, float);
  void (*backward_rows[2])(const T*, const T*, T*, int64_t, int64_t, const float*, const float*, const float*,
                           float, float, float*, float*);  // [param_grads]
  SpanGrad (*backward_span[2])(const T*, const T*, T*, int64_t, QParams, float, float);
};

namespace {

constexpr int kLanes = 16;  // independent accumulators: vectorisable, order-fixed sums

// Kernels take __restrict__ pointers so GCC vectorises them without runtime alias checks (the
// scalar fallback of a failed check branches on every element and runs ~20x slower).

// rows x C channels-last block: channel c uses parameters c.
template <typename scalar_t>
void forward_rows(const scalar_t* __restrict__ x, scalar_t* __restrict__ y, int64_t rows, int64_t C,
                  const float* __restrict__ s, const float* __restrict__ inv, const float* __restrict__ z,
                  float qmin, float qmax) {
  for (int64_t o = 0; o < rows; ++o)
    for (int64_t c = 0; c < C; ++c)
      y[o * C + c] = static_cast<scalar_t>(
          fake_quant_value(static_cast<float>(x[o * C + c]), QParams{s[c], inv[c], z[c]}, qmin, qmax));
}

// n contiguous elements sharing one set of parameters.
template <typename scalar_t>
void forward_span(const scalar_t* __restrict__ x, scalar_t* __restrict__ y, int64_t n, QParams p, float qmin,
                  float qmax) {
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<scalar_t>(fake_quant_value(static_cast<float>(x[i]), p, qmin, qmax));
}

// Adds the block's scale / zero-point gradients to ps[c] / pz[c].
template <typename scalar_t, bool kParamGrads>
void backward_rows(const scalar_t* __restrict__ dy, const scalar_t* __restrict__ x, scalar_t* __restrict__ dx,
                   int64_t rows, int64_t C, const float* __restrict__ s, const float* __restrict__ inv,
                   const float* __restrict__ z, float qmin, float qmax, float* __restrict__ ps,
                   float* __restrict__ pz) {
  for (int64_t o = 0; o < rows; ++o) {
    for (int64_t c = 0; c < C; ++c) {
      const int64_t i = o * C + c;
      const ElemGrad g = fake_quant_grad(static_cast<float>(dy[i]), static_cast<float>(x[i]),
                                         QParams{s[c], inv[c], z[c]}, qmin, qmax);
      dx[i] = static_cast<scalar_t>(g.dx);
      if (kParamGrads) ps[c] += g.dscale, pz[c] += g.dzero;
    }
  }
}

// Returns the span's scale / zero-point gradient sums, accumulated in kLanes fixed lanes.
template <typename scalar_t, bool kParamGrads>
SpanGrad backward_span(const scalar_t* __restrict__ dy, const scalar_t* __restrict__ x, scalar_t* __restrict__ dx,
                       int64_t n, QParams p, float qmin, float qmax) {
  float as[kLanes] = {0.f}, az[kLanes] = {0.f};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) {
      const ElemGrad g = fake_quant_grad(static_cast<float>(dy[i + j]), static_cast<float>(x[i + j]), p, qmin, qmax);
      dx[i + j] = static_cast<scalar_t>(g.dx);
      if (kParamGrads) as[j] += g.dscale, az[j] += g.dzero;
    }
  }
  for (int j = 0; i < n; ++i, ++j) {
    const ElemGrad g = fake_quant_grad(static_cast<float>(dy[i]), static_cast<float>(x[i]), p, qmin, qmax);
    dx[i] = static_cast<scalar_t>(g.dx);
    if (kParamGrads) as[j] += g.dscale, az[j] += g.dzero;
  }
  SpanGrad sum{0.f, 0.f};
  for (int j = 0; j < kLanes; ++j) sum.dscale += as[j], sum.dzero += az[j];
  return sum;
}

template <typename T>
KernelTable<T> make_kernels() {
  return {forward_rows<T>, forward_span<T>, {backward_rows<T, false>, backward_rows<T, true>},
          {backward_span<T, false>, backward_span<T, true>}};
}

}  // namespace
}  // namespace mmvitq

#endif  // MMVITQ_FAKE_QUANT_KERNELS_H
