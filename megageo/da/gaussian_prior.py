"""The exact denoiser of a Gaussian fitted to the training windows, which `diffusion.gaussian_base` puts under the
network so that the network learns only what the data hold beyond a Gaussian.

In the twin, window OI (the same observations under the training windows' covariance) beats the learned prior,
and every start nearer to OI's analysis scored better: the prior subtracts from the Gaussian answer. With x ~
N(m, Σ) and x_t = μ x + σ ε, E[x | x_t] = m + μ Σ (μ² Σ + σ² I)⁻¹ (x_t − μ m), a linear map known in closed form
once Σ's eigenvectors are. The raw sample covariance of a thousand windows will not do: on the first twin truth its
Kalman analysis scores 22.1 m against window OI's 9.7 m, whose Gaspari–Cohn taper removes the samples' spurious
distant correlations. Here Σ is instead averaged over the symmetries of the embedded shallow-water model, every
zonal shift and the north–south mirror, then tapered (9.5 m on that truth, the taper at 6000 km; 9.9 m untapered
without the mirror). A zonally stationary Σ is block-diagonal in zonal wavenumber k: one N × N Hermitian block
per k, N = L · C · H (frames, channels, latitudes), whose eigenvectors give the denoiser through one FFT along
longitude. The denoiser adds the network output that stands for this estimate
(`Preconditioning.output_of_estimate`): a network that outputs zero is the Gaussian prior, whose MMPS-guided sampler
draws that Kalman analysis (tests/da/test_guidance.py; SDA's γ guidance only approximates it).

The fit is a function of the training store alone (its split, channels and normalisation), so it is not kept in
the checkpoint: training and sampling each fit it from `data.store` (seconds), and a run without that store is
refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from megageo.config import Config
from megageo.da.localisation import gaspari_cohn, great_circle_km
from megageo.errors import MegageoError
from megageo.parallel.context import ContextParallel, all_reduce_sum


@dataclass(frozen=True)
class ZonalGaussian:
    """N(mean, Σ) over windows [L, C, H, W] with Σ invariant under zonal shifts: its wavenumber-k block of the
    longitudinal Fourier coefficients (`torch.fft.rfft`, unnormalised) is W · V_k diag(λ_k) V_kᴴ."""

    mean: torch.Tensor
    """[L, C, H, 1]: zonally uniform."""
    directions: torch.Tensor
    """V [K, N, N] complex, K = W // 2 + 1 wavenumbers, rows in (frame, channel, latitude) order."""
    eigenvalues: torch.Tensor
    """λ [K, N], the variance per grid point each direction carries."""

    @classmethod
    def fit(cls, windows: np.ndarray, lat: np.ndarray, lon: np.ndarray, taper_km: float) -> ZonalGaussian:
        """From training windows [S, L, C, H, W] (normalised): their covariance averaged over every zonal shift
        and the north–south mirror, then Gaspari–Cohn tapered in great-circle distance at `taper_km` (0: none)."""
        count, frames, channels, height, width = windows.shape
        if count < 2:
            raise MegageoError(f"diffusion.gaussian_base needs at least 2 training windows, the store has {count}")
        mean = windows.mean(axis=(0, 4), keepdims=True)[0]
        rows = frames * channels * height
        spectra = np.fft.rfft(windows - mean, axis=-1).reshape(count, rows, -1).transpose(2, 1, 0)  # [K, N, S]
        cross = spectra @ spectra.conj().transpose(0, 2, 1) / (count - 1)  # [K, N, N]
        mirrored = np.arange(rows).reshape(frames * channels, height)[:, ::-1].ravel()
        cross = 0.5 * (cross + cross[:, mirrored][:, :, mirrored])
        if taper_km:
            covariance = np.fft.irfft(cross, n=width, axis=0)  # × W: cov(x[a, j + Δ], x[b, j]) at lag Δ
            covariance *= _zonal_taper(lat, lon, taper_km, frames * channels)
            cross = np.fft.rfft(covariance, axis=0)
        values, vectors = np.linalg.eigh(cross)
        return cls(torch.from_numpy(mean).float(), torch.from_numpy(vectors).to(torch.complex64),
                   torch.from_numpy(np.clip(values, 0, None) / width).float())

    def to(self, device: torch.device) -> ZonalGaussian:
        return ZonalGaussian(self.mean.to(device), self.directions.to(device), self.eigenvalues.to(device))

    def estimate(self, x_t: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor,
                 cp: ContextParallel = ContextParallel()) -> torch.Tensor:
        """E[x | x_t] for x_t [B, L', C, H, W] at per-window μ, σ [B]; under context parallelism x_t is this
        rank's block of frames and the projections onto V are summed over the blocks. The Gaussian must be on
        x_t's device (`to`)."""
        mean = self.mean[cp.block(self.mean.shape[0])]
        residual = x_t.float() - mu.to(x_t.device).float().view(-1, 1, 1, 1, 1) * mean
        return mean + self.jacobian_product(residual, mu, sigma, cp)

    def jacobian_product(self, v: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor,
                         cp: ContextParallel = ContextParallel()) -> torch.Tensor:
        """∂E[x | x_t]/∂x_t · v = V diag(μλ / (μ²λ + σ²)) Vᴴ v for v [B, L', C, H, W] (this rank's frames) at
        per-window μ, σ [B]: the linear part of `estimate`, symmetric, so it is also the vector–Jacobian product
        that guidance needs (`diffusion.guidance_jacobian: gaussian_base`)."""
        batch, frames, channels, height, width = v.shape
        block = cp.block(self.mean.shape[0])
        rows = slice(block.start * channels * height, block.stop * channels * height)
        mu, sigma = mu.to(v.device).float(), sigma.to(v.device).float()
        spectra = torch.fft.rfft(v.float(), dim=-1).reshape(batch, -1, width // 2 + 1).permute(2, 1, 0)  # [K, N', B]
        directions = self.directions[:, rows]
        coefficients = all_reduce_sum(torch.view_as_real(directions.mH @ spectra), cp)  # [K, N, B, 2]
        eigenvalues = self.eigenvalues[..., None]
        shrink = mu * eigenvalues / (mu**2 * eigenvalues + sigma**2)  # [K, N, B]
        product = directions @ (shrink * torch.view_as_complex(coefficients.contiguous()))
        return torch.fft.irfft(product.permute(2, 1, 0).reshape(batch, frames, channels, height, -1), n=width)


def _zonal_taper(lat: np.ndarray, lon: np.ndarray, half_width_km: float, blocks: int) -> np.ndarray:
    """ρ [W, N, N]: Gaspari–Cohn in the great-circle distance between latitude a at longitude lag Δ and latitude
    b at lag 0, the same for every pair of (frame, channel) blocks."""
    height, width = len(lat), len(lon)
    lags = great_circle_km(np.repeat(lat, width), np.tile(lon - lon[0], height), lat, np.zeros(height))
    taper = gaspari_cohn(lags, half_width_km).reshape(height, width, height).transpose(1, 0, 2)  # [Δ, a, b]
    return np.tile(taper, (1, blocks, blocks))


def fit_from_store(config: Config) -> ZonalGaussian:
    """The Gaussian of the windows `megageo train` draws from `data.store` (the same split, channels and
    normalisation), tapered at `diffusion.gaussian_taper_km`."""
    from megageo.data.dataset import WindowDataset

    data = config.data
    if not Path(data.store).exists():
        raise MegageoError(f"diffusion.gaussian_base: the prior's Gaussian is fitted from its training store "
                           f"{data.store}, which is not there")
    train = WindowDataset(data.store, "train", data.t_in, data.t_out, data.stride, variables=data.variables or None,
                          levels=data.levels or None, normalisation=data.normalisation)
    windows = np.stack([train[index][0].numpy() for index in range(len(train))]).astype(np.float64)
    return ZonalGaussian.fit(windows, train.store.lat, train.store.lon, config.diffusion.gaussian_taper_km)
