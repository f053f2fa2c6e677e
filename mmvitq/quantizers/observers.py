"""Range observers: turn the batches seen during calibration into a clipping range, hence scale and zero point.

Non-finite values (NaN, +-inf) are left out of every statistic and counted (`nonfinite`); a scale whose
rows held no finite value at all (every value non-finite, or empty batches) cannot be calibrated and
`qparams()` raises `CalibrationError`, so a bad batch never turns into a silently broken scale.
Observers are registered by name in `mmvitq.registry.OBSERVERS` ('minmax', 'ema', 'percentile', 'mse', and LSQ's
'lsq' init), the one registry a UniformQuantizer's `observer` and an LSQQuantizer's `init` name.
"""
import copy
from typing import Optional

import torch
from torch import Tensor

from ..ops import fake_quant_per_channel, reference
from ..registry import OBSERVERS


def qparams_from_range(lo: Tensor, hi: Tensor, quant_min: int, quant_max: int,
                       symmetric: bool) -> tuple[Tensor, Tensor]:
    """Per-row scale and zero point mapping [lo, hi] (widened to include 0) onto [quant_min, quant_max]."""
    # reference.token_qparams derives the qparams of each row from its min and max; a row of (lo, hi) has them.
    return reference.token_qparams(torch.stack([lo, hi], dim=-1), quant_min, quant_max, symmetric)


class CalibrationError(ValueError):
    """A quantizer cannot be calibrated from what it observed (no finite value for some of its scales)."""


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Observer:
    """Accumulates statistics of [C, M] batches for a `quant_min..quant_max` grid; `qparams()` gives [C] tensors.

    Each row holds the values of one scale (the quantizer reshapes its input for its granularity). The
    statistics are plain tensor attributes, not module state: they are only needed until the quantizer
    freezes its scale and zero point. `grid_free`: the statistics do not depend on the grid, so `on_grid`
    can reuse them for another bit width. Subclasses implement `_update(rows, finite)`, where `finite` is
    None when every value is finite, else the [C, M] mask of the values to use.
    """

    grid_free = True

    def __init__(self, quant_min: int, quant_max: int, symmetric: bool) -> None:
        self.quant_min, self.quant_max, self.symmetric = quant_min, quant_max, symmetric
        self.num_batches = 0
        self.nonfinite = 0  # values left out because they were NaN or infinite
        self.counts: Optional[Tensor] = None  # finite values seen per row

    def update(self, rows: Tensor) -> None:
        """Add one batch, shaped [C, M] (M may be 0); non-finite values are left out and counted."""
        self.num_batches += 1
        finite = torch.isfinite(rows)
        counts = finite.sum(dim=1)
        self.counts = counts if self.counts is None else self.counts + counts
        total = int(counts.sum())
        self.nonfinite += rows.numel() - total
        if total:
            self._update(rows, None if total == rows.numel() else finite)

    def _update(self, rows: Tensor, finite: Optional[Tensor]) -> None:
        raise NotImplementedError

    def check(self) -> None:
        """Raise CalibrationError unless every row has seen at least one finite value."""
        empty = 0 if self.counts is None else int((self.counts == 0).sum())
        if self.counts is None or empty:
            single = self.counts is None or self.counts.numel() == 1
            rows = 'its scale' if single else f'{empty} of its {self.counts.numel()} scales'
            detail = (f' ({self.nonfinite} non-finite values)' if self.nonfinite
                      else ' (all empty)' if self.num_batches else '')
            seen = f'{self.num_batches} batches{detail}'
            raise CalibrationError(f'no finite value to calibrate {rows} from; it observed {seen}')

    def min_max(self) -> tuple[Tensor, Tensor]:
        """Per-row clipping range [C], [C] from the batches seen so far."""
        raise NotImplementedError

    def qparams(self) -> tuple[Tensor, Tensor]:
        """Per-row scale and zero point, float32 [C] each."""
        self.check()
        return qparams_from_range(*self.min_max(), self.quant_min, self.quant_max, self.symmetric)

    def on_grid(self, quant_min: int, quant_max: int) -> 'Observer':
        """A copy with the same statistics for a `quant_min..quant_max` grid (grid-free observers only)."""
        if not self.grid_free:
            raise ValueError(f'{type(self).__name__} statistics depend on the grid; observe again for another one')
        other = copy.copy(self)
        other.quant_min, other.quant_max = quant_min, quant_max
        return other


def batch_min_max(rows: Tensor, finite: Optional[Tensor]) -> tuple[Tensor, Tensor]:
    """Each row's min and max over its finite values (+inf and -inf for a row without any)."""
    if finite is None:
        return rows.amin(dim=1), rows.amax(dim=1)
    inf = torch.tensor(float('inf'), dtype=rows.dtype, device=rows.device)
    return torch.where(finite, rows, inf).amin(dim=1), torch.where(finite, rows, -inf).amax(dim=1)


@OBSERVERS.register_module(name='minmax')
class MinMaxObserver(Observer):
    """Running min and max over all batches."""

    lo: Optional[Tensor] = None
    hi: Optional[Tensor] = None

    def _update(self, rows: Tensor, finite: Optional[Tensor]) -> None:
        lo, hi = batch_min_max(rows, finite)
        self.lo = lo if self.lo is None else torch.minimum(self.lo, lo)
        self.hi = hi if self.hi is None else torch.maximum(self.hi, hi)

    def min_max(self) -> tuple[Tensor, Tensor]:
        return self.lo, self.hi


@OBSERVERS.register_module(name='ema')
class EMAObserver(Observer):
    """Exponential moving average of each batch's min and max: stat += momentum * (batch_stat - stat).

    A row's first batch with finite values sets its statistics; batches without any leave them as they are.
    """

    lo: Optional[Tensor] = None
    hi: Optional[Tensor] = None

    def __init__(self, quant_min: int, quant_max: int, symmetric: bool, momentum: float = 0.1) -> None:
        super().__init__(quant_min, quant_max, symmetric)
        if not (_is_real(momentum) and 0 < momentum <= 1):
            raise ValueError(f'momentum must be a float in (0, 1], got {momentum!r}')
        self.momentum = momentum

    def _update(self, rows: Tensor, finite: Optional[Tensor]) -> None:
        lo, hi = batch_min_max(rows, finite)
        if self.lo is None:
            self.lo, self.hi = lo, hi
            return
        # A row new in this batch takes its values; a row absent from it (no finite value) keeps its own.
        present, before = torch.isfinite(lo), torch.isfinite(self.lo)
        new_lo = torch.where(before, torch.lerp(self.lo, lo, self.momentum), lo)
        new_hi = torch.where(before, torch.lerp(self.hi, hi, self.momentum), hi)
        new_lo, new_hi = torch.where(present, new_lo, self.lo), torch.where(present, new_hi, self.hi)
        self.lo, self.hi = new_lo, new_hi

    def min_max(self) -> tuple[Tensor, Tensor]:
        return self.lo, self.hi


def row_percentile(rows: Tensor, q: float, finite: Optional[Tensor] = None) -> Tensor:
    """The q-th percentile (0..100) of each row, linearly interpolated like torch.quantile.

    Built on kthvalue, so unlike torch.quantile it has no limit on the number of elements. With a
    `finite` mask, each row's percentile is over its masked values only (sorted; NaN for a row without any).
    """
    if finite is not None:
        nan = torch.tensor(float('nan'), dtype=rows.dtype, device=rows.device)
        ordered = torch.where(finite, rows, nan).sort(dim=1).values  # NaN last
        count = finite.sum(dim=1, keepdim=True)
        pos = q / 100 * (count - 1).clamp_min(0).to(rows.dtype)
        k = pos.floor().long()
        below, above = ordered.gather(1, k), ordered.gather(1, (k + 1).minimum((count - 1).clamp_min(0)))
        return torch.lerp(below, above, pos - k).squeeze(1)
    pos = q / 100 * (rows.shape[1] - 1)
    k = int(pos)
    below = rows.kthvalue(k + 1, dim=1).values
    if pos == k:
        return below
    above = rows.kthvalue(k + 2, dim=1).values
    return torch.lerp(below, above, pos - k)


@OBSERVERS.register_module(name='percentile')
class PercentileObserver(Observer):
    """Each batch's (100 - p)-th and p-th percentiles, averaged over batches: clips rare outliers.

    Percentiles are over each row's finite values; a batch without any for a row does not count for that row.
    """

    def __init__(self, quant_min: int, quant_max: int, symmetric: bool, percentile: float = 99.99) -> None:
        super().__init__(quant_min, quant_max, symmetric)
        if not (_is_real(percentile) and 50 < percentile <= 100):
            raise ValueError(f'percentile must be a float in (50, 100], got {percentile!r}')
        self.percentile = percentile
        self.lo_sum = self.hi_sum = 0.0
        self.row_batches = 0  # batches that counted, per row

    def _update(self, rows: Tensor, finite: Optional[Tensor]) -> None:
        lo, hi = row_percentile(rows, 100 - self.percentile, finite), row_percentile(rows, self.percentile, finite)
        if finite is None:
            self.lo_sum, self.hi_sum, self.row_batches = self.lo_sum + lo, self.hi_sum + hi, self.row_batches + 1
            return
        present = finite.any(dim=1)
        self.lo_sum = self.lo_sum + torch.where(present, lo, 0.0)
        self.hi_sum = self.hi_sum + torch.where(present, hi, 0.0)
        self.row_batches = self.row_batches + present.long()

    def min_max(self) -> tuple[Tensor, Tensor]:
        return self.lo_sum / self.row_batches, self.hi_sum / self.row_batches


@OBSERVERS.register_module(name='mse')
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

    def _update(self, rows: Tensor, finite: Optional[Tensor]) -> None:
        super()._update(rows, finite)
        if finite is not None:  # the error is summed over finite values only
            rows = torch.where(finite, rows, 0.0)
        errors = torch.stack([self._error(rows, *self._clip(ratio), finite) for ratio in self.ratios])
        self.errors = errors if self.errors is None else self.errors + errors

    def _clip(self, ratio: Tensor) -> tuple[Tensor, Tensor]:
        return ratio * self.lo, ratio * self.hi

    def _error(self, rows: Tensor, lo: Tensor, hi: Tensor, finite: Optional[Tensor] = None) -> Tensor:
        # Rows without a finite value yet have lo = +inf, hi = -inf: an empty range, which the qparams widen to 0.
        scale, zero_point = qparams_from_range(lo, hi, self.quant_min, self.quant_max, self.symmetric)
        fq = fake_quant_per_channel(rows, scale, zero_point, 0, self.quant_min, self.quant_max)
        error = (fq - rows).square()
        return (error if finite is None else error * finite).sum(dim=1)

    def min_max(self) -> tuple[Tensor, Tensor]:
        best = self.ratios.to(self.errors.device)[self.errors.argmin(dim=0)]
        return self._clip(best)

