// Device dispatch and argument checks for the fake-quantization kernels.
#include <torch/extension.h>

#include <vector>

using at::Tensor;

namespace mmvitq {

Tensor fake_quant_forward_cpu(const Tensor& x, const Tensor& scale, const Tensor& zero_point,
                              int64_t channels, int64_t inner, int64_t qmin, int64_t qmax);
std::vector<Tensor> fake_quant_backward_cpu(const Tensor& dy, const Tensor& x, const Tensor& scale,
                                            const Tensor& zero_point, int64_t channels, int64_t inner,
                                            int64_t qmin, int64_t qmax, double grad_factor,
                                            bool param_grads);
std::vector<Tensor> fake_quant_per_token_forward_cpu(const Tensor& x, int64_t qmin, int64_t qmax,
                                                     bool symmetric);
std::vector<Tensor> fake_quant_pack_cpu(const Tensor& x, const Tensor& scale, const Tensor& zero_point,
                                        int64_t channels, int64_t inner, int64_t qmin, int64_t qmax);
Tensor fake_quant_unpack_cpu(const Tensor& level, const Tensor& resid, const Tensor& scale, const Tensor& zero_point,
                             int64_t channels, int64_t inner, int64_t qmin, int64_t qmax, bool quantized);
#ifdef MMVITQ_WITH_CUDA
Tensor fake_quant_forward_cuda(const Tensor& x, const Tensor& scale, const Tensor& zero_point,
                               int64_t channels, int64_t inner, int64_t qmin, int64_t qmax);
std::vector<Tensor> fake_quant_backward_cuda(const Tensor& dy, const Tensor& x, const Tensor& scale,
                                             const Tensor& zero_point, int64_t channels, int64_t inner,
                                             int64_t qmin, int64_t qmax, double grad_factor,
                                             bool param_grads);
std::vector<Tensor> fake_quant_per_token_forward_cuda(const Tensor& x, int64_t qmin, int64_t qmax,
                                                      bool symmetric);
std::vector<Tensor> fake_quant_pack_cuda(const Tensor& x, const Tensor& scale, const Tensor& zero_point,
                                         int64_t channels, int64_t inner, int64_t qmin, int64_t qmax);
Tensor fake_quant_unpack_cuda(const Tensor& level, const Tensor& resid, const Tensor& scale,
                              const Tensor& zero_point, int64_t channels, int64_t inner, int64_t qmin, int64_t qmax,
                              bool quantized);
#endif

// Runs NAME_cuda(...) on CUDA tensors (an error when built without CUDA), else NAME_cpu(...).
#ifdef MMVITQ_WITH_CUDA
#define DISPATCH_DEVICE(tensor, name, ...) \
  return (tensor).is_cuda() ? name##_cuda(__VA_ARGS__) : name##_cpu(__VA_ARGS__)
#else
#define DISPATCH_DEVICE(tensor, name, ...)                                      \
  TORCH_CHECK(!(tensor).is_cuda(), "mmvitq._ext was built without CUDA"); \
  return name##_cpu(__VA_ARGS__)
#endif

namespace {

void check_input(const Tensor& x, const char* name) {
  TORCH_CHECK(x.is_contiguous(), name, " must be contiguous");
  const auto t = x.scalar_type();
  TORCH_CHECK(t == at::kFloat || t == at::kHalf || t == at::kBFloat16, name,
              " must be float32, float16 or bfloat16, got ", t);
}

void check_range(int64_t qmin, int64_t qmax) {
  TORCH_CHECK(qmin < qmax && qmax - qmin <= 65535, "need quant_min < quant_max spanning at most 16 bits, got [",
              qmin, ", ", qmax, "]");
}

// `x` (any dtype) splits into [outer, channels, inner]; scale and zero point fit it.
void check_params(const Tensor& x, const Tensor& scale, const Tensor& zero_point, int64_t channels, int64_t inner) {
  TORCH_CHECK(channels >= 1 && inner >= 1, "channels and inner must be >= 1");
  TORCH_CHECK(x.numel() % (channels * inner) == 0, "input of ", x.numel(),
              " elements does not split into channels=", channels, " x inner=", inner);
  for (const Tensor* t : {&scale, &zero_point}) {
    TORCH_CHECK(t->scalar_type() == at::kFloat && t->is_contiguous() && t->numel() == channels,
                "scale and zero_point must be contiguous float32 with ", channels, " elements");
    TORCH_CHECK(t->device() == x.device(), "scale and zero_point must be on the input's device");
  }
}

void check_layout(const Tensor& x, const Tensor& scale, const Tensor& zero_point, int64_t channels,
                  int64_t inner, int64_t qmin, int64_t qmax) {
  check_input(x, "input");
  check_range(qmin, qmax);
  check_params(x, scale, zero_point, channels, inner);
}

void check_compact_range(int64_t qmin, int64_t qmax) {
  check_range(qmin, qmax);
  TORCH_CHECK(qmax - qmin <= 255, "compact fake quantization stores levels in 8 bits, got [", qmin, ", ", qmax, "]");
}

}  // namespace

std::vector<Tensor> fake_quant_pack(const Tensor& x, const Tensor& scale, const Tensor& zero_point,
                                    int64_t channels, int64_t inner, int64_t qmin, int64_t qmax) {
  check_layout(x, scale, zero_point, channels, inner, qmin, qmax);
  check_compact_range(qmin, qmax);
  TORCH_CHECK(x.scalar_type() == at::kFloat, "compact fake quantization takes float32 input, got ", x.scalar_type());
  DISPATCH_DEVICE(x, fake_quant_pack, x, scale, zero_point, channels, inner, qmin, qmax);
}

Tensor fake_quant_unpack(const Tensor& level, const Tensor& resid, const Tensor& scale, const Tensor& zero_point,
                         int64_t channels, int64_t inner, int64_t qmin, int64_t qmax, bool quantized) {
  check_compact_range(qmin, qmax);
  TORCH_CHECK(level.scalar_type() == at::kByte && resid.scalar_type() == at::kChar && level.is_contiguous() &&
                  resid.is_contiguous() && level.sizes() == resid.sizes() && level.device() == resid.device(),
              "level (uint8) and resid (int8) must be contiguous with the same shape and device");
  check_params(level, scale, zero_point, channels, inner);
  DISPATCH_DEVICE(level, fake_quant_unpack, level, resid, scale, zero_point, channels, inner, qmin, qmax, quantized);
}

Tensor fake_quant_forward(const Tensor& x, const Tensor& scale, const Tensor& zero_point,
                          int64_t channels, int64_t inner, int64_t qmin, int64_t qmax) {
  check_layout(x, scale, zero_point, channels, inner, qmin, qmax);
  DISPATCH_DEVICE(x, fake_quant_forward, x, scale, zero_point, channels, inner, qmin, qmax);
}

std::vector<Tensor> fake_quant_backward(const Tensor& dy, const Tensor& x, const Tensor& scale,
                                        const Tensor& zero_point, int64_t channels, int64_t inner,
                                        int64_t qmin, int64_t qmax, double grad_factor,
                                        bool param_grads) {
  check_layout(x, scale, zero_point, channels, inner, qmin, qmax);
  check_input(dy, "grad_output");
  TORCH_CHECK(dy.sizes() == x.sizes() && dy.scalar_type() == x.scalar_type() && dy.device() == x.device(),
              "grad_output must match the input's shape, dtype and device");
  DISPATCH_DEVICE(x, fake_quant_backward, dy, x, scale, zero_point, channels, inner, qmin, qmax, grad_factor,
                  param_grads);
}

std::vector<Tensor> fake_quant_per_token_forward(const Tensor& x, int64_t qmin, int64_t qmax,
                                                 bool symmetric) {
  check_input(x, "input");
  check_range(qmin, qmax);
  TORCH_CHECK(!symmetric || (qmin < 0 && qmax > 0), "symmetric per-token quantization needs quant_min < 0 < quant_max");
  DISPATCH_DEVICE(x, fake_quant_per_token_forward, x, qmin, qmax, symmetric);
}

bool compiled_with_cuda() {
#ifdef MMVITQ_WITH_CUDA
  return true;
#else
  return false;
#endif
}

}  // namespace mmvitq
