"""Configuration: YAML files with `section.key=value` overrides, resolved into typed dataclasses.

Every key is checked against its dataclass before any work starts, so a typo or a wrong type fails with
one line naming the key. Mixer settings are a registered choice (levanter-style): `megageo.mixer_configs`
declares one `MixerConfig` subclass per mixer under its name, and `model.mixer.type` picks one. Nothing here
imports the model: the mixer layers name their config classes when they register (`megageo.model.registry`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from megageo.data.variables import VARIABLES
from megageo.errors import MegageoError
from megageo.io.atomic import write_text
from megageo.mixer_configs import MixerConfig

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "tiny" / "gla.yaml"


NORMALISATIONS = ("channel", "grid_point")


@dataclass
class DataConfig:
    store: str = "demo_out/data/store.h5"
    t_in: int = 8
    t_out: int = 1
    stride: int = 1
    variables: list[str] = field(default_factory=list)
    """NCEP names of the variables the model reads and forecasts (hgt, uwnd, vwnd, air); empty: all the store has."""
    levels: list[float] = field(default_factory=list)
    """Pressure levels (hPa) of every variable; empty: all the store has. Channels are variable-major."""
    frames_dtype: str = "fp32"
    """`bf16` keeps input frames in bfloat16 from the store until the input projection (half the memory of the
    largest tensor of a long-context run; the projection itself computes in fp32)."""
    normalisation: str = "channel"
    """`channel`: each channel's mean and std over the training split. `grid_point`: each grid point's mean over
    the training split subtracted (its time mean, not a seasonal climatology), the anomalies divided by their rms
    per channel (`megageo.data.anomalies`)."""


@dataclass
class ModelConfig:
    mixer: MixerConfig = field(default_factory=MixerConfig)
    num_layers: int = 2
    hidden_size: int = 64
    ffn_hidden_size: int = 0
    """SwiGLU width; 0 means fla's rule (8/3 · hidden rounded up to 256). Mixers that have no MLP ignore it."""
    norm_eps: float = 1e-6
    init_std: float = 0.02
    tokens: str = "frame"
    """`frame`: one position per frame, the whole frame projected into it (the seed paper's model). `patch`: every
    frame cut into `patch_size`² patches, one token each, the window one sequence of T × P tokens (STORM's)."""
    patch_size: int = 4
    pole_padding: str = "split"
    """How `tokens: patch` pads the latitudes to a multiple of `patch_size`: `split` repeats each pole's row, half
    the rows north and the rest south; `south` repeats the south pole's only, megageo's layout before 2026-12-07,
    whose last token row could hold that pole alone. Token checkpoints that predate the key are read as `south`."""
    tubelet_frames: int = 1
    """With `tokens: patch`, a token holds its patch in this many consecutive frames (ViViT's tubelet), so a window
    of T frames is T / tubelet_frames × P tokens. Only a denoiser (`task: diffusion`), which writes every frame of
    its window, takes more than 1: its tokens then see how their patch changes without the mixer's help."""
    head_conv_size: int = 0
    """With `tokens: patch`, an odd k: a denoiser's head writes features rather than values, and a k × k
    convolution over each frame's grid turns them into values that read across patch seams
    (`megageo.da.denoiser.TokenHead`). Only a denoiser (`task: diffusion`) takes it. 0: each patch on its own."""
    frame_causal: bool = False
    """With `tokens: patch`, let every token see its whole frame as well as the frames before (attention by its
    mask, GLA and Mamba2 by reading each frame's state); the delta-rule mixers cannot."""
    head: str = "absolute"
    """`absolute`: the head writes the forecast fields (the seed paper's eq. 10). `residual`: it writes their change
    from the last input frame, starting from persistence (a zero-initialised head), so the model learns the
    flow's tendency rather than a smoothed state."""


@dataclass
class ParallelConfig:
    tensor_parallel: int = 1
    context_parallel: int = 1
    """Split each sample's frames into this many contiguous blocks, one per rank (world = TP × CP × PP × DP)."""
    pipeline_parallel: int = 1
    sequence_parallel: bool = False
    zero_stage: int = 0
    activation_checkpointing: bool = False


@dataclass
class TrainConfig:
    out_dir: str = "runs/default"
    steps: int = 100
    global_batch_size: int = 16
    micro_batch_size: int = 16
    lr: float = 3e-4
    min_lr: float = 0.0
    warmup_steps: int = 10
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-15
    grad_clip: float = 1.0
    precision: str = "auto"
    """bf16 on CUDA, fp32 on CPU unless set to `fp32` or `bf16` explicitly."""
    seed: int = 1234
    log_every: int = 1
    eval_every: int = 20
    eval_samples: int = 64
    save_every: int = 0
    keep_last: int = 2
    latitude_weighted_loss: bool = False
    """Weight each grid row's squared error by its cell area (WeatherBench 2's weights, mean 1) instead of the
    seed paper's plain MSE, which gives the crowded polar rows as much say as the tropics."""
    lead_weights: list[float] = field(default_factory=list)
    """One weight per predicted lead (data.t_out × train.rollout_steps), normalised to mean 1; empty = equal."""
    rollout_steps: int = 1
    """Train through the model's own rollout: feed its T_out predictions back this many times and score every
    lead, with gradients through the feedback (as GraphCast and FourCastNet fine-tune)."""


@dataclass
class EvalConfig:
    rollout_steps: int = 0
    """Extra autoregressive steps beyond `data.t_out` (feeding predictions back)."""
    batch_size: int = 32
    map_sample: int = 0


PREDICTIONS = ("edm", "epsilon", "x0")
SYMMETRIES = ("zonal_shift", "mirror")
GUIDANCE_JACOBIANS = ("network", "gaussian_base")


@dataclass
class DiffusionConfig:
    """`task: diffusion` (`megageo.da`): a score-based prior over windows of `data.t_in` frames, sampled with
    observations to give an analysis ensemble. The training keys are `eta`, `prediction`, `sigma_data`,
    `augment`, `gaussian_base` and `gaussian_taper_km`; the rest set the sampler."""

    eta: float = 1e-3
    """The VP SDE's end points: σ(0) = η (almost the data), μ(1) = η (almost pure noise)."""
    prediction: str = "edm"
    """What the denoiser network predicts: `edm` (the clean state's residual, preconditioned as in EDM; its error
    stays bounded at high noise), `epsilon` (the noise itself, SDA's reference; its clean-state estimate divides
    the error by μ(t), down to η at t = 1) or `x0` (the clean state itself: no skip of x_t, whose white noise the
    network must otherwise cancel point by point; measured on the tiny prior, its samples have the data's texture
    but, guided, they fit neither the observations nor keep a spread, README)."""
    sigma_data: float = 1.0
    """`edm`'s σ_d: its skip term is the exact denoiser of data with this standard deviation. Below 1 the skip
    fades at lower noise (toward `x0`'s texture) and still carries an almost clean x_t (keeping EDM's precision).
    Measured on the tiny prior: at 0.5, the one-window guided RMSE nearly doubles (README)."""
    augment: list[str] = field(default_factory=list)
    """Symmetries each training window takes at random (`megageo.da.augment`): `zonal_shift` (rolled in longitude)
    and `mirror` (north and south swapped). Exact for the embedded shallow-water model, approximate for a real
    reanalysis; `mirror` needs no v-wind among the variables (its sign would flip)."""
    gaussian_base: bool = False
    """Add to the network the exact denoiser of a Gaussian fitted to the training windows (`megageo.da.gaussian_prior`:
    their covariance averaged over every zonal shift and the north–south mirror, the embedded shallow-water model's
    symmetries), so that the network learns only the rest; a network that outputs zero samples that Gaussian's
    Kalman analysis; the head starts at zero, so training starts from the Gaussian. Fitted from `data.store` in
    training and again in sampling, so that store must be there. Measured (README, "A Gaussian base under the
    network"): the tiny prior's twin over three truths from 11.8 to 10.1 m with 16 members (window OI 9.8, LETKF
    10.0), CRPS from 6.4 to 5.5 m; on in the tiny config. For a reanalysis the symmetries are only approximate."""
    gaussian_taper_km: float = 6000.0
    """The Gaussian's Gaspari–Cohn half-width in great-circle distance (0: untapered). On the first twin truth its
    Kalman analysis scores 9.48 m at 6000 km, 9.53 m at 10000 km and 9.75 m untapered (window OI: 9.74 m)."""
    steps: int = 32
    """Predictor steps from t = 1 to 0."""
    corrections: int = 1
    """Langevin corrector steps after each predictor step."""
    tau: float = 0.05
    """The corrector's step size, in units of σ(t)² over the mean square of ε̂. Larger inflates the spread: with an
    exact denoiser of unit Gaussian data and 32 steps, τ = 0.5 (SDA's) draws a standard deviation of 1.12."""
    guidance: str = "mmps"
    """How observations enter: `mmps` (moment matching, `cg_steps` conjugate-gradient steps through the denoiser's
    Jacobian) or `gaussian` (SDA's likelihood with the γ term). Measured on the tiny 400-step prior without its grid
    convolution, one window, 10 % stations: normalised analysis RMSE 0.135 for `gaussian`, 0.159 for `mmps` with 1
    CG step and 0.727 with 3 (that Jacobian is no covariance at high noise). But `gaussian` has no prior covariance
    to temper it: with 8 steps and 2 m errors it diverged where `mmps` fits the observations
    (tests/da/test_diffusion_task.py). Over a Gaussian base, through its Jacobian (`guidance_jacobian`), `mmps`
    with 10 CG steps leads: the tiny config's twin over three truths 9.9 m, spread-skill 0.92."""
    gamma: float = 1e-2
    cg_steps: int = 1
    guidance_jacobian: str = "network"
    """Whose Jacobian ∂x̂/∂x_t carries the observations back to the noised state: `network` (the whole denoiser's,
    by autograd: a backward pass at every denoiser call) or `gaussian_base` (only the Gaussian base's, in closed
    form, with `gaussian_base`: the network's correction is taken as locally constant, so the sampler runs the
    network forward only; exact for a network that outputs zero). Measured on the tiny prior's first twin truth, 8
    members: γ guidance 10.00 m either way, in 64 s a batch of 4 cycles against 246 s; MMPS with 10 CG steps (each
    now a closed-form product, not a backward pass) 9.92 m, spread-skill 0.96, CRPS 5.07 m (γ's: 0.73, 5.42 m), and
    9.91 m without the corrector in 60 s a batch (README, "Guidance through the base's Jacobian")."""
    members: int = 16
    """Analysis ensemble size."""
    spectral_truncation: int = 0
    """Project the analyses (`da assimilate`, `da twin`), in physical units, onto the spherical harmonics of degree
    below this: the data's own resolution (the embedded shallow-water model's is 37). 0: none. Measured on the
    first twin truth: the polar-cap rows from 9–13 m to 4–8 m, the RMSE 11.35 → 11.18 m, spread-skill 0.69 → 0.66."""
    random_shift: bool = False
    """Roll the state by a new random number of longitudes at each denoiser call and its output back
    (`megageo.da.posterior.RandomlyShifted`), so the patch seams move every step; for a prior trained with
    `augment: [zonal_shift]`, to which any shift is alike."""
    start_time: float = 1.0
    """The noise level t₀ the sampler starts at: 1, from pure noise (the one-stage method); below 1, from the window's
    Gaussian analysis (window OI: the same observations under the covariance of the store's training windows)
    noised to t₀, so that the learned prior refines a first guess instead of drawing the whole state (SDEdit);
    the steps keep their size, so t₀ = 0.25 takes a quarter of them. `da twin` only. Measured on the tiny prior's
    first twin truth: 10.1 m at t₀ = 0.1, 10.8 m at 0.25, 11.2 m at 0.5, window OI itself 9.7 m (README, "A Gaussian
    first guess"): the learned prior moves the Gaussian analysis away from the truth."""
    max_windows: int = 0
    """Windows the denoiser sees in one pass (members × cycles are sampled together); 0: all at once. Bounds the
    sampler's memory: a 340M-class prior keeps about 10 GiB of activations per 4-frame window in fp32."""


TASKS = ("forecast", "diffusion")


@dataclass
class Config:
    task: str = "forecast"
    """What the model learns: `forecast` (the seed paper's next frames) or `diffusion` (a prior over windows for
    generative data assimilation, `megageo da`)."""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)

    def to_dict(self) -> dict[str, Any]:
        resolved = dataclasses.asdict(self)
        resolved["model"]["mixer"] = {"type": self.model.mixer.type, **resolved["model"]["mixer"]}
        return resolved


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML config (the embedded tiny GLA when `path` is None), apply `key=value` overrides, validate."""
    raw = read_yaml(Path(path) if path is not None else DEFAULT_CONFIG)
    for override in overrides:
        apply_override(raw, override)
    config = _build(Config, raw, "")
    validate(config)
    return config


def config_from_dict(raw: dict[str, Any]) -> Config:
    """Rebuild the `Config` that `Config.to_dict` resolved (as checkpoints record it), validated like a file."""
    model = raw.get("model", {})
    if model.get("tokens") == "patch" and "pole_padding" not in model:
        raw = {**raw, "model": {**model, "pole_padding": "south"}}  # recorded before the key: the layout it had
    config = _build(Config, raw, "")
    validate(config)
    return config


SAMPLER_KEYS = ("steps", "corrections", "tau", "guidance", "gamma", "cg_steps", "guidance_jacobian", "members",
                "max_windows", "random_shift", "spectral_truncation", "start_time")


def with_sampler_overrides(config: Config, overrides: list[str] | tuple[str, ...]) -> Config:
    """A checkpoint's config with `diffusion.KEY=value` overrides of the sampler's keys, validated. The training
    keys (`eta`, `prediction`) and every other section are what the weights were trained with, so they are refused."""
    raw = config.to_dict()
    allowed = [f"diffusion.{key}" for key in SAMPLER_KEYS]
    for override in overrides:
        if override.partition("=")[0].strip() not in allowed:
            raise MegageoError(f"--set {override!r}: only the sampler's keys can be set here ({', '.join(allowed)})")
        apply_override(raw, override)
    return config_from_dict(raw)


def read_yaml(path: Path) -> dict[str, Any]:
    """Read one config file; a top-level `base: other.yaml` (relative to this file) is read first and updated."""
    if not path.is_file():
        raise MegageoError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise MegageoError(f"config file {path} is not valid YAML: {str(error).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise MegageoError(f"config file {path} must hold a mapping of sections, not {type(raw).__name__}")
    base = raw.pop("base", None)
    return _merge(read_yaml(path.parent / base), raw) if base else raw


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        both_mappings = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = _merge(merged[key], value) if both_mappings else value
    return merged


def apply_override(raw: dict[str, Any], override: str) -> None:
    """Set `a.b.c=value` in the nested mapping; the value is parsed as YAML (so `3e-4`, `true`, `[1,2]` work)."""
    key, sep, text = override.partition("=")
    if not sep or not key:
        raise MegageoError(f"override {override!r} must look like section.key=value")
    *parents, leaf = key.strip().split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise MegageoError(f"override {override!r}: {part!r} is a value, not a section")
    node[leaf] = yaml.safe_load(text)


def _build(cls: type, raw: Any, prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise MegageoError(f"config key {prefix.rstrip('.') or '<root>'} must be a mapping")
    if cls is MixerConfig:
        cls = _mixer_class(raw, prefix)
        raw = {key: value for key, value in raw.items() if key != "type"}
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise MegageoError(
            f"unknown config key {prefix}{unknown[0]} (valid keys in {prefix.rstrip('.') or 'the root'}: "
            f"{', '.join(fields)})"
        )
    values = {name: _coerce(hints[name], raw[name], f"{prefix}{name}") for name in raw}
    for name, spec in fields.items():
        if name not in values and dataclasses.is_dataclass(hints[name]):
            values[name] = _build(hints[name], {}, f"{prefix}{name}.")
    return cls(**values)


def _mixer_class(raw: dict[str, Any], prefix: str) -> type[MixerConfig]:
    name = raw.get("type")
    if name not in MixerConfig.registry:
        choices = ", ".join(sorted(MixerConfig.registry))
        raise MegageoError(f"config key {prefix}type must name a mixer ({choices}), got {name!r}")
    return MixerConfig.registry[name]


def _coerce(hint: Any, value: Any, key: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, f"{key}.")
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        hint = next(option for option in options if option is not type(None))
        origin = typing.get_origin(hint)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise MegageoError(f"config key {key} must be a list, got {value!r}")
        (item,) = typing.get_args(hint)[:1] or (Any,)
        return [_coerce(item, element, key) for element in value]
    if hint is float and isinstance(value, (int, str)) and not isinstance(value, bool):
        try:
            return float(value)  # YAML 1.1 reads `3e-4` (no dot) as a string
        except ValueError:
            pass
    if hint in (int, float, str, bool) and not (isinstance(value, hint) and not (hint is int and isinstance(value, bool))):
        raise MegageoError(f"config key {key} must be {hint.__name__}, got {value!r}")
    return value


def validate(config: Config) -> None:
    """Check relations between keys that no single field's type can express."""
    model, parallel, train, data = config.model, config.parallel, config.train, config.data
    positive = {
        "data.t_in": data.t_in, "data.t_out": data.t_out, "data.stride": data.stride,
        "model.num_layers": model.num_layers, "model.hidden_size": model.hidden_size,
        "model.mixer.num_heads": model.mixer.num_heads, "parallel.tensor_parallel": parallel.tensor_parallel,
        "parallel.context_parallel": parallel.context_parallel, "parallel.pipeline_parallel": parallel.pipeline_parallel, "train.steps": train.steps,
        "train.global_batch_size": train.global_batch_size, "train.micro_batch_size": train.micro_batch_size,
    }
    for key, value in positive.items():
        if value < 1:
            raise MegageoError(f"config key {key} must be at least 1, got {value}")
    if model.mixer.num_heads % parallel.tensor_parallel:
        raise MegageoError(
            f"model.mixer.num_heads={model.mixer.num_heads} is not divisible by "
            f"parallel.tensor_parallel={parallel.tensor_parallel}: each TP rank must own whole heads"
        )
    if model.num_layers < parallel.pipeline_parallel:
        raise MegageoError(
            f"model.num_layers={model.num_layers} is fewer than parallel.pipeline_parallel="
            f"{parallel.pipeline_parallel}: every pipeline stage needs at least one block"
        )
    if parallel.zero_stage not in (0, 1, 2, 3):
        raise MegageoError(f"config key parallel.zero_stage must be 0, 1, 2 or 3, got {parallel.zero_stage}")
    if parallel.pipeline_parallel > 1 and parallel.zero_stage > 1:
        raise MegageoError(
            f"parallel.zero_stage={parallel.zero_stage} cannot be combined with pipeline_parallel="
            f"{parallel.pipeline_parallel}: DeepSpeed's pipeline engine supports ZeRO stage 0 or 1 only"
        )
    if parallel.sequence_parallel and parallel.tensor_parallel == 1:
        raise MegageoError("parallel.sequence_parallel needs parallel.tensor_parallel > 1 (it splits along TP ranks)")
    _validate_tokens(model)
    _validate_context_parallel(config)
    _validate_objective(config)
    _validate_task(config)
    for name in data.variables:
        if name not in VARIABLES:
            raise MegageoError(f"config key data.variables names '{name}', not one of {', '.join(VARIABLES)}")
    if data.normalisation not in NORMALISATIONS:
        raise MegageoError(f"config key data.normalisation must be channel or grid_point, got {data.normalisation!r}")
    if data.frames_dtype not in ("fp32", "bf16"):
        raise MegageoError(f"config key data.frames_dtype must be fp32 or bf16, got {data.frames_dtype!r}")
    if train.precision not in ("auto", "fp32", "bf16"):
        raise MegageoError(f"config key train.precision must be auto, fp32 or bf16, got {train.precision!r}")
    if train.global_batch_size % train.micro_batch_size:
        raise MegageoError(
            f"train.global_batch_size={train.global_batch_size} is not a multiple of "
            f"train.micro_batch_size={train.micro_batch_size}"
        )
    config.model.mixer.validate(model.hidden_size, parallel.tensor_parallel)


def _validate_tokens(model: ModelConfig) -> None:
    if model.tokens not in ("frame", "patch"):
        raise MegageoError(f"config key model.tokens must be frame or patch, got {model.tokens!r}")
    if model.patch_size < 1:
        raise MegageoError(f"config key model.patch_size must be at least 1, got {model.patch_size}")
    if model.pole_padding not in ("split", "south"):
        raise MegageoError(f"config key model.pole_padding must be split or south, got {model.pole_padding!r}")
    if model.tubelet_frames < 1 or (model.tubelet_frames > 1 and model.tokens != "patch"):
        raise MegageoError(f"config key model.tubelet_frames must be at least 1, and above 1 only with "
                           f"model.tokens=patch; got {model.tubelet_frames}")
    if model.head_conv_size < 0 or (model.head_conv_size and model.head_conv_size % 2 == 0):
        raise MegageoError(f"config key model.head_conv_size must be 0 or odd (a centred kernel), got "
                           f"{model.head_conv_size}")
    if getattr(model.mixer, "grid_conv_size", 0) and model.tokens != "patch":
        raise MegageoError("model.mixer.grid_conv_size convolves each frame's patch grid: it needs model.tokens=patch")
    if model.frame_causal and model.tokens != "patch":
        raise MegageoError("model.frame_causal needs model.tokens=patch (with one token per frame every model is)")
    if model.frame_causal and not model.mixer.supports_frame_causal:
        raise MegageoError(
            f"model.frame_causal is not available for mixer {model.mixer.type}: a delta rule's state after a frame is "
            "a product of non-commuting (I - beta k k^T) updates, so a frame cannot be read at once (use gla, mamba2, "
            "transformer or global_linear)"
        )


def _validate_objective(config: Config) -> None:
    model, train, parallel = config.model, config.train, config.parallel
    if model.head not in ("absolute", "residual"):
        raise MegageoError(f"config key model.head must be absolute or residual, got {model.head!r}")
    if train.rollout_steps < 1:
        raise MegageoError(f"config key train.rollout_steps must be at least 1, got {train.rollout_steps}")
    if train.rollout_steps > 1 and (parallel.pipeline_parallel > 1 or parallel.context_parallel > 1):
        raise MegageoError(
            f"train.rollout_steps={train.rollout_steps} feeds whole forecasts back into the input window, which "
            "needs the whole window on one rank: use it with parallel.pipeline_parallel=1 and context_parallel=1"
        )
    leads = config.data.t_out * train.rollout_steps
    weights = train.lead_weights
    if weights and (len(weights) != leads or min(weights) < 0 or sum(weights) <= 0):
        raise MegageoError(
            f"train.lead_weights needs {leads} non-negative weights, not all zero (data.t_out={config.data.t_out} "
            f"× train.rollout_steps={train.rollout_steps}), got {weights}"
        )


def _validate_task(config: Config) -> None:
    if config.task not in TASKS:
        raise MegageoError(f"config key task must be {' or '.join(TASKS)}, got {config.task!r}")
    if config.task != "diffusion":
        if config.model.tubelet_frames > 1:
            raise MegageoError("model.tubelet_frames > 1 is for task: diffusion (a forecaster's head reads its last "
                               "frame's tokens)")
        if config.model.head_conv_size:
            raise MegageoError("model.head_conv_size is for task: diffusion (a denoiser's head writes every frame)")
        return
    model, train, diffusion = config.model, config.train, config.diffusion
    if model.tokens != "patch" or model.frame_causal:
        raise MegageoError("task: diffusion denoises every token of a window at once: it needs model.tokens=patch "
                           "and model.frame_causal=false")
    if config.parallel.pipeline_parallel > 1:
        raise MegageoError("task: diffusion runs with parallel.pipeline_parallel=1 (its denoiser is not staged)")
    if train.rollout_steps > 1 or train.lead_weights or model.head != "absolute":
        raise MegageoError("train.rollout_steps, train.lead_weights and model.head=residual are forecast settings; "
                           "task: diffusion takes none of them")
    if not 0 < diffusion.eta < 1 or diffusion.steps < 1 or diffusion.corrections < 0 or diffusion.tau <= 0:
        raise MegageoError("diffusion needs 0 < eta < 1, steps >= 1, corrections >= 0 and tau > 0, got "
                           f"eta={diffusion.eta}, steps={diffusion.steps}, corrections={diffusion.corrections}, "
                           f"tau={diffusion.tau}")
    if not diffusion.sigma_data > 0:
        raise MegageoError(f"diffusion.sigma_data must be positive, got {diffusion.sigma_data}")
    if diffusion.prediction not in PREDICTIONS:
        raise MegageoError(f"diffusion.prediction must be {' or '.join(PREDICTIONS)}, got {diffusion.prediction!r}")
    if diffusion.guidance not in ("mmps", "gaussian") or diffusion.members < 1 or diffusion.cg_steps < 1:
        raise MegageoError(f"diffusion.guidance must be mmps or gaussian (got {diffusion.guidance!r}), "
                           f"members and cg_steps at least 1 (got {diffusion.members}, {diffusion.cg_steps})")
    if diffusion.guidance_jacobian not in GUIDANCE_JACOBIANS:
        raise MegageoError(f"diffusion.guidance_jacobian must be {' or '.join(GUIDANCE_JACOBIANS)}, got "
                           f"{diffusion.guidance_jacobian!r}")
    if diffusion.guidance_jacobian == "gaussian_base" and not diffusion.gaussian_base:
        raise MegageoError("diffusion.guidance_jacobian: gaussian_base needs a prior trained with "
                           "diffusion.gaussian_base: true")
    if diffusion.max_windows < 0:
        raise MegageoError(f"diffusion.max_windows must be 0 (all at once) or positive, got {diffusion.max_windows}")
    unknown = sorted(set(diffusion.augment) - set(SYMMETRIES))
    if unknown:
        raise MegageoError(f"diffusion.augment takes {' and '.join(SYMMETRIES)}, got {', '.join(map(str, unknown))}")
    if diffusion.spectral_truncation < 0:
        raise MegageoError(f"diffusion.spectral_truncation must be 0 (none) or a degree, got "
                           f"{diffusion.spectral_truncation}")
    if diffusion.gaussian_taper_km < 0:
        raise MegageoError(f"diffusion.gaussian_taper_km must be 0 (untapered) or a half-width, got "
                           f"{diffusion.gaussian_taper_km}")
    if not 0 < diffusion.start_time <= 1:
        raise MegageoError(f"diffusion.start_time must be in (0, 1] (1: from pure noise), got {diffusion.start_time}")
    if diffusion.random_shift and "zonal_shift" not in diffusion.augment:
        raise MegageoError("diffusion.random_shift needs a prior trained with diffusion.augment: [zonal_shift] (one "
                           "trained without it has learned where its patch seams are)")
    if "mirror" in diffusion.augment and "vwnd" in config.data.variables:
        raise MegageoError("diffusion.augment: mirror would flip v-wind's sign, which it does not do; drop vwnd "
                           "from data.variables or the mirror")
    if diffusion.gaussian_base and "vwnd" in config.data.variables:
        raise MegageoError("diffusion.gaussian_base averages over the north-south mirror, which would flip v-wind's "
                           "sign; drop vwnd from data.variables")


def _validate_context_parallel(config: Config) -> None:
    """CP splits the T_in input frames into contiguous blocks; each block must hold the conv halo, and under
    sequence parallel it is split again across the TP ranks."""
    parallel, t_in = config.parallel, config.data.t_in
    cp = parallel.context_parallel
    if t_in % cp:
        raise MegageoError(
            f"data.t_in={t_in} frames cannot be split into parallel.context_parallel={cp} equal blocks"
        )
    block = t_in // cp
    tubelet = config.model.tubelet_frames
    if block % tubelet:
        raise MegageoError(f"blocks of {block} frames (data.t_in={t_in} / parallel.context_parallel={cp}) cannot be "
                           f"cut into tubelets of model.tubelet_frames={tubelet}")
    mixer = config.model.mixer
    halo = getattr(mixer, "conv_size", 1) - 1 if getattr(mixer, "use_short_conv", False) else 0
    if cp > 1 and block < halo:
        raise MegageoError(
            f"context-parallel blocks of {block} frames (data.t_in={t_in} / parallel.context_parallel={cp}) are "
            f"shorter than the short convolution's halo of {halo} frames (model.mixer.conv_size - 1)"
        )
    grid_halo = getattr(mixer, "grid_conv_frames", 1) // 2
    if cp > 1 and block // tubelet < grid_halo:
        raise MegageoError(
            f"context-parallel blocks of {block // tubelet} token frames are shorter than the grid convolution's "
            f"halo of {grid_halo} (model.mixer.grid_conv_frames // 2)"
        )
    if parallel.sequence_parallel and block % parallel.tensor_parallel:
        raise MegageoError(
            f"parallel.sequence_parallel splits each block of {block} frames (data.t_in / parallel.context_parallel) "
            f"across parallel.tensor_parallel={parallel.tensor_parallel} ranks: it must divide evenly"
        )


def dump_config(config: Config, path: str | Path) -> None:
    write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
