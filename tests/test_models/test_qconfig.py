"""The qconfig schema: precedence of its settings, and errors that name the field and the allowed values."""
import copy

import pytest
import torch

from mmvitq import QConfig, quantize_model
from mmvitq.models import QuantLinear


@pytest.mark.parametrize('bad,field,allowed', [
    (dict(w_bits=0), 'qconfig.w_bits', '2..8'),
    (dict(w_bits=9), 'qconfig.w_bits', '2..8'),
    (dict(a_bits='4'), 'qconfig.a_bits', '2..8'),
    (dict(a_bits=True), 'qconfig.a_bits', '2..8'),
    (dict(first_last_bits=1), 'qconfig.first_last_bits', 'or None'),
    (dict(weight=dict(type='NoSuchQuantizer')), 'qconfig.weight.type', 'UniformQuantizer'),
    (dict(act=dict(granularity='row')), 'qconfig.act.granularity', "'token'"),
    (dict(weight=dict(granularity='token')), 'qconfig.weight.granularity', "'channel'"),
    (dict(per_type=dict(fc1=dict(weight=dict(granularity='token')))), 'qconfig.per_type.fc1.weight.granularity',
     "'channel'"),
    (dict(overrides={'a.qkv': dict(weight=dict(granularity='token'))}), "qconfig.overrides['a.qkv'].weight", "'head'"),
    (dict(per_type=dict(mlp=dict(w_bits=4))), 'qconfig.per_type', "'fc1'"),
    (dict(per_type=dict(qkv=dict(w_bits=12))), 'qconfig.per_type.qkv.w_bits', '2..8'),
    (dict(per_point=dict(attn=dict())), 'qconfig.per_point', "'softmax'"),
    (dict(points=('weight', 'attention')), 'qconfig.points', "'linear_input'"),
    (dict(overrides={'a.b': dict(bits=3)}), "qconfig.overrides['a.b']", "'w_bits'"),
    (dict(wbits=4), 'qconfig', "'w_bits'"),
])
def test_bad_qconfig_names_field_and_allowed_values(bad, field, allowed):
    with pytest.raises(ValueError) as err:
        QConfig.from_dict(bad)
    assert field in str(err.value) and allowed in str(err.value)


def test_bad_qconfig_fails_before_the_model_is_touched(deit_tiny):
    model = copy.deepcopy(deit_tiny)
    with pytest.raises(ValueError, match='qconfig.w_bits'):
        quantize_model(model, dict(w_bits=9))
    assert not any(isinstance(m, QuantLinear) for m in model.modules())


def test_structural_errors_name_the_layer(deit_tiny):
    head_on_fc1 = r"granularity 'head' is not defined .*\(fc1\); allowed there: \('tensor', 'channel'\)"
    with pytest.raises(ValueError, match=head_on_fc1):
        quantize_model(copy.deepcopy(deit_tiny), dict(per_type=dict(fc1=dict(weight=dict(granularity='head')))))
    with pytest.raises(ValueError, match=r"qconfig.overrides: no quantized layer at \['backbone.nope'\]"):
        quantize_model(copy.deepcopy(deit_tiny), dict(overrides={'backbone.nope': dict(w_bits=3)}))
    with pytest.raises(ValueError, match='observer must be one of'):
        quantize_model(copy.deepcopy(deit_tiny), dict(act=dict(observer='median')))


def test_bits_precedence():
    q = QConfig.from_dict(dict(w_bits=4, a_bits=6, first_last_bits=8, per_type=dict(fc1=dict(w_bits=3)),
                               overrides={'l.fc1': dict(w_bits=2, a_bits=5)}))
    assert q.bits('x.qkv', 'qkv', 'weight') == 4 and q.bits('x.qkv', 'qkv', 'linear_input') == 6
    assert q.bits('x.patch', 'patch_embed', 'weight') == 8 and q.bits('x.head', 'head', 'linear_input') == 8
    assert q.bits('x.fc1', 'fc1', 'weight') == 3 and q.bits('x.fc1', 'fc1', 'linear_input') == 6
    assert q.bits('l.fc1', 'fc1', 'weight') == 2 and q.bits('l.fc1', 'fc1', 'linear_input') == 5
    assert QConfig.from_dict(dict(w_bits=4, first_last_bits=None)).bits('h', 'head', 'weight') == 4


def test_overrides_from_a_json_file(tmp_path):
    import json
    report = tmp_path / 'lampq_allocation.json'
    report.write_text(json.dumps(dict(seconds=1.0, allocation={'l.fc1': dict(w_bits=2, a_bits=5)})))
    plain = tmp_path / 'overrides.json'
    plain.write_text(json.dumps({'l.fc1': dict(w_bits=3)}))
    assert QConfig.from_dict(dict(overrides=str(report))).bits('l.fc1', 'fc1', 'linear_input') == 5
    assert QConfig.from_dict(dict(overrides=str(plain))).bits('l.fc1', 'fc1', 'weight') == 3
    with pytest.raises(ValueError, match=r"qconfig.overrides: cannot read the JSON file '.*missing.json'"):
        QConfig.from_dict(dict(overrides=str(tmp_path / 'missing.json')))
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps({'l.fc1': dict(w_bits=9)}))
    with pytest.raises(ValueError, match=r"qconfig.overrides\['l.fc1'\].w_bits must be an int in 2..8"):
        QConfig.from_dict(dict(overrides=str(bad)))


def test_quantizer_cfg_precedence():
    q = QConfig.from_dict(dict(per_point=dict(v=dict(granularity='head')),
                               per_type=dict(av=dict(act=dict(symmetric=True))),
                               overrides={'l.av': dict(act=dict(observer='mse'))}, points=('v', 'weight')))
    cfg = q.quantizer_cfg('l.av', 'av', 'v')
    assert cfg == dict(type='UniformQuantizer', granularity='head', symmetric=True, observer='mse', bits=8)
    assert q.quantizer_cfg('l.av', 'av', 'softmax') is None  # not a named point
    assert q.quantizer_cfg('l.fc1', 'fc1', 'weight')['granularity'] == 'channel'
    # Naming another quantizer type inherits only what it accepts (a Log2Quantizer has no observer).
    log2 = QConfig.from_dict(dict(per_point=dict(softmax=dict(type='Log2Quantizer', base='sqrt2'))))
    assert log2.quantizer_cfg('l.av', 'av', 'softmax') == dict(type='Log2Quantizer', base='sqrt2', bits=8)
    lsq = QConfig.from_dict(dict(weight=dict(type='LSQQuantizer'))).quantizer_cfg('l.fc1', 'fc1', 'weight')
    assert lsq == dict(type='LSQQuantizer', granularity='channel', symmetric=True, bits=8)


def test_log2_softmax_point(deit_tiny):
    q = quantize_model(copy.deepcopy(deit_tiny), dict(per_point=dict(softmax=dict(type='Log2Quantizer'))))
    core = q.backbone.layers[0].attn.core
    assert type(core.av.a_quant).__name__ == 'Log2Quantizer' and type(core.av.b_quant).__name__ == 'UniformQuantizer'
    with torch.no_grad():
        assert torch.isfinite(q(torch.randn(2, 3, 32, 32), mode='tensor')).all()


def test_entries_that_match_no_layer_are_errors(deit_tiny):
    """per_type.head on a backbone (no head there) or a per_point entry for a point left float: named errors."""
    backbone = copy.deepcopy(deit_tiny).backbone
    types = r"\('patch_embed', 'qkv', 'proj', 'fc1', 'fc2', 'qk', 'av'\)"
    with pytest.raises(ValueError, match=rf"qconfig.per_type.head matches no layer of this VisionTransformer; its "
                                         rf"module types are {types}"):
        quantize_model(backbone, dict(per_type=dict(head=dict(w_bits=4))))
    with pytest.raises(ValueError, match=r"qconfig.per_point.softmax matches no quantized point of this "
                                         r"VisionTransformer; its quantized points are \('weight', 'linear_input'\)"):
        quantize_model(copy.deepcopy(deit_tiny).backbone,
                       dict(points=('weight', 'linear_input'), per_point=dict(softmax=dict(type='Log2Quantizer'))))


def test_errors_name_the_config_path():
    """A quantized backbone's errors start at model.backbone.qconfig, down to the nested observer setting."""
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    backbone = dict(type='QuantVisionTransformer', arch=dict(embed_dims=32, num_layers=1, num_heads=2,
                                                             feedforward_channels=64), img_size=32, patch_size=8)
    cases = [(dict(act=dict(observer='median')), "model.backbone.qconfig.act.observer must be one of"),
             (dict(act=dict(observer='percentile', observer_kwargs=dict(percentile=200))),
              r'model.backbone.qconfig.act.observer_kwargs.percentile must be a float in \(50, 100\]'),
             (dict(per_type=dict(qkv=dict(weight=dict(observer='max')))),
              'model.backbone.qconfig.per_type.qkv.weight.observer must be one of'),
             (dict(weight=dict(type='LSQQuantizer', observer='mse')),
              r"model.backbone.qconfig.weight: unknown key 'observer' for LSQQuantizer")]
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        for qconfig, message in cases:
            with pytest.raises(ValueError, match=message):
                MODELS.build(dict(backbone, qconfig=qconfig))
