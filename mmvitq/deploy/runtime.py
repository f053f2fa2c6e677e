"""Run exported models in onnxruntime (CPU) and say which layers run on integer kernels.

`session()` builds an InferenceSession with onnxruntime's graph optimisations (its QDQ fusions turn
DequantizeLinear -> MatMul pairs into MatMulIntegerToFloat / QLinearMatMul / MatMulNBits), or with none
(`optimize=False`: every QDQ pair runs as written, the reference for parity). One fusion is turned off:
MatMulAddFusion rewrites MatMul + Add into Gemm before the QDQ fusions run, which leaves every 8-bit linear
with a bias on float kernels (measured on onnxruntime 1.32: 4x slower per linear). A 4-bit weight whose input is
float (weight-only quantization, or a simulated per-axis activation) becomes MatMulNBits; its `accuracy_level`
0 (the default here) computes in float as the graph says, 4 quantizes the input to int8 on the fly (faster,
not the exported model's numbers).
"""
import os.path as osp
import tempfile
from collections import Counter
from typing import Optional

import numpy as np
import onnx
import torch
from torch import Tensor, nn

#: Fused operators that multiply integers (8-bit inputs and weights).
INTEGER_KERNELS = ('MatMulIntegerToFloat', 'QLinearMatMul', 'MatMulInteger', 'QLinearConv', 'ConvInteger', 'QGemm',
                   'DynamicQuantizeMatMul', 'QAttention')
#: Fused operators with packed low-bit weights and float (or, by accuracy level, int8) inputs.
NBITS_KERNELS = ('MatMulNBits', )
COMPUTE = ('MatMul', 'Gemm', 'Conv') + INTEGER_KERNELS + NBITS_KERNELS
DISABLED_OPTIMIZERS = ('MatMulAddFusion', )


def session(path: str, optimize: bool = True, threads: Optional[int] = None, optimized_path: Optional[str] = None,
            nbits_accuracy_level: int = 0) -> 'onnxruntime.InferenceSession':  # noqa: F821
    """An onnxruntime CPU session of the model at `path` (see the module docstring); `threads`: intra-op threads
    (default: onnxruntime's); `optimized_path`: where to write the optimised graph; `nbits_accuracy_level`:
    MatMulNBits' accuracy level (0: float, 4: int8 inputs)."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.add_session_config_entry('session.qdq_matmulnbits_accuracy_level', str(nbits_accuracy_level))
    options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    if threads:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3
    if optimized_path:
        options.optimized_model_filepath = optimized_path
    return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'],
                                disabled_optimizers=list(DISABLED_OPTIMIZERS) if optimize else [])


def _weight_layer(node: onnx.NodeProto, producers: dict) -> Optional[str]:
    """The layer whose stored weight a compute node reads: its scale keeps the name `<layer>.weight.scale` through
    the exporter and onnxruntime's fusions (directly, or on the DequantizeLinear that feeds the node)."""
    names = list(node.input)
    for name in node.input:
        if name in producers and producers[name].op_type == 'DequantizeLinear':
            names += producers[name].input
    for name in names:
        if '.weight.scale' in name:
            return name[:name.index('.weight.scale')].removeprefix('model.')
    return None


def kernel_report(path: str, threads: Optional[int] = None) -> dict:
    """Which kernel onnxruntime runs for each matmul/conv of the model at `path`, after its optimisations:
    `layers` ({weight layer: kernel}), `attention` (kernels of the activation-activation matmuls, in order),
    `counts` ({kernel: number of nodes}), `integer` (how many run on integer kernels), `nbits` (how many on
    packed low-bit weights) and `total`."""
    with tempfile.TemporaryDirectory() as tmp:
        optimized = osp.join(tmp, 'optimized.onnx')
        session(path, True, threads, optimized)
        graph = onnx.load(optimized).graph
    producers = {out: node for node in graph.node for out in node.output}
    layers, attention = {}, []
    for node in graph.node:
        if node.op_type not in COMPUTE:
            continue
        layer = _weight_layer(node, producers)
        if layer is None:
            attention.append(node.op_type)
        else:
            layers[layer] = node.op_type
    kernels = list(layers.values()) + attention
    return dict(layers=layers, attention=attention, counts=dict(Counter(kernels)),
                integer=sum(k in INTEGER_KERNELS for k in kernels), nbits=sum(k in NBITS_KERNELS for k in kernels),
                total=len(kernels))


class OrtModule(nn.Module):
    """An onnxruntime session as a module: inputs go to the graph's inputs in order, outputs come back as a tuple of
    tensors on the input's device."""

    def __init__(self, path: str, optimize: bool = True, threads: Optional[int] = None) -> None:
        super().__init__()
        self.path = path
        self.session = session(path, optimize, threads)
        self.input_names = [i.name for i in self.session.get_inputs()]

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        feed = {name: x.detach().float().cpu().numpy() for name, x in zip(self.input_names, inputs)}
        outputs = self.session.run(None, feed)
        return tuple(torch.from_numpy(np.asarray(o)).to(inputs[0].device) for o in outputs)


def cpu_features() -> list[str]:
    """The instruction-set extensions of this CPU that onnxruntime's MLAS kernels pick from (Linux)."""
    wanted = ('avx2', 'fma', 'avx512f', 'avx512bw', 'avx512_vnni', 'avx_vnni', 'avx512_bf16', 'amx_int8', 'amx_bf16',
              'asimd', 'asimddp', 'i8mm')
    try:
        with open('/proc/cpuinfo') as f:
            flags = next((line.split(':', 1)[1].split() for line in f if line.startswith(('flags', 'Features'))), [])
    except OSError:
        return []
    return [flag for flag in wanted if flag in flags]
