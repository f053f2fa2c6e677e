"""GPLQ (Liang et al., NeurIPS 2025): activation-first QAT with a PCA feature loss, then weight PTQ with QwT."""
from .compensation import LinearCompensation, RidgeRegression, run_until
from .model import GPLQ
from .pca import PCAProjector

__all__ = ['GPLQ', 'PCAProjector', 'LinearCompensation', 'RidgeRegression', 'run_until']
