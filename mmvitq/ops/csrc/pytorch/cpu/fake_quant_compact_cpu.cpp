// CPU kernels of compact fake quantization (pack: input -> output, levels, residual codes; unpack: back).
// Loops over whole rows of channels (inner == 1) or spans of one channel (inner > 1), so the element
// functions, which are branch-free, vectorise.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "channel_params.h"

using at::Tensor;

namespace mmvitq {
namespace {

constexpr int64_t kGrain = 16384;  // elements per work item

// Walks [outer, channels, inner] in parallel: row_fn(offset) for each row of channels when inner == 1,
// else span_fn(offset, length, channel) for spans (at most kGrain long) of one channel.
template <typename RowFn, typename SpanFn>
void for_each_span(int64_t n, int64_t channels, int64_t inner, RowFn row_fn, SpanFn span_fn) {
  if (inner == 1) {
    const int64_t rows = n / channels, per_item = std::max<int64_t>(1, kGrain / channels);
    at::parallel_for(0, (rows + per_item - 1) / per_item, 1, [&](int64_t begin, int64_t end) {
      for (int64_t item = begin; item < end; ++item)
        for (int64_t r = item * per_item; r < std::min(rows, (item + 1) * per_item); ++r) row_fn(r * channels);
    });
    return;
  }
  const int64_t chunks = (inner + kGrain - 1) / kGrain, rows = n / inner;
  at::parallel_for(0, rows * chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t row = item / chunks, start = (item % chunks) * kGrain;
      span_fn(row * inner + start, std::min(kGrain, inner - start), row % channels);
    }
  });
}

}  // namespace

std::vector<Tensor> fake_quant_pack_cpu(const Tensor& x, const Tensor& scale, const Tensor& zero_point,
                                        int64_t channels, int64_t inner, int64_t qmin, int64_t qmax) {
  Tensor y = at::empty_like(x);
  Tensor level = at::empty(x.sizes(), x.options().dtype(at::kByte));
  Tensor resid = at::empty(x.sizes(), x.options().dtype(at::kChar));
  const float fmin = qmin, fmax = qmax;
  const float* __restrict__ xp = x.data_ptr<float>();
  float* __restrict__ yp = y.data_ptr<float>();
  unsigned char* __restrict__ lp = level.data_ptr<uint8_t>();
  signed char* __restrict__ rp = reinterpret_cast<signed char*>(resid.data_ptr<int8_t>());
  const ChannelParams pp(scale, zero_point, fmin, fmax);
  const float *s = pp.scale.data(), *inv = pp.inv_scale.data(), *z = pp.zero.data();
  for_each_span(
      x.numel(), channels, inner,
      [&](int64_t off) {
        for (int64_t c = 0; c < channels; ++c) {
          const QParams p{s[c], inv[c], z[c]};
          yp[off + c] = pack_element(xp[off + c], p, fmin, fmax, lp + off + c, rp + off + c);
        }
      },
      [&](int64_t off, int64_t len, int64_t c) {
        const QParams p{s[c], inv[c], z[c]};
        for (int64_t i = off; i < off + len; ++i) yp[i] = pack_element(xp[i], p, fmin, fmax, lp + i, rp + i);
      });
  return {y, level, resid};
}

Tensor fake_quant_unpack_cpu(const Tensor& level, const Tensor& resid, const Tensor& scale, const Tensor& zero_point,
                             int64_t channels, int64_t inner, int64_t qmin, int64_t qmax, bool quantized) {
  Tensor out = at::empty(level.sizes(), scale.options());
  const float fmin = qmin, fmax = qmax;
  const unsigned char* __restrict__ lp = level.data_ptr<uint8_t>();
  const signed char* __restrict__ rp = reinterpret_cast<const signed char*>(resid.data_ptr<int8_t>());
  float* __restrict__ op = out.data_ptr<float>();
  const ChannelParams pp(scale, zero_point, fmin, fmax);
  const float *s = pp.scale.data(), *inv = pp.inv_scale.data(), *z = pp.zero.data();
  for_each_span(
      level.numel(), channels, inner,
      [&](int64_t off) {
        for (int64_t c = 0; c < channels; ++c) {
          const QParams p{s[c], inv[c], z[c]};
          op[off + c] = unpack_element(lp[off + c], rp[off + c], p, fmin, fmax, quantized);
        }
      },
      [&](int64_t off, int64_t len, int64_t c) {
        const QParams p{s[c], inv[c], z[c]};
        for (int64_t i = off; i < off + len; ++i) op[i] = unpack_element(lp[i], rp[i], p, fmin, fmax, quantized);
      });
  return out;
}

}  // namespace mmvitq
