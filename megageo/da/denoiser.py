"""The denoiser of a window of frames: STORM's token backbone, every token seeing the whole window at once.

x_t [B, L, C, H, W] at noise level t → the network output F of the same shape, which the preconditioning
(`megageo.da.sde.Preconditioning`) turns into ε̂; the network sees its scaled x_t. The model's own stages are
reused: the patch embedding (where and when each token is) with the noise level added to every token, the blocks
(any mixer; the reference is non-causal `global_linear`, linear in the window's length and context-parallel by
one all-reduce), and a head that turns every token back into its patch (with `model.head_conv_size`, through a
convolution across patch seams). With `model.tubelet_frames` > 1 a token
holds its patch over that many frames, folded into channels. Under context parallelism each rank
denoises its block of frames; nothing else of the window is needed but the mixer's state.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch

from megageo.config import ModelConfig
from megageo.da.gaussian_prior import ZonalGaussian
from megageo.da.guidance import Jacobian
from megageo.da.sde import NoisePredictor, Preconditioning
from megageo.errors import MegageoError
from megageo.model.block import Block
from megageo.model.forecaster import end_stages
from megageo.model.grid_conv import pad_sphere
from megageo.model.head import OutputHead
from megageo.model.parallel_layers import TensorParallelContext, replicated_linear
from megageo.model.tokens import PatchEmbedding, PatchGrid, time_encoding, unpatchify
from megageo.parallel.partition import constant, declare, uniform


class NoiseLevel(torch.nn.Module):
    """t [B] → [B, hidden]: sinusoids of 1000 t (DDPM's) through a small SiLU MLP every TP rank holds whole."""

    def __init__(self, hidden_size: int, ctx: TensorParallelContext):
        super().__init__()
        self.hidden_size = hidden_size
        self.fc1 = replicated_linear(hidden_size, hidden_size, ctx, bias=True)
        self.fc2 = replicated_linear(hidden_size, hidden_size, ctx, bias=True)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        features = time_encoding(1000 * t.float(), self.hidden_size, self.fc1.weight.dtype).to(self.fc1.weight.device)
        return self.fc2(torch.nn.functional.silu(self.fc1(features)))


HEAD_CONV_FEATURES = 8
"""Features a token writes per grid value for the head's convolution to mix."""


class TokenHead(OutputHead):
    """Final norm, then every token → its C · p · p values → the block's frames on the grid.

    With `model.head_conv_size` = k a token writes `HEAD_CONV_FEATURES` features per value instead, and a k × k
    convolution over each frame's whole grid (periodic in longitude, zero past the poles) turns them into the
    values: a value near a patch's edge then reads the next patch's token too, where a linear map of one token
    draws every patch on its own (the tiny prior's analysis mean showed its 8 × 8 patches). The head's output is
    gathered whole on every TP rank and its frames are the rank's CP block, so the convolution's weights are
    replicated and need no halo.

    `zero`: the head's last layer starts at zero (as DiT's adaLN-zero), so that an untrained denoiser over a
    Gaussian base is that Gaussian's exact denoiser and training starts from its loss."""

    def __init__(self, grid: PatchGrid, config: ModelConfig, ctx: TensorParallelContext, zero: bool = False):
        features = HEAD_CONV_FEATURES if config.head_conv_size else 1
        super().__init__(grid.token_values * features, config, ctx, zero=zero and not config.head_conv_size)
        self.grid = dataclasses.replace(grid, channels=grid.channels * features)
        self.conv_size = config.head_conv_size
        if self.conv_size:
            self.conv = torch.nn.Conv2d(self.grid.channels, grid.channels, self.conv_size, dtype=ctx.params_dtype)
            bound = 1.0 / math.sqrt(self.grid.channels * self.conv_size**2)  # PyTorch's default Conv2d init
            declare(self.conv.weight, constant(0.0) if zero else uniform(-bound, bound))
            declare(self.conv.bias, constant(0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.proj(self.normalized(x))[0]  # [S, B, C·p·p (× features)]
        frames = unpatchify(out.transpose(0, 1), self.grid)
        if not self.conv_size:
            return frames
        return self.conv(pad_sphere(frames.flatten(0, 1), self.conv_size // 2)).unflatten(0, frames.shape[:2])


class Denoiser(torch.nn.Module):
    def __init__(self, config: ModelConfig, frame_shape: tuple[int, int, int], ctx: TensorParallelContext,
                 preconditioning: Preconditioning, gaussian: Callable[[], ZonalGaussian] | None = None):
        """`gaussian`: fits the Gaussian whose exact denoiser the output adds to the network's
        (`diffusion.gaussian_base`); called at the first forward, so that building a skeleton reads no data."""
        super().__init__()
        self.preconditioning = preconditioning
        self.fit_gaussian, self.cp = gaussian, ctx.cp
        self.gaussian: ZonalGaussian | None = None
        self.tubelet = config.tubelet_frames
        channels, height, width = frame_shape
        tubelet_shape = (self.tubelet * channels, height, width)  # a tubelet is its frames' channels side by side
        (embedding, embedding_args), _, ctx = end_stages(config, tubelet_shape, 1, ctx)
        assert embedding is PatchEmbedding, "a denoiser needs model.tokens=patch (checked by the config)"
        self.input = PatchEmbedding(*embedding_args)
        self.noise_level = NoiseLevel(config.hidden_size, ctx)
        self.blocks = torch.nn.ModuleList(Block(config, ctx) for _ in range(config.num_layers))
        self.head = TokenHead(self.input.grid, config, ctx, zero=gaussian is not None)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t: [B, L, C, H, W] noised normalised frames (fp32 keeps the preconditioning exact), t: [B] or a
        scalar → F [B, L, C, H, W] in the weights' precision."""
        t = t.float().expand(x_t.shape[0]) if t.dim() == 0 else t.float()
        batch, steps, channels, height, width = x_t.shape
        x = self.preconditioning.network_input(x_t.float(), t)
        x = self.input(x.reshape(batch, steps // self.tubelet, self.tubelet * channels, height, width),
                       self.noise_level(t))
        for block in self.blocks:
            x = block(x)
        output = self.head(x).reshape(x_t.shape)
        if self.fit_gaussian is None:
            return output
        sde = self.preconditioning.sde
        estimate = self.base(x_t.device).estimate(x_t, sde.mu(t), sde.sigma(t), self.cp)
        return output + self.preconditioning.output_of_estimate(x_t.float(), t, estimate)

    def base(self, device: torch.device) -> ZonalGaussian:
        """The Gaussian base on `device`, fitted at the first call (`diffusion.gaussian_base`)."""
        if self.fit_gaussian is None:
            raise MegageoError("this denoiser has no Gaussian base (diffusion.gaussian_base is off)")
        if self.gaussian is None or self.gaussian.mean.device != device:
            self.gaussian = self.fit_gaussian().to(device)
        return self.gaussian


def noise_predictor(denoiser: Denoiser) -> NoisePredictor:
    """The sampler's view of a trained denoiser: ε̂ in fp32 on the sampler's device, whatever the weights' precision
    and device. The sampler's state stays where its generator draws (the CPU), so an ensemble is the same draw on
    any machine; only the denoiser's inputs and output cross to its device, and autograd follows them back."""
    device = next(denoiser.parameters()).device

    def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        x_model, t_model = x.to(device), t.to(device)
        return denoiser.preconditioning.noise(x_model, t_model, denoiser(x_model, t_model)).to(x.device)

    return eps


def base_jacobian(denoiser: Denoiser) -> Jacobian:
    """(v, t) → ∂x̂_G/∂x_t · v on the sampler's device, x̂_G the exact denoiser of the Gaussian base: the Jacobian
    that `diffusion.guidance_jacobian: gaussian_base` puts in place of the whole denoiser's. The network's
    correction is taken as locally constant in x_t, so guidance needs no backward pass through the network."""
    device = next(denoiser.parameters()).device
    sde = denoiser.preconditioning.sde

    def product(v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = t.to(device).float().expand(len(v))
        return denoiser.base(device).jacobian_product(v.to(device), sde.mu(t), sde.sigma(t), denoiser.cp).to(v)

    return product
