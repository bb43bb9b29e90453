"""Bad inputs through the command line (issue 13): each is exit status 2, one line on stderr, no
traceback, and no file that existed before has changed. Then the API-level guards behind them."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import REPO, TINY, train_tiny

from scoreaudio.cli import main
from scoreaudio.errors import ConfigError, ScoreAudioError, TrainingError, one_line
from scoreaudio.utils.checkpoint import load_checkpoint_dict
from scoreaudio.utils.checks import check_int

SR = 16000
RECIPE = str(REPO / "recipes" / "quickstart.yaml")


def _snapshot(*roots: Path) -> dict:
    """Every file under ``roots`` (or the file itself) -> its bytes."""
    files = []
    for r in roots:
        files += [r] if r.is_file() else [p for p in sorted(r.rglob("*")) if p.is_file()]
    return {p: p.read_bytes() for p in files}


def _fails_cleanly(capsys, argv, *watch: Path, only_line: bool = True) -> str:
    """Run the CLI; assert status 2, one ``error:`` line (the only stderr line unless the command
    had started logging), no traceback and ``watch`` unchanged. Returns the error line."""
    before = _snapshot(*watch)
    code = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err[-2000:]
    assert "Traceback" not in err and lines and lines[-1].startswith("error: "), err[-2000:]
    assert sum(line.startswith("error: ") for line in lines) == 1
    if only_line:
        assert len(lines) == 1, err
    assert _snapshot(*watch) == before, "a file that existed was changed"
    return lines[-1]


@pytest.fixture
def run_copy(tiny_run, tmp_path) -> Path:
    """A private copy of the session's tiny run (a failing fix must not spoil it for others)."""
    return Path(shutil.copytree(tiny_run, tmp_path / "run"))


def _wav(path: Path, seconds: float = 0.3, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.1 * np.random.default_rng(seed).standard_normal(int(seconds * SR)), SR)
    return path


# --------------------------------------------------------------------------------------------
# The matrix
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "override, key",
    [
        ("train.batch_size=0", "train.batch_size"),
        ("train.batch_size=-1", "train.batch_size"),
        ("data.segment_seconds=0", "data.segment_seconds"),
        ("data.segment_seconds=-2", "data.segment_seconds"),
        ("train.lr=nan", "train.lr"),
        ("train.lr=-1e-3", "train.lr"),
        ("train.grad_accum=0", "train.grad_accum"),
        ("train.ckpt_every=0", "train.ckpt_every"),
        ("train.log_every=0", "train.log_every"),
        ("noise.sigma_min=0", "noise.sigma_min"),
        ("data.sample_rate=0", "data.sample_rate"),
        ("train.device=gpu", "train.device"),
    ],
)
def test_train_out_of_range_setting(capsys, tmp_path, override, key):
    run = tmp_path / "run"
    line = _fails_cleanly(capsys, ["train", RECIPE, *TINY, f"train.run_dir={run}", override])
    assert f"{key}=" in line and "use " in line
    assert not run.exists(), "refused before any work"


def test_train_resume_never_on_an_existing_run(capsys, run_copy):
    line = _fails_cleanly(
        capsys, ["train", RECIPE, *TINY, f"train.run_dir={run_copy}", "train.resume=never"], run_copy
    )
    assert "train.overwrite=true" in line


def test_train_into_a_run_dir_another_training_holds(capsys, run_copy, monkeypatch):
    """The first training is a separate process holding the run dir's lock; the second is refused
    with its PID and writes nothing (not even into metrics.jsonl)."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from scoreaudio.run_dir import "
            "lock_run_dir; lock_run_dir(Path(sys.argv[1])); print('locked', flush=True); time.sleep(120)",
            str(run_copy),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        line = _fails_cleanly(
            capsys, ["train", RECIPE, *TINY, f"train.run_dir={run_copy}", "train.steps=4"], run_copy
        )
        assert f"PID {holder.pid}" in line and "train.run_dir" in line
    finally:
        holder.kill()
        holder.wait()


def test_train_disk_full_while_checkpointing(capsys, run_copy, monkeypatch):
    """torch's zip writer reports a full disk as a RuntimeError; the previous last.pt survives."""

    def full_disk(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:783] . unexpected pos 1472 vs 1358")

    monkeypatch.setattr(torch, "save", full_disk)
    last = run_copy / "last.pt"
    line = _fails_cleanly(
        capsys,
        [
            "train",
            RECIPE,
            *TINY,
            f"train.run_dir={run_copy}",
            "train.steps=3",
            "train.allow_config_change=true",
        ],
        last,
        only_line=False,
    )  # it logged its start
    assert "disk full" in line and f"{last} is intact" in line
    assert not list(run_copy.glob(".*.tmp")), "the partial file is removed"


def test_evaluate_output_exists_or_is_audio(capsys, tmp_path):
    ref, est = tmp_path / "clean", tmp_path / "enhanced"
    _wav(ref / "a.wav"), _wav(est / "a.wav", seed=1)
    old = tmp_path / "old.csv"
    old.write_text("file,si_sdr\nkept,1\n")
    precious = _wav(tmp_path / "precious.wav")
    args = ["evaluate", "--reference", str(ref), "--estimate", str(est), "--metrics", "si_sdr"]
    assert "--overwrite" in _fails_cleanly(capsys, args + ["-o", str(old)], tmp_path)
    _fails_cleanly(capsys, args + ["-o", str(precious), "--overwrite"], tmp_path)


def test_denoise_in_place(capsys, tmp_path, tiny_run):
    src = tmp_path / "recordings"
    _wav(src / "a.wav"), _wav(src / "sub" / "b.wav", seed=1)
    ckpt = ["--checkpoint", str(tiny_run), "--device", "cpu", "--overwrite"]
    assert "input" in _fails_cleanly(capsys, ["denoise", str(src), "-o", str(src), *ckpt], src)
    one = str(src / "a.wav")
    assert "input" in _fails_cleanly(capsys, ["denoise", one, "-o", one, *ckpt], src)


def _no_sampling(monkeypatch):
    """Make loading a checkpoint for generation fail loudly: the test's refusal must come first."""
    import scoreaudio.generation as gen_mod

    def must_not_run(*args, **kwargs):
        raise AssertionError("loaded or sampled before checking the arguments")

    monkeypatch.setattr(gen_mod, "sample_checkpoint", must_not_run)


def test_generate_out_that_is_a_file_or_cannot_be_written(capsys, tmp_path, monkeypatch):
    """Refused before the checkpoint is loaded (no checkpoint exists here at all)."""
    _no_sampling(monkeypatch)
    precious = _wav(tmp_path / "precious.wav")
    args = ["generate", "--checkpoint", str(tmp_path / "none.pt"), "--device", "cpu", "--out"]
    assert "is a file, not a folder" in _fails_cleanly(capsys, args + [str(precious)], tmp_path)
    assert "is a file" in _fails_cleanly(capsys, args + [str(precious / "samples")], tmp_path)
    if Path("/proc/self").is_dir():  # a folder nobody, not even root, can create files in
        line = _fails_cleanly(capsys, args + ["/proc/scoreaudio-nowhere/samples"])
        assert "cannot write into --out" in line and "a folder you can write to" in line
    assert not list(tmp_path.glob(".scoreaudio-*")), "the write probe is removed"


@pytest.mark.parametrize(
    "extra, lower",
    [
        (["--seconds", "10000"], "--seconds or --batch-size"),
        (["--seconds", "10000", "--num", "1"], "lower --seconds"),
        (["--num", "1000000000"], "--num or --seconds"),
    ],
)
def test_generate_request_larger_than_memory(capsys, tmp_path, tiny_run, extra, lower):
    """A typo's worth of audio (hours per sample, a billion samples) is refused before any of it
    is allocated, with the estimate and what to lower."""
    out = tmp_path / "samples"
    line = _fails_cleanly(
        capsys,
        [
            "generate",
            "--checkpoint",
            str(tiny_run),
            "--device",
            "cpu",
            "--out",
            str(out),
            "--seconds",
            "0.25",
            *extra,
        ],
    )
    assert "needs about" in line and "is available" in line and lower in line, line
    assert not out.exists()


def test_bad_device_names(capsys, tmp_path, monkeypatch):
    _no_sampling(monkeypatch)
    noisy = _wav(tmp_path / "noisy.wav")
    line = _fails_cleanly(
        capsys, ["denoise", str(noisy), "-o", str(tmp_path / "out.wav"), "--device", "gpu0"], tmp_path
    )
    assert "--device=gpu0 is not a device" in line and "cuda:N" in line
    line = _fails_cleanly(capsys, ["generate", "--out", str(tmp_path / "s"), "--device", "gpu"], tmp_path)
    assert "--device=gpu is not a device" in line
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    line = _fails_cleanly(
        capsys, ["denoise", str(noisy), "-o", str(tmp_path / "out.wav"), "--device", "cuda:0"], tmp_path
    )
    assert "CUDA is not available" in line and "--device=cpu" in line


@pytest.mark.parametrize("value", ["0.001", "0", "-1", "nan"])
def test_denoise_chunk_seconds_too_short(capsys, tmp_path, tiny_run, value):
    """Named with the smallest value that works, and that value does work."""
    noisy = _wav(tmp_path / "noisy.wav", seconds=0.5)
    args = [
        "denoise",
        str(noisy),
        "-o",
        str(tmp_path / "out.wav"),
        "--checkpoint",
        str(tiny_run),
        "--device",
        "cpu",
    ]
    line = _fails_cleanly(capsys, args + ["--chunk-seconds", value], tmp_path)
    assert "smallest usable value is" in line and "--chunk-seconds" in line
    least = line.split("use --chunk-seconds ")[1].split()[0]
    assert float(least) >= 0.1
    assert main(args + ["--chunk-seconds", least]) == 0
    assert sf.info(str(tmp_path / "out.wav")).frames == sf.info(str(noisy)).frames


def test_denoise_overlap_not_below_the_chunk(capsys, tmp_path, tiny_run):
    noisy = _wav(tmp_path / "noisy.wav")
    line = _fails_cleanly(
        capsys,
        [
            "denoise",
            str(noisy),
            "-o",
            str(tmp_path / "out.wav"),
            "--checkpoint",
            str(tiny_run),
            "--device",
            "cpu",
            "--chunk-seconds",
            "0.2",
            "--overlap-seconds",
            "0.3",
        ],
        tmp_path,
    )
    assert "--overlap-seconds 0.3 must be at least 0 and below the chunk of 0.2 s" in line


def test_denoise_mp3_input_to_the_default_wav(capsys, tmp_path, tiny_run):
    src = tmp_path / "talk.mp3"
    try:
        sf.write(str(src), 0.1 * np.random.default_rng(0).standard_normal(SR // 2), SR, format="MP3")
    except (sf.LibsndfileError, TypeError, ValueError, RuntimeError) as e:
        pytest.skip(f"this libsndfile cannot write MP3 ({e})")
    out = tmp_path / "clean"
    assert (
        main(["denoise", str(src), "-o", str(out), "--checkpoint", str(tiny_run), "--device", "cpu"]) == 0
    ), capsys.readouterr().err
    info = sf.info(str(out / "talk.wav"))
    assert info.format == "WAV" and info.subtype == "PCM_16" and info.samplerate == SR


def test_denoise_silent_input_warns_in_one_plain_line(capsys, tmp_path, tiny_run):
    src = tmp_path / "in"
    for name in ("a.wav", "b.wav"):
        src.mkdir(exist_ok=True)
        sf.write(str(src / name), np.zeros(SR // 4), SR)
    assert (
        main(
            [
                "denoise",
                str(src),
                "-o",
                str(tmp_path / "out"),
                "--checkpoint",
                str(tiny_run),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    warned = [line for line in err.splitlines() if "silent" in line]
    assert warned == [
        f"warning: {src / n}: the input is silent (peak below 0.0001); returned unchanged"
        for n in ("a.wav", "b.wav")
    ], err
    assert "Warning:" not in err and "warnings.warn" not in err and "Traceback" not in err


def test_evaluate_skips_an_unreadable_estimate(capsys, tmp_path):
    """The other files are still scored and written; the bad one is named; the status is 1."""
    import json

    ref, est = tmp_path / "clean", tmp_path / "enhanced"
    for k, name in enumerate(("a", "b", "c")):
        _wav(ref / f"{name}.wav", seed=k)
        _wav(est / f"{name}.wav", seed=10 + k)
    (est / "b.wav").write_bytes(b"RIFF not really a wave file")
    out = tmp_path / "results.csv"
    code = main(
        ["evaluate", "--reference", str(ref), "--estimate", str(est), "--metrics", "si_sdr", "-o", str(out)]
    )
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    skipped = [line for line in err.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == 1 and skipped[0].startswith("skipped b: ") and "b.wav" in skipped[0]
    assert [line.split(",")[0] for line in out.read_text().splitlines()] == ["file", "a", "c"]
    summary = json.loads(out.with_suffix(".json").read_text())
    assert list(summary["skipped"]) == ["b"] and summary["files"] == 2


def test_evaluate_with_every_estimate_unreadable(capsys, tmp_path):
    ref, est = tmp_path / "clean", tmp_path / "enhanced"
    _wav(ref / "a.wav")
    est.mkdir()
    (est / "a.wav").write_bytes(b"junk")
    line = _fails_cleanly(
        capsys,
        [
            "evaluate",
            "--reference",
            str(ref),
            "--estimate",
            str(est),
            "--metrics",
            "si_sdr",
            "-o",
            str(tmp_path / "r.csv"),
        ],
        tmp_path,
    )
    assert "none of the 1 matched file(s) could be read" in line
    assert not (tmp_path / "r.csv").exists()


@pytest.mark.parametrize(
    "name, content", [("audio.wav", None), ("notes.txt", b"hello: world\n"), ("weights.bin", b"\x00\x01")]
)
def test_info_on_a_file_it_does_not_describe(capsys, tmp_path, name, content):
    target = _wav(tmp_path / name) if content is None else tmp_path / name
    if content is not None:
        target.write_bytes(content)
    line = _fails_cleanly(capsys, ["info", str(target)], tmp_path)
    for kind in (
        "a recipe YAML",
        "a checkpoint (.pt)",
        "a run directory",
        ".safetensors",
        "built-in model name",
    ):
        assert kind in line, line


def test_info_on_a_built_in_model_name(capsys):
    assert main(["info", "default"]) == 0
    assert "parameters" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------
# The guards behind them
# --------------------------------------------------------------------------------------------
def test_a_stale_lock_does_not_block_and_train_releases_its_own(tmp_path):
    """A lock file left by a process that died (flock is gone with it) does not block, and a
    finished train() unlocks, so the same process can continue the run."""
    from scoreaudio.run_dir import RUN_LOCK

    run = tmp_path / "run"
    run.mkdir()
    (run / RUN_LOCK).write_text("999999\n")  # a PID that is not running
    train_tiny(run, "train.steps=1", "train.val_every=0")
    train_tiny(run, "train.steps=2", "train.val_every=0", "train.allow_config_change=true")
    assert load_checkpoint_dict(run / "last.pt")["step"] == 2
    assert not (run / RUN_LOCK).exists(), "a finished run leaves no lock file"


def test_resume_never_with_overwrite_starts_over(tmp_path):
    run = train_tiny(tmp_path / "run", "train.steps=1", "train.val_every=0")
    train_tiny(run, "train.steps=1", "train.val_every=0", "train.resume=never", "train.overwrite=true")
    assert load_checkpoint_dict(run / "last.pt")["step"] == 1


def test_denoise_outputs_inside_the_input_folder_are_not_inputs_on_a_second_run(tmp_path):
    from scoreaudio.denoise_cli import plan_outputs

    src = tmp_path / "recordings"
    _wav(src / "a.wav"), _wav(src / "sub" / "b.flac", seed=1)
    out = src / "denoised"
    first = plan_outputs([src], out)
    assert sorted(d.relative_to(out).as_posix() for _, d in first) == ["a.wav", "sub/b.flac"]
    for _, d in first:
        _wav(d)
    assert plan_outputs([src], out) == first  # denoised/a.wav is not denoised into denoised/denoised/


def test_denoise_file_neither_overwrites_nor_writes_over_its_input(tmp_path, tiny_run):
    from scoreaudio.denoise import SpeechDenoiser

    den = SpeechDenoiser.from_pretrained(tiny_run, device="cpu")
    src, dst = _wav(tmp_path / "noisy.wav"), _wav(tmp_path / "clean.wav", seed=1)
    before = _snapshot(tmp_path)
    with pytest.raises(ScoreAudioError, match="exists.*overwrite=True"):
        den.denoise_file(src, dst)
    with pytest.raises(ScoreAudioError, match="input"):
        den.denoise_file(src, tmp_path / "." / "noisy.wav", overwrite=True)
    assert _snapshot(tmp_path) == before
    den.denoise_file(src, dst, overwrite=True)
    assert dst.read_bytes() != before[dst]


def test_save_checkpoint_reports_a_full_disk_but_not_other_runtime_errors(tmp_path, monkeypatch):
    from scoreaudio.utils.checkpoint import save_checkpoint

    def raising(message):
        def save(obj, f, *args, **kwargs):
            raise RuntimeError(message)

        return save

    monkeypatch.setattr(torch, "save", raising("unexpected pos 4096 vs 1024"))
    with pytest.raises(TrainingError, match=r"disk full while writing checkpoint .*no checkpoint was"):
        save_checkpoint(tmp_path / "last.pt", {"step": 1})
    monkeypatch.setattr(torch, "save", raising("a bug, not the disk"))
    with pytest.raises(RuntimeError, match="a bug") as e:
        save_checkpoint(tmp_path / "last.pt", {"step": 1})
    assert not isinstance(e.value, TrainingError)
    assert list(tmp_path.iterdir()) == []


def test_check_int_takes_integers_only_and_names_the_argument():
    assert check_int("n", 3) == 3 and type(check_int("n", np.int64(3))) is int
    assert check_int("seed", 0, minimum=0) == 0
    for bad in (True, 2.0, "2", None):
        with pytest.raises(ValueError, match=r"^n must be a positive integer, got "):
            check_int("n", bad)
    with pytest.raises(ValueError, match="n must be a positive integer, got 0"):
        check_int("n", 0)
    with pytest.raises(ValueError, match="seed must be a non-negative integer, got -1"):
        check_int("seed", -1, minimum=0)
    with pytest.raises(ConfigError, match=r"nfe must be >= 2 \(an integer\), got 1"):
        check_int("nfe", 1, minimum=2, error=ConfigError)


def test_one_line_flattens_messages_and_names_silent_errors():
    assert one_line(ValueError("bad\n  value\there")) == "bad value here"
    assert one_line(RuntimeError()) == "RuntimeError"


def test_resolve_device_checks_cuda_and_names_the_setting(monkeypatch):
    from scoreaudio.utils.device import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device(None) == resolve_device("auto") == torch.device("cpu")
    with pytest.raises(
        ConfigError, match=r"^train.device=cuda but CUDA is not available here; use train.device=cpu"
    ):
        resolve_device("cuda", setting="train.device")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto", local_rank=1) == torch.device("cuda", 1)
    assert resolve_device("cuda", local_rank=1) == torch.device("cuda", 1)
    assert resolve_device("cuda:0", local_rank=1) == torch.device("cuda", 0)
    assert resolve_device("auto") == torch.device("cuda")


def test_output_subtype_keeps_plain_samples_only():
    from scoreaudio.audio.io import output_subtype

    assert output_subtype("WAV", "MPEG_LAYER_III") == "PCM_16"  # libsndfile claims it, cannot write it
    assert output_subtype("WAV", "PCM_24") == "PCM_24" and output_subtype("WAV", "float") == "FLOAT"
    assert output_subtype("FLAC", "PCM_24") == "PCM_24" and output_subtype("FLAC", "FLOAT") == "PCM_16"
    assert output_subtype("WAV", "ULAW") == "PCM_16" and output_subtype("WAV", "IMA_ADPCM") == "PCM_16"
    assert output_subtype("OGG", "PCM_16") == "VORBIS" and output_subtype("WAV", "VORBIS") == "PCM_16"
    assert output_subtype("WAV", None) == "PCM_16" and output_subtype("FLAC", "") == "PCM_16"


def test_save_writes_an_input_codec_as_the_containers_default(tmp_path):
    from scoreaudio.audio.io import save

    x = 0.1 * np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    p = save(tmp_path / "x.wav", x, SR, subtype="MPEG_LAYER_III")
    assert sf.info(str(p)).subtype == "PCM_16"
    with pytest.raises(ScoreAudioError, match="FLAC does not support subtype FLOAT"):
        save(tmp_path / "x.flac", x, SR, subtype="FLOAT")  # a plain format asked for where it cannot go


def test_resolve_device_refuses_names_and_indices_it_cannot_use(monkeypatch):
    from scoreaudio.utils.device import resolve_device

    for bad in ("gpu", "gpu0", "cuda:x", "CUDA", "mps", "", torch.device("meta")):
        with pytest.raises(ConfigError, match=r"^--device=.* is not a device; use auto, cpu, cuda or cuda:N"):
            resolve_device(bad, setting="--device")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(
        ConfigError, match=r"device=cuda:1 but this machine has 1 CUDA device\(s\) \(cuda:0 to cuda:0\)"
    ):
        resolve_device("cuda:1")


def test_generate_api_names_a_bad_device():
    from scoreaudio.generation import generate

    with pytest.raises(ConfigError, match=r"^device=gpu is not a device; use auto, cpu, cuda or cuda:N"):
        generate(device="gpu")


def test_check_memory_names_what_to_lower(monkeypatch):
    import scoreaudio.generation as gen_mod
    from scoreaudio.generation import NotEnoughMemoryError, check_memory

    free = {"cpu": 2**30, "cuda": 2**30}
    monkeypatch.setattr(gen_mod, "available_memory", lambda device: free[device.type])
    one_s = dict(length=SR, sample_rate=SR, per_sample=1000.0, state_per_sample=4.0, keep_model_space=False)
    check_memory(num=4, batch_size=4, device=torch.device("cpu"), **one_s)  # 4 x 16000 x 1000 B: 61 MiB
    with pytest.raises(
        NotEnoughMemoryError,
        match=r"needs about 4\.8 GiB of memory but 1\.0 GiB is available; "
        r"lower --seconds or --batch-size",
    ):
        check_memory(num=320, batch_size=320, device=torch.device("cpu"), **one_s)
    with pytest.raises(NotEnoughMemoryError, match="lower --num or --seconds"):
        check_memory(num=10**4, batch_size=1, device=torch.device("cpu"), **one_s)
    with pytest.raises(NotEnoughMemoryError, match=r"on cuda:0 but 1\.0 GiB is free; lower --seconds$"):
        check_memory(num=1, batch_size=1, device=torch.device("cuda", 0), **{**one_s, "length": 100 * SR})
    free["cpu"] = None  # a platform that does not say: not checked
    check_memory(num=10**4, batch_size=1, device=torch.device("cpu"), **one_s)


def test_network_bytes_per_sample_is_measured_on_the_model(tiny_run):
    from scoreaudio.generation import STATE_COPIES, network_bytes_per_sample
    from scoreaudio.pretrained import load_pretrained

    pre = load_pretrained(tiny_run, device="cpu")
    per = network_bytes_per_sample(pre.model, pre.representation, pre.sample_rate, 1.0, pre.device)
    state = 4 * math.prod(pre.representation.encoded_shape(SR)) / SR
    assert per > STATE_COPIES * state and per < 10**5  # activations on top of the states, finite
    assert all(not p.grad_fn for p in pre.model.parameters()) and not pre.model.training
