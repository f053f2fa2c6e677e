"""LampQ's allocation as a picture: a per-layer heatmap of weight and activation bits (PNG)."""
from typing import Mapping

from ...utils import atomic_path


def plot_allocation(allocation: Mapping[str, Mapping[str, int]], path: str, title: str = 'LampQ allocation') -> None:
    """Write a heatmap of `allocation` ({layer path: dict(w_bits=., a_bits=.)}, in model order) to `path`."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np

    layers = list(allocation)
    grid = np.full((2, len(layers)), np.nan)
    for j, layer in enumerate(layers):
        for i, key in enumerate(('w_bits', 'a_bits')):
            if key in allocation[layer]:
                grid[i, j] = allocation[layer][key]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.28 * len(layers) + 2), 3.6))
    image = ax.imshow(grid, cmap='viridis', aspect='auto', vmin=2, vmax=8)
    for (i, j), bits in np.ndenumerate(grid):
        if not np.isnan(bits):
            ax.text(j, i, f'{bits:.0f}', ha='center', va='center', fontsize=7, color='w' if bits < 6 else 'k')
    ax.set_yticks([0, 1], ['weight', 'input'])
    ax.set_xticks(range(len(layers)), [_short(p) for p in layers], rotation=90, fontsize=6)
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label='bits')
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def _short(path: str) -> str:
    """A layer path without the container names every layer shares."""
    for noise in ('backbone.', 'core.', 'layers.', 'stages.', 'blocks.', 'w_msa.'):
        path = path.replace(noise, '')
    return path
