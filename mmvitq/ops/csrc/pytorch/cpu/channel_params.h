// Per-channel quantization parameters of a CPU kernel call, shared by the regular and compact kernels.
#ifndef MMVITQ_CHANNEL_PARAMS_H
#define MMVITQ_CHANNEL_PARAMS_H

#include <ATen/ATen.h>

#include <vector>

#include "fake_quant_common.h"

namespace mmvitq {

// Per-channel parameters as three arrays (structure of arrays, so the channel loop vectorises).
struct ChannelParams {
  std::vector<float> scale, inv_scale, zero;
  ChannelParams(const at::Tensor& s, const at::Tensor& z, float qmin, float qmax) {
    const int64_t n = s.numel();
    scale.resize(n), inv_scale.resize(n), zero.resize(n);
    const float* sp = s.data_ptr<float>();
    const float* zp = z.data_ptr<float>();
    for (int64_t i = 0; i < n; ++i) {
      QParams p = make_qparams(sp[i], zp[i], qmin, qmax);
      scale[i] = p.scale, inv_scale[i] = p.inv_scale, zero[i] = p.zero_point;
    }
  }
};

}  // namespace mmvitq

#endif  // MMVITQ_CHANNEL_PARAMS_H
