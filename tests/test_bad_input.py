"""Bad inputs through the command line (issue 13): each is exit status 2, one line on stderr, no
traceback, and no file that existed before has changed. Then the API-level guards behind them."""
from __future__ import annotations

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
@pytest.mark.parametrize("override, key", [
    ("train.batch_size=0", "train.batch_size"), ("train.batch_size=-1", "train.batch_size"),
    ("data.segment_seconds=0", "data.segment_seconds"), ("data.segment_seconds=-2", "data.segment_seconds"),
    ("train.lr=nan", "train.lr"), ("train.lr=-1e-3", "train.lr"), ("train.grad_accum=0", "train.grad_accum"),
    ("train.ckpt_every=0", "train.ckpt_every"), ("train.log_every=0", "train.log_every"),
    ("noise.sigma_min=0", "noise.sigma_min"), ("data.sample_rate=0", "data.sample_rate"),
    ("train.device=gpu", "train.device"),
])
def test_train_out_of_range_setting(capsys, tmp_path, override, key):
    run = tmp_path / "run"
    line = _fails_cleanly(capsys, ["train", RECIPE, *TINY, f"train.run_dir={run}", override])
    assert f"{key}=" in line and "use " in line
    assert not run.exists(), "refused before any work"


def test_train_resume_never_on_an_existing_run(capsys, run_copy):
    line = _fails_cleanly(capsys, ["train", RECIPE, *TINY, f"train.run_dir={run_copy}", "train.resume=never"],
                          run_copy)
    assert "train.overwrite=true" in line


def test_train_into_a_run_dir_another_training_holds(capsys, run_copy, monkeypatch):
    """The first training is a separate process holding the run dir's lock; the second is refused
    with its PID and writes nothing (not even into metrics.jsonl)."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from scoreaudio.train import "
         "_lock_run_dir; _lock_run_dir(Path(sys.argv[1])); print('locked', flush=True); time.sleep(120)",
         str(run_copy)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        line = _fails_cleanly(capsys, ["train", RECIPE, *TINY, f"train.run_dir={run_copy}", "train.steps=4"],
                              run_copy)
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
    line = _fails_cleanly(capsys, ["train", RECIPE, *TINY, f"train.run_dir={run_copy}", "train.steps=3"],
                          last, only_line=False)  # the run logged its start first
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


# --------------------------------------------------------------------------------------------
# The guards behind them
# --------------------------------------------------------------------------------------------
def test_a_stale_lock_does_not_block_and_train_releases_its_own(tmp_path):
    """A lock file left by a process that died (flock is gone with it) does not block, and a
    finished train() unlocks, so the same process can continue the run."""
    from scoreaudio.train import RUN_LOCK

    run = tmp_path / "run"
    run.mkdir()
    (run / RUN_LOCK).write_text("999999\n")  # a PID that is not running
    train_tiny(run, "train.steps=1", "train.val_every=0")
    train_tiny(run, "train.steps=2", "train.val_every=0")
    assert load_checkpoint_dict(run / "last.pt")["step"] == 2
    assert not (run / RUN_LOCK).exists(), "a finished run leaves no lock file"


def test_resume_never_with_overwrite_starts_over(tmp_path):
    run = train_tiny(tmp_path / "run", "train.steps=1", "train.val_every=0")
    train_tiny(run, "train.steps=1", "train.val_every=0", "train.resume=never", "train.overwrite=true")
    assert load_checkpoint_dict(run / "last.pt")["step"] == 1


def test_denoise_outputs_inside_the_input_folder_are_not_inputs_on_a_second_run(tmp_path):
    from scoreaudio.denoise import plan_outputs

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
    with pytest.raises(ConfigError, match=r"^train.device=cuda but CUDA is not available here; use train.device=cpu"):
        resolve_device("cuda", setting="train.device")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto", local_rank=1) == torch.device("cuda", 1)
    assert resolve_device("cuda", local_rank=1) == torch.device("cuda", 1)
    assert resolve_device("cuda:0", local_rank=1) == torch.device("cuda", 0)
    assert resolve_device("auto") == torch.device("cuda")
