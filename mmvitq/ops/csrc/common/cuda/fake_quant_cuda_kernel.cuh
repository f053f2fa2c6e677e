// CUDA fake-quantization kernels. Scale and zero-point gradients are reduced inside the kernels
// into one partial per work item (no atomics, no input-sized temporaries, no host sync); the
// launcher sums the partials with a deterministic torch reduction.
#ifndef MMVITQ_FAKE_QUANT_CUDA_KERNEL_CUH
#define MMVITQ_FAKE_QUANT_CUDA_KERNEL_CUH

#include <cub/block/block_reduce.cuh>

#include "fake_quant_common.h"

namespace mmvitq {

template <typename T>
__global__ void fake_quant_forward_kernel(const T* __restrict__ x, T* __restrict__ y,
                                          const float* __restrict__ scale,
                                          const float* __restrict__ zero, int64_t n, int64_t channels,
                                          int64_t inner, float qmin, float qmax) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += stride) {
    const int64_t c = channels == 1 ? 0 : (i / inner) % channels;
    const QParams p = make_qparams(__ldg(scale + c), __ldg(zero + c), qmin, qmax);
    y[i] = static_cast<T>(fake_quant_value(static_cast<float>(x[i]), p, qmin, qmax));
  }
}

// inner > 1: work item = chunk of one (outer, channel) row; one block per item, block reduction.
template <typename T, int kThreads, bool kParamGrads>
__global__ void fake_quant_backward_rows_kernel(const T* __restrict__ dy, const T* __restrict__ x,
                                                T* __restrict__ dx, const float* __restrict__ scale,
                                                const float* __restrict__ zero, int64_t items,
                                                int64_t chunks, int64_t chunk_len, int64_t channels,
                                                int64_t inner, float qmin, float qmax,
                                                float* __restrict__ part_s,
                                                float* __restrict__ part_z) {
  using BlockReduce = cub::BlockReduce<float, kThreads>;
  __shared__ typename BlockReduce::TempStorage tmp_s, tmp_z;
  for (int64_t item = blockIdx.x; item < items; item += gridDim.x) {
    const int64_t row = item / chunks, start = (item % chunks) * chunk_len;
    const int64_t n = min(chunk_len, inner - start), off = row * inner + start;
    const int64_t c = row % channels;
    const QParams p = make_qparams(__ldg(scale + c), __ldg(zero + c), qmin, qmax);
    float acc_s = 0.f, acc_z = 0.f;
    for (int64_t i = threadIdx.x; i < n; i += kThreads) {
      const ElemGrad g = fake_quant_grad(static_cast<float>(dy[off + i]), static_cast<float>(x[off + i]), p,
                                         qmin, qmax);
      dx[off + i] = static_cast<T>(g.dx);
      acc_s += g.dscale, acc_z += g.dzero;
    }
    if (kParamGrads) {
      const float sum_s = BlockReduce(tmp_s).Sum(acc_s);
      const float sum_z = BlockReduce(tmp_z).Sum(acc_z);
      if (threadIdx.x == 0) part_s[item] = sum_s, part_z[item] = sum_z;
      __syncthreads();  // the temp storage is reused by the next item
    }
  }
}

// inner == 1 (channels last): threadIdx.x walks 32 consecutive channels (coalesced), threadIdx.y
// strides over the rows of one row block; partials are [row blocks, channels].
constexpr int kTileC = 32, kTileR = 8;

template <typename T, bool kParamGrads>
__global__ void fake_quant_backward_channels_last_kernel(
    const T* __restrict__ dy, const T* __restrict__ x, T* __restrict__ dx, const float* __restrict__ scale,
    const float* __restrict__ zero, int64_t outer, int64_t channels, int64_t rows_per_item, float qmin,
    float qmax, float* __restrict__ part_s, float* __restrict__ part_z) {
  __shared__ float sh_s[kTileR][kTileC + 1], sh_z[kTileR][kTileC + 1];
  const int64_t c = blockIdx.x * static_cast<int64_t>(kTileC) + threadIdx.x;
  const int64_t item = blockIdx.y;
  const int64_t o_end = min(outer, (item + 1) * rows_per_item);
  float acc_s = 0.f, acc_z = 0.f;
  if (c < channels) {
    const QParams p = make_qparams(__ldg(scale + c), __ldg(zero + c), qmin, qmax);
    for (int64_t o = item * rows_per_item + threadIdx.y; o < o_end; o += kTileR) {
      const int64_t i = o * channels + c;
      const ElemGrad g = fake_quant_grad(static_cast<float>(dy[i]), static_cast<float>(x[i]), p, qmin, qmax);
      dx[i] = static_cast<T>(g.dx);
      acc_s += g.dscale, acc_z += g.dzero;
    }
  }
  if (!kParamGrads) return;
  sh_s[threadIdx.y][threadIdx.x] = acc_s;
  sh_z[threadIdx.y][threadIdx.x] = acc_z;
  __syncthreads();
  if (threadIdx.y == 0 && c < channels) {
    float s = 0.f, z = 0.f;
    for (int r = 0; r < kTileR; ++r) s += sh_s[r][threadIdx.x], z += sh_z[r][threadIdx.x];
    part_s[item * channels + c] = s;
    part_z[item * channels + c] = z;
  }
}

// One block per row: finite min/max by block reduction, then the row's parameters, then the row.
template <typename T, int kThreads>
__global__ void fake_quant_per_token_kernel(const T* __restrict__ x, T* __restrict__ y, float* __restrict__ scale,
                                            float* __restrict__ zero, int64_t rows, int64_t len, float qmin,
                                            float qmax, bool symmetric) {
  using BlockReduce = cub::BlockReduce<float, kThreads>;
  __shared__ typename BlockReduce::TempStorage tmp;
  __shared__ QParams p_row;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * len;
    float lo = 0.f, hi = 0.f;  // non-finite values count as 0, inside [min(x, 0), max(x, 0)]
    for (int64_t i = threadIdx.x; i < len; i += kThreads) {
      float v = static_cast<float>(xr[i]);
      v = is_finite(v) ? v : 0.f;
      lo = v < lo ? v : lo;
      hi = v > hi ? v : hi;
    }
    const float mn = BlockReduce(tmp).Reduce(lo, [](float a, float b) { return a < b ? a : b; });
    __syncthreads();
    const float mx = BlockReduce(tmp).Reduce(hi, [](float a, float b) { return a > b ? a : b; });
    if (threadIdx.x == 0) {
      float s, z;
      token_qparams(mn, mx, qmin, qmax, symmetric, &s, &z);
      scale[r] = s, zero[r] = z;
      p_row = make_qparams(s, z, qmin, qmax);
    }
    __syncthreads();
    const QParams p = p_row;
    for (int64_t i = threadIdx.x; i < len; i += kThreads)
      y[r * len + i] = static_cast<T>(fake_quant_value(static_cast<float>(xr[i]), p, qmin, qmax));
    __syncthreads();  // p_row and tmp are reused by the next row
  }
}

// Compact fake quantization (mmvitq.ops.compact): element-wise pack and unpack, float32 only.
__global__ void fake_quant_pack_kernel(const float* __restrict__ x, float* __restrict__ y,
                                       unsigned char* __restrict__ level, signed char* __restrict__ resid,
                                       const float* __restrict__ scale, const float* __restrict__ zero, int64_t n,
                                       int64_t channels, int64_t inner, float qmin, float qmax) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += stride) {
    const int64_t c = channels == 1 ? 0 : (i / inner) % channels;
    const QParams p = make_qparams(__ldg(scale + c), __ldg(zero + c), qmin, qmax);
    y[i] = pack_element(x[i], p, qmin, qmax, level + i, resid + i);
  }
}

__global__ void fake_quant_unpack_kernel(const unsigned char* __restrict__ level,
                                         const signed char* __restrict__ resid, float* __restrict__ out,
                                         const float* __restrict__ scale, const float* __restrict__ zero, int64_t n,
                                         int64_t channels, int64_t inner, float qmin, float qmax, bool quantized) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += stride) {
    const int64_t c = channels == 1 ? 0 : (i / inner) % channels;
    const QParams p = make_qparams(__ldg(scale + c), __ldg(zero + c), qmin, qmax);
    out[i] = unpack_element(level[i], resid[i], p, qmin, qmax, quantized);
  }
}

}  // namespace mmvitq

#endif  // MMVITQ_FAKE_QUANT_CUDA_KERNEL_CUH
