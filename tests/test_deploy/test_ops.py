"""Each export rule against an independent reference: onnxruntime (no graph optimisations) running the exported
quantizer or layer gives torch's own fake quantization (torch.fake_quantize_per_*_affine), the log2 levels
computed by brute force, or F.linear / F.conv2d of the fake-quantized weight; packing round-trips codes."""
import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmvitq.deploy import ExportError, export_onnx
from mmvitq.deploy.pack import container_bits, pack_codes, unpack_codes
from mmvitq.deploy.runtime import OrtModule
from mmvitq.models import QuantConv2d, QuantLinear
from mmvitq.quantizers import BaseQuantizer, Log2Quantizer, LSQQuantizer, UniformQuantizer, calibration


class Wrap(nn.Module):

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x):
        return self.module(x)


def run_onnx(module: nn.Module, x: torch.Tensor, tmp_path, calib: torch.Tensor = None) -> tuple[np.ndarray, list]:
    """Calibrate `module` on `calib` (default x), export it, run x through onnxruntime without optimisations."""
    module = Wrap(module).eval()
    with torch.no_grad(), calibration(module):
        module(x if calib is None else calib)
    path = str(tmp_path / 'op.onnx')
    points = export_onnx(module, (x, ), path)
    return OrtModule(path, optimize=False)(x)[0].numpy(), points


def torch_reference(q: BaseQuantizer, x: torch.Tensor) -> torch.Tensor:
    """torch's own fake quantization with the quantizer's scale and (rounded) zero point."""
    zero, scale = q.zero_point.detach().round().clamp(q.quant_min, q.quant_max).int(), q.scale.detach()
    if q.granularity == 'tensor':
        return torch.fake_quantize_per_tensor_affine(x, float(scale), int(zero), q.quant_min, q.quant_max)
    scale = scale.repeat_interleave(x.shape[q.ch_axis] // scale.numel())
    zero = zero.repeat_interleave(x.shape[q.ch_axis] // zero.numel())
    return torch.fake_quantize_per_channel_affine(x, scale, zero, q.ch_axis % x.dim(), q.quant_min, q.quant_max)


def assert_close_in_steps(got: np.ndarray, want: torch.Tensor, step: torch.Tensor) -> None:
    """Equal except where x / s and x * (1 / s) round a tie apart: a few elements, one step each."""
    diff = np.abs(got - want.numpy())
    steps = diff / np.broadcast_to(step.numpy(), diff.shape)
    assert (steps <= 1 + 1e-4).all(), float(steps.max())
    assert (diff > 1e-6).mean() <= 1e-3


CASES = {
    'tensor-8-asym': dict(bits=8, symmetric=False),
    'tensor-4-asym': dict(bits=4, symmetric=False),
    'tensor-4-sym': dict(bits=4, symmetric=True),
    'tensor-3-sym': dict(bits=3, symmetric=True),
    'tensor-2-asym': dict(bits=2, symmetric=False),
    'tensor-6-sym': dict(bits=6, symmetric=True),
    'channel-4-asym': dict(bits=4, symmetric=False, granularity='channel', ch_axis=-1, num_channels=16),
    'channel-3-asym-axis1': dict(bits=3, symmetric=False, granularity='channel', ch_axis=1, num_channels=5),
    'head-8-sym': dict(bits=8, symmetric=True, granularity='head', ch_axis=-1, num_heads=4),
}


@pytest.mark.parametrize('case', CASES)
@pytest.mark.parametrize('cls', (UniformQuantizer, LSQQuantizer))
def test_static_quantizer_matches_torch_fake_quant(cls, case, tmp_path):
    torch.manual_seed(0)
    kwargs = dict(CASES[case])
    if cls is LSQQuantizer:
        kwargs['init'] = 'minmax'
    quantizer = cls(**kwargs)
    x = torch.randn(3, 5, 16) * 2 + 0.5
    got, points = run_onnx(quantizer, x, tmp_path, calib=torch.randn(3, 5, 16) * 2)
    want = torch_reference(quantizer, x)
    step = quantizer.scale.detach()
    if quantizer.granularity != 'tensor':
        view = [1] * 3
        view[quantizer.ch_axis] = -1
        step = step.repeat_interleave(x.shape[quantizer.ch_axis] // step.numel()).reshape(view)
    assert_close_in_steps(got, want.detach(), step)
    assert len(points) == 1 and points[0]['bits'] == kwargs['bits']
    graph = onnx.load(str(tmp_path / 'op.onnx')).graph
    types = {onnx.TensorProto.DataType.Name(i.data_type) for i in graph.initializer}
    four = kwargs['bits'] == 4
    assert ('INT4' in types or 'UINT4' in types) == four  # 4-bit zero points are 4-bit; 2-3 bits clip inside 8


@pytest.mark.parametrize('base', ('2', 'sqrt2'))
def test_log2_quantizer_matches_its_levels(base, tmp_path):
    torch.manual_seed(0)
    quantizer = Log2Quantizer(bits=4, base=base)
    x = torch.rand(2, 4, 8, 8).softmax(-1)
    got, _ = run_onnx(quantizer, x, tmp_path)
    per_octave = 1 if base == '2' else 2
    levels = torch.tensor([float(quantizer.scale) * 2.0**(-k / per_octave) for k in range(quantizer.quant_max)] + [0.])
    # brute force: the level nearest in log space, i.e. code round(-log2(x / s) * per_octave), capped to 0 past the last
    codes = torch.round(-torch.log2(x / quantizer.scale) * per_octave).clamp_min(0)
    want = torch.where(codes < quantizer.quant_max, levels[codes.clamp_max(quantizer.quant_max).long()], 0.0)
    mismatched = np.abs(got - want.numpy()) > 1e-6
    assert mismatched.mean() <= 1e-3  # log in float: only values at a rounding boundary may differ


@pytest.mark.parametrize('symmetric', (True, False))
def test_per_token_quantizer_matches_row_wise_torch_fake_quant(symmetric, tmp_path):
    torch.manual_seed(0)
    quantizer = UniformQuantizer(bits=4, symmetric=symmetric, granularity='token')
    x = torch.randn(2, 6, 16) * torch.linspace(0.1, 3, 6).reshape(1, 6, 1)
    got, points = run_onnx(quantizer, x, tmp_path)
    rows = x.reshape(-1, 16)
    lo, hi = rows.amin(1).clamp_max(0), rows.amax(1).clamp_min(0)
    want, steps = [], []
    for row, low, high in zip(rows, lo, hi):
        if symmetric:
            scale, zero = float(torch.maximum(-low, high)) / quantizer.quant_max, 0
        else:
            scale = float(high - low) / (quantizer.quant_max - quantizer.quant_min)
            zero = quantizer.quant_min - round(float(low) / scale)
            zero = int(min(max(zero, quantizer.quant_min), quantizer.quant_max))
        want.append(torch.fake_quantize_per_tensor_affine(row, scale, zero, quantizer.quant_min, quantizer.quant_max))
        steps.append(scale)
    want = torch.stack(want).reshape_as(x)
    assert_close_in_steps(got, want, torch.tensor(steps).reshape(2, 6, 1))
    assert points[0]['granularity'] == 'token'


@pytest.mark.parametrize('bits', (2, 3, 4, 8))
def test_quantized_linear_and_conv_store_codes_and_match_float_math(bits, tmp_path):
    torch.manual_seed(0)
    weight = dict(type='UniformQuantizer', bits=bits, symmetric=True, granularity='channel', ch_axis=0)
    linear = QuantLinear(16, 8, input_quant=UniformQuantizer(bits=8, symmetric=False),
                         weight_quant=UniformQuantizer(**{k: v for k, v in weight.items() if k != 'type'},
                                                       num_channels=8))
    x = torch.randn(4, 16)
    got, points = run_onnx(linear, x, tmp_path)
    want = F.linear(linear.input_quant(x), linear.weight_quant(linear.weight), linear.bias).detach()
    assert np.abs(got - want.numpy()).max() <= 1e-5 + float(linear.input_quant.scale) * 16 * float(
        linear.weight.abs().max())  # at most one input code apart
    graph = onnx.load(str(tmp_path / 'op.onnx')).graph
    initializers = {i.name: i for i in graph.initializer}
    dq = [n for n in graph.node if n.op_type == 'DequantizeLinear' and n.input[1] == 'module.weight.scale']
    codes = initializers[dq[0].input[0]]
    assert len(dq) == 1 and onnx.TensorProto.DataType.Name(codes.data_type) == ('INT4' if bits <= 4 else 'INT8')
    assert len(codes.raw_data) == 16 * 8 // (2 if bits <= 4 else 1)  # two 4-bit codes per byte
    assert [p['kind'] for p in points] == ['activation', 'weight']

    conv = QuantConv2d(3, 4, 2, stride=2, input_quant=None,
                       weight_quant=UniformQuantizer(bits=bits, granularity='channel', ch_axis=0, num_channels=4))
    image = torch.randn(2, 3, 8, 8)
    got, _ = run_onnx(conv, image, tmp_path)
    want = F.conv2d(image, conv.weight_quant(conv.weight), conv.bias, stride=2).detach()
    assert np.abs(got - want.numpy()).max() <= 1e-5


def test_a_quantizer_without_an_export_rule_is_named(tmp_path):

    class Custom(BaseQuantizer):

        def make_observer(self):
            return UniformQuantizer().make_observer()

    model = nn.Sequential(nn.Linear(4, 4), Custom())
    with pytest.raises(ExportError, match=r'^module\.1: no export rule for Custom; register one'):
        run_onnx(model, torch.randn(2, 4), tmp_path)
    assert not (tmp_path / 'op.onnx').exists()


@pytest.mark.parametrize('bits', range(2, 9))
def test_codes_pack_and_unpack_exactly(bits):
    width = container_bits(bits)
    quant_min = -(1 << (bits - 1))
    codes = torch.randint(quant_min, -quant_min, (1001, ))
    packed = pack_codes(codes, quant_min, width)
    assert packed.dtype == torch.uint8 and len(packed) == -(-1001 * width // 8)
    assert torch.equal(unpack_codes(packed, quant_min, width, 1001), codes.to(torch.int16))
    # the layout by hand: codes (offset by quant_min) low bits first within each byte
    first = [int(c) - quant_min for c in codes[:8 // width]]
    assert int(packed[0]) == sum(v << (width * i) for i, v in enumerate(first))
