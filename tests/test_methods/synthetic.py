"""Synthetic training batches shaped for a config's model (classification or detection), for config tests."""
import torch
from mmengine.config import ConfigDict


def fake_batch(model_cfg: ConfigDict, scope: str) -> dict:
    """Two synthetic training samples for `model_cfg` (uint8 images as the loaders give)."""
    g = torch.Generator().manual_seed(0)
    if scope == 'mmdet':
        from mmdet.testing import demo_mm_inputs
        roi_head = model_cfg.roi_head
        classes = roi_head.bbox_head.num_classes
        batch = demo_mm_inputs(batch_size=2, image_shapes=[(3, 128, 128)] * 2, num_items=[3, 2],
                               num_classes=max(classes, 2), with_mask=roi_head.get('mask_head') is not None)
        for sample in batch['data_samples']:
            sample.gt_instances.labels %= classes
        return batch
    from mmpretrain.structures import DataSample
    channels = model_cfg.backbone.get('in_channels', 3)
    size = model_cfg.backbone.get('img_size', 224)
    return dict(inputs=[torch.randint(0, 256, (channels, size, size), dtype=torch.uint8, generator=g)
                        for _ in range(2)],
                data_samples=[DataSample().set_gt_label(i) for i in range(2)])
