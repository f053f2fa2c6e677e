# Float baseline: the small Swin on Fashion-MNIST. It costs ~3x the ViT per step on CPU, so it trains
# 8 epochs instead of 12 (the cosine decay follows max_epochs).
_base_ = [
    '../_base_/models/swin-tiny-p2_fashion-mnist.py', '../_base_/datasets/fashion_mnist.py',
    '../_base_/schedules/fashion_mnist_adamw.py', '../_base_/default_runtime.py'
]
train_cfg = dict(max_epochs=8)
