"""Strip a training checkpoint down to weights and quantizer state, like mmdet's publish_model tool.

The input is read with weights_only=True (a Runner checkpoint's training state through mmvitq's allow-list;
`--unsafe-load` opts into full unpickling for a file you trust). The result holds tensors only (`state_dict`
and a `meta` of plain strings), so it loads with torch.load(weights_only=True); it is written through a
temporary file and its name gets the first 8 hex digits of its sha256, mmdet style. The input is never
overwritten.

    python tools/publish_model.py work_dirs/run/epoch_1.pth work_dirs/run/deit-tiny_w4a4.pth
"""
import argparse
import hashlib
import io
import os.path as osp

import torch

from mmvitq.utils import atomic_path, load_checkpoint_file


def _same_file(a: str, b: str) -> bool:
    return osp.exists(b) and osp.samefile(a, b)


def publish(in_file: str, out_file: str, unsafe: bool = False) -> str:
    """Write the published checkpoint and return its final path (with the hash suffix)."""
    if _same_file(in_file, out_file):
        raise ValueError(f'publish_model: out_file {out_file!r} is the input checkpoint; choose another name')
    checkpoint = load_checkpoint_file(in_file, map_location='cpu', unsafe=unsafe)
    state_dict = checkpoint.get('state_dict', checkpoint)
    meta = checkpoint.get('meta', {})
    published = {
        'state_dict': {k: v for k, v in state_dict.items() if isinstance(v, torch.Tensor)},
        'meta': {k: str(meta[k]) for k in ('mmengine_version', 'epoch', 'iter', 'time') if k in meta},
    }
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
    args = parser.parse_args()
    print(publish(args.in_file, args.out_file, args.unsafe_load))


if __name__ == '__main__':
    main()
