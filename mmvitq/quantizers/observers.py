"""Range observers: turn the batches seen during calibration into a clipping range, hence scale and zero point."""
import copy
from typing import Optional

import torch
from torch import Tensor

from ..ops import fake_quant_per_channel, reference


def qparams_from_range(lo: Tensor, hi: Tensor, quant_min: int, quant_max: int,
                       symmetric: bool) -> tuple[Tensor, Tensor]:
    """Per-row scale and zero point mapping [lo, hi] (widened to include 0) onto [quant_min, quant_max]."""
    # reference.token_qparams derives the qparams of each row from its min and max; a row of (lo, hi) has them.
    return reference.token_qparams(torch.stack([lo, hi], dim=-1), quant_min, quant_max, symmetric)


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Observer:
    """Accumulates statistics of [C, M] batches for a `quant_min..quant_max` grid; `qparams()` gives [C] tensors.

    Each row holds the values of one scale (the quantizer reshapes its input for its granularity). The
    statistics are plain tensor attributes, not module state: they are only needed until the quantizer
    freezes its scale and zero point. `grid_free`: the statistics do not depend on the grid, so `on_grid`
    can reuse them for another bit width.
    """

    grid_free = True

    def __init__(self, quant_min: int, quant_max: int, symmetric: bool) -> None:
        self.quant_min, self.quant_max, self.symmetric = quant_min, quant_max, symmetric
        self.num_batches = 0

    def update(self, rows: Tensor) -> None:
        """Add one batch, shaped [C, M]."""
        self._update(rows)
        self.num_batches += 1

    def _update(self, rows: Tensor) -> None:
        raise NotImplementedError

    def min_max(self) -> tuple[Tensor, Tensor]:
        """Per-row clipping range [C], [C] from the batches seen so far."""
        raise NotImplementedError

    def qparams(self) -> tuple[Tensor, Tensor]:
        """Per-row scale and zero point, float32 [C] each."""
        return qparams_from_range(*self.min_max(), self.quant_min, self.quant_max, self.symmetric)

    def on_grid(self, quant_min: int, quant_max: int) -> 'Observer':
        """A copy with the same statistics for a `quant_min..quant_max` grid (grid-free observers only)."""
        if not self.grid_free:
            raise ValueError(f'{type(self).__name__} statistics depend on the grid; observe again for another one')
        other = copy.copy(self)
        other.quant_min, other.quant_max = quant_min, quant_max
        return other


class MinMaxObserver(Observer):
    """Running min and max over all batches."""

    lo: Optional[Tensor] = None
    hi: Optional[Tensor] = None

    def _update(self, rows: Tensor) -> None:
        lo, hi = rows.amin(dim=1), rows.amax(dim=1)
        self.lo = lo if self.lo is None else torch.minimum(self.lo, lo)
        self.hi = hi if self.hi is None else torch.maximum(self.hi, hi)

    def min_max(self) -> tuple[Tensor, Tensor]:
        return self.lo, self.hi


class EMAObserver(Observer):
    """Exponential moving average of each batch's min and max: stat += momentum * (batch_stat - stat)."""

    lo: Optional[Tensor] = None
    hi: Optional[Tensor] = None

    def __init__(self, quant_min: int, quant_max: int, symmetric: bool, momentum: float = 0.1) -> None:
        super().__init__(quant_min, quant_max, symmetric)
        if not (_is_real(momentum) and 0 < momentum <= 1):
            raise ValueError(f'momentum must be a float in (0, 1], got {momentum!r}')
        self.momentum = momentum

    def _update(self, rows: Tensor) -> None:
        lo, hi = rows.amin(dim=1), rows.amax(dim=1)
        if self.lo is None:
            self.lo, self.hi = lo, hi
        else:
            self.lo, self.hi = torch.lerp(self.lo, lo, self.momentum), torch.lerp(self.hi, hi, self.momentum)

    def min_max(self) -> tuple[Tensor, Tensor]:
        return self.lo, self.hi


def row_percentile(rows: Tensor, q: float) -> Tensor:
    """The q-th percentile (0..100) of each row, linearly interpolated like torch.quantile.

    Built on kthvalue, so unlike torch.quantile it has no limit on the number of elements.
    """
    pos = q / 100 * (rows.shape[1] - 1)
    k = int(pos)
    below = rows.kthvalue(k + 1, dim=1).values
    if pos == k:
        return below
    above = rows.kthvalue(k + 2, dim=1).values
    return torch.lerp(below, above, pos - k)


class PercentileObserver(Observer):
    """Each batch's (100 - p)-th and p-th percentiles, averaged over batches: clips rare outliers."""

    def __init__(self, quant_min: int, quant_max: int, symmetric: bool, percentile: float = 99.99) -> None:
        super().__init__(quant_min, quant_max, symmetric)
        if not (_is_real(percentile) and 50 < percentile <= 100):
            raise ValueError(f'percentile must be a float in (50, 100], got {percentile!r}')
        self.percentile = percentile
        self.lo_sum = self.hi_sum = 0.0

    def _update(self, rows: Tensor) -> None:
        self.lo_sum = self.lo_sum + row_percentile(rows, 100 - self.percentile)
        self.hi_sum = self.hi_sum + row_percentile(rows, self.percentile)

    def min_max(self) -> tuple[Tensor, Tensor]:
        return self.lo_sum / self.num_batches, self.hi_sum / self.num_batches


class MSEObserver(MinMaxObserver):
    """Running min/max shrunk by the ratio, among k / num_candidates for k = 1..num_candidates, of least error.

    Each batch is fake-quantized with every candidate ratio of the running range (this batch included) and
    the squared errors are summed per candidate and row; `min_max` applies each row's best ratio.
    """

    errors: Optional[Tensor] = None
    grid_free = False

    def __init__(self, quant_min: int, quant_max: int, symmetric: bool, num_candidates: int = 100) -> None:
        super().__init__(quant_min, quant_max, symmetric)
        if isinstance(num_candidates, bool) or not isinstance(num_candidates, int) or num_candidates < 1:
            raise ValueError(f'num_candidates must be an int >= 1, got {num_candidates!r}')
        self.ratios = torch.arange(1, num_candidates + 1, dtype=torch.float32) / num_candidates

    def _update(self, rows: Tensor) -> None:
        super()._update(rows)
        errors = torch.stack([self._error(rows, *self._clip(ratio)) for ratio in self.ratios])
        self.errors = errors if self.errors is None else self.errors + errors

    def _clip(self, ratio: Tensor) -> tuple[Tensor, Tensor]:
        return ratio * self.lo, ratio * self.hi

    def _error(self, rows: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
        scale, zero_point = qparams_from_range(lo, hi, self.quant_min, self.quant_max, self.symmetric)
        fq = fake_quant_per_channel(rows, scale, zero_point, 0, self.quant_min, self.quant_max)
        return (fq - rows).square().sum(dim=1)

    def min_max(self) -> tuple[Tensor, Tensor]:
        best = self.ratios.to(self.errors.device)[self.errors.argmin(dim=0)]
        return self._clip(best)


OBSERVERS: dict[str, type[Observer]] = {
    'minmax': MinMaxObserver,
    'ema': EMAObserver,
    'percentile': PercentileObserver,
    'mse': MSEObserver,
}
