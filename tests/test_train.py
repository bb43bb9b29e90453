"""The trainer: every recipe on its corpus layout, learning, resume after SIGKILL, DDP, failures."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import corpus_fixtures as fx
import pytest
import torch
from conftest import REPO, TINY, train_tiny

from scoreaudio.config import compose
from scoreaudio.errors import ConfigError, DataError, TrainingError
from scoreaudio.pretrained import load_pretrained
from scoreaudio.train import StepBatchSampler, train
from scoreaudio.utils.checkpoint import load_checkpoint_dict
from scoreaudio.utils.logging import read_metrics

# recipe -> (fixture maker, extra overrides that shrink it to a CPU test)
RECIPE_FIXTURES = {
    "ljspeech": (fx.make_ljspeech, []),
    "vctk": (fx.make_vctk, []),
    "voicebank_demand": (fx.make_voicebank_demand, []),
    "libritts": (fx.make_libritts, []),
    "sc09": (fx.make_sc09, ["model=wavenet_tiny", "representation=waveform"]),
    "folder": (fx.make_folder, []),
}


def _tiny_overrides(recipe: str, extra):
    model = [] if any(e.startswith("model=") for e in extra) else ["model=unet2d_tiny"]
    return [*TINY, *model, *extra, "train.num_workers=0", "train.precision=fp32", "train.val_every=2"]


@pytest.mark.parametrize("recipe", sorted(RECIPE_FIXTURES))
def test_every_recipe_trains_two_steps_on_its_layout(recipe, tmp_path):
    make, extra = RECIPE_FIXTURES[recipe]
    root = make(tmp_path / "data")
    run = tmp_path / "run"
    cfg = compose(
        REPO / "recipes" / f"{recipe}.yaml",
        _tiny_overrides(recipe, extra) + [f"data.root={root}", f"train.run_dir={run}"],
    )
    train(cfg)
    ckpt = load_checkpoint_dict(run / "last.pt")
    assert ckpt["step"] == 2
    assert ckpt["config"]["data"]["dataset"] == cfg.data.dataset
    rows = read_metrics(run, "train")
    assert [r["step"] for r in rows] == [1, 2] and all(r["loss"] > 0 for r in rows)
    assert (run / "config.yaml").is_file() and (run / "metrics_train.csv").is_file()
    if recipe == "voicebank_demand":  # conditional denoiser: one-call SI-SDR on the paired valid set
        val = read_metrics(run, "valid")[-1]
        assert "val_si_sdr_predictive" in val and "val_si_sdr_noisy" in val


def test_quickstart_recipe_is_sized_for_a_cpu():
    cfg = compose(REPO / "recipes/quickstart.yaml")
    assert cfg.data.dataset == "synthetic" and cfg.model.preset == "stft_unet_small"
    assert cfg.train.precision == "fp32" and cfg.representation.kind == "waveform"
    assert cfg.train.steps * cfg.train.batch_size * cfg.data.segment_seconds <= 1200  # audio-seconds seen


def test_loss_falls(tmp_path):
    run = train_tiny(
        tmp_path / "run",
        "train.steps=40",
        "train.val_every=5",
        "train.ckpt_every=40",
        "train.lr=3e-3",
        "train.warmup_steps=5",
        "train.ema_half_life=2",
        "train.batch_size=4",
    )
    val = read_metrics(run, "valid")
    first, last = val[0], val[-1]
    keys = [k for k in first if k.startswith("val_loss/")]
    assert keys
    before = sum(first[k] for k in keys)
    after = sum(last[k] for k in keys)
    assert after < 0.8 * before, (before, after)


def test_ssm_objective_trains(tmp_path):
    run = train_tiny(tmp_path / "run", "loss=ssm_vr", "model=wavenet_tiny", "representation=waveform")
    rows = read_metrics(run, "train")
    assert len(rows) == 2 and all(torch.isfinite(torch.tensor(r["loss"])) for r in rows)


def test_checkpoint_loads_from_its_path_alone(tiny_run):
    pre = load_pretrained(tiny_run / "last.pt", device="cpu")
    assert pre.step == 2 and pre.sample_rate == 16000
    x = torch.randn(1, *pre.representation.encoded_shape(4000))
    sigma = torch.tensor([0.1])
    assert torch.isfinite(pre.model(x, sigma)).all()
    ckpt = load_checkpoint_dict(tiny_run / "last.pt")
    for key in ("model", "ema", "optimizer", "step", "config", "representation", "sigmas", "package_version"):
        assert key in ckpt


def test_step_sampler_covers_each_file_once_per_epoch():
    n, batch, world = 10, 3, 2
    seen = []
    for rank in range(world):
        s = StepBatchSampler(n, batch, seed=1, start_step=0, total_steps=5, rank=rank, world=world)
        seen.append([i for b in s for i, _ in b])
    # 5 steps x 2 ranks x 3 = 30 draws = 3 epochs of 10 files, interleaved by rank per step
    merged = []
    for step in range(5):
        for rank in range(world):
            merged += seen[rank][step * batch : (step + 1) * batch]
    for epoch in range(3):
        assert sorted(merged[epoch * n : (epoch + 1) * n]) == list(range(n))
    # resuming mid-way yields exactly the tail of the same order
    full = [b for b in StepBatchSampler(n, batch, 1, 0, 5)]
    tail = [b for b in StepBatchSampler(n, batch, 1, 3, 5)]
    assert full[3:] == tail


def _train_cmd(run: Path, steps: int, *extra: str):
    return [
        sys.executable,
        "-m",
        "scoreaudio.train",
        str(REPO / "recipes/quickstart.yaml"),
        *TINY,
        f"train.run_dir={run}",
        f"train.steps={steps}",
        "train.ckpt_every=3",
        "train.val_every=0",
        "train.lr=1e-3",
        "train.warmup_steps=2",
        # the cosine schedule and the run-relative EMA are functions of train.steps, which the
        # kill test changes between the killed and the resumed run: pin both
        "train.lr_schedule=constant",
        "train.ema_half_life=5",
        *extra,
    ]


def test_resume_after_sigkill_continues_as_if_never_stopped(tmp_path, synthetic_cache):
    env = {**os.environ, "SCOREAUDIO_CACHE": str(synthetic_cache), "OMP_NUM_THREADS": "1"}
    full = tmp_path / "full"
    subprocess.run(_train_cmd(full, 9), env=env, check=True, capture_output=True, timeout=300)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        _train_cmd(killed, 10_000), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            if (killed / "step_0000003.pt").exists() and any(
                r["step"] >= 4 for r in read_metrics(killed, "train")
            ):
                break
            time.sleep(0.1)
        else:
            pytest.fail("training did not reach step 4 in time")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    resumed_from = load_checkpoint_dict(killed / "last.pt")["step"]
    assert 3 <= resumed_from < 9
    subprocess.run(_train_cmd(killed, 9), env=env, check=True, capture_output=True, timeout=300)

    a = {r["step"]: r["loss"] for r in read_metrics(full, "train")}
    b = {r["step"]: r["loss"] for r in read_metrics(killed, "train")}
    assert sorted(b) == list(range(1, 10)), "the resumed curve has each step exactly once"
    assert a == b, "the resumed run's losses equal the uninterrupted run's at every step"
    wa = load_checkpoint_dict(full / "last.pt")["ema"]
    wb = load_checkpoint_dict(killed / "last.pt")["ema"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_ddp_two_cpu_processes_hold_identical_weights(tmp_path, synthetic_cache):
    env = {**os.environ, "SCOREAUDIO_CACHE": str(synthetic_cache), "OMP_NUM_THREADS": "1"}
    run = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "scoreaudio.train",
        str(REPO / "recipes/quickstart.yaml"),
        *TINY,
        f"train.run_dir={run}",
        "train.steps=3",
        "train.val_every=0",
    ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["ranks_identical"] is True
    assert load_checkpoint_dict(run / "last.pt")["step"] == 3


def test_non_finite_loss_stops_with_checkpoint_intact(tmp_path, monkeypatch):
    import scoreaudio.train_step as tr

    real = tr.compute_loss
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(tr, "compute_loss", poisoned)
    run = tmp_path / "run"
    with pytest.raises(TrainingError, match=r"non-finite loss at step 3 \(sigma=.*step 2 is saved"):
        train_tiny(run, "train.steps=5")
    assert load_checkpoint_dict(run / "last.pt")["step"] == 2
    load_pretrained(run, device="cpu")  # the last good checkpoint still loads


def test_ctrl_c_mid_step_finishes_the_step_saves_and_exits(tmp_path, monkeypatch):
    """A Ctrl-C that lands inside step 4's loss only asks the loop to stop: step 4 completes and is
    saved; a second Ctrl-C stops at once and keeps the last checkpoint."""
    import scoreaudio.train_step as tr

    real = tr.compute_loss
    calls = {"n": 0, "at": 4, "times": 1}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == calls["at"]:
            for _ in range(calls["times"]):
                os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(tr, "compute_loss", interrupted)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train_tiny(run, "train.steps=10", "train.ckpt_every=100")
    assert load_checkpoint_dict(run / "last.pt")["step"] == 4
    calls.update(n=0, at=2, times=2)  # twice within the resumed run's step 6: stop at once
    with pytest.raises(KeyboardInterrupt):
        train_tiny(run, "train.steps=10", "train.ckpt_every=100")
    assert load_checkpoint_dict(run / "last.pt")["step"] == 4


def test_unwritable_run_dir_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(TrainingError, match="cannot write to run directory"):
        train_tiny(blocker / "run")


def test_dataset_without_usable_files_fails_before_compute(tmp_path):
    root = tmp_path / "corrupt"
    (root / "spk").mkdir(parents=True)
    for i in range(5):
        (root / "spk" / f"bad{i}.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    with pytest.raises(DataError):
        train_tiny(tmp_path / "run", "data=folder", f"data.root={root}")
    assert not (tmp_path / "run").exists(), "a failed start leaves no empty run dir behind"


def test_train_cli_help_and_errors(capsys):
    from scoreaudio.train_cli import main

    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert main([str(REPO / "recipes/quickstart.yaml"), "train.stpes=3"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'train.steps'" in err and "Traceback" not in err
    assert main([str(REPO / "recipes/quickstart.yaml"), "--print-config"]) == 0
    assert "stft_unet_small" in capsys.readouterr().out


def test_sigterm_saves_a_checkpoint_and_exits(tmp_path, synthetic_cache):
    env = {**os.environ, "SCOREAUDIO_CACHE": str(synthetic_cache), "OMP_NUM_THREADS": "1"}
    run = tmp_path / "run"
    proc = subprocess.Popen(
        _train_cmd(run, 10_000, "train.ckpt_every=1000"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 240
    while time.time() < deadline and not any(r["step"] >= 3 for r in read_metrics(run, "train")):
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-1000:]
    assert "checkpoint saved" in err
    assert load_checkpoint_dict(run / "last.pt")["step"] >= 3


def test_resume_refuses_a_different_network(tmp_path):
    run = train_tiny(tmp_path / "run")
    with pytest.raises(
        ConfigError, match=r"was trained with model.unet2d.norm='global' but this config has 'frame'"
    ):
        train_tiny(run, "train.steps=4", "model.unet2d.norm=frame")
    assert load_checkpoint_dict(run / "last.pt")["step"] == 2  # untouched


def _denoiser_cfg(tmp_path, run, *extra):
    """recipes/denoiser.yaml shrunk to seconds: folder speech, a noise folder (8 kHz stereo), a
    two-level 8-channel U-Net."""
    speech = fx.make_folder(tmp_path / "speech")
    noise = tmp_path / "noise"
    for k in range(4):
        fx.write(noise / f"hum-{k:02d}.wav", 0.6, 8000, seed=40 + k, channels=2)  # other rate, stereo
    return compose(
        REPO / "recipes" / "denoiser.yaml",
        [
            *TINY,
            "representation=waveform",
            "model=stft_unet_denoiser",
            "model.unet2d.channels=8",
            "model.unet2d.channel_mult=[1,2]",
            "model.unet2d.groups=4",
            "model.unet2d.attention=false",
            f"data.root={speech}",
            f"data.noise_mix.folder={noise}",
            "data.split_by=file",
            "data.valid_fraction=0.3",
            "data.noise_mix.sources.3.test_share=0.0",
            f"train.run_dir={run}",
            *extra,
        ],
    )


def test_denoiser_recipe_trains_a_conditional_model_on_speech_and_noise(tmp_path):
    """recipes/denoiser.yaml: folder speech + a noise folder + babble -> a conditional model whose
    checkpoint says so (cond_channels), validated with its one-call predictive estimate."""
    run = tmp_path / "run"
    cfg = _denoiser_cfg(tmp_path, run)
    assert cfg.model.conditional and cfg.noise.train_distribution == "conditional"
    train(cfg)
    ckpt = load_checkpoint_dict(run / "last.pt")
    assert ckpt["cond_channels"] == 1 and ckpt["sigmas"]["sigma_max"] == 3.0
    val = read_metrics(run, "valid")[-1]
    assert "val_si_sdr_predictive" in val and "val_si_sdr_tweedie" not in val
    pre = load_pretrained(run)
    assert pre.conditional and pre.model.cond_channels == 1


def test_denoiser_recipe_trains_for_sgmse_ouve_and_denoises_with_its_sampler(tmp_path):
    """noise.train_distribution=ouve: levels sigma_eff(t) of SGMSE+'s SDE, validated with the
    one-call estimate at the sampler's start, and a denoiser whose default method is that sampler."""
    from scoreaudio import SpeechDenoiser

    run = tmp_path / "run"
    train(_denoiser_cfg(tmp_path, run, "noise.train_distribution=ouve"))
    val = read_metrics(run, "valid")[-1]
    assert "val_si_sdr_ouve_one_call" in val and "val_si_sdr_predictive" not in val
    den = SpeechDenoiser.from_pretrained(run)
    assert den.default_method == "ouve" and den.ouve_process.gamma == 1.5
    assert den.ouve_process.sigma_max == pytest.approx(2.0 * den.sigma_data)
    noisy = torch.randn(8000) * 0.1
    out = den(noisy, 16000, steps=3)
    assert out.shape == noisy.shape and torch.isfinite(torch.as_tensor(out)).all()


def test_ouve_and_the_spectral_loss_refuse_a_prior(tmp_path):
    with pytest.raises(ConfigError, match="ouve trains SGMSE"):
        train_tiny(tmp_path / "a", "noise.train_distribution=ouve")
    with pytest.raises(ConfigError, match="predictive_spectral_weight needs a conditional model"):
        train_tiny(tmp_path / "b", "loss.predictive_spectral_weight=0.5")


def test_fine_tuning_starts_from_the_given_weights_and_keeps_their_sigmas(tmp_path):
    """train.init_from: a run or an exported .safetensors; with a vanishing learning rate the
    fine-tuned weights are the source's EMA weights, and the sigma settings are the source's."""
    from scoreaudio.pretrained import export_weights

    src = tmp_path / "src"
    train(_denoiser_cfg(tmp_path, src, "loss.predictive_spectral_weight=0.5"))
    weights = export_weights(src, tmp_path / "src.safetensors", dtype=torch.float32)
    source = load_checkpoint_dict(src / "last.pt")
    for init in (src, weights):
        dst = tmp_path / f"ft-{init.name}"
        train(_denoiser_cfg(tmp_path, dst, f"train.init_from={init}", "train.lr=1e-12", "noise.sigma_max=5"))
        tuned = load_checkpoint_dict(dst / "last.pt")
        assert tuned["sigmas"] == source["sigmas"]  # not the recipe's sigma_max=5
        for k, v in source["ema"].items():
            torch.testing.assert_close(tuned["model"][k], v, rtol=1e-5, atol=1e-6)


def test_fine_tuning_names_the_network_that_fits(tmp_path):
    src = tmp_path / "src"
    train(_denoiser_cfg(tmp_path, src))
    with pytest.raises(ConfigError, match="does not fit this recipe's; use model=stft_unet_denoiser"):
        train(_denoiser_cfg(tmp_path, tmp_path / "dst", f"train.init_from={src}", "model.unet2d.channels=16"))
    with pytest.raises(ConfigError, match="conditioning channels"):
        train_tiny(
            tmp_path / "prior",
            "representation=waveform",
            "model=stft_unet_denoiser",
            "model.conditional=false",
            "model.cond_skip=false",
            f"train.init_from={src}",
        )


def test_denoiser_recipe_names_the_missing_noise_folder(tmp_path):
    speech = fx.make_folder(tmp_path / "speech")
    cfg = compose(
        REPO / "recipes" / "denoiser.yaml",
        [
            *TINY,
            "representation=waveform",
            "model=stft_unet_denoiser",
            f"data.root={speech}",
            f"data.noise_mix.folder={tmp_path / 'nope'}",
            f"train.run_dir={tmp_path / 'run'}",
        ],
    )
    with pytest.raises(DataError, match="noise folder not found.*nope"):
        train(cfg)


def _interrupt_at_random_points(run: Path, steps: int, times: int, env: dict, extra, seed: int) -> int:
    """SIGTERM a training of ``steps`` steps ``times`` times at random moments after it has taken a
    step (inside a step, a validation, a checkpoint write...), resuming each time; then let it
    finish. Returns how many interruptions landed before the end."""
    rng = random.Random(seed)
    landed = 0
    for _ in range(times):
        before = max((r["step"] for r in read_metrics(run, "train")), default=0) if run.exists() else 0
        proc = subprocess.Popen(
            _train_cmd(run, steps, *extra),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.time() + 120
        while (
            time.time() < deadline
            and proc.poll() is None
            and max((r["step"] for r in read_metrics(run, "train")), default=0) <= before
        ):
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.4))
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode in (0, 130), err[-1500:]
        landed += proc.returncode == 130
        if proc.returncode == 0:
            break
    subprocess.run(_train_cmd(run, steps, *extra), env=env, check=True, capture_output=True, timeout=300)
    return landed


def _assert_same_run(a: Path, b: Path, steps: int) -> None:
    la = {r["step"]: r["loss"] for r in read_metrics(a, "train")}
    lb = {r["step"]: r["loss"] for r in read_metrics(b, "train")}
    assert sorted(lb) == list(range(1, steps + 1)), "each step exactly once"
    assert la == lb, "the interrupted run's losses equal the uninterrupted run's at every step"
    ca, cb = load_checkpoint_dict(a / "last.pt"), load_checkpoint_dict(b / "last.pt")
    for part in ("model", "ema"):
        assert all(torch.equal(ca[part][k], cb[part][k]) for k in ca[part]), part


@pytest.mark.parametrize(
    "times",
    [pytest.param(5, id="5-interruptions"), pytest.param(20, id="20-interruptions", marks=pytest.mark.slow)],
)
def test_sigterm_at_random_points_resumes_bit_exactly_with_dropout(tmp_path, synthetic_cache, times):
    """SIGTERM only asks the loop to stop at the next step boundary, and the checkpoint carries the
    global RNG that dropout draws from: every resume continues the uninterrupted run exactly."""
    env = {**os.environ, "SCOREAUDIO_CACHE": str(synthetic_cache), "OMP_NUM_THREADS": "1"}
    steps = 2 * times + 4
    extra = ["model.unet2d.dropout=0.3", "train.val_every=3"]
    full = tmp_path / "full"
    subprocess.run(_train_cmd(full, steps, *extra), env=env, check=True, capture_output=True, timeout=300)
    run = tmp_path / "interrupted"
    landed = _interrupt_at_random_points(run, steps, times, env, extra, seed=times)
    assert landed >= times // 2, f"only {landed} of {times} interruptions landed before the end"
    _assert_same_run(full, run, steps)


def test_a_nan_file_is_skipped_named_and_the_run_resumes_exactly(tmp_path, synthetic_cache, caplog):
    """One all-NaN float WAV among the training files (the header scan accepts it): the run skips it
    (also among the files the sigma selection reads), names it, lists it in summary.json and the
    checkpoint, and a resumed run skips it the same way."""
    import numpy as np
    import soundfile as sf

    root = fx.make_folder(tmp_path / "speech")
    bad = root / "alice" / "a00-nan.wav"
    sf.write(str(bad), np.full(8000, np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    env = {**os.environ, "SCOREAUDIO_CACHE": str(synthetic_cache), "OMP_NUM_THREADS": "1"}
    extra = [
        "data=folder",
        f"data.root={root}",
        "data.valid_fraction=0.0",
        "data.test_fraction=0.0",
        "data.split_by=file",
    ]
    full, split = tmp_path / "full", tmp_path / "split"
    out = subprocess.run(_train_cmd(full, 10, *extra), env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-1500:]
    assert "a00-nan.wav" in out.stderr and "NaN" in out.stderr and "Traceback" not in out.stderr
    summary = json.loads((full / "summary.json").read_text())
    assert list(summary["skipped_files"]) == [str(bad)]
    subprocess.run(_train_cmd(split, 4, *extra), env=env, check=True, capture_output=True, timeout=300)
    assert str(bad) in load_checkpoint_dict(split / "last.pt")["skipped_files"]
    subprocess.run(
        _train_cmd(split, 10, *extra, "train.num_workers=2"),
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    _assert_same_run(full, split, 10)
    assert list(json.loads((split / "summary.json").read_text())["skipped_files"]) == [str(bad)]


def test_a_worker_skips_bad_files_and_the_trainer_hears_of_them(tmp_path):
    """The skipped-file records cross from DataLoader workers to the training process."""
    import numpy as np
    import soundfile as sf

    from scoreaudio.data.datasets import SegmentDataset
    from scoreaudio.data.manifest import AudioMeta
    from scoreaudio.data.step_sampler import SkippedFiles, collate

    paths = [fx.write(tmp_path / f"ok{i}.wav", 0.3, 16000, seed=i) for i in range(3)]
    bad = tmp_path / "nan.wav"
    sf.write(str(bad), np.full(4800, np.inf, dtype=np.float32), 16000, subtype="FLOAT")
    metas = [AudioMeta(id=p.stem, path=str(p), sample_rate=16000, duration=0.3) for p in [bad, *paths]]
    ds = SegmentDataset(metas, 16000, 0.2)
    heard = []
    sampler = StepBatchSampler(len(ds), 2, 0, 0, 4)
    loader = torch.utils.data.DataLoader(ds, batch_sampler=sampler, collate_fn=collate, num_workers=2)
    batches = list(SkippedFiles(iter(loader), on_new=lambda p, why: heard.append(p)))
    assert len(batches) == 4 and all(set(b) == {"clean"} for b in batches)
    assert heard == [str(bad)]


def test_resume_refuses_settings_that_change_the_run_unless_allowed(tmp_path, capsys):
    run = train_tiny(tmp_path / "run")  # 2 steps, cosine schedule
    with pytest.raises(
        ConfigError, match=r"trained with train.batch_size=2, this config has 4.*allow_config_change"
    ):
        train_tiny(run, "train.batch_size=4", "train.steps=4")
    with pytest.raises(ConfigError, match=r"train.steps=2, this config has 4"):  # it sets the cosine's end
        train_tiny(run, "train.steps=4")
    assert load_checkpoint_dict(run / "last.pt")["step"] == 2
    capsys.readouterr()
    train_tiny(run, "train.steps=4", "train.allow_config_change=true", "train.log_every=2")
    err = capsys.readouterr().err
    assert "resume: train.steps 2 -> 4  (the run is no longer exact)" in err
    assert "resume: train.log_every 1 -> 2\n" in err  # bookkeeping: logged, allowed
    assert load_checkpoint_dict(run / "last.pt")["step"] == 4


def test_the_command_line_resumes_from_the_saved_config_and_prints_the_exact_command(
    tmp_path, synthetic_cache
):
    """Overrides left off the resume command do not change the run: it continues from its saved
    config.yaml; the interruption message prints the command with the recipe and overrides."""
    from scoreaudio.resume import continue_command, resume_config

    run = tmp_path / "run"
    recipe = str(REPO / "recipes/quickstart.yaml")
    train_tiny(run, "train.lr=7e-4")
    cfg, resuming = resume_config(recipe, [f"train.run_dir={run}"])
    assert resuming == run and cfg.train.lr == 7e-4 and cfg.train.batch_size == 2  # not the recipe's
    fresh, none = resume_config(recipe, [f"train.run_dir={tmp_path / 'new'}"])
    assert none is None and fresh.train.lr != 7e-4
    cmd = continue_command(recipe, ["train.lr=7e-4", "data.root=/a b"], run)
    assert cmd == f"python -m scoreaudio.train {recipe} train.lr=7e-4 'data.root=/a b' train.run_dir={run}"


def test_temporary_files_a_kill_left_are_removed_at_the_next_start(tmp_path):
    run = train_tiny(tmp_path / "run")
    leftover = run / ".last.pt.12345.deadbeef.tmp"
    leftover.write_bytes(b"half a checkpoint")
    keep = run / "notes.tmp"
    keep.write_text("mine")
    train_tiny(run, "train.steps=2")
    assert not leftover.exists() and keep.exists()


def test_finetune_recipe_starts_from_the_built_in_model(tmp_path):
    """recipes/denoiser_finetune.yaml: the built-in model's weights and sigmas on new speech/noise."""
    from scoreaudio.pretrained import load_pretrained

    speech = fx.make_folder(tmp_path / "speech")
    noise = tmp_path / "noise"
    for k in range(3):
        fx.write(noise / f"n{k}.wav", 0.8, 16000, seed=60 + k)
    run = tmp_path / "run"
    cfg = compose(
        REPO / "recipes" / "denoiser_finetune.yaml",
        [
            f"data.root={speech}",
            f"data.noise_mix.folder={noise}",
            "data.split_by=file",
            "data.valid_fraction=0.3",
            "data.noise_mix.sources.3.test_share=0.0",
            "data.segment_seconds=0.5",
            "train.steps=1",
            "train.batch_size=2",
            "train.val_examples=2",
            "train.device=cpu",
            f"train.run_dir={run}",
        ],
    )
    train(cfg)
    built_in = load_pretrained("default")
    tuned = load_checkpoint_dict(run / "last.pt")
    assert tuned["sigmas"] == built_in.levels.to_dict() and tuned["step"] == 1
    start = built_in.model.state_dict()  # one warm-up step at lr / 50 moves the weights by ~1e-5
    assert all(float((tuned["model"][k] - v).abs().max()) < 1e-3 for k, v in start.items())
