"""GPLQ's pieces against independent references: PCA vs numpy's SVD, the ridge fit vs numpy's least squares,
the wrapper's teacher vs the float model, the feature loss vs a hand computation, QwT vs no compensation."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmvitq.methods.gplq import GPLQ, PCAProjector, RidgeRegression
from mmvitq.methods.gplq.stages import calibrate_activations, calibrate_weights, fit_compensations, fit_feature_pca

from .tiny_vit import ARCH, save_float_checkpoint

QCONFIG = dict(w_bits=3, a_bits=8,
               weight=dict(type='UniformQuantizer', granularity='channel', symmetric=True, observer='minmax'),
               act=dict(type='LSQQuantizer', granularity='channel', symmetric=True, init='minmax'),
               per_point=dict(softmax=dict(symmetric=False)))


pytestmark = pytest.mark.usefixtures('mmpretrain_scope')


@pytest.fixture(scope='module')
def teacher_ckpt(tmp_path_factory):
    return save_float_checkpoint(tmp_path_factory.mktemp('teacher') / 'float.pth')


def build(teacher_ckpt, **kwargs):
    model = GPLQ(architecture=ARCH, teacher_checkpoint=teacher_ckpt, qconfig=kwargs.pop('qconfig', QCONFIG), **kwargs)
    model.init_weights()
    return model.eval()


def images(n, seed):
    return torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def test_pca_matches_numpy_svd():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 8)) @ rng.normal(size=(8, 8)) + rng.normal(size=8)
    pca = PCAProjector()
    k = pca.fit(torch.tensor(x, dtype=torch.float32), variance=0.6)
    centered = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(centered, full_matrices=False)
    covered = np.cumsum(s**2) / np.sum(s**2)
    assert k == int(np.argmax(covered >= 0.6)) + 1
    basis = pca.basis.double().numpy()
    np.testing.assert_allclose(basis @ basis.T, vt[:k].T @ vt[:k], atol=1e-5)  # the same subspace
    np.testing.assert_allclose(pca(torch.tensor(x, dtype=torch.float32)).numpy() @ basis.T, centered @ basis @ basis.T,
                               atol=1e-4)
    restored = PCAProjector()
    restored.load_state_dict(pca.state_dict())
    assert restored.fitted and torch.equal(restored(torch.ones(2, 8)), pca(torch.ones(2, 8)))


def test_ridge_matches_numpy_least_squares():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 5))
    y = x @ rng.normal(size=(5, 3)) + rng.normal(size=3) + 0.3 * rng.normal(size=(400, 3))
    x1 = np.concatenate([x, np.ones((400, 1))], axis=1)
    for ridge in (0.0, 0.1):
        regression = RidgeRegression(ridge)
        for rows in np.split(np.arange(400), [100, 250]):  # streamed in three uneven chunks
            regression.update(torch.tensor(x[rows]), torch.tensor(y[rows]))
        weight, bias, r2 = regression.solve()
        gram = x1.T @ x1
        penalty = np.diag([ridge * np.mean(np.diag(gram)[:5])] * 5 + [0.0])
        theta = np.linalg.solve(gram + penalty, x1.T @ y)
        np.testing.assert_allclose(weight.numpy(), theta[:5].T, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(bias.numpy(), theta[5], rtol=1e-4, atol=1e-5)
        residual = y - x1 @ theta
        assert r2 == pytest.approx(1 - np.sum(residual**2) / np.sum((y - y.mean(axis=0))**2), rel=1e-6)
    with pytest.raises(ValueError, match='ridge must be a number >= 0'):
        RidgeRegression(-1)


def test_teacher_is_the_float_model_and_student_starts_from_it(teacher_ckpt):
    model = build(teacher_ckpt)
    float_model = MODELS.build(ARCH).eval()
    float_model.load_state_dict(torch.load(teacher_ckpt)['state_dict'])
    x = images(4, 0)
    with torch.no_grad():
        assert torch.equal(model.teacher(x, mode='tensor'), float_model(x, mode='tensor'))
        assert not any(q.enabled for q in model.weight_quantizers())  # stage 1: float weights
        for q in model.activation_quantizers():
            q.enabled = False
        assert torch.equal(model(x, mode='tensor'), float_model(x, mode='tensor'))
    assert not any(p.requires_grad for p in model.teacher.parameters())
    # A float checkpoint (the architecture's own keys) loads into both the student and the teacher.
    fresh = GPLQ(architecture=ARCH, teacher_checkpoint=teacher_ckpt, qconfig=QCONFIG).eval()
    missing = fresh.load_state_dict(float_model.state_dict(), strict=False).missing_keys
    assert missing and all('quant' in k or k.startswith(('pca.', 'compensations.')) for k in missing)
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in model.state_dict().items()
               if k.startswith(('student.backbone.layers', 'teacher.')) and 'quant' not in k)
    assert model.train().teacher.training is False


def test_feature_loss_is_the_pca_projected_mse(teacher_ckpt):
    model = build(teacher_ckpt, feature_loss_weight=0.5)
    calib = [images(16, 1), images(16, 2)]
    calibrate_activations(model, calib)
    k = fit_feature_pca(model, calib)
    teacher_feats = torch.cat([model.teacher.extract_feat(x)[-1] for x in calib]).detach()
    assert k == PCAProjector().fit(teacher_feats, 0.6)
    x = images(8, 3)
    samples = [DataSample().set_gt_label(i % 10) for i in range(8)]
    losses = model.loss(x, samples)
    with torch.no_grad():
        student, teacher = model.student.extract_feat(x)[-1], model.teacher.extract_feat(x)[-1]
        mean, basis = teacher_feats.mean(0), model.pca.basis
        expected = 0.5 * ((student - mean) @ basis - (teacher - mean) @ basis).square().mean()
    assert losses['loss_mimic'].item() == pytest.approx(expected.item(), rel=1e-5)
    assert losses['loss_mimic'] > 0 and set(losses) == {'loss', 'loss_mimic'}
    for q in model.activation_quantizers():
        q.enabled = False
    assert model.loss(x, samples)['loss_mimic'].item() == pytest.approx(0.0, abs=1e-10)


def test_compact_activations_keep_losses_and_weight_gradients(teacher_ckpt):
    """A stage-1 step with compact saved activations equals the regular one: losses and weight gradients
    exactly (W4A4 here, both quantizer kinds active), LSQ scale gradients to the residual grid."""
    grads = []
    for compact in (False, True):
        model = build(teacher_ckpt, qconfig=dict(QCONFIG, w_bits=4, a_bits=4), compact_activations=compact).train()
        calib = [images(16, 1), images(16, 2)]
        calibrate_activations(model, calib)
        calibrate_weights(model)  # weights quantized too, as in the joint QAT ablation
        fit_feature_pca(model, calib)
        losses = model(images(8, 3), [DataSample().set_gt_label(i % 10) for i in range(8)], mode='loss')
        sum(losses.values()).backward()
        grads.append({n: p.grad.clone() for n, p in model.student.named_parameters() if p.grad is not None})
        grads[-1]['losses'] = torch.stack(list(losses.values())).detach()
    regular, compact = grads
    assert regular.keys() == compact.keys()
    scales = [n for n in regular if n.endswith('.scale')]
    assert scales and len(regular) > len(scales) + 1
    for name in regular:
        if name in scales:
            torch.testing.assert_close(compact[name], regular[name], rtol=0.05, atol=1e-4)
        else:
            assert torch.equal(compact[name], regular[name]), name
    assert any(not torch.equal(compact[n], regular[n]) for n in scales)  # the compact path really ran


def test_compensation_cuts_the_weight_quantization_error(teacher_ckpt):
    """QwT fitted on 64 images makes the W3 model's features closer to the float-weight model's on others."""
    model = build(teacher_ckpt)
    calib, held_out = [images(32, 4), images(32, 5)], images(64, 6)
    calibrate_activations(model, calib)
    assert calibrate_weights(model) == len(model.weight_quantizers()) == 9  # patch embed; qkv, proj, fc1, fc2 x 2
    assert all(q.enabled and q.calibrated for q in model.weight_quantizers())
    with torch.no_grad():
        with model.float_weights(model.student):
            reference = model.student.extract_feat(held_out)[-1]
        before = F.mse_loss(model.student.extract_feat(held_out)[-1], reference)
        scores = fit_compensations(model, calib)
        after = F.mse_loss(model.student.extract_feat(held_out)[-1], reference)
    assert len(scores) == 2 and all(0 < r <= 1 for r in scores)
    assert after < 0.9 * before

    # The whole state (quantizers, compensations, PCA) round-trips through a state dict into a fresh model.
    fresh = GPLQ(architecture=ARCH, teacher_checkpoint=teacher_ckpt, qconfig=QCONFIG).eval()
    fresh.load_state_dict(model.state_dict())
    assert all(q.enabled for q in fresh.weight_quantizers())
    with torch.no_grad():
        assert torch.equal(fresh(held_out, mode='tensor'), model(held_out, mode='tensor'))


def test_bad_settings_name_the_field(teacher_ckpt, tmp_path):
    with pytest.raises(FileNotFoundError, match='model.teacher_checkpoint: no such file'):
        GPLQ(architecture=ARCH, teacher_checkpoint=str(tmp_path / 'none.pth'), qconfig=QCONFIG)
    with pytest.raises(ValueError, match=r'qconfig.w_bits must be an int in 2..8, got 9'):
        GPLQ(architecture=ARCH, teacher_checkpoint=teacher_ckpt, qconfig=dict(QCONFIG, w_bits=9))
    with pytest.raises(ValueError, match=r'model.compact_activations must be None, True or False'):
        GPLQ(architecture=ARCH, teacher_checkpoint=teacher_ckpt, qconfig=QCONFIG, compact_activations='yes')
    with pytest.raises(ValueError, match=r'model.pca_variance must be a number in \(0, 1\]'):
        GPLQ(architecture=ARCH, teacher_checkpoint=teacher_ckpt, qconfig=QCONFIG, pca_variance=1.5)
    torch.save({'state_dict': {}}, tmp_path / 'empty.pth')
    model = GPLQ(architecture=ARCH, teacher_checkpoint=str(tmp_path / 'empty.pth'), qconfig=QCONFIG)
    with pytest.raises(KeyError, match='teacher_checkpoint: .*lacks .* weights of the model'):
        model.init_weights()
