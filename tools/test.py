"""Evaluate a float or quantized checkpoint with an mmengine config, like mmdet's tools/test.py.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out metrics.json] [--cfg-options k=v ...]
    python tools/test.py CONFIG CHECKPOINT --backend onnxruntime [--no-ort-optimize] [--fold]   # in onnxruntime
"""
import argparse

from mmengine.dist import is_main_process

from mmvitq.engine import Runner
from mmvitq.engine.cli import add_common_args, load_config
from mmvitq.utils import write_json


def main() -> None:
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='write the metrics to this JSON file')
    parser.add_argument('--backend', choices=['pytorch', 'onnxruntime'], default='pytorch',
                        help='onnxruntime: export the (calibrated) model to ONNX in the work dir and test it there')
    parser.add_argument('--no-ort-optimize', action='store_true',
                        help='with --backend onnxruntime: no graph optimisations (QDQ as written, no integer kernels)')
    parser.add_argument('--fold', action='store_true',
                        help='with --backend onnxruntime: fold per-channel inputs after each LayerNorm into it first')
    add_common_args(parser)
    args = parser.parse_args()
    cfg = load_config(args)
    cfg.load_from = args.checkpoint
    if args.backend == 'onnxruntime':
        cfg.custom_hooks = [*cfg.get('custom_hooks', []),
                            dict(type='OnnxRuntimeHook', optimize=not args.no_ort_optimize, fold=args.fold)]
    elif args.no_ort_optimize or args.fold:
        parser.error('--no-ort-optimize and --fold go with --backend onnxruntime')
    metrics = Runner.from_cfg(cfg).test()
    if args.out and is_main_process():
        write_json(args.out, {k: float(v) for k, v in metrics.items()}, indent=2)


if __name__ == '__main__':
    main()
