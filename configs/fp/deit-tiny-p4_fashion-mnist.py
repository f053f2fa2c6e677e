# Float baseline: the small DeiT-style ViT on Fashion-MNIST (the model every method quantizes).
_base_ = [
    '../_base_/models/deit-tiny-p4_fashion-mnist.py', '../_base_/datasets/fashion_mnist.py',
    '../_base_/schedules/fashion_mnist_adamw.py', '../_base_/default_runtime.py'
]
