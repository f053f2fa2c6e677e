"""mmdet Mask R-CNN with QuantSwinTransformer: built from mmdet's own config, loss and predict run."""
import torch
from mmengine.hub import get_config
from mmengine.registry import DefaultScope

from mmvitq.models import QuantMatMul
from mmvitq.models.backbones import QuantDetSwinTransformer
from mmvitq.quantizers import BaseQuantizer, calibration


def build_mask_rcnn():
    import mmvitq  # noqa: F401
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = get_config('mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py').model
    # A small Swin (no download: no init_cfg), 4-bit, with the detector around it unchanged.
    cfg.backbone.update(type='QuantSwinTransformer', embed_dims=32, depths=[1, 1, 1, 1], num_heads=[1, 2, 4, 8],
                        init_cfg=None, qconfig=dict(w_bits=4, a_bits=4))
    cfg.neck.in_channels = [32, 64, 128, 256]
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg)
    model.init_weights()
    return model


def test_mask_rcnn_with_quant_swin_loss_and_predict():
    from mmdet.testing import demo_mm_inputs
    torch.manual_seed(0)
    model = build_mask_rcnn()
    assert isinstance(model.backbone, QuantDetSwinTransformer)
    matmuls = [m for m in model.backbone.modules() if isinstance(m, QuantMatMul)]
    assert len(matmuls) == 2 * 4  # q @ k^T and attn @ v in each of the 4 blocks
    packed = demo_mm_inputs(2, [[3, 128, 128], [3, 128, 128]], num_items=[3, 2], num_classes=80, with_mask=True)
    data = model.data_preprocessor(packed, True)
    with torch.no_grad(), calibration(model):
        model.backbone(data['inputs'])
    assert all(bool(q.calibrated) for q in model.backbone.modules() if isinstance(q, BaseQuantizer))
    model.train()
    losses = model(**data, mode='loss')
    total = sum(v for k, v in losses.items() if 'loss' in k and torch.is_tensor(v)) + sum(
        sum(v) for k, v in losses.items() if 'loss' in k and isinstance(v, list))
    assert torch.isfinite(total)
    total.backward()
    assert model.backbone.stages[0].blocks[0].attn.w_msa.qkv.weight.grad is not None
    model.eval()
    with torch.no_grad():
        results = model(**model.data_preprocessor(packed, False), mode='predict')
    assert len(results) == 2 and results[0].pred_instances.bboxes.shape[-1] == 4


def test_scoped_swin_type_follows_the_default_scope():
    """`type='mmvitq.QuantSwinTransformer'` is mmdet's Swin in mmdet configs and mmpretrain's elsewhere."""
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS

    from mmvitq.models.backbones import QuantSwinTransformer
    small = dict(embed_dims=32, depths=[1, 1], num_heads=[1, 2], init_cfg=None)
    with DefaultScope.overwrite_default_scope('mmdet'):
        det = MMDET_MODELS.build(dict(type='mmvitq.QuantSwinTransformer', **small, strides=(4, 2),
                                      out_indices=(0, 1), qconfig=dict(w_bits=4)))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        cls = MMPRETRAIN_MODELS.build(dict(type='mmvitq.QuantSwinTransformer', arch=dict(
            embed_dims=32, depths=[1, 1], num_heads=[1, 2]), img_size=32, window_size=4, out_indices=(1, ),
            qconfig=dict(w_bits=4)))
    assert type(det) is QuantDetSwinTransformer and type(cls) is QuantSwinTransformer
    assert int(det.stages[0].blocks[0].attn.w_msa.qkv.weight_quant.bits) == 4


def test_dino_with_quant_swin_at_w4a4_stays_finite():
    """mmdet's DINO Swin-L config, backbone swapped for QuantSwinTransformer (shrunk, random weights), one image:
    at W4A4 every quantizer keeps a finite scale and the loss (Hungarian matching included) is finite."""
    import mmvitq  # noqa: F401
    from mmdet.registry import MODELS
    from mmdet.testing import demo_mm_inputs
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = get_config('mmdet::dino/dino-5scale_swin-l_8xb2-12e_coco.py').model
    cfg.backbone.update(type='QuantSwinTransformer', embed_dims=24, depths=[1, 1, 1, 1], num_heads=[1, 2, 4, 8],
                        window_size=7, init_cfg=None, with_cp=False, qconfig=dict(w_bits=4, a_bits=4))
    cfg.neck.in_channels = [24, 48, 96, 192]
    cfg.update(num_queries=50, encoder=dict(cfg.encoder, num_layers=1), decoder=dict(cfg.decoder, num_layers=2))
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg)
    model.init_weights()
    packed = demo_mm_inputs(1, [[3, 160, 192]], num_items=[3], num_classes=80)
    model.train()
    losses = model(**model.data_preprocessor(packed, True), mode='loss')
    scales = [q.scale for q in model.backbone.modules() if isinstance(q, BaseQuantizer) and q.scale.numel()]
    assert scales and all(torch.isfinite(s).all() and (s > 0).all() for s in scales)
    assert all(torch.isfinite(v).all() for k, v in losses.items() if 'loss' in k and torch.is_tensor(v))
