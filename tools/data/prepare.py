"""Prepare the offline datasets under data/ (idempotent; nothing is downloaded). A set is kept only when it is
complete and built with the same settings (a build killed half-way, or other settings, is built again).

    python tools/data/prepare.py [--out data]
"""
import argparse
import os

from mmvitq.datasets import (build_scenes, build_tree_crowns, load_fashion_mnist, prepare_fashion_mnist, scene_settings,
                             scenes_up_to_date, tree_crown_settings, tree_crowns_up_to_date)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='data', help='root folder of the prepared datasets')
    parser.add_argument('--scenes-train', type=int, default=2000, help='Fashion-MNIST scenes for training')
    parser.add_argument('--scenes-val', type=int, default=500, help='Fashion-MNIST scenes for validation')
    parser.add_argument('--canvas', type=int, default=128, help='scene size in pixels')
    args = parser.parse_args()
    target = os.path.join(args.out, 'fashion_mnist')
    written = prepare_fashion_mnist(target)
    print(f'fashion_mnist: {target} ({"unpacked " + str(len(written)) + " files" if written else "up to date"})')

    scenes = os.path.join(args.out, 'fashion_mnist_scenes')
    for split, source, count, seed in (('train', 'train', args.scenes_train, 0), ('val', 'test', args.scenes_val, 1)):
        if scenes_up_to_date(scenes, split, scene_settings(count, source, canvas=args.canvas, seed=seed)):
            print(f'fashion_mnist_scenes/{split}: up to date')
            continue
        items, labels, classes = load_fashion_mnist(target, source)
        coco = build_scenes(items, labels, classes, count, scenes, split, canvas=args.canvas, seed=seed, source=source)
        print(f'fashion_mnist_scenes/{split}: {len(coco["images"])} scenes, {len(coco["annotations"])} objects '
              f'(items from the {source} split)')

    trees = os.path.join(args.out, 'tree_crowns')
    if tree_crowns_up_to_date(trees, tree_crown_settings()):
        print('tree_crowns: up to date')
    else:
        for split, coco in build_tree_crowns(trees).items():
            print(f'tree_crowns/{split}: {len(coco["images"])} tiles, {len(coco["annotations"])} boxes')


if __name__ == '__main__':
    main()
