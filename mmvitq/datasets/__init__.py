"""Offline datasets: preparation of the data that ships in packages, read by mmpretrain's/mmdet's datasets."""
from .fashion_mnist import load_fashion_mnist, prepare_fashion_mnist
from .scenes import build_scenes
from .tree_crowns import build_tree_crowns

__all__ = ['prepare_fashion_mnist', 'load_fashion_mnist', 'build_scenes', 'build_tree_crowns']
