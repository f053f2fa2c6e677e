"""PCA of teacher features: the subspace in which GPLQ's feature-mimicking loss compares student and teacher."""
import torch
import torch.nn.functional as F
from torch import Tensor, nn


class PCAProjector(nn.Module):
    """Projects [N, D] features onto the leading principal components of the teacher's features.

    `fit` keeps the fewest components whose eigenvalues cover `variance` of the total; until then the
    projector is empty (`fitted` is False). The mean and basis are buffers, resized when a checkpoint
    is loaded, so a resumed run compares features in the same subspace.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer('mean', torch.zeros(0))
        self.register_buffer('basis', torch.zeros(0, 0))

    @property
    def fitted(self) -> bool:
        return self.basis.numel() > 0

    @torch.no_grad()
    def fit(self, features: Tensor, variance: float) -> int:
        """Fit on `features` [N, D] (float64 eigendecomposition); returns the number of components kept."""
        if not 0 < variance <= 1:
            raise ValueError(f'variance must be in (0, 1], got {variance!r}')
        if features.dim() != 2 or features.shape[0] < 2:
            raise ValueError(f'PCA needs [N >= 2, D] features, got shape {tuple(features.shape)}')
        x = features.double()
        mean = x.mean(dim=0)
        cov = (x - mean).t() @ (x - mean) / (x.shape[0] - 1)
        eigvals, eigvecs = torch.linalg.eigh(cov)  # ascending
        eigvals, eigvecs = eigvals.flip(0).clamp_min(0), eigvecs.flip(1)
        covered = eigvals.cumsum(0) / eigvals.sum().clamp_min(torch.finfo(torch.float64).tiny)
        k = int((covered < variance - 1e-12).sum()) + 1
        self.mean = mean.to(features)
        self.basis = eigvecs[:, :k].contiguous().to(features)
        return k

    def forward(self, features: Tensor) -> Tensor:
        return (features - self.mean) @ self.basis

    def mimic_loss(self, student: Tensor, teacher: Tensor) -> Tensor:
        """Mean squared error between the projections of student and teacher features [N, D]."""
        return F.mse_loss(self(student), self(teacher))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        for name in ('mean', 'basis'):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
