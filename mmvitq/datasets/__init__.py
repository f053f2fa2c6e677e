"""Offline datasets: preparation of the data that ships in packages, read by mmpretrain's/mmdet's datasets."""
from .fashion_mnist import prepare_fashion_mnist

__all__ = ['prepare_fashion_mnist']
