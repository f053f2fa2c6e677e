// The CPU fake-quant kernels compiled for AVX2 (8 floats a vector); fake_quant_cpu.cpp picks them at
// run time when the processor has AVX2. No FMA: results stay bit-identical to the baseline build.
#include <cstdint>

#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx2")
#include "fake_quant_kernels.h"

namespace mmvitq {
KernelTable<float> avx2_float_kernels() { return make_kernels<float>(); }
}  // namespace mmvitq
#pragma GCC pop_options
#endif
