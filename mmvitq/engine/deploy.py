"""Export a Runner's quantized model to ONNX, and test it in onnxruntime (tools/export.py, tools/test.py --backend).

The example input of the export is the first batch of the test loader, preprocessed by the model's data
preprocessor; the exported graph takes preprocessed images (any batch size, the loader's image size).
"""
import copy
import os.path as osp
from typing import Optional

import torch
from mmengine import dist
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS
from torch import nn

from ..utils import write_json
from .dist import unwrap


def example_inputs(runner) -> torch.Tensor:
    """The first batch of the test loader as the model's preprocessed inputs."""
    model = unwrap(runner.model)
    return model.data_preprocessor(next(iter(runner.test_dataloader)), False)['inputs']


def deployable(runner, fold: bool = False) -> tuple[nn.Module, Optional[list], list[str]]:
    """(the module to export: the part of the runner's model that runs at test time (see mmvitq.deploy.targets),
    a folded copy with `fold` (see mmvitq.deploy.fold); its output names; the linears whose inputs were folded)."""
    from ..deploy.fold import fold_channel_inputs
    from ..deploy.targets import deploy_target, export_module
    target, folded = deploy_target(unwrap(runner.model)).eval(), []
    if fold:
        target = copy.deepcopy(target)
        folded = fold_channel_inputs(target)
    module, output_names = export_module(target)
    return module, output_names, folded


def export_runner_model(runner, path: str, fold: bool = False) -> tuple[dict, nn.Module]:
    """Export the runner's model (see `deployable`) to `path`, its example input the first test batch; returns a
    report (its quantized points, the folded linears), also written next to it as `<path without .onnx>_points.json`,
    and the exported PyTorch module."""
    from ..deploy import export_onnx
    from ..deploy.modules import check_exportable
    module, output_names, folded = deployable(runner, fold)
    check_exportable(module)  # before reading any data
    inputs = example_inputs(runner)
    points = export_onnx(module, (inputs, ), path, ['input'], output_names)
    for point in points:  # paths in the model that runs at test time, as in its checkpoint and qconfig
        point['path'] = point['path'].removeprefix('model.')
    report = dict(onnx=path, input_shape=list(inputs.shape), folded=folded, points=points)
    write_json(osp.splitext(path)[0] + '_points.json', report, indent=1)
    return report, module


def verify(runner, module: nn.Module, path: str, num_images: int) -> dict:
    """`module` (PyTorch) against onnxruntime running `path` (without and with graph optimisations) on the first
    `num_images` test images: {'no optimisations' / 'optimised': dict(images, max_abs_diff[, argmax_agreement (%)
    for a classifier])}."""
    from ..deploy.runtime import OrtModule
    model = unwrap(runner.model)
    runtimes = {'no optimisations': OrtModule(path, optimize=False), 'optimised': OrtModule(path, optimize=True)}
    results = {name: dict(images=0, max_abs_diff=0.0, agree=0) for name in runtimes}
    seen = 0
    with torch.no_grad():
        for batch in runner.test_dataloader:
            inputs = model.data_preprocessor(batch, False)['inputs'][:num_images - seen]
            reference = module(inputs)
            reference = reference if isinstance(reference, tuple) else (reference, )
            for name, runtime in runtimes.items():
                outputs, result = runtime(inputs), results[name]
                diff = max(float((a - b).abs().max()) for a, b in zip(reference, outputs))
                result['max_abs_diff'] = max(result['max_abs_diff'], diff)
                result['agree'] += int((reference[0].argmax(-1) == outputs[0].argmax(-1)).sum())
                result['images'] += len(inputs)
            seen += len(inputs)
            if seen >= num_images:
                break
    classifier = reference[0].dim() == 2
    for result in results.values():
        agree = result.pop('agree')
        if classifier:
            result['argmax_agreement'] = 100.0 * agree / max(result['images'], 1)
    return results


def summarize_kernels(kernels: dict) -> str:
    """One line: how many matmuls/convs run on integer kernels, on packed low-bit weights, and which kernels."""
    counts = ', '.join(f'{k} x{n}' for k, n in sorted(kernels['counts'].items()))
    return (f"{kernels['integer']}/{kernels['total']} matmuls/convs on integer kernels, {kernels['nbits']} on packed "
            f"low-bit weights with float inputs ({counts})")


@HOOKS.register_module()
class OnnxRuntimeHook(Hook):
    """Test in onnxruntime: when the test loop starts (after any calibration the loop does), export the model's
    deployable part to `out` (default: <work_dir>/<bits tag>.onnx) and run the test step on it instead of PyTorch.

    Args:
        optimize: onnxruntime's graph optimisations (its integer kernels); False runs the QDQ graph as written.
        fold: fold per-channel post-LayerNorm inputs first (mmvitq.deploy.fold), so those linears run on integer
            kernels; the folded model is what is tested.
        out: the ONNX file to write.
    """

    priority = 'VERY_LOW'

    def __init__(self, optimize: bool = True, fold: bool = False, out: Optional[str] = None) -> None:
        for name, value in (('optimize', optimize), ('fold', fold)):
            if not isinstance(value, bool):
                raise ValueError(f'custom_hooks: OnnxRuntimeHook.{name} must be True or False, got {value!r}')
        self.optimize, self.fold, self.out, self._swap = optimize, fold, out, None

    def before_test(self, runner) -> None:
        from ..deploy.runtime import kernel_report
        from ..deploy.targets import deploy_target, onnxruntime_in_place
        from ..models import bits_tag
        target = deploy_target(unwrap(runner.model))
        path = self.out or osp.join(runner.work_dir, f'{bits_tag(target)}.onnx')
        if dist.is_main_process():
            report, _ = export_runner_model(runner, path, self.fold)
            folded = f'; {len(report["folded"])} per-channel inputs folded' if self.fold else ''
            print_log(f'OnnxRuntimeHook: exported {len(report["points"])} quantized points to {path}{folded}',
                      logger='current')
            if self.optimize:
                print_log(f'OnnxRuntimeHook: {summarize_kernels(kernel_report(path))}', logger='current')
        dist.barrier()
        self._swap = onnxruntime_in_place(target, path, self.optimize)
        self._swap.__enter__()
        print_log(f'OnnxRuntimeHook: testing in onnxruntime (graph optimisations {"on" if self.optimize else "off"})',
                  logger='current')

    def after_test(self, runner) -> None:
        if self._swap is not None:
            self._swap.__exit__(None, None, None)
            self._swap = None
