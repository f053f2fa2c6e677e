"""Oscillation curves as a picture: the model's oscillation rate over training, one line per run (PNG)."""
from typing import Mapping, Sequence

from ...utils import atomic_path


def plot_oscillation(runs: Mapping[str, Sequence[tuple[int, float]]], path: str,
                     title: str = 'Weight oscillation during QAT') -> None:
    """Write a line plot of {run name: [(iteration, oscillating fraction in %), ...]} to `path`."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for name, points in runs.items():
        if points:
            iters, rates = zip(*points)
            ax.plot(iters, rates, label=name)
    ax.set_xlabel('iteration')
    ax.set_ylabel('oscillating weights per iteration, EMA (%)')
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if any(runs.values()):
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
