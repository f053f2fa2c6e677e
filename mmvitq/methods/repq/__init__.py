"""RepQ-ViT-style post-training quantization: per-channel post-LayerNorm scales folded into the model."""
from .reparam import fold_channel_qparams, observe_post_norm_channels

__all__ = ['observe_post_norm_channels', 'fold_channel_qparams']
