"""The one model base of the methods (QuantAlgorithm) and plain QAT on it, against a separately built float model:
what it builds, loads and lists, and how it dispatches, for every subclass."""
import pytest
import torch
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import nn

from mmvitq.methods import QAT, QuantAlgorithm
from mmvitq.methods.gplq import GPLQ
from mmvitq.methods.vvtq import VVTQ
from mmvitq.models import QuantConv2d, QuantLinear
from mmvitq.quantizers import disabled, quantizers_of

from .tiny_vit import ARCH

QCONFIG = dict(w_bits=4, a_bits=4, weight=dict(type='LSQQuantizer', granularity='channel', init='minmax'),
               act=dict(type='LSQQuantizer', init='minmax'))
PREPROCESSOR = dict(type='ClsDataPreprocessor', num_classes=10, mean=[72.94], std=[90.02])


pytestmark = pytest.mark.usefixtures('mmpretrain_scope')


def float_model(checkpoint: str) -> nn.Module:
    model = MODELS.build(ARCH)
    model.load_state_dict(torch.load(checkpoint, weights_only=True)['state_dict'])
    return model.eval()


def build(kind: str, checkpoint: str) -> QuantAlgorithm:
    if kind == 'GPLQ':
        return MODELS.build(dict(type='GPLQ', architecture=ARCH, teacher_checkpoint=checkpoint, qconfig=QCONFIG,
                                 data_preprocessor=PREPROCESSOR))
    return MODELS.build(dict(type=kind, architecture=ARCH, checkpoint=checkpoint, qconfig=QCONFIG,
                             data_preprocessor=PREPROCESSOR))


def images(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def test_every_training_method_is_a_small_subclass_of_the_base():
    for cls in (QAT, GPLQ, VVTQ):
        assert issubclass(cls, QuantAlgorithm)
        assert 'forward' not in vars(cls) and 'init_weights' not in vars(cls)  # the base's own, not a copy


@pytest.mark.parametrize('kind', ['QAT', 'VVTQ', 'GPLQ'])
def test_base_builds_loads_and_lists_as_the_float_model(kind, float_ckpt):
    """The student starts as the float model: same weights after init_weights, same logits with every quantizer
    off; its quantized layers are exactly the float backbone's linears and convs (census of the float model)."""
    model = build(kind, float_ckpt)
    model.init_weights()
    reference = float_model(float_ckpt)
    state = model.student.state_dict()
    for key, value in reference.state_dict().items():
        assert torch.equal(state[key], value), key
    census = [p for p, m in reference.backbone.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    assert list(model.quantized_layers()) == [f'backbone.{p}' for p in census]
    assert all(isinstance(m, (QuantLinear, QuantConv2d)) for m in model.quantized_layers().values())
    weights = model.weight_quantizers()
    assert len(weights) == len(census)
    assert {id(q) for q in weights} | {id(q) for q in model.activation_quantizers()} == \
        {id(q) for q in quantizers_of(model.student)}
    model.eval()
    x = images(4, 1)
    with torch.no_grad(), disabled(quantizers_of(model)):
        torch.testing.assert_close(model(x, mode='tensor'), reference(x, mode='tensor'))


def test_qat_trains_the_student_on_its_own_loss(float_ckpt):
    """QAT's loss is the student's task loss (the float model's cross-entropy with quantizers off), and one step
    moves both weights and quantizer scales."""
    model = build('QAT', float_ckpt)
    model.init_weights()
    x, samples = images(8, 2), [DataSample().set_gt_label(i % 10) for i in range(8)]
    with torch.no_grad(), disabled(quantizers_of(model)):
        expected = float_model(float_ckpt).loss(x, samples)['loss']
        torch.testing.assert_close(model(x, samples, mode='loss')['loss'], expected)
    model.train()
    model(x, samples, mode='loss')['loss'].backward()  # the first batch initialises the quantizers
    model.zero_grad()
    model(x, samples, mode='loss')['loss'].backward()
    scales = [q.scale for q in model.weight_quantizers() + model.activation_quantizers()]
    assert all(s.grad is not None for s in scales)
    assert model.student.backbone.layers[0].attn.qkv.weight.grad.abs().sum() > 0


def test_a_float_checkpoint_loads_into_the_student_by_its_own_keys(float_ckpt):
    """`tools/test.py METHOD_CONFIG FLOAT_CKPT`: a float state dict (no `student.` prefix) loads into the student."""
    model = build('QAT', float_ckpt)
    state = torch.load(float_ckpt, weights_only=True)['state_dict']
    model.load_state_dict(state, strict=False)
    assert torch.equal(model.student.head.layers.head.weight, state['head.layers.head.weight'])


@pytest.mark.parametrize('kind,field', [('QAT', 'model.checkpoint'), ('GPLQ', 'model.teacher_checkpoint')])
def test_a_missing_float_checkpoint_is_named_by_its_config_key(kind, field, tmp_path):
    with pytest.raises(FileNotFoundError, match=field):
        build(kind, str(tmp_path / 'missing.pth'))
