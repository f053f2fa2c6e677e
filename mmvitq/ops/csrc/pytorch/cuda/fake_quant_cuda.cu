// Launchers of the CUDA fake-quantization kernels.
#include <array>
#include <vector>

#include "fake_quant_cuda_kernel.cuh"
#include "pytorch_cuda_helper.hpp"

namespace mmvitq {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kChunk = 8192;   // elements per work item of the row kernel
constexpr int64_t kMaxBlocks = 65535;

int64_t blocks_for(int64_t work) { return std::max<int64_t>(1, std::min<int64_t>(work, kMaxBlocks)); }

}  // namespace

Tensor fake_quant_forward_cuda(const Tensor& x, const Tensor& scale, const Tensor& zero_point,
                               int64_t channels, int64_t inner, int64_t qmin, int64_t qmax) {
  at::cuda::CUDAGuard guard(x.device());
  Tensor y = at::empty_like(x);
  const int64_t n = x.numel();
  if (n == 0) return y;
  auto stream = at::cuda::getCurrentCUDAStream();
  const int64_t blocks = blocks_for((n + kThreads - 1) / kThreads);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "fake_quant_forward_cuda", [&] {
    fake_quant_forward_kernel<scalar_t><<<blocks, kThreads, 0, stream>>>(
        x.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), scale.data_ptr<float>(), zero_point.data_ptr<float>(),
        n, channels, inner, static_cast<float>(qmin), static_cast<float>(qmax));
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return y;
}

std::vector<Tensor> fake_quant_backward_cuda(const Tensor& dy, const Tensor& x, const Tensor& scale,
                                             const Tensor& zero_point, int64_t channels, int64_t inner,
                                             int64_t qmin, int64_t qmax, double grad_factor,
                                             bool param_grads) {
  at::cuda::CUDAGuard guard(x.device());
  Tensor dx = at::empty_like(x);
  const int64_t n = x.numel();
  if (n == 0) return {dx, at::zeros_like(scale), at::zeros_like(scale)};
  auto stream = at::cuda::getCurrentCUDAStream();
  const int64_t outer = n / (channels * inner);
  const float fmin = qmin, fmax = qmax;
  Tensor part_s, part_z;
  if (inner > 1) {
    const int64_t chunks = (inner + kChunk - 1) / kChunk, items = outer * channels * chunks;
    part_s = at::empty({outer, channels, chunks}, scale.options());
    part_z = at::empty({outer, channels, chunks}, scale.options());
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "fake_quant_backward_cuda", [&] {
      auto kernel = param_grads ? fake_quant_backward_rows_kernel<scalar_t, kThreads, true>
                                : fake_quant_backward_rows_kernel<scalar_t, kThreads, false>;
      kernel<<<blocks_for(items), kThreads, 0, stream>>>(
          dy.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), dx.data_ptr<scalar_t>(), scale.data_ptr<float>(),
          zero_point.data_ptr<float>(), items, chunks, kChunk, channels, inner, fmin, fmax,
          part_s.data_ptr<float>(), part_z.data_ptr<float>());
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    if (!param_grads) return {dx, at::zeros_like(scale), at::zeros_like(scale)};
    const std::array<int64_t, 2> dims{0, 2};  // not a braced list: ambiguous with sum(DimnameList) under nvcc
    return {dx, part_s.sum(dims).mul_(grad_factor), part_z.sum(dims).mul_(grad_factor)};
  }
  const int64_t rows_per_item = std::max<int64_t>(64, (outer + kMaxBlocks - 1) / kMaxBlocks);
  const int64_t items = (outer + rows_per_item - 1) / rows_per_item;
  part_s = at::empty({items, channels}, scale.options());
  part_z = at::empty({items, channels}, scale.options());
  const dim3 grid((channels + kTileC - 1) / kTileC, items), block(kTileC, kTileR);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "fake_quant_backward_cuda", [&] {
    auto kernel = param_grads ? fake_quant_backward_channels_last_kernel<scalar_t, true>
                              : fake_quant_backward_channels_last_kernel<scalar_t, false>;
    kernel<<<grid, block, 0, stream>>>(dy.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), dx.data_ptr<scalar_t>(),
                                       scale.data_ptr<float>(), zero_point.data_ptr<float>(), outer, channels,
                                       rows_per_item, fmin, fmax, part_s.data_ptr<float>(),
                                       part_z.data_ptr<float>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  if (!param_grads) return {dx, at::zeros_like(scale), at::zeros_like(scale)};
  return {dx, part_s.sum(0).mul_(grad_factor), part_z.sum(0).mul_(grad_factor)};
}

std::vector<Tensor> fake_quant_per_token_forward_cuda(const Tensor& x, int64_t qmin, int64_t qmax,
                                                      bool symmetric) {
  at::cuda::CUDAGuard guard(x.device());
  const int64_t len = x.dim() == 0 ? 1 : x.size(-1);
  const int64_t rows = len == 0 ? 0 : x.numel() / len;
  Tensor y = at::empty_like(x);
  Tensor scale = at::empty({rows}, x.options().dtype(at::kFloat));
  Tensor zero = at::empty({rows}, x.options().dtype(at::kFloat));
  if (x.numel() == 0) return {y, scale, zero};
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "fake_quant_per_token_cuda", [&] {
    fake_quant_per_token_kernel<scalar_t, kThreads><<<blocks_for(rows), kThreads, 0, stream>>>(
        x.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), scale.data_ptr<float>(), zero.data_ptr<float>(), rows,
        len, static_cast<float>(qmin), static_cast<float>(qmax), symmetric);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {y, scale, zero};
}

std::vector<Tensor> fake_quant_pack_cuda(const Tensor& x, const Tensor& scale, const Tensor& zero_point,
                                         int64_t channels, int64_t inner, int64_t qmin, int64_t qmax) {
  at::cuda::CUDAGuard guard(x.device());
  Tensor y = at::empty_like(x);
  Tensor level = at::empty(x.sizes(), x.options().dtype(at::kByte));
  Tensor resid = at::empty(x.sizes(), x.options().dtype(at::kChar));
  const int64_t n = x.numel();
  if (n == 0) return {y, level, resid};
  fake_quant_pack_kernel<<<blocks_for((n + kThreads - 1) / kThreads), kThreads, 0,
                           at::cuda::getCurrentCUDAStream()>>>(
      x.data_ptr<float>(), y.data_ptr<float>(), level.data_ptr<uint8_t>(),
      reinterpret_cast<signed char*>(resid.data_ptr<int8_t>()), scale.data_ptr<float>(),
      zero_point.data_ptr<float>(), n, channels, inner, static_cast<float>(qmin), static_cast<float>(qmax));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {y, level, resid};
}

Tensor fake_quant_unpack_cuda(const Tensor& level, const Tensor& resid, const Tensor& scale,
                              const Tensor& zero_point, int64_t channels, int64_t inner, int64_t qmin, int64_t qmax,
                              bool quantized) {
  at::cuda::CUDAGuard guard(level.device());
  Tensor out = at::empty(level.sizes(), scale.options());
  const int64_t n = level.numel();
  if (n == 0) return out;
  fake_quant_unpack_kernel<<<blocks_for((n + kThreads - 1) / kThreads), kThreads, 0,
                             at::cuda::getCurrentCUDAStream()>>>(
      level.data_ptr<uint8_t>(), reinterpret_cast<const signed char*>(resid.data_ptr<int8_t>()),
      out.data_ptr<float>(), scale.data_ptr<float>(), zero_point.data_ptr<float>(), n, channels, inner,
      static_cast<float>(qmin), static_cast<float>(qmax), quantized);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

}  // namespace mmvitq
