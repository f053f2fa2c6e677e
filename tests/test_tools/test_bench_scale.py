"""tools/bench/scale.py's projection to the published schedules, against the arithmetic done by hand."""
import importlib
import os.path as osp
import sys

import pytest

BENCH = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'tools', 'bench')


def test_projection_is_iterations_times_iteration_time_plus_the_data_passes(monkeypatch):
    monkeypatch.syspath_prepend(BENCH)
    scale = importlib.import_module('scale')
    runs = {'GPLQ stage 1': dict(seconds=2.0), 'VVTQ step': dict(seconds=3.0), 'LSQ QAT': dict(seconds=2.5)}
    result = dict(runs=runs, gplq_stage2_seconds=4.0, forward_seconds=0.5)
    p = scale.projection(result, batch_size=8)
    iters = 1_281_167 / 8  # one ImageNet epoch at batch 8
    assert p['hours']['gplq'] == pytest.approx((iters * 2.0 + (0.5 + 4.0) * 512 / 8) / 3600)  # + init, stage 2
    assert p['hours']['vvtq'] == pytest.approx((150 * iters * 3.0 + 4 * iters * 0.5) / 3600)  # + 4-crop bank
    assert p['hours']['qat'] == pytest.approx(90 * iters * 2.5 / 3600)
    assert p['vvtq_over_gplq'] == pytest.approx(p['hours']['vvtq'] / p['hours']['gplq'])
    assert '150 ep x 160,146 it x 3.000 s' in p['arithmetic']['vvtq']
    sys.modules.pop('scale', None)
