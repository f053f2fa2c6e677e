"""The quantization methods, one package each, built on mmvitq's quantizers and quantized models."""
