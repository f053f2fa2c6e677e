# LampQ at an average of 4 bits on the windowed ViT backbone of the Fashion-MNIST scenes Mask R-CNN (simple feature
# pyramid and heads stay float): the Fisher information comes from the detection losses (RPN, box, mask) on 64
# training scenes, then the backbone is calibrated at its widths on 256 scenes as the PTQ baseline does.
#   python tools/test.py THIS_CONFIG checkpoints/mask-rcnn_vit-nano-p8-w8_simple-fpn_fashion-mnist-scenes-e374497f.pth
_base_ = ['../ptq/ptq-minmax_mask-rcnn_vit-nano-p8-w8_simple-fpn_8w8a_fashion-mnist-scenes.py']
model = dict(backbone=dict(qconfig=dict(w_bits=4, a_bits=4)))
test_cfg = dict(_delete_=True, type='LampQTestLoop', weight_bits=4.0, bits=(2, 3, 4, 5, 6, 8), rounds=3,
                search_images=64, num_images=256)
