"""quantize_model on mmpretrain ViT/DeiT and Swin and on timm ViT: agreement with the float twin and
exactly the quantization points the qconfig names."""
import copy
from collections import Counter

import pytest
import torch

from mmvitq import quantize_model
from mmvitq.models import QuantConv2d, QuantLinear, QuantMatMul
from mmvitq.quantizers import BaseQuantizer, calibration

from .conftest import Task, mmpretrain_forward, timm_forward

FAMILIES = {
    'deit_tiny': mmpretrain_forward, 'swin_small': mmpretrain_forward, 'timm_vit': timm_forward, 'timm_swin': timm_forward
}


def quantized_twin(model, forward, qconfig):
    q = quantize_model(copy.deepcopy(model), qconfig)
    calib, _ = Task(seed=2).batch(32)
    with torch.no_grad(), calibration(q):
        forward(q, calib)
    return q


def agreement(model, forward, qconfig):
    test, _ = Task(seed=3).batch(128)
    q = quantized_twin(model, forward, qconfig)
    with torch.no_grad():
        ref, out = forward(model, test), forward(q, test)
    assert torch.isfinite(out).all()
    return (ref.argmax(1) == out.argmax(1)).float().mean().item()


@pytest.mark.parametrize('family', FAMILIES)
def test_w8a8_agrees_with_float_and_w4a4_runs(family, request):
    model, forward = request.getfixturevalue(family), FAMILIES[family]
    w8a8 = agreement(model, forward, dict(w_bits=8, a_bits=8))
    w4a4 = agreement(model, forward, dict(w_bits=4, a_bits=4))
    print(f'{family}: argmax agreement W8A8 {w8a8:.4f}, W4A4 {w4a4:.4f}')
    assert w8a8 >= 0.99
    assert w4a4 > 0.1  # runs and still carries signal; accuracy is the methods' job


@pytest.mark.parametrize('family', FAMILIES)
def test_rewritten_attention_matches_float_when_nothing_is_quantized(family, request):
    """With no point quantized, the swapped modules (explicit matmuls, shift masks) compute the float model."""
    model, forward = request.getfixturevalue(family), FAMILIES[family]
    q = quantize_model(copy.deepcopy(model), dict(points=()))
    assert any(isinstance(m, QuantMatMul) for m in q.modules())
    x, _ = Task(seed=5).batch(8)
    with torch.no_grad():
        torch.testing.assert_close(forward(q, x), forward(model, x), rtol=1e-4, atol=1e-4)


def roles(model) -> Counter:
    """Count enabled quantizers by the point they implement, read off the module structure."""
    count = Counter()
    for path, m in model.named_modules():
        if isinstance(m, (QuantLinear, QuantConv2d)):
            fc2 = path.endswith('ffn.layers.1') or path.endswith('mlp.fc2')
            count['weight'] += m.weight_quant is not None
            count['gelu' if fc2 else 'linear_input'] += m.input_quant is not None
        elif isinstance(m, QuantMatMul):
            a, b = ('q', 'k') if path.endswith('qk') else ('softmax', 'v')
            count[a] += m.a_quant is not None
            count[b] += m.b_quant is not None
    return +count


@pytest.mark.parametrize('points', [
    ('weight', 'linear_input', 'gelu', 'q', 'k', 'softmax', 'v'),
    ('weight', ),
    ('linear_input', 'softmax'),
    ('gelu', 'q', 'k', 'v'),
])
def test_exactly_the_named_points_are_quantized(deit_tiny, points):
    layers = 12  # DeiT-tiny; the classifier head and the patch embedding add one linear each
    expected = Counter({'weight': 4 * layers + 2, 'linear_input': 3 * layers + 2, 'gelu': layers, 'q': layers,
                        'k': layers, 'softmax': layers, 'v': layers})
    q = quantized_twin(deit_tiny, mmpretrain_forward, dict(w_bits=4, a_bits=4, points=points))
    assert roles(q) == Counter({p: expected[p] for p in points})
    quantizers = [m for m in q.modules() if isinstance(m, BaseQuantizer)]
    assert len(quantizers) == sum(expected[p] for p in points)  # and no other quantizer anywhere

    changed = {}
    hooks = [m.register_forward_hook(lambda m, i, o: changed.__setitem__(m, not torch.equal(i[0], o)))
             for m in quantizers]
    with torch.no_grad():
        mmpretrain_forward(q, Task(seed=4).batch(4)[0])
    for h in hooks:
        h.remove()
    assert len(changed) == len(quantizers) and all(changed.values())  # each one runs and quantizes


@pytest.mark.parametrize('family,attention,matmuls', [('swin_small', 'QuantWindowAttention', 4), ('timm_vit', 'QuantTimmAttention', 12),
                                                       ('timm_swin', 'QuantWindowAttention', 4)])
def test_every_attention_block_gets_quantized_matmuls(family, attention, matmuls, request):
    q = quantize_model(copy.deepcopy(request.getfixturevalue(family)), dict(w_bits=4, a_bits=4))
    blocks = [m for m in q.modules() if type(m).__name__ == attention]
    assert len(blocks) == matmuls and len([m for m in q.modules() if isinstance(m, QuantMatMul)]) == 2 * matmuls
    linears = [m for m in q.modules() if isinstance(m, torch.nn.Linear)]
    assert linears and all(isinstance(m, QuantLinear) for m in linears)


def test_first_and_last_layers_keep_8_bits(deit_tiny):
    q = quantize_model(copy.deepcopy(deit_tiny), dict(w_bits=4, a_bits=4))
    assert int(q.backbone.patch_embed.projection.weight_quant.bits) == 8
    assert int(q.head.layers.head.input_quant.bits) == 8
    assert int(q.backbone.layers[0].attn.qkv.weight_quant.bits) == 4


def test_overrides_and_per_type(deit_tiny):
    qconfig = dict(w_bits=4, a_bits=4, per_type=dict(qkv=dict(w_bits=6, weight=dict(granularity='head'))),
                   overrides={'backbone.layers.0.attn.qkv': dict(w_bits=3),
                              'backbone.layers.1.attn.core.av': dict(a_bits=5)})
    q = quantize_model(copy.deepcopy(deit_tiny), qconfig)
    layers = q.backbone.layers
    assert int(layers[0].attn.qkv.weight_quant.bits) == 3
    assert int(layers[1].attn.qkv.weight_quant.bits) == 6
    assert layers[1].attn.qkv.weight_quant.granularity == 'head'
    assert layers[1].attn.qkv.weight_quant.num_heads == 3 * 3  # q, k and v of DeiT-tiny's 3 heads
    assert int(layers[1].attn.core.av.a_quant.bits) == 5
    assert int(layers[1].attn.core.qk.a_quant.bits) == 4


def test_state_dict_keys_of_float_model_are_kept(deit_tiny):
    q = quantize_model(copy.deepcopy(deit_tiny), dict(w_bits=4, a_bits=4))
    float_keys = set(deit_tiny.state_dict())
    assert float_keys <= set(q.state_dict())
    missing, unexpected = copy.deepcopy(q).load_state_dict(deit_tiny.state_dict(), strict=False)
    assert not unexpected and all(k.endswith(('scale', 'zero_point', 'bits', 'calibrated')) for k in missing)


class UnknownAttention(torch.nn.Module):
    """Attention that no family rule knows: its matmuls stay float."""

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.num_heads = 2
        self.qkv = torch.nn.Linear(dim, 3 * dim)

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        return (q @ k.transpose(-2, -1)).softmax(-1) @ v


def test_an_unknown_attention_is_warned_about_once_or_refused_when_strict():
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), UnknownAttention(), UnknownAttention())
    with pytest.warns(UserWarning, match=r'2 attention-like modules keep float matmuls.*: 1 \(UnknownAttention\), '
                                         r'2 \(UnknownAttention\)') as record:
        quantize_model(copy.deepcopy(model))
    assert len([w for w in record if 'attention-like' in str(w.message)]) == 1
    with pytest.raises(ValueError, match=r'2 attention-like modules keep float matmuls'):
        quantize_model(copy.deepcopy(model), strict=True)
    # left out knowingly: no warning, and the Linears inside stay float too
    quantized = quantize_model(copy.deepcopy(model), filter_fn=lambda path, m: not path.startswith(('1', '2')))
    assert isinstance(quantized[0], QuantLinear) and type(quantized[1].qkv) is torch.nn.Linear


def test_a_quantizer_of_your_own_is_not_taken_for_an_attention(deit_tiny):
    """Quantizers have `num_heads`; one defined outside mmvitq must not trip the unquantized-attention check."""
    from mmvitq.quantizers import UniformQuantizer
    from mmvitq.registry import QUANTIZERS

    @QUANTIZERS.register_module(name='TestOwnQuantizer')
    class OwnQuantizer(UniformQuantizer):
        pass

    try:
        model = quantize_model(copy.deepcopy(deit_tiny), dict(act=dict(type='TestOwnQuantizer')), strict=True)
        assert any(isinstance(m, OwnQuantizer) for m in model.modules())
    finally:
        QUANTIZERS.module_dict.pop('TestOwnQuantizer')


def test_filter_fn_leaves_out_what_it_rejects(deit_tiny):
    model = quantize_model(copy.deepcopy(deit_tiny), filter_fn=lambda path, m: 'layers.0.' not in path)
    kinds = {path: type(m).__name__ for path, m in model.named_modules() if isinstance(m, (QuantLinear, QuantMatMul))}
    assert not any('layers.0.' in path for path in kinds)
    assert any('layers.1.attn' in path and kind == 'QuantMatMul' for path, kind in kinds.items())


def test_quantizing_a_timm_model_needs_no_openmmlab_library(tmp_path):
    """In a fresh process where importing mmdet, mmpretrain or mmcv fails, a timm ViT quantizes fully."""
    import subprocess
    import sys
    script = (
        "import sys\n"
        "for name in ('mmdet', 'mmpretrain', 'mmcv'):\n"
        "    sys.modules[name] = None  # any import of them raises ImportError\n"
        "import timm, torch\n"
        "from mmvitq import quantize_model\n"
        "from mmvitq.models import QuantLinear, QuantMatMul\n"
        "model = quantize_model(timm.create_model('vit_tiny_patch16_224', num_classes=10), dict(w_bits=4, a_bits=4),"
        " strict=True)\n"
        "linears = sum(isinstance(m, QuantLinear) for m in model.modules())\n"
        "matmuls = sum(isinstance(m, QuantMatMul) for m in model.modules())\n"
        "print(linears, matmuls, tuple(model(torch.randn(1, 3, 224, 224)).shape))\n")
    proc = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ['49', '24', '(1,', '10)']  # 12 x (qkv, proj, fc1, fc2) + head; 12 x 2 matmuls


def test_checkpoints_with_the_old_attention_paths_still_load(deit_tiny):
    """Quantized ViT checkpoints of mmvitq 0.1 kept the attention matmuls at `attn.scaled_dot_product_attention.*`."""
    model = quantize_model(copy.deepcopy(deit_tiny))
    with torch.no_grad(), calibration(model):
        model(torch.randn(2, 3, 32, 32))
    state = {k.replace('.attn.core.', '.attn.scaled_dot_product_attention.'): v for k, v in model.state_dict().items()}
    assert any('scaled_dot_product_attention.qk.a_quant.scale' in k for k in state)
    fresh = quantize_model(copy.deepcopy(deit_tiny))
    fresh.load_state_dict(state, strict=True)
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), model.state_dict().values()))


def test_quantization_points_list_every_quantizer_with_its_override_key(deit_tiny):
    from mmvitq.models import quantization_points
    model = quantize_model(copy.deepcopy(deit_tiny), dict(points=('weight', 'q', 'k', 'softmax', 'v')))
    rows = quantization_points(model)
    layers = [m for m in model.modules() if isinstance(m, (QuantLinear, QuantConv2d, QuantMatMul))]
    assert len(rows) == 2 * len(layers)
    by_key = {(r['layer'], r['point']): r for r in rows}
    assert by_key[('backbone.layers.0.attn.core.qk', 'q')]['type'] == 'qk'
    assert by_key[('backbone.layers.0.attn.core.av', 'softmax')]['quantizer'].startswith('UniformQuantizer(bits=8')
    assert by_key[('backbone.layers.0.ffn.layers.1', 'gelu')]['quantizer'] is None  # the point is off
    assert by_key[('backbone.layers.0.ffn.layers.1', 'weight')]['type'] == 'fc2'
    # each listed layer is a valid `overrides` key
    quantize_model(copy.deepcopy(deit_tiny), dict(overrides={r['layer']: dict(w_bits=4) for r in rows[:3]}))
