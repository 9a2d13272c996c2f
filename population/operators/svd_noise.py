"""Mutation by Gaussian noise on the top-k singular values of the effective weights.

For each adapted weight ``W = W_base + B A`` take its top-k singular triplets
``U_k, s_k, V_k``, draw ``eps ~ N(0, sigma^2)`` and set ``s'_k = max(s_k + eps, 0)``. The
change ``U_k diag(s'_k - s_k) V_k^T`` has rank k, so it joins the adapter as k more
components. Embeddings, lm_head, norms and biases are untouched (vLLM serves no LoRA on
them by default); AC/DC's reference code also perturbs the embedding matrices.
"""

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch

from acdc.population.base import BaseWeights
from acdc.population.lora import LoraDelta, delta_matrix
from acdc.population.operators.registry import OperatorKind, register


def top_singular(
    matrix: torch.Tensor,
    k: int,
    *,
    method: Literal["exact", "lowrank"],
    generator: torch.Generator,
    oversample: int = 8,
    power_iterations: int = 4,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top-k singular triplets of ``matrix`` (m, n): U (m, k), s (k,), Vh (k, n).

    ``lowrank`` is a randomized range finder with power iterations whose random start
    comes from ``generator``, so results are reproducible; ``exact`` is a full SVD.
    """
    k = min(k, *matrix.shape)
    if method == "exact":
        u, s, vh = torch.linalg.svd(matrix, full_matrices=False)
        return u[:, :k], s[:k], vh[:k]
    width = min(k + oversample, *matrix.shape)
    probe = torch.randn(matrix.shape[1], width, generator=generator, dtype=matrix.dtype)
    basis, _ = torch.linalg.qr(matrix @ probe)
    for _ in range(power_iterations):
        basis, _ = torch.linalg.qr(matrix.T @ basis)
        basis, _ = torch.linalg.qr(matrix @ basis)
    u_small, s, vh = torch.linalg.svd(basis.T @ matrix, full_matrices=False)
    return (basis @ u_small)[:, :k], s[:k], vh[:k]


@dataclass(frozen=True)
class SvdNoiseMutation:
    """Perturb the k largest singular values of every adapted weight matrix."""

    name: ClassVar[str] = "svd_noise"
    kind: ClassVar[OperatorKind] = "mutation"
    paper: ClassVar[str] = "https://arxiv.org/abs/2604.14969"

    sigma: float = 0.25
    keep_rank: int = 8
    svd: Literal["exact", "lowrank"] = "lowrank"

    def apply(
        self, *, delta: LoraDelta, base: BaseWeights, generator: torch.Generator
    ) -> LoraDelta:
        """Append the rank-k singular-value change of each module to its factors."""
        child: LoraDelta = {}
        for module in base.modules:
            weight = base.weight(module)
            if module in delta:
                weight = weight + delta_matrix(delta[module])
            u, s, vh = top_singular(weight, self.keep_rank, method=self.svd, generator=generator)
            noise = self.sigma * torch.randn(s.shape, generator=generator, dtype=s.dtype)
            change = (s + noise).clamp_min(0.0) - s
            extra_a, extra_b = vh, u * change
            if module in delta:
                a, b = delta[module]
                child[module] = (torch.cat([a, extra_a]), torch.cat([b, extra_b], dim=1))
            else:
                child[module] = (extra_a.contiguous(), extra_b.contiguous())
        return child


register(SvdNoiseMutation.name, SvdNoiseMutation)
