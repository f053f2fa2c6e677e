"""A packed W4 checkpoint of the Fashion-MNIST ViT is at most 1/6 of the float checkpoint, loads with
torch.load(weights_only=True), and the model it loads into computes bit-identical logits; tools/publish_model.py
--pack runs end to end."""
import os
import subprocess
import sys

import torch
from mmengine.config import Config

from mmvitq.deploy.pack import packed_layers
from mmvitq.engine import Runner
from mmvitq.engine.dist import unwrap

from test_deploy.test_export import FLOAT, PTQ, ROOT, calibrated_runner, data_root  # noqa: F401  (a fixture)

sys.path.insert(0, os.path.join(ROOT, 'tools'))
from publish_model import build_model, publish  # noqa: E402


def test_packed_w4_checkpoint_is_small_and_loads_bit_exactly(data_root, tmp_path):  # noqa: F811
    runner = calibrated_runner(PTQ.format('minmax'), {}, data_root, tmp_path / 'ptq')
    calibrated = str(tmp_path / 'ptq' / 'ptq_w4a4.pth')
    packed = publish(calibrated, str(tmp_path / 'vit_w4a4.pth'), pack=build_model(os.path.join(ROOT,
                                                                                             PTQ.format('minmax'))))
    assert os.path.getsize(packed) <= os.path.getsize(FLOAT) / 6
    checkpoint = torch.load(packed, weights_only=True)
    assert 'state_dict' not in checkpoint and checkpoint['blobs']['uint8'].dtype == torch.uint8
    assert len(checkpoint['packed']['layers']) == len(packed_layers(unwrap(runner.model))) == 25  # 24 + patch embed

    cfg = Config.fromfile(os.path.join(ROOT, PTQ.format('minmax')))
    cfg.merge_from_dict({f'{split}_dataloader.dataset.data_root': data_root for split in ('train', 'val', 'test')})
    cfg.work_dir, cfg.load_from = str(tmp_path / 'packed'), packed
    again = Runner.from_cfg(cfg)
    again.load_or_resume()
    images = torch.randn(8, 1, 28, 28)
    with torch.no_grad():
        before, after = (unwrap(r.model).eval()(images, mode='tensor') for r in (runner, again))
    assert torch.equal(before, after)
    state = unwrap(again.model).state_dict()
    assert all(bool(state[k]) for k in state if k.endswith('.calibrated'))


def test_publish_tool_packs_and_reports_sizes(data_root, tmp_path):  # noqa: F811
    calibrated_runner(PTQ.format('minmax'), {'model.backbone.qconfig.w_bits': 2}, data_root, tmp_path)
    proc = subprocess.run([sys.executable, 'tools/publish_model.py', str(tmp_path / 'ptq_w2a4.pth'),
                           str(tmp_path / 'vit_w2.pth'), '--pack', PTQ.format('minmax'), '--cfg-options',
                           'model.backbone.qconfig.w_bits=2'], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out, line = proc.stdout.splitlines()[-2:]
    assert out.startswith(str(tmp_path / 'vit_w2-')) and 'bytes packed' in line
    checkpoint = torch.load(out, weights_only=True)
    assert sum(v['width'] == 2 for v in checkpoint['packed']['layers'].values()) == 24
    # four 2-bit codes per byte: the 24 linears' 663,552 weights in 165,888 bytes, the 8-bit patch embedding's 1,536
    assert checkpoint['blobs']['uint8'].numel() == 165_888 + 1_536
