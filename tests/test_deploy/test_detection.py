"""The quantized Swin backbone (and FPN) of the Fashion-MNIST-scenes Mask R-CNN exports, and tools/test.py with
--backend onnxruntime (backbone + neck in onnxruntime, heads in PyTorch) scores the mAP of the PyTorch model
within 0.3 pt on 32 validation scenes; its attention and MLP matmuls run on integer kernels at W8A8."""
import json
import os

from test_tools.test_detection import SCENES, SCENES_PTQ, checkpoint_of, data_options, scenes  # noqa: F401
from test_tools.test_train_test import run


def test_scenes_detector_backbone_in_onnxruntime_keeps_its_map(scenes, tmp_path):  # noqa: F811
    options = data_options(scenes) + ['test_cfg.num_images=16']
    metrics = {}
    for backend, checkpoint in (('pytorch', checkpoint_of(SCENES)),
                                ('onnxruntime', str(tmp_path / 'pytorch' / 'ptq_w8a8.pth'))):
        out = str(tmp_path / f'{backend}.json')
        log = run(['tools/test.py', SCENES_PTQ, checkpoint, '--work-dir', str(tmp_path / backend), '--out', out,
                   '--backend', backend, '--cfg-options', *options], timeout=900)
        with open(out) as f:
            metrics[backend] = json.load(f)
    assert 'OnnxRuntimeHook: exported 76 quantized points' in log and 'testing it as it is' in log
    kernels = log.split('OnnxRuntimeHook: ')[2].split(' matmuls/convs on integer kernels')[0]
    assert int(kernels.split('/')[0]) >= 32  # qkv, proj, fc1, fc2 of the 6 blocks, their 12 attention matmuls
    for key in ('coco/bbox_mAP', 'coco/segm_mAP'):
        assert metrics['pytorch'][key] > 0.3
        assert abs(metrics['pytorch'][key] - metrics['onnxruntime'][key]) <= 0.003, (key, metrics)
    assert os.path.exists(tmp_path / 'onnxruntime' / 'w8a8.onnx')
