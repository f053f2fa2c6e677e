"""Export a quantized checkpoint to ONNX (opset 21, QDQ) and check it in onnxruntime.

    python tools/export.py CONFIG CHECKPOINT --out model.onnx [--verify N] [--fold] [--cfg-options k=v ...]

A classifier exports whole (preprocessed images -> logits); a detector its backbone and neck (images -> feature
maps). The checkpoint must be calibrated (e.g. the ptq_w4a4.pth / gplq_w4a4.pth that the test loops save).
`--verify N` runs the first N test images through PyTorch and onnxruntime, without and with its graph
optimisations, and prints the agreement; every run prints which layers run on integer kernels. `--fold` first
folds per-channel inputs of the linears after each LayerNorm into it (mmvitq.deploy.fold), so that those layers
run on integer kernels; the folded model is what is exported and verified.
"""
import argparse
import sys

from mmvitq.deploy import ExportError
from mmvitq.deploy.runtime import kernel_report
from mmvitq.engine import Runner
from mmvitq.engine.cli import add_common_args, load_config
from mmvitq.engine.deploy import export_runner_model, summarize_kernels, verify


def main() -> None:
    parser = argparse.ArgumentParser(description='Export a quantized checkpoint to ONNX (QDQ, opset 21)')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='calibrated checkpoint')
    parser.add_argument('--out', required=True, help='the ONNX file to write')
    parser.add_argument('--verify', type=int, default=0, metavar='N',
                        help='compare PyTorch and onnxruntime on the first N test images')
    parser.add_argument('--fold', action='store_true',
                        help='fold per-channel post-LayerNorm inputs into the LayerNorm (integer kernels for them)')
    add_common_args(parser)
    args = parser.parse_args()
    if args.verify < 0:
        parser.error(f'--verify must be >= 0, got {args.verify}')
    cfg = load_config(args)
    cfg.load_from = args.checkpoint
    runner = Runner.from_cfg(cfg)
    _ = runner.test_loop  # built first, as tools/test.py does: e.g. LampQ's loop accepts its widths from the checkpoint
    runner.load_or_resume()
    try:
        report, module = export_runner_model(runner, args.out, args.fold)
    except ExportError as e:
        sys.exit(f'export: {e}')
    kinds = {}
    for point in report['points']:
        key = f"{point['kind']} {point['bits']}-bit {point['granularity']} ({point['onnx_type']})"
        kinds[key] = kinds.get(key, 0) + 1
    print(f'{args.out}: {len(report["points"])} quantized points, input {report["input_shape"]}')
    if args.fold:
        print(f'  per-channel inputs folded into their LayerNorm: {len(report["folded"])} linears')
    for key, count in sorted(kinds.items()):
        print(f'  {count:4d} x {key}')
    kernels = kernel_report(args.out)
    print(f'onnxruntime: {summarize_kernels(kernels)}')
    for layer, kernel in kernels['layers'].items():
        print(f'  {layer}: {kernel}')
    if args.verify:
        for name, result in verify(runner, module, args.out, args.verify).items():
            line = f"onnxruntime ({name}) vs PyTorch on {result['images']} test images: max |difference| " \
                   f"{result['max_abs_diff']:.3g}"
            if 'argmax_agreement' in result:
                line += f", argmax agreement {result['argmax_agreement']:.2f}%"
            print(line)


if __name__ == '__main__':
    main()
