"""What a model-family rule tells quantize_model: layer types, attention blocks and their replacement,
and which linears read each LayerNorm's output (for reparameterisations such as RepQ-ViT's)."""
from typing import Callable, Optional

from torch import nn

from ..modules import QuantAttentionCore

#: Builds the quantized q @ k^T and attn @ v matmuls of the attention block at a path with n heads.
CoreFactory = Callable[[str, int], QuantAttentionCore]


class FamilyRule:
    """Maps the submodules of one model family to quantized modules (module swapping, no tracing)."""

    def layer_types(self, module: nn.Module) -> dict[str, tuple[str, int]]:
        """For a container module: {relative path of a Linear/Conv2d: (module type, attention heads)}."""
        return {}

    def quantize_attention(self, path: str, module: nn.Module, make_core: CoreFactory) -> Optional[nn.Module]:
        """Give the attention block at `path` quantized matmuls; return its replacement (or itself)."""
        return None

    def norm_consumers(self, module: nn.Module) -> dict[str, tuple[str, ...]]:
        """For a transformer block: {relative path of a LayerNorm: relative paths of the Linears it feeds}."""
        return {}
