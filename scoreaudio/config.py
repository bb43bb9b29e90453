"""Typed configuration: a dataclass schema, YAML fragments, recipes and command-line overrides.

``compose(recipe, overrides)`` merges, later winning:

    schema defaults  <-  configs/<group>/<name>.yaml named by the recipe's ``defaults:`` list
                     <-  the recipe body  <-  ``key=value`` overrides from the command line

The result is an omegaconf ``DictConfig`` in struct mode: an unknown key is a :class:`ConfigError`
naming the nearest valid keys, a ``???`` value left unset is an error naming the key and the
recipe, and a choice outside its valid set (``model.backbone=unet3d``) names the valid choices.
``${data.sample_rate}``-style interpolation works anywhere.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .errors import ConfigError, one_line

#: The folders that hold configs/<group>/<name>.yaml and the recipes: the repository root in a
#: checkout (and an editable install); a wheel ships copies as scoreaudio/_configs and _recipes.
PACKAGE_DIR = Path(__file__).resolve().parent
CONFIG_DIRS = (PACKAGE_DIR.parent / "configs", PACKAGE_DIR / "_configs")
RECIPE_DIRS = (PACKAGE_DIR.parent / "recipes", PACKAGE_DIR / "_recipes")


def find_recipe(recipe: Union[str, Path]) -> Optional[Path]:
    """The recipe file ``recipe`` names: an existing path as given; else a name (``quickstart``) or a
    path into a ``recipes/`` folder (``recipes/quickstart.yaml``, as the README types it) looked up
    in ./recipes and in the package's recipes (so an installed wheel runs the README's commands
    from any folder). None when there is no such recipe."""
    path = Path(recipe)
    if path.is_file():
        return path
    if not path.suffix:
        name = path.name
    elif path.suffix in (".yaml", ".yml") and path.parent.name in ("recipes", ""):
        name = path.stem
    else:
        return None
    for d in (Path("recipes"), *RECIPE_DIRS):
        if (d / f"{name}.yaml").is_file():
            return d / f"{name}.yaml"
    return None


# --------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------
@dataclass
class SyntheticConfig:
    """The built-in speech-like corpus (scoreaudio/data/synthetic.py)."""

    num_speakers: int = 6  # distinct voices (pitch range, formant scale, speaking rate)
    train_utterances: int = 240  # utterances in the train split
    valid_utterances: int = 24  # utterances in the valid split (speakers shared with train)
    test_utterances: int = 24  # utterances in the test split
    utterance_seconds: float = 2.5  # mean duration of one utterance, seconds
    seed: int = 0  # everything in the corpus is a pure function of this seed


@dataclass
class NoiseSourceConfig:
    """One noise source of ``data.noise_mix.sources`` (scoreaudio/data/noise_sources.py)."""

    kind: str = "white"  # white|pink|brown|babble|folder|musan|demand|wham|dns
    root: Optional[str] = None  # the corpus folder (recordings only)
    weight: float = 1.0  # relative draw probability
    split: str = "train"  # train|valid|test|all: which part of the corpus (hash split unless it has its own)
    test_share: float = 0.3  # hash-split corpora: share of recordings kept for test
    subsets: List[str] = field(default_factory=lambda: ["noise", "music"])  # musan: noise|music|speech
    channel: int = 1  # demand: the microphone used per environment (ch01 = 1)
    talkers: List[int] = field(default_factory=lambda: [3, 7])  # babble: [min, max] other talkers


@dataclass
class NoiseMixConfig:
    """On-the-fly noise mixing: turns clean utterances into (clean, noisy) pairs."""

    enabled: bool = False  # mix noise into every training example (conditional denoising)
    # A weighted list of sources (kind, root, weight, ...); when empty, `kinds` and `folder` below
    # are used with equal weights (the older form).
    sources: List[NoiseSourceConfig] = field(default_factory=list)
    kinds: List[str] = field(default_factory=lambda: ["white", "pink", "brown"])  # generated colours
    folder: Optional[str] = None  # a folder of noise recordings, drawn from alongside `kinds`
    snr_db_min: float = 0.0  # lowest SNR drawn, dB (uniform in [min, max])
    snr_db_max: float = 20.0  # highest SNR drawn, dB
    reverb_prob: float = 0.0  # share of examples put in a simulated room first (pyroomacoustics)
    reverb_rt60: List[float] = field(default_factory=lambda: [0.2, 0.8])  # reverb: RT60 range, seconds


@dataclass
class DataConfig:
    """Which corpus, where it lives, and how examples are cut from it."""

    dataset: str = "synthetic"  # synthetic|ljspeech|vctk|voicebank_demand|librispeech|libritts|sc09|folder
    root: Optional[str] = None  # dataset root folder; falls back to the environment variable `root_env`
    root_env: Optional[str] = None  # environment variable that holds the root (e.g. LJSPEECH_ROOT)
    sample_rate: int = 16000  # Hz; files at other rates are resampled on load
    segment_seconds: float = 2.0  # training crop length, seconds (short files are zero-padded)
    normalize: str = "peak"  # peak|rms|none: per-example loudness normalisation before encoding
    peak_level: float = 0.9  # target peak for normalize=peak (full scale = 1)
    rms_db: float = -25.0  # target RMS level, dBFS, for normalize=rms
    train_subsets: List[str] = field(default_factory=list)  # LibriSpeech/LibriTTS subsets used for training
    valid_subsets: List[str] = field(default_factory=list)  # ... for validation
    test_subsets: List[str] = field(default_factory=list)  # ... for testing
    valid_fraction: float = 0.05  # folder corpus: share of files (by path hash) held out for valid
    test_fraction: float = 0.05  # folder corpus: share held out for test
    split_by: str = "file"  # folder corpus: hash the file path (file) or its speaker folder (speaker)
    max_files: Optional[int] = None  # cap on files per split (quick experiments); None = all
    manifest_cache: bool = True  # cache scanned manifests as JSONL so a second start does not rescan
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    noise_mix: NoiseMixConfig = field(default_factory=NoiseMixConfig)


@dataclass
class RepresentationConfig:
    """The seam between audio and the diffusion space (scoreaudio/audio/representation.py)."""

    kind: str = "stft"  # stft (compressed complex STFT, 2 channels) | waveform (1 channel)
    n_fft: int = 510  # STFT size; n_fft/2+1 frequency bins (256 at 510)
    hop_length: int = 128  # STFT hop, samples
    window: str = "hann"  # analysis/synthesis window
    alpha: float = 0.5  # amplitude compression exponent: beta*|X|^alpha*exp(i angle X)
    beta: float = 0.15  # amplitude compression scale


@dataclass
class WaveNetConfig:
    """DiffWave-style dilated residual stack for (B, 1, T) waveforms."""

    residual_channels: int = 64  # channels in every residual block
    residual_layers: int = 30  # number of residual blocks
    dilation_cycle: int = 10  # dilations 1, 2, 4, ... 2^(cycle-1), repeated
    kernel_size: int = 3  # dilated convolution kernel


@dataclass
class UNet2dConfig:
    """U-Net over (B, C, F, T) spectrograms."""

    channels: int = 32  # channels at the top resolution
    channel_mult: List[int] = field(default_factory=lambda: [1, 2, 2])  # per resolution level
    num_res_blocks: int = 1  # residual blocks per level (encoder side)
    attention: bool = True  # self-attention at the lowest resolution
    attention_heads: int = 4  # heads of that attention
    dropout: float = 0.0  # dropout inside residual blocks
    groups: int = 8  # GroupNorm groups
    norm: str = "global"  # global (GroupNorm, attention over F x T) | frame (per frame: local in time)


@dataclass
class MLPConfig:
    """Sigma-conditioned MLP for low-dimensional toy data."""

    hidden: int = 128  # hidden width
    layers: int = 3  # hidden layers


@dataclass
class STFTUNetConfig:
    """stft_unet: waveform state, the STFT inside the network (scoreaudio/nn/stft_unet.py).

    The inner U-Net's settings are model.unet2d's; these say how it is wrapped."""

    n_fft: int = 510  # STFT size inside the network; n_fft/2+1 bins (256 at 510)
    hop_length: int = 128  # STFT hop, samples (at most n_fft/2)
    alpha: float = 0.5  # input compression beta*|X|^alpha*exp(i angle X) of the normalised STFT
    beta: float = 1.0  # on the STFT / sqrt(sum w^2), where unit-variance noise has E|X|^2 = 1
    output: str = "linear"  # linear (U-Net emits the spectrogram) | compressed (undo the compression first)


@dataclass
class ModelConfig:
    """The score network: a backbone inside a preconditioning wrapper (scoreaudio/nn)."""

    backbone: str = "unet2d"  # unet2d (spectrogram) | wavenet | stft_unet (waveform) | mlp (toy data)
    preset: str = "custom"  # name of the configs/model preset this came from (for `scoreaudio info`)
    parameterisation: str = "edm"  # edm (c_skip/c_out/c_in preconditioning) | ncsnv2 (F(x)/sigma)
    sigma_data: Optional[float] = None  # data std in model space; None = measured from data at start
    embedding: str = "fourier"  # fourier|sinusoidal features of log sigma
    embedding_dim: int = 128  # width of the sigma embedding
    conditional: bool = False  # the network also takes the noisy input (cond channels): a denoiser
    cond_skip: bool = False  # conditional EDM: D = c_skip x + (1 - c_skip) y + c_out F (F: the correction)
    energy: bool = False  # score = -grad of E = |x - D(x)|^2 / 2 sigma^2 (conservative; ~2-3x the step cost)
    wavenet: WaveNetConfig = field(default_factory=WaveNetConfig)
    unet2d: UNet2dConfig = field(default_factory=UNet2dConfig)
    mlp: MLPConfig = field(default_factory=MLPConfig)
    stft_unet: STFTUNetConfig = field(default_factory=STFTUNetConfig)


@dataclass
class NoiseConfig:
    """The sigma ladder and the training-time sigma distribution (scoreaudio/noise.py)."""

    sigma_min: float = 0.002  # smallest noise level, in model space
    sigma_max: Optional[float] = None  # largest; None = NCSNv2 technique 1 (max pairwise distance)
    num_levels: Optional[int] = None  # ladder length; None = NCSNv2 technique 2 (from the dimension)
    train_distribution: str = "log_normal"  # log_normal (EDM) | mixture (denoising priors) | conditional | ouve (SGMSE+) | log_uniform | discrete
    log_normal_mean: float = -0.5  # log_normal: mean of ln(sigma / sigma_data) (EDM: -1.2 at sigma_data 0.5)
    log_normal_std: float = 1.2  # log_normal: std of ln(sigma)
    denoise_band: List[float] = field(default_factory=lambda: [0.02, 2.0])  # mixture: [lo, hi] x sigma_data
    band_weight: float = 0.5  # mixture: share of the draws log-uniform in denoise_band
    predictive_share: float = 0.5  # conditional: share of the draws at sigma_max (the one-call estimate)
    ouve_gamma: float = 1.5  # ouve: the mean-reversion stiffness gamma (SGMSE+)
    ouve_sigma_min: float = 0.2  # ouve: diffusion scale at t = 0, x sigma_data (SGMSE+: 0.05 on its data)
    ouve_sigma_max: float = 2.0  # ouve: the diffusion scale at t = 1, x sigma_data (SGMSE+'s 0.5)
    ouve_t_eps: float = 0.03  # ouve: the smallest diffusion time trained and sampled


@dataclass
class LossConfig:
    """The training objective (scoreaudio/losses.py)."""

    objective: str = "dsm"  # dsm | ssm | cdsm (conditional DSM on clean/noisy pairs)
    n_projections: int = 1  # ssm: random projections per example
    variance_reduction: bool = True  # ssm: use SSM-VR (closed-form E[(v's)^2])
    projection: str = "rademacher"  # ssm: rademacher | gaussian
    weighting: str = "auto"  # auto (edm if parameterisation=edm, else sigma2) | edm (unit on F) | sigma2
    predictive_spectral_weight: float = 0.0  # conditional, waveform state: add this x the compressed multi-resolution spectral loss on the sigma_max (one-call) draws
    spectral_n_ffts: List[int] = field(default_factory=lambda: [256, 512, 1024])  # STFT sizes (hop n_fft / 4)
    spectral_compression: float = 0.3  # the spectral loss's magnitude exponent


@dataclass
class SamplerConfig:
    """How samples are drawn (scoreaudio/sampling.py) in training's sample hook and `generate`."""

    name: str = "heun"  # heun (probability-flow ODE, EDM) | pc (predictor-corrector) | ald (ann. Langevin)
    steps: int = 35  # total network evaluations, shared over the ladder
    snr: float = 0.4  # pc: Langevin corrector signal-to-noise ratio (best of 0.05 / 0.16 / 0.4 on speech: docs/benchmarks.md)
    final_denoise: bool = True  # end with one Tweedie step at sigma_min


@dataclass
class TrainConfig:
    """The training loop (scoreaudio/train.py)."""

    steps: int = 10000  # optimiser steps
    batch_size: int = 16  # examples per step (per process under DDP)
    grad_accum: int = 1  # micro-batches accumulated per optimiser step
    lr: float = 2e-4  # AdamW peak learning rate
    weight_decay: float = 0.0  # AdamW weight decay
    warmup_steps: int = 500  # linear learning-rate warm-up
    lr_schedule: str = "cosine"  # after warm-up: cosine (to lr_min_ratio*lr) | inv_sqrt (EDM2) | constant
    lr_min_ratio: float = 0.05  # cosine: the floor, as a fraction of train.lr
    lr_ref_steps: int = 2000  # inv_sqrt: lr * 1/sqrt(max(step / lr_ref_steps, 1))
    adam_beta2: float = 0.999  # AdamW beta2 (0.99 suits short runs: the second moment adapts faster)
    grad_clip: float = 1.0  # global gradient-norm clip; 0 disables
    ema_half_life: Optional[float] = None  # EMA half-life, optimiser steps; None = ema_fraction * train.steps
    ema_fraction: float = 0.05  # EMA half-life as a share of the run, when ema_half_life is None
    precision: str = "auto"  # auto (bf16 on CUDA, fp32 on CPU) | bf16 | fp32
    compile: bool = False  # torch.compile the network
    device: str = "auto"  # auto (CUDA when available) | cpu | cuda | cuda:N
    seed: int = 0  # seeds data order, crops, sigmas and noise
    num_workers: int = 0  # DataLoader worker processes
    log_every: int = 50  # steps between log lines / metric rows
    val_every: int = 1000  # steps between validations; 0 disables
    val_examples: int = 32  # validation examples (fixed crops)
    calibrate_noise_map: bool = True  # at the end, fit the denoiser's sigma-map scale on validation speech
    val_sigmas: List[float] = field(default_factory=lambda: [0.01, 0.05, 0.2, 1.0])  # validation DSM curves
    sample_every: int = 0  # steps between audio samples; 0 = only at the end
    num_samples: int = 2  # samples drawn by the sample hook
    sample_seconds: float = 2.0  # length of those samples
    ckpt_every: int = 1000  # steps between numbered checkpoints (last.pt is refreshed too)
    runs_root: str = "runs"  # where run directories are created
    run_dir: Optional[str] = None  # explicit run directory; default runs/<recipe>-<timestamp>
    resume: str = "auto"  # auto (continue the run in run_dir if any) | never | PATH to a checkpoint
    init_from: Optional[str] = None  # fine-tune from: a run, a .pt, a .safetensors or "default" (its sigmas)
    allow_config_change: bool = False  # resume with changed step-deciding settings (logged; not exact)
    overwrite: bool = False  # let resume=never start over in a run_dir that already holds a checkpoint


@dataclass
class Config:
    """One experiment."""

    name: str = "experiment"  # recipe name; used for the run directory
    data: DataConfig = field(default_factory=DataConfig)
    representation: RepresentationConfig = field(default_factory=RepresentationConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


#: Keys whose value must be one of a fixed set. Checked after composition.
CHOICES: Dict[str, Sequence[str]] = {
    "data.dataset": (
        "synthetic",
        "ljspeech",
        "vctk",
        "voicebank_demand",
        "librispeech",
        "libritts",
        "sc09",
        "folder",
    ),
    "data.normalize": ("peak", "rms", "none"),
    "representation.kind": ("stft", "waveform"),
    "representation.window": ("hann",),
    "model.backbone": ("unet2d", "wavenet", "mlp", "stft_unet"),
    "model.stft_unet.output": ("linear", "compressed"),
    "model.parameterisation": ("edm", "ncsnv2"),
    "model.embedding": ("fourier", "sinusoidal"),
    "noise.train_distribution": ("log_normal", "mixture", "conditional", "ouve", "log_uniform", "discrete"),
    "data.split_by": ("file", "speaker"),
    "loss.weighting": ("auto", "edm", "sigma2"),
    "train.lr_schedule": ("cosine", "inv_sqrt", "constant"),
    "loss.objective": ("dsm", "ssm", "cdsm"),
    "loss.projection": ("rademacher", "gaussian"),
    "sampler.name": ("ald", "pc", "heun"),
    "train.precision": ("auto", "bf16", "fp32"),
}


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _above(lo: float) -> Callable[[Any], bool]:
    return lambda v: _number(v) and v > lo


def _at_least(lo: float) -> Callable[[Any], bool]:
    return lambda v: _number(v) and v >= lo


def _optional(test: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or test(v)


#: Keys whose value must lie in a range: key -> (test, what is valid). Checked after composition,
#: so a bad number is one line before any data is scanned, instead of a traceback from deep inside
#: the run (some only after step 1: ``step % train.ckpt_every`` with 0). Where 0 is listed as
#: valid it means "off" in the code that reads the key.
RANGES: Dict[str, Tuple[Callable[[Any], bool], str]] = {
    "data.sample_rate": (_at_least(1), "an integer >= 1 (Hz)"),
    "data.segment_seconds": (_above(0), "a number > 0 (seconds)"),
    "data.peak_level": (_above(0), "a number > 0"),
    "data.max_files": (_optional(_at_least(1)), "an integer >= 1, or null for all files"),
    "train.batch_size": (_at_least(1), "an integer >= 1"),
    "train.grad_accum": (_at_least(1), "an integer >= 1"),
    "train.lr": (_above(0), "a finite number > 0"),
    "train.weight_decay": (_at_least(0), "a finite number >= 0"),
    "train.warmup_steps": (_at_least(0), "an integer >= 0"),
    "train.lr_min_ratio": (lambda v: _number(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "train.adam_beta2": (lambda v: _number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "train.grad_clip": (_at_least(0), "a finite number >= 0 (0 disables clipping)"),
    "train.ema_half_life": (_optional(_at_least(0)), "a number >= 0 (steps), or null for ema_fraction"),
    "train.ema_fraction": (_at_least(0), "a number >= 0"),
    "train.num_workers": (_at_least(0), "an integer >= 0"),
    "train.log_every": (_at_least(1), "an integer >= 1 (steps)"),
    "train.ckpt_every": (_at_least(1), "an integer >= 1 (steps; last.pt is also written at the end)"),
    "train.val_every": (_at_least(0), "an integer >= 0 (0 disables validation)"),
    "train.val_examples": (_at_least(1), "an integer >= 1"),
    "train.sample_every": (_at_least(0), "an integer >= 0 (0 = samples only at the end)"),
    "train.num_samples": (_at_least(0), "an integer >= 0"),
    "train.sample_seconds": (_above(0), "a number > 0 (seconds)"),
    "train.device": (
        lambda v: isinstance(v, str) and re.fullmatch(r"auto|cpu|cuda(:\d+)?", v) is not None,
        "auto, cpu, cuda or cuda:N",
    ),
    "noise.sigma_min": (_above(0), "a finite number > 0"),
    "noise.num_levels": (_optional(_at_least(1)), "an integer >= 1, or null for the NCSNv2 rule"),
    "sampler.steps": (_at_least(1), "an integer >= 1"),
    "noise.ouve_gamma": (_above(0), "a number > 0"),
    "noise.ouve_sigma_min": (_above(0), "a number > 0 (x sigma_data)"),
    "noise.ouve_t_eps": (lambda v: _number(v) and 0 < v < 1, "a number in (0, 1)"),
    "loss.predictive_spectral_weight": (_at_least(0), "a number >= 0 (0 disables the spectral loss)"),
    "loss.spectral_compression": (lambda v: _number(v) and 0 < v <= 1, "a number in (0, 1]"),
}


def _check_ranges(cfg: DictConfig, source: str) -> None:
    """One-line ConfigError for the first value outside :data:`RANGES` (and sigma_max <= sigma_min)."""
    for key, (test, valid) in RANGES.items():
        value = OmegaConf.select(cfg, key)
        if not test(value):
            raise ConfigError(f"{source}: {key}={value!r} is not valid; use {valid}")
    if not cfg.noise.ouve_sigma_max > cfg.noise.ouve_sigma_min:
        raise ConfigError(
            f"{source}: noise.ouve_sigma_max={cfg.noise.ouve_sigma_max!r} is not valid; use a number "
            f"above noise.ouve_sigma_min={cfg.noise.ouve_sigma_min!r}"
        )
    lo, hi = cfg.noise.sigma_min, cfg.noise.sigma_max
    if hi is not None and not (_number(hi) and hi > lo):
        raise ConfigError(
            f"{source}: noise.sigma_max={hi!r} is not valid; use a number above "
            f"noise.sigma_min={lo!r}, or null to pick it from the data"
        )


def is_conditional(cfg) -> bool:
    """Whether a config describes a conditional denoiser: the network takes the noisy input as
    ``cond`` (``model.conditional``; ``loss.objective=cdsm`` implies it, as older configs say)."""
    return bool(cfg.model.get("conditional", False)) or cfg.loss.objective == "cdsm"


CONFIG_GROUPS = ("data", "representation", "model", "noise", "loss", "sampler", "train")


# --------------------------------------------------------------------------------------------
# Composition
# --------------------------------------------------------------------------------------------
def schema() -> DictConfig:
    """The schema defaults as a struct-mode DictConfig."""
    cfg = OmegaConf.structured(Config)
    OmegaConf.set_struct(cfg, True)
    return cfg


def config_dir() -> Path:
    """The configs/ folder holding the `<group>/<name>.yaml` fragments."""
    for d in CONFIG_DIRS:
        if d.is_dir():
            return d
    raise ConfigError(f"no configs folder found (looked in {', '.join(str(d) for d in CONFIG_DIRS)})")


def _load_yaml(path: Path, what: str) -> DictConfig:
    try:
        loaded = OmegaConf.load(path)
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}") from None
    except OmegaConfBaseException as e:
        raise ConfigError(f"{what} {path} is not valid YAML: {one_line(e)}") from None
    except Exception as e:  # yaml.YAMLError and friends
        raise ConfigError(f"{what} {path} is not valid YAML: {one_line(e)}") from None
    if not isinstance(loaded, DictConfig):
        raise ConfigError(f"{what} {path} must be a mapping of keys to values")
    return loaded


def available_fragments(group: str) -> List[str]:
    """Names of the fragments in configs/<group>/."""
    return sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))


def _defaults_entries(defaults: Any, recipe: Path) -> List[tuple]:
    """Parse a recipe's ``defaults:`` list of ``{group: name}`` entries."""
    if defaults is None:
        return []
    if not isinstance(defaults, (list, ListConfig)):
        raise ConfigError(f"{recipe}: 'defaults' must be a list like [{{model: unet2d_small}}, ...]")
    out = []
    for entry in defaults:
        if isinstance(entry, (dict, DictConfig)) and len(entry) == 1:
            ((group, name),) = dict(entry).items()
            out.append((str(group), str(name)))
        else:
            raise ConfigError(
                f"{recipe}: each 'defaults' entry must be one 'group: name' pair, got {entry!r}"
            )
    return out


def _leaves(node: Any, prefix: str = ""):
    """Yield (dotted key, raw value) for every leaf of a YAML layer, without resolving."""
    if isinstance(node, DictConfig):
        for key in node.keys():
            yield from _leaves(node._get_node(key), f"{prefix}{key}.")
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}{key}.")
    else:
        value = node._value() if hasattr(node, "_value") else node
        yield prefix[:-1], value


def _track_required(required: set, layer: Any) -> None:
    """A ``???`` in any layer makes that key required until a later layer sets it.

    (omegaconf's merge keeps the old value when the new one is ``???``, so a recipe could not
    otherwise demand a value that the schema gives a default.)
    """
    for key, value in _leaves(layer):
        if value == MISSING:
            required.add(key)
        else:
            required.discard(key)


def _merge(base: DictConfig, other: Any, source: str) -> DictConfig:
    try:
        return OmegaConf.merge(base, other)
    except OmegaConfBaseException as e:
        raise _friendly(e, source) from None


def _friendly(e: OmegaConfBaseException, source: str) -> ConfigError:
    """Turn an omegaconf error into a one-line ConfigError naming the nearest valid keys."""
    key = getattr(e, "full_key", None) or getattr(e, "key", None)
    msg = one_line(e).split(" full_key:")[0]
    if key and (
        "not in" in msg or "Key '" in msg or "has no attribute" in msg or "Could not override" in msg
    ):
        parent, _, leaf = str(key).rpartition(".")
        valid = _valid_keys(parent)
        near = difflib.get_close_matches(leaf, valid, n=3, cutoff=0.5)
        hint = (
            f"did you mean {' or '.join(repr(f'{parent}.{k}' if parent else k) for k in near)}? "
            if near
            else ""
        )
        return ConfigError(f"{source}: unknown key '{key}'; {hint}valid keys here: {', '.join(valid)}")
    if key:
        return ConfigError(f"{source}: bad value for '{key}': {msg}")
    return ConfigError(f"{source}: {msg}")


def _valid_keys(parent: str) -> List[str]:
    node: Any = schema()
    for part in [p for p in parent.split(".") if p]:
        if isinstance(node, DictConfig) and part in node:
            node = node[part]
        else:
            return []
    return list(node.keys()) if isinstance(node, DictConfig) else []


def _check_choices(cfg: DictConfig, source: str) -> None:
    for key, valid in CHOICES.items():
        value = OmegaConf.select(cfg, key)
        if value not in valid:
            raise ConfigError(f"{source}: {key}={value!r} is not one of: {', '.join(valid)}")


def compose(recipe: Union[str, Path, None] = None, overrides: Sequence[str] = ()) -> DictConfig:
    """Build the validated config of one experiment.

    Args:
        recipe: path to a recipe YAML (``recipes/quickstart.yaml``) or None for pure defaults.
        overrides: ``key=value`` strings (omegaconf dotlist syntax), applied last; ``group=name``
            (no dot, e.g. ``model=unet2d_tiny``) replaces the fragment the recipe names for that
            group.

    Returns:
        A resolved, struct-mode ``DictConfig`` following :class:`Config`.

    Raises:
        ConfigError: unknown keys (naming the nearest valid ones), missing ``???`` values,
            values outside their valid choices or ranges (:data:`RANGES`), unknown fragments,
            unreadable YAML.
    """
    cfg = schema()
    source = "defaults"
    # `group=name` (no dot) swaps a whole fragment, e.g. model=unet2d_tiny; the rest are dotlist.
    group_choices = {}
    dotlist = []
    for item in overrides:
        key, eq, value = item.partition("=")
        if eq and key in CONFIG_GROUPS:
            group_choices[key] = value
        else:
            dotlist.append(item)
    required: set = set()
    if recipe is not None:
        recipe = find_recipe(recipe) or Path(recipe)
        source = str(recipe)
        body = _load_yaml(recipe, "recipe")
        entries = _defaults_entries(body.get("defaults"), recipe)
        named = {g for g, _ in entries}
        entries = [(g, group_choices.get(g, n)) for g, n in entries]
        entries += [(g, n) for g, n in group_choices.items() if g not in named]
        if "defaults" in body:
            body = OmegaConf.masked_copy(body, [k for k in body.keys() if k != "defaults"])
        for group, name in entries:
            if group not in CONFIG_GROUPS:
                raise ConfigError(
                    f"{recipe}: unknown config group '{group}' in defaults; "
                    f"valid groups: {', '.join(CONFIG_GROUPS)}"
                )
            path = config_dir() / group / f"{name}.yaml"
            if not path.is_file():
                raise ConfigError(
                    f"{recipe}: no fragment '{group}/{name}'; available: "
                    f"{', '.join(available_fragments(group)) or 'none'}"
                )
            fragment = _load_yaml(path, "config fragment")
            _track_required(required, {group: fragment})
            cfg = _merge(cfg, {group: fragment}, str(path))
        if "name" not in body:
            cfg.name = recipe.stem
        _track_required(required, body)
        cfg = _merge(cfg, body, source)
    elif group_choices:
        raise ConfigError("group overrides like model=NAME need a recipe")
    overrides = dotlist
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like key=value (e.g. train.steps=100)")
    # keys that index into a list (data.noise_mix.sources.3.root=DIR) cannot be merged as a
    # dotlist (it would build a dict); they are set in place after the merge
    indexed = [o for o in overrides if any(part.isdigit() for part in o.split("=", 1)[0].split("."))]
    overrides = [o for o in overrides if o not in indexed]
    if overrides:
        try:
            dot = OmegaConf.from_dotlist(overrides)
        except OmegaConfBaseException as e:
            raise ConfigError(f"command-line overrides: {one_line(e)}") from None
        _track_required(required, dot)
        cfg = _merge(cfg, dot, "command line")
    for item in indexed:
        key, value = item.split("=", 1)
        try:
            OmegaConf.update(cfg, key, OmegaConf.from_dotlist([f"v={value}"]).v, merge=True)
        except (OmegaConfBaseException, IndexError, KeyError, ValueError) as e:
            raise ConfigError(f"command-line override '{item}': {one_line(e)}") from None
    missing = sorted(set(OmegaConf.missing_keys(cfg)) | required)
    if missing:
        raise ConfigError(
            f"{source}: required value(s) not set: {', '.join(missing)} "
            f"(set them in the recipe or as key=value on the command line)"
        )
    try:
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as e:
        raise _friendly(e, source) from None
    _check_choices(cfg, source)
    _check_ranges(cfg, source)
    OmegaConf.set_readonly(cfg, False)
    return cfg


def to_yaml(cfg: DictConfig) -> str:
    """The config as YAML text (what goes into run_dir/config.yaml)."""
    return OmegaConf.to_yaml(cfg)


def from_container(container: Dict[str, Any]) -> DictConfig:
    """Rebuild a validated config from a plain dict (as stored in a checkpoint).

    Unknown keys from an older or newer version are an error naming them.
    """
    cfg = _merge(schema(), container, "checkpoint config")
    _check_choices(cfg, "checkpoint config")
    return cfg


def dataset_root(cfg: DictConfig) -> Optional[str]:
    """The dataset root: ``data.root`` if set, else the environment variable ``data.root_env``."""
    if cfg.data.root:
        return str(cfg.data.root)
    if cfg.data.root_env:
        return os.environ.get(cfg.data.root_env) or None
    return None
