"""Every method's checkpoint type exports to ONNX (QDQ, opset 21) and onnxruntime reproduces the PyTorch fake-quant
model: 100% argmax agreement on 256 Fashion-MNIST test images, logits within four steps of the last quantized
activation (a code that flips between the two, from their float rounding of x / s vs x * (1 / s) or of the ops
before a quantizer, moves a logit by about one step of the quantizer it flips in).

The checkpoints are made in-process from the committed float ViT by each method's own test loop, calibrated on 64
training images; VVTQ's per-head LSQ scales by its QuantizerInitHook on 64 training images (no training).
"""
import os

import onnx
import pytest
import torch
from mmengine.config import Config

from mmvitq.deploy import ExportError
from mmvitq.deploy.runtime import kernel_report
from mmvitq.engine import Runner
from mmvitq.engine.deploy import export_runner_model, verify
from mmvitq.engine.dist import unwrap
from mmvitq.engine.hooks import QuantizerInitHook

from test_tools.test_train_test import ROOT, data_root  # noqa: F401  (data_root is a fixture)

FLOAT = os.path.join(ROOT, 'checkpoints', 'deit-tiny-p4_fashion-mnist-c4de163e.pth')
PTQ = 'configs/ptq/ptq-{}_deit-tiny-p4_4w4a_fashion-mnist.py'
W8A8 = {'model.backbone.qconfig.w_bits': 8, 'model.backbone.qconfig.a_bits': 8}
CASES = {
    'ptq-minmax-w8a8': (PTQ.format('minmax'), W8A8),
    'ptq-minmax-w4a4': (PTQ.format('minmax'), {}),
    'ptq-percentile-w4a4': (PTQ.format('percentile'), {}),
    'ptq-mse-w4a4': (PTQ.format('mse'), {'test_cfg.num_images': 16}),
    'ptq-minmax-channel-w4a4': (PTQ.format('minmax-channel'), {}),
    'repq-w4a4': (PTQ.format('repq'), {}),
    'lampq-4bit': ('configs/lampq/lampq_deit-tiny-p4_4bit_fashion-mnist.py',
                   {'test_cfg.search_images': 32, 'test_cfg.rounds': 1, 'test_cfg.bits': (2, 3, 4, 8)}),
    'gplq-w4a4': ('configs/gplq/gplq_deit-tiny-p4_4w4a_fashion-mnist.py', {'test_cfg.calib_images': 64}),
    'vvtq-w4a4': ('configs/vvtq/vvtq_deit-tiny-p4_4w4a_fashion-mnist.py', {}),
}
TEST_IMAGES = 256


def calibrated_runner(config: str, options: dict, data_root: str, work_dir) -> Runner:  # noqa: F811
    """The config's test loop run on the float checkpoint (calibrating it) over the first 256 test images."""
    cfg = Config.fromfile(os.path.join(ROOT, config))
    overrides = {f'{split}_dataloader.dataset.data_root': data_root for split in ('train', 'val', 'test')}
    overrides.update({'test_dataloader.dataset.indices': TEST_IMAGES, 'test_dataloader.batch_size': 128,
                      'train_dataloader.batch_size': 32, 'test_cfg.num_images': 64})
    if 'vvtq' in config:  # its quantizers are initialised from the float model's plain training images (no bank)
        cfg.train_dataloader = Config.fromfile(os.path.join(ROOT, PTQ.format('minmax'))).train_dataloader
    if 'vvtq' in config or 'gplq' in config or config.startswith('configs/fp/'):
        overrides.pop('test_cfg.num_images')
    cfg.merge_from_dict({**overrides, **options})
    cfg.work_dir, cfg.load_from = str(work_dir), FLOAT
    os.chdir(ROOT)
    runner = Runner.from_cfg(cfg)
    if 'vvtq' in config:
        unwrap(runner.model).init_weights()  # the float checkpoint, as training would start
        QuantizerInitHook(num_images=64).before_train(runner)
    runner.metrics = runner.test()
    return runner


def last_activation_step(points: list, model: torch.nn.Module) -> float:
    """The scale of the last static activation quantizer in model order (per-channel: its largest)."""
    last = [p for p in points if p['kind'] == 'activation' and p['granularity'] != 'token'][-1]
    return float(model.get_submodule(last['path']).scale.max())


@pytest.mark.parametrize('case', CASES)
def test_onnxruntime_reproduces_the_fake_quant_model(case, data_root, tmp_path):  # noqa: F811
    config, options = CASES[case]
    runner = calibrated_runner(config, options, data_root, tmp_path)
    path = str(tmp_path / 'model.onnx')
    report, module = export_runner_model(runner, path)
    graph = onnx.load(path).graph
    assert {n.domain for n in graph.node} <= {''} and not any('mmvitq' in n.op_type for n in graph.node)
    model = unwrap(runner.model)
    target = getattr(model, 'student', model)
    tolerance = 4 * last_activation_step(report['points'], target)
    results = verify(runner, module, path, TEST_IMAGES)
    for name, result in results.items():
        assert result['images'] == TEST_IMAGES
        assert result['argmax_agreement'] == 100.0, (name, result)
        assert result['max_abs_diff'] <= tolerance, (name, result, tolerance)
    types = {p['onnx_type'] for p in report['points']}
    assert ('int4' in types or 'uint4' in types) == (case != 'ptq-minmax-w8a8')
    if case == 'gplq-w4a4':  # the QwT compensations are in the graph: without them the logits differ
        assert len(target.backbone.layers) == 6 and len(model.compensations) == 6


def test_w8a8_runs_on_integer_kernels_and_w4a4_stays_simulated(data_root, tmp_path):  # noqa: F811
    kernels = {}
    for bits, options in (('w8a8', W8A8), ('w4a4', {})):
        runner = calibrated_runner(PTQ.format('minmax'), options, data_root, tmp_path / bits)
        export_runner_model(runner, str(tmp_path / f'{bits}.onnx'))
        kernels[bits] = kernel_report(str(tmp_path / f'{bits}.onnx'))
    linears = {k: v for k, v in kernels['w8a8']['layers'].items() if '.layers.' in k}
    assert len(linears) == 24 and set(linears.values()) == {'MatMulIntegerToFloat'}
    assert kernels['w8a8']['integer'] >= 24 + 12  # and the 12 attention matmuls
    assert kernels['w4a4']['integer'] == 0


def test_bad_models_fail_before_any_file_is_written(data_root, tmp_path):  # noqa: F811
    runner = calibrated_runner('configs/fp/deit-tiny-p4_fashion-mnist.py', {}, data_root, tmp_path / 'fp')
    with pytest.raises(ExportError, match='has no quantizer: a float model'):
        export_runner_model(runner, str(tmp_path / 'float.onnx'))
    cfg = Config.fromfile(os.path.join(ROOT, PTQ.format('minmax')))
    cfg.merge_from_dict({f'{split}_dataloader.dataset.data_root': data_root for split in ('train', 'val', 'test')})
    cfg.work_dir, cfg.load_from = str(tmp_path / 'uncalibrated'), FLOAT
    runner = Runner.from_cfg(cfg)
    runner.load_or_resume()
    first = r'backbone\.patch_embed\.projection\.input_quant \(and 73 more\): .* is not calibrated'
    with pytest.raises(ExportError, match=first):
        export_runner_model(runner, str(tmp_path / 'uncalibrated.onnx'))
    assert not [p for p in os.listdir(tmp_path) if p.endswith('.onnx')]


def test_fold_puts_the_linears_after_each_layernorm_on_integer_kernels(data_root, tmp_path):  # noqa: F811
    """Per-channel inputs of qkv and fc1 folded into their LayerNorm (RepQ-ViT's reparameterisation): those 12
    linears run on MatMulIntegerToFloat, onnxruntime reproduces the folded model, and the folded model (weights
    recalibrated) predicts as the checkpoint does on all but a few images."""
    runner = calibrated_runner(PTQ.format('minmax-channel'), W8A8, data_root, tmp_path)
    path = str(tmp_path / 'folded.onnx')
    report, folded = export_runner_model(runner, path, fold=True)
    assert len(report['folded']) == 12 and all(p.endswith(('attn.qkv', 'ffn.layers.0.0')) for p in report['folded'])
    layers = kernel_report(path)['layers']
    assert {layers[p.removeprefix('model.')] for p in report['folded']} == {'MatMulIntegerToFloat'}
    assert all(layers[p] != 'MatMulIntegerToFloat' for p in layers if p.endswith(('attn.proj', 'ffn.layers.1')))
    tolerance = 4 * last_activation_step(report['points'], folded.model)
    for name, result in verify(runner, folded, path, TEST_IMAGES).items():
        assert result['argmax_agreement'] == 100.0 and result['max_abs_diff'] <= tolerance, (name, result)
    unfolded = unwrap(runner.model)
    with torch.no_grad():
        images = unfolded.data_preprocessor(next(iter(runner.test_dataloader)), False)['inputs']
        same = (folded(images).argmax(1) == unfolded(images, mode='tensor').argmax(1)).float().mean()
    assert same >= 0.98
