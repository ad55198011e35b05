"""Input normalisation: per-modality, per-feature statistics fitted on the training split.

Raw descriptors span many orders of magnitude (openSMILE ComParE_2016 frame features range
from about 0.01 to several million), and nothing downstream rescales them: the first linear
layer of MSDE sees the largest dimensions only. :class:`InputNormalizer` standardises every
feature dimension of every modality with statistics computed once, on the training nodes,
and keeps them as buffers so that they travel inside ``state_dict`` and every checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal, get_args

import numpy as np
import torch
from torch import nn

from ..records import Utterance

__all__ = ["InputNormalizer", "NormalizeMode", "SpeakerNormalizer", "SpeakerStatistics", "normalize_speakers", "signed_log", "speaker_normalizer"]

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

    def var(self) -> np.ndarray:
        """Population variance ``[dim]`` (ddof=0, like ``np.var``)."""
        return self.m2 / self.count

    def std(self) -> np.ndarray:
        """Population standard deviation ``[dim]`` (ddof=0, like ``np.std``)."""
        return np.sqrt(self.var())


def inverse_std(mean: np.ndarray, std: np.ndarray, eps: float) -> np.ndarray:
    """``1 / std`` per dimension, 0 where the dimension is constant (``std <= eps * (1 + |mean|)``):
    a constant dimension maps to 0, so it can neither give NaN nor amplify noise."""
    constant = std <= eps * (1.0 + np.abs(mean))
    return np.where(constant, 0.0, 1.0 / np.where(constant, 1.0, std))


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
        try:
            moments = _moments(feature_dicts, self.in_dims, self._transform)
        except ValueError as exc:
            raise ValueError(f"InputNormalizer.fit: {exc}") from None
        empty = [m for m, mom in moments.items() if mom.count == 0]
        if empty:
            raise ValueError(
                f"InputNormalizer.fit: no training nodes for modalities {empty}; cannot fit their statistics"
            )
        for m, mom in moments.items():
            inv_std = inverse_std(mom.mean, mom.std(), self.eps)
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


@dataclass
class SpeakerStatistics:
    """What :meth:`SpeakerNormalizer.transform` used: per speaker, its utterance count and weight on its own statistics."""

    utterances: dict[str, int]  # speaker -> utterances in the batch of inputs ("" and lone utterances count alone)
    weight: dict[str, float]  # speaker -> share of its own statistics (1: its own; 0: the training statistics)

    def shrunk(self) -> list[str]:
        """Speakers normalised partly or wholly with the training statistics, for a note."""
        return sorted(s for s, w in self.weight.items() if w < 1.0)


class SpeakerNormalizer(nn.Module):
    r"""Per-speaker standardisation of every modality, before :class:`InputNormalizer`.

    Speaker identity dominates raw acoustic and face features (a speech-emotion-recognition
    staple): each speaker's features are standardised per dimension with that speaker's own
    mean and spread, computed from the node features of that speaker's utterances *given
    together* (the same split, or one prediction request), never from labels:

    .. math:: x' = (x - \mu_s) / \sigma_s,\quad \mu_s = w\,\bar x_s + (1-w)\,\mu_0,\quad
              \sigma_s^2 = w\,\mathrm{var}_s + (1-w)\,\sigma_0^2,\quad w = \min(1, \tfrac{n_s - 1}{k - 1})

    with :math:`n_s` the speaker's utterances, :math:`k` = ``min_utterances`` and
    :math:`\mu_0, \sigma_0` the pooled training statistics (buffers, so checkpoints carry them):
    a speaker with ``k`` or more utterances uses only its own statistics, one with a single
    utterance (or no name) only the training ones. A dimension constant for the chosen
    statistics maps to 0.

    Shapes: ``transform(speakers, features)``: one ``{modality: [n_nodes, dim]}`` per utterance in,
    the same shapes out (float32).
    """

    fitted: torch.Tensor

    def __init__(self, modalities: Sequence[str], in_dims: Mapping[str, int], *, min_utterances: int = 8, eps: float = 1e-6):
        super().__init__()
        if min_utterances < 2:
            raise ValueError(f"SpeakerNormalizer: min_utterances={min_utterances} must be >= 2 (model.speaker_min_utterances)")
        self.modalities = list(modalities)
        self.in_dims = {m: int(in_dims[m]) for m in self.modalities}
        self.min_utterances = min_utterances
        self.eps = eps
        for m, dim in self.in_dims.items():
            self.register_buffer(f"{m}_mean", torch.zeros(dim, dtype=torch.float64))
            self.register_buffer(f"{m}_var", torch.ones(dim, dtype=torch.float64))
        self.register_buffer("fitted", torch.tensor(False))

    def fit(self, feature_dicts: Iterable[Mapping[str, np.ndarray]]) -> SpeakerNormalizer:
        """The pooled training statistics (all speakers' nodes together): the fallback and the shrinkage target."""
        moments = _moments(feature_dicts, self.in_dims)
        empty = [m for m, mom in moments.items() if mom.count == 0]
        if empty:
            raise ValueError(f"SpeakerNormalizer.fit: no training nodes for modalities {empty}")
        for m, mom in moments.items():
            getattr(self, f"{m}_mean").copy_(torch.from_numpy(mom.mean))
            getattr(self, f"{m}_var").copy_(torch.from_numpy(mom.var()))
        self.fitted.fill_(True)
        return self

    def weight(self, n_utterances: int) -> float:
        """Share of a speaker's own statistics for ``n_utterances`` of its utterances."""
        return min(1.0, max(0.0, (n_utterances - 1) / (self.min_utterances - 1)))

    def transform(
        self, speakers: Sequence[str], features: Sequence[Mapping[str, np.ndarray]]
    ) -> tuple[list[dict[str, np.ndarray]], SpeakerStatistics]:
        """Each utterance's features standardised with its speaker's (shrunk) statistics over these inputs."""
        if not bool(self.fitted):
            raise RuntimeError("SpeakerNormalizer: the training statistics were never fitted (fit() on the training features)")
        groups: dict[str, list[int]] = {}
        for i, speaker in enumerate(speakers):
            groups.setdefault(speaker or f"\0unnamed-{i}", []).append(i)  # an unnamed utterance stands alone
        out: list[dict[str, np.ndarray]] = [dict(f) for f in features]
        stats = SpeakerStatistics({}, {})
        for speaker, members in groups.items():
            name = speaker if not speaker.startswith("\0") else "(unnamed)"
            w = self.weight(len(members))
            stats.utterances[name] = stats.utterances.get(name, 0) + len(members)
            stats.weight[name] = min(stats.weight.get(name, 1.0), w)
            own = _moments((features[i] for i in members), self.in_dims)
            for m in self.modalities:
                mean, var = self._shrunk(m, own[m], w)
                scale = inverse_std(mean, np.sqrt(var), self.eps)
                for i in members:
                    if m in features[i]:
                        out[i][m] = ((np.asarray(features[i][m], np.float64) - mean) * scale).astype(np.float32)
        return out, stats

    def _shrunk(self, modality: str, own: _RunningMoments, w: float) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance ``[dim]``: ``w`` of the speaker's own (if it has nodes), the rest the training ones."""
        mean0 = getattr(self, f"{modality}_mean").numpy()
        var0 = getattr(self, f"{modality}_var").numpy()
        if own.count == 0 or w == 0.0:
            return mean0, var0
        return w * own.mean + (1 - w) * mean0, w * own.var() + (1 - w) * var0

    def extra_repr(self) -> str:
        return f"in_dims={self.in_dims}, min_utterances={self.min_utterances}, fitted={bool(self.fitted)}"


def _moments(
    feature_dicts: Iterable[Mapping[str, np.ndarray]], in_dims: Mapping[str, int], transform: Callable[[np.ndarray], np.ndarray] | None = None
) -> dict[str, _RunningMoments]:
    """Streaming float64 node moments per modality (of ``transform(rows)`` when given); other modalities are
    ignored, empty arrays skipped, and an array of the wrong width is a ValueError naming the item."""
    moments = {m: _RunningMoments.empty(dim) for m, dim in in_dims.items()}
    for i, features in enumerate(feature_dicts):
        for m, arr in features.items():
            if m not in moments:
                continue
            rows = np.asarray(arr, dtype=np.float64)
            if rows.ndim != 2 or rows.shape[1] != in_dims[m]:
                raise ValueError(f"item {i}, modality {m!r}: expected [n_nodes, {in_dims[m]}], got shape {list(rows.shape)}")
            if rows.shape[0]:
                moments[m].update(transform(rows) if transform is not None else rows)
    return moments


def speaker_normalizer(model: nn.Module) -> SpeakerNormalizer | None:
    """The model's speaker normaliser (``model.normalize_by=speaker``), wherever it sits, else None."""
    return next((m for m in model.modules() if isinstance(m, SpeakerNormalizer)), None)


def normalize_speakers(model: nn.Module, utterances: Sequence[Utterance]) -> tuple[list[Utterance], SpeakerStatistics | None]:
    """``utterances`` as the model reads them: standardised per speaker over these inputs when the model
    normalises by speaker (copies; the inputs are untouched), else the same records and None."""
    norm = speaker_normalizer(model)
    if norm is None:
        return list(utterances), None
    features, stats = norm.transform([u.speaker for u in utterances], [u.features for u in utterances])
    return [replace(u, features=f) for u, f in zip(utterances, features)], stats
