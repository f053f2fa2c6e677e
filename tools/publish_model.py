"""Strip a training checkpoint down to weights and quantizer state, like mmdet's publish_model tool.

The input is read with weights_only=True (a Runner checkpoint's training state through mmvitq's allow-list;
`--unsafe-load` opts into full unpickling for a file you trust). The result holds tensors only (`state_dict`
and a `meta` of plain strings), so it loads with torch.load(weights_only=True); it is written through a
temporary file and its name gets the first 8 hex digits of its sha256, mmdet style. The input is never
overwritten.

    python tools/publish_model.py work_dirs/run/epoch_1.pth work_dirs/run/deit-tiny_w4a4.pth

`--pack CONFIG` stores each quantized weight as its packed integer codes (4-bit: two per byte, 2-bit: four; see
mmvitq.deploy.pack); CONFIG builds the model the checkpoint belongs to. Only the model that runs at test time is
kept (a method's student, without its float teacher). mmvitq's Runner (tools/test.py) unpacks it as it loads,
bit-exactly.

    python tools/publish_model.py work_dirs/run/ptq_w4a4.pth work_dirs/run/deit-tiny_w4a4_packed.pth \
        --pack configs/ptq/ptq-minmax_deit-tiny-p4_4w4a_fashion-mnist.py
"""
import argparse
import hashlib
import io
import os.path as osp

from typing import Optional

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import MODELS, init_default_scope
from mmengine.utils import import_modules_from_strings
from torch import nn

from mmvitq.deploy.pack import pack_state_dict
from mmvitq.deploy.targets import deploy_target
from mmvitq.utils import atomic_path, load_checkpoint_file


def _same_file(a: str, b: str) -> bool:
    return osp.exists(b) and osp.samefile(a, b)


def build_model(config: str, options: Optional[dict] = None) -> nn.Module:
    """The model of an mmengine config (its custom imports and default scope applied)."""
    cfg = Config.fromfile(config)
    if options:
        cfg.merge_from_dict(options)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    return MODELS.build(cfg.model)


def packed(state_dict: dict, model: nn.Module) -> dict:
    """The packed state of the part of `model` that runs at test time (see mmvitq.deploy.pack)."""
    model.load_state_dict(state_dict, strict=True)
    target = deploy_target(model)
    prefix = next((f'{name}.' for name, m in model.named_modules() if m is target and name), '')
    return pack_state_dict(target, prefix)


def publish(in_file: str, out_file: str, unsafe: bool = False, pack: Optional[nn.Module] = None) -> str:
    """Write the published checkpoint and return its final path (with the hash suffix); `pack`: the model of the
    checkpoint, whose quantized weights are then stored packed."""
    if _same_file(in_file, out_file):
        raise ValueError(f'publish_model: out_file {out_file!r} is the input checkpoint; choose another name')
    checkpoint = load_checkpoint_file(in_file, map_location='cpu', unsafe=unsafe)
    state_dict = checkpoint.get('state_dict', checkpoint)
    meta = checkpoint.get('meta', {})
    published = {
        'state_dict': {k: v for k, v in state_dict.items() if isinstance(v, torch.Tensor)},
        'meta': {k: str(meta[k]) for k in ('mmengine_version', 'epoch', 'iter', 'time') if k in meta},
    }
    if pack is not None:
        published.update(packed(published.pop('state_dict'), pack))
    buffer = io.BytesIO()
    torch.save(published, buffer)
    data = buffer.getvalue()
    final = f'{osp.splitext(out_file)[0]}-{hashlib.sha256(data).hexdigest()[:8]}.pth'
    if _same_file(in_file, final):
        raise ValueError(f'publish_model: the published name {final!r} is the input checkpoint')
    with atomic_path(final) as tmp, open(tmp, 'wb') as f:
        f.write(data)
    return final


def main() -> None:
    parser = argparse.ArgumentParser(description='Publish a checkpoint: drop optimizer and runner state.')
    parser.add_argument('in_file', help='input checkpoint (e.g. a Runner checkpoint)')
    parser.add_argument('out_file', help='output file; the sha256 prefix is appended to its name')
    parser.add_argument('--unsafe-load', action='store_true',
                        help='read the input with full unpickling (weights_only=False): only for files you trust')
    parser.add_argument('--pack', metavar='CONFIG', help='store quantized weights packed; CONFIG builds the model')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='with --pack: override config settings')
    args = parser.parse_args()
    model = build_model(args.pack, args.cfg_options) if args.pack else None
    final = publish(args.in_file, args.out_file, args.unsafe_load, model)
    print(final)
    if args.pack:
        print(f'{osp.getsize(final)} bytes packed, the input {osp.getsize(args.in_file)} bytes')


if __name__ == '__main__':
    main()
