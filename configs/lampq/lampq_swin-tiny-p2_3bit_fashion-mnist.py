# LampQ at an average of 3 bits on the float Swin of Fashion-MNIST (see lampq_swin-tiny-p2_4bit_fashion-mnist.py).
_base_ = ['./lampq_swin-tiny-p2_4bit_fashion-mnist.py']
test_cfg = dict(weight_bits=3.0)
