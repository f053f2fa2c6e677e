"""The quantized backbones (and necks) of the Fashion-MNIST-scenes Mask R-CNNs export (Swin + FPN, plain windowed
ViT + simple feature pyramid), and tools/test.py with --backend onnxruntime (backbone + neck in onnxruntime, heads
in PyTorch) scores the mAP of the PyTorch model within 0.3 pt on 32 validation scenes; their attention and MLP
matmuls run on integer kernels at W8A8."""
import json
import os

import pytest
from test_tools.test_detection import (SCENES, SCENES_PTQ, VIT_SCENES, VIT_SCENES_PTQ, checkpoint_of,  # noqa: F401
                                       data_options, scenes)
from test_tools.test_train_test import run

# config, its float config, quantized points, integer matmuls at least (qkv, proj, fc1, fc2 and the 2 attention
# matmuls of each of the 6 blocks), the float mAP floor on 32 scenes
DETECTORS = {
    'swin': (SCENES_PTQ, SCENES, 76, 32, 0.3),
    'vit': (VIT_SCENES_PTQ, VIT_SCENES, 74, 36, 0.3),
}


@pytest.mark.parametrize('backbone', list(DETECTORS))
def test_scenes_detector_backbone_in_onnxruntime_keeps_its_map(backbone, scenes, tmp_path):  # noqa: F811
    config, float_config, points, integer, floor = DETECTORS[backbone]
    options = data_options(scenes) + ['test_cfg.num_images=16']
    metrics = {}
    for runtime, checkpoint in (('pytorch', checkpoint_of(float_config)),
                                ('onnxruntime', str(tmp_path / 'pytorch' / 'ptq_w8a8.pth'))):
        out = str(tmp_path / f'{runtime}.json')
        log = run(['tools/test.py', config, checkpoint, '--work-dir', str(tmp_path / runtime), '--out', out,
                   '--backend', runtime, '--cfg-options', *options], timeout=900)
        with open(out) as f:
            metrics[runtime] = json.load(f)
    assert f'OnnxRuntimeHook: exported {points} quantized points' in log and 'testing it as it is' in log
    kernels = log.split('OnnxRuntimeHook: ')[2].split(' matmuls/convs on integer kernels')[0]
    assert int(kernels.split('/')[0]) >= integer
    for key in ('coco/bbox_mAP', 'coco/segm_mAP'):
        assert metrics['pytorch'][key] > floor
        assert abs(metrics['pytorch'][key] - metrics['onnxruntime'][key]) <= 0.003, (key, metrics)
    assert os.path.exists(tmp_path / 'onnxruntime' / 'w8a8.onnx')
