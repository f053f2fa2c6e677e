"""Zero-shot calibration data: images optimised from noise through the float classifier, no real image used.

Each synthetic image starts as Gaussian noise (in the model's normalised input space) and is optimised so that
the float model puts it in a random target class (cross-entropy) while its patch tokens stay diverse: the
differential entropy of the pairwise cosine similarities between the tokens entering each attention block
is maximised, as PSAQ-ViT does, since noise and collapsed images give near-constant similarities whereas
natural images give a wide spread.
"""
import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .sensitivity import Unit, float_units


def similarity_entropy(tokens: Tensor, samples: int = 128, bandwidth: float = 0.05) -> Tensor:
    """Mean over images of the differential entropy (Gaussian-kernel density) of the cosine similarities
    between all pairs of tokens of `tokens` [B, N, C], on at most `samples` pairs per image."""
    t = F.normalize(tokens.float(), dim=-1)
    n = t.shape[1]
    rows, cols = torch.triu_indices(n, n, 1, device=t.device)
    if rows.numel() > samples:  # an even subset of the pairs, the same for every image
        keep = torch.linspace(0, rows.numel() - 1, samples, device=t.device).long()
        rows, cols = rows[keep], cols[keep]
    values = (t[:, rows] * t[:, cols]).sum(-1)  # [B, P]
    z = (values[:, :, None] - values[:, None, :]) / bandwidth
    density = torch.exp(-0.5 * z.square()).mean(-1) / (bandwidth * math.sqrt(2 * math.pi))
    return -density.clamp_min(1e-12).log().mean(-1).mean()


def _optimise(model: nn.Module, token_points: Sequence[nn.Module], images: Tensor, labels: Tensor, steps: int,
              lr: float, entropy_weight: float) -> Tensor:
    """`images` after `steps` Adam steps on cross-entropy to `labels` minus the weighted token-similarity entropy."""
    images = images.clone().requires_grad_()
    optimizer = torch.optim.Adam([images], lr=lr)
    tokens: list[Tensor] = []
    handles = [m.register_forward_pre_hook(lambda module, args: tokens.append(args[0])) for m in token_points]
    try:
        for _ in range(steps):
            tokens.clear()
            logits = model(images, mode='tensor')
            entropy = torch.stack([similarity_entropy(t.flatten(0, -3)) for t in tokens]).mean()
            loss = F.cross_entropy(logits, labels) - entropy_weight * entropy
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        for handle in handles:
            handle.remove()
    return images.detach()


def synthesize_batches(model: nn.Module, units: Sequence[Unit], num_images: int, batch_size: int,
                       image_shape: Sequence[int], num_classes: int, steps: int = 200, lr: float = 0.25,
                       entropy_weight: float = 1.0, seed: int = 0) -> list[dict]:
    """`num_images` synthetic images in batches (dicts of `inputs` and `data_samples` with their target labels),
    optimised through the float classifier `model` (its quantizers off); only the images are trained."""
    from mmpretrain.structures import DataSample
    token_points = [u.module for u in units if u.module_type == 'qkv']
    if not token_points:
        raise ValueError('LampQ synthetic data: the model has no attention qkv layer to read patch tokens from')
    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    params = [p for p in model.parameters() if p.requires_grad]
    batches = []
    try:
        for p in params:
            p.requires_grad_(False)
        with float_units(units):
            for start in range(0, num_images, batch_size):
                count = min(batch_size, num_images - start)
                noise = torch.randn(count, *image_shape, generator=generator).to(device)
                labels = torch.randint(0, num_classes, (count, ), generator=generator)
                images = _optimise(model, token_points, noise, labels.to(device), steps, lr, entropy_weight)
                batches.append(dict(inputs=images, data_samples=[DataSample().set_gt_label(int(y)) for y in labels]))
    finally:
        for p in params:
            p.requires_grad_(True)
    return batches
