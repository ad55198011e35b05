"""Input normalisation: per-modality, per-feature statistics fitted on the training split.

Raw descriptors span many orders of magnitude (openSMILE ComParE_2016 frame features range
from about 0.01 to several million), and nothing downstream rescales them: the first linear
layer of MSDE sees the largest dimensions only. :class:`InputNormalizer` standardises every
feature dimension of every modality with statistics computed once, on the training nodes,
and keeps them as buffers so that they travel inside ``state_dict`` and every checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import torch
from torch import nn

__all__ = ["InputNormalizer", "NormalizeMode", "signed_log"]

NormalizeMode = Literal["standard", "robust", "none"]
MODES: tuple[str, ...] = get_args(NormalizeMode)


def signed_log(x: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    r"""``sign(x) * log1p(|x|)``: compresses heavy tails and keeps the sign; same shape and type as ``x``."""
    if isinstance(x, np.ndarray):
        return np.sign(x) * np.log1p(np.abs(x))
    return torch.sign(x) * torch.log1p(torch.abs(x))


@dataclass
class _RunningMoments:
    """Count, mean and sum of squared deviations of a stream of row batches, in float64.

    Batches are merged with Chan et al.'s pairwise update (the batch form of Welford's
    algorithm), which stays accurate where the naive ``E[x^2] - E[x]^2`` cancels
    catastrophically (large means, small spreads).
    """

    count: int
    mean: np.ndarray  # [dim]
    m2: np.ndarray  # [dim]

    @classmethod
    def empty(cls, dim: int) -> _RunningMoments:
        return cls(0, np.zeros(dim, np.float64), np.zeros(dim, np.float64))

    def update(self, rows: np.ndarray) -> None:
        """Merge the rows ``[n, dim]`` (n > 0) into the running moments."""
        n_b = rows.shape[0]
        mean_b = rows.mean(axis=0)
        m2_b = ((rows - mean_b) ** 2).sum(axis=0)
        total = self.count + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / total)
        self.m2 = self.m2 + m2_b + delta**2 * (self.count * n_b / total)
        self.count = total

    def std(self) -> np.ndarray:
        """Population standard deviation ``[dim]`` (ddof=0, like ``np.std``)."""
        return np.sqrt(self.m2 / self.count)


class InputNormalizer(nn.Module):
    r"""Per-modality, per-dimension input normalisation with statistics fitted on training nodes.

    Modes:

    * ``standard``: :math:`x' = (x - \mu) / \sigma`;
    * ``robust``: :math:`x' = (\mathrm{slog}(x) - \mu) / \sigma` with
      :math:`\mathrm{slog}(x) = \mathrm{sign}(x)\log(1 + |x|)` and the statistics of
      :math:`\mathrm{slog}(x)`: heavy-tailed descriptors (energies, spectral sums) become
      roughly symmetric before standardisation;
    * ``none``: the identity (no statistics, nothing to fit).

    :math:`\mu, \sigma` are the mean and population standard deviation of each feature
    dimension over all training *nodes* (not utterances). A dimension that is constant on the
    training nodes maps to 0 everywhere, so it can neither give NaN nor amplify noise at test
    time. The statistics are float32 buffers (``<modality>_mean``, ``<modality>_inv_std``,
    ``fitted``), so ``state_dict`` and checkpoints carry them.

    Why streaming float64 moments: a corpus's node features need not fit in memory at once,
    and openSMILE dimensions with means near 1e6 lose their variance to cancellation in the
    one-pass sum-of-squares formula.

    Shapes: ``forward(modality, x)``: x [N, in_dims[modality]] -> [N, in_dims[modality]].

    Example::

        norm = InputNormalizer(["audio"], {"audio": 65}, mode="standard")
        norm.fit(u.features for u in data.train)   # {modality: [n_nodes, dim]} per utterance
        x = norm("audio", torch.randn(12, 65) * 1e5)   # [12, 65], zero mean and unit spread on train
    """

    fitted: torch.Tensor

    def __init__(
        self,
        modalities: Sequence[str],
        in_dims: Mapping[str, int],
        *,
        mode: NormalizeMode = "standard",
        eps: float = 1e-6,
    ):
        super().__init__()
        if mode not in MODES:
            raise ValueError(
                f"InputNormalizer: mode={mode!r} is not one of {list(MODES)} (config key model.normalize)"
            )
        missing = [m for m in modalities if m not in in_dims]
        if missing:
            raise ValueError(
                f"InputNormalizer: no feature width for modalities {missing}; in_dims has {sorted(in_dims)}"
            )
        self.modalities = list(modalities)
        self.in_dims = {m: int(in_dims[m]) for m in self.modalities}
        self.mode = mode
        self.eps = eps  # a dimension with std <= eps * (1 + |mean|) counts as constant
        if mode != "none":
            for m, dim in self.in_dims.items():
                self.register_buffer(f"{m}_mean", torch.zeros(dim))
                self.register_buffer(f"{m}_inv_std", torch.ones(dim))
            self.register_buffer("fitted", torch.tensor(False))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Forget the fitted statistics (there are no learnable parameters): unfitted again."""
        if self.mode == "none":
            return
        for m in self.modalities:
            self._stat(m, "mean").zero_()
            self._stat(m, "inv_std").fill_(1.0)
        self.fitted.fill_(False)

    def _stat(self, modality: str, name: str) -> torch.Tensor:
        return getattr(self, f"{modality}_{name}")

    def _transform(self, x: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """What the statistics are taken of: ``x`` itself, or its signed log in ``robust`` mode."""
        return signed_log(x) if self.mode == "robust" else x

    def fit(self, feature_dicts: Iterable[Mapping[str, np.ndarray]]) -> InputNormalizer:
        """Compute the statistics from a stream of ``{modality: float array [n_nodes, dim]}`` (one per utterance).

        Replaces any earlier statistics. Modalities this normaliser does not know are ignored;
        empty arrays (an utterance without nodes of a modality) are skipped. Only one
        utterance's arrays are held at a time. In ``none`` mode there is nothing to fit.

        Raises ValueError naming the modality when an array has the wrong width or when a
        modality has no node at all in the stream.
        """
        if self.mode == "none":
            return self
        moments = {m: _RunningMoments.empty(dim) for m, dim in self.in_dims.items()}
        for i, features in enumerate(feature_dicts):
            for m, arr in features.items():
                if m not in moments:
                    continue
                rows = np.asarray(arr, dtype=np.float64)
                if rows.ndim != 2 or rows.shape[1] != self.in_dims[m]:
                    raise ValueError(
                        f"InputNormalizer.fit: item {i}, modality {m!r}: expected [n_nodes, {self.in_dims[m]}], "
                        f"got shape {list(rows.shape)}"
                    )
                if rows.shape[0]:
                    moments[m].update(self._transform(rows))
        empty = [m for m, mom in moments.items() if mom.count == 0]
        if empty:
            raise ValueError(
                f"InputNormalizer.fit: no training nodes for modalities {empty}; cannot fit their statistics"
            )
        for m, mom in moments.items():
            std = mom.std()
            constant = std <= self.eps * (1.0 + np.abs(mom.mean))
            inv_std = np.where(constant, 0.0, 1.0 / np.where(constant, 1.0, std))  # constant dims -> 0
            self._stat(m, "mean").copy_(torch.from_numpy(mom.mean))
            self._stat(m, "inv_std").copy_(torch.from_numpy(inv_std))
        self.fitted.fill_(True)
        return self

    def forward(self, modality: str, x: torch.Tensor) -> torch.Tensor:
        """Normalise node features ``x`` [N, dim] of ``modality``; ``none`` mode returns ``x`` itself."""
        if modality not in self.in_dims:
            raise ValueError(
                f"InputNormalizer: unknown modality {modality!r}; this normaliser has {self.modalities}"
            )
        if x.shape[-1] != self.in_dims[modality]:
            raise ValueError(
                f"InputNormalizer: {modality} features are {x.shape[-1]} wide, expected {self.in_dims[modality]}"
            )
        if self.mode == "none":
            return x
        if not bool(self.fitted):
            raise RuntimeError(
                f"InputNormalizer ({self.mode}): statistics for modality {modality!r} were never fitted; call "
                "fit() on the training features first (or load a checkpoint that has them), or set model.normalize=none"
            )
        return (self._transform(x) - self._stat(modality, "mean")) * self._stat(
            modality, "inv_std"
        )  # [N, dim]

    def extra_repr(self) -> str:
        fitted = "n/a" if self.mode == "none" else bool(self.fitted)
        return f"mode={self.mode}, in_dims={self.in_dims}, fitted={fitted}"
