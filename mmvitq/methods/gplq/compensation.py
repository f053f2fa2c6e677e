"""QwT-style linear compensation: a closed-form per-block correction of the weight-quantization error.

For a transformer block with input X (from the quantized model) the quantized block gives Y_q and the
same block with float weights Y_f. A linear map fitted by ridge regression, Y_f - Y_q ~ X W^T + b, is
added to the block's output; it is fitted once on calibration images, block after block, so each
block sees inputs already corrected upstream.
"""
from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LinearCompensation(nn.Module):
    """x -> x @ weight^T + bias over the last dim; zero (a no-op) until fitted. Buffers: never trained."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer('weight', torch.zeros(channels, channels))
        self.register_buffer('bias', torch.zeros(channels))
        self.register_buffer('fitted', torch.tensor(False))
        self._fitted = False

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight.to(x.dtype), self.bias.to(x.dtype))

    def add_to_output(self, module: nn.Module, args: tuple, output: Tensor) -> Tensor:
        """Forward hook of the block: output + compensation(input)."""
        return output + self(args[0]) if self._fitted else output

    @torch.no_grad()
    def set(self, weight: Tensor, bias: Tensor) -> None:
        self.weight.copy_(weight)
        self.bias.copy_(bias)
        self.fitted.fill_(True)
        self._fitted = True

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._fitted = bool(self.fitted)


class RidgeRegression:
    """Streams (x [M, C_in], y [M, C_out]) pairs into X^T X and X^T Y; `solve` gives W [C_out, C_in], b and R^2.

    The ridge term is `ridge` times the mean diagonal of X^T X (scale-free); the bias is not penalised.
    """

    def __init__(self, ridge: float) -> None:
        if isinstance(ridge, bool) or not isinstance(ridge, (int, float)) or ridge < 0:
            raise ValueError(f'ridge must be a number >= 0, got {ridge!r}')
        self.ridge = ridge
        self.xtx = self.xty = self.ysum = None
        self.yty, self.count = 0.0, 0

    def update(self, x: Tensor, y: Tensor) -> None:
        x = x.reshape(-1, x.shape[-1]).double()
        x = torch.cat([x, x.new_ones(x.shape[0], 1)], dim=1)
        y = y.reshape(-1, y.shape[-1]).double()
        xtx, xty, ysum = x.t() @ x, x.t() @ y, y.sum(dim=0)
        self.xtx = xtx if self.xtx is None else self.xtx + xtx
        self.xty = xty if self.xty is None else self.xty + xty
        self.ysum = ysum if self.ysum is None else self.ysum + ysum
        self.yty += float(y.square().sum())
        self.count += y.shape[0]

    def solve(self) -> tuple[Tensor, Tensor, float]:
        """Weight [C_out, C_in], bias [C_out] and the fit's R^2 on the data seen (1: exact, <= 0: useless)."""
        if self.xtx is None:
            raise RuntimeError('RidgeRegression.solve: no data was seen')
        c = self.xtx.shape[0] - 1
        penalty = torch.zeros_like(self.xtx)
        penalty[:c, :c].fill_diagonal_(self.ridge * float(self.xtx.diagonal()[:c].mean()))
        theta = torch.linalg.lstsq(self.xtx + penalty, self.xty).solution  # [C_in + 1, C_out]
        residual = self.yty - 2 * float((theta * self.xty).sum()) + float((theta * (self.xtx @ theta)).sum())
        total = self.yty - float(self.ysum.square().sum()) / self.count
        r2 = 1.0 - residual / total if total > 0 else 0.0
        return theta[:c].t().float(), theta[c].float(), r2


class _StopForward(Exception):
    """Raised by a pre-hook to end a forward pass once the block's input is captured."""


@contextmanager
def capture_input(block: nn.Module) -> Iterator[dict]:
    """While open, a forward pass through the model stops at `block` and leaves its (args, kwargs) in the dict."""
    captured = {}

    def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
        captured['args'], captured['kwargs'] = args, kwargs
        raise _StopForward

    handle = block.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield captured
    finally:
        handle.remove()


def run_until(block: nn.Module, forward, *inputs) -> tuple[tuple, dict]:
    """Run `forward(*inputs)` up to `block`; return the block's (args, kwargs)."""
    with capture_input(block) as captured:
        try:
            forward(*inputs)
        except _StopForward:
            pass
    if 'args' not in captured:
        raise RuntimeError(f'the forward pass never reached the block {type(block).__name__}')
    return captured['args'], captured['kwargs']
