# Float baseline: the small Swin on Fashion-MNIST.
_base_ = [
    '../_base_/models/swin-tiny-p2_fashion-mnist.py', '../_base_/datasets/fashion_mnist.py',
    '../_base_/schedules/fashion_mnist_adamw.py', '../_base_/default_runtime.py'
]
