# LampQ at an average of 4 bits per weight and per activation on the float DeiT-tiny of Fashion-MNIST:
# the bit allocation is searched (type-aware Fisher sensitivity, ILP, 3 rounds) on 256 training images, then
# every quantizer is calibrated at its width as the PTQ baseline it is compared with (percentile ranges,
# per-channel activations; configs/ptq/ptq-percentile-channel_...) and the model is tested.
#   python tools/test.py THIS_CONFIG checkpoints/deit-tiny-p4_fashion-mnist-c4de163e.pth
_base_ = ['../ptq/ptq-percentile-channel_deit-tiny-p4_4w4a_fashion-mnist.py']
test_cfg = dict(_delete_=True, type='LampQTestLoop', weight_bits=4.0, bits=(2, 3, 4, 5, 6, 8), rounds=3,
                search_images=256, num_images=512)
