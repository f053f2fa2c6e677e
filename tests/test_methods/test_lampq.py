"""LampQ's search against independent references: per-width ranges vs a fresh calibration at that width, Fisher
sensitivities vs gradients taken by plain autograd, type normalisation by hand, budgets, rounds, errors."""
import copy

import pytest
import torch
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mmvitq.methods.lampq import find_units, fisher_sensitivities, search_allocation
from mmvitq.methods.lampq.search import type_normalised
from mmvitq.methods.lampq.sensitivity import bit_variants, float_units, measure_units
from mmvitq.quantizers import BaseQuantizer, calibration

BITS = (2, 3, 4, 8)


def build(observer='percentile', overrides=None, **qconfig_extra):
    qconfig = dict(w_bits=4, a_bits=4, weight=dict(observer='minmax'),
                   act=dict(observer=observer, granularity='channel'), overrides=overrides or {}, **qconfig_extra)
    arch = dict(type='ImageClassifier',
                backbone=dict(type='QuantVisionTransformer', arch=dict(embed_dims=24, num_layers=2, num_heads=2,
                                                                       feedforward_channels=48),
                              img_size=28, patch_size=7, in_channels=1, drop_path_rate=0.0, qconfig=qconfig),
                neck=None,
                head=dict(type='VisionTransformerClsHead', num_classes=10, in_channels=24))
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(arch)
    model.init_weights()
    torch.nn.init.normal_(model.head.layers.head.weight, std=0.5)  # the default zero init stops every gradient
    return model.eval()


def batches(count=2, size=16):
    g = torch.Generator().manual_seed(1)
    return [dict(inputs=torch.randn(size, 1, 28, 28, generator=g),
                 data_samples=[DataSample().set_gt_label(int(y)) for y in torch.randint(0, 10, (size, ), generator=g)])
            for _ in range(count)]


def named_quantizers(model):
    return {n: m for n, m in model.named_modules() if isinstance(m, BaseQuantizer)}


@pytest.mark.parametrize('observer', ['minmax', 'percentile', 'mse'])
def test_bit_variants_match_a_fresh_calibration_at_each_width(observer):
    model, data = build(observer), batches()
    units = find_units(model)
    before = {n: copy.deepcopy(q.state_dict()) for n, q in named_quantizers(model).items()}
    variants = bit_variants(model, units, data, BITS)
    for j, b in enumerate(BITS):
        fresh = copy.deepcopy(model)
        for q in named_quantizers(fresh).values():
            q.set_bits(b)
        with torch.no_grad(), calibration(fresh):
            for d in data:
                fresh(**d, mode='tensor')
        fresh_q = named_quantizers(fresh)
        for name, q in named_quantizers(model).items():
            variant = variants[q][j]
            assert int(variant.bits) == b and bool(variant.calibrated)
            torch.testing.assert_close(variant.scale, fresh_q[name].scale, rtol=0, atol=0)
            torch.testing.assert_close(variant.zero_point, fresh_q[name].zero_point, rtol=0, atol=0)
    for name, q in named_quantizers(model).items():  # the model's own quantizers are untouched
        assert all(torch.equal(v, before[name][k]) for k, v in q.state_dict().items())


def test_fisher_sensitivities_match_plain_autograd():
    model, data = build(), batches()
    units = find_units(model)
    variants = bit_variants(model, units, data, BITS)
    with float_units(units):
        weight_omega, act_omega = fisher_sensitivities(model, units, data, variants)
        checked = [u for u in units if u.module_type in ('fc1', 'qk')]
        for unit in checked:
            i = units.index(unit)
            expected_w, expected_a = torch.zeros(len(BITS), dtype=torch.float64), torch.zeros(len(BITS),
                                                                                               dtype=torch.float64)
            for d in data:
                captured = []

                def keep(module, args):
                    for a in args:
                        a.retain_grad()
                    captured.extend(args)

                handle = unit.module.register_forward_pre_hook(keep)
                model.zero_grad()
                inputs = d['inputs'].clone().requires_grad_()
                loss = model.parse_losses(model(inputs, d['data_samples'], mode='loss'))[0]
                loss.backward()
                handle.remove()
                for j in range(len(BITS)):
                    if unit.weight_quant is not None:
                        w = unit.module.weight.detach()
                        delta = w - variants[unit.weight_quant][j](w)
                        expected_w[j] += 0.5 * (unit.module.weight.grad**2 * delta**2).sum().double() / len(data)
                    for x, q in zip(captured, unit.act_quants):
                        delta = x.detach() - variants[q][j](x.detach())
                        expected_a[j] += 0.5 * (x.grad**2 * delta**2).sum().double() / len(data)
            if unit.weight_quant is not None:
                torch.testing.assert_close(torch.tensor(weight_omega[i]), expected_w, rtol=1e-4, atol=0)
            torch.testing.assert_close(torch.tensor(act_omega[i]), expected_a, rtol=1e-4, atol=0)
            assert act_omega[i][0] > act_omega[i][-1] > 0  # 2 bits cost more than 8
    assert {u.module_type for u in checked} == {'fc1', 'qk'}


def test_type_normalisation_by_hand():
    import numpy as np
    out = type_normalised([np.array([1., 2.]), np.array([3., 4.]), None, np.array([10., 30.])], ['a', 'a', 'a', 'b'])
    np.testing.assert_allclose(out[0], [0.4, 0.8])
    np.testing.assert_allclose(out[1], [1.2, 1.6])
    assert out[2] is None
    np.testing.assert_allclose(out[3], [0.5, 1.5])


def test_unit_sizes_by_hand():
    model = build()
    units = {u.path: u for u in find_units(model)}
    measure_units(model, list(units.values()), batches(1)[0])
    fc1 = units['backbone.layers.0.ffn.layers.0.0']
    assert (fc1.params, fc1.act_elements, fc1.macs) == (48 * 24, 17 * 24, 17 * 24 * 48)  # 16 patches + cls
    qk = units['backbone.layers.0.attn.core.qk']
    assert (qk.params, qk.act_elements, qk.macs) == (0, 2 * 2 * 17 * 12, 2 * 17 * 17 * 12)  # 2 heads of 12
    patch = units['backbone.patch_embed.projection']
    assert (patch.params, patch.act_elements, patch.macs) == (24 * 49, 784, 16 * 24 * 49)


def test_search_respects_budgets_and_gives_qconfig_overrides():
    model, data = build(), batches()
    result = search_allocation(model, data, weight_bits=4.0, act_bits=3.5, bops_bits=4.0, bits=BITS, rounds=2)
    units = result.units
    alloc = result.allocation
    assert set(alloc) == {u.path for u in units}
    weight = sum(u.params * alloc[u.path]['w_bits'] for u in units if u.weight_quant is not None)
    acts = sum(u.act_elements * alloc[u.path]['a_bits'] for u in units)
    assert weight <= 4.0 * sum(u.params for u in units) + 1e-6
    assert acts <= 3.5 * sum(u.act_elements for u in units) + 1e-6
    bops = sum(u.macs * alloc[u.path].get('w_bits', alloc[u.path]['a_bits']) * alloc[u.path]['a_bits'] for u in units)
    assert bops <= 16.0 * sum(u.macs for u in units) * (1 + 1e-9)
    assert len({a['a_bits'] for a in alloc.values()}) > 1  # mixed, not uniform
    # The model is left at the allocated widths, uncalibrated; a model built from the overrides agrees.
    searched = {u.path: [(q._bits, q.enabled, bool(q.calibrated)) for q in u.quantizers] for u in units}
    for u in units:
        assert searched[u.path] == [(alloc[u.path].get('w_bits'), True, False)] * (u.weight_quant is not None) + [
            (alloc[u.path]['a_bits'], True, False)] * len(u.act_quants)
    rebuilt = build(overrides={path.removeprefix('backbone.'): bits for path, bits in alloc.items()})
    assert {u.path: [(q._bits, True, False) for q in u.quantizers] for u in find_units(rebuilt)} == searched


def test_forced_allocation_stops_after_a_repeat():
    model, data = build(), batches(1)
    result = search_allocation(model, data, weight_bits=2, act_bits=2, bits=BITS, rounds=5)
    assert len(result.rounds) == 2 and result.rounds[0]['allocation'] == result.rounds[1]['allocation']
    assert all(set(a.values()) == {2} for a in result.allocation.values())


@pytest.mark.parametrize('kwargs, message', [
    (dict(weight_bits=9), r'LampQ: weight_bits must be a number in 2..8'),
    (dict(act_bits=1.5), r'LampQ: act_bits must be a number in 2..8'),
    (dict(bops_bits='4'), r'LampQ: bops_bits must be a number in 2..8'),
    (dict(bits=(1, 4)), r'LampQ: bits must be a list of widths in 2..8'),
    (dict(rounds=0), r'LampQ: rounds must be an int >= 1'),
])
def test_bad_settings_fail_before_work(kwargs, message):
    with pytest.raises(ValueError, match=message):
        search_allocation(build(), batches(1), **kwargs)


def test_budget_no_allocation_meets_fails_before_any_calibration(monkeypatch):
    """Linear inputs left float count 32 bits in BOPs: a 3-bit BOPs budget is out of reach, found from unit sizes."""
    from mmvitq.methods.lampq import search as search_module

    def no_calibration(*args, **kwargs):
        raise AssertionError('calibrated before checking the budget')

    monkeypatch.setattr(search_module, 'bit_variants', no_calibration)
    model = build(points=('weight', 'gelu', 'q', 'k', 'softmax', 'v'))
    units = find_units(model)
    measure_units(model, units, batches(1)[0])
    macs = {u.path: u.macs for u in units}
    least = sum(m * (2 * 32 if u.weight_quant is not None and not u.act_quants else 4)
                for u, m in zip(units, macs.values())) / sum(macs.values())  # brute force: 2 bits everywhere
    with pytest.raises(ValueError, match=rf'LampQ: bops_bits=3 cannot be met: the least any allocation to bits '
                                         rf'\(2, 3, 4, 8\) reaches is {least ** 0.5:.3f}'):
        search_allocation(model, batches(1), weight_bits=4, bops_bits=3, bits=BITS)


def test_similarity_entropy_matches_a_brute_force_kde():
    import math

    import numpy as np

    from mmvitq.methods.lampq.synthetic import similarity_entropy
    tokens = torch.randn(2, 6, 5, generator=torch.Generator().manual_seed(0))
    expected = []
    for image in tokens.double().numpy():
        unit = image / np.linalg.norm(image, axis=1, keepdims=True)
        sims = np.array([unit[i] @ unit[j] for i in range(6) for j in range(i + 1, 6)])
        density = np.array([np.mean(np.exp(-0.5 * ((s - sims) / 0.05)**2)) / (0.05 * math.sqrt(2 * math.pi))
                            for s in sims])
        expected.append(-np.log(density).mean())
    assert float(similarity_entropy(tokens, samples=100)) == pytest.approx(np.mean(expected), rel=1e-5)
    # identical tokens: one similarity value, the least diverse set
    assert similarity_entropy(torch.ones(1, 6, 5), samples=100) < similarity_entropy(tokens, samples=100)


def test_synthetic_images_reach_their_classes_with_diverse_tokens_and_leave_the_model_untouched():
    from mmvitq.methods.lampq.synthetic import similarity_entropy, synthesize_batches
    model = build()
    units = find_units(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    qkv = next(u.module for u in units if u.module_type == 'qkv')

    def target_accuracy_and_entropy(batches):
        tokens = []
        handle = qkv.register_forward_pre_hook(lambda module, args: tokens.append(args[0]))
        with torch.no_grad(), float_units(units):
            hits = [model(b['inputs'], mode='tensor').argmax(1) == torch.tensor([int(s.gt_label)
                                                                                 for s in b['data_samples']])
                    for b in batches]
        handle.remove()
        return float(torch.cat(hits).float().mean()), float(similarity_entropy(torch.cat(tokens)))

    noise = synthesize_batches(model, units, 24, 16, (1, 28, 28), 10, steps=0)
    images = synthesize_batches(model, units, 24, 16, (1, 28, 28), 10, steps=40, lr=0.1)
    plain = synthesize_batches(model, units, 24, 16, (1, 28, 28), 10, steps=40, lr=0.1, entropy_weight=0.0)
    assert [len(b['inputs']) for b in images] == [16, 8] and images[0]['inputs'].shape[1:] == (1, 28, 28)
    accuracy, entropy = target_accuracy_and_entropy(images)
    assert accuracy >= 0.9 > target_accuracy_and_entropy(noise)[0]
    assert entropy > target_accuracy_and_entropy(plain)[1]  # the entropy term spreads the token similarities
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert all(p.requires_grad for p in model.parameters()) and all(q.enabled for q in named_quantizers(model).values())


def test_allocation_file_feeds_gplq(tmp_path):
    """The loop's JSON (paths relative to the backbone) as GPLQ's qconfig overrides gives GPLQ those widths."""
    import json

    from mmvitq.methods.gplq import GPLQ
    model = build()
    result = search_allocation(model, batches(1), weight_bits=3.0, bits=BITS, rounds=1)
    allocation = {path.removeprefix('backbone.'): bits for path, bits in result.allocation.items()}
    (tmp_path / 'lampq_allocation.json').write_text(json.dumps(dict(seconds=1.0, allocation=allocation)))
    float_arch = dict(type='ImageClassifier',
                      backbone=dict(type='VisionTransformer', arch=dict(embed_dims=24, num_layers=2, num_heads=2,
                                                                        feedforward_channels=48),
                                    img_size=28, patch_size=7, in_channels=1, drop_path_rate=0.0),
                      neck=None, head=dict(type='VisionTransformerClsHead', num_classes=10, in_channels=24))
    float_state = {k: v for k, v in model.state_dict().items() if '_quant.' not in k}  # the float weights
    torch.save({'state_dict': float_state}, tmp_path / 'float.pth')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        gplq = GPLQ(architecture=float_arch, teacher_checkpoint=str(tmp_path / 'float.pth'),
                    qconfig=dict(w_bits=4, a_bits=4, overrides=str(tmp_path / 'lampq_allocation.json')))
    widths = {u.path: [q._bits for q in u.quantizers] for u in find_units(gplq.student.backbone)}
    expected = {path: [bits['w_bits'], bits['a_bits']] if 'w_bits' in bits else [bits['a_bits']] * 2
                for path, bits in allocation.items()}
    assert widths == expected and len({w for ws in widths.values() for w in ws}) > 1
