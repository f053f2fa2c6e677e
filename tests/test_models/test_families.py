"""SwinV2, BEiT and EVA02 from mmpretrain's own configs and from timm (random weights): every Linear and both matmuls
of every attention block are quantized, counted against the float model's own module census; every quantizer is
reached by a forward (it calibrates on one batch); with the quantizers off the model is the float one."""
import copy

import pytest
import timm
import torch
from mmengine.registry import DefaultScope

from mmvitq import quantize_model
from mmvitq.models import QuantLinear, QuantMatMul
from mmvitq.models.rules.mmpretrain import ROUTED as MMPRETRAIN_ATTENTION
from mmvitq.models.rules.timm import ROUTED as TIMM_ATTENTION
from mmvitq.quantizers import BaseQuantizer, calibration

MMPRETRAIN = {
    'swinv2': ('swin_transformer_v2/swinv2-tiny-w8_16xb64_in1k-256px.py', 256),
    'beit': ('beit/benchmarks/beit-base-p16_8xb128-coslr-100e_in1k.py', 224),
    'eva02': ('eva02/eva02-tiny-p14_in1k.py', 224),
}
TIMM = {'eva02': ('eva02_tiny_patch14_224', 224), 'swinv2': ('swinv2_tiny_window8_256', 256)}


def mmpretrain_model(name: str) -> torch.nn.Module:
    from mmengine.hub import get_config
    from mmpretrain.registry import MODELS
    config, _ = MMPRETRAIN[name]
    cfg = get_config(f'mmpretrain::{config}').model
    cfg.backbone.pop('init_cfg', None)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(cfg)


def census(model: torch.nn.Module, attention: tuple) -> tuple[int, int]:
    """(Linears, attention blocks of the families) of the float model."""
    return (sum(isinstance(m, torch.nn.Linear) for m in model.modules()),
            sum(isinstance(m, attention) for m in model.modules()))


def check_fully_quantized(model: torch.nn.Module, attention: tuple, x: torch.Tensor, forward) -> None:
    linears, blocks = census(model, attention)
    assert linears and blocks
    model.eval()
    with torch.no_grad():
        reference = forward(model, x)
    quantized = quantize_model(copy.deepcopy(model), dict(w_bits=4, a_bits=4), strict=True).eval()
    assert sum(isinstance(m, QuantLinear) for m in quantized.modules()) == linears
    assert sum(isinstance(m, QuantMatMul) for m in quantized.modules()) == 2 * blocks
    quantizers = [m for m in quantized.modules() if isinstance(m, BaseQuantizer)]
    with torch.no_grad(), calibration(quantized):
        forward(quantized, x)
    assert all(q.calibrated for q in quantizers), 'a quantizer that no forward reached'
    for q in quantizers:
        q.enabled = False
    with torch.no_grad():
        assert torch.allclose(forward(quantized, x), reference, atol=1e-5, rtol=1e-5)
    for q in quantizers:
        q.enabled = True
    with torch.no_grad():
        assert not torch.allclose(forward(quantized, x), reference, atol=1e-3)


@pytest.mark.parametrize('name', MMPRETRAIN)
def test_mmpretrain_family_is_fully_quantized(name):
    torch.manual_seed(0)
    size = MMPRETRAIN[name][1]
    check_fully_quantized(mmpretrain_model(name), MMPRETRAIN_ATTENTION, torch.randn(1, 3, size, size),
                          lambda m, x: m(x, mode='tensor'))


@pytest.mark.parametrize('name', TIMM)
def test_timm_family_is_fully_quantized(name):
    torch.manual_seed(0)
    arch, size = TIMM[name]
    check_fully_quantized(timm.create_model(arch), TIMM_ATTENTION, torch.randn(1, 3, size, size), lambda m, x: m(x))

