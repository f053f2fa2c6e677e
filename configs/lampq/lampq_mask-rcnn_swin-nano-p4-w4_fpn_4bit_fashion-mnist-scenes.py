# LampQ at an average of 4 bits on the Swin backbone of the Fashion-MNIST scenes Mask R-CNN (FPN and heads stay
# float): the Fisher information comes from the detection losses (RPN, box, mask) on 64 training scenes, then
# the backbone is calibrated at its widths on 256 scenes as the PTQ baseline configs/ptq/ptq-minmax_mask-rcnn_...
#   python tools/test.py THIS_CONFIG checkpoints/mask-rcnn_swin-nano-p4-w4_fpn_fashion-mnist-scenes-c85f6cc8.pth
_base_ = ['../ptq/ptq-minmax_mask-rcnn_swin-nano-p4-w4_fpn_8w8a_fashion-mnist-scenes.py']
model = dict(backbone=dict(qconfig=dict(w_bits=4, a_bits=4)))
test_cfg = dict(_delete_=True, type='LampQTestLoop', weight_bits=4.0, bits=(2, 3, 4, 5, 6, 8), rounds=3,
                search_images=64, num_images=256)
