"""Observations y = A(x) + e, e ~ N(0, diag(std²)), entering a diffusion prior's sampler through its noise
prediction: the guided ε̃ = ε̂ − σ ∇_{x_t} log p(y | x_t), so that sampling with ε̃ samples p(x | y).

p(y | x_t) is approximated by a Gaussian around the denoiser's clean-state estimate x̂ = E[x | x_t]:
- `GaussianGuidance` (SDA, Rozet & Louppe 2023): N(y | A(x̂), std² + γ (σ/μ)²), the γ term standing for the
  denoiser's own error, which grows with the noise level; the gradient flows through the denoiser.
- `MomentMatchingGuidance` (MMPS, Rozet et al. 2024): N(y | A(x̂), diag(std²) + A V Aᵀ) with Tweedie's covariance
  V = Cov[x | x_t] = (σ²/μ) ∂x̂/∂x_t; the linear system is solved with a few conjugate-gradient steps, each one
  vector–Jacobian product through the denoiser (the Jacobian of a score-based denoiser is symmetric). For a
  Gaussian prior both moments are exact, and so is the guided score.
`A` must be linear in x (selecting stations or coarsening fields are).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from megageo.da.sde import VPSDE, NoisePredictor

Observe = Callable[[torch.Tensor], torch.Tensor]
"""A linear observation operator: states [N, ...] → observations [N, M]."""


@dataclass
class GaussianGuidance:
    eps: NoisePredictor
    sde: VPSDE
    y: torch.Tensor
    """[M] or [N, M] observed values."""
    observe: Observe
    std: torch.Tensor
    """[M] observation error standard deviations."""
    gamma: float = 1e-2

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        mu, sigma = self.sde.mu(t), self.sde.sigma(t)
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            eps = self.eps(x, t)
            error = self.y - self.observe(self.sde.denoise(x, t, eps))
            variance = self.std**2 + self.gamma * (sigma / mu) ** 2
            log_likelihood = -(error.square() / variance).sum() / 2
            (score,) = torch.autograd.grad(log_likelihood, x)
        return eps.detach() - sigma * score


@dataclass
class MomentMatchingGuidance:
    eps: NoisePredictor
    sde: VPSDE
    y: torch.Tensor
    observe: Observe
    std: torch.Tensor
    cg_steps: int = 3

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        mu, sigma = self.sde.mu(t), self.sde.sigma(t)
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            eps = self.eps(x, t)
            denoised = self.sde.denoise(x, t, eps)
            residual = self.y - self.observe(denoised)

            def jacobian_t(u: torch.Tensor) -> torch.Tensor:  # (∂x̂/∂x_t)ᵀ u = ∂x̂/∂x_t u (symmetric)
                return torch.autograd.grad(denoised, x, u, retain_graph=True)[0]

            def observe_t(v: torch.Tensor) -> torch.Tensor:  # Aᵀ v, by autograd through the linear A
                probe = torch.zeros_like(denoised, requires_grad=True)
                return torch.autograd.grad(self.observe(probe), probe, v)[0]

            def system(v: torch.Tensor) -> torch.Tensor:  # (diag(std²) + A V Aᵀ) v
                return self.std**2 * v + (sigma**2 / mu) * self.observe(jacobian_t(observe_t(v)))

            solution = conjugate_gradient(system, residual.detach(), self.cg_steps)
            score = jacobian_t(observe_t(solution))
        return eps.detach() - sigma * score


def conjugate_gradient(operator: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, steps: int) -> torch.Tensor:
    """`steps` iterations of CG for operator(x) = b from x = 0, batched over the first dimension (each row its own
    symmetric system). A row stops at the iterate it has when a search direction has no positive curvature, as
    truncated CG does (Steihaug 1983): a denoiser's Jacobian is a covariance only where the network is right, and
    measured on a 400-step tiny prior it was indefinite at t ≥ 0.97, where unguarded CG returned inf."""
    x = torch.zeros_like(b)
    r = b.clone()
    p = r.clone()
    rr = (r * r).sum(-1, keepdim=True)
    active = torch.ones_like(rr, dtype=torch.bool)
    for _ in range(steps):
        ap = operator(p)
        curvature = (p * ap).sum(-1, keepdim=True)
        active = active & (curvature > 0) & (rr > 0)
        alpha = torch.where(active, rr / torch.where(active, curvature, 1), 0)
        x = x + alpha * p
        r = r - alpha * ap
        rr_next = (r * r).sum(-1, keepdim=True)
        p = r + torch.where(active, rr_next / torch.where(active, rr, 1), 0) * p
        rr = rr_next
    return x
