// Element-wise fake-quantization math shared by the CPU and CUDA kernels, so both round identically.
//
// Layout: a contiguous tensor is viewed as [outer, channels, inner]; channel c has its own scale and
// zero point (per-tensor: channels = 1; per-channel on axis a: channels = shape[a]; per-head:
// channels = heads, inner = head_dim * trailing; per-token: channels = rows, inner = row length).
#ifndef MMVITQ_FAKE_QUANT_COMMON_H
#define MMVITQ_FAKE_QUANT_COMMON_H

#include <limits>

// static: each translation unit keeps its own copy, so the AVX2 unit's copies (compiled for
// another target) are never merged with the baseline ones by the linker.
#if defined(__CUDACC__)
#define MMVITQ_HD static __host__ __device__ __forceinline__
#else
#define MMVITQ_HD static inline
#endif

namespace mmvitq {

// Scales are clamped to [kMinScale, kMaxScale] without an error or a host sync: zero, negative and NaN
// scales become kMinScale, +inf becomes kMaxScale. kMaxScale keeps (q - z) * s finite for every level
// (|q - z| <= 255), so a finite input always gives a finite output.
constexpr float kMinScale = 1e-8f;
constexpr float kMaxScale = 1e30f;

MMVITQ_HD float clamp_scale(float s) { return s > kMinScale ? (s < kMaxScale ? s : kMaxScale) : kMinScale; }

// Round half to even, exactly like nearbyint, in a form the host compiler can vectorise: adding
// 1.5 * 2^23 leaves no fractional bits. Valid for |v| < 2^22, which pre_clamp guarantees.
MMVITQ_HD float round_even(float v) {
#if defined(__CUDA_ARCH__)
  return rintf(v);
#else
  const float magic = 12582912.0f;
  return (v + magic) - magic;
#endif
}

// x * y without fused multiply-add contraction, so CUDA matches the CPU and torch bit for bit.
MMVITQ_HD float mul_rn(float x, float y) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(x, y);
#else
  return x * y;
#endif
}

// Ternary clamp: NaN stays NaN (fminf/fmaxf would silently replace it).
MMVITQ_HD float clamp_keep_nan(float v, float lo, float hi) {
  v = v < lo ? lo : v;
  return v > hi ? hi : v;
}

// Per-channel quantization parameters in the form the kernels use.
struct QParams {
  float scale, inv_scale, zero_point;
};

MMVITQ_HD QParams make_qparams(float scale, float zero_point, float qmin, float qmax) {
  QParams p;
  p.scale = clamp_scale(scale);
  p.inv_scale = 1.0f / p.scale;
  p.zero_point = round_even(clamp_keep_nan(zero_point, qmin, qmax));
  if (p.zero_point != p.zero_point) p.zero_point = 0.0f;  // NaN zero point -> 0
  return p;
}

// The integer level before clamping to [qmin, qmax]; values far outside are pre-clamped one step
// beyond the range, which keeps them outside it and keeps round_even in its exact range.
MMVITQ_HD float quant_level(float x, const QParams& p, float qmin, float qmax) {
  float v = clamp_keep_nan(mul_rn(x, p.inv_scale), qmin - p.zero_point - 1.0f,
                           qmax - p.zero_point + 1.0f);
  return round_even(v) + p.zero_point;
}

// Fake-quantized value: (clamp(round(x / s) + z, qmin, qmax) - z) * s.
MMVITQ_HD float fake_quant_value(float x, const QParams& p, float qmin, float qmax) {
  float q = clamp_keep_nan(quant_level(x, p, qmin, qmax), qmin, qmax);
  return mul_rn(q - p.zero_point, p.scale);
}

// Gradients of one element (LSQ / LSQ+): the input passes straight through inside the range; the
// scale gets (q - z) - x / s inside and (bound - z) outside; the zero point gets -s outside.
// A NaN input contributes nothing, so a NaN can never reach a scale.
struct ElemGrad {
  float dx, dscale, dzero;
};

MMVITQ_HD ElemGrad fake_quant_grad(float dy, float x, const QParams& p, float qmin, float qmax) {
  const float q = quant_level(x, p, qmin, qmax);
  const bool below = q < qmin, above = q > qmax, inside = q >= qmin && q <= qmax;
  ElemGrad g;
  g.dx = inside ? dy : 0.0f;
  const float ds_in = (q - p.zero_point) - mul_rn(x, p.inv_scale);
  const float ds = inside ? ds_in : below ? qmin - p.zero_point : above ? qmax - p.zero_point : 0.0f;
  g.dscale = mul_rn(dy, ds);
  g.dzero = (below || above) ? -mul_rn(dy, p.scale) : 0.0f;
  return g;
}

MMVITQ_HD float quiet_nan() {
#if defined(__CUDA_ARCH__)
  return __int_as_float(0x7fc00000);
#else
  return std::numeric_limits<float>::quiet_NaN();
#endif
}

// Compact form of a fake-quantized element for training (mmvitq.ops.compact): its level as an offset
// from qmin (uint8) and its rounding residual x/s - round(x/s) as round(250 r) clamped to [-124, 124]
// (int8), or kClipped / kNaN. unpack_element rebuilds an input that has the same level and, inside the
// range, residual within 1/250 (the clamp keeps it off the rounding boundary), so the ordinary kernels
// run on it unchanged; with `quantized` it rebuilds the fake-quantized value itself, bit-exactly.
constexpr float kResidSteps = 250.0f;
constexpr float kResidMax = 124.0f;
constexpr signed char kClipped = -128, kNaN = -127;

// Branch-free (both sides are computed, then selected), so the CPU loops vectorise.
MMVITQ_HD float pack_element(float x, const QParams& p, float qmin, float qmax, unsigned char* level,
                             signed char* resid) {
  const float v = clamp_keep_nan(mul_rn(x, p.inv_scale), qmin - p.zero_point - 1.0f, qmax - p.zero_point + 1.0f);
  const float r = round_even(v);
  const float q = r + p.zero_point;
  const float qc = clamp_keep_nan(q, qmin, qmax);
  const float code = clamp_keep_nan(round_even(mul_rn(v - r, kResidSteps)), -kResidMax, kResidMax);
  const bool nan = x != x;
  *level = static_cast<unsigned char>(nan ? 0.0f : qc - qmin);
  *resid = static_cast<signed char>(nan ? kNaN : (q < qmin || q > qmax) ? kClipped : code);
  return mul_rn(qc - p.zero_point, p.scale);  // NaN stays NaN
}

MMVITQ_HD float unpack_element(unsigned char level, signed char resid, const QParams& p, float qmin, float qmax,
                               bool quantized) {
  const float q = qmin + static_cast<float>(level);
  const float outside = q == qmin ? qmin - p.zero_point - 1.0f : qmax - p.zero_point + 1.0f;
  const float inside = (q - p.zero_point) + static_cast<float>(resid) / kResidSteps;
  const float v = quantized ? q - p.zero_point : resid == kClipped ? outside : inside;
  const float out = mul_rn(v, p.scale);
  return resid == kNaN ? quiet_nan() : out;
}

// Dynamic per-row parameters (per-token): symmetric uses max|x| / qmax, asymmetric spans
// [min(x, 0), max(x, 0)]; non-finite values are ignored, an all-zero row gets kMinScale (clamp_scale).
MMVITQ_HD void token_qparams(float row_min, float row_max, float qmin, float qmax, bool symmetric,
                             float* scale, float* zero_point) {
  float lo = row_min < 0.0f ? row_min : 0.0f;
  float hi = row_max > 0.0f ? row_max : 0.0f;
  if (symmetric) {
    float amax = -lo > hi ? -lo : hi;
    *scale = clamp_scale(amax / qmax);
    *zero_point = 0.0f;
  } else {
    const float s = clamp_scale((hi - lo) / (qmax - qmin));
    *scale = s;
    *zero_point = clamp_keep_nan(qmin - round_even(lo / s), qmin, qmax);
  }
}

MMVITQ_HD bool is_finite(float v) { return v - v == 0.0f; }

}  // namespace mmvitq

#endif  // MMVITQ_FAKE_QUANT_COMMON_H
