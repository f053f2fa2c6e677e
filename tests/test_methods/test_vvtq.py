"""VVTQ's pieces against independent references: the vectorised bin variance vs a per-bin loop and numpy, the
regulariser vs a numpy brute force, the ramp and the oscillation counts by hand, the label bank vs the
teacher run again on the banked crops, the soft loss vs torch's cross-entropy with probability targets."""
import math
import os
import os.path as osp
import random

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmvitq.methods.vvtq import (VVTQ, LabelBankDataset, OscillationTracker, bin_variance, bin_variance_loop,
                                 cosine_ramp, oscillation_loss)
from mmvitq.methods.vvtq import dataset as dataset_module
from mmvitq.methods.vvtq.dataset import BankedResizedCrop, draw_crop
from mmvitq.quantizers import LSQQuantizer

from .tiny_vit import ARCH

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PREPROCESSOR = dict(type='ClsDataPreprocessor', num_classes=10, mean=[72.94], std=[90.02])
RECIPE = Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'vvtq.py'))


pytestmark = pytest.mark.usefixtures('mmpretrain_scope')


# -- regulariser ---------------------------------------------------------------------------------------------
def test_bin_variance_matches_loop_and_numpy_values_and_gradients():
    g = torch.Generator().manual_seed(0)
    values = torch.randn(500, generator=g, dtype=torch.float64)
    bins = torch.randint(0, 40, (500, ), generator=g)
    bins[bins == 7] = 8  # an empty bin
    bins[0], bins[1:][bins[1:] == 9] = 9, 10  # a bin with a single value
    expected = sum(np.var(values.numpy()[bins.numpy() == b], ddof=1) for b in range(41)
                   if (bins.numpy() == b).sum() > 1)
    a, b = values.clone().requires_grad_(), values.clone().requires_grad_()
    fast, loop = bin_variance(a, bins, 41), bin_variance_loop(b, bins, 41)
    assert fast.item() == pytest.approx(expected, rel=1e-10) and loop.item() == pytest.approx(expected, rel=1e-10)
    fast.backward()
    loop.backward()
    torch.testing.assert_close(a.grad, b.grad)


def reference_regularizer(weight: np.ndarray, scale: np.ndarray, qmin: int, qmax: int) -> float:
    """MSE to the grid plus per-(row, grid point) variances, one bin at a time, for a per-row symmetric grid."""
    total, mse = 0.0, []
    for row, s in zip(weight, scale):
        clipped = np.clip(row / s, qmin, qmax) * s
        codes = np.round(np.clip(row / s, qmin, qmax))
        mse.append((clipped - codes * s)**2)
        for code in np.unique(codes):
            members = clipped[codes == code]
            if len(members) > 1:
                total += np.var(members, ddof=1)
    return float(np.mean(np.concatenate(mse)) + total)


@pytest.mark.parametrize('granularity', ['tensor', 'channel'])
def test_oscillation_loss_matches_brute_force(granularity):
    g = torch.Generator().manual_seed(1)
    weight = torch.randn(6, 20, generator=g, dtype=torch.float64) * 0.3
    quantizer = LSQQuantizer(bits=3, granularity=granularity, ch_axis=0, num_channels=6).double()
    scale = torch.rand(6 if granularity == 'channel' else 1, generator=g, dtype=torch.float64) * 0.1 + 0.05
    quantizer.set_qparams(scale, 0.0)
    rows = weight.numpy() if granularity == 'channel' else weight.numpy().reshape(1, -1)
    expected = reference_regularizer(rows, scale.numpy(), -4, 3)
    assert oscillation_loss(weight, quantizer).item() == pytest.approx(expected, rel=1e-9)


def test_regularizer_pulls_weights_to_their_grid_points():
    """Descending the regulariser alone moves latent weights towards the centres of their bins (the
    opposite sign pushes them to the thresholds, where they oscillate)."""
    g = torch.Generator().manual_seed(2)
    weight = (torch.rand(16, 64, generator=g) * 0.3 - 0.2).requires_grad_()  # inside the grid's range
    quantizer = LSQQuantizer(bits=2, granularity='channel', ch_axis=0, num_channels=16)
    quantizer.set_qparams(0.1, 0.0)

    def off_grid():
        inside = (weight / 0.1).clamp(-2, 1)
        return (inside - inside.round()).abs().mean().item()

    before = off_grid()
    optimizer = torch.optim.SGD([weight], lr=0.5)
    for _ in range(100):
        optimizer.zero_grad()
        oscillation_loss(weight, quantizer).backward()
        optimizer.step()
    assert before > 0.2 and off_grid() < 0.5 * before


def test_cosine_ramp_by_hand():
    assert cosine_ramp(0.0) == 0.0 and cosine_ramp(0.25) == 0.0
    assert cosine_ramp(0.625) == pytest.approx(0.005)  # half-way through the ramp: half the weight
    assert cosine_ramp(0.25 + 0.75 / 3) == pytest.approx(0.01 * 0.5 * (1 - math.cos(math.pi / 3)))
    assert cosine_ramp(1.0) == pytest.approx(0.01) and cosine_ramp(1.5) == pytest.approx(0.01)
    assert cosine_ramp(0.5, final=1.0, start=0.0) == pytest.approx(0.5)


def test_oscillation_tracker_by_hand():
    tracker = OscillationTracker(momentum=0.5)
    codes = [[0, 0, 0, 0], [1, 0, 0, 1], [0, 0, 1, 2], [0, 0, 0, 2]]
    rates = [tracker.update(torch.tensor(c)) for c in codes]
    # it 2: weight 0 goes back down after going up; it 3: weight 2 goes back down (its last move was up).
    assert rates == [0.0, 0.0, 0.25, 0.25]
    assert tracker.ema == pytest.approx(0.5 * 0.25 + 0.5 * (0.5 * 0.25))
    with pytest.raises(ValueError, match=r'momentum must be a number in \(0, 1\]'):
        OscillationTracker(momentum=0)


# -- label bank ----------------------------------------------------------------------------------------------
class TinyImages:
    """12 random 28x28 grey images with labels: what LabelBankDataset needs of a dataset."""

    metainfo = dict(classes=tuple(str(i) for i in range(10)))

    def __init__(self):
        rng = np.random.default_rng(0)
        self.images = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)

    def __len__(self):
        return len(self.images)

    def get_data_info(self, index):
        return dict(img=self.images[index].copy(), gt_label=np.array(index % 10, dtype=np.int64), sample_idx=index)


def bank_dataset(root, float_ckpt, **kwargs):
    return LabelBankDataset(
        TinyImages(), pipeline=[dict(type='BankedResizedCrop', size=28, scale=(0.3, 1.0)), dict(type='PackInputs')],
        teacher=ARCH, teacher_checkpoint=float_ckpt, data_preprocessor=PREPROCESSOR, bank_root=str(root),
        batch_images=5, **{**dict(num_crops=3, topk=4), **kwargs})


def test_label_bank_holds_the_teachers_labels_of_its_crops(tmp_path, float_ckpt):
    ds = bank_dataset(tmp_path, float_ckpt)
    teacher = MODELS.build(dict(ARCH, data_preprocessor=PREPROCESSOR))
    teacher.load_state_dict(torch.load(float_ckpt)['state_dict'])
    teacher.eval()
    bank = ds.bank
    assert (bank.num_images, bank.num_crops, bank.topk, bank.num_classes) == (12, 3, 4, 10)
    images = TinyImages().images
    for index in (0, 7, 11):
        for crop in range(3):
            top, left, h, w = bank.arrays['boxes'][index, crop] * 28
            y0, x0 = int(round(top)), int(round(left))
            cut = images[index][y0:y0 + int(round(h)), x0:x0 + int(round(w))]
            cut = cv2.resize(cut, (28, 28), interpolation=cv2.INTER_LINEAR)
            if bank.arrays['flips'][index, crop]:
                cut = cut[:, ::-1]
            x = (torch.tensor(cut.copy(), dtype=torch.float32)[None, None] - 72.94) / 90.02
            with torch.no_grad():
                probs = teacher(x, mode='tensor').softmax(-1)[0]
            top4 = probs.topk(4)
            np.testing.assert_array_equal(bank.arrays['classes'][index, crop], top4.indices.numpy())
            np.testing.assert_allclose(bank.arrays['probs'][index, crop], top4.values.numpy(), rtol=1e-5)
            # Marginal smoothing: the other 6 classes share the rest of the mass equally.
            soft = bank.soft_label(index, crop)
            rest = (1 - top4.values.sum()) / 6
            expected = torch.full((10, ), rest.item()).scatter_(0, top4.indices, top4.values)
            torch.testing.assert_close(soft, expected, rtol=1e-5, atol=1e-7)
            assert soft.sum().item() == pytest.approx(1.0, abs=1e-6)
    sample = ds[3]
    assert sample['inputs'].shape == (1, 28, 28)
    banked = [ds.bank.soft_label(3, k) for k in range(3)]
    assert any(torch.equal(sample['data_samples'].gt_score, s) for s in banked)


def test_label_bank_is_built_once_and_reused(tmp_path, float_ckpt, monkeypatch):
    first = bank_dataset(tmp_path, float_ckpt)
    boxes = np.array(first.bank.arrays['boxes'])

    def no_build(*args, **kwargs):
        raise AssertionError('the bank was rebuilt')

    monkeypatch.setattr(dataset_module, 'build_label_bank', no_build)
    again = bank_dataset(tmp_path, float_ckpt)
    assert again.bank_path == first.bank_path
    np.testing.assert_array_equal(again.bank.arrays['boxes'], boxes)
    with pytest.raises(AssertionError, match='rebuilt'):  # other settings: another bank
        bank_dataset(tmp_path, float_ckpt, topk=2)
    with pytest.raises(ValueError, match='train_dataloader.dataset.num_crops must be an int >= 1, got 0'):
        bank_dataset(tmp_path, float_ckpt, num_crops=0)


def test_label_bank_fingerprint_is_the_teachers_content(tmp_path, float_ckpt):
    """Same file name and size, other weights: another bank (the name and size used to decide)."""
    other = tmp_path / 'other' / osp.basename(float_ckpt)
    other.parent.mkdir()
    state = torch.load(float_ckpt, weights_only=True)
    state['state_dict']['head.layers.head.bias'] += 1.0
    torch.save(state, other)
    assert osp.getsize(other) == osp.getsize(float_ckpt)
    assert bank_dataset(tmp_path / 'b', float_ckpt).bank_path != bank_dataset(tmp_path / 'b', str(other)).bank_path


def test_killed_builds_leave_no_bank_and_their_leftovers_are_removed(tmp_path, float_ckpt, monkeypatch):
    import socket
    import subprocess

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # the build dies half-way

    bank_path = osp.join(tmp_path / 'banks', osp.basename(bank_dataset(tmp_path / 'probe', float_ckpt).bank_path))
    with monkeypatch.context() as m:
        m.setattr(dataset_module, 'merge_label_banks', killed)
        with pytest.raises(KeyboardInterrupt):
            bank_dataset(tmp_path / 'banks', float_ckpt)
    assert not osp.exists(bank_path)  # nothing a later run could take for a finished bank
    leftovers = [p for p in os.listdir(tmp_path / 'banks') if '.tmp-' in p]
    assert leftovers, 'the killed build should have left its temporary directory'
    dead = subprocess.Popen(['true'])
    dead.wait()
    stale = f'{bank_path}.tmp-{socket.gethostname()}-{dead.pid}'  # a build whose process is gone
    live = f'{bank_path}.tmp-{socket.gethostname()}-{os.getppid()}'  # one whose process still runs
    os.makedirs(stale), os.makedirs(live)
    ds = bank_dataset(tmp_path / 'banks', float_ckpt)
    assert osp.isfile(osp.join(ds.bank_path, 'meta.json'))
    remaining = sorted(p for p in os.listdir(tmp_path / 'banks') if '.tmp-' in p)
    assert remaining == [osp.basename(live)]  # the killed ones are gone, a running one is left alone


def test_label_bank_does_not_depend_on_the_build_workers(tmp_path, float_ckpt):
    one = bank_dataset(tmp_path / 'a', float_ckpt, build_workers=0).bank
    two = bank_dataset(tmp_path / 'b', float_ckpt, build_workers=2).bank
    for name in ('boxes', 'flips', 'classes'):
        np.testing.assert_array_equal(one.arrays[name], two.arrays[name])
    np.testing.assert_allclose(one.arrays['probs'], two.arrays['probs'], rtol=1e-5)
    assert len(np.unique(one.arrays['boxes'].reshape(-1, 4), axis=0)) == 12 * 3  # every crop drawn anew


def _seed_and_draw(build=None) -> tuple:
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    if build is not None:
        build()
    return torch.rand(3), np.random.rand(3), random.random()


def test_building_the_bank_leaves_the_random_generators_as_they_were(tmp_path, float_ckpt):
    """A run that builds the bank (teacher init, loader seeds) trains as one that finds it built."""
    built = _seed_and_draw(lambda: bank_dataset(tmp_path, float_ckpt, build_workers=1))
    untouched = _seed_and_draw()
    assert torch.equal(built[0], untouched[0]) and np.array_equal(built[1], untouched[1])
    assert built[2] == untouched[2]


def test_draw_crop_follows_random_resized_crop_rules():
    np.random.seed(0)
    for _ in range(2000):
        top, left, h, w = draw_crop(28, 20, (0.2, 0.9), (3 / 4, 4 / 3))
        assert 0 <= top and top + h <= 28 and 0 <= left and left + w <= 20
        assert 0.2 * 560 - 2 * 28 <= h * w <= 0.9 * 560 + 2 * 28  # rounding of h and w
        assert 3 / 4 * 0.8 <= w / h <= 4 / 3 * 1.25


def test_banked_crop_cuts_the_named_box():
    img = np.arange(28 * 28, dtype=np.uint8).reshape(28, 28)
    out = BankedResizedCrop(size=14).transform(dict(img=img, bank_crop=dict(box=(0.5, 0.25, 0.5, 0.5), flip=True)))
    np.testing.assert_array_equal(out['img'], cv2.resize(img[14:28, 7:21], (14, 14))[:, ::-1])
    request = {}
    np.random.seed(0)
    BankedResizedCrop(size=14).transform(dict(img=img, bank_crop=request))
    assert set(request) == {'box', 'flip'} and all(0 <= v <= 1 for v in request['box'])


# -- the model -----------------------------------------------------------------------------------------------
def test_vvtq_recipe_has_head_wise_scales_and_soft_loss(float_ckpt):
    model = VVTQ(architecture=ARCH, qconfig=RECIPE.vvtq_qconfig, checkpoint=float_ckpt,
                 data_preprocessor=PREPROCESSOR)
    model.init_weights()
    attn = model.student.backbone.layers[0].attn
    assert attn.qkv.weight_quant.scale.numel() == 9  # q, k and v of 3 heads
    assert attn.proj.input_quant.scale.numel() == 3
    core = attn.core
    assert {q.scale.numel() for q in (core.qk.a_quant, core.qk.b_quant, core.av.a_quant, core.av.b_quant)} == {3}
    assert model.student.backbone.layers[0].ffn.layers[0][0].weight_quant.scale.numel() == 1
    assert model.student.backbone.patch_embed.projection.weight_quant._bits == 8

    g = torch.Generator().manual_seed(0)
    inputs = torch.randn(4, 1, 28, 28, generator=g)
    targets = torch.rand(4, 10, generator=g).softmax(-1)
    samples = [DataSample().set_gt_label(0).set_gt_score(t) for t in targets]
    model.train()
    model.progress = 0.2
    torch.manual_seed(0)
    losses = model.loss(inputs, samples)
    torch.manual_seed(0)
    logits = model.student(inputs, mode='tensor')
    assert losses['loss_kd'].item() == pytest.approx(F.cross_entropy(logits, targets).item(), rel=1e-5)
    assert 'loss_osc' not in losses and losses['osc_weight'] == 0  # before 25% of training
    model.progress = 1.0
    losses = model.loss(inputs, samples)
    weights = model.quantized_weights()
    assert len(weights) == 2 * 4 + 1  # 4 linears per block, the patch embedding
    brute = 0.0
    for weight, quantizer in weights:
        rows = weight.detach().double().numpy().reshape(quantizer.scale.numel(), -1)
        brute += reference_regularizer(rows, quantizer.scale.detach().double().numpy(), quantizer.quant_min,
                                       quantizer.quant_max)
    assert losses['loss_osc'].item() == pytest.approx(0.01 * brute, rel=1e-4)
    plain = VVTQ(architecture=ARCH, qconfig=RECIPE.vvtq_qconfig, regularizer=None)
    plain.progress = 1.0
    assert 'loss_osc' not in plain.loss(inputs, samples)


def test_vvtq_bad_settings_name_the_field(tmp_path):
    with pytest.raises(ValueError, match=r"model.regularizer must be None or a dict with keys \('weight', 'start'\)"):
        VVTQ(architecture=ARCH, qconfig=RECIPE.vvtq_qconfig, regularizer=dict(lamda=0.1))
    with pytest.raises(ValueError, match=r'model.regularizer.start must be a number in \[0, 1.0\), got 1.5'):
        VVTQ(architecture=ARCH, qconfig=RECIPE.vvtq_qconfig, regularizer=dict(start=1.5))
    torch.save({'state_dict': {}}, tmp_path / 'empty.pth')
    model = VVTQ(architecture=ARCH, qconfig=RECIPE.vvtq_qconfig, checkpoint=str(tmp_path / 'empty.pth'))
    with pytest.raises(KeyError, match='model.checkpoint: .*lacks .* weights of the model'):
        model.init_weights()
