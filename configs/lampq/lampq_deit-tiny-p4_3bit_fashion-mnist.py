# LampQ at an average of 3 bits per weight and per activation (see lampq_deit-tiny-p4_4bit_fashion-mnist.py).
_base_ = ['./lampq_deit-tiny-p4_4bit_fashion-mnist.py']
test_cfg = dict(weight_bits=3.0)
