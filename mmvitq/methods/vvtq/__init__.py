"""Variation-aware ViT QAT (Huang et al.): LSQ with module-dependent scales, multi-crop distillation from a
label bank, and a regulariser against weight oscillation."""
from .dataset import BankedResizedCrop, LabelBankDataset
from .label_bank import LabelBank, build_label_bank
from .model import VVTQ
from .oscillation import OscillationTracker
from .regularizer import bin_variance, bin_variance_loop, cosine_ramp, oscillation_loss, oscillation_regularizer

__all__ = [
    'VVTQ', 'LabelBank', 'LabelBankDataset', 'BankedResizedCrop', 'build_label_bank', 'OscillationTracker',
    'bin_variance', 'bin_variance_loop', 'cosine_ramp', 'oscillation_loss', 'oscillation_regularizer'
]
