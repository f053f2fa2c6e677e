"""Quantized matmuls inside an attention forward that is kept as its family wrote it.

Some attentions compute more than q @ k^T and attn @ v around them (SwinV2's cosine attention and continuous
position bias, BEiT's relative position bias, EVA's rotary embeddings, sub-layer norms, gates) and some read their
qkv Linear's weight directly (`F.linear(x, self.qkv.weight, q_v_bias)`). Rather than a second copy of each forward,
`route_attention` gives the module a `core` (QuantAttentionCore, so its matmuls sit at `<attn>.core.qk` /
`.core.av` in every family) and, while the module's own forward runs, a TorchFunctionMode routes:
- its two matmuls of activations (batched: both operands of 3 or more dims), in order, through `core.qk`
  (q @ k^T) and `core.av` (attn @ v);
- a fused `scaled_dot_product_attention` through `core` itself;
- `F.linear` calls on the weight of one of its QuantLinears through that layer's quantizers.
Anything else runs as written, so the float function is unchanged when the quantizers are off. A forward with
other than two routed matmuls (or one SDPA) is an error naming the module: its family needs a rule of its own.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from ..modules import QuantAttentionCore, QuantLinear

MATMULS = (torch.matmul, Tensor.matmul, Tensor.__matmul__, torch.bmm, Tensor.bmm)
SDPA = (F.scaled_dot_product_attention, )
LINEAR = (F.linear, torch._C._nn.linear)


class _Router(TorchFunctionMode):
    """Routes the matmuls of one attention forward through its quantized core (see the module docstring)."""

    def __init__(self, owner: nn.Module) -> None:
        super().__init__()
        self.owner = owner
        self.core: QuantAttentionCore = owner.core
        self.linears = {id(m.weight): m for m in owner.modules() if isinstance(m, QuantLinear)}
        self.matmuls = self.sdpa = 0
        self.routing = False  # inside one of our modules: its own calls pass (the mode may stay on, as in export)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.routing:
            return func(*args, **kwargs)
        self.routing = True
        try:
            return self._route(func, args, kwargs)
        finally:
            self.routing = False

    def _route(self, func, args: tuple, kwargs: dict):
        if func in MATMULS and all(isinstance(a, Tensor) and a.dim() >= 3 and not isinstance(a, nn.Parameter)
                                   for a in args[:2]):
            if self.matmuls >= 2:
                raise RuntimeError(self._unexpected('more than two matmuls of activations'))
            matmul = (self.core.qk, self.core.av)[self.matmuls]
            self.matmuls += 1
            return matmul(*args)
        if func in SDPA:
            self.sdpa += 1
            return self.core(*args, **kwargs)
        if func in LINEAR and id(args[1] if len(args) > 1 else kwargs.get('weight')) in self.linears:
            linear = self.linears[id(args[1] if len(args) > 1 else kwargs['weight'])]
            x = args[0] if args else kwargs['input']
            bias = args[2] if len(args) > 2 else kwargs.get('bias')
            return linear.forward_with_bias(x, bias)
        return func(*args, **kwargs)

    def _unexpected(self, what: str) -> str:
        return (f'{type(self.owner).__name__}: its forward ran {what}; mmvitq routes q @ k^T and attn @ v (or one '
                'scaled_dot_product_attention) through quantized matmuls, so this attention needs a rule of its own')

    def check(self) -> None:
        if (self.matmuls, self.sdpa) not in ((2, 0), (0, 1)):
            raise RuntimeError(self._unexpected(f'{self.matmuls} matmuls of activations and {self.sdpa} fused SDPA'))


def _enter(module: nn.Module, args: tuple, kwargs: Optional[dict] = None) -> None:
    router = _Router(module)
    module._mmvitq_routers.append(router)
    router.__enter__()


def _leave(module: nn.Module, args: tuple, output: object, kwargs: Optional[dict] = None) -> None:
    router = module._mmvitq_routers.pop()
    router.__exit__(None, None, None)
    if output is not None:  # None: the forward raised, and that error is the one to see
        router.check()


def route_attention(module: nn.Module, core: QuantAttentionCore) -> nn.Module:
    """Give `module` the quantized `core` and route its matmuls through it (see the module docstring)."""
    module.core = core
    module._mmvitq_routers = []
    module.register_forward_pre_hook(_enter)
    module.register_forward_hook(_leave, always_call=True)
    return module
