"""RepQ-ViT's reparameterisation against its two references: the float model (the fold changes no float
output) and per-channel quantization of the post-LayerNorm inputs (the folded per-tensor quantizers give
the same result)."""
import copy

import pytest
import torch

from mmvitq import quantize_model
from mmvitq.methods.repq import fold_channel_qparams, observe_post_norm_channels
from mmvitq.models.rules import norm_consumers
from mmvitq.quantizers import BaseQuantizer, calibration

from .conftest import Task, mmpretrain_forward, timm_forward

FAMILIES = {'deit_tiny': mmpretrain_forward, 'swin_small': mmpretrain_forward, 'timm_vit': timm_forward,
            'timm_swin': timm_forward}
POST_NORM = ('linear_input', )
PER_CHANNEL = dict(act=dict(granularity='channel'))


@pytest.mark.parametrize('family', FAMILIES)
def test_every_block_has_two_post_norm_pairs(family, request):
    model = request.getfixturevalue(family)
    pairs = norm_consumers(model)
    blocks = {'deit_tiny': 12, 'swin_small': 4, 'timm_vit': 12, 'timm_swin': 4}[family]
    assert len(pairs) == 2 * blocks
    for norm, linears in pairs.items():
        assert isinstance(model.get_submodule(norm), torch.nn.LayerNorm)
        assert all(model.get_submodule(p).in_features == model.get_submodule(norm).normalized_shape[0]
                   for p in linears)


@pytest.mark.parametrize('symmetric', [False, True])
def test_fold_keeps_the_float_function(deit_tiny, symmetric):
    q = quantize_model(copy.deepcopy(deit_tiny), dict(points=POST_NORM, act=dict(symmetric=symmetric)))
    g = torch.Generator().manual_seed(0)
    for norm, linears in norm_consumers(q).items():
        channels = q.get_submodule(norm).normalized_shape[0]
        scale = torch.rand(channels, generator=g) * 0.1 + 1e-3
        zero_point = torch.zeros(channels) if symmetric else torch.randint(0, 256, (channels, ), generator=g).float()
        fold_channel_qparams(q, norm, linears, scale, zero_point)
    for m in q.modules():
        if isinstance(m, BaseQuantizer):
            m.enabled = False
    x, _ = Task(seed=3).batch(16)
    with torch.no_grad():
        torch.testing.assert_close(mmpretrain_forward(q, x), mmpretrain_forward(deit_tiny, x), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize('family', FAMILIES)
@pytest.mark.parametrize('bits', [4, 8])
def test_folded_per_tensor_equals_per_channel_quantization(family, bits, request):
    model, forward = request.getfixturevalue(family), FAMILIES[family]
    calib, _ = Task(seed=2).batch(32)
    test, _ = Task(seed=3).batch(32)
    # Reference: the post-LN inputs (qkv, fc1) quantized per channel; weights stay float.
    ref = quantize_model(copy.deepcopy(model), dict(a_bits=bits, points=POST_NORM,
                                                    per_type=dict(qkv=PER_CHANNEL, fc1=PER_CHANNEL)))
    with torch.no_grad(), calibration(ref):
        forward(ref, calib)
    rep = quantize_model(copy.deepcopy(model), dict(a_bits=bits, points=POST_NORM))
    with torch.no_grad(), observe_post_norm_channels(rep) as stats, calibration(rep):
        forward(rep, calib)
    assert len(stats) == len(norm_consumers(model))
    for norm, (linears, observer) in stats.items():
        fold_channel_qparams(rep, norm, linears, *observer.qparams())
        assert all(rep.get_submodule(p).input_quant.scale.numel() == 1 for p in linears)
    # Each norm -> linear pair of both models on the same norm input (the reference's).
    inputs = {}
    for norm in stats:
        ref.get_submodule(norm).register_forward_pre_hook(lambda m, args, norm=norm: inputs.setdefault(norm, args[0]))
    with torch.no_grad():
        forward(ref, test)
        for norm, (linears, _) in stats.items():
            for path in linears:
                ref_linear, rep_linear = ref.get_submodule(path), rep.get_submodule(path)
                x, x_rep = ref.get_submodule(norm)(inputs[norm]), rep.get_submodule(norm)(inputs[norm])
                codes, codes_rep = codes_of(ref_linear.input_quant, x), codes_of(rep_linear.input_quant, x_rep)
                # The same integers, but for float-rounding ties (about 1e-6 of the codes), off by one.
                differ = codes != codes_rep
                assert differ.float().mean() < 1e-4 and (codes - codes_rep).abs().max() <= 1, (path, differ.sum())
                rows = ~differ.any(dim=-1)
                expected = ref_linear(x)[rows]  # the folded bias cancels large terms: fp32 error up to ~2e-3 of the range
                torch.testing.assert_close(rep_linear(x_rep)[rows], expected, rtol=1e-3,
                                           atol=5e-3 * expected.abs().max().item())


def codes_of(quantizer, x):
    """The integer codes a per-tensor or per-(last-dim-)channel uniform quantizer gives `x`, read back from its
    own output (x / s and x * (1 / s) round differently on ties, so recomputing them here would not do)."""
    return (quantizer(x) / quantizer.scale).round().add(quantizer.zero_point)
