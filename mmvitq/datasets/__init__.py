"""Offline datasets: preparation of the data that ships in packages, read by mmpretrain's/mmdet's datasets."""
from .fashion_mnist import load_fashion_mnist, prepare_fashion_mnist
from .scenes import build_scenes, scene_settings, scenes_up_to_date
from .tree_crowns import build_tree_crowns, tree_crown_settings, tree_crowns_up_to_date

__all__ = [
    'prepare_fashion_mnist', 'load_fashion_mnist', 'build_scenes', 'scene_settings', 'scenes_up_to_date',
    'build_tree_crowns', 'tree_crown_settings', 'tree_crowns_up_to_date'
]
