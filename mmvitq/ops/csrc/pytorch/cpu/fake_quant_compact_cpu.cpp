// CPU kernels of compact fake quantization (pack: input -> output, levels, residual codes; unpack: back).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <vector>

#include "fake_quant_common.h"

using at::Tensor;

namespace mmvitq {
namespace {

constexpr int64_t kGrain = 16384;

std::vector<QParams> channel_params(const Tensor& scale, const Tensor& zero_point, float qmin, float qmax) {
  std::vector<QParams> params(scale.numel());
  const float* s = scale.data_ptr<float>();
  const float* z = zero_point.data_ptr<float>();
  for (size_t c = 0; c < params.size(); ++c) params[c] = make_qparams(s[c], z[c], qmin, qmax);
  return params;
}

// Calls fn(i, params of element i) for i in [begin, end) of a [outer, channels, inner] tensor,
// stepping the channel index instead of dividing for every element.
template <typename Fn>
void for_each_element(int64_t n, int64_t channels, int64_t inner, const std::vector<QParams>& params, Fn fn) {
  at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
    int64_t c = (begin / inner) % channels, j = begin % inner;
    for (int64_t i = begin; i < end; ++i) {
      fn(i, params[c]);
      if (++j == inner) j = 0, c = c + 1 == channels ? 0 : c + 1;
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
  const float* xp = x.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  unsigned char* lp = level.data_ptr<uint8_t>();
  signed char* rp = reinterpret_cast<signed char*>(resid.data_ptr<int8_t>());
  for_each_element(x.numel(), channels, inner, channel_params(scale, zero_point, fmin, fmax),
                   [&](int64_t i, const QParams& p) { yp[i] = pack_element(xp[i], p, fmin, fmax, lp + i, rp + i); });
  return {y, level, resid};
}

Tensor fake_quant_unpack_cpu(const Tensor& level, const Tensor& resid, const Tensor& scale, const Tensor& zero_point,
                             int64_t channels, int64_t inner, int64_t qmin, int64_t qmax, bool quantized) {
  Tensor out = at::empty(level.sizes(), scale.options());
  const float fmin = qmin, fmax = qmax;
  const unsigned char* lp = level.data_ptr<uint8_t>();
  const signed char* rp = reinterpret_cast<const signed char*>(resid.data_ptr<int8_t>());
  float* op = out.data_ptr<float>();
  for_each_element(level.numel(), channels, inner, channel_params(scale, zero_point, fmin, fmax),
                   [&](int64_t i, const QParams& p) { op[i] = unpack_element(lp[i], rp[i], p, fmin, fmax, quantized); });
  return out;
}

}  // namespace mmvitq
