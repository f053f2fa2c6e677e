"""Export a quantized model to ONNX (opset 21, QDQ format) through torch.onnx's exporter.

The model is first made exportable (`mmvitq.deploy.modules`), then exported by `torch.onnx.export(dynamo=True)`
with our ops' translations; 4-bit casts of constants are folded into int4/uint4 initializers (the exporter's
optimiser folds the small ones, `_fold_constant_casts` the rest), so codes are stored packed, two per byte.
The file is written through a temporary name: it is complete or absent.
"""
import io
import logging
from collections.abc import Sequence
from contextlib import redirect_stdout
from typing import Optional

import onnx
import torch
from onnx import TensorProto, numpy_helper
from torch import nn

from ..utils import atomic_path
from .modules import exportable
from .ops import _translations

OPSET = 21


def _fold_constant_casts(model: onnx.ModelProto) -> int:
    """Replace Cast(integer initializer, to=INT4/UINT4) by a 4-bit initializer (the exporter's optimiser folds only
    small constants); a constant read by that Cast alone keeps its name. Returns how many were folded."""
    import ml_dtypes
    targets = {TensorProto.INT4: ml_dtypes.int4, TensorProto.UINT4: ml_dtypes.uint4}
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    uses: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    renamed, folded = {}, []
    for node in graph.node:
        to = next((a.i for a in node.attribute if a.name == 'to'), None)
        source = node.input[0] if node.input else None
        if node.op_type != 'Cast' or to not in targets or source not in initializers:
            continue
        values = numpy_helper.to_array(initializers[source]).astype(targets[to])
        name = source if uses[source] == 1 else node.output[0]
        if name == source:
            graph.initializer.remove(initializers.pop(source))
        graph.initializer.append(numpy_helper.from_array(values, name))
        renamed[node.output[0]] = name
        folded.append(node)
    for node in folded:
        graph.node.remove(node)
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in renamed:
                node.input[i] = renamed[name]
    return len(folded)


def _check_graph(model: onnx.ModelProto) -> None:
    """Only standard ops, and every 4-bit cast of a constant folded (the codes stored as int4/uint4)."""
    domains = {node.domain for node in model.graph.node} - {'', 'ai.onnx'}
    if domains or model.functions:
        raise RuntimeError(f'the exported graph kept non-standard ops ({sorted(domains)}); every mmvitq op must be '
                           'translated (mmvitq.deploy.ops)')
    four = (TensorProto.INT4, TensorProto.UINT4)
    if any(node.op_type == 'Cast' and any(a.name == 'to' and a.i in four for a in node.attribute)
           for node in model.graph.node):
        raise RuntimeError('the exported graph casts to 4 bits at run time; expected folded int4/uint4 constants')


def _output_names(outputs: object) -> list[str]:
    return [f'output_{i}' for i in range(len(outputs))] if isinstance(outputs, (tuple, list)) else ['output']


def export_onnx(model: nn.Module, args: tuple, path: str, input_names: Sequence[str] = ('input', ),
                output_names: Optional[Sequence[str]] = None, dynamic_batch: bool = True) -> list[dict]:
    """Export `model(*args)` to `path` (the first dim of every input dynamic with `dynamic_batch`); returns the
    quantized points (see `mmvitq.deploy.modules.exportable`). Outputs are named `output_names`, else `output` or
    `output_<i>` for a tuple. Nothing is written when the model cannot be exported."""
    outputs = []
    module, points = exportable(model, lambda m: outputs.append(m(*args)))
    output_names = list(output_names or _output_names(outputs[0]))
    dynamic = tuple({0: torch.export.Dim('batch')} if dynamic_batch else None for _ in args)
    log = io.StringIO()
    level = logging.getLogger('torch.onnx').level
    logging.getLogger('torch.onnx').setLevel(logging.ERROR)
    try:
        with torch.no_grad(), redirect_stdout(log):
            program = torch.onnx.export(module, args, dynamo=True, opset_version=OPSET,
                                        custom_translation_table=_translations(), dynamic_shapes=dynamic,
                                        input_names=list(input_names), output_names=output_names,
                                        external_data=False, verbose=False)
    except Exception as e:
        raise RuntimeError(f'torch.onnx.export failed:\n{log.getvalue()[-2000:]}') from e
    finally:
        logging.getLogger('torch.onnx').setLevel(level)
    proto = program.model_proto
    _fold_constant_casts(proto)
    _check_graph(proto)
    onnx.checker.check_model(proto)
    with atomic_path(path) as tmp:
        onnx.save(proto, tmp)
    return points
