"""Config composition: recipes, fragments, overrides and the errors a user meets."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from scoreaudio.config import CHOICES, compose, dataset_root, from_container, schema
from scoreaudio.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted((REPO / "recipes").glob("*.yaml"))


def test_recipe_set_is_complete():
    names = {p.stem for p in RECIPES}
    assert {"quickstart", "ljspeech", "vctk", "voicebank_demand", "libritts", "sc09", "folder"} <= names


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_every_recipe_composes(recipe):
    cfg = compose(recipe)
    assert cfg.name == recipe.stem
    assert cfg.data.dataset in CHOICES["data.dataset"]
    assert cfg.model.preset != "custom", "each recipe picks a model preset"
    if cfg.data.dataset != "synthetic":
        assert cfg.data.root_env, "each real corpus names its root variable"


def test_layering_order(tmp_path):
    # schema default < fragment < recipe body < command line
    assert schema().train.lr == 2e-4
    cfg = compose(REPO / "recipes/quickstart.yaml")
    assert cfg.train.precision == "fp32"  # from configs/train/cpu.yaml
    assert cfg.train.steps == 150  # recipe body
    cfg = compose(REPO / "recipes/quickstart.yaml", ["train.steps=7", "data.sample_rate=8000"])
    assert cfg.train.steps == 7 and cfg.data.sample_rate == 8000


def test_group_override_swaps_fragment():
    cfg = compose(REPO / "recipes/quickstart.yaml", ["model=wavenet_tiny", "representation=waveform"])
    assert cfg.model.backbone == "wavenet" and cfg.model.preset == "wavenet_tiny"
    assert cfg.representation.kind == "waveform"
    with pytest.raises(ConfigError, match="available: .*unet2d_small"):
        compose(REPO / "recipes/quickstart.yaml", ["model=unet2d_huge"])


def test_typo_names_nearest_valid_key():
    with pytest.raises(ConfigError, match=r"unknown key 'train.stpes'.*did you mean 'train.steps'"):
        compose(REPO / "recipes/quickstart.yaml", ["train.stpes=3"])


def test_typo_in_recipe_body(tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("defaults:\n  - data: synthetic\ndata:\n  sample_rte: 16000\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown key 'data.sample_rte'.*data.sample_rate"):
        compose(recipe)


def test_missing_value_names_key_and_recipe(tmp_path):
    recipe = tmp_path / "needs_root.yaml"
    recipe.write_text("defaults:\n  - data: folder\ndata:\n  root: ???\n")
    with pytest.raises(ConfigError, match=r"needs_root.yaml: required value\(s\) not set: data.root"):
        compose(recipe)
    cfg = compose(recipe, ["data.root=/some/where"])
    assert cfg.data.root == "/some/where"


def test_bad_choice_lists_valid_ones():
    with pytest.raises(ConfigError, match="model.backbone='unet3d' is not one of: unet2d, wavenet, mlp"):
        compose(REPO / "recipes/quickstart.yaml", ["model.backbone=unet3d"])


def test_bad_type_is_clear():
    with pytest.raises(ConfigError, match="train.steps"):
        compose(REPO / "recipes/quickstart.yaml", ["train.steps=many"])


def test_interpolation(tmp_path):
    recipe = tmp_path / "interp.yaml"
    recipe.write_text("defaults:\n  - data: synthetic\ntrain:\n  sample_seconds: ${data.segment_seconds}\n")
    cfg = compose(recipe, ["data.segment_seconds=1.5"])
    assert cfg.train.sample_seconds == 1.5


def test_errors_for_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="recipe not found"):
        compose(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        compose(bad)
    with pytest.raises(ConfigError, match="key=value"):
        compose(REPO / "recipes/quickstart.yaml", ["train.steps"])
    unknown_group = tmp_path / "g.yaml"
    unknown_group.write_text("defaults:\n  - optimiser: adam\n")
    with pytest.raises(ConfigError, match="unknown config group 'optimiser'"):
        compose(unknown_group)


def test_roundtrip_through_container():
    cfg = compose(REPO / "recipes/quickstart.yaml")
    again = from_container(OmegaConf.to_container(cfg))
    assert again == cfg


def test_dataset_root_from_env(monkeypatch):
    cfg = compose(REPO / "recipes/ljspeech.yaml")
    monkeypatch.delenv("LJSPEECH_ROOT", raising=False)
    assert dataset_root(cfg) is None
    monkeypatch.setenv("LJSPEECH_ROOT", "/data/LJSpeech-1.1")
    assert dataset_root(cfg) == "/data/LJSpeech-1.1"
    cfg.data.root = "/elsewhere"
    assert dataset_root(cfg) == "/elsewhere"


def test_every_schema_field_has_a_comment():
    # The schema is the documentation of every option: each field line carries a comment.
    import inspect

    import scoreaudio.config as config

    source = inspect.getsource(config)
    in_class = False
    for line in source.splitlines():
        if line.startswith("@dataclass"):
            in_class = True
            continue
        if in_class and line and not line.startswith(" "):
            in_class = line.startswith("class ")
        if in_class and line.startswith("    ") and ": " in line and " = " in line and "def " not in line:
            if "field(default_factory=" in line and line.strip().split(":")[1].strip()[0].isupper():
                continue  # nested section; documented by its own class
            assert "#" in line, f"field without a comment: {line.strip()}"


def test_overrides_can_index_into_lists_of_noise_sources():
    cfg = compose(
        REPO / "recipes" / "denoiser.yaml",
        ["data.noise_mix.sources.2.weight=0.5", "data.noise_mix.folder=/data/noise"],
    )
    assert cfg.data.noise_mix.sources[2].weight == 0.5 and cfg.data.noise_mix.sources[2].kind == "babble"
    assert cfg.data.noise_mix.sources[3].root == "/data/noise"  # the recipe's interpolation
    with pytest.raises(ConfigError, match="wieght.*Did you mean.*weight"):
        compose(REPO / "recipes" / "denoiser.yaml", ["data.noise_mix.sources.1.wieght=0.5"])


@pytest.mark.parametrize(
    "override, key, valid",
    [
        ("train.batch_size=0", "train.batch_size", ">= 1"),
        ("train.batch_size=-2", "train.batch_size", ">= 1"),
        ("data.segment_seconds=0", "data.segment_seconds", "> 0"),
        ("data.segment_seconds=-1.5", "data.segment_seconds", "> 0"),
        ("train.lr=nan", "train.lr", "> 0"),
        ("train.lr=-1e-4", "train.lr", "> 0"),
        ("train.grad_accum=0", "train.grad_accum", ">= 1"),
        ("train.ckpt_every=0", "train.ckpt_every", ">= 1"),
        ("train.ckpt_every=-5", "train.ckpt_every", ">= 1"),
        ("train.log_every=0", "train.log_every", ">= 1"),
        ("train.val_every=-1", "train.val_every", "0 disables"),
        ("noise.sigma_min=0", "noise.sigma_min", "> 0"),
        ("noise.sigma_max=0.001", "noise.sigma_max", "noise.sigma_min"),
        ("data.sample_rate=0", "data.sample_rate", ">= 1"),
        ("train.device=gpu", "train.device", "auto, cpu, cuda or cuda:N"),
        ("train.device=cuda:x", "train.device", "auto, cpu, cuda or cuda:N"),
    ],
)
def test_out_of_range_values_are_one_line_errors_naming_key_and_range(override, key, valid):
    """Checked once, at composition: before any data is scanned or any step runs (some of these
    used to crash only after step 1, e.g. a modulo by train.ckpt_every=0)."""
    with pytest.raises(ConfigError) as e:
        compose(REPO / "recipes/quickstart.yaml", [override])
    msg = str(e.value)
    assert "\n" not in msg and f"{key}=" in msg and valid in msg, msg


@pytest.mark.parametrize(
    "override",
    [
        "train.val_every=0",
        "train.sample_every=0",
        "train.grad_clip=0",
        "train.warmup_steps=0",
        "train.device=cuda:1",
        "train.device=cpu",
        "train.ema_half_life=0",
        "noise.sigma_max=null",
    ],
)
def test_zero_where_zero_means_off_is_accepted(override):
    compose(REPO / "recipes/quickstart.yaml", [override])


#: CHOICES keys whose values are read by an if-chain, not looked up in a table (nothing to compare).
CHOICES_WITHOUT_REGISTRY = {
    "data.normalize",
    "data.split_by",
    "representation.window",
    "loss.weighting",
    "train.lr_schedule",
    "train.precision",
}


def _registries():
    """CHOICES key -> the names the code that reads it accepts."""
    from scoreaudio.audio.representation import REPRESENTATIONS
    from scoreaudio.data.corpora import READERS
    from scoreaudio.losses import _PROJECTIONS
    from scoreaudio.nn.build import BACKBONES
    from scoreaudio.nn.embeddings import FEATURES
    from scoreaudio.nn.score_model import PARAMETERISATIONS
    from scoreaudio.nn.stft_unet import OUTPUTS
    from scoreaudio.noise import TRAIN_DISTRIBUTIONS
    from scoreaudio.sampling import SAMPLERS
    from scoreaudio.train_step import OBJECTIVES

    return {
        "data.dataset": READERS,
        "representation.kind": REPRESENTATIONS,
        "model.backbone": BACKBONES,
        "model.stft_unet.output": OUTPUTS,
        # "score" is internal: build_score_model gives it to the toy MLP whatever the config says
        "model.parameterisation": [p for p in PARAMETERISATIONS if p != "score"],
        "model.embedding": FEATURES,
        "noise.train_distribution": TRAIN_DISTRIBUTIONS,
        "loss.objective": OBJECTIVES,
        "loss.projection": _PROJECTIONS,
        "sampler.name": SAMPLERS,
    }


def test_every_choice_matches_its_registry():
    registries = _registries()
    assert set(CHOICES) == set(registries) | CHOICES_WITHOUT_REGISTRY, (
        "a new CHOICES entry: add its registry to _registries() or the key to CHOICES_WITHOUT_REGISTRY"
    )
    for key, registry in registries.items():
        assert set(CHOICES[key]) == set(registry), key
