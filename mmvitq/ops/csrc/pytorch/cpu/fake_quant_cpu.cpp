// CPU fake-quantization kernels: at::parallel_for over fixed-size work items, inner loops the
// compiler vectorises, and per-item partial sums reduced in a fixed order, so the scale and zero
// point gradients are the same for any number of threads.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "channel_params.h"
#include "fake_quant_kernels.h"

using at::Tensor;

namespace mmvitq {

#if defined(__x86_64__) && defined(__GNUC__)
KernelTable<float> avx2_float_kernels();  // fake_quant_avx2.cpp
#endif

namespace {

constexpr int64_t kBlock = 16384;  // elements per work item

// float32 runs the AVX2 build of the kernels when the processor has it; other dtypes the baseline.
template <typename T>
KernelTable<T> kernels() {
  return make_kernels<T>();
}

template <>
KernelTable<float> kernels<float>() {
  static const KernelTable<float> table = [] {
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx2")) return avx2_float_kernels();
#endif
    return make_kernels<float>();
  }();
  return table;
}

// Work split for [outer, C, inner]: with inner == 1 an item is a block of whole rows of C
// channels; otherwise an item is a chunk (at most kBlock long) of one (outer, channel) row.
struct Split {
  int64_t outer, C, inner, rows_per_item, chunks, items;
  Split(int64_t numel, int64_t C_, int64_t inner_) : C(C_), inner(inner_) {
    outer = numel / (C * inner);
    if (inner == 1) {
      rows_per_item = std::max<int64_t>(1, kBlock / C);
      chunks = 1;
      items = (outer + rows_per_item - 1) / rows_per_item;
    } else {
      rows_per_item = 1;
      chunks = (inner + kBlock - 1) / kBlock;
      items = outer * C * chunks;
    }
  }
  int64_t grain() const { return inner == 1 ? 1 : std::max<int64_t>(1, kBlock / std::min(inner, kBlock)); }
};

template <typename scalar_t>
void forward_impl(const scalar_t* x, scalar_t* y, const ChannelParams& cp, const Split& sp, float qmin,
                  float qmax) {
  const float *s = cp.scale.data(), *inv = cp.inv_scale.data(), *z = cp.zero.data();
  const KernelTable<scalar_t> k = kernels<scalar_t>();
  at::parallel_for(0, sp.items, sp.grain(), [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      if (sp.inner == 1) {
        const int64_t o = item * sp.rows_per_item, rows = std::min(sp.rows_per_item, sp.outer - o);
        k.forward_rows(x + o * sp.C, y + o * sp.C, rows, sp.C, s, inv, z, qmin, qmax);
      } else {
        const int64_t row = item / sp.chunks, start = (item % sp.chunks) * kBlock, c = row % sp.C;
        const int64_t off = row * sp.inner + start;
        k.forward_span(x + off, y + off, std::min(kBlock, sp.inner - start), QParams{s[c], inv[c], z[c]}, qmin, qmax);
      }
    }
  });
}

template <typename scalar_t>
void backward_impl(const scalar_t* dy, const scalar_t* x, scalar_t* dx, const ChannelParams& cp, const Split& sp,
                   float qmin, float qmax, bool param_grads, float* part_s, float* part_z) {
  const float *s = cp.scale.data(), *inv = cp.inv_scale.data(), *z = cp.zero.data();
  const KernelTable<scalar_t> k = kernels<scalar_t>();
  const auto rows_fn = k.backward_rows[param_grads];
  const auto span_fn = k.backward_span[param_grads];
  at::parallel_for(0, sp.items, sp.grain(), [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      if (sp.inner == 1) {  // partials: [items, C]
        const int64_t o = item * sp.rows_per_item, rows = std::min(sp.rows_per_item, sp.outer - o);
        rows_fn(dy + o * sp.C, x + o * sp.C, dx + o * sp.C, rows, sp.C, s, inv, z, qmin,
                                             qmax, part_s + item * sp.C, part_z + item * sp.C);
      } else {  // partials: [items]
        const int64_t row = item / sp.chunks, start = (item % sp.chunks) * kBlock, c = row % sp.C;
        const int64_t off = row * sp.inner + start;
        const SpanGrad sums = span_fn(dy + off, x + off, dx + off, std::min(kBlock, sp.inner - start),
                                      QParams{s[c], inv[c], z[c]}, qmin, qmax);
        if (param_grads) part_s[item] = sums.dscale, part_z[item] = sums.dzero;
      }
    }
  });
}

// Sums the per-item partials of each channel in item order (double accumulation).
void reduce_partials(const Split& sp, const std::vector<float>& part, float* out, double factor) {
  std::vector<double> acc(sp.C, 0.0);
  if (sp.inner == 1) {
    for (int64_t item = 0; item < sp.items; ++item)
      for (int64_t c = 0; c < sp.C; ++c) acc[c] += part[item * sp.C + c];
  } else {
    for (int64_t item = 0; item < sp.items; ++item) acc[(item / sp.chunks) % sp.C] += part[item];
  }
  for (int64_t c = 0; c < sp.C; ++c) out[c] = static_cast<float>(acc[c] * factor);
}

}  // namespace

Tensor fake_quant_forward_cpu(const Tensor& x, const Tensor& scale, const Tensor& zero_point,
                              int64_t channels, int64_t inner, int64_t qmin, int64_t qmax) {
  Tensor y = at::empty_like(x);
  if (x.numel() == 0) return y;
  const ChannelParams cp(scale, zero_point, qmin, qmax);
  const Split sp(x.numel(), channels, inner);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "fake_quant_forward_cpu", [&] {
    forward_impl<scalar_t>(x.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), cp, sp, qmin, qmax);
  });
  return y;
}

std::vector<Tensor> fake_quant_backward_cpu(const Tensor& dy, const Tensor& x, const Tensor& scale,
                                            const Tensor& zero_point, int64_t channels, int64_t inner,
                                            int64_t qmin, int64_t qmax, double grad_factor,
                                            bool param_grads) {
  Tensor dx = at::empty_like(x);
  Tensor ds = at::zeros({channels}, scale.options());
  Tensor dz = at::zeros({channels}, scale.options());
  if (x.numel() == 0) return {dx, ds, dz};
  const ChannelParams cp(scale, zero_point, qmin, qmax);
  const Split sp(x.numel(), channels, inner);
  const int64_t n_part = param_grads ? (inner == 1 ? sp.items * channels : sp.items) : 0;
  std::vector<float> part_s(n_part, 0.f), part_z(n_part, 0.f);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "fake_quant_backward_cpu", [&] {
    backward_impl<scalar_t>(dy.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), dx.data_ptr<scalar_t>(), cp, sp, qmin,
                            qmax, param_grads, part_s.data(), part_z.data());
  });
  if (param_grads) {
    reduce_partials(sp, part_s, ds.data_ptr<float>(), grad_factor);
    reduce_partials(sp, part_z, dz.data_ptr<float>(), grad_factor);
  }
  return {dx, ds, dz};
}

std::vector<Tensor> fake_quant_per_token_forward_cpu(const Tensor& x, int64_t qmin, int64_t qmax,
                                                     bool symmetric) {
  const int64_t len = x.dim() == 0 ? 1 : x.size(-1);
  const int64_t rows = len == 0 ? 0 : x.numel() / len;
  Tensor y = at::empty_like(x);
  Tensor scale = at::empty({rows}, x.options().dtype(at::kFloat));
  Tensor zero = at::empty({rows}, x.options().dtype(at::kFloat));
  if (x.numel() == 0) return {y, scale, zero};
  float* sp = scale.data_ptr<float>();
  float* zp = zero.data_ptr<float>();
  const float fmin = qmin, fmax = qmax;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "fake_quant_per_token_cpu", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    scalar_t* yp = y.data_ptr<scalar_t>();
    const KernelTable<scalar_t> k = kernels<scalar_t>();
    at::parallel_for(0, rows, std::max<int64_t>(1, kBlock / len), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const scalar_t* __restrict__ xr = xp + r * len;
        scalar_t* __restrict__ yr = yp + r * len;
        // Non-finite values count as 0, which the range [min(x, 0), max(x, 0)] holds anyway.
        float lo[kLanes] = {0.f}, hi[kLanes] = {0.f};
        int64_t i = 0;
        for (; i + kLanes <= len; i += kLanes) {
          for (int j = 0; j < kLanes; ++j) {
            float v = static_cast<float>(xr[i + j]);
            v = is_finite(v) ? v : 0.f;
            lo[j] = v < lo[j] ? v : lo[j];
            hi[j] = v > hi[j] ? v : hi[j];
          }
        }
        for (; i < len; ++i) {
          float v = static_cast<float>(xr[i]);
          v = is_finite(v) ? v : 0.f;
          lo[0] = v < lo[0] ? v : lo[0];
          hi[0] = v > hi[0] ? v : hi[0];
        }
        float mn = 0.f, mx = 0.f;
        for (int j = 0; j < kLanes; ++j) mn = lo[j] < mn ? lo[j] : mn, mx = hi[j] > mx ? hi[j] : mx;
        token_qparams(mn, mx, fmin, fmax, symmetric, sp + r, zp + r);
        k.forward_span(xr, yr, len, make_qparams(sp[r], zp[r], fmin, fmax), fmin, fmax);
      }
    });
  });
  return {y, scale, zero};
}

}  // namespace mmvitq
