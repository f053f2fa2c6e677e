# Zero-shot LampQ at an average of 4 bits: no real image is read; 128 images optimised from noise through the float
# ViT (random target classes, diverse patch-token similarities; 200 Adam steps) serve for the search and the
# calibration.
#   python tools/test.py THIS_CONFIG checkpoints/deit-tiny-p4_fashion-mnist-c4de163e.pth
_base_ = ['./lampq_deit-tiny-p4_4bit_fashion-mnist.py']
test_cfg = dict(data='synthetic', search_images=128, synthetic=dict(image_shape=(1, 28, 28), num_classes=10))
