"""Strip a training checkpoint down to weights and quantizer state, like mmdet's publish_model tool.

The result holds tensors only (`state_dict` and a `meta` of plain strings), so it loads with
torch.load(weights_only=True); its name gets the first 8 hex digits of its sha256, mmdet style.

    python tools/publish_model.py work_dirs/run/epoch_1.pth work_dirs/run/deit-tiny_w4a4.pth
"""
import argparse
import hashlib
import os
import shutil

import torch


def publish(in_file: str, out_file: str) -> str:
    """Write the published checkpoint and return its final path (with the hash suffix)."""
    checkpoint = torch.load(in_file, map_location='cpu', weights_only=False)
    state_dict = checkpoint.get('state_dict', checkpoint)
    meta = checkpoint.get('meta', {})
    published = {
        'state_dict': {k: v for k, v in state_dict.items() if isinstance(v, torch.Tensor)},
        'meta': {k: str(meta[k]) for k in ('mmengine_version', 'epoch', 'iter', 'time') if k in meta},
    }
    torch.save(published, out_file)
    with open(out_file, 'rb') as f:
        sha = hashlib.sha256(f.read()).hexdigest()[:8]
    final = f'{os.path.splitext(out_file)[0]}-{sha}.pth'
    shutil.move(out_file, final)
    return final


def main() -> None:
    parser = argparse.ArgumentParser(description='Publish a checkpoint: drop optimizer and runner state.')
    parser.add_argument('in_file', help='input checkpoint (e.g. a Runner checkpoint)')
    parser.add_argument('out_file', help='output file; the sha256 prefix is appended to its name')
    args = parser.parse_args()
    print(publish(args.in_file, args.out_file))


if __name__ == '__main__':
    main()
