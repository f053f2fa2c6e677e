"""Plain ViTs in mmdet detectors: ViTDet's windowed attention and simple feature pyramid, checked against
hand-computed shapes and a per-window brute force; the ViTDet-B COCO recipe builds and trains one iteration."""
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.models.backbones.vision_transformer import TransformerEncoderLayer
from mmpretrain.models.utils import resize_pos_embed

from mmvitq.models import QuantMatMul, quantized_layers
from mmvitq.models.necks import LayerNorm2d, SimpleFeaturePyramid
from mmvitq.models.vitdet import WindowedEncoderLayer, WindowedVisionTransformer, window_merge, window_partition
from mmvitq.quantizers import BaseQuantizer, calibration

SMALL = dict(arch=dict(embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64), patch_size=8,
             with_cls_token=False, out_type='featmap', final_norm=False)


@pytest.mark.parametrize('scales,in_hw,expected', [
    # ViTDet-B: a stride-16 64x64 map of 1024 px -> strides 4, 8, 16, 32 and 64 (p6 by subsampling p5)
    ((4.0, 2.0, 1.0, 0.5), (64, 64), [(256, 256), (128, 128), (64, 64), (32, 32), (16, 16)]),
    # the scenes detector: a stride-8 16x16 map of 128 px -> strides 4, 8, 16, then 32 and 64 by subsampling
    ((2.0, 1.0, 0.5), (16, 16), [(32, 32), (16, 16), (8, 8), (4, 4), (2, 2)]),
    # odd sizes: max pooling floors, kernel-1 stride-2 subsampling rounds up
    ((1.0, 0.5), (7, 5), [(7, 5), (3, 2), (2, 1)]),
])
def test_simple_feature_pyramid_strides_and_shapes(scales, in_hw, expected):
    neck = SimpleFeaturePyramid(in_channels=[48], out_channels=16, scale_factors=scales, num_outs=len(expected))
    outs = neck((torch.randn(2, 48, *in_hw), ))
    assert [tuple(o.shape) for o in outs] == [(2, 16, *hw) for hw in expected]


def test_simple_feature_pyramid_layers_are_vitdets():
    neck = SimpleFeaturePyramid(in_channels=768, out_channels=256, num_outs=5)
    up4, up2, same, down2 = (stage[0] for stage in neck.stages)
    # x4: deconv 768 -> 384, LayerNorm, GELU, deconv 384 -> 192; x2: deconv 768 -> 384; x1: nothing; x1/2: max pool
    assert [type(m).__name__ for m in up4] == ['ConvTranspose2d', 'LayerNorm2d', 'GELU', 'ConvTranspose2d']
    assert (up4[0].in_channels, up4[0].out_channels, up4[3].out_channels) == (768, 384, 192)
    assert [(type(m).__name__, m.out_channels) for m in up2] == [('ConvTranspose2d', 384)]
    assert len(same) == 0 and [type(m).__name__ for m in down2] == ['MaxPool2d']
    for stage, width in zip(neck.stages, (192, 384, 768, 768)):
        lateral, output = stage[1], stage[2]
        assert (lateral.conv.in_channels, lateral.conv.kernel_size, output.conv.kernel_size) == (width, (1, 1), (3, 3))
        assert lateral.conv.bias is None and isinstance(lateral.norm, LayerNorm2d) and not output.with_activation


def test_layer_norm_2d_is_layer_norm_over_channels():
    norm = LayerNorm2d(6)
    torch.nn.init.normal_(norm.weight), torch.nn.init.normal_(norm.bias)
    x = torch.randn(2, 6, 3, 4)
    mean, var = x.mean(1, keepdim=True), x.var(1, unbiased=False, keepdim=True)
    expected = (x - mean) / torch.sqrt(var + 1e-6) * norm.weight[:, None, None] + norm.bias[:, None, None]
    torch.testing.assert_close(norm(x), expected)


def test_pyramid_levels_feed_mmcv_roi_align_as_they_are():
    """mmcv's CPU RoIAlign ignores strides: the levels must be contiguous, or the RoI heads see scrambled
    features (a permuted LayerNorm output made the scenes ViT detector learn nothing)."""
    from mmcv.ops import roi_align
    neck = SimpleFeaturePyramid(in_channels=16, out_channels=8, scale_factors=(2.0, 1.0), num_outs=2)
    rois = torch.tensor([[0., 2., 3., 11., 13.], [1., 0., 0., 7., 5.]])
    for level in neck((torch.randn(2, 16, 8, 8), )):
        assert level.is_contiguous()
        torch.testing.assert_close(roi_align(level, rois, (3, 3), 0.5, 2, 'avg', True),
                                   roi_align(level.clone(memory_format=torch.contiguous_format), rois, (3, 3), 0.5, 2,
                                             'avg', True))


def test_simple_feature_pyramid_bad_arguments_are_named():
    with pytest.raises(ValueError, match='scale_factors must be powers of 2'):
        SimpleFeaturePyramid(8, 8, scale_factors=(3.0, ))
    with pytest.raises(ValueError, match='in_channels'):
        SimpleFeaturePyramid([8, 16], 8)
    with pytest.raises(ValueError, match='num_outs'):
        SimpleFeaturePyramid(8, 8, scale_factors=(2.0, 1.0), num_outs=1)


def test_window_partition_pads_and_merge_inverts():
    x = torch.randn(2, 5 * 7, 3)
    windows, padded = window_partition(x, (5, 7), 4)
    assert padded == (8, 8) and windows.shape == (2 * 4, 16, 3)
    # window (row 0, col 1) of image 1 holds tokens (r, c) for r < 4, 4 <= c < 7, then zeros
    grid = x.view(2, 5, 7, 3)
    torch.testing.assert_close(windows[4 + 1].view(4, 4, 3)[:, :3], grid[1, :4, 4:7], rtol=0, atol=0)
    assert windows[4 + 1].view(4, 4, 3)[:, 3].abs().sum() == 0
    torch.testing.assert_close(window_merge(windows, (5, 7), padded, 4), x, rtol=0, atol=0)


def per_window_reference(model: WindowedVisionTransformer, images: torch.Tensor) -> torch.Tensor:
    """Brute force: each windowed block run as mmpretrain's plain layer on every window's tokens on its own (exact
    when the map tiles into windows: all but attention act per token)."""
    x, (H, W) = model.patch_embed(images)
    x = x + resize_pos_embed(model.pos_embed, model.patch_resolution, (H, W), mode=model.interpolate_mode,
                             num_extra_tokens=0)
    ws = model.window_size
    for i, layer in enumerate(model.layers):
        if i in model.global_attn_indexes:
            x = TransformerEncoderLayer.forward(layer, x)
            continue
        grid, out = x.view(x.shape[0], H, W, -1), torch.empty_like(x).view(x.shape[0], H, W, -1)
        for r in range(0, H, ws):
            for c in range(0, W, ws):
                tokens = grid[:, r:r + ws, c:c + ws].reshape(x.shape[0], ws * ws, -1)
                out[:, r:r + ws, c:c + ws] = TransformerEncoderLayer.forward(layer, tokens).view(x.shape[0], ws, ws, -1)
        x = out.view_as(x)
    return x.transpose(1, 2).reshape(x.shape[0], -1, H, W)


def test_windowed_attention_matches_per_window_brute_force():
    torch.manual_seed(0)
    model = WindowedVisionTransformer(**SMALL, img_size=64, window_size=4, global_attn_indexes=(1, ))
    model.eval()  # mmpretrain's train() returns None
    assert [type(layer) for layer in model.layers] == [WindowedEncoderLayer, TransformerEncoderLayer,
                                                         WindowedEncoderLayer]
    images = torch.randn(2, 3, 64, 96)  # an 8x12 map: 2x3 windows of 4x4
    with torch.no_grad():
        out, = model(images)
        torch.testing.assert_close(out, per_window_reference(model, images), rtol=1e-5, atol=1e-5)
        # a window as large as the map is global attention: mmpretrain's ViT with the same weights
        model.window_size = 8
        for i in (0, 2):
            model.layers[i].window_size = 8
        plain = WindowedVisionTransformer(**SMALL, img_size=64)
        plain.load_state_dict(model.state_dict())
        plain.eval()
        torch.testing.assert_close(model(images[..., :64])[0], plain(images[..., :64])[0])


def test_windowed_vit_checks_its_arguments():
    with pytest.raises(ValueError, match='with_cls_token=False'):
        WindowedVisionTransformer(**dict(SMALL, with_cls_token=True), window_size=4)
    with pytest.raises(ValueError, match='global_attn_indexes must lie in'):
        WindowedVisionTransformer(**SMALL, window_size=4, global_attn_indexes=(3, ))
    with pytest.raises(ValueError, match='window_size'):
        WindowedVisionTransformer(**SMALL, window_size=-1)


def test_class_token_checkpoint_loads_into_a_windowed_vit():
    """MAE/DeiT weights have a class-token position; ViTDet has no class token and another grid size."""
    source = WindowedVisionTransformer(**dict(SMALL, with_cls_token=True, out_type='cls_token'), img_size=32)
    target = WindowedVisionTransformer(**SMALL, img_size=64, window_size=4)
    target.load_state_dict({k: v for k, v in source.state_dict().items() if k != 'cls_token'})
    grid = source.pos_embed[:, 1:].reshape(1, 4, 4, -1).permute(0, 3, 1, 2)
    expected = torch.nn.functional.interpolate(grid, size=(8, 8), mode='bicubic', align_corners=False)
    torch.testing.assert_close(target.pos_embed, expected.flatten(2).transpose(1, 2))


def test_quantized_windowed_vit_equals_float_with_quantizers_off():
    from mmvitq.models.backbones import QuantVisionTransformer
    torch.manual_seed(0)
    args = dict(SMALL, img_size=64, window_size=4, global_attn_indexes=(1, ))
    float_model = WindowedVisionTransformer(**args)
    quant = QuantVisionTransformer(**args, qconfig=dict(w_bits=4, a_bits=4))
    float_model.eval(), quant.eval()
    quant.load_state_dict(float_model.state_dict(), strict=False)
    assert isinstance(quant.layers[0], WindowedEncoderLayer)
    assert sorted(quantized_layers(quant)) == sorted(
        n for n, m in float_model.named_modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)))
    assert len([m for m in quant.modules() if isinstance(m, QuantMatMul)]) == 2 * 3
    images = torch.randn(2, 3, 64, 64)
    quantizers = [m for m in quant.modules() if isinstance(m, BaseQuantizer)]
    with torch.no_grad():
        with calibration(quant):
            quant(images)
        assert all(bool(q.calibrated) for q in quantizers)
        quantized, = quant(images)
        for q in quantizers:
            q.enabled = False
        torch.testing.assert_close(quant(images)[0], float_model(images)[0])
    assert (quantized - float_model(images)[0]).abs().max() > 1e-3  # the 4-bit model is another function


def test_vitdet_b_coco_recipe_builds_and_trains_one_iteration():
    """The full ViT-B Mask R-CNN and its optimizer, random weights (no download), one step on one 256 px image."""
    from mmdet.registry import MODELS
    from mmdet.testing import demo_mm_inputs
    from mmengine.optim import build_optim_wrapper
    cfg = Config.fromfile('configs/fp/mask-rcnn_vit-b-p16-w14_simple-fpn_lsj-100e_coco.py')
    cfg.model.backbone.init_cfg = None
    cfg.model.data_preprocessor.batch_augments[0].size = (256, 256)  # the recipe pads to 1024: 16x the CPU time
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
        optim = build_optim_wrapper(model, dict(cfg.optim_wrapper, type='OptimWrapper'))  # AMP needs a GPU
    model.init_weights()
    d = 768  # ViT-B/16: 12 blocks (qkv, proj, fc1, fc2, 2 LayerNorms), patch embedding, 64x64 positions
    block = (d * 3 * d + 3 * d) + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d) + 4 * d
    assert sum(p.numel() for p in model.backbone.parameters()) == 12 * block + (3 * 16 * 16 * d + d) + 64 * 64 * d
    windowed = [i for i, layer in enumerate(model.backbone.layers) if isinstance(layer, WindowedEncoderLayer)]
    assert windowed == [0, 1, 3, 4, 6, 7, 9, 10] and model.backbone.window_size == 14
    # layer-wise decay 0.7: block i at 1e-4 * 0.7 ** (12 - i), the stem at 0.7 ** 13, neck and heads at 1e-4;
    # no weight decay on LayerNorms and the position embedding
    groups = {g['param_name']: g for g in optim.optimizer.param_groups}
    assert groups['backbone.layers.11.ffn.layers.1.weight']['lr'] == pytest.approx(1e-4 * 0.7)
    assert groups['backbone.layers.0.attn.qkv.weight']['lr'] == pytest.approx(1e-4 * 0.7**12)
    assert groups['backbone.patch_embed.projection.weight']['lr'] == pytest.approx(1e-4 * 0.7**13)
    assert groups['neck.stages.0.1.conv.weight']['lr'] == pytest.approx(1e-4)
    assert groups['backbone.pos_embed']['weight_decay'] == 0 == groups['backbone.layers.3.ln1.weight']['weight_decay']
    assert groups['neck.stages.0.1.conv.weight']['weight_decay'] == 0.1
    packed = demo_mm_inputs(1, [[3, 256, 256]], num_items=[3], num_classes=80, with_mask=True)
    before = model.backbone.layers[0].attn.qkv.weight.detach().clone()
    model.train()
    losses = model.train_step(packed, optim)
    assert all(torch.isfinite(v).all() for v in losses.values())
    assert {'loss_rpn_cls', 'loss_cls', 'loss_bbox', 'loss_mask'} <= set(losses)
    assert not torch.equal(model.backbone.layers[0].attn.qkv.weight, before)
