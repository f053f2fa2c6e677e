// Python bindings of mmvitq._ext.
#include <torch/extension.h>

#include <vector>

using at::Tensor;

namespace mmvitq {
Tensor fake_quant_forward(const Tensor& x, const Tensor& scale, const Tensor& zero_point,
                          int64_t channels, int64_t inner, int64_t qmin, int64_t qmax);
std::vector<Tensor> fake_quant_backward(const Tensor& dy, const Tensor& x, const Tensor& scale,
                                        const Tensor& zero_point, int64_t channels, int64_t inner,
                                        int64_t qmin, int64_t qmax, double grad_factor,
                                        bool param_grads);
std::vector<Tensor> fake_quant_per_token_forward(const Tensor& x, int64_t qmin, int64_t qmax,
                                                 bool symmetric);
std::vector<Tensor> fake_quant_pack(const Tensor& x, const Tensor& scale, const Tensor& zero_point,
                                    int64_t channels, int64_t inner, int64_t qmin, int64_t qmax);
Tensor fake_quant_unpack(const Tensor& level, const Tensor& resid, const Tensor& scale, const Tensor& zero_point,
                         int64_t channels, int64_t inner, int64_t qmin, int64_t qmax, bool quantized);
bool compiled_with_cuda();
}  // namespace mmvitq

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("fake_quant_forward", &mmvitq::fake_quant_forward, "fake quantization over [outer, channels, inner]",
        py::arg("input"), py::arg("scale"), py::arg("zero_point"), py::arg("channels"), py::arg("inner"),
        py::arg("quant_min"), py::arg("quant_max"));
  m.def("fake_quant_backward", &mmvitq::fake_quant_backward,
        "input, scale and zero-point gradients (LSQ / LSQ+) of fake_quant_forward", py::arg("grad_output"),
        py::arg("input"), py::arg("scale"), py::arg("zero_point"), py::arg("channels"), py::arg("inner"),
        py::arg("quant_min"), py::arg("quant_max"), py::arg("grad_factor"), py::arg("param_grads"));
  m.def("fake_quant_per_token_forward", &mmvitq::fake_quant_per_token_forward,
        "dynamic per-row fake quantization; returns (output, scale, zero_point)", py::arg("input"),
        py::arg("quant_min"), py::arg("quant_max"), py::arg("symmetric"));
  m.def("fake_quant_pack", &mmvitq::fake_quant_pack,
        "fake quantization keeping (output, levels - quant_min as uint8, residual codes as int8) for training",
        py::arg("input"), py::arg("scale"), py::arg("zero_point"), py::arg("channels"), py::arg("inner"),
        py::arg("quant_min"), py::arg("quant_max"));
  m.def("fake_quant_unpack", &mmvitq::fake_quant_unpack,
        "an input with the packed levels and residuals, or (quantized) the fake-quantized output itself",
        py::arg("level"), py::arg("resid"), py::arg("scale"), py::arg("zero_point"), py::arg("channels"),
        py::arg("inner"), py::arg("quant_min"), py::arg("quant_max"), py::arg("quantized"));
  m.def("compiled_with_cuda", &mmvitq::compiled_with_cuda, "whether the CUDA kernels were built");
}
