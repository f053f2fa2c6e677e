"""Weight oscillation tracking: how often a quantized weight's integer value reverses its last change."""
from typing import Optional

import torch
from torch import Tensor


class OscillationTracker:
    """Per layer, the EMA of the fraction of weights that oscillate in an iteration.

    A weight oscillates when its integer value changes in the direction opposite to its previous change
    (e.g. 3 -> 4 -> 3). `update` takes the layer's integer codes after each optimiser step.

    Args:
        momentum: weight of the newest iteration in the EMA.
    """

    def __init__(self, momentum: float = 0.01) -> None:
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 < momentum <= 1:
            raise ValueError(f'momentum must be a number in (0, 1], got {momentum!r}')
        self.momentum = float(momentum)
        self.codes: Optional[Tensor] = None
        self.direction: Optional[Tensor] = None
        self.ema = 0.0

    def update(self, codes: Tensor) -> float:
        """Record the integer codes of one iteration; returns the fraction that oscillated in it."""
        codes = codes.detach().to(torch.int16)
        if self.codes is None:
            self.codes, self.direction = codes, torch.zeros_like(codes)
            return 0.0
        step = torch.sign(codes - self.codes)
        oscillated = (step * self.direction) < 0
        rate = oscillated.float().mean().item()
        self.direction = torch.where(step != 0, step, self.direction)
        self.codes = codes
        self.ema = self.momentum * rate + (1 - self.momentum) * self.ema
        return rate

    def state_dict(self) -> dict:
        return dict(codes=self.codes, direction=self.direction, ema=self.ema)

    def load_state_dict(self, state: dict) -> None:
        self.codes, self.direction, self.ema = state['codes'], state['direction'], state['ema']
